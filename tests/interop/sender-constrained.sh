#!/bin/bash
# Sender-constrained tokens (issue 25) with software not written here, on
# Mandate's own HTTPS listener asking for client certificates
# (server.tls.client_ca, certificates made by openssl):
# - oauth4webapi 3 as a tls_client_auth client (RFC 8705 §2.1): it reads the
#   metadata, follows mtls_endpoint_aliases (use_mtls_endpoint_aliases; the
#   alias is server.mtls_base_url, another host name of the same listener)
#   with its certificate given to undici, and gets a certificate-bound token;
#   jose verifies that token with the broker's JWKS and its cnf x5t#S256
#   equals node's own base64url SHA-256 of the certificate's DER;
# - panva's dpop package makes the proofs (RFC 9449): a good one gets a DPoP
#   token (cnf.jkt = jose's thumbprint of the key), and each bad input is
#   refused with the RFC's error and audited: at the token endpoint a
#   replayed proof, another htm or htu, a stale or future iat (400
#   invalid_dpop_proof), and proofs jose forges (alg none, HS256, no jwk, a
#   private key in jwk); at the gateway check the same and another key, a
#   wrong or missing ath, the bound token as Bearer (401, WWW-Authenticate:
#   DPoP error="invalid_dpop_proof").
# Skipped (77) only when node is missing; no npm registry: FAIL.
. "${MANDATE_SRCDIR:-.}/tests/e2e/lib.sh"

command -v node >/dev/null 2>&1 || { echo "node is missing: skipped"; exit 77; }
command -v openssl >/dev/null 2>&1 || fatal "openssl is needed"
. "$SRCDIR/tests/interop/npm.sh"
cp "$SRCDIR/tests/interop/sender-constrained.mjs" "$NPM_DIR/" || fatal "cannot copy the client"

new_state
PKI="$TMP/pki"
mkdir "$PKI"
AUD=https://mcp.example/cal
TOOLS=https://tools.example

# --- certificates: the client CA, the agent's, the listener's (127.0.0.1 and localhost) ---
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=Test Client CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
    -keyout "$PKI/ca.key" -out "$PKI/ca.pem" >/dev/null 2>&1
printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\nsubjectAltName=DNS:agent.example.com\n' >"$PKI/agent.ext"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$PKI/agent.key" \
    -subj "/C=US/O=Example Corp/CN=agent" 2>/dev/null |
    openssl x509 -req -days 1 -CA "$PKI/ca.pem" -CAkey "$PKI/ca.key" -CAcreateserial \
        -extfile "$PKI/agent.ext" -out "$PKI/agent.pem" >/dev/null 2>&1
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    -keyout "$STATE/tls-key.pem" -out "$STATE/tls-cert.pem" >/dev/null 2>&1
chmod 600 "$STATE/tls-key.pem" "$PKI"/*.key
check "certificates made" test -s "$PKI/agent.pem" -a -s "$STATE/tls-cert.pem"

sed -i "s|^server: {|server: {\n  tls: { certificate = \"tls-cert.pem\"; key = \"tls-key.pem\"; client_ca = \"$PKI/ca.pem\"; };|" "$CONF"
cat >>"$CONF" <<CONF
targets = ( { name = "cal"; paths = ["/mcp"]; audience = "$AUD"; scopes = ["mcp:call"];
              public_url = "$TOOLS"; } );
dpop: { max_age = 60; };
CONF
daemon_up
BASE="https://127.0.0.1:$PORT"
# the mTLS aliases on another name of the same listener: a client that uses
# them says so by the host it calls
sed -i "s|^server: {|server: {\n  issuer = \"$BASE\";\n  mtls_base_url = \"https://localhost:$PORT\";|" "$CONF"
kill -HUP "$DAEMON_PID"
check "reloaded with the issuer and mtls_base_url" wait_for_log "$LOG" "reloaded:"

"${CTL[@]}" client create mtls-agent --auth tls_client_auth --tls-subject-dn "CN=agent,O=Example Corp,C=US" \
    --scope mcp:call --default-scope mcp:call --audience "$AUD" >/dev/null 2>&1
SECRET=$("${CTL[@]}" client create dpop-agent --scope mcp:call --default-scope mcp:call \
    --audience "$AUD" 2>/dev/null | client_secret)
check "the clients exist" test -n "$SECRET"
client() { # MODE [args]: the node clients, trusting the listener's certificate
    local mode=$1
    shift
    (cd "$NPM_DIR" && timeout 60 node sender-constrained.mjs "$mode" "$BASE" "$STATE/tls-cert.pem" "$@")
}

# --- oauth4webapi: tls_client_auth through the mTLS alias, a certificate-bound token -----------------
out=$(client mtls "$PKI/agent.pem" "$PKI/agent.key" mtls-agent 2>"$TMP/node.err") || cat "$TMP/node.err"
echo "oauth4webapi + jose: $out"
expect_eq "the metadata's token endpoint" "$BASE/oauth2/token" "$(json_get "$out" token_endpoint)"
expect_eq "  and its mTLS alias" "https://localhost:$PORT/oauth2/token" "$(json_get "$out" mtls_token_endpoint)"
expect_eq "oauth4webapi sent the token request to the alias (use_mtls_endpoint_aliases)" \
    "https://localhost:$PORT/oauth2/token" "$(json_get "$out" token_request_url)"
expect_eq "  authenticated by its certificate: a token (Bearer, RFC 8705 §3)" bearer "$(json_get "$out" token_type)"
expect_eq "jose verified it with the broker's JWKS: sub is the client" mtls-agent "$(json_get "$out" verified_sub)"
X5T=$(openssl x509 -in "$PKI/agent.pem" -outform DER | openssl dgst -sha256 -binary | base64 -w0 | tr '+/' '-_' | tr -d '=')
check "  node computed the certificate's thumbprint" test -n "$(json_get "$out" certificate_x5t)"
expect_eq "  cnf x5t#S256 is node's SHA-256 of the certificate's DER" "$(json_get "$out" certificate_x5t)" \
    "$(json_get "$out" cnf_x5t)"
expect_eq "  and openssl's" "$X5T" "$(json_get "$out" cnf_x5t)"
out=$(client mtls "$PKI/agent.pem" "$PKI/agent.key" dpop-agent 2>/dev/null)
echo "oauth4webapi as a client of secrets: $out"
expect_eq "a client of secrets with a certificate: 401 to oauth4webapi" 401 "$(json_get "$out" status)"
expect_eq "  error invalid_client" invalid_client "$(json_get "$out" error)"

# --- dpop: the good proof and every bad one -------------------------------------------------------------------
trail() { cat "$STATE"/audit/audit-*.jsonl; }
token_before=$(trail | grep -c invalid_dpop_proof)
gate_before=$(trail | grep '"event":"gateway.check"' | grep -c '"status":401')
out=$(client dpop dpop-agent "$SECRET" "$TOOLS" 2>"$TMP/node.err") || cat "$TMP/node.err"
echo "dpop: $out"
get() { node -e 'const o = JSON.parse(process.argv[1]); let v = o; for (const k of process.argv[2].split(".")) v = v?.[k]; console.log(v ?? "")' "$out" "$1"; }
expect_eq "token endpoint, a good proof: 200" 200 "$(get token.good.status)"
expect_eq "  token_type DPoP" DPoP "$(get token.good.token_type)"
expect_eq "  cnf.jkt is jose's thumbprint of the dpop package's key" "$(get jkt)" "$(get token.good.cnf_jkt)"
for c in replayed wrong_htm wrong_htu stale_iat future_iat alg_none alg_hs256 no_jwk private_jwk; do
    expect_eq "token endpoint, $c: 400 invalid_dpop_proof" "400 invalid_dpop_proof" \
        "$(get "token.$c.status") $(get "token.$c.error")"
done
expect_eq "gateway check, a good proof: 200" 200 "$(get gateway.good.status)"
for c in replayed other_key wrong_ath no_ath wrong_htm wrong_htu stale_iat future_iat; do
    expect_eq "gateway check, $c: 401" 401 "$(get "gateway.$c.status")"
    expect_contains "  WWW-Authenticate: DPoP error=\"invalid_dpop_proof\"" 'DPoP algs=' "$(get "gateway.$c.www_authenticate")"
    expect_contains "  error invalid_dpop_proof" 'error="invalid_dpop_proof"' "$(get "gateway.$c.www_authenticate")"
done
expect_eq "gateway check, the bound token as Bearer: 401" 401 "$(get gateway.as_bearer.status)"
sleep 0.3
token_refused=$(($(trail | grep -c invalid_dpop_proof) - token_before))
gate_refused=$(($(trail | grep '"event":"gateway.check"' | grep -c '"status":401') - gate_before))
check "the token endpoint's 9 refusals audited with invalid_dpop_proof ($token_refused)" test "$token_refused" -ge 9
check "the gateway check's 9 refusals audited with their reasons ($gate_refused)" test "$gate_refused" -ge 9
trail | grep '"event":"gateway.check"' | grep '"status":401' | sed -n 's/.*"reason":"\([^"]*\)".*/    \1/p'
check "no proof is logged" bash -c "! grep -qE 'eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}' '$LOG'"
check "no sanitizer report" bash -c "! grep -q Sanitizer '$LOG'"
stop_daemon
expect_eq "clean stop" 0 "$DAEMON_STATUS"
finish
