/* libFuzzer harness: DPoP proofs (lib/dpop.c).
 *
 * Input: up to three parts split at FUZZ_SEP:
 *   0  the proof, handed to mandate_dpop_check as the DPoP header's value
 *   1  the access token that goes with it (ath checked), absent: none
 *   2  a URI compared with the proof's expected htu by mandate_dpop_uri_equal
 * The expected request is POST https://as.example.com/oauth2/token, the
 * clock fixed (FUZZ_NOW), every algorithm accepted. Seeds made by
 * tests/fuzz/make-seeds.c carry valid signatures (keys of fuzz-keys.h), so
 * the fuzzer reaches the claims. Bounds: inputs longer than
 * MANDATE_DPOP_MAX_LEN + 4 KiB are skipped (the checker refuses a proof past
 * MANDATE_DPOP_MAX_LEN itself). */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dpop.h"
#include "fuzz-common.h"

#define HTU "https://as.example.com/oauth2/token"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MANDATE_DPOP_MAX_LEN + 4096)
        return 0;
    fuzz_part parts[3];
    size_t n = fuzz_split(data, size, parts, 3);
    char *proof = strndup(parts[0].data, parts[0].len);
    char *token = n > 1 ? strndup(parts[1].data, parts[1].len) : NULL;
    char *uri = n > 2 ? strndup(parts[2].data, parts[2].len) : NULL;
    const mandate_dpop_expect x = {.method = "POST",
                                   .uri = HTU,
                                   .access_token = token,
                                   .algs = MANDATE_DPOP_ALGS_ALL,
                                   .now = FUZZ_NOW,
                                   .max_age = 60,
                                   .max_future = 5};
    mandate_dpop_proof p;
    mandate_error err = {0};
    if (proof != NULL) {
        mandate_rc rc = mandate_dpop_check(proof, strlen(proof), &x, &p, &err);
        /* a refusal leaves no thumbprint behind */
        if (rc != MANDATE_OK && p.jkt[0] != '\0')
            abort();
        if (rc == MANDATE_OK && strlen(p.jkt) != MANDATE_JWK_THUMBPRINT_LEN)
            abort();
    }
    if (uri != NULL && mandate_dpop_uri_equal(uri, HTU) != mandate_dpop_uri_equal(HTU, uri))
        abort();
    free(proof);
    free(token);
    free(uri);
    return 0;
}
