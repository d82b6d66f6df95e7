#!/bin/bash
# The Debian packages, as an operator gets them: build them from a copy of
# this tree (dpkg-buildpackage -us -uc -b, without the test suite), check
# them with lintian and the unit with systemd-analyze verify, install them on
# this machine, run the unit's ExecStartPre (mandatectl init) and ExecStart
# as the mandate user on a free loopback port (no systemd needed), get a
# token with the CLI; the daemon runs under strace, and what it did is held
# against the unit's sandbox: its system calls against SystemCallFilter,
# MemoryDenyWriteExecute, its sockets against RestrictAddressFamilies, its
# writes against ProtectSystem=strict. Then the packages are purged and the
# machine is left as it was (the mandate user too, when the test made it).
#
# Needs root on Debian 12 with .ci/install-deps done. Not part of make check
# (it builds the whole tree again): .ci/check runs it after the suite.
# Usage: bash tests/package.sh   (KEEP_DEBS=DIR keeps the .deb files there)
set -uo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
# lib.sh's checks and helpers; it wants a build folder, which this test
# does not use (every program comes from the packages)
MANDATE_BUILDDIR=${MANDATE_BUILDDIR:-$SRC}
. "$SRC/tests/e2e/lib.sh"
started=$(date +%s)

PACKAGES=(mandate mandate-plugin-saml mandate-plugin-pgsql libmandate0 libmandate-dev)
UNIT=/lib/systemd/system/mandate.service
APT=(apt-get -o DPkg::Lock::Timeout=900 -y -q)
export DEBIAN_FRONTEND=noninteractive

if [ "$(id -u)" -ne 0 ]; then
    echo "tests/package.sh: needs root (it installs and purges packages)"
    exit 77
fi
for p in "${PACKAGES[@]}"; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q installed; then
        echo "tests/package.sh: $p is installed on this machine; the test would purge it"
        exit 1
    fi
done
user_existed=false
getent passwd mandate >/dev/null && user_existed=true
dpkg-query -W -f='${Package}\n' | sort >"$TMP/packages.before"

# Where systemd runs, the package's postinst would start the service (and
# its ExecStartPre init the state) before the test does: forbid it, the way
# Debian's container images do, for the time of the test
policy_made=false
if [ -d /run/systemd/system ] && [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# tests/package.sh: no service starts while it runs\nexit 101\n' \
        >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    policy_made=true
fi

package_cleanup() {
    for pid in $PIDS; do
        kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    PIDS=""
    installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${PACKAGES[@]}" 2>/dev/null |
        awk '/ installed$/ { print $1 }')
    [ -n "$installed" ] && { "${APT[@]}" purge $installed >"$TMP/purge.log" 2>&1 || cat "$TMP/purge.log"; }
    # anything apt brought in for them goes too
    dpkg-query -W -f='${Package}\n' | sort | comm -13 "$TMP/packages.before" - >"$TMP/new"
    [ -s "$TMP/new" ] && "${APT[@]}" purge $(cat "$TMP/new") >/dev/null 2>&1
    if ! $user_existed && getent passwd mandate >/dev/null; then
        userdel mandate 2>/dev/null
        getent group mandate >/dev/null && groupdel mandate 2>/dev/null
    fi
    $policy_made && rm -f /usr/sbin/policy-rc.d
    cleanup
}
trap package_cleanup EXIT

# --- build --------------------------------------------------------------------
# A copy of the tree as git knows it (tracked and new files), else as it is
# without the build folders
mkdir "$TMP/src"
if git -C "$SRC" rev-parse --git-dir >/dev/null 2>&1; then
    (cd "$SRC" && git ls-files -z --cached --others --exclude-standard |
        xargs -0 tar -cf - --no-recursion) | tar -C "$TMP/src" -xf -
else
    tar -C "$SRC" --exclude=./_build --exclude=node_modules -cf - . | tar -C "$TMP/src" -xf -
fi
t0=$(date +%s)
(cd "$TMP/src" && DEB_BUILD_OPTIONS="nocheck parallel=$(nproc 2>/dev/null || echo 2)" \
    dpkg-buildpackage -us -uc -b) >"$TMP/build.log" 2>&1
status=$?
expect_eq "dpkg-buildpackage -us -uc -b builds the packages" 0 "$status"
[ "$status" -eq 0 ] || { tail -n 60 "$TMP/build.log"; exit 1; }
echo "built in $(($(date +%s) - t0)) s"
for p in "${PACKAGES[@]}"; do
    check "$p built" test -f "$(ls "$TMP"/${p}_*.deb 2>/dev/null | head -n 1)"
done
[ -n "${KEEP_DEBS:-}" ] && mkdir -p "$KEEP_DEBS" && cp "$TMP"/*.deb "$KEEP_DEBS"/
contents=$(dpkg-deb -c "$TMP"/mandate_*.deb)
expect_contains "mandate has the daemon" "./usr/sbin/mandated" "$contents"
expect_contains "mandate has the unit" "./lib/systemd/system/mandate.service" "$contents"
expect_contains "mandate has the SQLite store" "/mandate/plugins/store-sqlite.so" "$contents"
check "mandate has no PostgreSQL plugin" test "${contents/store-pgsql.so/}" = "$contents"
expect_contains "libmandate-dev has the .pc file" "pkgconfig/mandate.pc" \
    "$(dpkg-deb -c "$TMP"/libmandate-dev_*.deb)"
check "no libtool .la file is packaged" \
    bash -c "! for d in '$TMP'/*.deb; do dpkg-deb -c \"\$d\"; done | grep -q '\.la\$'"

# lintian: nothing at error or warning level (overrides say why)
t0=$(date +%s)
lintian --fail-on error,warning --display-info \
    "$TMP"/mandate_*.changes >"$TMP/lintian.log" 2>&1
status=$?
cat "$TMP/lintian.log"
expect_eq "lintian finds no error or warning ($(($(date +%s) - t0)) s)" 0 "$status"

# --- install ------------------------------------------------------------------
"${APT[@]}" install --no-install-recommends "$TMP"/*.deb >"$TMP/install.log" 2>&1
status=$?
expect_eq "apt-get install ./*.deb" 0 "$status"
[ "$status" -eq 0 ] || { cat "$TMP/install.log"; exit 1; }
out=$(systemd-analyze verify "$UNIT" 2>&1)
expect_eq "systemd-analyze verify the unit" 0 "$?"
[ -n "$out" ] && echo "$out"
check "the mandate system user" test "$(id -u mandate)" -lt 1000
expect_eq "its home" /var/lib/mandate "$(getent passwd mandate | cut -d: -f6)"
expect_eq "/var/lib/mandate is its own, 0700" "mandate mandate 700" \
    "$(stat -c '%U %G %a' /var/lib/mandate)"
expect_eq "/etc/mandate is root's, readable by its group" "root mandate 750" \
    "$(stat -c '%U %G %a' /etc/mandate)"
plugins=$(mandatectl -c /etc/mandate/mandate.conf plugins)
for p in store-sqlite store-pgsql format-jwt format-opaque backend-local backend-oidc \
    backend-saml backend-secretsmanager; do
    expect_contains "plugin $p found where the packages put it" "/$p.so" "$plugins"
done
check "not a plugin refused" test "${plugins/refused/}" = "$plugins"
expect_eq "pkg-config mandate" 0.1.0 "$(pkg-config --modversion mandate)"
printf '#include <mandate/client.h>\nint main(void) { return mandate_token_source_new == 0; }\n' \
    >"$TMP/probe.c"
check "a program builds against libmandate-dev" \
    cc -o "$TMP/probe" "$TMP/probe.c" $(pkg-config --cflags --libs mandate)
check "and runs with libmandate0" "$TMP/probe"

# --- the unit's commands, as the mandate user --------------------------------
# The packaged configuration, as an operator would edit it: any free port
sed -i 's|^\(  *listen = \)"127.0.0.1:8080";|\1"127.0.0.1:0";|' /etc/mandate/mandate.conf
check "listen set to a free port" grep -q '"127.0.0.1:0"' /etc/mandate/mandate.conf
unit_line() { sed -n "s/^$1=//p" "$UNIT" | head -n 1; }
as_mandate() {
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/var/lib/mandate USER=mandate LOGNAME=mandate \
        LANG=C.UTF-8 setpriv --reuid=mandate --regid=mandate --init-groups --no-new-privs \
        --inh-caps=-all --bounding-set=-all -- "$@"
}
PRE=$(unit_line ExecStartPre)
START=$(unit_line ExecStart)
expect_eq "ExecStartPre is mandatectl init" "/usr/bin/mandatectl -c /etc/mandate/mandate.conf init" "$PRE"
(cd /var/lib/mandate && as_mandate $PRE) >"$TMP/init.log" 2>&1
expect_eq "ExecStartPre as mandate" 0 "$?"
expect_contains "it made a new key-encryption key" "a new key-encryption key" "$(cat "$TMP/init.log")"
expect_eq "the kek is the user's, 0600" "mandate 600" "$(stat -c '%U %a' /var/lib/mandate/kek)"
check "the database made" test -s /var/lib/mandate/mandate.db
as_mandate $PRE >"$TMP/init2.log" 2>&1
expect_contains "run again, it keeps the kek" "key-encryption key kept" "$(cat "$TMP/init2.log")"

LOG="$TMP/mandated.log"
(cd / && exec strace -f -qq -o "$TMP/trace" env -i PATH=/usr/bin:/bin HOME=/var/lib/mandate \
    LANG=C.UTF-8 setpriv --reuid=mandate --regid=mandate --init-groups --no-new-privs \
    --inh-caps=-all --bounding-set=-all -- $START) >"$LOG" 2>&1 &
DAEMON_PID=$!
PIDS="$PIDS $DAEMON_PID"
check "ExecStart as mandate: the daemon listens" wait_for_log "$LOG" " listening on "
PORT=$(sed -n 's/.* listening on .* port \([0-9]*\),.*/\1/p' "$LOG" | head -n 1)
BASE="http://127.0.0.1:$PORT"
expect_eq "ready" 200 "$(http_status "$BASE/readyz")"

# a client, made as the operator would (mandatectl as the mandate user), and
# a token got with the CLI
SECRETS=$(mktemp -d "$TMP/secrets.XXXXXX")
chmod 755 "$TMP"
chown mandate "$SECRETS"
as_mandate mandatectl -c /etc/mandate/mandate.conf client create pkg-agent \
    --scope "mcp:call" --audience https://mcp.example/market-calendar --introspect \
    --secret-file "$SECRETS/pkg-agent.secret" >"$TMP/create.log" 2>&1
expect_eq "client create as mandate" 0 "$?"
token=$(mandatectl token get --token-url "$BASE/oauth2/token" --client-id pkg-agent \
    --scope mcp:call --secret-file "$SECRETS/pkg-agent.secret" 2>"$TMP/token.err")
expect_eq "mandatectl token get" 0 "$?"
expect_contains "a JWT for pkg-agent" '"client_id":"pkg-agent"' "$(jwt_claims "$token" | tr -d ' ')"
expect_eq "the token is active" true "$(json_get "$(curl -s -u "pkg-agent:$(cat "$SECRETS/pkg-agent.secret")" \
    --data-urlencode token="$token" "$BASE/oauth2/introspect")" active)"
kill -HUP "$(pgrep -u mandate -x mandated)"
check "ExecReload (SIGHUP) reloads" wait_for_log "$LOG" "reloaded:"
kill -TERM "$(pgrep -u mandate -x mandated)"
wait "$DAEMON_PID"
expect_eq "SIGTERM: the daemon drains and exits 0" 0 "$?"
PIDS=""
as_mandate mandatectl -c /etc/mandate/mandate.conf audit verify >"$TMP/verify.log" 2>&1
expect_eq "its audit trail verifies" 0 "$?"

# --- what the daemon did, against the unit's sandbox -------------------------
# from the daemon's own execve on (setpriv's setuid calls come before it)
sed -n '\|execve("/usr/sbin/mandated"|,$p' "$TMP/trace" >"$TMP/daemon.trace"
check "the daemon was traced" test -s "$TMP/daemon.trace"
expand() { # a systemd syscall group, its nested groups expanded
    systemd-analyze syscall-filter "$1" | tail -n +2 | sed 's/^ *//' | grep -v '^#' |
        while read -r s; do
            [ -z "$s" ] && continue
            case $s in @*) expand "$s" ;; *) echo "$s" ;; esac
        done
}
allowed=$(sed -n 's/^SystemCallFilter=//p' "$UNIT" | while read -r line; do
    case $line in
    "~"*) for g in ${line#\~}; do expand "$g"; done | sed 's/^/-/' ;;
    *) for g in $line; do expand "$g"; done ;;
    esac
done | sort -u)
printf '%s\n' "$allowed" | grep -v '^-' | sort -u >"$TMP/allow"
printf '%s\n' "$allowed" | sed -n 's/^-//p' | sort -u >"$TMP/deny"
comm -23 "$TMP/allow" "$TMP/deny" >"$TMP/permitted"
grep -oE '^[0-9]+ +[a-z_0-9]+\(' "$TMP/daemon.trace" | sed 's/^[0-9]* *//; s/($//' |
    sort -u >"$TMP/used"
echo "the daemon made $(wc -l <"$TMP/used") kinds of system call; the unit permits $(wc -l <"$TMP/permitted")"
expect_eq "every system call is in the unit's SystemCallFilter" "" \
    "$(comm -23 "$TMP/used" "$TMP/permitted" | tr '\n' ' ')"
expect_eq "MemoryDenyWriteExecute: nothing mapped writable and executable" "" \
    "$(grep -E 'mmap\(.*PROT_WRITE\|PROT_EXEC|mmap\(.*PROT_EXEC\|PROT_WRITE|(pkey_)?mprotect\(.*PROT_EXEC' \
        "$TMP/daemon.trace" | head -n 3)"
expect_eq "RestrictAddressFamilies: AF_UNIX, AF_INET, AF_INET6 only" "" \
    "$(grep -E 'socket\((AF|PF)_' "$TMP/daemon.trace" | grep -vE 'socket\((AF|PF)_(UNIX|LOCAL|INET|INET6),' |
        head -n 3)"
expect_eq "ProtectSystem=strict: writes under /var/lib/mandate only" "" \
    "$(grep -E 'open(at)?\(.*O_(WRONLY|RDWR|CREAT)' "$TMP/daemon.trace" | grep -v ' = -1 ' |
        grep -vE '"(/var/lib/mandate/[^"]*|/dev/null)"' | head -n 3)"
expect_eq "ProcSubset=pid: no /proc file but a process's" "" \
    "$(grep -E 'open(at)?\(.*"/proc/' "$TMP/daemon.trace" | grep -v ' = -1 ' |
        grep -vE '"/proc/(self|thread-self|[0-9]+)/' | head -n 3)"
expect_eq "ProtectHome, PrivateDevices: nothing of /home, /root or /dev opened" "" \
    "$(grep -E 'open(at)?\(.*"(/home|/root|/run/user|/dev/)' "$TMP/daemon.trace" | grep -v ' = -1 ' |
        grep -vE '"/dev/(null|zero|full|u?random)"' | head -n 3)"

# --- purge --------------------------------------------------------------------
"${APT[@]}" purge "${PACKAGES[@]}" >"$TMP/purge.log" 2>&1
expect_eq "apt-get purge" 0 "$?"
check "/var/lib/mandate removed" test ! -e /var/lib/mandate
check "/etc/mandate removed" test ! -e /etc/mandate
check "its stat override removed" bash -c '! dpkg-statoverride --list /etc/mandate'
check "no mandatectl left" bash -c '! command -v mandatectl'
expect_eq "no trace of the unit left in systemd's folders" "" \
    "$(find /etc/systemd /var/lib/systemd /lib/systemd /usr/lib/systemd /usr/lib/sysusers.d \
        /usr/lib/tmpfiles.d -name 'mandate*' 2>/dev/null)"
times >"$TMP/times" # in this shell: $(times) would time a subshell
cpu=$(tail -n 1 "$TMP/times")
echo "tests/package.sh: $(($(date +%s) - started)) s (processor time of its commands, user and system: $cpu)"
finish
