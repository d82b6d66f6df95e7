#!/bin/bash
# Nobody can fill the audit trail with refused requests (issue 20, finding 4).
# The attack: 16,000 requests with bad credentials in 3.9 s added 5.55 MB
# to the trail, one record each, before any limit applied. Here: a flood of
# bad credentials from one loopback address; the trail grows by a tenth of
# a record per refusal at most, every refusal is still accounted for (the
# "count" of the records adds up), the address gets 429 once over its
# budget, and a legitimate client on the same and on another address is
# served all along. Then the address behind a trusted proxy.
. "$(dirname "$0")/lib.sh"

STATE="$TMP/state"
CONF="$STATE/mandate.conf"
make_state "$STATE"
# the default budget (20 refusals a second, 100 at once); 127.0.0.5 is a
# proxy whose X-Forwarded-For is believed
sed -i 's|^server: {|server: {\n  trusted_proxies = ["127.0.0.5"];|' "$CONF"
CAL=https://mcp.example/cal
printf 'targets = ( { name = "cal"; paths = ["/mcp"]; audience = "%s"; scopes = ["mcp:call"]; } );\n' \
    "$CAL" >>"$CONF"
LOG="$TMP/daemon.log"
check "daemon starts" start_daemon "$CONF" "$LOG" || cat "$LOG"
"$MANDATECTL" -c "$CONF" client create good-agent --scope "mcp:call" --audience "$CAL" \
    --secret-file "$TMP/good.secret" >/dev/null
GOOD=$(cat "$TMP/good.secret")
trail_bytes() { cat "$STATE"/audit/*.jsonl | wc -c; }
# refusals of token requests from ADDRESS, as the trail counts them
refused_from() {
    grep -h '"event":"token.refused"' "$STATE"/audit/*.jsonl | grep -F "\"peer\":\"$1\"" |
        awk '{ if (match($0, /"count":[0-9]+/)) n += substr($0, RSTART + 8, RLENGTH - 8); else n++ }
             END { print n + 0 }'
}
token_as() { # ADDRESS CLIENT SECRET: the status of a client credentials request
    http_status "$BASE/oauth2/token" --interface "$1" -u "$2:$3" -d grant_type=client_credentials \
        -d scope=mcp:call
}

# one refusal first, to know what a record of it weighs
expect_eq "a bad secret: 401" 401 "$(token_as 127.0.0.2 good-agent wrong-secret)"
RECORD=$(grep -h '"event":"token.refused"' "$STATE"/audit/*.jsonl | tail -n 1 | wc -c)
echo "one refusal record: $RECORD bytes"

# the flood: 3,000 requests with a wrong secret from 127.0.0.3, 16 at a time
FLOOD=3000
for _ in $(seq 1 $FLOOD); do printf 'url = "%s"\noutput = "/dev/null"\n' "$BASE/oauth2/token"; done \
    >"$TMP/flood.curl"
before=$(trail_bytes)
start=$(date +%s%N)
curl -s --parallel --parallel-max 16 --interface 127.0.0.3 -K "$TMP/flood.curl" \
    -u "good-agent:wrong-secret" -d grant_type=client_credentials \
    -D "$TMP/flood.headers" -w '%{http_code}\n' >"$TMP/flood.status" 2>/dev/null &
flood=$!
# meanwhile, the legitimate client from the same address and from another
sleep 0.5
same=$(token_as 127.0.0.3 good-agent "$GOOD")
other=$(token_as 127.0.0.4 good-agent "$GOOD")
wait "$flood"
took=$((($(date +%s%N) - start) / 1000000))
echo "flood of $FLOOD requests took ${took} ms: $(sort "$TMP/flood.status" | uniq -c | tr '\n' ' ')"
expect_eq "during the flood, a good client on the flooding address is served" 200 "$same"
expect_eq "  and one on another address" 200 "$other"
expect_eq "every flood request was answered" $FLOOD "$(wc -l <"$TMP/flood.status")"
check "the first ones were refused 401" test "$(grep -c '^401$' "$TMP/flood.status")" -ge 100
check "  the rest got 429 once over the budget" test "$(grep -c '^429$' "$TMP/flood.status")" -ge 2000
expect_eq "  and nothing else" 0 "$(grep -cv '^\(401\|429\)$' "$TMP/flood.status")"
check "429 says when to come back" grep -q "^Retry-After: [1-9]" "$TMP/flood.headers"
expect_eq "after the flood, the good client on the flooding address: 200" 200 \
    "$(token_as 127.0.0.3 good-agent "$GOOD")"
expect_eq "a refusal from another address is not throttled by the flood: 401" 401 \
    "$(token_as 127.0.0.4 good-agent wrong-secret)"

sleep 2 # the counts of the last second are written by the next housekeeping
after=$(trail_bytes)
per=$(((after - before) / (FLOOD + 1)))
echo "trail grew by $((after - before)) bytes for $((FLOOD + 1)) refusals: $per bytes each"
check "the trail grew by at most a tenth of a record per refusal ($per <= $RECORD / 10)" \
    test "$per" -le $((RECORD / 10))
expect_eq "every refusal from the flooding address is accounted for" $FLOOD \
    "$(refused_from 127.0.0.3)"
check "  over-budget refusals are recorded as such" \
    grep -q '"over_budget":true' "$STATE"/audit/*.jsonl

# the answer over the budget says why, in JSON (a burst of 150 from 127.0.0.7)
mkdir "$TMP/burst"
for i in $(seq 1 150); do printf 'url = "%s"\noutput = "%s"\n' "$BASE/oauth2/token" "$TMP/burst/$i"; done \
    >"$TMP/burst.curl"
curl -s --parallel --parallel-max 16 --interface 127.0.0.7 -K "$TMP/burst.curl" \
    -u "good-agent:wrong-secret" -d grant_type=client_credentials 2>/dev/null
expect_contains "429's body says why" \
    '{"error":"too_many_requests","error_description":"too many refused requests from this address; retry later"}' \
    "$(cat "$TMP"/burst/* | sort -u)"

metrics=$(curl -s "$BASE/metrics")
expect_contains "refusals per address in /metrics" \
    "mandate_refusals_by_address_total{address=\"127.0.0.3\"} $FLOOD" "$metrics"
expect_contains "over-budget refusals counted" 'mandate_refusals_total{result="over_budget"}' \
    "$metrics"

# the gateway check: a flood of garbage tokens from 127.0.0.8 (a stolen
# token being guessed at, an agent retrying an expired one); a valid token
# from the same address passes meanwhile
TOKEN=$(curl -s -u "good-agent:$GOOD" -d grant_type=client_credentials -d scope=mcp:call \
    "$BASE/oauth2/token" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
# (a header in a curl config file holds for every URL after it, unless
# `next` starts a new set of options)
for i in $(seq 1 1000); do
    [ "$i" = 1 ] || echo next # between sets only: an empty last set is an error
    printf 'url = "%s"\noutput = "/dev/null"\ninterface = "127.0.0.8"\nwrite-out = "%%{http_code}\\n"\n' \
        "$BASE/gateway/check"
    printf 'header = "X-Original-URI: /mcp/tools"\nheader = "Authorization: Bearer garbage-%s"\n' "$i"
done >"$TMP/gw-flood.curl"
before=$(trail_bytes)
curl -s --parallel --parallel-max 16 -K "$TMP/gw-flood.curl" >"$TMP/gw-flood.status" 2>/dev/null
echo "gateway flood: $(sort "$TMP/gw-flood.status" | uniq -c | tr '\n' ' ')"
check "gateway checks with garbage tokens: 401, then 429 over the budget" \
    test "$(grep -c '^401$' "$TMP/gw-flood.status")" -ge 100 -a "$(grep -c '^429$' "$TMP/gw-flood.status")" -ge 500
expect_eq "  every one answered, nothing else" 1000 "$(grep -c '^\(401\|429\)$' "$TMP/gw-flood.status")"
expect_eq "  a valid token from the same address still passes" 200 \
    "$(http_status "$BASE/gateway/check" --interface 127.0.0.8 -H "X-Original-URI: /mcp/tools" \
        -H "Authorization: Bearer $TOKEN")"
expect_eq "a path no target covers: 403" 403 \
    "$(http_status "$BASE/gateway/check" --interface 127.0.0.9 -H "X-Original-URI: /elsewhere")"
sleep 2
per=$((($(trail_bytes) - before) / 1000))
check "  the trail grew by at most a tenth of a record per refused check ($per bytes)" \
    test "$per" -le $((RECORD / 10))
check "  and the path no target covers is audited" grep -q '"reason":"no target covers this path"' \
    "$STATE"/audit/*.jsonl

# behind a trusted proxy the client's own address counts; from any other
# peer, X-Forwarded-For is ignored (anyone can write it)
http_status "$BASE/oauth2/token" --interface 127.0.0.5 -H "X-Forwarded-For: 198.51.100.7, 192.0.2.9" \
    -u good-agent:wrong -d grant_type=client_credentials >/dev/null
http_status "$BASE/oauth2/token" --interface 127.0.0.6 -H "X-Forwarded-For: 192.0.2.66" \
    -u good-agent:wrong -d grant_type=client_credentials >/dev/null
sleep 1.5
expect_eq "a trusted proxy's client is the address it forwards for" 1 "$(refused_from 192.0.2.9)"
expect_eq "  (the nearest untrusted hop, not the first one named)" 0 "$(refused_from 198.51.100.7)"
expect_eq "an untrusted peer's X-Forwarded-For is ignored" 1 "$(refused_from 127.0.0.6)"
expect_eq "  and its claimed address gets nothing" 0 "$(refused_from 192.0.2.66)"

stop_daemon
expect_eq "stops cleanly" 0 "$DAEMON_STATUS"
out=$("$MANDATECTL" -c "$CONF" audit verify 2>&1)
expect_eq "the trail with counted records verifies" 0 "$?"
check "no sanitizer report" bash -c "! grep -q 'Sanitizer' '$LOG'"

finish
