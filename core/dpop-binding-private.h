/* DPoP-bound tokens (RFC 9449) in the core: the proof of a token request
 * and the key it binds the issued token to, the clients that must have
 * bound tokens, the proof at the gateway check, the metadata. The proof
 * itself is checked by lib/dpop.c; here is what needs the request, the
 * configuration and the store (the jti claimed once, shared by every node
 * through the store's replay cache). */
#ifndef MANDATE_DPOP_BINDING_PRIVATE_H
#define MANDATE_DPOP_BINDING_PRIVATE_H

#include <stdbool.h>

#include <jansson.h>
#include <mandate/format.h>
#include <mandate/store.h>

#include "gateway-path-private.h"
#include "http-private.h"

/* What became of a proof. */
typedef enum mandate_dpop_outcome {
    MANDATE_DPOP_OK,
    MANDATE_DPOP_REFUSED,   /* invalid_dpop_proof */
    MANDATE_DPOP_USE_NONCE, /* dpop.nonce is on and the proof has no current nonce */
    MANDATE_DPOP_TEMPFAIL,  /* the store (or the KEK) did not answer */
} mandate_dpop_outcome;

/* The DPoP proof of POST /oauth2/token, before the grant is dispatched:
 * none is fine; one that passes (htm POST, htu the token endpoint's URL)
 * waits in req->dpop_proof for mandate_dpop_request_claim. false: refused,
 * audited and answered (400 invalid_dpop_proof, 400 use_dpop_nonce with a
 * DPoP-Nonce header, or 503). With dpop.nonce on, every answer to a proof
 * carries a fresh DPoP-Nonce. */
bool mandate_dpop_token_request(mandate_http_request *req, mandate_http_response *resp,
                                const char *grant_type);
/* The same at the POST endpoint of path (/oauth2/par: RFC 9449 §10.1),
 * refusals audited as event. */
bool mandate_dpop_endpoint_request(mandate_http_request *req, mandate_http_response *resp,
                                   const char *path, const char *event,
                                   const char *grant_type);

/* Once the client of the request is authenticated (mandate_oauth_within_rate):
 * the jti of the proof that mandate_dpop_token_request checked claimed in
 * the replay cache, which sets req->dpop_jkt, the thumbprint the tokens of
 * the request are bound to. Before that a caller without credentials could
 * make the broker write for each of its proofs. No proof: true. false:
 * refused (a jti used before, the store not answering), audited and
 * answered. */
bool mandate_dpop_request_claim(mandate_http_request *req, mandate_http_response *resp,
                                const char *event, const char *grant_type,
                                const char *client_id);

/* Whether the request's proof (claimed by mandate_dpop_request_claim) is by
 * the key of thumbprint jkt. */
bool mandate_dpop_request_holds(const mandate_http_request *req, const char *jkt);

/* Whether the client is registered with dpop_bound_access_tokens (RFC 9449
 * §5.2: in its attributes, set by mandatectl client create/set
 * --dpop-bound, or in its registered metadata): it never gets a bearer
 * token. */
bool mandate_dpop_client_bound(const mandate_client *client);
/* Whether the client is public (token_endpoint_auth_method "none"): its
 * refresh tokens are bound to the key of its proof (RFC 9449 §5). */
bool mandate_dpop_client_public(const mandate_client *client);

/* The token of "Authorization: <scheme> <token>", the scheme in any case:
 * Bearer (RFC 6750 §2.1) or DPoP (RFC 9449 §7.1); NULL when it is not
 * there or empty. */
const char *mandate_authorization_credentials(mandate_http_request *req, const char *scheme);

/* The proof of a call through the gateway with a DPoP-bound token: the
 * DPoP header's proof for the original method (X-Original-Method) and URI
 * (the target's public_url and the original path), with ath of token, by
 * the key of thumbprint jkt, its nonce when on, its jti claimed. Anything
 * but MANDATE_DPOP_OK with *why_r. */
mandate_dpop_outcome mandate_dpop_gateway_proof(mandate_http_request *req,
                                                const mandate_target *t, const char *raw_path,
                                                const char *token, const char *jkt,
                                                const char **why_r);

/* WWW-Authenticate: DPoP algs="...", error="error", error_description;
 * the answer's status and body (RFC 9449 §7.1); a fresh DPoP-Nonce when
 * nonces are on. */
void mandate_dpop_challenge(mandate_http_request *req, mandate_http_response *resp,
                            unsigned status, const char *error, const char *description);

/* dpop_signing_alg_values_supported of the metadata (RFC 9449 §5.1). New
 * reference. */
json_t *mandate_dpop_metadata_algs(const mandate_http_request *req);

#endif
