#!/bin/bash
# Delegation chains with software not written here: npm jose 6, as a
# resource server would, verifies through the published JWKS a token three
# agents deep (A -> B -> C -> D) and reads its nested act (RFC 8693 §4.1),
# and reads may_act (§4.4) in A's token. tests/e2e/delegation.sh has the
# rules, refusals and revocations. No network, no npm: FAIL, never skip.
. "${MANDATE_SRCDIR:-.}/tests/e2e/lib.sh"

. "$SRCDIR/tests/interop/npm.sh"

new_state
CAL=https://mcp.example/cal
OTHER=https://other.example/api
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
T=$(token_for agent-a "${SECRET[agent-a]}" -d scope=mcp:call --data-urlencode "resource=$CAL")
TA=$T
for actor in agent-b agent-c agent-d; do
    T=$(json_get "$(exchange "$actor" "$T")" access_token)
    check "$actor acts for the token before" test -n "$T"
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
finish
