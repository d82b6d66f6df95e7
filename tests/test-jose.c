/* lib/jose.c: base64url, JWK, RFC 7638 thumbprints and compact JWS, against
 * the RFCs' own examples (RFC 7515 A.2 and A.3, RFC 7638 §3.1, RFC 8037
 * Appendix A) and against forged tokens. Forgeries are signed here with
 * OpenSSL directly, so they do not depend on the code under test. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "jose.h"
#include "signing-keys.h"

/* --- the RFCs' examples ------------------------------------------------------ */

/* RFC 7638 §3.1 */
static const char rfc7638_jwk[] =
    "{\"kty\":\"RSA\",\"n\":\""
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1"
    "L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4"
    "QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbO"
    "pbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csF"
    "Cur-kEgU8awapJzKnqDKgw"
    "\",\"e\":\"AQAB\",\"alg\":\"RS256\",\"kid\":\"2011-04-29\"}";
static const char rfc7638_thumbprint[] = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

/* RFC 8037 A.1 (private d), A.2 (public x), A.3 (thumbprint), A.4 (JWS) */
static const char rfc8037_d[] = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
static const char rfc8037_x[] = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
static const char rfc8037_thumbprint[] = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";
static const char rfc8037_payload[] = "Example of Ed25519 signing";
static const char rfc8037_jws[] =
    "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

/* RFC 7515 A.2 (RS256) and A.3 (ES256): the same payload,
 * {"iss":"joe",\r\n "exp":1300819380,\r\n "http://example.com/is_root":true} */
static const char rfc7515_a2_jwk[] =
    "{\"kty\":\"RSA\",\"n\":\""
    "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJ"
    "PMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0"
    "LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uD"
    "Zlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2"
    "PAcDTW9gb54h4FRWyuXpoQ"
    "\",\"e\":\"AQAB\"}";
static const char rfc7515_a2_jws[] =
    "eyJhbGciOiJSUzI1NiJ9."
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19y"
    "b290Ijp0cnVlfQ"
    "."
    "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF"
    "5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK"
    "5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqt"
    "FZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrB"
    "p0igcN_IoypGlUPQGe77Rw";
static const char rfc7515_a3_jwk[] = "{\"kty\":\"EC\",\"crv\":\"P-256\","
                                     "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
                                     "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}";
static const char rfc7515_a3_jws[] =
    "eyJhbGciOiJFUzI1NiJ9."
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19y"
    "b290Ijp0cnVlfQ"
    "."
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-K"
    "g6NU1Q";

/* --- fixtures and helpers ------------------------------------------------------ */

static EVP_PKEY *key_from_jwk_text(const char *text)
{
    mandate_error err = {0};
    json_t *jwk = json_loads(text, 0, NULL);
    assert_non_null(jwk);
    EVP_PKEY *key = mandate_jwk_to_key(jwk, &err);
    json_decref(jwk);
    if (key == NULL)
        fail_msg("mandate_jwk_to_key: %s", err.message);
    return key;
}

static char *b64(const void *data, size_t len)
{
    char *out = malloc(mandate_b64url_encoded_len(len) + 1);
    assert_non_null(out);
    mandate_b64url_encode(data, len, out);
    return out;
}

/* "b64(header).b64(payload)", malloc'd with room for a signature. */
static char *signing_input(const char *header, const char *payload)
{
    char *h = b64(header, strlen(header)), *p = b64(payload, strlen(payload));
    size_t n = strlen(h) + strlen(p) + 2 + 4096;
    char *out = malloc(n);
    assert_non_null(out);
    snprintf(out, n, "%s.%s", h, p);
    free(h);
    free(p);
    return out;
}

static void append_sig(char *token, const unsigned char *sig, size_t len)
{
    char *s = b64(sig, len);
    strcat(token, ".");
    strcat(token, s);
    free(s);
}

/* Signs with OpenSSL directly; ES256 as raw r||s unless der is set. */
static size_t evp_sign(EVP_PKEY *key, const char *input, bool der, unsigned char *sig,
                       size_t cap)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    const char *md = EVP_PKEY_is_a(key, "ED25519") ? NULL : "SHA256";
    size_t len = cap;
    assert_int_equal(EVP_DigestSignInit_ex(ctx, NULL, md, NULL, NULL, key, NULL), 1);
    assert_int_equal(
        EVP_DigestSign(ctx, sig, &len, (const unsigned char *)input, strlen(input)), 1);
    EVP_MD_CTX_free(ctx);
    if (EVP_PKEY_is_a(key, "EC") && !der) {
        const unsigned char *p = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)len);
        const BIGNUM *r, *s;
        assert_non_null(es);
        ECDSA_SIG_get0(es, &r, &s);
        unsigned char raw[64];
        assert_int_equal(BN_bn2binpad(r, raw, 32), 32);
        assert_int_equal(BN_bn2binpad(s, raw + 32, 32), 32);
        ECDSA_SIG_free(es);
        memcpy(sig, raw, 64);
        len = 64;
    }
    return len;
}

/* A token with any header and payload, signed by key with OpenSSL. */
static char *forge(EVP_PKEY *key, const char *header, const char *payload)
{
    char *token = signing_input(header, payload);
    unsigned char sig[1024];
    size_t len = evp_sign(key, token, false, sig, sizeof(sig));
    append_sig(token, sig, len);
    return token;
}

static mandate_rc parse(const char *token, mandate_error *err)
{
    mandate_jws jws;
    mandate_rc rc = mandate_jws_parse(token, strlen(token), &jws, err);
    if (rc != MANDATE_OK) {
        assert_null(jws.header);
        assert_null(jws.claims);
    }
    mandate_jws_clear(&jws);
    return rc;
}

static mandate_rc verify(const char *token, EVP_PKEY *key, mandate_error *err)
{
    return mandate_jws_verify(token, strlen(token), key, err);
}

static void expect_invalid(const char *token, EVP_PKEY *key, const char *needle)
{
    mandate_error err = {0};
    mandate_rc rc = parse(token, &err);
    if (rc != MANDATE_INVALID)
        fail_msg("parse: rc %d, want INVALID (%s)", (int)rc, err.message);
    if (needle != NULL && strstr(err.message, needle) == NULL)
        fail_msg("parse: \"%s\" does not say \"%s\"", err.message, needle);
    if (key != NULL) {
        memset(&err, 0, sizeof(err));
        rc = verify(token, key, &err);
        if (rc != MANDATE_INVALID)
            fail_msg("verify: rc %d, want INVALID (%s)", (int)rc, err.message);
    }
}

/* A token forged with key from header and payload is refused, as
 * expect_invalid says. */
static void expect_forgery_invalid(EVP_PKEY *key, const char *header, const char *payload,
                                   const char *needle)
{
    char *token = forge(key, header, payload);
    expect_invalid(token, key, needle);
    free(token);
}

static void expect_verifies(const char *token, EVP_PKEY *key)
{
    mandate_error err = {0};
    mandate_rc rc = verify(token, key, &err);
    if (rc != MANDATE_OK)
        fail_msg("verify: rc %d: %s", (int)rc, err.message);
}

/* --- base64url ---------------------------------------------------------------------- */

static void test_b64url_vectors(void **state)
{
    (void)state;
    /* RFC 4648 §10, which has no character that differs in base64url */
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const coded[] = {"",       "Zg",      "Zm8",     "Zm9v",
                                        "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        char out[16];
        unsigned char back[16];
        size_t len = 99;
        mandate_b64url_encode((const unsigned char *)plain[i], strlen(plain[i]), out);
        assert_string_equal(out, coded[i]);
        assert_int_equal(mandate_b64url_encoded_len(strlen(plain[i])), strlen(coded[i]));
        assert_true(
            mandate_b64url_decode(coded[i], strlen(coded[i]), back, sizeof(back), &len));
        assert_int_equal(len, strlen(plain[i]));
        assert_memory_equal(back, plain[i], len);
    }
    /* the two characters that differ from base64: "+/8=" there */
    const unsigned char fb[] = {0xfb, 0xff};
    char out[8];
    mandate_b64url_encode(fb, 2, out);
    assert_string_equal(out, "-_8");
}

static void test_b64url_round_trip(void **state)
{
    (void)state;
    unsigned char in[300], back[300];
    char out[420];
    for (size_t n = 0; n <= sizeof(in); n++) {
        size_t len = 0;
        assert_int_equal(RAND_bytes(in, (int)sizeof(in)), 1);
        mandate_b64url_encode(in, n, out);
        assert_int_equal(strlen(out), mandate_b64url_encoded_len(n));
        assert_int_equal(strspn(out, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                     "0123456789-_"),
                         strlen(out));
        /* an output buffer of exactly the decoded size is enough */
        assert_true(mandate_b64url_decode(out, strlen(out), back, n, &len));
        assert_int_equal(len, n);
        assert_memory_equal(back, in, n);
    }
}

static void test_b64url_strict(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "Zg==",     /* padding */
        "Zm9v+A",   /* base64, not base64url */
        "Zm9v/A",   /* likewise */
        " Zm9v",    /* whitespace */
        "Zm9v\n",   /* likewise */
        "Zm\t9v",   /* likewise */
        "Zm9vY",    /* length % 4 == 1 */
        "Zh",       /* non-zero unused bits: "Zg" is the one encoding of "f" */
        "Zm9",      /* likewise for "fo" ("Zm8") */
        "Zm9v=",    /* padding after a full group */
        "Zm9v.Zm8", /* a dot */
    };
    unsigned char out[16];
    size_t len;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (mandate_b64url_decode(bad[i], strlen(bad[i]), out, sizeof(out), &len))
            fail_msg("accepted \"%s\"", bad[i]);
    /* an embedded NUL */
    assert_false(mandate_b64url_decode("Zm\0v", 4, out, sizeof(out), &len));
    /* bounded by cap: "foobar" is 6 bytes */
    assert_false(mandate_b64url_decode("Zm9vYmFy", 8, out, 5, &len));
    assert_true(mandate_b64url_decode("Zm9vYmFy", 8, out, 6, &len));
    assert_int_equal(len, 6);
    assert_false(mandate_b64url_decode("Zm9vYmE", 7, out, 4, &len));
}

/* --- algorithms and keys --------------------------------------------------------------- */

static void test_alg_names(void **state)
{
    (void)state;
    assert_int_equal(mandate_jws_alg_parse("ES256"), MANDATE_JWS_ES256);
    assert_int_equal(mandate_jws_alg_parse("RS256"), MANDATE_JWS_RS256);
    assert_int_equal(mandate_jws_alg_parse("EdDSA"), MANDATE_JWS_EDDSA);
    static const char *const refused[] = {"none",  "None",   "HS256", "es256", "RS384",
                                          "PS256", "ES256K", "",      "EdDSA "};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        assert_int_equal(mandate_jws_alg_parse(refused[i]), MANDATE_JWS_NONE);
    assert_int_equal(mandate_jws_alg_parse(NULL), MANDATE_JWS_NONE);
    assert_string_equal(mandate_jws_alg_name(MANDATE_JWS_ES256), "ES256");
    assert_string_equal(mandate_jws_alg_name(MANDATE_JWS_RS256), "RS256");
    assert_string_equal(mandate_jws_alg_name(MANDATE_JWS_EDDSA), "EdDSA");
    assert_int_equal(mandate_jws_alg_for_key(es_key), MANDATE_JWS_ES256);
    assert_int_equal(mandate_jws_alg_for_key(rs_key), MANDATE_JWS_RS256);
    assert_int_equal(mandate_jws_alg_for_key(ed_key), MANDATE_JWS_EDDSA);
    assert_int_equal(mandate_jws_alg_for_key(NULL), MANDATE_JWS_NONE);
    assert_int_equal(EVP_PKEY_get_bits(rs_key), 2048);
}

static void test_other_keys_refused(void **state)
{
    (void)state;
    mandate_error err = {0};
    char kid[MANDATE_JWK_THUMBPRINT_LEN + 1];
    EVP_PKEY *weak = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    EVP_PKEY *x25519 = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    EVP_PKEY *others[] = {weak, p384, x25519};
    json_t *claims = json_pack("{s:s}", "sub", "x");
    for (size_t i = 0; i < 3; i++) {
        assert_non_null(others[i]);
        assert_int_equal(mandate_jws_alg_for_key(others[i]), MANDATE_JWS_NONE);
        assert_null(mandate_jws_sign(others[i], NULL, NULL, claims));
        assert_null(mandate_jwk_from_key(others[i], "k"));
        assert_false(mandate_jwk_thumbprint(others[i], kid));
        assert_int_equal(verify(rfc7515_a2_jws, others[i], &err), MANDATE_INVALID);
    }
    /* an RS256 token is refused by a 1024-bit key even with a valid header */
    char *token = forge(weak, "{\"alg\":\"RS256\"}", "{\"sub\":\"x\"}");
    assert_int_equal(verify(token, weak, &err), MANDATE_INVALID);
    free(token);
    json_decref(claims);
    for (size_t i = 0; i < 3; i++)
        EVP_PKEY_free(others[i]);
}

static void test_private_der(void **state)
{
    (void)state;
    for (size_t i = 0; i < SIGNING_KEY_COUNT; i++) {
        unsigned char *der;
        size_t len;
        assert_true(mandate_jose_private_to_der(signing_keys[i], &der, &len));
        /* PKCS#8 is a SEQUENCE starting with version 0 */
        assert_int_equal(der[0], 0x30);
        EVP_PKEY *back = mandate_jose_private_from_der(der, len);
        assert_non_null(back);
        assert_int_equal(EVP_PKEY_eq(back, signing_keys[i]), 1);
        /* trailing garbage, truncation and junk are refused */
        unsigned char *longer = malloc(len + 1);
        memcpy(longer, der, len);
        longer[len] = 0;
        assert_null(mandate_jose_private_from_der(longer, len + 1));
        assert_null(mandate_jose_private_from_der(der, len - 1));
        memset(longer, 0x41, len);
        assert_null(mandate_jose_private_from_der(longer, len));
        assert_null(mandate_jose_private_from_der(NULL, 0));
        free(longer);
        EVP_PKEY_free(back);
        OPENSSL_clear_free(der, len);
    }
    /* a traditional (SEC1) EC key is not PKCS#8 */
    unsigned char *sec1 = NULL;
    int n = i2d_PrivateKey(es_key, &sec1);
    assert_true(n > 0);
    assert_null(mandate_jose_private_from_der(sec1, (size_t)n));
    OPENSSL_free(sec1);
}

static void test_public_pem(void **state)
{
    (void)state;
    json_t *claims = json_pack("{s:s}", "sub", "agent");
    for (size_t i = 0; i < SIGNING_KEY_COUNT; i++) {
        BIO *bio = BIO_new(BIO_s_mem());
        char *pem;
        assert_int_equal(PEM_write_bio_PUBKEY(bio, signing_keys[i]), 1);
        long len = BIO_get_mem_data(bio, &pem);
        EVP_PKEY *pub = mandate_jose_public_from_pem(pem, (size_t)len);
        assert_non_null(pub);
        char *token = mandate_jws_sign(signing_keys[i], NULL, NULL, claims);
        expect_verifies(token, pub);
        free(token);
        EVP_PKEY_free(pub);
        BIO_free(bio);
    }
    assert_null(mandate_jose_public_from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n", 31));
    assert_null(mandate_jose_public_from_pem("", 0));
    json_decref(claims);
}

/* --- JWK ------------------------------------------------------------------------- */

static void test_rfc7638_thumbprint(void **state)
{
    (void)state;
    char tp[MANDATE_JWK_THUMBPRINT_LEN + 1];
    EVP_PKEY *key = key_from_jwk_text(rfc7638_jwk);
    assert_int_equal(mandate_jws_alg_for_key(key), MANDATE_JWS_RS256);
    assert_true(mandate_jwk_thumbprint(key, tp));
    assert_string_equal(tp, rfc7638_thumbprint);
    /* and back out: the same n and e */
    json_t *orig = json_loads(rfc7638_jwk, 0, NULL);
    json_t *jwk = mandate_jwk_from_key(key, "2011-04-29");
    assert_non_null(jwk);
    assert_true(json_equal(json_object_get(jwk, "n"), json_object_get(orig, "n")));
    assert_string_equal(json_string_value(json_object_get(jwk, "e")), "AQAB");
    assert_string_equal(json_string_value(json_object_get(jwk, "kty")), "RSA");
    assert_string_equal(json_string_value(json_object_get(jwk, "alg")), "RS256");
    assert_string_equal(json_string_value(json_object_get(jwk, "use")), "sig");
    assert_string_equal(json_string_value(json_object_get(jwk, "kid")), "2011-04-29");
    json_decref(jwk);
    json_decref(orig);
    EVP_PKEY_free(key);
}

static EVP_PKEY *rfc8037_private_key(void)
{
    unsigned char d[32];
    size_t len;
    assert_true(mandate_b64url_decode(rfc8037_d, strlen(rfc8037_d), d, sizeof(d), &len));
    assert_int_equal(len, 32);
    EVP_PKEY *key = EVP_PKEY_new_raw_private_key_ex(NULL, "ED25519", NULL, d, len);
    assert_non_null(key);
    return key;
}

static void test_rfc8037(void **state)
{
    (void)state;
    char tp[MANDATE_JWK_THUMBPRINT_LEN + 1];
    EVP_PKEY *key = rfc8037_private_key();

    /* A.2: the public key of A.1's private one */
    json_t *jwk = mandate_jwk_from_key(key, NULL);
    assert_non_null(jwk);
    assert_string_equal(json_string_value(json_object_get(jwk, "kty")), "OKP");
    assert_string_equal(json_string_value(json_object_get(jwk, "crv")), "Ed25519");
    assert_string_equal(json_string_value(json_object_get(jwk, "x")), rfc8037_x);
    assert_string_equal(json_string_value(json_object_get(jwk, "alg")), "EdDSA");
    assert_null(json_object_get(jwk, "d"));
    assert_null(json_object_get(jwk, "kid"));
    json_decref(jwk);

    /* A.3: its thumbprint */
    assert_true(mandate_jwk_thumbprint(key, tp));
    assert_string_equal(tp, rfc8037_thumbprint);

    /* A.4: Ed25519 is deterministic, so signing gives the RFC's JWS */
    char *jws = mandate_jws_sign_payload(
        key, NULL, NULL, (const unsigned char *)rfc8037_payload, strlen(rfc8037_payload));
    assert_non_null(jws);
    assert_string_equal(jws, rfc8037_jws);
    free(jws);

    /* A.5: and it verifies with the public JWK of A.2 */
    EVP_PKEY *pub = key_from_jwk_text("{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
                                      "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}");
    assert_true(mandate_jwk_thumbprint(pub, tp));
    assert_string_equal(tp, rfc8037_thumbprint);
    expect_verifies(rfc8037_jws, pub);
    /* one bit of the payload changed */
    char *bad = strdup(rfc8037_jws);
    bad[strlen("eyJhbGciOiJFZERTQSJ9.R")] = 'Y';
    mandate_error err = {0};
    assert_int_equal(verify(bad, pub, &err), MANDATE_INVALID);
    free(bad);
    EVP_PKEY_free(pub);
    EVP_PKEY_free(key);
}

static void check_rfc7515_claims(const char *token, mandate_jws_alg alg)
{
    mandate_jws jws;
    mandate_error err = {0};
    assert_int_equal(mandate_jws_parse(token, strlen(token), &jws, &err), MANDATE_OK);
    assert_int_equal(jws.alg, alg);
    assert_null(jws.kid);
    assert_null(jws.typ);
    assert_string_equal(json_string_value(json_object_get(jws.claims, "iss")), "joe");
    assert_int_equal(json_integer_value(json_object_get(jws.claims, "exp")), 1300819380);
    assert_true(json_is_true(json_object_get(jws.claims, "http://example.com/is_root")));
    mandate_jws_clear(&jws);
    assert_null(jws.header);
}

static void test_rfc7515_a2_rs256(void **state)
{
    (void)state;
    EVP_PKEY *key = key_from_jwk_text(rfc7515_a2_jwk);
    assert_int_equal(EVP_PKEY_get_bits(key), 2048);
    expect_verifies(rfc7515_a2_jws, key);
    check_rfc7515_claims(rfc7515_a2_jws, MANDATE_JWS_RS256);
    /* a flipped bit in the signature, another key */
    char *bad = strdup(rfc7515_a2_jws);
    bad[strlen(bad) - 3] ^= 1;
    mandate_error err = {0};
    assert_int_equal(verify(bad, key, &err), MANDATE_INVALID);
    assert_int_equal(verify(rfc7515_a2_jws, rs_key, &err), MANDATE_INVALID);
    free(bad);
    EVP_PKEY_free(key);
}

static void test_rfc7515_a3_es256(void **state)
{
    (void)state;
    EVP_PKEY *key = key_from_jwk_text(rfc7515_a3_jwk);
    expect_verifies(rfc7515_a3_jws, key);
    check_rfc7515_claims(rfc7515_a3_jws, MANDATE_JWS_ES256);
    char *bad = strdup(rfc7515_a3_jws);
    bad[strlen(bad) - 10] = bad[strlen(bad) - 10] == 'A' ? 'B' : 'A';
    mandate_error err = {0};
    assert_int_equal(verify(bad, key, &err), MANDATE_INVALID);
    assert_int_equal(verify(rfc7515_a3_jws, es_key, &err), MANDATE_INVALID);
    free(bad);
    EVP_PKEY_free(key);
}

static void expect_jwk_refused(const char *text, const char *needle)
{
    mandate_error err = {0};
    json_t *jwk = json_loads(text, 0, NULL);
    assert_non_null(jwk);
    EVP_PKEY *key = mandate_jwk_to_key(jwk, &err);
    json_decref(jwk);
    if (key != NULL) {
        EVP_PKEY_free(key);
        fail_msg("accepted %s", text);
    }
    assert_int_equal(err.rc, MANDATE_INVALID);
    if (strstr(err.message, needle) == NULL)
        fail_msg("\"%s\" does not say \"%s\"", err.message, needle);
}

static void test_jwk_refusals(void **state)
{
    (void)state;
    mandate_error err = {0};
    assert_null(mandate_jwk_to_key(NULL, &err));
    expect_jwk_refused("[]", "not a JSON object");
    expect_jwk_refused("{\"crv\":\"P-256\"}", "kty");
    expect_jwk_refused("{\"kty\":\"oct\",\"k\":\"AAAA\"}", "not supported");
    expect_jwk_refused("{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"AA\",\"y\":\"AA\"}",
                       "not supported");
    /* x of 31 bytes */
    expect_jwk_refused("{\"kty\":\"EC\",\"crv\":\"P-256\","
                       "\"x\":\"83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
                       "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}",
                       "\"x\"");
    /* a point off the curve: y changed */
    expect_jwk_refused("{\"kty\":\"EC\",\"crv\":\"P-256\","
                       "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
                       "\"y\":\"y_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}",
                       "not a point");
    expect_jwk_refused("{\"kty\":\"EC\",\"crv\":\"P-256\","
                       "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\"}",
                       "\"y\"");
    expect_jwk_refused("{\"kty\":\"OKP\",\"crv\":\"X25519\","
                       "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}",
                       "not supported");
    /* padded base64 */
    expect_jwk_refused("{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
                       "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=\"}",
                       "\"x\"");
    /* alg and use that do not fit */
    expect_jwk_refused("{\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"RS256\","
                       "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
                       "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}",
                       "does not fit");
    expect_jwk_refused("{\"kty\":\"EC\",\"crv\":\"P-256\",\"use\":\"enc\","
                       "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
                       "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}",
                       "use");
    /* RSA: an even modulus, e = 1, and a 1024-bit key */
    expect_jwk_refused("{\"kty\":\"RSA\",\"n\":\"AAAAAA\",\"e\":\"AQAB\"}", "not an RSA");
    expect_jwk_refused("{\"kty\":\"RSA\",\"n\":\"AAAAAQ\",\"e\":\"AQ\"}", "not an RSA");
    EVP_PKEY *weak = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    BIGNUM *n = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(weak, "n", &n), 1);
    unsigned char nb[128];
    assert_int_equal(BN_bn2binpad(n, nb, 128), 128);
    char *n64 = b64(nb, 128);
    char text[512];
    snprintf(text, sizeof(text), "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQAB\"}", n64);
    expect_jwk_refused(text, "too weak");
    free(n64);
    BN_free(n);
    EVP_PKEY_free(weak);
    /* private members are ignored */
    EVP_PKEY *key = key_from_jwk_text("{\"kty\":\"EC\",\"crv\":\"P-256\","
                                      "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
                                      "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\","
                                      "\"d\":\"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI\"}");
    expect_verifies(rfc7515_a3_jws, key);
    EVP_PKEY_free(key);
}

/* --- round trips --------------------------------------------------------------------- */

static void round_trip(EVP_PKEY *key, mandate_jws_alg alg)
{
    mandate_error err = {0};
    char kid[MANDATE_JWK_THUMBPRINT_LEN + 1], kid2[MANDATE_JWK_THUMBPRINT_LEN + 1];
    assert_true(mandate_jwk_thumbprint(key, kid));
    assert_int_equal(strlen(kid), MANDATE_JWK_THUMBPRINT_LEN);
    json_t *claims = json_pack("{s:s, s:s, s:I, s:[s,s], s:{s:s}}", "iss", "https://broker",
                               "sub", "agent-\xc3\xa9", "exp", (json_int_t)2000000000, "aud",
                               "a", "b", "act", "sub", "human");
    char *token = mandate_jws_sign(key, kid, "at+jwt", claims);
    assert_non_null(token);

    mandate_jws jws;
    assert_int_equal(mandate_jws_parse(token, strlen(token), &jws, &err), MANDATE_OK);
    assert_int_equal(jws.alg, alg);
    assert_string_equal(jws.kid, kid);
    assert_string_equal(jws.typ, "at+jwt");
    assert_string_equal(json_string_value(json_object_get(jws.header, "alg")),
                        mandate_jws_alg_name(alg));
    assert_true(json_equal(jws.claims, claims));
    mandate_jws_clear(&jws);
    expect_verifies(token, key);

    /* the public JWK, as a JWKS would publish it, verifies it too */
    json_t *jwk = mandate_jwk_from_key(key, kid);
    assert_non_null(jwk);
    assert_null(json_object_get(jwk, "d"));
    char *text = json_dumps(jwk, JSON_COMPACT);
    EVP_PKEY *pub = key_from_jwk_text(text);
    expect_verifies(token, pub);
    assert_true(mandate_jwk_thumbprint(pub, kid2));
    assert_string_equal(kid, kid2);

    /* the stored form signs tokens the original key verifies */
    unsigned char *der;
    size_t der_len;
    assert_true(mandate_jose_private_to_der(key, &der, &der_len));
    EVP_PKEY *restored = mandate_jose_private_from_der(der, der_len);
    assert_non_null(restored);
    char *token2 = mandate_jws_sign(restored, NULL, NULL, claims);
    expect_verifies(token2, pub);

    /* a signature does not fit another header over the same payload */
    char *spliced = malloc(strlen(token) + strlen(token2) + 1);
    sprintf(spliced, "%.*s%s", (int)(strrchr(token2, '.') - token2), token2,
            strrchr(token, '.'));
    assert_int_equal(verify(spliced, key, &err), MANDATE_INVALID);

    free(spliced);
    free(token2);
    EVP_PKEY_free(restored);
    OPENSSL_clear_free(der, der_len);
    EVP_PKEY_free(pub);
    free(text);
    json_decref(jwk);
    free(token);
    json_decref(claims);
}

static void test_round_trip_es256(void **state)
{
    (void)state;
    round_trip(es_key, MANDATE_JWS_ES256);
}

static void test_round_trip_rs256(void **state)
{
    (void)state;
    round_trip(rs_key, MANDATE_JWS_RS256);
}

static void test_round_trip_eddsa(void **state)
{
    (void)state;
    round_trip(ed_key, MANDATE_JWS_EDDSA);
}

static void test_es256_signature_format(void **state)
{
    (void)state;
    /* a JWS signature made here decodes to 64 bytes, and one made by
     * OpenSSL and converted independently verifies */
    json_t *claims = json_pack("{s:s}", "sub", "x");
    char *token = mandate_jws_sign(es_key, NULL, NULL, claims);
    const char *s = strrchr(token, '.') + 1;
    unsigned char sig[128];
    size_t len;
    assert_true(mandate_b64url_decode(s, strlen(s), sig, sizeof(sig), &len));
    assert_int_equal(len, 64);
    char *forged = forge(es_key, "{\"alg\":\"ES256\"}", "{\"sub\":\"x\"}");
    expect_verifies(forged, es_key);
    free(forged);
    free(token);
    json_decref(claims);
}

/* --- refusals ------------------------------------------------------------------------ */

static void test_refuse_alg_none(void **state)
{
    (void)state;
    char *token = signing_input("{\"alg\":\"none\"}", "{\"sub\":\"admin\"}");
    strcat(token, ".");
    expect_invalid(token, es_key, "none");
    expect_invalid(token, rs_key, NULL);
    expect_invalid(token, ed_key, NULL);
    /* a signature does not help */
    free(token);
    expect_forgery_invalid(es_key, "{\"alg\":\"none\"}", "{\"sub\":\"admin\"}", "none");
    expect_forgery_invalid(es_key, "{\"alg\":\"None\",\"typ\":\"JWT\"}", "{\"sub\":\"admin\"}",
                           "not accepted");
}

/* The classic confusion: HS256 keyed with the verifier's public key. */
static void test_refuse_hs256_confusion(void **state)
{
    (void)state;
    for (size_t i = 0; i < SIGNING_KEY_COUNT; i++) {
        char *input =
            signing_input("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", "{\"sub\":\"admin\"}");
        char *token = forged_hs256_token(input, signing_keys[i]);
        free(input);
        expect_invalid(token, signing_keys[i], "HS256");
        mandate_error err = {0};
        assert_int_equal(verify(token, signing_keys[i], &err), MANDATE_INVALID);
        assert_non_null(strstr(err.message, "HS256"));
        free(token);
    }
}

static void test_refuse_alg_mismatch(void **state)
{
    (void)state;
    mandate_error err = {0};
    json_t *claims = json_pack("{s:s}", "sub", "x");
    /* an honest RS256 token offered to an EC key */
    char *token = mandate_jws_sign(rs_key, NULL, NULL, claims);
    assert_int_equal(verify(token, es_key, &err), MANDATE_INVALID);
    assert_non_null(strstr(err.message, "does not match"));
    free(token);
    /* an RS256 header over an ES256 signature of the EC key */
    token = forge(es_key, "{\"alg\":\"RS256\"}", "{\"sub\":\"x\"}");
    assert_int_equal(parse(token, &err), MANDATE_OK);
    assert_int_equal(verify(token, es_key, &err), MANDATE_INVALID);
    assert_non_null(strstr(err.message, "RS256"));
    free(token);
    /* an EdDSA header over an Ed25519 signature, offered to the EC key */
    token = forge(ed_key, "{\"alg\":\"EdDSA\"}", "{\"sub\":\"x\"}");
    assert_int_equal(verify(token, es_key, &err), MANDATE_INVALID);
    expect_verifies(token, ed_key);
    free(token);
    /* ES256 header, signed by the Ed25519 key */
    token = forge(ed_key, "{\"alg\":\"ES256\"}", "{\"sub\":\"x\"}");
    assert_int_equal(verify(token, ed_key, &err), MANDATE_INVALID);
    free(token);
    json_decref(claims);
}

static void test_refuse_truncated_signature(void **state)
{
    (void)state;
    json_t *claims = json_pack("{s:s}", "sub", "x");
    for (size_t i = 0; i < SIGNING_KEY_COUNT; i++) {
        char *token = mandate_jws_sign(signing_keys[i], NULL, NULL, claims);
        char *dot = strrchr(token, '.');
        unsigned char sig[512];
        size_t len;
        mandate_error err = {0};
        assert_true(mandate_b64url_decode(dot + 1, strlen(dot + 1), sig, sizeof(sig), &len));
        /* one byte and half the signature cut off, re-encoded canonically */
        size_t cuts[] = {len - 1, len / 2};
        for (size_t c = 0; c < 2; c++) {
            dot[1] = '\0';
            mandate_b64url_encode(sig, cuts[c], dot + 1);
            assert_int_equal(parse(token, &err), MANDATE_OK);
            assert_int_equal(verify(token, signing_keys[i], &err), MANDATE_INVALID);
        }
        /* no signature at all */
        *(strrchr(token, '.') + 1) = '\0';
        expect_invalid(token, signing_keys[i], "no signature");
        free(token);
    }
    json_decref(claims);
}

static void test_refuse_es256_wrong_length(void **state)
{
    (void)state;
    mandate_error err = {0};
    char *input = signing_input("{\"alg\":\"ES256\"}", "{\"sub\":\"x\"}");
    unsigned char sig[128];
    /* the DER form a careless signer sends */
    size_t der_len = evp_sign(es_key, input, true, sig, sizeof(sig));
    assert_true(der_len > 64 && der_len <= 72);
    char *token = malloc(strlen(input) + 200);
    strcpy(token, input);
    append_sig(token, sig, der_len);
    assert_int_equal(parse(token, &err), MANDATE_OK);
    assert_int_equal(verify(token, es_key, &err), MANDATE_INVALID);
    /* raw r||s with one byte more or less */
    size_t raw_len = evp_sign(es_key, input, false, sig, sizeof(sig));
    assert_int_equal(raw_len, 64);
    strcpy(token, input);
    append_sig(token, sig, 64);
    expect_verifies(token, es_key);
    sig[64] = 0;
    strcpy(token, input);
    append_sig(token, sig, 65);
    assert_int_equal(verify(token, es_key, &err), MANDATE_INVALID);
    strcpy(token, input);
    append_sig(token, sig, 63);
    assert_int_equal(verify(token, es_key, &err), MANDATE_INVALID);
    /* r = s = 0 */
    memset(sig, 0, 64);
    strcpy(token, input);
    append_sig(token, sig, 64);
    assert_int_equal(verify(token, es_key, &err), MANDATE_INVALID);
    free(token);
    free(input);
}

static void test_refuse_bad_base64url(void **state)
{
    (void)state;
    /* a 12-byte payload: 16 characters */
    char *good = forge(es_key, "{\"alg\":\"ES256\"}", "{\"sub\":\"xy\"}");
    expect_verifies(good, es_key);
    char *p = strchr(good, '.'), *s = strrchr(good, '.');
    size_t h_len = (size_t)(p - good), p_len = (size_t)(s - p - 1);
    char token[1024];
    /* padding on the header ({"alg":"ES256"} is 15 bytes: 20 characters, no
     * padding; add one anyway) */
    snprintf(token, sizeof(token), "%.*s=%s", (int)h_len, good, p);
    expect_invalid(token, es_key, "base64url");
    /* '+' and '/' in the payload and the signature */
    snprintf(token, sizeof(token), "%.*s.+%.*s%s", (int)h_len, good, (int)p_len - 1, p + 2, s);
    expect_invalid(token, es_key, "base64url");
    snprintf(token, sizeof(token), "%.*s./%s", (int)(s - good), good, s + 2);
    expect_invalid(token, es_key, "base64url");
    /* a payload of length % 4 == 1 */
    snprintf(token, sizeof(token), "%.*sA%s", (int)(s - good), good, s);
    expect_invalid(token, es_key, "base64url");
    /* non-zero unused bits in the signature's last character (64 bytes are
     * 86 characters, the last carrying 4 unused bits) */
    snprintf(token, sizeof(token), "%s", good);
    char *last = token + strlen(token) - 1;
    const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t v = (size_t)(strchr(alphabet, *last) - alphabet);
    *last = alphabet[v ^ 1];
    expect_invalid(token, es_key, "base64url");
    free(good);
}

static void test_refuse_header_size(void **state)
{
    (void)state;
    char header[MANDATE_JWS_MAX_HEADER + 128];
    char pad[MANDATE_JWS_MAX_HEADER + 64];
    /* exactly at the limit: accepted */
    size_t fill = MANDATE_JWS_MAX_HEADER - strlen("{\"alg\":\"ES256\",\"x\":\"\"}");
    memset(pad, 'a', fill);
    pad[fill] = '\0';
    snprintf(header, sizeof(header), "{\"alg\":\"ES256\",\"x\":\"%s\"}", pad);
    assert_int_equal(strlen(header), MANDATE_JWS_MAX_HEADER);
    char *token = forge(es_key, header, "{\"sub\":\"x\"}");
    mandate_error err = {0};
    assert_int_equal(parse(token, &err), MANDATE_OK);
    expect_verifies(token, es_key);
    free(token);
    /* one byte over */
    snprintf(header, sizeof(header), "{\"alg\":\"ES256\",\"x\":\"%sa\"}", pad);
    expect_forgery_invalid(es_key, header, "{\"sub\":\"x\"}", "header");
}

static void test_refuse_token_size(void **state)
{
    (void)state;
    size_t fill = MANDATE_JWS_MAX_LEN;
    char *payload = malloc(fill + 32);
    snprintf(payload, fill + 32, "{\"x\":\"%0*d\"}", (int)fill, 0);
    char *token = forge(es_key, "{\"alg\":\"ES256\"}", payload);
    assert_true(strlen(token) > MANDATE_JWS_MAX_LEN);
    expect_invalid(token, es_key, "longer");
    free(token);
    free(payload);
}

static void test_refuse_crit(void **state)
{
    (void)state;
    expect_forgery_invalid(es_key, "{\"alg\":\"ES256\",\"crit\":[\"exp\"],\"exp\":1}", "{}",
                           "crit");
    /* RFC 7797's unencoded payload needs crit, so it is refused too */
    expect_forgery_invalid(es_key, "{\"alg\":\"ES256\",\"b64\":false,\"crit\":[\"b64\"]}", "{}",
                           "crit");
}

static void test_wrong_parts_is_next(void **state)
{
    (void)state;
    static const char *const not_jws[] = {
        "",
        "opaque-token-0123456789",
        "mnd_at_4f1c2b",
        "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0",
        "a.b.c.d",
        "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d", /* JWE compact: five parts */
        "..",
        ".eyJzdWIiOiJ4In0.sig",
        "eyJhbGciOiJFUzI1NiJ9 .eyJzdWIiOiJ4In0.c2ln",
        "Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
        "{\"alg\":\"ES256\"}.{}.sig",
    };
    for (size_t i = 0; i < sizeof(not_jws) / sizeof(not_jws[0]); i++) {
        mandate_error err = {0};
        mandate_jws jws;
        mandate_rc rc = mandate_jws_parse(not_jws[i], strlen(not_jws[i]), &jws, &err);
        if (rc != MANDATE_NEXT)
            fail_msg("\"%s\": rc %d, want NEXT (%s)", not_jws[i], (int)rc, err.message);
        mandate_jws_clear(&jws);
        assert_int_equal(verify(not_jws[i], es_key, &err), MANDATE_INVALID);
    }
    /* a NUL inside the given length */
    mandate_error err = {0};
    mandate_jws jws;
    assert_int_equal(mandate_jws_parse("eyJh\0.a.b", 9, &jws, &err), MANDATE_NEXT);
    assert_int_equal(mandate_jws_parse(NULL, 0, &jws, &err), MANDATE_NEXT);
}

static void test_refuse_malformed_json(void **state)
{
    (void)state;
    static const char *const payloads[] = {
        "[1,2]",
        "\"admin\"",
        "42",
        "null",
        "{\"sub\":\"x\"",
        "{\"sub\":\"a\",\"sub\":\"b\"}",
        "",
        "{\"sub\":\"\\u0000\"}",
    };
    for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
        char *token = forge(es_key, "{\"alg\":\"ES256\"}", payloads[i]);
        expect_invalid(token, NULL, "payload");
        free(token);
    }
    static const char *const headers[] = {
        "[\"ES256\"]",
        "{\"alg\":\"ES256\",\"alg\":\"none\"}",
        "{\"alg\":256}",
        "{\"typ\":\"JWT\"}",
        "{\"alg\":\"ES256\",\"kid\":7}",
        "{\"alg\":\"ES256\",\"typ\":null}",
        "{\"alg\":\"ES256\"",
    };
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        expect_forgery_invalid(es_key, headers[i], "{\"sub\":\"x\"}", "JWS");
    }
}

static void test_wrong_key(void **state)
{
    (void)state;
    EVP_PKEY *other = mandate_jose_keygen(MANDATE_JWS_ES256);
    EVP_PKEY *other_ed = mandate_jose_keygen(MANDATE_JWS_EDDSA);
    json_t *claims = json_pack("{s:s}", "sub", "x");
    char *token = mandate_jws_sign(es_key, NULL, NULL, claims);
    char *token_ed = mandate_jws_sign(ed_key, NULL, NULL, claims);
    mandate_error err = {0};
    assert_int_equal(verify(token, other, &err), MANDATE_INVALID);
    assert_non_null(strstr(err.message, "does not verify"));
    assert_int_equal(verify(token_ed, other_ed, &err), MANDATE_INVALID);
    assert_int_equal(verify(token, NULL, &err), MANDATE_INVALID);
    free(token);
    free(token_ed);
    json_decref(claims);
    EVP_PKEY_free(other);
    EVP_PKEY_free(other_ed);
}

/* --- canonical signatures (malleability) ----------------------------------------- */

/* P-256's order, from OpenSSL rather than from the constant under test. */
static BIGNUM *p256_order(void)
{
    EC_GROUP *group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    assert_non_null(group);
    BIGNUM *n = BN_dup(EC_GROUP_get0_order(group));
    EC_GROUP_free(group);
    assert_non_null(n);
    return n;
}

/* The signature of a compact JWS, decoded; its length. */
static size_t jws_signature(const char *token, unsigned char *sig, size_t cap)
{
    const char *s = strrchr(token, '.') + 1;
    size_t len = 0;
    assert_true(mandate_b64url_decode(s, strlen(s), sig, cap, &len));
    return len;
}

/* Whether the s half of a raw ES256 signature is above n/2. */
static bool high_s(const unsigned char sig[64], const BIGNUM *n)
{
    BIGNUM *s = BN_bin2bn(sig + 32, 32, NULL), *half = BN_new();
    assert_true(s != NULL && half != NULL && BN_rshift1(half, n) == 1);
    bool high = BN_cmp(s, half) > 0;
    BN_free(s);
    BN_free(half);
    return high;
}

/* token with its ES256 signature's s replaced by n - s: another string, a
 * signature just as valid. */
static char *flip_s(const char *token, const BIGNUM *n)
{
    unsigned char sig[64];
    assert_int_equal(jws_signature(token, sig, sizeof(sig)), 64);
    BIGNUM *s = BN_bin2bn(sig + 32, 32, NULL);
    assert_non_null(s);
    assert_int_equal(BN_sub(s, n, s), 1);
    assert_int_equal(BN_bn2binpad(s, sig + 32, 32), 32);
    BN_free(s);
    size_t input_len = (size_t)(strrchr(token, '.') - token);
    char *out = malloc(input_len + 200);
    assert_non_null(out);
    memcpy(out, token, input_len);
    out[input_len] = '\0';
    append_sig(out, sig, 64);
    return out;
}

static mandate_rc verify_low_s(const char *token, EVP_PKEY *key, mandate_error *err)
{
    return mandate_jws_verify_with(token, strlen(token), key, MANDATE_JWS_LOW_S, err);
}

static void test_es256_signatures_are_low_s(void **state)
{
    (void)state;
    BIGNUM *n = p256_order();
    json_t *claims = json_pack("{s:s}", "sub", "x");
    mandate_jws_signer *signer = mandate_jws_signer_new(es_key, "k", "at+jwt");
    assert_non_null(signer);
    const unsigned char payload[] = "{\"sub\":\"x\"}";
    unsigned char sig[128];
    size_t openssl_high = 0;
    char *input = signing_input("{\"alg\":\"ES256\"}", "{\"sub\":\"x\"}");
    for (int i = 0; i < 200; i++) {
        /* both ways we sign: the one-shot and the prepared signer */
        char *a = mandate_jws_sign(es_key, NULL, NULL, claims);
        char *b = mandate_jws_signer_sign(signer, payload, sizeof(payload) - 1);
        assert_non_null(a);
        assert_non_null(b);
        assert_int_equal(jws_signature(a, sig, sizeof(sig)), 64);
        if (high_s(sig, n))
            fail_msg("mandate_jws_sign made a high-S signature (%d)", i);
        assert_int_equal(jws_signature(b, sig, sizeof(sig)), 64);
        if (high_s(sig, n))
            fail_msg("mandate_jws_signer_sign made a high-S signature (%d)", i);
        mandate_error err = {0};
        assert_int_equal(verify_low_s(a, es_key, &err), MANDATE_OK);
        assert_int_equal(verify_low_s(b, es_key, &err), MANDATE_OK);
        free(a);
        free(b);
        /* OpenSSL itself: high half the time, which is why we normalise */
        assert_int_equal(evp_sign(es_key, input, false, sig, sizeof(sig)), 64);
        openssl_high += high_s(sig, n);
    }
    /* all 200 low by chance: 2^-200 */
    assert_true(openssl_high > 0);
    free(input);
    mandate_jws_signer_free(&signer);
    json_decref(claims);
    BN_free(n);
}

static void test_es256_high_s_refused(void **state)
{
    (void)state;
    BIGNUM *n = p256_order();
    json_t *claims = json_pack("{s:s}", "sub", "x");
    char *token = mandate_jws_sign(es_key, "k", "at+jwt", claims);
    char *flipped = flip_s(token, n);
    assert_string_not_equal(token, flipped);
    mandate_error err = {0};
    /* the other string verifies as an ECDSA signature (so an upstream IdP's
     * high-S signature still passes mandate_jws_verify) ... */
    expect_verifies(flipped, es_key);
    /* ... but not where canonical signatures are required */
    assert_int_equal(verify_low_s(flipped, es_key, &err), MANDATE_INVALID);
    assert_non_null(strstr(err.message, "canonical"));
    assert_int_equal(verify_low_s(token, es_key, &err), MANDATE_OK);
    /* flipped back: the original string again */
    char *back = flip_s(flipped, n);
    assert_string_equal(back, token);
    free(back);
    free(flipped);
    free(token);
    json_decref(claims);
    BN_free(n);
}

static void test_es256_scalars_out_of_range(void **state)
{
    (void)state;
    BIGNUM *n = p256_order();
    char *input = signing_input("{\"alg\":\"ES256\"}", "{\"sub\":\"x\"}");
    unsigned char good[128], sig[64];
    assert_int_equal(evp_sign(es_key, input, false, good, sizeof(good)), 64);
    char *token = malloc(strlen(input) + 200);
    unsigned char nbytes[32];
    assert_int_equal(BN_bn2binpad(n, nbytes, 32), 32);
    /* r = 0, s = 0, r = n, s = n: refused, with the flag and without */
    for (int k = 0; k < 4; k++) {
        memcpy(sig, good, 64);
        unsigned char *x = sig + (k % 2 == 0 ? 0 : 32);
        if (k < 2)
            memset(x, 0, 32);
        else
            memcpy(x, nbytes, 32);
        strcpy(token, input);
        append_sig(token, sig, 64);
        mandate_error err = {0};
        assert_int_equal(verify(token, es_key, &err), MANDATE_INVALID);
        assert_non_null(strstr(err.message, "[1, n-1]"));
        assert_int_equal(verify_low_s(token, es_key, &err), MANDATE_INVALID);
    }
    free(token);
    free(input);
    BN_free(n);
}

/* Ed25519 has the same hazard (S and S + L) and RFC 8032 §5.1.7 refuses
 * S >= L: OpenSSL does, this checks it stays so. */
static void test_eddsa_s_plus_l_refused(void **state)
{
    (void)state;
    /* L = 2^252 + 27742317777372353535851937790883648493, little-endian */
    static const unsigned char ell[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58,
                                          0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
                                          0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                          0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10};
    json_t *claims = json_pack("{s:s}", "sub", "x");
    char *token = mandate_jws_sign(ed_key, NULL, NULL, claims);
    unsigned char sig[64];
    assert_int_equal(jws_signature(token, sig, sizeof(sig)), 64);
    unsigned carry = 0;
    for (size_t i = 0; i < 32; i++) {
        unsigned v = sig[32 + i] + ell[i] + carry;
        sig[32 + i] = (unsigned char)v;
        carry = v >> 8;
    }
    assert_int_equal(carry, 0); /* S < L < 2^253: S + L fits */
    size_t input_len = (size_t)(strrchr(token, '.') - token);
    token[input_len] = '\0';
    append_sig(token, sig, 64);
    mandate_error err = {0};
    assert_int_equal(verify(token, ed_key, &err), MANDATE_INVALID);
    free(token);
    json_decref(claims);
}

/* --- the act claim ------------------------------------------------------------------ */

static void test_act_round_trip(void **state)
{
    (void)state;
    const char *why = NULL;
    json_t *act = mandate_jwt_act_encode("c", "b a", 16, &why);
    assert_non_null(act);
    char *text = json_dumps(act, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(text,
                        "{\"act\":{\"act\":{\"sub\":\"a\"},\"sub\":\"b\"},\"sub\":\"c\"}");
    free(text);
    char *actor, *prior;
    assert_true(mandate_jwt_act_decode(act, 16, &actor, &prior, &why));
    assert_string_equal(actor, "c");
    assert_string_equal(prior, "b a");
    free(actor);
    free(prior);
    json_decref(act);

    /* one actor: no nesting, no prior actors */
    act = mandate_jwt_act_encode("c", NULL, 16, NULL);
    assert_int_equal(json_object_size(act), 1);
    assert_true(mandate_jwt_act_decode(act, 1, &actor, &prior, &why));
    assert_string_equal(actor, "c");
    assert_null(prior);
    free(actor);
    json_decref(act);
    /* extra spaces in the list are no actors */
    act = mandate_jwt_act_encode("c", " b  a ", 3, NULL);
    assert_true(mandate_jwt_act_decode(act, 3, &actor, &prior, &why));
    assert_string_equal(prior, "b a");
    free(actor);
    free(prior);
    json_decref(act);
}

static void test_act_bounds(void **state)
{
    (void)state;
    const char *why = NULL;
    char *actor = (char *)"untouched", *prior = (char *)"untouched";
    /* max actors in all, the outer one counted */
    assert_null(mandate_jwt_act_encode("c", "b a", 2, &why));
    assert_non_null(strstr(why, "more actors"));
    assert_null(mandate_jwt_act_encode("", NULL, 2, &why));
    assert_null(mandate_jwt_act_encode("a b", NULL, 2, &why));
    assert_null(mandate_jwt_act_encode(NULL, NULL, 2, NULL));
    assert_null(mandate_jwt_act_encode("c", "b \xff", 4, &why));
    assert_non_null(strstr(why, "UTF-8"));
    json_t *act = mandate_jwt_act_encode("c", "b a", 3, NULL);
    assert_false(mandate_jwt_act_decode(act, 2, &actor, &prior, &why));
    assert_null(actor);
    assert_null(prior);
    assert_non_null(strstr(why, "more actors"));
    json_decref(act);

    /* a nesting far deeper than the bound is walked only as far as it */
    json_t *deep = json_pack("{s:s}", "sub", "x");
    for (int i = 0; i < 1000; i++)
        deep = json_pack("{s:s,s:o}", "sub", "x", "act", deep);
    assert_false(mandate_jwt_act_decode(deep, 16, &actor, &prior, &why));
    assert_non_null(strstr(why, "more actors"));
    json_decref(deep);

    /* not what we write */
    const char *bad[] = {"\"x\"",
                         "{}",
                         "{\"sub\":7}",
                         "{\"sub\":\"\"}",
                         "{\"sub\":\"a b\"}",
                         "{\"sub\":\"a\",\"act\":\"b\"}",
                         "{\"sub\":\"a\",\"act\":{\"act\":{\"sub\":\"c\"}}}",
                         "{\"sub\":\"a\",\"act\":{\"sub\":\"b\",\"act\":[]}}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *j = json_loads(bad[i], JSON_DECODE_ANY, NULL);
        assert_non_null(j);
        why = NULL;
        if (mandate_jwt_act_decode(j, 16, &actor, &prior, &why))
            fail_msg("accepted %s", bad[i]);
        assert_non_null(why);
        assert_null(actor);
        json_decref(j);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64url_vectors),
        cmocka_unit_test(test_b64url_round_trip),
        cmocka_unit_test(test_b64url_strict),
        cmocka_unit_test(test_alg_names),
        cmocka_unit_test(test_other_keys_refused),
        cmocka_unit_test(test_private_der),
        cmocka_unit_test(test_public_pem),
        cmocka_unit_test(test_rfc7638_thumbprint),
        cmocka_unit_test(test_rfc8037),
        cmocka_unit_test(test_rfc7515_a2_rs256),
        cmocka_unit_test(test_rfc7515_a3_es256),
        cmocka_unit_test(test_jwk_refusals),
        cmocka_unit_test(test_round_trip_es256),
        cmocka_unit_test(test_round_trip_rs256),
        cmocka_unit_test(test_round_trip_eddsa),
        cmocka_unit_test(test_es256_signature_format),
        cmocka_unit_test(test_refuse_alg_none),
        cmocka_unit_test(test_refuse_hs256_confusion),
        cmocka_unit_test(test_refuse_alg_mismatch),
        cmocka_unit_test(test_refuse_truncated_signature),
        cmocka_unit_test(test_refuse_es256_wrong_length),
        cmocka_unit_test(test_refuse_bad_base64url),
        cmocka_unit_test(test_refuse_header_size),
        cmocka_unit_test(test_refuse_token_size),
        cmocka_unit_test(test_refuse_crit),
        cmocka_unit_test(test_wrong_parts_is_next),
        cmocka_unit_test(test_refuse_malformed_json),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_es256_signatures_are_low_s),
        cmocka_unit_test(test_es256_high_s_refused),
        cmocka_unit_test(test_es256_scalars_out_of_range),
        cmocka_unit_test(test_eddsa_s_plus_l_refused),
        cmocka_unit_test(test_act_round_trip),
        cmocka_unit_test(test_act_bounds),
    };
    return cmocka_run_group_tests(tests, signing_keys_setup, signing_keys_teardown);
}
