/* Arena allocator for request- and command-scoped memory. */
#ifndef MANDATE_POOL_PRIVATE_H
#define MANDATE_POOL_PRIVATE_H

#include <mandate/plugin.h>

mandate_pool *mandate_pool_new(void);
/* Frees every allocation of the pool and the pool; sets *pool to NULL. */
void mandate_pool_free(mandate_pool **pool);
/* Frees the allocations but keeps the first block, for reuse. */
void mandate_pool_clear(mandate_pool *pool);

/* Zeroed; aborts on out-of-memory like the rest of the core. */
void *mandate_pool_alloc(mandate_pool *pool, size_t size);
char *mandate_pool_strdup(mandate_pool *pool, const char *s);
char *mandate_pool_strndup(mandate_pool *pool, const char *s, size_t len);
void *mandate_pool_memdup(mandate_pool *pool, const void *p, size_t len);
char *mandate_pool_printf(mandate_pool *pool, const char *fmt, ...) MANDATE_PRINTF(2, 3);
/* n bytes as lowercase hex digits. */
char *mandate_pool_hex(mandate_pool *pool, const unsigned char *bytes, size_t n);

#endif
