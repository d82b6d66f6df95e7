#include "config.h"

#include <mandate/backend.h>

#include "endpoints-private.h"
#include "keys-private.h"
#include "log-private.h"
#include "plugins-private.h"
#include "runtime-private.h"

void mandate_endpoint_healthz(mandate_http_request *req, mandate_http_response *resp)
{
    mandate_http_response_json(req, resp, 200, json_pack("{s:s}", "status", "ok"));
    mandate_http_response_header(resp, "Cache-Control", "no-store");
}

/* The state of each backend that reports one (ABI 1.3), for /readyz. An
 * upstream IdP that cannot be reached does not make the broker unready:
 * client credentials and every other IdP still work, and a load balancer
 * taking every node out over one IdP would turn a partial outage into a
 * whole one. The state is shown here, the plugin logs its failed fetches,
 * and requests that need the IdP get 503 on their own. NULL when no backend reports. */
static json_t *backend_states(mandate_http_request *req)
{
    json_t *out = NULL;
    for (size_t i = 0; i < mandate_runtime_instance_count(req->runtime); i++) {
        const mandate_instance *in = mandate_runtime_instance(req->runtime, i);
        const char *detail;
        const char *state = mandate_backend_status(in, req->pool, &detail);
        if (state == NULL)
            continue;
        json_t *entry = json_pack("{s:s}", "state", state);
        if (detail != NULL)
            json_object_set_new(entry, "detail", json_string(detail));
        if (out == NULL)
            out = json_object();
        json_object_set_new(out, in->conf->name, entry);
    }
    return out;
}

/* Ready when the store answers and a signing key is loaded. */
void mandate_endpoint_readyz(mandate_http_request *req, mandate_http_response *resp)
{
    mandate_error err = {0};
    mandate_rc rc = mandate_store_ping(mandate_runtime_store(req->runtime), &err);
    int status = 200;
    json_t *body;
    if (rc == MANDATE_OK && !mandate_keyring_ready(req->runtime)) {
        status = 503;
        body = json_pack("{s:s,s:s,s:s}", "status", "not ready", "store", "ok", "keys",
                         "no signing key loaded");
    } else if (rc == MANDATE_OK) {
        body = json_pack("{s:s,s:s}", "status", "ready", "store", "ok");
    } else {
        log_warning("not ready: store: %s", err.message);
        /* the store's message stays in the log: it may name paths or hosts */
        status = 503;
        body = json_pack("{s:s,s:s}", "status", "not ready", "store", "unreachable");
    }
    json_t *backends = backend_states(req);
    if (backends != NULL)
        json_object_set_new(body, "backends", backends);
    mandate_http_response_json(req, resp, status, body);
    mandate_http_response_header(resp, "Cache-Control", "no-store");
}
