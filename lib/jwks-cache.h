/* An issuer's signing keys, fetched over HTTP and cached: what libmandate's
 * verifier and the oidc backend plugin check JWS signatures with.
 *
 * Keys are found through a discovery document (RFC 8414 metadata for
 * libmandate, OpenID Connect discovery for an upstream provider), whose
 * "issuer" must be the expected issuer, exactly, and whose "jwks_uri" names
 * the JWK set; or through a fixed jwks_uri, with no discovery. Nothing is
 * fetched before the first key is asked for.
 *
 * The usable keys with a kid become an immutable key set with a reference
 * count: a check holds a reference for its length, so a refetch on another
 * thread swaps in the new set at once and the old one goes with its last
 * user.
 *
 * Fetches: one at a time (callers that need its result wait on a condition
 * variable; callers with a usable, merely old set go on with it), and at
 * most one per min_refetch_interval whatever asked for it, so a flood of
 * tokens with made-up kids cannot make the cache hammer the provider.
 *
 * Ages: a set is used for `refresh` seconds, then refetched on the next use.
 * When the provider cannot be reached, a failed refetch keeps the set in
 * hand, and it goes on verifying until it is `max_age` old (0: forever);
 * after that no key is usable and the caller gets MANDATE_TEMPFAIL: a token
 * is never accepted unverified.
 *
 * In lib/libcommon-http.la with the HTTP client (lib/http-client.c); its
 * users also link lib/libcommon.la (JOSE). Thread-safe; no global state but
 * libcurl's one-time initialisation. */
#ifndef MANDATE_JWKS_CACHE_H
#define MANDATE_JWKS_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include <mandate/plugin.h>

/* More keys than any rotation schedule publishes: a bound, not a limit. */
#define MANDATE_JWKS_MAX_KEYS 256
#define MANDATE_JWKS_MAX_KID 256

typedef struct mandate_jwks_cache mandate_jwks_cache;
/* An immutable key set; the caller holds a reference until it unrefs it. */
typedef struct mandate_jwks mandate_jwks;

typedef struct mandate_jwks_cache_config {
    /* Required: what the discovery document's "issuer" must be. */
    const char *issuer;
    /* The discovery document (its "jwks_uri" names the keys), or NULL when
     * jwks_uri is set. */
    const char *discovery_url;
    /* The discovery document's name in messages ("metadata"); NULL:
     * "discovery". */
    const char *discovery_what;
    /* A fixed JWK set URL: discovery is skipped. NULL: from discovery. */
    const char *jwks_uri;
    /* Seconds a fetched set is used before the next use refetches it (> 0). */
    int64_t refresh;
    /* Seconds after its fetch at which a set is no longer used at all, even
     * when no newer one can be had; 0: unlimited. At least refresh. */
    int64_t max_age;
    /* Seconds between two fetches, whatever asks for them (> 0). */
    int64_t min_refetch_interval;
    /* Per HTTP request (> 0). */
    long timeout_ms;
    /* The clock in seconds; NULL: the real one. */
    int64_t (*now)(void *ctx);
    void *now_ctx;
    /* Told of each fetch once it is over, without the lock held (may be
     * NULL): ok, and the number of keys or the reason it failed. */
    void (*on_fetch)(void *ctx, bool ok, size_t keys, const char *detail);
    void *on_fetch_ctx;
} mandate_jwks_cache_config;

/* NULL with the reason in err (MANDATE_INVALID for a bad configuration,
 * MANDATE_ERROR when out of memory). The strings are copied. */
mandate_jwks_cache *mandate_jwks_cache_new(const mandate_jwks_cache_config *config,
                                           mandate_error *err);
/* Sets *cache to NULL. Sets still referenced by a caller stay valid until
 * their last unref. */
void mandate_jwks_cache_free(mandate_jwks_cache **cache);

/* The key named kid. When the set in hand lacks it, the cache refetches
 * (rate limited: see min_refetch_interval) and looks once more, so a
 * rotation at the provider is picked up. On MANDATE_OK, *key_r is valid as
 * long as the caller holds *set_r: release it with mandate_jwks_unref.
 *  MANDATE_NOT_FOUND: no usable key has that kid, even after a refetch (or
 *      the last fetch, within min_refetch_interval, succeeded without it);
 *  MANDATE_TEMPFAIL: no key can be had now (the provider is unreachable or
 *      answers nonsense, and no set under max_age is in hand; or the kid is
 *      unknown and the refetch failed): the token may well be good;
 *  MANDATE_INVALID: the discovery document names another issuer;
 *  MANDATE_ERROR: out of memory.
 * err gets the reason in each case but MANDATE_OK. */
mandate_rc mandate_jwks_cache_get_key(mandate_jwks_cache *cache, const char *kid,
                                      mandate_jwks **set_r, const EVP_PKEY **key_r,
                                      mandate_error *err);
/* Drops a reference; sets *set to NULL. */
void mandate_jwks_unref(mandate_jwks **set);
/* How many keys a set holds. */
size_t mandate_jwks_size(const mandate_jwks *set);

/* How many times a JWK set was requested (after discovery, whatever the
 * outcome). */
uint64_t mandate_jwks_cache_fetches(const mandate_jwks_cache *cache);

typedef enum mandate_jwks_state {
    MANDATE_JWKS_UNKNOWN = 0, /* never fetched (keys come on first use) */
    MANDATE_JWKS_OK,          /* the last fetch succeeded */
    MANDATE_JWKS_DEGRADED,    /* the last fetch failed; a usable set is held */
    MANDATE_JWKS_UNAVAILABLE  /* the last fetch failed; no usable set */
} mandate_jwks_state;

typedef struct mandate_jwks_status {
    mandate_jwks_state state;
    int64_t age;          /* seconds since the set held was fetched; -1: none */
    size_t keys;          /* in the set held; 0: none */
    int64_t last_attempt; /* when the last fetch began (the cache's clock); 0: never */
    uint64_t fetches;     /* as mandate_jwks_cache_fetches */
    char last_error[MANDATE_ERROR_MAX]; /* of the last fetch; "" when it succeeded */
} mandate_jwks_status;

/* A snapshot, for readiness probes and logs. Never fetches. */
void mandate_jwks_cache_status(mandate_jwks_cache *cache, mandate_jwks_status *status_r);
/* "unknown", "ok", "degraded", "unavailable". */
const char *mandate_jwks_state_name(mandate_jwks_state state);

#endif
