/* The grants of POST /oauth2/token beyond client credentials, and what every
 * grant shares: minting and answering (RFC 6749 §5.1), refusing (§5.2), both
 * audited. */
#ifndef MANDATE_GRANTS_PRIVATE_H
#define MANDATE_GRANTS_PRIVATE_H

#include <jansson.h>
#include <mandate/backend.h>
#include <mandate/format.h>
#include <mandate/store.h>

#include "form-private.h"
#include "http-private.h"
#include "mapping-private.h"
#include "runtime-private.h"
#include "oauth-private.h"

#define MANDATE_GRANT_TOKEN_EXCHANGE_URI "urn:ietf:params:oauth:grant-type:token-exchange"
#define MANDATE_GRANT_SAML2_BEARER_URI "urn:ietf:params:oauth:grant-type:saml2-bearer"
#define MANDATE_TOKEN_TYPE_ACCESS "urn:ietf:params:oauth:token-type:access_token"
#define MANDATE_TOKEN_TYPE_JWT "urn:ietf:params:oauth:token-type:jwt"
#define MANDATE_TOKEN_TYPE_SAML2 "urn:ietf:params:oauth:token-type:saml2"
#define MANDATE_TOKEN_TYPE_ID_TOKEN "urn:ietf:params:oauth:token-type:id_token"
/* draft-ietf-oauth-identity-assertion-authz-grant */
#define MANDATE_TOKEN_TYPE_ID_JAG "urn:ietf:params:oauth:token-type:id-jag"
#define MANDATE_GRANT_JWT_BEARER_URI "urn:ietf:params:oauth:grant-type:jwt-bearer"
#define MANDATE_ID_JAG_TYP "oauth-id-jag+jwt"

/* Mints grant with the client's format, records token.issued (with the
 * members of extra, stolen, may be NULL) and answers; issued_token_type
 * (RFC 8693) goes into the response when not NULL. */
void mandate_token_issue(mandate_http_request *req, mandate_http_response *resp,
                         const mandate_client *client, const mandate_grant *grant,
                         const char *grant_type, json_t *extra, const char *issued_token_type);
/* The second half of mandate_token_issue, for a token already made (by
 * fmt): records token.issued and answers; token_type is "N_A" when
 * issued_token_type is an ID-JAG (RFC 8693 §2.2.1), else "Bearer". */
void mandate_token_answer(mandate_http_request *req, mandate_http_response *resp,
                          const mandate_client *client, const mandate_grant *grant,
                          const char *token, const mandate_instance *fmt,
                          const char *grant_type, json_t *extra, const char *issued_token_type);
/* Records token.refused with the reason (and extra, stolen, may be NULL),
 * then answers the error. */
void mandate_token_refuse(mandate_http_request *req, mandate_http_response *resp,
                          const mandate_oauth_error *oerr, const char *grant_type,
                          const char *client_id, json_t *extra);
/* The client's rate limit on the token endpoint: false when over it, with
 * the 429 answered and audited. */
bool mandate_token_within_rate(mandate_http_request *req, mandate_http_response *resp,
                               const mandate_client *client, const char *grant_type);
/* The issuer, a fresh jti and the times of a grant that lives lifetime
 * seconds from now, never past not_after (0: no bound). false: no
 * randomness for the jti. */
bool mandate_token_grant_start(mandate_http_request *req, mandate_grant *grant,
                               int64_t lifetime, int64_t not_after);
/* 128 random bits, base64url; NULL when there is no randomness. */
const char *mandate_token_new_jti(mandate_pool *pool);

/* RFC 8693 token exchange: a SAML assertion (through a backend and the
 * mapping rules) or one of our own access tokens (narrowed, handed down). */
void mandate_grant_token_exchange(mandate_http_request *req, mandate_http_response *resp,
                                  const mandate_form *form);
/* RFC 7522 SAML 2.0 bearer grant. */
void mandate_grant_saml2_bearer(mandate_http_request *req, mandate_http_response *resp,
                                const mandate_form *form);
/* RFC 7523 JWT bearer grant: an upstream JWT through a backend and the
 * mapping rules, or an ID-JAG. */
void mandate_grant_jwt_bearer(mandate_http_request *req, mandate_http_response *resp,
                              const mandate_form *form);

/* A federated subject token: the backend that vouched for it, what it says
 * and, once mapped, the grant the mapping rules make of it. */
typedef struct mandate_federated {
    const char *token_type;
    const mandate_instance *backend;
    mandate_identity id;
    mandate_mapping_result mapped;
} mandate_federated;

/* The backend that accepts the token (of token_type) and its identity.
 * false: refused, answered and audited. */
bool mandate_federated_validate(mandate_http_request *req, mandate_http_response *resp,
                                const mandate_client *client, const char *grant_type,
                                const char *token_type, const char *assertion,
                                mandate_federated *fed_r);
/* The same, then the mapping rules, with the request's scope and
 * requested_audience (space-separated, may be NULL). */
bool mandate_federated_map(mandate_http_request *req, mandate_http_response *resp,
                           const mandate_form *form, const mandate_client *client,
                           const char *grant_type, const char *token_type, const char *assertion,
                           const char *requested_audience, mandate_federated *fed_r);
/* What the audit trail says of a federated request; any of backend, id and
 * m may be NULL. */
json_t *mandate_federated_fields(const char *token_type, const mandate_instance *backend,
                                 const mandate_identity *id, const mandate_mapping_result *m);

/* Identity Assertion JWT Authorization Grants
 * (draft-ietf-oauth-identity-assertion-authz-grant). */
/* Whether a JWT's header says it is an ID-JAG (typ oauth-id-jag+jwt). */
bool mandate_id_jag_is(const char *jwt);
/* As the enterprise broker: token exchange of a sign-in (SAML, id_token) for
 * an ID-JAG signed by us, for a resource authorization server of
 * id_jag.audiences. */
void mandate_id_jag_issue(mandate_http_request *req, mandate_http_response *resp,
                          const mandate_form *form, const mandate_client *client,
                          const char *subject_token_type, const char *subject_token);
/* As the resource authorization server: an ID-JAG from a trusted IdP (an
 * oidc backend instance that accepts "id-jag"), through the JWT bearer
 * grant, for an access token within the ID-JAG's scopes. */
void mandate_id_jag_accept(mandate_http_request *req, mandate_http_response *resp,
                           const mandate_form *form, const mandate_client *client,
                           const char *assertion);

#endif
