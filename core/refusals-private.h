/* What a refused request may cost the broker. Anyone can send requests
 * that are refused (a wrong client secret, a malformed form, a gateway
 * check with a bad token), and each was written to the audit trail, so one
 * client could fill the disk (1.4 MB/s measured) and, with a trail that
 * cannot be written, turn every grant into a 503. So:
 *
 * - A budget per peer address (the socket's, or that of the client
 *   behind a trusted proxy; an IPv6 one's /64): rate_limit.refusal_rate refused
 *   requests a second, refusal_burst at once. Only refusals spend it: an
 *   address over it still gets every request that succeeds (many agents
 *   share one NAT or gateway), and its refusals are answered 429 with
 *   Retry-After instead, before the audit write.
 * - Repeated identical refusals from one address within a second are one
 *   record: the first is written at once, the others are counted and
 *   written as one record with "count" at the end of the second (from the
 *   daemon's housekeeping, once a second). Refusals over the budget are
 *   counted the same way, per address and event. So every refusal is
 *   accounted for: a trail's refusals are the sum of "count" (1 where
 *   absent). Identical means the same event, address and fields, leaving
 *   out what names the presented token (its jti or hash prefix), which an
 *   attacker would vary for nothing.
 *
 * Counted in mandate_refusals_total{result} and, per address, in
 * mandate_refusals_by_address_total{address} for the busiest few (a
 * bounded table: the space-saving count of Metwally et al., so an address
 * that refuses often is always among them, whatever else passes). Until
 * mandate_refusals_start, refusals are written as they come and nothing is
 * limited (mandatectl, unit tests). */
#ifndef MANDATE_REFUSALS_PRIVATE_H
#define MANDATE_REFUSALS_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "http-private.h"

/* The address the request comes from: the socket's peer, or the client
 * behind a trusted proxy (server.trusted_proxies); see peer-private.h. */
const char *mandate_request_peer(mandate_http_request *req);
/* What the limits per address count the request under (memory from its
 * pool): its address, an IPv6 one by its /64 (mandate_peer_limit_key). */
const char *mandate_request_limit_key(mandate_http_request *req);

void mandate_refusals_start(size_t buckets);
/* Writes every count still held, then forgets everything. */
void mandate_refusals_stop(void);
/* Writes the counts of the seconds that have ended (housekeeping). */
void mandate_refusals_flush(void);

typedef enum mandate_refusal_verdict {
    MANDATE_REFUSAL_RECORDED,    /* answer as refused: its record is written or counted */
    MANDATE_REFUSAL_OVER_BUDGET, /* answer 429 after *retry_after_r seconds (counted) */
    MANDATE_REFUSAL_UNRECORDED,  /* the trail cannot take it: answer 503 */
} mandate_refusal_verdict;

/* A refused request's audit record (fields: stolen; "peer" is added). */
mandate_refusal_verdict mandate_refusal_record(mandate_http_request *req, const char *event,
                                               json_t *fields, unsigned *retry_after_r);

/* Whether the request's address has no refusal left in its budget now
 * (its next refusal would be answered 429), spending none: for a caller
 * about to do something costly that such an address often gets refused
 * (fetching a client document it names). */
bool mandate_refusal_budget_spent(mandate_http_request *req);

/* 429 with Retry-After, for a refusal over its address's budget. */
void mandate_refusal_respond_over_budget(mandate_http_request *req, mandate_http_response *resp,
                                         unsigned retry_after);

/* The addresses that caused the most refusals since the start, busiest
 * first, at most max (for /metrics): addresses[i] and counts[i]. A count
 * may be over by at most the smallest count shown. Returns how many. */
size_t mandate_refusals_busiest(char (*addresses)[MANDATE_PEER_MAX], uint64_t *counts,
                                size_t max);

#endif
