/* Small helpers shared by the core: allocation that cannot fail, fatal
 * errors, return-code names. */
#ifndef MANDATE_UTIL_PRIVATE_H
#define MANDATE_UTIL_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mandate/plugin.h>

/* Out of memory is not a condition the broker can serve through: these
 * abort with a message rather than return NULL. */
void *mandate_xmalloc(size_t size);
void *mandate_xcalloc(size_t n, size_t size);
void *mandate_xrealloc(void *p, size_t size);
char *mandate_xstrdup(const char *s);
char *mandate_xasprintf(const char *fmt, ...) MANDATE_PRINTF(1, 2);

_Noreturn void mandate_die(const char *fmt, ...) MANDATE_PRINTF(1, 2);

const char *mandate_rc_name(mandate_rc rc);

/* Whether the NULL-terminated list (may be NULL) holds word (len bytes). */
bool mandate_string_list_has(char *const *list, const char *word, size_t len);

/* Read a whole file of at most max_len bytes; NUL-terminated. */
mandate_rc mandate_read_file(const char *path, size_t max_len, char **data_r,
                             size_t *len_r, mandate_error *err);

/* path if absolute, else base/path (a fresh string). */
char *mandate_path_join(const char *base, const char *path);

#endif
