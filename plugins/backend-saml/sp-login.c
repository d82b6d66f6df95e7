/* The saml backend as a SAML 2.0 service provider: the Web Browser SSO
 * profile, SP-initiated, for the core's sign-in (ABI 1.5 login ops).
 *
 *  - login_start: an AuthnRequest (a fresh random ID, remembered by the core
 *    with the pending authorization, single use) sent with the HTTP-Redirect
 *    binding (raw DEFLATE, base64, URL-encoded) to the IdP's
 *    SingleSignOnService from its metadata; RelayState is the core's opaque
 *    handle. Signed (SigAlg rsa-sha256 over "SAMLRequest=..&RelayState=..
 *    &SigAlg=..") when the IdP's metadata says WantAuthnRequestsSigned or
 *    sign_authn_requests is on.
 *  - login_finish: the SAMLResponse of the HTTP-POST binding, checked by the
 *    exchange's path (saml_decode_and_validate) with what only the ACS knows:
 *    Destination and Recipient are the ACS's URL, InResponseTo the outstanding
 *    request's ID (on the Response when present, on the bearer
 *    SubjectConfirmationData always); an unsolicited response (no request
 *    outstanding) only when idp_initiated_client is set. A Status other than
 *    Success is a denial (MANDATE_DENIED: the user cancelled, the IdP said
 *    no); everything else refused is MANDATE_INVALID.
 *  - login_metadata: our SPSSODescriptor, with the current and the next
 *    certificate (rollover) for signing and encryption.
 *
 * Keys: sp_key/sp_certificate, and sp_next_key/sp_next_certificate during a
 * rollover (both published, both tried for decryption; the current one
 * signs). RSA only: RSA-OAEP key transport needs it. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <xmlsec/crypto.h>
#include <xmlsec/keysmngr.h>
#include <xmlsec/xmlsec.h>
#include <zlib.h>

#include <mandate/backend.h>

#include "saml-internal.h"

#define SAML_RESPONSE_PARAM "SAMLResponse"

/* --- keys ----------------------------------------------------------------- */

static void sp_key_free(saml_sp_key *k)
{
    EVP_PKEY_free(k->pkey);
    if (k->mngr != NULL)
        xmlSecKeysMngrDestroy(k->mngr);
    free(k->cert_b64);
    *k = (saml_sp_key){0};
}

void saml_sp_destroy(saml_inst *inst)
{
    sp_key_free(&inst->sp_keys[0]);
    sp_key_free(&inst->sp_keys[1]);
}

/* Standard base64 of len bytes, malloc'ed. */
static char *b64_encode(const unsigned char *in, size_t len)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (out != NULL)
        EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    return out;
}

static mandate_rc load_key_pair(saml_inst *inst, const char *key_file, const char *cert_file,
                                const char *what, saml_sp_key *k, mandate_error *err)
{
    FILE *f = fopen(key_file, "r");
    if (f == NULL)
        return mandate_error_set(err, MANDATE_INVALID, "saml: %s: cannot read %s", what,
                                 key_file);
    k->pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (k->pkey == NULL || EVP_PKEY_get_base_id(k->pkey) != EVP_PKEY_RSA)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "saml: %s: %s is not an RSA private key in PEM (RSA-OAEP "
                                 "and rsa-sha256 need one)",
                                 what, key_file);
    f = fopen(cert_file, "r");
    if (f == NULL)
        return mandate_error_set(err, MANDATE_INVALID, "saml: %s: cannot read %s", what,
                                 cert_file);
    X509 *cert = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (cert == NULL)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "saml: %s: %s is not a PEM certificate", what, cert_file);
    mandate_rc rc = MANDATE_OK;
    unsigned char *der = NULL;
    int der_len = i2d_X509(cert, &der);
    if (X509_check_private_key(cert, k->pkey) != 1)
        rc = mandate_error_set(err, MANDATE_INVALID,
                               "saml: %s: the certificate %s is not the key's", what, cert_file);
    else if (der_len <= 0 || (k->cert_b64 = b64_encode(der, (size_t)der_len)) == NULL)
        rc = mandate_error_set(err, MANDATE_ERROR, "saml: out of memory");
    OPENSSL_free(der);
    X509_free(cert);
    if (rc != MANDATE_OK)
        return rc;
    /* the same key for xmlenc, in a keys manager of its own: no KeyName in
     * the document picks it, every SP key is tried in turn */
    xmlSecKeyPtr key = xmlSecCryptoAppKeyLoad(key_file, xmlSecKeyDataFormatPem, NULL, NULL, NULL);
    k->mngr = xmlSecKeysMngrCreate();
    if (key == NULL || k->mngr == NULL || xmlSecCryptoAppDefaultKeysMngrInit(k->mngr) < 0 ||
        xmlSecCryptoAppDefaultKeysMngrAdoptKey(k->mngr, key) < 0) {
        if (key != NULL)
            xmlSecKeyDestroy(key);
        return mandate_error_set(err, MANDATE_INVALID, "saml: %s: xmlsec cannot load %s", what,
                                 key_file);
    }
    (void)inst;
    return MANDATE_OK;
}

mandate_rc saml_sp_instantiate(saml_inst *inst, mandate_error *err)
{
    bool key = inst->sp_key_file != NULL, cert = inst->sp_certificate_file != NULL;
    bool next_key = inst->sp_next_key_file != NULL,
         next_cert = inst->sp_next_certificate_file != NULL;
    if (key != cert)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "saml: sp_key and sp_certificate go together");
    if (next_key != next_cert)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "saml: sp_next_key and sp_next_certificate go together");
    if (next_key && !key)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "saml: sp_next_key without sp_key: a rollover needs the "
                                 "current key too");
    if (inst->sign_authn_requests && !key)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "saml: sign_authn_requests needs sp_key and sp_certificate");
    mandate_rc rc = MANDATE_OK;
    if (key)
        rc = load_key_pair(inst, inst->sp_key_file, inst->sp_certificate_file, "sp_key",
                           &inst->sp_keys[0], err);
    if (rc == MANDATE_OK && next_key)
        rc = load_key_pair(inst, inst->sp_next_key_file, inst->sp_next_certificate_file,
                           "sp_next_key", &inst->sp_keys[1], err);
    if (rc != MANDATE_OK)
        saml_sp_destroy(inst);
    else if (inst->idp_wants_signed_requests && !key)
        mandate_log_warning(inst->host,
                            "saml: the IdP wants signed AuthnRequests and there is no sp_key: "
                            "sign-in at this instance cannot start");
    return rc;
}

/* --- text ----------------------------------------------------------------- */

/* s with XML's special characters escaped, for an attribute or text. */
void saml_xml_escaped(FILE *out, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&apos;", out); break;
        default: fputc(*s, out);
        }
    }
}

/* Percent-encoding of everything but RFC 3986's unreserved characters. */
void saml_url_escaped(FILE *out, const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~')
            fputc(c, out);
        else
            fprintf(out, "%%%02X", c);
    }
}

/* The text written by a memstream, copied into the pool. */
char *saml_memstream_done(const saml_inst *inst, mandate_pool *pool, FILE *f, char **buf)
{
    if (fclose(f) != 0) {
        free(*buf);
        return NULL;
    }
    char *s = inst->host->pool_strdup(pool, *buf);
    free(*buf);
    return s;
}

/* --- login_start ---------------------------------------------------------- */

/* Raw DEFLATE (RFC 1951), as the HTTP-Redirect binding wants, then base64. */
static char *deflate_b64(const char *xml)
{
    size_t len = strlen(xml);
    z_stream z = {0};
    if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    uLong bound = deflateBound(&z, (uLong)len);
    unsigned char *out = malloc(bound);
    char *b64 = NULL;
    if (out != NULL) {
        z.next_in = (Bytef *)xml;
        z.avail_in = (uInt)len;
        z.next_out = out;
        z.avail_out = (uInt)bound;
        if (deflate(&z, Z_FINISH) == Z_STREAM_END)
            b64 = b64_encode(out, z.total_out);
    }
    deflateEnd(&z);
    free(out);
    return b64;
}

/* rsa-sha256 over text with key, base64. */
static char *sign_b64(EVP_PKEY *key, const char *text)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    char *b64 = NULL;
    if (ctx != NULL && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
        EVP_DigestSign(ctx, NULL, &sig_len, (const unsigned char *)text, strlen(text)) == 1 &&
        (sig = malloc(sig_len)) != NULL &&
        EVP_DigestSign(ctx, sig, &sig_len, (const unsigned char *)text, strlen(text)) == 1)
        b64 = b64_encode(sig, sig_len);
    free(sig);
    EVP_MD_CTX_free(ctx);
    return b64;
}

bool saml_signs_requests(const saml_inst *inst)
{
    return inst->sign_authn_requests || inst->idp_wants_signed_requests;
}

bool saml_new_id(const saml_inst *inst, char id[SAML_REQUEST_ID_SIZE])
{
    /* "_" and hex: an xs:ID never starts with a digit */
    unsigned char rnd[REQUEST_ID_BYTES];
    if (inst->host->random(rnd, sizeof(rnd)) != MANDATE_OK)
        return false;
    id[0] = '_';
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(id + 1 + 2 * i, 3, "%02x", rnd[i]);
    return true;
}

mandate_rc saml_redirect_request(const saml_inst *inst, mandate_pool *pool, const char *dest,
                                 saml_message *m, const char *relay_state,
                                 mandate_login_redirect *redirect_r, mandate_error *err)
{
    char *xml = saml_memstream_done(inst, pool, m->f, &m->buf);
    if (xml == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "saml: out of memory");
    const char *url;
    mandate_rc rc = saml_redirect_url(inst, pool, dest, "SAMLRequest", xml, relay_state, &url, err);
    if (rc != MANDATE_OK)
        return rc;
    redirect_r->url = url;
    redirect_r->remember = inst->host->pool_strdup(pool, m->id);
    if (redirect_r->remember == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "saml: out of memory");
    return MANDATE_OK;
}

mandate_rc saml_redirect_url(const saml_inst *inst, mandate_pool *pool, const char *dest,
                             const char *param, const char *xml, const char *relay_state,
                             const char **url_r, mandate_error *err)
{
    char *deflated = deflate_b64(xml);
    if (deflated == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "saml: cannot deflate the %s", param);
    /* the signed part is exactly the query sent (SAML bindings §3.4.4.1) */
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (f == NULL) {
        free(deflated);
        return mandate_error_set(err, MANDATE_ERROR, "saml: out of memory");
    }
    fprintf(f, "%s=", param);
    saml_url_escaped(f, deflated);
    free(deflated);
    if (relay_state != NULL) {
        fputs("&RelayState=", f);
        saml_url_escaped(f, relay_state);
    }
    bool signs = saml_signs_requests(inst);
    if (signs) {
        fputs("&SigAlg=", f);
        saml_url_escaped(f, ALG_RSA_SHA256);
    }
    char *query = saml_memstream_done(inst, pool, f, &buf);
    if (query == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "saml: out of memory");
    char *signature = NULL;
    if (signs && (signature = sign_b64(inst->sp_keys[0].pkey, query)) == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "saml: cannot sign the %s", param);

    buf = NULL;
    f = open_memstream(&buf, &size);
    if (f == NULL) {
        free(signature);
        return mandate_error_set(err, MANDATE_ERROR, "saml: out of memory");
    }
    fprintf(f, "%s%c%s", dest, strchr(dest, '?') != NULL ? '&' : '?', query);
    if (signature != NULL) {
        fputs("&Signature=", f);
        saml_url_escaped(f, signature);
        free(signature);
    }
    *url_r = saml_memstream_done(inst, pool, f, &buf);
    if (*url_r == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "saml: out of memory");
    return MANDATE_OK;
}

bool saml_message_open(const saml_inst *inst, saml_message *m, const char *name,
                       const char *dest, mandate_error *err)
{
    if (saml_signs_requests(inst) && inst->sp_keys[0].pkey == NULL) {
        mandate_error_set(err, MANDATE_ERROR,
                          "saml: the IdP wants signed %ss: configure sp_key and sp_certificate",
                          name);
        return false;
    }
    if (!saml_new_id(inst, m->id)) {
        mandate_error_set(err, MANDATE_ERROR, "saml: no randomness");
        return false;
    }
    char instant[32];
    saml_fmt_time(inst->host->now(inst->host), instant);
    m->buf = NULL;
    m->f = open_memstream(&m->buf, &m->size);
    if (m->f == NULL) {
        mandate_error_set(err, MANDATE_ERROR, "saml: out of memory");
        return false;
    }
    fprintf(m->f,
            "<samlp:%s xmlns:samlp=\"" NS_SAMLP "\" xmlns:saml=\"" NS_SAML "\""
            " ID=\"%s\" Version=\"2.0\" IssueInstant=\"%s\" Destination=\"",
            name, m->id, instant);
    saml_xml_escaped(m->f, dest);
    fputc('"', m->f);
    return true;
}

void saml_message_issuer(const saml_inst *inst, saml_message *m)
{
    fputs("><saml:Issuer>", m->f);
    saml_xml_escaped(m->f, inst->sp_entity_id);
    fputs("</saml:Issuer>", m->f);
}

mandate_rc saml_login_start(void *inst_, mandate_pool *pool, const mandate_login_request *request,
                            mandate_login_redirect *redirect_r, mandate_error *err)
{
    const saml_inst *inst = inst_;
    const mandate_host *host = inst->host;
    if (inst->sso_url == NULL)
        return mandate_error_set(err, MANDATE_ERROR,
                                 "saml: the IdP's metadata (%s) has no SingleSignOnService "
                                 "with the HTTP-Redirect binding: no sign-in here",
                                 inst->idp_metadata);
    if (request->callback_url == NULL || request->handle == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "saml: no callback URL or handle");

    saml_message m;
    if (!saml_message_open(inst, &m, "AuthnRequest", inst->sso_url, err))
        return err != NULL ? err->rc : MANDATE_ERROR;
    FILE *f = m.f;
    fputs(" AssertionConsumerServiceURL=\"", f);
    saml_xml_escaped(f, request->callback_url);
    fputs("\" ProtocolBinding=\"" BINDING_POST "\"", f);
    /* SAML has no max_age: a fresh login satisfies any, and the core
     * checks the AuthnInstant against it (an IdP may ignore ForceAuthn) */
    if (request->force_login || request->max_age >= 0)
        fputs(" ForceAuthn=\"true\"", f);
    saml_message_issuer(inst, &m);
    fputs("<samlp:NameIDPolicy Format=\"", f);
    saml_xml_escaped(f, inst->nameid_format);
    fputs("\" AllowCreate=\"true\"/></samlp:AuthnRequest>", f);
    mandate_rc rc =
        saml_redirect_request(inst, pool, inst->sso_url, &m, request->handle, redirect_r, err);
    if (rc != MANDATE_OK)
        return rc;
    mandate_log_debug(host, "saml: AuthnRequest %s to %s%s", m.id, Q(inst->sso_url),
                      saml_signs_requests(inst) ? " (signed)" : "");
    return MANDATE_OK;
}

/* --- login_finish --------------------------------------------------------- */

mandate_rc saml_login_finish(void *inst_, mandate_pool *pool,
                             const mandate_login_response *response,
                             mandate_identity *identity_r, mandate_error *err)
{
    const saml_inst *inst = inst_;
    const char *value = NULL;
    size_t count = 0;
    for (size_t i = 0; i < response->param_count; i++)
        if (response->params[i].name != NULL &&
            strcmp(response->params[i].name, SAML_RESPONSE_PARAM) == 0) {
            value = response->params[i].value;
            count++;
        }
    if (count == 0 || value == NULL || value[0] == '\0')
        return mandate_error_set(err, MANDATE_INVALID,
                                 "saml: no SAMLResponse in the answer (the ACS takes the "
                                 "HTTP-POST binding)");
    if (count > 1)
        return mandate_error_set(err, MANDATE_INVALID, "saml: %zu SAMLResponse fields, not 1",
                                 count);
    /* SAML Bindings §3.5: HTTP-POST only. A Response in a query is a link
     * anyone can send, and a GET carries the SameSite=Lax session cookie
     * that a cross-site POST does not */
    if (inst->host->abi_minor >= 10 &&
        (response->method == NULL || strcmp(response->method, "POST") != 0))
        return mandate_error_set(err, MANDATE_INVALID,
                                 "saml: a SAMLResponse by %s, not by the HTTP-POST binding",
                                 response->method != NULL ? response->method : "no method");
    if (response->remember == NULL && inst->idp_initiated_client == NULL)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "saml: an unsolicited (IdP-initiated) response, and this "
                                 "instance accepts none (idp_initiated_client is not set)");
    if (response->callback_url == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "saml: no callback URL");
    saml_expect expect = {
        .acs_url = response->callback_url,
        .request_id = response->remember,
    };
    /* the exchange's bound on the decoded size applies before decoding */
    mandate_rc rc = saml_decode_and_validate(inst, pool, value, strlen(value), "SAMLResponse",
                                             &expect, identity_r, err);
    if (rc == MANDATE_OK || rc == MANDATE_TEMPFAIL || rc == MANDATE_ERROR)
        return rc;
    if (rc == MANDATE_DENIED && expect.status_refused)
        return MANDATE_DENIED;
    /* forged, tampered, replayed, another IdP's, another request's */
    if (err != NULL)
        err->rc = MANDATE_INVALID;
    return MANDATE_INVALID;
}

/* --- login_metadata ------------------------------------------------------- */

static void key_descriptor(FILE *f, const char *use, const char *cert_b64)
{
    fprintf(f,
            "    <md:KeyDescriptor use=\"%s\">\n"
            "      <ds:KeyInfo><ds:X509Data><ds:X509Certificate>%s</ds:X509Certificate>"
            "</ds:X509Data></ds:KeyInfo>\n",
            use, cert_b64);
    if (strcmp(use, "encryption") == 0)
        fputs("      <md:EncryptionMethod Algorithm=\"http://www.w3.org/2009/xmlenc11#aes256-gcm\"/>\n"
              "      <md:EncryptionMethod Algorithm=\"http://www.w3.org/2009/xmlenc11#aes128-gcm\"/>\n"
              "      <md:EncryptionMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#aes256-cbc\"/>\n"
              "      <md:EncryptionMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#aes128-cbc\"/>\n"
              "      <md:EncryptionMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p\"/>\n",
              f);
    fputs("    </md:KeyDescriptor>\n", f);
}

mandate_rc saml_login_metadata(void *inst_, mandate_pool *pool, const char *callback_url,
                               char **text_r, const char **content_type_r, mandate_error *err)
{
    const saml_inst *inst = inst_;
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (f == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "saml: out of memory");
    bool signs = saml_signs_requests(inst) && inst->sp_keys[0].pkey != NULL;
    fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
          "<md:EntityDescriptor xmlns:md=\"" NS_MD "\" xmlns:ds=\"" NS_DS "\" entityID=\"",
          f);
    saml_xml_escaped(f, inst->sp_entity_id);
    fprintf(f,
            "\">\n  <md:SPSSODescriptor protocolSupportEnumeration=\"" NS_SAMLP
            "\" AuthnRequestsSigned=\"%s\" WantAssertionsSigned=\"true\">\n",
            signs ? "true" : "false");
    for (size_t i = 0; i < 2; i++)
        if (inst->sp_keys[i].cert_b64 != NULL) {
            key_descriptor(f, "signing", inst->sp_keys[i].cert_b64);
            key_descriptor(f, "encryption", inst->sp_keys[i].cert_b64);
        }
    /* the schema's order: KeyDescriptor, SingleLogoutService, NameIDFormat,
     * AssertionConsumerService */
    saml_slo_metadata(f, callback_url);
    fputs("    <md:NameIDFormat>", f);
    saml_xml_escaped(f, inst->nameid_format);
    fputs("</md:NameIDFormat>\n    <md:AssertionConsumerService Binding=\"" BINDING_POST
          "\" Location=\"",
          f);
    saml_xml_escaped(f, callback_url);
    fputs("\" index=\"0\" isDefault=\"true\"/>\n  </md:SPSSODescriptor>\n"
          "</md:EntityDescriptor>\n",
          f);
    *text_r = saml_memstream_done(inst, pool, f, &buf);
    if (*text_r == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "saml: out of memory");
    *content_type_r = "application/samlmetadata+xml";
    return MANDATE_OK;
}
