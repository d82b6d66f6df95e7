/* The JWKS cache: an issuer's signing keys, found through discovery (or a
 * fixed jwks_uri), fetched on first use, shared as immutable refcounted key
 * sets, refetched at most once per min_refetch_interval, used on while the
 * provider is down until they are max_age old. jwks-cache.h says what each
 * call promises; this was libmandate's verifier's machinery, now shared with
 * the oidc backend plugin. */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "jose.h"
#include "jwks-cache.h"
#include "http-client.h"
#include "optional-strdup.h"

struct jwks_key {
    char *kid;
    EVP_PKEY *pkey;
};

/* Immutable once published; freed when its last reference goes. */
struct mandate_jwks {
    atomic_size_t refs;
    int64_t fetched_at;
    size_t n;
    struct jwks_key keys[];
};

struct mandate_jwks_cache {
    char *issuer;
    char *discovery_url; /* NULL: fixed_jwks_uri */
    char *fixed_jwks_uri;
    char *what; /* the discovery document's name in messages */
    int64_t refresh, max_age, min_refetch_interval;
    long timeout_ms;
    int64_t (*now)(void *ctx);
    void *now_ctx;
    void (*on_fetch)(void *ctx, bool ok, size_t keys, const char *detail);
    void *on_fetch_ctx;
    _Atomic uint64_t fetches;

    pthread_mutex_t lock;
    pthread_cond_t fetched;
    /* under lock */
    char *jwks_uri; /* the fixed one, or from discovery; NULL: discover first */
    struct mandate_jwks *keys;
    bool fetching;
    bool attempted;
    int64_t last_attempt;
    mandate_rc fetch_rc;
    char fetch_err[MANDATE_ERROR_MAX];
};

/* --- key sets --------------------------------------------------------------- */

void mandate_jwks_unref(mandate_jwks **setp)
{
    if (setp == NULL)
        return;
    mandate_jwks *ks = *setp;
    *setp = NULL;
    if (ks == NULL || atomic_fetch_sub(&ks->refs, 1) != 1)
        return;
    for (size_t i = 0; i < ks->n; i++) {
        EVP_PKEY_free(ks->keys[i].pkey);
        free(ks->keys[i].kid);
    }
    free(ks);
}

size_t mandate_jwks_size(const mandate_jwks *set)
{
    return set != NULL ? set->n : 0;
}

static const struct jwks_key *keyset_find(const mandate_jwks *ks, const char *kid)
{
    for (size_t i = 0; ks != NULL && kid != NULL && i < ks->n; i++)
        if (strcmp(ks->keys[i].kid, kid) == 0)
            return &ks->keys[i];
    return NULL;
}

/* A key set from a JWK set document. Keys without a kid, of a type or size
 * the JOSE helpers refuse, not for signatures ("use" other than "sig"), or
 * with a kid seen before are skipped. */
static mandate_rc keyset_from_jwks(const json_t *doc, int64_t now, mandate_jwks **ks_r,
                                   mandate_error *err)
{
    const json_t *list = json_object_get(doc, "keys");
    *ks_r = NULL;
    if (!json_is_array(list))
        return mandate_error_set(err, MANDATE_TEMPFAIL, "JWKS: no \"keys\" array");
    size_t cap = json_array_size(list) < MANDATE_JWKS_MAX_KEYS ? json_array_size(list)
                                                               : MANDATE_JWKS_MAX_KEYS;
    mandate_jwks *ks = calloc(1, sizeof(*ks) + cap * sizeof(ks->keys[0]));
    if (ks == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "out of memory");
    atomic_init(&ks->refs, 1);
    ks->fetched_at = now;
    for (size_t i = 0; i < cap; i++) {
        const json_t *jwk = json_array_get(list, i);
        const char *kid = json_string_value(json_object_get(jwk, "kid"));
        if (kid == NULL || kid[0] == '\0' || strlen(kid) > MANDATE_JWKS_MAX_KID ||
            keyset_find(ks, kid) != NULL)
            continue;
        mandate_error jerr = {0};
        EVP_PKEY *pkey = mandate_jwk_to_key(jwk, &jerr);
        if (pkey == NULL)
            continue;
        if (mandate_jws_alg_for_key(pkey) == MANDATE_JWS_NONE ||
            (ks->keys[ks->n].kid = strdup(kid)) == NULL) {
            EVP_PKEY_free(pkey);
            continue;
        }
        ks->keys[ks->n++].pkey = pkey;
    }
    if (ks->n == 0) {
        mandate_jwks_unref(&ks);
        return mandate_error_set(err, MANDATE_TEMPFAIL, "JWKS: no usable key");
    }
    *ks_r = ks;
    return MANDATE_OK;
}

/* --- fetching ----------------------------------------------------------------- */

static mandate_rc from_client_rc(mandate_client_rc rc)
{
    return rc == MANDATE_CLIENT_ERROR ? MANDATE_ERROR : MANDATE_TEMPFAIL;
}

/* GET url and parse a JSON object. what names the document in errors. */
static mandate_rc get_json(const mandate_jwks_cache *c, const char *url, const char *what,
                           json_t **doc_r, mandate_error *err)
{
    mandate_client_http_response resp;
    char why[MANDATE_ERROR_MAX];
    *doc_r = NULL;
    mandate_client_rc crc =
        mandate_client_http_get(url, c->timeout_ms, &resp, why, sizeof(why));
    if (crc != MANDATE_CLIENT_OK)
        return mandate_error_set(err, from_client_rc(crc), "%s: %s", what, why);
    mandate_rc rc = MANDATE_OK;
    if (resp.status != 200) {
        rc = mandate_error_set(err, MANDATE_TEMPFAIL, "%s: HTTP %ld", what, resp.status);
    } else {
        json_t *doc = json_loadb(resp.body, resp.len, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(doc)) {
            json_decref(doc);
            rc = mandate_error_set(err, MANDATE_TEMPFAIL, "%s: not a JSON object", what);
        } else {
            *doc_r = doc;
        }
    }
    mandate_client_http_response_clear(&resp);
    return rc;
}

/* The discovery document's jwks_uri (malloc'd), after checking its issuer. */
static mandate_rc discover_jwks_uri(const mandate_jwks_cache *c, char **uri_r,
                                    mandate_error *err)
{
    json_t *doc;
    *uri_r = NULL;
    mandate_rc rc = get_json(c, c->discovery_url, c->what, &doc, err);
    if (rc != MANDATE_OK)
        return rc;
    const char *issuer = json_string_value(json_object_get(doc, "issuer"));
    const char *uri = json_string_value(json_object_get(doc, "jwks_uri"));
    if (issuer == NULL || strcmp(issuer, c->issuer) != 0)
        rc = mandate_error_set(err, MANDATE_INVALID, "%s: %s the configured issuer %.100s",
                               c->what, issuer == NULL ? "no issuer, not" : "its issuer is not",
                               c->issuer);
    else if (!mandate_client_url_ok(uri))
        rc = mandate_error_set(err, MANDATE_TEMPFAIL,
                               "%s: jwks_uri is missing or not an http(s) URL", c->what);
    /* keys found over TLS are fetched over TLS: a discovery document cannot
     * send us to plain HTTP, where anyone on the path could swap the keys */
    else if (strncasecmp(c->discovery_url, "https://", 8) == 0 &&
             strncasecmp(uri, "https://", 8) != 0)
        rc = mandate_error_set(err, MANDATE_TEMPFAIL,
                               "%s: jwks_uri is not https while discovery is", c->what);
    else if ((*uri_r = strdup(uri)) == NULL)
        rc = mandate_error_set(err, MANDATE_ERROR, "out of memory");
    json_decref(doc);
    return rc;
}

/* Runs without the lock. *uri_io: the known jwks_uri or NULL (then the
 * discovery document is read and *uri_io set). */
static mandate_rc fetch_keys(mandate_jwks_cache *c, int64_t now, char **uri_io,
                             mandate_jwks **ks_r, mandate_error *err)
{
    mandate_rc rc;
    *ks_r = NULL;
    if (*uri_io == NULL && (rc = discover_jwks_uri(c, uri_io, err)) != MANDATE_OK)
        return rc;
    json_t *doc;
    atomic_fetch_add(&c->fetches, 1);
    if ((rc = get_json(c, *uri_io, "JWKS", &doc, err)) != MANDATE_OK)
        return rc;
    rc = keyset_from_jwks(doc, now, ks_r, err);
    json_decref(doc);
    return rc;
}

/* Under the lock: a new reference to the current set. */
static mandate_jwks *keyset_ref_locked(mandate_jwks_cache *c)
{
    if (c->keys != NULL)
        atomic_fetch_add(&c->keys->refs, 1);
    return c->keys;
}

/* Whether a set may still verify: held, and under max_age. */
static bool usable(const mandate_jwks_cache *c, const mandate_jwks *ks, int64_t now)
{
    return ks != NULL && (c->max_age == 0 || now - ks->fetched_at < c->max_age);
}

/* Under the lock: why there is no set to hand out. */
static mandate_rc no_keys_locked(const mandate_jwks_cache *c, int64_t now, mandate_error *err)
{
    if (c->keys != NULL && !usable(c, c->keys, now))
        return mandate_error_set(
            err, c->fetch_rc != MANDATE_OK ? c->fetch_rc : MANDATE_TEMPFAIL,
            "%s%sthe keys held were fetched %" PRId64 " s ago, past max_age (%" PRId64 " s)",
            c->fetch_rc != MANDATE_OK ? c->fetch_err : "",
            c->fetch_rc != MANDATE_OK ? "; " : "", now - c->keys->fetched_at, c->max_age);
    return mandate_error_set(err, c->fetch_rc != MANDATE_OK ? c->fetch_rc : MANDATE_TEMPFAIL,
                             "%s", c->fetch_rc != MANDATE_OK ? c->fetch_err : "no keys");
}

/* A key set to look a kid up in, with a reference for the caller.
 * had: the set the caller already looked in without finding the kid (it
 * holds a reference to it), or NULL. With had, a newer set is returned when
 * there is one, or else fetched if the rate limit allows; without, the
 * current set unless it is older than refresh. A set past max_age is never
 * handed out. */
static mandate_rc keyset_acquire(mandate_jwks_cache *c, const mandate_jwks *had,
                                 mandate_jwks **ks_r, mandate_error *err)
{
    mandate_rc rc = MANDATE_OK;
    *ks_r = NULL;
    pthread_mutex_lock(&c->lock);
    for (;;) {
        int64_t now = c->now(c->now_ctx);
        mandate_jwks *ks = c->keys;
        bool ok = usable(c, ks, now);
        bool fresh = ok && now - ks->fetched_at < c->refresh;
        if (ok && ((had != NULL && ks != had) || (had == NULL && fresh))) {
            *ks_r = keyset_ref_locked(c);
            break;
        }
        if (c->fetching) {
            if (ok && had == NULL) { /* old but usable: someone refreshes it */
                *ks_r = keyset_ref_locked(c);
                break;
            }
            while (c->fetching)
                pthread_cond_wait(&c->fetched, &c->lock);
            continue;
        }
        if (c->attempted && now < c->last_attempt + c->min_refetch_interval) {
            /* no fetch now: the set in hand, unless a kid is missing from
             * it and the last fetch failed (the token may well be good) */
            if (ok && (had == NULL || c->fetch_rc == MANDATE_OK))
                *ks_r = keyset_ref_locked(c);
            else if (c->fetch_rc != MANDATE_OK)
                rc = mandate_error_set(err, c->fetch_rc, "%s (not retried for %" PRId64 " s)",
                                       c->fetch_err, c->min_refetch_interval);
            else
                rc = no_keys_locked(c, now, err);
            break;
        }

        c->fetching = true;
        c->attempted = true;
        c->last_attempt = now;
        char *uri = c->jwks_uri != NULL ? strdup(c->jwks_uri) : NULL;
        pthread_mutex_unlock(&c->lock);
        mandate_jwks *fresh_set = NULL;
        mandate_error why = {0};
        mandate_rc frc = fetch_keys(c, now, &uri, &fresh_set, &why);
        size_t n_fresh = mandate_jwks_size(fresh_set);
        pthread_mutex_lock(&c->lock);
        c->fetching = false;
        c->fetch_rc = frc;
        snprintf(c->fetch_err, sizeof(c->fetch_err), "%s",
                 frc == MANDATE_OK ? "" : why.message);
        mandate_jwks *old = NULL;
        if (frc == MANDATE_OK) {
            old = c->keys;
            c->keys = fresh_set;
            free(c->jwks_uri);
            c->jwks_uri = uri;
        } else {
            /* with discovery, read it again next time: the JWKS may have
             * moved */
            if (c->discovery_url != NULL) {
                free(c->jwks_uri);
                c->jwks_uri = NULL;
            }
            free(uri);
        }
        pthread_cond_broadcast(&c->fetched);
        /* a failed refetch for an unknown kid: the token may well be good,
         * it cannot be checked now */
        now = c->now(c->now_ctx);
        if (usable(c, c->keys, now) && (frc == MANDATE_OK || had == NULL))
            *ks_r = keyset_ref_locked(c);
        else if (frc != MANDATE_OK && c->keys == NULL)
            rc = mandate_error_set(err, frc, "%s", why.message);
        else
            rc = no_keys_locked(c, now, err);
        pthread_mutex_unlock(&c->lock);
        mandate_jwks_unref(&old);
        if (c->on_fetch != NULL)
            c->on_fetch(c->on_fetch_ctx, frc == MANDATE_OK, n_fresh,
                        frc == MANDATE_OK ? "" : why.message);
        return rc;
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

mandate_rc mandate_jwks_cache_get_key(mandate_jwks_cache *cache, const char *kid,
                                      mandate_jwks **set_r, const EVP_PKEY **key_r,
                                      mandate_error *err)
{
    if (set_r != NULL)
        *set_r = NULL;
    if (key_r != NULL)
        *key_r = NULL;
    if (cache == NULL || kid == NULL || set_r == NULL || key_r == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "JWKS: no cache, kid or output");
    mandate_jwks *ks = NULL;
    mandate_rc rc = keyset_acquire(cache, NULL, &ks, err);
    if (rc != MANDATE_OK)
        return rc;
    const struct jwks_key *key = keyset_find(ks, kid);
    if (key == NULL) {
        /* perhaps a new key: refetch (rate limited) and look once more */
        mandate_jwks *had = ks;
        ks = NULL;
        rc = keyset_acquire(cache, had, &ks, err);
        mandate_jwks_unref(&had);
        if (rc != MANDATE_OK)
            return rc;
        if ((key = keyset_find(ks, kid)) == NULL) {
            mandate_jwks_unref(&ks);
            return mandate_error_set(err, MANDATE_NOT_FOUND, "no key of %.100s has this kid",
                                     cache->issuer);
        }
    }
    *set_r = ks;
    *key_r = key->pkey;
    return MANDATE_OK;
}

/* --- status ------------------------------------------------------------------- */

uint64_t mandate_jwks_cache_fetches(const mandate_jwks_cache *cache)
{
    return cache != NULL ? atomic_load(&cache->fetches) : 0;
}

const char *mandate_jwks_state_name(mandate_jwks_state state)
{
    switch (state) {
    case MANDATE_JWKS_UNKNOWN: return "unknown";
    case MANDATE_JWKS_OK: return "ok";
    case MANDATE_JWKS_DEGRADED: return "degraded";
    case MANDATE_JWKS_UNAVAILABLE: return "unavailable";
    }
    return "unknown";
}

void mandate_jwks_cache_status(mandate_jwks_cache *cache, mandate_jwks_status *status_r)
{
    memset(status_r, 0, sizeof(*status_r));
    status_r->age = -1;
    if (cache == NULL) {
        status_r->state = MANDATE_JWKS_UNAVAILABLE;
        snprintf(status_r->last_error, sizeof(status_r->last_error), "no cache");
        return;
    }
    status_r->fetches = atomic_load(&cache->fetches);
    pthread_mutex_lock(&cache->lock);
    int64_t now = cache->now(cache->now_ctx);
    if (cache->keys != NULL) {
        status_r->age = now - cache->keys->fetched_at;
        status_r->keys = cache->keys->n;
    }
    if (cache->attempted)
        status_r->last_attempt = cache->last_attempt;
    if (!cache->attempted)
        status_r->state = MANDATE_JWKS_UNKNOWN;
    else if (cache->fetch_rc == MANDATE_OK)
        status_r->state = MANDATE_JWKS_OK;
    else if (usable(cache, cache->keys, now))
        status_r->state = MANDATE_JWKS_DEGRADED;
    else
        status_r->state = MANDATE_JWKS_UNAVAILABLE;
    snprintf(status_r->last_error, sizeof(status_r->last_error), "%s", cache->fetch_err);
    pthread_mutex_unlock(&cache->lock);
}

/* --- life --------------------------------------------------------------------- */

static void cache_release(mandate_jwks_cache *c)
{
    mandate_jwks_unref(&c->keys);
    free(c->jwks_uri);
    free(c->issuer);
    free(c->discovery_url);
    free(c->fixed_jwks_uri);
    free(c->what);
    free(c);
}

mandate_jwks_cache *mandate_jwks_cache_new(const mandate_jwks_cache_config *config,
                                           mandate_error *err)
{
    const char *why = NULL;
    if (config == NULL)
        why = "no configuration";
    else if (config->issuer == NULL || config->issuer[0] == '\0')
        why = "the issuer is required";
    else if (config->jwks_uri == NULL && config->discovery_url == NULL)
        why = "a discovery URL or a jwks_uri is required";
    else if (config->jwks_uri != NULL && !mandate_client_url_ok(config->jwks_uri))
        why = "jwks_uri must be an http:// or https:// URL";
    else if (config->jwks_uri == NULL && !mandate_client_url_ok(config->discovery_url))
        why = "the discovery URL must be an http:// or https:// URL";
    else if (config->refresh <= 0 || config->min_refetch_interval <= 0 ||
             config->timeout_ms <= 0 || config->max_age < 0)
        why = "refresh, min_refetch_interval and timeout_ms must be positive, max_age not "
              "negative";
    else if (config->max_age != 0 && config->max_age < config->refresh)
        why = "max_age must be 0 (unlimited) or at least refresh";
    if (why != NULL) {
        mandate_error_set(err, MANDATE_INVALID, "JWKS cache: %s", why);
        return NULL;
    }

    mandate_jwks_cache *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        mandate_error_set(err, MANDATE_ERROR, "JWKS cache: out of memory");
        return NULL;
    }
    bool oom = false;
    c->issuer = mandate_strdup_optional(config->issuer, &oom);
    if (config->jwks_uri != NULL) {
        c->fixed_jwks_uri = mandate_strdup_optional(config->jwks_uri, &oom);
        c->jwks_uri = mandate_strdup_optional(config->jwks_uri, &oom);
    } else {
        c->discovery_url = mandate_strdup_optional(config->discovery_url, &oom);
    }
    c->what = mandate_strdup_optional(
        config->discovery_what != NULL ? config->discovery_what : "discovery", &oom);
    c->refresh = config->refresh;
    c->max_age = config->max_age;
    c->min_refetch_interval = config->min_refetch_interval;
    c->timeout_ms = config->timeout_ms;
    c->now = config->now != NULL ? config->now : mandate_client_real_now;
    c->now_ctx = config->now_ctx;
    c->on_fetch = config->on_fetch;
    c->on_fetch_ctx = config->on_fetch_ctx;
    c->fetch_rc = MANDATE_OK;
    atomic_init(&c->fetches, 0);
    if (oom) {
        cache_release(c);
        mandate_error_set(err, MANDATE_ERROR, "JWKS cache: out of memory");
        return NULL;
    }
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        cache_release(c);
        mandate_error_set(err, MANDATE_ERROR, "JWKS cache: cannot initialise a mutex");
        return NULL;
    }
    if (pthread_cond_init(&c->fetched, NULL) != 0) {
        pthread_mutex_destroy(&c->lock);
        cache_release(c);
        mandate_error_set(err, MANDATE_ERROR,
                          "JWKS cache: cannot initialise a condition variable");
        return NULL;
    }
    return c;
}

void mandate_jwks_cache_free(mandate_jwks_cache **cache)
{
    if (cache == NULL || *cache == NULL)
        return;
    mandate_jwks_cache *c = *cache;
    *cache = NULL;
    pthread_cond_destroy(&c->fetched);
    pthread_mutex_destroy(&c->lock);
    cache_release(c);
}
