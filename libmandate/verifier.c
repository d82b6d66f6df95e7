/* mandate_verifier: checks RFC 9068 JWT access tokens for a resource server.
 *
 * Keys come from the shared JWKS cache (lib/jwks-cache.c): on first use it
 * reads the issuer's RFC 8414 metadata
 * (<issuer>/.well-known/oauth-authorization-server, whose "issuer" must be
 * the configured one), then its jwks_uri. A set is used for jwks_max_age
 * seconds and then refetched; when the broker cannot be reached it is used
 * on (libmandate sets no hard limit); a token with a kid the set lacks
 * makes the cache refetch, at most once per min_refetch_interval, and then
 * look once more. Fetches run one at a time. With no key set at all the
 * check answers MANDATE_CLIENT_UNAVAILABLE: a token is never accepted
 * unverified.
 *
 * The header's kid picks the key and the key alone decides the algorithm
 * (mandate_jws_verify refuses a header alg that is not the key's), so
 * neither "none" nor an HMAC keyed with a public key can pass.
 *
 * DPoP-bound tokens (cnf.jkt, RFC 9449 §6): mandate_verifier_check refuses
 * them, since whoever copied one could present it as a bearer token;
 * mandate_verifier_check_dpop takes them with a proof for the request by
 * the key they are bound to (lib/dpop.c checks the proof as the broker's
 * gateway does), each proof once: its jti is remembered in memory until
 * its iat is too old to be accepted again. The cache is per process (a
 * resource server with several processes behind one name should leave the
 * replay check to the broker's gateway, which shares it through the store)
 * and bounded: when full of live entries, proofs are refused rather than
 * let through unchecked.
 *
 * Certificate-bound tokens (cnf x5t#S256, RFC 8705 §3) pass only
 * mandate_verifier_check_request with the client certificate of the
 * request's TLS connection, whose thumbprint must be the token's. A cnf
 * is read by lib/grant-claims.c as the broker reads it: any member other
 * than jkt and x5t#S256 makes the token refused, never taken as a bearer
 * one (RFC 7800 §3). */
#include "config.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "client-cert.h"
#include "dpop.h"
#include "grant-claims.h"
#include "jose.h"
#include "jwks-cache.h"
#include "optional-strdup.h"
#include "http-client.h"
#include "word-list.h"

#define DEFAULT_JWKS_MAX_AGE 300
#define DEFAULT_MIN_REFETCH 10
#define DEFAULT_LEEWAY 5
#define DEFAULT_TIMEOUT_MS 5000L
#define METADATA_PATH "/.well-known/oauth-authorization-server"
#define JWT_TYP "at+jwt"
/* DPoP proofs at the resource: the broker's defaults (doc/dpop.md) */
#define DPOP_MAX_AGE 60
#define DPOP_MAX_FUTURE 5
/* Proofs remembered at once: 2^16 of 24 bytes, allocated on the first */
#define REPLAY_SLOTS (1u << 16)
#define REPLAY_PROBES 64

typedef struct replay_slot {
    unsigned char id[16]; /* SHA-256(jkt "." jti), truncated */
    int64_t until;        /* 0: free */
} replay_slot;

struct mandate_verifier {
    char *issuer;
    char *audience;
    long leeway;
    int64_t (*now)(void *ctx);
    void *now_ctx;
    mandate_jwks_cache *keys;
    pthread_mutex_t replay_lock;
    replay_slot *replay; /* NULL until the first proof */
};

/* Claims a proof's jti for its key until it can no longer be accepted:
 * OK the first time, TOKEN_INVALID after, UNAVAILABLE when the cache has no
 * room. */
static mandate_client_rc replay_claim(mandate_verifier *v, const mandate_dpop_proof *p,
                                      int64_t now, char *errbuf, size_t errlen)
{
    unsigned char digest[32];
    char name[MANDATE_JWK_THUMBPRINT_LEN + 1 + MANDATE_DPOP_JTI_MAX + 1];
    int n = snprintf(name, sizeof(name), "%s.%s", p->jkt, p->jti);
    if (EVP_Digest(name, (size_t)n, digest, NULL, EVP_sha256(), NULL) != 1)
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_ERROR, "no SHA-256");
    mandate_client_rc rc = MANDATE_CLIENT_OK;
    pthread_mutex_lock(&v->replay_lock);
    if (v->replay == NULL)
        v->replay = calloc(REPLAY_SLOTS, sizeof(*v->replay));
    if (v->replay == NULL) {
        pthread_mutex_unlock(&v->replay_lock);
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_ERROR, "out of memory");
    }
    uint32_t start;
    memcpy(&start, digest, sizeof(start));
    replay_slot *free_slot = NULL;
    for (uint32_t i = 0; i < REPLAY_PROBES; i++) {
        replay_slot *slot = &v->replay[(start + i) & (REPLAY_SLOTS - 1)];
        bool live = slot->until > now;
        if (live && memcmp(slot->id, digest, sizeof(slot->id)) == 0) {
            rc = mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_TOKEN_INVALID,
                                     "DPoP proof: used before (its jti)");
            break;
        }
        if (!live && free_slot == NULL)
            free_slot = slot;
    }
    if (rc == MANDATE_CLIENT_OK && free_slot == NULL)
        rc = mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_UNAVAILABLE,
                                 "DPoP proof: the replay cache is full");
    if (rc == MANDATE_CLIENT_OK) {
        memcpy(free_slot->id, digest, sizeof(free_slot->id));
        free_slot->until = p->iat + DPOP_MAX_AGE + DPOP_MAX_FUTURE + 1;
    }
    pthread_mutex_unlock(&v->replay_lock);
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

/* A string claim: *value_r NULL when absent; false when present but not a
 * string. */
static bool claim_str(const json_t *claims, const char *name, const char **value_r)
{
    const json_t *v = json_object_get(claims, name);
    *value_r = json_string_value(v);
    return v == NULL || json_is_string(v);
}

static bool claim_int(const json_t *claims, const char *name, bool *present_r, int64_t *value_r)
{
    const json_t *v = json_object_get(claims, name);
    *present_r = v != NULL;
    *value_r = json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
    return v == NULL || json_is_integer(v);
}

/* proof_jkt: the thumbprint of the key whose proof came with the token
 * (NULL: presented as a bearer token); cert_x5t: the thumbprint of the
 * request's client certificate (NULL: none came). */
static mandate_client_rc check_claims(const mandate_verifier *v, const json_t *claims,
                                      const char *proof_jkt, const char *cert_x5t,
                                      const char *required_scope, mandate_verified_token *out,
                                      char *errbuf, size_t errlen)
{
    const char *iss, *sub, *client_id, *jti, *scope, *tenant, *actor = NULL;
    bool has_exp, has_iat, has_nbf;
    int64_t exp, iat, nbf;
    if (!claim_str(claims, "iss", &iss) || !claim_str(claims, "sub", &sub) ||
        !claim_str(claims, "client_id", &client_id) || !claim_str(claims, "jti", &jti) ||
        !claim_str(claims, "scope", &scope) || !claim_str(claims, "tenant", &tenant) ||
        !claim_int(claims, "exp", &has_exp, &exp) ||
        !claim_int(claims, "iat", &has_iat, &iat) || !claim_int(claims, "nbf", &has_nbf, &nbf))
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
    if (act != NULL &&
        (!json_is_object(act) || !claim_str(act, "sub", &actor) || actor == NULL))
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

    const char *jkt, *x5t;
    const char *cnf_why = mandate_grant_cnf_of(claims, &jkt, &x5t);
    if (cnf_why != NULL)
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_TOKEN_INVALID, "token: %s",
                                   cnf_why);
    if (x5t != NULL && cert_x5t == NULL)
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_TOKEN_INVALID,
                                   "token: certificate-bound (cnf x5t#S256), presented without "
                                   "a client certificate");
    if (x5t != NULL && strcmp(x5t, cert_x5t) != 0)
        return mandate_client_fail(
            errbuf, errlen, MANDATE_CLIENT_TOKEN_INVALID,
            "token: certificate-bound to another client certificate than "
            "the request's");
    if (jkt != NULL && proof_jkt == NULL)
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_TOKEN_INVALID,
                                   "token: DPoP-bound, presented without a proof of its key");
    if (proof_jkt != NULL && jkt == NULL)
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_TOKEN_INVALID,
                                   "token: not DPoP-bound, presented with the DPoP scheme");
    if (proof_jkt != NULL && strcmp(jkt, proof_jkt) != 0)
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_TOKEN_INVALID,
                                   "DPoP proof: by another key than the token's cnf.jkt");

    size_t n;
    const char *lacking = mandate_word_list_missing(required_scope, scope, &n);
    if (lacking != NULL)
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_INSUFFICIENT_SCOPE,
                                   "token: lacks scope %.*s", n > 100 ? 100 : (int)n, lacking);

    if (out != NULL) {
        bool oom = false;
        out->subject = mandate_strdup_optional(sub, &oom);
        out->client_id = mandate_strdup_optional(client_id, &oom);
        out->scope = mandate_strdup_optional(scope, &oom);
        out->tenant = mandate_strdup_optional(tenant, &oom);
        out->actor = mandate_strdup_optional(actor, &oom);
        out->jti = mandate_strdup_optional(jti, &oom);
        out->cnf_jkt = mandate_strdup_optional(jkt, &oom);
        out->cnf_x5t_s256 = mandate_strdup_optional(x5t, &oom);
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
    long jwks_max_age = 0, min_refetch_interval = 0, leeway = 0, timeout_ms = 0;
    const char *why = NULL;
    if (config == NULL)
        why = "no configuration";
    else if (!mandate_client_url_ok(config->issuer))
        why = "issuer must be an http:// or https:// URL";
    else if (config->audience == NULL || config->audience[0] == '\0')
        why = "audience is required";
    else if (!seconds_ok(config->jwks_max_age, DEFAULT_JWKS_MAX_AGE, &jwks_max_age) ||
             !seconds_ok(config->min_refetch_interval, DEFAULT_MIN_REFETCH,
                         &min_refetch_interval) ||
             !seconds_ok(config->leeway, DEFAULT_LEEWAY, &leeway) ||
             !seconds_ok(config->timeout_ms, DEFAULT_TIMEOUT_MS, &timeout_ms))
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
    v->leeway = leeway;
    if (pthread_mutex_init(&v->replay_lock, NULL) != 0) {
        free(v);
        mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_ERROR, "cannot initialise a mutex");
        return NULL;
    }
    v->now = config->now != NULL ? config->now : mandate_client_real_now;
    v->now_ctx = config->now_ctx;
    v->issuer = strdup(config->issuer);
    v->audience = strdup(config->audience);
    /* the issuer is a base URL that endpoints are appended to, as the broker
     * serves it: a trailing '/' is not doubled */
    size_t ilen = v->issuer != NULL ? strlen(v->issuer) : 0;
    if (ilen > 0 && v->issuer[ilen - 1] == '/')
        ilen--;
    char *metadata_url = malloc(ilen + sizeof(METADATA_PATH));
    if (metadata_url != NULL) {
        memcpy(metadata_url, v->issuer, ilen);
        memcpy(metadata_url + ilen, METADATA_PATH, sizeof(METADATA_PATH));
    }
    mandate_error cerr = {.rc = MANDATE_ERROR, .message = "out of memory"};
    if (v->issuer != NULL && v->audience != NULL && metadata_url != NULL) {
        mandate_jwks_cache_config cc = {
            .issuer = v->issuer,
            .discovery_url = metadata_url,
            .discovery_what = "metadata",
            .refresh = jwks_max_age,
            .max_age = 0, /* a set in hand is used on while the broker is down */
            .min_refetch_interval = min_refetch_interval,
            .timeout_ms = timeout_ms,
            .now = v->now,
            .now_ctx = v->now_ctx,
        };
        v->keys = mandate_jwks_cache_new(&cc, &cerr);
    }
    free(metadata_url);
    if (v->keys == NULL) {
        pthread_mutex_destroy(&v->replay_lock);
        free(v->issuer);
        free(v->audience);
        free(v);
        mandate_client_fail(errbuf, errlen,
                            cerr.rc == MANDATE_INVALID ? MANDATE_CLIENT_INVALID
                                                       : MANDATE_CLIENT_ERROR,
                            "%s", cerr.message);
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
    mandate_jwks_cache_free(&v->keys);
    pthread_mutex_destroy(&v->replay_lock);
    free(v->replay);
    free(v->audience);
    free(v->issuer);
    free(v);
}

uint64_t mandate_verifier_jwks_fetches(const mandate_verifier *verifier)
{
    return verifier != NULL ? mandate_jwks_cache_fetches(verifier->keys) : 0;
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
    free(token->cnf_jkt);
    free(token->cnf_x5t_s256);
    memset(token, 0, sizeof(*token));
}

static mandate_client_rc verify(mandate_verifier *verifier, const char *token,
                                const char *proof_jkt, const char *cert_x5t,
                                const char *required_scope, mandate_verified_token *out,
                                char *errbuf, size_t errlen)
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
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_TOKEN_INVALID, "token: %s",
                                   jerr.message);
    if (jrc != MANDATE_OK)
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_ERROR, "token: %s",
                                   jerr.message);

    mandate_client_rc rc;
    mandate_jwks *ks = NULL;
    const EVP_PKEY *key = NULL;
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
    mandate_error kerr = {0};
    switch (mandate_jwks_cache_get_key(v->keys, jws.kid, &ks, &key, &kerr)) {
    case MANDATE_OK: break;
    case MANDATE_NOT_FOUND:
        rc = mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_TOKEN_INVALID,
                                 "token: no key of the issuer has its kid");
        goto done;
    case MANDATE_INVALID: /* the metadata names another issuer */
        rc = mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_INVALID, "%s", kerr.message);
        goto done;
    case MANDATE_ERROR:
        rc = mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_ERROR, "%s", kerr.message);
        goto done;
    default:
        rc =
            mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_UNAVAILABLE, "%s", kerr.message);
        goto done;
    }
    if (mandate_jws_verify(token, len, key, &jerr) != MANDATE_OK) {
        rc = mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_TOKEN_INVALID, "token: %s",
                                 jerr.message);
        goto done;
    }
    rc = check_claims(v, jws.claims, proof_jkt, cert_x5t, required_scope, out, errbuf, errlen);
done:
    mandate_jwks_unref(&ks);
    mandate_jws_clear(&jws);
    return rc;
}

mandate_client_rc mandate_verifier_check(mandate_verifier *verifier, const char *token,
                                         const char *required_scope,
                                         mandate_verified_token *out, char *errbuf,
                                         size_t errlen)
{
    return verify(verifier, token, NULL, NULL, required_scope, out, errbuf, errlen);
}

mandate_client_rc mandate_verifier_check_dpop(mandate_verifier *verifier, const char *token,
                                              const char *proof, const char *method,
                                              const char *uri, const char *required_scope,
                                              mandate_verified_token *out, char *errbuf,
                                              size_t errlen)
{
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (verifier == NULL || token == NULL || method == NULL || uri == NULL)
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_INVALID,
                                   "no verifier, token, method or URI");
    if (proof == NULL)
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_TOKEN_INVALID,
                                   "DPoP proof: missing");
    mandate_verifier_request rq = {
        .token = token, .dpop_proof = proof, .method = method, .uri = uri};
    return mandate_verifier_check_request(verifier, &rq, required_scope, out, errbuf, errlen);
}

/* The thumbprint of the request's client certificate into x5t (x5t[0] '\0':
 * none came). */
static mandate_client_rc request_cert_x5t(const mandate_verifier_request *rq,
                                          char x5t[MANDATE_CERT_THUMBPRINT_LEN + 1],
                                          char *errbuf, size_t errlen)
{
    x5t[0] = '\0';
    if (rq->client_cert_der == NULL)
        return MANDATE_CLIENT_OK;
    X509 *cert = mandate_cert_from_der(rq->client_cert_der, rq->client_cert_len);
    if (cert == NULL)
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_INVALID,
                                   "the client certificate is not one DER X.509 certificate "
                                   "(of at most %d bytes)",
                                   MANDATE_CLIENT_CERT_MAX);
    bool ok = mandate_cert_thumbprint(cert, x5t);
    X509_free(cert);
    if (!ok)
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_ERROR,
                                   "cannot compute the client certificate's thumbprint");
    return MANDATE_CLIENT_OK;
}

mandate_client_rc mandate_verifier_check_request(mandate_verifier *verifier,
                                                 const mandate_verifier_request *request,
                                                 const char *required_scope,
                                                 mandate_verified_token *out, char *errbuf,
                                                 size_t errlen)
{
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    const mandate_verifier_request *rq = request;
    if (verifier == NULL || rq == NULL || rq->token == NULL)
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_INVALID,
                                   "no verifier or no token");
    if (rq->dpop_proof != NULL && (rq->method == NULL || rq->uri == NULL))
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_INVALID,
                                   "a DPoP proof without the request's method or URI");
    char cert_x5t[MANDATE_CERT_THUMBPRINT_LEN + 1];
    mandate_client_rc rc = request_cert_x5t(rq, cert_x5t, errbuf, errlen);
    if (rc != MANDATE_CLIENT_OK)
        return rc;
    const char *x5t = cert_x5t[0] != '\0' ? cert_x5t : NULL;
    if (rq->dpop_proof == NULL)
        return verify(verifier, rq->token, NULL, x5t, required_scope, out, errbuf, errlen);

    int64_t now = verifier->now(verifier->now_ctx);
    mandate_dpop_expect x = {.method = rq->method,
                             .uri = rq->uri,
                             .access_token = rq->token,
                             .algs = MANDATE_DPOP_ALGS_ALL,
                             .now = now,
                             .max_age = DPOP_MAX_AGE,
                             .max_future = DPOP_MAX_FUTURE};
    mandate_dpop_proof p;
    mandate_error derr = {0};
    mandate_rc drc = mandate_dpop_check(rq->dpop_proof, strlen(rq->dpop_proof), &x, &p, &derr);
    if (drc != MANDATE_OK)
        return mandate_client_fail(errbuf, errlen,
                                   drc == MANDATE_INVALID ? MANDATE_CLIENT_TOKEN_INVALID
                                                          : MANDATE_CLIENT_ERROR,
                                   "DPoP proof: %s", derr.message);
    rc = verify(verifier, rq->token, p.jkt, x5t, required_scope, out, errbuf, errlen);
    /* claimed once the token is good: a refused token does not use up a
     * proof, and a scope refusal still does (the request was judged) */
    if (rc == MANDATE_CLIENT_OK || rc == MANDATE_CLIENT_INSUFFICIENT_SCOPE) {
        char rerr[128] = "";
        mandate_client_rc rrc = replay_claim(verifier, &p, now, rerr, sizeof(rerr));
        if (rrc != MANDATE_CLIENT_OK) {
            mandate_verified_token_clear(out);
            return mandate_client_fail(errbuf, errlen, rrc, "%s", rerr);
        }
    }
    return rc;
}
