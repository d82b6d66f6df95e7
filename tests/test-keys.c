/* Signing keys (core/keys.c): made by the format, wrapped under the KEK
 * before they reach the store, handed to the formats and published as the
 * JWKS, rotated, retired, purged; and each failure on the way, the store's
 * and the format's injected by wrapping the facade's calls. The real sqlite
 * store and jwt format through the loader. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clock-private.h"
#include "jose.h"
#include "keys-private.h"
#include "plugins-private.h"
#include "pool-private.h"
#include "runtime-fixture.h"
#include "test-helpers.h"
#include "token-cache-private.h"
#include "util-private.h"

/* --- failures injected into the facade ------------------------------------- */

static int set_keys_calls;

TEST_FACADE_WRAP(store_key_add,
                 (const mandate_instance *store, const mandate_key *key, mandate_error *err),
                 (store, key, err))
TEST_FACADE_WRAP(store_key_update,
                 (const mandate_instance *store, const mandate_key *key, mandate_error *err),
                 (store, key, err))
TEST_FACADE_WRAP(store_key_list,
                 (const mandate_instance *store, mandate_key_cb each, void *ctx,
                  mandate_error *err),
                 (store, each, ctx, err))
TEST_FACADE_WRAP(store_key_delete,
                 (const mandate_instance *store, const char *kid, mandate_error *err),
                 (store, kid, err))
TEST_FACADE_WRAP(store_generation,
                 (const mandate_instance *store, uint64_t *generation_r, mandate_error *err),
                 (store, generation_r, err))

__typeof__(mandate_format_set_keys) __real_mandate_format_set_keys;
__typeof__(mandate_format_set_keys) __wrap_mandate_format_set_keys;
mandate_rc __wrap_mandate_format_set_keys(const mandate_instance *in,
                                          const mandate_signing_key *keys, size_t n,
                                          mandate_error *err)
{
    set_keys_calls++;
    if (test_fails("format_set_keys", err))
        return err->rc;
    return __real_mandate_format_set_keys(in, keys, n, err);
}

/* --- the fixture ------------------------------------------------------------ */

typedef struct fixture {
    test_runtime *t;
    mandate_pool *pool;
    mandate_error err;
} fixture;

static int64_t fixed_now;
static int64_t fixed_clock(void)
{
    return fixed_now;
}

static int setup(void **state)
{
    static const char *const instances[] = {"format-opaque",
                                            "kind = \"format\"; plugin = \"opaque\";\n", NULL};
    fixture *f = mandate_xcalloc(1, sizeof(*f));
    test_fail_next(NULL, MANDATE_OK);
    fixed_now = mandate_clock_now();
    mandate_clock_set(fixed_clock); /* the keys the start makes are dated by it */
    f->t = test_runtime_sqlite(NULL, instances);
    f->pool = mandate_pool_new();
    set_keys_calls = 0;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    mandate_clock_set(NULL);
    mandate_pool_free(&f->pool);
    test_runtime_free(&f->t);
    free(f);
    return 0;
}

static size_t list(fixture *f, mandate_key **keys)
{
    size_t n = 0;
    mandate_error err = {0};
    assert_int_equal(mandate_keys_list(f->t->rt, f->pool, keys, &n, &err), MANDATE_OK);
    return n;
}

static mandate_rc sync_keys(fixture *f, bool force)
{
    f->err = (mandate_error){0};
    return mandate_keyring_sync(f->t->rt, force, &f->err);
}

/* The kid of the store's one key (the test fails when it holds another number). */
static const char *only_kid(fixture *f)
{
    mandate_key *keys;
    assert_int_equal(list(f, &keys), 1);
    return mandate_pool_strdup(f->pool, keys[0].kid);
}

/* The key a rotation that must succeed made. */
static mandate_key rotated(fixture *f, const char *format, const char *alg)
{
    mandate_key made;
    mandate_error err = {0};
    assert_int_equal(mandate_keys_rotate(f->t->rt, format, alg, f->pool, &made, &err),
                     MANDATE_OK);
    return made;
}

/* The kid of the key the format signs with now. */
static const char *signing_kid(fixture *f)
{
    const mandate_instance *jwt = test_runtime_find(f->t, "format-jwt");
    mandate_grant g = {.issuer = "https://i",
                       .subject = "s",
                       .client_id = "c",
                       .jti = "j",
                       .issued_at = fixed_now,
                       .expires_at = fixed_now + 60};
    char *token = NULL;
    mandate_error err = {0};
    assert_int_equal(mandate_format_mint(jwt, f->pool, &g, &token, &err), MANDATE_OK);
    mandate_jws jws = {0};
    assert_int_equal(mandate_jws_parse(token, strlen(token), &jws, &err), MANDATE_OK);
    const char *kid = mandate_pool_strdup(f->pool, jws.kid);
    mandate_jws_clear(&jws);
    return kid;
}

static void test_first_key(void **state)
{
    fixture *f = *state;
    mandate_key *keys;
    assert_int_equal(list(f, &keys), 1);
    assert_string_equal(keys[0].format, "format-jwt"); /* the opaque format has no keys */
    assert_string_equal(keys[0].alg, "ES256");
    assert_int_equal(keys[0].status, MANDATE_KEY_ACTIVE);
    /* the store holds the private part wrapped, never as DER */
    assert_non_null(keys[0].private_blob);
    assert_int_equal(keys[0].private_blob[0], 1);
    assert_true(mandate_keyring_ready(f->t->rt));
    char *jwks = mandate_keyring_jwks(f->t->rt, f->pool);
    assert_true(test_contains(jwks, keys[0].kid));
    assert_string_equal(signing_kid(f), keys[0].kid);
    /* a start that finds a key makes none */
    mandate_error err = {0};
    assert_int_equal(mandate_keys_ensure(f->t->rt, &err), MANDATE_OK);
    assert_int_equal(list(f, &keys), 1);
}

static void test_rotate(void **state)
{
    fixture *f = *state;
    const char *first = only_kid(f);
    mandate_key made = rotated(f, "jwt", "RS256");
    mandate_key *keys;
    assert_string_equal(made.alg, "RS256");
    assert_null(made.private_blob);
    assert_int_equal(list(f, &keys), 2);
    for (size_t i = 0; i < 2; i++) {
        if (strcmp(keys[i].kid, first) == 0) {
            assert_int_equal(keys[i].status, MANDATE_KEY_RETIRED);
            assert_int_equal(keys[i].retired_at, fixed_now);
            /* published until every token it signed has expired */
            assert_int_equal(keys[i].remove_after,
                             fixed_now + MANDATE_TOKEN_MAX_LIFETIME + 300);
        } else {
            assert_string_equal(keys[i].kid, made.kid);
            assert_int_equal(keys[i].status, MANDATE_KEY_ACTIVE);
        }
    }
    assert_int_equal(sync_keys(f, false), MANDATE_OK);
    char *jwks = mandate_keyring_jwks(f->t->rt, f->pool);
    assert_true(test_contains(jwks, first));
    assert_true(test_contains(jwks, made.kid));
    assert_string_equal(signing_kid(f), made.kid);
}

static void test_rotate_refusals(void **state)
{
    fixture *f = *state;
    mandate_key made;
    mandate_error err = {0};
    assert_int_equal(mandate_keys_rotate(f->t->rt, "format-none", NULL, f->pool, &made, &err),
                     MANDATE_NOT_FOUND);
    assert_true(test_contains(err.message, "no format instance 'format-none' is enabled"));
    assert_int_equal(mandate_keys_rotate(f->t->rt, "opaque", NULL, f->pool, &made, &err),
                     MANDATE_INVALID);
    assert_true(test_contains(err.message, "format 'opaque' has no signing keys"));
    err = (mandate_error){0};
    assert_int_not_equal(mandate_keys_rotate(f->t->rt, NULL, "HS256", f->pool, &made, &err),
                         MANDATE_OK);
    assert_true(err.message[0] != '\0');

    /* the store refuses: the new key is not kept, the old one still signs */
    const char *first = only_kid(f);
    mandate_key *keys;
    test_fail_next("store_key_list", MANDATE_TEMPFAIL);
    assert_int_equal(mandate_keys_rotate(f->t->rt, NULL, NULL, f->pool, &made, &err),
                     MANDATE_TEMPFAIL);
    test_fail_next("store_key_add", MANDATE_ERROR);
    assert_int_equal(mandate_keys_rotate(f->t->rt, NULL, NULL, f->pool, &made, &err),
                     MANDATE_ERROR);
    assert_int_equal(list(f, &keys), 1);
    assert_string_equal(keys[0].kid, first);
    /* the new key is stored, the old one could not be retired: it stays
     * active, and the error reaches the operator */
    test_fail_next("store_key_update", MANDATE_TEMPFAIL);
    assert_int_equal(mandate_keys_rotate(f->t->rt, NULL, NULL, f->pool, &made, &err),
                     MANDATE_TEMPFAIL);
    assert_int_equal(list(f, &keys), 2);
}

static void test_retire_and_purge(void **state)
{
    fixture *f = *state;
    const char *first = only_kid(f);
    mandate_key made = rotated(f, NULL, NULL);
    mandate_error err = {0};
    mandate_key *keys;
    /* not yet */
    assert_int_equal(mandate_keys_purge(f->t->rt, fixed_now + 60, &err), MANDATE_OK);
    assert_int_equal(list(f, &keys), 2);
    /* past remove_after: out of the JWKS at the next sync, then out of the
     * store */
    fixed_now += MANDATE_TOKEN_MAX_LIFETIME + 301;
    assert_int_equal(sync_keys(f, true), MANDATE_OK);
    char *jwks = mandate_keyring_jwks(f->t->rt, f->pool);
    assert_false(strstr(jwks, first) != NULL);
    assert_true(test_contains(jwks, made.kid));
    test_fail_next("store_key_delete", MANDATE_TEMPFAIL);
    assert_int_equal(mandate_keys_purge(f->t->rt, fixed_now, &err), MANDATE_TEMPFAIL);
    assert_int_equal(list(f, &keys), 2);
    assert_int_equal(mandate_keys_purge(f->t->rt, fixed_now, &err), MANDATE_OK);
    assert_int_equal(list(f, &keys), 1);
    assert_string_equal(keys[0].kid, made.kid);
    test_fail_next("store_key_list", MANDATE_ERROR);
    assert_int_equal(mandate_keys_purge(f->t->rt, fixed_now, &err), MANDATE_ERROR);
}

/* The keys another node changed reach this one at its next sync; a change
 * of anything else (a client) leaves the formats' keys and the cache of
 * checked tokens alone. */
static void test_sync(void **state)
{
    fixture *f = *state;
    assert_int_equal(sync_keys(f, false), MANDATE_OK);
    assert_int_equal(set_keys_calls, 0); /* nothing moved since the start */

    mandate_token_cache *cache = mandate_runtime_token_cache(f->t->rt);
    assert_non_null(cache);
    unsigned char hash[MANDATE_TOKEN_HASH_LEN] = {1};
    mandate_grant g = {
        .issuer = "i", .subject = "s", .client_id = "c", .expires_at = fixed_now + 60};
    mandate_token_cache_put(cache, hash, &g, mandate_token_cache_epoch(cache));
    mandate_grant back;
    assert_int_equal(mandate_token_cache_get(cache, hash, f->pool, fixed_now, &back),
                     MANDATE_TOKEN_CACHE_HIT);

    mandate_error err = {0};
    assert_int_equal(mandate_store_revoke(mandate_runtime_store(f->t->rt), "jti-x", "c",
                                          fixed_now + 60, &err),
                     MANDATE_OK);
    assert_int_equal(sync_keys(f, false), MANDATE_OK);
    assert_int_equal(set_keys_calls, 0);
    assert_int_equal(mandate_token_cache_get(cache, hash, f->pool, fixed_now, &back),
                     MANDATE_TOKEN_CACHE_HIT);

    /* a rotation elsewhere: the store's keys change under this keyring */
    mandate_key *keys;
    assert_int_equal(list(f, &keys), 1);
    keys[0].status = MANDATE_KEY_RETIRED;
    keys[0].retired_at = fixed_now;
    keys[0].remove_after = fixed_now + 600;
    assert_int_equal(mandate_store_key_update(mandate_runtime_store(f->t->rt), &keys[0], &err),
                     MANDATE_OK);
    assert_int_equal(sync_keys(f, false), MANDATE_OK);
    assert_int_equal(set_keys_calls, 1);
    assert_int_equal(mandate_token_cache_get(cache, hash, f->pool, fixed_now, &back),
                     MANDATE_TOKEN_CACHE_MISS);
    /* no active key left: nothing signs, /readyz says so */
    assert_false(mandate_keyring_ready(f->t->rt));
}

/* A key that does not decrypt (wrapped under another KEK) is left out; the
 * others still serve. Without any usable one the keyring is not ready. */
static void test_undecryptable_key(void **state)
{
    fixture *f = *state;
    const char *good = only_kid(f);
    unsigned char blob[64] = {1};
    mandate_key foreign = {.kid = "foreign-kid",
                           .alg = "ES256",
                           .format = "format-jwt",
                           .status = MANDATE_KEY_ACTIVE,
                           .private_blob = blob,
                           .private_blob_len = sizeof(blob),
                           .public_jwk = "{\"kty\":\"EC\",\"kid\":\"foreign-kid\"}",
                           .created_at = fixed_now + 1};
    mandate_error err = {0};
    const mandate_instance *store = mandate_runtime_store(f->t->rt);
    assert_int_equal(mandate_store_key_add(store, &foreign, &err), MANDATE_OK);
    assert_int_equal(sync_keys(f, false), MANDATE_OK);
    assert_true(mandate_keyring_ready(f->t->rt));
    assert_string_equal(signing_kid(f), good);

    assert_int_equal(mandate_store_key_delete(store, good, &err), MANDATE_OK);
    assert_int_equal(sync_keys(f, false), MANDATE_OK);
    assert_false(mandate_keyring_ready(f->t->rt));
}

/* The store or the format failing a sync: the keys in force stay. */
static void test_sync_failures(void **state)
{
    fixture *f = *state;
    const char *kid = signing_kid(f);
    test_fail_next("store_generation", MANDATE_TEMPFAIL);
    assert_int_equal(sync_keys(f, false), MANDATE_TEMPFAIL);
    test_fail_next("store_key_list", MANDATE_ERROR);
    assert_int_equal(sync_keys(f, true), MANDATE_ERROR);
    test_fail_next("format_set_keys", MANDATE_ERROR);
    assert_int_equal(sync_keys(f, true), MANDATE_ERROR);
    assert_string_equal(signing_kid(f), kid);
    assert_true(mandate_keyring_ready(f->t->rt));
    mandate_key *keys;
    test_fail_next("store_key_list", MANDATE_TEMPFAIL);
    size_t n = 0;
    mandate_error err = {0};
    assert_int_equal(mandate_keys_list(f->t->rt, f->pool, &keys, &n, &err), MANDATE_TEMPFAIL);
}

/* A runtime that only checks its configuration has no keyring. */
static void test_no_keyring_when_checking(void **state)
{
    fixture *f = *state;
    assert_int_equal(test_runtime_start(f->t, MANDATE_RUNTIME_CHECK_ONLY), MANDATE_OK);
    assert_false(mandate_keyring_ready(f->t->rt));
    mandate_error err = {0};
    assert_int_equal(mandate_keyring_sync(f->t->rt, true, &err), MANDATE_ERROR);
    assert_true(test_contains(err.message, "no keyring or store"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST_FX(test_first_key),
        TEST_FX(test_rotate),
        TEST_FX(test_rotate_refusals),
        TEST_FX(test_retire_and_purge),
        TEST_FX(test_sync),
        TEST_FX(test_undecryptable_key),
        TEST_FX(test_sync_failures),
        TEST_FX(test_no_keyring_when_checking),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
