#!/bin/bash
# Federation from SAML end to end: assertions made and signed by tools that
# are not ours (OpenSSL keys, Debian's xmlsec1: tests/saml/make-assertions.sh)
# are exchanged by an agent (RFC 8693) or presented directly (RFC 7522) for
# tokens that name the advisor and the agent; every forgery, wrapping, stale
# or foreign assertion is refused with invalid_grant and an audited reason;
# the mapping rules decide who gets what; mandatectl mapping test explains it.
. "${MANDATE_SRCDIR:-.}/tests/e2e/lib.sh"

saml_fixtures 2

new_state
CAL=https://mcp.example/market-calendar
ARCHIVE=https://mcp.example/compliance-archive
saml_fixture_instance "$STATE/mandate.d/backend-corp-saml.conf"
cat >>"$CONF" <<CONF
targets = ( { name = "market-calendar"; paths = ["/mcp"]; audience = "$CAL"; scopes = ["mcp:call"]; } );
mappings = (
$(saml_advisors_mapping backend-corp-saml "$CAL" '["gateway:invoke", "mcp:call"]' "max_lifetime = 900;"),
  { name = "compliance"; idp = "saml";
    when = ( { attribute = "role"; equals = "ComplianceOfficer"; } );
    subject = "compliance-\${employeeId}";
    scopes = ["gateway:invoke", "mcp:call"]; audience = ["$ARCHIVE"]; max_lifetime = 600; }
);
# the helper may act for the agent's tokens (handed down, below)
delegation = { rules = ( { name = "calendar-helpers"; actors = ["calendar-helper"];
                           clients = ["marketpulse-agent"]; } ); };
CONF
AGENT=$("${CTL[@]}" client create marketpulse-agent --scope "gateway:invoke mcp:call" \
    --audience "$CAL" --audience "$ARCHIVE" 2>/dev/null | client_secret)
check "the acting agent exists" test -n "$AGENT"
DOWN=$("${CTL[@]}" client create calendar-helper --scope "mcp:call" --audience "$CAL" \
    2>/dev/null | client_secret)

daemon_up "daemon starts with the saml backend"
issuer_is_base "reloaded"
XCHG=urn:ietf:params:oauth:grant-type:token-exchange
SAML2=urn:ietf:params:oauth:token-type:saml2
exchange() { # B64-FILE [curl args]: the response body; status in $TMP/status
    local f=$1
    shift
    curl -s -o "$TMP/body" -w '%{http_code}' -u "marketpulse-agent:$AGENT" \
        -d "grant_type=$XCHG" -d "subject_token_type=$SAML2" \
        --data-urlencode "subject_token@$f" "$@" "$TOKEN_URL" >"$TMP/status"
    cat "$TMP/body"
}
expect_contains "metadata offers the SAML bearer grant" "urn:ietf:params:oauth:grant-type:saml2-bearer" \
    "$(curl -s "$BASE/.well-known/oauth-authorization-server")"

# --- accepted ------------------------------------------------------------------
out=$(exchange "$SAML/assertion.b64")
expect_eq "a signed assertion: 200" 200 "$(cat "$TMP/status")"
T=$(json_get "$out" access_token)
c=$(jwt_claims "$T")
expect_contains "issued_token_type" '"issued_token_type":"urn:ietf:params:oauth:token-type:access_token"' "$out"
expect_contains "sub is the mapped advisor" '"sub":"advisor-12345"' "$c"
expect_contains "act names the agent" '"act":{"sub":"marketpulse-agent"}' "$c"
expect_contains "idp names the IdP" '"idp":"https://idp.example.com/"' "$c"
expect_contains "aud is the rule's" "\"aud\":\"$CAL\"" "$c"
expect_eq "lifetime is the rule's" 900 "$(json_get "$out" expires_in)"
curl -s -D "$TMP/gate.h" -o /dev/null -H "Authorization: Bearer $T" -H "X-Original-URI: /mcp" \
    "$BASE/gateway/check"
expect_contains "the gateway passes the advisor on" "X-Mandate-Subject: advisor-12345" "$(tr -d '\r' <"$TMP/gate.h")"
exchange "$SAML/assertion.b64" >/dev/null
expect_eq "the same assertion again: 400 (replay)" 400 "$(cat "$TMP/status")"
for case in response rollover response-both response-assertion-signed; do
    exchange "$SAML/$case.b64" >/dev/null
    expect_eq "$case: 200" 200 "$(cat "$TMP/status")"
done
out=$(exchange "$SAML/assertion.std.b64")
expect_eq "standard base64 of an assertion already used: refused as a replay" 400 "$(cat "$TMP/status")"

# RFC 7522: the agent presents a fresh assertion directly
fresh() { # NAME ROLE: a fresh signed copy of the assertion with another ID and role
    local id="_e2e$(openssl rand -hex 12)" old
    old=$(sed -n 's/.*<saml:Assertion[^>]* ID="\([^"]*\)".*/\1/p' "$SAML/assertion.xml" | head -n 1)
    sed "s/$old/$id/g; s/>FinancialAdvisor</>$2</" "$SAML/assertion.xml" >"$SAML/$1.xml"
    xmlsec1 --sign --privkey-pem "$SAML/idp1.key,$SAML/idp1.crt" \
        --id-attr:ID urn:oasis:names:tc:SAML:2.0:assertion:Assertion \
        --output "$SAML/$1.signed.xml" "$SAML/$1.xml" 2>/dev/null
    base64 -w0 <"$SAML/$1.signed.xml" | tr '+/' '-_' | tr -d '=' >"$SAML/$1.b64"
}
fresh bearer FinancialAdvisor
out=$(curl -s -u "marketpulse-agent:$AGENT" -d "grant_type=urn:ietf:params:oauth:grant-type:saml2-bearer" \
    --data-urlencode "assertion@$SAML/bearer.b64" -d "scope=mcp:call" "$TOKEN_URL")
expect_contains "SAML 2.0 bearer grant: a token" '"access_token"' "$out"
expect_contains "with the scope asked for" '"scope":"mcp:call"' "$out"

# --- refused --------------------------------------------------------------------
for case in unsigned response-unsigned attacker encryption-key other-idp tampered-nameid \
    tampered-attribute tampered-response wrap-extensions wrap-object wrap-object-same-id \
    wrap-second-assertion wrap-two-assertions wrap-reference-uri wrap-duplicate-id \
    comment-nameid expired not-yet-valid wrong-audience wrong-issuer response-issuer-mismatch \
    entity-bomb external-entity; do
    [ -f "$SAML/$case.b64" ] || { fail "$case: no test assertion"; continue; }
    out=$(exchange "$SAML/$case.b64")
    st=$(cat "$TMP/status")
    if [ "$st" = 400 ] && [ "$(json_get "$out" error)" = invalid_grant ]; then
        pass "$case: refused with invalid_grant"
    else
        fail "$case: got $st $out"
    fi
    CHECKS=$((CHECKS + 1))
done
check "the daemon survived every one" kill -0 "$DAEMON_PID"
expect_eq "garbage: invalid_grant" 400 \
    "$(http_status "$TOKEN_URL" -u "marketpulse-agent:$AGENT" -d "grant_type=$XCHG" \
        -d "subject_token_type=$SAML2" -d "subject_token=bm90IHhtbA")"
expect_eq "an unknown subject_token_type: 400" 400 \
    "$(http_status "$TOKEN_URL" -u "marketpulse-agent:$AGENT" -d "grant_type=$XCHG" \
        -d "subject_token_type=urn:example:nothing" -d "subject_token=x")"
expect_eq "no client authentication: 401" 401 \
    "$(http_status "$TOKEN_URL" -d "grant_type=$XCHG" -d "subject_token_type=$SAML2" \
        --data-urlencode "subject_token@$SAML/response.b64")"

# --- mapping ---------------------------------------------------------------------
fresh compliance ComplianceOfficer
out=$("${CTL[@]}" mapping test --idp backend-corp-saml --assertion "$SAML/compliance.signed.xml")
expect_eq "mapping test: a rule matched (exit 0)" 0 "$?"
expect_contains "names the rule" "rule:         compliance" "$out"
expect_contains "and the grant" "sub=compliance-12345" "$out"
out=$(exchange "$SAML/compliance.b64" -d "resource=$ARCHIVE")
expect_eq "the compliance officer after mapping test (nothing was claimed): 200" 200 "$(cat "$TMP/status")"
expect_contains "gets the archive" "\"aud\":\"$ARCHIVE\"" "$(jwt_claims "$(json_get "$out" access_token)")"
fresh compliance2 ComplianceOfficer
exchange "$SAML/compliance2.b64" -d "resource=$CAL" >/dev/null
expect_eq "but not the advisors' calendar" 400 "$(cat "$TMP/status")"
fresh intern Intern
out=$("${CTL[@]}" mapping test --idp backend-corp-saml --assertion "$SAML/intern.b64")
expect_eq "mapping test: no rule (exit 1)" 1 "$?"
expect_contains "says why" "no rule matched" "$out"
out=$(exchange "$SAML/intern.b64")
expect_eq "a user no rule matches: 400" 400 "$(cat "$TMP/status")"
expect_contains "invalid_grant" '"error":"invalid_grant"' "$out"

# --- our own token, handed down ---------------------------------------------------
out=$(curl -s -u "calendar-helper:$DOWN" -d "grant_type=$XCHG" \
    -d "subject_token_type=urn:ietf:params:oauth:token-type:access_token" \
    --data-urlencode "subject_token=$T" -d "scope=mcp:call" "$TOKEN_URL")
T2=$(json_get "$out" access_token)
c=$(jwt_claims "$T2")
expect_contains "handed down: the advisor stays the subject" '"sub":"advisor-12345"' "$c"
expect_contains "the helper is the actor, the agent nested below it" \
    '"act":{"sub":"calendar-helper","act":{"sub":"marketpulse-agent"}}' "$c"
expect_contains "narrowed to mcp:call" '"scope":"mcp:call"' "$c"
check "and it lives no longer than the original" \
    test "$(json_get "$c" exp)" -le "$(json_get "$(jwt_claims "$T")" exp)"
expect_eq "asking for more than the token had: 400" 400 \
    "$(http_status "$TOKEN_URL" -u "calendar-helper:$DOWN" -d "grant_type=$XCHG" \
        -d "subject_token_type=urn:ietf:params:oauth:token-type:access_token" \
        --data-urlencode "subject_token=$T" -d "scope=mcp:call trade:execute")"
curl -s -u "marketpulse-agent:$AGENT" --data-urlencode "token=$T" "$BASE/oauth2/revoke" >/dev/null
expect_eq "a revoked subject_token: 400" 400 \
    "$(http_status "$TOKEN_URL" -u "calendar-helper:$DOWN" -d "grant_type=$XCHG" \
        -d "subject_token_type=urn:ietf:params:oauth:token-type:access_token" \
        --data-urlencode "subject_token=$T")"

# --- ID-JAG: the broker side of enterprise-managed authorization ---------------
RS=https://rs.example/as
IDJAG=urn:ietf:params:oauth:token-type:id-jag
id_jag() { # B64-FILE [curl args]: body; status in $TMP/status
    exchange "$@" -d "requested_token_type=$IDJAG"
}
id_jag "$SAML/bench-0.b64" -d "audience=$RS" >/dev/null
expect_eq "no id_jag.audiences configured: no ID-JAG (400)" 400 "$(cat "$TMP/status")"
expect_contains "  invalid_request" '"error":"invalid_request"' "$(cat "$TMP/body")"
printf 'id_jag: { audiences = ["%s"]; lifetime = 120; };\n' "$RS" >>"$CONF"
kill -HUP "$DAEMON_PID"
check "reloaded with id_jag" wait_for_log "$LOG" "reloaded:" 2
out=$(id_jag "$SAML/bench-0.b64" -d "audience=$RS" -d "resource=$CAL" -d "scope=mcp:call")
expect_eq "an ID-JAG for a listed audience: 200" 200 "$(cat "$TMP/status")"
J=$(json_get "$out" access_token)
h=$(jwt_header "$J")
c=$(jwt_claims "$J")
expect_contains "issued_token_type is id-jag" "\"issued_token_type\":\"$IDJAG\"" "$out"
expect_contains "token_type N_A (RFC 8693 2.2.1)" '"token_type":"N_A"' "$out"
expect_contains "typ oauth-id-jag+jwt" '"typ":"oauth-id-jag+jwt"' "$h"
expect_contains "iss is the broker" "\"iss\":\"$BASE\"" "$c"
expect_contains "sub is the mapped advisor" '"sub":"advisor-12345"' "$c"
expect_contains "aud is the resource authorization server" "\"aud\":\"$RS\"" "$c"
expect_contains "client_id is the agent" '"client_id":"marketpulse-agent"' "$c"
expect_contains "resource is the one asked for" "\"resource\":\"$CAL\"" "$c"
expect_contains "scope is the one asked for" '"scope":"mcp:call"' "$c"
expect_eq "lifetime is id_jag.lifetime" 120 "$(($(json_get "$c" exp) - $(json_get "$c" iat)))"
expect_contains "signed by a key in our JWKS" "\"$(json_get "$h" kid)\"" "$(curl -s "$BASE/oauth2/jwks")"
expect_eq "an ID-JAG is no access token at the gateway" 401 \
    "$(http_status "$BASE/gateway/check" -H "Authorization: Bearer $J" -H "X-Original-URI: /mcp")"
id_jag "$SAML/bench-1.b64" -d "audience=https://elsewhere.example/as" >/dev/null
expect_eq "an audience not in id_jag.audiences: 400" 400 "$(cat "$TMP/status")"
expect_contains "  invalid_target" '"error":"invalid_target"' "$(cat "$TMP/body")"
id_jag "$SAML/bench-1.b64" -d "audience=$RS" -d "audience=https://elsewhere.example/as" >/dev/null
expect_eq "two audiences: 400 invalid_request" 400 "$(cat "$TMP/status")"
id_jag "$SAML/bench-1.b64" -d "audience=$RS" -d "resource=https://mcp.example/trading" >/dev/null
expect_eq "a resource the rule does not allow: 400" 400 "$(cat "$TMP/status")"
expect_eq "an ID-JAG for one of our own access tokens: 400" 400 \
    "$(http_status "$TOKEN_URL" -u "marketpulse-agent:$AGENT" -d "grant_type=$XCHG" \
        -d "subject_token_type=urn:ietf:params:oauth:token-type:access_token" \
        --data-urlencode "subject_token=$T" -d "requested_token_type=$IDJAG" -d "audience=$RS")"
expect_eq "the ID-JAG through the JWT bearer grant without an oidc instance: 400" 400 \
    "$(http_status "$TOKEN_URL" -u "marketpulse-agent:$AGENT" \
        -d "grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer" --data-urlencode "assertion=$J")"

# --- the audit trail ------------------------------------------------------------
stop_daemon
expect_eq "clean stop" 0 "$DAEMON_STATUS"
trail=$(cat "$STATE"/audit/audit-*.jsonl)
echo "  reasons recorded for refused token requests:"
printf '%s\n' "$trail" | grep '"event":"token.refused"' | grep -o '"reason":"[^"]*"' |
    sort | uniq -c | sed 's/^/    /'
expect_contains "an exchange is recorded with the rule" '"rule":"advisors"' "$trail"
expect_contains "the IdP" '"idp":"https://idp.example.com/"' "$trail"
expect_contains "the assertion ID" "\"assertion_id\":\"$(sed -n 's/^assertion //p' "$SAML/ids.txt")\"" "$trail"
expect_contains "the acting client" '"act":"marketpulse-agent"' "$trail"
expect_contains "a replay is recorded with its reason" 'replay' "$trail"
expect_contains "a refusal by the mapping names it" 'no rule matched' "$trail"
expect_contains "the ID-JAG is recorded as issued" "\"issued_token_type\":\"$IDJAG\"" "$trail"
check "no ID-JAG in the log" bash -c "! grep -qF '$J' '$LOG'"
check "the trail verifies" "${CTL[@]}" audit verify
check "no assertion in the log" bash -c "! grep -q 'PHNhbWw\\|<saml' '$LOG'"
check "no sanitizer report" bash -c "! grep -q 'Sanitizer' '$LOG'"
finish
