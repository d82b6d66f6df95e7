/* GET /metrics: the Prometheus text exposition (metrics.enabled). No client
 * id, path or token is ever a label, so it tells nobody who uses the broker.
 * The one exception is the peer addresses that caused the most refused
 * requests (mandate_refusals_by_address_total, at most BUSIEST_SHOWN of
 * them): what an operator under attack looks for first. Put it behind the
 * network's access control. */
#include "config.h"

#include <string.h>

#include "endpoints-private.h"
#include "grant-table-private.h"
#include "metrics-private.h"
#include "pool-private.h"
#include "refusals-private.h"
#include "runtime-private.h"

#define BUSIEST_SHOWN 10

static char *busiest_addresses(mandate_pool *pool)
{
    char addresses[BUSIEST_SHOWN][MANDATE_PEER_MAX];
    uint64_t counts[BUSIEST_SHOWN];
    size_t n = mandate_refusals_busiest(addresses, counts, BUSIEST_SHOWN);
    char *out = "# HELP mandate_refusals_by_address_total Refused requests caused by the peer "
                "addresses that caused the most of them since the start (at most 10; a count "
                "may be over by the smallest one shown).\n"
                "# TYPE mandate_refusals_by_address_total counter\n";
    /* an address's text is digits, letters a-f, dots and colons: nothing to
     * escape in a label value */
    for (size_t i = 0; i < n; i++)
        out = mandate_pool_printf(pool, "%smandate_refusals_by_address_total{address=\"%s\"} %llu\n",
                                  out, addresses[i], (unsigned long long)counts[i]);
    return out;
}

void mandate_endpoint_metrics(mandate_http_request *req, mandate_http_response *resp)
{
    if (!mandate_runtime_config(req->runtime)->metrics_enabled) {
        mandate_http_response_error(req, resp, 404, "not_found", "metrics are turned off");
        return;
    }
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    resp->body = mandate_pool_printf(
        req->pool, "%s%s",
        mandate_metrics_render(req->pool, mandate_grant_table_metric_labels()),
        busiest_addresses(req->pool));
    resp->body_len = strlen(resp->body);
    mandate_http_response_header(resp, "Cache-Control", "no-store");
}
