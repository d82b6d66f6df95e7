/* Cross-origin requests from browser-based clients (the MCP Inspector, a
 * single-page application): the endpoints such a client calls itself
 * (metadata, JWKS, token, revocation, registration) answer with CORS
 * headers; the router never gives them to the pages a person sees
 * (authorize, consent, login: navigations, which need none) nor to the
 * servers' own endpoints (introspection, the gateway check, metrics).
 * Credentials are never allowed cross-origin: these endpoints take none
 * from cookies, so a page of another origin can do no more with them than
 * a script holding the same client credentials could. */
#include "config.h"

#include <string.h>

#include "config-private.h"
#include "cors-private.h"
#include "pool-private.h"
#include "runtime-private.h"

/* What Access-Control-Allow-Origin says for this request, or NULL. */
static const char *allowed_origin(mandate_http_request *req, bool *listed_r)
{
    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    const char *origin = mandate_http_request_header(req, "Origin");
    *listed_r = cfg->cors_origins != NULL;
    if (!cfg->cors || origin == NULL)
        return NULL;
    if (cfg->cors_origins == NULL)
        return "*";
    for (char **o = cfg->cors_origins; *o != NULL; o++)
        if (strcmp(*o, origin) == 0)
            return origin;
    return NULL;
}

/* Access-Control-Allow-Origin when this request's origin may read the
 * answer (and Vary when the answer depends on it); false: it may not. */
static bool allow_origin(mandate_http_request *req, mandate_http_response *resp)
{
    bool listed;
    const char *origin = allowed_origin(req, &listed);
    if (listed)
        mandate_http_response_header(resp, "Vary", "Origin");
    if (origin == NULL)
        return false;
    mandate_http_response_header(resp, "Access-Control-Allow-Origin", origin);
    return true;
}

void mandate_cors_response(mandate_http_request *req, mandate_http_response *resp)
{
    if (!allow_origin(req, resp))
        return;
    /* a client reads the challenge of a 401 (RFC 6750, RFC 9449) */
    mandate_http_response_header(resp, "Access-Control-Expose-Headers",
                                 "WWW-Authenticate, DPoP-Nonce");
}

void mandate_cors_preflight(mandate_http_request *req, mandate_http_response *resp,
                            const char *methods)
{
    resp->status = 204;
    const char *allow = mandate_pool_printf(req->pool, "%s, OPTIONS", methods);
    mandate_http_response_header(resp, "Allow", allow);
    if (!allow_origin(req, resp))
        return;
    mandate_http_response_header(resp, "Access-Control-Allow-Methods", allow);
    mandate_http_response_header(resp, "Access-Control-Allow-Headers",
                                 "Authorization, Content-Type, DPoP, MCP-Protocol-Version");
    mandate_http_response_header(resp, "Access-Control-Max-Age", "600");
}
