/* The oidc backend: JWTs signed by one upstream OpenID Connect provider
 * (Entra ID, Okta, Auth0, Keycloak, Google...) become identities for the
 * RFC 8693 token exchange and the RFC 7523 JWT bearer grant. One instance
 * per provider; several may be enabled, and each answers MANDATE_NEXT for a
 * token whose iss is another provider's.
 *
 * Three kinds of subject token, each switched on with `accept`:
 *  - id_token  (urn:ietf:params:oauth:token-type:id_token): an ID token;
 *  - jwt       (urn:ietf:params:oauth:token-type:jwt): an upstream JWT
 *              access token, or an RFC 7523 JWT bearer assertion;
 *  - id-jag    (urn:ietf:params:oauth:token-type:id-jag): an Identity
 *              Assertion JWT Authorization Grant
 *              (draft-ietf-oauth-identity-assertion-authz-grant), off by
 *              default: typ oauth-id-jag+jwt, a jti claimed once, a
 *              client_id, a short lifetime.
 * A token of one kind is never taken for another: id_token and jwt refuse
 * the ID-JAG typ, and id-jag requires it.
 *
 * The checks, in order; every refusal is MANDATE_DENIED with the reason in
 * err (never the token itself; values from the token are quoted short):
 * kind accepted (else NEXT), the unverified iss is this provider's (else
 * NEXT), size, JWS structure, header alg in the `algorithms` allowlist, kid,
 * typ, the key of that kid from the provider's JWKS (an unknown kid makes
 * the cache refetch once, rate limited: providers rotate keys), the
 * signature (the key decides the algorithm: mandate_jws_verify refuses a
 * header alg that is not the key's, so "none" and HS256 keyed with a public
 * key cannot pass), then iss, aud, azp, exp, nbf, iat (with clock_skew),
 * sub, and for an ID-JAG jti, client_id, lifetime and replay.
 *
 * Keys: discovery (issuer + /.well-known/openid-configuration, whose
 * "issuer" must be ours exactly) names the jwks_uri, or jwks_uri is set and
 * discovery skipped. Nothing is fetched at instantiate, so the daemon starts
 * while the provider is down; the keys come on first use and are cached by
 * lib/jwks-cache.c (shared with libmandate's verifier): refetched after
 * jwks_refresh, used on while the provider is unreachable until they are
 * jwks_max_age old, after which a token gets MANDATE_TEMPFAIL (503), never
 * an unverified acceptance. The status op reports that state for /readyz.
 *
 * Why our own JOSE (lib/jose.c on OpenSSL) and not a library: liboauth2 is
 * AGPL-3+ (it would bind the daemon's distribution), and its
 * oauth2_token_verify checks signature and exp but never aud or iss, takes a
 * missing exp as fine by default and caches verification results; its OIDC
 * code has no discovery and checks neither aud, iss nor azp. cjose has no
 * EdDSA (OKP keys). lib/jose.c is small, strict (the key decides the
 * algorithm), already fuzzed, and shared with the jwt format and libmandate.
 *
 * The instance is read-only after instantiate and the cache is thread-safe,
 * so validate_assertion may run on every worker thread at once. */
#include "config.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include <mandate/backend.h>

#include "jose.h"
#include "jwks-cache.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

#define TOKEN_TYPE_ID_TOKEN "urn:ietf:params:oauth:token-type:id_token"
#define TOKEN_TYPE_JWT "urn:ietf:params:oauth:token-type:jwt"
#define TOKEN_TYPE_ID_JAG "urn:ietf:params:oauth:token-type:id-jag"
#define ID_JAG_TYP "oauth-id-jag+jwt"
#define DISCOVERY_PATH "/.well-known/openid-configuration"

#define MAX_TOKEN_MIN 1024
#define MAX_TOKEN_MAX MANDATE_JWS_MAX_LEN
/* How much of a token is decoded to read its iss: beyond this it is refused
 * whoever issued it. */
#define PEEK_MAX (4 * MANDATE_JWS_MAX_LEN)
/* Characters of a token's value quoted in a message. */
#define QUOTE_MAX 64
/* The longest ID-JAG jti claimed in the replay cache. */
#define JTI_MAX 256
/* NumericDate bounds: beyond these a date is nonsense. */
#define DATE_MAX 253402300799LL /* 9999-12-31T23:59:59Z */

enum kind { KIND_ID_TOKEN = 0x1, KIND_JWT = 0x2, KIND_ID_JAG = 0x4 };
enum alg_bit { ALG_RS256 = 0x1, ALG_ES256 = 0x2, ALG_EDDSA = 0x4 };

typedef struct oidc_inst {
    /* conf */
    char *issuer;
    char **audiences;
    char **authorized_parties;
    char **algorithms;
    char **accept;
    int64_t clock_skew;
    int64_t jwks_refresh;
    int64_t jwks_max_age;
    int64_t min_refetch_interval;
    int64_t timeout_ms;
    char *discovery_url;
    char *jwks_uri;
    int64_t id_jag_max_lifetime;
    int64_t max_token_size;
    /* set by instantiate */
    const mandate_host *host;
    unsigned kinds;  /* enum kind */
    unsigned algs;   /* enum alg_bit */
    char *replay_ns; /* "oidc-jag:" + instance name */
    char *discovery; /* the discovery URL used, or NULL with jwks_uri */
    mandate_jwks_cache *keys;
} oidc_inst;

/* --- small helpers ------------------------------------------------------------ */

/* A value fit for a message: at most QUOTE_MAX characters, control
 * characters and quotes replaced, "..." when cut. */
static const char *quote(const char *s, char buf[QUOTE_MAX + 4])
{
    size_t i = 0;
    if (s == NULL)
        s = "";
    for (; s[i] != '\0' && i < QUOTE_MAX; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i] = (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') ? '?' : (char)c;
    }
    if (s[i] != '\0')
        memcpy(buf + i, "...", 4);
    else
        buf[i] = '\0';
    return buf;
}
#define Q(s) quote((s), (char[QUOTE_MAX + 4]){0})

static bool list_has(char *const *list, const char *s)
{
    for (size_t i = 0; list != NULL && list[i] != NULL; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

static size_t list_len(char *const *list)
{
    size_t n = 0;
    while (list != NULL && list[n] != NULL)
        n++;
    return n;
}

static const char *kind_name(unsigned kind)
{
    switch (kind) {
    case KIND_ID_TOKEN: return "id_token";
    case KIND_JWT: return "jwt";
    case KIND_ID_JAG: return "id-jag";
    }
    return "?";
}

static unsigned kind_of_type(const char *token_type)
{
    if (token_type == NULL)
        return 0;
    if (strcmp(token_type, TOKEN_TYPE_ID_TOKEN) == 0)
        return KIND_ID_TOKEN;
    if (strcmp(token_type, TOKEN_TYPE_JWT) == 0)
        return KIND_JWT;
    if (strcmp(token_type, TOKEN_TYPE_ID_JAG) == 0)
        return KIND_ID_JAG;
    return 0;
}

/* typ want, in its short or its media type form (RFC 7515 §4.1.9), in
 * any case. */
static bool typ_is(const char *typ, const char *want)
{
    if (typ == NULL)
        return false;
    if (strncasecmp(typ, "application/", 12) == 0)
        typ += 12;
    return strcasecmp(typ, want) == 0;
}

static bool is_jag_typ(const char *typ)
{
    return typ_is(typ, ID_JAG_TYP);
}

/* An http(s) URL fit for a provider: https, or http to the loopback
 * interface only (a local test IdP). No whitespace or control characters;
 * with no_query, no '?' or '#' either (an OIDC issuer has none). */
static const char *url_problem(const char *url, bool no_query)
{
    size_t skip;
    if (url == NULL || url[0] == '\0')
        return "is empty";
    for (const char *p = url; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c == 0x7f)
            return "holds a space or a control character";
        if (no_query && (c == '?' || c == '#'))
            return "holds a query or a fragment";
    }
    if (strncasecmp(url, "https://", 8) == 0) {
        skip = 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        skip = 7;
        const char *host = url + skip;
        static const char *const loopback[] = {"127.0.0.1", "localhost", "[::1]"};
        bool local = false;
        for (size_t i = 0; i < sizeof(loopback) / sizeof(loopback[0]); i++) {
            size_t n = strlen(loopback[i]);
            if (strncasecmp(host, loopback[i], n) == 0 &&
                (host[n] == '\0' || host[n] == ':' || host[n] == '/'))
                local = true;
        }
        if (!local)
            return "must be https:// (http:// only to 127.0.0.1, localhost or [::1])";
    } else {
        return "must be an https:// URL";
    }
    if (url[skip] == '\0' || url[skip] == '/' || url[skip] == ':')
        return "has no host";
    return NULL;
}

/* The iss of a compact JWS, read without verifying anything (to pick the
 * instance); malloc'd, or NULL when the token is no JWT with a string iss. */
static char *peek_iss(const char *token, size_t len)
{
    const char *dot1 = memchr(token, '.', len);
    if (dot1 == NULL)
        return NULL;
    const char *p = dot1 + 1;
    const char *dot2 = memchr(p, '.', len - (size_t)(p - token));
    if (dot2 == NULL || dot2 == p)
        return NULL;
    size_t plen = (size_t)(dot2 - p), cap = plen / 4 * 3 + 3, n = 0;
    unsigned char *buf = malloc(cap);
    if (buf == NULL)
        return NULL;
    char *iss = NULL;
    if (mandate_b64url_decode(p, plen, buf, cap, &n)) {
        json_t *claims = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, NULL);
        const char *s = json_string_value(json_object_get(claims, "iss"));
        if (s != NULL)
            iss = strdup(s);
        json_decref(claims);
    }
    free(buf);
    return iss;
}

/* A NumericDate claim: *present_r; false when present but not a number
 * within [0, year 9999]. A fraction is dropped. */
static bool claim_time(const json_t *claims, const char *name, bool *present_r, int64_t *t_r)
{
    const json_t *v = json_object_get(claims, name);
    *present_r = v != NULL;
    *t_r = 0;
    if (v == NULL)
        return true;
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < 0 || i > DATE_MAX)
            return false;
        *t_r = (int64_t)i;
        return true;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!(d >= 0.0 && d <= (double)DATE_MAX))
            return false;
        *t_r = (int64_t)d;
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

/* --- the checks --------------------------------------------------------------- */

static mandate_rc check_audience(const oidc_inst *inst, const json_t *claims,
                                 mandate_error *err)
{
    const json_t *aud = json_object_get(claims, "aud");
    bool ours = false;
    size_t n_aud = 0;
    if (json_is_string(aud)) {
        n_aud = 1;
        ours = list_has(inst->audiences, json_string_value(aud));
    } else if (json_is_array(aud)) {
        size_t i;
        const json_t *a;
        json_array_foreach(aud, i, a)
        {
            if (!json_is_string(a))
                return mandate_error_set(err, MANDATE_DENIED,
                                         "oidc: aud holds a value that is not a string");
            if (list_has(inst->audiences, json_string_value(a)))
                ours = true;
        }
        n_aud = json_array_size(aud);
    } else {
        return mandate_error_set(err, MANDATE_DENIED,
                                 aud == NULL ? "oidc: the token has no aud"
                                             : "oidc: aud is neither a string nor an array");
    }
    if (!ours)
        return mandate_error_set(err, MANDATE_DENIED,
                                 "oidc: aud names none of this instance's audiences "
                                 "(first: \"%s\")",
                                 Q(json_is_string(aud)
                                       ? json_string_value(aud)
                                       : json_string_value(json_array_get(aud, 0))));

    /* azp: the party the token was issued to; required when aud names
     * several parties (OpenID Connect Core §2, §3.1.3.7) */
    const char *azp;
    if (!claim_str(claims, "azp", &azp))
        return mandate_error_set(err, MANDATE_DENIED, "oidc: azp is not a string");
    char *const *parties =
        inst->authorized_parties != NULL ? inst->authorized_parties : inst->audiences;
    if (azp == NULL && n_aud > 1)
        return mandate_error_set(err, MANDATE_DENIED,
                                 "oidc: aud has %zu values and there is no azp", n_aud);
    if (azp != NULL && !list_has(parties, azp))
        return mandate_error_set(err, MANDATE_DENIED,
                                 "oidc: azp \"%s\" is not an authorized party", Q(azp));
    return MANDATE_OK;
}

static mandate_rc check_times(const oidc_inst *inst, const json_t *claims, unsigned kind,
                              int64_t *exp_r, mandate_error *err)
{
    bool has_exp, has_nbf, has_iat;
    int64_t exp, nbf, iat;
    if (!claim_time(claims, "exp", &has_exp, &exp) ||
        !claim_time(claims, "nbf", &has_nbf, &nbf) ||
        !claim_time(claims, "iat", &has_iat, &iat))
        return mandate_error_set(err, MANDATE_DENIED,
                                 "oidc: exp, nbf or iat is not a NumericDate");
    if (!has_exp)
        return mandate_error_set(err, MANDATE_DENIED, "oidc: the token has no exp");
    int64_t now = inst->host->now(inst->host), skew = inst->clock_skew;
    if (exp <= now - skew)
        return mandate_error_set(err, MANDATE_DENIED,
                                 "oidc: the token expired %" PRId64 " s ago", now - exp);
    if (has_nbf && nbf > now + skew)
        return mandate_error_set(err, MANDATE_DENIED,
                                 "oidc: the token is not valid before %" PRId64 " s from now",
                                 nbf - now);
    if (has_iat && iat > now + skew)
        return mandate_error_set(err, MANDATE_DENIED,
                                 "oidc: the token was issued %" PRId64 " s in the future",
                                 iat - now);
    if (kind == KIND_ID_JAG) {
        if (!has_iat)
            return mandate_error_set(err, MANDATE_DENIED, "oidc: the ID-JAG has no iat");
        if (exp - iat > inst->id_jag_max_lifetime)
            return mandate_error_set(err, MANDATE_DENIED,
                                     "oidc: the ID-JAG lives %" PRId64
                                     " s (exp - iat), more than id_jag_max_lifetime (%" PRId64
                                     " s)",
                                     exp - iat, inst->id_jag_max_lifetime);
    }
    *exp_r = exp;
    return MANDATE_OK;
}

/* The signing key for the token's kid, from the cache. */
static mandate_rc find_key(const oidc_inst *inst, const char *kid, mandate_jwks **set_r,
                           const EVP_PKEY **key_r, mandate_error *err)
{
    mandate_error kerr = {0};
    switch (mandate_jwks_cache_get_key(inst->keys, kid, set_r, key_r, &kerr)) {
    case MANDATE_OK: return MANDATE_OK;
    case MANDATE_NOT_FOUND:
        return mandate_error_set(err, MANDATE_DENIED, "oidc: no key of %s has kid \"%s\"",
                                 Q(inst->issuer), Q(kid));
    case MANDATE_ERROR: return mandate_error_set(err, MANDATE_ERROR, "oidc: %s", kerr.message);
    default: /* TEMPFAIL, or INVALID: the provider's discovery is wrong */
        return mandate_error_set(err, MANDATE_TEMPFAIL, "oidc: no usable key of %s now: %s",
                                 Q(inst->issuer), kerr.message);
    }
}

static mandate_rc validate_jws(const oidc_inst *inst, mandate_pool *pool, unsigned kind,
                               const char *token, size_t len, const mandate_jws *jws,
                               mandate_identity *identity_r, mandate_error *err)
{
    const mandate_host *host = inst->host;

    /* the header, before any key is fetched */
    unsigned alg_bit = jws->alg == MANDATE_JWS_RS256   ? ALG_RS256
                       : jws->alg == MANDATE_JWS_ES256 ? ALG_ES256
                       : jws->alg == MANDATE_JWS_EDDSA ? ALG_EDDSA
                                                       : 0;
    if ((inst->algs & alg_bit) == 0)
        return mandate_error_set(err, MANDATE_DENIED, "oidc: alg %s is not in algorithms",
                                 mandate_jws_alg_name(jws->alg));
    if (jws->kid == NULL || jws->kid[0] == '\0')
        return mandate_error_set(err, MANDATE_DENIED, "oidc: the header has no kid");
    if (kind == KIND_ID_JAG && !is_jag_typ(jws->typ))
        return mandate_error_set(err, MANDATE_DENIED,
                                 "oidc: an ID-JAG must have typ " ID_JAG_TYP ", not \"%s\"",
                                 Q(jws->typ != NULL ? jws->typ : "(none)"));
    if (kind != KIND_ID_JAG && is_jag_typ(jws->typ))
        return mandate_error_set(err, MANDATE_DENIED,
                                 "oidc: typ " ID_JAG_TYP " marks an ID-JAG, not a token "
                                 "of kind %s",
                                 kind_name(kind));
    /* RFC 9068 §2.1: at+jwt is there so that an access token cannot pass
     * for an ID token */
    if (kind == KIND_ID_TOKEN && typ_is(jws->typ, "at+jwt"))
        return mandate_error_set(err, MANDATE_DENIED,
                                 "oidc: typ at+jwt marks an access token, not an id_token");

    /* the signature */
    mandate_jwks *set = NULL;
    const EVP_PKEY *key = NULL;
    mandate_rc rc = find_key(inst, jws->kid, &set, &key, err);
    if (rc != MANDATE_OK)
        return rc;
    mandate_error jerr = {0};
    rc = mandate_jws_verify(token, len, key, &jerr);
    mandate_jwks_unref(&set);
    if (rc != MANDATE_OK)
        return mandate_error_set(err, MANDATE_DENIED, "oidc: bad signature: %s", jerr.message);

    /* the claims, now that they are the provider's */
    const json_t *claims = jws->claims;
    const char *iss, *sub, *jti, *client_id;
    if (!claim_str(claims, "iss", &iss) || !claim_str(claims, "sub", &sub) ||
        !claim_str(claims, "jti", &jti) || !claim_str(claims, "client_id", &client_id))
        return mandate_error_set(err, MANDATE_DENIED,
                                 "oidc: iss, sub, jti or client_id is not a string");
    if (iss == NULL || strcmp(iss, inst->issuer) != 0)
        return mandate_error_set(err, MANDATE_DENIED, "oidc: iss is not %s", Q(inst->issuer));
    if ((rc = check_audience(inst, claims, err)) != MANDATE_OK)
        return rc;
    int64_t exp = 0;
    if ((rc = check_times(inst, claims, kind, &exp, err)) != MANDATE_OK)
        return rc;
    if (sub == NULL || sub[0] == '\0')
        return mandate_error_set(err, MANDATE_DENIED, "oidc: the token has no sub");
    bool has_auth_time;
    int64_t auth_time;
    if (!claim_time(claims, "auth_time", &has_auth_time, &auth_time))
        return mandate_error_set(err, MANDATE_DENIED, "oidc: auth_time is not a NumericDate");
    if (jti != NULL && jti[0] == '\0')
        jti = NULL;
    if (kind == KIND_ID_JAG) {
        if (jti == NULL)
            return mandate_error_set(err, MANDATE_DENIED, "oidc: the ID-JAG has no jti");
        if (strlen(jti) > JTI_MAX)
            return mandate_error_set(err, MANDATE_DENIED,
                                     "oidc: the ID-JAG's jti is longer than %d bytes", JTI_MAX);
        if (client_id == NULL || client_id[0] == '\0')
            return mandate_error_set(err, MANDATE_DENIED, "oidc: the ID-JAG has no client_id");
    }

    char *text = json_dumps(claims, JSON_COMPACT);
    if (text == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "oidc: out of memory");
    *identity_r = (mandate_identity){
        .issuer = host->pool_strdup(pool, iss),
        .subject = host->pool_strdup(pool, sub),
        .tenant = NULL,
        .attributes = host->pool_strdup(pool, text),
        .assertion_id = jti != NULL ? host->pool_strdup(pool, jti) : NULL,
        .authn_instant = has_auth_time ? auth_time : 0,
        .expires_at = exp,
    };
    free(text);
    if (identity_r->issuer == NULL || identity_r->subject == NULL ||
        identity_r->attributes == NULL || (jti != NULL && identity_r->assertion_id == NULL)) {
        memset(identity_r, 0, sizeof(*identity_r));
        return mandate_error_set(err, MANDATE_ERROR, "oidc: out of memory");
    }

    /* replay, last: an ID-JAG is used once, until it expires */
    if (kind == KIND_ID_JAG) {
        mandate_error rerr = {0};
        rc = host->replay_claim(host, inst->replay_ns, jti, exp + inst->clock_skew, &rerr);
        if (rc != MANDATE_OK) {
            memset(identity_r, 0, sizeof(*identity_r));
            if (rc == MANDATE_EXISTS)
                return mandate_error_set(err, MANDATE_DENIED,
                                         "oidc: ID-JAG replayed: jti \"%s\" was already used",
                                         Q(jti));
            return mandate_error_set(err,
                                     rc == MANDATE_TEMPFAIL ? MANDATE_TEMPFAIL : MANDATE_ERROR,
                                     "oidc: replay check failed: %s", rerr.message);
        }
    }
    return MANDATE_OK;
}

/* MANDATE_NEXT with no message: not this instance's token at all (another
 * issuer's, no JWT). The core reports the message of an instance that
 * passes a token on, so only a token of this instance's issuer says why. */
static mandate_rc pass_on(mandate_error *err)
{
    if (err != NULL) {
        err->rc = MANDATE_NEXT;
        err->message[0] = '\0';
    }
    return MANDATE_NEXT;
}

/* MANDATE_NEXT for a token of this instance's issuer but of a kind it does
 * not take (another instance of the issuer may). The message says what it
 * takes and what else is wrong with the token, for the core to report when
 * no backend takes it. */
static mandate_rc not_accepted(const oidc_inst *inst, unsigned kind, const char *assertion,
                               size_t len, mandate_error *err)
{
    char why[MANDATE_ERROR_MAX] = "";
    if (len <= (size_t)inst->max_token_size) {
        mandate_jws jws;
        mandate_error jerr = {0};
        if (mandate_jws_parse(assertion, len, &jws, &jerr) == MANDATE_OK) {
            if (kind != KIND_ID_JAG && is_jag_typ(jws.typ))
                snprintf(why, sizeof(why), "; its typ " ID_JAG_TYP " marks an ID-JAG");
            mandate_jws_clear(&jws);
        } else {
            snprintf(why, sizeof(why), "; besides, it is malformed: %.200s", jerr.message);
        }
    }
    return mandate_error_set(err, MANDATE_NEXT,
                             "oidc: this instance of %s does not accept %s tokens "
                             "(accept:%s%s%s)%s",
                             Q(inst->issuer), kind_name(kind),
                             (inst->kinds & KIND_ID_TOKEN) ? " id_token" : "",
                             (inst->kinds & KIND_JWT) ? " jwt" : "",
                             (inst->kinds & KIND_ID_JAG) ? " id-jag" : "", why);
}

static mandate_rc oidc_validate_assertion(void *inst_, mandate_pool *pool,
                                          const char *token_type, const char *assertion,
                                          size_t len, mandate_identity *identity_r,
                                          mandate_error *err)
{
    const oidc_inst *inst = inst_;
    if (inst == NULL || inst->host == NULL || inst->keys == NULL || identity_r == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "oidc: instance not instantiated");
    unsigned kind = kind_of_type(token_type);
    if (kind == 0)
        return pass_on(err);
    bool accepted = (inst->kinds & kind) != 0;
    if (!accepted && (assertion == NULL || len == 0 || len > PEEK_MAX))
        return pass_on(err);
    if (assertion == NULL || len == 0)
        return mandate_error_set(err, MANDATE_DENIED, "oidc: empty token");
    if (len > PEEK_MAX)
        return mandate_error_set(err, MANDATE_DENIED,
                                 "oidc: the token is %zu bytes, more than max_token_size "
                                 "(%" PRId64 ")",
                                 len, inst->max_token_size);

    /* whose is it? cheap, before any signature work */
    char *iss = peek_iss(assertion, len);
    bool ours = iss != NULL && strcmp(iss, inst->issuer) == 0;
    free(iss);
    if (!ours)
        return pass_on(err);
    if (!accepted)
        return not_accepted(inst, kind, assertion, len, err);

    if (len > (size_t)inst->max_token_size)
        return mandate_error_set(err, MANDATE_DENIED,
                                 "oidc: the token is %zu bytes, more than max_token_size "
                                 "(%" PRId64 ")",
                                 len, inst->max_token_size);
    mandate_jws jws;
    mandate_error jerr = {0};
    mandate_rc rc = mandate_jws_parse(assertion, len, &jws, &jerr);
    if (rc != MANDATE_OK)
        return mandate_error_set(err, rc == MANDATE_ERROR ? MANDATE_ERROR : MANDATE_DENIED,
                                 "oidc: malformed token: %s", jerr.message);
    memset(identity_r, 0, sizeof(*identity_r));
    rc = validate_jws(inst, pool, kind, assertion, len, &jws, identity_r, err);
    mandate_jws_clear(&jws);
    return rc;
}

/* --- status ---------------------------------------------------------------------- */

static const char *oidc_status(void *inst_, mandate_pool *pool, const char **detail_r)
{
    const oidc_inst *inst = inst_;
    char buf[MANDATE_ERROR_MAX + 128];
    const char *state;
    mandate_jwks_status st;
    mandate_jwks_cache_status(inst != NULL ? inst->keys : NULL, &st);
    switch (st.state) {
    case MANDATE_JWKS_OK:
        state = MANDATE_BACKEND_STATE_OK;
        snprintf(buf, sizeof(buf), "keys fetched %" PRId64 " s ago (%zu key%s)", st.age,
                 st.keys, st.keys == 1 ? "" : "s");
        break;
    case MANDATE_JWKS_DEGRADED:
        state = MANDATE_BACKEND_STATE_DEGRADED;
        snprintf(buf, sizeof(buf),
                 "provider unreachable (%s), serving keys cached %" PRId64 " s ago",
                 st.last_error, st.age);
        break;
    case MANDATE_JWKS_UNAVAILABLE:
        state = MANDATE_BACKEND_STATE_UNAVAILABLE;
        if (st.keys > 0)
            snprintf(buf, sizeof(buf),
                     "no usable keys: %s (keys cached %" PRId64 " s ago are past jwks_max_age)",
                     st.last_error, st.age);
        else
            snprintf(buf, sizeof(buf), "no usable keys: %s", st.last_error);
        break;
    default:
        state = MANDATE_BACKEND_STATE_UNKNOWN;
        snprintf(buf, sizeof(buf), "keys not fetched yet (they are fetched on first use)");
        break;
    }
    if (detail_r != NULL)
        *detail_r = inst != NULL && inst->host != NULL && pool != NULL
                        ? inst->host->pool_strdup(pool, buf)
                        : NULL;
    return state;
}

/* --- plugin ------------------------------------------------------------------------- */

static int64_t host_now(void *ctx)
{
    const oidc_inst *inst = ctx;
    return inst->host->now(inst->host);
}

static void on_fetch(void *ctx, bool ok, size_t keys, const char *detail)
{
    const oidc_inst *inst = ctx;
    if (ok)
        mandate_log_info(inst->host, "oidc: %zu signing key(s) of %s fetched", keys,
                         Q(inst->issuer));
    else
        mandate_log_warning(inst->host, "oidc: cannot fetch the keys of %s: %s",
                            Q(inst->issuer), detail);
}

static void oidc_destroy(void *inst_)
{
    oidc_inst *inst = inst_;
    if (inst == NULL)
        return;
    mandate_jwks_cache_free(&inst->keys);
    free(inst->replay_ns);
    inst->replay_ns = NULL;
    free(inst->discovery);
    inst->discovery = NULL;
}

static mandate_rc check_config(oidc_inst *inst, mandate_error *err)
{
    const char *why;
    if (inst->issuer == NULL || inst->issuer[0] == '\0')
        return mandate_error_set(err, MANDATE_INVALID, "oidc: issuer is required");
    if ((why = url_problem(inst->issuer, true)) != NULL)
        return mandate_error_set(err, MANDATE_INVALID, "oidc: issuer \"%s\" %s",
                                 Q(inst->issuer), why);
    if (inst->discovery_url != NULL && (why = url_problem(inst->discovery_url, false)) != NULL)
        return mandate_error_set(err, MANDATE_INVALID, "oidc: discovery_url \"%s\" %s",
                                 Q(inst->discovery_url), why);
    if (inst->jwks_uri != NULL && (why = url_problem(inst->jwks_uri, false)) != NULL)
        return mandate_error_set(err, MANDATE_INVALID, "oidc: jwks_uri \"%s\" %s",
                                 Q(inst->jwks_uri), why);
    if (list_len(inst->audiences) == 0)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "oidc: audiences is required: our client ids at the provider");
    for (size_t i = 0; inst->audiences[i] != NULL; i++)
        if (inst->audiences[i][0] == '\0')
            return mandate_error_set(err, MANDATE_INVALID, "oidc: audiences holds \"\"");
    if (inst->authorized_parties != NULL) {
        if (list_len(inst->authorized_parties) == 0)
            return mandate_error_set(err, MANDATE_INVALID,
                                     "oidc: authorized_parties is empty (leave it out to "
                                     "default to audiences)");
        for (size_t i = 0; inst->authorized_parties[i] != NULL; i++)
            if (inst->authorized_parties[i][0] == '\0')
                return mandate_error_set(err, MANDATE_INVALID,
                                         "oidc: authorized_parties holds \"\"");
    }

    inst->algs = 0;
    for (size_t i = 0; inst->algorithms != NULL && inst->algorithms[i] != NULL; i++) {
        const char *a = inst->algorithms[i];
        if (strcasecmp(a, "none") == 0)
            return mandate_error_set(err, MANDATE_INVALID,
                                     "oidc: algorithms: \"none\" is never accepted (an "
                                     "unsigned token proves nothing)");
        if (strncasecmp(a, "HS", 2) == 0)
            return mandate_error_set(err, MANDATE_INVALID,
                                     "oidc: algorithms: \"%s\" is refused: a provider's keys "
                                     "are public, an HMAC over them proves nothing",
                                     Q(a));
        if (strcmp(a, "RS256") == 0)
            inst->algs |= ALG_RS256;
        else if (strcmp(a, "ES256") == 0)
            inst->algs |= ALG_ES256;
        else if (strcmp(a, "EdDSA") == 0)
            inst->algs |= ALG_EDDSA;
        else
            return mandate_error_set(err, MANDATE_INVALID,
                                     "oidc: algorithms: \"%s\" is not supported (RS256, "
                                     "ES256, EdDSA)",
                                     Q(a));
    }
    if (inst->algs == 0)
        return mandate_error_set(err, MANDATE_INVALID, "oidc: algorithms is empty");

    inst->kinds = 0;
    for (size_t i = 0; inst->accept != NULL && inst->accept[i] != NULL; i++) {
        const char *k = inst->accept[i];
        if (strcmp(k, "id_token") == 0)
            inst->kinds |= KIND_ID_TOKEN;
        else if (strcmp(k, "jwt") == 0)
            inst->kinds |= KIND_JWT;
        else if (strcmp(k, "id-jag") == 0)
            inst->kinds |= KIND_ID_JAG;
        else
            return mandate_error_set(err, MANDATE_INVALID,
                                     "oidc: accept: \"%s\" is none of id_token, jwt, id-jag",
                                     Q(k));
    }
    if (inst->kinds == 0)
        return mandate_error_set(err, MANDATE_INVALID, "oidc: accept is empty");

    if (inst->clock_skew < 0 || inst->clock_skew > 600)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "oidc: clock_skew must be between 0 and 600");
    if (inst->jwks_refresh < 1 || inst->min_refetch_interval < 1 || inst->timeout_ms < 1 ||
        inst->jwks_max_age < 0)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "oidc: jwks_refresh, min_refetch_interval and timeout_ms "
                                 "must be positive, jwks_max_age not negative");
    if (inst->jwks_max_age != 0 && inst->jwks_max_age < inst->jwks_refresh)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "oidc: jwks_max_age (%" PRId64
                                 ") must be 0 (unlimited) or at least jwks_refresh (%" PRId64
                                 ")",
                                 inst->jwks_max_age, inst->jwks_refresh);
    if (inst->id_jag_max_lifetime < 1)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "oidc: id_jag_max_lifetime must be positive");
    if (inst->max_token_size < MAX_TOKEN_MIN || inst->max_token_size > MAX_TOKEN_MAX)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "oidc: max_token_size must be between %d and %d",
                                 MAX_TOKEN_MIN, MAX_TOKEN_MAX);
    return MANDATE_OK;
}

static mandate_rc oidc_instantiate(void *inst_, const mandate_host *host, mandate_error *err)
{
    oidc_inst *inst = inst_;
    if (host == NULL || host->abi_major != MANDATE_PLUGIN_ABI_MAJOR)
        return mandate_error_set(err, MANDATE_ERROR, "oidc: host ABI %u is not %d",
                                 host != NULL ? host->abi_major : 0, MANDATE_PLUGIN_ABI_MAJOR);
    mandate_rc rc = check_config(inst, err);
    if (rc != MANDATE_OK)
        return rc;

    const char *name = host->instance != NULL ? host->instance : "oidc";
    size_t n = strlen("oidc-jag:") + strlen(name) + 1;
    inst->replay_ns = malloc(n);
    if (inst->replay_ns == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "oidc: out of memory");
    snprintf(inst->replay_ns, n, "oidc-jag:%s", name);

    if (inst->jwks_uri == NULL) {
        if (inst->discovery_url != NULL) {
            inst->discovery = strdup(inst->discovery_url);
        } else {
            /* the issuer's trailing '/' is not doubled (OIDC Discovery §4) */
            size_t ilen = strlen(inst->issuer);
            if (ilen > 0 && inst->issuer[ilen - 1] == '/')
                ilen--;
            inst->discovery = malloc(ilen + sizeof(DISCOVERY_PATH));
            if (inst->discovery != NULL) {
                memcpy(inst->discovery, inst->issuer, ilen);
                memcpy(inst->discovery + ilen, DISCOVERY_PATH, sizeof(DISCOVERY_PATH));
            }
        }
        if (inst->discovery == NULL) {
            oidc_destroy(inst);
            return mandate_error_set(err, MANDATE_ERROR, "oidc: out of memory");
        }
    }

    inst->host = host;
    mandate_jwks_cache_config cc = {
        .issuer = inst->issuer,
        .discovery_url = inst->discovery,
        .discovery_what = "discovery",
        .jwks_uri = inst->jwks_uri,
        .refresh = inst->jwks_refresh,
        .max_age = inst->jwks_max_age,
        .min_refetch_interval = inst->min_refetch_interval,
        .timeout_ms = (long)inst->timeout_ms,
        .now = host_now,
        .now_ctx = inst,
        .on_fetch = on_fetch,
        .on_fetch_ctx = inst,
    };
    mandate_error cerr = {0};
    inst->keys = mandate_jwks_cache_new(&cc, &cerr);
    if (inst->keys == NULL) {
        oidc_destroy(inst);
        inst->host = NULL;
        return mandate_error_set(err,
                                 cerr.rc == MANDATE_INVALID ? MANDATE_INVALID : MANDATE_ERROR,
                                 "oidc: %s", cerr.message);
    }
    mandate_log_debug(
        host,
        "oidc: issuer %s, keys from %s, %zu audience(s), accepts%s%s%s, clock "
        "skew %" PRId64 " s, keys refreshed every %" PRId64 " s, used at most %" PRId64
        " s (0: no limit)",
        Q(inst->issuer), inst->jwks_uri != NULL ? inst->jwks_uri : inst->discovery,
        list_len(inst->audiences), (inst->kinds & KIND_ID_TOKEN) ? " id_token" : "",
        (inst->kinds & KIND_JWT) ? " jwt" : "", (inst->kinds & KIND_ID_JAG) ? " id-jag" : "",
        inst->clock_skew, inst->jwks_refresh, inst->jwks_max_age);
    return MANDATE_OK;
}

static const mandate_conf_def oidc_conf[] = {
    {"issuer", MANDATE_CONF_STRING, MANDATE_CONF_REQUIRED, offsetof(oidc_inst, issuer), NULL, 0,
     0, NULL, "the provider's issuer URL: tokens' iss must equal it"},
    {"audiences", MANDATE_CONF_STRING_LIST, MANDATE_CONF_REQUIRED,
     offsetof(oidc_inst, audiences), NULL, 0, 0, NULL,
     "our client ids at the provider: a token's aud must hold one of them"},
    {"authorized_parties", MANDATE_CONF_STRING_LIST, 0, offsetof(oidc_inst, authorized_parties),
     NULL, 0, 0, NULL,
     "the azp values accepted (azp is required when aud has several values); unset: "
     "audiences"},
    {"algorithms", MANDATE_CONF_STRING_LIST, 0, offsetof(oidc_inst, algorithms),
     "RS256 ES256 EdDSA", 0, 0, NULL,
     "signature algorithms accepted (of RS256, ES256, EdDSA; none and HS* are refused)"},
    {"accept", MANDATE_CONF_STRING_LIST, 0, offsetof(oidc_inst, accept), "id_token jwt", 0, 0,
     NULL, "subject token kinds taken: id_token, jwt, id-jag"},
    {"clock_skew", MANDATE_CONF_INT, 0, offsetof(oidc_inst, clock_skew), "60", 0, 600, NULL,
     "seconds of clock difference tolerated on exp, nbf and iat"},
    {"jwks_refresh", MANDATE_CONF_INT, 0, offsetof(oidc_inst, jwks_refresh), "300", 1, 86400,
     NULL, "seconds the provider's keys are used before they are fetched again"},
    {"jwks_max_age", MANDATE_CONF_INT, 0, offsetof(oidc_inst, jwks_max_age), "86400", 0,
     30 * 86400, NULL,
     "seconds after which keys that could not be refreshed are no longer used; 0: no limit"},
    {"min_refetch_interval", MANDATE_CONF_INT, 0, offsetof(oidc_inst, min_refetch_interval),
     "10", 1, 3600, NULL, "seconds between two fetches of the keys, whatever asks"},
    {"timeout_ms", MANDATE_CONF_INT, 0, offsetof(oidc_inst, timeout_ms), "5000", 100, 60000,
     NULL, "milliseconds per HTTP request to the provider"},
    {"discovery_url", MANDATE_CONF_STRING, 0, offsetof(oidc_inst, discovery_url), NULL, 0, 0,
     NULL, "the discovery document; unset: issuer + /.well-known/openid-configuration"},
    {"jwks_uri", MANDATE_CONF_STRING, 0, offsetof(oidc_inst, jwks_uri), NULL, 0, 0, NULL,
     "the provider's JWK set: discovery is skipped"},
    {"id_jag_max_lifetime", MANDATE_CONF_INT, 0, offsetof(oidc_inst, id_jag_max_lifetime),
     "300", 1, 86400, NULL, "seconds an ID-JAG may live at most (exp - iat)"},
    {"max_token_size", MANDATE_CONF_INT, 0, offsetof(oidc_inst, max_token_size), "16384",
     MAX_TOKEN_MIN, MAX_TOKEN_MAX, NULL, "bytes: the longest token accepted"},
    MANDATE_CONF_END};

static const char *const oidc_assertion_types[] = {TOKEN_TYPE_ID_TOKEN, TOKEN_TYPE_JWT,
                                                   TOKEN_TYPE_ID_JAG, NULL};

static const mandate_backend_ops oidc_ops = {
    .authenticate_client = NULL,
    .assertion_types = oidc_assertion_types,
    .validate_assertion = oidc_validate_assertion,
    .provision = NULL,
    .status = oidc_status,
};

const mandate_plugin mandate_plugin_oidc;
const mandate_plugin mandate_plugin_oidc = {
    MANDATE_PLUGIN_INIT(MANDATE_BACKEND, "oidc", PACKAGE_VERSION),
    .flags = MANDATE_PLUGIN_BLOCKING,
    .conf = oidc_conf,
    .inst_size = sizeof(oidc_inst),
    .instantiate = oidc_instantiate,
    .destroy = oidc_destroy,
    .ops = &oidc_ops,
};
