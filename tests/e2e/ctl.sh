#!/bin/bash
# mandatectl and mandated as an operator uses them: help, init, config
# check, plugins (with a non-plugin .so in the folder), exit codes.
. "${MANDATE_SRCDIR:-.}/tests/e2e/lib.sh"

out=$("$MANDATECTL" --help)
expect_eq "mandatectl --help exits 0" 0 "$?"
expect_contains "help lists init" "init DIR" "$out"
"$MANDATECTL" frobnicate >/dev/null 2>&1
expect_eq "unknown command is bad usage" 2 "$?"
"$MANDATECTL" >/dev/null 2>&1
expect_eq "no command is bad usage" 2 "$?"
expect_contains "mandated --version" "mandated " "$("$MANDATED" --version)"
expect_contains "mandated --help" "Usage: mandated" "$("$MANDATED" --help)"
"$MANDATED" --bogus >/dev/null 2>&1
expect_eq "mandated bad option is bad usage" 2 "$?"

# init: a ready-to-run folder
STATE="$TMP/state"
out=$("$MANDATECTL" init "$STATE" --listen 127.0.0.1:0 --plugin-dir "$PLUGIN_DIR")
expect_eq "init exits 0" 0 "$?"
expect_contains "init says how to start" "mandated -c $STATE/mandate.conf" "$out"
expect_eq "kek is mode 600" 600 "$(stat -c %a "$STATE/kek")"
expect_eq "kek holds 64 hex digits" 1 "$(grep -cE '^[0-9a-f]{64}$' "$STATE/kek")"
check "database created" test -s "$STATE/mandate.db"
check "store instance file" test -f "$STATE/mandate.d/store-sqlite.conf"
"$MANDATECTL" init "$STATE" >"$TMP/out" 2>&1
expect_eq "init of an initialised folder is refused" 1 "$?"
expect_contains "and says why" "already exists" "$(cat "$TMP/out")"
"$MANDATECTL" init >/dev/null 2>&1
expect_eq "init without a folder is bad usage" 2 "$?"

# init -c FILE: the state of an existing configuration (the Debian package's
# /etc/mandate/mandate.conf and /var/lib/mandate), kept when run again
mkdir "$TMP/etc"
cp -r "$SRCDIR/etc/mandate.d" "$TMP/etc/"
sed -e "s|^state_dir = .*|state_dir = \"$TMP/var\";|" -e 's|127.0.0.1:8080|127.0.0.1:0|' \
    -e "s|^# plugin_dir = .*|plugin_dir = \"$PLUGIN_DIR\";|" "$SRCDIR/etc/mandate.conf" >"$TMP/etc/mandate.conf"
out=$("$MANDATECTL" -c "$TMP/etc/mandate.conf" init)
expect_eq "init -c FILE exits 0" 0 "$?"
expect_contains "and makes a new kek" "a new key-encryption key" "$out"
expect_eq "its state_dir is mode 700" 700 "$(stat -c %a "$TMP/var")"
expect_eq "its kek is mode 600" 600 "$(stat -c %a "$TMP/var/kek")"
check "its database created" test -s "$TMP/var/mandate.db"
kek=$(cat "$TMP/var/kek")
out=$("$MANDATECTL" -c "$TMP/etc/mandate.conf" init)
expect_eq "init -c FILE again exits 0" 0 "$?"
expect_contains "and keeps the kek" "key-encryption key kept" "$out"
expect_eq "the same kek" "$kek" "$(cat "$TMP/var/kek")"
mv "$TMP/var/kek" "$TMP/kek.saved"
out=$("$MANDATECTL" -c "$TMP/etc/mandate.conf" init 2>&1)
expect_eq "a lost kek beside data is not replaced" 1 "$?"
expect_contains "and says why" "missing but $TMP/var holds data" "$out"
check "no new kek written" test ! -e "$TMP/var/kek"
"$MANDATECTL" -c "$TMP/etc/mandate.conf" init --listen 127.0.0.1:0 >/dev/null 2>&1
expect_eq "init -c FILE with options of a new folder is bad usage" 2 "$?"

# config check
CONF="$STATE/mandate.conf"
out=$("$MANDATECTL" -c "$CONF" config check)
expect_eq "config check of a good file" 0 "$?"
expect_contains "says OK" "OK (4 plugin instances)" "$out"
out=$(MANDATE_CONF="$CONF" "$MANDATECTL" config check)
expect_eq "MANDATE_CONF is used" 0 "$?"
cp "$CONF" "$TMP/typo.conf"
sed -i 's/^state_dir = /stat_dir = /' "$TMP/typo.conf"
line=$(grep -n '^stat_dir' "$TMP/typo.conf" | cut -d: -f1)
out=$("$MANDATECTL" config check "$TMP/typo.conf" 2>&1)
expect_eq "a typo fails the check" 1 "$?"
expect_contains "names file, line and key" "$TMP/typo.conf:$line: unknown key 'stat_dir'" "$out"
printf 'path = "x.db";\nsynchronous = "sometimes";\nbusy_timeout = -5;\n' \
    >>"$STATE/mandate.d/store-sqlite.conf"
out=$("$MANDATECTL" -c "$CONF" config check 2>&1)
expect_eq "bad plugin keys fail the check" 1 "$?"
expect_contains "duplicate key in the instance file" "store-sqlite.conf" "$out"
"$MANDATECTL" init "$TMP/state2" --listen 127.0.0.1:0 --plugin-dir "$PLUGIN_DIR" >/dev/null
printf 'synchronous = "sometimes";\nbusy_timeout = -5;\n' >>"$TMP/state2/mandate.d/store-sqlite.conf"
out=$("$MANDATECTL" --json -c "$TMP/state2/mandate.conf" config check 2>&1)
expect_eq "json check fails too" 1 "$?"
expect_contains "json ok false" '"ok": false' "$out"
expect_contains "choices named" "'synchronous' must be one of normal|full" "$out"
expect_contains "range named" "'busy_timeout' is -5, outside the allowed range" "$out"
"$MANDATECTL" config check "$TMP/absent.conf" >/dev/null 2>&1
expect_eq "a missing file fails the check" 1 "$?"

# tokens.format must name an enabled format
"$MANDATECTL" init "$TMP/state4" --listen 127.0.0.1:0 --plugin-dir "$PLUGIN_DIR" >/dev/null
printf 'tokens: { format = "paseto"; };\n' >>"$TMP/state4/mandate.conf"
out=$("$MANDATECTL" -c "$TMP/state4/mandate.conf" config check 2>&1)
expect_eq "a tokens.format naming no instance fails the check" 1 "$?"
expect_contains "and says so" 'tokens.format = "paseto" names no enabled format' "$out"

# plugins, with things in the folder that are not plugins
PDIR="$TMP/plugins"
mkdir "$PDIR"
ln -s "$PLUGIN_DIR/store-sqlite.so" "$PDIR/store-sqlite.so"
ln -s "$BUILDDIR/tests/plugins/.libs/store-badabi.so" "$PDIR/store-badabi.so"
printf 'not an ELF file' >"$PDIR/store-junk.so"
cp /bin/true "$PDIR/backend-true.so"
out=$("$MANDATECTL" plugins --plugin-dir "$PDIR")
expect_eq "plugins exits 0" 0 "$?"
expect_contains "lists sqlite" "store      sqlite" "$out"
expect_contains "lists the sqlite file" "$PDIR/store-sqlite.so" "$out"
expect_contains "refuses the wrong ABI" "built for plugin ABI 2.0" "$out"
expect_contains "refuses junk" "store-junk.so): cannot load" "$out"
expect_contains "refuses an executable" "backend-true.so" "$out"
out=$("$MANDATECTL" --json plugins --plugin-dir "$PDIR")
expect_contains "json lists kind" '"kind": "store"' "$out"
out=$("$MANDATECTL" -c "$TMP/state2/mandate.conf" plugins)
expect_contains "uses the configured folder" "$PLUGIN_DIR/store-sqlite.so" "$out"

# mandated -t starts every plugin and exits
out=$("$MANDATED" -t -c "$TMP/state2/mandate.conf" 2>&1)
expect_eq "mandated -t of a bad config exits 1" 1 "$?"
"$MANDATECTL" init "$TMP/state3" --listen 127.0.0.1:0 --plugin-dir "$PLUGIN_DIR" >/dev/null
out=$("$MANDATED" -t -c "$TMP/state3/mandate.conf" 2>&1)
expect_eq "mandated -t of a good config exits 0" 0 "$?"
expect_contains "and says so" "configuration OK" "$out"

# a kek readable by others stops the daemon
chmod 644 "$TMP/state3/kek"
out=$("$MANDATED" -t -c "$TMP/state3/mandate.conf" 2>&1)
expect_eq "a world-readable kek is refused" 1 "$?"
expect_contains "and says what to do" "chmod 600" "$out"

# a kek behind a symbolic link is refused: the daemon opens the file once,
# without following links, and judges what it opened (not a stat of the path)
chmod 600 "$TMP/state3/kek"
mv "$TMP/state3/kek" "$TMP/state3/kek.real"
ln -s kek.real "$TMP/state3/kek"
out=$("$MANDATED" -t -c "$TMP/state3/mandate.conf" 2>&1)
expect_eq "a kek that is a symbolic link is refused" 1 "$?"
expect_contains "  and says why" "is a symbolic link" "$out"
rm "$TMP/state3/kek"
mkfifo "$TMP/state3/kek"
chmod 600 "$TMP/state3/kek"
out=$(timeout 5 "$MANDATED" -t -c "$TMP/state3/mandate.conf" 2>&1)
expect_eq "a kek that is not a regular file is refused (and does not block)" 1 "$?"
rm "$TMP/state3/kek"
mv "$TMP/state3/kek.real" "$TMP/state3/kek"
out=$("$MANDATED" -t -c "$TMP/state3/mandate.conf" 2>&1)
expect_eq "the kek itself, mode 600, is taken again" 0 "$?"

finish
