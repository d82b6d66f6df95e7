// The MCP TypeScript SDK (@modelcontextprotocol/sdk) pointed at the gateway
// of `examples/marketpulse/run --signin demo`, as the README tells a person
// to do, run by tests/interop/marketpulse-signin.sh: 401 from the gateway,
// Mandate found through the resource metadata, dynamic registration (open in
// the run script's config), the person signs in at the demo IdP in Debian's
// chromium (puppeteer-core) with the user and password the script printed,
// consents at Mandate, and the SDK calls check_market_holidays. Prints the
// access token as "@token TOKEN" for the shell's own call through the
// gateway.
//
// Protocol: signin-browser.mjs ("ok:", "FAIL:", "# ..." lines, "@done").
// Environment: SIGNIN_BASE (Mandate), SIGNIN_MCP_URL (the gateway's /mcp),
// SIGNIN_USER, SIGNIN_PASSWORD, SIGNIN_SHOTS (a folder for screenshots).
import { ok, fail, info, expect, expectEq, done, env, setUp, signIn } from './signin-browser.mjs';

const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
const { UnauthorizedError } = await import('@modelcontextprotocol/sdk/client/auth.js');

const BASE = env('SIGNIN_BASE');
const MCP_URL = new URL(env('SIGNIN_MCP_URL'));
const { shots, cb, browser } = await setUp();

const provider = {
    info: undefined, saved: undefined, verifier: undefined, sentState: undefined,
    signedIn: undefined, seen: [], redirects: [],
    get redirectUrl() { return cb.url; },
    get clientMetadata() {
        return {
            client_name: 'MarketPulse quick start (MCP SDK)', redirect_uris: [cb.url],
            grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
            token_endpoint_auth_method: 'none', scope: 'mcp:call',
        };
    },
    state() { this.sentState = `st-${Date.now()}`; return this.sentState; },
    clientInformation() { return this.info; },
    saveClientInformation(i) { this.info = i; },
    tokens() { return this.saved; },
    saveTokens(t) { this.saved = t; },
    saveCodeVerifier(v) { this.verifier = v; },
    codeVerifier() { return this.verifier; },
    invalidateCredentials() {},
    redirectToAuthorization(url) {
        this.redirects.push(url);
        this.signedIn = signIn(browser, url.href, {
            base: BASE, callback: cb.url, user: env('SIGNIN_USER'), password: env('SIGNIN_PASSWORD'),
            shots, label: 'quickstart', seen: this.seen,
        });
    },
};

let client;
try {
    const transport = new StreamableHTTPClientTransport(MCP_URL, { authProvider: provider });
    client = new Client({ name: 'marketpulse-quickstart', version: '1.0.0' });
    let needed = false;
    try {
        await client.connect(transport);
    } catch (e) {
        if (!(e instanceof UnauthorizedError)) throw e;
        needed = true;
    }
    expect('the SDK was sent to sign in', needed && provider.redirects.length === 1, `${provider.redirects.length} redirects`);
    const asked = provider.redirects[0];
    expectEq("the authorization request is Mandate's", `${BASE}/oauth2/authorize`, `${asked.origin}${asked.pathname}`);
    expectEq("resource is the gateway's /mcp", MCP_URL.href, asked.searchParams.get('resource'));
    expect('the SDK registered itself (no secret)', provider.info && provider.info.client_id && !provider.info.client_secret,
        JSON.stringify(provider.info));
    const back = await provider.signedIn;
    info(`pages in the browser: ${provider.seen.join(' -> ')}`);
    expect("the browser passed the demo IdP's login page and Mandate's consent page",
        provider.seen.includes('idp-login') && provider.seen.includes('mandate-consent'), provider.seen.join(' -> '));
    expectEq('back at the redirect_uri with its state', provider.sentState, back.searchParams.get('state'));
    expectEq("iss is Mandate's (RFC 9207)", BASE, back.searchParams.get('iss'));
    await transport.finishAuth(back.searchParams.get('code'));
    ok('the SDK redeemed the code');
    client = new Client({ name: 'marketpulse-quickstart', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(MCP_URL, { authProvider: provider }));
    ok('connected through the gateway after signing in');
    const result = await client.callTool({ name: 'check_market_holidays', arguments: { country_code: 'US', days_ahead: 365 } });
    const out = JSON.stringify(result);
    expect('tools/call check_market_holidays answers holidays', !result.isError && out.includes('holidays'), out.slice(0, 300));
    console.log(`@token ${provider.tokens().access_token}`);
} catch (e) {
    fail("the MCP SDK's sign-in", e.stack || String(e));
} finally {
    await client?.close().catch(() => {});
    await browser.close().catch(() => {});
    cb.close();
}
done();
