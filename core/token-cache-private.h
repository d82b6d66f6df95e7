/* Tokens whose signature (or store record) was already checked, by SHA-256
 * of the token: an agent presents the same token for many calls, and a
 * signature check (ES256 verify: ~60 µs) costs more than everything else a
 * gateway check does. Only the reading of the token is cached: revocation
 * and the client's status are looked up on every check, and an entry is
 * used as a reading only until the token's own expiry, and after it as the
 * verdict "expired" (an agent that keeps presenting its expired token costs
 * no signature check per call). Cleared whenever the signing keys
 * change. Direct-mapped, fixed size, striped locks. */
#ifndef MANDATE_TOKEN_CACHE_PRIVATE_H
#define MANDATE_TOKEN_CACHE_PRIVATE_H

#include <mandate/format.h>

#define MANDATE_TOKEN_HASH_LEN 32

typedef struct mandate_token_cache mandate_token_cache;

mandate_token_cache *mandate_token_cache_new(size_t slots);
void mandate_token_cache_free(mandate_token_cache **cache);
void mandate_token_cache_clear(mandate_token_cache *cache);

typedef enum mandate_token_cache_answer {
    MANDATE_TOKEN_CACHE_MISS,
    MANDATE_TOKEN_CACHE_HIT,     /* grant_r holds the reading */
    MANDATE_TOKEN_CACHE_EXPIRED, /* read by a format once, or found expired by it;
                                    its expiry has come */
    MANDATE_TOKEN_CACHE_ANSWERS_ /* how many answers there are */
} mandate_token_cache_answer;

/* The cached grant (strings copied into pool) when the token is there and
 * not expired at now. A token found there expired stays expired (its claims
 * are signed or stored, and the cache is cleared when the keys change), so
 * EXPIRED is the verdict without checking the signature again. */
mandate_token_cache_answer
mandate_token_cache_get(mandate_token_cache *cache,
                        const unsigned char hash[MANDATE_TOKEN_HASH_LEN], mandate_pool *pool,
                        int64_t now, mandate_grant *grant_r);

/* How many times the cache was cleared: read before a token is read by its
 * format, and given back to put, so that a reading made with the keys of
 * before a clear is not kept after it. */
uint64_t mandate_token_cache_epoch(mandate_token_cache *cache);
/* Keeps grant for the token, unless the cache was cleared since epoch. */
void mandate_token_cache_put(mandate_token_cache *cache,
                             const unsigned char hash[MANDATE_TOKEN_HASH_LEN],
                             const mandate_grant *grant, uint64_t epoch);

#endif
