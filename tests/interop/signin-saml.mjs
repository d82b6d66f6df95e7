// SAML Web Browser SSO into Mandate's sign-in, the parts beside the MCP SDK's
// own sign-in (signin-mcp.mjs), run by tests/interop/saml-signin.sh in
// Debian's chromium (puppeteer-core) against Debian's SimpleSAMLphp:
//   - the compliance officer signs in for the compliance archive: a code at
//     the client, redeemed here; jose checks the token (its own audience);
//   - a user no mapping rule admits gets Mandate's error page saying so;
//   - SimpleSAMLphp's genuine answer, changed on its way to the ACS
//     (a value under the signature, a forged assertion before the signed
//     one), and posted again later (a replay): each refused with a page;
//   - the attack fixtures of tests/saml/make-assertions.sh posted to the
//     ACS as a browser posts an IdP's answer (a form POST with the
//     RelayState of a fresh authorization request, the Response naming its
//     AuthnRequest): each refused, and the genuine one accepted.
// Screenshots of every page of Mandate's go to SIGNIN_SHOTS.
//
// Protocol: signin-browser.mjs. Environment: SIGNIN_BASE, SIGNIN_CLIENT_ID (a
// public client registered with http://127.0.0.1/callback), SIGNIN_IDP (the
// chooser's label of SimpleSAMLphp), SAML_INSTANCE (its backend instance),
// SAML_SECURE_INSTANCE (the instance that signs its AuthnRequests),
// SAML_IDP_CLAIM (the tokens' idp), SAML_ADVISOR_AUD, SAML_COMPLIANCE_AUD,
// SIGNIN_SHOTS; for the fixtures SAML_FIXTURES (make-assertions.sh's folder),
// SAML_FIXTURE_INSTANCE (the instance that trusts their IdP) and
// SAML_FIXTURE_SSO (that IdP's SingleSignOnService URL: answered here), and
// SAML_TAMPER=1 for the changes to SimpleSAMLphp's answers (not encrypted).
import fs from 'node:fs';
import zlib from 'node:zlib';
import {
    ok, fail, info, expect, expectEq, ask, done, env, settings, setUp, signIn, settle, pageKind,
    authorizeRequest, postForm, pageText,
} from './signin-browser.mjs';

const jose = await import('jose');

const { BASE, CLIENT_ID: CLIENT, IDP } = settings('SIGNIN');
const { INSTANCE, IDP_CLAIM, ADVISOR_AUD, COMPLIANCE_AUD } = settings('SAML');
const FIXTURES = process.env.SAML_FIXTURES;
const TAMPER = process.env.SAML_TAMPER === '1';
const ACS = `${BASE}/login/${INSTANCE}/callback`;
const T = '[saml]';
const { shots, cb, browser } = await setUp();
const meta = await (await fetch(`${BASE}/.well-known/oauth-authorization-server`)).json();
const jwks = jose.createRemoteJWKSet(new URL(meta.jwks_uri));

const authorize = (params) => authorizeRequest(BASE, { client_id: CLIENT, redirect_uri: cb.url, ...params });

// A fresh browser (no IdP session, no Mandate session) that keeps the
// answers of the ACS and the redirects to an IdP it made:
// { ctx, page, acs: [HTTPResponse], toIdp: [URL] }
async function freshBrowser() {
    const ctx = await browser.createBrowserContext();
    const page = await ctx.newPage();
    const acs = [];
    const toIdp = [];
    page.on('response', (r) => { if (r.url().startsWith(`${BASE}/login/`) && r.request().method() === 'POST') acs.push(r); });
    page.on('request', (r) => { if (r.url().includes('SAMLRequest=')) toIdp.push(r.url()); });
    return { ctx, page, acs, toIdp };
}

// The AuthnRequest a redirect to the IdP carries (HTTP-Redirect binding:
// deflated, base64): { id, relayState, signed, xml }
function authnRequestOf(url) {
    const u = new URL(url);
    const xml = zlib.inflateRawSync(Buffer.from(u.searchParams.get('SAMLRequest'), 'base64')).toString();
    return {
        id: (xml.match(/\sID="([^"]+)"/) || [])[1], relayState: u.searchParams.get('RelayState'),
        signed: u.searchParams.has('Signature') && u.searchParams.has('SigAlg'), xml,
    };
}

// Refused after the ACS, no code: an error page of Mandate's (4xx), or,
// with page false, that or access_denied sent to the client (what Mandate
// does when the backend refuses the IdP's answer: the client learns that
// its sign-in failed). words: what the page says.
async function expectRefused(what, b, res, { page: wantPage = true, words, error = 'access_denied' } = {}) {
    const page = b.page;
    const status = b.acs.length ? b.acs.at(-1).status() : res && res.status();
    const shot = () => shots.take(page, what.replace(/[^a-z0-9]+/gi, '-').toLowerCase());
    if (page.url().startsWith(cb.url)) {
        const back = await cb.next();
        expect(`${T} ${what}: refused, no code`, !back.searchParams.get('code'), back.href);
        if (wantPage) fail(`${T} ${what}: an error page of Mandate's, not a redirect to the client`, back.href);
        else expectEq(`${T} ${what}: ${error} to the client`, error, back.searchParams.get('error'));
        info(`${T} ${what}: ACS answered ${status}, the client got ${back.searchParams.get('error')}: ${back.searchParams.get('error_description')}`);
        await shot();
        return;
    }
    expect(`${T} ${what}: refused at the ACS with a page (4xx)`, status >= 400 && status < 500, `HTTP ${status} at ${page.url()}`);
    expect(`${T} ${what}: an error page of Mandate's`, page.url().startsWith(BASE), page.url());
    const text = await pageText(page);
    if (words) expect(`${T} ${what}: the page says ${words}`, words.test(text), text.slice(0, 300));
    info(`${T} ${what}: HTTP ${status}: ${text.replace(/\s+/g, ' ').slice(0, 160)}`);
    await shot();
}

async function redeem(back, verifier, resource) {
    const res = await fetch(meta.token_endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
            grant_type: 'authorization_code', code: back.searchParams.get('code'), redirect_uri: cb.url,
            client_id: CLIENT, code_verifier: verifier, resource,
        }).toString(),
    });
    return { status: res.status, body: await res.json().catch(() => ({})) };
}

// A fixture of make-assertions.sh as the answer to AuthnRequest id: a bare
// assertion goes into an unsigned Response (what an IdP that signs the
// assertion alone sends), and the Response names the request
// (InResponseTo, outside any signature of the fixtures'); the prolog (a
// DOCTYPE of the entity fixtures) stays in front.
const CONTROL = 'assertion';
function answering(xml, id, acs) {
    const at = xml.search(/<(saml:Assertion|samlp:Response)[\s>]/);
    let prolog = xml.slice(0, at);
    let body = xml.slice(at);
    if (body.startsWith('<saml:Assertion')) {
        prolog = prolog.replace('<!DOCTYPE saml:Assertion', '<!DOCTYPE samlp:Response');
        body = '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"'
            + ` ID="_r${id.slice(1)}x" Version="2.0" IssueInstant="${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}"`
            + ` Destination="${acs}"><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/>`
            + `</samlp:Status>${body}</samlp:Response>`;
    }
    body = body.replace(/^<samlp:Response /, `<samlp:Response InResponseTo="${id}" `);
    return prolog + body;
}

// Up to SimpleSAMLphp's login form through the sign-in's first steps; the
// AuthnRequest on the way
async function toIdpLogin(b, params) {
    const req = authorize(params);
    await b.page.goto(req.url, { waitUntil: 'load', timeout: 20000 });
    await settle(b.page);
    if (await pageKind(b.page, BASE, cb.url) === 'chooser') {
        const value = await b.page.$$eval('button[name="idp"]', (bs, l) => bs.find((x) => x.textContent.trim() === l).value, IDP);
        await Promise.all([b.page.waitForNavigation({ waitUntil: 'load' }), b.page.click(`button[name="idp"][value="${value}"]`)]);
        await settle(b.page);
    }
    const toIdp = b.toIdp.at(-1);
    return { req, authn: toIdp ? authnRequestOf(toIdp) : undefined };
}

async function typeLogin(page, user, password) {
    await page.type('input#username', user);
    await page.type('input#password', password);
    await Promise.all([page.waitForNavigation({ waitUntil: 'load', timeout: 20000 }), page.click('button#submit_button')]);
    await settle(page);
}

try {
    // --- the AuthnRequests: unsigned, and signed where the IdP requires it -------------------------
    for (const [instance, signed] of [[INSTANCE, false], [env('SAML_SECURE_INSTANCE'), true]]) {
        const b = await freshBrowser();
        const { authn } = await toIdpLogin(b, { resource: ADVISOR_AUD, idp_hint: instance });
        expect(`${T} ${instance}: an AuthnRequest (HTTP-Redirect) with an ID and a RelayState`, authn && authn.id && authn.relayState, JSON.stringify(authn));
        if (authn) {
            expectEq(`${T} ${instance}: the AuthnRequest is ${signed ? '' : 'not '}signed (Signature, SigAlg)`, signed, authn.signed);
            expect(`${T} ${instance}: its ID does not start with a digit`, /^[^0-9]/.test(authn.id || ''), authn.id);
            expect(`${T} ${instance}: the RelayState is not the client's state`, !authn.relayState.includes(CLIENT), authn.relayState);
            expect(`${T} ${instance}: AssertionConsumerServiceURL is the callback`,
                authn.xml.includes(`AssertionConsumerServiceURL="${BASE}/login/${instance}/callback"`), authn.xml.slice(0, 600));
        }
        expectEq(`${T} ${instance}: SimpleSAMLphp took it: its login form`, 'saml-login', await pageKind(b.page, BASE, cb.url));
        await b.ctx.close();
    }

    // --- what the IdP posts to the instance that asked for encryption -----------------------------
    // the EncryptedAssertion, then with an EncryptedID in it as well
    for (const nameid of [false, true]) {
        const secure = env('SAML_SECURE_INSTANCE');
        const what = `${secure}${nameid ? ', the NameID encrypted too' : ''}`;
        if (nameid) expectEq(`${T} SimpleSAMLphp encrypts the NameID from now on`, 'ok', await ask('encrypt_nameid'));
        const b = await freshBrowser();
        let posted;
        b.page.on('request', (r) => {
            if (r.method() === 'POST' && r.url() === `${BASE}/login/${secure}/callback` && r.postData()) {
                posted = Buffer.from(new URLSearchParams(r.postData()).get('SAMLResponse') || '', 'base64').toString();
            }
        });
        await toIdpLogin(b, { resource: ADVISOR_AUD, idp_hint: secure });
        await typeLogin(b.page, 'advisor', 'advisor-pw');
        expect(`${T} ${what}: SimpleSAMLphp posted an EncryptedAssertion`, /<saml:EncryptedAssertion[\s>]/.test(posted || ''), (posted || '').slice(0, 300));
        expect(`${T} ${what}: nothing of the advisor in the clear`, !!posted && !posted.includes('advisor-12345'), 'advisor-12345 in the post');
        // kept beside the screenshots (test keys only): what the IdP sent
        if (posted) fs.writeFileSync(`${shots.dir}/posted-${nameid ? 'encrypted-nameid' : 'encrypted'}.xml`, posted);
        const kind = await pageKind(b.page, BASE, cb.url);
        expectEq(`${T} ${what}: decrypted and accepted: Mandate's consent page`, 'mandate-consent', kind);
        if (kind === 'callback') info(`${T} ${what}: sent back to the client: ${(await cb.next()).href}`);
        await b.ctx.close();
    }

    // --- the compliance officer: the compliance archive --------------------------------------
    {
        const b = await freshBrowser();
        const req = authorize({ resource: COMPLIANCE_AUD });
        const seen = [];
        const back = await signIn(b.ctx, req.url, {
            base: BASE, callback: cb.url, user: 'compliance', password: 'compliance-pw', idp: IDP, shots, label: 'compliance', seen,
        }).then(() => cb.next());
        info(`${T} compliance: pages ${seen.join(' -> ')}`);
        expect(`${T} compliance: SimpleSAMLphp's login form, Mandate's consent`, seen.includes('saml-login') && seen.includes('mandate-consent'), seen.join(' -> '));
        expectEq(`${T} compliance: back at the client with its state`, req.state, back.searchParams.get('state'));
        const t = await redeem(back, req.verifier, COMPLIANCE_AUD);
        expectEq(`${T} compliance: the code redeemed`, 200, t.status);
        try {
            const { payload } = await jose.jwtVerify(t.body.access_token, jwks, { issuer: BASE, audience: COMPLIANCE_AUD });
            ok(`${T} compliance: jose verifies the token, aud ${COMPLIANCE_AUD}`);
            info(`${T} compliance claims ${JSON.stringify(payload)}`);
            expectEq(`${T} compliance: sub`, 'compliance-67890', payload.sub);
            expectEq(`${T} compliance: idp`, IDP_CLAIM, payload.idp);
            expect(`${T} compliance: not the market calendar`, ![].concat(payload.aud).includes(ADVISOR_AUD), JSON.stringify(payload.aud));
        } catch (e) {
            fail(`${T} compliance: jose verifies the token`, `${e.message} ${JSON.stringify(t.body).slice(0, 200)}`);
        }
        // single logout, SP-initiated: Mandate's sign-out page, then
        // SimpleSAMLphp's SingleLogoutService (a LogoutRequest), back to
        // Mandate with its signed LogoutResponse; SimpleSAMLphp's own
        // session is gone (the next sign-in shows its login form again)
        {
            const toSlo = [];
            b.page.on('request', (r) => { if (r.url().includes('SAMLRequest=') && r.url().includes('SingleLogoutService')) toSlo.push(r.url()); });
            await b.page.goto(`${BASE}/logout`, { waitUntil: 'load', timeout: 20000 });
            await shots.take(b.page, 'mandate-logout');
            await Promise.all([b.page.waitForNavigation({ waitUntil: 'networkidle0', timeout: 20000 }), b.page.click('form button[type="submit"]')]);
            const text = await b.page.evaluate(() => document.body.innerText);
            await shots.take(b.page, 'signed-out');
            expect(`${T} logout: a LogoutRequest went to SimpleSAMLphp's SingleLogoutService`, toSlo.length === 1, toSlo.join(' '));
            expect(`${T} logout: back at Mandate's logout route`, b.page.url().startsWith(`${BASE}/login/${INSTANCE}/logout?SAMLResponse=`), b.page.url());
            expect(`${T} logout: signed out of the broker and of the IdP`, /signed out of the broker and of your identity provider/.test(text), text.slice(0, 300));
            await toIdpLogin(b, { resource: COMPLIANCE_AUD, idp_hint: INSTANCE });
            expectEq(`${T} logout: the next sign-in meets SimpleSAMLphp's login form again`, 'saml-login', await pageKind(b.page, BASE, cb.url));
        }

        // the market calendar is not theirs
        const b2 = await freshBrowser();
        const { authn } = await toIdpLogin(b2, { resource: ADVISOR_AUD });
        expect(`${T} an AuthnRequest with an ID and Mandate's RelayState`, authn && authn.id && authn.relayState, JSON.stringify(authn));
        if (authn) info(`${T} AuthnRequest: ID ${authn.id}, signed ${authn.signed}, ${authn.xml.slice(0, 400)}`);
        await typeLogin(b2.page, 'compliance', 'compliance-pw');
        await expectRefused('compliance asking for the market calendar', b2, undefined, { page: false, error: 'invalid_scope' });
        await b.ctx.close();
        await b2.ctx.close();
    }

    // --- a user no rule admits -------------------------------------------------------------------
    {
        const b = await freshBrowser();
        await toIdpLogin(b, { resource: ADVISOR_AUD });
        expectEq(`${T} stranger: SimpleSAMLphp's login form`, 'saml-login', await pageKind(b.page, BASE, cb.url));
        await shots.take(b.page, 'simplesamlphp-login');
        await typeLogin(b.page, 'stranger', 'stranger-pw');
        await expectRefused('stranger', b, undefined, { words: /no rule/i });
        await b.ctx.close();
    }

    // --- SimpleSAMLphp's genuine answer, changed on its way ---------------------------------------
    if (TAMPER) {
        const changes = {
            // a value under the signature: the uid becomes the compliance officer's
            'tampered uid': (xml) => xml.replace(/advisor-12345/g, 'compliance-67890'),
            // a forged, unsigned copy of the assertion before the signed one
            'forged assertion before the signed one': (xml) => {
                const a = xml.match(/<saml:Assertion[\s\S]*<\/saml:Assertion>/);
                if (!a) return xml;
                const forged = a[0].replace(/<ds:Signature[\s\S]*<\/ds:Signature>/, '')
                    .replace(/ID="([^"]+)"/, 'ID="$1x"').replace(/advisor-12345/g, 'compliance-67890');
                return xml.replace(a[0], forged + a[0]);
            },
        };
        let genuine;
        for (const [what, change] of Object.entries(changes)) {
            const b = await freshBrowser();
            await b.page.setRequestInterception(true);
            b.page.on('request', (r) => {
                if (r.method() === 'POST' && r.url() === ACS && r.postData()) {
                    const form = new URLSearchParams(r.postData());
                    const xml = Buffer.from(form.get('SAMLResponse'), 'base64').toString();
                    genuine = genuine || { xml, at: Date.now() };
                    form.set('SAMLResponse', Buffer.from(change(xml)).toString('base64'));
                    r.continue({ postData: form.toString() });
                } else r.continue();
            });
            await toIdpLogin(b, { resource: ADVISOR_AUD });
            await typeLogin(b.page, 'advisor', 'advisor-pw');
            await expectRefused(what, b, undefined, { page: false });
            await b.ctx.close();
        }
        // the genuine answer again, with a fresh RelayState
        if (genuine) {
            const b = await freshBrowser();
            const { authn } = await toIdpLogin(b, { resource: ADVISOR_AUD });
            const res = await postForm(b.page, ACS, { SAMLResponse: Buffer.from(genuine.xml).toString('base64'), RelayState: authn.relayState });
            await expectRefused("SimpleSAMLphp's answer to another request (replayed)", b, res, { page: false });
            await b.ctx.close();
        } else fail(`${T} SimpleSAMLphp's answer was caught on its way to the ACS`);
    }

    // --- the attack fixtures -------------------------------------------------------------------------
    if (FIXTURES) {
        const fxInstance = env('SAML_FIXTURE_INSTANCE');
        const sso = env('SAML_FIXTURE_SSO');
        const fxAcs = `${BASE}/login/${fxInstance}/callback`;
        const names = (process.env.SAML_FIXTURE_NAMES || '').split(/\s+/).filter(Boolean);
        // one browser for the refused ones (each authorization request
        // sets a new login cookie for its own pending sign-in; a refusal
        // leaves no session), a fresh one for the control, last
        const browse = async () => {
            const b = await freshBrowser();
            // the fixtures' IdP is nobody: its login page is answered here
            await b.page.setRequestInterception(true);
            b.page.on('request', (r) => {
                if (r.url().startsWith(sso)) {
                    r.respond({ status: 200, contentType: 'text/html', body: '<!doctype html><title>IdP</title><body>the IdP</body>' });
                } else r.continue();
            });
            return b;
        };
        let b = await browse();
        const order = [...names.filter((n) => n !== CONTROL), ...names.filter((n) => n === CONTROL)];
        for (const name of order) {
            if (name === CONTROL) {
                await b.ctx.close();
                b = await browse();
            }
            b.toIdp.length = 0;
            b.acs.length = 0;
            const req = authorize({ resource: ADVISOR_AUD, idp_hint: fxInstance });
            await b.page.goto(req.url, { waitUntil: 'load', timeout: 20000 });
            const asked = b.toIdp.find((u) => u.startsWith(sso));
            if (!asked) {
                fail(`${T} fixture ${name}: the authorization request reached the fixtures' IdP`, b.page.url());
                continue;
            }
            const { relayState, id } = authnRequestOf(asked);
            // the control answers this very request under its signature (the
            // shell signs it); the attacks are the fixtures as they are
            const file = name === CONTROL ? await ask(`answer ${id}`) : `${FIXTURES}/${name}.xml`;
            const xml = answering(fs.readFileSync(file, 'utf8'), id, fxAcs);
            const res = await postForm(b.page, fxAcs, { SAMLResponse: Buffer.from(xml).toString('base64'), RelayState: relayState });
            if (name === CONTROL) {
                expectEq(`${T} fixture ${name} (the control: the fixtures' IdP's genuine assertion, answering the request): accepted, Mandate's consent page`,
                    'mandate-consent', await pageKind(b.page, BASE, cb.url));
                await shots.take(b.page, `fixture-${name}-accepted`);
            } else {
                await expectRefused(`fixture ${name}`, b, res, { page: false });
            }
        }
        await b.ctx.close();
    }
} catch (e) {
    fail(`${T} the SAML pages`, e.stack || String(e));
} finally {
    await browser.close().catch(() => {});
    cb.close();
}
done();
