/* Mandate plugin ABI: the descriptor every plugin exports, the return codes,
 * the error record, the request pool and the host table through which a
 * plugin reaches the core.
 *
 * Compatibility rules:
 *  - a plugin whose abi_major differs from MANDATE_PLUGIN_ABI_MAJOR is refused
 *    before any of its code runs;
 *  - structs only ever grow at the end; a field added in minor N is read by
 *    the other side only when its peer's abi_minor is >= N.
 *
 * Plugins never link against core symbols: everything they need arrives
 * through the mandate_host table handed to instantiate(). */
#ifndef MANDATE_PLUGIN_H
#define MANDATE_PLUGIN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MANDATE_PLUGIN_MAGIC 0x4d4e4454u /* "MNDT" */
#define MANDATE_PLUGIN_ABI_MAJOR 1
#define MANDATE_PLUGIN_ABI_MINOR 10 /* 1: token records in the host; 2: store list ops;
                                     3: backend status; 4: the grant's prior_actors;
                                     5: sign-in (store: codes, refresh tokens, sessions,
                                     consents, client documents, one-time records, lineage;
                                     client metadata; backend login ops; the grant's
                                     auth_time and key bindings); 6: the grant's may_act,
                                     single logout (backend logout ops, the
                                     identity's session_ref and session_key); 7: the
                                     store's once_set; 8: the store's
                                     write_batch; 9: the grant's
                                     origin_client_id; 10: the login
                                     response's method */

#if defined(__GNUC__)
#define MANDATE_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define MANDATE_PRINTF(f, a)
#endif

typedef enum mandate_rc {
    MANDATE_OK = 0,
    MANDATE_NEXT,      /* not mine: the core asks the next plugin */
    MANDATE_DENIED,    /* well-formed, but refused (wrong secret, replay) */
    MANDATE_INVALID,   /* malformed input */
    MANDATE_EXPIRED,   /* was valid, is no longer */
    MANDATE_NOT_FOUND, /* no such record */
    MANDATE_EXISTS,    /* a record with that key is already there */
    MANDATE_TEMPFAIL,  /* try again later: upstream or store unreachable */
    MANDATE_ERROR      /* a fault on our side */
} mandate_rc;

/* Caller-owned error detail. The message goes to the log and the audit
 * trail, never to an OAuth client. */
#define MANDATE_ERROR_MAX 256
typedef struct mandate_error {
    mandate_rc rc;
    char message[MANDATE_ERROR_MAX];
} mandate_error;

/* Makes s valid UTF-8 in place: every byte that does not belong to a
 * well-formed sequence (a character cut by a %.40s or by the message's
 * size, a stray byte quoted from outside input) becomes '?'. An error
 * message ends up in JSON and on pages, which hold only valid UTF-8. */
static inline void mandate_utf8_repair(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p != '\0') {
        size_t n = *p < 0x80 ? 1 : *p >= 0xC2 && *p <= 0xDF ? 2 : *p >= 0xE0 && *p <= 0xEF ? 3
                   : *p >= 0xF0 && *p <= 0xF4                ? 4
                                                              : 0;
        /* the second byte's range rules out overlong forms, surrogates and
         * code points past U+10FFFF (RFC 3629 §4) */
        unsigned char lo = *p == 0xE0 ? 0xA0 : *p == 0xF0 ? 0x90 : 0x80;
        unsigned char hi = *p == 0xED ? 0x9F : *p == 0xF4 ? 0x8F : 0xBF;
        bool ok = n > 0;
        for (size_t i = 1; ok && i < n; i++)
            ok = i == 1 ? p[i] >= lo && p[i] <= hi : p[i] >= 0x80 && p[i] <= 0xBF;
        if (!ok) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}

/* A header-only setter, so plugins need no core symbol to use it.
 * Returns rc, so `return mandate_error_set(err, MANDATE_INVALID, ...)` reads
 * naturally. err may be NULL. The message is made valid UTF-8. */
static inline mandate_rc mandate_error_set(mandate_error *err, mandate_rc rc,
                                           const char *fmt, ...)
    MANDATE_PRINTF(3, 4);
static inline mandate_rc mandate_error_set(mandate_error *err, mandate_rc rc,
                                           const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        err->rc = rc;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
        mandate_utf8_repair(err->message);
    }
    return rc;
}

/* Request-scoped arena. Everything a plugin returns through an `_r`
 * parameter is allocated from the pool it was given; the caller releases the
 * pool as a whole and the plugin never frees those allocations. */
typedef struct mandate_pool mandate_pool;

typedef enum mandate_log_level {
    MANDATE_LOG_ERROR = 0,
    MANDATE_LOG_WARNING,
    MANDATE_LOG_INFO,
    MANDATE_LOG_DEBUG
} mandate_log_level;

typedef struct mandate_host mandate_host;
struct mandate_token_record; /* store.h */

/* The core's services, one table per plugin instance (so that log lines
 * name the instance). All functions are thread-safe. */
struct mandate_host {
    uint16_t abi_major, abi_minor;
    const char *instance; /* the instance's name: its file name in mandate.d */
    const char *state_dir;

    void (*log)(const mandate_host *host, mandate_log_level level,
                const char *file, int line, const char *func, const char *fmt,
                ...) MANDATE_PRINTF(6, 7);

    void *(*pool_alloc)(mandate_pool *pool, size_t size); /* zeroed */
    char *(*pool_strdup)(mandate_pool *pool, const char *s);
    char *(*pool_memdup)(mandate_pool *pool, const void *p, size_t len);

    /* Wall-clock seconds since the epoch; tests inject their own clock. */
    int64_t (*now)(const mandate_host *host);
    /* Cryptographically secure random bytes. */
    mandate_rc (*random)(void *buf, size_t len);
    /* Wipe a secret so the compiler cannot elide it. */
    void (*wipe)(void *buf, size_t len);
    /* HMAC-SHA256 under a key derived from the key-encryption key: client
     * secrets are stored this way, so a copy of the database alone cannot
     * test guesses. */
    mandate_rc (*keyed_hash)(const mandate_host *host, const void *data, size_t len,
                             unsigned char out[32], mandate_error *err);
    /* The store's replay cache (see mandate_store_ops.replay_claim). */
    mandate_rc (*replay_claim)(const mandate_host *host, const char *ns,
                               const char *id, int64_t expires_at, mandate_error *err);

    /* ABI 1.1: the store's server-side token records, for reference (opaque)
     * tokens (see mandate_store_ops.token_put and token_get; get answers
     * MANDATE_NOT_FOUND for an unknown or expired hash). */
    mandate_rc (*token_record_put)(const mandate_host *host,
                                   const struct mandate_token_record *record,
                                   mandate_error *err);
    mandate_rc (*token_record_get)(const mandate_host *host, mandate_pool *pool,
                                   const unsigned char *hash, size_t hash_len,
                                   struct mandate_token_record *record_r, mandate_error *err);
};

#define MANDATE_LOG(host, level, ...)                                          \
    (host)->log((host), (level), __FILE__, __LINE__, __func__, __VA_ARGS__)
#define mandate_log_error(host, ...) MANDATE_LOG(host, MANDATE_LOG_ERROR, __VA_ARGS__)
#define mandate_log_warning(host, ...) MANDATE_LOG(host, MANDATE_LOG_WARNING, __VA_ARGS__)
#define mandate_log_info(host, ...) MANDATE_LOG(host, MANDATE_LOG_INFO, __VA_ARGS__)
#define mandate_log_debug(host, ...) MANDATE_LOG(host, MANDATE_LOG_DEBUG, __VA_ARGS__)

/* Config keys a plugin declares; the core parses and checks its section
 * into the instance struct before instantiate() runs. */
typedef enum mandate_conf_type {
    MANDATE_CONF_STRING = 1, /* char *, owned by the core */
    MANDATE_CONF_INT,        /* int64_t, checked against [min, max] */
    MANDATE_CONF_BOOL,       /* bool */
    MANDATE_CONF_PATH,       /* char *; a relative path is taken from state_dir */
    MANDATE_CONF_STRING_LIST /* char **, NULL-terminated, owned by the core */
} mandate_conf_type;

#define MANDATE_CONF_REQUIRED 0x1u
#define MANDATE_CONF_SECRET 0x2u     /* never logged or printed */
#define MANDATE_CONF_DEPRECATED 0x4u /* accepted with a warning */

typedef struct mandate_conf_def {
    const char *key; /* dotted for nested groups: "server.listen" */
    mandate_conf_type type;
    uint32_t flags;
    size_t offset;         /* into the instance struct */
    const char *default_value; /* as text, parsed like the file's value; NULL: none */
    int64_t min, max;      /* MANDATE_CONF_INT; both 0: unbounded */
    const char *choices;   /* MANDATE_CONF_STRING: "a|b|c", or NULL: any */
    const char *help;
} mandate_conf_def;

#define MANDATE_CONF_END {NULL, 0, 0, 0, NULL, 0, 0, NULL, NULL}

typedef enum mandate_plugin_kind {
    MANDATE_BACKEND = 1,
    MANDATE_FORMAT,
    MANDATE_STORE
} mandate_plugin_kind;

/* The plugin may block on the network (an upstream IdP, AWS, a database
 * server). The core bounds each instance of it: at most (HTTP workers - 1)
 * of its calls run at once (at least one), so that a slow upstream never
 * holds every worker; a call that finds no slot free within a short wait
 * (200 ms) is answered MANDATE_TEMPFAIL (the client gets 503) without
 * reaching the plugin. A backend's status() is not bounded. */
#define MANDATE_PLUGIN_BLOCKING 0x1u

typedef struct mandate_plugin {
    uint32_t magic;
    uint16_t abi_major, abi_minor;
    mandate_plugin_kind kind;
    const char *name; /* must match the file: <kind>-<name>.so */
    const char *version;
    uint32_t flags;
    const mandate_conf_def *conf; /* may be NULL: no keys */
    size_t inst_size;             /* the core allocates the instance, zeroed */
    mandate_rc (*instantiate)(void *inst, const mandate_host *host,
                              mandate_error *err);
    void (*destroy)(void *inst); /* may be NULL; the core frees conf values */
    const void *ops; /* mandate_backend_ops, mandate_format_ops, mandate_store_ops */
} mandate_plugin;

/* Each plugin .so exports exactly one symbol:
 *     const mandate_plugin mandate_plugin_<name>;
 * MANDATE_PLUGIN_INIT fills the fixed head of the descriptor. */
#define MANDATE_PLUGIN_INIT(kind_, name_, version_)                            \
    .magic = MANDATE_PLUGIN_MAGIC, .abi_major = MANDATE_PLUGIN_ABI_MAJOR,      \
    .abi_minor = MANDATE_PLUGIN_ABI_MINOR, .kind = (kind_), .name = (name_),   \
    .version = (version_)

/* Defines and exports a plugin's whole descriptor in one statement, at file
 * scope, after its conf table, instantiate, destroy and ops:
 *
 *     MANDATE_PLUGIN(saml, MANDATE_BACKEND, PACKAGE_VERSION, 0, saml_inst, saml_conf,
 *                    saml_instantiate, saml_destroy, &saml_ops);
 *
 * exports mandate_plugin_saml, named "saml" (so the file must be
 * backend-saml.so). name_ is an identifier, macro-expanded first so that a
 * macro may give it; flags_ is 0 or MANDATE_PLUGIN_BLOCKING; the core
 * allocates a zeroed inst_type_ per instance; conf_ and destroy_ may be
 * NULL. A descriptor that must differ from this shape (a test of the
 * loader's refusals) is written out with MANDATE_PLUGIN_INIT. */
#define MANDATE_PLUGIN(name_, kind_, version_, flags_, inst_type_, conf_, instantiate_,        \
                       destroy_, ops_)                                                         \
    MANDATE_PLUGIN_DEFINE_(name_, kind_, version_, flags_, inst_type_, conf_, instantiate_,    \
                           destroy_, ops_)
#define MANDATE_PLUGIN_DEFINE_(name_, kind_, version_, flags_, inst_type_, conf_,              \
                               instantiate_, destroy_, ops_)                                   \
    extern const mandate_plugin mandate_plugin_##name_;                                        \
    const mandate_plugin mandate_plugin_##name_ = {                                            \
        MANDATE_PLUGIN_INIT(kind_, #name_, version_),                                          \
        .flags = (flags_),                                                                     \
        .conf = (conf_),                                                                       \
        .inst_size = sizeof(inst_type_),                                                       \
        .instantiate = (instantiate_),                                                         \
        .destroy = (destroy_),                                                                 \
        .ops = (ops_),                                                                         \
    }

/* For a plugin's instantiate: MANDATE_OK when the host table is there and
 * of this ABI major, else MANDATE_ERROR with "NAME: host ABI N is not M". */
static inline mandate_rc mandate_plugin_host_check(const mandate_host *host, const char *name,
                                                   mandate_error *err)
{
    if (host != NULL && host->abi_major == MANDATE_PLUGIN_ABI_MAJOR)
        return MANDATE_OK;
    return mandate_error_set(err, MANDATE_ERROR, "%s: host ABI %u is not %d", name,
                             host != NULL ? host->abi_major : 0, MANDATE_PLUGIN_ABI_MAJOR);
}

#ifdef __cplusplus
}
#endif

#endif
