// An OpenID Connect provider on loopback for the oidc backend's tests: the
// npm package oidc-provider (not ours) with keys the test generates, plus
// the sign-in a browser would do, scripted, and forged tokens. One file,
// several commands:
//
//   keygen --kid KID [--alg RS256|ES256] --out FILE
//       a private JWK (with kid, alg, use "sig"); it stays in the test's folder
//   serve --keys FILE[,FILE...] --accounts FILE --secret S [--port N]
//       the provider at http://127.0.0.1:PORT (PORT 0: any free one; a restart
//       for a key rotation passes the same port, so the issuer stays the same).
//       The keys are published in that order at /jwks; the first one of an
//       algorithm signs. Clients: "mandate-broker" (authorization code with
//       PKCE, client_secret_basic; its id_tokens carry the account's claims)
//       and "reporting-service" (client credentials; JWT access tokens for the
//       resource urn:mandate:broker, whose "aud" is "mandate-broker").
//       Accounts: JSON {"alice": {"password": "...", "claims": {...}}}.
//       The sign-in: /interaction/UID answers JSON with the prompt; POST
//       login=&password= signs in; consent is granted to these first-party
//       clients. Prints "listening PORT"; every request is logged on stderr
//       as "request METHOD PATH" (the test counts /jwks fetches).
//   id-token --issuer URL --secret S --sub USER --password P [--scope S]
//       signs USER in through the authorization code flow (redirects and
//       cookies followed by hand, as a browser would), redeems the code and
//       prints the id_token
//   access-token --issuer URL --secret S [--scope S]
//       client credentials for reporting-service: prints the JWT access token
//   forge --key FILE --kind KIND --iss ISS --aud AUD --sub SUB [--claims JSON]
//         [--typ TYP] [--ttl SECONDS] [--kid KID] [--count N]
//       a token made here, not by the provider. KIND: valid (signed with
//       FILE's key and kid), expired (an hour ago), skew (10 s ago: within
//       the clock skew), nbf (not before an hour from now), aud (AUD
//       replaced by another audience), iss (ISS replaced by another issuer),
//       azp (AUD plus another audience, azp the other), none (alg "none", no
//       signature), hs256 (HMAC-SHA256 keyed with the public key's PEM, the
//       classic algorithm confusion), hs256-jwk (keyed with the public JWK
//       as JSON); --kid names another kid in the header than FILE's (random:
//       a new made-up one for each token); --count N prints N tokens
//
// Environment: OIDC_NPM_DIR, where node_modules is (the build tree's).
import fs from 'node:fs';
import crypto from 'node:crypto';
import { loopbackProvider, logErrors, announce } from './op-loopback.mjs';

const BROKER = 'mandate-broker';
const SERVICE = 'reporting-service';
const REDIRECT = 'http://127.0.0.1:9/callback'; // never contacted: the code is read from Location
const RESOURCE = 'urn:mandate:broker';

function args(argv) {
    const out = { _: [] };
    for (let i = 0; i < argv.length; i++) {
        if (argv[i].startsWith('--')) {
            const k = argv[i].slice(2);
            const v = i + 1 < argv.length && !argv[i + 1].startsWith('--') ? argv[++i] : 'true';
            out[k] = v;
        } else {
            out._.push(argv[i]);
        }
    }
    return out;
}

function die(msg) {
    process.stderr.write(`oidc-provider.mjs: ${msg}\n`);
    process.exit(1);
}

function need(a, k) {
    if (a[k] === undefined) die(`--${k} is required`);
    return a[k];
}

const b64u = (b) => Buffer.from(b).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

// --- keygen -------------------------------------------------------------------------
function keygen(a) {
    const alg = a.alg || 'RS256';
    let pair;
    if (alg === 'RS256') pair = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    else if (alg === 'ES256') pair = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    else die(`keygen: unknown alg ${alg}`);
    const jwk = { ...pair.privateKey.export({ format: 'jwk' }), kid: need(a, 'kid'), alg, use: 'sig' };
    fs.writeFileSync(need(a, 'out'), JSON.stringify(jwk) + '\n', { mode: 0o600 });
}

function readJwk(file) {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
}

function publicJwk(jwk) {
    const { d, p, q, dp, dq, qi, ...pub } = jwk;
    return pub;
}

// --- serve --------------------------------------------------------------------------
async function serve(a) {
    const keys = need(a, 'keys').split(',').map(readJwk);
    const accounts = JSON.parse(fs.readFileSync(need(a, 'accounts'), 'utf8'));
    const secret = need(a, 'secret');
    const { Provider, server, issuer } = await loopbackProvider(a.port);

    const provider = new Provider(issuer, {
        jwks: { keys },
        clients: [
            {
                client_id: BROKER,
                client_secret: secret,
                redirect_uris: [REDIRECT],
                grant_types: ['authorization_code'],
                response_types: ['code'],
                token_endpoint_auth_method: 'client_secret_basic',
                id_token_signed_response_alg: a['id-token-alg'] || 'RS256',
            },
            {
                client_id: SERVICE,
                client_secret: secret,
                redirect_uris: [],
                grant_types: ['client_credentials'],
                response_types: [],
                token_endpoint_auth_method: 'client_secret_basic',
                scope: 'reports:read reports:write',
            },
        ],
        claims: {
            openid: ['sub'],
            email: ['email', 'email_verified'],
            profile: ['name'],
            groups: ['groups'],
            org: ['org'],
        },
        scopes: ['openid', 'email', 'profile', 'groups', 'org', 'reports:read', 'reports:write'],
        conformIdTokenClaims: false, // the scopes' claims go into the id_token
        async findAccount(_ctx, id) {
            const acct = accounts[id];
            if (!acct) return undefined;
            return {
                accountId: id,
                async claims() {
                    return { sub: id, ...acct.claims };
                },
            };
        },
        // first-party clients: no consent screen
        async loadExistingGrant(ctx) {
            const grantId = ctx.oidc.result?.consent?.grantId
                || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
            if (grantId) return ctx.oidc.provider.Grant.find(grantId);
            const grant = new ctx.oidc.provider.Grant({
                clientId: ctx.oidc.client.clientId,
                accountId: ctx.oidc.session.accountId,
            });
            grant.addOIDCScope('openid email profile groups org');
            await grant.save();
            return grant;
        },
        interactions: {
            url(_ctx, interaction) {
                return `/interaction/${interaction.uid}`;
            },
        },
        cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
        features: {
            devInteractions: { enabled: false },
            clientCredentials: { enabled: true },
            resourceIndicators: {
                enabled: true,
                defaultResource: async () => RESOURCE,
                useGrantedResource: async () => false,
                async getResourceServerInfo(_ctx, resource) {
                    if (resource !== RESOURCE) throw new Provider.errors.InvalidTarget();
                    return {
                        scope: 'reports:read reports:write',
                        audience: BROKER,
                        accessTokenTTL: 600,
                        accessTokenFormat: 'jwt',
                        jwt: { sign: { alg: 'RS256' } },
                    };
                },
            },
        },
        async extraTokenClaims(_ctx, token) {
            if (token.kind === 'ClientCredentials') return { groups: ['reporting'] };
            return undefined;
        },
        ttl: { IdToken: 600, AccessToken: 600, ClientCredentials: 600, Interaction: 600, Session: 600, Grant: 600 },
        pkce: { required: () => true },
    });
    logErrors(provider);

    const callback = provider.callback();
    server.on('request', async (req, res) => {
        process.stderr.write(`request ${req.method} ${req.url.split('?')[0]}\n`);
        if (!req.url.startsWith('/interaction/')) {
            callback(req, res);
            return;
        }
        try {
            const details = await provider.interactionDetails(req, res);
            if (req.method === 'GET') {
                res.writeHead(200, { 'content-type': 'application/json' });
                res.end(JSON.stringify({ uid: details.uid, prompt: details.prompt.name, client_id: details.params.client_id }));
                return;
            }
            let body = '';
            for await (const chunk of req) body += chunk;
            const form = new URLSearchParams(body);
            let result;
            if (details.prompt.name === 'login') {
                const acct = accounts[form.get('login')];
                if (!acct || acct.password !== form.get('password')) {
                    res.writeHead(401, { 'content-type': 'application/json' });
                    res.end('{"error":"wrong login or password"}');
                    return;
                }
                result = { login: { accountId: form.get('login'), amr: ['pwd'], acr: 'urn:mace:incommon:iap:silver' } };
            } else {
                result = { error: 'access_denied', error_description: `unexpected prompt ${details.prompt.name}` };
            }
            await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
        } catch (e) {
            process.stderr.write(`interaction error ${e.stack}\n`);
            if (!res.headersSent) {
                res.writeHead(400, { 'content-type': 'application/json' });
                res.end(JSON.stringify({ error: String(e.message) }));
            }
        }
    });
    announce(server);
}

// --- the scripted sign-in -------------------------------------------------------------
class Jar {
    constructor() { this.cookies = new Map(); }
    take(res) {
        for (const c of res.headers.getSetCookie()) {
            const [pair, ...attrs] = c.split(';');
            const eq = pair.indexOf('=');
            const name = pair.slice(0, eq).trim();
            const value = pair.slice(eq + 1).trim();
            const expired = attrs.some((x) => /^\s*expires=/i.test(x) && Date.parse(x.split('=')[1]) < Date.now())
                || attrs.some((x) => /^\s*max-age=0\s*$/i.test(x));
            if (!value || expired) this.cookies.delete(name);
            else this.cookies.set(name, value);
        }
    }
    header() {
        return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    }
}

async function idToken(a) {
    const issuer = need(a, 'issuer');
    const secret = need(a, 'secret');
    const jar = new Jar();
    const verifier = b64u(crypto.randomBytes(32));
    const challenge = b64u(crypto.createHash('sha256').update(verifier).digest());
    const state = b64u(crypto.randomBytes(12));
    const nonce = b64u(crypto.randomBytes(12));
    const disco = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
    const auth = new URL(disco.authorization_endpoint);
    auth.search = new URLSearchParams({
        client_id: BROKER,
        response_type: 'code',
        redirect_uri: REDIRECT,
        scope: a.scope || 'openid email profile groups org',
        state,
        nonce,
        code_challenge: challenge,
        code_challenge_method: 'S256',
    }).toString();

    let url = auth.href;
    let code;
    for (let hop = 0; hop < 10 && !code; hop++) {
        const res = await fetch(url, { redirect: 'manual', headers: { cookie: jar.header() } });
        jar.take(res);
        if (res.status === 200 && new URL(url).pathname.startsWith('/interaction/')) {
            const page = await res.json();
            if (page.prompt !== 'login') die(`sign-in: unexpected prompt ${page.prompt}`);
            const post = await fetch(url, {
                method: 'POST',
                redirect: 'manual',
                headers: { cookie: jar.header(), 'content-type': 'application/x-www-form-urlencoded' },
                body: new URLSearchParams({ login: need(a, 'sub'), password: need(a, 'password') }).toString(),
            });
            jar.take(post);
            if (post.status !== 303 && post.status !== 302) die(`sign-in refused: ${post.status} ${await post.text()}`);
            url = new URL(post.headers.get('location'), url).href;
            continue;
        }
        if (res.status !== 302 && res.status !== 303) die(`sign-in: ${url}: ${res.status} ${await res.text()}`);
        const next = new URL(res.headers.get('location'), url);
        if (next.href.startsWith(REDIRECT)) {
            if (next.searchParams.get('error')) die(`sign-in: ${next.searchParams.get('error')}: ${next.searchParams.get('error_description')}`);
            if (next.searchParams.get('state') !== state) die('sign-in: state mismatch');
            code = next.searchParams.get('code');
        }
        url = next.href;
    }
    if (!code) die('sign-in: no authorization code');
    const res = await fetch(disco.token_endpoint, {
        method: 'POST',
        headers: {
            authorization: `Basic ${Buffer.from(`${BROKER}:${secret}`).toString('base64')}`,
            'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier }).toString(),
    });
    const body = await res.json();
    if (!body.id_token) die(`token endpoint: ${res.status} ${JSON.stringify(body)}`);
    const claims = JSON.parse(Buffer.from(body.id_token.split('.')[1], 'base64url'));
    if (claims.nonce !== nonce) die('id_token: nonce mismatch');
    console.log(body.id_token);
}

async function accessToken(a) {
    const issuer = need(a, 'issuer');
    const disco = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
    const res = await fetch(disco.token_endpoint, {
        method: 'POST',
        headers: {
            authorization: `Basic ${Buffer.from(`${SERVICE}:${need(a, 'secret')}`).toString('base64')}`,
            'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource: RESOURCE, scope: a.scope || 'reports:read' }).toString(),
    });
    const body = await res.json();
    if (!body.access_token || body.access_token.split('.').length !== 3) die(`client credentials: ${res.status} ${JSON.stringify(body)}`);
    console.log(body.access_token);
}

// --- forgeries ----------------------------------------------------------------------------
function forge(a) {
    for (let i = 0; i < Number(a.count || 1); i++) console.log(forge1(a));
}

function forge1(a) {
    const jwk = readJwk(need(a, 'key'));
    const kind = need(a, 'kind');
    const t = now();
    const ttl = Number(a.ttl || 300);
    const claims = {
        iss: need(a, 'iss'),
        sub: need(a, 'sub'),
        aud: need(a, 'aud'),
        iat: t,
        exp: t + ttl,
        auth_time: t,
        jti: b64u(crypto.randomBytes(16)),
        ...JSON.parse(a.claims || '{}'),
    };
    switch (kind) {
    case 'valid': case 'none': case 'hs256': case 'hs256-jwk': break;
    case 'expired': claims.iat = t - 7200; claims.auth_time = t - 7200; claims.exp = t - 3600; break;
    case 'skew': claims.iat = t - 310; claims.auth_time = t - 310; claims.exp = t - 10; break;
    case 'nbf': claims.nbf = t + 3600; break;
    case 'aud': claims.aud = 'https://some-other-app.example'; break;
    case 'iss': claims.iss = 'http://127.0.0.1:9/not-the-issuer'; break;
    case 'azp': claims.aud = [claims.aud, 'some-other-app']; claims.azp = 'some-other-app'; break;
    default: die(`forge: unknown kind ${kind}`);
    }
    let alg = jwk.alg || 'RS256';
    if (kind === 'none') alg = 'none';
    if (kind.startsWith('hs256')) alg = 'HS256';
    const kid = a.kid === 'random' ? `unknown-${b64u(crypto.randomBytes(9))}` : a.kid || jwk.kid;
    const header = { alg, kid, ...(a.typ ? { typ: a.typ } : {}) };
    const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(claims))}`;
    let sig;
    if (alg === 'none') {
        sig = '';
    } else if (alg === 'HS256') {
        const pub = crypto.createPublicKey({ key: publicJwk(jwk), format: 'jwk' });
        const secret = kind === 'hs256'
            ? pub.export({ type: 'spki', format: 'pem' })
            : JSON.stringify(publicJwk(jwk));
        sig = b64u(crypto.createHmac('sha256', secret).update(input).digest());
    } else {
        const key = crypto.createPrivateKey({ key: jwk, format: 'jwk' });
        sig = alg === 'ES256'
            ? b64u(crypto.sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }))
            : b64u(crypto.sign('sha256', Buffer.from(input), key));
    }
    return `${input}.${sig}`;
}

const a = args(process.argv.slice(2));
const cmd = a._[0];
try {
    if (cmd === 'keygen') keygen(a);
    else if (cmd === 'serve') await serve(a);
    else if (cmd === 'id-token') await idToken(a);
    else if (cmd === 'access-token') await accessToken(a);
    else if (cmd === 'forge') forge(a);
    else die(`unknown command ${cmd || '(none)'}: keygen, serve, id-token, access-token, forge`);
} catch (e) {
    die(e.stack || String(e));
}
