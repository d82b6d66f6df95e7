#!/bin/bash
# Client credentials end to end through the real daemon: provisioning with
# mandatectl, the token endpoint and each of its errors, metadata, JWKS, key
# rotation, secret rotation, disabling, bulk import and mandatectl token get.
. "${MANDATE_SRCDIR:-.}/tests/e2e/lib.sh"

new_state
daemon_up

# b64url_json PART: decode one part of a JWT
# json_get JSON KEY: a top-level string or number, without jq

# metadata and keys
meta=$(curl -s "$BASE/.well-known/oauth-authorization-server")
expect_eq "metadata issuer is the bound URL" "$BASE" "$(json_get "$meta" issuer)"
expect_eq "metadata token endpoint" "$TOKEN_URL" "$(json_get "$meta" token_endpoint)"
expect_eq "metadata jwks_uri" "$BASE/oauth2/jwks" "$(json_get "$meta" jwks_uri)"
expect_eq "metadata introspection_endpoint" "$BASE/oauth2/introspect" \
    "$(json_get "$meta" introspection_endpoint)"
expect_eq "metadata revocation_endpoint" "$BASE/oauth2/revoke" \
    "$(json_get "$meta" revocation_endpoint)"
expect_contains "grant types" '"grant_types_supported":["client_credentials","urn:ietf:params:oauth:grant-type:token-exchange"]' "$meta"
expect_contains "auth methods" '"client_secret_basic","client_secret_post","private_key_jwt"' "$meta"
expect_eq "no OpenID Connect discovery: Mandate issues no id_token (RFC 8414 only)" 404 \
    "$(http_status "$BASE/.well-known/openid-configuration")"
expect_contains "no response type without sign-in: the authorization endpoint is off" \
    '"response_types_supported":[]' "$meta"
check "and no authorization_endpoint" bash -c "! grep -q authorization_endpoint <<<\"\$1\"" _ "$meta"
jwks=$(curl -s "$BASE/oauth2/jwks")
expect_contains "JWKS holds the ES256 key made at init" '"alg":"ES256"' "$jwks"
expect_eq "ready with a key" 200 "$(http_status "$BASE/readyz")"

# provisioning
out=$("${CTL[@]}" client create --prefix marketpulse --scope "gateway:invoke mcp:call" \
    --default-scope "gateway:invoke" --audience https://mcp.example/market-calendar 2>/dev/null)
expect_eq "client create exits 0" 0 "$?"
ID=$(printf '%s\n' "$out" | sed -n 's/^client_id: //p')
SECRET=$(printf '%s\n' "$out" | client_secret)
expect_contains "id carries the prefix" "marketpulse-" "$ID"
expect_eq "secret is 43 base64url characters" 1 "$(printf '%s' "$SECRET" | grep -cE '^[A-Za-z0-9_-]{43}$')"
check "secret is stored only hashed" bash -c "! grep -qa -- '$SECRET' '$STATE/mandate.db'"
"${CTL[@]}" client create "$ID" --scope x >/dev/null 2>&1
expect_eq "a taken id is refused" 1 "$?"
"${CTL[@]}" client create "bad id" --scope x >/dev/null 2>&1
expect_eq "a bad id is refused" 1 "$?"
"${CTL[@]}" client create --scope "a" --default-scope "b" >/dev/null 2>&1
expect_eq "a default scope outside the scopes is refused" 1 "$?"
out=$("${CTL[@]}" --json client show "$ID")
expect_contains "show --json" '"scope": "gateway:invoke mcp:call"' "$out"
check "show never prints a hash" bash -c "! printf '%s' '$out' | grep -q hash"
expect_contains "list" "$ID" "$("${CTL[@]}" client list)"
"${CTL[@]}" client show "$ID" extra >/dev/null 2>&1
expect_eq "an extra argument is bad usage" 2 "$?"

# the client credentials grant
resp=$(curl -s -D "$TMP/h" -u "$ID:$SECRET" -d grant_type=client_credentials "$TOKEN_URL")
TOKEN=$(json_get "$resp" access_token)
check "Basic: a token" test -n "$TOKEN"
expect_eq "token_type" Bearer "$(json_get "$resp" token_type)"
expect_eq "expires_in defaults to 3600" 3600 "$(json_get "$resp" expires_in)"
expect_eq "no scope asked: the default scopes" "gateway:invoke" "$(json_get "$resp" scope)"
expect_contains "no-store" "Cache-Control: no-store" "$(cat "$TMP/h")"
header=$(b64url_json "$(echo "$TOKEN" | cut -d. -f1)")
claims=$(b64url_json "$(echo "$TOKEN" | cut -d. -f2)")
expect_contains "typ at+jwt" '"typ":"at+jwt"' "$header"
expect_contains "ES256" '"alg":"ES256"' "$header"
kid=$(json_get "$header" kid)
expect_contains "kid is in the JWKS" "\"kid\":\"$kid\"" "$jwks"
expect_eq "iss" "$BASE" "$(json_get "$claims" iss)"
expect_eq "sub" "$ID" "$(json_get "$claims" sub)"
expect_eq "client_id" "$ID" "$(json_get "$claims" client_id)"
expect_eq "aud: the client's audience" "https://mcp.example/market-calendar" "$(json_get "$claims" aud)"
expect_eq "tenant" default "$(json_get "$claims" tenant)"
exp=$(json_get "$claims" exp)
iat=$(json_get "$claims" iat)
expect_eq "exp - iat" 3600 "$((exp - iat))"
check "jti" test -n "$(json_get "$claims" jti)"
check "log: token request" wait_for_log "$LOG" "Token request: client_id=$ID, scopes=[(default)]"
check "log: credentials validated" wait_for_log "$LOG" "Credentials validated: client_id=$ID"
check "log: token issued" wait_for_log "$LOG" "Token issued: expires_in=3600s"
check "the secret is never logged" bash -c "! grep -q -- '$SECRET' '$LOG'"
check "the token is never logged" bash -c "! grep -q -- '$(echo "$TOKEN" | cut -d. -f3)' '$LOG'"

resp=$(curl -s -d grant_type=client_credentials -d "client_id=$ID" -d "client_secret=$SECRET" \
    --data-urlencode "scope=mcp:call gateway:invoke" "$TOKEN_URL")
expect_eq "post: the scopes asked" "mcp:call gateway:invoke" "$(json_get "$resp" scope)"
resp=$(curl -s -u "$ID:$SECRET" -d grant_type=client_credentials \
    --data-urlencode "resource=https://mcp.example/market-calendar" "$TOKEN_URL")
check "resource allowed" test -n "$(json_get "$resp" access_token)"

# errors: status, error code, and a description
# oauth_error NAME STATUS ERROR [curl args...]
oauth_error() {
    local name=$1 status=$2 error=$3 got body
    shift 3
    got=$(curl -s -o "$TMP/body" -D "$TMP/eh" -w '%{http_code}' "$@")
    body=$(cat "$TMP/body")
    expect_eq "$name: status" "$status" "$got"
    expect_eq "$name: error" "$error" "$(json_get "$body" error)"
    check "$name: no-store" grep -q "Cache-Control: no-store" "$TMP/eh"
}
oauth_error "scope not allowed" 400 invalid_scope -u "$ID:$SECRET" -d grant_type=client_credentials \
    -d scope=trading:execute "$TOKEN_URL"
expect_contains "names the scope" "scope 'trading:execute' is not allowed" "$(cat "$TMP/body")"
oauth_error "resource not allowed" 400 invalid_target -u "$ID:$SECRET" \
    -d grant_type=client_credentials --data-urlencode "resource=https://evil.example/" "$TOKEN_URL"
oauth_error "wrong secret" 401 invalid_client -u "$ID:wrong" -d grant_type=client_credentials "$TOKEN_URL"
check "401 carries WWW-Authenticate" grep -q 'WWW-Authenticate: Basic realm="mandate"' "$TMP/eh"
oauth_error "unknown client" 401 invalid_client -u "nobody:$SECRET" -d grant_type=client_credentials "$TOKEN_URL"
oauth_error "no client authentication" 401 invalid_client -d grant_type=client_credentials "$TOKEN_URL"
oauth_error "SQL in client_id" 401 invalid_client -d grant_type=client_credentials \
    --data-urlencode "client_id=' OR 1=1 --" -d client_secret=x "$TOKEN_URL"
oauth_error "control character in client_id" 400 invalid_request -d grant_type=client_credentials \
    -d "client_id=a%00b" -d client_secret=x "$TOKEN_URL"
oauth_error "non-UTF-8 value" 400 invalid_request -u "$ID:$SECRET" -d grant_type=client_credentials \
    -d "scope=%FF%FE" "$TOKEN_URL"
oauth_error "Basic not base64" 401 invalid_client -H "Authorization: Basic !!!not-base64!!!" \
    -d grant_type=client_credentials "$TOKEN_URL"
oauth_error "two methods at once" 400 invalid_request -u "$ID:$SECRET" -d grant_type=client_credentials \
    -d "client_id=$ID" -d "client_secret=$SECRET" "$TOKEN_URL"
oauth_error "unknown grant type" 400 unsupported_grant_type -u "$ID:$SECRET" -d grant_type=password "$TOKEN_URL"
oauth_error "missing grant type" 400 invalid_request -u "$ID:$SECRET" -d scope=mcp:call "$TOKEN_URL"
oauth_error "empty grant type" 400 invalid_request -u "$ID:$SECRET" -d grant_type= "$TOKEN_URL"
oauth_error "repeated parameter" 400 invalid_request -u "$ID:$SECRET" -d grant_type=client_credentials \
    -d scope=mcp:call -d scope=gateway:invoke "$TOKEN_URL"
oauth_error "JSON body" 400 invalid_request -u "$ID:$SECRET" -H "Content-Type: application/json" \
    -d '{"grant_type":"client_credentials"}' "$TOKEN_URL"
long=$(head -c 60000 /dev/zero | tr '\0' 'a')
oauth_error "oversized client_id" 401 invalid_client -d grant_type=client_credentials \
    -d "client_id=$long" -d client_secret=x "$TOKEN_URL"
expect_eq "GET on the token endpoint" 405 "$(http_status "$TOKEN_URL")"
expect_eq "still healthy after all that" 200 "$(http_status "$BASE/healthz")"

# disable and enable
"${CTL[@]}" client disable "$ID" >/dev/null
oauth_error "disabled client" 401 invalid_client -u "$ID:$SECRET" -d grant_type=client_credentials "$TOKEN_URL"
"${CTL[@]}" client enable "$ID" >/dev/null
expect_eq "enabled again" 200 "$(http_status "$TOKEN_URL" -u "$ID:$SECRET" -d grant_type=client_credentials)"

# secret rotation with a grace period, then without
NEW=$("${CTL[@]}" client rotate-secret "$ID" 2>/dev/null | client_secret)
check "rotation prints a new secret" test -n "$NEW"
expect_eq "the new secret works" 200 "$(http_status "$TOKEN_URL" -u "$ID:$NEW" -d grant_type=client_credentials)"
expect_eq "the old one too, during the grace period" 200 \
    "$(http_status "$TOKEN_URL" -u "$ID:$SECRET" -d grant_type=client_credentials)"
NEWER=$("${CTL[@]}" client rotate-secret "$ID" --grace 0 2>/dev/null | client_secret)
expect_eq "--grace 0: the previous secret stops at once" 401 \
    "$(http_status "$TOKEN_URL" -u "$ID:$NEW" -d grant_type=client_credentials)"
expect_eq "--grace 0: the newest works" 200 \
    "$(http_status "$TOKEN_URL" -u "$ID:$NEWER" -d grant_type=client_credentials)"
SECRET=$NEWER

# mandatectl token get: secret from a file or the environment
printf '%s\n' "$SECRET" >"$TMP/secret"
chmod 600 "$TMP/secret"
T=$("${CTL[@]}" token get --token-url "$TOKEN_URL" --client-id "$ID" --scope "mcp:call" \
    --secret-file "$TMP/secret")
expect_eq "token get with a secret file prints a JWT" 2 "$(printf '%s' "$T" | tr -cd . | wc -c)"
T=$(MANDATE_CLIENT_SECRET="$SECRET" "${CTL[@]}" token get --token-url "$TOKEN_URL" --client-id "$ID")
check "token get with the environment" test -n "$T"
out=$("${CTL[@]}" token get --token-url "$TOKEN_URL" --client-id "$ID" --scope nope \
    --secret-file "$TMP/secret" 2>&1)
expect_eq "token get refused exits 1" 1 "$?"
expect_contains "and says why" "invalid_scope" "$out"
"${CTL[@]}" token get --token-url "$TOKEN_URL" --client-id "$ID" >/dev/null 2>&1
expect_eq "token get without a secret exits 1" 1 "$?"
out=$("${CTL[@]}" --json token get --token-url "$TOKEN_URL" --client-id "$ID" \
    --secret-file "$TMP/secret")
expect_contains "token get --json: the token response" '"token_type": "Bearer"' "$out"
expect_contains "with expires_in" '"expires_in": 3' "$out"
out=$("${CTL[@]}" token get --token-url "http://127.0.0.1:1/oauth2/token" --client-id "$ID" \
    --secret-file "$TMP/secret" 2>&1)
expect_eq "token get from a broker that is down exits 1" 1 "$?"
expect_contains "and names the URL" "127.0.0.1:1/oauth2/token" "$out"
# a secret others may read is no longer the client's alone: refused, as ssh
# refuses such a private key, and nothing is asked of the broker
for mode in 640 604; do
    chmod "$mode" "$TMP/secret"
    out=$("${CTL[@]}" token get --token-url "$TOKEN_URL" --client-id "$ID" --scope "mcp:call" \
        --secret-file "$TMP/secret" 2>&1)
    expect_eq "token get refuses a secret file of mode $mode" 1 "$?"
    expect_contains "  and says why" "(mode 0$mode): a client secret must be readable by its owner only" "$out"
    check "  and prints no token" bash -c "! grep -qE '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.' <<<\"\$1\"" _ "$out"
done
chmod 600 "$TMP/secret"

# key rotation: new tokens carry the new kid within a second; both keys
# published. After a reload first: a reload once left the store's WAL index
# stale, and the daemon then never saw a rotation again.
kill -HUP "$DAEMON_PID"
check "reloaded" wait_for_log "$LOG" "reloaded:"
"${CTL[@]}" keys rotate --alg RS256 >/dev/null
sleep 1.5
resp=$(curl -s -u "$ID:$SECRET" -d grant_type=client_credentials "$TOKEN_URL")
expect_contains "after a reload and a rotation: RS256" '"alg":"RS256"' \
    "$(b64url_json "$(json_get "$resp" access_token | cut -d. -f1)")"
"${CTL[@]}" keys rotate --alg EdDSA >/dev/null
sleep 1.5
resp=$(curl -s -u "$ID:$SECRET" -d grant_type=client_credentials "$TOKEN_URL")
header=$(b64url_json "$(json_get "$resp" access_token | cut -d. -f1)")
expect_contains "after rotation: EdDSA" '"alg":"EdDSA"' "$header"
newkid=$(json_get "$header" kid)
check "a new kid" test "$newkid" != "$kid"
jwks=$(curl -s "$BASE/oauth2/jwks")
expect_contains "JWKS: the new key" "\"kid\":\"$newkid\"" "$jwks"
expect_contains "JWKS: the old key, until its tokens expire" "\"kid\":\"$kid\"" "$jwks"
keys=$("${CTL[@]}" keys list)
expect_contains "keys list: the old key retired" "retired" "$keys"
expect_eq "keys list: one active" 1 "$(printf '%s\n' "$keys" | grep -c ' active ')"

# bulk import: 10,000 advisors, all or nothing
{
    echo "client_id,tenant,scope,default_scope,audience,ttl"
    for i in $(seq 1 10000); do
        echo "advisor-$i,wealth,gateway:invoke mcp:call,mcp:call,https://mcp.example/market-calendar,900"
    done
} >"$TMP/advisors.csv"
start=$(date +%s%N)
out=$("${CTL[@]}" client import "$TMP/advisors.csv" --out "$TMP/advisors.creds")
status=$?
ms=$((($(date +%s%N) - start) / 1000000))
echo "imported 10,000 advisors in ${ms} ms"
expect_eq "import exits 0" 0 "$status"
expect_contains "import says how many" "imported 10000 clients" "$out"
expect_eq "credentials file is mode 600" 600 "$(stat -c %a "$TMP/advisors.creds")"
expect_eq "one credential per advisor" 10001 "$(wc -l <"$TMP/advisors.creds")"
line=$(sed -n '5000p' "$TMP/advisors.creds")
AID=${line%%,*}
ASECRET=${line#*,}
resp=$(curl -s -u "$AID:$ASECRET" -d grant_type=client_credentials "$TOKEN_URL")
expect_eq "an imported advisor gets a token" 900 "$(json_get "$resp" expires_in)"
claims=$(b64url_json "$(json_get "$resp" access_token | cut -d. -f2)")
expect_eq "with its tenant" wealth "$(json_get "$claims" tenant)"
printf '{"client_id":"advisor-new-1","scope":["mcp:call"]}\n{"client_id":"advisor-5","scope":"mcp:call"}\n' \
    >"$TMP/dup.jsonl"
out=$("${CTL[@]}" client import "$TMP/dup.jsonl" --out "$TMP/dup.creds" 2>&1)
expect_eq "an import with a taken id fails" 1 "$?"
expect_contains "naming it" "advisor-5" "$out"
check "and writes nothing" test ! -e "$TMP/dup.creds"
"${CTL[@]}" client show advisor-new-1 >/dev/null 2>&1
expect_eq "nothing of it was created" 1 "$?"

# issue 24: every token names its resource (RFC 9068 aud), and a request of
# no scope gets the client's default scopes or invalid_scope (RFC 6749 §3.3)
NOAUD=$("${CTL[@]}" client create no-audience --scope "mcp:call" 2>/dev/null | client_secret)
resp=$(curl -s -u "no-audience:$NOAUD" -d grant_type=client_credentials "$TOKEN_URL")
expect_eq "no scope asked, no default scopes: invalid_scope" invalid_scope "$(json_get "$resp" error)"
check "  and no token" bash -c "! grep -q access_token <<<\"\$1\"" _ "$resp"
resp=$(curl -s -u "no-audience:$NOAUD" -d grant_type=client_credentials -d scope=mcp:call "$TOKEN_URL")
expect_eq "a client of no audience: aud is init's default_resource" \
    https://mcp.example/market-calendar "$(json_get "$(jwt_claims "$(json_get "$resp" access_token)")" aud)"
expect_eq "  which it may ask for by name" 200 "$(http_status "$TOKEN_URL" -u "no-audience:$NOAUD" \
    -d grant_type=client_credentials -d scope=mcp:call -d resource=https://mcp.example/market-calendar)"
expect_eq "  but no other resource" invalid_target "$(json_get "$(curl -s -u "no-audience:$NOAUD" \
    -d grant_type=client_credentials -d scope=mcp:call -d resource=https://mcp.example/news \
    "$TOKEN_URL")" error)"
sed -i '/^default_resource = /d' "$CONF"
kill -HUP "$DAEMON_PID"
check "reloaded without default_resource" wait_for_log "$LOG" "reloaded:" 2
resp=$(curl -s -u "no-audience:$NOAUD" -d grant_type=client_credentials -d scope=mcp:call "$TOKEN_URL")
expect_eq "no audience and no default: invalid_target" invalid_target "$(json_get "$resp" error)"
check "  never a token without aud" bash -c "! grep -q access_token <<<\"\$1\"" _ "$resp"
expect_eq "a client with an audience is not concerned" 200 "$(http_status "$TOKEN_URL" -u "$ID:$SECRET" \
    -d grant_type=client_credentials)"

stop_daemon
expect_eq "clean stop" 0 "$DAEMON_STATUS"
check "no sanitizer report" bash -c "! grep -q 'Sanitizer' '$LOG'"
finish
