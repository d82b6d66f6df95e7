/* libFuzzer harness: JWT parsing and verification.
 *
 * The input is a compact JWS, fed to:
 *   - the format-jwt plugin's parse op (plugins/format-jwt/jwt.c), linked in
 *     and driven with the fake host (tests/fake-host.c) as
 *     tests/test-format-jwt.c does: header checks (typ, kid, alg, crit),
 *     signature verification with the key named by kid, then the claims
 *     into a grant against a fixed clock (FUZZ_NOW);
 *   - mandate_jws_parse and mandate_jws_verify (lib/jose.c) directly, with
 *     each of the three fixed keys (ES256, RS256, EdDSA): the path upstream
 *     tokens take through the JOSE helpers.
 * The key set holds the keys of tests/fuzz/fuzz-keys.h, so seeds made by
 * tests/fuzz/make-seeds.c carry valid signatures and the fuzzer reaches the
 * claims. Bounds: inputs longer than MANDATE_JWS_MAX_LEN + 1 KiB are
 * skipped (the parser refuses past MANDATE_JWS_MAX_LEN itself). */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <mandate/format.h>

#include "fake-host.h"
#include "fuzz-common.h"
#include "fuzz-keys.h"
#include "jose.h"
#include "pool-private.h"

extern const mandate_plugin mandate_plugin_jwt;
#define P (&mandate_plugin_jwt)
#define OPS ((const mandate_format_ops *)mandate_plugin_jwt.ops)

static void *inst;
static EVP_PKEY *keys[3];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    mandate_host *host = fake_host_quiet(FUZZ_NOW);

    mandate_error err = {0};
    inst = fake_instance_new(P);
    if (inst == NULL || P->instantiate(inst, host, &err) != MANDATE_OK)
        abort();

    const char *pems[3] = {fuzz_key_ec_pem, fuzz_key_rsa_pem, fuzz_key_ed_pem};
    mandate_key k[3];
    mandate_signing_key sk[3];
    char kids[3][MANDATE_JWK_THUMBPRINT_LEN + 1];
    unsigned char *der[3];
    size_t der_len[3];
    char *jwk_text[3];
    for (int i = 0; i < 3; i++) {
        keys[i] = fuzz_key_from_pem(pems[i]);
        if (!mandate_jwk_thumbprint(keys[i], kids[i]) ||
            !mandate_jose_private_to_der(keys[i], &der[i], &der_len[i]))
            abort();
        json_t *jwk = mandate_jwk_from_key(keys[i], kids[i]);
        jwk_text[i] = json_dumps(jwk, JSON_COMPACT);
        json_decref(jwk);
        k[i] = (mandate_key){
            .kid = kids[i],
            .alg = mandate_jws_alg_name(mandate_jws_alg_for_key(keys[i])),
            .format = "jwt",
            .status = i == 0 ? MANDATE_KEY_ACTIVE : MANDATE_KEY_RETIRED,
            .public_jwk = jwk_text[i],
            .created_at = FUZZ_NOW - 3600,
        };
        sk[i] = (mandate_signing_key){
            .key = &k[i], .private_der = der[i], .private_der_len = der_len[i]};
    }
    if (OPS->set_keys(inst, sk, 3, &err) != MANDATE_OK)
        abort();
    for (int i = 0; i < 3; i++) {
        OPENSSL_clear_free(der[i], der_len[i]);
        free(jwk_text[i]);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MANDATE_JWS_MAX_LEN + 1024)
        return -1;
    /* exactly size bytes, no NUL: the parsers take a length */
    char *token = malloc(size ? size : 1);
    memcpy(token, data, size);

    mandate_pool *pool = mandate_pool_new();
    mandate_error err = {0};
    mandate_grant g;
    mandate_rc rc = OPS->parse(inst, pool, token, size, &g, &err);
    if (fuzz_debug())
        fprintf(stderr, "jwt parse: rc %d: %s\n", (int)rc, err.message);
    if (rc == MANDATE_OK && (g.subject == NULL || g.issuer == NULL || g.client_id == NULL ||
                             g.jti == NULL || g.expires_at <= FUZZ_NOW - 300))
        abort();
    if (rc != MANDATE_OK && g.subject != NULL)
        abort();
    mandate_pool_free(&pool);

    mandate_jws jws;
    err = (mandate_error){0};
    if (mandate_jws_parse(token, size, &jws, &err) == MANDATE_OK) {
        if (!json_is_object(jws.header) || !json_is_object(jws.claims) ||
            jws.alg == MANDATE_JWS_NONE)
            abort();
        for (int i = 0; i < 3; i++) {
            err = (mandate_error){0};
            (void)mandate_jws_verify(token, size, keys[i], &err);
        }
        mandate_jws_clear(&jws);
    }
    free(token);
    return 0;
}
