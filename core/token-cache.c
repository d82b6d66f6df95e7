#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "grant-claims.h"
#include "pool-private.h"
#include "token-cache-private.h"
#include "util-private.h"

#define LOCK_STRIPES 64

typedef struct entry {
    unsigned char hash[MANDATE_TOKEN_HASH_LEN];
    bool used;
    mandate_grant grant; /* strings point into blob */
    char *blob;
    size_t blob_len;
} entry;

struct mandate_token_cache {
    size_t slots;
    entry *entries;
    pthread_mutex_t locks[LOCK_STRIPES];
    _Atomic uint64_t epoch;
};

mandate_token_cache *mandate_token_cache_new(size_t slots)
{
    mandate_token_cache *c = mandate_xcalloc(1, sizeof(*c));
    c->slots = slots ? slots : 1;
    c->entries = mandate_xcalloc(c->slots, sizeof(entry));
    for (size_t i = 0; i < LOCK_STRIPES; i++)
        pthread_mutex_init(&c->locks[i], NULL);
    return c;
}

static void entry_clear(entry *e)
{
    free(e->blob);
    memset(e, 0, sizeof(*e));
}

uint64_t mandate_token_cache_epoch(mandate_token_cache *c)
{
    return atomic_load(&c->epoch);
}

void mandate_token_cache_clear(mandate_token_cache *c)
{
    /* first: a put that sees the old epoch under its slot's lock is swept
     * below, one that comes later sees the new one */
    atomic_fetch_add(&c->epoch, 1);
    for (size_t i = 0; i < c->slots; i++) {
        pthread_mutex_t *lock = &c->locks[i % LOCK_STRIPES];
        pthread_mutex_lock(lock);
        entry_clear(&c->entries[i]);
        pthread_mutex_unlock(lock);
    }
}

void mandate_token_cache_free(mandate_token_cache **cp)
{
    mandate_token_cache *c = *cp;
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->slots; i++)
        free(c->entries[i].blob);
    for (size_t i = 0; i < LOCK_STRIPES; i++)
        pthread_mutex_destroy(&c->locks[i]);
    free(c->entries);
    free(c);
    *cp = NULL;
}

static size_t slot_of(const mandate_token_cache *c, const unsigned char *hash)
{
    size_t v;
    memcpy(&v, hash, sizeof(v)); /* a SHA-256: any bytes are uniform */
    return v % c->slots;
}

void mandate_token_cache_put(mandate_token_cache *c,
                             const unsigned char hash[MANDATE_TOKEN_HASH_LEN],
                             const mandate_grant *grant, uint64_t epoch)
{
    mandate_grant g = *grant;
    size_t len = mandate_grant_strings_size(&g);
    char *blob = mandate_xmalloc(len ? len : 1);
    mandate_grant_strings_copy(&g, blob);
    size_t slot = slot_of(c, hash);
    pthread_mutex_t *lock = &c->locks[slot % LOCK_STRIPES];
    pthread_mutex_lock(lock);
    if (atomic_load(&c->epoch) != epoch) {
        pthread_mutex_unlock(lock);
        free(blob);
        return;
    }
    entry *e = &c->entries[slot];
    entry_clear(e);
    memcpy(e->hash, hash, MANDATE_TOKEN_HASH_LEN);
    e->used = true;
    e->grant = g;
    e->blob = blob;
    e->blob_len = len;
    pthread_mutex_unlock(lock);
}

mandate_token_cache_answer
mandate_token_cache_get(mandate_token_cache *c,
                        const unsigned char hash[MANDATE_TOKEN_HASH_LEN], mandate_pool *pool,
                        int64_t now, mandate_grant *grant_r)
{
    size_t slot = slot_of(c, hash);
    pthread_mutex_t *lock = &c->locks[slot % LOCK_STRIPES];
    pthread_mutex_lock(lock);
    entry *e = &c->entries[slot];
    mandate_token_cache_answer answer = MANDATE_TOKEN_CACHE_MISS;
    if (e->used && memcmp(e->hash, hash, MANDATE_TOKEN_HASH_LEN) == 0)
        answer =
            e->grant.expires_at > now ? MANDATE_TOKEN_CACHE_HIT : MANDATE_TOKEN_CACHE_EXPIRED;
    if (answer == MANDATE_TOKEN_CACHE_HIT) {
        *grant_r = e->grant;
        mandate_grant_strings_copy(grant_r, mandate_pool_alloc(pool, e->blob_len));
    }
    pthread_mutex_unlock(lock);
    return answer;
}
