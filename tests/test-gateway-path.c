/* The gateway check's path (core/gateway-path.c, issue 20): a table of raw
 * original paths, each with the verdict the check must reach against a
 * target set loaded by the real config loader. The first rows are the
 * finding's: with a plain prefix compare each gave the read-only target
 * "public". The same attacks go through the live daemon, in nginx's and
 * Envoy's form, in tests/e2e/gateway.sh. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config-private.h"
#include "gateway-path-private.h"
#include "pool-private.h"
#include "test-helpers.h"

/* Under /mcp (the calendar's MCP endpoint) a read-only and an admin tool
 * set, an admin sub-tree of its own, and /tools/ with its trailing slash. */
static const char targets_conf[] =
    "targets = (\n"
    "  { name = \"mcp\"; paths = [\"/mcp\"]; audience = \"a\"; scopes = [\"mcp:call\"]; },\n"
    "  { name = \"public\"; paths = [\"/mcp/public\"]; audience = \"a\"; "
    "scopes = [\"mcp:read\"]; },\n"
    "  { name = \"admin\"; paths = [\"/mcp/admin\"]; audience = \"a\"; "
    "scopes = [\"mcp:admin\"]; },\n"
    "  { name = \"reports\"; paths = [\"/mcp/admin/reports\"]; audience = \"a\"; },\n"
    "  { name = \"tools\"; paths = [\"/tools/\"]; audience = \"a\"; }\n"
    ");\n";

/* A catch-all: "/" covers every path that no longer target path covers. */
static const char root_conf[] =
    "targets = (\n"
    "  { name = \"everything\"; paths = [\"/\"]; audience = \"a\"; },\n"
    "  { name = \"public\"; paths = [\"/mcp/public\"]; audience = \"a\"; }\n"
    ");\n";

typedef struct fixture {
    char *dir;
    mandate_config *cfg;
    mandate_pool *pool;
} fixture;

static int setup_with(void **state, const char *text)
{
    fixture *f = calloc(1, sizeof(*f));
    f->dir = test_mkdtemp();
    free(test_write_file(f->dir, "mandate.d/store-sqlite.conf",
                         "kind = \"store\";\nplugin = \"sqlite\";\n"));
    char *conf = test_write_file(f->dir, "mandate.conf", text);
    mandate_diag diag = {0};
    if (!mandate_config_load(conf, &f->cfg, &diag))
        fail_msg("the targets do not load: %s", diag.count ? diag.lines[0] : "?");
    mandate_diag_free(&diag);
    free(conf);
    f->pool = mandate_pool_new();
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, targets_conf);
}

static int setup_root(void **state)
{
    return setup_with(state, root_conf);
}

static int teardown(void **state)
{
    fixture *f = *state;
    mandate_config_free(&f->cfg);
    mandate_pool_free(&f->pool);
    test_rmdir_rf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* raw (len bytes; 0: strlen), and what the check must make of it: a target's
 * name, "-" for no target, or "400:" and a part of the reason. path, when
 * not NULL, is the normalised path it must be matched as. */
typedef struct row {
    const char *raw;
    size_t len;
    const char *want;
    const char *path;
} row;

static const row table[] = {
    /* the finding: each was 200 with X-Mandate-Target: public */
    {"/mcp/public/../admin/tool", 0, "admin", "/mcp/admin/tool"},
    {"/mcp/public/%2e%2e/admin/tool", 0, "400:encoded dot-segment", NULL},
    {"/mcp/public%2f..%2fadmin/tool", 0, "400:encoded slash", NULL},
    {"/mcp/publicity-admin", 0, "mcp", "/mcp/publicity-admin"},
    /* plain, legitimate, and what a query or a trailing slash does */
    {"/mcp/public", 0, "public", "/mcp/public"},
    {"/mcp/public/", 0, "public", "/mcp/public/"},
    {"/mcp/public/tool", 0, "public", NULL},
    {"/mcp/public?x=1", 0, "public", "/mcp/public"},
    {"/mcp/public?next=/../admin&p=%2f#f", 0, "public", "/mcp/public"},
    {"/mcp/public/Tool", 0, "public", "/mcp/public/Tool"},
    {"/mcp/publicity", 0, "mcp", NULL},
    {"/mcp", 0, "mcp", "/mcp"},
    {"/mcpx", 0, "-", NULL},
    {"/other", 0, "-", NULL},
    {"/", 0, "-", "/"},
    /* the most specific target wins */
    {"/mcp/admin", 0, "admin", NULL},
    {"/mcp/admin/reports", 0, "reports", NULL},
    {"/mcp/admin/reports/q1", 0, "reports", NULL},
    {"/mcp/admin/reportsx", 0, "admin", NULL},
    /* a trailing slash in a target: below it only */
    {"/tools/x", 0, "tools", NULL},
    {"/tools/", 0, "tools", NULL},
    {"/tools", 0, "-", NULL},
    {"/toolsx", 0, "-", NULL},
    /* traversal: resolved by RFC 3986 §5.2.4, never above the root */
    {"/mcp/public/./tool", 0, "public", "/mcp/public/tool"},
    {"/mcp/public/.", 0, "public", "/mcp/public/"},
    {"/mcp/public/tool/..", 0, "public", "/mcp/public/"},
    {"/mcp/public/..", 0, "mcp", "/mcp/"},
    {"/mcp/public/../../mcp/admin", 0, "admin", "/mcp/admin"},
    {"/mcp/admin/../public/tool", 0, "public", "/mcp/public/tool"},
    {"/mcp/admin/x/../reports", 0, "reports", "/mcp/admin/reports"},
    {"/.", 0, "-", "/"},
    {"/mcp/..", 0, "-", "/"},
    {"/mcp/public/../../..", 0, "400:above the root", NULL},
    {"/..", 0, "400:above the root", NULL},
    {"/../mcp/public", 0, "400:above the root", NULL},
    /* encoded dots: a dot-segment is refused, a dot in a name is a dot */
    {"/mcp/public/%2E%2E/admin", 0, "400:encoded dot-segment", NULL},
    {"/mcp/public/.%2E/admin", 0, "400:encoded dot-segment", NULL},
    {"/mcp/public/%2e./admin", 0, "400:encoded dot-segment", NULL},
    {"/mcp/public/%2e", 0, "400:encoded dot-segment", NULL},
    {"/mcp/public/%2e%2e%2e", 0, "public", "/mcp/public/..."},
    {"/mcp/public/a%2eb", 0, "public", "/mcp/public/a.b"},
    /* other encodings: decoded once */
    {"/mcp/p%75blic/x", 0, "public", "/mcp/public/x"},
    {"/mcp/%61dmin", 0, "admin", "/mcp/admin"},
    {"/mcp/public/a%20b", 0, "public", "/mcp/public/a b"},
    {"/mcp/public/caf%C3%A9", 0, "public", "/mcp/public/caf\xc3\xa9"},
    {"/mcp/public%2Fadmin", 0, "400:encoded slash", NULL},
    {"/mcp/public/%5c..%5cadmin", 0, "400:encoded backslash", NULL},
    {"/mcp/public/%3f", 0, "400:encoded '?'", NULL},
    {"/mcp/public/%23/../../admin", 0, "400:encoded '?'", NULL},
    /* double encoding: no %25, so no second decoding can find anything */
    {"/mcp/public/%252e%252e/admin", 0, "400:%25", NULL},
    {"/mcp/public%252f..%252fadmin", 0, "400:%25", NULL},
    {"/mcp/public/100%25", 0, "400:%25", NULL},
    /* NUL and control characters, raw and encoded */
    {"/mcp/public/%00/../../admin", 0, "400:NUL", NULL},
    {"/mcp/public\0/../admin", 21, "400:NUL", NULL},
    {"/mcp/public/%0a", 0, "400:control", NULL},
    {"/mcp/public/%7F", 0, "400:control", NULL},
    {"/mcp/public/\t", 0, "400:control", NULL},
    {"/mcp/public/%c2%85", 0, "400:UTF-8 or a control", NULL},
    /* bad escapes and bad UTF-8 (an overlong '.', a lone continuation) */
    {"/mcp/public/%zz", 0, "400:bad percent", NULL},
    {"/mcp/public/%2", 0, "400:bad percent", NULL},
    {"/mcp/public/%", 0, "400:bad percent", NULL},
    {"/mcp/public/%2?x", 0, "400:bad percent", NULL},
    {"/mcp/public/%c0%ae%c0%ae/admin", 0, "400:UTF-8", NULL},
    {"/mcp/public/%80", 0, "400:UTF-8", NULL},
    /* ';' parameters: Tomcat and Spring cut them, and read "..;" as ".." */
    {"/mcp/public;x=1/../admin/tool", 0, "400:';'", NULL},
    {"/mcp/public/..;/admin/tool", 0, "400:';'", NULL},
    {"/mcp/admin;jsessionid=1/tool", 0, "400:';'", NULL},
    {"/mcp/public/%3b/../admin", 0, "400:%3B", NULL},
    /* empty segments: merged by some servers, kept by others */
    {"/mcp//admin/tool", 0, "400:empty segment", NULL},
    {"//mcp/admin", 0, "400:empty segment", NULL},
    {"/mcp/public//", 0, "400:empty segment", NULL},
    /* letter case: matched exactly, refused where case-blind routing differs */
    {"/mcp/Admin/tool", 0, "400:letter case", NULL},
    {"/MCP/PUBLIC/tool", 0, "400:letter case", NULL},
    {"/mcp/admin/Reports", 0, "400:letter case", NULL},
    {"/TOOLS/x", 0, "400:letter case", NULL},
    {"/Other", 0, "-", NULL},
    /* what a request-target never holds */
    {"/mcp/public\\..\\admin", 0, "400:backslash", NULL},
    {"/mcp/public/#/../../admin", 0, "400:'#'", NULL},
    {"/mcp/public/a b", 0, "400:must be percent-encoded", NULL},
    {"/mcp/public/{x}", 0, "400:must be percent-encoded", NULL},
    {"/mcp/public/\xc3\xa9", 0, "400:not ASCII", NULL},
    {"mcp/public", 0, "400:begin with '/'", NULL},
    {"", 0, "400:begin with '/'", NULL},
    {"?/mcp/public", 0, "400:begin with '/'", NULL},
    {"http://gw/mcp/public", 0, "400:begin with '/'", NULL},
    {"*", 0, "400:begin with '/'", NULL},
};

/* What the check makes of raw: a target's name, "-", or "400:<why>". */
static const char *verdict(fixture *f, const char *raw, size_t len, char **path_r)
{
    const mandate_target *t;
    const char *why;
    if (!mandate_gateway_path_target(f->pool, f->cfg->targets, f->cfg->target_count, raw, len,
                                     &t, path_r, &why)) {
        assert_null(t);
        return mandate_pool_printf(f->pool, "400:%s", why);
    }
    return t != NULL ? t->name : "-";
}

static void test_table(void **state)
{
    fixture *f = *state;
    size_t failures = 0;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        const row *r = &table[i];
        size_t len = r->len ? r->len : strlen(r->raw);
        char *path = NULL;
        const char *got = verdict(f, r->raw, len, &path);
        bool refused = strncmp(r->want, "400:", 4) == 0;
        bool ok = refused ? strncmp(got, "400:", 4) == 0 && strstr(got, r->want + 4) != NULL
                          : strcmp(got, r->want) == 0;
        if (ok && r->path != NULL && (path == NULL || strcmp(path, r->path) != 0))
            ok = false;
        if (!ok) {
            print_error("row %zu, \"%s\": expected %s%s%s, got %s (path %s)\n", i, r->raw,
                        r->want, r->path ? " as " : "", r->path ? r->path : "", got,
                        path ? path : "-");
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

/* The invariants the fuzzer checks too, over every row that passes. */
static void test_normal_form(void **state)
{
    fixture *f = *state;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        const row *r = &table[i];
        char *path;
        const char *why;
        if (!mandate_gateway_path_normalise(f->pool, r->raw, r->len ? r->len : strlen(r->raw),
                                            &path, &why)) {
            assert_null(path);
            assert_non_null(why);
            continue;
        }
        assert_int_equal(path[0], '/');
        assert_null(strstr(path, "//"));
        assert_null(strstr(path, "/./"));
        assert_null(strstr(path, "/../"));
        assert_null(strchr(path, '%'));
        size_t n = strlen(path);
        assert_false(n >= 2 && strcmp(path + n - 2, "/.") == 0);
        assert_false(n >= 3 && strcmp(path + n - 3, "/..") == 0);
        /* normalising a normal path leaves it as it is (when it is written
         * with what a path may hold unencoded: a decoded space is not) */
        char *again;
        static const char plain[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                    "0123456789-._~!$&'()*+,=:@/";
        if (strspn(path, plain) == n) {
            assert_true(mandate_gateway_path_normalise(f->pool, path, n, &again, &why));
            assert_string_equal(again, path);
        }
    }
}

static void test_length_bound(void **state)
{
    fixture *f = *state;
    char *raw = malloc(MANDATE_GATEWAY_PATH_MAX + 2);
    memcpy(raw, "/mcp/public/", 12);
    memset(raw + 12, 'a', MANDATE_GATEWAY_PATH_MAX - 12);
    raw[MANDATE_GATEWAY_PATH_MAX] = '\0';
    char *path;
    assert_string_equal(verdict(f, raw, MANDATE_GATEWAY_PATH_MAX, &path), "public");
    raw[MANDATE_GATEWAY_PATH_MAX] = 'a';
    raw[MANDATE_GATEWAY_PATH_MAX + 1] = '\0';
    assert_string_equal(verdict(f, raw, MANDATE_GATEWAY_PATH_MAX + 1, &path),
                        "400:the path is too long");
    /* the query does not count */
    raw[MANDATE_GATEWAY_PATH_MAX] = '?';
    assert_string_equal(verdict(f, raw, MANDATE_GATEWAY_PATH_MAX + 1, &path), "public");
    free(raw);
}

static void test_root_target(void **state)
{
    fixture *f = *state;
    char *path;
    assert_string_equal(verdict(f, "/", 1, &path), "everything");
    assert_string_equal(verdict(f, "/x/y", 4, &path), "everything");
    assert_string_equal(verdict(f, "/mcp/publicity", 14, &path), "everything");
    assert_string_equal(verdict(f, "/mcp/public/x", 13, &path), "public");
    assert_string_equal(verdict(f, "/mcp/public/../../etc", 21, &path), "everything");
    /* "everything" would answer with case; "public" without it */
    assert_true(strncmp(verdict(f, "/MCP/Public", 11, &path), "400:", 4) == 0);
}

static void test_covers(void **state)
{
    (void)state;
    assert_true(mandate_gateway_path_covers("/mcp/public", "/mcp/public", false));
    assert_true(mandate_gateway_path_covers("/mcp/public", "/mcp/public/", false));
    assert_true(mandate_gateway_path_covers("/mcp/public", "/mcp/public/x", false));
    assert_false(mandate_gateway_path_covers("/mcp/public", "/mcp/publicity", false));
    assert_false(mandate_gateway_path_covers("/mcp/public", "/mcp/publi", false));
    assert_false(mandate_gateway_path_covers("/mcp/public", "/MCP/public", false));
    assert_true(mandate_gateway_path_covers("/mcp/public", "/MCP/Public/x", true));
    assert_false(mandate_gateway_path_covers("/mcp/public", "/MCP/Publicx", true));
    assert_true(mandate_gateway_path_covers("/tools/", "/tools/x", false));
    assert_true(mandate_gateway_path_covers("/tools/", "/tools/", false));
    assert_false(mandate_gateway_path_covers("/tools/", "/tools", false));
    assert_true(mandate_gateway_path_covers("/", "/anything", false));
    assert_false(mandate_gateway_path_covers("", "/anything", false));
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_table),
        T(test_normal_form),
        T(test_length_bound),
        cmocka_unit_test_setup_teardown(test_root_target, setup_root, teardown),
        cmocka_unit_test(test_covers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
