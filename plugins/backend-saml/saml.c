/* The saml backend: SAML 2.0 assertions from one identity provider, for the
 * RFC 8693 token exchange (subject_token_type
 * urn:ietf:params:oauth:token-type:saml2) and the RFC 7522 SAML 2.0 bearer
 * grant. One instance per IdP; several instances may be enabled, and each
 * answers MANDATE_NEXT for an assertion whose Issuer is another IdP's.
 *
 * The IdP is configured from its SAML metadata: the entityID and the
 * signing certificates (KeyDescriptor use="signing" or without use; several
 * for key rollover). Only those certificates verify a signature: a KeyInfo
 * in the document is never read.
 *
 * An assertion arrives base64url-encoded (standard base64 and padding are
 * accepted too) and is checked in this order, each refusal MANDATE_DENIED
 * with its reason in err (the reasons name no secret and quote at most a few
 * dozen characters of the document):
 *  1. size and encoding, then parsing with libxml2: no network, no DTD at
 *     all (a SAX internalSubset hook stops the parser at any DOCTYPE, so no
 *     entity is ever declared or expanded), no NOENT, DTDLOAD or HUGE;
 *  2. structure: the root is a Response (when allow_response) holding
 *     exactly one Assertion as a direct child, or an Assertion; the whole
 *     document holds exactly one Assertion and no EncryptedAssertion;
 *  3. the Assertion's Issuer: another IdP's is MANDATE_NEXT;
 *  4. the signatures (of the Response, of the Assertion, or both; at least
 *     one): a direct child of the signed element, exactly one Reference whose
 *     URI is '#' + that element's ID, exclusive c14n, enveloped, SHA-256 and
 *     RSA-SHA256 or ECDSA-SHA256 only; only the signed elements' IDs are
 *     registered (xmlAddID, which refuses a duplicate); xmlsec verifies with a
 *     preset key, each metadata certificate in turn, and afterwards exactly
 *     one reference must have succeeded with the expected URI;
 *  5. from the verified Assertion only: Issuer, Conditions (NotBefore,
 *     NotOnOrAfter, with clock_skew), every AudienceRestriction naming
 *     sp_entity_id, a bearer SubjectConfirmation whose
 *     SubjectConfirmationData is unexpired (and names recipient when set),
 *     the NameID as one text node (a comment or child element in it is
 *     refused: exclusive c14n drops comments, so "a@b<!---->.evil" signs as
 *     "a@b.evil"), the AuthnStatement's AuthnInstant, the attributes;
 *  6. replay: the assertion ID is claimed in the store's replay cache until
 *     the assertion expires (plus clock_skew).
 *
 * xmlsec is initialised once per process and never shut down: other
 * instances, and a reloaded copy of this plugin, keep using it. The module
 * pins itself in memory (RTLD_NODELETE) so that a reload cannot run that
 * initialisation twice. The instance is read-only after instantiate, so
 * validate_assertion is thread-safe. */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/valid.h>
#include <libxml/xmlerror.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <xmlsec/crypto.h>
#include <xmlsec/errors.h>
#include <xmlsec/keys.h>
#include <xmlsec/list.h>
#include <xmlsec/transforms.h>
#include <xmlsec/xmldsig.h>
#include <xmlsec/xmlsec.h>

#include <mandate/backend.h>

#include "saml-internal.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

#define TOKEN_TYPE_SAML2 "urn:ietf:params:oauth:token-type:saml2"

/* --- process-wide set-up ------------------------------------------------------ */

static pthread_once_t xmlsec_once = PTHREAD_ONCE_INIT;
static const char *xmlsec_failure; /* NULL: ready */

static void xmlsec_init_once(void)
{
    /* Keep this module, and the libraries it holds, loaded for the life of
     * the process: a reload that unloaded it would reset xmlsec_once while
     * libxmlsec1 stays initialised. */
    Dl_info info;
    if (dladdr((void *)&xmlsec_init_once, &info) != 0 && info.dli_fname != NULL)
        (void)dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);

    xmlInitParser();
    if (xmlSecInit() < 0) {
        xmlsec_failure = "xmlSecInit failed";
        return;
    }
    if (xmlSecCheckVersion() != 1) {
        xmlsec_failure = "the loaded libxmlsec1 is not compatible with the one built against";
        return;
    }
    if (xmlSecCryptoAppInit(NULL) < 0) {
        xmlsec_failure = "xmlSecCryptoAppInit failed";
        return;
    }
    if (xmlSecCryptoInit() < 0) {
        xmlsec_failure = "xmlSecCryptoInit failed";
        return;
    }
    /* Failures are reported through err; xmlsec's own lines would go to
     * stderr with no request context. */
    xmlSecErrorsDefaultCallbackEnableOutput(0);
}

/* --- small helpers ---------------------------------------------------------------- */

/* A document value fit for a message: at most QUOTE_MAX characters, control
 * characters and quotes replaced, "..." when cut. */
const char *saml_quote(const char *s, char buf[QUOTE_MAX + 4])
{
    size_t i = 0;
    if (s == NULL)
        s = "";
    for (; s[i] != '\0' && i < QUOTE_MAX; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i] = (c < 0x20 || c == 0x7f || c == '"' || c == '\\') ? '?' : (char)c;
    }
    if (s[i] != '\0')
        memcpy(buf + i, "...", 4);
    else
        buf[i] = '\0';
    return buf;
}

bool saml_is_el(const xmlNode *n, const char *ns, const char *name)
{
    return n != NULL && n->type == XML_ELEMENT_NODE && n->ns != NULL &&
           xmlStrEqual(n->ns->href, BAD_CAST ns) && xmlStrEqual(n->name, BAD_CAST name);
}

/* The first direct child element ns:name of parent, and how many there are. */
xmlNode *saml_child_el(const xmlNode *parent, const char *ns, const char *name,
                         size_t *count_r)
{
    xmlNode *first = NULL;
    size_t count = 0;
    for (xmlNode *c = parent != NULL ? parent->children : NULL; c != NULL; c = c->next)
        if (saml_is_el(c, ns, name)) {
            if (first == NULL)
                first = c;
            count++;
        }
    if (count_r != NULL)
        *count_r = count;
    return first;
}

/* The next sibling element ns:name after n. */
xmlNode *saml_next_el(const xmlNode *n, const char *ns, const char *name)
{
    for (xmlNode *c = n->next; c != NULL; c = c->next)
        if (saml_is_el(c, ns, name))
            return c;
    return NULL;
}

/* A no-namespace attribute's value (libxml2-allocated; xmlFree), or NULL. */
char *saml_attr(const xmlNode *n, const char *name)
{
    return (char *)xmlGetNoNsProp(n, BAD_CAST name);
}

/* Every element ns:name in the subtree of root (root included). */
size_t saml_count_el(const xmlNode *root, const char *ns, const char *name)
{
    size_t count = 0;
    const xmlNode *n = root;
    while (n != NULL) {
        if (saml_is_el(n, ns, name))
            count++;
        if (n->type == XML_ELEMENT_NODE && n->children != NULL) {
            n = n->children;
            continue;
        }
        while (n != NULL && n != root && n->next == NULL)
            n = n->parent;
        if (n == NULL || n == root)
            break;
        n = n->next;
    }
    return count;
}

/* The text of an element made of exactly one text node (or CDATA), in *s_r
 * (pointing into the tree). An element holding a comment, a processing
 * instruction, an element or several nodes is TEXT_MIXED: reading "the
 * first text node" is how comment injection works. */
text_rc saml_single_text(const xmlNode *n, const char **s_r)
{
    const xmlNode *c = n->children;
    if (c == NULL)
        return TEXT_EMPTY;
    if (c->next != NULL || (c->type != XML_TEXT_NODE && c->type != XML_CDATA_SECTION_NODE))
        return TEXT_MIXED;
    *s_r = (const char *)c->content;
    if (*s_r == NULL || **s_r == '\0')
        return TEXT_EMPTY;
    return TEXT_OK;
}

/* xs:dateTime in UTC: YYYY-MM-DDThh:mm:ss[.fff](Z|+hh:mm|-hh:mm). SAML
 * requires Z; an explicit offset is accepted and applied. */
bool saml_parse_time(const char *s, int64_t *t_r)
{
    int y, mo, d, h, mi, sec, n = 0;
    if (s == NULL ||
        sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n != 19)
        return false;
    if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        sec > 60 || h < 0 || mi < 0 || sec < 0)
        return false;
    const char *p = s + n;
    if (*p == '.') {
        size_t digits = strspn(p + 1, "0123456789");
        if (digits == 0)
            return false;
        p += 1 + digits;
    }
    int64_t offset = 0;
    if (*p == 'Z') {
        p++;
    } else if ((*p == '+' || *p == '-') && p[1] >= '0' && p[1] <= '9' && p[2] >= '0' &&
               p[2] <= '9' && p[3] == ':' && p[4] >= '0' && p[4] <= '9' && p[5] >= '0' &&
               p[5] <= '9') {
        int oh = (p[1] - '0') * 10 + (p[2] - '0'), om = (p[4] - '0') * 10 + (p[5] - '0');
        if (oh > 14 || om > 59)
            return false;
        offset = (oh * 3600 + om * 60) * (*p == '+' ? 1 : -1);
        p += 6;
    } else {
        return false;
    }
    if (*p != '\0')
        return false;
    /* Days from civil (Howard Hinnant). */
    int64_t yy = y - (mo <= 2);
    int64_t era = yy / 400;
    int64_t yoe = yy - era * 400;
    int64_t doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = era * 146097 + doe - 719468;
    *t_r = days * 86400 + h * 3600 + mi * 60 + sec - offset;
    return true;
}

/* Decodes base64 or base64url, padded or not; ASCII whitespace is skipped.
 * out must hold len / 4 * 3 + 3 bytes. Returns the decoded length, or -1
 * with the offset of the first bad byte in *bad_r. */
long saml_b64_decode(const char *in, size_t len, unsigned char *out, size_t *bad_r)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0, pad = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        int v;
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        if (pad > 0) { /* data after padding */
            *bad_r = i;
            return -1;
        }
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '+' || c == '-')
            v = 62;
        else if (c == '/' || c == '_')
            v = 63;
        else {
            *bad_r = i;
            return -1;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    /* A lone sextet is no byte; more than two '=' is no base64. */
    if (bits >= 6 || pad > 2) {
        *bad_r = len;
        return -1;
    }
    return (long)n;
}

/* --- parsing ------------------------------------------------------------------------- */

typedef struct parse_state {
    bool doctype;
} parse_state;

static void refuse_doctype(void *ctx, const xmlChar *name, const xmlChar *external_id,
                           const xmlChar *system_id)
{
    xmlParserCtxtPtr ctxt = ctx;
    ((parse_state *)ctxt->_private)->doctype = true;
    xmlStopParser(ctxt);
}

static void quiet_error(void *data, xmlErrorPtr error)
{
}

#define PARSE_OPTIONS (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)

/* Parses buf (or the file path when buf is NULL) with no network and no DTD.
 * NULL with the reason in err (rc DENIED for a document, INVALID for a
 * file). */
xmlDocPtr saml_parse_xml(const char *buf, size_t len, const char *path, const char *what,
                           mandate_rc rc, mandate_error *err)
{
    parse_state state = {false};
    xmlParserCtxtPtr ctxt = xmlNewParserCtxt();
    if (ctxt == NULL) {
        mandate_error_set(err, MANDATE_ERROR, "saml: out of memory");
        return NULL;
    }
    ctxt->_private = &state;
    ctxt->sax->internalSubset = refuse_doctype;
    ctxt->sax->serror = quiet_error;
    xmlDocPtr doc;
    if (path != NULL)
        doc = xmlCtxtReadFile(ctxt, path, NULL, PARSE_OPTIONS);
    else
        doc = xmlCtxtReadMemory(ctxt, buf, (int)len, "assertion.xml", NULL, PARSE_OPTIONS);
    if (state.doctype) {
        if (doc != NULL)
            xmlFreeDoc(doc);
        doc = NULL;
        mandate_error_set(err, rc, "saml: %s: DOCTYPE refused (no DTD or entity is allowed)",
                          what);
    } else if (doc == NULL) {
        const xmlError *e = xmlCtxtGetLastError(ctxt);
        char msg[QUOTE_MAX + 4];
        saml_quote(e != NULL && e->message != NULL ? e->message : "unknown error", msg);
        /* libxml2's messages end in a newline, quoted as '?'. */
        size_t n = strlen(msg);
        if (n > 0 && msg[n - 1] == '?')
            msg[n - 1] = '\0';
        mandate_error_set(err, rc, "saml: %s is not well-formed XML (line %d: %s)", what,
                          e != NULL ? e->line : 0, msg);
    }
    xmlFreeParserCtxt(ctxt);
    return doc;
}

/* --- metadata ---------------------------------------------------------------------- */

static void free_keys(saml_inst *inst)
{
    for (size_t i = 0; i < inst->n_keys; i++) {
        xmlSecKeyDestroy(inst->keys[i]);
        EVP_PKEY_free(inst->idp_pkeys[i]);
    }
    free(inst->keys);
    inst->keys = NULL;
    free(inst->idp_pkeys);
    inst->idp_pkeys = NULL;
    inst->n_keys = 0;
}

/* Adds the key of a base64 DER certificate. */
static mandate_rc add_cert(saml_inst *inst, const char *b64, size_t index, mandate_error *err)
{
    size_t len = strlen(b64), bad = 0;
    unsigned char *der = malloc(len / 4 * 3 + 3);
    if (der == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "saml: out of memory");
    long n = saml_b64_decode(b64, len, der, &bad);
    if (n <= 0 || (unsigned long)n > UINT32_MAX) {
        free(der);
        return mandate_error_set(err, MANDATE_INVALID,
                                 "saml: %s: signing certificate %zu is not base64",
                                 inst->idp_metadata, index);
    }
    xmlSecKeyPtr key = xmlSecCryptoAppKeyLoadMemory(
        der, (xmlSecSize)n, xmlSecKeyDataFormatCertDer, NULL, NULL, NULL);
    /* the same key for OpenSSL: the HTTP-Redirect binding's signatures
     * (single logout) are over a query, not XML */
    const unsigned char *p = der;
    X509 *cert = d2i_X509(NULL, &p, n);
    EVP_PKEY *pkey = cert != NULL ? X509_get_pubkey(cert) : NULL;
    X509_free(cert);
    free(der);
    /* kept as the public key alone, without the certificate: every check
     * duplicates its key (verify_with_key), and duplicating the certificate
     * data parsed the certificate again each time, 16 % of an ACS sign-in's
     * CPU (bench/saml-acs, perf); the public key is shared, not copied */
    xmlSecKeyPtr bare = key != NULL ? xmlSecKeyCreate() : NULL;
    xmlSecKeyDataPtr value =
        bare != NULL ? xmlSecKeyDataDuplicate(xmlSecKeyGetValue(key)) : NULL;
    if (value == NULL || xmlSecKeySetValue(bare, value) < 0) {
        if (value != NULL)
            xmlSecKeyDataDestroy(value);
        if (bare != NULL)
            xmlSecKeyDestroy(bare);
        bare = NULL;
    }
    if (key != NULL)
        xmlSecKeyDestroy(key);
    key = bare;
    if (key == NULL || pkey == NULL) {
        if (key != NULL)
            xmlSecKeyDestroy(key);
        EVP_PKEY_free(pkey);
        return mandate_error_set(
            err, MANDATE_INVALID,
            "saml: %s: signing certificate %zu is not an X.509 certificate "
            "with a key xmlsec can use",
            inst->idp_metadata, index);
    }
    xmlSecKeyPtr *bigger = realloc(inst->keys, (inst->n_keys + 1) * sizeof(*bigger));
    if (bigger != NULL)
        inst->keys = bigger;
    EVP_PKEY **more = bigger != NULL ? realloc(inst->idp_pkeys, (inst->n_keys + 1) * sizeof(*more))
                                     : NULL;
    if (more == NULL) {
        xmlSecKeyDestroy(key);
        EVP_PKEY_free(pkey);
        return mandate_error_set(err, MANDATE_ERROR, "saml: out of memory");
    }
    inst->idp_pkeys = more;
    inst->idp_pkeys[inst->n_keys] = pkey;
    inst->keys[inst->n_keys++] = key;
    return MANDATE_OK;
}

static mandate_rc load_metadata(saml_inst *inst, mandate_error *err)
{
    const mandate_host *host = inst->host;
    FILE *f = fopen(inst->idp_metadata, "r");
    if (f == NULL)
        return mandate_error_set(err, MANDATE_INVALID, "saml: idp_metadata: cannot read %s: %s",
                                 inst->idp_metadata, strerror(errno));
    fclose(f);
    xmlDocPtr doc =
        saml_parse_xml(NULL, 0, inst->idp_metadata, inst->idp_metadata, MANDATE_INVALID, err);
    if (doc == NULL)
        return err != NULL ? err->rc : MANDATE_INVALID;
    mandate_rc rc = MANDATE_OK;
    xmlNode *root = xmlDocGetRootElement(doc);
    xmlNode *ed = NULL;
    char *entity_id = NULL, *valid_until = NULL;

    if (saml_is_el(root, NS_MD, "EntityDescriptor")) {
        ed = root;
    } else if (saml_is_el(root, NS_MD, "EntitiesDescriptor")) {
        size_t idps = 0;
        for (xmlNode *c = saml_child_el(root, NS_MD, "EntityDescriptor", NULL); c != NULL;
             c = saml_next_el(c, NS_MD, "EntityDescriptor"))
            if (saml_child_el(c, NS_MD, "IDPSSODescriptor", NULL) != NULL) {
                ed = c;
                idps++;
            }
        if (idps != 1) {
            rc =
                mandate_error_set(err, MANDATE_INVALID,
                                  "saml: %s holds %zu identity providers; give the metadata of "
                                  "exactly one",
                                  inst->idp_metadata, idps);
            goto out;
        }
    } else {
        rc = mandate_error_set(err, MANDATE_INVALID,
                               "saml: %s is not SAML metadata (no md:EntityDescriptor root)",
                               inst->idp_metadata);
        goto out;
    }
    entity_id = saml_attr(ed, "entityID");
    if (entity_id == NULL || entity_id[0] == '\0') {
        rc = mandate_error_set(err, MANDATE_INVALID,
                               "saml: %s: the EntityDescriptor has no entityID",
                               inst->idp_metadata);
        goto out;
    }
    size_t n_idp = 0, index = 0;
    xmlNode *idp = saml_child_el(ed, NS_MD, "IDPSSODescriptor", &n_idp);
    if (idp == NULL) {
        rc = mandate_error_set(err, MANDATE_INVALID, "saml: %s: no IDPSSODescriptor",
                               inst->idp_metadata);
        goto out;
    }
    for (; idp != NULL; idp = saml_next_el(idp, NS_MD, "IDPSSODescriptor")) {
        /* where sign-in sends the AuthnRequest, and whether it must be signed */
        char *want_signed = saml_attr(idp, "WantAuthnRequestsSigned");
        if (want_signed != NULL &&
            (strcmp(want_signed, "true") == 0 || strcmp(want_signed, "1") == 0))
            inst->idp_wants_signed_requests = true;
        xmlFree(want_signed);
        for (xmlNode *sso = saml_child_el(idp, NS_MD, "SingleSignOnService", NULL);
             sso != NULL && inst->sso_url == NULL;
             sso = saml_next_el(sso, NS_MD, "SingleSignOnService")) {
            char *binding = saml_attr(sso, "Binding");
            char *location = saml_attr(sso, "Location");
            if (binding != NULL && strcmp(binding, BINDING_REDIRECT) == 0 &&
                location != NULL && location[0] != '\0') {
                inst->sso_url = strdup(location);
                if (inst->sso_url == NULL) {
                    xmlFree(binding);
                    xmlFree(location);
                    rc = mandate_error_set(err, MANDATE_ERROR, "saml: out of memory");
                    goto out;
                }
            }
            xmlFree(binding);
            xmlFree(location);
        }
        if ((rc = saml_slo_from_metadata(inst, idp, err)) != MANDATE_OK)
            goto out;
        for (xmlNode *kd = saml_child_el(idp, NS_MD, "KeyDescriptor", NULL); kd != NULL;
             kd = saml_next_el(kd, NS_MD, "KeyDescriptor")) {
            char *use = saml_attr(kd, "use");
            bool signing = use == NULL || strcmp(use, "signing") == 0;
            xmlFree(use);
            if (!signing)
                continue;
            xmlNode *ki = saml_child_el(kd, NS_DS, "KeyInfo", NULL);
            for (xmlNode *xd = saml_child_el(ki, NS_DS, "X509Data", NULL); xd != NULL;
                 xd = saml_next_el(xd, NS_DS, "X509Data")) {
                for (xmlNode *xc = saml_child_el(xd, NS_DS, "X509Certificate", NULL); xc != NULL;
                     xc = saml_next_el(xc, NS_DS, "X509Certificate")) {
                    xmlChar *b64 = xmlNodeGetContent(xc);
                    index++;
                    rc = b64 != NULL
                             ? add_cert(inst, (const char *)b64, index, err)
                             : mandate_error_set(err, MANDATE_ERROR, "saml: out of memory");
                    xmlFree(b64);
                    if (rc != MANDATE_OK)
                        goto out;
                }
            }
        }
    }
    if (inst->n_keys == 0) {
        rc = mandate_error_set(
            err, MANDATE_INVALID,
            "saml: %s has no signing certificate (KeyDescriptor use=\"signing\" "
            "or without use, with ds:X509Certificate)",
            inst->idp_metadata);
        goto out;
    }
    valid_until = saml_attr(ed, "validUntil");
    int64_t vu;
    if (valid_until != NULL && saml_parse_time(valid_until, &vu) && vu <= host->now(host))
        mandate_log_warning(host, "saml: %s expired at %s (validUntil); used anyway",
                            inst->idp_metadata, Q(valid_until));
    inst->entity_id = strdup(entity_id);
    size_t ns_len = strlen(entity_id) + sizeof("saml:");
    inst->replay_ns = malloc(ns_len);
    if (inst->entity_id == NULL || inst->replay_ns == NULL) {
        rc = mandate_error_set(err, MANDATE_ERROR, "saml: out of memory");
        goto out;
    }
    snprintf(inst->replay_ns, ns_len, "saml:%s", entity_id);
out:
    xmlFree(entity_id);
    xmlFree(valid_until);
    xmlFreeDoc(doc);
    return rc;
}

/* --- signatures ---------------------------------------------------------------------- */

/* Whether an element child of el has the name and namespace of an earlier
 * one. xmlsec reads a method's parameters (an EncryptionMethod's
 * DigestMethod, MGF, OAEPparams) in turn, keeping the last and leaking the
 * ones before (lsh123/xmlsec#1165, fixed after Debian 12's 1.2.37): a
 * method that repeats one is malformed anyway, and is refused before
 * xmlsec sees it. */
static bool repeats_a_child(const xmlNode *el)
{
    for (const xmlNode *c = el->children; c != NULL; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        for (const xmlNode *d = c->next; d != NULL; d = d->next)
            if (d->type == XML_ELEMENT_NODE && xmlStrEqual(d->name, c->name) &&
                (c->ns == NULL ? d->ns == NULL
                               : d->ns != NULL && xmlStrEqual(d->ns->href, c->ns->href)))
                return true;
    }
    return false;
}

mandate_rc saml_check_algorithm(const xmlNode *el, const char *ns, const char *name,
                                const char *const *allowed, const char *what, const char *kind,
                                const char *names, mandate_error *err)
{
    size_t n;
    xmlNode *method = saml_child_el(el, ns, name, &n);
    char *alg = method != NULL ? saml_attr(method, "Algorithm") : NULL;
    bool known = false;
    for (size_t i = 0; n == 1 && alg != NULL && allowed[i] != NULL && !known; i++)
        known = strcmp(alg, allowed[i]) == 0;
    mandate_rc rc = MANDATE_OK;
    if (!known)
        rc = mandate_error_set(err, MANDATE_DENIED, "saml: the %s's %s \"%s\" is not allowed (%s)",
                               what, kind, Q(alg), names);
    else if (repeats_a_child(method))
        rc = mandate_error_set(err, MANDATE_DENIED,
                               "saml: the %s's %s \"%s\" names one of its parameters twice (%s)",
                               what, kind, Q(alg), names);
    xmlFree(alg);
    return rc;
}

/* Checks the shape and algorithms of sig, the Signature of el whose ID is id.
 * The reason goes into err (DENIED). */
static mandate_rc check_signed_info(const xmlNode *sig, const char *what, const char *id,
                                    mandate_error *err)
{
    size_t n;
    xmlNode *si = saml_child_el(sig, NS_DS, "SignedInfo", &n);
    if (si == NULL || n != 1)
        return mandate_error_set(err, MANDATE_DENIED,
                                 "saml: the %s's Signature has %zu SignedInfo", what, n);
    static const char *const c14n_algorithms[] = {ALG_EXC_C14N, NULL};
    static const char *const signature_algorithms[] = {ALG_RSA_SHA256, ALG_ECDSA_SHA256, NULL};
    static const char *const digest_algorithms[] = {ALG_SHA256, NULL};
    mandate_rc rc = saml_check_algorithm(si, NS_DS, "CanonicalizationMethod", c14n_algorithms,
                                         what, "canonicalization", "exclusive c14n only", err);
    if (rc != MANDATE_OK)
        return rc;
    rc = saml_check_algorithm(si, NS_DS, "SignatureMethod", signature_algorithms, what,
                              "signature algorithm", "rsa-sha256, ecdsa-sha256", err);
    if (rc != MANDATE_OK)
        return rc;
    char *alg = NULL, *uri = NULL;
    xmlNode *ref = saml_child_el(si, NS_DS, "Reference", &n);
    if (n != 1) {
        rc = mandate_error_set(
            err, MANDATE_DENIED,
            "saml: signature wrapping: the %s's SignedInfo has %zu References, "
            "not 1",
            what, n);
        goto out;
    }
    uri = saml_attr(ref, "URI");
    if (uri == NULL || uri[0] != '#' || strcmp(uri + 1, id) != 0) {
        rc =
            mandate_error_set(err, MANDATE_DENIED,
                              "saml: signature wrapping: the %s's signature references \"%s\", "
                              "not its ID \"#%s\"",
                              what, Q(uri), Q(id));
        goto out;
    }
    xmlNode *tr = saml_child_el(ref, NS_DS, "Transforms", &n);
    if (n > 1) {
        rc = mandate_error_set(err, MANDATE_DENIED,
                               "saml: the %s's Reference has %zu Transforms", what, n);
        goto out;
    }
    bool enveloped = false;
    for (xmlNode *t = saml_child_el(tr, NS_DS, "Transform", NULL); t != NULL;
         t = saml_next_el(t, NS_DS, "Transform")) {
        alg = saml_attr(t, "Algorithm");
        if (alg != NULL && strcmp(alg, ALG_ENVELOPED) == 0) {
            enveloped = true;
        } else if (alg == NULL || strcmp(alg, ALG_EXC_C14N) != 0) {
            rc = mandate_error_set(err, MANDATE_DENIED,
                                   "saml: the %s's transform \"%s\" is not allowed (enveloped, "
                                   "exclusive c14n)",
                                   what, Q(alg));
            goto out;
        }
        xmlFree(alg);
        alg = NULL;
    }
    if (!enveloped) {
        rc = mandate_error_set(err, MANDATE_DENIED,
                               "saml: the %s's signature is not an enveloped signature", what);
        goto out;
    }
    rc = saml_check_algorithm(ref, NS_DS, "DigestMethod", digest_algorithms, what,
                              "digest algorithm", "sha256", err);
out:
    xmlFree(alg);
    xmlFree(uri);
    return rc;
}

typedef enum verify_result { VERIFY_OK, VERIFY_BAD_SIGNATURE, VERIFY_BAD_DIGEST } verify_result;

/* One xmlsec verification of sig with key; expected_uri is "#" + ID. */
static verify_result verify_with_key(xmlSecKeyPtr key, xmlNode *sig, const char *expected_uri)
{
    xmlSecDSigCtxPtr ctx = xmlSecDSigCtxCreate(NULL);
    if (ctx == NULL)
        return VERIFY_BAD_SIGNATURE;
    verify_result result = VERIFY_BAD_SIGNATURE;
    ctx->flags =
        XMLSEC_DSIG_FLAGS_IGNORE_MANIFESTS | XMLSEC_DSIG_FLAGS_STORE_SIGNEDINFO_REFERENCES;
    ctx->enabledReferenceUris = xmlSecTransformUriTypeSameDocument;
    if (xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformExclC14NId) < 0 ||
        xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformRsaSha256Id) < 0 ||
        xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformEcdsaSha256Id) < 0 ||
        xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformEnvelopedId) < 0 ||
        xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformExclC14NId) < 0 ||
        xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformSha256Id) < 0)
        goto out;
    /* A preset key: KeyInfo is never read (and there is no keys manager to
     * look a key up in). */
    ctx->signKey = xmlSecKeyDuplicate(key);
    if (ctx->signKey == NULL)
        goto out;
    int ret = xmlSecDSigCtxVerify(ctx, sig);
    xmlSecSize n_refs = xmlSecPtrListGetSize(&ctx->signedInfoReferences);
    xmlSecDSigReferenceCtxPtr ref =
        n_refs == 1 ? xmlSecPtrListGetItem(&ctx->signedInfoReferences, 0) : NULL;
    if (ret == 0 && ctx->status == xmlSecDSigStatusSucceeded && ref != NULL &&
        ref->status == xmlSecDSigStatusSucceeded && ref->uri != NULL &&
        strcmp((const char *)ref->uri, expected_uri) == 0)
        result = VERIFY_OK;
    else if (ret == 0 && ref != NULL && ref->status == xmlSecDSigStatusInvalid)
        result = VERIFY_BAD_DIGEST;
out:
    xmlSecDSigCtxDestroy(ctx);
    return result;
}

/* Verifies the Signature sig, a direct child of el, against the metadata
 * keys. what: "Response" or "Assertion". */
static mandate_rc verify_element(const saml_inst *inst, xmlDocPtr doc, xmlNode *el,
                                 xmlNode *sig, const char *what, mandate_error *err)
{
    xmlAttrPtr id_attr = xmlHasNsProp(el, BAD_CAST "ID", NULL);
    char *id = saml_attr(el, "ID");
    mandate_rc rc = MANDATE_OK;
    char *expected = NULL;
    if (id_attr == NULL || id == NULL || id[0] == '\0') {
        rc = mandate_error_set(err, MANDATE_DENIED, "saml: the signed %s has no ID", what);
        goto out;
    }
    if (strlen(id) > ID_LEN_MAX) {
        rc = mandate_error_set(err, MANDATE_DENIED, "saml: the %s's ID is longer than %d", what,
                               ID_LEN_MAX);
        goto out;
    }
    rc = check_signed_info(sig, what, id, err);
    if (rc != MANDATE_OK)
        goto out;
    /* Only this element's ID; a duplicate (an xml:id elsewhere) fails. */
    if (xmlAddID(NULL, doc, BAD_CAST id, id_attr) == NULL) {
        rc = mandate_error_set(
            err, MANDATE_DENIED,
            "saml: signature wrapping: the %s's ID \"%s\" is not unique in the "
            "document",
            what, Q(id));
        goto out;
    }
    size_t len = strlen(id) + 2;
    expected = malloc(len);
    if (expected == NULL) {
        rc = mandate_error_set(err, MANDATE_ERROR, "saml: out of memory");
        goto out;
    }
    snprintf(expected, len, "#%s", id);
    verify_result result = VERIFY_BAD_SIGNATURE;
    for (size_t i = 0; i < inst->n_keys && result == VERIFY_BAD_SIGNATURE; i++)
        result = verify_with_key(inst->keys[i], sig, expected);
    if (result == VERIFY_BAD_DIGEST)
        rc = mandate_error_set(err, MANDATE_DENIED,
                               "saml: the %s's signature does not verify: its content was "
                               "altered after signing (digest mismatch)",
                               what);
    else if (result != VERIFY_OK)
        rc = mandate_error_set(err, MANDATE_DENIED,
                               "saml: the %s's signature does not verify with any metadata "
                               "certificate (%zu tried)",
                               what, inst->n_keys);
out:
    free(expected);
    xmlFree(id);
    return rc;
}

/* --- the assertion ------------------------------------------------------------------- */

/* The Issuer child of el: exactly one, one text node. NULL with err set. */
static const char *issuer_of(const xmlNode *el, const char *what, bool required,
                             mandate_error *err)
{
    size_t n;
    xmlNode *iss = saml_child_el(el, NS_SAML, "Issuer", &n);
    const char *s = NULL;
    if (n == 0 && !required)
        return "";
    if (n != 1)
        mandate_error_set(err, MANDATE_DENIED, "saml: the %s has %zu Issuers, not 1", what, n);
    else if (saml_single_text(iss, &s) != TEXT_OK)
        mandate_error_set(err, MANDATE_DENIED, "saml: the %s's Issuer is not one text node",
                          what);
    else
        return s;
    return NULL;
}

/* A time attribute of n: *t_r = 0 when absent. */
static mandate_rc time_attr(const xmlNode *n, const char *name, const char *where, int64_t *t_r,
                            mandate_error *err)
{
    char *s = saml_attr(n, name);
    *t_r = 0;
    if (s == NULL)
        return MANDATE_OK;
    mandate_rc rc = MANDATE_OK;
    if (!saml_parse_time(s, t_r) || *t_r == 0)
        rc = mandate_error_set(err, MANDATE_DENIED, "saml: %s %s \"%s\" is not an xs:dateTime",
                               where, name, Q(s));
    xmlFree(s);
    return rc;
}

void saml_fmt_time(int64_t t, char buf[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (gmtime_r(&tt, &tm) == NULL || strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, 32, "%" PRId64, t);
}

static mandate_rc check_conditions(const saml_inst *inst, const xmlNode *a, int64_t now,
                                   int64_t *expires_r, mandate_error *err)
{
    int64_t skew = inst->clock_skew;
    size_t n;
    xmlNode *cond = saml_child_el(a, NS_SAML, "Conditions", &n);
    char t1[32], t2[32];
    if (n != 1)
        return mandate_error_set(err, MANDATE_DENIED,
                                 "saml: the assertion has %zu Conditions, not 1", n);
    int64_t nb, noa;
    mandate_rc rc = time_attr(cond, "NotBefore", "Conditions", &nb, err);
    if (rc == MANDATE_OK)
        rc = time_attr(cond, "NotOnOrAfter", "Conditions", &noa, err);
    if (rc != MANDATE_OK)
        return rc;
    if (nb != 0 && now + skew < nb) {
        saml_fmt_time(nb, t1);
        saml_fmt_time(now, t2);
        return mandate_error_set(
            err, MANDATE_DENIED,
            "saml: assertion not yet valid: NotBefore %s (now %s, skew %" PRId64 " s)", t1, t2,
            skew);
    }
    if (noa != 0 && now - skew >= noa) {
        saml_fmt_time(noa, t1);
        saml_fmt_time(now, t2);
        return mandate_error_set(err, MANDATE_DENIED,
                                 "saml: assertion expired at %s (now %s, skew %" PRId64 " s)",
                                 t1, t2, skew);
    }
    *expires_r = noa;
    size_t restrictions = 0;
    for (xmlNode *c = cond->children; c != NULL; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (saml_is_el(c, NS_SAML, "AudienceRestriction")) {
            restrictions++;
            bool ours = false;
            const char *first = NULL;
            for (xmlNode *au = saml_child_el(c, NS_SAML, "Audience", NULL); au != NULL;
                 au = saml_next_el(au, NS_SAML, "Audience")) {
                const char *s = NULL;
                if (saml_single_text(au, &s) == TEXT_OK) {
                    if (first == NULL)
                        first = s;
                    if (strcmp(s, inst->sp_entity_id) == 0)
                        ours = true;
                }
            }
            if (!ours)
                return mandate_error_set(err, MANDATE_DENIED,
                                         "saml: audience \"%s\" is not ours (\"%s\")", Q(first),
                                         Q(inst->sp_entity_id));
        } else if (saml_is_el(c, NS_SAML, "OneTimeUse") || saml_is_el(c, NS_SAML, "ProxyRestriction")) {
            /* OneTimeUse: the replay check; ProxyRestriction: we issue no
             * assertion. */
        } else {
            return mandate_error_set(err, MANDATE_DENIED,
                                     "saml: unsupported condition \"%s\" in Conditions",
                                     Q(c->name));
        }
    }
    if (restrictions == 0)
        return mandate_error_set(err, MANDATE_DENIED,
                                 "saml: the assertion has no AudienceRestriction");
    return MANDATE_OK;
}

/* The NameID and a bearer SubjectConfirmation. */
static mandate_rc check_subject(const saml_inst *inst, const xmlNode *a, int64_t now,
                                const saml_expect *expect, const char **name_id_r,
                                int64_t *expires_r, mandate_error *err)
{
    size_t n;
    char t1[32], t2[32];
    xmlNode *subject = saml_child_el(a, NS_SAML, "Subject", &n);
    if (n != 1)
        return mandate_error_set(err, MANDATE_DENIED,
                                 "saml: the assertion has %zu Subjects, not 1", n);
    if (saml_child_el(subject, NS_SAML, "EncryptedID", NULL) != NULL)
        return mandate_error_set(err, MANDATE_DENIED,
                                 "saml: encrypted NameIDs are not supported");
    xmlNode *name_id = saml_child_el(subject, NS_SAML, "NameID", &n);
    if (n != 1)
        return mandate_error_set(err, MANDATE_DENIED,
                                 "saml: the Subject has %zu NameIDs, not 1", n);
    switch (saml_single_text(name_id, name_id_r)) {
    case TEXT_OK: break;
    case TEXT_EMPTY: return mandate_error_set(err, MANDATE_DENIED, "saml: the NameID is empty");
    case TEXT_MIXED:
        return mandate_error_set(err, MANDATE_DENIED,
                                 "saml: NameID refused: it holds a comment or an element, not "
                                 "one text node (comment injection)");
    }
    if (strlen(*name_id_r) > NAMEID_LEN_MAX)
        return mandate_error_set(err, MANDATE_DENIED, "saml: the NameID is longer than %d",
                                 NAMEID_LEN_MAX);

    /* At least one bearer confirmation that holds; report why the last one
     * did not. */
    mandate_rc rc =
        mandate_error_set(err, MANDATE_DENIED, "saml: no bearer SubjectConfirmation");
    for (xmlNode *sc = saml_child_el(subject, NS_SAML, "SubjectConfirmation", NULL); sc != NULL;
         sc = saml_next_el(sc, NS_SAML, "SubjectConfirmation")) {
        char *method = saml_attr(sc, "Method");
        bool bearer = method != NULL && strcmp(method, CM_BEARER) == 0;
        xmlFree(method);
        if (!bearer)
            continue;
        xmlNode *scd = saml_child_el(sc, NS_SAML, "SubjectConfirmationData", &n);
        if (n != 1) {
            rc = mandate_error_set(err, MANDATE_DENIED,
                                   "saml: the bearer SubjectConfirmation has %zu "
                                   "SubjectConfirmationData, not 1",
                                   n);
            continue;
        }
        int64_t nb, noa;
        rc = time_attr(scd, "NotBefore", "SubjectConfirmationData", &nb, err);
        if (rc == MANDATE_OK)
            rc = time_attr(scd, "NotOnOrAfter", "SubjectConfirmationData", &noa, err);
        if (rc != MANDATE_OK)
            continue;
        if (noa == 0) {
            rc = mandate_error_set(
                err, MANDATE_DENIED,
                "saml: the bearer SubjectConfirmationData has no NotOnOrAfter");
            continue;
        }
        if (now - inst->clock_skew >= noa) {
            saml_fmt_time(noa, t1);
            saml_fmt_time(now, t2);
            rc = mandate_error_set(
                err, MANDATE_DENIED,
                "saml: bearer SubjectConfirmationData expired at %s (now %s)", t1, t2);
            continue;
        }
        if (nb != 0 && now + inst->clock_skew < nb) {
            saml_fmt_time(nb, t1);
            rc = mandate_error_set(err, MANDATE_DENIED,
                                   "saml: bearer SubjectConfirmationData not valid before %s",
                                   t1);
            continue;
        }
        /* at the ACS, the Recipient is the ACS's URL, whatever recipient says */
        const char *want = expect != NULL ? expect->acs_url : inst->recipient;
        if (want != NULL && want[0] != '\0') {
            char *recipient = saml_attr(scd, "Recipient");
            bool ok = recipient != NULL && strcmp(recipient, want) == 0;
            if (!ok)
                rc = mandate_error_set(
                    err, MANDATE_DENIED,
                    "saml: bearer SubjectConfirmationData Recipient \"%s\" is "
                    "not \"%s\"",
                    Q(recipient), Q(want));
            xmlFree(recipient);
            if (!ok)
                continue;
        }
        if (expect != NULL) {
            /* SAML profiles §4.1.4.2: a response to an AuthnRequest names it
             * here; an unsolicited one names none */
            char *irt = saml_attr(scd, "InResponseTo");
            bool ok = expect->request_id != NULL
                          ? irt != NULL && strcmp(irt, expect->request_id) == 0
                          : irt == NULL;
            if (!ok)
                rc = mandate_error_set(
                    err, MANDATE_DENIED,
                    expect->request_id == NULL
                        ? "saml: unsolicited, yet the SubjectConfirmationData answers "
                          "request \"%s\" (unknown or used: no sign-in is waiting for it)"
                    : irt == NULL
                        ? "saml: the SubjectConfirmationData has no InResponseTo%s (a "
                          "request is outstanding)"
                        : "saml: the SubjectConfirmationData answers request \"%s\", not the "
                          "outstanding one",
                    Q(irt));
            xmlFree(irt);
            if (!ok)
                continue;
        }
        *expires_r = noa;
        return MANDATE_OK;
    }
    return rc;
}

/* The AuthnStatement's AuthnInstant (0 when there is none). */
static mandate_rc check_authn(const saml_inst *inst, const xmlNode *a, int64_t now,
                              int64_t *instant_r, mandate_error *err)
{
    xmlNode *as = saml_child_el(a, NS_SAML, "AuthnStatement", NULL);
    *instant_r = 0;
    if (as == NULL)
        return MANDATE_OK;
    int64_t t, session_end;
    char t1[32];
    mandate_rc rc = time_attr(as, "AuthnInstant", "AuthnStatement", &t, err);
    if (rc == MANDATE_OK)
        rc = time_attr(as, "SessionNotOnOrAfter", "AuthnStatement", &session_end, err);
    if (rc != MANDATE_OK)
        return rc;
    if (t == 0)
        return mandate_error_set(err, MANDATE_DENIED,
                                 "saml: the AuthnStatement has no AuthnInstant");
    if (t > now + inst->clock_skew) {
        saml_fmt_time(t, t1);
        return mandate_error_set(err, MANDATE_DENIED, "saml: AuthnInstant %s is in the future",
                                 t1);
    }
    if (session_end != 0 && now - inst->clock_skew >= session_end) {
        saml_fmt_time(session_end, t1);
        return mandate_error_set(err, MANDATE_DENIED, "saml: the IdP session ended at %s", t1);
    }
    *instant_r = t;
    return MANDATE_OK;
}

/* {"Name": ["value", ...], ...} from every AttributeStatement, as JSON text
 * in the pool. A value holding a comment is refused; one holding elements
 * (a NameID-valued attribute) is left out. */
static mandate_rc read_attributes(const saml_inst *inst, mandate_pool *pool, const xmlNode *a,
                                  const char **json_r, mandate_error *err)
{
    json_t *obj = json_object();
    mandate_rc rc = MANDATE_OK;
    if (obj == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "saml: out of memory");
    for (xmlNode *st = saml_child_el(a, NS_SAML, "AttributeStatement", NULL); st != NULL;
         st = saml_next_el(st, NS_SAML, "AttributeStatement")) {
        if (saml_child_el(st, NS_SAML, "EncryptedAttribute", NULL) != NULL)
            mandate_log_debug(inst->host, "saml: encrypted attributes ignored");
        for (xmlNode *at = saml_child_el(st, NS_SAML, "Attribute", NULL); at != NULL;
             at = saml_next_el(at, NS_SAML, "Attribute")) {
            char *name = saml_attr(at, "Name");
            if (name == NULL || name[0] == '\0') {
                xmlFree(name);
                rc = mandate_error_set(err, MANDATE_DENIED, "saml: an Attribute has no Name");
                goto out;
            }
            json_t *values = json_object_get(obj, name);
            if (values == NULL) {
                values = json_array();
                if (values == NULL || json_object_set_new(obj, name, values) != 0) {
                    xmlFree(name);
                    rc = mandate_error_set(err, MANDATE_ERROR, "saml: out of memory");
                    goto out;
                }
            }
            for (xmlNode *v = saml_child_el(at, NS_SAML, "AttributeValue", NULL); v != NULL;
                 v = saml_next_el(v, NS_SAML, "AttributeValue")) {
                bool elements = false, comments = false;
                for (xmlNode *c = v->children; c != NULL; c = c->next) {
                    if (c->type == XML_ELEMENT_NODE)
                        elements = true;
                    else if (c->type != XML_TEXT_NODE && c->type != XML_CDATA_SECTION_NODE)
                        comments = true;
                }
                if (comments) {
                    rc = mandate_error_set(err, MANDATE_DENIED,
                                           "saml: a value of attribute \"%s\" holds a comment "
                                           "(comment injection)",
                                           Q(name));
                    xmlFree(name);
                    goto out;
                }
                if (elements)
                    continue;
                xmlChar *text = xmlNodeGetContent(v);
                json_t *s = json_string(text != NULL ? (const char *)text : "");
                xmlFree(text);
                if (s == NULL || json_array_append_new(values, s) != 0) {
                    xmlFree(name);
                    rc = mandate_error_set(err, MANDATE_ERROR, "saml: out of memory");
                    goto out;
                }
            }
            xmlFree(name);
        }
    }
    char *text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text == NULL) {
        rc = mandate_error_set(err, MANDATE_ERROR, "saml: out of memory");
        goto out;
    }
    *json_r = inst->host->pool_strdup(pool, text);
    free(text);
    if (*json_r == NULL)
        rc = mandate_error_set(err, MANDATE_ERROR, "saml: out of memory");
out:
    json_decref(obj);
    return rc;
}

/* The Response's Status: Success, else DENIED with the IdP's codes (the
 * second-level one says why: AuthnFailed, NoPassive, RequestDenied) and its
 * message, quoted. */
static mandate_rc check_status(const xmlNode *response, mandate_error *err)
{
    xmlNode *status = saml_child_el(response, NS_SAMLP, "Status", NULL);
    xmlNode *code = saml_child_el(status, NS_SAMLP, "StatusCode", NULL);
    char *value = code != NULL ? saml_attr(code, "Value") : NULL;
    mandate_rc rc = MANDATE_OK;
    if (value == NULL || strcmp(value, STATUS_SUCCESS) != 0) {
        xmlNode *sub = saml_child_el(code, NS_SAMLP, "StatusCode", NULL);
        char *sub_value = sub != NULL ? saml_attr(sub, "Value") : NULL;
        xmlNode *msg = saml_child_el(status, NS_SAMLP, "StatusMessage", NULL);
        const char *text = NULL;
        if (msg == NULL || saml_single_text(msg, &text) != TEXT_OK)
            text = NULL;
        rc = mandate_error_set(err, MANDATE_DENIED,
                               "saml: the Response's status is \"%s\"%s%s%s%s%s", Q(value),
                               sub_value != NULL ? " / \"" : "",
                               sub_value != NULL ? Q(sub_value) : "",
                               sub_value != NULL ? "\"" : "", text != NULL ? ": " : "",
                               text != NULL ? Q(text) : "");
        xmlFree(sub_value);
    }
    xmlFree(value);
    return rc;
}

/* The Response's Issuer, when it has one, is expected (whose: for the
 * message). */
static mandate_rc check_response_issuer(const xmlNode *response, const char *expected,
                                        const char *whose, mandate_error *err)
{
    const char *r_issuer = issuer_of(response, "Response", false, err);
    if (r_issuer == NULL)
        return MANDATE_DENIED;
    if (r_issuer[0] != '\0' && strcmp(r_issuer, expected) != 0)
        return mandate_error_set(err, MANDATE_DENIED,
                                 "saml: the Response's issuer \"%s\" is not %s (\"%s\")",
                                 Q(r_issuer), whose, Q(expected));
    return MANDATE_OK;
}

/* At the Assertion Consumer Service: what the Response itself says
 * (Destination, InResponseTo), before any signature work. */
static mandate_rc check_response_for_acs(const xmlNode *response, const saml_expect *expect,
                                         mandate_error *err)
{
    mandate_rc rc = MANDATE_OK;
    char *destination = saml_attr(response, "Destination");
    char *irt = saml_attr(response, "InResponseTo");
    if (destination != NULL && strcmp(destination, expect->acs_url) != 0)
        rc = mandate_error_set(err, MANDATE_DENIED,
                               "saml: the Response's Destination \"%s\" is not this ACS (\"%s\")",
                               Q(destination), Q(expect->acs_url));
    else if (irt != NULL && expect->request_id == NULL)
        rc = mandate_error_set(err, MANDATE_DENIED,
                               "saml: the Response answers request \"%s\", and no sign-in is "
                               "waiting for it (unknown or used)",
                               Q(irt));
    else if (irt != NULL && strcmp(irt, expect->request_id) != 0)
        rc = mandate_error_set(err, MANDATE_DENIED,
                               "saml: the Response answers request \"%s\", not the outstanding "
                               "one",
                               Q(irt));
    xmlFree(destination);
    xmlFree(irt);
    return rc;
}

/* Checks doc, an Assertion or a Response around one (expect == NULL: the
 * exchange), or a Response at the Assertion Consumer Service (expect set:
 * its Destination, InResponseTo and Recipient, an EncryptedAssertion
 * decrypted once the Response's own signature, if any, holds, and then
 * signed itself). */
static mandate_rc validate_doc(const saml_inst *inst, mandate_pool *pool, xmlDocPtr doc,
                               saml_expect *expect, mandate_identity *identity_r,
                               mandate_error *err)
{
    const mandate_host *host = inst->host;
    xmlNode *root = xmlDocGetRootElement(doc);
    xmlNode *response = NULL, *a = NULL, *encrypted = NULL;
    size_t n;
    mandate_rc rc;

    /* 1. Structure. */
    if (root == NULL)
        return mandate_error_set(err, MANDATE_DENIED, "saml: empty document");
    size_t assertions = saml_count_el(root, NS_SAML, "Assertion");
    size_t n_encrypted = saml_count_el(root, NS_SAML, "EncryptedAssertion");
    if (expect != NULL) {
        if (!saml_is_el(root, NS_SAMLP, "Response"))
            return mandate_error_set(err, MANDATE_DENIED,
                                     "saml: the root element is \"%s\", not a SAML 2.0 Response",
                                     Q(root->name));
        response = root;
        /* whose, and did it succeed: a failed login holds no assertion */
        if ((rc = check_response_issuer(response, inst->entity_id, "this instance's IdP",
                                        err)) != MANDATE_OK ||
            (rc = check_response_for_acs(response, expect, err)) != MANDATE_OK)
            return rc;
        if ((rc = check_status(response, err)) != MANDATE_OK) {
            expect->status_refused = true;
            return rc;
        }
        size_t n_plain, n_enc;
        a = saml_child_el(root, NS_SAML, "Assertion", &n_plain);
        encrypted = saml_child_el(root, NS_SAML, "EncryptedAssertion", &n_enc);
        if (assertions + n_encrypted == 0)
            return mandate_error_set(err, MANDATE_DENIED,
                                     "saml: the Response holds no Assertion");
        if (assertions + n_encrypted != 1 || n_plain + n_enc != 1)
            return mandate_error_set(
                err, MANDATE_DENIED,
                "saml: signature wrapping: the document holds %zu Assertions and %zu "
                "EncryptedAssertions (%zu where one is read), not exactly 1",
                assertions, n_encrypted, n_plain + n_enc);
        if (encrypted != NULL && (inst->sp_keys[0].mngr == NULL))
            return mandate_error_set(err, MANDATE_DENIED,
                                     "saml: an encrypted assertion, and no sp_key to decrypt it");
    } else if (n_encrypted > 0) {
        return mandate_error_set(err, MANDATE_DENIED,
                                 "saml: encrypted assertions are not supported");
    } else if (saml_is_el(root, NS_SAMLP, "Response")) {
        if (!inst->allow_response)
            return mandate_error_set(
                err, MANDATE_DENIED,
                "saml: a Response was presented and allow_response is off");
        response = root;
        a = saml_child_el(root, NS_SAML, "Assertion", &n);
        if (assertions == 0)
            return mandate_error_set(err, MANDATE_DENIED,
                                     "saml: the Response holds no Assertion");
        if (assertions != 1 || n != 1)
            return mandate_error_set(
                err, MANDATE_DENIED,
                "saml: signature wrapping: the document holds %zu Assertions "
                "(%zu where one is read), not exactly 1",
                assertions, n);
    } else if (saml_is_el(root, NS_SAML, "Assertion")) {
        a = root;
        if (assertions != 1)
            return mandate_error_set(
                err, MANDATE_DENIED,
                "saml: signature wrapping: the document holds %zu Assertions, "
                "not exactly 1",
                assertions);
    } else {
        return mandate_error_set(
            err, MANDATE_DENIED,
            "saml: the root element is \"%s\", not a SAML 2.0 Assertion or "
            "Response",
            Q(root->name));
    }

    /* The Response's signature, where there is one. */
    size_t n_rsig = 0, n_asig = 0;
    xmlNode *rsig = response != NULL ? saml_child_el(response, NS_DS, "Signature", &n_rsig) : NULL;
    if (encrypted != NULL) {
        if (n_rsig > 1)
            return mandate_error_set(err, MANDATE_DENIED,
                                     "saml: signature wrapping: the Response has %zu Signatures",
                                     n_rsig);
        /* Its signature covers the ciphertext: checked before decrypting,
         * and never standing in for the assertion's own. */
        if (rsig != NULL &&
            (rc = verify_element(inst, doc, response, rsig, "Response", err)) != MANDATE_OK)
            return rc;
        rsig = NULL;
        if ((rc = saml_decrypt(inst, encrypted, NS_SAML, "Assertion", &a, err)) != MANDATE_OK)
            return rc;
        if (saml_count_el(root, NS_SAML, "Assertion") != 1)
            return mandate_error_set(err, MANDATE_DENIED,
                                     "saml: signature wrapping: the decrypted document holds "
                                     "%zu Assertions, not exactly 1",
                                     saml_count_el(root, NS_SAML, "Assertion"));
        if (saml_child_el(a, NS_DS, "Signature", NULL) == NULL)
            return mandate_error_set(err, MANDATE_DENIED,
                                     "saml: the encrypted Assertion is not signed itself (the "
                                     "Response's signature does not stand in for it)");
    }
    char *version = saml_attr(a, "Version");
    bool v2 = version != NULL && strcmp(version, "2.0") == 0;
    xmlFree(version);
    if (!v2)
        return mandate_error_set(err, MANDATE_DENIED,
                                 "saml: the assertion's Version is not 2.0");

    /* 2. Whose is it? Cheap, before any signature work: another IdP's
     * assertion is for another instance. */
    const char *issuer = issuer_of(a, "Assertion", true, err);
    if (issuer == NULL)
        return MANDATE_DENIED;
    if (strcmp(issuer, inst->entity_id) != 0)
        return mandate_error_set(err, MANDATE_NEXT,
                                 "saml: issuer \"%s\" is not this instance's IdP (\"%s\")",
                                 Q(issuer), Q(inst->entity_id));
    if (response != NULL && expect == NULL) {
        rc = check_response_issuer(response, issuer, "the assertion's", err);
        if (rc != MANDATE_OK)
            return rc;
        rc = check_status(response, err);
        if (rc != MANDATE_OK)
            return rc;
    }

    /* 3. Signatures: the Response's, the Assertion's, or both. */
    xmlNode *asig = saml_child_el(a, NS_DS, "Signature", &n_asig);
    if (n_rsig > 1 || n_asig > 1)
        return mandate_error_set(
            err, MANDATE_DENIED, "saml: signature wrapping: the %s has %zu Signatures",
            n_rsig > 1 ? "Response" : "Assertion", n_rsig > 1 ? n_rsig : n_asig);
    if (rsig == NULL && asig == NULL && encrypted == NULL)
        return mandate_error_set(err, MANDATE_DENIED,
                                 response != NULL
                                     ? "saml: neither the Response nor the Assertion "
                                       "is signed"
                                     : "saml: the Assertion is not signed");
    if (rsig != NULL &&
        (rc = verify_element(inst, doc, response, rsig, "Response", err)) != MANDATE_OK)
        return rc;
    if (asig != NULL &&
        (rc = verify_element(inst, doc, a, asig, "Assertion", err)) != MANDATE_OK)
        return rc;

    /* An encrypted NameID, inside the verified assertion: decrypted in
     * place (at the ACS only; the exchange refuses it in check_subject). */
    xmlNode *subject = saml_child_el(a, NS_SAML, "Subject", NULL);
    xmlNode *enc_id = saml_child_el(subject, NS_SAML, "EncryptedID", &n);
    if (expect != NULL && enc_id != NULL) {
        xmlNode *name_id_el;
        if (n != 1 || saml_child_el(subject, NS_SAML, "NameID", NULL) != NULL)
            return mandate_error_set(err, MANDATE_DENIED,
                                     "saml: the Subject holds %zu EncryptedIDs beside its NameID",
                                     n);
        if (inst->sp_keys[0].mngr == NULL)
            return mandate_error_set(err, MANDATE_DENIED,
                                     "saml: an encrypted NameID, and no sp_key to decrypt it");
        if ((rc = saml_decrypt(inst, enc_id, NS_SAML, "NameID", &name_id_el, err)) !=
            MANDATE_OK)
            return rc;
    }

    /* 4. From the verified assertion only. */
    int64_t now = host->now(host);
    int64_t cond_expires = 0, scd_expires = 0, authn_instant = 0;
    const char *name_id = NULL, *attributes = NULL;
    if ((rc = check_conditions(inst, a, now, &cond_expires, err)) != MANDATE_OK ||
        (rc = check_subject(inst, a, now, expect, &name_id, &scd_expires, err)) != MANDATE_OK ||
        (rc = check_authn(inst, a, now, &authn_instant, err)) != MANDATE_OK ||
        (rc = read_attributes(inst, pool, a, &attributes, err)) != MANDATE_OK)
        return rc;
    int64_t expires = scd_expires;
    if (cond_expires != 0 && cond_expires < expires)
        expires = cond_expires;

    char *id = saml_attr(a, "ID");
    if (id == NULL || id[0] == '\0' || strlen(id) > ID_LEN_MAX) {
        xmlFree(id);
        return mandate_error_set(err, MANDATE_DENIED, "saml: the assertion has no usable ID");
    }
    const char *assertion_id = host->pool_strdup(pool, id);
    xmlFree(id);
    if (assertion_id == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "saml: out of memory");

    /* 5. Replay: once, until it expires (the skew included). */
    if (inst->replay_check) {
        rc = saml_replay_claim(inst, assertion_id, assertion_id, expires + inst->clock_skew,
                               MANDATE_DENIED, "assertion", err);
        if (rc != MANDATE_OK)
            return rc;
    }

    *identity_r = (mandate_identity){
        .issuer = host->pool_strdup(pool, inst->entity_id),
        .subject = host->pool_strdup(pool, name_id),
        .tenant = NULL,
        .attributes = attributes,
        .assertion_id = assertion_id,
        .authn_instant = authn_instant,
        .expires_at = expires,
    };
    if (identity_r->issuer == NULL || identity_r->subject == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "saml: out of memory");
    /* at the ACS: what single logout will name this sign-in by */
    if (expect != NULL)
        return saml_session_refs(inst, pool, a, identity_r, err);
    return MANDATE_OK;
}

mandate_rc saml_replay_claim(const saml_inst *inst, const char *key, const char *id,
                             int64_t until, mandate_rc replayed_rc, const char *what,
                             mandate_error *err)
{
    const mandate_host *host = inst->host;
    mandate_error rerr = {0};
    mandate_rc rc = host->replay_claim(host, inst->replay_ns, key, until, &rerr);
    if (rc == MANDATE_EXISTS)
        return mandate_error_set(err, replayed_rc,
                                 "saml: %s replayed: ID \"%s\" was already used", what, Q(id));
    if (rc != MANDATE_OK)
        return mandate_error_set(err, rc == MANDATE_TEMPFAIL ? MANDATE_TEMPFAIL : MANDATE_ERROR,
                                 "saml: replay check failed: %s", rerr.message);
    return MANDATE_OK;
}

mandate_rc saml_decode_and_validate(const saml_inst *inst, mandate_pool *pool,
                                    const char *text, size_t len, const char *what,
                                    saml_expect *expect, mandate_identity *identity_r,
                                    mandate_error *err)
{
    if (text == NULL || len == 0)
        return mandate_error_set(err, MANDATE_DENIED, "saml: empty %s", what);
    size_t max = (size_t)inst->max_assertion_size;
    /* Base64 of max bytes, with room for padding and line breaks. */
    if (len > max / 3 * 4 + max / 38 + 8)
        return mandate_error_set(
            err, MANDATE_DENIED,
            "saml: %s is %zu bytes encoded, more than max_assertion_size "
            "(%zu) allows",
            what, len, max);
    unsigned char *xml = malloc(len / 4 * 3 + 3);
    if (xml == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "saml: out of memory");
    size_t bad = 0;
    long n = saml_b64_decode(text, len, xml, &bad);
    mandate_rc rc;
    if (n < 0) {
        rc = mandate_error_set(err, MANDATE_DENIED,
                               "saml: %s is not base64url (bad byte at offset %zu)", what, bad);
        goto out;
    }
    if ((size_t)n > max) {
        rc = mandate_error_set(err, MANDATE_DENIED,
                               "saml: %s is %ld bytes, more than max_assertion_size (%zu)", what,
                               n, max);
        goto out;
    }
    if (n == 0 || xml[0] != '<') {
        /* Skip a UTF-8 byte order mark and leading space before deciding. */
        size_t i = (n >= 3 && xml[0] == 0xef && xml[1] == 0xbb && xml[2] == 0xbf) ? 3 : 0;
        while (i < (size_t)n &&
               (xml[i] == ' ' || xml[i] == '\t' || xml[i] == '\r' || xml[i] == '\n'))
            i++;
        if (i >= (size_t)n || xml[i] != '<') {
            rc = mandate_error_set(err, MANDATE_DENIED,
                                   "saml: %s does not decode to XML (not base64url of a SAML "
                                   "%s)",
                                   what, expect != NULL ? "Response" : "assertion");
            goto out;
        }
    }
    xmlDocPtr doc = saml_parse_xml((const char *)xml, (size_t)n, NULL, what, MANDATE_DENIED, err);
    if (doc == NULL) {
        rc = err != NULL ? err->rc : MANDATE_DENIED;
        goto out;
    }
    rc = validate_doc(inst, pool, doc, expect, identity_r, err);
    xmlFreeDoc(doc);
out:
    free(xml);
    return rc;
}

static mandate_rc saml_validate_assertion(void *inst_, mandate_pool *pool,
                                          const char *token_type, const char *assertion,
                                          size_t len, mandate_identity *identity_r,
                                          mandate_error *err)
{
    const saml_inst *inst = inst_;
    if (inst == NULL || inst->host == NULL || identity_r == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "saml: instance not instantiated");
    if (token_type != NULL && strcmp(token_type, TOKEN_TYPE_SAML2) != 0)
        return mandate_error_set(err, MANDATE_NEXT, "saml: token type \"%s\" is not SAML 2.0",
                                 Q(token_type));
    return saml_decode_and_validate(inst, pool, assertion, len, "assertion", NULL, identity_r,
                                    err);
}

/* --- plugin ------------------------------------------------------------------------------ */

static void saml_destroy(void *inst_)
{
    saml_inst *inst = inst_;
    if (inst == NULL)
        return;
    free_keys(inst);
    free(inst->entity_id);
    inst->entity_id = NULL;
    free(inst->replay_ns);
    inst->replay_ns = NULL;
    free(inst->sso_url);
    inst->sso_url = NULL;
    free(inst->slo_url);
    inst->slo_url = NULL;
    free(inst->slo_response_url);
    inst->slo_response_url = NULL;
    inst->idp_wants_signed_requests = false;
    saml_sp_destroy(inst);
}

static mandate_rc saml_instantiate(void *inst_, const mandate_host *host, mandate_error *err)
{
    saml_inst *inst = inst_;
    if (mandate_plugin_host_check(host, "saml", err) != MANDATE_OK)
        return MANDATE_ERROR;
    if (inst->idp_metadata == NULL || inst->idp_metadata[0] == '\0')
        return mandate_error_set(err, MANDATE_INVALID, "saml: idp_metadata is required");
    if (inst->sp_entity_id == NULL || inst->sp_entity_id[0] == '\0')
        return mandate_error_set(err, MANDATE_INVALID, "saml: sp_entity_id is required");
    /* clock_skew's and max_assertion_size's bounds are saml_conf's, checked by the core */
    pthread_once(&xmlsec_once, xmlsec_init_once);
    if (xmlsec_failure != NULL)
        return mandate_error_set(err, MANDATE_ERROR, "saml: %s", xmlsec_failure);
    inst->host = host;
    mandate_rc rc = load_metadata(inst, err);
    if (rc == MANDATE_OK)
        rc = saml_sp_instantiate(inst, err);
    if (rc != MANDATE_OK) {
        saml_destroy(inst);
        inst->host = NULL;
        return rc;
    }
    mandate_log_debug(host,
                      "saml: IdP \"%s\" from %s, %zu signing certificate(s), audience \"%s\", "
                      "clock skew %" PRId64 " s, replay check %s",
                      Q(inst->entity_id), inst->idp_metadata, inst->n_keys,
                      Q(inst->sp_entity_id), inst->clock_skew,
                      inst->replay_check ? "on" : "off");
    return MANDATE_OK;
}

static const mandate_conf_def saml_conf[] = {
    {"idp_metadata", MANDATE_CONF_PATH, MANDATE_CONF_REQUIRED,
     offsetof(saml_inst, idp_metadata), NULL, 0, 0, NULL,
     "the IdP's SAML metadata file: its entityID and signing certificates"},
    {"sp_entity_id", MANDATE_CONF_STRING, MANDATE_CONF_REQUIRED,
     offsetof(saml_inst, sp_entity_id), NULL, 0, 0, NULL,
     "our SAML entity ID: every AudienceRestriction must name it"},
    {"clock_skew", MANDATE_CONF_INT, 0, offsetof(saml_inst, clock_skew), "60", 0, 600, NULL,
     "seconds of clock difference tolerated in the assertion's times"},
    {"replay_check", MANDATE_CONF_BOOL, 0, offsetof(saml_inst, replay_check), "true", 0, 0,
     NULL, "accept an assertion ID once until the assertion expires"},
    {"max_assertion_size", MANDATE_CONF_INT, 0, offsetof(saml_inst, max_assertion_size),
     "262144", MAX_SIZE_MIN, MAX_SIZE_MAX, NULL, "bytes: the largest assertion XML accepted"},
    {"recipient", MANDATE_CONF_STRING, 0, offsetof(saml_inst, recipient), NULL, 0, 0, NULL,
     "the Recipient the bearer SubjectConfirmationData must name; unset: not checked"},
    {"allow_response", MANDATE_CONF_BOOL, 0, offsetof(saml_inst, allow_response), "true", 0, 0,
     NULL, "accept a Response around the assertion, as well as a bare Assertion"},
    /* sign-in: the service provider (sp-login.c) */
    {"sp_key", MANDATE_CONF_PATH, MANDATE_CONF_SECRET, offsetof(saml_inst, sp_key_file), NULL,
     0, 0, NULL,
     "our private key (PEM): signs AuthnRequests, decrypts encrypted assertions"},
    {"sp_certificate", MANDATE_CONF_PATH, 0, offsetof(saml_inst, sp_certificate_file), NULL, 0,
     0, NULL, "the certificate of sp_key (PEM), published in our SP metadata"},
    {"sp_next_key", MANDATE_CONF_PATH, MANDATE_CONF_SECRET,
     offsetof(saml_inst, sp_next_key_file), NULL, 0, 0, NULL,
     "key rollover: the next private key, tried for decryption too"},
    {"sp_next_certificate", MANDATE_CONF_PATH, 0, offsetof(saml_inst, sp_next_certificate_file),
     NULL, 0, 0, NULL, "key rollover: the next certificate, published beside sp_certificate"},
    {"sign_authn_requests", MANDATE_CONF_BOOL, 0, offsetof(saml_inst, sign_authn_requests),
     "false", 0, 0, NULL,
     "sign every AuthnRequest (they are signed anyway when the IdP's metadata says "
     "WantAuthnRequestsSigned)"},
    {"nameid_format", MANDATE_CONF_STRING, 0, offsetof(saml_inst, nameid_format),
     "urn:oasis:names:tc:SAML:2.0:nameid-format:transient", 0, 0, NULL,
     "the NameID format asked for and published in our SP metadata"},
    {"idp_initiated_client", MANDATE_CONF_STRING, 0, offsetof(saml_inst, idp_initiated_client),
     NULL, 0, 0, NULL,
     "accept unsolicited (IdP-initiated) responses, for this client only; unset: refused"},
    {"idp_initiated_resource", MANDATE_CONF_STRING, 0,
     offsetof(saml_inst, idp_initiated_resource), NULL, 0, 0, NULL,
     "the resource (a target's audience) an IdP-initiated sign-in is for"},
    /* single logout (sp-logout.c) */
    {"logout_require_signature", MANDATE_CONF_BOOL, 0,
     offsetof(saml_inst, logout_require_signature), "true", 0, 0, NULL,
     "refuse the IdP's LogoutRequest and LogoutResponse unless signed (SigAlg and Signature "
     "of the HTTP-Redirect binding)"},
    MANDATE_CONF_END};

static const char *const saml_assertion_types[] = {TOKEN_TYPE_SAML2, NULL};

static const mandate_backend_ops saml_ops = {
    .authenticate_client = NULL,
    .assertion_types = saml_assertion_types,
    .validate_assertion = saml_validate_assertion,
    .provision = NULL,
    .status = NULL,
    .login_start = saml_login_start,
    .login_finish = saml_login_finish,
    .login_metadata = saml_login_metadata,
    .logout_start = saml_logout_start,
    .logout_finish = saml_logout_finish,
};

MANDATE_PLUGIN(saml, MANDATE_BACKEND, PACKAGE_VERSION, 0, saml_inst, saml_conf,
               saml_instantiate, saml_destroy, &saml_ops);
