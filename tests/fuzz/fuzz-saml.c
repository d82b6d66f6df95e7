/* libFuzzer harness: SAML parse-and-verify (plugins/backend-saml/saml.c,
 * validate_assertion), linked in and driven with the fake host as
 * tests/test-backend-saml.c does.
 *
 * The instance trusts tests/fuzz/saml-metadata.xml (made once by
 * tests/saml/make-assertions.sh with NOW = FUZZ_NOW; the seeds in
 * corpus/saml are its assertions, responses, wrappings, entity bomb and
 * XXE samples). The fake clock reads FUZZ_NOW, and the replay cache is
 * emptied before every input, so an input gives the same answer each run.
 *
 * Input: raw XML (starting with '<', or a UTF-8 BOM) is base64url-encoded
 * first so that the fuzzer mutates the document itself; anything else is
 * handed over as is (the base64/base64url decoding is fuzzed too). Bounds:
 * 64 KiB, well inside max_assertion_size (256 KiB) so that the size checks
 * do not swallow the mutations. */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mandate/backend.h>

#include "fake-host.h"
#include "fuzz-saml-common.h"
#include "fuzz-common.h"
#include "jose.h"
#include "pool-private.h"

#define P (&mandate_plugin_saml)
#define OPS ((const mandate_backend_ops *)mandate_plugin_saml.ops)

#define SAML2 "urn:ietf:params:oauth:token-type:saml2"
#define HARNESS_MAX_INPUT (64 * 1024)

static void *inst;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    inst = fuzz_saml_instance("fuzz-saml", "idp_metadata", fuzz_saml_metadata(), NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > HARNESS_MAX_INPUT)
        return -1;
    char *text;
    size_t len;
    if (size > 0 && (data[0] == '<' || data[0] == 0xef)) {
        len = mandate_b64url_encoded_len(size);
        text = malloc(len + 1);
        mandate_b64url_encode(data, size, text);
    } else {
        len = size;
        text = malloc(size ? size : 1);
        memcpy(text, data, size);
    }
    fake_host_replay_reset();
    mandate_pool *pool = mandate_pool_new();
    mandate_identity id = {0};
    mandate_error err = {0};
    mandate_rc rc = OPS->validate_assertion(inst, pool, SAML2, text, len, &id, &err);
    if (fuzz_debug())
        fprintf(stderr, "saml: rc %d: %s\n", (int)rc, err.message);
    if (rc == MANDATE_OK && (id.issuer == NULL || id.subject == NULL))
        abort();
    mandate_pool_free(&pool);
    free(text);
    return 0;
}
