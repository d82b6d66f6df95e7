#!/bin/bash
# Browser clients of other origins (the MCP Inspector, a single-page app)
# call the metadata, JWKS, token, revocation and registration endpoints
# themselves: those answer CORS preflights and carry
# Access-Control-Allow-Origin, never with credentials; the pages a person
# sees and the servers' endpoints never do. server.cors_origins narrows the
# origins; server.cors = false turns it off (core/cors.c).
. "$(dirname "$0")/lib.sh"

new_state
daemon_up

headers() { # curl args: the answer's headers, lowercased names
    curl -s -o /dev/null -D - "$@" | tr -d '\r' | sed 's/^\([^:]*\):/\L\1:/'
}
ORIGIN="https://inspector.example"

h=$(headers -H "Origin: $ORIGIN" "$BASE/.well-known/oauth-authorization-server")
expect_contains "metadata: any origin may read it" "access-control-allow-origin: *" "$h"
expect_contains "  and the challenge header is exposed" "access-control-expose-headers: WWW-Authenticate" "$h"
check "  never with credentials" bash -c "! grep -qi 'allow-credentials' <<<'$h'"
h=$(headers -X OPTIONS -H "Origin: $ORIGIN" -H "Access-Control-Request-Method: POST" \
    -H "Access-Control-Request-Headers: authorization, content-type" "$BASE/oauth2/token")
expect_contains "token endpoint preflight: 204" "HTTP/1.1 204" "$h"
expect_contains "  POST allowed" "access-control-allow-methods: POST, OPTIONS" "$h"
expect_contains "  Authorization and Content-Type allowed" \
    "access-control-allow-headers: Authorization, Content-Type" "$h"
expect_contains "  any origin" "access-control-allow-origin: *" "$h"
h=$(headers -H "Origin: $ORIGIN" -d grant_type=client_credentials "$BASE/oauth2/token")
expect_contains "a refused token request is readable by the page" "access-control-allow-origin: *" "$h"
expect_contains "  (it is the refusal)" "HTTP/1.1 401" "$h"
h=$(headers -H "Origin: $ORIGIN" "$BASE/oauth2/jwks")
expect_contains "JWKS: any origin" "access-control-allow-origin: *" "$h"
h=$(headers -H "Origin: $ORIGIN" -d token=x "$BASE/oauth2/introspect")
check "introspection (a resource server's): no CORS" bash -c "! grep -q access-control <<<'$h'"
h=$(headers -X OPTIONS -H "Origin: $ORIGIN" "$BASE/oauth2/introspect")
expect_contains "  its preflight: 405" "HTTP/1.1 405" "$h"
h=$(headers -H "Origin: $ORIGIN" "$BASE/oauth2/authorize?client_id=x")
check "the authorization page: no CORS" bash -c "! grep -q access-control <<<'$h'"
h=$(headers -H "Origin: $ORIGIN" "$BASE/metrics")
check "metrics: no CORS" bash -c "! grep -q access-control <<<'$h'"
h=$(headers "$BASE/.well-known/oauth-authorization-server")
check "no Origin: no CORS headers" bash -c "! grep -q access-control <<<'$h'"

# only the origins named
sed -i "s|^server: {|server: {\n  cors_origins = [\"$ORIGIN\"];|" "$CONF"
kill -HUP "$DAEMON_PID"
check "reloaded with cors_origins" wait_for_log "$LOG" "reloaded:"
h=$(headers -H "Origin: $ORIGIN" "$BASE/.well-known/oauth-authorization-server")
expect_contains "a named origin is echoed" "access-control-allow-origin: $ORIGIN" "$h"
expect_contains "  and caches keep origins apart" "vary: Origin" "$h"
h=$(headers -X OPTIONS -H "Origin: https://evil.example" "$BASE/oauth2/token")
expect_contains "another origin's preflight: 204" "HTTP/1.1 204" "$h"
check "  without permission" bash -c "! grep -q access-control <<<'$h'"

# off
sed -i "s|^server: {|server: {\n  cors = false;|" "$CONF"
kill -HUP "$DAEMON_PID"
check "reloaded with cors off" wait_for_log "$LOG" "reloaded:" 2
h=$(headers -H "Origin: $ORIGIN" "$BASE/.well-known/oauth-authorization-server")
check "cors = false: no CORS headers" bash -c "! grep -q access-control <<<'$h'"

finish
