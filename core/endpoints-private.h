/* The endpoints, one file each; the router calls them. */
#ifndef MANDATE_ENDPOINTS_PRIVATE_H
#define MANDATE_ENDPOINTS_PRIVATE_H

#include "http-private.h"

void mandate_endpoint_healthz(mandate_http_request *req, mandate_http_response *resp);
void mandate_endpoint_readyz(mandate_http_request *req, mandate_http_response *resp);
void mandate_endpoint_token(mandate_http_request *req, mandate_http_response *resp);
void mandate_endpoint_metadata(mandate_http_request *req, mandate_http_response *resp);
void mandate_endpoint_jwks(mandate_http_request *req, mandate_http_response *resp);
void mandate_endpoint_introspect(mandate_http_request *req, mandate_http_response *resp);
void mandate_endpoint_revoke(mandate_http_request *req, mandate_http_response *resp);
void mandate_endpoint_gateway_check(mandate_http_request *req, mandate_http_response *resp);
void mandate_endpoint_metrics(mandate_http_request *req, mandate_http_response *resp);
/* People's sign-in: endpoint-authorize.c, endpoint-login.c, endpoint-consent.c */
void mandate_endpoint_authorize(mandate_http_request *req, mandate_http_response *resp);
void mandate_endpoint_authorize_choose(mandate_http_request *req, mandate_http_response *resp);
/* Pushed authorization requests (RFC 9126): endpoint-par.c */
void mandate_endpoint_par(mandate_http_request *req, mandate_http_response *resp);
void mandate_endpoint_login(mandate_http_request *req, mandate_http_response *resp);
void mandate_endpoint_consent(mandate_http_request *req, mandate_http_response *resp);
void mandate_endpoint_logout(mandate_http_request *req, mandate_http_response *resp);
/* POST /oauth2/register (RFC 7591): core/endpoint-register.c */
void mandate_endpoint_register(mandate_http_request *req, mandate_http_response *resp);

#endif
