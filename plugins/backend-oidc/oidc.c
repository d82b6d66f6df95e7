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
 * Sign-in (ABI 1.5, login_start and login_finish): with login_client_id
 * set, the instance is also Mandate's relying party at the provider, for a
 * person signing in through their browser: the authorization code flow with
 * PKCE, state and nonce, and the id_token the code buys checked by the same
 * validate_jws, for the sign-in's client id (see "sign-in" below).
 *
 * The instance is read-only after instantiate, the key cache and the
 * sign-in's endpoint cache are thread-safe, so validate_assertion and the
 * sign-in may run on every worker thread at once. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sys/stat.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <mandate/backend.h>

#include "http-client.h"
#include "jose.h"
#include "jwks-cache.h"
#include "word-list.h"

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
/* How Mandate authenticates at the provider's token endpoint, signing in. */
enum auth_method { AUTH_BASIC = 1, AUTH_POST, AUTH_PRIVATE_KEY_JWT };

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
    char *login_client_id;
    char *login_client_secret;
    char *login_auth_method;
    char *login_private_key;
    char *login_private_key_id;
    char **login_scopes;
    char **login_acr_values;
    char *authorization_endpoint;
    char *token_endpoint;
    /* set by instantiate */
    const mandate_host *host;
    unsigned kinds;  /* enum kind */
    unsigned algs;   /* enum alg_bit */
    char *replay_ns; /* "oidc-jag:" + instance name */
    char *discovery; /* the discovery URL (the keys' unless jwks_uri is set) */
    mandate_jwks_cache *keys;
    /* sign-in, set by instantiate when login_client_id is */
    unsigned auth_method; /* enum auth_method */
    char *login_scope;    /* login_scopes, space-separated */
    char *login_acr;      /* login_acr_values, space-separated, or NULL */
    EVP_PKEY *login_key;  /* private_key_jwt */
    char *login_kid;
    struct endpoint_cache *endpoints; /* the sign-in's, read from discovery */
} oidc_inst;

/* The sign-in endpoints of the discovery document, kept apart from the
 * instance (which is read-only once made) because sign-ins refresh them. */
typedef struct endpoint_cache {
    pthread_mutex_t lock;
    /* under lock */
    char *authorize, *token;
    bool iss_param; /* authorization_response_iss_parameter_supported (RFC 9207) */
    int64_t fetched_at;
    bool attempted;
    int64_t last_attempt;
    char error[MANDATE_ERROR_MAX]; /* of the last fetch; "" when it succeeded */
} endpoint_cache;

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

/* The words of the accept, algorithms and login_auth_method settings and
 * what each stands for (never 0). */
typedef struct word_value {
    const char *word;
    unsigned value;
} word_value;
static const word_value kind_words[] = {
    {"id_token", KIND_ID_TOKEN}, {"jwt", KIND_JWT}, {"id-jag", KIND_ID_JAG}, {NULL, 0}};
static const word_value alg_words[] = {
    {"RS256", ALG_RS256}, {"ES256", ALG_ES256}, {"EdDSA", ALG_EDDSA}, {NULL, 0}};
static const word_value auth_method_words[] = {{"client_secret_basic", AUTH_BASIC},
                                               {"client_secret_post", AUTH_POST},
                                               {"private_key_jwt", AUTH_PRIVATE_KEY_JWT},
                                               {NULL, 0}};

/* word's value in words; 0: none of them */
static unsigned value_of(const word_value *words, const char *word)
{
    for (; words->word != NULL; words++)
        if (strcmp(words->word, word) == 0)
            return words->value;
    return 0;
}

static const char *kind_name(unsigned kind)
{
    for (const word_value *k = kind_words; k->word != NULL; k++)
        if (k->value == kind)
            return k->word;
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

/* Whom a token must be for: the instance's audiences for an exchanged
 * token, the sign-in's client id for the id_token of a sign-in (one client
 * id at the provider may differ from the other). */
typedef struct audience_rule {
    char *const *audiences;
    char *const *parties; /* the azp values accepted */
    const char *what;     /* the audiences' name in messages: the config key */
} audience_rule;

static mandate_rc check_audience(const audience_rule *rule, const json_t *claims,
                                 mandate_error *err)
{
    const json_t *aud = json_object_get(claims, "aud");
    bool ours = false;
    size_t n_aud = 0;
    if (json_is_string(aud)) {
        n_aud = 1;
        ours = list_has(rule->audiences, json_string_value(aud));
    } else if (json_is_array(aud)) {
        size_t i;
        const json_t *a;
        json_array_foreach(aud, i, a)
        {
            if (!json_is_string(a))
                return mandate_error_set(err, MANDATE_DENIED,
                                         "oidc: aud holds a value that is not a string");
            if (list_has(rule->audiences, json_string_value(a)))
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
                                 "oidc: aud names none of this instance's %s "
                                 "(first: \"%s\")",
                                 rule->what,
                                 Q(json_is_string(aud)
                                       ? json_string_value(aud)
                                       : json_string_value(json_array_get(aud, 0))));

    /* azp: the party the token was issued to; required when aud names
     * several parties (OpenID Connect Core §2, §3.1.3.7) */
    const char *azp;
    if (!claim_str(claims, "azp", &azp))
        return mandate_error_set(err, MANDATE_DENIED, "oidc: azp is not a string");
    if (azp == NULL && n_aud > 1)
        return mandate_error_set(err, MANDATE_DENIED,
                                 "oidc: aud has %zu values and there is no azp", n_aud);
    if (azp != NULL && !list_has(rule->parties, azp))
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
                               const audience_rule *rule, const char *token, size_t len,
                               const mandate_jws *jws, mandate_identity *identity_r,
                               mandate_error *err)
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
    if ((rc = check_audience(rule, claims, err)) != MANDATE_OK)
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

/* A token of the provider, exchanged or bought with a sign-in's code: its
 * size, its structure, then validate_jws. A refusal is answered refusal
 * (MANDATE_DENIED for an exchange, MANDATE_INVALID for a sign-in, where it
 * is a forged or misdirected answer). On MANDATE_OK, *jws_r holds the
 * token, for the caller to check further and clear. */
static mandate_rc verify_token(const oidc_inst *inst, mandate_pool *pool, unsigned kind,
                               const audience_rule *rule, const char *token, size_t len,
                               mandate_rc refusal, mandate_jws *jws_r,
                               mandate_identity *identity_r, mandate_error *err)
{
    memset(identity_r, 0, sizeof(*identity_r));
    if (len > (size_t)inst->max_token_size)
        return mandate_error_set(err, refusal,
                                 "oidc: the token is %zu bytes, more than max_token_size "
                                 "(%" PRId64 ")",
                                 len, inst->max_token_size);
    mandate_error jerr = {0};
    mandate_rc rc = mandate_jws_parse(token, len, jws_r, &jerr);
    if (rc != MANDATE_OK)
        return mandate_error_set(err, rc == MANDATE_ERROR ? MANDATE_ERROR : refusal,
                                 "oidc: malformed token: %s", jerr.message);
    rc = validate_jws(inst, pool, kind, rule, token, len, jws_r, identity_r, err);
    if (rc == MANDATE_OK)
        return MANDATE_OK;
    mandate_jws_clear(jws_r);
    if (rc == MANDATE_DENIED) {
        rc = refusal;
        if (err != NULL)
            err->rc = rc;
    }
    return rc;
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

    audience_rule rule = {inst->audiences,
                          inst->authorized_parties != NULL ? inst->authorized_parties
                                                           : inst->audiences,
                          "audiences"};
    mandate_jws jws;
    mandate_rc rc = verify_token(inst, pool, kind, &rule, assertion, len, MANDATE_DENIED, &jws,
                                 identity_r, err);
    if (rc == MANDATE_OK)
        mandate_jws_clear(&jws);
    return rc;
}

/* --- sign-in (ABI 1.5): the broker as the provider's relying party ------------------- *
 *
 * A person signs in at the provider through their browser: OpenID Connect's
 * authorization code flow with PKCE (S256), state and nonce, Mandate as a
 * confidential client (client_secret_basic, client_secret_post or
 * private_key_jwt: a bank registers its broker as a confidential client, so
 * there is no public-client mode). The core routes the browser and keeps
 * what login_start asks it to remember under the single-use handle it
 * passes as state; the id_token the code buys is checked by verify_token,
 * the code that checks exchanged id_tokens, with the sign-in's client id as
 * the audience, then for the nonce, the session age (max_age) and acr. */

#define REMEMBER_VERSION 1
#define REMEMBER_MAX 4096
/* 32 random bytes: 256 bits for the nonce; a PKCE verifier of 43 characters
 * (RFC 7636 §4.1's recommendation). */
#define LOGIN_RANDOM_BYTES 32
#define LOGIN_RANDOM_LEN 43
/* Bounds on what the core or the browser hands over: beyond them the value
 * is nonsense, and they keep every escaped value far below curl's limit. */
#define HANDLE_MAX 512
#define HINT_MAX 256
#define CODE_MAX 4096
/* The token endpoint's answer: an id_token of max_token_size and access and
 * refresh tokens fit with room to spare. */
#define TOKEN_RESPONSE_MAX (64 * 1024)
/* A private_key_jwt client assertion is good for this long. */
#define ASSERTION_LIFETIME 60

/* The endpoints a sign-in needs, from the configuration or the discovery
 * document. */
typedef struct login_endpoints {
    char *authorize;
    char *token;
    bool iss_param; /* authorization_response_iss_parameter_supported (RFC 9207) */
} login_endpoints;

/* What login_start remembers through the core, parsed back. */
typedef struct login_memo {
    const char *iss, *state, *redirect_uri, *nonce, *verifier;
    int64_t max_age; /* -1: not asked */
    bool force_login;
    int64_t started_at;
} login_memo;

/* The most parameters a query or a form body of the sign-in has. */
#define MAX_PARAMS 16

/* The parameters of a query or a form body, in order. */
typedef struct params {
    const char *name[MAX_PARAMS];
    const char *value[MAX_PARAMS];
    size_t n;
} params;

static void params_add(params *p, const char *name, const char *value)
{
    /* the callers add at most MAX_PARAMS: the bound is theirs */
    if (p->n < MAX_PARAMS) {
        p->name[p->n] = name;
        p->value[p->n++] = value;
    }
}

/* value percent-encoded by libcurl: all but RFC 3986's unreserved
 * characters, which suits a query, a form body and Basic credentials
 * alike. Release with escaped_free. */
static char *escape(const char *value)
{
    size_t n = strlen(value);
    return n < INT_MAX / 3 ? curl_easy_escape(NULL, value, (int)n) : NULL;
}

/* Wiped first: the value may be a secret, a code or a PKCE verifier. */
static void escaped_free(char *esc)
{
    if (esc != NULL) {
        OPENSSL_cleanse(esc, strlen(esc));
        curl_free(esc);
    }
}

/* head, sep, then the parameters as name=value joined by '&', each value
 * escaped. malloc'd (the caller wipes it), NULL when out of memory. */
static char *params_encode(const char *head, const char *sep, const params *p)
{
    char *esc[MAX_PARAMS] = {0};
    size_t total = strlen(head) + strlen(sep) + 1;
    bool ok = true;
    for (size_t i = 0; i < p->n && ok; i++) {
        ok = (esc[i] = escape(p->value[i])) != NULL;
        if (ok)
            total += strlen(p->name[i]) + 1 + strlen(esc[i]) + 1;
    }
    char *out = ok ? malloc(total) : NULL;
    if (out != NULL) {
        size_t len = (size_t)snprintf(out, total, "%s%s", head, sep);
        for (size_t i = 0; i < p->n; i++)
            len += (size_t)snprintf(out + len, total - len, "%s%s=%s", i > 0 ? "&" : "",
                                    p->name[i], esc[i]);
    }
    for (size_t i = 0; i < p->n; i++)
        escaped_free(esc[i]);
    return out;
}

static bool printable_ascii(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

/* No control characters (UTF-8 above them is fine: a user's name). */
static bool no_controls(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
            return false;
    return true;
}

static bool str_same(const char *a, const char *b)
{
    size_t n = strlen(a);
    return n == strlen(b) && CRYPTO_memcmp(a, b, n) == 0;
}

/* LOGIN_RANDOM_BYTES from the host's random source, base64url: a nonce or
 * a PKCE verifier (its characters are RFC 7636's unreserved ones). */
static mandate_rc login_random(const oidc_inst *inst, char out[LOGIN_RANDOM_LEN + 1],
                               mandate_error *err)
{
    unsigned char raw[LOGIN_RANDOM_BYTES];
    if (inst->host->random(raw, sizeof(raw)) != MANDATE_OK)
        return mandate_error_set(err, MANDATE_ERROR, "oidc: no random bytes");
    mandate_b64url_encode(raw, sizeof(raw), out);
    inst->host->wipe(raw, sizeof(raw));
    return MANDATE_OK;
}

/* RFC 7636 §4.2: BASE64URL(SHA256(ASCII(verifier))). */
static bool pkce_challenge(const char *verifier, char out[LOGIN_RANDOM_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (EVP_Digest(verifier, strlen(verifier), md, &md_len, EVP_sha256(), NULL) != 1 ||
        md_len != 32)
        return false;
    mandate_b64url_encode(md, md_len, out);
    return true;
}

/* --- the provider's endpoints --- */

static mandate_rc endpoints_copy(const oidc_inst *inst, mandate_pool *pool,
                                 const char *authorize, const char *token, bool iss_param,
                                 login_endpoints *ep_r, mandate_error *err)
{
    ep_r->authorize = inst->host->pool_strdup(pool, authorize);
    ep_r->token = inst->host->pool_strdup(pool, token);
    ep_r->iss_param = iss_param;
    if (ep_r->authorize == NULL || ep_r->token == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "oidc: out of memory");
    return MANDATE_OK;
}

/* An endpoint fit for a sign-in: an http(s) URL as url_problem wants it,
 * no fragment (RFC 6749 §3.1, §3.2), and https when the discovery document
 * came over https: a document read over TLS cannot send the code or the
 * client's secret over plain HTTP. */
static const char *endpoint_problem(const char *url, const char *discovery)
{
    const char *why = url_problem(url, false);
    if (why != NULL)
        return why;
    if (strchr(url, '#') != NULL)
        return "holds a fragment";
    if (discovery != NULL && strncasecmp(discovery, "https://", 8) == 0 &&
        strncasecmp(url, "https://", 8) != 0)
        return "is not https while discovery is";
    return NULL;
}

/* GET the discovery document and keep its sign-in endpoints in c. Called
 * with c->lock held. */
static mandate_rc endpoints_fetch(const oidc_inst *inst, endpoint_cache *c, mandate_error *err)
{
    mandate_client_http_response resp;
    char why[MANDATE_ERROR_MAX];
    mandate_client_rc crc = mandate_client_http_get(inst->discovery, (long)inst->timeout_ms,
                                                    &resp, why, sizeof(why));
    if (crc != MANDATE_CLIENT_OK)
        return mandate_error_set(err,
                                 crc == MANDATE_CLIENT_ERROR ? MANDATE_ERROR : MANDATE_TEMPFAIL,
                                 "oidc: discovery: %s", why);
    mandate_rc rc = MANDATE_OK;
    json_t *doc = NULL;
    if (resp.status != 200)
        rc = mandate_error_set(err, MANDATE_TEMPFAIL, "oidc: discovery: HTTP %ld", resp.status);
    else if ((doc = json_loadb(resp.body, resp.len, JSON_REJECT_DUPLICATES, NULL)) == NULL ||
             !json_is_object(doc)) /* a macro: its argument is read twice */
        rc = mandate_error_set(err, MANDATE_TEMPFAIL, "oidc: discovery: not a JSON object");
    mandate_client_http_response_clear(&resp);
    if (rc != MANDATE_OK) {
        json_decref(doc);
        return rc;
    }
    const char *issuer = json_string_value(json_object_get(doc, "issuer"));
    const char *authorize = json_string_value(json_object_get(doc, "authorization_endpoint"));
    const char *token = json_string_value(json_object_get(doc, "token_endpoint"));
    const char *bad;
    if (issuer == NULL || strcmp(issuer, inst->issuer) != 0)
        rc = mandate_error_set(err, MANDATE_TEMPFAIL,
                               "oidc: discovery: its issuer is not the configured issuer %s",
                               Q(inst->issuer));
    else if (authorize == NULL || token == NULL)
        rc = mandate_error_set(err, MANDATE_TEMPFAIL,
                               "oidc: discovery: no authorization_endpoint or token_endpoint");
    else if ((bad = endpoint_problem(authorize, inst->discovery)) != NULL)
        rc = mandate_error_set(err, MANDATE_TEMPFAIL,
                               "oidc: discovery: authorization_endpoint \"%s\" %s",
                               Q(authorize), bad);
    else if ((bad = endpoint_problem(token, inst->discovery)) != NULL)
        rc = mandate_error_set(err, MANDATE_TEMPFAIL,
                               "oidc: discovery: token_endpoint \"%s\" %s", Q(token), bad);
    if (rc == MANDATE_OK) {
        char *a = strdup(authorize), *t = strdup(token);
        if (a == NULL || t == NULL) {
            free(a);
            free(t);
            rc = mandate_error_set(err, MANDATE_ERROR, "oidc: out of memory");
        } else {
            free(c->authorize);
            free(c->token);
            c->authorize = a;
            c->token = t;
            c->iss_param = json_is_true(
                json_object_get(doc, "authorization_response_iss_parameter_supported"));
            c->fetched_at = inst->host->now(inst->host);
        }
    }
    json_decref(doc);
    return rc;
}

/* The sign-in endpoints, copied into the pool: configured, or from the
 * discovery document, which is read on first use and again after
 * jwks_refresh, at most once per min_refetch_interval; when it cannot be
 * read, the endpoints held serve until jwks_max_age, as the keys do. The
 * fetch runs under the lock: concurrent sign-ins wait for it (timeout_ms
 * bounds it) rather than fetch the same document again. */
static mandate_rc login_endpoints_get(const oidc_inst *inst, mandate_pool *pool,
                                      login_endpoints *ep_r, mandate_error *err)
{
    if (inst->authorization_endpoint != NULL)
        return endpoints_copy(inst, pool, inst->authorization_endpoint, inst->token_endpoint,
                              false, ep_r, err);
    endpoint_cache *c = inst->endpoints;
    mandate_rc rc = MANDATE_OK;
    pthread_mutex_lock(&c->lock);
    int64_t now = inst->host->now(inst->host);
    bool held = c->authorize != NULL;
    if (!held || now - c->fetched_at >= inst->jwks_refresh) {
        if (c->attempted && now - c->last_attempt < inst->min_refetch_interval) {
            if (!held)
                rc = mandate_error_set(err, MANDATE_TEMPFAIL,
                                       "%s (not retried for %" PRId64 " s)", c->error,
                                       inst->min_refetch_interval);
        } else {
            mandate_error ferr = {0};
            c->attempted = true;
            c->last_attempt = now;
            rc = endpoints_fetch(inst, c, &ferr);
            snprintf(c->error, sizeof(c->error), "%s", rc == MANDATE_OK ? "" : ferr.message);
            if (rc != MANDATE_OK && held && rc != MANDATE_ERROR) {
                mandate_log_warning(inst->host,
                                    "%s; the endpoints read %" PRId64 " s ago serve",
                                    ferr.message, now - c->fetched_at);
                rc = MANDATE_OK;
            } else if (rc != MANDATE_OK) {
                mandate_error_set(err, rc, "%s", ferr.message);
            }
        }
        if (rc == MANDATE_OK && inst->jwks_max_age != 0 &&
            now - c->fetched_at >= inst->jwks_max_age)
            rc = mandate_error_set(err, MANDATE_TEMPFAIL,
                                   "%s; the endpoints held were read %" PRId64
                                   " s ago, past jwks_max_age",
                                   c->error, now - c->fetched_at);
    }
    if (rc == MANDATE_OK)
        rc = endpoints_copy(inst, pool, c->authorize, c->token, c->iss_param, ep_r, err);
    pthread_mutex_unlock(&c->lock);
    return rc;
}

/* --- login_start --- */

/* MANDATE_NEXT: the instance offers no sign-in (the ops table is every
 * instance's, so the operations are there all the same). */
static mandate_rc no_sign_in(const oidc_inst *inst, mandate_error *err)
{
    return mandate_error_set(err, MANDATE_NEXT,
                             "oidc: sign-in is not configured at %s (no login_client_id)",
                             Q(inst->issuer));
}

static mandate_rc oidc_login_start(void *inst_, mandate_pool *pool,
                                   const mandate_login_request *request,
                                   mandate_login_redirect *redirect_r, mandate_error *err)
{
    const oidc_inst *inst = inst_;
    if (inst == NULL || inst->host == NULL || request == NULL || redirect_r == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "oidc: instance not instantiated");
    memset(redirect_r, 0, sizeof(*redirect_r));
    if (inst->login_client_id == NULL)
        return no_sign_in(inst, err);
    const char *why = endpoint_problem(request->callback_url, NULL);
    if (why != NULL)
        return mandate_error_set(err, MANDATE_ERROR, "oidc: the callback URL \"%s\" %s",
                                 Q(request->callback_url), why);
    if (request->handle == NULL || request->handle[0] == '\0' ||
        strlen(request->handle) > HANDLE_MAX || !printable_ascii(request->handle))
        return mandate_error_set(err, MANDATE_ERROR,
                                 "oidc: the sign-in handle is missing, longer than %d bytes or "
                                 "not printable",
                                 HANDLE_MAX);
    const char *hint = request->login_hint;
    if (hint != NULL && hint[0] == '\0')
        hint = NULL;
    if (hint != NULL && (strlen(hint) > HINT_MAX || !no_controls(hint)))
        return mandate_error_set(err, MANDATE_INVALID,
                                 "oidc: the login hint is longer than %d bytes or holds a "
                                 "control character",
                                 HINT_MAX);
    int64_t max_age = request->max_age >= 0 ? request->max_age : -1;

    login_endpoints ep;
    mandate_rc rc = login_endpoints_get(inst, pool, &ep, err);
    if (rc != MANDATE_OK)
        return rc;
    char nonce[LOGIN_RANDOM_LEN + 1], verifier[LOGIN_RANDOM_LEN + 1],
        challenge[LOGIN_RANDOM_LEN + 1];
    if ((rc = login_random(inst, nonce, err)) != MANDATE_OK ||
        (rc = login_random(inst, verifier, err)) != MANDATE_OK)
        goto out;
    if (!pkce_challenge(verifier, challenge)) {
        rc = mandate_error_set(err, MANDATE_ERROR, "oidc: SHA-256 failed");
        goto out;
    }

    params q = {0};
    char max_age_text[24];
    snprintf(max_age_text, sizeof(max_age_text), "%" PRId64, max_age);
    params_add(&q, "response_type", "code");
    params_add(&q, "client_id", inst->login_client_id);
    params_add(&q, "redirect_uri", request->callback_url);
    params_add(&q, "scope", inst->login_scope);
    params_add(&q, "state", request->handle);
    params_add(&q, "nonce", nonce);
    params_add(&q, "code_challenge", challenge);
    params_add(&q, "code_challenge_method", "S256");
    if (request->force_login)
        params_add(&q, "prompt", "login");
    if (max_age >= 0)
        params_add(&q, "max_age", max_age_text);
    if (hint != NULL)
        params_add(&q, "login_hint", hint);
    if (inst->login_acr != NULL)
        params_add(&q, "acr_values", inst->login_acr);
    /* the authorization endpoint's own query is kept (RFC 6749 §3.1) */
    size_t alen = strlen(ep.authorize);
    const char *sep = strchr(ep.authorize, '?') == NULL                                ? "?"
                      : ep.authorize[alen - 1] == '?' || ep.authorize[alen - 1] == '&' ? ""
                                                                                       : "&";
    char *url = params_encode(ep.authorize, sep, &q);

    json_t *memo = json_pack(
        "{s:i,s:s,s:s,s:s,s:s,s:s,s:I,s:b,s:I}", "v", REMEMBER_VERSION, "iss", inst->issuer,
        "state", request->handle, "redirect_uri", request->callback_url, "nonce", nonce,
        "verifier", verifier, "max_age", (json_int_t)max_age, "force_login",
        request->force_login ? 1 : 0, "started_at", (json_int_t)inst->host->now(inst->host));
    char *memo_text = memo != NULL ? json_dumps(memo, JSON_COMPACT) : NULL;
    json_decref(memo);
    if (url != NULL && memo_text != NULL) {
        redirect_r->url = inst->host->pool_strdup(pool, url);
        redirect_r->remember = inst->host->pool_strdup(pool, memo_text);
    }
    if (memo_text != NULL)
        OPENSSL_clear_free(memo_text, strlen(memo_text));
    free(url);
    if (redirect_r->url == NULL || redirect_r->remember == NULL) {
        memset(redirect_r, 0, sizeof(*redirect_r));
        rc = mandate_error_set(err, MANDATE_ERROR, "oidc: out of memory");
    }
out:
    inst->host->wipe(verifier, sizeof(verifier));
    return rc;
}

/* --- login_finish --- */

/* The remembered request, parsed into memo (its strings point into doc). */
static mandate_rc memo_parse(const oidc_inst *inst, const char *remember, json_t **doc_r,
                             login_memo *memo, mandate_error *err)
{
    *doc_r = NULL;
    if (remember == NULL)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "oidc: an answer to no sign-in of this broker (nothing "
                                 "remembered: an unsolicited response)");
    size_t n = strlen(remember);
    json_t *doc =
        n <= REMEMBER_MAX ? json_loadb(remember, n, JSON_REJECT_DUPLICATES, NULL) : NULL;
    json_int_t v = 0, max_age = -1, started_at = 0;
    int force = 0;
    *memo = (login_memo){0};
    if (doc == NULL ||
        json_unpack(doc, "{s:I,s:s,s:s,s:s,s:s,s:s,s:I,s:b,s:I}", "v", &v, "iss", &memo->iss,
                    "state", &memo->state, "redirect_uri", &memo->redirect_uri, "nonce",
                    &memo->nonce, "verifier", &memo->verifier, "max_age", &max_age,
                    "force_login", &force, "started_at", &started_at) != 0 ||
        v != REMEMBER_VERSION) {
        json_decref(doc);
        return mandate_error_set(err, MANDATE_INVALID,
                                 "oidc: what the core remembered of the sign-in is not this "
                                 "backend's");
    }
    *doc_r = doc;
    memo->max_age = max_age >= 0 ? (int64_t)max_age : -1;
    memo->force_login = force != 0;
    memo->started_at = (int64_t)started_at;
    if (strcmp(memo->iss, inst->issuer) != 0)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "oidc: the sign-in was started at another provider (%s)",
                                 Q(memo->iss));
    return MANDATE_OK;
}

/* The callback's parameters this backend reads, each at most once (RFC 6749
 * §3.1: a repeated parameter is an error, and the copy that counts would be
 * anyone's guess). */
typedef struct callback_params {
    const char *code, *state, *iss, *error, *error_description;
} callback_params;

static mandate_rc params_read(const mandate_login_response *response, callback_params *p,
                              mandate_error *err)
{
    *p = (callback_params){0};
    static const char *const names[] = {"code", "state", "iss", "error", "error_description"};
    const char **slots[] = {&p->code, &p->state, &p->iss, &p->error, &p->error_description};
    for (size_t i = 0; i < response->param_count; i++) {
        const mandate_login_param *param = &response->params[i];
        if (param->name == NULL)
            continue;
        for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
            if (strcmp(param->name, names[k]) != 0)
                continue;
            if (*slots[k] != NULL)
                return mandate_error_set(err, MANDATE_INVALID,
                                         "oidc: the callback repeats the parameter %s",
                                         names[k]);
            *slots[k] = param->value != NULL ? param->value : "";
        }
    }
    return MANDATE_OK;
}

/* A JWS for private_key_jwt (RFC 7523 §2.2, OpenID Connect Core §9): iss
 * and sub the client id, aud the token endpoint it is posted to (so it is
 * good nowhere else), a fresh jti, a short life. malloc'd. */
static char *client_assertion(const oidc_inst *inst, const char *token_endpoint,
                              mandate_error *err)
{
    unsigned char raw[16];
    char jti[32];
    if (inst->host->random(raw, sizeof(raw)) != MANDATE_OK) {
        mandate_error_set(err, MANDATE_ERROR, "oidc: no random bytes");
        return NULL;
    }
    mandate_b64url_encode(raw, sizeof(raw), jti);
    int64_t now = inst->host->now(inst->host);
    json_t *claims = json_pack("{s:s,s:s,s:s,s:s,s:I,s:I}", "iss", inst->login_client_id, "sub",
                               inst->login_client_id, "aud", token_endpoint, "jti", jti, "iat",
                               (json_int_t)now, "exp", (json_int_t)(now + ASSERTION_LIFETIME));
    char *jws = claims != NULL
                    ? mandate_jws_sign(inst->login_key, inst->login_kid, "JWT", claims)
                    : NULL;
    json_decref(claims);
    if (jws == NULL)
        mandate_error_set(err, MANDATE_ERROR, "oidc: cannot sign the client assertion");
    return jws;
}

/* "Basic " base64(urlencode(id) ":" urlencode(secret)) (RFC 6749 §2.3.1);
 * malloc'd, for the caller to wipe. */
static char *basic_credentials(const oidc_inst *inst)
{
    char *id = escape(inst->login_client_id), *secret = escape(inst->login_client_secret);
    char *pair = NULL, *out = NULL;
    size_t n = 0;
    if (id != NULL && secret != NULL) {
        size_t id_len = strlen(id), secret_len = strlen(secret);
        n = id_len + 1 + secret_len;
        if (n < INT_MAX / 2 && (pair = malloc(n + 1)) != NULL) {
            memcpy(pair, id, id_len);
            pair[id_len] = ':';
            memcpy(pair + id_len + 1, secret, secret_len + 1);
        }
    }
    if (pair != NULL && (out = malloc(6 + 4 * ((n + 2) / 3) + 1)) != NULL) {
        memcpy(out, "Basic ", 6);
        EVP_EncodeBlock((unsigned char *)out + 6, (const unsigned char *)pair, (int)n);
    }
    if (pair != NULL)
        OPENSSL_clear_free(pair, n + 1);
    escaped_free(id);
    escaped_free(secret);
    return out;
}

/* The token endpoint's refusal, as a code and a message: invalid_client (or
 * a 401) is our configuration's fault; any other 4xx refuses this code
 * (expired, used, another verifier or redirect_uri). */
static mandate_rc token_refusal(const mandate_client_http_response *resp, mandate_error *err)
{
    json_t *doc = resp->len <= TOKEN_RESPONSE_MAX
                      ? json_loadb(resp->body, resp->len, JSON_REJECT_DUPLICATES, NULL)
                      : NULL;
    const char *error = json_string_value(json_object_get(doc, "error"));
    const char *desc = json_string_value(json_object_get(doc, "error_description"));
    mandate_rc rc;
    if (resp->status == 401 || (error != NULL && (strcmp(error, "invalid_client") == 0 ||
                                                  strcmp(error, "unauthorized_client") == 0)))
        rc = mandate_error_set(
            err, MANDATE_ERROR,
            "oidc: the token endpoint refused Mandate's client (HTTP %ld %s: "
            "%s): check login_client_id, its credentials and "
            "login_auth_method",
            resp->status, Q(error != NULL ? error : "-"), Q(desc != NULL ? desc : "-"));
    else
        rc = mandate_error_set(
            err, MANDATE_INVALID, "oidc: the token endpoint refused the code (HTTP %ld %s: %s)",
            resp->status, Q(error != NULL ? error : "-"), Q(desc != NULL ? desc : "-"));
    json_decref(doc);
    return rc;
}

/* POST the code to the token endpoint with the PKCE verifier and the
 * client's authentication (RFC 6749 §4.1.3, RFC 7636 §4.5); the id_token
 * of its answer, malloc'd, in *id_token_r. */
static mandate_rc redeem_code(const oidc_inst *inst, const char *token_endpoint,
                              const login_memo *memo, const char *code, char **id_token_r,
                              mandate_error *err)
{
    *id_token_r = NULL;
    params form = {0};
    char *authorization = NULL, *assertion = NULL;
    params_add(&form, "grant_type", "authorization_code");
    params_add(&form, "code", code);
    params_add(&form, "redirect_uri", memo->redirect_uri);
    params_add(&form, "code_verifier", memo->verifier);
    switch (inst->auth_method) {
    case AUTH_BASIC: authorization = basic_credentials(inst); break;
    case AUTH_POST:
        params_add(&form, "client_id", inst->login_client_id);
        params_add(&form, "client_secret", inst->login_client_secret);
        break;
    default: /* AUTH_PRIVATE_KEY_JWT */
        if ((assertion = client_assertion(inst, token_endpoint, err)) == NULL)
            return MANDATE_ERROR;
        params_add(&form, "client_id", inst->login_client_id);
        params_add(&form, "client_assertion_type",
                   "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
        params_add(&form, "client_assertion", assertion);
        break;
    }
    char *body = params_encode("", "", &form);
    if (assertion != NULL)
        OPENSSL_clear_free(assertion, strlen(assertion));
    if (body == NULL || (inst->auth_method == AUTH_BASIC && authorization == NULL)) {
        if (body != NULL)
            OPENSSL_clear_free(body, strlen(body));
        if (authorization != NULL)
            OPENSSL_clear_free(authorization, strlen(authorization));
        return mandate_error_set(err, MANDATE_ERROR, "oidc: out of memory");
    }

    mandate_client_http_response resp;
    char why[MANDATE_ERROR_MAX];
    mandate_client_rc crc = mandate_client_http_post_form(
        token_endpoint, authorization, body, (long)inst->timeout_ms, &resp, why, sizeof(why));
    OPENSSL_clear_free(body, strlen(body));
    if (authorization != NULL)
        OPENSSL_clear_free(authorization, strlen(authorization));
    if (crc != MANDATE_CLIENT_OK)
        return mandate_error_set(
            err, crc == MANDATE_CLIENT_UNAVAILABLE ? MANDATE_TEMPFAIL : MANDATE_ERROR,
            "oidc: no answer from the token endpoint: %s", why);
    mandate_rc rc = MANDATE_OK;
    json_t *doc = NULL;
    if (resp.status >= 400 && resp.status < 500) {
        rc = token_refusal(&resp, err);
    } else if (resp.status != 200) {
        rc = mandate_error_set(err, MANDATE_TEMPFAIL,
                               "oidc: the token endpoint answered HTTP %ld", resp.status);
    } else if (resp.len > TOKEN_RESPONSE_MAX) {
        rc = mandate_error_set(err, MANDATE_TEMPFAIL,
                               "oidc: the token endpoint's answer is %zu bytes, more than %d",
                               resp.len, TOKEN_RESPONSE_MAX);
    } else if ((doc = json_loadb(resp.body, resp.len, JSON_REJECT_DUPLICATES, NULL)) == NULL ||
               !json_is_object(doc)) { /* a macro: its argument is read twice */
        rc = mandate_error_set(err, MANDATE_TEMPFAIL,
                               "oidc: the token endpoint's answer is not a JSON object");
    } else {
        const char *id_token = json_string_value(json_object_get(doc, "id_token"));
        if (id_token == NULL || id_token[0] == '\0')
            rc = mandate_error_set(err, MANDATE_INVALID,
                                   "oidc: the token endpoint's answer holds no id_token");
        else if ((*id_token_r = strdup(id_token)) == NULL)
            rc = mandate_error_set(err, MANDATE_ERROR, "oidc: out of memory");
    }
    json_decref(doc);
    mandate_client_http_response_clear(&resp);
    return rc;
}

/* What a sign-in's id_token holds besides what validate_jws checked: the
 * nonce of this sign-in; an auth_time within max_age when it was asked
 * (OpenID Connect Core §3.1.2.1: it is then required), and not before the
 * sign-in started when a new login was asked; an acr of login_acr_values
 * when they are set. */
static mandate_rc check_login_claims(const oidc_inst *inst, const json_t *claims,
                                     const login_memo *memo, mandate_error *err)
{
    const char *nonce;
    if (!claim_str(claims, "nonce", &nonce) || nonce == NULL)
        return mandate_error_set(err, MANDATE_INVALID, "oidc: the id_token has no nonce");
    if (!str_same(nonce, memo->nonce))
        return mandate_error_set(err, MANDATE_INVALID,
                                 "oidc: the id_token's nonce is not this sign-in's");
    bool has_auth_time;
    int64_t auth_time, now = inst->host->now(inst->host), skew = inst->clock_skew;
    if (!claim_time(claims, "auth_time", &has_auth_time, &auth_time))
        return mandate_error_set(err, MANDATE_INVALID, "oidc: auth_time is not a NumericDate");
    if (memo->max_age >= 0) {
        if (!has_auth_time)
            return mandate_error_set(err, MANDATE_INVALID,
                                     "oidc: max_age was asked and the id_token has no "
                                     "auth_time");
        if (auth_time + memo->max_age + skew < now)
            return mandate_error_set(err, MANDATE_INVALID,
                                     "oidc: the user authenticated %" PRId64
                                     " s ago, more than the max_age asked (%" PRId64 " s)",
                                     now - auth_time, memo->max_age);
    }
    if (memo->force_login && has_auth_time && auth_time + skew < memo->started_at)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "oidc: a new login was asked and the user authenticated "
                                 "%" PRId64 " s before the sign-in started",
                                 memo->started_at - auth_time);
    if (has_auth_time && auth_time > now + skew)
        return mandate_error_set(err, MANDATE_INVALID, "oidc: auth_time is in the future");
    if (inst->login_acr_values != NULL) {
        const char *acr;
        if (!claim_str(claims, "acr", &acr) || acr == NULL ||
            !list_has(inst->login_acr_values, acr))
            return mandate_error_set(err, MANDATE_INVALID,
                                     "oidc: the id_token's acr \"%s\" is none of "
                                     "login_acr_values",
                                     Q(acr != NULL ? acr : "(none)"));
    }
    return MANDATE_OK;
}

/* The id_token of a sign-in: verify_token, as for an exchanged one, with
 * the sign-in's client id as the only audience and authorized party, then
 * check_login_claims. */
static mandate_rc check_id_token(const oidc_inst *inst, mandate_pool *pool,
                                 const char *id_token, const login_memo *memo,
                                 mandate_identity *identity_r, mandate_error *err)
{
    char *const login_aud[] = {inst->login_client_id, NULL};
    audience_rule rule = {login_aud, login_aud, "login_client_id"};
    mandate_jws jws;
    mandate_rc rc = verify_token(inst, pool, KIND_ID_TOKEN, &rule, id_token, strlen(id_token),
                                 MANDATE_INVALID, &jws, identity_r, err);
    if (rc != MANDATE_OK)
        return rc;
    rc = check_login_claims(inst, jws.claims, memo, err);
    mandate_jws_clear(&jws);
    if (rc != MANDATE_OK)
        memset(identity_r, 0, sizeof(*identity_r));
    return rc;
}

static mandate_rc oidc_login_finish(void *inst_, mandate_pool *pool,
                                    const mandate_login_response *response,
                                    mandate_identity *identity_r, mandate_error *err)
{
    const oidc_inst *inst = inst_;
    if (inst == NULL || inst->host == NULL || inst->keys == NULL || response == NULL ||
        identity_r == NULL || (response->params == NULL && response->param_count > 0))
        return mandate_error_set(err, MANDATE_ERROR, "oidc: instance not instantiated");
    memset(identity_r, 0, sizeof(*identity_r));
    if (inst->login_client_id == NULL)
        return no_sign_in(inst, err);

    json_t *memo_doc = NULL;
    login_memo memo;
    callback_params p;
    login_endpoints ep;
    char *id_token = NULL;
    mandate_rc rc = memo_parse(inst, response->remember, &memo_doc, &memo, err);
    if (rc != MANDATE_OK)
        goto out;
    if ((rc = params_read(response, &p, err)) != MANDATE_OK)
        goto out;
    /* the code is redeemed with the redirect_uri it was asked with */
    if (response->callback_url != NULL &&
        strcmp(response->callback_url, memo.redirect_uri) != 0) {
        rc = mandate_error_set(err, MANDATE_INVALID,
                               "oidc: the answer came to another callback than the sign-in's");
        goto out;
    }
    /* the core found the sign-in by its state: a state sent along must be it */
    if (p.state != NULL && !str_same(p.state, memo.state)) {
        rc = mandate_error_set(err, MANDATE_INVALID, "oidc: the state is not this sign-in's");
        goto out;
    }
    if ((rc = login_endpoints_get(inst, pool, &ep, err)) != MANDATE_OK)
        goto out;
    /* RFC 9207: an answer from another provider (a mix-up) names another
     * iss; a provider that says it sends iss always does */
    if (p.iss != NULL && strcmp(p.iss, inst->issuer) != 0) {
        rc = mandate_error_set(err, MANDATE_INVALID,
                               "oidc: the answer's iss \"%s\" is not the provider's %s",
                               Q(p.iss), Q(inst->issuer));
        goto out;
    }
    if (p.iss == NULL && ep.iss_param) {
        rc = mandate_error_set(err, MANDATE_INVALID,
                               "oidc: the answer has no iss, which the provider always sends "
                               "(RFC 9207)");
        goto out;
    }
    if (p.error != NULL) {
        rc = mandate_error_set(err, MANDATE_DENIED,
                               "oidc: the provider refused the sign-in: %s%s%s", Q(p.error),
                               p.error_description != NULL ? ": " : "",
                               p.error_description != NULL ? Q(p.error_description) : "");
        goto out;
    }
    if (p.code == NULL || p.code[0] == '\0') {
        rc = mandate_error_set(err, MANDATE_INVALID, "oidc: the answer has no code");
        goto out;
    }
    if (strlen(p.code) > CODE_MAX || !printable_ascii(p.code)) {
        rc = mandate_error_set(err, MANDATE_INVALID,
                               "oidc: the code is longer than %d bytes or not printable",
                               CODE_MAX);
        goto out;
    }
    if ((rc = redeem_code(inst, ep.token, &memo, p.code, &id_token, err)) != MANDATE_OK)
        goto out;

    rc = check_id_token(inst, pool, id_token, &memo, identity_r, err);

out:
    if (id_token != NULL)
        OPENSSL_clear_free(id_token, strlen(id_token));
    json_decref(memo_doc);
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

/* destroy may run twice (after a failed instantiate, which cleans up
 * itself): what it frees is set to NULL */
static void free_str(char **s)
{
    free(*s);
    *s = NULL;
}

static void oidc_destroy(void *inst_)
{
    oidc_inst *inst = inst_;
    if (inst == NULL)
        return;
    mandate_jwks_cache_free(&inst->keys);
    free_str(&inst->replay_ns);
    free_str(&inst->discovery);
    free_str(&inst->login_scope);
    free_str(&inst->login_acr);
    free_str(&inst->login_kid);
    EVP_PKEY_free(inst->login_key);
    inst->login_key = NULL;
    if (inst->endpoints != NULL) {
        pthread_mutex_destroy(&inst->endpoints->lock);
        free(inst->endpoints->authorize);
        free(inst->endpoints->token);
        free(inst->endpoints);
        inst->endpoints = NULL;
    }
}

/* The sign-in's keys: all or nothing of them, and each as it must be. */
static mandate_rc check_login_config(oidc_inst *inst, mandate_error *err)
{
    if (inst->login_client_id == NULL) {
        const char *orphan = inst->login_client_secret != NULL      ? "login_client_secret"
                             : inst->login_private_key != NULL      ? "login_private_key"
                             : inst->login_private_key_id != NULL   ? "login_private_key_id"
                             : inst->login_acr_values != NULL       ? "login_acr_values"
                             : inst->authorization_endpoint != NULL ? "authorization_endpoint"
                             : inst->token_endpoint != NULL         ? "token_endpoint"
                                                                    : NULL;
        if (orphan != NULL)
            return mandate_error_set(err, MANDATE_INVALID,
                                     "oidc: %s is set but login_client_id is not (no sign-in "
                                     "without it)",
                                     orphan);
        return MANDATE_OK;
    }
    if (inst->login_client_id[0] == '\0' || !printable_ascii(inst->login_client_id))
        return mandate_error_set(err, MANDATE_INVALID,
                                 "oidc: login_client_id is empty or not printable ASCII");

    const char *method = inst->login_auth_method != NULL ? inst->login_auth_method : "";
    bool secret = inst->login_client_secret != NULL && inst->login_client_secret[0] != '\0';
    inst->auth_method = value_of(auth_method_words, method);
    if (inst->auth_method == 0)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "oidc: login_auth_method \"%s\" is none of "
                                 "client_secret_basic, client_secret_post, private_key_jwt",
                                 Q(method));
    /* a confidential client always: a secret or a key, never both (one of
     * them would be silently unused) */
    if (inst->auth_method != AUTH_PRIVATE_KEY_JWT &&
        (!secret || inst->login_private_key != NULL))
        return mandate_error_set(err, MANDATE_INVALID,
                                 "oidc: login_auth_method %s takes login_client_secret, and "
                                 "no login_private_key",
                                 method);
    if (inst->auth_method == AUTH_PRIVATE_KEY_JWT &&
        (inst->login_private_key == NULL || inst->login_client_secret != NULL))
        return mandate_error_set(err, MANDATE_INVALID,
                                 "oidc: login_auth_method private_key_jwt takes "
                                 "login_private_key, and no login_client_secret");
    if (inst->login_private_key_id != NULL &&
        (inst->auth_method != AUTH_PRIVATE_KEY_JWT || inst->login_private_key_id[0] == '\0' ||
         !printable_ascii(inst->login_private_key_id)))
        return mandate_error_set(err, MANDATE_INVALID,
                                 "oidc: login_private_key_id is for private_key_jwt, and "
                                 "printable");

    bool openid = false;
    for (size_t i = 0; inst->login_scopes != NULL && inst->login_scopes[i] != NULL; i++) {
        const char *sc = inst->login_scopes[i];
        if (!mandate_scope_token_valid(sc, strlen(sc)))
            return mandate_error_set(err, MANDATE_INVALID,
                                     "oidc: login_scopes: \"%s\" is not a scope token", Q(sc));
        if (strcmp(sc, "openid") == 0)
            openid = true;
    }
    if (!openid)
        return mandate_error_set(
            err, MANDATE_INVALID,
            "oidc: login_scopes must hold openid (no id_token without it)");
    if (inst->login_acr_values != NULL) {
        if (list_len(inst->login_acr_values) == 0)
            return mandate_error_set(err, MANDATE_INVALID,
                                     "oidc: login_acr_values is empty (leave it out to accept "
                                     "any acr)");
        for (size_t i = 0; inst->login_acr_values[i] != NULL; i++) {
            const char *a = inst->login_acr_values[i];
            if (!mandate_scope_token_valid(a, strlen(a)))
                return mandate_error_set(err, MANDATE_INVALID,
                                         "oidc: login_acr_values: \"%s\" is not a word", Q(a));
        }
    }

    if ((inst->authorization_endpoint == NULL) != (inst->token_endpoint == NULL))
        return mandate_error_set(err, MANDATE_INVALID,
                                 "oidc: authorization_endpoint and token_endpoint go together "
                                 "(neither: both from discovery)");
    const char *why;
    if (inst->authorization_endpoint != NULL &&
        (why = endpoint_problem(inst->authorization_endpoint, NULL)) != NULL)
        return mandate_error_set(err, MANDATE_INVALID, "oidc: authorization_endpoint \"%s\" %s",
                                 Q(inst->authorization_endpoint), why);
    if (inst->token_endpoint != NULL &&
        (why = endpoint_problem(inst->token_endpoint, NULL)) != NULL)
        return mandate_error_set(err, MANDATE_INVALID, "oidc: token_endpoint \"%s\" %s",
                                 Q(inst->token_endpoint), why);
    return MANDATE_OK;
}

/* Words joined by spaces, malloc'd. */
static char *list_join(char *const *list)
{
    size_t n = 1;
    for (size_t i = 0; list[i] != NULL; i++)
        n += strlen(list[i]) + 1;
    char *out = malloc(n), *p = out;
    if (out == NULL)
        return NULL;
    for (size_t i = 0; list[i] != NULL; i++) {
        size_t k = strlen(list[i]);
        if (p != out)
            *p++ = ' ';
        memcpy(p, list[i], k);
        p += k;
    }
    *p = '\0';
    return out;
}

/* An encrypted key file is refused, not prompted for on a terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

/* private_key_jwt's key: a PEM private key that only its owner (and group)
 * may read, of a type the JOSE helpers sign with; its kid is
 * login_private_key_id or its RFC 7638 thumbprint. */
static mandate_rc load_login_key(oidc_inst *inst, mandate_error *err)
{
    FILE *f = fopen(inst->login_private_key, "r");
    if (f == NULL)
        return mandate_error_set(err, MANDATE_INVALID, "oidc: login_private_key \"%s\": %s",
                                 Q(inst->login_private_key), strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || (st.st_mode & S_IROTH) != 0) {
        fclose(f);
        return mandate_error_set(err, MANDATE_INVALID,
                                 "oidc: login_private_key \"%s\" is readable by anyone "
                                 "(chmod o-r)",
                                 Q(inst->login_private_key));
    }
    inst->login_key = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
    fclose(f);
    if (inst->login_key == NULL || mandate_jws_alg_for_key(inst->login_key) == MANDATE_JWS_NONE)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "oidc: login_private_key \"%s\" is not an unencrypted PEM "
                                 "private key of P-256, RSA (2048 bits or more) or Ed25519",
                                 Q(inst->login_private_key));
    char thumb[MANDATE_JWK_THUMBPRINT_LEN + 1];
    if (inst->login_private_key_id != NULL)
        inst->login_kid = strdup(inst->login_private_key_id);
    else if (mandate_jwk_thumbprint(inst->login_key, thumb))
        inst->login_kid = strdup(thumb);
    if (inst->login_kid == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "oidc: out of memory");
    return MANDATE_OK;
}

/* What a sign-in needs made once: the scope and acr_values texts, the key. */
static mandate_rc login_setup(oidc_inst *inst, mandate_error *err)
{
    if (inst->login_client_id == NULL)
        return MANDATE_OK;
    inst->login_scope = list_join(inst->login_scopes);
    if (inst->login_acr_values != NULL)
        inst->login_acr = list_join(inst->login_acr_values);
    if (inst->login_scope == NULL ||
        (inst->login_acr_values != NULL && inst->login_acr == NULL))
        return mandate_error_set(err, MANDATE_ERROR, "oidc: out of memory");
    if (inst->auth_method == AUTH_PRIVATE_KEY_JWT)
        return load_login_key(inst, err);
    return MANDATE_OK;
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
        unsigned bit = value_of(alg_words, a);
        if (bit == 0)
            return mandate_error_set(err, MANDATE_INVALID,
                                     "oidc: algorithms: \"%s\" is not supported (RS256, "
                                     "ES256, EdDSA)",
                                     Q(a));
        inst->algs |= bit;
    }
    if (inst->algs == 0)
        return mandate_error_set(err, MANDATE_INVALID, "oidc: algorithms is empty");

    inst->kinds = 0;
    for (size_t i = 0; inst->accept != NULL && inst->accept[i] != NULL; i++) {
        const char *k = inst->accept[i];
        unsigned bit = value_of(kind_words, k);
        if (bit == 0)
            return mandate_error_set(err, MANDATE_INVALID,
                                     "oidc: accept: \"%s\" is none of id_token, jwt, id-jag",
                                     Q(k));
        inst->kinds |= bit;
    }
    if (inst->kinds == 0)
        return mandate_error_set(err, MANDATE_INVALID, "oidc: accept is empty");

    /* each key's own bounds are oidc_conf's, checked by the core */
    if (inst->jwks_max_age != 0 && inst->jwks_max_age < inst->jwks_refresh)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "oidc: jwks_max_age (%" PRId64
                                 ") must be 0 (unlimited) or at least jwks_refresh (%" PRId64
                                 ")",
                                 inst->jwks_max_age, inst->jwks_refresh);
    return check_login_config(inst, err);
}

static mandate_rc oidc_instantiate(void *inst_, const mandate_host *host, mandate_error *err)
{
    oidc_inst *inst = inst_;
    if (mandate_plugin_host_check(host, "oidc", err) != MANDATE_OK)
        return MANDATE_ERROR;
    mandate_rc rc = check_config(inst, err);
    if (rc != MANDATE_OK)
        return rc;

    const char *name = host->instance != NULL ? host->instance : "oidc";
    size_t n = strlen("oidc-jag:") + strlen(name) + 1;
    inst->replay_ns = malloc(n);
    if (inst->replay_ns == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "oidc: out of memory");
    snprintf(inst->replay_ns, n, "oidc-jag:%s", name);

    /* the keys' unless jwks_uri is set; the sign-in's endpoints unless
     * they are set */
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
    if ((inst->endpoints = calloc(1, sizeof(*inst->endpoints))) == NULL) {
        oidc_destroy(inst);
        return mandate_error_set(err, MANDATE_ERROR, "oidc: out of memory");
    }
    if (pthread_mutex_init(&inst->endpoints->lock, NULL) != 0) {
        free(inst->endpoints);
        inst->endpoints = NULL;
        oidc_destroy(inst);
        return mandate_error_set(err, MANDATE_ERROR, "oidc: cannot initialise a mutex");
    }
    if ((rc = login_setup(inst, err)) != MANDATE_OK) {
        oidc_destroy(inst);
        return rc;
    }

    inst->host = host;
    mandate_jwks_cache_config cc = {
        .issuer = inst->issuer,
        .discovery_url = inst->jwks_uri == NULL ? inst->discovery : NULL,
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
    if (inst->login_client_id != NULL)
        mandate_log_debug(host, "oidc: sign-in as client %s (%s), scope \"%s\"%s%s%s",
                          Q(inst->login_client_id),
                          inst->auth_method == AUTH_BASIC  ? "client_secret_basic"
                          : inst->auth_method == AUTH_POST ? "client_secret_post"
                                                           : "private_key_jwt",
                          Q(inst->login_scope), inst->login_acr != NULL ? ", acr " : "",
                          inst->login_acr != NULL ? "\"" : "",
                          inst->login_acr != NULL ? Q(inst->login_acr) : "");
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
    {"login_client_id", MANDATE_CONF_STRING, 0, offsetof(oidc_inst, login_client_id), NULL, 0,
     0, NULL, "Mandate's client id at the provider for people's sign-in; unset: no sign-in"},
    {"login_client_secret", MANDATE_CONF_STRING, MANDATE_CONF_SECRET,
     offsetof(oidc_inst, login_client_secret), NULL, 0, 0, NULL,
     "its client secret (client_secret_basic, client_secret_post)"},
    {"login_auth_method", MANDATE_CONF_STRING, 0, offsetof(oidc_inst, login_auth_method),
     "client_secret_basic", 0, 0, "client_secret_basic|client_secret_post|private_key_jwt",
     "how Mandate authenticates at the token endpoint"},
    {"login_private_key", MANDATE_CONF_PATH, 0, offsetof(oidc_inst, login_private_key), NULL, 0,
     0, NULL, "PEM private key for private_key_jwt (P-256, RSA, Ed25519)"},
    {"login_private_key_id", MANDATE_CONF_STRING, 0, offsetof(oidc_inst, login_private_key_id),
     NULL, 0, 0, NULL, "the kid of that key at the provider; unset: its RFC 7638 thumbprint"},
    {"login_scopes", MANDATE_CONF_STRING_LIST, 0, offsetof(oidc_inst, login_scopes),
     "openid email profile", 0, 0, NULL, "the scopes asked at sign-in (openid required)"},
    {"login_acr_values", MANDATE_CONF_STRING_LIST, 0, offsetof(oidc_inst, login_acr_values),
     NULL, 0, 0, NULL, "acr_values asked at sign-in; the id_token's acr must be one of them"},
    {"authorization_endpoint", MANDATE_CONF_STRING, 0,
     offsetof(oidc_inst, authorization_endpoint), NULL, 0, 0, NULL,
     "the provider's authorization endpoint; unset: from discovery"},
    {"token_endpoint", MANDATE_CONF_STRING, 0, offsetof(oidc_inst, token_endpoint), NULL, 0, 0,
     NULL, "the provider's token endpoint; unset: from discovery"},
    MANDATE_CONF_END};

static const char *const oidc_assertion_types[] = {TOKEN_TYPE_ID_TOKEN, TOKEN_TYPE_JWT,
                                                   TOKEN_TYPE_ID_JAG, NULL};

static const mandate_backend_ops oidc_ops = {
    .authenticate_client = NULL,
    .assertion_types = oidc_assertion_types,
    .validate_assertion = oidc_validate_assertion,
    .provision = NULL,
    .status = oidc_status,
    /* ABI 1.5 (read by a core of that minor): sign-in at the provider; an
     * instance without login_client_id answers MANDATE_NEXT */
    .login_start = oidc_login_start,
    .login_finish = oidc_login_finish,
    .login_metadata = NULL,
};

MANDATE_PLUGIN(oidc, MANDATE_BACKEND, PACKAGE_VERSION, MANDATE_PLUGIN_BLOCKING, oidc_inst,
               oidc_conf, oidc_instantiate, oidc_destroy, &oidc_ops);
