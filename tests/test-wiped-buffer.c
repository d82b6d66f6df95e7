/* lib/wiped-buffer.c: appends keep every byte and a NUL after them, also
 * across the growth from the first 4096 bytes. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/crypto.h>

#include "wiped-buffer.h"

static void test_appends_and_terminates(void **state)
{
    (void)state;
    char *data = NULL;
    size_t len = 0, cap = 0;
    assert_true(mandate_wiped_append(&data, &len, &cap, "", 0));
    assert_non_null(data);
    assert_string_equal(data, "");
    assert_true(mandate_wiped_append(&data, &len, &cap, "abc", 3));
    assert_true(mandate_wiped_append(&data, &len, &cap, "def", 3));
    assert_int_equal(len, 6);
    assert_string_equal(data, "abcdef");
    OPENSSL_clear_free(data, cap);
}

static void test_grows_past_the_first_block(void **state)
{
    (void)state;
    static char block[5000];
    memset(block, 'x', sizeof(block));
    char *data = NULL;
    size_t len = 0, cap = 0;
    assert_true(mandate_wiped_append(&data, &len, &cap, "<", 1));
    assert_true(mandate_wiped_append(&data, &len, &cap, block, sizeof(block)));
    assert_true(mandate_wiped_append(&data, &len, &cap, ">", 1));
    assert_int_equal(len, sizeof(block) + 2);
    assert_true(cap > len);
    assert_int_equal(data[0], '<');
    assert_int_equal(data[sizeof(block)], 'x');
    assert_int_equal(data[len - 1], '>');
    assert_int_equal(data[len], '\0');
    assert_int_equal(strlen(data), len);
    OPENSSL_clear_free(data, cap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_appends_and_terminates),
        cmocka_unit_test(test_grows_past_the_first_block),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
