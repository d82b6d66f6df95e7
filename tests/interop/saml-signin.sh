#!/bin/bash
# SAML Web Browser SSO into the sign-in (issue 23), proven with software not
# written here, all on loopback and started here: Debian's SimpleSAMLphp as
# the bank's IdP (tests/interop/saml-idp.sh: PHP's built-in server, its
# example users with the workshop's attributes), configured from Mandate's
# own SP metadata (GET /login/INSTANCE/metadata); mandated (sqlite store)
# with two saml backend instances on it: backend-bank (signed assertions,
# AuthnRequests unsigned) and backend-bank-secure (AuthnRequests signed, and
# required by the IdP; assertions encrypted to the SP's key); nginx and the
# MarketPulse tool server in front (tests/interop/marketpulse.sh); Debian's
# chromium driven by npm puppeteer-core as the person's browser.
#   - the official MCP TypeScript SDK (signin-mcp.mjs, its first sign-in)
#     connects to MarketPulse through nginx, gets 401, is sent to Mandate,
#     to SimpleSAMLphp's login form (advisor), back to the ACS, consents and
#     calls the tool; jose checks the token (sub advisor-12345, idp, aud);
#     the tool server logs the advisor as the caller. Once per instance.
#   - signin-saml.mjs: the compliance officer gets the compliance archive
#     and not the calendar; a stranger gets the page saying no rule admits
#     them; SimpleSAMLphp's answer changed on its way (a value under the
#     signature, a forged assertion before the signed one) or replayed, and
#     the attack fixtures of tests/saml/make-assertions.sh (wrapping,
#     comment injection, entities), each posted to the ACS as a browser
#     would with the RelayState of a fresh authorization request: refused
#     with an error page.
# Screenshots: tests/interop/artifacts/saml-signin/ of the build tree.
# No chromium, php or SimpleSAMLphp: skipped (77). No node, npm or registry:
# FAIL (npm.sh).
. "${MANDATE_SRCDIR:-.}/tests/e2e/lib.sh"

. "$SRCDIR/tests/interop/browser.sh"
command -v xmlsec1 >/dev/null 2>&1 || { echo "SKIP: no xmlsec1 (the attack fixtures)"; exit 77; }
. "$SRCDIR/tests/interop/npm.sh"
. "$SRCDIR/tests/interop/marketpulse.sh"
. "$SRCDIR/tests/interop/saml-idp.sh"
echo "$("$CHROMIUM" --version 2>/dev/null | head -n 1), $(php -r 'echo "PHP ", PHP_VERSION;')," \
    "SimpleSAMLphp $(dpkg-query -W -f='${Version}' simplesamlphp 2>/dev/null)"

AUD="$GW/mcp"                          # the MCP SDK's resource: the gateway's /mcp
COMPLIANCE_AUD=https://mcp.example/compliance-archive
ARTIFACTS="$BUILDDIR/tests/interop/artifacts/saml-signin"
rm -rf "$ARTIFACTS"
mkdir -p "$ARTIFACTS" || fatal "cannot create $ARTIFACTS"
echo "screenshots: $ARTIFACTS"
npm_copy signin-browser.mjs signin-mcp.mjs signin-saml.mjs

# --- the broker's address first: the IdP and the fixtures name it ---------------------------
DPORT=$(free_port)
BASE="http://127.0.0.1:$DPORT"
# the attack fixtures, for an instance that trusts their IdP (the same
# validation path; their IdP's login page is answered by the browser test):
# xmlsec1 signs them, a process each, in the background
FX_PORT=$(free_port)
FX_ISSUER="http://127.0.0.1:$FX_PORT/"
(
    start=$(date +%s%N)
    ISSUER=$FX_ISSUER AUDIENCE="$BASE/login/backend-fixtures/metadata" RECIPIENT="$BASE/login/backend-fixtures/callback" \
        NAMEID=advisor-12345 bash "$SRCDIR/tests/saml/make-assertions.sh" "$TMP/fixtures" >"$TMP/fixtures.log" 2>&1 &&
        echo "$((($(date +%s%N) - start) / 1000000))" >"$TMP/fixtures.ms"
) &
FX_PID=$!
PIDS="$PIDS $FX_PID"

# --- the IdP, then the broker that trusts its metadata -----------------------------------
ssp_start
expect_contains "SimpleSAMLphp answers its metadata" "entityID=\"$SSP_ENTITY_ID\"" "$(cat "$SSP_DIR/idp-metadata.xml")"

STATE="$TMP/state"
CONF="$STATE/mandate.conf"
make_state "$STATE" || fatal "mandatectl init failed"
CTL=("$MANDATECTL" -c "$CONF")
sed -i "s|^  listen = \"127.0.0.1:0\";|  listen = \"127.0.0.1:$DPORT\";\n  issuer = \"$BASE\";|" "$CONF"

# the SP's keys: one pair per instance, made now
for i in bank bank-secure; do
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$STATE/sp-$i.key" -out "$STATE/sp-$i.crt" -days 2 \
        -subj "/CN=Mandate SP $i" >"$TMP/openssl-$i.log" 2>&1 || { cat "$TMP/openssl-$i.log"; fatal "openssl"; }
    chmod 600 "$STATE/sp-$i.key"
done
# saml_instance NAME METADATA KEY [LINE...]: mandate.d/NAME.conf, a saml
# backend instance trusting METADATA, with the SP key pair KEY
saml_instance() {
    local name=$1 metadata=$2 key=$3
    shift 3
    {
        printf 'kind = "backend";\nplugin = "saml";\nidp_metadata = "%s";\n' "$metadata"
        printf 'sp_entity_id = "%s";\n' "$BASE/login/$name/metadata"
        printf 'sp_key = "%s";\nsp_certificate = "%s";\n' "$STATE/sp-$key.key" "$STATE/sp-$key.crt"
        printf '%s\n' "$@"
    } >"$STATE/mandate.d/$name.conf"
    chmod 600 "$STATE/mandate.d/$name.conf"
}
saml_instance backend-bank "$SSP_DIR/idp-metadata.xml" bank
saml_instance backend-bank-secure "$SSP_DIR/idp-metadata.xml" bank-secure 'sign_authn_requests = true;' \
    'nameid_format = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";'

# the attack fixtures (signed in the background meanwhile)
wait "$FX_PID" || { tail -n 20 "$TMP/fixtures.log"; fatal "tests/saml/make-assertions.sh failed"; }
echo "fixtures: signed in $(cat "$TMP/fixtures.ms") ms"
saml_instance backend-fixtures "$TMP/fixtures/metadata.xml" bank
# node_answer REQUEST_ID: the control, signed now by xmlsec1 as the fixtures'
# IdP signs: their genuine assertion, a fresh ID, its bearer confirmation
# naming the request (InResponseTo, under the signature); answers its file
node_answer() {
    local out="$TMP/fixtures/answer-$1.xml"
    ID=$(sed -n 's/.* ID="\([^"]*\)".*/\1/p' "$TMP/fixtures/assertion.xml" | head -n 1) IRT=$1 \
        perl -0pe 's{<ds:DigestValue>.*?</ds:DigestValue>}{<ds:DigestValue/>}s;
        s{<ds:SignatureValue>.*?</ds:SignatureValue>}{<ds:SignatureValue/>}s;
        s{<ds:X509Data>.*?</ds:X509Data>}{<ds:X509Data/>}s; s{\Q$ENV{ID}\E}{$ENV{ID}x}g;
        s{<saml:SubjectConfirmationData }{<saml:SubjectConfirmationData InResponseTo="$ENV{IRT}" }' \
        "$TMP/fixtures/assertion.xml" >"$out.tpl" &&
        xmlsec1 --sign --privkey-pem "$TMP/fixtures/idp1.key,$TMP/fixtures/idp1.crt" \
            --id-attr:ID urn:oasis:names:tc:SAML:2.0:assertion:Assertion --output "$out" "$out.tpl" \
            >"$out.log" 2>&1 && echo "$out" >&3
}

LIFETIME=300
marketpulse_target "$CONF"
cat >>"$CONF" <<CONF
mappings = (
  { name = "advisors"; idp = "saml";
    when = ( { attribute = "role"; equals = "advisor"; }, { attribute = "uid"; present = true; } );
    subject = "\${uid}"; tenant = "default";
    scopes = ["mcp:call"]; audience = ["$AUD"]; max_lifetime = $LIFETIME; },
  { name = "compliance"; idp = "saml";
    when = ( { attribute = "role"; equals = "ComplianceOfficer"; }, { attribute = "uid"; present = true; } );
    subject = "\${uid}"; tenant = "default";
    scopes = ["mcp:call"]; audience = ["$COMPLIANCE_AUD"]; max_lifetime = $LIFETIME; },
  { name = "fixture-advisors"; idp = "backend-fixtures";
    when = ( { attribute = "role"; equals = "FinancialAdvisor"; } );
    subject = "advisor-\${employeeId}"; tenant = "default";
    scopes = ["mcp:call"]; audience = ["$AUD"]; max_lifetime = $LIFETIME; }
);
signin: {
  idps = ( { instance = "backend-bank"; label = "Bank SSO"; },
           { instance = "backend-bank-secure"; label = "Bank SSO (signed, encrypted)"; },
           { instance = "backend-fixtures"; label = "Fixtures IdP"; } );
  tenants = ( { tenant = "default"; name = "Example Wealth Management"; } );
};
registration: { mode = "open"; };
CONF

LOG="$TMP/mandated.log"
start_daemon "$CONF" "$LOG" || { cat "$LOG"; fatal "mandated did not start"; }
start_marketpulse "$BASE" "$DPORT"

# --- Mandate's SP metadata, as the IdP's admin gets it ------------------------------------
for i in bank bank-secure; do
    code=$(curl -s -o "$TMP/sp-$i.xml" -w '%{http_code}' "$BASE/login/backend-$i/metadata")
    expect_eq "GET /login/backend-$i/metadata: 200" 200 "$code"
    expect_contains "its entityID" "entityID=\"$BASE/login/backend-$i/metadata\"" "$(cat "$TMP/sp-$i.xml")"
    expect_contains "its ACS: the callback, HTTP-POST" "$BASE/login/backend-$i/callback" "$(cat "$TMP/sp-$i.xml")"
    "${CTL[@]}" saml sp-metadata "backend-$i" >"$TMP/sp-$i.ctl.xml" 2>"$TMP/sp-$i.ctl.err"
    check "mandatectl saml sp-metadata backend-$i prints the same" cmp -s "$TMP/sp-$i.xml" "$TMP/sp-$i.ctl.xml" ||
        { diff "$TMP/sp-$i.xml" "$TMP/sp-$i.ctl.xml" | head -n 10; cat "$TMP/sp-$i.ctl.err"; }
done
check "the SP metadata publishes the signing certificate" grep -q "$(openssl x509 -in "$STATE/sp-bank.crt" -outform DER | base64 -w0 | cut -c 40-100)" "$TMP/sp-bank.xml"
ssp_register_sp "$TMP/sp-bank.xml"
ssp_register_sp "$TMP/sp-bank-secure.xml" --encrypt --validate-authnrequest
check "SimpleSAMLphp took both SPs from Mandate's metadata" grep -q "backend-bank-secure/callback" \
    "$SSP_DIR/metadata/saml20-sp-remote.php"

# --- the MCP SDK through nginx, once per instance ---------------------------------------------
COMMON=(SIGNIN_BASE="$BASE" SIGNIN_MCP_URL="$GW/mcp" SIGNIN_RESOURCE="$AUD" SIGNIN_CHROMIUM="$CHROMIUM"
    SIGNIN_USER=advisor SIGNIN_PASSWORD=advisor-pw SIGNIN_SUB=advisor-12345 SIGNIN_MODE=dcr SIGNIN_STEPS=signin)
echo "--- the MCP SDK: advisor at SimpleSAMLphp, signed assertion, unsigned AuthnRequest"
run_node signin-mcp.mjs "${COMMON[@]}" SIGNIN_IDP="Bank SSO" SIGNIN_IDP_CLAIM="$SSP_ENTITY_ID" \
    SIGNIN_SHOTS="$ARTIFACTS/mcp-plain"
echo "--- the MCP SDK: advisor at SimpleSAMLphp, signed AuthnRequest, encrypted assertion"
run_node signin-mcp.mjs "${COMMON[@]}" SIGNIN_IDP="Bank SSO (signed, encrypted)" \
    SIGNIN_IDP_CLAIM="$SSP_ENTITY_ID" SIGNIN_SHOTS="$ARTIFACTS/mcp-secure"
check "backend-bank-secure: the NameID is the persistent one asked for (the uid)" \
    grep -q "signed in at backend-bank-secure: advisor-12345 as advisor-12345 (rule advisors)" "$LOG"
# node_encrypt_nameid: from now on SimpleSAMLphp encrypts the NameID too
node_encrypt_nameid() {
    ssp_register_sp "$TMP/sp-bank-secure.xml" --encrypt --encrypt-nameid --validate-authnrequest && echo ok >&3
}
check "the tool server saw the advisor call it (its own check of the token)" \
    grep -q "POST /mcp 200 client=.* sub=advisor-12345 rpc=tools/call" "$TMP/tool.log"

# --- compliance, a stranger, tampering, the fixtures --------------------------------------------
"${CTL[@]}" client create saml-pages --public --redirect-uri http://127.0.0.1/callback \
    --grant-type authorization_code --scope mcp:call --audience "$AUD" --audience "$COMPLIANCE_AUD" \
    >"$TMP/pages.out" 2>&1
check "a public client for the pages" "${CTL[@]}" client show saml-pages >/dev/null 2>&1 || cat "$TMP/pages.out"
# the genuine one (accepted: the control) and the attacks
FIXTURES="assertion wrap-extensions wrap-object wrap-object-same-id wrap-second-assertion wrap-two-assertions
    wrap-reference-uri wrap-duplicate-id comment-nameid tampered-nameid tampered-response entity-bomb
    external-entity unsigned response-unsigned attacker wrong-audience expired"
echo "--- the pages: compliance, stranger, tampering, fixtures"
run_node signin-saml.mjs SIGNIN_BASE="$BASE" SIGNIN_CHROMIUM="$CHROMIUM" SIGNIN_CLIENT_ID=saml-pages \
    SIGNIN_IDP="Bank SSO" SAML_INSTANCE=backend-bank SAML_SECURE_INSTANCE=backend-bank-secure SAML_IDP_CLAIM="$SSP_ENTITY_ID" SAML_ADVISOR_AUD="$AUD" \
    SAML_COMPLIANCE_AUD="$COMPLIANCE_AUD" SAML_TAMPER=1 SAML_FIXTURES="$TMP/fixtures" \
    SAML_FIXTURE_INSTANCE=backend-fixtures SAML_FIXTURE_SSO="${FX_ISSUER}sso" SAML_FIXTURE_NAMES="$FIXTURES" \
    SIGNIN_SHOTS="$ARTIFACTS/pages"
echo "screenshots: $(find "$ARTIFACTS" -name '*.png' | wc -l) in $ARTIFACTS"
# SimpleSAMLphp's encrypted answers, as another SP would read them: xmlsec1
# decrypts the assertion with the SP's key and checks the assertion's own
# signature with the IdP's certificate (whether the IdP's answer is sound,
# whatever Mandate said; the Response's signature covers the encrypted form)
# xmlsec_reads NAME: posted-NAME.xml decrypted and verified; its log and the
# decrypted answer beside the screenshots
xmlsec_reads() {
    local dir="$ARTIFACTS/pages"
    xmlsec1 --decrypt --privkey-pem "$STATE/sp-bank-secure.key" --output "$dir/$1.decrypted.xml" \
        "$dir/posted-$1.xml" >"$dir/xmlsec-$1.log" 2>&1 &&
        xmlsec1 --verify --pubkey-cert-pem "$SSP_DIR/cert/idp.crt" \
            --id-attr:ID urn:oasis:names:tc:SAML:2.0:assertion:Assertion \
            --id-attr:ID urn:oasis:names:tc:SAML:2.0:protocol:Response \
            --node-xpath "//*[local-name()='Assertion']/*[local-name()='Signature']" \
            "$dir/$1.decrypted.xml" >>"$dir/xmlsec-$1.log" 2>&1
}
for f in encrypted encrypted-nameid; do
    [ -f "$ARTIFACTS/pages/posted-$f.xml" ] || continue
    check "xmlsec1: SimpleSAMLphp's $f answer decrypts and its assertion's signature verifies" xmlsec_reads "$f"
    grep -E '^func=|FAIL|OK' "$ARTIFACTS/pages/xmlsec-$f.log" | tail -n 3 | sed 's/^/  xmlsec1: /'
done

# --- what the broker and the IdP kept ------------------------------------------------------------
for event in login.started login.finished login.refused consent.granted code.issued code.redeemed; do
    check "audited: $event" grep -qF "\"event\":\"$event\"" "$STATE"/audit/*.jsonl
done
check "SimpleSAMLphp logged the three users in" bash -c "for u in advisor compliance stranger; do
    grep -q \"User \$u successfully authenticated\\|\$u\" '$SSP_DIR/log/simplesamlphp.log' || exit 1; done"
check "no refresh token, session cookie or SAMLResponse in the daemon's log" \
    bash -c "! grep -qE 'mrt_[A-Za-z0-9_-]{20}|__Host-mandate-session=|PHNhbWxwOlJlc3BvbnNl' '$LOG'"

ssp_stop
stop_daemon
expect_eq "mandated stops cleanly" 0 "$DAEMON_STATUS"
check "no sanitizer report" bash -c "! grep -q Sanitizer '$LOG' '$TMP/tool.log'"
mkdir -p "$ARTIFACTS/logs"
cp "$LOG" "$TMP/tool.log" "$SSP_DIR/log/simplesamlphp.log" "$TMP"/*.mjs.err "$ARTIFACTS/logs/" 2>/dev/null
if [ "$FAILURES" -ne 0 ]; then
    echo "--- mandated's log (last 60 lines)"
    tail -n 60 "$LOG"
    echo "--- SimpleSAMLphp's log (last 30 lines)"
    tail -n 30 "$SSP_DIR/log/simplesamlphp.log"
fi
finish
