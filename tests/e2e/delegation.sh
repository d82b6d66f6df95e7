#!/bin/bash
# Delegation (issue 26) through the live daemon: who may act for whom (the
# rules, a client's own --may-act, may_act in the tokens, mandatectl
# delegation test), the whole chain (X-Mandate-Actor-Chain at the gateway
# check, a cycle refused, nothing wider or longer than the parent), and one
# revocation that stops the chain: A's token, B's from it, C's from B's, D's
# from C's; revoking A's (or a link in the middle, or disabling a client)
# makes every token below it inactive at introspection and the gateway.
# exchange.sh covers the nesting in both formats and max_depth.
. "${MANDATE_SRCDIR:-.}/tests/e2e/lib.sh"

new_state
CAL=https://mcp.example/cal
OTHER=https://other.example/api
cat >>"$CONF" <<CONF
targets = ( { name = "cal"; paths = ["/mcp"]; audience = "$CAL"; scopes = ["mcp:call"]; } );
delegation = {
  max_depth = 3;
  rules = (
    { name = "b-for-a"; actors = ["agent-b"]; clients = ["agent-a"]; },
    { name = "c-for-b"; actors = ["agent-c"]; clients = ["agent-b"]; },
    { name = "d-for-c"; actors = ["agent-d"]; clients = ["agent-c"]; },
    { name = "b-for-c"; actors = ["agent-b"]; clients = ["agent-c"]; },
    { name = "e-for-d"; actors = ["agent-e"]; clients = ["agent-d"]; },
    { name = "a-for-b"; actors = ["agent-a"]; clients = ["agent-b"]; },
    { name = "q-for-p"; actors = ["agent-q"]; clients = ["agent-p"]; scopes = ["mcp:call"]; },
    { name = "s-for-q"; actors = ["agent-s"]; clients = ["agent-q"]; max_depth = 1; }
  );
};
CONF
daemon_up
issuer_is_base

declare -A SECRET

new_client agent-a --ttl 300
for id in agent-b agent-c agent-d agent-e agent-m agent-x agent-p agent-q agent-s; do
    new_client "$id" --ttl 3600
done
new_client gateway --introspect
out=$("${CTL[@]}" client set agent-a --may-act agent-m 2>&1)
expect_contains "client set --may-act" "may act for its tokens: [\"agent-m\"]" "$out"
refuses() { ! "$@" 2>/dev/null; }
check "client set --may-act refuses what is no client id" \
    refuses "${CTL[@]}" client set agent-a --may-act 'a b'

status() { cat "$TMP/status"; }
gate() { # TOKEN: the gateway check's status for the calendar; headers in $TMP/gate.h
    curl -s -D "$TMP/gate.h" -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $1" \
        -H "X-Original-URI: /mcp" -H "X-Mandate-Actor-Chain: forged" "$BASE/gateway/check"
}
token_a() { token_for agent-a "${SECRET[agent-a]}" -d scope=mcp:call --data-urlencode "resource=$CAL"; }
hop() { # ACTOR TOKEN [curl args]: the exchanged token, or nothing
    json_get "$(exchange "$@")" access_token
}
jti() { json_get "$(jwt_claims "$1")" jti; }

# --- who may act for whom -------------------------------------------------------------
TA=$(token_a)
ca=$(jwt_claims "$TA")
expect_contains "A's token names who may act for it (rule b-for-a, A's --may-act)" \
    '"may_act":[{"sub":"agent-m"},{"sub":"agent-b"}]' "$ca"
expect_contains "introspection too" '"may_act":[{"sub":"agent-m"},{"sub":"agent-b"}]' \
    "$(introspect "$TA")"
printf '%s\n' "$TA" >"$TMP/ta"
out=$("${CTL[@]}" delegation test --subject-token "$TMP/ta" --actor agent-b --resource "$CAL")
expect_eq "mandatectl delegation test: B may (exit 0)" 0 $?
expect_contains "  by rule b-for-a" "admitted:      delegation rule b-for-a" "$out"
out=$("${CTL[@]}" delegation test --subject-token "$TMP/ta" --actor agent-x)
expect_eq "  X may not (exit 1)" 1 $?
expect_contains "  why, for each rule" "rule b-for-a: agent-x is not among its actors" "$out"
expect_contains "  and the token's may_act" "may_act does not name it" "$out"
out=$("${CTL[@]}" --json delegation test --subject-token - --actor agent-m <"$TMP/ta")
expect_contains "  M may, by A's may_act (--json, token on stdin)" '"rule": "may_act"' "$out"

out=$(exchange agent-x "$TA")
expect_eq "an actor outside may_act and every rule: 400" 400 "$(status)"
expect_eq "  invalid_grant" invalid_grant "$(json_get "$out" error)"
check "  the log says which rule failed" wait_for_log "$LOG" \
    "rule c-for-b: agent-x is not among its actors"
out=$(exchange agent-m "$TA")
expect_eq "M, named by A's may_act alone: 200" 200 "$(status)"
expect_contains "  act M" '"act":{"sub":"agent-m"}' "$(jwt_claims "$(json_get "$out" access_token)")"

# --- the chain: A -> B -> C -> D ------------------------------------------------------
TB=$(hop agent-b "$TA")
check "B acts for A" test -n "$TB"
cb=$(jwt_claims "$TB")
check "  B's token never outlives A's (A's live 300 s, B's 3600 s)" \
    test "$(json_get "$cb" exp)" -le "$(json_get "$ca" exp)"
out=$(exchange agent-b "$TA" --data-urlencode "resource=$OTHER")
expect_eq "B asks a wider audience than A's token: invalid_target" invalid_target "$(json_get "$out" error)"
out=$(exchange agent-b "$TA" --data-urlencode "scope=mcp:call gateway:invoke")
expect_eq "B asks a wider scope: invalid_scope" invalid_scope "$(json_get "$out" error)"
expect_contains "  B's token names where its chain began" '"origin_client_id":"agent-a"' "$cb"
TC=$(hop agent-c "$TB")
check "C acts for B" test -n "$TC"
expect_contains "  and C's, handed down" '"origin_client_id":"agent-a"' "$(jwt_claims "$TC")"
expect_contains "  introspection too" '"origin_client_id":"agent-a"' "$(introspect "$TC")"
TD=$(hop agent-d "$TC")
check "D acts for C" test -n "$TD"
expect_contains "  D's JWT nests act: D, C, B" \
    '"act":{"sub":"agent-d","act":{"sub":"agent-c","act":{"sub":"agent-b"}}}' "$(jwt_claims "$TD")"
expect_eq "the gateway lets D's token call the calendar" 200 "$(gate "$TD")"
expect_contains "  and tells the tool server the chain, outermost first" \
    "X-Mandate-Actor-Chain: agent-d,agent-c,agent-b" "$(tr -d '\r' <"$TMP/gate.h")"
check "  never the caller's own header" bash -c "! grep -q forged '$TMP/gate.h'"
exchange agent-e "$TD" >/dev/null
expect_eq "E acts for D: a fourth actor, past max_depth 3: 400" 400 "$(status)"
out=$(exchange agent-b "$TC")
expect_eq "B acts for C, which acts for B: a cycle, 400" 400 "$(status)"
expect_eq "  invalid_grant" invalid_grant "$(json_get "$out" error)"
check "  the log says so" wait_for_log "$LOG" "agent-b is already in the subject_token's act chain"
exchange agent-a "$TB" >/dev/null
expect_eq "A acts for B, which acts for A's own token: a cycle, 400" 400 "$(status)"
check "  the log says so" wait_for_log "$LOG" "agent-a began the subject_token's chain"

# --- one revocation stops the chain ---------------------------------------------------
out=$("${CTL[@]}" token revoke --jti "$(jti "$TA")")
expect_contains "revoking A's token reaches B's, C's, D's and M's" "and 4 tokens derived from it" "$out"
for t in TA TB TC TD; do
    expect_contains "  $t inactive at introspection" '"active":false' "$(introspect "${!t}")"
done
expect_eq "  D's refused at the gateway check" 401 "$(gate "$TD")"
exchange agent-e "$TD" >/dev/null
expect_eq "  and refused as a subject_token" 400 "$(status)"

# a revoked link in the middle: A2 -> B2 -> C2; B2 revoked, A2 lives on
TA2=$(token_a)
TB2=$(hop agent-b "$TA2")
TC2=$(hop agent-c "$TB2")
check "a second chain" test -n "$TC2"
out=$("${CTL[@]}" --json token revoke --token-file - <<<"$TB2")
expect_contains "revoking B2 (the middle) reaches one descendant (--json)" '"descendants": 1' "$out"
expect_contains "  C2 inactive" '"active":false' "$(introspect "$TC2")"
expect_eq "  C2 refused at the gateway check" 401 "$(gate "$TC2")"
exchange agent-d "$TC2" >/dev/null
expect_eq "  D cannot hand C2 on" 400 "$(status)"
expect_contains "  A2 still active" '"active":true' "$(introspect "$TA2")"

# disabling a client: A3 -> B3 -> C3; disabling agent-b takes B3 and C3
TA3=$(token_a)
TB3=$(hop agent-b "$TA3")
TC3=$(hop agent-c "$TB3")
check "a third chain" test -n "$TC3"
out=$("${CTL[@]}" client disable agent-b)
# B3 and C3; the earlier chains' tokens were revoked already and count 0
expect_contains "disabling agent-b revokes what came from its tokens" \
    "agent-b disabled; 2 tokens in delegation chains below it revoked" "$out"
expect_contains "  C3 inactive" '"active":false' "$(introspect "$TC3")"
expect_eq "  C3 refused at the gateway check" 401 "$(gate "$TC3")"
expect_contains "  A3 still active" '"active":true' "$(introspect "$TA3")"

# the client itself revokes its token (RFC 7009): A4 -> M4; M4 goes with it
TA4=$(token_a)
TM4=$(hop agent-m "$TA4")
check "a fourth chain" test -n "$TM4"
expect_eq "agent-a revokes A4 at /oauth2/revoke" 200 "$(curl -s -o /dev/null -w '%{http_code}' \
    -u "agent-a:${SECRET[agent-a]}" --data-urlencode "token=$TA4" "$BASE/oauth2/revoke")"
expect_contains "  M4, derived from it, inactive" '"active":false' "$(introspect "$TM4")"

# --- a rule's own scopes and max_depth ------------------------------------------------
TP=$(token_for agent-p "${SECRET[agent-p]}" -d "scope=mcp:call gateway:invoke" --data-urlencode "resource=$CAL")
out=$(exchange agent-q "$TP")
expect_eq "Q for P's token with both its scopes: rule q-for-p admits mcp:call only" \
    invalid_scope "$(json_get "$out" error)"
check "  the log names the rule and the scope" wait_for_log "$LOG" \
    "rule q-for-p: scope gateway:invoke is not among its scopes"
TQ=$(hop agent-q "$TP" -d scope=mcp:call)
check "  asking mcp:call alone: admitted" test -n "$TQ"
printf '%s\n' "$TQ" >"$TMP/tq"
out=$("${CTL[@]}" delegation test --subject-token "$TMP/tq" --actor agent-s)
expect_eq "delegation test: S for Q's token would be the second actor, rule s-for-q's max_depth 1 (exit 1)" 1 $?
expect_contains "  refused: too_deep" "refused:       too_deep" "$out"
expect_contains "  naming the rule and the limit" \
    "rule s-for-q: the act chain would hold 2 actors, more than its max_depth 1" "$out"
exchange agent-s "$TQ" >/dev/null
expect_eq "  the token endpoint agrees: 400" 400 "$(status)"
printf '%s\n' "$TP" >"$TMP/tp"
out=$("${CTL[@]}" delegation test --subject-token "$TMP/tp" --actor agent-q --scope mcp:call)
expect_contains "delegation test shows the admitting rule's limits" \
    "admitted:      delegation rule q-for-p, for scopes mcp:call" "$out"

# --- deleting a client (review s32, finding 9) -------------------------------------------
# P's token and Q's exchanged from it: deleting agent-p takes both, and a
# client created again under the id agent-p does not bring P's token back
expect_eq "P's token at the gateway check" 200 "$(gate "$TP")"
expect_eq "  Q's, exchanged from it" 200 "$(gate "$TQ")"
TP2=$(token_for agent-p "${SECRET[agent-p]}" -d scope=mcp:call --data-urlencode "resource=$CAL")
expect_eq "  another of P's, in no chain" 200 "$(gate "$TP2")"
out=$("${CTL[@]}" client delete agent-p)
expect_contains "deleting agent-p revokes what came from its tokens" \
    "client agent-p deleted; 2 tokens in delegation chains below it revoked" "$out"
sleep 1.2 # the daemon's view of the clients and revocations: within a second
expect_eq "  P's token refused" 401 "$(gate "$TP")"
expect_eq "  Q's refused" 401 "$(gate "$TQ")"
expect_contains "  Q's inactive" '"active":false' "$(introspect "$TQ")"
new_client agent-p --ttl 3600
sleep 1.2
expect_eq "a new agent-p: the deleted one's tokens still refused" 401 "$(gate "$TP2")"
expect_contains "  and inactive" '"active":false' "$(introspect "$TP2")"
check "  the log says why" wait_for_log "$LOG" "issued before its client was created"
NEWP=$(token_for agent-p "${SECRET[agent-p]}" -d scope=mcp:call --data-urlencode "resource=$CAL")
expect_eq "  the new agent-p's own token: 200" 200 "$(gate "$NEWP")"

# --- the audit trail -------------------------------------------------------------------
stop_daemon
expect_eq "clean stop" 0 "$DAEMON_STATUS"
trail=$(cat "$STATE"/audit/audit-*.jsonl)
issued=$(printf '%s\n' "$trail" | grep '"event":"token.issued"')
expect_contains "each hop names its parent" "\"subject_jti\":\"$(jti "$TC")\"" "$issued"
expect_contains "  its rule" '"delegation_rule":"d-for-c"' "$issued"
expect_contains "  or the may_act that admitted it" '"delegation_rule":"may_act"' "$issued"
expect_contains "  and the chain" '"prior_actors":"agent-c agent-b"' "$issued"
refused=$(printf '%s\n' "$trail" | grep '"event":"token.refused"')
expect_contains "the cycle audited" '"delegation":"cycle"' "$refused"
expect_contains "the outsider audited" '"delegation":"actor_not_allowed"' "$refused"
expect_contains "the revocation with its descendants" '"descendants":4' \
    "$(printf '%s\n' "$trail" | grep '"event":"token.revoked"')"
expect_contains "the gateway check with the chain" '"actor_chain":"agent-d,agent-c,agent-b"' \
    "$(printf '%s\n' "$trail" | grep '"event":"gateway.check"')"

# --- mandatectl audit trace: the chain around C's token ---------------------------------
out=$("${CTL[@]}" audit trace "$(jti "$TC")")
expect_eq "audit trace: exit 0" 0 $?
expect_contains "  from A's token: A's, M's, B's, C's, D's" "chain of 5 tokens from $(jti "$TA")" "$out"
expect_contains "  A's issue" "issued    $(jti "$TA") to agent-a for agent-a (client_credentials)" "$out"
expect_contains "  each exchange with actor and rule" \
    "exchange  $(jti "$TD") from $(jti "$TC"): client agent-d acts (chain agent-d agent-c agent-b) by d-for-c" "$out"
expect_contains "  the cycle refused" "refused   exchange of $(jti "$TC") by agent-b: cycle" "$out"
expect_contains "  the gateway checks" "gateway   $(jti "$TD") at cal: allowed 200" "$out"
expect_contains "  and the revocation" "revoked   $(jti "$TA") and 4 derived from it" "$out"
lacks() { ! grep -qF -- "$1" <<<"$2"; } # TEXT IN
check "  nothing of the second chain" lacks "$(jti "$TA2")" "$out"
out=$("${CTL[@]}" --json audit trace "$(jti "$TD")")
expect_contains "audit trace --json: the root" "\"root\": \"$(jti "$TA")\"" "$out"
expect_contains "  each token's depth" "\"$(jti "$TD")\": 3" "$out"
"${CTL[@]}" audit trace --dot "$(jti "$TB")" >"$TMP/trace.dot"
check "audit trace --dot renders with Graphviz" dot -Tpng -o "$TMP/trace.png" "$TMP/trace.dot"
check "  a picture" test -s "$TMP/trace.png"
# doc/delegation-trace.png is this picture: DELEGATION_TRACE_PNG=FILE keeps it
[ -z "${DELEGATION_TRACE_PNG:-}" ] || cp "$TMP/trace.png" "$DELEGATION_TRACE_PNG"
"${CTL[@]}" audit trace no-such-jti 2>/dev/null
expect_eq "audit trace of a jti the trail lacks: exit 1" 1 $?
# one jti in 32 begins with '-' (base64url): still a jti, not an option
"${CTL[@]}" audit trace -A4YAkIK8lydWKLrwVaT1A 2>/dev/null
expect_eq "audit trace of a jti beginning with '-': a jti (exit 1), not a usage error" 1 $?
"${CTL[@]}" audit trace --dot -- --dot 2>/dev/null
expect_eq "audit trace -- JTI: after --, a jti" 1 $?
"${CTL[@]}" audit trace 2>/dev/null
expect_eq "audit trace without a jti: usage (exit 2)" 2 $?
check "no sanitizer report" bash -c "! grep -q 'Sanitizer' '$LOG'"
finish
