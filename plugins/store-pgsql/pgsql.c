/* The PostgreSQL store, for several broker nodes sharing one database.
 *
 * It behaves as the sqlite store does (same return codes, same generation
 * rules, same schema checks); what differs is the transport:
 *
 * Threads: the instance is shared by every worker thread, each of which gets
 * its own connection on first use and finds it again through a thread-local
 * table keyed by the instance's id (as the sqlite store does). The instance
 * owns every connection it opened, in a list, and destroy() closes them all.
 *
 * Statements: each is prepared once per connection, on first use, with the
 * parameter types the binder gives, then run by name; parameters and
 * results travel in binary. (A pooler in transaction mode would lose the
 * prepared statements: connect directly, or pool by session.) A change to
 * clients, keys or revocations is one statement that also raises the
 * generation (a data-modifying WITH), so it needs one round trip and no
 * explicit transaction; client_import is one transaction, its inserts
 * pipelined. The sign-in ops (ABI 1.5) are single statements too, but
 * for a refresh family's: a first token makes its family and then takes
 * the family's end, and rotating a token and ending a family each first
 * lock the family's row (SELECT ... FOR UPDATE), so that the two are
 * serialized on every node; each of these is one transaction.
 *
 * Failures: connections are nonblocking and every wait has a deadline
 * (statement_timeout on the server, a little more on our side), so no call
 * hangs on a dead or silent server. A connection found closed (a restart, a
 * terminated backend) is replaced before the next statement; while the
 * server cannot be reached every call answers MANDATE_TEMPFAIL, and a thread
 * whose connection attempt failed waits RECONNECT_DELAY_MS before it tries
 * again (answering MANDATE_TEMPFAIL at once meanwhile). A statement is never
 * retried: a write whose answer was lost may have been committed.
 *
 * Schema: forward-only migrations in schema_version, applied by the migrate
 * op, one transaction per step under an advisory lock, so several nodes may
 * start at once. Every other data op checks, once per connection, that the
 * database is at the newest version this plugin knows.
 *
 * Identifiers (client_id, tenant, kid) are COLLATE "C" and the list ops
 * order by bytes, so listing and paging agree with the sqlite store whatever
 * the database's collation. Text must be valid UTF-8 (the connection's
 * encoding): anything else is MANDATE_INVALID, where SQLite stores it.
 *
 * The conninfo may hold a password: it is never logged, and messages name
 * the database by its name only.
 *
 * Only libc, pthreads, libpq and the host table are used: no core symbol. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include <mandate/store.h>

#include "store-record.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

/* Type OIDs (server/catalog/pg_type_d.h, which libpq-dev does not ship). */
#define OID_BYTEA ((Oid)17)
#define OID_INT8 ((Oid)20)
#define OID_TEXT ((Oid)25)
#define OID_FLOAT8 ((Oid)701)

/* A thread whose connection attempt failed tries again after this long. */
#define RECONNECT_DELAY_MS 1000
/* How much longer than statement_timeout we wait for an answer: the server
 * cancels first and says so; only a silent server makes us give up. */
#define CLIENT_GRACE_MS 2000
/* Migrations may rewrite tables: their own, longer limit. */
#define MIGRATE_TIMEOUT_MS (10 * 60 * 1000)
/* pg_advisory_xact_lock key for migrations: "mandate1" */
#define MIGRATE_LOCK_KEY "7885647535779509553"
/* Rows of client_import sent per pipeline sync. */
#define IMPORT_CHUNK 1000
/* ON CONFLICT, data-modifying WITH, to_regclass: PostgreSQL 10 is plenty. */
#define SERVER_MIN_VERSION 100000

/* --- schema ------------------------------------------------------------- */

/* migrations[i] brings the schema from version i to version i + 1. Never
 * edit a step once released: append a new one. Identifiers sort byte-wise
 * (COLLATE "C"), as in SQLite, so listing and paging agree with it. */
static const char *const migrations[] = {
    /* 1: everything */
    "CREATE TABLE schema_version (\n"
    "    id INTEGER PRIMARY KEY CHECK (id = 1),\n"
    "    version INTEGER NOT NULL\n"
    ");\n"
    "CREATE TABLE meta (\n"
    "    name TEXT PRIMARY KEY,\n"
    "    value BIGINT NOT NULL\n"
    ");\n"
    "INSERT INTO meta (name, value) VALUES ('generation', 0);\n"
    "CREATE TABLE clients (\n"
    "    client_id TEXT COLLATE \"C\" PRIMARY KEY,\n"
    "    tenant TEXT COLLATE \"C\" NOT NULL,\n"
    "    name TEXT,\n"
    "    scopes TEXT,\n"
    "    default_scopes TEXT,\n"
    "    audiences TEXT,\n"
    "    backend TEXT,\n"
    "    token_format TEXT,\n"
    "    token_ttl BIGINT NOT NULL DEFAULT 0,\n"
    "    status BIGINT NOT NULL,\n"
    "    flags BIGINT NOT NULL DEFAULT 0,\n"
    "    secret_hash BYTEA,\n"
    "    prev_secret_hash BYTEA,\n"
    "    prev_secret_expires_at BIGINT NOT NULL DEFAULT 0,\n"
    "    public_key TEXT,\n"
    "    rate_limit DOUBLE PRECISION NOT NULL DEFAULT 0,\n"
    "    rate_burst BIGINT NOT NULL DEFAULT 0,\n"
    "    attributes TEXT,\n"
    "    created_at BIGINT NOT NULL,\n"
    "    updated_at BIGINT NOT NULL\n"
    ");\n"
    "CREATE INDEX clients_tenant ON clients (tenant, client_id);\n"
    "CREATE TABLE keys (\n"
    "    kid TEXT COLLATE \"C\" PRIMARY KEY,\n"
    "    alg TEXT,\n"
    "    format TEXT,\n"
    "    status BIGINT NOT NULL,\n"
    "    private_blob BYTEA,\n"
    "    public_jwk TEXT,\n"
    "    created_at BIGINT NOT NULL,\n"
    "    retired_at BIGINT NOT NULL DEFAULT 0,\n"
    "    remove_after BIGINT NOT NULL DEFAULT 0\n"
    ");\n"
    "CREATE TABLE tokens (\n"
    "    token_hash BYTEA PRIMARY KEY,\n"
    "    jti TEXT,\n"
    "    client_id TEXT,\n"
    "    subject TEXT,\n"
    "    tenant TEXT,\n"
    "    \"grant\" TEXT,\n"
    "    issued_at BIGINT NOT NULL,\n"
    "    expires_at BIGINT NOT NULL\n"
    ");\n"
    "CREATE INDEX tokens_expires_at ON tokens (expires_at);\n"
    "CREATE TABLE revocations (\n"
    "    jti TEXT PRIMARY KEY,\n"
    "    client_id TEXT,\n"
    "    expires_at BIGINT NOT NULL,\n"
    "    revoked_at BIGINT NOT NULL\n"
    ");\n"
    "CREATE INDEX revocations_expires_at ON revocations (expires_at);\n"
    "CREATE TABLE replay (\n"
    "    ns TEXT NOT NULL,\n"
    "    id TEXT NOT NULL,\n"
    "    expires_at BIGINT NOT NULL,\n"
    "    PRIMARY KEY (ns, id)\n"
    ");\n"
    "CREATE INDEX replay_expires_at ON replay (expires_at);\n",

    /* 2: sign-in (store ABI 1.5), the same tables and columns as the sqlite
     * store's. Hashes are the keys; the indexes serve the lookups (a
     * family's tokens, a user's families and sessions) and purge. A
     * family's row holds whether it was ended, and its lock serializes a
     * rotation with the family's end. used and revoked are 0 or 1, as in
     * SQLite, so that SQL of the shared tests reads the same in both. */
    "ALTER TABLE clients ADD COLUMN metadata TEXT;\n"
    "CREATE TABLE once (\n"
    "    ns TEXT COLLATE \"C\" NOT NULL,\n"
    "    key_hash BYTEA NOT NULL,\n"
    "    value TEXT,\n"
    "    expires_at BIGINT NOT NULL,\n"
    "    PRIMARY KEY (ns, key_hash)\n"
    ");\n"
    "CREATE INDEX once_expires_at ON once (expires_at);\n"
    "CREATE TABLE auth_codes (\n"
    "    code_hash BYTEA PRIMARY KEY,\n"
    "    client_id TEXT,\n"
    "    redirect_uri TEXT,\n"
    "    code_challenge TEXT,\n"
    "    family_id TEXT,\n"
    "    \"grant\" TEXT,\n"
    "    issued_at BIGINT NOT NULL,\n"
    "    expires_at BIGINT NOT NULL,\n"
    "    used INTEGER NOT NULL DEFAULT 0\n"
    ");\n"
    "CREATE INDEX auth_codes_expires_at ON auth_codes (expires_at);\n"
    "CREATE TABLE refresh_families (\n"
    "    family_id TEXT COLLATE \"C\" PRIMARY KEY,\n"
    "    tenant TEXT COLLATE \"C\",\n"
    "    subject TEXT COLLATE \"C\",\n"
    "    family_expires_at BIGINT NOT NULL,\n"
    "    revoked INTEGER NOT NULL DEFAULT 0\n"
    ");\n"
    "CREATE INDEX refresh_families_subject ON refresh_families (tenant, subject);\n"
    "CREATE INDEX refresh_families_expires_at ON refresh_families (family_expires_at);\n"
    "CREATE TABLE refresh_tokens (\n"
    "    token_hash BYTEA PRIMARY KEY,\n"
    "    family_id TEXT COLLATE \"C\" NOT NULL,\n"
    "    client_id TEXT,\n"
    "    tenant TEXT,\n"
    "    subject TEXT,\n"
    "    \"grant\" TEXT,\n"
    "    status BIGINT NOT NULL,\n"
    "    issued_at BIGINT NOT NULL,\n"
    "    expires_at BIGINT NOT NULL,\n"
    "    family_expires_at BIGINT NOT NULL\n"
    ");\n"
    "CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);\n"
    "CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);\n"
    "CREATE INDEX refresh_tokens_family_expires_at ON refresh_tokens (family_expires_at);\n"
    "CREATE TABLE sessions (\n"
    "    id_hash BYTEA PRIMARY KEY,\n"
    "    tenant TEXT COLLATE \"C\",\n"
    "    subject TEXT COLLATE \"C\",\n"
    "    idp TEXT,\n"
    "    identity TEXT,\n"
    "    created_at BIGINT NOT NULL,\n"
    "    authn_at BIGINT NOT NULL,\n"
    "    last_seen_at BIGINT NOT NULL,\n"
    "    expires_at BIGINT NOT NULL\n"
    ");\n"
    "CREATE INDEX sessions_subject ON sessions (tenant, subject);\n"
    "CREATE INDEX sessions_expires_at ON sessions (expires_at);\n"
    "CREATE TABLE consents (\n"
    "    tenant TEXT COLLATE \"C\" NOT NULL,\n"
    "    subject TEXT COLLATE \"C\" NOT NULL,\n"
    "    client_id TEXT COLLATE \"C\" NOT NULL,\n"
    "    scope TEXT,\n"
    "    resources TEXT,\n"
    "    created_at BIGINT NOT NULL,\n"
    "    expires_at BIGINT NOT NULL,\n"
    "    PRIMARY KEY (tenant, subject, client_id)\n"
    ");\n"
    "CREATE INDEX consents_expires_at ON consents (expires_at) WHERE expires_at <> 0;\n"
    "CREATE TABLE client_documents (\n"
    "    url TEXT COLLATE \"C\" PRIMARY KEY,\n"
    "    document TEXT,\n"
    "    fetched_at BIGINT NOT NULL,\n"
    "    expires_at BIGINT NOT NULL\n"
    ");\n"
    "CREATE INDEX client_documents_expires_at ON client_documents (expires_at);\n"
    "CREATE TABLE lineage (\n"
    "    parent TEXT COLLATE \"C\" NOT NULL,\n"
    "    jti TEXT COLLATE \"C\" NOT NULL,\n"
    "    client_id TEXT,\n"
    "    expires_at BIGINT NOT NULL,\n"
    "    PRIMARY KEY (parent, jti)\n"
    ");\n"
    "CREATE INDEX lineage_expires_at ON lineage (expires_at);\n",
};

#define SCHEMA_NEWEST ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* --- statements ------------------------------------------------------- */

/* CLIENT_COLUMNS and the others: store-record.h */
#define CLIENT_INSERT                                                                          \
    "INSERT INTO clients (" CLIENT_COLUMNS ") VALUES ($1, $2, $3, $4, $5, $6, "                \
    "$7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21) "                 \
    "ON CONFLICT (client_id) DO NOTHING"

/* The refresh statuses as the SQL writes them. */
_Static_assert(MANDATE_REFRESH_ACTIVE == 1 && MANDATE_REFRESH_USED == 2 &&
                   MANDATE_REFRESH_REVOKED == 3,
               "refresh statuses");
#define STR(x) #x
#define XSTR(x) STR(x)

/* Locks the families named, in one order, so that two ends never wait on
 * each other: a rotation in one of them waits, or ran before. */
#define FAMILY_LOCK(fam)                                                                       \
    "SELECT 1 FROM refresh_families WHERE " fam " ORDER BY family_id FOR UPDATE"
/* Ends the families named (under FAMILY_LOCK, in the same transaction):
 * each revoked, every token of theirs REVOKED. Answers how many tokens were
 * ACTIVE, read from the statement's snapshot, taken after the lock: no
 * rotation can change them in between. */
#define FAMILY_END(fam)                                                                        \
    "WITH f AS (UPDATE refresh_families SET revoked = 1 WHERE " fam " RETURNING family_id), "  \
    "t AS (UPDATE refresh_tokens SET status = 3 WHERE status <> 3 "                            \
    "AND family_id IN (SELECT family_id FROM f)) "                                             \
    "SELECT count(*) FROM refresh_tokens WHERE status = 1 "                                    \
    "AND family_id IN (SELECT family_id FROM f)"
/* purge keeps a client document this long past its expires_at */
#define DOCUMENT_KEEP XSTR(MANDATE_STORE_DOCUMENT_KEEP)

/* One statement that changes clients, keys or revocations and, when it
 * changed a row, raises the generation: atomic without a transaction of our
 * own. Answers one row: the number of rows changed. */
#define CHANGE(stmt)                                                                           \
    "WITH ch AS (" stmt " RETURNING 1), "                                                      \
    "bump AS (UPDATE meta SET value = value + 1 WHERE name = 'generation' "                    \
    "AND EXISTS (SELECT 1 FROM ch)) "                                                          \
    "SELECT count(*) FROM ch"

enum stmt_id {
    ST_PING,
    ST_GENERATION,
    ST_GENERATION_BUMP,
    ST_CLIENT_GET,
    ST_CLIENT_INSERT,
    ST_CLIENT_CREATE,
    ST_CLIENT_UPDATE,
    ST_CLIENT_DELETE,
    ST_CLIENT_LIST,
    ST_CLIENT_LIST_AFTER,
    ST_CLIENT_LIST_TENANT,
    ST_CLIENT_LIST_TENANT_AFTER,
    ST_KEY_INSERT,
    ST_KEY_UPDATE,
    ST_KEY_LIST,
    ST_KEY_DELETE,
    ST_TOKEN_INSERT,
    ST_TOKEN_GET,
    ST_REVOKE,
    ST_IS_REVOKED,
    ST_REPLAY_CLAIM,
    ST_PURGE,
    ST_REVOCATION_LIST,
    ST_TOKEN_LIST,
    ST_REPLAY_LIST,
    ST_ONCE_PUT,
    ST_ONCE_TAKE,
    ST_ONCE_SET,
    ST_CODE_INSERT,
    ST_CODE_TAKE,
    ST_FAMILY_INSERT,
    ST_REFRESH_INSERT,
    ST_REFRESH_GET,
    ST_REFRESH_LOCK,
    ST_REFRESH_FIND,
    ST_REFRESH_NEXT,
    ST_FAMILY_LOCK,
    ST_FAMILY_END,
    ST_SUBJECT_LOCK,
    ST_SUBJECT_END,
    ST_SESSION_INSERT,
    ST_SESSION_GET,
    ST_SESSION_TOUCH,
    ST_SESSION_DELETE,
    ST_SESSION_DELETE_SUBJECT,
    ST_CONSENT_PUT,
    ST_CONSENT_GET,
    ST_CONSENT_DELETE,
    ST_CONSENT_LIST,
    ST_DOCUMENT_PUT,
    ST_DOCUMENT_GET,
    ST_LINEAGE_ADD,
    ST_REVOKE_DESCENDANTS,
    ST_COUNT
};

/* Parameter types come from the binder when a statement is prepared, so
 * every statement is bound the same way each time it runs. */
static const char *const stmt_sql[ST_COUNT] = {
    [ST_PING] = "SELECT 1",
    [ST_GENERATION] = "SELECT value FROM meta WHERE name = 'generation'",
    [ST_GENERATION_BUMP] = "UPDATE meta SET value = value + 1 WHERE name = 'generation'",
    [ST_CLIENT_GET] = "SELECT " CLIENT_COLUMNS " FROM clients WHERE client_id = $1",
    [ST_CLIENT_INSERT] = CLIENT_INSERT,
    [ST_CLIENT_CREATE] = CHANGE(CLIENT_INSERT),
    [ST_CLIENT_UPDATE] = CHANGE("UPDATE clients SET tenant = $2, name = $3, scopes = $4, "
                                "default_scopes = $5, audiences = $6, backend = $7, "
                                "token_format = $8, token_ttl = $9, status = $10, flags = $11, "
                                "secret_hash = $12, prev_secret_hash = $13, "
                                "prev_secret_expires_at = $14, public_key = $15, "
                                "rate_limit = $16, rate_burst = $17, attributes = $18, "
                                "created_at = CASE WHEN $19 = 0 THEN created_at ELSE $19 END, "
                                "updated_at = $20, metadata = $21 WHERE client_id = $1"),
    [ST_CLIENT_DELETE] = CHANGE("DELETE FROM clients WHERE client_id = $1"),
    /* $1 tenant, $2 after, $3 limit (NULL: no limit); each binds all three */
    [ST_CLIENT_LIST] = "SELECT " CLIENT_COLUMNS " FROM clients "
                       "ORDER BY client_id LIMIT $3",
    [ST_CLIENT_LIST_AFTER] = "SELECT " CLIENT_COLUMNS " FROM clients "
                             "WHERE client_id > $2 ORDER BY client_id LIMIT $3",
    [ST_CLIENT_LIST_TENANT] = "SELECT " CLIENT_COLUMNS " FROM clients "
                              "WHERE tenant = $1 ORDER BY client_id LIMIT $3",
    [ST_CLIENT_LIST_TENANT_AFTER] =
        "SELECT " CLIENT_COLUMNS " FROM clients "
        "WHERE tenant = $1 AND client_id > $2 ORDER BY client_id LIMIT $3",
    [ST_KEY_INSERT] = CHANGE("INSERT INTO keys (" KEY_COLUMNS ") VALUES ($1, $2, $3, $4, "
                             "$5, $6, $7, $8, $9) ON CONFLICT (kid) DO NOTHING"),
    [ST_KEY_UPDATE] = CHANGE("UPDATE keys SET status = $2, retired_at = $3, "
                             "remove_after = $4 WHERE kid = $1"),
    [ST_KEY_LIST] = "SELECT " KEY_COLUMNS " FROM keys ORDER BY created_at DESC, kid",
    [ST_KEY_DELETE] = CHANGE("DELETE FROM keys WHERE kid = $1"),
    [ST_TOKEN_INSERT] = "INSERT INTO tokens (" TOKEN_COLUMNS ") VALUES ($1, $2, "
                        "$3, $4, $5, $6, $7, $8) ON CONFLICT (token_hash) DO NOTHING",
    [ST_TOKEN_GET] = "SELECT " TOKEN_COLUMNS " FROM tokens "
                     "WHERE token_hash = $1 AND expires_at > $2",
    /* a second revocation keeps the first, unless it lasts longer */
    [ST_REVOKE] = CHANGE("INSERT INTO revocations (jti, client_id, expires_at, revoked_at) "
                         "VALUES ($1, $2, $3, $4) ON CONFLICT (jti) DO UPDATE SET "
                         "expires_at = excluded.expires_at "
                         "WHERE excluded.expires_at > revocations.expires_at"),
    [ST_IS_REVOKED] = "SELECT 1 FROM revocations WHERE jti = $1",
    /* one statement: insert, or take over an expired entry; no row changed
     * means an unexpired entry is there */
    [ST_REPLAY_CLAIM] = "INSERT INTO replay (ns, id, expires_at) VALUES ($1, $2, $3) "
                        "ON CONFLICT (ns, id) DO UPDATE SET "
                        "expires_at = excluded.expires_at "
                        "WHERE replay.expires_at <= $4",
    /* the generation rises when a revocation went; a refresh family goes
     * with its family_expires_at, as its tokens do, and is not counted: it
     * is the tokens' bookkeeping, not a record of its own */
    [ST_PURGE] =
        "WITH t AS (DELETE FROM tokens WHERE expires_at <= $1 RETURNING 1), "
        "r AS (DELETE FROM revocations WHERE expires_at <= $1 RETURNING 1), "
        "p AS (DELETE FROM replay WHERE expires_at <= $1 RETURNING 1), "
        "o AS (DELETE FROM once WHERE expires_at <= $1 RETURNING 1), "
        "c AS (DELETE FROM auth_codes WHERE expires_at <= $1 RETURNING 1), "
        "rt AS (DELETE FROM refresh_tokens "
        "WHERE expires_at <= $1 OR family_expires_at <= $1 RETURNING 1), "
        "rf AS (DELETE FROM refresh_families WHERE family_expires_at <= $1), "
        "s AS (DELETE FROM sessions WHERE expires_at <= $1 RETURNING 1), "
        "cs AS (DELETE FROM consents WHERE expires_at <> 0 AND expires_at <= $1 RETURNING 1), "
        "d AS (DELETE FROM client_documents "
        "WHERE expires_at <= $1 - " DOCUMENT_KEEP " RETURNING 1), "
        "l AS (DELETE FROM lineage WHERE expires_at <= $1 RETURNING 1), "
        "bump AS (UPDATE meta SET value = value + 1 WHERE name = 'generation' "
        "AND EXISTS (SELECT 1 FROM r)) "
        "SELECT count(*) FROM (SELECT * FROM t UNION ALL SELECT * FROM r UNION ALL "
        "SELECT * FROM p UNION ALL SELECT * FROM o UNION ALL SELECT * FROM c UNION ALL "
        "SELECT * FROM rt UNION ALL SELECT * FROM s UNION ALL SELECT * FROM cs UNION ALL "
        "SELECT * FROM d UNION ALL SELECT * FROM l) gone",
    /* the same order as the sqlite store's: by bytes */
    [ST_REVOCATION_LIST] = "SELECT jti, client_id, expires_at FROM revocations "
                           "WHERE expires_at > $1 ORDER BY jti COLLATE \"C\"",
    [ST_TOKEN_LIST] = "SELECT " TOKEN_COLUMNS " FROM tokens WHERE expires_at > $1 "
                      "ORDER BY token_hash",
    [ST_REPLAY_LIST] = "SELECT ns, id, expires_at FROM replay WHERE expires_at > $1 "
                       "ORDER BY ns COLLATE \"C\", id COLLATE \"C\"",
    /* an expired record is taken over, as replay_claim does */
    [ST_ONCE_PUT] =
        "INSERT INTO once (ns, key_hash, value, expires_at) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (ns, key_hash) DO UPDATE SET value = excluded.value, "
        "expires_at = excluded.expires_at WHERE once.expires_at <= $5",
    /* taking is deleting: of two nodes, one deletes and gets the row */
    [ST_ONCE_TAKE] = "DELETE FROM once WHERE ns = $1 AND key_hash = $2 AND expires_at > $3 "
                     "RETURNING value",
    /* a live record of the same value that lasts long enough ($5:
     * keep_until, $6: now) is not updated: no new row version */
    [ST_ONCE_SET] =
        "INSERT INTO once (ns, key_hash, value, expires_at) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (ns, key_hash) DO UPDATE SET value = excluded.value, "
        "expires_at = excluded.expires_at WHERE NOT (once.value IS NOT DISTINCT FROM "
        "excluded.value AND once.expires_at >= $5 AND once.expires_at > $6)",
    [ST_CODE_INSERT] = "INSERT INTO auth_codes (" CODE_COLUMNS ") VALUES ($1, $2, $3, $4, $5, "
                       "$6, $7, $8) ON CONFLICT (code_hash) DO NOTHING",
    /* Redeems the code when it may be, and answers it with whether this
     * statement redeemed it, then whether it was taken: used, or unused and
     * unexpired in the statement's snapshot, which the update then did not
     * change because another node redeemed it meanwhile (the update waits
     * for that node's commit and sees used = 1). */
    [ST_CODE_TAKE] = "WITH redeem AS (UPDATE auth_codes SET used = 1 "
                     "WHERE code_hash = $1 AND used = 0 AND expires_at > $2 RETURNING 1) "
                     "SELECT " CODE_COLUMNS ", EXISTS (SELECT 1 FROM redeem), "
                     "used <> 0 OR expires_at > $2 FROM auth_codes WHERE code_hash = $1",
    /* refresh_put, in one transaction: the family when this token is its
     * first, then the token, which ends at the family's end (store.h); both
     * bound with the token's fields */
    [ST_FAMILY_INSERT] = "INSERT INTO refresh_families (family_id, tenant, subject, "
                         "family_expires_at) VALUES ($2, $4, $5, $10) "
                         "ON CONFLICT (family_id) DO NOTHING",
    [ST_REFRESH_INSERT] = "INSERT INTO refresh_tokens (" REFRESH_COLUMNS ") VALUES ($1, $2, "
                          "$3, $4, $5, $6, $7, $8, $9, coalesce((SELECT family_expires_at "
                          "FROM refresh_families WHERE family_id = $2), $10)) "
                          "ON CONFLICT (token_hash) DO NOTHING",
    [ST_REFRESH_GET] = "SELECT " REFRESH_COLUMNS " FROM refresh_tokens WHERE token_hash = $1 "
                       "AND expires_at > $2 AND family_expires_at > $2",
    /* rotation: the family's lock first, then the token as it is under it
     * (a statement of its own: its snapshot comes after the lock) */
    [ST_REFRESH_LOCK] =
        FAMILY_LOCK("family_id = "
                    "(SELECT family_id FROM refresh_tokens WHERE token_hash = $1)"),
    /* and whether its family was ended: a token without a family row (its
     * family purged) has no lock to rotate under, and counts as ended */
    [ST_REFRESH_FIND] = "SELECT " REFRESH_COLUMNS ", coalesce((SELECT revoked FROM "
                        "refresh_families f WHERE f.family_id = t.family_id), 1) "
                        "FROM refresh_tokens t WHERE token_hash = $1",
    /* next, in old's family ($1: old's hash; NULL names are old's), and old
     * USED once next is stored; answers whether it was */
    [ST_REFRESH_NEXT] =
        "WITH n AS (INSERT INTO refresh_tokens (" REFRESH_COLUMNS ") SELECT $2, family_id, "
        "coalesce($3, client_id), coalesce($4, tenant), coalesce($5, subject), $6, 1, $7, $8, "
        "family_expires_at FROM refresh_tokens WHERE token_hash = $1 "
        "ON CONFLICT (token_hash) DO NOTHING RETURNING 1), "
        "u AS (UPDATE refresh_tokens SET status = 2 WHERE token_hash = $1 "
        "AND EXISTS (SELECT 1 FROM n)) "
        "SELECT count(*) FROM n",
    [ST_FAMILY_LOCK] = FAMILY_LOCK("family_id = $1"),
    [ST_FAMILY_END] = FAMILY_END("family_id = $1"),
    [ST_SUBJECT_LOCK] = FAMILY_LOCK("tenant = $1 AND subject = $2"),
    [ST_SUBJECT_END] = FAMILY_END("tenant = $1 AND subject = $2"),
    [ST_SESSION_INSERT] = "INSERT INTO sessions (" SESSION_COLUMNS ") VALUES ($1, $2, $3, $4, "
                          "$5, $6, $7, $8, $9) ON CONFLICT (id_hash) DO NOTHING",
    [ST_SESSION_GET] = "SELECT " SESSION_COLUMNS " FROM sessions "
                       "WHERE id_hash = $1 AND expires_at > $2",
    [ST_SESSION_TOUCH] = "UPDATE sessions SET last_seen_at = greatest(last_seen_at, $2) "
                         "WHERE id_hash = $1 AND expires_at > $2",
    [ST_SESSION_DELETE] = "DELETE FROM sessions WHERE id_hash = $1",
    [ST_SESSION_DELETE_SUBJECT] = "DELETE FROM sessions WHERE tenant = $1 AND subject = $2",
    [ST_CONSENT_PUT] = "INSERT INTO consents (" CONSENT_COLUMNS ") VALUES ($1, $2, $3, $4, $5, "
                       "$6, $7) ON CONFLICT (tenant, subject, client_id) DO UPDATE SET "
                       "scope = excluded.scope, resources = excluded.resources, "
                       "created_at = excluded.created_at, expires_at = excluded.expires_at",
    [ST_CONSENT_GET] = "SELECT " CONSENT_COLUMNS " FROM consents WHERE tenant = $1 "
                       "AND subject = $2 AND client_id = $3 "
                       "AND (expires_at = 0 OR expires_at > $4)",
    [ST_CONSENT_DELETE] = "DELETE FROM consents WHERE tenant = $1 AND subject = $2 "
                          "AND client_id = $3",
    [ST_CONSENT_LIST] = "SELECT " CONSENT_COLUMNS " FROM consents WHERE tenant = $1 "
                        "AND subject = $2 AND (expires_at = 0 OR expires_at > $3) "
                        "ORDER BY client_id",
    [ST_DOCUMENT_PUT] = "INSERT INTO client_documents (" DOCUMENT_COLUMNS ") VALUES ($1, $2, "
                        "$3, $4) ON CONFLICT (url) DO UPDATE SET document = excluded.document, "
                        "fetched_at = excluded.fetched_at, expires_at = excluded.expires_at",
    [ST_DOCUMENT_GET] = "SELECT " DOCUMENT_COLUMNS " FROM client_documents WHERE url = $1",
    [ST_LINEAGE_ADD] = "INSERT INTO lineage (parent, jti, client_id, expires_at) "
                       "VALUES ($1, $2, $3, $4) ON CONFLICT (parent, jti) DO NOTHING",
    /* every jti below $1 (UNION: a cycle ends), revoked as ST_REVOKE does
     * unless expired at $2; a jti of several parents once, until the
     * latest of its links' ends */
    [ST_REVOKE_DESCENDANTS] = CHANGE(
        "INSERT INTO revocations (jti, client_id, expires_at, revoked_at) "
        "WITH RECURSIVE below (jti, client_id, expires_at) AS ("
        "SELECT jti, client_id, expires_at FROM lineage WHERE parent = $1 "
        "UNION SELECT l.jti, l.client_id, l.expires_at FROM lineage l "
        "JOIN below b ON l.parent = b.jti) "
        "SELECT jti, min(client_id), max(expires_at), $2 FROM below WHERE expires_at > $2 "
        "GROUP BY jti ON CONFLICT (jti) DO UPDATE SET expires_at = excluded.expires_at "
        "WHERE excluded.expires_at > revocations.expires_at"),
};

/* --- instance and connections ------------------------------------------ */

struct pgsql_inst;

struct conn {
    struct conn *prev, *next; /* in inst->conns */
    struct pgsql_inst *inst;
    PGconn *pg;                   /* NULL: not connected */
    bool doomed;                  /* the server said FATAL: reconnect before the next use */
    bool schema_ok;               /* checked once per connection */
    bool prepared[ST_COUNT];      /* on this connection */
    int64_t retry_at;             /* monotonic ms: no connection attempt before */
    char down[MANDATE_ERROR_MAX]; /* why the last attempt failed */
};

struct pgsql_inst {
    const store_writer *writes; /* first: lib/store-record.c's write ops find it */
    /* config, filled by the core before instantiate() */
    char *conninfo; /* secret: may hold a password */
    int64_t connect_timeout;
    int64_t statement_timeout;

    const mandate_host *host;
    char connect_timeout_text[24];
    bool initialized;     /* id and lock exist */
    uint64_t id;          /* unique in the process, never reused */
    pthread_mutex_t lock; /* protects conns */
    struct conn *conns;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* libpq's messages end in a newline and may span lines (one per host
 * tried): one line, for the log. */
static void one_line(char *dst, size_t size, const char *src)
{
    size_t n = 0;
    if (size == 0)
        return;
    for (; src != NULL && *src != '\0' && n + 1 < size; src++) {
        if (*src == '\n') {
            while (src[1] == ' ' || src[1] == '\t')
                src++;
            if (src[1] == '\0')
                break;
            if (n + 2 < size) {
                dst[n++] = ';';
                dst[n++] = ' ';
            }
        } else if (*src != '\r') {
            dst[n++] = *src == '\t' ? ' ' : *src;
        }
    }
    dst[n] = '\0';
}

static const char *db_name(const struct conn *c)
{
    const char *name = c->pg != NULL ? PQdb(c->pg) : NULL;
    return name != NULL ? name : "?";
}

static void conn_disconnect(struct conn *c)
{
    if (c->pg != NULL)
        PQfinish(c->pg);
    c->pg = NULL;
    c->doomed = false;
    c->schema_ok = false;
    memset(c->prepared, 0, sizeof(c->prepared));
}

static void conn_close(struct conn *c)
{
    conn_disconnect(c);
    free(c);
}

/* The connection is gone (or cannot be trusted any more): drop it, so the
 * next call makes a new one. */
static mandate_rc conn_lost(struct conn *c, const char *what, mandate_error *err)
{
    char msg[MANDATE_ERROR_MAX];
    one_line(msg, sizeof(msg), c->pg != NULL ? PQerrorMessage(c->pg) : "not connected");
    if (msg[0] == '\0')
        snprintf(msg, sizeof(msg), "the connection was lost");
    mandate_rc rc = mandate_error_set(err, MANDATE_TEMPFAIL, "pgsql: %s: %s", what, msg);
    conn_disconnect(c);
    return rc;
}

/* SQLSTATE to return code: what may pass by itself is TEMPFAIL. */
static mandate_rc rc_of_state(const char *state)
{
    if (state == NULL || strlen(state) != 5)
        return MANDATE_ERROR;
    if (strncmp(state, "08", 2) == 0     /* connection exception */
        || strncmp(state, "53", 2) == 0  /* insufficient resources */
        || strncmp(state, "57P", 3) == 0 /* shutdown, cannot connect now */
        || strcmp(state, "57014") == 0   /* canceled: statement_timeout */
        || strcmp(state, "40001") == 0   /* serialization failure */
        || strcmp(state, "40P01") == 0   /* deadlock */
        || strcmp(state, "55P03") == 0   /* lock not available */
        || strcmp(state, "25006") == 0 /* read-only transaction: a standby */)
        return MANDATE_TEMPFAIL;
    if (strcmp(state, "23505") == 0)
        return MANDATE_EXISTS;
    if (strncmp(state, "22", 2) == 0) /* data exception: bad encoding, out of range */
        return MANDATE_INVALID;
    return MANDATE_ERROR;
}

/* A failed result. Only the primary message goes out: the detail may quote
 * the values of a key. */
static mandate_rc result_error(struct conn *c, const PGresult *res, const char *what,
                               mandate_error *err)
{
    if (c->pg == NULL || PQstatus(c->pg) == CONNECTION_BAD)
        return conn_lost(c, what, err);
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    char msg[MANDATE_ERROR_MAX];
    one_line(msg, sizeof(msg), primary != NULL ? primary : PQresultErrorMessage(res));
    mandate_rc rc = mandate_error_set(err, rc_of_state(state), "pgsql: %s: %s (SQLSTATE %s)",
                                      what, msg, state != NULL ? state : "?");
    /* a standby, or a server on its way down: another connection may do */
    if (state != NULL && (strcmp(state, "25006") == 0 || strncmp(state, "57P", 3) == 0 ||
                          strncmp(state, "08", 2) == 0))
        conn_disconnect(c);
    return rc;
}

/* Waits until PQgetResult will not block, the connection fails, or the
 * deadline passes (then the connection is dropped: its state is unknown). */
static mandate_rc conn_wait(struct conn *c, int64_t deadline, const char *what,
                            mandate_error *err)
{
    for (;;) {
        int flushed = PQflush(c->pg);
        if (flushed < 0)
            return conn_lost(c, what, err);
        if (flushed == 0 && !PQisBusy(c->pg))
            return MANDATE_OK;
        int64_t left = deadline - mono_ms();
        if (left <= 0) {
            mandate_rc rc = mandate_error_set(
                err, MANDATE_TEMPFAIL, "pgsql: %s: no answer from the server in time", what);
            conn_disconnect(c);
            return rc;
        }
        struct pollfd pfd = {.fd = PQsocket(c->pg), .events = POLLIN};
        if (pfd.fd < 0)
            return conn_lost(c, what, err);
        if (flushed == 1)
            pfd.events |= POLLOUT;
        int n = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (n < 0 && errno != EINTR)
            return conn_lost(c, what, err);
        if (n > 0 && (pfd.revents & (POLLIN | POLLERR | POLLHUP | POLLNVAL)) != 0 &&
            !PQconsumeInput(c->pg))
            return conn_lost(c, what, err);
    }
}

static int64_t normal_deadline(const struct conn *c)
{
    return mono_ms() + c->inst->statement_timeout + CLIENT_GRACE_MS;
}

/* Collects the results of the command sent last: keeps the first failed one,
 * else the last one. *res_r is NULL when rc is not MANDATE_OK. */
static mandate_rc collect(struct conn *c, int64_t deadline, const char *what, PGresult **res_r,
                          mandate_error *err)
{
    PGresult *keep = NULL;
    bool failed = false;
    *res_r = NULL;
    for (;;) {
        mandate_rc rc = conn_wait(c, deadline, what, err);
        if (rc != MANDATE_OK) {
            PQclear(keep);
            return rc;
        }
        PGresult *res = PQgetResult(c->pg);
        if (res == NULL)
            break;
        if (failed) { /* the first failure is the one to report */
            PQclear(res);
            continue;
        }
        ExecStatusType st = PQresultStatus(res);
        PQclear(keep);
        keep = res;
        failed = st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY;
    }
    if (keep == NULL) {
        if (PQstatus(c->pg) == CONNECTION_BAD)
            return conn_lost(c, what, err);
        return mandate_error_set(err, MANDATE_ERROR, "pgsql: %s: no result", what);
    }
    if (failed) {
        mandate_rc rc = result_error(c, keep, what, err);
        PQclear(keep);
        return rc;
    }
    *res_r = keep;
    return MANDATE_OK;
}

/* Parameters, all sent in binary. */
#define MAX_PARAMS 21

struct params {
    int n;
    bool overflow;
    Oid types[MAX_PARAMS];
    const char *values[MAX_PARAMS];
    int lengths[MAX_PARAMS];
    int formats[MAX_PARAMS];
    unsigned char num[MAX_PARAMS][8];
};

static int param_slot(struct params *p, Oid type)
{
    if (p->n >= MAX_PARAMS) {
        p->overflow = true;
        return -1;
    }
    int i = p->n++;
    p->types[i] = type;
    p->values[i] = NULL;
    p->lengths[i] = 0;
    p->formats[i] = 1;
    return i;
}

static void put_be64(unsigned char *out, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

static void param_text(struct params *p, const char *v)
{
    int i = param_slot(p, OID_TEXT);
    if (i < 0 || v == NULL)
        return;
    size_t len = strlen(v);
    if (len > INT_MAX) {
        p->overflow = true;
        return;
    }
    p->values[i] = v;
    p->lengths[i] = (int)len;
}

static void param_blob(struct params *p, const unsigned char *v, size_t len)
{
    int i = param_slot(p, OID_BYTEA);
    if (i < 0 || v == NULL)
        return;
    if (len > INT_MAX) {
        p->overflow = true;
        return;
    }
    p->values[i] = (const char *)v;
    p->lengths[i] = (int)len;
}

static void param_int(struct params *p, int64_t v)
{
    int i = param_slot(p, OID_INT8);
    if (i < 0)
        return;
    put_be64(p->num[i], (uint64_t)v);
    p->values[i] = (const char *)p->num[i];
    p->lengths[i] = 8;
}

/* A NULL int8 (a list without a limit). */
static void param_null_int(struct params *p)
{
    param_slot(p, OID_INT8);
}

static void param_double(struct params *p, double v)
{
    int i = param_slot(p, OID_FLOAT8);
    if (i < 0)
        return;
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    put_be64(p->num[i], bits);
    p->values[i] = (const char *)p->num[i];
    p->lengths[i] = 8;
}

static void stmt_name(enum stmt_id id, char *buf, size_t size)
{
    snprintf(buf, size, "mandate_%d", (int)id);
}

/* Prepares a statement on this connection, once. */
static mandate_rc stmt_prepare(struct conn *c, enum stmt_id id, const struct params *p,
                               const char *what, mandate_error *err)
{
    if (c->prepared[id])
        return MANDATE_OK;
    char name[32];
    stmt_name(id, name, sizeof(name));
    if (!PQsendPrepare(c->pg, name, stmt_sql[id], p->n, p->types))
        return conn_lost(c, what, err);
    PGresult *res;
    mandate_rc rc = collect(c, normal_deadline(c), what, &res, err);
    if (rc != MANDATE_OK)
        return rc;
    PQclear(res);
    c->prepared[id] = true;
    return MANDATE_OK;
}

static mandate_rc stmt_send(struct conn *c, enum stmt_id id, const struct params *p,
                            const char *what, mandate_error *err)
{
    char name[32];
    if (p->overflow)
        return mandate_error_set(err, MANDATE_INVALID, "pgsql: %s: a value is too large", what);
    mandate_rc rc = stmt_prepare(c, id, p, what, err);
    if (rc != MANDATE_OK)
        return rc;
    stmt_name(id, name, sizeof(name));
    if (!PQsendQueryPrepared(c->pg, name, p->n, p->values, p->lengths, p->formats, 1))
        return conn_lost(c, what, err);
    return MANDATE_OK;
}

/* Runs a prepared statement; *res_r is the caller's to PQclear. */
static mandate_rc stmt_exec(struct conn *c, enum stmt_id id, const struct params *p,
                            const char *what, PGresult **res_r, mandate_error *err)
{
    mandate_rc rc = stmt_send(c, id, p, what, err);
    if (rc != MANDATE_OK)
        return rc;
    return collect(c, normal_deadline(c), what, res_r, err);
}

/* Runs SQL without parameters (possibly several statements when simple). */
static mandate_rc sql_exec(struct conn *c, const char *sql, bool simple, int64_t deadline,
                           const char *what, PGresult **res_r, mandate_error *err)
{
    int sent = simple ? PQsendQuery(c->pg, sql)
                      : PQsendQueryParams(c->pg, sql, 0, NULL, NULL, NULL, NULL, 1);
    if (!sent)
        return conn_lost(c, what, err);
    PGresult *res;
    mandate_rc rc = collect(c, deadline, what, &res, err);
    if (rc != MANDATE_OK)
        return rc;
    if (res_r != NULL)
        *res_r = res;
    else
        PQclear(res);
    return MANDATE_OK;
}

static mandate_rc tx_begin(struct conn *c, mandate_error *err)
{
    return sql_exec(c, "BEGIN", false, normal_deadline(c), "beginning a transaction", NULL,
                    err);
}

/* Commits when rc is MANDATE_OK, else rolls back; returns the outcome. */
static mandate_rc tx_end(struct conn *c, mandate_rc rc, mandate_error *err)
{
    if (rc == MANDATE_OK && c->pg != NULL)
        rc = sql_exec(c, "COMMIT", false, normal_deadline(c), "committing", NULL, err);
    else if (rc == MANDATE_OK)
        rc = mandate_error_set(err, MANDATE_TEMPFAIL, "pgsql: committing: not connected");
    if (rc != MANDATE_OK && c->pg != NULL && PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        sql_exec(c, "ROLLBACK", false, normal_deadline(c), "rolling back", NULL, NULL);
    return rc;
}

/* --- reading results (binary) ------------------------------------------ */

/* Columns are copied into pool when there is one, else they point into the
 * result (list callbacks: valid until the callback returns). */
struct reader {
    const mandate_host *host;
    mandate_pool *pool;
    const PGresult *res;
    int row;
};

static const char *read_text(const void *r_, int col)
{
    const struct reader *r = r_;
    if (PQgetisnull(r->res, r->row, col))
        return NULL;
    const char *t = PQgetvalue(r->res, r->row, col); /* libpq adds a NUL */
    if (r->pool == NULL)
        return t;
    return r->host->pool_memdup(r->pool, t, (size_t)PQgetlength(r->res, r->row, col));
}

/* An empty blob reads as NULL, as in the sqlite store. */
static const unsigned char *read_blob(const void *r_, int col, size_t *len_r)
{
    const struct reader *r = r_;
    *len_r = 0;
    if (PQgetisnull(r->res, r->row, col))
        return NULL;
    int len = PQgetlength(r->res, r->row, col);
    if (len <= 0)
        return NULL;
    const unsigned char *b = (const unsigned char *)PQgetvalue(r->res, r->row, col);
    *len_r = (size_t)len;
    if (r->pool == NULL)
        return b;
    return (const unsigned char *)r->host->pool_memdup(r->pool, b, *len_r);
}

static uint64_t get_be(const unsigned char *p, int len)
{
    uint64_t v = 0;
    for (int i = 0; i < len; i++)
        v = (v << 8) | p[i];
    return v;
}

/* bigint, integer, smallint or boolean, by its length. */
static int64_t value_int(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return 0;
    const unsigned char *p = (const unsigned char *)PQgetvalue(res, row, col);
    switch (PQgetlength(res, row, col)) {
    case 8: return (int64_t)get_be(p, 8);
    case 4: return (int32_t)(uint32_t)get_be(p, 4);
    case 2: return (int16_t)(uint16_t)get_be(p, 2);
    case 1: return p[0];
    default: return 0;
    }
}

static int64_t read_int(const void *r_, int col)
{
    const struct reader *r = r_;
    return value_int(r->res, r->row, col);
}

static double read_double(const void *r_, int col)
{
    const struct reader *r = r_;
    if (PQgetisnull(r->res, r->row, col) || PQgetlength(r->res, r->row, col) != 8)
        return 0;
    uint64_t bits = get_be((const unsigned char *)PQgetvalue(r->res, r->row, col), 8);
    double v;
    memcpy(&v, &bits, sizeof(v));
    return v;
}

/* --- records ------------------------------------------------------------ */

/* A record is bound and read by its table in store-record.h, the same as
 * the sqlite store's. */

/* What once_take answers: the value alone. */
struct once_row {
    const char *value;
};
static const store_field once_fields[] = {{F_TEXT, offsetof(struct once_row, value), 0}};
static const store_record once_record = {once_fields, 1, sizeof(struct once_row)};

/* The parameters as store-record.h binds them: each appended, in order. */
static void bind_text(void *p, int at, const char *v)
{
    (void)at;
    param_text(p, v);
}

static void bind_blob(void *p, int at, const unsigned char *v, size_t len)
{
    (void)at;
    param_blob(p, v, len);
}

static void bind_int(void *p, int at, int64_t v)
{
    (void)at;
    param_int(p, v);
}

static void bind_double(void *p, int at, double v)
{
    (void)at;
    param_double(p, v);
}

static const store_binder params_bind = {bind_text, bind_blob, bind_int, bind_double};

/* Appends the fields of in (a struct of rec's type) to p. */
static void param_record(struct params *p, const store_record *rec, const void *in)
{
    store_record_bind(&params_bind, p, p->n + 1, rec, in);
}

static const store_reader columns_read = {read_text, read_blob, read_int, read_double};

/* Fills out (a struct of rec's type) from the columns from first on. */
static void read_record(const struct reader *r, int first, const store_record *rec, void *out)
{
    store_record_read(&columns_read, r, first, rec, out);
}

/* A client's parameters from $1 on, as created (create) or updated at
 * now. */
static void param_client(struct params *p, const mandate_client *cl, bool create, int64_t now)
{
    mandate_client row = store_client_row(cl, create, now);
    p->n = 0;
    p->overflow = false;
    param_record(p, &store_client_record, &row);
}

/* Rows changed by an INSERT/UPDATE/DELETE without RETURNING. */
static int64_t rows_changed(const PGresult *res)
{
    const char *n = PQcmdTuples((PGresult *)res);
    return n != NULL && n[0] != '\0' ? strtoll(n, NULL, 10) : 0;
}

/* The single value of a one-row result (CHANGE() statements, counts). */
static int64_t single_int(const PGresult *res)
{
    if (PQntuples(res) < 1 || PQnfields(res) < 1)
        return 0;
    return value_int(res, 0, 0);
}

/* --- connecting ---------------------------------------------------------------- */

/* Server messages outside a command: an ERROR or FATAL then usually tells why
 * the server is about to close the connection. Never carries our values. */
static void notice_receiver(void *arg, const PGresult *res)
{
    struct conn *c = arg;
    const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    char msg[MANDATE_ERROR_MAX];
    one_line(msg, sizeof(msg), PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
    if (severity != NULL &&
        (strcmp(severity, "FATAL") == 0 || strcmp(severity, "PANIC") == 0)) {
        c->doomed = true;
        mandate_log_info(c->inst->host, "pgsql: the server closes the connection: %s", msg);
    } else {
        mandate_log_debug(c->inst->host, "pgsql: server notice: %s", msg);
    }
}

static mandate_rc connect_failed(struct conn *c, const char *why, const char *detail,
                                 mandate_error *err)
{
    char msg[MANDATE_ERROR_MAX - 64];
    one_line(msg, sizeof(msg), detail);
    snprintf(c->down, sizeof(c->down), "pgsql: %s: %s", why, msg);
    c->retry_at = mono_ms() + RECONNECT_DELAY_MS;
    return mandate_error_set(err, MANDATE_TEMPFAIL, "%s", c->down);
}

static mandate_rc conn_connect(struct conn *c, mandate_error *err)
{
    struct pgsql_inst *inst = c->inst;
    if (mono_ms() < c->retry_at)
        return mandate_error_set(err, MANDATE_TEMPFAIL, "%s", c->down);
    conn_disconnect(c);

    /* Defaults first, then the conninfo (which may override them), then
     * what this plugin relies on. */
    char user_timeout[24];
    snprintf(user_timeout, sizeof(user_timeout), "%" PRId64,
             inst->statement_timeout + CLIENT_GRACE_MS);
    const char *keys[12], *values[12];
    int n = 0;
    keys[n] = "application_name", values[n++] = "mandate";
    keys[n] = "keepalives", values[n++] = "1";
    keys[n] = "keepalives_idle", values[n++] = "30";
    keys[n] = "keepalives_interval", values[n++] = "10";
    keys[n] = "keepalives_count", values[n++] = "3";
    keys[n] = "tcp_user_timeout", values[n++] = user_timeout;
    if (inst->conninfo != NULL && inst->conninfo[0] != '\0')
        keys[n] = "dbname", values[n++] = inst->conninfo;
    keys[n] = "connect_timeout", values[n++] = inst->connect_timeout_text;
    keys[n] = "client_encoding", values[n++] = "UTF8";
    keys[n] = NULL, values[n] = NULL;

    PGconn *pg = PQconnectdbParams(keys, values, 1);
    if (pg == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "pgsql: out of memory");
    if (PQstatus(pg) != CONNECTION_OK) {
        mandate_rc rc = connect_failed(c, "cannot connect", PQerrorMessage(pg), err);
        PQfinish(pg);
        return rc;
    }
    if (PQserverVersion(pg) < SERVER_MIN_VERSION) {
        PQfinish(pg);
        return connect_failed(c, "cannot use the server", "it is older than PostgreSQL 10",
                              err);
    }
    PQsetNoticeReceiver(pg, notice_receiver, c);
    if (PQsetnonblocking(pg, 1) != 0) {
        mandate_rc rc = connect_failed(c, "cannot connect", PQerrorMessage(pg), err);
        PQfinish(pg);
        return rc;
    }
    c->pg = pg;
    char sql[64];
    snprintf(sql, sizeof(sql), "SET statement_timeout = %" PRId64, inst->statement_timeout);
    mandate_error e = {0};
    if (sql_exec(c, sql, false, normal_deadline(c), "setting statement_timeout", NULL, &e) !=
        MANDATE_OK) {
        conn_disconnect(c);
        snprintf(c->down, sizeof(c->down), "%s", e.message);
        c->retry_at = mono_ms() + RECONNECT_DELAY_MS;
        return mandate_error_set(err, MANDATE_TEMPFAIL, "%s", c->down);
    }
    c->retry_at = 0;
    return MANDATE_OK;
}

/* The calling thread's connection, connected. */
static mandate_rc conn_get(struct pgsql_inst *inst, struct conn **c_r, mandate_error *err)
{
    if (!inst->initialized)
        return mandate_error_set(err, MANDATE_ERROR, "pgsql: the instance is not open");
    struct conn *c = store_thread_conn_find(inst->id);
    if (c == NULL) {
        c = calloc(1, sizeof(*c));
        if (c == NULL)
            return mandate_error_set(err, MANDATE_ERROR, "pgsql: out of memory");
        c->inst = inst;
        pthread_mutex_lock(&inst->lock);
        c->next = inst->conns;
        if (c->next != NULL)
            c->next->prev = c;
        inst->conns = c;
        pthread_mutex_unlock(&inst->lock);
        store_thread_conn_remember(inst->id, c);
    }
    *c_r = c;
    if (c->pg != NULL && !c->doomed && PQstatus(c->pg) == CONNECTION_OK) {
        /* Reads what the server sent since the last call without waiting: a
         * restart or a terminated backend shows here, before we send. */
        if (PQtransactionStatus(c->pg) == PQTRANS_IDLE) {
            if (!PQconsumeInput(c->pg))
                conn_disconnect(c);
            else
                PQisBusy(c->pg); /* parses it: a FATAL notice dooms the connection */
        }
        if (c->pg != NULL && !c->doomed && PQstatus(c->pg) == CONNECTION_OK)
            return MANDATE_OK;
    }
    return conn_connect(c, err);
}

/* --- schema version ----------------------------------------------------- */

/* One integer from SQL run for the occasion; *found_r tells whether there
 * was a row. */
static mandate_rc query_int(struct conn *c, const char *sql, int64_t deadline, bool *found_r,
                            int64_t *value_r, mandate_error *err)
{
    PGresult *res;
    mandate_rc rc = sql_exec(c, sql, false, deadline, "reading the schema version", &res, err);
    if (rc != MANDATE_OK)
        return rc;
    *found_r = PQntuples(res) > 0;
    if (*found_r)
        *value_r = value_int(res, 0, 0);
    PQclear(res);
    return MANDATE_OK;
}

/* 0 when there is no schema at all. */
static mandate_rc read_version(struct conn *c, int64_t deadline, int *version_r,
                               mandate_error *err)
{
    bool found;
    int64_t n = 0;
    mandate_rc rc = query_int(c, "SELECT to_regclass('schema_version') IS NOT NULL", deadline,
                              &found, &n, err);
    if (rc != MANDATE_OK)
        return rc;
    if (n == 0) {
        *version_r = 0;
        return MANDATE_OK;
    }
    rc = query_int(c, "SELECT version FROM schema_version WHERE id = 1", deadline, &found, &n,
                   err);
    if (rc != MANDATE_OK)
        return rc;
    if (!found || n < 0 || n > INT_MAX)
        return mandate_error_set(err, MANDATE_ERROR,
                                 "pgsql: database \"%s\": the schema_version table is damaged",
                                 db_name(c));
    *version_r = (int)n;
    return MANDATE_OK;
}

static mandate_rc newer_error(struct conn *c, int version, mandate_error *err)
{
    return mandate_error_set(err, MANDATE_ERROR,
                             "pgsql: database \"%s\" has schema version %d, written by a newer "
                             "mandate (this one knows up to %d)",
                             db_name(c), version, SCHEMA_NEWEST);
}

/* The calling thread's connection, once its database has the newest schema. */
static mandate_rc conn_ready(struct pgsql_inst *inst, struct conn **c_r, mandate_error *err)
{
    struct conn *c;
    mandate_rc rc = conn_get(inst, &c, err);
    if (rc != MANDATE_OK)
        return rc;
    if (!c->schema_ok) {
        int version;
        rc = read_version(c, normal_deadline(c), &version, err);
        if (rc != MANDATE_OK)
            return rc;
        if (version > SCHEMA_NEWEST)
            return newer_error(c, version, err);
        if (version == 0)
            return mandate_error_set(err, MANDATE_ERROR,
                                     "pgsql: database \"%s\" has no schema: run the migrations "
                                     "(mandatectl init)",
                                     db_name(c));
        if (version < SCHEMA_NEWEST)
            return mandate_error_set(err, MANDATE_ERROR,
                                     "pgsql: database \"%s\" has schema version %d, older than "
                                     "%d: run the migrations (mandatectl init)",
                                     db_name(c), version, SCHEMA_NEWEST);
        c->schema_ok = true;
    }
    *c_r = c;
    return MANDATE_OK;
}

/* Runs a statement on the calling thread's ready connection. */
static mandate_rc run(struct pgsql_inst *inst, enum stmt_id id, const struct params *p,
                      const char *what, PGresult **res_r, mandate_error *err)
{
    struct conn *c;
    mandate_rc rc = conn_ready(inst, &c, err);
    if (rc != MANDATE_OK)
        return rc;
    return stmt_exec(c, id, p, what, res_r, err);
}

/* Runs a statement and gives *changed_r the rows it changed, as count()
 * finds them in its result. */
static mandate_rc run_counted(struct pgsql_inst *inst, enum stmt_id id, const struct params *p,
                              const char *what, int64_t (*count)(const PGresult *),
                              int64_t *changed_r, mandate_error *err)
{
    PGresult *res;
    *changed_r = 0;
    mandate_rc rc = run(inst, id, p, what, &res, err);
    if (rc != MANDATE_OK)
        return rc;
    *changed_r = count(res);
    PQclear(res);
    return MANDATE_OK;
}

/* run_counted of a statement that is to change a row: none_rc, with the
 * message given, when it changed none. */
static mandate_rc run_one(struct pgsql_inst *inst, enum stmt_id id, const struct params *p,
                          const char *what, int64_t (*count)(const PGresult *),
                          mandate_error *err, mandate_rc none_rc, const char *none, ...)
    MANDATE_PRINTF(8, 9);
static mandate_rc run_one(struct pgsql_inst *inst, enum stmt_id id, const struct params *p,
                          const char *what, int64_t (*count)(const PGresult *),
                          mandate_error *err, mandate_rc none_rc, const char *none, ...)
{
    int64_t changed;
    mandate_rc rc = run_counted(inst, id, p, what, count, &changed, err);
    if (rc != MANDATE_OK || changed != 0)
        return rc;
    va_list ap;
    va_start(ap, none);
    rc = store_error_vset(err, none_rc, none, ap);
    va_end(ap);
    return rc;
}

/* A lookup's first row on c: its record read into out (copied into pool),
 * the n_extra columns after it into extra; *found_r tells whether there was
 * a row (out is cleared when not). */
struct found {
    bool row;
    int n_extra;
    int64_t extra[2];
};

static mandate_rc stmt_find(struct conn *c, enum stmt_id id, const struct params *p,
                            const char *what, mandate_pool *pool, const store_record *rec,
                            void *out, struct found *found, mandate_error *err)
{
    PGresult *res;
    mandate_rc rc = stmt_exec(c, id, p, what, &res, err);
    if (rc != MANDATE_OK)
        return rc;
    found->row = PQntuples(res) > 0;
    memset(out, 0, rec->size);
    if (found->row) {
        struct reader r = {c->inst->host, pool, res, 0};
        read_record(&r, 0, rec, out);
        for (int i = 0; i < found->n_extra; i++)
            found->extra[i] = read_int(&r, (int)rec->n + i);
    }
    PQclear(res);
    return MANDATE_OK;
}

/* stmt_find on the calling thread's ready connection. */
static mandate_rc run_find(struct pgsql_inst *inst, enum stmt_id id, const struct params *p,
                           const char *what, mandate_pool *pool, const store_record *rec,
                           void *out, struct found *found, mandate_error *err)
{
    struct conn *c;
    mandate_rc rc = conn_ready(inst, &c, err);
    if (rc != MANDATE_OK)
        return rc;
    return stmt_find(c, id, p, what, pool, rec, out, found, err);
}

/* The row of a lookup, read into out (copied into pool); MANDATE_NOT_FOUND
 * with the message given when there is none. */
static mandate_rc run_get(struct pgsql_inst *inst, enum stmt_id id, const struct params *p,
                          const char *what, mandate_pool *pool, const store_record *rec,
                          void *out, mandate_error *err, const char *none, ...)
    MANDATE_PRINTF(9, 10);
static mandate_rc run_get(struct pgsql_inst *inst, enum stmt_id id, const struct params *p,
                          const char *what, mandate_pool *pool, const store_record *rec,
                          void *out, mandate_error *err, const char *none, ...)
{
    struct found found = {0};
    mandate_rc rc = run_find(inst, id, p, what, pool, rec, out, &found, err);
    if (rc != MANDATE_OK || found.row)
        return rc;
    va_list ap;
    va_start(ap, none);
    rc = store_error_vset(err, MANDATE_NOT_FOUND, none, ap);
    va_end(ap);
    return rc;
}

/* Runs a list statement and calls row() for each row, its columns valid
 * during the call; stops at the first answer other than MANDATE_OK and
 * returns it. The rows come whole before the first call, so a callback may
 * call back into the store on the same connection. */
static mandate_rc run_each(struct pgsql_inst *inst, enum stmt_id id, const struct params *p,
                           const char *what, store_row_fn row, store_each *e,
                           mandate_error *err)
{
    PGresult *res;
    if (e->cb == NULL)
        return mandate_error_set(err, MANDATE_INVALID, "pgsql: %s: no callback", what);
    mandate_rc rc = run(inst, id, p, what, &res, err);
    if (rc != MANDATE_OK)
        return rc;
    int rows = PQntuples(res);
    for (int i = 0; i < rows && rc == MANDATE_OK; i++) {
        struct reader r = {inst->host, NULL, res, i};
        rc = row(&r, e);
    }
    PQclear(res);
    return rc;
}

/* The statements of an op that must be seen together, as a body run in one
 * transaction on the thread's connection: committed when it answers
 * MANDATE_OK, else rolled back. An outcome to report after a commit goes
 * through ctx. */
typedef mandate_rc (*tx_body)(struct conn *c, void *ctx, mandate_error *err);

static mandate_rc conn_tx(struct pgsql_inst *inst, tx_body body, void *ctx, mandate_error *err)
{
    struct conn *c;
    mandate_rc rc = conn_ready(inst, &c, err);
    if (rc == MANDATE_OK)
        rc = tx_begin(c, err);
    return rc == MANDATE_OK ? tx_end(c, body(c, ctx, err), err) : rc;
}

/* --- ops: housekeeping --------------------------------------------------- */

static mandate_rc store_ping(void *inst_, mandate_error *err)
{
    struct params p = {0};
    PGresult *res;
    mandate_rc rc = run(inst_, ST_PING, &p, "ping", &res, err);
    if (rc == MANDATE_OK)
        PQclear(res);
    return rc;
}

static mandate_rc migrate_step(struct conn *c, int version, int64_t deadline,
                               mandate_error *err)
{
    char what[64];
    snprintf(what, sizeof(what), "migrating to schema version %d", version + 1);
    mandate_rc rc = sql_exec(c, migrations[version], true, deadline, what, NULL, err);
    if (rc != MANDATE_OK)
        return rc;
    char sql[160];
    snprintf(sql, sizeof(sql),
             "INSERT INTO schema_version (id, version) VALUES (1, %d) "
             "ON CONFLICT (id) DO UPDATE SET version = excluded.version",
             version + 1);
    return sql_exec(c, sql, false, deadline, "recording the schema version", NULL, err);
}

/* One transaction per step, each taking the advisory lock and re-reading the
 * version under it: nodes migrating at once apply every step exactly once. */
static mandate_rc store_migrate(void *inst_, mandate_error *err)
{
    struct pgsql_inst *inst = inst_;
    struct conn *c;
    mandate_rc rc = conn_get(inst, &c, err);
    if (rc != MANDATE_OK)
        return rc;
    for (;;) {
        int version = 0;
        int64_t deadline = mono_ms() + MIGRATE_TIMEOUT_MS + CLIENT_GRACE_MS;
        rc = tx_begin(c, err);
        if (rc != MANDATE_OK)
            return rc;
        char sql[64];
        snprintf(sql, sizeof(sql), "SET LOCAL statement_timeout = %d", MIGRATE_TIMEOUT_MS);
        rc = sql_exec(c, sql, false, deadline, "setting statement_timeout", NULL, err);
        if (rc == MANDATE_OK)
            rc = sql_exec(c, "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK_KEY ")", false,
                          deadline, "taking the migration lock", NULL, err);
        if (rc == MANDATE_OK)
            rc = read_version(c, deadline, &version, err);
        if (rc == MANDATE_OK && version > SCHEMA_NEWEST)
            rc = newer_error(c, version, err);
        if (rc != MANDATE_OK || version == SCHEMA_NEWEST) {
            tx_end(c, MANDATE_ERROR, NULL);
            break;
        }
        rc = migrate_step(c, version, deadline, err);
        rc = tx_end(c, rc, err);
        if (rc != MANDATE_OK)
            break;
        mandate_log_info(inst->host, "pgsql: database \"%s\": migrated to schema version %d",
                         db_name(c), version + 1);
    }
    if (rc == MANDATE_OK)
        c->schema_ok = true;
    return rc;
}

static mandate_rc store_schema_version(void *inst_, int *version_r, mandate_error *err)
{
    struct conn *c;
    mandate_rc rc = conn_get(inst_, &c, err);
    if (rc != MANDATE_OK)
        return rc;
    return read_version(c, normal_deadline(c), version_r, err);
}

static mandate_rc store_generation(void *inst_, uint64_t *generation_r, mandate_error *err)
{
    struct params p = {0};
    PGresult *res;
    mandate_rc rc = run(inst_, ST_GENERATION, &p, "reading the generation", &res, err);
    if (rc != MANDATE_OK)
        return rc;
    if (PQntuples(res) < 1)
        rc = mandate_error_set(err, MANDATE_ERROR, "pgsql: the generation counter is missing");
    else
        *generation_r = (uint64_t)single_int(res);
    PQclear(res);
    return rc;
}

/* --- ops: clients --------------------------------------------------------- */

static mandate_rc store_client_get(void *inst_, mandate_pool *pool, const char *client_id,
                                   mandate_client *client_r, mandate_error *err)
{
    struct params p = {0};
    if (client_id == NULL)
        return mandate_error_set(err, MANDATE_INVALID, "pgsql: client_get: no client_id");
    param_text(&p, client_id);
    return run_get(inst_, ST_CLIENT_GET, &p, "client_get", pool, &store_client_record, client_r,
                   err, "pgsql: no client \"%s\"", client_id);
}

/* client_create (create) or client_update. */
static mandate_rc client_write(struct pgsql_inst *inst, const mandate_client *client,
                               bool create, mandate_error *err)
{
    const char *what = create ? "client_create" : "client_update";
    struct params p = {0};
    mandate_rc rc = store_check_client("pgsql", client, what, err);
    if (rc != MANDATE_OK)
        return rc;
    param_client(&p, client, create, inst->host->now(inst->host));
    if (create)
        return run_one(inst, ST_CLIENT_CREATE, &p, what, single_int, err, MANDATE_EXISTS,
                       "pgsql: client_id \"%s\" is taken", client->client_id);
    return run_one(inst, ST_CLIENT_UPDATE, &p, what, single_int, err, MANDATE_NOT_FOUND,
                   "pgsql: no client \"%s\"", client->client_id);
}

static mandate_rc store_client_create(void *inst_, const mandate_client *client,
                                      mandate_error *err)
{
    return client_write(inst_, client, true, err);
}

static mandate_rc store_client_update(void *inst_, const mandate_client *client,
                                      mandate_error *err)
{
    return client_write(inst_, client, false, err);
}

/* A DELETE by primary key: MANDATE_NOT_FOUND when nothing was deleted. */
static mandate_rc delete_by_key(struct pgsql_inst *inst, enum stmt_id id, const char *key,
                                const char *what, const char *noun, mandate_error *err)
{
    struct params p = {0};
    if (key == NULL)
        return mandate_error_set(err, MANDATE_INVALID, "pgsql: %s: no %s", what, noun);
    param_text(&p, key);
    return run_one(inst, id, &p, what, single_int, err, MANDATE_NOT_FOUND,
                   "pgsql: no %s \"%s\"", noun, key);
}

static mandate_rc store_client_delete(void *inst_, const char *client_id, mandate_error *err)
{
    return delete_by_key(inst_, ST_CLIENT_DELETE, client_id, "client_delete", "client", err);
}

static mandate_rc store_client_list(void *inst_, const mandate_client_filter *filter,
                                    mandate_client_cb each, void *ctx, mandate_error *err)
{
    struct params p = {0};
    const char *tenant = filter != NULL ? filter->tenant : NULL;
    const char *after = filter != NULL ? filter->after : NULL;
    size_t limit = filter != NULL ? filter->limit : 0;
    enum stmt_id id =
        tenant != NULL ? (after != NULL ? ST_CLIENT_LIST_TENANT_AFTER : ST_CLIENT_LIST_TENANT)
                       : (after != NULL ? ST_CLIENT_LIST_AFTER : ST_CLIENT_LIST);
    param_text(&p, tenant);
    param_text(&p, after);
    if (limit == 0 || limit > (uint64_t)INT64_MAX)
        param_null_int(&p);
    else
        param_int(&p, (int64_t)limit);
    store_each e = {(void (*)(void))each, ctx, &columns_read};
    return run_each(inst_, id, &p, "client_list", store_each_client, &e, err);
}

/* Inserts clients[0..n) in this connection's open transaction; *taken_r is
 * the index of the first client_id already there, or n. */
#ifdef LIBPQ_HAS_PIPELINING
static mandate_rc import_rows(struct conn *c, const mandate_client *clients, size_t n,
                              int64_t now, size_t *taken_r, mandate_error *err)
{
    struct params p = {0};
    *taken_r = n;
    param_client(&p, &clients[0], true, now);
    mandate_rc rc = stmt_prepare(c, ST_CLIENT_INSERT, &p, "client_import", err);
    if (rc != MANDATE_OK)
        return rc;
    char name[32];
    stmt_name(ST_CLIENT_INSERT, name, sizeof(name));
    if (!PQenterPipelineMode(c->pg))
        return conn_lost(c, "client_import", err);
    /* chunks, so the results waiting to be read stay small */
    for (size_t base = 0; base < n && *taken_r == n && rc == MANDATE_OK; base += IMPORT_CHUNK) {
        size_t end = n - base > IMPORT_CHUNK ? base + IMPORT_CHUNK : n;
        for (size_t i = base; i < end; i++) {
            param_client(&p, &clients[i], true, now);
            if (p.overflow) {
                rc = mandate_error_set(err, MANDATE_INVALID,
                                       "pgsql: client_import: a value is too large");
                end = i;
                break;
            }
            if (!PQsendQueryPrepared(c->pg, name, p.n, p.values, p.lengths, p.formats, 1))
                return conn_lost(c, "client_import", err);
        }
        if (!PQpipelineSync(c->pg))
            return conn_lost(c, "client_import", err);
        size_t i = base;
        for (bool synced = false; !synced;) {
            mandate_rc wrc = conn_wait(c, normal_deadline(c), "client_import", err);
            if (wrc != MANDATE_OK)
                return wrc;
            PGresult *res = PQgetResult(c->pg);
            if (res == NULL) {
                if (PQstatus(c->pg) == CONNECTION_BAD)
                    return conn_lost(c, "client_import", err);
                continue; /* between two statements' results */
            }
            switch (PQresultStatus(res)) {
            case PGRES_PIPELINE_SYNC: synced = true; break;
            case PGRES_COMMAND_OK:
                if (rows_changed(res) == 0 && *taken_r == n)
                    *taken_r = i;
                i++;
                break;
            case PGRES_PIPELINE_ABORTED: i++; break;
            default:
                if (rc == MANDATE_OK)
                    rc = result_error(c, res, "client_import", err);
                i++;
                if (c->pg == NULL) {
                    PQclear(res);
                    return rc;
                }
                break;
            }
            PQclear(res);
        }
    }
    if (!PQexitPipelineMode(c->pg))
        return conn_lost(c, "client_import", err);
    return rc;
}
#else
static mandate_rc import_rows(struct conn *c, const mandate_client *clients, size_t n,
                              int64_t now, size_t *taken_r, mandate_error *err)
{
    struct params p = {0};
    *taken_r = n;
    for (size_t i = 0; i < n; i++) {
        PGresult *res;
        param_client(&p, &clients[i], true, now);
        mandate_rc rc = stmt_exec(c, ST_CLIENT_INSERT, &p, "client_import", &res, err);
        if (rc != MANDATE_OK)
            return rc;
        int64_t changed = rows_changed(res);
        PQclear(res);
        if (changed == 0) {
            *taken_r = i;
            break;
        }
    }
    return MANDATE_OK;
}
#endif

struct import {
    const mandate_client *clients;
    size_t n;
    int64_t now;
};

static mandate_rc import_body(struct conn *c, void *ctx, mandate_error *err)
{
    struct import *im = ctx;
    size_t taken = im->n;
    mandate_rc rc = import_rows(c, im->clients, im->n, im->now, &taken, err);
    if (rc == MANDATE_OK && taken < im->n)
        rc = mandate_error_set(err, MANDATE_EXISTS, "pgsql: client_id \"%s\" is taken",
                               im->clients[taken].client_id);
    if (rc == MANDATE_OK) {
        struct params p = {0};
        PGresult *res;
        rc = stmt_exec(c, ST_GENERATION_BUMP, &p, "raising the generation", &res, err);
        if (rc == MANDATE_OK)
            PQclear(res);
    }
    return rc;
}

static mandate_rc store_client_import(void *inst_, const mandate_client *clients, size_t n,
                                      mandate_error *err)
{
    struct pgsql_inst *inst = inst_;
    if (n == 0)
        return MANDATE_OK;
    if (clients == NULL)
        return mandate_error_set(err, MANDATE_INVALID, "pgsql: client_import: no clients");
    for (size_t i = 0; i < n; i++) {
        mandate_rc rc = store_check_client("pgsql", &clients[i], "client_import", err);
        if (rc != MANDATE_OK)
            return rc;
    }
    struct import im = {clients, n, inst->host->now(inst->host)};
    return conn_tx(inst, import_body, &im, err);
}

/* --- ops: keys ------------------------------------------------------------- */

static mandate_rc store_key_add(void *inst_, const mandate_key *key, mandate_error *err)
{
    struct pgsql_inst *inst = inst_;
    struct params p = {0};
    if (key == NULL || key->kid == NULL)
        return mandate_error_set(err, MANDATE_INVALID, "pgsql: key_add: no kid");
    mandate_key row = *key;
    if (row.created_at == 0)
        row.created_at = inst->host->now(inst->host);
    param_record(&p, &store_key_record, &row);
    return run_one(inst, ST_KEY_INSERT, &p, "key_add", single_int, err, MANDATE_EXISTS,
                   "pgsql: kid \"%s\" is taken", key->kid);
}

static mandate_rc store_key_update(void *inst_, const mandate_key *key, mandate_error *err)
{
    struct params p = {0};
    if (key == NULL || key->kid == NULL)
        return mandate_error_set(err, MANDATE_INVALID, "pgsql: key_update: no kid");
    param_text(&p, key->kid);
    param_int(&p, (int64_t)key->status);
    param_int(&p, key->retired_at);
    param_int(&p, key->remove_after);
    return run_one(inst_, ST_KEY_UPDATE, &p, "key_update", single_int, err, MANDATE_NOT_FOUND,
                   "pgsql: no key \"%s\"", key->kid);
}

static mandate_rc store_key_list(void *inst_, mandate_key_cb each, void *ctx,
                                 mandate_error *err)
{
    struct params p = {0};
    store_each e = {(void (*)(void))each, ctx, &columns_read};
    return run_each(inst_, ST_KEY_LIST, &p, "key_list", store_each_key, &e, err);
}

static mandate_rc store_key_delete(void *inst_, const char *kid, mandate_error *err)
{
    return delete_by_key(inst_, ST_KEY_DELETE, kid, "key_delete", "key", err);
}

/* --- ops: tokens, revocations, replay ------------------------------------ */

static mandate_rc no_hash(const unsigned char *hash, size_t len, const char *what,
                          mandate_error *err)
{
    if (hash == NULL || len == 0)
        return mandate_error_set(err, MANDATE_INVALID, "pgsql: %s: no hash", what);
    return MANDATE_OK;
}

/* Inserts a record (its fields as $1 and on) keyed by a hash, given too:
 * MANDATE_INVALID when it is missing, MANDATE_EXISTS, with a message that
 * names what, when it is taken. */
static mandate_rc insert_hashed(struct pgsql_inst *inst, enum stmt_id id, const char *what,
                                const store_record *rec, const void *in,
                                const unsigned char *hash, size_t hash_len, mandate_error *err)
{
    mandate_rc rc = no_hash(hash, hash_len, what, err);
    if (rc != MANDATE_OK)
        return rc;
    struct params p = {0};
    param_record(&p, rec, in);
    return run_one(inst, id, &p, what, rows_changed, err, MANDATE_EXISTS,
                   "pgsql: %s: that key is taken", what);
}

/* Binds a row's hash as $1 and, unless it is INT64_MIN, now as $2; a
 * missing hash is MANDATE_INVALID. */
static mandate_rc param_hash(struct params *p, const unsigned char *hash, size_t hash_len,
                             int64_t now, const char *what, mandate_error *err)
{
    mandate_rc rc = no_hash(hash, hash_len, what, err);
    if (rc != MANDATE_OK)
        return rc;
    param_blob(p, hash, hash_len);
    if (now != INT64_MIN)
        param_int(p, now);
    return MANDATE_OK;
}

/* The row under a hash still live at now (bound as $1 and $2), read into
 * out from pool; MANDATE_NOT_FOUND naming noun when there is none. */
static mandate_rc get_by_hash(struct pgsql_inst *inst, enum stmt_id id, const char *what,
                              mandate_pool *pool, const unsigned char *hash, size_t hash_len,
                              int64_t now, const store_record *rec, void *out, const char *noun,
                              mandate_error *err)
{
    struct params p = {0};
    mandate_rc rc = param_hash(&p, hash, hash_len, now, what, err);
    if (rc != MANDATE_OK)
        return rc;
    return run_get(inst, id, &p, what, pool, rec, out, err,
                   "pgsql: no unexpired %s with that hash", noun);
}

static mandate_rc store_token_put(void *inst_, const mandate_token_record *record,
                                  mandate_error *err)
{
    return insert_hashed(inst_, ST_TOKEN_INSERT, "token_put", &store_token_record, record,
                         STORE_RECORD_HASH(record, token_hash), err);
}

static mandate_rc store_token_get(void *inst_, mandate_pool *pool, const unsigned char *hash,
                                  size_t hash_len, int64_t now, mandate_token_record *record_r,
                                  mandate_error *err)
{
    struct params p = {0};
    if (hash == NULL || hash_len == 0)
        return mandate_error_set(err, MANDATE_INVALID, "pgsql: token_get: no token hash");
    param_blob(&p, hash, hash_len);
    param_int(&p, now);
    return run_get(inst_, ST_TOKEN_GET, &p, "token_get", pool, &store_token_record, record_r,
                   err, "pgsql: no unexpired token record with that hash");
}

/* The rows of a list statement still live at now. */
static mandate_rc list_live(struct pgsql_inst *inst, enum stmt_id id, int64_t now,
                            const char *what, store_row_fn row, store_each *e,
                            mandate_error *err)
{
    struct params p = {0};
    param_int(&p, now);
    return run_each(inst, id, &p, what, row, e, err);
}

static mandate_rc store_revocation_list(void *inst_, int64_t now, mandate_revocation_cb each,
                                        void *ctx, mandate_error *err)
{
    store_each e = {(void (*)(void))each, ctx, &columns_read};
    return list_live(inst_, ST_REVOCATION_LIST, now, "revocation_list", store_each_text_pair,
                     &e, err);
}

static mandate_rc store_token_list(void *inst_, int64_t now, mandate_token_record_cb each,
                                   void *ctx, mandate_error *err)
{
    store_each e = {(void (*)(void))each, ctx, &columns_read};
    return list_live(inst_, ST_TOKEN_LIST, now, "token_list", store_each_token, &e, err);
}

static mandate_rc store_replay_list(void *inst_, int64_t now, mandate_replay_cb each, void *ctx,
                                    mandate_error *err)
{
    store_each e = {(void (*)(void))each, ctx, &columns_read};
    return list_live(inst_, ST_REPLAY_LIST, now, "replay_list", store_each_text_pair, &e, err);
}

static mandate_rc store_revoke(void *inst_, const char *jti, const char *client_id,
                               int64_t expires_at, mandate_error *err)
{
    struct pgsql_inst *inst = inst_;
    struct params p = {0};
    if (jti == NULL)
        return mandate_error_set(err, MANDATE_INVALID, "pgsql: revoke: no jti");
    param_text(&p, jti);
    param_text(&p, client_id);
    param_int(&p, expires_at);
    param_int(&p, inst->host->now(inst->host));
    int64_t changed;
    return run_counted(inst, ST_REVOKE, &p, "revoke", single_int, &changed, err);
}

static mandate_rc store_is_revoked(void *inst_, const char *jti, bool *revoked_r,
                                   mandate_error *err)
{
    struct params p = {0};
    PGresult *res;
    if (jti == NULL)
        return mandate_error_set(err, MANDATE_INVALID, "pgsql: is_revoked: no jti");
    param_text(&p, jti);
    mandate_rc rc = run(inst_, ST_IS_REVOKED, &p, "is_revoked", &res, err);
    if (rc != MANDATE_OK)
        return rc;
    *revoked_r = PQntuples(res) > 0;
    PQclear(res);
    return MANDATE_OK;
}

static mandate_rc store_replay_claim(void *inst_, const char *ns, const char *id,
                                     int64_t expires_at, mandate_error *err)
{
    struct pgsql_inst *inst = inst_;
    struct params p = {0};
    if (ns == NULL || id == NULL)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "pgsql: replay_claim: no namespace or no id");
    param_text(&p, ns);
    param_text(&p, id);
    param_int(&p, expires_at);
    param_int(&p, inst->host->now(inst->host));
    return run_one(inst, ST_REPLAY_CLAIM, &p, "replay_claim", rows_changed, err, MANDATE_EXISTS,
                   "pgsql: replay: that id was already used in \"%s\"", ns);
}

/* An entry is gone once expires_at <= now, as token_get and replay_claim see
 * it. One statement: atomic. */
static mandate_rc store_purge(void *inst_, int64_t now, uint64_t *count_r, mandate_error *err)
{
    struct params p = {0};
    PGresult *res;
    param_int(&p, now);
    mandate_rc rc = run(inst_, ST_PURGE, &p, "purge", &res, err);
    if (rc != MANDATE_OK)
        return rc;
    if (count_r != NULL)
        *count_r = (uint64_t)single_int(res);
    PQclear(res);
    return MANDATE_OK;
}

/* --- ops: sign-in (ABI 1.5) ------------------------------------------------ */

/* Each op is one statement, atomic by itself, but those of refresh
 * families (see the top of this file). */

/* once_put and once_set on c: ns, key, value, expires_at, then now at $5
 * (put) or keep_until and now at $5, $6 (set); a put that wrote nothing is
 * MANDATE_EXISTS. */
static mandate_rc once_write_on(void *conn, const mandate_store_write *w, mandate_error *err)
{
    struct conn *c = conn;
    bool set = w->op == MANDATE_STORE_WRITE_ONCE_SET;
    const char *what = set ? "once_set" : "once_put";
    struct params p = {0};
    mandate_rc rc = no_hash(w->key, w->key_len, what, err);
    if (rc == MANDATE_OK && w->ns == NULL)
        rc = mandate_error_set(err, MANDATE_INVALID, "pgsql: %s: no namespace", what);
    if (rc != MANDATE_OK)
        return rc;
    param_text(&p, w->ns);
    param_blob(&p, w->key, w->key_len);
    param_text(&p, w->value);
    param_int(&p, w->expires_at);
    if (set)
        param_int(&p, w->keep_until);
    param_int(&p, c->inst->host->now(c->inst->host));
    PGresult *res;
    rc = stmt_exec(c, set ? ST_ONCE_SET : ST_ONCE_PUT, &p, what, &res, err);
    if (rc != MANDATE_OK)
        return rc;
    if (!set && rows_changed(res) == 0)
        rc = mandate_error_set(err, MANDATE_EXISTS,
                               "pgsql: once_put: that key is taken in \"%s\"", w->ns);
    PQclear(res);
    return rc;
}

static mandate_rc session_put_on(void *conn, const mandate_session *session, mandate_error *err)
{
    struct conn *c = conn;
    mandate_rc rc = no_hash(session != NULL ? session->id_hash : NULL,
                            session != NULL ? session->id_hash_len : 0, "session_put", err);
    if (rc != MANDATE_OK)
        return rc;
    struct params p = {0};
    param_record(&p, &store_session_record, session);
    PGresult *res;
    rc = stmt_exec(c, ST_SESSION_INSERT, &p, "session_put", &res, err);
    if (rc != MANDATE_OK)
        return rc;
    if (rows_changed(res) == 0)
        rc = mandate_error_set(err, MANDATE_EXISTS, "pgsql: session_put: that key is taken");
    PQclear(res);
    return rc;
}

static mandate_rc write_one(void *inst, const mandate_store_write *w, mandate_error *err)
{
    struct conn *c;
    mandate_rc rc = conn_ready(inst, &c, err);
    return rc == MANDATE_OK ? store_write_on(((struct pgsql_inst *)inst)->writes, c, w, err)
                            : rc;
}

/* A batch is one transaction on the thread's connection: one commit for
 * all of its writes. */
static mandate_rc batch_tx(void *inst, store_batch *b, mandate_error *err)
{
    struct conn *c;
    mandate_rc rc = conn_ready(inst, &c, err);
    if (rc == MANDATE_OK)
        rc = tx_begin(c, err);
    return rc == MANDATE_OK ? tx_end(c, store_batch_run(c, b, err), err) : rc;
}

static const store_writer pgsql_writer = {"pgsql", write_one, batch_tx, once_write_on,
                                          session_put_on};

static mandate_rc store_once_take(void *inst_, mandate_pool *pool, const char *ns,
                                  const unsigned char *key, size_t key_len, int64_t now,
                                  char **value_r, mandate_error *err)
{
    struct params p = {0};
    struct once_row row;
    *value_r = NULL;
    mandate_rc rc = no_hash(key, key_len, "once_take", err);
    if (rc == MANDATE_OK && ns == NULL)
        rc = mandate_error_set(err, MANDATE_INVALID, "pgsql: once_take: no namespace");
    if (rc != MANDATE_OK)
        return rc;
    param_text(&p, ns);
    param_blob(&p, key, key_len);
    param_int(&p, now);
    rc = run_get(inst_, ST_ONCE_TAKE, &p, "once_take", pool, &once_record, &row, err,
                 "pgsql: once_take: nothing to take under that key in \"%s\"", ns);
    if (rc == MANDATE_OK)
        *value_r = (char *)row.value;
    return rc;
}

static mandate_rc store_auth_code_put(void *inst_, const mandate_auth_code *code,
                                      mandate_error *err)
{
    return insert_hashed(inst_, ST_CODE_INSERT, "auth_code_put", &store_code_record, code,
                         STORE_RECORD_HASH(code, code_hash), err);
}

/* One statement (see ST_CODE_TAKE): of two nodes redeeming a code at once,
 * one gets MANDATE_OK and the other MANDATE_EXISTS. */
static mandate_rc store_auth_code_take(void *inst_, mandate_pool *pool,
                                       const unsigned char *hash, size_t hash_len, int64_t now,
                                       mandate_auth_code *code_r, mandate_error *err)
{
    struct params p = {0};
    struct found found = {.n_extra = 2};
    mandate_rc rc = no_hash(hash, hash_len, "auth_code_take", err);
    if (rc != MANDATE_OK)
        return rc;
    param_blob(&p, hash, hash_len);
    param_int(&p, now);
    rc = run_find(inst_, ST_CODE_TAKE, &p, "auth_code_take", pool, &store_code_record, code_r,
                  &found, err);
    if (rc != MANDATE_OK || (found.row && found.extra[0] != 0))
        return rc;
    if (found.row && found.extra[1] != 0)
        return mandate_error_set(err, MANDATE_EXISTS,
                                 "pgsql: auth_code_take: the code was redeemed before");
    memset(code_r, 0, sizeof(*code_r));
    return mandate_error_set(err, MANDATE_NOT_FOUND,
                             "pgsql: auth_code_take: no unexpired code with that hash");
}

/* The family first, so that the token's statement (its snapshot taken
 * after the family's insert, which waits for another node's insert of the
 * same family) finds the family's end; rolled back when the hash is taken. */
static mandate_rc refresh_put_body(struct conn *c, void *ctx, mandate_error *err)
{
    const struct params *p = ctx;
    PGresult *res;
    mandate_rc rc = stmt_exec(c, ST_FAMILY_INSERT, p, "refresh_put", &res, err);
    if (rc != MANDATE_OK)
        return rc;
    PQclear(res);
    rc = stmt_exec(c, ST_REFRESH_INSERT, p, "refresh_put", &res, err);
    if (rc != MANDATE_OK)
        return rc;
    if (rows_changed(res) == 0)
        rc = mandate_error_set(err, MANDATE_EXISTS,
                               "pgsql: refresh_put: a refresh token with that hash exists");
    PQclear(res);
    return rc;
}

static mandate_rc store_refresh_put(void *inst_, const mandate_refresh_token *token,
                                    mandate_error *err)
{
    struct params p = {0};
    mandate_rc rc = no_hash(STORE_RECORD_HASH(token, token_hash), "refresh_put", err);
    if (rc == MANDATE_OK && token->family_id == NULL)
        rc = mandate_error_set(err, MANDATE_INVALID, "pgsql: refresh_put: no family_id");
    if (rc != MANDATE_OK)
        return rc;
    mandate_refresh_token row = *token;
    if (row.status == 0)
        row.status = MANDATE_REFRESH_ACTIVE;
    param_record(&p, &store_refresh_record, &row);
    return conn_tx(inst_, refresh_put_body, &p, err);
}

static mandate_rc store_refresh_get(void *inst_, mandate_pool *pool, const unsigned char *hash,
                                    size_t hash_len, int64_t now,
                                    mandate_refresh_token *token_r, mandate_error *err)
{
    return get_by_hash(inst_, ST_REFRESH_GET, "refresh_get", pool, hash, hash_len, now,
                       &store_refresh_record, token_r, "refresh token", err);
}

/* Ends the families that keys[0..n) name (a family_id; a tenant and a
 * subject) in c's transaction: locks their rows, then ends them (see
 * FAMILY_END); *active_r: how many of their tokens were ACTIVE. */
static mandate_rc end_families(struct conn *c, enum stmt_id lock, enum stmt_id end,
                               const char *const *keys, int n, uint64_t *active_r,
                               mandate_error *err)
{
    struct params p = {0};
    PGresult *res;
    for (int i = 0; i < n; i++)
        param_text(&p, keys[i]);
    mandate_rc rc = stmt_exec(c, lock, &p, "ending refresh families", &res, err);
    if (rc != MANDATE_OK)
        return rc;
    PQclear(res);
    rc = stmt_exec(c, end, &p, "ending refresh families", &res, err);
    if (rc != MANDATE_OK)
        return rc;
    *active_r = (uint64_t)single_int(res);
    PQclear(res);
    return MANDATE_OK;
}

struct rotate {
    const unsigned char *old_hash;
    size_t old_len;
    int64_t now;
    const mandate_refresh_token *next;
    mandate_pool *pool;
    mandate_refresh_token *old_r;
    mandate_rc outcome; /* committed with it */
};

/* Under the family's lock (ST_REFRESH_LOCK), which ending the family takes
 * too, on any node: the old token and its family as they are, what that
 * means, then the change it calls for. */
static mandate_rc rotate_body(struct conn *c, void *ctx, mandate_error *err)
{
    struct rotate *r = ctx;
    struct params p = {0};
    struct found found = {.n_extra = 1};
    PGresult *res;
    param_blob(&p, r->old_hash, r->old_len);
    mandate_rc rc = stmt_exec(c, ST_REFRESH_LOCK, &p, "refresh_rotate", &res, err);
    if (rc != MANDATE_OK)
        return rc;
    PQclear(res);
    rc = stmt_find(c, ST_REFRESH_FIND, &p, "refresh_rotate", r->pool, &store_refresh_record,
                   r->old_r, &found, err);
    if (rc != MANDATE_OK)
        return rc;
    r->outcome =
        !found.row ? mandate_error_set(err, MANDATE_NOT_FOUND,
                                       "pgsql: no unexpired refresh token with that "
                                       "hash")
                   : store_refresh_verdict("pgsql", r->old_r, found.extra[0] != 0, r->now, err);
    if (r->outcome == MANDATE_DENIED && r->old_r->status == MANDATE_REFRESH_USED) {
        uint64_t active;
        const char *family = r->old_r->family_id;
        return end_families(c, ST_FAMILY_LOCK, ST_FAMILY_END, &family, 1, &active, err);
    }
    if (r->outcome != MANDATE_OK)
        return MANDATE_OK;
    const mandate_refresh_token *n = r->next;
    param_blob(&p, n->token_hash, n->token_hash_len);
    param_text(&p, n->client_id);
    param_text(&p, n->tenant);
    param_text(&p, n->subject);
    param_text(&p, n->grant);
    param_int(&p, n->issued_at);
    param_int(&p, n->expires_at);
    rc = stmt_exec(c, ST_REFRESH_NEXT, &p, "refresh_rotate", &res, err);
    if (rc != MANDATE_OK)
        return rc;
    if (single_int(res) == 0)
        rc =
            mandate_error_set(err, MANDATE_EXISTS,
                              "pgsql: refresh_rotate: a refresh token with next's hash exists");
    PQclear(res);
    return rc;
}

static mandate_rc store_refresh_rotate(void *inst_, mandate_pool *pool,
                                       const unsigned char *old_hash, size_t old_hash_len,
                                       int64_t now, const mandate_refresh_token *next,
                                       mandate_refresh_token *old_r, mandate_error *err)
{
    mandate_rc rc = no_hash(old_hash, old_hash_len, "refresh_rotate", err);
    if (rc == MANDATE_OK)
        rc = no_hash(STORE_RECORD_HASH(next, token_hash), "refresh_rotate", err);
    if (rc != MANDATE_OK)
        return rc;
    struct rotate r = {old_hash, old_hash_len, now, next, pool, old_r, MANDATE_OK};
    rc = conn_tx(inst_, rotate_body, &r, err);
    if (rc == MANDATE_OK && r.outcome != MANDATE_OK) {
        if (r.outcome == MANDATE_NOT_FOUND)
            memset(old_r, 0, sizeof(*old_r));
        return r.outcome;
    }
    return rc;
}

struct family_end {
    enum stmt_id lock, end;
    const char *keys[2];
    int n;
    uint64_t active;
};

static mandate_rc family_end_body(struct conn *c, void *ctx, mandate_error *err)
{
    struct family_end *f = ctx;
    return end_families(c, f->lock, f->end, f->keys, f->n, &f->active, err);
}

static mandate_rc family_end_run(struct pgsql_inst *inst, struct family_end *f,
                                 uint64_t *count_r, mandate_error *err)
{
    mandate_rc rc = conn_tx(inst, family_end_body, f, err);
    if (rc == MANDATE_OK && count_r != NULL)
        *count_r = f->active;
    return rc;
}

static mandate_rc store_refresh_revoke_family(void *inst_, const char *family_id,
                                              uint64_t *count_r, mandate_error *err)
{
    if (family_id == NULL)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "pgsql: refresh_revoke_family: no family_id");
    struct family_end f = {ST_FAMILY_LOCK, ST_FAMILY_END, {family_id, NULL}, 1, 0};
    return family_end_run(inst_, &f, count_r, err);
}

static mandate_rc store_refresh_revoke_subject(void *inst_, const char *tenant,
                                               const char *subject, uint64_t *count_r,
                                               mandate_error *err)
{
    if (tenant == NULL || subject == NULL)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "pgsql: refresh_revoke_subject: no tenant or no subject");
    struct family_end f = {ST_SUBJECT_LOCK, ST_SUBJECT_END, {tenant, subject}, 2, 0};
    return family_end_run(inst_, &f, count_r, err);
}

static mandate_rc store_session_get(void *inst_, mandate_pool *pool, const unsigned char *hash,
                                    size_t hash_len, int64_t now, mandate_session *session_r,
                                    mandate_error *err)
{
    return get_by_hash(inst_, ST_SESSION_GET, "session_get", pool, hash, hash_len, now,
                       &store_session_record, session_r, "session", err);
}

/* A write by hash ($1; $2: now unless INT64_MIN): MANDATE_NOT_FOUND when no
 * row changed. */
static mandate_rc write_by_hash(struct pgsql_inst *inst, enum stmt_id id, const char *what,
                                const unsigned char *hash, size_t hash_len, int64_t now,
                                mandate_error *err)
{
    struct params p = {0};
    mandate_rc rc = param_hash(&p, hash, hash_len, now, what, err);
    if (rc != MANDATE_OK)
        return rc;
    return run_one(inst, id, &p, what, rows_changed, err, MANDATE_NOT_FOUND,
                   "pgsql: %s: no such row", what);
}

static mandate_rc store_session_touch(void *inst_, const unsigned char *hash, size_t hash_len,
                                      int64_t now, mandate_error *err)
{
    return write_by_hash(inst_, ST_SESSION_TOUCH, "session_touch", hash, hash_len, now, err);
}

static mandate_rc store_session_delete(void *inst_, const unsigned char *hash, size_t hash_len,
                                       mandate_error *err)
{
    return write_by_hash(inst_, ST_SESSION_DELETE, "session_delete", hash, hash_len, INT64_MIN,
                         err);
}

/* A write keyed by n texts ($1 and on); *count_r (may be NULL): the rows it
 * changed. */
static mandate_rc write_by_keys(struct pgsql_inst *inst, enum stmt_id id, const char *what,
                                const char *const *keys, int n, uint64_t *count_r,
                                mandate_error *err)
{
    struct params p = {0};
    for (int i = 0; i < n; i++) {
        if (keys[i] == NULL)
            return mandate_error_set(err, MANDATE_INVALID, "pgsql: %s: a key is missing", what);
        param_text(&p, keys[i]);
    }
    int64_t changed;
    mandate_rc rc = run_counted(inst, id, &p, what, rows_changed, &changed, err);
    if (rc == MANDATE_OK && count_r != NULL)
        *count_r = (uint64_t)changed;
    return rc;
}

static mandate_rc store_session_delete_subject(void *inst_, const char *tenant,
                                               const char *subject, uint64_t *count_r,
                                               mandate_error *err)
{
    const char *keys[] = {tenant, subject};
    return write_by_keys(inst_, ST_SESSION_DELETE_SUBJECT, "session_delete_subject", keys, 2,
                         count_r, err);
}

static mandate_rc store_consent_put(void *inst_, const mandate_consent *consent,
                                    mandate_error *err)
{
    struct pgsql_inst *inst = inst_;
    struct params p = {0};
    if (consent == NULL)
        return store_check_consent_key("pgsql", NULL, NULL, NULL, "consent_put", err);
    mandate_rc rc = store_check_consent_key("pgsql", consent->tenant, consent->subject,
                                            consent->client_id, "consent_put", err);
    if (rc != MANDATE_OK)
        return rc;
    mandate_consent row = *consent;
    if (row.created_at == 0)
        row.created_at = inst->host->now(inst->host);
    param_record(&p, &store_consent_record, &row);
    int64_t changed;
    return run_counted(inst, ST_CONSENT_PUT, &p, "consent_put", rows_changed, &changed, err);
}

static mandate_rc store_consent_get(void *inst_, mandate_pool *pool, const char *tenant,
                                    const char *subject, const char *client_id, int64_t now,
                                    mandate_consent *consent_r, mandate_error *err)
{
    struct params p = {0};
    mandate_rc rc =
        store_check_consent_key("pgsql", tenant, subject, client_id, "consent_get", err);
    if (rc != MANDATE_OK)
        return rc;
    param_text(&p, tenant);
    param_text(&p, subject);
    param_text(&p, client_id);
    param_int(&p, now);
    return run_get(inst_, ST_CONSENT_GET, &p, "consent_get", pool, &store_consent_record,
                   consent_r, err, "pgsql: no unexpired consent to \"%s\"", client_id);
}

static mandate_rc store_consent_delete(void *inst_, const char *tenant, const char *subject,
                                       const char *client_id, mandate_error *err)
{
    const char *keys[] = {tenant, subject, client_id};
    uint64_t count = 0;
    mandate_rc rc =
        write_by_keys(inst_, ST_CONSENT_DELETE, "consent_delete", keys, 3, &count, err);
    if (rc == MANDATE_OK && count == 0)
        rc =
            mandate_error_set(err, MANDATE_NOT_FOUND, "pgsql: no consent to \"%s\"", client_id);
    return rc;
}

static mandate_rc store_consent_list(void *inst_, const char *tenant, const char *subject,
                                     mandate_consent_cb each, void *ctx, mandate_error *err)
{
    struct pgsql_inst *inst = inst_;
    struct params p = {0};
    store_each e = {(void (*)(void))each, ctx, &columns_read};
    if (tenant == NULL || subject == NULL)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "pgsql: consent_list: no tenant or no subject");
    param_text(&p, tenant);
    param_text(&p, subject);
    param_int(&p, inst->host->now(inst->host));
    return run_each(inst, ST_CONSENT_LIST, &p, "consent_list", store_each_consent, &e, err);
}

static mandate_rc store_client_document_put(void *inst_, const mandate_client_document *doc,
                                            mandate_error *err)
{
    struct params p = {0};
    if (doc == NULL || doc->url == NULL)
        return mandate_error_set(err, MANDATE_INVALID, "pgsql: client_document_put: no url");
    param_record(&p, &store_document_record, doc);
    int64_t changed;
    return run_counted(inst_, ST_DOCUMENT_PUT, &p, "client_document_put", rows_changed,
                       &changed, err);
}

static mandate_rc store_client_document_get(void *inst_, mandate_pool *pool, const char *url,
                                            mandate_client_document *doc_r, mandate_error *err)
{
    struct params p = {0};
    if (url == NULL)
        return mandate_error_set(err, MANDATE_INVALID, "pgsql: client_document_get: no url");
    param_text(&p, url);
    return run_get(inst_, ST_DOCUMENT_GET, &p, "client_document_get", pool,
                   &store_document_record, doc_r, err, "pgsql: no client document for \"%s\"",
                   url);
}

static mandate_rc store_lineage_add(void *inst_, const char *jti, const char *parent,
                                    const char *client_id, int64_t expires_at,
                                    mandate_error *err)
{
    struct params p = {0};
    if (jti == NULL || parent == NULL)
        return mandate_error_set(err, MANDATE_INVALID, "pgsql: lineage_add: no jti or parent");
    param_text(&p, parent);
    param_text(&p, jti);
    param_text(&p, client_id);
    param_int(&p, expires_at);
    return run_one(inst_, ST_LINEAGE_ADD, &p, "lineage_add", rows_changed, err, MANDATE_EXISTS,
                   "pgsql: lineage_add: \"%s\" is already known to come from \"%s\"", jti,
                   parent);
}

/* One statement, as revoke() is: the revocations and the generation at
 * once. */
static mandate_rc store_revoke_descendants(void *inst_, const char *root, uint64_t *count_r,
                                           mandate_error *err)
{
    struct pgsql_inst *inst = inst_;
    struct params p = {0};
    if (root == NULL)
        return mandate_error_set(err, MANDATE_INVALID, "pgsql: revoke_descendants: no root");
    param_text(&p, root);
    param_int(&p, inst->host->now(inst->host));
    int64_t changed;
    mandate_rc rc = run_counted(inst, ST_REVOKE_DESCENDANTS, &p, "revoke_descendants",
                                single_int, &changed, err);
    if (rc == MANDATE_OK && count_r != NULL)
        *count_r = (uint64_t)changed;
    return rc;
}

/* --- lifecycle -------------------------------------------------------------- */

static void pgsql_destroy(void *inst_)
{
    struct pgsql_inst *inst = inst_;
    if (!inst->initialized)
        return;
    inst->initialized = false;
    pthread_mutex_lock(&inst->lock);
    struct conn *c = inst->conns;
    inst->conns = NULL;
    pthread_mutex_unlock(&inst->lock);
    while (c != NULL) {
        struct conn *next = c->next;
        conn_close(c);
        c = next;
    }
    pthread_mutex_destroy(&inst->lock);
}

/* Connects the calling thread at once, so that a wrong conninfo or an
 * unreachable server stops a start with a message (as the sqlite store does
 * for a path it cannot open). */
static mandate_rc pgsql_instantiate(void *inst_, const mandate_host *host, mandate_error *err)
{
    struct pgsql_inst *inst = inst_;
    inst->host = host;
    inst->writes = &pgsql_writer;
    if (inst->connect_timeout < 1 || inst->connect_timeout > 3600)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "pgsql: connect_timeout is out of range");
    if (inst->statement_timeout < 1 || inst->statement_timeout > 24 * 3600 * 1000)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "pgsql: statement_timeout is out of range");
    snprintf(inst->connect_timeout_text, sizeof(inst->connect_timeout_text), "%" PRId64,
             inst->connect_timeout);
    if (inst->conninfo != NULL && inst->conninfo[0] != '\0') {
        /* libpq's parse message may quote part of the string: not passed on */
        char *msg = NULL;
        PQconninfoOption *opts = PQconninfoParse(inst->conninfo, &msg);
        if (msg != NULL)
            PQfreemem(msg);
        if (opts == NULL)
            return mandate_error_set(err, MANDATE_INVALID,
                                     "pgsql: conninfo is neither a key=value connection "
                                     "string nor a postgresql:// URI");
        PQconninfoFree(opts);
    }
    if (pthread_mutex_init(&inst->lock, NULL) != 0)
        return mandate_error_set(err, MANDATE_ERROR, "pgsql: pthread_mutex_init failed");
    inst->id = store_instance_id_new();
    inst->initialized = true;

    struct conn *c;
    mandate_rc rc = conn_get(inst, &c, err);
    if (rc != MANDATE_OK) {
        pgsql_destroy(inst);
        return rc;
    }
    mandate_log_debug(host, "pgsql: connected to database \"%s\" (server %d, libpq %d)",
                      db_name(c), PQserverVersion(c->pg), PQlibVersion());
    return MANDATE_OK;
}

static const mandate_conf_def pgsql_conf[] = {
    {"conninfo", MANDATE_CONF_STRING, MANDATE_CONF_SECRET,
     offsetof(struct pgsql_inst, conninfo), NULL, 0, 0, NULL,
     "libpq connection string or postgresql:// URI: host, port, dbname, user, password, "
     "sslmode, sslrootcert, sslcert, sslkey, target_session_attrs, options...; absent or "
     "empty: libpq's PG* environment variables and ~/.pgpass. Never logged"},
    {"connect_timeout", MANDATE_CONF_INT, 0, offsetof(struct pgsql_inst, connect_timeout), "5",
     1, 3600, NULL,
     "seconds to wait for a connection (libpq waits at least 2); overrides conninfo's"},
    {"statement_timeout", MANDATE_CONF_INT, 0, offsetof(struct pgsql_inst, statement_timeout),
     "5000", 1, 86400000, NULL,
     "milliseconds a statement may run before the server cancels it; a call gives up on a "
     "server silent for 2 s longer (migrations: 10 min)"},
    MANDATE_CONF_END,
};

static const mandate_store_ops pgsql_ops = {
    .ping = store_ping,
    .migrate = store_migrate,
    .schema_version = store_schema_version,
    .generation = store_generation,
    .client_get = store_client_get,
    .client_create = store_client_create,
    .client_update = store_client_update,
    .client_delete = store_client_delete,
    .client_list = store_client_list,
    .client_import = store_client_import,
    .key_add = store_key_add,
    .key_update = store_key_update,
    .key_list = store_key_list,
    .key_delete = store_key_delete,
    .token_put = store_token_put,
    .token_get = store_token_get,
    .revoke = store_revoke,
    .is_revoked = store_is_revoked,
    .replay_claim = store_replay_claim,
    .purge = store_purge,
    .revocation_list = store_revocation_list,
    .token_list = store_token_list,
    .replay_list = store_replay_list,
    .once_put = store_writer_once_put,
    .once_take = store_once_take,
    .auth_code_put = store_auth_code_put,
    .auth_code_take = store_auth_code_take,
    .refresh_put = store_refresh_put,
    .refresh_get = store_refresh_get,
    .refresh_rotate = store_refresh_rotate,
    .refresh_revoke_family = store_refresh_revoke_family,
    .refresh_revoke_subject = store_refresh_revoke_subject,
    .session_put = store_writer_session_put,
    .session_get = store_session_get,
    .session_touch = store_session_touch,
    .session_delete = store_session_delete,
    .session_delete_subject = store_session_delete_subject,
    .consent_put = store_consent_put,
    .consent_get = store_consent_get,
    .consent_delete = store_consent_delete,
    .consent_list = store_consent_list,
    .client_document_put = store_client_document_put,
    .client_document_get = store_client_document_get,
    .lineage_add = store_lineage_add,
    .revoke_descendants = store_revoke_descendants,
    .once_set = store_writer_once_set,
    .write_batch = store_writer_batch,
};

MANDATE_PLUGIN(pgsql, MANDATE_STORE, PACKAGE_VERSION, MANDATE_PLUGIN_BLOCKING,
               struct pgsql_inst, pgsql_conf, pgsql_instantiate, pgsql_destroy, &pgsql_ops);
