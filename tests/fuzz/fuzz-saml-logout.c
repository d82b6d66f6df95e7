/* libFuzzer harness: SAML single logout's parser of outside input
 * (plugins/backend-saml/sp-logout.c, logout_finish): the HTTP-Redirect
 * query (fields, percent-decoding, SigAlg/Signature), base64, the bounded
 * INFLATE, and the LogoutRequest / LogoutResponse checks, linked in and
 * driven with the fake host as tests/test-backend-saml.c does.
 *
 * The instance trusts tests/fuzz/saml-metadata.xml (with its
 * SingleLogoutService) and takes unsigned messages
 * (logout_require_signature = false) so that mutations reach the XML; the
 * fake clock reads FUZZ_NOW (the seeds' IssueInstant) and the replay cache
 * is emptied before every input.
 *
 * Input: raw XML (starting with '<') is deflated, base64- and
 * percent-encoded into SAMLRequest= (a document naming LogoutRequest) or
 * SAMLResponse=, with a RelayState, so that the fuzzer mutates the document
 * itself; anything else is the query as is. Bound: 64 KiB. */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <zlib.h>

#include <mandate/backend.h>

#include "fake-host.h"
#include "fuzz-saml-common.h"
#include "fuzz-common.h"
#include "pool-private.h"

#define P (&mandate_plugin_saml)
#define OPS ((const mandate_backend_ops *)mandate_plugin_saml.ops)

#define HARNESS_MAX_INPUT (64 * 1024)
#define ROUTE "https://mandate.example.com/login/backend-corp/logout"
/* the outstanding request the LogoutResponse seeds answer */
#define REMEMBER "_fuzz-logout-request"

static void *inst;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    inst = fuzz_saml_instance("fuzz-saml-logout", "idp_metadata", fuzz_saml_metadata(),
                              "logout_require_signature", "false", NULL);
    return 0;
}

/* The query the redirect binding would carry for xml. malloc'ed. */
static char *query_of(const uint8_t *xml, size_t size)
{
    uLong bound = compressBound((uLong)size) + 64;
    unsigned char *deflated = malloc(bound);
    z_stream z = {0};
    if (deflated == NULL || deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    z.next_in = (Bytef *)xml;
    z.avail_in = (uInt)size;
    z.next_out = deflated;
    z.avail_out = (uInt)bound;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
        abort();
    size_t n = z.total_out;
    deflateEnd(&z);
    char *b64 = malloc(4 * (n / 3 + 1) + 1);
    EVP_EncodeBlock((unsigned char *)b64, deflated, (int)n);
    free(deflated);
    bool request = memmem(xml, size, "LogoutRequest", 13) != NULL;
    char *out = malloc(3 * strlen(b64) + 64), *o = out;
    o += sprintf(o, "%s=", request ? "SAMLRequest" : "SAMLResponse");
    for (const char *s = b64; *s != '\0'; s++)
        o += *s == '+'   ? sprintf(o, "%%2B")
             : *s == '/' ? sprintf(o, "%%2F")
             : *s == '=' ? sprintf(o, "%%3D")
                         : sprintf(o, "%c", *s);
    strcpy(o, "&RelayState=fuzz");
    free(b64);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > HARNESS_MAX_INPUT)
        return -1;
    char *query;
    if (size > 0 && data[0] == '<') {
        query = query_of(data, size);
    } else {
        query = malloc(size + 1);
        memcpy(query, data, size);
        query[size] = '\0';
    }
    fake_host_replay_reset();
    mandate_pool *pool = mandate_pool_new();
    mandate_logout_message m = {ROUTE, query, NULL, 0, REMEMBER};
    mandate_logout_result r = {0};
    mandate_error err = {0};
    mandate_rc rc = OPS->logout_finish(inst, pool, &m, &r, &err);
    if (fuzz_debug())
        fprintf(stderr, "saml-logout: rc %d: %s\n", (int)rc, err.message);
    if (rc == MANDATE_OK && r.kind == MANDATE_LOGOUT_ASKED &&
        (r.key_count == 0 || r.key_count > MANDATE_LOGOUT_KEYS_MAX || r.done_url == NULL ||
         r.unknown_url == NULL))
        abort();
    mandate_pool_free(&pool);
    free(query);
    return 0;
}
