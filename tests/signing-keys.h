/* Signing keys a test program makes once, in its cmocka group setup (RSA
 * keys are slow to make): one of each algorithm the broker signs with, and
 * a second ES256 key that nothing trusts. */
#ifndef MANDATE_TESTS_SIGNING_KEYS_H
#define MANDATE_TESTS_SIGNING_KEYS_H

#include <openssl/evp.h>

extern EVP_PKEY *es_key, *rs_key, *ed_key, *rogue_key;
/* es_key, rs_key and ed_key, for a test that goes through each algorithm. */
#define SIGNING_KEY_COUNT 3
extern EVP_PKEY *signing_keys[SIGNING_KEY_COUNT];

/* Makes the four keys: 0, or -1 when one cannot be made. */
int signing_keys_setup(void **state);
/* Frees them. */
int signing_keys_teardown(void **state);

/* Forgeries a verifier must refuse, each malloc'ed. good's payload under
 * header (JSON text, base64url-encoded here): the signing input "h.p". */
char *forged_signing_input(const char *good, const char *header);
/* good's header and signature around another payload (JSON text). */
char *forged_payload(const char *good, const char *payload);
/* input, '.', and input's HS256 MAC keyed with key's public half as PEM:
 * the algorithm confusion of a verifier that takes the alg from the token. */
char *forged_hs256_token(const char *input, EVP_PKEY *key);

#endif
