/* mandate_verifier: checks RFC 9068 JWT access tokens for a resource server.
 *
 * Keys: on first use the verifier reads the issuer's RFC 8414 metadata
 * (<issuer>/.well-known/oauth-authorization-server, whose "issuer" must be
 * the configured one), then its jwks_uri. The usable keys with a kid become
 * an immutable key set with a reference count: a check holds a reference
 * for its length, so a refetch on another thread swaps in the new set at
 * once and the old one goes with its last user. A set is used for
 * jwks_max_age; a token with a kid the set lacks makes the verifier refetch,
 * and then look once more.
 *
 * Fetches: one at a time (callers that need its result wait on a condition
 * variable; callers with a usable, merely old set go on with it), and at
 * most one per min_refetch_interval whatever asked for it, so a flood of
 * tokens with made-up kids cannot make the verifier hammer the broker. A
 * failed refetch keeps the set in hand; with no set at all the check answers
 * MANDATE_CLIENT_UNAVAILABLE: a token is never accepted unverified.
 *
 * The header's kid picks the key and the key alone decides the algorithm
 * (mandate_jws_verify refuses a header alg that is not the key's), so
 * neither "none" nor an HMAC keyed with a public key can pass. */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "jose-private.h"
#include "libmandate-private.h"

#define DEFAULT_JWKS_MAX_AGE 300
#define DEFAULT_MIN_REFETCH 10
#define DEFAULT_LEEWAY 5
#define DEFAULT_TIMEOUT_MS 5000L
#define METADATA_PATH "/.well-known/oauth-authorization-server"
#define JWT_TYP "at+jwt"
/* More keys than any rotation schedule publishes: a bound, not a limit. */
#define MAX_KEYS 256
#define MAX_KID 256
#define ERR_MAX 256

struct vkey {
    char *kid;
    EVP_PKEY *pkey;
};

/* Immutable once published; freed when its last reference goes. */
struct keyset {
    atomic_size_t refs;
    int64_t fetched_at;
    size_t n;
    struct vkey keys[];
};

struct mandate_verifier {
    char *issuer;
    char *audience;
    char *metadata_url;
    long jwks_max_age, min_refetch_interval, leeway, timeout_ms;
    int64_t (*now)(void *ctx);
    void *now_ctx;
    _Atomic uint64_t jwks_fetches;

    pthread_mutex_t lock;
    pthread_cond_t fetched;
    /* under lock */
    char *jwks_uri; /* from the metadata; NULL: read the metadata first */
    struct keyset *keys;
    bool fetching;
    bool attempted;
    int64_t last_attempt;
    mandate_client_rc fetch_rc;
    char fetch_err[ERR_MAX];
};

/* --- key sets --------------------------------------------------------------- */

static void keyset_unref(struct keyset **ksp)
{
    struct keyset *ks = *ksp;
    *ksp = NULL;
    if (ks == NULL || atomic_fetch_sub(&ks->refs, 1) != 1)
        return;
    for (size_t i = 0; i < ks->n; i++) {
        EVP_PKEY_free(ks->keys[i].pkey);
        free(ks->keys[i].kid);
    }
    free(ks);
}

static const struct vkey *keyset_find(const struct keyset *ks, const char *kid)
{
    for (size_t i = 0; ks != NULL && i < ks->n; i++)
        if (strcmp(ks->keys[i].kid, kid) == 0)
            return &ks->keys[i];
    return NULL;
}

/* A key set from a JWK set document. Keys without a kid, of a type or size
 * the JOSE helpers refuse, or with a kid seen before are skipped. */
static mandate_client_rc keyset_from_jwks(const json_t *doc, int64_t now,
                                          struct keyset **ks_r, char *err, size_t errlen)
{
    const json_t *list = json_object_get(doc, "keys");
    *ks_r = NULL;
    if (!json_is_array(list))
        return mandate_client_fail(err, errlen, MANDATE_CLIENT_UNAVAILABLE,
                                   "JWKS: no \"keys\" array");
    size_t cap = json_array_size(list) < MAX_KEYS ? json_array_size(list) : MAX_KEYS;
    struct keyset *ks = calloc(1, sizeof(*ks) + cap * sizeof(ks->keys[0]));
    if (ks == NULL)
        return mandate_client_fail(err, errlen, MANDATE_CLIENT_ERROR, "out of memory");
    atomic_init(&ks->refs, 1);
    ks->fetched_at = now;
    for (size_t i = 0; i < cap; i++) {
        const json_t *jwk = json_array_get(list, i);
        const char *kid = json_string_value(json_object_get(jwk, "kid"));
        if (kid == NULL || kid[0] == '\0' || strlen(kid) > MAX_KID ||
            keyset_find(ks, kid) != NULL)
            continue;
        mandate_error jerr = {0};
        EVP_PKEY *pkey = mandate_jwk_to_key(jwk, &jerr);
        if (pkey == NULL)
            continue;
        if (mandate_jws_alg_for_key(pkey) == MANDATE_JWS_NONE ||
            (ks->keys[ks->n].kid = strdup(kid)) == NULL) {
            EVP_PKEY_free(pkey);
            continue;
        }
        ks->keys[ks->n++].pkey = pkey;
    }
    if (ks->n == 0) {
        keyset_unref(&ks);
        return mandate_client_fail(err, errlen, MANDATE_CLIENT_UNAVAILABLE,
                                   "JWKS: no usable key");
    }
    *ks_r = ks;
    return MANDATE_CLIENT_OK;
}

/* --- fetching ----------------------------------------------------------------- */

/* GET url and parse a JSON object. what names the document in errors. */
static mandate_client_rc get_json(const mandate_verifier *v, const char *url,
                                  const char *what, json_t **doc_r, char *err, size_t errlen)
{
    mandate_client_http_response resp;
    char why[ERR_MAX];
    *doc_r = NULL;
    mandate_client_rc rc = mandate_client_http_get(url, v->timeout_ms, &resp, why, sizeof(why));
    if (rc != MANDATE_CLIENT_OK)
        return mandate_client_fail(err, errlen, rc, "%s: %s", what, why);
    if (resp.status != 200) {
        rc = mandate_client_fail(err, errlen, MANDATE_CLIENT_UNAVAILABLE, "%s: HTTP %ld", what,
                                 resp.status);
    } else {
        json_t *doc = json_loadb(resp.body, resp.len, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(doc)) {
            json_decref(doc);
            rc = mandate_client_fail(err, errlen, MANDATE_CLIENT_UNAVAILABLE,
                                     "%s: not a JSON object", what);
        } else {
            *doc_r = doc;
        }
    }
    mandate_client_http_response_clear(&resp);
    return rc;
}

/* The metadata's jwks_uri (malloc'd), after checking its issuer. */
static mandate_client_rc fetch_jwks_uri(const mandate_verifier *v, char **uri_r, char *err,
                                        size_t errlen)
{
    json_t *doc;
    *uri_r = NULL;
    mandate_client_rc rc = get_json(v, v->metadata_url, "metadata", &doc, err, errlen);
    if (rc != MANDATE_CLIENT_OK)
        return rc;
    const char *issuer = json_string_value(json_object_get(doc, "issuer"));
    const char *uri = json_string_value(json_object_get(doc, "jwks_uri"));
    if (issuer == NULL || strcmp(issuer, v->issuer) != 0)
        rc = mandate_client_fail(err, errlen, MANDATE_CLIENT_INVALID,
                                 "metadata: %s the configured issuer %.100s",
                                 issuer == NULL ? "no issuer, not" : "its issuer is not",
                                 v->issuer);
    else if (!mandate_client_url_ok(uri))
        rc = mandate_client_fail(err, errlen, MANDATE_CLIENT_UNAVAILABLE,
                                 "metadata: jwks_uri is missing or not an http(s) URL");
    else if ((*uri_r = strdup(uri)) == NULL)
        rc = mandate_client_fail(err, errlen, MANDATE_CLIENT_ERROR, "out of memory");
    json_decref(doc);
    return rc;
}

/* Runs without the lock. *uri_io: the known jwks_uri or NULL (then the
 * metadata is read and *uri_io set). */
static mandate_client_rc fetch_keys(mandate_verifier *v, int64_t now, char **uri_io,
                                    struct keyset **ks_r, char *err, size_t errlen)
{
    mandate_client_rc rc;
    *ks_r = NULL;
    if (*uri_io == NULL && (rc = fetch_jwks_uri(v, uri_io, err, errlen)) != MANDATE_CLIENT_OK)
        return rc;
    json_t *doc;
    atomic_fetch_add(&v->jwks_fetches, 1);
    if ((rc = get_json(v, *uri_io, "JWKS", &doc, err, errlen)) != MANDATE_CLIENT_OK)
        return rc;
    rc = keyset_from_jwks(doc, now, ks_r, err, errlen);
    json_decref(doc);
    return rc;
}

/* Under the lock: a new reference to the current set. */
static struct keyset *keyset_ref_locked(mandate_verifier *v)
{
    if (v->keys != NULL)
        atomic_fetch_add(&v->keys->refs, 1);
    return v->keys;
}

/* A key set to look a kid up in, with a reference for the caller.
 * had: the set the caller already looked in without finding the kid (it
 * holds a reference to it), or NULL. With had, a newer set is returned when
 * there is one, or else fetched if the rate limit allows; without, the
 * current set unless it is older than jwks_max_age. */
static mandate_client_rc keyset_acquire(mandate_verifier *v, const struct keyset *had,
                                        struct keyset **ks_r, char *err, size_t errlen)
{
    mandate_client_rc rc = MANDATE_CLIENT_OK;
    *ks_r = NULL;
    pthread_mutex_lock(&v->lock);
    for (;;) {
        int64_t now = v->now(v->now_ctx);
        struct keyset *ks = v->keys;
        bool stale = ks == NULL || now - ks->fetched_at >= v->jwks_max_age;
        if (ks != NULL && ((had != NULL && ks != had) || (had == NULL && !stale))) {
            *ks_r = keyset_ref_locked(v);
            break;
        }
        if (v->fetching) {
            if (ks != NULL && had == NULL) { /* old but usable: someone refreshes it */
                *ks_r = keyset_ref_locked(v);
                break;
            }
            while (v->fetching)
                pthread_cond_wait(&v->fetched, &v->lock);
            continue;
        }
        if (v->attempted && now < v->last_attempt + v->min_refetch_interval) {
            /* no fetch now: the set in hand, unless a kid is missing from
             * it and the last fetch failed (the token may well be good) */
            if (ks != NULL && (had == NULL || v->fetch_rc == MANDATE_CLIENT_OK))
                *ks_r = keyset_ref_locked(v);
            else
                rc = mandate_client_fail(err, errlen,
                                         v->fetch_rc != MANDATE_CLIENT_OK
                                             ? v->fetch_rc
                                             : MANDATE_CLIENT_UNAVAILABLE,
                                         "%s (not retried for %ld s)", v->fetch_err,
                                         v->min_refetch_interval);
            break;
        }

        v->fetching = true;
        v->attempted = true;
        v->last_attempt = now;
        char *uri = v->jwks_uri != NULL ? strdup(v->jwks_uri) : NULL;
        pthread_mutex_unlock(&v->lock);
        struct keyset *fresh = NULL;
        char why[ERR_MAX] = "";
        mandate_client_rc frc = fetch_keys(v, now, &uri, &fresh, why, sizeof(why));
        pthread_mutex_lock(&v->lock);
        v->fetching = false;
        v->fetch_rc = frc;
        snprintf(v->fetch_err, sizeof(v->fetch_err), "%s", why);
        struct keyset *old = NULL;
        if (frc == MANDATE_CLIENT_OK) {
            old = v->keys;
            v->keys = fresh;
            free(v->jwks_uri);
            v->jwks_uri = uri;
        } else {
            /* read the metadata again next time: the JWKS may have moved */
            free(v->jwks_uri);
            v->jwks_uri = NULL;
            free(uri);
        }
        pthread_cond_broadcast(&v->fetched);
        /* a failed refetch for an unknown kid: the token may well be good,
         * it cannot be checked now */
        if (v->keys != NULL && (frc == MANDATE_CLIENT_OK || had == NULL))
            *ks_r = keyset_ref_locked(v);
        else
            rc = mandate_client_fail(err, errlen, frc, "%s", why);
        pthread_mutex_unlock(&v->lock);
        keyset_unref(&old);
        return rc;
    }
    pthread_mutex_unlock(&v->lock);
    return rc;
}

/* --- claims ------------------------------------------------------------------- */

static bool typ_ok(const char *typ)
{
    return typ != NULL &&
           (strcasecmp(typ, JWT_TYP) == 0 || strcasecmp(typ, "application/" JWT_TYP) == 0);
}

static bool aud_ok(const json_t *aud, const char *audience)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), audience) == 0;
    size_t i;
    const json_t *a;
    json_array_foreach(aud, i, a)
    {
        if (json_is_string(a) && strcmp(json_string_value(a), audience) == 0)
            return true;
    }
    return false;
}

/* Whether the space-separated list holds item (len bytes). */
static bool list_has(const char *list, const char *item, size_t len)
{
    const char *p = list;
    while (p != NULL && *p != '\0') {
        p += strspn(p, " ");
        size_t n = strcspn(p, " ");
        if (n == len && memcmp(p, item, len) == 0)
            return true;
        p += n;
    }
    return false;
}

/* A string claim: *value_r NULL when absent; false when present but not a
 * string. */
static bool claim_str(const json_t *claims, const char *name, const char **value_r)
{
    const json_t *v = json_object_get(claims, name);
    *value_r = json_string_value(v);
    return v == NULL || json_is_string(v);
}

static bool claim_int(const json_t *claims, const char *name, bool *present_r,
                      int64_t *value_r)
{
    const json_t *v = json_object_get(claims, name);
    *present_r = v != NULL;
    *value_r = json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
    return v == NULL || json_is_integer(v);
}

static char *dup_or_null(const char *s, bool *oom)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        *oom = true;
    return d;
}

static mandate_client_rc check_claims(const mandate_verifier *v, const json_t *claims,
                                      const char *required_scope, mandate_verified_token *out,
                                      char *errbuf, size_t errlen)
{
    const char *iss, *sub, *client_id, *jti, *scope, *tenant, *actor = NULL;
    bool has_exp, has_iat, has_nbf;
    int64_t exp, iat, nbf;
    if (!claim_str(claims, "iss", &iss) || !claim_str(claims, "sub", &sub) ||
        !claim_str(claims, "client_id", &client_id) || !claim_str(claims, "jti", &jti) ||
        !claim_str(claims, "scope", &scope) || !claim_str(claims, "tenant", &tenant) ||
        !claim_int(claims, "exp", &has_exp, &exp) || !claim_int(claims, "iat", &has_iat, &iat) ||
        !claim_int(claims, "nbf", &has_nbf, &nbf))
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_TOKEN_INVALID,
                                   "token: a claim has the wrong type");
    if (iss == NULL || strcmp(iss, v->issuer) != 0)
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_TOKEN_INVALID,
                                   "token: iss is not %.100s", v->issuer);
    if (!aud_ok(json_object_get(claims, "aud"), v->audience))
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_TOKEN_INVALID,
                                   "token: aud does not hold %.100s", v->audience);
    if (!has_exp || !has_iat || sub == NULL || client_id == NULL || jti == NULL)
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_TOKEN_INVALID,
                                   "token: exp, iat, sub, client_id or jti is missing");
    const json_t *act = json_object_get(claims, "act");
    if (act != NULL && (!json_is_object(act) || !claim_str(act, "sub", &actor) || actor == NULL))
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_TOKEN_INVALID,
                                   "token: act is not an object with a string sub");

    int64_t now = v->now(v->now_ctx), leeway = v->leeway;
    if (exp <= now - leeway)
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_TOKEN_INVALID,
                                   "token: expired %lld s ago", (long long)(now - exp));
    if (has_nbf && nbf > now + leeway)
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_TOKEN_INVALID,
                                   "token: not valid before %lld s from now",
                                   (long long)(nbf - now));
    if (iat > now + leeway)
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_TOKEN_INVALID,
                                   "token: issued %lld s in the future",
                                   (long long)(iat - now));

    for (const char *p = required_scope; p != NULL && *p != '\0';) {
        p += strspn(p, " ");
        size_t n = strcspn(p, " ");
        if (n > 0 && !list_has(scope, p, n))
            return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_INSUFFICIENT_SCOPE,
                                       "token: lacks scope %.*s", n > 100 ? 100 : (int)n, p);
        p += n;
    }

    if (out != NULL) {
        bool oom = false;
        out->subject = dup_or_null(sub, &oom);
        out->client_id = dup_or_null(client_id, &oom);
        out->scope = dup_or_null(scope, &oom);
        out->tenant = dup_or_null(tenant, &oom);
        out->actor = dup_or_null(actor, &oom);
        out->jti = dup_or_null(jti, &oom);
        out->issued_at = iat;
        out->expires_at = exp;
        if (oom) {
            mandate_verified_token_clear(out);
            return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_ERROR, "out of memory");
        }
    }
    return MANDATE_CLIENT_OK;
}

/* --- the API -------------------------------------------------------------------- */

static bool seconds_ok(long value, long dflt, long *out)
{
    if (value < 0)
        return false;
    *out = value != 0 ? value : dflt;
    return true;
}

mandate_verifier *mandate_verifier_new(const mandate_verifier_config *config, char *errbuf,
                                       size_t errlen)
{
    mandate_verifier tmp = {0};
    const char *why = NULL;
    if (config == NULL)
        why = "no configuration";
    else if (!mandate_client_url_ok(config->issuer))
        why = "issuer must be an http:// or https:// URL";
    else if (config->audience == NULL || config->audience[0] == '\0')
        why = "audience is required";
    else if (!seconds_ok(config->jwks_max_age, DEFAULT_JWKS_MAX_AGE, &tmp.jwks_max_age) ||
             !seconds_ok(config->min_refetch_interval, DEFAULT_MIN_REFETCH,
                         &tmp.min_refetch_interval) ||
             !seconds_ok(config->leeway, DEFAULT_LEEWAY, &tmp.leeway) ||
             !seconds_ok(config->timeout_ms, DEFAULT_TIMEOUT_MS, &tmp.timeout_ms))
        why = "jwks_max_age, min_refetch_interval, leeway and timeout_ms must not be negative";
    if (why != NULL) {
        mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_INVALID, "%s", why);
        return NULL;
    }

    mandate_verifier *v = calloc(1, sizeof(*v));
    if (v == NULL) {
        mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_ERROR, "out of memory");
        return NULL;
    }
    v->jwks_max_age = tmp.jwks_max_age;
    v->min_refetch_interval = tmp.min_refetch_interval;
    v->leeway = tmp.leeway;
    v->timeout_ms = tmp.timeout_ms;
    v->now = config->now != NULL ? config->now : mandate_client_real_now;
    v->now_ctx = config->now_ctx;
    atomic_init(&v->jwks_fetches, 0);
    v->issuer = strdup(config->issuer);
    v->audience = strdup(config->audience);
    /* the issuer is a base URL that endpoints are appended to, as the broker
     * serves it: a trailing '/' is not doubled */
    size_t ilen = v->issuer != NULL ? strlen(v->issuer) : 0;
    if (ilen > 0 && v->issuer[ilen - 1] == '/')
        ilen--;
    v->metadata_url = malloc(ilen + sizeof(METADATA_PATH));
    if (v->metadata_url != NULL) {
        memcpy(v->metadata_url, v->issuer, ilen);
        memcpy(v->metadata_url + ilen, METADATA_PATH, sizeof(METADATA_PATH));
    }
    bool ok = v->issuer != NULL && v->audience != NULL && v->metadata_url != NULL;
    int mutex_rc = ok ? pthread_mutex_init(&v->lock, NULL) : -1;
    int cond_rc = mutex_rc == 0 ? pthread_cond_init(&v->fetched, NULL) : -1;
    if (!ok || mutex_rc != 0 || cond_rc != 0) {
        if (mutex_rc == 0)
            pthread_mutex_destroy(&v->lock);
        free(v->issuer);
        free(v->audience);
        free(v->metadata_url);
        free(v);
        mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_ERROR,
                            ok ? "cannot initialise a mutex or condition variable"
                               : "out of memory");
        return NULL;
    }
    return v;
}

void mandate_verifier_free(mandate_verifier **verifier)
{
    if (verifier == NULL || *verifier == NULL)
        return;
    mandate_verifier *v = *verifier;
    *verifier = NULL;
    keyset_unref(&v->keys);
    pthread_cond_destroy(&v->fetched);
    pthread_mutex_destroy(&v->lock);
    free(v->jwks_uri);
    free(v->metadata_url);
    free(v->audience);
    free(v->issuer);
    free(v);
}

uint64_t mandate_verifier_jwks_fetches(const mandate_verifier *verifier)
{
    return verifier != NULL ? atomic_load(&verifier->jwks_fetches) : 0;
}

void mandate_verified_token_clear(mandate_verified_token *token)
{
    if (token == NULL)
        return;
    free(token->subject);
    free(token->client_id);
    free(token->scope);
    free(token->tenant);
    free(token->actor);
    free(token->jti);
    memset(token, 0, sizeof(*token));
}

mandate_client_rc mandate_verifier_check(mandate_verifier *verifier, const char *token,
                                         const char *required_scope,
                                         mandate_verified_token *out, char *errbuf,
                                         size_t errlen)
{
    mandate_verifier *v = verifier;
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (v == NULL || token == NULL)
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_INVALID,
                                   "no verifier or no token");

    size_t len = strlen(token);
    mandate_jws jws;
    mandate_error jerr = {0};
    mandate_rc jrc = mandate_jws_parse(token, len, &jws, &jerr);
    if (jrc == MANDATE_NEXT || jrc == MANDATE_INVALID)
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_TOKEN_INVALID,
                                   "token: %s", jerr.message);
    if (jrc != MANDATE_OK)
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_ERROR, "token: %s",
                                   jerr.message);

    mandate_client_rc rc;
    struct keyset *ks = NULL;
    const struct vkey *key = NULL;
    if (!typ_ok(jws.typ)) {
        rc = mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_TOKEN_INVALID,
                                 "token: typ is %s, not " JWT_TYP,
                                 jws.typ == NULL ? "missing" : "another type");
        goto done;
    }
    if (jws.kid == NULL) {
        rc = mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_TOKEN_INVALID,
                                 "token: the header has no kid");
        goto done;
    }
    if ((rc = keyset_acquire(v, NULL, &ks, errbuf, errlen)) != MANDATE_CLIENT_OK)
        goto done;
    if ((key = keyset_find(ks, jws.kid)) == NULL) {
        /* perhaps a new key: refetch (rate limited) and look once more */
        struct keyset *had = ks;
        ks = NULL;
        rc = keyset_acquire(v, had, &ks, errbuf, errlen);
        keyset_unref(&had);
        if (rc != MANDATE_CLIENT_OK)
            goto done;
        if ((key = keyset_find(ks, jws.kid)) == NULL) {
            rc = mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_TOKEN_INVALID,
                                     "token: no key of the issuer has its kid");
            goto done;
        }
    }
    if (mandate_jws_verify(token, len, key->pkey, &jerr) != MANDATE_OK) {
        rc = mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_TOKEN_INVALID, "token: %s",
                                 jerr.message);
        goto done;
    }
    rc = check_claims(v, jws.claims, required_scope, out, errbuf, errlen);
done:
    keyset_unref(&ks);
    mandate_jws_clear(&jws);
    return rc;
}
