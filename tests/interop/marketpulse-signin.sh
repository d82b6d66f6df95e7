#!/bin/bash
# The README's "Sign people in" path, as written: `bash
# examples/marketpulse/run --signin demo` starts the broker, the market
# calendar tool server, nginx and the bundled demo IdP (npm oidc-provider),
# and prints the demo user and password; an MCP client pointed at the
# gateway's /mcp (the official MCP SDK, signin-marketpulse.mjs) registers
# itself, a person signs in in Debian's chromium (puppeteer-core) and the
# SDK calls check_market_holidays; then curl calls the tool through the
# gateway with that token, as does the agent with client credentials.
# The run script is stopped by its PID and every server it started must be
# gone. Only the ports (free ones), the output folder and the build tree
# (this one, already built) are set through the script's environment
# variables; the command line is the README's.
# No chromium: skipped (77). No node, npm or registry: FAIL (npm.sh).
. "${MANDATE_SRCDIR:-.}/tests/e2e/lib.sh"

CHROMIUM=${SIGNIN_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ]; then
    echo "SKIP: no chromium at $CHROMIUM (Debian: apt-get install chromium, or bash .ci/install-deps)"
    exit 77
fi
. "$SRCDIR/tests/interop/npm.sh"
command -v nginx >/dev/null 2>&1 || fatal "nginx is needed (Debian: apt-get install nginx-light)"
npm_copy signin-browser.mjs signin-marketpulse.mjs

# --- what the READMEs tell people to run -------------------------------------------------
CMD="bash examples/marketpulse/run --signin demo"
check "README.md shows: $CMD" grep -qF "$CMD" "$SRCDIR/README.md"
check "examples/marketpulse/README.md shows: $CMD" grep -qF "$CMD" "$SRCDIR/examples/marketpulse/README.md"
check "README.md shows: bash examples/marketpulse/run --signin idp.conf" \
    grep -qF "bash examples/marketpulse/run --signin idp.conf" "$SRCDIR/README.md"
check "README.md: the MCP URL to point a client at" grep -qF "http://127.0.0.1:9000/mcp" "$SRCDIR/README.md"
check "the example IdP file is there" test -f "$SRCDIR/examples/marketpulse/idp.conf.example"

BROKER_PORT=$(free_port)
GW_PORT=$(free_port)
TOOL_PORT=$(free_port)
IDP_PORT=$(free_port)
BASE="http://127.0.0.1:$BROKER_PORT"
GW="http://127.0.0.1:$GW_PORT"
OUT="$TMP/out"
# the script's directory is found from $0, as when run from the top of the
# repository; only its environment differs
start_run run "^Ctrl-C stops them all" 60 env MARKETPULSE_BUILD="$BUILDDIR" MARKETPULSE_OUT="$OUT" \
    MARKETPULSE_NPM_DIR="$NPM_DIR" MARKETPULSE_BROKER="127.0.0.1:$BROKER_PORT" \
    MARKETPULSE_GATEWAY="127.0.0.1:$GW_PORT" MARKETPULSE_TOOL="127.0.0.1:$TOOL_PORT" \
    MARKETPULSE_DEMO_IDP_PORT="$IDP_PORT" $CMD
cat "$TMP/run.out"
sed 's/^/run stderr: /' "$TMP/run.err"
check "the run script is up and says so" grep -q "^MarketPulse is up" "$TMP/run.out" ||
    { tail -n 30 "$OUT/mandated.log" "$OUT/demo-idp.log" 2>/dev/null; fatal "examples/marketpulse/run --signin demo did not start"; }
PASSWORD=$(sed -n 's/.*user: alice *password: \([^ ]*\).*/\1/p' "$TMP/run.out")
check "it printed the demo user's password" test -n "$PASSWORD"
expect_contains "it says where to point an MCP client" "$GW/mcp" "$(cat "$TMP/run.out")"
expect_contains "it names Mandate's redirect URI at the IdP" "$BASE/login/backend-idp/callback" "$(cat "$TMP/run.out")"
expect_eq "the IdP file is installed, mode 0600" 600 "$(stat -c %a "$OUT/state/mandate.d/backend-idp.conf")"

# --- the gateway, as an MCP client first sees it -------------------------------------------
hdr=$(curl -s -D - -o /dev/null -X POST "$GW/mcp" -H 'content-type: application/json' -d '{}')
expect_contains "the gateway without a token: 401" " 401 " "$hdr"
expect_contains "with the resource metadata in the challenge" \
    "resource_metadata=\"$GW/.well-known/oauth-protected-resource\"" "$hdr"
expect_contains "the resource is the gateway's /mcp (what the MCP SDK takes)" "\"resource\":\"$GW/mcp\"" \
    "$(curl -s "$GW/.well-known/oauth-protected-resource")"

# --- a person signs in through the MCP SDK --------------------------------------------------
echo "--- the MCP SDK at $GW/mcp, alice at the demo IdP"
TOKEN=""
node_token() { TOKEN=$1; } # "@token TOKEN": no answer
run_node signin-marketpulse.mjs SIGNIN_BASE="$BASE" SIGNIN_MCP_URL="$GW/mcp" SIGNIN_USER=alice \
    SIGNIN_PASSWORD="$PASSWORD" SIGNIN_CHROMIUM="$CHROMIUM" \
    SIGNIN_SHOTS="$BUILDDIR/tests/interop/artifacts/marketpulse-signin"
check "the SDK handed over an access token" test -n "$TOKEN"

# --- the person's token, then the agent's, through the gateway ------------------------------
holidays() { # TOKEN: the plain tool through the gateway
    curl -s -w '\n%{http_code}' -X POST "$GW/tools/check_market_holidays" -H "Content-Type: application/json" \
        -H "Authorization: Bearer $1" -d '{"country_code": "US", "days_ahead": 365}'
}
out=$(holidays "$TOKEN")
expect_eq "curl with the person's token through the gateway: 200" 200 "$(tail -n 1 <<<"$out")"
expect_contains "and the NYSE holidays" '"holidays":[{' "$out"
AGENT=$("$BUILDDIR/mandatectl" token get --token-url "$BASE/oauth2/token" --client-id "$(cat "$OUT/marketpulse.id")" \
    --scope "gateway:invoke mcp:call" --secret-file "$OUT/marketpulse.secret" 2>"$TMP/agent.err")
out=$(holidays "$AGENT")
expect_eq "the agent's client-credentials token still works: 200" 200 "$(tail -n 1 <<<"$out")" || cat "$TMP/agent.err"
check "the sign-in is in the audit trail" grep -qF '"event":"code.redeemed"' "$OUT"/state/audit/*.jsonl
check "the demo IdP saw alice sign in" grep -q '^login alice' "$OUT/demo-idp.log"

# as examples/marketpulse/README.md says: user revoke ends alice's sign-ins at once
check "mandatectl user revoke person-alice" \
    "$BUILDDIR/mandatectl" -c "$OUT/state/mandate.conf" user revoke person-alice
for _ in $(seq 1 30); do
    code=$(holidays "$TOKEN" | tail -n 1)
    [ "$code" = 401 ] && break
    sleep 0.1
done
expect_eq "the person's token is refused at the gateway within 3 s" 401 "$code"

# --- stop everything by the run script's PID --------------------------------------------------
stop_run "$RUN_PID" "the run script and every server it started have stopped"
check "nothing listens on the gateway's port any more" bash -c "! curl -s -o /dev/null '$GW/mcp'"

# --- the README's other command: the example IdP file as it is, unedited ---------------------
# (the broker reads the IdP's discovery document at the first sign-in, not at
# start: the example's made-up Entra ID tenant is never asked)
cp "$SRCDIR/examples/marketpulse/idp.conf.example" "$TMP/idp.conf"
start_run run2 "^Ctrl-C stops them all" 30 env MARKETPULSE_BUILD="$BUILDDIR" \
    MARKETPULSE_OUT="$TMP/out-idp" MARKETPULSE_BROKER="127.0.0.1:$BROKER_PORT" \
    MARKETPULSE_GATEWAY="127.0.0.1:$GW_PORT" MARKETPULSE_TOOL="127.0.0.1:$TOOL_PORT" \
    bash examples/marketpulse/run --signin "$TMP/idp.conf"
check "run --signin with idp.conf.example as it is: up" grep -q "^MarketPulse is up" "$TMP/run2.out" ||
    { cat "$TMP/run2.out" "$TMP/run2.err"; tail -n 20 "$TMP/out-idp/mandated.log"; }
expect_contains "it names the example's IdP" "People sign in at https://login.microsoftonline.com/" \
    "$(cat "$TMP/run2.out")"
meta=$(curl -s "$BASE/.well-known/oauth-authorization-server")
expect_contains "the broker offers sign-in with it" "\"authorization_endpoint\":\"$BASE/oauth2/authorize\"" "$meta"
kill -TERM "$RUN_PID"
wait "$RUN_PID" 2>/dev/null
PIDS=$(echo "$PIDS" | sed "s/ $RUN_PID\b//")
check "the run script stopped" bash -c "! kill -0 $RUN_PID 2>/dev/null"
check "no client secret, password or token in the logs" bash -c \
    "! grep -qF -e '$PASSWORD' -e '$(cat "$OUT/demo-idp/client.secret")' -e '$TOKEN' '$OUT/mandated.log' '$OUT/market-calendar.log'"
check "no sanitizer report" bash -c "! grep -q Sanitizer '$OUT/mandated.log' '$OUT/market-calendar.log'"
if [ "$FAILURES" -ne 0 ]; then
    for f in mandated.log demo-idp.log market-calendar.log nginx/error.log; do
        echo "--- $f (last 30 lines)"
        tail -n 30 "$OUT/$f" 2>/dev/null
    done
fi
finish
