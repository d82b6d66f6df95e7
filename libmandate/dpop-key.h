/* Inside libmandate: what the token source knows of a mandate_dpop_key
 * (include/mandate/client.h). Not installed. */
#ifndef MANDATE_LIBMANDATE_DPOP_KEY_H
#define MANDATE_LIBMANDATE_DPOP_KEY_H

#include <stdatomic.h>

#include <openssl/evp.h>

#include <mandate/client.h>

#include "jose.h"

struct mandate_dpop_key {
    EVP_PKEY *pkey;
    char jkt[MANDATE_JWK_THUMBPRINT_LEN + 1];
    atomic_uint refs; /* the caller's and each token source's */
};

/* One more reference (released by mandate_dpop_key_free); not exported
 * (libmandate exports mandate_* names only). */
mandate_dpop_key *libmandate_dpop_key_ref(const mandate_dpop_key *key);

#endif
