/* Space-separated lists of words, as grants, client records and tokens
 * carry scopes, audiences and actors (RFC 6749 §3.3 writes scope so), and
 * the syntax of the words that go in them: scope tokens, client ids (and
 * tenants, subjects), audience URIs.
 *
 * Part of lib/, the floor under the core, the plugins and libmandate. A
 * list may be NULL (no words) and may hold runs of spaces, which separate
 * like one; only ' ' separates. Words are handed out as pointer and length
 * into the list, never copied. No state, no allocation. */
#ifndef MANDATE_WORD_LIST_H
#define MANDATE_WORD_LIST_H

#include <stdbool.h>
#include <stddef.h>

/* The next word of a list: *cursor starts at the list and moves past each
 * word given. false, and nothing written, when no word is left.
 *
 *     const char *cur = list, *w;
 *     size_t n;
 *     while (mandate_word_list_next(&cur, &w, &n))
 *         ...
 */
bool mandate_word_list_next(const char **cursor, const char **word_r, size_t *len_r);

/* Whether the list holds word (len bytes; an empty word is never held). */
bool mandate_word_list_has(const char *list, const char *word, size_t len);

/* How many words the list holds. */
size_t mandate_word_list_count(const char *list);

/* The first word of want (in its order) that have does not hold, with its
 * length in *len_r; NULL when have holds them all. */
const char *mandate_word_list_missing(const char *want, const char *have, size_t *len_r);

/* Appends word to the NUL-terminated list of *used bytes, after a space,
 * unless the list holds it already. The list must have room: one built
 * from the words of another fits in strlen(other) + 1 bytes. */
void mandate_word_list_add(char *list, size_t *used, const char *word, size_t len);

/* Writes into out the words of list (in its order, once each) that have
 * holds; out has room for strlen(list) + 1 bytes. The bytes written: 0 when
 * none is held (out is then ""). */
size_t mandate_word_list_keep(char *out, const char *list, const char *have);

/* --- the words ---------------------------------------------------------------- */

/* The longest client id (also tenant and subject names of that syntax). */
#define MANDATE_CLIENT_ID_MAX_LEN 128

/* RFC 6749 §3.3 scope-token characters (%x21 / %x23-5B / %x5D-7E), at
 * least one. */
bool mandate_scope_token_valid(const char *token, size_t len);
/* A character of a client id: RFC 3986's unreserved (letters, digits, '-',
 * '.', '_', '~'), which need no quoting in a URL, a header or a log. */
bool mandate_client_id_char(char c);
/* 1 to MANDATE_CLIENT_ID_MAX_LEN of those characters (NUL-terminated). */
bool mandate_client_id_valid(const char *id);
/* An absolute URI (RFC 3986 scheme ":" something) without a fragment,
 * whitespace or control characters: an RFC 8707 resource, an audience. */
bool mandate_audience_uri_valid(const char *uri, size_t len);

#endif
