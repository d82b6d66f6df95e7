/* RFC 6749 §4.4 client credentials: the client acts for itself, with the
 * scopes and audiences it is allowed. */
#include "config.h"

#include "grants-private.h"
#include "issue-private.h"
#include "log-private.h"
#include "oauth-private.h"
#include "runtime-private.h"

void mandate_grant_client_credentials(mandate_http_request *req, mandate_http_response *resp,
                                      const mandate_form *form)
{
    static const char grant_type[] = "client_credentials";
    mandate_oauth_error oerr;
    mandate_client client;
    if (mandate_client_authenticate(req, form, &client, &oerr) != MANDATE_OK) {
        mandate_token_refuse(req, resp, &oerr, grant_type, NULL, NULL);
        return;
    }
    const char *requested = mandate_form_get(form, "scope");
    log_info("token request: client_id=%s, scopes=[%s]", client.client_id,
             requested ? requested : "(default)");
    if (!mandate_token_within_rate(req, resp, &client, grant_type))
        return;
    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    mandate_grant grant = {0};
    if (mandate_policy_scope(req->pool, &client, requested, &grant.scope, &oerr) !=
            MANDATE_OK ||
        mandate_policy_audience(req->pool, &client, mandate_form_find(form, "resource"),
                                &grant.audience, &oerr) != MANDATE_OK) {
        log_info("token refused: client_id=%s: %s", client.client_id, oerr.description);
        mandate_token_refuse(req, resp, &oerr, grant_type, client.client_id, NULL);
        return;
    }
    grant.subject = client.client_id;
    grant.client_id = client.client_id;
    grant.tenant = client.tenant;
    if (!mandate_token_grant_start(req, &grant, mandate_policy_lifetime(cfg, &client), 0)) {
        mandate_oauth_fail_rc(&oerr, MANDATE_ERROR);
        oerr.reason = "no random bytes for the jti";
        mandate_token_refuse(req, resp, &oerr, grant_type, client.client_id, NULL);
        return;
    }
    mandate_token_issue(req, resp, &client, &grant, grant_type, NULL, NULL);
}
