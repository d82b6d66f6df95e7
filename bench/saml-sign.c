/* bench/saml-sign: many signed SAML assertions for bench/run's token exchange
 * case, in one process. Debian's xmlsec1 command (tests/saml/make-assertions.sh)
 * signs 40 to 70 assertions a second, a process each; a run of the sweep
 * needs thousands, all within their five minutes of validity. This signs
 * them with the same library (libxmlsec1, OpenSSL), a few thousand a second.
 *
 *   saml-sign TEMPLATE KEY CERT OUTDIR FIRST N
 *
 * TEMPLATE: an assertion as make-assertions.sh makes it, with an empty
 * signature template (DigestValue, SignatureValue and X509Data empty) and
 * "@ID@" wherever its ID goes (bench/run makes it from one assertion that
 * xmlsec1 signed). For i in FIRST .. FIRST+N-1, writes OUTDIR/bench-i.b64:
 * the assertion with the ID "_b<random><i>", signed (enveloped, exclusive
 * c14n, RSA-SHA256 with KEY, CERT in KeyInfo), base64url without padding,
 * one line; as make-assertions.sh writes its bench-i.b64.
 * Built by bench/run: cc bench/saml-sign.c $(pkg-config --cflags --libs xmlsec1).
 *
 * For the Assertion Consumer Service (bench/saml-acs): the template may be a
 * Response around the assertion (the assertion is the node signed, found by
 * its ID); with SAML_SIGN_IRT=FILE, "@IRT@" takes line i-FIRST of FILE (the
 * IDs of the AuthnRequests outstanding, one a line); with SAML_SIGN_FORM=1,
 * the output is standard base64 with padding, as an HTTP-POST binding's
 * SAMLResponse is.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <xmlsec/crypto.h>
#include <xmlsec/xmldsig.h>
#include <xmlsec/xmlsec.h>
#include <xmlsec/xmltree.h>

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 ||
        !(buf = malloc((size_t)n + 1)) || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "saml-sign: cannot read %s\n", path);
        exit(1);
    }
    fclose(f);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

/* TEMPLATE with every occurrence of mark ("@ID@") replaced by id; malloc'd */
static char *with_id(const char *tpl, const char *mark, const char *id, size_t *len)
{
    size_t count = 0, idlen = strlen(id), mlen = strlen(mark);
    for (const char *p = tpl; (p = strstr(p, mark)); p += mlen)
        count++;
    char *out = malloc(strlen(tpl) + count * idlen + 1), *o = out;
    if (!out)
        exit(1);
    for (const char *p = tpl, *q; *p; p = q + mlen) {
        q = strstr(p, mark);
        if (!q) {
            strcpy(o, p);
            o += strlen(p);
            break;
        }
        memcpy(o, p, (size_t)(q - p));
        o += q - p;
        memcpy(o, id, idlen);
        o += idlen;
    }
    *o = '\0';
    *len = (size_t)(o - out);
    return out;
}

/* the element whose ID attribute is id: the root or below it */
static xmlNodePtr with_id_attr(xmlNodePtr n, const char *id)
{
    for (; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE)
            continue;
        xmlChar *v = xmlGetProp(n, BAD_CAST "ID");
        int same = v && strcmp((const char *)v, id) == 0;
        xmlFree(v);
        if (same)
            return n;
        xmlNodePtr c = with_id_attr(n->children, id);
        if (c)
            return c;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: saml-sign TEMPLATE KEY CERT OUTDIR FIRST N\n");
        return 2;
    }
    size_t tlen;
    char *tpl = read_file(argv[1], &tlen);
    long first = atol(argv[5]), n = atol(argv[6]);
    unsigned char rnd[6];
    char tag[13];
    RAND_bytes(rnd, sizeof rnd);
    for (int i = 0; i < 6; i++)
        snprintf(tag + 2 * i, 3, "%02x", rnd[i]);

    xmlInitParser();
    if (xmlSecInit() < 0 || xmlSecCryptoAppInit(NULL) < 0 || xmlSecCryptoInit() < 0) {
        fprintf(stderr, "saml-sign: xmlsec did not initialise\n");
        return 1;
    }
    xmlSecKeyPtr key = xmlSecCryptoAppKeyLoad(argv[2], xmlSecKeyDataFormatPem, NULL, NULL, NULL);
    if (!key || xmlSecCryptoAppKeyCertLoad(key, argv[3], xmlSecKeyDataFormatPem) < 0) {
        fprintf(stderr, "saml-sign: cannot load %s and %s\n", argv[2], argv[3]);
        return 1;
    }
    FILE *irts = NULL;
    const char *irt_file = getenv("SAML_SIGN_IRT");
    if (irt_file && !(irts = fopen(irt_file, "r"))) {
        fprintf(stderr, "saml-sign: cannot read %s\n", irt_file);
        return 1;
    }
    int form = getenv("SAML_SIGN_FORM") && strcmp(getenv("SAML_SIGN_FORM"), "1") == 0;
    for (long i = first; i < first + n; i++) {
        char id[64], path[4096], irt[300] = "";
        size_t len;
        snprintf(id, sizeof id, "_b%s%07ld", tag, i);
        if (irts && !fgets(irt, sizeof irt, irts)) {
            fprintf(stderr, "saml-sign: %s has fewer than %ld lines\n", irt_file, n);
            return 1;
        }
        irt[strcspn(irt, "\r\n")] = '\0';
        char *xml0 = with_id(tpl, "@IRT@", irt, &len);
        char *xml = with_id(xml0, "@ID@", id, &len);
        free(xml0);
        xmlDocPtr doc = xmlReadMemory(xml, (int)len, "assertion.xml", NULL, XML_PARSE_NONET);
        xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
        xmlNodePtr signed_node = root ? with_id_attr(root, id) : NULL;
        xmlAttrPtr attr = signed_node ? xmlHasProp(signed_node, BAD_CAST "ID") : NULL;
        if (!attr) {
            fprintf(stderr, "saml-sign: the template has no element with the ID @ID@\n");
            return 1;
        }
        xmlAddID(NULL, doc, BAD_CAST id, attr);
        xmlNodePtr sig = xmlSecFindNode(signed_node, xmlSecNodeSignature, xmlSecDSigNs);
        xmlSecDSigCtxPtr ctx = xmlSecDSigCtxCreate(NULL);
        if (!sig || !ctx || !(ctx->signKey = xmlSecKeyDuplicate(key)) ||
            xmlSecDSigCtxSign(ctx, sig) < 0) {
            fprintf(stderr, "saml-sign: signing failed\n");
            return 1;
        }
        xmlSecDSigCtxDestroy(ctx);
        xmlBufferPtr buf = xmlBufferCreate();
        xmlNodeDump(buf, doc, root, 0, 0);
        const xmlChar *c = xmlBufferContent(buf);
        int clen = xmlBufferLength(buf);
        /* with the newline that ends make-assertions.sh's files */
        unsigned char *in = malloc((size_t)clen + 1), *b64 = malloc(((size_t)clen + 3) / 3 * 4 + 8);
        if (!in || !b64)
            return 1;
        memcpy(in, c, (size_t)clen);
        in[clen] = '\n';
        int blen = EVP_EncodeBlock(b64, in, clen + 1);
        while (!form && blen > 0 && b64[blen - 1] == '=')
            blen--;
        for (int k = 0; !form && k < blen; k++)
            b64[k] = b64[k] == '+' ? '-' : b64[k] == '/' ? '_' : b64[k];
        snprintf(path, sizeof path, "%s/bench-%ld.b64", argv[4], i);
        FILE *f = fopen(path, "w");
        if (!f || fwrite(b64, 1, (size_t)blen, f) != (size_t)blen || fclose(f) != 0) {
            fprintf(stderr, "saml-sign: cannot write %s\n", path);
            return 1;
        }
        free(in);
        free(b64);
        xmlBufferFree(buf);
        xmlFreeDoc(doc);
        free(xml);
    }
    if (irts)
        fclose(irts);
    xmlSecKeyDestroy(key);
    xmlSecCryptoShutdown();
    xmlSecCryptoAppShutdown();
    xmlSecShutdown();
    xmlCleanupParser();
    free(tpl);
    return 0;
}
