/* GET /metrics: the Prometheus text exposition (metrics.enabled). No client
 * id, path or token is ever a label, so it tells nobody who uses the broker;
 * put it behind the network's access control all the same. */
#include "config.h"

#include <string.h>

#include "endpoints-private.h"
#include "metrics-private.h"

void mandate_endpoint_metrics(mandate_http_request *req, mandate_http_response *resp)
{
    if (!mandate_runtime_config(req->runtime)->metrics_enabled) {
        mandate_http_response_error(req, resp, 404, "not_found", "metrics are turned off");
        return;
    }
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    resp->body = mandate_metrics_render(req->pool);
    resp->body_len = strlen(resp->body);
    mandate_http_response_header(resp, "Cache-Control", "no-store");
}
