#!/bin/bash
# The profile for regulated tenants with software not written here: npm
# oauth4webapi 3 (panva's OAuth 2 client) as a FAPI 2.0-style client of
# Mandate. It discovers Mandate (RFC 8414), pushes the authorization
# request (RFC 9126) with private_key_jwt and a DPoP proof of its own
# making, sends the browser with the request_uri, checks the answer's iss
# (RFC 9207) and state, redeems the code with PKCE and a DPoP proof of the
# same key (the code is bound to it), and gets a DPoP-bound token (cnf.jkt
# its key's thumbprint, computed by jose). The browser between (the test
# IdP fakeidp, the consent form) is fetch in the same script. Then its code
# redeemed with a proof by another key (oauth4webapi's DPoP with a second
# key pair) must be refused with invalid_dpop_proof. The client is held to
# the profile fapi2, so everything else the profile refuses would fail
# here too. No network, no npm: FAIL, never skip.
. "${MANDATE_SRCDIR:-.}/tests/e2e/lib.sh"

. "$SRCDIR/tests/interop/npm.sh"

new_state
with_fakeidp # backend-corp: signs in whoever login_hint names
AUD=https://mcp.example/cal
REDIRECT=https://bank-app.example/cb
cat >>"$CONF" <<CONF
targets = ( { name = "cal"; paths = ["/mcp"]; audience = "$AUD"; scopes = ["mcp:call"]; } );
mappings = ( { name = "bank"; idp = "backend-corp"; subject = "banker-\${uid}";
               tenant = "bank"; scopes = ["mcp:call"]; audience = ["$AUD"]; } );
signin: { tenants = ( { tenant = "bank"; name = "Example Bank"; } ); };
profile: { fapi2_tenants = ["bank"]; };
CONF
daemon_up
issuer_is_base
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$TMP/client.pem" 2>/dev/null
openssl pkey -in "$TMP/client.pem" -pubout -out "$TMP/client.pub" 2>/dev/null
openssl pkcs8 -topk8 -nocrypt -in "$TMP/client.pem" -out "$TMP/client.p8" 2>/dev/null
"${CTL[@]}" client create bank-app --tenant bank --public-key "$TMP/client.pub" \
    --redirect-uri "$REDIRECT" --grant-type authorization_code --scope mcp:call \
    --audience "$AUD" >/dev/null 2>&1
expect_contains "a private_key_jwt client of a fapi2 tenant" '"profile": "fapi2"' \
    "$("${CTL[@]}" --json client show bank-app)"

# client THIEF: oauth4webapi through the whole flow; THIEF=yes redeems the
# code with another key's proof. Prints one JSON line.
client() {
    (cd "$NPM_DIR" && node --input-type=module -e '
import * as oauth from "oauth4webapi";
import * as jose from "jose";
import { readFileSync } from "node:fs";
const [issuer, keyFile, redirectUri, resource, thief] = process.argv.slice(1);
const insecure = { [oauth.allowInsecureRequests]: true }; // http on 127.0.0.1
const out = {};
try {
  const issuerUrl = new URL(issuer);
  const as = await oauth.processDiscoveryResponse(issuerUrl,
    await oauth.discoveryRequest(issuerUrl, { algorithm: "oauth2", ...insecure }));
  out.par_endpoint = as.pushed_authorization_request_endpoint;
  const client = { client_id: "bank-app" };
  const clientAuth = oauth.PrivateKeyJwt(await jose.importPKCS8(readFileSync(keyFile, "utf8"), "ES256"));
  const keys = await oauth.generateKeyPair("ES256", { extractable: true });
  const DPoP = oauth.DPoP(client, keys);
  out.jkt = await jose.calculateJwkThumbprint(await jose.exportJWK(keys.publicKey), "sha256");
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const params = new URLSearchParams({
    response_type: "code", redirect_uri: redirectUri, scope: "mcp:call", resource, state,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256", login_hint: "alice@bank.example" });
  const pushed = await oauth.processPushedAuthorizationResponse(as, client,
    await oauth.pushedAuthorizationRequest(as, client, clientAuth, params, { DPoP, ...insecure }));
  out.request_uri = pushed.request_uri;
  out.expires_in = pushed.expires_in;

  // the browser: the authorization endpoint, the IdP (answers at once), consent
  const jar = new Map();
  const browse = async (url, init = {}) => {
    const headers = { ...(init.headers || {}) };
    if (jar.size) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
    const res = await fetch(url, { ...init, headers, redirect: "manual" });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(";");
      const i = pair.indexOf("=");
      jar.set(pair.slice(0, i), pair.slice(i + 1));
    }
    return res;
  };
  const authz = new URL(as.authorization_endpoint);
  authz.searchParams.set("client_id", client.client_id);
  authz.searchParams.set("request_uri", pushed.request_uri);
  let res = await browse(authz);
  let location = res.headers.get("location");
  while (res.status === 302 && location.startsWith(issuer)) {
    res = await browse(location);
    location = res.headers.get("location");
  }
  if (res.status === 200) { // the consent page
    const page = await res.text();
    const value = (name) => page.match(new RegExp(`name="${name}" value="([^"]*)"`))[1];
    res = await browse(new URL("/consent", issuer), { method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ handle: value("handle"), csrf: value("csrf"), decision: "allow" }) });
    location = res.headers.get("location");
  }
  out.callback = location;
  const callback = oauth.validateAuthResponse(as, client, new URL(location), state); // iss, state
  const redeemWith = thief === "yes"
    ? oauth.DPoP(client, await oauth.generateKeyPair("ES256")) : DPoP;
  const grant = () => oauth.authorizationCodeGrantRequest(as, client, clientAuth, callback,
    redirectUri, verifier, { DPoP: redeemWith, ...insecure });
  const tokens = await oauth.processAuthorizationCodeResponse(as, client, await grant());
  out.token_type = tokens.token_type;
  out.cnf_jkt = jose.decodeJwt(tokens.access_token).cnf?.jkt;
} catch (e) {
  out.error = e.error || e.code || e.name;
  out.message = e.error_description || e.message;
}
console.log(JSON.stringify(out));' "$@")
}

out=$(client "$BASE" "$TMP/client.p8" "$REDIRECT" "$AUD" no)
echo "oauth4webapi: $out"
expect_eq "oauth4webapi discovers the PAR endpoint" "$BASE/oauth2/par" "$(json_get "$out" par_endpoint)"
expect_contains "  pushes with private_key_jwt and DPoP: a request_uri" "urn:ietf:params:oauth:request_uri:" \
    "$(json_get "$out" request_uri)"
expect_eq "  expires_in 60" 60 "$(json_get "$out" expires_in)"
expect_contains "  the browser comes back to the redirect URI with a code" "$REDIRECT?code=" "$(json_get "$out" callback)"
expect_eq "  its checks of iss and state pass, the code redeemed: token_type DPoP" dpop \
    "$(json_get "$out" token_type | tr A-Z a-z)"
JKT=$(json_get "$out" jkt)
check "  oauth4webapi's key has a thumbprint" test -n "$JKT"
expect_eq "  cnf.jkt: the thumbprint of oauth4webapi's key" "$JKT" "$(json_get "$out" cnf_jkt)"
check "  no error" test -z "$(json_get "$out" error)"

out=$(client "$BASE" "$TMP/client.p8" "$REDIRECT" "$AUD" yes)
echo "oauth4webapi, the code redeemed with another key: $out"
expect_eq "the code bound at the push, redeemed with another key's proof: invalid_dpop_proof" \
    invalid_dpop_proof "$(json_get "$out" error)"
expect_contains "  Mandate says why" "another key than the code" "$(json_get "$out" message)"
finish
