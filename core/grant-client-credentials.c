/* RFC 6749 §4.4 client credentials: the client acts for itself, with the
 * scopes and audiences it is allowed. */
#include "config.h"

#include <string.h>

#include "grants-private.h"
#include "issue-private.h"
#include "log-private.h"
#include "oauth-private.h"
#include "pool-private.h"
#include "runtime-private.h"
#include "signin-private.h"
#include "word-list.h"

/* The workshop's spelling of a scope list: "a, b" */
static const char *workshop_scopes(mandate_pool *pool, const char *scope)
{
    if (scope == NULL)
        return "(default)";
    char *out = mandate_pool_alloc(pool, 2 * strlen(scope) + 1);
    size_t used = 0, n;
    const char *w;
    while (mandate_word_list_next(&scope, &w, &n)) {
        if (used > 0) {
            memcpy(out + used, ", ", 2);
            used += 2;
        }
        memcpy(out + used, w, n);
        used += n;
    }
    out[used] = '\0';
    return out;
}

void mandate_grant_client_credentials(mandate_http_request *req, mandate_http_response *resp,
                                      const mandate_form *form)
{
    static const char grant_type[] = "client_credentials";
    mandate_oauth_error oerr;
    mandate_client client;
    const char *requested = mandate_form_get(form, "scope");
    /* the workshop's lines, in its order (its operators grep for them):
     * Token request, Credentials validated, Token issued */
    log_info("Token request: client_id=%s, scopes=[%s]", mandate_client_claimed_id(req, form),
             workshop_scopes(req->pool, requested));
    if (mandate_client_authenticate(req, form, &client, &oerr) != MANDATE_OK) {
        mandate_token_refuse(req, resp, &oerr, grant_type, NULL, NULL);
        return;
    }
    if (!mandate_signin_grant_registered(req, resp, &client, grant_type) ||
        !mandate_token_within_rate(req, resp, &client, grant_type))
        return;
    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    mandate_grant grant = {0};
    if (mandate_policy_scope(req->pool, &client, requested, &grant.scope, &oerr) !=
            MANDATE_OK ||
        mandate_policy_audience(req->pool, &client, mandate_form_find(form, "resource"),
                                cfg->default_resource, &grant.audience, &oerr) != MANDATE_OK) {
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
