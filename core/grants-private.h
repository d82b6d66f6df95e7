/* The grants of POST /oauth2/token, one file each (grant-*.c), which the
 * endpoint finds in the grant table (grant-table-private.h). Each
 * authenticates its client, decides, and ends on the issuing floor
 * (issue-private.h); the federated ones share federation-private.h. */
#ifndef MANDATE_GRANTS_PRIVATE_H
#define MANDATE_GRANTS_PRIVATE_H

#include <stdbool.h>

#include <mandate/store.h>

#include "form-private.h"
#include "http-private.h"

#define MANDATE_GRANT_CLIENT_CREDENTIALS_URI "client_credentials"
#define MANDATE_GRANT_TOKEN_EXCHANGE_URI "urn:ietf:params:oauth:grant-type:token-exchange"
#define MANDATE_GRANT_SAML2_BEARER_URI "urn:ietf:params:oauth:grant-type:saml2-bearer"
#define MANDATE_GRANT_JWT_BEARER_URI "urn:ietf:params:oauth:grant-type:jwt-bearer"

#define MANDATE_GRANT_AUTHORIZATION_CODE_URI "authorization_code"
#define MANDATE_GRANT_REFRESH_TOKEN_URI "refresh_token"

/* What every grant is: it answers one token request whose form is read. */
typedef void mandate_grant_fn(mandate_http_request *req, mandate_http_response *resp,
                              const mandate_form *form);

/* People's sign-in (grant-authorization-code.c): the code of the
 * authorization endpoint (PKCE), and refresh tokens rotated on use. */
mandate_grant_fn mandate_grant_authorization_code;
mandate_grant_fn mandate_grant_refresh_token;

/* RFC 6749 §4.4 client credentials (grant-client-credentials.c). */
mandate_grant_fn mandate_grant_client_credentials;
/* RFC 8693 token exchange: a SAML assertion (through a backend and the
 * mapping rules) or one of our own access tokens (narrowed, handed down)
 * (grant-federated.c). */
mandate_grant_fn mandate_grant_token_exchange;
/* RFC 7522 SAML 2.0 bearer grant (grant-federated.c). */
mandate_grant_fn mandate_grant_saml2_bearer;
/* RFC 7523 JWT bearer grant: an upstream JWT through a backend and the
 * mapping rules, or an ID-JAG (grant-federated.c). */
mandate_grant_fn mandate_grant_jwt_bearer;

/* Identity Assertion JWT Authorization Grants
 * (draft-ietf-oauth-identity-assertion-authz-grant), grant-id-jag.c; the
 * token exchange and the JWT bearer grant hand over to them. */
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
