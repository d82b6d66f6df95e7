/* The grants of people's sign-in at POST /oauth2/token: an authorization
 * code (RFC 6749 §4.1.3, PKCE RFC 7636, RFC 8707 resource) and a refresh
 * token (RFC 6749 §6), rotated on every use with reuse detection (RFC 9700
 * §4.14.2). What both issue belongs to one family: the code's, so that a
 * code redeemed twice or a refresh token used twice ends every token the
 * sign-in produced. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "audit-events-private.h"
#include "clock-private.h"
#include "dpop-binding-private.h"
#include "grants-private.h"
#include "issue-private.h"
#include "jose.h"
#include "log-private.h"
#include "mapping-private.h"
#include "mtls-private.h"
#include "oauth-private.h"
#include "pool-private.h"
#include "runtime-private.h"
#include "signin-private.h"
#include "text-encoding.h"
#include "web-private.h"
#include "word-list.h"

#define GRANT_CODE "authorization_code"
#define GRANT_REFRESH "refresh_token"

/* RFC 7636 §4.1: 43 to 128 unreserved characters */
static bool verifier_valid(const char *v)
{
    size_t len = v != NULL ? strlen(v) : 0;
    if (len < 43 || len > 128)
        return false;
    for (const char *p = v; *p != '\0'; p++)
        if (!mandate_url_unreserved((unsigned char)*p))
            return false;
    return true;
}

static bool pkce_ok(const char *verifier, const char *challenge)
{
    unsigned char md[32];
    unsigned int len = 0;
    if (EVP_Digest(verifier, strlen(verifier), md, &len, EVP_sha256(), NULL) != 1)
        return false;
    char s256[64];
    mandate_b64url_encode(md, len, s256);
    return strcmp(s256, challenge) == 0;
}

/* The resources asked at the token endpoint (RFC 8707 §2.2): within those
 * of the grant, or refused; none asked: the grant's. */
static bool narrowed_audience(mandate_pool *pool, const mandate_form *form, const char *granted,
                              const char **audience_r, const char **missing_r)
{
    const mandate_form_param *resources = mandate_form_find(form, "resource");
    if (resources == NULL || resources->value_count == 0) {
        *audience_r = granted;
        return true;
    }
    char *list = mandate_pool_alloc(pool, 1);
    for (size_t i = 0; i < resources->value_count; i++) {
        const char *r = resources->values[i];
        if (!mandate_word_list_has(granted, r, strlen(r))) {
            *missing_r = r;
            return false;
        }
        list = mandate_pool_printf(pool, "%s%s%s", list, i ? " " : "", r);
    }
    *audience_r = list;
    return true;
}

static const char *json_str(mandate_pool *pool, const json_t *o, const char *name)
{
    const char *v = json_string_value(json_object_get(o, name));
    return v != NULL ? mandate_pool_strdup(pool, v) : NULL;
}

/* scope without the sensitive scopes of the grant's mapping rule when the
 * sign-in is older than the rule's sensitive_max_authn_age, or of unknown
 * age (mapping-private.h): a refresh token must not stretch a fresh login
 * into a month of sensitive tokens. The rule is the one named in the grant,
 * as configured now. */
static const char *fresh_enough(mandate_pool *pool, const mandate_config *cfg, const json_t *g,
                                const char *scope, int64_t now)
{
    const char *name = json_string_value(json_object_get(g, "rule"));
    const mandate_mapping_rule *rule = NULL;
    for (size_t i = 0; name != NULL && i < cfg->mappings.count; i++)
        if (strcmp(cfg->mappings.rules[i].name, name) == 0)
            rule = &cfg->mappings.rules[i];
    if (rule == NULL || rule->sensitive_max_authn_age == 0 || rule->sensitive_scopes == NULL)
        return scope;
    json_t *at = json_object_get(g, "auth_time");
    int64_t auth_time = json_is_integer(at) ? json_integer_value(at) : 0;
    if (auth_time > 0 && now - auth_time <= rule->sensitive_max_authn_age)
        return scope;
    char *kept = mandate_pool_strdup(pool, "");
    const char *cur = scope, *w;
    size_t len;
    while (cur != NULL && mandate_word_list_next(&cur, &w, &len)) {
        bool sensitive = false;
        for (char **s = rule->sensitive_scopes; *s != NULL; s++)
            sensitive |= strlen(*s) == len && memcmp(*s, w, len) == 0;
        if (!sensitive)
            kept = mandate_pool_printf(pool, "%s%s%.*s", kept, *kept ? " " : "", (int)len, w);
    }
    return kept;
}

/* grant started (mandate_token_grant_start) with what the sign-in's grant g
 * says: its IdP, its auth_time, the lifetime of its tokens. false: no
 * randomness. */
static bool signin_grant_start(mandate_http_request *req, const json_t *g, mandate_grant *grant)
{
    grant->idp = json_str(req->pool, g, "idp");
    json_t *auth_time = json_object_get(g, "auth_time");
    grant->auth_time = json_is_integer(auth_time) ? json_integer_value(auth_time) : 0;
    json_t *lifetime = json_object_get(g, "lifetime");
    int64_t life = json_is_integer(lifetime) ? json_integer_value(lifetime)
                                             : mandate_runtime_config(req->runtime)->token_lifetime;
    return mandate_token_grant_start(req, grant, life, 0);
}

/* The access token of a sign-in grant (g: the grant's JSON, family: its
 * family), and a refresh token when the client's grant types allow: minted,
 * tied to the family, audited and answered. */
static void issue(mandate_http_request *req, mandate_http_response *resp,
                  const mandate_client *client, const json_t *g, const char *family_id,
                  const char *scope, const char *audience, int64_t family_expires_at,
                  const char *grant_type, json_t *extra)
{
    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    mandate_oauth_error oerr;
    mandate_error err = {0};
    mandate_grant grant = {
        .subject = json_str(req->pool, g, "sub"),
        .client_id = client->client_id,
        .tenant = json_str(req->pool, g, "tenant"),
        .scope = scope,
        .audience = audience,
    };
    if (grant.subject == NULL || grant.tenant == NULL || !signin_grant_start(req, g, &grant)) {
        mandate_oauth_fail_rc(&oerr, MANDATE_ERROR);
        oerr.reason = "a sign-in grant without its subject, or no randomness";
        mandate_token_refuse(req, resp, &oerr, grant_type, client->client_id, extra);
        return;
    }
    char *token;
    const mandate_instance *fmt;
    if (!mandate_token_mint(req, resp, client, &grant, grant_type, extra, &token, &fmt))
        return;
    /* tied to its family before it leaves: revoking the family reaches it */
    const mandate_instance *store = mandate_runtime_store(req->runtime);
    if (mandate_store_lineage_add(store, grant.jti, family_id, client->client_id,
                                  grant.expires_at, &err) != MANDATE_OK) {
        log_error("token %s cannot be tied to its sign-in: %s", grant.jti, err.message);
        mandate_oauth_fail_rc(&oerr, MANDATE_TEMPFAIL);
        oerr.reason = "the token cannot be tied to its sign-in";
        mandate_token_refuse(req, resp, &oerr, grant_type, client->client_id, extra);
        return;
    }
    json_t *more = NULL;
    if (cfg->signin.refresh_tokens &&
        mandate_signin_client_grants(req->pool, client, GRANT_REFRESH)) {
        json_t *rg = json_deep_copy(g);
        json_object_del(rg, "code_dpop_jkt"); /* the code's, spent */
        /* RFC 9449 §5: a public client's refresh token is bound to the key of
         * its proof, for the family's life (rotation keeps the grant) */
        if (req->dpop_jkt != NULL && mandate_dpop_client_public(client) &&
            json_object_get(rg, "dpop_jkt") == NULL)
            json_object_set_new(rg, "dpop_jkt", json_string(req->dpop_jkt));
        /* RFC 8705 §4: likewise to its certificate when it asks for bound tokens */
        const char *x5t =
            mandate_dpop_client_public(client) ? mandate_mtls_binding(req, client) : NULL;
        if (x5t != NULL && json_object_get(rg, "x5t_s256") == NULL)
            json_object_set_new(rg, "x5t_s256", json_string(x5t));
        json_object_set_new(rg, "scope", json_string(scope));
        json_object_set_new(rg, "aud", audience ? json_string(audience) : json_null());
        const char *refresh = mandate_signin_refresh_issue(req, family_id, client, grant.tenant,
                                                           grant.subject, rg, family_expires_at,
                                                           &err);
        json_decref(rg);
        if (refresh == NULL) {
            log_error("a refresh token cannot be kept: %s", err.message);
            mandate_oauth_fail_rc(&oerr, MANDATE_TEMPFAIL);
            oerr.reason = "the refresh token cannot be kept";
            mandate_token_refuse(req, resp, &oerr, grant_type, client->client_id, extra);
            return;
        }
        more = json_pack("{s:s}", "refresh_token", refresh);
        if (extra == NULL)
            extra = json_object();
        json_object_set_new(extra, "refresh_token_issued", json_true());
    }
    /* a replay of this code (or of the refresh token just rotated) may
     * have ended the family while the tokens above were being tied to it:
     * then they go too, and nothing leaves */
    bool ended = false;
    mandate_rc rc = mandate_signin_family_ended(req, family_id, &ended, &err);
    if (rc != MANDATE_OK || ended) {
        uint64_t revoked = 0;
        mandate_error e2 = {0};
        if (ended)
            mandate_signin_end_family(req, family_id, &revoked, &e2);
        json_decref(more);
        if (rc != MANDATE_OK) {
            log_error("the family of a sign-in cannot be checked: %s", err.message);
            mandate_oauth_fail_rc(&oerr, MANDATE_TEMPFAIL);
            oerr.reason = "the sign-in's family cannot be checked";
        } else {
            mandate_oauth_fail(&oerr, 400, "invalid_grant",
                               "the grant was used twice: its sign-in has ended");
            oerr.reason = "the family ended while its tokens were issued";
        }
        mandate_token_refuse(req, resp, &oerr, grant_type, client->client_id, extra);
        return;
    }
    if (extra == NULL)
        extra = json_object();
    json_object_set_new(extra, "family", json_string(family_id));
    mandate_token_answer_with(req, resp, client, &grant, token, fmt, grant_type, extra, NULL,
                              more);
}

/* The client of a sign-in grant (public by client_id, or authenticated),
 * within its rate, and the hash of the code or refresh token it presents
 * (the form's parameter name, at most max_len bytes). false: refused and
 * answered. */
static bool client_presents(mandate_http_request *req, mandate_http_response *resp,
                            const mandate_form *form, const char *grant_type, const char *name,
                            size_t max_len, mandate_client *client_r, unsigned char hash_r[32])
{
    mandate_oauth_error oerr;
    if (!mandate_signin_token_client(req, form, client_r, &oerr)) {
        if (mandate_http_request_is_set_aside(req))
            return false; /* served again once the client's document is fetched */
        mandate_token_refuse(req, resp, &oerr, grant_type, NULL, NULL);
        return false;
    }
    /* the grant types the client has now, not those it had when the code
     * or the refresh family was issued: an operator who takes refresh_token
     * away (mandatectl client set --grant-type) stops its families */
    if (!mandate_signin_client_grants(req->pool, client_r, grant_type)) {
        mandate_oauth_fail(&oerr, 400, "unauthorized_client",
                           mandate_pool_printf(req->pool,
                                               "grant_type %s is not among the client's",
                                               grant_type));
        log_info("token refused: client_id=%s: grant_type %s no longer the client's",
                 client_r->client_id, grant_type);
        mandate_token_refuse(req, resp, &oerr, grant_type, client_r->client_id, NULL);
        return false;
    }
    if (!mandate_token_within_rate(req, resp, client_r, grant_type))
        return false;
    const char *secret = mandate_form_get(form, name);
    if (secret == NULL || strlen(secret) > max_len) {
        mandate_oauth_fail(&oerr, 400, "invalid_request",
                           mandate_pool_printf(req->pool, "%s is missing", name));
        mandate_token_refuse(req, resp, &oerr, grant_type, client_r->client_id, NULL);
        return false;
    }
    mandate_web_hash(secret, hash_r);
    return true;
}

/* Refuses a code or refresh token the store did not give (rc, err):
 * invalid_grant with unknown when it has none, else the store's failure. */
static void refuse_not_found(mandate_http_request *req, mandate_http_response *resp,
                             const char *grant_type, const char *client_id, mandate_rc rc,
                             const mandate_error *err, const char *unknown)
{
    mandate_oauth_error oerr;
    if (rc == MANDATE_NOT_FOUND)
        mandate_oauth_fail(&oerr, 400, "invalid_grant", unknown);
    else
        mandate_oauth_fail_rc(&oerr, rc);
    oerr.reason = mandate_pool_strdup(req->pool, err->message);
    mandate_token_refuse(req, resp, &oerr, grant_type, client_id, NULL);
}

/* RFC 9449: a code or refresh token bound to a DPoP key (jkt, NULL: not
 * bound) goes only with a proof of that key. false: refused (no_proof or
 * other_key; family, when there is one, in the audit), and answered. */
static bool dpop_key_held(mandate_http_request *req, mandate_http_response *resp,
                          const char *grant_type, const char *client_id, const char *jkt,
                          const char *no_proof, const char *other_key, const char *family)
{
    if (jkt == NULL || mandate_dpop_request_holds(req, jkt))
        return true;
    mandate_oauth_error oerr;
    mandate_oauth_fail(&oerr, 400, "invalid_dpop_proof",
                       req->dpop_jkt == NULL ? no_proof : other_key);
    mandate_token_refuse(req, resp, &oerr, grant_type, client_id,
                         family != NULL ? json_pack("{s:s}", "family", family) : NULL);
    return false;
}

/* RFC 9700 §4.14: a code or refresh token presented again ends its whole
 * family (NULL: shown as ""), the access tokens it gave included, and the
 * alarm event is recorded with fields and "revoked"; then it is refused
 * invalid_grant (description to the client, reason to the audit). The
 * family is ended whether or not the alarm is written: the refusal stands,
 * the lost record said in the log. How many tokens were revoked. */
static uint64_t refuse_replayed(mandate_http_request *req, mandate_http_response *resp,
                                const char *grant_type, const char *client_id,
                                const char *family, const char *event, json_t *fields,
                                const char *description, const char *reason)
{
    uint64_t revoked = 0;
    mandate_error err = {0};
    mandate_signin_end_family(req, family, &revoked, &err);
    json_object_set_new(fields, "revoked", json_integer((json_int_t)revoked));
    if (mandate_audit_event(event, fields) != MANDATE_OK)
        log_error("%s cannot be recorded (client %s, family %s)", event, client_id,
                  family != NULL ? family : "");
    mandate_oauth_error oerr;
    mandate_oauth_fail(&oerr, 400, "invalid_grant", description);
    oerr.reason = reason;
    mandate_token_refuse(req, resp, &oerr, grant_type, client_id, NULL);
    return revoked;
}

void mandate_grant_authorization_code(mandate_http_request *req, mandate_http_response *resp,
                                      const mandate_form *form)
{
    static const char grant_type[] = GRANT_CODE;
    mandate_oauth_error oerr;
    mandate_error err = {0};
    mandate_client client;
    unsigned char hash[32];
    if (!client_presents(req, resp, form, grant_type, "code", 128, &client, hash))
        return;
    const char *verifier = mandate_form_get(form, "code_verifier");
    const char *redirect_uri = mandate_form_get(form, "redirect_uri");
    if (verifier == NULL) {
        mandate_oauth_fail(&oerr, 400, "invalid_request", "code_verifier is missing (PKCE)");
        mandate_token_refuse(req, resp, &oerr, grant_type, client.client_id, NULL);
        return;
    }
    mandate_auth_code c;
    const mandate_instance *store = mandate_runtime_store(req->runtime);
    mandate_rc rc = mandate_store_auth_code_take(store, req->pool, hash, sizeof(hash),
                                                 mandate_clock_now(), &c, &err);
    if (rc == MANDATE_EXISTS) {
        /* redeemed before: whoever has it now, every token issued from the
         * first redemption ends (RFC 9700 §4.14 / RFC 6749 §4.1.2) */
        uint64_t revoked = refuse_replayed(
            req, resp, grant_type, client.client_id, c.family_id, "code.replayed",
            json_pack("{s:s,s:s}", "client_id", client.client_id, "family",
                      c.family_id ? c.family_id : ""),
            "the code was used already", "code replayed: its tokens revoked");
        log_warning("authorization code used twice (client %s): its family ended, %llu tokens "
                    "revoked",
                    client.client_id, (unsigned long long)revoked);
        return;
    }
    if (rc != MANDATE_OK) {
        refuse_not_found(req, resp, grant_type, client.client_id, rc, &err,
                         "the code is unknown or expired");
        return;
    }
    const char *why = NULL;
    if (strcmp(c.client_id, client.client_id) != 0)
        why = "the code was issued to another client";
    else if (redirect_uri == NULL || strcmp(redirect_uri, c.redirect_uri) != 0)
        why = "redirect_uri is not the one of the authorization request";
    else if (!verifier_valid(verifier) || !pkce_ok(verifier, c.code_challenge))
        why = "code_verifier does not match the code_challenge";
    if (why != NULL) {
        /* a code presented wrongly is spent all the same: it cannot be
         * tried again with another verifier */
        mandate_oauth_fail(&oerr, 400, "invalid_grant", why);
        mandate_token_refuse(req, resp, &oerr, grant_type, client.client_id,
                             json_pack("{s:s}", "family", c.family_id));
        return;
    }
    json_t *g = json_loads(c.grant, 0, NULL);
    /* RFC 9449 §10: a code bound at the authorization request (dpop_jkt, or
     * the proof of its pushed request) goes only with a proof of that key */
    if (!dpop_key_held(req, resp, grant_type, client.client_id,
                       json_str(req->pool, g, "code_dpop_jkt"),
                       "the code is bound to a DPoP key (dpop_jkt): a DPoP proof of that key "
                       "is required",
                       "the DPoP proof is by another key than the code's dpop_jkt",
                       c.family_id)) {
        json_decref(g);
        return;
    }
    const char *granted_aud = json_str(req->pool, g, "aud");
    const char *audience, *missing = NULL;
    if (!narrowed_audience(req->pool, form, granted_aud, &audience, &missing)) {
        json_decref(g);
        mandate_oauth_fail(&oerr, 400, "invalid_target",
                           mandate_pool_printf(req->pool,
                                               "resource %s was not granted by the user",
                                               missing));
        mandate_token_refuse(req, resp, &oerr, grant_type, client.client_id, NULL);
        return;
    }
    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    int64_t family_expires_at = mandate_clock_now() + cfg->signin.refresh_lifetime;
    /* the family below its user, so that ending the user reaches its
     * tokens, and below the browser session the code was issued in, so
     * that its logout does; a logout before now has marked the session */
    const char *tenant = json_str(req->pool, g, "tenant"), *sub = json_str(req->pool, g, "sub");
    const char *session_root = json_str(req->pool, g, "session_root");
    const char *tied_to = "its user";
    bool session_ended = false;
    mandate_error lerr = {0};
    mandate_rc lrc = tenant != NULL && sub != NULL
                         ? mandate_store_lineage_add(
                               store, c.family_id,
                               mandate_signin_user_root(req->pool, tenant, sub),
                               client.client_id, family_expires_at, &lerr)
                         : MANDATE_OK;
    /* a user revoked since the code was issued (mandate_signin_end_user) */
    bool user_ended = false;
    if ((lrc == MANDATE_OK || lrc == MANDATE_EXISTS) && tenant != NULL && sub != NULL)
        lrc = mandate_signin_user_ended(store, req->pool, tenant, sub, c.issued_at, &user_ended,
                                        &lerr);
    if ((lrc == MANDATE_OK || lrc == MANDATE_EXISTS) && session_root != NULL) {
        tied_to = "its browser session";
        lrc = mandate_store_lineage_add(store, c.family_id, session_root, client.client_id,
                                        family_expires_at, &lerr);
        if (lrc == MANDATE_OK || lrc == MANDATE_EXISTS)
            lrc = mandate_store_is_revoked(store, session_root, &session_ended, &lerr);
    }
    if (lrc != MANDATE_OK && lrc != MANDATE_EXISTS) {
        json_decref(g);
        log_error("a sign-in cannot be tied to %s: %s", tied_to, lerr.message);
        mandate_oauth_fail_rc(&oerr, MANDATE_TEMPFAIL);
        oerr.reason = mandate_pool_printf(req->pool, "the sign-in cannot be tied to %s", tied_to);
        mandate_token_refuse(req, resp, &oerr, grant_type, client.client_id, NULL);
        return;
    }
    if (session_ended || user_ended) {
        json_decref(g);
        uint64_t revoked = 0;
        mandate_error e2 = {0};
        mandate_signin_end_family(req, c.family_id, &revoked, &e2);
        mandate_oauth_fail(&oerr, 400, "invalid_grant",
                           user_ended ? "the user's sign-ins were revoked"
                                      : "the user signed out of the browser session the code "
                                        "was issued in");
        oerr.reason = user_ended ? "the user was revoked after the code was issued"
                                 : "the code's browser session was logged out";
        mandate_token_refuse(req, resp, &oerr, grant_type, client.client_id,
                             json_pack("{s:s}", "family", c.family_id));
        return;
    }
    /* nothing is issued yet: unrecorded, the redemption does not happen
     * (the code is spent, as by any refusal after it is taken) */
    if (mandate_audit_event("code.redeemed", json_pack("{s:s,s:s}", "client_id",
                                                       client.client_id, "family",
                                                       c.family_id)) != MANDATE_OK) {
        json_decref(g);
        mandate_oauth_fail_rc(&oerr, MANDATE_TEMPFAIL);
        oerr.reason = "code.redeemed cannot be recorded";
        mandate_token_refuse(req, resp, &oerr, grant_type, client.client_id,
                             json_pack("{s:s}", "family", c.family_id));
        return;
    }
    issue(req, resp, &client, g, c.family_id, json_str(req->pool, g, "scope"), audience,
          family_expires_at, grant_type, NULL);
    json_decref(g);
}

void mandate_grant_refresh_token(mandate_http_request *req, mandate_http_response *resp,
                                 const mandate_form *form)
{
    static const char grant_type[] = GRANT_REFRESH;
    mandate_oauth_error oerr;
    mandate_error err = {0};
    mandate_client client;
    unsigned char hash[32];
    if (!client_presents(req, resp, form, grant_type, "refresh_token", 256, &client, hash))
        return;
    const mandate_instance *store = mandate_runtime_store(req->runtime);
    int64_t now = mandate_clock_now();
    mandate_refresh_token old;
    mandate_rc rc = mandate_store_refresh_get(store, req->pool, hash, sizeof(hash), now, &old,
                                              &err);
    if (rc == MANDATE_OK && strcmp(old.client_id, client.client_id) != 0) {
        /* RFC 6749 §6: bound to the client it was issued to; not a reuse */
        mandate_oauth_fail(&oerr, 400, "invalid_grant",
                           "the refresh token was issued to another client");
        mandate_token_refuse(req, resp, &oerr, grant_type, client.client_id, NULL);
        return;
    }
    if (rc != MANDATE_OK) {
        refuse_not_found(req, resp, grant_type, client.client_id, rc, &err,
                         "the refresh token is unknown or expired");
        return;
    }
    json_t *g = json_loads(old.grant, 0, NULL);
    /* before the rotation: a thief's try spends nothing of the owner's */
    if (!dpop_key_held(req, resp, grant_type, client.client_id,
                       json_str(req->pool, g, "dpop_jkt"),
                       "the refresh token is DPoP-bound: a DPoP proof is required",
                       "the DPoP proof is by another key than the refresh token's", NULL)) {
        json_decref(g);
        return;
    }
    const char *bound_x5t = json_str(req->pool, g, "x5t_s256");
    if (bound_x5t != NULL && !mandate_mtls_request_holds(req, bound_x5t)) {
        json_decref(g);
        mandate_oauth_fail(&oerr, 400, "invalid_grant",
                           "the refresh token is certificate-bound: present that client "
                           "certificate");
        mandate_token_refuse(req, resp, &oerr, grant_type, client.client_id, NULL);
        return;
    }
    const char *granted_scope = json_str(req->pool, g, "scope");
    const char *granted_aud = json_str(req->pool, g, "aud");
    const char *scope = mandate_form_get(form, "scope");
    size_t len;
    const char *beyond = scope != NULL ? mandate_word_list_missing(scope, granted_scope, &len)
                                       : NULL;
    const char *audience, *missing = NULL;
    if (beyond != NULL || !narrowed_audience(req->pool, form, granted_aud, &audience, &missing)) {
        json_decref(g);
        if (beyond != NULL)
            mandate_oauth_fail(&oerr, 400, "invalid_scope",
                               mandate_pool_printf(req->pool, "scope %.*s was not granted",
                                                   (int)len, beyond));
        else
            mandate_oauth_fail(&oerr, 400, "invalid_target",
                               mandate_pool_printf(req->pool, "resource %s was not granted",
                                                   missing));
        mandate_token_refuse(req, resp, &oerr, grant_type, client.client_id, NULL);
        return;
    }
    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    const char *eff_scope = fresh_enough(req->pool, cfg, g, scope != NULL ? scope : granted_scope,
                                         now);
    if (eff_scope == NULL || *eff_scope == '\0') {
        json_decref(g);
        mandate_oauth_fail(&oerr, 400, "invalid_grant",
                           "the sign-in is too old for the scopes asked: sign in again");
        oerr.reason = "only sensitive scopes asked, past the rule's sensitive_max_authn_age";
        mandate_token_refuse(req, resp, &oerr, grant_type, client.client_id, NULL);
        return;
    }
    /* the access token's grant, and every refusal of its minting (a
     * DPoP-bound client without a proof, the profile...) before the
     * rotation: a refusal then spends nothing, and the client's retry with
     * the same refresh token is not taken for a reuse */
    mandate_grant grant = {
        .subject = old.subject,
        .client_id = client.client_id,
        .tenant = old.tenant,
        .scope = eff_scope,
        .audience = audience,
    };
    bool started = signin_grant_start(req, g, &grant);
    json_decref(g);
    if (!started) {
        mandate_oauth_fail_rc(&oerr, MANDATE_ERROR);
        mandate_token_refuse(req, resp, &oerr, grant_type, client.client_id, NULL);
        return;
    }
    if (!mandate_token_may_mint(req, resp, &client, &grant, grant_type))
        return;
    /* the next token of the family, then the rotation: atomic in the store */
    const char *next_secret = mandate_web_secret(req->pool);
    const char *next = next_secret
                           ? mandate_pool_printf(req->pool, "%s%s", MANDATE_REFRESH_PREFIX,
                                                 next_secret)
                           : NULL;
    unsigned char next_hash[32];
    if (next != NULL)
        mandate_web_hash(next, next_hash);
    int64_t expires = now + cfg->signin.refresh_idle;
    if (expires > old.family_expires_at)
        expires = old.family_expires_at;
    mandate_refresh_token n = old;
    n.token_hash = next_hash;
    n.token_hash_len = sizeof(next_hash);
    n.status = MANDATE_REFRESH_ACTIVE;
    n.issued_at = now;
    n.expires_at = expires;
    mandate_refresh_token rotated;
    rc = next != NULL ? mandate_store_refresh_rotate(store, req->pool, hash, sizeof(hash), now,
                                                     &n, &rotated, &err)
                      : mandate_error_set(&err, MANDATE_ERROR, "no randomness");
    if (rc == MANDATE_DENIED) {
        /* used before (or its family ended): RFC 9700 §4.14.2, the whole
         * family ends, the access tokens it gave included */
        refuse_replayed(req, resp, grant_type, client.client_id, old.family_id, "refresh.reused",
                        json_pack("{s:s,s:s,s:s}", "client_id", client.client_id, "sub",
                                  old.subject, "family", old.family_id),
                        "the refresh token was used already",
                        "refresh token reused: its family revoked");
        log_warning("refresh token used twice (client %s, user %s): its family ended",
                    client.client_id, old.subject);
        return;
    }
    if (rc != MANDATE_OK) {
        refuse_not_found(req, resp, grant_type, client.client_id, rc, &err,
                         "the refresh token is unknown or expired");
        return;
    }
    /* the rotation is done: failing now would spend the refresh token and
     * make the client's retry a reuse that ends the family. Nothing leaves
     * unrecorded all the same: token.issued, which gates the answer, names
     * the family and the new refresh token */
    if (mandate_audit_event("refresh.rotated", json_pack("{s:s,s:s,s:s}", "client_id",
                                                         client.client_id, "sub", old.subject,
                                                         "family", old.family_id)) != MANDATE_OK)
        log_error("refresh.rotated cannot be recorded (client %s, family %s)", client.client_id,
                  old.family_id);
    /* the access token; the refresh token to answer is the one just stored */
    mandate_oauth_error oerr2;
    char *access;
    const mandate_instance *fmt;
    if (!mandate_token_mint(req, resp, &client, &grant, grant_type, NULL, &access, &fmt))
        return;
    if (mandate_store_lineage_add(store, grant.jti, old.family_id, client.client_id,
                                  grant.expires_at, &err) != MANDATE_OK) {
        mandate_oauth_fail_rc(&oerr2, MANDATE_TEMPFAIL);
        oerr2.reason = "the token cannot be tied to its sign-in";
        mandate_token_refuse(req, resp, &oerr2, grant_type, client.client_id, NULL);
        return;
    }
    /* a family ended by a revocation mark (a logout of the browser session
     * it came from, an ended user: mandate_signin_end_session_grants,
     * mandate_signin_end_user) rather than by its tokens' status: looked at
     * once the new token is tied, so that an end running now sees the
     * token or this sees the end */
    bool ended = false;
    rc = mandate_signin_family_ended(req, old.family_id, &ended, &err);
    if (rc != MANDATE_OK || ended) {
        uint64_t revoked = 0;
        mandate_error e2 = {0};
        if (ended)
            mandate_signin_end_family(req, old.family_id, &revoked, &e2);
        if (rc != MANDATE_OK)
            mandate_oauth_fail_rc(&oerr2, MANDATE_TEMPFAIL);
        else
            mandate_oauth_fail(&oerr2, 400, "invalid_grant",
                               "the sign-in this refresh token came from has ended");
        oerr2.reason = rc != MANDATE_OK ? "the sign-in's family cannot be checked"
                                        : "the refresh token's family was ended";
        mandate_token_refuse(req, resp, &oerr2, grant_type, client.client_id,
                             json_pack("{s:s}", "family", old.family_id));
        return;
    }
    mandate_token_answer_with(req, resp, &client, &grant, access, fmt, grant_type,
                              json_pack("{s:s,s:b}", "family", old.family_id,
                                        "refresh_token_issued", 1),
                              NULL, json_pack("{s:s}", "refresh_token", next));
}
