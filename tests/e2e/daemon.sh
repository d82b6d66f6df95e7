#!/bin/bash
# The daemon end to end: health and readiness, errors as JSON, the body
# limit, a malformed request, SIGHUP with a broken and then a good config,
# and SIGTERM draining a request that is still in flight.
. "${MANDATE_SRCDIR:-.}/tests/e2e/lib.sh"

new_state
daemon_up

# health and readiness
body=$(curl -s -D "$TMP/h" "$BASE/healthz")
expect_eq "healthz body" '{"status":"ok"}' "$body"
expect_contains "request id header" "X-Request-Id:" "$(cat "$TMP/h")"
rid=$(sed -n 's/^X-Request-Id: \([0-9a-f]*\).*/\1/p' "$TMP/h")
expect_eq "request id is 16 hex digits" 16 "${#rid}"
check "request id on the log line" wait_for_log "$LOG" "[$rid] GET /healthz 200"
expect_eq "readyz" '{"status":"ready","store":"ok"}' "$(curl -s "$BASE/readyz")"
expect_eq "HEAD healthz" 200 "$(http_status "$BASE/healthz" -I)"

# a second daemon on a port in use fails, rather than silently taking half
# of the connections (SO_REUSEPORT)
sed "s|listen = \"127.0.0.1:0\"|listen = \"127.0.0.1:$PORT\"|" "$CONF" >"$STATE/same-port.conf"
check "the copy listens on the daemon's port" grep -q "127.0.0.1:$PORT" "$STATE/same-port.conf"
"$MANDATED" -c "$STATE/same-port.conf" >"$TMP/same-port.log" 2>&1 &
second=$!
PIDS="$PIDS $second"
for _ in $(seq 1 100); do kill -0 "$second" 2>/dev/null || break; sleep 0.05; done
check "a second daemon on the same port exits" bash -c "! kill -0 $second 2>/dev/null"
expect_contains "  and says why" "Address already in use" "$(cat "$TMP/same-port.log")"

# errors are JSON with the right status
expect_eq "unknown path 404" 404 "$(http_status "$BASE/nope")"
expect_eq "404 body" '{"error":"not_found","error_description":"no such endpoint"}' \
    "$(curl -s "$BASE/nope")"
expect_eq "wrong method 405" 405 "$(http_status "$BASE/healthz" -X DELETE)"
expect_contains "405 names the methods" "Allow: GET, HEAD" "$(curl -s -D - -o /dev/null -X POST "$BASE/healthz")"

# the body limit (64 KiB by default): announced, chunked, and just under
head -c 70000 /dev/zero | tr '\0' 'a' >"$TMP/big"
expect_eq "oversized body 413" 413 "$(http_status "$BASE/oauth2/token" --data-binary @"$TMP/big")"
expect_eq "oversized chunked body 413" 413 \
    "$(http_status "$BASE/oauth2/token" -H 'Transfer-Encoding: chunked' --data-binary @"$TMP/big")"
expect_contains "413 is JSON" '"error":"invalid_request"' \
    "$(curl -s --data-binary @"$TMP/big" "$BASE/oauth2/token")"
head -c 60000 /dev/zero | tr '\0' 'a' >"$TMP/fits"
expect_eq "body under the limit is read" 404 "$(http_status "$BASE/nope" --data-binary @"$TMP/fits")"

# a malformed request line gets 400 and the daemon lives on
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf 'THIS IS NOT HTTP\r\n\r\n' >&3
reply=$(timeout 5 head -n 1 <&3)
exec 3<&-
expect_contains "malformed request line 400" "400" "$reply"
# (the server may stop reading part-way: the writer must not block the test)
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
long=$(head -c 70000 /dev/zero | tr '\0' 'h')
timeout 5 bash -c 'printf "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: %s\r\n\r\n" "$1" >&3' _ "$long" 2>/dev/null
reply=$(timeout 5 head -n 1 <&3)
exec 3<&-
expect_contains "oversized header refused" "HTTP/1.1 4" "$reply"
expect_eq "still healthy" 200 "$(http_status "$BASE/healthz")"

# A body whose length two headers could read differently is refused, never
# guessed at (RFC 9112 §6.3: a proxy may have framed it the other way, and
# the rest would be smuggled in as a request of its own); the connection is
# closed after the answer. framed HEADERS BODY: the whole answer.
framed() {
    exec 3<>"/dev/tcp/127.0.0.1/$PORT"
    printf 'POST /oauth2/token HTTP/1.1\r\nHost: x\r\n%b\r\n%b' "$1" "$2" >&3
    timeout 5 cat <&3 | tr -d '\r'
    exec 3<&-
}
reply=$(framed 'Content-Length: 5\r\nContent-Length: 6\r\n' 'hello!')
expect_contains "two different Content-Length: 400" "HTTP/1.1 400" "$reply"
expect_contains "  says why" "more than one Content-Length" "$reply"
expect_contains "  and closes the connection" "Connection: close" "$reply"
reply=$(framed 'Content-Length: 5\r\nContent-Length: 5\r\n' 'hello')
expect_contains "the same Content-Length twice: 400 as well" "HTTP/1.1 400" "$reply"
reply=$(framed 'Content-Length: 5\r\nTransfer-Encoding: chunked\r\n' '5\r\nhello\r\n0\r\n\r\n')
expect_contains "Content-Length with Transfer-Encoding: 400" "HTTP/1.1 400" "$reply"
expect_contains "  says why" "both Content-Length and Transfer-Encoding" "$reply"
reply=$(framed 'Transfer-Encoding: chunked\r\nContent-Length: 5\r\n' '5\r\nhello\r\n0\r\n\r\n')
expect_contains "  in either order" "HTTP/1.1 400" "$reply"
# (these two are answered before any body is read, as libmicrohttpd cannot
# delimit one: a body sent at once would be unread when the connection
# closes, and the kernel's reset could destroy the answer before curl or
# this script reads it; a real client that sent one sees the refusal or a
# reset, never a served request)
reply=$(framed 'Transfer-Encoding: gzip, chunked\r\n' '')
expect_contains "a Transfer-Encoding other than chunked: 501" "HTTP/1.1 501" "$reply"
reply=$(framed 'Content-Length: +5\r\n' '')
expect_contains "a signed Content-Length: 400" "HTTP/1.1 400" "$reply"
reply=$(framed 'Transfer-Encoding: chunked\r\nConnection: close\r\n' '0\r\n\r\n')
expect_contains "plain chunked is still read, as a token request" \
    '"error":"invalid_request","error_description":"Content-Type must be' "$reply"
expect_eq "still healthy after the framing attacks" 200 "$(http_status "$BASE/healthz")"

# SIGHUP with a broken config: refused, the running config stays
cp "$CONF" "$TMP/good.conf"
line=$(($(wc -l <"$CONF") + 1))
printf 'tokens: { lifetime = "long"; };\n' >>"$CONF"
kill -HUP "$DAEMON_PID"
check "bad reload refused" wait_for_log "$LOG" "reload refused"
expect_contains "the error names file and line" "$CONF:$line: 'tokens.lifetime' must be an integer" "$(cat "$LOG")"
expect_eq "old config still serves" 200 "$(http_status "$BASE/healthz")"
check "daemon still running" kill -0 "$DAEMON_PID"

# a plugin that is not there: refused as well
cp "$TMP/good.conf" "$CONF"
printf 'kind = "backend";\nplugin = "nosuch";\n' >"$STATE/mandate.d/backend-x.conf"
kill -HUP "$DAEMON_PID"
check "missing plugin reload refused" wait_for_log "$LOG" "plugin 'nosuch'"
expect_eq "old config still serves after that" 200 "$(http_status "$BASE/readyz")"
rm "$STATE/mandate.d/backend-x.conf"

# a good new config is taken
sed -i 's/level = "info"/level = "debug"/' "$CONF"
kill -HUP "$DAEMON_PID"
check "good reload applied" wait_for_log "$LOG" "reloaded: 4 plugin instances"
expect_eq "serves after reload" 200 "$(http_status "$BASE/readyz")"

# SIGTERM drains: a request whose body is still arriving is finished
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf 'POST /drain HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345' >&3
sleep 0.3
kill -TERM "$DAEMON_PID"
check "draining announced" wait_for_log "$LOG" "draining in-flight requests"
sleep 0.3
check "daemon waits for the request in flight" kill -0 "$DAEMON_PID"
printf '67890' >&3
reply=$(timeout 5 head -n 1 <&3)
exec 3<&-
expect_contains "in-flight request answered" "HTTP/1.1 404" "$reply"
wait "$DAEMON_PID"
expect_eq "clean exit status" 0 "$?"
PIDS=""
check "stop logged" grep -q "mandated stopped" "$LOG"
check "no sanitizer report" bash -c "! grep -q 'Sanitizer' '$LOG'"

# HTTPS with a certificate and key from the config
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" \
    -keyout "$STATE/tls-key.pem" -out "$STATE/tls-cert.pem" >/dev/null 2>&1
chmod 600 "$STATE/tls-key.pem"
cp "$CONF" "$TMP/plain.conf"
sed -i 's|^server: {|server: {\n  tls: { certificate = "tls-cert.pem"; key = "tls-key.pem"; };|' "$CONF"
check "TLS daemon starts" start_daemon "$CONF" "$TMP/tls.log" || cat "$TMP/tls.log"
expect_contains "issuer is https" "issuer https://127.0.0.1:$PORT" "$(cat "$TMP/tls.log")"
expect_eq "healthz over HTTPS" '{"status":"ok"}' \
    "$(curl -s --cacert "$STATE/tls-cert.pem" "https://127.0.0.1:$PORT/healthz")"
expect_eq "plain HTTP to the TLS port is refused" 000 \
    "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$PORT/healthz")"
# a burst of connections at once, each served (they are spread over the
# workers by the daemon's own acceptor)
# shellcheck disable=SC2046
curl -s -w '%{http_code}\n' --cacert "$STATE/tls-cert.pem" --max-time 20 \
    --parallel --parallel-immediate --parallel-max 32 \
    $(for _ in $(seq 1 64); do printf -- '-o /dev/null %s ' "https://127.0.0.1:$PORT/healthz"; done) \
    >"$TMP/parallel" 2>&1
expect_eq "64 requests over 32 parallel HTTPS connections, all 200" 64 "$(grep -c '^200$' "$TMP/parallel")"
stop_daemon
expect_eq "TLS daemon stops cleanly" 0 "$DAEMON_STATUS"
cp "$TMP/plain.conf" "$CONF"

# the connection limit: a connection over it waits in the kernel's backlog,
# unanswered and unlogged, and is served as soon as another one closes
sed -i 's|^server: {|server: {\n  connection_limit = 2;|' "$CONF"
check "daemon with connection_limit = 2 starts" start_daemon "$CONF" "$TMP/limit.log" || cat "$TMP/limit.log"
status_line() { timeout "$2" head -n 1 <&"$1" | tr -d '\r'; }
ask() { printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n' >&"$1"; }
exec 3<>"/dev/tcp/127.0.0.1/$PORT" 4<>"/dev/tcp/127.0.0.1/$PORT"
ask 3
ask 4
expect_eq "first connection served" "HTTP/1.1 200 OK" "$(status_line 3 5)"
expect_eq "second connection served" "HTTP/1.1 200 OK" "$(status_line 4 5)"
exec 5<>"/dev/tcp/127.0.0.1/$PORT"
ask 5
expect_eq "a third one waits while two are open" "" "$(status_line 5 1)"
exec 3<&-
expect_eq "  and is served once one closes" "HTTP/1.1 200 OK" "$(status_line 5 5)"
exec 4<&- 5<&-
check "nothing logged about the waiting connections" bash -c "! grep -qi 'limit\|warning' '$TMP/limit.log'"
stop_daemon
expect_eq "daemon with a connection limit stops cleanly" 0 "$DAEMON_STATUS"
cp "$TMP/plain.conf" "$CONF"

# a broken config at start: exit 1 with one line naming the problem
printf 'kind = "format";\nplugin = "nosuch";\n' >"$STATE/mandate.d/format-x.conf"
"$MANDATED" -c "$CONF" >"$TMP/bad.log" 2>&1
expect_eq "bad start exits 1" 1 "$?"
expect_contains "names the plugin, its file and why" \
    "instance 'format-x' ($STATE/mandate.d/format-x.conf): plugin 'nosuch' ($PLUGIN_DIR/format-nosuch.so): not found" \
    "$(cat "$TMP/bad.log")"
rm "$STATE/mandate.d/format-x.conf"

finish
