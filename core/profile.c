/* The profile for regulated tenants: profile-private.h. */
#include "config.h"

#include <string.h>

#include <jansson.h>

#include "profile-private.h"

/* A member of a client's attributes or registered metadata (JSON texts),
 * new reference or NULL. */
static json_t *client_member(const mandate_client *client, const char *name)
{
    const char *texts[] = {client->attributes, client->metadata};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        if (texts[i] == NULL)
            continue;
        json_t *o = json_loads(texts[i], 0, NULL);
        json_t *v = json_incref(json_object_get(o, name));
        json_decref(o);
        if (v != NULL)
            return v;
    }
    return NULL;
}

bool mandate_profile_fapi2(const mandate_config *cfg, const mandate_client *client)
{
    json_t *profile = client_member(client, "profile");
    bool on = json_is_string(profile) &&
              strcmp(json_string_value(profile), MANDATE_PROFILE_FAPI2) == 0;
    json_decref(profile);
    for (char **t = cfg->fapi2_tenants; !on && t != NULL && *t != NULL; t++)
        on = client->tenant != NULL && strcmp(client->tenant, *t) == 0;
    return on;
}

bool mandate_profile_par_required(const mandate_config *cfg, const mandate_client *client)
{
    if (cfg->par.required || mandate_profile_fapi2(cfg, client))
        return true;
    json_t *v = client_member(client, "require_pushed_authorization_requests");
    bool yes = json_is_true(v);
    json_decref(v);
    return yes;
}

const char *mandate_profile_auth_refusal(const mandate_http_request *req,
                                         const mandate_config *cfg,
                                         const mandate_client *client)
{
    static const char *const accepted[] = {"private_key_jwt", "tls_client_auth",
                                           "self_signed_tls_client_auth", NULL};
    if (!mandate_profile_fapi2(cfg, client))
        return NULL;
    const char *method = req->client_auth_method;
    if (method == NULL)
        return "profile fapi2 (client_auth): public clients are not accepted; authenticate "
               "with private_key_jwt or a client certificate";
    for (const char *const *m = accepted; *m != NULL; m++)
        if (strcmp(method, *m) == 0)
            return NULL;
    return "profile fapi2 (client_auth): client secrets are not accepted; authenticate with "
           "private_key_jwt or a client certificate";
}

bool mandate_profile_issue_refused(const mandate_http_request *req, const mandate_config *cfg,
                                   const mandate_client *client, bool bound,
                                   mandate_oauth_error *oerr)
{
    const char *why = mandate_profile_auth_refusal(req, cfg, client);
    if (why != NULL)
        mandate_oauth_fail(oerr, 401, "invalid_client", why);
    else if (!bound && mandate_profile_fapi2(cfg, client))
        mandate_oauth_fail(oerr, 400, "invalid_dpop_proof",
                           why = "profile fapi2 (sender_constrained): tokens are "
                                 "sender-constrained only: send a DPoP proof (or use "
                                 "a client certificate)");
    if (why == NULL)
        return false;
    oerr->reason = why;
    return true;
}

const char *mandate_profile_redirect_refusal(const mandate_config *cfg,
                                             const mandate_client *client,
                                             const char *redirect_uri)
{
    if (!mandate_profile_fapi2(cfg, client) || redirect_uri == NULL)
        return NULL;
    if (strncmp(redirect_uri, "https://", 8) != 0)
        return "profile fapi2 (redirect_https): the redirect_uri must be an https URI";
    /* registered exactly: the loopback leeway on ports is for http only,
     * and the registration check compared the whole string otherwise */
    return NULL;
}

const char *const *mandate_profile_fapi2_rules(void)
{
    static const char *const rules[] = {
        "par: authorization requests only through /oauth2/par (request_uri at /authorize)",
        "client_auth: private_key_jwt, tls_client_auth or self_signed_tls_client_auth only "
        "(no client secret, no public client) at /oauth2/par and /oauth2/token",
        "sender_constrained: every access token DPoP-bound (cnf.jkt) or certificate-bound "
        "(cnf x5t#S256)",
        "redirect_https: redirect URIs are https",
        "(for every client already: PKCE S256 only, codes of at most 60 s, iss in the "
        "authorization response)",
        NULL};
    return rules;
}
