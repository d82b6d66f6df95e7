/* libmandate: what agents and tool servers link.
 *
 * - An agent gets access tokens with the OAuth 2.0 client credentials grant
 *   (client_secret_basic; over TLS with a client certificate when one is
 *   configured) and keeps them: mandate_token_source hands out the
 *   cached token and fetches a new one once a configured fraction of its
 *   lifetime has passed (0.8 by default). It is safe to call from several
 *   threads, and never runs two fetches at once for one source: callers that
 *   arrive during a fetch wait for its result.
 * - A resource server (an MCP tool server, a gateway) checks tokens with
 *   mandate_verifier: it finds the JWKS through the issuer's RFC 8414
 *   metadata, caches it, refetches it when a token names an unknown kid (at
 *   most once per min_refetch_interval), and checks the signature, typ
 *   at+jwt, iss, aud, exp, nbf, the scopes a call needs and the token's
 *   binding (cnf): a token bound to a DPoP key or a client certificate
 *   passes only with a proof of that key or that certificate.
 * - DPoP (RFC 9449): an agent holding a mandate_dpop_key gets tokens bound
 *   to it (token_type DPoP) by sending a proof with each token request, and
 *   sends a fresh proof with each resource request
 *   (mandate_token_source_headers, mandate_token_source_request). A thief
 *   who copies such a token cannot use it without the private key, which
 *   never leaves the process. Server nonces (use_dpop_nonce) are handled:
 *   one retry with the nonce the server sent, kept for the next request.
 *
 * Apache-2.0; links libcurl, jansson and OpenSSL only. Every function
 * reports failure through its return value and, where given, an error
 * buffer; none prints or exits. Secrets are wiped when freed. */
#ifndef MANDATE_CLIENT_H
#define MANDATE_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mandate_client_rc {
    MANDATE_CLIENT_OK = 0,
    MANDATE_CLIENT_INVALID,            /* bad argument or configuration */
    MANDATE_CLIENT_DENIED,             /* the authorization server said no
                                          (invalid_client, invalid_scope, ...) */
    MANDATE_CLIENT_UNAVAILABLE,        /* network error, 5xx, timeout */
    MANDATE_CLIENT_TOKEN_INVALID,      /* verifier: bad signature, expired,
                                          wrong audience or issuer, malformed */
    MANDATE_CLIENT_INSUFFICIENT_SCOPE, /* verifier: valid, but lacks a scope */
    MANDATE_CLIENT_ERROR               /* out of memory, internal fault */
} mandate_client_rc;

/* "ok", "invalid", ...: for messages. */
const char *mandate_client_rc_name(mandate_client_rc rc);

/* --- DPoP proof keys (RFC 9449) ------------------------------------------------ */

typedef struct mandate_dpop_key mandate_dpop_key;

/* A new key pair held in memory only: alg "ES256" (NULL: ES256, the one
 * every server accepts), "EdDSA" (Ed25519) or "RS256" (RSA-2048). */
mandate_dpop_key *mandate_dpop_key_generate(const char *alg, char *errbuf, size_t errlen);
/* A private key from a file: PEM (PKCS#8 "PRIVATE KEY", or the
 * traditional EC/RSA forms) or a JWK with its private member (EC P-256 or
 * OKP Ed25519 with "d"). A P-256, Ed25519 or RSA >= 2048 key only. */
mandate_dpop_key *mandate_dpop_key_load(const char *path, char *errbuf, size_t errlen);
/* Its RFC 7638 JWK thumbprint, the cnf.jkt of tokens bound to it (43
 * characters, valid as long as the key). */
const char *mandate_dpop_key_thumbprint(const mandate_dpop_key *key);
/* A proof (a dpop+jwt JWS, RFC 9449 §4.2) for one request: htm method, htu
 * uri (query and fragment are dropped, as the RFC asks), iat now, a random
 * jti; with ath when access_token is not NULL and the server's nonce when
 * nonce is not NULL. *proof_r is malloc'd; the caller frees it. */
mandate_client_rc mandate_dpop_key_proof(const mandate_dpop_key *key, const char *method,
                                         const char *uri, const char *access_token,
                                         const char *nonce, char **proof_r, char *errbuf,
                                         size_t errlen);
/* The token sources made with the key hold their own reference: the key
 * may be freed before them. Sets *key to NULL. */
void mandate_dpop_key_free(mandate_dpop_key **key);

/* --- getting tokens --------------------------------------------------------- */

typedef struct mandate_token_source_config {
    const char *token_url;     /* required: https://broker/oauth2/token */
    const char *client_id;     /* required */
    const char *client_secret; /* required; copied, wiped on free */
    const char *scope;         /* space-separated; NULL: the client's default */
    const char *resource;      /* RFC 8707 resource; NULL: none */
    double refresh_at;         /* fraction of the lifetime; 0: 0.8 */
    long timeout_ms;           /* per HTTP request; 0: 10000 */
    /* For tests: the clock in seconds; NULL: the real one. */
    int64_t (*now)(void *ctx);
    void *now_ctx;
    /* DPoP: a proof by this key on every token request, so that the tokens
     * are bound to it (NULL: bearer tokens). The source keeps a reference. */
    const mandate_dpop_key *dpop_key;
    /* TLS client authentication (RFC 8705) for every request of the
     * source: PEM files of the certificate and its private key (libcurl's
     * CURLOPT_SSLCERT and CURLOPT_SSLKEY), and a CA bundle for the servers
     * (NULL: the system's). */
    const char *tls_client_cert;
    const char *tls_client_key;
    const char *tls_ca_file;
} mandate_token_source_config;

typedef struct mandate_token_source mandate_token_source;

/* NULL when the configuration is bad; errbuf (may be NULL) says why. */
mandate_token_source *mandate_token_source_new(const mandate_token_source_config *config,
                                               char *errbuf, size_t errlen);
/* A valid access token: *token_r is a malloc'd copy the caller frees;
 * expires_at_r (may be NULL) gets its expiry. Fetches only when there is no
 * token yet or refresh_at of its lifetime has passed. */
mandate_client_rc mandate_token_source_get(mandate_token_source *source, char **token_r,
                                           int64_t *expires_at_r, char *errbuf, size_t errlen);
/* How many token requests this source has sent (for tests and metrics); a
 * retry with a server nonce counts as one more. */
uint64_t mandate_token_source_fetches(const mandate_token_source *source);
/* "DPoP" when the last token the source got is DPoP-bound, "Bearer"
 * otherwise (and before the first). */
const char *mandate_token_source_token_type(mandate_token_source *source);
/* The headers of one request to a resource server: *authorization_r the
 * Authorization value ("DPoP <token>" or "Bearer <token>"), *dpop_r the
 * DPoP header's (a proof for method and uri with the token's ath; NULL
 * with a bearer token). nonce: the resource server's DPoP-Nonce (NULL:
 * the last one it sent through mandate_token_source_request, if any); when
 * a resource answers 401 with WWW-Authenticate error="use_dpop_nonce", make
 * the headers again with its DPoP-Nonce and retry once. Both malloc'd; the
 * caller frees them (they hold the token: wipe them). */
mandate_client_rc mandate_token_source_headers(mandate_token_source *source, const char *method,
                                               const char *uri, const char *nonce,
                                               char **authorization_r, char **dpop_r,
                                               char *errbuf, size_t errlen);
/* A whole resource request with the source's token: method (GET, POST,
 * ...) on url with body (NULL: none) of content_type (NULL:
 * application/json), the headers made as above, and on 401 use_dpop_nonce
 * one retry with the server's nonce (kept for the next request). OK when a
 * response came back, whatever its status: *status_r its status,
 * *body_r (may be NULL) its body, malloc'd and NUL-terminated. */
mandate_client_rc mandate_token_source_request(mandate_token_source *source, const char *method,
                                               const char *url, const char *body,
                                               const char *content_type, long *status_r,
                                               char **body_r, char *errbuf, size_t errlen);
/* Wipes the secret and the token; sets *source to NULL. */
void mandate_token_source_free(mandate_token_source **source);

/* --- checking tokens -------------------------------------------------------- */

typedef struct mandate_verifier_config {
    const char *issuer;        /* required: tokens' iss, and where
                                  /.well-known/oauth-authorization-server is */
    const char *audience;      /* required: must be in the token's aud */
    long jwks_max_age;         /* seconds a fetched JWKS is used; 0: 300 */
    long min_refetch_interval; /* seconds between refetches for unknown kids;
                                  0: 10 */
    long leeway;               /* seconds of clock skew for exp/nbf; 0: 5 */
    long timeout_ms;           /* per HTTP request; 0: 5000 */
    int64_t (*now)(void *ctx); /* for tests; NULL: the real clock */
    void *now_ctx;
} mandate_verifier_config;

typedef struct mandate_verifier mandate_verifier;

typedef struct mandate_verified_token {
    char *subject;
    char *client_id;
    char *scope;  /* space-separated; may be NULL */
    char *tenant; /* may be NULL */
    char *actor;  /* act.sub; may be NULL */
    char *jti;
    int64_t issued_at, expires_at;
    char *cnf_jkt;      /* the DPoP key it is bound to (cnf.jkt); NULL: not DPoP-bound */
    char *cnf_x5t_s256; /* the client certificate it is bound to (cnf x5t#S256,
                           RFC 8705 §3); NULL: not certificate-bound */
} mandate_verified_token;

mandate_verifier *mandate_verifier_new(const mandate_verifier_config *config, char *errbuf,
                                       size_t errlen);
/* Check a token (without "Bearer "); required_scope is a space-separated
 * list of scopes the call needs, all of them (NULL: none). On
 * MANDATE_CLIENT_OK, *out holds the token's claims (release with
 * mandate_verified_token_clear); out may be NULL. A token bound to a
 * sender (cnf: a DPoP key or a client certificate) is refused here, and so
 * is one whose cnf names anything else (RFC 7800 §3: a binding that cannot
 * be checked is not a bearer token): see mandate_verifier_check_request. */
mandate_client_rc mandate_verifier_check(mandate_verifier *verifier, const char *token,
                                         const char *required_scope,
                                         mandate_verified_token *out, char *errbuf,
                                         size_t errlen);
/* The same for a request with "Authorization: DPoP <token>" and a "DPoP:
 * <proof>" header (RFC 9449 §7): the token must be DPoP-bound (cnf.jkt),
 * the proof signed by that key, for this method and uri (the URL the
 * client called, as the client saw it: behind a proxy, its public URL),
 * with the token's ath, issued within the last 60 s, and never seen before
 * by this verifier. mandate_verifier_check refuses a DPoP-bound token: a
 * copied one is no use without the key. Server nonces are not asked for.
 * A token also bound to a client certificate is refused here: that needs
 * mandate_verifier_check_request. */
mandate_client_rc mandate_verifier_check_dpop(mandate_verifier *verifier, const char *token,
                                              const char *proof, const char *method,
                                              const char *uri, const char *required_scope,
                                              mandate_verified_token *out, char *errbuf,
                                              size_t errlen);
/* What came with a request to a resource server. */
typedef struct mandate_verifier_request {
    const char *token; /* required: the Authorization value without its scheme */
    /* DPoP (RFC 9449 §7), for "Authorization: DPoP": the DPoP header, and the
     * method and URL the client called (as in mandate_verifier_check_dpop);
     * dpop_proof NULL: the token came as "Bearer" */
    const char *dpop_proof;
    const char *method;
    const char *uri;
    /* Mutual TLS (RFC 8705 §3): the client certificate the TLS layer
     * verified the client holds the key of (DER; NULL: none), e.g.
     * i2d_X509 of SSL_get0_peer_certificate, or the first certificate of
     * gnutls_certificate_get_peers. Never one copied from a request header
     * a client could have written itself: that proves nothing. */
    const unsigned char *client_cert_der;
    size_t client_cert_len;
} mandate_verifier_request;

/* The check for every kind of token: a bearer token as
 * mandate_verifier_check; a DPoP-bound one (cnf.jkt) only with a proof, as
 * mandate_verifier_check_dpop; a certificate-bound one (cnf x5t#S256) only
 * when client_cert_der is that certificate (base64url SHA-256 of the DER);
 * bound both ways, both. A certificate with an unbound token is no
 * objection. A cnf with any other member (jwk, jku, kid...) or a
 * thumbprint that is not one: MANDATE_CLIENT_TOKEN_INVALID. A
 * client_cert_der that is not one DER certificate:
 * MANDATE_CLIENT_INVALID. */
mandate_client_rc mandate_verifier_check_request(mandate_verifier *verifier,
                                                 const mandate_verifier_request *request,
                                                 const char *required_scope,
                                                 mandate_verified_token *out, char *errbuf,
                                                 size_t errlen);
/* How many times the JWKS was fetched (for tests and metrics). */
uint64_t mandate_verifier_jwks_fetches(const mandate_verifier *verifier);
void mandate_verified_token_clear(mandate_verified_token *token);
void mandate_verifier_free(mandate_verifier **verifier);

#ifdef __cplusplus
}
#endif

#endif
