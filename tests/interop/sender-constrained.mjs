// The clients of tests/interop/sender-constrained.sh, all software not
// written here: oauth4webapi as a tls_client_auth client (RFC 8705) that
// follows the metadata's mtls_endpoint_aliases, its certificate given to
// undici; jose checking the certificate-bound token (its signature by the
// broker's JWKS, cnf x5t#S256 against node's own thumbprint of the
// certificate); panva's dpop package making the DPoP proofs (RFC 9449) of the
// bad-input cases at the token endpoint and at the gateway check.
//
//   node sender-constrained.mjs mtls   ISSUER CA CERT KEY CLIENT_ID
//   node sender-constrained.mjs dpop   ISSUER CA CLIENT_ID SECRET PUBLIC_URL
//
// Prints one JSON object of what happened; the shell script judges it.
import * as oauth from "oauth4webapi";
import * as jose from "jose";
import * as DPoP from "dpop";
import { Agent, fetch as undiciFetch } from "undici";
import { X509Certificate, createHash } from "node:crypto";
import { readFileSync } from "node:fs";

const [mode, issuer, caFile, ...rest] = process.argv.slice(2);
const ca = readFileSync(caFile, "utf8");

// fetch through undici with the broker's CA (and a client certificate):
// every URL fetched is recorded, to show which endpoint was used
function fetcher(connect) {
  const dispatcher = new Agent({ connect: { ca, ...connect } });
  const urls = [];
  const f = (url, init = {}) => {
    urls.push(String(url));
    return undiciFetch(url, { ...init, dispatcher });
  };
  return { f, urls };
}

async function mtls([certFile, keyFile, clientId]) {
  const cert = readFileSync(certFile, "utf8");
  const { f, urls } = fetcher({ cert, key: readFileSync(keyFile, "utf8") });
  const opts = { [oauth.customFetch]: f };
  const as = await oauth.processDiscoveryResponse(
    new URL(issuer),
    await oauth.discoveryRequest(new URL(issuer), { ...opts, algorithm: "oauth2" }),
  );
  const client = { client_id: clientId, use_mtls_endpoint_aliases: true };
  const response = await oauth.clientCredentialsGrantRequest(
    as, client, oauth.TlsClientAuth(), new URLSearchParams({ scope: "mcp:call" }), opts);
  const token = await oauth.processClientCredentialsResponse(as, client, response);
  // jose: the token is the broker's, and bound to this very certificate
  const jwks = await (await f(as.jwks_uri)).json();
  const { payload } = await jose.jwtVerify(token.access_token, jose.createLocalJWKSet(jwks), {
    issuer: as.issuer,
  });
  const der = new X509Certificate(cert).raw;
  return {
    token_endpoint: as.token_endpoint,
    mtls_token_endpoint: as.mtls_endpoint_aliases?.token_endpoint,
    token_request_url: urls.find((u) => u.endsWith("/oauth2/token")),
    token_type: token.token_type,
    verified_sub: payload.sub,
    cnf_x5t: payload.cnf?.["x5t#S256"],
    certificate_x5t: createHash("sha256").update(der).digest("base64url"),
  };
}

// A proof made by the dpop package with the clock moved by seconds.
async function proofAt(seconds, ...args) {
  const now = Date.now;
  Date.now = () => now() + seconds * 1000;
  try {
    return await DPoP.generateProof(...args);
  } finally {
    Date.now = now;
  }
}

// A proof that no honest library makes: jose signing a header and claims
// as given (alg none, HS256; a private key in jwk).
async function forged(alg, header, claims) {
  const body = { iat: Math.floor(Date.now() / 1000), jti: crypto.randomUUID(), ...claims };
  if (alg === "none")
    return new jose.UnsecuredJWT(body).encode().replace(/^[^.]*/, jose.base64url.encode(
      JSON.stringify({ alg: "none", typ: "dpop+jwt", ...header })));
  const key = alg === "HS256" ? new TextEncoder().encode("a shared secret of 32 bytes!!!!!") : alg;
  return new jose.SignJWT(body).setProtectedHeader({ typ: "dpop+jwt", ...header,
    alg: alg === "HS256" ? "HS256" : "ES256" }).sign(key);
}

async function dpop([clientId, secret, publicUrl]) {
  const { f } = fetcher({});
  const tokenUrl = `${issuer}/oauth2/token`;
  const keys = await DPoP.generateKeyPair("ES256", { extractable: true });
  const thief = await DPoP.generateKeyPair("ES256");
  const jkt = await jose.calculateJwkThumbprint(await jose.exportJWK(keys.publicKey));
  const basic = "Basic " + Buffer.from(`${clientId}:${secret}`).toString("base64");
  const token = async (proof) => {
    const r = await f(tokenUrl, {
      method: "POST",
      headers: { authorization: basic, "content-type": "application/x-www-form-urlencoded",
                 ...(proof ? { dpop: proof } : {}) },
      body: "grant_type=client_credentials",
    });
    return { status: r.status, body: await r.json() };
  };
  const out = { jkt, token: {}, gateway: {} };
  // the token endpoint
  const good = await DPoP.generateProof(keys, tokenUrl, "POST");
  const issued = await token(good);
  out.token.good = { status: issued.status, token_type: issued.body.token_type,
                     cnf_jkt: jose.decodeJwt(issued.body.access_token).cnf?.jkt };
  const at = issued.body.access_token;
  const { privateKey: exportedPrivate } = keys;
  const privateJwk = await jose.exportJWK(exportedPrivate);
  const publicJwk = await jose.exportJWK(keys.publicKey);
  const tokenCases = {
    replayed: good,
    wrong_htm: await DPoP.generateProof(keys, tokenUrl, "GET"),
    wrong_htu: await DPoP.generateProof(keys, `${issuer}/oauth2/introspect`, "POST"),
    stale_iat: await proofAt(-300, keys, tokenUrl, "POST"),
    future_iat: await proofAt(300, keys, tokenUrl, "POST"),
    alg_none: await forged("none", { jwk: publicJwk }, { htm: "POST", htu: tokenUrl }),
    alg_hs256: await forged("HS256", { jwk: publicJwk }, { htm: "POST", htu: tokenUrl }),
    no_jwk: await forged(keys.privateKey, {}, { htm: "POST", htu: tokenUrl }),
    private_jwk: await forged(keys.privateKey, { jwk: privateJwk }, { htm: "POST", htu: tokenUrl }),
  };
  for (const [name, proof] of Object.entries(tokenCases)) {
    const r = await token(proof);
    out.token[name] = { status: r.status, error: r.body.error };
  }
  // the gateway check, as nginx asks it for a call of POST <public_url>/mcp/tools
  const htu = `${publicUrl}/mcp/tools`;
  const gate = async (proof, scheme = "DPoP") => {
    const r = await f(`${issuer}/gateway/check`, {
      headers: { authorization: `${scheme} ${at}`, ...(proof ? { dpop: proof } : {}),
                 "x-original-method": "POST", "x-original-uri": "/mcp/tools" },
    });
    await r.arrayBuffer();
    return { status: r.status, www_authenticate: r.headers.get("www-authenticate") };
  };
  const fresh = await DPoP.generateProof(keys, htu, "POST", undefined, at);
  out.gateway.good = await gate(fresh);
  const gatewayCases = {
    replayed: fresh,
    other_key: await DPoP.generateProof(thief, htu, "POST", undefined, at),
    wrong_ath: await DPoP.generateProof(keys, htu, "POST", undefined, `${at}x`),
    no_ath: await DPoP.generateProof(keys, htu, "POST"),
    wrong_htm: await DPoP.generateProof(keys, htu, "GET", undefined, at),
    wrong_htu: await DPoP.generateProof(keys, `${publicUrl}/other`, "POST", undefined, at),
    stale_iat: await proofAt(-300, keys, htu, "POST", undefined, at),
    future_iat: await proofAt(300, keys, htu, "POST", undefined, at),
  };
  for (const [name, proof] of Object.entries(gatewayCases))
    out.gateway[name] = await gate(proof);
  out.gateway.as_bearer = await gate(undefined, "Bearer");
  return out;
}

const modes = { mtls, dpop };
if (!modes[mode]) {
  console.error(`usage: node sender-constrained.mjs mtls|dpop ...`);
  process.exit(2);
}
try {
  console.log(JSON.stringify(await modes[mode](rest)));
} catch (err) {
  // a refusal as oauth4webapi reports it (a challenge, an OAuth error)
  const response = err.response ?? err.cause;
  const body = await response?.json?.().catch(() => null);
  console.log(JSON.stringify({ failed: err.name, message: err.message, status: response?.status,
    www_authenticate: response?.headers?.get?.("www-authenticate") ?? null,
    error: body?.error ?? null }));
  process.exitCode = 1;
}
