#include "config.h"

#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "client-limits-private.h"
#include "log-private.h"
#include "oauth-private.h"
#include "pool-private.h"
#include "ratelimit-private.h"
#include "refusals-private.h"
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

/* The rate, burst and bucket key of client_id on ep (see
 * mandate_client_limits_take); false when nothing is limited. */
static bool bucket_of(const mandate_ratelimit *rl, mandate_http_request *req,
                      mandate_metric_endpoint ep, const char *client_id,
                      const mandate_client *client, double *rate_r, double *burst_r, char *key,
                      size_t key_size)
{
    if (rl == NULL || client_id == NULL)
        return false;
    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    if (ep == MANDATE_EP_GATEWAY) {
        *rate_r = (double)cfg->rate_gateway;
        *burst_r = (double)cfg->rate_gateway_burst;
    } else {
        *rate_r = client && client->rate_limit > 0 ? client->rate_limit : (double)cfg->rate_token;
        *burst_r = client && client->rate_burst > 0 ? (double)client->rate_burst
                                                    : (double)cfg->rate_token_burst;
    }
    if (*rate_r <= 0)
        return false;
    /* the gateway, the token endpoint and the sign-in start keep separate
     * buckets */
    snprintf(key, key_size, "%c:%s",
             ep == MANDATE_EP_GATEWAY     ? 'g'
             : ep == MANDATE_EP_AUTHORIZE ? 'a'
                                          : 't',
             client_id);
    return true;
}

bool mandate_client_limits_peek(mandate_http_request *req, mandate_metric_endpoint ep,
                                const char *client_id, const mandate_client *client)
{
    mandate_ratelimit *rl = atomic_load(&limiter);
    double rate, burst;
    char key[400];
    return !bucket_of(rl, req, ep, client_id, client, &rate, &burst, key, sizeof(key)) ||
           mandate_ratelimit_peek(rl, key, rate, burst, monotonic_us());
}

const char *mandate_client_limits_address_key(mandate_http_request *req, const char *client_id)
{
    return mandate_pool_printf(req->pool, "%s from %s", client_id, mandate_request_limit_key(req));
}

const char *mandate_client_limits_self_described_key(mandate_http_request *req)
{
    /* '*' is no client_id's character (RFC 3986 unreserved only) */
    return mandate_client_limits_address_key(req, "*");
}

bool mandate_client_limits_take(mandate_http_request *req, mandate_metric_endpoint ep,
                                const char *client_id, const mandate_client *client,
                                unsigned *retry_after_r)
{
    mandate_ratelimit *rl = atomic_load(&limiter);
    double rate, burst;
    char key[400];
    if (!bucket_of(rl, req, ep, client_id, client, &rate, &burst, key, sizeof(key)))
        return true;
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
