/* Single logout with the IdPs (signin-logout-private.h): the protocol is the
 * backend's (logout_start, logout_finish); here: what is kept to find a
 * session again, the sessions ended, the browser sent on. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "audit-events-private.h"
#include "clock-private.h"
#include "log-private.h"
#include "oauth-private.h"
#include "pool-private.h"
#include "runtime-private.h"
#include "signin-logout-private.h"
#include "signin-private.h"
#include "web-private.h"

/* SP-initiated logouts waiting for the IdP's answer, by handle */
#define PENDING_NS "logout"
/* a sign-in's session_key (with its instance) -> its session's hash */
#define SESSION_NS "logout-session"
#define HANDLE_MAX 128

static const char *logout_url(mandate_http_request *req, const char *idp)
{
    return mandate_oauth_endpoint_url(req,
                                      mandate_pool_printf(req->pool, "/login/%s/logout", idp));
}

/* The record's key: the instance and the backend's key cannot run into
 * each other (no newline in an instance name). */
static void session_record_key(mandate_http_request *req, const char *idp, const char *key,
                               unsigned char out[32])
{
    mandate_web_hash(mandate_pool_printf(req->pool, "%s\n%s", idp, key), out);
}

static bool from_hex(const char *hex, unsigned char out[32])
{
    if (hex == NULL || strlen(hex) != 64)
        return false;
    for (size_t i = 0; i < 32; i++) {
        unsigned v = 0;
        for (size_t j = 0; j < 2; j++) {
            char c = hex[2 * i + j];
            unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                         : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                                                : 16;
            if (d == 16)
                return false;
            v = v * 16 + d;
        }
        out[i] = (unsigned char)v;
    }
    return true;
}

/* --- at sign-in ---------------------------------------------------------------- */

void mandate_signin_logout_note(const mandate_instance *in, const mandate_identity *id,
                                json_t *identity)
{
    const char *ref, *key;
    if (mandate_backend_session_refs(in, id, &ref, &key))
        json_object_set_new(identity, "session_ref", json_string(ref));
}

bool mandate_signin_logout_index(mandate_http_request *req, const mandate_instance *in,
                                 const mandate_identity *id,
                                 const unsigned char session_hash[32], int64_t expires_at,
                                 mandate_store_write *write_r)
{
    const char *ref, *key;
    if (!mandate_backend_session_refs(in, id, &ref, &key))
        return false;
    unsigned char *k = mandate_pool_alloc(req->pool, 32);
    session_record_key(req, in->conf->name, key, k);
    /* the same IdP session signing in again (after Mandate's session
     * ended): the newer session replaces the older one's record, in one
     * write (a new session's hash is never the same value: always written) */
    *write_r = (mandate_store_write){MANDATE_STORE_WRITE_ONCE_SET,
                                     SESSION_NS,
                                     k,
                                     32,
                                     mandate_pool_hex(req->pool, session_hash, 32),
                                     expires_at,
                                     expires_at,
                                     NULL};
    return true;
}

/* --- SP-initiated: Mandate's /logout ---------------------------------------------- */

/* The session's instance and session_ref when it takes single logout. */
static const mandate_instance *
logout_instance(mandate_http_request *req, const mandate_session *session, const char **ref_r)
{
    *ref_r = NULL;
    if (session->idp == NULL)
        return NULL;
    const mandate_instance *in =
        mandate_runtime_find(req->runtime, MANDATE_BACKEND, session->idp);
    if (in == NULL || !mandate_backend_logs_out(in))
        return NULL;
    json_t *identity = json_loads(session->identity ? session->identity : "{}", 0, NULL);
    const char *ref = json_string_value(json_object_get(identity, "session_ref"));
    *ref_r = ref != NULL ? mandate_pool_strdup(req->pool, ref) : NULL;
    json_decref(identity);
    return *ref_r != NULL ? in : NULL;
}

bool mandate_signin_logout_goes_on(mandate_http_request *req, const mandate_session *session)
{
    const char *ref;
    return logout_instance(req, session, &ref) != NULL;
}

bool mandate_signin_logout_at_idp(mandate_http_request *req, mandate_http_response *resp,
                                  const mandate_session *session)
{
    const char *ref;
    const mandate_instance *in = logout_instance(req, session, &ref);
    if (in == NULL)
        return false;
    const char *handle = mandate_web_secret(req->pool);
    if (handle == NULL)
        return false;
    mandate_logout_request lr = {
        .callback_url = logout_url(req, session->idp),
        .handle = handle,
        .session_ref = ref,
    };
    mandate_login_redirect redirect;
    mandate_error err = {0};
    mandate_rc rc = mandate_backend_logout_start(in, req->pool, &lr, &redirect, &err);
    if (rc != MANDATE_OK) {
        if (rc != MANDATE_NOT_FOUND)
            log_error("logout at %s cannot start: %s", session->idp, err.message);
        return false;
    }
    json_t *pending = json_pack("{s:s,s:s?,s:s?}", "idp", session->idp, "remember",
                                redirect.remember, "sub", session->subject);
    char *text = json_dumps(pending, JSON_COMPACT);
    json_decref(pending);
    unsigned char key[32];
    mandate_web_hash(handle, key);
    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    rc = mandate_store_once_put(mandate_runtime_store(req->runtime), PENDING_NS, key,
                                sizeof(key), text,
                                mandate_clock_now() + cfg->signin.pending_lifetime, &err);
    free(text);
    if (rc != MANDATE_OK) {
        log_error("a logout at %s cannot be kept: %s", session->idp, err.message);
        return false;
    }
    mandate_audit_event("logout.started",
                        json_pack("{s:s?,s:s}", "sub", session->subject, "idp", session->idp));
    log_info("logout sent to %s for %s", session->idp,
             session->subject ? session->subject : "-");
    mandate_web_redirect(req, resp, redirect.url);
    return true;
}

/* --- /login/INSTANCE/logout ---------------------------------------------------------- */

static void refuse(mandate_http_request *req, mandate_http_response *resp, unsigned status,
                   const char *idp, const char *reason)
{
    json_t *fields = json_pack("{s:s,s:o}", "idp", idp, "reason",
                               mandate_audit_text(reason, MANDATE_AUDIT_TEXT_MAX));
    if (!mandate_web_refusal_recorded(req, resp, "logout.refused", fields))
        return;
    log_info("logout message from %s refused: %s", idp, reason);
    mandate_web_error_page(req, resp, status, "This sign-out message was refused",
                           "The sign-out message that came from your identity provider cannot "
                           "be trusted: it was altered, used before, too old, or meant for "
                           "another sign-out. Nothing was changed.");
}

static const char signed_out_template[] = "<p>{{message}}</p>";

static void signed_out_page(mandate_http_request *req, mandate_http_response *resp,
                            const char *message)
{
    mandate_web_page(req, resp, 200, "Signed out", signed_out_template,
                     json_pack("{s:s}", "message", message), NULL);
}

/* The pending SP-initiated logout the answer's RelayState names, taken
 * once; NULL when there is none for this instance. */
static const char *take_pending(mandate_http_request *req, const char *idp, const char *handle,
                                const char **sub_r)
{
    *sub_r = NULL;
    if (handle == NULL || strlen(handle) > HANDLE_MAX)
        return NULL;
    unsigned char key[32];
    mandate_web_hash(handle, key);
    char *text = NULL;
    mandate_error err = {0};
    if (mandate_store_once_take(mandate_runtime_store(req->runtime), req->pool, PENDING_NS, key,
                                sizeof(key), mandate_clock_now(), &text, &err) != MANDATE_OK)
        return NULL;
    json_t *o = json_loads(text, 0, NULL);
    const char *pidp = json_string_value(json_object_get(o, "idp"));
    const char *remember = json_string_value(json_object_get(o, "remember"));
    const char *sub = json_string_value(json_object_get(o, "sub"));
    bool ours = pidp != NULL && strcmp(pidp, idp) == 0 && remember != NULL;
    remember = ours ? mandate_pool_strdup(req->pool, remember) : NULL;
    *sub_r = ours && sub != NULL ? mandate_pool_strdup(req->pool, sub) : NULL;
    json_decref(o);
    return remember;
}

/* The IdP asks to end sign-ins: the sessions its keys name. */
static void end_sessions(mandate_http_request *req, mandate_http_response *resp,
                         const char *idp, const mandate_logout_result *r)
{
    const mandate_instance *store = mandate_runtime_store(req->runtime);
    int64_t now = mandate_clock_now();
    uint64_t ended = 0;
    for (size_t i = 0; i < r->key_count; i++) {
        unsigned char k[32], session_hash[32];
        session_record_key(req, idp, r->session_keys[i], k);
        char *hex = NULL;
        mandate_error err = {0};
        mandate_rc rc = mandate_store_once_take(store, req->pool, SESSION_NS, k, sizeof(k), now,
                                                &hex, &err);
        if (rc == MANDATE_NOT_FOUND)
            continue;
        if (rc != MANDATE_OK || !from_hex(hex, session_hash)) {
            log_error("a sign-in at %s cannot be found for logout: %s", idp,
                      rc != MANDATE_OK ? err.message : "a malformed record");
            mandate_web_error_page(req, resp, 503, "Please try again",
                                   "The broker cannot end your session now.");
            return;
        }
        mandate_session s;
        const char *sub = NULL;
        if (mandate_store_session_get(store, req->pool, session_hash, sizeof(session_hash), now,
                                      &s, &err) == MANDATE_OK)
            sub = s.subject;
        else
            continue; /* ended already (Mandate's logout, its lifetime) */
        rc = mandate_store_session_delete(store, session_hash, sizeof(session_hash), &err);
        if (rc != MANDATE_OK && rc != MANDATE_NOT_FOUND) {
            log_error("a session cannot be ended for the logout at %s: %s", idp, err.message);
            mandate_web_error_page(req, resp, 503, "Please try again",
                                   "The broker cannot end your session now.");
            return;
        }
        ended++;
        uint64_t revoked = 0;
        if (mandate_signin_end_session_grants(req, session_hash, &revoked, &err) != MANDATE_OK)
            log_error("the tokens of a session cannot be revoked at the logout at %s: %s", idp,
                      err.message);
        mandate_audit_event("session.ended",
                            json_pack("{s:s?,s:s,s:s,s:I}", "sub", sub, "idp", idp, "reason",
                                      "idp_logout", "revocations", (json_int_t)revoked));
        log_info("signed out by %s: %s", idp, sub != NULL ? sub : "-");
    }
    mandate_audit_event("logout.finished",
                        json_pack("{s:s,s:s,s:o,s:I}", "idp", idp, "initiated", "idp",
                                  "upstream_sub",
                                  mandate_audit_text(r->subject, MANDATE_AUDIT_TEXT_MAX),
                                  "sessions", (json_int_t)ended));
    if (ended > 0)
        mandate_web_set_session_cookie(req, resp, NULL, 0);
    mandate_web_redirect(req, resp, ended > 0 ? r->done_url : r->unknown_url);
}

void mandate_endpoint_login_logout(mandate_http_request *req, mandate_http_response *resp,
                                   const mandate_instance *in)
{
    const char *idp = in->conf->name;
    mandate_error err = {0};
    mandate_form form;
    if (mandate_web_query(req, NULL, &form, &err) != MANDATE_OK) {
        refuse(req, resp, 400, idp, err.message);
        return;
    }
    const char *target = req->raw_target != NULL ? req->raw_target : "";
    const char *q = strchr(target, '?');
    const char *raw_query =
        q != NULL ? mandate_pool_strndup(req->pool, q + 1, strcspn(q + 1, "#")) : NULL;
    const char *sub = NULL;
    const char *remember = take_pending(req, idp, mandate_form_get(&form, "RelayState"), &sub);
    mandate_login_param params[MANDATE_FORM_MAX_PARAMS];
    for (size_t i = 0; i < form.count; i++)
        params[i] = (mandate_login_param){form.params[i].name, form.params[i].values[0]};
    mandate_logout_message msg = {
        .callback_url = logout_url(req, idp),
        .raw_query = raw_query,
        .params = params,
        .param_count = form.count,
        .remember = remember,
    };
    mandate_logout_result r;
    mandate_rc rc = mandate_backend_logout_finish(in, req->pool, &msg, &r, &err);
    if (rc == MANDATE_INVALID) {
        refuse(req, resp, 400, idp, err.message);
        return;
    }
    if (rc == MANDATE_DENIED) {
        /* our session is ended already; the IdP's is not */
        mandate_audit_event("logout.finished",
                            json_pack("{s:s,s:s,s:s?,s:b,s:o}", "idp", idp, "initiated", "sp",
                                      "sub", sub, "idp_ended", 0, "reason",
                                      mandate_audit_text(err.message, MANDATE_AUDIT_TEXT_MAX)));
        log_info("logout at %s: the IdP kept its session: %s", idp, err.message);
        signed_out_page(req, resp,
                        "You are signed out of the broker, but your identity provider said it "
                        "could not end its own session: sign out there too, or close the "
                        "browser.");
        return;
    }
    if (rc != MANDATE_OK) {
        log_error("logout message from %s cannot be handled: %s", idp, err.message);
        mandate_web_error_page(req, resp, 503, "Please try again",
                               "The broker cannot handle this sign-out now.");
        return;
    }
    if (r.kind == MANDATE_LOGOUT_ASKED) {
        end_sessions(req, resp, idp, &r);
        return;
    }
    mandate_audit_event("logout.finished",
                        json_pack("{s:s,s:s,s:s?,s:b}", "idp", idp, "initiated", "sp", "sub",
                                  sub, "idp_ended", 1));
    log_info("logout at %s finished for %s", idp, sub != NULL ? sub : "-");
    signed_out_page(req, resp,
                    "You are signed out of the broker and of your identity provider.");
}
