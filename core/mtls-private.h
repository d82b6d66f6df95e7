/* Mutual TLS (RFC 8705) in the core: where a request's client certificate
 * comes from (Mandate's own HTTPS, or a trusted proxy's header), client
 * authentication by certificate (tls_client_auth,
 * self_signed_tls_client_auth), which tokens are bound to it, and the
 * metadata. The certificate itself is judged by lib/client-cert.c. */
#ifndef MANDATE_MTLS_PRIVATE_H
#define MANDATE_MTLS_PRIVATE_H

#include <stdbool.h>

#include <jansson.h>
#include <mandate/store.h>

#include "client-cert.h"
#include "http-private.h"

#define MANDATE_MTLS_CHAIN_MAX 8

/* The request's certificate, read once (req->client_cert), in its pool. */
typedef struct mandate_mtls_cert {
    /* the client's own certificate first, then the intermediates it sent */
    const unsigned char *der[MANDATE_MTLS_CHAIN_MAX];
    size_t der_len[MANDATE_MTLS_CHAIN_MAX];
    size_t count;
    char x5t_s256[MANDATE_CERT_THUMBPRINT_LEN + 1];
    const char *source; /* "tls" or "proxy" */
} mandate_mtls_cert;

typedef enum mandate_mtls_outcome {
    MANDATE_MTLS_NONE,    /* no certificate came */
    MANDATE_MTLS_PRESENT, /* *cert_r */
    MANDATE_MTLS_REFUSED, /* *why_r: not believed or not a certificate */
} mandate_mtls_outcome;

/* The request's client certificate: the one of Mandate's TLS session, or
 * the one in server.client_certificate_header when the socket's peer is in
 * server.client_certificate_proxies (not set: server.trusted_proxies; from
 * any other peer the header is REFUSED: anyone can write one). */
mandate_mtls_outcome mandate_mtls_request_cert(mandate_http_request *req,
                                               const mandate_mtls_cert **cert_r,
                                               const char **why_r);

/* POST /oauth2/token, before the grant: a certificate that cannot be
 * believed (a header from an untrusted address, one that is not a
 * certificate) is refused there, 401 invalid_client, audited; false then. */
bool mandate_mtls_token_request(mandate_http_request *req, mandate_http_response *resp,
                                const char *grant_type);

/* "tls_client_auth" or "self_signed_tls_client_auth" when the client is
 * registered so (token_endpoint_auth_method of its metadata, else of its
 * attributes); NULL otherwise. */
const char *mandate_mtls_client_method(const mandate_client *client);

/* RFC 8705 §2: the request's certificate is the client's (the registered
 * name and a chain to server.tls.client_ca, or the registered
 * certificate). false with *why_r. */
bool mandate_mtls_client_authenticate(mandate_http_request *req, const mandate_client *client,
                                      const char **why_r);

/* RFC 8705 §3: the thumbprint the request's tokens are bound to, NULL for
 * none: a certificate came and the client asks for bound tokens
 * (tls_client_certificate_bound_access_tokens, true by default for a
 * client that authenticates by certificate). */
const char *mandate_mtls_binding(mandate_http_request *req, const mandate_client *client);

/* Whether the request came with the certificate of thumbprint x5t (a
 * bound subject token is exchanged only by its holder). */
bool mandate_mtls_request_holds(mandate_http_request *req, const char *x5t);

/* The URL of the endpoint at path (/oauth2/token) under server.mtls_base_url,
 * its alias for clients with a certificate (RFC 8705 §5); NULL: no alias. */
const char *mandate_mtls_endpoint_alias(const mandate_http_request *req, const char *path);

/* The metadata's mTLS members (RFC 8705 §3.3, §5) into doc. */
void mandate_mtls_metadata(const mandate_http_request *req, json_t *doc);

#endif
