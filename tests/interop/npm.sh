# Sourced by the interop tests (after tests/e2e/lib.sh): install the pinned
# npm packages (package-lock.json) once into the build tree, shared by every
# interop test, and reused while the lock file is unchanged. No node, no npm
# or no registry: a FAIL, never a skip. Sets NPM_DIR.

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
for f in package.json package-lock.json interop.mjs mcp-client.mjs; do
    [ "$HERE/$f" -ef "$NPM_DIR/$f" ] || cp "$HERE/$f" "$NPM_DIR/$f" || fatal "cannot copy $f to $NPM_DIR"
done

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
