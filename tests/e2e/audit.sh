#!/bin/bash
# The audit trail, rate limits and metrics end to end: every kind of event
# lands in the trail with who and what, never a secret or a token; the trail
# verifies and tampering is named; a SIGKILL in the middle of a burst of
# token requests loses no record of a token a client received; the trail is
# sealed by signed checkpoints, also sent to a second sink, so that a tail cut
# after a SIGKILL is found; a client over its limit gets 429 while another is
# unaffected; /metrics counts it all.
. "${MANDATE_SRCDIR:-.}/tests/e2e/lib.sh"

new_state
TRAIL="$STATE/audit"
AUD=https://mcp.example/market-calendar
cat >>"$CONF" <<CONF
targets = ( { name = "market-calendar"; paths = ["/mcp"]; audience = "$AUD";
              scopes = ["mcp:call"]; } );
rate_limit: { token_rate = 1000; token_burst = 1000; };
CONF
trail() { cat "$TRAIL"/audit-*.jsonl; }
new_client() { # ID [options]: prints the secret
    local id=$1
    shift
    "${CTL[@]}" client create "$id" --scope "mcp:call" --default-scope "mcp:call" \
        --audience "$AUD" "$@" 2>/dev/null | client_secret
}
jti_of() { json_get "$(jwt_claims "$1")" jti; }

# --- admin changes are recorded with who made them --------------------------
SECRET=$(new_client agent-1)
check "client created" test -n "$SECRET"
check "the trail exists, mode 0700" test "$(stat -c %a "$TRAIL")" = 700
expect_contains "client.created recorded" '"event":"client.created"' "$(trail)"
expect_contains "with who made it" "\"actor\":\"uid=$(id -u)($(id -un))\"" "$(trail)"

daemon_up
issuer_is_base "reloaded"

# --- requests: granted, refused, checked, revoked ----------------------------
T1=$(token_for agent-1 "$SECRET")
check "a token" test -n "$T1"
J1=$(jti_of "$T1")
curl -s -u "agent-1:wrong" -d grant_type=client_credentials "$BASE/oauth2/token" >/dev/null
curl -s -u "agent-1:$SECRET" -d grant_type=client_credentials -d scope=admin \
    "$BASE/oauth2/token" >/dev/null
GW_SECRET=$(new_client gateway --introspect)
curl -s -u "gateway:$GW_SECRET" --data-urlencode "token=$T1" "$BASE/oauth2/introspect" >/dev/null
curl -s -o /dev/null -H "Authorization: Bearer $T1" -H "X-Original-URI: /mcp" \
    "$BASE/gateway/check"
curl -s -o /dev/null -H "X-Original-URI: /mcp" "$BASE/gateway/check"
curl -s -u "agent-1:$SECRET" --data-urlencode "token=$T1" "$BASE/oauth2/revoke" >/dev/null
"${CTL[@]}" client set agent-1 --rate 5 --burst 10 >/dev/null
"${CTL[@]}" client disable agent-1 >/dev/null
"${CTL[@]}" client enable agent-1 >/dev/null
"${CTL[@]}" client rotate-secret agent-1 --grace 0 >/dev/null 2>&1
"${CTL[@]}" keys rotate >/dev/null
"${CTL[@]}" token revoke --jti "not-a-real-jti" >/dev/null

t=$(trail)
expect_contains "token.issued with its jti" "\"event\":\"token.issued\"" "$t"
expect_contains "the issued record names the jti" "\"jti\":\"$J1\"" "$t"
expect_contains "the issued record has scope and audience" "\"scope\":\"mcp:call\",\"aud\":\"$AUD\"" "$t"
expect_contains "a bad secret: token.refused with the reason" \
    '"error":"invalid_client","reason":"local: secret does not match' "$t"
expect_contains "a bad scope: token.refused" '"error":"invalid_scope"' "$t"
expect_contains "introspection recorded" '"event":"token.introspected"' "$t"
expect_contains "with the caller" '"by":"gateway","active":true' "$t"
expect_contains "gateway check allowed" '"target":"market-calendar","result":"allowed"' "$t"
expect_contains "gateway check denied without a token" '"reason":"no bearer token"' "$t"
expect_contains "revocation recorded" '"event":"token.revoked"' "$t"
for e in client.updated client.disabled client.enabled client.secret_rotated key.rotated \
    daemon.start daemon.reload; do
    expect_contains "$e recorded" "\"event\":\"$e\"" "$t"
done
check "request ids are recorded" grep -q '"request_id":"[0-9a-f]\{16\}"' "$TRAIL"/audit-*.jsonl
check "no secret in the trail" bash -c "! grep -qF -- '$SECRET' $TRAIL/audit-*.jsonl"
check "no token in the trail" bash -c "! grep -qF -- '$(printf '%s' "$T1" | cut -d. -f3)' $TRAIL/audit-*.jsonl"

# the human log says what the workshop's log says
expect_contains "log: token request" "Token request: client_id=agent-1, scopes=[(default)]" "$(cat "$LOG")"
expect_contains "log: credentials validated" "Credentials validated: client_id=agent-1" "$(cat "$LOG")"
expect_contains "log: token issued" "Token issued: expires_in=3600s" "$(cat "$LOG")"
expect_contains "log: token validation" "Token validation: token_valid=true, client=agent-1" "$(cat "$LOG")"

# --- rate limits ----------------------------------------------------------------
SECRET=$("${CTL[@]}" client rotate-secret agent-1 --grace 0 2>/dev/null | client_secret)
"${CTL[@]}" client set agent-1 --rate 0.5 --burst 2 >/dev/null
OTHER=$(new_client agent-2)
codes=""
for i in 1 2 3; do
    codes="$codes $(curl -s -o "$TMP/rl.body" -D "$TMP/rl.h" -w '%{http_code}' \
        -u "agent-1:$SECRET" -d grant_type=client_credentials "$BASE/oauth2/token")"
done
expect_eq "burst 2: two tokens, then 429" " 200 200 429" "$codes"
expect_contains "429 says when to retry" "Retry-After: 2" "$(tr -d '\r' <"$TMP/rl.h")"
expect_contains "and why" '"error":"too_many_requests"' "$(cat "$TMP/rl.body")"
expect_eq "another client is unaffected" 200 \
    "$(http_status "$BASE/oauth2/token" -u "agent-2:$OTHER" -d grant_type=client_credentials)"
expect_contains "the refusal is audited" '"error":"too_many_requests","reason":"rate limit"' "$(trail)"
expect_contains "the log says so" "rate limited: client_id=agent-1" "$(cat "$LOG")"

# the gateway check's own limit, per client of the token
sed -i 's/rate_limit: { token_rate = 1000; token_burst = 1000; };/rate_limit: { token_rate = 1000; token_burst = 1000; gateway_rate = 1; gateway_burst = 2; };/' "$CONF"
kill -HUP "$DAEMON_PID"
check "reloaded with a gateway limit" wait_for_log "$LOG" "reloaded:" 2
T2=$(token_for agent-2 "$OTHER")
codes=""
for i in 1 2 3; do
    codes="$codes $(curl -s -o /dev/null -D "$TMP/gw.h" -w '%{http_code}' \
        -H "Authorization: Bearer $T2" -H "X-Original-URI: /mcp" "$BASE/gateway/check")"
done
expect_eq "gateway: burst 2, then 429" " 200 200 429" "$codes"
expect_contains "with Retry-After" "Retry-After: 1" "$(tr -d '\r' <"$TMP/gw.h")"
expect_contains "audited as a denied check" '"result":"denied","status":429' "$(trail)"

# --- metrics --------------------------------------------------------------------
m=$(curl -s "$BASE/metrics")
expect_contains "metrics: token requests by grant and result" \
    'mandate_http_requests_total{endpoint="token",grant_type="client_credentials",result="2xx"}' "$m"
expect_contains "metrics: rate limited" 'mandate_rate_limited_total{endpoint="token"} 1' "$m"
expect_contains "metrics: tokens issued" 'mandate_tokens_issued_total{format="jwt"}' "$m"
expect_contains "metrics: latency histogram" 'mandate_http_request_duration_seconds_bucket{endpoint="token",le="+Inf"}' "$m"
expect_contains "metrics: audit fsync latency" 'mandate_audit_fsync_duration_seconds_count' "$m"

# --- the chain verifies; tampering is named ---------------------------------------
stop_daemon
expect_eq "clean stop" 0 "$DAEMON_STATUS"
expect_contains "daemon.stop recorded" '"event":"daemon.stop"' "$(trail)"
expect_contains "the log names the head" "audit trail: last record" "$(cat "$LOG")"
out=$("${CTL[@]}" audit verify)
expect_eq "audit verify: intact exits 0" 0 "$?"
expect_contains "and says so" "intact:" "$out"
"${CTL[@]}" audit tail -f --event client >"$TMP/tail.out" 2>&1 &
TAIL_PID=$!
PIDS="$PIDS $TAIL_PID"
sleep 0.5
new_client agent-3 >/dev/null
for i in $(seq 1 50); do grep -q "agent-3" "$TMP/tail.out" && break; sleep 0.1; done
kill "$TAIL_PID"
expect_contains "audit tail -f shows a new record" "client.created client_id=agent-3" "$(cat "$TMP/tail.out")"
out=$("${CTL[@]}" audit tail -n 3 --event token --client agent-1)
expect_contains "audit tail filters by event and client" "token." "$out"
check "audit tail prints only what matches" bash -c "! printf '%s' '$out' | grep -q 'client.created'"

FILE=$(ls "$TRAIL"/audit-*.jsonl | tail -n 1)
cp "$FILE" "$TMP/orig"
sed -i '5s/"agent-1"/"agent-9"/' "$FILE"
out=$("${CTL[@]}" audit verify "$FILE")
expect_eq "a changed record: exit 1" 1 "$?"
expect_contains "names it" "changed" "$out"
cp "$TMP/orig" "$FILE"
sed -i '7d' "$FILE"
out=$("${CTL[@]}" audit verify "$FILE")
expect_eq "a removed record: exit 1" 1 "$?"
expect_contains "names it" "removed" "$out"
cp "$TMP/orig" "$FILE"

# --- SIGKILL in the middle of a burst: no issued token without its record --------
check "daemon starts again" start_daemon "$CONF" "$LOG.2" || { cat "$LOG.2"; exit 1; }
sed -i "s|issuer = \"[^\"]*\"|issuer = \"$BASE\"|" "$CONF"
kill -HUP "$DAEMON_PID"
check "reloaded" wait_for_log "$LOG.2" "reloaded:"
"${CTL[@]}" client set agent-2 --rate 100000 --burst 100000 >/dev/null
for w in 1 2 3 4; do
    (for i in $(seq 1 400); do
        curl -s -u "agent-2:$OTHER" -d grant_type=client_credentials "$BASE/oauth2/token" || break
        echo
    done >"$TMP/burst.$w" 2>/dev/null) &
done
# Kill once the burst is under way (some tokens answered), not after a fixed
# second: on a loaded machine one second may hold fewer than ten answers.
for _ in $(seq 1 300); do
    [ "$(cat "$TMP"/burst.* 2>/dev/null | grep -c access_token)" -gt 10 ] && break
    sleep 0.1
done
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
PIDS=$(echo "$PIDS" | sed "s/ $DAEMON_PID\b//")
wait
received=0
missing=0
for tok in $(cat "$TMP"/burst.* | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p'); do
    received=$((received + 1))
    grep -qF "\"jti\":\"$(jti_of "$tok")\"" "$TRAIL"/audit-*.jsonl || missing=$((missing + 1))
done
echo "  tokens received before the SIGKILL: $received"
check "tokens were issued before the kill" test "$received" -gt 10
expect_eq "every token received has its record" 0 "$missing"
check "the daemon restarts on the trail" start_daemon "$CONF" "$LOG.3" || { cat "$LOG.3"; exit 1; }
stop_daemon
out=$("${CTL[@]}" audit verify)
expect_eq "after SIGKILL and restart the trail verifies" 0 "$?"
expect_contains "intact" "intact:" "$out"

# --- seals: signed checkpoints, also sent to a second sink --------------------------
# The chain alone verifies again after whoever can write the folder recomputes
# it or cuts its end; checkpoints signed with a key derived from the KEK, and
# copied to a file meant to be shipped off the machine, do not.
SINK="$TMP/checkpoints.log"
cat >>"$CONF" <<CONF
audit: { checkpoint: { seconds = 1; file = "$SINK"; syslog = "off"; }; };
CONF
"${CTL[@]}" audit key >"$TMP/seal.pub"
expect_contains "audit key prints a PEM public key" "BEGIN PUBLIC KEY" "$(cat "$TMP/seal.pub")"
KID=$("${CTL[@]}" --json audit key | sed -n 's/.*"key_id": "\([^"]*\)".*/\1/p')
check "with its key id" test -n "$KID"
check "the daemon starts sealed" start_daemon "$CONF" "$LOG.4" || { cat "$LOG.4"; exit 1; }
sed -i "s|issuer = \"[^\"]*\"|issuer = \"$BASE\"|" "$CONF"
kill -HUP "$DAEMON_PID"
check "reloaded" wait_for_log "$LOG.4" "reloaded:"
for i in $(seq 1 20); do token_for agent-2 "$OTHER" >/dev/null; done
last_seq() { sed -n 's/^{"seq":\([0-9]*\),.*/\1/p' "$TRAIL"/audit-*.jsonl | sort -n | tail -n 1; }
# the last record that is not itself a checkpoint (one may already follow it)
HEAD=$(grep -hv '"event":"audit.checkpoint"' "$TRAIL"/audit-*.jsonl |
    sed -n 's/^{"seq":\([0-9]*\),.*/\1/p' | sort -n | tail -n 1)
sealed_in_sink() { # SEQ: a checkpoint in the sink seals SEQ or a later record
    local s
    s=$(sed -n 's/.*"checkpoint":{[^}]*"seq":\([0-9]*\),.*/\1/p' "$SINK" 2>/dev/null | sort -n | tail -n 1)
    [ -n "$s" ] && [ "$s" -ge "$1" ]
}
for i in $(seq 1 50); do sealed_in_sink "$HEAD" && break; sleep 0.1; done
check "within a second the sink holds a checkpoint of the head" sealed_in_sink "$HEAD"
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
PIDS=$(echo "$PIDS" | sed "s/ $DAEMON_PID\b//")
check "after a SIGKILL the sink holds the checkpoint" grep -q '"why":"time"' "$SINK"
check "signed with the key audit key printed" grep -qF "\"key\":\"$KID\"" "$SINK"

out=$("${CTL[@]}" audit verify --key "$TMP/seal.pub" --checkpoints "$SINK")
expect_eq "audit verify with the key and the sink: exit 0" 0 "$?"
expect_contains "every seal good" "every signature good" "$out"
expect_contains "every checkpoint of the sink matches" "all matching the trail" "$out"

# the checkpoint checked by another implementation: openssl, the public key,
# and the text the signature covers (doc/security.md)
LINE=$(grep -F '"why":"time"' "$SINK" | tail -n 1)
printf 'mandate-audit-checkpoint-v1\nkey=%s\nseq=%s\nhash=%s\nts=%s\nfile=%s\nhost=%s\nwhy=%s\n' \
    "$(json_get "$LINE" key)" "$(json_get "$LINE" seq)" "$(json_get "$LINE" hash)" \
    "$(json_get "$LINE" ts)" "$(json_get "$LINE" file)" "$(json_get "$LINE" host)" \
    "$(json_get "$LINE" why)" >"$TMP/cp.txt"
b64url_json "$(json_get "$LINE" sig)" >"$TMP/cp.sig"
check "openssl verifies the checkpoint's signature" \
    openssl pkeyutl -verify -pubin -inkey "$TMP/seal.pub" -rawin -in "$TMP/cp.txt" \
    -sigfile "$TMP/cp.sig"

# the tail cut: from the record the last checkpoint of the sink seals
cp -a "$TRAIL" "$TMP/trail.orig"
S=$(sed -n 's/.*"checkpoint":{[^}]*"seq":\([0-9]*\),.*/\1/p' "$SINK" | sort -n | tail -n 1)
FILE=$(grep -l "^{\"seq\":$S," "$TRAIL"/audit-*.jsonl)
chmod u+w "$FILE"
sed -i "/^{\"seq\":$S,/,\$d" "$FILE"
out=$("${CTL[@]}" audit verify --key "$TMP/seal.pub" --dir "$TRAIL")
expect_eq "cut: the chain alone still verifies" 0 "$?"
expect_contains "and says what it cannot tell" "records cut from the end cannot be told" "$out"
out=$("${CTL[@]}" audit verify --key "$TMP/seal.pub" --checkpoints "$SINK")
expect_eq "cut: verify with the key and the sink exits 1" 1 "$?"
expect_contains "names the cut" "were cut from its end" "$out"
out=$("${CTL[@]}" audit verify)
expect_eq "cut: the configured sink file is used by default" 1 "$?"
rm -rf "$TRAIL"
cp -a "$TMP/trail.orig" "$TRAIL"

# the head sealed on request, daemon running or not
check "the daemon restarts" start_daemon "$CONF" "$LOG.5" || { cat "$LOG.5"; exit 1; }
out=$("${CTL[@]}" audit checkpoint)
expect_eq "audit checkpoint: exit 0" 0 "$?"
expect_contains "prints the sealed head" "sealed: record seq" "$out"
CP=$(printf '%s\n' "$out" | tail -n 1)
expect_eq "the checkpoint is the trail's last record" "$(json_get "$CP" sig)" \
    "$(json_get "$(tail -n 1 "$(ls "$TRAIL"/audit-*.jsonl | tail -n 1)")" sig)"
expect_eq "it seals the record before it" "$(json_get "$CP" seq)" "$(($(last_seq) - 1))"
# (when the daemon sealed the head first, it is the daemon's: sent once durable)
check "and went to the sink" wait_for_log "$SINK" "$(json_get "$CP" sig)"
stop_daemon
expect_eq "clean stop" 0 "$DAEMON_STATUS"
check "a clean stop ends the trail with a checkpoint" \
    grep -q '"why":"close"' "$(ls "$TRAIL"/audit-*.jsonl | tail -n 1)"
out=$("${CTL[@]}" audit verify)
expect_eq "the sealed trail verifies" 0 "$?"
check "and nothing is left unsealed" bash -c "! printf '%s' '$out' | grep -q 'not sealed'"

check "no sanitizer report" bash -c "! grep -q 'Sanitizer' '$LOG' '$LOG.2' '$LOG.3' '$LOG.4' '$LOG.5'"
finish
