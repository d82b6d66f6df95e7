/* Maps method and path to an endpoint. */
#ifndef MANDATE_ROUTER_PRIVATE_H
#define MANDATE_ROUTER_PRIVATE_H

#include "http-private.h"

void mandate_router_dispatch(mandate_http_request *req, mandate_http_response *resp);

#endif
