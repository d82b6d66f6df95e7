/* Bytes as hexadecimal digits, and text percent-encoded (RFC 3986 §2.1):
 * request ids, hashes, URIs, form bodies. Upper-case hex in a triplet, as
 * RFC 3986 §2.1 asks producers to write it; lower-case hex elsewhere.
 *
 * Part of lib/, the floor under the core, the plugins and libmandate. No
 * state, no allocation: the caller gives the room. */
#ifndef MANDATE_TEXT_ENCODING_H
#define MANDATE_TEXT_ENCODING_H

#include <stdbool.h>
#include <stddef.h>

/* The value of a hexadecimal digit, either case; -1 for any other char. */
int mandate_hex_value(char c);

/* n bytes as 2n lower-case hex digits and a NUL, into out (2n + 1 bytes). */
void mandate_hex_encode(const unsigned char *bytes, size_t n, char *out);

/* RFC 3986 §2.3: ALPHA / DIGIT / "-" / "." / "_" / "~". */
bool mandate_url_unreserved(unsigned char c);

/* The octet of the triplet at s ('%' and two hex digits, either case), of
 * which len bytes may be read; -1 when it is cut short or not hex. */
int mandate_percent_decode_octet(const char *s, size_t len);

/* c as its triplet "%XX" at out (3 bytes, no NUL); returns out + 3. */
char *mandate_percent_octet(char *out, unsigned char c);

/* s percent-encoded into out (3 * strlen(s) + 1 bytes), NUL-terminated:
 * unreserved characters as they are, every other octet a triplet; with
 * space_as_plus (application/x-www-form-urlencoded, RFC 6749 Appendix B),
 * a space as '+'. Returns out. */
char *mandate_percent_encode(const char *s, bool space_as_plus, char *out);

#endif
