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
new_state
daemon_up

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
# node_rotate ALG: a new signing key; the daemon picks it up within a second
node_rotate() {
    if check "mandatectl keys rotate --alg $1" "${CTL[@]}" keys rotate --alg "$1"; then
        sleep 1.5
        echo rotated >&3
    else
        echo "rotation failed" >&3
    fi
}

# node_register ALG PEM: a private_key_jwt client for that public key
node_register() {
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

mkdir -m 700 "$TMP/keys"
NODE_TIMEOUT=60 run_node interop.mjs INTEROP_BASE="$BASE" INTEROP_DIR="$TMP/keys" \
    INTEROP_BASIC_ID="$BASIC_ID" INTEROP_BASIC_SECRET="$BASIC_SECRET" INTEROP_BASIC_TTL=900 \
    INTEROP_BASIC_TENANT="$TENANT_A" INTEROP_BASIC_RESOURCE="$RES_A" \
    INTEROP_POST_ID="$POST_ID" INTEROP_POST_SECRET="$POST_SECRET" INTEROP_POST_TTL=3600 \
    INTEROP_POST_TENANT=default INTEROP_POST_RESOURCE="$RES_B"

expect_eq "keys list: four keys made, one active" "4 1" \
    "$("${CTL[@]}" keys list | grep -cE ' (active|retired) ') $("${CTL[@]}" keys list | grep -c ' active ')"
check "the secrets are never logged" bash -c "! grep -qF -e '$BASIC_SECRET' -e '$POST_SECRET' '$LOG'"

stop_daemon
expect_eq "clean stop" 0 "$DAEMON_STATUS"
check "no sanitizer report" bash -c "! grep -q 'Sanitizer' '$LOG'"
finish
