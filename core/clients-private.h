/* Provisioning clients: what mandatectl client does, through the store and
 * the backends, with the checks an operator would expect. */
#ifndef MANDATE_CLIENTS_PRIVATE_H
#define MANDATE_CLIENTS_PRIVATE_H

#include "runtime-private.h"
#include "word-list.h"

#define MANDATE_DEFAULT_SECRET_GRACE 86400

typedef struct mandate_client_spec {
    const char *client_id;      /* NULL: <prefix>-<random> */
    const char *prefix;         /* NULL: "client" */
    const char *tenant;         /* NULL: "default" */
    const char *name;
    const char *scopes;         /* space-separated */
    const char *default_scopes; /* must be among scopes */
    const char *audiences;      /* space-separated absolute URIs */
    const char *token_format;   /* format instance; NULL: the config default */
    const char *backend;        /* backend instance; NULL: the first that provisions */
    const char *public_key_pem; /* private_key_jwt: no secret is made */
    const char *attributes;     /* JSON object for the backend, e.g. {"kms_key_id": ...} */
    int64_t ttl;                /* 0: the config default */
    bool can_introspect;
    double rate_limit;          /* token requests per second; 0: the config default */
    int64_t rate_burst;         /* 0: the config default */
    /* A public client (RFC 6749 §2.1: token_endpoint_auth_method "none"):
     * no credential at all, so no backend, no secret, no key. */
    bool public_client;
    /* RFC 8705 §2: authenticated by its certificate (tls_client_auth or
     * self_signed_tls_client_auth, in attributes): no backend, no secret */
    bool certificate_client;
    const char *metadata;       /* registered metadata (JSON object), checked by the caller */
} mandate_client_spec;

#define MANDATE_CLIENT_RATE_MAX 1000000.0
#define MANDATE_CLIENT_BURST_MAX 1000000

/* Check a spec's settings and turn them into a record without a credential
 * (no backend asked, nothing made): what mandatectl apply compares and
 * updates. */
mandate_rc mandate_clients_settings(mandate_runtime *rt, mandate_pool *pool,
                                    const mandate_client_spec *spec, mandate_client *client_r,
                                    mandate_error *err);
/* Check a spec and turn it into a record with its credential. *secret_r is
 * the secret to show once (NULL for private_key_jwt and public clients). */
mandate_rc mandate_clients_prepare(mandate_runtime *rt, mandate_pool *pool,
                                   const mandate_client_spec *spec, mandate_client *client_r,
                                   char **secret_r, mandate_error *err);
mandate_rc mandate_clients_create(mandate_runtime *rt, mandate_pool *pool,
                                  const mandate_client_spec *spec, mandate_client *client_r,
                                  char **secret_r, mandate_error *err);
/* A new secret; the old one stays valid for grace seconds (0: none).
 * *grace_r is the grace applied: -1 when the backend keeps the old secret
 * itself (secretsmanager: AWSPREVIOUS, until the next rotation). */
mandate_rc mandate_clients_rotate_secret(mandate_runtime *rt, mandate_pool *pool,
                                         const char *client_id, int64_t grace, char **secret_r,
                                         int64_t *grace_r, mandate_error *err);
mandate_rc mandate_clients_set_status(mandate_runtime *rt, const char *client_id,
                                      mandate_client_status status, mandate_error *err);

/* A client's own rate limit on the token endpoint (0: back to the config
 * default). */
mandate_rc mandate_clients_set_rate(mandate_runtime *rt, const char *client_id, double rate,
                                    int64_t burst, mandate_error *err);

#endif
