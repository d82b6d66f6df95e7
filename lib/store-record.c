/* The SQL stores' records as columns: store-record.h. */
#include "config.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <mandate/store.h>

#include "store-record.h"

/* Fields of the struct type REC, defined before each table. Kept as
 * written (clang-format would give each field a line of its own): a table
 * reads as its column list. */
/* clang-format off */
#define FIELD(m, type) {type, offsetof(REC, m), 0}
#define TEXT(m) FIELD(m, F_TEXT)
#define BLOB(m) {F_BLOB, offsetof(REC, m), offsetof(REC, m##_len)}
#define INT(m) FIELD(m, F_INT)
#define ENUM(m) FIELD(m, F_ENUM)
#define U32(m) FIELD(m, F_U32)
#define REAL(m) FIELD(m, F_REAL)
#define RECORD(fields) {fields, sizeof(fields) / sizeof(fields[0]), sizeof(REC)}

/* F_ENUM members are read and written as an int. */
_Static_assert(sizeof(mandate_client_status) == sizeof(int), "enum size");
_Static_assert(sizeof(mandate_key_status) == sizeof(int), "enum size");
_Static_assert(sizeof(mandate_refresh_status) == sizeof(int), "enum size");

#define REC mandate_client
static const store_field client_fields[] = {
    TEXT(client_id), TEXT(tenant), TEXT(name), TEXT(scopes), TEXT(default_scopes),
    TEXT(audiences), TEXT(backend), TEXT(token_format), INT(token_ttl), ENUM(status),
    U32(flags), BLOB(secret_hash), BLOB(prev_secret_hash), INT(prev_secret_expires_at),
    TEXT(public_key), REAL(rate_limit), INT(rate_burst), TEXT(attributes), INT(created_at),
    INT(updated_at), TEXT(metadata)};
const store_record store_client_record = RECORD(client_fields);
#undef REC

#define REC mandate_key
static const store_field key_fields[] = {
    TEXT(kid), TEXT(alg), TEXT(format), ENUM(status), BLOB(private_blob), TEXT(public_jwk),
    INT(created_at), INT(retired_at), INT(remove_after)};
const store_record store_key_record = RECORD(key_fields);
#undef REC

#define REC mandate_token_record
static const store_field token_fields[] = {
    BLOB(token_hash), TEXT(jti), TEXT(client_id), TEXT(subject), TEXT(tenant), TEXT(grant),
    INT(issued_at), INT(expires_at)};
const store_record store_token_record = RECORD(token_fields);
#undef REC

#define REC mandate_auth_code
static const store_field code_fields[] = {
    BLOB(code_hash), TEXT(client_id), TEXT(redirect_uri), TEXT(code_challenge),
    TEXT(family_id), TEXT(grant), INT(issued_at), INT(expires_at)};
const store_record store_code_record = RECORD(code_fields);
#undef REC

#define REC mandate_refresh_token
static const store_field refresh_fields[] = {
    BLOB(token_hash), TEXT(family_id), TEXT(client_id), TEXT(tenant), TEXT(subject),
    TEXT(grant), ENUM(status), INT(issued_at), INT(expires_at), INT(family_expires_at)};
const store_record store_refresh_record = RECORD(refresh_fields);
#undef REC

#define REC mandate_session
static const store_field session_fields[] = {
    BLOB(id_hash), TEXT(tenant), TEXT(subject), TEXT(idp), TEXT(identity), INT(created_at),
    INT(authn_at), INT(last_seen_at), INT(expires_at)};
const store_record store_session_record = RECORD(session_fields);
#undef REC

#define REC mandate_consent
static const store_field consent_fields[] = {
    TEXT(tenant), TEXT(subject), TEXT(client_id), TEXT(scope), TEXT(resources),
    INT(created_at), INT(expires_at)};
const store_record store_consent_record = RECORD(consent_fields);
#undef REC

#define REC mandate_client_document
static const store_field document_fields[] = {
    TEXT(url), TEXT(document), INT(fetched_at), INT(expires_at)};
const store_record store_document_record = RECORD(document_fields);
#undef REC
/* clang-format on */

void store_record_bind(const store_binder *b, void *dst, int first, const store_record *rec,
                       const void *in)
{
    for (size_t i = 0; i < rec->n; i++) {
        const store_field *f = &rec->fields[i];
        const void *m = (const char *)in + f->off;
        int at = first + (int)i;
        switch (f->type) {
        case F_TEXT: b->text(dst, at, *(const char *const *)m); break;
        case F_BLOB:
            b->blob(dst, at, *(const unsigned char *const *)m,
                    *(const size_t *)(const void *)((const char *)in + f->len_off));
            break;
        case F_INT: b->integer(dst, at, *(const int64_t *)m); break;
        case F_ENUM: b->integer(dst, at, *(const int *)m); break;
        case F_U32: b->integer(dst, at, *(const uint32_t *)m); break;
        case F_REAL: b->real(dst, at, *(const double *)m); break;
        }
    }
}

void store_record_read(const store_reader *r, const void *src, int first,
                       const store_record *rec, void *out)
{
    memset(out, 0, rec->size);
    for (size_t i = 0; i < rec->n; i++) {
        const store_field *f = &rec->fields[i];
        void *m = (char *)out + f->off;
        int col = first + (int)i;
        switch (f->type) {
        case F_TEXT: *(const char **)m = r->text(src, col); break;
        case F_BLOB:
            *(const unsigned char **)m =
                r->blob(src, col, (size_t *)((char *)out + f->len_off));
            break;
        case F_INT: *(int64_t *)m = r->integer(src, col); break;
        case F_ENUM: *(int *)m = (int)r->integer(src, col); break;
        case F_U32: *(uint32_t *)m = (uint32_t)r->integer(src, col); break;
        case F_REAL: *(double *)m = r->real(src, col); break;
        }
    }
}

/* The record of type T that rec describes, read from src and handed to
 * e's callback of type CB. */
#define EACH_RECORD(T, rec, CB)                                                                \
    T row;                                                                                     \
    store_record_read(e->read, src, 0, &(rec), &row);                                          \
    return ((CB)e->cb)(e->ctx, &row)

mandate_rc store_each_client(const void *src, store_each *e)
{
    EACH_RECORD(mandate_client, store_client_record, mandate_client_cb);
}

mandate_rc store_each_key(const void *src, store_each *e)
{
    EACH_RECORD(mandate_key, store_key_record, mandate_key_cb);
}

mandate_rc store_each_token(const void *src, store_each *e)
{
    EACH_RECORD(mandate_token_record, store_token_record, mandate_token_record_cb);
}

mandate_rc store_each_consent(const void *src, store_each *e)
{
    EACH_RECORD(mandate_consent, store_consent_record, mandate_consent_cb);
}

typedef mandate_rc (*text_pair_cb)(void *ctx, const char *a, const char *b, int64_t expires_at);

mandate_rc store_each_text_pair(const void *src, store_each *e)
{
    return ((text_pair_cb)e->cb)(e->ctx, e->read->text(src, 0), e->read->text(src, 1),
                                 e->read->integer(src, 2));
}

mandate_client store_client_row(const mandate_client *cl, bool create, int64_t now)
{
    mandate_client row = *cl;
    if (create && row.created_at == 0)
        row.created_at = now;
    if (row.updated_at == 0)
        row.updated_at = create ? row.created_at : now;
    return row;
}

mandate_rc store_error_vset(mandate_error *err, mandate_rc rc, const char *fmt, va_list ap)
{
    if (err != NULL) {
        err->rc = rc;
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
    }
    return rc;
}

mandate_rc store_check_client(const char *store, const mandate_client *cl, const char *what,
                              mandate_error *err)
{
    if (cl == NULL || cl->client_id == NULL || cl->tenant == NULL)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "%s: %s: a client needs a client_id and a tenant", store,
                                 what);
    return MANDATE_OK;
}

mandate_rc store_check_consent_key(const char *store, const char *tenant, const char *subject,
                                   const char *client_id, const char *what, mandate_error *err)
{
    if (tenant == NULL || subject == NULL || client_id == NULL)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "%s: %s: a consent needs a tenant, a subject and a client_id",
                                 store, what);
    return MANDATE_OK;
}

mandate_rc store_refresh_verdict(const char *store, const mandate_refresh_token *old,
                                 bool family_revoked, int64_t now, mandate_error *err)
{
    if (old->expires_at <= now || old->family_expires_at <= now)
        return mandate_error_set(err, MANDATE_NOT_FOUND,
                                 "%s: no unexpired refresh token with that hash", store);
    if (old->status == MANDATE_REFRESH_USED)
        return mandate_error_set(err, MANDATE_DENIED,
                                 "%s: a refresh token was used again: its family is ended",
                                 store);
    if (old->status != MANDATE_REFRESH_ACTIVE || family_revoked)
        return mandate_error_set(err, MANDATE_DENIED,
                                 "%s: the refresh token's family was ended", store);
    return MANDATE_OK;
}

#define THREAD_SLOTS 16
static _Atomic uint64_t next_instance_id = 1;
static _Thread_local struct {
    uint64_t id;
    void *conn;
} thread_conns[THREAD_SLOTS];
static _Thread_local unsigned thread_next_slot;

uint64_t store_instance_id_new(void)
{
    return atomic_fetch_add(&next_instance_id, 1);
}

void *store_thread_conn_find(uint64_t id)
{
    for (size_t i = 0; i < THREAD_SLOTS; i++)
        if (thread_conns[i].id == id)
            return thread_conns[i].conn;
    return NULL;
}

void store_thread_conn_remember(uint64_t id, void *conn)
{
    /* round robin: the slots of destroyed instances are the oldest */
    unsigned slot = thread_next_slot++ % THREAD_SLOTS;
    thread_conns[slot].id = id;
    thread_conns[slot].conn = conn;
}

mandate_rc store_write_batch_check(const char *store, const mandate_store_write *writes,
                                   size_t n, size_t *bad_r, mandate_error *err)
{
    *bad_r = n;
    if (writes == NULL || n == 0 || n > MANDATE_STORE_WRITE_BATCH_MAX)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "%s: write_batch: %zu writes (1 to %d are taken)", store, n,
                                 MANDATE_STORE_WRITE_BATCH_MAX);
    for (size_t i = 0; i < n; i++)
        if (writes[i].op != MANDATE_STORE_WRITE_ONCE_PUT &&
            writes[i].op != MANDATE_STORE_WRITE_ONCE_SET &&
            writes[i].op != MANDATE_STORE_WRITE_SESSION_PUT) {
            *bad_r = i;
            return mandate_error_set(err, MANDATE_INVALID, "%s: write_batch: unknown op %d",
                                     store, (int)writes[i].op);
        }
    return MANDATE_OK;
}

mandate_rc store_write_on(const store_writer *sw, void *conn, const mandate_store_write *w,
                          mandate_error *err)
{
    switch (w->op) {
    case MANDATE_STORE_WRITE_ONCE_PUT:
    case MANDATE_STORE_WRITE_ONCE_SET: return sw->once_on(conn, w, err);
    case MANDATE_STORE_WRITE_SESSION_PUT: return sw->session_on(conn, w->session, err);
    }
    size_t bad;
    return store_write_batch_check(sw->name, w, 1, &bad, err);
}

mandate_rc store_batch_run(void *conn, store_batch *b, mandate_error *err)
{
    for (b->failed = 0; b->failed < b->n; b->failed++) {
        mandate_rc rc = store_write_on(b->writer, conn, &b->writes[b->failed], err);
        if (rc != MANDATE_OK)
            return rc;
    }
    return MANDATE_OK;
}

static mandate_store_write once_write(bool set, const char *ns, const unsigned char *key,
                                      size_t key_len, const char *value, int64_t expires_at,
                                      int64_t keep_until)
{
    return (mandate_store_write){set ? MANDATE_STORE_WRITE_ONCE_SET
                                     : MANDATE_STORE_WRITE_ONCE_PUT,
                                 ns,
                                 key,
                                 key_len,
                                 value,
                                 expires_at,
                                 set ? keep_until : 0,
                                 NULL};
}

static const store_writer *writer_of(void *inst)
{
    return *(const store_writer *const *)inst;
}

mandate_rc store_writer_once_put(void *inst, const char *ns, const unsigned char *key,
                                 size_t key_len, const char *value, int64_t expires_at,
                                 mandate_error *err)
{
    mandate_store_write w = once_write(false, ns, key, key_len, value, expires_at, 0);
    return writer_of(inst)->alone(inst, &w, err);
}

mandate_rc store_writer_once_set(void *inst, const char *ns, const unsigned char *key,
                                 size_t key_len, const char *value, int64_t expires_at,
                                 int64_t keep_until, mandate_error *err)
{
    mandate_store_write w = once_write(true, ns, key, key_len, value, expires_at, keep_until);
    return writer_of(inst)->alone(inst, &w, err);
}

mandate_rc store_writer_session_put(void *inst, const mandate_session *session,
                                    mandate_error *err)
{
    mandate_store_write w = {.op = MANDATE_STORE_WRITE_SESSION_PUT, .session = session};
    return writer_of(inst)->alone(inst, &w, err);
}

mandate_rc store_writer_batch(void *inst, const mandate_store_write *writes, size_t n,
                              size_t *failed_r, mandate_error *err)
{
    const store_writer *sw = writer_of(inst);
    store_batch b = {writes, n, n, sw};
    mandate_rc rc = store_write_batch_check(sw->name, writes, n, &b.failed, err);
    if (rc == MANDATE_OK)
        rc = sw->transaction(inst, &b, err);
    if (failed_r != NULL)
        *failed_r = rc == MANDATE_OK ? n : b.failed;
    return rc;
}
