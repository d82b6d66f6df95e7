#!/bin/bash
# The store conformance suite against PostgreSQL: starts a throwaway server
# on loopback (tests/pg.sh) in a temp folder, runs tests/test-store-pgsql
# against it, and stops it however the test ends. Skips (77) without the
# server programs.
set -u

BUILDDIR=${MANDATE_BUILDDIR:?run through make check}
SRCDIR=${MANDATE_SRCDIR:-$BUILDDIR}
. "$SRCDIR/tests/pg.sh"

if ! pg__bindir >/dev/null; then
    echo "no PostgreSQL server programs (initdb, pg_ctl; set PG_BINDIR): skipped"
    exit 77
fi
if [ "$(id -u)" = 0 ] && ! command -v runuser >/dev/null; then
    echo "running as root without runuser: skipped"
    exit 77
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/mandate-pg.XXXXXX") || exit 1
cleanup() {
    pg_stop "$TMP"
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

pg_start "$TMP" || exit 1
echo "PostgreSQL on 127.0.0.1:$PGPORT in $TMP"

# the restart test stops and starts this server through tests/pg.sh
MANDATE_TEST_PGSQL=$PG_CONNINFO \
    MANDATE_TEST_PGSQL_CTL="bash $SRCDIR/tests/pg.sh" \
    MANDATE_TEST_PGSQL_DIR=$TMP \
    "$BUILDDIR/tests/test-store-pgsql"
