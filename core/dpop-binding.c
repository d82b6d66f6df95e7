/* DPoP-bound tokens in the core: dpop-binding-private.h. */
#include "config.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "clock-private.h"
#include "config-private.h"
#include "dpop-binding-private.h"
#include "dpop.h"
#include "issue-private.h"
#include "log-private.h"
#include "mtls-private.h"
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

/* --- server nonces (RFC 9449 §8) ------------------------------------------------- */

/* A nonce is the window it was made in and a MAC of it under a key derived
 * from the KEK: every node makes and accepts the same ones, none is stored.
 * Good in its window of dpop.max_age seconds and the next. */
#define NONCE_MAC_BYTES 16

/* The nonce of window (malloc'd in the pool); NULL without a KEK. */
static const char *nonce_of(mandate_http_request *req, int64_t window)
{
    static const char label[] = "mandate dpop nonce v1";
    const unsigned char *signin_key = mandate_runtime_signin_key(req->runtime);
    unsigned char key[32], msg[8 + NONCE_MAC_BYTES], mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (signin_key == NULL || HMAC(EVP_sha256(), signin_key, 32, (const unsigned char *)label,
                                   sizeof(label) - 1, key, &len) == NULL)
        return NULL;
    for (int i = 0; i < 8; i++)
        msg[i] = (unsigned char)((uint64_t)window >> (56 - 8 * i));
    if (HMAC(EVP_sha256(), key, sizeof(key), msg, 8, mac, &len) == NULL)
        return NULL;
    OPENSSL_cleanse(key, sizeof(key));
    memcpy(msg + 8, mac, NONCE_MAC_BYTES);
    char *out = mandate_pool_alloc(req->pool, mandate_b64url_encoded_len(sizeof(msg)) + 1);
    mandate_b64url_encode(msg, sizeof(msg), out);
    return out;
}

static int64_t nonce_window(const mandate_http_request *req)
{
    return mandate_clock_now() / mandate_runtime_config(req->runtime)->dpop.max_age;
}

/* A fresh nonce, for DPoP-Nonce; NULL when nonces are off or there is no
 * KEK. */
static const char *nonce_fresh(mandate_http_request *req)
{
    if (!mandate_runtime_config(req->runtime)->dpop.nonce)
        return NULL;
    return nonce_of(req, nonce_window(req));
}

static bool nonce_valid(mandate_http_request *req, const char *nonce)
{
    int64_t window = nonce_window(req);
    for (int64_t w = window; w >= window - 1; w--) {
        const char *want = nonce_of(req, w);
        if (want != NULL && strlen(nonce) == strlen(want) &&
            CRYPTO_memcmp(nonce, want, strlen(want)) == 0)
            return true;
    }
    return false;
}

/* --- the proof ------------------------------------------------------------------- */

/* The proof of the request's DPoP header for method and uri (or alias, when
 * not NULL; with ath of token when not NULL): checked, and its nonce when
 * nonces are on; its jti not claimed yet. Anything but MANDATE_DPOP_OK with
 * *why_r. */
static mandate_dpop_outcome proof_verified(mandate_http_request *req, const char *method,
                                           const char *uri, const char *alias,
                                           const char *token, mandate_dpop_proof *p,
                                           const char **why_r)
{
    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    const char *proof = mandate_http_request_header(req, "DPoP");
    if (proof == NULL) {
        *why_r = "a DPoP proof is required (the DPoP header)";
        return MANDATE_DPOP_REFUSED;
    }
    if (mandate_http_request_header_count(req, "DPoP") > 1) {
        /* RFC 9449 §4.3: exactly one */
        *why_r = "more than one DPoP header";
        return MANDATE_DPOP_REFUSED;
    }
    const mandate_dpop_expect x = {.method = method,
                                   .uri = uri,
                                   .uri_alias = alias,
                                   .access_token = token,
                                   .algs = configured_algs(cfg),
                                   .now = mandate_clock_now(),
                                   .max_age = cfg->dpop.max_age,
                                   .max_future = cfg->dpop.max_future,
                                   .keys = mandate_runtime_dpop_keys(req->runtime)};
    mandate_error err = {0};
    if (mandate_dpop_check(proof, strlen(proof), &x, p, &err) != MANDATE_OK) {
        *why_r = mandate_pool_strdup(req->pool, err.message);
        return MANDATE_DPOP_REFUSED;
    }
    /* before the jti is spent: the client's retry with the nonce is a new
     * proof anyway */
    if (cfg->dpop.nonce && !nonce_valid(req, p->nonce)) {
        if (mandate_runtime_signin_key(req->runtime) == NULL) {
            log_error("DPoP: dpop.nonce is on, and there is no KEK to make nonces with");
            *why_r = "the broker cannot make DPoP nonces";
            return MANDATE_DPOP_TEMPFAIL;
        }
        *why_r = p->nonce[0] == '\0' ? "a DPoP nonce is required (DPoP-Nonce)"
                                     : "the DPoP proof's nonce is stale or not this broker's";
        return MANDATE_DPOP_USE_NONCE;
    }
    return MANDATE_DPOP_OK;
}

/* The jti of proof p claimed once: single use, on every node, remembered
 * while the proof could pass. Anything but MANDATE_DPOP_OK with *why_r. */
static mandate_dpop_outcome jti_claimed(mandate_http_request *req, const mandate_dpop_proof *p,
                                        const char **why_r)
{
    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    mandate_error err = {0};
    const char *ns = mandate_pool_printf(req->pool, DPOP_REPLAY_NS "%s", p->jkt);
    mandate_rc rc = mandate_store_replay_claim(mandate_runtime_store(req->runtime), ns, p->jti,
                                               p->iat + cfg->dpop.max_age + 1, &err);
    if (rc == MANDATE_EXISTS) {
        *why_r = "the DPoP proof was used before (its jti is spent)";
        return MANDATE_DPOP_REFUSED;
    }
    if (rc != MANDATE_OK) {
        log_error("DPoP: the replay cache did not answer: %s", err.message);
        *why_r = "the DPoP proof's jti cannot be checked";
        return MANDATE_DPOP_TEMPFAIL;
    }
    return MANDATE_DPOP_OK;
}

/* proof_verified, then jti_claimed. */
static mandate_dpop_outcome proof_checked(mandate_http_request *req, const char *method,
                                          const char *uri, const char *token,
                                          mandate_dpop_proof *p, const char **why_r)
{
    mandate_dpop_outcome out = proof_verified(req, method, uri, NULL, token, p, why_r);
    return out == MANDATE_DPOP_OK ? jti_claimed(req, p, why_r) : out;
}

/* A proof's refusal answered (audited as event) as out says. */
static void proof_refuse(mandate_http_request *req, mandate_http_response *resp,
                         mandate_dpop_outcome out, const char *why, const char *event,
                         const char *grant_type, const char *client_id)
{
    mandate_oauth_error oerr;
    if (out == MANDATE_DPOP_TEMPFAIL) {
        mandate_oauth_fail_rc(&oerr, MANDATE_TEMPFAIL);
        oerr.reason = why;
    } else {
        mandate_oauth_fail(
            &oerr, 400, out == MANDATE_DPOP_USE_NONCE ? "use_dpop_nonce" : "invalid_dpop_proof",
            why);
    }
    mandate_oauth_refuse(req, resp, event, &oerr, grant_type, client_id, NULL);
}

bool mandate_dpop_token_request(mandate_http_request *req, mandate_http_response *resp,
                                const char *grant_type)
{
    return mandate_dpop_endpoint_request(req, resp, "/oauth2/token", "token.refused",
                                         grant_type);
}

bool mandate_dpop_endpoint_request(mandate_http_request *req, mandate_http_response *resp,
                                   const char *path, const char *event, const char *grant_type)
{
    req->dpop_jkt = NULL;
    req->dpop_proof = NULL;
    if (mandate_http_request_header(req, "DPoP") == NULL)
        return true;
    mandate_dpop_proof *p = mandate_pool_alloc(req->pool, sizeof(*p));
    const char *why = NULL;
    /* htu: the endpoint as the metadata names it, or its alias for clients
     * with a certificate (RFC 8705 §5, server.mtls_base_url) */
    mandate_dpop_outcome out =
        proof_verified(req, "POST", mandate_oauth_endpoint_url(req, path),
                       mandate_mtls_endpoint_alias(req, path), NULL, p, &why);
    if (out != MANDATE_DPOP_OK)
        proof_refuse(req, resp, out, why, event, grant_type, NULL);
    /* RFC 9449 §8.2: a fresh nonce on every answer to a proof, when on */
    const char *nonce = nonce_fresh(req);
    if (nonce != NULL)
        mandate_http_response_header(resp, "DPoP-Nonce", nonce);
    /* the jti is claimed once the client is authenticated: a caller
     * without credentials costs no store write */
    if (out == MANDATE_DPOP_OK)
        req->dpop_proof = p;
    return out == MANDATE_DPOP_OK;
}

bool mandate_dpop_request_claim(mandate_http_request *req, mandate_http_response *resp,
                                const char *event, const char *grant_type,
                                const char *client_id)
{
    mandate_dpop_proof *p = req->dpop_proof;
    if (p == NULL)
        return true;
    req->dpop_proof = NULL;
    const char *why = NULL;
    mandate_dpop_outcome out = jti_claimed(req, p, &why);
    if (out != MANDATE_DPOP_OK) { /* the answer has its DPoP-Nonce already */
        proof_refuse(req, resp, out, why, event, grant_type, client_id);
        return false;
    }
    req->dpop_jkt = mandate_pool_strdup(req->pool, p->jkt);
    return true;
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

mandate_dpop_outcome mandate_dpop_gateway_proof(mandate_http_request *req,
                                                const mandate_target *t, const char *raw_path,
                                                const char *token, const char *jkt,
                                                const char **why_r)
{
    const char *method = mandate_http_request_header(req, "X-Original-Method");
    if (t->public_url == NULL) {
        *why_r = "the target has no public_url to check a DPoP proof's htu against";
        return MANDATE_DPOP_REFUSED;
    }
    if (method == NULL || raw_path == NULL) {
        *why_r = "the gateway did not send the original method and URI (X-Original-Method, "
                 "X-Original-URI)";
        return MANDATE_DPOP_REFUSED;
    }
    /* public_url is scheme://host[:port]; the path as the client sent it */
    size_t base = strlen(t->public_url);
    while (base > 0 && t->public_url[base - 1] == '/')
        base--;
    const char *uri =
        mandate_pool_printf(req->pool, "%.*s%s", (int)base, t->public_url, raw_path);
    mandate_dpop_proof p;
    mandate_dpop_outcome out = proof_checked(req, method, uri, token, &p, why_r);
    if (out == MANDATE_DPOP_OK && strcmp(p.jkt, jkt) != 0) {
        *why_r = "the DPoP proof is by another key than the one the token is bound to";
        return MANDATE_DPOP_REFUSED;
    }
    return out;
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
    const char *nonce = nonce_fresh(req);
    if (nonce != NULL)
        mandate_http_response_header(resp, "DPoP-Nonce", nonce);
    mandate_http_response_header(resp, "Cache-Control", "no-store");
}
