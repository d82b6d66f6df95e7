/* DPoP proofs (RFC 9449 §4.3): a JWT the client signs with a key it holds,
 * with the public key in its header, naming the request it goes with. The
 * checker verifies everything a single proof can say on its own; what needs
 * state (the jti claimed once, a server nonce) is the caller's.
 *
 * Part of lib/, the floor under the core and libmandate: no clock, no
 * store, no allocation through a host. Inputs are hostile: the proof, the
 * URIs and the token are bounded, and every refusal says which check. */
#ifndef MANDATE_DPOP_H
#define MANDATE_DPOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mandate/plugin.h>

#include "jose.h"

/* Longest proof accepted: a header holding an RSA-4096 JWK and a few claims
 * stay well below it. */
#define MANDATE_DPOP_MAX_LEN 4096
/* Longest jti: RFC 9449 asks for 96 bits of randomness, a UUID is 36. */
#define MANDATE_DPOP_JTI_MAX 128
/* Longest nonce claim kept (RFC 9449 §8: the server's, opaque to the client). */
#define MANDATE_DPOP_NONCE_MAX 128
/* Longest htu (and request URI) compared. */
#define MANDATE_DPOP_URI_MAX 2048
/* The algorithms a proof may use: bit (1u << mandate_jws_alg). */
#define MANDATE_DPOP_ALG(a) (1u << (unsigned)(a))
#define MANDATE_DPOP_ALGS_ALL                                                                  \
    (MANDATE_DPOP_ALG(MANDATE_JWS_ES256) | MANDATE_DPOP_ALG(MANDATE_JWS_EDDSA) |               \
     MANDATE_DPOP_ALG(MANDATE_JWS_RS256))

typedef struct mandate_dpop_expect {
    const char *method;       /* htm: the request's method */
    const char *uri;          /* htu: the request's URI; query and fragment ignored */
    const char *uri_alias;    /* or this other URI of the same endpoint; NULL: none */
    const char *access_token; /* ath: the token presented with it; NULL: none */
    unsigned algs;            /* MANDATE_DPOP_ALG bits accepted */
    int64_t now;
    int64_t max_age;    /* iat at most this many seconds in the past */
    int64_t max_future; /* and at most this many in the future (clock skew) */
    /* the public keys of proofs already checked; NULL: each proof's jwk is
     * imported afresh */
    struct mandate_dpop_keys *keys;
} mandate_dpop_expect;

typedef struct mandate_dpop_proof {
    char jkt[MANDATE_JWK_THUMBPRINT_LEN + 1]; /* RFC 7638 thumbprint of the key */
    char jti[MANDATE_DPOP_JTI_MAX + 1];
    char nonce[MANDATE_DPOP_NONCE_MAX + 1]; /* "" when the proof has none */
    int64_t iat;
    mandate_jws_alg alg;
} mandate_dpop_proof;

/* Checks proof against expect: typ "dpop+jwt", an accepted alg, a public
 * jwk (no private member, RSA of 2048 bits or more) whose signature it
 * carries, htm and htu those of the request, iat within the window, a jti,
 * and ath when a token goes with it (and none when not); a nonce, when
 * there is one, must be a string of at most MANDATE_DPOP_NONCE_MAX bytes
 * and is handed back for the caller to judge. MANDATE_OK with
 * proof_r filled, or MANDATE_INVALID with err saying which check failed
 * (never quoting the proof). */
mandate_rc mandate_dpop_check(const char *proof, size_t len, const mandate_dpop_expect *expect,
                              mandate_dpop_proof *proof_r, mandate_error *err);

/* The public keys of proofs that verified, by their exact jwk (every member
 * of it, in a canonical text): an agent signs each request with the same key,
 * and importing it (EVP) and taking its thumbprint cost a third of checking
 * its proof. Bounded: at most capacity keys, the least recently used goes
 * first. Only what depends on the jwk alone is kept (the key and its
 * thumbprint); the signature, alg and every claim are checked for each proof.
 * Thread-safe. */
typedef struct mandate_dpop_keys mandate_dpop_keys;
mandate_dpop_keys *mandate_dpop_keys_new(size_t capacity);
void mandate_dpop_keys_free(mandate_dpop_keys **keys);
/* How many keys it holds now, and whether it holds the one of jwk. */
size_t mandate_dpop_keys_count(mandate_dpop_keys *keys);
bool mandate_dpop_keys_holds(mandate_dpop_keys *keys, const json_t *jwk);

/* Whether two http(s) URIs are the same resource per RFC 9449 §4.3 (the
 * syntax- and scheme-based normalisation of RFC 3986 §6.2.2 and §6.2.3:
 * case of scheme and host, default port, empty path, percent-encoding),
 * their query and fragment left out. false for anything unparseable. */
bool mandate_dpop_uri_equal(const char *a, const char *b);

/* ath: base64url(SHA-256(token)). out holds 44 bytes. */
bool mandate_dpop_ath(const char *token, size_t len, char out[MANDATE_JWK_THUMBPRINT_LEN + 1]);

/* A proof by key for the request method uri (with ath when access_token is
 * not NULL, the server's nonce when nonce is not NULL), issued at iat, with
 * a random jti: {"typ":"dpop+jwt","alg","jwk"} over
 * {"jti","htm","htu","iat"[,"ath"][,"nonce"]}. malloc'd, NULL on failure.
 * For clients (libmandate, the tests' proof tool). */
char *mandate_dpop_proof_make(const EVP_PKEY *key, const char *method, const char *uri,
                              const char *access_token, const char *nonce, int64_t iat);

#endif
