/* Client certificates of mutual TLS (RFC 8705): reading one as a TLS
 * stack or a proxy hands it over (DER, PEM, nginx's URL-escaped PEM), its
 * SHA-256 thumbprint (x5t#S256), whether it is the one a client
 * registered (tls_client_auth: a subject DN or a SAN; self-signed: the
 * certificate, its key or its thumbprint), and its chain to the
 * configured trust anchors. X.509 is OpenSSL's to parse: nothing here
 * reads DER by hand. */
#ifndef MANDATE_CLIENT_CERT_H
#define MANDATE_CLIENT_CERT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <openssl/x509.h>

/* The largest certificate believed, PEM or DER (a client certificate is
 * 1-2 KiB; a chain of a few fits too), and the largest URL-escaped PEM
 * (each byte may come as %XX). */
#define MANDATE_CLIENT_CERT_MAX (16 * 1024)
#define MANDATE_CLIENT_CERT_ESCAPED_MAX (3 * MANDATE_CLIENT_CERT_MAX)

/* base64url(SHA-256(DER)) is 43 characters */
#define MANDATE_CERT_THUMBPRINT_LEN 43

X509 *mandate_cert_from_der(const unsigned char *der, size_t len);
/* The first certificate of a PEM text (NULL: none, or over the bound). */
X509 *mandate_cert_from_pem(const char *pem, size_t len);
/* A PEM certificate as nginx's $ssl_client_escaped_cert gives it (percent
 * escapes; a '+' stays a '+'). NULL with *why_r when it is over the bound,
 * badly escaped or not a certificate. */
X509 *mandate_cert_from_escaped_pem(const char *text, size_t len, const char **why_r);

/* RFC 8705 §3.1: base64url(SHA-256(DER)). */
bool mandate_cert_thumbprint(X509 *cert, char out[MANDATE_CERT_THUMBPRINT_LEN + 1]);

/* The registration of a client by certificate, a JSON object of its
 * metadata or attributes:
 *   tls_client_auth: exactly one of tls_client_auth_subject_dn (RFC 4514,
 *     compared without case and without spaces around ',' and '='),
 *     tls_client_auth_san_dns (without case), _san_uri, _san_ip (as
 *     addresses, v4 or v6) and _san_email (RFC 8705 §2.1.2);
 *   self_signed_tls_client_auth: jwks (a key with x5c: its first
 *     certificate, byte for byte; without: its public key) or
 *     tls_client_auth_x5t_s256 (the certificate's thumbprint).
 * true when the certificate is the registered one; false with *why_r. */
bool mandate_cert_matches_name(X509 *cert, const json_t *registration, const char **why_r);
bool mandate_cert_matches_self_signed(X509 *cert, const json_t *registration,
                                      const char **why_r);

/* Trust anchors from a PEM text of CA certificates (NULL: none read). */
X509_STORE *mandate_cert_anchors(const char *pem, size_t len);
/* Whether cert chains to anchors, through untrusted (may be NULL): the
 * intermediate certificates the client sent; for a TLS client. */
bool mandate_cert_chain_verified(X509_STORE *anchors, X509 *cert, STACK_OF(X509) *untrusted,
                                 const char **why_r);

#endif
