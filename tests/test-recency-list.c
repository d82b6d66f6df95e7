/* lib/recency-list.c: the order newest to oldest through pushes, touches
 * and unlinks at either end and in the middle, and the entry of a link. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "recency-list.h"

typedef struct entry {
    char name;
    mandate_recency_link recency;
} entry;

/* The names of the list's entries, newest first, after checking that the
 * walk oldest first meets them the other way round. */
static const char *order(const mandate_recency_list *list, char *buf, size_t cap)
{
    size_t n = 0;
    for (const mandate_recency_link *l = list->newest; l != NULL; l = l->older) {
        assert_true(n + 1 < cap);
        buf[n++] = MANDATE_RECENCY_ENTRY(l, entry, recency)->name;
    }
    buf[n] = '\0';
    for (const mandate_recency_link *l = list->oldest; l != NULL; l = l->newer) {
        assert_true(n > 0);
        assert_int_equal(MANDATE_RECENCY_ENTRY(l, entry, recency)->name, buf[--n]);
    }
    assert_int_equal(n, 0);
    return buf;
}

static void test_push_touch_unlink(void **state)
{
    (void)state;
    entry a = {'a', {0}}, b = {'b', {0}}, c = {'c', {0}};
    mandate_recency_list list = {0};
    char buf[8];
    assert_string_equal(order(&list, buf, sizeof(buf)), "");
    mandate_recency_push(&list, &a.recency);
    assert_string_equal(order(&list, buf, sizeof(buf)), "a");
    mandate_recency_push(&list, &b.recency);
    mandate_recency_push(&list, &c.recency);
    assert_string_equal(order(&list, buf, sizeof(buf)), "cba");
    assert_ptr_equal(MANDATE_RECENCY_ENTRY(list.oldest, entry, recency), &a);

    mandate_recency_touch(&list, &a.recency); /* the oldest */
    assert_string_equal(order(&list, buf, sizeof(buf)), "acb");
    mandate_recency_touch(&list, &c.recency); /* the middle */
    assert_string_equal(order(&list, buf, sizeof(buf)), "cab");
    mandate_recency_touch(&list, &c.recency); /* the newest already */
    assert_string_equal(order(&list, buf, sizeof(buf)), "cab");

    mandate_recency_unlink(&list, &a.recency); /* the middle */
    assert_string_equal(order(&list, buf, sizeof(buf)), "cb");
    assert_null(a.recency.newer);
    assert_null(a.recency.older);
    mandate_recency_unlink(&list, &b.recency); /* the oldest */
    assert_string_equal(order(&list, buf, sizeof(buf)), "c");
    mandate_recency_unlink(&list, &c.recency); /* the last */
    assert_null(list.newest);
    assert_null(list.oldest);
    mandate_recency_push(&list, &b.recency); /* an unlinked link goes back in */
    assert_string_equal(order(&list, buf, sizeof(buf)), "b");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_push_touch_unlink),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
