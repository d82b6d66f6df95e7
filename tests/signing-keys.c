#include "config.h"

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
