/* mandate_token_source: the OAuth 2.0 client credentials grant
 * (RFC 6749 §4.4) with client_secret_basic, and a cache of the token.
 *
 * The cache holds one token with the time it was asked for (issued_at) and
 * its expiry. A get hands out a copy while the token is fresh; once
 * refresh_at of its lifetime has passed (or it expired) the caller fetches a
 * new one. Single flight: one caller fetches, with the lock released, and
 * sets `fetching`; callers that have no valid token meanwhile wait on a
 * condition variable for its result (the error too, when it fails), and
 * callers that still hold a valid token are handed that one at once instead
 * of queueing behind the network. A refresh that fails while the cached
 * token is still valid is not an error: the agent keeps working through a
 * broker blip until the token really expires, and the next attempt waits
 * RETRY_S so that every call does not stall on a down broker.
 *
 * The client secret is kept only inside the prepared Authorization value,
 * which is wiped on free like the token. Neither ever goes to errbuf.
 *
 * DPoP (RFC 9449): with a proof key, each token request carries a fresh
 * proof (htm POST, htu the token URL, the server's nonce once it sent one).
 * A 400 use_dpop_nonce is retried once with the DPoP-Nonce that came with
 * it, and the last nonce the broker sent is kept for the next request, so
 * that a broker with dpop.nonce on costs one extra round trip per source,
 * not per token. The token's type (DPoP or Bearer) is kept with it and
 * decides the headers of resource requests; the resource server's nonce
 * is kept apart from the broker's. */
#include "config.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "dpop-key.h"
#include "http-client.h"
#include "text-encoding.h"

#define DEFAULT_REFRESH_AT 0.8
#define DEFAULT_TIMEOUT_MS 10000L
/* RFC 6749 §5.1 makes expires_in optional; assume a short life without it. */
#define DEFAULT_EXPIRES_IN 300
/* Longest lifetime believed: keeps issued_at + expires_in far from overflow. */
#define MAX_EXPIRES_IN (400L * 24 * 3600)
/* After a failed refresh, a still-valid token is used this long before the
 * next attempt. */
#define RETRY_S 5
#define ERR_MAX 256

struct mandate_token_source {
    char *token_url;
    char *body;          /* grant_type=client_credentials[&scope=..][&resource=..] */
    char *authorization; /* "Basic ...": holds the secret; wiped on free */
    size_t authorization_len;
    double refresh_at;
    long timeout_ms;
    int64_t (*now)(void *ctx);
    void *now_ctx;
    _Atomic uint64_t fetches;
    mandate_dpop_key *dpop_key; /* NULL: bearer tokens */
    char *tls_client_cert, *tls_client_key, *tls_ca_file;
    /* the broker's last DPoP-Nonce: only the one fetch in flight uses it */
    char as_nonce[MANDATE_CLIENT_HTTP_NONCE_MAX + 1];

    pthread_mutex_t lock;
    pthread_cond_t fetched;
    /* under lock */
    bool fetching;
    uint64_t fetch_seq; /* completed fetches: a waiter knows its one is done */
    mandate_client_rc fetch_rc;
    char fetch_err[ERR_MAX];
    int64_t retry_after;
    char *token; /* NULL: none yet */
    size_t token_len;
    bool token_dpop; /* token_type DPoP */
    int64_t issued_at, expires_at;
    char resource_nonce[MANDATE_CLIENT_HTTP_NONCE_MAX + 1]; /* a resource's last DPoP-Nonce */
};

/* --- encoding ----------------------------------------------------------------- */

/* application/x-www-form-urlencoded (RFC 6749 Appendix B): unreserved
 * characters as they are, space as '+', everything else %XX. malloc'd. */
static char *form_encode(const char *s)
{
    char *out = malloc(strlen(s) * 3 + 1);
    return out != NULL ? mandate_percent_encode(s, true, out) : NULL;
}

static void wipe_free(char *s)
{
    if (s != NULL)
        OPENSSL_clear_free(s, strlen(s));
}

/* RFC 6749 §2.3.1: "Basic " + base64(urlencode(id) ":" urlencode(secret)). */
static char *basic_authorization(const char *client_id, const char *secret)
{
    char *id = form_encode(client_id), *pw = form_encode(secret);
    char *pair = NULL, *out = NULL;
    size_t pair_len = 0;
    if (id != NULL && pw != NULL) {
        pair_len = strlen(id) + 1 + strlen(pw);
        pair = malloc(pair_len + 1);
    }
    if (pair != NULL) {
        snprintf(pair, pair_len + 1, "%s:%s", id, pw);
        size_t b64_len = 4 * ((pair_len + 2) / 3);
        out = malloc(strlen("Basic ") + b64_len + 1);
        if (out != NULL) {
            memcpy(out, "Basic ", 6);
            EVP_EncodeBlock((unsigned char *)out + 6, (const unsigned char *)pair,
                            (int)pair_len);
        }
        OPENSSL_clear_free(pair, pair_len + 1);
    }
    wipe_free(id);
    wipe_free(pw);
    return out;
}

static bool append_param(char **body, const char *name, const char *value)
{
    char *enc = form_encode(value);
    if (enc == NULL)
        return false;
    size_t n = strlen(*body) + 1 + strlen(name) + 1 + strlen(enc) + 1;
    char *next = malloc(n);
    if (next != NULL)
        snprintf(next, n, "%s&%s=%s", *body, name, enc);
    free(enc);
    if (next == NULL)
        return false;
    free(*body);
    *body = next;
    return true;
}

/* Server text (error, error_description) made safe for errbuf: printable
 * ASCII only, bounded. */
static void printable(const char *in, char *out, size_t cap)
{
    size_t j = 0;
    for (; in != NULL && *in != '\0' && j + 1 < cap; in++)
        out[j++] = (*in >= 0x20 && *in < 0x7f) ? *in : '?';
    out[j] = '\0';
}

/* --- new and free ------------------------------------------------------------- */

static void free_settings(mandate_token_source *s)
{
    free(s->token_url);
    free(s->body);
    free(s->tls_client_cert);
    free(s->tls_client_key);
    free(s->tls_ca_file);
    mandate_dpop_key_free(&s->dpop_key);
}

mandate_token_source *mandate_token_source_new(const mandate_token_source_config *config,
                                               char *errbuf, size_t errlen)
{
    if (config == NULL) {
        mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_INVALID, "no configuration");
        return NULL;
    }
    const char *why = NULL;
    if (!mandate_client_url_ok(config->token_url))
        why = "token_url must be an http:// or https:// URL";
    else if (config->client_id == NULL || config->client_id[0] == '\0')
        why = "client_id is required";
    else if (config->client_secret == NULL || config->client_secret[0] == '\0')
        why = "client_secret is required";
    else if (config->refresh_at != 0 && (!isfinite(config->refresh_at) ||
                                         config->refresh_at <= 0 || config->refresh_at > 1))
        why = "refresh_at must be a fraction above 0 and at most 1";
    else if (config->timeout_ms < 0)
        why = "timeout_ms must not be negative";
    else if ((config->tls_client_cert == NULL) != (config->tls_client_key == NULL))
        why = "tls_client_cert and tls_client_key go together";
    if (why != NULL) {
        mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_INVALID, "%s", why);
        return NULL;
    }

    mandate_token_source *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_ERROR, "out of memory");
        return NULL;
    }
    s->refresh_at = config->refresh_at != 0 ? config->refresh_at : DEFAULT_REFRESH_AT;
    s->timeout_ms = config->timeout_ms != 0 ? config->timeout_ms : DEFAULT_TIMEOUT_MS;
    s->now = config->now != NULL ? config->now : mandate_client_real_now;
    s->now_ctx = config->now_ctx;
    atomic_init(&s->fetches, 0);
    s->token_url = strdup(config->token_url);
    s->body = strdup("grant_type=client_credentials");
    s->authorization = basic_authorization(config->client_id, config->client_secret);
    bool ok = s->token_url != NULL && s->body != NULL && s->authorization != NULL;
    if (config->dpop_key != NULL)
        s->dpop_key = libmandate_dpop_key_ref(config->dpop_key);
    if (ok && config->tls_client_cert != NULL)
        ok = (s->tls_client_cert = strdup(config->tls_client_cert)) != NULL &&
             (s->tls_client_key = strdup(config->tls_client_key)) != NULL;
    if (ok && config->tls_ca_file != NULL)
        ok = (s->tls_ca_file = strdup(config->tls_ca_file)) != NULL;
    if (ok && config->scope != NULL && config->scope[0] != '\0')
        ok = append_param(&s->body, "scope", config->scope);
    if (ok && config->resource != NULL && config->resource[0] != '\0')
        ok = append_param(&s->body, "resource", config->resource);
    int mutex_rc = ok ? pthread_mutex_init(&s->lock, NULL) : -1;
    int cond_rc = mutex_rc == 0 ? pthread_cond_init(&s->fetched, NULL) : -1;
    if (!ok || mutex_rc != 0 || cond_rc != 0) {
        if (mutex_rc == 0)
            pthread_mutex_destroy(&s->lock);
        free_settings(s);
        wipe_free(s->authorization);
        free(s);
        mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_ERROR,
                            ok ? "cannot initialise a mutex or condition variable"
                               : "out of memory");
        return NULL;
    }
    s->authorization_len = strlen(s->authorization);
    return s;
}

void mandate_token_source_free(mandate_token_source **source)
{
    if (source == NULL || *source == NULL)
        return;
    mandate_token_source *s = *source;
    *source = NULL;
    pthread_cond_destroy(&s->fetched);
    pthread_mutex_destroy(&s->lock);
    if (s->token != NULL)
        OPENSSL_clear_free(s->token, s->token_len + 1);
    OPENSSL_clear_free(s->authorization, s->authorization_len + 1);
    free_settings(s);
    free(s);
}

uint64_t mandate_token_source_fetches(const mandate_token_source *source)
{
    return source != NULL ? atomic_load(&source->fetches) : 0;
}

/* --- one request -------------------------------------------------------------- */

typedef struct fetched_token {
    char *token;
    size_t len;
    bool dpop;
    int64_t issued_at, expires_at;
} fetched_token;

static mandate_client_rc parse_success(const json_t *doc, int64_t issued_at, bool dpop_asked,
                                       fetched_token *out, char *err, size_t errlen)
{
    const json_t *at = json_object_get(doc, "access_token");
    const json_t *type = json_object_get(doc, "token_type");
    const json_t *expires = json_object_get(doc, "expires_in");
    if (!json_is_string(at) || json_string_length(at) == 0)
        return mandate_client_fail(err, errlen, MANDATE_CLIENT_UNAVAILABLE,
                                   "token endpoint: the response has no access_token");
    if (strlen(json_string_value(at)) != json_string_length(at))
        return mandate_client_fail(err, errlen, MANDATE_CLIENT_UNAVAILABLE,
                                   "token endpoint: access_token holds a NUL");
    /* RFC 9449 §5: DPoP only when a proof was sent; a broker may still
     * answer Bearer to one (the token then goes as a bearer token) */
    out->dpop = json_is_string(type) && strcasecmp(json_string_value(type), "DPoP") == 0;
    if (out->dpop && !dpop_asked)
        return mandate_client_fail(err, errlen, MANDATE_CLIENT_UNAVAILABLE,
                                   "token endpoint: token_type is DPoP, and no proof was sent");
    if (!out->dpop &&
        (!json_is_string(type) || strcasecmp(json_string_value(type), "Bearer") != 0))
        return mandate_client_fail(err, errlen, MANDATE_CLIENT_UNAVAILABLE,
                                   "token endpoint: token_type is not Bearer%s",
                                   dpop_asked ? " or DPoP" : "");
    json_int_t lifetime = DEFAULT_EXPIRES_IN;
    if (expires != NULL) {
        if (!json_is_integer(expires) || json_integer_value(expires) <= 0)
            return mandate_client_fail(err, errlen, MANDATE_CLIENT_UNAVAILABLE,
                                       "token endpoint: expires_in is not a positive integer");
        lifetime = json_integer_value(expires);
        if (lifetime > MAX_EXPIRES_IN)
            lifetime = MAX_EXPIRES_IN;
    }
    out->len = json_string_length(at);
    out->token = malloc(out->len + 1);
    if (out->token == NULL)
        return mandate_client_fail(err, errlen, MANDATE_CLIENT_ERROR, "out of memory");
    memcpy(out->token, json_string_value(at), out->len + 1);
    out->issued_at = issued_at;
    out->expires_at = issued_at + (int64_t)lifetime;
    return MANDATE_CLIENT_OK;
}

static mandate_client_rc parse_failure(long status, const json_t *doc, char *err, size_t errlen)
{
    const char *error = json_string_value(json_object_get(doc, "error"));
    const char *desc = json_string_value(json_object_get(doc, "error_description"));
    char e[64], d[160];
    printable(error, e, sizeof(e));
    printable(desc, d, sizeof(d));
    if (status >= 400 && status < 500 && status != 408 && status != 429) {
        if (error != NULL)
            return mandate_client_fail(err, errlen, MANDATE_CLIENT_DENIED, "%s%s%s", e,
                                       desc != NULL ? ": " : "", d);
        return mandate_client_fail(err, errlen, MANDATE_CLIENT_DENIED,
                                   "token endpoint: HTTP %ld", status);
    }
    if (status >= 300 && status < 400)
        return mandate_client_fail(err, errlen, MANDATE_CLIENT_UNAVAILABLE,
                                   "token endpoint: HTTP %ld (redirects are not followed)",
                                   status);
    return mandate_client_fail(
        err, errlen, MANDATE_CLIENT_UNAVAILABLE, "token endpoint: HTTP %ld%s%s%s%s", status,
        error != NULL ? ": " : "", e, desc != NULL && error != NULL ? ": " : "",
        error != NULL ? d : "");
}

/* A request with the source's TLS settings. */
static mandate_client_http_request request_of(const mandate_token_source *s, const char *url)
{
    mandate_client_http_request req = {.url = url,
                                       .timeout_ms = s->timeout_ms,
                                       .tls_client_cert = s->tls_client_cert,
                                       .tls_client_key = s->tls_client_key,
                                       .tls_ca_file = s->tls_ca_file};
    return req;
}

/* Whether a 400 from the token endpoint is use_dpop_nonce (RFC 9449 §8). */
static bool asks_for_nonce(const mandate_client_http_response *resp)
{
    if (resp->status != 400 || resp->dpop_nonce[0] == '\0')
        return false;
    json_t *doc = json_loadb(resp->body, resp->len, 0, NULL);
    const char *error = json_string_value(json_object_get(doc, "error"));
    bool yes = error != NULL && strcmp(error, "use_dpop_nonce") == 0;
    json_decref(doc);
    return yes;
}

/* One token request (two when the broker asks for a nonce). */
static mandate_client_rc post_token_request(mandate_token_source *s,
                                            mandate_client_http_response *resp, char *err,
                                            size_t errlen)
{
    mandate_client_http_request req = request_of(s, s->token_url);
    req.authorization = s->authorization;
    req.body = s->body;
    for (int attempt = 0;; attempt++) {
        char *proof = NULL;
        if (s->dpop_key != NULL) {
            mandate_client_rc prc = mandate_dpop_key_proof(
                s->dpop_key, "POST", s->token_url, NULL,
                s->as_nonce[0] != '\0' ? s->as_nonce : NULL, &proof, err, errlen);
            if (prc != MANDATE_CLIENT_OK)
                return prc;
        }
        req.dpop = proof;
        atomic_fetch_add(&s->fetches, 1);
        mandate_client_rc rc = mandate_client_http_send(&req, resp, err, errlen);
        free(proof);
        if (rc != MANDATE_CLIENT_OK)
            return rc;
        if (s->dpop_key == NULL)
            return rc;
        bool retry =
            attempt == 0 && asks_for_nonce(resp) && strcmp(resp->dpop_nonce, s->as_nonce) != 0;
        /* RFC 9449 §8.2: the broker may send a fresh nonce with any answer */
        if (resp->dpop_nonce[0] != '\0')
            memcpy(s->as_nonce, resp->dpop_nonce, sizeof(s->as_nonce));
        if (!retry)
            return rc;
        mandate_client_http_response_clear(resp);
    }
}

static mandate_client_rc fetch(mandate_token_source *s, fetched_token *out, char *err,
                               size_t errlen)
{
    mandate_client_http_response resp;
    memset(out, 0, sizeof(*out));
    int64_t issued_at = s->now(s->now_ctx);
    mandate_client_rc rc = post_token_request(s, &resp, err, errlen);
    if (rc != MANDATE_CLIENT_OK) {
        if (rc == MANDATE_CLIENT_UNAVAILABLE && err != NULL) {
            char why[ERR_MAX];
            snprintf(why, sizeof(why), "%s", err);
            mandate_client_fail(err, errlen, rc, "token endpoint: %s", why);
        }
        return rc;
    }
    json_error_t jerr;
    json_t *doc = json_loadb(resp.body, resp.len, JSON_REJECT_DUPLICATES, &jerr);
    if (resp.status == 200) {
        if (!json_is_object(doc))
            rc = mandate_client_fail(err, errlen, MANDATE_CLIENT_UNAVAILABLE,
                                     "token endpoint: the response is not a JSON object");
        else
            rc = parse_success(doc, issued_at, s->dpop_key != NULL, out, err, errlen);
    } else {
        rc = parse_failure(resp.status, json_is_object(doc) ? doc : NULL, err, errlen);
    }
    /* the document holds the token: jansson does not wipe, so at least
     * overwrite the string before it goes */
    json_t *at = json_object_get(doc, "access_token");
    if (json_is_string(at) && json_string_length(at) > 0)
        OPENSSL_cleanse((void *)json_string_value(at), json_string_length(at));
    json_decref(doc);
    mandate_client_http_response_clear(&resp);
    return rc;
}

/* --- get ---------------------------------------------------------------------- */

/* Under the lock. */
static bool token_valid(const mandate_token_source *s, int64_t now)
{
    return s->token != NULL && now < s->expires_at;
}

static bool token_fresh(const mandate_token_source *s, int64_t now)
{
    if (!token_valid(s, now))
        return false;
    double lifetime = (double)(s->expires_at - s->issued_at);
    return (double)now < (double)s->issued_at + s->refresh_at * lifetime;
}

/* Under the lock: a copy of the cached token for the caller. */
static mandate_client_rc hand_out(const mandate_token_source *s, char **token_r,
                                  int64_t *expires_at_r, bool *dpop_r, char *errbuf,
                                  size_t errlen)
{
    char *copy = malloc(s->token_len + 1);
    if (copy == NULL)
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_ERROR, "out of memory");
    memcpy(copy, s->token, s->token_len + 1);
    *token_r = copy;
    if (expires_at_r != NULL)
        *expires_at_r = s->expires_at;
    if (dpop_r != NULL)
        *dpop_r = s->token_dpop;
    return MANDATE_CLIENT_OK;
}

/* mandate_token_source_get, telling too whether the token is DPoP-bound. */
static mandate_client_rc get_token(mandate_token_source *source, char **token_r,
                                   int64_t *expires_at_r, bool *dpop_r, char *errbuf,
                                   size_t errlen)
{
    mandate_token_source *s = source;
    if (token_r != NULL)
        *token_r = NULL;
    if (expires_at_r != NULL)
        *expires_at_r = 0;
    if (s == NULL || token_r == NULL)
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_INVALID,
                                   "no token source or no place for the token");

    mandate_client_rc rc;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        int64_t now = s->now(s->now_ctx);
        if (token_fresh(s, now) ||
            (token_valid(s, now) && (s->fetching || now < s->retry_after))) {
            rc = hand_out(s, token_r, expires_at_r, dpop_r, errbuf, errlen);
            break;
        }
        if (s->fetching) {
            /* no valid token: wait for the fetch in flight, then take its
             * token or its error */
            uint64_t seq = s->fetch_seq;
            while (s->fetching && s->fetch_seq == seq)
                pthread_cond_wait(&s->fetched, &s->lock);
            now = s->now(s->now_ctx);
            if (token_valid(s, now)) {
                rc = hand_out(s, token_r, expires_at_r, dpop_r, errbuf, errlen);
                break;
            }
            if (s->fetch_rc != MANDATE_CLIENT_OK) {
                rc = mandate_client_fail(errbuf, errlen, s->fetch_rc, "%s", s->fetch_err);
                break;
            }
            continue;
        }

        s->fetching = true;
        pthread_mutex_unlock(&s->lock);
        fetched_token t;
        char err[ERR_MAX] = "";
        mandate_client_rc frc = fetch(s, &t, err, sizeof(err));
        pthread_mutex_lock(&s->lock);
        s->fetching = false;
        s->fetch_seq++;
        s->fetch_rc = frc;
        snprintf(s->fetch_err, sizeof(s->fetch_err), "%s", err);
        if (frc == MANDATE_CLIENT_OK) {
            if (s->token != NULL)
                OPENSSL_clear_free(s->token, s->token_len + 1);
            s->token = t.token;
            s->token_len = t.len;
            s->token_dpop = t.dpop;
            s->issued_at = t.issued_at;
            s->expires_at = t.expires_at;
            s->retry_after = 0;
        } else {
            s->retry_after = s->now(s->now_ctx) + RETRY_S;
        }
        pthread_cond_broadcast(&s->fetched);
        now = s->now(s->now_ctx);
        if (frc == MANDATE_CLIENT_OK || token_valid(s, now))
            rc = hand_out(s, token_r, expires_at_r, dpop_r, errbuf, errlen);
        else
            rc = mandate_client_fail(errbuf, errlen, frc, "%s", err);
        break;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

mandate_client_rc mandate_token_source_get(mandate_token_source *source, char **token_r,
                                           int64_t *expires_at_r, char *errbuf, size_t errlen)
{
    return get_token(source, token_r, expires_at_r, NULL, errbuf, errlen);
}

const char *mandate_token_source_token_type(mandate_token_source *source)
{
    if (source == NULL)
        return "Bearer";
    pthread_mutex_lock(&source->lock);
    bool dpop = source->token != NULL && source->token_dpop;
    pthread_mutex_unlock(&source->lock);
    return dpop ? "DPoP" : "Bearer";
}

/* --- resource requests -------------------------------------------------------- */

mandate_client_rc mandate_token_source_headers(mandate_token_source *source, const char *method,
                                               const char *uri, const char *nonce,
                                               char **authorization_r, char **dpop_r,
                                               char *errbuf, size_t errlen)
{
    if (authorization_r != NULL)
        *authorization_r = NULL;
    if (dpop_r != NULL)
        *dpop_r = NULL;
    if (source == NULL || authorization_r == NULL || dpop_r == NULL || method == NULL ||
        !mandate_client_url_ok(uri))
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_INVALID,
                                   "headers need a source, a method, an http(s) URI and "
                                   "places for both headers");
    char *token = NULL;
    bool dpop = false;
    mandate_client_rc rc = get_token(source, &token, NULL, &dpop, errbuf, errlen);
    if (rc != MANDATE_CLIENT_OK)
        return rc;
    char resource_nonce[MANDATE_CLIENT_HTTP_NONCE_MAX + 1];
    if (dpop && nonce == NULL) {
        pthread_mutex_lock(&source->lock);
        memcpy(resource_nonce, source->resource_nonce, sizeof(resource_nonce));
        pthread_mutex_unlock(&source->lock);
        if (resource_nonce[0] != '\0')
            nonce = resource_nonce;
    }
    if (dpop)
        rc = mandate_dpop_key_proof(source->dpop_key, method, uri, token, nonce, dpop_r, errbuf,
                                    errlen);
    size_t n = strlen("Bearer ") + strlen(token) + 1;
    char *authorization = rc == MANDATE_CLIENT_OK ? malloc(n) : NULL;
    if (authorization != NULL)
        snprintf(authorization, n, "%s %s", dpop ? "DPoP" : "Bearer", token);
    else if (rc == MANDATE_CLIENT_OK)
        rc = mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_ERROR, "out of memory");
    wipe_free(token);
    if (rc != MANDATE_CLIENT_OK) {
        free(*dpop_r);
        *dpop_r = NULL;
        return rc;
    }
    *authorization_r = authorization;
    return MANDATE_CLIENT_OK;
}

mandate_client_rc mandate_token_source_request(mandate_token_source *source, const char *method,
                                               const char *url, const char *body,
                                               const char *content_type, long *status_r,
                                               char **body_r, char *errbuf, size_t errlen)
{
    if (status_r != NULL)
        *status_r = 0;
    if (body_r != NULL)
        *body_r = NULL;
    if (status_r == NULL)
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_INVALID,
                                   "no place for the status");
    const char *nonce = NULL;
    char sent_nonce[MANDATE_CLIENT_HTTP_NONCE_MAX + 1] = "";
    for (int attempt = 0;; attempt++) {
        char *authorization = NULL, *proof = NULL;
        mandate_client_rc rc = mandate_token_source_headers(
            source, method, url, nonce, &authorization, &proof, errbuf, errlen);
        if (rc != MANDATE_CLIENT_OK)
            return rc;
        mandate_client_http_request req = request_of(source, url);
        req.method = method;
        req.authorization = authorization;
        req.dpop = proof;
        req.body = body;
        req.content_type =
            body != NULL && content_type == NULL ? "application/json" : content_type;
        mandate_client_http_response resp;
        rc = mandate_client_http_send(&req, &resp, errbuf, errlen);
        wipe_free(authorization);
        free(proof);
        if (rc != MANDATE_CLIENT_OK)
            return rc;
        /* RFC 9449 §9: a resource's nonce, kept for the source's next proofs */
        bool retry = false;
        if (resp.dpop_nonce[0] != '\0') {
            pthread_mutex_lock(&source->lock);
            memcpy(source->resource_nonce, resp.dpop_nonce, sizeof(source->resource_nonce));
            pthread_mutex_unlock(&source->lock);
            retry = attempt == 0 && resp.status == 401 && resp.use_dpop_nonce &&
                    strcmp(resp.dpop_nonce, sent_nonce) != 0;
            memcpy(sent_nonce, resp.dpop_nonce, sizeof(sent_nonce));
            nonce = sent_nonce;
        }
        if (retry) {
            mandate_client_http_response_clear(&resp);
            continue;
        }
        *status_r = resp.status;
        if (body_r != NULL) {
            *body_r = resp.body;
            resp.body = NULL;
        }
        mandate_client_http_response_clear(&resp);
        return MANDATE_CLIENT_OK;
    }
}
