// The official MCP TypeScript SDK (@modelcontextprotocol/sdk) as an
// interactive MCP client, run by tests/interop/signin.sh: its OAuth client
// provider and StreamableHTTPClientTransport connect to the MarketPulse tool
// server through the gateway, get 401 with resource_metadata, discover
// Mandate, identify themselves (a Client ID Metadata Document served here
// over https, or dynamic registration), and send a person to sign in in
// Debian's chromium (puppeteer-core): Mandate, the IdP's own login page, its
// consent, Mandate's consent, back to the SDK's loopback redirect_uri. The
// SDK redeems the code and calls a tool; jose checks the access token. Then
// the access token expires and the SDK refreshes; then the refresh family is
// revoked (mandatectl user revoke, asked of the shell, or RFC 7009) and the
// SDK has to send the person to sign in again.
//
// Protocol: signin-browser.mjs. "@revoke-user SUBJECT" asks the shell to run
// mandatectl user revoke SUBJECT (answer: its exit status).
// Environment: SIGNIN_BASE (Mandate), SIGNIN_MCP_URL (the gateway's /mcp),
// SIGNIN_MODE (cimd or dcr), SIGNIN_USER, SIGNIN_PASSWORD, SIGNIN_IDP (the
// chooser's label of the IdP), SIGNIN_IDP_CLAIM (the access token's idp: the IdP's issuer or entityID),
// SIGNIN_SUB (the mapped subject), SIGNIN_RESOURCE, SIGNIN_SHOTS (the folder
// for screenshots), for cimd SIGNIN_CERT and SIGNIN_KEY (PEM, for
// https://127.0.0.1), SIGNIN_REVOKE (user or rfc7009), SIGNIN_STEPS ("all",
// the default, or "signin": the first sign-in and the tool call alone, as
// tests/interop/saml-signin.sh runs it).
import https from 'node:https';
import fs from 'node:fs';
import crypto from 'node:crypto';
import {
    ok, fail, info, expect, expectEq, ask, done, env, settings, sleep, setUp, signIn,
} from './signin-browser.mjs';

const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
const { UnauthorizedError } = await import('@modelcontextprotocol/sdk/client/auth.js');
const jose = await import('jose');

const { BASE, MODE, USER, PASSWORD, IDP, IDP_CLAIM, SUB, RESOURCE } = settings('SIGNIN');
const MCP_URL = new URL(env('SIGNIN_MCP_URL'));
const STEPS = process.env.SIGNIN_STEPS || 'all';
const REVOKE = STEPS === 'all' ? env('SIGNIN_REVOKE') : undefined;
const { shots, cb, browser } = await setUp();
const T = `[${MODE}]`;

// every request the SDK makes to the token and registration endpoints
const tokenCalls = [];
const realFetch = globalThis.fetch;
const sdkFetch = async (url, init) => {
    const res = await realFetch(url, init);
    const u = String(url);
    if (u.startsWith(BASE)) {
        const body = init && init.body ? String(init.body) : '';
        const grant = new URLSearchParams(body).get('grant_type');
        tokenCalls.push({ path: new URL(u).pathname, grant, status: res.status });
    }
    return res;
};

// --- the Client ID Metadata Document, over https -----------------------------------------
let documentUrl;
let documentFetches = 0;
let docServer;
const clientName = `MarketPulse desktop (MCP SDK, ${MODE})`;
const clientMetadata = {
    client_name: clientName,
    redirect_uris: [cb.url],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
    scope: 'mcp:call',
};
if (MODE === 'cimd') {
    docServer = https.createServer({ cert: fs.readFileSync(env('SIGNIN_CERT')), key: fs.readFileSync(env('SIGNIN_KEY')) },
        (req, res) => {
            if (req.url !== '/clients/marketpulse-desktop.json') {
                res.writeHead(404).end();
                return;
            }
            documentFetches++;
            res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=300' });
            res.end(JSON.stringify({ client_id: documentUrl, ...clientMetadata }));
        });
    await new Promise((r) => docServer.listen(0, '127.0.0.1', r));
    documentUrl = `https://127.0.0.1:${docServer.address().port}/clients/marketpulse-desktop.json`;
    info(`${T} client ID metadata document at ${documentUrl}`);
}

// --- the SDK's OAuthClientProvider: what a desktop app would keep ----------------------------
class Provider {
    constructor() {
        this.info = undefined;
        this.saved = undefined;
        this.verifier = undefined;
        this.redirects = [];
        this.saves = 0;
        this.invalidated = [];
        this.sentState = undefined;
        this.signedIn = undefined; // the browser's sign-in under way: resolves with the callback URL
        this.pages = [];
    }
    get redirectUrl() { return cb.url; }
    get clientMetadata() { return clientMetadata; }
    get clientMetadataUrl() { return documentUrl; }
    state() {
        this.sentState = crypto.randomBytes(16).toString('base64url');
        return this.sentState;
    }
    clientInformation() { return this.info; }
    saveClientInformation(info) { this.info = info; }
    tokens() { return this.saved; }
    saveTokens(tokens) {
        this.saves++;
        this.saved = tokens;
    }
    saveCodeVerifier(v) { this.verifier = v; }
    codeVerifier() { return this.verifier; }
    invalidateCredentials(scope) {
        this.invalidated.push(scope);
        if (scope === 'all' || scope === 'tokens') this.saved = undefined;
        if (scope === 'all' || scope === 'client') this.info = undefined;
        if (scope === 'all' || scope === 'verifier') this.verifier = undefined;
    }
    redirectToAuthorization(url) {
        this.redirects.push(url);
        const seen = [];
        this.pages = seen;
        this.signedIn = signIn(browser, url.href, {
            base: BASE, callback: cb.url, user: USER, password: PASSWORD, idp: IDP, remember: true,
            shots, label: `mcp-${MODE}-${this.redirects.length}`, seen,
        }).then(() => cb.next());
        this.signedIn.catch(() => {}); // awaited below
    }
}
const provider = new Provider();
const transportFor = () => new StreamableHTTPClientTransport(MCP_URL, { authProvider: provider, fetch: sdkFetch });

// connect: as an app does: connect; when the SDK says a sign-in is needed,
// wait for the browser's redirect, finishAuth, connect again
async function connect(what) {
    let transport = transportFor();
    let client = new Client({ name: 'marketpulse-desktop', version: '1.0.0' });
    try {
        await client.connect(transport);
        return client;
    } catch (e) {
        if (!(e instanceof UnauthorizedError)) throw e;
    }
    info(`${T} ${what}: the SDK sent the browser to ${provider.redirects.at(-1)}`);
    const back = await provider.signedIn;
    info(`${T} ${what}: pages in the browser: ${provider.pages.join(' -> ')}`);
    await finish(what, back, transport);
    transport = transportFor();
    client = new Client({ name: 'marketpulse-desktop', version: '1.0.0' });
    await client.connect(transport);
    return client;
}

async function finish(what, back, transport) {
    expectEq(`${T} ${what}: back at the SDK's redirect_uri with its state`, provider.sentState, back.searchParams.get('state'));
    expectEq(`${T} ${what}: iss is Mandate's (RFC 9207)`, BASE, back.searchParams.get('iss'));
    expect(`${T} ${what}: a code, no error`, back.searchParams.get('code') && !back.searchParams.get('error'), back.href);
    await transport.finishAuth(back.searchParams.get('code'));
    ok(`${T} ${what}: the SDK redeemed the code (finishAuth)`);
}

async function callTool(client) {
    const result = await client.callTool({ name: 'check_market_holidays', arguments: { country_code: 'US', days_ahead: 7 } });
    return JSON.stringify(result);
}

let jwks;
async function checkClaims(what, token) {
    if (!jwks) {
        const meta = await (await realFetch(`${BASE}/.well-known/oauth-authorization-server`)).json();
        jwks = jose.createRemoteJWKSet(new URL(meta.jwks_uri));
    }
    try {
        const { payload, protectedHeader } = await jose.jwtVerify(token, jwks, { issuer: BASE, audience: RESOURCE });
        ok(`${T} ${what}: jose verifies the access token (Mandate's JWKS, iss, aud = the resource ${RESOURCE})`);
        info(`${T} header ${JSON.stringify(protectedHeader)} claims ${JSON.stringify(payload)}`);
        expectEq(`${T} ${what}: sub is the mapped user`, SUB, payload.sub);
        expectEq(`${T} ${what}: client_id is the MCP client's`, provider.info && provider.info.client_id, payload.client_id);
        expectEq(`${T} ${what}: idp is the IdP's issuer (entityID)`, IDP_CLAIM, payload.idp);
        expect(`${T} ${what}: scope holds mcp:call`, String(payload.scope || '').split(' ').includes('mcp:call'), payload.scope);
        return payload;
    } catch (e) {
        fail(`${T} ${what}: jose verifies the access token`, e.message);
        return {};
    }
}

// SIGNIN_STEPS=signin: the steps after the first sign-in are skipped
class Finished extends Error {}

let client;
try {
    // --- 1. sign in, call a tool ----------------------------------------------------------
    const probe = await realFetch(MCP_URL, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{}' });
    expectEq(`${T} the gateway without a token: 401`, 401, probe.status);
    expect(`${T} with resource_metadata in WWW-Authenticate`, /resource_metadata="/.test(probe.headers.get('www-authenticate') || ''), probe.headers.get('www-authenticate'));

    client = await connect('first sign-in');
    ok(`${T} connected through the gateway after signing in`);
    expectEq(`${T} one sign-in in the browser`, 1, provider.redirects.length);
    const asked = provider.redirects[0];
    expectEq(`${T} the authorization request is Mandate's`, `${BASE}/oauth2/authorize`, `${asked.origin}${asked.pathname}`);
    expectEq(`${T} PKCE S256`, 'S256', asked.searchParams.get('code_challenge_method'));
    expectEq(`${T} resource (RFC 8707) is the MCP server's`, RESOURCE, asked.searchParams.get('resource'));
    expect(`${T} the browser passed the IdP's login page and Mandate's consent page`,
        (provider.pages.includes('idp-login') || provider.pages.includes('saml-login'))
        && provider.pages.includes('mandate-consent'), provider.pages.join(' -> '));
    if (MODE === 'cimd') {
        expectEq(`${T} client_id is the document's URL`, documentUrl, provider.info && provider.info.client_id);
        expect(`${T} Mandate fetched the document`, documentFetches >= 1, `${documentFetches} fetches`);
        expect(`${T} no registration`, !tokenCalls.some((c) => c.path.endsWith('/register')), JSON.stringify(tokenCalls));
    } else {
        expect(`${T} registered dynamically (RFC 7591)`, tokenCalls.some((c) => c.path === '/oauth2/register' && c.status === 201), JSON.stringify(tokenCalls));
        expect(`${T} a client_id from the registration, no secret`, provider.info && provider.info.client_id && !provider.info.client_secret,
            JSON.stringify(provider.info));
    }
    const tools = await client.listTools();
    expect(`${T} tools/list has check_market_holidays`, tools.tools.some((t) => t.name === 'check_market_holidays'), JSON.stringify(tools));
    let out = await callTool(client);
    expect(`${T} tools/call: Presidents' Day 2026`, out.includes('2026-02-16'), out);
    const first = provider.tokens();
    expect(`${T} a refresh token (mrt_)`, first && String(first.refresh_token).startsWith('mrt_'), JSON.stringify(first && Object.keys(first)));
    const c1 = await checkClaims('first token', first.access_token);
    if (STEPS === 'signin') throw new Finished();

    // --- 2. the access token expires: the SDK refreshes ------------------------------------
    const wait = (c1.exp || 0) * 1000 - Date.now() + 1500;
    info(`${T} waiting ${Math.max(0, wait)} ms for the access token to expire (exp ${c1.exp})`);
    await sleep(Math.max(0, wait));
    const expired = await realFetch(MCP_URL, { method: 'POST', headers: { authorization: `Bearer ${first.access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{"jsonrpc":"2.0","id":99,"method":"tools/list"}' });
    expectEq(`${T} the expired token: 401 at the gateway`, 401, expired.status);
    const savesBefore = provider.saves;
    out = await callTool(client);
    expect(`${T} after expiry, tools/call works again`, out.includes('2026-02-16'), out);
    expectEq(`${T} without a new sign-in`, 1, provider.redirects.length);
    expect(`${T} the SDK refreshed (grant_type=refresh_token, 200)`,
        tokenCalls.some((c) => c.grant === 'refresh_token' && c.status === 200), JSON.stringify(tokenCalls));
    const second = provider.tokens();
    expect(`${T} new tokens saved`, provider.saves > savesBefore && second.access_token !== first.access_token, `${provider.saves} saves`);
    expect(`${T} the refresh token rotated`, second.refresh_token && second.refresh_token !== first.refresh_token, 'same refresh token');
    const c2 = await checkClaims('refreshed token', second.access_token);
    expect(`${T} the refreshed token lives on`, c2.exp > c1.exp, `${c2.exp} <= ${c1.exp}`);

    // --- 3. the family is revoked: a new sign-in ------------------------------------------
    if (REVOKE === 'user') {
        const answer = await ask(`revoke-user ${SUB}`);
        expectEq(`${T} mandatectl user revoke ${SUB}: exit 0`, '0', answer);
    } else {
        const meta = await (await realFetch(`${BASE}/.well-known/oauth-authorization-server`)).json();
        const res = await realFetch(meta.revocation_endpoint, {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: new URLSearchParams({ token: second.refresh_token, token_type_hint: 'refresh_token', client_id: provider.info.client_id }).toString(),
        });
        expectEq(`${T} RFC 7009 revocation of the refresh token by its public client: 200`, 200, res.status);
        if (res.status !== 200) {
            info(`${T} revocation answered ${res.status} ${await res.text()}: revoking with mandatectl user revoke instead`);
            expectEq(`${T} mandatectl user revoke ${SUB}: exit 0`, '0', await ask(`revoke-user ${SUB}`));
        }
    }
    await sleep(1200); // the gateway's view of revocations
    const now = await realFetch(MCP_URL, { method: 'POST', headers: { authorization: `Bearer ${second.access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{"jsonrpc":"2.0","id":98,"method":"tools/list"}' });
    info(`${T} the family's unexpired access token after the revocation: ${now.status} at the gateway`);
    const wait2 = (c2.exp || 0) * 1000 - Date.now() + 1500;
    if (wait2 > 0) await sleep(wait2);
    const refreshesBefore = tokenCalls.filter((c) => c.grant === 'refresh_token').length;
    let needed = false;
    try {
        out = await callTool(client);
        fail(`${T} after the revocation, the SDK cannot go on without a sign-in`, `the call worked: ${out.slice(0, 200)}`);
    } catch (e) {
        needed = e instanceof UnauthorizedError;
        expect(`${T} after the revocation, the SDK needs a sign-in (UnauthorizedError)`, needed, e.stack);
    }
    const refused = tokenCalls.filter((c) => c.grant === 'refresh_token').slice(refreshesBefore);
    expect(`${T} its refresh was refused (400)`, refused.length >= 1 && refused.every((c) => c.status === 400), JSON.stringify(refused));
    expect(`${T} the SDK dropped its tokens`, provider.invalidated.includes('tokens') || provider.invalidated.includes('all'), JSON.stringify(provider.invalidated));
    expectEq(`${T} and sent the browser to sign in again`, 2, provider.redirects.length);
    if (needed && provider.redirects.length === 2) {
        const back = await provider.signedIn;
        info(`${T} second sign-in: pages in the browser: ${provider.pages.join(' -> ')}`);
        if (REVOKE === 'user') {
            expect(`${T} the broker's session ended with the revocation: not straight back to the client`,
                provider.pages[0] !== 'callback', provider.pages.join(' -> '));
        }
        const transport = transportFor();
        await finish('second sign-in', back, transport);
        await client.close().catch(() => {});
        client = new Client({ name: 'marketpulse-desktop', version: '1.0.0' });
        await client.connect(transportFor());
        out = await callTool(client);
        expect(`${T} signed in again, tools/call works`, out.includes('2026-02-16'), out);
        await checkClaims('token after the new sign-in', provider.tokens().access_token);
    }
} catch (e) {
    if (!(e instanceof Finished)) fail(`${T} the MCP SDK's sign-in`, e.stack || String(e));
} finally {
    await client?.close().catch(() => {});
    await browser.close().catch(() => {});
    cb.close();
    if (docServer) {
        docServer.closeAllConnections();
        docServer.close();
    }
}
done();
