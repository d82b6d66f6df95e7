#!/bin/bash
# Token exchange of our own access tokens (RFC 8693) through the live
# daemon: issue 20's finding reproduced as reported (agent-d turns agent-a's
# token for the calendar into one for its own audience) and refused; the
# delegation rules that allow it; a chain A -> B -> C -> E nested in act as
# seen in the JWT and by introspection, in both formats; a chain past
# delegation.max_depth refused; scopes and lifetime never beyond the subject
# token's; every refusal audited with the check that failed.
. "${MANDATE_SRCDIR:-.}/tests/e2e/lib.sh"

new_state
CAL=https://mcp.example/cal
OTHER=https://other.example/api
printf 'kind = "format";\nplugin = "opaque";\n' >"$STATE/mandate.d/format-opaque.conf"
cat >>"$CONF" <<CONF
targets = ( { name = "cal"; paths = ["/mcp"]; audience = "$CAL"; scopes = ["mcp:call"]; },
            { name = "other"; paths = ["/api"]; audience = "$OTHER"; } );
CONF
daemon_up
issuer_is_base

declare -A SECRET

new_client agent-a --ttl 300
for id in agent-b agent-d agent-e agent-f; do new_client "$id" --ttl 3600; done
new_client agent-c --ttl 3600 --format format-opaque
new_client gateway --introspect

gate() { # TOKEN URI: the gateway check's status
    curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $1" -H "X-Original-URI: $2" \
        "$BASE/gateway/check"
}
status() { cat "$TMP/status"; }
lacks() { ! grep -q -- "$1" <<<"$2"; } # PATTERN TEXT

# agent-a's own token, for the calendar only
out=$(curl -s -u "agent-a:${SECRET[agent-a]}" -d grant_type=client_credentials \
    -d scope=mcp:call --data-urlencode "resource=$CAL" "$TOKEN_URL")
TA=$(json_get "$out" access_token)
check "agent-a has a token" test -n "$TA"
expect_contains "for the calendar" "\"aud\":\"$CAL\"" "$(jwt_claims "$TA")"

# --- the finding, as reported: refused -------------------------------------------
out=$(exchange agent-d "$TA" --data-urlencode "resource=$OTHER")
expect_eq "agent-d exchanges agent-a's token for its own audience: 400" 400 "$(status)"
expect_eq "  invalid_grant" invalid_grant "$(json_get "$out" error)"
desc=$(json_get "$out" error_description)
expect_eq "  a clear description" "this client may not act for the subject_token's client" "$desc"
check "  that names no client nor rule" lacks 'agent-\|rule' "$desc"
check "  no token" lacks access_token "$out"
exchange agent-d "$TA" >/dev/null
expect_eq "nor for the token's own audience: another client's token needs a rule" 400 "$(status)"
check "the log says which check failed" wait_for_log "$LOG" \
    "token exchange refused: client_id=agent-d subject_client_id=agent-a: no delegation rule lets agent-d act for tokens of client agent-a"

# a client narrowing its own token needs no rule, but may not widen it
out=$(exchange agent-a "$TA" -d scope=mcp:call)
expect_eq "agent-a narrows its own token: 200" 200 "$(status)"
expect_contains "  acting as itself" '"act":{"sub":"agent-a"}' "$(jwt_claims "$(json_get "$out" access_token)")"
out=$(exchange agent-a "$TA" --data-urlencode "resource=$OTHER")
expect_eq "agent-a widens its own token to another of its audiences: 400" 400 "$(status)"
expect_eq "  invalid_target" invalid_target "$(json_get "$out" error)"

# --- delegation rules ----------------------------------------------------------------
cat >>"$CONF" <<CONF
delegation = {
  max_depth = 3;
  rules = (
    { name = "d-for-a"; actors = ["agent-d"]; clients = ["agent-a"]; audiences = ["$OTHER"]; },
    { name = "b-for-a"; actors = ["agent-b"]; clients = ["agent-a"]; },
    { name = "c-for-b"; actors = ["agent-c"]; clients = ["agent-b"]; },
    { name = "e-for-c"; actors = ["agent-e"]; clients = ["agent-c"]; },
    { name = "f-for-e"; actors = ["agent-f"]; clients = ["agent-e"]; }
  );
};
CONF
kill -HUP "$DAEMON_PID"
check "reloaded with delegation rules" wait_for_log "$LOG" "reloaded:" 2

out=$(exchange agent-d "$TA" --data-urlencode "resource=$OTHER")
expect_eq "with a rule that lists the audience: 200" 200 "$(status)"
c=$(jwt_claims "$(json_get "$out" access_token)")
expect_contains "  sub stays agent-a" '"sub":"agent-a"' "$c"
expect_contains "  for the other audience" "\"aud\":\"$OTHER\"" "$c"
expect_contains "  client_id agent-d" '"client_id":"agent-d"' "$c"
expect_contains "  act agent-d" '"act":{"sub":"agent-d"}' "$c"
out=$(exchange agent-b "$TA" --data-urlencode "resource=$OTHER")
expect_eq "a rule that admits the actor but lists no audience: 400" 400 "$(status)"
expect_eq "  invalid_target" invalid_target "$(json_get "$out" error)"
exchange agent-c "$TA" >/dev/null
expect_eq "a rule for another client's tokens is no rule for these: 400" 400 "$(status)"

# --- a chain: A -> B -> C (opaque) -> E, nested; F past max_depth ----------------
out=$(exchange agent-b "$TA" -d scope=mcp:call)
expect_eq "B acts for A: 200" 200 "$(status)"
TB=$(json_get "$out" access_token)
cb=$(jwt_claims "$TB")
expect_contains "  act B" '"act":{"sub":"agent-b"}' "$cb"
expect_contains "  the calendar still" "\"aud\":\"$CAL\"" "$cb"
check "  never outlives A's token" test "$(json_get "$cb" exp)" -le "$(json_get "$(jwt_claims "$TA")" exp)"
check "  though B's tokens live an hour" test "$(json_get "$out" expires_in)" -le 300

out=$(exchange agent-c "$TB")
expect_eq "C acts for B: 200" 200 "$(status)"
TC=$(json_get "$out" access_token)
expect_contains "  an opaque token (C's format)" "mdo_" "$TC"
i=$(introspect "$TC")
expect_contains "  introspection: active" '"active":true' "$i"
expect_contains "  introspection nests act: C, then B" \
    '"act":{"sub":"agent-c","act":{"sub":"agent-b"}}' "$i"
expect_contains "  sub stays agent-a" '"sub":"agent-a"' "$i"
expect_eq "  the gateway lets it call the calendar" 200 "$(gate "$TC" /mcp)"
expect_eq "  but not the other tool server" 401 "$(gate "$TC" /api)"

out=$(exchange agent-e "$TC")
expect_eq "E acts for C: 200 (3 actors: max_depth)" 200 "$(status)"
TE=$(json_get "$out" access_token)
ce=$(jwt_claims "$TE")
expect_contains "  the JWT nests act: E, C, B" \
    '"act":{"sub":"agent-e","act":{"sub":"agent-c","act":{"sub":"agent-b"}}}' "$ce"
expect_contains "  introspection too" \
    '"act":{"sub":"agent-e","act":{"sub":"agent-c","act":{"sub":"agent-b"}}}' "$(introspect "$TE")"
check "  never outlives A's token" test "$(json_get "$ce" exp)" -le "$(json_get "$(jwt_claims "$TA")" exp)"
out=$(exchange agent-e "$TE" -d scope=mcp:call)
expect_eq "E narrows its own chained token: 200, no hop added" 200 "$(status)"
expect_contains "  the same chain" \
    '"act":{"sub":"agent-e","act":{"sub":"agent-c","act":{"sub":"agent-b"}}}' \
    "$(jwt_claims "$(json_get "$out" access_token)")"

out=$(exchange agent-f "$TE")
expect_eq "F acts for E: a fourth actor, past max_depth: 400" 400 "$(status)"
expect_eq "  invalid_grant" invalid_grant "$(json_get "$out" error)"
check "  the log says so" wait_for_log "$LOG" "more than delegation.max_depth 3"

# --- nothing grows ------------------------------------------------------------------
out=$(exchange agent-c "$TB" --data-urlencode "scope=mcp:call gateway:invoke")
expect_eq "a scope beyond the subject token's: 400" 400 "$(status)"
expect_eq "  invalid_scope" invalid_scope "$(json_get "$out" error)"
out=$(exchange agent-c "$TB")
expect_eq "no scope asked: the subject token's" "mcp:call" "$(json_get "$out" scope)"

# --- the audit trail -----------------------------------------------------------------
stop_daemon
expect_eq "clean stop" 0 "$DAEMON_STATUS"
trail=$(cat "$STATE"/audit/audit-*.jsonl)
refused=$(printf '%s\n' "$trail" | grep '"event":"token.refused"')
expect_contains "the attack is recorded with the check that failed" \
    '"delegation":"actor_not_allowed"' "$refused"
expect_contains "  and why" "no delegation rule lets agent-d act for tokens of client agent-a" \
    "$refused"
expect_contains "the chain too deep" '"delegation":"too_deep"' "$refused"
expect_contains "a widened audience" '"delegation":"audience"' "$refused"
expect_contains "a widened scope" '"delegation":"scope"' "$refused"
issued=$(printf '%s\n' "$trail" | grep '"event":"token.issued"')
expect_contains "an admitted exchange names its rule" '"delegation_rule":"d-for-a"' "$issued"
expect_contains "and the actors before the acting one" '"prior_actors":"agent-c agent-b"' "$issued"
check "no sanitizer report" bash -c "! grep -q 'Sanitizer' '$LOG'"
finish
