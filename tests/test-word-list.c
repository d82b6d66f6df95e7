/* lib/word-list.c: space-separated lists (runs of spaces, ends, NULL, a
 * word that is another's prefix) and the syntax of scope tokens, client ids
 * and audience URIs at their bounds. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "word-list.h"

/* The words of list joined with '|', to compare in one assertion. */
static const char *words_of(const char *list, char *buf, size_t cap)
{
    const char *cur = list, *w;
    size_t n, used = 0;
    buf[0] = '\0';
    while (mandate_word_list_next(&cur, &w, &n)) {
        assert_true(n > 0);
        assert_true(used + n + 2 <= cap);
        if (used > 0)
            buf[used++] = '|';
        memcpy(buf + used, w, n);
        used += n;
        buf[used] = '\0';
    }
    /* the end stays the end */
    assert_false(mandate_word_list_next(&cur, &w, &n));
    return buf;
}

static void test_next(void **state)
{
    (void)state;
    char buf[128];
    assert_string_equal(words_of("a b c", buf, sizeof(buf)), "a|b|c");
    assert_string_equal(words_of("  a   b  ", buf, sizeof(buf)), "a|b");
    assert_string_equal(words_of("one", buf, sizeof(buf)), "one");
    assert_string_equal(words_of("", buf, sizeof(buf)), "");
    assert_string_equal(words_of("    ", buf, sizeof(buf)), "");
    assert_string_equal(words_of(NULL, buf, sizeof(buf)), "");
    /* only a space separates: commas, tabs and colons are inside words */
    assert_string_equal(words_of("a,b c\td x:y", buf, sizeof(buf)), "a,b|c\td|x:y");

    /* nothing is written when no word is left */
    const char *cur = "  ", *w = "untouched";
    size_t n = 7;
    assert_false(mandate_word_list_next(&cur, &w, &n));
    assert_string_equal(w, "untouched");
    assert_int_equal(n, 7);
}

static void test_has(void **state)
{
    (void)state;
    const char *list = "mcp:call  mcp:read gateway:invoke";
    assert_true(mandate_word_list_has(list, "mcp:call", 8));
    assert_true(mandate_word_list_has(list, "mcp:read", 8));
    assert_true(mandate_word_list_has(list, "gateway:invoke", 14));
    /* a prefix, a longer word, a word across the space: not held */
    assert_false(mandate_word_list_has(list, "mcp", 3));
    assert_false(mandate_word_list_has(list, "mcp:calls", 9));
    assert_false(mandate_word_list_has(list, "call  mcp", 9));
    /* len counts, not the NUL: "mcp:call" out of a longer buffer */
    assert_true(mandate_word_list_has(list, "mcp:call mcp:write", 8));
    /* an empty word is never held, an empty or NULL list holds nothing */
    assert_false(mandate_word_list_has(list, "", 0));
    assert_false(mandate_word_list_has("a  b", "", 0));
    assert_false(mandate_word_list_has("", "a", 1));
    assert_false(mandate_word_list_has(NULL, "a", 1));
}

static void test_count(void **state)
{
    (void)state;
    assert_int_equal(mandate_word_list_count(NULL), 0);
    assert_int_equal(mandate_word_list_count(""), 0);
    assert_int_equal(mandate_word_list_count("   "), 0);
    assert_int_equal(mandate_word_list_count("a"), 1);
    assert_int_equal(mandate_word_list_count(" a  b c "), 3);
    /* a word given twice counts twice: counting is not deduplicating */
    assert_int_equal(mandate_word_list_count("a a"), 2);
}

static void test_missing(void **state)
{
    (void)state;
    size_t n = 0;
    assert_null(mandate_word_list_missing("a b", "b c a", &n));
    assert_null(mandate_word_list_missing(NULL, "a", &n));
    assert_null(mandate_word_list_missing("  ", NULL, &n));
    /* the first lacking, in want's order */
    const char *want = "a  bb c dd";
    const char *m = mandate_word_list_missing(want, "a c", &n);
    assert_ptr_equal(m, want + 3);
    assert_int_equal(n, 2);
    m = mandate_word_list_missing("x", NULL, &n);
    assert_non_null(m);
    assert_int_equal(n, 1);
    /* a prefix of a word held is not the word */
    m = mandate_word_list_missing("mcp", "mcp:call", &n);
    assert_non_null(m);
    assert_int_equal(n, 3);
}

static void test_add(void **state)
{
    (void)state;
    /* built from the words of another list: strlen + 1 is room enough */
    const char *from = " b  a b c a ";
    char out[13];
    memset(out, 0x5a, sizeof(out));
    out[0] = '\0';
    size_t used = 0, n;
    const char *w;
    for (const char *cur = from; mandate_word_list_next(&cur, &w, &n);)
        mandate_word_list_add(out, &used, w, n);
    assert_string_equal(out, "b a c");
    assert_int_equal(used, 5);
    /* a word given twice, or an empty one, adds nothing */
    mandate_word_list_add(out, &used, "a", 1);
    mandate_word_list_add(out, &used, "", 0);
    assert_string_equal(out, "b a c");
    mandate_word_list_add(out, &used, "abc", 3);
    assert_string_equal(out, "b a c abc");
    assert_int_equal(used, 9);
}

static void test_scope_token(void **state)
{
    (void)state;
    assert_true(mandate_scope_token_valid("mcp:call", 8));
    assert_true(mandate_scope_token_valid("!", 1));
    assert_true(mandate_scope_token_valid("~#[]{}", 6));
    assert_false(mandate_scope_token_valid("", 0));
    /* RFC 6749 §3.3 leaves out '"' (0x22), '\' (0x5c), space and controls */
    assert_false(mandate_scope_token_valid("a\"b", 3));
    assert_false(mandate_scope_token_valid("a\\b", 3));
    assert_false(mandate_scope_token_valid("a b", 3));
    assert_false(mandate_scope_token_valid("a\tb", 3));
    assert_false(mandate_scope_token_valid("a\x7f", 2));
    assert_false(mandate_scope_token_valid("caf\xc3\xa9", 5));
    /* only len bytes are read */
    assert_true(mandate_scope_token_valid("ab cd", 2));
}

static void test_client_id(void **state)
{
    (void)state;
    char id[MANDATE_CLIENT_ID_MAX_LEN + 2];
    memset(id, 'a', sizeof(id));
    id[MANDATE_CLIENT_ID_MAX_LEN] = '\0';
    assert_true(mandate_client_id_valid(id));
    id[MANDATE_CLIENT_ID_MAX_LEN] = 'a';
    id[MANDATE_CLIENT_ID_MAX_LEN + 1] = '\0';
    assert_false(mandate_client_id_valid(id));
    assert_true(mandate_client_id_valid("a"));
    assert_true(mandate_client_id_valid("Agent-7.prod_eu~2"));
    assert_false(mandate_client_id_valid(""));
    /* each with one character outside RFC 3986's unreserved, the second */
    const char *bad[] = {"a b", "a/b", "a:b", "a@b", "a%20", "a\xc3\xa9", "a\nb", "a+b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(mandate_client_id_valid(bad[i]));
        assert_false(mandate_client_id_char(bad[i][1]));
    }
    assert_true(mandate_client_id_char('~'));
    assert_false(mandate_client_id_char('\0'));
}

static void test_audience_uri(void **state)
{
    (void)state;
    const char *good[] = {"https://mcp.example/calendar", "urn:mandate:gateway", "a:b",
                          "z+.-9:x", "https://caf\xc3\xa9.example"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (!mandate_audience_uri_valid(good[i], strlen(good[i])))
            fail_msg("%s should be an audience", good[i]);
    const char *bad[] = {"",      "https",    ":x",    "a:",      "1a:b",
                         "a_b:c", "a:b#frag", "a:b c", "a:b\x7f", "https://x\r\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (mandate_audience_uri_valid(bad[i], strlen(bad[i])))
            fail_msg("%s should not be an audience", bad[i]);
    /* only len bytes are read: a word out of a list */
    assert_true(mandate_audience_uri_valid("urn:a urn:#b", 5));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_next),      cmocka_unit_test(test_has),
        cmocka_unit_test(test_count),     cmocka_unit_test(test_missing),
        cmocka_unit_test(test_add),       cmocka_unit_test(test_scope_token),
        cmocka_unit_test(test_client_id), cmocka_unit_test(test_audience_uri),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
