/* Space-separated word lists and the syntax of their words: word-list.h. */
#include "config.h"

#include <string.h>

#include "text-encoding.h"
#include "word-list.h"

bool mandate_word_list_next(const char **cursor, const char **word_r, size_t *len_r)
{
    const char *p = *cursor;
    if (p == NULL)
        return false;
    p += strspn(p, " ");
    size_t n = strcspn(p, " ");
    if (n == 0) {
        *cursor = p;
        return false;
    }
    *word_r = p;
    *len_r = n;
    *cursor = p + n;
    return true;
}

bool mandate_word_list_has(const char *list, const char *word, size_t len)
{
    const char *w;
    size_t n;
    if (len == 0)
        return false;
    while (mandate_word_list_next(&list, &w, &n))
        if (n == len && memcmp(w, word, len) == 0)
            return true;
    return false;
}

size_t mandate_word_list_count(const char *list)
{
    const char *w;
    size_t n, count = 0;
    while (mandate_word_list_next(&list, &w, &n))
        count++;
    return count;
}

const char *mandate_word_list_missing(const char *want, const char *have, size_t *len_r)
{
    const char *w;
    size_t n;
    while (mandate_word_list_next(&want, &w, &n))
        if (!mandate_word_list_has(have, w, n)) {
            *len_r = n;
            return w;
        }
    return NULL;
}

void mandate_word_list_add(char *list, size_t *used, const char *word, size_t len)
{
    if (len == 0 || mandate_word_list_has(list, word, len))
        return;
    if (*used > 0)
        list[(*used)++] = ' ';
    memcpy(list + *used, word, len);
    *used += len;
    list[*used] = '\0';
}

size_t mandate_word_list_keep(char *out, const char *list, const char *have)
{
    size_t used = 0, len;
    const char *word;
    out[0] = '\0';
    while (mandate_word_list_next(&list, &word, &len))
        if (mandate_word_list_has(have, word, len))
            mandate_word_list_add(out, &used, word, len);
    return used;
}

/* --- the words ---------------------------------------------------------------- */

bool mandate_scope_token_valid(const char *token, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)token[i];
        if (!(c == 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e)))
            return false;
    }
    return true;
}

bool mandate_client_id_char(char c)
{
    return mandate_url_unreserved((unsigned char)c);
}

bool mandate_client_id_valid(const char *id)
{
    size_t len = strlen(id);
    if (len == 0 || len > MANDATE_CLIENT_ID_MAX_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!mandate_client_id_char(id[i]))
            return false;
    return true;
}

bool mandate_audience_uri_valid(const char *uri, size_t len)
{
    size_t i = 0;
    /* RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
    if (len == 0 || !((uri[0] >= 'a' && uri[0] <= 'z') || (uri[0] >= 'A' && uri[0] <= 'Z')))
        return false;
    while (i < len && uri[i] != ':') {
        char c = uri[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '-' || c == '.'))
            return false;
        i++;
    }
    if (i == len || i + 1 == len)
        return false;
    for (size_t k = 0; k < len; k++)
        if (uri[k] == '#' || (unsigned char)uri[k] <= 0x20 || uri[k] == 0x7f)
            return false;
    return true;
}
