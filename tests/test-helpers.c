#include "config.h"

#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "jose.h"
#include "pool-private.h"
#include "test-helpers.h"
#include "util-private.h"

void test_failures_note(test_failures *failures, const char *why)
{
    failures->count++;
    snprintf(failures->last, sizeof(failures->last), "%s", why);
}

char *test_mint_and_parse(const mandate_format_ops *ops, void *inst, mandate_pool *pool,
                          const mandate_grant *grant, mandate_grant *back_r,
                          test_failures *failures)
{
    mandate_error err = {0};
    char *token = NULL;
    if (ops->mint(inst, pool, grant, &token, &err) == MANDATE_OK && token != NULL &&
        ops->parse(inst, pool, token, strlen(token), back_r, &err) == MANDATE_OK)
        return strdup(token);
    test_failures_note(failures, err.message);
    return NULL;
}

char *test_mkdtemp(void)
{
    const char *tmp = getenv("TMPDIR");
    char *templ = mandate_xasprintf("%s/mandate-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(templ) == NULL)
        mandate_die("mkdtemp %s failed", templ);
    return templ;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

void test_rmdir_rf(const char *dir)
{
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

char *test_write_file(const char *dir, const char *name, const char *text)
{
    mkdir(dir, 0755);
    char *path = mandate_path_join(dir, name);
    for (char *slash = strchr(path + strlen(dir) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        mkdir(path, 0755);
        *slash = '/';
    }
    FILE *f = fopen(path, "w");
    if (f == NULL)
        mandate_die("cannot write %s", path);
    fputs(text, f);
    fclose(f);
    return path;
}

bool test_contains(const char *haystack, const char *needle)
{
    if (haystack == NULL || strstr(haystack, needle) == NULL) {
        fprintf(stderr, "expected to find \"%s\" in \"%s\"\n", needle,
                haystack ? haystack : "(null)");
        return false;
    }
    return true;
}

void test_assert_diag_at(const mandate_diag *diag, const char *file, int line, const char *what)
{
    char *prefix = mandate_xasprintf("%s:%d: ", file, line);
    bool found = false;
    for (size_t i = 0; i < diag->count && !found; i++)
        found = strncmp(diag->lines[i], prefix, strlen(prefix)) == 0 &&
                test_contains(diag->lines[i], what);
    if (!found)
        fail_msg("expected \"%s...%s\" in \"%s\"", prefix, what, mandate_diag_join(diag));
    free(prefix);
}

void test_conf_file_init(test_conf_file *c)
{
    *c = (test_conf_file){.dir = test_mkdtemp()};
    c->path = mandate_path_join(c->dir, "mandate.conf");
}

const char *test_conf_file_write(test_conf_file *c, const char *text)
{
    mandate_diag_free(&c->diag);
    free(test_write_file(c->dir, "mandate.conf", text));
    return c->path;
}

bool test_conf_file_read(test_conf_file *c, const char *text, config_t *cfg)
{
    return mandate_conf_read_file(cfg, test_conf_file_write(c, text), &c->diag);
}

void test_conf_file_clear(test_conf_file *c)
{
    mandate_diag_free(&c->diag);
    test_rmdir_rf(c->dir);
    free(c->dir);
    free(c->path);
    *c = (test_conf_file){0};
}

void test_assert_str_or_null(const char *want, const char *got)
{
    if (want == NULL)
        assert_null(got);
    else
        assert_string_equal(want, got);
}

void test_assert_grants_equal(const mandate_grant *want, const mandate_grant *got)
{
    assert_string_equal(want->issuer, got->issuer);
    assert_string_equal(want->subject, got->subject);
    assert_string_equal(want->client_id, got->client_id);
    assert_string_equal(want->jti, got->jti);
    test_assert_str_or_null(want->actor, got->actor);
    test_assert_str_or_null(want->tenant, got->tenant);
    test_assert_str_or_null(want->scope, got->scope);
    test_assert_str_or_null(want->audience, got->audience);
    test_assert_str_or_null(want->idp, got->idp);
    test_assert_str_or_null(want->prior_actors, got->prior_actors);
    assert_int_equal(want->issued_at, got->issued_at);
    assert_int_equal(want->not_before, got->not_before);
    assert_int_equal(want->expires_at, got->expires_at);
}

int test_pool_setup(void **state)
{
    *state = mandate_pool_new();
    return 0;
}

int test_pool_teardown(void **state)
{
    mandate_pool *pool = *state;
    mandate_pool_free(&pool);
    return 0;
}

void test_expect_refusals(const test_text_case *cases, size_t count, test_refuse_fn *refuse,
                          void *ctx)
{
    for (size_t i = 0; i < count; i++) {
        char *said = refuse(ctx, cases[i].text);
        if (said == NULL)
            fail_msg("accepted: %s", cases[i].text);
        if (strstr(said, cases[i].want) == NULL)
            fail_msg("%s: '%s' does not say '%s'", cases[i].text, said, cases[i].want);
        free(said);
    }
}

void test_assert_plugin_descriptor(const mandate_plugin *plugin, mandate_plugin_kind kind,
                                   const char *name)
{
    assert_int_equal(plugin->magic, MANDATE_PLUGIN_MAGIC);
    assert_int_equal(plugin->abi_major, MANDATE_PLUGIN_ABI_MAJOR);
    assert_int_equal(plugin->kind, kind);
    assert_string_equal(plugin->name, name);
}

char *test_b64url(const void *data, size_t len)
{
    char *out = mandate_xmalloc(mandate_b64url_encoded_len(len) + 1);
    mandate_b64url_encode(data, len, out);
    return out;
}

void test_conf_set_pairs(test_conf_setter *set, const mandate_plugin *plugin, void *inst,
                         va_list ap)
{
    for (const char *key = va_arg(ap, const char *); key != NULL;
         key = va_arg(ap, const char *)) {
        const char *value = va_arg(ap, const char *);
        if (set(plugin, inst, key, value) != 0)
            fail_msg("%s: cannot set %s = %s", plugin->name, key, value);
    }
}

mandate_grant test_sample_grant(int64_t now)
{
    return (mandate_grant){
        .issuer = "https://broker.example.com",
        .subject = "agent-7",
        .client_id = "build-agent",
        .scope = "repo:read repo:write",
        .audience = "https://api.example.com",
        .jti = "0f9c2d4e-jti",
        .issued_at = now,
        .not_before = now,
        .expires_at = now + 600,
    };
}
