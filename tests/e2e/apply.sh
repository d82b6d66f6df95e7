#!/bin/bash
# mandatectl apply: clients and gateway targets declared in a document,
# through the real store and daemon: the plan, --dry-run, idempotence,
# updates, --prune (disabled, tokens refused), secret files of mode 0600,
# a libconfig document, and bad documents refused whole with messages that
# name the place.
. "${MANDATE_SRCDIR:-.}/tests/e2e/lib.sh"

new_state
AUD=https://mcp.example/market-calendar
DOC="$TMP/fleet.json"
mkdir "$TMP/secrets"
MARKETPULSE='{"id": "marketpulse", "name": "MarketPulse agent",
     "scopes": ["gateway:invoke", "mcp:call"], "default_scopes": ["mcp:call"],
     "audiences": ["'$AUD'"], "secret_file": "secrets/marketpulse.secret",
     "rate_limit": 5, "rate_burst": 10},'
PATHS='"/fleet"'
write_doc() { # REPORTER_TTL [EXTRA CLIENT JSON]: the document, with $MARKETPULSE and $PATHS
    cat >"$DOC" <<EOF
{
  "clients": [
    $MARKETPULSE ${2:+
    $2,}
    {"id": "reporter", "scopes": "reports:read", "default_scopes": "reports:read", "ttl": $1,
     "secret_file": "secrets/reporter.secret"}
  ],
  "targets": [
    {"name": "fleet-tools", "paths": [$PATHS], "audience": "$AUD", "scopes": ["mcp:call"]}
  ]
}
EOF
}
gate() { # TOKEN URI: the gateway check's status
    curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $1" \
        -H "X-Original-URI: $2" "$BASE/gateway/check"
}
audit_count() { cat "$STATE"/audit/*.jsonl 2>/dev/null | grep -c "$1"; }

# the plan, and a dry run that changes nothing
write_doc 600
out=$("${CTL[@]}" apply "$DOC" --dry-run 2>&1)
expect_eq "dry run exits 0" 0 "$?"
expect_contains "plan: + client" "+ client marketpulse (client_secret, secret to secrets/marketpulse.secret)" "$out"
expect_contains "plan: + target" "+ target fleet-tools (/fleet)" "$out"
expect_contains "plan: the tally" "Plan: 3 to create, 0 to update, 0 to disable, 0 to remove." "$out"
expect_contains "dry run says so" "Dry run: nothing was changed." "$out"
"${CTL[@]}" client show marketpulse >/dev/null 2>&1
expect_eq "dry run created no client" 1 "$?"
check "dry run wrote no secret file" test ! -e "$TMP/secrets/marketpulse.secret"
check "dry run wrote no targets file" test ! -e "$STATE/targets.conf"

# apply
out=$("${CTL[@]}" apply "$DOC" 2>"$TMP/err")
expect_eq "apply exits 0" 0 "$?"
expect_contains "applied" "Applied: 2 created, 0 updated, 0 disabled; targets written." "$out"
check "no secret on standard output" bash -c "! grep -qF -- \"\$(cat '$TMP/secrets/marketpulse.secret')\" <<<'$out'"
expect_contains "says where the secret is" "secrets/marketpulse.secret (mode 0600)" "$(cat "$TMP/err")"
expect_eq "secret file mode 0600" 600 "$(stat -c %a "$TMP/secrets/marketpulse.secret")"
expect_eq "second secret file mode 0600" 600 "$(stat -c %a "$TMP/secrets/reporter.secret")"
check "targets file written" grep -q 'name = "fleet-tools"' "$STATE/targets.conf"
expect_eq "an audit record per created client" 2 "$(audit_count '"client.created"')"
expect_contains "the record names the document" "$DOC" "$(cat "$STATE"/audit/*)"
show=$("${CTL[@]}" --json client show marketpulse)
expect_contains "scopes stored" '"scope": "gateway:invoke mcp:call"' "$show"
expect_contains "rate stored" '"rate_limit": 5' "$show"

# the clients work, behind the target apply wrote
daemon_up
MP_SECRET=$(cat "$TMP/secrets/marketpulse.secret")
TOKEN=$(token_for marketpulse "$MP_SECRET")
check "the applied client gets a token" test -n "$TOKEN"
expect_eq "the applied target passes it" 200 "$(gate "$TOKEN" /fleet)"
expect_eq "and refuses no token" 401 "$(gate "" /fleet)"
check "the second client gets a token" test -n "$(token_for reporter "$(cat "$TMP/secrets/reporter.secret")")"

# idempotent
out=$("${CTL[@]}" apply "$DOC" 2>&1)
expect_eq "a second apply exits 0" 0 "$?"
expect_contains "changes nothing and says so" "No changes: the store and the targets match" "$out"
expect_eq "and writes no audit record (2 clients, 1 targets file)" 3 "$(audit_count '"via":"mandatectl"')"

# an edit: the plan shows the update, a dry run does not make it
write_doc 900
out=$("${CTL[@]}" apply "$DOC" --dry-run 2>&1)
expect_contains "plan: ~ client" "~ client reporter" "$out"
expect_contains "plan: the field" "ttl: 600 -> 900" "$out"
expect_contains "plan: one update" "Plan: 0 to create, 1 to update, 0 to disable, 0 to remove." "$out"
out=$("${CTL[@]}" --json apply "$DOC" --dry-run 2>/dev/null)
expect_contains "--json plan" '"op": "update"' "$out"
expect_contains "--json plan fields" '"ttl: 600 -> 900"' "$out"
expect_contains "dry run leaves the ttl" '"ttl": 600' "$("${CTL[@]}" --json client show reporter)"
out=$("${CTL[@]}" apply "$DOC" 2>&1)
expect_contains "the update applied" "Applied: 0 created, 1 updated, 0 disabled." "$out"
expect_contains "the ttl changed" '"ttl": 900' "$("${CTL[@]}" --json client show reporter)"
expect_eq "an audit record for the update" 1 "$(audit_count '"client.updated"')"
expect_contains "idempotent after the update" "No changes" "$("${CTL[@]}" apply "$DOC" 2>&1)"

# a target edited: written, and the daemon takes it on SIGHUP
PATHS='"/fleet", "/fleet-tools/"'
write_doc 900
out=$("${CTL[@]}" apply "$DOC" 2>&1)
expect_contains "plan: ~ target" "~ target fleet-tools" "$out"
expect_contains "plan: the paths" "paths: [/fleet] -> [/fleet /fleet-tools/]" "$out"
expect_contains "says to reload" "reads it on SIGHUP" "$out"
kill -HUP "$DAEMON_PID"
check "the daemon reloads" wait_for_log "$LOG" "reloaded:"
expect_eq "the new path is checked" 200 "$(gate "$TOKEN" /fleet-tools/x)"

# a client left out: alone without --prune, disabled with it
cp "$DOC" "$TMP/full.json"
FULL_MARKETPULSE=$MARKETPULSE
MARKETPULSE=""
write_doc 900
MARKETPULSE=$FULL_MARKETPULSE
out=$("${CTL[@]}" apply "$DOC" 2>&1)
expect_contains "without --prune it is left alone" "1 enabled client not in" "$out"
expect_contains "  and still enabled" '"status": "enabled"' "$("${CTL[@]}" --json client show marketpulse)"
out=$("${CTL[@]}" apply "$DOC" --prune --dry-run 2>&1)
expect_contains "plan: - client" "- client marketpulse (disabled: not in the document; --prune)" "$out"
out=$("${CTL[@]}" apply "$DOC" --prune 2>&1)
expect_contains "pruned" "Applied: 0 created, 0 updated, 1 disabled." "$out"
expect_contains "disabled, not deleted" '"status": "disabled"' "$("${CTL[@]}" --json client show marketpulse)"
expect_eq "an audit record for the disable" 1 "$(audit_count '"client.disabled"')"
expect_eq "its token is refused at the gateway" 401 "$(gate "$TOKEN" /fleet)"
check "it gets no new token" test -z "$(token_for marketpulse "$MP_SECRET")"
out=$("${CTL[@]}" apply "$DOC" --prune 2>&1)
expect_contains "pruning again changes nothing" "No changes" "$out"
# declared again: enabled again (its secret file is kept)
out=$("${CTL[@]}" apply "$TMP/full.json" 2>&1)
expect_contains "declared again: re-enabled" "disabled: true -> false" "$out"
check "and gets a token again" test -n "$(token_for marketpulse "$MP_SECRET")"

# newcomer_refused WHAT WORDS [JSON MEMBERS]: the document with a client
# "newcomer" (and those members) is refused saying WORDS, and the client
# is not created
newcomer_refused() {
    write_doc 900 "{\"id\": \"newcomer\", \"scopes\": \"reports:read\", \"default_scopes\": \"reports:read\"${3:+, $3}}"
    out=$("${CTL[@]}" apply "$DOC" 2>&1)
    expect_eq "$1" 1 "$?"
    expect_contains "  and says why" "$2" "$out"
    "${CTL[@]}" client show newcomer >/dev/null 2>&1
    expect_eq "  and nothing was created" 1 "$?"
}
# a secret file that exists is not overwritten
newcomer_refused "an existing secret file is refused" \
    "secrets/reporter.secret exists; name a new file, or --replace-secret-files" \
    '"secret_file": "secrets/reporter.secret"'
# a secret with nowhere to go is refused too; --show-secrets prints it
newcomer_refused "a secret with no file is refused" "keeps no copy of the secret: name a 'secret_file'"
out=$("${CTL[@]}" apply "$DOC" --show-secrets 2>/dev/null)
NEW_SECRET=$(printf '%s\n' "$out" | sed -n 's/^client_secret newcomer: //p')
check "--show-secrets prints it" test -n "$NEW_SECRET"
check "  and it works" test -n "$(token_for newcomer "$NEW_SECRET")"

# nothing half-applied: one good and one bad new client, neither is made
write_doc 900 '{"id": "good-one", "secret_file": "secrets/good.secret"}, {"id": "bad-one", "format": "paseto", "secret_file": "secrets/bad.secret"}'
out=$("${CTL[@]}" apply "$DOC" 2>&1)
expect_eq "a document with a bad client is refused" 1 "$?"
expect_contains "  naming it" "clients[2] (bad-one): no format instance 'paseto' is enabled" "$out"
expect_contains "  and saying nothing was applied" "nothing was applied" "$out"
"${CTL[@]}" client show good-one >/dev/null 2>&1
expect_eq "  the good one was not created" 1 "$?"
check "  nor its secret file written" test ! -e "$TMP/secrets/good.secret"

# bad documents, refused with what and where
bad() { # DESCRIPTION EXPECTED JSON
    printf '%s' "$3" >"$TMP/bad.json"
    local out
    out=$("${CTL[@]}" apply "$TMP/bad.json" 2>&1)
    expect_eq "$1: refused" 1 "$?"
    expect_contains "$1: message" "$2" "$out"
}
bad "unknown key" "clients[0]: unknown key 'scope' (known: id, name" \
    '{"clients": [{"id": "x", "scope": "a"}]}'
bad "unknown top key" "client: unknown key at the top (known: clients, targets)" '{"client": []}'
bad "bad type" "clients[0].ttl: must be a whole number from 0 to 31536000" \
    '{"clients": [{"id": "x", "ttl": "soon"}]}'
bad "bad id" "clients[0].id: 'bad id' must be 1 to 128 letters" '{"clients": [{"id": "bad id"}]}'
bad "missing id" "clients[0]: 'id' is missing" '{"clients": [{"name": "x"}]}'
bad "duplicate id" "clients[1].id: 'x' is clients[0] again" '{"clients": [{"id": "x"}, {"id": "x"}]}'
bad "bad scope" "clients[0].scopes[0]: 'a\"b' is not a scope token" \
    '{"clients": [{"id": "x", "scopes": ["a\"b"]}]}'
bad "default scope outside" "clients[0].default_scopes: 'b' is not among its scopes" \
    '{"clients": [{"id": "x", "scopes": "a", "default_scopes": "b"}]}'
bad "bad auth" "clients[0].auth: 'password' must be client_secret, private_key_jwt or none" \
    '{"clients": [{"id": "x", "auth": "password"}]}'
bad "key without a file" "auth private_key_jwt needs 'public_key_file'" \
    '{"clients": [{"id": "x", "auth": "private_key_jwt"}]}'
bad "target without audience" "targets[0]: 'audience' is missing" \
    '{"targets": [{"name": "t", "paths": ["/t"]}]}'
bad "target path not normal" "path '/a/../b' is not in normal form" \
    '{"targets": [{"name": "t", "paths": ["/a/../b"], "audience": "https://t.example"}]}'
bad "not JSON" "bad.json:1:" '{"clients": ['
bad "duplicate key" "duplicate object key" '{"clients": [], "clients": []}'
bad "auth cannot change" "clients[0] (reporter).auth: the client authenticates with client_secret, not none" \
    '{"clients": [{"id": "reporter", "auth": "none", "redirect_uris": ["https://app.example/cb"]}]}'
bad "backend cannot change" "the client's credential is with backend 'backend-local', not 'other'" \
    '{"clients": [{"id": "reporter", "backend": "other"}]}'
out=$("${CTL[@]}" --json client show reporter)
expect_contains "the bad documents changed nothing" '"ttl": 900' "$out"

# a libconfig document, like the rest of the configuration
cat >"$TMP/more.conf" <<EOF
clients = (
  { id = "from-libconfig"; scopes = [ "reports:read" ]; default_scopes = [ "reports:read" ]; ttl = 300;
    secret_file = "secrets/from-libconfig.secret"; }
);
EOF
out=$("${CTL[@]}" apply "$TMP/more.conf" 2>&1)
expect_eq "a libconfig document applies" 0 "$?"
expect_contains "  its plan" "+ client from-libconfig" "$out"
check "  its client works" test -n "$(token_for from-libconfig "$(cat "$TMP/secrets/from-libconfig.secret")")"
printf '@include "/etc/passwd"\n' >"$TMP/include.conf"
out=$("${CTL[@]}" apply "$TMP/include.conf" 2>&1)
expect_eq "@include is refused" 1 "$?"
expect_contains "  and said" "@include is not taken in an apply document" "$out"

# private_key_jwt and sign-in clients: created, idempotent, a key and a
# grant type edited (idempotent after: the new ones were stored)
for k in signer signer2; do
    openssl ecparam -name prime256v1 -genkey -noout -out "$TMP/$k.key" 2>/dev/null
    openssl ec -in "$TMP/$k.key" -pubout -out "$TMP/$k.pem" 2>/dev/null
done
write_keyed() { # PUBLIC_KEY_FILE GRANT_TYPES
    cat >"$TMP/keyed.json" <<EOF
{"clients": [
  {"id": "signer", "auth": "private_key_jwt", "public_key_file": "$1", "scopes": "reports:read"},
  {"id": "webapp", "auth": "none", "redirect_uris": ["https://app.example/cb"]},
  {"id": "webapp2", "redirect_uris": ["https://app2.example/cb"], "grant_types": $2,
   "secret_file": "secrets/webapp2.secret"}
]}
EOF
}
write_keyed signer.pem '["authorization_code"]'
out=$("${CTL[@]}" apply "$TMP/keyed.json" 2>&1)
expect_contains "key and public clients applied" "Applied: 3 created" "$out"
expect_contains "  private_key_jwt" '"auth": "private_key_jwt"' "$("${CTL[@]}" --json client show signer)"
expect_contains "  a public client" '"auth": "none"' "$("${CTL[@]}" --json client show webapp)"
expect_contains "  and idempotent" "No changes: the store matches" "$("${CTL[@]}" apply "$TMP/keyed.json" 2>&1)"
write_keyed signer2.pem '["authorization_code", "refresh_token"]'
out=$("${CTL[@]}" apply "$TMP/keyed.json" 2>&1)
expect_contains "a new public key is an update" "public_key: (the stored key) -> (the key in the file)" "$out"
expect_contains "a grant type added" "grant_types: [authorization_code] -> [authorization_code refresh_token]" "$out"
expect_contains "  and applied" "Applied: 0 created, 2 updated" "$out"
expect_contains "  then idempotent" "No changes" "$("${CTL[@]}" apply "$TMP/keyed.json" 2>&1)"
# --prune: a client made by hand is the operator's too; one that registered itself is not
"${CTL[@]}" client create handmade --scope x --redirect-uri https://h.example/cb >/dev/null 2>&1
out=$("${CTL[@]}" apply "$TMP/keyed.json" --prune --dry-run 2>&1)
expect_contains "--prune disables a client made by hand too" "- client handmade" "$out"

# the targets file holds targets alone, and the config check says so
cp "$STATE/targets.conf" "$TMP/targets.keep"
printf 'listen = "0.0.0.0:80";\n' >>"$STATE/targets.conf"
out=$("${CTL[@]}" config check 2>&1)
expect_eq "a targets file with another key fails the check" 1 "$?"
expect_contains "  naming file and key" "targets.conf:" "$out"
expect_contains "  and why" "unknown key 'listen': a targets file holds 'targets' only" "$out"
cp "$TMP/targets.keep" "$STATE/targets.conf"
expect_eq "  restored, it passes" 0 "$("${CTL[@]}" config check >/dev/null 2>&1; echo $?)"

"${CTL[@]}" apply >/dev/null 2>&1
expect_eq "no file is bad usage" 2 "$?"

finish
