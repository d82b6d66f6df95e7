/* The DPoP client of tests/e2e/dpop.sh: makes proof keys and proofs with
 * lib/dpop.c, as an agent holding a key would.
 *
 *   dpop-proof keygen ES256|EdDSA|RS256 KEY_FILE   a new key (PKCS#8 PEM, 0600)
 *   dpop-proof jkt KEY_FILE                        its RFC 7638 thumbprint
 *   dpop-proof proof KEY_FILE METHOD URI [TOKEN [IAT_OFFSET [NONCE]]]
 *                                                  a proof (ath of TOKEN when
 *                                                  not empty), issued IAT_OFFSET
 *                                                  seconds from now (default 0),
 *                                                  with the server's NONCE
 *   dpop-proof proofs KEY_FILE METHOD URI COUNT [TOKEN]
 *                                                  COUNT proofs, one a line,
 *                                                  each with its own jti (the
 *                                                  pools of bench/dpop)
 *   dpop-proof assertion KEY_FILE CLIENT_ID AUD    a private_key_jwt client
 *                                                  assertion (RFC 7523 §3) of
 *                                                  CLIENT_ID for AUD, 60 s
 *
 * Prints the result on one line; exit 1 on failure. A tool of the test, not
 * a test itself. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "dpop.h"
#include "jose.h"

static EVP_PKEY *read_key(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    EVP_PKEY *key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    return key;
}

static int keygen(const char *alg, const char *path)
{
    EVP_PKEY *key = mandate_jose_keygen(mandate_jws_alg_parse(alg));
    FILE *f = key != NULL ? fopen(path, "wx") : NULL;
    bool ok = f != NULL && chmod(path, 0600) == 0 &&
              PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1;
    if (f != NULL)
        fclose(f);
    EVP_PKEY_free(key);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "keygen") == 0)
        return keygen(argv[2], argv[3]);
    EVP_PKEY *key = argc >= 3 ? read_key(argv[2]) : NULL;
    int status = 1;
    if (key != NULL && argc == 3 && strcmp(argv[1], "jkt") == 0) {
        char jkt[MANDATE_JWK_THUMBPRINT_LEN + 1];
        if (mandate_jwk_thumbprint(key, jkt)) {
            puts(jkt);
            status = 0;
        }
    } else if (key != NULL && argc >= 5 && argc <= 8 && strcmp(argv[1], "proof") == 0) {
        const char *token = argc >= 6 && argv[5][0] != '\0' ? argv[5] : NULL;
        long long offset = argc >= 7 ? strtoll(argv[6], NULL, 10) : 0;
        const char *nonce = argc == 8 ? argv[7] : NULL;
        char *proof = mandate_dpop_proof_make(key, argv[3], argv[4], token, nonce,
                                              (int64_t)time(NULL) + offset);
        if (proof != NULL) {
            puts(proof);
            status = 0;
        }
        free(proof);
    } else if (key != NULL && (argc == 6 || argc == 7) && strcmp(argv[1], "proofs") == 0) {
        long count = strtol(argv[5], NULL, 10);
        const char *token = argc == 7 && argv[6][0] != '\0' ? argv[6] : NULL;
        status = count > 0 ? 0 : 1;
        for (long i = 0; i < count && status == 0; i++) {
            char *proof = mandate_dpop_proof_make(key, argv[3], argv[4], token, NULL,
                                                  (int64_t)time(NULL));
            status = proof != NULL && puts(proof) >= 0 ? 0 : 1;
            free(proof);
        }
    } else if (key != NULL && argc == 5 && strcmp(argv[1], "assertion") == 0) {
        int64_t now = (int64_t)time(NULL);
        char jti[48];
        srand((unsigned)now ^ (unsigned)getpid());
        snprintf(jti, sizeof(jti), "%lld-%d-%d", (long long)now, (int)getpid(), rand());
        json_t *claims = json_pack("{s:s,s:s,s:s,s:I,s:I,s:s}", "iss", argv[3], "sub", argv[3],
                                   "aud", argv[4], "iat", (json_int_t)now, "exp",
                                   (json_int_t)(now + 60), "jti", jti);
        char *jwt = mandate_jws_sign(key, NULL, NULL, claims);
        json_decref(claims);
        if (jwt != NULL) {
            puts(jwt);
            status = 0;
        }
        free(jwt);
    } else {
        fprintf(stderr, "usage: dpop-proof keygen ALG FILE | jkt FILE | assertion FILE ID AUD | "
                        "proof FILE METHOD URI [TOKEN [IAT_OFFSET [NONCE]]] | "
                        "proofs FILE METHOD URI COUNT [TOKEN]\n");
    }
    EVP_PKEY_free(key);
    return status;
}
