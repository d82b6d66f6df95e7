/* The gateway check's path: normalised once, here, and refused where a
 * tool server could read it otherwise than we do.
 *
 * Why so strict: the check says yes or no for a path, and the tool server
 * then runs whatever that path means to it. Servers disagree on the corners
 * of URLs: Tomcat and Spring drop ";params" per segment and read "..;" as
 * "..", Go's ServeMux and nginx (with a URI in proxy_pass) merge "//",
 * Express routes without letter case, IIS and old Java decoders take "\"
 * for "/" and overlong UTF-8 for '.', a proxy or framework may decode "%25"
 * a second time. Where the readings could differ the request is refused
 * (400, audited), as Spring Security's StrictHttpFirewall does; no client
 * that calls a tool server needs any of it. Two readings come from outside
 * URLs: Windows file mapping (IIS) drops a name's trailing dots and spaces
 * ("admin." is "admin"), and some frameworks apply Unicode compatibility
 * normalisation (a fullwidth full stop U+FF0E becomes '.'). What is left
 * has one meaning, RFC 3986's: decoded once, dot-segments removed (§5.2.4). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <uninorm.h>

#include "form-private.h"
#include "gateway-path-private.h"
#include "log-private.h"
#include "pool-private.h"
#include "text-encoding.h"

/* What RFC 3986 §3.3 lets stand unencoded in a path segment (pchar), but
 * for '%' and ';', which are judged on their own. */
static bool is_plain(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("-._~!$&'()*+,=:@", c) != NULL;
}

/* Why an escape decoding to c is refused; NULL when it may be decoded. */
static const char *escape_refused(unsigned char c)
{
    switch (c) {
    case '\0': return "an encoded NUL (%00)";
    case '/': return "an encoded slash (%2F): one segment or two?";
    case '\\': return "an encoded backslash (%5C): some servers take it for a slash";
    case '%': return "an encoded percent sign (%25): a second decoding would read another path";
    case ';': return "an encoded ';' (%3B): some servers cut path parameters at it";
    case '?':
    case '#': return "an encoded '?' or '#' (%3F, %23)";
    default: return c < 0x20 || c == 0x7f ? "an encoded control character" : NULL;
    }
}

/* Why the byte c, unencoded, is refused; NULL when it is plain. */
static const char *byte_refused(unsigned char c)
{
    if (is_plain(c) || c == '/' || c == '%')
        return NULL;
    switch (c) {
    case '\0': return "a NUL byte";
    case '\\': return "a backslash: some servers take it for a slash";
    case ';': return "a ';' parameter: Tomcat and Spring drop it, and read \"..;\" as \"..\"";
    case '#': return "a '#': a request-target holds no fragment, and servers differ on it";
    default:
        if (c < 0x20 || c == 0x7f)
            return "a control character";
        if (c >= 0x80)
            return "a byte that is not ASCII and not percent-encoded";
        return "a character that must be percent-encoded (a space, '\"', '<', '>', '[', ']', "
               "'^', '`', '{', '|' or '}')";
    }
}

/* Whether the raw segment s[0..len) decodes to "." or ".." through at least
 * one escape ("%2e", ".%2E", ...): an unencoded dot-segment is resolved, an
 * encoded one is refused (a server that decodes after resolving would climb
 * where we did not). */
static bool encoded_dot_segment(const char *s, size_t len)
{
    size_t dots = 0;
    bool escaped = false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.') {
            dots++;
        } else if (s[i] == '%' && i + 2 < len && s[i + 1] == '2' &&
                   (s[i + 2] == 'e' || s[i + 2] == 'E')) {
            dots++;
            escaped = true;
            i += 2;
        } else {
            return false;
        }
    }
    return escaped && dots <= 2;
}

/* Checks the raw path p[0..len) byte by byte and segment by segment (see
 * the header for what is refused); NULL when it may be decoded. */
static const char *raw_refused(const char *p, size_t len)
{
    size_t segment = 1; /* start of the current segment; p[0] is '/' */
    for (size_t i = 1; i <= len; i++) {
        if (i == len || p[i] == '/') {
            if (i == segment && i < len)
                return "an empty segment (\"//\"): some servers merge it, others keep it";
            if (encoded_dot_segment(p + segment, i - segment))
                return "an encoded dot-segment (\"%2e\", \"%2e%2e\"): resolved by some servers "
                       "after the check";
            segment = i + 1;
            continue;
        }
        unsigned char c = (unsigned char)p[i];
        const char *why = byte_refused(c);
        if (why != NULL)
            return why;
        if (c != '%')
            continue;
        int octet = mandate_percent_decode_octet(p + i, len - i);
        if (octet < 0)
            return "bad percent-encoding";
        why = escape_refused((unsigned char)octet);
        if (why != NULL)
            return why;
        i += 2;
    }
    return NULL;
}

/* Checks the decoded path d (its raw form passed raw_refused, so its
 * segments are the raw path's) for what a server may read as another name;
 * NULL when nothing is. */
static const char *decoded_refused(const char *d)
{
    bool ascii = true;
    for (const char *segment = d + 1;;) {
        const char *end = strchrnul(segment, '/');
        size_t len = (size_t)(end - segment);
        bool dot_segment = (len == 1 && segment[0] == '.') ||
                           (len == 2 && segment[0] == '.' && segment[1] == '.');
        if (len > 0 && !dot_segment && (end[-1] == '.' || end[-1] == ' '))
            return "a segment that ends in a dot or a space: Windows servers (IIS) drop them and "
                   "read another name";
        for (const char *c = segment; c < end; c++)
            ascii = ascii && (unsigned char)*c < 0x80;
        if (*end == '\0')
            break;
        segment = end + 1;
    }
    if (ascii)
        return NULL;
    /* libunistring's NFKC (the runtime library comes with libcurl's IDN
     * support): a path it leaves alone holds no compatibility character */
    size_t len = strlen(d), nfkc_len = 0;
    uint8_t *nfkc = u8_normalize(UNINORM_NFKC, (const uint8_t *)d, len, NULL, &nfkc_len);
    if (nfkc == NULL)
        return "a path that Unicode normalisation cannot read";
    bool same = nfkc_len == len && memcmp(nfkc, d, len) == 0;
    free(nfkc);
    return same ? NULL
                : "a character that Unicode compatibility normalisation (NFKC) changes, such as "
                  "a fullwidth dot: some frameworks normalise it and read another path";
}

/* RFC 3986 §5.2.4 for an absolute path without empty segments, in place:
 * out may be in. false when a ".." would climb above the root: RFC 3986
 * drops it, but a server that maps the path into a folder or below a mount
 * point may not, and nginx itself refuses such a request. */
static bool remove_dot_segments(const char *in, size_t len, char *out)
{
    size_t n = 0; /* out[0..n) is "" or "/seg/seg..." */
    size_t i = 1;
    for (;;) {
        size_t end = i;
        while (end < len && in[end] != '/')
            end++;
        bool last = end == len;
        size_t seg_len = end - i;
        if (seg_len == 1 && in[i] == '.') {
            if (last)
                out[n++] = '/';
        } else if (seg_len == 2 && in[i] == '.' && in[i + 1] == '.') {
            if (n == 0)
                return false;
            while (out[--n] != '/')
                ;
            if (last)
                out[n++] = '/';
        } else {
            out[n++] = '/';
            memmove(out + n, in + i, seg_len);
            n += seg_len;
        }
        if (last)
            break;
        i = end + 1;
    }
    if (n == 0)
        out[n++] = '/';
    out[n] = '\0';
    return true;
}

bool mandate_gateway_path_normalise(mandate_pool *pool, const char *raw, size_t raw_len,
                                    char **path_r, const char **why_r)
{
    const char *q = memchr(raw, '?', raw_len);
    size_t len = q != NULL ? (size_t)(q - raw) : raw_len;
    *path_r = NULL;
    if (len == 0 || raw[0] != '/') {
        *why_r = "the path does not begin with '/'";
        return false;
    }
    if (len > MANDATE_GATEWAY_PATH_MAX) {
        *why_r = "the path is too long";
        return false;
    }
    *why_r = raw_refused(raw, len);
    if (*why_r != NULL)
        return false;
    /* every escape is now well-formed and decodes to none of the bytes
     * above: what mandate_url_decode may still refuse is invalid UTF-8
     * (an overlong '.', "%c0%ae", among others) and C1 controls */
    char *decoded;
    if (mandate_url_decode(pool, raw, len, false, &decoded, NULL) != MANDATE_OK) {
        *why_r = "invalid UTF-8 or a control character once decoded";
        return false;
    }
    *why_r = decoded_refused(decoded);
    if (*why_r != NULL)
        return false;
    /* decoding adds no '/' and no dot-segment (both refused when encoded),
     * so the decoded path has the raw path's segments */
    if (!remove_dot_segments(decoded, strlen(decoded), decoded)) {
        *why_r = "a \"..\" that climbs above the root";
        return false;
    }
    *path_r = decoded;
    return true;
}

static bool same_letters(const char *a, const char *b, size_t n, bool fold_case)
{
    if (!fold_case)
        return memcmp(a, b, n) == 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        /* ASCII only: the locale must not change what a path means */
        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = (unsigned char)(y - 'A' + 'a');
        if (x != y)
            return false;
    }
    return true;
}

bool mandate_gateway_path_covers(const char *prefix, const char *path, bool fold_case)
{
    size_t n = strlen(prefix), len = strlen(path);
    if (n == 0 || n > len || !same_letters(prefix, path, n, fold_case))
        return false;
    return n == len || prefix[n - 1] == '/' || path[n] == '/';
}

const mandate_target *mandate_gateway_path_target_for(const mandate_target *targets,
                                                      size_t count, const char *path,
                                                      bool fold_case)
{
    const mandate_target *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < count; i++) {
        for (char **p = targets[i].paths; p != NULL && *p != NULL; p++) {
            size_t n = strlen(*p);
            if (n > best_len && mandate_gateway_path_covers(*p, path, fold_case)) {
                best = &targets[i];
                best_len = n;
            }
        }
    }
    return best;
}

bool mandate_gateway_path_target(mandate_pool *pool, const mandate_target *targets,
                                 size_t count, const char *raw, size_t raw_len,
                                 const mandate_target **target_r, char **path_r,
                                 const char **why_r)
{
    *target_r = NULL;
    if (!mandate_gateway_path_normalise(pool, raw, raw_len, path_r, why_r))
        return false;
    const mandate_target *t = mandate_gateway_path_target_for(targets, count, *path_r, false);
    const mandate_target *folded =
        mandate_gateway_path_target_for(targets, count, *path_r, true);
    if (folded != t) {
        log_info("gateway check: '%.*s' is target %s's path but for letter case", 200, *path_r,
                 folded->name);
        *why_r = "the path is a target's path but for letter case: some servers ignore case";
        return false;
    }
    *target_r = t;
    return true;
}
