// Mandate's sign-in pages in a real browser (Debian's chromium, driven by
// npm puppeteer-core), run by tests/interop/signin.sh: the IdP chooser (two
// IdPs), the consent page, error pages and sign-out, each screenshotted into
// SIGNIN_SHOTS; on each, Content-Security-Policy with frame-ancestors 'none'
// and X-Frame-Options, no script; the browser itself refuses to frame them;
// the consent and sign-out forms refuse a POST without or with a wrong CSRF
// token; an unknown client or a redirect_uri it did not register shows an
// error page and goes nowhere (no open redirect); the IdP's cancel comes back
// to the client as access_denied.
//
// Protocol: signin-browser.mjs. Environment: SIGNIN_BASE, SIGNIN_CLIENT_ID (a
// public client registered with http://127.0.0.1/callback), SIGNIN_RESOURCE,
// SIGNIN_USER, SIGNIN_PASSWORD, SIGNIN_IDP (the chooser's label of their
// IdP), SIGNIN_OTHER_IDP (the other label), SIGNIN_TENANT_NAME, SIGNIN_SHOTS.
import {
    ok, fail, info, expect, expectEq, done, env, settings, sleep, setUp, pageKind, authorizeRequest, clickNav,
    postForm, pageText,
} from './signin-browser.mjs';

const {
    BASE, CLIENT_ID: CLIENT, RESOURCE, IDP, OTHER_IDP: OTHER, TENANT_NAME: TENANT,
} = settings('SIGNIN');
const T = '[pages]';
const { shots, cb, browser } = await setUp();

const authorizeUrl = (extra = {}) => authorizeRequest(BASE, { client_id: CLIENT, redirect_uri: cb.url, resource: RESOURCE, ...extra }).url;

// the headers every page of Mandate's must carry, and no script
async function checkPage(what, page, res, status) {
    if (!res) {
        fail(`${T} ${what}: an answer`, 'no response');
        return;
    }
    if (status !== undefined) expectEq(`${T} ${what}: HTTP ${status}`, status, res.status());
    const h = res.headers();
    expect(`${T} ${what}: Content-Security-Policy frame-ancestors 'none'`, /frame-ancestors 'none'/.test(h['content-security-policy'] || ''), h['content-security-policy']);
    expectEq(`${T} ${what}: X-Frame-Options DENY`, 'DENY', (h['x-frame-options'] || '').toUpperCase());
    const scripts = await page.$$eval('script', (s) => s.length);
    expectEq(`${T} ${what}: no script`, 0, scripts);
    await shots.take(page, what.replace(/[^a-z0-9]+/gi, '-').toLowerCase());
}

const text = pageText;

try {
    const ctx = await browser.createBrowserContext();
    const page = await ctx.newPage();

    // --- the chooser -------------------------------------------------------------------
    let res = await page.goto(authorizeUrl(), { waitUntil: 'load' });
    expectEq(`${T} two IdPs, no hint: the chooser`, 'chooser', await pageKind(page, BASE, cb.url));
    await checkPage('chooser', page, res, 200);
    const labels = await page.$$eval('button[name="idp"]', (bs) => bs.map((b) => b.textContent.trim()));
    expect(`${T} chooser: both IdPs offered`, labels.includes(IDP) && labels.includes(OTHER), JSON.stringify(labels));
    expect(`${T} chooser: the tenant's name`, (await text(page)).toLowerCase().includes(TENANT.toLowerCase()), await text(page));
    // the chooser's form, its CSRF token removed
    const choose = await page.$eval('button[name="idp"]', (b) => ({
        action: b.form.action, handle: b.form.elements.handle.value, csrf: b.form.elements.csrf.value, idp: b.value,
    }));
    const page2 = await ctx.newPage();
    await page2.goto(`${BASE}/logout`, { waitUntil: 'load' });
    res = await postForm(page2, choose.action, { handle: choose.handle, idp: choose.idp });
    expectEq(`${T} chooser: a POST without its CSRF token is refused`, 403, res.status());
    await page2.close();

    // --- the IdP: cancel, then sign in ----------------------------------------------------
    res = await clickNav(page, `button[name="idp"][value="${(await page.$$eval('button[name="idp"]', (bs, l) => bs.find((b) => b.textContent.trim() === l).value, IDP))}"]`);
    expectEq(`${T} the chooser sends the browser to the IdP's login page`, 'idp-login', await pageKind(page, BASE, cb.url));
    await shots.take(page, 'idp-login');
    await clickNav(page, 'button#cancel');
    expect(`${T} the IdP's cancel: back at the client`, page.url().startsWith(cb.url), page.url());
    const cancelled = await cb.next();
    expectEq(`${T} the IdP's cancel: access_denied to the client`, 'access_denied', cancelled.searchParams.get('error'));
    expectEq(`${T} the IdP's cancel: with iss`, BASE, cancelled.searchParams.get('iss'));

    res = await page.goto(authorizeUrl({ login_hint: `${env('SIGNIN_USER')}@${env('SIGNIN_HINT_DOMAIN')}` }), { waitUntil: 'load' });
    expect(`${T} login_hint ${env('SIGNIN_USER')}@${env('SIGNIN_HINT_DOMAIN')}: straight to ${IDP}'s login page, no chooser`,
        await pageKind(page, BASE, cb.url) === 'idp-login' && (await text(page)).includes(IDP), `${page.url()}: ${await text(page)}`);
    res = await page.goto(authorizeUrl({ idp_hint: 'backend-partner' }), { waitUntil: 'load' });
    info(`${T} idp_hint=backend-partner: ${await pageKind(page, BASE, cb.url)} at ${page.url().split('?')[0]}`);
    res = await page.goto(authorizeUrl(), { waitUntil: 'load' });
    const idpValue = await page.$$eval('button[name="idp"]', (bs, l) => bs.find((b) => b.textContent.trim() === l).value, IDP);
    await clickNav(page, `button[name="idp"][value="${idpValue}"]`);
    await page.type('input#login', env('SIGNIN_USER'));
    await page.type('input#password', 'not-the-password');
    await clickNav(page, 'button#sign-in');
    await shots.take(page, 'idp-wrong-password');
    await clickNav(page, 'a'); // "Try again"
    await page.type('input#login', env('SIGNIN_USER'));
    await page.type('input#password', env('SIGNIN_PASSWORD'));
    res = await clickNav(page, 'button#sign-in');
    for (let i = 0; i < 3 && await pageKind(page, BASE, cb.url) === 'idp-consent'; i++) {
        await shots.take(page, 'idp-consent');
        res = await clickNav(page, 'button#approve');
    }

    // --- consent ------------------------------------------------------------------------------
    expectEq(`${T} after the IdP: Mandate's consent page`, 'mandate-consent', await pageKind(page, BASE, cb.url));
    await checkPage('consent', page, res, 200);
    const consentText = await text(page);
    expect(`${T} consent: names the scope`, consentText.includes('mcp:call'), consentText);
    expect(`${T} consent: names the resource`, consentText.includes(RESOURCE), consentText);
    expect(`${T} consent: the tenant's name`, consentText.toLowerCase().includes(TENANT.toLowerCase()), consentText);
    const form = await page.$eval('button[name="decision"]', (b) => ({
        action: b.form.action, handle: b.form.elements.handle.value, csrf: b.form.elements.csrf.value,
    }));
    expect(`${T} consent: a CSRF token in the form`, form.csrf.length >= 16, form.csrf);
    // without, then with a wrong CSRF token, from another of Mandate's pages
    // in this browser (a forged form): refused, and the consent still pending
    const forger = await ctx.newPage();
    await forger.goto(`${BASE}/logout`, { waitUntil: 'load' });
    res = await postForm(forger, form.action, { handle: form.handle, decision: 'allow' });
    await checkPage('consent without CSRF token', forger, res, 403);
    expect(`${T} consent without CSRF token: not at the client`, !forger.url().startsWith(cb.url), forger.url());
    res = await postForm(forger, form.action, { handle: form.handle, csrf: `${form.csrf.slice(0, -2)}xx`, decision: 'allow' });
    await checkPage('consent with a wrong CSRF token', forger, res, 403);
    await forger.close();
    res = await clickNav(page, 'button[name="decision"][value="allow"]');
    expect(`${T} consent with its CSRF token (the page's own form): at the client`, page.url().startsWith(cb.url), page.url());
    const back = await cb.next();
    expect(`${T} consent with its CSRF token: a code`, back.searchParams.get('code'), back.href);
    const again = await ctx.newPage();
    await again.goto(`${BASE}/logout`, { waitUntil: 'load' });
    res = await postForm(again, form.action, { handle: form.handle, csrf: form.csrf, decision: 'allow' });
    await checkPage('consent answered twice', again, res);
    expect(`${T} consent answered twice: refused (4xx)`, res.status() >= 400 && res.status() < 500, res.status());
    await again.close();

    // --- the browser will not frame Mandate's pages ---------------------------------------------
    await page.goto(cb.url.replace(/callback$/, ''), { waitUntil: 'load' });
    await page.evaluate((src) => {
        const f = document.createElement('iframe');
        f.src = src;
        f.width = 600;
        f.height = 300;
        document.body.appendChild(f);
    }, `${BASE}/logout`);
    await sleep(1500);
    const framed = page.frames().find((f) => f !== page.mainFrame());
    let framedText = '';
    try {
        framedText = framed ? await framed.evaluate(() => document.body ? document.body.innerText : '') : '';
    } catch (e) {
        framedText = `(unreadable: ${e.message})`;
    }
    info(`${T} framed /logout: frame url ${framed && framed.url()}, text ${JSON.stringify(framedText.slice(0, 100))}`);
    expect(`${T} chromium refuses to show /logout in a frame (clickjacking)`, !/sign out|signed in/i.test(framedText), framedText);
    await shots.take(page, 'framed-logout-blocked');

    // --- errors: never a redirect -------------------------------------------------------------
    res = await page.goto(authorizeUrl({ client_id: 'no-such-client' }), { waitUntil: 'load' });
    await checkPage('error unknown client', page, res, 400);
    expect(`${T} unknown client: the browser stays at Mandate`, page.url().startsWith(`${BASE}/oauth2/authorize`), page.url());
    res = await page.goto(authorizeUrl({ redirect_uri: 'https://evil.example/cb' }), { waitUntil: 'load' });
    await checkPage('error bad redirect_uri', page, res, 400);
    expect(`${T} bad redirect_uri: no redirect (the answer is the page itself)`, res.request().redirectChain().length === 0 && page.url().startsWith(`${BASE}/oauth2/authorize`), page.url());
    const errText = await text(page);
    expect(`${T} bad redirect_uri: the page does not link to it`, !errText.includes('evil.example') || !(await page.$('a[href*="evil.example"]')), errText);
    res = await page.goto(authorizeUrl({ redirect_uri: 'http://127.0.0.1:1/elsewhere' }), { waitUntil: 'load' });
    expectEq(`${T} a loopback redirect_uri with another path: an error page`, 400, res.status());
    res = await page.goto(authorizeUrl({ code_challenge_method: 'plain' }), { waitUntil: 'load' });
    expect(`${T} PKCE plain: an error to the (valid) redirect_uri`, page.url().startsWith(cb.url), page.url());
    const plain = await cb.next();
    expectEq(`${T} PKCE plain: invalid_request`, 'invalid_request', plain.searchParams.get('error'));

    // --- sign-out ---------------------------------------------------------------------------------
    res = await page.goto(`${BASE}/logout`, { waitUntil: 'load' });
    await checkPage('logout', page, res, 200);
    expect(`${T} logout: says who is signed in`, (await text(page)).includes(env('SIGNIN_SUB')), await text(page));
    const lcsrf = await page.$eval('input[name="csrf"]', (i) => i.value);
    res = await postForm(page, `${BASE}/logout`, { csrf: `${lcsrf.slice(0, -2)}xx` });
    await checkPage('logout with a wrong CSRF token', page, res, 403);
    res = await page.goto(`${BASE}/logout`, { waitUntil: 'load' });
    res = await clickNav(page, 'button[type="submit"]');
    await checkPage('signed out', page, res, 200);
    expect(`${T} signed out: says so`, /signed out/i.test(await text(page)), await text(page));
    await page.goto(authorizeUrl(), { waitUntil: 'load' });
    expectEq(`${T} after sign-out: the chooser again (no session)`, 'chooser', await pageKind(page, BASE, cb.url));
    await ctx.close();
} catch (e) {
    fail(`${T} the pages`, e.stack || String(e));
} finally {
    await browser.close().catch(() => {});
    cb.close();
}
done();
