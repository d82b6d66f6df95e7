/* POST /consent (the consent page's answer) and GET|POST /logout (the end
 * of a browser session at the broker). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "audit-events-private.h"
#include "clock-private.h"
#include "endpoints-private.h"
#include "log-private.h"
#include "pool-private.h"
#include "runtime-private.h"
#include "signin-logout-private.h"
#include "signin-private.h"
#include "web-private.h"

#define LOGOUT_HANDLE "logout"

static void refuse(mandate_http_request *req, mandate_http_response *resp, unsigned status,
                   const char *event, const char *title, const char *message, const char *reason)
{
    json_t *fields =
        json_pack("{s:o}", "reason", mandate_audit_text(reason, MANDATE_AUDIT_TEXT_MAX));
    if (!mandate_web_refusal_recorded(req, resp, event, fields))
        return;
    log_info("%s: %s", event, reason);
    mandate_web_error_page(req, resp, status, title, message);
}

static bool read_form(mandate_http_request *req, mandate_form *form, mandate_error *err)
{
    return mandate_form_parse(req->pool, req->body, req->body_len, NULL, form, err) ==
           MANDATE_OK;
}

static char *hash_hex(mandate_pool *pool, const char *secret)
{
    unsigned char h[32];
    mandate_web_hash(secret, h);
    return mandate_pool_hex(pool, h, sizeof(h));
}

void mandate_endpoint_consent(mandate_http_request *req, mandate_http_response *resp)
{
    mandate_error err = {0};
    mandate_form form;
    if (!read_form(req, &form, &err)) {
        refuse(req, resp, 400, "consent.refused", "This form cannot be read",
               "The form is malformed.", err.message);
        return;
    }
    mandate_session session;
    const char *value;
    const char *handle = mandate_form_get(&form, "handle");
    if (mandate_signin_session(req, &session, &value, &err) != MANDATE_OK ||
        !mandate_web_csrf_ok(req, value, handle, mandate_form_get(&form, "csrf"))) {
        refuse(req, resp, 403, "consent.refused", "This form has expired",
               "The form was not sent by the broker's page in this browser, or your session "
               "ended. Start again from the application.",
               "no session, or a CSRF token that does not match it");
        return;
    }
    mandate_pending p;
    mandate_rc rc = mandate_signin_pending_take(req, "consent", handle, &p, &err);
    if (rc != MANDATE_OK || p.session == NULL || p.mapped == NULL ||
        strcmp(p.session, hash_hex(req->pool, value)) != 0) {
        refuse(req, resp, rc == MANDATE_TEMPFAIL ? 503 : 400, "consent.refused",
               "This page has expired",
               "This consent was answered already or is too old. Start again from the "
               "application.",
               rc != MANDATE_OK ? err.message : "another session's consent");
        return;
    }
    json_t *mapped = json_loads(p.mapped, 0, NULL);
    const char *sub = json_string_value(json_object_get(mapped, "sub"));
    const char *tenant = json_string_value(json_object_get(mapped, "tenant"));
    const char *scope = json_string_value(json_object_get(mapped, "scope"));
    const char *aud = json_string_value(json_object_get(mapped, "aud"));
    const char *decision = mandate_form_get(&form, "decision");
    if (decision == NULL || strcmp(decision, "allow") != 0) {
        mandate_audit_event("consent.denied",
                            json_pack("{s:s,s:s?}", "client_id", p.client_id, "sub", sub));
        json_decref(mapped);
        mandate_signin_redirect_error(req, resp, &p, "access_denied", "the user denied access",
                                      "denied on the consent page");
        return;
    }
    const char *remember = mandate_form_get(&form, "remember");
    bool kept = false;
    if (remember != NULL && strcmp(remember, "yes") == 0 && sub != NULL && tenant != NULL) {
        const mandate_config *cfg = mandate_runtime_config(req->runtime);
        int64_t now = mandate_clock_now();
        mandate_consent c = {
            .tenant = tenant,
            .subject = sub,
            .client_id = p.client_id,
            .scope = scope,
            .resources = aud,
            .created_at = now,
            .expires_at = cfg->signin.consent_lifetime ? now + cfg->signin.consent_lifetime : 0,
        };
        kept = mandate_store_consent_put(mandate_runtime_store(req->runtime), &c, &err) ==
               MANDATE_OK;
        if (!kept) /* the code is still issued: only the memory of it is lost */
            log_error("a consent cannot be remembered: %s", err.message);
    }
    mandate_audit_event("consent.granted",
                        json_pack("{s:s,s:s?,s:s?,s:s?,s:b}", "client_id", p.client_id, "sub",
                                  sub, "scope", scope, "aud", aud, "remembered", kept));
    json_decref(mapped);
    mandate_signin_issue_code(req, resp, &p);
}

static const char logout_template[] =
    "{{#signed_in}}<p>You are signed in as <strong>{{subject}}</strong>.</p>"
    "<form method=\"post\" action=\"{{action}}\">"
    "<input type=\"hidden\" name=\"csrf\" value=\"{{csrf}}\">"
    "<button type=\"submit\">Sign out</button></form>{{/signed_in}}"
    "{{^signed_in}}<p>You are signed out of the broker.</p>"
    "<p><small>Applications keep the access they were given until it expires or is "
    "revoked.</small></p>{{/signed_in}}";

void mandate_endpoint_logout(mandate_http_request *req, mandate_http_response *resp)
{
    mandate_error err = {0};
    mandate_session session;
    const char *value = NULL;
    bool signed_in = mandate_signin_session(req, &session, &value, &err) == MANDATE_OK;
    if (strcmp(req->method, "POST") == 0 && signed_in) {
        mandate_form form;
        if (!read_form(req, &form, &err) ||
            !mandate_web_csrf_ok(req, value, LOGOUT_HANDLE, mandate_form_get(&form, "csrf"))) {
            refuse(req, resp, 403, "session.logout_refused", "This form has expired",
                   "The sign-out form was not sent by the broker's page in this browser.",
                   "a CSRF token that does not match the session");
            return;
        }
        unsigned char key[32];
        mandate_web_hash(value, key);
        if (mandate_store_session_delete(mandate_runtime_store(req->runtime), key, sizeof(key),
                                         &err) != MANDATE_OK) {
            mandate_web_error_page(req, resp, 503, "Please try again",
                                   "The broker cannot end your session now.");
            return;
        }
        /* and what applications got through it: their refresh families and
         * access tokens (a failure is logged: the user is signed out) */
        uint64_t revoked = 0;
        if (mandate_signin_end_session_grants(req, key, &revoked, &err) != MANDATE_OK)
            log_error("the tokens of a session cannot be revoked at logout: %s", err.message);
        mandate_audit_event("session.ended",
                            json_pack("{s:s?,s:s?,s:s,s:I}", "sub", session.subject, "idp",
                                      session.idp, "reason", "logout", "revocations",
                                      (json_int_t)revoked));
        log_info("signed out: %s", session.subject ? session.subject : "-");
        signed_in = false;
        mandate_web_set_session_cookie(req, resp, NULL, 0);
        /* and at the IdP the session came from, when it takes single logout */
        if (mandate_signin_logout_at_idp(req, resp, &session))
            return;
    }
    json_t *view = json_pack("{s:b}", "signed_in", signed_in);
    if (signed_in && session.tenant != NULL)
        json_object_set_new(view, "tenant_name",
                            json_string(mandate_signin_tenant_name(
                                &mandate_runtime_config(req->runtime)->signin, session.tenant)));
    if (signed_in) {
        json_object_set_new(view, "subject", json_string(session.subject ? session.subject : ""));
        json_object_set_new(view, "action",
                            json_string(mandate_oauth_endpoint_url(req, "/logout")));
        json_object_set_new(view, "csrf", json_string(mandate_web_csrf(req, value, LOGOUT_HANDLE)));
    }
    /* the form's answer may redirect to the IdP's logout (CSP form-action
     * covers redirects) */
    mandate_web_page(req, resp, 200, signed_in ? "Sign out" : "Signed out", logout_template, view,
                     signed_in && mandate_signin_logout_goes_on(req, &session)
                         ? MANDATE_WEB_ANY_TARGET
                         : NULL);
}
