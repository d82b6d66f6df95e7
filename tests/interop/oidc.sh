#!/bin/bash
# Federation from OpenID Connect against a real provider: the npm package
# oidc-provider on loopback (tests/interop/oidc-provider.mjs), with keys this
# test generates. An advisor signs in through the authorization code flow
# (scripted: redirects and cookies followed by hand); the agent exchanges her
# id_token (RFC 8693) or presents it (RFC 7523 JWT bearer) for a Mandate token,
# and a service's JWT access token (client credentials, RFC 9068) likewise.
# The provider rotates its signing key twice (new tokens exchange: the JWKS is
# refetched; a removed key is refused), and tokens forged here are refused
# with invalid_grant and an audited reason: expired, not yet valid, another
# audience, another issuer, another azp, alg none, HS256 keyed with the
# public key, a removed key, made-up kids (which cannot make the broker
# hammer the provider). With the provider stopped, cached keys still serve,
# an unknown kid gets 503, and past jwks_max_age nothing verifies; /readyz
# says so. mandatectl mapping test --token explains the mapping. No token in
# the daemon's log. No network but loopback; no npm: FAIL, never skip.
. "${MANDATE_SRCDIR:-.}/tests/e2e/lib.sh"
. "$SRCDIR/tests/interop/npm.sh"

. "$SRCDIR/tests/interop/provider.sh"
for k in k1 k2 k3 kx; do
    op keygen --kid "oidc-test-$k" --out "$KEYS/$k.json" || fatal "keygen $k failed"
done
cat >"$TMP/accounts.json" <<'JSON'
{
  "alice": {"password": "alice-pw", "claims": {"email": "alice@wealth.example", "email_verified": true,
            "name": "Alice Advisor", "groups": ["staff", "advisors"], "org": {"unit": "wealth"}}},
  "bob":   {"password": "bob-pw", "claims": {"email": "bob@wealth.example", "groups": ["advisors"],
            "org": {"unit": "wealth"}}},
  "carol": {"password": "carol-pw", "claims": {"email": "carol@wealth.example", "groups": ["interns"],
            "org": {"unit": "wealth"}}},
  "x/../y": {"password": "x-pw", "claims": {"groups": ["advisors"], "org": {"unit": "wealth"}}}
}
JSON

# --- the provider ----------------------------------------------------------------------
jwks_fetches() { grep -c '^request GET /jwks' "$OP_LOG"; }

check "the provider starts with key 1" start_provider "$KEYS/k1.json" || fatal "oidc-provider did not start"
ISSUER="http://127.0.0.1:$OP_PORT"
expect_contains "its discovery names it" "\"issuer\":\"$ISSUER\"" \
    "$(curl -s "$ISSUER/.well-known/openid-configuration")"
check "its JWKS holds key 1 only, public" bash -c "curl -s '$ISSUER/jwks' | node -e '
    let s=\"\"; process.stdin.on(\"data\", d => s += d).on(\"end\", () => {
    const k = JSON.parse(s).keys; process.exit(k.length === 1 && k[0].kid === \"oidc-test-k1\" && !k[0].d ? 0 : 1) })'"

TOKENS="$TMP/tokens" # every token of the test, to look for in the log
: >"$TOKENS"
# id_token USER: a fresh id_token from a scripted sign-in, in $IDT
id_token() {
    IDT=$(op id-token --issuer "$ISSUER" --secret "$OP_SECRET" --sub "$1" \
        --password "$(node -e "console.log(require('$TMP/accounts.json')['$1'].password)")" \
        2>"$TMP/signin.err")
    [ -n "$IDT" ] || cat "$TMP/signin.err"
    printf '%s\n' "$IDT" >>"$TOKENS"
}
# forge KEY KIND [SUB] [more forge args]: a token made here, in $FT
forge() {
    local key=$1 kind=$2 sub=${3:-bob}
    shift 3 2>/dev/null || shift $#
    FT=$(op forge --key "$KEYS/$key.json" --kind "$kind" --iss "$ISSUER" --aud mandate-broker \
        --sub "$sub" --claims '{"groups":["advisors"],"org":{"unit":"wealth"},"email":"bob@wealth.example"}' "$@")
    printf '%s\n' "$FT" >>"$TOKENS"
}

# --- the broker ------------------------------------------------------------------------
STATE="$TMP/state"
make_state "$STATE" || fatal "mandatectl init failed"
CONF="$STATE/mandate.conf"
CTL=("$MANDATECTL" -c "$CONF")
CAL=https://mcp.example/market-calendar
REPORTS=https://reports.example/api
INSTANCE="$STATE/mandate.d/backend-upstream.conf"
write_instance() { # [EXTRA LINES]
    cat >"$INSTANCE" <<CONF
# written by tests/interop/oidc.sh
kind = "backend";
plugin = "oidc";
issuer = "$ISSUER";
audiences = ["mandate-broker"];
accept = ["id_token", "jwt"];
clock_skew = 60;
min_refetch_interval = 1;
timeout_ms = 2000;
${1:-}
CONF
}
write_instance
cat >>"$CONF" <<CONF
targets = ( { name = "market-calendar"; paths = ["/mcp"]; audience = "$CAL"; scopes = ["mcp:call"]; } );
mappings = (
  { name = "advisors"; idp = "backend-upstream";
    when = ( { attribute = "groups"; equals = "advisors"; },
             { attribute = "org.unit"; equals = "wealth"; } );
    subject = "advisor-\${sub}"; tenant = "default";
    scopes = ["gateway:invoke", "mcp:call"]; audience = ["$CAL"]; max_lifetime = 900; },
  { name = "reporting"; idp = "oidc";
    when = ( { attribute = "client_id"; equals = "reporting-service"; } );
    subject = "svc-\${sub}";
    scopes = ["reports:read"]; audience = ["$REPORTS"]; max_lifetime = 600; }
);
CONF
AGENT=$("${CTL[@]}" client create marketpulse-agent --scope "gateway:invoke mcp:call reports:read" \
    --audience "$CAL" --audience "$REPORTS" 2>/dev/null | client_secret)
check "the acting agent exists" test -n "$AGENT"

LOGS=()
daemon() { # N: starts the daemon with its own log
    LOG="$TMP/mandated-$1.log"
    LOGS+=("$LOG")
    start_daemon "$CONF" "$LOG" || {
        cat "$LOG"
        fatal "the daemon did not start"
    }
    TOKEN_URL="$BASE/oauth2/token"
}
daemon 1
sed -i "s|^server: {|server: {\n  issuer = \"$BASE\";|" "$CONF"
kill -HUP "$DAEMON_PID"
check "reloaded" wait_for_log "$LOG" "reloaded:"

XCHG=urn:ietf:params:oauth:grant-type:token-exchange
BEARER=urn:ietf:params:oauth:grant-type:jwt-bearer
IDTOKEN=urn:ietf:params:oauth:token-type:id_token
JWT=urn:ietf:params:oauth:token-type:jwt
# exchange TYPE TOKEN [curl args]: STATUS and BODY
exchange() {
    local type=$1 tok=$2
    shift 2
    STATUS=$(curl -s -o "$TMP/body" -w '%{http_code}' -u "marketpulse-agent:$AGENT" \
        -d "grant_type=$XCHG" -d "subject_token_type=$type" --data-urlencode "subject_token=$tok" \
        "$@" "$TOKEN_URL")
    BODY=$(cat "$TMP/body")
}
# bearer ASSERTION [curl args]: STATUS and BODY of the JWT bearer grant
bearer() {
    local tok=$1
    shift
    STATUS=$(curl -s -o "$TMP/body" -w '%{http_code}' -u "marketpulse-agent:$AGENT" \
        -d "grant_type=$BEARER" --data-urlencode "assertion=$tok" "$@" "$TOKEN_URL")
    BODY=$(cat "$TMP/body")
}
words() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort | tr '\n' ' ' | sed 's/ $//'; }
expect_scope() { # DESCRIPTION EXPECTED ACTUAL: the same scope words, in any order
    expect_eq "$1" "$(words "$2")" "$(words "$3")"
}
expect_ok() { # DESCRIPTION: the last answer was a token
    expect_eq "$1: 200" 200 "$STATUS"
    [ "$STATUS" = 200 ] || echo "  answer: $BODY"
}
# reason_of RECORD: the reason of an audit record (JSON)
reason_of() { printf '%s' "$1" | node -e 'let s = ""; process.stdin.on("data", d => s += d).on("end", () => {
    try { console.log(JSON.parse(s).reason ?? ""); } catch { console.log(""); } })'; }
# the newest token.refused record of the audit trail, once there is a new one
REFUSED_SEEN=0
refusals() { cat "$STATE"/audit/audit-*.jsonl 2>/dev/null | grep -F '"event":"token.refused"'; }
newest_refusal() {
    local i n
    for i in $(seq 1 40); do
        n=$(refusals | wc -l)
        [ "$n" -gt "$REFUSED_SEEN" ] && break
        sleep 0.05
    done
    REFUSED_SEEN=$n
    refusals | tail -n 1
}
# expect_refused DESCRIPTION STATUS ERROR REASON-ERE: the last answer, and the
# reason audited for it (case-insensitive extended regex)
expect_refused() {
    local rec reason
    expect_eq "$1: HTTP $2" "$2" "$STATUS"
    expect_eq "$1: $3" "$3" "$(json_get "$BODY" error)"
    rec=$(newest_refusal)
    reason=$(reason_of "$rec")
    CHECKS=$((CHECKS + 1))
    if printf '%s' "$reason" | grep -qiE -- "$4"; then
        pass "$1: audited: $reason"
    else
        fail "$1: the audited reason should match /$4/: got '$reason' (${rec:0:300})"
    fi
}
# ready_state JSON: the state /readyz's answer gives backend-upstream
ready_state() {
    printf '%s' "$1" | node -e '
        let s = ""; process.stdin.on("data", d => s += d).on("end", () => {
          let v; try { v = JSON.parse(s); } catch { console.log("not JSON"); return; }
          const name = process.argv[1];
          const find = (o) => {
            if (!o || typeof o !== "object") return undefined;
            if (o.name === name || o.instance === name) return o.state ?? o.status;
            for (const [k, x] of Object.entries(o)) {
              if (k === name) return typeof x === "string" ? x : x && (x.state ?? x.status);
              const r = find(x); if (r !== undefined) return r;
            }
          };
          console.log(find(v) ?? "absent");
        })' backend-upstream
}
expect_ready() { # DESCRIPTION STATE
    local json
    json=$(curl -s "$BASE/readyz")
    expect_eq "$1: /readyz says $2" "$2" "$(ready_state "$json")"
    echo "  readyz: $json"
}

expect_ready "before any token (keys come on first use)" unknown
expect_contains "metadata offers the JWT bearer grant" "$BEARER" \
    "$(curl -s "$BASE/.well-known/oauth-authorization-server")"
FETCH0=$(jwks_fetches)

# --- a real sign-in, exchanged ----------------------------------------------------------------
id_token alice
check "alice signs in at the provider: an id_token" test -n "$IDT"
expect_eq "signed with key 1" oidc-test-k1 "$(json_get "$(jwt_header "$IDT")" kid)"
expect_contains "it carries her groups" '"groups":["staff","advisors"]' "$(jwt_claims "$IDT")"
printf '%s\n' "$IDT" >"$TMP/alice.idt"
out=$("${CTL[@]}" mapping test --idp backend-upstream --token "$TMP/alice.idt" 2>&1)
expect_eq "mapping test --token: a rule matched (exit 0)" 0 "$?"
expect_contains "names the rule" "rule:         advisors" "$out"
expect_contains "and the grant" "sub=advisor-alice" "$out"
printf '%s\n' "$out" | sed 's/^/  mapping test: /'

exchange "$IDTOKEN" "$IDT"
expect_ok "alice's id_token exchanged (after mapping test: nothing was claimed)"
T=$(json_get "$BODY" access_token)
printf '%s\n' "$T" >>"$TOKENS"
c=$(jwt_claims "$T")
expect_contains "issued_token_type" '"issued_token_type":"urn:ietf:params:oauth:token-type:access_token"' "$BODY"
expect_contains "sub is the mapped advisor" '"sub":"advisor-alice"' "$c"
expect_contains "act names the agent" '"act":{"sub":"marketpulse-agent"}' "$c"
expect_contains "idp names the provider" "\"idp\":\"$ISSUER\"" "$c"
expect_contains "aud is the rule's" "\"aud\":\"$CAL\"" "$c"
expect_scope "scope is the rule's" "gateway:invoke mcp:call" "$(json_get "$c" scope)"
expect_eq "lifetime is the rule's" 900 "$(json_get "$BODY" expires_in)"
check "the JWKS was fetched" test "$(jwks_fetches)" -gt "$FETCH0"
expect_ready "after the first fetch" ok
curl -s -D "$TMP/gate.h" -o /dev/null -H "Authorization: Bearer $T" -H "X-Original-URI: /mcp" \
    "$BASE/gateway/check"
expect_contains "the gateway passes the advisor on" "X-Mandate-Subject: advisor-alice" \
    "$(tr -d '\r' <"$TMP/gate.h")"
exchange "$IDTOKEN" "$IDT"
echo "  note (not checked): the same id_token a second time: $STATUS $(json_get "$BODY" error)"
REFUSED_SEEN=$(refusals | wc -l)

id_token bob
exchange "$IDTOKEN" "$IDT" -d "scope=mcp:call" -d "resource=$CAL"
expect_ok "bob's id_token, narrowed to mcp:call"
expect_contains "only mcp:call" '"scope":"mcp:call"' "$BODY"

# an upstream JWT access token (RFC 9068) of a service
AT=$(op access-token --issuer "$ISSUER" --secret "$OP_SECRET" 2>"$TMP/at.err")
printf '%s\n' "$AT" >>"$TOKENS"
check "the provider's client credentials: a JWT access token" test -n "$AT"
expect_contains "typ at+jwt" '"typ":"at+jwt"' "$(jwt_header "$AT")"
exchange "$JWT" "$AT"
expect_ok "the JWT access token exchanged (subject_token_type jwt)"
c=$(jwt_claims "$(json_get "$BODY" access_token)")
expect_contains "sub is the mapped service" '"sub":"svc-reporting-service"' "$c"
expect_contains "act names the agent" '"act":{"sub":"marketpulse-agent"}' "$c"
expect_contains "aud is the reporting API" "\"aud\":\"$REPORTS\"" "$c"
expect_contains "scope reports:read" '"scope":"reports:read"' "$c"
exchange "$IDTOKEN" "$AT"
echo "  note (not checked): the access token (typ at+jwt) as an id_token: $STATUS $(json_get "$BODY" error)"
REFUSED_SEEN=$(refusals | wc -l)

# RFC 7523
id_token alice
bearer "$IDT" -d "scope=mcp:call"
expect_ok "JWT bearer grant with alice's id_token"
c=$(jwt_claims "$(json_get "$BODY" access_token)")
expect_contains "sub is the mapped advisor" '"sub":"advisor-alice"' "$c"
expect_contains "with the scope asked for" '"scope":"mcp:call"' "$BODY"
echo "  JWT bearer token claims: $c"
AT=$(op access-token --issuer "$ISSUER" --secret "$OP_SECRET" 2>>"$TMP/at.err")
printf '%s\n' "$AT" >>"$TOKENS"
bearer "$AT"
expect_ok "JWT bearer grant with the service's JWT access token"
expect_contains "for the service" '"sub":"svc-reporting-service"' "$(jwt_claims "$(json_get "$BODY" access_token)")"

# --- the mapping decides ---------------------------------------------------------------------
id_token carol
printf '%s\n' "$IDT" >"$TMP/carol.idt"
out=$("${CTL[@]}" mapping test --idp backend-upstream --token "$TMP/carol.idt" 2>&1)
expect_eq "mapping test: carol matches no rule (exit 1)" 1 "$?"
expect_contains "says why" "no rule matched" "$out"
exchange "$IDTOKEN" "$IDT"
expect_refused "carol, an intern" 400 invalid_grant "no rule matched"
id_token "x/../y"
exchange "$IDTOKEN" "$IDT"
expect_refused "a sub that would shape the subject (x/../y)" 400 invalid_grant "subject|sub|character|value"

# --- tokens made here with the provider's own key --------------------------------------------
forge k1 valid
exchange "$IDTOKEN" "$FT"
expect_ok "a token made here with key 1, as the provider would"
forge k1 skew
exchange "$IDTOKEN" "$FT"
expect_ok "expired 10 s ago: within clock_skew (60 s)"
forge k1 expired
exchange "$IDTOKEN" "$FT"
expect_refused "expired an hour ago" 400 invalid_grant "expir|exp\\b|too old"
forge k1 nbf
exchange "$IDTOKEN" "$FT"
expect_refused "not valid before an hour from now" 400 invalid_grant "nbf|not yet|before|future"
forge k1 aud
exchange "$IDTOKEN" "$FT"
expect_refused "for another audience" 400 invalid_grant "aud"
forge k1 iss
exchange "$IDTOKEN" "$FT"
expect_refused "from another issuer" 400 invalid_grant "iss|provider|instance|idp"
forge k1 azp
exchange "$IDTOKEN" "$FT"
expect_refused "for us and another client, azp the other" 400 invalid_grant "azp|authorized party"
forge k1 none
exchange "$IDTOKEN" "$FT"
expect_refused "alg none" 400 invalid_grant "alg|none|algorithm|sign"
forge k1 none
bearer "$FT"
expect_refused "alg none, JWT bearer" 400 invalid_grant "alg|none|algorithm|sign"
forge k1 hs256
exchange "$IDTOKEN" "$FT"
expect_refused "HS256 keyed with the public key's PEM" 400 invalid_grant "alg|HS256|HMAC|algorithm"
forge k1 hs256-jwk
bearer "$FT"
expect_refused "HS256 keyed with the public JWK, JWT bearer" 400 invalid_grant "alg|HS256|HMAC|algorithm"
forge kx valid
exchange "$IDTOKEN" "$FT"
expect_refused "a key the provider never published" 400 invalid_grant "kid|key"
forge k1 valid bob --kid oidc-test-k2
exchange "$IDTOKEN" "$FT"
expect_refused "key 1's signature under another kid" 400 invalid_grant "kid|key|signature"
forge k1 valid
FT_TAMPER="$(printf '%s' "$FT" | cut -d. -f1).$(printf '{"iss":"%s","sub":"mallory","aud":"mandate-broker","iat":%s,"exp":%s,"groups":["advisors"],"org":{"unit":"wealth"}}' \
    "$ISSUER" "$(date +%s)" "$(($(date +%s) + 300))" | b64url).$(printf '%s' "$FT" | cut -d. -f3)"
exchange "$IDTOKEN" "$FT_TAMPER"
expect_refused "claims changed under a good signature" 400 invalid_grant "signature|verif"
exchange "$IDTOKEN" "not.a.jwt"
expect_refused "garbage" 400 invalid_grant "."
check "the daemon survived every one" kill -0 "$DAEMON_PID"

# a flood of made-up kids: refused, and the provider is asked at most twice
sleep 1.2
before=$(jwks_fetches)
op forge --key "$KEYS/kx.json" --kind valid --iss "$ISSUER" --aud mandate-broker --sub bob \
    --claims '{"groups":["advisors"]}' --kid random --count 20 >"$TMP/flood"
cat "$TMP/flood" >>"$TOKENS"
: >"$TMP/flood.status"
FLOOD=()
while read -r tok; do
    curl -s -o /dev/null -w '%{http_code}\n' -u "marketpulse-agent:$AGENT" -d "grant_type=$XCHG" \
        -d "subject_token_type=$IDTOKEN" --data-urlencode "subject_token=$tok" "$TOKEN_URL" \
        >>"$TMP/flood.status" &
    FLOOD+=($!)
done <"$TMP/flood"
wait "${FLOOD[@]}"
# each is refused: 400, or 503 when it waited over 200 ms for a worker that may
# block (the oidc backend's calls take at most all workers but one: a loaded
# 2-core machine makes some wait); never a token
expect_eq "20 made-up kids at once: 20 refusals (400, or 503 when no worker was free)" 20 \
    "$(grep -cE '^(400|503)$' "$TMP/flood.status")"
check "  some of them judged (400)" test "$(grep -c '^400$' "$TMP/flood.status")" -ge 1
fetched=$(($(jwks_fetches) - before))
check "... and at most 2 JWKS fetches for them (min_refetch_interval 1 s): $fetched" test "$fetched" -le 2
REFUSED_SEEN=$(refusals | wc -l)

# --- key rotation ---------------------------------------------------------------------------------
stop_provider
check "the provider restarts with key 2 first, key 1 still published" \
    start_provider "$KEYS/k2.json,$KEYS/k1.json" "$OP_PORT" || fatal "the provider did not restart"
sleep 1.2
id_token alice
expect_eq "new id_tokens are signed with key 2" oidc-test-k2 "$(json_get "$(jwt_header "$IDT")" kid)"
exchange "$IDTOKEN" "$IDT"
expect_ok "rotation: a key-2 id_token exchanges"
check "the JWKS was refetched for it" test "$(jwks_fetches)" -ge 1
forge k1 valid
exchange "$IDTOKEN" "$FT"
expect_ok "rotation: key 1, still published, still verifies"
stop_provider
check "the provider restarts with key 3 first and key 2; key 1 is removed" \
    start_provider "$KEYS/k3.json,$KEYS/k2.json" "$OP_PORT" || fatal "the provider did not restart"
sleep 1.2
id_token bob
expect_eq "new id_tokens are signed with key 3" oidc-test-k3 "$(json_get "$(jwt_header "$IDT")" kid)"
exchange "$IDTOKEN" "$IDT"
expect_ok "second rotation: a key-3 id_token exchanges"
check "the JWKS was refetched for it" test "$(jwks_fetches)" -ge 1
AT=$(op access-token --issuer "$ISSUER" --secret "$OP_SECRET" 2>>"$TMP/at.err")
printf '%s\n' "$AT" >>"$TOKENS"
exchange "$JWT" "$AT"
expect_ok "second rotation: a new JWT access token exchanges"
forge k1 valid
exchange "$IDTOKEN" "$FT"
expect_refused "a token signed with the removed key 1" 400 invalid_grant "kid|key"
forge k2 valid
bearer "$FT"
expect_ok "key 2, still published, JWT bearer"

# --- the provider stopped ------------------------------------------------------------------------------
id_token alice
CACHED=$IDT
stop_provider
sleep 1.2
exchange "$IDTOKEN" "$CACHED"
expect_ok "provider down: an id_token whose key is cached still exchanges"
forge k2 valid
exchange "$IDTOKEN" "$FT"
expect_ok "provider down: key 2 (cached) still verifies"
forge kx valid
exchange "$IDTOKEN" "$FT"
expect_eq "provider down: an unknown kid gets 503" 503 "$STATUS"
expect_eq "... temporarily_unavailable" temporarily_unavailable "$(json_get "$BODY" error)"
expect_ready "provider down, keys cached" degraded
forge k3 expired
exchange "$IDTOKEN" "$FT"
expect_refused "provider down: an expired token with a cached key is still a refusal" 400 \
    invalid_grant "expir|exp\\b|too old"
forge k3 none
exchange "$IDTOKEN" "$FT"
expect_refused "provider down: alg none is still a refusal" 400 invalid_grant "alg|none|algorithm|sign"
check "the daemon is alive" kill -0 "$DAEMON_PID"
expect_eq "healthz" 200 "$(http_status "$BASE/healthz")"
check "the log says the provider cannot be reached" \
    grep -qiE "backend-upstream.*(jwks|fetch|reach|connect)|(jwks|fetch).*$OP_PORT" "$LOG"

check "the provider comes back" start_provider "$KEYS/k3.json,$KEYS/k2.json" "$OP_PORT" ||
    fatal "the provider did not restart"
sleep 1.2
forge kx valid
exchange "$IDTOKEN" "$FT"
expect_refused "provider back: the unknown kid is now a refusal (the JWKS lacks it)" 400 \
    invalid_grant "kid|key"
expect_ready "provider back" ok
stop_daemon
expect_eq "clean stop" 0 "$DAEMON_STATUS"

# --- past jwks_max_age nothing verifies ------------------------------------------------------------------
# (a max age of 10 s: on a loaded 2-core machine, with the sanitizers, the
# steps between the fetch and the second exchange took over the 5 s that
# were here once)
write_instance "jwks_refresh = 2;
jwks_max_age = 10;"
daemon 2
id_token alice
exchange "$IDTOKEN" "$IDT"
expect_ok "jwks_refresh 2 s, jwks_max_age 10 s: an id_token"
id_token bob
SPARE=$IDT
stop_provider
sleep 2.3
exchange "$IDTOKEN" "$SPARE"
expect_ok "provider down, keys 2 s old (past jwks_refresh, within jwks_max_age): still verifies"
expect_ready "past jwks_refresh, the refetch failed" degraded
sleep 8
forge k3 valid
exchange "$IDTOKEN" "$FT"
expect_eq "past jwks_max_age: 503, never an unverified token" 503 "$STATUS"
expect_eq "... temporarily_unavailable" temporarily_unavailable "$(json_get "$BODY" error)"
expect_ready "past jwks_max_age" unavailable
stop_daemon
expect_eq "clean stop" 0 "$DAEMON_STATUS"

# --- the audit trail and the logs ---------------------------------------------------------------------------
trail=$(cat "$STATE"/audit/audit-*.jsonl)
echo "  reasons recorded for refused token requests:"
printf '%s\n' "$trail" | grep '"event":"token.refused"' | node -e 'require("readline")
    .createInterface({ input: process.stdin }).on("line", l => console.log(JSON.parse(l).reason))' |
    sort | uniq -c | sed 's/^/    /'
expect_contains "an exchange is recorded with the rule" '"rule":"advisors"' "$trail"
expect_contains "the provider" "\"idp\":\"$ISSUER\"" "$trail"
expect_contains "the backend instance" '"idp_instance":"backend-upstream"' "$trail"
expect_contains "the acting client" '"act":"marketpulse-agent"' "$trail"
check "the trail verifies" "${CTL[@]}" audit verify
tail_out=$("${CTL[@]}" audit tail -n 200 --event token.refused 2>&1)
expect_contains "mandatectl audit tail shows the refusals with their reasons" "reason=" "$tail_out"
sed -n 's/.*\.\([A-Za-z0-9_-]\{20,\}\)$/\1/p' "$TOKENS" | sort -u >"$TMP/signatures"
check "the signatures to look for: $(wc -l <"$TMP/signatures")" test -s "$TMP/signatures"
for log in "${LOGS[@]}"; do
    name=$(basename "$log")
    check "$name holds no token signature" bash -c "! grep -qF -f '$TMP/signatures' '$log'"
    check "$name holds no JWT" bash -c "! grep -qE 'eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}' '$log'"
    check "$name holds no client secret of the provider" bash -c "! grep -qF -- '$OP_SECRET' '$log'"
    check "$name: no sanitizer report" bash -c "! grep -q 'Sanitizer' '$log'"
done
finish
