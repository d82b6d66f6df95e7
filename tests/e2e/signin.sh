#!/bin/bash
# People sign in (issue 22), driven with curl through the live daemon: the
# authorization request, the IdP's login (the test backend "fakeidp", whose
# IdP signs in whoever login_hint names, at once), the browser session, the
# consent page and its CSRF token, the code, PKCE, the tokens, refresh
# rotation, and every refusal on the way. The real IdPs and the MCP SDK in
# a real browser are in tests/interop/signin.sh.
. "$(dirname "$0")/lib.sh"

STATE="$TMP/state"
CONF="$STATE/mandate.conf"
make_state "$STATE"
with_fakeidp # backend-corp: the IdP signs in whoever login_hint names
CAL=https://mcp.example/cal
cat >>"$CONF" <<CONF
mappings = (
  { name = "advisors"; idp = "backend-corp";
    when = ( { attribute = "role"; equals = "advisor"; } );
    subject = "advisor-\${uid}"; tenant = "default";
    scopes = ["mcp:call", "gateway:invoke"]; audience = ["$CAL"]; },
  { name = "traders"; idp = "backend-corp";
    when = ( { attribute = "role"; equals = "trader"; } );
    subject = "trader-\${uid}"; tenant = "default";
    scopes = ["mcp:call", "trade:execute"]; audience = ["$CAL"];
    sensitive_scopes = ["trade:execute"]; sensitive_lifetime = 300; sensitive_max_authn_age = 5; }
);
targets = ( { name = "cal"; paths = ["/mcp"]; audience = "$CAL"; scopes = ["mcp:call"]; } );
signin: { tenants = ( { tenant = "default"; name = "Example Bank"; } ); };
delegation = { rules = ( { name = "agent-for-app"; actors = ["research-agent"]; clients = ["mcp-app"]; } ); };
# self-registered clients are of their own tenant ("public"), and may ask a
# scope no rule gives an advisor (review s35, finding 3)
registration = { mode = "open"; tenant = "public"; scopes = ["mcp:call", "trade:execute"]; audiences = ["$CAL"]; };
# a document server on loopback; a fetch from a server that never finishes
# the TLS handshake (below) may take long enough for the checks made while
# it waits (a slow sanitizer build, a loaded machine): the handshake is
# part of the connection, so connect_timeout_ms bounds it
client_documents = { allow_private_addresses = true; connect_timeout_ms = 10000; timeout_ms = 30000; };
rate_limit = { refusal_rate = 1; }; # an address over its refusal budget stays so a second
CONF
# one HTTP worker: a request that held it would hold every other (review
# s35, finding 5: a slow client document's fetch did)
sed -i 's/^ *# threads = 0;.*/  threads = 1;/' "$CONF"
# and a short drain, for the stop with a document fetch under way (the end)
sed -i 's/^server: {$/server: {\n  drain_timeout = 1;/' "$CONF"
LOG="$TMP/daemon.log"
check "daemon starts" start_daemon "$CONF" "$LOG" || cat "$LOG"
CTL=("$MANDATECTL" -c "$CONF")
REDIRECT=http://127.0.0.1:7777/cb
"${CTL[@]}" client create mcp-app --public --redirect-uri "$REDIRECT" \
    --grant-type authorization_code --grant-type refresh_token \
    --scope "mcp:call" --audience "$CAL" >/dev/null 2>&1
check "a public client with a redirect URI" "${CTL[@]}" client show mcp-app
# an agent that exchanges the signed-in user's tokens (RFC 8693): ending the
# sign-in reaches what it was given too
declare -A SECRET
SECRET[research-agent]=$("${CTL[@]}" client create research-agent --scope mcp:call \
    --audience "$CAL" 2>/dev/null | client_secret)
TOKEN_URL="$BASE/oauth2/token"

# PKCE
VERIFIER=$(head -c 32 /dev/urandom | b64url)
CHALLENGE=$(printf '%s' "$VERIFIER" | openssl dgst -binary -sha256 | b64url)

header() { sed -n "s/^$1: //Ip" "$TMP/h" | tr -d '\r'; }
query_param() { # URL NAME
    printf '%s' "$1" | tr '?&' '\n\n' | sed -n "s/^$2=//p" | head -n 1 |
        sed 's/%\([0-9A-F][0-9A-F]\)/\\x\1/g' | xargs -0 printf '%b'
}
authorize_url() { # [extra query]
    printf '%s/oauth2/authorize?response_type=code&client_id=mcp-app&redirect_uri=%s&scope=mcp:call&state=st-123&code_challenge=%s&code_challenge_method=S256&resource=%s%s' \
        "$BASE" "$(printf '%s' "$REDIRECT" | sed 's|:|%3A|g; s|/|%2F|g')" "$CHALLENGE" \
        "$(printf '%s' "$CAL" | sed 's|:|%3A|g; s|/|%2F|g')" "${1:-}"
}
token() { # form fields...: POST /oauth2/token
    curl -s -o "$TMP/t" -w '%{http_code}' "$@" "$BASE/oauth2/token"
}

# --- metadata ------------------------------------------------------------------
meta=$(curl -s "$BASE/.well-known/oauth-authorization-server")
expect_contains "metadata: the authorization endpoint" "\"authorization_endpoint\":\"$BASE/oauth2/authorize\"" "$meta"
expect_contains "metadata: code only" '"response_types_supported":["code"]' "$meta"
expect_contains "metadata: S256 only" '"code_challenge_methods_supported":["S256"]' "$meta"
expect_contains "metadata: RFC 9207" '"authorization_response_iss_parameter_supported":true' "$meta"
expect_contains "metadata: the grants" '"authorization_code","refresh_token"' "$meta"
expect_contains "metadata: public clients" '"none"' "$meta"

# --- a first sign-in: IdP, consent, code --------------------------------------------
browse "$(authorize_url "&login_hint=alice%40bank.example")"
expect_eq "authorize: sent to the IdP" 302 "$(status)"
IDP=$(location)
expect_contains "  at the instance's callback route" "$BASE/login/backend-corp/callback?state=" "$IDP"
expect_contains "  with the login cookie, SameSite=None" "__Host-mandate-login=" "$(header Set-Cookie)"
browse "$IDP"
expect_eq "callback: the consent page" 200 "$(status)"
expect_contains "  names the user" "advisor-alice" "$(cat "$TMP/b")"
expect_contains "  and the tenant" "Example Bank" "$(cat "$TMP/b")"
expect_contains "  and the scope" "mcp:call" "$(cat "$TMP/b")"
expect_contains "  sets the session cookie" "__Host-mandate-session=" "$(header Set-Cookie)"
expect_contains "  Secure, HttpOnly, SameSite=Lax" "Secure; HttpOnly; SameSite=Lax" "$(header Set-Cookie)"
expect_contains "  no framing" "frame-ancestors 'none'" "$(header Content-Security-Policy)"
expect_eq "  X-Frame-Options" DENY "$(header X-Frame-Options)"
check "  no script" bash -c "! grep -qi '<script' '$TMP/b'"
style=$(sed -n 's/.*<style>\(.*\)<\/style>.*/\1/p' "$TMP/b" | tr -d '\n')
hash=$(printf '%s' "$style" | openssl dgst -binary -sha256 | base64 -w0)
expect_contains "  the page's style is the one the CSP allows" "'sha256-$hash'" "$(header Content-Security-Policy)"
HANDLE=$(form_value handle)
CSRF=$(form_value csrf)
check "  a CSRF token on the form" test -n "$CSRF"
SESSION_COOKIES=$COOKIES

# CSRF: none, wrong, from another session
browse "$BASE/consent" -d "handle=$HANDLE" -d decision=allow
expect_eq "consent without its CSRF token: 403" 403 "$(status)"
browse "$BASE/consent" -d "handle=$HANDLE" -d "csrf=x$CSRF" -d decision=allow
expect_eq "consent with a wrong CSRF token: 403" 403 "$(status)"
browse "$BASE/consent" -d "handle=$HANDLE" -d "csrf=$CSRF" -d decision=allow -d remember=yes
expect_eq "consent: to the client" 303 "$(status)"
CB=$(location)
expect_contains "  at its redirect_uri" "$REDIRECT?code=" "$CB"
expect_eq "  with its state" st-123 "$(query_param "$CB" state)"
expect_eq "  and iss (RFC 9207)" "$BASE" "$(query_param "$CB" iss)"
CODE=$(query_param "$CB" code)

# --- the code at the token endpoint -------------------------------------------------------
expect_eq "a wrong verifier: 400" 400 "$(token -d grant_type=authorization_code -d client_id=mcp-app \
    -d "code=$CODE" -d code_verifier=abcdefghijklmnopqrstuvwxyzabcdefghijklmnopq -d "redirect_uri=$REDIRECT")"
expect_contains "  invalid_grant" invalid_grant "$(cat "$TMP/t")"
# the code was spent by that attempt: a new sign-in (session and consent remembered)
browse "$(authorize_url)"
expect_eq "a second authorization: straight back with a code (session, remembered consent)" 302 "$(status)"
CB=$(location)
expect_contains "  no IdP, no consent page" "$REDIRECT?code=" "$CB"
CODE=$(query_param "$CB" code)
# the session's last use is written once it lags by a minute (a tenth of
# signin.session_idle, at most a minute), not on every request
DB="$STATE/mandate.db"
if command -v sqlite3 >/dev/null && [ -f "$DB" ]; then
    sql() { sqlite3 -cmd ".timeout 5000" "$DB" "$1"; }
    sql "UPDATE sessions SET last_seen_at = last_seen_at - 30" >/dev/null
    SEEN=$(sql "SELECT max(last_seen_at) FROM sessions")
    browse "$(authorize_url)"
    expect_eq "a session last used 30 s ago: a code" 302 "$(status)"
    expect_eq "  its last use not written again" "$SEEN" "$(sql "SELECT max(last_seen_at) FROM sessions")"
    sql "UPDATE sessions SET last_seen_at = last_seen_at - 60" >/dev/null
    browse "$(authorize_url)"
    expect_eq "a session last used 90 s ago: a code" 302 "$(status)"
    check "  its last use written" test "$(sql "SELECT max(last_seen_at) FROM sessions")" -ge $(($(date +%s) - 5))
fi
expect_eq "another redirect_uri at the token endpoint: 400" 400 "$(token -d grant_type=authorization_code \
    -d client_id=mcp-app -d "code=$CODE" -d "code_verifier=$VERIFIER" -d redirect_uri=http://127.0.0.1:7777/other)"
browse "$(authorize_url)"
CODE=$(query_param "$(location)" code)
expect_eq "the code redeemed" 200 "$(token -d grant_type=authorization_code -d client_id=mcp-app \
    -d "code=$CODE" -d "code_verifier=$VERIFIER" -d "redirect_uri=$REDIRECT" -d "resource=$CAL")"
ACCESS=$(json_get "$(cat "$TMP/t")" access_token)
REFRESH=$(json_get "$(cat "$TMP/t")" refresh_token)
claims=$(jwt_claims "$ACCESS")
# (sub, not may_act's: research-agent may act for mcp-app's tokens)
expect_contains "  sub: the mapped user" '"sub":"advisor-alice"' "$claims"
expect_eq "  client_id: the MCP client" mcp-app "$(json_get "$claims" client_id)"
expect_eq "  aud: the resource" "$CAL" "$(json_get "$claims" aud)"
expect_eq "  idp: the IdP's issuer (as the token exchange names it)" https://fake-idp.test "$(json_get "$claims" idp)"
expect_contains "  a refresh token" mrt_ "$REFRESH"
gate() { http_status "$BASE/gateway/check" -H "X-Original-URI: /mcp/tools" -H "Authorization: Bearer $1"; }
expect_eq "  the gateway lets it through" 200 "$(gate "$ACCESS")"
expect_eq "the same code again: 400" 400 "$(token -d grant_type=authorization_code -d client_id=mcp-app \
    -d "code=$CODE" -d "code_verifier=$VERIFIER" -d "redirect_uri=$REDIRECT")"
expect_contains "  invalid_grant" invalid_grant "$(cat "$TMP/t")"
sleep 1.2
expect_eq "  and the token issued from it is revoked" 401 "$(gate "$ACCESS")"
expect_eq "  and its refresh token" 400 "$(token -d grant_type=refresh_token -d client_id=mcp-app -d "refresh_token=$REFRESH")"

# a replay that ends the family while the first redemption is still tying its
# tokens to it (the race the family's own revocation mark closes): the mark
# is set here in the store between the code's issue and its redemption, as
# the replay's mandate_signin_end_family would set it
if command -v sqlite3 >/dev/null && [ -f "$DB" ]; then
    browse "$(authorize_url)"
    CODE=$(query_param "$(location)" code)
    FAMILY=$(sql "SELECT family_id FROM auth_codes WHERE used = 0 ORDER BY issued_at DESC LIMIT 1")
    sql "INSERT INTO revocations (jti, client_id, expires_at, revoked_at) VALUES ('$FAMILY', NULL, strftime('%s','now') + 600, strftime('%s','now'))"
    expect_eq "a code whose family a replay ended meanwhile: 400" 400 "$(token -d grant_type=authorization_code \
        -d client_id=mcp-app -d "code=$CODE" -d "code_verifier=$VERIFIER" -d "redirect_uri=$REDIRECT")"
    expect_contains "  invalid_grant, the sign-in ended" "its sign-in has ended" "$(cat "$TMP/t")"
    check "  no token leaves" bash -c "! grep -q access_token '$TMP/t'"
    expect_eq "  the token minted for it is revoked in the store" 1 \
        "$(sql "SELECT count(*) FROM revocations r JOIN lineage l ON l.jti = r.jti WHERE l.parent = '$FAMILY'")"
fi

# --- refresh tokens: rotation and reuse ---------------------------------------------------
browse "$(authorize_url)"
CODE=$(query_param "$(location)" code)
token -d grant_type=authorization_code -d client_id=mcp-app -d "code=$CODE" \
    -d "code_verifier=$VERIFIER" -d "redirect_uri=$REDIRECT" >/dev/null
R1=$(json_get "$(cat "$TMP/t")" refresh_token)
expect_eq "refresh: 200" 200 "$(token -d grant_type=refresh_token -d client_id=mcp-app -d "refresh_token=$R1")"
R2=$(json_get "$(cat "$TMP/t")" refresh_token)
A2=$(json_get "$(cat "$TMP/t")" access_token)
check "  rotated: a new refresh token" test -n "$R2" -a "$R2" != "$R1"
X2=$(json_get "$(exchange research-agent "$A2")" access_token)
expect_eq "  an agent exchanges the refreshed access token, and the gateway lets it through" \
    200 "$(gate "$X2")"
expect_eq "  a narrower scope is fine" 200 "$(token -d grant_type=refresh_token -d client_id=mcp-app -d "refresh_token=$R2" -d scope=mcp:call)"
R3=$(json_get "$(cat "$TMP/t")" refresh_token)
expect_eq "  a wider one is not" 400 "$(token -d grant_type=refresh_token -d client_id=mcp-app -d "refresh_token=$R3" -d "scope=mcp:call gateway:invoke")"
expect_eq "  nor another resource" 400 "$(token -d grant_type=refresh_token -d client_id=mcp-app -d "refresh_token=$R3" -d resource=https://other.example)"
expect_eq "  another client may not use it" 401 "$(token -d grant_type=refresh_token -d client_id=nobody -d "refresh_token=$R3")"
introspector=$("${CTL[@]}" client create introspector --scope x --introspect 2>/dev/null | sed -n 's/^client_secret: //p')
expect_contains "introspection knows a refresh token" '"token_type":"refresh_token"' \
    "$(curl -s -u "introspector:$introspector" --data-urlencode "token=$R3" "$BASE/oauth2/introspect")"
expect_eq "reusing a rotated refresh token: 400" 400 "$(token -d grant_type=refresh_token -d client_id=mcp-app -d "refresh_token=$R1")"
expect_eq "  and the whole family ends: the newest one too" 400 "$(token -d grant_type=refresh_token -d client_id=mcp-app -d "refresh_token=$R3")"
sleep 1.2
expect_eq "  and the access tokens it gave" 401 "$(gate "$A2")"
expect_eq "  and the agent's token exchanged from one of them" 401 "$(gate "$X2")"

# --- a public client revokes its own refresh token (RFC 7009 §2.1) ------------------------
browse "$(authorize_url)"
CODE=$(query_param "$(location)" code)
"${CTL[@]}" client create other-app --public --redirect-uri "$REDIRECT" \
    --grant-type authorization_code --scope "mcp:call" --audience "$CAL" >/dev/null 2>&1
expect_eq "a code presented by another client: 400" 400 "$(token -d grant_type=authorization_code \
    -d client_id=other-app -d "code=$CODE" -d "code_verifier=$VERIFIER" -d "redirect_uri=$REDIRECT")"
expect_contains "  invalid_grant" invalid_grant "$(cat "$TMP/t")"
browse "$(authorize_url)"
CODE=$(query_param "$(location)" code)
token -d grant_type=authorization_code -d client_id=mcp-app -d "code=$CODE" \
    -d "code_verifier=$VERIFIER" -d "redirect_uri=$REDIRECT" >/dev/null
RP=$(json_get "$(cat "$TMP/t")" refresh_token)
expect_eq "another public client cannot revoke it: 400" 400 "$(curl -s -o /dev/null -w '%{http_code}' \
    -d client_id=other-app --data-urlencode "token=$RP" "$BASE/oauth2/revoke")"
expect_eq "  and it still works" 200 "$(token -d grant_type=refresh_token -d client_id=mcp-app -d "refresh_token=$RP")"
RP=$(json_get "$(cat "$TMP/t")" refresh_token)
expect_eq "the public client revokes its refresh token with its client_id: 200" 200 \
    "$(curl -s -o /dev/null -w '%{http_code}' -d client_id=mcp-app --data-urlencode "token=$RP" "$BASE/oauth2/revoke")"
expect_eq "  and it is refused" 400 "$(token -d grant_type=refresh_token -d client_id=mcp-app -d "refresh_token=$RP")"
expect_eq "a confidential client without its secret may not revoke: 401" 401 \
    "$(curl -s -o /dev/null -w '%{http_code}' -d client_id=introspector --data-urlencode "token=$RP" "$BASE/oauth2/revoke")"

browse "$(authorize_url | sed 's/scope=mcp:call&//')"
expect_contains "a request without a scope is audited with its client" '"client_id":"mcp-app"' \
    "$(grep '"event":"authorize.request"' "$STATE"/audit/*.jsonl | tail -n 1)"

# prompt=none shows no page (OpenID Connect Core §3.1.2.1): a session but no
# consent remembered for this client is consent_required to it
"${CTL[@]}" client create quiet-app --public --redirect-uri "$REDIRECT" \
    --grant-type authorization_code --scope "mcp:call" --audience "$CAL" >/dev/null 2>&1
browse "$(authorize_url "&prompt=none" | sed 's/client_id=mcp-app/client_id=quiet-app/')"
expect_eq "prompt=none, a session, no remembered consent: consent_required to the client" \
    consent_required "$(query_param "$(location)" error)"
expect_eq "  with the state" st-123 "$(query_param "$(location)" state)"
if command -v sqlite3 >/dev/null && [ -f "$DB" ]; then
    # nor when no rule admits the session's user any more (review s33, finding 9):
    # the identity the session keeps is mapped again at each request
    SAVED_COOKIES=$COOKIES
    COOKIES=""
    browse "$(authorize_url "&login_hint=fay")"
    browse "$(location)"
    sql "UPDATE sessions SET identity = replace(identity, '\"advisor\"', '\"intern\"') WHERE subject = 'advisor-fay'"
    browse "$(authorize_url "&prompt=none")"
    expect_eq "prompt=none, a session no rule admits any more: access_denied to the client, not a page" \
        access_denied "$(query_param "$(location)" error)"
    expect_eq "  with the state" st-123 "$(query_param "$(location)" state)"
    COOKIES=$SAVED_COOKIES
fi

# --- the start of a sign-in is held to an allowance per address ---------------------------
# (review s33, finding 7) anyone can start one at a public client, and each is
# kept as a pending sign-in and audited: per address, the client's allowance
"${CTL[@]}" client create busy-app --public --redirect-uri "$REDIRECT" --rate 0.01 --burst 3 \
    --grant-type authorization_code --scope "mcp:call" --audience "$CAL" >/dev/null 2>&1
SAVED_COOKIES=$COOKIES
COOKIES=""
busy_url() { authorize_url "&login_hint=bea" | sed 's/client_id=mcp-app/client_id=busy-app/'; }
for i in 1 2 3; do browse "$(busy_url)"; done
expect_contains "three sign-ins started at a client allowed three at once: the IdP" \
    "/login/backend-corp/callback" "$(location)"
if command -v sqlite3 >/dev/null && [ -f "$DB" ]; then
    KEPT=$(sql "SELECT count(*) FROM once")
fi
browse "$(busy_url)"
expect_eq "the fourth from the same address: the error page 429" 429 "$(status)"
check "  never a redirect" test -z "$(location)"
check "  with Retry-After" test -n "$(header Retry-After)"
check "  audited" bash -c "grep '\"event\":\"authorize.refused\"' '$STATE'/audit/*.jsonl | grep -q 'rate limit'"
if command -v sqlite3 >/dev/null && [ -f "$DB" ]; then
    expect_eq "  no pending sign-in kept for it" "$KEPT" "$(sql "SELECT count(*) FROM once")"
fi
COOKIES=$SAVED_COOKIES

# --- client documents: anyone can name a URL, so a fetch is not a reflector ----------------
# (review s33, finding 8) a fetch that failed is remembered for min_cache, and
# an address over its refusal budget makes no fetch; the server counts them
python3 - "$TMP/fetches" >"$TMP/doc-server.out" 2>&1 <<'PY' &
import socket, sys
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(64)
print("listening", server.getsockname()[1], flush=True)
count = 0
while True:
    conn, _ = server.accept()  # no TLS: every fetch fails
    count += 1
    with open(sys.argv[1], "w") as f:
        f.write(str(count))
    conn.close()
PY
DOC_SERVER=$!
PIDS="$PIDS $DOC_SERVER"
DOC_PORT=$(listening_port "$TMP/doc-server.out" "$DOC_SERVER")
fetches() { cat "$TMP/fetches" 2>/dev/null || echo 0; }
doc_url() { # PATH: an authorization request of the document https://127.0.0.1:DOC_PORT/PATH
    authorize_url | sed "s|client_id=mcp-app|client_id=https%3A%2F%2F127.0.0.1%3A$DOC_PORT%2F$1|"
}
SAVED_COOKIES=$COOKIES
COOKIES=""
browse "$(doc_url app.json)"
expect_eq "a client document whose server fails: a page, try again" 503 "$(status)"
expect_eq "  one fetch" 1 "$(fetches)"
browse "$(doc_url app.json)"
expect_eq "  named again within min_cache: the same page" 503 "$(status)"
expect_eq "  and no fetch" 1 "$(fetches)"
# 150 refusals from 127.0.0.3 at once, over its budget (100 at once, 1 a
# second), then another document named from there
flood=()
for i in $(seq 150); do flood+=(-o /dev/null "$BASE/oauth2/authorize?client_id=nobody"); done
expect_eq "another document named from an address over its refusal budget: 429" 429 \
    "$(curl -s --interface 127.0.0.3 -w '%{http_code}\n' "${flood[@]}" -o /dev/null \
        "$(doc_url other.json)" | tail -n 1)"
expect_eq "  and no fetch" 1 "$(fetches)"
sleep 2 # the flood's refusals, counted, are written at the end of their second

# (review s35, finding 5) a document is fetched on a thread of its own, not
# on the HTTP worker: a server that takes the connection and never answers
# holds that thread, while the daemon's one worker serves everyone else;
# once the server lets go, the sign-in is answered (the fetch failed: 503)
hanging_document() { # NAME ADDRESS [queued]: a sign-in from ADDRESS at a document whose
    # server takes the connection and answers nothing until $TMP/NAME-release
    # exists; its status goes to $TMP/NAME-status, its curl's PID to
    # HANGING_SIGNIN. Waits until the server is asked, unless queued
    python3 - "$TMP/$1-held" "$TMP/$1-release" >"$TMP/$1-server.out" 2>&1 <<'PY' &
import os, socket, sys, time
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(8)
print("listening", server.getsockname()[1], flush=True)
conn, _ = server.accept()
open(sys.argv[1], "w").close()
while not os.path.exists(sys.argv[2]):
    time.sleep(0.05)
conn.close()
PY
    local server=$! port
    PIDS="$PIDS $server"
    port=$(listening_port "$TMP/$1-server.out" "$server")
    curl -s -o /dev/null -w '%{http_code}' --interface "$2" \
        "$(authorize_url | sed "s|client_id=mcp-app|client_id=https%3A%2F%2F127.0.0.1%3A$port%2F$1.json|")" \
        >"$TMP/$1-status" &
    HANGING_SIGNIN=$!
    [ "${3:-}" = queued ] && return 0
    for i in $(seq 1 200); do [ -e "$TMP/$1-held" ] && break; sleep 0.05; done
}
hanging_document slow 127.0.0.5
SLOW_SIGNIN=$HANGING_SIGNIN
check "a document whose server does not answer: being fetched" test -e "$TMP/slow-held"
expect_eq "  meanwhile the one worker answers /healthz" 200 \
    "$(curl -s -m 30 -o /dev/null -w '%{http_code}' "$BASE/healthz")"
expect_eq "  and a token request" 200 \
    "$(curl -s -m 30 -o /dev/null -w '%{http_code}' -u "research-agent:${SECRET[research-agent]}" \
        -d grant_type=client_credentials -d scope=mcp:call "$TOKEN_URL")"
check "  while the sign-in still waits for the document" kill -0 "$SLOW_SIGNIN"
touch "$TMP/slow-release"
wait "$SLOW_SIGNIN"
expect_eq "  which, the server gone, is a page: try again" 503 "$(cat "$TMP/slow-status")"

# (review s36) an address holds at most two of the places fetches wait in:
# with the one fetch thread held by its first, a second document named from
# 127.0.0.7 waits its turn, a third is refused at once, and another
# address's document still waits its turn
hanging_document a1 127.0.0.7
A1=$HANGING_SIGNIN
check "one address's first document: being fetched" test -e "$TMP/a1-held"
hanging_document a2 127.0.0.7 queued
A2=$HANGING_SIGNIN
check "  its second waits its turn" wait_for_log "$LOG" "a2.json: to be fetched, its request set aside"
expect_eq "  its third, while two wait or run: refused at once, a page" 503 \
    "$(curl -s -m 20 -o /dev/null -w '%{http_code}' --interface 127.0.0.7 \
        "$(authorize_url | sed 's|client_id=mcp-app|client_id=https%3A%2F%2F127.0.0.1%3A9%2Fa3.json|')")"
check "  while its first is still fetched" kill -0 "$A1"
check "  the log says why" grep -q "2 client documents named from this address are being fetched" "$LOG"
hanging_document b1 127.0.0.8 queued
B1=$HANGING_SIGNIN
check "  another address's waits its turn" kill -0 "$B1"
touch "$TMP/a1-release" "$TMP/a2-release" "$TMP/b1-release"
wait "$A1" "$A2" "$B1"
expect_eq "  each answered once the fetches failed" "503 503 503" \
    "$(cat "$TMP/a1-status") $(cat "$TMP/a2-status") $(cat "$TMP/b1-status")"
COOKIES=$SAVED_COOKIES

# --- clients that described themselves: no redirect before anyone acted ------------------
# (RFC 9700 §4.11.2) their redirect URI is anyone's choice, so a link to the
# broker must not send the browser there at once: errors before any
# interaction are a page at the broker; an operator's client keeps them
self_app=$(curl -s -H 'Content-Type: application/json' "$BASE/oauth2/register" -d \
    "{\"redirect_uris\":[\"$REDIRECT\"],\"token_endpoint_auth_method\":\"none\",\"client_name\":\"Self\",\"grant_types\":[\"authorization_code\"]}")
SELF_APP=$(json_get "$self_app" client_id)
check "a client registers itself" test -n "$SELF_APP"
self_url() { authorize_url "${1:-}" | sed "s/client_id=mcp-app/client_id=$SELF_APP/"; }
COOKIES=""
browse "$(self_url | sed 's/response_type=code/response_type=token/')"
expect_eq "a self-registered client's malformed request: an error page" 400 "$(status)"
check "  never a redirect" test -z "$(location)"
expect_contains "  that names the error" "unsupported_response_type" "$(cat "$TMP/b")"
browse "$(self_url "&prompt=none")"
expect_eq "prompt=none without a session, a self-registered client: an error page" 400 "$(status)"
check "  never a redirect" test -z "$(location)"
expect_contains "  audited" '"error":"login_required"' "$(grep '"event":"authorize.refused"' "$STATE"/audit/*.jsonl | tail -n 1)"
browse "$(self_url "&login_hint=dora")"
expect_contains "  a valid request still goes to the IdP" "/login/backend-corp/callback" "$(location)"
COOKIES=$SESSION_COOKIES
# nor for a signed-in user (review s35, finding 3): the session answers at
# once, so the mapping's refusals that need no interaction (a user of another
# tenant, nothing a rule gives) come before anyone acted too
browse "$(authorize_url)"
answered=$(location)
check "the advisor's session answers at once" test "$(status)" = 200 -o "${answered%%\?*}" = "$REDIRECT"
browse "$(self_url)"
expect_eq "signed in, a self-registered client of another tenant: an error page" 400 "$(status)"
check "  never a redirect" test -z "$(location)"
expect_contains "  that names the error" "access_denied" "$(cat "$TMP/b")"
expect_contains "  audited" '"error":"access_denied"' "$(grep '"event":"authorize.refused"' "$STATE"/audit/*.jsonl | tail -n 1)"
browse "$(self_url | sed 's/scope=mcp:call/scope=trade:execute/')"
expect_eq "signed in, a self-registered client, a scope no rule gives: an error page" 400 "$(status)"
check "  never a redirect" test -z "$(location)"
expect_contains "  that names the error" "invalid_scope" "$(cat "$TMP/b")"
# an operator's client keeps its redirect
"${CTL[@]}" client create elsewhere-app --tenant other --public --redirect-uri "$REDIRECT" \
    --grant-type authorization_code --scope "mcp:call trade:execute" --audience "$CAL" >/dev/null 2>&1
browse "$(authorize_url | sed 's/client_id=mcp-app/client_id=elsewhere-app/')"
expect_eq "signed in, an operator's client of another tenant: access_denied to the client" access_denied \
    "$(query_param "$(location)" error)"
browse "$(authorize_url | sed 's/client_id=mcp-app/client_id=elsewhere-app/; s/scope=mcp:call/scope=trade:execute/')"
expect_eq "signed in, an operator's client, a scope no rule gives: invalid_scope to the client" invalid_scope \
    "$(query_param "$(location)" error)"
COOKIES=$SESSION_COOKIES

# --- a sensitive scope lasts no longer than its login, refresh or not ---------------------
"${CTL[@]}" client create trade-app --public --redirect-uri "$REDIRECT" \
    --grant-type authorization_code --grant-type refresh_token \
    --scope "mcp:call trade:execute" --audience "$CAL" >/dev/null 2>&1
COOKIES=""
browse "$(authorize_url "&login_hint=tom%2Btrader" | sed 's/client_id=mcp-app/client_id=trade-app/; s/scope=mcp:call/scope=mcp:call%20trade:execute/')"
browse "$(location)"
browse "$BASE/consent" -d "handle=$(form_value handle)" -d "csrf=$(form_value csrf)" -d decision=allow
token -d grant_type=authorization_code -d client_id=trade-app -d "code=$(query_param "$(location)" code)" \
    -d "code_verifier=$VERIFIER" -d "redirect_uri=$REDIRECT" >/dev/null
expect_eq "a fresh login: the sensitive scope is granted" "mcp:call trade:execute" \
    "$(json_get "$(jwt_claims "$(json_get "$(cat "$TMP/t")" access_token)")" scope)"
RT=$(json_get "$(cat "$TMP/t")" refresh_token)
sleep 6
expect_eq "past sensitive_max_authn_age, asking for it alone: 400" 400 \
    "$(token -d grant_type=refresh_token -d client_id=trade-app -d "refresh_token=$RT" -d scope=trade:execute)"
expect_eq "  a refresh still works" 200 "$(token -d grant_type=refresh_token -d client_id=trade-app -d "refresh_token=$RT")"
expect_eq "  without the sensitive scope" "mcp:call" \
    "$(json_get "$(jwt_claims "$(json_get "$(cat "$TMP/t")" access_token)")" scope)"
RT=$(json_get "$(cat "$TMP/t")" refresh_token)
"${CTL[@]}" client set trade-app --grant-type authorization_code >/dev/null 2>&1
expect_eq "refresh_token taken from the client's grant types: its family refreshes no more: 400" 400 \
    "$(token -d grant_type=refresh_token -d client_id=trade-app -d "refresh_token=$RT")"
expect_contains "  unauthorized_client" unauthorized_client "$(cat "$TMP/t")"
"${CTL[@]}" client set trade-app --grant-type authorization_code --grant-type refresh_token >/dev/null 2>&1
expect_eq "  given back, the refresh token was not spent: 200" 200 \
    "$(token -d grant_type=refresh_token -d client_id=trade-app -d "refresh_token=$RT")"

# --- refusals -----------------------------------------------------------------------
COOKIES=""
browse "$BASE/oauth2/authorize?response_type=code&client_id=nobody&redirect_uri=$REDIRECT&code_challenge=$CHALLENGE&code_challenge_method=S256"
expect_eq "an unknown client: an error page" 400 "$(status)"
check "  never a redirect" test -z "$(location)"
browse "$BASE/oauth2/authorize?response_type=code&client_id=mcp-app&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&code_challenge=$CHALLENGE&code_challenge_method=S256"
expect_eq "a redirect_uri not registered: an error page" 400 "$(status)"
check "  never a redirect (no open redirect)" test -z "$(location)"
browse "$(authorize_url | sed 's/&code_challenge=[^&]*//')"
expect_eq "no code_challenge: an error to the client" 302 "$(status)"
expect_eq "  invalid_request" invalid_request "$(query_param "$(location)" error)"
expect_eq "  with the state" st-123 "$(query_param "$(location)" state)"
browse "$(authorize_url | sed 's/code_challenge_method=S256/code_challenge_method=plain/')"
expect_eq "PKCE plain is refused" invalid_request "$(query_param "$(location)" error)"
browse "$(authorize_url "&prompt=none")"
expect_eq "prompt=none without a session: login_required" login_required "$(query_param "$(location)" error)"
browse "$(authorize_url "&scope=admin:all" | sed 's/scope=mcp:call&//')"
expect_eq "a scope the client may not have: invalid_scope" invalid_scope "$(query_param "$(location)" error)"
browse "$(authorize_url "&login_hint=error")"
browse "$(location)"
expect_eq "the IdP refuses: access_denied to the client" access_denied "$(query_param "$(location)" error)"
# the tenant is a boundary, as at the token exchange: a client of another
# tenant does not sign in the people the rules put in "default"
"${CTL[@]}" client create other-tenant-app --tenant other --public --redirect-uri "$REDIRECT" \
    --grant-type authorization_code --scope "mcp:call" --audience "$CAL" >/dev/null 2>&1
browse "$(authorize_url "&login_hint=dora" | sed 's/client_id=mcp-app/client_id=other-tenant-app/')"
browse "$(location)"
expect_eq "a client of another tenant than the user's: access_denied to the client" access_denied \
    "$(query_param "$(location)" error)"
expect_eq "  that says why" "the user's tenant is not the client's" "$(query_param "$(location)" error_description)"
check "  audited login.refused" bash -c "grep '\"event\":\"login.refused\"' '$STATE'/audit/*.jsonl | grep -q \"the user's tenant is not the client's\""
COOKIES=""
browse "$(authorize_url "&login_hint=forged")"
browse "$(location)"
expect_eq "a forged IdP answer: a page at the broker, not passed on" 400 "$(status)"
expect_contains "  that says so" "This sign-in answer was refused" "$(cat "$TMP/b")"
check "  no redirect to the application" test -z "$(location)"
browse "$(authorize_url "&login_hint=mallory")"
IDP=$(location)
COOKIES=""
browse "$IDP"
expect_eq "the callback in another browser (no login cookie): a page" 400 "$(status)"
browse "$(authorize_url "&login_hint=bob")"
IDP=$(location)
browse "$IDP"
browse "$IDP"
expect_eq "the callback twice: the second is refused" 400 "$(status)"
browse "$(authorize_url "&login_hint=carol&prompt=consent")"
browse "$(location)"
HANDLE=$(form_value handle)
CSRF=$(form_value csrf)
browse "$BASE/consent" -d "handle=$HANDLE" -d "csrf=$CSRF" -d decision=deny
expect_eq "consent denied: access_denied to the client" access_denied "$(query_param "$(location)" error)"

# --- logout -------------------------------------------------------------------------
browse "$BASE/logout"
expect_contains "logout: a form" 'name="csrf"' "$(cat "$TMP/b")"
LOGOUT_CSRF=$(form_value csrf)
browse "$BASE/logout" -d "csrf=$LOGOUT_CSRF"
expect_contains "signed out" "signed out" "$(cat "$TMP/b")"
browse "$(authorize_url)"
expect_contains "after logout, the IdP again" "/login/backend-corp/callback" "$(location)"

# --- a sign-in ends the session it replaces (review s33, finding 5) -------------------------
# sign_in HINT [QUERY]: a sign-in in this browser through consent; its code in $SIGNED_IN
# (not a command substitution: the browser's cookies must stay)
sign_in() {
    browse "$(authorize_url "&login_hint=$1${2:-}")"
    browse "$(location)"
    if [ "$(status)" = 200 ]; then
        browse "$BASE/consent" -d "handle=$(form_value handle)" -d "csrf=$(form_value csrf)" \
            -d decision=allow
    fi
    SIGNED_IN=$(query_param "$(location)" code)
}
redeemed_refresh() { # CODE: its refresh token
    token -d grant_type=authorization_code -d client_id=mcp-app -d "code=$1" \
        -d "code_verifier=$VERIFIER" -d "redirect_uri=$REDIRECT" >/dev/null
    json_get "$(cat "$TMP/t")" refresh_token
}
COOKIES=""
sign_in alice
RA=$(redeemed_refresh "$SIGNED_IN")
check "alice signs in and holds a refresh token" test -n "$RA"
ALICE_BROWSER=$COOKIES
browse "$(authorize_url)"
expect_contains "  her session answers /authorize: a code" "$REDIRECT?code=" "$(location)"
sign_in bob "&prompt=login"
check "  bob signs in over her session in the same browser (prompt=login)" test -n "$SIGNED_IN"
COOKIES=$ALICE_BROWSER
browse "$(authorize_url)"
expect_contains "  alice's old session cookie no longer answers /authorize: the IdP" \
    "/login/backend-corp/callback" "$(location)"
expect_eq "  and what it gave another person ended with it: her refresh token" 400 \
    "$(token -d grant_type=refresh_token -d client_id=mcp-app -d "refresh_token=$RA")"
ended=$(grep -h '"event":"session.ended"' "$STATE"/audit/*.jsonl | tail -n 1)
expect_contains "  audited session.ended" '"reason":"replaced"' "$ended"
expect_contains "  for alice's session" '"sub":"advisor-alice"' "$ended"
COOKIES=""
sign_in alice
RA=$(redeemed_refresh "$SIGNED_IN")
ALICE_BROWSER=$COOKIES
sign_in alice "&prompt=login"
check "alice signs in again over her own session (prompt=login)" test -n "$SIGNED_IN"
COOKIES=$ALICE_BROWSER
browse "$(authorize_url)"
expect_contains "  her old session cookie no longer answers /authorize" \
    "/login/backend-corp/callback" "$(location)"
expect_eq "  but the same person keeps what applications got: her refresh token" 200 \
    "$(token -d grant_type=refresh_token -d client_id=mcp-app -d "refresh_token=$RA")"

# --- a user the IdP changed, and an admin's revocation -------------------------------------
family_of() { # login_hint: a fresh sign-in's refresh token
    COOKIES=""
    browse "$(authorize_url "&login_hint=$1&prompt=login")"
    browse "$(location)"
    if [ "$(status)" = 200 ]; then
        browse "$BASE/consent" -d "handle=$(form_value handle)" -d "csrf=$(form_value csrf)" \
            -d decision=allow
    fi
    token -d grant_type=authorization_code -d client_id=mcp-app \
        -d "code=$(query_param "$(location)" code)" -d "code_verifier=$VERIFIER" \
        -d "redirect_uri=$REDIRECT" >/dev/null
    json_get "$(cat "$TMP/t")" access_token >"$TMP/access"
    json_get "$(cat "$TMP/t")" refresh_token
}
RD=$(family_of dave)
AD=$(cat "$TMP/access")
check "dave signs in and holds a refresh token" test -n "$RD"
COOKIES=""
browse "$(authorize_url "&login_hint=dave%2Bintern%40bank.example")"
browse "$(location)"
expect_eq "the IdP made dave an intern: no rule admits him" 403 "$(status)"
expect_eq "  and his refresh family is ended" 400 "$(token -d grant_type=refresh_token -d client_id=mcp-app -d "refresh_token=$RD")"
sleep 1.2
expect_eq "  and his access token" 401 "$(gate "$AD")"
RE=$(family_of erin)
AE=$(cat "$TMP/access")
expect_eq "erin's access token passes the gateway" 200 "$(gate "$AE")"
XE=$(json_get "$(exchange research-agent "$AE")" access_token)
expect_eq "  and so does the agent's, exchanged from it" 200 "$(gate "$XE")"
# a code of hers not redeemed yet, held over the revocation (review s32, finding 5)
COOKIES=""
browse "$(authorize_url "&login_hint=erin&prompt=login")"
browse "$(location)"
[ "$(status)" = 200 ] && browse "$BASE/consent" -d "handle=$(form_value handle)" \
    -d "csrf=$(form_value csrf)" -d decision=allow
HELD=$(query_param "$(location)" code)
check "a code of erin's, held" test -n "$HELD"
# her family, its access token and the agent's
expect_contains "mandatectl user revoke" "1 refresh tokens revoked, 3 revocations recorded" \
    "$("${CTL[@]}" user revoke advisor-erin 2>&1)"
sleep 1.2
expect_eq "  and her access token is refused at once" 401 "$(gate "$AE")"
expect_eq "  and the agent's exchanged from it" 401 "$(gate "$XE")"
expect_eq "  and her refresh token is refused" 400 "$(token -d grant_type=refresh_token -d client_id=mcp-app -d "refresh_token=$RE")"
expect_eq "  and the code issued before it is refused" 400 "$(token -d grant_type=authorization_code \
    -d client_id=mcp-app -d "code=$HELD" -d "code_verifier=$VERIFIER" -d "redirect_uri=$REDIRECT")"
expect_contains "  invalid_grant" '"error":"invalid_grant"' "$(cat "$TMP/t")"
check "  audited" bash -c "cat '$STATE'/audit/*.jsonl | grep -q 'the user was revoked after the code was issued'"
browse "$(authorize_url)"
expect_contains "  and her browser session is ended: the IdP again" "/login/backend-corp/callback" "$(location)"
check "  a sign-in made again afterwards redeems its code" test -n "$(family_of erin)"

# --- sign-ins at clients that described themselves: an allowance per address over all ------
# (review s35, finding 4) each client has its own allowance per address, and
# anyone can make new ones (a registration, a document URL): the starts of
# all such clients from one address are held to the default allowance too
# (rate_limit.token_rate, token_burst: 1/s, 3 at once here), pushed or not
self_apps=()
for i in $(seq 1 14); do
    self_apps+=("$(json_get "$(curl -s -H 'Content-Type: application/json' "$BASE/oauth2/register" -d \
        "{\"redirect_uris\":[\"$REDIRECT\"],\"token_endpoint_auth_method\":\"none\",\"grant_types\":[\"authorization_code\"]}")" client_id)")
done
check "fourteen clients register themselves" test "${#self_apps[@]}" = 14 -a -n "${self_apps[13]}"
sed -i 's/^rate_limit = { refusal_rate = 1; };/rate_limit = { refusal_rate = 1; token_rate = 1; token_burst = 3; };/' "$CONF"
kill -HUP "$DAEMON_PID"
wait_for_log "$LOG" "reloaded:"
tally() { # the last answer: a sign-in started (302) or held (429)
    case "$(status)" in
    302) started=$((started + 1)) ;;
    429) limited=$((limited + 1)) ;;
    esac
}
COOKIES=""
started=0 limited=0 t0=$(date +%s)
for app in "${self_apps[@]:0:8}"; do
    browse "$(authorize_url "&login_hint=dora" | sed "s/client_id=mcp-app/client_id=$app/")"
    tally
done
elapsed=$(($(date +%s) - t0))
check "eight sign-ins at eight self-registered clients from one address: some 429" test "$limited" -gt 0
check "  no more started than the allowance gives ($started in ${elapsed}s)" \
    test "$started" -le $((3 + elapsed + 1))
expect_eq "  every one answered" 8 "$((started + limited))"
browse "$(authorize_url "&login_hint=dora")"
expect_eq "  an operator's client from that address meanwhile: to the IdP" 302 "$(status)"
# a pushed request is held when it is redeemed (its push only per client)
started=0 limited=0 t0=$(date +%s)
for app in "${self_apps[@]:8}"; do
    curl -s -o "$TMP/p" -d response_type=code -d "client_id=$app" -d "redirect_uri=$REDIRECT" \
        -d scope=mcp:call -d "code_challenge=$CHALLENGE" -d code_challenge_method=S256 \
        -d login_hint=dora "$BASE/oauth2/par"
    browse "$BASE/oauth2/authorize?client_id=$app&request_uri=$(json_get "$(cat "$TMP/p")" request_uri | sed 's|:|%3A|g')"
    tally
done
elapsed=$(($(date +%s) - t0))
check "six pushed sign-ins at six more such clients, redeemed: some 429 ($started started in ${elapsed}s)" \
    test "$limited" -gt 0 -a "$started" -le $((elapsed + 1))
expect_eq "  every one answered" 6 "$((started + limited))"
# and a client document named from an address past that allowance is not
# fetched (its sign-in start would be refused anyway): from 127.0.0.4, four
# starts at self-registered clients spend the allowance (3 at once), then
# twenty never-seen documents, all in one go; a failed fetch takes nothing
# from the allowance, so only its refill (1 a second) lets a fetch through
FETCHED=$(fetches)
flood=()
for app in "${self_apps[@]:0:4}"; do
    flood+=(-o /dev/null "$(authorize_url "&login_hint=dora" | sed "s/client_id=mcp-app/client_id=$app/")")
done
for i in $(seq 1 20); do flood+=(-o /dev/null "$(doc_url "flood-$i.json")"); done
t0=$(date +%s)
answers=$(curl -s --interface 127.0.0.4 -w '%{http_code} ' "${flood[@]}")
elapsed=$(($(date +%s) - t0))
expect_eq "  twenty never-seen documents from an address past it: each answered" 24 "$(wc -w <<<"$answers")"
check "  at most one fetch a second ($(($(fetches) - FETCHED)) in ${elapsed}s: $answers)" \
    test "$(($(fetches) - FETCHED))" -le $((elapsed + 1))
COOKIES=$SESSION_COOKIES

# --- the audit trail ---------------------------------------------------------------------
trail=$(cat "$STATE"/audit/*.jsonl)
for event in authorize.request login.started login.finished consent.asked consent.granted \
    consent.denied code.issued code.redeemed code.replayed refresh.rotated refresh.reused \
    login.refused session.ended user.disabled; do
    expect_contains "audited: $event" "\"event\":\"$event\"" "$trail"
done
check "no code, refresh token or cookie in the trail" \
    bash -c "! grep -qE 'mrt_|\"code\":|__Host-' '$STATE'/audit/*.jsonl"
check "nor in the log" bash -c "! grep -qE 'mrt_[A-Za-z0-9_-]{20}' '$LOG'"

# (review s36) stopped while a document is fetched: past drain_timeout the
# fetch under way is let finish and its sign-in answered before the HTTP
# server stops (libmicrohttpd aborts the process when stopped with a
# connection suspended, as the sign-in's is while its audit record is
# written)
hanging_document last 127.0.0.6
check "stopped with a document being fetched" test -e "$TMP/last-held"
kill -TERM "$DAEMON_PID"
check "  drained, past drain_timeout" wait_for_log "$LOG" "requests still running after 1s"
touch "$TMP/last-release"
wait "$DAEMON_PID"
DAEMON_STATUS=$?
PIDS=$(echo "$PIDS" | sed "s/ $DAEMON_PID\b//")
wait "$HANGING_SIGNIN"
check "  its sign-in answered (a page, try again), or cut off by the stop: $(cat "$TMP/last-status")" \
    grep -qx "503\|000" "$TMP/last-status"
check "  the daemon stopped" grep -q "mandated stopped" "$LOG"
expect_eq "stops cleanly" 0 "$DAEMON_STATUS"
check "no sanitizer report" bash -c "! grep -q 'Sanitizer' '$LOG'"
finish
