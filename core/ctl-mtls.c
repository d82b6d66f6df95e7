/* mandatectl client create/set: clients that authenticate by certificate
 * (RFC 8705 §2) and certificate-bound tokens (§3). The registration is
 * kept in the client's attributes, where the core reads it
 * (core/mtls.c), beside its metadata when it has some. */
#include "config.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "client-cert.h"
#include "ctl-private.h"
#include "jose.h"
#include "pool-private.h"
#include "util-private.h"

/* the members of the registration, cleared before a new one is set */
static const char *const registration_members[] = {
    "tls_client_auth_subject_dn", "tls_client_auth_san_dns",   "tls_client_auth_san_uri",
    "tls_client_auth_san_ip",     "tls_client_auth_san_email", "tls_client_auth_x5t_s256",
    "jwks",                       NULL};

bool ctl_mtls_option(ctl_mtls *m, int opt, const char *arg)
{
    const char **slots[] = {&m->auth,    &m->subject_dn, &m->san_dns,   &m->san_uri,
                            &m->san_ip,  &m->san_email,  &m->cert_file, &m->x5t_s256};
    int i = opt - CTL_MTLS_OPT_FIRST;
    if (i < 0 || i > 9)
        return false;
    m->any = true;
    if (i < 8)
        *slots[i] = arg;
    else
        m->bound = i == 8;
    return true;
}

/* The JWK of a self-signed certificate's key with the certificate in x5c
 * (RFC 7517 §4.7); NULL said. */
static json_t *certificate_jwk(const char *path)
{
    size_t len = 0;
    char *pem = ctl_read_file("mandatectl", path, MANDATE_CLIENT_CERT_MAX, &len);
    if (pem == NULL)
        return NULL;
    X509 *cert = mandate_cert_from_pem(pem, len);
    free(pem);
    unsigned char *der = NULL;
    int der_len = cert ? i2d_X509(cert, &der) : -1;
    json_t *jwk = cert && der_len > 0 ? mandate_jwk_from_key(X509_get0_pubkey(cert), NULL) : NULL;
    if (jwk == NULL) {
        fprintf(stderr, "mandatectl: %s: not a PEM certificate with a P-256, RSA or Ed25519 key\n",
                path);
    } else {
        char *b64 = malloc(4 * ((size_t)der_len + 2) / 3 + 1);
        EVP_EncodeBlock((unsigned char *)b64, der, der_len);
        json_object_set_new(jwk, "x5c", json_pack("[s]", b64));
        free(b64);
    }
    OPENSSL_free(der);
    X509_free(cert);
    return jwk;
}

char *ctl_mtls_attributes(const ctl_mtls *m, const char *base)
{
    json_t *o = base != NULL ? json_loads(base, 0, NULL) : NULL;
    if (!json_is_object(o)) {
        json_decref(o);
        o = json_object();
    }
    const char *names[] = {m->subject_dn, m->san_dns, m->san_uri, m->san_ip, m->san_email};
    size_t named = 0;
    for (size_t i = 0; i < 5; i++)
        named += names[i] != NULL;
    bool self_signed_given = m->cert_file != NULL || m->x5t_s256 != NULL;
    const char *why = NULL;
    unsigned char ip[16];
    if (m->auth == NULL && (named > 0 || self_signed_given))
        why = "a certificate name or --tls-cert goes with --auth";
    else if (m->auth != NULL && strcmp(m->auth, "tls_client_auth") == 0) {
        if (named != 1 || self_signed_given)
            why = "--auth tls_client_auth takes exactly one of --tls-subject-dn, --tls-san-dns, "
                  "--tls-san-uri, --tls-san-ip, --tls-san-email";
        else if (m->san_ip != NULL && inet_pton(AF_INET, m->san_ip, ip) != 1 &&
                 inet_pton(AF_INET6, m->san_ip, ip) != 1)
            why = "--tls-san-ip takes an IPv4 or IPv6 address";
    } else if (m->auth != NULL && strcmp(m->auth, "self_signed_tls_client_auth") == 0) {
        if (named > 0 || !self_signed_given)
            why = "--auth self_signed_tls_client_auth takes --tls-cert FILE or --tls-cert-sha256 "
                  "THUMBPRINT";
        else if (m->x5t_s256 != NULL && strlen(m->x5t_s256) != MANDATE_CERT_THUMBPRINT_LEN)
            why = "--tls-cert-sha256 takes base64url(SHA-256(DER)), 43 characters";
    } else if (m->auth != NULL) {
        why = "--auth takes tls_client_auth or self_signed_tls_client_auth (a secret is the "
              "default; --public-key for private_key_jwt, --public for none)";
    }
    if (why != NULL) {
        fprintf(stderr, "mandatectl: %s\n", why);
        json_decref(o);
        return NULL;
    }
    if (m->auth != NULL) {
        for (const char *const *r = registration_members; *r != NULL; r++)
            json_object_del(o, *r);
        json_object_set_new(o, "token_endpoint_auth_method", json_string(m->auth));
        static const char *const members[] = {
            "tls_client_auth_subject_dn", "tls_client_auth_san_dns", "tls_client_auth_san_uri",
            "tls_client_auth_san_ip", "tls_client_auth_san_email"};
        for (size_t i = 0; i < 5; i++)
            if (names[i] != NULL)
                json_object_set_new(o, members[i], json_string(names[i]));
        if (m->x5t_s256 != NULL)
            json_object_set_new(o, "tls_client_auth_x5t_s256", json_string(m->x5t_s256));
        if (m->cert_file != NULL) {
            json_t *jwk = certificate_jwk(m->cert_file);
            if (jwk == NULL) {
                json_decref(o);
                return NULL;
            }
            json_object_set_new(o, "jwks", json_pack("{s:[o]}", "keys", jwk));
        }
    }
    if (m->bound >= 0)
        json_object_set_new(o, "tls_client_certificate_bound_access_tokens",
                            json_boolean(m->bound));
    char *out = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return out;
}

int ctl_mtls_set(ctl *c, mandate_runtime *rt, const char *id, const ctl_mtls *m)
{
    const mandate_instance *store = mandate_runtime_store(rt);
    mandate_pool *pool = mandate_pool_new();
    mandate_client cl;
    mandate_error err = {0};
    char *changed = NULL;
    int status = CTL_REFUSED;
    mandate_rc rc = mandate_store_client_get(store, pool, id, &cl, &err);
    if (rc == MANDATE_NOT_FOUND)
        fprintf(stderr, "mandatectl client set: no client '%s'\n", id);
    else if (rc != MANDATE_OK)
        fprintf(stderr, "mandatectl client set: %s\n", err.message);
    else if ((changed = ctl_mtls_attributes(m, cl.attributes)) != NULL) {
        cl.attributes = changed;
        cl.updated_at = 0;
        /* the certificate is now its only credential: the secret or key it
         * had is dropped, so that whoever kept it cannot go on with it */
        const char *dropped = NULL, *secret_backend = NULL;
        if (m->auth != NULL) {
            dropped = cl.public_key != NULL                        ? "private_key_jwt"
                      : cl.secret_hash != NULL || cl.backend != NULL ? "client_secret"
                                                                     : NULL;
            secret_backend = cl.secret_hash == NULL && cl.public_key == NULL ? cl.backend : NULL;
            cl.secret_hash = cl.prev_secret_hash = NULL;
            cl.secret_hash_len = cl.prev_secret_hash_len = 0;
            cl.prev_secret_expires_at = 0;
            cl.public_key = NULL;
            cl.backend = NULL;
        }
        if (mandate_store_client_update(store, &cl, &err) != MANDATE_OK)
            fprintf(stderr, "mandatectl client set: %s\n", err.message);
        else if (ctl_audit("client.updated",
                           json_pack("{s:s,s:s?,s:o?,s:s?}", "client_id", id, "auth", m->auth,
                                     "tls_client_certificate_bound_access_tokens",
                                     m->bound < 0 ? NULL : json_boolean(m->bound),
                                     "credential_dropped", dropped)))
            status = CTL_OK;
        if (status == CTL_OK && !c->json)
            printf("client %s: %s%s%s\n", id, m->auth ? m->auth : "certificate binding",
                   m->bound == 1 ? ", certificate-bound tokens" : m->bound == 0 ? ", bearer tokens" : "",
                   dropped == NULL ? ""
                   : strcmp(dropped, "private_key_jwt") == 0 ? "; its public key is removed"
                                                             : "; its client secret is removed");
        if (status == CTL_OK && secret_backend != NULL)
            fprintf(stderr, "mandatectl: the secret backend %s holds is no longer accepted; "
                            "delete it there\n", secret_backend);
    }
    free(changed);
    mandate_pool_free(&pool);
    return status;
}
