/* The pages' templates (core/html.c): every value escaped, sections and
 * lists, and a wrong template refused whole rather than printed in part. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "html-private.h"
#include "test-helpers.h"

static const char *render(mandate_pool *pool, const char *t, const char *view_json,
                          const char **why)
{
    json_t *view = json_loads(view_json, 0, NULL);
    assert_non_null(view);
    const char *out = mandate_html_render(pool, t, view, why);
    json_decref(view);
    return out;
}

static void test_escape(void **state)
{
    mandate_pool *pool = *state;
    assert_string_equal(mandate_html_escape(pool, "<script>alert('x')</script> & \"q\""),
                        "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;");
    assert_string_equal(mandate_html_escape(pool, "a\x01" "b\tc\nd\x7f"), "ab\tc\nd\x7f");
    assert_string_equal(mandate_html_escape(pool, NULL), "");
    assert_string_equal(mandate_html_escape(pool, "plain"), "plain");
}

static void test_values_are_always_escaped(void **state)
{
    mandate_pool *pool = *state;
    const char *why;
    assert_string_equal(render(pool, "<p>{{name}}</p>",
                               "{\"name\":\"<img src=x onerror=alert(1)>\"}", &why),
                        "<p>&lt;img src=x onerror=alert(1)&gt;</p>");
    /* an attribute value cannot be left either */
    assert_string_equal(render(pool, "<a title=\"{{t}}\">", "{\"t\":\"\\\" onclick=\\\"x\"}",
                               &why),
                        "<a title=\"&quot; onclick=&quot;x\">");
    /* there is no unescaped form: triple braces are a bad name */
    assert_null(render(pool, "{{{name}}}", "{\"name\":\"<b>\"}", &why));
    assert_non_null(why);
    assert_string_equal(
        render(pool, "{{n}} {{b}} {{z}}", "{\"n\":42,\"b\":true,\"z\":null}", &why),
        "42 true ");
}

static void test_sections_and_lists(void **state)
{
    mandate_pool *pool = *state;
    const char *why;
    const char *t = "{{#items}}[{{v}}{{#x}}!{{/x}}]{{/items}}{{^items}}none{{/items}}";
    assert_string_equal(render(pool, t, "{\"items\":[{\"v\":\"a\"},{\"v\":\"<b>\",\"x\":true}]}",
                               &why),
                        "[a][&lt;b&gt;!]");
    assert_string_equal(render(pool, t, "{\"items\":[]}", &why), "none");
    assert_string_equal(render(pool, t, "{}", &why), "none");
    /* names are looked up in the item, then outward */
    assert_string_equal(render(pool, "{{#l}}{{v}}-{{top}};{{/l}}",
                               "{\"top\":\"T\",\"l\":[{\"v\":1},{\"v\":2,\"top\":\"U\"}]}", &why),
                        "1-T;2-U;");
    /* a section on a value: shown when set */
    assert_string_equal(render(pool, "{{#s}}yes {{s}}{{/s}}{{^s}}no{{/s}}", "{\"s\":\"v\"}", &why),
                        "yes v");
    assert_string_equal(render(pool, "{{#s}}yes{{/s}}{{^s}}no{{/s}}", "{\"s\":\"\"}", &why),
                        "no");
    /* the same name nested */
    assert_string_equal(render(pool, "{{#a}}({{#a}}in{{/a}}){{/a}}", "{\"a\":true}", &why),
                        "(in)");
}

static void test_wrong_templates_render_nothing(void **state)
{
    mandate_pool *pool = *state;
    const char *why;
    static const char *const bad[] = {
        "{{missing}}", "{{#open}}never closed", "{{/close}}", "{{bad name}}", "{{}}",
        "unclosed {{tag", "{{#l}}{{/l}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *view = i == 6 ? "{\"l\":[1,2]}" : "{\"open\":true}";
        why = NULL;
        assert_null(render(pool, bad[i], view, &why));
        assert_non_null(why);
    }
    char deep[256] = "";
    for (int i = 0; i < MANDATE_HTML_MAX_DEPTH + 1; i++)
        strcat(deep, "{{#l}}");
    for (int i = 0; i < MANDATE_HTML_MAX_DEPTH + 1; i++)
        strcat(deep, "{{/l}}");
    assert_null(render(pool, deep, "{\"l\":[{}]}", &why));
    json_t *not_object = json_array();
    assert_null(mandate_html_render(pool, "x", not_object, &why));
    json_decref(not_object);
}

int main(void)
{
    /* each test renders into a pool of its own */
#define T(f) cmocka_unit_test_setup_teardown(f, test_pool_setup, test_pool_teardown)
    const struct CMUnitTest tests[] = {
        T(test_escape),
        T(test_values_are_always_escaped),
        T(test_sections_and_lists),
        T(test_wrong_templates_render_nothing),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
