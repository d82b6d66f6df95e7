/* libmandate: what agents and tool servers link.
 *
 * - An agent gets access tokens with the OAuth 2.0 client credentials grant
 *   (client_secret_basic) and keeps them: mandate_token_source hands out the
 *   cached token and fetches a new one once a configured fraction of its
 *   lifetime has passed (0.8 by default). It is safe to call from several
 *   threads, and never runs two fetches at once for one source: callers that
 *   arrive during a fetch wait for its result.
 * - A resource server (an MCP tool server, a gateway) checks tokens with
 *   mandate_verifier: it finds the JWKS through the issuer's RFC 8414
 *   metadata, caches it, refetches it when a token names an unknown kid (at
 *   most once per min_refetch_interval), and checks the signature, typ
 *   at+jwt, iss, aud, exp, nbf and the scopes a call needs.
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
} mandate_token_source_config;

typedef struct mandate_token_source mandate_token_source;

/* NULL when the configuration is bad; errbuf (may be NULL) says why. */
mandate_token_source *mandate_token_source_new(const mandate_token_source_config *config,
                                               char *errbuf, size_t errlen);
/* A valid access token: *token_r is a malloc'd copy the caller frees;
 * expires_at_r (may be NULL) gets its expiry. Fetches only when there is no
 * token yet or refresh_at of its lifetime has passed. */
mandate_client_rc mandate_token_source_get(mandate_token_source *source, char **token_r,
                                           int64_t *expires_at_r, char *errbuf,
                                           size_t errlen);
/* How many token requests this source has sent (for tests and metrics). */
uint64_t mandate_token_source_fetches(const mandate_token_source *source);
/* Wipes the secret and the token; sets *source to NULL. */
void mandate_token_source_free(mandate_token_source **source);

/* --- checking tokens -------------------------------------------------------- */

typedef struct mandate_verifier_config {
    const char *issuer;          /* required: tokens' iss, and where
                                    /.well-known/oauth-authorization-server is */
    const char *audience;        /* required: must be in the token's aud */
    long jwks_max_age;           /* seconds a fetched JWKS is used; 0: 300 */
    long min_refetch_interval;   /* seconds between refetches for unknown kids;
                                    0: 10 */
    long leeway;                 /* seconds of clock skew for exp/nbf; 0: 5 */
    long timeout_ms;             /* per HTTP request; 0: 5000 */
    int64_t (*now)(void *ctx);   /* for tests; NULL: the real clock */
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
} mandate_verified_token;

mandate_verifier *mandate_verifier_new(const mandate_verifier_config *config, char *errbuf,
                                       size_t errlen);
/* Check a token (without "Bearer "); required_scope is a space-separated
 * list of scopes the call needs, all of them (NULL: none). On
 * MANDATE_CLIENT_OK, *out holds the token's claims (release with
 * mandate_verified_token_clear); out may be NULL. */
mandate_client_rc mandate_verifier_check(mandate_verifier *verifier, const char *token,
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
