/* libFuzzer harness: the SAML Assertion Consumer Service, the saml
 * backend's login_finish (plugins/backend-saml/sp-login.c, sp-decrypt.c and
 * the validation in saml.c), linked in and driven with the fake host as
 * tests/test-backend-saml.c does; the form is read by the core's parser
 * (core/form.c) as /login/INSTANCE/callback reads a POST.
 *
 * The instance trusts tests/fuzz/saml-acs-metadata.xml and decrypts with
 * tests/fuzz/saml-acs-sp.key (both made once by tests/saml/make-assertions.sh
 * with NOW = FUZZ_NOW, with the seeds in corpus/saml-acs: its acs-* Responses,
 * accepted, encrypted and refused ones), and takes unsolicited answers
 * (idp_initiated_client), so both paths are reached. The fake clock reads
 * FUZZ_NOW, and the replay cache is emptied before every input, so an input
 * gives the same answer each run.
 *
 * Input: one flags byte, then the rest.
 *   bit 0: an unsolicited answer (no request remembered); else the request
 *          remembered is make-assertions.sh's REQUEST_ID
 *   bit 1: the rest is the whole form body as the browser posts it
 *          (SAMLResponse=...&RelayState=...); else the rest is the Response's
 *          XML, sent in standard base64 as the HTTP-POST binding does, so
 *          that the fuzzer mutates the document itself
 * Bounds: 64 KiB, inside max_assertion_size (256 KiB). */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include <mandate/backend.h>

#include "fake-host.h"
#include "fuzz-saml-common.h"
#include "form-private.h"
#include "fuzz-common.h"
#include "pool-private.h"

#define P (&mandate_plugin_saml)
#define OPS ((const mandate_backend_ops *)mandate_plugin_saml.ops)

#define HARNESS_MAX_INPUT (64 * 1024)
/* make-assertions.sh's defaults */
#define ACS_URL "https://mandate.example.com/login/backend-corp/callback"
#define REQUEST_ID "_req5f0c2a9d41b7e8"
#define FLAG_UNSOLICITED 0x01
#define FLAG_FORM 0x02

static void *inst;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    inst = fuzz_saml_instance("fuzz-saml-acs", "idp_metadata",
                              SRCDIR "/tests/fuzz/saml-acs-metadata.xml", "sp_key",
                              SRCDIR "/tests/fuzz/saml-acs-sp.key", "sp_certificate",
                              SRCDIR "/tests/fuzz/saml-acs-sp.crt", "idp_initiated_client",
                              "mcp-app", NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > HARNESS_MAX_INPUT)
        return -1;
    uint8_t flags = data[0];
    data++, size--;
    mandate_pool *pool = mandate_pool_new();
    mandate_error err = {0};
    mandate_form form = {0};
    mandate_login_param params[MANDATE_FORM_MAX_PARAMS];
    size_t count = 0;
    if (flags & FLAG_FORM) {
        if (mandate_form_parse(pool, (const char *)data, size, NULL, &form, &err) != MANDATE_OK)
            goto done;
        for (size_t i = 0; i < form.count; i++)
            params[count++] =
                (mandate_login_param){form.params[i].name, form.params[i].values[0]};
    } else {
        char *b64 = mandate_pool_alloc(pool, 4 * ((size + 2) / 3) + 1);
        EVP_EncodeBlock((unsigned char *)b64, data, (int)size);
        params[count++] = (mandate_login_param){"SAMLResponse", b64};
        params[count++] = (mandate_login_param){"RelayState", "fuzz-handle"};
    }
    fake_host_replay_reset();
    mandate_login_response r = {
        .callback_url = ACS_URL,
        .params = params,
        .param_count = count,
        .remember = (flags & FLAG_UNSOLICITED) ? NULL : REQUEST_ID,
    };
    mandate_identity id = {0};
    mandate_rc rc = OPS->login_finish(inst, pool, &r, &id, &err);
    if (fuzz_debug())
        fprintf(stderr, "saml-acs: rc %d: %s\n", (int)rc, err.message);
    if (rc == MANDATE_OK && (id.issuer == NULL || id.subject == NULL))
        abort();
    /* an answer is accepted, refused, denied or a failure here: nothing else */
    if (rc != MANDATE_OK && rc != MANDATE_INVALID && rc != MANDATE_DENIED &&
        rc != MANDATE_ERROR && rc != MANDATE_TEMPFAIL)
        abort();
done:
    mandate_pool_free(&pool);
    return 0;
}
