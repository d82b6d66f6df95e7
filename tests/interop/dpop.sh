#!/bin/bash
# DPoP (RFC 9449) with software not written here: npm jose 6 makes the
# agent's key and its proofs (SignJWT with the public JWK in the header,
# ath by node's crypto) and computes the RFC 7638 thumbprint; the live
# daemon must issue a token bound to that thumbprint, its introspection
# must name it, and the gateway check must accept jose's fresh proof and
# refuse jose's proof by another key. tests/e2e/dpop.sh has every other
# refusal with proofs of lib/dpop.c. No network, no npm: FAIL, never skip.
. "${MANDATE_SRCDIR:-.}/tests/e2e/lib.sh"

. "$SRCDIR/tests/interop/npm.sh"

new_state
AUD=https://mcp.example/cal
TOOLS=https://tools.example
cat >>"$CONF" <<CONF
targets = ( { name = "cal"; paths = ["/mcp"]; audience = "$AUD"; scopes = ["mcp:call"];
              public_url = "$TOOLS"; } );
CONF
daemon_up
issuer_is_base
for id in agent gateway; do
    "${CTL[@]}" client create "$id" --scope mcp:call --default-scope mcp:call --audience "$AUD" \
        $([ "$id" = gateway ] && echo --introspect) 2>/dev/null | client_secret >"$TMP/$id.secret"
done

# jose KEY_FILE jkt | proof METHOD URI [TOKEN]: a key made by jose on first
# use (its JWK kept in KEY_FILE), its thumbprint, or a proof by it
jose() {
    (cd "$NPM_DIR" && node --input-type=module -e '
import * as jose from "jose";
import { createHash, randomUUID } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
const [file, what, htm, htu, token] = process.argv.slice(1);
if (!existsSync(file)) {
  const { privateKey } = await jose.generateKeyPair("ES256", { extractable: true });
  writeFileSync(file, JSON.stringify(await jose.exportJWK(privateKey)), { mode: 0o600 });
}
const priv = JSON.parse(readFileSync(file, "utf8"));
const { d, ...pub } = priv;
if (what === "jkt") {
  console.log(await jose.calculateJwkThumbprint(pub, "sha256"));
} else {
  const claims = { htm, htu, jti: randomUUID() };
  if (token) claims.ath = createHash("sha256").update(token).digest("base64url");
  console.log(await new jose.SignJWT(claims)
    .setProtectedHeader({ typ: "dpop+jwt", alg: "ES256", jwk: pub })
    .setIssuedAt().sign(await jose.importJWK(priv, "ES256")));
}' "$@")
}

JKT=$(jose "$TMP/agent.jwk" jkt)
check "jose made a key and its thumbprint" test -n "$JKT"
resp=$(curl -s -u "agent:$(cat "$TMP/agent.secret")" -H "DPoP: $(jose "$TMP/agent.jwk" proof POST "$TOKEN_URL")" \
    -d grant_type=client_credentials "$TOKEN_URL")
TOKEN=$(json_get "$resp" access_token)
expect_eq "jose's proof at the token endpoint: token_type DPoP" DPoP "$(json_get "$resp" token_type)"
expect_contains "  cnf.jkt is jose's thumbprint" "\"cnf\":{\"jkt\":\"$JKT\"}" "$(jwt_claims "$TOKEN")"
out=$(curl -s -u "gateway:$(cat "$TMP/gateway.secret")" --data-urlencode "token=$TOKEN" "$BASE/oauth2/introspect")
expect_contains "introspection names jose's thumbprint" "\"jkt\":\"$JKT\"" "$out"
gate() { # PROOF: the gateway check's status for POST /mcp/tools
    curl -s -o /dev/null -w '%{http_code}' -H "Authorization: DPoP $TOKEN" -H "DPoP: $1" \
        -H "X-Original-Method: POST" -H "X-Original-URI: /mcp/tools" "$BASE/gateway/check"
}
expect_eq "the gateway accepts jose's fresh proof with ath" 200 \
    "$(gate "$(jose "$TMP/agent.jwk" proof POST "$TOOLS/mcp/tools" "$TOKEN")")"
expect_eq "  and refuses jose's proof by another key" 401 \
    "$(gate "$(jose "$TMP/thief.jwk" proof POST "$TOOLS/mcp/tools" "$TOKEN")")"
expect_eq "  and jose's proof without ath" 401 "$(gate "$(jose "$TMP/agent.jwk" proof POST "$TOOLS/mcp/tools")")"
finish
