/* The plugin loader and the runtime built on it, with real shared objects:
 * test plugins built for another ABI, without the symbol, misnamed, or
 * failing to start, next to a working one. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "clock-private.h"
#include "host-private.h"
#include "keys-private.h"
#include "metrics-private.h"
#include "runtime-fixture.h"
#include "runtime-private.h"
#include "test-helpers.h"
#include "util-private.h"
#include "validate-private.h"

#include "plugins/backend-dummy.h"

#define TEST_PLUGINS BUILDDIR "/tests/plugins/.libs"

static void test_open_good_plugin(void **state)
{
    (void)state;
    mandate_plugin_handle *h = NULL;
    mandate_error err = {0};
    assert_int_equal(mandate_plugin_open(TEST_PLUGINS, "backend", "dummy", &h, &err), MANDATE_OK);
    assert_non_null(h);
    assert_string_equal(h->plugin->name, "dummy");
    assert_string_equal(h->plugin->version, "1.2.3");
    assert_int_equal(h->plugin->kind, MANDATE_BACKEND);
    assert_true(test_contains(h->file, "backend-dummy.so"));
    mandate_plugin_close(&h);
    assert_null(h);
}

static void expect_refused(const char *kind, const char *name, mandate_rc rc, const char *why)
{
    mandate_plugin_handle *h = NULL;
    mandate_error err = {0};
    assert_int_equal(mandate_plugin_open(TEST_PLUGINS, kind, name, &h, &err), rc);
    assert_null(h);
    /* one line naming the plugin, its file and the reason */
    char *quoted = mandate_xasprintf("plugin '%s'", name);
    char *file = mandate_xasprintf("%s-%s.so", kind, name);
    assert_true(test_contains(err.message, quoted));
    assert_true(test_contains(err.message, file));
    assert_true(test_contains(err.message, why));
    assert_null(strchr(err.message, '\n'));
    free(quoted);
    free(file);
}

static void test_refusals(void **state)
{
    (void)state;
    expect_refused("store", "badabi", MANDATE_INVALID, "built for plugin ABI 2.0");
    expect_refused("store", "badmagic", MANDATE_INVALID, "bad magic");
    expect_refused("store", "nosymbol", MANDATE_INVALID, "no symbol 'mandate_plugin_nosymbol'");
    expect_refused("store", "misnamed", MANDATE_INVALID, "declares the name 'sqlite'");
    expect_refused("store", "absent", MANDATE_NOT_FOUND, "not found");
    /* the file says backend, the descriptor says store: refused */
    expect_refused("backend", "dummy2", MANDATE_NOT_FOUND, "not found");
}

static void test_kind_mismatch(void **state)
{
    (void)state;
    char *dir = test_mkdtemp();
    char *link = mandate_path_join(dir, "format-dummy.so");
    assert_int_equal(symlink(TEST_PLUGINS "/backend-dummy.so", link), 0);
    mandate_plugin_handle *h = NULL;
    mandate_error err = {0};
    assert_int_equal(mandate_plugin_open(dir, "format", "dummy", &h, &err), MANDATE_INVALID);
    assert_true(test_contains(err.message, "declares kind 'backend' but its file says 'format'"));
    free(link);
    test_rmdir_rf(dir);
    free(dir);
}

static void test_bad_names(void **state)
{
    (void)state;
    mandate_plugin_handle *h = NULL;
    mandate_error err = {0};
    assert_int_equal(mandate_plugin_open(TEST_PLUGINS, "store", "../etc", &h, &err),
                     MANDATE_INVALID);
    assert_int_equal(mandate_plugin_open(TEST_PLUGINS, "gizmo", "dummy", &h, &err),
                     MANDATE_INVALID);
    assert_int_equal(mandate_plugin_open_file("/tmp/libfoo.so", &h, &err), MANDATE_INVALID);
    assert_null(h);
}

typedef struct scan_result {
    size_t ok, refused;
    char names[512];
} scan_result;

static void on_scan(void *ctx, const char *file, const mandate_plugin_handle *h,
                    const mandate_error *err)
{
    scan_result *r = ctx;
    (void)file;
    if (h != NULL) {
        r->ok++;
        strcat(r->names, h->plugin->name);
        strcat(r->names, " ");
    } else {
        assert_non_null(err);
        assert_true(err->message[0] != '\0');
        r->refused++;
    }
}

static void test_scan_with_garbage(void **state)
{
    (void)state;
    char *dir = test_mkdtemp();
    /* a .so that is not an ELF file at all, and one with a name that is not
     * <kind>-<name>.so, next to the test plugins */
    free(test_write_file(dir, "store-garbage.so", "\x7f" "ELF this is not a shared object"));
    free(test_write_file(dir, "libsomething.so", "junk"));
    const char *plugins[] = {"backend-dummy.so", "store-badabi.so", "store-nosymbol.so"};
    for (size_t i = 0; i < 3; i++) {
        char *target = mandate_path_join(TEST_PLUGINS, plugins[i]);
        char *link = mandate_path_join(dir, plugins[i]);
        assert_int_equal(symlink(target, link), 0);
        free(target);
        free(link);
    }
    scan_result r = {0};
    mandate_error err = {0};
    assert_int_equal(mandate_plugin_scan(dir, on_scan, &r, &err), MANDATE_OK);
    assert_int_equal(r.ok, 1);
    assert_string_equal(r.names, "dummy ");
    assert_int_equal(r.refused, 4);
    test_rmdir_rf(dir);
    free(dir);
    assert_int_equal(mandate_plugin_scan("/nonexistent-dir", on_scan, &r, &err),
                     MANDATE_NOT_FOUND);
}

/* --- the runtime: configuration applied to instances ------------------------ */

/* A runtime of the runtime fixture (every plugin built, the real ones and
 * the test ones) without instances: each test writes its own. */
static int rt_setup(void **state)
{
    *state = test_runtime_new(NULL);
    return 0;
}

static int rt_teardown(void **state)
{
    mandate_clock_set(NULL); /* a test that set it and failed */
    test_runtime_free((test_runtime **)state);
    return 0;
}

static const dummy *find_dummy(test_runtime *f)
{
    for (size_t i = 0; i < mandate_runtime_instance_count(f->rt); i++) {
        const mandate_instance *in = mandate_runtime_instance(f->rt, i);
        if (strcmp(in->conf->plugin, "dummy") == 0)
            return in->inst;
    }
    fail_msg("no dummy instance");
    return NULL;
}

/* The sqlite store, and the instance name as conf says. */
static void sqlite_and(test_runtime *f, const char *name, const char *conf)
{
    test_runtime_instance(f, "store", "kind = \"store\"; plugin = \"sqlite\";\n");
    test_runtime_instance(f, name, conf);
}

static void test_runtime_applies_config(void **state)
{
    test_runtime *f = *state;
    sqlite_and(f, "backend-one",
               "kind = \"backend\"; plugin = \"dummy\";\nlabel = \"corp\";\n"
               "tags = [\"x\", \"y\", \"z\"];\nsecret = \"s3cret\";\n");
    assert_int_equal(test_runtime_start(f, MANDATE_RUNTIME_MIGRATE), MANDATE_OK);
    const dummy *d = find_dummy(f);
    assert_string_equal(d->label, "corp");
    assert_int_equal(d->count, 3);
    assert_true(d->enabled);
    assert_string_equal(d->tags[0], "x");
    assert_string_equal(d->tags[2], "z");
    assert_null(d->tags[3]);
    assert_string_equal(d->secret, "s3cret");
    /* PATH keys of plugins are taken from the state folder */
    char *expect = mandate_xasprintf("%s/state/dummy.dat", f->dir);
    assert_string_equal(d->file, expect);
    free(expect);
    /* the host reached the plugin and names the instance */
    assert_non_null(d->host);
    assert_string_equal(d->host->instance, "backend-one");
    unsigned char h1[32], h2[32];
    mandate_error err = {0};
    assert_int_equal(d->host->keyed_hash(d->host, "abc", 3, h1, &err), MANDATE_OK);
    assert_int_equal(d->host->keyed_hash(d->host, "abd", 3, h2, &err), MANDATE_OK);
    assert_memory_not_equal(h1, h2, 32);
    /* the store is reachable through the host's replay cache */
    int64_t later = d->host->now(d->host) + 60;
    assert_int_equal(d->host->replay_claim(d->host, "idp", "id-1", later, &err), MANDATE_OK);
    assert_int_equal(d->host->replay_claim(d->host, "idp", "id-1", later, &err), MANDATE_EXISTS);
}

static void test_runtime_plugin_key_errors(void **state)
{
    test_runtime *f = *state;
    static const char faulty[] = "kind = \"backend\";\nplugin = \"dummy\";\ncount = 11;\n"
                                 "colour = \"red\";\nmode: { kind = \"medium\"; };\n";
    sqlite_and(f, "backend-one", faulty);
    assert_int_not_equal(test_runtime_start(f, MANDATE_RUNTIME_CHECK_ONLY), MANDATE_OK);
    assert_null(f->rt);
    char *all = mandate_diag_join(&f->diag);
    assert_true(test_contains(all, "backend-one.conf:4: unknown key 'colour'"));
    assert_true(test_contains(all, "backend-one.conf:3: 'count' is 11, outside the allowed range 1..10"));
    assert_true(test_contains(all, "required key 'label' is missing"));
    assert_true(test_contains(all, "'mode.kind' must be one of fast|slow"));
    free(all);
}

/* A start with flags is refused, and its first diagnostic says each of the
 * words (a NULL ends them). */
static void expect_start_refused(test_runtime *f, unsigned flags, const char *const words[])
{
    assert_int_not_equal(test_runtime_start(f, flags), MANDATE_OK);
    assert_true(f->diag.count > 0);
    for (size_t i = 0; words[i] != NULL; i++)
        if (!test_contains(f->diag.lines[0], words[i]))
            fail_msg("start refused with '%s', which does not say '%s'", f->diag.lines[0],
                     words[i]);
}

static void test_runtime_refuses_bad_plugins(void **state)
{
    test_runtime *f = *state;
    test_runtime_instance(f, "store", "kind = \"store\"; plugin = \"badabi\";\n");
    expect_start_refused(
        f, MANDATE_RUNTIME_MIGRATE,
        (const char *const[]){"instance 'store'", "store-badabi.so", "ABI", NULL});
    assert_int_equal(f->diag.count, 1);

    test_runtime_instance(f, "store", "kind = \"store\"; plugin = \"missing\";\n");
    expect_start_refused(f, MANDATE_RUNTIME_MIGRATE,
                         (const char *const[]){"plugin 'missing'", "not found", NULL});
}

static void test_runtime_instantiate_failure(void **state)
{
    test_runtime *f = *state;
    test_runtime_instance(f, "store",
                          "kind = \"store\"; plugin = \"failing\";\nreason = \"no disk\";\n");
    /* checking alone does not run plugin code */
    assert_int_equal(test_runtime_start(f, MANDATE_RUNTIME_CHECK_ONLY), MANDATE_OK);
    expect_start_refused(f, 0,
                         (const char *const[]){
                             "instance 'store': plugin 'failing' (",
                             "store-failing.so) failed to start: cannot start: no disk", NULL});
    assert_int_equal(f->diag.count, 1);
}

static void test_runtime_needs_one_store(void **state)
{
    test_runtime *f = *state;
    test_runtime_instance(f, "backend-one",
                          "kind = \"backend\"; plugin = \"dummy\"; label = \"x\";\n");
    expect_start_refused(f, MANDATE_RUNTIME_CHECK_ONLY,
                         (const char *const[]){"0 store instances are enabled", NULL});
    test_runtime_instance(f, "store-a", "kind = \"store\"; plugin = \"sqlite\";\n");
    test_runtime_instance(f, "store-b",
                          "kind = \"store\"; plugin = \"sqlite\"; path = \"b.db\";\n");
    expect_start_refused(f, MANDATE_RUNTIME_CHECK_ONLY,
                         (const char *const[]){"2 store instances are enabled", NULL});
}

static void test_runtime_needs_kek(void **state)
{
    test_runtime *f = *state;
    test_runtime_instance(f, "store", "kind = \"store\"; plugin = \"sqlite\";\n");
    char *kek = mandate_xasprintf("%s/state/kek", f->dir);
    chmod(kek, 0644);
    expect_start_refused(f, MANDATE_RUNTIME_MIGRATE, (const char *const[]){"chmod 600", NULL});
    unlink(kek);
    expect_start_refused(f, MANDATE_RUNTIME_MIGRATE,
                         (const char *const[]){"mandatectl init", NULL});
    free(kek);
}

/* A runtime with the sqlite store and the jwt format, its keys made; the
 * jwt instance. */
static const mandate_instance *start_with_jwt(test_runtime *f)
{
    sqlite_and(f, "format-jwt", "kind = \"format\"; plugin = \"jwt\";\n");
    assert_int_equal(
        test_runtime_start(f, MANDATE_RUNTIME_MIGRATE | MANDATE_RUNTIME_CREATE_KEYS),
        MANDATE_OK);
    for (size_t i = 0; i < mandate_runtime_instance_count(f->rt); i++) {
        if (strcmp(mandate_runtime_instance(f->rt, i)->conf->plugin, "jwt") == 0)
            return mandate_runtime_instance(f->rt, i);
    }
    fail_msg("no jwt instance");
    return NULL;
}

static int64_t fixed_now;
static int64_t fixed_clock(void)
{
    return fixed_now;
}

/* A grant of this issuer to agent-1 for itself. */
static mandate_grant agent_grant(test_runtime *f, const char *jti, int64_t issued_at,
                                 int64_t expires_at)
{
    return (mandate_grant){.issuer = mandate_runtime_config(f->rt)->issuer,
                           .subject = "agent-1",
                           .client_id = "agent-1",
                           .jti = jti,
                           .issued_at = issued_at,
                           .expires_at = expires_at};
}

/* g as a token of the jwt instance. */
static char *minted(const mandate_instance *jwt, mandate_pool *pool, const mandate_grant *g)
{
    const mandate_format_ops *ops = jwt->handle->plugin->ops;
    char *token = NULL;
    mandate_error err = {0};
    assert_int_equal(ops->mint(jwt->inst, pool, g, &token, &err), MANDATE_OK);
    return token;
}

/* A token checked once is "expired" after its expiry without a second
 * signature check: the key set is swapped under the cache (as no sync
 * would do), so only a verdict from the cache can still say "expired". */
static void test_runtime_expired_token_not_verified_again(void **state)
{
    test_runtime *f = *state;
    const mandate_instance *jwt = start_with_jwt(f);
    const mandate_format_ops *ops = jwt->handle->plugin->ops;
    fixed_now = mandate_clock_now();
    mandate_clock_set(fixed_clock);

    mandate_pool *pool = mandate_pool_new();
    mandate_grant g = agent_grant(f, "jti-expiring", fixed_now, fixed_now + 60);
    g.scope = "mcp:call";
    char *token = minted(jwt, pool, &g);
    mandate_error err = {0};
    mandate_token_status st;
    /* read once (its client is unknown here, which is checked after the read) */
    assert_int_equal(mandate_token_validate(f->rt, pool, token, strlen(token), &st, &err),
                     MANDATE_INVALID);
    assert_true(st.parsed);
    assert_string_equal(st.reason, "its client was deleted");

    /* and one first seen after its expiry (a restart, a stale agent) */
    g.jti = "jti-expired";
    g.issued_at = fixed_now - 7200;
    g.expires_at = fixed_now - 3600;
    char *stale = minted(jwt, pool, &g);
    assert_int_equal(mandate_token_validate(f->rt, pool, stale, strlen(stale), &st, &err),
                     MANDATE_INVALID);
    assert_string_equal(st.reason, "expired");

    assert_int_equal(ops->set_keys(jwt->inst, NULL, 0, &err), MANDATE_OK);
    fixed_now += 3600;
    const char *tokens[] = {token, stale};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(
            mandate_token_validate(f->rt, pool, tokens[i], strlen(tokens[i]), &st, &err),
            MANDATE_INVALID);
        assert_false(st.parsed);
        assert_string_equal(st.reason, "expired");
    }
    /* a token the cache never saw is read by the format, which knows no key now */
    char *tampered = mandate_pool_printf(pool, "%sA", token);
    assert_int_equal(mandate_token_validate(f->rt, pool, tampered, strlen(tampered), &st, &err),
                     MANDATE_INVALID);
    assert_true(test_contains(st.reason, "unknown kid"));
    mandate_clock_set(NULL);
    mandate_pool_free(&pool);
}

static uint64_t cache_answers(mandate_pool *pool, const char *result)
{
    char *text = mandate_metrics_render(pool, NULL);
    char *name =
        mandate_pool_printf(pool, "mandate_token_check_cache_total{result=\"%s\"} ", result);
    const char *at = strstr(text, name);
    return at != NULL ? strtoull(at + strlen(name), NULL, 10) : 0;
}

/* The keyring's poll empties the cache of checked tokens when the keys
 * change, even in their status only, and not when anything else in the store
 * does (a revocation moves the same generation). */
static void test_runtime_check_cache_emptied_by_key_changes_only(void **state)
{
    test_runtime *f = *state;
    const mandate_instance *jwt = start_with_jwt(f);
    const mandate_instance *store = mandate_runtime_store(f->rt);
    mandate_pool *pool = mandate_pool_new();
    int64_t now = mandate_clock_now();
    mandate_grant g = agent_grant(f, "jti-cached", now, now + 600);
    char *token = minted(jwt, pool, &g);
    mandate_error err = {0};
    mandate_metrics_reset();
    mandate_token_status st;
    mandate_token_validate(f->rt, pool, token, strlen(token), &st, &err);
    assert_true(st.parsed);
    assert_int_equal(cache_answers(pool, "miss"), 1);

    assert_int_equal(mandate_store_revoke(store, "another-jti", "agent-2", now + 600, &err),
                     MANDATE_OK);
    assert_int_equal(mandate_keyring_sync(f->rt, false, &err), MANDATE_OK);
    mandate_token_validate(f->rt, pool, token, strlen(token), &st, &err);
    assert_int_equal(cache_answers(pool, "hit"), 1);
    assert_int_equal(cache_answers(pool, "miss"), 1);

    /* the signing key retired (it still verifies): read again */
    mandate_key *keys;
    size_t count;
    assert_int_equal(mandate_keys_list(f->rt, pool, &keys, &count, &err), MANDATE_OK);
    assert_int_equal(count, 1);
    keys[0].status = MANDATE_KEY_RETIRED;
    keys[0].retired_at = now;
    keys[0].remove_after = now + 3600;
    assert_int_equal(mandate_store_key_update(store, &keys[0], &err), MANDATE_OK);
    assert_int_equal(mandate_keyring_sync(f->rt, false, &err), MANDATE_OK);
    mandate_token_validate(f->rt, pool, token, strlen(token), &st, &err);
    assert_true(st.parsed);
    assert_int_equal(cache_answers(pool, "miss"), 2);
    mandate_pool_free(&pool);
}

/* A format of ABI 1.3 knows nothing of prior_actors: what lies there after
 * its parse is not taken for a chain of actors (and would not be handed to
 * it to mint: mandate_token_issue refuses that). */
static void test_runtime_old_format_carries_no_chain(void **state)
{
    test_runtime *f = *state;
    test_runtime_instance(f, "store", "kind = \"store\"; plugin = \"sqlite\";\n");
    test_runtime_instance(f, "format-old", "kind = \"format\"; plugin = \"old\";\n");
    FILE *fp = fopen(f->conf, "a");
    assert_non_null(fp);
    fputs("tokens: { format = \"format-old\"; };\n", fp);
    fclose(fp);
    assert_int_equal(test_runtime_start(f, MANDATE_RUNTIME_MIGRATE), MANDATE_OK);
    mandate_pool *pool = mandate_pool_new();
    mandate_token_status st;
    mandate_error err = {0};
    /* inactive (another issuer), but read: the grant is what the format said */
    assert_int_equal(mandate_token_validate(f->rt, pool, "old_token", 9, &st, &err),
                     MANDATE_INVALID);
    assert_true(st.parsed);
    assert_string_equal(st.grant.actor, "agent-c");
    assert_null(st.grant.prior_actors);
    /* and so from the cache of checked tokens */
    assert_int_equal(mandate_token_validate(f->rt, pool, "old_token", 9, &st, &err),
                     MANDATE_INVALID);
    assert_string_equal(st.grant.actor, "agent-c");
    assert_null(st.grant.prior_actors);
    mandate_pool_free(&pool);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, rt_setup, rt_teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_good_plugin),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_kind_mismatch),
        cmocka_unit_test(test_bad_names),
        cmocka_unit_test(test_scan_with_garbage),
        T(test_runtime_applies_config),
        T(test_runtime_plugin_key_errors),
        T(test_runtime_refuses_bad_plugins),
        T(test_runtime_instantiate_failure),
        T(test_runtime_needs_one_store),
        T(test_runtime_needs_kek),
        T(test_runtime_expired_token_not_verified_again),
        T(test_runtime_old_format_carries_no_chain),
        T(test_runtime_check_cache_emptied_by_key_changes_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
