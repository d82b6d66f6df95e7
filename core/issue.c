/* The issuing floor of POST /oauth2/token: what every grant does once it
 * has decided (start a grant, check the client's rate, mint, refuse,
 * answer), below the grant files and the endpoint that dispatches to them,
 * so that they all depend on it and it on none of them. */
#include "config.h"

#include <string.h>

#include <openssl/rand.h>

#include "audit-events-private.h"
#include "client-limits-private.h"
#include "clock-private.h"
#include "delegation-private.h"
#include "dpop-binding-private.h"
#include "issue-private.h"
#include "jose.h"
#include "log-private.h"
#include "metrics-private.h"
#include "mtls-private.h"
#include "plugins-private.h"
#include "pool-private.h"
#include "profile-private.h"
#include "refusals-private.h"
#include "runtime-private.h"
#include "token-types-private.h"

#define JTI_BYTES 16

void mandate_token_refuse(mandate_http_request *req, mandate_http_response *resp,
                          const mandate_oauth_error *oerr, const char *grant_type,
                          const char *client_id, json_t *extra)
{
    mandate_oauth_refuse(req, resp, "token.refused", oerr, grant_type, client_id, extra);
}

void mandate_oauth_refuse(mandate_http_request *req, mandate_http_response *resp,
                          const char *event, const mandate_oauth_error *oerr,
                          const char *grant_type, const char *client_id, json_t *extra)
{
    if (client_id == NULL)
        client_id = oerr->client_id;
    /* both may come from the request: bounded and printable in the record */
    json_t *fields = json_pack(
        "{s:o,s:s,s:o,s:i}", "grant_type",
        mandate_audit_text(grant_type, MANDATE_AUDIT_TEXT_MAX), "error", oerr->error, "reason",
        mandate_audit_text(oerr->reason ? oerr->reason : oerr->error, MANDATE_AUDIT_TEXT_MAX),
        "status", (int)oerr->status);
    if (client_id != NULL)
        json_object_set_new(fields, "client_id",
                            mandate_audit_text(client_id, MANDATE_AUDIT_TEXT_MAX));
    if (extra != NULL) {
        json_object_update(fields, extra);
        json_decref(extra);
    }
    if (oerr->status >= 500) { /* our failure, not the caller's: no budget */
        mandate_audit_event(event, fields);
        mandate_oauth_respond_error(req, resp, oerr);
        return;
    }
    unsigned retry_after;
    switch (mandate_refusal_record(req, event, fields, &retry_after)) {
    case MANDATE_REFUSAL_RECORDED: mandate_oauth_respond_error(req, resp, oerr); return;
    case MANDATE_REFUSAL_OVER_BUDGET:
        mandate_refusal_respond_over_budget(req, resp, retry_after);
        return;
    case MANDATE_REFUSAL_UNRECORDED: break;
    }
    mandate_oauth_respond_rc(req, resp, MANDATE_TEMPFAIL);
}

/* 128 random bits, base64url; NULL when there is no randomness. */
static const char *new_jti(mandate_pool *pool)
{
    unsigned char raw[JTI_BYTES];
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return NULL;
    char *out = mandate_pool_alloc(pool, mandate_b64url_encoded_len(sizeof(raw)) + 1);
    mandate_b64url_encode(raw, sizeof(raw), out);
    return out;
}

bool mandate_token_grant_start(mandate_http_request *req, mandate_grant *grant,
                               int64_t lifetime, int64_t not_after)
{
    grant->issuer = mandate_runtime_config(req->runtime)->issuer;
    grant->jti = new_jti(req->pool);
    grant->issued_at = mandate_clock_now();
    grant->not_before = grant->issued_at;
    grant->expires_at = grant->issued_at + lifetime;
    if (not_after != 0 && grant->expires_at > not_after)
        grant->expires_at = not_after;
    return grant->jti != NULL;
}

static const mandate_instance *client_format(mandate_http_request *req,
                                             const mandate_client *client)
{
    const char *name = client->token_format && client->token_format[0]
                           ? client->token_format
                           : mandate_runtime_config(req->runtime)->token_format;
    const mandate_instance *in = mandate_runtime_find(req->runtime, MANDATE_FORMAT, name);
    if (in == NULL)
        log_error("client %s: token format '%s' is not enabled", client->client_id, name);
    return in;
}

/* Every refusal of minting grant for client, with the format (*fmt_r) and
 * the grant as it would be bound (*bound_r) when there is none; false:
 * *oerr says why. */
static bool mint_allowed(mandate_http_request *req, const mandate_client *client,
                         const mandate_grant *grant, const mandate_instance **fmt_r,
                         mandate_grant *bound_r, mandate_oauth_error *oerr)
{
    /* RFC 9068 §2.2: an access token names the resource it is for. Every
     * grant sets one (the client's audience, the resource asked for, a
     * mapping rule's, or default_resource); none is a refusal, never a
     * token that any resource server would take. */
    if (grant->audience == NULL || grant->audience[0] == '\0') {
        mandate_oauth_fail(oerr, 400, "invalid_target",
                           "no resource asked, and this client has no audience; the broker "
                           "has no default_resource either");
        return false;
    }
    const mandate_instance *fmt = client_format(req, client);
    if (fmt == NULL) {
        mandate_oauth_fail_rc(oerr, MANDATE_ERROR);
        oerr->reason = "the client's token format is not enabled";
        return false;
    }
    /* a format of before ABI 1.4 would drop the earlier actors and mint a
     * chain that says less than it is */
    if (grant->prior_actors != NULL && !mandate_format_carries_actors(fmt)) {
        log_error("client %s: %s (plugin ABI 1.%u) cannot carry a chain of actors",
                  client->client_id, fmt->conf->name, (unsigned)fmt->handle->plugin->abi_minor);
        mandate_oauth_fail_rc(oerr, MANDATE_ERROR);
        oerr->reason = "the client's token format cannot carry a chain of actors";
        return false;
    }
    /* RFC 9449: bound to the key of the request's proof; a client registered
     * for bound tokens gets none without one */
    mandate_grant bound = *grant;
    if (bound.cnf_jkt == NULL)
        bound.cnf_jkt = req->dpop_jkt;
    if (bound.cnf_jkt == NULL && mandate_dpop_client_bound(client)) {
        mandate_oauth_fail(oerr, 400, "invalid_dpop_proof",
                           "this client's tokens are DPoP-bound: a DPoP proof is required");
        return false;
    }
    /* RFC 8705 §3: and to the client's certificate when it asks for that */
    if (bound.cnf_x5t_s256 == NULL)
        bound.cnf_x5t_s256 = mandate_mtls_binding(req, client);
    /* the profile for regulated tenants (profile-private.h): here, since
     * every grant of every client mints through this */
    if (mandate_profile_issue_refused(req, mandate_runtime_config(req->runtime), client,
                                      bound.cnf_jkt != NULL || bound.cnf_x5t_s256 != NULL,
                                      oerr))
        return false;
    *fmt_r = fmt;
    *bound_r = bound;
    return true;
}

bool mandate_token_may_mint(mandate_http_request *req, mandate_http_response *resp,
                            const mandate_client *client, const mandate_grant *grant,
                            const char *grant_type)
{
    mandate_oauth_error oerr;
    const mandate_instance *fmt;
    mandate_grant bound;
    if (mint_allowed(req, client, grant, &fmt, &bound, &oerr))
        return true;
    mandate_token_refuse(req, resp, &oerr, grant_type, client->client_id, NULL);
    return false;
}

bool mandate_token_mint(mandate_http_request *req, mandate_http_response *resp,
                        const mandate_client *client, mandate_grant *grant,
                        const char *grant_type, json_t *extra, char **token_r,
                        const mandate_instance **fmt_r)
{
    mandate_oauth_error oerr;
    const mandate_instance *fmt;
    mandate_grant bound;
    if (!mint_allowed(req, client, grant, &fmt, &bound, &oerr)) {
        mandate_token_refuse(req, resp, &oerr, grant_type, client->client_id, extra);
        return false;
    }
    /* RFC 8693 §4.4: the actors the delegation policy names for this token */
    if (grant->may_act == NULL)
        grant->may_act =
            mandate_delegation_may_act(&mandate_runtime_config(req->runtime)->delegation,
                                       req->pool, client->attributes, grant);
    bound.may_act = grant->may_act;
    char *token = NULL;
    mandate_error err = {0};
    mandate_rc rc = mandate_format_mint(fmt, req->pool, &bound, &token, &err);
    if (rc != MANDATE_OK) {
        log_error("client %s: %s could not mint: %s", client->client_id, fmt->conf->name,
                  err.message);
        mandate_oauth_fail_rc(&oerr, rc);
        oerr.reason = "the format could not mint";
        mandate_token_refuse(req, resp, &oerr, grant_type, client->client_id, extra);
        return false;
    }
    *token_r = token;
    *fmt_r = fmt;
    return true;
}

void mandate_token_issue(mandate_http_request *req, mandate_http_response *resp,
                         const mandate_client *client, const mandate_grant *grant,
                         const char *grant_type, json_t *extra, const char *issued_token_type)
{
    char *token;
    const mandate_instance *fmt;
    mandate_grant minted = *grant;
    if (!mandate_token_mint(req, resp, client, &minted, grant_type, extra, &token, &fmt))
        return;
    mandate_token_answer(req, resp, client, &minted, token, fmt, grant_type, extra,
                         issued_token_type);
}

void mandate_token_answer(mandate_http_request *req, mandate_http_response *resp,
                          const mandate_client *client, const mandate_grant *grant,
                          const char *token, const mandate_instance *fmt,
                          const char *grant_type, json_t *extra, const char *issued_token_type)
{
    mandate_token_answer_with(req, resp, client, grant, token, fmt, grant_type, extra,
                              issued_token_type, NULL);
}

void mandate_token_answer_with(mandate_http_request *req, mandate_http_response *resp,
                               const mandate_client *client, const mandate_grant *grant,
                               const char *token, const mandate_instance *fmt,
                               const char *grant_type, json_t *extra,
                               const char *issued_token_type, json_t *more)
{
    int64_t expires_in = grant->expires_at - grant->issued_at;
    /* no token leaves before its record is as durable as configured */
    json_t *fields =
        json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I}", "grant_type", grant_type, "jti",
                  grant->jti, "sub", grant->subject, "client_id", grant->client_id, "tenant",
                  grant->tenant ? grant->tenant : "", "scope", grant->scope ? grant->scope : "",
                  "aud", grant->audience ? grant->audience : "", "exp",
                  (json_int_t)grant->expires_at, "expires_in", (json_int_t)expires_in);
    json_object_set_new(fields, "format", json_string(fmt->conf->name));
    if (grant->actor != NULL)
        json_object_set_new(fields, "act", json_string(grant->actor));
    if (grant->prior_actors != NULL)
        json_object_set_new(fields, "prior_actors", json_string(grant->prior_actors));
    if (grant->idp != NULL)
        json_object_set_new(fields, "idp", json_string(grant->idp));
    if (grant->may_act != NULL)
        json_object_set_new(fields, "may_act", json_string(grant->may_act));
    if (grant->origin_client_id != NULL)
        json_object_set_new(fields, "origin_client_id", json_string(grant->origin_client_id));
    bool id_jag =
        issued_token_type != NULL && strcmp(issued_token_type, MANDATE_TOKEN_TYPE_ID_JAG) == 0;
    /* minted bound by mandate_token_mint when the request had a proof */
    const char *jkt = grant->cnf_jkt != NULL ? grant->cnf_jkt : id_jag ? NULL : req->dpop_jkt;
    if (jkt != NULL)
        json_object_set_new(fields, "cnf_jkt", json_string(jkt));
    const char *x5t = grant->cnf_x5t_s256 != NULL ? grant->cnf_x5t_s256
                      : id_jag                    ? NULL
                                                  : mandate_mtls_binding(req, client);
    if (x5t != NULL)
        json_object_set_new(fields, "cnf_x5t_s256", json_string(x5t));
    if (issued_token_type != NULL)
        json_object_set_new(fields, "issued_token_type", json_string(issued_token_type));
    if (extra != NULL) {
        json_object_update(fields, extra);
        json_decref(extra);
    }
    if (mandate_audit_event("token.issued", fields) != MANDATE_OK) {
        json_decref(more);
        mandate_oauth_respond_rc(req, resp, MANDATE_TEMPFAIL);
        return;
    }
    if (!id_jag)
        mandate_metrics_token_issued(fmt->handle->plugin->name);
    /* the workshop's "Token issued: expires_in=3600s" first, then ours */
    log_info("%s issued: expires_in=%llds client_id=%s sub=%s jti=%s scope=[%s] aud=[%s]",
             id_jag ? "ID-JAG" : "Token", (long long)expires_in, client->client_id,
             grant->subject, grant->jti, grant->scope ? grant->scope : "",
             grant->audience ? grant->audience : "");
    /* RFC 8693 §2.2.1: N_A for what is not an access token */
    json_t *rest = json_pack("{s:s,s:I}", "token_type",
                             id_jag ? "N_A" : jkt != NULL ? "DPoP" : "Bearer", "expires_in",
                             (json_int_t)expires_in);
    if (grant->scope != NULL)
        json_object_set_new(rest, "scope", json_string(grant->scope));
    if (issued_token_type != NULL)
        json_object_set_new(rest, "issued_token_type", json_string(issued_token_type));
    if (more != NULL) {
        json_object_update(rest, more);
        json_decref(more);
    }
    mandate_http_response_token_json(req, resp, 200, "access_token", token, rest);
    mandate_http_response_header(resp, "Cache-Control", "no-store");
    mandate_http_response_header(resp, "Pragma", "no-cache");
}

bool mandate_token_within_rate(mandate_http_request *req, mandate_http_response *resp,
                               const mandate_client *client, const char *grant_type)
{
    return mandate_oauth_within_rate(req, resp, "token.refused", client, grant_type);
}

bool mandate_oauth_within_rate(mandate_http_request *req, mandate_http_response *resp,
                               const char *event, const mandate_client *client,
                               const char *grant_type)
{
    /* after authentication: nobody can spend another client's allowance.
     * A client that did not authenticate (a public one: its client_id
     * alone) is named by anyone, so its allowance is counted per address
     * (review s35, finding 1): junk from one address does not hold its
     * users elsewhere, as with its sign-in starts (endpoint-authorize.c) */
    const char *bucket = req->client_auth_method != NULL
                             ? client->client_id
                             : mandate_client_limits_address_key(req, client->client_id);
    unsigned retry_after;
    if (mandate_client_limits_take(req, MANDATE_EP_TOKEN, bucket, client, &retry_after))
        return mandate_dpop_request_claim(req, resp, event, grant_type, client->client_id);
    json_t *fields =
        json_pack("{s:s?,s:s,s:s,s:s,s:i,s:i}", "grant_type", grant_type, "client_id",
                  client->client_id, "error", "too_many_requests", "reason", "rate limit",
                  "status", 429, "retry_after", (int)retry_after);
    if (mandate_audit_event(event, fields) != MANDATE_OK) {
        mandate_oauth_respond_rc(req, resp, MANDATE_TEMPFAIL);
        return false;
    }
    mandate_client_limits_respond(req, resp, retry_after);
    return false;
}
