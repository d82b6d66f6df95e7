# Sourced by the browser tests (tests/interop/signin.sh, saml-signin.sh)
# right after tests/e2e/lib.sh: Debian's chromium (SIGNIN_CHROMIUM) or the
# test is skipped (77); then, once npm.sh has set NPM_DIR, run_node SCRIPT
# [VAR=VALUE...] runs a node script of NPM_DIR with that environment, counts
# its "ok:" and "FAIL:" lines into CHECKS and FAILURES and answers its "@"
# requests (protocol: signin-browser.mjs): "@revoke-user SUBJECT" runs
# mandatectl (CTL) user revoke SUBJECT, "@NAME ARGS" the test's function
# node_NAME ARGS.

CHROMIUM=${SIGNIN_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ]; then
    echo "SKIP: no chromium at $CHROMIUM (Debian: apt-get install chromium, or bash .ci/install-deps)"
    exit 77
fi
command -v openssl >/dev/null 2>&1 || { echo "SKIP: no openssl"; exit 77; }

run_node() {
    local script=$1 line done_seen=0 node_pid status start words
    NODE_FAILURES=0
    shift
    rm -f "$TMP/to-node" "$TMP/from-node"
    mkfifo "$TMP/to-node" "$TMP/from-node" || fatal "mkfifo failed"
    trap '' PIPE
    (cd "$NPM_DIR" && exec env "$@" node "$script") <"$TMP/to-node" >"$TMP/from-node" 2>"$TMP/$script.err" &
    node_pid=$!
    PIDS="$PIDS $node_pid"
    exec 3>"$TMP/to-node" 4<"$TMP/from-node"
    start=$(date +%s%N)
    while IFS= read -r -t 180 line <&4; do
        node_result "$line" && continue
        case $line in
        "@revoke-user "*)
            "${CTL[@]}" user revoke "${line#@revoke-user }" >"$TMP/revoke.out" 2>&1
            status=$?
            sed 's/^/  mandatectl user revoke: /' "$TMP/revoke.out"
            echo "$status" >&3
            ;;
        "@done")
            done_seen=1
            break
            ;;
        "@"*)
            # "@NAME ARGS": the test's shell function node_NAME, its first
            # line of output the answer (it runs in a subshell: no checks
            # in it, they would not be counted)
            read -r -a words <<<"${line#@}"
            if declare -F "node_${words[0]}" >/dev/null; then
                "node_${words[0]}" "${words[@]:1}" | head -n 1 >&3
            else
                echo "no node_${words[0]} in the test" >&3
            fi
            ;;
        *) echo "$line" ;;
        esac
    done
    exec 3>&- 4<&-
    if [ "$done_seen" -eq 0 ] && kill -0 "$node_pid" 2>/dev/null; then
        echo "$script stopped answering for 180 s: stopping it"
        kill -TERM "$node_pid"
    fi
    wait "$node_pid"
    status=$?
    PIDS=$(echo "$PIDS" | sed "s/ $node_pid\b//")
    echo "$script: status $status, $((($(date +%s%N) - start) / 1000000)) ms"
    if [ -s "$TMP/$script.err" ]; then sed "s/^/  $script stderr: /" "$TMP/$script.err" | tail -n 30; fi
    expect_eq "$script ran to its end" 1 "$done_seen"
    [ "$NODE_FAILURES" -eq 0 ] && expect_eq "$script exits 0" 0 "$status"
}

