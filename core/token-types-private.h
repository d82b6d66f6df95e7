/* The RFC 8693 token type URIs the broker reads and writes, and the typ of
 * an ID-JAG: names only, shared by the grants, the issuing floor and
 * mandatectl mapping test. */
#ifndef MANDATE_TOKEN_TYPES_PRIVATE_H
#define MANDATE_TOKEN_TYPES_PRIVATE_H

#define MANDATE_TOKEN_TYPE_ACCESS "urn:ietf:params:oauth:token-type:access_token"
#define MANDATE_TOKEN_TYPE_JWT "urn:ietf:params:oauth:token-type:jwt"
#define MANDATE_TOKEN_TYPE_SAML2 "urn:ietf:params:oauth:token-type:saml2"
#define MANDATE_TOKEN_TYPE_ID_TOKEN "urn:ietf:params:oauth:token-type:id_token"
/* draft-ietf-oauth-identity-assertion-authz-grant */
#define MANDATE_TOKEN_TYPE_ID_JAG "urn:ietf:params:oauth:token-type:id-jag"
#define MANDATE_ID_JAG_TYP "oauth-id-jag+jwt"

#endif
