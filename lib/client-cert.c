/* Client certificates of mutual TLS: client-cert.h. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "client-cert.h"
#include "jose.h"
#include "text-encoding.h"

/* A registered jwks of more keys than this is not searched further. */
#define JWKS_KEYS_MAX 16
/* A registered name or DN longer than this matches nothing. */
#define NAME_MAX_LEN 1024

X509 *mandate_cert_from_der(const unsigned char *der, size_t len)
{
    if (der == NULL || len == 0 || len > MANDATE_CLIENT_CERT_MAX)
        return NULL;
    const unsigned char *p = der;
    X509 *cert = d2i_X509(NULL, &p, (long)len);
    if (cert != NULL && p != der + len) {
        /* trailing bytes: not one certificate */
        X509_free(cert);
        return NULL;
    }
    return cert;
}

X509 *mandate_cert_from_pem(const char *pem, size_t len)
{
    if (pem == NULL || len == 0 || len > MANDATE_CLIENT_CERT_MAX)
        return NULL;
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    X509 *cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    return cert;
}

X509 *mandate_cert_from_escaped_pem(const char *text, size_t len, const char **why_r)
{
    if (len > MANDATE_CLIENT_CERT_ESCAPED_MAX) {
        *why_r = "the forwarded client certificate is too long";
        return NULL;
    }
    char *pem = malloc(len + 1);
    if (pem == NULL) {
        *why_r = "out of memory";
        return NULL;
    }
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] != '%') {
            pem[n++] = text[i];
            continue;
        }
        int octet = mandate_percent_decode_octet(text + i, len - i);
        if (octet < 0) {
            free(pem);
            *why_r = "the forwarded client certificate is badly escaped";
            return NULL;
        }
        pem[n++] = (char)octet;
        i += 2;
    }
    pem[n] = '\0';
    X509 *cert = mandate_cert_from_pem(pem, n);
    free(pem);
    if (cert == NULL)
        *why_r = "the forwarded client certificate is not a PEM certificate";
    return cert;
}

bool mandate_cert_thumbprint(X509 *cert, char out[MANDATE_CERT_THUMBPRINT_LEN + 1])
{
    unsigned char *der = NULL;
    int len = i2d_X509(cert, &der);
    unsigned char digest[32];
    unsigned int dlen = 0;
    bool ok = len > 0 && EVP_Digest(der, (size_t)len, digest, &dlen, EVP_sha256(), NULL) == 1 &&
              dlen == sizeof(digest);
    OPENSSL_free(der);
    if (ok)
        mandate_b64url_encode(digest, sizeof(digest), out);
    return ok;
}

/* --- tls_client_auth: the subject DN or a SAN ---------------------------------------- */

/* A DN for comparing: lower case, without the spaces around an unescaped
 * ',', '+' or '=' (RFC 4514 writes none; people and tools often do). */
static char *dn_normalised(const char *dn, size_t len)
{
    char *out = malloc(len + 1);
    if (out == NULL)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = dn[i];
        if (c == '\\' && i + 1 < len) {
            out[n++] = c;
            out[n++] = (char)tolower((unsigned char)dn[++i]);
            continue;
        }
        if (c == ',' || c == '+' || c == '=') {
            while (n > 0 && out[n - 1] == ' ' && !(n > 1 && out[n - 2] == '\\'))
                n--;
            out[n++] = c;
            while (i + 1 < len && dn[i + 1] == ' ')
                i++;
            continue;
        }
        out[n++] = (char)tolower((unsigned char)c);
    }
    while (n > 0 && out[n - 1] == ' ' && !(n > 1 && out[n - 2] == '\\'))
        n--;
    size_t start = 0;
    while (start < n && out[start] == ' ')
        start++;
    memmove(out, out + start, n - start);
    out[n - start] = '\0';
    return out;
}

/* The certificate's subject as RFC 4514 text (UTF-8 kept as it is). */
static char *subject_text(X509 *cert)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *out = NULL;
    if (bio != NULL &&
        X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0,
                           XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
        char *data;
        long len = BIO_get_mem_data(bio, &data);
        if (len >= 0 && len <= NAME_MAX_LEN)
            out = dn_normalised(data, (size_t)len);
    }
    BIO_free(bio);
    return out;
}

static bool subject_matches(X509 *cert, const char *dn)
{
    size_t len = strlen(dn);
    if (len == 0 || len > NAME_MAX_LEN)
        return false;
    char *want = dn_normalised(dn, len), *have = subject_text(cert);
    bool yes = want != NULL && have != NULL && strcmp(want, have) == 0;
    free(want);
    free(have);
    return yes;
}

/* Whether a SAN of kind type (GEN_DNS, GEN_URI, GEN_EMAIL, GEN_IPADD) is
 * want. */
static bool san_matches(X509 *cert, int type, const char *want)
{
    unsigned char ip[16];
    size_t ip_len = 0;
    if (type == GEN_IPADD) {
        if (inet_pton(AF_INET, want, ip) == 1)
            ip_len = 4;
        else if (inet_pton(AF_INET6, want, ip) == 1)
            ip_len = 16;
        else
            return false;
    }
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    bool yes = false;
    for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num(names) && !yes; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        if (g->type != type)
            continue;
        const ASN1_STRING *s = g->d.ia5; /* every kind here is an octet string */
        const unsigned char *data = ASN1_STRING_get0_data(s);
        size_t len = (size_t)ASN1_STRING_length(s);
        if (type == GEN_IPADD)
            yes = len == ip_len && memcmp(data, ip, ip_len) == 0;
        else if (type == GEN_URI)
            yes = len == strlen(want) && memcmp(data, want, len) == 0;
        else /* DNS names and mailboxes: without case (the local part too, in practice) */
            yes = len == strlen(want) && memchr(data, '\0', len) == NULL &&
                  strncasecmp((const char *)data, want, len) == 0;
    }
    GENERAL_NAMES_free(names);
    return yes;
}

bool mandate_cert_matches_name(X509 *cert, const json_t *reg, const char **why_r)
{
    static const struct {
        const char *member;
        int san; /* 0: the subject DN */
        const char *mismatch;
    } kinds[] = {
        {"tls_client_auth_subject_dn", 0, "the certificate's subject DN is not the registered one"},
        {"tls_client_auth_san_dns", GEN_DNS, "no DNS name SAN of the certificate is the registered one"},
        {"tls_client_auth_san_uri", GEN_URI, "no URI SAN of the certificate is the registered one"},
        {"tls_client_auth_san_ip", GEN_IPADD, "no IP address SAN of the certificate is the registered one"},
        {"tls_client_auth_san_email", GEN_EMAIL, "no email SAN of the certificate is the registered one"}};
    size_t kind = 0;
    const char *want = NULL;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        const char *v = json_string_value(json_object_get(reg, kinds[i].member));
        if (v == NULL)
            continue;
        if (want != NULL) {
            /* RFC 8705 §2.1.2: exactly one */
            *why_r = "the client registers more than one certificate name";
            return false;
        }
        kind = i, want = v;
    }
    if (want == NULL) {
        *why_r = "the client registers no certificate subject DN or SAN";
        return false;
    }
    bool yes = kinds[kind].san == 0 ? subject_matches(cert, want)
                                    : san_matches(cert, kinds[kind].san, want);
    if (!yes)
        *why_r = kinds[kind].mismatch;
    return yes;
}

/* --- self_signed_tls_client_auth: the certificate or its key ------------------------- */

/* Whether the JWK names cert: its first x5c certificate is cert, or (no
 * x5c) its public key is cert's. */
static bool jwk_names(X509 *cert, const json_t *jwk)
{
    const json_t *x5c = json_object_get(jwk, "x5c");
    if (x5c != NULL) {
        const char *b64 = json_string_value(json_array_get(x5c, 0));
        size_t len = b64 ? strlen(b64) : 0;
        if (len == 0 || len > MANDATE_CLIENT_CERT_MAX * 4 / 3 + 4 || len % 4 != 0)
            return false;
        unsigned char *der = malloc(len);
        int n = der ? EVP_DecodeBlock(der, (const unsigned char *)b64, (int)len) : -1;
        /* EVP_DecodeBlock counts the padding as zero bytes */
        for (size_t pad = len; n > 0 && pad > 0 && b64[pad - 1] == '='; pad--)
            n--;
        X509 *x = n > 0 ? mandate_cert_from_der(der, (size_t)n) : NULL;
        bool yes = x != NULL && X509_cmp(x, cert) == 0;
        X509_free(x);
        free(der);
        return yes;
    }
    mandate_error err = {0};
    EVP_PKEY *key = mandate_jwk_to_key(jwk, &err);
    bool yes = key != NULL && EVP_PKEY_eq(key, X509_get0_pubkey(cert)) == 1;
    EVP_PKEY_free(key);
    return yes;
}

bool mandate_cert_matches_self_signed(X509 *cert, const json_t *reg, const char **why_r)
{
    const char *x5t = json_string_value(json_object_get(reg, "tls_client_auth_x5t_s256"));
    const json_t *keys = json_object_get(json_object_get(reg, "jwks"), "keys");
    if (x5t == NULL && !json_is_array(keys)) {
        *why_r = "the client registers no certificate (jwks or tls_client_auth_x5t_s256)";
        return false;
    }
    if (x5t != NULL) {
        char have[MANDATE_CERT_THUMBPRINT_LEN + 1];
        if (mandate_cert_thumbprint(cert, have) && strcmp(have, x5t) == 0)
            return true;
    }
    for (size_t i = 0; i < json_array_size(keys) && i < JWKS_KEYS_MAX; i++)
        if (jwk_names(cert, json_array_get(keys, i)))
            return true;
    *why_r = "the certificate is not one the client registered";
    return false;
}

/* --- chains ---------------------------------------------------------------------------- */

X509_STORE *mandate_cert_anchors(const char *pem, size_t len)
{
    BIO *bio = pem != NULL && len > 0 && len <= INT32_MAX ? BIO_new_mem_buf(pem, (int)len) : NULL;
    X509_STORE *store = bio ? X509_STORE_new() : NULL;
    size_t count = 0;
    X509 *x;
    while (store != NULL && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (X509_STORE_add_cert(store, x) == 1)
            count++;
        X509_free(x);
    }
    BIO_free(bio);
    if (count == 0) {
        X509_STORE_free(store);
        return NULL;
    }
    return store;
}

bool mandate_cert_chain_verified(X509_STORE *anchors, X509 *cert, STACK_OF(X509) *untrusted,
                                 const char **why_r)
{
    if (anchors == NULL) {
        *why_r = "no trust anchors are configured for client certificates (server.tls.client_ca)";
        return false;
    }
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    bool ok = ctx != NULL && X509_STORE_CTX_init(ctx, anchors, cert, untrusted) == 1 &&
              X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT) == 1;
    if (ok && X509_verify_cert(ctx) != 1) {
        ok = false;
        /* a static string of OpenSSL's, e.g. "unable to get local issuer certificate" */
        *why_r = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
    } else if (!ok) {
        *why_r = "the certificate chain could not be checked";
    }
    X509_STORE_CTX_free(ctx);
    return ok;
}
