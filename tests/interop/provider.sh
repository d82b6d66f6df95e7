# Sourced by the interop tests that sign in at a real OpenID Connect
# provider (after tests/interop/npm.sh): oidc-provider from npm, run by
# tests/interop/oidc-provider.mjs, with keys and accounts the test writes.
# Sets PROVIDER, OP_SECRET (its client's secret) and KEYS (a folder for
# them); op runs the script; start_provider and stop_provider run it as a
# server (in PIDS while it runs).

PROVIDER="$SRCDIR/tests/interop/oidc-provider.mjs"
op() { OIDC_NPM_DIR="$NPM_DIR" node "$PROVIDER" "$@"; }
OP_SECRET="op-client-secret-$RANDOM$RANDOM"
KEYS="$TMP/keys"
mkdir -p "$KEYS"

# The logs of every provider started, one per start
OP_LOGS=()
# start_provider KEYFILES [PORT]: serves the accounts of $TMP/accounts.json
# with the keys named (comma-separated, the first signs); sets OP_PID,
# OP_PORT and OP_LOG. Shows the log and returns 1 if it does not listen.
start_provider() {
    OP_LOG="$TMP/provider-$((${#OP_LOGS[@]} + 1)).log"
    OP_LOGS+=("$OP_LOG")
    # node itself in the background (not through op): its PID is the one to stop
    OIDC_NPM_DIR="$NPM_DIR" node "$PROVIDER" serve --keys "$1" --accounts "$TMP/accounts.json" \
        --secret "$OP_SECRET" --port "${2:-0}" >"$OP_LOG.out" 2>"$OP_LOG" &
    OP_PID=$!
    PIDS="$PIDS $OP_PID"
    OP_PORT=$(listening_port "$OP_LOG.out" "$OP_PID") && return 0
    cat "$OP_LOG"
    return 1
}
stop_provider() {
    kill -TERM "$OP_PID"
    wait "$OP_PID" 2>/dev/null
    PIDS=$(echo "$PIDS" | sed "s/ $OP_PID\b//")
}
