// What bench/run's oidc-provider peers share (oidc-provider.mjs,
// oidc-provider-signin.mjs): their signing keys, the resource indicators
// feature that gives each resource its access tokens, and serving on
// loopback the way bench/run waits for and stops a server.
import { generateKeyPair, exportJWK } from 'jose';

// signingKey(ALG, OPTIONS): a new private JWK for oidc-provider's jwks
export async function signingKey(alg, options = {}) {
  const { privateKey } = await generateKeyPair(alg, { ...options, extractable: true });
  return { ...(await exportJWK(privateKey)), alg, use: 'sig', kid: `bench-${alg.toLowerCase()}` };
}

// resourceIndicators(DEFAULT, tokensFor): features.resourceIndicators, the
// resource DEFAULT when a request names none; tokensFor(resource) says how
// its access tokens are made (accessTokenFormat and the rest), or nothing
// for a resource it does not know. Scope mcp:call, 300 s.
export const resourceIndicators = (defaultResource, tokensFor) => ({
  enabled: true,
  defaultResource: async () => defaultResource,
  useGrantedResource: async () => true,
  getResourceServerInfo: async (ctx, resource) => {
    const tokens = tokensFor(resource);
    if (!tokens) throw new Error('unknown resource');
    return { scope: 'mcp:call', accessTokenTTL: 300, ...tokens };
  },
});

// serve(PROVIDER, PORT): listens on 127.0.0.1:PORT, prints "listening PORT"
// once it accepts connections; SIGTERM ends it
export function serve(provider, port) {
  provider.proxy = false;
  const server = provider.listen(port, '127.0.0.1', () => {
    console.log(`listening ${server.address().port}`);
  });
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}
