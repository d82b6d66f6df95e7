/* EncryptedAssertion and EncryptedID (SAML core §2.2.4, §2.3.4), as ADFS
 * and Entra ID send them when the SP publishes an encryption key: XML
 * Encryption with xmlsec's library and the SP's private keys.
 *
 * Before xmlsec sees it, the shape is checked: one xenc:EncryptedData of
 * Type Element, an allowed block cipher (AES-128/256 in CBC or GCM), its
 * ciphertext inline (no CipherReference: nothing is fetched), its KeyInfo
 * holding one xenc:EncryptedKey under RSA-OAEP (never RSA PKCS#1 v1.5:
 * Bleichenbacher), itself inline. The EncryptedKey's own KeyInfo (a hint
 * naming our certificate, in forms xmlsec may not read) is dropped: every
 * SP key is tried in turn, the current one first. What it decrypts to must
 * be exactly one element of the expected name; it takes the wrapper's
 * place, and the caller checks it as if it had come in plain (the
 * assertion must carry its own signature). */
#include "config.h"

#include <string.h>

#include <libxml/tree.h>
#include <xmlsec/xmlenc.h>
#include <xmlsec/xmlsec.h>

#include "saml-internal.h"

#define TYPE_ELEMENT NS_XENC "Element"

static const char *const block_algorithms[] = {
    NS_XENC "aes128-cbc",
    NS_XENC "aes256-cbc",
    "http://www.w3.org/2009/xmlenc11#aes128-gcm",
    "http://www.w3.org/2009/xmlenc11#aes256-gcm",
    NULL,
};
static const char *const key_transport_algorithms[] = {
    NS_XENC "rsa-oaep-mgf1p",
    "http://www.w3.org/2009/xmlenc11#rsa-oaep",
    NULL,
};

/* The one element child of el, or NULL when there are none or several. */
static xmlNode *only_element(const xmlNode *el)
{
    xmlNode *found = NULL;
    for (xmlNode *c = el->children; c != NULL; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (found != NULL)
            return NULL;
        found = c;
    }
    return found;
}

/* Inline ciphertext: CipherData holding one CipherValue. */
static bool inline_cipher(const xmlNode *el)
{
    size_t n;
    xmlNode *cd = saml_child_el(el, NS_XENC, "CipherData", &n);
    xmlNode *only = cd != NULL && n == 1 ? only_element(cd) : NULL;
    return saml_is_el(only, NS_XENC, "CipherValue");
}

/* The decrypted element was parsed in the wrapper's context, so its nodes
 * may point at the wrapper's namespace declarations: those move onto the
 * element, the very same xmlNs structures, before the wrapper is freed. Not
 * xmlReconciliateNs: it rebinds every node to whichever in-scope prefix has
 * the same URI (an EncryptedID's dsig:KeyInfo became ds:KeyInfo beside the
 * assertion's ds:Signature), which changes the canonical form the
 * assertion's signature covers. A prefix the element declares itself
 * shadows the wrapper's, so no node of it points at that one. */
static void adopt_namespaces(xmlNode *wrapper, xmlNode *el)
{
    xmlNs **tail = &el->nsDef;
    while (*tail != NULL)
        tail = &(*tail)->next;
    for (xmlNs **link = &wrapper->nsDef; *link != NULL;) {
        xmlNs *ns = *link;
        bool shadowed = false;
        for (const xmlNs *own = el->nsDef; own != NULL && !shadowed; own = own->next)
            shadowed = xmlStrEqual(own->prefix, ns->prefix);
        if (shadowed) {
            link = &ns->next;
            continue;
        }
        *link = ns->next;
        ns->next = NULL;
        *tail = ns;
        tail = &ns->next;
    }
}

mandate_rc saml_decrypt(const saml_inst *inst, xmlNode *wrapper, const char *ns,
                        const char *name, xmlNode **out_r, mandate_error *err)
{
    const char *what = (const char *)wrapper->name;
    xmlNode *ed = only_element(wrapper);
    if (!saml_is_el(ed, NS_XENC, "EncryptedData"))
        return mandate_error_set(err, MANDATE_DENIED,
                                 "saml: the %s holds something else than one EncryptedData "
                                 "(a detached EncryptedKey is not supported)",
                                 what);
    char *type = saml_attr(ed, "Type");
    bool element = type == NULL || strcmp(type, TYPE_ELEMENT) == 0;
    xmlFree(type);
    if (!element)
        return mandate_error_set(err, MANDATE_DENIED,
                                 "saml: the %s's EncryptedData is not of Type Element", what);
    if (saml_check_algorithm(ed, NS_XENC, "EncryptionMethod", block_algorithms, what, "cipher",
                             "AES-128/256, CBC or GCM", err) != MANDATE_OK)
        return MANDATE_DENIED;
    if (!inline_cipher(ed))
        return mandate_error_set(err, MANDATE_DENIED,
                                 "saml: the %s's ciphertext is not inline (CipherValue)", what);
    size_t n;
    xmlNode *ki = saml_child_el(ed, NS_DS, "KeyInfo", &n);
    xmlNode *ek = ki != NULL && n == 1 ? only_element(ki) : NULL;
    if (!saml_is_el(ek, NS_XENC, "EncryptedKey"))
        return mandate_error_set(err, MANDATE_DENIED,
                                 "saml: the %s's KeyInfo is not one EncryptedKey", what);
    if (saml_check_algorithm(ek, NS_XENC, "EncryptionMethod", key_transport_algorithms, what,
                             "key transport", "RSA-OAEP", err) != MANDATE_OK)
        return MANDATE_DENIED;
    if (!inline_cipher(ek))
        return mandate_error_set(err, MANDATE_DENIED,
                                 "saml: the %s's EncryptedKey is not inline (CipherValue)", what);
    /* the key hint goes: our keys are tried anyway, and xmlsec would try to
     * resolve it */
    for (xmlNode *c = saml_child_el(ek, NS_DS, "KeyInfo", NULL); c != NULL;
         c = saml_child_el(ek, NS_DS, "KeyInfo", NULL)) {
        xmlUnlinkNode(c);
        xmlFreeNode(c);
    }

    bool decrypted = false;
    for (size_t i = 0; i < 2 && !decrypted; i++) {
        if (inst->sp_keys[i].mngr == NULL)
            continue;
        xmlSecEncCtxPtr ctx = xmlSecEncCtxCreate(inst->sp_keys[i].mngr);
        if (ctx == NULL)
            return mandate_error_set(err, MANDATE_ERROR, "saml: out of memory");
        /* same-document or nothing: a CipherReference or RetrievalMethod
         * never reaches a file or the network */
        ctx->transformCtx.enabledUris = xmlSecTransformUriTypeNone;
        ctx->keyInfoReadCtx.retrievalMethodCtx.enabledUris = xmlSecTransformUriTypeNone;
        ctx->keyInfoReadCtx.maxEncryptedKeyLevel = 1;
        decrypted = xmlSecEncCtxDecrypt(ctx, ed) == 0 && ctx->result != NULL &&
                    ctx->resultReplaced;
        xmlSecEncCtxDestroy(ctx);
    }
    if (!decrypted)
        return mandate_error_set(err, MANDATE_DENIED,
                                 "saml: the %s does not decrypt with our key%s (encrypted to "
                                 "another key, or altered)",
                                 what, inst->sp_keys[1].mngr != NULL ? "s" : "");
    xmlNode *el = only_element(wrapper);
    if (!saml_is_el(el, ns, name))
        return mandate_error_set(err, MANDATE_DENIED,
                                 "saml: the %s decrypts to something else than one %s", what,
                                 name);
    /* the element takes the wrapper's place */
    xmlUnlinkNode(el);
    if (xmlAddPrevSibling(wrapper, el) == NULL) {
        xmlFreeNode(el);
        return mandate_error_set(err, MANDATE_ERROR, "saml: out of memory");
    }
    adopt_namespaces(wrapper, el);
    xmlUnlinkNode(wrapper);
    xmlFreeNode(wrapper);
    *out_r = el;
    return MANDATE_OK;
}
