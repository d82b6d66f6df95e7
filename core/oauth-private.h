/* OAuth 2.0 errors (RFC 6749 §5.2, RFC 6750 §3) and the steps of the token
 * endpoint that precede the format: client authentication and policy. */
#ifndef MANDATE_OAUTH_PRIVATE_H
#define MANDATE_OAUTH_PRIVATE_H

#include <mandate/store.h>

#include "config-private.h"
#include "form-private.h"
#include "http-private.h"
#include "word-list.h"

typedef struct mandate_oauth_error {
    unsigned status;
    const char *error;       /* "invalid_request", "invalid_client", ... */
    const char *description; /* safe for the client: never a plugin's message */
    /* for the log and the audit trail only, never sent: why (defaults to
     * description) and the client id presented when authentication failed */
    const char *reason;
    const char *client_id;
} mandate_oauth_error;

/* Fills e and returns MANDATE_DENIED, for `return mandate_oauth_fail(...)`. */
mandate_rc mandate_oauth_fail(mandate_oauth_error *e, unsigned status, const char *error,
                              const char *description);
/* The JSON error response, with Cache-Control: no-store and, for 401,
 * WWW-Authenticate. */
void mandate_oauth_respond_error(mandate_http_request *req, mandate_http_response *resp,
                                 const mandate_oauth_error *e);
/* 429 too_many_requests with Retry-After (RFC 6585) and description. */
void mandate_oauth_respond_too_many(mandate_http_request *req, mandate_http_response *resp,
                                    const char *description, unsigned retry_after);
/* A plugin or store failure as an OAuth error: TEMPFAIL is 503
 * temporarily_unavailable, anything unexpected 500 server_error. */
mandate_rc mandate_oauth_fail_rc(mandate_oauth_error *e, mandate_rc rc);
/* That error as the response (mandate_oauth_fail_rc, then
 * mandate_oauth_respond_error). */
void mandate_oauth_respond_rc(mandate_http_request *req, mandate_http_response *resp,
                              mandate_rc rc);

/* The URL of an endpoint of this issuer ("/oauth2/token"), in pool. */
const char *mandate_oauth_endpoint_url(mandate_http_request *req, const char *path);

/* Find and authenticate the client of a request (client_secret_basic,
 * client_secret_post or private_key_jwt), asking the backends in their
 * configured order. On success *client_r is its record (in the request
 * pool). A failure is 401 invalid_client, whatever the cause, so that
 * nobody learns which client ids exist. */
mandate_rc mandate_client_authenticate(mandate_http_request *req, const mandate_form *form,
                                       mandate_client *client_r, mandate_oauth_error *oerr);
/* The method client authenticates with, as registered: "tls_client_auth",
 * "self_signed_tls_client_auth", "none" (a public client),
 * "private_key_jwt" (its public key) or "client_secret" (basic or post). */
const char *mandate_client_registered_auth(const mandate_client *client);
/* The client id a request names (Basic user name, else the form's
 * client_id, else "(none)"), before it is authenticated: for the log only. */
const char *mandate_client_claimed_id(mandate_http_request *req, const mandate_form *form);

/* The scopes to grant: those requested (each allowed to the client, else
 * 400 invalid_scope naming it), or, when none is requested, the client's
 * default scopes (400 invalid_scope when it has none: RFC 6749 §3.3). */
mandate_rc mandate_policy_scope(mandate_pool *pool, const mandate_client *client,
                                const char *requested, const char **scope_r,
                                mandate_oauth_error *oerr);
/* The audiences: the RFC 8707 resources asked for (each one of the client's
 * allowed audiences, else 400 invalid_target), or all the client's
 * audiences. A client with no audience of its own is allowed
 * default_resource (the configured default_resource, or NULL); NULL when
 * there is none either (the token is then refused as it is minted). */
mandate_rc mandate_policy_audience(mandate_pool *pool, const mandate_client *client,
                                   const mandate_form_param *resources,
                                   const char *default_resource, const char **audience_r,
                                   mandate_oauth_error *oerr);
/* Seconds a token of this client lives. */
int64_t mandate_policy_lifetime(const mandate_config *config, const mandate_client *client);

#endif
