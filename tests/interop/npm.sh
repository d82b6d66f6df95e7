# Sourced by the interop tests (after tests/e2e/lib.sh): install the pinned
# npm packages (package-lock.json) once into the build tree, shared by every
# interop test, and reused while the lock file is unchanged. No node, no npm
# or no registry: a FAIL, never a skip. Sets NPM_DIR; npm_copy puts more
# scripts there, run_node runs one.

HERE="$SRCDIR/tests/interop"

command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 ||
    fatal "node and npm are needed (Debian: apt-get install nodejs npm, or bash .ci/install-deps)"
echo "node $(node --version), npm $(npm --version)"

# make distcheck makes the source tree read-only and then wants an empty
# build tree after distclean: there the install goes to $TMP instead.
NPM_DIR="$BUILDDIR/tests/interop"
if [ -z "$(find "$SRCDIR" -maxdepth 0 -perm -u+w)" ]; then
    NPM_DIR="$TMP/npm"
    echo "read-only source tree (make distcheck): npm packages go to a temporary folder"
fi
mkdir -p "$NPM_DIR" || fatal "cannot create $NPM_DIR"
# npm_copy FILE...: tests/interop's FILEs into NPM_DIR, where the scripts run
# (node finds the packages, and a script its imports, from its own folder)
npm_copy() {
    local f
    for f in "$@"; do
        [ "$HERE/$f" -ef "$NPM_DIR/$f" ] || cp "$HERE/$f" "$NPM_DIR/$f" || fatal "cannot copy $f to $NPM_DIR"
    done
}
npm_copy package.json package-lock.json interop.mjs mcp-client.mjs

# two interop tests may run at once (make -j): one installs, the other waits
exec 9>"$NPM_DIR/.install.lock"
flock 9
STAMP="$NPM_DIR/node_modules/.mandate-interop.lock"
if cmp -s "$HERE/package-lock.json" "$STAMP"; then
    echo "npm packages: reusing $NPM_DIR/node_modules (package-lock.json unchanged)"
else
    echo "npm ci in $NPM_DIR"
    # puppeteer-core drives Debian's chromium: never a browser download
    export PUPPETEER_SKIP_DOWNLOAD=1
    start=$(date +%s%N)
    (cd "$NPM_DIR" && npm ci --no-audit --no-fund --fetch-retries=1 \
        --fetch-retry-mintimeout=1000 --fetch-retry-maxtimeout=5000 --fetch-timeout=30000) 2>&1 |
        sed 's/^/npm: /'
    status=${PIPESTATUS[0]}
    echo "npm ci: status $status, $((($(date +%s%N) - start) / 1000000)) ms"
    [ "$status" -eq 0 ] || fatal "npm ci could not install the interop packages from the npm" \
        "registry ($(npm config get registry 2>/dev/null)); is it reachable? See npm's output above"
    cp "$HERE/package-lock.json" "$STAMP"
fi
flock -u 9
CHECKS=$((CHECKS + 1))
pass "npm packages installed: $(cd "$NPM_DIR" && node -p \
    "['jose','openid-client','@modelcontextprotocol/sdk','@smithy/signature-v4','oidc-provider','puppeteer-core'].map(p => p + ' ' + require('./node_modules/' + p + '/package.json').version).join(', ')")"

# node_result LINE: a node script's "ok: ..." or "FAIL: ..." line counted
# as a check (a failure also in NODE_FAILURES, which run_node zeroes) and
# printed; returns 1 for any other line.
node_result() {
    case $1 in
    "ok: "*) CHECKS=$((CHECKS + 1)) ;;
    "FAIL: "*)
        CHECKS=$((CHECKS + 1))
        FAILURES=$((FAILURES + 1))
        NODE_FAILURES=$((NODE_FAILURES + 1))
        ;;
    *) return 1 ;;
    esac
    echo "$1"
}

# run_node SCRIPT [VAR=VALUE...]: runs the node script SCRIPT of NPM_DIR with
# that environment, counts its "ok:" and "FAIL:" lines into CHECKS and
# FAILURES and answers its "@" requests (protocol: signin-browser.mjs,
# interop.mjs): "@NAME ARGS" runs the test's function node_NAME ARGS in this
# shell (its checks count), which writes its one-line answer to fd 3;
# "@done" is the last line. A script silent for NODE_TIMEOUT seconds (180)
# is stopped.
run_node() {
    local script=$1 line done_seen=0 node_pid status start words
    NODE_FAILURES=0
    shift
    rm -f "$TMP/to-node" "$TMP/from-node"
    mkfifo "$TMP/to-node" "$TMP/from-node" || fatal "mkfifo failed"
    trap '' PIPE # should node die early, answering it must not kill this script
    (cd "$NPM_DIR" && exec env "$@" node "$script") <"$TMP/to-node" >"$TMP/from-node" 2>"$TMP/$script.err" &
    node_pid=$!
    PIDS="$PIDS $node_pid"
    exec 3>"$TMP/to-node" 4<"$TMP/from-node"
    start=$(date +%s%N)
    while IFS= read -r -t "${NODE_TIMEOUT:-180}" line <&4; do
        node_result "$line" && continue
        case $line in
        "@done")
            done_seen=1
            break
            ;;
        "@"*)
            read -r -a words <<<"${line#@}"
            if declare -F "node_${words[0]}" >/dev/null; then
                "node_${words[0]}" "${words[@]:1}"
            else
                echo "no node_${words[0]} in the test" >&3
            fi
            ;;
        *) echo "$line" ;;
        esac
    done
    exec 3>&- 4<&-
    if [ "$done_seen" -eq 0 ] && kill -0 "$node_pid" 2>/dev/null; then
        echo "$script stopped answering for ${NODE_TIMEOUT:-180} s: stopping it"
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
