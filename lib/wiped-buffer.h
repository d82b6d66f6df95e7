/* A growing buffer for bytes that must not be left behind in freed memory
 * (an HTTP answer holding a token or a client secret): it grows by copying
 * and wiping the old copy, never by realloc, which may leave the old bytes
 * in the heap.
 *
 * Part of lib/, the floor under the core, the plugins and libmandate. */
#ifndef MANDATE_WIPED_BUFFER_H
#define MANDATE_WIPED_BUFFER_H

#include <stdbool.h>
#include <stddef.h>

/* Appends n bytes of more to *data (*len used of *cap; all zero: empty) and
 * a NUL after them. false when memory ran out: then nothing changed. The
 * holder frees *data with OPENSSL_clear_free(*data, *cap). */
bool mandate_wiped_append(char **data, size_t *len, size_t *cap, const void *more, size_t n);

#endif
