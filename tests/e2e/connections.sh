#!/bin/bash
# Slow and greedy clients cannot take the daemon down (issue 20, finding 1).
# The attack that hung it: over a thousand connections from one client, each
# sending a request line, a Host line and then one more header line every
# few seconds (slowloris). With libmicrohttpd 0.9.75 that left its workers
# waiting on a mutex for ever: nothing answered, even after the client had
# gone, and SIGTERM hung. Here the same attack, scaled to small limits, from
# one address and then from several: the daemon must answer others while
# it lasts, answer at once after it, count what it closed in /metrics, and
# stop cleanly on SIGTERM.
. "$(dirname "$0")/lib.sh"

SLOW="$BUILDDIR/tests/slow-client"
STATE="$TMP/state"
CONF="$STATE/mandate.conf"
make_state "$STATE"
# 60 connections in all, 20 per address, 2 s for a request, 3 s of idling
sed -i 's|^server: {|server: {\n  connection_limit = 60;\n  connections_per_address = 20;\n  request_timeout = 2;\n  connection_timeout = 3;|' "$CONF"
LOG="$TMP/daemon.log"
check "daemon starts" start_daemon "$CONF" "$LOG" || cat "$LOG"

metric() { # the value of mandate_http_connections_closed_total{reason="$1"}
    curl -s "$BASE/metrics" | sed -n "s/^mandate_http_connections_closed_total{reason=\"$1\"} //p"
}

# 1. One address opens 150 trickling connections: 20 are held, the rest
#    closed at once; the 20 are shut down 2 s after their request line.
"$SLOW" -s 127.0.0.2 127.0.0.1 "$PORT" 150 5000 1000 >"$TMP/one.out" 2>&1 &
one=$!
sleep 1
expect_eq "during the attack, another address is served" 200 \
    "$(http_status "$BASE/healthz" --max-time 1)"
wait "$one"
echo "one address: $(cat "$TMP/one.out")"
expect_eq "130 of 150 connections closed at the per-address cap" 130 "$(metric address_limit)"
expect_eq "the 20 held ones closed at the request deadline" 20 "$(metric request_deadline)"
expect_contains "the slow client saw every connection closed by the daemon" \
    "opened 150, refused 0, closed_by_server 150" "$(cat "$TMP/one.out")"

# 2. Five addresses, 30 each: 100 wanted, 60 slots. The slots fill up; new
#    clients wait in the backlog until the deadline frees slots, and are
#    then served (curl waits up to 5 s).
for a in 3 4 5 6 7; do
    "$SLOW" -s "127.0.0.$a" 127.0.0.1 "$PORT" 30 6000 1000 >"$TMP/many.$a" 2>&1 &
    eval "many_$a=\$!"
done
sleep 1
expect_eq "with every slot taken, a new client is served once the deadline frees one" 200 \
    "$(http_status "$BASE/healthz" --max-time 5)"
for a in 3 4 5 6 7; do eval "wait \$many_$a"; done
cat "$TMP"/many.*

# 3. The request line itself trickled, a byte a second: never a whole
#    request line, so the idle deadline (connection_timeout) ends it.
"$SLOW" -l -s 127.0.0.8 127.0.0.1 "$PORT" 10 5000 1000 >"$TMP/line.out" 2>&1
echo "request line trickled: $(cat "$TMP/line.out")"
check "connections trickling their request line are closed at the idle deadline" \
    test "$(metric idle_deadline)" -ge 10

# 4. After the attacks, at once: served within a second, from every address
expect_eq "healthz within a second after the attacks" 200 \
    "$(http_status "$BASE/healthz" --max-time 1)"
expect_eq "  and from an attacking address too" 200 \
    "$(http_status "$BASE/healthz" --max-time 1 --interface 127.0.0.2)"
check "no connection left in CLOSE-WAIT on the daemon's port" \
    bash -c "[ \"\$(ss -Htn state close-wait \"( sport = :$PORT )\" | wc -l)\" -eq 0 ]"
check "the log says what was closed, in a summary line" \
    wait_for_log "$LOG" "connections from addresses at server.connections_per_address"

# 5. A token request still works end to end
"$MANDATECTL" -c "$CONF" client create after-attack --scope "mcp:call" \
    --secret-file "$TMP/secret" >/dev/null
expect_eq "a token after the attacks" 200 \
    "$(http_status "$BASE/oauth2/token" --max-time 2 -u "after-attack:$(cat "$TMP/secret")" \
        -d grant_type=client_credentials -d scope=mcp:call)"

# 6. SIGTERM with attackers still connected: a clean exit within the drain time
"$SLOW" -s 127.0.0.9 127.0.0.1 "$PORT" 40 8000 1000 >/dev/null 2>&1 &
slow=$!
sleep 1
start=$(date +%s)
stop_daemon
took=$(($(date +%s) - start))
expect_eq "SIGTERM with slow clients connected: exit 0" 0 "$DAEMON_STATUS"
check "  within the drain time (10 s), took ${took}s" test "$took" -le 10
kill "$slow" 2>/dev/null
wait "$slow" 2>/dev/null
check "no sanitizer report" bash -c "! grep -q 'Sanitizer' '$LOG'"

finish
