# Sourced by the interop tests that put the MarketPulse example in front of
# a broker (after tests/interop/npm.sh): the market-calendar tool server and
# nginx from examples/marketpulse/nginx.conf.in, whose auth_request asks the
# broker's gateway check. Sets TOOL, AUD, GW_PORT and GW at once;
# start_marketpulse starts both servers (TOOL_PID, NGINX_PID, in PIDS),
# start_calendar the tool server alone (for another gateway in front of it).

command -v nginx >/dev/null 2>&1 || fatal "nginx is needed (Debian: apt-get install nginx-light)"
TOOL="$BUILDDIR/examples/marketpulse/market-calendar"
[ -x "$TOOL" ] || fatal "$TOOL is not built"
AUD=https://mcp.example/market-calendar
GW_PORT=$(free_port)
GW="http://127.0.0.1:$GW_PORT"

# marketpulse_target CONF: the tool server as the broker's gateway target
marketpulse_target() {
    cat >>"$1" <<CONF
targets = (
  { name = "market-calendar-mcp";
    paths = ["/mcp", "/tools/"];
    audience = "$AUD";
    scopes = ["mcp:call"];
    resource_metadata = "$GW/.well-known/oauth-protected-resource"; }
);
CONF
}

# start_calendar ISSUER [OPTIONS]: the tool server alone (it checks every
# token itself as well), trusting ISSUER, on a free port (TOOL_PORT,
# TOOL_PID); OPTIONS go to it
start_calendar() {
    "$TOOL" --listen 127.0.0.1:0 --issuer "$1" --audience "$AUD" --scope mcp:call \
        --today 2026-02-13 "${@:2}" 2>"$TMP/tool.log" &
    TOOL_PID=$!
    PIDS="$PIDS $TOOL_PID"
    for _ in $(seq 1 100); do
        TOOL_PORT=$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' "$TMP/tool.log" | head -n 1)
        [ -n "$TOOL_PORT" ] && break
        sleep 0.05
    done
    [ -n "$TOOL_PORT" ] || { cat "$TMP/tool.log"; fatal "the tool server did not start"; }
}

# start_marketpulse ISSUER BROKER_PORT: the tool server trusting ISSUER, and
# nginx on GW_PORT asking the broker on 127.0.0.1:BROKER_PORT
start_marketpulse() {
    local issuer=$1 broker_port=$2
    start_calendar "$issuer"
    NGX="$TMP/nginx"
    mkdir -p "$NGX"
    sed -e "s|@PREFIX@|$NGX|g" -e "s|@LISTEN@|127.0.0.1:$GW_PORT|g" \
        -e "s|@BROKER@|127.0.0.1:$broker_port|g" -e "s|@TOOL@|127.0.0.1:$TOOL_PORT|g" \
        -e "s|@ISSUER@|$issuer|g" -e "s|@RESOURCE@|$AUD|g" \
        "$SRCDIR/examples/marketpulse/nginx.conf.in" >"$NGX/nginx.conf"
    nginx -t -p "$NGX" -c "$NGX/nginx.conf" >"$NGX/test.log" 2>&1 ||
        { cat "$NGX/test.log"; fatal "nginx -t"; }
    nginx -p "$NGX" -c "$NGX/nginx.conf" -g "daemon off; user $(id -un);" 2>"$NGX/stderr.log" &
    NGINX_PID=$!
    PIDS="$PIDS $NGINX_PID"
    for _ in $(seq 1 100); do
        curl -s -o /dev/null "$GW/.well-known/oauth-protected-resource" && break
        sleep 0.05
    done
}
