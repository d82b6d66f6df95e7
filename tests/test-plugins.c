/* The plugin facade (core/plugins.c): what an absent operation answers, the
 * ABI minor checks, the store-error metric, and the bound on the calls of a
 * MANDATE_PLUGIN_BLOCKING instance, with real plugins and the test plugins
 * loaded through the real loader. */
#include "config.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "clock-private.h"
#include "metrics-private.h"
#include "plugin-loader-private.h"
#include "plugins-private.h"
#include "pool-private.h"
#include "runtime-fixture.h"
#include "test-helpers.h"

#define SAML2 "urn:ietf:params:oauth:token-type:saml2"

static const char store_conf[] = "kind = \"store\"; plugin = \"sqlite\";\n";

static int teardown(void **state)
{
    test_runtime *t = *state;
    test_runtime_free(&t);
    return 0;
}

/* A started runtime of mandate.conf extra, with the sqlite store and the
 * instances named in pairs (name, file text), NULL-terminated. */
static test_runtime *started(void **state, const char *extra, ...)
{
    test_runtime *t = test_runtime_new(extra);
    *state = t;
    test_runtime_instance(t, "store", store_conf);
    va_list ap;
    va_start(ap, extra);
    for (const char *name; (name = va_arg(ap, const char *)) != NULL;)
        test_runtime_instance(t, name, va_arg(ap, const char *));
    va_end(ap);
    mandate_rc rc =
        test_runtime_start(t, MANDATE_RUNTIME_MIGRATE | MANDATE_RUNTIME_CREATE_KEYS);
    if (rc != MANDATE_OK)
        fail_msg("runtime: %s", mandate_diag_join(&t->diag));
    return t;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

typedef struct call {
    const mandate_instance *in;
    const char *script;
    mandate_rc rc;
    mandate_error err;
    pthread_t thread;
} call;

static void *validate_in_thread(void *arg)
{
    call *c = arg;
    mandate_pool *pool = mandate_pool_new();
    mandate_identity id = {0};
    c->rc = mandate_backend_validate(c->in, pool, SAML2, c->script, strlen(c->script), &id,
                                     &c->err);
    mandate_pool_free(&pool);
    return NULL;
}

static void start_call(call *c, const mandate_instance *in, const char *script)
{
    *c = (call){.in = in, .script = script};
    assert_int_equal(pthread_create(&c->thread, NULL, validate_in_thread, c), 0);
}

static mandate_rc validate_now(const mandate_instance *in, const char *script,
                               mandate_error *err)
{
    mandate_pool *pool = mandate_pool_new();
    mandate_identity id = {0};
    mandate_rc rc = mandate_backend_validate(in, pool, SAML2, script, strlen(script), &id, err);
    mandate_pool_free(&pool);
    return rc;
}

/* A runtime with the blocking backend-slow instance, which has one slot. */
static const mandate_instance *one_slow_slot(void **state, const char *server)
{
    test_runtime *t = started(state, server, "backend-slow",
                              "kind = \"backend\"; plugin = \"slowscript\";\n", NULL);
    const mandate_instance *slow = test_runtime_find(t, "backend-slow");
    assert_int_equal(mandate_plugins_gate_slots(slow), 1);
    return slow;
}

/* threads = 2: one worker may wait on the slow instance, the other stays
 * free; a second call finds the one slot taken, waits its while, and is
 * answered TEMPFAIL; once the slot frees, calls pass again. */
static void test_blocking_instance_is_bounded(void **state)
{
    const mandate_instance *slow = one_slow_slot(state, "server: { threads = 2; };");
    call holder;
    start_call(&holder, slow, "sleep=1500");
    sleep_ms(300); /* the holder is inside its call */
    mandate_error err = {0};
    int64_t before = now_ms();
    assert_int_equal(validate_now(slow, "sub=bob", &err), MANDATE_TEMPFAIL);
    int64_t waited = now_ms() - before;
    assert_true(waited >= MANDATE_PLUGINS_BLOCKING_WAIT_MS - 10);
    assert_true(waited < 1200);
    assert_true(test_contains(err.message, "busy"));

    pthread_join(holder.thread, NULL);
    assert_int_equal(holder.rc, MANDATE_OK);
    err = (mandate_error){0};
    assert_int_equal(validate_now(slow, "sub=bob", &err), MANDATE_OK);
}

/* A call that waits gets the slot freed within its wait. */
static void test_blocking_call_waits_for_a_slot(void **state)
{
    /* one worker: it may block, there is nobody else to keep free */
    const mandate_instance *slow = one_slow_slot(state, "server: { threads = 1; };");
    call holder;
    start_call(&holder, slow, "sleep=80");
    sleep_ms(20);
    mandate_error err = {0};
    assert_int_equal(validate_now(slow, "sub=bob", &err), MANDATE_OK);
    pthread_join(holder.thread, NULL);
    assert_int_equal(holder.rc, MANDATE_OK);
}

/* threads = 3: two slots; the third call at once is refused. An instance
 * that does not block is not bounded at all. */
static void test_blocking_slots_follow_the_workers(void **state)
{
    test_runtime *t = started(
        state, "server: { threads = 3; };", "backend-slow",
        "kind = \"backend\"; plugin = \"slowscript\";\n", "backend-quick",
        "kind = \"backend\"; plugin = \"script\";\nissuer = \"https://quick\";\n", NULL);
    const mandate_instance *slow = test_runtime_find(t, "backend-slow");
    const mandate_instance *quick = test_runtime_find(t, "backend-quick");
    assert_int_equal(mandate_plugins_gate_slots(slow), 2);
    assert_int_equal(mandate_plugins_gate_slots(quick), 0);

    call holders[2], quicks[3];
    for (size_t i = 0; i < 2; i++)
        start_call(&holders[i], slow, "sleep=1200");
    for (size_t i = 0; i < 3; i++)
        start_call(&quicks[i], quick, "iss=https://quick;sleep=600");
    sleep_ms(300);
    mandate_error err = {0};
    assert_int_equal(validate_now(slow, "sub=bob", &err), MANDATE_TEMPFAIL);
    /* the other instance's calls all run at once, beside the slow ones */
    err = (mandate_error){0};
    assert_int_equal(validate_now(quick, "iss=https://quick", &err), MANDATE_OK);
    for (size_t i = 0; i < 3; i++) {
        pthread_join(quicks[i].thread, NULL);
        assert_int_equal(quicks[i].rc, MANDATE_OK);
    }
    for (size_t i = 0; i < 2; i++) {
        pthread_join(holders[i].thread, NULL);
        assert_int_equal(holders[i].rc, MANDATE_OK);
    }
}

/* A backend without operations: each absence answers what it means. */
static void test_backend_without_operations(void **state)
{
    test_runtime *t = started(state, NULL, "backend-dummy",
                              "kind = \"backend\"; plugin = \"dummy\"; label = \"x\";\n", NULL);
    const mandate_instance *in = test_runtime_find(t, "backend-dummy");
    mandate_pool *pool = mandate_pool_new();
    mandate_error err = {0};
    mandate_client client = {.client_id = "c"};
    mandate_credential cred = {.client_id = "c"};
    assert_false(mandate_backend_authenticates(in));
    assert_false(mandate_backend_provisions(in));
    assert_false(mandate_backend_validates(in));
    assert_false(mandate_backend_accepts(in, SAML2));
    assert_int_equal(mandate_backend_authenticate(in, pool, &cred, &client, &err),
                     MANDATE_NEXT);
    mandate_identity id = {0};
    assert_int_equal(mandate_backend_validate(in, pool, SAML2, "x", 1, &id, &err),
                     MANDATE_NEXT);
    char *secret = NULL;
    assert_int_equal(
        mandate_backend_provision(in, pool, MANDATE_PROVISION_CREATE, &client, &secret, &err),
        MANDATE_INVALID);
    assert_true(test_contains(err.message, "cannot make secrets"));
    const char *detail = "x";
    assert_null(mandate_backend_status(in, pool, &detail));
    assert_null(detail);
    /* an instance of another kind is no backend */
    const mandate_instance *store = mandate_runtime_store(t->rt);
    assert_false(mandate_backend_validates(store));
    assert_int_equal(mandate_backend_validate(store, pool, SAML2, "x", 1, &id, &err),
                     MANDATE_NEXT);
    assert_false(mandate_format_parses(store));
    mandate_pool_free(&pool);
}

/* The script backend declares its types and reports a state. */
static void test_backend_operations(void **state)
{
    test_runtime *t =
        started(state, NULL, "backend-script",
                "kind = \"backend\"; plugin = \"script\";\nstate = \"degraded\";\n", NULL);
    const mandate_instance *in = test_runtime_find(t, "backend-script");
    mandate_pool *pool = mandate_pool_new();
    assert_true(mandate_backend_validates(in));
    assert_true(mandate_backend_accepts(in, SAML2));
    assert_false(mandate_backend_accepts(in, "urn:example:other"));
    const char *detail = NULL;
    assert_string_equal(mandate_backend_status(in, pool, &detail), "degraded");
    assert_string_equal(detail, "scripted");
    mandate_error err = {0};
    mandate_identity id = {0};
    const char *script = "sub=carol;tenant=t1";
    assert_int_equal(
        mandate_backend_validate(in, pool, SAML2, script, strlen(script), &id, &err),
        MANDATE_OK);
    assert_string_equal(id.subject, "carol");
    assert_string_equal(id.tenant, "t1");
    mandate_pool_free(&pool);
}

/* A format of ABI 1.3: no chain of actors either way, nothing to sign. */
static void test_format_of_an_older_minor(void **state)
{
    test_runtime *t = started(state, "tokens: { format = \"old\"; };", "format-old",
                              "kind = \"format\"; plugin = \"old\";\n", NULL);
    const mandate_instance *old = test_runtime_find(t, "format-old");
    mandate_pool *pool = mandate_pool_new();
    mandate_error err = {0};
    assert_false(mandate_format_carries_actors(old));
    assert_false(mandate_format_signs(old));
    assert_false(mandate_format_has_keys(old));
    assert_true(mandate_format_parses(old));

    mandate_grant g = {.subject = "s", .client_id = "c", .actor = "c", .prior_actors = "b a"};
    char *token = NULL;
    assert_int_equal(mandate_format_mint(old, pool, &g, &token, &err), MANDATE_ERROR);
    assert_true(test_contains(err.message, "carry a chain of actors"));
    assert_null(token);
    g.prior_actors = NULL;
    assert_int_equal(mandate_format_mint(old, pool, &g, &token, &err), MANDATE_OK);
    assert_string_equal(token, "old_token");

    /* what it leaves where prior_actors lies is not read */
    mandate_grant back;
    memset(&back, 0, sizeof(back));
    assert_int_equal(mandate_format_parse(old, pool, token, strlen(token), &back, &err),
                     MANDATE_OK);
    assert_string_equal(back.actor, "agent-c");
    assert_null(back.prior_actors);

    char *jws = NULL;
    assert_int_equal(mandate_format_sign(old, pool, "x", "{}", 2, &jws, &err), MANDATE_ERROR);
    assert_true(test_contains(err.message, "cannot sign"));
    mandate_key key = {0};
    unsigned char *der = NULL;
    size_t der_len = 0;
    assert_int_equal(mandate_format_keygen(old, pool, NULL, &key, &der, &der_len, &err),
                     MANDATE_ERROR);
    assert_int_equal(mandate_format_set_keys(old, NULL, 0, &err), MANDATE_ERROR);
    mandate_pool_free(&pool);
}

/* The jwt format: keys, signing, the chain of actors. */
static void test_format_of_the_newest_minor(void **state)
{
    test_runtime *t =
        started(state, NULL, "format-jwt", "kind = \"format\"; plugin = \"jwt\";\n", NULL);
    const mandate_instance *jwt = test_runtime_find(t, "format-jwt");
    assert_true(mandate_format_carries_actors(jwt));
    assert_true(mandate_format_signs(jwt));
    assert_true(mandate_format_has_keys(jwt));
    mandate_pool *pool = mandate_pool_new();
    mandate_error err = {0};
    char *jws = NULL;
    assert_int_equal(mandate_format_sign(jwt, pool, "x+jwt", "{\"a\":1}", 7, &jws, &err),
                     MANDATE_OK);
    assert_non_null(jws);
    mandate_pool_free(&pool);
}

static uint64_t store_errors(void)
{
    mandate_pool *pool = mandate_pool_new();
    const char *text = mandate_metrics_render(pool, NULL);
    const char *at = strstr(text, "\nmandate_store_errors_total ");
    uint64_t n = at != NULL ? strtoull(at + strlen("\nmandate_store_errors_total "), NULL, 10)
                            : UINT64_MAX;
    mandate_pool_free(&pool);
    return n;
}

/* A store call that fails is counted; what the store answers as an answer
 * (not found, exists) is not. */
static void test_store_failures_are_counted(void **state)
{
    test_runtime *t = started(state, NULL, NULL);
    const mandate_instance *store = mandate_runtime_store(t->rt);
    uint64_t before = store_errors();
    mandate_pool *pool = mandate_pool_new();
    mandate_error err = {0};
    mandate_client c;
    assert_int_equal(mandate_store_client_get(store, pool, "nobody", &c, &err),
                     MANDATE_NOT_FOUND);
    assert_int_equal(store_errors(), before);
    assert_int_equal(mandate_store_ping(NULL, &err), MANDATE_ERROR);
    assert_true(test_contains(err.message, "no store is ready"));
    assert_int_equal(store_errors(), before + 1);
    assert_true(mandate_store_can_list(store));
    assert_int_equal(mandate_store_ping(store, &err), MANDATE_OK);
    assert_int_equal(store_errors(), before + 1);
    mandate_pool_free(&pool);
}

/* write_batch through the facade: all or nothing with a store of ABI 1.8;
 * a store before it gets each write alone, up to the first that fails. */
static void test_store_write_batch(void **state)
{
    test_runtime *t = started(state, NULL, NULL);
    const mandate_instance *store = mandate_runtime_store(t->rt);
    mandate_instance older = *store;
    mandate_plugin_handle older_handle = *store->handle;
    mandate_plugin older_plugin = *older_handle.plugin;
    older_plugin.abi_minor = 7;
    older_handle.plugin = &older_plugin;
    older.handle = &older_handle;
    mandate_pool *pool = mandate_pool_new();
    mandate_error err = {0};
    unsigned char k[3][32];
    for (int i = 0; i < 3; i++)
        memset(k[i], 'a' + i, 32);
    int64_t later = mandate_clock_now() + 600;
    mandate_store_write taken = {
        MANDATE_STORE_WRITE_ONCE_PUT, "b", k[2], 32, "x", later, 0, NULL};
    assert_int_equal(mandate_store_write_batch(store, &taken, 1, NULL, &err), MANDATE_OK);
    for (int older_store = 0; older_store < 2; older_store++) {
        const mandate_instance *s = older_store ? &older : store;
        mandate_store_write w[] = {
            {MANDATE_STORE_WRITE_ONCE_SET, "b", k[older_store], 32, "v", later, later, NULL},
            {MANDATE_STORE_WRITE_ONCE_PUT, "b", k[2], 32, "y", later, 0, NULL},
        };
        size_t failed = 9;
        assert_int_equal(mandate_store_write_batch(s, w, 2, &failed, &err), MANDATE_EXISTS);
        assert_int_equal(failed, 1);
        char *value = NULL;
        /* the first write: rolled back by a store of 1.8, kept by an older one */
        assert_int_equal(mandate_store_once_take(store, pool, "b", k[older_store], 32,
                                                 mandate_clock_now(), &value, &err),
                         older_store ? MANDATE_OK : MANDATE_NOT_FOUND);
        assert_int_equal(mandate_store_write_batch(s, w, 0, &failed, &err), MANDATE_INVALID);
        assert_int_equal(mandate_store_write_batch(s, w, 1, &failed, &err), MANDATE_OK);
        assert_int_equal(failed, 1);
    }
    mandate_pool_free(&pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_blocking_instance_is_bounded, teardown),
        cmocka_unit_test_teardown(test_blocking_call_waits_for_a_slot, teardown),
        cmocka_unit_test_teardown(test_blocking_slots_follow_the_workers, teardown),
        cmocka_unit_test_teardown(test_backend_without_operations, teardown),
        cmocka_unit_test_teardown(test_backend_operations, teardown),
        cmocka_unit_test_teardown(test_format_of_an_older_minor, teardown),
        cmocka_unit_test_teardown(test_format_of_the_newest_minor, teardown),
        cmocka_unit_test_teardown(test_store_failures_are_counted, teardown),
        cmocka_unit_test_teardown(test_store_write_batch, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
