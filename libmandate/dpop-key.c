/* mandate_dpop_key: an agent's DPoP proof key (RFC 9449), generated in
 * memory or read from a PEM or JWK file, and the proofs it signs. The
 * proof itself is lib/dpop.c's mandate_dpop_proof_make, the one the tests'
 * proof tool uses too; keys are OpenSSL's. */
#include "config.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "dpop-key.h"
#include "dpop.h"
#include "http-client.h"
#include "jose.h"

/* A key file is small: a PEM RSA-4096 key is about 3.3 KiB. */
#define KEY_FILE_MAX (16 * 1024)

/* --- a private JWK ------------------------------------------------------------ */

/* base64url member of jwk into out, exactly want bytes. */
static bool member_bytes(const json_t *jwk, const char *name, unsigned char *out, size_t want)
{
    const char *v = json_string_value(json_object_get(jwk, name));
    size_t n = 0;
    return v != NULL && mandate_b64url_decode(v, strlen(v), out, want, &n) && n == want;
}

/* EC P-256 (x, y, d) or OKP Ed25519 (x, d), built by OpenSSL from its
 * parts and checked to be one key pair (OpenSSL takes the public part on
 * trust). RSA keys come as PEM. */
static EVP_PKEY *private_jwk_to_key(const json_t *jwk, const char **why_r)
{
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    unsigned char d[32], x[32], point[65];
    EVP_PKEY *key = NULL;
    *why_r = "a JWK key file must be EC P-256 or OKP Ed25519 with its private member d";
    if (kty != NULL && crv != NULL && strcmp(kty, "OKP") == 0 && strcmp(crv, "Ed25519") == 0) {
        if (member_bytes(jwk, "d", d, sizeof(d)) && member_bytes(jwk, "x", x, sizeof(x)))
            key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, d, sizeof(d));
        unsigned char pub[32];
        size_t pub_len = sizeof(pub);
        if (key != NULL && (EVP_PKEY_get_raw_public_key(key, pub, &pub_len) != 1 ||
                            pub_len != sizeof(pub) || memcmp(pub, x, sizeof(x)) != 0)) {
            EVP_PKEY_free(key);
            key = NULL;
            *why_r = "the JWK's x is not the public key of its d";
        }
    } else if (kty != NULL && crv != NULL && strcmp(kty, "EC") == 0 &&
               strcmp(crv, "P-256") == 0 && member_bytes(jwk, "d", d, sizeof(d)) &&
               member_bytes(jwk, "x", point + 1, 32) &&
               member_bytes(jwk, "y", point + 33, 32)) {
        point[0] = 0x04; /* uncompressed */
        OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
        BIGNUM *priv = BN_bin2bn(d, sizeof(d), NULL);
        OSSL_PARAM *params = NULL;
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
        if (bld != NULL && priv != NULL &&
            OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0) &&
            OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point,
                                             sizeof(point)) &&
            OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, priv) &&
            (params = OSSL_PARAM_BLD_to_param(bld)) != NULL && ctx != NULL &&
            EVP_PKEY_fromdata_init(ctx) == 1)
            EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_KEYPAIR, params);
        EVP_PKEY_CTX_free(ctx);
        EVP_PKEY_CTX *check = key != NULL ? EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL) : NULL;
        if (key != NULL && (check == NULL || EVP_PKEY_pairwise_check(check) != 1)) {
            EVP_PKEY_free(key);
            key = NULL;
            *why_r = "the JWK's x and y are not the public key of its d";
        }
        EVP_PKEY_CTX_free(check);
        OSSL_PARAM_free(params);
        BN_clear_free(priv);
        OSSL_PARAM_BLD_free(bld);
    }
    OPENSSL_cleanse(d, sizeof(d));
    return key;
}

/* --- new and free ------------------------------------------------------------- */

static mandate_dpop_key *wrap(EVP_PKEY *pkey, char *errbuf, size_t errlen)
{
    if (mandate_jws_alg_for_key(pkey) == MANDATE_JWS_NONE) {
        EVP_PKEY_free(pkey);
        mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_INVALID,
                            "a DPoP key must be P-256, Ed25519 or RSA of 2048 bits or more");
        return NULL;
    }
    mandate_dpop_key *k = calloc(1, sizeof(*k));
    if (k == NULL || !mandate_jwk_thumbprint(pkey, k->jkt)) {
        free(k);
        EVP_PKEY_free(pkey);
        mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_ERROR, "out of memory");
        return NULL;
    }
    k->pkey = pkey;
    atomic_init(&k->refs, 1);
    return k;
}

mandate_dpop_key *mandate_dpop_key_generate(const char *alg, char *errbuf, size_t errlen)
{
    mandate_jws_alg a = alg == NULL ? MANDATE_JWS_ES256 : mandate_jws_alg_parse(alg);
    if (a == MANDATE_JWS_NONE) {
        mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_INVALID,
                            "a DPoP key's alg is ES256, EdDSA or RS256");
        return NULL;
    }
    EVP_PKEY *pkey = mandate_jose_keygen(a);
    if (pkey == NULL) {
        mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_ERROR, "key generation failed");
        return NULL;
    }
    return wrap(pkey, errbuf, errlen);
}

mandate_dpop_key *mandate_dpop_key_load(const char *path, char *errbuf, size_t errlen)
{
    if (path == NULL) {
        mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_INVALID, "no key file");
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_INVALID, "cannot open the key file");
        return NULL;
    }
    char *text = malloc(KEY_FILE_MAX + 1);
    size_t n = text != NULL ? fread(text, 1, KEY_FILE_MAX + 1, f) : 0;
    fclose(f);
    if (text == NULL || n == 0 || n > KEY_FILE_MAX) {
        if (text != NULL)
            OPENSSL_clear_free(text, KEY_FILE_MAX + 1);
        mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_INVALID,
                            "the key file is empty, unreadable or over %d bytes", KEY_FILE_MAX);
        return NULL;
    }
    text[n] = '\0';
    EVP_PKEY *pkey = NULL;
    const char *why = "the key file holds neither a PEM private key nor a JWK";
    size_t lead = strspn(text, " \t\r\n");
    if (text[lead] == '{') {
        json_t *jwk = json_loadb(text, n, JSON_REJECT_DUPLICATES, NULL);
        if (json_is_object(jwk))
            pkey = private_jwk_to_key(jwk, &why);
        /* jansson does not wipe: at least overwrite d before it goes */
        json_t *d = json_object_get(jwk, "d");
        if (json_is_string(d))
            OPENSSL_cleanse((void *)json_string_value(d), json_string_length(d));
        json_decref(jwk);
    } else {
        BIO *bio = BIO_new_mem_buf(text, (int)n);
        pkey = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
    }
    OPENSSL_clear_free(text, KEY_FILE_MAX + 1);
    if (pkey == NULL) {
        mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_INVALID, "%s", why);
        return NULL;
    }
    return wrap(pkey, errbuf, errlen);
}

mandate_dpop_key *libmandate_dpop_key_ref(const mandate_dpop_key *key)
{
    mandate_dpop_key *k = (mandate_dpop_key *)key;
    atomic_fetch_add(&k->refs, 1);
    return k;
}

void mandate_dpop_key_free(mandate_dpop_key **key)
{
    if (key == NULL || *key == NULL)
        return;
    mandate_dpop_key *k = *key;
    *key = NULL;
    if (atomic_fetch_sub(&k->refs, 1) != 1)
        return;
    EVP_PKEY_free(k->pkey);
    free(k);
}

const char *mandate_dpop_key_thumbprint(const mandate_dpop_key *key)
{
    return key != NULL ? key->jkt : NULL;
}

/* --- proofs ------------------------------------------------------------------- */

mandate_client_rc mandate_dpop_key_proof(const mandate_dpop_key *key, const char *method,
                                         const char *uri, const char *access_token,
                                         const char *nonce, char **proof_r, char *errbuf,
                                         size_t errlen)
{
    if (proof_r != NULL)
        *proof_r = NULL;
    if (key == NULL || proof_r == NULL || method == NULL || method[0] == '\0' ||
        !mandate_client_url_ok(uri))
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_INVALID,
                                   "a proof needs a key, a method and an http(s) URI");
    if (nonce != NULL && (nonce[0] == '\0' || strlen(nonce) > MANDATE_DPOP_NONCE_MAX))
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_INVALID,
                                   "a DPoP nonce is 1 to %d bytes", MANDATE_DPOP_NONCE_MAX);
    /* RFC 9449 §4.2: htu without query and fragment */
    size_t len = strcspn(uri, "?#");
    char *htu = strndup(uri, len);
    char *proof = htu != NULL ? mandate_dpop_proof_make(key->pkey, method, htu, access_token,
                                                        nonce, (int64_t)time(NULL))
                              : NULL;
    free(htu);
    if (proof == NULL)
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_ERROR,
                                   "cannot make a DPoP proof");
    *proof_r = proof;
    return MANDATE_CLIENT_OK;
}
