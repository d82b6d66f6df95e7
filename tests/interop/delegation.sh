#!/bin/bash
# Delegation chains with software not written here: npm jose 6, as a
# resource server would, verifies through the published JWKS a token three
# agents deep (A -> B -> C -> D) and reads its nested act (RFC 8693 §4.1),
# and reads may_act (§4.4) in A's token. Then the chain's last hop is the
# official MCP SDK through nginx (examples/marketpulse): C calls the
# MarketPulse tool with its token, the tool server gets the chain in
# X-Mandate-Actor-Chain, a resource server's introspection shows it, and
# revoking A's token makes C's next call on the same MCP session fail at
# the gateway (401). Two broker nodes on one PostgreSQL (tests/pg.sh): the
# tokens are issued and revoked through node A, nginx asks node B.
# tests/e2e/delegation.sh has the rules, refusals and revocations. No
# network, no npm, no nginx, no PostgreSQL: FAIL, never skip.
. "${MANDATE_SRCDIR:-.}/tests/e2e/lib.sh"

. "$SRCDIR/tests/interop/npm.sh"
. "$SRCDIR/tests/interop/marketpulse.sh"
. "$SRCDIR/tests/pg.sh"

new_state
# its own folder right under /tmp: as root the server runs as another user
PGDIR=$(mktemp -d /tmp/mandate-delegation-pg.XXXXXX)
trap 'pg_stop "$PGDIR" >/dev/null 2>&1; cleanup; rm -rf "$PGDIR"' EXIT
pg_start "$PGDIR" >/dev/null || fatal "PostgreSQL did not start (Debian: apt-get install postgresql)"
rm "$STATE/mandate.d/store-sqlite.conf"
printf 'kind = "store";\nplugin = "pgsql";\nconninfo = "%s";\n' "$PG_CONNINFO" \
    >"$STATE/mandate.d/store-pgsql.conf"
CAL=$AUD
OTHER=https://other.example/api
marketpulse_target "$CONF"
cat >>"$CONF" <<CONF
delegation = {
  rules = (
    { name = "b-for-a"; actors = ["agent-b"]; clients = ["agent-a"]; },
    { name = "c-for-b"; actors = ["agent-c"]; clients = ["agent-b"]; },
    { name = "d-for-c"; actors = ["agent-d"]; clients = ["agent-c"]; }
  );
};
CONF
daemon_up
issuer_is_base

declare -A SECRET
for id in agent-a agent-b agent-c agent-d; do new_client "$id"; done
new_client gateway --introspect
T=$(token_for agent-a "${SECRET[agent-a]}" -d scope=mcp:call --data-urlencode "resource=$CAL")
TA=$T
for actor in agent-b agent-c agent-d; do
    T=$(json_get "$(exchange "$actor" "$T")" access_token)
    check "$actor acts for the token before" test -n "$T"
    [ "$actor" = agent-c ] && TC=$T
done

# verify TOKEN: jose's jwtVerify through the JWKS, the payload as JSON
verify() {
    (cd "$NPM_DIR" && node --input-type=module -e '
import { webcrypto } from "node:crypto";
if (globalThis.crypto === undefined) globalThis.crypto = webcrypto;
const jose = await import("jose");
const [base, aud, token] = process.argv.slice(1);
const jwks = jose.createRemoteJWKSet(new URL(base + "/oauth2/jwks"));
const { payload } = await jose.jwtVerify(token, jwks, { issuer: base, audience: aud });
console.log(JSON.stringify(payload));' "$BASE" "$CAL" "$1")
}
chain() { # PAYLOAD: the act chain, outermost first, by node
    node -e 'let a = JSON.parse(process.argv[1]).act, out = [];
             while (a) { out.push(a.sub); a = a.act; }
             console.log(out.join(","));' "$1"
}
p=$(verify "$T")
check "jose verifies D's token through the JWKS" test -n "$p"
expect_eq "  its nested act: D, C, B" "agent-d,agent-c,agent-b" "$(chain "$p")"
expect_contains "  sub still agent-a" '"sub":"agent-a"' "$p"
p=$(verify "$TA")
expect_contains "jose reads may_act in A's token" '"may_act":{"sub":"agent-b"}' "$p"

# --- the last hop: C calls the MarketPulse tool with the official MCP SDK -----
# node B: node A's folder (the same issuer and key-encryption key), its own
# trail; the gateway nginx asks
B="$TMP/node-b"
cp -a "$STATE" "$B"
rm -rf "$B/audit" "$B/mandate.db"*
BASE_A=$BASE PORT_A=$PORT PID_A=$DAEMON_PID
check "node B starts on the same PostgreSQL" start_daemon "$B/mandate.conf" "$TMP/b.log" ||
    { cat "$TMP/b.log"; exit 1; }
PORT_B=$PORT
BASE=$BASE_A PORT=$PORT_A DAEMON_PID=$PID_A
start_marketpulse "$BASE" "$PORT_B"
expect_contains "a resource server's introspection of C's token shows the chain" \
    '"act":{"sub":"agent-c","act":{"sub":"agent-b"}}' "$(introspect "$TC")"
expect_contains "  for A's subject" '"sub":"agent-a"' "$(introspect "$TC")"
(cd "$NPM_DIR" && MCP_URL="$GW/mcp" MCP_TOKEN="$TC" MCP_AGAIN_WHEN="$TMP/revoked" \
    timeout 60 node mcp-client.mjs >"$TMP/mcp.out" 2>&1) &
MCP_PID=$!
PIDS="$PIDS $MCP_PID"
for _ in $(seq 1 600); do
    grep -q '"connected"' "$TMP/mcp.out" && break
    kill -0 "$MCP_PID" 2>/dev/null || break
    sleep 0.1
done
out=$(head -n 1 "$TMP/mcp.out")
expect_contains "the MCP SDK connects through nginx with C's token" '"connected":true' "$out"
expect_contains "  and its tools/call answers" '2026-02-16' "$out"
check "  the tool server got the chain, outermost first (X-Mandate-Actor-Chain)" \
    grep -q "POST /mcp 200 client=agent-c sub=agent-a rpc=tools/call actor_chain=agent-c,agent-b" \
    "$TMP/tool.log"
out=$("${CTL[@]}" token revoke --jti "$(json_get "$(jwt_claims "$TA")" jti)")
expect_contains "revoking A's token reaches B's, C's and D's" "and 3 tokens derived from it" "$out"
: >"$TMP/revoked"
wait "$MCP_PID"
expect_eq "the SDK's next call on the same session is refused" 3 "$?"
out=$(tail -n 1 "$TMP/mcp.out")
expect_contains "  at the gateway, 401" "401" "$out"
echo "  (refused $(json_get "$out" after_ms) ms after the revocation, $(json_get "$out" calls) calls)"
expect_contains "  node B's gateway check refused C's token" '"actor_chain":"agent-c,agent-b"' \
    "$(grep '"event":"gateway.check"' "$B"/audit/audit-*.jsonl | grep '"status":401')"
finish
