/* The jwt format: RFC 9068 JWT access tokens, signed with ES256, RS256 or
 * EdDSA (Ed25519).
 *
 * Keys: the core hands over every key of this instance, newest first, with
 * the private part decrypted to PKCS#8 DER. set_keys turns them into an
 * immutable key set (kid, alg, EVP_PKEY, status); the first active key signs,
 * every key verifies. The instance holds the current set under a mutex; mint
 * and parse take a reference to it for the length of one call, so a set_keys
 * on another thread swaps in the new set at once while calls in flight finish
 * with the old one, which is freed by whoever drops its last reference.
 *
 * Verification: the header's kid picks the key and the key alone decides the
 * algorithm (mandate_jws_verify refuses a header alg that is not the key's),
 * so neither "none" nor an HMAC keyed with a public key can pass. Our
 * ES256 signatures are low-S, and one with a high S (the other string a
 * valid signature has: s replaced by n - s) is refused, so that a token has
 * one string only.
 *
 * The claims are the grant's as lib/grant-claims.c writes and reads them.
 * Only lib/ (JOSE, the grant's claims) linked into this plugin, libc,
 * pthreads, OpenSSL, jansson and the host table are used: no core symbol. */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <mandate/format.h>

#include "grant-claims.h"
#include "jose.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

/* RFC 9068 §2.1; "application/" may be left out (RFC 7515 §4.1.9). */
#define JWT_TYP "at+jwt"
/* More keys than any rotation schedule keeps: a bound, not a limit. */
#define JWT_MAX_KEYS 1024

struct jwt_key {
    char *kid;
    mandate_jws_alg alg;
    mandate_key_status status;
    EVP_PKEY *pkey;
    mandate_jws_signer *signer; /* prepared for the signing key only */
};

/* Immutable once published; freed when its last reference goes. */
struct jwt_keyset {
    atomic_size_t refs;
    const struct jwt_key *signer; /* the first active key; NULL: none */
    size_t n;
    struct jwt_key keys[];
};

struct jwt_inst {
    /* config, filled by the core */
    char *algorithm;
    int64_t leeway;

    const mandate_host *host;
    mandate_jws_alg default_alg;
    bool initialized;
    pthread_mutex_t lock;
    struct jwt_keyset *keys; /* under lock; the instance holds one reference */
};

/* --- key sets --------------------------------------------------------------- */

static void keyset_unref(struct jwt_keyset **ksp)
{
    struct jwt_keyset *ks = *ksp;
    *ksp = NULL;
    if (ks == NULL || atomic_fetch_sub(&ks->refs, 1) != 1)
        return;
    for (size_t i = 0; i < ks->n; i++) {
        EVP_PKEY_free(ks->keys[i].pkey);
        mandate_jws_signer_free(&ks->keys[i].signer);
        free(ks->keys[i].kid);
    }
    free(ks);
}

/* The current set with a reference for the caller, or NULL. */
static struct jwt_keyset *keyset_get(struct jwt_inst *inst)
{
    pthread_mutex_lock(&inst->lock);
    struct jwt_keyset *ks = inst->keys;
    if (ks != NULL)
        atomic_fetch_add(&ks->refs, 1);
    pthread_mutex_unlock(&inst->lock);
    return ks;
}

static const struct jwt_key *keyset_find(const struct jwt_keyset *ks, const char *kid)
{
    for (size_t i = 0; ks != NULL && i < ks->n; i++)
        if (strcmp(ks->keys[i].kid, kid) == 0)
            return &ks->keys[i];
    return NULL;
}

static mandate_rc jwt_set_keys(void *inst_, const mandate_signing_key *keys, size_t n,
                               mandate_error *err)
{
    struct jwt_inst *inst = inst_;
    if (n > JWT_MAX_KEYS)
        return mandate_error_set(err, MANDATE_INVALID, "jwt: %zu keys, more than %d", n,
                                 JWT_MAX_KEYS);
    if (n > 0 && keys == NULL)
        return mandate_error_set(err, MANDATE_INVALID, "jwt: no key array");
    struct jwt_keyset *ks = calloc(1, sizeof(*ks) + n * sizeof(ks->keys[0]));
    if (ks == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "jwt: out of memory");
    atomic_init(&ks->refs, 1);

    mandate_rc rc = MANDATE_OK;
    for (size_t i = 0; i < n && rc == MANDATE_OK; i++) {
        const mandate_key *k = keys[i].key;
        if (k == NULL || k->kid == NULL || k->kid[0] == '\0') {
            rc = mandate_error_set(err, MANDATE_INVALID, "jwt: key %zu has no kid", i);
            break;
        }
        mandate_jws_alg alg = mandate_jws_alg_parse(k->alg);
        if (alg == MANDATE_JWS_NONE) {
            rc = mandate_error_set(err, MANDATE_INVALID,
                                   "jwt: key %.64s: alg %.16s is not ES256, RS256 or EdDSA",
                                   k->kid, k->alg != NULL ? k->alg : "(none)");
            break;
        }
        if (k->status != MANDATE_KEY_ACTIVE && k->status != MANDATE_KEY_RETIRED) {
            rc = mandate_error_set(err, MANDATE_INVALID, "jwt: key %.64s: unknown status %d",
                                   k->kid, (int)k->status);
            break;
        }
        if (keyset_find(ks, k->kid) != NULL) {
            rc = mandate_error_set(err, MANDATE_INVALID, "jwt: key %.64s: kid given twice",
                                   k->kid);
            break;
        }
        EVP_PKEY *pkey =
            mandate_jose_private_from_der(keys[i].private_der, keys[i].private_der_len);
        if (pkey == NULL) {
            rc = mandate_error_set(err, MANDATE_INVALID,
                                   "jwt: key %.64s: private part is not a PKCS#8 DER key",
                                   k->kid);
            break;
        }
        mandate_jws_alg key_alg = mandate_jws_alg_for_key(pkey);
        if (key_alg != alg) {
            EVP_PKEY_free(pkey);
            rc = mandate_error_set(err, MANDATE_INVALID,
                                   "jwt: key %.64s: alg %s does not match its key (%s)", k->kid,
                                   mandate_jws_alg_name(alg),
                                   key_alg == MANDATE_JWS_NONE ? "an unsupported type or size"
                                                               : mandate_jws_alg_name(key_alg));
            break;
        }
        char *kid = strdup(k->kid);
        if (kid == NULL) {
            EVP_PKEY_free(pkey);
            rc = mandate_error_set(err, MANDATE_ERROR, "jwt: out of memory");
            break;
        }
        ks->keys[i] =
            (struct jwt_key){.kid = kid, .alg = alg, .status = k->status, .pkey = pkey};
        ks->n = i + 1;
        if (ks->signer == NULL && k->status == MANDATE_KEY_ACTIVE) {
            ks->keys[i].signer = mandate_jws_signer_new(pkey, kid, JWT_TYP);
            if (ks->keys[i].signer == NULL) {
                rc = mandate_error_set(err, MANDATE_ERROR,
                                       "jwt: key %.64s: cannot prepare a signer", k->kid);
                break;
            }
            ks->signer = &ks->keys[i];
        }
    }
    if (rc != MANDATE_OK) {
        keyset_unref(&ks);
        return rc;
    }

    /* one reference for the instance, one kept here for the log lines below
     * in case another set_keys replaces ks at once */
    atomic_fetch_add(&ks->refs, 1);
    pthread_mutex_lock(&inst->lock);
    struct jwt_keyset *old = inst->keys;
    inst->keys = ks;
    pthread_mutex_unlock(&inst->lock);
    bool same_signer = old != NULL && old->signer != NULL && ks->signer != NULL &&
                       strcmp(old->signer->kid, ks->signer->kid) == 0;
    keyset_unref(&old);

    if (ks->signer == NULL)
        mandate_log_warning(inst->host, "jwt: %zu key(s), none active: cannot mint", ks->n);
    else if (!same_signer)
        mandate_log_info(inst->host, "jwt: %zu key(s), signing with %s key %.64s", ks->n,
                         mandate_jws_alg_name(ks->signer->alg), ks->signer->kid);
    else
        mandate_log_debug(inst->host, "jwt: %zu key(s), signer unchanged", ks->n);
    keyset_unref(&ks);
    return MANDATE_OK;
}

/* --- mint --------------------------------------------------------------------- */

static mandate_rc jwt_mint(void *inst_, mandate_pool *pool, const mandate_grant *grant,
                           char **token_r, mandate_error *err)
{
    struct jwt_inst *inst = inst_;
    *token_r = NULL;
    if (grant == NULL || grant->issuer == NULL || grant->subject == NULL ||
        grant->client_id == NULL || grant->jti == NULL)
        return mandate_error_set(err, MANDATE_ERROR,
                                 "jwt: grant lacks issuer, subject, client_id or jti");
    json_t *claims = json_object();
    if (claims == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "jwt: out of memory");
    /* the members only that a grant of the host's minor has */
    mandate_rc rc =
        mandate_grant_claims_put_all(claims, grant, inst->host->abi_minor, "jwt", err);
    if (rc != MANDATE_OK) {
        json_decref(claims);
        return rc;
    }

    struct jwt_keyset *ks = keyset_get(inst);
    if (ks == NULL || ks->signer == NULL) {
        keyset_unref(&ks);
        json_decref(claims);
        return mandate_error_set(err, MANDATE_TEMPFAIL, "jwt: no active signing key");
    }
    char *payload = json_dumps(claims, JSON_COMPACT);
    json_decref(claims);
    char *token = payload
                      ? mandate_jws_signer_sign(ks->signer->signer,
                                                (const unsigned char *)payload, strlen(payload))
                      : NULL;
    free(payload);
    keyset_unref(&ks);
    if (token == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "jwt: signing failed");
    size_t len = strlen(token);
    if (len > MANDATE_JWS_MAX_LEN) {
        free(token);
        return mandate_error_set(err, MANDATE_INVALID,
                                 "jwt: token of %zu bytes is over the %d a parser accepts", len,
                                 MANDATE_JWS_MAX_LEN);
    }
    *token_r = inst->host->pool_memdup(pool, token, len + 1);
    free(token);
    return MANDATE_OK;
}

/* --- parse -------------------------------------------------------------------- */

static bool typ_ok(const char *typ)
{
    return typ != NULL &&
           (strcasecmp(typ, JWT_TYP) == 0 || strcasecmp(typ, "application/" JWT_TYP) == 0);
}

/* A bad claim in a token someone presents is theirs: MANDATE_INVALID. */
static const mandate_grant_claims_reader jwt_claims = {"jwt: claim", MANDATE_INVALID};

static mandate_rc grant_from_claims(const struct jwt_inst *inst, mandate_pool *pool,
                                    const json_t *claims, mandate_grant *g, mandate_error *err)
{
    bool has_nbf;
    mandate_rc rc =
        mandate_grant_claims_get(inst->host, pool, claims, &jwt_claims, g, &has_nbf, err);
    if (rc != MANDATE_OK)
        return rc;
    int64_t now = inst->host->now(inst->host), leeway = inst->leeway;
    int64_t exp = g->expires_at, iat = g->issued_at, nbf = g->not_before;
    if (exp <= now - leeway)
        return mandate_error_set(err, MANDATE_EXPIRED, "jwt: expired %lld s ago",
                                 (long long)(now - exp));
    if ((has_nbf && nbf > now + leeway) || iat > now + leeway)
        return mandate_error_set(
            err, MANDATE_INVALID, "jwt: not yet valid (%s %lld s ahead)",
            has_nbf && nbf > now + leeway ? "nbf" : "iat",
            (long long)((has_nbf && nbf > now + leeway ? nbf : iat) - now));
    return MANDATE_OK;
}

static mandate_rc jwt_parse(void *inst_, mandate_pool *pool, const char *token, size_t len,
                            mandate_grant *grant_r, mandate_error *err)
{
    struct jwt_inst *inst = inst_;
    mandate_jws jws;
    memset(grant_r, 0, mandate_grant_size(inst->host->abi_minor));
    mandate_rc rc = mandate_jws_parse(token, len, &jws, err);
    if (rc != MANDATE_OK)
        return rc; /* MANDATE_NEXT: not a JWT, another format may know it */
    if (!typ_ok(jws.typ)) {
        rc = mandate_error_set(err, MANDATE_INVALID, "jwt: typ is %s, not " JWT_TYP,
                               jws.typ == NULL ? "missing" : "another type");
        mandate_jws_clear(&jws);
        return rc;
    }
    if (jws.kid == NULL) {
        mandate_jws_clear(&jws);
        return mandate_error_set(err, MANDATE_INVALID, "jwt: header has no kid");
    }
    struct jwt_keyset *ks = keyset_get(inst);
    const struct jwt_key *key = keyset_find(ks, jws.kid);
    if (key == NULL)
        rc = mandate_error_set(err, MANDATE_INVALID, "jwt: unknown kid");
    else
        rc = mandate_jws_verify_with(token, len, key->pkey, MANDATE_JWS_LOW_S, err);
    keyset_unref(&ks);
    if (rc == MANDATE_OK)
        rc = grant_from_claims(inst, pool, jws.claims, grant_r, err);
    mandate_jws_clear(&jws);
    if (rc != MANDATE_OK)
        memset(grant_r, 0, mandate_grant_size(inst->host->abi_minor));
    return rc;
}

/* --- keygen ------------------------------------------------------------------- */

static mandate_rc jwt_keygen(void *inst_, mandate_pool *pool, const char *alg_name,
                             mandate_key *key_r, unsigned char **private_der_r,
                             size_t *private_der_len_r, mandate_error *err)
{
    struct jwt_inst *inst = inst_;
    const mandate_host *host = inst->host;
    memset(key_r, 0, sizeof(*key_r));
    *private_der_r = NULL;
    *private_der_len_r = 0;
    mandate_jws_alg alg =
        alg_name != NULL ? mandate_jws_alg_parse(alg_name) : inst->default_alg;
    if (alg == MANDATE_JWS_NONE)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "jwt: alg %.16s is not ES256, RS256 or EdDSA", alg_name);

    EVP_PKEY *pkey = mandate_jose_keygen(alg);
    if (pkey == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "jwt: cannot make a %s key",
                                 mandate_jws_alg_name(alg));
    char kid[MANDATE_JWK_THUMBPRINT_LEN + 1];
    json_t *jwk = NULL;
    char *jwk_text = NULL;
    unsigned char *der = NULL;
    size_t der_len = 0;
    mandate_rc rc = MANDATE_OK;
    if (!mandate_jwk_thumbprint(pkey, kid) || (jwk = mandate_jwk_from_key(pkey, kid)) == NULL ||
        (jwk_text = json_dumps(jwk, JSON_COMPACT)) == NULL ||
        !mandate_jose_private_to_der(pkey, &der, &der_len)) {
        rc = mandate_error_set(err, MANDATE_ERROR, "jwt: cannot export the new %s key",
                               mandate_jws_alg_name(alg));
    } else {
        key_r->kid = host->pool_strdup(pool, kid);
        key_r->alg = host->pool_strdup(pool, mandate_jws_alg_name(alg));
        key_r->format = host->instance != NULL ? host->pool_strdup(pool, host->instance) : NULL;
        key_r->status = MANDATE_KEY_ACTIVE;
        key_r->public_jwk = host->pool_strdup(pool, jwk_text);
        key_r->created_at = host->now(host);
        *private_der_r = (unsigned char *)host->pool_memdup(pool, der, der_len);
        *private_der_len_r = der_len;
    }
    OPENSSL_clear_free(der, der_len);
    free(jwk_text);
    json_decref(jwk);
    EVP_PKEY_free(pkey);
    return rc;
}

/* --- instance ----------------------------------------------------------------- */

static void jwt_destroy(void *inst_)
{
    struct jwt_inst *inst = inst_;
    if (!inst->initialized)
        return;
    keyset_unref(&inst->keys);
    pthread_mutex_destroy(&inst->lock);
    inst->initialized = false;
}

static mandate_rc jwt_instantiate(void *inst_, const mandate_host *host, mandate_error *err)
{
    struct jwt_inst *inst = inst_;
    char alg[32];
    inst->host = host;
    snprintf(alg, sizeof(alg), "%s", inst->algorithm != NULL ? inst->algorithm : "ES256");
    inst->default_alg = mandate_jws_alg_parse(alg);
    if (inst->default_alg == MANDATE_JWS_NONE)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "jwt: algorithm must be ES256, RS256 or EdDSA");
    if (inst->leeway < 0 || inst->leeway > 300)
        return mandate_error_set(err, MANDATE_INVALID, "jwt: leeway must be 0 to 300 seconds");
    if (pthread_mutex_init(&inst->lock, NULL) != 0)
        return mandate_error_set(err, MANDATE_ERROR, "jwt: pthread_mutex_init failed");
    inst->keys = NULL;
    inst->initialized = true;
    return MANDATE_OK;
}

/* Other JWTs than access tokens (the ID-JAGs of the enterprise broker): the
 * active key, a header of their own type. */
static mandate_rc jwt_sign(void *inst_, mandate_pool *pool, const char *typ, const char *claims,
                           size_t claims_len, char **jws_r, mandate_error *err)
{
    struct jwt_inst *inst = inst_;
    *jws_r = NULL;
    if (typ == NULL || strcasecmp(typ, JWT_TYP) == 0 ||
        strcasecmp(typ, "application/" JWT_TYP) == 0)
        return mandate_error_set(err, MANDATE_ERROR,
                                 "jwt: sign is for other types than access tokens");
    struct jwt_keyset *ks = keyset_get(inst);
    if (ks == NULL || ks->signer == NULL) {
        keyset_unref(&ks);
        return mandate_error_set(err, MANDATE_TEMPFAIL, "jwt: no active signing key");
    }
    char *token = mandate_jws_sign_payload(ks->signer->pkey, ks->signer->kid, typ,
                                           (const unsigned char *)claims, claims_len);
    keyset_unref(&ks);
    if (token == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "jwt: signing failed");
    *jws_r = inst->host->pool_strdup(pool, token);
    free(token);
    return *jws_r != NULL ? MANDATE_OK : mandate_error_set(err, MANDATE_ERROR, "out of memory");
}

static const mandate_conf_def jwt_conf[] = {
    {"algorithm", MANDATE_CONF_STRING, 0, offsetof(struct jwt_inst, algorithm), "ES256", 0, 0,
     "ES256|RS256|EdDSA", "the algorithm of new signing keys when none is named"},
    {"leeway", MANDATE_CONF_INT, 0, offsetof(struct jwt_inst, leeway), "5", 0, 300, NULL,
     "seconds of clock skew allowed between broker nodes when checking nbf, iat and exp"},
    MANDATE_CONF_END,
};

static const mandate_format_ops jwt_ops = {
    .mint = jwt_mint,
    .parse = jwt_parse,
    .keygen = jwt_keygen,
    .set_keys = jwt_set_keys,
    .sign = jwt_sign,
};

MANDATE_PLUGIN(jwt, MANDATE_FORMAT, PACKAGE_VERSION, 0, struct jwt_inst, jwt_conf,
               jwt_instantiate, jwt_destroy, &jwt_ops);
