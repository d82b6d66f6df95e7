#include "config.h"

#include "endpoints-private.h"
#include "keys-private.h"
#include "log-private.h"

void mandate_endpoint_healthz(mandate_http_request *req, mandate_http_response *resp)
{
    mandate_http_response_json(req, resp, 200, json_pack("{s:s}", "status", "ok"));
    mandate_http_response_header(resp, "Cache-Control", "no-store");
}

/* Ready when the store answers. */
void mandate_endpoint_readyz(mandate_http_request *req, mandate_http_response *resp)
{
    void *store = NULL;
    const mandate_store_ops *ops = mandate_runtime_store(req->runtime, &store);
    mandate_error err = {0};
    mandate_rc rc = ops != NULL ? ops->ping(store, &err) : MANDATE_ERROR;
    if (rc == MANDATE_OK && !mandate_keyring_ready(req->runtime)) {
        mandate_http_response_json(
            req, resp, 503, json_pack("{s:s,s:s,s:s}", "status", "not ready", "store", "ok",
                                      "keys", "no signing key loaded"));
    } else if (rc == MANDATE_OK) {
        mandate_http_response_json(req, resp, 200,
                                   json_pack("{s:s,s:s}", "status", "ready", "store", "ok"));
    } else {
        log_warning("not ready: store: %s", err.message);
        /* the store's message stays in the log: it may name paths or hosts */
        mandate_http_response_json(
            req, resp, 503, json_pack("{s:s,s:s}", "status", "not ready", "store", "unreachable"));
    }
    mandate_http_response_header(resp, "Cache-Control", "no-store");
}
