# Sourced by the browser tests (tests/interop/signin.sh, saml-signin.sh)
# right after tests/e2e/lib.sh: Debian's chromium (SIGNIN_CHROMIUM) or the
# test is skipped (77); the answer to signin-mcp.mjs's "@revoke-user" for
# npm.sh's run_node.

CHROMIUM=${SIGNIN_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ]; then
    echo "SKIP: no chromium at $CHROMIUM (Debian: apt-get install chromium, or bash .ci/install-deps)"
    exit 77
fi
command -v openssl >/dev/null 2>&1 || { echo "SKIP: no openssl"; exit 77; }

# node_revoke-user SUBJECT (a node script's "@revoke-user SUBJECT", through
# run_node): mandatectl (CTL) user revoke SUBJECT; answers its exit status
node_revoke-user() {
    local status
    "${CTL[@]}" user revoke "$1" >"$TMP/revoke.out" 2>&1
    status=$?
    sed 's/^/  mandatectl user revoke: /' "$TMP/revoke.out"
    echo "$status" >&3
}
