/* DPoP-bound tokens in the core: dpop-binding-private.h. */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "clock-private.h"
#include "config-private.h"
#include "dpop-binding-private.h"
#include "dpop.h"
#include "issue-private.h"
#include "log-private.h"
#include "oauth-private.h"
#include "plugins-private.h"
#include "pool-private.h"
#include "runtime-private.h"

/* The replay cache's namespace of proofs: per key, so that one client's
 * proofs cannot collide with another's jti. */
#define DPOP_REPLAY_NS "dpop:"

/* The configured algorithms as MANDATE_DPOP_ALG bits (all three when none
 * is configured; the names were checked at load). */
static unsigned configured_algs(const mandate_config *cfg)
{
    if (cfg->dpop.algorithms == NULL)
        return MANDATE_DPOP_ALGS_ALL;
    unsigned algs = 0;
    for (char **a = cfg->dpop.algorithms; *a != NULL; a++)
        if (mandate_jws_alg_parse(*a) != MANDATE_JWS_NONE)
            algs |= MANDATE_DPOP_ALG(mandate_jws_alg_parse(*a));
    return algs;
}

/* "ES256 EdDSA RS256", as configured: the algs of a challenge. */
static const char *algs_text(mandate_pool *pool, const mandate_config *cfg)
{
    static const mandate_jws_alg order[] = {MANDATE_JWS_ES256, MANDATE_JWS_EDDSA,
                                            MANDATE_JWS_RS256};
    unsigned algs = configured_algs(cfg);
    char *out = "";
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
        if (algs & MANDATE_DPOP_ALG(order[i]))
            out = mandate_pool_printf(pool, "%s%s%s", out, *out ? " " : "",
                                      mandate_jws_alg_name(order[i]));
    return out;
}

json_t *mandate_dpop_metadata_algs(const mandate_http_request *req)
{
    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    json_t *list = json_array();
    const char *text = algs_text(req->pool, cfg), *w = text;
    while (*w != '\0') {
        size_t n = strcspn(w, " ");
        json_array_append_new(list, json_stringn(w, n));
        w += n + (w[n] == ' ');
    }
    return list;
}

/* The proof of the request's DPoP header for method and uri (with ath of
 * token when not NULL), its jti claimed once. false with *why_r; *tempfail_r
 * when the store did not answer. */
static bool proof_checked(mandate_http_request *req, const char *method, const char *uri,
                          const char *token, mandate_dpop_proof *p, const char **why_r,
                          bool *tempfail_r)
{
    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    const char *proof = mandate_http_request_header(req, "DPoP");
    *tempfail_r = false;
    if (proof == NULL) {
        *why_r = "a DPoP proof is required (the DPoP header)";
        return false;
    }
    if (mandate_http_request_header_count(req, "DPoP") > 1) {
        /* RFC 9449 §4.3: exactly one */
        *why_r = "more than one DPoP header";
        return false;
    }
    const mandate_dpop_expect x = {.method = method,
                                   .uri = uri,
                                   .access_token = token,
                                   .algs = configured_algs(cfg),
                                   .now = mandate_clock_now(),
                                   .max_age = cfg->dpop.max_age,
                                   .max_future = cfg->dpop.max_future};
    mandate_error err = {0};
    if (mandate_dpop_check(proof, strlen(proof), &x, p, &err) != MANDATE_OK) {
        *why_r = mandate_pool_strdup(req->pool, err.message);
        return false;
    }
    /* single use, on every node: remembered while the proof could pass */
    const char *ns = mandate_pool_printf(req->pool, DPOP_REPLAY_NS "%s", p->jkt);
    mandate_rc rc = mandate_store_replay_claim(mandate_runtime_store(req->runtime), ns, p->jti,
                                               p->iat + cfg->dpop.max_age + 1, &err);
    if (rc == MANDATE_EXISTS) {
        *why_r = "the DPoP proof was used before (its jti is spent)";
        return false;
    }
    if (rc != MANDATE_OK) {
        log_error("DPoP: the replay cache did not answer: %s", err.message);
        *why_r = "the DPoP proof's jti cannot be checked";
        *tempfail_r = true;
        return false;
    }
    return true;
}

bool mandate_dpop_token_request(mandate_http_request *req, mandate_http_response *resp,
                                const char *grant_type)
{
    req->dpop_jkt = NULL;
    if (mandate_http_request_header(req, "DPoP") == NULL)
        return true;
    mandate_dpop_proof p;
    const char *why;
    bool tempfail;
    /* htu: the token endpoint as the metadata names it */
    if (proof_checked(req, "POST", mandate_oauth_endpoint_url(req, "/oauth2/token"), NULL, &p,
                      &why, &tempfail)) {
        req->dpop_jkt = mandate_pool_strdup(req->pool, p.jkt);
        return true;
    }
    mandate_oauth_error oerr;
    if (tempfail) {
        mandate_oauth_fail_rc(&oerr, MANDATE_TEMPFAIL);
        oerr.reason = why;
    } else {
        mandate_oauth_fail(&oerr, 400, "invalid_dpop_proof", why);
    }
    mandate_token_refuse(req, resp, &oerr, grant_type, NULL, NULL);
    return false;
}

bool mandate_dpop_request_holds(const mandate_http_request *req, const char *jkt)
{
    return req->dpop_jkt != NULL && jkt != NULL && strcmp(req->dpop_jkt, jkt) == 0;
}

/* The boolean member name of a JSON object's text (NULL: false). */
static bool json_text_true(const char *text, const char *name)
{
    if (text == NULL)
        return false;
    json_t *o = json_loads(text, 0, NULL);
    bool yes = json_is_true(json_object_get(o, name));
    json_decref(o);
    return yes;
}

bool mandate_dpop_client_bound(const mandate_client *client)
{
    return json_text_true(client->attributes, "dpop_bound_access_tokens") ||
           json_text_true(client->metadata, "dpop_bound_access_tokens");
}

bool mandate_dpop_client_public(const mandate_client *client)
{
    if (client->metadata == NULL)
        return false;
    json_t *o = json_loads(client->metadata, 0, NULL);
    const char *m = json_string_value(json_object_get(o, "token_endpoint_auth_method"));
    bool yes = m != NULL && strcmp(m, "none") == 0;
    json_decref(o);
    return yes;
}

const char *mandate_authorization_credentials(mandate_http_request *req, const char *scheme)
{
    const char *h = mandate_http_request_header(req, "Authorization");
    size_t n = strlen(scheme);
    if (h == NULL || strncasecmp(h, scheme, n) != 0 || h[n] != ' ')
        return NULL;
    h += n;
    while (*h == ' ')
        h++;
    return *h != '\0' ? h : NULL;
}

bool mandate_dpop_gateway_proof(mandate_http_request *req, const mandate_target *t,
                                const char *raw_path, const char *token, const char *jkt,
                                const char **why_r, bool *tempfail_r)
{
    *tempfail_r = false;
    const char *method = mandate_http_request_header(req, "X-Original-Method");
    if (t->public_url == NULL) {
        *why_r = "the target has no public_url to check a DPoP proof's htu against";
        return false;
    }
    if (method == NULL || raw_path == NULL) {
        *why_r = "the gateway did not send the original method and URI (X-Original-Method, "
                 "X-Original-URI)";
        return false;
    }
    /* public_url is scheme://host[:port]; the path as the client sent it */
    size_t base = strlen(t->public_url);
    while (base > 0 && t->public_url[base - 1] == '/')
        base--;
    const char *uri =
        mandate_pool_printf(req->pool, "%.*s%s", (int)base, t->public_url, raw_path);
    mandate_dpop_proof p;
    if (!proof_checked(req, method, uri, token, &p, why_r, tempfail_r))
        return false;
    if (strcmp(p.jkt, jkt) != 0) {
        *why_r = "the DPoP proof is by another key than the one the token is bound to";
        return false;
    }
    return true;
}

void mandate_dpop_challenge(mandate_http_request *req, mandate_http_response *resp,
                            unsigned status, const char *error, const char *description)
{
    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    const char *value =
        mandate_pool_printf(req->pool, "DPoP algs=\"%s\"", algs_text(req->pool, cfg));
    if (error != NULL)
        value = mandate_pool_printf(req->pool, "%s, error=\"%s\"", value, error);
    if (description != NULL && strchr(description, '"') == NULL)
        value =
            mandate_pool_printf(req->pool, "%s, error_description=\"%s\"", value, description);
    mandate_http_response_error(req, resp, status, error ? error : "invalid_request",
                                description);
    mandate_http_response_header(resp, "WWW-Authenticate", value);
    mandate_http_response_header(resp, "Cache-Control", "no-store");
}
