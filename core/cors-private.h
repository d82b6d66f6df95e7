#ifndef MANDATE_CORS_PRIVATE_H
#define MANDATE_CORS_PRIVATE_H

#include "http-private.h"

/* The headers a browser needs to read this answer from a page of another
 * origin (server.cors, server.cors_origins); nothing when the request
 * names no Origin or the origin is not allowed. */
void mandate_cors_response(mandate_http_request *req, mandate_http_response *resp);

/* Answers a CORS preflight (OPTIONS) for an endpoint that takes `methods`
 * (e.g. "POST"): 204, with the permissions only when the origin is
 * allowed. */
void mandate_cors_preflight(mandate_http_request *req, mandate_http_response *resp,
                            const char *methods);

#endif
