// The upstream OpenID Provider of bench/run's OIDC token exchange case, as
// static files (nginx serves them): discovery and JWKS, and N id_tokens
// signed with npm jose (ES256), valid for a day, each for another advisor.
//
//   node mint-id-tokens.mjs OUTDIR ISSUER AUDIENCE N
//
// Writes OUTDIR/.well-known/openid-configuration, OUTDIR/jwks.json and
// OUTDIR/id-tokens.txt (one a line). ISSUER is the URL OUTDIR is served at.
import { mkdirSync, writeFileSync } from 'node:fs';
import { generateKeyPair, exportJWK, SignJWT } from 'jose';

const [outdir, issuer, audience, count] = process.argv.slice(2);
if (!outdir || !issuer || !audience || !count) {
  console.error('usage: node mint-id-tokens.mjs OUTDIR ISSUER AUDIENCE N');
  process.exit(2);
}
const kid = 'bench-idp-es256';
const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
const pub = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
mkdirSync(`${outdir}/.well-known`, { recursive: true });
writeFileSync(`${outdir}/jwks.json`, JSON.stringify({ keys: [pub] }));
writeFileSync(`${outdir}/.well-known/openid-configuration`, JSON.stringify({
  issuer,
  jwks_uri: `${issuer}/jwks.json`,
  authorization_endpoint: `${issuer}/authorize`,
  token_endpoint: `${issuer}/token`,
  response_types_supported: ['code'],
  subject_types_supported: ['public'],
  id_token_signing_alg_values_supported: ['ES256'],
}));
const now = Math.floor(Date.now() / 1000);
const lines = [];
for (let i = 0; i < Number(count); i++) {
  lines.push(await new SignJWT({
    email: `advisor${i}@example.com`,
    role: 'FinancialAdvisor',
    employeeId: String(100000 + i),
    auth_time: now - 60,
  })
    .setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT' })
    .setIssuer(issuer)
    .setAudience(audience)
    .setSubject(`advisor-${i}`)
    .setIssuedAt(now - 60)
    .setExpirationTime(now + 86400)
    .setJti(`bench-${now}-${i}`)
    .sign(privateKey));
}
writeFileSync(`${outdir}/id-tokens.txt`, lines.join('\n') + '\n');
