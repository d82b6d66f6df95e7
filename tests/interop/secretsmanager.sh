#!/bin/bash
# The secretsmanager backend end to end: the real daemon and mandatectl
# against a local Secrets Manager (tests/interop/sm-server.mjs) that refuses
# every call whose SigV4 signature AWS's own signer (@smithy/signature-v4)
# does not recompute identically. Covers provisioning (CreateSecret with a
# KMS key, PutSecretValue), the correct and a wrong secret, the AWSPREVIOUS
# version during a rotation and the one before it refused, the cache and its
# negative entries, a secret that is not JSON, another client's secret,
# AccessDenied, a deleted secret, throttling with a warm and a cold cache, a
# wrong secret access key (refused by the server, reported, 503), temporary
# credentials (X-Amz-Security-Token signed), and the server gone with a warm
# and a cold cache. No network but loopback; no npm: FAIL, never skip.
. "${MANDATE_SRCDIR:-.}/tests/e2e/lib.sh"

. "$SRCDIR/tests/interop/npm.sh"

unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_REGION AWS_DEFAULT_REGION
AKID=AKIAMANDATETEST00001
SECRET_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYMANDATEKEY
TEMP_AKID=ASIAMANDATETEST00002
TEMP_SECRET=tEMPoRARYsECRETkEY/mandate+test/0123456789
TEMP_TOKEN=IQoJb3JpZ2luX2VjEMANDATE/session+token/test==
BAD_SECRET_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYWRONGKEY000
CREDS="[{\"accessKeyId\":\"$AKID\",\"secretAccessKey\":\"$SECRET_KEY\"},
{\"accessKeyId\":\"$TEMP_AKID\",\"secretAccessKey\":\"$TEMP_SECRET\",\"sessionToken\":\"$TEMP_TOKEN\"}]"

# --- the local Secrets Manager ------------------------------------------------------
SM_LOG="$TMP/sm-server.log"
SM_PORT=""
start_sm() {
    SM_NPM_DIR="$NPM_DIR" SM_REGION=us-east-1 SM_CREDENTIALS="$CREDS" \
        node "$SRCDIR/tests/interop/sm-server.mjs" >"$SM_LOG" 2>&1 &
    SM_PID=$!
    PIDS="$PIDS $SM_PID"
    SM_PORT=$(listening_port "$SM_LOG" "$SM_PID")
}
check "the local Secrets Manager starts" start_sm || {
    cat "$SM_LOG"
    fatal "sm-server.mjs did not start"
}
SM="http://127.0.0.1:$SM_PORT"
sm_admin() { # PATH [JSON]
    if [ $# -gt 1 ]; then curl -s -X POST -d "$2" "$SM/__admin/$1"; else curl -s "$SM/__admin/$1"; fi
}
# sm_stat EXPR: a value from the server's stats, e.g. 'targets["secretsmanager.CreateSecret"]'
sm_stat() {
    sm_admin stats | node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{const v=JSON.parse(s);console.log(v.$1 ?? 0)})"
}
gets() { sm_stat 'targets["secretsmanager.GetSecretValue"]'; }

# --- the broker -----------------------------------------------------------------------
STATE="$TMP/state"
make_state "$STATE" || fatal "mandatectl init failed"
CONF="$STATE/mandate.conf"
CTL=("$MANDATECTL" -c "$CONF")
SM_CONF="$STATE/mandate.d/backend-secretsmanager.conf"
# write_conf [LINES]: the instance file, with extra lines (credentials)
write_conf() {
    cat >"$SM_CONF" <<EOF
# written by tests/interop/secretsmanager.sh
kind = "backend";
plugin = "secretsmanager";
region = "us-east-1";
endpoint = "$SM/";
secret_name = "mandate/clients/\${client_id}";
cache_ttl = 3;
negative_ttl = 2;
recheck_interval = 1;
timeout_ms = 2000;
${1:-}
EOF
}
write_conf
export AWS_ACCESS_KEY_ID=$AKID AWS_SECRET_ACCESS_KEY=$SECRET_KEY
LOGS=()
# daemon N: starts the daemon with its own log
daemon() {
    LOG="$TMP/mandated-$1.log"
    LOGS+=("$LOG")
    if ! start_daemon "$CONF" "$LOG"; then
        cat "$LOG"
        fatal "the daemon did not start"
    fi
    TOKEN_URL="$BASE/oauth2/token"
}
daemon 1
check "the instance says where its credentials come from" \
    grep -q 'AWS credentials from the environment;' "$LOG"

SECRETS=()
# new_client NAME [ARGS...]: ID and SECRET from mandatectl client create
new_client() {
    local name=$1 out
    shift
    # a default scope: the token requests below ask for none (issue 24:
    # no scope and no default is invalid_scope)
    out=$("${CTL[@]}" client create --prefix "$name" --backend secretsmanager \
        --scope mcp:call --default-scope mcp:call "$@" 2>"$TMP/ctl.err")
    expect_eq "client create --backend secretsmanager ($name) exits 0" 0 "$?"
    ID=$(printf '%s\n' "$out" | sed -n 's/^client_id: //p')
    SECRET=$(printf '%s\n' "$out" | client_secret)
    [ -n "$SECRET" ] && SECRETS+=("$SECRET")
}
# token ID SECRET: sets STATUS and BODY of a client credentials request
token() {
    STATUS=$(curl -s -o "$TMP/body" -w '%{http_code}' -u "$1:$2" \
        -d grant_type=client_credentials "$TOKEN_URL")
    BODY=$(cat "$TMP/body")
}
expect_token() { # DESCRIPTION ID SECRET STATUS [ERROR]
    token "$2" "$3"
    expect_eq "$1: HTTP $4" "$4" "$STATUS"
    if [ -n "${5:-}" ]; then
        expect_contains "$1: $5" "\"error\":\"$5\"" "$BODY"
    elif [ "$4" = 200 ]; then
        expect_contains "$1: a token" '"access_token":"' "$BODY"
    fi
}
secret_json() { sm_admin "secret?name=mandate/clients/$1"; }

# --- provisioning, the correct and a wrong secret --------------------------------------
new_client agent --kms-key-id alias/mandate-clients
ID1=$ID S1=$SECRET
expect_eq "the secret is 43 base64url characters" 1 \
    "$(printf '%s' "$S1" | grep -cE '^[A-Za-z0-9_-]{43}$')"
sj=$(secret_json "$ID1")
expect_contains "CreateSecret named the secret from the template" \
    "\"Name\":\"mandate/clients/$ID1\"" "$sj"
expect_contains "CreateSecret used the KMS key given" '"KmsKeyId":"alias/mandate-clients"' "$sj"
expect_contains "the secret is the workshop's JSON" \
    "\"SecretString\":\"{\\\"client_id\\\":\\\"$ID1\\\",\\\"client_secret\\\":\\\"$S1\\\"}\"" "$sj"
expect_contains "the secret is AWSCURRENT" '"VersionStages":["AWSCURRENT"]' "$sj"
expect_contains "the secret is tagged with its client" \
    "{\"Key\":\"mandate:client_id\",\"Value\":\"$ID1\"}" "$sj"
expect_contains "client show: the backend instance" '"backend": "backend-secretsmanager"' \
    "$("${CTL[@]}" --json client show "$ID1")"
check "the store holds no copy of the secret" bash -c "! grep -qa -- '$S1' '$STATE/mandate.db'"
creates=$(sm_stat 'targets["secretsmanager.CreateSecret"]')
"${CTL[@]}" client create "$ID1" --backend secretsmanager --scope mcp:call >/dev/null 2>&1
expect_eq "a taken client id is refused" 1 "$?"
expect_eq "... before any CreateSecret" "$creates" "$(sm_stat 'targets["secretsmanager.CreateSecret"]')"
"${CTL[@]}" client create --kms-key-id alias/x --scope mcp:call >/dev/null 2>&1
expect_eq "--kms-key-id without --backend is bad usage" 2 "$?"

expect_token "the correct secret" "$ID1" "$S1" 200
expect_token "a wrong secret" "$ID1" "not-the-secret" 401 invalid_client
before=$(gets)
expect_token "the correct secret again" "$ID1" "$S1" 200
expect_eq "... answered from the cache (no GetSecretValue)" "$before" "$(gets)"

# --- rotation without downtime -----------------------------------------------------------
out=$("${CTL[@]}" client rotate-secret "$ID1" 2>"$TMP/ctl.err")
expect_eq "rotate-secret exits 0" 0 "$?"
S2=$(printf '%s\n' "$out" | client_secret)
SECRETS+=("$S2")
expect_contains "rotate-secret says the old secret is the previous version" \
    "previous version, until the next rotation" "$(cat "$TMP/ctl.err")"
sj=$(secret_json "$ID1")
expect_contains "PutSecretValue made the new secret AWSCURRENT" \
    "$S2\\\"}\",\"VersionStages\":[\"AWSCURRENT\"]" "$sj"
expect_contains "... and the old one AWSPREVIOUS" "$S1\\\"}\",\"VersionStages\":[\"AWSPREVIOUS\"]" "$sj"
sleep 1.1 # recheck_interval: a secret matching no cached version re-fetches
expect_token "rotation: the new secret (AWSCURRENT)" "$ID1" "$S2" 200
expect_token "rotation: the old secret (AWSPREVIOUS) still works" "$ID1" "$S1" 200
check "the log says the previous version was used" \
    grep -q "client \"$ID1\" used the AWSPREVIOUS version of secret \"mandate/clients/$ID1\"" "$LOG"

out=$("${CTL[@]}" client rotate-secret "$ID1" 2>/dev/null)
S3=$(printf '%s\n' "$out" | client_secret)
SECRETS+=("$S3")
check "a second rotation" test -n "$S3"
sleep 1.1
expect_token "second rotation: the newest secret" "$ID1" "$S3" 200
expect_token "second rotation: the one before (now AWSPREVIOUS)" "$ID1" "$S2" 200
expect_token "second rotation: the oldest is refused" "$ID1" "$S1" 401 invalid_client
sleep 3.1 # cache_ttl
expect_token "after the cache lifetime: the oldest is still refused" "$ID1" "$S1" 401 invalid_client
expect_token "after the cache lifetime: the newest works" "$ID1" "$S3" 200

# the worker threads at once on an expired entry, right and wrong secrets mixed
sleep 3.1
BURST=()
for i in $(seq 1 8); do
    for want in "$S3 200" "$S2 200" "$S1 401"; do
        (
            got=$(curl -s -o /dev/null -w '%{http_code}' -u "$ID1:${want% *}" \
                -d grant_type=client_credentials "$TOKEN_URL")
            echo "${want#* } $got" >>"$TMP/burst"
        ) &
        BURST+=($!)
    done
done
wait "${BURST[@]}"
expect_eq "24 concurrent requests on an expired entry: each answered as it should" "24 0" \
    "$(wc -l <"$TMP/burst") $(awk '$1 != $2' "$TMP/burst" | wc -l)"

# --- secrets that cannot serve --------------------------------------------------------------
new_client malformed
ID4=$ID S4=$SECRET
RAW="not-json-VALUE-$RANDOM$RANDOM-must-not-be-logged"
sm_admin raw "{\"name\":\"mandate/clients/$ID4\",\"string\":\"$RAW\"}" >/dev/null
expect_token "a secret that is not JSON is refused" "$ID4" "$S4" 401 invalid_client
check "the log names the malformed secret" \
    grep -q "secret \"mandate/clients/$ID4\" (AWSCURRENT) is malformed" "$LOG"
check "the log never holds the malformed secret's value" bash -c "! grep -qF -- '$RAW' '$LOG'"
check "... nor a piece of it" bash -c "! grep -q 'VALUE-' '$LOG'"
before=$(gets)
expect_token "refused again, from the negative cache" "$ID4" "$S4" 401 invalid_client
expect_eq "... without a GetSecretValue" "$before" "$(gets)"
sleep 2.1 # negative_ttl
sm_admin raw "{\"name\":\"mandate/clients/$ID4\",\"string\":\"{\\\"client_id\\\":\\\"$ID1\\\",\\\"client_secret\\\":\\\"$S4\\\"}\"}" >/dev/null
expect_token "another client's secret is refused" "$ID4" "$S4" 401 invalid_client
check "the log says whose it is" grep -q "mandate/clients/$ID4.*is another client's" "$LOG"

new_client denied
ID5=$ID S5=$SECRET
sm_admin mode "{\"deny\":[\"mandate/clients/$ID5\"]}" >/dev/null
expect_token "AccessDenied is refused" "$ID5" "$S5" 401 invalid_client
check "the log names the secret and AccessDenied" \
    grep -q "secret \"mandate/clients/$ID5\" (AWSCURRENT) refused: AccessDeniedException" "$LOG"
sm_admin mode '{"deny":[]}' >/dev/null
sleep 2.1 # negative_ttl
expect_token "access given back" "$ID5" "$S5" 200

new_client deleted
ID6=$ID S6=$SECRET
expect_token "before its secret is deleted" "$ID6" "$S6" 200
sm_admin delete "{\"name\":\"mandate/clients/$ID6\"}" >/dev/null
sleep 3.1
expect_token "a deleted secret (ResourceNotFound) is refused after the cache lifetime" \
    "$ID6" "$S6" 401 invalid_client

# --- throttling -------------------------------------------------------------------------------
new_client warm
ID7=$ID S7=$SECRET
new_client cold
ID8=$ID S8=$SECRET
expect_token "warming the cache" "$ID7" "$S7" 200
sm_admin mode '{"throttle":true}' >/dev/null
expect_token "throttled: a cached secret works" "$ID7" "$S7" 200
sleep 3.1
expect_token "throttled, past the cache lifetime: the cached copy still serves" "$ID7" "$S7" 200
check "the log says a cached copy served" grep -q "client \"$ID7\" accepted from a copy" "$LOG"
expect_token "throttled: an uncached client gets 503" "$ID8" "$S8" 503 temporarily_unavailable
check "the log says ThrottlingException" grep -q "ThrottlingException" "$LOG"
sm_admin mode '{"throttle":false}' >/dev/null
expect_token "throttling over: the uncached client works" "$ID8" "$S8" 200
stop_daemon
expect_eq "clean stop" 0 "$DAEMON_STATUS"

# --- a wrong secret access key -------------------------------------------------------------------
refused=$(sm_stat 'reasons["signature mismatch"]')
write_conf "access_key_id = \"$AKID\";
secret_access_key = \"$BAD_SECRET_KEY\";"
daemon 2
expect_token "a wrong signing key: 503 (the broker's fault, not the client's)" "$ID1" "$S3" \
    503 temporarily_unavailable
check "the server refused the signature" \
    test "$(sm_stat 'reasons["signature mismatch"]')" -gt "$refused"
check "the log reports the refused credentials clearly" \
    grep -q "refused this instance's AWS credentials or signature on GetSecretValue.*InvalidSignatureException" "$LOG"
out=$("${CTL[@]}" client create --backend secretsmanager --scope mcp:call 2>&1)
expect_eq "mandatectl with the wrong key: exit 1" 1 "$?"
expect_contains "... and says why" "refused this instance's AWS credentials" "$out"
stop_daemon
expect_eq "clean stop" 0 "$DAEMON_STATUS"

# --- temporary credentials: the session token is sent and signed --------------------------------
write_conf
export AWS_ACCESS_KEY_ID=$TEMP_AKID AWS_SECRET_ACCESS_KEY=$TEMP_SECRET AWS_SESSION_TOKEN=$TEMP_TOKEN
daemon 3
check "the instance uses the session token" grep -q "from the environment with a session token" "$LOG"
signed=$(sm_stat sessionTokenSigned)
new_client temporary
ID9=$ID S9=$SECRET
expect_token "temporary credentials: a new client" "$ID9" "$S9" 200
expect_token "temporary credentials: an older client" "$ID1" "$S3" 200
check "every call carried a signed X-Amz-Security-Token" \
    test "$(sm_stat sessionTokenSigned)" -ge "$((signed + 4))"
check "... with the temporary access key" test "$(sm_stat "accessKeys[\"$TEMP_AKID\"]")" -ge 4
out=$(env -u AWS_SESSION_TOKEN "${CTL[@]}" client create --backend secretsmanager \
    --scope mcp:call 2>&1)
expect_eq "temporary keys without their session token: refused" 1 "$?"
expect_contains "... by the server (UnrecognizedClientException)" "UnrecognizedClientException" "$out"

# --- mandatectl apply: a client of this backend keeps its secret in Secrets Manager -------
cat >"$TMP/apply.json" <<EOF
{"clients": [{"id": "applied-sm", "backend": "secretsmanager", "scopes": "mcp:call", "default_scopes": "mcp:call",
              "kms_key_id": "alias/mandate-clients"}]}
EOF
out=$("${CTL[@]}" apply "$TMP/apply.json" 2>"$TMP/apply.err")
expect_eq "apply: a secretsmanager client needs no secret file" 0 "$?"
expect_contains "apply: the secret stays in Secrets Manager" \
    "the secret of applied-sm is kept by backend 'backend-secretsmanager'" "$(cat "$TMP/apply.err")"
S_APPLIED=$(secret_json applied-sm | sed -n 's/.*\\"client_secret\\":\\"\([A-Za-z0-9_-]*\)\\".*/\1/p')
check "apply: the secret is in Secrets Manager" test -n "$S_APPLIED"
SECRETS+=("$S_APPLIED")
check "apply: and not on standard output" bash -c "! grep -qF -- '$S_APPLIED' <<<'$out'"
expect_token "apply: the client gets a token with it" applied-sm "$S_APPLIED" 200
expect_contains "apply: a second apply changes nothing" "No changes" \
    "$("${CTL[@]}" apply "$TMP/apply.json" 2>&1)"

# --- the server gone ---------------------------------------------------------------------------------
{
    kill -KILL "$SM_PID"
    wait "$SM_PID"
} 2>/dev/null
PIDS=$(echo "$PIDS" | sed "s/ $SM_PID\b//")
expect_token "server down, warm cache" "$ID9" "$S9" 200
expect_token "server down, cold cache: 503" "$ID7" "$S7" 503 temporarily_unavailable
sleep 3.1
expect_token "server down, past the cache lifetime: the cached copy serves" "$ID1" "$S3" 200
expect_token "server down: a wrong secret is not a refusal of a real one" "$ID9" "wrong" 503 \
    temporarily_unavailable
check "the log says Secrets Manager cannot be reached" grep -q "GetSecretValue for secret \"mandate/clients/$ID7\" (AWSCURRENT): no answer" "$LOG"
check "the daemon is alive" kill -0 "$DAEMON_PID"
expect_eq "healthz" 200 "$(http_status "$BASE/healthz")"
stop_daemon
expect_eq "clean stop" 0 "$DAEMON_STATUS"

# --- what the logs hold --------------------------------------------------------------------------------
for log in "${LOGS[@]}"; do
    name=$(basename "$log")
    for s in "${SECRETS[@]}" "$SECRET_KEY" "$TEMP_SECRET" "$TEMP_TOKEN" "$BAD_SECRET_KEY"; do
        if grep -qF -- "$s" "$log"; then
            fail "$name holds a secret"
            continue 2
        fi
    done
    pass "$name holds no secret, no AWS key"
    check "$name holds no signed header" bash -c "! grep -qiE 'AWS4-HMAC-SHA256|Signature=|X-Amz-Security-Token:' '$log'"
    check "$name: no sanitizer report" bash -c "! grep -q 'Sanitizer' '$log'"
done
finish
