// An enterprise IdP on loopback for tests/interop/signin.sh: the npm package
// oidc-provider (not ours) with its own HTML login and consent pages, which
// a real browser fills in. Mandate signs people in here as a relying party
// (its oidc backend instance with login_client_id).
//
//   node signin-idp.mjs --name "Example Corp" --accounts FILE --clients FILE [--port N]
//
// accounts: {"alice": {"password": "...", "claims": {...}}}
// clients:  [{"client_id": "...", "client_secret": "...", "redirect_uris": ["..."]}]
// Prints "listening PORT" once it listens; logs "request METHOD PATH" and
// "login USER" / "consent USER" on stderr. Keys are made at start (RS256).
//
// Environment: OIDC_NPM_DIR, where node_modules is (the build tree's).
import fs from 'node:fs';
import crypto from 'node:crypto';
import { loopbackProvider, logErrors, announce } from './op-loopback.mjs';

function args(argv) {
    const out = {};
    for (let i = 0; i < argv.length; i++) {
        if (!argv[i].startsWith('--')) throw new Error(`unexpected argument ${argv[i]}`);
        out[argv[i].slice(2)] = argv[++i];
    }
    return out;
}
const a = args(process.argv.slice(2));
const name = a.name || 'Example IdP';
const accounts = JSON.parse(fs.readFileSync(a.accounts, 'utf8'));
const clients = JSON.parse(fs.readFileSync(a.clients, 'utf8'));

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
const page = (title, body) => `<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>${esc(title)} - ${esc(name)}</title>
<style>
body { font-family: "DejaVu Sans", sans-serif; background: #1f3a5f; margin: 0; }
main { background: #fff; max-width: 360px; margin: 60px auto; padding: 24px 32px; border-radius: 6px; }
h1 { font-size: 20px; color: #1f3a5f; } label { display: block; margin: 12px 0 4px; }
input[type=text], input[type=password] { width: 100%; padding: 6px; box-sizing: border-box; }
button { margin-top: 16px; padding: 8px 16px; background: #1f3a5f; color: #fff; border: 0; border-radius: 4px; }
.err { color: #a00; } .idp { color: #888; font-size: 12px; }
</style></head><body><main><p class="idp">${esc(name)} single sign-on</p><h1>${esc(title)}</h1>${body}</main></body></html>`;

const { Provider, server, port, issuer } = await loopbackProvider(a.port);
const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: `idp-${port}`, alg: 'RS256', use: 'sig' };

const provider = new Provider(issuer, {
    jwks: { keys: [jwk] },
    clients: clients.map((c) => ({
        client_id: c.client_id,
        client_secret: c.client_secret,
        redirect_uris: c.redirect_uris,
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
    })),
    claims: {
        openid: ['sub'],
        email: ['email', 'email_verified'],
        profile: ['name'],
        groups: ['groups'],
    },
    scopes: ['openid', 'email', 'profile', 'groups'],
    conformIdTokenClaims: false, // the scopes' claims go into the id_token
    async findAccount(_ctx, id) {
        const acct = accounts[id];
        if (!acct) return undefined;
        return { accountId: id, async claims() { return { sub: id, ...acct.claims }; } };
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
    features: { devInteractions: { enabled: false } },
    ttl: { IdToken: 600, AccessToken: 600, Interaction: 600, Session: 3600, Grant: 3600 },
    pkce: { required: () => true },
});
logErrors(provider);

async function formBody(req) {
    let body = '';
    for await (const chunk of req) body += chunk;
    return new URLSearchParams(body);
}
function html(res, status, body) {
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(body);
}

const callback = provider.callback();
server.on('request', async (req, res) => {
    const url = new URL(req.url, issuer);
    process.stderr.write(`request ${req.method} ${url.pathname}\n`);
    const m = url.pathname.match(/^\/interaction\/([^/]+)(?:\/(login|confirm|abort))?$/);
    if (!m) {
        callback(req, res);
        return;
    }
    try {
        const details = await provider.interactionDetails(req, res);
        const uid = esc(details.uid);
        const client = details.params.client_id;
        if (req.method === 'GET' && !m[2]) {
            if (details.prompt.name === 'login') {
                html(res, 200, page('Sign in', `<form method="post" action="/interaction/${uid}/login">
<label for="login">User name</label><input type="text" id="login" name="login" autocomplete="username" autofocus>
<label for="password">Password</label><input type="password" id="password" name="password" autocomplete="current-password">
<button type="submit" id="sign-in">Sign in</button></form>
<form method="post" action="/interaction/${uid}/abort"><button type="submit" id="cancel">Cancel</button></form>`));
            } else {
                const scopes = [...(details.prompt.details.missingOIDCScope || [])].join(' ');
                html(res, 200, page('Allow access', `<p><strong>${esc(client)}</strong> asks for your
${esc(scopes || 'sign-in')}.</p><form method="post" action="/interaction/${uid}/confirm">
<button type="submit" id="approve">Allow</button></form>
<form method="post" action="/interaction/${uid}/abort"><button type="submit" id="cancel">Cancel</button></form>`));
            }
            return;
        }
        if (req.method !== 'POST') {
            html(res, 405, page('Not allowed', '<p>POST only.</p>'));
            return;
        }
        let result;
        if (m[2] === 'abort') {
            result = { error: 'access_denied', error_description: 'the user cancelled the sign-in' };
        } else if (m[2] === 'login' && details.prompt.name === 'login') {
            const form = await formBody(req);
            const acct = accounts[form.get('login')];
            if (!acct || acct.password !== form.get('password')) {
                process.stderr.write(`login refused ${form.get('login')}\n`);
                html(res, 401, page('Sign in', `<p class="err">Wrong user name or password.</p>
<p><a href="/interaction/${uid}">Try again</a></p>`));
                return;
            }
            process.stderr.write(`login ${form.get('login')}\n`);
            result = { login: { accountId: form.get('login'), amr: ['pwd'] } };
        } else if (m[2] === 'confirm' && details.prompt.name === 'consent') {
            const { Grant } = provider;
            const grant = details.grantId
                ? await Grant.find(details.grantId)
                : new Grant({ accountId: details.session.accountId, clientId: client });
            const d = details.prompt.details;
            if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
            if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
            if (d.missingResourceScopes) {
                for (const [indicator, scope] of Object.entries(d.missingResourceScopes)) grant.addResourceScope(indicator, scope.join(' '));
            }
            process.stderr.write(`consent ${details.session.accountId} ${client}\n`);
            result = { consent: { grantId: await grant.save() } };
        } else {
            html(res, 400, page('Unexpected', `<p>Unexpected step ${esc(m[2])} at prompt ${esc(details.prompt.name)}.</p>`));
            return;
        }
        await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: m[2] !== 'confirm' });
    } catch (e) {
        process.stderr.write(`interaction error ${e.stack}\n`);
        if (!res.headersSent) html(res, 400, page('Error', `<p>${esc(e.message)}</p>`));
    }
});
announce(server);
