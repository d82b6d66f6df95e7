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

#endif
