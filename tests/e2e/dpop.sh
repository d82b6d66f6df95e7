#!/bin/bash
# DPoP-bound tokens (RFC 9449, issue 25) end to end through the live daemon,
# the agent's proofs made by tests/dpop-proof (lib/dpop.c): a bound token
# issued for a proof at the token endpoint (cnf.jkt, token_type DPoP),
# introspection showing the binding, the gateway check accepting it only
# with a fresh proof of its key for the original method and URI, and every
# refusal: a bound token as Bearer, a replayed proof, another URI or method,
# another key, no or a wrong ath, a stale iat; a dpop-bound client without a
# proof; a public client's refresh token bound to its key.
. "${MANDATE_SRCDIR:-.}/tests/e2e/lib.sh"

PROOF="$BUILDDIR/tests/dpop-proof"
STATE="$TMP/state"
CONF="$STATE/mandate.conf"
LOG="$TMP/mandated.log"
make_state "$STATE" || fatal "mandatectl init failed"
CTL=("$MANDATECTL" -c "$CONF")
with_fakeidp # backend-corp, the sign-in's IdP
AUD=https://mcp.example/cal
TOOLS=https://tools.example
cat >>"$CONF" <<CONF
targets = ( { name = "cal"; paths = ["/mcp"]; audience = "$AUD"; scopes = ["mcp:call"];
              public_url = "$TOOLS"; } );
mappings = ( { name = "advisors"; idp = "backend-corp"; subject = "advisor-\${uid}";
               tenant = "default"; scopes = ["mcp:call"]; audience = ["$AUD"]; } );
signin: { tenants = ( { tenant = "default"; name = "Example Bank"; } ); };
dpop: { max_age = 30; };
CONF
daemon_up
issuer_is_base

new_client() { # ID [more options]: prints the secret
    local id=$1
    shift
    "${CTL[@]}" client create "$id" --scope mcp:call --default-scope mcp:call --audience "$AUD" \
        "$@" 2>/dev/null | client_secret
}
token() { # PROOF [curl args]: POST /oauth2/token with a DPoP header (none when empty)
    local proof=$1
    shift
    curl -s -o "$TMP/t" -D "$TMP/th" -w '%{http_code}' ${proof:+-H "DPoP: $proof"} "$@" "$TOKEN_URL"
}
gate() { # SCHEME TOKEN PROOF [METHOD [URI]]: the gateway check's status, as nginx asks
    local proof=$3
    curl -s -o "$TMP/g" -D "$TMP/gh" -w '%{http_code}' -H "Authorization: $1 $2" \
        ${proof:+-H "DPoP: $proof"} -H "X-Original-Method: ${4:-POST}" \
        -H "X-Original-URI: ${5:-/mcp/tools?x=1}" "$BASE/gateway/check"
}
proof() { "$PROOF" proof "$@"; }

"$PROOF" keygen ES256 "$TMP/agent.pem" && "$PROOF" keygen EdDSA "$TMP/thief.pem"
check "proof keys made" test -s "$TMP/agent.pem" -a -s "$TMP/thief.pem"
JKT=$("$PROOF" jkt "$TMP/agent.pem")

meta=$(curl -s "$BASE/.well-known/oauth-authorization-server")
expect_contains "metadata: dpop_signing_alg_values_supported" \
    '"dpop_signing_alg_values_supported":["ES256","EdDSA","RS256"]' "$meta"

# --- the token endpoint -------------------------------------------------------------
AGENT_SECRET=$(new_client agent)
GW_SECRET=$(new_client gateway --introspect)
expect_eq "client credentials with a proof: 200" 200 \
    "$(token "$(proof "$TMP/agent.pem" POST "$TOKEN_URL")" -u "agent:$AGENT_SECRET" \
        -d grant_type=client_credentials)"
resp=$(cat "$TMP/t")
BOUND=$(json_get "$resp" access_token)
expect_eq "  token_type DPoP" DPoP "$(json_get "$resp" token_type)"
expect_contains "  cnf.jkt: the proof key's thumbprint" "\"cnf\":{\"jkt\":\"$JKT\"}" "$(jwt_claims "$BOUND")"
expect_eq "a bearer token without a proof, as before" Bearer \
    "$(json_get "$(curl -s -u "agent:$AGENT_SECRET" -d grant_type=client_credentials "$TOKEN_URL")" token_type)"
BEARER=$(token_for agent "$AGENT_SECRET")

p=$(proof "$TMP/agent.pem" POST "$TOKEN_URL")
token "$p" -u "agent:$AGENT_SECRET" -d grant_type=client_credentials >/dev/null
expect_eq "the same proof again: 400" 400 "$(token "$p" -u "agent:$AGENT_SECRET" -d grant_type=client_credentials)"
expect_contains "  invalid_dpop_proof, replayed" 'invalid_dpop_proof' "$(cat "$TMP/t")"
expect_contains "  says why" 'used before' "$(cat "$TMP/t")"
expect_eq "a proof for another URI: 400" 400 "$(token "$(proof "$TMP/agent.pem" POST "$BASE/oauth2/introspect")" \
    -u "agent:$AGENT_SECRET" -d grant_type=client_credentials)"
expect_contains "  htu" "htu is not" "$(cat "$TMP/t")"
expect_eq "a proof for GET: 400" 400 "$(token "$(proof "$TMP/agent.pem" GET "$TOKEN_URL")" \
    -u "agent:$AGENT_SECRET" -d grant_type=client_credentials)"
expect_eq "a stale proof: 400" 400 "$(token "$(proof "$TMP/agent.pem" POST "$TOKEN_URL" "" -120)" \
    -u "agent:$AGENT_SECRET" -d grant_type=client_credentials)"
expect_contains "  too old" "too old" "$(cat "$TMP/t")"
expect_eq "two DPoP headers: 400" 400 "$(token "$(proof "$TMP/agent.pem" POST "$TOKEN_URL")" \
    -H "DPoP: $(proof "$TMP/agent.pem" POST "$TOKEN_URL")" -u "agent:$AGENT_SECRET" \
    -d grant_type=client_credentials)"
expect_eq "garbage in DPoP: 400" 400 "$(token "not.a.proof" -u "agent:$AGENT_SECRET" -d grant_type=client_credentials)"
# the jti is claimed once the client is authenticated (review s32, finding 15): a caller
# without credentials makes no replay record, so the proof is still good for its client
p=$(proof "$TMP/agent.pem" POST "$TOKEN_URL")
expect_eq "a good proof with a wrong client secret: 401" 401 "$(token "$p" -u "agent:wrong" \
    -d grant_type=client_credentials)"
expect_eq "  the same proof with the right one: 200 (the refusal claimed no jti)" 200 \
    "$(token "$p" -u "agent:$AGENT_SECRET" -d grant_type=client_credentials)"
expect_eq "  and once more: 400, the jti spent" 400 "$(token "$p" -u "agent:$AGENT_SECRET" \
    -d grant_type=client_credentials)"
check "audited: token.refused invalid_dpop_proof" bash -c "cat '$STATE'/audit/audit-*.jsonl | grep -q invalid_dpop_proof"
check "no proof is logged" bash -c "! grep -q -- '$(echo "$p" | cut -d. -f3)' '$LOG'"

# a client registered for DPoP-bound tokens only
BOUND_SECRET=$(new_client bound-agent --dpop-bound)
expect_eq "a dpop-bound client without a proof: 400" 400 \
    "$(token "" -u "bound-agent:$BOUND_SECRET" -d grant_type=client_credentials)"
expect_contains "  invalid_dpop_proof" invalid_dpop_proof "$(cat "$TMP/t")"
expect_eq "  with a proof: 200" 200 "$(token "$(proof "$TMP/agent.pem" POST "$TOKEN_URL")" \
    -u "bound-agent:$BOUND_SECRET" -d grant_type=client_credentials)"
expect_contains "  client show says so" '"dpop_bound": true' "$("${CTL[@]}" --json client show bound-agent)"
"${CTL[@]}" client set bound-agent --no-dpop-bound >/dev/null
expect_eq "  set --no-dpop-bound: a bearer token again" 200 \
    "$(token "" -u "bound-agent:$BOUND_SECRET" -d grant_type=client_credentials)"
"${CTL[@]}" client set bound-agent --dpop-bound >/dev/null
expect_eq "  set --dpop-bound: none again" 400 \
    "$(token "" -u "bound-agent:$BOUND_SECRET" -d grant_type=client_credentials)"
openssl genpkey -algorithm ed25519 2>/dev/null | openssl pkey -pubout >"$TMP/pk.pem"
"${CTL[@]}" client create pk-agent --scope mcp:call --audience "$AUD" --dpop-bound \
    --public-key "$TMP/pk.pem" >/dev/null 2>&1
expect_contains "a private_key_jwt client keeps --dpop-bound" '"dpop_bound": true' \
    "$("${CTL[@]}" --json client show pk-agent)"

# --- introspection -----------------------------------------------------------------
out=$(curl -s -u "gateway:$GW_SECRET" --data-urlencode "token=$BOUND" "$BASE/oauth2/introspect")
expect_contains "introspection: active" '"active":true' "$out"
expect_eq "  token_type DPoP" DPoP "$(json_get "$out" token_type)"
expect_contains "  cnf.jkt" "\"cnf\":{\"jkt\":\"$JKT\"}" "$out"
out=$(curl -s -u "gateway:$GW_SECRET" --data-urlencode "token=$BEARER" "$BASE/oauth2/introspect")
expect_eq "  a bearer token says Bearer" Bearer "$(json_get "$out" token_type)"

# --- the gateway check -----------------------------------------------------------------
expect_eq "gateway: a bound token with a fresh proof: 200" 200 \
    "$(gate DPoP "$BOUND" "$(proof "$TMP/agent.pem" POST "$TOOLS/mcp/tools" "$BOUND")")"
expect_eq "  the htu with the query, a default port and upper case host: 200" 200 \
    "$(gate DPoP "$BOUND" "$(proof "$TMP/agent.pem" POST "https://TOOLS.example:443/mcp/tools?x=1" "$BOUND")")"
expect_eq "a bound token as Bearer: 401" 401 "$(gate Bearer "$BOUND" "")"
expect_contains "  WWW-Authenticate: DPoP" 'WWW-Authenticate: DPoP algs="ES256 EdDSA RS256", error="invalid_token"' "$(cat "$TMP/gh")"
expect_eq "  even with a proof beside it: 401" 401 "$(gate Bearer "$BOUND" "$(proof "$TMP/agent.pem" POST "$TOOLS/mcp/tools" "$BOUND")")"
expect_eq "a bound token without a proof: 401" 401 "$(gate DPoP "$BOUND" "")"
expect_contains "  invalid_dpop_proof" 'error="invalid_dpop_proof"' "$(cat "$TMP/gh")"
p=$(proof "$TMP/agent.pem" POST "$TOOLS/mcp/tools" "$BOUND")
gate DPoP "$BOUND" "$p" >/dev/null
expect_eq "a replayed proof: 401" 401 "$(gate DPoP "$BOUND" "$p")"
expect_contains "  spent" 'used before' "$(cat "$TMP/g")"
expect_eq "a proof for another URI: 401" 401 "$(gate DPoP "$BOUND" "$(proof "$TMP/agent.pem" POST "$TOOLS/mcp/other" "$BOUND")")"
expect_eq "a proof for another host: 401" 401 "$(gate DPoP "$BOUND" "$(proof "$TMP/agent.pem" POST "https://evil.example/mcp/tools" "$BOUND")")"
expect_eq "a proof for another method: 401" 401 "$(gate DPoP "$BOUND" "$(proof "$TMP/agent.pem" GET "$TOOLS/mcp/tools" "$BOUND")")"
expect_eq "a proof by another key (a thief's): 401" 401 "$(gate DPoP "$BOUND" "$(proof "$TMP/thief.pem" POST "$TOOLS/mcp/tools" "$BOUND")")"
expect_contains "  another key" 'another key' "$(cat "$TMP/g")"
expect_eq "a proof without ath: 401" 401 "$(gate DPoP "$BOUND" "$(proof "$TMP/agent.pem" POST "$TOOLS/mcp/tools")")"
expect_eq "a proof with the ath of another token: 401" 401 "$(gate DPoP "$BOUND" "$(proof "$TMP/agent.pem" POST "$TOOLS/mcp/tools" "$BEARER")")"
expect_eq "a stale proof: 401" 401 "$(gate DPoP "$BOUND" "$(proof "$TMP/agent.pem" POST "$TOOLS/mcp/tools" "$BOUND" -60)")"
expect_eq "a proof from the future: 401" 401 "$(gate DPoP "$BOUND" "$(proof "$TMP/agent.pem" POST "$TOOLS/mcp/tools" "$BOUND" 60)")"
expect_eq "a bearer token as DPoP: 401" 401 "$(gate DPoP "$BEARER" "$(proof "$TMP/agent.pem" POST "$TOOLS/mcp/tools" "$BEARER")")"
expect_eq "a bearer token as Bearer, as before: 200" 200 "$(gate Bearer "$BEARER" "")"

# --- token exchange keeps the binding ---------------------------------------------------
expect_eq "a bound subject token exchanged without a proof: 400" 400 \
    "$(token "" -u "agent:$AGENT_SECRET" -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange \
        --data-urlencode "subject_token=$BOUND" -d subject_token_type=urn:ietf:params:oauth:token-type:access_token)"
expect_contains "  invalid_grant" 'DPoP-bound' "$(cat "$TMP/t")"

# --- a public client's refresh token, bound to its key ----------------------------------------
REDIRECT=http://127.0.0.1:7777/cb
"${CTL[@]}" client create app --public --redirect-uri "$REDIRECT" --grant-type authorization_code \
    --grant-type refresh_token --scope mcp:call --audience "$AUD" >/dev/null 2>&1
VERIFIER=$(head -c 32 /dev/urandom | b64url)
CHALLENGE=$(printf '%s' "$VERIFIER" | openssl dgst -binary -sha256 | b64url)
enc() { printf '%s' "$1" | sed 's|:|%3A|g; s|/|%2F|g'; }
COOKIES=""
browse() { # URL [curl args]: headers in $TMP/h, the cookies kept by hand (Secure over http)
    local url=$1 c
    shift
    curl -s -D "$TMP/h" -o "$TMP/b" ${COOKIES:+-H "Cookie: $COOKIES"} "$@" "$url"
    while read -r c; do COOKIES="${COOKIES:+$COOKIES; }${c%%;*}"; done \
        < <(sed -n 's/^Set-Cookie: //Ip' "$TMP/h" | tr -d '\r')
}
location() { sed -n 's/^Location: //Ip' "$TMP/h" | tr -d '\r'; }
sign_in() { # CLIENT_ID: alice signs in and allows; prints the code
    browse "$BASE/oauth2/authorize?response_type=code&client_id=$1&redirect_uri=$(enc "$REDIRECT")&scope=mcp:call&state=s&code_challenge=$CHALLENGE&code_challenge_method=S256&resource=$(enc "$AUD")&login_hint=alice%40bank.example"
    browse "$(location)"
    browse "$BASE/consent" -d "handle=$(sed -n 's/.*name="handle" value="\([^"]*\)".*/\1/p' "$TMP/b" | head -n 1)" \
        -d "csrf=$(sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' "$TMP/b" | head -n 1)" -d decision=allow
    location | tr '?&' '\n\n' | sed -n 's/^code=//p'
}
CODE=$(sign_in app)
check "a sign-in's code" test -n "$CODE"
expect_eq "the code with a proof: 200" 200 "$(token "$(proof "$TMP/agent.pem" POST "$TOKEN_URL")" \
    -d grant_type=authorization_code -d client_id=app -d "code=$CODE" -d "code_verifier=$VERIFIER" \
    -d "redirect_uri=$REDIRECT")"
expect_eq "  token_type DPoP" DPoP "$(json_get "$(cat "$TMP/t")" token_type)"
expect_contains "  the access token bound" "\"jkt\":\"$JKT\"" "$(jwt_claims "$(json_get "$(cat "$TMP/t")" access_token)")"
REFRESH=$(json_get "$(cat "$TMP/t")" refresh_token)
check "  a refresh token" test -n "$REFRESH"
expect_eq "refresh without a proof: 400" 400 "$(token "" -d grant_type=refresh_token -d client_id=app \
    --data-urlencode "refresh_token=$REFRESH")"
expect_contains "  invalid_dpop_proof" invalid_dpop_proof "$(cat "$TMP/t")"
expect_eq "refresh with another key's proof: 400" 400 "$(token "$(proof "$TMP/thief.pem" POST "$TOKEN_URL")" \
    -d grant_type=refresh_token -d client_id=app --data-urlencode "refresh_token=$REFRESH")"
expect_contains "  another key" 'another key' "$(cat "$TMP/t")"
expect_eq "refresh with the same key: 200 (the refusals spent nothing)" 200 \
    "$(token "$(proof "$TMP/agent.pem" POST "$TOKEN_URL")" -d grant_type=refresh_token -d client_id=app \
        --data-urlencode "refresh_token=$REFRESH")"
expect_eq "  token_type DPoP" DPoP "$(json_get "$(cat "$TMP/t")" token_type)"
NEXT=$(json_get "$(cat "$TMP/t")" refresh_token)
expect_eq "  the rotated refresh token is bound too" 400 "$(token "$(proof "$TMP/thief.pem" POST "$TOKEN_URL")" \
    -d grant_type=refresh_token -d client_id=app --data-urlencode "refresh_token=$NEXT")"

# --- a dpop-bound confidential client's refresh refused before its rotation (review s32, 10) ---
CAPP_SECRET=$("${CTL[@]}" client create capp --redirect-uri "$REDIRECT" --grant-type authorization_code \
    --grant-type refresh_token --scope mcp:call --audience "$AUD" --dpop-bound 2>/dev/null | client_secret)
CODE=$(sign_in capp)
expect_eq "a dpop-bound sign-in client, its code with a proof: 200" 200 \
    "$(token "$(proof "$TMP/agent.pem" POST "$TOKEN_URL")" -u "capp:$CAPP_SECRET" \
        -d grant_type=authorization_code -d "code=$CODE" -d "code_verifier=$VERIFIER" \
        -d "redirect_uri=$REDIRECT")"
CAPP_ACCESS=$(json_get "$(cat "$TMP/t")" access_token)
REFRESH=$(json_get "$(cat "$TMP/t")" refresh_token)
check "  a refresh token" test -n "$REFRESH"
expect_eq "  refresh, the proof forgotten: 400" 400 "$(token "" -u "capp:$CAPP_SECRET" \
    -d grant_type=refresh_token --data-urlencode "refresh_token=$REFRESH")"
expect_contains "  invalid_dpop_proof" invalid_dpop_proof "$(cat "$TMP/t")"
expect_eq "  the retry, same refresh token, with a proof: 200 (the refusal spent nothing)" 200 \
    "$(token "$(proof "$TMP/agent.pem" POST "$TOKEN_URL")" -u "capp:$CAPP_SECRET" \
        -d grant_type=refresh_token --data-urlencode "refresh_token=$REFRESH")"
expect_contains "  the sign-in's first access token is still active" '"active":true' \
    "$(curl -s -u "gateway:$GW_SECRET" --data-urlencode "token=$CAPP_ACCESS" "$BASE/oauth2/introspect")"
check "  no reuse alarm" bash -c "! cat '$STATE'/audit/audit-*.jsonl | grep -q '\"refresh.reused\".*\"capp\"'"

# --- server nonces (dpop.nonce, RFC 9449 §8) ---------------------------------------------------
sed -i 's|^dpop: { max_age = 30; };|dpop: { max_age = 30; nonce = true; };|' "$CONF"
kill -HUP "$DAEMON_PID"
check "reloaded with dpop.nonce" wait_for_log "$LOG" "reloaded:" 2
nonce_of() { sed -n 's/^DPoP-Nonce: //Ip' "$1" | tr -d '\r'; }
expect_eq "nonces on: a proof without one: 400" 400 "$(token "$(proof "$TMP/agent.pem" POST "$TOKEN_URL")" \
    -u "agent:$AGENT_SECRET" -d grant_type=client_credentials)"
expect_contains "  use_dpop_nonce" use_dpop_nonce "$(cat "$TMP/t")"
NONCE=$(nonce_of "$TMP/th")
check "  with a DPoP-Nonce header" test -n "$NONCE"
expect_eq "a made-up nonce: 400" 400 "$(token "$(proof "$TMP/agent.pem" POST "$TOKEN_URL" "" 0 "x$NONCE")" \
    -u "agent:$AGENT_SECRET" -d grant_type=client_credentials)"
expect_contains "  use_dpop_nonce" use_dpop_nonce "$(cat "$TMP/t")"
expect_eq "the retry with the nonce: 200" 200 "$(token "$(proof "$TMP/agent.pem" POST "$TOKEN_URL" "" 0 "$NONCE")" \
    -u "agent:$AGENT_SECRET" -d grant_type=client_credentials)"
NB=$(json_get "$(cat "$TMP/t")" access_token)
check "  a fresh DPoP-Nonce with the answer" test -n "$(nonce_of "$TMP/th")"
expect_eq "gateway, a proof without a nonce: 401" 401 "$(gate DPoP "$NB" "$(proof "$TMP/agent.pem" POST "$TOOLS/mcp/tools" "$NB")")"
expect_contains "  use_dpop_nonce" 'error="use_dpop_nonce"' "$(cat "$TMP/gh")"
GN=$(nonce_of "$TMP/gh")
check "  with a DPoP-Nonce header" test -n "$GN"
expect_eq "  with the nonce: 200" 200 "$(gate DPoP "$NB" "$(proof "$TMP/agent.pem" POST "$TOOLS/mcp/tools" "$NB" 0 "$GN")")"

check "no whole token is logged" bash -c "! grep -q -- '$(echo "$BOUND" | cut -d. -f3)' '$LOG'"
finish
