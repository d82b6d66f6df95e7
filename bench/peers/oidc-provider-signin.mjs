// The peer of bench/run's sign-in cases: node oidc-provider as its
// documentation sets it up for the authorization code flow, with what
// Mandate's side has (bench/signin.sh): a public client (PKCE S256, no
// secret) allowed authorization_code and refresh_token, a refresh token
// with every code (issueRefreshToken: when the client may refresh, as
// Mandate does, not only for offline_access) rotated on every use (its
// default for public clients), ES256 JWT access tokens for the resource
// (features.resourceIndicators), and an "IdP" that signs in whoever
// login_hint names at once, as tests/plugins/backend-fakeidp.c does for
// Mandate: the interaction routes (its documented interactionDetails and
// interactionFinished) log the user in and grant what the consent prompt
// asks (a Grant saved through its API), so that the browser ends with a
// session cookie and a remembered grant, and the next authorization request
// is answered with a code directly.
//
// Its records are kept by an in-memory adapter written here: a Map with an
// expiry per entry and a Set per grant, as its Redis example adapter keeps
// them. Its bundled development adapter is an LRU of 1,000 entries (the
// codes made ahead would be evicted before they are redeemed) whose grant
// index is rebuilt on every write (the cost of each write grows with the
// tokens of the grant): neither is what a deployment runs.
// Signed cookies (cookies.keys), as its documentation asks for production.
//
//   PORT=N node oidc-provider-signin.mjs
//
// Prints "listening PORT" once it accepts connections; SIGTERM ends it.
import Provider from 'oidc-provider';
import { randomBytes } from 'node:crypto';
import { signingKey, resourceIndicators, serve } from './peer.mjs';

const port = Number(process.env.PORT || 0);
const issuer = `http://127.0.0.1:${port}`;
const RESOURCE = process.env.BENCH_RESOURCE || 'https://mcp.example/market-calendar';
const REDIRECT = process.env.BENCH_REDIRECT || 'http://127.0.0.1:7777/cb';

const keys = [await signingKey('ES256')];

const store = new Map(); // key -> { value, exp (ms, or Infinity) }
const get = (key) => {
  const e = store.get(key);
  if (!e) return undefined;
  if (e.exp <= Date.now()) { store.delete(key); return undefined; }
  return e.value;
};
const put = (key, value, expiresIn) => {
  store.set(key, { value, exp: typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity });
};
const grantable = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode',
  'BackchannelAuthenticationRequest']);
class MapAdapter {
  constructor(model) { this.model = model; }
  key(id) { return `${this.model}:${id}`; }
  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    if (this.model === 'Session') put(`sessionUid:${payload.uid}`, id, expiresIn);
    if (grantable.has(this.model) && payload.grantId) {
      let members = get(`grant:${payload.grantId}`);
      if (!members) { members = new Set(); put(`grant:${payload.grantId}`, members); }
      members.add(key);
    }
    if (payload.userCode) put(`userCode:${payload.userCode}`, id, expiresIn);
    put(key, payload, expiresIn);
  }
  async find(id) { return get(this.key(id)); }
  async findByUid(uid) { const id = get(`sessionUid:${uid}`); return id && this.find(id); }
  async findByUserCode(code) { const id = get(`userCode:${code}`); return id && this.find(id); }
  async consume(id) { const p = get(this.key(id)); if (p) p.consumed = Math.floor(Date.now() / 1000); }
  async destroy(id) {
    const key = this.key(id);
    const p = get(key);
    store.delete(key);
    if (p?.grantId) get(`grant:${p.grantId}`)?.delete(key);
  }
  async revokeByGrantId(grantId) {
    const members = get(`grant:${grantId}`);
    if (members) for (const key of members) store.delete(key);
    store.delete(`grant:${grantId}`);
  }
}

const provider = new Provider(issuer, {
  adapter: MapAdapter,
  clients: [{
    client_id: 'mcp-app',
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: [REDIRECT],
    scope: 'mcp:call',
  }],
  clientDefaults: { id_token_signed_response_alg: 'ES256' },
  jwks: { keys },
  scopes: ['mcp:call'],
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  findAccount: async (ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  pkce: { required: () => true },
  ttl: { AccessToken: 300, AuthorizationCode: 60, RefreshToken: 2592000, Session: 28800,
         Grant: 7776000, Interaction: 600 },
  features: {
    devInteractions: { enabled: false },
    resourceIndicators: resourceIndicators(RESOURCE, (resource) => (resource === RESOURCE
      ? { accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } } : undefined)),
  },
});

// the interactions: login whoever login_hint names, then grant what is asked
provider.use(async (ctx, next) => {
  if (ctx.method !== 'GET' || !ctx.path.startsWith('/interaction/')) return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  const { prompt, params } = details;
  let result;
  if (prompt.name === 'login') {
    result = { login: { accountId: params.login_hint || 'alice' } };
  } else if (prompt.name === 'consent') {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    const d = prompt.details;
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(d.missingResourceScopes || {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    result = { consent: details.grantId ? {} : { grantId } };
  } else {
    ctx.status = 400;
    ctx.body = `unexpected prompt ${prompt.name}`;
    return undefined;
  }
  ctx.status = 303;
  ctx.set('Location', await provider.interactionResult(ctx.req, ctx.res, result,
    { mergeWithLastSubmission: true }));
  return undefined;
});

serve(provider, port);
