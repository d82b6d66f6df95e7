#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util-private.h"

void mandate_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("mandate: fatal: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

void *mandate_xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (p == NULL)
        mandate_die("out of memory allocating %zu bytes", size);
    return p;
}

void *mandate_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        mandate_die("out of memory allocating %zu x %zu bytes", n, size);
    return p;
}

void *mandate_xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);
    if (q == NULL)
        mandate_die("out of memory reallocating %zu bytes", size);
    return q;
}

char *mandate_xstrdup(const char *s)
{
    if (s == NULL)
        return NULL;
    char *copy = strdup(s);
    if (copy == NULL)
        mandate_die("out of memory copying a string");
    return copy;
}

char *mandate_xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *out = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&out, fmt, ap);
    va_end(ap);
    if (n < 0)
        mandate_die("out of memory formatting \"%s\"", fmt);
    return out;
}

size_t mandate_vprintf_len(const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0)
        mandate_die("vsnprintf failed for \"%s\"", fmt);
    return (size_t)n;
}

/* Room for more bytes and the NUL after them. */
static void strbuf_reserve(mandate_strbuf *b, size_t more)
{
    if (b->len + more < b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (b->len + more >= cap)
        cap *= 2;
    b->data = mandate_xrealloc(b->data, cap);
    b->cap = cap;
}

void mandate_strbuf_addn(mandate_strbuf *b, const char *s, size_t n)
{
    strbuf_reserve(b, n);
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void mandate_strbuf_add(mandate_strbuf *b, const char *s)
{
    mandate_strbuf_addn(b, s, strlen(s));
}

void mandate_strbuf_addc(mandate_strbuf *b, char c)
{
    mandate_strbuf_addn(b, &c, 1);
}

void mandate_strbuf_printf(mandate_strbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = mandate_vprintf_len(fmt, ap);
    strbuf_reserve(b, n);
    vsnprintf(b->data + b->len, n + 1, fmt, ap);
    va_end(ap);
    b->len += n;
}

bool mandate_string_list_has(char *const *list, const char *word, size_t len)
{
    for (size_t i = 0; list != NULL && list[i] != NULL; i++)
        if (strlen(list[i]) == len && memcmp(list[i], word, len) == 0)
            return true;
    return false;
}

const char *mandate_rc_name(mandate_rc rc)
{
    switch (rc) {
    case MANDATE_OK: return "ok";
    case MANDATE_NEXT: return "next";
    case MANDATE_DENIED: return "denied";
    case MANDATE_INVALID: return "invalid";
    case MANDATE_EXPIRED: return "expired";
    case MANDATE_NOT_FOUND: return "not found";
    case MANDATE_EXISTS: return "exists";
    case MANDATE_TEMPFAIL: return "temporary failure";
    case MANDATE_ERROR: return "error";
    }
    return "unknown";
}

mandate_rc mandate_read_file(const char *path, size_t max_len, char **data_r,
                             size_t *len_r, mandate_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return mandate_error_set(err, errno == ENOENT ? MANDATE_NOT_FOUND : MANDATE_ERROR,
                                 "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return mandate_error_set(err, MANDATE_INVALID, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max_len) {
        close(fd);
        return mandate_error_set(err, MANDATE_INVALID,
                                 "%s: %lld bytes, more than the %zu allowed", path,
                                 (long long)st.st_size, max_len);
    }
    char *data = mandate_xmalloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, data + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    data[got] = '\0';
    *data_r = data;
    if (len_r != NULL)
        *len_r = got;
    return MANDATE_OK;
}

char *mandate_path_join(const char *base, const char *path)
{
    if (path[0] == '/' || base == NULL || base[0] == '\0')
        return mandate_xstrdup(path);
    size_t blen = strlen(base);
    return mandate_xasprintf("%s%s%s", base, base[blen - 1] == '/' ? "" : "/", path);
}

void mandate_cond_init_monotonic(pthread_cond_t *cond)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(cond, &attr);
    pthread_condattr_destroy(&attr);
}
