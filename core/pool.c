#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool-private.h"
#include "text-encoding.h"
#include "util-private.h"

/* Blocks grow geometrically; an allocation larger than a block gets a block
 * of its own. */
#define POOL_FIRST_BLOCK 4096
#define POOL_ALIGN 16

struct pool_block {
    struct pool_block *next;
    size_t size, used;
    _Alignas(POOL_ALIGN) unsigned char data[];
};

struct mandate_pool {
    struct pool_block *head;
    size_t next_size;
};

static struct pool_block *block_new(size_t size)
{
    struct pool_block *b = mandate_xmalloc(sizeof(*b) + size);
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

mandate_pool *mandate_pool_new(void)
{
    mandate_pool *pool = mandate_xcalloc(1, sizeof(*pool));
    pool->head = block_new(POOL_FIRST_BLOCK);
    pool->next_size = POOL_FIRST_BLOCK * 2;
    return pool;
}

void mandate_pool_clear(mandate_pool *pool)
{
    struct pool_block *b = pool->head;
    /* keep the last (first allocated, smallest) block */
    while (b->next != NULL) {
        struct pool_block *next = b->next;
        free(b);
        b = next;
    }
    b->used = 0;
    pool->head = b;
    pool->next_size = b->size * 2;
}

void mandate_pool_free(mandate_pool **poolp)
{
    mandate_pool *pool = *poolp;
    if (pool == NULL)
        return;
    struct pool_block *b = pool->head;
    while (b != NULL) {
        struct pool_block *next = b->next;
        free(b);
        b = next;
    }
    free(pool);
    *poolp = NULL;
}

void *mandate_pool_alloc(mandate_pool *pool, size_t size)
{
    size_t need = (size + POOL_ALIGN - 1) & ~(size_t)(POOL_ALIGN - 1);
    if (need < size)
        mandate_die("pool allocation of %zu bytes overflows", size);
    struct pool_block *b = pool->head;
    if (b->size - b->used < need) {
        size_t bsize = pool->next_size;
        if (bsize < need)
            bsize = need;
        else if (pool->next_size < (1u << 20))
            pool->next_size *= 2;
        b = block_new(bsize);
        b->next = pool->head;
        pool->head = b;
    }
    void *p = b->data + b->used;
    b->used += need;
    memset(p, 0, size);
    return p;
}

void *mandate_pool_memdup(mandate_pool *pool, const void *p, size_t len)
{
    /* one extra NUL so that text copied this way is a C string as well */
    char *copy = mandate_pool_alloc(pool, len + 1);
    if (len > 0)
        memcpy(copy, p, len);
    return copy;
}

char *mandate_pool_strndup(mandate_pool *pool, const char *s, size_t len)
{
    return mandate_pool_memdup(pool, s, len);
}

char *mandate_pool_hex(mandate_pool *pool, const unsigned char *bytes, size_t n)
{
    char *out = mandate_pool_alloc(pool, 2 * n + 1);
    mandate_hex_encode(bytes, n, out);
    return out;
}

char *mandate_pool_strdup(mandate_pool *pool, const char *s)
{
    if (s == NULL)
        return NULL;
    return mandate_pool_memdup(pool, s, strlen(s));
}

char *mandate_pool_printf(mandate_pool *pool, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = mandate_vprintf_len(fmt, ap);
    char *out = mandate_pool_alloc(pool, n + 1);
    vsnprintf(out, n + 1, fmt, ap);
    va_end(ap);
    return out;
}
