#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include "kek-private.h"
#include "util-private.h"

#define KEK_HEX_LEN (2 * MANDATE_KEK_LEN)

mandate_rc mandate_kek_create(const char *path, mandate_error *err)
{
    unsigned char kek[MANDATE_KEK_LEN];
    char text[KEK_HEX_LEN + 2];
    if (RAND_bytes(kek, sizeof(kek)) != 1)
        return mandate_error_set(err, MANDATE_ERROR, "no random bytes for the key-encryption key");
    for (size_t i = 0; i < sizeof(kek); i++)
        snprintf(text + 2 * i, 3, "%02x", kek[i]);
    text[KEK_HEX_LEN] = '\n';
    text[KEK_HEX_LEN + 1] = '\0';
    OPENSSL_cleanse(kek, sizeof(kek));

    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        OPENSSL_cleanse(text, sizeof(text));
        return mandate_error_set(err, errno == EEXIST ? MANDATE_EXISTS : MANDATE_ERROR,
                                 "key-encryption key %s: %s", path, strerror(errno));
    }
    ssize_t n = write(fd, text, KEK_HEX_LEN + 1);
    OPENSSL_cleanse(text, sizeof(text));
    if (n != KEK_HEX_LEN + 1 || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(path);
        return mandate_error_set(err, MANDATE_ERROR, "key-encryption key %s: write: %s", path,
                                 strerror(e));
    }
    close(fd);
    return MANDATE_OK;
}

static bool parse_hex(const char *text, size_t len, unsigned char out[MANDATE_KEK_LEN])
{
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
        len--;
    if (len != KEK_HEX_LEN)
        return false;
    for (size_t i = 0; i < MANDATE_KEK_LEN; i++) {
        int v = OPENSSL_hexchar2int((unsigned char)text[2 * i]);
        int w = OPENSSL_hexchar2int((unsigned char)text[2 * i + 1]);
        if (v < 0 || w < 0)
            return false;
        out[i] = (unsigned char)(v << 4 | w);
    }
    return true;
}

mandate_rc mandate_kek_load(const char *path, unsigned char kek[MANDATE_KEK_LEN],
                            mandate_error *err)
{
    const char *env = getenv("MANDATE_KEK");
    if (env != NULL && env[0] != '\0') {
        if (!parse_hex(env, strlen(env), kek))
            return mandate_error_set(err, MANDATE_INVALID,
                                     "MANDATE_KEK must be %d hex digits", KEK_HEX_LEN);
        return MANDATE_OK;
    }
    /* Opened once, and judged by what was opened: a stat() of the path and
     * a second open would let whoever can rename files in its folder swap
     * the file between the two, and a symbolic link could point the
     * daemon at a file it should not trust (or one an attacker writes).
     * O_NONBLOCK: a FIFO put in its place must not hang the start. */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ELOOP)
            return mandate_error_set(err, MANDATE_DENIED,
                                     "key-encryption key %s: is a symbolic link; name the "
                                     "file itself",
                                     path);
        return mandate_error_set(err, e == ENOENT ? MANDATE_NOT_FOUND : MANDATE_ERROR,
                                 "key-encryption key %s: %s (mandatectl init creates one)",
                                 path, strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return mandate_error_set(err, MANDATE_ERROR, "key-encryption key %s: %s", path,
                                 strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return mandate_error_set(err, MANDATE_DENIED,
                                 "key-encryption key %s: not a regular file", path);
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        close(fd);
        return mandate_error_set(err, MANDATE_DENIED,
                                 "key-encryption key %s: mode %03o lets others read it; "
                                 "chmod 600 it",
                                 path, (unsigned)(st.st_mode & 0777));
    }
    /* 64 hex digits and a newline; a little room for a CR or spaces, and
     * one byte more tells a file that is too long */
    char text[KEK_HEX_LEN + 16];
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, text + len, sizeof(text) - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            OPENSSL_cleanse(text, sizeof(text));
            return mandate_error_set(err, MANDATE_ERROR, "key-encryption key %s: read: %s",
                                     path, strerror(e));
        }
        if (n == 0 || (len += (size_t)n) == sizeof(text))
            break;
    }
    close(fd);
    bool ok = len < sizeof(text) && parse_hex(text, len, kek);
    OPENSSL_cleanse(text, sizeof(text));
    if (!ok)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "key-encryption key %s: must hold %d hex digits", path,
                                 KEK_HEX_LEN);
    return MANDATE_OK;
}

mandate_rc mandate_kek_derive(const unsigned char kek[MANDATE_KEK_LEN], const char *label,
                              unsigned char out[32], mandate_error *err)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    EVP_KDF_free(kdf);
    if (ctx == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "OpenSSL has no HKDF");
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)kek, MANDATE_KEK_LEN),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)label, strlen(label)),
        OSSL_PARAM_construct_end()};
    int ok = EVP_KDF_derive(ctx, out, 32, params);
    EVP_KDF_CTX_free(ctx);
    if (ok != 1)
        return mandate_error_set(err, MANDATE_ERROR, "HKDF derivation failed");
    return MANDATE_OK;
}
