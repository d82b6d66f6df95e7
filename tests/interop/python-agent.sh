#!/bin/bash
# The Python MarketPulse agent (examples/marketpulse/agent.py: Debian's
# python3-authlib for the token, MCP over python3-httpx) against the live
# broker, the example's nginx gateway and the market calendar tool server:
# it prints the workshop's answer, fetches a new token by itself before the
# old one expires (a client whose tokens live 4 s), gets a new one when the
# gateway refuses a revoked one, and refuses a secret file others can read.
. "${MANDATE_SRCDIR:-.}/tests/e2e/lib.sh"
. "$SRCDIR/tests/interop/marketpulse.sh"

# Debian's Python, with Debian's authlib and httpx: not a python3 of pyenv or
# of a virtualenv earlier on the PATH
PYTHON=/usr/bin/python3
AGENT=("$PYTHON" "$SRCDIR/examples/marketpulse/agent.py")
"$PYTHON" -c 'import authlib.integrations.httpx_client, httpx' 2>/dev/null ||
    fatal "python3-authlib and python3-httpx are needed (Debian: apt-get install python3-authlib python3-httpx)"

new_state
marketpulse_target "$CONF"
daemon_up
issuer_is_base
new_client() { # ID [more options]: the secret goes to $TMP/ID.secret
    "${CTL[@]}" client create "$1" --scope "gateway:invoke mcp:call" \
        --default-scope "gateway:invoke mcp:call" --audience "$AUD" \
        --secret-file "$TMP/$1.secret" "${@:2}" >/dev/null 2>&1
}
check "the agent's client" new_client marketpulse-agent
check "a client whose tokens live 4 s" new_client short-lived --ttl 4
start_marketpulse "$BASE" "$PORT"
agent() { # ID [agent options]: its answer on stdout, its report in $TMP/agent.err
    local id=$1
    shift
    "${AGENT[@]}" --token-url "$BASE/oauth2/token" --client-id "$id" --secret-file "$TMP/$id.secret" \
        --mcp-url "$GW/mcp" "$@" 2>"$TMP/agent.err"
}

# the workshop's question and answer (the tool server's today: 13 February 2026)
out=$(agent marketpulse-agent "Are there any market holidays this week?")
expect_eq "the agent succeeds" 0 "$?"
expect_eq "the workshop's answer" "Agent Response:
===============

Market Calendar Check (US Markets)

Period: Feb 13 - Feb 20, 2026

Upcoming Holidays:
- Monday, Feb 16: Washington's Birthday (Presidents' Day) (Markets Closed)

Trading Impact: 1 day affected

[Agent authenticated successfully with OAuth token]" "$out"
cat "$TMP/agent.err"
expect_eq "one token fetched" 1 "$(grep -c 'token fetched' "$TMP/agent.err")"
check "through the gateway: the tool server logged the agent's tools/call" \
    grep -qE "POST /mcp 200 client=marketpulse-agent( sub=marketpulse-agent)? rpc=tools/call" "$TMP/tool.log"
check "the broker logged the token's validation at the gateway" \
    grep -qi "token validation: token_valid=true, client=marketpulse-agent" "$LOG"
check "no token in the agent's report" bash -c "! grep -q 'eyJ' '$TMP/agent.err'"
out=$(agent marketpulse-agent "Any market holidays in the next 30 days?")
expect_contains "a window from the question: 30 days" "Period: Feb 13 - Mar 15, 2026" "$out"

# Tokens of 4 s, calls 1.5 s apart for 6 s: the agent fetches a new token
# once 80 % of the lifetime has passed, without a refused call.
out=$(agent short-lived --calls 5 --interval 1.5)
expect_eq "short-lived tokens: the agent succeeds" 0 "$?"
cat "$TMP/agent.err"
expect_contains "short-lived tokens: the answer" "Washington's Birthday" "$out"
check "short-lived tokens: a new token before the old one expired" \
    grep -q "token fetched (80 % of the lifetime passed): expires_in=4s" "$TMP/agent.err"
check "short-lived tokens: the gateway refused no call" bash -c "! grep -qE '(answered|refused with) 401' '$TMP/agent.err'"
expect_eq "short-lived tokens: five calls answered" 5 "$(grep -c ': check_market_holidays answered' "$TMP/agent.err")"

# A token revoked while the agent holds it: one 401, one new token, the answer.
# (The agent is made to hold it by the 401 alone: its first call goes out
# after the revocation is in force.)
cat >"$TMP/revoke-first.py" <<'PY'
import runpy, subprocess, sys, time
import authlib.integrations.httpx_client as c
token_file, mandatectl, conf = sys.argv[1:4]
fetch = c.OAuth2Client.fetch_token
state = {"n": 0}
def fetch_then_revoke(self, *a, **kw):
    token = fetch(self, *a, **kw)
    state["n"] += 1
    if state["n"] == 1:  # revoke the first token, as an operator would
        with open(token_file, "w") as f:
            f.write(token["access_token"] + "\n")
        subprocess.run([mandatectl, "-c", conf, "token", "revoke", "--token-file", token_file],
                       check=True, stdout=subprocess.DEVNULL)
        time.sleep(1.5)  # the broker reads the store's generation every second
    return token
c.OAuth2Client.fetch_token = fetch_then_revoke
sys.argv = sys.argv[4:]
runpy.run_path(sys.argv[0], run_name="__main__")
PY
out=$("$PYTHON" "$TMP/revoke-first.py" "$TMP/revoked" "$MANDATECTL" "$CONF" \
    "$SRCDIR/examples/marketpulse/agent.py" --token-url "$BASE/oauth2/token" --client-id marketpulse-agent \
    --secret-file "$TMP/marketpulse-agent.secret" --mcp-url "$GW/mcp" 2>"$TMP/agent.err")
expect_eq "revoked token: the agent succeeds" 0 "$?"
cat "$TMP/agent.err"
check "revoked token: the gateway's 401, then a new token" \
    grep -q "token fetched (refused with 401)" "$TMP/agent.err"
expect_contains "revoked token: the answer" "Washington's Birthday" "$out"

# the secret file must be its owner's alone
chmod 644 "$TMP/marketpulse-agent.secret"
agent marketpulse-agent >/dev/null
expect_eq "a secret file others can read: refused" 1 "$?"
expect_contains "and says why" "must be readable by its owner alone" "$(cat "$TMP/agent.err")"

stop_daemon
expect_eq "clean stop" 0 "$DAEMON_STATUS"
check "no sanitizer report" bash -c "! grep -q Sanitizer '$LOG' '$TMP/tool.log'"
finish
