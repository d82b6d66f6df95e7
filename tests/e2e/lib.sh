# Shared by the end-to-end tests: a temp folder, a state dir made by the
# real mandatectl, the real daemon on a free loopback port, and checks.
# Every server a test starts is stopped by PID when the test exits.
set -u

BUILDDIR=${MANDATE_BUILDDIR:?run through make check}
SRCDIR=${MANDATE_SRCDIR:-$BUILDDIR}
MANDATED="$BUILDDIR/mandated"
MANDATECTL="$BUILDDIR/mandatectl"
PLUGIN_DIR="$BUILDDIR/plugins/.libs"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/mandate-e2e.XXXXXX")
PIDS=""
FAILURES=0
CHECKS=0

cleanup() {
    for pid in $PIDS; do
        kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    rm -rf "$TMP"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*"
    FAILURES=$((FAILURES + 1))
}

pass() {
    echo "ok: $*"
}

# check "description" command...: the command must succeed
check() {
    local what=$1
    shift
    CHECKS=$((CHECKS + 1))
    if "$@"; then pass "$what"; else fail "$what"; fi
}

# expect_eq "description" expected actual
expect_eq() {
    CHECKS=$((CHECKS + 1))
    if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: expected '$2', got '$3'"; fi
}

# expect_contains "description" needle haystack
expect_contains() {
    CHECKS=$((CHECKS + 1))
    case "$3" in
    *"$2"*) pass "$1" ;;
    *) fail "$1: '$2' not found in: $3" ;;
    esac
}

# make_state DIR: a fresh state folder listening on a free port
make_state() {
    "$MANDATECTL" init "$1" --listen 127.0.0.1:0 --plugin-dir "$PLUGIN_DIR" --no-example >/dev/null
}

# new_state: the state folder a test starts from ($TMP/state, made by
# mandatectl init) and the names the tests use for it: STATE, CONF, LOG (the
# daemon's) and CTL (mandatectl on CONF, an array). Ends the test when init
# fails: nothing after it could run.
new_state() {
    STATE="$TMP/state"
    LOG="$TMP/mandated.log"
    make_state "$STATE" || { echo "mandatectl init failed"; exit 1; }
    CONF="$STATE/mandate.conf"
    CTL=("$MANDATECTL" -c "$CONF")
}

# with_fakeidp: the test backend "fakeidp" (tests/plugins, an IdP that signs
# in whoever login_hint names, at once) as instance backend-corp of STATE,
# beside the real plugins in a plugin folder of this test's daemon only.
with_fakeidp() {
    PLUGINS="$TMP/plugins"
    mkdir "$PLUGINS"
    ln -s "$PLUGIN_DIR"/*.so "$PLUGINS/"
    ln -s "$BUILDDIR/tests/plugins/.libs/backend-fakeidp.so" "$PLUGINS/"
    sed -i "s|^plugin_dir = .*|plugin_dir = \"$PLUGINS\";|" "$CONF"
    printf 'kind = "backend";\nplugin = "fakeidp";\n' >"$STATE/mandate.d/backend-corp.conf"
}

# start_daemon CONF LOG: starts mandated in the background; sets DAEMON_PID
# and PORT once it listens. Returns 1 if it exited instead.
start_daemon() {
    local conf=$1 log=$2 i
    "$MANDATED" -c "$conf" >"$log" 2>&1 &
    DAEMON_PID=$!
    PIDS="$PIDS $DAEMON_PID"
    for i in $(seq 1 200); do
        PORT=$(sed -n 's/.* listening on .* port \([0-9]*\),.*/\1/p' "$log" | head -n 1)
        if [ -n "$PORT" ]; then
            BASE="http://127.0.0.1:$PORT"
            return 0
        fi
        if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
            return 1
        fi
        sleep 0.05
    done
    return 1
}

# daemon_up [DESCRIPTION]: starts the daemon on CONF (logging to LOG) as a
# check, or ends the test showing the log; sets TOKEN_URL too.
daemon_up() {
    check "${1:-daemon starts}" start_daemon "$CONF" "$LOG" || { cat "$LOG"; exit 1; }
    TOKEN_URL="$BASE/oauth2/token"
}

# issuer_is_base [DESCRIPTION]: names in CONF the issuer the running daemon
# bound to and reloads it, so that mandatectl, which reads the same file,
# agrees with it (port 0 only tells the daemon).
issuer_is_base() {
    sed -i "s|^server: {|server: {\n  issuer = \"$BASE\";|" "$CONF"
    kill -HUP "$DAEMON_PID"
    check "${1:-reloaded with the issuer}" wait_for_log "$LOG" "reloaded:"
}

# client_secret: the secret in what mandatectl client create printed (stdin)
client_secret() { sed -n 's/^client_secret: //p'; }

# token_for ID SECRET [curl args]: a client credentials token, or nothing
token_for() {
    local id=$1 secret=$2
    shift 2
    json_get "$(curl -s -u "$id:$secret" -d grant_type=client_credentials "$@" \
        "$BASE/oauth2/token")" access_token
}

# stop_daemon: SIGTERM and wait; sets DAEMON_STATUS
stop_daemon() {
    kill -TERM "$DAEMON_PID"
    wait "$DAEMON_PID"
    DAEMON_STATUS=$?
    PIDS=$(echo "$PIDS" | sed "s/ $DAEMON_PID\b//")
}

# up to 5 s
wait_for_log() { # FILE TEXT [COUNT]: until TEXT is in FILE COUNT times (default 1)
    local i
    for i in $(seq 1 100); do
        [ "$(grep -cF -- "$2" "$1")" -ge "${3:-1}" ] && return 0
        sleep 0.05
    done
    return 1
}

# free_port: a loopback port nobody listens on, for a server that is told its
# port before it starts (nginx, Apache, an IdP registered with the broker's
# URL). It is taken outside the kernel's ephemeral range, which bind(0) and
# outgoing connections draw from: tests running in parallel start daemons on
# port 0, and one of them could otherwise take the port between this answer
# and the server's bind (seen as a 404 from the wrong server).
free_port() {
    perl -MIO::Socket::INET -e '
        my ($low, $high) = (32768, 60999);
        if (open my $range, "<", "/proc/sys/net/ipv4/ip_local_port_range") {
            ($low, $high) = split " ", scalar <$range>;
        }
        my ($from, $to) = $low > 12000 ? (10000, $low - 1) : ($high + 1, 65535);
        for (1 .. 500) {
            my $port = $from + int rand($to - $from + 1);
            IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1:$port", ReuseAddr => 1)
                or next;
            print "$port\n";
            exit 0;
        }
        die "free_port: no free port in $from-$to\n";'
}

# listening_port FILE PID: the port a test server says it listens on (its
# line "listening PORT" in FILE), waited for up to 10 s while PID lives;
# returns 1 (printing nothing) when it never says it.
listening_port() {
    local i port
    for i in $(seq 1 200); do
        port=$(sed -n 's/^listening \([0-9]*\)$/\1/p' "$1")
        [ -n "$port" ] && echo "$port" && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# http_status URL [curl args...]
http_status() {
    local url=$1
    shift
    curl -s -o /dev/null -w '%{http_code}' "$@" "$url"
}

# json_get JSON KEY: the first value of KEY (a string, number or word); for
# the flat JSON our endpoints answer
json_get() {
    printf '%s' "$1" | sed -n "s/.*\"$2\":\(\"\([^\"]*\)\"\|\([0-9a-z]*\)\).*/\2\3/p"
}

# base64url of standard input, without padding
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }

# b64url_json TEXT: base64url TEXT decoded
b64url_json() {
    local s
    s=$(printf '%s' "$1" | tr '_-' '/+')
    case $((${#s} % 4)) in 2) s="$s==" ;; 3) s="$s=" ;; esac
    printf '%s' "$s" | base64 -d 2>/dev/null
}

# jwt_header TOKEN, jwt_claims TOKEN: a JWT's decoded parts
jwt_header() { b64url_json "$(printf '%s' "$1" | cut -d. -f1)"; }
jwt_claims() { b64url_json "$(printf '%s' "$1" | cut -d. -f2)"; }

# --- SAML: the answers of tests/saml/make-assertions.sh -----------------------
# saml_fixtures [BENCH_N]: its IdP, keys and answers, made now, in SAML
# ($TMP/saml); the test is skipped without xmlsec1 and ends if it fails
saml_fixtures() {
    command -v xmlsec1 >/dev/null || { echo "xmlsec1 is missing: skipped"; exit 77; }
    SAML="$TMP/saml"
    bash "$SRCDIR/tests/saml/make-assertions.sh" "$SAML" "$(date +%s)" "$@" >"$TMP/make.log" 2>&1 ||
        { cat "$TMP/make.log"; echo "make-assertions.sh failed"; exit 1; }
}

# saml_fixture_instance FILE [SETTING...]: a saml backend instance that
# trusts that IdP, as the service provider its answers are for (their
# audience), with the SETTINGs (one a line)
saml_fixture_instance() {
    local file=$1
    shift
    printf 'kind = "backend";\nplugin = "saml";\nidp_metadata = "%s";\nsp_entity_id = "%s";\n' \
        "$SAML/metadata.xml" https://mandate.example.com/saml >"$file"
    [ $# -eq 0 ] || printf '%s\n' "$@" >>"$file"
}
# saml_advisors_mapping IDP AUDIENCE SCOPES [MORE]: the mapping rule that
# admits the SAML fixtures' advisor (role FinancialAdvisor, an employeeId) as
# advisor-<employeeId>; SCOPES a libconfig list, MORE further settings
saml_advisors_mapping() {
    cat <<RULE
  { name = "advisors"; idp = "$1";
    when = ( { attribute = "role"; equals = "FinancialAdvisor"; },
             { attribute = "employeeId"; present = true; } );
    subject = "advisor-\${employeeId}"; tenant = "default";
    scopes = $3; audience = ["$2"]; ${4:+$4 }}
RULE
}

# --- a browser, for the sign-in tests ---------------------------------------
# browse URL [curl args]: GET (or as the args say), no redirect followed; the
# answer's headers in $TMP/h, its body in $TMP/b; cookies kept in $COOKIES by
# hand (curl's own jar does not send Secure cookies over plain http to
# 127.0.0.1)
COOKIES=""
browse() {
    local url=$1 c
    shift
    curl -s -m 60 -D "$TMP/h" -o "$TMP/b" ${COOKIES:+-H "Cookie: $COOKIES"} "$@" "$url"
    while read -r c; do
        local name=${c%%=*}
        COOKIES=$(printf '%s' "$COOKIES" | tr ';' '\n' | sed 's/^ //' | grep -v "^$name=" |
            paste -sd';' | sed 's/;/; /g')
        case $c in *"Max-Age=0"*) ;; *) COOKIES="${COOKIES:+$COOKIES; }${c%%;*}" ;; esac
    done < <(sed -n 's/^Set-Cookie: //Ip' "$TMP/h" | tr -d '\r')
}
status() { sed -n '1s/^HTTP\/[0-9.]* \([0-9]*\).*/\1/p' "$TMP/h"; }
location() { sed -n 's/^Location: //Ip' "$TMP/h" | tr -d '\r'; }
form_value() { sed -n "s/.*name=\"$1\" value=\"\([^\"]*\)\".*/\1/p" "$TMP/b" | head -n 1; }

# start_run NAME READY SECONDS CMD...: runs CMD from the top of the source
# tree in the background (an example's run script: its directory is found
# from $0, as when a person runs it there), its output in $TMP/NAME.out and
# $TMP/NAME.err, until a line matches READY (grep) or it stops, at most
# SECONDS; sets RUN_PID (in PIDS, for cleanup)
start_run() {
    local name=$1 ready=$2 secs=$3
    shift 3
    (cd "$SRCDIR" && exec "$@") >"$TMP/$name.out" 2>"$TMP/$name.err" &
    RUN_PID=$!
    PIDS="$PIDS $RUN_PID"
    for _ in $(seq 1 $((secs * 10))); do
        grep -q "$ready" "$TMP/$name.out" && break
        kill -0 "$RUN_PID" 2>/dev/null || break
        sleep 0.1
    done
}

# stop_run PID DESCRIPTION: stops a script that started servers (an example's
# run script) by its PID alone, as a person's Ctrl-C would, and checks that
# it and each of its children have gone (stopping any left behind)
stop_run() {
    local run_pid=$1 children pid left=""
    children=$(ps -o pid= --ppid "$run_pid" | tr -d ' ' | tr '\n' ' ')
    echo "the run script $run_pid, its servers: $children"
    check "the run script has its servers as children" test -n "$children"
    kill -TERM "$run_pid"
    for _ in $(seq 1 100); do
        kill -0 "$run_pid" 2>/dev/null || break
        sleep 0.1
    done
    wait "$run_pid" 2>/dev/null
    PIDS=$(echo "$PIDS" | sed "s/ $run_pid\b//")
    for pid in $children; do
        kill -0 "$pid" 2>/dev/null && left="$left $pid"
    done
    expect_eq "$2" "" "$left"
    for pid in $left; do kill -TERM "$pid" 2>/dev/null; done
}

finish() {
    echo "$((CHECKS - FAILURES)) passed, $FAILURES failed"
    [ "$FAILURES" -eq 0 ]
}

# fatal WHY: one failed check, the closing line, exit 1
fatal() {
    CHECKS=$((CHECKS + 1))
    fail "$*"
    finish
    exit 1
}

# Agents exchanging our own tokens (RFC 8693), for exchange.sh and
# delegation.sh: the test declares SECRET (declare -A), which holds each
# client's secret by id; CAL and OTHER are the two tool servers' audiences.
new_client() { # ID [options]: every agent may call both tool servers
    local id=$1
    shift
    SECRET[$id]=$("${CTL[@]}" client create "$id" --scope "mcp:call gateway:invoke" \
        --audience "$CAL" --audience "$OTHER" "$@" 2>/dev/null | client_secret)
    check "client $id" test -n "${SECRET[$id]}"
}
exchange() { # ACTOR TOKEN [curl args]: the body; the status in $TMP/status
    local actor=$1 token=$2
    shift 2
    curl -s -o "$TMP/body" -w '%{http_code}' -u "$actor:${SECRET[$actor]}" \
        -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange \
        -d subject_token_type=urn:ietf:params:oauth:token-type:access_token \
        --data-urlencode "subject_token=$token" "$@" "$TOKEN_URL" >"$TMP/status"
    cat "$TMP/body"
}
# introspect TOKEN: the answer to the client "gateway" (made --introspect)
introspect() {
    curl -s -u "gateway:${SECRET[gateway]}" --data-urlencode "token=$1" "$BASE/oauth2/introspect"
}

# A broker with server DPoP nonces on (dpop.nonce) and one target for $AUD,
# for the scripts whose agent holds a DPoP-bound token: its client CLIENT
# (mcp:call for $AUD, dpop-bound) has its secret in SECRET.
dpop_nonce_broker_up() { # TARGET PATHS PUBLIC_URL CLIENT; PATHS a libconfig list
    new_state
    cat >>"$CONF" <<CONF
targets = ( { name = "$1"; paths = $2; audience = "$AUD"; scopes = ["mcp:call"];
              public_url = "$3"; } );
dpop: { nonce = true; };
CONF
    daemon_up
    issuer_is_base
    SECRET=$("${CTL[@]}" client create "$4" --scope mcp:call --default-scope mcp:call \
        --audience "$AUD" --dpop-bound 2>/dev/null | client_secret)
    check "a dpop-bound client, $4" test -n "$SECRET"
}
