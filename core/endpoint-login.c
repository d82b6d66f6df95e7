/* The IdPs' side of the sign-in: /login/INSTANCE/callback (the IdP sends
 * the browser back, GET or POST) and /login/INSTANCE/metadata (what the
 * IdP's administrator needs, e.g. a SAML service provider's metadata).
 * The protocol is the backend's (login_finish); here: the pending
 * authorization taken once, its browser checked, a session opened. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libconfig.h>

#include "audit-events-private.h"
#include "clock-private.h"
#include "config-private.h"
#include "endpoints-private.h"
#include "log-private.h"
#include "pool-private.h"
#include "runtime-private.h"
#include "signin-logout-private.h"
#include "signin-private.h"
#include "web-private.h"

#define INSTANCE_MAX 128

/* /login/NAME/WHAT: the instance's name and what is asked; false when the
 * path is not of that form. */
static bool split_path(mandate_http_request *req, const char **name_r, const char **what_r)
{
    const char *p = req->path + strlen("/login/");
    const char *slash = strchr(p, '/');
    if (slash == NULL || slash == p || (size_t)(slash - p) > INSTANCE_MAX ||
        strchr(slash + 1, '/') != NULL)
        return false;
    *name_r = mandate_pool_strndup(req->pool, p, (size_t)(slash - p));
    *what_r = slash + 1;
    return true;
}

static void refuse(mandate_http_request *req, mandate_http_response *resp, unsigned status,
                   const char *idp, const char *title, const char *message, const char *reason)
{
    json_t *fields = json_pack("{s:o,s:o}", "idp", mandate_audit_text(idp, MANDATE_AUDIT_TEXT_MAX),
                               "reason", mandate_audit_text(reason, MANDATE_AUDIT_TEXT_MAX));
    if (!mandate_web_refusal_recorded(req, resp, "login.refused", fields))
        return;
    log_info("sign-in callback refused (%s): %s", idp ? idp : "-", reason);
    mandate_web_error_page(req, resp, status, title, message);
}

/* The callback's fields: the query of a GET, the form of a POST. */
static bool callback_params(mandate_http_request *req, mandate_form *form, mandate_error *err)
{
    if (strcmp(req->method, "POST") == 0) {
        const char *ct = mandate_http_request_header(req, "Content-Type");
        if (ct == NULL || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0) {
            mandate_error_set(err, MANDATE_INVALID, "a POST callback must be a form");
            return false;
        }
        return mandate_form_parse(req->pool, req->body, req->body_len, NULL, form, err) ==
               MANDATE_OK;
    }
    return mandate_web_query(req, NULL, form, err) == MANDATE_OK;
}

static char *hex32(mandate_pool *pool, const unsigned char h[32])
{
    static const char digits[] = "0123456789abcdef";
    char *out = mandate_pool_alloc(pool, 65);
    for (size_t i = 0; i < 32; i++) {
        out[2 * i] = digits[h[i] >> 4];
        out[2 * i + 1] = digits[h[i] & 0xf];
    }
    return out;
}

/* The clocks of the broker and of an IdP differ by this much at most, as
 * the backends' own clock_skew defaults say. */
#define LOGIN_CLOCK_LEEWAY 60

/* Why the IdP's login (authn_at, 0: the IdP did not say) is older than the
 * request allowed, NULL when it is not: prompt=login wants a login made
 * after the request came, max_age one at most that old (OIDC Core
 * §3.1.2.1). Checked here for every backend: an IdP keeps its own session
 * whatever it was asked (a SAML IdP may ignore ForceAuthn, and SAML has no
 * max_age at all). */
static const char *login_too_old(mandate_pool *pool, const mandate_pending *p, int64_t authn_at,
                                 int64_t now)
{
    if (authn_at <= 0) /* prompt=login was passed on to the IdP: its word is all there is */
        return p->max_age >= 0 ? "max_age was asked, and the IdP did not say when the user "
                                 "authenticated"
                               : NULL;
    if (p->max_age >= 0 && authn_at + p->max_age + LOGIN_CLOCK_LEEWAY < now)
        return mandate_pool_printf(pool,
                                   "the user authenticated at the IdP %lld s ago, more than the "
                                   "max_age asked (%lld s)",
                                   (long long)(now - authn_at), (long long)p->max_age);
    if (p->force_login && p->started_at > 0 && authn_at + LOGIN_CLOCK_LEEWAY < p->started_at)
        return mandate_pool_printf(pool,
                                   "a new login was asked, and the user authenticated at the "
                                   "IdP %lld s before the sign-in started",
                                   (long long)(p->started_at - authn_at));
    return NULL;
}

/* The IdP's answer (the callback's fields) to the backend's login_finish;
 * remember: what login_start asked to keep, NULL for an unsolicited answer. */
static mandate_rc finish_at_backend(mandate_http_request *req, const mandate_instance *in,
                                    const mandate_form *form, const char *remember,
                                    mandate_identity *id_r, mandate_error *err)
{
    mandate_login_param params[MANDATE_FORM_MAX_PARAMS];
    for (size_t i = 0; i < form->count; i++)
        params[i] = (mandate_login_param){form->params[i].name, form->params[i].values[0]};
    mandate_login_response lr = {
        .callback_url = mandate_oauth_endpoint_url(
            req, mandate_pool_printf(req->pool, "/login/%s/callback", in->conf->name)),
        .params = params,
        .param_count = form->count,
        .remember = remember,
        .method = req->method,
    };
    return mandate_backend_login_finish(in, req->pool, &lr, id_r, err);
}

/* A sign-in's writes once the IdP's answer is checked and the user
 * admitted: the browser session, its single-logout record, the user
 * record, the pending consent; made together, in one transaction (store
 * ABI 1.8 write_batch; four before, bench/saml-acs). */
struct signin_writes {
    mandate_store_write w[4];
    size_t n;
};

/* A browser session for the identity the IdP vouched for, as the mapping
 * rules made it (m): *session_r filled (its memory the request's), its
 * write and its single-logout record's added to writes, the cookie's
 * value in *value_r. only_client: an IdP-initiated sign-in's client, the
 * one the session serves (mandate_signin_session_serves); NULL: any. */
static mandate_rc new_session(mandate_http_request *req, const mandate_instance *in,
                              const mandate_identity *id, const mandate_mapping_result *m,
                              const char *only_client, mandate_session *session_r,
                              const char **value_r, struct signin_writes *writes,
                              mandate_error *err)
{
    const char *idp = in->conf->name;
    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    const char *value = mandate_web_secret(req->pool);
    if (value == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "no randomness");
    json_t *identity = json_pack("{s:s?,s:s,s:s?}", "issuer", id->issuer, "subject",
                                 id->subject, "tenant", id->tenant);
    json_t *attrs = json_loads(id->attributes ? id->attributes : "{}", 0, NULL);
    json_object_set_new(identity, "attributes", attrs != NULL ? attrs : json_object());
    mandate_signin_logout_note(in, id, identity);
    if (only_client != NULL)
        json_object_set_new(identity, "idp_initiated", json_string(only_client));
    char *identity_text = json_dumps(identity, JSON_COMPACT);
    json_decref(identity);
    int64_t now = mandate_clock_now();
    unsigned char *key = mandate_pool_alloc(req->pool, 32);
    mandate_web_hash(value, key);
    *session_r = (mandate_session){
        .id_hash = key,
        .id_hash_len = 32,
        .tenant = m->tenant,
        .subject = m->subject,
        .idp = idp,
        .identity = mandate_pool_strdup(req->pool, identity_text),
        .created_at = now,
        /* 0 when the IdP did not say (an id_token without auth_time): never
         * "now", which would make an old IdP login look fresh to max_age and
         * to the rules' sensitive_max_authn_age */
        .authn_at = id->authn_instant > 0 && id->authn_instant <= now ? id->authn_instant : 0,
        .last_seen_at = now,
        .expires_at = now + cfg->signin.session_lifetime,
    };
    free(identity_text);
    *value_r = value;
    writes->w[writes->n++] =
        (mandate_store_write){.op = MANDATE_STORE_WRITE_SESSION_PUT, .session = session_r};
    if (mandate_signin_logout_index(req, in, id, key, session_r->expires_at,
                                    &writes->w[writes->n]))
        writes->n++;
    return MANDATE_OK;
}

/* The answer when the broker cannot open a session: to the client when one
 * waits (p's redirect URI), else with a page. */
static void no_session(mandate_http_request *req, mandate_http_response *resp,
                       const mandate_pending *p, const mandate_error *err)
{
    log_error("a browser session cannot be kept: %s", err->message);
    if (p->redirect_uri != NULL)
        mandate_signin_redirect_error(req, resp, p, "temporarily_unavailable",
                                      "the broker cannot open a session now", err->message);
    else
        mandate_web_error_page(req, resp, 503, "Please try again",
                               "The broker cannot open a session now.");
}

/* The mapping rules first (a user no rule admits gets no session), then a
 * browser session for this identity and the user remembered, their writes
 * added to writes (not made yet). False when answered already. */
static bool admit(mandate_http_request *req, mandate_http_response *resp, mandate_pending *p,
                  const mandate_client *client, const mandate_instance *in,
                  const mandate_identity *id, mandate_mapping_result *m_r,
                  mandate_session *session_r, const char **value_r,
                  struct signin_writes *writes)
{
    if (!mandate_signin_map(req, resp, p, client, in->conf->name, id, false, m_r))
        return false;
    mandate_error err = {0};
    /* an IdP-initiated sign-in (no client waits: no redirect URI) is
     * allowed for one client: its session serves that client only */
    const char *only_client = p->redirect_uri == NULL ? p->client_id : NULL;
    if (new_session(req, in, id, m_r, only_client, session_r, value_r, writes, &err) !=
        MANDATE_OK) {
        no_session(req, resp, p, &err);
        return false;
    }
    mandate_signin_user_record(req, in->conf->name, id, m_r->tenant, m_r->subject,
                               &writes->w[writes->n++]);
    return true;
}

/* The sign-in's writes, all or none. False when they failed: answered. */
static bool write_signin(mandate_http_request *req, mandate_http_response *resp,
                         const mandate_pending *p, const struct signin_writes *writes)
{
    mandate_error err = {0};
    if (mandate_store_write_batch(mandate_runtime_store(req->runtime), writes->w, writes->n,
                                  NULL, &err) == MANDATE_OK)
        return true;
    no_session(req, resp, p, &err);
    return false;
}

/* --- IdP-initiated (unsolicited) sign-ins ------------------------------------ */

/* The one client (and resource) an instance takes unsolicited answers for:
 * its idp_initiated_client and idp_initiated_resource settings (the saml
 * plugin's; it refuses such answers itself when they are unset). NULL:
 * none are taken. */
static const char *unsolicited_client(const mandate_instance *in, const char **resource_r)
{
    const char *client = NULL, *resource = NULL;
    if (config_lookup_string(&in->conf->cfg, "idp_initiated_client", &client) != CONFIG_TRUE ||
        client[0] == '\0')
        return NULL;
    if (config_lookup_string(&in->conf->cfg, "idp_initiated_resource", &resource) !=
            CONFIG_TRUE ||
        resource[0] == '\0')
        resource = NULL;
    *resource_r = resource;
    return client;
}

static const char signed_in_template[] =
    "<p>You are signed in as <strong>{{subject}}</strong> through your identity provider.</p>"
    "<p>Open <strong>{{client}}</strong> and sign in there: this browser will not be asked "
    "to sign in at your identity provider again.</p>"
    "<p><small>Request {{request_id}}</small></p>";

/* An answer the IdP sent unasked (its portal's tile for this broker), to an
 * instance that takes them for one client: checked by the backend as any
 * answer, with no InResponseTo and replay-checked; the mapping rules for
 * that client and resource; a browser session. No authorization code: there
 * is no PKCE challenge (nor redirect URI, nor state) to bind one to. The
 * browser goes to the client's initiate_login_uri (OpenID Connect Core §4,
 * a third party starts the login), where the client makes its usual
 * authorization request, answered at once from the session; without one, a
 * page says where to go. */
static void unsolicited(mandate_http_request *req, mandate_http_response *resp,
                        const mandate_instance *in, const mandate_form *form,
                        const char *client_id, const char *resource)
{
    const char *idp = in->conf->name;
    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    mandate_error err = {0};
    mandate_identity id;
    mandate_rc rc = finish_at_backend(req, in, form, NULL, &id, &err);
    if (rc != MANDATE_OK) {
        log_info("IdP-initiated sign-in at %s refused: %s", idp, err.message);
        mandate_audit_event(
            "login.refused",
            json_pack("{s:s,s:s,s:b,s:o}", "client_id", client_id, "idp", idp, "idp_initiated",
                      1, "reason", mandate_audit_text(err.message, MANDATE_AUDIT_TEXT_MAX)));
        if (rc == MANDATE_INVALID || rc == MANDATE_DENIED)
            mandate_web_error_page(
                req, resp, rc == MANDATE_DENIED ? 403 : 400, "This sign-in answer was refused",
                rc == MANDATE_DENIED
                    ? "Your identity provider did not sign you in. Nobody was signed in."
                    : "The answer that came from your identity provider cannot be trusted: it "
                      "was altered, used before, or meant for another sign-in. Nobody was "
                      "signed in. Start again from the application.");
        else
            mandate_web_error_page(req, resp, 503, "Please try again",
                                   "Your identity provider cannot be reached now.");
        return;
    }
    mandate_client client;
    /* the instance's idp_initiated_client, which the operator named: a
     * document of theirs is fetched here, if it must be (the answer is
     * checked and its replay claimed already, so the request could not be
     * served twice) */
    rc = mandate_signin_client(req, client_id, false, &client, &err);
    if (rc != MANDATE_OK) {
        log_error("IdP-initiated sign-in at %s: the client %s: %s", idp, client_id,
                  err.message);
        mandate_audit_event("login.refused",
                            json_pack("{s:s,s:s,s:b,s:o}", "client_id", client_id, "idp", idp,
                                      "idp_initiated", 1, "reason",
                                      mandate_audit_text(err.message, MANDATE_AUDIT_TEXT_MAX)));
        mandate_web_error_page(req, resp, rc == MANDATE_TEMPFAIL ? 503 : 400,
                               "This application cannot sign you in",
                               "The application your identity provider sent you to is not "
                               "known to the broker.");
        return;
    }
    /* the rules, as for an authorization request of that client for that
     * resource */
    mandate_pending p = {.client_id = client_id, .resources = resource};
    mandate_mapping_result m;
    mandate_session session;
    const char *value;
    struct signin_writes writes = {.n = 0};
    if (!admit(req, resp, &p, &client, in, &id, &m, &session, &value, &writes) ||
        !write_signin(req, resp, &p, &writes))
        return;
    mandate_signin_end_replaced(req, NULL, m.tenant, m.subject, false);
    mandate_audit_event(
        "login.idp_initiated",
        json_pack("{s:s,s:o,s:s,s:o,s:s,s:s,s:s,s:s?,s:I}", "idp", idp, "entity_id",
                  mandate_audit_text(id.issuer, MANDATE_AUDIT_TEXT_MAX), "client_id", client_id,
                  "upstream_sub", mandate_audit_text(id.subject, MANDATE_AUDIT_TEXT_MAX), "sub",
                  m.subject, "tenant", m.tenant, "rule", m.rule->name, "resource", resource,
                  "authn_at", (json_int_t)session.authn_at));
    log_info("signed in at %s (IdP-initiated, for %s): %s as %s (rule %s)", idp, client_id,
             id.subject, m.subject, m.rule->name);
    mandate_web_set_session_cookie(req, resp, value, cfg->signin.session_lifetime);
    const char *initiate = mandate_signin_client_meta(req->pool, &client, "initiate_login_uri");
    if (initiate != NULL) {
        const char *pairs[] = {"iss", cfg->issuer, NULL, NULL};
        mandate_web_redirect(req, resp, mandate_web_url_with(req->pool, initiate, pairs));
        return;
    }
    const char *name = mandate_signin_client_meta(req->pool, &client, "client_name");
    /* the organization's name, as the consent page shows it; the instance's
     * name is the administrator's word, not the user's */
    json_t *view = json_pack("{s:s,s:s,s:s,s:s}", "subject", m.subject, "tenant_name",
                             mandate_signin_tenant_name(&cfg->signin, m.tenant), "client",
                             name != NULL ? name : client.name != NULL ? client.name : client_id,
                             "request_id", req->request_id);
    mandate_web_page(req, resp, 200, "You are signed in", signed_in_template, view, NULL);
}

static void callback(mandate_http_request *req, mandate_http_response *resp,
                     const mandate_instance *in)
{
    const char *idp = in->conf->name;
    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    mandate_error err = {0};
    mandate_form form;
    if (!callback_params(req, &form, &err)) {
        refuse(req, resp, 400, idp, "This answer cannot be read",
               "The identity provider's answer is malformed.", err.message);
        return;
    }
    const char *handle = mandate_form_get(&form, "state");
    if (handle == NULL)
        handle = mandate_form_get(&form, "RelayState");
    mandate_pending p;
    mandate_rc rc = mandate_signin_pending_take(req, "authorize", handle, &p, &err);
    /* none waits: an IdP-initiated sign-in, where the instance takes them */
    const char *resource = NULL;
    const char *for_client = rc == MANDATE_NOT_FOUND ? unsolicited_client(in, &resource) : NULL;
    if (for_client != NULL) {
        unsolicited(req, resp, in, &form, for_client, resource);
        return;
    }
    if (rc != MANDATE_OK) {
        refuse(req, resp, rc == MANDATE_NOT_FOUND ? 400 : 503, idp, "This sign-in has expired",
               "This sign-in was finished already, is too old, or was not started here. Start "
               "again from the application.",
               handle == NULL ? "no state in the answer" : err.message);
        return;
    }
    /* the browser that started it, and the IdP it was sent to */
    const char *cookie = mandate_web_cookie(req, MANDATE_LOGIN_COOKIE);
    unsigned char h[32];
    if (cookie != NULL)
        mandate_web_hash(cookie, h);
    if (p.idp == NULL || strcmp(p.idp, idp) != 0 || p.binding == NULL || cookie == NULL ||
        strcmp(hex32(req->pool, h), p.binding) != 0) {
        refuse(req, resp, 400, idp, "This sign-in cannot be finished here",
               "This sign-in was started in another browser, or at another identity "
               "provider. Start again from the application.",
               p.idp == NULL || strcmp(p.idp, idp) != 0 ? "answer from another IdP"
                                                        : "not the browser that started it");
        return;
    }

    mandate_identity id;
    rc = finish_at_backend(req, in, &form, p.remember, &id, &err);
    if (rc != MANDATE_OK) {
        log_info("sign-in at %s failed: %s", idp, err.message);
        mandate_audit_event("login.refused",
                            json_pack("{s:s,s:s,s:o}", "client_id", p.client_id, "idp", idp,
                                      "reason",
                                      mandate_audit_text(err.message, MANDATE_AUDIT_TEXT_MAX)));
        if (rc == MANDATE_INVALID) {
            /* forged, altered, replayed, for another request: anyone can
             * make a browser post such an answer, so it is not passed on to
             * the application as if the IdP had said no; the person sees
             * what happened (the pending sign-in is spent) */
            mandate_web_error_page(
                req, resp, 400, "This sign-in answer was refused",
                "The answer that came back from your identity provider cannot be trusted: it "
                "was altered, used before, or meant for another sign-in. Nobody was signed "
                "in. Start again from the application.");
            return;
        }
        mandate_signin_redirect_error(
            req, resp, &p, rc == MANDATE_TEMPFAIL ? "temporarily_unavailable" : "access_denied",
            rc == MANDATE_DENIED    ? "the sign-in at the identity provider did not succeed"
            : rc == MANDATE_INVALID ? "the identity provider's answer was refused"
                                    : "the identity provider cannot be reached now",
            err.message);
        return;
    }

    const char *too_old = login_too_old(req->pool, &p, id.authn_instant, mandate_clock_now());
    if (too_old != NULL) {
        log_info("sign-in at %s refused: %s", idp, too_old);
        mandate_audit_event("login.refused",
                            json_pack("{s:s,s:s,s:s}", "client_id", p.client_id, "idp", idp,
                                      "reason", too_old));
        mandate_signin_redirect_error(req, resp, &p, "login_required",
                                      "the login at the identity provider is older than the "
                                      "request allows",
                                      too_old);
        return;
    }

    mandate_client client;
    if (!mandate_signin_known_client(req, resp, p.client_id, &client))
        return;
    mandate_mapping_result m;
    mandate_session session;
    const char *value;
    struct signin_writes writes = {.n = 0};
    if (!admit(req, resp, &p, &client, in, &id, &m, &session, &value, &writes))
        return;
    /* The rules read the time of the IdP's login: made again on the
     * session's (what the code's grant carries) only when that is not the
     * IdP's, a time the session refuses (in the future, or none) */
    mandate_identity session_id = id;
    session_id.authn_instant = session.authn_at;
    if (session.authn_at != id.authn_instant &&
        !mandate_signin_map(req, resp, &p, &client, idp, &session_id, false, &m))
        return;
    mandate_signin_step step;
    if (!mandate_signin_next(req, resp, &p, &client, &session_id, &m, &session, value, &step))
        return;
    if (!step.remembered)
        writes.w[writes.n++] = step.consent_write;
    if (!write_signin(req, resp, &p, &writes))
        return;
    /* not in the same write: a batch deletes no session (store ABI 1.8) */
    mandate_signin_end_replaced(req, p.replaces, m.tenant, m.subject, true);
    mandate_audit_event("login.finished",
                        json_pack("{s:s,s:s,s:o,s:s,s:s,s:s,s:I}", "client_id", p.client_id,
                                  "idp", idp, "upstream_sub",
                                  mandate_audit_text(id.subject, MANDATE_AUDIT_TEXT_MAX), "sub",
                                  m.subject, "tenant", m.tenant, "rule", m.rule->name,
                                  "authn_at", (json_int_t)session.authn_at));
    log_info("signed in at %s: %s as %s (rule %s)", idp, id.subject, m.subject, m.rule->name);
    mandate_web_set_session_cookie(req, resp, value, cfg->signin.session_lifetime);
    /* the login cookie has done its job */
    mandate_http_response_header(
        resp, "Set-Cookie",
        mandate_pool_printf(req->pool, "%s=; Path=/; Secure; HttpOnly; SameSite=None; Max-Age=0",
                            MANDATE_LOGIN_COOKIE));
    mandate_signin_answer(req, resp, &p, &step);
}

void mandate_endpoint_login(mandate_http_request *req, mandate_http_response *resp)
{
    const char *name, *what;
    if (!split_path(req, &name, &what)) {
        mandate_http_response_error(req, resp, 404, "not_found", "no such endpoint");
        return;
    }
    const mandate_instance *in = mandate_runtime_find(req->runtime, MANDATE_BACKEND, name);
    bool callback_route = strcmp(what, "callback") == 0;
    bool metadata_route = strcmp(what, "metadata") == 0;
    bool logout_route = strcmp(what, "logout") == 0 && in != NULL && mandate_backend_logs_out(in);
    if (in == NULL || !mandate_backend_signs_in(in) ||
        (!callback_route && !metadata_route && !logout_route)) {
        mandate_http_response_error(req, resp, 404, "not_found", "no such endpoint");
        return;
    }
    if (callback_route) {
        if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "POST") != 0) {
            mandate_http_response_error(req, resp, 405, "invalid_request",
                                        "method not allowed on this endpoint");
            mandate_http_response_header(resp, "Allow", "GET, POST");
            return;
        }
        callback(req, resp, in);
        return;
    }
    if (strcmp(req->method, "GET") != 0) {
        mandate_http_response_error(req, resp, 405, "invalid_request",
                                    "method not allowed on this endpoint");
        mandate_http_response_header(resp, "Allow", "GET");
        return;
    }
    if (logout_route) { /* the HTTP-Redirect binding: GET only */
        mandate_endpoint_login_logout(req, resp, in);
        return;
    }
    mandate_error err = {0};
    char *text;
    const char *type;
    mandate_rc rc = mandate_backend_login_metadata(
        in, req->pool,
        mandate_oauth_endpoint_url(req, mandate_pool_printf(req->pool, "/login/%s/callback",
                                                            name)),
        &text, &type, &err);
    if (rc != MANDATE_OK) {
        mandate_http_response_error(req, resp, rc == MANDATE_NOT_FOUND ? 404 : 503,
                                    rc == MANDATE_NOT_FOUND ? "not_found"
                                                            : "temporarily_unavailable",
                                    rc == MANDATE_NOT_FOUND ? "this instance publishes nothing"
                                                            : NULL);
        return;
    }
    resp->status = 200;
    resp->content_type = type != NULL ? type : "application/octet-stream";
    resp->body = text;
    resp->body_len = strlen(text);
}
