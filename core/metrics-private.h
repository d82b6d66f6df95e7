/* Process-wide metrics for GET /metrics, in the Prometheus text exposition
 * format 0.0.4. Counters and histograms live for the life of the process
 * (a SIGHUP reload keeps them). Recording is lock-free (atomics) and
 * allocation-free: it sits on every request's path.
 *
 * Label values come from fixed sets (endpoints, grant types, results), so
 * the number of series is bounded: no client id or path goes into a label. */
#ifndef MANDATE_METRICS_PRIVATE_H
#define MANDATE_METRICS_PRIVATE_H

#include <stdint.h>

#include "http-guard-private.h"
#include "pool-private.h"
#include "token-cache-private.h"

typedef enum mandate_metric_endpoint {
    MANDATE_EP_TOKEN,
    MANDATE_EP_INTROSPECT,
    MANDATE_EP_REVOKE,
    MANDATE_EP_GATEWAY,
    MANDATE_EP_JWKS,
    MANDATE_EP_METADATA,
    MANDATE_EP_HEALTH,
    MANDATE_EP_METRICS,
    MANDATE_EP_AUTHORIZE, /* GET /oauth2/authorize and its chooser */
    MANDATE_EP_SIGNIN,    /* the IdP callbacks, consent, logout */
    MANDATE_EP_REGISTER,
    MANDATE_EP_OTHER,
    MANDATE_EP_COUNT_
} mandate_metric_endpoint;

/* The grant_type label of a request is a slot: "none" (not a token
 * request, or no grant_type), "other" (a grant_type the broker does not
 * have), or one of the grants of the token endpoint's table
 * (grant-table-private.h), which numbers its rows from
 * MANDATE_METRICS_GRANT_FIRST and names them when the metrics are rendered:
 * these metrics know no grant. A slot beyond the last counts as "other". */
#define MANDATE_METRICS_GRANT_NONE 0u
#define MANDATE_METRICS_GRANT_OTHER 1u
#define MANDATE_METRICS_GRANT_FIRST 2u
#define MANDATE_METRICS_GRANT_SLOTS 16u

/* The endpoint a request path belongs to. */
mandate_metric_endpoint mandate_metrics_endpoint_of(const char *path);

/* One finished request: its endpoint, grant slot, HTTP status (the result
 * label is the status class and, for 4xx/5xx, the status: "2xx", "401", ...)
 * and how long it took in microseconds (latency histogram per endpoint). */
void mandate_metrics_request(mandate_metric_endpoint ep, unsigned grant, unsigned status,
                             int64_t duration_us);
/* A token issued, by format plugin name ("jwt", "opaque", other: "other"). */
void mandate_metrics_token_issued(const char *format_plugin);
/* A request refused by a rate limit. */
void mandate_metrics_rate_limited(mandate_metric_endpoint ep);
/* One audit fsync (or group commit) and how long it took. */
void mandate_metrics_audit_fsync(int64_t duration_us);
/* A store call that failed (TEMPFAIL or ERROR). */
void mandate_metrics_store_error(void);
/* What the cache of checked tokens answered for one of our tokens presented
 * to the broker: introspection, the gateway check, revocation, a token
 * exchange's subject token (tokens.check_cache above 0). */
void mandate_metrics_token_check_cache(mandate_token_cache_answer answer);

/* A connection the HTTP server closed to protect the others (its peer
 * held too many, or it was too slow to send its request). */
void mandate_metrics_connection_closed(mandate_http_guard_reason reason);

/* A refused request (refusals-private.h): written to the audit trail,
 * counted into a record of identical ones, or over its address's budget. */
typedef enum mandate_refusal_metric {
    MANDATE_REFUSAL_METRIC_RECORDED,
    MANDATE_REFUSAL_METRIC_COALESCED,
    MANDATE_REFUSAL_METRIC_OVER_BUDGET,
    MANDATE_REFUSAL_METRIC_COUNT_
} mandate_refusal_metric;
void mandate_metrics_refusal(mandate_refusal_metric what);

/* The whole exposition, in pool. grant_labels (NULL-terminated, or NULL)
 * name the grant slots from MANDATE_METRICS_GRANT_FIRST on; the requests of
 * a slot without a name are shown as "other". */
char *mandate_metrics_render(mandate_pool *pool, const char *const *grant_labels);

/* Back to zero (tests only). */
void mandate_metrics_reset(void);

#endif
