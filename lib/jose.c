/* JOSE with OpenSSL 3 EVP and jansson: base64url, JWK and RFC 7638
 * thumbprints, compact JWS for ES256, RS256 and EdDSA.
 *
 * No state, no locks: every function works on its arguments only, so it is
 * safe from any thread (an EVP_PKEY may be shared by threads that sign or
 * verify with it at the same time). Errors found in OpenSSL's per-thread
 * error queue are cleared before returning, so a failed decode here does not
 * confuse a later caller. Messages never quote key material or a token; the
 * few attacker-chosen strings they name (an alg) are cut short and reduced to
 * printable ASCII. */
#include "config.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "jose.h"
#include "word-list.h"

/* Largest RSA modulus accepted in a JWK or a signature: 16384 bits. */
#define JOSE_RSA_MAX_BYTES 2048
/* Largest RSA public exponent accepted in a JWK. */
#define JOSE_RSA_MAX_E_BYTES 8
/* Largest PEM public key accepted. */
#define JOSE_PEM_MAX (64 * 1024)
/* P-256 coordinates and scalars; Ed25519 keys; raw ES256/EdDSA signatures. */
#define JOSE_P256_BYTES 32
#define JOSE_ED25519_BYTES 32
#define JOSE_RAW_SIG_BYTES 64

/* The order n of P-256's base point (FIPS 186-4 D.1.2.3) and floor(n/2),
 * big-endian: an ES256 signature's r and s are scalars in [1, n-1], and
 * (r, s) and (r, n - s) both verify. Fixed-width, so memcmp compares them. */
static const unsigned char p256_order[JOSE_P256_BYTES] = {
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17,
    0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51};
static const unsigned char p256_half_order[JOSE_P256_BYTES] = {
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b,
    0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8};

/* --- base64url ---------------------------------------------------------------- */

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

size_t mandate_b64url_encoded_len(size_t n)
{
    return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

void mandate_b64url_encode(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64url_alphabet[v >> 18 & 63];
        out[o++] = b64url_alphabet[v >> 12 & 63];
        out[o++] = b64url_alphabet[v >> 6 & 63];
        out[o++] = b64url_alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64url_alphabet[v >> 18 & 63];
        out[o++] = b64url_alphabet[v >> 12 & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64url_alphabet[v >> 18 & 63];
        out[o++] = b64url_alphabet[v >> 12 & 63];
        out[o++] = b64url_alphabet[v >> 6 & 63];
    }
    out[o] = '\0';
}

/* Strict: only the 64 characters of the URL-safe alphabet, no padding, and
 * the unused low bits of the last character must be zero, so that every
 * byte string has exactly one encoding (no malleable tokens). */
bool mandate_b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap,
                           size_t *out_len)
{
    if (out_len != NULL)
        *out_len = 0;
    if (n % 4 == 1 || (in == NULL && n != 0))
        return false;
    size_t need = n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1);
    if (need > cap || (out == NULL && need != 0))
        return false;
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0)
            return false;
        acc = (acc << 6 | (uint32_t)v) & 0xfff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (bits > 0 && acc != 0)
        return false;
    if (out_len != NULL)
        *out_len = o;
    return true;
}

/* Would mandate_b64url_decode accept in? Without writing anything. */
static bool b64url_valid(const char *in, size_t n)
{
    if (n % 4 == 1)
        return false;
    for (size_t i = 0; i < n; i++)
        if (b64url_value((unsigned char)in[i]) < 0)
            return false;
    if (n % 4 == 0)
        return true;
    /* the last character carries 4 (n % 4 == 2) or 2 (n % 4 == 3) unused bits */
    int last = b64url_value((unsigned char)in[n - 1]);
    return (last & (n % 4 == 2 ? 0xf : 0x3)) == 0;
}

/* A malloc'd base64url string of n bytes. */
static char *b64url_dup(const unsigned char *in, size_t n)
{
    char *out = malloc(mandate_b64url_encoded_len(n) + 1);
    if (out != NULL)
        mandate_b64url_encode(in, n, out);
    return out;
}

/* --- small helpers ---------------------------------------------------------------- */

/* An attacker-chosen string made fit for a log line: at most 24 printable
 * ASCII characters, others shown as '?'. */
static const char *printable(const char *s, char buf[32])
{
    size_t i = 0;
    for (; s != NULL && s[i] != '\0' && i < 24; i++)
        buf[i] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"') ? s[i] : '?';
    if (s != NULL && s[i] != '\0') {
        memcpy(buf + i, "...", 3);
        i += 3;
    }
    buf[i] = '\0';
    return buf;
}

/* jansson's error text without the " near '...'" quote of the input. */
static const char *json_reason(const json_error_t *jerr, char buf[JSON_ERROR_TEXT_LENGTH])
{
    snprintf(buf, JSON_ERROR_TEXT_LENGTH, "%s", jerr->text);
    char *near = strstr(buf, " near ");
    if (near != NULL)
        *near = '\0';
    return buf;
}

static EVP_PKEY *fail_key(EVP_PKEY *key)
{
    EVP_PKEY_free(key);
    ERR_clear_error();
    return NULL;
}

/* --- algorithms -------------------------------------------------------------------- */

/* The algorithms by their JWA names (RFC 7518 §3.1, RFC 8037 §3.1): one
 * table for both ways. */
static const struct {
    mandate_jws_alg alg;
    const char *name;
} jws_algs[] = {
    {MANDATE_JWS_ES256, "ES256"}, {MANDATE_JWS_RS256, "RS256"}, {MANDATE_JWS_EDDSA, "EdDSA"}};

mandate_jws_alg mandate_jws_alg_parse(const char *name)
{
    for (size_t i = 0; name != NULL && i < sizeof(jws_algs) / sizeof(jws_algs[0]); i++)
        if (strcmp(name, jws_algs[i].name) == 0)
            return jws_algs[i].alg;
    return MANDATE_JWS_NONE;
}

const char *mandate_jws_alg_name(mandate_jws_alg alg)
{
    for (size_t i = 0; i < sizeof(jws_algs) / sizeof(jws_algs[0]); i++)
        if (jws_algs[i].alg == alg)
            return jws_algs[i].name;
    return "none";
}

static bool is_p256(const EVP_PKEY *key)
{
    char group[64];
    size_t len = 0;
    if (EVP_PKEY_get_group_name(key, group, sizeof(group), &len) != 1) {
        ERR_clear_error();
        return false;
    }
    return strcasecmp(group, "prime256v1") == 0 || strcasecmp(group, "P-256") == 0 ||
           strcasecmp(group, "secp256r1") == 0;
}

mandate_jws_alg mandate_jws_alg_for_key(const EVP_PKEY *key)
{
    if (key == NULL)
        return MANDATE_JWS_NONE;
    if (EVP_PKEY_is_a(key, "ED25519"))
        return MANDATE_JWS_EDDSA;
    if (EVP_PKEY_is_a(key, "RSA"))
        return EVP_PKEY_get_bits(key) >= 2048 ? MANDATE_JWS_RS256 : MANDATE_JWS_NONE;
    if (EVP_PKEY_is_a(key, "EC") && is_p256(key))
        return MANDATE_JWS_ES256;
    return MANDATE_JWS_NONE;
}

/* --- keys -------------------------------------------------------------------------- */

EVP_PKEY *mandate_jose_keygen(mandate_jws_alg alg)
{
    EVP_PKEY *key = NULL;
    switch (alg) {
    case MANDATE_JWS_ES256: key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"); break;
    case MANDATE_JWS_RS256: key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048); break;
    case MANDATE_JWS_EDDSA: key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"); break;
    case MANDATE_JWS_NONE: break;
    }
    if (key == NULL)
        ERR_clear_error();
    return key;
}

bool mandate_jose_private_to_der(const EVP_PKEY *key, unsigned char **der_r, size_t *len_r)
{
    *der_r = NULL;
    *len_r = 0;
    if (key == NULL)
        return false;
    OSSL_ENCODER_CTX *ctx =
        OSSL_ENCODER_CTX_new_for_pkey(key, EVP_PKEY_KEYPAIR, "DER", "PrivateKeyInfo", NULL);
    unsigned char *der = NULL;
    size_t len = 0;
    bool ok = ctx != NULL && OSSL_ENCODER_CTX_get_num_encoders(ctx) > 0 &&
              OSSL_ENCODER_to_data(ctx, &der, &len) == 1 && der != NULL && len > 0;
    OSSL_ENCODER_CTX_free(ctx);
    if (!ok) {
        OPENSSL_clear_free(der, len);
        ERR_clear_error();
        return false;
    }
    *der_r = der;
    *len_r = len;
    return true;
}

EVP_PKEY *mandate_jose_private_from_der(const unsigned char *der, size_t len)
{
    if (der == NULL || len == 0 || len > LONG_MAX)
        return NULL;
    const unsigned char *p = der;
    PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)len);
    if (p8 == NULL || p != der + len) {
        /* trailing bytes after the structure are refused too */
        PKCS8_PRIV_KEY_INFO_free(p8);
        return fail_key(NULL);
    }
    EVP_PKEY *key = EVP_PKCS82PKEY(p8);
    PKCS8_PRIV_KEY_INFO_free(p8);
    if (key == NULL)
        return fail_key(NULL);
    return key;
}

EVP_PKEY *mandate_jose_public_from_pem(const char *pem, size_t len)
{
    if (pem == NULL || len == 0 || len > JOSE_PEM_MAX)
        return NULL;
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL)
        return fail_key(NULL);
    EVP_PKEY *key = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (key == NULL)
        return fail_key(NULL);
    return key;
}

/* --- JWK --------------------------------------------------------------------------- */

/* A BIGNUM parameter of key as base64url: minimal big-endian when pad is 0,
 * else left-padded to exactly pad bytes. malloc'd; NULL on failure. */
static char *bn_param_b64(const EVP_PKEY *key, const char *name, size_t pad)
{
    BIGNUM *bn = NULL;
    char *out = NULL;
    if (EVP_PKEY_get_bn_param(key, name, &bn) != 1 || bn == NULL) {
        ERR_clear_error();
        return NULL;
    }
    int nbytes = BN_num_bytes(bn);
    size_t len = pad != 0 ? pad : (size_t)(nbytes > 0 ? nbytes : 1);
    unsigned char *buf = malloc(len);
    if (buf != NULL && (pad == 0 || (size_t)nbytes <= pad) &&
        BN_bn2binpad(bn, buf, (int)len) == (int)len)
        out = b64url_dup(buf, len);
    free(buf);
    BN_free(bn);
    return out;
}

static char *raw_public_b64(const EVP_PKEY *key)
{
    unsigned char raw[JOSE_ED25519_BYTES];
    size_t len = sizeof(raw);
    if (EVP_PKEY_get_raw_public_key(key, raw, &len) != 1 || len != sizeof(raw)) {
        ERR_clear_error();
        return NULL;
    }
    return b64url_dup(raw, len);
}

/* The public members of a key, base64url: EC x and y, RSA n and e, OKP x (b
 * NULL). Both malloc'd; false on failure (nothing to free then). */
static bool public_members(const EVP_PKEY *key, mandate_jws_alg alg, char **a_r, char **b_r)
{
    char *a = NULL, *b = NULL;
    switch (alg) {
    case MANDATE_JWS_ES256:
        a = bn_param_b64(key, OSSL_PKEY_PARAM_EC_PUB_X, JOSE_P256_BYTES);
        b = bn_param_b64(key, OSSL_PKEY_PARAM_EC_PUB_Y, JOSE_P256_BYTES);
        break;
    case MANDATE_JWS_RS256:
        a = bn_param_b64(key, OSSL_PKEY_PARAM_RSA_N, 0);
        b = bn_param_b64(key, OSSL_PKEY_PARAM_RSA_E, 0);
        break;
    case MANDATE_JWS_EDDSA: a = raw_public_b64(key); break;
    case MANDATE_JWS_NONE: break;
    }
    if (a == NULL || (b == NULL && alg != MANDATE_JWS_EDDSA)) {
        free(a);
        free(b);
        return false;
    }
    *a_r = a;
    *b_r = b;
    return true;
}

static int set_str(json_t *obj, const char *key, const char *value)
{
    return json_object_set_new(obj, key, json_string(value));
}

json_t *mandate_jwk_from_key(const EVP_PKEY *key, const char *kid)
{
    mandate_jws_alg alg = mandate_jws_alg_for_key(key);
    char *a, *b;
    if (alg == MANDATE_JWS_NONE || !public_members(key, alg, &a, &b))
        return NULL;
    json_t *jwk = json_object();
    int bad = jwk == NULL;
    switch (alg) {
    case MANDATE_JWS_ES256:
        bad = bad || set_str(jwk, "kty", "EC") || set_str(jwk, "crv", "P-256") ||
              set_str(jwk, "x", a) || set_str(jwk, "y", b);
        break;
    case MANDATE_JWS_RS256:
        bad = bad || set_str(jwk, "kty", "RSA") || set_str(jwk, "n", a) || set_str(jwk, "e", b);
        break;
    case MANDATE_JWS_EDDSA:
        bad = bad || set_str(jwk, "kty", "OKP") || set_str(jwk, "crv", "Ed25519") ||
              set_str(jwk, "x", a);
        break;
    case MANDATE_JWS_NONE: break;
    }
    bad = bad || set_str(jwk, "use", "sig") || set_str(jwk, "alg", mandate_jws_alg_name(alg));
    if (kid != NULL)
        bad = bad || set_str(jwk, "kid", kid);
    free(a);
    free(b);
    if (bad) {
        json_decref(jwk);
        return NULL;
    }
    return jwk;
}

bool mandate_jwk_thumbprint(const EVP_PKEY *key, char out[MANDATE_JWK_THUMBPRINT_LEN + 1])
{
    mandate_jws_alg alg = mandate_jws_alg_for_key(key);
    char *a, *b;
    out[0] = '\0';
    if (alg == MANDATE_JWS_NONE || !public_members(key, alg, &a, &b))
        return false;
    /* RFC 7638 §3.2: the required members only, in lexicographic order, no
     * whitespace. base64url needs no JSON escaping. */
    size_t cap = strlen(a) + (b != NULL ? strlen(b) : 0) + 64;
    char *text = malloc(cap);
    int n = -1;
    if (text != NULL) {
        switch (alg) {
        case MANDATE_JWS_ES256:
            n = snprintf(text, cap,
                         "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", a, b);
            break;
        case MANDATE_JWS_RS256:
            n = snprintf(text, cap, "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", b, a);
            break;
        case MANDATE_JWS_EDDSA:
            n = snprintf(text, cap, "{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"%s\"}", a);
            break;
        case MANDATE_JWS_NONE: break;
        }
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    bool ok = n > 0 && (size_t)n < cap &&
              EVP_Digest(text, (size_t)n, md, &md_len, EVP_sha256(), NULL) == 1 && md_len == 32;
    free(text);
    free(a);
    free(b);
    if (!ok) {
        ERR_clear_error();
        return false;
    }
    mandate_b64url_encode(md, md_len, out);
    return true;
}

/* A JWK member that must be base64url of exactly want bytes (want 0: any
 * length from 1 to cap). */
static bool jwk_bytes(const json_t *jwk, const char *name, unsigned char *buf, size_t cap,
                      size_t want, size_t *len_r, mandate_error *err)
{
    const char *s = json_string_value(json_object_get(jwk, name));
    size_t len = 0;
    if (s == NULL) {
        mandate_error_set(err, MANDATE_INVALID, "JWK: \"%s\" is missing or not a string", name);
        return false;
    }
    if (!mandate_b64url_decode(s, strlen(s), buf, cap, &len) || len == 0 ||
        (want != 0 && len != want)) {
        if (want != 0)
            mandate_error_set(err, MANDATE_INVALID, "JWK: \"%s\" is not base64url of %zu bytes",
                              name, want);
        else
            mandate_error_set(err, MANDATE_INVALID,
                              "JWK: \"%s\" is not base64url of at most %zu bytes", name, cap);
        return false;
    }
    *len_r = len;
    return true;
}

static EVP_PKEY *pkey_fromdata(const char *type, OSSL_PARAM *params)
{
    EVP_PKEY *key = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        EVP_PKEY_free(key);
        key = NULL;
        ERR_clear_error();
    }
    EVP_PKEY_CTX_free(ctx);
    return key;
}

/* Whether the JWK's crv is want; false said in err (kty: "EC", "OKP"). */
static bool jwk_curve_is(const json_t *jwk, const char *kty, const char *want,
                         mandate_error *err)
{
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    char buf[32];
    if (crv != NULL && strcmp(crv, want) == 0)
        return true;
    mandate_error_set(err, MANDATE_INVALID, "JWK: %s curve \"%s\" is not supported", kty,
                      printable(crv != NULL ? crv : "", buf));
    return false;
}

static EVP_PKEY *jwk_ec(const json_t *jwk, mandate_error *err)
{
    unsigned char pub[1 + 2 * JOSE_P256_BYTES];
    size_t len;
    if (!jwk_curve_is(jwk, "EC", "P-256", err))
        return NULL;
    pub[0] = 0x04; /* uncompressed point */
    if (!jwk_bytes(jwk, "x", pub + 1, JOSE_P256_BYTES, JOSE_P256_BYTES, &len, err) ||
        !jwk_bytes(jwk, "y", pub + 1 + JOSE_P256_BYTES, JOSE_P256_BYTES, JOSE_P256_BYTES, &len,
                   err))
        return NULL;
    char group[] = "prime256v1";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub)),
        OSSL_PARAM_construct_end(),
    };
    /* decoding the point checks that it is on the curve */
    EVP_PKEY *key = pkey_fromdata("EC", params);
    if (key == NULL)
        mandate_error_set(err, MANDATE_INVALID, "JWK: x and y are not a point of P-256");
    return key;
}

static EVP_PKEY *jwk_rsa(const json_t *jwk, mandate_error *err)
{
    unsigned char *nbuf = malloc(JOSE_RSA_MAX_BYTES);
    unsigned char ebuf[JOSE_RSA_MAX_E_BYTES];
    size_t nlen = 0, elen = 0;
    BIGNUM *n = NULL, *e = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY *key = NULL;
    if (nbuf == NULL) {
        mandate_error_set(err, MANDATE_ERROR, "JWK: out of memory");
        return NULL;
    }
    if (!jwk_bytes(jwk, "n", nbuf, JOSE_RSA_MAX_BYTES, 0, &nlen, err) ||
        !jwk_bytes(jwk, "e", ebuf, sizeof(ebuf), 0, &elen, err))
        goto out;
    n = BN_bin2bn(nbuf, (int)nlen, NULL);
    e = BN_bin2bn(ebuf, (int)elen, NULL);
    if (n == NULL || e == NULL) {
        ERR_clear_error();
        mandate_error_set(err, MANDATE_ERROR, "JWK: out of memory");
        goto out;
    }
    /* n and e odd, e > 1: anything else is no RSA key */
    if (!BN_is_odd(n) || !BN_is_odd(e) || BN_is_one(e)) {
        mandate_error_set(err, MANDATE_INVALID, "JWK: n and e are not an RSA public key");
        goto out;
    }
    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL || OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1 ||
        (params = OSSL_PARAM_BLD_to_param(bld)) == NULL) {
        ERR_clear_error();
        mandate_error_set(err, MANDATE_ERROR, "JWK: cannot build RSA parameters");
        goto out;
    }
    key = pkey_fromdata("RSA", params);
    if (key == NULL)
        mandate_error_set(err, MANDATE_INVALID, "JWK: n and e are not an RSA public key");
out:
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    free(nbuf);
    return key;
}

static EVP_PKEY *jwk_okp(const json_t *jwk, mandate_error *err)
{
    unsigned char x[JOSE_ED25519_BYTES];
    size_t len;
    if (!jwk_curve_is(jwk, "OKP", "Ed25519", err))
        return NULL;
    if (!jwk_bytes(jwk, "x", x, sizeof(x), sizeof(x), &len, err))
        return NULL;
    EVP_PKEY *key = EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL, x, sizeof(x));
    if (key == NULL) {
        ERR_clear_error();
        mandate_error_set(err, MANDATE_INVALID, "JWK: x is not an Ed25519 public key");
    }
    return key;
}

EVP_PKEY *mandate_jwk_to_key(const json_t *jwk, mandate_error *err)
{
    char buf[32];
    if (!json_is_object(jwk)) {
        mandate_error_set(err, MANDATE_INVALID, "JWK is not a JSON object");
        return NULL;
    }
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    const json_t *use = json_object_get(jwk, "use");
    const json_t *alg = json_object_get(jwk, "alg");
    if (kty == NULL) {
        mandate_error_set(err, MANDATE_INVALID, "JWK: \"kty\" is missing or not a string");
        return NULL;
    }
    if (use != NULL && (!json_is_string(use) || strcmp(json_string_value(use), "sig") != 0)) {
        mandate_error_set(err, MANDATE_INVALID, "JWK: \"use\" is not \"sig\"");
        return NULL;
    }
    if (alg != NULL && !json_is_string(alg)) {
        mandate_error_set(err, MANDATE_INVALID, "JWK: \"alg\" is not a string");
        return NULL;
    }
    EVP_PKEY *key;
    if (strcmp(kty, "EC") == 0) {
        key = jwk_ec(jwk, err);
    } else if (strcmp(kty, "RSA") == 0) {
        key = jwk_rsa(jwk, err);
    } else if (strcmp(kty, "OKP") == 0) {
        key = jwk_okp(jwk, err);
    } else {
        mandate_error_set(err, MANDATE_INVALID, "JWK: kty \"%s\" is not supported",
                          printable(kty, buf));
        return NULL;
    }
    if (key == NULL)
        return NULL;
    mandate_jws_alg key_alg = mandate_jws_alg_for_key(key);
    if (key_alg == MANDATE_JWS_NONE) {
        mandate_error_set(err, MANDATE_INVALID,
                          "JWK: the key is too weak to use (RSA < 2048 bits)");
        return fail_key(key);
    }
    if (alg != NULL && strcmp(json_string_value(alg), mandate_jws_alg_name(key_alg)) != 0) {
        mandate_error_set(err, MANDATE_INVALID, "JWK: \"alg\" %s does not fit a %s key",
                          printable(json_string_value(alg), buf), kty);
        return fail_key(key);
    }
    return key;
}

/* --- signatures ---------------------------------------------------------------------- */

static EVP_MD_CTX *digest_ctx(const EVP_PKEY *key_, mandate_jws_alg alg, bool sign)
{
    /* EVP takes a non-const key, but signing and verifying do not change it */
    EVP_PKEY *key = (EVP_PKEY *)key_;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    const char *md = alg == MANDATE_JWS_EDDSA ? NULL : "SHA256";
    if (ctx == NULL)
        return NULL;
    int r = sign ? EVP_DigestSignInit_ex(ctx, &pctx, md, NULL, NULL, key, NULL)
                 : EVP_DigestVerifyInit_ex(ctx, &pctx, md, NULL, NULL, key, NULL);
    if (r != 1 || (alg == MANDATE_JWS_RS256 &&
                   EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1)) {
        EVP_MD_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* A scalar of P-256 in [1, n-1] (big-endian, 32 bytes). */
static bool p256_scalar_in_range(const unsigned char *x)
{
    static const unsigned char zero[JOSE_P256_BYTES] = {0};
    return memcmp(x, zero, JOSE_P256_BYTES) != 0 && memcmp(x, p256_order, JOSE_P256_BYTES) < 0;
}

/* s <= n/2: the one of s and n - s that a canonical signature carries. */
static bool p256_low_s(const unsigned char *s)
{
    return memcmp(s, p256_half_order, JOSE_P256_BYTES) <= 0;
}

/* s := n - s, in place (s in [1, n-1], so no underflow). */
static void p256_negate_s(unsigned char *s)
{
    unsigned borrow = 0;
    for (size_t i = JOSE_P256_BYTES; i-- > 0;) {
        unsigned d = (unsigned)p256_order[i] - s[i] - borrow;
        s[i] = (unsigned char)d;
        borrow = d >> 8 & 1;
    }
}

/* Signs in with a context made from template (a prepared one, see
 * mandate_jws_signer) or, when it is NULL, a fresh one; sig must hold
 * EVP_PKEY_get_size(key) bytes (at least 64). ES256 comes out as raw r||s
 * (RFC 7518 §3.4), not DER. */
static bool sign_with(const EVP_PKEY *key, mandate_jws_alg alg, const EVP_MD_CTX *template,
                      const unsigned char *in, size_t in_len, unsigned char *sig,
                      size_t *sig_len_r)
{
    EVP_MD_CTX *ctx;
    if (template != NULL) {
        ctx = EVP_MD_CTX_new();
        if (ctx != NULL && EVP_MD_CTX_copy_ex(ctx, template) != 1) {
            EVP_MD_CTX_free(ctx);
            ctx = NULL;
        }
    } else {
        ctx = digest_ctx(key, alg, true);
    }
    size_t cap = (size_t)EVP_PKEY_get_size(key);
    bool ok = ctx != NULL && EVP_DigestSign(ctx, sig, &cap, in, in_len) == 1;
    EVP_MD_CTX_free(ctx);
    if (ok && alg == MANDATE_JWS_ES256) {
        const unsigned char *p = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)cap);
        const BIGNUM *r = NULL, *s = NULL;
        if (es != NULL)
            ECDSA_SIG_get0(es, &r, &s);
        ok = es != NULL && BN_bn2binpad(r, sig, JOSE_P256_BYTES) == JOSE_P256_BYTES &&
             BN_bn2binpad(s, sig + JOSE_P256_BYTES, JOSE_P256_BYTES) == JOSE_P256_BYTES;
        ECDSA_SIG_free(es);
        cap = JOSE_RAW_SIG_BYTES;
        /* OpenSSL leaves s as it comes, above n/2 for half the signatures:
         * ours are always low-S, so that a verifier that refuses the other
         * form (ours does, for our own tokens) sees one string per token */
        if (ok && !p256_low_s(sig + JOSE_P256_BYTES))
            p256_negate_s(sig + JOSE_P256_BYTES);
    }
    if (!ok) {
        ERR_clear_error();
        return false;
    }
    *sig_len_r = cap;
    return true;
}

static bool sign_input(const EVP_PKEY *key, mandate_jws_alg alg, const unsigned char *in,
                       size_t in_len, unsigned char *sig, size_t *sig_len_r)
{
    return sign_with(key, alg, NULL, in, in_len, sig, sig_len_r);
}

static bool verify_input(const EVP_PKEY *key, mandate_jws_alg alg, const unsigned char *in,
                         size_t in_len, const unsigned char *sig, size_t sig_len)
{
    unsigned char *der = NULL;
    int der_len = 0;
    bool ok = false;
    switch (alg) {
    case MANDATE_JWS_ES256: {
        if (sig_len != JOSE_RAW_SIG_BYTES)
            return false;
        ECDSA_SIG *es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(sig, JOSE_P256_BYTES, NULL);
        BIGNUM *s = BN_bin2bn(sig + JOSE_P256_BYTES, JOSE_P256_BYTES, NULL);
        if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
            BN_free(r);
            BN_free(s);
            ECDSA_SIG_free(es);
            ERR_clear_error();
            return false;
        }
        der_len = i2d_ECDSA_SIG(es, &der);
        ECDSA_SIG_free(es);
        if (der_len <= 0) {
            ERR_clear_error();
            return false;
        }
        sig = der;
        sig_len = (size_t)der_len;
        break;
    }
    case MANDATE_JWS_RS256:
        if (sig_len != (size_t)EVP_PKEY_get_size(key))
            return false;
        break;
    case MANDATE_JWS_EDDSA:
        if (sig_len != JOSE_RAW_SIG_BYTES)
            return false;
        break;
    case MANDATE_JWS_NONE: return false;
    }
    EVP_MD_CTX *ctx = digest_ctx(key, alg, false);
    ok = ctx != NULL && EVP_DigestVerify(ctx, sig, sig_len, in, in_len) == 1;
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
    ERR_clear_error();
    return ok;
}

/* --- compact JWS --------------------------------------------------------------------- */

/* The protected header {"alg", "typ", "kid"} as compact JSON (malloc'd), typ
 * and kid left out when NULL; NULL when out of memory or not valid UTF-8. */
static char *header_text(mandate_jws_alg alg, const char *kid, const char *typ)
{
    json_t *header = json_object();
    char *text = NULL;
    if (header != NULL && set_str(header, "alg", mandate_jws_alg_name(alg)) == 0 &&
        (typ == NULL || set_str(header, "typ", typ) == 0) &&
        (kid == NULL || set_str(header, "kid", kid) == 0))
        text = json_dumps(header, JSON_COMPACT);
    json_decref(header);
    return text;
}

/* "h.p.s" of the header text htext (taken: freed here) over payload. */
static char *sign_with_header_text(const EVP_PKEY *key, mandate_jws_alg alg, char *htext,
                                   const unsigned char *payload, size_t len)
{
    if (htext == NULL)
        return NULL;
    size_t hlen = strlen(htext);
    size_t h64 = mandate_b64url_encoded_len(hlen), p64 = mandate_b64url_encoded_len(len);
    size_t sig_cap = (size_t)EVP_PKEY_get_size(key);
    if (sig_cap < JOSE_RAW_SIG_BYTES)
        sig_cap = JOSE_RAW_SIG_BYTES;
    unsigned char *sig = malloc(sig_cap);
    char *out = malloc(h64 + 1 + p64 + 1 + mandate_b64url_encoded_len(sig_cap) + 1);
    size_t sig_len = 0;
    if (sig == NULL || out == NULL) {
        free(htext);
        free(sig);
        free(out);
        return NULL;
    }
    mandate_b64url_encode((const unsigned char *)htext, hlen, out);
    free(htext);
    out[h64] = '.';
    mandate_b64url_encode(payload, len, out + h64 + 1);
    size_t input_len = h64 + 1 + p64;
    if (!sign_input(key, alg, (const unsigned char *)out, input_len, sig, &sig_len)) {
        free(sig);
        free(out);
        return NULL;
    }
    out[input_len] = '.';
    mandate_b64url_encode(sig, sig_len, out + input_len + 1);
    free(sig);
    return out;
}

char *mandate_jws_sign_payload(const EVP_PKEY *key, const char *kid, const char *typ,
                               const unsigned char *payload, size_t len)
{
    mandate_jws_alg alg = mandate_jws_alg_for_key(key);
    if (alg == MANDATE_JWS_NONE || (payload == NULL && len != 0) || len > MANDATE_JWS_MAX_LEN)
        return NULL;
    return sign_with_header_text(key, alg, header_text(alg, kid, typ), payload, len);
}

char *mandate_jws_sign_with_header(const EVP_PKEY *key, const json_t *header,
                                   const json_t *claims)
{
    mandate_jws_alg alg = mandate_jws_alg_for_key(key);
    if (alg == MANDATE_JWS_NONE || !json_is_object(header) || !json_is_object(claims))
        return NULL;
    char *text = json_dumps(claims, JSON_COMPACT);
    if (text == NULL || strlen(text) > MANDATE_JWS_MAX_LEN) {
        free(text);
        return NULL;
    }
    char *token = sign_with_header_text(key, alg, json_dumps(header, JSON_COMPACT),
                                        (const unsigned char *)text, strlen(text));
    free(text);
    return token;
}

char *mandate_jws_sign(const EVP_PKEY *key, const char *kid, const char *typ,
                       const json_t *claims)
{
    if (!json_is_object(claims))
        return NULL;
    char *text = json_dumps(claims, JSON_COMPACT);
    if (text == NULL)
        return NULL;
    char *token =
        mandate_jws_sign_payload(key, kid, typ, (const unsigned char *)text, strlen(text));
    free(text);
    return token;
}

struct jws_parts {
    const char *h, *p, *s;
    size_t h_len, p_len, s_len;
};

/* Does the token have the shape of a compact JWS? Exactly two dots, a
 * non-empty header, and nothing but base64 characters otherwise. '=', '+'
 * and '/' count here, so that a sloppily encoded JWS is refused as malformed
 * rather than handed to another format; the strict decode refuses them. */
static mandate_rc jws_split(const char *token, size_t len, struct jws_parts *parts,
                            mandate_error *err)
{
    size_t dot[2] = {0, 0}, dots = 0;
    if (token == NULL || len == 0)
        return mandate_error_set(err, MANDATE_NEXT, "not a JWS: empty");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)token[i];
        if (c == '.') {
            if (dots == 2)
                return mandate_error_set(err, MANDATE_NEXT, "not a JWS: more than three parts");
            dot[dots++] = i;
        } else if (b64url_value(c) < 0 && c != '=' && c != '+' && c != '/') {
            return mandate_error_set(
                err, MANDATE_NEXT, "not a JWS: a character outside base64url at offset %zu", i);
        }
    }
    if (dots != 2)
        return mandate_error_set(err, MANDATE_NEXT, "not a JWS: not three parts");
    if (dot[0] == 0)
        return mandate_error_set(err, MANDATE_NEXT, "not a JWS: empty header");
    if (len > MANDATE_JWS_MAX_LEN)
        return mandate_error_set(err, MANDATE_INVALID, "JWS: longer than %d bytes",
                                 MANDATE_JWS_MAX_LEN);
    parts->h = token;
    parts->h_len = dot[0];
    parts->p = token + dot[0] + 1;
    parts->p_len = dot[1] - dot[0] - 1;
    parts->s = token + dot[1] + 1;
    parts->s_len = len - dot[1] - 1;
    return MANDATE_OK;
}

/* Decodes and checks the protected header: a JSON object of bounded size,
 * no duplicate members, a string alg that we accept, no crit, kid and typ
 * strings when present. */
static mandate_rc jws_header(const struct jws_parts *parts, json_t **header_r,
                             mandate_jws_alg *alg_r, mandate_error *err)
{
    unsigned char buf[MANDATE_JWS_MAX_HEADER];
    size_t len = 0;
    json_error_t jerr;
    char why[JSON_ERROR_TEXT_LENGTH], pbuf[32];
    *header_r = NULL;
    if (parts->h_len > mandate_b64url_encoded_len(sizeof(buf)))
        return mandate_error_set(err, MANDATE_INVALID, "JWS: header longer than %d bytes",
                                 MANDATE_JWS_MAX_HEADER);
    if (!mandate_b64url_decode(parts->h, parts->h_len, buf, sizeof(buf), &len))
        return mandate_error_set(err, MANDATE_INVALID, "JWS: header is not base64url");
    json_t *header = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (header == NULL)
        return mandate_error_set(err, MANDATE_INVALID, "JWS: header is not JSON: %s",
                                 json_reason(&jerr, why));
    mandate_rc rc = MANDATE_OK;
    const json_t *alg = json_object_get(header, "alg");
    const json_t *kid = json_object_get(header, "kid");
    const json_t *typ = json_object_get(header, "typ");
    if (!json_is_object(header))
        rc = mandate_error_set(err, MANDATE_INVALID, "JWS: header is not a JSON object");
    else if (alg == NULL)
        rc = mandate_error_set(err, MANDATE_INVALID, "JWS: header has no alg");
    else if (!json_is_string(alg))
        rc = mandate_error_set(err, MANDATE_INVALID, "JWS: alg is not a string");
    else if (json_object_get(header, "crit") != NULL)
        rc = mandate_error_set(err, MANDATE_INVALID,
                               "JWS: header has crit: no extension is supported");
    else if ((*alg_r = mandate_jws_alg_parse(json_string_value(alg))) == MANDATE_JWS_NONE)
        rc = mandate_error_set(err, MANDATE_INVALID,
                               "JWS: alg \"%s\" is not accepted (only ES256, RS256, EdDSA)",
                               printable(json_string_value(alg), pbuf));
    else if (kid != NULL && !json_is_string(kid))
        rc = mandate_error_set(err, MANDATE_INVALID, "JWS: kid is not a string");
    else if (typ != NULL && !json_is_string(typ))
        rc = mandate_error_set(err, MANDATE_INVALID, "JWS: typ is not a string");
    if (rc != MANDATE_OK) {
        json_decref(header);
        return rc;
    }
    *header_r = header;
    return MANDATE_OK;
}

/* Splits token and decodes its header (jws_split's and jws_header's
 * answers). */
static mandate_rc jws_open(const char *token, size_t len, struct jws_parts *parts,
                           json_t **header_r, mandate_jws_alg *alg_r, mandate_error *err)
{
    mandate_rc rc = jws_split(token, len, parts, err);
    return rc == MANDATE_OK ? jws_header(parts, header_r, alg_r, err) : rc;
}

mandate_rc mandate_jws_parse(const char *token, size_t len, mandate_jws *jws_r,
                             mandate_error *err)
{
    struct jws_parts parts;
    json_error_t jerr;
    char why[JSON_ERROR_TEXT_LENGTH];
    memset(jws_r, 0, sizeof(*jws_r));
    json_t *header;
    mandate_jws_alg alg = MANDATE_JWS_NONE;
    mandate_rc rc = jws_open(token, len, &parts, &header, &alg, err);
    if (rc != MANDATE_OK)
        return rc;

    /* the signature is checked for its encoding only; mandate_jws_verify
     * checks the value */
    if (parts.s_len == 0) {
        json_decref(header);
        return mandate_error_set(err, MANDATE_INVALID, "JWS: no signature");
    }
    if (!b64url_valid(parts.s, parts.s_len)) {
        json_decref(header);
        return mandate_error_set(err, MANDATE_INVALID, "JWS: signature is not base64url");
    }

    size_t cap = parts.p_len / 4 * 3 + 3, plen = 0;
    unsigned char *payload = malloc(cap);
    if (payload == NULL) {
        json_decref(header);
        return mandate_error_set(err, MANDATE_ERROR, "JWS: out of memory");
    }
    if (!mandate_b64url_decode(parts.p, parts.p_len, payload, cap, &plen)) {
        free(payload);
        json_decref(header);
        return mandate_error_set(err, MANDATE_INVALID, "JWS: payload is not base64url");
    }
    json_t *claims = json_loadb((const char *)payload, plen, JSON_REJECT_DUPLICATES, &jerr);
    free(payload);
    if (claims == NULL || !json_is_object(claims)) {
        json_decref(header);
        if (claims == NULL)
            return mandate_error_set(err, MANDATE_INVALID, "JWS: payload is not JSON: %s",
                                     json_reason(&jerr, why));
        json_decref(claims);
        return mandate_error_set(err, MANDATE_INVALID, "JWS: payload is not a JSON object");
    }
    jws_r->header = header;
    jws_r->claims = claims;
    jws_r->alg = alg;
    jws_r->kid = json_string_value(json_object_get(header, "kid"));
    jws_r->typ = json_string_value(json_object_get(header, "typ"));
    return MANDATE_OK;
}

mandate_rc mandate_jws_verify(const char *token, size_t len, const EVP_PKEY *key,
                              mandate_error *err)
{
    return mandate_jws_verify_with(token, len, key, 0, err);
}

/* The signature of token (split into parts, its header's alg read) with
 * key: mandate_jws_verify_with after the header. */
static mandate_rc verify_parts(const char *token, const struct jws_parts *parts,
                               mandate_jws_alg alg, const EVP_PKEY *key, unsigned flags,
                               mandate_error *err)
{
    mandate_jws_alg key_alg = mandate_jws_alg_for_key(key);
    if (key_alg == MANDATE_JWS_NONE)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "JWS: the key is of no type that may verify (P-256, RSA >= "
                                 "2048 bits, Ed25519)");
    /* the one alg the key is for, whatever the header claims: no "none", no
     * HS256 keyed with a public key, no RS256 header on an EC key */
    if (alg != key_alg)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "JWS: header alg %s does not match the key (%s)",
                                 mandate_jws_alg_name(alg), mandate_jws_alg_name(key_alg));
    unsigned char *sig = malloc(JOSE_RSA_MAX_BYTES);
    size_t sig_len = 0;
    if (sig == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "JWS: out of memory");
    if (!mandate_b64url_decode(parts->s, parts->s_len, sig, JOSE_RSA_MAX_BYTES, &sig_len)) {
        free(sig);
        return mandate_error_set(err, MANDATE_INVALID, "JWS: signature is not base64url");
    }
    /* OpenSSL refuses r or s of 0 or >= n as well; checked here too so that
     * the canonical-form check below never reads a scalar out of range */
    if (alg == MANDATE_JWS_ES256 && sig_len == JOSE_RAW_SIG_BYTES) {
        const char *why = NULL;
        if (!p256_scalar_in_range(sig) || !p256_scalar_in_range(sig + JOSE_P256_BYTES))
            why = "JWS: ES256 signature's r or s is not in [1, n-1]";
        else if ((flags & MANDATE_JWS_LOW_S) && !p256_low_s(sig + JOSE_P256_BYTES))
            why = "JWS: ES256 signature is not in canonical form (s > n/2)";
        if (why != NULL) {
            free(sig);
            return mandate_error_set(err, MANDATE_INVALID, "%s", why);
        }
    }
    bool ok = verify_input(key, alg, (const unsigned char *)token,
                           parts->h_len + 1 + parts->p_len, sig, sig_len);
    free(sig);
    if (!ok)
        return mandate_error_set(err, MANDATE_INVALID, "JWS: %s signature does not verify",
                                 mandate_jws_alg_name(alg));
    return MANDATE_OK;
}

mandate_rc mandate_jws_verify_with(const char *token, size_t len, const EVP_PKEY *key,
                                   unsigned flags, mandate_error *err)
{
    struct jws_parts parts;
    json_t *header;
    mandate_jws_alg alg = MANDATE_JWS_NONE;
    mandate_rc rc = jws_open(token, len, &parts, &header, &alg, err);
    if (rc == MANDATE_NEXT)
        return mandate_error_set(err, MANDATE_INVALID, "JWS: not a compact JWS");
    if (rc != MANDATE_OK)
        return rc;
    json_decref(header);
    return verify_parts(token, &parts, alg, key, flags, err);
}

mandate_rc mandate_jws_verify_parsed(const mandate_jws *jws, const char *token, size_t len,
                                     const EVP_PKEY *key, mandate_error *err)
{
    struct jws_parts parts;
    /* parsed already: it splits */
    mandate_rc rc = jws_split(token, len, &parts, err);
    return rc == MANDATE_OK ? verify_parts(token, &parts, jws->alg, key, 0, err) : rc;
}

void mandate_jws_clear(mandate_jws *jws)
{
    if (jws == NULL)
        return;
    json_decref(jws->header);
    json_decref(jws->claims);
    memset(jws, 0, sizeof(*jws));
}

/* --- the act claim -------------------------------------------------------------- */

static json_t *act_fail(json_t *act, const char *why, const char **why_r)
{
    json_decref(act);
    if (why_r != NULL)
        *why_r = why;
    return NULL;
}

json_t *mandate_jwt_act_encode(const char *actor, const char *prior_actors, size_t max,
                               const char **why_r)
{
    if (actor == NULL || actor[0] == '\0' || strchr(actor, ' ') != NULL)
        return act_fail(NULL, "the actor is empty or holds a space", why_r);
    /* the names, outermost first (max is at most 64); built from the
     * innermost out */
    const char *names[64];
    size_t lens[64], n = 0;
    names[n] = actor;
    lens[n++] = strlen(actor);
    const char *p;
    size_t len;
    while (mandate_word_list_next(&prior_actors, &p, &len)) {
        if (n >= max || n >= sizeof(names) / sizeof(names[0]))
            return act_fail(NULL, "more actors than the most allowed", why_r);
        names[n] = p;
        lens[n++] = len;
    }
    /* json_object_set_new takes the value's reference even when it fails */
    json_t *inner = NULL;
    while (n-- > 0) {
        json_t *act = json_object();
        if (act == NULL ||
            json_object_set_new(act, "sub", json_stringn(names[n], lens[n])) != 0) {
            json_decref(inner);
            return act_fail(act, "an actor is not valid UTF-8", why_r);
        }
        if (inner != NULL && json_object_set_new(act, "act", inner) != 0)
            return act_fail(act, "out of memory", why_r);
        inner = act;
    }
    return inner;
}

bool mandate_jwt_act_decode(const json_t *act, size_t max, char **actor_r, char **prior_r,
                            const char **why_r)
{
    const char *why = NULL;
    size_t n = 0, total = 0;
    *actor_r = NULL;
    *prior_r = NULL;
    /* first pass: check and measure, at most max levels deep */
    for (const json_t *a = act; a != NULL && why == NULL; a = json_object_get(a, "act")) {
        const json_t *sub = json_object_get(a, "sub");
        if (!json_is_object(a))
            why = "act is not an object";
        else if (++n > max)
            why = "act nests more actors than the most allowed";
        else if (!json_is_string(sub) || json_string_length(sub) == 0 ||
                 memchr(json_string_value(sub), ' ', json_string_length(sub)) != NULL ||
                 strlen(json_string_value(sub)) != json_string_length(sub))
            why = "an act has no sub, or one that is empty or holds a space";
        else if (n > 1)
            total += json_string_length(sub) + 1;
    }
    if (why != NULL || n == 0) {
        if (why_r != NULL)
            *why_r = why != NULL ? why : "no act";
        return false;
    }
    const json_t *a = act;
    *actor_r = strdup(json_string_value(json_object_get(a, "sub")));
    char *prior = n > 1 ? malloc(total) : NULL, *p = prior;
    for (a = json_object_get(a, "act"); a != NULL && prior != NULL;
         a = json_object_get(a, "act")) {
        const json_t *sub = json_object_get(a, "sub");
        if (p != prior)
            *p++ = ' ';
        memcpy(p, json_string_value(sub), json_string_length(sub));
        p += json_string_length(sub);
    }
    if (prior != NULL)
        *p = '\0';
    if (*actor_r == NULL || (n > 1 && prior == NULL)) {
        free(*actor_r);
        free(prior);
        *actor_r = NULL;
        if (why_r != NULL)
            *why_r = "out of memory";
        return false;
    }
    *prior_r = prior;
    return true;
}

/* --- a prepared signer ------------------------------------------------------ */

struct mandate_jws_signer {
    EVP_PKEY *key;
    mandate_jws_alg alg;
    char *header64; /* the base64url protected header, the same for every token */
    size_t header64_len;
    EVP_MD_CTX *template; /* initialised for signing; NULL when it cannot be copied */
};

mandate_jws_signer *mandate_jws_signer_new(const EVP_PKEY *key, const char *kid,
                                           const char *typ)
{
    mandate_jws_alg alg = mandate_jws_alg_for_key(key);
    if (alg == MANDATE_JWS_NONE)
        return NULL;
    char *htext = header_text(alg, kid, typ);
    mandate_jws_signer *s = calloc(1, sizeof(*s));
    if (htext == NULL || s == NULL) {
        free(htext);
        free(s);
        return NULL;
    }
    size_t hlen = strlen(htext);
    s->header64_len = mandate_b64url_encoded_len(hlen);
    s->header64 = malloc(s->header64_len + 1);
    if (s->header64 == NULL || EVP_PKEY_up_ref((EVP_PKEY *)key) != 1) {
        free(htext);
        free(s->header64);
        free(s);
        return NULL;
    }
    mandate_b64url_encode((const unsigned char *)htext, hlen, s->header64);
    free(htext);
    s->key = (EVP_PKEY *)key;
    s->alg = alg;
    /* Ed25519 signs in one shot and its contexts are not copied: those get a
     * fresh context per token, as before */
    if (alg != MANDATE_JWS_EDDSA)
        s->template = digest_ctx(key, alg, true);
    ERR_clear_error();
    return s;
}

void mandate_jws_signer_free(mandate_jws_signer **sp)
{
    mandate_jws_signer *s = *sp;
    if (s == NULL)
        return;
    EVP_MD_CTX_free(s->template);
    EVP_PKEY_free(s->key);
    free(s->header64);
    free(s);
    *sp = NULL;
}

char *mandate_jws_signer_sign(const mandate_jws_signer *s, const unsigned char *payload,
                              size_t len)
{
    if ((payload == NULL && len != 0) || len > MANDATE_JWS_MAX_LEN)
        return NULL;
    size_t p64 = mandate_b64url_encoded_len(len);
    unsigned char sig[512]; /* RSA up to 4096 bits; EC and Ed25519: 64 */
    size_t key_size = (size_t)EVP_PKEY_get_size(s->key);
    if (key_size > sizeof(sig))
        return NULL;
    char *out =
        malloc(s->header64_len + 1 + p64 + 1 + mandate_b64url_encoded_len(sizeof(sig)) + 1);
    if (out == NULL)
        return NULL;
    memcpy(out, s->header64, s->header64_len);
    out[s->header64_len] = '.';
    mandate_b64url_encode(payload, len, out + s->header64_len + 1);
    size_t input_len = s->header64_len + 1 + p64, sig_len = 0;
    if (!sign_with(s->key, s->alg, s->template, (const unsigned char *)out, input_len, sig,
                   &sig_len)) {
        free(out);
        return NULL;
    }
    out[input_len] = '.';
    mandate_b64url_encode(sig, sig_len, out + input_len + 1);
    return out;
}
