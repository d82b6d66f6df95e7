#!/bin/bash
# People sign in (issue 22), proven with software not written here, all on
# loopback and started here: mandated (sqlite store) with two oidc backend
# instances brokering to two IdPs run by npm oidc-provider with their own
# login and consent pages (tests/interop/signin-idp.mjs), nginx and the
# MarketPulse tool server in front of it (tests/interop/marketpulse.sh), and
# Debian's chromium driven by npm puppeteer-core as the person's browser.
#   - the official MCP TypeScript SDK (signin-mcp.mjs) connects to the tool
#     server through the gateway, is sent to Mandate, a person signs in in
#     the browser, the SDK calls a tool; jose checks the token. Once with a
#     Client ID Metadata Document served over https (a local CA, which
#     client_documents.ca_file names) and once with dynamic registration
#     (turned on by a reload). Each time the access token expires and the
#     SDK refreshes, then the family is revoked (mandatectl user revoke, or
#     RFC 7009) and the SDK must send the person to sign in again.
#   - openid-client as a generic RP (signin-rp.mjs): PKCE, RFC 9207, refresh.
#   - each page in the browser (signin-pages.mjs): screenshots in
#     tests/interop/artifacts/signin/ of the build tree, CSRF, framing
#     headers, error pages instead of redirects.
# No chromium: skipped (77). No node, npm or registry: FAIL (npm.sh).
. "${MANDATE_SRCDIR:-.}/tests/e2e/lib.sh"
. "$SRCDIR/tests/interop/browser.sh"
. "$SRCDIR/tests/interop/npm.sh"
. "$SRCDIR/tests/interop/marketpulse.sh"
echo "$("$CHROMIUM" --version 2>/dev/null | head -n 1)"

# The MCP SDK takes the protected resource metadata's "resource" only if it
# is the MCP server's own URL (or a prefix of it), as the MCP specification
# asks: the resource here is the gateway's /mcp.
AUD="$GW/mcp"
ARTIFACTS="$BUILDDIR/tests/interop/artifacts/signin"
rm -rf "$ARTIFACTS"
mkdir -p "$ARTIFACTS" || fatal "cannot create $ARTIFACTS"
echo "screenshots: $ARTIFACTS"
npm_copy signin-browser.mjs op-loopback.mjs signin-idp.mjs signin-mcp.mjs signin-rp.mjs signin-pages.mjs

# --- the broker's address first: the IdPs register its callbacks -----------------------
STATE="$TMP/state"
CONF="$STATE/mandate.conf"
make_state "$STATE" || fatal "mandatectl init failed"
CTL=("$MANDATECTL" -c "$CONF")
DPORT=$(free_port)
sed -i "s|^  listen = \"127.0.0.1:0\";|  listen = \"127.0.0.1:$DPORT\";\n  issuer = \"http://127.0.0.1:$DPORT\";|" "$CONF"
BASE="http://127.0.0.1:$DPORT"

# --- the IdPs ---------------------------------------------------------------------------
cat >"$TMP/corp-accounts.json" <<'JSON'
{
  "alice": {"password": "alice-corp-pw", "claims": {"email": "alice@corp.example", "email_verified": true,
            "name": "Alice Advisor", "groups": ["staff", "advisors"]}},
  "carol": {"password": "carol-corp-pw", "claims": {"email": "carol@corp.example", "groups": ["interns"]}}
}
JSON
cat >"$TMP/partner-accounts.json" <<'JSON'
{
  "dave": {"password": "dave-partner-pw", "claims": {"email": "dave@partner.example", "name": "Dave Partner",
           "groups": ["advisors"]}}
}
JSON
CORP_SECRET="corp-secret-$RANDOM$RANDOM$RANDOM"
PARTNER_SECRET="partner-secret-$RANDOM$RANDOM$RANDOM"
printf '[{"client_id": "mandate", "client_secret": "%s", "redirect_uris": ["%s/login/backend-corp/callback"]}]\n' \
    "$CORP_SECRET" "$BASE" >"$TMP/corp-clients.json"
printf '[{"client_id": "mandate-broker", "client_secret": "%s", "redirect_uris": ["%s/login/backend-partner/callback"]}]\n' \
    "$PARTNER_SECRET" "$BASE" >"$TMP/partner-clients.json"
# start_idp NAME LABEL: sets IDP_PORT
start_idp() {
    local log="$TMP/idp-$1.log" pid
    OIDC_NPM_DIR="$NPM_DIR" node "$NPM_DIR/signin-idp.mjs" --name "$2" --accounts "$TMP/$1-accounts.json" \
        --clients "$TMP/$1-clients.json" >"$log.out" 2>"$log" &
    pid=$!
    PIDS="$PIDS $pid"
    IDP_PORT=$(listening_port "$log.out" "$pid") && return 0
    cat "$log"
    return 1
}
start_idp corp "Example Corp" || fatal "the corp IdP (oidc-provider) did not start"
CORP="http://127.0.0.1:$IDP_PORT"
start_idp partner "Partner Bank" || fatal "the partner IdP (oidc-provider) did not start"
PARTNER="http://127.0.0.1:$IDP_PORT"
expect_contains "oidc-provider (corp) answers its discovery" "\"issuer\":\"$CORP\"" \
    "$(curl -s "$CORP/.well-known/openid-configuration")"

# --- the broker -------------------------------------------------------------------------
# oidc_backend NAME ISSUER CLIENT_ID SECRET [MORE SETTINGS]: the broker's
# backend-NAME signs people in at ISSUER as CLIENT_ID (its audience too)
oidc_backend() {
    cat >"$STATE/mandate.d/backend-$1.conf" <<CONF
kind = "backend";
plugin = "oidc";
issuer = "$2";
audiences = ["$3"];
login_client_id = "$3";
login_client_secret = "$4";
login_scopes = ["openid", "email", "profile", "groups"];
timeout_ms = 3000;
${5:-}
CONF
}
oidc_backend corp "$CORP" mandate "$CORP_SECRET"
oidc_backend partner "$PARTNER" mandate-broker "$PARTNER_SECRET" 'login_auth_method = "client_secret_post";'
chmod 600 "$STATE"/mandate.d/backend-*.conf
LIFETIME=6 # seconds an access token lives: the SDK has to refresh
marketpulse_target "$CONF"
cat >>"$CONF" <<CONF
mappings = (
  { name = "corp-advisors"; idp = "backend-corp";
    when = ( { attribute = "groups"; equals = "advisors"; } );
    subject = "advisor-\${sub}"; tenant = "default";
    scopes = ["mcp:call"]; audience = ["$AUD"]; max_lifetime = $LIFETIME; },
  { name = "partner-advisors"; idp = "backend-partner";
    when = ( { attribute = "groups"; equals = "advisors"; } );
    subject = "partner-\${sub}"; tenant = "default";
    scopes = ["mcp:call"]; audience = ["$AUD"]; max_lifetime = $LIFETIME; }
);
signin: {
  idps = ( { instance = "backend-corp"; label = "Example Corp"; domains = ["corp.example"]; },
           { instance = "backend-partner"; label = "Partner Bank"; domains = ["partner.example"]; } );
  tenants = ( { tenant = "default"; name = "Example Wealth Management"; } );
};
client_documents: {
  ca_file = "$TMP/ca/ca.pem";
  allow_private_addresses = true; # the test serves its documents on loopback
};
CONF

# a local CA and the certificate of https://127.0.0.1 for the client documents
mkdir -p "$TMP/ca"
(
    cd "$TMP/ca" &&
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
            -days 2 -subj "/CN=Mandate signin test CA" -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign" &&
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout doc.key -out doc.csr \
            -subj "/CN=127.0.0.1" &&
        printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >ext.cnf &&
        openssl x509 -req -in doc.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out doc.pem -days 2 \
            -extfile ext.cnf
) >"$TMP/ca/openssl.log" 2>&1 || { cat "$TMP/ca/openssl.log"; fatal "openssl could not make the test CA"; }

LOG="$TMP/mandated.log"
start_daemon "$CONF" "$LOG" || { cat "$LOG"; fatal "mandated did not start"; }
expect_eq "mandated listens where the IdPs send people back" "http://127.0.0.1:$DPORT" "$BASE"
start_marketpulse "$BASE" "$DPORT"
meta=$(curl -s "$BASE/.well-known/oauth-authorization-server")
expect_contains "metadata: the authorization endpoint" "\"authorization_endpoint\":\"$BASE/oauth2/authorize\"" "$meta"
expect_contains "metadata: client ID metadata documents" '"client_id_metadata_document_supported":true' "$meta"
check "metadata: no registration endpoint while registration is off" \
    bash -c "! grep -q registration_endpoint <<<'$meta'"

COMMON=(SIGNIN_BASE="$BASE" SIGNIN_MCP_URL="$GW/mcp" SIGNIN_RESOURCE="$AUD" SIGNIN_CHROMIUM="$CHROMIUM")
ALICE=(SIGNIN_USER=alice SIGNIN_PASSWORD=alice-corp-pw SIGNIN_IDP="Example Corp" SIGNIN_IDP_CLAIM="$CORP"
    SIGNIN_SUB=advisor-alice)
DAVE=(SIGNIN_USER=dave SIGNIN_PASSWORD=dave-partner-pw SIGNIN_IDP="Partner Bank" SIGNIN_IDP_CLAIM="$PARTNER"
    SIGNIN_SUB=partner-dave)

# 1. the MCP SDK with a Client ID Metadata Document; revoked with mandatectl user revoke
echo "--- the MCP SDK, client ID metadata document"
run_node signin-mcp.mjs "${COMMON[@]}" "${ALICE[@]}" SIGNIN_MODE=cimd SIGNIN_REVOKE=user \
    SIGNIN_CERT="$TMP/ca/doc.pem" SIGNIN_KEY="$TMP/ca/doc.key" SIGNIN_SHOTS="$ARTIFACTS/mcp-cimd"

# 2. dynamic registration, turned on by a reload; revoked with RFC 7009
cat >>"$CONF" <<CONF
registration: { mode = "open"; };
CONF
kill -HUP "$DAEMON_PID"
check "reloaded with registration on" wait_for_log "$LOG" "reloaded:"
expect_contains "metadata: the registration endpoint" "\"registration_endpoint\":\"$BASE/oauth2/register\"" \
    "$(curl -s "$BASE/.well-known/oauth-authorization-server")"
echo "--- the MCP SDK, dynamic client registration"
run_node signin-mcp.mjs "${COMMON[@]}" "${DAVE[@]}" SIGNIN_MODE=dcr SIGNIN_REVOKE=rfc7009 \
    SIGNIN_SHOTS="$ARTIFACTS/mcp-dcr"

# 3. openid-client as a generic RP, a confidential client with a loopback redirect_uri
RP_SECRET=$("${CTL[@]}" client create generic-rp --redirect-uri http://127.0.0.1/callback \
    --grant-type authorization_code --grant-type refresh_token --scope mcp:call --audience "$AUD" 2>"$TMP/rp.err" |
    sed -n 's/^client_secret: //p')
check "a confidential client with a loopback redirect URI" test -n "$RP_SECRET" || cat "$TMP/rp.err"
echo "--- openid-client"
run_node signin-rp.mjs "${COMMON[@]}" "${ALICE[@]}" SIGNIN_CLIENT_ID=generic-rp SIGNIN_CLIENT_SECRET="$RP_SECRET" \
    SIGNIN_SHOTS="$ARTIFACTS/openid-client"

# 4. each page in the browser
"${CTL[@]}" client create pages-app --public --redirect-uri http://127.0.0.1/callback \
    --grant-type authorization_code --scope mcp:call --audience "$AUD" >"$TMP/pages.out" 2>&1
pages_client() { "${CTL[@]}" client show pages-app >/dev/null 2>&1; }
check "a public client for the pages" pages_client || cat "$TMP/pages.out"
echo "--- the pages"
run_node signin-pages.mjs "${COMMON[@]}" "${DAVE[@]}" SIGNIN_CLIENT_ID=pages-app SIGNIN_OTHER_IDP="Example Corp" SIGNIN_HINT_DOMAIN=partner.example \
    SIGNIN_TENANT_NAME="Example Wealth Management" SIGNIN_SHOTS="$ARTIFACTS/pages"
echo "screenshots: $(find "$ARTIFACTS" -name '*.png' | wc -l) in $ARTIFACTS"

# --- what the broker kept -----------------------------------------------------------------
for event in authorize.request login.started login.finished consent.granted code.issued code.redeemed \
    refresh.rotated refresh.reused session.ended; do
    check "audited: $event" grep -qF "\"event\":\"$event\"" "$STATE"/audit/*.jsonl
done
check "the IdPs' logins: alice and dave" bash -c "grep -q '^login alice' '$TMP/idp-corp.log' && grep -q '^login dave' '$TMP/idp-partner.log'"
check "no refresh token, secret or cookie in the daemon's log" \
    bash -c "! grep -qE 'mrt_[A-Za-z0-9_-]{20}|$CORP_SECRET|$PARTNER_SECRET|$RP_SECRET|__Host-mandate-session=' '$LOG'"

stop_daemon
expect_eq "mandated stops cleanly" 0 "$DAEMON_STATUS"
check "no sanitizer report" bash -c "! grep -q Sanitizer '$LOG' '$TMP/tool.log'"
# the logs beside the screenshots (no secret or token is in them: checked above)
mkdir -p "$ARTIFACTS/logs"
cp "$LOG" "$TMP"/idp-*.log "$TMP"/tool.log "$TMP"/*.mjs.err "$ARTIFACTS/logs/" 2>/dev/null
cp "$TMP"/nginx/error.log "$ARTIFACTS/logs/nginx-error.log" 2>/dev/null
if [ "$FAILURES" -ne 0 ]; then
    echo "--- mandated's log (last 60 lines)"
    tail -n 60 "$LOG"
    for f in "$TMP"/idp-*.log; do
        echo "--- $(basename "$f") (last 20 lines)"
        tail -n 20 "$f"
    done
fi
finish
