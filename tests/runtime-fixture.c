#include "config.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/pem.h>

#include "kek-private.h"
#include "runtime-fixture.h"
#include "test-helpers.h"
#include "util-private.h"

/* Every plugin of a build folder, linked into dir (the first of a name
 * wins: the real plugins before the test ones). */
static void link_plugins(const char *from, const char *dir)
{
    DIR *d = opendir(from);
    if (d == NULL)
        fail_msg("no plugins in %s: build them first", from);
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t n = strlen(e->d_name);
        if (n < 4 || strcmp(e->d_name + n - 3, ".so") != 0)
            continue;
        char *target = mandate_path_join(from, e->d_name);
        char *link = mandate_path_join(dir, e->d_name);
        if (access(link, F_OK) != 0 && symlink(target, link) != 0)
            fail_msg("cannot link %s", link);
        free(target);
        free(link);
    }
    closedir(d);
}

test_runtime *test_runtime_new(const char *extra)
{
    test_runtime *t = mandate_xcalloc(1, sizeof(*t));
    t->dir = test_mkdtemp();
    char *pdir = mandate_path_join(t->dir, "plugins");
    free(test_write_file(pdir, "README", "plugins\n"));
    link_plugins(BUILDDIR "/plugins/.libs", pdir);
    link_plugins(BUILDDIR "/tests/plugins/.libs", pdir);
    char *text = mandate_xasprintf("plugin_dir = \"%s\";\nstate_dir = \"state\";\n%s\n", pdir,
                                   extra != NULL ? extra : "");
    t->conf = test_write_file(t->dir, "mandate.conf", text);
    free(text);
    free(pdir);
    char *state_dir = mandate_path_join(t->dir, "state");
    free(test_write_file(state_dir, "README", "state\n"));
    char *kek = mandate_path_join(state_dir, "kek");
    mandate_error err = {0};
    if (mandate_kek_create(kek, &err) != MANDATE_OK)
        fail_msg("kek: %s", err.message);
    free(kek);
    free(state_dir);
    return t;
}

void test_runtime_instance(test_runtime *t, const char *name, const char *text)
{
    char *file = mandate_xasprintf("mandate.d/%s.conf", name);
    free(test_write_file(t->dir, file, text));
    free(file);
}

mandate_rc test_runtime_start(test_runtime *t, unsigned flags)
{
    mandate_config *cfg = NULL;
    mandate_runtime_unref(&t->rt);
    mandate_diag_free(&t->diag);
    if (!mandate_config_load(t->conf, &cfg, &t->diag))
        return MANDATE_INVALID;
    return mandate_runtime_create(cfg, flags, &t->rt, &t->diag);
}

test_runtime *test_runtime_sqlite(const char *extra, const char *const *instances)
{
    test_runtime *t = test_runtime_new(extra);
    test_runtime_instance(t, "store", "kind = \"store\"; plugin = \"sqlite\";\n");
    test_runtime_instance(t, "format-jwt", "kind = \"format\"; plugin = \"jwt\";\n");
    for (size_t i = 0; instances != NULL && instances[i] != NULL; i += 2)
        test_runtime_instance(t, instances[i], instances[i + 1]);
    if (test_runtime_start(t, MANDATE_RUNTIME_MIGRATE | MANDATE_RUNTIME_CREATE_KEYS) !=
        MANDATE_OK)
        fail_msg("runtime: %s", mandate_diag_join(&t->diag));
    return t;
}

const mandate_instance *test_runtime_find(test_runtime *t, const char *name)
{
    for (size_t i = 0; t->rt != NULL && i < mandate_runtime_instance_count(t->rt); i++) {
        const mandate_instance *in = mandate_runtime_instance(t->rt, i);
        if (strcmp(in->conf->name, name) == 0)
            return in;
    }
    fail_msg("no instance '%s'", name);
    return NULL;
}

void test_runtime_free(test_runtime **tp)
{
    test_runtime *t = *tp;
    if (t == NULL)
        return;
    *tp = NULL;
    mandate_runtime_unref(&t->rt);
    mandate_diag_free(&t->diag);
    test_rmdir_rf(t->dir);
    free(t->dir);
    free(t->conf);
    free(t);
}

mandate_client test_stored_client(test_runtime *t, mandate_pool *pool, const char *client_id)
{
    mandate_client c;
    mandate_error err = {0};
    mandate_rc rc =
        mandate_store_client_get(mandate_runtime_store(t->rt), pool, client_id, &c, &err);
    if (rc != MANDATE_OK)
        fail_msg("client %s: %s: %s", client_id, mandate_rc_name(rc), err.message);
    return c;
}

void test_assert_public_client(const mandate_client *c)
{
    assert_null(c->backend);
    assert_null(c->secret_hash);
    assert_null(c->public_key);
    assert_int_equal(c->status, MANDATE_CLIENT_ENABLED);
}

char *test_public_pem(EVP_PKEY *key)
{
    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, key);
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    char *out = mandate_xasprintf("%.*s", (int)n, data);
    BIO_free(bio);
    return out;
}

static const char *failing;
static mandate_rc failing_rc;

void test_fail_next(const char *call, mandate_rc rc)
{
    failing = call;
    failing_rc = rc;
}

bool test_fails(const char *call, mandate_error *err)
{
    if (failing == NULL || strcmp(failing, call) != 0)
        return false;
    failing = NULL;
    mandate_error_set(err, failing_rc, "%s: injected", call);
    return true;
}
