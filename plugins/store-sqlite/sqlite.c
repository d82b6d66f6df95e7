/* The embedded default store: one SQLite database file in WAL mode.
 *
 * Threads: the instance is shared by every worker thread, each of which gets
 * its own connection on first use and finds it again through a thread-local
 * table keyed by the instance's id. The instance owns every connection it
 * opened, in a list, and destroy() closes them all; it must therefore run
 * once no thread uses the instance any more (the core guarantees that).
 *
 * Schema: forward-only migrations, applied by the migrate op (never by
 * instantiate). Every other data op checks, once per connection, that the
 * database is at the newest version this plugin knows.
 *
 * Generation: every op that changes clients, keys or revocations raises the
 * counter in meta by one, in the same transaction as the change; an op that
 * changes nothing (revoking twice, a refused create) leaves it alone.
 *
 * Token records (every opaque token is one insert) go through one writer
 * connection shared by the threads under a mutex, not the thread's own:
 * SQLite lets one connection write at a time anyway, and two connections of
 * this process contending for its write lock sleep in its busy handler
 * (1, 2, 5, 10 ms...), while a connection whose pages another one changed
 * drops its whole page cache and reads them again. Each insert is still its
 * own transaction, committed before token_put returns.
 *
 * Replay claims (every SAML assertion, ID-JAG and DPoP proof is one) go the
 * same way: on the threads' own connections they slept in the busy handler
 * under load (bench/dpop, -c32: DPoP client credentials 27 % of bearer
 * before, 33-35 % after).
 *
 * Sign-in rows (ABI 1.5: one-time records, codes, refresh tokens, sessions,
 * consents, client documents, lineage) are written the same way. An op of
 * several statements (taking a code, rotating a refresh token, ending a
 * family) is one BEGIN IMMEDIATE transaction on the writer: the database's
 * write lock, which every process on the file shares, serializes it with
 * the others, so a code is redeemed once and a family ended while one of its
 * tokens rotates ends with the new token too.
 *
 * Checkpoints: no connection of the instance checkpoints when it commits
 * (SQLite's automatic checkpoint, every 1000 pages, fsyncs twice on a request
 * thread); a WAL hook wakes the instance's checkpoint thread each time the
 * WAL has grown by checkpoint_pages frames, which copies them into the
 * database without blocking anyone (PASSIVE). Under steady writes the WAL is never found fully
 * copied, so it cannot start over; once it holds 4 * checkpoint_pages frames
 * the thread flushes the database file and copies again without holding
 * anyone back, then copies the rest while holding the writer mutex
 * (RESTART, then the WAL starts over), waiting at most CKPT_BUSY_MS for readers and trying
 * again no sooner than CKPT_RETRY_MS later when they are still there. The
 * WAL may overshoot that by what is written during the checkpoints and
 * flushes before the restart. Writes of other processes are their own checkpoint threads'
 * business. With synchronous = NORMAL nothing fsyncs on a commit: a commit
 * survives a crash of the process (it is in the WAL, written), not a power
 * loss; that is what the setting promises, as before. destroy() stops the
 * thread first.
 *
 * Only libc, pthreads, SQLite and the host table are used: no core symbol. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include <mandate/store.h>

#include "store-record.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

/* --- schema ------------------------------------------------------------- */

/* migrations[i] brings the schema from version i to version i + 1. Never
 * edit a step once released: append a new one. */
static const char *const migrations[] = {
    /* 1: everything */
    "CREATE TABLE schema_version (\n"
    "    id INTEGER PRIMARY KEY CHECK (id = 1),\n"
    "    version INTEGER NOT NULL\n"
    ");\n"
    "CREATE TABLE meta (\n"
    "    name TEXT PRIMARY KEY NOT NULL,\n"
    "    value INTEGER NOT NULL\n"
    ");\n"
    "INSERT INTO meta (name, value) VALUES ('generation', 0);\n"
    "CREATE TABLE clients (\n"
    "    client_id TEXT PRIMARY KEY NOT NULL,\n"
    "    tenant TEXT NOT NULL,\n"
    "    name TEXT,\n"
    "    scopes TEXT,\n"
    "    default_scopes TEXT,\n"
    "    audiences TEXT,\n"
    "    backend TEXT,\n"
    "    token_format TEXT,\n"
    "    token_ttl INTEGER NOT NULL DEFAULT 0,\n"
    "    status INTEGER NOT NULL,\n"
    "    flags INTEGER NOT NULL DEFAULT 0,\n"
    "    secret_hash BLOB,\n"
    "    prev_secret_hash BLOB,\n"
    "    prev_secret_expires_at INTEGER NOT NULL DEFAULT 0,\n"
    "    public_key TEXT,\n"
    "    rate_limit REAL NOT NULL DEFAULT 0,\n"
    "    rate_burst INTEGER NOT NULL DEFAULT 0,\n"
    "    attributes TEXT,\n"
    "    created_at INTEGER NOT NULL,\n"
    "    updated_at INTEGER NOT NULL\n"
    ");\n"
    "CREATE INDEX clients_tenant ON clients (tenant, client_id);\n"
    "CREATE TABLE keys (\n"
    "    kid TEXT PRIMARY KEY NOT NULL,\n"
    "    alg TEXT,\n"
    "    format TEXT,\n"
    "    status INTEGER NOT NULL,\n"
    "    private_blob BLOB,\n"
    "    public_jwk TEXT,\n"
    "    created_at INTEGER NOT NULL,\n"
    "    retired_at INTEGER NOT NULL DEFAULT 0,\n"
    "    remove_after INTEGER NOT NULL DEFAULT 0\n"
    ");\n"
    "CREATE TABLE tokens (\n"
    "    token_hash BLOB PRIMARY KEY NOT NULL,\n"
    "    jti TEXT,\n"
    "    client_id TEXT,\n"
    "    subject TEXT,\n"
    "    tenant TEXT,\n"
    "    \"grant\" TEXT,\n"
    "    issued_at INTEGER NOT NULL,\n"
    "    expires_at INTEGER NOT NULL\n"
    ");\n"
    "CREATE INDEX tokens_expires_at ON tokens (expires_at);\n"
    "CREATE TABLE revocations (\n"
    "    jti TEXT PRIMARY KEY NOT NULL,\n"
    "    client_id TEXT,\n"
    "    expires_at INTEGER NOT NULL,\n"
    "    revoked_at INTEGER NOT NULL\n"
    ");\n"
    "CREATE INDEX revocations_expires_at ON revocations (expires_at);\n"
    "CREATE TABLE replay (\n"
    "    ns TEXT NOT NULL,\n"
    "    id TEXT NOT NULL,\n"
    "    expires_at INTEGER NOT NULL,\n"
    "    PRIMARY KEY (ns, id)\n"
    ") WITHOUT ROWID;\n"
    "CREATE INDEX replay_expires_at ON replay (expires_at);\n",

    /* 2: sign-in (store ABI 1.5). Hashes are the keys; the indexes serve
     * the lookups (a family's tokens, a user's families and sessions) and
     * purge (expires_at). A family's row is where its state lives (made by
     * its first token; whether it was ended), read by every rotation in the
     * same transaction. Booleans (used, revoked) rather than times, so that
     * a clock at 0 cannot mean "never". */
    "ALTER TABLE clients ADD COLUMN metadata TEXT;\n"
    "CREATE TABLE once (\n"
    "    ns TEXT NOT NULL,\n"
    "    key_hash BLOB NOT NULL,\n"
    "    value TEXT,\n"
    "    expires_at INTEGER NOT NULL,\n"
    "    PRIMARY KEY (ns, key_hash)\n"
    ") WITHOUT ROWID;\n"
    "CREATE INDEX once_expires_at ON once (expires_at);\n"
    "CREATE TABLE auth_codes (\n"
    "    code_hash BLOB PRIMARY KEY NOT NULL,\n"
    "    client_id TEXT,\n"
    "    redirect_uri TEXT,\n"
    "    code_challenge TEXT,\n"
    "    family_id TEXT,\n"
    "    \"grant\" TEXT,\n"
    "    issued_at INTEGER NOT NULL,\n"
    "    expires_at INTEGER NOT NULL,\n"
    "    used INTEGER NOT NULL DEFAULT 0\n"
    ");\n"
    "CREATE INDEX auth_codes_expires_at ON auth_codes (expires_at);\n"
    "CREATE TABLE refresh_families (\n"
    "    family_id TEXT PRIMARY KEY NOT NULL,\n"
    "    tenant TEXT,\n"
    "    subject TEXT,\n"
    "    family_expires_at INTEGER NOT NULL,\n"
    "    revoked INTEGER NOT NULL DEFAULT 0\n"
    ");\n"
    "CREATE INDEX refresh_families_subject ON refresh_families (tenant, subject);\n"
    "CREATE INDEX refresh_families_expires_at ON refresh_families (family_expires_at);\n"
    "CREATE TABLE refresh_tokens (\n"
    "    token_hash BLOB PRIMARY KEY NOT NULL,\n"
    "    family_id TEXT NOT NULL,\n"
    "    client_id TEXT,\n"
    "    tenant TEXT,\n"
    "    subject TEXT,\n"
    "    \"grant\" TEXT,\n"
    "    status INTEGER NOT NULL,\n"
    "    issued_at INTEGER NOT NULL,\n"
    "    expires_at INTEGER NOT NULL,\n"
    "    family_expires_at INTEGER NOT NULL\n"
    ");\n"
    "CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);\n"
    "CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);\n"
    "CREATE INDEX refresh_tokens_family_expires_at ON refresh_tokens (family_expires_at);\n"
    "CREATE TABLE sessions (\n"
    "    id_hash BLOB PRIMARY KEY NOT NULL,\n"
    "    tenant TEXT,\n"
    "    subject TEXT,\n"
    "    idp TEXT,\n"
    "    identity TEXT,\n"
    "    created_at INTEGER NOT NULL,\n"
    "    authn_at INTEGER NOT NULL,\n"
    "    last_seen_at INTEGER NOT NULL,\n"
    "    expires_at INTEGER NOT NULL\n"
    ");\n"
    "CREATE INDEX sessions_subject ON sessions (tenant, subject);\n"
    "CREATE INDEX sessions_expires_at ON sessions (expires_at);\n"
    "CREATE TABLE consents (\n"
    "    tenant TEXT NOT NULL,\n"
    "    subject TEXT NOT NULL,\n"
    "    client_id TEXT NOT NULL,\n"
    "    scope TEXT,\n"
    "    resources TEXT,\n"
    "    created_at INTEGER NOT NULL,\n"
    "    expires_at INTEGER NOT NULL,\n"
    "    PRIMARY KEY (tenant, subject, client_id)\n"
    ") WITHOUT ROWID;\n"
    "CREATE INDEX consents_expires_at ON consents (expires_at) WHERE expires_at <> 0;\n"
    "CREATE TABLE client_documents (\n"
    "    url TEXT PRIMARY KEY NOT NULL,\n"
    "    document TEXT,\n"
    "    fetched_at INTEGER NOT NULL,\n"
    "    expires_at INTEGER NOT NULL\n"
    ");\n"
    "CREATE INDEX client_documents_expires_at ON client_documents (expires_at);\n"
    "CREATE TABLE lineage (\n"
    "    parent TEXT NOT NULL,\n"
    "    jti TEXT NOT NULL,\n"
    "    client_id TEXT,\n"
    "    expires_at INTEGER NOT NULL,\n"
    "    PRIMARY KEY (parent, jti)\n"
    ") WITHOUT ROWID;\n"
    "CREATE INDEX lineage_expires_at ON lineage (expires_at);\n",
};

#define SCHEMA_NEWEST ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* --- statements ------------------------------------------------------- */

/* CLIENT_COLUMNS and the others: store-record.h */

/* The refresh statuses as the SQL writes them. */
_Static_assert(MANDATE_REFRESH_ACTIVE == 1 && MANDATE_REFRESH_USED == 2 &&
                   MANDATE_REFRESH_REVOKED == 3,
               "refresh statuses");
#define STR(x) #x
#define XSTR(x) STR(x)

enum stmt_id {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_PING,
    ST_GENERATION,
    ST_GENERATION_BUMP,
    ST_CLIENT_GET,
    ST_CLIENT_INSERT,
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
    ST_PURGE_TOKENS,
    ST_PURGE_REVOCATIONS,
    ST_PURGE_REPLAY,
    ST_REVOCATION_LIST,
    ST_TOKEN_LIST,
    ST_REPLAY_LIST,
    ST_ONCE_PUT,
    ST_ONCE_GET,
    ST_ONCE_DELETE,
    ST_ONCE_SET,
    ST_CODE_INSERT,
    ST_CODE_REDEEM,
    ST_CODE_GET,
    ST_REFRESH_INSERT,
    ST_FAMILY_INSERT,
    ST_REFRESH_GET,
    ST_REFRESH_FIND,
    ST_REFRESH_USE,
    ST_REFRESH_NEXT,
    ST_FAMILY_END,
    ST_FAMILY_END_TOKENS,
    ST_SUBJECT_END,
    ST_SUBJECT_END_TOKENS,
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
    ST_PURGE_ONCE,
    ST_PURGE_CODES,
    ST_PURGE_REFRESH,
    ST_PURGE_FAMILIES,
    ST_PURGE_SESSIONS,
    ST_PURGE_CONSENTS,
    ST_PURGE_DOCUMENTS,
    ST_PURGE_LINEAGE,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_PING] = "SELECT 1",
    [ST_GENERATION] = "SELECT value FROM meta WHERE name = 'generation'",
    [ST_GENERATION_BUMP] = "UPDATE meta SET value = value + 1 WHERE name = 'generation'",
    [ST_CLIENT_GET] = "SELECT " CLIENT_COLUMNS " FROM clients WHERE client_id = ?1",
    [ST_CLIENT_INSERT] =
        "INSERT INTO clients (" CLIENT_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
        "?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21) "
        "ON CONFLICT (client_id) DO NOTHING",
    [ST_CLIENT_UPDATE] =
        "UPDATE clients SET tenant = ?2, name = ?3, scopes = ?4, "
        "default_scopes = ?5, audiences = ?6, backend = ?7, token_format = ?8, "
        "token_ttl = ?9, status = ?10, flags = ?11, secret_hash = ?12, "
        "prev_secret_hash = ?13, prev_secret_expires_at = ?14, public_key = ?15, "
        "rate_limit = ?16, rate_burst = ?17, attributes = ?18, "
        "created_at = CASE WHEN ?19 = 0 THEN created_at ELSE ?19 END, "
        "updated_at = ?20, metadata = ?21 WHERE client_id = ?1",
    [ST_CLIENT_DELETE] = "DELETE FROM clients WHERE client_id = ?1",
    [ST_CLIENT_LIST] = "SELECT " CLIENT_COLUMNS " FROM clients "
                       "ORDER BY client_id LIMIT ?3",
    [ST_CLIENT_LIST_AFTER] = "SELECT " CLIENT_COLUMNS " FROM clients "
                             "WHERE client_id > ?2 ORDER BY client_id LIMIT ?3",
    [ST_CLIENT_LIST_TENANT] = "SELECT " CLIENT_COLUMNS " FROM clients "
                              "WHERE tenant = ?1 ORDER BY client_id LIMIT ?3",
    [ST_CLIENT_LIST_TENANT_AFTER] =
        "SELECT " CLIENT_COLUMNS " FROM clients "
        "WHERE tenant = ?1 AND client_id > ?2 ORDER BY client_id LIMIT ?3",
    [ST_KEY_INSERT] = "INSERT INTO keys (" KEY_COLUMNS ") VALUES (?1, ?2, ?3, ?4, "
                      "?5, ?6, ?7, ?8, ?9) ON CONFLICT (kid) DO NOTHING",
    [ST_KEY_UPDATE] = "UPDATE keys SET status = ?2, retired_at = ?3, "
                      "remove_after = ?4 WHERE kid = ?1",
    [ST_KEY_LIST] = "SELECT " KEY_COLUMNS " FROM keys ORDER BY created_at DESC, kid",
    [ST_KEY_DELETE] = "DELETE FROM keys WHERE kid = ?1",
    [ST_TOKEN_INSERT] = "INSERT INTO tokens (" TOKEN_COLUMNS ") VALUES (?1, ?2, "
                        "?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (token_hash) DO NOTHING",
    [ST_TOKEN_GET] = "SELECT " TOKEN_COLUMNS " FROM tokens "
                     "WHERE token_hash = ?1 AND expires_at > ?2",
    /* a second revocation keeps the first, unless it lasts longer */
    [ST_REVOKE] = "INSERT INTO revocations (jti, client_id, expires_at, revoked_at) "
                  "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (jti) DO UPDATE SET "
                  "expires_at = excluded.expires_at "
                  "WHERE excluded.expires_at > revocations.expires_at",
    [ST_IS_REVOKED] = "SELECT 1 FROM revocations WHERE jti = ?1",
    /* one statement: insert, or take over an expired entry; no change at
     * all means an unexpired entry is there */
    [ST_REPLAY_CLAIM] = "INSERT INTO replay (ns, id, expires_at) VALUES (?1, ?2, ?3) "
                        "ON CONFLICT (ns, id) DO UPDATE SET "
                        "expires_at = excluded.expires_at "
                        "WHERE replay.expires_at <= ?4",
    [ST_PURGE_TOKENS] = "DELETE FROM tokens WHERE expires_at <= ?1",
    [ST_PURGE_REVOCATIONS] = "DELETE FROM revocations WHERE expires_at <= ?1",
    [ST_PURGE_REPLAY] = "DELETE FROM replay WHERE expires_at <= ?1",
    [ST_REVOCATION_LIST] = "SELECT jti, client_id, expires_at FROM revocations "
                           "WHERE expires_at > ?1 ORDER BY jti",
    [ST_TOKEN_LIST] = "SELECT " TOKEN_COLUMNS " FROM tokens WHERE expires_at > ?1 "
                      "ORDER BY token_hash",
    [ST_REPLAY_LIST] = "SELECT ns, id, expires_at FROM replay WHERE expires_at > ?1 "
                       "ORDER BY ns, id",
    /* an expired record is taken over, as replay_claim does */
    [ST_ONCE_PUT] =
        "INSERT INTO once (ns, key_hash, value, expires_at) VALUES (?1, ?2, ?3, ?4) "
        "ON CONFLICT (ns, key_hash) DO UPDATE SET value = excluded.value, "
        "expires_at = excluded.expires_at WHERE once.expires_at <= ?5",
    [ST_ONCE_GET] =
        "SELECT value FROM once WHERE ns = ?1 AND key_hash = ?2 AND expires_at > ?3",
    [ST_ONCE_DELETE] = "DELETE FROM once WHERE ns = ?1 AND key_hash = ?2",
    /* one statement: a live record of the same value that lasts long
     * enough (?5: keep_until, ?6: now) is not updated, and a commit that
     * changed no page writes nothing to the WAL */
    [ST_ONCE_SET] =
        "INSERT INTO once (ns, key_hash, value, expires_at) VALUES (?1, ?2, ?3, ?4) "
        "ON CONFLICT (ns, key_hash) DO UPDATE SET value = excluded.value, "
        "expires_at = excluded.expires_at WHERE NOT (once.value IS excluded.value AND "
        "once.expires_at >= ?5 AND once.expires_at > ?6)",
    [ST_CODE_INSERT] = "INSERT INTO auth_codes (" CODE_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, "
                       "?6, ?7, ?8) ON CONFLICT (code_hash) DO NOTHING",
    [ST_CODE_REDEEM] = "UPDATE auth_codes SET used = 1 "
                       "WHERE code_hash = ?1 AND used = 0 AND expires_at > ?2",
    [ST_CODE_GET] = "SELECT " CODE_COLUMNS ", used FROM auth_codes WHERE code_hash = ?1",
    /* the family's end, set by its first token (?10 only if it were missing) */
    [ST_REFRESH_INSERT] = "INSERT INTO refresh_tokens (" REFRESH_COLUMNS ") VALUES (?1, ?2, "
                          "?3, ?4, ?5, ?6, ?7, ?8, ?9, coalesce((SELECT family_expires_at "
                          "FROM refresh_families WHERE family_id = ?2), ?10)) "
                          "ON CONFLICT (token_hash) DO NOTHING",
    [ST_FAMILY_INSERT] = "INSERT INTO refresh_families (family_id, tenant, subject, "
                         "family_expires_at) VALUES (?1, ?2, ?3, ?4) "
                         "ON CONFLICT (family_id) DO NOTHING",
    [ST_REFRESH_GET] = "SELECT " REFRESH_COLUMNS " FROM refresh_tokens WHERE token_hash = ?1 "
                       "AND expires_at > ?2 AND family_expires_at > ?2",
    /* and whether its family was ended (a token without one: ended) */
    [ST_REFRESH_FIND] = "SELECT " REFRESH_COLUMNS ", coalesce((SELECT revoked FROM "
                        "refresh_families f WHERE f.family_id = refresh_tokens.family_id), 1) "
                        "FROM refresh_tokens WHERE token_hash = ?1",
    [ST_REFRESH_USE] =
        "UPDATE refresh_tokens SET status = 2 WHERE token_hash = ?1 AND status = 1",
    /* next, in old's family (?1: old's hash); NULL names are old's */
    [ST_REFRESH_NEXT] =
        "INSERT INTO refresh_tokens (" REFRESH_COLUMNS ") SELECT ?2, family_id, "
        "coalesce(?3, client_id), coalesce(?4, tenant), coalesce(?5, subject), "
        "?6, 1, ?7, ?8, family_expires_at FROM refresh_tokens "
        "WHERE token_hash = ?1 ON CONFLICT (token_hash) DO NOTHING",
    /* families ended by ?1.. (_END), then their tokens of status ?1 */
    [ST_FAMILY_END] = "UPDATE refresh_families SET revoked = 1 WHERE family_id = ?1 "
                      "AND revoked = 0",
    [ST_FAMILY_END_TOKENS] = "UPDATE refresh_tokens SET status = 3 WHERE status = ?1 "
                             "AND family_id = ?2",
    [ST_SUBJECT_END] = "UPDATE refresh_families SET revoked = 1 WHERE tenant = ?1 "
                       "AND subject = ?2 AND revoked = 0",
    [ST_SUBJECT_END_TOKENS] = "UPDATE refresh_tokens SET status = 3 WHERE status = ?1 "
                              "AND family_id IN (SELECT family_id FROM refresh_families "
                              "WHERE tenant = ?2 AND subject = ?3)",
    [ST_SESSION_INSERT] = "INSERT INTO sessions (" SESSION_COLUMNS ") VALUES (?1, ?2, ?3, ?4, "
                          "?5, ?6, ?7, ?8, ?9) ON CONFLICT (id_hash) DO NOTHING",
    [ST_SESSION_GET] = "SELECT " SESSION_COLUMNS " FROM sessions "
                       "WHERE id_hash = ?1 AND expires_at > ?2",
    [ST_SESSION_TOUCH] = "UPDATE sessions SET last_seen_at = max(last_seen_at, ?2) "
                         "WHERE id_hash = ?1 AND expires_at > ?2",
    [ST_SESSION_DELETE] = "DELETE FROM sessions WHERE id_hash = ?1",
    [ST_SESSION_DELETE_SUBJECT] = "DELETE FROM sessions WHERE tenant = ?1 AND subject = ?2",
    [ST_CONSENT_PUT] = "INSERT INTO consents (" CONSENT_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, "
                       "?6, ?7) ON CONFLICT (tenant, subject, client_id) DO UPDATE SET "
                       "scope = excluded.scope, resources = excluded.resources, "
                       "created_at = excluded.created_at, expires_at = excluded.expires_at",
    [ST_CONSENT_GET] = "SELECT " CONSENT_COLUMNS " FROM consents WHERE tenant = ?1 "
                       "AND subject = ?2 AND client_id = ?3 "
                       "AND (expires_at = 0 OR expires_at > ?4)",
    [ST_CONSENT_DELETE] = "DELETE FROM consents WHERE tenant = ?1 AND subject = ?2 "
                          "AND client_id = ?3",
    [ST_CONSENT_LIST] = "SELECT " CONSENT_COLUMNS " FROM consents WHERE tenant = ?1 "
                        "AND subject = ?2 AND (expires_at = 0 OR expires_at > ?3) "
                        "ORDER BY client_id",
    [ST_DOCUMENT_PUT] = "INSERT INTO client_documents (" DOCUMENT_COLUMNS ") VALUES (?1, ?2, "
                        "?3, ?4) ON CONFLICT (url) DO UPDATE SET document = excluded.document, "
                        "fetched_at = excluded.fetched_at, expires_at = excluded.expires_at",
    [ST_DOCUMENT_GET] = "SELECT " DOCUMENT_COLUMNS " FROM client_documents WHERE url = ?1",
    [ST_LINEAGE_ADD] = "INSERT INTO lineage (parent, jti, client_id, expires_at) "
                       "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (parent, jti) DO NOTHING",
    /* every jti below ?1 (UNION: a cycle ends), revoked as ST_REVOKE does
     * unless expired at ?2 */
    [ST_REVOKE_DESCENDANTS] =
        "WITH RECURSIVE below (jti, client_id, expires_at) AS ("
        "SELECT jti, client_id, expires_at FROM lineage WHERE parent = ?1 "
        "UNION SELECT l.jti, l.client_id, l.expires_at FROM lineage l "
        "JOIN below b ON l.parent = b.jti) "
        "INSERT INTO revocations (jti, client_id, expires_at, revoked_at) "
        "SELECT jti, min(client_id), max(expires_at), ?2 FROM below WHERE expires_at > ?2 "
        "GROUP BY jti ON CONFLICT (jti) DO UPDATE SET expires_at = excluded.expires_at "
        "WHERE excluded.expires_at > revocations.expires_at",
    [ST_PURGE_ONCE] = "DELETE FROM once WHERE expires_at <= ?1",
    [ST_PURGE_CODES] = "DELETE FROM auth_codes WHERE expires_at <= ?1",
    [ST_PURGE_REFRESH] = "DELETE FROM refresh_tokens "
                         "WHERE expires_at <= ?1 OR family_expires_at <= ?1",
    [ST_PURGE_FAMILIES] = "DELETE FROM refresh_families WHERE family_expires_at <= ?1",
    [ST_PURGE_SESSIONS] = "DELETE FROM sessions WHERE expires_at <= ?1",
    [ST_PURGE_CONSENTS] = "DELETE FROM consents WHERE expires_at <> 0 AND expires_at <= ?1",
    [ST_PURGE_DOCUMENTS] = "DELETE FROM client_documents "
                           "WHERE expires_at <= ?1 - " XSTR(MANDATE_STORE_DOCUMENT_KEEP),
    [ST_PURGE_LINEAGE] = "DELETE FROM lineage WHERE expires_at <= ?1",
};

/* --- instance and connections ------------------------------------------ */

struct sqlite_inst;

struct conn {
    struct conn *prev, *next; /* in inst->conns */
    struct sqlite_inst *inst;
    sqlite3 *db;
    bool schema_ok; /* checked once: the schema is at SCHEMA_NEWEST */
    sqlite3_stmt *stmts[ST_COUNT];
    bool in_use[ST_COUNT];
};

/* The checkpoint thread waits no longer for readers (ms) before the WAL
 * starts over, and then tries again no sooner than CKPT_RETRY_MS later. */
#define CKPT_BUSY_MS 100
#define CKPT_RETRY_MS 1000

struct sqlite_inst {
    const store_writer *writes; /* first: lib/store-record.c's write ops find it */
    /* config, filled by the core before instantiate() */
    char *path;
    int64_t busy_timeout;
    char *synchronous;
    int64_t checkpoint_pages;

    const mandate_host *host;
    const char *synchronous_sql;
    bool initialized; /* id and lock exist */
    uint64_t id;      /* unique in the process, never reused */
    pthread_mutex_t lock; /* protects conns */
    struct conn *conns;

    pthread_mutex_t writer_lock; /* protects writer and its use */
    struct conn *writer;         /* shared by the threads for token records */

    /* replay claims waiting for the writer, written in one transaction by
     * whichever of their threads leads (store_replay_claim) */
    pthread_mutex_t claims_lock; /* protects the four below */
    pthread_cond_t claims_done;
    struct claim *claims, **claims_tail;
    bool claims_leader;

    /* the checkpoint thread */
    bool ckpt_started;
    pthread_t ckpt_thread;
    pthread_mutex_t ckpt_lock; /* protects ckpt_stop and the wait */
    pthread_cond_t ckpt_cond;
    bool ckpt_stop;
    atomic_bool ckpt_wanted;
    atomic_int ckpt_next; /* WAL frames at which to wake it next */
};

static mandate_rc rc_of(int src)
{
    switch (src & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_FULL: return MANDATE_TEMPFAIL;
    default: return MANDATE_ERROR;
    }
}

/* Never passes a value to the message: only what failed and SQLite's text,
 * which names tables and columns, not contents. */
static mandate_rc db_error(struct conn *c, int src, const char *what, mandate_error *err)
{
    return mandate_error_set(err, rc_of(src), "sqlite: %s: %s", what, sqlite3_errmsg(c->db));
}

static void conn_close(struct conn *c)
{
    for (size_t i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(c->stmts[i]);
    sqlite3_close_v2(c->db);
    free(c);
}

static mandate_rc conn_exec(struct conn *c, const char *sql, const char *what,
                            mandate_error *err)
{
    int src = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
    if (src != SQLITE_OK)
        return db_error(c, src, what, err);
    return MANDATE_OK;
}

/* Called by SQLite after each commit of a connection of the instance, with
 * the number of frames in the WAL; installing it also turns the connection's
 * automatic checkpoint off. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    (void)db;
    (void)name;
    struct sqlite_inst *inst = arg;
    int next = atomic_load_explicit(&inst->ckpt_next, memory_order_relaxed);
    /* checkpoint_pages more frames since the last checkpoint, or as many
     * since the WAL started over */
    bool due = frames >= next ||
               (frames < next - inst->checkpoint_pages && frames >= inst->checkpoint_pages);
    if (due && !atomic_exchange(&inst->ckpt_wanted, true)) {
        pthread_mutex_lock(&inst->ckpt_lock);
        pthread_cond_signal(&inst->ckpt_cond);
        pthread_mutex_unlock(&inst->ckpt_lock);
    }
    return SQLITE_OK;
}

/* Opens a connection, and makes it the calling thread's when remember is
 * set; either way the instance owns it. */
static mandate_rc conn_open(struct sqlite_inst *inst, bool remember, struct conn **c_r,
                            mandate_error *err)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "sqlite: out of memory");
    c->inst = inst;
    int src =
        sqlite3_open_v2(inst->path, &c->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (src != SQLITE_OK) {
        mandate_rc rc =
            mandate_error_set(err, rc_of(src), "sqlite: cannot open %s: %s", inst->path,
                              c->db != NULL ? sqlite3_errmsg(c->db) : sqlite3_errstr(src));
        sqlite3_close_v2(c->db);
        free(c);
        return rc;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, (int)inst->busy_timeout);
#ifdef SQLITE_DBCONFIG_DEFENSIVE
    sqlite3_db_config(c->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
#endif
    mandate_rc rc = conn_exec(c, "PRAGMA foreign_keys = ON", "enabling foreign keys", err);
    if (rc == MANDATE_OK)
        rc = conn_exec(c, inst->synchronous_sql, "setting synchronous", err);
    if (rc != MANDATE_OK) {
        conn_close(c);
        return rc;
    }
    sqlite3_wal_hook(c->db, wal_hook, inst);
    pthread_mutex_lock(&inst->lock);
    c->next = inst->conns;
    if (c->next != NULL)
        c->next->prev = c;
    inst->conns = c;
    pthread_mutex_unlock(&inst->lock);
    if (remember)
        store_thread_conn_remember(inst->id, c);
    *c_r = c;
    return MANDATE_OK;
}

static mandate_rc conn_get(struct sqlite_inst *inst, struct conn **c_r, mandate_error *err)
{
    if (!inst->initialized)
        return mandate_error_set(err, MANDATE_ERROR, "sqlite: the instance is not open");
    struct conn *c = store_thread_conn_find(inst->id);
    if (c != NULL) {
        *c_r = c;
        return MANDATE_OK;
    }
    return conn_open(inst, true, c_r, err);
}

/* A cached statement, or a fresh one when the cached one is in use further up
 * this thread's stack (a list callback that calls back into the store). */
static mandate_rc stmt_get(struct conn *c, enum stmt_id id, sqlite3_stmt **stmt_r,
                           mandate_error *err)
{
    int src;
    if (!c->in_use[id]) {
        if (c->stmts[id] == NULL) {
            src = sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                     &c->stmts[id], NULL);
            if (src != SQLITE_OK)
                return db_error(c, src, "preparing a statement", err);
        }
        c->in_use[id] = true;
        *stmt_r = c->stmts[id];
        return MANDATE_OK;
    }
    src = sqlite3_prepare_v3(c->db, stmt_sql[id], -1, 0, stmt_r, NULL);
    if (src != SQLITE_OK)
        return db_error(c, src, "preparing a statement", err);
    return MANDATE_OK;
}

static void stmt_put(struct conn *c, enum stmt_id id, sqlite3_stmt *stmt)
{
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    if (stmt == c->stmts[id])
        c->in_use[id] = false;
    else
        sqlite3_finalize(stmt);
}

/* Runs a statement that returns no row (bound beforehand by the caller). */
static mandate_rc stmt_run(struct conn *c, sqlite3_stmt *stmt, const char *what,
                           mandate_error *err)
{
    int src = sqlite3_step(stmt);
    if (src != SQLITE_DONE && src != SQLITE_ROW)
        return db_error(c, src, what, err);
    return MANDATE_OK;
}

static mandate_rc simple_run(struct conn *c, enum stmt_id id, const char *what,
                             mandate_error *err)
{
    sqlite3_stmt *stmt;
    mandate_rc rc = stmt_get(c, id, &stmt, err);
    if (rc != MANDATE_OK)
        return rc;
    rc = stmt_run(c, stmt, what, err);
    stmt_put(c, id, stmt);
    return rc;
}

/* BEGIN IMMEDIATE takes the write lock at once, waiting for it in the busy
 * handler (busy_timeout): a transaction that reads and then writes never
 * finds the database changed under it (SQLITE_BUSY_SNAPSHOT), and another
 * process's transactions are serialized with ours. */
static mandate_rc tx_begin(struct conn *c, mandate_error *err)
{
    return simple_run(c, ST_BEGIN, "beginning a transaction", err);
}

static mandate_rc tx_commit(struct conn *c, mandate_error *err)
{
    return simple_run(c, ST_COMMIT, "committing", err);
}

static void tx_rollback(struct conn *c)
{
    /* some errors have rolled back already */
    if (!sqlite3_get_autocommit(c->db))
        simple_run(c, ST_ROLLBACK, "rolling back", NULL);
}

/* Commits when rc is MANDATE_OK, else rolls back; returns the outcome. */
static mandate_rc tx_end(struct conn *c, mandate_rc rc, mandate_error *err)
{
    if (rc == MANDATE_OK)
        rc = tx_commit(c, err);
    if (rc != MANDATE_OK)
        tx_rollback(c);
    return rc;
}

/* Inside the transaction that changed clients, keys or revocations. */
static mandate_rc bump_generation(struct conn *c, mandate_error *err)
{
    return simple_run(c, ST_GENERATION_BUMP, "raising the generation", err);
}

/* --- records ------------------------------------------------------------ */

/* A record is read and bound by its table in store-record.h, the same as
 * the pgsql store's. */

/* Columns are copied into pool when there is one, else they point into the
 * statement's memory (list callbacks: valid until the next step). */
struct reader {
    const mandate_host *host;
    mandate_pool *pool;
    sqlite3_stmt *stmt;
};

static const char *read_text(const void *r_, int i)
{
    const struct reader *r = r_;
    if (sqlite3_column_type(r->stmt, i) == SQLITE_NULL)
        return NULL;
    const char *t = (const char *)sqlite3_column_text(r->stmt, i);
    if (t == NULL || r->pool == NULL)
        return t;
    return r->host->pool_memdup(r->pool, t, (size_t)sqlite3_column_bytes(r->stmt, i));
}

static const unsigned char *read_blob(const void *r_, int i, size_t *len_r)
{
    const struct reader *r = r_;
    *len_r = 0;
    if (sqlite3_column_type(r->stmt, i) == SQLITE_NULL)
        return NULL;
    const unsigned char *b = sqlite3_column_blob(r->stmt, i);
    if (b == NULL) /* an empty blob */
        return NULL;
    *len_r = (size_t)sqlite3_column_bytes(r->stmt, i);
    if (r->pool == NULL)
        return b;
    return (const unsigned char *)r->host->pool_memdup(r->pool, b, *len_r);
}

static int64_t read_int(const void *r_, int i)
{
    const struct reader *r = r_;
    return sqlite3_column_int64(r->stmt, i);
}

static double read_double(const void *r_, int i)
{
    const struct reader *r = r_;
    return sqlite3_column_double(r->stmt, i);
}

static const store_reader columns_read = {read_text, read_blob, read_int, read_double};

/* Fills out (a struct of rec's type) from the columns from first on. */
static void read_record(const struct reader *r, int first, const store_record *rec, void *out)
{
    store_record_read(&columns_read, r, first, rec, out);
}

/* --- schema version ----------------------------------------------------- */

/* One integer from a statement prepared for the occasion; *found_r tells
 * whether there was a row. */
static mandate_rc query_int(struct conn *c, const char *sql, bool *found_r, int64_t *value_r,
                            mandate_error *err)
{
    sqlite3_stmt *stmt;
    int src = sqlite3_prepare_v3(c->db, sql, -1, 0, &stmt, NULL);
    if (src != SQLITE_OK)
        return db_error(c, src, "reading the schema version", err);
    mandate_rc rc = MANDATE_OK;
    src = sqlite3_step(stmt);
    *found_r = src == SQLITE_ROW;
    if (src == SQLITE_ROW)
        *value_r = sqlite3_column_int64(stmt, 0);
    else if (src != SQLITE_DONE)
        rc = db_error(c, src, "reading the schema version", err);
    sqlite3_finalize(stmt);
    return rc;
}

/* 0 when there is no schema at all. */
static mandate_rc read_version(struct conn *c, int *version_r, mandate_error *err)
{
    bool found;
    int64_t n = 0;
    mandate_rc rc = query_int(c,
                              "SELECT count(*) FROM sqlite_master "
                              "WHERE type = 'table' AND name = 'schema_version'",
                              &found, &n, err);
    if (rc != MANDATE_OK)
        return rc;
    if (n == 0) {
        *version_r = 0;
        return MANDATE_OK;
    }
    rc = query_int(c, "SELECT version FROM schema_version WHERE id = 1", &found, &n, err);
    if (rc != MANDATE_OK)
        return rc;
    if (!found || n < 0 || n > INT_MAX)
        return mandate_error_set(err, MANDATE_ERROR,
                                 "sqlite: %s: the schema_version table is damaged",
                                 c->inst->path);
    *version_r = (int)n;
    return MANDATE_OK;
}

static mandate_rc newer_error(struct conn *c, int version, mandate_error *err)
{
    return mandate_error_set(err, MANDATE_ERROR,
                             "sqlite: %s has schema version %d, written by a newer "
                             "mandate (this one knows up to %d)",
                             c->inst->path, version, SCHEMA_NEWEST);
}

/* Checks once per connection that its database has the newest schema. */
static mandate_rc conn_check_schema(struct sqlite_inst *inst, struct conn *c,
                                    mandate_error *err)
{
    mandate_rc rc;
    if (!c->schema_ok) {
        int version;
        rc = read_version(c, &version, err);
        if (rc != MANDATE_OK)
            return rc;
        if (version > SCHEMA_NEWEST)
            return newer_error(c, version, err);
        if (version == 0)
            return mandate_error_set(err, MANDATE_ERROR,
                                     "sqlite: %s has no schema: run the migrations "
                                     "(mandatectl init)",
                                     inst->path);
        if (version < SCHEMA_NEWEST)
            return mandate_error_set(err, MANDATE_ERROR,
                                     "sqlite: %s has schema version %d, older than "
                                     "%d: run the migrations (mandatectl init)",
                                     inst->path, version, SCHEMA_NEWEST);
        c->schema_ok = true;
    }
    return MANDATE_OK;
}

/* The calling thread's connection, once its database has the newest schema. */
static mandate_rc conn_ready(struct sqlite_inst *inst, struct conn **c_r, mandate_error *err)
{
    struct conn *c;
    mandate_rc rc = conn_get(inst, &c, err);
    if (rc == MANDATE_OK)
        rc = conn_check_schema(inst, c, err);
    if (rc == MANDATE_OK)
        *c_r = c;
    return rc;
}

/* Takes the writer mutex and the writer connection, opened on first use and
 * checked like conn_ready's; writer_put() gives them back. */
static mandate_rc writer_get(struct sqlite_inst *inst, struct conn **c_r, mandate_error *err)
{
    if (!inst->initialized)
        return mandate_error_set(err, MANDATE_ERROR, "sqlite: the instance is not open");
    pthread_mutex_lock(&inst->writer_lock);
    mandate_rc rc = MANDATE_OK;
    if (inst->writer == NULL)
        rc = conn_open(inst, false, &inst->writer, err);
    if (rc == MANDATE_OK)
        rc = conn_check_schema(inst, inst->writer, err);
    if (rc != MANDATE_OK) {
        pthread_mutex_unlock(&inst->writer_lock);
        return rc;
    }
    *c_r = inst->writer;
    return MANDATE_OK;
}

static void writer_put(struct sqlite_inst *inst)
{
    pthread_mutex_unlock(&inst->writer_lock);
}

/* --- one statement of an op ------------------------------------------------ */

/* What every op does around its SQL: find the connection, take the cached
 * statement, bind in a row of calls checked once, step, turn SQLite's code
 * into ours, give the statement back. q_open takes the thread's connection,
 * q_writer the writer (held until q_close), q_on a connection the caller
 * already has (inside a transaction). q_close passes the op's outcome
 * through, so an op ends with `return q_close(&q, rc);`. */
struct q {
    struct conn *c;
    sqlite3_stmt *stmt;
    enum stmt_id id;
    bool writer; /* holds the writer connection */
    int src;     /* the first binding error, then the last step's code */
    const char *what;
    mandate_error *err;
};

static mandate_rc q_on(struct q *q, struct conn *c, enum stmt_id id, const char *what,
                       mandate_error *err)
{
    *q = (struct q){.c = c, .id = id, .src = SQLITE_MISUSE, .what = what, .err = err};
    mandate_rc rc = stmt_get(c, id, &q->stmt, err);
    if (rc == MANDATE_OK)
        q->src = SQLITE_OK;
    return rc;
}

static mandate_rc q_open(struct q *q, struct sqlite_inst *inst, enum stmt_id id,
                         const char *what, mandate_error *err)
{
    struct conn *c;
    *q = (struct q){.src = SQLITE_MISUSE};
    mandate_rc rc = conn_ready(inst, &c, err);
    return rc == MANDATE_OK ? q_on(q, c, id, what, err) : rc;
}

static mandate_rc q_writer(struct q *q, struct sqlite_inst *inst, enum stmt_id id,
                           const char *what, mandate_error *err)
{
    struct conn *c;
    *q = (struct q){.src = SQLITE_MISUSE};
    mandate_rc rc = writer_get(inst, &c, err);
    if (rc != MANDATE_OK)
        return rc;
    rc = q_on(q, c, id, what, err);
    q->writer = true;
    return rc;
}

/* Gives the statement back (and the writer); returns rc. */
static mandate_rc q_close(struct q *q, mandate_rc rc)
{
    if (q->stmt != NULL)
        stmt_put(q->c, q->id, q->stmt);
    q->stmt = NULL;
    if (q->writer)
        writer_put(q->c->inst);
    q->writer = false;
    return rc;
}

/* Binders do nothing once one failed (or the statement is missing). */
static void q_text(struct q *q, int i, const char *v)
{
    if (q->src == SQLITE_OK)
        q->src = sqlite3_bind_text(q->stmt, i, v, -1, SQLITE_STATIC);
}

static void q_blob(struct q *q, int i, const unsigned char *v, size_t len)
{
    if (q->src == SQLITE_OK)
        q->src = v == NULL ? sqlite3_bind_null(q->stmt, i)
                           : sqlite3_bind_blob64(q->stmt, i, v, len, SQLITE_STATIC);
}

static void q_int(struct q *q, int i, int64_t v)
{
    if (q->src == SQLITE_OK)
        q->src = sqlite3_bind_int64(q->stmt, i, v);
}

static void q_double(struct q *q, int i, double v)
{
    if (q->src == SQLITE_OK)
        q->src = sqlite3_bind_double(q->stmt, i, v);
}

/* The binders as store-record.h calls them. */
static void bind_text(void *q, int i, const char *v)
{
    q_text(q, i, v);
}

static void bind_blob(void *q, int i, const unsigned char *v, size_t len)
{
    q_blob(q, i, v, len);
}

static void bind_int(void *q, int i, int64_t v)
{
    q_int(q, i, v);
}

static void bind_double(void *q, int i, double v)
{
    q_double(q, i, v);
}

static const store_binder params_bind = {bind_text, bind_blob, bind_int, bind_double};

/* Binds the fields of in (a struct of rec's type) as ?first and on. */
static void q_record(struct q *q, int first, const store_record *rec, const void *in)
{
    store_record_bind(&params_bind, q, first, rec, in);
}

/* Steps once: MANDATE_OK with *row_r telling whether a row came, else the
 * error (a binding's, when one failed). */
static mandate_rc q_step(struct q *q, bool *row_r)
{
    if (q->src == SQLITE_OK || q->src == SQLITE_ROW)
        q->src = sqlite3_step(q->stmt);
    *row_r = q->src == SQLITE_ROW;
    if (q->src == SQLITE_ROW || q->src == SQLITE_DONE)
        return MANDATE_OK;
    return db_error(q->c, q->src, q->what, q->err);
}

/* Runs a statement that answers no row; *changed_r: the rows it changed. */
static mandate_rc q_exec(struct q *q, int *changed_r)
{
    bool row;
    mandate_rc rc = q_step(q, &row);
    *changed_r = rc == MANDATE_OK ? sqlite3_changes(q->c->db) : 0;
    return rc;
}

/* An op that found nothing to read or change: rc, with the message given
 * in q's error. */
static mandate_rc q_nothing(struct q *q, mandate_rc rc, const char *fmt, va_list ap)
    MANDATE_PRINTF(3, 0);
static mandate_rc q_nothing(struct q *q, mandate_rc rc, const char *fmt, va_list ap)
{
    return store_error_vset(q->err, rc, fmt, ap);
}

/* The row of a lookup, read into out (copied into pool); MANDATE_NOT_FOUND
 * with the message given when there is none. */
static mandate_rc q_get(struct q *q, mandate_pool *pool, const store_record *rec, void *out,
                        const char *none, ...) MANDATE_PRINTF(5, 6);
static mandate_rc q_get(struct q *q, mandate_pool *pool, const store_record *rec, void *out,
                        const char *none, ...)
{
    bool row;
    mandate_rc rc = q_step(q, &row);
    if (rc != MANDATE_OK || row) {
        struct reader r = {q->c->inst->host, pool, q->stmt};
        if (rc == MANDATE_OK)
            read_record(&r, 0, rec, out);
        return rc;
    }
    va_list ap;
    va_start(ap, none);
    rc = q_nothing(q, MANDATE_NOT_FOUND, none, ap);
    va_end(ap);
    return rc;
}

/* Calls row() for each row, its columns valid during the call; stops at the
 * first answer other than MANDATE_OK and returns it. */
static mandate_rc q_each(struct q *q, store_row_fn row, store_each *e)
{
    struct reader r = {q->c->inst->host, NULL, q->stmt};
    bool more;
    mandate_rc rc;
    while ((rc = q_step(q, &more)) == MANDATE_OK && more)
        if ((rc = row(&r, e)) != MANDATE_OK)
            break;
    return rc;
}

/* Runs a bound statement that changes clients, keys or revocations, in one
 * transaction with the generation bump when a row changed. */
static mandate_rc q_change(struct q *q, int *changed_r)
{
    *changed_r = 0;
    if (q->src != SQLITE_OK)
        return db_error(q->c, q->src, q->what, q->err);
    mandate_rc rc = tx_begin(q->c, q->err);
    if (rc != MANDATE_OK)
        return rc;
    rc = q_exec(q, changed_r);
    if (rc == MANDATE_OK && *changed_r > 0)
        rc = bump_generation(q->c, q->err);
    sqlite3_reset(q->stmt);
    return tx_end(q->c, rc, q->err);
}

/* Ends an op of one q_change statement, opened with rc: none_rc, with the
 * message given, when it changed no row; then closes q. */
static mandate_rc q_change_one(struct q *q, mandate_rc rc, mandate_rc none_rc, const char *none,
                               ...) MANDATE_PRINTF(4, 5);
static mandate_rc q_change_one(struct q *q, mandate_rc rc, mandate_rc none_rc, const char *none,
                               ...)
{
    int changed = 0;
    if (rc == MANDATE_OK)
        rc = q_change(q, &changed);
    if (rc == MANDATE_OK && changed == 0) {
        va_list ap;
        va_start(ap, none);
        rc = q_nothing(q, none_rc, none, ap);
        va_end(ap);
    }
    return q_close(q, rc);
}

/* The statements of an op that must be seen together, as a body run in one
 * write transaction: committed when it answers MANDATE_OK, else rolled back.
 * An outcome to report after a commit goes through ctx. */
typedef mandate_rc (*tx_body)(struct conn *c, void *ctx, mandate_error *err);

static mandate_rc tx_run(struct conn *c, tx_body body, void *ctx, mandate_error *err)
{
    mandate_rc rc = tx_begin(c, err);
    return rc == MANDATE_OK ? tx_end(c, body(c, ctx, err), err) : rc;
}

/* On the thread's connection. */
static mandate_rc conn_tx(struct sqlite_inst *inst, tx_body body, void *ctx, mandate_error *err)
{
    struct conn *c;
    mandate_rc rc = conn_ready(inst, &c, err);
    return rc == MANDATE_OK ? tx_run(c, body, ctx, err) : rc;
}

/* --- ops: housekeeping --------------------------------------------------- */

static mandate_rc store_ping(void *inst_, mandate_error *err)
{
    struct conn *c;
    mandate_rc rc = conn_ready(inst_, &c, err);
    if (rc != MANDATE_OK)
        return rc;
    return simple_run(c, ST_PING, "ping", err);
}

static mandate_rc migrate_step(struct conn *c, int version, mandate_error *err)
{
    int src = sqlite3_exec(c->db, migrations[version], NULL, NULL, NULL);
    if (src != SQLITE_OK)
        return mandate_error_set(err, rc_of(src), "sqlite: migrating to schema version %d: %s",
                                 version + 1, sqlite3_errmsg(c->db));
    sqlite3_stmt *stmt;
    src = sqlite3_prepare_v3(c->db,
                             "INSERT INTO schema_version (id, version) VALUES (1, ?1) "
                             "ON CONFLICT (id) DO UPDATE SET version = excluded.version",
                             -1, 0, &stmt, NULL);
    if (src != SQLITE_OK)
        return db_error(c, src, "recording the schema version", err);
    mandate_rc rc = MANDATE_OK;
    src = sqlite3_bind_int(stmt, 1, version + 1);
    if (src == SQLITE_OK)
        src = sqlite3_step(stmt);
    if (src != SQLITE_DONE)
        rc = db_error(c, src, "recording the schema version", err);
    sqlite3_finalize(stmt);
    return rc;
}

/* One transaction per step, each re-reading the version under the write lock:
 * two processes migrating at once apply every step exactly once. */
static mandate_rc store_migrate(void *inst_, mandate_error *err)
{
    struct sqlite_inst *inst = inst_;
    struct conn *c;
    mandate_rc rc = conn_get(inst, &c, err);
    if (rc != MANDATE_OK)
        return rc;
    for (;;) {
        int version = 0;
        rc = tx_begin(c, err);
        if (rc != MANDATE_OK)
            return rc;
        rc = read_version(c, &version, err);
        if (rc == MANDATE_OK && version > SCHEMA_NEWEST)
            rc = newer_error(c, version, err);
        if (rc != MANDATE_OK || version == SCHEMA_NEWEST) {
            tx_rollback(c);
            break;
        }
        rc = migrate_step(c, version, err);
        if (rc == MANDATE_OK)
            rc = tx_commit(c, err);
        if (rc != MANDATE_OK) {
            tx_rollback(c);
            break;
        }
        mandate_log_info(inst->host, "sqlite: %s: migrated to schema version %d", inst->path,
                         version + 1);
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
    return read_version(c, version_r, err);
}

static mandate_rc store_generation(void *inst_, uint64_t *generation_r, mandate_error *err)
{
    struct q q;
    bool row = false;
    mandate_rc rc = q_open(&q, inst_, ST_GENERATION, "reading the generation", err);
    if (rc == MANDATE_OK)
        rc = q_step(&q, &row);
    if (rc == MANDATE_OK && row)
        *generation_r = (uint64_t)sqlite3_column_int64(q.stmt, 0);
    else if (rc == MANDATE_OK)
        rc = mandate_error_set(err, MANDATE_ERROR, "sqlite: the generation counter is missing");
    return q_close(&q, rc);
}

/* --- ops: clients --------------------------------------------------------- */

static mandate_rc store_client_get(void *inst_, mandate_pool *pool, const char *client_id,
                                   mandate_client *client_r, mandate_error *err)
{
    struct q q;
    if (client_id == NULL)
        return mandate_error_set(err, MANDATE_INVALID, "sqlite: client_get: no client_id");
    mandate_rc rc = q_open(&q, inst_, ST_CLIENT_GET, "client_get", err);
    q_text(&q, 1, client_id);
    if (rc == MANDATE_OK)
        rc = q_get(&q, pool, &store_client_record, client_r, "sqlite: no client \"%s\"",
                   client_id);
    return q_close(&q, rc);
}

/* Binds a client as created (create) or updated at now. */
static void q_client(struct q *q, const mandate_client *cl, bool create, int64_t now)
{
    mandate_client row = store_client_row(cl, create, now);
    q_record(q, 1, &store_client_record, &row);
}

static mandate_rc client_taken(const mandate_client *cl, mandate_error *err)
{
    return mandate_error_set(err, MANDATE_EXISTS, "sqlite: client_id \"%s\" is taken",
                             cl->client_id);
}

/* client_create (create) or client_update. */
static mandate_rc client_write(struct sqlite_inst *inst, const mandate_client *client,
                               bool create, mandate_error *err)
{
    const char *what = create ? "client_create" : "client_update";
    struct q q;
    mandate_rc rc = store_check_client("sqlite", client, what, err);
    if (rc != MANDATE_OK)
        return rc;
    rc = q_open(&q, inst, create ? ST_CLIENT_INSERT : ST_CLIENT_UPDATE, what, err);
    q_client(&q, client, create, inst->host->now(inst->host));
    if (create)
        return q_change_one(&q, rc, MANDATE_EXISTS, "sqlite: client_id \"%s\" is taken",
                            client->client_id);
    return q_change_one(&q, rc, MANDATE_NOT_FOUND, "sqlite: no client \"%s\"",
                        client->client_id);
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
static mandate_rc delete_by_key(struct sqlite_inst *inst, enum stmt_id id, const char *key,
                                const char *what, const char *noun, mandate_error *err)
{
    struct q q;
    if (key == NULL)
        return mandate_error_set(err, MANDATE_INVALID, "sqlite: %s: no %s", what, noun);
    mandate_rc rc = q_open(&q, inst, id, what, err);
    q_text(&q, 1, key);
    return q_change_one(&q, rc, MANDATE_NOT_FOUND, "sqlite: no %s \"%s\"", noun, key);
}

static mandate_rc store_client_delete(void *inst_, const char *client_id, mandate_error *err)
{
    return delete_by_key(inst_, ST_CLIENT_DELETE, client_id, "client_delete", "client", err);
}

static mandate_rc store_client_list(void *inst_, const mandate_client_filter *filter,
                                    mandate_client_cb each, void *ctx, mandate_error *err)
{
    struct q q;
    const char *tenant = filter != NULL ? filter->tenant : NULL;
    const char *after = filter != NULL ? filter->after : NULL;
    size_t limit = filter != NULL ? filter->limit : 0;
    enum stmt_id id =
        tenant != NULL ? (after != NULL ? ST_CLIENT_LIST_TENANT_AFTER : ST_CLIENT_LIST_TENANT)
                       : (after != NULL ? ST_CLIENT_LIST_AFTER : ST_CLIENT_LIST);
    if (each == NULL)
        return mandate_error_set(err, MANDATE_INVALID, "sqlite: client_list: no callback");
    mandate_rc rc = q_open(&q, inst_, id, "client_list", err);
    if (tenant != NULL)
        q_text(&q, 1, tenant);
    if (after != NULL)
        q_text(&q, 2, after);
    q_int(&q, 3, limit == 0 || limit > (uint64_t)INT64_MAX ? -1 : (int64_t)limit);
    store_each e = {(void (*)(void))each, ctx, &columns_read};
    if (rc == MANDATE_OK)
        rc = q_each(&q, store_each_client, &e);
    return q_close(&q, rc);
}

struct import {
    const mandate_client *clients;
    size_t n;
    int64_t now;
};

static mandate_rc import_body(struct conn *c, void *ctx, mandate_error *err)
{
    struct import *im = ctx;
    struct q q;
    mandate_rc rc = q_on(&q, c, ST_CLIENT_INSERT, "client_import", err);
    for (size_t i = 0; i < im->n && rc == MANDATE_OK; i++) {
        int changed;
        q_client(&q, &im->clients[i], true, im->now);
        rc = q_exec(&q, &changed);
        if (rc == MANDATE_OK && changed == 0)
            rc = client_taken(&im->clients[i], err);
        sqlite3_reset(q.stmt);
        q.src = SQLITE_OK;
    }
    if (rc == MANDATE_OK)
        rc = bump_generation(c, err);
    return q_close(&q, rc);
}

static mandate_rc store_client_import(void *inst_, const mandate_client *clients, size_t n,
                                      mandate_error *err)
{
    struct sqlite_inst *inst = inst_;
    if (n == 0)
        return MANDATE_OK;
    if (clients == NULL)
        return mandate_error_set(err, MANDATE_INVALID, "sqlite: client_import: no clients");
    for (size_t i = 0; i < n; i++) {
        mandate_rc rc = store_check_client("sqlite", &clients[i], "client_import", err);
        if (rc != MANDATE_OK)
            return rc;
    }
    struct import im = {clients, n, inst->host->now(inst->host)};
    return conn_tx(inst, import_body, &im, err);
}

/* --- ops: keys ------------------------------------------------------------- */

static mandate_rc store_key_add(void *inst_, const mandate_key *key, mandate_error *err)
{
    struct sqlite_inst *inst = inst_;
    struct q q;
    if (key == NULL || key->kid == NULL)
        return mandate_error_set(err, MANDATE_INVALID, "sqlite: key_add: no kid");
    mandate_key row = *key;
    if (row.created_at == 0)
        row.created_at = inst->host->now(inst->host);
    mandate_rc rc = q_open(&q, inst, ST_KEY_INSERT, "key_add", err);
    q_record(&q, 1, &store_key_record, &row);
    return q_change_one(&q, rc, MANDATE_EXISTS, "sqlite: kid \"%s\" is taken", key->kid);
}

static mandate_rc store_key_update(void *inst_, const mandate_key *key, mandate_error *err)
{
    struct q q;
    if (key == NULL || key->kid == NULL)
        return mandate_error_set(err, MANDATE_INVALID, "sqlite: key_update: no kid");
    mandate_rc rc = q_open(&q, inst_, ST_KEY_UPDATE, "key_update", err);
    q_text(&q, 1, key->kid);
    q_int(&q, 2, (int64_t)key->status);
    q_int(&q, 3, key->retired_at);
    q_int(&q, 4, key->remove_after);
    return q_change_one(&q, rc, MANDATE_NOT_FOUND, "sqlite: no key \"%s\"", key->kid);
}

/* The rows of a list statement, one row() call each; when now is not
 * INT64_MIN it is bound as ?1 (the rows still live at now). */
static mandate_rc list_rows(struct sqlite_inst *inst, enum stmt_id id, int64_t now,
                            const char *what, store_row_fn row, store_each *e,
                            mandate_error *err)
{
    struct q q;
    if (e->cb == NULL)
        return mandate_error_set(err, MANDATE_INVALID, "sqlite: %s: no callback", what);
    mandate_rc rc = q_open(&q, inst, id, what, err);
    if (now != INT64_MIN)
        q_int(&q, 1, now);
    if (rc == MANDATE_OK)
        rc = q_each(&q, row, e);
    return q_close(&q, rc);
}

static mandate_rc store_key_list(void *inst_, mandate_key_cb each, void *ctx,
                                 mandate_error *err)
{
    store_each e = {(void (*)(void))each, ctx, &columns_read};
    return list_rows(inst_, ST_KEY_LIST, INT64_MIN, "key_list", store_each_key, &e, err);
}

static mandate_rc store_key_delete(void *inst_, const char *kid, mandate_error *err)
{
    return delete_by_key(inst_, ST_KEY_DELETE, kid, "key_delete", "key", err);
}

/* --- ops: tokens, revocations, replay ------------------------------------ */

/* Token records and sign-in rows are keyed by hashes of secrets: never
 * NULL, never empty. */
static mandate_rc need_hash(const unsigned char *hash, size_t len, const char *what,
                            mandate_error *err)
{
    if (hash == NULL || len == 0)
        return mandate_error_set(err, MANDATE_INVALID, "sqlite: %s: no hash", what);
    return MANDATE_OK;
}

/* The row under a hash still live at now (bound as ?1 and ?2), read into
 * out from pool; MANDATE_NOT_FOUND naming noun when there is none. On the
 * writer connection when on_writer is set: see refresh_get. */
static mandate_rc get_by_hash(struct sqlite_inst *inst, enum stmt_id id, const char *what,
                              mandate_pool *pool, const unsigned char *hash, size_t hash_len,
                              int64_t now, const store_record *rec, void *out, const char *noun,
                              bool on_writer, mandate_error *err)
{
    struct q q;
    mandate_rc rc = need_hash(hash, hash_len, what, err);
    if (rc != MANDATE_OK)
        return rc;
    rc = on_writer ? q_writer(&q, inst, id, what, err) : q_open(&q, inst, id, what, err);
    q_blob(&q, 1, hash, hash_len);
    q_int(&q, 2, now);
    if (rc == MANDATE_OK)
        rc = q_get(&q, pool, rec, out, "sqlite: no unexpired %s with that hash", noun);
    return q_close(&q, rc);
}

/* need_hash() on the hash member m of a record r, which may be NULL. */
#define NEED_RECORD_HASH(r, m, what, err) need_hash(STORE_RECORD_HASH(r, m), (what), (err))

/* Writes a record (its fields as ?1 and on) on c. unique: the statement
 * inserts or does nothing, and nothing done is MANDATE_EXISTS; else it
 * replaces. */
static mandate_rc put_record_on(struct conn *c, enum stmt_id id, const char *what,
                                const store_record *rec, const void *in, bool unique,
                                mandate_error *err)
{
    struct q q;
    int changed;
    mandate_rc rc = q_on(&q, c, id, what, err);
    q_record(&q, 1, rec, in);
    if (rc == MANDATE_OK)
        rc = q_exec(&q, &changed);
    if (rc == MANDATE_OK && changed == 0 && unique)
        rc = mandate_error_set(err, MANDATE_EXISTS, "sqlite: %s: that key is taken", what);
    return q_close(&q, rc);
}

/* put_record_on with the writer. */
static mandate_rc put_record(struct sqlite_inst *inst, enum stmt_id id, const char *what,
                             const store_record *rec, const void *in, bool unique,
                             mandate_error *err)
{
    struct conn *c;
    mandate_rc rc = writer_get(inst, &c, err);
    if (rc != MANDATE_OK)
        return rc;
    rc = put_record_on(c, id, what, rec, in, unique, err);
    writer_put(inst);
    return rc;
}

/* put_record of a record keyed by a hash, given too: never missing, never
 * replaced. */
static mandate_rc put_hashed(struct sqlite_inst *inst, enum stmt_id id, const char *what,
                             const store_record *rec, const void *in, const unsigned char *hash,
                             size_t hash_len, mandate_error *err)
{
    mandate_rc rc = need_hash(hash, hash_len, what, err);
    if (rc != MANDATE_OK)
        return rc;
    return put_record(inst, id, what, rec, in, true, err);
}

static mandate_rc store_token_put(void *inst_, const mandate_token_record *record,
                                  mandate_error *err)
{
    return put_hashed(inst_, ST_TOKEN_INSERT, "token_put", &store_token_record, record,
                      STORE_RECORD_HASH(record, token_hash), err);
}

static mandate_rc store_token_get(void *inst_, mandate_pool *pool, const unsigned char *hash,
                                  size_t hash_len, int64_t now, mandate_token_record *record_r,
                                  mandate_error *err)
{
    return get_by_hash(inst_, ST_TOKEN_GET, "token_get", pool, hash, hash_len, now,
                       &store_token_record, record_r, "token record", false, err);
}

static mandate_rc store_revocation_list(void *inst_, int64_t now, mandate_revocation_cb each,
                                        void *ctx, mandate_error *err)
{
    store_each e = {(void (*)(void))each, ctx, &columns_read};
    return list_rows(inst_, ST_REVOCATION_LIST, now, "revocation_list", store_each_text_pair,
                     &e, err);
}

static mandate_rc store_token_list(void *inst_, int64_t now, mandate_token_record_cb each,
                                   void *ctx, mandate_error *err)
{
    store_each e = {(void (*)(void))each, ctx, &columns_read};
    return list_rows(inst_, ST_TOKEN_LIST, now, "token_list", store_each_token, &e, err);
}

static mandate_rc store_replay_list(void *inst_, int64_t now, mandate_replay_cb each, void *ctx,
                                    mandate_error *err)
{
    store_each e = {(void (*)(void))each, ctx, &columns_read};
    return list_rows(inst_, ST_REPLAY_LIST, now, "replay_list", store_each_text_pair, &e, err);
}

static mandate_rc store_revoke(void *inst_, const char *jti, const char *client_id,
                               int64_t expires_at, mandate_error *err)
{
    struct sqlite_inst *inst = inst_;
    struct q q;
    int changed;
    if (jti == NULL)
        return mandate_error_set(err, MANDATE_INVALID, "sqlite: revoke: no jti");
    mandate_rc rc = q_open(&q, inst, ST_REVOKE, "revoke", err);
    q_text(&q, 1, jti);
    q_text(&q, 2, client_id);
    q_int(&q, 3, expires_at);
    q_int(&q, 4, inst->host->now(inst->host));
    if (rc == MANDATE_OK)
        rc = q_change(&q, &changed);
    return q_close(&q, rc);
}

static mandate_rc store_is_revoked(void *inst_, const char *jti, bool *revoked_r,
                                   mandate_error *err)
{
    struct q q;
    if (jti == NULL)
        return mandate_error_set(err, MANDATE_INVALID, "sqlite: is_revoked: no jti");
    mandate_rc rc = q_open(&q, inst_, ST_IS_REVOKED, "is_revoked", err);
    q_text(&q, 1, jti);
    if (rc == MANDATE_OK)
        rc = q_step(&q, revoked_r);
    return q_close(&q, rc);
}

/* A replay claim in flight: its thread waits until the leader has written
 * it and set rc (and err). */
struct claim {
    const char *ns, *id;
    int64_t expires_at, now;
    mandate_error *err;
    mandate_rc rc;
    bool done;
    struct claim *next;
};

/* One claim on c: MANDATE_OK, MANDATE_EXISTS when its id is taken, or the
 * statement's failure. */
static mandate_rc claim_one(struct conn *c, struct claim *cl)
{
    struct q q;
    int changed;
    mandate_rc rc = q_on(&q, c, ST_REPLAY_CLAIM, "replay_claim", cl->err);
    q_text(&q, 1, cl->ns);
    q_text(&q, 2, cl->id);
    q_int(&q, 3, cl->expires_at);
    q_int(&q, 4, cl->now);
    if (rc == MANDATE_OK)
        rc = q_exec(&q, &changed);
    if (rc == MANDATE_OK && changed == 0)
        rc = mandate_error_set(cl->err, MANDATE_EXISTS,
                               "sqlite: replay: that id was already used in \"%s\"", cl->ns);
    return q_close(&q, rc);
}

/* Writes a batch of claims with the writer: several in one transaction (a
 * commit, its locks and WAL frames, once for all); when that fails, each
 * alone, so that each gets its own answer. */
static void claims_write(struct sqlite_inst *inst, struct claim *batch)
{
    struct conn *c;
    mandate_error werr = {0};
    mandate_rc rc = writer_get(inst, &c, &werr);
    if (rc != MANDATE_OK) {
        for (struct claim *cl = batch; cl != NULL; cl = cl->next)
            cl->rc = mandate_error_set(cl->err, rc, "%s", werr.message);
        return;
    }
    if (batch->next != NULL) {
        rc = tx_begin(c, &werr);
        for (struct claim *cl = batch; cl != NULL && rc == MANDATE_OK; cl = cl->next) {
            cl->rc = claim_one(c, cl);
            if (cl->rc != MANDATE_OK && cl->rc != MANDATE_EXISTS)
                rc = cl->rc;
        }
        if (rc == MANDATE_OK)
            rc = tx_commit(c, &werr);
        if (rc != MANDATE_OK)
            tx_rollback(c);
    }
    if (batch->next == NULL || rc != MANDATE_OK)
        for (struct claim *cl = batch; cl != NULL; cl = cl->next)
            cl->rc = claim_one(c, cl);
    writer_put(inst);
}

/* Group commit: under load, claims arrive while the writer is busy; the
 * first thread to find no leader takes every claim queued and writes them
 * together, the others wait for their answer. Each claim is committed (or
 * refused) before its thread returns, as alone. */
static mandate_rc store_replay_claim(void *inst_, const char *ns, const char *id,
                                     int64_t expires_at, mandate_error *err)
{
    struct sqlite_inst *inst = inst_;
    if (ns == NULL || id == NULL)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "sqlite: replay_claim: no namespace or no id");
    if (!inst->initialized)
        return mandate_error_set(err, MANDATE_ERROR, "sqlite: the instance is not open");
    struct claim me = {.ns = ns,
                       .id = id,
                       .expires_at = expires_at,
                       .now = inst->host->now(inst->host),
                       .err = err,
                       .rc = MANDATE_ERROR};
    pthread_mutex_lock(&inst->claims_lock);
    *inst->claims_tail = &me;
    inst->claims_tail = &me.next;
    while (!me.done) {
        if (inst->claims_leader) {
            pthread_cond_wait(&inst->claims_done, &inst->claims_lock);
            continue;
        }
        inst->claims_leader = true;
        struct claim *batch = inst->claims;
        inst->claims = NULL;
        inst->claims_tail = &inst->claims;
        pthread_mutex_unlock(&inst->claims_lock);
        claims_write(inst, batch);
        pthread_mutex_lock(&inst->claims_lock);
        for (struct claim *cl = batch, *next; cl != NULL; cl = next) {
            next = cl->next;
            cl->done = true;
        }
        inst->claims_leader = false;
        pthread_cond_broadcast(&inst->claims_done);
    }
    pthread_mutex_unlock(&inst->claims_lock);
    return me.rc;
}

/* What purge deletes, each statement bound with now as ?1; revocations
 * raise the generation. A refresh family goes with its family_expires_at,
 * as its tokens do. */
static const enum stmt_id purges[] = {
    ST_PURGE_TOKENS,   ST_PURGE_REVOCATIONS, ST_PURGE_REPLAY,   ST_PURGE_ONCE,
    ST_PURGE_CODES,    ST_PURGE_REFRESH,     ST_PURGE_FAMILIES, ST_PURGE_SESSIONS,
    ST_PURGE_CONSENTS, ST_PURGE_DOCUMENTS,   ST_PURGE_LINEAGE};

struct purge {
    int64_t now;
    uint64_t count;
};

static mandate_rc purge_body(struct conn *c, void *ctx, mandate_error *err)
{
    struct purge *p = ctx;
    mandate_rc rc = MANDATE_OK;
    for (size_t i = 0; i < sizeof(purges) / sizeof(purges[0]) && rc == MANDATE_OK; i++) {
        struct q q;
        int changed = 0;
        rc = q_on(&q, c, purges[i], "purge", err);
        q_int(&q, 1, p->now);
        if (rc == MANDATE_OK)
            rc = q_exec(&q, &changed);
        if (rc == MANDATE_OK && changed > 0 && purges[i] == ST_PURGE_REVOCATIONS)
            rc = bump_generation(c, err);
        /* a family is the tokens' bookkeeping, not a record of its own */
        if (purges[i] != ST_PURGE_FAMILIES)
            p->count += (uint64_t)changed;
        rc = q_close(&q, rc);
    }
    return rc;
}

/* An entry is gone once expires_at <= now, as token_get and replay_claim see
 * it (see store.h for the sign-in rows). */
static mandate_rc store_purge(void *inst_, int64_t now, uint64_t *count_r, mandate_error *err)
{
    struct purge p = {now, 0};
    mandate_rc rc = conn_tx(inst_, purge_body, &p, err);
    if (rc == MANDATE_OK && count_r != NULL)
        *count_r = p.count;
    return rc;
}

/* --- ops: sign-in (ABI 1.5) ------------------------------------------------ */

/* Sign-in writes come with requests, as token records do: they go through
 * the writer connection (see the top of this file), in one transaction
 * where an op has several statements. */
static mandate_rc writer_tx(struct sqlite_inst *inst, tx_body body, void *ctx,
                            mandate_error *err)
{
    struct conn *c;
    mandate_rc rc = writer_get(inst, &c, err);
    if (rc != MANDATE_OK)
        return rc;
    rc = tx_run(c, body, ctx, err);
    writer_put(inst);
    return rc;
}

/* once_put and once_set on c: ns, key, value, expires_at, then now at ?5
 * (put) or keep_until and now at ?5, ?6 (set); a put that wrote nothing is
 * MANDATE_EXISTS. */
static mandate_rc once_write_on(void *conn, const mandate_store_write *w, mandate_error *err)
{
    struct conn *c = conn;
    bool set = w->op == MANDATE_STORE_WRITE_ONCE_SET;
    const char *what = set ? "once_set" : "once_put";
    struct q q;
    int changed = 0;
    mandate_rc rc = need_hash(w->key, w->key_len, what, err);
    if (rc == MANDATE_OK && w->ns == NULL)
        rc = mandate_error_set(err, MANDATE_INVALID, "sqlite: %s: no namespace", what);
    if (rc != MANDATE_OK)
        return rc;
    rc = q_on(&q, c, set ? ST_ONCE_SET : ST_ONCE_PUT, what, err);
    q_text(&q, 1, w->ns);
    q_blob(&q, 2, w->key, w->key_len);
    q_text(&q, 3, w->value);
    q_int(&q, 4, w->expires_at);
    if (set)
        q_int(&q, 5, w->keep_until);
    q_int(&q, set ? 6 : 5, c->inst->host->now(c->inst->host));
    if (rc == MANDATE_OK)
        rc = q_exec(&q, &changed);
    if (rc == MANDATE_OK && changed == 0 && !set)
        rc = mandate_error_set(err, MANDATE_EXISTS,
                               "sqlite: once_put: that key is taken in \"%s\"", w->ns);
    return q_close(&q, rc);
}

static mandate_rc session_put_on(void *conn, const mandate_session *session, mandate_error *err)
{
    struct conn *c = conn;
    mandate_rc rc = NEED_RECORD_HASH(session, id_hash, "session_put", err);
    if (rc != MANDATE_OK)
        return rc;
    return put_record_on(c, ST_SESSION_INSERT, "session_put", &store_session_record, session,
                         true, err);
}

/* A lone write with the writer, in SQLite's own transaction. */
static mandate_rc write_one(void *inst, const mandate_store_write *w, mandate_error *err)
{
    struct conn *c;
    mandate_rc rc = writer_get(inst, &c, err);
    if (rc != MANDATE_OK)
        return rc;
    rc = store_write_on(((struct sqlite_inst *)inst)->writes, c, w, err);
    writer_put(inst);
    return rc;
}

/* A batch is one BEGIN IMMEDIATE transaction on the writer: one commit (its
 * locks, its WAL frames) for all of its writes. */
static mandate_rc batch_tx(void *inst, store_batch *b, mandate_error *err)
{
    struct conn *c;
    mandate_rc rc = writer_get(inst, &c, err);
    if (rc != MANDATE_OK)
        return rc;
    rc = tx_begin(c, err);
    if (rc == MANDATE_OK)
        rc = tx_end(c, store_batch_run(c, b, err), err);
    writer_put(inst);
    return rc;
}

static const store_writer sqlite_writer = {"sqlite", write_one, batch_tx, once_write_on,
                                           session_put_on};

struct once_take {
    const char *ns;
    const unsigned char *key;
    size_t key_len;
    int64_t now;
    mandate_pool *pool;
    char **value_r;
};

/* Read and delete in one write transaction: no other connection can take
 * it in between. */
static mandate_rc once_take_body(struct conn *c, void *ctx, mandate_error *err)
{
    struct once_take *t = ctx;
    struct q q;
    bool row = false;
    int changed;
    mandate_rc rc = q_on(&q, c, ST_ONCE_GET, "once_take", err);
    q_text(&q, 1, t->ns);
    q_blob(&q, 2, t->key, t->key_len);
    q_int(&q, 3, t->now);
    if (rc == MANDATE_OK)
        rc = q_step(&q, &row);
    if (rc == MANDATE_OK && row) {
        struct reader r = {c->inst->host, t->pool, q.stmt};
        *t->value_r = (char *)read_text(&r, 0);
    } else if (rc == MANDATE_OK) {
        rc = mandate_error_set(err, MANDATE_NOT_FOUND,
                               "sqlite: once_take: nothing to take under that key in \"%s\"",
                               t->ns);
    }
    rc = q_close(&q, rc);
    if (rc != MANDATE_OK)
        return rc;
    rc = q_on(&q, c, ST_ONCE_DELETE, "once_take", err);
    q_text(&q, 1, t->ns);
    q_blob(&q, 2, t->key, t->key_len);
    if (rc == MANDATE_OK)
        rc = q_exec(&q, &changed);
    return q_close(&q, rc);
}

static mandate_rc store_once_take(void *inst_, mandate_pool *pool, const char *ns,
                                  const unsigned char *key, size_t key_len, int64_t now,
                                  char **value_r, mandate_error *err)
{
    *value_r = NULL;
    mandate_rc rc = need_hash(key, key_len, "once_take", err);
    if (rc == MANDATE_OK && ns == NULL)
        rc = mandate_error_set(err, MANDATE_INVALID, "sqlite: once_take: no namespace");
    if (rc != MANDATE_OK)
        return rc;
    struct once_take t = {ns, key, key_len, now, pool, value_r};
    return writer_tx(inst_, once_take_body, &t, err);
}

static mandate_rc store_auth_code_put(void *inst_, const mandate_auth_code *code,
                                      mandate_error *err)
{
    return put_hashed(inst_, ST_CODE_INSERT, "auth_code_put", &store_code_record, code,
                      STORE_RECORD_HASH(code, code_hash), err);
}

struct code_take {
    const unsigned char *hash;
    size_t hash_len;
    int64_t now;
    mandate_pool *pool;
    mandate_auth_code *code_r;
    bool redeemed, found, used;
};

/* Redeems the code if it may be, then reads it as it now is. */
static mandate_rc code_take_body(struct conn *c, void *ctx, mandate_error *err)
{
    struct code_take *t = ctx;
    struct q q;
    int changed = 0;
    mandate_rc rc = q_on(&q, c, ST_CODE_REDEEM, "auth_code_take", err);
    q_blob(&q, 1, t->hash, t->hash_len);
    q_int(&q, 2, t->now);
    if (rc == MANDATE_OK)
        rc = q_exec(&q, &changed);
    t->redeemed = changed > 0;
    rc = q_close(&q, rc);
    if (rc != MANDATE_OK)
        return rc;
    rc = q_on(&q, c, ST_CODE_GET, "auth_code_take", err);
    q_blob(&q, 1, t->hash, t->hash_len);
    if (rc == MANDATE_OK)
        rc = q_step(&q, &t->found);
    if (rc == MANDATE_OK && t->found) {
        struct reader r = {c->inst->host, t->pool, q.stmt};
        read_record(&r, 0, &store_code_record, t->code_r);
        t->used = read_int(&r, (int)store_code_record.n) != 0;
    }
    return q_close(&q, rc);
}

static mandate_rc store_auth_code_take(void *inst_, mandate_pool *pool,
                                       const unsigned char *hash, size_t hash_len, int64_t now,
                                       mandate_auth_code *code_r, mandate_error *err)
{
    mandate_rc rc = need_hash(hash, hash_len, "auth_code_take", err);
    if (rc != MANDATE_OK)
        return rc;
    struct code_take t = {hash, hash_len, now, pool, code_r, false, false, false};
    rc = writer_tx(inst_, code_take_body, &t, err);
    if (rc != MANDATE_OK || t.redeemed)
        return rc;
    if (t.found && t.used)
        return mandate_error_set(err, MANDATE_EXISTS,
                                 "sqlite: auth_code_take: the code was redeemed before");
    memset(code_r, 0, sizeof(*code_r));
    return mandate_error_set(err, MANDATE_NOT_FOUND,
                             "sqlite: auth_code_take: no unexpired code with that hash");
}

/* The family, when this is its first token, then the token: the family is
 * its first token's (store.h), so a later token of it ends with it. */
static mandate_rc refresh_put_body(struct conn *c, void *ctx, mandate_error *err)
{
    const mandate_refresh_token *t = ctx;
    mandate_refresh_token row = *t;
    struct q q;
    int changed = 0;
    mandate_rc rc = q_on(&q, c, ST_FAMILY_INSERT, "refresh_put", err);
    q_text(&q, 1, t->family_id);
    q_text(&q, 2, t->tenant);
    q_text(&q, 3, t->subject);
    q_int(&q, 4, t->family_expires_at);
    if (rc == MANDATE_OK)
        rc = q_exec(&q, &changed);
    rc = q_close(&q, rc);
    if (rc != MANDATE_OK)
        return rc;
    if (row.status == 0)
        row.status = MANDATE_REFRESH_ACTIVE;
    rc = q_on(&q, c, ST_REFRESH_INSERT, "refresh_put", err);
    q_record(&q, 1, &store_refresh_record, &row);
    if (rc == MANDATE_OK)
        rc = q_exec(&q, &changed);
    if (rc == MANDATE_OK && changed == 0)
        rc = mandate_error_set(err, MANDATE_EXISTS,
                               "sqlite: refresh_put: a refresh token with that hash exists");
    return q_close(&q, rc);
}

static mandate_rc store_refresh_put(void *inst_, const mandate_refresh_token *token,
                                    mandate_error *err)
{
    mandate_rc rc = NEED_RECORD_HASH(token, token_hash, "refresh_put", err);
    if (rc == MANDATE_OK && token->family_id == NULL)
        rc = mandate_error_set(err, MANDATE_INVALID, "sqlite: refresh_put: no family_id");
    if (rc != MANDATE_OK)
        return rc;
    return writer_tx(inst_, refresh_put_body, (void *)token, err);
}

/* On the writer connection: a refresh is this read, then the rotation of
 * the same rows with the writer. The writer's page cache holds them, while
 * a thread's connection drops its whole cache whenever another connection
 * of the file has committed (WAL), which under sign-in traffic is before
 * nearly every read, and reads each page again from the file. */
static mandate_rc store_refresh_get(void *inst_, mandate_pool *pool, const unsigned char *hash,
                                    size_t hash_len, int64_t now,
                                    mandate_refresh_token *token_r, mandate_error *err)
{
    return get_by_hash(inst_, ST_REFRESH_GET, "refresh_get", pool, hash, hash_len, now,
                       &store_refresh_record, token_r, "refresh token", true, err);
}

/* Ends families: marks them revoked (fam, keyed by the n keys), then their
 * tokens REVOKED (tok: the status as ?1, then the keys); *active_r: how
 * many were ACTIVE. */
static mandate_rc end_families(struct conn *c, enum stmt_id fam, enum stmt_id tok,
                               const char *const *keys, int n, uint64_t *active_r,
                               mandate_error *err)
{
    struct q q;
    int changed = 0;
    mandate_rc rc = q_on(&q, c, fam, "ending refresh families", err);
    for (int i = 0; i < n; i++)
        q_text(&q, i + 1, keys[i]);
    if (rc == MANDATE_OK)
        rc = q_exec(&q, &changed);
    rc = q_close(&q, rc);
    *active_r = 0;
    for (int status = MANDATE_REFRESH_ACTIVE; status <= MANDATE_REFRESH_USED; status++) {
        if (rc == MANDATE_OK)
            rc = q_on(&q, c, tok, "ending refresh families", err);
        q_int(&q, 1, status);
        for (int i = 0; i < n; i++)
            q_text(&q, i + 2, keys[i]);
        if (rc == MANDATE_OK)
            rc = q_exec(&q, &changed);
        if (rc == MANDATE_OK && status == MANDATE_REFRESH_ACTIVE)
            *active_r = (uint64_t)changed;
        rc = q_close(&q, rc);
    }
    return rc;
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

/* The old token as it is now, and its family's state, then what it means:
 * see store.h. All in one write transaction, which is what serializes a
 * rotation with the end of its family on every node. */
static mandate_rc rotate_body(struct conn *c, void *ctx, mandate_error *err)
{
    struct rotate *r = ctx;
    struct q q;
    bool found = false;
    int changed = 0;
    int64_t revoked = 0;
    mandate_rc rc = q_on(&q, c, ST_REFRESH_FIND, "refresh_rotate", err);
    q_blob(&q, 1, r->old_hash, r->old_len);
    if (rc == MANDATE_OK)
        rc = q_step(&q, &found);
    if (rc == MANDATE_OK && found) {
        struct reader rd = {c->inst->host, r->pool, q.stmt};
        read_record(&rd, 0, &store_refresh_record, r->old_r);
        revoked = read_int(&rd, (int)store_refresh_record.n);
    }
    rc = q_close(&q, rc);
    if (rc != MANDATE_OK)
        return rc;
    r->outcome = !found ? mandate_error_set(err, MANDATE_NOT_FOUND,
                                            "sqlite: no unexpired refresh token with that hash")
                        : store_refresh_verdict("sqlite", r->old_r, revoked != 0, r->now, err);
    if (r->outcome == MANDATE_DENIED && r->old_r->status == MANDATE_REFRESH_USED) {
        uint64_t active;
        const char *family = r->old_r->family_id;
        return end_families(c, ST_FAMILY_END, ST_FAMILY_END_TOKENS, &family, 1, &active, err);
    }
    if (r->outcome != MANDATE_OK)
        return MANDATE_OK;
    const mandate_refresh_token *n = r->next;
    rc = q_on(&q, c, ST_REFRESH_USE, "refresh_rotate", err);
    q_blob(&q, 1, r->old_hash, r->old_len);
    if (rc == MANDATE_OK)
        rc = q_exec(&q, &changed);
    rc = q_close(&q, rc);
    if (rc == MANDATE_OK)
        rc = q_on(&q, c, ST_REFRESH_NEXT, "refresh_rotate", err);
    q_blob(&q, 1, r->old_hash, r->old_len);
    q_blob(&q, 2, n->token_hash, n->token_hash_len);
    q_text(&q, 3, n->client_id);
    q_text(&q, 4, n->tenant);
    q_text(&q, 5, n->subject);
    q_text(&q, 6, n->grant);
    q_int(&q, 7, n->issued_at);
    q_int(&q, 8, n->expires_at);
    if (rc == MANDATE_OK)
        rc = q_exec(&q, &changed);
    if (rc == MANDATE_OK && changed == 0)
        rc = mandate_error_set(err, MANDATE_EXISTS,
                               "sqlite: refresh_rotate: next's hash is taken");
    return q_close(&q, rc);
}

static mandate_rc store_refresh_rotate(void *inst_, mandate_pool *pool,
                                       const unsigned char *old_hash, size_t old_hash_len,
                                       int64_t now, const mandate_refresh_token *next,
                                       mandate_refresh_token *old_r, mandate_error *err)
{
    mandate_rc rc = need_hash(old_hash, old_hash_len, "refresh_rotate", err);
    if (rc == MANDATE_OK)
        rc = NEED_RECORD_HASH(next, token_hash, "refresh_rotate", err);
    if (rc != MANDATE_OK)
        return rc;
    struct rotate r = {old_hash, old_hash_len, now, next, pool, old_r, MANDATE_OK};
    rc = writer_tx(inst_, rotate_body, &r, err);
    if (rc == MANDATE_OK && r.outcome != MANDATE_OK) {
        if (r.outcome == MANDATE_NOT_FOUND)
            memset(old_r, 0, sizeof(*old_r));
        return r.outcome;
    }
    return rc;
}

struct family_end {
    enum stmt_id fam, tok;
    const char *keys[2];
    int n;
    uint64_t active;
};

static mandate_rc family_end_body(struct conn *c, void *ctx, mandate_error *err)
{
    struct family_end *f = ctx;
    return end_families(c, f->fam, f->tok, f->keys, f->n, &f->active, err);
}

/* Ends the families the keys select, in one transaction with the writer
 * (a rotation on this node waits for it; see rotate_body for the others). */
static mandate_rc end_families_by(struct sqlite_inst *inst, struct family_end *f,
                                  uint64_t *count_r, mandate_error *err)
{
    mandate_rc rc = writer_tx(inst, family_end_body, f, err);
    if (rc == MANDATE_OK && count_r != NULL)
        *count_r = f->active;
    return rc;
}

static mandate_rc store_refresh_revoke_family(void *inst_, const char *family_id,
                                              uint64_t *count_r, mandate_error *err)
{
    if (family_id == NULL)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "sqlite: refresh_revoke_family: no family_id");
    struct family_end f = {ST_FAMILY_END, ST_FAMILY_END_TOKENS, {family_id, NULL}, 1, 0};
    return end_families_by(inst_, &f, count_r, err);
}

static mandate_rc store_refresh_revoke_subject(void *inst_, const char *tenant,
                                               const char *subject, uint64_t *count_r,
                                               mandate_error *err)
{
    if (tenant == NULL || subject == NULL)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "sqlite: refresh_revoke_subject: no tenant or no subject");
    struct family_end f = {ST_SUBJECT_END, ST_SUBJECT_END_TOKENS, {tenant, subject}, 2, 0};
    return end_families_by(inst_, &f, count_r, err);
}

static mandate_rc store_session_get(void *inst_, mandate_pool *pool, const unsigned char *hash,
                                    size_t hash_len, int64_t now, mandate_session *session_r,
                                    mandate_error *err)
{
    return get_by_hash(inst_, ST_SESSION_GET, "session_get", pool, hash, hash_len, now,
                       &store_session_record, session_r, "session", false, err);
}

/* A write by hash with the writer (?1: the hash, ?2: now unless
 * INT64_MIN): MANDATE_NOT_FOUND when no row changed. */
static mandate_rc write_by_hash(struct sqlite_inst *inst, enum stmt_id id, const char *what,
                                const unsigned char *hash, size_t hash_len, int64_t now,
                                mandate_error *err)
{
    struct q q;
    int changed;
    mandate_rc rc = need_hash(hash, hash_len, what, err);
    if (rc != MANDATE_OK)
        return rc;
    rc = q_writer(&q, inst, id, what, err);
    q_blob(&q, 1, hash, hash_len);
    if (now != INT64_MIN)
        q_int(&q, 2, now);
    if (rc == MANDATE_OK)
        rc = q_exec(&q, &changed);
    if (rc == MANDATE_OK && changed == 0)
        rc = mandate_error_set(err, MANDATE_NOT_FOUND, "sqlite: %s: no such row", what);
    return q_close(&q, rc);
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

/* A write keyed by n texts with the writer; *count_r (may be NULL): the
 * rows changed. */
static mandate_rc write_by_keys(struct sqlite_inst *inst, enum stmt_id id, const char *what,
                                const char *const *keys, int n, uint64_t *count_r,
                                mandate_error *err)
{
    struct q q;
    int changed = 0;
    for (int i = 0; i < n; i++)
        if (keys[i] == NULL)
            return mandate_error_set(err, MANDATE_INVALID, "sqlite: %s: a key is missing",
                                     what);
    mandate_rc rc = q_writer(&q, inst, id, what, err);
    for (int i = 0; i < n; i++)
        q_text(&q, i + 1, keys[i]);
    if (rc == MANDATE_OK)
        rc = q_exec(&q, &changed);
    if (rc == MANDATE_OK && count_r != NULL)
        *count_r = (uint64_t)changed;
    return q_close(&q, rc);
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
    struct sqlite_inst *inst = inst_;
    mandate_rc rc =
        consent != NULL
            ? store_check_consent_key("sqlite", consent->tenant, consent->subject,
                                      consent->client_id, "consent_put", err)
            : store_check_consent_key("sqlite", NULL, NULL, NULL, "consent_put", err);
    if (rc != MANDATE_OK)
        return rc;
    mandate_consent row = *consent;
    if (row.created_at == 0)
        row.created_at = inst->host->now(inst->host);
    return put_record(inst, ST_CONSENT_PUT, "consent_put", &store_consent_record, &row, false,
                      err);
}

static mandate_rc store_consent_get(void *inst_, mandate_pool *pool, const char *tenant,
                                    const char *subject, const char *client_id, int64_t now,
                                    mandate_consent *consent_r, mandate_error *err)
{
    struct q q;
    mandate_rc rc =
        store_check_consent_key("sqlite", tenant, subject, client_id, "consent_get", err);
    if (rc != MANDATE_OK)
        return rc;
    rc = q_open(&q, inst_, ST_CONSENT_GET, "consent_get", err);
    q_text(&q, 1, tenant);
    q_text(&q, 2, subject);
    q_text(&q, 3, client_id);
    q_int(&q, 4, now);
    if (rc == MANDATE_OK)
        rc = q_get(&q, pool, &store_consent_record, consent_r,
                   "sqlite: no unexpired consent to \"%s\"", client_id);
    return q_close(&q, rc);
}

static mandate_rc store_consent_delete(void *inst_, const char *tenant, const char *subject,
                                       const char *client_id, mandate_error *err)
{
    const char *keys[] = {tenant, subject, client_id};
    uint64_t count = 0;
    mandate_rc rc =
        write_by_keys(inst_, ST_CONSENT_DELETE, "consent_delete", keys, 3, &count, err);
    if (rc == MANDATE_OK && count == 0)
        rc = mandate_error_set(err, MANDATE_NOT_FOUND, "sqlite: no consent to \"%s\"",
                               client_id);
    return rc;
}

static mandate_rc store_consent_list(void *inst_, const char *tenant, const char *subject,
                                     mandate_consent_cb each, void *ctx, mandate_error *err)
{
    struct sqlite_inst *inst = inst_;
    struct q q;
    store_each e = {(void (*)(void))each, ctx, &columns_read};
    if (tenant == NULL || subject == NULL || each == NULL)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "sqlite: consent_list: no tenant, subject or callback");
    mandate_rc rc = q_open(&q, inst, ST_CONSENT_LIST, "consent_list", err);
    q_text(&q, 1, tenant);
    q_text(&q, 2, subject);
    q_int(&q, 3, inst->host->now(inst->host));
    if (rc == MANDATE_OK)
        rc = q_each(&q, store_each_consent, &e);
    return q_close(&q, rc);
}

static mandate_rc store_client_document_put(void *inst_, const mandate_client_document *doc,
                                            mandate_error *err)
{
    if (doc == NULL || doc->url == NULL)
        return mandate_error_set(err, MANDATE_INVALID, "sqlite: client_document_put: no url");
    return put_record(inst_, ST_DOCUMENT_PUT, "client_document_put", &store_document_record,
                      doc, false, err);
}

static mandate_rc store_client_document_get(void *inst_, mandate_pool *pool, const char *url,
                                            mandate_client_document *doc_r, mandate_error *err)
{
    struct q q;
    if (url == NULL)
        return mandate_error_set(err, MANDATE_INVALID, "sqlite: client_document_get: no url");
    mandate_rc rc = q_open(&q, inst_, ST_DOCUMENT_GET, "client_document_get", err);
    q_text(&q, 1, url);
    if (rc == MANDATE_OK)
        rc = q_get(&q, pool, &store_document_record, doc_r,
                   "sqlite: no client document for \"%s\"", url);
    return q_close(&q, rc);
}

static mandate_rc store_lineage_add(void *inst_, const char *jti, const char *parent,
                                    const char *client_id, int64_t expires_at,
                                    mandate_error *err)
{
    struct q q;
    int changed;
    if (jti == NULL || parent == NULL)
        return mandate_error_set(err, MANDATE_INVALID, "sqlite: lineage_add: no jti or parent");
    mandate_rc rc = q_writer(&q, inst_, ST_LINEAGE_ADD, "lineage_add", err);
    q_text(&q, 1, parent);
    q_text(&q, 2, jti);
    q_text(&q, 3, client_id);
    q_int(&q, 4, expires_at);
    if (rc == MANDATE_OK)
        rc = q_exec(&q, &changed);
    if (rc == MANDATE_OK && changed == 0)
        rc = mandate_error_set(err, MANDATE_EXISTS,
                               "sqlite: lineage_add: \"%s\" is already known to come from "
                               "\"%s\"",
                               jti, parent);
    return q_close(&q, rc);
}

/* One statement, as revoke() is: the revocations and the generation in one
 * transaction. */
static mandate_rc store_revoke_descendants(void *inst_, const char *root, uint64_t *count_r,
                                           mandate_error *err)
{
    struct sqlite_inst *inst = inst_;
    struct q q;
    int changed = 0;
    if (root == NULL)
        return mandate_error_set(err, MANDATE_INVALID, "sqlite: revoke_descendants: no root");
    mandate_rc rc = q_open(&q, inst, ST_REVOKE_DESCENDANTS, "revoke_descendants", err);
    q_text(&q, 1, root);
    q_int(&q, 2, inst->host->now(inst->host));
    if (rc == MANDATE_OK)
        rc = q_change(&q, &changed);
    if (rc == MANDATE_OK && count_r != NULL)
        *count_r = (uint64_t)changed;
    return q_close(&q, rc);
}

/* --- lifecycle -------------------------------------------------------------- */

/* Flushes the database file through the checkpoint connection's own handle:
 * opening and closing another descriptor of the file would drop the POSIX
 * locks of every connection of this process. */
static int ckpt_sync_database(sqlite3 *db)
{
    sqlite3_file *file = NULL;
    int src = sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &file);
    if (src != SQLITE_OK || file == NULL || file->pMethods == NULL)
        return src != SQLITE_OK ? src : SQLITE_ERROR;
    return file->pMethods->xSync(file, SQLITE_SYNC_NORMAL | SQLITE_SYNC_DATAONLY);
}

/* The checkpoint thread, with a connection of its own (no WAL hook). */
static void *ckpt_main(void *arg)
{
    struct sqlite_inst *inst = arg;
#ifdef __GLIBC__
    pthread_setname_np(pthread_self(), "sqlite-ckpt"); /* for top and perf */
#endif
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(inst->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        mandate_log_warning(inst->host, "sqlite: %s: the checkpoint thread cannot open it: %s",
                            inst->path, db != NULL ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close_v2(db);
        db = NULL;
    } else {
        sqlite3_busy_timeout(db, CKPT_BUSY_MS);
        sqlite3_exec(db, inst->synchronous_sql, NULL, NULL, NULL);
    }
    int64_t restart_after = 0; /* a busy restart is tried again after this */
    /* A failed write or flush of the database file is reported once, and
     * the next flush may succeed with pages lost: after one, this thread
     * checkpoints no more, so that the WAL keeps every frame (it grows, and
     * is never found fully copied, so no writer starts it over); the next
     * start copies it again. */
    bool io_failed = false;
    pthread_mutex_lock(&inst->ckpt_lock);
    while (!inst->ckpt_stop) {
        if (io_failed || !atomic_load(&inst->ckpt_wanted)) {
            pthread_cond_wait(&inst->ckpt_cond, &inst->ckpt_lock);
            continue;
        }
        atomic_store(&inst->ckpt_wanted, false);
        pthread_mutex_unlock(&inst->ckpt_lock);
        int frames = 0, copied = 0;
        int src = db == NULL ? SQLITE_OK
                             : sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE,
                                                         &frames, &copied);
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
        if (src == SQLITE_OK)
            atomic_store(&inst->ckpt_next, frames + (int)inst->checkpoint_pages);
        if (src == SQLITE_OK && frames >= 4 * inst->checkpoint_pages &&
            now_ms >= restart_after) {
            /* Only a checkpoint that copies the whole WAL syncs the database
             * file, and under steady writes only the restart does: it then
             * flushed every page copied since the last one (28 ms on a VM
             * disk) while new token records waited. Flush them first, copy
             * what came meanwhile and flush again, so that the restart has
             * only the last moment's frames left. */
            src = ckpt_sync_database(db);
            if (src == SQLITE_OK)
                src =
                    sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
            if (src == SQLITE_OK)
                src = ckpt_sync_database(db);
            if (src == SQLITE_OK) {
                /* no writer of this process in between: only the frames
                 * written since the passive checkpoint remain to copy */
                pthread_mutex_lock(&inst->writer_lock);
                src = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_RESTART, &frames,
                                                &copied);
                if (src == SQLITE_OK)
                    atomic_store(&inst->ckpt_next, (int)inst->checkpoint_pages);
                pthread_mutex_unlock(&inst->writer_lock);
                if ((src & 0xff) == SQLITE_BUSY)
                    restart_after = now_ms + CKPT_RETRY_MS;
            }
        }
        if ((src & 0xff) == SQLITE_IOERR) {
            io_failed = true;
            atomic_store(&inst->ckpt_wanted, true); /* the WAL hook wakes nobody now */
            mandate_log_error(inst->host,
                              "sqlite: %s: checkpoint: writing or flushing the database file "
                              "failed (%s): no more checkpoints, the WAL keeps every commit; "
                              "restart the daemon once the disk is sound",
                              inst->path, sqlite3_errstr(src));
        } else if (src != SQLITE_OK && (src & 0xff) != SQLITE_BUSY &&
                   (src & 0xff) != SQLITE_LOCKED) {
            mandate_log_warning(inst->host, "sqlite: %s: checkpoint: %s", inst->path,
                                sqlite3_errstr(src));
        }
        pthread_mutex_lock(&inst->ckpt_lock);
    }
    pthread_mutex_unlock(&inst->ckpt_lock);
    sqlite3_close_v2(db);
    return NULL;
}

static void sqlite_destroy(void *inst_)
{
    struct sqlite_inst *inst = inst_;
    if (!inst->initialized)
        return;
    inst->initialized = false;
    if (inst->ckpt_started) {
        pthread_mutex_lock(&inst->ckpt_lock);
        inst->ckpt_stop = true;
        pthread_cond_signal(&inst->ckpt_cond);
        pthread_mutex_unlock(&inst->ckpt_lock);
        pthread_join(inst->ckpt_thread, NULL);
        inst->ckpt_started = false;
    }
    inst->writer = NULL; /* in conns */
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
    pthread_mutex_destroy(&inst->writer_lock);
    pthread_mutex_destroy(&inst->claims_lock);
    pthread_cond_destroy(&inst->claims_done);
    pthread_cond_destroy(&inst->ckpt_cond);
    pthread_mutex_destroy(&inst->ckpt_lock);
}

static mandate_rc set_wal(struct conn *c, const mandate_host *host, mandate_error *err)
{
    sqlite3_stmt *stmt;
    int src = sqlite3_prepare_v3(c->db, "PRAGMA journal_mode = WAL", -1, 0, &stmt, NULL);
    if (src != SQLITE_OK)
        return db_error(c, src, "setting WAL mode", err);
    mandate_rc rc = MANDATE_OK;
    src = sqlite3_step(stmt);
    if (src == SQLITE_ROW) {
        const char *mode = (const char *)sqlite3_column_text(stmt, 0);
        if (mode == NULL || strcmp(mode, "wal") != 0)
            mandate_log_warning(host, "sqlite: %s: journal mode is %s, not WAL", c->inst->path,
                                mode != NULL ? mode : "unknown");
    } else {
        rc = db_error(c, src, "setting WAL mode", err);
    }
    sqlite3_finalize(stmt);
    return rc;
}

static mandate_rc sqlite_instantiate(void *inst_, const mandate_host *host, mandate_error *err)
{
    struct sqlite_inst *inst = inst_;
    inst->host = host;
    inst->writes = &sqlite_writer;
    if (inst->path == NULL || inst->path[0] == '\0')
        return mandate_error_set(err, MANDATE_INVALID, "sqlite: path is not set");
    if (inst->synchronous == NULL || strcmp(inst->synchronous, "normal") == 0)
        inst->synchronous_sql = "PRAGMA synchronous = NORMAL";
    else if (strcmp(inst->synchronous, "full") == 0)
        inst->synchronous_sql = "PRAGMA synchronous = FULL";
    else
        return mandate_error_set(err, MANDATE_INVALID,
                                 "sqlite: synchronous must be normal or full");
    if (inst->busy_timeout < 0 || inst->busy_timeout > INT_MAX)
        return mandate_error_set(err, MANDATE_INVALID, "sqlite: busy_timeout is out of range");
    if (!sqlite3_threadsafe())
        return mandate_error_set(err, MANDATE_ERROR,
                                 "sqlite: the SQLite library is built without threads");
    if (pthread_mutex_init(&inst->lock, NULL) != 0)
        return mandate_error_set(err, MANDATE_ERROR, "sqlite: pthread_mutex_init failed");
    if (pthread_mutex_init(&inst->writer_lock, NULL) != 0) {
        pthread_mutex_destroy(&inst->lock);
        return mandate_error_set(err, MANDATE_ERROR, "sqlite: pthread_mutex_init failed");
    }
    if (pthread_mutex_init(&inst->ckpt_lock, NULL) != 0) {
        pthread_mutex_destroy(&inst->writer_lock);
        pthread_mutex_destroy(&inst->lock);
        return mandate_error_set(err, MANDATE_ERROR, "sqlite: pthread_mutex_init failed");
    }
    if (pthread_cond_init(&inst->ckpt_cond, NULL) != 0) {
        pthread_mutex_destroy(&inst->ckpt_lock);
        pthread_mutex_destroy(&inst->writer_lock);
        pthread_mutex_destroy(&inst->lock);
        return mandate_error_set(err, MANDATE_ERROR, "sqlite: pthread_cond_init failed");
    }
    /* static initializers: nothing to fail */
    inst->claims_lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    inst->claims_done = (pthread_cond_t)PTHREAD_COND_INITIALIZER;
    inst->claims = NULL;
    inst->claims_tail = &inst->claims;
    inst->claims_leader = false;
    inst->ckpt_stop = false;
    atomic_init(&inst->ckpt_wanted, false);
    atomic_init(&inst->ckpt_next, (int)inst->checkpoint_pages);
    inst->id = store_instance_id_new();
    inst->initialized = true;

    /* The database holds secret hashes and wrapped private keys: create it
     * private; SQLite gives its -wal and -shm files the same mode. Only when
     * it does not exist: closing any descriptor of a file drops every POSIX
     * lock this process holds on it, including those of the connections of
     * another instance (during a reload), and SQLite's WAL index then goes
     * stale under them. */
    struct stat st;
    if (stat(inst->path, &st) != 0) {
        int fd = open(inst->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST) {
            int e = errno;
            sqlite_destroy(inst);
            return mandate_error_set(err, MANDATE_TEMPFAIL, "sqlite: cannot create %s: %s",
                                     inst->path, strerror(e));
        }
        if (fd >= 0)
            close(fd);
    }

    struct conn *c;
    mandate_rc rc = conn_open(inst, true, &c, err);
    if (rc == MANDATE_OK)
        rc = set_wal(c, host, err);
    if (rc != MANDATE_OK) {
        sqlite_destroy(inst);
        return rc;
    }
    int e = pthread_create(&inst->ckpt_thread, NULL, ckpt_main, inst);
    if (e != 0) {
        sqlite_destroy(inst);
        return mandate_error_set(err, MANDATE_ERROR, "sqlite: cannot start a thread: %s",
                                 strerror(e));
    }
    inst->ckpt_started = true;
    mandate_log_debug(host, "sqlite: opened %s (SQLite %s)", inst->path, sqlite3_libversion());
    return MANDATE_OK;
}

static const mandate_conf_def sqlite_conf[] = {
    {"path", MANDATE_CONF_PATH, 0, offsetof(struct sqlite_inst, path), "mandate.db", 0, 0, NULL,
     "the database file; a relative path is taken from the state directory"},
    {"busy_timeout", MANDATE_CONF_INT, 0, offsetof(struct sqlite_inst, busy_timeout), "5000", 0,
     600000, NULL, "milliseconds to wait for a lock held by another connection"},
    {"synchronous", MANDATE_CONF_STRING, 0, offsetof(struct sqlite_inst, synchronous), "normal",
     0, 0, "normal|full", "normal: a power loss may lose the last commits; full: it may not"},
    {"checkpoint_pages", MANDATE_CONF_INT, 0, offsetof(struct sqlite_inst, checkpoint_pages),
     "4000", 100, 1000000, NULL,
     "WAL pages after which a background thread copies them into the database; at four "
     "times as many the WAL starts over"},
    MANDATE_CONF_END,
};

static const mandate_store_ops sqlite_ops = {
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

MANDATE_PLUGIN(sqlite, MANDATE_STORE, PACKAGE_VERSION, 0, struct sqlite_inst, sqlite_conf,
               sqlite_instantiate, sqlite_destroy, &sqlite_ops);
