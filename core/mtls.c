/* Mutual TLS in the core: mtls-private.h. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "config-private.h"
#include "issue-private.h"
#include "log-private.h"
#include "mtls-private.h"
#include "oauth-private.h"
#include "peer-private.h"
#include "pool-private.h"
#include "runtime-private.h"
#include "util-private.h"

#define TLS_CLIENT_AUTH "tls_client_auth"
#define SELF_SIGNED_TLS_CLIENT_AUTH "self_signed_tls_client_auth"
/* a CA file is a few certificates */
#define CLIENT_CA_FILE_MAX (256 * 1024)

static bool mtls_offered(const mandate_config *cfg)
{
    return (cfg->tls_certificate != NULL && cfg->tls_client_ca != NULL) ||
           cfg->client_certificate_header != NULL;
}

/* The certificates of Mandate's own TLS session, copied into the pool. */
static bool session_cert(mandate_http_request *req, mandate_mtls_cert *c)
{
    const unsigned char *ders[MANDATE_MTLS_CHAIN_MAX];
    size_t lens[MANDATE_MTLS_CHAIN_MAX];
    size_t n = mandate_http_request_peer_certificates(req, ders, lens, MANDATE_MTLS_CHAIN_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char *copy = mandate_pool_alloc(req->pool, lens[i] ? lens[i] : 1);
        memcpy(copy, ders[i], lens[i]);
        c->der[i] = copy;
        c->der_len[i] = lens[i];
    }
    c->count = n;
    c->source = "tls";
    return n > 0;
}

mandate_mtls_outcome mandate_mtls_request_cert(mandate_http_request *req,
                                               const mandate_mtls_cert **cert_r,
                                               const char **why_r)
{
    if (req->client_cert != NULL) {
        *cert_r = req->client_cert;
        return MANDATE_MTLS_PRESENT;
    }
    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    mandate_mtls_cert *c = mandate_pool_alloc(req->pool, sizeof(*c));
    memset(c, 0, sizeof(*c));
    X509 *leaf = NULL;
    const char *header = cfg->client_certificate_header
                             ? mandate_http_request_header(req, cfg->client_certificate_header)
                             : NULL;
    /* only the proxies that terminate the clients' TLS and set the header
     * themselves; any other hop passes a client's own */
    char *const *forwarders = cfg->client_certificate_proxies != NULL
                                  ? cfg->client_certificate_proxies
                                  : cfg->trusted_proxies;
    /* such a proxy's own certificate on its connection to Mandate (nginx
     * proxy_ssl_certificate, a mesh sidecar) is never its clients': theirs
     * is the header, or none */
    bool from_forwarder =
        cfg->client_certificate_header != NULL &&
        mandate_peer_trusted((const struct sockaddr *)&req->socket_peer, forwarders);
    if (!from_forwarder && session_cert(req, c)) {
        leaf = mandate_cert_from_der(c->der[0], c->der_len[0]);
        if (leaf == NULL) {
            *why_r = "the TLS client certificate is not one";
            return MANDATE_MTLS_REFUSED;
        }
    } else if (header != NULL) {
        if (!from_forwarder) {
            *why_r = "a client certificate header from an address that is not a trusted proxy";
            return MANDATE_MTLS_REFUSED;
        }
        if (mandate_http_request_header_count(req, cfg->client_certificate_header) > 1) {
            *why_r = "more than one client certificate header";
            return MANDATE_MTLS_REFUSED;
        }
        if (header[0] == '\0')
            return MANDATE_MTLS_NONE; /* nginx: no certificate came */
        leaf = mandate_cert_from_escaped_pem(header, strlen(header), why_r);
        if (leaf == NULL)
            return MANDATE_MTLS_REFUSED;
        unsigned char *der = NULL;
        int len = i2d_X509(leaf, &der);
        if (len <= 0) {
            X509_free(leaf);
            *why_r = "the forwarded client certificate could not be encoded";
            return MANDATE_MTLS_REFUSED;
        }
        unsigned char *copy = mandate_pool_alloc(req->pool, (size_t)len);
        memcpy(copy, der, (size_t)len);
        OPENSSL_free(der);
        c->der[0] = copy;
        c->der_len[0] = (size_t)len;
        c->count = 1;
        c->source = "proxy";
    } else {
        return MANDATE_MTLS_NONE;
    }
    bool ok = mandate_cert_thumbprint(leaf, c->x5t_s256);
    X509_free(leaf);
    if (!ok) {
        *why_r = "the client certificate's thumbprint could not be made";
        return MANDATE_MTLS_REFUSED;
    }
    req->client_cert = c;
    *cert_r = c;
    return MANDATE_MTLS_PRESENT;
}

bool mandate_mtls_token_request(mandate_http_request *req, mandate_http_response *resp,
                                const char *grant_type)
{
    const mandate_mtls_cert *c;
    const char *why = NULL;
    if (mandate_mtls_request_cert(req, &c, &why) != MANDATE_MTLS_REFUSED)
        return true;
    log_info("client certificate refused at the token endpoint: %s", why);
    mandate_oauth_error oerr;
    mandate_oauth_fail(&oerr, 401, "invalid_client", "the client certificate is refused");
    oerr.reason = why;
    mandate_token_refuse(req, resp, &oerr, grant_type, NULL, NULL);
    return false;
}

/* The client's registration by certificate: its metadata, with its
 * attributes over it (mandatectl client create/set keeps it there); a new
 * reference, never NULL. */
static json_t *registration_of(const mandate_client *client)
{
    json_t *meta = client->metadata ? json_loads(client->metadata, 0, NULL) : NULL;
    json_t *attrs = client->attributes ? json_loads(client->attributes, 0, NULL) : NULL;
    if (!json_is_object(meta)) {
        json_decref(meta);
        meta = json_object();
    }
    if (json_is_object(attrs))
        json_object_update(meta, attrs);
    json_decref(attrs);
    return meta;
}

const char *mandate_mtls_client_method(const mandate_client *client)
{
    json_t *reg = registration_of(client);
    const char *m = json_string_value(json_object_get(reg, "token_endpoint_auth_method"));
    const char *out = m == NULL                                     ? NULL
                      : strcmp(m, TLS_CLIENT_AUTH) == 0             ? TLS_CLIENT_AUTH
                      : strcmp(m, SELF_SIGNED_TLS_CLIENT_AUTH) == 0 ? SELF_SIGNED_TLS_CLIENT_AUTH
                                                                    : NULL;
    json_decref(reg);
    return out;
}

/* The request's chain to server.tls.client_ca. */
static bool chain_verified(mandate_http_request *req, const mandate_mtls_cert *c, X509 *leaf,
                           const char **why_r)
{
    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    char *pem = NULL;
    size_t len = 0;
    mandate_error err = {0};
    if (cfg->tls_client_ca == NULL) {
        *why_r = "no trust anchors are configured for client certificates (server.tls.client_ca)";
        return false;
    }
    if (mandate_read_file(cfg->tls_client_ca, CLIENT_CA_FILE_MAX, &pem, &len, &err) !=
        MANDATE_OK) {
        log_error("server.tls.client_ca: %s", err.message);
        *why_r = "the trust anchors for client certificates could not be read";
        return false;
    }
    X509_STORE *anchors = mandate_cert_anchors(pem, len);
    free(pem);
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    for (size_t i = 1; untrusted != NULL && i < c->count; i++) {
        X509 *x = mandate_cert_from_der(c->der[i], c->der_len[i]);
        if (x != NULL && !sk_X509_push(untrusted, x))
            X509_free(x);
    }
    bool ok = mandate_cert_chain_verified(anchors, leaf, untrusted, why_r);
    sk_X509_pop_free(untrusted, X509_free);
    X509_STORE_free(anchors);
    return ok;
}

bool mandate_mtls_client_authenticate(mandate_http_request *req, const mandate_client *client,
                                      const char **why_r)
{
    const char *method = mandate_mtls_client_method(client);
    const mandate_mtls_cert *c;
    if (method == NULL) {
        *why_r = "the client does not authenticate by certificate";
        return false;
    }
    mandate_mtls_outcome out = mandate_mtls_request_cert(req, &c, why_r);
    if (out == MANDATE_MTLS_NONE)
        *why_r = "no client certificate came";
    if (out != MANDATE_MTLS_PRESENT)
        return false;
    X509 *leaf = mandate_cert_from_der(c->der[0], c->der_len[0]);
    json_t *reg = registration_of(client);
    bool ok = leaf != NULL;
    if (!ok)
        *why_r = "the client certificate is not one";
    else if (strcmp(method, TLS_CLIENT_AUTH) == 0)
        ok = mandate_cert_matches_name(leaf, reg, why_r) && chain_verified(req, c, leaf, why_r);
    else
        ok = mandate_cert_matches_self_signed(leaf, reg, why_r);
    json_decref(reg);
    X509_free(leaf);
    if (ok)
        log_info("Credentials validated: client_id=%s method=%s certificate=%s (%s)",
                 client->client_id, method, c->x5t_s256, c->source);
    return ok;
}

const char *mandate_mtls_binding(mandate_http_request *req, const mandate_client *client)
{
    const mandate_mtls_cert *c;
    const char *why;
    if (mandate_mtls_request_cert(req, &c, &why) != MANDATE_MTLS_PRESENT)
        return NULL;
    json_t *reg = registration_of(client);
    json_t *v = json_object_get(reg, "tls_client_certificate_bound_access_tokens");
    bool bind = json_is_boolean(v) ? json_is_true(v) : mandate_mtls_client_method(client) != NULL;
    json_decref(reg);
    return bind ? mandate_pool_strdup(req->pool, c->x5t_s256) : NULL;
}

bool mandate_mtls_request_holds(mandate_http_request *req, const char *x5t)
{
    const mandate_mtls_cert *c;
    const char *why;
    return x5t != NULL && mandate_mtls_request_cert(req, &c, &why) == MANDATE_MTLS_PRESENT &&
           strcmp(c->x5t_s256, x5t) == 0;
}

const char *mandate_mtls_endpoint_alias(const mandate_http_request *req, const char *path)
{
    const char *base_url = mandate_runtime_config(req->runtime)->mtls_base_url;
    if (base_url == NULL)
        return NULL;
    size_t base = strlen(base_url);
    while (base > 0 && base_url[base - 1] == '/')
        base--;
    return mandate_pool_printf(req->pool, "%.*s%s", (int)base, base_url, path);
}

void mandate_mtls_metadata(const mandate_http_request *req, json_t *doc)
{
    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    if (!mtls_offered(cfg))
        return;
    static const char *const lists[] = {"token_endpoint_auth_methods_supported",
                                        "introspection_endpoint_auth_methods_supported",
                                        "revocation_endpoint_auth_methods_supported"};
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
        json_t *a = json_object_get(doc, lists[i]);
        if (json_is_array(a)) {
            json_array_append_new(a, json_string(TLS_CLIENT_AUTH));
            json_array_append_new(a, json_string(SELF_SIGNED_TLS_CLIENT_AUTH));
        }
    }
    /* RFC 8705 §3.3 */
    json_object_set_new(doc, "tls_client_certificate_bound_access_tokens", json_true());
    if (cfg->mtls_base_url != NULL) {
        /* RFC 8705 §5: where a client with a certificate calls */
        static const char *const aliases[][2] = {
            {"token_endpoint", "/oauth2/token"},
            {"introspection_endpoint", "/oauth2/introspect"},
            {"revocation_endpoint", "/oauth2/revoke"},
            {"pushed_authorization_request_endpoint", "/oauth2/par"}};
        json_t *o = json_object();
        for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
            if (json_object_get(doc, aliases[i][0]) != NULL) /* PAR: with sign-in only */
                json_object_set_new(o, aliases[i][0],
                                    json_string(mandate_mtls_endpoint_alias(req, aliases[i][1])));
        json_object_set_new(doc, "mtls_endpoint_aliases", o);
    }
}
