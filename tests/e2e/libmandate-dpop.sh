#!/bin/bash
# libmandate's DPoP client against the real daemon with server nonces on
# (dpop.nonce = true): tests/libmandate-probe loads the agent's proof key
# from a PEM file, gets a DPoP-bound token (the broker asks for a nonce
# first: two token requests), and makes the headers of a tool call, which
# the gateway check accepts after its own use_dpop_nonce round. A stolen
# token is refused: as a bearer token, with a proof by the thief's key, and
# with the agent's proof replayed. The other key and the replay are made by
# tests/dpop-proof, another process than the agent.
. "${MANDATE_SRCDIR:-.}/tests/e2e/lib.sh"

PROBE="$BUILDDIR/tests/libmandate-probe"
PROOF="$BUILDDIR/tests/dpop-proof"
AUD=https://mcp.example/cal
TOOLS=https://tools.example
dpop_nonce_broker_up cal '["/mcp"]' "$TOOLS" agent
"$PROOF" keygen ES256 "$TMP/agent.pem" && "$PROOF" keygen ES256 "$TMP/thief.pem"
JKT=$("$PROOF" jkt "$TMP/agent.pem")

agent() { # METHOD URI [NONCE]: what the agent sends (name=value lines)
    MANDATE_CLIENT_SECRET="$SECRET" "$PROBE" dpop "$TMP/agent.pem" "$TOKEN_URL" agent "$@"
}
field() { sed -n "s/^$1=//p" <<<"$2"; }
gate() { # AUTHORIZATION PROOF: the gateway check's status for POST /mcp/tools, as nginx asks
    curl -s -o "$TMP/g" -D "$TMP/gh" -w '%{http_code}' -H "Authorization: $1" \
        ${2:+-H "DPoP: $2"} -H "X-Original-Method: POST" -H "X-Original-URI: /mcp/tools" \
        "$BASE/gateway/check"
}
nonce_of() { sed -n 's/^DPoP-Nonce: //Ip' "$1" | tr -d '\r'; }

out=$(agent POST "$TOOLS/mcp/tools")
expect_eq "the agent gets a token" 0 "$?"
expect_eq "  token_type DPoP" DPoP "$(field type "$out")"
expect_eq "  after the broker's use_dpop_nonce: two token requests" 2 "$(field fetches "$out")"
expect_eq "  the key loaded from the PEM file is the one tests/dpop-proof made" "$JKT" \
    "$(field jkt "$out")"
AUTH=$(field authorization "$out")
TOKEN=${AUTH#DPoP }
expect_eq "  Authorization: DPoP" "DPoP " "${AUTH:0:5}"
expect_contains "  the token is bound to the key" "\"cnf\":{\"jkt\":\"$JKT\"}" "$(jwt_claims "$TOKEN")"
check "  the first request refused and audited (token.refused, use_dpop_nonce)" \
    bash -c 'cat "$1"/audit/*.jsonl | grep token.refused | grep -q use_dpop_nonce' _ "$STATE"

# the gateway wants its own nonce: the agent retries with it
expect_eq "the gateway check without a nonce: 401" 401 "$(gate "$AUTH" "$(field dpop "$out")")"
expect_contains "  use_dpop_nonce" 'error="use_dpop_nonce"' "$(cat "$TMP/gh")"
NONCE=$(nonce_of "$TMP/gh")
check "  with a DPoP-Nonce" test -n "$NONCE"
out=$(agent POST "$TOOLS/mcp/tools" "$NONCE")
P=$(field dpop "$out")
A=$(field authorization "$out")
expect_eq "the agent's call with the nonce: 200" 200 "$(gate "$A" "$P")"

# a thief with the token (and even the agent's last proof)
T=${A#DPoP }
expect_eq "stolen, as a bearer token: 401" 401 "$(gate "Bearer $T" "")"
expect_eq "stolen, with a proof by the thief's key: 401" 401 \
    "$(gate "DPoP $T" "$("$PROOF" proof "$TMP/thief.pem" POST "$TOOLS/mcp/tools" "$T" 0 "$NONCE")")"
expect_contains "  invalid_dpop_proof" invalid_dpop_proof "$(cat "$TMP/gh")"
expect_eq "stolen with the agent's proof, replayed: 401" 401 "$(gate "$A" "$P")"
expect_eq "stolen, a proof for another URI: 401" 401 \
    "$(gate "$A" "$(agent GET "$TOOLS/mcp/tools" "$NONCE" | sed -n 's/^dpop=//p')")"
check "no secret or token in the log" bash -c "! grep -qF -- '$SECRET' '$LOG' && ! grep -qF -- '$T' '$LOG'"

stop_daemon
expect_eq "clean stop" 0 "$DAEMON_STATUS"
check "no sanitizer report" bash -c "! grep -q 'Sanitizer' '$LOG'"
finish
