/* libFuzzer harness: client certificates of mutual TLS (lib/client-cert.c).
 *
 * Input: up to three parts split at FUZZ_SEP:
 *   0  a certificate, read both as nginx's URL-escaped PEM (the trusted
 *      proxy's header) and as DER (a TLS session's)
 *   1  a client's registration (JSON): the names of tls_client_auth, the
 *      jwks or thumbprint of self_signed_tls_client_auth, matched against
 *      each certificate read
 *   2  trust anchors (PEM), the certificate's chain checked against them
 * Bounds: inputs longer than MANDATE_CLIENT_CERT_ESCAPED_MAX + 32 KiB are
 * skipped (the readers refuse their own parts past their bounds). */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client-cert.h"
#include "fuzz-common.h"

static void judge(X509 *cert, const json_t *reg, X509_STORE *anchors)
{
    char x5t[MANDATE_CERT_THUMBPRINT_LEN + 1];
    const char *why = NULL;
    if (cert == NULL)
        return;
    (void)mandate_cert_thumbprint(cert, x5t);
    if (reg != NULL) {
        (void)mandate_cert_matches_name(cert, reg, &why);
        (void)mandate_cert_matches_self_signed(cert, reg, &why);
    }
    if (anchors != NULL)
        (void)mandate_cert_chain_verified(anchors, cert, NULL, &why);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MANDATE_CLIENT_CERT_ESCAPED_MAX + 32768)
        return 0;
    fuzz_part parts[3];
    size_t n = fuzz_split(data, size, parts, 3);
    const char *why = NULL;
    X509 *escaped = mandate_cert_from_escaped_pem(parts[0].data, parts[0].len, &why);
    X509 *der = mandate_cert_from_der((const unsigned char *)parts[0].data, parts[0].len);
    json_t *reg = n > 1 ? json_loadb(parts[1].data, parts[1].len, 0, NULL) : NULL;
    X509_STORE *anchors = n > 2 ? mandate_cert_anchors(parts[2].data, parts[2].len) : NULL;
    judge(escaped, reg, anchors);
    judge(der, reg, anchors);
    X509_STORE_free(anchors);
    json_decref(reg);
    X509_free(der);
    X509_free(escaped);
    return 0;
}
