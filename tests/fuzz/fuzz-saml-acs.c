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
 *   bit 2 (without bit 1): the rest is the plaintext of an
 *          EncryptedAssertion, which the harness encrypts to the SP's key
 *          (AES-128-CBC under a fixed key, that key under RSA-OAEP) inside an
 *          unsigned Response: a mutated ciphertext only ever decrypts to
 *          garbage, so this is the way the fuzzer reaches what is parsed
 *          and checked after decryption (seeds plain-*: the signed
 *          assertions that the encrypted-* seeds carry, as plaintext)
 * Bounds: 64 KiB, inside max_assertion_size (256 KiB). */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

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
#define FLAG_PLAINTEXT 0x04
#define NS_XENC "http://www.w3.org/2001/04/xmlenc#"

/* The content key of every EncryptedAssertion the harness makes, and that
 * key encrypted to the SP's certificate (base64), made once. */
static const unsigned char content_key[16] = "fuzz-content-key";
static char *wrapped_key_b64;

static void *inst;

/* Standard base64 of n bytes, in the pool. */
static char *base64_of(mandate_pool *pool, const unsigned char *data, size_t n)
{
    char *b64 = mandate_pool_alloc(pool, 4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)b64, data, (int)n);
    return b64;
}

/* content_key under RSA-OAEP (SHA-1, MGF1-SHA-1: rsa-oaep-mgf1p) to the
 * SP's certificate, in standard base64 (malloc'ed); aborts on failure. */
static char *wrap_content_key(const char *cert_file)
{
    FILE *f = fopen(cert_file, "r");
    X509 *cert = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f != NULL)
        fclose(f);
    EVP_PKEY *pub = cert != NULL ? X509_get_pubkey(cert) : NULL;
    EVP_PKEY_CTX *ctx = pub != NULL ? EVP_PKEY_CTX_new(pub, NULL) : NULL;
    unsigned char out[1024];
    size_t out_len = sizeof(out);
    if (ctx == NULL || EVP_PKEY_encrypt_init(ctx) <= 0 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
        EVP_PKEY_encrypt(ctx, out, &out_len, content_key, sizeof(content_key)) <= 0)
        abort();
    char *b64 = malloc(4 * ((out_len + 2) / 3) + 1);
    if (b64 == NULL)
        abort();
    EVP_EncodeBlock((unsigned char *)b64, out, (int)out_len);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pub);
    X509_free(cert);
    return b64;
}

/* An unsigned Response holding plaintext as an EncryptedAssertion
 * (AES-128-CBC, XML Encryption's IV-first layout), in the pool. */
static char *encrypted_response(mandate_pool *pool, const uint8_t *plaintext, size_t n,
                                bool unsolicited)
{
    static const unsigned char iv[16] = "fuzz-iv-16-bytes";
    unsigned char *ct = mandate_pool_alloc(pool, sizeof(iv) + n + 16);
    int len = 0, last = 0;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (c == NULL || ct == NULL ||
        EVP_EncryptInit_ex(c, EVP_aes_128_cbc(), NULL, content_key, iv) != 1 ||
        EVP_EncryptUpdate(c, ct + sizeof(iv), &len, plaintext, (int)n) != 1 ||
        EVP_EncryptFinal_ex(c, ct + sizeof(iv) + len, &last) != 1)
        abort();
    EVP_CIPHER_CTX_free(c);
    memcpy(ct, iv, sizeof(iv));
    const char *data_b64 = base64_of(pool, ct, sizeof(iv) + (size_t)len + (size_t)last);
    return mandate_pool_printf(
        pool,
        "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" "
        "xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"_fuzz-response\" "
        "Version=\"2.0\" IssueInstant=\"2030-03-17T17:46:40Z\" Destination=\"" ACS_URL "\"%s>"
        "<saml:Issuer>https://idp.example.com/</saml:Issuer>"
        "<samlp:Status><samlp:StatusCode "
        "Value=\"urn:oasis:names:tc:SAML:2.0:status:Success\"/></samlp:Status>"
        "<saml:EncryptedAssertion><xenc:EncryptedData xmlns:xenc=\"" NS_XENC "\" "
        "Type=\"" NS_XENC "Element\"><xenc:EncryptionMethod Algorithm=\"" NS_XENC
        "aes128-cbc\"/><ds:KeyInfo xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\">"
        "<xenc:EncryptedKey><xenc:EncryptionMethod Algorithm=\"" NS_XENC "rsa-oaep-mgf1p\"/>"
        "<xenc:CipherData><xenc:CipherValue>%s</xenc:CipherValue></xenc:CipherData>"
        "</xenc:EncryptedKey></ds:KeyInfo><xenc:CipherData><xenc:CipherValue>%s"
        "</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData></saml:EncryptedAssertion>"
        "</samlp:Response>",
        unsolicited ? "" : " InResponseTo=\"" REQUEST_ID "\"", wrapped_key_b64, data_b64);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    inst = fuzz_saml_instance("fuzz-saml-acs", "idp_metadata",
                              SRCDIR "/tests/fuzz/saml-acs-metadata.xml", "sp_key",
                              SRCDIR "/tests/fuzz/saml-acs-sp.key", "sp_certificate",
                              SRCDIR "/tests/fuzz/saml-acs-sp.crt", "idp_initiated_client",
                              "mcp-app", NULL);
    wrapped_key_b64 = wrap_content_key(SRCDIR "/tests/fuzz/saml-acs-sp.crt");
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
        const char *b64;
        if (flags & FLAG_PLAINTEXT) {
            const char *xml = encrypted_response(pool, data, size, flags & FLAG_UNSOLICITED);
            b64 = base64_of(pool, (const unsigned char *)xml, strlen(xml));
        } else {
            b64 = base64_of(pool, data, size);
        }
        params[count++] = (mandate_login_param){"SAMLResponse", b64};
        params[count++] = (mandate_login_param){"RelayState", "fuzz-handle"};
    }
    fake_host_replay_reset();
    mandate_login_response r = {
        .callback_url = ACS_URL,
        .params = params,
        .param_count = count,
        .remember = (flags & FLAG_UNSOLICITED) ? NULL : REQUEST_ID,
        .method = "POST",
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
