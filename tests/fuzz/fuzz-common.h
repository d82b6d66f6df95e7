/* Small helpers shared by the libFuzzer harnesses in tests/fuzz (each is
 * one program: these are static). */
#ifndef MANDATE_FUZZ_COMMON_H
#define MANDATE_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

/* The separator between the parts of one input, for harnesses that feed
 * several documents (a file of a trail, a metadata and a JWKS, ...). A
 * form feed on its own line: rare in the documents, easy in a seed. */
#define FUZZ_SEP "\n\f\n"
#define FUZZ_SEP_LEN 3

/* libFuzzer's entry points, which every harness defines (TestOneInput) or
 * may define (Initialize). */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The Initialize of a harness whose only set-up is its log: errors only, on
 * stderr (the code under test logs what it refuses; the rest is noise). */
#define FUZZ_INITIALIZE_LOG_ERRORS(harness)                                                    \
    int LLVMFuzzerInitialize(int *argc, char ***argv)                                          \
    {                                                                                          \
        (void)argc, (void)argv;                                                                \
        mandate_log_setup("stderr", MANDATE_LOG_ERROR, harness);                               \
        return 0;                                                                              \
    }

/* The request's headers for a harness of pages that read cookies: it links
 * with -Wl,--wrap=mandate_http_request_header and defines the wrapper with
 * this. The request's Cookie header is fuzz_cookie_header, which the harness
 * sets for each input (NULL: none); it has no other header. */
#define FUZZ_WRAP_COOKIE_HEADER                                                                \
    static const char *fuzz_cookie_header;                                                     \
    __typeof__(mandate_http_request_header) __wrap_mandate_http_request_header;                \
    const char *__wrap_mandate_http_request_header(const mandate_http_request *req,            \
                                                   const char *name)                           \
    {                                                                                          \
        (void)req;                                                                             \
        return strcasecmp(name, "Cookie") == 0 ? fuzz_cookie_header : NULL;                    \
    }

/* libconfig before 1.7.3 leaks the text of a string token that bison
 * discards while recovering from a syntax error (a file holding only "",
 * say): hyperrealm/libconfig#142, fixed upstream by #155. Debian ships 1.5.
 * Not ours to fix, and a few bytes per refused file (start or reload by the
 * operator); a harness that reads config files suppresses it with this, so
 * that the fuzzer looks for our leaks. */
#define FUZZ_SUPPRESS_LIBCONFIG_LEAK                                                           \
    const char *__lsan_default_suppressions(void);                                             \
    const char *__lsan_default_suppressions(void)                                              \
    {                                                                                          \
        return "leak:libconfig.so\n";                                                          \
    }

/* A fresh folder $TMPDIR/mandate-<harness>-XXXXXX (or under /tmp) written
 * into dir; aborts when it cannot be made. */
static inline void fuzz_mkdtemp(char *dir, size_t size, const char *harness)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, size, "%s/mandate-%s-XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp", harness);
    if (mkdtemp(dir) == NULL)
        abort();
}

typedef struct fuzz_part {
    const char *data;
    size_t len;
} fuzz_part;

/* Splits data at FUZZ_SEP into at most max parts (the last takes the rest);
 * returns how many. */
static inline size_t fuzz_split(const uint8_t *data, size_t size, fuzz_part *parts, size_t max)
{
    size_t n = 0;
    const char *p = (const char *)data, *end = p + size;
    while (n + 1 < max) {
        const char *sep = NULL;
        for (const char *q = p; q + FUZZ_SEP_LEN <= end; q++)
            if (memcmp(q, FUZZ_SEP, FUZZ_SEP_LEN) == 0) {
                sep = q;
                break;
            }
        if (sep == NULL)
            break;
        parts[n++] = (fuzz_part){p, (size_t)(sep - p)};
        p = sep + FUZZ_SEP_LEN;
    }
    parts[n++] = (fuzz_part){p, (size_t)(end - p)};
    return n;
}

/* The first byte of part i, the harness's control bits (which failures to
 * inject, which options to set); 0 when there is no such part or it is
 * empty. */
static inline unsigned fuzz_control_byte(const fuzz_part *parts, size_t n, size_t i)
{
    return i < n && parts[i].len > 0 ? (unsigned char)parts[i].data[0] : 0;
}

/* A fuzzed HTTP answer: a part that begins "HTTP NNN\n" gives that status
 * (non-digits count as 0) and is advanced past the line; any other is 200. */
static inline long fuzz_http_status(fuzz_part *p)
{
    if (p->len < 9 || memcmp(p->data, "HTTP ", 5) != 0 || p->data[8] != '\n')
        return 200;
    long status = 0;
    for (int i = 5; i < 8; i++)
        status = status * 10 + (p->data[i] >= '0' && p->data[i] <= '9' ? p->data[i] - '0' : 0);
    p->data += 9;
    p->len -= 9;
    return status;
}

/* A NUL-terminated copy (malloc'd). */
static inline char *fuzz_strndup(const void *data, size_t len)
{
    char *s = malloc(len + 1);
    if (s == NULL)
        abort();
    memcpy(s, data, len);
    s[len] = '\0';
    return s;
}

/* Writes len bytes to path (truncating); aborts on failure: the harness is
 * broken, not the code under test. */
static inline void fuzz_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL || (len > 0 && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

static inline EVP_PKEY *fuzz_key_from_pem(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *key = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (key == NULL)
        abort();
    return key;
}

/* MANDATE_FUZZ_DEBUG=1 in the environment: the harnesses say on stderr what
 * each input came to (for turning a finding into a regression test). */
static inline bool fuzz_debug(void)
{
    static int on = -1;
    if (on < 0)
        on = getenv("MANDATE_FUZZ_DEBUG") != NULL;
    return on == 1;
}

/* Fixed instant the harnesses' clocks read: 2030-03-17T17:46:40Z. The seeds
 * are made around it (tests/fuzz/make-seeds.c). */
#define FUZZ_NOW ((int64_t)1900000000)

#endif
