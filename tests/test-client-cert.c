/* lib/client-cert.c: client certificates of mutual TLS (RFC 8705), with
 * certificates made here with OpenSSL: the thumbprint, tls_client_auth's
 * subject DN and each SAN kind, self_signed_tls_client_auth's certificate,
 * key and thumbprint, chains to the trust anchors, and the bounded readers
 * (nginx's URL-escaped PEM, DER with trailing bytes). */
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
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "client-cert.h"
#include "jose.h"

static EVP_PKEY *ca_key, *other_ca_key, *leaf_key, *self_key;
static X509 *ca, *other_ca, *leaf, *leaf_by_other, *self_signed, *self_signed_2;

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(ext);
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
}

/* A certificate of subject cn (O=Example Corp, C=US) for key, signed by
 * issuer (NULL: itself), with the SANs of san (NULL: none). */
static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
                       const char *san, bool is_ca)
{
    static long serial = 1;
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC, (const unsigned char *)"US", -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"Example Corp",
                               -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    add_ext(x, issuer ? issuer : x, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "CA:FALSE");
    if (is_ca)
        add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
    if (san != NULL)
        add_ext(x, issuer ? issuer : x, NID_subject_alt_name, san);
    EVP_PKEY *signer = issuer_key ? issuer_key : key;
    /* Ed25519 signs the message itself: no digest */
    const EVP_MD *md = EVP_PKEY_get_id(signer) == EVP_PKEY_ED25519 ? NULL : EVP_sha256();
    assert_true(X509_sign(x, signer, md) > 0);
    return x;
}

static int setup(void **state)
{
    (void)state;
    ca_key = mandate_jose_keygen(MANDATE_JWS_ES256);
    other_ca_key = mandate_jose_keygen(MANDATE_JWS_ES256);
    leaf_key = mandate_jose_keygen(MANDATE_JWS_ES256);
    self_key = mandate_jose_keygen(MANDATE_JWS_EDDSA);
    ca = make_cert("Test CA", ca_key, NULL, NULL, NULL, true);
    other_ca = make_cert("Other CA", other_ca_key, NULL, NULL, NULL, true);
    leaf = make_cert("client-a", leaf_key, ca, ca_key,
                     "DNS:agent.example.com,URI:spiffe://example.com/agent-a,IP:192.0.2.7,"
                     "IP:2001:db8::1,email:agent@example.com",
                     false);
    leaf_by_other = make_cert("client-a", leaf_key, other_ca, other_ca_key, NULL, false);
    self_signed = make_cert("self", self_key, NULL, NULL, "DNS:self.example.com", false);
    self_signed_2 = make_cert("self", leaf_key, NULL, NULL, NULL, false);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    X509 *certs[] = {ca, other_ca, leaf, leaf_by_other, self_signed, self_signed_2};
    for (size_t i = 0; i < sizeof(certs) / sizeof(certs[0]); i++)
        X509_free(certs[i]);
    EVP_PKEY *keys[] = {ca_key, other_ca_key, leaf_key, self_key};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        EVP_PKEY_free(keys[i]);
    return 0;
}

static bool name_match(X509 *cert, const char *member, const char *value, const char **why)
{
    json_t *reg = json_pack("{s:s}", member, value);
    *why = NULL;
    bool yes = mandate_cert_matches_name(cert, reg, why);
    json_decref(reg);
    return yes;
}

static void test_subject_dn(void **state)
{
    (void)state;
    const char *why;
    const char *dn = "tls_client_auth_subject_dn";
    assert_true(name_match(leaf, dn, "CN=client-a,O=Example Corp,C=US", &why));
    /* without case, with the spaces people write */
    assert_true(name_match(leaf, dn, "cn=Client-A, o=Example Corp , C = US", &why));
    assert_false(name_match(leaf, dn, "CN=client-b,O=Example Corp,C=US", &why));
    assert_string_equal(why, "the certificate's subject DN is not the registered one");
    /* RFC 4514 order: the most significant last */
    assert_false(name_match(leaf, dn, "C=US,O=Example Corp,CN=client-a", &why));
    assert_false(name_match(leaf, dn, "CN=client-a,O=Example Corp", &why));
    assert_false(name_match(leaf, dn, "CN=client-a,O=Example Corp,C=US,OU=x", &why));
    assert_false(name_match(leaf, dn, "", &why));
}

/* The names of each kind that match the leaf certificate (client-a's: DNS
 * agent.example.com, URI spiffe://example.com/agent-a, IPs 192.0.2.7 and
 * 2001:db8::1, email agent@example.com) and some that do not: the DNS name
 * is not a URI, nor the subject's CN a DNS name. */
static const struct {
    const char *kind;
    const char *match[3], *no_match[4]; /* ended by NULL */
} leaf_sans[] = {
    {"tls_client_auth_san_dns", {"agent.example.com", "AGENT.Example.com"}, {"client-a"}},
    {"tls_client_auth_san_uri",
     {"spiffe://example.com/agent-a"},
     {"agent.example.com", "spiffe://example.com/agent-b", "SPIFFE://example.com/agent-a"}},
    {"tls_client_auth_san_ip",
     {"192.0.2.7", "2001:db8:0::1"},
     {"192.0.2.8", "::ffff:192.0.2.7", "not an address"}},
    {"tls_client_auth_san_email", {"agent@example.com"}, {"other@example.com"}},
};

static void test_sans(void **state)
{
    (void)state;
    const char *why;
    for (size_t i = 0; i < sizeof(leaf_sans) / sizeof(leaf_sans[0]); i++) {
        for (const char *const *n = leaf_sans[i].match; *n != NULL; n++)
            if (!name_match(leaf, leaf_sans[i].kind, *n, &why))
                fail_msg("%s %s: no match (%s)", leaf_sans[i].kind, *n, why);
        for (const char *const *n = leaf_sans[i].no_match; *n != NULL; n++)
            if (name_match(leaf, leaf_sans[i].kind, *n, &why))
                fail_msg("%s %s: a match", leaf_sans[i].kind, *n);
    }
    assert_false(name_match(leaf, "tls_client_auth_san_dns", "other.example.com", &why));
    assert_string_equal(why, "no DNS name SAN of the certificate is the registered one");
    /* a certificate without SANs */
    assert_false(name_match(leaf_by_other, "tls_client_auth_san_dns", "agent.example.com", &why));
}

static void test_one_name(void **state)
{
    (void)state;
    const char *why = NULL;
    json_t *two = json_pack("{s:s,s:s}", "tls_client_auth_subject_dn",
                            "CN=client-a,O=Example Corp,C=US", "tls_client_auth_san_dns",
                            "agent.example.com");
    assert_false(mandate_cert_matches_name(leaf, two, &why));
    assert_string_equal(why, "the client registers more than one certificate name");
    json_t *none = json_object();
    assert_false(mandate_cert_matches_name(leaf, none, &why));
    assert_string_equal(why, "the client registers no certificate subject DN or SAN");
    json_decref(two);
    json_decref(none);
}

static char *der_base64(X509 *cert)
{
    unsigned char *der = NULL;
    int len = i2d_X509(cert, &der);
    char *out = malloc(4 * ((size_t)len + 2) / 3 + 1);
    EVP_EncodeBlock((unsigned char *)out, der, len);
    OPENSSL_free(der);
    return out;
}

static void test_thumbprint(void **state)
{
    (void)state;
    char x5t[MANDATE_CERT_THUMBPRINT_LEN + 1], again[MANDATE_CERT_THUMBPRINT_LEN + 1];
    assert_true(mandate_cert_thumbprint(leaf, x5t));
    assert_int_equal(strlen(x5t), MANDATE_CERT_THUMBPRINT_LEN);
    /* by hand: base64url of SHA-256 of the DER */
    unsigned char *der = NULL, digest[32];
    int len = i2d_X509(leaf, &der);
    unsigned int dlen;
    EVP_Digest(der, (size_t)len, digest, &dlen, EVP_sha256(), NULL);
    OPENSSL_free(der);
    char b64[64];
    EVP_EncodeBlock((unsigned char *)b64, digest, 32);
    for (char *p = b64; *p; p++)
        *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
    b64[43] = '\0'; /* no padding */
    assert_string_equal(x5t, b64);
    assert_true(mandate_cert_thumbprint(leaf_by_other, again));
    assert_string_not_equal(x5t, again);
}

static void test_self_signed(void **state)
{
    (void)state;
    const char *why = NULL;
    /* the certificate in x5c */
    char *b64 = der_base64(self_signed);
    json_t *jwk = mandate_jwk_from_key(X509_get0_pubkey(self_signed), NULL);
    json_object_set_new(jwk, "x5c", json_pack("[s]", b64));
    json_t *reg = json_pack("{s:{s:[O]}}", "jwks", "keys", jwk);
    assert_true(mandate_cert_matches_self_signed(self_signed, reg, &why));
    assert_false(mandate_cert_matches_self_signed(self_signed_2, reg, &why));
    assert_string_equal(why, "the certificate is not one the client registered");
    json_decref(reg);
    /* the key alone: another certificate of the same key passes too */
    json_object_del(jwk, "x5c");
    reg = json_pack("{s:{s:[O]}}", "jwks", "keys", jwk);
    assert_true(mandate_cert_matches_self_signed(self_signed, reg, &why));
    assert_false(mandate_cert_matches_self_signed(self_signed_2, reg, &why));
    assert_false(mandate_cert_matches_self_signed(leaf, reg, &why));
    json_decref(reg);
    json_decref(jwk);
    /* a broken x5c matches nothing */
    reg = json_pack("{s:{s:[{s:s,s:[s]}]}}", "jwks", "keys", "kty", "OKP", "x5c", "bm90IGRlcg==");
    assert_false(mandate_cert_matches_self_signed(self_signed, reg, &why));
    json_decref(reg);
    /* the thumbprint */
    char x5t[MANDATE_CERT_THUMBPRINT_LEN + 1];
    assert_true(mandate_cert_thumbprint(self_signed, x5t));
    reg = json_pack("{s:s}", "tls_client_auth_x5t_s256", x5t);
    assert_true(mandate_cert_matches_self_signed(self_signed, reg, &why));
    assert_false(mandate_cert_matches_self_signed(self_signed_2, reg, &why));
    json_decref(reg);
    reg = json_object();
    assert_false(mandate_cert_matches_self_signed(self_signed, reg, &why));
    assert_string_equal(why,
                        "the client registers no certificate (jwks or tls_client_auth_x5t_s256)");
    json_decref(reg);
    free(b64);
}

static char *pem_of(X509 *cert)
{
    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(bio, cert);
    char *data;
    long len = BIO_get_mem_data(bio, &data);
    char *out = strndup(data, (size_t)len);
    BIO_free(bio);
    return out;
}

static void test_chain(void **state)
{
    (void)state;
    const char *why = NULL;
    char *ca_pem = pem_of(ca);
    X509_STORE *anchors = mandate_cert_anchors(ca_pem, strlen(ca_pem));
    assert_non_null(anchors);
    assert_true(mandate_cert_chain_verified(anchors, leaf, NULL, &why));
    assert_false(mandate_cert_chain_verified(anchors, leaf_by_other, NULL, &why));
    assert_non_null(why);
    assert_false(mandate_cert_chain_verified(anchors, self_signed, NULL, &why));
    assert_false(mandate_cert_chain_verified(NULL, leaf, NULL, &why));
    X509_STORE_free(anchors);
    assert_null(mandate_cert_anchors("not a certificate", 17));
    free(ca_pem);
}

static void test_readers(void **state)
{
    (void)state;
    const char *why = NULL;
    char *pem = pem_of(leaf);
    /* as nginx's $ssl_client_escaped_cert: every byte but unreserved ones escaped */
    size_t n = strlen(pem);
    char *escaped = malloc(3 * n + 1), *e = escaped;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)pem[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-')
            *e++ = (char)c;
        else
            e += sprintf(e, "%%%02X", c);
    }
    *e = '\0';
    X509 *x = mandate_cert_from_escaped_pem(escaped, strlen(escaped), &why);
    assert_non_null(x);
    assert_int_equal(X509_cmp(x, leaf), 0);
    X509_free(x);
    /* a bad escape, a cut one, not a certificate, over the bound */
    escaped[40] = '%', escaped[41] = 'z';
    assert_null(mandate_cert_from_escaped_pem(escaped, strlen(escaped), &why));
    assert_string_equal(why, "the forwarded client certificate is badly escaped");
    assert_null(mandate_cert_from_escaped_pem("abc%4", 5, &why));
    assert_null(mandate_cert_from_escaped_pem("hello", 5, &why));
    assert_string_equal(why, "the forwarded client certificate is not a PEM certificate");
    char *huge = malloc(MANDATE_CLIENT_CERT_ESCAPED_MAX + 2);
    memset(huge, 'A', MANDATE_CLIENT_CERT_ESCAPED_MAX + 1);
    huge[MANDATE_CLIENT_CERT_ESCAPED_MAX + 1] = '\0';
    assert_null(mandate_cert_from_escaped_pem(huge, strlen(huge), &why));
    assert_string_equal(why, "the forwarded client certificate is too long");
    free(huge);
    /* DER: exactly one certificate */
    unsigned char *der = NULL;
    int len = i2d_X509(leaf, &der);
    unsigned char *longer = malloc((size_t)len + 1);
    memcpy(longer, der, (size_t)len);
    longer[len] = 0;
    x = mandate_cert_from_der(der, (size_t)len);
    assert_non_null(x);
    X509_free(x);
    assert_null(mandate_cert_from_der(longer, (size_t)len + 1));
    assert_null(mandate_cert_from_der(der, (size_t)len - 1));
    OPENSSL_free(der);
    free(longer);
    free(escaped);
    free(pem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_subject_dn), cmocka_unit_test(test_sans),
        cmocka_unit_test(test_one_name),   cmocka_unit_test(test_thumbprint),
        cmocka_unit_test(test_self_signed), cmocka_unit_test(test_chain),
        cmocka_unit_test(test_readers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
