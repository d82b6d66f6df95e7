/* Per-client rate limits of the endpoints: which rate applies to a client
 * (its own, else the configured default) and the 429 answer. The buckets
 * belong to the process: a reload changes the rates at once but does not
 * refill anyone's bucket. Until mandate_client_limits_start, nothing is
 * limited (mandatectl, unit tests). */
#ifndef MANDATE_CLIENT_LIMITS_PRIVATE_H
#define MANDATE_CLIENT_LIMITS_PRIVATE_H

#include <stdbool.h>
#include <mandate/store.h>

#include "http-private.h"
#include "metrics-private.h"

void mandate_client_limits_start(size_t buckets);
void mandate_client_limits_stop(void);

/* Takes one request of client_id on endpoint ep (MANDATE_EP_TOKEN,
 * MANDATE_EP_GATEWAY, or MANDATE_EP_AUTHORIZE: the token endpoint's rate
 * in buckets of their own, client_id then naming the client and the
 * address). client (may be NULL) gives its own rate and burst.
 * true: go on. false: over the limit; *retry_after_r holds the seconds to
 * wait, and the metrics and the log have it; the caller answers 429 and
 * audits. */
bool mandate_client_limits_take(mandate_http_request *req, mandate_metric_endpoint ep,
                                const char *client_id, const mandate_client *client,
                                unsigned *retry_after_r);

/* Whether mandate_client_limits_take would let the request go on, taking
 * nothing (a caller about to do something costly, such as fetching a
 * client document, for a request that the limit will refuse anyway). */
bool mandate_client_limits_peek(mandate_http_request *req, mandate_metric_endpoint ep,
                                const char *client_id, const mandate_client *client);

/* The bucket of client_id's requests from the request's address (an IPv6
 * one's /64), "CLIENT from ADDRESS": for what anyone may send in a
 * client's name (a public client, a sign-in start); request memory. */
const char *mandate_client_limits_address_key(mandate_http_request *req, const char *client_id);

/* The bucket (for MANDATE_EP_AUTHORIZE) that the sign-ins started from the
 * request's address at all the clients that described themselves (a
 * document, a registration) share: "* from ADDRESS" (review s35, finding
 * 4); request memory. */
const char *mandate_client_limits_self_described_key(mandate_http_request *req);

/* 429 with Retry-After and an RFC 6749 style body. */
void mandate_client_limits_respond(mandate_http_request *req, mandate_http_response *resp,
                                   unsigned retry_after);

#endif
