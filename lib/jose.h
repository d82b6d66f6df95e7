/* JOSE with OpenSSL EVP and jansson: base64url, JWK (RFC 7517) with RFC 7638
 * thumbprints, and compact JWS (RFC 7515) for ES256, RS256 and EdDSA
 * (Ed25519, RFC 8037).
 *
 * Part of lib/, the floor linked *into* each user (the core, the jwt and
 * opaque formats, the local and oidc backends, libmandate): plugins still
 * never call a symbol of the daemon. Everything here is thread-safe and
 * keeps no state.
 * Inputs are hostile: lengths are bounded and every decode is strict. */
#ifndef MANDATE_JOSE_H
#define MANDATE_JOSE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <openssl/evp.h>

#include <mandate/plugin.h>

/* Longest compact JWS accepted, and longest decoded header. */
#define MANDATE_JWS_MAX_LEN (16 * 1024)
#define MANDATE_JWS_MAX_HEADER 1024
/* RFC 7638 thumbprint: base64url of a SHA-256, 43 characters. */
#define MANDATE_JWK_THUMBPRINT_LEN 43

/* --- base64url, no padding (RFC 7515 §2) ---------------------------------- */

size_t mandate_b64url_encoded_len(size_t n);
/* out must hold mandate_b64url_encoded_len(n) + 1 bytes; NUL-terminated. */
void mandate_b64url_encode(const unsigned char *in, size_t n, char *out);
/* Strict: rejects '=', '+', '/', whitespace and impossible lengths.
 * Returns false when the input is bad or the output does not fit. */
bool mandate_b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap,
                           size_t *out_len);

/* --- algorithms and keys ---------------------------------------------------- */

typedef enum mandate_jws_alg {
    MANDATE_JWS_NONE = 0, /* never accepted: a parse result only */
    MANDATE_JWS_ES256,
    MANDATE_JWS_RS256,
    MANDATE_JWS_EDDSA
} mandate_jws_alg;

/* "ES256", "RS256", "EdDSA"; MANDATE_JWS_NONE for anything else (HS256,
 * "none", ...). */
mandate_jws_alg mandate_jws_alg_parse(const char *name);
const char *mandate_jws_alg_name(mandate_jws_alg alg);
/* The one algorithm a key may be used with: ES256 for P-256, RS256 for RSA
 * (>= 2048 bits), EdDSA for Ed25519; NONE otherwise. */
mandate_jws_alg mandate_jws_alg_for_key(const EVP_PKEY *key);

/* A new key pair: P-256, RSA-2048 (RFC 7518 §3.3's floor and what verifiers
 * expect; rotate often rather than grow the key) or Ed25519. NULL on failure. */
EVP_PKEY *mandate_jose_keygen(mandate_jws_alg alg);
/* PKCS#8 DER, the form private keys are stored in (encrypted by the core).
 * *der_r comes from OpenSSL: release it with OPENSSL_clear_free(*der_r, *len_r). */
bool mandate_jose_private_to_der(const EVP_PKEY *key, unsigned char **der_r, size_t *len_r);
EVP_PKEY *mandate_jose_private_from_der(const unsigned char *der, size_t len);
/* A PEM public key (SubjectPublicKeyInfo), as clients register it. */
EVP_PKEY *mandate_jose_public_from_pem(const char *pem, size_t len);

/* The public JWK of a key: kty and its members, plus "use":"sig", "alg" and
 * "kid". New reference. */
json_t *mandate_jwk_from_key(const EVP_PKEY *key, const char *kid);
/* A public key from a JWK (EC P-256, RSA, OKP Ed25519); NULL with a reason
 * in err when malformed or of another type. Private members are ignored. */
EVP_PKEY *mandate_jwk_to_key(const json_t *jwk, mandate_error *err);
/* RFC 7638 thumbprint of the public key; out holds 44 bytes. */
bool mandate_jwk_thumbprint(const EVP_PKEY *key, char out[MANDATE_JWK_THUMBPRINT_LEN + 1]);

/* --- compact JWS ------------------------------------------------------------ */

/* Sign claims: the header is {"alg": <alg of key>, "typ": typ, "kid": kid}
 * (typ and kid omitted when NULL). Returns a malloc'd "h.p.s" or NULL.
 * ES256 signatures, here and below, are always low-S (s <= n/2). */
char *mandate_jws_sign(const EVP_PKEY *key, const char *kid, const char *typ,
                       const json_t *claims);

/* The same over any payload bytes (RFC 8037's examples sign plain text). The
 * claims form above is this over their compact JSON. */
char *mandate_jws_sign_payload(const EVP_PKEY *key, const char *kid, const char *typ,
                               const unsigned char *payload, size_t len);

/* The same with the protected header given whole (a DPoP proof's holds its
 * public jwk): signed with key as it is, whatever its alg says, so that
 * tests can make proofs that lie about it. */
char *mandate_jws_sign_with_header(const EVP_PKEY *key, const json_t *header,
                                   const json_t *claims);

/* A signer prepared once per key: the protected header encoded ahead and a
 * signing context copied per token rather than set up afresh (which costs
 * an algorithm fetch in OpenSSL 3). Thread-safe to share once made. */
typedef struct mandate_jws_signer mandate_jws_signer;
mandate_jws_signer *mandate_jws_signer_new(const EVP_PKEY *key, const char *kid,
                                           const char *typ);
void mandate_jws_signer_free(mandate_jws_signer **signer);
/* "h.p.s" over payload (malloc'd), or NULL. */
char *mandate_jws_signer_sign(const mandate_jws_signer *signer, const unsigned char *payload,
                              size_t len);

typedef struct mandate_jws {
    json_t *header;      /* decoded protected header (object) */
    json_t *claims;      /* decoded payload (object) */
    mandate_jws_alg alg; /* from the header; NONE when not one we accept */
    const char *kid;     /* in header, or NULL */
    const char *typ;     /* in header, or NULL */
} mandate_jws;

/* Split and decode a compact JWS without verifying it. MANDATE_NEXT when it
 * does not look like a JWS at all (not three base64url parts);
 * MANDATE_INVALID when it does but is malformed (bad base64url, not JSON
 * objects, oversized, "crit" present, alg not accepted). Release with
 * mandate_jws_clear. */
mandate_rc mandate_jws_parse(const char *token, size_t len, mandate_jws *jws_r,
                             mandate_error *err);
/* Verify the signature of a compact JWS with key. The header's alg must be
 * the one alg the key is for (so never "none", never HS256 with a public
 * key). MANDATE_OK or MANDATE_INVALID. */
mandate_rc mandate_jws_verify(const char *token, size_t len, const EVP_PKEY *key,
                              mandate_error *err);
/* ECDSA (ES256): refuse a signature whose s is above n/2. (r, s) and
 * (r, n - s) both verify, so without this one token has two strings, and
 * anything keyed by the string (a cache, a deny list, a replay check of
 * someone else's) can be told the same token is another. Our own signatures
 * are always low-S; other signers (an upstream IdP) need not be. */
#define MANDATE_JWS_LOW_S 0x1u
/* mandate_jws_verify with flags (MANDATE_JWS_*). */
mandate_rc mandate_jws_verify_with(const char *token, size_t len, const EVP_PKEY *key,
                                   unsigned flags, mandate_error *err);
/* mandate_jws_verify of a token mandate_jws_parse has read into jws: its
 * header is not decoded a second time. */
mandate_rc mandate_jws_verify_parsed(const mandate_jws *jws, const char *token, size_t len,
                                     const EVP_PKEY *key, mandate_error *err);
void mandate_jws_clear(mandate_jws *jws);

/* --- the act claim (RFC 8693 §4.1) ------------------------------------------ */

/* {"sub": actor, "act": {"sub": <first of prior>, "act": {...}}}: the actor
 * and those before it (prior_actors: space-separated, nearest first; may be
 * NULL). NULL, with *why_r saying why (why_r may be NULL), when actor is
 * empty, a name is not valid UTF-8 or there are more than max actors in all.
 * New reference. */
json_t *mandate_jwt_act_encode(const char *actor, const char *prior_actors, size_t max,
                               const char **why_r);
/* The reverse, walked in a loop and bounded by max actors, so a hostile
 * nesting costs nothing: *actor_r the outer sub, *prior_r the nested ones
 * space-separated nearest first (NULL when none), both malloc'd. false, with
 * *why_r, when an act is not an object, a sub is missing, not a string,
 * empty or holds a space, or there are more than max actors. */
bool mandate_jwt_act_decode(const json_t *act, size_t max, char **actor_r, char **prior_r,
                            const char **why_r);

#endif
