#!/bin/bash
# The MarketPulse scenario of the AgentCore Identity workshop, for real: the
# broker, the market calendar tool server (C, libmandate) and nginx in front
# of it with auth_request (examples/marketpulse/nginx.conf.in), all on
# loopback. curl makes the workshop's calls; the official MCP TypeScript SDK
# connects over Streamable HTTP through the gateway with a token from the
# broker and is refused without one. Revoking the token or disabling the
# client shuts the door within a second.
. "${MANDATE_SRCDIR:-.}/tests/e2e/lib.sh"
. "$SRCDIR/tests/interop/npm.sh"

. "$SRCDIR/tests/interop/marketpulse.sh"
json_get() {
    printf '%s' "$1" | sed -n "s/.*\"$2\":\(\"\([^\"]*\)\"\|\([0-9a-z]*\)\).*/\2\3/p"
}

# the broker, with the tool server as a target
STATE="$TMP/state"
LOG="$TMP/mandated.log"
make_state "$STATE" || fatal "mandatectl init failed"
CONF="$STATE/mandate.conf"
CTL=("$MANDATECTL" -c "$CONF")
marketpulse_target "$CONF"
start_daemon "$CONF" "$LOG" || { cat "$LOG"; fatal "mandated did not start"; }
sed -i "s|^server: {|server: {\n  issuer = \"$BASE\";|" "$CONF"
kill -HUP "$DAEMON_PID"
wait_for_log "$LOG" "reloaded:" || fatal "mandated did not reload"
SECRET=$("${CTL[@]}" client create marketpulse-agent --scope "gateway:invoke mcp:call" \
    --default-scope "gateway:invoke mcp:call" --audience "$AUD" 2>/dev/null | client_secret)
READER=$("${CTL[@]}" client create news-reader --scope "gateway:invoke" \
    --default-scope "gateway:invoke" --audience "$AUD" 2>/dev/null | client_secret)
token() { json_get "$(curl -s -u "$1:$2" -d grant_type=client_credentials "$BASE/oauth2/token")" access_token; }

# the tool server and nginx from the example, asking the broker
start_marketpulse "$BASE" "$PORT"

# the workshop's Step 7, with curl
CALL=(-X POST -H "Content-Type: application/json" -d '{"country_code": "US", "days_ahead": 7}')
out=$(curl -s -D "$TMP/h" "${CALL[@]}" "$GW/tools/check_market_holidays")
expect_eq "no token: the workshop's 401 body" \
    '{"error": "Unauthorised", "message": "Valid OAuth token required", "statusCode": 401}' "$out"
expect_contains "no token: status 401" "HTTP/1.1 401" "$(cat "$TMP/h")"
expect_contains "the challenge names the resource metadata" \
    "resource_metadata=\"$GW/.well-known/oauth-protected-resource\"" "$(cat "$TMP/h")"
expect_eq "one challenge, not two (auth_request passes the broker's on)" 1 \
    "$(grep -ci '^WWW-Authenticate:' "$TMP/h")"
meta=$(curl -s "$GW/.well-known/oauth-protected-resource")
expect_contains "RFC 9728 metadata names the broker" "\"authorization_servers\":[\"$BASE\"]" "$meta"
expect_contains "and the scope" '"scopes_supported":["mcp:call"]' "$meta"

TOKEN=$(token marketpulse-agent "$SECRET")
check "the agent gets a token" test -n "$TOKEN"
out=$(curl -s -w ' %{http_code}' -H "Authorization: Bearer $TOKEN" "${CALL[@]}" "$GW/tools/check_market_holidays")
expect_contains "with the token: 200" " 200" "$out"
expect_contains "Presidents' Day 2026 is Monday 16 February" '"date":"2026-02-16"' "$(echo "$out" | tr -d ' ')"
expect_contains "markets closed" '"is_trading_day":false' "$(echo "$out" | tr -d ' ')"
expect_contains "one trading day affected" '"trading_days_affected":1' "$(echo "$out" | tr -d ' ')"
expect_contains "and the period, as examples/marketpulse/README.md shows it" \
    '"period":{"start":"2026-02-13","end":"2026-02-20"}' "$(echo "$out" | tr -d ' ')"
NARROW=$(token news-reader "$READER")
expect_eq "a token without mcp:call: 403" 403 \
    "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $NARROW" "${CALL[@]}" "$GW/tools/check_market_holidays")"
expect_eq "behind the gateway, the tool server refuses no token too" 401 \
    "$(curl -s -o /dev/null -D "$TMP/th" -w '%{http_code}' "${CALL[@]}" "http://127.0.0.1:$TOOL_PORT/tools/check_market_holidays")"
# its own challenge names metadata that answers: its own, not a URL made
# from the audience's made-up host
tool_meta_url=$(sed -n 's/.*resource_metadata="\([^"]*\)".*/\1/p' "$TMP/th" | tr -d '\r')
expect_eq "the tool server's 401 names its own resource metadata" \
    "http://127.0.0.1:$TOOL_PORT/.well-known/oauth-protected-resource" "$tool_meta_url"
expect_contains "which answers, naming the broker" "\"authorization_servers\":[\"$BASE\"]" \
    "$(curl -s "$tool_meta_url" | tr -d ' \n')"
expect_eq "and takes a good one" 200 \
    "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "${CALL[@]}" "http://127.0.0.1:$TOOL_PORT/tools/check_market_holidays")"

# the broker judges the path the tool server gets (issue 20; see nginx.conf.in)
expect_eq "an encoded dot-segment through nginx: refused (the check's 400 is nginx's 500)" 500 \
    "$(curl -s --path-as-is -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "${CALL[@]}" "$GW/tools/%2e%2e/mcp")"
expect_eq "a client's own X-Original-URI does not reach the broker" 403 \
    "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" -H "X-Original-URI: /tools/check_market_holidays" "${CALL[@]}" "$GW/admin")"
expect_eq "nor its own X-Forwarded-Uri" 200 \
    "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" -H "X-Forwarded-Uri: /admin" "${CALL[@]}" "$GW/tools/check_market_holidays")"

# a real MCP client through the gateway
out=$(cd "$NPM_DIR" && MCP_URL="$GW/mcp" MCP_TOKEN="$TOKEN" timeout 60 node mcp-client.mjs)
expect_eq "MCP SDK with a token: connected" 0 "$?"
expect_contains "tools/list has the tool" '"tools":["check_market_holidays"]' "$out"
expect_contains "tools/call answers" '2026-02-16' "$out"
expect_contains "not an error" '"isError":false' "$out"
out=$(cd "$NPM_DIR" && MCP_URL="$GW/mcp" timeout 60 node mcp-client.mjs)
expect_eq "MCP SDK without a token: refused" 3 "$?"
expect_contains "refused with 401" "401" "$out"

# revocation and disabling close the door within a second
printf '%s\n' "$TOKEN" >"$TMP/token"
"${CTL[@]}" token revoke --token-file "$TMP/token" >/dev/null
sleep 1
expect_eq "after mandatectl token revoke: 401" 401 \
    "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "${CALL[@]}" "$GW/tools/check_market_holidays")"
TOKEN2=$(token marketpulse-agent "$SECRET")
expect_eq "a new token works" 200 \
    "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN2" "${CALL[@]}" "$GW/tools/check_market_holidays")"
"${CTL[@]}" client disable marketpulse-agent >/dev/null
sleep 1
expect_eq "after mandatectl client disable: 401" 401 \
    "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN2" "${CALL[@]}" "$GW/tools/check_market_holidays")"
out=$(cd "$NPM_DIR" && MCP_URL="$GW/mcp" MCP_TOKEN="$TOKEN2" timeout 60 node mcp-client.mjs)
expect_eq "and the MCP client is refused" 3 "$?"
check "the workshop's log line" grep -q "Token validation: token_valid=true, client=marketpulse-agent" "$LOG"

stop_daemon
expect_eq "clean stop" 0 "$DAEMON_STATUS"
check "no sanitizer report" bash -c "! grep -q Sanitizer '$LOG' '$TMP/tool.log'"
finish
