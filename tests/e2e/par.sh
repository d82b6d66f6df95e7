#!/bin/bash
# Pushed authorization requests (RFC 9126), dpop_jkt at the authorization
# endpoint (RFC 9449 §10) and the profile for regulated tenants (issue 25),
# driven with curl through the live daemon and the test IdP "fakeidp" (it
# signs in whoever login_hint names). Client assertions (private_key_jwt)
# and DPoP proofs are made by tests/dpop-proof.
#
# PAR: a request pushed by a public and by a private_key_jwt client, the
# sign-in through its request_uri, the code; a request_uri used twice, by
# another client, unknown, expired; parameters refused at the push as
# /oauth2/authorize refuses them. dpop_jkt: the code redeemed only with a
# proof of that key (and a proof at the push binds the same way). The
# profile fapi2 (per client, per tenant): PAR required, no client secret,
# no public client, sender-constrained tokens only, https redirect URIs;
# each refusal says which rule and is audited.
. "${MANDATE_SRCDIR:-.}/tests/e2e/lib.sh"

new_state
with_fakeidp # backend-corp
PROOF="$BUILDDIR/tests/dpop-proof"
AUD=https://mcp.example/cal
cat >>"$CONF" <<CONF
targets = ( { name = "cal"; paths = ["/mcp"]; audience = "$AUD"; scopes = ["mcp:call"]; } );
mappings = ( { name = "advisors"; idp = "backend-corp"; subject = "advisor-\${uid}";
               tenant = "default"; scopes = ["mcp:call"]; audience = ["$AUD"]; },
             { name = "bank"; idp = "backend-corp"; subject = "banker-\${uid}";
               tenant = "bank"; scopes = ["mcp:call"]; audience = ["$AUD"]; } );
signin: { tenants = ( { tenant = "default"; name = "Example"; } ); };
par: { lifetime = 60; };
profile: { fapi2_tenants = ["bank"]; };
CONF
daemon_up
issuer_is_base
PAR="$BASE/oauth2/par"
AUDIT_DIR="$STATE/audit"

"$PROOF" keygen ES256 "$TMP/agent.pem" && "$PROOF" keygen EdDSA "$TMP/thief.pem" &&
    "$PROOF" keygen ES256 "$TMP/client.pem"
check "keys made" test -s "$TMP/agent.pem" -a -s "$TMP/thief.pem" -a -s "$TMP/client.pem"
openssl pkey -in "$TMP/client.pem" -pubout >"$TMP/client.pub" 2>/dev/null
JKT=$("$PROOF" jkt "$TMP/agent.pem")
proof() { "$PROOF" proof "$@"; }
assertion() { "$PROOF" assertion "$TMP/client.pem" "$1" "$BASE"; }

REDIRECT=http://127.0.0.1:7777/cb
HTTPS_REDIRECT=https://app.example/cb
VERIFIER=$(head -c 32 /dev/urandom | b64url)
CHALLENGE=$(printf '%s' "$VERIFIER" | openssl dgst -binary -sha256 | b64url)
query_param() {
    printf '%s' "$1" | tr '?&' '\n\n' | sed -n "s/^$2=//p" | head -n 1 |
        sed 's/%\([0-9A-F][0-9A-F]\)/\\x\1/g' | xargs -0 printf '%b'
}
enc() { printf '%s' "$1" | sed 's|:|%3A|g; s|/|%2F|g'; }
push() { # [PROOF] [curl args]: POST /oauth2/par; the answer in $TMP/p
    local p=$1
    shift
    curl -s -o "$TMP/p" -w '%{http_code}' ${p:+-H "DPoP: $p"} "$@" "$PAR"
}
request() { # CLIENT REDIRECT [PKCE METHOD]: the authorization request's form
    printf -- '-d response_type=code -d client_id=%s -d redirect_uri=%s -d scope=mcp:call -d state=st-9 -d code_challenge=%s -d code_challenge_method=%s -d resource=%s -d login_hint=alice@bank.example' \
        "$1" "$2" "$CHALLENGE" "${3:-S256}" "$AUD"
}
token() { # PROOF [curl args]: POST /oauth2/token; the answer in $TMP/t
    local p=$1
    shift
    curl -s -o "$TMP/t" -w '%{http_code}' ${p:+-H "DPoP: $p"} "$@" "$BASE/oauth2/token"
}
# sign_in CLIENT REQUEST_URI: the browser at /oauth2/authorize with the
# request_uri, through the IdP and consent; the redirect in $CB
sign_in() {
    browse "$BASE/oauth2/authorize?client_id=$1&request_uri=$(enc "$2")"
    if [ "$(status)" = 302 ] && [ "$(location | cut -c1-${#BASE})" = "$BASE" ]; then
        browse "$(location)" # the IdP answers at once
    fi
    if [ "$(status)" = 200 ] && [ -n "$(form_value csrf)" ]; then
        browse "$BASE/consent" -d "handle=$(form_value handle)" -d "csrf=$(form_value csrf)" \
            -d decision=allow -d remember=yes
    fi
    CB=$(location)
}
audited() { # TEXT: a record of the audit trail holds it
    grep -rqF -- "$1" "$AUDIT_DIR"
}

meta=$(curl -s "$BASE/.well-known/oauth-authorization-server")
expect_contains "metadata: pushed_authorization_request_endpoint" \
    "\"pushed_authorization_request_endpoint\":\"$PAR\"" "$meta"
expect_contains "metadata: require_pushed_authorization_requests false" \
    '"require_pushed_authorization_requests":false' "$meta"

# --- PAR by a public client ------------------------------------------------------------
"${CTL[@]}" client create web-app --public --redirect-uri "$REDIRECT" \
    --grant-type authorization_code --scope mcp:call --audience "$AUD" >/dev/null 2>&1
# shellcheck disable=SC2046
expect_eq "a public client pushes a request: 201" 201 "$(push "" $(request web-app "$REDIRECT"))"
RURI=$(json_get "$(cat "$TMP/p")" request_uri)
expect_contains "  request_uri: the RFC 9126 URN" "urn:ietf:params:oauth:request_uri:" "$RURI"
expect_eq "  expires_in: par.lifetime" 60 "$(json_get "$(cat "$TMP/p")" expires_in)"
check "  audited par.stored" audited '"par.stored"'
sign_in web-app "$RURI"
expect_contains "the sign-in with the request_uri: a code at the pushed redirect_uri" "$REDIRECT?code=" "$CB"
expect_eq "  with the pushed state" st-9 "$(query_param "$CB" state)"
expect_eq "  and iss" "$BASE" "$(query_param "$CB" iss)"
CODE=$(query_param "$CB" code)
expect_eq "  the code redeemed" 200 "$(token "" -d grant_type=authorization_code -d client_id=web-app \
    -d "code=$CODE" -d "code_verifier=$VERIFIER" -d "redirect_uri=$REDIRECT")"
browse "$BASE/oauth2/authorize?client_id=web-app&request_uri=$(enc "$RURI")"
expect_eq "the request_uri again: 400 (single use)" 400 "$(status)"
expect_contains "  a page that says so" "used already" "$(cat "$TMP/b")"
check "  audited invalid_request_uri" audited 'invalid_request_uri'
browse "$BASE/oauth2/authorize?client_id=web-app&request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Anope"
expect_eq "an unknown request_uri: 400" 400 "$(status)"
browse "$BASE/oauth2/authorize?client_id=web-app&request_uri=https%3A%2F%2Fevil.example%2Freq"
expect_eq "a request_uri that is not ours: 400" 400 "$(status)"
"${CTL[@]}" client create other-app --public --redirect-uri "$REDIRECT" \
    --grant-type authorization_code --scope mcp:call --audience "$AUD" >/dev/null 2>&1
# shellcheck disable=SC2046
push "" $(request web-app "$REDIRECT") >/dev/null
RURI=$(json_get "$(cat "$TMP/p")" request_uri)
browse "$BASE/oauth2/authorize?client_id=other-app&request_uri=$(enc "$RURI")"
expect_eq "a request_uri used by another client: 400" 400 "$(status)"
browse "$BASE/oauth2/authorize?client_id=web-app&request_uri=$(enc "$RURI")"
expect_eq "  and spent for its own client too" 400 "$(status)"
# shellcheck disable=SC2046
push "" $(request web-app "$REDIRECT") >/dev/null
RURI=$(json_get "$(cat "$TMP/p")" request_uri)
sign_in web-app "$RURI&state=injected&redirect_uri=$(enc http://127.0.0.1:9999/evil)"
expect_contains "parameters beside the request_uri are ignored: the pushed redirect_uri" "$REDIRECT?code=" "$CB"
CODE=$(query_param "$CB" code)
expect_eq "  and the pushed state" st-9 "$(query_param "$CB" state)"

# refused at the push as /authorize refuses
# shellcheck disable=SC2046
expect_eq "a push with plain PKCE: 400" 400 "$(push "" $(request web-app "$REDIRECT" plain))"
expect_contains "  S256 only" "code_challenge_method must be S256" "$(cat "$TMP/p")"
# shellcheck disable=SC2046
expect_eq "a push with an unregistered redirect_uri: 400" 400 \
    "$(push "" $(request web-app http://127.0.0.1:7777/other))"
# shellcheck disable=SC2046
expect_eq "a push holding a request_uri: 400" 400 "$(push "" $(request web-app "$REDIRECT") -d request_uri=x)"
# shellcheck disable=SC2046
expect_eq "a push with a bad dpop_jkt: 400" 400 "$(push "" $(request web-app "$REDIRECT") -d dpop_jkt=short)"
expect_eq "a push by nobody: 401" 401 "$(push "" -d response_type=code -d "redirect_uri=$REDIRECT")"
expect_eq "GET /oauth2/par: 405" 405 "$(http_status "$PAR")"
# pushes are held to the client's token endpoint allowance (anyone can name a public client)
"${CTL[@]}" client create busy-app --public --redirect-uri "$REDIRECT" --grant-type authorization_code \
    --scope mcp:call --audience "$AUD" --rate 0.01 --burst 2 >/dev/null 2>&1
# shellcheck disable=SC2046
codes=$(for i in 1 2 3; do push "" $(request busy-app "$REDIRECT"); echo; done | paste -sd' ')
expect_eq "pushes past the client's rate: 429" "201 201 429" "$codes"
check "  audited too_many_requests" audited 'too_many_requests'
check "  refusals audited as par.refused" audited '"par.refused"'
# (review s35, finding 1) ...but per address: a public client authenticates
# by nothing, so another address's pushes, code redemptions and refreshes
# are not held by what this one spent
# shellcheck disable=SC2046
expect_eq "  a push from another address meanwhile: 201" 201 \
    "$(push "" $(request busy-app "$REDIRECT") --interface 127.0.0.2)"
"${CTL[@]}" client create busy-refresher --public --redirect-uri "$REDIRECT" \
    --grant-type authorization_code --grant-type refresh_token \
    --scope mcp:call --audience "$AUD" --rate 0.01 --burst 3 >/dev/null 2>&1
# shellcheck disable=SC2046
push "" $(request busy-refresher "$REDIRECT") --interface 127.0.0.2 >/dev/null
sign_in busy-refresher "$(json_get "$(cat "$TMP/p")" request_uri)"
CODE=$(query_param "$CB" code)
codes=$(for i in 1 2 3 4; do
    token "" -d grant_type=refresh_token -d client_id=busy-refresher -d refresh_token=junk-$i
    echo
done | paste -sd' ')
expect_eq "junk refresh tokens from one address past the client's rate: 429" "400 400 400 429" "$codes"
expect_eq "  the victim's code redeemed from another address: 200" 200 \
    "$(token "" --interface 127.0.0.2 -d grant_type=authorization_code -d client_id=busy-refresher \
        -d "code=$CODE" -d "code_verifier=$VERIFIER" -d "redirect_uri=$REDIRECT")"
REFRESH=$(json_get "$(cat "$TMP/t")" refresh_token)
expect_eq "  and its refresh: 200" 200 \
    "$(token "" --interface 127.0.0.2 -d grant_type=refresh_token -d client_id=busy-refresher \
        -d "refresh_token=$REFRESH")"
expect_eq "  the attacker's address still at 429" 429 \
    "$(token "" -d grant_type=refresh_token -d client_id=busy-refresher -d refresh_token=junk-5)"

# expiry: a request_uri of 10 s (par.lifetime's floor), aged past it in the store
sed -i 's/^par: { lifetime = 60; };/par: { lifetime = 10; };/' "$CONF"
kill -HUP "$DAEMON_PID"
wait_for_log "$LOG" "reloaded:" 2
# shellcheck disable=SC2046
push "" $(request web-app "$REDIRECT") >/dev/null
expect_eq "par.lifetime = 10: expires_in 10" 10 "$(json_get "$(cat "$TMP/p")" expires_in)"
RURI=$(json_get "$(cat "$TMP/p")" request_uri)
DB="$STATE/mandate.db"
if command -v sqlite3 >/dev/null && [ -f "$DB" ]; then
    sqlite3 -cmd ".timeout 5000" "$DB" "UPDATE once SET expires_at = expires_at - 11 WHERE ns = 'par'"
    browse "$BASE/oauth2/authorize?client_id=web-app&request_uri=$(enc "$RURI")"
    expect_eq "an expired request_uri: 400" 400 "$(status)"
fi

# --- dpop_jkt at the authorization endpoint ---------------------------------------------
# shellcheck disable=SC2046
push "" $(request web-app "$REDIRECT") -d "dpop_jkt=$JKT" >/dev/null
sign_in web-app "$(json_get "$(cat "$TMP/p")" request_uri)"
CODE=$(query_param "$CB" code)
expect_eq "a code bound by dpop_jkt, redeemed without a proof: 400" 400 \
    "$(token "" -d grant_type=authorization_code -d client_id=web-app -d "code=$CODE" \
        -d "code_verifier=$VERIFIER" -d "redirect_uri=$REDIRECT")"
expect_contains "  invalid_dpop_proof" invalid_dpop_proof "$(cat "$TMP/t")"
push "" $(request web-app "$REDIRECT") -d "dpop_jkt=$JKT" >/dev/null
sign_in web-app "$(json_get "$(cat "$TMP/p")" request_uri)"
CODE=$(query_param "$CB" code)
expect_eq "  with another key's proof: 400" 400 \
    "$(token "$(proof "$TMP/thief.pem" POST "$BASE/oauth2/token")" -d grant_type=authorization_code \
        -d client_id=web-app -d "code=$CODE" -d "code_verifier=$VERIFIER" -d "redirect_uri=$REDIRECT")"
expect_contains "  says whose key" "another key than the code's dpop_jkt" "$(cat "$TMP/t")"
# at /authorize directly (no push)
browse "$BASE/oauth2/authorize?response_type=code&client_id=web-app&redirect_uri=$(enc "$REDIRECT")&scope=mcp:call&code_challenge=$CHALLENGE&code_challenge_method=S256&resource=$(enc "$AUD")&dpop_jkt=$JKT"
CODE=$(query_param "$(location)" code)
check "dpop_jkt at /oauth2/authorize: a code" test -n "$CODE"
expect_eq "  redeemed with a proof of that key: 200" 200 \
    "$(token "$(proof "$TMP/agent.pem" POST "$BASE/oauth2/token")" -d grant_type=authorization_code \
        -d client_id=web-app -d "code=$CODE" -d "code_verifier=$VERIFIER" -d "redirect_uri=$REDIRECT")"
resp=$(cat "$TMP/t")
expect_eq "  token_type DPoP" DPoP "$(json_get "$resp" token_type)"
expect_contains "  cnf.jkt" "\"jkt\":\"$JKT\"" "$(jwt_claims "$(json_get "$resp" access_token)")"
browse "$BASE/oauth2/authorize?response_type=code&client_id=web-app&redirect_uri=$(enc "$REDIRECT")&scope=mcp:call&code_challenge=$CHALLENGE&code_challenge_method=S256&dpop_jkt=not-a-thumbprint"
expect_contains "a malformed dpop_jkt at /authorize: invalid_request to the client" "error=invalid_request" "$(location)"
# a proof at the push binds the code to its key
# shellcheck disable=SC2046
expect_eq "a push with a DPoP proof: 201" 201 "$(push "$(proof "$TMP/agent.pem" POST "$PAR")" $(request web-app "$REDIRECT"))"
sign_in web-app "$(json_get "$(cat "$TMP/p")" request_uri)"
CODE=$(query_param "$CB" code)
expect_eq "  its code with another key's proof: 400" 400 \
    "$(token "$(proof "$TMP/thief.pem" POST "$BASE/oauth2/token")" -d grant_type=authorization_code \
        -d client_id=web-app -d "code=$CODE" -d "code_verifier=$VERIFIER" -d "redirect_uri=$REDIRECT")"
# shellcheck disable=SC2046
expect_eq "a push whose proof is not of its dpop_jkt: 400" 400 \
    "$(push "$(proof "$TMP/thief.pem" POST "$PAR")" $(request web-app "$REDIRECT") -d "dpop_jkt=$JKT")"
expect_contains "  invalid_dpop_proof" invalid_dpop_proof "$(cat "$TMP/p")"
# shellcheck disable=SC2046
expect_eq "a push with a proof for the token endpoint: 400" 400 \
    "$(push "$(proof "$TMP/agent.pem" POST "$BASE/oauth2/token")" $(request web-app "$REDIRECT"))"

# --- the profile fapi2 -----------------------------------------------------------------
"${CTL[@]}" client create bank-app --public-key "$TMP/client.pub" --redirect-uri "$HTTPS_REDIRECT" \
    --redirect-uri "$REDIRECT" --grant-type authorization_code --scope mcp:call --audience "$AUD" >/dev/null 2>&1
check "a private_key_jwt client" "${CTL[@]}" client show bank-app
"${CTL[@]}" client set bank-app --profile fapi2 >/dev/null
shown=$("${CTL[@]}" --json client show bank-app)
expect_contains "client set --profile fapi2: client show names it" '"profile": "fapi2"' "$shown"
expect_contains "  and what it changes" 'sender_constrained' "$shown"
A=(-d client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer)
meta=$(curl -s "$BASE/.well-known/oauth-authorization-server")
browse "$BASE/oauth2/authorize?response_type=code&client_id=bank-app&redirect_uri=$(enc "$HTTPS_REDIRECT")&scope=mcp:call&state=s1&code_challenge=$CHALLENGE&code_challenge_method=S256"
expect_contains "profile: an authorization request not pushed: invalid_request to the client" \
    "error=invalid_request" "$(location)"
expect_contains "  the rule named" "par" "$(query_param "$(location)" error_description)"
check "  audited with the rule" audited 'profile fapi2 (par)'
# shellcheck disable=SC2046
expect_eq "profile: a push with an http redirect_uri: 400" 400 \
    "$(push "" $(request bank-app "$REDIRECT") "${A[@]}" -d "client_assertion=$(assertion bank-app)")"
expect_contains "  redirect_https" "redirect_https" "$(cat "$TMP/p")"
# shellcheck disable=SC2046
expect_eq "profile: a push with plain PKCE: 400" 400 \
    "$(push "" $(request bank-app "$HTTPS_REDIRECT" plain) "${A[@]}" -d "client_assertion=$(assertion bank-app)")"
expect_contains "  S256 only" "code_challenge_method must be S256" "$(cat "$TMP/p")"
# shellcheck disable=SC2046
expect_eq "profile: a push by private_key_jwt with an https redirect_uri: 201" 201 \
    "$(push "" $(request bank-app "$HTTPS_REDIRECT") "${A[@]}" -d "client_assertion=$(assertion bank-app)")"
sign_in bank-app "$(json_get "$(cat "$TMP/p")" request_uri)"
expect_contains "  the sign-in: a code at the https redirect_uri" "$HTTPS_REDIRECT?code=" "$CB"
CODE=$(query_param "$CB" code)
expect_eq "  the code without a DPoP proof: 400" 400 \
    "$(token "" -d grant_type=authorization_code "${A[@]}" -d "client_assertion=$(assertion bank-app)" \
        -d "code=$CODE" -d "code_verifier=$VERIFIER" -d "redirect_uri=$HTTPS_REDIRECT")"
expect_contains "  sender_constrained" "sender_constrained" "$(cat "$TMP/t")"
check "  audited with the rule" audited 'profile fapi2 (sender_constrained)'
push "" $(request bank-app "$HTTPS_REDIRECT") "${A[@]}" -d "client_assertion=$(assertion bank-app)" >/dev/null
sign_in bank-app "$(json_get "$(cat "$TMP/p")" request_uri)"
CODE=$(query_param "$CB" code)
expect_eq "  the code with a DPoP proof: 200" 200 \
    "$(token "$(proof "$TMP/agent.pem" POST "$BASE/oauth2/token")" -d grant_type=authorization_code \
        "${A[@]}" -d "client_assertion=$(assertion bank-app)" \
        -d "code=$CODE" -d "code_verifier=$VERIFIER" -d "redirect_uri=$HTTPS_REDIRECT")"
expect_eq "  token_type DPoP" DPoP "$(json_get "$(cat "$TMP/t")" token_type)"

# client secrets and public clients
SECRET=$("${CTL[@]}" client create secret-bank --redirect-uri "$HTTPS_REDIRECT" \
    --grant-type authorization_code --grant-type client_credentials --scope mcp:call \
    --default-scope mcp:call --audience "$AUD" 2>/dev/null | client_secret)
"${CTL[@]}" client set secret-bank --profile fapi2 >/dev/null
# shellcheck disable=SC2046
expect_eq "profile: a push by client secret: 401" 401 \
    "$(push "" -u "secret-bank:$SECRET" $(request secret-bank "$HTTPS_REDIRECT"))"
expect_contains "  client_auth" "client_auth" "$(cat "$TMP/p")"
expect_eq "profile: client credentials by client secret, even with a proof: 401" 401 \
    "$(token "$(proof "$TMP/agent.pem" POST "$BASE/oauth2/token")" -u "secret-bank:$SECRET" \
        -d grant_type=client_credentials)"
expect_contains "  client secrets are not accepted" "client secrets are not accepted" "$(cat "$TMP/t")"
expect_eq "profile: revocation by client secret: 401" 401 \
    "$(http_status "$BASE/oauth2/revoke" -u "secret-bank:$SECRET" -d token=whatever)"
expect_eq "profile: introspection by client secret: 401" 401 \
    "$(http_status "$BASE/oauth2/introspect" -u "secret-bank:$SECRET" -d token=whatever)"
"${CTL[@]}" client set secret-bank --profile none >/dev/null
expect_eq "  --profile none: the same request passes" 200 \
    "$(token "$(proof "$TMP/agent.pem" POST "$BASE/oauth2/token")" -u "secret-bank:$SECRET" \
        -d grant_type=client_credentials)"
expect_eq "  and revocation" 200 "$(http_status "$BASE/oauth2/revoke" -u "secret-bank:$SECRET" -d token=whatever)"
"${CTL[@]}" client set web-app --profile fapi2 >/dev/null
# shellcheck disable=SC2046
expect_eq "profile: a push by a public client: 401" 401 "$(push "" $(request web-app "$REDIRECT"))"
expect_contains "  public clients are not accepted" "public clients are not accepted" "$(cat "$TMP/p")"
"${CTL[@]}" client set web-app --profile none >/dev/null

# per tenant: profile.fapi2_tenants
"${CTL[@]}" client create tenant-bank --tenant bank --public-key "$TMP/client.pub" \
    --scope mcp:call --default-scope mcp:call --audience "$AUD" >/dev/null 2>&1
expect_contains "a client of a fapi2 tenant: client show names the profile" '"profile": "fapi2"' \
    "$("${CTL[@]}" --json client show tenant-bank)"
expect_eq "  client credentials by private_key_jwt without a proof: 400" 400 \
    "$(token "" -d grant_type=client_credentials "${A[@]}" -d "client_assertion=$(assertion tenant-bank)")"
expect_contains "  sender_constrained" "sender_constrained" "$(cat "$TMP/t")"
expect_eq "  with a proof: 200" 200 \
    "$(token "$(proof "$TMP/agent.pem" POST "$BASE/oauth2/token")" -d grant_type=client_credentials \
        "${A[@]}" -d "client_assertion=$(assertion tenant-bank)")"
out=$("${CTL[@]}" config check 2>&1)
expect_contains "config check explains the profile of the tenant" "profile fapi2 for every client of tenant bank" "$out"
expect_contains "  rule by rule" "client_auth: private_key_jwt" "$out"

# per client require_pushed_authorization_requests, and par.required
"${CTL[@]}" client set web-app --require-par >/dev/null
browse "$BASE/oauth2/authorize?response_type=code&client_id=web-app&redirect_uri=$(enc "$REDIRECT")&scope=mcp:call&code_challenge=$CHALLENGE&code_challenge_method=S256"
expect_contains "client set --require-par: a request not pushed is refused" "error=invalid_request" "$(location)"
"${CTL[@]}" client set web-app --no-require-par >/dev/null
sed -i 's/^par: { lifetime = 10; };/par: { lifetime = 10; required = true; };/' "$CONF"
kill -HUP "$DAEMON_PID"
wait_for_log "$LOG" "reloaded:" 3
expect_contains "par.required: metadata says so" '"require_pushed_authorization_requests":true' \
    "$(curl -s "$BASE/.well-known/oauth-authorization-server")"
browse "$BASE/oauth2/authorize?response_type=code&client_id=other-app&redirect_uri=$(enc "$REDIRECT")&scope=mcp:call&code_challenge=$CHALLENGE&code_challenge_method=S256"
expect_contains "  a request not pushed is refused" "must be pushed" "$(query_param "$(location)" error_description)"

finish
