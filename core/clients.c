#include "config.h"

#include <string.h>

#include <openssl/rand.h>

#include "clients-private.h"
#include "clock-private.h"
#include "jose.h"
#include "log-private.h"
#include "oauth-private.h"
#include "plugins-private.h"
#include "pool-private.h"

#define RANDOM_SUFFIX_LEN 8

/* A space-separated list normalised: single spaces, no duplicates; each word
 * checked. NULL for an empty list. */
static mandate_rc normalise_list(mandate_pool *pool, const char *what, const char *list,
                                 bool (*valid)(const char *, size_t), const char **out_r,
                                 mandate_error *err)
{
    *out_r = NULL;
    if (list == NULL)
        return MANDATE_OK;
    char *out = mandate_pool_alloc(pool, strlen(list) + 1);
    size_t used = 0, n;
    const char *p;
    /* spaces separate, not commas: commas are legal inside scopes and URIs */
    while (mandate_word_list_next(&list, &p, &n)) {
        if (!valid(p, n))
            return mandate_error_set(err, MANDATE_INVALID, "%s '%.*s' is not valid", what,
                                     (int)(n > 80 ? 80 : n), p);
        mandate_word_list_add(out, &used, p, n);
    }
    *out_r = used > 0 ? out : NULL;
    return MANDATE_OK;
}

static bool audience_valid(const char *s, size_t n)
{
    const char *colon = memchr(s, ':', n);
    if (colon == NULL || colon == s || memchr(s, '#', n) != NULL)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f || s[i] == '"')
            return false;
    return true;
}

static const mandate_instance *pick_backend(mandate_runtime *rt, const char *name,
                                            bool needs_provision, mandate_error *err)
{
    if (name != NULL) {
        const mandate_instance *in = mandate_runtime_find(rt, MANDATE_BACKEND, name);
        if (in == NULL)
            mandate_error_set(err, MANDATE_NOT_FOUND, "no backend instance '%s' is enabled",
                              name);
        else if (needs_provision && !mandate_backend_provisions(in))
            mandate_error_set(err, MANDATE_INVALID, "backend '%s' cannot make secrets", name);
        else
            return in;
        return NULL;
    }
    for (size_t i = 0; i < mandate_runtime_instance_count(rt); i++) {
        const mandate_instance *in = mandate_runtime_instance(rt, i);
        if (mandate_backend_authenticates(in) &&
            (!needs_provision || mandate_backend_provisions(in)))
            return in;
    }
    mandate_error_set(err, MANDATE_NOT_FOUND,
                      "no backend that holds client credentials is enabled "
                      "(enable one in the instances folder, e.g. backend-local.conf)");
    return NULL;
}

static const char *random_suffix(mandate_pool *pool)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char raw[RANDOM_SUFFIX_LEN];
    char *out = mandate_pool_alloc(pool, RANDOM_SUFFIX_LEN + 1);
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return NULL;
    for (size_t i = 0; i < RANDOM_SUFFIX_LEN; i++)
        out[i] = alphabet[raw[i] % 36]; /* uniqueness, not secrecy: the bias is harmless */
    return out;
}

static bool rate_valid(double rate, int64_t burst, mandate_error *err)
{
    if (rate >= 0 && rate <= MANDATE_CLIENT_RATE_MAX && burst >= 0 &&
        burst <= MANDATE_CLIENT_BURST_MAX)
        return true;
    mandate_error_set(err, MANDATE_INVALID,
                      "the rate must be 0 to 1000000 requests per second and the burst 0 to "
                      "1000000 (0: the configured default)");
    return false;
}

mandate_rc mandate_clients_settings(mandate_runtime *rt, mandate_pool *pool,
                                    const mandate_client_spec *spec, mandate_client *c,
                                    mandate_error *err)
{
    memset(c, 0, sizeof(*c));
    const char *id = spec->client_id;
    if (id == NULL) {
        const char *suffix = random_suffix(pool);
        if (suffix == NULL)
            return mandate_error_set(err, MANDATE_ERROR, "no random bytes");
        id = mandate_pool_printf(pool, "%s-%s", spec->prefix ? spec->prefix : "client", suffix);
    }
    if (!mandate_client_id_valid(id))
        return mandate_error_set(err, MANDATE_INVALID,
                                 "client id '%.80s' must be 1 to %d letters, digits, '-', '.', "
                                 "'_' or '~'",
                                 id, MANDATE_CLIENT_ID_MAX_LEN);
    c->client_id = id;
    c->tenant = spec->tenant ? spec->tenant : "default";
    if (!mandate_client_id_valid(c->tenant))
        return mandate_error_set(err, MANDATE_INVALID,
                                 "tenant '%.80s' must be letters, digits, '-', '.', '_' or '~'",
                                 c->tenant);
    c->name = spec->name;
    mandate_rc rc = normalise_list(pool, "scope", spec->scopes, mandate_scope_token_valid,
                                   &c->scopes, err);
    if (rc == MANDATE_OK)
        rc = normalise_list(pool, "default scope", spec->default_scopes,
                            mandate_scope_token_valid, &c->default_scopes, err);
    if (rc == MANDATE_OK)
        rc = normalise_list(pool, "audience", spec->audiences, audience_valid, &c->audiences,
                            err);
    if (rc != MANDATE_OK)
        return rc;
    size_t n;
    const char *lacking = mandate_word_list_missing(c->default_scopes, c->scopes, &n);
    if (lacking != NULL)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "default scope '%.*s' is not among the client's scopes",
                                 (int)n, lacking);
    if (spec->ttl < 0 || spec->ttl > MANDATE_TOKEN_MAX_LIFETIME)
        return mandate_error_set(err, MANDATE_INVALID, "ttl must be 1 to %d seconds",
                                 MANDATE_TOKEN_MAX_LIFETIME);
    c->token_ttl = spec->ttl;
    if (!rate_valid(spec->rate_limit, spec->rate_burst, err))
        return MANDATE_INVALID;
    c->rate_limit = spec->rate_limit;
    c->rate_burst = spec->rate_burst;
    if (spec->token_format != NULL) {
        const mandate_instance *f = mandate_runtime_find(rt, MANDATE_FORMAT, spec->token_format);
        if (f == NULL)
            return mandate_error_set(err, MANDATE_NOT_FOUND,
                                     "no format instance '%s' is enabled", spec->token_format);
        c->token_format = f->conf->name;
    }
    c->status = MANDATE_CLIENT_ENABLED;
    c->flags = spec->can_introspect ? MANDATE_CLIENT_CAN_INTROSPECT : 0;
    int64_t now = mandate_clock_now();
    c->created_at = now;
    c->updated_at = now;
    c->metadata = spec->metadata;
    return MANDATE_OK;
}

mandate_rc mandate_clients_prepare(mandate_runtime *rt, mandate_pool *pool,
                                   const mandate_client_spec *spec, mandate_client *c,
                                   char **secret_r, mandate_error *err)
{
    *secret_r = NULL;
    mandate_rc rc = mandate_clients_settings(rt, pool, spec, c, err);
    if (rc != MANDATE_OK)
        return rc;
    if (spec->public_client) {
        /* nothing to authenticate with: every backend refuses it at the
         * token endpoint but for the grants a public client may use */
        if (spec->public_key_pem != NULL || spec->backend != NULL || spec->attributes != NULL)
            return mandate_error_set(err, MANDATE_INVALID,
                                     "a public client has no secret and no key: no backend, "
                                     "public key or backend attributes go with it");
        return MANDATE_OK;
    }
    if (spec->certificate_client) {
        if (spec->public_key_pem != NULL || spec->backend != NULL)
            return mandate_error_set(err, MANDATE_INVALID,
                                     "a client that authenticates by certificate has no "
                                     "secret and no key: no backend or public key");
        c->attributes = spec->attributes; /* its certificate's registration */
        return MANDATE_OK;
    }
    if (spec->public_key_pem != NULL) {
        /* private_key_jwt: the client keeps its private key; no secret at all */
        EVP_PKEY *key =
            mandate_jose_public_from_pem(spec->public_key_pem, strlen(spec->public_key_pem));
        mandate_jws_alg alg = key ? mandate_jws_alg_for_key(key) : MANDATE_JWS_NONE;
        EVP_PKEY_free(key);
        if (alg == MANDATE_JWS_NONE)
            return mandate_error_set(err, MANDATE_INVALID,
                                     "the public key must be a PEM P-256, RSA (2048 bits or "
                                     "more) or Ed25519 public key");
        c->public_key = spec->public_key_pem;
        c->attributes = spec->attributes; /* dpop_bound_access_tokens, the core's */
        const mandate_instance *b = pick_backend(rt, spec->backend, false, err);
        if (b == NULL)
            return err->rc;
        c->backend = b->conf->name;
        return MANDATE_OK;
    }
    const mandate_instance *b = pick_backend(rt, spec->backend, true, err);
    if (b == NULL)
        return err->rc;
    c->backend = b->conf->name;
    c->attributes = spec->attributes;
    return mandate_backend_provision(b, pool, MANDATE_PROVISION_CREATE, c, secret_r, err);
}

mandate_rc mandate_clients_create(mandate_runtime *rt, mandate_pool *pool,
                                  const mandate_client_spec *spec, mandate_client *client_r,
                                  char **secret_r, mandate_error *err)
{
    const mandate_instance *store = mandate_runtime_store(rt);
    mandate_client taken;
    mandate_error get_err = {0};
    /* before the backend makes a secret somewhere (Secrets Manager) for
     * nothing; client_create below still settles a race */
    if (spec->client_id != NULL &&
        mandate_store_client_get(store, pool, spec->client_id, &taken, &get_err) == MANDATE_OK)
        return mandate_error_set(err, MANDATE_EXISTS, "client '%s' already exists",
                                 spec->client_id);
    mandate_rc rc = mandate_clients_prepare(rt, pool, spec, client_r, secret_r, err);
    if (rc != MANDATE_OK)
        return rc;
    rc = mandate_store_client_create(store, client_r, err);
    if (rc == MANDATE_EXISTS)
        return mandate_error_set(err, MANDATE_EXISTS, "client '%s' already exists",
                                 client_r->client_id);
    return rc;
}

mandate_rc mandate_clients_rotate_secret(mandate_runtime *rt, mandate_pool *pool,
                                         const char *client_id, int64_t grace, char **secret_r,
                                         int64_t *grace_r, mandate_error *err)
{
    const mandate_instance *store = mandate_runtime_store(rt);
    mandate_client c;
    mandate_rc rc = mandate_store_client_get(store, pool, client_id, &c, err);
    if (rc == MANDATE_NOT_FOUND)
        return mandate_error_set(err, MANDATE_NOT_FOUND, "no client '%s'", client_id);
    if (rc != MANDATE_OK)
        return rc;
    if (c.secret_hash == NULL && c.public_key != NULL)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "client '%s' authenticates with a key, not a secret",
                                 client_id);
    /* a secret it would never be accepted with (core/client-auth.c) */
    const char *registered = mandate_client_registered_auth(&c);
    if (strcmp(registered, "client_secret") != 0)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "client '%s' authenticates with %s, not a secret", client_id,
                                 registered);
    const mandate_instance *b = pick_backend(rt, c.backend, true, err);
    if (b == NULL)
        return err->rc;
    /* the current secret becomes the previous one, valid for the grace period */
    if (grace > 0) {
        c.prev_secret_hash = c.secret_hash;
        c.prev_secret_hash_len = c.secret_hash_len;
        c.prev_secret_expires_at = mandate_clock_now() + grace;
    } else {
        c.prev_secret_hash = NULL;
        c.prev_secret_hash_len = 0;
        c.prev_secret_expires_at = 0;
    }
    rc = mandate_backend_provision(b, pool, MANDATE_PROVISION_ROTATE, &c, secret_r, err);
    if (rc != MANDATE_OK)
        return rc;
    /* a backend that keeps no hash here keeps the old secret itself */
    *grace_r = c.secret_hash == NULL ? -1 : grace;
    c.updated_at = 0;
    return mandate_store_client_update(store, &c, err);
}

/* Reads the client, lets change edit the record (false: nothing to do),
 * writes it back. */
typedef bool (*client_change)(mandate_client *client, const void *arg);

static mandate_rc update_client(mandate_runtime *rt, const char *client_id,
                                client_change change, const void *arg, mandate_error *err)
{
    const mandate_instance *store = mandate_runtime_store(rt);
    mandate_pool *pool = mandate_pool_new();
    mandate_client c;
    mandate_rc rc = mandate_store_client_get(store, pool, client_id, &c, err);
    if (rc == MANDATE_NOT_FOUND)
        mandate_error_set(err, MANDATE_NOT_FOUND, "no client '%s'", client_id);
    if (rc == MANDATE_OK && change(&c, arg)) {
        c.updated_at = 0;
        rc = mandate_store_client_update(store, &c, err);
    }
    mandate_pool_free(&pool);
    return rc;
}

typedef struct rate_change {
    double rate;
    int64_t burst;
} rate_change;

static bool set_rate(mandate_client *c, const void *arg)
{
    const rate_change *r = arg;
    c->rate_limit = r->rate;
    c->rate_burst = r->burst;
    return true;
}

mandate_rc mandate_clients_set_rate(mandate_runtime *rt, const char *client_id, double rate,
                                    int64_t burst, mandate_error *err)
{
    if (!rate_valid(rate, burst, err))
        return MANDATE_INVALID;
    rate_change r = {rate, burst};
    return update_client(rt, client_id, set_rate, &r, err);
}

static bool set_status(mandate_client *c, const void *arg)
{
    mandate_client_status status = *(const mandate_client_status *)arg;
    if (c->status == status)
        return false;
    c->status = status;
    return true;
}

mandate_rc mandate_clients_set_status(mandate_runtime *rt, const char *client_id,
                                      mandate_client_status status, mandate_error *err)
{
    return update_client(rt, client_id, set_status, &status, err);
}
