#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pool-private.h"

static void test_alloc_is_zeroed_and_aligned(void **state)
{
    (void)state;
    mandate_pool *pool = mandate_pool_new();
    for (size_t size = 1; size < 10000; size += 97) {
        unsigned char *p = mandate_pool_alloc(pool, size);
        assert_int_equal((uintptr_t)p % 16, 0);
        for (size_t i = 0; i < size; i++)
            assert_int_equal(p[i], 0);
        memset(p, 0xab, size);
    }
    mandate_pool_free(&pool);
    assert_null(pool);
}

static void test_large_and_many(void **state)
{
    (void)state;
    mandate_pool *pool = mandate_pool_new();
    char *big = mandate_pool_alloc(pool, 1 << 22);
    big[(1 << 22) - 1] = 'x';
    for (int i = 0; i < 100000; i++)
        assert_non_null(mandate_pool_alloc(pool, 24));
    mandate_pool_clear(pool);
    char *s = mandate_pool_printf(pool, "%s-%d", "advisor", 1234);
    assert_string_equal(s, "advisor-1234");
    mandate_pool_free(&pool);
}

static void test_strings(void **state)
{
    (void)state;
    mandate_pool *pool = mandate_pool_new();
    assert_null(mandate_pool_strdup(pool, NULL));
    assert_string_equal(mandate_pool_strdup(pool, "scope"), "scope");
    assert_string_equal(mandate_pool_strndup(pool, "gateway:invoke", 7), "gateway");
    const char bytes[3] = {'a', 0, 'b'};
    char *copy = mandate_pool_memdup(pool, bytes, 3);
    assert_memory_equal(copy, bytes, 3);
    assert_int_equal(copy[3], 0);
    mandate_pool_free(&pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_is_zeroed_and_aligned),
        cmocka_unit_test(test_large_and_many),
        cmocka_unit_test(test_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
