#include "config.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <mandate/store.h>

#include "fake-host.h"
#include "pool-private.h"

const unsigned char fake_host_hash_key[32] = "mandate fake host test hash key";

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char last_log[1024];

static atomic_bool now_set;
static _Atomic int64_t now_value;

static const char *level_name(mandate_log_level level)
{
    switch (level) {
    case MANDATE_LOG_ERROR: return "error";
    case MANDATE_LOG_WARNING: return "warning";
    case MANDATE_LOG_INFO: return "info";
    case MANDATE_LOG_DEBUG: return "debug";
    }
    return "?";
}

static void fake_log(const mandate_host *host, mandate_log_level level, const char *file,
                     int line, const char *func, const char *fmt, ...) MANDATE_PRINTF(6, 7);
static void fake_log(const mandate_host *host, mandate_log_level level, const char *file,
                     int line, const char *func, const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&log_lock);
    va_start(ap, fmt);
    vsnprintf(last_log, sizeof(last_log), fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: [%s] %s:%d (%s): %s\n", host->instance, level_name(level), file, line,
            func, last_log);
    pthread_mutex_unlock(&log_lock);
}

static char *fake_pool_memdup(mandate_pool *pool, const void *p, size_t len)
{
    return mandate_pool_memdup(pool, p, len);
}

static int64_t fake_now(const mandate_host *host)
{
    if (atomic_load(&now_set))
        return atomic_load(&now_value);
    return (int64_t)time(NULL);
}

static mandate_rc fake_random(void *buf, size_t len)
{
    if (len > INT_MAX || RAND_bytes(buf, (int)len) != 1)
        return MANDATE_ERROR;
    return MANDATE_OK;
}

static void fake_wipe(void *buf, size_t len)
{
    OPENSSL_cleanse(buf, len);
}

static mandate_rc fake_keyed_hash(const mandate_host *host, const void *data, size_t len,
                                  unsigned char out[32], mandate_error *err)
{
    unsigned int out_len = 0;
    if (HMAC(EVP_sha256(), fake_host_hash_key, sizeof(fake_host_hash_key), data, len, out,
             &out_len) == NULL ||
        out_len != 32)
        return mandate_error_set(err, MANDATE_ERROR, "fake host: HMAC failed");
    return MANDATE_OK;
}

/* --- replay cache -------------------------------------------------------------
 * A list under a mutex: tests claim a handful of ids. An entry counts until
 * its expires_at is reached (expires_at <= now is gone), as in the sqlite
 * store; expired entries are dropped as the list is walked. */

struct replay_entry {
    struct replay_entry *next;
    int64_t expires_at;
    size_t ns_len;
    char key[]; /* ns, NUL, id, NUL */
};

static pthread_mutex_t replay_lock = PTHREAD_MUTEX_INITIALIZER;
static struct replay_entry *replay_head;

static mandate_rc fake_replay_claim(const mandate_host *host, const char *ns, const char *id,
                                    int64_t expires_at, mandate_error *err)
{
    if (ns == NULL || id == NULL)
        return mandate_error_set(err, MANDATE_INVALID, "fake host: replay: no namespace or id");
    int64_t now = fake_now(host);
    size_t ns_len = strlen(ns), id_len = strlen(id);
    mandate_rc rc = MANDATE_OK;
    pthread_mutex_lock(&replay_lock);
    struct replay_entry **pp = &replay_head;
    while (*pp != NULL) {
        struct replay_entry *e = *pp;
        if (e->expires_at <= now) {
            *pp = e->next;
            free(e);
            continue;
        }
        if (e->ns_len == ns_len && memcmp(e->key, ns, ns_len) == 0 &&
            strcmp(e->key + ns_len + 1, id) == 0) {
            rc = mandate_error_set(err, MANDATE_EXISTS,
                                   "fake host: replay: that id was already used in \"%s\"", ns);
            break;
        }
        pp = &e->next;
    }
    if (rc == MANDATE_OK && expires_at > now) {
        struct replay_entry *e = malloc(sizeof(*e) + ns_len + 1 + id_len + 1);
        if (e == NULL) {
            rc = mandate_error_set(err, MANDATE_ERROR, "fake host: replay: out of memory");
        } else {
            e->expires_at = expires_at;
            e->ns_len = ns_len;
            memcpy(e->key, ns, ns_len + 1);
            memcpy(e->key + ns_len + 1, id, id_len + 1);
            e->next = replay_head;
            replay_head = e;
        }
    }
    pthread_mutex_unlock(&replay_lock);
    return rc;
}

void fake_host_replay_reset(void)
{
    pthread_mutex_lock(&replay_lock);
    while (replay_head != NULL) {
        struct replay_entry *e = replay_head;
        replay_head = e->next;
        free(e);
    }
    pthread_mutex_unlock(&replay_lock);
}

/* --- token records ------------------------------------------------------------
 * An array under a mutex, searched linearly: tests store a few hundred
 * records at most. Each record is a deep copy owned by the array. */

static pthread_mutex_t token_lock = PTHREAD_MUTEX_INITIALIZER;
static mandate_token_record *token_records;
static size_t token_count, token_cap;

static void token_record_free(mandate_token_record *t)
{
    free((void *)t->token_hash);
    free((void *)t->jti);
    free((void *)t->client_id);
    free((void *)t->subject);
    free((void *)t->tenant);
    free((void *)t->grant);
    memset(t, 0, sizeof(*t));
}

/* strdup that keeps NULL; false when out of memory. */
static bool dup_or_null(const char *s, const char **out)
{
    *out = NULL;
    if (s == NULL)
        return true;
    return (*out = strdup(s)) != NULL;
}

/* The index of the record with that hash, or token_count; under token_lock. */
static size_t token_find(const unsigned char *hash, size_t hash_len)
{
    size_t i;
    for (i = 0; i < token_count; i++)
        if (token_records[i].token_hash_len == hash_len &&
            memcmp(token_records[i].token_hash, hash, hash_len) == 0)
            break;
    return i;
}

static mandate_rc fake_token_record_put(const mandate_host *host,
                                        const mandate_token_record *record, mandate_error *err)
{
    if (record == NULL || record->token_hash == NULL || record->token_hash_len == 0)
        return mandate_error_set(err, MANDATE_INVALID, "fake host: token_put: no token hash");
    mandate_token_record copy = {.token_hash_len = record->token_hash_len,
                                 .issued_at = record->issued_at,
                                 .expires_at = record->expires_at};
    unsigned char *hash = malloc(record->token_hash_len);
    copy.token_hash = hash;
    if (hash == NULL || !dup_or_null(record->jti, &copy.jti) ||
        !dup_or_null(record->client_id, &copy.client_id) ||
        !dup_or_null(record->subject, &copy.subject) ||
        !dup_or_null(record->tenant, &copy.tenant) ||
        !dup_or_null(record->grant, &copy.grant)) {
        token_record_free(&copy);
        return mandate_error_set(err, MANDATE_ERROR, "fake host: token_put: out of memory");
    }
    memcpy(hash, record->token_hash, record->token_hash_len);

    mandate_rc rc = MANDATE_OK;
    pthread_mutex_lock(&token_lock);
    if (token_find(copy.token_hash, copy.token_hash_len) < token_count) {
        rc = mandate_error_set(err, MANDATE_EXISTS,
                               "fake host: a token record with that hash exists");
    } else if (token_count == token_cap) {
        size_t cap = token_cap == 0 ? 16 : token_cap * 2;
        mandate_token_record *bigger = realloc(token_records, cap * sizeof(*bigger));
        if (bigger == NULL) {
            rc = mandate_error_set(err, MANDATE_ERROR, "fake host: token_put: out of memory");
        } else {
            token_records = bigger;
            token_cap = cap;
        }
    }
    if (rc == MANDATE_OK)
        token_records[token_count++] = copy;
    pthread_mutex_unlock(&token_lock);
    if (rc != MANDATE_OK)
        token_record_free(&copy);
    return rc;
}

static const char *pool_strdup_or_null(mandate_pool *pool, const char *s)
{
    return s != NULL ? mandate_pool_strdup(pool, s) : NULL;
}

static mandate_rc fake_token_record_get(const mandate_host *host, mandate_pool *pool,
                                        const unsigned char *hash, size_t hash_len,
                                        mandate_token_record *record_r, mandate_error *err)
{
    if (hash == NULL || hash_len == 0)
        return mandate_error_set(err, MANDATE_INVALID, "fake host: token_get: no token hash");
    int64_t now = fake_now(host);
    mandate_rc rc = MANDATE_OK;
    pthread_mutex_lock(&token_lock);
    size_t i = token_find(hash, hash_len);
    if (i == token_count || token_records[i].expires_at <= now) {
        rc = mandate_error_set(err, MANDATE_NOT_FOUND,
                               "fake host: no unexpired token record with that hash");
    } else {
        const mandate_token_record *t = &token_records[i];
        *record_r = (mandate_token_record){
            .token_hash = mandate_pool_memdup(pool, t->token_hash, t->token_hash_len),
            .token_hash_len = t->token_hash_len,
            .jti = pool_strdup_or_null(pool, t->jti),
            .client_id = pool_strdup_or_null(pool, t->client_id),
            .subject = pool_strdup_or_null(pool, t->subject),
            .tenant = pool_strdup_or_null(pool, t->tenant),
            .grant = pool_strdup_or_null(pool, t->grant),
            .issued_at = t->issued_at,
            .expires_at = t->expires_at,
        };
    }
    pthread_mutex_unlock(&token_lock);
    return rc;
}

void fake_host_token_reset(void)
{
    pthread_mutex_lock(&token_lock);
    for (size_t i = 0; i < token_count; i++)
        token_record_free(&token_records[i]);
    free(token_records);
    token_records = NULL;
    token_count = token_cap = 0;
    pthread_mutex_unlock(&token_lock);
}

size_t fake_host_token_count(void)
{
    pthread_mutex_lock(&token_lock);
    size_t n = token_count;
    pthread_mutex_unlock(&token_lock);
    return n;
}

int fake_host_token_record(size_t i, mandate_token_record *record_r)
{
    int ret = -1;
    pthread_mutex_lock(&token_lock);
    if (i < token_count) {
        *record_r = token_records[i];
        ret = 0;
    }
    pthread_mutex_unlock(&token_lock);
    return ret;
}

static mandate_host fake_host = {
    .abi_major = MANDATE_PLUGIN_ABI_MAJOR,
    .abi_minor = MANDATE_PLUGIN_ABI_MINOR,
    .instance = "test",
    .state_dir = NULL,
    .log = fake_log,
    .pool_alloc = mandate_pool_alloc,
    .pool_strdup = mandate_pool_strdup,
    .pool_memdup = fake_pool_memdup,
    .now = fake_now,
    .random = fake_random,
    .wipe = fake_wipe,
    .keyed_hash = fake_keyed_hash,
    .replay_claim = fake_replay_claim,
    .token_record_put = fake_token_record_put,
    .token_record_get = fake_token_record_get,
};

mandate_host *fake_host_get(void)
{
    return &fake_host;
}

static void quiet_log(const mandate_host *host, mandate_log_level level, const char *file,
                      int line, const char *func, const char *fmt, ...)
{
    (void)host, (void)level, (void)file, (void)line, (void)func, (void)fmt;
}

mandate_host *fake_host_quiet(int64_t now)
{
    fake_host.log = quiet_log;
    fake_host_set_now(now);
    return &fake_host;
}

const char *fake_host_last_log(void)
{
    return last_log;
}

void fake_host_clear_log(void)
{
    pthread_mutex_lock(&log_lock);
    last_log[0] = '\0';
    pthread_mutex_unlock(&log_lock);
}

void fake_host_set_now(int64_t t)
{
    atomic_store(&now_value, t);
    atomic_store(&now_set, true);
}

void fake_host_unset_now(void)
{
    atomic_store(&now_set, false);
}

/* --- conf ------------------------------------------------------------------- */

static const mandate_conf_def *conf_find(const mandate_plugin *plugin, const char *key)
{
    for (const mandate_conf_def *d = plugin->conf; d != NULL && d->key != NULL; d++)
        if (strcmp(d->key, key) == 0)
            return d;
    return NULL;
}

static bool in_choices(const char *choices, const char *value)
{
    size_t len = strlen(value);
    const char *p = choices;
    while (*p != '\0') {
        const char *end = strchr(p, '|');
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
        if (n == len && strncmp(p, value, n) == 0)
            return true;
        if (end == NULL)
            break;
        p = end + 1;
    }
    return false;
}

static void free_list(char **list)
{
    for (size_t i = 0; list != NULL && list[i] != NULL; i++)
        free(list[i]);
    free(list);
}

/* Words separated by spaces or commas. */
static char **parse_list(const char *value)
{
    size_t n = 0, cap = 4;
    char **list = calloc(cap, sizeof(*list));
    const char *p = value;
    if (list == NULL)
        return NULL;
    for (;;) {
        p += strspn(p, " ,\t");
        if (*p == '\0')
            break;
        size_t len = strcspn(p, " ,\t");
        if (n + 2 > cap) {
            char **bigger = realloc(list, (cap *= 2) * sizeof(*list));
            if (bigger == NULL) {
                free_list(list);
                return NULL;
            }
            list = bigger;
        }
        list[n++] = strndup(p, len);
        list[n] = NULL;
        p += len;
    }
    return list;
}

static int conf_apply(const mandate_conf_def *d, void *inst, const char *value)
{
    char *field = (char *)inst + d->offset;
    switch (d->type) {
    case MANDATE_CONF_STRING:
    case MANDATE_CONF_PATH: {
        if (d->type == MANDATE_CONF_STRING && d->choices != NULL &&
            !in_choices(d->choices, value))
            return -1;
        char *copy;
        if (d->type == MANDATE_CONF_PATH && value[0] != '/' && fake_host.state_dir != NULL) {
            size_t n = strlen(fake_host.state_dir) + strlen(value) + 2;
            copy = malloc(n);
            if (copy != NULL)
                snprintf(copy, n, "%s/%s", fake_host.state_dir, value);
        } else {
            copy = strdup(value);
        }
        if (copy == NULL)
            return -1;
        char **slot = (char **)(void *)field;
        free(*slot);
        *slot = copy;
        return 0;
    }
    case MANDATE_CONF_INT: {
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno != 0 || end == value || *end != '\0')
            return -1;
        if ((d->min != 0 || d->max != 0) && (v < d->min || v > d->max))
            return -1;
        int64_t v64 = v;
        memcpy(field, &v64, sizeof(v64));
        return 0;
    }
    case MANDATE_CONF_BOOL: {
        bool b;
        if (strcmp(value, "true") == 0 || strcmp(value, "yes") == 0 ||
            strcmp(value, "on") == 0 || strcmp(value, "1") == 0)
            b = true;
        else if (strcmp(value, "false") == 0 || strcmp(value, "no") == 0 ||
                 strcmp(value, "off") == 0 || strcmp(value, "0") == 0)
            b = false;
        else
            return -1;
        memcpy(field, &b, sizeof(b));
        return 0;
    }
    case MANDATE_CONF_STRING_LIST: {
        char **list = parse_list(value);
        if (list == NULL)
            return -1;
        char ***slot = (char ***)(void *)field;
        free_list(*slot);
        *slot = list;
        return 0;
    }
    }
    return -1;
}

int fake_conf_defaults(const mandate_plugin *plugin, void *inst)
{
    for (const mandate_conf_def *d = plugin->conf; d != NULL && d->key != NULL; d++)
        if (d->default_value != NULL && conf_apply(d, inst, d->default_value) != 0)
            return -1;
    return 0;
}

int fake_conf_set(const mandate_plugin *plugin, void *inst, const char *key, const char *value)
{
    const mandate_conf_def *d = conf_find(plugin, key);
    if (d == NULL || value == NULL)
        return -1;
    return conf_apply(d, inst, value);
}

void fake_conf_free(const mandate_plugin *plugin, void *inst)
{
    for (const mandate_conf_def *d = plugin->conf; d != NULL && d->key != NULL; d++) {
        char *field = (char *)inst + d->offset;
        if (d->type == MANDATE_CONF_STRING || d->type == MANDATE_CONF_PATH) {
            char **slot = (char **)(void *)field;
            free(*slot);
            *slot = NULL;
        } else if (d->type == MANDATE_CONF_STRING_LIST) {
            char ***slot = (char ***)(void *)field;
            free_list(*slot);
            *slot = NULL;
        }
    }
}

void *fake_instance_new(const mandate_plugin *plugin)
{
    void *inst = calloc(1, plugin->inst_size);
    if (inst != NULL && fake_conf_defaults(plugin, inst) != 0) {
        fake_conf_free(plugin, inst);
        free(inst);
        return NULL;
    }
    return inst;
}

void fake_instance_free(const mandate_plugin *plugin, void **inst)
{
    if (*inst == NULL)
        return;
    if (plugin->destroy != NULL)
        plugin->destroy(*inst);
    fake_conf_free(plugin, *inst);
    free(*inst);
    *inst = NULL;
}

fake_plugin_fx *fake_plugin_fx_new(int64_t now)
{
    fake_plugin_fx *fx = calloc(1, sizeof(*fx));
    if (fx == NULL)
        abort();
    fake_host_set_now(now);
    fake_host_clear_log();
    fx->pool = mandate_pool_new();
    return fx;
}

void fake_plugin_fx_free(const mandate_plugin *plugin, fake_plugin_fx *fx)
{
    fake_instance_free(plugin, &fx->inst);
    mandate_pool_free(&fx->pool);
    free(fx);
    fake_host_unset_now();
}
