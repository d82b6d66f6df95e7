// The peer bench/run measures next to Mandate: node oidc-provider as its
// documentation configures it for machine clients. client_credentials and
// introspection on; access tokens for the default resource are ES256 JWTs
// (features.resourceIndicators, accessTokenFormat 'jwt'); the resources
// .../eddsa and .../rs256 get EdDSA and RS256 JWTs; .../opaque gets opaque
// tokens (kept in the provider's in-memory adapter), which is what
// introspection answers for. One confidential client with client_secret_basic,
// one introspecting client. Logs nothing per request.
//
//   PORT=N BENCH_SECRET=S node oidc-provider.mjs
//
// Prints "listening PORT" once it accepts connections; SIGTERM ends it.
import Provider from 'oidc-provider';
import { signingKey, resourceIndicators, serve } from './peer.mjs';

const port = Number(process.env.PORT || 0);
const secret = process.env.BENCH_SECRET || 'bench-secret-bench-secret-bench-secret';
const issuer = `http://127.0.0.1:${port}`;
const JWT_RESOURCE = 'https://mcp.example/market-calendar';
const OPAQUE_RESOURCE = 'https://mcp.example/opaque';
// resource -> signing algorithm of its JWT access tokens
const JWT_RESOURCES = {
  [JWT_RESOURCE]: 'ES256',
  'https://mcp.example/eddsa': 'EdDSA',
  'https://mcp.example/rs256': 'RS256',
};

const keys = [await signingKey('ES256'), await signingKey('EdDSA', { crv: 'Ed25519' }),
              await signingKey('RS256', { modulusLength: 2048 })];

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'bench-agent',
      client_secret: secret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'mcp:call',
    },
    {
      client_id: 'bench-gateway',
      client_secret: secret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  clientDefaults: { id_token_signed_response_alg: 'ES256' },
  jwks: { keys },
  scopes: ['mcp:call'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: resourceIndicators(JWT_RESOURCE, (resource) => {
      if (JWT_RESOURCES[resource]) {
        return { accessTokenFormat: 'jwt', jwt: { sign: { alg: JWT_RESOURCES[resource] } } };
      }
      return resource === OPAQUE_RESOURCE ? { accessTokenFormat: 'opaque' } : undefined;
    }),
  },
});
serve(provider, port);
