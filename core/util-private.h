/* Small helpers shared by the core: allocation that cannot fail, fatal
 * errors, return-code names. */
#ifndef MANDATE_UTIL_PRIVATE_H
#define MANDATE_UTIL_PRIVATE_H

#include <pthread.h>
#include <stdarg.h>
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

/* The length of what fmt makes of ap, for a buffer of that size + 1; ap is
 * left as it was (a copy is read), for the vsnprintf that fills it. A
 * format that cannot be made is fatal, as running out of memory. */
size_t mandate_vprintf_len(const char *fmt, va_list ap) MANDATE_PRINTF(1, 0);

_Noreturn void mandate_die(const char *fmt, ...) MANDATE_PRINTF(1, 2);

const char *mandate_rc_name(mandate_rc rc);

/* A string growing in malloc'd memory: zero-initialised, it is empty (data
 * NULL); once anything is added, data is NUL-terminated. The holder frees
 * data. */
typedef struct mandate_strbuf {
    char *data;
    size_t len, cap;
} mandate_strbuf;
void mandate_strbuf_addn(mandate_strbuf *b, const char *s, size_t n);
void mandate_strbuf_add(mandate_strbuf *b, const char *s);
void mandate_strbuf_addc(mandate_strbuf *b, char c);
void mandate_strbuf_printf(mandate_strbuf *b, const char *fmt, ...) MANDATE_PRINTF(2, 3);

/* Whether the NULL-terminated list (may be NULL) holds word (len bytes). */
bool mandate_string_list_has(char *const *list, const char *word, size_t len);

/* Read a whole file of at most max_len bytes; NUL-terminated. */
mandate_rc mandate_read_file(const char *path, size_t max_len, char **data_r,
                             size_t *len_r, mandate_error *err);

/* path if absolute, else base/path (a fresh string). */
char *mandate_path_join(const char *base, const char *path);

/* A condition whose timed waits run on CLOCK_MONOTONIC: a clock set back
 * or forward neither holds a wait back nor cuts it short. */
void mandate_cond_init_monotonic(pthread_cond_t *cond);

#endif
