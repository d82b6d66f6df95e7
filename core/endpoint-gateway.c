/* GET /gateway/check: the decision for a gateway in front of a tool server.
 * nginx auth_request sends the original URI in X-Original-URI; Envoy's
 * ext_authz (HTTP mode, path_prefix "/gateway/check") appends the original
 * path to ours. 200 with identity headers, 401 with an RFC 6750 challenge
 * (and the RFC 9728 resource_metadata parameter), 403 insufficient_scope,
 * 400 for a path that a tool server could read otherwise than the check
 * (see gateway-path.c). */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "audit-events-private.h"
#include "client-limits-private.h"
#include "dpop-binding-private.h"
#include "endpoints-private.h"
#include "gateway-path-private.h"
#include "log-private.h"
#include "mtls-private.h"
#include "oauth-private.h"
#include "pool-private.h"
#include "refusals-private.h"
#include "text-encoding.h"
#include "validate-private.h"

#define CHECK_PREFIX "/gateway/check"

/* How much of a refused path the log and the audit trail keep: a path is
 * evidence, but one sent to fill the disk must not get there. */
#define PATH_EXCERPT_MAX 128

/* The original request's path, undecoded and with its query, from where the
 * gateway put it: X-Original-URI (nginx: $request_uri), X-Forwarded-Uri
 * (Traefik), or after our own path (Envoy). *path_r is NULL when none is
 * given. false, with *why_r, when they disagree: a client may add one of
 * these headers itself where the gateway sets another (Traefik passes the
 * client's X-Original-URI on), and the check must not judge the client's. */
static bool original_path(mandate_http_request *req, const char **path_r, const char **why_r)
{
    const char *given[3] = {mandate_http_request_header(req, "X-Original-URI"),
                            mandate_http_request_header(req, "X-Forwarded-Uri"), NULL};
    *path_r = NULL;
    if (strncmp(req->path, CHECK_PREFIX "/", sizeof(CHECK_PREFIX)) == 0) {
        /* req->path is decoded: the path Envoy appended is read from the
         * request-target as sent, which must spell our own path plainly */
        const char *raw = req->raw_target;
        if (raw == NULL || strncmp(raw, CHECK_PREFIX "/", sizeof(CHECK_PREFIX)) != 0) {
            *why_r = "the path " CHECK_PREFIX " is itself percent-encoded";
            return false;
        }
        given[2] = raw + strlen(CHECK_PREFIX);
    }
    for (size_t i = 0; i < sizeof(given) / sizeof(given[0]); i++) {
        if (given[i] == NULL)
            continue;
        if (*path_r != NULL && strcmp(*path_r, given[i]) != 0) {
            *why_r = "the original path is given twice, differently (X-Original-URI, "
                     "X-Forwarded-Uri, after " CHECK_PREFIX ")";
            return false;
        }
        *path_r = given[i];
    }
    return true;
}

/* The first PATH_EXCERPT_MAX bytes of a raw path, each byte outside
 * printable ASCII written %XX: short and on one line whatever it held. */
static char *path_excerpt(mandate_pool *pool, const char *raw)
{
    char *out = mandate_pool_alloc(pool, PATH_EXCERPT_MAX * 3 + 1), *o = out;
    for (size_t i = 0; i < PATH_EXCERPT_MAX && raw[i] != '\0'; i++) {
        unsigned char c = (unsigned char)raw[i];
        if (c > 0x20 && c < 0x7f)
            *o++ = (char)c;
        else
            o = mandate_percent_octet(o, c);
    }
    *o = '\0';
    return out;
}

/* The token of "Authorization: Bearer <token>" (RFC 6750 §2.1), or NULL. */
static const char *bearer_token(mandate_http_request *req)
{
    return mandate_authorization_credentials(req, "Bearer");
}

static void challenge(mandate_http_request *req, mandate_http_response *resp, unsigned status,
                      const mandate_target *t, const char *error, const char *scope)
{
    char *value = mandate_pool_strdup(req->pool, "Bearer realm=\"mandate\"");
    if (error != NULL)
        value = mandate_pool_printf(req->pool, "%s, error=\"%s\"", value, error);
    if (scope != NULL)
        value = mandate_pool_printf(req->pool, "%s, scope=\"%s\"", value, scope);
    if (t != NULL && t->resource_metadata != NULL)
        value = mandate_pool_printf(req->pool, "%s, resource_metadata=\"%s\"", value,
                                    t->resource_metadata);
    json_t *body = json_pack("{s:s}", "error", error ? error : "invalid_request");
    if (status == 401 && error == NULL)
        json_object_set_new(body, "error_description", json_string("a bearer token is required"));
    mandate_http_response_json(req, resp, status, body);
    mandate_http_response_header(resp, "WWW-Authenticate", value);
    mandate_http_response_header(resp, "Cache-Control", "no-store");
}

static char *joined(mandate_pool *pool, char **words)
{
    char *out = "";
    for (size_t i = 0; words != NULL && words[i] != NULL; i++)
        out = mandate_pool_printf(pool, "%s%s%s", out, i ? " " : "", words[i]);
    return out;
}

/* The token's actors, the current one first: "B,A" for act B over act A;
 * "" without an actor. */
static const char *actor_chain(mandate_pool *pool, const mandate_grant *g)
{
    if (g->actor == NULL)
        return "";
    const char *out = g->actor, *cur = g->prior_actors, *w;
    size_t n;
    while (mandate_word_list_next(&cur, &w, &n))
        out = mandate_pool_printf(pool, "%s,%.*s", out, (int)n, w);
    return out;
}

/* The audit record of a decision: written before the answer goes, or the
 * answer is 503 (a gateway then refuses the call). t is NULL when the path
 * was refused before any target was chosen; extra (stolen, may be NULL)
 * adds members. */
static bool audited_with(mandate_http_request *req, mandate_http_response *resp,
                         const mandate_target *t, unsigned status,
                         const mandate_token_status *st, const char *token, const char *reason,
                         json_t *extra)
{
    json_t *fields = json_pack("{s:s,s:s,s:i}", "target", t != NULL ? t->name : "-", "result",
                               status == 200 ? "allowed" : "denied", "status", (int)status);
    if (st != NULL && st->parsed && st->grant.jti != NULL) {
        json_object_set_new(fields, "jti", json_string(st->grant.jti));
        if (st->grant.client_id != NULL)
            json_object_set_new(fields, "client_id", json_string(st->grant.client_id));
        if (st->grant.subject != NULL)
            json_object_set_new(fields, "sub", json_string(st->grant.subject));
        if (st->grant.actor != NULL)
            json_object_set_new(fields, "actor_chain",
                                json_string(actor_chain(req->pool, &st->grant)));
    } else if (token != NULL) {
        char ref[9];
        mandate_audit_token_ref(token, strlen(token), ref);
        json_object_set_new(fields, "token_sha256_prefix", json_string(ref));
    }
    if (reason != NULL)
        json_object_set_new(fields, "reason", json_string(reason));
    if (extra != NULL)
        json_object_update_new(fields, extra);
    if (status == 400 || status == 401 || (status == 403 && t == NULL)) {
        /* a check without a valid token, or of a path no target covers:
         * anyone can ask for these, so they spend the address's budget of
         * refusals and identical ones are one record (refusals-private.h) */
        unsigned retry_after;
        switch (mandate_refusal_record(req, "gateway.check", fields, &retry_after)) {
        case MANDATE_REFUSAL_RECORDED: return true;
        case MANDATE_REFUSAL_OVER_BUDGET:
            mandate_refusal_respond_over_budget(req, resp, retry_after);
            return false;
        case MANDATE_REFUSAL_UNRECORDED: break;
        }
    } else if (mandate_audit_event("gateway.check", fields) == MANDATE_OK) {
        return true;
    }
    mandate_http_response_error(req, resp, 503, "temporarily_unavailable", NULL);
    mandate_http_response_header(resp, "Retry-After", "5");
    return false;
}

static bool audited(mandate_http_request *req, mandate_http_response *resp,
                    const mandate_target *t, unsigned status, const mandate_token_status *st,
                    const char *token, const char *reason)
{
    return audited_with(req, resp, t, status, st, token, reason, NULL);
}

/* 400 for a path the check will not judge, audited with why and with as
 * much of the path as PATH_EXCERPT_MAX allows (raw may be NULL). The token
 * is not read: the caller is named by the token's hash prefix only. */
static void refuse_path(mandate_http_request *req, mandate_http_response *resp, const char *raw,
                        const char *why)
{
    json_t *extra = json_object();
    const char *excerpt = "";
    if (raw != NULL) {
        excerpt = path_excerpt(req->pool, raw);
        json_object_set_new(extra, "path", json_string(excerpt));
        json_object_set_new(extra, "path_length", json_integer((json_int_t)strlen(raw)));
    }
    log_info("gateway check: path refused (%s): %zu bytes: %s", why, raw ? strlen(raw) : 0,
             excerpt);
    if (!audited_with(req, resp, NULL, 400, NULL, bearer_token(req), why, extra))
        return;
    mandate_http_response_error(
        req, resp, 400, "invalid_request",
        mandate_pool_printf(req->pool, "the original path is refused: %s", why));
    mandate_http_response_header(resp, "Cache-Control", "no-store");
}

/* RFC 8705 §3: a certificate-bound token only with its certificate, which
 * the gateway forwards (server.client_certificate_header, from a trusted
 * proxy); and the header from anyone else, or one that is not a
 * certificate, with no token at all. false: refused 401 invalid_token,
 * audited. */
static bool certificate_held(mandate_http_request *req, mandate_http_response *resp,
                             const mandate_target *t, const mandate_token_status *st,
                             const char *token)
{
    const mandate_grant *g = &st->grant;
    const mandate_mtls_cert *c;
    const char *why = NULL;
    switch (mandate_mtls_request_cert(req, &c, &why)) {
    case MANDATE_MTLS_NONE:
        if (g->cnf_x5t_s256 != NULL)
            why = "a certificate-bound token without a client certificate";
        break;
    case MANDATE_MTLS_PRESENT:
        if (g->cnf_x5t_s256 != NULL && strcmp(c->x5t_s256, g->cnf_x5t_s256) != 0)
            why = "a certificate-bound token with another client certificate";
        break;
    case MANDATE_MTLS_REFUSED: break;
    }
    if (why == NULL)
        return true;
    log_info("Token validation: token_valid=false, client=%s, target=%s: %s", g->client_id,
             t->name, why);
    if (audited(req, resp, t, 401, st, token, why))
        challenge(req, resp, 401, t, "invalid_token", NULL);
    return false;
}

void mandate_endpoint_gateway_check(mandate_http_request *req, mandate_http_response *resp)
{
    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    const char *raw, *why;
    char *path = NULL;
    if (!original_path(req, &raw, &why)) {
        refuse_path(req, resp, NULL, why);
        return;
    }
    const mandate_target *t = NULL;
    if (raw != NULL &&
        !mandate_gateway_path_target(req->pool, cfg->targets, cfg->target_count, raw,
                                     strlen(raw), &t, &path, &why)) {
        refuse_path(req, resp, raw, why);
        return;
    }
    if (t == NULL) {
        log_info("gateway check: no target covers %.*s", PATH_EXCERPT_MAX,
                 path ? path : "(no original URI)");
        json_t *extra = json_object();
        if (path != NULL)
            json_object_set_new(extra, "path", json_string(path_excerpt(req->pool, path)));
        if (!audited_with(req, resp, NULL, 403, NULL, NULL, "no target covers this path", extra))
            return;
        mandate_http_response_error(req, resp, 403, "access_denied",
                                    "no target covers this path");
        mandate_http_response_header(resp, "Cache-Control", "no-store");
        return;
    }
    const char *token = bearer_token(req);
    /* RFC 9449 §7.1: a DPoP-bound token comes as "DPoP <token>" */
    const char *dpop_token = token == NULL ? mandate_authorization_credentials(req, "DPoP") : NULL;
    if (dpop_token != NULL)
        token = dpop_token;
    if (token == NULL) {
        log_info("gateway check: target=%s: no bearer token", t->name);
        if (audited(req, resp, t, 401, NULL, NULL, "no bearer token"))
            challenge(req, resp, 401, t, NULL, NULL);
        return;
    }
    mandate_token_status st;
    mandate_error err = {0};
    mandate_rc rc = mandate_token_validate(req->runtime, req->pool, token, strlen(token), &st,
                                           &err);
    if (rc == MANDATE_TEMPFAIL || rc == MANDATE_ERROR) {
        log_error("gateway check: target=%s: %s", t->name, err.message);
        mandate_http_response_error(req, resp, 503, "temporarily_unavailable", NULL);
        mandate_http_response_header(resp, "Retry-After", "5");
        return;
    }
    const mandate_grant *g = &st.grant;
    if (rc == MANDATE_OK && !mandate_word_list_has(g->audience, t->audience,
                                                   strlen(t->audience))) {
        rc = MANDATE_INVALID;
        st.reason = "issued for another audience";
    }
    if (rc != MANDATE_OK) {
        log_info("Token validation: token_valid=false, client=%s, target=%s: %s",
                 st.parsed && g->client_id ? g->client_id : "-", t->name, st.reason);
        if (audited(req, resp, t, 401, &st, token, st.reason))
            challenge(req, resp, 401, t, "invalid_token", NULL);
        return;
    }
    if (g->cnf_jkt != NULL || dpop_token != NULL) {
        /* a bound token only with a proof of its key, never as a bearer
         * one; the DPoP scheme only for a bound token */
        const char *unbound = NULL, *error = "invalid_dpop_proof";
        mandate_dpop_outcome out = MANDATE_DPOP_REFUSED;
        if (g->cnf_jkt == NULL)
            unbound = "the token is not DPoP-bound", error = "invalid_token";
        else if (dpop_token == NULL)
            unbound = "a DPoP-bound token presented as a bearer token", error = "invalid_token";
        else
            out = mandate_dpop_gateway_proof(req, t, raw, token, g->cnf_jkt, &unbound);
        if (out == MANDATE_DPOP_TEMPFAIL) {
            mandate_http_response_error(req, resp, 503, "temporarily_unavailable", NULL);
            mandate_http_response_header(resp, "Retry-After", "5");
            return;
        }
        if (out == MANDATE_DPOP_USE_NONCE)
            error = "use_dpop_nonce";
        if (unbound != NULL) {
            log_info("Token validation: token_valid=false, client=%s, target=%s: %s",
                     g->client_id, t->name, unbound);
            if (audited(req, resp, t, 401, &st, token, unbound))
                mandate_dpop_challenge(req, resp, 401, error, unbound);
            return;
        }
    }
    if (!certificate_held(req, resp, t, &st, token))
        return;
    if (t->tenant != NULL && (g->tenant == NULL || strcmp(g->tenant, t->tenant) != 0)) {
        log_info("Token validation: token_valid=true, client=%s, target=%s: tenant %s, not %s",
                 g->client_id, t->name, g->tenant ? g->tenant : "-", t->tenant);
        if (audited(req, resp, t, 403, &st, token,
                    mandate_pool_printf(req->pool, "tenant %s is not the target's (%s)",
                                        g->tenant ? g->tenant : "-", t->tenant))) {
            mandate_http_response_error(req, resp, 403, "access_denied",
                                        "the token belongs to another tenant than the target");
            mandate_http_response_header(resp, "Cache-Control", "no-store");
        }
        return;
    }
    for (char **s = t->scopes; s != NULL && *s != NULL; s++) {
        if (!mandate_word_list_has(g->scope, *s, strlen(*s))) {
            log_info("Token validation: token_valid=true, client=%s, target=%s: lacks scope %s",
                     g->client_id, t->name, *s);
            if (audited(req, resp, t, 403, &st, token,
                        mandate_pool_printf(req->pool, "lacks scope %s", *s)))
                challenge(req, resp, 403, t, "insufficient_scope", joined(req->pool, t->scopes));
            return;
        }
    }
    unsigned retry_after;
    if (!mandate_client_limits_take(req, MANDATE_EP_GATEWAY, g->client_id, NULL, &retry_after)) {
        if (audited(req, resp, t, 429, &st, token, "rate limit"))
            mandate_client_limits_respond(req, resp, retry_after);
        return;
    }
    log_info("Token validation: token_valid=true, client=%s, target=%s", g->client_id, t->name);
    if (!audited(req, resp, t, 200, &st, token, NULL))
        return;
    mandate_http_response_json(req, resp, 200, json_pack("{s:b}", "active", 1));
    mandate_http_response_header(resp, "X-Mandate-Subject", g->subject ? g->subject : "");
    mandate_http_response_header(resp, "X-Mandate-Client", g->client_id);
    mandate_http_response_header(resp, "X-Mandate-Scope", g->scope ? g->scope : "");
    mandate_http_response_header(resp, "X-Mandate-Tenant", g->tenant ? g->tenant : "");
    mandate_http_response_header(resp, "X-Mandate-Target", t->name);
    /* who acts for the subject, the current actor first, then those it
     * acts for (RFC 8693 §4.1's nesting, outermost first); empty when the
     * token has no actor, so that a proxy that copies it always overwrites
     * one sent by the caller */
    mandate_http_response_header(resp, "X-Mandate-Actor-Chain", actor_chain(req->pool, g));
    mandate_http_response_header(resp, "Cache-Control", "no-store");
}
