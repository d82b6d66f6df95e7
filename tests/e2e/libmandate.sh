#!/bin/bash
# libmandate against the real daemon: tests/libmandate-probe gets a token
# with mandate_token_source and checks it with mandate_verifier (right
# audience and scope, then a scope it lacks), rotates the keys with
# mandatectl, and checks that a token under the new key verifies. Then the
# MarketPulse tool server (examples/marketpulse/market-calendar, which checks
# tokens with mandate_verifier and sees no client certificate) is shown a
# certificate-bound token as a bearer token, as a thief would: refused.
. "${MANDATE_SRCDIR:-.}/tests/e2e/lib.sh"

PROBE="$BUILDDIR/tests/libmandate-probe"
AUDIENCE=https://mcp.example/market-calendar
new_state
# the certificate comes forwarded from the trusted proxy address, as nginx does
sed -i 's|^server: {|server: {\n  trusted_proxies = ["127.0.0.1"];\n  client_certificate_header = "X-Client-Cert";|' "$CONF"
daemon_up

out=$("${CTL[@]}" client create --prefix probe --scope "gateway:invoke mcp:call" \
    --default-scope "mcp:call" --audience "$AUDIENCE" 2>/dev/null)
expect_eq "client create exits 0" 0 "$?"
ID=$(printf '%s\n' "$out" | sed -n 's/^client_id: //p')
SECRET=$(printf '%s\n' "$out" | client_secret)

out=$(MANDATE_CLIENT_SECRET="$SECRET" "$PROBE" "$BASE/oauth2/token" "$ID" "$BASE" "$AUDIENCE" \
    -- "${CTL[@]}" keys rotate 2>&1)
status=$?
printf '%s\n' "$out" | sed 's/^/  probe: /'
expect_eq "the probe passes" 0 "$status"
expect_contains "it verified a token under the rotated key" "ok: exactly one refetch" "$out"
check "the secret is not in its output" bash -c "! grep -qF -- '$SECRET' <<<\"\$1\"" _ "$out"

# a certificate-bound token (cnf x5t#S256) at the tool server, without the
# certificate: refused (review s32, finding 1: it was served)
issuer_is_base
PKI="$TMP/pki"
mkdir -p "$PKI"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=agent-s" \
    -keyout "$PKI/self.key" -out "$PKI/self.pem" 2>/dev/null
"${CTL[@]}" client create agent-s --scope mcp:call --audience "$AUDIENCE" \
    --auth self_signed_tls_client_auth --tls-cert "$PKI/self.pem" >/dev/null
ESC=$(python3 -c 'import sys,urllib.parse;print(urllib.parse.quote(open(sys.argv[1]).read(),safe=""))' "$PKI/self.pem")
BOUND=$(json_get "$(curl -s -H "X-Client-Cert: $ESC" -d grant_type=client_credentials \
    -d client_id=agent-s -d scope=mcp:call --data-urlencode "resource=$AUDIENCE" "$TOKEN_URL")" access_token)
check "a certificate-bound token for the certificate client" test -n "$BOUND"
expect_contains "its cnf names the certificate" '"x5t#S256"' "$(jwt_claims "$BOUND")"
TPORT=$((20000 + RANDOM % 20000))
"$BUILDDIR/examples/marketpulse/market-calendar" --listen "127.0.0.1:$TPORT" --issuer "$BASE" \
    --audience "$AUDIENCE" >"$TMP/tool.log" 2>&1 &
PIDS="$PIDS $!"
for i in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$TPORT/healthz" && break; sleep 0.1; done
call_tool() {
    curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $1" \
        -H 'Content-Type: application/json' -d '{"country_code":"US"}' \
        "http://127.0.0.1:$TPORT/tools/check_market_holidays"
}
expect_eq "the tool server serves a bearer token" 200 \
    "$(call_tool "$(token_for "$ID" "$SECRET" -d scope=mcp:call)")"
expect_eq "the tool server refuses the certificate-bound token as Bearer" 401 "$(call_tool "$BOUND")"
expect_contains "and says why" "certificate-bound (cnf x5t#S256), presented without a client certificate" \
    "$(cat "$TMP/tool.log")"

stop_daemon
expect_eq "clean stop" 0 "$DAEMON_STATUS"
check "no sanitizer report" bash -c "! grep -q 'Sanitizer' '$LOG'"
finish
