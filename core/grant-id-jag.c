/* Identity Assertion JWT Authorization Grants
 * (draft-ietf-oauth-identity-assertion-authz-grant), the grant behind MCP's
 * Enterprise-Managed Authorization, both ways:
 *
 * - as the enterprise broker (the IdP side): an agent exchanges the
 *   advisor's sign-in (a SAML assertion, an upstream id_token) for an
 *   ID-JAG that we sign, addressed to a resource authorization server of
 *   id_jag.audiences; the mapping rules decide subject and scopes as for an
 *   access token;
 * - as the resource authorization server: an ID-JAG from a trusted IdP (an
 *   oidc backend instance that accepts "id-jag": it verifies the signature,
 *   iss, aud, lifetime and claims the jti once) comes with the JWT bearer
 *   grant; here the rules between the ID-JAG and the request are checked:
 *   aud is our issuer, client_id is the authenticated client, the scopes
 *   are at most the ID-JAG's, the resource within it. */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "audit-events-private.h"
#include "dpop-binding-private.h"
#include "federation-private.h"
#include "grant-claims.h"
#include "grants-private.h"
#include "issue-private.h"
#include "jose.h"
#include "log-private.h"
#include "mtls-private.h"
#include "oauth-private.h"
#include "plugins-private.h"
#include "pool-private.h"
#include "profile-private.h"
#include "runtime-private.h"
#include "token-types-private.h"
#include "util-private.h"

/* Only the header's typ is read here, whatever its alg: a forged ID-JAG
 * (alg none, HS256) must reach the instance that accepts ID-JAGs and be
 * refused there with the true reason, not pass as another kind of JWT. */
bool mandate_id_jag_is(const char *jwt)
{
    enum { HEADER_MAX = 2048 };
    const char *dot = strchr(jwt, '.');
    if (dot == NULL || dot == jwt || (size_t)(dot - jwt) > HEADER_MAX)
        return false;
    unsigned char raw[HEADER_MAX];
    size_t len;
    if (!mandate_b64url_decode(jwt, (size_t)(dot - jwt), raw, sizeof(raw), &len))
        return false;
    json_t *header = json_loadb((const char *)raw, len, JSON_REJECT_DUPLICATES, NULL);
    const char *typ = json_string_value(json_object_get(header, "typ"));
    bool is = typ != NULL && (strcasecmp(typ, MANDATE_ID_JAG_TYP) == 0 ||
                              strcasecmp(typ, "application/" MANDATE_ID_JAG_TYP) == 0);
    json_decref(header);
    return is;
}

/* A string list from a JSON string (space-separated) or array of strings,
 * space-separated; NULL when absent or of another shape. */
static const char *claim_words(mandate_pool *pool, const json_t *v)
{
    if (json_is_string(v))
        return mandate_pool_strdup(pool, json_string_value(v));
    if (!json_is_array(v))
        return NULL;
    const char *out = NULL;
    size_t i;
    const json_t *e;
    json_array_foreach(v, i, e)
    {
        if (!json_is_string(e))
            return NULL;
        out = out ? mandate_pool_printf(pool, "%s %s", out, json_string_value(e))
                  : mandate_pool_strdup(pool, json_string_value(e));
    }
    return out;
}

/* The words of want (in its order) that are in both have_a and have_b (a
 * NULL list holds nothing); NULL when none is. */
static const char *words_in_both(mandate_pool *pool, const char *want, const char *have_a,
                                 const char *have_b)
{
    const char *out = NULL, *p;
    size_t n;
    while (mandate_word_list_next(&want, &p, &n))
        if (mandate_word_list_has(have_a, p, n) && mandate_word_list_has(have_b, p, n) &&
            !mandate_word_list_has(out, p, n))
            out = out ? mandate_pool_printf(pool, "%s %.*s", out, (int)n, p)
                      : mandate_pool_printf(pool, "%.*s", (int)n, p);
    return out;
}

/* The format that signs our ID-JAGs: the client's, else the default, else
 * the first that can sign other JWTs. */
static const mandate_instance *signing_format(mandate_http_request *req,
                                              const mandate_client *client)
{
    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    const char *names[] = {client->token_format, cfg->token_format};
    for (size_t i = 0; i < 2; i++) {
        if (names[i] == NULL || names[i][0] == '\0')
            continue;
        const mandate_instance *in = mandate_runtime_find(req->runtime, MANDATE_FORMAT, names[i]);
        if (mandate_format_signs(in))
            return in;
    }
    for (size_t i = 0; i < mandate_runtime_instance_count(req->runtime); i++) {
        const mandate_instance *in = mandate_runtime_instance(req->runtime, i);
        if (mandate_format_signs(in))
            return in;
    }
    return NULL;
}

void mandate_id_jag_issue(mandate_http_request *req, mandate_http_response *resp,
                          const mandate_form *form, const mandate_client *client,
                          const char *subject_token_type, const char *subject_token)
{
    static const char grant_type[] = MANDATE_GRANT_TOKEN_EXCHANGE_URI;
    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    mandate_oauth_error oerr;
    const mandate_form_param *aud = mandate_form_find(form, "audience");
    const mandate_form_param *res = mandate_form_find(form, "resource");
    json_t *fields = json_pack("{s:s,s:s}", "subject_token_type", subject_token_type,
                               "requested_token_type", MANDATE_TOKEN_TYPE_ID_JAG);
    if (cfg->id_jag_audiences == NULL || cfg->id_jag_audiences[0] == NULL) {
        mandate_oauth_fail(&oerr, 400, "invalid_request",
                           "this broker issues no ID-JAG (id_jag.audiences is not set)");
    } else if (aud == NULL || aud->value_count != 1) {
        mandate_oauth_fail(&oerr, 400, "invalid_request",
                           "an ID-JAG needs exactly one audience: the issuer of the resource "
                           "authorization server");
    } else if (!mandate_string_list_has(cfg->id_jag_audiences, aud->values[0],
                                        strlen(aud->values[0]))) {
        mandate_oauth_fail(&oerr, 400, "invalid_target",
                           mandate_pool_printf(req->pool,
                                               "audience '%.100s' is not a resource "
                                               "authorization server this broker issues "
                                               "ID-JAGs for",
                                               aud->values[0]));
        json_object_set_new(fields, "audience",
                            mandate_audit_text(aud->values[0], MANDATE_AUDIT_TEXT_MAX));
    } else {
        json_decref(fields);
        fields = NULL;
    }
    if (fields != NULL) {
        mandate_token_refuse(req, resp, &oerr, grant_type, client->client_id, fields);
        return;
    }
    const char *audience = aud->values[0];
    const char *resource = NULL;
    for (size_t i = 0; res != NULL && i < res->value_count; i++)
        resource = resource ? mandate_pool_printf(req->pool, "%s %s", resource, res->values[i])
                            : res->values[i];
    /* the mapping rules' audiences limit the resources, as for a token */
    mandate_federated fed;
    if (!mandate_federated_map(req, resp, form, client, grant_type, subject_token_type,
                               subject_token, resource, &fed))
        return;
    const mandate_mapping_result *m = &fed.mapped;
    const mandate_instance *fmt = signing_format(req, client);

    mandate_grant g = {0};
    g.subject = m->subject;
    g.client_id = client->client_id;
    g.tenant = m->tenant;
    g.scope = m->scope;
    g.audience = audience;
    g.idp = fed.id.issuer;
    /* bound to the requester's DPoP key (the draft's "Proof-of-Possession
     * During Token Exchange": the IdP MUST, given a valid proof) and client
     * certificate, as an access token would be: only its holder presents it
     * at the resource authorization server */
    g.cnf_jkt = req->dpop_jkt;
    g.cnf_x5t_s256 = fed.cnf.x5t_s256 ? fed.cnf.x5t_s256 : mandate_mtls_binding(req, client);
    if (g.cnf_jkt == NULL && mandate_dpop_client_bound(client)) {
        /* RFC 9449 §5.2: its access tokens are never bearer ones, nor the
         * ones an unbound ID-JAG would get it at the resource's server */
        mandate_oauth_fail(&oerr, 400, "invalid_dpop_proof",
                           "this client's tokens are DPoP-bound: a DPoP proof is required");
        mandate_token_refuse(req, resp, &oerr, grant_type, client->client_id,
                             mandate_federated_fields(subject_token_type, fed.backend, &fed.id, m));
        return;
    }
    /* the profile of a regulated tenant holds for an ID-JAG as for a token:
     * it gets its holder an access token at the resource's server */
    if (mandate_profile_issue_refused(req, cfg, client,
                                      g.cnf_jkt != NULL || g.cnf_x5t_s256 != NULL, &oerr)) {
        mandate_token_refuse(
            req, resp, &oerr, grant_type, client->client_id,
            mandate_federated_fields(subject_token_type, fed.backend, &fed.id, m));
        return;
    }
    int64_t lifetime = m->lifetime < cfg->id_jag_lifetime ? m->lifetime : cfg->id_jag_lifetime;
    bool started = mandate_token_grant_start(req, &g, lifetime, 0);

    json_t *claims = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I}", "iss", g.issuer, "sub",
                               g.subject, "aud", audience, "client_id", g.client_id, "jti",
                               g.jti ? g.jti : "", "iat", (json_int_t)g.issued_at, "exp",
                               (json_int_t)g.expires_at);
    if (g.scope != NULL)
        json_object_set_new(claims, "scope", json_string(g.scope));
    if (resource != NULL && m->audience != NULL)
        json_object_set_new(claims, "resource", json_string(m->audience));
    if (g.tenant != NULL)
        json_object_set_new(claims, "tenant", json_string(g.tenant));
    if (fed.id.authn_instant > 0)
        json_object_set_new(claims, "auth_time", json_integer(fed.id.authn_instant));
    mandate_error cerr = {0};
    if (claims != NULL && mandate_grant_cnf_put(claims, &g, "ID-JAG", &cerr) != MANDATE_OK) {
        json_decref(claims); /* thumbprints of our own making: not reached */
        claims = NULL;
    }
    char *text = claims != NULL ? json_dumps(claims, JSON_COMPACT) : NULL;
    json_decref(claims);

    char *jag = NULL;
    mandate_error err = {0};
    mandate_rc rc = MANDATE_ERROR;
    if (fmt == NULL)
        snprintf(err.message, sizeof(err.message), "no enabled format can sign an ID-JAG");
    else if (!started || text == NULL)
        snprintf(err.message, sizeof(err.message), "out of memory or randomness");
    else
        rc = mandate_format_sign(fmt, req->pool, MANDATE_ID_JAG_TYP, text, strlen(text), &jag,
                                 &err);
    free(text);
    json_t *extra = mandate_federated_fields(subject_token_type, fed.backend, &fed.id, m);
    if (rc != MANDATE_OK) {
        log_error("ID-JAG for client %s: %s", client->client_id, err.message);
        mandate_oauth_fail_rc(&oerr, rc);
        oerr.reason = "the ID-JAG could not be signed";
        mandate_token_refuse(req, resp, &oerr, grant_type, client->client_id, extra);
        return;
    }
    if (resource != NULL && m->audience != NULL)
        json_object_set_new(extra, "resource", json_string(m->audience));
    log_info("ID-JAG: client_id=%s acts for %s at %s (idp %s, rule %s)", client->client_id,
             g.subject, audience, fed.backend->conf->name, m->rule->name);
    mandate_token_answer(req, resp, client, &g, jag, fmt, grant_type, extra,
                         MANDATE_TOKEN_TYPE_ID_JAG);
}

void mandate_id_jag_accept(mandate_http_request *req, mandate_http_response *resp,
                           const mandate_form *form, const mandate_client *client,
                           const char *assertion)
{
    static const char grant_type[] = MANDATE_GRANT_JWT_BEARER_URI;
    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    mandate_federated fed;
    if (!mandate_federated_validate(req, resp, client, grant_type, MANDATE_TOKEN_TYPE_ID_JAG,
                                    assertion, &fed))
        return;
    mandate_oauth_error oerr;
    json_t *claims = fed.id.attributes != NULL
                         ? json_loads(fed.id.attributes, JSON_REJECT_DUPLICATES, NULL)
                         : NULL;
    const json_t *aud = json_object_get(claims, "aud");
    const char *auds = claim_words(req->pool, aud);
    const char *jag_client = json_string_value(json_object_get(claims, "client_id"));
    const json_t *scope_claim = json_object_get(claims, "scope");
    const char *jag_scope = json_string_value(scope_claim);
    const json_t *resource_claim = json_object_get(claims, "resource");
    const char *jag_resource = claim_words(req->pool, resource_claim);
    json_t *extra = mandate_federated_fields(MANDATE_TOKEN_TYPE_ID_JAG, fed.backend, &fed.id,
                                             NULL);
    if (jag_client != NULL)
        json_object_set_new(extra, "id_jag_client_id",
                            mandate_audit_text(jag_client, MANDATE_AUDIT_TEXT_MAX));
    mandate_rc rc = MANDATE_DENIED;
    const char *scope = NULL, *audience = NULL;
    const char *requested = mandate_form_get(form, "scope");
    if (!json_is_object(claims) || fed.id.subject == NULL) {
        mandate_oauth_fail(&oerr, 400, "invalid_grant", "the ID-JAG has no claims or no sub");
    } else if (auds == NULL || !mandate_word_list_has(auds, cfg->issuer, strlen(cfg->issuer))) {
        mandate_oauth_fail(&oerr, 400, "invalid_grant",
                           "the ID-JAG is for another authorization server (aud)");
    } else if (jag_client == NULL || strcmp(jag_client, client->client_id) != 0) {
        mandate_oauth_fail(&oerr, 400, "invalid_grant",
                           "the ID-JAG was issued to another client (client_id)");
    } else if ((scope_claim != NULL && jag_scope == NULL) ||
               (resource_claim != NULL && jag_resource == NULL)) {
        mandate_oauth_fail(&oerr, 400, "invalid_grant",
                           "the ID-JAG's scope or resource has the wrong type");
    } else if ((scope = words_in_both(req->pool, requested ? requested : jag_scope, jag_scope,
                                      client->scopes)) == NULL) {
        /* at most the intersection: nothing left is a refusal, not a
         * token without scopes */
        mandate_oauth_fail(&oerr, 400, "invalid_scope",
                           "no scope is both asked for (or in the ID-JAG) and allowed by the "
                           "ID-JAG and this client");
    } else {
        const mandate_form_param *res = mandate_form_find(form, "resource");
        rc = mandate_policy_audience(req->pool, client, res,
                                     mandate_runtime_config(req->runtime)->default_resource,
                                     &audience, &oerr);
        /* the resources asked for (or else the ID-JAG's) within the ID-JAG's */
        if (rc == MANDATE_OK && jag_resource != NULL) {
            const char *want = res != NULL && res->value_count > 0 ? audience : jag_resource;
            const char *within = words_in_both(req->pool, want, jag_resource, client->audiences);
            if (within == NULL || strlen(within) != strlen(want)) {
                mandate_oauth_fail(&oerr, 400, "invalid_target",
                                   "the resource is not within the ID-JAG's resource or this "
                                   "client's audiences");
                rc = MANDATE_DENIED;
            } else {
                audience = within;
            }
        }
    }
    json_decref(claims);
    if (rc != MANDATE_OK) {
        log_info("ID-JAG refused: client_id=%s idp=%s: %s", client->client_id,
                 fed.backend->conf->name, oerr.description);
        mandate_token_refuse(req, resp, &oerr, grant_type, client->client_id, extra);
        return;
    }
    mandate_grant g = {0};
    g.subject = fed.id.subject;
    g.client_id = client->client_id;
    g.actor = client->client_id;
    g.tenant = client->tenant;
    g.scope = scope;
    g.audience = audience;
    g.idp = fed.id.issuer;
    mandate_cnf_carry(&fed.cnf, &g);
    if (!mandate_token_grant_start(req, &g, mandate_policy_lifetime(cfg, client), 0)) {
        mandate_oauth_fail_rc(&oerr, MANDATE_ERROR);
        mandate_token_refuse(req, resp, &oerr, grant_type, client->client_id, extra);
        return;
    }
    log_info("ID-JAG accepted: client_id=%s acts for %s (idp %s)", client->client_id,
             g.subject, fed.backend->conf->name);
    mandate_token_issue(req, resp, client, &g, grant_type, extra, NULL);
}
