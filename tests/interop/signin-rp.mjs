// openid-client (npm, not ours) as a generic OAuth relying party of Mandate,
// run by tests/interop/signin.sh: discovery (RFC 8414), the authorization
// code flow with PKCE S256 and RFC 8707 resource, a person signing in in
// Debian's chromium, RFC 9207 iss checked by openid-client itself (a wrong
// or missing iss refused before the code is spent), the code redeemed with
// client_secret_basic, then refresh: rotation, and a rotated refresh token
// presented again ends the family (RFC 9700 §4.14.2).
//
// Protocol: signin-browser.mjs. Environment: SIGNIN_BASE, SIGNIN_CLIENT_ID,
// SIGNIN_CLIENT_SECRET (a confidential client registered with the redirect
// URI http://127.0.0.1/callback: any port, RFC 8252 §7.3), SIGNIN_USER,
// SIGNIN_PASSWORD, SIGNIN_IDP, SIGNIN_SUB, SIGNIN_RESOURCE, SIGNIN_SHOTS.
import { ok, fail, info, expect, expectEq, done, env, settings, setUp, signIn } from './signin-browser.mjs';

const { Issuer, generators, errors } = await import('openid-client');
const jose = await import('jose');

const { BASE, RESOURCE, SUB } = settings('SIGNIN');
const T = '[openid-client]';
const { shots, cb, browser } = await setUp();

try {
    // RFC 8414 only: Mandate issues no id_token and serves no OpenID
    // Connect discovery document (issue 24 point 13), and openid-client does
    // not fall back from the issuer's base URL
    const issuer = await Issuer.discover(`${BASE}/.well-known/oauth-authorization-server`);
    expectEq(`${T} discovery: the issuer`, BASE, issuer.issuer);
    expectEq(`${T} discovery: RFC 9207 advertised`, true, issuer.authorization_response_iss_parameter_supported);
    info(`${T} metadata: ${JSON.stringify(issuer.metadata)}`);
    const client = new issuer.Client({
        client_id: env('SIGNIN_CLIENT_ID'),
        client_secret: env('SIGNIN_CLIENT_SECRET'),
        redirect_uris: [cb.url],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
    });

    const verifier = generators.codeVerifier();
    const state = generators.state();
    const url = client.authorizationUrl({
        scope: 'mcp:call',
        resource: RESOURCE,
        state,
        code_challenge: generators.codeChallenge(verifier),
        code_challenge_method: 'S256',
    });
    const seen = [];
    await signIn(browser, url, {
        base: BASE, callback: cb.url, user: env('SIGNIN_USER'), password: env('SIGNIN_PASSWORD'),
        idp: env('SIGNIN_IDP'), shots, label: 'openid-client', seen,
    });
    info(`${T} pages in the browser: ${seen.join(' -> ')}`);
    const back = await cb.next();
    const params = client.callbackParams(back.href);
    const checks = { state, code_verifier: verifier };
    const exchangeBody = { resource: RESOURCE };

    // RFC 9207, checked by openid-client before the code is redeemed
    for (const [what, p] of [['another iss', { ...params, iss: 'https://idp.attacker.example' }], ['no iss', (({ iss, ...rest }) => rest)(params)]]) {
        try {
            await client.oauthCallback(cb.url, p, checks, { exchangeBody });
            fail(`${T} ${what} in the authorization response is refused`, 'accepted');
        } catch (e) {
            expect(`${T} ${what} in the authorization response is refused (RFC 9207)`,
                e instanceof errors.RPError && /iss/.test(e.message), e.message);
        }
    }
    try {
        await client.oauthCallback(cb.url, { ...params, state: 'tampered' }, checks, { exchangeBody });
        fail(`${T} a tampered state is refused`, 'accepted');
    } catch (e) {
        expect(`${T} a tampered state is refused`, /state/.test(e.message), e.message);
    }
    const tokens = await client.oauthCallback(cb.url, params, checks, { exchangeBody });
    ok(`${T} the code redeemed with PKCE and client_secret_basic`);
    expectEq(`${T} token_type Bearer`, 'bearer', String(tokens.token_type).toLowerCase());
    expect(`${T} a refresh token`, String(tokens.refresh_token || '').startsWith('mrt_'), JSON.stringify(Object.keys(tokens)));
    const claims = jose.decodeJwt(tokens.access_token);
    expectEq(`${T} aud is the resource`, RESOURCE, Array.isArray(claims.aud) ? claims.aud[0] : claims.aud);
    expectEq(`${T} sub is the mapped user`, SUB, claims.sub);
    expectEq(`${T} client_id`, env('SIGNIN_CLIENT_ID'), claims.client_id);

    // the code once more: refused
    try {
        await client.oauthCallback(cb.url, params, checks, { exchangeBody });
        fail(`${T} the code a second time is refused`, 'accepted');
    } catch (e) {
        expect(`${T} the code a second time is refused: invalid_grant`, e instanceof errors.OPError && e.error === 'invalid_grant', e.message);
    }
    // the family of that code was ended by its replay (RFC 9700): a new sign-in
    // (the broker's session and the remembered consent take it straight back)
    const verifier2 = generators.codeVerifier();
    const state2 = generators.state();
    const seen2 = [];
    await signIn(browser, client.authorizationUrl({
        scope: 'mcp:call', resource: RESOURCE, state: state2,
        code_challenge: generators.codeChallenge(verifier2), code_challenge_method: 'S256',
    }), { base: BASE, callback: cb.url, idp: env('SIGNIN_IDP'), user: env('SIGNIN_USER'), password: env('SIGNIN_PASSWORD'), shots, label: 'openid-client-again', seen: seen2 });
    info(`${T} second sign-in: pages in the browser: ${seen2.join(' -> ')}`);
    const back2 = await cb.next();
    const t1 = await client.oauthCallback(cb.url, client.callbackParams(back2.href), { state: state2, code_verifier: verifier2 }, { exchangeBody });
    ok(`${T} a second sign-in redeemed`);

    // refresh: rotation, reuse
    const t2 = await client.refresh(t1.refresh_token, { exchangeBody });
    ok(`${T} refresh: a new access token`);
    expect(`${T} refresh: rotated`, t2.refresh_token && t2.refresh_token !== t1.refresh_token, 'the same refresh token');
    expectEq(`${T} refresh: aud still the resource`, RESOURCE, jose.decodeJwt(t2.access_token).aud);
    const t3 = await client.refresh(t2.refresh_token, { exchangeBody });
    ok(`${T} refresh again with the rotated one`);
    try {
        await client.refresh(t1.refresh_token, { exchangeBody });
        fail(`${T} a used refresh token is refused`, 'accepted');
    } catch (e) {
        expect(`${T} a used refresh token is refused: invalid_grant`, e instanceof errors.OPError && e.error === 'invalid_grant', e.message);
    }
    try {
        await client.refresh(t3.refresh_token, { exchangeBody });
        fail(`${T} and its whole family ends: the newest is refused too`, 'accepted');
    } catch (e) {
        expect(`${T} and its whole family ends: the newest is refused too`, e instanceof errors.OPError && e.error === 'invalid_grant', e.message);
    }
} catch (e) {
    fail(`${T} the generic RP's sign-in`, e.stack || String(e));
} finally {
    await browser.close().catch(() => {});
    cb.close();
}
done();
