#include "config.h"

#include <string.h>

#include "log-private.h"
#include "oauth-private.h"
#include "pool-private.h"
#include "runtime-private.h"

mandate_rc mandate_oauth_fail(mandate_oauth_error *e, unsigned status, const char *error,
                              const char *description)
{
    e->status = status;
    e->error = error;
    e->description = description;
    e->reason = description;
    e->client_id = NULL;
    return MANDATE_DENIED;
}

mandate_rc mandate_oauth_fail_rc(mandate_oauth_error *e, mandate_rc rc)
{
    if (rc == MANDATE_TEMPFAIL)
        return mandate_oauth_fail(e, 503, "temporarily_unavailable",
                                  "the broker cannot serve this now; try again shortly");
    return mandate_oauth_fail(e, 500, "server_error", "internal error; see the broker's log");
}

void mandate_oauth_respond_rc(mandate_http_request *req, mandate_http_response *resp,
                              mandate_rc rc)
{
    mandate_oauth_error e;
    mandate_oauth_fail_rc(&e, rc);
    mandate_oauth_respond_error(req, resp, &e);
}

void mandate_oauth_respond_error(mandate_http_request *req, mandate_http_response *resp,
                                 const mandate_oauth_error *e)
{
    mandate_http_response_error(req, resp, e->status, e->error, e->description);
    mandate_http_response_header(resp, "Cache-Control", "no-store");
    mandate_http_response_header(resp, "Pragma", "no-cache");
    if (e->status == 401)
        mandate_http_response_header(resp, "WWW-Authenticate", "Basic realm=\"mandate\"");
    if (e->status == 503)
        mandate_http_response_header(resp, "Retry-After", "5");
}

void mandate_oauth_respond_too_many(mandate_http_request *req, mandate_http_response *resp,
                                    const char *description, unsigned retry_after)
{
    mandate_http_response_error(req, resp, 429, "too_many_requests", description);
    mandate_http_response_header(resp, "Retry-After",
                                 mandate_pool_printf(req->pool, "%u", retry_after));
    mandate_http_response_header(resp, "Cache-Control", "no-store");
}

const char *mandate_oauth_endpoint_url(mandate_http_request *req, const char *path)
{
    return mandate_pool_printf(req->pool, "%s%s", mandate_runtime_config(req->runtime)->issuer,
                               path);
}

mandate_rc mandate_policy_scope(mandate_pool *pool, const mandate_client *client,
                                const char *requested, const char **scope_r,
                                mandate_oauth_error *oerr)
{
    if (requested == NULL) {
        /* RFC 6749 §3.3: the client's pre-defined default, or invalid_scope.
         * Never a token of no scope that the client did not ask for: what it
         * may do must be said, by the request or by the operator. */
        if (client->default_scopes == NULL || client->default_scopes[0] == '\0')
            return mandate_oauth_fail(
                oerr, 400, "invalid_scope",
                "no scope asked, and this client has no default scopes: ask for one");
        *scope_r = client->default_scopes;
        return MANDATE_OK;
    }
    char *out = mandate_pool_alloc(pool, strlen(requested) + 1);
    size_t used = 0, n;
    const char *p;
    while (mandate_word_list_next(&requested, &p, &n)) {
        if (!mandate_scope_token_valid(p, n))
            return mandate_oauth_fail(oerr, 400, "invalid_scope",
                                      "scope holds a character RFC 6749 does not allow");
        if (!mandate_word_list_has(client->scopes, p, n)) {
            const char *what = mandate_pool_printf(
                pool, "scope '%.*s' is not allowed for this client", (int)(n > 64 ? 64 : n), p);
            return mandate_oauth_fail(oerr, 400, "invalid_scope", what);
        }
        mandate_word_list_add(out, &used, p, n); /* asked twice: granted once */
    }
    *scope_r = used > 0 ? out : NULL;
    return MANDATE_OK;
}

mandate_rc mandate_policy_audience(mandate_pool *pool, const mandate_client *client,
                                   const mandate_form_param *resources,
                                   const char *default_resource, const char **audience_r,
                                   mandate_oauth_error *oerr)
{
    /* a client of no audience of its own is for the default resource */
    const char *allowed = client->audiences && client->audiences[0] ? client->audiences
                          : default_resource && default_resource[0] ? default_resource
                                                                     : NULL;
    if (resources == NULL || resources->value_count == 0) {
        *audience_r = allowed;
        return MANDATE_OK;
    }
    size_t len = 1, used = 0;
    for (size_t i = 0; i < resources->value_count; i++)
        len += strlen(resources->values[i]) + 1;
    char *out = mandate_pool_alloc(pool, len);
    for (size_t i = 0; i < resources->value_count; i++) {
        const char *r = resources->values[i];
        size_t n = strlen(r);
        /* RFC 8707 §2: an absolute URI without a fragment */
        if (strchr(r, ':') == NULL || strchr(r, '#') != NULL || strchr(r, ' ') != NULL)
            return mandate_oauth_fail(oerr, 400, "invalid_target",
                                      "resource must be an absolute URI without a fragment");
        if (!mandate_word_list_has(allowed, r, n))
            return mandate_oauth_fail(
                oerr, 400, "invalid_target",
                mandate_pool_printf(pool, "resource '%.100s' is not allowed for this client", r));
        mandate_word_list_add(out, &used, r, n);
    }
    *audience_r = out;
    return MANDATE_OK;
}

int64_t mandate_policy_lifetime(const mandate_config *config, const mandate_client *client)
{
    int64_t ttl = client->token_ttl > 0 ? client->token_ttl : config->token_lifetime;
    return ttl > MANDATE_TOKEN_MAX_LIFETIME ? MANDATE_TOKEN_MAX_LIFETIME : ttl;
}
