#!/bin/bash
# Interoperability: independent implementations from npm verify what the real
# daemon mints and act as its clients. openid-client 5 discovers the broker
# and gets tokens (client_secret_basic, client_secret_post, private_key_jwt);
# jose 6 verifies them through the published JWKS across key rotations
# (ES256, RS256, EdDSA) and signs RFC 7523 client assertions. This script
# installs the pinned packages (package-lock.json) into the build tree,
# starts the daemon, provisions the clients with mandatectl, and answers the
# node script's requests (rotate a key, register a public key) while
# counting its "ok:"/"FAIL:" lines. No network, no npm: FAIL, never skip.
. "${MANDATE_SRCDIR:-.}/tests/e2e/lib.sh"

. "$SRCDIR/tests/interop/npm.sh"

# --- the daemon and the clients -------------------------------------------------
STATE="$TMP/state"
LOG="$TMP/mandated.log"
make_state "$STATE" || fatal "mandatectl init failed"
CONF="$STATE/mandate.conf"
CTL=("$MANDATECTL" -c "$CONF")
check "daemon starts" start_daemon "$CONF" "$LOG" || {
    cat "$LOG"
    finish
    exit 1
}

RES_A=https://mcp.example/market-calendar
RES_A2=https://mcp.example/quotes
RES_B=https://api.example/ledger
TENANT_A=wealth

# new_client NAME ARGS...: sets ID and SECRET from mandatectl client create
new_client() {
    local name=$1 out
    shift
    out=$("${CTL[@]}" client create "$@" 2>/dev/null)
    expect_eq "client create ($name) exits 0" 0 "$?"
    ID=$(printf '%s\n' "$out" | sed -n 's/^client_id: //p')
    SECRET=$(printf '%s\n' "$out" | client_secret)
}
new_client basic --prefix interop-basic --scope "mcp:call gateway:invoke" \
    --default-scope gateway:invoke --audience "$RES_A" --audience "$RES_A2" \
    --tenant "$TENANT_A" --ttl 900
BASIC_ID=$ID BASIC_SECRET=$SECRET
new_client post --prefix interop-post --scope gateway:invoke --audience "$RES_B"
POST_ID=$ID POST_SECRET=$SECRET
[ -n "$BASIC_SECRET" ] && [ -n "$POST_SECRET" ] || fatal "no client secrets from mandatectl"

# --- the node script, and its requests ------------------------------------------
# rotate ALG: a new signing key; the daemon picks it up within a second
rotate() {
    if check "mandatectl keys rotate --alg $1" "${CTL[@]}" keys rotate --alg "$1"; then
        sleep 1.5
        echo rotated >&3
    else
        echo "rotation failed" >&3
    fi
}

# register ALG PEM: a private_key_jwt client for that public key
register() {
    local out id
    out=$("${CTL[@]}" client create --prefix "interop-pkjwt" --public-key "$2" \
        --scope mcp:call --audience "$RES_A" --tenant "$TENANT_A" 2>&1)
    expect_eq "client create --public-key ($1 key) exits 0" 0 "$?"
    id=$(printf '%s\n' "$out" | sed -n 's/^client_id: //p')
    CHECKS=$((CHECKS + 1))
    case $out in
    *client_secret*) fail "no secret printed for a private_key_jwt client: $out" ;;
    *) pass "no secret printed for a private_key_jwt client" ;;
    esac
    if [ -n "$id" ]; then echo "client $id" >&3; else echo "no client id: $out" >&3; fi
}

mkfifo "$TMP/to-node" "$TMP/from-node" || fatal "mkfifo failed"
trap '' PIPE # should node die early, answering it must not kill this script
mkdir -m 700 "$TMP/keys"
INTEROP_BASE=$BASE INTEROP_DIR="$TMP/keys" \
    INTEROP_BASIC_ID=$BASIC_ID INTEROP_BASIC_SECRET=$BASIC_SECRET INTEROP_BASIC_TTL=900 \
    INTEROP_BASIC_TENANT=$TENANT_A INTEROP_BASIC_RESOURCE=$RES_A \
    INTEROP_POST_ID=$POST_ID INTEROP_POST_SECRET=$POST_SECRET INTEROP_POST_TTL=3600 \
    INTEROP_POST_TENANT=default INTEROP_POST_RESOURCE=$RES_B \
    node "$NPM_DIR/interop.mjs" <"$TMP/to-node" >"$TMP/from-node" &
NODE_PID=$!
PIDS="$PIDS $NODE_PID"
exec 3>"$TMP/to-node" 4<"$TMP/from-node"
done_seen=0
NODE_FAILURES=0
start=$(date +%s%N)
while IFS= read -r -t 60 line <&4; do
    node_result "$line" && continue
    case $line in
    "@rotate "*) rotate "${line#@rotate }" ;;
    "@register "*)
        line=${line#@register }
        register "${line%% *}" "${line#* }"
        ;;
    "@done")
        done_seen=1
        break
        ;;
    *) echo "$line" ;;
    esac
done
exec 3>&- 4<&-
if [ "$done_seen" -eq 0 ] && kill -0 "$NODE_PID" 2>/dev/null; then
    echo "the node script stopped answering for 60 s: stopping it"
    kill -TERM "$NODE_PID"
fi
wait "$NODE_PID"
node_status=$?
PIDS=$(echo "$PIDS" | sed "s/ $NODE_PID\b//")
echo "node script: status $node_status, $((($(date +%s%N) - start) / 1000000)) ms"
expect_eq "the node script ran to its end" 1 "$done_seen"
if [ "$NODE_FAILURES" -eq 0 ]; then
    expect_eq "the node script exits 0" 0 "$node_status"
fi

expect_eq "keys list: four keys made, one active" "4 1" \
    "$("${CTL[@]}" keys list | grep -cE ' (active|retired) ') $("${CTL[@]}" keys list | grep -c ' active ')"
check "the secrets are never logged" bash -c "! grep -qF -e '$BASIC_SECRET' -e '$POST_SECRET' '$LOG'"

stop_daemon
expect_eq "clean stop" 0 "$DAEMON_STATUS"
check "no sanitizer report" bash -c "! grep -q 'Sanitizer' '$LOG'"
finish
