/* lib/dpop.c: DPoP proofs (RFC 9449 §4.3) accepted for each algorithm and
 * refused for every check, with keys made here with OpenSSL; the htu
 * comparison's normalisation; ath. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/rsa.h>

#include "dpop.h"
#include "jose.h"
#include "signing-keys.h"

#define NOW 1800000000
#define URI "https://as.example.com/oauth2/token"
#define TOKEN "an-access-token"

static mandate_dpop_expect expect(const char *token)
{
    return (mandate_dpop_expect){.method = "POST",
                                 .uri = URI,
                                 .access_token = token,
                                 .algs = MANDATE_DPOP_ALGS_ALL,
                                 .now = NOW,
                                 .max_age = 60,
                                 .max_future = 5};
}

/* The public JWK of key as a proof carries it. */
static json_t *public_jwk(const EVP_PKEY *key)
{
    json_t *jwk = mandate_jwk_from_key(key, NULL);
    json_object_del(jwk, "use");
    json_object_del(jwk, "kid");
    json_object_del(jwk, "alg");
    return jwk;
}

/* A proof's header and claims, for a test to spoil, then signed by key. */
typedef struct parts {
    json_t *header, *claims;
} parts;

static parts good_parts(const EVP_PKEY *key, const char *token)
{
    parts p;
    p.header =
        json_pack("{s:s,s:s,s:o}", "typ", "dpop+jwt", "alg",
                  mandate_jws_alg_name(mandate_jws_alg_for_key(key)), "jwk", public_jwk(key));
    p.claims = json_pack("{s:s,s:s,s:s,s:I}", "jti", "e1j3V_bKic8-LAEB", "htm", "POST", "htu",
                         URI, "iat", (json_int_t)NOW);
    if (token != NULL) {
        char ath[MANDATE_JWK_THUMBPRINT_LEN + 1];
        assert_true(mandate_dpop_ath(token, strlen(token), ath));
        json_object_set_new(p.claims, "ath", json_string(ath));
    }
    return p;
}

static char *sign_parts(const EVP_PKEY *key, parts p)
{
    char *proof = mandate_jws_sign_with_header(key, p.header, p.claims);
    json_decref(p.header);
    json_decref(p.claims);
    assert_non_null(proof);
    return proof;
}

/* The proof is refused, and the reason holds why. */
static void refused(const char *proof, mandate_dpop_expect x, const char *why)
{
    mandate_dpop_proof p;
    mandate_error err = {0};
    assert_int_equal(mandate_dpop_check(proof, strlen(proof), &x, &p, &err), MANDATE_INVALID);
    if (strstr(err.message, why) == NULL)
        fail_msg("refused for '%s', expected '%s'", err.message, why);
    assert_string_equal(p.jkt, "");
}

static void refused_parts(const EVP_PKEY *key, parts p, const char *token, const char *why)
{
    char *proof = sign_parts(key, p);
    refused(proof, expect(token), why);
    free(proof);
}

static void accepts_each_algorithm(void **state)
{
    (void)state;
    EVP_PKEY *keys[] = {es_key, ed_key, rs_key};
    for (size_t i = 0; i < 3; i++) {
        char *proof = mandate_dpop_proof_make(keys[i], "POST", URI, NULL, NULL, NOW);
        assert_non_null(proof);
        mandate_dpop_expect x = expect(NULL);
        mandate_dpop_proof p;
        mandate_error err = {0};
        assert_int_equal(mandate_dpop_check(proof, strlen(proof), &x, &p, &err), MANDATE_OK);
        char jkt[MANDATE_JWK_THUMBPRINT_LEN + 1];
        assert_true(mandate_jwk_thumbprint(keys[i], jkt));
        assert_string_equal(p.jkt, jkt);
        assert_int_equal(p.iat, NOW);
        assert_true(strlen(p.jti) > 0);
        free(proof);
        /* with a token (ath) and a server's nonce */
        proof = mandate_dpop_proof_make(keys[i], "GET", "https://rs.example.com/x?q=1", TOKEN,
                                        "n-1", NOW - 30);
        x = expect(TOKEN);
        x.method = "GET";
        x.uri = "https://RS.example.com:443/x";
        assert_int_equal(mandate_dpop_check(proof, strlen(proof), &x, &p, &err), MANDATE_OK);
        assert_string_equal(p.nonce, "n-1");
        free(proof);
    }
}

static void refuses_bad_headers(void **state)
{
    (void)state;
    parts p = good_parts(es_key, NULL);
    json_object_set_new(p.header, "typ", json_string("JWT"));
    refused_parts(es_key, p, NULL, "typ is not dpop+jwt");

    p = good_parts(es_key, NULL);
    json_object_del(p.header, "typ");
    refused_parts(es_key, p, NULL, "typ is not dpop+jwt");

    p = good_parts(es_key, NULL);
    json_object_del(p.header, "jwk");
    refused_parts(es_key, p, NULL, "has no jwk");

    /* the private key in the header */
    p = good_parts(es_key, NULL);
    json_object_set_new(json_object_get(p.header, "jwk"), "d",
                        json_string("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
    refused_parts(es_key, p, NULL, "holds a private key");

    /* signed by another key than the one in the header */
    p = good_parts(es_key, NULL);
    refused_parts(rogue_key, p, NULL, "does not verify");

    /* an EdDSA key under alg ES256 */
    p = good_parts(es_key, NULL);
    json_object_set_new(p.header, "jwk", public_jwk(ed_key));
    refused_parts(es_key, p, NULL, "not a key for its alg");

    /* an algorithm accepted by the JOSE layer but not configured */
    char *proof = mandate_dpop_proof_make(rs_key, "POST", URI, NULL, NULL, NOW);
    mandate_dpop_expect x = expect(NULL);
    x.algs = MANDATE_DPOP_ALG(MANDATE_JWS_ES256) | MANDATE_DPOP_ALG(MANDATE_JWS_EDDSA);
    refused(proof, x, "alg is not one of the accepted");
    free(proof);
}

/* A proof with alg none or HS256, made by hand: never accepted. */
static void refuses_none_and_hmac(void **state)
{
    (void)state;
    const char *algs[] = {"none", "HS256"};
    for (size_t i = 0; i < 2; i++) {
        json_t *jwk = public_jwk(es_key);
        json_t *h = json_pack("{s:s,s:s,s:o}", "typ", "dpop+jwt", "alg", algs[i], "jwk", jwk);
        char *ht = json_dumps(h, JSON_COMPACT);
        const char *pt =
            "{\"jti\":\"x\",\"htm\":\"POST\",\"htu\":\"" URI "\",\"iat\":1800000000}";
        char h64[1024], p64[256];
        mandate_b64url_encode((unsigned char *)ht, strlen(ht), h64);
        mandate_b64url_encode((const unsigned char *)pt, strlen(pt), p64);
        char proof[1400];
        snprintf(proof, sizeof(proof), "%s.%s.%s", h64, p64, i == 0 ? "" : "c2lnbmF0dXJl");
        refused(proof, expect(NULL), "not a JWS of an accepted algorithm");
        free(ht);
        json_decref(h);
    }
}

/* A member of an RSA key as base64url (the JOSE layer will not describe a
 * key under 2048 bits, so the test does). */
static json_t *rsa_member(const EVP_PKEY *key, const char *name)
{
    BIGNUM *bn = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(key, name, &bn), 1);
    unsigned char buf[512];
    int len = BN_bn2bin(bn, buf);
    BN_free(bn);
    char out[700];
    mandate_b64url_encode(buf, (size_t)len, out);
    return json_string(out);
}

static void refuses_small_rsa(void **state)
{
    (void)state;
    EVP_PKEY *small = EVP_RSA_gen(1024);
    assert_non_null(small);
    json_t *jwk = json_pack("{s:s,s:o,s:o}", "kty", "RSA", "n", rsa_member(small, "n"), "e",
                            rsa_member(small, "e"));
    parts p = good_parts(rs_key, NULL);
    json_object_set_new(p.header, "jwk", jwk);
    EVP_PKEY_free(small);
    /* signed by a 2048-bit key (the JOSE layer signs with no smaller one):
     * the small key is refused before any signature is looked at */
    refused_parts(rs_key, p, NULL, "RSA < 2048 bits");
}

/* One claim of a good proof spoilt: set to a JSON value, or removed
 * (value NULL). */
typedef struct spoilt_claim {
    const char *claim, *value, *why;
} spoilt_claim;

static void refuses_bad_claims(void **state)
{
    (void)state;
    static const spoilt_claim cases[] = {
        {"htm", "\"GET\"", "htm is not the request's method"},
        {"htm", NULL, "has no htm"},
        {"htu", "\"https://as.example.com/oauth2/other\"", "htu is not the request's URI"},
        {"htu", "\"http://as.example.com/oauth2/token\"", "htu is not the request's URI"},
        {"htu", NULL, "has no htu"},
        {"iat", "1799999939", "too old"},
        {"iat", "1800000006", "in the future"},
        {"iat", "\"1800000000\"", "iat is missing"},
        {"jti", NULL, "has no jti"},
        {"jti", "\"\"", "has no jti"},
        {"nonce", "42", "nonce is not a string"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        parts p = good_parts(es_key, NULL);
        if (cases[i].value == NULL)
            json_object_del(p.claims, cases[i].claim);
        else
            json_object_set_new(p.claims, cases[i].claim,
                                json_loads(cases[i].value, JSON_DECODE_ANY, NULL));
        refused_parts(es_key, p, NULL, cases[i].why);
    }

    char long_jti[MANDATE_DPOP_JTI_MAX + 2];
    memset(long_jti, 'j', sizeof(long_jti) - 1);
    long_jti[sizeof(long_jti) - 1] = '\0';
    parts p = good_parts(es_key, NULL);
    json_object_set_new(p.claims, "jti", json_string(long_jti));
    refused_parts(es_key, p, NULL, "jti is longer");
}

static void refuses_bad_ath(void **state)
{
    (void)state;
    /* a token presented, the proof without ath */
    parts p = good_parts(es_key, NULL);
    refused_parts(es_key, p, TOKEN, "has no ath");

    /* ath of another token */
    p = good_parts(es_key, "another-token");
    refused_parts(es_key, p, TOKEN, "ath is not the hash");

    /* ath where no token goes */
    p = good_parts(es_key, TOKEN);
    refused_parts(es_key, p, NULL, "no token goes with it");
}

static void refuses_malformed(void **state)
{
    (void)state;
    refused("", expect(NULL), "empty");
    refused("not a jwt", expect(NULL), "not three base64url parts");
    refused("a.b.c", expect(NULL), "not a JWS");
    char *big = malloc(MANDATE_DPOP_MAX_LEN + 2);
    memset(big, 'A', MANDATE_DPOP_MAX_LEN + 1);
    big[MANDATE_DPOP_MAX_LEN + 1] = '\0';
    refused(big, expect(NULL), "longer than");
    free(big);
}

/* A proof by key passes with x, bound to key's thumbprint. */
static void accepted_with(const EVP_PKEY *key, mandate_dpop_expect x)
{
    char *proof = mandate_dpop_proof_make(key, "POST", URI, NULL, NULL, NOW);
    assert_non_null(proof);
    mandate_dpop_proof p;
    mandate_error err = {0};
    assert_int_equal(mandate_dpop_check(proof, strlen(proof), &x, &p, &err), MANDATE_OK);
    char jkt[MANDATE_JWK_THUMBPRINT_LEN + 1];
    assert_true(mandate_jwk_thumbprint(key, jkt));
    assert_string_equal(p.jkt, jkt);
    free(proof);
}

static bool holds(mandate_dpop_keys *keys, const EVP_PKEY *key)
{
    json_t *jwk = public_jwk(key);
    bool yes = mandate_dpop_keys_holds(keys, jwk);
    json_decref(jwk);
    return yes;
}

/* The keys of proofs checked: bounded, the least recently used goes first,
 * a key is found by its exact jwk only, and a known key still verifies each
 * proof. */
static void keys_kept(void **state)
{
    (void)state;
    mandate_dpop_keys *keys = mandate_dpop_keys_new(2);
    assert_non_null(keys);
    mandate_dpop_expect x = expect(NULL);
    x.keys = keys;
    accepted_with(es_key, x);
    assert_int_equal(mandate_dpop_keys_count(keys), 1);
    assert_true(holds(keys, es_key));
    accepted_with(es_key, x); /* found: the same entry, the same thumbprint */
    assert_int_equal(mandate_dpop_keys_count(keys), 1);
    accepted_with(ed_key, x); /* another key: its own thumbprint, not es256's */
    assert_int_equal(mandate_dpop_keys_count(keys), 2);
    accepted_with(es_key, x); /* es256 the most recent, eddsa the least */
    accepted_with(rs_key, x);
    assert_int_equal(mandate_dpop_keys_count(keys), 2);
    assert_true(holds(keys, es_key));
    assert_true(holds(keys, rs_key));
    assert_false(holds(keys, ed_key));
    accepted_with(ed_key, x); /* imported again, es256 goes now */
    assert_false(holds(keys, es_key));
    accepted_with(es_key, x);

    /* a known key vouches for no proof it did not sign */
    parts p = good_parts(es_key, NULL);
    char *proof = sign_parts(rogue_key, p);
    refused(proof, x, "does not verify");
    free(proof);
    /* nor for a jwk with one member more (a different text: imported and refused) */
    p = good_parts(es_key, NULL);
    json_object_set_new(json_object_get(p.header, "jwk"), "use", json_string("enc"));
    proof = sign_parts(es_key, p);
    refused(proof, x, "not a usable public key");
    free(proof);
    /* nor under another alg than its own */
    p = good_parts(es_key, NULL);
    json_object_set_new(p.header, "jwk", public_jwk(ed_key));
    proof = sign_parts(es_key, p);
    refused(proof, x, "not a key for its alg");
    free(proof);
    /* a key whose proof did not verify is not kept */
    p = good_parts(rogue_key, NULL);
    proof = sign_parts(es_key, p);
    refused(proof, x, "does not verify");
    free(proof);
    assert_false(holds(keys, rogue_key));
    mandate_dpop_keys_free(&keys);
    assert_null(keys);
}

static void uri_normalisation(void **state)
{
    (void)state;
    assert_true(mandate_dpop_uri_equal("https://a.example/x", "HTTPS://A.Example:443/x"));
    assert_true(mandate_dpop_uri_equal("http://a.example", "http://a.example:80/"));
    assert_true(mandate_dpop_uri_equal("https://a.example/x?q=1#f", "https://a.example/x"));
    assert_true(mandate_dpop_uri_equal("https://a.example/%7Ex%2f", "https://a.example/~x%2F"));
    assert_true(mandate_dpop_uri_equal("http://127.0.0.1:8080/t", "http://127.0.0.1:8080/t"));
    assert_false(mandate_dpop_uri_equal("https://a.example:8443/x", "https://a.example/x"));
    assert_false(mandate_dpop_uri_equal("https://a.example/X", "https://a.example/x"));
    assert_false(mandate_dpop_uri_equal("https://a.example/x", "http://a.example/x"));
    assert_false(mandate_dpop_uri_equal("https://u@a.example/x", "https://a.example/x"));
    assert_false(mandate_dpop_uri_equal("ftp://a.example/x", "ftp://a.example/x"));
    assert_false(mandate_dpop_uri_equal("https://a.example/%zz", "https://a.example/%zz"));
    assert_false(mandate_dpop_uri_equal("https:///x", "https:///x"));
    assert_false(mandate_dpop_uri_equal("https://a.example:8x/", "https://a.example:8x/"));
    assert_false(mandate_dpop_uri_equal(NULL, "https://a.example/"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accepts_each_algorithm), cmocka_unit_test(keys_kept),
        cmocka_unit_test(refuses_bad_headers),
        cmocka_unit_test(refuses_none_and_hmac),  cmocka_unit_test(refuses_small_rsa),
        cmocka_unit_test(refuses_bad_claims),     cmocka_unit_test(refuses_bad_ath),
        cmocka_unit_test(refuses_malformed),      cmocka_unit_test(uri_normalisation),
    };
    return cmocka_run_group_tests(tests, signing_keys_setup, signing_keys_teardown);
}
