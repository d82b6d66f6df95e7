/* Tokens whose signature (or store record) was already checked, by SHA-256
 * of the token: an agent presents the same token for many calls, and a
 * signature check (ES256 verify: ~60 µs) costs more than everything else a
 * gateway check does. Only the reading of the token is cached: revocation
 * and the client's status are looked up on every check, and an entry is
 * used only until the token's own expiry. Cleared whenever the signing keys
 * change. Direct-mapped, fixed size, striped locks. */
#ifndef MANDATE_TOKEN_CACHE_PRIVATE_H
#define MANDATE_TOKEN_CACHE_PRIVATE_H

#include <mandate/format.h>

#define MANDATE_TOKEN_HASH_LEN 32

typedef struct mandate_token_cache mandate_token_cache;

mandate_token_cache *mandate_token_cache_new(size_t slots);
void mandate_token_cache_free(mandate_token_cache **cache);
void mandate_token_cache_clear(mandate_token_cache *cache);

/* The cached grant (strings copied into pool), if the token is there and
 * not expired at now. */
bool mandate_token_cache_get(mandate_token_cache *cache,
                             const unsigned char hash[MANDATE_TOKEN_HASH_LEN],
                             mandate_pool *pool, int64_t now, mandate_grant *grant_r);
void mandate_token_cache_put(mandate_token_cache *cache,
                             const unsigned char hash[MANDATE_TOKEN_HASH_LEN],
                             const mandate_grant *grant);

#endif
