/* libFuzzer harness: the checks of clients that are not pre-registered
 * (core/client-documents.c): mandate_client_metadata_check (a Client ID
 * Metadata Document with its URL, an RFC 7591 registration request, and
 * mandatectl's metadata), mandate_client_document_url_check and
 * mandate_client_document_host, mandate_redirect_uri_check and
 * mandate_client_host_matches. Nothing is fetched: the document is the
 * input, as mandate_client_document_resolve hands a fetched body over.
 *
 * Input: up to four parts split at FUZZ_SEP ("\n\f\n"):
 *   0  the metadata (JSON text, not NUL-terminated: exactly its bytes)
 *   1  a URL: the document's own URL (its client_id must be it), also fed
 *      to the URL checks and to mandate_redirect_uri_check
 *   2  a host pattern ("*.example.com" or a name), matched against part 1's
 *      host and against part 1 itself
 *   3  control byte 0 (absent: 0): bits 0-1 the source: document,
 *      registration, admin, or a document whose URL is its own client_id
 *      member (so that the checks past the client_id are reached easily);
 *      bit 2: max_len 256 instead of 16 KiB
 *
 * Invariants (abort):
 *   - metadata accepted: a normalised object of only the members Mandate
 *     knows, registered_by the source; for a document, the input's
 *     client_id is exactly the URL; no client_secret nor
 *     client_secret_expires_at (for a document no auth method but "none",
 *     for a registration "none" or a certificate, RFC 8705, whose members
 *     only a registration carries); 1 to 16 distinct redirect_uris, each
 *     passing mandate_redirect_uri_check; grant_types holding
 *     authorization_code (and for a public client or one not made by an
 *     admin nothing but it and refresh_token), response_types ["code"]; client_uri, logo_uri,
 *     tos_uri and policy_uri https URLs without a space or a control
 *     character; and checking the normalised text again (with client_id
 *     for a document) accepts it unchanged;
 *   - metadata refused: MANDATE_INVALID, no normalised object, the oauth
 *     error "invalid_redirect_uri" or "invalid_client_metadata", and a
 *     message that is valid UTF-8 (it becomes a JSON error_description and
 *     a page's text; the finding that it was not is fixed, its input in
 *     the corpus as regress-message-not-utf8);
 *   - a document URL: https, at most 255 bytes, no fragment, no user
 *     info, a path other than "/", printable ASCII only, no dot segment;
 *     its host non-empty, lower case, inside the URL, and the URL also a
 *     good redirect URI; a URL refused says why and has no host;
 *   - a redirect URI accepted: 1 to 2048 bytes of printable ASCII without
 *     '#'; https with a host, http only on a loopback host, or a scheme
 *     holding a '.'; never javascript:, data: or file:; refused: why;
 *   - a host pattern: "*.x" never matches "x" itself and matches only
 *     below a '.'; a name matches itself in any letter case.
 * Bounds: 64 KiB in all (a document is at most 64 KiB: max_bytes). */
#include "config.h"

#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "client-documents-private.h"
#include "fuzz-common.h"
#include "log-private.h"
#include "pool-private.h"

#define HARNESS_MAX_INPUT (64 * 1024)

static const char *const known_members[] = {
    "redirect_uris", "grant_types",      "response_types", "token_endpoint_auth_method",
    "client_name",   "client_uri",       "logo_uri",       "tos_uri",
    "policy_uri",    "software_id",      "software_version", "scope",
    "registered_by", NULL};
/* RFC 8705 §2.1.2, §2.2.2: a registration's certificate */
static const char *const certificate_members[] = {
    "tls_client_auth_subject_dn", "tls_client_auth_san_dns",   "tls_client_auth_san_uri",
    "tls_client_auth_san_ip",     "tls_client_auth_san_email", "jwks",
    "tls_client_certificate_bound_access_tokens", NULL};

static bool listed(const char *const *list, const char *s)
{
    for (; *list != NULL; list++)
        if (strcmp(*list, s) == 0)
            return true;
    return false;
}

static bool printable_ascii(const char *s, bool space_ok)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < (space_ok ? 0x20 : 0x21) || (unsigned char)*s > 0x7e)
            return false;
    return true;
}

static bool valid_utf8(const char *s)
{
    json_t *j = json_string(s);
    json_decref(j);
    return j != NULL;
}

static void check_accepted(json_t *out, json_t *in, mandate_metadata_source source,
                           const char *url, size_t max_len)
{
    static const char *const names[] = {"", "document", "registration", "admin"};
    const char *member;
    json_t *v;
    if (!json_is_object(out))
        abort();
    json_object_foreach(out, member, v)
    {
        if (!listed(known_members, member) &&
            !(source == MANDATE_METADATA_REGISTRATION && listed(certificate_members, member)))
            abort();
    }
    if (source == MANDATE_METADATA_DOCUMENT &&
        (url == NULL || !json_is_string(json_object_get(in, "client_id")) ||
         strcmp(json_string_value(json_object_get(in, "client_id")), url) != 0))
        abort();
    if (json_object_get(out, "client_secret") != NULL ||
        json_object_get(out, "client_secret_expires_at") != NULL ||
        (source != MANDATE_METADATA_REGISTRATION &&
         (json_object_get(in, "client_secret") != NULL ||
          json_object_get(in, "client_secret_expires_at") != NULL)))
        abort();
    const char *by = json_string_value(json_object_get(out, "registered_by"));
    const char *method = json_string_value(json_object_get(out, "token_endpoint_auth_method"));
    if (by == NULL || strcmp(by, names[source]) != 0 || method == NULL ||
        (source == MANDATE_METADATA_DOCUMENT && strcmp(method, "none") != 0) ||
        (source == MANDATE_METADATA_REGISTRATION && strcmp(method, "none") != 0 &&
         strcmp(method, "tls_client_auth") != 0 &&
         strcmp(method, "self_signed_tls_client_auth") != 0))
        abort();
    /* only the sign-in's grants for a public client and for any client
     * not made by an admin */
    bool sign_in_only = strcmp(method, "none") == 0 || source != MANDATE_METADATA_ADMIN;

    json_t *uris = json_object_get(out, "redirect_uris");
    size_t i, k;
    json_t *item;
    if (!json_is_array(uris) || json_array_size(uris) == 0 ||
        json_array_size(uris) > MANDATE_REDIRECT_URIS_MAX)
        abort();
    json_array_foreach(uris, i, item)
    {
        const char *u = json_string_value(item), *why = NULL;
        if (u == NULL || !mandate_redirect_uri_check(u, &why) || why != NULL)
            abort();
        for (k = 0; k < i; k++)
            if (strcmp(u, json_string_value(json_array_get(uris, k))) == 0)
                abort();
    }
    json_t *grants = json_object_get(out, "grant_types");
    bool code = false;
    json_array_foreach(grants, i, item)
    {
        const char *g = json_string_value(item);
        if (g == NULL)
            abort();
        code |= strcmp(g, "authorization_code") == 0;
        if (sign_in_only && strcmp(g, "authorization_code") != 0 &&
            strcmp(g, "refresh_token") != 0)
            abort();
    }
    json_t *responses = json_object_get(out, "response_types");
    if (!code || json_array_size(responses) != 1 ||
        strcmp(json_string_value(json_array_get(responses, 0)), "code") != 0)
        abort();
    static const char *const links[] = {"client_uri", "logo_uri", "tos_uri", "policy_uri"};
    for (i = 0; i < 4; i++) {
        const char *s = json_string_value(json_object_get(out, links[i]));
        if (json_object_get(out, links[i]) != NULL &&
            (s == NULL || strncmp(s, "https://", 8) != 0 || !printable_ascii(s, false)))
            abort();
    }
    static const char *const texts[] = {"client_name", "software_id", "software_version",
                                        "scope"};
    for (i = 0; i < 4; i++) {
        const char *s = json_string_value(json_object_get(out, texts[i]));
        if (json_object_get(out, texts[i]) != NULL && s == NULL)
            abort();
        for (; s != NULL && *s != '\0'; s++)
            if ((unsigned char)*s < 0x20 || *s == 0x7f)
                abort();
    }

    /* checked again, it is the same */
    json_t *again_in = json_deep_copy(out);
    json_object_del(again_in, "registered_by");
    if (source == MANDATE_METADATA_DOCUMENT)
        json_object_set_new(again_in, "client_id", json_string(url));
    char *text = json_dumps(again_in, JSON_COMPACT);
    json_decref(again_in);
    json_t *again = NULL;
    const char *oauth_error;
    mandate_error err = {0};
    if (strlen(text) <= max_len &&
        (mandate_client_metadata_check(text, strlen(text), max_len, source, url, &again,
                                       &oauth_error, &err) != MANDATE_OK ||
         !json_equal(again, out))) {
        fprintf(stderr, "fuzz-client-document: normalised %s refused again: %s\n", text,
                err.message);
        abort();
    }
    json_decref(again);
    free(text);
}

static void check_metadata(const fuzz_part *doc, mandate_metadata_source source,
                           const char *url, size_t max_len)
{
    /* exactly len bytes, so that ASan sees a read past them */
    char *text = malloc(doc->len ? doc->len : 1);
    if (doc->len > 0)
        memcpy(text, doc->data, doc->len);
    json_t *out = (json_t *)1;
    const char *oauth_error = (const char *)1;
    mandate_error err = {0};
    mandate_rc rc = mandate_client_metadata_check(text, doc->len, max_len, source, url, &out,
                                                  &oauth_error, &err);
    if (fuzz_debug())
        fprintf(stderr, "metadata (%d): rc %d: %s %s\n", (int)source, (int)rc,
                oauth_error ? oauth_error : "-", err.message);
    if (rc == MANDATE_OK) {
        if (oauth_error != NULL)
            abort();
        json_t *in_json = json_loadb(text, doc->len, 0, NULL);
        check_accepted(out, in_json, source, url, max_len);
        json_decref(in_json);
    } else {
        if (rc != MANDATE_INVALID || out != NULL || oauth_error == NULL ||
            (strcmp(oauth_error, "invalid_redirect_uri") != 0 &&
             strcmp(oauth_error, "invalid_client_metadata") != 0) ||
            err.message[0] == '\0')
            abort();
        if (!valid_utf8(err.message)) {
            fprintf(stderr, "fuzz-client-document: a refusal that is not UTF-8: %s\n",
                    err.message);
            abort();
        }
    }
    json_decref(out);
    free(text);
}

static void check_document_url(mandate_pool *pool, const char *url)
{
    const char *why = (const char *)1;
    bool ok = mandate_client_document_url_check(url, &why);
    const char *host = mandate_client_document_host(pool, url);
    if (ok != mandate_client_id_is_document(url))
        abort();
    if (!ok) {
        if (why == NULL || why[0] == '\0' || host != NULL)
            abort();
        return;
    }
    size_t len = strlen(url);
    if (why != NULL || strncmp(url, "https://", 8) != 0 || len > MANDATE_CLIENT_DOCUMENT_URL_MAX ||
        strchr(url, '#') != NULL || !printable_ascii(url, false))
        abort();
    const char *a = url + 8;
    size_t an = strcspn(a, "/?");
    if (memchr(a, '@', an) != NULL || a[an] != '/')
        abort();
    size_t pn = strcspn(a + an, "?");
    if (pn < 2)
        abort(); /* the path is not "/" alone */
    /* no dot segment, however encoded */
    char *path = mandate_pool_strndup(pool, a + an, pn);
    for (char *seg = strtok(path, "/"); seg != NULL; seg = strtok(NULL, "/")) {
        char plain[8];
        size_t j = 0;
        for (size_t i = 0; seg[i] != '\0' && j < sizeof(plain) - 1; j++) {
            if (strncasecmp(seg + i, "%2e", 3) == 0) {
                plain[j] = '.';
                i += 3;
            } else {
                plain[j] = seg[i++];
            }
        }
        plain[j] = '\0';
        if (strcmp(plain, ".") == 0 || strcmp(plain, "..") == 0)
            abort();
    }
    if (host == NULL || host[0] == '\0' || strchr(host, '[') || strchr(host, ']'))
        abort();
    for (const char *h = host; *h != '\0'; h++)
        if (isupper((unsigned char)*h))
            abort();
    bool inside = false;
    for (size_t i = 0; i + strlen(host) <= an && !inside; i++)
        inside = strncasecmp(a + i, host, strlen(host)) == 0;
    if (!inside)
        abort();
    const char *rwhy;
    if (!mandate_redirect_uri_check(url, &rwhy)) {
        fprintf(stderr, "fuzz-client-document: a document URL that is no redirect URI: %s\n",
                rwhy);
        abort();
    }
}

static void check_redirect_uri(const char *uri)
{
    const char *why = (const char *)1;
    bool ok = mandate_redirect_uri_check(uri, &why);
    if (!ok) {
        if (why == NULL || why[0] == '\0')
            abort();
        return;
    }
    size_t len = strlen(uri), scheme = strcspn(uri, ":");
    if (why != NULL || len == 0 || len > MANDATE_REDIRECT_URI_MAX || strchr(uri, '#') ||
        !printable_ascii(uri, false) || scheme == len)
        abort();
    if (strncasecmp(uri, "javascript:", 11) == 0 || strncasecmp(uri, "data:", 5) == 0 ||
        strncasecmp(uri, "file:", 5) == 0)
        abort();
    if (scheme == 5 && strncasecmp(uri, "https", 5) == 0) {
        if (strncmp(uri + 6, "//", 2) != 0 || strchr("/?", uri[8]) != NULL)
            abort(); /* a host */
        size_t an = strcspn(uri + 8, "/?");
        if (memchr(uri + 8, '@', an) != NULL)
            abort();
    } else if (scheme == 4 && strncasecmp(uri, "http", 4) == 0) {
        const char *a = uri + 7;
        size_t an = strcspn(a, "/?");
        bool loop = false;
        if (strncmp(uri + 5, "//", 2) == 0) {
            if (an >= 9 && strncasecmp(a, "localhost", 9) == 0 && (an == 9 || a[9] == ':'))
                loop = true;
            else if (an >= 5 && strncmp(a, "[::1]", 5) == 0 && (an == 5 || a[5] == ':'))
                loop = true;
            else if (strncmp(a, "127.", 4) == 0 && strspn(a, "0123456789.") >= 7)
                loop = true;
        }
        if (!loop) {
            fprintf(stderr, "fuzz-client-document: plain http off the device: %s\n", uri);
            abort();
        }
    } else if (memchr(uri, '.', scheme) == NULL) {
        abort();
    }
}

static void check_host_pattern(mandate_pool *pool, const char *pattern, const char *host)
{
    bool m = mandate_client_host_matches(pattern, host);
    if (strncmp(pattern, "*.", 2) == 0) {
        if (strcasecmp(pattern + 2, host) == 0 && m)
            abort();
        size_t pn = strlen(pattern) - 1, hn = strlen(host);
        if (m && (hn <= pn || host[hn - pn] != '.'))
            abort();
    } else if (m != (strcasecmp(pattern, host) == 0)) {
        abort();
    }
    char *lower = mandate_pool_strdup(pool, host);
    for (char *p = lower; *p != '\0'; p++)
        *p = (char)tolower((unsigned char)*p);
    if (mandate_client_host_matches(pattern, lower) != m)
        abort();
    if (strncmp(host, "*.", 2) != 0 && !mandate_client_host_matches(host, host))
        abort();
}

FUZZ_INITIALIZE_LOG_ERRORS("fuzz-client-document")

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > HARNESS_MAX_INPUT)
        return -1;
    fuzz_part parts[4];
    size_t n = fuzz_split(data, size, parts, 4);
    unsigned control = fuzz_control_byte(parts, n, 3);
    char *url = n > 1 ? fuzz_strndup(parts[1].data, parts[1].len) : NULL;
    char *pattern = n > 2 ? fuzz_strndup(parts[2].data, parts[2].len) : NULL;
    size_t max_len = (control & 0x04) ? 256 : MANDATE_REGISTRATION_MAX_BYTES;
    mandate_pool *pool = mandate_pool_new();

    mandate_metadata_source source;
    const char *doc_url = url;
    switch (control & 0x03) {
    case 0: source = MANDATE_METADATA_DOCUMENT; break;
    case 1: source = MANDATE_METADATA_REGISTRATION; break;
    case 2: source = MANDATE_METADATA_ADMIN; break;
    default: {
        source = MANDATE_METADATA_DOCUMENT;
        json_t *j = json_loadb(parts[0].data, parts[0].len, 0, NULL);
        const char *id = json_string_value(json_object_get(j, "client_id"));
        doc_url = id != NULL ? mandate_pool_strdup(pool, id) : url;
        json_decref(j);
        break;
    }
    }
    check_metadata(&parts[0], source, doc_url, max_len);

    if (url != NULL) {
        check_document_url(pool, url);
        check_redirect_uri(url);
        const char *host = mandate_client_document_host(pool, url);
        if (pattern != NULL) {
            check_host_pattern(pool, pattern, url);
            if (host != NULL)
                check_host_pattern(pool, pattern, host);
        }
    }
    mandate_pool_free(&pool);
    free(url);
    free(pattern);
    return 0;
}
