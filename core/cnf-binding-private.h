/* Sender-constrained tokens across delegation (issue 25 ★): a token that
 * another party presents to get one of ours (a subject token of the token
 * exchange, the assertion of the JWT bearer grant, an ID-JAG) may be bound
 * by its cnf claim (RFC 7800) to a DPoP key (jkt, RFC 9449 §6) or to a
 * client certificate (x5t#S256, RFC 8705 §3.1). Such a token is used only
 * by the holder of that key or certificate, and the token made of it is
 * bound to the same one: a bound token is never laundered into a bearer
 * token, nor rebound to another key. One check for every grant that takes
 * someone else's token. */
#ifndef MANDATE_CNF_BINDING_PRIVATE_H
#define MANDATE_CNF_BINDING_PRIVATE_H

#include <stdbool.h>

#include <jansson.h>
#include <mandate/format.h>

#include "http-private.h"
#include "oauth-private.h"
#include "pool-private.h"

/* What a presented token is bound to; NULL members: not bound that way. */
typedef struct mandate_cnf {
    const char *jkt;      /* a DPoP key's RFC 7638 thumbprint */
    const char *x5t_s256; /* a client certificate's SHA-256 thumbprint */
} mandate_cnf;

/* The cnf claim of a JWT's claims (may be NULL: no binding), copied into
 * pool. false with *why_r when there is a cnf this broker cannot honour:
 * not an object, a jkt or x5t#S256 that is not a thumbprint, or a
 * confirmation method it does not check (jwk, jku, kid, ...): such a token
 * is refused, never taken as unbound. */
bool mandate_cnf_of_claims(mandate_pool *pool, const json_t *claims, mandate_cnf *cnf_r,
                           const char **why_r);

/* Whether the request holds what cnf binds the presented token (named by
 * what: "subject_token", "assertion", "ID-JAG") to: a DPoP proof of its key
 * (already checked by mandate_dpop_token_request) and the client
 * certificate of its thumbprint. false: *oerr is invalid_grant
 * (draft-ietf-oauth-identity-assertion-authz-grant, sender constraining). */
bool mandate_cnf_held(mandate_http_request *req, const mandate_cnf *cnf, const char *what,
                      mandate_oauth_error *oerr);

/* The new grant bound to what the presented token was (the request holds
 * it: mandate_cnf_held), whatever the client's own settings. */
void mandate_cnf_carry(const mandate_cnf *cnf, mandate_grant *grant);

/* The binding into the audit fields of a request: bound_jkt,
 * bound_x5t_s256, and the proof's key (proof_jkt) when it differs. */
void mandate_cnf_audit(const mandate_http_request *req, const mandate_cnf *cnf, json_t *fields);

#endif
