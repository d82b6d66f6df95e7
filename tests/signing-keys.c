#include "config.h"

#include "jose.h"
#include "signing-keys.h"

EVP_PKEY *es_key, *rs_key, *ed_key, *rogue_key;

int signing_keys_setup(void **state)
{
    (void)state;
    es_key = mandate_jose_keygen(MANDATE_JWS_ES256);
    rs_key = mandate_jose_keygen(MANDATE_JWS_RS256);
    ed_key = mandate_jose_keygen(MANDATE_JWS_EDDSA);
    rogue_key = mandate_jose_keygen(MANDATE_JWS_ES256);
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
    return 0;
}
