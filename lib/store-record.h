/* The records of the SQL stores (plugins/store-sqlite, plugins/store-pgsql)
 * as columns: for each record type of <mandate/store.h>, the list of its
 * columns the SQL names (CLIENT_COLUMNS, ...) and a table of its fields in
 * that order, which both stores walk to bind a record's parameters and to
 * read a row into one. One place, so that neither store drifts from the
 * other, nor a table from its column list. Also the writes both make the
 * same way (once_put, once_set, session_put, write_batch: store_writer),
 * over each store's own statements and transactions, and the rest of what
 * the store ABI asks of both alike: the checks of an op's arguments, the
 * verdict on a refresh token, the rows handed to a list op's callback, the
 * times a client is written with, each thread's connection per instance.
 *
 * Part of lib/, the floor under the core, the plugins and libmandate; only
 * the store plugins use it. No allocation; no state but each thread's
 * connection slots (store_thread_conn_find). */
#ifndef MANDATE_STORE_RECORD_H
#define MANDATE_STORE_RECORD_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mandate/store.h>

/* The columns of each record, in the order of its table below. */
#define CLIENT_COLUMNS                                                                         \
    "client_id, tenant, name, scopes, default_scopes, audiences, backend, "                    \
    "token_format, token_ttl, status, flags, secret_hash, prev_secret_hash, "                  \
    "prev_secret_expires_at, public_key, rate_limit, rate_burst, attributes, "                 \
    "created_at, updated_at, metadata"
#define KEY_COLUMNS                                                                            \
    "kid, alg, format, status, private_blob, public_jwk, created_at, "                         \
    "retired_at, remove_after"
#define TOKEN_COLUMNS                                                                          \
    "token_hash, jti, client_id, subject, tenant, \"grant\", issued_at, "                      \
    "expires_at"
#define CODE_COLUMNS                                                                           \
    "code_hash, client_id, redirect_uri, code_challenge, family_id, \"grant\", "               \
    "issued_at, expires_at"
#define REFRESH_COLUMNS                                                                        \
    "token_hash, family_id, client_id, tenant, subject, \"grant\", status, issued_at, "        \
    "expires_at, family_expires_at"
#define SESSION_COLUMNS                                                                        \
    "id_hash, tenant, subject, idp, identity, created_at, authn_at, last_seen_at, expires_at"
#define CONSENT_COLUMNS "tenant, subject, client_id, scope, resources, created_at, expires_at"
#define DOCUMENT_COLUMNS "url, document, fetched_at, expires_at"

/* The hash member m of a record r that may be NULL, and its length: the
 * two arguments of a store's check that a record keyed by the hash of a
 * secret has one. */
#define STORE_RECORD_HASH(r, m) (r) != NULL ? (r)->m : NULL, (r) != NULL ? (r)->m##_len : 0

/* How a field is stored: F_TEXT a const char * (NULL: SQL NULL), F_BLOB
 * bytes with their length in a size_t member, F_INT an int64_t, F_ENUM an
 * enum read and written as an int, F_U32 a uint32_t, F_REAL a double. */
enum store_field_type { F_TEXT, F_BLOB, F_INT, F_ENUM, F_U32, F_REAL };

typedef struct store_field {
    unsigned char type;
    unsigned short off;     /* of the member */
    unsigned short len_off; /* F_BLOB: of its length, a size_t */
} store_field;

typedef struct store_record {
    const store_field *fields;
    size_t n;
    size_t size; /* of the struct, cleared before it is read into */
} store_record;

extern const store_record store_client_record;   /* mandate_client */
extern const store_record store_key_record;      /* mandate_key */
extern const store_record store_token_record;    /* mandate_token_record */
extern const store_record store_code_record;     /* mandate_auth_code */
extern const store_record store_refresh_record;  /* mandate_refresh_token */
extern const store_record store_session_record;  /* mandate_session */
extern const store_record store_consent_record;  /* mandate_consent */
extern const store_record store_document_record; /* mandate_client_document */

/* How a store binds a value as the parameter at (its number, from the
 * first given to store_record_bind on) of the statement in dst. */
typedef struct store_binder {
    void (*text)(void *dst, int at, const char *v);
    void (*blob)(void *dst, int at, const unsigned char *v, size_t len);
    void (*integer)(void *dst, int at, int64_t v);
    void (*real)(void *dst, int at, double v);
} store_binder;

/* How a store reads the column col of the row in src. */
typedef struct store_reader {
    const char *(*text)(const void *src, int col);
    const unsigned char *(*blob)(const void *src, int col, size_t *len_r);
    int64_t (*integer)(const void *src, int col);
    double (*real)(const void *src, int col);
} store_reader;

/* A list op's callback and its context, with the store's reader for the
 * rows it hands to the row functions below. */
typedef struct store_each {
    void (*cb)(void); /* the op's callback type, cast back by the row function */
    void *ctx;
    const store_reader *read;
} store_each;

/* The row functions of the list ops: each reads the row src with e->read
 * and calls e's callback with what it read. client_list, key_list,
 * token_list and consent_list hand their records; revocations (jti,
 * client_id, expires_at) and replay entries (ns, id, expires_at) are both
 * two texts and a time: store_each_text_pair for both. */
typedef mandate_rc (*store_row_fn)(const void *src, store_each *e);
mandate_rc store_each_client(const void *src, store_each *e);
mandate_rc store_each_key(const void *src, store_each *e);
mandate_rc store_each_token(const void *src, store_each *e);
mandate_rc store_each_consent(const void *src, store_each *e);
mandate_rc store_each_text_pair(const void *src, store_each *e);

/* Binds the fields of in (a struct of rec's type) as the parameters first
 * and on. */
void store_record_bind(const store_binder *b, void *dst, int first, const store_record *rec,
                       const void *in);

/* Clears out (a struct of rec's type) and fills it from the columns first
 * and on. */
void store_record_read(const store_reader *r, const void *src, int first,
                       const store_record *rec, void *out);

/* The row a store writes for client_create (create) or client_update, at
 * now: a new client is created now unless its created_at is given, and
 * updated when created unless its updated_at is; an update is made now
 * unless its updated_at is given (its created_at 0 keeps the stored one:
 * the stores' UPDATE statements say so). */
mandate_client store_client_row(const mandate_client *cl, bool create, int64_t now);

/* Sets err (NULL is fine) to rc with the message fmt makes of ap, for an
 * op that found nothing to read or change; returns rc. */
mandate_rc store_error_vset(mandate_error *err, mandate_rc rc, const char *fmt, va_list ap)
    MANDATE_PRINTF(3, 0);

/* What every op checks the same way in both stores; store names the store
 * in the message ("sqlite"), what the op. A client needs a client_id and a
 * tenant, a consent's key a tenant, a subject and a client_id
 * (MANDATE_INVALID). */
mandate_rc store_check_client(const char *store, const mandate_client *cl, const char *what,
                              mandate_error *err);
mandate_rc store_check_consent_key(const char *store, const char *tenant, const char *subject,
                                   const char *client_id, const char *what, mandate_error *err);

/* What the refresh token old, read in the rotation's transaction with
 * whether its family was ended, means for refresh_rotate at now
 * (<mandate/store.h>):
 * MANDATE_OK to rotate it, MANDATE_NOT_FOUND when it expired, else
 * MANDATE_DENIED (used again, or its family ended). */
mandate_rc store_refresh_verdict(const char *store, const mandate_refresh_token *old,
                                 bool family_revoked, int64_t now, mandate_error *err);

/* Each thread remembers its connection per store instance here, by the
 * instance's id, which store_instance_id_new gives (unique in the process,
 * never reused). Not a pthread key: a key deleted by one instance's destroy
 * is handed to the next instance (a reload), while the threads still hold
 * the old values, which then point at closed connections. As ids are never
 * reused, a stale slot is never matched; it is only overwritten. The
 * connections themselves belong to the instance, which closes them all.
 * find: the calling thread's connection for the instance id, or NULL. */
uint64_t store_instance_id_new(void);
void *store_thread_conn_find(uint64_t id);
void store_thread_conn_remember(uint64_t id, void *conn);

/* What write_batch checks before it writes anything (<mandate/store.h>):
 * MANDATE_INVALID, with the store's name in the message, when n is 0 or
 * above MANDATE_STORE_WRITE_BATCH_MAX (*bad_r: n) or a write's op is
 * unknown (*bad_r: its index). */
mandate_rc store_write_batch_check(const char *store, const mandate_store_write *writes,
                                   size_t n, size_t *bad_r, mandate_error *err);

typedef struct store_writer store_writer;

/* A batch in flight (write_batch), for the store's transaction body. */
typedef struct store_batch {
    const mandate_store_write *writes;
    size_t n, failed;
    const store_writer *writer;
} store_batch;

/* The body of a batch's transaction: b's writes made on conn, in order, up
 * to the first that fails: its answer, b->failed its index (n when none
 * failed). */
mandate_rc store_batch_run(void *conn, store_batch *b, mandate_error *err);

/* How a store makes its writes, for the ops below: its instance struct
 * starts with a pointer to one of these, so that they take the instance as
 * the ops table hands it. */
struct store_writer {
    const char *name; /* "sqlite", for messages */
    /* one write alone, atomic by itself */
    mandate_rc (*alone)(void *inst, const mandate_store_write *w, mandate_error *err);
    /* b's body (store_batch_run) in one write transaction: committed when
     * it answers MANDATE_OK, else rolled back */
    mandate_rc (*transaction)(void *inst, store_batch *b, mandate_error *err);
    /* on a connection (inside that transaction, or alone): a once_put or a
     * once_set (w->op says which; its key and namespace checked), a
     * session_put (its hash checked) */
    mandate_rc (*once_on)(void *conn, const mandate_store_write *w, mandate_error *err);
    mandate_rc (*session_on)(void *conn, const mandate_session *session, mandate_error *err);
};

/* One write w on conn by sw's functions for its op. */
mandate_rc store_write_on(const store_writer *sw, void *conn, const mandate_store_write *w,
                          mandate_error *err);

/* The ops once_put, once_set, session_put and write_batch
 * (<mandate/store.h>) of a store whose instance starts with its
 * store_writer pointer. */
mandate_rc store_writer_once_put(void *inst, const char *ns, const unsigned char *key,
                                 size_t key_len, const char *value, int64_t expires_at,
                                 mandate_error *err);
mandate_rc store_writer_once_set(void *inst, const char *ns, const unsigned char *key,
                                 size_t key_len, const char *value, int64_t expires_at,
                                 int64_t keep_until, mandate_error *err);
mandate_rc store_writer_session_put(void *inst, const mandate_session *session,
                                    mandate_error *err);
mandate_rc store_writer_batch(void *inst, const mandate_store_write *writes, size_t n,
                              size_t *failed_r, mandate_error *err);

#endif
