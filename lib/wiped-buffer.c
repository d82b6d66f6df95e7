/* See wiped-buffer.h. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "wiped-buffer.h"

bool mandate_wiped_append(char **data, size_t *len, size_t *cap, const void *more, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t grown = *cap ? *cap : 4096;
        while (grown < *len + n + 1)
            grown *= 2;
        char *copy = malloc(grown);
        if (copy == NULL)
            return false;
        if (*data != NULL) {
            memcpy(copy, *data, *len);
            OPENSSL_clear_free(*data, *cap);
        }
        *data = copy;
        *cap = grown;
    }
    memcpy(*data + *len, more, n);
    *len += n;
    (*data)[*len] = '\0';
    return true;
}
