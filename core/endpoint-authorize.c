/* GET /oauth2/authorize (OAuth 2.1 authorization code with PKCE, RFC 8707
 * resources, RFC 9207 iss) and POST /oauth2/authorize/choose (the IdP
 * chooser's answer). See signin-private.h for the whole sign-in.
 *
 * Order of checks (RFC 6749 §4.1.2.1): the client and its redirect_uri
 * first, and their errors are a page, never a redirect (no open redirect);
 * every later error goes to the redirect_uri with state and iss. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "audit-events-private.h"
#include "client-limits-private.h"
#include "clock-private.h"
#include "endpoints-private.h"
#include "log-private.h"
#include "oauth-private.h"
#include "pool-private.h"
#include "profile-private.h"
#include "refusals-private.h"
#include "runtime-private.h"
#include "signin-private.h"
#include "web-private.h"
#include "word-list.h"

#define STATE_MAX 1024
#define LOGIN_HINT_MAX 256
#define MAX_IDPS 16

static const char *const repeatable[] = {"resource", NULL};

/* A page for a request that cannot be sent back to a client, audited. */
static void refuse_page(mandate_http_request *req, mandate_http_response *resp,
                        unsigned status, const char *client_id, const char *title,
                        const char *message, const char *reason)
{
    json_t *fields = json_pack("{s:o,s:o}", "client_id",
                               mandate_audit_text(client_id, MANDATE_AUDIT_TEXT_MAX), "reason",
                               mandate_audit_text(reason, MANDATE_AUDIT_TEXT_MAX));
    unsigned retry;
    switch (mandate_refusal_record(req, "authorize.refused", fields, &retry)) {
    case MANDATE_REFUSAL_RECORDED: break;
    case MANDATE_REFUSAL_OVER_BUDGET: mandate_signin_over_budget_page(req, resp); return;
    case MANDATE_REFUSAL_UNRECORDED:
        mandate_web_error_page(req, resp, 503, "Please try again",
                               "The broker cannot record this request now.");
        return;
    }
    log_info("authorization refused: client_id=%s: %s", client_id ? client_id : "-", reason);
    mandate_web_error_page(req, resp, status, title, message);
}

/* S256 of a 32-byte verifier: 43 base64url characters. */
static bool challenge_valid(const char *c)
{
    if (c == NULL || strlen(c) != 43)
        return false;
    for (const char *p = c; *p != '\0'; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_'))
            return false;
    return true;
}

/* The IdP a login_hint's e-mail domain is routed to (signin.idps domains). */
static const mandate_instance *idp_for_hint(const mandate_runtime *rt, const char *hint)
{
    const char *at = hint != NULL ? strrchr(hint, '@') : NULL;
    if (at == NULL)
        return NULL;
    const mandate_signin_config *sc = &mandate_runtime_config(rt)->signin;
    for (size_t i = 0; i < sc->idp_count; i++)
        for (char **d = sc->idps[i].domains; d != NULL && *d != NULL; d++)
            if (strcasecmp(at + 1, *d) == 0)
                return mandate_runtime_find(rt, MANDATE_BACKEND, sc->idps[i].instance);
    return NULL;
}

static const char chooser_template[] =
    "<p>Sign in to continue to <strong>{{client_name}}</strong>.</p>"
    "{{#idps}}<form method=\"post\" action=\"{{action}}\">"
    "<input type=\"hidden\" name=\"handle\" value=\"{{handle}}\">"
    "<input type=\"hidden\" name=\"csrf\" value=\"{{csrf}}\">"
    "<button type=\"submit\" name=\"idp\" value=\"{{instance}}\">{{label}}</button>"
    "</form>{{/idps}}";

static void show_chooser(mandate_http_request *req, mandate_http_response *resp,
                         mandate_pending *pending, const mandate_client *client,
                         const mandate_instance **idps, const char **labels, size_t n)
{
    mandate_error err = {0};
    const char *handle;
    if (mandate_signin_pending_put(req, "choose", pending, &handle, &err) != MANDATE_OK) {
        mandate_signin_redirect_error(req, resp, pending, "temporarily_unavailable",
                                      "the broker cannot keep this sign-in now", err.message);
        return;
    }
    const char *action = mandate_oauth_endpoint_url(req, "/oauth2/authorize/choose");
    const char *csrf = mandate_web_csrf(req, NULL, handle);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, json_pack("{s:s,s:s,s:s,s:s,s:s}", "instance",
                                              idps[i]->conf->name, "label", labels[i], "action",
                                              action, "handle", handle, "csrf", csrf));
    const char *name = mandate_signin_client_meta(req->pool, client, "client_name");
    json_t *view = json_pack(
        "{s:s,s:o,s:s}", "client_name",
        name ? name : client->name ? client->name : client->client_id, "idps", list,
        "tenant_name",
        mandate_signin_tenant_name(&mandate_runtime_config(req->runtime)->signin,
                                   client->tenant ? client->tenant : "default"));
    /* the answer to its form is a redirect to the IdP chosen: Chromium holds
     * such redirects to form-action too */
    mandate_web_page(req, resp, 200, "Choose how to sign in", chooser_template, view,
                     MANDATE_WEB_ANY_TARGET);
}

/* an RFC 7638 SHA-256 thumbprint (dpop_jkt) has the shape of an S256
 * challenge: 43 base64url characters */
#define jkt_valid challenge_valid

bool mandate_signin_request_read(mandate_http_request *req, const mandate_form *q,
                                 const mandate_client *client, mandate_pending *p,
                                 const char **error_r, const char **description_r)
{
#define REFUSE(error, description)                                                             \
    do {                                                                                       \
        *error_r = (error);                                                                    \
        *description_r = (description);                                                        \
        return false;                                                                          \
    } while (0)
    p->state = mandate_form_get(q, "state");
    p->max_age = -1;
    p->started_at = mandate_clock_now();
    const char *response_type = mandate_form_get(q, "response_type");
    const char *challenge = mandate_form_get(q, "code_challenge");
    const char *method = mandate_form_get(q, "code_challenge_method");
    const char *prompt = mandate_form_get(q, "prompt");
    const char *max_age = mandate_form_get(q, "max_age");
    const char *hint = mandate_form_get(q, "login_hint");
    const char *jkt = mandate_form_get(q, "dpop_jkt");
    if (p->state != NULL && strlen(p->state) > STATE_MAX) {
        p->state = NULL; /* not echoed: it is the reason */
        REFUSE("invalid_request", "state is too long");
    }
    if (response_type == NULL || strcmp(response_type, "code") != 0)
        REFUSE("unsupported_response_type", "only response_type=code is supported");
    if (!mandate_signin_client_grants(req->pool, client, "authorization_code"))
        REFUSE("unauthorized_client", "this client may not use the authorization code grant");
    if (challenge == NULL || method == NULL || strcmp(method, "S256") != 0 ||
        !challenge_valid(challenge))
        REFUSE("invalid_request",
               challenge == NULL ? "code_challenge is required (PKCE)"
               : method == NULL || strcmp(method, "S256") != 0
                   ? "code_challenge_method must be S256 (plain is not accepted)"
                   : "code_challenge must be 43 base64url characters");
    p->code_challenge = challenge;
    if (jkt != NULL && !jkt_valid(jkt))
        REFUSE("invalid_request",
               "dpop_jkt must be a JWK SHA-256 thumbprint (43 base64url characters)");
    if (jkt != NULL)
        p->dpop_jkt = jkt;
    mandate_oauth_error oerr;
    if (mandate_policy_scope(req->pool, client, mandate_form_get(q, "scope"), &p->scope,
                             &oerr) != MANDATE_OK ||
        /* no default resource here: a person's token has the audience of
         * the mapping rule that admits them when they name none */
        mandate_policy_audience(req->pool, client, mandate_form_find(q, "resource"), NULL,
                                &p->resources, &oerr) != MANDATE_OK)
        REFUSE(oerr.error, oerr.description);
    const char *w, *cur = prompt;
    size_t len;
    while (cur != NULL && mandate_word_list_next(&cur, &w, &len)) {
        if (len == 4 && strncmp(w, "none", 4) == 0)
            p->prompt_none = true;
        else if (len == 5 && strncmp(w, "login", 5) == 0)
            p->force_login = true;
        else if (len == 7 && strncmp(w, "consent", 7) == 0)
            p->force_consent = true;
        else if (!(len == 14 && strncmp(w, "select_account", 14) == 0))
            REFUSE("invalid_request", "prompt holds an unknown value");
    }
    if (p->prompt_none && (p->force_login || p->force_consent))
        REFUSE("invalid_request", "prompt=none goes with no other value");
    if (max_age != NULL) {
        char *end;
        long long v = strtoll(max_age, &end, 10);
        if (*end != '\0' || end == max_age || v < 0 || v > 366LL * 86400)
            REFUSE("invalid_request", "max_age must be a number of seconds");
        p->max_age = v;
    }
    if (hint != NULL && strlen(hint) <= LOGIN_HINT_MAX)
        p->login_hint = hint;
    const char *idp_hint = mandate_form_get(q, "idp_hint");
    if (idp_hint != NULL && strlen(idp_hint) <= LOGIN_HINT_MAX)
        p->idp_hint = idp_hint;
    return true;
#undef REFUSE
}

/* A pushed request (RFC 9126 §4): the request_uri's pending authorization,
 * taken once, for this very client; the parameters sent beside it are
 * ignored. false: refused with a page (the redirect_uri is not known to be
 * the client's until the pushed request is found). */
static bool pushed_request(mandate_http_request *req, mandate_http_response *resp,
                           const mandate_client *client, const char *request_uri,
                           mandate_pending *p)
{
    mandate_error err = {0};
    static const char urn[] = MANDATE_PAR_URN;
    mandate_rc rc =
        strncmp(request_uri, urn, sizeof(urn) - 1) == 0
            ? mandate_signin_pending_take(req, "par", request_uri + sizeof(urn) - 1, p, &err)
            : mandate_error_set(&err, MANDATE_NOT_FOUND,
                                "request_uri is not one of this broker's");
    if (rc == MANDATE_OK && strcmp(p->client_id, client->client_id) != 0) {
        /* RFC 9126 §4: pushed by another client; it is spent all the same */
        rc = mandate_error_set(&err, MANDATE_NOT_FOUND,
                               "request_uri was pushed by another client");
    }
    if (rc == MANDATE_OK)
        return true;
    refuse_page(req, resp, rc == MANDATE_NOT_FOUND ? 400 : 503, client->client_id,
                rc == MANDATE_NOT_FOUND ? "This sign-in request has expired"
                                        : "Please try again",
                rc == MANDATE_NOT_FOUND
                    ? "The application's sign-in request (request_uri) is unknown, was used "
                      "already or is too old. Start again from the application."
                    : "The broker cannot look the sign-in request up now.",
                mandate_pool_printf(req->pool, "invalid_request_uri: %s", err.message));
    return false;
}

void mandate_endpoint_authorize(mandate_http_request *req, mandate_http_response *resp)
{
    mandate_error err = {0};
    if (!mandate_signin_available(req->runtime)) {
        mandate_web_error_page(req, resp, 404, "Sign-in is not set up",
                               "This broker has no identity provider to sign people in at.");
        return;
    }
    mandate_form q;
    if (mandate_web_query(req, repeatable, &q, &err) != MANDATE_OK) {
        refuse_page(req, resp, 400, NULL, "This request cannot be read",
                    mandate_pool_printf(req->pool, "The sign-in request is malformed: %s.",
                                        err.message),
                    err.message);
        return;
    }
    const char *client_id = mandate_form_get(&q, "client_id");
    if (client_id == NULL) {
        refuse_page(req, resp, 400, NULL, "This request cannot be served",
                    "The sign-in request does not name the application (client_id).",
                    "client_id is missing");
        return;
    }
    mandate_client client;
    /* nothing before this that must not be done twice: the request may be
     * set aside while a client document is fetched, and served again */
    mandate_rc rc = mandate_signin_client(req, client_id, true, &client, &err);
    if (mandate_http_request_is_set_aside(req))
        return;
    if (rc == MANDATE_TEMPFAIL || rc == MANDATE_ERROR) {
        /* the broker's fault (its store, a document's server), not the
         * application's: no page that blames it */
        refuse_page(req, resp, 503, client_id, "Please try again",
                    "The broker cannot look the application up now. Try again in a moment.",
                    err.message);
        return;
    }
    if (rc != MANDATE_OK) {
        refuse_page(req, resp, 400, client_id, "This application is not known",
                    rc == MANDATE_INVALID
                        ? mandate_pool_printf(req->pool,
                                              "The application's description is refused: %s.",
                                              err.message)
                        : "The application that sent you here is not registered with the "
                          "broker.",
                    err.message);
        return;
    }
    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    const char *request_uri = mandate_form_get(&q, "request_uri");
    mandate_pending p = {0};
    if (request_uri != NULL) {
        /* checked when it was pushed: the client, its redirect_uri, the
         * request */
        if (!pushed_request(req, resp, &client, request_uri, &p))
            return;
    } else {
        const char *redirect_uri = mandate_form_get(&q, "redirect_uri");
        if (redirect_uri == NULL ||
            !mandate_signin_redirect_ok(req->pool, &client, redirect_uri)) {
            refuse_page(req, resp, 400, client_id, "This request cannot be served",
                        "The application asked to be answered at an address it did not "
                        "register (redirect_uri). Nothing was sent to it.",
                        redirect_uri == NULL ? "redirect_uri is missing"
                                             : "redirect_uri is not among the client's");
            return;
        }
        /* from here on, errors go back to the application */
        p.client_id = client.client_id;
        p.redirect_uri = redirect_uri;
        const char *error, *description;
        if (!mandate_signin_request_read(req, &q, &client, &p, &error, &description)) {
            mandate_signin_refuse_unattended(req, resp, &p, &client, error, description, NULL);
            return;
        }
        if (mandate_profile_par_required(cfg, &client)) {
            /* RFC 9126 §5 */
            mandate_signin_refuse_unattended(
                req, resp, &p, &client, "invalid_request",
                "this client's authorization requests must be pushed (request_uri from "
                "/oauth2/par)",
                mandate_profile_fapi2(cfg, &client)
                    ? "profile fapi2 (par): the request was not pushed"
                    : "pushed authorization requests required: the request was not pushed");
            return;
        }
    }

    /* anyone can start a sign-in at a public client, and each start is kept
     * (signin.pending_lifetime) and audited: held, per address, to the
     * client's token endpoint allowance, as its pushes are (endpoint-par.c);
     * and since anyone can make new clients (a document URL, a
     * registration), the starts at all the clients that described
     * themselves are held, per address, to the default allowance as well
     * (review s35, finding 4). A page, not a redirect: nobody vouches for
     * the request yet */
    unsigned retry_after;
    const char *over = NULL;
    if (request_uri == NULL &&
        !mandate_client_limits_take(req, MANDATE_EP_AUTHORIZE,
                                    mandate_client_limits_address_key(req, client.client_id),
                                    &client, &retry_after))
        over = "rate limit: sign-ins started from this address at this client";
    /* a pushed request too: its push was held per client only. Not
     * redirected at once: registered_by "document" or "registration" */
    else if (!mandate_signin_redirect_at_once(req->pool, &client) &&
             !mandate_client_limits_take(req, MANDATE_EP_AUTHORIZE,
                                         mandate_client_limits_self_described_key(req), NULL,
                                         &retry_after))
        over = "rate limit: sign-ins started from this address at clients that described "
               "themselves";
    if (over != NULL) {
        refuse_page(req, resp, 429, client.client_id, "Too many requests",
                    "Too many sign-ins at this application came from your address. Wait a "
                    "little and try again.",
                    over);
        mandate_http_response_header(resp, "Retry-After",
                                     mandate_pool_printf(req->pool, "%u", retry_after));
        return;
    }

    /* nothing of the sign-in happens unrecorded (doc/security.md) */
    if (mandate_audit_event("authorize.request",
                            json_pack("{s:s,s:s,s:s?,s:s?,s:s,s:b}", "client_id",
                                      client.client_id, "redirect_uri", p.redirect_uri, "scope",
                                      p.scope, "aud", p.resources, "peer",
                                      mandate_request_peer(req), "pushed",
                                      request_uri != NULL)) != MANDATE_OK) {
        mandate_signin_redirect_error(req, resp, &p, "temporarily_unavailable",
                                      "the broker cannot record this sign-in now",
                                      "authorize.request cannot be recorded");
        return;
    }

    /* a browser session that suits the request: no IdP round trip */
    const mandate_instance *idps[MAX_IDPS];
    const char *labels[MAX_IDPS];
    size_t n = mandate_signin_idps(req->runtime, idps, labels, MAX_IDPS);
    mandate_session session;
    const char *session_value;
    bool signed_in = mandate_signin_session(req, &session, &session_value, &err) == MANDATE_OK;
    if (signed_in && !p.force_login &&
        mandate_signin_session_serves(&session, client.client_id) &&
        (p.max_age < 0 ||
         (session.authn_at > 0 && mandate_clock_now() - session.authn_at <= p.max_age))) {
        for (size_t i = 0; i < n; i++)
            if (strcmp(idps[i]->conf->name, session.idp) == 0) {
                mandate_signin_continue(req, resp, &p, &client, &session, session_value);
                return;
            }
    }
    /* a sign-in from here replaces that session: noted for the callback to
     * end it (a SAML IdP's answer comes without the session cookie) */
    if (signed_in) {
        unsigned char h[32];
        mandate_web_hash(session_value, h);
        p.replaces = mandate_pool_hex(req->pool, h, sizeof(h));
    }
    if (p.prompt_none) {
        mandate_signin_refuse_unattended(req, resp, &p, &client, "login_required",
                                         "the user is not signed in", NULL);
        return;
    }
    /* idp_hint names one of the IdPs offered (an instance); login_hint's
     * e-mail domain may route to one */
    const mandate_instance *idp = NULL;
    for (size_t i = 0; p.idp_hint != NULL && i < n; i++)
        if (strcmp(idps[i]->conf->name, p.idp_hint) == 0)
            idp = idps[i];
    if (idp == NULL)
        idp = idp_for_hint(req->runtime, p.login_hint);
    if (idp == NULL && n == 1)
        idp = idps[0];
    if (idp != NULL) {
        mandate_signin_start_login(req, resp, &p, idp);
        return;
    }
    show_chooser(req, resp, &p, &client, idps, labels, n);
}

void mandate_endpoint_authorize_choose(mandate_http_request *req, mandate_http_response *resp)
{
    mandate_error err = {0};
    mandate_form form;
    if (mandate_form_parse(req->pool, req->body, req->body_len, NULL, &form, &err) !=
        MANDATE_OK) {
        refuse_page(req, resp, 400, NULL, "This form cannot be read", "The form is malformed.",
                    err.message);
        return;
    }
    const char *handle = mandate_form_get(&form, "handle");
    if (!mandate_web_csrf_ok(req, NULL, handle, mandate_form_get(&form, "csrf"))) {
        refuse_page(req, resp, 403, NULL, "This form has expired",
                    "The form was not sent by the broker's page. Start again from the "
                    "application.",
                    "CSRF token missing or wrong");
        return;
    }
    mandate_pending p;
    mandate_rc rc = mandate_signin_pending_take(req, "choose", handle, &p, &err);
    if (rc != MANDATE_OK) {
        refuse_page(req, resp, rc == MANDATE_NOT_FOUND ? 400 : 503, NULL,
                    "This sign-in has expired",
                    "This page was used already or is too old. Start again from the "
                    "application.",
                    err.message);
        return;
    }
    const char *chosen = mandate_form_get(&form, "idp");
    const mandate_instance *idps[MAX_IDPS];
    const char *labels[MAX_IDPS];
    size_t n = mandate_signin_idps(req->runtime, idps, labels, MAX_IDPS);
    for (size_t i = 0; chosen != NULL && i < n; i++)
        if (strcmp(idps[i]->conf->name, chosen) == 0) {
            mandate_signin_start_login(req, resp, &p, idps[i]);
            return;
        }
    mandate_signin_redirect_error(req, resp, &p, "invalid_request",
                                  "the chosen identity provider is not offered",
                                  "no such IdP on the chooser");
}
