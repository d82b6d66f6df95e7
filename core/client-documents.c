/* Client ID Metadata Documents and the checks of client metadata: see
 * client-documents-private.h. The fetch is a libcurl easy handle of its own
 * (lib/http-client.c has no CA file, no address check and a fixed size
 * bound, and its users are libmandate and a plugin). */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "client-documents-private.h"
#include "clock-private.h"
#include "grant-table-private.h"
#include "log-private.h"
#include "plugins-private.h"
#include "pool-private.h"
#include "util-private.h"
#include "word-list.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

/* Bounds of the text members kept from metadata (bytes). */
#define NAME_MAX_LEN 200
#define SOFTWARE_ID_MAX_LEN 128
#define SOFTWARE_VERSION_MAX_LEN 64
#define LINK_MAX_LEN 2048
#define SCOPE_MAX_LEN 1024

/* --- URLs ------------------------------------------------------------------------ */

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* RFC 3986: unreserved, sub-delims, ':', '@', '/', '?', '[' and ']' (an
 * IPv6 host; where they stand is checked apart) and '%' (followed by two
 * hex digits, checked apart): the characters a URL may hold outside a
 * fragment. */
static bool uri_char(char c)
{
    return is_alpha(c) || is_digit(c) || strchr("-._~!$&'()*+,;=:@/?%[]", c) != NULL;
}

/* Every character a URI character, each '%' followed by two hex digits. */
static bool uri_chars_ok(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\0' || !uri_char(s[i]))
            return false;
        if (s[i] == '%' && (i + 2 >= len || !is_hex(s[i + 1]) || !is_hex(s[i + 2])))
            return false;
    }
    return true;
}

/* A dot segment, also percent-encoded: a server may decode "%2e%2e"
 * before it resolves the path. */
static bool dot_segment(const char *seg, size_t n)
{
    static const char *const dots[] = {".", "..", "%2e", "%2e%2e", ".%2e", "%2e.", NULL};
    for (const char *const *d = dots; *d != NULL; d++)
        if (strlen(*d) == n && strncasecmp(seg, *d, n) == 0)
            return true;
    return false;
}

/* A host name: letters, digits, '-' and '.', labels not empty. */
static bool host_name_ok(const char *h, size_t n)
{
    if (n == 0 || n > 253 || h[0] == '.' || h[n - 1] == '.' || h[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!(is_alpha(h[i]) || is_digit(h[i]) || h[i] == '-' || h[i] == '.'))
            return false;
        if (h[i] == '.' && h[i + 1] == '.')
            return false;
    }
    return true;
}

/* An authority without user info: host [":" port]. host_r/host_len_r: the
 * host without brackets. */
static bool authority_ok(const char *a, size_t n, const char **host_r, size_t *host_len_r,
                         const char **why)
{
    if (memchr(a, '@', n) != NULL) {
        *why = "it holds a user name or password";
        return false;
    }
    const char *host = a, *port = NULL;
    size_t hn;
    if (n > 0 && a[0] == '[') {
        const char *close = memchr(a, ']', n);
        char text[INET6_ADDRSTRLEN];
        struct in6_addr in6;
        hn = close ? (size_t)(close - a - 1) : 0;
        if (close == NULL || hn == 0 || hn >= sizeof(text)) {
            *why = "its IPv6 host is not closed by ']'";
            return false;
        }
        memcpy(text, a + 1, hn);
        text[hn] = '\0';
        if (inet_pton(AF_INET6, text, &in6) != 1) {
            *why = "its IPv6 host is not an address";
            return false;
        }
        host = a + 1;
        if ((size_t)(close + 1 - a) < n) {
            if (close[1] != ':') {
                *why = "something follows its IPv6 host";
                return false;
            }
            port = close + 2;
        }
    } else {
        const char *colon = memchr(a, ':', n);
        hn = colon ? (size_t)(colon - a) : n;
        if (!host_name_ok(a, hn)) {
            *why = "its host is not a host name or an address";
            return false;
        }
        if (colon != NULL)
            port = colon + 1;
    }
    if (port != NULL) {
        size_t pn = (size_t)(a + n - port);
        long value = 0;
        for (size_t i = 0; i < pn; i++) {
            if (!is_digit(port[i]) || i >= 5) {
                *why = "its port is not a number";
                return false;
            }
            value = value * 10 + (port[i] - '0');
        }
        if (pn == 0 || value < 1 || value > 65535) {
            *why = "its port is not 1 to 65535";
            return false;
        }
    }
    *host_r = host;
    *host_len_r = hn;
    return true;
}

bool mandate_client_document_url_check(const char *url, const char **why_r)
{
    const char *why = NULL;
    const char *host;
    size_t host_len;
    size_t len = url != NULL ? strlen(url) : 0;
    if (url == NULL || strncmp(url, "https://", 8) != 0)
        why = "it is not an https URL";
    else if (len > MANDATE_CLIENT_DOCUMENT_URL_MAX)
        why = "it is longer than 255 bytes";
    else if (strchr(url, '#') != NULL)
        why = "it has a fragment";
    else if (!uri_chars_ok(url, len))
        why = "it holds a character that a URL may not";
    if (why == NULL) {
        const char *a = url + 8;
        size_t an = strcspn(a, "/?");
        const char *path = a + an;
        if (!authority_ok(a, an, &host, &host_len, &why)) {
            /* why set */
        } else if (*path != '/') {
            why = "it has no path";
        } else {
            size_t pn = strcspn(path, "?");
            if (pn == 1)
                why = "its path is only \"/\"";
            for (const char *seg = path + 1; why == NULL && seg <= path + pn;) {
                size_t sn = strcspn(seg, "/?");
                if (seg + sn > path + pn)
                    sn = (size_t)(path + pn - seg);
                if (dot_segment(seg, sn))
                    why = "its path has a \".\" or \"..\" segment";
                seg += sn + 1;
            }
        }
    }
    if (why_r != NULL)
        *why_r = why;
    return why == NULL;
}

bool mandate_client_id_is_document(const char *client_id)
{
    return mandate_client_document_url_check(client_id, NULL);
}

const char *mandate_client_document_host(mandate_pool *pool, const char *url)
{
    const char *host, *why;
    size_t n;
    if (!mandate_client_document_url_check(url, NULL))
        return NULL;
    const char *a = url + 8;
    if (!authority_ok(a, strcspn(a, "/?"), &host, &n, &why))
        return NULL;
    char *out = mandate_pool_strndup(pool, host, n);
    for (char *p = out; *p != '\0'; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return out;
}

bool mandate_client_host_matches(const char *pattern, const char *host)
{
    if (strncmp(pattern, "*.", 2) == 0) {
        size_t pn = strlen(pattern + 1), hn = strlen(host);
        /* ".example.com" at the end, and something before it */
        return hn > pn && strcasecmp(host + hn - pn, pattern + 1) == 0;
    }
    return strcasecmp(pattern, host) == 0;
}

/* An https URL with a host, for the links a client's metadata may hold:
 * shown on the consent page, never fetched, never anything but https. */
static bool link_ok(const char *s)
{
    size_t len = strlen(s);
    if (len > LINK_MAX_LEN || strncmp(s, "https://", 8) != 0)
        return false;
    const char *a = s + 8, *host, *why;
    size_t an = strcspn(a, "/?#"), hn;
    size_t body = strcspn(s, "#");
    if (!authority_ok(a, an, &host, &hn, &why) || !uri_chars_ok(s, body))
        return false;
    /* a fragment may hold '?' and '/' too, and nothing else new */
    return s[body] == '\0' || uri_chars_ok(s + body + 1, len - body - 1);
}

bool mandate_redirect_uri_check(const char *uri, const char **why_r)
{
    const char *why = NULL, *host = NULL;
    size_t len = strlen(uri), hn = 0;
    size_t scheme_len = strcspn(uri, ":");
    if (len == 0 || len > MANDATE_REDIRECT_URI_MAX)
        why = "it is empty or longer than 2048 bytes";
    else if (strchr(uri, '#') != NULL)
        why = "it has a fragment";
    else if (!mandate_audience_uri_valid(uri, len))
        why = "it is not an absolute URI";
    else if (!uri_chars_ok(uri + scheme_len + 1, len - scheme_len - 1))
        why = "it holds a character that a URI may not";
    else if ((scheme_len == 5 && strncasecmp(uri, "https", 5) == 0) ||
             (scheme_len == 4 && strncasecmp(uri, "http", 4) == 0)) {
        const char *a = uri + scheme_len + 1;
        if (strncmp(a, "//", 2) != 0) {
            why = "it has no host";
        } else {
            a += 2;
            if (!authority_ok(a, strcspn(a, "/?"), &host, &hn, &why)) {
                /* why set */
            } else if (scheme_len == 4) {
                /* RFC 8252 §7.3 and §8.3: plain http only to the device's
                 * own listener; anywhere else the code travels in clear */
                char text[INET6_ADDRSTRLEN];
                struct in_addr in4;
                bool loopback = false;
                if (hn < sizeof(text)) {
                    memcpy(text, host, hn);
                    text[hn] = '\0';
                    loopback = strcasecmp(text, "localhost") == 0 || strcmp(text, "::1") == 0 ||
                               (inet_pton(AF_INET, text, &in4) == 1 &&
                                (ntohl(in4.s_addr) >> 24) == 127);
                }
                if (!loopback)
                    why =
                        "http is allowed only on a loopback host (localhost, 127.0.0.1, [::1])";
            }
        }
    } else if (memchr(uri, '.', scheme_len) == NULL) {
        why = "its scheme is neither https, http on a loopback host, nor a private-use "
              "scheme (a reverse domain name such as com.example.app)";
    }
    if (why_r != NULL)
        *why_r = why;
    return why == NULL;
}

/* --- metadata -------------------------------------------------------------------- */

typedef struct metadata_check {
    mandate_metadata_source source;
    const char *oauth_error;
    mandate_error *err;
} metadata_check;

static mandate_rc refuse(metadata_check *m, const char *oauth_error, const char *fmt, ...)
    MANDATE_PRINTF(3, 4);
static mandate_rc refuse(metadata_check *m, const char *oauth_error, const char *fmt, ...)
{
    va_list ap;
    m->oauth_error = oauth_error;
    if (m->err != NULL) {
        m->err->rc = MANDATE_INVALID;
        va_start(ap, fmt);
        vsnprintf(m->err->message, sizeof(m->err->message), fmt, ap);
        va_end(ap);
        mandate_utf8_repair(m->err->message);
    }
    return MANDATE_INVALID;
}

#define BAD_METADATA(m, ...) refuse((m), "invalid_client_metadata", __VA_ARGS__)

/* Printable text of at most max bytes (UTF-8 beyond ASCII is jansson's to
 * check): no control character, which a page or a log could be made to
 * show as something else. */
static bool text_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

static const char *source_name(mandate_metadata_source source)
{
    switch (source) {
    case MANDATE_METADATA_DOCUMENT: return "document";
    case MANDATE_METADATA_REGISTRATION: return "registration";
    case MANDATE_METADATA_ADMIN: return "admin";
    }
    return "?";
}

static bool grant_allowed(const char *g, bool is_public)
{
    if (strcmp(g, "authorization_code") == 0 || strcmp(g, "refresh_token") == 0)
        return true;
    /* the other grants all need the client to authenticate */
    return !is_public && mandate_grant_table_find(g) != NULL;
}

/* An array of distinct strings, each passing ok (may be NULL); at most max. */
static mandate_rc string_set(metadata_check *m, json_t *v, const char *member, size_t max,
                             const char *oauth_error)
{
    size_t i, k;
    json_t *item;
    if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > max)
        return refuse(m, oauth_error, "%s must be an array of 1 to %zu strings", member, max);
    json_array_foreach(v, i, item)
    {
        if (!json_is_string(item))
            return refuse(m, oauth_error, "%s[%zu] is not a string", member, i);
        for (k = 0; k < i; k++)
            if (json_equal(item, json_array_get(v, k)))
                return refuse(m, oauth_error, "%s lists '%.80s' twice", member,
                              json_string_value(item));
    }
    return MANDATE_OK;
}

static bool array_has(json_t *a, const char *s)
{
    size_t i;
    json_t *item;
    json_array_foreach(a, i, item)
    {
        if (strcmp(json_string_value(item), s) == 0)
            return true;
    }
    return false;
}

static mandate_rc check_auth_method(metadata_check *m, json_t *in, const char **method_r)
{
    json_t *v = json_object_get(in, "token_endpoint_auth_method");
    bool admin = m->source == MANDATE_METADATA_ADMIN;
    *method_r = "none";
    if (v == NULL)
        return admin ? BAD_METADATA(m, "token_endpoint_auth_method is missing") : MANDATE_OK;
    if (!json_is_string(v))
        return BAD_METADATA(m, "token_endpoint_auth_method is not a string");
    const char *method = json_string_value(v);
    *method_r = method;
    if (strcmp(method, "none") == 0)
        return MANDATE_OK;
    bool by_certificate = strcmp(method, "tls_client_auth") == 0 ||
                          strcmp(method, "self_signed_tls_client_auth") == 0;
    /* RFC 8705 §2.1.2, §2.2.2: a registration may name its certificate (no
     * secret is made for it); a document stays public */
    if ((admin || m->source == MANDATE_METADATA_REGISTRATION) && by_certificate)
        return MANDATE_OK;
    if (admin &&
        (strcmp(method, "client_secret_basic") == 0 ||
         strcmp(method, "client_secret_post") == 0 || strcmp(method, "private_key_jwt") == 0))
        return MANDATE_OK;
    if (strncmp(method, "client_secret_", 14) == 0)
        return BAD_METADATA(m,
                            "token_endpoint_auth_method '%.40s' is a shared secret, which a "
                            "%s client cannot have: it is public (\"none\")",
                            method, source_name(m->source));
    return BAD_METADATA(m,
                        "token_endpoint_auth_method '%.40s' is not supported for a %s client: "
                        "only \"none\"",
                        method, source_name(m->source));
}

/* The certificate a registered client authenticates by (RFC 8705 §2.1.2:
 * exactly one name for tls_client_auth; §2.2.2: jwks for
 * self_signed_tls_client_auth, its certificate in x5c or its key), and
 * tls_client_certificate_bound_access_tokens (§3.4), copied to out, for a
 * registration (RFC 7591). What
 * the names must match is lib/client-cert.c's, at each authentication. */
static mandate_rc check_certificate(metadata_check *m, json_t *in, json_t *out,
                                    const char *method)
{
    static const char *const names[] = {"tls_client_auth_subject_dn", "tls_client_auth_san_dns",
                                        "tls_client_auth_san_uri", "tls_client_auth_san_ip",
                                        "tls_client_auth_san_email"};
    /* mandatectl keeps its registration in the attributes (core/ctl-mtls.c) */
    if (m->source != MANDATE_METADATA_REGISTRATION)
        return MANDATE_OK;
    bool tls = strcmp(method, "tls_client_auth") == 0;
    bool self_signed = strcmp(method, "self_signed_tls_client_auth") == 0;
    const char *named = NULL;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        json_t *v = json_object_get(in, names[i]);
        if (v == NULL)
            continue;
        if (!tls)
            return BAD_METADATA(m, "%s goes with token_endpoint_auth_method tls_client_auth",
                                names[i]);
        if (named != NULL)
            return BAD_METADATA(m, "tls_client_auth takes one certificate name: %s and %s",
                                named, names[i]);
        if (!json_is_string(v) || !text_ok(json_string_value(v), NAME_MAX_LEN))
            return BAD_METADATA(m, "%s must be text of 1 to %d bytes", names[i], NAME_MAX_LEN);
        named = names[i];
        json_object_set(out, names[i], v);
    }
    if (tls && named == NULL)
        return BAD_METADATA(m, "tls_client_auth needs the certificate's name: one of "
                               "tls_client_auth_subject_dn, _san_dns, _san_uri, _san_ip, "
                               "_san_email");
    json_t *jwks = json_object_get(in, "jwks");
    if (json_object_get(in, "jwks_uri") != NULL && self_signed)
        return BAD_METADATA(m, "jwks_uri is not supported: register the certificate in jwks");
    if (self_signed) {
        json_t *keys = json_object_get(jwks, "keys");
        if (!json_is_array(keys) || json_array_size(keys) == 0)
            return BAD_METADATA(m, "self_signed_tls_client_auth needs jwks with its "
                                   "certificate's key (x5c)");
        size_t i;
        json_t *k;
        json_array_foreach(keys, i, k)
        {
            if (!json_is_object(k) || !json_is_string(json_object_get(k, "kty")) ||
                json_object_get(k, "d") != NULL)
                return BAD_METADATA(m, "jwks holds a key that is not a public JWK");
        }
        json_object_set(out, "jwks", jwks);
    }
    json_t *bound = json_object_get(in, "tls_client_certificate_bound_access_tokens");
    if (bound != NULL && !json_is_boolean(bound))
        return BAD_METADATA(m, "tls_client_certificate_bound_access_tokens is not a boolean");
    if (bound != NULL)
        json_object_set(out, "tls_client_certificate_bound_access_tokens", bound);
    return MANDATE_OK;
}

static mandate_rc check_redirect_uris(metadata_check *m, json_t *in, json_t *out)
{
    json_t *v = json_object_get(in, "redirect_uris");
    size_t i;
    json_t *item;
    if (v == NULL)
        return refuse(m, "invalid_redirect_uri", "redirect_uris is missing");
    mandate_rc rc =
        string_set(m, v, "redirect_uris", MANDATE_REDIRECT_URIS_MAX, "invalid_redirect_uri");
    if (rc != MANDATE_OK)
        return rc;
    json_array_foreach(v, i, item)
    {
        const char *why;
        if (!mandate_redirect_uri_check(json_string_value(item), &why))
            return refuse(m, "invalid_redirect_uri",
                          "redirect_uris[%zu] '%.100s' is refused: %s", i,
                          json_string_value(item), why);
    }
    json_object_set(out, "redirect_uris", v);
    return MANDATE_OK;
}

static mandate_rc check_types(metadata_check *m, json_t *in, json_t *out, bool is_public)
{
    json_t *grants = json_object_get(in, "grant_types");
    json_t *responses = json_object_get(in, "response_types");
    size_t i;
    json_t *item;
    mandate_rc rc;
    /* RFC 7591 §2: the defaults */
    json_t *g = grants ? json_incref(grants) : json_pack("[s]", "authorization_code");
    json_t *r = responses ? json_incref(responses) : json_pack("[s]", "code");
    if ((rc = string_set(m, g, "grant_types", 8, "invalid_client_metadata")) != MANDATE_OK ||
        (rc = string_set(m, r, "response_types", 4, "invalid_client_metadata")) != MANDATE_OK)
        goto done;
    json_array_foreach(g, i, item)
    {
        if (!grant_allowed(json_string_value(item), is_public)) {
            rc = BAD_METADATA(m, "grant_types: '%.80s' is not a grant a%s %s client may use",
                              json_string_value(item), is_public ? " public" : "",
                              source_name(m->source));
            goto done;
        }
    }
    if (json_array_size(r) != 1 ||
        strcmp(json_string_value(json_array_get(r, 0)), "code") != 0) {
        rc = BAD_METADATA(m, "response_types: only \"code\" is supported");
        goto done;
    }
    /* RFC 7591 §2.1: code goes with authorization_code; and a public
     * client has no other way to a token */
    if (!array_has(g, "authorization_code")) {
        rc = BAD_METADATA(m, "grant_types must hold authorization_code (response type code)");
        goto done;
    }
    json_object_set(out, "grant_types", g);
    json_object_set(out, "response_types", r);
done:
    json_decref(g);
    json_decref(r);
    return rc;
}

/* OpenID Connect Dynamic Client Registration §2, initiate_login_uri: where
 * an IdP-initiated sign-in sends the browser, for the client to start its
 * own authorization request (Core §4). https, or http to a loopback host
 * (a native client's own listener), as a redirect URI. */
static mandate_rc check_initiate_login_uri(metadata_check *m, json_t *in, json_t *out)
{
    json_t *v = json_object_get(in, "initiate_login_uri");
    if (v == NULL)
        return MANDATE_OK;
    const char *uri = json_string_value(v), *why = NULL;
    if (uri == NULL ||
        (strncasecmp(uri, "https://", 8) != 0 && strncasecmp(uri, "http://", 7) != 0))
        return BAD_METADATA(m, "initiate_login_uri must be an https URL");
    if (!mandate_redirect_uri_check(uri, &why))
        return BAD_METADATA(m, "initiate_login_uri '%.100s' is refused: %s", uri, why);
    json_object_set(out, "initiate_login_uri", v);
    return MANDATE_OK;
}

static mandate_rc check_texts(metadata_check *m, json_t *in, json_t *out)
{
    static const struct {
        const char *member;
        size_t max;
        bool link;
    } texts[] = {
        {"client_name", NAME_MAX_LEN, false},
        {"client_uri", LINK_MAX_LEN, true},
        {"logo_uri", LINK_MAX_LEN, true},
        {"tos_uri", LINK_MAX_LEN, true},
        {"policy_uri", LINK_MAX_LEN, true},
        {"software_id", SOFTWARE_ID_MAX_LEN, false},
        {"software_version", SOFTWARE_VERSION_MAX_LEN, false},
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        json_t *v = json_object_get(in, texts[i].member);
        if (v == NULL)
            continue;
        const char *s = json_string_value(v);
        if (s == NULL || !text_ok(s, texts[i].max))
            return BAD_METADATA(m,
                                "%s must be text of 1 to %zu bytes without control characters",
                                texts[i].member, texts[i].max);
        if (texts[i].link && !link_ok(s))
            return BAD_METADATA(m, "%s must be an https URL (it is shown, never fetched)",
                                texts[i].member);
        json_object_set(out, texts[i].member, v);
    }
    json_t *scope = json_object_get(in, "scope");
    if (scope != NULL) {
        const char *s = json_string_value(scope), *cur = s, *w;
        size_t n;
        if (s == NULL || strlen(s) > SCOPE_MAX_LEN)
            return BAD_METADATA(m, "scope must be a string of at most %d bytes", SCOPE_MAX_LEN);
        while (mandate_word_list_next(&cur, &w, &n))
            if (!mandate_scope_token_valid(w, n))
                return BAD_METADATA(m, "scope '%.*s' is not a scope token",
                                    (int)(n > 80 ? 80 : n), w);
        json_object_set(out, "scope", scope);
    }
    /* RFC 9449 §5.2: the client's access tokens are always DPoP-bound */
    json_t *dpop = json_object_get(in, "dpop_bound_access_tokens");
    if (dpop != NULL && !json_is_boolean(dpop))
        return BAD_METADATA(m, "dpop_bound_access_tokens must be true or false");
    if (json_is_true(dpop))
        json_object_set(out, "dpop_bound_access_tokens", dpop);
    return check_initiate_login_uri(m, in, out);
}

mandate_rc mandate_client_metadata_check(const char *text, size_t len, size_t max_len,
                                         mandate_metadata_source source, const char *url,
                                         json_t **normalised_r, const char **oauth_error_r,
                                         mandate_error *err)
{
    metadata_check m = {.source = source, .err = err};
    json_error_t jerr;
    json_t *in = NULL, *out = NULL;
    const char *method;
    mandate_rc rc;
    *normalised_r = NULL;
    *oauth_error_r = NULL;
    if (len > max_len) {
        rc = BAD_METADATA(&m, "the metadata is %zu bytes, over %zu", len, max_len);
        goto done;
    }
    /* duplicate members are refused: two readers could take different ones */
    in = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(in)) {
        rc = BAD_METADATA(&m, "the metadata is not a JSON object%s%.120s",
                          in == NULL ? ": " : "", in == NULL ? jerr.text : "");
        goto done;
    }
    json_t *id = json_object_get(in, "client_id");
    if (source == MANDATE_METADATA_DOCUMENT) {
        /* the draft's §4: simple string comparison, no normalisation */
        if (!json_is_string(id)) {
            rc = BAD_METADATA(&m, "the document has no client_id");
            goto done;
        }
        if (url == NULL || strcmp(json_string_value(id), url) != 0) {
            rc = BAD_METADATA(&m, "the document's client_id '%.100s' is not its URL",
                              json_string_value(id));
            goto done;
        }
    }
    if (source != MANDATE_METADATA_REGISTRATION &&
        (json_object_get(in, "client_secret") != NULL ||
         json_object_get(in, "client_secret_expires_at") != NULL)) {
        rc = BAD_METADATA(&m, "the metadata holds a client_secret: a %s client has none",
                          source_name(source));
        goto done;
    }
    out = json_object();
    if ((rc = check_auth_method(&m, in, &method)) != MANDATE_OK ||
        (rc = check_redirect_uris(&m, in, out)) != MANDATE_OK ||
        /* what anyone may register stays at the sign-in's grants, whatever
         * it authenticates by */
        (rc = check_types(&m, in, out,
                          strcmp(method, "none") == 0 || source != MANDATE_METADATA_ADMIN)) !=
            MANDATE_OK ||
        (rc = check_certificate(&m, in, out, method)) != MANDATE_OK ||
        (rc = check_texts(&m, in, out)) != MANDATE_OK)
        goto done;
    json_object_set_new(out, "token_endpoint_auth_method", json_string(method));
    json_object_set_new(out, "registered_by", json_string(source_name(source)));
    *normalised_r = out;
    out = NULL;
done:
    json_decref(in);
    json_decref(out);
    *oauth_error_r = m.oauth_error;
    return rc;
}

/* --- addresses ------------------------------------------------------------------- */

typedef struct v4_range {
    uint32_t net;
    unsigned bits;
    const char *why;
} v4_range;

static const v4_range v4_refused[] = {
    {0x00000000u, 8, "\"this network\" (0.0.0.0/8)"},
    {0x0a000000u, 8, "private (10.0.0.0/8)"},
    {0x64400000u, 10, "shared address space (100.64.0.0/10, carrier-grade NAT)"},
    {0x7f000000u, 8, "loopback (127.0.0.0/8)"},
    {0xa9fe0000u, 16, "link-local (169.254.0.0/16, cloud metadata services)"},
    {0xac100000u, 12, "private (172.16.0.0/12)"},
    {0xc0000000u, 24, "IETF protocol assignments (192.0.0.0/24)"},
    {0xc0000200u, 24, "documentation (192.0.2.0/24)"},
    {0xc0a80000u, 16, "private (192.168.0.0/16)"},
    {0xc6120000u, 15, "benchmarking (198.18.0.0/15)"},
    {0xc6336400u, 24, "documentation (198.51.100.0/24)"},
    {0xcb007100u, 24, "documentation (203.0.113.0/24)"},
    {0xe0000000u, 4, "multicast (224.0.0.0/4)"},
    {0xf0000000u, 4, "reserved or broadcast (240.0.0.0/4)"},
};

static bool v4_public(uint32_t a, const char **why_r)
{
    for (size_t i = 0; i < sizeof(v4_refused) / sizeof(v4_refused[0]); i++) {
        uint32_t mask = 0xffffffffu << (32 - v4_refused[i].bits);
        if ((a & mask) == v4_refused[i].net) {
            *why_r = v4_refused[i].why;
            return false;
        }
    }
    return true;
}

static uint32_t v4_at(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool prefix_is(const unsigned char *a, const unsigned char *prefix, unsigned bits)
{
    for (unsigned i = 0; i < bits / 8; i++)
        if (a[i] != prefix[i])
            return false;
    unsigned rest = bits % 8;
    return rest == 0 || (a[bits / 8] >> (8 - rest)) == (prefix[bits / 8] >> (8 - rest));
}

static bool v6_public(const unsigned char *a, const char **why_r)
{
    static const unsigned char zero[16] = {0};
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b};
    static const struct {
        unsigned char prefix[4];
        unsigned bits;
        const char *why;
    } refused[] = {
        {{0x00, 0x64, 0xff, 0x9b},
         32,
         "NAT64 other than 64:ff9b::/96 (64:ff9b::/32)"}, /* after the /96 */
        {{0x01, 0x00}, 16, "discard-only and reserved (100::/16)"},
        {{0x20, 0x01, 0x00, 0x00}, 32, "Teredo (2001::/32)"},
        {{0x20, 0x01, 0x0d, 0xb8}, 32, "documentation (2001:db8::/32)"},
        {{0xfc}, 7, "unique local (fc00::/7)"},
        {{0xfe, 0x80}, 10, "link-local (fe80::/10)"},
        {{0xfe, 0xc0}, 10, "site-local (fec0::/10)"},
        {{0xff}, 8, "multicast (ff00::/8)"},
    };
    if (memcmp(a, zero, 15) == 0 && (a[15] == 0 || a[15] == 1)) {
        *why_r = a[15] == 0 ? "unspecified (::)" : "loopback (::1)";
        return false;
    }
    /* forms that carry an IPv4 address are judged by it */
    if (memcmp(a, mapped, 12) == 0 || memcmp(a, nat64, 12) == 0)
        return v4_public(v4_at(a + 12), why_r);
    if (memcmp(a, zero, 12) == 0) {
        *why_r = "IPv4-compatible (::/96, deprecated)";
        return false;
    }
    if (a[0] == 0x20 && a[1] == 0x02) /* 6to4: 2002:AABB:CCDD::/48 */
        return v4_public(v4_at(a + 2), why_r);
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        if (prefix_is(a, refused[i].prefix, refused[i].bits)) {
            *why_r = refused[i].why;
            return false;
        }
    }
    return true;
}

bool mandate_client_document_address_check(const struct sockaddr *addr, const char **why_r)
{
    const char *why = NULL;
    bool ok;
    if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)(const void *)addr;
        ok = v4_public(ntohl(in4->sin_addr.s_addr), &why);
    } else if (addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)addr;
        ok = v6_public(in6->sin6_addr.s6_addr, &why);
    } else {
        ok = false;
        why = "not an IP address";
    }
    if (why_r != NULL)
        *why_r = ok ? NULL : why;
    return ok;
}

/* --- the clients made here --------------------------------------------------------- */

static size_t list_text_len(char *const *list)
{
    size_t n = 1;
    for (; list != NULL && *list != NULL; list++)
        n += strlen(*list) + 1;
    return n;
}

const char *mandate_client_allowed_scopes(mandate_pool *pool, const mandate_config *cfg,
                                          char *const *configured, const char *requested)
{
    size_t cap = list_text_len(configured), used = 0;
    size_t lists = configured != NULL ? 1 : cfg->target_count;
    for (size_t t = 0; configured == NULL && t < cfg->target_count; t++)
        cap += list_text_len(cfg->targets[t].scopes);
    char *out = mandate_pool_alloc(pool, cap);
    for (size_t t = 0; t < lists; t++) {
        char *const *list = configured != NULL ? configured : cfg->targets[t].scopes;
        for (; list != NULL && *list != NULL; list++)
            if (requested == NULL || mandate_word_list_has(requested, *list, strlen(*list)))
                mandate_word_list_add(out, &used, *list, strlen(*list));
    }
    return used > 0 ? out : NULL;
}

const char *mandate_client_allowed_audiences(mandate_pool *pool, const mandate_config *cfg,
                                             char *const *configured)
{
    size_t cap = list_text_len(configured), used = 0;
    for (size_t t = 0; t < cfg->target_count; t++)
        cap += strlen(cfg->targets[t].audience) + 1;
    char *out = mandate_pool_alloc(pool, cap);
    if (configured != NULL)
        for (char *const *a = configured; *a != NULL; a++)
            mandate_word_list_add(out, &used, *a, strlen(*a));
    else
        for (size_t t = 0; t < cfg->target_count; t++)
            mandate_word_list_add(out, &used, cfg->targets[t].audience,
                                  strlen(cfg->targets[t].audience));
    return used > 0 ? out : NULL;
}

static bool any_backend_signs_in(const mandate_runtime *rt)
{
    for (size_t i = 0; rt != NULL && i < mandate_runtime_instance_count(rt); i++)
        if (mandate_backend_signs_in(mandate_runtime_instance(rt, i)))
            return true;
    return false;
}

bool mandate_public_clients_possible(const mandate_runtime *rt)
{
    return any_backend_signs_in(rt);
}

bool mandate_client_documents_offered(const mandate_runtime *rt)
{
    return rt != NULL && mandate_runtime_config(rt)->client_documents.enabled &&
           any_backend_signs_in(rt);
}

/* The client a checked document makes (see mandate_client_document_resolve). */
static void document_client(mandate_pool *pool, const mandate_config *cfg, const char *url,
                            json_t *meta, int64_t fetched_at, mandate_client *c)
{
    const mandate_client_documents_conf *dc = &cfg->client_documents;
    memset(c, 0, sizeof(*c));
    c->client_id = mandate_pool_strdup(pool, url);
    c->tenant = dc->tenant;
    const char *name = json_string_value(json_object_get(meta, "client_name"));
    c->name = name != NULL ? mandate_pool_strdup(pool, name) : NULL;
    c->scopes = mandate_client_allowed_scopes(
        pool, cfg, dc->scopes, json_string_value(json_object_get(meta, "scope")));
    c->default_scopes = c->scopes;
    c->audiences = mandate_client_allowed_audiences(pool, cfg, dc->audiences);
    c->status = MANDATE_CLIENT_ENABLED;
    c->created_at = fetched_at;
    c->updated_at = fetched_at;
    char *text = json_dumps(meta, JSON_COMPACT);
    c->metadata = mandate_pool_strdup(pool, text);
    free(text);
}

/* --- fetching ------------------------------------------------------------------------ */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;
/* fetches under way on HTTP workers in this process (fetch_document) */
static atomic_uint fetching;

/* The addresses with fetches set aside, and how many each has: a few
 * dozen at most (the set-aside queue is short), so a list. */
#define FETCHING_ADDRESSES 64
static pthread_mutex_t fetching_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char key[MANDATE_PEER_MAX];
    unsigned count; /* 0: a free entry */
} fetching_by[FETCHING_ADDRESSES];

bool mandate_client_document_fetch_claim(const char *key)
{
    pthread_mutex_lock(&fetching_lock);
    int found = -1, free_entry = -1;
    for (int i = 0; i < FETCHING_ADDRESSES && found < 0; i++) {
        if (fetching_by[i].count == 0)
            free_entry = free_entry < 0 ? i : free_entry;
        else if (strcmp(fetching_by[i].key, key) == 0)
            found = i;
    }
    bool claimed = false;
    if (found >= 0 && fetching_by[found].count < MANDATE_CLIENT_DOCUMENT_FETCHES_PER_ADDRESS) {
        fetching_by[found].count++;
        claimed = true;
    } else if (found < 0 && free_entry >= 0) {
        snprintf(fetching_by[free_entry].key, sizeof(fetching_by[free_entry].key), "%s", key);
        fetching_by[free_entry].count = 1;
        claimed = true;
    }
    pthread_mutex_unlock(&fetching_lock);
    return claimed;
}

void mandate_client_document_fetch_release(const char *key)
{
    pthread_mutex_lock(&fetching_lock);
    for (int i = 0; i < FETCHING_ADDRESSES; i++)
        if (fetching_by[i].count > 0 && strcmp(fetching_by[i].key, key) == 0) {
            fetching_by[i].count--;
            break;
        }
    pthread_mutex_unlock(&fetching_lock);
}

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

typedef struct fetch {
    const mandate_client_documents_conf *conf;
    char *body;
    size_t len, max;
    bool overflow;
    char content_type[128];
    char cache_control[256];
    bool address_refused;
    char refused_address[INET6_ADDRSTRLEN];
    const char *refused_why;
} fetch;

/* Every address curl is about to connect to, the DNS answer's or a
 * literal's, is judged here, before the connection: a name that resolves
 * (or is rebound) to an inner address is caught on the address itself. */
static curl_socket_t open_socket(void *ctx, curlsocktype purpose, struct curl_sockaddr *address)
{
    fetch *f = ctx;
    const char *why;
    if (purpose != CURLSOCKTYPE_IPCXN)
        return CURL_SOCKET_BAD;
    if (!f->conf->allow_private_addresses &&
        !mandate_client_document_address_check(&address->addr, &why)) {
        f->address_refused = true;
        f->refused_why = why;
        const void *raw =
            address->family == AF_INET6
                ? (const void *)&((const struct sockaddr_in6 *)(const void *)&address->addr)
                      ->sin6_addr
                : (const void *)&((const struct sockaddr_in *)(const void *)&address->addr)
                      ->sin_addr;
        if (inet_ntop(address->family, raw, f->refused_address, sizeof(f->refused_address)) ==
            NULL)
            snprintf(f->refused_address, sizeof(f->refused_address), "?");
        return CURL_SOCKET_BAD;
    }
    int type = address->socktype;
#ifdef SOCK_CLOEXEC
    type |= SOCK_CLOEXEC;
#endif
    return socket(address->family, type, address->protocol);
}

/* The body, read only up to the limit: a larger one stops the transfer
 * there (returning less than given makes curl fail with a write error). */
static size_t collect(char *ptr, size_t size, size_t nmemb, void *ctx)
{
    fetch *f = ctx;
    size_t n = size * nmemb;
    if (n > f->max - f->len) {
        f->overflow = true;
        return 0;
    }
    memcpy(f->body + f->len, ptr, n);
    f->len += n;
    f->body[f->len] = '\0';
    return n;
}

static void header_value(char *dst, size_t cap, const char *v, size_t n, bool append)
{
    while (n > 0 && (*v == ' ' || *v == '\t'))
        v++, n--;
    while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
        n--;
    size_t used = append ? strlen(dst) : 0;
    if (append && used > 0 && used + 2 < cap) {
        memcpy(dst + used, ", ", 2);
        used += 2;
    }
    if (n > cap - used - 1)
        n = cap - used - 1;
    memcpy(dst + used, v, n);
    dst[used + n] = '\0';
}

static size_t on_header(char *line, size_t size, size_t nitems, void *ctx)
{
    fetch *f = ctx;
    size_t n = size * nitems;
    if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        /* a new response (none other is expected: no redirect is followed) */
        f->content_type[0] = f->cache_control[0] = '\0';
    } else if (n > 13 && strncasecmp(line, "Content-Type:", 13) == 0) {
        header_value(f->content_type, sizeof(f->content_type), line + 13, n - 13, false);
    } else if (n > 14 && strncasecmp(line, "Cache-Control:", 14) == 0) {
        header_value(f->cache_control, sizeof(f->cache_control), line + 14, n - 14, true);
    }
    return n;
}

static bool json_content_type(const char *ct)
{
    size_t n = strcspn(ct, ";");
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    return n == 16 && strncasecmp(ct, "application/json", 16) == 0;
}

/* Seconds to keep a document by its Cache-Control: max-age within the
 * floor and the ceiling; the floor when it has none, or says no-store or
 * no-cache (an AS may cache, the draft's §5.2; a floor keeps a client from
 * making us fetch on every request). */
static int64_t cache_seconds(const char *cc, const mandate_client_documents_conf *conf)
{
    int64_t age = -1;
    bool floor = false;
    const char *p = cc;
    while (*p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        size_t n = strcspn(p, ",");
        if ((n >= 8 && strncasecmp(p, "no-store", 8) == 0) ||
            (n >= 8 && strncasecmp(p, "no-cache", 8) == 0)) {
            floor = true;
        } else if (n > 8 && strncasecmp(p, "max-age=", 8) == 0) {
            const char *d = p + 8;
            if (*d == '"')
                d++;
            int64_t v = 0;
            bool digits = false;
            while (is_digit(*d) && v < INT64_C(1) << 40) {
                v = v * 10 + (*d++ - '0');
                digits = true;
            }
            if (digits)
                age = v;
        }
        p += n;
    }
    if (floor || age < 0)
        return conf->min_cache;
    if (age < conf->min_cache)
        return conf->min_cache;
    return age > conf->max_cache ? conf->max_cache : age;
}

/* GET url: MANDATE_OK with the body (in pool) and the seconds to keep it,
 * else why. *asked_r: whether the server was asked (not when the fetch
 * slots are full or curl cannot start). */
static mandate_rc fetch_document(mandate_pool *pool, const mandate_config *cfg, const char *url,
                                 bool on_worker, char **body_r, size_t *len_r, int64_t *keep_r,
                                 bool *asked_r, mandate_error *err)
{
    const mandate_client_documents_conf *dc = &cfg->client_documents;
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return mandate_error_set(err, MANDATE_ERROR, "curl_global_init failed: %s",
                                 curl_easy_strerror(curl_init_rc));
    /* the fetches anyone can ask for run on the threads kept for them, as
     * many as this limit (mandate_signin_client); those made on an HTTP
     * worker (a copy expired at introspection, at the gateway, at a
     * consent) are held to the same limit apart */
    unsigned limit = mandate_config_document_fetches(cfg);
    if (on_worker && atomic_fetch_add(&fetching, 1) >= limit) {
        atomic_fetch_sub(&fetching, 1);
        return mandate_error_set(err, MANDATE_TEMPFAIL,
                                 "%u client documents are being fetched already: try again",
                                 limit);
    }
    CURL *curl = curl_easy_init();
    if (curl == NULL) {
        if (on_worker)
            atomic_fetch_sub(&fetching, 1);
        return mandate_error_set(err, MANDATE_ERROR, "curl_easy_init failed");
    }
    fetch f = {.conf = dc, .max = (size_t)dc->max_bytes};
    f.body = mandate_pool_alloc(pool, f.max + 1);
    char curl_err[CURL_ERROR_SIZE] = "";
    struct curl_slist *headers = curl_slist_append(NULL, "Accept: application/json");

    curl_easy_setopt(curl, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
#else
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTPS);
#endif
    /* a redirect could lead anywhere the address check did not see, and the
     * draft wants the document from its own URL: never followed */
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    /* no proxy, whatever the environment says: the address judged must be
     * the one connected to */
    curl_easy_setopt(curl, CURLOPT_PROXY, "");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)dc->connect_timeout_ms);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)dc->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)dc->max_bytes);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    if (dc->ca_file != NULL)
        curl_easy_setopt(curl, CURLOPT_CAINFO, dc->ca_file);
    curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, &f);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &f);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &f);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_err);
    if (headers != NULL)
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "mandate/" PACKAGE_VERSION);

    *asked_r = true;
    CURLcode cc = curl_easy_perform(curl);
    long status = 0;
    char *location = NULL;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(curl, CURLINFO_REDIRECT_URL, &location);
    mandate_rc rc = MANDATE_OK;
    if (f.address_refused && cc != CURLE_OK)
        rc = mandate_error_set(err, MANDATE_DENIED,
                               "its host resolves to %s, %s: not fetched "
                               "(client_documents.allow_private_addresses is off)",
                               f.refused_address, f.refused_why);
    else if (f.overflow || cc == CURLE_FILESIZE_EXCEEDED)
        rc = mandate_error_set(err, MANDATE_INVALID,
                               "the document is over %zu bytes (client_documents.max_bytes): "
                               "not read further",
                               f.max);
    else if (cc == CURLE_OPERATION_TIMEDOUT)
        rc = mandate_error_set(err, MANDATE_TEMPFAIL,
                               "no whole answer within %lld ms (client_documents.timeout_ms)",
                               (long long)dc->timeout_ms);
    else if (cc != CURLE_OK)
        rc = mandate_error_set(err, MANDATE_TEMPFAIL, "cannot fetch it: %s",
                               curl_err[0] ? curl_err : curl_easy_strerror(cc));
    else if (status >= 300 && status < 400)
        rc = mandate_error_set(err, MANDATE_INVALID,
                               "its server answered %ld, a redirect%s%.100s: redirects are "
                               "never followed (the document must be at its client_id)",
                               status, location ? " to " : "", location ? location : "");
    else if (status == 429 || status >= 500)
        rc = mandate_error_set(err, MANDATE_TEMPFAIL, "its server answered %ld", status);
    else if (status != 200)
        rc =
            mandate_error_set(err, MANDATE_INVALID, "its server answered %ld, not 200", status);
    else if (!json_content_type(f.content_type))
        rc = mandate_error_set(err, MANDATE_INVALID,
                               "its Content-Type is '%.60s', not application/json",
                               f.content_type[0] ? f.content_type : "(none)");
    curl_easy_cleanup(curl);
    curl_slist_free_all(headers);
    if (on_worker)
        atomic_fetch_sub(&fetching, 1);
    if (rc != MANDATE_OK)
        return rc;
    *body_r = f.body;
    *len_r = f.len;
    *keep_r = cache_seconds(f.cache_control, dc);
    log_info("client document fetched: url=%s bytes=%zu cache_control='%s' kept=%llds", url,
             f.len, f.cache_control, (long long)*keep_r);
    return MANDATE_OK;
}

static bool host_allowed(const mandate_client_documents_conf *dc, const char *host,
                         mandate_error *err)
{
    for (char **p = dc->deny_hosts; p != NULL && *p != NULL; p++)
        if (mandate_client_host_matches(*p, host)) {
            mandate_error_set(err, MANDATE_DENIED,
                              "host '%s' is denied (client_documents.deny_hosts '%s')", host,
                              *p);
            return false;
        }
    if (dc->allow_hosts == NULL || dc->allow_hosts[0] == NULL)
        return true;
    for (char **p = dc->allow_hosts; *p != NULL; p++)
        if (mandate_client_host_matches(*p, host))
            return true;
    mandate_error_set(err, MANDATE_DENIED,
                      "host '%s' is not among client_documents.allow_hosts", host);
    return false;
}

/* A stored or fetched document, checked again as now configured. */
static mandate_rc accept_document(mandate_pool *pool, const mandate_config *cfg,
                                  const char *url, const char *text, size_t len,
                                  int64_t fetched_at, mandate_client *client_r,
                                  mandate_error *err)
{
    json_t *meta;
    const char *oauth_error;
    mandate_rc rc =
        mandate_client_metadata_check(text, len, (size_t)cfg->client_documents.max_bytes,
                                      MANDATE_METADATA_DOCUMENT, url, &meta, &oauth_error, err);
    if (rc != MANDATE_OK)
        return rc;
    document_client(pool, cfg, url, meta, fetched_at, client_r);
    json_decref(meta);
    return MANDATE_OK;
}

/* A fetch that failed or a document refused, remembered for min_cache
 * seconds as a copy without a document: anyone can name a URL at the
 * authorization endpoint, and naming it again must not fetch again. */
static void remember_failure(const mandate_instance *store,
                             const mandate_client_documents_conf *dc, const char *url,
                             int64_t now)
{
    mandate_error err = {0};
    mandate_client_document failed = {
        .url = url, .document = NULL, .fetched_at = now, .expires_at = now + dc->min_cache};
    if (dc->min_cache > 0 &&
        mandate_store_client_document_put(store, &failed, &err) != MANDATE_OK)
        log_warning("client document %s: its failure cannot be remembered: %s", url,
                    err.message);
}

mandate_rc mandate_client_document_resolve_as(mandate_runtime *rt, mandate_pool *pool,
                                              const char *url, mandate_document_missing missing,
                                              mandate_client *client_r, mandate_error *err)
{
    const mandate_config *cfg = mandate_runtime_config(rt);
    const mandate_client_documents_conf *dc = &cfg->client_documents;
    const mandate_instance *store = mandate_runtime_store(rt);
    const char *why;
    memset(client_r, 0, sizeof(*client_r));
    if (!dc->enabled)
        return mandate_error_set(err, MANDATE_DENIED,
                                 "client ID metadata documents are off "
                                 "(client_documents.enabled)");
    if (!mandate_client_document_url_check(url, &why))
        return mandate_error_set(err, MANDATE_INVALID,
                                 "client_id is not a client ID metadata document URL: %s", why);
    if (!host_allowed(dc, mandate_client_document_host(pool, url), err))
        return MANDATE_DENIED;

    int64_t now = mandate_clock_now();
    mandate_client_document cached;
    mandate_rc rc = mandate_store_client_document_get(store, pool, url, &cached, err);
    bool have = rc == MANDATE_OK && cached.document != NULL;
    if (rc != MANDATE_OK && rc != MANDATE_NOT_FOUND)
        return rc;
    if (rc == MANDATE_OK && cached.document == NULL && cached.expires_at > now)
        return mandate_error_set(err, MANDATE_TEMPFAIL,
                                 "its fetch %llds ago failed (the log says why): not fetched "
                                 "again for %llds (client_documents.min_cache)",
                                 (long long)(now - cached.fetched_at),
                                 (long long)(cached.expires_at - now));
    if (have && cached.expires_at > now) {
        mandate_error cached_err = {0};
        if (accept_document(pool, cfg, url, cached.document, strlen(cached.document),
                            cached.fetched_at, client_r, &cached_err) == MANDATE_OK)
            return MANDATE_OK;
        /* refused as configured now (a smaller max_bytes, say): fetch it */
        log_info("client document %s: the stored copy is refused now (%s): fetching it", url,
                 cached_err.message);
        have = false;
    }

    if (missing == MANDATE_DOCUMENT_SAY_FETCH)
        return mandate_error_set(err, MANDATE_NEXT, "no fresh copy is kept: to be fetched");
    char *body = NULL;
    size_t len = 0;
    int64_t keep = 0;
    bool asked = false;
    mandate_error fetch_err = {0};
    bool on_worker = missing == MANDATE_DOCUMENT_FETCH;
    rc = on_worker || missing == MANDATE_DOCUMENT_FETCH_ASIDE
             ? fetch_document(pool, cfg, url, on_worker, &body, &len, &keep, &asked, &fetch_err)
             : mandate_error_set(&fetch_err, MANDATE_TEMPFAIL,
                                 "no fresh copy is kept, and it is not fetched for this "
                                 "request");
    if (rc == MANDATE_OK) {
        rc = accept_document(pool, cfg, url, body, len, now, client_r, err);
        if (rc != MANDATE_OK) {
            remember_failure(store, dc, url, now);
            return rc;
        }
        mandate_client_document doc = {
            .url = url, .document = body, .fetched_at = now, .expires_at = now + keep};
        rc = mandate_store_client_document_put(store, &doc, err);
        if (rc != MANDATE_OK) {
            /* a client never outlives the copy that vouches for it */
            memset(client_r, 0, sizeof(*client_r));
            log_error("client document %s: cannot be stored: %s", url, err->message);
        }
        return rc;
    }
    /* the server cannot be reached: a copy not too stale keeps sign-ins
     * going through the client's outage; a refused answer never does */
    if (rc == MANDATE_TEMPFAIL && have && now <= cached.expires_at + dc->max_stale &&
        accept_document(pool, cfg, url, cached.document, strlen(cached.document),
                        cached.fetched_at, client_r, err) == MANDATE_OK) {
        log_warning("client document %s: %s; serving the copy fetched %llds ago "
                    "(client_documents.max_stale)",
                    url, fetch_err.message, (long long)(now - cached.fetched_at));
        return MANDATE_OK;
    }
    memset(client_r, 0, sizeof(*client_r));
    if (asked)
        remember_failure(store, dc, url, now);
    *err = fetch_err;
    return rc;
}

mandate_rc mandate_client_document_resolve(mandate_runtime *rt, mandate_pool *pool,
                                           const char *url, mandate_client *client_r,
                                           mandate_error *err)
{
    return mandate_client_document_resolve_as(rt, pool, url, MANDATE_DOCUMENT_FETCH, client_r,
                                              err);
}

/* --- configuration ------------------------------------------------------------------ */

static bool host_pattern_ok(const char *p)
{
    if (strncmp(p, "*.", 2) == 0)
        p += 2;
    for (const char *c = p; *c != '\0'; c++)
        if (*c >= 'A' && *c <= 'Z')
            return false;
    return host_name_ok(p, strlen(p)) || (strchr(p, ':') != NULL && strlen(p) < 46 &&
                                          inet_pton(AF_INET6, p, &(struct in6_addr){0}) == 1);
}

static bool check_clients_keys(const config_t *file, const char *group, const char *tenant,
                               char *const *scopes, char *const *audiences, mandate_diag *diag)
{
    bool ok = true;
    char key[64];
    snprintf(key, sizeof(key), "%s.tenant", group);
    if (!mandate_client_id_valid(tenant)) {
        mandate_diag_add_at(diag, config_lookup(file, key),
                            "'%s' must be letters, digits, '-', '.', '_' or '~'", key);
        ok = false;
    }
    snprintf(key, sizeof(key), "%s.scopes", group);
    for (char *const *s = scopes; s != NULL && *s != NULL; s++)
        if (!mandate_scope_token_valid(*s, strlen(*s))) {
            mandate_diag_add_at(diag, config_lookup(file, key), "'%s': '%s' is not a scope",
                                key, *s);
            ok = false;
        }
    snprintf(key, sizeof(key), "%s.audiences", group);
    for (char *const *a = audiences; a != NULL && *a != NULL; a++)
        if (!mandate_audience_uri_valid(*a, strlen(*a))) {
            mandate_diag_add_at(diag, config_lookup(file, key),
                                "'%s': '%s' is not an absolute URI", key, *a);
            ok = false;
        }
    return ok;
}

bool mandate_client_registration_config_check(const mandate_config *cfg, const config_t *file,
                                              mandate_diag *diag)
{
    const mandate_client_documents_conf *dc = &cfg->client_documents;
    bool ok = check_clients_keys(file, "client_documents", dc->tenant, dc->scopes,
                                 dc->audiences, diag);
    ok = check_clients_keys(file, "registration", cfg->registration.tenant,
                            cfg->registration.scopes, cfg->registration.audiences, diag) &&
         ok;
    if (dc->min_cache > dc->max_cache) {
        mandate_diag_add_at(diag, config_lookup(file, "client_documents.min_cache"),
                            "'client_documents.min_cache' (%lld) is over max_cache (%lld)",
                            (long long)dc->min_cache, (long long)dc->max_cache);
        ok = false;
    }
    const char *lists[] = {"client_documents.allow_hosts", "client_documents.deny_hosts"};
    char **values[] = {dc->allow_hosts, dc->deny_hosts};
    for (size_t i = 0; i < 2; i++)
        for (char **p = values[i]; p != NULL && *p != NULL; p++)
            if (!host_pattern_ok(*p)) {
                mandate_diag_add_at(diag, config_lookup(file, lists[i]),
                                    "'%s': '%s' is not a lower-case host name, an address or "
                                    "\"*.\" and a domain",
                                    lists[i], *p);
                ok = false;
            }
    return ok;
}
