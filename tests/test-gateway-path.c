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
/* Paths the check lets through: to target ("-": none), as path. */
typedef struct routed_row {
    const char *raw;
    const char *target;
    const char *path;
} routed_row;

static const routed_row routed[] = {
    /* the finding: each was 200 with X-Mandate-Target: public */
    {"/mcp/public/../admin/tool", "admin", "/mcp/admin/tool"},
    {"/mcp/publicity-admin", "mcp", "/mcp/publicity-admin"},
    /* plain, legitimate, and what a query or a trailing slash does */
    {"/mcp/public", "public", "/mcp/public"},
    {"/mcp/public/", "public", "/mcp/public/"},
    {"/mcp/public/tool", "public", "/mcp/public/tool"},
    {"/mcp/public?x=1", "public", "/mcp/public"},
    {"/mcp/public?next=/../admin&p=%2f#f", "public", "/mcp/public"},
    {"/mcp/public/Tool", "public", "/mcp/public/Tool"},
    {"/mcp/publicity", "mcp", "/mcp/publicity"},
    {"/mcp", "mcp", "/mcp"},
    {"/mcpx", "-", "/mcpx"},
    {"/other", "-", "/other"},
    {"/", "-", "/"},
    /* the most specific target wins */
    {"/mcp/admin", "admin", "/mcp/admin"},
    {"/mcp/admin/reports", "reports", "/mcp/admin/reports"},
    {"/mcp/admin/reports/q1", "reports", "/mcp/admin/reports/q1"},
    {"/mcp/admin/reportsx", "admin", "/mcp/admin/reportsx"},
    /* a trailing slash in a target: below it only */
    {"/tools/x", "tools", "/tools/x"},
    {"/tools/", "tools", "/tools/"},
    {"/tools", "-", "/tools"},
    {"/toolsx", "-", "/toolsx"},
    /* traversal: resolved by RFC 3986 §5.2.4, never above the root */
    {"/mcp/public/./tool", "public", "/mcp/public/tool"},
    {"/mcp/public/.", "public", "/mcp/public/"},
    {"/mcp/public/tool/..", "public", "/mcp/public/"},
    {"/mcp/public/..", "mcp", "/mcp/"},
    {"/mcp/public/../../mcp/admin", "admin", "/mcp/admin"},
    {"/mcp/admin/../public/tool", "public", "/mcp/public/tool"},
    {"/mcp/admin/x/../reports", "reports", "/mcp/admin/reports"},
    {"/.", "-", "/"},
    {"/mcp/..", "-", "/"},
    /* encoded dots: a dot in a name is a dot */
    {"/mcp/public/a%2eb", "public", "/mcp/public/a.b"},
    /* other encodings: decoded once */
    {"/mcp/p%75blic/x", "public", "/mcp/public/x"},
    {"/mcp/%61dmin", "admin", "/mcp/admin"},
    /* text that NFKC leaves alone (NFC) is a name like any other */
    {"/mcp/public/caf%C3%A9", "public", "/mcp/public/caf\xc3\xa9"},
    {"/mcp/public/a.b", "public", "/mcp/public/a.b"},
    {"/mcp/public/a%20b", "public", "/mcp/public/a b"},
    {"/mcp/public/a%20b", "public", "/mcp/public/a b"},
    {"/mcp/public/caf%C3%A9", "public", "/mcp/public/caf\xc3\xa9"},
    /* letter case: matched exactly (the refused rows below differ only in case
     * where a case-blind router would pick another target) */
    {"/Other", "-", "/Other"},
};

/* Paths the check refuses with 400 for why; len (0: strlen) for a raw NUL. */
typedef struct refused_row {
    const char *raw;
    size_t len;
    const char *why;
} refused_row;

static const refused_row refused[] = {
    /* the finding (the plain "../" of it routes above): each was 200 with
     * X-Mandate-Target: public */
    {"/mcp/public/%2e%2e/admin/tool", 0, "encoded dot-segment"},
    {"/mcp/public%2f..%2fadmin/tool", 0, "encoded slash"},
    /* traversal never goes above the root */
    {"/mcp/public/../../..", 0, "above the root"},
    {"/..", 0, "above the root"},
    {"/../mcp/public", 0, "above the root"},
    /* encoded dots: a dot-segment is refused */
    {"/mcp/public/%2E%2E/admin", 0, "encoded dot-segment"},
    {"/mcp/public/.%2E/admin", 0, "encoded dot-segment"},
    {"/mcp/public/%2e./admin", 0, "encoded dot-segment"},
    {"/mcp/public/%2e", 0, "encoded dot-segment"},
    /* other encodings: decoded once, but never into a delimiter */
    {"/mcp/public%2Fadmin", 0, "encoded slash"},
    {"/mcp/public/%5c..%5cadmin", 0, "encoded backslash"},
    {"/mcp/public/%3f", 0, "encoded '?'"},
    {"/mcp/public/%23/../../admin", 0, "encoded '?'"},
    /* double encoding: no %25, so no second decoding can find anything */
    {"/mcp/public/%252e%252e/admin", 0, "%25"},
    {"/mcp/public%252f..%252fadmin", 0, "%25"},
    {"/mcp/public/100%25", 0, "%25"},
    /* NUL and control characters, raw and encoded */
    {"/mcp/public/%00/../../admin", 0, "NUL"},
    {"/mcp/public\0/../admin", 21, "NUL"},
    {"/mcp/public/%0a", 0, "control"},
    {"/mcp/public/%7F", 0, "control"},
    {"/mcp/public/\t", 0, "control"},
    {"/mcp/public/%c2%85", 0, "UTF-8 or a control"},
    /* bad escapes and bad UTF-8 (an overlong '.', a lone continuation) */
    {"/mcp/public/%zz", 0, "bad percent"},
    {"/mcp/public/%2", 0, "bad percent"},
    {"/mcp/public/%", 0, "bad percent"},
    {"/mcp/public/%2?x", 0, "bad percent"},
    {"/mcp/public/%c0%ae%c0%ae/admin", 0, "UTF-8"},
    {"/mcp/public/%80", 0, "UTF-8"},
    /* a name's trailing dots and spaces, dropped by Windows file mapping
     * (IIS): "admin." is "admin" there (review s35, finding 6) */
    {"/mcp/admin.", 0, "ends in a dot or a space"},
    {"/mcp/admin%2e", 0, "ends in a dot or a space"},
    {"/mcp/admin%2E/tool", 0, "ends in a dot or a space"},
    {"/mcp/admin./tool", 0, "ends in a dot or a space"},
    {"/mcp/admin%20", 0, "ends in a dot or a space"},
    {"/mcp/admin%20/tool", 0, "ends in a dot or a space"},
    {"/mcp/public/...", 0, "ends in a dot or a space"},
    /* "..." was a plain name until then: Windows reads it as "." */
    {"/mcp/public/%2e%2e%2e", 0, "ends in a dot or a space"},
    /* compatibility characters, which NFKC turns into others: a fullwidth
     * full stop (U+FF0E) is '.', a no-break space a space */
    {"/mcp/admin%ef%bc%8e", 0, "NFKC"},
    {"/mcp/public/%ef%bc%8e%ef%bc%8e/admin", 0, "NFKC"},
    {"/mcp/public/a%c2%a0b", 0, "NFKC"},
    {"/mcp/%ef%bd%81dmin", 0, "NFKC"},
    /* ';' parameters: Tomcat and Spring cut them, and read "..;" as ".." */
    {"/mcp/public;x=1/../admin/tool", 0, "';'"},
    {"/mcp/public/..;/admin/tool", 0, "';'"},
    {"/mcp/admin;jsessionid=1/tool", 0, "';'"},
    {"/mcp/public/%3b/../admin", 0, "%3B"},
    /* empty segments: merged by some servers, kept by others */
    {"/mcp//admin/tool", 0, "empty segment"},
    {"//mcp/admin", 0, "empty segment"},
    {"/mcp/public//", 0, "empty segment"},
    /* letter case: refused where case-blind routing differs */
    {"/mcp/Admin/tool", 0, "letter case"},
    {"/MCP/PUBLIC/tool", 0, "letter case"},
    {"/mcp/admin/Reports", 0, "letter case"},
    {"/TOOLS/x", 0, "letter case"},
    /* what a request-target never holds */
    {"/mcp/public\\..\\admin", 0, "backslash"},
    {"/mcp/public/#/../../admin", 0, "'#'"},
    {"/mcp/public/a b", 0, "must be percent-encoded"},
    {"/mcp/public/{x}", 0, "must be percent-encoded"},
    {"/mcp/public/\xc3\xa9", 0, "not ASCII"},
    {"mcp/public", 0, "begin with '/'"},
    {"", 0, "begin with '/'"},
    {"?/mcp/public", 0, "begin with '/'"},
    {"http://gw/mcp/public", 0, "begin with '/'"},
    {"*", 0, "begin with '/'"},
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

static size_t raw_len(const char *raw, size_t len)
{
    return len != 0 ? len : strlen(raw);
}

/* 1 when raw is not as a row wants (said on stderr): routed to want as
 * want_path, or (want_path NULL) refused with 400 for want. */
static size_t row_fails(fixture *f, const char *table_name, size_t i, const char *raw,
                        size_t len, const char *want, const char *want_path)
{
    char *path = NULL;
    const char *got = verdict(f, raw, len, &path);
    bool ok = want_path != NULL
                  ? strcmp(got, want) == 0 && path != NULL && strcmp(path, want_path) == 0
                  : strncmp(got, "400:", 4) == 0 && strstr(got, want) != NULL;
    if (!ok)
        print_error("%s row %zu, \"%s\": expected %s%s%s, got %s (path %s)\n", table_name, i,
                    raw, want_path ? want : "400 for ", want_path ? " as " : want,
                    want_path ? want_path : "", got, path ? path : "-");
    return ok ? 0 : 1;
}

static void test_table(void **state)
{
    fixture *f = *state;
    size_t failures = 0;
    for (size_t i = 0; i < sizeof(routed) / sizeof(routed[0]); i++)
        failures += row_fails(f, "routed", i, routed[i].raw, strlen(routed[i].raw),
                              routed[i].target, routed[i].path);
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        failures += row_fails(f, "refused", i, refused[i].raw,
                              raw_len(refused[i].raw, refused[i].len), refused[i].why, NULL);
    assert_int_equal(failures, 0);
}

/* The invariants the fuzzer checks too, over every row that passes. */
static void expect_normal_form(fixture *f, const char *raw, size_t len)
{
    char *path;
    const char *why;
    if (!mandate_gateway_path_normalise(f->pool, raw, len, &path, &why)) {
        assert_null(path);
        assert_non_null(why);
        return;
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

static void test_normal_form(void **state)
{
    fixture *f = *state;
    for (size_t i = 0; i < sizeof(routed) / sizeof(routed[0]); i++)
        expect_normal_form(f, routed[i].raw, strlen(routed[i].raw));
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        expect_normal_form(f, refused[i].raw, raw_len(refused[i].raw, refused[i].len));
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
    static const struct {
        const char *target, *path;
        bool case_blind, covered;
    } cases[] = {
        {"/mcp/public", "/mcp/public", false, true},
        {"/mcp/public", "/mcp/public/", false, true},
        {"/mcp/public", "/mcp/public/x", false, true},
        {"/mcp/public", "/mcp/publicity", false, false},
        {"/mcp/public", "/mcp/publi", false, false},
        {"/mcp/public", "/MCP/public", false, false},
        {"/mcp/public", "/MCP/Public/x", true, true},
        {"/mcp/public", "/MCP/Publicx", true, false},
        {"/tools/", "/tools/x", false, true},
        {"/tools/", "/tools/", false, true},
        {"/tools/", "/tools", false, false},
        {"/tools/", "/TOOLS/x", true, true},
        {"/", "/anything", false, true},
        {"/", "/", false, true},
        {"", "/anything", false, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (mandate_gateway_path_covers(cases[i].target, cases[i].path, cases[i].case_blind) !=
            cases[i].covered)
            fail_msg("'%s' %s '%s'%s", cases[i].target,
                     cases[i].covered ? "does not cover" : "covers", cases[i].path,
                     cases[i].case_blind ? " (case-blind)" : "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST_FX(test_table),
        TEST_FX(test_normal_form),
        TEST_FX(test_length_bound),
        cmocka_unit_test_setup_teardown(test_root_target, setup_root, teardown),
        cmocka_unit_test(test_covers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
