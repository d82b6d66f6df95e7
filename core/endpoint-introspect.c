/* POST /oauth2/introspect (RFC 7662) and POST /oauth2/revoke (RFC 7009). */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "endpoints-private.h"
#include "log-private.h"
#include "oauth-private.h"
#include "pool-private.h"
#include "validate-private.h"

/* Both endpoints: a form body from an authenticated client, with `token`. */
static bool read_request(mandate_http_request *req, mandate_http_response *resp,
                         mandate_form *form, mandate_client *caller, const char **token_r)
{
    mandate_oauth_error oerr;
    mandate_error err = {0};
    const char *ct = mandate_http_request_header(req, "Content-Type");
    if (ct == NULL || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0) {
        mandate_oauth_fail(&oerr, 400, "invalid_request",
                           "Content-Type must be application/x-www-form-urlencoded");
    } else if (mandate_form_parse(req->pool, req->body, req->body_len, NULL, form, &err) !=
               MANDATE_OK) {
        mandate_oauth_fail(&oerr, 400, "invalid_request",
                           mandate_pool_strdup(req->pool, err.message));
    } else if (mandate_client_authenticate(req, form, caller, &oerr) == MANDATE_OK) {
        *token_r = mandate_form_get(form, "token");
        if (*token_r != NULL)
            return true;
        mandate_oauth_fail(&oerr, 400, "invalid_request", "token is missing");
    }
    mandate_oauth_respond_error(req, resp, &oerr);
    return false;
}

static void inactive(mandate_http_request *req, mandate_http_response *resp)
{
    mandate_http_response_json(req, resp, 200, json_pack("{s:b}", "active", 0));
    mandate_http_response_header(resp, "Cache-Control", "no-store");
}

void mandate_endpoint_introspect(mandate_http_request *req, mandate_http_response *resp)
{
    mandate_form form;
    mandate_client caller;
    const char *token;
    if (!read_request(req, resp, &form, &caller, &token))
        return;
    if (!(caller.flags & MANDATE_CLIENT_CAN_INTROSPECT)) {
        log_info("introspection refused: client_id=%s may not introspect", caller.client_id);
        mandate_oauth_error oerr;
        mandate_oauth_fail(&oerr, 403, "unauthorized_client",
                           "this client may not introspect tokens");
        mandate_oauth_respond_error(req, resp, &oerr);
        return;
    }
    mandate_token_status st;
    mandate_error err = {0};
    mandate_rc rc = mandate_token_validate(req->runtime, req->pool, token, strlen(token), &st,
                                           &err);
    if (rc == MANDATE_TEMPFAIL || rc == MANDATE_ERROR) {
        log_error("introspection: %s", err.message);
        mandate_oauth_error oerr;
        mandate_oauth_fail_rc(&oerr, rc);
        mandate_oauth_respond_error(req, resp, &oerr);
        return;
    }
    /* a token of another tenant does not exist for this caller */
    if (rc == MANDATE_OK && (st.grant.tenant == NULL || caller.tenant == NULL ||
                             strcmp(st.grant.tenant, caller.tenant) != 0)) {
        rc = MANDATE_INVALID;
        st.reason = "of another tenant";
    }
    log_info("token validation: token_valid=%s, client=%s, by=%s%s%s",
             rc == MANDATE_OK ? "true" : "false",
             st.parsed && st.grant.client_id ? st.grant.client_id : "-", caller.client_id,
             rc == MANDATE_OK ? "" : ": ", rc == MANDATE_OK ? "" : st.reason);
    if (rc != MANDATE_OK) {
        inactive(req, resp);
        return;
    }
    mandate_http_response_json(req, resp, 200, mandate_grant_to_introspection(&st.grant));
    mandate_http_response_header(resp, "Cache-Control", "no-store");
}

void mandate_endpoint_revoke(mandate_http_request *req, mandate_http_response *resp)
{
    mandate_form form;
    mandate_client caller;
    const char *token;
    if (!read_request(req, resp, &form, &caller, &token))
        return;
    mandate_token_status st;
    mandate_error err = {0};
    mandate_rc rc = mandate_token_validate(req->runtime, req->pool, token, strlen(token), &st,
                                           &err);
    if (rc == MANDATE_TEMPFAIL || rc == MANDATE_ERROR) {
        log_error("revocation: %s", err.message);
        mandate_oauth_error oerr;
        mandate_oauth_fail_rc(&oerr, rc);
        mandate_oauth_respond_error(req, resp, &oerr);
        return;
    }
    /* RFC 7009 §2.2: an invalid or already dead token is answered 200 */
    if (st.parsed && st.grant.client_id != NULL &&
        strcmp(st.grant.client_id, caller.client_id) != 0) {
        log_info("revocation refused: client_id=%s does not own token jti=%s", caller.client_id,
                 st.grant.jti ? st.grant.jti : "-");
        mandate_oauth_error oerr;
        mandate_oauth_fail(&oerr, 400, "unauthorized_client",
                           "the token was not issued to this client");
        mandate_oauth_respond_error(req, resp, &oerr);
        return;
    }
    if (st.parsed && st.grant.jti != NULL) {
        void *store;
        const mandate_store_ops *ops = mandate_runtime_store(req->runtime, &store);
        rc = ops->revoke(store, st.grant.jti, st.grant.client_id, st.grant.expires_at, &err);
        if (rc != MANDATE_OK) {
            log_error("revocation of jti=%s: %s", st.grant.jti, err.message);
            mandate_oauth_error oerr;
            mandate_oauth_fail_rc(&oerr, rc);
            mandate_oauth_respond_error(req, resp, &oerr);
            return;
        }
        log_info("token revoked: jti=%s client_id=%s", st.grant.jti, caller.client_id);
    }
    resp->status = 200;
    mandate_http_response_header(resp, "Cache-Control", "no-store");
}
