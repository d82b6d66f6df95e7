/* The core's only caller of plugin operations: see plugins-private.h. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock-private.h"
#include "log-private.h"
#include "metrics-private.h"
#include "plugins-private.h"
#include "pool-private.h"
#include "util-private.h"

/* --- the bound on a blocking instance's calls ------------------------------ */

struct mandate_plugins_gate {
    pthread_mutex_t lock;
    pthread_cond_t
        freed; /* on CLOCK_MONOTONIC: a clock step neither cuts nor stretches a wait */
    unsigned slots, taken;
    /* refusals since the last warning, and the second it was logged: one
     * line a second says an overload, a line per refusal would add to it */
    _Atomic uint64_t refused;
    _Atomic int64_t said_at;
};

void mandate_plugins_gate_open(mandate_instance *in, unsigned workers)
{
    if (in->gate != NULL || (in->handle->plugin->flags & MANDATE_PLUGIN_BLOCKING) == 0)
        return;
    struct mandate_plugins_gate *g = mandate_xcalloc(1, sizeof(*g));
    mandate_cond_init_monotonic(&g->freed);
    pthread_mutex_init(&g->lock, NULL);
    g->slots = workers > 1 ? workers - 1 : 1;
    in->gate = g;
}

void mandate_plugins_gate_close(mandate_instance *in)
{
    struct mandate_plugins_gate *g = in->gate;
    if (g == NULL)
        return;
    pthread_cond_destroy(&g->freed);
    pthread_mutex_destroy(&g->lock);
    free(g);
    in->gate = NULL;
}

unsigned mandate_plugins_gate_slots(const mandate_instance *in)
{
    return in != NULL && in->gate != NULL ? in->gate->slots : 0;
}

static void busy_said(const mandate_instance *in, struct mandate_plugins_gate *g)
{
    uint64_t refused = atomic_fetch_add(&g->refused, 1) + 1;
    int64_t now = mandate_clock_now(), said = atomic_load(&g->said_at);
    if (said == now || !atomic_compare_exchange_strong(&g->said_at, &said, now))
        return;
    atomic_fetch_sub(&g->refused, refused);
    log_warning("%s: busy: all %u of its slots are taken (its calls may block on the "
                "network); %llu call%s refused with 503 since the last warning",
                in->conf->name, g->slots, (unsigned long long)refused, refused == 1 ? "" : "s");
}

/* A slot for one call: at once when one is free, else within
 * MANDATE_PLUGINS_BLOCKING_WAIT_MS, else MANDATE_TEMPFAIL. */
static mandate_rc enter(const mandate_instance *in, mandate_error *err)
{
    struct mandate_plugins_gate *g = in->gate;
    if (g == NULL)
        return MANDATE_OK;
    pthread_mutex_lock(&g->lock);
    if (g->taken == g->slots) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += (long)MANDATE_PLUGINS_BLOCKING_WAIT_MS * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        while (g->taken == g->slots &&
               pthread_cond_timedwait(&g->freed, &g->lock, &until) != ETIMEDOUT) {
        }
    }
    bool got = g->taken < g->slots;
    if (got)
        g->taken++;
    pthread_mutex_unlock(&g->lock);
    if (got)
        return MANDATE_OK;
    busy_said(in, g);
    /* callers name the instance: the message does not */
    return mandate_error_set(err, MANDATE_TEMPFAIL, "busy: all %u of its slots are taken",
                             g->slots);
}

static void leave(const mandate_instance *in)
{
    struct mandate_plugins_gate *g = in->gate;
    if (g == NULL)
        return;
    pthread_mutex_lock(&g->lock);
    g->taken--;
    pthread_cond_signal(&g->freed);
    pthread_mutex_unlock(&g->lock);
}

/* The ops of a started instance of that kind; NULL for any other. */
static const void *ops_of(const mandate_instance *in, mandate_plugin_kind kind)
{
    if (in == NULL || !in->instantiated || in->handle == NULL ||
        in->handle->plugin->kind != kind)
        return NULL;
    return in->handle->plugin->ops;
}

static uint16_t abi_minor(const mandate_instance *in)
{
    return in->handle->plugin->abi_minor;
}

/* rc_r = call, a call into in's plugin, made within in's bound. */
#define GATED(in, err, rc_r, call)                                                             \
    do {                                                                                       \
        *(rc_r) = enter(in, err);                                                              \
        if (*(rc_r) == MANDATE_OK) {                                                           \
            *(rc_r) = (call);                                                                  \
            leave(in);                                                                         \
        }                                                                                      \
    } while (0)

/* --- store ----------------------------------------------------------------- */

static const mandate_store_ops *store_ops(const mandate_instance *store)
{
    return ops_of(store, MANDATE_STORE);
}

/* Every answer of the store passes here: a failure is counted. */
static mandate_rc store_answer(mandate_rc rc)
{
    if (rc == MANDATE_TEMPFAIL || rc == MANDATE_ERROR)
        mandate_metrics_store_error();
    return rc;
}

/* The body of a store call: ops->op(inst, ...) within the instance's bound,
 * its answer counted. */
#define STORE_CALL(store, err, op, ...)                                                        \
    do {                                                                                       \
        const mandate_store_ops *ops_ = store_ops(store);                                      \
        if (ops_ == NULL)                                                                      \
            return store_answer(mandate_error_set(err, MANDATE_ERROR, "no store is ready"));   \
        mandate_rc rc_;                                                                        \
        GATED(store, err, &rc_, ops_->op(store->inst, __VA_ARGS__));                           \
        return store_answer(rc_);                                                              \
    } while (0)

mandate_rc mandate_store_ping(const mandate_instance *store, mandate_error *err)
{
    STORE_CALL(store, err, ping, err);
}

mandate_rc mandate_store_migrate(const mandate_instance *store, mandate_error *err)
{
    STORE_CALL(store, err, migrate, err);
}

mandate_rc mandate_store_generation(const mandate_instance *store, uint64_t *generation_r,
                                    mandate_error *err)
{
    STORE_CALL(store, err, generation, generation_r, err);
}

/* A client's registered metadata (ABI 1.5) goes only to a store that keeps
 * it: an older one would drop its redirect URIs without a word. */
static mandate_rc metadata_kept(const mandate_instance *store, const mandate_client *client,
                                mandate_error *err)
{
    if (client->metadata != NULL && abi_minor(store) < 5)
        return mandate_error_set(err, MANDATE_ERROR,
                                 "the store cannot keep a client's registered metadata "
                                 "(before store ABI 1.5)");
    return MANDATE_OK;
}

mandate_rc mandate_store_client_get(const mandate_instance *store, mandate_pool *pool,
                                    const char *client_id, mandate_client *client_r,
                                    mandate_error *err)
{
    /* an older store fills only the fields it knows */
    memset(client_r, 0, sizeof(*client_r));
    STORE_CALL(store, err, client_get, pool, client_id, client_r, err);
}

mandate_rc mandate_store_client_create(const mandate_instance *store,
                                       const mandate_client *client, mandate_error *err)
{
    if (metadata_kept(store, client, err) != MANDATE_OK)
        return store_answer(err->rc);
    STORE_CALL(store, err, client_create, client, err);
}

mandate_rc mandate_store_client_update(const mandate_instance *store,
                                       const mandate_client *client, mandate_error *err)
{
    if (metadata_kept(store, client, err) != MANDATE_OK)
        return store_answer(err->rc);
    STORE_CALL(store, err, client_update, client, err);
}

mandate_rc mandate_store_client_delete(const mandate_instance *store, const char *client_id,
                                       mandate_error *err)
{
    STORE_CALL(store, err, client_delete, client_id, err);
}

mandate_rc mandate_store_client_list(const mandate_instance *store,
                                     const mandate_client_filter *filter,
                                     mandate_client_cb each, void *ctx, mandate_error *err)
{
    STORE_CALL(store, err, client_list, filter, each, ctx, err);
}

mandate_rc mandate_store_client_import(const mandate_instance *store,
                                       const mandate_client *clients, size_t n,
                                       mandate_error *err)
{
    STORE_CALL(store, err, client_import, clients, n, err);
}

mandate_rc mandate_store_key_add(const mandate_instance *store, const mandate_key *key,
                                 mandate_error *err)
{
    STORE_CALL(store, err, key_add, key, err);
}

mandate_rc mandate_store_key_update(const mandate_instance *store, const mandate_key *key,
                                    mandate_error *err)
{
    STORE_CALL(store, err, key_update, key, err);
}

mandate_rc mandate_store_key_list(const mandate_instance *store, mandate_key_cb each, void *ctx,
                                  mandate_error *err)
{
    STORE_CALL(store, err, key_list, each, ctx, err);
}

mandate_rc mandate_store_key_delete(const mandate_instance *store, const char *kid,
                                    mandate_error *err)
{
    STORE_CALL(store, err, key_delete, kid, err);
}

mandate_rc mandate_store_token_put(const mandate_instance *store,
                                   const mandate_token_record *record, mandate_error *err)
{
    STORE_CALL(store, err, token_put, record, err);
}

mandate_rc mandate_store_token_get(const mandate_instance *store, mandate_pool *pool,
                                   const unsigned char *hash, size_t hash_len, int64_t now,
                                   mandate_token_record *record_r, mandate_error *err)
{
    STORE_CALL(store, err, token_get, pool, hash, hash_len, now, record_r, err);
}

mandate_rc mandate_store_revoke(const mandate_instance *store, const char *jti,
                                const char *client_id, int64_t expires_at, mandate_error *err)
{
    STORE_CALL(store, err, revoke, jti, client_id, expires_at, err);
}

mandate_rc mandate_store_is_revoked(const mandate_instance *store, const char *jti,
                                    bool *revoked_r, mandate_error *err)
{
    STORE_CALL(store, err, is_revoked, jti, revoked_r, err);
}

mandate_rc mandate_store_replay_claim(const mandate_instance *store, const char *ns,
                                      const char *id, int64_t expires_at, mandate_error *err)
{
    STORE_CALL(store, err, replay_claim, ns, id, expires_at, err);
}

mandate_rc mandate_store_purge(const mandate_instance *store, int64_t now, uint64_t *count_r,
                               mandate_error *err)
{
    STORE_CALL(store, err, purge, now, count_r, err);
}

bool mandate_store_can_list(const mandate_instance *store)
{
    const mandate_store_ops *ops = store_ops(store);
    return ops != NULL && abi_minor(store) >= 2 && ops->revocation_list != NULL &&
           ops->token_list != NULL && ops->replay_list != NULL;
}

/* The body of a list of ABI 1.2: refused by a store that cannot list. */
#define STORE_LIST(store, err, op, ...)                                                        \
    do {                                                                                       \
        if (!mandate_store_can_list(store))                                                    \
            return mandate_error_set(err, MANDATE_ERROR,                                       \
                                     "the store cannot list its rows (before store ABI 1.2)"); \
        STORE_CALL(store, err, op, __VA_ARGS__);                                               \
    } while (0)

mandate_rc mandate_store_revocation_list(const mandate_instance *store, int64_t now,
                                         mandate_revocation_cb each, void *ctx,
                                         mandate_error *err)
{
    STORE_LIST(store, err, revocation_list, now, each, ctx, err);
}

mandate_rc mandate_store_token_list(const mandate_instance *store, int64_t now,
                                    mandate_token_record_cb each, void *ctx, mandate_error *err)
{
    STORE_LIST(store, err, token_list, now, each, ctx, err);
}

mandate_rc mandate_store_replay_list(const mandate_instance *store, int64_t now,
                                     mandate_replay_cb each, void *ctx, mandate_error *err)
{
    STORE_LIST(store, err, replay_list, now, each, ctx, err);
}

/* --- store: sign-in (ABI 1.5) ------------------------------------------------ */

bool mandate_store_signs_in(const mandate_instance *store)
{
    const mandate_store_ops *ops = store_ops(store);
    return ops != NULL && abi_minor(store) >= 5 && ops->once_put != NULL &&
           ops->once_take != NULL && ops->auth_code_put != NULL && ops->auth_code_take != NULL &&
           ops->refresh_put != NULL && ops->refresh_get != NULL && ops->refresh_rotate != NULL &&
           ops->refresh_revoke_family != NULL && ops->refresh_revoke_subject != NULL &&
           ops->session_put != NULL && ops->session_get != NULL && ops->session_touch != NULL &&
           ops->session_delete != NULL && ops->session_delete_subject != NULL &&
           ops->consent_put != NULL && ops->consent_get != NULL &&
           ops->consent_delete != NULL && ops->consent_list != NULL &&
           ops->client_document_put != NULL && ops->client_document_get != NULL &&
           ops->lineage_add != NULL && ops->revoke_descendants != NULL;
}

/* The body of a sign-in call: refused by a store without ABI 1.5, which
 * mandated says at start when sign-in is configured. */
#define STORE_SIGNIN(store, err, op, ...)                                                      \
    do {                                                                                       \
        if (!mandate_store_signs_in(store))                                                    \
            return mandate_error_set(err, MANDATE_ERROR,                                       \
                                     "the store cannot keep sign-ins (before store ABI 1.5)"); \
        STORE_CALL(store, err, op, __VA_ARGS__);                                               \
    } while (0)

mandate_rc mandate_store_once_put(const mandate_instance *store, const char *ns,
                                  const unsigned char *key, size_t key_len, const char *value,
                                  int64_t expires_at, mandate_error *err)
{
    STORE_SIGNIN(store, err, once_put, ns, key, key_len, value, expires_at, err);
}

mandate_rc mandate_store_once_take(const mandate_instance *store, mandate_pool *pool,
                                   const char *ns, const unsigned char *key, size_t key_len,
                                   int64_t now, char **value_r, mandate_error *err)
{
    STORE_SIGNIN(store, err, once_take, pool, ns, key, key_len, now, value_r, err);
}

static mandate_rc once_take_and_put(const mandate_instance *store, const char *ns,
                                    const unsigned char *key, size_t key_len,
                                    const char *value, int64_t expires_at, mandate_error *err)
{
    mandate_pool *pool = mandate_pool_new();
    if (pool == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "out of memory");
    char *old = NULL;
    mandate_rc rc = mandate_store_once_take(store, pool, ns, key, key_len, mandate_clock_now(),
                                            &old, err);
    mandate_pool_free(&pool);
    if (rc == MANDATE_OK || rc == MANDATE_NOT_FOUND)
        rc = mandate_store_once_put(store, ns, key, key_len, value, expires_at, err);
    /* another request put one in between: the newer value stands */
    return rc == MANDATE_EXISTS ? MANDATE_OK : rc;
}

mandate_rc mandate_store_once_set(const mandate_instance *store, const char *ns,
                                  const unsigned char *key, size_t key_len, const char *value,
                                  int64_t expires_at, int64_t keep_until, mandate_error *err)
{
    const mandate_store_ops *ops = store_ops(store);
    if (ops == NULL || abi_minor(store) < 7 || ops->once_set == NULL)
        return once_take_and_put(store, ns, key, key_len, value, expires_at, err);
    STORE_SIGNIN(store, err, once_set, ns, key, key_len, value, expires_at, keep_until, err);
}

static mandate_rc write_alone(const mandate_instance *store, const mandate_store_write *w,
                              mandate_error *err)
{
    switch (w->op) {
    case MANDATE_STORE_WRITE_ONCE_PUT:
        return mandate_store_once_put(store, w->ns, w->key, w->key_len, w->value, w->expires_at,
                                      err);
    case MANDATE_STORE_WRITE_ONCE_SET:
        return mandate_store_once_set(store, w->ns, w->key, w->key_len, w->value, w->expires_at,
                                      w->keep_until, err);
    case MANDATE_STORE_WRITE_SESSION_PUT:
        return mandate_store_session_put(store, w->session, err);
    }
    return mandate_error_set(err, MANDATE_INVALID, "write_batch: unknown op %d", (int)w->op);
}

mandate_rc mandate_store_write_batch(const mandate_instance *store,
                                     const mandate_store_write *writes, size_t n,
                                     size_t *failed_r, mandate_error *err)
{
    size_t failed_ignored;
    if (failed_r == NULL)
        failed_r = &failed_ignored;
    *failed_r = n;
    const mandate_store_ops *ops = store_ops(store);
    if (ops != NULL && abi_minor(store) >= 8 && ops->write_batch != NULL)
        STORE_SIGNIN(store, err, write_batch, writes, n, failed_r, err);
    if (n == 0 || n > MANDATE_STORE_WRITE_BATCH_MAX)
        return mandate_error_set(err, MANDATE_INVALID, "write_batch: %zu writes", n);
    for (size_t i = 0; i < n; i++) {
        mandate_rc rc = write_alone(store, &writes[i], err);
        if (rc != MANDATE_OK) {
            *failed_r = i;
            return rc;
        }
    }
    return MANDATE_OK;
}

mandate_rc mandate_store_auth_code_put(const mandate_instance *store,
                                       const mandate_auth_code *code, mandate_error *err)
{
    STORE_SIGNIN(store, err, auth_code_put, code, err);
}

mandate_rc mandate_store_auth_code_take(const mandate_instance *store, mandate_pool *pool,
                                        const unsigned char *hash, size_t hash_len, int64_t now,
                                        mandate_auth_code *code_r, mandate_error *err)
{
    memset(code_r, 0, sizeof(*code_r));
    STORE_SIGNIN(store, err, auth_code_take, pool, hash, hash_len, now, code_r, err);
}

mandate_rc mandate_store_refresh_put(const mandate_instance *store,
                                     const mandate_refresh_token *token, mandate_error *err)
{
    STORE_SIGNIN(store, err, refresh_put, token, err);
}

mandate_rc mandate_store_refresh_get(const mandate_instance *store, mandate_pool *pool,
                                     const unsigned char *hash, size_t hash_len, int64_t now,
                                     mandate_refresh_token *token_r, mandate_error *err)
{
    memset(token_r, 0, sizeof(*token_r));
    STORE_SIGNIN(store, err, refresh_get, pool, hash, hash_len, now, token_r, err);
}

mandate_rc mandate_store_refresh_rotate(const mandate_instance *store, mandate_pool *pool,
                                        const unsigned char *old_hash, size_t old_hash_len,
                                        int64_t now, const mandate_refresh_token *next,
                                        mandate_refresh_token *old_r, mandate_error *err)
{
    memset(old_r, 0, sizeof(*old_r));
    STORE_SIGNIN(store, err, refresh_rotate, pool, old_hash, old_hash_len, now, next, old_r,
                 err);
}

mandate_rc mandate_store_refresh_revoke_family(const mandate_instance *store,
                                               const char *family_id, uint64_t *count_r,
                                               mandate_error *err)
{
    STORE_SIGNIN(store, err, refresh_revoke_family, family_id, count_r, err);
}

mandate_rc mandate_store_refresh_revoke_subject(const mandate_instance *store,
                                                const char *tenant, const char *subject,
                                                uint64_t *count_r, mandate_error *err)
{
    STORE_SIGNIN(store, err, refresh_revoke_subject, tenant, subject, count_r, err);
}

mandate_rc mandate_store_session_put(const mandate_instance *store,
                                     const mandate_session *session, mandate_error *err)
{
    STORE_SIGNIN(store, err, session_put, session, err);
}

mandate_rc mandate_store_session_get(const mandate_instance *store, mandate_pool *pool,
                                     const unsigned char *hash, size_t hash_len, int64_t now,
                                     mandate_session *session_r, mandate_error *err)
{
    memset(session_r, 0, sizeof(*session_r));
    STORE_SIGNIN(store, err, session_get, pool, hash, hash_len, now, session_r, err);
}

mandate_rc mandate_store_session_touch(const mandate_instance *store, const unsigned char *hash,
                                       size_t hash_len, int64_t now, mandate_error *err)
{
    STORE_SIGNIN(store, err, session_touch, hash, hash_len, now, err);
}

mandate_rc mandate_store_session_delete(const mandate_instance *store, const unsigned char *hash,
                                        size_t hash_len, mandate_error *err)
{
    STORE_SIGNIN(store, err, session_delete, hash, hash_len, err);
}

mandate_rc mandate_store_session_delete_subject(const mandate_instance *store,
                                                const char *tenant, const char *subject,
                                                uint64_t *count_r, mandate_error *err)
{
    STORE_SIGNIN(store, err, session_delete_subject, tenant, subject, count_r, err);
}

mandate_rc mandate_store_consent_put(const mandate_instance *store,
                                     const mandate_consent *consent, mandate_error *err)
{
    STORE_SIGNIN(store, err, consent_put, consent, err);
}

mandate_rc mandate_store_consent_get(const mandate_instance *store, mandate_pool *pool,
                                     const char *tenant, const char *subject,
                                     const char *client_id, int64_t now,
                                     mandate_consent *consent_r, mandate_error *err)
{
    memset(consent_r, 0, sizeof(*consent_r));
    STORE_SIGNIN(store, err, consent_get, pool, tenant, subject, client_id, now, consent_r, err);
}

mandate_rc mandate_store_consent_delete(const mandate_instance *store, const char *tenant,
                                        const char *subject, const char *client_id,
                                        mandate_error *err)
{
    STORE_SIGNIN(store, err, consent_delete, tenant, subject, client_id, err);
}

mandate_rc mandate_store_consent_list(const mandate_instance *store, const char *tenant,
                                      const char *subject, mandate_consent_cb each, void *ctx,
                                      mandate_error *err)
{
    STORE_SIGNIN(store, err, consent_list, tenant, subject, each, ctx, err);
}

mandate_rc mandate_store_client_document_put(const mandate_instance *store,
                                             const mandate_client_document *doc,
                                             mandate_error *err)
{
    STORE_SIGNIN(store, err, client_document_put, doc, err);
}

mandate_rc mandate_store_client_document_get(const mandate_instance *store, mandate_pool *pool,
                                             const char *url, mandate_client_document *doc_r,
                                             mandate_error *err)
{
    memset(doc_r, 0, sizeof(*doc_r));
    STORE_SIGNIN(store, err, client_document_get, pool, url, doc_r, err);
}

mandate_rc mandate_store_lineage_add(const mandate_instance *store, const char *jti,
                                     const char *parent, const char *client_id,
                                     int64_t expires_at, mandate_error *err)
{
    STORE_SIGNIN(store, err, lineage_add, jti, parent, client_id, expires_at, err);
}

mandate_rc mandate_store_revoke_descendants(const mandate_instance *store, const char *root,
                                            uint64_t *count_r, mandate_error *err)
{
    STORE_SIGNIN(store, err, revoke_descendants, root, count_r, err);
}

/* --- backend --------------------------------------------------------------- */

static const mandate_backend_ops *backend_ops(const mandate_instance *in)
{
    return ops_of(in, MANDATE_BACKEND);
}

/* code, "instance '<name>' <what>": an instance that cannot, or a plugin's
 * answer that lacks what it must hold. */
static mandate_rc instance_refused(const mandate_instance *in, mandate_rc code,
                                   const char *what, mandate_error *err)
{
    return mandate_error_set(err, code, "instance '%s' %s", in->conf->name, what);
}

/* rc = ops->op(inst, ...) within in's bound, made only when able(in) says
 * the instance offers it (else return refusal, "offers no <offer>"). */
#define BACKEND_CALL(rc, in, err, able, refusal, offer, op, ...)                               \
    do {                                                                                       \
        if (!able(in))                                                                         \
            return instance_refused(in, refusal, "offers no " offer, err);                     \
        GATED(in, err, &(rc), backend_ops(in)->op(in->inst, __VA_ARGS__));                     \
    } while (0)

bool mandate_backend_authenticates(const mandate_instance *in)
{
    const mandate_backend_ops *ops = backend_ops(in);
    return ops != NULL && ops->authenticate_client != NULL;
}

bool mandate_backend_provisions(const mandate_instance *in)
{
    const mandate_backend_ops *ops = backend_ops(in);
    return ops != NULL && ops->provision != NULL;
}

bool mandate_backend_validates(const mandate_instance *in)
{
    const mandate_backend_ops *ops = backend_ops(in);
    return ops != NULL && ops->validate_assertion != NULL;
}

bool mandate_backend_accepts(const mandate_instance *in, const char *token_type)
{
    if (!mandate_backend_validates(in))
        return false;
    for (const char *const *t = backend_ops(in)->assertion_types; t != NULL && *t != NULL; t++)
        if (strcmp(*t, token_type) == 0)
            return true;
    return false;
}

mandate_rc mandate_backend_authenticate(const mandate_instance *in, mandate_pool *pool,
                                        const mandate_credential *cred,
                                        const mandate_client *client, mandate_error *err)
{
    if (!mandate_backend_authenticates(in))
        return MANDATE_NEXT;
    mandate_rc rc;
    GATED(in, err, &rc,
          backend_ops(in)->authenticate_client(in->inst, pool, cred, client, err));
    return rc;
}

mandate_rc mandate_backend_validate(const mandate_instance *in, mandate_pool *pool,
                                    const char *token_type, const char *assertion, size_t len,
                                    mandate_identity *identity_r, mandate_error *err)
{
    if (!mandate_backend_validates(in))
        return MANDATE_NEXT;
    mandate_rc rc;
    GATED(in, err, &rc,
          backend_ops(in)->validate_assertion(in->inst, pool, token_type, assertion, len,
                                              identity_r, err));
    return rc;
}

mandate_rc mandate_backend_provision(const mandate_instance *in, mandate_pool *pool,
                                     mandate_provision_mode mode, mandate_client *client,
                                     char **secret_r, mandate_error *err)
{
    if (!mandate_backend_provisions(in))
        return mandate_error_set(err, MANDATE_INVALID, "backend '%s' cannot make secrets",
                                 in != NULL ? in->conf->name : "(none)");
    mandate_rc rc;
    GATED(in, err, &rc,
          backend_ops(in)->provision(in->inst, pool, mode, client, secret_r, err));
    return rc;
}

const char *mandate_backend_status(const mandate_instance *in, mandate_pool *pool,
                                   const char **detail_r)
{
    const mandate_backend_ops *ops = backend_ops(in);
    *detail_r = NULL;
    if (ops == NULL || abi_minor(in) < 3 || ops->status == NULL)
        return NULL;
    const char *state = ops->status(in->inst, pool, detail_r);
    return state != NULL ? state : MANDATE_BACKEND_STATE_UNKNOWN;
}

bool mandate_backend_signs_in(const mandate_instance *in)
{
    const mandate_backend_ops *ops = backend_ops(in);
    return ops != NULL && abi_minor(in) >= 5 && ops->login_start != NULL &&
           ops->login_finish != NULL;
}

mandate_rc mandate_backend_login_start(const mandate_instance *in, mandate_pool *pool,
                                       const mandate_login_request *request,
                                       mandate_login_redirect *redirect_r, mandate_error *err)
{
    memset(redirect_r, 0, sizeof(*redirect_r));
    mandate_rc rc;
    BACKEND_CALL(rc, in, err, mandate_backend_signs_in, MANDATE_ERROR, "sign-in", login_start,
                 pool, request, redirect_r, err);
    if (rc == MANDATE_OK && redirect_r->url == NULL)
        return instance_refused(in, MANDATE_ERROR, "gave no address to sign in at", err);
    return rc;
}

mandate_rc mandate_backend_login_finish(const mandate_instance *in, mandate_pool *pool,
                                        const mandate_login_response *response,
                                        mandate_identity *identity_r, mandate_error *err)
{
    memset(identity_r, 0, sizeof(*identity_r));
    mandate_rc rc;
    BACKEND_CALL(rc, in, err, mandate_backend_signs_in, MANDATE_ERROR, "sign-in", login_finish,
                 pool, response, identity_r, err);
    if (rc == MANDATE_OK && (identity_r->subject == NULL || identity_r->subject[0] == '\0'))
        return instance_refused(in, MANDATE_INVALID, "signed in no subject", err);
    return rc;
}

bool mandate_backend_publishes_login_metadata(const mandate_instance *in)
{
    const mandate_backend_ops *ops = backend_ops(in);
    return ops != NULL && abi_minor(in) >= 5 && ops->login_metadata != NULL;
}

mandate_rc mandate_backend_login_metadata(const mandate_instance *in, mandate_pool *pool,
                                          const char *callback_url, char **text_r,
                                          const char **content_type_r, mandate_error *err)
{
    *text_r = NULL;
    *content_type_r = NULL;
    if (!mandate_backend_publishes_login_metadata(in))
        return instance_refused(in, MANDATE_NOT_FOUND, "publishes no metadata", err);
    mandate_rc rc;
    GATED(in, err, &rc,
          backend_ops(in)->login_metadata(in->inst, pool, callback_url, text_r, content_type_r,
                                          err));
    return rc;
}

bool mandate_backend_logs_out(const mandate_instance *in)
{
    const mandate_backend_ops *ops = backend_ops(in);
    return ops != NULL && abi_minor(in) >= 6 && ops->logout_start != NULL &&
           ops->logout_finish != NULL;
}

bool mandate_backend_session_refs(const mandate_instance *in, const mandate_identity *id,
                                  const char **ref_r, const char **key_r)
{
    /* a plugin before 1.6 knows no such fields: the core zeroed them */
    bool ok = mandate_backend_logs_out(in) && id->session_ref != NULL &&
              id->session_key != NULL;
    *ref_r = ok ? id->session_ref : NULL;
    *key_r = ok ? id->session_key : NULL;
    return ok;
}

mandate_rc mandate_backend_logout_start(const mandate_instance *in, mandate_pool *pool,
                                        const mandate_logout_request *request,
                                        mandate_login_redirect *redirect_r, mandate_error *err)
{
    memset(redirect_r, 0, sizeof(*redirect_r));
    mandate_rc rc;
    BACKEND_CALL(rc, in, err, mandate_backend_logs_out, MANDATE_NOT_FOUND, "logout",
                 logout_start, pool, request, redirect_r, err);
    if (rc == MANDATE_OK && redirect_r->url == NULL)
        return instance_refused(in, MANDATE_ERROR, "gave no address to log out at", err);
    return rc;
}

mandate_rc mandate_backend_logout_finish(const mandate_instance *in, mandate_pool *pool,
                                         const mandate_logout_message *message,
                                         mandate_logout_result *result_r, mandate_error *err)
{
    memset(result_r, 0, sizeof(*result_r));
    mandate_rc rc;
    BACKEND_CALL(rc, in, err, mandate_backend_logs_out, MANDATE_NOT_FOUND, "logout",
                 logout_finish, pool, message, result_r, err);
    if (rc == MANDATE_OK && result_r->kind == MANDATE_LOGOUT_ASKED &&
        (result_r->done_url == NULL || result_r->unknown_url == NULL ||
         result_r->key_count > MANDATE_LOGOUT_KEYS_MAX))
        return instance_refused(in, MANDATE_ERROR, "gave no answer to the IdP's logout request",
                                err);
    if (rc == MANDATE_OK && result_r->kind != MANDATE_LOGOUT_ASKED &&
        result_r->kind != MANDATE_LOGOUT_ANSWERED)
        return instance_refused(in, MANDATE_ERROR, "said nothing of the logout", err);
    return rc;
}

/* --- format ---------------------------------------------------------------- */

static const mandate_format_ops *format_ops(const mandate_instance *in)
{
    return ops_of(in, MANDATE_FORMAT);
}

bool mandate_format_parses(const mandate_instance *in)
{
    const mandate_format_ops *ops = format_ops(in);
    return ops != NULL && ops->parse != NULL;
}

bool mandate_format_has_keys(const mandate_instance *in)
{
    const mandate_format_ops *ops = format_ops(in);
    return ops != NULL && ops->keygen != NULL && ops->set_keys != NULL;
}

bool mandate_format_signs(const mandate_instance *in)
{
    const mandate_format_ops *ops = format_ops(in);
    return ops != NULL && abi_minor(in) >= 3 && ops->sign != NULL;
}

bool mandate_format_carries_actors(const mandate_instance *in)
{
    return format_ops(in) != NULL && abi_minor(in) >= 4;
}

/* What a format cannot do: MANDATE_ERROR naming it. */
static mandate_rc format_cannot(const mandate_instance *in, const char *what,
                                mandate_error *err)
{
    return mandate_error_set(err, MANDATE_ERROR, "format '%s' cannot %s",
                             in != NULL ? in->conf->name : "(none)", what);
}

mandate_rc mandate_format_mint(const mandate_instance *in, mandate_pool *pool,
                               const mandate_grant *grant, char **token_r, mandate_error *err)
{
    const mandate_format_ops *ops = format_ops(in);
    if (ops == NULL || ops->mint == NULL)
        return format_cannot(in, "mint", err);
    if (grant->prior_actors != NULL && !mandate_format_carries_actors(in))
        return format_cannot(in, "carry a chain of actors (before plugin ABI 1.4)", err);
    /* format.h: a format that cannot carry a binding must not mint the
     * token as a bearer one */
    if ((grant->cnf_jkt != NULL || grant->cnf_x5t_s256 != NULL) && abi_minor(in) < 5)
        return format_cannot(in, "carry a key binding, cnf (before plugin ABI 1.5)", err);
    mandate_rc rc;
    GATED(in, err, &rc, ops->mint(in->inst, pool, grant, token_r, err));
    return rc;
}

mandate_rc mandate_format_parse(const mandate_instance *in, mandate_pool *pool,
                                const char *token, size_t len, mandate_grant *grant_r,
                                mandate_error *err)
{
    if (!mandate_format_parses(in))
        return MANDATE_NEXT;
    mandate_rc rc;
    GATED(in, err, &rc, format_ops(in)->parse(in->inst, pool, token, len, grant_r, err));
    /* a format of before ABI 1.4 knows nothing of prior_actors: what lies
     * there is not its answer */
    if (!mandate_format_carries_actors(in))
        grant_r->prior_actors = NULL;
    if (abi_minor(in) < 5) /* nor of the binding: a bearer token */
        grant_r->auth_time = 0, grant_r->cnf_jkt = grant_r->cnf_x5t_s256 = NULL;
    if (abi_minor(in) < 6)
        grant_r->may_act = NULL;
    if (abi_minor(in) < 9) /* nor of where a chain began (format.h) */
        grant_r->origin_client_id = NULL;
    return rc;
}

mandate_rc mandate_format_keygen(const mandate_instance *in, mandate_pool *pool,
                                 const char *alg, mandate_key *key_r,
                                 unsigned char **private_der_r, size_t *private_der_len_r,
                                 mandate_error *err)
{
    if (!mandate_format_has_keys(in))
        return format_cannot(in, "make keys", err);
    mandate_rc rc;
    GATED(in, err, &rc,
          format_ops(in)->keygen(in->inst, pool, alg, key_r, private_der_r, private_der_len_r,
                                 err));
    return rc;
}

mandate_rc mandate_format_set_keys(const mandate_instance *in, const mandate_signing_key *keys,
                                   size_t n, mandate_error *err)
{
    if (!mandate_format_has_keys(in))
        return format_cannot(in, "take keys", err);
    mandate_rc rc;
    GATED(in, err, &rc, format_ops(in)->set_keys(in->inst, keys, n, err));
    return rc;
}

mandate_rc mandate_format_sign(const mandate_instance *in, mandate_pool *pool, const char *typ,
                               const char *claims, size_t claims_len, char **jws_r,
                               mandate_error *err)
{
    if (!mandate_format_signs(in))
        return format_cannot(in, "sign other JWTs (before plugin ABI 1.3, or no sign)", err);
    mandate_rc rc;
    GATED(in, err, &rc,
          format_ops(in)->sign(in->inst, pool, typ, claims, claims_len, jws_r, err));
    return rc;
}
