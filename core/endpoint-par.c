/* POST /oauth2/par: pushed authorization requests (RFC 9126). The client
 * authenticates as at the token endpoint (a public client names itself),
 * sends the parameters of an authorization request, which are checked as
 * /oauth2/authorize checks them (mandate_signin_request_read) and kept as a
 * pending authorization for par.lifetime seconds, single use, under the
 * secret part of the request_uri answered. /oauth2/authorize then takes it
 * with client_id and request_uri (endpoint-authorize.c).
 *
 * A DPoP proof here (RFC 9449 §10.1) binds the code to its key, as
 * dpop_jkt does; both must then name the same key. */
#include "config.h"

#include <string.h>

#include "audit-events-private.h"
#include "dpop-binding-private.h"
#include "endpoints-private.h"
#include "issue-private.h"
#include "log-private.h"
#include "oauth-private.h"
#include "pool-private.h"
#include "profile-private.h"
#include "runtime-private.h"
#include "signin-private.h"

#define PAR_REFUSED "par.refused"

static const char *const repeatable_params[] = {"resource", NULL};

static void refuse(mandate_http_request *req, mandate_http_response *resp, unsigned status,
                   const char *error, const char *description, const char *reason,
                   const char *client_id)
{
    mandate_oauth_error oerr;
    mandate_oauth_fail(&oerr, status, error, description);
    oerr.reason = reason;
    mandate_oauth_refuse(req, resp, PAR_REFUSED, &oerr, NULL, client_id, NULL);
}

void mandate_endpoint_par(mandate_http_request *req, mandate_http_response *resp)
{
    mandate_oauth_error oerr;
    mandate_error err = {0};
    if (!mandate_signin_available(req->runtime)) {
        mandate_http_response_error(req, resp, 404, "not_found", "no such endpoint");
        return;
    }
    if (!mandate_form_content_type_ok(mandate_http_request_header(req, "Content-Type"))) {
        refuse(req, resp, 400, "invalid_request",
               "Content-Type must be application/x-www-form-urlencoded", NULL, NULL);
        return;
    }
    mandate_form form;
    if (mandate_form_parse(req->pool, req->body, req->body_len, repeatable_params, &form,
                           &err) != MANDATE_OK) {
        refuse(req, resp, 400, "invalid_request", mandate_pool_strdup(req->pool, err.message),
               NULL, NULL);
        return;
    }
    mandate_client client;
    if (!mandate_signin_token_client(req, &form, &client, &oerr)) {
        if (mandate_http_request_is_set_aside(req))
            return; /* served again once the client's document is fetched */
        mandate_oauth_refuse(req, resp, PAR_REFUSED, &oerr, NULL, NULL, NULL);
        return;
    }
    /* a public client is named by anyone: the pushes of one client, kept
     * for a minute each, are held to its token endpoint allowance (per
     * address when it did not authenticate, so one address spends only
     * its own share) */
    if (!mandate_oauth_within_rate(req, resp, PAR_REFUSED, &client, NULL))
        return;
    const char *client_id = mandate_form_get(&form, "client_id");
    if (client_id != NULL && strcmp(client_id, client.client_id) != 0) {
        refuse(req, resp, 400, "invalid_request", "client_id is not the authenticated client",
               NULL, client.client_id);
        return;
    }
    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    const char *why = mandate_profile_auth_refusal(req, cfg, &client);
    if (why != NULL) {
        refuse(req, resp, 401, "invalid_client", why, why, client.client_id);
        return;
    }
    /* RFC 9126 §2.1: a request_uri is not pushed */
    if (mandate_form_get(&form, "request_uri") != NULL) {
        refuse(req, resp, 400, "invalid_request", "request_uri is not accepted here", NULL,
               client.client_id);
        return;
    }
    if (mandate_form_get(&form, "request") != NULL) {
        refuse(req, resp, 400, "request_not_supported",
               "request objects (JAR) are not supported", NULL, client.client_id);
        return;
    }
    const char *redirect_uri = mandate_form_get(&form, "redirect_uri");
    if (redirect_uri == NULL || !mandate_signin_redirect_ok(req->pool, &client, redirect_uri)) {
        refuse(req, resp, 400, "invalid_request",
               redirect_uri == NULL ? "redirect_uri is missing"
                                    : "redirect_uri is not among the client's",
               NULL, client.client_id);
        return;
    }
    why = mandate_profile_redirect_refusal(cfg, &client, redirect_uri);
    if (why != NULL) {
        refuse(req, resp, 400, "invalid_request", why, why, client.client_id);
        return;
    }
    mandate_pending p = {.client_id = client.client_id, .redirect_uri = redirect_uri};
    const char *error, *description;
    if (!mandate_signin_request_read(req, &form, &client, &p, &error, &description)) {
        refuse(req, resp, 400, error, description, NULL, client.client_id);
        return;
    }
    /* RFC 9449 §10.1: a proof binds the code to its key; its jti claimed
     * now that the client is authenticated (above) */
    if (!mandate_dpop_endpoint_request(req, resp, "/oauth2/par", PAR_REFUSED, NULL) ||
        !mandate_dpop_request_claim(req, resp, PAR_REFUSED, NULL, client.client_id))
        return;
    if (req->dpop_jkt != NULL) {
        if (p.dpop_jkt != NULL && strcmp(p.dpop_jkt, req->dpop_jkt) != 0) {
            refuse(req, resp, 400, "invalid_dpop_proof",
                   "dpop_jkt is not the thumbprint of the DPoP proof's key", NULL,
                   client.client_id);
            return;
        }
        p.dpop_jkt = req->dpop_jkt;
    }
    const char *handle;
    if (mandate_signin_pending_put_for(req, "par", &p, cfg->par.lifetime, &handle, &err) !=
        MANDATE_OK) {
        log_error("a pushed authorization request cannot be kept: %s", err.message);
        mandate_oauth_fail_rc(&oerr, MANDATE_TEMPFAIL);
        oerr.reason = mandate_pool_strdup(req->pool, err.message);
        mandate_oauth_refuse(req, resp, PAR_REFUSED, &oerr, NULL, client.client_id, NULL);
        return;
    }
    if (mandate_audit_event("par.stored",
                            json_pack("{s:s,s:s,s:s?,s:s?,s:b,s:I}", "client_id",
                                      client.client_id, "redirect_uri", redirect_uri, "scope",
                                      p.scope, "aud", p.resources, "dpop_bound",
                                      p.dpop_jkt != NULL, "expires_in",
                                      (json_int_t)cfg->par.lifetime)) != MANDATE_OK) {
        mandate_oauth_respond_rc(req, resp, MANDATE_TEMPFAIL);
        return;
    }
    log_info("authorization request pushed: client_id=%s", client.client_id);
    mandate_http_response_json(
        req, resp, 201,
        json_pack("{s:s,s:I}", "request_uri",
                  mandate_pool_printf(req->pool, MANDATE_PAR_URN "%s", handle), "expires_in",
                  (json_int_t)cfg->par.lifetime));
    mandate_http_response_header(resp, "Cache-Control", "no-store");
}
