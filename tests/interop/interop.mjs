// Independent implementations against the real daemon: openid-client 5 is
// the client (discovery, client_secret_basic, client_secret_post,
// private_key_jwt) and jose 6 is the resource server's verifier (remote JWKS,
// RFC 9068 claims). Run by jose.sh, which starts the daemon and provisions
// the clients; this script never runs mandatectl itself.
//
// Protocol with jose.sh: every check prints one line, "ok: ..." or
// "FAIL: ...", which the shell counts; "# ..." is information. A line
// starting with "@" asks the shell for something and the answer comes back
// as one line on stdin:
//   @rotate ALG                    -> "rotated" once running daemons sign with it
//   @register LABEL PEM-FILE       -> "client ID", a client with that public key
//   @done                          -> (no answer) the last line
// Input, all from the environment (secrets never on a command line):
//   INTEROP_BASE, INTEROP_DIR (scratch folder for key files),
//   INTEROP_BASIC_ID, INTEROP_BASIC_SECRET, INTEROP_BASIC_TTL,
//   INTEROP_BASIC_TENANT, INTEROP_BASIC_RESOURCE (one of its audiences),
//   INTEROP_POST_ID, INTEROP_POST_SECRET, INTEROP_POST_TTL,
//   INTEROP_POST_TENANT, INTEROP_POST_RESOURCE (its only audience).
import { randomUUID, webcrypto } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

// jose 6 uses the global Web Crypto API, which Node 18 (Debian 12's
// nodejs) only exposes behind a flag.
if (globalThis.crypto === undefined) globalThis.crypto = webcrypto;
const jose = await import('jose');
const { Issuer, custom, errors: oidcErrors } = await import('openid-client');

const env = (name) => {
    const v = process.env[name];
    if (v === undefined || v === '') throw new Error(`${name} is not set`);
    return v;
};
const BASE = env('INTEROP_BASE');
const DIR = env('INTEROP_DIR');
// clientOf('BASIC'): the client jose.sh made, from INTEROP_BASIC_*
const clientOf = (name) => ({
    id: env(`INTEROP_${name}_ID`),
    secret: env(`INTEROP_${name}_SECRET`),
    ttl: Number(env(`INTEROP_${name}_TTL`)),
    tenant: env(`INTEROP_${name}_TENANT`),
    resource: env(`INTEROP_${name}_RESOURCE`),
});
const BASIC = clientOf('BASIC');
const POST = clientOf('POST');

// --- checks ------------------------------------------------------------------
let failed = 0;
const ok = (what) => console.log(`ok: ${what}`);
const fail = (what, why) => {
    failed++;
    console.log(`FAIL: ${what}${why === undefined ? '' : `: ${why}`}`);
};
const expect = (what, cond, why) => (cond ? ok(what) : fail(what, why));
const expectEq = (what, expected, actual) =>
    expect(what, Object.is(expected, actual),
        `expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
const describe = (e) => {
    if (e instanceof oidcErrors.OPError)
        return `${e.error}${e.error_description ? ` (${e.error_description})` : ''}` +
            (e.response ? ` [HTTP ${e.response.statusCode}]` : '');
    return `${e?.code ? `${e.code}: ` : ''}${e?.message ?? e}`;
};
// attempt: the promise must resolve; its value, or undefined after a FAIL
const attempt = async (what, fn) => {
    try {
        const v = await fn();
        ok(what);
        return v;
    } catch (e) {
        fail(what, describe(e));
        return undefined;
    }
};
// refused: the promise must reject, and the error satisfy test(e) (a string
// naming the mismatch, or true)
const refused = async (what, fn, test) => {
    let v;
    try {
        v = await fn();
    } catch (e) {
        const verdict = test(e);
        return verdict === true ? ok(what) : fail(what, `${verdict}; got ${describe(e)}`);
    }
    fail(what, `accepted: ${JSON.stringify(v)?.slice(0, 200)}`);
};
const joseCode = (code) => (e) => e?.code === code || `expected ${code}`;

// --- talking to the shell ----------------------------------------------------
const stdin = createInterface({ input: process.stdin, terminal: false })[Symbol.asyncIterator]();
const ask = async (request) => {
    console.log(`@${request}`);
    const { value, done } = await stdin.next();
    if (done) throw new Error(`no answer from the shell to "@${request}"`);
    return value;
};

// --- helpers -------------------------------------------------------------------
const decodePart = (token, i) =>
    JSON.parse(Buffer.from(token.split('.')[i], 'base64url').toString('utf8'));
const remoteJWKS = (uri, options) => jose.createRemoteJWKSet(new URL(uri), options);

// A raw token request with fetch: status, headers and the parsed body.
const postToken = async (url, params, headers = {}) => {
    const r = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body: new URLSearchParams(params),
        signal: AbortSignal.timeout(5000),
    });
    let body;
    try {
        body = await r.json();
    } catch {
        body = undefined;
    }
    return { status: r.status, headers: r.headers, body };
};

// Verifies an access token the way an RFC 9068 resource server would and
// checks Mandate's claims; returns the payload and header, or undefined.
async function verifyAccessToken(label, token, jwks, want) {
    const result = await attempt(`${label}: jose jwtVerify (remote JWKS, ${want.alg})`, () =>
        jose.jwtVerify(token, jwks, {
            issuer: BASE,
            audience: want.audience,
            typ: 'at+jwt',
            algorithms: [want.alg],
            requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat', 'jti', 'client_id'],
        }),
    );
    if (result === undefined) return undefined;
    const { payload: p, protectedHeader: h } = result;
    expectEq(`${label}: header typ`, 'at+jwt', h.typ);
    expectEq(`${label}: header alg`, want.alg, h.alg);
    expect(`${label}: header kid`, typeof h.kid === 'string' && h.kid.length > 0, JSON.stringify(h));
    expectEq(`${label}: sub`, want.clientId, p.sub);
    expectEq(`${label}: client_id`, want.clientId, p.client_id);
    expectEq(`${label}: aud`, want.audience, p.aud);
    expectEq(`${label}: scope`, want.scope, p.scope);
    expectEq(`${label}: tenant`, want.tenant, p.tenant);
    expectEq(`${label}: exp - iat is the lifetime`, want.ttl, p.exp - p.iat);
    if (want.expiresIn !== undefined)
        expectEq(`${label}: exp - iat == expires_in`, want.expiresIn, p.exp - p.iat);
    if (want.expiresAt !== undefined)
        expect(`${label}: exp agrees with the response's expires_in`,
            Math.abs(want.expiresAt - p.exp) <= 1,
            `exp ${p.exp}, now + expires_in ${want.expiresAt}`);
    expect(`${label}: jti`, typeof p.jti === 'string' && p.jti.length > 0, JSON.stringify(p.jti));
    return result;
}

// =============================================================================
// 1. discovery
custom.setHttpOptionsDefaults({ timeout: 5000 });
// RFC 8414 only (issue 24): Mandate issues no id_token and serves no OpenID
// Connect discovery document, so that no OIDC client takes it for a provider
let oidcIssuer;
try {
    oidcIssuer = await Issuer.discover(BASE);
} catch (e) {
    oidcIssuer = undefined;
}
expect('openid-client finds no OpenID provider at BASE (no openid-configuration)',
    oidcIssuer === undefined, oidcIssuer && JSON.stringify(oidcIssuer.metadata));
const issuer = await attempt('openid-client Issuer.discover(BASE/.well-known/oauth-authorization-server)',
    () => Issuer.discover(`${BASE}/.well-known/oauth-authorization-server`));
if (issuer === undefined) {
    console.log('@done');
    process.exit(1);
}
const meta = issuer.metadata;
expectEq('discovery: issuer is BASE', BASE, meta.issuer);
expectEq('discovery: token_endpoint', `${BASE}/oauth2/token`, meta.token_endpoint);
expectEq('discovery: jwks_uri', `${BASE}/oauth2/jwks`, meta.jwks_uri);
for (const m of ['client_secret_basic', 'client_secret_post', 'private_key_jwt'])
    expect(`discovery: token_endpoint_auth_methods_supported has ${m}`,
        meta.token_endpoint_auth_methods_supported?.includes(m),
        JSON.stringify(meta.token_endpoint_auth_methods_supported));
expect('discovery: grant_types_supported has client_credentials',
    meta.grant_types_supported?.includes('client_credentials'),
    JSON.stringify(meta.grant_types_supported));
const TOKEN_URL = meta.token_endpoint;
const JWKS_URI = meta.jwks_uri;

// One long-lived remote set, as a resource server keeps: it must pick up new
// keys by refetching on an unknown kid (no cooldown, so it refetches at once).
const sharedJWKS = remoteJWKS(JWKS_URI, { cooldownDuration: 0 });

// =============================================================================
// 2. client credentials through openid-client, verified by jose
const basicClient = new issuer.Client({
    client_id: BASIC.id,
    client_secret: BASIC.secret,
    token_endpoint_auth_method: 'client_secret_basic',
});
const postClient = new issuer.Client({
    client_id: POST.id,
    client_secret: POST.secret,
    token_endpoint_auth_method: 'client_secret_post',
});

// A token for the basic client with scope and resource; header alg expected
async function basicToken(label, alg) {
    const ts = await attempt(`${label}: openid-client grant (client_secret_basic, scope, resource)`,
        () => basicClient.grant({
            grant_type: 'client_credentials',
            scope: 'mcp:call',
            resource: BASIC.resource,
        }));
    if (ts === undefined) return undefined;
    expectEq(`${label}: token_type`, 'bearer', String(ts.token_type).toLowerCase());
    expectEq(`${label}: granted scope`, 'mcp:call', ts.scope);
    return { token: ts.access_token, alg, expiresAt: ts.expires_at };
}

const first = await basicToken('basic', 'ES256');
let basicVerified;
if (first !== undefined)
    basicVerified = await verifyAccessToken('basic', first.token, remoteJWKS(JWKS_URI), {
        alg: 'ES256', audience: BASIC.resource, clientId: BASIC.id, scope: 'mcp:call',
        tenant: BASIC.tenant, ttl: BASIC.ttl, expiresAt: first.expiresAt,
    });
if (basicVerified !== undefined)
    await attempt('basic: the long-lived remote JWKS set verifies it too', () =>
        jose.jwtVerify(first.token, sharedJWKS, { issuer: BASE, audience: BASIC.resource }));

const postTs = await attempt('post: openid-client grant (client_secret_post, scope, resource)', () =>
    postClient.grant({
        grant_type: 'client_credentials',
        scope: 'gateway:invoke',
        resource: POST.resource,
    }));
if (postTs !== undefined) {
    expectEq('post: granted scope', 'gateway:invoke', postTs.scope);
    await verifyAccessToken('post', postTs.access_token, remoteJWKS(JWKS_URI), {
        alg: 'ES256', audience: POST.resource, clientId: POST.id, scope: 'gateway:invoke',
        tenant: POST.tenant, ttl: POST.ttl, expiresAt: postTs.expires_at,
    });
}

// The token response itself, by hand, for the exact expires_in
{
    const basic = Buffer.from(`${BASIC.id}:${BASIC.secret}`).toString('base64');
    const r = await postToken(TOKEN_URL,
        { grant_type: 'client_credentials', resource: BASIC.resource },
        { authorization: `Basic ${basic}` });
    expectEq('raw: token response status', 200, r.status);
    expectEq('raw: Cache-Control no-store', 'no-store', r.headers.get('cache-control'));
    if (r.body?.access_token !== undefined)
        await verifyAccessToken('raw', r.body.access_token, remoteJWKS(JWKS_URI), {
            alg: 'ES256', audience: BASIC.resource, clientId: BASIC.id,
            scope: 'gateway:invoke', tenant: BASIC.tenant, ttl: BASIC.ttl,
            expiresIn: r.body.expires_in,
        });
}

// Errors reach openid-client as OAuth errors (RFC 6749 section 5.2)
const opError = (error, status) => (e) =>
    (e instanceof oidcErrors.OPError && e.error === error && e.response?.statusCode === status) ||
    `expected OPError ${error} with HTTP ${status}`;
await refused('openid-client: a wrong secret is invalid_client', () =>
    new issuer.Client({ client_id: BASIC.id, client_secret: 'wrong-secret' })
        .grant({ grant_type: 'client_credentials' }), opError('invalid_client', 401));
await refused('openid-client: a scope not allowed is invalid_scope', () =>
    basicClient.grant({ grant_type: 'client_credentials', scope: 'trading:execute' }),
    opError('invalid_scope', 400));
await refused('openid-client: a resource not allowed is invalid_target', () =>
    basicClient.grant({ grant_type: 'client_credentials', resource: 'https://evil.example/' }),
    opError('invalid_target', 400));

// =============================================================================
// 3. negative interop: jose must refuse these
if (first !== undefined) {
    const [h, p, s] = first.token.split('.');
    const claims = decodePart(first.token, 1);
    const forged = Buffer.from(JSON.stringify({ ...claims, scope: 'mcp:call admin' })).toString('base64url');
    await refused('jose refuses a token whose payload was tampered with', () =>
        jose.jwtVerify(`${h}.${forged}.${s}`, remoteJWKS(JWKS_URI), { issuer: BASE }),
        joseCode('ERR_JWS_SIGNATURE_VERIFICATION_FAILED'));
    const none = Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url');
    await refused('jose refuses the same claims with alg none', () =>
        jose.jwtVerify(`${none}.${p}.`, remoteJWKS(JWKS_URI), { issuer: BASE }),
        (e) => e instanceof jose.errors.JOSEError || 'expected a JOSEError');
    await refused('jose refuses an ES256 token when only RS256 is allowed', () =>
        jose.jwtVerify(first.token, remoteJWKS(JWKS_URI), { algorithms: ['RS256'] }),
        joseCode('ERR_JOSE_ALG_NOT_ALLOWED'));
    await refused('jose refuses it for another issuer', () =>
        jose.jwtVerify(first.token, remoteJWKS(JWKS_URI), { issuer: 'https://other.example' }),
        (e) => (e.code === 'ERR_JWT_CLAIM_VALIDATION_FAILED' && e.claim === 'iss') ||
            'expected an iss claim failure');
}
if (postTs !== undefined)
    await refused(`jose refuses a token with aud ${POST.resource} for audience ${BASIC.resource}`, () =>
        jose.jwtVerify(postTs.access_token, remoteJWKS(JWKS_URI),
            { issuer: BASE, audience: BASIC.resource, typ: 'at+jwt' }),
        (e) => (e.code === 'ERR_JWT_CLAIM_VALIDATION_FAILED' && e.claim === 'aud') ||
            'expected an aud claim failure');

// =============================================================================
// 4. key rotation: ES256 (made at init), then RS256, then EdDSA, then a fresh
// ES256 key. Tokens signed before a rotation still verify after it.
const held = first !== undefined ? [first] : [];
let lastKid = first !== undefined ? decodePart(first.token, 0).kid : undefined;
const kids = new Set(lastKid ? [lastKid] : []);
let signingAlg = 'ES256';
for (const alg of ['RS256', 'EdDSA', 'ES256']) {
    const label = `rotation to ${alg}`;
    const answer = await ask(`rotate ${alg}`);
    if (answer !== 'rotated') {
        fail(`${label}: the shell rotated the key`, answer);
        continue;
    }
    signingAlg = alg;
    const t = await basicToken(label, alg);
    if (t === undefined) continue;
    const header = decodePart(t.token, 0);
    expectEq(`${label}: new tokens carry alg ${alg}`, alg, header.alg);
    expect(`${label}: the kid changed`, header.kid !== lastKid && !kids.has(header.kid),
        `kid ${header.kid} was seen before`);
    kids.add(header.kid);
    lastKid = header.kid;
    await verifyAccessToken(label, t.token, remoteJWKS(JWKS_URI), {
        alg, audience: BASIC.resource, clientId: BASIC.id, scope: 'mcp:call',
        tenant: BASIC.tenant, ttl: BASIC.ttl, expiresAt: t.expiresAt,
    });
    await attempt(`${label}: the long-lived remote set refetches on the unknown kid`, () =>
        jose.jwtVerify(t.token, sharedJWKS, {
            issuer: BASE, audience: BASIC.resource, typ: 'at+jwt', algorithms: [alg],
        }));
    for (const old of held) {
        const oldKid = decodePart(old.token, 0).kid;
        await attempt(`${label}: a token signed before it (${old.alg}, kid ${oldKid.slice(0, 8)}…) still verifies`,
            () => jose.jwtVerify(old.token, remoteJWKS(JWKS_URI), {
                issuer: BASE, audience: BASIC.resource, typ: 'at+jwt', algorithms: [old.alg],
            }));
    }
    held.push(t);
}

// =============================================================================
// 5. private_key_jwt (RFC 7523) with keys made by jose
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const assertionFor = (clientId, key, alg, aud = TOKEN_URL) =>
    new jose.SignJWT({})
        .setProtectedHeader({ alg, typ: 'JWT' })
        .setIssuer(clientId)
        .setSubject(clientId)
        .setAudience(aud)
        .setJti(randomUUID())
        .setIssuedAt()
        .setExpirationTime('60s')
        .sign(key);
const assertionGrant = (assertion, clientId) => postToken(TOKEN_URL, {
    grant_type: 'client_credentials',
    ...(clientId !== undefined ? { client_id: clientId } : {}),
    client_assertion_type: ASSERTION_TYPE,
    client_assertion: assertion,
    scope: 'mcp:call',
    resource: BASIC.resource,
});
const isInvalidClient = (r) => r.status === 401 && r.body?.error === 'invalid_client';

let esClient; // the ES256 client, its id and key pair, for openid-client below
for (const alg of ['ES256', 'RS256', 'EdDSA']) {
    const label = `private_key_jwt with an ${alg} key`;
    const pair = await attempt(`${label}: jose generateKeyPair`, () =>
        jose.generateKeyPair(alg, { extractable: true }));
    if (pair === undefined) continue;
    const pem = join(DIR, `client-${alg}.pem`);
    writeFileSync(pem, await jose.exportSPKI(pair.publicKey));
    const answer = await ask(`register ${alg} ${pem}`);
    const clientId = answer.startsWith('client ') ? answer.slice(7) : undefined;
    if (clientId === undefined) {
        fail(`${label}: the shell registered the public key`, answer);
        continue;
    }
    if (alg === 'ES256') esClient = { id: clientId, ...pair };

    const assertion = await assertionFor(clientId, pair.privateKey, alg);
    const r = await assertionGrant(assertion, clientId);
    expectEq(`${label}: token endpoint accepts the assertion`, 200, r.status);
    if (r.body?.access_token !== undefined)
        await verifyAccessToken(label, r.body.access_token, remoteJWKS(JWKS_URI), {
            alg: signingAlg, audience: BASIC.resource, clientId, scope: 'mcp:call',
            tenant: BASIC.tenant, ttl: 3600, expiresIn: r.body.expires_in,
        });
    const again = await assertionGrant(assertion, clientId);
    expect(`${label}: the same assertion again is refused (replay): 401 invalid_client`,
        isInvalidClient(again), `HTTP ${again.status} ${JSON.stringify(again.body)}`);
    const other = await jose.generateKeyPair(alg, { extractable: true });
    const wrong = await assertionGrant(await assertionFor(clientId, other.privateKey, alg), clientId);
    expect(`${label}: an assertion signed by another key is refused: 401 invalid_client`,
        isInvalidClient(wrong), `HTTP ${wrong.status} ${JSON.stringify(wrong.body)}`);
}

if (esClient !== undefined) {
    const label = 'private_key_jwt with an ES256 key';
    // RFC 7523: client_id may be left out; the assertion's sub names the client
    const r = await assertionGrant(await assertionFor(esClient.id, esClient.privateKey, 'ES256'));
    expectEq(`${label}: without client_id in the form`, 200, r.status);
    // aud may be the issuer instead of the token endpoint
    const r2 = await assertionGrant(
        await assertionFor(esClient.id, esClient.privateKey, 'ES256', BASE), esClient.id);
    expectEq(`${label}: aud the issuer identifier`, 200, r2.status);
    const r3 = await assertionGrant(
        await assertionFor(esClient.id, esClient.privateKey, 'ES256', 'https://other.example/token'),
        esClient.id);
    expect(`${label}: aud naming another server is refused`, isInvalidClient(r3),
        `HTTP ${r3.status} ${JSON.stringify(r3.body)}`);

    // openid-client's own private_key_jwt: it signs with the client's JWKS
    const jwk = { ...(await jose.exportJWK(esClient.privateKey)), alg: 'ES256', use: 'sig', kid: 'interop-1' };
    const pkClient = new issuer.Client({
        client_id: esClient.id,
        token_endpoint_auth_method: 'private_key_jwt',
        token_endpoint_auth_signing_alg: 'ES256',
    }, { keys: [jwk] });
    for (const n of [1, 2]) {
        const ts = await attempt(`openid-client private_key_jwt grant #${n}`, () =>
            pkClient.grant({ grant_type: 'client_credentials', scope: 'mcp:call', resource: BASIC.resource }));
        if (ts !== undefined)
            await verifyAccessToken(`openid-client private_key_jwt #${n}`, ts.access_token,
                remoteJWKS(JWKS_URI), {
                    alg: signingAlg, audience: BASIC.resource, clientId: esClient.id, scope: 'mcp:call',
                    tenant: BASIC.tenant, ttl: 3600, expiresAt: ts.expires_at,
                });
    }
}

console.log(`# node: ${failed} check(s) failed`);
console.log('@done');
process.exitCode = failed === 0 ? 0 : 1;
