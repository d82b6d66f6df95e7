/* The grants of POST /oauth2/token beyond client credentials, and what every
 * grant shares: minting and answering (RFC 6749 §5.1), refusing (§5.2), both
 * audited. */
#ifndef MANDATE_GRANTS_PRIVATE_H
#define MANDATE_GRANTS_PRIVATE_H

#include <jansson.h>
#include <mandate/format.h>
#include <mandate/store.h>

#include "form-private.h"
#include "http-private.h"
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
/* Records token.refused with the reason (and extra, stolen, may be NULL),
 * then answers the error. */
void mandate_token_refuse(mandate_http_request *req, mandate_http_response *resp,
                          const mandate_oauth_error *oerr, const char *grant_type,
                          const char *client_id, json_t *extra);
/* The client's rate limit on the token endpoint: false when over it, with
 * the 429 answered and audited. */
bool mandate_token_within_rate(mandate_http_request *req, mandate_http_response *resp,
                               const mandate_client *client, const char *grant_type);
/* 128 random bits, base64url; NULL when there is no randomness. */
const char *mandate_token_new_jti(mandate_pool *pool);

/* RFC 8693 token exchange: a SAML assertion (through a backend and the
 * mapping rules) or one of our own access tokens (narrowed, handed down). */
void mandate_grant_token_exchange(mandate_http_request *req, mandate_http_response *resp,
                                  const mandate_form *form);
/* RFC 7522 SAML 2.0 bearer grant. */
void mandate_grant_saml2_bearer(mandate_http_request *req, mandate_http_response *resp,
                                const mandate_form *form);

#endif
