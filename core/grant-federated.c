/* The grants that turn someone else's identity into an agent token:
 * RFC 8693 token exchange (the acting agent presents the advisor's SAML
 * assertion, or one of our own access tokens to narrow it or hand it down a
 * chain of agents), an upstream id_token or JWT, the RFC 7522 SAML 2.0 bearer
 * grant and the RFC 7523 JWT bearer grant (ID-JAGs: grant-id-jag.c). The agent always
 * authenticates as a client; the token names both: sub the mapped subject,
 * act.sub the agent. */
#include "config.h"

#include <string.h>

#include "cnf-binding-private.h"
#include "delegation-private.h"
#include "federation-private.h"
#include "grants-private.h"
#include "issue-private.h"
#include "log-private.h"
#include "mapping-private.h"
#include "pool-private.h"
#include "runtime-private.h"
#include "signin-private.h"
#include "token-types-private.h"
#include "validate-private.h"

/* resource (RFC 8707) and audience (RFC 8693) values, space-separated;
 * NULL when neither is given. */
static const char *requested_audience(mandate_pool *pool, const mandate_form *form)
{
    const char *out = NULL;
    static const char *const names[] = {"resource", "audience"};
    for (size_t n = 0; n < 2; n++) {
        const mandate_form_param *p = mandate_form_find(form, names[n]);
        for (size_t i = 0; p != NULL && i < p->value_count; i++)
            out = out ? mandate_pool_printf(pool, "%s %s", out, p->values[i])
                      : mandate_pool_strdup(pool, p->values[i]);
    }
    return out;
}

/* A SAML assertion or an upstream JWT (id_token, access token) through a
 * backend and the mapping rules, for an access token of ours. */
static void federated(mandate_http_request *req, mandate_http_response *resp,
                      const mandate_form *form, const mandate_client *client,
                      const char *grant_type, const char *token_type, const char *assertion,
                      const char *issued_token_type)
{
    mandate_federated fed;
    if (!mandate_federated_map(req, resp, form, client, grant_type, token_type, assertion,
                               requested_audience(req->pool, form), &fed))
        return;
    const mandate_mapping_result *m = &fed.mapped;
    mandate_grant g = {0};
    g.subject = m->subject;
    g.client_id = client->client_id;
    g.actor = client->client_id;
    g.tenant = m->tenant;
    g.scope = m->scope;
    g.audience = m->audience;
    g.idp = fed.id.issuer;
    mandate_cnf_carry(&fed.cnf, &g);
    if (!mandate_token_grant_start(req, &g, m->lifetime, 0)) {
        mandate_oauth_error oerr;
        mandate_oauth_fail_rc(&oerr, MANDATE_ERROR);
        mandate_token_refuse(req, resp, &oerr, grant_type, client->client_id,
                             mandate_federated_fields(token_type, fed.backend, &fed.id, m));
        return;
    }
    log_info("token exchange: client_id=%s acts for %s (idp %s, rule %s)", client->client_id,
             g.subject, fed.backend->conf->name, m->rule->name);
    mandate_token_issue(req, resp, client, &g, grant_type,
                        mandate_federated_fields(token_type, fed.backend, &fed.id, m),
                        issued_token_type);
}

/* The OAuth error for a delegation refused: clear to the client, without
 * naming rules or other clients (the log and the audit trail have why). */
static void delegation_refused(mandate_pool *pool, const mandate_delegation_result *d,
                               mandate_oauth_error *oerr)
{
    const char *error = "invalid_grant", *description;
    switch (d->verdict) {
    case MANDATE_DELEGATION_NOT_ALLOWED:
        description = "this client may not act for the subject_token's client";
        break;
    case MANDATE_DELEGATION_TOO_DEEP:
        description = "the subject_token's chain of actors is as long as allowed";
        break;
    case MANDATE_DELEGATION_CYCLE:
        description = "this client is already in the subject_token's chain of actors";
        break;
    case MANDATE_DELEGATION_SCOPE:
        error = "invalid_scope";
        description = mandate_pool_printf(
            pool, "scope %s is beyond the subject_token's or this client's", d->word);
        break;
    default:
        error = "invalid_target";
        description = mandate_pool_printf(
            pool, "resource %s is beyond what this client may have for the subject_token",
            d->word);
        break;
    }
    mandate_oauth_fail(oerr, 400, error, description);
    oerr->reason = d->why;
}

/* One of our own access tokens, narrowed or handed down: the subject stays,
 * the acting client becomes the actor (the token's actors nested below it),
 * nothing grows, and another client's token only where a delegation rule
 * allows it (mandate_delegation_decide). */
static void own_token(mandate_http_request *req, mandate_http_response *resp,
                      const mandate_form *form, const mandate_client *client,
                      const char *subject_token)
{
    static const char grant_type[] = MANDATE_GRANT_TOKEN_EXCHANGE_URI;
    mandate_oauth_error oerr;
    mandate_token_status st;
    mandate_error err = {0};
    mandate_rc rc = mandate_token_validate(req->runtime, req->pool, subject_token,
                                           strlen(subject_token), &st, &err);
    json_t *fields = json_pack("{s:s}", "subject_token_type", MANDATE_TOKEN_TYPE_ACCESS);
    if (st.parsed && st.grant.jti != NULL)
        json_object_set_new(fields, "subject_jti", json_string(st.grant.jti));
    if (rc == MANDATE_TEMPFAIL || rc == MANDATE_ERROR) {
        log_error("token exchange: %s", err.message);
        mandate_oauth_fail_rc(&oerr, rc);
        mandate_token_refuse(req, resp, &oerr, grant_type, client->client_id, fields);
        return;
    }
    const mandate_grant *o = &st.grant;
    const mandate_cnf bound = {.jkt = o->cnf_jkt, .x5t_s256 = o->cnf_x5t_s256};
    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    mandate_delegation_result d = {0};
    if (rc != MANDATE_OK) {
        mandate_oauth_fail(&oerr, 400, "invalid_grant", "the subject_token is not active");
        oerr.reason = st.reason;
    } else if (!mandate_cnf_held(req, &bound, "subject_token", &oerr)) {
        /* a bound token is not laundered into a bearer one (nor rebound to
         * another key): exchanged only by the holder of its key or
         * certificate (RFC 9449 §6, RFC 8705 §3) */
        mandate_cnf_audit(req, &bound, fields);
        rc = MANDATE_DENIED;
    } else if (o->tenant == NULL || client->tenant == NULL ||
               strcmp(o->tenant, client->tenant) != 0) {
        mandate_oauth_fail(&oerr, 400, "invalid_grant",
                           "the subject_token belongs to another tenant");
        rc = MANDATE_DENIED;
    } else {
        json_object_set_new(fields, "subject_client_id", json_string(o->client_id));
        if (o->actor != NULL)
            json_object_set_new(fields, "subject_actor", json_string(o->actor));
        const mandate_delegation_request dr = {
            .actor = client->client_id,
            .actor_scopes = client->scopes,
            .actor_audiences = client->audiences,
            .token = o,
            .requested_scope = mandate_form_get(form, "scope"),
            .requested_audience = requested_audience(req->pool, form),
        };
        mandate_delegation_decide(&cfg->delegation, &dr, req->pool, &d);
        json_object_set_new(fields, "delegation",
                            json_string(mandate_delegation_verdict_name(d.verdict)));
        if (d.rule != NULL)
            json_object_set_new(fields, "delegation_rule", json_string(d.rule->name));
        else if (d.by_may_act)
            json_object_set_new(fields, "delegation_rule", json_string("may_act"));
        if (d.verdict != MANDATE_DELEGATION_ADMITTED) {
            log_info("token exchange refused: client_id=%s subject_client_id=%s: %s",
                     client->client_id, o->client_id, d.why);
            delegation_refused(req->pool, &d, &oerr);
            rc = MANDATE_DENIED;
        }
    }
    if (rc != MANDATE_OK) {
        mandate_token_refuse(req, resp, &oerr, grant_type, client->client_id, fields);
        return;
    }
    mandate_grant g = {0};
    g.subject = o->subject;
    g.client_id = client->client_id;
    g.actor = d.actor;
    g.prior_actors = d.prior_actors;
    g.origin_client_id = d.origin_client_id;
    g.tenant = o->tenant;
    g.scope = d.scope;
    g.audience = d.audience;
    g.idp = o->idp;
    mandate_cnf_carry(&bound, &g);
    /* never past the subject_token's expiry */
    if (!mandate_token_grant_start(req, &g, mandate_policy_lifetime(cfg, client),
                                   o->expires_at)) {
        mandate_oauth_fail_rc(&oerr, MANDATE_ERROR);
        mandate_token_refuse(req, resp, &oerr, grant_type, client->client_id, fields);
        return;
    }
    log_info("token exchange: client_id=%s takes over a token of %s for %s (%s)",
             client->client_id, o->client_id, g.subject, d.why);
    char *token;
    const mandate_instance *fmt;
    if (!mandate_token_mint(req, resp, client, &g, grant_type, fields, &token, &fmt))
        return;
    /* tied to its parent before it leaves, so that revoking the parent (or
     * anything above it, its client included) reaches it */
    if (!mandate_delegation_link(mandate_runtime_store(req->runtime), req->pool, o, &g, &err)) {
        log_error("token %s cannot be tied to its parent %s: %s", g.jti, o->jti, err.message);
        mandate_oauth_fail_rc(&oerr, MANDATE_TEMPFAIL);
        oerr.reason = "the token cannot be tied to its parent";
        mandate_token_refuse(req, resp, &oerr, grant_type, client->client_id, fields);
        return;
    }
    /* and the parent checked again once tied: a revocation (its client's
     * disable) between the check above and the tie walked the lineage
     * without this token; the revocation marks the parent (disables the
     * client) before it walks, so one of the two always sees the other */
    mandate_token_status again;
    rc = mandate_token_validate(req->runtime, req->pool, subject_token, strlen(subject_token),
                                &again, &err);
    if (rc != MANDATE_OK) {
        /* minted but never answered: marked anyway, so that no copy lives */
        mandate_error rerr = {0};
        if (mandate_store_revoke(mandate_runtime_store(req->runtime), g.jti, g.client_id,
                                 g.expires_at, &rerr) != MANDATE_OK)
            log_error("token %s (not answered) cannot be marked revoked: %s", g.jti,
                      rerr.message);
        if (rc == MANDATE_TEMPFAIL || rc == MANDATE_ERROR) {
            log_error("token exchange: %s", err.message);
            mandate_oauth_fail_rc(&oerr, rc);
        } else {
            mandate_oauth_fail(&oerr, 400, "invalid_grant", "the subject_token is not active");
            oerr.reason =
                mandate_pool_printf(req->pool, "while it was exchanged: %s", again.reason);
        }
        mandate_token_refuse(req, resp, &oerr, grant_type, client->client_id, fields);
        return;
    }
    mandate_token_answer(req, resp, client, &g, token, fmt, grant_type, fields,
                         MANDATE_TOKEN_TYPE_ACCESS);
}

/* The agent that acts: authenticated, and within its rate. false: the
 * refusal is answered and audited. */
static bool acting_client(mandate_http_request *req, mandate_http_response *resp,
                          const mandate_form *form, const char *grant_type,
                          mandate_client *client_r)
{
    mandate_oauth_error oerr;
    if (mandate_client_authenticate(req, form, client_r, &oerr) != MANDATE_OK) {
        mandate_token_refuse(req, resp, &oerr, grant_type, NULL, NULL);
        return false;
    }
    return mandate_signin_grant_registered(req, resp, client_r, grant_type) &&
           mandate_token_within_rate(req, resp, client_r, grant_type);
}

void mandate_grant_token_exchange(mandate_http_request *req, mandate_http_response *resp,
                                  const mandate_form *form)
{
    static const char grant_type[] = MANDATE_GRANT_TOKEN_EXCHANGE_URI;
    mandate_oauth_error oerr;
    mandate_client client;
    if (!acting_client(req, resp, form, grant_type, &client))
        return;
    const char *token = mandate_form_get(form, "subject_token");
    const char *type = mandate_form_get(form, "subject_token_type");
    const char *wanted = mandate_form_get(form, "requested_token_type");
    bool id_jag = wanted != NULL && strcmp(wanted, MANDATE_TOKEN_TYPE_ID_JAG) == 0;
    if (token == NULL || type == NULL) {
        mandate_oauth_fail(&oerr, 400, "invalid_request",
                           "subject_token and subject_token_type are required");
    } else if (mandate_form_get(form, "actor_token") != NULL) {
        mandate_oauth_fail(&oerr, 400, "invalid_request",
                           "actor_token is not supported: the authenticated client is the actor");
    } else if (wanted != NULL && !id_jag && strcmp(wanted, MANDATE_TOKEN_TYPE_ACCESS) != 0) {
        mandate_oauth_fail(&oerr, 400, "invalid_request",
                           "requested_token_type: only access tokens and ID-JAGs are issued");
    } else if (strcmp(type, MANDATE_TOKEN_TYPE_ID_JAG) == 0) {
        /* an ID-JAG is spent with the JWT bearer grant, where its client_id,
         * scope and resource bind the request (mandate_id_jag_accept); the
         * mapping rules here would hold it to none of them, and its jti
         * would be claimed on the way */
        mandate_oauth_fail(&oerr, 400, "invalid_request",
                           "an ID-JAG is presented with the JWT bearer grant "
                           "(" MANDATE_GRANT_JWT_BEARER_URI "), not exchanged");
    } else if (strcmp(type, MANDATE_TOKEN_TYPE_ACCESS) == 0) {
        if (!id_jag) {
            own_token(req, resp, form, &client, token);
            return;
        }
        mandate_oauth_fail(&oerr, 400, "invalid_request",
                           "an ID-JAG is issued for a sign-in at an identity provider (a SAML "
                           "assertion or an id_token), not for an access token");
    } else if (id_jag) {
        mandate_id_jag_issue(req, resp, form, &client, type, token);
        return;
    } else {
        federated(req, resp, form, &client, grant_type, type, token, MANDATE_TOKEN_TYPE_ACCESS);
        return;
    }
    mandate_token_refuse(req, resp, &oerr, grant_type, client.client_id, NULL);
}

/* The acting client and the assertion of a bearer grant (RFC 7521 §4.1);
 * NULL: refused, answered and audited. */
static const char *bearer_assertion(mandate_http_request *req, mandate_http_response *resp,
                                    const mandate_form *form, const char *grant_type,
                                    mandate_client *client_r)
{
    if (!acting_client(req, resp, form, grant_type, client_r))
        return NULL;
    const char *assertion = mandate_form_get(form, "assertion");
    if (assertion == NULL) {
        mandate_oauth_error oerr;
        mandate_oauth_fail(&oerr, 400, "invalid_request", "assertion is required");
        mandate_token_refuse(req, resp, &oerr, grant_type, client_r->client_id, NULL);
    }
    return assertion;
}

void mandate_grant_saml2_bearer(mandate_http_request *req, mandate_http_response *resp,
                                const mandate_form *form)
{
    static const char grant_type[] = MANDATE_GRANT_SAML2_BEARER_URI;
    mandate_client client;
    const char *assertion = bearer_assertion(req, resp, form, grant_type, &client);
    if (assertion != NULL)
        federated(req, resp, form, &client, grant_type, MANDATE_TOKEN_TYPE_SAML2, assertion,
                  NULL);
}

void mandate_grant_jwt_bearer(mandate_http_request *req, mandate_http_response *resp,
                              const mandate_form *form)
{
    static const char grant_type[] = MANDATE_GRANT_JWT_BEARER_URI;
    mandate_client client;
    const char *assertion = bearer_assertion(req, resp, form, grant_type, &client);
    if (assertion == NULL)
        return;
    /* the header's typ tells an ID-JAG from any other JWT; the backend checks
     * it again, so a JWT cannot pass as the other kind */
    if (mandate_id_jag_is(assertion)) {
        mandate_id_jag_accept(req, resp, form, &client, assertion);
        return;
    }
    federated(req, resp, form, &client, grant_type, MANDATE_TOKEN_TYPE_JWT, assertion, NULL);
}
