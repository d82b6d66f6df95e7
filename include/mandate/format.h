/* Format plugin ABI: render a grant as a token, and a token back into the
 * grant it carries (verifying it on the way). */
#ifndef MANDATE_FORMAT_H
#define MANDATE_FORMAT_H

#include <mandate/plugin.h>
#include <mandate/store.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The most actors a grant's chain holds (actor and prior_actors together):
 * formats refuse to mint or parse a deeper act nesting, and
 * delegation.max_depth is at most this. */
#define MANDATE_GRANT_MAX_ACTORS 16

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

    /* ABI 1.4: the actors before actor, nearest first, space-separated
     * (client ids hold no space): act.act.sub, act.act.act.sub, ... of
     * RFC 8693 §4.1. NULL: actor acted alone (or there is no actor). A
     * format writes them as nested act objects and reads them back, and
     * reads or writes this field only when the host's abi_minor is >= 4;
     * the core reads it only from a format whose abi_minor is >= 4, and
     * never hands a format of an older minor a grant that has it. */
    const char *prior_actors;

    /* ABI 1.5. auth_time: when the user authenticated at the IdP (RFC 9068
     * auth_time), 0: no user sign-in. cnf_jkt and cnf_x5t_s256: the key the
     * token is bound to (RFC 9449 DPoP: the JWK thumbprint; RFC 8705 mTLS:
     * the certificate's SHA-256 thumbprint), both base64url, NULL: a bearer
     * token; a format that cannot carry a binding must refuse to mint a
     * bound grant, never drop it. Read and written only when the peer's
     * abi_minor is >= 5. */
    int64_t auth_time;
    const char *cnf_jkt;
    const char *cnf_x5t_s256;

    /* ABI 1.6: RFC 8693 §4.4 may_act, the clients (client ids,
     * space-separated) that may exchange this token and act for its subject,
     * as the delegation policy named them when it was issued. NULL: none
     * named. A format writes it and reads it back only when the peer's
     * abi_minor is >= 6; one that drops it only takes a permission away. */
    const char *may_act;

    /* ABI 1.9: the client the chain of a derived token began with: the
     * client_id of the first token of the chain, the one that had no act
     * (a sign-in's application, or the client of client credentials).
     * NULL: not a derived token, or one from a format of an older minor.
     * The act chain names the clients that acted after it; this one is
     * kept so that the chain cannot come back to it through others (a
     * cycle) when the first client was not the subject. Written and read
     * only when the peer's abi_minor is >= 9; a format that drops it drops
     * that check, never a permission. */
    const char *origin_client_id;
} mandate_grant;

/* How much of a mandate_grant a host of ABI 1.abi_minor has: a plugin
 * clears or writes no more of the grant it is handed than this. */
static inline size_t mandate_grant_size(uint16_t abi_minor)
{
    return abi_minor >= 9   ? sizeof(mandate_grant)
           : abi_minor >= 6 ? offsetof(mandate_grant, origin_client_id)
           : abi_minor >= 5 ? offsetof(mandate_grant, may_act)
           : abi_minor >= 4 ? offsetof(mandate_grant, auth_time)
                            : offsetof(mandate_grant, prior_actors);
}

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
