#!/bin/bash
# People sign in through a SAML IdP (issue 23), driven with curl through the
# live daemon as a browser would: /oauth2/authorize (PKCE) sends the browser
# to the IdP with an AuthnRequest (HTTP-Redirect), which is decoded here; the
# IdP's answer is made for that request by tools not ours (openssl keys,
# Debian's xmlsec1: tests/saml/make-assertions.sh) and POSTed to the
# Assertion Consumer Service with the RelayState; then consent, the code,
# the token. The mapping rules decide: advisor-12345 gets mcp:call on the
# MarketPulse target, an intern gets the "no rule ... admits you" page. Every attack
# fixture posted to the ACS gets an error, no session, no code, and an audit
# record. Then the instance takes IdP-initiated answers for the client: an
# unsolicited Response opens a session (no code) and goes to the client's
# initiate_login_uri or a "You are signed in" page, the client's own
# /authorize then needs no IdP; its replay, a stale request's answer and an
# intern are refused. SimpleSAMLphp in a real browser is in tests/interop.
. "${MANDATE_SRCDIR:-.}/tests/e2e/lib.sh"

command -v python3 >/dev/null || { echo "python3 is missing (inflating the AuthnRequest): skipped"; exit 77; }
saml_fixtures

new_state
INSTANCE=backend-corp-saml
MARKET=https://mcp.example/marketpulse
saml_fixture_instance "$STATE/mandate.d/$INSTANCE.conf" "sp_key = \"$SAML/sp.key\";" \
    "sp_certificate = \"$SAML/sp.crt\";" "sign_authn_requests = true;"
cat >>"$CONF" <<CONF
targets = ( { name = "marketpulse"; paths = ["/mcp"]; audience = "$MARKET"; scopes = ["mcp:call"]; } );
mappings = (
$(saml_advisors_mapping "$INSTANCE" "$MARKET" '["mcp:call"]'),
  { name = "analysts"; idp = "$INSTANCE";
    when = ( { attribute = "role"; equals = "Analyst"; }, { attribute = "employeeId"; present = true; } );
    subject = "analyst-\${employeeId}"; tenant = "default"; scopes = ["mcp:call"]; audience = ["$MARKET"]; }
);
signin: { tenants = ( { tenant = "default"; name = "Example Bank"; } ); };
CONF
sed -i 's|^server: {|server: {\n  body_limit = 1048576;|' "$CONF"
daemon_up "daemon starts with a saml backend for sign-in"
ACS="$BASE/login/$INSTANCE/callback"
REDIRECT=http://127.0.0.1:7777/cb
"${CTL[@]}" client create mcp-app --public --redirect-uri "$REDIRECT" \
    --grant-type authorization_code --grant-type refresh_token --scope "mcp:call" \
    --audience "$MARKET" >/dev/null 2>&1
check "a public MCP client" "${CTL[@]}" client show mcp-app

b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
VERIFIER=$(head -c 32 /dev/urandom | b64url)
CHALLENGE=$(printf '%s' "$VERIFIER" | openssl dgst -binary -sha256 | b64url)
COOKIES=""
query_param() { # URL NAME: percent-decoded
    python3 -c 'import sys, urllib.parse as u; q = u.parse_qs(u.urlsplit(sys.argv[1]).query); print(q.get(sys.argv[2], [""])[0])' "$1" "$2"
}
enc() { python3 -c 'import sys, urllib.parse as u; print(u.quote(sys.argv[1], safe=""))' "$1"; }
authorize_url() { # for $CLIENT_ID (default mcp-app)
    printf '%s/oauth2/authorize?response_type=code&client_id=%s&redirect_uri=%s&scope=mcp:call&state=st-9&code_challenge=%s&code_challenge_method=S256&resource=%s' \
        "$BASE" "${CLIENT_ID:-mcp-app}" "$(enc "$REDIRECT")" "$CHALLENGE" "$(enc "$MARKET")"
}
# start: the authorization request, to the IdP; sets SSO_URL, REQUEST_XML,
# REQUEST_ID, RELAY
start() { # [extra query]
    COOKIES=""
    to_idp "$(authorize_url)${1:-}"
}
to_idp() { # URL: start's, in this browser
    browse "$1"
    SSO_URL=$(location)
    REQUEST_XML=$(python3 -c 'import sys, zlib, base64, urllib.parse as u
q = u.parse_qs(u.urlsplit(sys.argv[1]).query)
print(zlib.decompress(base64.b64decode(q["SAMLRequest"][0]), -15).decode())' "$SSO_URL")
    REQUEST_ID=$(printf '%s' "$REQUEST_XML" | sed -n 's/.* ID="\([^"]*\)".*/\1/p')
    RELAY=$(query_param "$SSO_URL" RelayState)
}
# answer [ROLE]: the IdP's signed Response to the outstanding request, in $SAML/acs-*.b64
answer() {
    ONLY_ACS=1 KEEP_KEYS=1 REQUEST_ID=$REQUEST_ID ACS_URL=$ACS ACS_ROLE=${1:-FinancialAdvisor} \
        bash "$SRCDIR/tests/saml/make-assertions.sh" "$SAML" "$(date +%s)" >"$TMP/make.log" 2>&1 ||
        { cat "$TMP/make.log"; fail "make-assertions.sh for $REQUEST_ID"; }
}
# without_session_cookie: the browser's cookies as a cross-site POST carries
# them (the session cookie is SameSite=Lax)
without_session_cookie() {
    COOKIES=$(printf '%s' "$COOKIES" | tr ';' '\n' | sed 's/^ //' | grep -v '^__Host-mandate-session=' |
        paste -sd';' | sed 's/;/; /g')
}
post_acs() { # FILE [RELAYSTATE]: the HTTP-POST binding, as the browser's auto-submitted form
    browse "$ACS" --data-urlencode "SAMLResponse@$1" --data-urlencode "RelayState=${2-$RELAY}"
}

# --- SP metadata -------------------------------------------------------------------
md=$(curl -s "$BASE/login/$INSTANCE/metadata")
expect_contains "SP metadata: our entityID" 'entityID="https://mandate.example.com/saml"' "$md"
expect_contains "  the ACS, HTTP-POST" "Location=\"$ACS\"" "$md"
expect_contains "  our certificate for encryption" 'use="encryption"' "$md"
expect_contains "  signed AuthnRequests" 'AuthnRequestsSigned="true"' "$md"
expect_contains "  single logout, HTTP-Redirect" "<md:SingleLogoutService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect\" Location=\"$BASE/login/$INSTANCE/logout\"/>" "$md"
ctl_md=$("${CTL[@]}" saml sp-metadata "$INSTANCE" 2>/dev/null)
expect_contains "mandatectl saml sp-metadata: the same entity" 'entityID="https://mandate.example.com/saml"' "$ctl_md"
expect_contains "  its ACS under the issuer" "/login/$INSTANCE/callback\"" "$ctl_md"
expect_eq "  an instance that is not there: exit 1" 1 "$("${CTL[@]}" saml sp-metadata nosuch >/dev/null 2>&1; echo $?)"

# --- a sign-in --------------------------------------------------------------------------
start
expect_eq "authorize: sent to the IdP" 302 "$(status)"
expect_contains "  its SingleSignOnService (HTTP-Redirect)" "https://idp.example.com/sso?SAMLRequest=" "$SSO_URL"
expect_contains "  an AuthnRequest" "<samlp:AuthnRequest" "$REQUEST_XML"
expect_contains "  for our ACS" "AssertionConsumerServiceURL=\"$ACS\"" "$REQUEST_XML"
expect_contains "  answered with HTTP-POST" 'ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"' "$REQUEST_XML"
check "  an ID that does not start with a digit" bash -c "[[ '$REQUEST_ID' =~ ^_[0-9a-f]{40}$ ]]"
check "  signed (SigAlg, Signature)" test -n "$(query_param "$SSO_URL" Signature)"
# the IdP's check of the signature: openssl with our certificate, over the query as sent
openssl x509 -in "$SAML/sp.crt" -pubkey -noout >"$TMP/sp.pub"
redirect_signed() { # URL: its Signature verifies with the SP certificate over the query before it
    local signed_part=${1#*\?}
    query_param "$1" Signature | base64 -d >"$TMP/redirect.sig"
    printf '%s' "${signed_part%%&Signature=*}" |
        openssl dgst -sha256 -verify "$TMP/sp.pub" -signature "$TMP/redirect.sig" >/dev/null
}
check "  the signature verifies with the SP certificate" redirect_signed "$SSO_URL"
check "  RelayState: an opaque handle, no URL" bash -c "[[ '$RELAY' =~ ^[A-Za-z0-9_-]{20,}$ ]]"
BROWSER=$COOKIES
answer
post_acs "$SAML/acs-ok.b64"
expect_eq "the ACS: the consent page" 200 "$(status)"
expect_contains "  names the advisor" "advisor-12345" "$(cat "$TMP/b")"
browse "$BASE/consent" -d "handle=$(form_value handle)" -d "csrf=$(form_value csrf)" -d decision=allow
expect_eq "consent: to the client" 303 "$(status)"
CB=$(location)
expect_eq "  with its state" st-9 "$(query_param "$CB" state)"
out=$(curl -s -d grant_type=authorization_code -d client_id=mcp-app -d "code=$(query_param "$CB" code)" \
    -d "code_verifier=$VERIFIER" --data-urlencode "redirect_uri=$REDIRECT" \
    --data-urlencode "resource=$MARKET" "$BASE/oauth2/token")
claims=$(jwt_claims "$(json_get "$out" access_token)")
expect_eq "the token: sub advisor-12345" advisor-12345 "$(json_get "$claims" sub)"
expect_eq "  idp: the IdP's entityID (as the token exchange names it)" https://idp.example.com/ "$(json_get "$claims" idp)"
expect_eq "  aud: MarketPulse" "$MARKET" "$(json_get "$claims" aud)"
expect_eq "  scope: mcp:call" "mcp:call" "$(json_get "$claims" scope)"
expect_eq "  for the MCP client" mcp-app "$(json_get "$claims" client_id)"
# the same Response again, on a fresh sign-in: replayed (and for another request)
SAVED_OK="$TMP/acs-ok.saved"
cp "$SAML/acs-ok.b64" "$SAVED_OK"

# --- refused at the ACS: an error, no session, no code, an audit record -----------------
audit_count() { cat "$STATE"/audit/*.jsonl | grep -c '"event":"login.refused"'; }
refused() { # NAME DESCRIPTION FILE: a fresh sign-in answered with FILE
    start
    answer
    local before
    before=$(audit_count)
    post_acs "$3"
    local st loc
    st=$(status)
    loc=$(location)
    # the pending authorization is spent: the client hears access_denied
    # (or, before the backend, the browser gets an error page)
    if { [ "${st:0:2}" = 30 ] && [[ $loc == "$REDIRECT?error=access_denied"* ]]; } ||
        { [ "${st:0:1}" = 4 ] && [ -z "$loc" ]; }; then
        pass "$2: refused ($st${loc:+ access_denied})"
    else
        fail "$2: got $st $loc"
    fi
    CHECKS=$((CHECKS + 1))
    check "  no session cookie, no code" bash -c "! grep -qi 'Set-Cookie: __Host-mandate-session=[^;]' '$TMP/h' && ! grep -q 'code=' <<<'$loc'"
    check "  audited" test "$(audit_count)" -gt "$before"
}
for case in wrong-recipient wrong-destination wrong-irt no-irt wrong-audience expired \
    not-yet-valid comment-nameid wrap-extensions wrap-second-assertion tampered entity-bomb \
    external-entity encrypted-unsigned encrypted-other-key unsolicited; do
    refused "$case" "$case" "$SAML/acs-$case.b64"
done
refused replay "the first sign-in's Response replayed" "$SAVED_OK"
# an oversize SAMLResponse: past max_assertion_size (256 KiB decoded), within
# the body limit (1 MiB here): the backend's bound
head -c 400000 /dev/urandom | base64 -w0 >"$TMP/big.b64"
refused oversize "a SAMLResponse of 530 kB" "$TMP/big.b64"
expect_contains "  for its size" "more than max_assertion_size" "$(grep '"event":"login.refused"' "$STATE"/audit/*.jsonl | tail -n 1)"
# past the body limit: the HTTP layer's 413, before any route
head -c 1200000 /dev/urandom | base64 -w0 >"$TMP/huge.b64"
start
post_acs "$TMP/huge.b64"
expect_eq "a SAMLResponse of 1.6 MB: 413" 413 "$(status)"
# its record is written as the 413 goes out, not before it: waited for
audit_last() { # EVENT: its last record, waiting up to 5 s for one
    local i
    for i in $(seq 1 100); do
        grep -h "\"event\":\"$1\"" "$STATE"/audit/*.jsonl | tail -n 1 | grep . && return 0
        sleep 0.05
    done
}
too_large=$(audit_last http.body_too_large)
expect_contains "  audited http.body_too_large: the route" "\"route\":\"/login/$INSTANCE/callback\"" "$too_large"
expect_contains "  the limit" '"body_limit":1048576' "$too_large"
expect_contains "  the peer" '"peer":"127.0.0.1"' "$too_large"

# the IdP says no: the client hears access_denied
start
answer
post_acs "$SAML/acs-authn-failed.b64"
expect_eq "the IdP's AuthnFailed: access_denied to the client" access_denied "$(query_param "$(location)" error)"
# the client asks for a recent login: SAML has no max_age, so the IdP is
# asked for a fresh one (ForceAuthn), and the AuthnInstant is checked (the
# fixture IdP answers with a login 120 s old, as an IdP that ignores
# ForceAuthn would): login_required to the client (review s33, finding 3)
for ask in "&max_age=60" "&prompt=login"; do
    start "$ask"
    expect_contains "$ask: the AuthnRequest asks ForceAuthn" 'ForceAuthn="true"' "$REQUEST_XML"
    answer
    post_acs "$SAML/acs-ok.b64"
    expect_eq "  a login 120 s old: login_required to the client" login_required \
        "$(query_param "$(location)" error)"
    check "  no session cookie" bash -c "! grep -qi 'Set-Cookie: __Host-mandate-session=[^;]' '$TMP/h'"
    expect_contains "  audited" "login.refused" "$(grep -h '"event":"login.refused"' "$STATE"/audit/*.jsonl | tail -n 1)"
done
start "&max_age=300"
answer
post_acs "$SAML/acs-ok.b64"
expect_eq "max_age=300 and a login 120 s old: the consent page" 200 "$(status)"
# a new sign-in in this browser ends the session it replaces (review s33,
# finding 5): here one whose login is made an hour old, which max_age=600
# does not take; the IdP's answer is a cross-site POST, without the
# SameSite=Lax session cookie: the authorization request noted the session
sqlite3 -cmd ".timeout 5000" "$STATE/mandate.db" "UPDATE sessions SET authn_at = authn_at - 3600"
OLD_BROWSER=$COOKIES
to_idp "$(authorize_url)&max_age=600"
expect_contains "an older login than max_age allows, in a signed-in browser: to the IdP" \
    "https://idp.example.com/sso?SAMLRequest=" "$SSO_URL"
answer
without_session_cookie
post_acs "$SAML/acs-ok.b64"
expect_eq "  the ACS: the consent page" 200 "$(status)"
COOKIES=$OLD_BROWSER
browse "$(authorize_url)"
expect_contains "  the replaced session's cookie no longer answers /authorize: the IdP" \
    "https://idp.example.com/sso?SAMLRequest=" "$(location)"
expect_contains "  audited session.ended" '"reason":"replaced"' \
    "$(grep -h '"event":"session.ended"' "$STATE"/audit/*.jsonl | tail -n 1)"
# the answer in another browser (no login cookie)
start
answer
COOKIES=""
post_acs "$SAML/acs-ok.b64"
expect_eq "the ACS in another browser: an error page" 400 "$(status)"
# no RelayState, nothing configured for unsolicited logins
start
answer
post_acs "$SAML/acs-unsolicited.b64" ""
expect_eq "an unsolicited Response: an error page" 400 "$(status)"
# a user no rule admits
start
answer Intern
post_acs "$SAML/acs-ok.b64"
expect_eq "an intern: no rule admits them" 403 "$(status)"
expect_contains "  the page says so" "no rule of this broker admits" "$(tr 'A-Z' 'a-z' <"$TMP/b")"
expect_contains "  audited" '"reason":' "$(grep '"event":"login.refused"' "$STATE"/audit/*.jsonl | tail -n 1)"

# --- single logout ------------------------------------------------------------------------
SLO_ROUTE="$BASE/login/$INSTANCE/logout"
inflate_param() { # URL PARAM: the redirect binding's message, inflated
    python3 -c 'import sys, zlib, base64, urllib.parse as u
q = u.parse_qs(u.urlsplit(sys.argv[1]).query)
print(zlib.decompress(base64.b64decode(q[sys.argv[2]][0]), -15).decode())' "$1" "$2"
}
# idp_query PARAM XMLFILE [RELAY [KEY]]: the IdP's redirect message (DEFLATE,
# base64, percent-encoded), signed by openssl with KEY (default the IdP's
# idp1.key; "none": unsigned) over the query, as the binding says
idp_query() {
    python3 - "$@" <<'PY'
import sys, zlib, base64, subprocess, urllib.parse as u
param, xml = sys.argv[1], open(sys.argv[2], "rb").read()
relay = sys.argv[3] if len(sys.argv) > 3 else ""
key = sys.argv[4] if len(sys.argv) > 4 else ""
c = zlib.compressobj(9, zlib.DEFLATED, -15)
q = param + "=" + u.quote(base64.b64encode(c.compress(xml) + c.flush()).decode(), safe="")
if relay:
    q += "&RelayState=" + u.quote(relay, safe="")
if key != "none":
    q += "&SigAlg=" + u.quote("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", safe="")
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=q.encode(),
                         capture_output=True, check=True).stdout
    q += "&Signature=" + u.quote(base64.b64encode(sig).decode(), safe="")
print(q)
PY
}
IDP_KEY="$SAML/idp1.key"
now_ts() { TZ=UTC0 printf '%(%Y-%m-%dT%H:%M:%SZ)T' -1; }
# idp_logout_request FILE ID SESSIONINDEX: the IdP's LogoutRequest for alice
idp_logout_request() {
    cat >"$1" <<XML
<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="$2" Version="2.0" IssueInstant="$(now_ts)" Destination="$SLO_ROUTE"><saml:Issuer>https://idp.example.com/</saml:Issuer><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">alice@example.com</saml:NameID><samlp:SessionIndex>$3</samlp:SessionIndex></samlp:LogoutRequest>
XML
}
# slo_signin: a fresh sign-in through consent in a fresh browser; the
# session's SessionIndex in SESSION_INDEX, its cookies in COOKIES
slo_signin() {
    start
    answer
    post_acs "$SAML/acs-ok.b64"
    SESSION_INDEX=$(sed -n 's/.*SessionIndex="\([^"]*\)".*/\1/p' "$SAML/acs-ok.xml" | head -n 1)
    [ "$(status)" = 200 ] || fail "slo_signin: the consent page, got $(status)"
}
# asks_idp: whether /oauth2/authorize with this browser goes to the IdP (no session)
asks_idp() {
    browse "$(authorize_url)"
    [ "$(status)" = 302 ] && [[ $(location) == https://idp.example.com/sso\?* ]]
}
stays_signed_in() { ! asks_idp; }
audit_last() { grep "\"event\":\"$1\"" "$STATE"/audit/*.jsonl | tail -n 1; }

# redeem CODE: the token endpoint's answer in $TMP/t, its status printed
redeem() {
    curl -s -o "$TMP/t" -w '%{http_code}' -d grant_type=authorization_code -d client_id=mcp-app \
        -d "code=$1" -d "code_verifier=$VERIFIER" --data-urlencode "redirect_uri=$REDIRECT" \
        --data-urlencode "resource=$MARKET" "$BASE/oauth2/token"
}
refresh() { # TOKEN: likewise
    curl -s -o "$TMP/t" -w '%{http_code}' -d grant_type=refresh_token -d client_id=mcp-app \
        -d "refresh_token=$1" "$BASE/oauth2/token"
}
# consent_code: allows the consent page just fetched; the code
consent_code() {
    browse "$BASE/consent" -d "handle=$(form_value handle)" -d "csrf=$(form_value csrf)" -d decision=allow
    query_param "$(location)" code
}

# IdP-initiated: the IdP's signed LogoutRequest ends the session it names
slo_signin
# what an application got through this session: a refresh family (rotated
# once) and a code not redeemed yet; both end with the session
SESSION_CODE=$(consent_code)
expect_eq "a code of the session: redeemed" 200 "$(redeem "$SESSION_CODE")"
R1=$(json_get "$(cat "$TMP/t")" refresh_token)
check "  with a refresh token" test -n "$R1"
expect_eq "  which rotates" 200 "$(refresh "$R1")"
SESSION_REFRESH=$(json_get "$(cat "$TMP/t")" refresh_token)
browse "$(authorize_url)"
LATE_CODE=$(consent_code)
check "  another code of the session, kept" test -n "$LATE_CODE"
check "a signed-in browser: /authorize does not ask the IdP" stays_signed_in
browse "$(authorize_url)"
expect_eq "  (the consent page)" 200 "$(status)"
IDP_BROWSER=$COOKIES
idp_logout_request "$TMP/lr.xml" "_idp-logout-1" "$SESSION_INDEX"
LR_QUERY=$(idp_query SAMLRequest "$TMP/lr.xml" "idp-relay-7" "$IDP_KEY")
COOKIES=""   # the IdP's front channel: the user's browser, cookies or not
browse "$SLO_ROUTE?$LR_QUERY"
expect_eq "IdP-initiated LogoutRequest: back to the IdP" 302 "$(status)"
ANSWER=$(location)
expect_contains "  at its SingleLogoutService" "https://idp.example.com/slo?SAMLResponse=" "$ANSWER"
expect_eq "  its RelayState back" idp-relay-7 "$(query_param "$ANSWER" RelayState)"
answer_xml=$(inflate_param "$ANSWER" SAMLResponse)
expect_contains "  a LogoutResponse to it" 'InResponseTo="_idp-logout-1"' "$answer_xml"
expect_contains "  Success" 'StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"' "$answer_xml"
check "  signed: verifies with the SP certificate" redirect_signed "$ANSWER"
expect_contains "  audited: the session ended" '"reason":"idp_logout"' "$(audit_last session.ended)"
expect_contains "  audited: the logout" '"sessions":1' "$(audit_last logout.finished)"
expect_eq "  the session's refresh token: refused" 400 "$(refresh "$SESSION_REFRESH")"
expect_contains "  invalid_grant, the sign-in ended" "has ended" "$(cat "$TMP/t")"
expect_eq "  its code not redeemed yet: refused" 400 "$(redeem "$LATE_CODE")"
expect_contains "  invalid_grant, signed out" "signed out" "$(cat "$TMP/t")"
check "  audited: what the session gave revoked (the family, its access tokens)" \
    grep -q '"revocations":[1-9]' <<<"$(audit_last session.ended)"
COOKIES=$IDP_BROWSER
check "  that browser's next /authorize asks the IdP again" asks_idp
COOKIES=""
browse "$SLO_ROUTE?$LR_QUERY"
expect_eq "the same LogoutRequest again: refused" 400 "$(status)"
expect_contains "  audited" '"reason":"saml: LogoutRequest replayed' "$(audit_last logout.refused)"
# unsigned, signed by another key, altered after signing, another IdP
slo_signin
IDP_BROWSER=$COOKIES
idp_logout_request "$TMP/lr2.xml" "_idp-logout-2" "$SESSION_INDEX"
COOKIES=""
browse "$SLO_ROUTE?$(idp_query SAMLRequest "$TMP/lr2.xml" "" none)"
expect_eq "an unsigned LogoutRequest: refused" 400 "$(status)"
expect_contains "  the page says so" "sign-out message was refused" "$(cat "$TMP/b")"
browse "$SLO_ROUTE?$(idp_query SAMLRequest "$TMP/lr2.xml" "" "$SAML/attacker.key")"
expect_eq "a LogoutRequest signed by a key not in the metadata: refused" 400 "$(status)"
q=$(idp_query SAMLRequest "$TMP/lr2.xml" "relay" "$IDP_KEY")
browse "$SLO_ROUTE?${q/RelayState=relay/RelayState=other}"
expect_eq "a LogoutRequest altered after signing: refused" 400 "$(status)"
sed 's|<saml:Issuer>https://idp.example.com/|<saml:Issuer>https://other-idp.example.net/|' "$TMP/lr2.xml" >"$TMP/lr3.xml"
browse "$SLO_ROUTE?$(idp_query SAMLRequest "$TMP/lr3.xml" "" "$IDP_KEY")"
expect_eq "a LogoutRequest from another Issuer: refused" 400 "$(status)"
COOKIES=$IDP_BROWSER
check "  none of them ended the session" stays_signed_in
# a session nobody has: the IdP hears UnknownPrincipal
idp_logout_request "$TMP/lr4.xml" "_idp-logout-4" "_no-such-session"
COOKIES=""
browse "$SLO_ROUTE?$(idp_query SAMLRequest "$TMP/lr4.xml" "" "$IDP_KEY")"
expect_contains "a LogoutRequest for an unknown session: UnknownPrincipal" "status:UnknownPrincipal" "$(inflate_param "$(location)" SAMLResponse)"

# SP-initiated: Mandate's /logout ends the session, then the IdP's
COOKIES=$IDP_BROWSER
browse "$BASE/logout"
expect_eq "/logout: the sign-out page" 200 "$(status)"
browse "$BASE/logout" -d "csrf=$(form_value csrf)"
expect_eq "  signing out: to the IdP" 303 "$(status)"
OUT_URL=$(location)
expect_contains "  at its SingleLogoutService" "https://idp.example.com/slo?SAMLRequest=" "$OUT_URL"
out_xml=$(inflate_param "$OUT_URL" SAMLRequest)
expect_contains "  a LogoutRequest" "<samlp:LogoutRequest" "$out_xml"
expect_contains "  for the NameID" '>alice@example.com</saml:NameID>' "$out_xml"
expect_contains "  and the SessionIndex of the sign-in" "<samlp:SessionIndex>$SESSION_INDEX</samlp:SessionIndex>" "$out_xml"
check "  signed: verifies with the SP certificate" redirect_signed "$OUT_URL"
expect_contains "  audited" '"event":"logout.started"' "$(audit_last logout.started)"
check "  the session is gone: /authorize asks the IdP" asks_idp
OUT_ID=$(printf '%s' "$out_xml" | sed -n 's/.* ID="\([^"]*\)".*/\1/p')
OUT_RELAY=$(query_param "$OUT_URL" RelayState)
cat >"$TMP/lresp.xml" <<XML
<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_idp-resp-1" Version="2.0" IssueInstant="$(now_ts)" Destination="$SLO_ROUTE" InResponseTo="$OUT_ID"><saml:Issuer>https://idp.example.com/</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status></samlp:LogoutResponse>
XML
RESP_QUERY=$(idp_query SAMLResponse "$TMP/lresp.xml" "$OUT_RELAY" "$IDP_KEY")
browse "$SLO_ROUTE?${RESP_QUERY/RelayState=/RelayState=x}"
expect_eq "the IdP's LogoutResponse with another RelayState: refused" 400 "$(status)"
browse "$SLO_ROUTE?$RESP_QUERY"
expect_eq "the IdP's LogoutResponse: a page" 200 "$(status)"
expect_contains "  signed out of both" "signed out of the broker and of your identity provider" "$(cat "$TMP/b")"
expect_contains "  audited" '"initiated":"sp"' "$(audit_last logout.finished)"
browse "$SLO_ROUTE?$RESP_QUERY"
expect_eq "  the same LogoutResponse again: refused" 400 "$(status)"
# --- IdP-initiated sign-in (doc/saml-sso.md section 8) ---------------------------------
# the instance now takes unsolicited answers, for mcp-app and MarketPulse
cat >>"$STATE/mandate.d/$INSTANCE.conf" <<CONF
idp_initiated_client = "mcp-app";
idp_initiated_resource = "$MARKET";
CONF
kill -HUP "$DAEMON_PID"
check "reloaded: IdP-initiated sign-in allowed for mcp-app" wait_for_log "$LOG" "reloaded:"
records() { cat "$STATE"/audit/*.jsonl | grep -c "\"event\":\"$1\""; }
answer
cp "$SAML/acs-unsolicited.b64" "$TMP/unsolicited.saved"
codes=$(records code.issued)
COOKIES=""
post_acs "$SAML/acs-unsolicited.b64" ""
expect_eq "IdP-initiated, no initiate_login_uri: a page" 200 "$(status)"
expect_contains "  You are signed in" "You are signed in" "$(cat "$TMP/b")"
expect_contains "  as the rules map the user" "advisor-12345" "$(cat "$TMP/b")"
expect_contains "  under the organization's name (signin.tenants), not the instance's" "Example Bank" "$(cat "$TMP/b")"
check "  a session cookie" grep -qi 'Set-Cookie: __Host-mandate-session=[^;]' "$TMP/h"
check "  frames forbidden" grep -qi '^X-Frame-Options: DENY' "$TMP/h"
expect_eq "  no code issued" "$codes" "$(records code.issued)"
record=$(audit_last login.idp_initiated)
expect_contains "  audited login.idp_initiated: the client" '"client_id":"mcp-app"' "$record"
expect_contains "  the IdP's entityID" '"entity_id":"https://idp.example.com/"' "$record"
expect_contains "  the subject" '"sub":"advisor-12345"' "$record"
# the application's own authorization request: answered from the session,
# without the IdP (the consent of the first sign-in was not remembered: asked
# again, and remembered this time)
browse "$(authorize_url)"
expect_eq "  then /authorize: the consent page, not the IdP" 200 "$(status)"
expect_contains "  for the advisor" "advisor-12345" "$(cat "$TMP/b")"
browse "$BASE/consent" -d "handle=$(form_value handle)" -d "csrf=$(form_value csrf)" \
    -d remember=yes -d decision=allow
CB=$(location)
expect_eq "  consent: back to the client" "$REDIRECT" "${CB%%\?*}"
expect_eq "  with its state" st-9 "$(query_param "$CB" state)"
out=$(curl -s -d grant_type=authorization_code -d client_id=mcp-app -d "code=$(query_param "$CB" code)" \
    -d "code_verifier=$VERIFIER" --data-urlencode "redirect_uri=$REDIRECT" \
    --data-urlencode "resource=$MARKET" "$BASE/oauth2/token")
expect_eq "  the token: sub advisor-12345" advisor-12345 "$(json_get "$(jwt_claims "$(json_get "$out" access_token)")" sub)"
# the same Response again: replayed
before=$(records login.idp_initiated)
COOKIES=""
post_acs "$TMP/unsolicited.saved" ""
expect_eq "the same unsolicited Response again: refused" 400 "$(status)"
check "  no session cookie" bash -c "! grep -qi 'Set-Cookie: __Host-mandate-session=[^;]' '$TMP/h'"
expect_contains "  audited as replayed" "replay" "$(audit_last login.refused)"
expect_eq "  no second login.idp_initiated" "$before" "$(records login.idp_initiated)"
# an answer to a request of ours whose sign-in is gone is not taken as unsolicited
COOKIES=""
post_acs "$SAML/acs-ok.b64" "no-such-handle"
expect_eq "an answer to a request nobody waits for: refused" 400 "$(status)"
# a user no rule admits: the same page as ever, no session
answer Intern
COOKIES=""
post_acs "$SAML/acs-unsolicited.b64" ""
expect_eq "IdP-initiated, an intern: no rule admits them" 403 "$(status)"
check "  no session cookie" bash -c "! grep -qi 'Set-Cookie: __Host-mandate-session=[^;]' '$TMP/h'"
# with the client's initiate_login_uri: sent there, with iss
check "mandatectl client set --initiate-login-uri" \
    "${CTL[@]}" client set mcp-app --initiate-login-uri "http://127.0.0.1:7777/login"
expect_eq "  refused: plain http to a public host" 1 \
    "$("${CTL[@]}" client set mcp-app --initiate-login-uri http://app.example.com/login >/dev/null 2>&1; echo $?)"
expect_contains "  client show names it" "initiate_login_uri" "$("${CTL[@]}" client show mcp-app 2>&1)"
answer
COOKIES=""
post_acs "$SAML/acs-unsolicited.b64" ""
expect_eq "IdP-initiated with initiate_login_uri: 303" 303 "$(status)"
expect_eq "  to the client's initiate_login_uri" "http://127.0.0.1:7777/login" "$(location | sed 's/?.*//')"
expect_eq "  with iss" "$(json_get "$(curl -s "$BASE/.well-known/oauth-authorization-server")" issuer)" \
    "$(query_param "$(location)" iss)"
check "  a session cookie" grep -qi 'Set-Cookie: __Host-mandate-session=[^;]' "$TMP/h"
# what the client does there: its authorization request, now silent (the
# session, the consent remembered above)
browse "$(authorize_url)"
CB=$(location)
expect_eq "  then /authorize: straight to the client with a code" "$REDIRECT" "${CB%%\?*}"
check "    a code, no IdP" test -n "$(query_param "$CB" code)"

# the session an IdP-initiated sign-in opens is for that client only (review
# s33, finding 4): another client's /authorize goes to the IdP as without one
PLANTED=$COOKIES
expect_eq "  its code redeemed" 200 "$(redeem "$(query_param "$CB" code)")"
PLANTED_REFRESH=$(json_get "$(cat "$TMP/t")" refresh_token)
"${CTL[@]}" client create other-app --public --redirect-uri "$REDIRECT" \
    --grant-type authorization_code --scope "mcp:call" --audience "$MARKET" >/dev/null 2>&1
CLIENT_ID=other-app
browse "$(authorize_url)&prompt=none"
expect_eq "an IdP-initiated session, another client's prompt=none: login_required" login_required \
    "$(query_param "$(location)" error)"
to_idp "$(authorize_url)"
expect_contains "  its /authorize: to the IdP, not the consent page" "https://idp.example.com/sso?SAMLRequest=" \
    "$SSO_URL"
# the sign-in that follows replaces the planted session (finding 5): its
# answer is a cross-site POST, which carries no SameSite=Lax session cookie
answer
without_session_cookie
post_acs "$SAML/acs-ok.b64"
expect_eq "  the ACS: the consent page for other-app" 200 "$(status)"
CLIENT_ID=mcp-app
COOKIES=$PLANTED
check "  the planted session no longer answers mcp-app's /authorize" asks_idp
expect_contains "  audited session.ended" '"reason":"replaced"' "$(audit_last session.ended)"
expect_eq "  the same person: what mcp-app got through it is kept" 200 "$(refresh "$PLANTED_REFRESH")"

# --- an unsolicited Response by a link, over another person's session (review s35, finding 2)
# the victim: an advisor signed in for mcp-app, with a refresh token
start
answer
post_acs "$SAML/acs-ok.b64"
if [ "$(status)" = 200 ]; then code=$(consent_code); else code=$(query_param "$(location)" code); fi
expect_eq "the victim signs in, a code redeemed" 200 "$(redeem "$code")"
VICTIM_REFRESH=$(json_get "$(cat "$TMP/t")" refresh_token)
VICTIM=$COOKIES
# an analyst takes an unsolicited Response for themselves from the IdP
# portal and sends it as a link: a GET carries the SameSite=Lax session
# cookie, a cross-site POST does not; SAML Bindings §3.5: HTTP-POST only
answer Analyst
before=$(records login.idp_initiated)
browse "$ACS?SAMLResponse=$(enc "$(cat "$SAML/acs-unsolicited.b64")")"
expect_eq "an unsolicited Response by a GET link: refused" 400 "$(status)"
check "  no session cookie" bash -c "! grep -qi 'Set-Cookie: __Host-mandate-session=[^;]' '$TMP/h'"
expect_contains "  audited login.refused" "HTTP-POST" "$(audit_last login.refused)"
expect_eq "  no login.idp_initiated" "$before" "$(records login.idp_initiated)"
check "  the victim's session still answers" stays_signed_in
expect_eq "  the victim's refresh token still works" 200 "$(refresh "$VICTIM_REFRESH")"
VICTIM_REFRESH=$(json_get "$(cat "$TMP/t")" refresh_token)
# a new one POSTed over the victim's session: nobody in this browser asked
# for it, so it proves nothing about who sent the browser there
answer Analyst
COOKIES=$VICTIM
post_acs "$SAML/acs-unsolicited.b64" ""
expect_eq "an unsolicited Response POSTed over another person's session: signed in" 303 "$(status)"
check "  a session cookie" grep -qi 'Set-Cookie: __Host-mandate-session=[^;]' "$TMP/h"
expect_contains "  as the analyst" '"sub":"analyst-12345"' "$(audit_last login.idp_initiated)"
expect_eq "  the victim's refresh token still works" 200 "$(refresh "$VICTIM_REFRESH")"
COOKIES=$VICTIM
check "  the victim's session was not ended" stays_signed_in

check "the daemon survived every one" kill -0 "$DAEMON_PID"
check "no SAMLResponse or cookie in the trail" \
    bash -c "! grep -qE 'PHNhbWxw|__Host-' '$STATE'/audit/*.jsonl"
stop_daemon
expect_eq "stops cleanly" 0 "$DAEMON_STATUS"
check "no sanitizer report" bash -c "! grep -q 'Sanitizer' '$LOG'"
finish
