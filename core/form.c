#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "form-private.h"
#include "pool-private.h"
#include "text-encoding.h"

/* Longest Basic header value accepted: ids and secrets are short. */
#define BASIC_MAX_LEN 2048

/* Well-formed UTF-8 without overlongs, surrogates or control characters. */
static bool text_ok(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        /* printable ASCII, nearly every byte of a form: one comparison each */
        while (i < len && (unsigned char)(s[i] - 0x20) < 0x5f)
            i++;
        if (i == len)
            break;
        unsigned char c = s[i];
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return false;
            i++;
            continue;
        }
        size_t n;
        unsigned cp;
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + n >= len)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp < 0xa0))
            return false;
        i += n + 1;
    }
    return true;
}

mandate_rc mandate_url_decode(mandate_pool *pool, const char *s, size_t len,
                              bool plus_is_space, char **out_r, mandate_error *err)
{
    char *out = mandate_pool_alloc(pool, len + 1);
    size_t j = 0;
    /* nothing encoded, as in a token: copied whole rather than byte by byte
     * (an introspection body is a 600-character token) */
    bool encoded = memchr(s, '%', len) != NULL || (plus_is_space && memchr(s, '+', len) != NULL);
    if (!encoded) {
        memcpy(out, s, len);
        j = len;
    }
    for (size_t i = 0; encoded && i < len; i++) {
        if (s[i] == '%') {
            if (i + 2 >= len)
                return mandate_error_set(err, MANDATE_INVALID, "truncated percent-encoding");
            int octet = mandate_percent_decode_octet(s + i, len - i);
            if (octet < 0)
                return mandate_error_set(err, MANDATE_INVALID, "bad percent-encoding");
            out[j++] = (char)octet;
            i += 2;
        } else if (s[i] == '+' && plus_is_space) {
            out[j++] = ' ';
        } else {
            out[j++] = s[i];
        }
    }
    out[j] = '\0';
    if (!text_ok((const unsigned char *)out, j))
        return mandate_error_set(err, MANDATE_INVALID,
                                 "a parameter holds a control character or invalid UTF-8");
    *out_r = out;
    return MANDATE_OK;
}

static bool is_repeatable(const char *name, const char *const *repeatable)
{
    for (; repeatable != NULL && *repeatable != NULL; repeatable++)
        if (strcmp(name, *repeatable) == 0)
            return true;
    return false;
}

bool mandate_form_content_type_ok(const char *ct)
{
    static const char form[] = "application/x-www-form-urlencoded";
    if (ct == NULL || strncasecmp(ct, form, sizeof(form) - 1) != 0)
        return false;
    char next = ct[sizeof(form) - 1];
    return next == '\0' || next == ';' || next == ' ';
}

mandate_rc mandate_form_parse(mandate_pool *pool, const char *body, size_t len,
                              const char *const *repeatable, mandate_form *form,
                              mandate_error *err)
{
    memset(form, 0, sizeof(*form));
    size_t pos = 0;
    while (pos < len) {
        const char *pair = body + pos;
        const char *amp = memchr(pair, '&', len - pos);
        size_t pair_len = amp ? (size_t)(amp - pair) : len - pos;
        pos += pair_len + 1;
        if (pair_len == 0)
            continue;
        const char *eq = memchr(pair, '=', pair_len);
        size_t name_len = eq ? (size_t)(eq - pair) : pair_len;
        char *name, *value;
        mandate_rc rc = mandate_url_decode(pool, pair, name_len, true, &name, err);
        if (rc != MANDATE_OK)
            return rc;
        if (name[0] == '\0')
            return mandate_error_set(err, MANDATE_INVALID, "a parameter has no name");
        const char *vstart = eq ? eq + 1 : pair + pair_len;
        rc = mandate_url_decode(pool, vstart, (size_t)(pair + pair_len - vstart), true, &value,
                                err);
        if (rc != MANDATE_OK) {
            char why[MANDATE_ERROR_MAX];
            snprintf(why, sizeof(why), "%s", err ? err->message : "bad value");
            return mandate_error_set(err, MANDATE_INVALID, "parameter '%.40s': %s", name, why);
        }

        mandate_form_param *p = (mandate_form_param *)mandate_form_find(form, name);
        if (p != NULL) {
            if (!is_repeatable(name, repeatable))
                return mandate_error_set(err, MANDATE_INVALID,
                                         "parameter '%.40s' is repeated", name);
            if (p->value_count == MANDATE_FORM_MAX_VALUES)
                return mandate_error_set(err, MANDATE_INVALID,
                                         "parameter '%.40s' is repeated too often", name);
        } else {
            if (form->count == MANDATE_FORM_MAX_PARAMS)
                return mandate_error_set(err, MANDATE_INVALID, "too many parameters");
            p = &form->params[form->count++];
            p->name = name;
        }
        /* RFC 6749 §3.1: sent without a value means omitted */
        if (value[0] != '\0')
            p->values[p->value_count++] = value;
    }
    return MANDATE_OK;
}

const mandate_form_param *mandate_form_find(const mandate_form *form, const char *name)
{
    for (size_t i = 0; i < form->count; i++)
        if (strcmp(form->params[i].name, name) == 0)
            return &form->params[i];
    return NULL;
}

const char *mandate_form_get(const mandate_form *form, const char *name)
{
    const mandate_form_param *p = mandate_form_find(form, name);
    return p != NULL && p->value_count > 0 ? p->values[0] : NULL;
}

static bool is_base64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/';
}

mandate_rc mandate_basic_auth_parse(mandate_pool *pool, const char *header, char **id_r,
                                    char **secret_r, mandate_error *err)
{
    if (strncasecmp(header, "Basic", 5) != 0 || (header[5] != ' ' && header[5] != '\0'))
        return MANDATE_NEXT;
    const char *b64 = header + 5;
    while (*b64 == ' ')
        b64++;
    size_t len = strlen(b64);
    while (len > 0 && b64[len - 1] == ' ')
        len--;
    if (len == 0 || len > BASIC_MAX_LEN || len % 4 != 0)
        return mandate_error_set(err, MANDATE_INVALID, "malformed Basic credentials");
    size_t pad = 0;
    for (size_t i = 0; i < len; i++) {
        if (b64[i] == '=' && i >= len - 2) {
            pad++;
            continue;
        }
        if (!is_base64_char(b64[i]) || pad > 0)
            return mandate_error_set(err, MANDATE_INVALID, "malformed Basic credentials");
    }
    unsigned char *raw = mandate_pool_alloc(pool, len / 4 * 3 + 1);
    int n = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)len);
    if (n < 0 || (size_t)n < pad)
        return mandate_error_set(err, MANDATE_INVALID, "malformed Basic credentials");
    size_t raw_len = (size_t)n - pad; /* EVP_DecodeBlock counts padding as zero bytes */
    const unsigned char *colon = memchr(raw, ':', raw_len);
    if (colon == NULL)
        return mandate_error_set(err, MANDATE_INVALID, "Basic credentials lack a ':'");
    /* RFC 6749 §2.3.1: both parts are form-urlencoded before encoding */
    mandate_rc rc = mandate_url_decode(pool, (const char *)raw, (size_t)(colon - raw), true,
                                       id_r, err);
    if (rc == MANDATE_OK)
        rc = mandate_url_decode(pool, (const char *)colon + 1,
                                raw_len - (size_t)(colon + 1 - raw), true, secret_r, err);
    if (rc != MANDATE_OK)
        return mandate_error_set(err, MANDATE_INVALID, "malformed Basic credentials");
    return MANDATE_OK;
}

char *mandate_url_encode(mandate_pool *pool, const char *s)
{
    return mandate_percent_encode(s, false, mandate_pool_alloc(pool, 3 * strlen(s) + 1));
}
