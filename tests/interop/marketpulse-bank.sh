#!/bin/bash
# The MarketPulse "bank" mode (issue 25) on loopback: nginx terminating TLS
# and asking every caller for a certificate of the bank's CA
# (examples/marketpulse/nginx-bank.conf.in), the market calendar behind it
# checking DPoP proofs itself too (--public-url), the broker with server
# nonces on, and the C agent (examples/marketpulse/dpop-agent, libmandate)
# holding a DPoP-bound token and its client certificate. The agent's call
# gets through after the broker's and the gateway's nonce rounds; a thief
# who copied the token is refused, even with a certificate of the same CA:
# as Bearer, with a proof by its own key, through the gateway or straight
# at the tool server; without a certificate nginx refuses at once.
. "${MANDATE_SRCDIR:-.}/tests/e2e/lib.sh"
. "$SRCDIR/tests/interop/marketpulse.sh"

AGENT="$BUILDDIR/examples/marketpulse/dpop-agent"
PROOF="$BUILDDIR/tests/dpop-proof"
command -v openssl >/dev/null || fatal "openssl is needed"
GW="https://127.0.0.1:$GW_PORT"
CALL="$GW/tools/check_market_holidays"

# the bank's CA, the gateway's certificate, the agent's and another host's
PKI="$TMP/pki"
mkdir -p "$PKI"
ec() { openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$PKI/$1.key" "${@:2}" 2>/dev/null; }
ec ca -x509 -days 1 -subj "/CN=Bank CA" -out "$PKI/ca.pem"
for name in gateway agent thief; do
    ec "$name" -subj "/CN=$name" -out "$PKI/$name.csr"
    openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca.key" -CAcreateserial \
        -days 1 -out "$PKI/$name.pem" -extfile <(printf 'subjectAltName=IP:127.0.0.1\n') 2>/dev/null
done
check "the bank's CA and three certificates" test -s "$PKI/gateway.pem" -a -s "$PKI/agent.pem" -a -s "$PKI/thief.pem"

dpop_nonce_broker_up market-calendar-mcp '["/mcp", "/tools/"]' "$GW" marketpulse

start_calendar "$BASE" --public-url "$GW"
NGX="$TMP/nginx"
mkdir -p "$NGX"
sed -e "s|@PREFIX@|$NGX|g" -e "s|@LISTEN@|127.0.0.1:$GW_PORT|g" -e "s|@BROKER@|127.0.0.1:$PORT|g" \
    -e "s|@TOOL@|127.0.0.1:$TOOL_PORT|g" -e "s|@ISSUER@|$BASE|g" -e "s|@RESOURCE@|$AUD|g" \
    -e "s|@CERT@|$PKI/gateway.pem|g" -e "s|@KEY@|$PKI/gateway.key|g" -e "s|@CLIENT_CA@|$PKI/ca.pem|g" \
    "$SRCDIR/examples/marketpulse/nginx-bank.conf.in" >"$NGX/nginx.conf"
nginx -t -p "$NGX" -c "$NGX/nginx.conf" >"$NGX/test.log" 2>&1 || { cat "$NGX/test.log"; fatal "nginx -t"; }
nginx -p "$NGX" -c "$NGX/nginx.conf" -g "daemon off; user $(id -un);" 2>"$NGX/stderr.log" &
NGINX_PID=$!
PIDS="$PIDS $NGINX_PID"
TLS=(--cacert "$PKI/ca.pem")
for _ in $(seq 1 100); do
    curl -s -o /dev/null "${TLS[@]}" --cert "$PKI/agent.pem" --key "$PKI/agent.key" \
        "$GW/.well-known/oauth-protected-resource" && break
    sleep 0.05
done

# --- the agent --------------------------------------------------------------------
agent() {
    MANDATE_CLIENT_SECRET="$SECRET" "$AGENT" --token-url "$TOKEN_URL" --client-id marketpulse \
        --cert "$PKI/agent.pem" --cert-key "$PKI/agent.key" --ca "$PKI/ca.pem" "$@"
}
out=$(agent --calls 2 --show-token "$CALL" 2>"$TMP/agent.err")
status=$?
sed 's/access token .*/access token (hidden)/; s/^/  agent: /' "$TMP/agent.err"
expect_eq "the agent's two calls through the TLS gateway" 0 "$status"
expect_eq "  200" 200 "$(head -n 1 <<<"$out")"
expect_contains "  the calendar answers" '"holidays":[{"date":"2026-02-16"' "$out"
expect_contains "  with a DPoP-bound token, after the broker's nonce round (2 token requests)" \
    "token_type DPoP, 2 token request(s)" "$(cat "$TMP/agent.err")"
TOKEN=$(sed -n 's/^dpop-agent: access token //p' "$TMP/agent.err")
expect_contains "  cnf.jkt in the token" '"cnf":{"jkt":"' "$(jwt_claims "$TOKEN")"
# the gateway's nonce: one 401 use_dpop_nonce, then 200, 200 (the nonce kept)
expect_eq "  the gateway asked once for its nonce (401, then 200 200)" "401 200 200" \
    "$(grep check_market_holidays "$NGX/access.log" | awk '{ print $9 }' | tr '\n' ' ' | sed 's/ $//')"
check "  the calendar took its proofs (no refusal in its log)" bash -c "! grep -q 'token refused' '$TMP/tool.log'"

# --- a thief with the token -------------------------------------------------------
call() { # CURL ARGS...: the status of the workshop's call
    curl -s -o "$TMP/b" -D "$TMP/h" -w '%{http_code}' -X POST -H "Content-Type: application/json" \
        -d '{"country_code": "US", "days_ahead": 7}' "$@"
}
THIEF=("${TLS[@]}" --cert "$PKI/thief.pem" --key "$PKI/thief.key")
expect_eq "no client certificate: nginx refuses (400)" 400 \
    "$(call "${TLS[@]}" -H "Authorization: DPoP $TOKEN" "$CALL")"
expect_eq "the stolen token as Bearer, with a certificate of the bank's CA: 401" 401 \
    "$(call "${THIEF[@]}" -H "Authorization: Bearer $TOKEN" "$CALL")"
NONCE=$(sed -n 's/^DPoP-Nonce: //Ip' "$TMP/h" | tr -d '\r')
[ -n "$NONCE" ] || NONCE=$(call "${THIEF[@]}" -H "Authorization: DPoP $TOKEN" "$CALL" >/dev/null;
    sed -n 's/^DPoP-Nonce: //Ip' "$TMP/h" | tr -d '\r')
check "  the gateway hands out nonces (DPoP-Nonce)" test -n "$NONCE"
"$PROOF" keygen ES256 "$TMP/thief-dpop.pem"
expect_eq "the stolen token with the thief's own proof (and the gateway's nonce): 401" 401 \
    "$(call "${THIEF[@]}" -H "Authorization: DPoP $TOKEN" \
        -H "DPoP: $("$PROOF" proof "$TMP/thief-dpop.pem" POST "$CALL" "$TOKEN" 0 "$NONCE")" "$CALL")"
expect_contains "  invalid_dpop_proof" 'error="invalid_dpop_proof"' "$(cat "$TMP/h")"
TOOL_URL="http://127.0.0.1:$TOOL_PORT/tools/check_market_holidays"
expect_eq "straight at the tool server, as Bearer: 401 (libmandate's verifier)" 401 \
    "$(call -H "Authorization: Bearer $TOKEN" "$TOOL_URL")"
expect_eq "straight at the tool server, with the thief's proof: 401" 401 \
    "$(call -H "Authorization: DPoP $TOKEN" \
        -H "DPoP: $("$PROOF" proof "$TMP/thief-dpop.pem" POST "$CALL" "$TOKEN")" "$TOOL_URL")"
check "  the tool server says why" grep -q "another key than the token" "$TMP/tool.log"
check "no token or secret in the broker's log" bash -c "! grep -qF -- '$TOKEN' '$LOG' && ! grep -qF -- '$SECRET' '$LOG'"

stop_daemon
expect_eq "clean stop" 0 "$DAEMON_STATUS"
check "no sanitizer report" bash -c "! grep -q 'Sanitizer' '$LOG' '$TMP/tool.log'"
kill "$NGINX_PID" "$TOOL_PID" 2>/dev/null

# --- what the README says: examples/marketpulse/run --bank, and the agent it prints -----
OUT="$TMP/run-bank"
R_BROKER=$(free_port) R_TOOL=$(free_port) R_GW=$(free_port)
start_run run "Ctrl-C stops all three" 30 env MARKETPULSE_BUILD="$BUILDDIR" MARKETPULSE_OUT="$OUT" \
    MARKETPULSE_BROKER="127.0.0.1:$R_BROKER" MARKETPULSE_TOOL="127.0.0.1:$R_TOOL" \
    MARKETPULSE_GATEWAY="127.0.0.1:$R_GW" bash examples/marketpulse/run --bank --today 2026-02-13
check "run --bank is up and says so" grep -q "^Bank mode:" "$TMP/run.out" ||
    { cat "$TMP/run.out" "$TMP/run.err"; tail -n 20 "$OUT/mandated.log"; fatal "run --bank did not start"; }
expect_contains "README.md shows: bash examples/marketpulse/run --bank" "bash examples/marketpulse/run --bank" \
    "$(cat "$SRCDIR/examples/marketpulse/README.md")"
AGENT_CMD=$(sed -n '/MANDATE_CLIENT_SECRET=/,/check_market_holidays$/p' "$TMP/run.out")
out=$(bash -c "$AGENT_CMD" 2>"$TMP/run-agent.err")
expect_eq "the agent command it prints: 200 through the https gateway" 200 "$(head -n 1 <<<"$out")"
expect_contains "  a DPoP-bound token" "token_type DPoP" "$(cat "$TMP/run-agent.err")"
expect_eq "  without a client certificate: 400" 400 \
    "$(call --cacert "$OUT/pki/ca.pem" -H "Authorization: Bearer x" "https://127.0.0.1:$R_GW/tools/check_market_holidays")"
stop_run "$RUN_PID" "run --bank and every server it started have stopped"
finish
