#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "audit-events-private.h"
#include "log-private.h"
#include "metrics-private.h"
#include "oauth-private.h"
#include "ratelimit-private.h"
#include "peer-private.h"
#include "pool-private.h"
#include "refusals-private.h"
#include "runtime-private.h"
#include "siphash-private.h"
#include "util-private.h"

#define WINDOW_MS 1000
/* Refusals being counted at once: a direct-mapped table, an entry whose
 * slot another one needs is written out first (so nothing is lost, a busy
 * table only writes more, never less). */
#define SLOTS 4096
/* Addresses tracked for /metrics (mandate_refusals_busiest). */
#define BUSIEST 32
#define EVENT_MAX 48

/* Fields that name the presented token: left out of what makes two
 * refusals the same, else a new garbage token each time is a new record. */
static const char *const token_names[] = {"token_sha256_prefix", "jti", NULL};

typedef struct counting {
    bool used, over_budget;
    uint64_t key[2];
    char event[EVENT_MAX];
    json_t *sample; /* the fields the count's record will carry */
    int64_t since_ms;
    uint64_t count; /* refusals not yet in a record */
} counting;

typedef struct busy_address {
    char peer[MANDATE_PEER_MAX];
    uint64_t count;
} busy_address;

static struct {
    pthread_mutex_t lock;
    bool started;
    mandate_ratelimit *budget;
    uint64_t hash_key[2];
    counting *slots;
    busy_address busiest[BUSIEST];
    size_t busiest_used;
} R = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void mandate_refusals_start(size_t buckets)
{
    pthread_mutex_lock(&R.lock);
    if (!R.started) {
        R.budget = mandate_ratelimit_new(buckets);
        if (RAND_bytes((unsigned char *)R.hash_key, sizeof(R.hash_key)) != 1)
            mandate_die("no randomness for the refusal table's hash key");
        R.slots = mandate_xcalloc(SLOTS, sizeof(counting));
        R.busiest_used = 0;
        R.started = true;
    }
    pthread_mutex_unlock(&R.lock);
}

/* The record a count stands for, taken out of its slot (NULL: nothing to
 * write); the slot is emptied. Under the lock. */
typedef struct owed {
    char event[EVENT_MAX];
    json_t *fields;
} owed;

static bool take_owed(counting *c, owed *o)
{
    bool any = c->used && c->count > 0;
    if (any) {
        memcpy(o->event, c->event, EVENT_MAX);
        o->fields = c->sample;
        json_object_set_new(o->fields, "count", json_integer((json_int_t)c->count));
        if (c->over_budget)
            json_object_set_new(o->fields, "over_budget", json_true());
        c->sample = NULL;
    } else {
        json_decref(c->sample);
        c->sample = NULL;
    }
    c->used = false;
    c->count = 0;
    return any;
}

static void write_owed(owed *o)
{
    /* a count's record is not tied to a response: if it cannot be
     * written, the audit layer has said why in the log */
    mandate_audit_event(o->event, o->fields);
}

static void flush(bool all)
{
    int64_t now = now_ms();
    for (size_t i = 0; i < SLOTS; i++) {
        owed o;
        pthread_mutex_lock(&R.lock);
        bool due =
            R.started && R.slots[i].used && (all || now - R.slots[i].since_ms >= WINDOW_MS);
        bool write = due && take_owed(&R.slots[i], &o);
        pthread_mutex_unlock(&R.lock);
        if (write)
            write_owed(&o);
    }
}

void mandate_refusals_flush(void)
{
    flush(false);
}

void mandate_refusals_stop(void)
{
    flush(true);
    pthread_mutex_lock(&R.lock);
    if (R.started) {
        mandate_ratelimit_free(&R.budget);
        free(R.slots);
        R.slots = NULL;
        R.started = false;
    }
    pthread_mutex_unlock(&R.lock);
}

/* Space-saving count (Metwally, Agrawal, El Abbadi 2005): a new address
 * takes the place of the least counted one, with its count plus one, so
 * any address with more than total/BUSIEST refusals is always held.
 * Under the lock. */
static void count_address(const char *peer)
{
    size_t min = 0;
    for (size_t i = 0; i < R.busiest_used; i++) {
        if (strcmp(R.busiest[i].peer, peer) == 0) {
            R.busiest[i].count++;
            return;
        }
        if (R.busiest[i].count < R.busiest[min].count)
            min = i;
    }
    busy_address *b;
    uint64_t floor = 0;
    if (R.busiest_used < BUSIEST) {
        b = &R.busiest[R.busiest_used++];
    } else {
        b = &R.busiest[min];
        floor = b->count;
    }
    snprintf(b->peer, sizeof(b->peer), "%s", peer);
    b->count = floor + 1;
}

static void key_of(const char *peer, const char *event, const char *what, uint64_t out[2])
{
    size_t lp = strlen(peer), le = strlen(event), lw = strlen(what);
    char *buf = mandate_xmalloc(lp + le + lw + 3);
    memcpy(buf, peer, lp + 1);
    memcpy(buf + lp + 1, event, le + 1);
    memcpy(buf + lp + le + 2, what, lw + 1);
    mandate_siphash128(R.hash_key, (const unsigned char *)buf, lp + le + lw + 3, out);
    free(buf);
}

/* The address the request comes from (peer-private.h): the socket's peer,
 * or the client behind a trusted proxy (server.trusted_proxies), worked
 * out once per request. Here, not in the HTTP layer: which proxies are
 * trusted is configuration, which that layer does not know. */
const char *mandate_request_peer(mandate_http_request *req)
{
    if (req->peer[0] == '\0') {
        char *const *trusted = req->runtime != NULL
                                   ? mandate_runtime_config(req->runtime)->trusted_proxies
                                   : NULL;
        const char *forwarded =
            trusted != NULL ? mandate_http_request_header(req, "X-Forwarded-For") : NULL;
        mandate_peer_resolve((const struct sockaddr *)&req->socket_peer, forwarded, trusted,
                             req->peer);
    }
    return req->peer;
}

const char *mandate_request_limit_key(mandate_http_request *req)
{
    char *key = mandate_pool_alloc(req->pool, MANDATE_PEER_MAX);
    mandate_peer_limit_key(mandate_request_peer(req), key);
    return key;
}

mandate_refusal_verdict mandate_refusal_record(mandate_http_request *req, const char *event,
                                               json_t *fields, unsigned *retry_after_r)
{
    const char *peer = mandate_request_peer(req);
    if (fields == NULL)
        fields = json_object();
    json_object_set_new(fields, "peer", json_string(peer));

    pthread_mutex_lock(&R.lock);
    bool started = R.started;
    pthread_mutex_unlock(&R.lock);
    if (!started || strlen(event) >= EVENT_MAX) {
        mandate_metrics_refusal(MANDATE_REFUSAL_METRIC_RECORDED);
        return mandate_audit_event(event, fields) == MANDATE_OK ? MANDATE_REFUSAL_RECORDED
                                                                : MANDATE_REFUSAL_UNRECORDED;
    }

    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    unsigned retry_after = 0;
    struct timespec wall;
    clock_gettime(CLOCK_MONOTONIC, &wall);
    int64_t now_us = (int64_t)wall.tv_sec * 1000000 + wall.tv_nsec / 1000;
    bool within = cfg->rate_refusals <= 0 ||
                  mandate_ratelimit_take(
                      R.budget, mandate_request_limit_key(req), (double)cfg->rate_refusals,
                      (double)cfg->rate_refusals_burst, now_us, &retry_after);

    /* what makes two refusals the same */
    json_t *sample = json_deep_copy(fields);
    for (const char *const *n = token_names; *n != NULL; n++)
        json_object_del(sample, *n);
    uint64_t key[2];
    if (within) {
        char *text = json_dumps(sample, JSON_COMPACT | JSON_SORT_KEYS);
        key_of(peer, event, text ? text : "", key);
        free(text);
    } else {
        key_of(peer, event, "over the refusal budget", key);
    }

    int64_t now = now_us / 1000;
    owed evicted;
    bool write_evicted = false, counted = false;
    pthread_mutex_lock(&R.lock);
    if (R.started) {
        count_address(peer);
        counting *c = &R.slots[key[0] % SLOTS];
        if (c->used && c->key[0] == key[0] && c->key[1] == key[1] &&
            now - c->since_ms < WINDOW_MS) {
            c->count++;
            counted = true;
        } else {
            /* a second that has ended, or another refusal in this slot:
             * its count is written out first */
            write_evicted = take_owed(c, &evicted);
            c->used = true;
            c->over_budget = !within;
            c->key[0] = key[0];
            c->key[1] = key[1];
            snprintf(c->event, EVENT_MAX, "%s", event);
            c->since_ms = now;
            /* over the budget even the first is only counted */
            c->count = within ? 0 : 1;
            c->sample = sample;
            sample = NULL;
            counted = !within;
        }
    }
    pthread_mutex_unlock(&R.lock);
    json_decref(sample);
    if (write_evicted)
        write_owed(&evicted);

    if (!within) {
        json_decref(fields);
        mandate_metrics_refusal(MANDATE_REFUSAL_METRIC_OVER_BUDGET);
        if (retry_after_r != NULL)
            *retry_after_r = retry_after ? retry_after : 1;
        log_info("refused request from %s over its refusal budget (rate_limit.refusal_rate): "
                 "answered 429",
                 peer);
        return MANDATE_REFUSAL_OVER_BUDGET;
    }
    if (counted) {
        json_decref(fields);
        mandate_metrics_refusal(MANDATE_REFUSAL_METRIC_COALESCED);
        return MANDATE_REFUSAL_RECORDED;
    }
    mandate_metrics_refusal(MANDATE_REFUSAL_METRIC_RECORDED);
    return mandate_audit_event(event, fields) == MANDATE_OK ? MANDATE_REFUSAL_RECORDED
                                                            : MANDATE_REFUSAL_UNRECORDED;
}

bool mandate_refusal_budget_spent(mandate_http_request *req)
{
    pthread_mutex_lock(&R.lock);
    bool started = R.started;
    pthread_mutex_unlock(&R.lock);
    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    if (!started || cfg->rate_refusals <= 0)
        return false;
    return !mandate_ratelimit_peek(R.budget, mandate_request_limit_key(req),
                                   (double)cfg->rate_refusals, (double)cfg->rate_refusals_burst,
                                   now_ms() * 1000);
}

void mandate_refusal_respond_over_budget(mandate_http_request *req, mandate_http_response *resp,
                                         unsigned retry_after)
{
    mandate_oauth_respond_too_many(req, resp,
                                   "too many refused requests from this address; retry later",
                                   retry_after);
}

static int busier(const void *a, const void *b)
{
    const busy_address *x = a, *y = b;
    return x->count < y->count ? 1 : x->count > y->count ? -1 : strcmp(x->peer, y->peer);
}

size_t mandate_refusals_busiest(char (*addresses)[MANDATE_PEER_MAX], uint64_t *counts,
                                size_t max)
{
    busy_address copy[BUSIEST];
    pthread_mutex_lock(&R.lock);
    size_t n = R.busiest_used;
    memcpy(copy, R.busiest, n * sizeof(busy_address));
    pthread_mutex_unlock(&R.lock);
    qsort(copy, n, sizeof(busy_address), busier);
    if (n > max)
        n = max;
    for (size_t i = 0; i < n; i++) {
        memcpy(addresses[i], copy[i].peer, MANDATE_PEER_MAX);
        counts[i] = copy[i].count;
    }
    return n;
}
