#include "config.h"

#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "client-limits-private.h"
#include "log-private.h"
#include "oauth-private.h"
#include "pool-private.h"
#include "ratelimit-private.h"
#include "runtime-private.h"

static _Atomic(mandate_ratelimit *) limiter;

void mandate_client_limits_start(size_t buckets)
{
    mandate_ratelimit *old = atomic_exchange(&limiter, mandate_ratelimit_new(buckets));
    mandate_ratelimit_free(&old);
}

void mandate_client_limits_stop(void)
{
    mandate_ratelimit *old = atomic_exchange(&limiter, NULL);
    mandate_ratelimit_free(&old);
}

static int64_t monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

bool mandate_client_limits_take(mandate_http_request *req, mandate_metric_endpoint ep,
                                const char *client_id, const mandate_client *client,
                                unsigned *retry_after_r)
{
    mandate_ratelimit *rl = atomic_load(&limiter);
    if (rl == NULL || client_id == NULL)
        return true;
    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    double rate;
    double burst;
    if (ep == MANDATE_EP_GATEWAY) {
        rate = (double)cfg->rate_gateway;
        burst = (double)cfg->rate_gateway_burst;
    } else {
        rate = client && client->rate_limit > 0 ? client->rate_limit : (double)cfg->rate_token;
        burst = client && client->rate_burst > 0 ? (double)client->rate_burst
                                                 : (double)cfg->rate_token_burst;
    }
    if (rate <= 0)
        return true;
    /* the gateway, the token endpoint and the sign-in start keep separate
     * buckets */
    char key[400];
    snprintf(key, sizeof(key), "%c:%s",
             ep == MANDATE_EP_GATEWAY     ? 'g'
             : ep == MANDATE_EP_AUTHORIZE ? 'a'
                                          : 't',
             client_id);
    unsigned retry_after = 1;
    if (mandate_ratelimit_take(rl, key, rate, burst, monotonic_us(), &retry_after))
        return true;
    if (retry_after_r != NULL)
        *retry_after_r = retry_after;
    mandate_metrics_rate_limited(ep);
    log_info("rate limited: client_id=%s on %s: over %g requests/s (burst %g); retry after %us",
             client_id,
             ep == MANDATE_EP_GATEWAY     ? "the gateway check"
             : ep == MANDATE_EP_AUTHORIZE ? "the sign-in start"
                                          : "the token endpoint",
             rate, burst, retry_after);
    return false;
}

void mandate_client_limits_respond(mandate_http_request *req, mandate_http_response *resp,
                                   unsigned retry_after)
{
    mandate_oauth_respond_too_many(req, resp, "this client is over its request rate; retry later",
                                   retry_after);
}
