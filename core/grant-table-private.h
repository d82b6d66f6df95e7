/* The grant types of POST /oauth2/token, one row each: the grant_type value,
 * the grant that handles it, its label in the request metrics and whether
 * the metadata (RFC 8414 grant_types_supported) advertises it. The token
 * endpoint dispatches over it; the metadata and /metrics read it. A new
 * grant is one file (grant-*.c) and one row here. */
#ifndef MANDATE_GRANT_TABLE_PRIVATE_H
#define MANDATE_GRANT_TABLE_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

#include "form-private.h"
#include "http-private.h"

struct mandate_runtime;

typedef void (*mandate_grant_handler)(mandate_http_request *req, mandate_http_response *resp,
                                      const mandate_form *form);

typedef enum mandate_grant_advertised {
    MANDATE_GRANT_ADVERTISED,             /* always */
    MANDATE_GRANT_ADVERTISED_IF_ACCEPTED, /* when an enabled backend accepts one of the
                                         subject token types */
    MANDATE_GRANT_NOT_ADVERTISED,
    MANDATE_GRANT_ADVERTISED_IF_SIGNIN, /* when someone can sign in (a backend offers it) */
} mandate_grant_advertised;

typedef struct mandate_grant_type {
    const char *uri; /* the grant_type parameter */
    mandate_grant_handler handle;
    const char *metric; /* the grant_type label of mandate_http_requests_total */
    mandate_grant_advertised advertised;
    const char *const *subject_token_types; /* NULL-terminated; for IF_ACCEPTED */
} mandate_grant_type;

/* The row for a grant_type value; NULL when the broker has none. */
const mandate_grant_type *mandate_grant_table_find(const char *grant_type);
/* The rows in the order the metadata lists them. */
size_t mandate_grant_table_count(void);
const mandate_grant_type *mandate_grant_table_at(size_t i);

/* Whether runtime's metadata lists the grant. */
bool mandate_grant_table_advertised(const mandate_grant_type *grant,
                                    const struct mandate_runtime *runtime);

/* The grant_type label's slot in the request metrics (metrics-private.h)
 * of a grant_type value: none (NULL), a row's, or other. */
unsigned mandate_grant_table_metric_slot(const char *grant_type);
/* The labels of the rows' slots, for mandate_metrics_render:
 * NULL-terminated, static. */
const char *const *mandate_grant_table_metric_labels(void);

#endif
