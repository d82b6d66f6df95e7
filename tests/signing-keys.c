#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "jose.h"
#include "signing-keys.h"

EVP_PKEY *es_key, *rs_key, *ed_key, *rogue_key;
EVP_PKEY *signing_keys[SIGNING_KEY_COUNT];

int signing_keys_setup(void **state)
{
    (void)state;
    es_key = mandate_jose_keygen(MANDATE_JWS_ES256);
    rs_key = mandate_jose_keygen(MANDATE_JWS_RS256);
    ed_key = mandate_jose_keygen(MANDATE_JWS_EDDSA);
    rogue_key = mandate_jose_keygen(MANDATE_JWS_ES256);
    signing_keys[0] = es_key;
    signing_keys[1] = rs_key;
    signing_keys[2] = ed_key;
    return es_key && rs_key && ed_key && rogue_key ? 0 : -1;
}

int signing_keys_teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(es_key);
    EVP_PKEY_free(rs_key);
    EVP_PKEY_free(ed_key);
    EVP_PKEY_free(rogue_key);
    es_key = rs_key = ed_key = rogue_key = NULL;
    signing_keys[0] = signing_keys[1] = signing_keys[2] = NULL;
    return 0;
}

/* data in base64url; malloc'ed. */
static char *b64url(const void *data, size_t len)
{
    char *out = malloc(mandate_b64url_encoded_len(len) + 1);
    assert_non_null(out);
    mandate_b64url_encode(data, len, out);
    return out;
}

char *forged_signing_input(const char *good, const char *header)
{
    const char *payload = strchr(good, '.') + 1;
    int payload_len = (int)(strrchr(good, '.') - payload);
    char *h = b64url(header, strlen(header));
    size_t n = strlen(h) + 1 + (size_t)payload_len + 1;
    char *input = malloc(n);
    assert_non_null(input);
    snprintf(input, n, "%s.%.*s", h, payload_len, payload);
    free(h);
    return input;
}

char *forged_payload(const char *good, const char *payload)
{
    const char *header_end = strchr(good, '.'), *signature = strrchr(good, '.');
    char *p = b64url(payload, strlen(payload));
    size_t n = (size_t)(header_end - good) + 1 + strlen(p) + strlen(signature) + 1;
    char *token = malloc(n);
    assert_non_null(token);
    snprintf(token, n, "%.*s.%s%s", (int)(header_end - good), good, p, signature);
    free(p);
    return token;
}

char *forged_hs256_token(const char *input, EVP_PKEY *key)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PUBKEY(bio, key), 1);
    char *pem;
    long pem_len = BIO_get_mem_data(bio, &pem);
    unsigned char mac[32];
    unsigned int mac_len = 0;
    assert_non_null(HMAC(EVP_sha256(), pem, (int)pem_len, (const unsigned char *)input,
                         strlen(input), mac, &mac_len));
    BIO_free(bio);
    char *sig = b64url(mac, mac_len);
    size_t n = strlen(input) + 1 + strlen(sig) + 1;
    char *token = malloc(n);
    assert_non_null(token);
    snprintf(token, n, "%s.%s", input, sig);
    free(sig);
    return token;
}
