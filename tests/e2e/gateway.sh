#!/bin/bash
# Token validation end to end: introspection (RFC 7662), revocation
# (RFC 7009, mandatectl token revoke, client disable) and the gateway check
# for nginx auth_request and Envoy ext_authz, with forged tokens of every
# kind refused.
. "${MANDATE_SRCDIR:-.}/tests/e2e/lib.sh"

new_state
AUD=https://mcp.example/market-calendar
cat >>"$CONF" <<CONF
targets = (
  { name = "market-calendar-mcp";
    paths = ["/mcp", "/tools/"];
    audience = "$AUD";
    scopes = ["mcp:call"];
    resource_metadata = "http://gateway.example/.well-known/oauth-protected-resource"; },
  { name = "news-mcp"; paths = ["/news"]; audience = "https://mcp.example/news"; },
  # issue 20: a read-only tool set beside an admin one, under the calendar's /mcp
  { name = "public"; paths = ["/mcp/public"]; audience = "$AUD"; scopes = ["mcp:read"]; },
  { name = "admin"; paths = ["/mcp/admin"]; audience = "$AUD"; scopes = ["mcp:admin"]; },
  # a target of one tenant: another tenant's token is refused
  { name = "bank-b-tools"; paths = ["/bank-b/"]; audience = "$AUD"; tenant = "bank-b"; }
);
CONF
daemon_up
issuer_is_base

new_client() { # ID SCOPE [more options]: prints the secret
    local id=$1 scope=$2
    shift 2
    "${CTL[@]}" client create "$id" --scope "$scope" --default-scope "$scope" --audience "$AUD" "$@" 2>/dev/null |
        client_secret
}
gate() { # TOKEN URI: the gateway check's status, as nginx auth_request asks
    local auth=()
    [ -n "$1" ] && auth=(-H "Authorization: Bearer $1")
    curl -s -o "$TMP/gate.body" -D "$TMP/gate.h" -w '%{http_code}' "${auth[@]}" \
        -H "X-Original-URI: $2" "$BASE/gateway/check"
}
introspect() { # TOKEN [ID SECRET]: the response body
    curl -s -u "${2:-gateway}:${3:-$GW_SECRET}" --data-urlencode "token=$1" "$BASE/oauth2/introspect"
}
cache_answers() { # hit|miss|expired: the count of the cache of checked tokens
    local n
    n=$(curl -s "$BASE/metrics" | sed -n "s/^mandate_token_check_cache_total{result=\"$1\"} //p")
    echo "${n:-0}"
}

AGENT_SECRET=$(new_client marketpulse-agent "gateway:invoke mcp:call")
READER_SECRET=$(new_client reader "gateway:invoke")
GW_SECRET=$(new_client gateway "gateway:invoke" --introspect)
OTHER_SECRET=$(new_client other-tenant-gw "gateway:invoke" --introspect --tenant bank-b)
TOKEN=$(token_for marketpulse-agent "$AGENT_SECRET" --data-urlencode "scope=mcp:call")
check "agent has a token" test -n "$TOKEN"

# introspection
out=$(introspect "$TOKEN")
expect_contains "active" '"active":true' "$out"
expect_eq "client_id" marketpulse-agent "$(json_get "$out" client_id)"
expect_eq "sub" marketpulse-agent "$(json_get "$out" sub)"
expect_eq "scope" "mcp:call" "$(json_get "$out" scope)"
expect_eq "aud" "$AUD" "$(json_get "$out" aud)"
expect_eq "iss" "$BASE" "$(json_get "$out" iss)"
expect_eq "token_type" Bearer "$(json_get "$out" token_type)"
expect_eq "tenant" default "$(json_get "$out" tenant)"
check "exp and iat" test -n "$(json_get "$out" exp)" -a -n "$(json_get "$out" iat)"
expect_eq "a client without --introspect may not" 403 \
    "$(curl -s -o /dev/null -w '%{http_code}' -u "reader:$READER_SECRET" --data-urlencode "token=$TOKEN" "$BASE/oauth2/introspect")"
expect_eq "a wrong secret is 401" 401 \
    "$(curl -s -o /dev/null -w '%{http_code}' -u "gateway:nope" --data-urlencode "token=$TOKEN" "$BASE/oauth2/introspect")"
expect_eq "no token parameter is 400" 400 \
    "$(curl -s -o /dev/null -w '%{http_code}' -u "gateway:$GW_SECRET" -d x=1 "$BASE/oauth2/introspect")"
expect_eq "another tenant's caller sees it inactive" '{"active":false}' \
    "$(introspect "$TOKEN" other-tenant-gw "$OTHER_SECRET")"
check "log: token validation" wait_for_log "$LOG" "Token validation: token_valid=true, client=marketpulse-agent"

# the gateway check
expect_eq "no token: 401" 401 "$(gate "" /tools/check_market_holidays)"
expect_contains "challenge names the resource metadata" \
    'WWW-Authenticate: Bearer realm="mandate", resource_metadata="http://gateway.example/.well-known/oauth-protected-resource"' \
    "$(cat "$TMP/gate.h")"
expect_eq "good token: 200" 200 "$(gate "$TOKEN" /tools/check_market_holidays)"
expect_contains "subject header" "X-Mandate-Subject: marketpulse-agent" "$(cat "$TMP/gate.h")"
expect_contains "client header" "X-Mandate-Client: marketpulse-agent" "$(cat "$TMP/gate.h")"
expect_contains "scope header" "X-Mandate-Scope: mcp:call" "$(cat "$TMP/gate.h")"
expect_eq "MCP path: 200" 200 "$(gate "$TOKEN" "/mcp?session=1")"
expect_eq "Envoy style (path appended): 200" 200 \
    "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$BASE/gateway/check/mcp")"
expect_eq "POST as nginx forwards it: 200" 200 \
    "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" -H "X-Original-URI: /mcp" "$BASE/gateway/check")"
NARROW=$(token_for reader "$READER_SECRET")
expect_eq "token without mcp:call: 403" 403 "$(gate "$NARROW" /mcp)"
expect_contains "insufficient_scope names the scope" \
    'error="insufficient_scope", scope="mcp:call"' "$(cat "$TMP/gate.h")"
expect_eq "token for another audience: 401" 401 "$(gate "$TOKEN" /news/today)"
expect_contains "invalid_token" 'error="invalid_token"' "$(cat "$TMP/gate.h")"
expect_eq "path no target covers: 403" 403 "$(gate "$TOKEN" /admin)"
expect_eq "lower-case bearer scheme works" 200 \
    "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: bearer $TOKEN" -H "X-Original-URI: /mcp" "$BASE/gateway/check")"

# The path the check judges is the path the tool server will run (issue 20).
# Both forms a gateway asks in: nginx auth_request (X-Original-URI: nginx
# sends $request_uri as the client wrote it) and Envoy ext_authz (the path
# appended to /gateway/check; --path-as-is, or curl resolves the dot-segments
# itself, and --globoff for the braces). A token with mcp:read alone, so:
#   public   200 and X-Mandate-Target: public
#   admin    403 insufficient_scope, scope="mcp:admin" (the admin target)
#   mcp      403 insufficient_scope, scope="mcp:call" (market-calendar-mcp, /mcp)
#   none     403 access_denied: no target covers the path
#   refused  400 invalid_request: the path is ambiguous and not judged at all
READ_SECRET=$(new_client public-reader "mcp:read")
READ=$(token_for public-reader "$READ_SECRET")
check "reader has a token" test -n "$READ"
verdict() { # nginx|envoy PATH [curl args]: the answer to READ, as one of the words above
    local form=$1 path=$2 status
    shift 2
    if [ "$form" = nginx ]; then
        status=$(curl -s -o "$TMP/v.body" -D "$TMP/v.h" -w '%{http_code}' -H "Authorization: Bearer $READ" \
            -H "X-Original-URI: $path" "$@" "$BASE/gateway/check")
    else
        status=$(curl -s --path-as-is --globoff -o "$TMP/v.body" -D "$TMP/v.h" -w '%{http_code}' \
            -H "Authorization: Bearer $READ" "$@" "$BASE/gateway/check$path")
    fi
    case "$status" in
    200) echo "$(tr -d '\r' <"$TMP/v.h" | sed -n 's/^X-Mandate-Target: //p')" ;;
    400) grep -q '"error":"invalid_request"' "$TMP/v.body" && echo refused || echo "400?" ;;
    403) if grep -q 'scope="mcp:admin"' "$TMP/v.h"; then echo admin
         elif grep -q 'scope="mcp:call"' "$TMP/v.h"; then echo mcp
         elif grep -q 'no target covers this path' "$TMP/v.body"; then echo none
         else echo "403?"; fi ;;
    *) echo "$status" ;;
    esac
}
# VERDICT FORMS PATH (FORMS: both, or nginx where curl cannot send it as a URL)
while read -r want forms path; do
    [ -z "$want" ] || [ "${want:0:1}" = "#" ] && continue
    expect_eq "nginx: $path" "$want" "$(verdict nginx "$path")"
    [ "$forms" = both ] && expect_eq "envoy: $path" "$want" "$(verdict envoy "$path")"
done <<'TABLE'
# the five paths of the finding: each was 200 with X-Mandate-Target: public
admin   both  /mcp/public/../admin/tool
refused both  /mcp/public/%2e%2e/admin/tool
refused both  /mcp/public%2f..%2fadmin/tool
mcp     both  /mcp/publicity-admin
# plain and legitimate
public  both  /mcp/public
public  both  /mcp/public/tool
public  both  /mcp/public/
public  both  /mcp/public?x=1
public  both  /mcp/public/tool?next=/../admin/tool&p=%2f
public  both  /mcp/public/Tool
public  both  /mcp/p%75blic/tool
public  both  /mcp/public/tool%20name
public  both  /mcp/admin/../public/tool
admin   both  /mcp/admin
admin   both  /mcp/admin/
admin   both  /mcp/%61dmin/tool
mcp     both  /mcp/publicity
mcp     both  /mcp/public-admin/tool
# traversal: resolved (RFC 3986 5.2.4), never above the root
public  both  /mcp/public/./tool
public  both  /mcp/public/tool/..
mcp     both  /mcp/public/..
admin   both  /mcp/public/../../mcp/admin
admin   both  /mcp/public/./../admin
refused both  /mcp/public/../../../admin
refused both  /../mcp/public
# encoded dot-segments, slashes and backslashes
refused both  /mcp/public/%2E%2E/admin/tool
refused both  /mcp/public/.%2e/admin/tool
refused both  /mcp/public/%2e/tool
refused both  /mcp/public%2F..%2Fadmin/tool
refused both  /mcp/public/%5c..%5cadmin
refused both  /mcp/public\..\admin\tool
# double encoding: a %25 is refused, so no second decoding can find anything
refused both  /mcp/public/%252e%252e/admin/tool
refused both  /mcp/public%252f..%252fadmin/tool
refused both  /mcp/public/100%25
# NUL, bad escapes, overlong UTF-8 dots
refused both  /mcp/public/%00/../../admin/tool
refused both  /mcp/public%00/../admin
refused both  /mcp/public/%zz
refused both  /mcp/public/%2
refused both  /mcp/public/%c0%ae%c0%ae/admin
# trailing dots and spaces (IIS drops them: "admin." is "admin") and characters that
# Unicode NFKC turns into others (a fullwidth full stop is '.'): review s35, finding 6
refused both  /mcp/admin.
refused both  /mcp/admin%2e
refused both  /mcp/admin%20
refused both  /mcp/admin./tool
refused both  /mcp/admin%ef%bc%8e
refused both  /mcp/%ef%bc%8e%ef%bc%8e/mcp/admin
public  both  /mcp/public/caf%C3%A9
# ';' parameters (Tomcat and Spring drop them per segment, "..;" is "..")
refused both  /mcp/public;x=1/../admin/tool
refused both  /mcp/public/..;/admin/tool
refused both  /mcp/admin;jsessionid=1/tool
refused both  /mcp/public/%3b/../admin
# empty segments: some servers merge "//", others keep it
refused both  /mcp//admin/tool
refused both  //mcp/admin
refused both  /mcp/public//tool
# letter case: paths are case-sensitive, but some servers are not
refused both  /mcp/Admin/tool
refused both  /MCP/PUBLIC/tool
refused both  /MCP/other
none    both  /other/mcp/public
# a trailing slash in a target: /tools/ covers /tools/x, not /tools
mcp     both  /tools/check_market_holidays
none    both  /tools
none    both  /toolsx
# what a request-target never holds
refused nginx /mcp/public/#/../../admin/tool
refused both  /mcp/public/%23/../../admin/tool
refused nginx /mcp/public/a b
refused nginx mcp/public
TABLE
long="/mcp/public/$(head -c 5000 /dev/zero | tr '\0' 'a')"
expect_eq "nginx: a path of 5 KB" refused "$(verdict nginx "$long")"
expect_eq "envoy: a path of 5 KB" refused "$(verdict envoy "$long")"
expect_eq "envoy: /gateway/check itself encoded" refused \
    "$(curl -s --path-as-is -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $READ" \
        "$BASE/gateway/%63heck/mcp/public" | sed 's/^400$/refused/')"
expect_eq "two original paths that differ" refused \
    "$(verdict envoy /mcp/admin/tool -H "X-Original-URI: /mcp/public/tool")"
expect_eq "X-Original-URI and X-Forwarded-Uri that differ" refused \
    "$(verdict nginx /mcp/public/tool -H "X-Forwarded-Uri: /mcp/admin/tool")"
expect_eq "the same path twice" public \
    "$(verdict nginx /mcp/public/tool -H "X-Forwarded-Uri: /mcp/public/tool")"
verdict nginx /mcp/public/%2e%2e/admin >/dev/null
expect_contains "a refusal says why" 'an encoded dot-segment' "$(cat "$TMP/v.body")"
check "log: the refusal" wait_for_log "$LOG" "gateway check: path refused"
trail=$(cat "$STATE"/audit/audit-*.jsonl)
expect_contains "audited: the refusal, its reason and the path" \
    '"target":"-","result":"denied","status":400,"token_sha256_prefix":' "$trail"
expect_contains "... the path as sent" '"path":"/mcp/public/%2e%2e/admin","path_length":24' "$trail"
expect_contains "... a long one cut, with its length" '"path_length":5012' "$trail"
check "... and no record holds the whole long path" bash -c "! grep -q 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' '$STATE'/audit/audit-*.jsonl"
expect_contains "... a space in it escaped" '"path":"/mcp/public/a%20b"' "$trail"

# a target of one tenant
BANKB_SECRET=$(new_client bank-b-agent "mcp:call" --tenant bank-b)
BANKB=$(token_for bank-b-agent "$BANKB_SECRET")
expect_eq "the tenant's token at its target: 200" 200 "$(gate "$BANKB" /bank-b/report)"
expect_contains "... X-Mandate-Tenant" "X-Mandate-Tenant: bank-b" "$(cat "$TMP/gate.h")"
expect_eq "another tenant's token: 403" 403 "$(gate "$TOKEN" /bank-b/report)"
expect_contains "... says so" "another tenant" "$(cat "$TMP/gate.body")"
expect_contains "... audited with the reason" \
    '"target":"bank-b-tools","result":"denied","status":403' "$(cat "$STATE"/audit/audit-*.jsonl)"
expect_contains "... naming both tenants" '"reason":"tenant default is not the target'"'"'s (bank-b)"' \
    "$(cat "$STATE"/audit/audit-*.jsonl)"

# forged and broken tokens: inactive at introspection, 401 at the gateway
H=$(echo "$TOKEN" | cut -d. -f1)
P=$(echo "$TOKEN" | cut -d. -f2)
S=$(echo "$TOKEN" | cut -d. -f3)
header=$(b64url_json "$H")
kid=$(json_get "$header" kid)
none="$(printf '{"alg":"none","typ":"at+jwt","kid":"%s"}' "$kid" | b64url).$P."
hs=$(printf '{"alg":"HS256","typ":"at+jwt","kid":"%s"}' "$kid" | b64url)
jwk=$(curl -s "$BASE/oauth2/jwks")
hs256="$hs.$P.$(printf '%s' "$hs.$P" | openssl dgst -sha256 -hmac "$jwk" -binary | b64url)"
wrongkid="$(printf '{"alg":"ES256","typ":"at+jwt","kid":"%s"}' "not-$kid" | b64url).$P.$S"
claims=$(b64url_json "$P")
tampered="$H.$(printf '%s' "$claims" | sed 's/"scope":"mcp:call"/"scope":"mcp:call admin"/' | b64url).$S"
truncated="$H.$P.${S:0:40}"
huge="$(head -c 20000 /dev/zero | tr '\0' 'A').$P.$S"
for name in none hs256 wrongkid tampered truncated huge; do
    t=${!name}
    expect_eq "$name: inactive" '{"active":false}' "$(introspect "$t")"
    expect_eq "$name: gateway 401" 401 "$(gate "$t" /mcp)"
done
expect_eq "garbage: inactive" '{"active":false}' "$(introspect "garbage")"

# expired and not yet valid
# 4 s: a 1 s token expired before its first check on a loaded 2-core CI machine
SHORT_SECRET=$(new_client short-lived "mcp:call" --ttl 4)
SHORT=$(token_for short-lived "$SHORT_SECRET")
expect_eq "fresh short token: 200" 200 "$(gate "$SHORT" /mcp)"
sleep 5.2
expect_eq "expired: inactive" '{"active":false}' "$(introspect "$SHORT")"
expect_eq "expired: 401" 401 "$(gate "$SHORT" /mcp)"
# the token passed the checks once: after its expiry the cache gives the
# verdict, without a signature check per presentation
expect_eq "expired twice: answered by the cache twice" 2 "$(cache_answers expired)"

# a new client and a revocation leave the checked tokens checked (both are
# looked up on every check); new signing keys make every token read again
expect_eq "cached before the changes" 200 "$(gate "$TOKEN" /mcp)"
new_client bystander "mcp:call" >/dev/null
curl -s -u "short-lived:$SHORT_SECRET" --data-urlencode "token=$SHORT" "$BASE/oauth2/revoke" >/dev/null
"${CTL[@]}" token revoke --jti some-other-jti >/dev/null
sleep 1.5 # the daemon looks at the store's generation every second
misses=$(cache_answers miss) hits=$(cache_answers hit)
expect_eq "after a new client and revocations: 200" 200 "$(gate "$TOKEN" /mcp)"
expect_eq "... read from the cache" "$((hits + 1)) $misses" "$(cache_answers hit) $(cache_answers miss)"
"${CTL[@]}" keys rotate >/dev/null
sleep 1.5
expect_eq "after a key rotation: 200" 200 "$(gate "$TOKEN" /mcp)"
expect_eq "... checked again" "$((misses + 1))" "$(cache_answers miss)"

# revocation by the owner (RFC 7009)
T2=$(token_for marketpulse-agent "$AGENT_SECRET")
expect_eq "another client may not revoke it" 400 \
    "$(curl -s -o /dev/null -w '%{http_code}' -u "reader:$READER_SECRET" --data-urlencode "token=$T2" "$BASE/oauth2/revoke")"
expect_eq "still active" 200 "$(gate "$T2" /mcp)"
# another tenant's client learns nothing: its live token is answered like
# garbage (issue 20, finding 6: it was 400 for a live token, 200 for junk)
revoke_as_other_tenant() {
    curl -s -w ' %{http_code}' -u "other-tenant-gw:$OTHER_SECRET" --data-urlencode "token=$1" \
        "$BASE/oauth2/revoke"
}
expect_eq "another tenant revoking a live token: answered as for garbage" \
    "$(revoke_as_other_tenant garbage)" "$(revoke_as_other_tenant "$T2")"
expect_eq "  200, empty" " 200" "$(revoke_as_other_tenant "$T2")"
expect_eq "  and the token is not revoked" 200 "$(gate "$T2" /mcp)"
check "  the audit trail says why" grep -q "the token is of another tenant" "$STATE"/audit/*.jsonl
expect_eq "the owner revokes it" 200 \
    "$(curl -s -o /dev/null -w '%{http_code}' -u "marketpulse-agent:$AGENT_SECRET" --data-urlencode "token=$T2" "$BASE/oauth2/revoke")"
expect_eq "revoked: 401 at once" 401 "$(gate "$T2" /mcp)"
expect_eq "revoked: inactive" '{"active":false}' "$(introspect "$T2")"
expect_eq "revoking garbage is 200 (RFC 7009)" 200 \
    "$(curl -s -o /dev/null -w '%{http_code}' -u "marketpulse-agent:$AGENT_SECRET" -d "token=garbage" "$BASE/oauth2/revoke")"

# mandatectl token revoke, by token and by jti; and token introspect
T3=$(token_for marketpulse-agent "$AGENT_SECRET")
printf '%s\n' "$T3" >"$TMP/t3"
out=$("${CTL[@]}" token introspect --token-file "$TMP/t3")
expect_contains "ctl introspect: active" '"active": true' "$out"
"${CTL[@]}" token revoke --token-file "$TMP/t3" >/dev/null
expect_eq "ctl revoke by token: 401 within a second" 401 "$(gate "$T3" /mcp)"
out=$(printf '%s' "$T3" | "${CTL[@]}" token introspect --token-file -)
expect_contains "ctl introspect says why" '"reason": "revoked"' "$out"
T4=$(token_for marketpulse-agent "$AGENT_SECRET")
jti=$(json_get "$(b64url_json "$(echo "$T4" | cut -d. -f2)")" jti)
"${CTL[@]}" token revoke --jti "$jti" >/dev/null
expect_eq "ctl revoke by jti: 401" 401 "$(gate "$T4" /mcp)"
"${CTL[@]}" token revoke --jti x --token-file "$TMP/t3" >/dev/null 2>&1
expect_eq "ctl revoke with both is bad usage" 2 "$?"

# disabling the client takes every one of its tokens with it
T5=$(token_for marketpulse-agent "$AGENT_SECRET")
expect_eq "before disable: 200" 200 "$(gate "$T5" /mcp)"
"${CTL[@]}" client disable marketpulse-agent >/dev/null
expect_eq "after disable: 401 within a second" 401 "$(gate "$T5" /mcp)"
expect_eq "after disable: inactive" '{"active":false}' "$(introspect "$T5")"
"${CTL[@]}" client delete marketpulse-agent >/dev/null
expect_eq "after delete: 401" 401 "$(gate "$T5" /mcp)"

# opaque tokens: a client attribute picks the format
printf 'kind = "format";\nplugin = "opaque";\n' >"$STATE/mandate.d/format-opaque.conf"
kill -HUP "$DAEMON_PID"
check "reloaded with the opaque format" wait_for_log "$LOG" "reloaded:" 2
OP_SECRET=$(new_client opaque-agent "mcp:call" --format format-opaque)
OP=$(token_for opaque-agent "$OP_SECRET")
expect_contains "opaque token has its prefix" "mdo_" "$OP"
check "opaque token is no JWT" test "$(printf '%s' "$OP" | tr -cd . | wc -c)" -eq 0
check "the store never holds the token" bash -c "! grep -qa -- '${OP#mdo_}' '$STATE/mandate.db'"
expect_contains "opaque: active" '"active":true' "$(introspect "$OP")"
expect_eq "opaque: gateway 200" 200 "$(gate "$OP" /mcp)"
curl -s -u "opaque-agent:$OP_SECRET" --data-urlencode "token=$OP" "$BASE/oauth2/revoke" >/dev/null
expect_eq "opaque revoked: 401" 401 "$(gate "$OP" /mcp)"

# without the cache of checked tokens: every check verifies the signature
printf 'tokens: { check_cache = -1; };\n' >>"$CONF"
out=$("${CTL[@]}" config check 2>&1)
expect_eq "check_cache below 0 is refused" 1 "$?"
expect_contains "naming the key" "check_cache" "$out"
sed -i 's/check_cache = -1;/check_cache = 0;/' "$CONF"
kill -HUP "$DAEMON_PID"
check "reloaded without the cache" wait_for_log "$LOG" "reloaded:" 3
NC_SECRET=$(new_client uncached-agent "mcp:call")
NC=$(token_for uncached-agent "$NC_SECRET")
expect_eq "no cache: 200" 200 "$(gate "$NC" /mcp)"
expect_eq "no cache: again 200" 200 "$(gate "$NC" /mcp)"
expect_eq "no cache: a tampered token 401" 401 "$(gate "$tampered" /mcp)"
curl -s -u "uncached-agent:$NC_SECRET" --data-urlencode "token=$NC" "$BASE/oauth2/revoke" >/dev/null
expect_eq "no cache: revoked 401" 401 "$(gate "$NC" /mcp)"

stop_daemon
expect_eq "clean stop" 0 "$DAEMON_STATUS"
check "no token is logged" bash -c "! grep -q -- '$S' '$LOG'"
check "no sanitizer report" bash -c "! grep -q 'Sanitizer' '$LOG'"
finish
