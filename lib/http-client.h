/* The HTTP client (libcurl) of libmandate's token source and of the JWKS
 * cache (lib/jwks-cache.c, which libmandate's verifier and the oidc backend
 * plugin use), and the small helpers that go with its return codes. It
 * speaks libmandate's mandate_client_rc (include/mandate/client.h), the
 * codes of its first user. Nothing here is exported from libmandate.so or
 * from a plugin (their -export-symbols-regex keep only the client.h names
 * and the plugin descriptor). */
#ifndef MANDATE_HTTP_CLIENT_H
#define MANDATE_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mandate/client.h>

/* Largest response body read; a longer one fails the request. */
#define MANDATE_CLIENT_HTTP_MAX_BODY (256 * 1024)

/* Longest DPoP-Nonce response header kept (RFC 9449 §8: opaque to the
 * client; the broker's are far shorter). A longer one is dropped. */
#define MANDATE_CLIENT_HTTP_NONCE_MAX 128

typedef struct mandate_client_http_response {
    long status;
    char *body; /* malloc'd, NUL-terminated (also when empty) */
    size_t len;
    char dpop_nonce[MANDATE_CLIENT_HTTP_NONCE_MAX + 1]; /* DPoP-Nonce; "" when none */
    bool use_dpop_nonce; /* WWW-Authenticate named error="use_dpop_nonce" */
} mandate_client_http_response;

/* One request, everything optional but url. */
typedef struct mandate_client_http_request {
    const char *url;
    const char *method;        /* NULL: POST when body is set, GET otherwise */
    const char *authorization; /* Authorization value; wiped after use */
    const char *dpop;          /* DPoP header value (a proof) */
    const char *body;          /* application/x-www-form-urlencoded, or NULL */
    const char *content_type;  /* of body; NULL: form-urlencoded */
    long timeout_ms;
    /* TLS client authentication (RFC 8705): PEM files handed to libcurl
     * (CURLOPT_SSLCERT, CURLOPT_SSLKEY) and a CA bundle (CURLOPT_CAINFO) */
    const char *tls_client_cert;
    const char *tls_client_key;
    const char *tls_ca_file;
} mandate_client_http_request;

/* GET url. MANDATE_CLIENT_OK when an HTTP response came back, whatever its
 * status; MANDATE_CLIENT_UNAVAILABLE on a network error, a timeout, a body
 * over MANDATE_CLIENT_HTTP_MAX_BODY; MANDATE_CLIENT_INVALID for a URL that is
 * not http or https. Redirects are not followed (a 3xx is returned as is).
 * errbuf gets the reason and never the request's credentials. */
mandate_client_rc mandate_client_http_get(const char *url, long timeout_ms,
                                          mandate_client_http_response *resp_r, char *errbuf,
                                          size_t errlen);
/* POST an application/x-www-form-urlencoded body; authorization (may be
 * NULL) is the value of the Authorization header. The copies made here of
 * body and authorization are wiped before they are freed. */
mandate_client_rc mandate_client_http_post_form(const char *url, const char *authorization,
                                                const char *body, long timeout_ms,
                                                mandate_client_http_response *resp_r,
                                                char *errbuf, size_t errlen);
/* The general form of the two above. */
mandate_client_rc mandate_client_http_send(const mandate_client_http_request *req,
                                           mandate_client_http_response *resp_r, char *errbuf,
                                           size_t errlen);
void mandate_client_http_response_clear(mandate_client_http_response *resp);

/* true when url starts with http:// or https:// (any case) and has a host. */
bool mandate_client_url_ok(const char *url);

/* printf into errbuf when it is not NULL; returns rc. */
mandate_client_rc mandate_client_fail(char *errbuf, size_t errlen, mandate_client_rc rc,
                                      const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* The real clock, in seconds. */
int64_t mandate_client_real_now(void *ctx);

#endif
