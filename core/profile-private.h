/* The profile for regulated tenants: what FAPI 2.0's security profile asks
 * of an authorization server, turned on for a client (its "profile":
 * "fapi2", set by mandatectl client set --profile fapi2) or for every
 * client of a tenant (profile.fapi2_tenants). Its rules, each refused with
 * a description that names it and audited with the rule's name:
 *
 *   par          authorization requests only through /oauth2/par (RFC 9126)
 *   client_auth  confidential clients by private_key_jwt, tls_client_auth or
 *                self_signed_tls_client_auth: no client secret, no public
 *                client
 *   sender_constrained  every access token bound (DPoP cnf.jkt, or mTLS
 *                cnf x5t#S256)
 *   redirect_https  redirect URIs are https, compared exactly (no loopback
 *                port leeway)
 *
 * What the profile asks and every client already gets: PKCE with S256 only,
 * codes of at most 60 s (signin.code_lifetime), iss in the authorization
 * response (RFC 9207). Pushed authorization requests for other clients:
 * par.required, or the client's require_pushed_authorization_requests. */
#ifndef MANDATE_PROFILE_PRIVATE_H
#define MANDATE_PROFILE_PRIVATE_H

#include <stdbool.h>

#include <mandate/store.h>

#include "config-private.h"
#include "http-private.h"
#include "oauth-private.h"

#define MANDATE_PROFILE_FAPI2 "fapi2"

/* Whether client is held to the profile (its own setting or its tenant's). */
bool mandate_profile_fapi2(const mandate_config *cfg, const mandate_client *client);

/* Whether client's authorization requests must be pushed: par.required,
 * the client's require_pushed_authorization_requests, or the profile. */
bool mandate_profile_par_required(const mandate_config *cfg, const mandate_client *client);

/* The profile's refusal of how the request's client authenticated
 * (req->client_auth_method, NULL for a public client), or NULL when it
 * passes or the client is not held to the profile. */
const char *mandate_profile_auth_refusal(const mandate_http_request *req,
                                         const mandate_config *cfg,
                                         const mandate_client *client);

/* The profile's rules for a token about to be issued to client (an access
 * token, an ID-JAG): client_auth, then sender_constrained (bound: the
 * token carries cnf.jkt or cnf x5t#S256). true, with the OAuth error in
 * oerr (its reason the rule), when refused. Every path that issues calls
 * it, so that none forgets the profile. */
bool mandate_profile_issue_refused(const mandate_http_request *req, const mandate_config *cfg,
                                   const mandate_client *client, bool bound,
                                   mandate_oauth_error *oerr);

/* The profile's refusal of redirect_uri, or NULL. */
const char *mandate_profile_redirect_refusal(const mandate_config *cfg,
                                             const mandate_client *client,
                                             const char *redirect_uri);

/* What the profile changes, one line each (NULL-terminated, static): for
 * mandatectl config check and client show. */
const char *const *mandate_profile_fapi2_rules(void);

#endif
