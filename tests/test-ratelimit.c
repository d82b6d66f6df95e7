#include "config.h"

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ratelimit-private.h"

#define S 1000000                    /* microseconds in a second */
#define T0 ((int64_t)1700000000 * S) /* any time: only differences count */

/* Takes n tokens at now, all of which must be allowed. */
static void drain(mandate_ratelimit *rl, const char *key, double rate, double burst,
                  int64_t now, int n)
{
    for (int i = 0; i < n; i++)
        assert_true(mandate_ratelimit_take(rl, key, rate, burst, now, NULL));
}

static void assert_refused(mandate_ratelimit *rl, const char *key, double rate, double burst,
                           int64_t now, unsigned retry_after)
{
    unsigned got = 0;
    assert_false(mandate_ratelimit_take(rl, key, rate, burst, now, &got));
    assert_int_equal(got, retry_after);
}

/* Takes n tokens for each key named by one letter of keys (at now, all
 * allowed), and the same for refusals. */
static void drain_each(mandate_ratelimit *rl, const char *keys, double rate, double burst,
                       int64_t now, int n)
{
    for (const char *k = keys; *k != '\0'; k++)
        drain(rl, (char[]){*k, '\0'}, rate, burst, now, n);
}

static void refuse_each(mandate_ratelimit *rl, const char *keys, double rate, double burst,
                        int64_t now, unsigned retry_after)
{
    for (const char *k = keys; *k != '\0'; k++)
        assert_refused(rl, (char[]){*k, '\0'}, rate, burst, now, retry_after);
}

/* The table of the tests that take it from the fixture: roomy (1024
 * buckets), or one set of 4, where which bucket goes is exact. */
static int roomy_table(void **state)
{
    *state = mandate_ratelimit_new(1024);
    return 0;
}

static int one_set_table(void **state)
{
    *state = mandate_ratelimit_new(4);
    return 0;
}

static int free_table(void **state)
{
    mandate_ratelimit_free((mandate_ratelimit **)state);
    return 0;
}

static void test_burst_then_refused(void **state)
{
    (void)state;
    mandate_ratelimit *rl = mandate_ratelimit_new(1024);
    drain(rl, "advisor", 0.5, 3, T0, 3);
    assert_refused(rl, "advisor", 0.5, 3, T0, 2); /* one token at 0.5/s: 2 s */
    assert_refused(rl, "advisor", 0.5, 3, T0, 2); /* a refusal takes nothing */
    assert_false(mandate_ratelimit_take(rl, "advisor", 0.5, 3, T0, NULL));

    drain(rl, "fast", 2, 4, T0, 4);
    assert_refused(rl, "fast", 2, 4, T0, 1); /* 0.5 s, rounded up */
    drain(rl, "slow", 1.0 / 60, 1, T0, 1);
    assert_refused(rl, "slow", 1.0 / 60, 1, T0, 60);
    assert_refused(rl, "slow", 1.0 / 60, 1, T0 + 59 * S + S / 2, 1);
    assert_int_equal(mandate_ratelimit_size(rl), 3);
    mandate_ratelimit_free(&rl);
    assert_null(rl);
    mandate_ratelimit_free(&rl);
}

static void test_refill(void **state)
{
    mandate_ratelimit *rl = *state;
    drain(rl, "advisor", 0.5, 3, T0, 3);
    assert_refused(rl, "advisor", 0.5, 3, T0 + 1 * S, 1); /* half a token */
    drain(rl, "advisor", 0.5, 3, T0 + 2 * S, 1);
    assert_refused(rl, "advisor", 0.5, 3, T0 + 2 * S, 2);
    assert_refused(rl, "advisor", 0.5, 3, T0 + 3 * S, 1);
    /* a long pause refills to the burst, no more */
    drain(rl, "advisor", 0.5, 3, T0 + 1000 * S, 3);
    assert_refused(rl, "advisor", 0.5, 3, T0 + 1000 * S, 2);

    /* tenths of a token, added up over refused calls, make a whole one */
    drain(rl, "steps", 10, 2, T0, 2);
    for (int i = 1; i < 10; i++)
        assert_refused(rl, "steps", 10, 2, T0 + i * (S / 100), 1);
    drain(rl, "steps", 10, 2, T0 + S / 10, 1);
    assert_refused(rl, "steps", 10, 2, T0 + S / 10, 1);
}

static void test_keys_independent(void **state)
{
    mandate_ratelimit *rl = *state;
    drain(rl, "t:advisor", 1, 2, T0, 2);
    assert_refused(rl, "t:advisor", 1, 2, T0, 1);
    drain(rl, "g:advisor", 1, 2, T0, 2); /* same client, other endpoint */
    drain(rl, "t:advisor2", 1, 2, T0, 2);
    drain(rl, "t:adviso", 1, 2, T0, 2);
    assert_refused(rl, "t:advisor", 1, 2, T0, 1);

    /* long keys that differ only in their last byte */
    char a[301], b[301];
    memset(a, 'k', 300);
    a[300] = 0;
    memcpy(b, a, sizeof(b));
    b[299] = 'j';
    drain(rl, a, 1, 1, T0, 1);
    assert_refused(rl, a, 1, 1, T0, 1);
    drain(rl, b, 1, 1, T0, 1);
    drain(rl, "", 1, 1, T0, 1); /* the empty key is a key like another */
    assert_refused(rl, "", 1, 1, T0, 1);
    assert_int_equal(mandate_ratelimit_size(rl), 7);
}

static void test_changed_limits_apply(void **state)
{
    mandate_ratelimit *rl = *state;
    /* a smaller burst caps the tokens at once */
    drain(rl, "c", 1, 10, T0, 1);
    drain(rl, "c", 1, 2, T0, 2);
    assert_refused(rl, "c", 1, 2, T0, 1);
    /* a slower rate: a longer wait, and a slower refill */
    assert_refused(rl, "c", 0.25, 2, T0, 4);
    assert_refused(rl, "c", 0.25, 2, T0 + 2 * S, 2);
    /* a faster rate refills the time since the last call at the new rate */
    drain(rl, "c", 1, 2, T0 + 3 * S, 1); /* 0.5 + 1 s at 1/s */
    assert_refused(rl, "c", 1, 2, T0 + 3 * S, 1);
    /* a larger burst adds no tokens at once, but room to refill into */
    assert_refused(rl, "c", 1, 5, T0 + 3 * S + S / 4, 1);
    drain(rl, "c", 1, 5, T0 + 100 * S, 5);
    assert_refused(rl, "c", 1, 5, T0 + 100 * S, 1);
    /* a bucket full at its old burst is no bucket: a larger burst is all there */
    drain(rl, "f", 1, 2, T0, 1);
    drain(rl, "f", 1, 5, T0 + S, 5);
    assert_refused(rl, "f", 1, 5, T0 + S, 1);
}

/* peek answers as take would, and takes nothing, makes no bucket */
static void test_peek(void **state)
{
    mandate_ratelimit *rl = *state;
    assert_true(mandate_ratelimit_peek(rl, "p", 0.5, 3, T0));
    assert_int_equal(mandate_ratelimit_size(rl), 0);
    drain(rl, "p", 0.5, 3, T0, 2);
    for (int i = 0; i < 5; i++)
        assert_true(mandate_ratelimit_peek(rl, "p", 0.5, 3, T0));
    drain(rl, "p", 0.5, 3, T0, 1);
    assert_false(mandate_ratelimit_peek(rl, "p", 0.5, 3, T0));
    assert_false(mandate_ratelimit_peek(rl, "p", 0.5, 3, T0 + 1 * S)); /* half a token */
    assert_true(mandate_ratelimit_peek(rl, "p", 0.5, 3, T0 + 2 * S));
    drain(rl, "p", 0.5, 3, T0 + 2 * S, 1);
    assert_true(mandate_ratelimit_peek(rl, "p", 0, 3, T0 + 2 * S)); /* no limit */
    assert_false(mandate_ratelimit_peek(rl, NULL, 0.5, 3, T0));
    assert_int_equal(mandate_ratelimit_size(rl), 1);
}

static void test_unlimited(void **state)
{
    (void)state;
    mandate_ratelimit *rl = mandate_ratelimit_new(16);
    unsigned retry = 12345;
    for (int i = 0; i < 10000; i++) {
        assert_true(mandate_ratelimit_take(rl, "free", 0, 1, T0, &retry));
        assert_true(mandate_ratelimit_take(rl, "free", -1, 1, T0, &retry));
        assert_true(mandate_ratelimit_take(rl, "free", INFINITY, 1, T0, &retry));
        assert_true(mandate_ratelimit_take(rl, "free", 1, INFINITY, T0, &retry));
    }
    assert_int_equal(retry, 12345); /* untouched when allowed */
    assert_int_equal(mandate_ratelimit_size(rl), 0);
    mandate_ratelimit_free(&rl);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    mandate_ratelimit *rl = mandate_ratelimit_new(0); /* taken as 1 */
    assert_refused(rl, NULL, 1, 1, T0, 1);
    assert_refused(rl, "k", NAN, 1, T0, 1);
    assert_refused(rl, "k", 1, NAN, T0, 1);
    assert_false(mandate_ratelimit_take(rl, NULL, 0, 1, T0, NULL));
    assert_int_equal(mandate_ratelimit_size(rl), 0);
    /* a burst under 1 is 1 */
    drain(rl, "k", 1, 0, T0, 1);
    assert_refused(rl, "k", 1, 0.5, T0, 1);
    assert_int_equal(mandate_ratelimit_size(rl), 1);
    /* one bucket: a second key takes it over */
    drain(rl, "other", 1, 1, T0, 1);
    assert_int_equal(mandate_ratelimit_size(rl), 1);
    mandate_ratelimit_free(&rl);
}

static void test_clock_going_back(void **state)
{
    mandate_ratelimit *rl = *state;
    drain(rl, "k", 1, 1, T0, 1);
    /* a thread that read the clock earlier gets the lock later */
    assert_refused(rl, "k", 1, 1, T0 - 10 * S, 1);
    assert_refused(rl, "k", 1, 1, T0 + S / 2, 1);
    drain(rl, "k", 1, 1, T0 + S, 1);
    assert_refused(rl, "k", 1, 1, T0 + S, 1);
    /* extreme times neither overflow nor refill */
    drain(rl, "x", 1e-12, 3, INT64_MIN, 3);
    assert_refused(rl, "x", 1e-12, 3, INT64_MIN + 1, UINT_MAX);
    drain(rl, "y", 1e-12, 1, INT64_MAX - 10, 1);
    assert_refused(rl, "y", 1e-12, 1, INT64_MAX - 5, UINT_MAX);
}

/* 1,000,000 keys through 1024 buckets (and 1020: not a multiple of the set
 * size): never more buckets than that, and a key new to the table is never
 * refused. */
static void test_memory_bounded(void **state)
{
    (void)state;
    const size_t sizes[] = {1024, 1020};
    for (size_t n = 0; n < sizeof(sizes) / sizeof(sizes[0]); n++) {
        mandate_ratelimit *rl = mandate_ratelimit_new(sizes[n]);
        char key[32];
        for (int i = 0; i < 1000000; i++) {
            snprintf(key, sizeof(key), "client-%d", i);
            drain(rl, key, 1, 5, T0 + i, 1);
            if (i % 997 == 0)
                assert_true(mandate_ratelimit_size(rl) <= sizes[n]);
        }
        assert_int_equal(mandate_ratelimit_size(rl), sizes[n]);
        mandate_ratelimit_free(&rl);
    }
}

/* The guarantee against churn: a bucket is evicted only for one that will
 * be full no later. A refused client (0 tokens of 10 at 0.5/s: full in
 * 20 s) stays refused while a million one-off keys (9 tokens of 10: full
 * in 2 s) go through a table of 1024; least-recently-used eviction would
 * have lost its bucket and given it a fresh burst. */
static void test_refused_key_survives_churn(void **state)
{
    mandate_ratelimit *rl = *state;
    drain(rl, "busy", 0.5, 10, T0, 10);
    assert_refused(rl, "busy", 0.5, 10, T0, 2);
    char key[32];
    for (int i = 0; i < 1000000; i++) {
        snprintf(key, sizeof(key), "one-off-%d", i);
        drain(rl, key, 0.5, 10, T0 + i, 1);
        if (i % 1000 == 0) {
            assert_refused(rl, "busy", 0.5, 10, T0 + i, 2);
            assert_true(mandate_ratelimit_size(rl) <= 1024);
        }
    }
    /* its bucket kept its state: one token back after 2 s, not ten */
    drain(rl, "busy", 0.5, 10, T0 + 2 * S, 1);
    assert_refused(rl, "busy", 0.5, 10, T0 + 2 * S, 2);
}

/* With at most 8 buckets there is one set: which bucket goes is exact. An
 * idle bucket goes first, though it is the most recently used. */
static void test_idle_bucket_goes_first(void **state)
{
    mandate_ratelimit *rl = *state;
    drain_each(rl, "acd", 1, 10, T0, 10); /* full at T0 + 10 s */
    drain(rl, "b", 1, 2, T0 + S, 1);      /* full at T0 + 2 s */
    drain(rl, "e", 1, 10, T0 + 3 * S, 1);
    /* "a", "c" and "d" kept their buckets: 3 tokens back, not 10 */
    const char *kept[] = {"a", "c", "d"};
    for (int i = 0; i < 3; i++) {
        drain(rl, kept[i], 1, 10, T0 + 3 * S, 3);
        assert_refused(rl, kept[i], 1, 10, T0 + 3 * S, 1);
    }
    assert_int_equal(mandate_ratelimit_size(rl), 4);
}

static void test_soonest_full_goes(void **state)
{
    mandate_ratelimit *rl = *state;
    /* all drained at T0 at 1/s: full at T0 + 2, 5, 3 and 4 s */
    static const char *const keys[] = {"a", "b", "c", "d"};
    static const int bursts[] = {2, 5, 3, 4};
    for (int i = 0; i < 4; i++)
        drain(rl, keys[i], 1, bursts[i], T0, bursts[i]);
    /* "a" is the most recently used: still the one to go */
    assert_refused(rl, "a", 1, 2, T0 + S / 2, 1);
    drain(rl, "e", 1, 100, T0 + S / 2, 1);
    for (int i = 1; i < 4; i++)
        assert_refused(rl, keys[i], 1, bursts[i], T0 + S / 2, 1);
    drain(rl, "a", 1, 2, T0 + S / 2, 2); /* a new bucket: a full burst */
    assert_int_equal(mandate_ratelimit_size(rl), 4);
}

static void test_ties_go_least_recently_used(void **state)
{
    mandate_ratelimit *rl = *state;
    /* all full at T0 + 2 s */
    drain_each(rl, "abcd", 1, 2, T0, 2);
    refuse_each(rl, "acd", 1, 2, T0 + S / 4, 1);
    drain(rl, "e", 1, 2, T0 + S / 2, 1); /* "b": the least recently used */
    refuse_each(rl, "acd", 1, 2, T0 + S / 2, 1);
    drain(rl, "b", 1, 2, T0 + S / 2, 2);
}

#define THREADS 4

typedef struct worker {
    mandate_ratelimit *rl;
    const char *key;
    int keys; /* > 0: this many keys of its own, named after key */
    int takes;
    double burst;
    int allowed;
    int allowed_per_key[64];
} worker;

static void *one_key_worker(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < w->takes; i++)
        if (mandate_ratelimit_take(w->rl, w->key, 1e-9, w->burst, T0 + i, NULL))
            w->allowed++;
    return NULL;
}

static void test_concurrent_one_key(void **state)
{
    mandate_ratelimit *rl = *state;
    for (int round = 0; round < 5; round++) {
        char key[16];
        snprintf(key, sizeof(key), "shared-%d", round);
        worker w[THREADS];
        pthread_t t[THREADS];
        for (int i = 0; i < THREADS; i++) {
            w[i] = (worker){.rl = rl, .key = key, .takes = 20000, .burst = 5000};
            assert_int_equal(pthread_create(&t[i], NULL, one_key_worker, &w[i]), 0);
        }
        int total = 0;
        for (int i = 0; i < THREADS; i++) {
            pthread_join(t[i], NULL);
            total += w[i].allowed;
        }
        assert_int_equal(total, 5000);
    }
}

static void *many_keys_worker(void *arg)
{
    worker *w = arg;
    char key[64];
    for (int i = 0; i < w->takes; i++) {
        for (int k = 0; k < w->keys; k++) {
            snprintf(key, sizeof(key), "%s-%d", w->key, k);
            if (mandate_ratelimit_take(w->rl, key, 1e-9, w->burst, T0 + i, NULL))
                w->allowed_per_key[k]++;
        }
    }
    return NULL;
}

/* Threads on their own keys in a roomy table: each key its burst exactly. */
static void test_concurrent_many_keys(void **state)
{
    (void)state;
    mandate_ratelimit *rl = mandate_ratelimit_new(1 << 16);
    static const char *names[THREADS] = {"w0", "w1", "w2", "w3"};
    worker w[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){.rl = rl, .key = names[i], .keys = 64, .takes = 100, .burst = 37};
        assert_int_equal(pthread_create(&t[i], NULL, many_keys_worker, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        for (int k = 0; k < 64; k++)
            assert_int_equal(w[i].allowed_per_key[k], 37);
    }
    assert_int_equal(mandate_ratelimit_size(rl), THREADS * 64);
    mandate_ratelimit_free(&rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_refused),
        cmocka_unit_test_setup_teardown(test_refill, roomy_table, free_table),
        cmocka_unit_test_setup_teardown(test_keys_independent, roomy_table, free_table),
        cmocka_unit_test_setup_teardown(test_changed_limits_apply, roomy_table, free_table),
        cmocka_unit_test_setup_teardown(test_peek, roomy_table, free_table),
        cmocka_unit_test(test_unlimited),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test_setup_teardown(test_clock_going_back, roomy_table, free_table),
        cmocka_unit_test(test_memory_bounded),
        cmocka_unit_test_setup_teardown(test_refused_key_survives_churn, roomy_table,
                                        free_table),
        cmocka_unit_test_setup_teardown(test_idle_bucket_goes_first, one_set_table, free_table),
        cmocka_unit_test_setup_teardown(test_soonest_full_goes, one_set_table, free_table),
        cmocka_unit_test_setup_teardown(test_ties_go_least_recently_used, one_set_table,
                                        free_table),
        cmocka_unit_test_setup_teardown(test_concurrent_one_key, roomy_table, free_table),
        cmocka_unit_test(test_concurrent_many_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
