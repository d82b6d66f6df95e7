/* The cache of checked tokens (core/token-cache.c): a reading while the
 * token lives, the verdict "expired" after, nothing for another token. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pool-private.h"
#include "token-cache-private.h"

static void hash_of(unsigned char hash[MANDATE_TOKEN_HASH_LEN], unsigned char seed)
{
    for (size_t i = 0; i < MANDATE_TOKEN_HASH_LEN; i++)
        hash[i] = (unsigned char)(seed + i * 7);
}

static mandate_grant grant_expiring_at(int64_t exp)
{
    return (mandate_grant){.issuer = "https://broker.example",
                           .subject = "advisor-17",
                           .client_id = "marketpulse-agent",
                           .scope = "mcp:call",
                           .audience = "https://mcp.example/market-calendar",
                           .jti = "jti-1",
                           .issued_at = exp - 3600,
                           .expires_at = exp};
}

static void test_hit_while_alive_expired_after(void **state)
{
    (void)state;
    mandate_token_cache *cache = mandate_token_cache_new(64);
    mandate_pool *pool = mandate_pool_new();
    unsigned char hash[MANDATE_TOKEN_HASH_LEN];
    hash_of(hash, 1);
    mandate_grant put = grant_expiring_at(1000);
    char scope[] = "mcp:call";
    put.scope = scope;
    mandate_token_cache_put(cache, hash, &put, mandate_token_cache_epoch(cache));
    scope[0] = 'X'; /* the cache keeps its own copy */

    mandate_grant got;
    memset(&got, 0, sizeof(got));
    assert_int_equal(mandate_token_cache_get(cache, hash, pool, 999, &got),
                     MANDATE_TOKEN_CACHE_HIT);
    assert_string_equal(got.scope, "mcp:call");
    assert_string_equal(got.client_id, "marketpulse-agent");
    assert_null(got.actor);
    assert_null(got.prior_actors);
    assert_int_equal(got.expires_at, 1000);

    /* a chain of actors is kept whole */
    unsigned char chained[MANDATE_TOKEN_HASH_LEN];
    hash_of(chained, 2);
    put.actor = "agent-c";
    put.prior_actors = "agent-b agent-a";
    mandate_token_cache_put(cache, chained, &put, mandate_token_cache_epoch(cache));
    assert_int_equal(mandate_token_cache_get(cache, chained, pool, 999, &got),
                     MANDATE_TOKEN_CACHE_HIT);
    assert_string_equal(got.actor, "agent-c");
    assert_string_equal(got.prior_actors, "agent-b agent-a");

    /* at its expiry and after, the verdict, and no reading */
    for (int64_t now = 1000; now <= 100000; now += 99000) {
        memset(&got, 0, sizeof(got));
        assert_int_equal(mandate_token_cache_get(cache, hash, pool, now, &got),
                         MANDATE_TOKEN_CACHE_EXPIRED);
        assert_null(got.client_id);
    }
    mandate_pool_free(&pool);
    mandate_token_cache_free(&cache);
    assert_null(cache);
}

static void test_other_tokens_miss(void **state)
{
    (void)state;
    mandate_token_cache *cache = mandate_token_cache_new(1); /* every token shares the slot */
    mandate_pool *pool = mandate_pool_new();
    unsigned char a[MANDATE_TOKEN_HASH_LEN], b[MANDATE_TOKEN_HASH_LEN];
    hash_of(a, 1);
    hash_of(b, 2);
    mandate_grant g = grant_expiring_at(1000), got;
    assert_int_equal(mandate_token_cache_get(cache, a, pool, 10, &got),
                     MANDATE_TOKEN_CACHE_MISS);
    mandate_token_cache_put(cache, a, &g, mandate_token_cache_epoch(cache));
    assert_int_equal(mandate_token_cache_get(cache, b, pool, 10, &got),
                     MANDATE_TOKEN_CACHE_MISS);
    /* an expired entry says nothing of another token in its slot */
    assert_int_equal(mandate_token_cache_get(cache, b, pool, 5000, &got),
                     MANDATE_TOKEN_CACHE_MISS);
    mandate_token_cache_put(cache, b, &g, mandate_token_cache_epoch(cache));
    assert_int_equal(mandate_token_cache_get(cache, a, pool, 10, &got),
                     MANDATE_TOKEN_CACHE_MISS);
    assert_int_equal(mandate_token_cache_get(cache, b, pool, 10, &got),
                     MANDATE_TOKEN_CACHE_HIT);
    mandate_pool_free(&pool);
    mandate_token_cache_free(&cache);
}

static void test_clear_forgets_the_verdict_too(void **state)
{
    (void)state;
    mandate_token_cache *cache = mandate_token_cache_new(16);
    mandate_pool *pool = mandate_pool_new();
    unsigned char hash[MANDATE_TOKEN_HASH_LEN];
    hash_of(hash, 3);
    mandate_grant g = grant_expiring_at(1000), got;
    mandate_token_cache_put(cache, hash, &g, mandate_token_cache_epoch(cache));
    assert_int_equal(mandate_token_cache_get(cache, hash, pool, 2000, &got),
                     MANDATE_TOKEN_CACHE_EXPIRED);
    /* new keys: a token signed by a key now gone must be checked again */
    mandate_token_cache_clear(cache);
    assert_int_equal(mandate_token_cache_get(cache, hash, pool, 2000, &got),
                     MANDATE_TOKEN_CACHE_MISS);
    assert_int_equal(mandate_token_cache_get(cache, hash, pool, 10, &got),
                     MANDATE_TOKEN_CACHE_MISS);
    mandate_pool_free(&pool);
    mandate_token_cache_free(&cache);
}

/* A reading begun before new keys came (and the clear that goes with them)
 * is not kept: it may have been made with a key that is gone. */
static void test_reading_from_before_a_clear_is_dropped(void **state)
{
    (void)state;
    mandate_token_cache *cache = mandate_token_cache_new(16);
    mandate_pool *pool = mandate_pool_new();
    unsigned char hash[MANDATE_TOKEN_HASH_LEN];
    hash_of(hash, 4);
    mandate_grant g = grant_expiring_at(1000), got;
    uint64_t before = mandate_token_cache_epoch(cache);
    mandate_token_cache_clear(cache);
    assert_int_not_equal(mandate_token_cache_epoch(cache), before);
    mandate_token_cache_put(cache, hash, &g, before);
    assert_int_equal(mandate_token_cache_get(cache, hash, pool, 10, &got),
                     MANDATE_TOKEN_CACHE_MISS);
    mandate_token_cache_put(cache, hash, &g, mandate_token_cache_epoch(cache));
    assert_int_equal(mandate_token_cache_get(cache, hash, pool, 10, &got),
                     MANDATE_TOKEN_CACHE_HIT);
    mandate_pool_free(&pool);
    mandate_token_cache_free(&cache);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_while_alive_expired_after),
        cmocka_unit_test(test_other_tokens_miss),
        cmocka_unit_test(test_clear_forgets_the_verdict_too),
        cmocka_unit_test(test_reading_from_before_a_clear_is_dropped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
