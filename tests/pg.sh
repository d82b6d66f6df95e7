# A throwaway PostgreSQL server on loopback, in a folder of its own, for the
# tests. Source it and call the functions, or run it:
#
#   . tests/pg.sh; pg_start DIR; ...; pg_stop DIR
#   bash tests/pg.sh start DIR     # prints the conninfo
#   bash tests/pg.sh stop DIR
#
# pg_start DIR   initdb (trust, superuser "postgres", UTF8, C locale) into
#                DIR/data unless it is there, then starts the server on
#                127.0.0.1 at a free port (kept in DIR/port, so a restart
#                gets the same one), its socket in DIR, and waits until it
#                accepts connections. Exports PGHOST, PGPORT, PGUSER,
#                PGDATABASE and PG_CONNINFO. Tuned for tests: no fsync.
# pg_stop DIR    stops that server (fast shutdown; by PID if pg_ctl fails).
#
# The server programs come from $PG_BINDIR, else the newest
# /usr/lib/postgresql/*/bin (Debian), else the PATH. initdb refuses to run as
# root: as root the server runs as $PG_TEST_USER, else "postgres" when that
# user exists, else "nobody", and DIR is handed to that user (so DIR's parent
# folders must let it through: make DIR under /tmp).

pg__bindir() {
    if [ -n "${PG_BINDIR:-}" ] && [ -x "$PG_BINDIR/pg_ctl" ]; then
        printf '%s\n' "$PG_BINDIR"
        return 0
    fi
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -n "$d" ] && [ -x "$d/pg_ctl" ]; then
        printf '%s\n' "$d"
        return 0
    fi
    d=$(command -v pg_ctl 2>/dev/null) || return 1
    dirname "$d"
}

pg__user() {
    if [ "$(id -u)" != 0 ]; then
        return 0
    fi
    if [ -n "${PG_TEST_USER:-}" ]; then
        printf '%s\n' "$PG_TEST_USER"
    elif id -u postgres >/dev/null 2>&1; then
        printf 'postgres\n'
    else
        printf 'nobody\n'
    fi
}

# pg__run DIR PROGRAM ARGS...: a server program, as the unprivileged user
# when we are root; run from DIR (the user may not enter our cwd).
pg__run() {
    local dir=$1 prog=$2 user
    shift 2
    user=$(pg__user)
    if [ -n "$user" ]; then
        (cd "$dir" && runuser -u "$user" -- "$PG__BIN/$prog" "$@")
    else
        (cd "$dir" && "$PG__BIN/$prog" "$@")
    fi
}

pg__port_free() {
    # a connection that succeeds means somebody listens there
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pg_start() {
    local dir=${1:?pg_start DIR}
    PG__BIN=$(pg__bindir) || {
        echo "pg.sh: no PostgreSQL server programs (set PG_BINDIR)" >&2
        return 1
    }
    mkdir -p "$dir" || return 1
    dir=$(cd "$dir" && pwd) || return 1
    local user
    user=$(pg__user)
    if [ -n "$user" ]; then
        chown "$user" "$dir" || return 1
        chmod 0700 "$dir"
    fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        pg__run "$dir" initdb -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C \
            --no-sync >"$dir/initdb.log" 2>&1 || {
            echo "pg.sh: initdb failed:" >&2
            cat "$dir/initdb.log" >&2
            return 1
        }
    fi
    local port tries=0
    for tries in 1 2 3 4 5 6 7 8 9 10; do
        if [ -f "$dir/port" ]; then
            port=$(cat "$dir/port")
        else
            port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
            pg__port_free "$port" || continue
        fi
        if pg__run "$dir" pg_ctl -D "$dir/data" -l "$dir/server.log" -w -t 60 -s \
            -o "-k $dir -c listen_addresses=127.0.0.1 -p $port -c fsync=off \
-c synchronous_commit=off -c full_page_writes=off -c max_connections=200" start; then
            echo "$port" >"$dir/port"
            export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres PGDATABASE=postgres
            export PG_CONNINFO="host=127.0.0.1 port=$port user=postgres dbname=postgres"
            return 0
        fi
        # another process may have taken the port between our look and
        # the server's bind: try another, unless this is a restart
        if [ -f "$dir/port" ] || ! grep -q "could not bind\|could not create listen" \
            "$dir/server.log" 2>/dev/null; then
            break
        fi
    done
    echo "pg.sh: the server did not start:" >&2
    tail -n 20 "$dir/server.log" >&2 2>/dev/null
    return 1
}

pg_stop() {
    local dir=${1:?pg_stop DIR}
    [ -f "$dir/data/postmaster.pid" ] || return 0
    PG__BIN=$(pg__bindir) || return 1
    if ! pg__run "$dir" pg_ctl -D "$dir/data" -m fast -w -t 30 -s stop; then
        local pid
        pid=$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null)
        [ -n "$pid" ] && kill -QUIT "$pid" 2>/dev/null
    fi
    return 0
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    case "${1:-}" in
    start) pg_start "${2:?DIR}" && printf '%s\n' "$PG_CONNINFO" ;;
    stop) pg_stop "${2:?DIR}" ;;
    *)
        echo "usage: bash $0 start|stop DIR" >&2
        exit 2
        ;;
    esac
fi
