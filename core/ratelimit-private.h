/* Per-key token buckets (RFC-less, the classic algorithm): each key (a
 * client id) has a bucket of `burst` tokens refilled at `rate` per second;
 * a request takes one, or is refused with the seconds until one is back.
 * Used on the token endpoint and, optionally, the gateway check.
 *
 * Memory stays bounded with a million clients: the table holds at most
 * max_buckets buckets, allocated up front in sets of 8, each set with its
 * own lock; a key always lives in one set (chosen by a keyed hash, so a
 * client cannot pick ids that crowd one set). A bucket that has refilled
 * to full is the same as no bucket, so when a new key finds its set full,
 * an idle (full) bucket is reused first; when all are busy, the one that
 * will be full soonest goes (the one whose loss forgives the fewest
 * tokens), the least recently used of those if several. So a bucket is
 * never lost to newer keys that are nearer full than it is: a client that
 * is refused stays refused however many one-off keys pass through.
 * Keys are kept as a 128-bit keyed hash (SipHash-2-4), not as text: any
 * length, 48 bytes a bucket. Thread-safe; no allocation after _new. */
#ifndef MANDATE_RATELIMIT_PRIVATE_H
#define MANDATE_RATELIMIT_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mandate_ratelimit mandate_ratelimit;

/* max_buckets: the most buckets held at once (0 is taken as 1). */
mandate_ratelimit *mandate_ratelimit_new(size_t max_buckets);
void mandate_ratelimit_free(mandate_ratelimit **rl);

/* Take one token from key's bucket at time now_us (microseconds, monotonic
 * or wall: only differences count; a time before the bucket's last one
 * refills nothing). rate: tokens per second; burst: the bucket's size. A
 * bucket's rate and burst are those of the call (a changed client limit
 * applies at once: the refill since the previous call is at the new rate,
 * and the tokens are capped at the new burst). Returns true when allowed;
 * false when over the limit, with *retry_after_s (may be NULL) the whole
 * seconds, at least 1, until a token is back.
 * rate <= 0 or infinite (or burst infinite) means no limit: always true,
 * no bucket made. burst < 1 is taken as 1. A NULL key or a NaN rate or
 * burst is the caller's bug and is refused (retry after 1 s), no bucket. */
bool mandate_ratelimit_take(mandate_ratelimit *rl, const char *key, double rate, double burst,
                            int64_t now_us, unsigned *retry_after_s);

/* Whether key's bucket has a token left at now_us, as
 * mandate_ratelimit_take would answer, taking none and making no bucket
 * (a caller that must not start something costly for a key already over
 * its limit). */
bool mandate_ratelimit_peek(mandate_ratelimit *rl, const char *key, double rate, double burst,
                            int64_t now_us);

/* Buckets held now, idle ones included (for tests and metrics). */
size_t mandate_ratelimit_size(mandate_ratelimit *rl);

#endif
