/* The cache of checked tokens (core/token-cache.c): a reading while the
 * token lives, the verdict "expired" after, nothing for another token. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pool-private.h"
#include "test-helpers.h"
#include "token-cache-private.h"

static void hash_of(unsigned char hash[MANDATE_TOKEN_HASH_LEN], unsigned char seed)
{
    for (size_t i = 0; i < MANDATE_TOKEN_HASH_LEN; i++)
        hash[i] = (unsigned char)(seed + i * 7);
}

/* Each test's cache of some size (the prestate), a pool for its readings,
 * and a grant alive until 1000 of two tokens, a and b. */
typedef struct fixture {
    mandate_token_cache *cache;
    mandate_pool *pool;
    mandate_grant grant, got;
    unsigned char a[MANDATE_TOKEN_HASH_LEN], b[MANDATE_TOKEN_HASH_LEN];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    f->cache = mandate_token_cache_new(*(const size_t *)*state);
    f->pool = mandate_pool_new();
    f->grant = test_sample_grant(1000 - 600);
    hash_of(f->a, 1);
    hash_of(f->b, 2);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    mandate_pool_free(&f->pool);
    mandate_token_cache_free(&f->cache);
    assert_null(f->cache);
    free(f);
    return 0;
}

/* The grant, as read now by a check that began at this epoch. */
static void put(fixture *f, const unsigned char *hash, const mandate_grant *grant)
{
    mandate_token_cache_put(f->cache, hash, grant, mandate_token_cache_epoch(f->cache));
}

/* Looking hash up at now gives want (a reading in f->got). */
static void expect(fixture *f, const unsigned char *hash, int64_t now,
                   mandate_token_cache_answer want)
{
    memset(&f->got, 0, sizeof(f->got));
    assert_int_equal(mandate_token_cache_get(f->cache, hash, f->pool, now, &f->got), want);
}

static void test_hit_while_alive_expired_after(void **state)
{
    fixture *f = *state;
    mandate_grant put_grant = f->grant;
    char scope[] = "mcp:call";
    put_grant.scope = scope;
    put(f, f->a, &put_grant);
    scope[0] = 'X'; /* the cache keeps its own copy */

    expect(f, f->a, 999, MANDATE_TOKEN_CACHE_HIT);
    assert_string_equal(f->got.scope, "mcp:call");
    assert_string_equal(f->got.client_id, "build-agent");
    assert_null(f->got.actor);
    assert_null(f->got.prior_actors);
    assert_int_equal(f->got.expires_at, 1000);

    /* a chain of actors is kept whole */
    put_grant.actor = "agent-c";
    put_grant.prior_actors = "agent-b agent-a";
    put(f, f->b, &put_grant);
    expect(f, f->b, 999, MANDATE_TOKEN_CACHE_HIT);
    assert_string_equal(f->got.actor, "agent-c");
    assert_string_equal(f->got.prior_actors, "agent-b agent-a");

    /* at its expiry and after, the verdict, and no reading */
    for (int64_t now = 1000; now <= 100000; now += 99000) {
        expect(f, f->a, now, MANDATE_TOKEN_CACHE_EXPIRED);
        assert_null(f->got.client_id);
    }
}

static void test_other_tokens_miss(void **state)
{
    fixture *f = *state; /* every token shares the one slot */
    expect(f, f->a, 10, MANDATE_TOKEN_CACHE_MISS);
    put(f, f->a, &f->grant);
    expect(f, f->b, 10, MANDATE_TOKEN_CACHE_MISS);
    /* an expired entry says nothing of another token in its slot */
    expect(f, f->b, 5000, MANDATE_TOKEN_CACHE_MISS);
    put(f, f->b, &f->grant);
    expect(f, f->a, 10, MANDATE_TOKEN_CACHE_MISS);
    expect(f, f->b, 10, MANDATE_TOKEN_CACHE_HIT);
}

static void test_clear_forgets_the_verdict_too(void **state)
{
    fixture *f = *state;
    put(f, f->a, &f->grant);
    expect(f, f->a, 2000, MANDATE_TOKEN_CACHE_EXPIRED);
    /* new keys: a token signed by a key now gone must be checked again */
    mandate_token_cache_clear(f->cache);
    expect(f, f->a, 2000, MANDATE_TOKEN_CACHE_MISS);
    expect(f, f->a, 10, MANDATE_TOKEN_CACHE_MISS);
}

/* A reading begun before new keys came (and the clear that goes with them)
 * is not kept: it may have been made with a key that is gone. */
static void test_reading_from_before_a_clear_is_dropped(void **state)
{
    fixture *f = *state;
    uint64_t before = mandate_token_cache_epoch(f->cache);
    mandate_token_cache_clear(f->cache);
    assert_int_not_equal(mandate_token_cache_epoch(f->cache), before);
    mandate_token_cache_put(f->cache, f->a, &f->grant, before);
    expect(f, f->a, 10, MANDATE_TOKEN_CACHE_MISS);
    put(f, f->a, &f->grant);
    expect(f, f->a, 10, MANDATE_TOKEN_CACHE_HIT);
}

int main(void)
{
    static size_t roomy = 64, one_slot = 1, some = 16;
#define T(name, size) cmocka_unit_test_prestate_setup_teardown(name, setup, teardown, &size)
    const struct CMUnitTest tests[] = {
        T(test_hit_while_alive_expired_after, roomy),
        T(test_other_tokens_miss, one_slot),
        T(test_clear_forgets_the_verdict_too, some),
        T(test_reading_from_before_a_clear_is_dropped, some),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
