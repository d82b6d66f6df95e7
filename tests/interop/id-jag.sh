#!/bin/bash
# MCP's Enterprise-Managed Authorization end to end, with two Mandates: the
# enterprise broker (the IdP side) and the resource authorization server
# (RS) of the MarketPulse market calendar. The advisor signs in at a real
# OpenID Connect provider (oidc-provider from npm, tests/interop/
# oidc-provider.mjs) or with a SAML assertion (tests/saml/make-assertions.sh,
# signed by xmlsec1); the agent exchanges her sign-in at the broker for an
# Identity Assertion JWT Authorization Grant (draft-ietf-oauth-identity-
# assertion-authz-grant) addressed to the RS, presents it to the RS with the
# JWT bearer grant (RFC 7523) for an access token, and calls the tool through
# nginx (auth_request against the RS's /gateway/check, as tests/interop/
# mcp.sh) with the official MCP SDK and with curl. Refused: a replayed ID-JAG,
# one for another RS, one issued to another client, one forged with a key
# not the broker's, one with alg none, an access token of the broker, scopes
# with nothing in common, and at the broker an audience it does not serve.
# An ID-JAG asked for with a DPoP proof is bound to its key (cnf.jkt): the RS
# refuses it without a proof or with another key's and binds its token to it.
# No network but loopback; no npm, no nginx: FAIL, never skip.
. "${MANDATE_SRCDIR:-.}/tests/e2e/lib.sh"
. "$SRCDIR/tests/interop/npm.sh"

. "$SRCDIR/tests/interop/marketpulse.sh"

. "$SRCDIR/tests/interop/provider.sh"
op keygen --kid idp-k1 --out "$KEYS/k1.json" || fatal "keygen failed"
cat >"$TMP/accounts.json" <<'JSON'
{ "alice": {"password": "alice-pw", "claims": {"email": "alice@wealth.example", "groups": ["advisors"]}} }
JSON

# --- the enterprise IdP --------------------------------------------------------------------
start_provider "$KEYS/k1.json" || fatal "oidc-provider did not start"
IDP="http://127.0.0.1:$OP_PORT"
SAML=""
if command -v xmlsec1 >/dev/null 2>&1; then
    SAML="$TMP/saml"
    bash "$SRCDIR/tests/saml/make-assertions.sh" "$SAML" "$(date +%s)" 2 >"$TMP/make.log" 2>&1 ||
        { cat "$TMP/make.log"; fatal "make-assertions.sh failed"; }
else
    echo "xmlsec1 is missing: the SAML sign-in is left out, the OpenID Connect one runs"
fi

# --- the two authorization servers -----------------------------------------------------------
BROKER_PORT=$(free_port)
RS_PORT=$(free_port)
BROKER="http://127.0.0.1:$BROKER_PORT"
RS="http://127.0.0.1:$RS_PORT"
OTHER_RS="http://127.0.0.1:9/other-resource-as"

# init NAME PORT: a state folder listening on PORT whose issuer is its URL
init() {
    "$MANDATECTL" init "$TMP/$1" --listen "127.0.0.1:$2" --plugin-dir "$PLUGIN_DIR" --no-example >/dev/null ||
        fatal "mandatectl init $1 failed"
    sed -i "s|^server: {|server: {\n  issuer = \"http://127.0.0.1:$2\";|" "$TMP/$1/mandate.conf"
}
init broker "$BROKER_PORT"
init rs "$RS_PORT"
BCONF="$TMP/broker/mandate.conf"
RCONF="$TMP/rs/mandate.conf"
BCTL=("$MANDATECTL" -c "$BCONF")
RCTL=("$MANDATECTL" -c "$RCONF")

cat >"$TMP/broker/mandate.d/backend-upstream.conf" <<CONF
kind = "backend"; plugin = "oidc";
issuer = "$IDP";
audiences = ["mandate-broker"];
accept = ["id_token"];
CONF
[ -n "$SAML" ] && cat >"$TMP/broker/mandate.d/backend-corp-saml.conf" <<CONF
kind = "backend"; plugin = "saml";
idp_metadata = "$SAML/metadata.xml";
sp_entity_id = "https://mandate.example.com/saml";
CONF
cat >>"$BCONF" <<CONF
mappings = (
  { name = "advisors"; idp = "backend-upstream";
    when = ( { attribute = "groups"; equals = "advisors"; } );
    subject = "advisor-\${sub}";
    scopes = ["mcp:call", "calendar:read", "trade:execute"]; audience = ["$AUD"]; max_lifetime = 900; },
  { name = "saml-advisors"; idp = "saml";
    when = ( { attribute = "role"; equals = "FinancialAdvisor"; } );
    subject = "advisor-\${employeeId}";
    scopes = ["mcp:call", "calendar:read"]; audience = ["$AUD"]; max_lifetime = 900; }
);
id_jag = { audiences = ["$RS", "$OTHER_RS"]; lifetime = 300; };
CONF

cat >"$TMP/rs/mandate.d/backend-enterprise-idp.conf" <<CONF
kind = "backend"; plugin = "oidc";
issuer = "$BROKER";
# a Mandate broker serves RFC 8414 metadata, not OpenID Connect discovery
discovery_url = "$BROKER/.well-known/oauth-authorization-server";
audiences = ["$RS"];
accept = ["id-jag"];
min_refetch_interval = 1;
CONF
marketpulse_target "$RCONF"

# the agent, and another, at the broker and (under the same ids) at the RS
B_AGENT=$("${BCTL[@]}" client create marketpulse-agent --scope "mcp:call calendar:read trade:execute" \
    --audience "$AUD" 2>/dev/null | client_secret)
B_OTHER=$("${BCTL[@]}" client create research-agent --scope "mcp:call calendar:read" \
    --audience "$AUD" 2>/dev/null | client_secret)
R_AGENT=$("${RCTL[@]}" client create marketpulse-agent --scope "mcp:call trade:execute gateway:invoke" \
    --audience "$AUD" 2>/dev/null | client_secret)
R_OTHER=$("${RCTL[@]}" client create research-agent --scope "mcp:call" \
    --audience "$AUD" 2>/dev/null | client_secret)
check "the agents exist at both" test -n "$B_AGENT" -a -n "$B_OTHER" -a -n "$R_AGENT" -a -n "$R_OTHER"

BLOG="$TMP/broker.log"
RLOG="$TMP/rs.log"
start_daemon "$BCONF" "$BLOG" || { cat "$BLOG"; fatal "the broker did not start"; }
BROKER_PID=$DAEMON_PID
expect_eq "the broker listens where its issuer says" "$BROKER" "$BASE"
start_daemon "$RCONF" "$RLOG" || { cat "$RLOG"; fatal "the resource authorization server did not start"; }
RS_PID=$DAEMON_PID
expect_eq "the RS listens where its issuer says" "$RS" "$BASE"
expect_contains "the RS offers the JWT bearer grant" "urn:ietf:params:oauth:grant-type:jwt-bearer" \
    "$(curl -s "$RS/.well-known/oauth-authorization-server")"

# --- the tool server and its gateway, guarded by the RS --------------------------------------
start_marketpulse "$RS" "$RS_PORT"
expect_contains "the gateway names the RS as the authorization server" "\"authorization_servers\":[\"$RS\"]" \
    "$(curl -s "$GW/.well-known/oauth-protected-resource")"

# --- requests ------------------------------------------------------------------------------------
XCHG=urn:ietf:params:oauth:grant-type:token-exchange
BEARER=urn:ietf:params:oauth:grant-type:jwt-bearer
IDJAG=urn:ietf:params:oauth:token-type:id-jag
IDTOKEN=urn:ietf:params:oauth:token-type:id_token
JAGS="$TMP/jags" # every ID-JAG and token, to look for in the logs
: >"$JAGS"
# id_jag CLIENT SECRET TYPE SUBJECT_TOKEN [curl args]: STATUS, BODY, J (the ID-JAG)
id_jag() {
    local id=$1 secret=$2 type=$3 tok=$4
    shift 4
    STATUS=$(curl -s -o "$TMP/body" -w '%{http_code}' -u "$id:$secret" -d "grant_type=$XCHG" \
        -d "subject_token_type=$type" --data-urlencode "subject_token=$tok" \
        -d "requested_token_type=$IDJAG" "$@" "$BROKER/oauth2/token")
    BODY=$(cat "$TMP/body")
    J=$(json_get "$BODY" access_token)
    printf '%s\n' "$J" >>"$JAGS"
}
# at_rs CLIENT SECRET ASSERTION [curl args]: STATUS, BODY, T (the RS's access token)
at_rs() {
    local id=$1 secret=$2 tok=$3
    shift 3
    STATUS=$(curl -s -o "$TMP/body" -w '%{http_code}' -u "$id:$secret" -d "grant_type=$BEARER" \
        --data-urlencode "assertion=$tok" "$@" "$RS/oauth2/token")
    BODY=$(cat "$TMP/body")
    T=$(json_get "$BODY" access_token)
    printf '%s\n' "$T" >>"$JAGS"
}
sign_in() { # alice at the IdP: IDT
    IDT=$(op id-token --issuer "$IDP" --secret "$OP_SECRET" --sub alice --password alice-pw 2>"$TMP/signin.err")
    [ -n "$IDT" ] || cat "$TMP/signin.err"
    printf '%s\n' "$IDT" >>"$JAGS"
}
words() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort | tr '\n' ' ' | sed 's/ $//'; }
expect_scope() { expect_eq "$1" "$(words "$2")" "$(words "$3")"; }
expect_status() { # DESCRIPTION STATUS [ERROR]
    expect_eq "$1: HTTP $2" "$2" "$STATUS"
    [ "$STATUS" = "$2" ] || echo "  answer: $BODY"
    [ -z "${3:-}" ] || expect_eq "$1: $3" "$3" "$(json_get "$BODY" error)"
}
# audited DIR DESCRIPTION REASON-ERE: the newest token.refused of that trail
audited() {
    local rec reason
    sleep 0.2
    rec=$(cat "$1"/audit/audit-*.jsonl | grep -F '"event":"token.refused"' | tail -n 1)
    reason=$(printf '%s' "$rec" | node -e 'let s = ""; process.stdin.on("data", d => s += d).on("end", () => {
        try { console.log(JSON.parse(s).reason ?? ""); } catch { console.log(""); } })')
    CHECKS=$((CHECKS + 1))
    if printf '%s' "$reason" | grep -qiE -- "$3"; then
        pass "$2: audited: $reason"
    else
        fail "$2: the audited reason should match /$3/: got '$reason' (${rec:0:300})"
    fi
}
CALL=(-X POST -H "Content-Type: application/json" -d '{"country_code": "US", "days_ahead": 7}')

# --- the whole flow: OpenID Connect sign-in, ID-JAG, access token, MCP call ---------------------------
sign_in
check "alice signs in at the IdP" test -n "$IDT"
id_jag marketpulse-agent "$B_AGENT" "$IDTOKEN" "$IDT" -d "audience=$RS" -d "resource=$AUD" \
    -d "scope=mcp:call calendar:read"
expect_status "the broker: an ID-JAG for alice's id_token" 200
h=$(jwt_header "$J")
c=$(jwt_claims "$J")
echo "  ID-JAG header $h"
echo "  ID-JAG claims $c"
expect_contains "issued_token_type is id-jag" "\"issued_token_type\":\"$IDJAG\"" "$BODY"
expect_contains "token_type N_A" '"token_type":"N_A"' "$BODY"
expect_contains "typ oauth-id-jag+jwt" '"typ":"oauth-id-jag+jwt"' "$h"
expect_contains "iss is the broker" "\"iss\":\"$BROKER\"" "$c"
expect_contains "sub is the mapped advisor" '"sub":"advisor-alice"' "$c"
expect_contains "aud is the RS" "\"aud\":\"$RS\"" "$c"
expect_contains "client_id is the agent" '"client_id":"marketpulse-agent"' "$c"
expect_contains "resource is the tool's" "\"resource\":\"$AUD\"" "$c"
expect_scope "scope is the one asked for" "mcp:call calendar:read" "$(json_get "$c" scope)"
check "it has a jti" test -n "$(json_get "$c" jti)"
expect_eq "it lives id_jag.lifetime (300 s)" 300 "$(($(json_get "$c" exp) - $(json_get "$c" iat)))"
expect_contains "signed by a key of the broker's JWKS" "\"$(json_get "$h" kid)\"" \
    "$(curl -s "$BROKER/oauth2/jwks")"
expect_eq "an ID-JAG is no access token at the RS's gateway" 401 \
    "$(http_status "$RS/gateway/check" -H "Authorization: Bearer $J" -H "X-Original-URI: /mcp")"
JAG1=$J

at_rs marketpulse-agent "$R_AGENT" "$JAG1" -d "scope=mcp:call calendar:read trade:execute"
expect_status "the RS: the ID-JAG through the JWT bearer grant" 200
c=$(jwt_claims "$T")
echo "  RS token claims $c"
expect_contains "iss is the RS" "\"iss\":\"$RS\"" "$c"
expect_contains "sub is the ID-JAG's" '"sub":"advisor-alice"' "$c"
expect_contains "aud is the tool's (the ID-JAG's resource)" "\"aud\":\"$AUD\"" "$c"
expect_scope "scope: asked (mcp:call calendar:read trade:execute) within the ID-JAG's and the client's" \
    "mcp:call" "$(json_get "$BODY" scope)"
expect_contains "idp names the broker" "\"idp\":\"$BROKER\"" "$c"
RS_TOKEN=$T

out=$(curl -s -w ' %{http_code}' -H "Authorization: Bearer $RS_TOKEN" "${CALL[@]}" "$GW/tools/check_market_holidays")
expect_contains "the tool through the gateway with the RS's token: 200" " 200" "$out"
expect_contains "Presidents' Day 2026 is Monday 16 February" '"date":"2026-02-16"' "$(echo "$out" | tr -d ' ')"
curl -s -D "$TMP/gate.h" -o /dev/null -H "Authorization: Bearer $RS_TOKEN" -H "X-Original-URI: /mcp" \
    "$RS/gateway/check"
expect_contains "the RS's gateway check passes the advisor on" "X-Mandate-Subject: advisor-alice" \
    "$(tr -d '\r' <"$TMP/gate.h")"
out=$(cd "$NPM_DIR" && MCP_URL="$GW/mcp" MCP_TOKEN="$RS_TOKEN" timeout 60 node mcp-client.mjs)
expect_eq "MCP SDK with the RS's token: connected" 0 "$?"
expect_contains "tools/list has the tool" '"tools":["check_market_holidays"]' "$out"
expect_contains "tools/call answers" '2026-02-16' "$out"
expect_contains "not an error" '"isError":false' "$out"
expect_eq "the ID-JAG itself opens nothing at the gateway" 401 \
    "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $JAG1" "${CALL[@]}" "$GW/tools/check_market_holidays")"
expect_eq "the IdP's id_token opens nothing at the gateway" 401 \
    "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $IDT" "${CALL[@]}" "$GW/tools/check_market_holidays")"

# --- the RS's rules ---------------------------------------------------------------------------------------
at_rs marketpulse-agent "$R_AGENT" "$JAG1"
expect_status "the same ID-JAG again (replay)" 400 invalid_grant
audited "$TMP/rs" "the replay" "replay|jti|already|used"

sign_in
id_jag marketpulse-agent "$B_AGENT" "$IDTOKEN" "$IDT" -d "audience=$RS" -d "scope=mcp:call calendar:read"
expect_status "a second ID-JAG, no resource asked" 200
at_rs marketpulse-agent "$R_AGENT" "$J"
expect_status "no scope asked at the RS" 200
expect_scope "scope: the ID-JAG's within the client's" "mcp:call" "$(json_get "$BODY" scope)"
expect_contains "aud: the client's audience" "\"aud\":\"$AUD\"" "$(jwt_claims "$T")"

sign_in
id_jag marketpulse-agent "$B_AGENT" "$IDTOKEN" "$IDT" -d "audience=$RS" -d "scope=calendar:read"
expect_status "an ID-JAG for calendar:read only" 200
at_rs marketpulse-agent "$R_AGENT" "$J"
expect_status "the RS: nothing in common with the client's scopes" 400 invalid_scope
sign_in
id_jag marketpulse-agent "$B_AGENT" "$IDTOKEN" "$IDT" -d "audience=$RS" -d "scope=mcp:call"
at_rs marketpulse-agent "$R_AGENT" "$J" -d "scope=trade:execute"
expect_status "the RS: a scope the ID-JAG lacks" 400 invalid_scope

sign_in
id_jag marketpulse-agent "$B_AGENT" "$IDTOKEN" "$IDT" -d "audience=$OTHER_RS" -d "scope=mcp:call"
expect_status "the broker: an ID-JAG for another RS (listed)" 200
expect_contains "  aud is the other RS" "\"aud\":\"$OTHER_RS\"" "$(jwt_claims "$J")"
at_rs marketpulse-agent "$R_AGENT" "$J"
expect_status "the RS: an ID-JAG for another RS" 400 invalid_grant
audited "$TMP/rs" "another RS" "aud"

sign_in
id_jag research-agent "$B_OTHER" "$IDTOKEN" "$IDT" -d "audience=$RS" -d "scope=mcp:call"
expect_status "the broker: an ID-JAG for the research agent" 200
expect_contains "  client_id is the research agent" '"client_id":"research-agent"' "$(jwt_claims "$J")"
at_rs marketpulse-agent "$R_AGENT" "$J"
expect_status "the RS: another client's ID-JAG" 400 invalid_grant
audited "$TMP/rs" "another client's" "client_id|client"
sign_in
id_jag research-agent "$B_OTHER" "$IDTOKEN" "$IDT" -d "audience=$RS" -d "scope=mcp:call"
at_rs research-agent "$R_OTHER" "$J"
expect_status "the research agent with its own ID-JAG" 200
expect_contains "  for alice" '"sub":"advisor-alice"' "$(jwt_claims "$T")"

# tokens that are no ID-JAG of the broker
sign_in
STATUS=$(curl -s -o "$TMP/body" -w '%{http_code}' -u "marketpulse-agent:$B_AGENT" -d "grant_type=$XCHG" \
    -d "subject_token_type=$IDTOKEN" --data-urlencode "subject_token=$IDT" "$BROKER/oauth2/token")
BAT=$(json_get "$(cat "$TMP/body")" access_token)
expect_eq "the broker: an access token for alice" 200 "$STATUS"
printf '%s\n' "$BAT" >>"$JAGS"
at_rs marketpulse-agent "$R_AGENT" "$BAT"
expect_status "the RS: the broker's access token is no ID-JAG" 400 invalid_grant
# the RS has an instance for the broker's issuer: it accepts ID-JAGs only
audited "$TMP/rs" "the broker's access token" "id-jag|accept|typ"
FORGED_CLAIMS="{\"client_id\":\"marketpulse-agent\",\"scope\":\"mcp:call\",\"resource\":\"$AUD\"}"
for kind in valid none hs256; do
    F=$(op forge --key "$KEYS/k1.json" --kind "$kind" --typ oauth-id-jag+jwt --iss "$BROKER" --aud "$RS" \
        --sub advisor-mallory --claims "$FORGED_CLAIMS")
    printf '%s\n' "$F" >>"$JAGS"
    at_rs marketpulse-agent "$R_AGENT" "$F"
    expect_status "the RS: an ID-JAG forged ($kind) with a key not the broker's" 400 invalid_grant
    case $kind in
    valid) audited "$TMP/rs" "forged ($kind)" "kid|key|signature" ;;
    *) audited "$TMP/rs" "forged ($kind): the algorithm is named" "alg" ;;
    esac
done
check "the RS is alive" kill -0 "$RS_PID"

# --- the broker's rules -------------------------------------------------------------------------------------
sign_in
id_jag marketpulse-agent "$B_AGENT" "$IDTOKEN" "$IDT" -d "audience=https://elsewhere.example/as"
expect_status "the broker: an audience not in id_jag.audiences" 400 invalid_target
audited "$TMP/broker" "an unknown audience" "audience|authorization server"
id_jag marketpulse-agent "$B_AGENT" "$IDTOKEN" "$IDT" -d "audience=$RS" -d "resource=https://mcp.example/trading"
expect_status "the broker: a resource the rule does not allow" 400

# --- the binding kept across both servers: a DPoP-bound ID-JAG (issue 25) ------------------------------------------
# The draft's proof-of-possession rules: the broker binds the ID-JAG to the key
# of the token exchange's DPoP proof (cnf.jkt); the RS accepts it only with a
# proof of that key and binds its token to it. An ID-JAG is single-use: a
# refused presentation spends it, so each case has its own.
PROOF="$BUILDDIR/tests/dpop-proof"
"$PROOF" keygen ES256 "$TMP/agent-dpop.pem" && "$PROOF" keygen EdDSA "$TMP/thief-dpop.pem"
check "DPoP keys made" test -s "$TMP/agent-dpop.pem" -a -s "$TMP/thief-dpop.pem"
JKT=$("$PROOF" jkt "$TMP/agent-dpop.pem")
bound_jag() { # a fresh ID-JAG asked for with a proof of the agent's key: J
    sign_in
    id_jag marketpulse-agent "$B_AGENT" "$IDTOKEN" "$IDT" -d "audience=$RS" -d "resource=$AUD" \
        -d "scope=mcp:call" -H "DPoP: $("$PROOF" proof "$TMP/agent-dpop.pem" POST "$BROKER/oauth2/token")"
}
bound_jag
expect_status "the broker: an ID-JAG asked for with a DPoP proof" 200
expect_contains "  bound to the proof's key (cnf.jkt)" "\"cnf\":{\"jkt\":\"$JKT\"}" "$(jwt_claims "$J")"
expect_contains "  token_type N_A all the same" '"token_type":"N_A"' "$BODY"
at_rs marketpulse-agent "$R_AGENT" "$J"
expect_status "the RS: the DPoP-bound ID-JAG without a proof" 400 invalid_grant
audited "$TMP/rs" "without a proof" "DPoP-bound: a DPoP proof of its key is required"
bound_jag
at_rs marketpulse-agent "$R_AGENT" "$J" -H "DPoP: $("$PROOF" proof "$TMP/thief-dpop.pem" POST "$RS/oauth2/token")"
expect_status "the RS: the DPoP-bound ID-JAG with another key's proof" 400 invalid_grant
audited "$TMP/rs" "another key's proof" "bound to another key"
bound_jag
at_rs marketpulse-agent "$R_AGENT" "$J" -H "DPoP: $("$PROOF" proof "$TMP/agent-dpop.pem" POST "$RS/oauth2/token")"
expect_status "the RS: the DPoP-bound ID-JAG with a proof of its key" 200
expect_eq "  token_type DPoP" DPoP "$(json_get "$BODY" token_type)"
expect_contains "  the RS's token is bound to the same key" "\"cnf\":{\"jkt\":\"$JKT\"}" "$(jwt_claims "$T")"
expect_eq "  and opens nothing as a bearer token" 401 \
    "$(http_status "$RS/gateway/check" -H "Authorization: Bearer $T" -H "X-Original-URI: /mcp")"
expect_contains "  the RS's trail names the key" "\"cnf_jkt\":\"$JKT\"" \
    "$(cat "$TMP/rs"/audit/audit-*.jsonl | grep '"event":"token.issued"' | tail -n 1)"

# --- the SAML sign-in, the same way ------------------------------------------------------------------------------
if [ -n "$SAML" ]; then
    id_jag marketpulse-agent "$B_AGENT" urn:ietf:params:oauth:token-type:saml2 "$(cat "$SAML/bench-0.b64")" \
        -d "audience=$RS" -d "resource=$AUD"
    expect_status "the broker: an ID-JAG for a SAML assertion" 200
    expect_contains "  sub is the SAML advisor" '"sub":"advisor-12345"' "$(jwt_claims "$J")"
    expect_scope "  scope is the SAML rule's" "mcp:call calendar:read" "$(json_get "$(jwt_claims "$J")" scope)"
    at_rs marketpulse-agent "$R_AGENT" "$J"
    expect_status "the RS: the SAML advisor's ID-JAG" 200
    T_SAML=$T
    out=$(cd "$NPM_DIR" && MCP_URL="$GW/mcp" MCP_TOKEN="$T_SAML" timeout 60 node mcp-client.mjs)
    expect_eq "MCP SDK for the SAML advisor: connected" 0 "$?"
    expect_contains "tools/call answers" '2026-02-16' "$out"
fi

# --- states, trails, logs ---------------------------------------------------------------------------------------
expect_contains "the RS's /readyz: the broker's keys are fetched" \
    '"backend-enterprise-idp":{"state":"ok"' "$(curl -s "$RS/readyz")"
for pid in "$RS_PID" "$BROKER_PID"; do
    DAEMON_PID=$pid
    stop_daemon
    expect_eq "clean stop" 0 "$DAEMON_STATUS"
done
for side in broker rs; do
    check "the $side's trail verifies" "$MANDATECTL" -c "$TMP/$side/mandate.conf" audit verify
    echo "  $side: reasons recorded for refused token requests:"
    cat "$TMP/$side"/audit/audit-*.jsonl | grep '"event":"token.refused"' | node -e 'require("readline")
        .createInterface({ input: process.stdin }).on("line", l => console.log(JSON.parse(l).reason))' |
        sort | uniq -c | sed 's/^/    /'
done
expect_contains "the broker's trail: ID-JAGs issued" "\"issued_token_type\":\"$IDJAG\"" \
    "$(cat "$TMP/broker"/audit/audit-*.jsonl)"
expect_contains "the RS's trail: the JWT bearer grant for alice" '"sub":"advisor-alice"' \
    "$(cat "$TMP/rs"/audit/audit-*.jsonl | grep '"event":"token.issued"')"
sed -n 's/.*\.\([A-Za-z0-9_-]\{20,\}\)$/\1/p' "$JAGS" | sort -u >"$TMP/signatures"
for log in "$BLOG" "$RLOG"; do
    name=$(basename "$log")
    check "$name holds no token signature" bash -c "! grep -qF -f '$TMP/signatures' '$log'"
    check "$name holds no JWT" bash -c "! grep -qE 'eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}' '$log'"
    check "$name: no sanitizer report" bash -c "! grep -q Sanitizer '$log'"
done
finish
