#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "audit-events-private.h"
#include "client-documents-private.h"
#include "client-limits-private.h"
#include "clock-private.h"
#include "html-private.h"
#include "issue-private.h"
#include "jose.h"
#include "log-private.h"
#include "mtls-private.h"
#include "oauth-private.h"
#include "pool-private.h"
#include "refusals-private.h"
#include "runtime-private.h"
#include "signin-private.h"
#include "web-private.h"
#include "word-list.h"

/* --- the IdPs offered ------------------------------------------------------ */

bool mandate_signin_available(const mandate_runtime *rt)
{
    for (size_t i = 0; i < mandate_runtime_instance_count(rt); i++)
        if (mandate_backend_signs_in(mandate_runtime_instance(rt, i)))
            return true;
    return false;
}

size_t mandate_signin_idps(const mandate_runtime *rt, const mandate_instance **instances,
                           const char **labels, size_t max)
{
    const mandate_signin_config *sc = &mandate_runtime_config(rt)->signin;
    size_t n = 0;
    if (sc->idp_count > 0) {
        for (size_t i = 0; i < sc->idp_count && n < max; i++) {
            const mandate_instance *in =
                mandate_runtime_find(rt, MANDATE_BACKEND, sc->idps[i].instance);
            if (in == NULL || !mandate_backend_signs_in(in))
                continue; /* said at start (mandated checks the config) */
            instances[n] = in;
            labels[n++] = sc->idps[i].label ? sc->idps[i].label : in->conf->name;
        }
        return n;
    }
    for (size_t i = 0; i < mandate_runtime_instance_count(rt) && n < max; i++) {
        const mandate_instance *in = mandate_runtime_instance(rt, i);
        if (mandate_backend_signs_in(in)) {
            instances[n] = in;
            labels[n++] = in->conf->name;
        }
    }
    return n;
}

/* --- clients -------------------------------------------------------------- */

/* A client document fetched for a request set aside (see
 * mandate_signin_client): what mandate_client_document_resolve said. */
typedef struct document_fetch {
    mandate_runtime *runtime;
    mandate_pool *pool;
    const char *url;
    char address[MANDATE_PEER_MAX]; /* the requester's limit key */
    bool claimed;                   /* a place of that address's, held */
    bool fetched;                   /* false: given up, never run */
    mandate_client client;
    mandate_error err;
    mandate_rc rc;
} document_fetch;

/* On a set-aside thread. */
static void fetch_document_aside(void *ctx)
{
    document_fetch *f = ctx;
    f->fetched = true;
    f->rc = mandate_client_document_resolve_as(
        f->runtime, f->pool, f->url, MANDATE_DOCUMENT_FETCH_ASIDE, &f->client, &f->err);
}

static mandate_rc document_client(mandate_http_request *req, const char *url,
                                  bool may_set_aside, mandate_client *client_r,
                                  mandate_error *err)
{
    document_fetch *done = req->set_aside;
    if (done != NULL && strcmp(done->url, url) == 0) { /* called again */
        if (done->claimed) /* once, however often the client is asked for */
            mandate_client_document_fetch_release(done->address);
        done->claimed = false;
        if (!done->fetched)
            return mandate_error_set(err, MANDATE_TEMPFAIL,
                                     "the client document fetches are busy: try again");
        *client_r = done->client;
        *err = done->err;
        return done->rc;
    }
    /* anyone can name a URL: an address already over its refusal budget
     * (a failed fetch is a refusal), or over the allowance of sign-ins
     * started at self-described clients (which would refuse a new
     * document's sign-in start anyway), gets the copy kept, never a fetch */
    if (mandate_refusal_budget_spent(req) ||
        !mandate_client_limits_peek(req, MANDATE_EP_AUTHORIZE,
                                    mandate_client_limits_self_described_key(req), NULL))
        return mandate_client_document_resolve_as(req->runtime, req->pool, url,
                                                  MANDATE_DOCUMENT_KEPT_ONLY, client_r, err);
    if (!may_set_aside)
        return mandate_client_document_resolve(req->runtime, req->pool, url, client_r, err);
    mandate_rc rc = mandate_client_document_resolve_as(
        req->runtime, req->pool, url, MANDATE_DOCUMENT_SAY_FETCH, client_r, err);
    if (rc != MANDATE_NEXT)
        return rc;
    /* a fetch from a server anyone names, as slow as client_documents.
     * timeout_ms lets it be: never on the HTTP worker, whose other
     * connections (agents' tokens, gateway checks) would wait with it */
    document_fetch *f = mandate_pool_alloc(req->pool, sizeof(*f));
    *f = (document_fetch){.runtime = req->runtime, .pool = req->pool, .url = url};
    snprintf(f->address, sizeof(f->address), "%s", mandate_request_limit_key(req));
    if (!mandate_client_document_fetch_claim(f->address))
        return mandate_error_set(err, MANDATE_TEMPFAIL,
                                 "%d client documents named from this address are being "
                                 "fetched already: try again",
                                 MANDATE_CLIENT_DOCUMENT_FETCHES_PER_ADDRESS);
    f->claimed = true;
    switch (mandate_http_set_aside(req, fetch_document_aside, f)) {
    case MANDATE_HTTP_SET_ASIDE:
        log_info("client document %s: to be fetched, its request set aside", url);
        return mandate_error_set(err, MANDATE_TEMPFAIL,
                                 "set aside while its document is fetched");
    case MANDATE_HTTP_ASIDE_FULL:
        mandate_client_document_fetch_release(f->address);
        return mandate_error_set(err, MANDATE_TEMPFAIL,
                                 "the client document fetches are busy: try again");
    case MANDATE_HTTP_ASIDE_DONE_HERE:
        mandate_client_document_fetch_release(f->address);
        break;
    }
    *client_r = f->client;
    *err = f->err;
    return f->rc;
}

mandate_rc mandate_signin_client(mandate_http_request *req, const char *client_id,
                                 bool may_set_aside, mandate_client *client_r,
                                 mandate_error *err)
{
    if (mandate_client_id_is_document(client_id))
        return document_client(req, client_id, may_set_aside, client_r, err);
    if (!mandate_client_id_valid(client_id))
        return mandate_error_set(err, MANDATE_NOT_FOUND, "no such client");
    mandate_rc rc = mandate_store_client_get(mandate_runtime_store(req->runtime), req->pool,
                                             client_id, client_r, err);
    if (rc == MANDATE_OK && client_r->status != MANDATE_CLIENT_ENABLED)
        return mandate_error_set(err, MANDATE_NOT_FOUND, "the client is disabled");
    return rc;
}

static json_t *client_meta(const mandate_client *client)
{
    return client->metadata != NULL ? json_loads(client->metadata, 0, NULL) : NULL;
}

const char *mandate_signin_client_meta(mandate_pool *pool, const mandate_client *client,
                                       const char *name)
{
    json_t *meta = client_meta(client);
    const char *v = json_string_value(json_object_get(meta, name));
    const char *out = v != NULL ? mandate_pool_strdup(pool, v) : NULL;
    json_decref(meta);
    return out;
}

/* http://127.0.0.1:PORT/... or http://[::1]:PORT/...: the host and the rest
 * after the port, for RFC 8252 §7.3's any-port match. */
static bool loopback_parts(const char *uri, const char **host_r, size_t *host_len_r,
                           const char **rest_r)
{
    static const char *const hosts[] = {"http://127.0.0.1", "http://[::1]"};
    for (size_t i = 0; i < 2; i++) {
        size_t n = strlen(hosts[i]);
        if (strncmp(uri, hosts[i], n) != 0)
            continue;
        const char *p = uri + n;
        if (*p == ':') {
            p++;
            if (*p < '0' || *p > '9')
                return false;
            while (*p >= '0' && *p <= '9')
                p++;
        }
        if (*p != '/' && *p != '\0' && *p != '?')
            return false;
        *host_r = uri;
        *host_len_r = n;
        *rest_r = p;
        return true;
    }
    return false;
}

/* Whether a redirect_uris entry admits uri: the same string, or for a
 * loopback one the same host and rest on any port. */
static bool redirect_admits(const char *entry, const char *uri)
{
    const char *host, *rest, *rhost, *rrest;
    size_t host_len, rhost_len;
    return strcmp(entry, uri) == 0 ||
           (loopback_parts(uri, &host, &host_len, &rest) &&
            loopback_parts(entry, &rhost, &rhost_len, &rrest) && rhost_len == host_len &&
            strncmp(rhost, host, host_len) == 0 && strcmp(rrest, rest) == 0);
}

static bool same_string(const char *entry, const char *wanted)
{
    return strcmp(entry, wanted) == 0;
}

/* Whether a string of the JSON array (or NULL) admits wanted. */
static bool array_admits(const json_t *array, const char *wanted,
                         bool (*admits)(const char *entry, const char *wanted))
{
    size_t i;
    json_t *v;
    json_array_foreach(array, i, v)
    {
        const char *entry = json_string_value(v);
        if (entry != NULL && admits(entry, wanted))
            return true;
    }
    return false;
}

bool mandate_signin_redirect_ok(mandate_pool *pool, const mandate_client *client,
                                const char *uri)
{
    (void)pool;
    json_t *meta = client_meta(client);
    bool ok = array_admits(json_object_get(meta, "redirect_uris"), uri, redirect_admits);
    json_decref(meta);
    return ok;
}

bool mandate_signin_client_grants(mandate_pool *pool, const mandate_client *client,
                                  const char *grant_type)
{
    (void)pool;
    json_t *meta = client_meta(client);
    json_t *grants = json_object_get(meta, "grant_types");
    bool ok = grants == NULL && meta != NULL && json_object_get(meta, "redirect_uris") != NULL
                  /* RFC 7591 §2: grant_types defaults to authorization_code */
                  ? strcmp(grant_type, "authorization_code") == 0
                  : array_admits(grants, grant_type, same_string);
    json_decref(meta);
    return ok;
}

bool mandate_signin_grant_registered(mandate_http_request *req, mandate_http_response *resp,
                                     const mandate_client *client, const char *grant_type)
{
    /* Registration hands out no secret, but a certificate client
     * (self_signed_tls_client_auth) or one with a jwks authenticates: without
     * this, anyone who can register could take client credentials or
     * exchange tokens as a client of their own naming. */
    if (mandate_signin_client_meta(req->pool, client, "registered_by") == NULL ||
        mandate_signin_client_grants(req->pool, client, grant_type))
        return true;
    mandate_oauth_error oerr;
    mandate_oauth_fail(&oerr, 400, "unauthorized_client",
                       "the client registered itself without this grant_type");
    log_info("token refused: client_id=%s: grant_type %s not registered", client->client_id,
             grant_type);
    mandate_token_refuse(req, resp, &oerr, grant_type, client->client_id, NULL);
    return false;
}

bool mandate_signin_token_client(mandate_http_request *req, const mandate_form *form,
                                 mandate_client *client_r, mandate_oauth_error *oerr)
{
    bool credentials = mandate_http_request_header(req, "Authorization") != NULL ||
                       mandate_form_get(form, "client_secret") != NULL ||
                       mandate_form_get(form, "client_assertion") != NULL;
    if (credentials)
        return mandate_client_authenticate(req, form, client_r, oerr) == MANDATE_OK;
    const char *client_id = mandate_form_get(form, "client_id");
    mandate_error err = {0};
    mandate_rc rc = client_id != NULL
                        ? mandate_signin_client(req, client_id, true, client_r, &err)
                        : MANDATE_NOT_FOUND;
    if (mandate_http_request_is_set_aside(req))
        return false;
    if (rc == MANDATE_TEMPFAIL || rc == MANDATE_ERROR) {
        mandate_oauth_fail_rc(oerr, rc);
        oerr->reason = mandate_pool_strdup(req->pool, err.message);
        return false;
    }
    const char *method =
        rc == MANDATE_OK ? mandate_signin_client_meta(req->pool, client_r,
                                                      "token_endpoint_auth_method")
                         : NULL;
    /* RFC 8705 §2: the certificate is the credential */
    if (method != NULL && mandate_mtls_client_method(client_r) != NULL)
        return mandate_client_authenticate(req, form, client_r, oerr) == MANDATE_OK;
    if (method == NULL || strcmp(method, "none") != 0) {
        mandate_oauth_fail(oerr, 401, "invalid_client", "client authentication failed");
        oerr->client_id = client_id;
        oerr->reason = client_id == NULL ? "no client_id and no credentials"
                       : rc != MANDATE_OK
                           ? mandate_pool_strdup(req->pool, err.message)
                           : "a confidential client presented no credentials";
        return false;
    }
    return true;
}

/* --- pending authorizations ---------------------------------------------- */

static json_t *pending_json(const mandate_pending *p)
{
    json_t *o = json_object();
#define PUT_STR(name)                                                                          \
    if (p->name != NULL)                                                                       \
    json_object_set_new(o, #name, json_string(p->name))
    PUT_STR(client_id);
    PUT_STR(redirect_uri);
    PUT_STR(state);
    PUT_STR(scope);
    PUT_STR(resources);
    PUT_STR(code_challenge);
    PUT_STR(login_hint);
    PUT_STR(idp);
    PUT_STR(remember);
    PUT_STR(binding);
    PUT_STR(session);
    PUT_STR(mapped);
    PUT_STR(dpop_jkt);
    PUT_STR(idp_hint);
    PUT_STR(replaces);
#undef PUT_STR
    json_object_set_new(o, "prompt_none", json_boolean(p->prompt_none));
    json_object_set_new(o, "force_login", json_boolean(p->force_login));
    json_object_set_new(o, "force_consent", json_boolean(p->force_consent));
    json_object_set_new(o, "max_age", json_integer(p->max_age));
    json_object_set_new(o, "started_at", json_integer(p->started_at));
    return o;
}

static const char *get_str(mandate_pool *pool, const json_t *o, const char *name)
{
    const char *v = json_string_value(json_object_get(o, name));
    return v != NULL ? mandate_pool_strdup(pool, v) : NULL;
}

mandate_rc mandate_signin_pending_put(mandate_http_request *req, const char *ns,
                                      const mandate_pending *pending, const char **handle_r,
                                      mandate_error *err)
{
    return mandate_signin_pending_put_for(
        req, ns, pending, mandate_runtime_config(req->runtime)->signin.pending_lifetime,
        handle_r, err);
}

mandate_rc mandate_signin_pending_write(mandate_http_request *req, const char *ns,
                                        const mandate_pending *pending, int64_t lifetime,
                                        const char **handle_r, mandate_store_write *write_r,
                                        mandate_error *err)
{
    const char *handle = mandate_web_secret(req->pool);
    if (handle == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "no randomness for a handle");
    json_t *o = pending_json(pending);
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    unsigned char *key = mandate_pool_alloc(req->pool, 32);
    mandate_web_hash(handle, key);
    *write_r = (mandate_store_write){MANDATE_STORE_WRITE_ONCE_PUT,
                                     ns,
                                     key,
                                     32,
                                     mandate_pool_strdup(req->pool, text),
                                     mandate_clock_now() + lifetime,
                                     0,
                                     NULL};
    free(text);
    *handle_r = handle;
    return MANDATE_OK;
}

mandate_rc mandate_signin_pending_put_for(mandate_http_request *req, const char *ns,
                                          const mandate_pending *pending, int64_t lifetime,
                                          const char **handle_r, mandate_error *err)
{
    mandate_store_write w;
    const char *handle;
    mandate_rc rc = mandate_signin_pending_write(req, ns, pending, lifetime, &handle, &w, err);
    if (rc == MANDATE_OK)
        rc = mandate_store_once_put(mandate_runtime_store(req->runtime), w.ns, w.key, w.key_len,
                                    w.value, w.expires_at, err);
    if (rc == MANDATE_OK)
        *handle_r = handle;
    return rc;
}

mandate_rc mandate_signin_pending_take(mandate_http_request *req, const char *ns,
                                       const char *handle, mandate_pending *p,
                                       mandate_error *err)
{
    memset(p, 0, sizeof(*p));
    if (handle == NULL || strlen(handle) > 128)
        return mandate_error_set(err, MANDATE_NOT_FOUND, "no such sign-in");
    unsigned char key[32];
    mandate_web_hash(handle, key);
    char *text = NULL;
    mandate_rc rc = mandate_store_once_take(mandate_runtime_store(req->runtime), req->pool, ns,
                                            key, sizeof(key), mandate_clock_now(), &text, err);
    if (rc != MANDATE_OK)
        return rc;
    json_t *o = json_loads(text, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return mandate_error_set(err, MANDATE_ERROR, "a pending sign-in that is not JSON");
    }
    p->client_id = get_str(req->pool, o, "client_id");
    p->redirect_uri = get_str(req->pool, o, "redirect_uri");
    p->state = get_str(req->pool, o, "state");
    p->scope = get_str(req->pool, o, "scope");
    p->resources = get_str(req->pool, o, "resources");
    p->code_challenge = get_str(req->pool, o, "code_challenge");
    p->login_hint = get_str(req->pool, o, "login_hint");
    p->idp = get_str(req->pool, o, "idp");
    p->remember = get_str(req->pool, o, "remember");
    p->binding = get_str(req->pool, o, "binding");
    p->session = get_str(req->pool, o, "session");
    p->force_login = json_is_true(json_object_get(o, "force_login"));
    p->force_consent = json_is_true(json_object_get(o, "force_consent"));
    json_t *max_age = json_object_get(o, "max_age");
    p->max_age = json_is_integer(max_age) ? json_integer_value(max_age) : -1;
    json_t *started_at = json_object_get(o, "started_at");
    p->started_at = json_is_integer(started_at) ? json_integer_value(started_at) : 0;
    p->mapped = get_str(req->pool, o, "mapped");
    p->dpop_jkt = get_str(req->pool, o, "dpop_jkt");
    p->idp_hint = get_str(req->pool, o, "idp_hint");
    p->replaces = get_str(req->pool, o, "replaces");
    p->prompt_none = json_is_true(json_object_get(o, "prompt_none"));
    json_decref(o);
    if (p->client_id == NULL || p->redirect_uri == NULL || p->code_challenge == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "a pending sign-in without its client");
    return MANDATE_OK;
}

/* --- answers -------------------------------------------------------------- */

/* The record of a step of the sign-in (fields: stolen). A step the trail
 * cannot take does not happen (doc/security.md: nothing is granted
 * unrecorded): false, answered temporarily_unavailable. */
static bool audited(mandate_http_request *req, mandate_http_response *resp,
                    const mandate_pending *pending, const char *event, json_t *fields)
{
    if (mandate_audit_event(event, fields) == MANDATE_OK)
        return true;
    mandate_signin_redirect_error(req, resp, pending, "temporarily_unavailable",
                                  "the broker cannot record this sign-in now",
                                  mandate_pool_printf(req->pool, "%s cannot be recorded", event));
    return false;
}

/* authorize.refused in the trail; the verdict, answered already (503) when
 * unrecorded. */
static mandate_refusal_verdict record_refusal(mandate_http_request *req,
                                              mandate_http_response *resp,
                                              const mandate_pending *pending, const char *error,
                                              const char *description, const char *reason)
{
    json_t *fields = json_pack("{s:o,s:s,s:o}", "client_id",
                               mandate_audit_text(pending->client_id, MANDATE_AUDIT_TEXT_MAX),
                               "error", error, "reason",
                               mandate_audit_text(reason ? reason : description,
                                                  MANDATE_AUDIT_TEXT_MAX));
    unsigned retry;
    mandate_refusal_verdict verdict =
        mandate_refusal_record(req, "authorize.refused", fields, &retry);
    if (verdict == MANDATE_REFUSAL_UNRECORDED) {
        mandate_web_error_page(req, resp, 503, "Please try again",
                               "The broker cannot record this request now.");
        return verdict;
    }
    log_info("authorization refused: client_id=%s: %s: %s", pending->client_id, error,
             reason ? reason : description);
    return verdict;
}

void mandate_signin_redirect_error(mandate_http_request *req, mandate_http_response *resp,
                                   const mandate_pending *pending, const char *error,
                                   const char *description, const char *reason)
{
    const char *issuer = mandate_runtime_config(req->runtime)->issuer;
    if (record_refusal(req, resp, pending, error, description, reason) ==
        MANDATE_REFUSAL_UNRECORDED)
        return;
    const char *pairs[] = {"error", error, "error_description", description,
                           pending->state ? "state" : NULL, pending->state, NULL, NULL};
    const char *url = mandate_web_url_with(req->pool, pending->redirect_uri, pairs);
    const char *iss_pairs[] = {"iss", issuer, NULL, NULL};
    mandate_web_redirect(req, resp, mandate_web_url_with(req->pool, url, iss_pairs));
}

/* Whether the store kept what the sign-in needs (rc); if not, the log says
 * what was lost and the client hears temporarily_unavailable. */
static bool kept(mandate_http_request *req, mandate_http_response *resp,
                 const mandate_pending *pending, mandate_rc rc, const mandate_error *err,
                 const char *what, const char *description)
{
    if (rc == MANDATE_OK)
        return true;
    log_error("%s cannot be kept: %s", what, err->message);
    mandate_signin_redirect_error(req, resp, pending, "temporarily_unavailable", description,
                                  err->message);
    return false;
}

void mandate_signin_over_budget_page(mandate_http_request *req, mandate_http_response *resp)
{
    mandate_web_error_page(req, resp, 429, "Too many requests",
                           "Too many refused requests came from your address. Wait a "
                           "little and try again.");
}

bool mandate_signin_redirect_at_once(mandate_pool *pool, const mandate_client *client)
{
    const char *by = mandate_signin_client_meta(pool, client, "registered_by");
    return by == NULL || strcmp(by, "admin") == 0;
}

void mandate_signin_refuse_unattended(mandate_http_request *req, mandate_http_response *resp,
                                      const mandate_pending *pending,
                                      const mandate_client *client, const char *error,
                                      const char *description, const char *reason)
{
    if (mandate_signin_redirect_at_once(req->pool, client)) {
        mandate_signin_redirect_error(req, resp, pending, error, description, reason);
        return;
    }
    /* RFC 9700 §4.11.2: a client that described itself chose its redirect
     * URI too; sent there at once, with no one having acted, the broker's
     * link would be an open redirector */
    switch (record_refusal(req, resp, pending, error, description, reason)) {
    case MANDATE_REFUSAL_RECORDED: break;
    case MANDATE_REFUSAL_OVER_BUDGET: mandate_signin_over_budget_page(req, resp); return;
    case MANDATE_REFUSAL_UNRECORDED: return;
    }
    mandate_web_error_page(
        req, resp, 400, "This request cannot be served",
        mandate_pool_printf(req->pool,
                            "The application's sign-in request was refused (%s: %s). Start "
                            "again from the application.",
                            error, description));
}

static char *hex(mandate_pool *pool, const unsigned char *bytes, size_t n)
{
    return mandate_pool_hex(pool, bytes, n);
}

static char *hash_hex(mandate_pool *pool, const char *secret)
{
    unsigned char h[32];
    mandate_web_hash(secret, h);
    return hex(pool, h, sizeof(h));
}

static const char *callback_url(mandate_http_request *req, const mandate_instance *in)
{
    return mandate_oauth_endpoint_url(
        req, mandate_pool_printf(req->pool, "/login/%s/callback", in->conf->name));
}

void mandate_signin_start_login(mandate_http_request *req, mandate_http_response *resp,
                                mandate_pending *pending, const mandate_instance *in)
{
    mandate_error err = {0};
    /* the handle the IdP sends back, fixed before login_start sees it */
    const char *binding = mandate_web_secret(req->pool);
    if (binding == NULL) {
        mandate_signin_redirect_error(req, resp, pending, "server_error",
                                      "the broker cannot start a sign-in now", "no randomness");
        return;
    }
    pending->binding = hash_hex(req->pool, binding);
    pending->idp = in->conf->name;
    /* The handle is chosen here and handed to login_start, and the pending
     * authorization (with what login_start asks to remember) is kept under
     * it before the browser is sent anywhere: the IdP's answer cannot
     * arrive before it. */
    const char *handle = mandate_web_secret(req->pool);
    if (handle == NULL) {
        mandate_signin_redirect_error(req, resp, pending, "server_error",
                                      "the broker cannot start a sign-in now", "no randomness");
        return;
    }
    mandate_login_request lr = {
        .callback_url = callback_url(req, in),
        .handle = handle,
        .login_hint = pending->login_hint,
        .force_login = pending->force_login,
        .max_age = pending->max_age,
    };
    mandate_login_redirect redirect;
    mandate_rc rc = mandate_backend_login_start(in, req->pool, &lr, &redirect, &err);
    if (rc != MANDATE_OK) {
        log_error("sign-in at %s cannot start: %s", in->conf->name, err.message);
        mandate_signin_redirect_error(req, resp, pending,
                                      rc == MANDATE_TEMPFAIL ? "temporarily_unavailable"
                                                             : "server_error",
                                      "the sign-in at the identity provider cannot start now",
                                      err.message);
        return;
    }
    pending->remember = redirect.remember;
    json_t *o = pending_json(pending);
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    unsigned char key[32];
    mandate_web_hash(handle, key);
    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    rc = mandate_store_once_put(mandate_runtime_store(req->runtime), "authorize", key,
                                sizeof(key), text,
                                mandate_clock_now() + cfg->signin.pending_lifetime, &err);
    free(text);
    if (!kept(req, resp, pending, rc, &err, "a pending sign-in",
              "the broker cannot keep this sign-in now"))
        return;
    if (!audited(req, resp, pending, "login.started",
                 json_pack("{s:o,s:s}", "client_id",
                           mandate_audit_text(pending->client_id, MANDATE_AUDIT_TEXT_MAX), "idp",
                           in->conf->name)))
        return;
    log_info("sign-in started at %s for client %s", in->conf->name, pending->client_id);
    mandate_http_response_header(
        resp, "Set-Cookie",
        mandate_pool_printf(req->pool,
                            "%s=%s; Path=/; Secure; HttpOnly; SameSite=None; Max-Age=%lld",
                            MANDATE_LOGIN_COOKIE, binding,
                            (long long)cfg->signin.pending_lifetime));
    mandate_web_redirect(req, resp, redirect.url);
}

/* --- sessions ------------------------------------------------------------- */

/* seconds by which a session's last_seen_at may lag at most */
#define SESSION_TOUCH_LAG_MAX 60

mandate_rc mandate_signin_session(mandate_http_request *req, mandate_session *session_r,
                                  const char **value_r, mandate_error *err)
{
    const char *value = mandate_web_cookie(req, MANDATE_SESSION_COOKIE);
    if (value == NULL || strlen(value) > 128)
        return mandate_error_set(err, MANDATE_NOT_FOUND, "no session");
    unsigned char key[32];
    mandate_web_hash(value, key);
    int64_t now = mandate_clock_now();
    const mandate_instance *store = mandate_runtime_store(req->runtime);
    mandate_rc rc = mandate_store_session_get(store, req->pool, key, sizeof(key), now,
                                              session_r, err);
    if (rc != MANDATE_OK)
        return rc;
    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    if (now - session_r->last_seen_at > cfg->signin.session_idle)
        return mandate_error_set(err, MANDATE_NOT_FOUND, "the session sat unused too long");
    /* last_seen_at is moved on once it lags by a tenth of session_idle (at
     * most a minute), not on every request: a write the less for most
     * authorization requests, for a session that may end idle that much
     * sooner (doc/mandate.conf.5) */
    int64_t lag = cfg->signin.session_idle / 10;
    if (lag > SESSION_TOUCH_LAG_MAX)
        lag = SESSION_TOUCH_LAG_MAX;
    if (now - session_r->last_seen_at >= lag)
        mandate_store_session_touch(store, key, sizeof(key), now, err);
    *value_r = value;
    return MANDATE_OK;
}

bool mandate_signin_session_serves(const mandate_session *session, const char *client_id)
{
    json_t *identity = json_loads(session->identity ? session->identity : "{}", 0, NULL);
    const char *only = json_string_value(json_object_get(identity, "idp_initiated"));
    bool serves = only == NULL || strcmp(only, client_id) == 0;
    json_decref(identity);
    return serves;
}

/* --- after the user is known ---------------------------------------------- */

static bool within(const char *want, const char *have)
{
    size_t len;
    return want == NULL || mandate_word_list_missing(want, have ? have : "", &len) == NULL;
}

static const char consent_template[] =
    "<p><strong>{{client_name}}</strong>{{#client_host}} (<code>{{client_host}}</code>){{/client_host}}"
    " asks to act for you, <strong>{{subject}}</strong>.</p>"
    "{{#client_document}}<p><small>Its name and details are what it says of itself at "
    "<code>{{client_id}}</code>; the broker has not checked them.</small></p>{{/client_document}}"
    "<p>It will be allowed to:</p><ul>{{#scopes}}<li><code>{{scope}}</code></li>{{/scopes}}</ul>"
    "{{#resources}}<p>on these services:</p><ul>{{#resource_list}}<li><code>{{resource}}</code></li>"
    "{{/resource_list}}</ul>{{/resources}}"
    "{{#logo_uri}}<p><small>Logo address it gives: <code>{{logo_uri}}</code> (not "
    "shown)</small></p>{{/logo_uri}}"
    "<form method=\"post\" action=\"{{action}}\">"
    "<input type=\"hidden\" name=\"handle\" value=\"{{handle}}\">"
    "<input type=\"hidden\" name=\"csrf\" value=\"{{csrf}}\">"
    "<label><input type=\"checkbox\" name=\"remember\" value=\"yes\"> Remember this choice"
    "</label>"
    "<button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>"
    "<button type=\"submit\" name=\"decision\" value=\"deny\" class=\"secondary\">Deny</button>"
    "</form><p><small>You can withdraw it at any time; your administrator can list it.</small>"
    "</p>";

/* The consent page for the pending consent kept under handle. */
static void show_consent(mandate_http_request *req, mandate_http_response *resp,
                         const mandate_pending *pending, const mandate_client *client,
                         const char *session_value, const char *handle, const char *subject,
                         const char *tenant, const char *scope, const char *audience)
{
    bool document = mandate_client_id_is_document(client->client_id);
    const char *name = mandate_signin_client_meta(req->pool, client, "client_name");
    json_t *scopes = json_array(), *resource_list = json_array();
    const char *w, *cur = scope;
    size_t len;
    while (mandate_word_list_next(&cur, &w, &len))
        json_array_append_new(scopes, json_pack("{s:s%}", "scope", w, len));
    cur = audience;
    while (cur != NULL && mandate_word_list_next(&cur, &w, &len))
        json_array_append_new(resource_list, json_pack("{s:s%}", "resource", w, len));
    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    json_t *view = json_pack(
        "{s:s,s:s?,s:b,s:s,s:s,s:o,s:b,s:o,s:s?,s:s,s:s,s:s}", "client_name",
        name != NULL ? name : client->name != NULL ? client->name : client->client_id,
        "client_host", document ? mandate_client_document_host(req->pool, client->client_id)
                              : NULL,
        "client_document", document, "client_id", client->client_id, "subject", subject,
        "scopes", scopes, "resources", json_array_size(resource_list) > 0, "resource_list",
        resource_list, "logo_uri", mandate_signin_client_meta(req->pool, client, "logo_uri"),
        "action", mandate_oauth_endpoint_url(req, "/consent"), "handle", handle, "csrf",
        mandate_web_csrf(req, session_value, handle));
    json_object_set_new(view, "tenant_name",
                        json_string(mandate_signin_tenant_name(&cfg->signin, tenant)));
    if (!audited(req, resp, pending, "consent.asked",
                 json_pack("{s:s,s:s,s:s,s:s}", "client_id", client->client_id, "sub", subject,
                           "scope", scope, "aud", audience ? audience : ""))) {
        json_decref(view);
        return;
    }
    mandate_web_page(req, resp, 200, "Allow access?", consent_template, view,
                     pending->redirect_uri);
}

const char *mandate_signin_user_root(mandate_pool *pool, const char *tenant,
                                     const char *subject)
{
    unsigned char h[32];
    mandate_web_hash(mandate_pool_printf(pool, "%s\n%s", tenant, subject), h);
    char hex[65];
    for (size_t i = 0; i < sizeof(h); i++)
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
    return mandate_pool_printf(pool, "usr_%s", hex);
}

const char *mandate_signin_session_root(mandate_pool *pool, const char *id_hash_hex)
{
    return mandate_pool_printf(
        pool, "ses_%s", hash_hex(pool, mandate_pool_printf(pool, "session\n%s", id_hash_hex)));
}

mandate_rc mandate_signin_end_session_grants(mandate_http_request *req,
                                             const unsigned char id_hash[32],
                                             uint64_t *revocations_r, mandate_error *err)
{
    const mandate_instance *store = mandate_runtime_store(req->runtime);
    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    const char *root = mandate_signin_session_root(req->pool, hex(req->pool, id_hash, 32));
    /* the mark first: a redemption running now ties its family below the
     * root and then looks for the mark, so one of the two sees the other
     * (as mandate_signin_end_family does for a family) */
    mandate_rc rc = mandate_store_revoke(store, root, NULL,
                                         mandate_clock_now() + cfg->signin.refresh_lifetime, err);
    if (rc == MANDATE_OK)
        rc = mandate_store_revoke_descendants(store, root, revocations_r, err);
    return rc;
}

/* One session a sign-in replaces (its hash), if it is still there. */
static void end_replaced_session(mandate_http_request *req, const unsigned char id_hash[32],
                                 const char *tenant, const char *subject, bool solicited)
{
    const mandate_instance *store = mandate_runtime_store(req->runtime);
    mandate_error err = {0};
    mandate_session old;
    mandate_rc rc =
        mandate_store_session_get(store, req->pool, id_hash, 32, mandate_clock_now(), &old, &err);
    if (rc == MANDATE_NOT_FOUND) /* ended already: a logout, its lifetime */
        return;
    /* the same person signing in again (prompt=login, max_age) keeps what
     * applications got through the old session; another person's grants
     * must not outlive what looked to them like being signed out */
    bool same_person = rc == MANDATE_OK && old.tenant != NULL && old.subject != NULL &&
                       strcmp(old.tenant, tenant) == 0 && strcmp(old.subject, subject) == 0;
    if (rc == MANDATE_OK && !same_person && !solicited) {
        /* an IdP-initiated answer proves nothing about who sent the
         * browser here (a link, a form): another person's session is not
         * theirs to end; it keeps its grants until its own end or a logout */
        log_info("an unsolicited sign-in of %s leaves the session of %s as it is", subject,
                 old.subject ? old.subject : "-");
        return;
    }
    if (rc == MANDATE_OK)
        rc = mandate_store_session_delete(store, id_hash, 32, &err);
    if (rc == MANDATE_NOT_FOUND)
        return;
    if (rc != MANDATE_OK) {
        log_error("the session a sign-in replaces cannot be ended: %s", err.message);
        return;
    }
    uint64_t revoked = 0;
    if (!same_person && mandate_signin_end_session_grants(req, id_hash, &revoked, &err) !=
                            MANDATE_OK)
        log_error("the tokens of a replaced session cannot be revoked: %s", err.message);
    mandate_audit_event("session.ended",
                        json_pack("{s:s?,s:s?,s:s,s:I}", "sub", old.subject, "idp", old.idp,
                                  "reason", "replaced", "revocations", (json_int_t)revoked));
    log_info("the session of %s is replaced by a sign-in of %s", old.subject ? old.subject : "-",
             subject);
}

void mandate_signin_end_replaced(mandate_http_request *req, const char *replaces,
                                 const char *tenant, const char *subject, bool solicited)
{
    unsigned char noted[32], current[32];
    size_t len = 0;
    bool has_noted = replaces != NULL &&
                     OPENSSL_hexstr2buf_ex(noted, sizeof(noted), &len, replaces, '\0') == 1 &&
                     len == sizeof(noted);
    if (has_noted)
        end_replaced_session(req, noted, tenant, subject, solicited);
    const char *cookie = mandate_web_cookie(req, MANDATE_SESSION_COOKIE);
    if (cookie == NULL || strlen(cookie) > 128)
        return;
    mandate_web_hash(cookie, current);
    if (!has_noted || memcmp(noted, current, sizeof(current)) != 0)
        end_replaced_session(req, current, tenant, subject, solicited);
}

/* signin.code_lifetime's bound: how long before a user's revocation a
 * code still redeemable may have been issued */
#define CODE_LIFETIME_MAX 60

/* "a code issued at this second was still redeemable when the user was
 * revoked" */
static const char *user_mark(mandate_pool *pool, const char *tenant, const char *subject,
                             int64_t second)
{
    return mandate_pool_printf(pool, "%s@%lld", mandate_signin_user_root(pool, tenant, subject),
                               (long long)second);
}

mandate_rc mandate_signin_user_ended(const mandate_instance *store, mandate_pool *pool,
                                     const char *tenant, const char *subject, int64_t issued_at,
                                     bool *ended_r, mandate_error *err)
{
    return mandate_store_is_revoked(store, user_mark(pool, tenant, subject, issued_at), ended_r,
                                    err);
}

mandate_rc mandate_signin_end_user(const mandate_instance *store, mandate_pool *pool,
                                   const char *tenant, const char *subject,
                                   uint64_t *refresh_tokens_r, uint64_t *revocations_r,
                                   uint64_t *sessions_r, mandate_error *err)
{
    /* the marks first, one for each second an unredeemed code may have
     * been issued in (a sign-in made again afterwards is not touched): a
     * redemption running now ties its family below the user and then looks
     * for its second's mark (as for a session's logout) */
    int64_t now = mandate_clock_now();
    mandate_rc rc = MANDATE_OK;
    for (int64_t s = now - CODE_LIFETIME_MAX; s <= now && rc == MANDATE_OK; s++)
        rc = mandate_store_revoke(store, user_mark(pool, tenant, subject, s), NULL,
                                  now + 2 * CODE_LIFETIME_MAX, err);
    if (rc == MANDATE_OK)
        rc = mandate_store_refresh_revoke_subject(store, tenant, subject, refresh_tokens_r, err);
    if (rc == MANDATE_OK)
        rc = mandate_store_revoke_descendants(store, mandate_signin_user_root(pool, tenant,
                                                                              subject),
                                              revocations_r, err);
    if (rc == MANDATE_OK)
        rc = mandate_store_session_delete_subject(store, tenant, subject, sessions_r, err);
    return rc;
}

#define USER_NS "signin-user"
/* seconds a user record may last beyond refresh_lifetime */
#define USER_RECORD_SLACK 86400

static void user_key(mandate_http_request *req, const char *idp, const mandate_identity *id,
                     unsigned char key[32])
{
    /* newlines cannot be in an instance name, and an issuer is a URL: the
     * three parts cannot run into each other */
    mandate_web_hash(mandate_pool_printf(req->pool, "%s\n%s\n%s", idp,
                                         id->issuer ? id->issuer : "",
                                         id->subject ? id->subject : ""),
                     key);
}

void mandate_signin_user_record(mandate_http_request *req, const char *idp,
                                const mandate_identity *id, const char *tenant,
                                const char *subject, mandate_store_write *write_r)
{
    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    unsigned char *key = mandate_pool_alloc(req->pool, 32);
    user_key(req, idp, id, key);
    int64_t now = mandate_clock_now();
    /* The record must outlive the refresh families of this sign-in (a rule
     * that stops admitting the user ends them through it), so it lasts
     * refresh_lifetime past the newest sign-in. It is written with a tenth
     * more (at most USER_RECORD_SLACK), and a user signing in again with the
     * same mapping whose record still lasts refresh_lifetime is not written
     * at all: a write transaction the less for most sign-ins (bench/saml-acs,
     * doc/benchmarks.md). A changed mapping is always written. */
    int64_t slack = cfg->signin.refresh_lifetime / 10;
    if (slack > USER_RECORD_SLACK)
        slack = USER_RECORD_SLACK;
    *write_r = (mandate_store_write){MANDATE_STORE_WRITE_ONCE_SET,
                                     USER_NS,
                                     key,
                                     32,
                                     mandate_pool_printf(req->pool, "%s\n%s", tenant, subject),
                                     now + cfg->signin.refresh_lifetime + slack,
                                     now + cfg->signin.refresh_lifetime,
                                     NULL};
}

void mandate_signin_forget_user(mandate_http_request *req, const char *idp,
                                const mandate_identity *id)
{
    const mandate_instance *store = mandate_runtime_store(req->runtime);
    mandate_error err = {0};
    unsigned char key[32];
    user_key(req, idp, id, key);
    char *value = NULL;
    mandate_rc rc = mandate_store_once_take(store, req->pool, USER_NS, key, sizeof(key),
                                            mandate_clock_now(), &value, &err);
    if (rc == MANDATE_NOT_FOUND)
        return;
    char *subject = rc == MANDATE_OK ? strchr(value, '\n') : NULL;
    if (subject == NULL) {
        log_error("what %s's user was mapped to cannot be read: %s", idp,
                  rc == MANDATE_OK ? "a malformed record" : err.message);
        return;
    }
    *subject++ = '\0';
    const char *tenant = value;
    uint64_t families = 0, tokens = 0, sessions = 0;
    if (mandate_signin_end_user(store, req->pool, tenant, subject, &families, &tokens, &sessions,
                                &err) != MANDATE_OK) {
        log_error("the sign-ins of %s (tenant %s) cannot be ended: %s", subject, tenant,
                  err.message);
        return;
    }
    log_info("%s (tenant %s) is admitted by no rule any more: %llu refresh tokens revoked, "
             "%llu revocations recorded, %llu sessions ended",
             subject, tenant, (unsigned long long)families, (unsigned long long)tokens,
             (unsigned long long)sessions);
    mandate_audit_event("user.disabled",
                        json_pack("{s:s,s:s,s:s,s:o,s:I,s:I,s:I}", "idp", idp, "tenant", tenant,
                                  "sub", subject, "upstream_sub",
                                  mandate_audit_text(id->subject, MANDATE_AUDIT_TEXT_MAX),
                                  "refresh_tokens", (json_int_t)families, "revocations",
                                  (json_int_t)tokens, "sessions", (json_int_t)sessions));
}

#define OTHER_TENANT "the user's tenant is not the client's"

bool mandate_signin_map(mandate_http_request *req, mandate_http_response *resp,
                        mandate_pending *pending, const mandate_client *known,
                        const char *idp_name, const mandate_identity *id, bool from_session,
                        mandate_mapping_result *m_r)
{
    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    mandate_client client;
    if (known != NULL)
        client = *known;
    else if (!mandate_signin_known_client(req, resp, pending->client_id, &client))
        return false;
    const mandate_instance *idp = mandate_runtime_find(req->runtime, MANDATE_BACKEND, idp_name);
    mandate_mapping_request mr = {
        .idp = idp_name,
        .idp_plugin = idp != NULL ? idp->handle->plugin->name : NULL,
        .identity = id,
        .requested_scope = pending->scope,
        .client_scopes = client.scopes,
        .requested_audience = pending->resources,
        .default_lifetime = cfg->token_lifetime,
        .now = mandate_clock_now(),
    };
    mandate_rc rc = mandate_mapping_apply(&cfg->mappings, &mr, req->pool, m_r);
    /* the tenant is a boundary, as at the token exchange: a client signs in
     * only the people its tenant's rules admit (else any client, a client
     * document among them, would get tokens of a fapi2 tenant without that
     * tenant's profile) */
    bool other_tenant = rc == MANDATE_OK && m_r->rule != NULL &&
                        (client.tenant == NULL || m_r->tenant == NULL ||
                         strcmp(client.tenant, m_r->tenant) != 0);
    if (rc == MANDATE_OK && m_r->rule != NULL && !other_tenant)
        return true;
    const char *why = other_tenant ? OTHER_TENANT : m_r->why ? m_r->why : "no rule matched";
    mandate_audit_event("login.refused",
                        json_pack("{s:s,s:s,s:o,s:o}", "client_id", pending->client_id, "idp",
                                  idp_name, "upstream_sub",
                                  mandate_audit_text(id->subject, MANDATE_AUDIT_TEXT_MAX),
                                  "reason", mandate_audit_text(why, MANDATE_AUDIT_TEXT_MAX)));
    log_info("sign-in refused: %s at %s: %s", id->subject ? id->subject : "-", idp_name, why);
    if (m_r->rule == NULL) {
        mandate_signin_forget_user(req, idp_name, id);
        if (pending->prompt_none) {
            /* OpenID Connect Core §3.1.2.6: a silent renewal's frame shows
             * no page; the client hears it */
            mandate_signin_refuse_unattended(req, resp, pending, &client, "access_denied",
                                             "no rule of this broker admits the user", why);
            return false;
        }
        mandate_web_error_page(
            req, resp, 403, "You cannot use this application",
            mandate_pool_printf(req->pool,
                                "You signed in as %s, but no rule of this broker admits you "
                                "for it. Ask your administrator.",
                                id->subject ? id->subject : "an unknown user"));
        return false;
    }
    if (pending->redirect_uri == NULL) {
        /* an IdP-initiated sign-in: no client waits for an error */
        mandate_web_error_page(req, resp, 403, "You cannot use this application",
                               other_tenant
                                   ? "Your account belongs to another organisation than this "
                                     "application. Ask your administrator."
                                   : "No rule of this broker gives you anything you may use it "
                                     "for. Ask your administrator.");
        return false;
    }
    if (pending->prompt_none || from_session) {
        /* nobody acted here (prompt=none, or a session answering a link at
         * once): as the request's own refusals, a page for a client that
         * described itself, never a redirect to the URI it chose */
        mandate_signin_refuse_unattended(
            req, resp, pending, &client, other_tenant ? "access_denied" : "invalid_scope",
            other_tenant ? OTHER_TENANT : "nothing you may grant was asked for", why);
        return false;
    }
    if (other_tenant) {
        mandate_signin_redirect_error(req, resp, pending, "access_denied", OTHER_TENANT,
                                      mandate_pool_printf(req->pool,
                                                          "%s (user's %s, client's %s)",
                                                          OTHER_TENANT, m_r->tenant,
                                                          client.tenant ? client.tenant : "-"));
        return false;
    }
    mandate_signin_redirect_error(req, resp, pending, "invalid_scope",
                                  "nothing you may grant was asked for", m_r->why);
    return false;
}

bool mandate_signin_known_client(mandate_http_request *req, mandate_http_response *resp,
                                 const char *client_id, mandate_client *client_r)
{
    mandate_error err = {0};
    /* the pending sign-in is taken already: this request cannot be served
     * twice, so a document that must be fetched is fetched here */
    mandate_rc rc = mandate_signin_client(req, client_id, false, client_r, &err);
    if (rc == MANDATE_OK)
        return true;
    mandate_web_error_page(req, resp, rc == MANDATE_TEMPFAIL ? 503 : 400,
                           "This application cannot sign you in",
                           "The application that sent you here is not known to the broker "
                           "any more.");
    return false;
}

bool mandate_signin_next(mandate_http_request *req, mandate_http_response *resp,
                         mandate_pending *pending, const mandate_client *client,
                         const mandate_identity *id, const mandate_mapping_result *m,
                         const mandate_session *session, const char *session_value,
                         mandate_signin_step *step_r)
{
    mandate_error err = {0};
    json_t *mapped = json_pack("{s:s,s:s,s:s,s:s?,s:I,s:s,s:I,s:s}", "sub", m->subject,
                               "tenant", m->tenant, "scope", m->scope, "aud", m->audience,
                               "lifetime", (json_int_t)m->lifetime, "idp",
                               /* the upstream IdP (its entityID or issuer), as the
                                * token exchange names it; the instance when it
                                * gave none */
                               id->issuer != NULL && id->issuer[0] != '\0' ? id->issuer
                                                                           : session->idp,
                               "auth_time", (json_int_t)session->authn_at, "rule",
                               m->rule->name);
    char *mapped_text = json_dumps(mapped, JSON_COMPACT);
    json_decref(mapped);
    pending->mapped = mandate_pool_strdup(req->pool, mapped_text);
    free(mapped_text);
    pending->session = hash_hex(req->pool, session_value);
    *step_r = (mandate_signin_step){.client = client,
                                    .session_value = session_value,
                                    .subject = m->subject,
                                    .tenant = m->tenant,
                                    .scope = m->scope,
                                    .audience = m->audience};
    /* remembered consent: this client, these scopes and resources, or wider */
    mandate_consent consent;
    mandate_rc rc = pending->force_consent
                        ? MANDATE_NOT_FOUND
                        : mandate_store_consent_get(mandate_runtime_store(req->runtime),
                                                    req->pool, m->tenant, m->subject,
                                                    client->client_id, mandate_clock_now(),
                                                    &consent, &err);
    step_r->remembered = rc == MANDATE_OK && within(m->scope, consent.scope) &&
                         within(m->audience, consent.resources);
    if (step_r->remembered)
        return true;
    rc = mandate_signin_pending_write(
        req, "consent", pending, mandate_runtime_config(req->runtime)->signin.pending_lifetime,
        &step_r->consent_handle, &step_r->consent_write, &err);
    if (rc == MANDATE_OK)
        return true;
    mandate_signin_redirect_error(req, resp, pending, "temporarily_unavailable",
                                  "the broker cannot keep this sign-in now", err.message);
    return false;
}

void mandate_signin_answer(mandate_http_request *req, mandate_http_response *resp,
                           const mandate_pending *pending, const mandate_signin_step *step)
{
    if (step->remembered) {
        if (!audited(req, resp, pending, "consent.remembered",
                     json_pack("{s:s,s:s,s:s}", "client_id", step->client->client_id, "sub",
                               step->subject, "scope", step->scope)))
            return;
        mandate_signin_issue_code(req, resp, pending);
        return;
    }
    show_consent(req, resp, pending, step->client, step->session_value, step->consent_handle,
                 step->subject, step->tenant, step->scope, step->audience);
}

void mandate_signin_continue(mandate_http_request *req, mandate_http_response *resp,
                             mandate_pending *pending, const mandate_client *known,
                             const mandate_session *session, const char *session_value)
{
    /* the mapping rules, for this request, on the identity the IdP vouched for */
    json_t *id_json = json_loads(session->identity ? session->identity : "{}", 0, NULL);
    mandate_identity id = {
        .issuer = get_str(req->pool, id_json, "issuer"),
        .subject = get_str(req->pool, id_json, "subject"),
        .tenant = get_str(req->pool, id_json, "tenant"),
        .authn_instant = session->authn_at,
    };
    json_t *attrs = json_object_get(id_json, "attributes");
    char *attrs_text = attrs != NULL ? json_dumps(attrs, JSON_COMPACT) : NULL;
    id.attributes = mandate_pool_strdup(req->pool, attrs_text ? attrs_text : "{}");
    free(attrs_text);
    json_decref(id_json);
    mandate_client client;
    if (known != NULL)
        client = *known;
    else if (!mandate_signin_known_client(req, resp, pending->client_id, &client))
        return;
    mandate_mapping_result m;
    mandate_signin_step step;
    if (!mandate_signin_map(req, resp, pending, &client, session->idp, &id, true, &m) ||
        !mandate_signin_next(req, resp, pending, &client, &id, &m, session, session_value,
                             &step))
        return;
    if (!step.remembered && pending->prompt_none) {
        /* OpenID Connect Core §3.1.2.1: no page under prompt=none */
        mandate_signin_refuse_unattended(req, resp, pending, &client, "consent_required",
                                         "the user has not consented to this client", NULL);
        return;
    }
    mandate_error err = {0};
    const mandate_store_write *w = &step.consent_write;
    if (!step.remembered &&
        mandate_store_once_put(mandate_runtime_store(req->runtime), w->ns, w->key, w->key_len,
                               w->value, w->expires_at, &err) != MANDATE_OK) {
        mandate_signin_redirect_error(req, resp, pending, "temporarily_unavailable",
                                      "the broker cannot keep this sign-in now", err.message);
        return;
    }
    mandate_signin_answer(req, resp, pending, &step);
}

/* --- codes ------------------------------------------------------------------ */

void mandate_signin_issue_code(mandate_http_request *req, mandate_http_response *resp,
                               const mandate_pending *pending)
{
    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    mandate_error err = {0};
    const char *code = mandate_web_secret(req->pool);
    const char *family = mandate_web_secret(req->pool);
    if (code == NULL || family == NULL || pending->mapped == NULL) {
        mandate_signin_redirect_error(req, resp, pending, "server_error",
                                      "the broker cannot issue a code now", "no randomness");
        return;
    }
    unsigned char hash[32];
    mandate_web_hash(code, hash);
    json_t *grant = json_loads(pending->mapped, 0, NULL);
    json_object_set_new(grant, "client_id", json_string(pending->client_id));
    /* RFC 9449 §10: redeemed only with a proof of this key */
    if (pending->dpop_jkt != NULL)
        json_object_set_new(grant, "code_dpop_jkt", json_string(pending->dpop_jkt));
    /* the browser session it was issued in: its logout ends what the code gives */
    if (pending->session != NULL)
        json_object_set_new(grant, "session_root",
                            json_string(mandate_signin_session_root(req->pool, pending->session)));
    const char *sub = json_string_value(json_object_get(grant, "sub"));
    sub = mandate_pool_strdup(req->pool, sub != NULL ? sub : "");
    char *grant_text = json_dumps(grant, JSON_COMPACT);
    json_decref(grant);
    int64_t now = mandate_clock_now();
    /* the family is named by a hash, so that the store's lineage never
     * holds a value that could be presented */
    const char *family_id = mandate_pool_printf(req->pool, "fam_%s", family);
    mandate_auth_code c = {
        .code_hash = hash,
        .code_hash_len = sizeof(hash),
        .client_id = pending->client_id,
        .redirect_uri = pending->redirect_uri,
        .code_challenge = pending->code_challenge,
        .family_id = family_id,
        .grant = grant_text,
        .issued_at = now,
        .expires_at = now + cfg->signin.code_lifetime,
    };
    mandate_rc rc = mandate_store_auth_code_put(mandate_runtime_store(req->runtime), &c, &err);
    free(grant_text);
    if (!kept(req, resp, pending, rc, &err, "an authorization code",
              "the broker cannot issue a code now"))
        return;
    if (mandate_audit_event("code.issued",
                            json_pack("{s:s,s:s,s:s,s:s}", "client_id", pending->client_id,
                                      "sub", sub, "family", family_id,
                                      "redirect_uri", pending->redirect_uri)) != MANDATE_OK) {
        mandate_web_error_page(req, resp, 503, "Please try again",
                               "The broker cannot record this sign-in now.");
        return;
    }
    log_info("authorization code issued: client_id=%s sub=%s", pending->client_id, sub);
    const char *pairs[] = {"code", code, pending->state ? "state" : NULL, pending->state, NULL,
                           NULL};
    const char *url = mandate_web_url_with(req->pool, pending->redirect_uri, pairs);
    const char *iss[] = {"iss", cfg->issuer, NULL, NULL};
    mandate_web_redirect(req, resp, mandate_web_url_with(req->pool, url, iss));
}

/* --- refresh tokens --------------------------------------------------------- */

const char *mandate_signin_refresh_issue(mandate_http_request *req, const char *family_id,
                                         const mandate_client *client, const char *tenant,
                                         const char *subject, json_t *grant,
                                         int64_t family_expires_at, mandate_error *err)
{
    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    const char *secret = mandate_web_secret(req->pool);
    if (secret == NULL) {
        mandate_error_set(err, MANDATE_ERROR, "no randomness for a refresh token");
        return NULL;
    }
    const char *token = mandate_pool_printf(req->pool, "%s%s", MANDATE_REFRESH_PREFIX, secret);
    unsigned char hash[32];
    mandate_web_hash(token, hash);
    int64_t now = mandate_clock_now();
    int64_t expires = now + cfg->signin.refresh_idle;
    if (expires > family_expires_at)
        expires = family_expires_at;
    char *text = json_dumps(grant, JSON_COMPACT);
    mandate_refresh_token rt = {
        .token_hash = hash,
        .token_hash_len = sizeof(hash),
        .family_id = family_id,
        .client_id = client->client_id,
        .tenant = tenant,
        .subject = subject,
        .grant = text,
        .status = MANDATE_REFRESH_ACTIVE,
        .issued_at = now,
        .expires_at = expires,
        .family_expires_at = family_expires_at,
    };
    mandate_rc rc =
        mandate_store_refresh_put(mandate_runtime_store(req->runtime), &rt, err);
    free(text);
    return rc == MANDATE_OK ? token : NULL;
}

mandate_rc mandate_signin_end_family(mandate_http_request *req, const char *family_id,
                                     uint64_t *count_r, mandate_error *err)
{
    const mandate_instance *store = mandate_runtime_store(req->runtime);
    /* the family itself marked first: a redemption or a rotation of the
     * same family running at this moment may tie its tokens to the family
     * after revoke_descendants below has looked; it checks this mark once
     * they are tied (mandate_signin_family_ended), so one of the two always
     * sees the other */
    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    mandate_rc rc = mandate_store_revoke(store, family_id, NULL,
                                         mandate_clock_now() + cfg->signin.refresh_lifetime, err);
    if (rc == MANDATE_OK)
        rc = mandate_store_refresh_revoke_family(store, family_id, NULL, err);
    if (rc == MANDATE_OK)
        rc = mandate_store_revoke_descendants(store, family_id, count_r, err);
    return rc;
}

mandate_rc mandate_signin_family_ended(mandate_http_request *req, const char *family_id,
                                       bool *ended_r, mandate_error *err)
{
    return mandate_store_is_revoked(mandate_runtime_store(req->runtime), family_id, ended_r,
                                    err);
}
