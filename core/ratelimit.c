#include "config.h"

#include <limits.h>
#include <math.h> /* isnan, INFINITY: macros; nothing from libm, which is not linked */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "ratelimit-private.h"
#include "siphash-private.h"
#include "util-private.h"

#define WAYS 8
#define CACHE_LINE 64
#define US_PER_S 1e6
/* Many small refills add up to a hair under a whole token: this much short
 * still counts as one. */
#define TOKEN_SLACK 1e-9

typedef struct bucket {
    uint64_t tag[2]; /* SipHash-2-4-128 of the key */
    double tokens;   /* as of last_us */
    int64_t last_us; /* the latest call (never moves back) */
    int64_t full_us; /* when tokens reach burst at the latest call's rate: idle from then on */
} bucket;

typedef struct set {
    _Alignas(CACHE_LINE) pthread_mutex_t lock;
    unsigned char used; /* buckets[0..used) hold keys; none is ever emptied */
    unsigned char cap;  /* at most WAYS; the sets' caps add up to max_buckets */
    bucket buckets[WAYS];
} set;

struct mandate_ratelimit {
    uint64_t hash_key[2];
    size_t nsets;
    set *sets;
    atomic_size_t held;
};

/* --- the table */

mandate_ratelimit *mandate_ratelimit_new(size_t max_buckets)
{
    size_t max = max_buckets ? max_buckets : 1;
    mandate_ratelimit *rl = mandate_xcalloc(1, sizeof(*rl));
    if (RAND_bytes((unsigned char *)rl->hash_key, sizeof(rl->hash_key)) != 1)
        mandate_die("no randomness for the rate limiter's hash key");
    rl->nsets = max / WAYS + (max % WAYS != 0);
    if (rl->nsets > SIZE_MAX / sizeof(set))
        mandate_die("rate limiter of %zu buckets is too large", max);
    rl->sets = aligned_alloc(CACHE_LINE, rl->nsets * sizeof(set));
    if (rl->sets == NULL)
        mandate_die("out of memory allocating %zu rate limit buckets", max);
    memset(rl->sets, 0, rl->nsets * sizeof(set));
    for (size_t i = 0; i < rl->nsets; i++) {
        /* max spread evenly: caps differ by one at most, none over WAYS */
        rl->sets[i].cap = (unsigned char)(max / rl->nsets + (i < max % rl->nsets));
        pthread_mutex_init(&rl->sets[i].lock, NULL);
    }
    atomic_init(&rl->held, 0);
    return rl;
}

void mandate_ratelimit_free(mandate_ratelimit **rlp)
{
    mandate_ratelimit *rl = *rlp;
    if (rl == NULL)
        return;
    for (size_t i = 0; i < rl->nsets; i++)
        pthread_mutex_destroy(&rl->sets[i].lock);
    free(rl->sets);
    OPENSSL_cleanse(rl->hash_key, sizeof(rl->hash_key));
    free(rl);
    *rlp = NULL;
}

size_t mandate_ratelimit_size(mandate_ratelimit *rl)
{
    return atomic_load_explicit(&rl->held, memory_order_relaxed);
}

/* The bucket to give a key that is not in s (s locked): a free one, else
 * the one full soonest (an idle one is full already; it stands for no
 * bucket), the least recently used of those. */
static bucket *claim(mandate_ratelimit *rl, set *s)
{
    if (s->used < s->cap) {
        atomic_fetch_add_explicit(&rl->held, 1, memory_order_relaxed);
        return &s->buckets[s->used++];
    }
    bucket *victim = &s->buckets[0];
    for (unsigned i = 1; i < s->used; i++) {
        bucket *b = &s->buckets[i];
        if (b->full_us < victim->full_us ||
            (b->full_us == victim->full_us && b->last_us < victim->last_us))
            victim = b;
    }
    return victim;
}

/* from + us, saturating */
static int64_t add_us(int64_t from, double us)
{
    if (us >= 0x1p62)
        return INT64_MAX;
    int64_t d = (int64_t)(us + 0.5);
    return from > INT64_MAX - d ? INT64_MAX : from + d;
}

/* s rounded up, at least 1, at most UINT_MAX (a hair over a whole second,
 * float rounding, is that second) */
static unsigned whole_seconds(double s)
{
    s -= TOKEN_SLACK;
    if (s <= 1)
        return 1;
    if (s >= (double)UINT_MAX)
        return UINT_MAX;
    unsigned whole = (unsigned)s;
    return whole + (whole < s);
}

/* key's bucket in its set (locked by the caller), NULL when none. */
static bucket *find(set *s, const uint64_t tag[2])
{
    for (unsigned i = 0; i < s->used; i++)
        if (s->buckets[i].tag[0] == tag[0] && s->buckets[i].tag[1] == tag[1])
            return &s->buckets[i];
    return NULL;
}

/* The tokens of a busy bucket at now_us, refilled at rate up to burst. */
static double tokens_at(const bucket *b, int64_t now_us, double rate, double burst)
{
    double elapsed_us = 0;
    if (now_us > b->last_us) {
        /* no overflow: the difference of two int64 fits in a uint64 */
        elapsed_us = (double)((uint64_t)now_us - (uint64_t)b->last_us);
    }
    double tokens = b->tokens + elapsed_us * rate / US_PER_S;
    return tokens > burst ? burst : tokens;
}

bool mandate_ratelimit_peek(mandate_ratelimit *rl, const char *key, double rate, double burst,
                            int64_t now_us)
{
    if (key == NULL || isnan(rate) || isnan(burst))
        return false;
    if (rate <= 0 || rate == INFINITY || burst == INFINITY)
        return true;
    uint64_t tag[2];
    mandate_siphash128(rl->hash_key, (const unsigned char *)key, strlen(key), tag);
    set *s = &rl->sets[tag[0] % rl->nsets];
    pthread_mutex_lock(&s->lock);
    const bucket *b = find(s, tag);
    bool left = b == NULL || now_us >= b->full_us ||
                tokens_at(b, now_us, rate, burst < 1 ? 1 : burst) >= 1 - TOKEN_SLACK;
    pthread_mutex_unlock(&s->lock);
    return left;
}

bool mandate_ratelimit_take(mandate_ratelimit *rl, const char *key, double rate, double burst,
                            int64_t now_us, unsigned *retry_after_s)
{
    if (key == NULL || isnan(rate) || isnan(burst)) {
        if (retry_after_s != NULL)
            *retry_after_s = 1;
        return false;
    }
    if (rate <= 0 || rate == INFINITY || burst == INFINITY)
        return true;
    if (burst < 1)
        burst = 1;

    uint64_t tag[2];
    mandate_siphash128(rl->hash_key, (const unsigned char *)key, strlen(key), tag);
    set *s = &rl->sets[tag[0] % rl->nsets];

    pthread_mutex_lock(&s->lock);
    bucket *b = find(s, tag);
    double tokens;
    if (b == NULL || now_us >= b->full_us) {
        /* no bucket, or an idle one: the same thing, a full bucket */
        if (b == NULL) {
            b = claim(rl, s);
            b->tag[0] = tag[0];
            b->tag[1] = tag[1];
            b->last_us = now_us;
        }
        tokens = burst;
    } else {
        tokens = tokens_at(b, now_us, rate, burst);
    }
    if (now_us > b->last_us)
        b->last_us = now_us;

    bool allowed = tokens >= 1 - TOKEN_SLACK;
    if (allowed)
        tokens = tokens > 1 ? tokens - 1 : 0;
    else if (retry_after_s != NULL)
        *retry_after_s = whole_seconds((1 - tokens) / rate);
    b->tokens = tokens;
    b->full_us = add_us(b->last_us, (burst - tokens) / rate * US_PER_S);
    pthread_mutex_unlock(&s->lock);
    return allowed;
}
