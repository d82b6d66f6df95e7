#!/bin/bash
# The README's Quick start as a newcomer follows it (issue 24): its shell
# blocks, read from README.md and run as written in a fresh copy of the
# repository's files, one after another, in a second shell beside the
# first command. Only these differ from a real first hour: the first
# command, bash .ci/start, uses this build tree instead of building and
# installing (MANDATE_START_BUILT), the broker listens on a free port
# instead of 8080 (the README's 127.0.0.1:8080 is rewritten to it), and
# mandatectl and mandated are found on PATH in a temporary bin/ instead of
# /usr/local. The second command (bash .ci/check, the suite itself) is not
# run. Then: the token names its audience, the gateway target protects the
# MarketPulse example, the log has the workshop's lines, the audit trail,
# config check, plugins and --help answer as the README says, and the
# clone has no file git does not ignore.
. "${MANDATE_SRCDIR:-.}/tests/e2e/lib.sh"

README="$SRCDIR/README.md"
CLONE="$TMP/clone"

# --- the Quick start's blocks, as the README has them ------------------------
# shell blocks between "## Quick start" and the next heading of its level or
# above, one file per block
awk -v dir="$TMP" '
    /^## Quick start/ { inside = 1; next }
    inside && /^##? / { inside = 0 }
    inside && /^### / { inside = 0 }
    inside && /^```sh$/ { n++; file = dir "/block-" n ".sh"; printf "" >file; next }
    inside && /^```$/ { file = ""; next }
    file != "" { print >>file }
' "$README"
blocks=$(ls "$TMP"/block-*.sh 2>/dev/null | wc -l)
check "the Quick start has shell blocks" test "$blocks" -ge 2
first="$TMP/block-1.sh"
expect_contains "its first block is the first command" "bash .ci/start" "$(cat "$first")"
expect_contains "and the second" "bash .ci/check" "$(cat "$first")"
quick=$(sed -n '/^## Quick start/,/^### /p' "$README")
expect_contains "the README says where the log is" "state/mandated.log" "$quick"
expect_contains "and the audit trail" "state/audit/" "$quick"
expect_contains "and mentions distcheck" "make distcheck" "$quick"

# --- a fresh copy: the files the Quick start uses, under git ------------------
mkdir -p "$CLONE"
cp -r "$SRCDIR/README.md" "$SRCDIR/.ci" "$SRCDIR/.gitignore" "$CLONE/"
chmod -R u+w "$CLONE" # make distcheck's source tree is read-only
HAVE_GIT=no
if command -v git >/dev/null 2>&1; then
    (cd "$CLONE" && git init -q && git add -A &&
        git -c user.name=readme -c user.email=readme@test.invalid commit -q -m clone) &&
        HAVE_GIT=yes
fi

# --- the first command, in the first shell ------------------------------------
BIN="$TMP/prefix/bin"
mkdir -p "$BIN"
ln -s "$MANDATECTL" "$BIN/mandatectl"
ln -s "$MANDATED" "$BIN/mandated"
(
    cd "$CLONE" &&
        MANDATE_START_BUILT="$BUILDDIR" MANDATE_START_LISTEN=127.0.0.1:0 \
            exec bash .ci/start >"$TMP/start.out" 2>"$TMP/start.err"
) &
START_PID=$!
PIDS="$PIDS $START_PID"
PORT=""
for _ in $(seq 1 200); do
    PORT=$(sed -n 's/.* listening on .* port \([0-9]*\),.*/\1/p' "$CLONE/state/mandated.log" 2>/dev/null | head -n 1)
    [ -n "$PORT" ] && break
    kill -0 "$START_PID" 2>/dev/null || break
    sleep 0.05
done
check "bash .ci/start runs the broker" test -n "$PORT"
[ -n "$PORT" ] || { cat "$TMP/start.out" "$TMP/start.err"; finish; exit 1; }
expect_contains "it says where the state, the log and the audit trail are" \
    "state/mandated.log" "$(cat "$TMP/start.out")"
expect_contains "and how other shells find the configuration" \
    'export MANDATE_CONF=$PWD/state/mandate.conf' "$(cat "$TMP/start.out")"

# --- the other blocks, in a second shell, as written --------------------------
for n in $(seq 2 "$blocks"); do
    sed "s|127\.0\.0\.1:8080|127.0.0.1:$PORT|g" "$TMP/block-$n.sh"
done >"$TMP/second-shell.sh"
(
    cd "$CLONE" && env -u MANDATE_CONF PATH="$BIN:$PATH" \
        bash -e -o pipefail "$TMP/second-shell.sh" >"$TMP/quick.out" 2>"$TMP/quick.err"
)
status=$?
expect_eq "the Quick start runs as written (status of its commands)" 0 "$status"
echo "--- what the second shell printed:"
sed -E -e 's/^/  | /' -e 's/(eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)\.[A-Za-z0-9_-]+/\1.(signature)/g' \
    "$TMP/quick.out" "$TMP/quick.err" | grep -v -F -- "$(cat "$CLONE/state/marketpulse.secret" 2>/dev/null || echo none)"
out=$(cat "$TMP/quick.out")

secret_file="$CLONE/state/marketpulse.secret"
expect_eq "the agent's secret is in state/, mode 600" 600 "$(stat -c %a "$secret_file" 2>/dev/null)"
check "and never on standard output" bash -c "! grep -qF -- \"\$(cat '$secret_file')\" '$TMP/quick.out'"
token=$(grep -m 1 -E '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$' "$TMP/quick.out")
check "token get prints a JWT" test -n "$token"
claims=$(jwt_claims "$token")
expect_eq "an RFC 9068 token: its aud is the calendar (init's default_resource)" \
    https://mcp.example/market-calendar "$(json_get "$claims" aud)"
expect_eq "  with the scopes asked" "gateway:invoke mcp:call" "$(json_get "$claims" scope)"
expect_contains "curl gets a token too" '"token_type":"Bearer"' "$out"
expect_eq "the gateway check: 401 without a token, 200 with one" "401 200" \
    "$(grep -E '^[0-9]{3}$' "$TMP/quick.out" | tr '\n' ' ' | sed 's/ $//')"
for line in "Token request: client_id=marketpulse-agent, scopes=[gateway:invoke, mcp:call]" \
    "Credentials validated: client_id=marketpulse-agent" "Token issued: expires_in=3600s" \
    "Token validation: token_valid=true, client=marketpulse-agent"; do
    expect_contains "the log has the workshop's line '${line%%:*}'" "$line" "$out"
done
expect_contains "mandatectl audit tail reads the trail" "token.issued" "$out"
expect_contains "mandatectl config check finds the state" "$CLONE/state/mandate.conf: OK" "$out"
expect_contains "mandatectl plugins lists the state's plugins" "$BUILDDIR/plugins/.libs" "$out"
expect_contains "mandatectl --help answers" "Usage: mandatectl" "$out"
expect_contains "readyz" '"ready"' "$out"
if [ "$HAVE_GIT" = yes ]; then
    expect_eq "nothing is left that git does not ignore" "" \
        "$(cd "$CLONE" && git status --porcelain --untracked-files=all)"
else
    echo "skip: git is not installed; untracked files not checked"
fi

# --- the first shell stopped (SIGTERM: a background job ignores Ctrl-C) --------
kill -TERM "$START_PID"
wait "$START_PID"
expect_eq "the broker drains and stops cleanly" 0 "$?"
PIDS=""
check "no sanitizer report" bash -c "! grep -q 'Sanitizer' '$CLONE/state/mandated.log' '$TMP/start.err'"
finish
