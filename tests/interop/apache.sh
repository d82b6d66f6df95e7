#!/bin/bash
# Apache httpd with mod_oauth2 (Debian's libapache2-mod-oauth2, liboauth2) as
# the MarketPulse gateway, from examples/marketpulse/apache-mod-oauth2.conf:
# two Apache servers run unprivileged from their own temp folders in front of
# the market calendar tool server, one checking Mandate's tokens with the
# JWKS, one by introspection. Both: 401 without a token, 200 with one (and
# MCP through it), a token of another audience, one without mcp:call and a
# forged (unsigned) one refused, an expired token refused (the example's expiry=0 and
# verify.exp=required: mod_oauth2's default cache would pass it for 300 s).
# Introspection: a revoked token and a disabled client refused on the next
# call; JWKS: a revoked token passes until it expires (what doc/gateways.md
# says). Prints the gateway's latency per request as seen here (not judged).
. "${MANDATE_SRCDIR:-.}/tests/e2e/lib.sh"
. "$SRCDIR/tests/interop/marketpulse.sh"

APACHE=$(command -v apache2 || echo /usr/sbin/apache2)
[ -x "$APACHE" ] || fatal "apache2 is needed (Debian: apt-get install apache2-bin libapache2-mod-oauth2)"
[ -f /usr/lib/apache2/modules/mod_oauth2.so ] ||
    fatal "mod_oauth2 is needed (Debian: apt-get install libapache2-mod-oauth2)"
EXAMPLE="$SRCDIR/examples/marketpulse/apache-mod-oauth2.conf"

new_state
marketpulse_target "$CONF"
daemon_up
issuer_is_base
new_client() { # ID SCOPE AUDIENCE [more options]: prints the secret
    local id=$1 scope=$2 aud=$3
    shift 3
    "${CTL[@]}" client create "$id" --scope "$scope" --default-scope "$scope" --audience "$aud" "$@" \
        2>/dev/null | client_secret
}
AGENT_SECRET=$(new_client marketpulse-agent "gateway:invoke mcp:call" "$AUD")
READER_SECRET=$(new_client news-reader "gateway:invoke" "$AUD")
NEWS_SECRET=$(new_client news-agent "mcp:call" https://mcp.example/news)
SHORT_SECRET=$(new_client short-lived "mcp:call" "$AUD" --ttl 4)
GW_SECRET=$(new_client apache-gateway "gateway:invoke" "$AUD" --introspect)
check "the gateway's introspection client" test -n "$GW_SECRET"

start_calendar "$BASE"

# start_apache NAME [-D MANDATE_INTROSPECT]: Apache from the example in
# $TMP/NAME on a free port; sets APACHE_URL. Run as root (CI), its workers
# run as nobody; as anyone else, as them.
start_apache() {
    local name=$1 dir="$TMP/$1" port
    shift
    port=$(free_port)
    mkdir -p "$dir"
    chmod 755 "$dir"
    local user group
    user=$(id -un)
    group=$(id -gn)
    if [ "$(id -u)" -eq 0 ]; then user=nobody group=nogroup; fi
    local env=(env MARKETPULSE_APACHE_DIR="$dir" MARKETPULSE_APACHE_LISTEN="127.0.0.1:$port"
        MARKETPULSE_TOOL="127.0.0.1:$TOOL_PORT" MARKETPULSE_RESOURCE="$AUD" MANDATE_ISSUER="$BASE"
        APACHE_RUN_USER="$user" APACHE_RUN_GROUP="$group"
        MANDATE_INTROSPECT_CLIENT=apache-gateway MANDATE_INTROSPECT_SECRET="$GW_SECRET")
    "${env[@]}" "$APACHE" -t -f "$EXAMPLE" "$@" >"$dir/configtest.log" 2>&1 ||
        { cat "$dir/configtest.log"; fatal "apache2 -t ($name)"; }
    "${env[@]}" "$APACHE" -f "$EXAMPLE" -DFOREGROUND "$@" >"$dir/stderr.log" 2>&1 &
    PIDS="$PIDS $!"
    APACHE_URL="http://127.0.0.1:$port"
    for _ in $(seq 1 100); do
        curl -s -o /dev/null "$APACHE_URL/.well-known/oauth-protected-resource" && return 0
        sleep 0.05
    done
    cat "$dir/stderr.log" "$dir/error.log"
    fatal "apache2 ($name) did not start"
}
start_apache jwks
JWKS_GW=$APACHE_URL
start_apache introspect -D MANDATE_INTROSPECT
INTRO_GW=$APACHE_URL

CALL=(-X POST -H "Content-Type: application/json" -d '{"country_code": "US", "days_ahead": 7}')
call() { # GATEWAY TOKEN: the status of the workshop's call through it
    local auth=()
    [ -n "$2" ] && auth=(-H "Authorization: Bearer $2")
    curl -s -o "$TMP/call.body" -D "$TMP/call.h" -w '%{http_code}' "${auth[@]}" "${CALL[@]}" \
        "$1/tools/check_market_holidays"
}
mcp_call() { # GATEWAY TOKEN: the status of an MCP initialize through it
    curl -s -o "$TMP/mcp.body" -w '%{http_code}' -H "Authorization: Bearer $2" \
        -H "Content-Type: application/json" -H "Accept: application/json, text/event-stream" \
        -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}' \
        "$1/mcp"
}

TOKEN=$(token_for marketpulse-agent "$AGENT_SECRET")
NARROW=$(token_for news-reader "$READER_SECRET")
NEWS=$(token_for news-agent "$NEWS_SECRET")
check "tokens for the agent, the reader and the news agent" test -n "$TOKEN" -a -n "$NARROW" -a -n "$NEWS"
# A token signed by the broker's key but for another issuer's name cannot be
# made from outside; a forged one (alg none) stands for the rest.
FORGED="$(printf '{"alg":"none","typ":"at+jwt"}' | b64url).$(jwt_claims "$TOKEN" | b64url)."

for mode in jwks introspect; do
    [ $mode = jwks ] && GW=$JWKS_GW || GW=$INTRO_GW
    expect_eq "$mode: no token: 401" 401 "$(call "$GW" "")"
    expect_contains "$mode: with a Bearer challenge" "WWW-Authenticate: Bearer" "$(cat "$TMP/call.h")"
    expect_eq "$mode: the agent's token: 200" 200 "$(call "$GW" "$TOKEN")"
    out=$(tr -d ' ' <"$TMP/call.body")
    expect_contains "$mode: the tool's answer (Presidents' Day 2026 is 16 February)" '"date":"2026-02-16"' "$out"
    expect_eq "$mode: MCP through it: 200" 200 "$(mcp_call "$GW" "$TOKEN")"
    expect_contains "$mode: the MCP server answers" '"protocolVersion"' "$(cat "$TMP/mcp.body")"
    expect_eq "$mode: a token without mcp:call: refused" 401 "$(call "$GW" "$NARROW")"
    expect_eq "$mode: a token for another audience: refused" 401 "$(call "$GW" "$NEWS")"
    expect_eq "$mode: a forged unsigned token: refused" 401 "$(call "$GW" "$FORGED")"
    expect_eq "$mode: another path than the gated ones: 403" 403 \
        "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$GW/healthz")"
done

# The gateway's latency per request, as this (shared, loaded) machine shows
# it, the median of 50 calls on one connection: the verdict alone (a valid
# token without mcp:call, refused after its check, no tool server), the whole
# call through each gateway, and the tool server directly (it checks the
# token too). Printed, not judged.
median_ms() { # URL TOKEN
    local urls=()
    for _ in $(seq 1 50); do urls+=("$1"); done
    curl -s -o /dev/null -w '%{stderr}%{time_total}\n' -H "Authorization: Bearer $2" "${CALL[@]}" \
        "${urls[@]}" 2>&1 >/dev/null | sort -n | awk '{ t[NR] = $1 } END { printf "%.2f", t[int((NR + 1) / 2)] * 1000 }'
}
TOOL_PATH=/tools/check_market_holidays
echo "latency per call, ms (median of 50 on one connection):" \
    "JWKS verdict $(median_ms "$JWKS_GW$TOOL_PATH" "$NARROW")," \
    "introspection verdict $(median_ms "$INTRO_GW$TOOL_PATH" "$NARROW")," \
    "call through JWKS $(median_ms "$JWKS_GW$TOOL_PATH" "$TOKEN")," \
    "through introspection $(median_ms "$INTRO_GW$TOOL_PATH" "$TOKEN")," \
    "the tool server directly $(median_ms "http://127.0.0.1:$TOOL_PORT$TOOL_PATH" "$TOKEN")"

# Revocation: introspection sees it on the next call; the JWKS cannot.
printf '%s\n' "$TOKEN" >"$TMP/token"
"${CTL[@]}" token revoke --token-file "$TMP/token" >/dev/null
check "mandatectl token revoke" test $? -eq 0
start=$(date +%s%N)
for _ in $(seq 1 60); do
    [ "$(call "$INTRO_GW" "$TOKEN")" = 401 ] && break
    sleep 0.05
done
waited=$((($(date +%s%N) - start) / 1000000))
expect_eq "introspection: the revoked token is refused" 401 "$(call "$INTRO_GW" "$TOKEN")"
echo "introspection: refused ${waited} ms after the revocation (the broker reads the store's generation every second)"
expect_eq "JWKS: the revoked token still passes until it expires (doc/gateways.md)" 200 \
    "$(call "$JWKS_GW" "$TOKEN")"
TOKEN2=$(token_for marketpulse-agent "$AGENT_SECRET")
expect_eq "introspection: a new token works" 200 "$(call "$INTRO_GW" "$TOKEN2")"
"${CTL[@]}" client disable marketpulse-agent >/dev/null
for _ in $(seq 1 60); do
    [ "$(call "$INTRO_GW" "$TOKEN2")" = 401 ] && break
    sleep 0.05
done
expect_eq "introspection: after mandatectl client disable: 401" 401 "$(call "$INTRO_GW" "$TOKEN2")"

# Expiry: a 4 s token passes both, then neither (no cached verdict outlives it).
SHORT=$(token_for short-lived "$SHORT_SECRET")
expect_eq "jwks: the short-lived token: 200" 200 "$(call "$JWKS_GW" "$SHORT")"
expect_eq "introspect: the short-lived token: 200" 200 "$(call "$INTRO_GW" "$SHORT")"
exp=$(jwt_claims "$SHORT" | sed -n 's/.*"exp":\([0-9]*\).*/\1/p')
while [ "$(date +%s)" -le "$exp" ]; do sleep 0.2; done
sleep 0.3
expect_eq "jwks: after its exp: 401" 401 "$(call "$JWKS_GW" "$SHORT")"
expect_eq "introspect: after its exp: 401" 401 "$(call "$INTRO_GW" "$SHORT")"

check "the access log names the caller" grep -q ' short-lived \[' "$TMP/jwks/access.log"
check "no token in Apache's logs" bash -c "! grep -qF '${SHORT:0:40}' '$TMP/jwks/access.log' '$TMP/jwks/error.log' '$TMP/introspect/error.log'"
stop_daemon
expect_eq "clean stop" 0 "$DAEMON_STATUS"
check "no sanitizer report" bash -c "! grep -q Sanitizer '$LOG' '$TMP/tool.log'"
finish
