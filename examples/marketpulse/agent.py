#!/usr/bin/python3
"""The MarketPulse agent of the AgentCore Identity workshop (module 6), in Python.

It gets an OAuth 2.0 access token from Mandate with the client credentials
grant, calls the market calendar's MCP tool check_market_holidays through the
gateway with it, and prints the workshop's answer:

    examples/marketpulse/agent.py "Are there any market holidays this week?"

With no options it uses what examples/marketpulse/run made: the broker on
127.0.0.1:9080, the gateway's MCP endpoint http://127.0.0.1:9000/mcp, and the
agent's id and secret in _build/marketpulse/ (marketpulse.id, and
marketpulse.secret, which must be readable by its owner alone, as ssh wants
of a key). The workshop's environment variables OAUTH_CLIENT_ID,
OAUTH_CLIENT_SECRET and OAUTH_TOKEN_URL are read too; --help lists the rest.

The token: Debian's python3-authlib (its httpx OAuth2Client), not hand-made
OAuth. authlib fetches a new client credentials token only once the old one
has expired, and its synchronous client has no lock around that; this agent
adds both: it fetches a new token once 80 % of the old one's lifetime has
passed (as libmandate does), one fetch at a time, and fetches again once if
the gateway still answers 401 (a token revoked, or clocks apart). Every fetch
is reported on standard error, without the token.

The MCP part is plain JSON-RPC 2.0 over the Streamable HTTP transport
(revision 2025-06-18), written here with python3-httpx: Debian 12 packages no
Python MCP SDK, and this agent needs only initialize,
notifications/initialized and tools/call, answered as application/json or as
a text/event-stream. An agent that can install the official SDK (PyPI "mcp")
would hand it the same bearer token instead.
"""

import argparse
import datetime
import json
import os
import re
import stat
import sys
import threading
import time
from pathlib import Path

import httpx
from authlib.integrations.httpx_client import OAuth2Client, OAuthError

MCP_PROTOCOL_VERSION = "2025-06-18"
TOOL_NAME = "check_market_holidays"
# The share of a token's lifetime after which the agent fetches the next one.
REFRESH_AT = 0.8
# An answer larger than this is not a calendar: refused rather than read.
MAX_ANSWER_BYTES = 1 << 20
TOP = Path(__file__).resolve().parents[2]
RUN_OUT = TOP / "_build" / "marketpulse"


def say(message):
    print(f"agent: {message}", file=sys.stderr, flush=True)


class AgentError(Exception):
    pass


class TokenClient(OAuth2Client):
    """authlib's OAuth 2.0 client (client credentials) that renews its token
    before it expires rather than after, one renewal at a time."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._renewal = threading.Lock()

    def _due(self):
        token = self.token
        if not token:
            return True
        expires_at, expires_in = token.get("expires_at"), token.get("expires_in")
        if not expires_at:
            return False  # a token without a lifetime: kept until refused
        lifetime = float(expires_in) if expires_in else 0.0
        return time.time() >= expires_at - (1.0 - REFRESH_AT) * lifetime

    def _fetch(self, why):
        # authlib's fetch_token: the grant and the endpoint given to the constructor
        token = self.fetch_token()
        say(f"token fetched ({why}): expires_in={token.get('expires_in')}s, "
            f"scope=[{token.get('scope', '')}]")

    def renew(self, why):
        """Fetches a new token now."""
        with self._renewal:
            self._fetch(why)

    # authlib calls this before every request that carries the token
    def ensure_active_token(self, token):
        with self._renewal:
            if self._due():
                self._fetch("80 % of the lifetime passed")
        return True


def read_secret(path):
    info = os.stat(path)
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise AgentError(f"{path}: mode {stat.S_IMODE(info.st_mode):04o}: a client secret "
                         f"must be readable by its owner alone (chmod 600 {path})")
    with open(path, encoding="utf-8") as f:
        secret = f.read().strip()
    if not secret:
        raise AgentError(f"{path} is empty")
    return secret


def rpc_answer(response, want_id):
    """The JSON-RPC response to request want_id: the body itself
    (application/json) or one of the events of a text/event-stream."""
    if len(response.content) > MAX_ANSWER_BYTES:
        raise AgentError("the MCP server's answer is over 1 MiB")
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    messages = []
    if kind == "application/json":
        body = response.json()
        messages = body if isinstance(body, list) else [body]
    elif kind == "text/event-stream":
        for event in re.split(r"\r?\n\r?\n", response.text):
            data = "\n".join(line[5:].lstrip(" ") for line in re.split(r"\r?\n", event)
                             if line.startswith("data:"))
            if data:
                messages.append(json.loads(data))
    else:
        raise AgentError(f"the MCP server answered {kind or 'no content type'}")
    for message in messages:
        if isinstance(message, dict) and message.get("id") == want_id:
            if "error" in message:
                error = message["error"]
                raise AgentError(f"MCP error {error.get('code')}: {error.get('message')}")
            return message.get("result")
    raise AgentError("the MCP server's answer has no response to our request")


class McpSession:
    """An MCP client session over Streamable HTTP, through the gateway."""

    def __init__(self, http, url):
        self.http, self.url = http, url
        self.next_id = 1
        self.headers = {"Accept": "application/json, text/event-stream"}

    def _post(self, message):
        response = self.http.post(self.url, json=message, headers=self.headers)
        if response.status_code == 401:
            # The token was refused although it had not expired here: it
            # was revoked, or the clocks disagree. One new token, one retry.
            say("the gateway answered 401: fetching a new token and trying again")
            self.http.renew("refused with 401")
            response = self.http.post(self.url, json=message, headers=self.headers)
        if response.status_code in (401, 403):
            challenge = response.headers.get("www-authenticate", "")
            raise AgentError(f"the gateway refused the call: {response.status_code} {challenge}")
        return response

    def request(self, method, params):
        message = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}
        self.next_id += 1
        response = self._post(message)
        if response.status_code != 200:
            raise AgentError(f"{method}: HTTP {response.status_code}: {response.text[:200]}")
        return response, rpc_answer(response, message["id"])

    def open(self):
        response, result = self.request("initialize", {
            "protocolVersion": MCP_PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "marketpulse-agent", "version": "1.0.0"},
        })
        session = response.headers.get("mcp-session-id")
        if session:
            self.headers["Mcp-Session-Id"] = session
        self.headers["MCP-Protocol-Version"] = result.get("protocolVersion", MCP_PROTOCOL_VERSION)
        note = self._post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        if note.status_code not in (200, 202):
            raise AgentError(f"notifications/initialized: HTTP {note.status_code}")
        return result

    def call_tool(self, name, arguments):
        _, result = self.request("tools/call", {"name": name, "arguments": arguments})
        if result.get("isError"):
            text = " ".join(c.get("text", "") for c in result.get("content", []))
            raise AgentError(f"{name} failed: {text}")
        if isinstance(result.get("structuredContent"), dict):
            return result["structuredContent"]
        for content in result.get("content", []):
            if content.get("type") == "text":
                return json.loads(content["text"])
        raise AgentError(f"{name} answered no calendar")


def days_asked(question, default):
    """The window a plain question names: "today", "this week", "next 10
    days", "this month"; the default otherwise (this agent has no model)."""
    q = (question or "").lower()
    m = re.search(r"(\d+)\s*days?", q)
    if m:
        return max(1, min(int(m.group(1)), 366))
    if "today" in q or "tomorrow" in q:
        return 1 if "today" in q else 2
    if "month" in q:
        return 30
    return default


def short_date(d, with_year=False):
    return f"{d:%b} {d.day}" + (f", {d.year}" if with_year else "")


def workshop_answer(country, calendar):
    """The answer in the shape of the workshop's "Expected response"."""
    start = datetime.date.fromisoformat(calendar["period"]["start"])
    end = datetime.date.fromisoformat(calendar["period"]["end"])
    if start.year == end.year:
        period = f"{short_date(start)} - {short_date(end, True)}"
    else:
        period = f"{short_date(start, True)} - {short_date(end, True)}"
    lines = ["Agent Response:", "===============", "",
             f"Market Calendar Check ({country} Markets)", "", f"Period: {period}", "",
             "Upcoming Holidays:"]
    holidays = calendar.get("holidays", [])
    for h in holidays:
        day = datetime.date.fromisoformat(h["date"])
        if h.get("is_trading_day"):
            what = f"Early Close at {h['early_close']}" if h.get("early_close") else "Trading Day"
        else:
            what = "Markets Closed"
        lines.append(f"- {day:%A}, {short_date(day)}: {h['name']} ({what})")
    if not holidays:
        lines.append("- None: the markets are open every weekday")
    affected = calendar.get("trading_days_affected", len(holidays))
    lines += ["", f"Trading Impact: {affected} day{'' if affected == 1 else 's'} affected", "",
              "[Agent authenticated successfully with OAuth token]"]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(
        description="The MarketPulse agent: a Mandate token (client credentials, authlib) "
                    "and the market calendar's MCP tool through the gateway.")
    parser.add_argument("question", nargs="?", default="Are there any market holidays this week?")
    parser.add_argument("--token-url", default=os.environ.get(
        "OAUTH_TOKEN_URL", "http://127.0.0.1:9080/oauth2/token"))
    parser.add_argument("--client-id", default=os.environ.get("OAUTH_CLIENT_ID"),
                        help="default: $OAUTH_CLIENT_ID, or _build/marketpulse/marketpulse.id")
    parser.add_argument("--secret-file", help="the client secret (mode 0600); default: "
                        "$OAUTH_CLIENT_SECRET, or _build/marketpulse/marketpulse.secret")
    parser.add_argument("--scope", default="gateway:invoke mcp:call")
    parser.add_argument("--mcp-url", default=os.environ.get(
        "MARKETPULSE_MCP_URL", "http://127.0.0.1:9000/mcp"))
    parser.add_argument("--country", default="US")
    parser.add_argument("--days-ahead", type=int, default=7,
                        help="when the question names no window (default 7)")
    parser.add_argument("--calls", type=int, default=1,
                        help="call the tool this many times (shows the token renewed)")
    parser.add_argument("--interval", type=float, default=1.0,
                        help="seconds between those calls")
    args = parser.parse_args()
    if args.calls < 1:
        parser.error("--calls must be at least 1")

    try:
        client_id = args.client_id
        if not client_id and (RUN_OUT / "marketpulse.id").is_file():
            client_id = (RUN_OUT / "marketpulse.id").read_text(encoding="utf-8").strip()
        if args.secret_file:
            secret = read_secret(args.secret_file)
        elif os.environ.get("OAUTH_CLIENT_SECRET"):
            secret = os.environ["OAUTH_CLIENT_SECRET"]
        elif (RUN_OUT / "marketpulse.secret").is_file():
            secret = read_secret(RUN_OUT / "marketpulse.secret")
        else:
            secret = None
        if not client_id or not secret:
            raise AgentError("no client id and secret: start examples/marketpulse/run, or give "
                             "--client-id and --secret-file (or OAUTH_CLIENT_ID and "
                             "OAUTH_CLIENT_SECRET)")
        arguments = {"country_code": args.country,
                     "days_ahead": days_asked(args.question, args.days_ahead)}
        with TokenClient(client_id, secret, scope=args.scope, token_endpoint=args.token_url,
                         grant_type="client_credentials", timeout=30.0) as http:
            http.renew("first")
            mcp = McpSession(http, args.mcp_url)
            server = mcp.open().get("serverInfo", {})
            say(f"connected to {server.get('name', 'the MCP server')} through {args.mcp_url}")
            for n in range(1, args.calls + 1):
                if n > 1:
                    time.sleep(args.interval)
                calendar = mcp.call_tool(TOOL_NAME, arguments)
                say(f"call {n}: {TOOL_NAME} answered")
            print(workshop_answer(args.country, calendar))
    except OAuthError as e:
        say(f"the broker refused a token: {e.error}: {e.description or ''}")
        return 1
    except httpx.RequestError as e:
        say(f"no answer from {e.request.url}: {e}")
        return 1
    except (AgentError, OSError, httpx.HTTPError, ValueError, KeyError) as e:
        say(str(e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
