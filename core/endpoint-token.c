/* POST /oauth2/token: the form, then the grant that its grant_type names
 * in the grant table (grant-table-private.h); the grants themselves are in
 * grant-*.c, what they share below them (issue.c, federation.c). */
#include "config.h"

#include "dpop-binding-private.h"
#include "endpoints-private.h"
#include "grant-table-private.h"
#include "issue-private.h"
#include "mtls-private.h"
#include "oauth-private.h"
#include "pool-private.h"

static const char *const repeatable_params[] = {"resource", "audience", NULL};

void mandate_endpoint_token(mandate_http_request *req, mandate_http_response *resp)
{
    mandate_oauth_error oerr;
    if (!mandate_form_content_type_ok(mandate_http_request_header(req, "Content-Type"))) {
        mandate_oauth_fail(&oerr, 400, "invalid_request",
                           "Content-Type must be application/x-www-form-urlencoded");
        mandate_token_refuse(req, resp, &oerr, NULL, NULL, NULL);
        return;
    }
    mandate_form form;
    mandate_error err = {0};
    if (mandate_form_parse(req->pool, req->body, req->body_len, repeatable_params, &form,
                           &err) != MANDATE_OK) {
        mandate_oauth_fail(&oerr, 400, "invalid_request",
                           mandate_pool_strdup(req->pool, err.message));
        mandate_token_refuse(req, resp, &oerr, NULL, NULL, NULL);
        return;
    }
    const char *grant_type = mandate_form_get(&form, "grant_type");
    req->metric_grant = mandate_grant_table_metric_slot(grant_type);
    const mandate_grant_type *grant = mandate_grant_table_find(grant_type);
    if (grant_type == NULL) {
        mandate_oauth_fail(&oerr, 400, "invalid_request", "grant_type is missing");
    } else if (grant != NULL) {
        /* RFC 9449: a proof, when there is one, before any grant decides */
        /* RFC 8705: and a client certificate that cannot be believed */
        if (mandate_dpop_token_request(req, resp, grant_type) &&
            mandate_mtls_token_request(req, resp, grant_type))
            grant->handle(req, resp, &form);
        return;
    } else {
        mandate_oauth_fail(&oerr, 400, "unsupported_grant_type",
                           "this broker does not support that grant_type");
    }
    mandate_token_refuse(req, resp, &oerr, grant_type, NULL, NULL);
}
