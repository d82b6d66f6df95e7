/* Format plugin ABI: render a grant as a token, and a token back into the
 * grant it carries (verifying it on the way). */
#ifndef MANDATE_FORMAT_H
#define MANDATE_FORMAT_H

#include <mandate/plugin.h>
#include <mandate/store.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The decision to issue. Strings come from the request pool. */
typedef struct mandate_grant {
    const char *issuer;
    const char *subject;
    const char *client_id;
    const char *actor;     /* RFC 8693 act.sub; NULL: no delegation */
    const char *tenant;
    const char *scope;     /* space-separated */
    const char *audience;  /* space-separated; NULL: none */
    const char *idp;       /* federated source; NULL: none */
    const char *jti;
    int64_t issued_at, not_before, expires_at;
} mandate_grant;

/* A signing key handed to a format, with its private part decrypted. */
typedef struct mandate_signing_key {
    const mandate_key *key;
    const unsigned char *private_der; /* PKCS#8 DER */
    size_t private_der_len;
} mandate_signing_key;

typedef struct mandate_format_ops {
    /* Render a grant. */
    mandate_rc (*mint)(void *inst, mandate_pool *pool, const mandate_grant *grant,
                       char **token_r, mandate_error *err);
    /* Verify a token and recover its grant: MANDATE_NEXT when it is not of this
     * format, MANDATE_INVALID when forged or malformed, MANDATE_EXPIRED only
     * for a token found authentic (signature or record checked) and past its
     * expiry: the core keeps that answer for the token until the keys change. */
    mandate_rc (*parse)(void *inst, mandate_pool *pool, const char *token, size_t len,
                        mandate_grant *grant_r, mandate_error *err);
    /* Make a new key pair for alg; private part as PKCS#8 DER. May be NULL
     * for formats without keys. */
    mandate_rc (*keygen)(void *inst, mandate_pool *pool, const char *alg,
                         mandate_key *key_r, unsigned char **private_der_r,
                         size_t *private_der_len_r, mandate_error *err);
    /* Replace the key set: active keys sign, retired ones only verify.
     * Called at start and whenever the store's keys change. May be NULL. */
    mandate_rc (*set_keys)(void *inst, const mandate_signing_key *keys, size_t n,
                           mandate_error *err);

    /* ABI 1.3: sign other JWTs than access tokens (ID-JAGs) with the active
     * key: claims is a JSON object's text, typ the header's typ. *jws_r
     * comes from pool. May be NULL: the format signs nothing else. */
    mandate_rc (*sign)(void *inst, mandate_pool *pool, const char *typ, const char *claims,
                       size_t claims_len, char **jws_r, mandate_error *err);
} mandate_format_ops;

#ifdef __cplusplus
}
#endif

#endif
