#include "config.h"

#include <string.h>

#include "cors-private.h"
#include "endpoints-private.h"
#include "log-private.h"
#include "pool-private.h"
#include "router-private.h"

typedef struct route {
    const char *method; /* NULL: any */
    const char *path;
    mandate_http_handler handler;
    bool prefix;        /* path is a prefix: "/gateway/check/..." */
    const char *cors;   /* the methods a page of another origin may call it
                           with (core/cors.c says which endpoints); NULL: none */
} route;

static const route routes[] = {
    {"GET", "/healthz", mandate_endpoint_healthz, false, NULL},
    {"HEAD", "/healthz", mandate_endpoint_healthz, false, NULL},
    {"GET", "/readyz", mandate_endpoint_readyz, false, NULL},
    {"HEAD", "/readyz", mandate_endpoint_readyz, false, NULL},
    {"POST", "/oauth2/token", mandate_endpoint_token, false, "POST"},
    {"GET", "/oauth2/jwks", mandate_endpoint_jwks, false, "GET"},
    {"GET", "/.well-known/oauth-authorization-server", mandate_endpoint_metadata, false, "GET"},
    /* no /.well-known/openid-configuration: Mandate issues no id_token, and
     * an OpenID Connect client must not take it for a provider (issue 24);
     * give OIDC libraries the RFC 8414 URL */
    /* RFC 8414 §3.1: an issuer with a path has it inserted after the prefix */
    {"GET", "/.well-known/oauth-authorization-server/", mandate_endpoint_metadata, true, "GET"},
    {"POST", "/oauth2/introspect", mandate_endpoint_introspect, false, NULL},
    {"POST", "/oauth2/revoke", mandate_endpoint_revoke, false, "POST"},
    {"GET", "/metrics", mandate_endpoint_metrics, false, NULL},
    {"GET", "/oauth2/authorize", mandate_endpoint_authorize, false, NULL},
    {"POST", "/oauth2/authorize/choose", mandate_endpoint_authorize_choose, false, NULL},
    {"POST", "/oauth2/par", mandate_endpoint_par, false, NULL},
    {NULL, "/login/", mandate_endpoint_login, true, NULL},
    {"POST", "/consent", mandate_endpoint_consent, false, NULL},
    {"GET", "/logout", mandate_endpoint_logout, false, NULL},
    {"POST", "/logout", mandate_endpoint_logout, false, NULL},
    /* any method: the endpoint answers 404 while registration is off */
    {NULL, "/oauth2/register", mandate_endpoint_register, false, "POST"},
    /* nginx auth_request keeps the original method; Envoy appends the path */
    {NULL, "/gateway/check", mandate_endpoint_gateway_check, false, NULL},
    {NULL, "/gateway/check/", mandate_endpoint_gateway_check, true, NULL},
};

void mandate_router_dispatch(mandate_http_request *req, mandate_http_response *resp)
{
    const char *allowed[8];
    size_t n_allowed = 0;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        bool match = routes[i].prefix
                         ? strncmp(routes[i].path, req->path, strlen(routes[i].path)) == 0
                         : strcmp(routes[i].path, req->path) == 0;
        if (!match)
            continue;
        if (routes[i].cors != NULL && strcmp(req->method, "OPTIONS") == 0) {
            mandate_cors_preflight(req, resp, routes[i].cors);
            return;
        }
        if (routes[i].method == NULL || strcmp(routes[i].method, req->method) == 0) {
            routes[i].handler(req, resp);
            if (routes[i].cors != NULL)
                mandate_cors_response(req, resp);
            return;
        }
        if (n_allowed < sizeof(allowed) / sizeof(allowed[0]))
            allowed[n_allowed++] = routes[i].method;
    }
    if (n_allowed == 0) {
        mandate_http_response_error(req, resp, 404, "not_found", "no such endpoint");
        return;
    }
    size_t len = 1;
    for (size_t i = 0; i < n_allowed; i++)
        len += strlen(allowed[i]) + 2;
    char *allow = mandate_pool_alloc(req->pool, len);
    for (size_t i = 0; i < n_allowed; i++) {
        if (i > 0)
            strcat(allow, ", ");
        strcat(allow, allowed[i]);
    }
    mandate_http_response_error(req, resp, 405, "invalid_request",
                                "method not allowed on this endpoint");
    mandate_http_response_header(resp, "Allow", allow);
}
