#!/bin/bash
# Two broker nodes on one PostgreSQL (started here, on loopback, in a temp
# folder): a single-node SQLite deployment is moved with mandatectl migrate,
# then what one node's admin does shows on the other within a second
# (clients, revocations, a disabled client, a key rotation), and when
# PostgreSQL stops under load the nodes answer 503, say they are not ready,
# and recover by themselves when it is back.
. "${MANDATE_SRCDIR:-.}/tests/e2e/lib.sh"
. "$SRCDIR/tests/pg.sh"

if ! pg__bindir >/dev/null; then
    echo "no PostgreSQL server programs (set PG_BINDIR): skipped"
    exit 77
fi
PGDIR=$(mktemp -d /tmp/mandate-cluster-pg.XXXXXX)
stop_pg() { pg_stop "$PGDIR" >/dev/null 2>&1; }
trap 'stop_pg; cleanup; rm -rf "$PGDIR"' EXIT
check "PostgreSQL starts" pg_start "$PGDIR" || exit 1

AUD=https://mcp.example/market-calendar
ISSUER=http://mandate.cluster.test
A="$TMP/node-a"
LOG_A="$TMP/a.log"
LOG_B="$TMP/b.log"
make_state "$A" || { echo "mandatectl init failed"; exit 1; }
sed -i "s|^server: {|server: {\n  issuer = \"$ISSUER\";|" "$A/mandate.conf"
cat >>"$A/mandate.conf" <<CONF
targets = ( { name = "mcp"; paths = ["/mcp"]; audience = "$AUD"; scopes = ["mcp:call"]; } );
CONF
CTL_A=("$MANDATECTL" -c "$A/mandate.conf")

new_client() { # CTL-ARRAY-NAME ID [options]: prints the secret
    local -n ctl=$1
    local id=$2
    shift 2
    "${ctl[@]}" client create "$id" --scope "mcp:call" --default-scope "mcp:call" \
        --audience "$AUD" "$@" 2>/dev/null | client_secret
}
kid_of() { json_get "$(jwt_header "$1")" kid; }
token_at() { # BASE ID SECRET
    json_get "$(curl -s -u "$2:$3" -d grant_type=client_credentials "$1/oauth2/token")" access_token
}
gate_at() { # BASE TOKEN
    curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $2" -H "X-Original-URI: /mcp" \
        "$1/gateway/check"
}
# until CMD prints EXPECTED, for up to SECONDS (tenths)
within() { # SECONDS EXPECTED CMD...
    local tenths=$(($1 * 10)) want=$2 i
    shift 2
    for i in $(seq 0 "$tenths"); do
        [ "$("$@")" = "$want" ] && return 0
        sleep 0.1
    done
    return 1
}

# --- a single node on SQLite first, then moved --------------------------------
OLD_SECRET=$(new_client CTL_A advisor-1)
check "daemon on SQLite starts" start_daemon "$A/mandate.conf" "$TMP/sqlite.log" ||
    { cat "$TMP/sqlite.log"; exit 1; }
T_KEPT=$(token_at "$BASE" advisor-1 "$OLD_SECRET")
T_REVOKED=$(token_at "$BASE" advisor-1 "$OLD_SECRET")
curl -s -u "advisor-1:$OLD_SECRET" --data-urlencode "token=$T_REVOKED" "$BASE/oauth2/revoke" >/dev/null
expect_eq "revoked on SQLite" 401 "$(gate_at "$BASE" "$T_REVOKED")"
stop_daemon

out=$("${CTL_A[@]}" migrate --from "sqlite:$A/mandate.db" --to "pgsql:$PG_CONNINFO" 2>&1)
expect_eq "migrate exits 0" 0 "$?"
expect_contains "and says what it moved" "migrated 1 clients, 1 signing keys, 1 revocations" "$out"
out=$("${CTL_A[@]}" migrate --from "sqlite:$A/mandate.db" --to "pgsql:$PG_CONNINFO" 2>&1)
expect_eq "migrating again into a store in use is refused" 1 "$?"
rm "$A/mandate.d/store-sqlite.conf"
cat >"$A/mandate.d/store-pgsql.conf" <<CONF
kind = "store";
plugin = "pgsql";
conninfo = "$PG_CONNINFO";
CONF
# node B: its own folder (own audit trail), the same key-encryption key
B="$TMP/node-b"
cp -a "$A" "$B"
rm -rf "$B/audit" "$B/mandate.db"*
CTL_B=("$MANDATECTL" -c "$B/mandate.conf")

check "node A starts on PostgreSQL" start_daemon "$A/mandate.conf" "$LOG_A" || { cat "$LOG_A"; exit 1; }
PID_A=$DAEMON_PID
BASE_A=$BASE
check "node B starts on PostgreSQL" start_daemon "$B/mandate.conf" "$LOG_B" || { cat "$LOG_B"; exit 1; }
PID_B=$DAEMON_PID
BASE_B=$BASE
expect_eq "A ready" 200 "$(http_status "$BASE_A/readyz")"
expect_eq "B ready" 200 "$(http_status "$BASE_B/readyz")"

# --- what was moved -------------------------------------------------------------
expect_eq "a token from before the move still works on B" 200 "$(gate_at "$BASE_B" "$T_KEPT")"
expect_eq "a token revoked before the move stays revoked on B" 401 "$(gate_at "$BASE_B" "$T_REVOKED")"
expect_eq "the moved client authenticates on A" 200 \
    "$(http_status "$BASE_A/oauth2/token" -u "advisor-1:$OLD_SECRET" -d grant_type=client_credentials)"

# --- one node's admin, every node's answer ----------------------------------------
SECRET=$(new_client CTL_A agent-1)
check "a client made through A's mandatectl" test -n "$SECRET"
expect_eq "authenticates on B" 200 \
    "$(http_status "$BASE_B/oauth2/token" -u "agent-1:$SECRET" -d grant_type=client_credentials)"
T=$(token_at "$BASE_A" agent-1 "$SECRET")
expect_eq "a token from A passes B's gateway check" 200 "$(gate_at "$BASE_B" "$T")"
curl -s -u "agent-1:$SECRET" --data-urlencode "token=$T" "$BASE_A/oauth2/revoke" >/dev/null
check "revoked on A: B refuses it within a second" within 1 401 gate_at "$BASE_B" "$T"
T=$(token_at "$BASE_B" agent-1 "$SECRET")
expect_eq "a fresh token on both" "200 200" "$(gate_at "$BASE_A" "$T") $(gate_at "$BASE_B" "$T")"
# DPoP (issue 25): a proof's jti is spent on every node, through the store's replay cache
"$BUILDDIR/tests/dpop-proof" keygen ES256 "$TMP/agent.pem"
P=$("$BUILDDIR/tests/dpop-proof" proof "$TMP/agent.pem" POST "$ISSUER/oauth2/token")
dpop_token_at() { # BASE: the status of a client credentials request with the proof P
    curl -s -o /dev/null -w '%{http_code}' -u "agent-1:$SECRET" -H "DPoP: $P" \
        -d grant_type=client_credentials "$1/oauth2/token"
}
expect_eq "a DPoP proof used on A, replayed on B" "200 400" "$(dpop_token_at "$BASE_A") $(dpop_token_at "$BASE_B")"
"${CTL_B[@]}" client disable agent-1 >/dev/null
check "disabled through B: A refuses its token within a second" within 1 401 gate_at "$BASE_A" "$T"
"${CTL_B[@]}" client enable agent-1 >/dev/null

# Delegation (issue 26): a token handed down on A (helper-1, named in
# agent-1's may_act), its parent revoked through B's mandatectl: the
# derived token is refused by A within a second
HELPER=$(new_client CTL_A helper-1)
"${CTL_A[@]}" client set agent-1 --may-act helper-1 >/dev/null
T=$(token_at "$BASE_A" agent-1 "$SECRET")
D=$(json_get "$(curl -s -u "helper-1:$HELPER" \
    -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange \
    -d subject_token_type=urn:ietf:params:oauth:token-type:access_token \
    --data-urlencode "subject_token=$T" "$BASE_A/oauth2/token")" access_token)
check "helper-1 acts for agent-1's token on A" test -n "$D"
expect_eq "  B's gateway check takes it" 200 "$(gate_at "$BASE_B" "$D")"
out=$("${CTL_B[@]}" token revoke --token-file - <<<"$T")
expect_contains "its parent revoked through B: one descendant" "and 1 token derived from it" "$out"
check "  A refuses the derived token within a second" within 1 401 gate_at "$BASE_A" "$D"

OLD_KID=$(kid_of "$(token_at "$BASE_A" agent-1 "$SECRET")")
NEW_KID=$("${CTL_A[@]}" --json keys rotate | sed -n 's/.*"kid": "\([^"]*\)".*/\1/p')
check "keys rotated" test -n "$NEW_KID"
kid_from() { kid_of "$(token_at "$1" agent-1 "$SECRET")"; }
check "A signs with the new key within a second" within 1 "$NEW_KID" kid_from "$BASE_A"
check "B signs with the new key within a second" within 1 "$NEW_KID" kid_from "$BASE_B"
for base in "$BASE_A" "$BASE_B"; do
    jwks=$(curl -s "$base/oauth2/jwks")
    expect_contains "JWKS of $base lists the new key" "$NEW_KID" "$jwks"
    expect_contains "and the old one" "$OLD_KID" "$jwks"
done

# --- PostgreSQL stops under load -----------------------------------------------------
(for i in $(seq 1 600); do
    curl -s -o /dev/null -w '%{http_code}\n' -u "agent-1:$SECRET" -d grant_type=client_credentials \
        "$BASE_A/oauth2/token"
    sleep 0.01
done >"$TMP/load.codes") &
LOAD=$!
sleep 1
stop_pg
check "with PostgreSQL down, A is not ready" within 5 503 http_status "$BASE_A/readyz"
expect_eq "B is not ready either" 503 "$(http_status "$BASE_B/readyz")"
expect_contains "readyz says the store is unreachable" '"store":"unreachable"' "$(curl -s "$BASE_B/readyz")"
expect_eq "a token request on B: 503" 503 \
    "$(http_status "$BASE_B/oauth2/token" -u "agent-1:$SECRET" -d grant_type=client_credentials)"
sleep 2
check "PostgreSQL is back" pg_start "$PGDIR"
check "A recovers by itself" within 10 200 http_status "$BASE_A/readyz"
check "B recovers by itself" within 10 200 http_status "$BASE_B/readyz"
check "B issues tokens again" within 5 200 \
    http_status "$BASE_B/oauth2/token" -u "agent-1:$SECRET" -d grant_type=client_credentials
wait "$LOAD"
codes=$(sort "$TMP/load.codes" | uniq -c | tr -s ' ' | tr '\n' ',')
echo "  token requests during the outage: $codes"
check "the load saw 503s" grep -q '^503$' "$TMP/load.codes"
check "and no 500" bash -c "! grep -q '^500$' '$TMP/load.codes'"
check "and succeeded again afterwards" test "$(tail -n 1 "$TMP/load.codes")" = 200
expect_contains "the log says why" "store" "$(grep -i 'error\|warning' "$LOG_A" | tail -n 3)"
check "node A still runs" kill -0 "$PID_A"
check "node B still runs" kill -0 "$PID_B"

DAEMON_PID=$PID_A
stop_daemon
expect_eq "A stops cleanly" 0 "$DAEMON_STATUS"
DAEMON_PID=$PID_B
stop_daemon
expect_eq "B stops cleanly" 0 "$DAEMON_STATUS"
check "A's audit trail verifies" "${CTL_A[@]}" audit verify
check "B's audit trail verifies" "${CTL_B[@]}" audit verify
check "no sanitizer report" bash -c "! grep -q 'Sanitizer' '$LOG_A' '$LOG_B'"
finish
