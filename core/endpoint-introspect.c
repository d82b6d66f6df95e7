/* POST /oauth2/introspect (RFC 7662) and POST /oauth2/revoke (RFC 7009). */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "clock-private.h"
#include "endpoints-private.h"
#include "log-private.h"
#include "oauth-private.h"
#include "audit-events-private.h"
#include "plugins-private.h"
#include "pool-private.h"
#include "profile-private.h"
#include "refusals-private.h"
#include "runtime-private.h"
#include "signin-private.h"
#include "validate-private.h"
#include "web-private.h"

/* The token a record is about: its jti and client when it could be read,
 * else a short hash of it; never the token. */
static void name_token(json_t *fields, const mandate_token_status *st, const char *token)
{
    if (st->parsed && st->grant.jti != NULL) {
        json_object_set_new(fields, "jti", json_string(st->grant.jti));
        if (st->grant.client_id != NULL)
            json_object_set_new(fields, "client_id", json_string(st->grant.client_id));
    } else {
        char ref[9];
        mandate_audit_token_ref(token, strlen(token), ref);
        json_object_set_new(fields, "token_sha256_prefix", json_string(ref));
    }
}

/* The audit record must be written before the answer goes: if it cannot be,
 * the caller answers 503 instead. */
static bool audited(mandate_http_request *req, mandate_http_response *resp, const char *event,
                    json_t *fields)
{
    if (mandate_audit_event(event, fields) == MANDATE_OK)
        return true;
    mandate_oauth_respond_rc(req, resp, MANDATE_TEMPFAIL);
    return false;
}

/* A refusal's record (refusals-private.h): false when the caller must not
 * answer as refused, the answer (429 over the address's budget, 503 when
 * the trail cannot take it) being made already. */
static bool refusal_audited(mandate_http_request *req, mandate_http_response *resp,
                            const char *event, json_t *fields)
{
    unsigned retry_after;
    switch (mandate_refusal_record(req, event, fields, &retry_after)) {
    case MANDATE_REFUSAL_RECORDED: return true;
    case MANDATE_REFUSAL_OVER_BUDGET: mandate_refusal_respond_over_budget(req, resp, retry_after); return false;
    case MANDATE_REFUSAL_UNRECORDED: break;
    }
    mandate_oauth_respond_rc(req, resp, MANDATE_TEMPFAIL);
    return false;
}

/* A token of another tenant than the caller's (or of none) */
static bool of_another_tenant(const char *tenant, const mandate_client *caller)
{
    return tenant == NULL || caller->tenant == NULL || strcmp(tenant, caller->tenant) != 0;
}

/* Both endpoints: a form body from an authenticated client, with `token`.
 * A refusal here is audited as refused_event. */
/* public_ok: a public client (a sign-in's, token_endpoint_auth_method
 * "none") may name itself with client_id alone, as at the token endpoint:
 * RFC 7009 §2.1 lets it revoke its own tokens. Introspection is for
 * confidential callers only. */
static bool read_request(mandate_http_request *req, mandate_http_response *resp,
                         const char *refused_event, bool public_ok, mandate_form *form,
                         mandate_client *caller, const char **token_r)
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
    } else if (public_ok ? mandate_signin_token_client(req, form, caller, &oerr)
                         : mandate_client_authenticate(req, form, caller, &oerr) == MANDATE_OK) {
        /* the profile for regulated tenants: no secret here either */
        const char *why =
            mandate_profile_auth_refusal(req, mandate_runtime_config(req->runtime), caller);
        *token_r = mandate_form_get(form, "token");
        if (why == NULL && *token_r != NULL)
            return true;
        if (why != NULL)
            mandate_oauth_fail(&oerr, 401, "invalid_client", why);
        else
            mandate_oauth_fail(&oerr, 400, "invalid_request", "token is missing");
        oerr.reason = why;
        oerr.client_id = caller->client_id;
    } else if (mandate_http_request_is_set_aside(req)) {
        return false; /* served again once the client's document is fetched */
    }
    json_t *fields = json_pack("{s:s,s:o,s:i}", "error", oerr.error, "reason",
                               mandate_audit_text(oerr.reason, MANDATE_AUDIT_TEXT_MAX), "status", (int)oerr.status);
    if (oerr.client_id != NULL)
        json_object_set_new(fields, "by", mandate_audit_text(oerr.client_id, MANDATE_AUDIT_TEXT_MAX));
    if (oerr.status < 500 && !refusal_audited(req, resp, refused_event, fields))
        return false;
    if (oerr.status >= 500)
        json_decref(fields);
    mandate_oauth_respond_error(req, resp, &oerr);
    return false;
}

static void inactive(mandate_http_request *req, mandate_http_response *resp)
{
    mandate_http_response_json(req, resp, 200, json_pack("{s:b}", "active", 0));
    mandate_http_response_header(resp, "Cache-Control", "no-store");
}

/* A refresh token of a sign-in (RFC 7662 §2.2 token_type_hint aside: its
 * prefix says what it is): active while the store holds it ACTIVE, for a
 * caller of its tenant; its record named by its family, never by itself.
 * false: the store failed, and the answer is given. */
static bool refresh_lookup(mandate_http_request *req, mandate_http_response *resp,
                           const char *token, mandate_refresh_token *rt, bool *found_r)
{
    unsigned char hash[32];
    mandate_error err = {0};
    mandate_web_hash(token, hash);
    mandate_rc rc = mandate_store_refresh_get(mandate_runtime_store(req->runtime), req->pool,
                                              hash, sizeof(hash), mandate_clock_now(), rt, &err);
    if (rc == MANDATE_TEMPFAIL || rc == MANDATE_ERROR) {
        log_error("a refresh token cannot be looked up: %s", err.message);
        mandate_oauth_respond_rc(req, resp, rc);
        return false;
    }
    *found_r = rc == MANDATE_OK;
    return true;
}

/* What a refresh token's answers are given: the one the store holds
 * (NULL: none), for caller. */
typedef void refresh_answer(mandate_http_request *req, mandate_http_response *resp,
                            const mandate_client *caller, const mandate_refresh_token *rt);

static void introspect_refresh(mandate_http_request *req, mandate_http_response *resp,
                               const mandate_client *caller, const mandate_refresh_token *rt)
{
    bool active = rt != NULL && rt->status == MANDATE_REFRESH_ACTIVE &&
                  !of_another_tenant(rt->tenant, caller);
    json_t *fields = json_pack("{s:s,s:b,s:s}", "by", caller->client_id, "active", active,
                               "token_type", "refresh_token");
    if (rt != NULL)
        json_object_set_new(fields, "family", json_string(rt->family_id));
    if (!audited(req, resp, "token.introspected", fields))
        return;
    if (!active) {
        inactive(req, resp);
        return;
    }
    json_t *g = json_loads(rt->grant, 0, NULL);
    json_t *answer =
        json_pack("{s:b,s:s,s:s,s:s,s:s,s:I,s:I}", "active", 1, "token_type", "refresh_token",
                  "client_id", rt->client_id, "sub", rt->subject, "tenant", rt->tenant, "iat",
                  (json_int_t)rt->issued_at, "exp", (json_int_t)rt->expires_at);
    json_t *scope = json_object_get(g, "scope");
    if (json_is_string(scope))
        json_object_set(answer, "scope", scope);
    json_decref(g);
    mandate_http_response_json(req, resp, 200, answer);
    mandate_http_response_header(resp, "Cache-Control", "no-store");
}

/* What revocation answers, done or not (RFC 7009 §2.2): 200, no-store. */
static void answer_revoked(mandate_http_response *resp)
{
    resp->status = 200;
    mandate_http_response_header(resp, "Cache-Control", "no-store");
}

/* A client revokes only the tokens issued to it. */
static void answer_not_owner(mandate_http_request *req, mandate_http_response *resp)
{
    mandate_oauth_error oerr;
    mandate_oauth_fail(&oerr, 400, "unauthorized_client",
                       "the token was not issued to this client");
    mandate_oauth_respond_error(req, resp, &oerr);
}

/* RFC 7009 §2.1: revoking a refresh token ends its grant: the family, and
 * the access tokens issued from it. Only by the client it was issued to;
 * another tenant's is answered as unknown. */
static void revoke_refresh(mandate_http_request *req, mandate_http_response *resp,
                           const mandate_client *caller, const mandate_refresh_token *rt)
{
    if (rt != NULL && of_another_tenant(rt->tenant, caller))
        rt = NULL;
    if (rt != NULL && strcmp(rt->client_id, caller->client_id) != 0) {
        json_t *fields = json_pack("{s:s,s:s,s:s}", "by", caller->client_id, "reason",
                                   "the refresh token was not issued to this client", "family",
                                   rt->family_id);
        if (!refusal_audited(req, resp, "token.revocation_refused", fields))
            return;
        answer_not_owner(req, resp);
        return;
    }
    if (rt != NULL) {
        uint64_t revoked = 0;
        mandate_error err = {0};
        if (mandate_signin_end_family(req, rt->family_id, &revoked, &err) != MANDATE_OK) {
            log_error("revocation of a refresh family: %s", err.message);
            mandate_oauth_respond_rc(req, resp, MANDATE_TEMPFAIL);
            return;
        }
        log_info("refresh family revoked: client_id=%s sub=%s (%llu access tokens)",
                 caller->client_id, rt->subject, (unsigned long long)revoked);
        if (!audited(req, resp, "token.revoked",
                     json_pack("{s:s,s:s,s:s,s:I}", "by", caller->client_id, "family",
                               rt->family_id, "token_type", "refresh_token", "descendants",
                               (json_int_t)revoked)))
            return;
    }
    answer_revoked(resp);
}

/* Both endpoints: the token's status (mandate_token_validate) in *st and
 * *rc_r; false when the broker could not tell (the store or a format
 * failed), the answer (503 or 500) made then, what for the log line. A
 * refresh token is no such token: on_refresh answers for the one the store
 * holds (NULL: none) and validated is false. */
static bool validated(mandate_http_request *req, mandate_http_response *resp, const char *what,
                      const mandate_client *caller, const char *token,
                      refresh_answer *on_refresh, mandate_token_status *st, mandate_rc *rc_r)
{
    if (strncmp(token, MANDATE_REFRESH_PREFIX, strlen(MANDATE_REFRESH_PREFIX)) == 0) {
        mandate_refresh_token rt;
        bool found;
        if (refresh_lookup(req, resp, token, &rt, &found))
            on_refresh(req, resp, caller, found ? &rt : NULL);
        return false;
    }
    mandate_error err = {0};
    *rc_r = mandate_token_validate(req->runtime, req->pool, token, strlen(token), st, &err);
    if (*rc_r != MANDATE_TEMPFAIL && *rc_r != MANDATE_ERROR)
        return true;
    log_error("%s: %s", what, err.message);
    mandate_oauth_respond_rc(req, resp, *rc_r);
    return false;
}

void mandate_endpoint_introspect(mandate_http_request *req, mandate_http_response *resp)
{
    mandate_form form;
    mandate_client caller;
    const char *token;
    if (!read_request(req, resp, "token.introspection_refused", false, &form, &caller, &token))
        return;
    if (!(caller.flags & MANDATE_CLIENT_CAN_INTROSPECT)) {
        log_info("introspection refused: client_id=%s may not introspect", caller.client_id);
        if (!refusal_audited(req, resp, "token.introspection_refused",
                             json_pack("{s:s,s:s}", "by", caller.client_id, "reason",
                                       "the caller may not introspect")))
            return;
        mandate_oauth_error oerr;
        mandate_oauth_fail(&oerr, 403, "unauthorized_client",
                           "this client may not introspect tokens");
        mandate_oauth_respond_error(req, resp, &oerr);
        return;
    }
    mandate_token_status st;
    mandate_rc rc;
    if (!validated(req, resp, "introspection", &caller, token, introspect_refresh, &st, &rc))
        return;
    /* a token of another tenant does not exist for this caller */
    if (rc == MANDATE_OK && of_another_tenant(st.grant.tenant, &caller)) {
        rc = MANDATE_INVALID;
        st.reason = "of another tenant";
    }
    log_info("Token validation: token_valid=%s, client=%s, by=%s%s%s",
             rc == MANDATE_OK ? "true" : "false",
             st.parsed && st.grant.client_id ? st.grant.client_id : "-", caller.client_id,
             rc == MANDATE_OK ? "" : ": ", rc == MANDATE_OK ? "" : st.reason);
    json_t *fields = json_pack("{s:s,s:b}", "by", caller.client_id, "active", rc == MANDATE_OK);
    name_token(fields, &st, token);
    if (rc != MANDATE_OK)
        json_object_set_new(fields, "reason", json_string(st.reason));
    if (!audited(req, resp, "token.introspected", fields))
        return;
    if (rc != MANDATE_OK) {
        inactive(req, resp);
        return;
    }
    mandate_http_response_json(req, resp, 200, mandate_grant_to_introspection(&st.grant));
    mandate_http_response_header(resp, "Cache-Control", "no-store");
}

/* A revocation refused for reason, recorded with the caller and the token:
 * false when the caller must not answer as refused (refusal_audited). */
static bool revocation_refused(mandate_http_request *req, mandate_http_response *resp,
                               const mandate_client *caller, const mandate_token_status *st,
                               const char *token, const char *reason)
{
    json_t *fields = json_pack("{s:s,s:s}", "by", caller->client_id, "reason", reason);
    name_token(fields, st, token);
    return refusal_audited(req, resp, "token.revocation_refused", fields);
}

void mandate_endpoint_revoke(mandate_http_request *req, mandate_http_response *resp)
{
    mandate_form form;
    mandate_client caller;
    const char *token;
    if (!read_request(req, resp, "token.revocation_refused", true, &form, &caller, &token))
        return;
    mandate_token_status st;
    mandate_rc rc;
    if (!validated(req, resp, "revocation", &caller, token, revoke_refresh, &st, &rc))
        return;
    /* RFC 7009 §2.2: an invalid or already dead token is answered 200. A
     * token of another tenant is answered the same, so that no client can
     * learn from this endpoint whether another tenant's token is alive;
     * only the audit trail says what happened. */
    if (st.parsed && of_another_tenant(st.grant.tenant, &caller)) {
        log_info("revocation ignored: client_id=%s presented a token of another tenant",
                 caller.client_id);
        if (!revocation_refused(req, resp, &caller, &st, token,
                                "the token is of another tenant"))
            return;
        answer_revoked(resp);
        return;
    }
    if (st.parsed && st.grant.client_id != NULL &&
        strcmp(st.grant.client_id, caller.client_id) != 0) {
        log_info("revocation refused: client_id=%s does not own token jti=%s", caller.client_id,
                 st.grant.jti ? st.grant.jti : "-");
        if (!revocation_refused(req, resp, &caller, &st, token,
                                "the token was not issued to this client"))
            return;
        answer_not_owner(req, resp);
        return;
    }
    if (st.parsed && st.grant.jti != NULL) {
        mandate_error err = {0};
        const mandate_instance *store = mandate_runtime_store(req->runtime);
        rc = mandate_store_revoke(store, st.grant.jti, st.grant.client_id,
                                  st.grant.expires_at, &err);
        /* and every token handed down from it by exchange, however deep */
        uint64_t descendants = 0;
        if (rc == MANDATE_OK)
            rc = mandate_store_revoke_descendants(store, st.grant.jti, &descendants, &err);
        if (rc != MANDATE_OK) {
            log_error("revocation of jti=%s: %s", st.grant.jti, err.message);
            mandate_oauth_respond_rc(req, resp, rc);
            return;
        }
        log_info("token revoked: jti=%s client_id=%s", st.grant.jti, caller.client_id);
        json_t *fields = json_pack("{s:s,s:I,s:I}", "by", caller.client_id, "exp",
                                   (json_int_t)st.grant.expires_at, "descendants",
                                   (json_int_t)descendants);
        name_token(fields, &st, token);
        if (!audited(req, resp, "token.revoked", fields))
            return;
    }
    answer_revoked(resp);
}
