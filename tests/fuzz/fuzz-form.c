/* libFuzzer harness: the form-body and Basic-header parsers (core/form.c).
 *
 * One input is fed three ways:
 *   - as an application/x-www-form-urlencoded body to mandate_form_parse
 *     (with "resource" and "audience" repeatable, as the token endpoint
 *     does), then every parameter is read back;
 *   - to mandate_url_decode, with and without '+' as space, and checked
 *     against a reference reading (byte-by-byte percent-decoding, then
 *     jansson's UTF-8 check and a scan for control characters): same
 *     verdict, same bytes;
 *   - as an Authorization header value to mandate_basic_auth_parse (up to
 *     its first NUL), and once more as "Basic " + base64(input) so that the
 *     id:secret split and its percent-decoding see arbitrary bytes.
 * Bounds: inputs over 64 KiB (the default body_limit) are skipped. All
 * memory comes from a pool freed at the end of each input. */
#include "config.h"

#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "form-private.h"
#include "fuzz-common.h"
#include "pool-private.h"

#define HARNESS_MAX_INPUT (64 * 1024)

/* What mandate_url_decode must answer, read another way: decode every
 * byte, then refuse C0 controls, DEL, C1 controls (U+0080-U+009F) and what
 * jansson does not take as UTF-8 (overlongs, surrogates, past U+10FFFF). */
static bool reference_decode(const char *s, size_t len, bool plus_is_space, char *out,
                             size_t *out_len)
{
    size_t j = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') {
            out[j++] = plus_is_space && s[i] == '+' ? ' ' : s[i];
            continue;
        }
        if (i + 2 >= len || !isxdigit((unsigned char)s[i + 1]) ||
            !isxdigit((unsigned char)s[i + 2]))
            return false;
        char pair[3] = {s[i + 1], s[i + 2], '\0'};
        out[j++] = (char)strtol(pair, NULL, 16);
        i += 2;
    }
    *out_len = j;
    for (size_t i = 0; i < j; i++) {
        unsigned char c = (unsigned char)out[i];
        if (c < 0x20 || c == 0x7f)
            return false;
        if (c == 0xc2 && i + 1 < j && (unsigned char)out[i + 1] < 0xa0)
            return false;
    }
    json_t *text = json_stringn(out, j);
    bool utf8 = text != NULL;
    json_decref(text);
    return utf8;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > HARNESS_MAX_INPUT)
        return -1;
    static const char *const repeatable[] = {"resource", "audience", NULL};
    mandate_pool *pool = mandate_pool_new();
    mandate_error err = {0};
    mandate_form form;

    /* the body is not NUL-terminated when it reaches the parser: copy it to
     * a buffer of exactly size bytes so ASan sees any over-read */
    char *body = malloc(size ? size : 1);
    memcpy(body, data, size);
    if (mandate_form_parse(pool, body, size, repeatable, &form, &err) == MANDATE_OK) {
        for (size_t i = 0; i < form.count; i++) {
            const mandate_form_param *p = mandate_form_find(&form, form.params[i].name);
            if (p != &form.params[i] || p->value_count > MANDATE_FORM_MAX_VALUES)
                abort();
            for (size_t k = 0; k < p->value_count; k++)
                if (strlen(p->values[k]) > size)
                    abort();
        }
        (void)mandate_form_get(&form, "grant_type");
    }

    char *expected = malloc(size + 1);
    for (int plus = 0; plus < 2; plus++) {
        char *out;
        size_t expected_len = 0;
        err = (mandate_error){0};
        bool ok = mandate_url_decode(pool, body, size, plus, &out, &err) == MANDATE_OK;
        if (ok != reference_decode(body, size, plus, expected, &expected_len))
            abort();
        if (ok && (strlen(out) != expected_len || memcmp(out, expected, expected_len) != 0))
            abort();
    }
    free(expected);
    free(body);

    char *header = fuzz_strndup(data, size), *id, *secret;
    err = (mandate_error){0};
    (void)mandate_basic_auth_parse(pool, header, &id, &secret, &err);
    free(header);

    /* "Basic " + base64(input), when it fits the Basic bound (2048) */
    if (size <= 1500) {
        char *h = malloc(6 + (size + 2) / 3 * 4 + 1);
        memcpy(h, "Basic ", 6);
        EVP_EncodeBlock((unsigned char *)h + 6, data, (int)size);
        err = (mandate_error){0};
        if (mandate_basic_auth_parse(pool, h, &id, &secret, &err) == MANDATE_OK &&
            (id == NULL || secret == NULL))
            abort();
        free(h);
    }
    mandate_pool_free(&pool);
    return 0;
}
