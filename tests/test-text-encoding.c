/* lib/text-encoding.c: hex digits both ways, and percent-encoding with and
 * without the form's '+' for a space, every reserved octet in a triplet. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "text-encoding.h"

static void test_hex(void **state)
{
    (void)state;
    assert_int_equal(mandate_hex_value('0'), 0);
    assert_int_equal(mandate_hex_value('9'), 9);
    assert_int_equal(mandate_hex_value('a'), 10);
    assert_int_equal(mandate_hex_value('F'), 15);
    assert_int_equal(mandate_hex_value('g'), -1);
    assert_int_equal(mandate_hex_value('\0'), -1);
    static const unsigned char bytes[] = {0x00, 0x7f, 0xa5, 0xff};
    char out[2 * sizeof(bytes) + 1];
    memset(out, 'x', sizeof(out));
    mandate_hex_encode(bytes, sizeof(bytes), out);
    assert_string_equal(out, "007fa5ff");
    mandate_hex_encode(bytes, 0, out);
    assert_string_equal(out, "");
}

static void test_percent_decode_octet(void **state)
{
    (void)state;
    assert_int_equal(mandate_percent_decode_octet("%2F", 3), 0x2f);
    assert_int_equal(mandate_percent_decode_octet("%2fx", 4), 0x2f);
    assert_int_equal(mandate_percent_decode_octet("%ff", 3), 0xff);
    assert_int_equal(mandate_percent_decode_octet("%2F", 2), -1); /* cut short */
    assert_int_equal(mandate_percent_decode_octet("%2", 2), -1);
    assert_int_equal(mandate_percent_decode_octet("%G0", 3), -1);
    assert_int_equal(mandate_percent_decode_octet("%0G", 3), -1);
}

static void test_percent_encode(void **state)
{
    (void)state;
    static const char text[] = "aZ09-._~ /?&=+%\xc3\xa9";
    char out[3 * sizeof(text) + 1];
    assert_ptr_equal(mandate_percent_encode(text, false, out), out);
    assert_string_equal(out, "aZ09-._~%20%2F%3F%26%3D%2B%25%C3%A9");
    mandate_percent_encode(text, true, out);
    assert_string_equal(out, "aZ09-._~+%2F%3F%26%3D%2B%25%C3%A9");
    mandate_percent_encode("", true, out);
    assert_string_equal(out, "");
    char triplet[4] = {0};
    assert_ptr_equal(mandate_percent_octet(triplet, 0x0a), triplet + 3);
    assert_string_equal(triplet, "%0A");
    assert_true(mandate_url_unreserved('~'));
    assert_false(mandate_url_unreserved('+'));
    assert_false(mandate_url_unreserved(0xc3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_percent_decode_octet),
        cmocka_unit_test(test_percent_encode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
