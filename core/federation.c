/* The federated grants' shared steps: the backend that vouches for a
 * subject token, the mapping rules, and the audit fields of both. */
#include "config.h"

#include <string.h>

#include "audit-events-private.h"
#include "clock-private.h"
#include "federation-private.h"
#include "grants-private.h"
#include "issue-private.h"
#include "log-private.h"
#include "mapping-private.h"
#include "plugins-private.h"
#include "pool-private.h"
#include "runtime-private.h"
#include "token-types-private.h"
#include "util-private.h"

/* The backend that vouches for the assertion, and what it says. */
static mandate_rc validate_assertion(mandate_http_request *req, const char *token_type,
                                     const char *assertion, const mandate_instance **backend_r,
                                     mandate_identity *identity_r, mandate_oauth_error *oerr)
{
    bool any = false;
    const char *passed = NULL;
    for (size_t i = 0; i < mandate_runtime_instance_count(req->runtime); i++) {
        const mandate_instance *in = mandate_runtime_instance(req->runtime, i);
        if (!mandate_backend_accepts(in, token_type))
            continue;
        any = true;
        mandate_error err = {0};
        memset(identity_r, 0, sizeof(*identity_r));
        mandate_rc rc = mandate_backend_validate(in, req->pool, token_type, assertion,
                                                 strlen(assertion), identity_r, &err);
        if (rc == MANDATE_NEXT) {
            /* an instance may say why it passed (its issuer, but not this
             * kind of token): a truer reason than "no backend knows it" */
            if (err.message[0] != '\0')
                passed = mandate_pool_printf(req->pool, "%s: %s", in->conf->name, err.message);
            continue;
        }
        *backend_r = in;
        if (rc == MANDATE_OK)
            return MANDATE_OK;
        if (rc == MANDATE_TEMPFAIL || rc == MANDATE_ERROR) {
            log_error("%s: %s", in->conf->name, err.message);
            mandate_oauth_fail_rc(oerr, rc);
            /* the cause goes to the audit trail too, never to the client */
            oerr->reason =
                mandate_pool_printf(req->pool, "%s: %s", in->conf->name, err.message);
            return rc;
        }
        log_info("subject token refused by %s: %s", in->conf->name, err.message);
        mandate_oauth_fail(oerr, 400, "invalid_grant", "the assertion was refused");
        oerr->reason = mandate_pool_printf(req->pool, "%s: %s", in->conf->name, err.message);
        return MANDATE_DENIED;
    }
    *backend_r = NULL;
    if (!any) {
        mandate_oauth_fail(oerr, 400, "invalid_request",
                           "no enabled backend accepts this subject_token_type");
        return MANDATE_DENIED;
    }
    mandate_oauth_fail(oerr, 400, "invalid_grant", "no enabled backend knows this issuer");
    if (passed != NULL)
        oerr->reason = passed;
    return MANDATE_DENIED;
}

json_t *mandate_federated_fields(const char *token_type, const mandate_instance *backend,
                                 const mandate_identity *id, const mandate_mapping_result *m)
{
    json_t *o = json_pack("{s:s}", "subject_token_type", token_type);
    if (backend != NULL)
        json_object_set_new(o, "idp_instance", json_string(backend->conf->name));
    if (id != NULL && id->issuer != NULL)
        json_object_set_new(o, "idp", mandate_audit_text(id->issuer, MANDATE_AUDIT_TEXT_MAX));
    if (id != NULL && id->assertion_id != NULL)
        json_object_set_new(o, "assertion_id",
                            mandate_audit_text(id->assertion_id, MANDATE_AUDIT_TEXT_MAX));
    if (id != NULL && id->subject != NULL)
        json_object_set_new(o, "idp_subject",
                            mandate_audit_text(id->subject, MANDATE_AUDIT_TEXT_MAX));
    if (m != NULL && m->rule != NULL)
        json_object_set_new(o, "rule", json_string(m->rule->name));
    if (m != NULL && m->why != NULL)
        json_object_set_new(o, "mapping", mandate_audit_text(m->why, 512));
    return o;
}

/* A JWT's attributes are its claims, its cnf among them (SAML attributes
 * are not: a SAML attribute named cnf binds nothing). */
static bool claims_may_bind(const char *token_type)
{
    return strcmp(token_type, MANDATE_TOKEN_TYPE_JWT) == 0 ||
           strcmp(token_type, MANDATE_TOKEN_TYPE_ID_TOKEN) == 0 ||
           strcmp(token_type, MANDATE_TOKEN_TYPE_ID_JAG) == 0;
}

/* The request holds what the token is bound to (fed_r->cnf). false:
 * refused, answered and audited. */
static bool federated_holder(mandate_http_request *req, mandate_http_response *resp,
                             const mandate_client *client, const char *grant_type,
                             mandate_federated *fed_r)
{
    if (!claims_may_bind(fed_r->token_type) || fed_r->id.attributes == NULL)
        return true;
    json_t *claims = json_loads(fed_r->id.attributes, JSON_REJECT_DUPLICATES, NULL);
    const char *why = NULL;
    mandate_oauth_error oerr;
    const char *what = strcmp(fed_r->token_type, MANDATE_TOKEN_TYPE_ID_JAG) == 0 ? "ID-JAG"
                       : strcmp(grant_type, MANDATE_GRANT_JWT_BEARER_URI) == 0
                           ? "assertion"
                           : "subject_token";
    bool held = mandate_cnf_of_claims(req->pool, claims, &fed_r->cnf, &why);
    json_decref(claims);
    if (!held)
        mandate_oauth_fail(
            &oerr, 400, "invalid_grant",
            mandate_pool_printf(req->pool, "the %s cannot be honoured: %s", what, why));
    else
        held = mandate_cnf_held(req, &fed_r->cnf, what, &oerr);
    if (held)
        return true;
    log_info("%s refused: client_id=%s idp=%s: %s", what, client->client_id,
             fed_r->backend->conf->name, oerr.description);
    json_t *fields =
        mandate_federated_fields(fed_r->token_type, fed_r->backend, &fed_r->id, NULL);
    mandate_cnf_audit(req, &fed_r->cnf, fields);
    mandate_token_refuse(req, resp, &oerr, grant_type, client->client_id, fields);
    return false;
}

bool mandate_federated_validate(mandate_http_request *req, mandate_http_response *resp,
                                const mandate_client *client, const char *grant_type,
                                const char *token_type, const char *assertion,
                                mandate_federated *fed_r)
{
    mandate_oauth_error oerr;
    memset(fed_r, 0, sizeof(*fed_r));
    fed_r->token_type = token_type;
    if (validate_assertion(req, token_type, assertion, &fed_r->backend, &fed_r->id, &oerr) !=
        MANDATE_OK) {
        mandate_token_refuse(req, resp, &oerr, grant_type, client->client_id,
                             mandate_federated_fields(token_type, fed_r->backend, NULL, NULL));
        return false;
    }
    return federated_holder(req, resp, client, grant_type, fed_r);
}

/* The acting client's audiences bound the mapped audience, as its scopes
 * bound the scope: one asked for outside them is refused, the rule's
 * default is cut down to them (nothing left: refused). A client of no
 * audience of its own is for default_resource (mandate_policy_audience). */
static bool within_client_audiences(mandate_pool *pool, const mandate_config *cfg,
                                    const mandate_client *client, const char *requested,
                                    mandate_mapping_result *m, mandate_oauth_error *oerr)
{
    if (mandate_word_list_count(m->audience) == 0)
        return true;
    const char *allowed = client->audiences && client->audiences[0] ? client->audiences
                          : cfg->default_resource && cfg->default_resource[0]
                              ? cfg->default_resource
                              : NULL;
    size_t n;
    const char *missing = mandate_word_list_missing(m->audience, allowed, &n);
    char *kept = mandate_pool_alloc(pool, strlen(m->audience) + 1);
    if (mandate_word_list_count(requested) > 0 && missing != NULL)
        mandate_oauth_fail(
            oerr, 400, "invalid_target",
            mandate_pool_printf(pool, "resource '%.100s' is not allowed for this client",
                                mandate_pool_strndup(pool, missing, n)));
    else if (mandate_word_list_keep(kept, m->audience, allowed) == 0)
        mandate_oauth_fail(oerr, 400, "invalid_target",
                           "none of the audiences the mapping rule grants is allowed for this "
                           "client");
    else {
        m->audience = kept;
        return true;
    }
    oerr->reason = mandate_pool_printf(pool, "audience %.200s beyond the client's: %.200s",
                                       m->audience, allowed ? allowed : "(none)");
    return false;
}

bool mandate_federated_map(mandate_http_request *req, mandate_http_response *resp,
                           const mandate_form *form, const mandate_client *client,
                           const char *grant_type, const char *token_type,
                           const char *assertion, const char *requested_audience,
                           mandate_federated *fed_r)
{
    if (!mandate_federated_validate(req, resp, client, grant_type, token_type, assertion,
                                    fed_r))
        return false;
    mandate_oauth_error oerr;
    const mandate_instance *backend = fed_r->backend;
    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    mandate_mapping_request mr = {.idp = backend->conf->name,
                                  .idp_plugin = backend->handle->plugin->name,
                                  .identity = &fed_r->id,
                                  .requested_scope = mandate_form_get(form, "scope"),
                                  .client_scopes = client->scopes,
                                  .requested_audience = requested_audience,
                                  .default_lifetime = cfg->token_lifetime,
                                  .now = mandate_clock_now()};
    mandate_rc rc = mandate_mapping_apply(&cfg->mappings, &mr, req->pool, &fed_r->mapped);
    const mandate_mapping_result *m = &fed_r->mapped;
    if (rc == MANDATE_OK) {
        if (within_client_audiences(req->pool, cfg, client, requested_audience, &fed_r->mapped,
                                    &oerr))
            return true;
        log_info("token exchange refused: client_id=%s idp=%s subject=%s: %s",
                 client->client_id, backend->conf->name, m->subject, oerr.reason);
        mandate_token_refuse(req, resp, &oerr, grant_type, client->client_id,
                             mandate_federated_fields(token_type, backend, &fed_r->id, m));
        return false;
    }
    log_info("token exchange refused: client_id=%s idp=%s subject=%s: %s", client->client_id,
             backend->conf->name, fed_r->id.subject ? fed_r->id.subject : "-",
             m->why ? m->why : mandate_rc_name(rc));
    if (rc == MANDATE_DENIED)
        mandate_oauth_fail(&oerr, 400, "invalid_grant",
                           m->rule ? "the mapping rule does not allow this request"
                                   : "no mapping rule grants a token to this identity");
    else
        mandate_oauth_fail_rc(&oerr, MANDATE_ERROR);
    oerr.reason = m->why;
    mandate_token_refuse(req, resp, &oerr, grant_type, client->client_id,
                         mandate_federated_fields(token_type, backend, &fed_r->id, m));
    return false;
}
