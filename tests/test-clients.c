/* Provisioning clients (core/clients.c): what mandatectl client create,
 * rotate-secret, enable/disable and set do, with the real sqlite store and
 * local backend; each check of a client spec, and the store's and the
 * backend's failures injected by wrapping the facade's calls. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "clients-private.h"
#include "clock-private.h"
#include "plugins-private.h"
#include "pool-private.h"
#include "runtime-fixture.h"
#include "test-helpers.h"
#include "util-private.h"

/* --- failures injected into the facade ------------------------------------- */

static bool provision_keeps_no_hash; /* the backend keeps the secret itself */

TEST_FACADE_WRAP(store_client_get,
                 (const mandate_instance *store, mandate_pool *pool, const char *client_id,
                  mandate_client *client_r, mandate_error *err),
                 (store, pool, client_id, client_r, err))
TEST_FACADE_WRAP(store_client_create,
                 (const mandate_instance *store, const mandate_client *client,
                  mandate_error *err),
                 (store, client, err))
TEST_FACADE_WRAP(store_client_update,
                 (const mandate_instance *store, const mandate_client *client,
                  mandate_error *err),
                 (store, client, err))

__typeof__(mandate_backend_provision) __real_mandate_backend_provision;
__typeof__(mandate_backend_provision) __wrap_mandate_backend_provision;
mandate_rc __wrap_mandate_backend_provision(const mandate_instance *in, mandate_pool *pool,
                                            mandate_provision_mode mode, mandate_client *client,
                                            char **secret_r, mandate_error *err)
{
    if (test_fails("backend_provision", err))
        return err->rc;
    mandate_rc rc = __real_mandate_backend_provision(in, pool, mode, client, secret_r, err);
    if (rc == MANDATE_OK && provision_keeps_no_hash) {
        client->secret_hash = NULL;
        client->secret_hash_len = 0;
    }
    return rc;
}

/* --- the fixture ------------------------------------------------------------ */

typedef struct fixture {
    test_runtime *t;
    mandate_pool *pool;
    mandate_error err;
} fixture;

static int setup(void **state)
{
    static const char *const instances[] = {"backend-local",
                                            "kind = \"backend\"; plugin = \"local\";\n",
                                            "backend-script",
                                            "kind = \"backend\"; plugin = \"script\";\n",
                                            "format-opaque",
                                            "kind = \"format\"; plugin = \"opaque\";\n",
                                            NULL};
    fixture *f = mandate_xcalloc(1, sizeof(*f));
    f->t = test_runtime_sqlite(NULL, instances);
    f->pool = mandate_pool_new();
    test_fail_next(NULL, MANDATE_OK);
    provision_keeps_no_hash = false;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    mandate_pool_free(&f->pool);
    test_runtime_free(&f->t);
    free(f);
    return 0;
}

static mandate_client stored(fixture *f, const char *client_id)
{
    return test_stored_client(f->t, f->pool, client_id);
}

static mandate_rc create(fixture *f, const mandate_client_spec *spec, mandate_client *c,
                         char **secret)
{
    f->err = (mandate_error){0};
    return mandate_clients_create(f->t->rt, f->pool, spec, c, secret, &f->err);
}

/* Creates client_id with nothing else set: the test fails unless it is
 * created. Returns its secret. */
static char *create_plain(fixture *f, const char *client_id)
{
    mandate_client_spec spec = {.client_id = client_id};
    mandate_client c;
    char *secret = NULL;
    assert_int_equal(create(f, &spec, &c, &secret), MANDATE_OK);
    return secret;
}

static void test_create(void **state)
{
    fixture *f = *state;
    mandate_client c;
    char *secret = NULL;
    mandate_client_spec spec = {.client_id = "agent-1",
                                .name = "The agent",
                                .scopes = "mcp:call  gateway:invoke mcp:call",
                                .default_scopes = "mcp:call",
                                .audiences = "https://mcp.example/cal",
                                .ttl = 600,
                                .can_introspect = true,
                                .rate_limit = 5,
                                .rate_burst = 10};
    assert_int_equal(create(f, &spec, &c, &secret), MANDATE_OK);
    assert_non_null(secret);
    assert_true(strlen(secret) >= 43); /* 256 bits, base64url */
    mandate_client s = stored(f, "agent-1");
    assert_string_equal(s.tenant, "default");
    assert_string_equal(s.name, "The agent");
    assert_string_equal(s.scopes, "mcp:call gateway:invoke"); /* once each, in order */
    assert_string_equal(s.default_scopes, "mcp:call");
    assert_string_equal(s.audiences, "https://mcp.example/cal");
    assert_string_equal(s.backend, "backend-local"); /* the first that provisions */
    assert_int_equal(s.status, MANDATE_CLIENT_ENABLED);
    assert_int_equal(s.flags, MANDATE_CLIENT_CAN_INTROSPECT);
    assert_int_equal(s.token_ttl, 600);
    assert_true(s.rate_limit == 5);
    assert_int_equal(s.rate_burst, 10);
    assert_int_equal(s.secret_hash_len, 32);
    assert_true(s.created_at > 0 && s.created_at <= mandate_clock_now());

    /* a made-up id, and a format named by its plugin */
    mandate_client_spec made = {.prefix = "svc", .token_format = "opaque"};
    assert_int_equal(create(f, &made, &c, &secret), MANDATE_OK);
    assert_int_equal(strncmp(c.client_id, "svc-", 4), 0);
    assert_int_equal(strlen(c.client_id), 4 + 8);
    assert_string_equal(stored(f, c.client_id).token_format, "format-opaque");
    mandate_client_spec plain = {0};
    assert_int_equal(create(f, &plain, &c, &secret), MANDATE_OK);
    assert_int_equal(strncmp(c.client_id, "client-", 7), 0);
}

/* private_key_jwt: no secret is made, the key is kept. */
static void test_create_with_key(void **state)
{
    fixture *f = *state;
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    char *pem = test_public_pem(key);
    mandate_client_spec spec = {.client_id = "agent-key", .public_key_pem = pem};
    mandate_client c;
    char *secret = "x";
    assert_int_equal(create(f, &spec, &c, &secret), MANDATE_OK);
    assert_null(secret);
    mandate_client s = stored(f, "agent-key");
    assert_string_equal(s.public_key, pem);
    assert_null(s.secret_hash);
    assert_string_equal(s.backend, "backend-local");
    /* and a key that is none of ours */
    mandate_client_spec bad = {.client_id = "agent-bad", .public_key_pem = "-----BEGIN nope"};
    assert_int_equal(create(f, &bad, &c, &secret), MANDATE_INVALID);
    assert_true(test_contains(f->err.message, "must be a PEM P-256, RSA"));
    free(pem);
    EVP_PKEY_free(key);
}

/* Each check of a spec: refused before anything is stored. */
static void test_create_refusals(void **state)
{
    fixture *f = *state;
    static const struct {
        mandate_client_spec spec;
        mandate_rc rc;
        const char *why;
    } cases[] = {
        {{.client_id = "a b"}, MANDATE_INVALID, "client id 'a b' must be 1 to 128"},
        {{.client_id = ""}, MANDATE_INVALID, "must be 1 to 128"},
        {{.client_id = "ok", .tenant = "t/1"}, MANDATE_INVALID, "tenant 't/1' must be"},
        {{.client_id = "ok", .scopes = "a\"b"}, MANDATE_INVALID, "scope"},
        {{.client_id = "ok", .scopes = "a", .default_scopes = "b"},
         MANDATE_INVALID,
         "default scope 'b' is not among the client's scopes"},
        {{.client_id = "ok", .audiences = "not-a-uri"}, MANDATE_INVALID, "audience"},
        {{.client_id = "ok", .ttl = -1}, MANDATE_INVALID, "ttl must be 1 to 86400"},
        {{.client_id = "ok", .ttl = 86401}, MANDATE_INVALID, "ttl must be 1 to 86400"},
        {{.client_id = "ok", .rate_limit = 2e6}, MANDATE_INVALID, "the rate must be"},
        {{.client_id = "ok", .rate_burst = -1}, MANDATE_INVALID, "the rate must be"},
        {{.client_id = "ok", .token_format = "format-none"},
         MANDATE_NOT_FOUND,
         "no format instance 'format-none' is enabled"},
        {{.client_id = "ok", .backend = "backend-none"},
         MANDATE_NOT_FOUND,
         "no backend instance 'backend-none' is enabled"},
        {{.client_id = "ok", .backend = "backend-script"},
         MANDATE_INVALID,
         "backend 'backend-script' cannot make secrets"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mandate_client c;
        char *secret = NULL;
        mandate_rc rc = create(f, &cases[i].spec, &c, &secret);
        if (rc != cases[i].rc || strstr(f->err.message, cases[i].why) == NULL)
            fail_msg("case %zu: %d '%s', expected %d '%s'", i, (int)rc, f->err.message,
                     (int)cases[i].rc, cases[i].why);
        assert_null(secret);
    }
    mandate_client c;
    mandate_error err = {0};
    assert_int_equal(
        mandate_store_client_get(mandate_runtime_store(f->t->rt), f->pool, "ok", &c, &err),
        MANDATE_NOT_FOUND);
}

/* Without a backend that holds credentials, nobody can be provisioned. */
static void test_create_without_a_credentials_backend(void **state)
{
    static const char *const instances[] = {"backend-script",
                                            "kind = \"backend\"; plugin = \"script\";\n", NULL};
    fixture *f = *state;
    test_runtime_free(&f->t);
    f->t = test_runtime_sqlite(NULL, instances);
    mandate_client_spec spec = {.client_id = "agent-1"};
    mandate_client c;
    char *secret = NULL;
    assert_int_equal(create(f, &spec, &c, &secret), MANDATE_NOT_FOUND);
    assert_true(test_contains(f->err.message, "no backend that holds client credentials"));
}

/* A taken id: refused before the backend makes a secret; a race lost at the
 * store; the store or the backend failing. */
static void test_create_conflicts_and_failures(void **state)
{
    fixture *f = *state;
    create_plain(f, "agent-1");
    mandate_client_spec spec = {.client_id = "agent-1"};
    mandate_client c;
    char *secret = NULL;
    assert_int_equal(create(f, &spec, &c, &secret), MANDATE_EXISTS);
    assert_true(test_contains(f->err.message, "client 'agent-1' already exists"));

    mandate_client_spec other = {.client_id = "agent-2"};
    test_fail_next("store_client_create", MANDATE_EXISTS);
    assert_int_equal(create(f, &other, &c, &secret), MANDATE_EXISTS);
    assert_true(test_contains(f->err.message, "client 'agent-2' already exists"));
    test_fail_next("store_client_create", MANDATE_TEMPFAIL);
    assert_int_equal(create(f, &other, &c, &secret), MANDATE_TEMPFAIL);
    test_fail_next("backend_provision", MANDATE_ERROR);
    assert_int_equal(create(f, &other, &c, &secret), MANDATE_ERROR);
    assert_int_equal(create(f, &other, &c, &secret), MANDATE_OK);
}

static void test_rotate_secret(void **state)
{
    fixture *f = *state;
    char *first = mandate_pool_strdup(f->pool, create_plain(f, "agent-1"));
    char *second = NULL, *third = NULL;
    mandate_client before = stored(f, "agent-1");
    unsigned char old_hash[32];
    memcpy(old_hash, before.secret_hash, 32);

    int64_t grace = -5;
    mandate_error err = {0};
    assert_int_equal(mandate_clients_rotate_secret(f->t->rt, f->pool, "agent-1", 3600, &second,
                                                   &grace, &err),
                     MANDATE_OK);
    assert_string_not_equal(first, second);
    assert_int_equal(grace, 3600);
    mandate_client after = stored(f, "agent-1");
    assert_memory_not_equal(after.secret_hash, old_hash, 32);
    /* the old secret stays valid for the grace period */
    assert_int_equal(after.prev_secret_hash_len, 32);
    assert_memory_equal(after.prev_secret_hash, old_hash, 32);
    assert_true(after.prev_secret_expires_at >= mandate_clock_now() + 3590);

    /* no grace: the old secret goes at once */
    assert_int_equal(
        mandate_clients_rotate_secret(f->t->rt, f->pool, "agent-1", 0, &third, &grace, &err),
        MANDATE_OK);
    assert_int_equal(grace, 0);
    after = stored(f, "agent-1");
    assert_null(after.prev_secret_hash);
    assert_int_equal(after.prev_secret_expires_at, 0);

    /* a backend that keeps no hash here keeps the old secret itself */
    provision_keeps_no_hash = true;
    assert_int_equal(
        mandate_clients_rotate_secret(f->t->rt, f->pool, "agent-1", 60, &third, &grace, &err),
        MANDATE_OK);
    assert_int_equal(grace, -1);
}

static void test_rotate_refusals(void **state)
{
    fixture *f = *state;
    char *secret = NULL;
    int64_t grace = 0;
    mandate_error err = {0};
    assert_int_equal(
        mandate_clients_rotate_secret(f->t->rt, f->pool, "nobody", 0, &secret, &grace, &err),
        MANDATE_NOT_FOUND);
    assert_true(test_contains(err.message, "no client 'nobody'"));

    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    char *pem = test_public_pem(key);
    mandate_client_spec keyed = {.client_id = "agent-key", .public_key_pem = pem};
    mandate_client c;
    assert_int_equal(create(f, &keyed, &c, &secret), MANDATE_OK);
    assert_int_equal(
        mandate_clients_rotate_secret(f->t->rt, f->pool, "agent-key", 0, &secret, &grace, &err),
        MANDATE_INVALID);
    assert_true(test_contains(err.message, "authenticates with a key, not a secret"));
    free(pem);
    EVP_PKEY_free(key);

    create_plain(f, "agent-1");
    test_fail_next("store_client_get", MANDATE_TEMPFAIL);
    assert_int_equal(
        mandate_clients_rotate_secret(f->t->rt, f->pool, "agent-1", 0, &secret, &grace, &err),
        MANDATE_TEMPFAIL);
    test_fail_next("backend_provision", MANDATE_ERROR);
    mandate_client before = stored(f, "agent-1");
    assert_int_equal(
        mandate_clients_rotate_secret(f->t->rt, f->pool, "agent-1", 0, &secret, &grace, &err),
        MANDATE_ERROR);
    test_fail_next("store_client_update", MANDATE_ERROR);
    assert_int_equal(
        mandate_clients_rotate_secret(f->t->rt, f->pool, "agent-1", 0, &secret, &grace, &err),
        MANDATE_ERROR);
    /* nothing changed by the failed rotations */
    assert_memory_equal(stored(f, "agent-1").secret_hash, before.secret_hash, 32);

    /* the client's backend is no longer enabled */
    before.backend = "backend-gone";
    before.updated_at = 0;
    assert_int_equal(
        mandate_store_client_update(mandate_runtime_store(f->t->rt), &before, &err),
        MANDATE_OK);
    assert_int_equal(
        mandate_clients_rotate_secret(f->t->rt, f->pool, "agent-1", 0, &secret, &grace, &err),
        MANDATE_NOT_FOUND);
    assert_true(test_contains(err.message, "no backend instance 'backend-gone'"));
}

static uint64_t generation(fixture *f)
{
    uint64_t g = 0;
    mandate_error err = {0};
    assert_int_equal(mandate_store_generation(mandate_runtime_store(f->t->rt), &g, &err),
                     MANDATE_OK);
    return g;
}

static void test_status_and_rate(void **state)
{
    fixture *f = *state;
    create_plain(f, "agent-1");
    mandate_error err = {0};
    assert_int_equal(
        mandate_clients_set_status(f->t->rt, "agent-1", MANDATE_CLIENT_DISABLED, &err),
        MANDATE_OK);
    assert_int_equal(stored(f, "agent-1").status, MANDATE_CLIENT_DISABLED);
    /* already so: nothing is written (no node reloads for nothing) */
    uint64_t g = generation(f);
    assert_int_equal(
        mandate_clients_set_status(f->t->rt, "agent-1", MANDATE_CLIENT_DISABLED, &err),
        MANDATE_OK);
    assert_int_equal(generation(f), g);
    assert_int_equal(
        mandate_clients_set_status(f->t->rt, "agent-1", MANDATE_CLIENT_ENABLED, &err),
        MANDATE_OK);
    assert_int_equal(stored(f, "agent-1").status, MANDATE_CLIENT_ENABLED);
    assert_int_equal(
        mandate_clients_set_status(f->t->rt, "nobody", MANDATE_CLIENT_ENABLED, &err),
        MANDATE_NOT_FOUND);
    assert_true(test_contains(err.message, "no client 'nobody'"));
    test_fail_next("store_client_update", MANDATE_TEMPFAIL);
    assert_int_equal(
        mandate_clients_set_status(f->t->rt, "agent-1", MANDATE_CLIENT_DISABLED, &err),
        MANDATE_TEMPFAIL);
    assert_int_equal(stored(f, "agent-1").status, MANDATE_CLIENT_ENABLED);

    assert_int_equal(mandate_clients_set_rate(f->t->rt, "agent-1", 2.5, 7, &err), MANDATE_OK);
    mandate_client s = stored(f, "agent-1");
    assert_true(s.rate_limit == 2.5);
    assert_int_equal(s.rate_burst, 7);
    assert_int_equal(mandate_clients_set_rate(f->t->rt, "agent-1", 0, 0, &err), MANDATE_OK);
    assert_true(stored(f, "agent-1").rate_limit == 0);
    assert_int_equal(mandate_clients_set_rate(f->t->rt, "agent-1", -1, 0, &err),
                     MANDATE_INVALID);
    assert_true(test_contains(err.message, "the rate must be 0 to 1000000"));
    assert_int_equal(mandate_clients_set_rate(f->t->rt, "nobody", 1, 1, &err),
                     MANDATE_NOT_FOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST_FX(test_create),
        TEST_FX(test_create_with_key),
        TEST_FX(test_create_refusals),
        TEST_FX(test_create_without_a_credentials_backend),
        TEST_FX(test_create_conflicts_and_failures),
        TEST_FX(test_rotate_secret),
        TEST_FX(test_rotate_refusals),
        TEST_FX(test_status_and_rate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
