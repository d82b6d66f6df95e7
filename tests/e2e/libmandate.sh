#!/bin/bash
# libmandate against the real daemon: tests/libmandate-probe gets a token
# with mandate_token_source and checks it with mandate_verifier (right
# audience and scope, then a scope it lacks), rotates the keys with
# mandatectl, and checks that a token under the new key verifies.
. "${MANDATE_SRCDIR:-.}/tests/e2e/lib.sh"

PROBE="$BUILDDIR/tests/libmandate-probe"
AUDIENCE=https://mcp.example/market-calendar
new_state
daemon_up

out=$("${CTL[@]}" client create --prefix probe --scope "gateway:invoke mcp:call" \
    --default-scope "mcp:call" --audience "$AUDIENCE" 2>/dev/null)
expect_eq "client create exits 0" 0 "$?"
ID=$(printf '%s\n' "$out" | sed -n 's/^client_id: //p')
SECRET=$(printf '%s\n' "$out" | client_secret)

out=$(MANDATE_CLIENT_SECRET="$SECRET" "$PROBE" "$BASE/oauth2/token" "$ID" "$BASE" "$AUDIENCE" \
    -- "${CTL[@]}" keys rotate 2>&1)
status=$?
printf '%s\n' "$out" | sed 's/^/  probe: /'
expect_eq "the probe passes" 0 "$status"
expect_contains "it verified a token under the rotated key" "ok: exactly one refetch" "$out"
check "the secret is not in its output" bash -c "! grep -qF -- '$SECRET' <<<\"\$1\"" _ "$out"

stop_daemon
expect_eq "clean stop" 0 "$DAEMON_STATUS"
check "no sanitizer report" bash -c "! grep -q 'Sanitizer' '$LOG'"
finish
