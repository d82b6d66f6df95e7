/* What the federated grants share (the token exchange, the SAML and JWT
 * bearer grants, the ID-JAGs): a subject token of someone else's, vouched
 * for by the backend that accepts it and, once mapped, the grant the
 * mapping rules make of it; and how the audit trail names all that. One
 * floor below the grant files, so that they depend on it and not on each
 * other. */
#ifndef MANDATE_FEDERATION_PRIVATE_H
#define MANDATE_FEDERATION_PRIVATE_H

#include <stdbool.h>

#include <jansson.h>
#include <mandate/backend.h>
#include <mandate/store.h>

#include "cnf-binding-private.h"
#include "form-private.h"
#include "http-private.h"
#include "mapping-private.h"
#include "plugins-private.h"

/* A federated subject token: the backend that vouched for it, what it says
 * and, once mapped, the grant the mapping rules make of it. */
typedef struct mandate_federated {
    const char *token_type;
    const mandate_instance *backend;
    mandate_identity id;
    /* the token's cnf (a JWT's), held by the request: the new token's too */
    mandate_cnf cnf;
    mandate_mapping_result mapped;
} mandate_federated;

/* The backend that accepts the token (of token_type) and its identity; a
 * JWT bound by cnf only with its key or certificate (cnf-binding-private.h).
 * false: refused, answered and audited. */
bool mandate_federated_validate(mandate_http_request *req, mandate_http_response *resp,
                                const mandate_client *client, const char *grant_type,
                                const char *token_type, const char *assertion,
                                mandate_federated *fed_r);
/* The same, then the mapping rules, with the request's scope and
 * requested_audience (space-separated, may be NULL). */
bool mandate_federated_map(mandate_http_request *req, mandate_http_response *resp,
                           const mandate_form *form, const mandate_client *client,
                           const char *grant_type, const char *token_type,
                           const char *assertion, const char *requested_audience,
                           mandate_federated *fed_r);
/* What the audit trail says of a federated request; any of backend, id and
 * m may be NULL. */
json_t *mandate_federated_fields(const char *token_type, const mandate_instance *backend,
                                 const mandate_identity *id, const mandate_mapping_result *m);

#endif
