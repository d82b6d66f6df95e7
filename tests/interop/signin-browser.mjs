// What tests/interop/signin*.mjs share: Debian's chromium driven by npm
// puppeteer-core (never a downloaded browser), a person signing in through
// the pages as they come (Mandate's IdP chooser, the IdP's login and consent
// pages, Mandate's consent page), the lines the shell counts, and a
// loopback listener for a client's redirect_uri.
//
// Protocol with tests/interop/signin.sh: every check prints one line, "ok: ..."
// or "FAIL: ...", which the shell counts; "# ..." is information. A line
// starting with "@" asks the shell for something and the answer comes back as
// one line on stdin (ask()); "@done" is the last line.
import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';

export const CHROMIUM = process.env.SIGNIN_CHROMIUM || '/usr/bin/chromium';

// --- the lines the shell counts -----------------------------------------------------------
let failed = 0;
export const ok = (what) => console.log(`ok: ${what}`);
export const fail = (what, why) => {
    failed++;
    console.log(`FAIL: ${what}${why === undefined ? '' : `: ${String(why).replace(/\s+/g, ' ').slice(0, 800)}`}`);
};
export const info = (what) => console.log(`# ${String(what).replace(/\n/g, '\n# ')}`);
export const expect = (what, cond, why) => (cond ? ok(what) : fail(what, why));
export const expectEq = (what, want, got) => expect(what, want === got, `expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`);
export const failures = () => failed;

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
// ask LINE: "@LINE" to the shell, its one-line answer back
export async function ask(line) {
    console.log(`@${line}`);
    const { value, done } = await lines.next();
    if (done) throw new Error(`no answer from the shell to @${line}`);
    return value;
}
export function done(code) {
    console.log('@done');
    process.exit(code ?? (failed ? 1 : 0));
}

export const env = (name) => {
    const v = process.env[name];
    if (v === undefined || v === '') throw new Error(`${name} is not set`);
    return v;
};
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// settings(PREFIX): the environment as an object whose property NAME is
// PREFIX_NAME, each required as env() requires it: a script destructures
// what it needs, e.g. const { BASE, SUB } = settings('SIGNIN')
export const settings = (prefix) => new Proxy({}, { get: (_, name) => env(`${prefix}_${String(name)}`) });

// --- the client's redirect_uri ------------------------------------------------------------
// A listener on 127.0.0.1 (any port: RFC 8252 §7.3) at /callback that keeps
// every query it gets; next() resolves with the next one. "/" is a page of
// the application's own (origin: its URL without /callback).
export async function callbackServer() {
    const waiting = [];
    const got = [];
    const server = http.createServer((req, res) => {
        const url = new URL(req.url, 'http://127.0.0.1');
        if (url.pathname === '/') { // a page of the client's own, not an answer
            res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
            res.end('<!doctype html><title>The application</title><body><h1>The application</h1></body>');
            return;
        }
        if (url.pathname !== '/callback') {
            res.writeHead(404).end();
            return;
        }
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.end('<!doctype html><title>Signed in</title><body style="font-family: sans-serif">'
            + '<h1>Back in the application</h1><p>You can close this window.</p></body>');
        if (waiting.length) waiting.shift()(url);
        else got.push(url);
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    const port = server.address().port;
    return {
        url: `http://127.0.0.1:${port}/callback`,
        next: () => (got.length ? Promise.resolve(got.shift()) : new Promise((r) => waiting.push(r))),
        close: () => {
            server.closeAllConnections();
            server.close();
        },
    };
}

// --- the authorization request ------------------------------------------------------------
// An authorization request to Mandate (base) of a public client with PKCE
// S256: params override or add to the defaults (client_id and redirect_uri
// are the caller's). Returns { url, verifier, state }.
export function authorizeRequest(base, params) {
    const b64u = (b) => Buffer.from(b).toString('base64url');
    const verifier = b64u(crypto.randomBytes(32));
    const state = b64u(crypto.randomBytes(12));
    const q = new URLSearchParams({
        response_type: 'code', scope: 'mcp:call', state,
        code_challenge: b64u(crypto.createHash('sha256').update(verifier).digest()), code_challenge_method: 'S256',
        ...params,
    });
    return { url: `${base}/oauth2/authorize?${q}`, verifier, state: q.get('state') };
}

// --- the browser --------------------------------------------------------------------------
// setUp(): what every sign-in script starts with: screenshots into
// SIGNIN_SHOTS, the listener of the client's redirect_uri, the browser
export async function setUp() {
    const shots = new Shots(env('SIGNIN_SHOTS'));
    const cb = await callbackServer();
    return { shots, cb, browser: await launch() };
}

export async function launch() {
    const { default: puppeteer } = await import('puppeteer-core');
    return puppeteer.launch({
        executablePath: CHROMIUM,
        headless: true,
        // root in a container has no user namespace for chromium's sandbox
        args: ['--no-sandbox', '--disable-dev-shm-usage', '--no-first-run', '--disable-gpu'],
        defaultViewport: { width: 900, height: 700 },
    });
}

export class Shots {
    constructor(dir) {
        this.dir = dir;
        this.n = 0;
        fs.mkdirSync(dir, { recursive: true });
    }
    async take(page, name) {
        this.n++;
        const file = path.join(this.dir, `${String(this.n).padStart(2, '0')}-${name}.png`);
        await page.screenshot({ path: file, fullPage: true });
        return file;
    }
}

// What page the browser shows: "callback" (the client's redirect_uri),
// "chooser", "mandate-consent", "idp-login", "saml-login" (SimpleSAMLphp's),
// "idp-consent", "mandate-page"
// (another of Mandate's pages: an error, logout), "other".
export async function pageKind(page, base, callback) {
    const url = page.url();
    if (callback && url.startsWith(callback)) return 'callback';
    if (await page.$('button[name="idp"]')) return 'chooser';
    if (await page.$('button[name="decision"][value="allow"]')) return 'mandate-consent';
    if (await page.$('input#login')) return 'idp-login';
    // SimpleSAMLphp's user and password form (exampleauth:UserPass)
    if (await page.$('input#username') && await page.$('input#password') && await page.$('button#submit_button')) return 'saml-login';
    if (await page.$('button#approve')) return 'idp-consent';
    if (url.startsWith(base)) return 'mandate-page';
    return 'other';
}

// A SAML IdP hands its answer over in a page whose script posts a form to
// the service provider at once (HTTP-POST binding): until the browser has
// left such a page, and the page it reached has loaded, there is nothing to
// look at.
export async function settle(page) {
    for (let i = 0; i < 200; i++) {
        try {
            const posting = await page.$('form input[name="SAMLResponse"], form input[name="SAMLRequest"]');
            if (!posting && await page.evaluate(() => document.readyState) === 'complete') return;
        } catch (e) { /* the page went away under us: navigating */ }
        await sleep(50);
    }
    throw new Error(`still at ${page.url()} after 10 s`);
}

// the page's text, as a person reads it
export const pageText = (page) => page.evaluate(() => (document.body ? document.body.innerText : ''));

// click what navigates; the navigation's response
export async function clickNav(page, selector) {
    const [res] = await Promise.all([page.waitForNavigation({ waitUntil: 'load', timeout: 20000 }), page.click(selector)]);
    return res;
}

// submit a form made in the page (as a forged or tampered page, or an
// IdP's HTTP-POST binding, would send it); the navigation's response
export async function postForm(page, action, fields) {
    const [res] = await Promise.all([
        page.waitForNavigation({ waitUntil: 'load', timeout: 20000 }),
        page.evaluate((action, fields) => {
            const f = document.createElement('form');
            f.method = 'post';
            f.action = action;
            for (const [k, v] of Object.entries(fields)) {
                const i = document.createElement('input');
                i.type = 'hidden';
                i.name = k;
                i.value = v;
                f.appendChild(i);
            }
            document.body.appendChild(f);
            f.submit();
        }, action, fields),
    ]);
    return res;
}

async function click(page, selector) {
    const res = await clickNav(page, selector);
    await settle(page);
    return res;
}

// A person signs in: from url, through whatever pages come, to the client's
// callback. opts: base (Mandate's URL), callback (the redirect_uri), user,
// password, idp (the chooser's button label), remember (tick "remember"),
// deny (deny at Mandate's consent page), shots (a Shots), label (screenshot
// names), seen (an array: the kinds of pages passed through are pushed).
// Returns the callback URL reached (a URL).
export async function signIn(browser, url, opts) {
    const page = await browser.newPage();
    const seen = opts.seen || [];
    try {
        await page.goto(url, { waitUntil: 'load', timeout: 20000 });
        await settle(page);
        for (let step = 0; step < 12; step++) {
            const kind = await pageKind(page, opts.base, opts.callback);
            seen.push(kind);
            if (opts.shots && kind !== 'callback') await opts.shots.take(page, `${opts.label || 'signin'}-${kind}`);
            switch (kind) {
            case 'callback':
                return new URL(page.url());
            case 'chooser': {
                const buttons = await page.$$eval('button[name="idp"]', (bs) => bs.map((b) => [b.value, b.textContent.trim()]));
                const pick = buttons.find(([, label]) => label === opts.idp) || (!opts.idp && buttons[0]);
                if (!pick) throw new Error(`the chooser offers no "${opts.idp}": ${JSON.stringify(buttons)}`);
                await click(page, `button[name="idp"][value="${pick[0]}"]`);
                break;
            }
            case 'idp-login':
                await page.type('input#login', opts.user);
                await page.type('input#password', opts.password);
                await click(page, 'button#sign-in');
                break;
            case 'saml-login':
                await page.type('input#username', opts.user);
                await page.type('input#password', opts.password);
                await click(page, 'button#submit_button');
                break;
            case 'idp-consent':
                await click(page, 'button#approve');
                break;
            case 'mandate-consent':
                if (opts.remember && await page.$('input[name="remember"]')) await page.click('input[name="remember"]');
                await click(page, `button[name="decision"][value="${opts.deny ? 'deny' : 'allow'}"]`);
                break;
            default: {
                const text = await page.evaluate(() => document.body ? document.body.innerText : '');
                throw new Error(`stuck at ${page.url()} (${kind}): ${text.slice(0, 400)}`);
            }
            }
        }
        throw new Error(`no callback after 12 pages: at ${page.url()}`);
    } finally {
        await page.close().catch(() => {});
    }
}
