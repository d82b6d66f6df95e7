#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics-private.h"
#include "util-private.h"

/* Every value is a relaxed atomic: a counter needs no ordering with anything
 * else, only no lost increments. A histogram keeps one (non-cumulative)
 * counter per bucket and the sum in integer microseconds; the count is the
 * total of the buckets, so a scrape always shows _count equal to the +Inf
 * bucket and cumulative buckets that never decrease, even while requests
 * are being recorded. Only _sum can be a few observations ahead or behind.
 *
 * Rendering rule: a series with a label (other than le) is shown once it is
 * nonzero, a series without one always. That keeps the 648 possible request
 * counters out of the output until they happen. */

typedef enum result {
    RESULT_2XX,
    RESULT_3XX,
    RESULT_400,
    RESULT_401,
    RESULT_403,
    RESULT_404,
    RESULT_413,
    RESULT_429,
    RESULT_500,
    RESULT_503,
    RESULT_OTHER_4XX,
    RESULT_OTHER_5XX,
    RESULT_COUNT_
} result;

typedef enum token_format {
    FORMAT_JWT,
    FORMAT_OPAQUE,
    FORMAT_OTHER,
    FORMAT_COUNT_
} token_format;

static const char *const endpoint_names[MANDATE_EP_COUNT_] = {
    [MANDATE_EP_TOKEN] = "token",   [MANDATE_EP_INTROSPECT] = "introspect",
    [MANDATE_EP_REVOKE] = "revoke", [MANDATE_EP_GATEWAY] = "gateway_check",
    [MANDATE_EP_JWKS] = "jwks",     [MANDATE_EP_METADATA] = "metadata",
    [MANDATE_EP_HEALTH] = "health", [MANDATE_EP_METRICS] = "metrics",
    [MANDATE_EP_AUTHORIZE] = "authorize", [MANDATE_EP_SIGNIN] = "signin",
    [MANDATE_EP_REGISTER] = "register", [MANDATE_EP_OTHER] = "other",
};

static const char *const result_names[RESULT_COUNT_] = {
    [RESULT_2XX] = "2xx",
    [RESULT_3XX] = "3xx",
    [RESULT_400] = "400",
    [RESULT_401] = "401",
    [RESULT_403] = "403",
    [RESULT_404] = "404",
    [RESULT_413] = "413",
    [RESULT_429] = "429",
    [RESULT_500] = "500",
    [RESULT_503] = "503",
    [RESULT_OTHER_4XX] = "other_4xx",
    [RESULT_OTHER_5XX] = "other_5xx",
};

static const char *const format_names[FORMAT_COUNT_] = {
    [FORMAT_JWT] = "jwt",
    [FORMAT_OPAQUE] = "opaque",
    [FORMAT_OTHER] = "other",
};

/* Upper bounds in microseconds and as the le label writes them; the +Inf
 * bucket is implicit (index n_bounds). */
typedef struct bucket_bound {
    int64_t us;
    const char *le;
} bucket_bound;

static const bucket_bound request_bounds[] = {
    {100, "0.0001"},  {250, "0.00025"}, {500, "0.0005"},  {1000, "0.001"},  {2500, "0.0025"},
    {5000, "0.005"},  {10000, "0.01"},  {25000, "0.025"}, {50000, "0.05"},  {100000, "0.1"},
    {250000, "0.25"}, {500000, "0.5"},  {1000000, "1"},   {2500000, "2.5"},
};
#define REQUEST_BOUNDS (sizeof(request_bounds) / sizeof(request_bounds[0]))

static const bucket_bound fsync_bounds[] = {
    {50, "5e-05"},    {100, "0.0001"},  {250, "0.00025"}, {500, "0.0005"},  {1000, "0.001"},
    {2500, "0.0025"}, {5000, "0.005"},  {10000, "0.01"},  {25000, "0.025"}, {50000, "0.05"},
    {100000, "0.1"},  {250000, "0.25"}, {500000, "0.5"},  {1000000, "1"},
};
#define FSYNC_BOUNDS (sizeof(fsync_bounds) / sizeof(fsync_bounds[0]))

#define CHECK_CACHE_ANSWERS MANDATE_TOKEN_CACHE_ANSWERS_
static const char *const guard_reason_names[MANDATE_GUARD_REASON_COUNT_] = {
    [MANDATE_GUARD_ADDRESS_LIMIT] = "address_limit",
    [MANDATE_GUARD_REQUEST_DEADLINE] = "request_deadline",
    [MANDATE_GUARD_IDLE_DEADLINE] = "idle_deadline",
};

static const char *const refusal_names[MANDATE_REFUSAL_METRIC_COUNT_] = {
    [MANDATE_REFUSAL_METRIC_RECORDED] = "recorded",
    [MANDATE_REFUSAL_METRIC_COALESCED] = "coalesced",
    [MANDATE_REFUSAL_METRIC_OVER_BUDGET] = "over_budget",
};

static const char *const check_cache_names[CHECK_CACHE_ANSWERS] = {
    [MANDATE_TOKEN_CACHE_MISS] = "miss",
    [MANDATE_TOKEN_CACHE_HIT] = "hit",
    [MANDATE_TOKEN_CACHE_EXPIRED] = "expired",
};

typedef struct request_histogram {
    _Atomic uint64_t buckets[REQUEST_BOUNDS + 1];
    _Atomic uint64_t sum_us;
} request_histogram;

typedef struct fsync_histogram {
    _Atomic uint64_t buckets[FSYNC_BOUNDS + 1];
    _Atomic uint64_t sum_us;
} fsync_histogram;

static struct {
    _Atomic uint64_t requests[MANDATE_EP_COUNT_][MANDATE_METRICS_GRANT_SLOTS][RESULT_COUNT_];
    request_histogram duration[MANDATE_EP_COUNT_];
    _Atomic uint64_t tokens_issued[FORMAT_COUNT_];
    _Atomic uint64_t rate_limited[MANDATE_EP_COUNT_];
    fsync_histogram audit_fsync;
    _Atomic uint64_t store_errors;
    _Atomic uint64_t check_cache[CHECK_CACHE_ANSWERS];
    _Atomic uint64_t connections_closed[MANDATE_GUARD_REASON_COUNT_];
    _Atomic uint64_t refusals[MANDATE_REFUSAL_METRIC_COUNT_];
} metrics;

/* Wall clock at load, in microseconds since the epoch (not reset). */
static _Atomic int64_t process_start_us;

static int64_t now_realtime_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

#if defined(__GNUC__)
__attribute__((constructor)) static void metrics_init(void)
{
    atomic_store_explicit(&process_start_us, now_realtime_us(), memory_order_relaxed);
}
#endif

static inline void inc(_Atomic uint64_t *counter)
{
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

static inline uint64_t load(_Atomic uint64_t *counter)
{
    return atomic_load_explicit(counter, memory_order_relaxed);
}

static void zero(_Atomic uint64_t *counters, size_t n)
{
    for (size_t i = 0; i < n; i++)
        atomic_store_explicit(&counters[i], 0, memory_order_relaxed);
}

/* The bucket index of an observation: the first bound it does not exceed. */
static inline size_t bucket_of(const bucket_bound *bounds, size_t n, int64_t us)
{
    size_t i = 0;
    while (i < n && us > bounds[i].us)
        i++;
    return i;
}

static result result_of(unsigned status)
{
    switch (status) {
    case 400: return RESULT_400;
    case 401: return RESULT_401;
    case 403: return RESULT_403;
    case 404: return RESULT_404;
    case 413: return RESULT_413;
    case 429: return RESULT_429;
    case 500: return RESULT_500;
    case 503: return RESULT_503;
    default: break;
    }
    if (status >= 200 && status < 300)
        return RESULT_2XX;
    if (status >= 300 && status < 400)
        return RESULT_3XX;
    if (status >= 400 && status < 500)
        return RESULT_OTHER_4XX;
    /* 5xx, and what no finished response should carry (0, 1xx, >= 600):
     * the server misbehaved either way */
    return RESULT_OTHER_5XX;
}

mandate_metric_endpoint mandate_metrics_endpoint_of(const char *path)
{
    static const struct {
        const char *path;
        mandate_metric_endpoint ep;
    } exact[] = {
        {"/oauth2/token", MANDATE_EP_TOKEN},
        {"/gateway/check", MANDATE_EP_GATEWAY},
        {"/oauth2/introspect", MANDATE_EP_INTROSPECT},
        {"/oauth2/revoke", MANDATE_EP_REVOKE},
        {"/oauth2/jwks", MANDATE_EP_JWKS},
        {"/.well-known/oauth-authorization-server", MANDATE_EP_METADATA},
        {"/healthz", MANDATE_EP_HEALTH},
        {"/readyz", MANDATE_EP_HEALTH},
        {"/metrics", MANDATE_EP_METRICS},
        {"/oauth2/authorize", MANDATE_EP_AUTHORIZE},
        {"/oauth2/authorize/choose", MANDATE_EP_AUTHORIZE},
        {"/oauth2/par", MANDATE_EP_AUTHORIZE}, /* the request, pushed ahead */
        {"/consent", MANDATE_EP_SIGNIN},
        {"/logout", MANDATE_EP_SIGNIN},
        {"/oauth2/register", MANDATE_EP_REGISTER},
    };
    static const char gateway_prefix[] = "/gateway/check/";

    if (path == NULL)
        return MANDATE_EP_OTHER;
    for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++) {
        if (strcmp(path, exact[i].path) == 0)
            return exact[i].ep;
    }
    if (strncmp(path, "/login/", 7) == 0)
        return MANDATE_EP_SIGNIN;
    if (strncmp(path, gateway_prefix, sizeof(gateway_prefix) - 1) == 0)
        return MANDATE_EP_GATEWAY;
    return MANDATE_EP_OTHER;
}

/* An enum from a caller may be out of range: fold it into "other". */
static inline size_t ep_index(mandate_metric_endpoint ep)
{
    return (unsigned)ep < MANDATE_EP_COUNT_ ? (size_t)ep : MANDATE_EP_OTHER;
}

static inline size_t grant_index(unsigned grant)
{
    return grant < MANDATE_METRICS_GRANT_SLOTS ? (size_t)grant : MANDATE_METRICS_GRANT_OTHER;
}

void mandate_metrics_request(mandate_metric_endpoint ep, unsigned grant, unsigned status,
                             int64_t duration_us)
{
    size_t e = ep_index(ep);
    inc(&metrics.requests[e][grant_index(grant)][result_of(status)]);

    if (duration_us < 0) /* a clock that went backwards */
        duration_us = 0;
    request_histogram *h = &metrics.duration[e];
    inc(&h->buckets[bucket_of(request_bounds, REQUEST_BOUNDS, duration_us)]);
    atomic_fetch_add_explicit(&h->sum_us, (uint64_t)duration_us, memory_order_relaxed);
}

void mandate_metrics_token_issued(const char *format_plugin)
{
    token_format f = FORMAT_OTHER;
    if (format_plugin != NULL && strcmp(format_plugin, "jwt") == 0)
        f = FORMAT_JWT;
    else if (format_plugin != NULL && strcmp(format_plugin, "opaque") == 0)
        f = FORMAT_OPAQUE;
    inc(&metrics.tokens_issued[f]);
}

void mandate_metrics_rate_limited(mandate_metric_endpoint ep)
{
    inc(&metrics.rate_limited[ep_index(ep)]);
}

void mandate_metrics_audit_fsync(int64_t duration_us)
{
    if (duration_us < 0)
        duration_us = 0;
    fsync_histogram *h = &metrics.audit_fsync;
    inc(&h->buckets[bucket_of(fsync_bounds, FSYNC_BOUNDS, duration_us)]);
    atomic_fetch_add_explicit(&h->sum_us, (uint64_t)duration_us, memory_order_relaxed);
}

void mandate_metrics_store_error(void)
{
    inc(&metrics.store_errors);
}

void mandate_metrics_token_check_cache(mandate_token_cache_answer answer)
{
    if ((size_t)answer < CHECK_CACHE_ANSWERS)
        inc(&metrics.check_cache[answer]);
}

void mandate_metrics_connection_closed(mandate_http_guard_reason reason)
{
    if ((size_t)reason < MANDATE_GUARD_REASON_COUNT_)
        inc(&metrics.connections_closed[reason]);
}

void mandate_metrics_refusal(mandate_refusal_metric what)
{
    if ((size_t)what < MANDATE_REFUSAL_METRIC_COUNT_)
        inc(&metrics.refusals[what]);
}

void mandate_metrics_reset(void)
{
    for (size_t e = 0; e < MANDATE_EP_COUNT_; e++) {
        for (size_t g = 0; g < MANDATE_METRICS_GRANT_SLOTS; g++)
            zero(metrics.requests[e][g], RESULT_COUNT_);
        zero(metrics.duration[e].buckets, REQUEST_BOUNDS + 1);
        zero(&metrics.duration[e].sum_us, 1);
    }
    zero(metrics.rate_limited, MANDATE_EP_COUNT_);
    zero(metrics.tokens_issued, FORMAT_COUNT_);
    zero(metrics.audit_fsync.buckets, FSYNC_BOUNDS + 1);
    zero(&metrics.audit_fsync.sum_us, 1);
    zero(&metrics.store_errors, 1);
    zero(metrics.check_cache, CHECK_CACHE_ANSWERS);
    zero(metrics.connections_closed, MANDATE_GUARD_REASON_COUNT_);
    zero(metrics.refusals, MANDATE_REFUSAL_METRIC_COUNT_);
}

/* --- rendering (GET /metrics only: allocation is fine here) ------------- */

/* The text grows in a mandate_strbuf (util-private.h), under short names. */
typedef mandate_strbuf buf;
#define buf_add mandate_strbuf_add
#define buf_addc mandate_strbuf_addc
#define buf_printf mandate_strbuf_printf

/* HELP text escapes backslash and line feed; a label value also escapes the
 * double quote. */
static void buf_escaped(buf *b, const char *s, bool label_value)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\')
            buf_add(b, "\\\\");
        else if (*s == '\n')
            buf_add(b, "\\n");
        else if (*s == '"' && label_value)
            buf_add(b, "\\\"");
        else
            buf_addc(b, *s);
    }
}

static void family(buf *b, const char *name, const char *type, const char *help)
{
    buf_printf(b, "# HELP %s ", name);
    buf_escaped(b, help, false);
    buf_printf(b, "\n# TYPE %s %s\n", name, type);
}

/* name[suffix]{k1="v1",k2="v2"} — labels a NULL-terminated list of pairs,
 * or NULL. The caller writes " value\n". */
static void series(buf *b, const char *name, const char *suffix, const char *const *labels)
{
    buf_add(b, name);
    buf_add(b, suffix);
    if (labels == NULL || labels[0] == NULL)
        return;
    buf_addc(b, '{');
    for (size_t i = 0; labels[i] != NULL; i += 2) {
        if (i > 0)
            buf_addc(b, ',');
        buf_add(b, labels[i]);
        buf_add(b, "=\"");
        buf_escaped(b, labels[i + 1], true);
        buf_addc(b, '"');
    }
    buf_addc(b, '}');
}

static void sample_u64(buf *b, const char *name, const char *suffix, const char *const *labels,
                       uint64_t value)
{
    series(b, name, suffix, labels);
    buf_printf(b, " %" PRIu64 "\n", value);
}

/* A counter family with one label: a sample of counters[i] named
 * label="names[i]" each; a zero one only when always (a family whose every
 * value is worth seeing from the start). */
static void labelled_counters(buf *b, const char *name, const char *help, const char *label,
                              const char *const *names, _Atomic uint64_t *counters, size_t n,
                              bool always)
{
    family(b, name, "counter", help);
    for (size_t i = 0; i < n; i++) {
        uint64_t v = load(&counters[i]);
        if (v == 0 && !always)
            continue;
        const char *labels[] = {label, names[i], NULL};
        sample_u64(b, name, "", labels, v);
    }
}

/* Microseconds as seconds, exactly: "12.000345". */
static void sample_seconds(buf *b, const char *name, const char *suffix,
                           const char *const *labels, uint64_t us)
{
    series(b, name, suffix, labels);
    buf_printf(b, " %" PRIu64 ".%06" PRIu64 "\n", us / 1000000, us % 1000000);
}

#define MAX_BOUNDS 32

/* One histogram's _bucket, _sum and _count; label/value (or NULL) names the
 * series besides le. Nothing when skip_if_empty and it is empty. */
static void histogram(buf *b, const char *name, const char *label, const char *value,
                      const bucket_bound *bounds, size_t n_bounds, _Atomic uint64_t *buckets,
                      _Atomic uint64_t *sum_us, bool skip_if_empty)
{
    uint64_t counts[MAX_BOUNDS + 1];
    uint64_t total = 0;
    for (size_t i = 0; i <= n_bounds; i++) {
        counts[i] = load(&buckets[i]);
        total += counts[i];
    }
    if (total == 0 && skip_if_empty)
        return;

    const char *le_labels[5] = {NULL};
    const char *series_labels[3] = {NULL};
    size_t n = 0;
    if (label != NULL) {
        le_labels[n++] = label;
        le_labels[n++] = value;
        series_labels[0] = label;
        series_labels[1] = value;
    }
    le_labels[n] = "le";

    uint64_t cumulative = 0;
    for (size_t i = 0; i <= n_bounds; i++) {
        cumulative += counts[i];
        le_labels[n + 1] = i < n_bounds ? bounds[i].le : "+Inf";
        sample_u64(b, name, "_bucket", le_labels, cumulative);
    }
    /* _count is the +Inf bucket by construction */
    sample_seconds(b, name, "_sum", series_labels, load(sum_us));
    sample_u64(b, name, "_count", series_labels, total);
}

/* The start time, set by the constructor where there is one, else by the
 * first scrape. */
static uint64_t process_start(void)
{
    int64_t start = atomic_load_explicit(&process_start_us, memory_order_relaxed);
    if (start == 0) {
        int64_t zero = 0, now = now_realtime_us();
        if (atomic_compare_exchange_strong(&process_start_us, &zero, now))
            start = now;
        else
            start = zero;
    }
    return start > 0 ? (uint64_t)start : 0;
}

/* The name of each grant slot: "none", the caller's labels, and "other"
 * for slot OTHER and every slot without a label (their requests are one
 * series). The label is always present, so every series of the family has
 * the same label names. */
static void grant_names(const char *const *labels,
                        const char *names[MANDATE_METRICS_GRANT_SLOTS])
{
    for (size_t g = 0; g < MANDATE_METRICS_GRANT_SLOTS; g++)
        names[g] = "other";
    names[MANDATE_METRICS_GRANT_NONE] = "none";
    for (size_t i = 0; labels != NULL && labels[i] != NULL &&
                       MANDATE_METRICS_GRANT_FIRST + i < MANDATE_METRICS_GRANT_SLOTS;
         i++)
        names[MANDATE_METRICS_GRANT_FIRST + i] = labels[i];
}

char *mandate_metrics_render(mandate_pool *pool, const char *const *grant_labels)
{
    _Static_assert(REQUEST_BOUNDS <= MAX_BOUNDS && FSYNC_BOUNDS <= MAX_BOUNDS,
                   "histogram() counts[] too small");
    buf b = {0};

    family(&b, "mandate_http_requests_total", "counter",
           "HTTP requests served, by endpoint, grant type (token endpoint) and result.");
    const char *grants[MANDATE_METRICS_GRANT_SLOTS];
    bool other[MANDATE_METRICS_GRANT_SLOTS];
    grant_names(grant_labels, grants);
    for (size_t g = 0; g < MANDATE_METRICS_GRANT_SLOTS; g++)
        other[g] = strcmp(grants[g], "other") == 0;
    for (size_t e = 0; e < MANDATE_EP_COUNT_; e++) {
        /* none, the named slots in their order, then other: once, summing
         * every slot it names */
        for (size_t k = 0; k < MANDATE_METRICS_GRANT_SLOTS; k++) {
            size_t g = k == 0                                 ? MANDATE_METRICS_GRANT_NONE
                       : k == MANDATE_METRICS_GRANT_SLOTS - 1 ? MANDATE_METRICS_GRANT_OTHER
                                                              : k + 1;
            if (other[g] && g != MANDATE_METRICS_GRANT_OTHER)
                continue;
            for (size_t r = 0; r < RESULT_COUNT_; r++) {
                uint64_t v = 0;
                for (size_t s = 0; s < MANDATE_METRICS_GRANT_SLOTS; s++)
                    if (s == g || (other[g] && other[s]))
                        v += load(&metrics.requests[e][s][r]);
                if (v == 0)
                    continue;
                const char *labels[] = {
                    "endpoint", endpoint_names[e], "grant_type", grants[g],
                    "result",   result_names[r],   NULL};
                sample_u64(&b, "mandate_http_requests_total", "", labels, v);
            }
        }
    }

    family(&b, "mandate_http_request_duration_seconds", "histogram",
           "Time from a request's arrival to its response, by endpoint.");
    for (size_t e = 0; e < MANDATE_EP_COUNT_; e++) {
        histogram(&b, "mandate_http_request_duration_seconds", "endpoint", endpoint_names[e],
                  request_bounds, REQUEST_BOUNDS, metrics.duration[e].buckets,
                  &metrics.duration[e].sum_us, true);
    }

    labelled_counters(&b, "mandate_tokens_issued_total", "Access tokens issued, by format.",
                      "format", format_names, metrics.tokens_issued, FORMAT_COUNT_, false);

    labelled_counters(&b, "mandate_rate_limited_total",
                      "Requests refused by a rate limit, by endpoint.", "endpoint",
                      endpoint_names, metrics.rate_limited, MANDATE_EP_COUNT_, false);

    family(&b, "mandate_audit_fsync_duration_seconds", "histogram",
           "Time taken by each audit log fsync (or group commit).");
    histogram(&b, "mandate_audit_fsync_duration_seconds", NULL, NULL, fsync_bounds,
              FSYNC_BOUNDS, metrics.audit_fsync.buckets, &metrics.audit_fsync.sum_us, false);

    family(&b, "mandate_store_errors_total", "counter",
           "Token store calls that failed (TEMPFAIL or ERROR).");
    sample_u64(&b, "mandate_store_errors_total", "", NULL, load(&metrics.store_errors));

    labelled_counters(
        &b, "mandate_token_check_cache_total",
        "Tokens of this broker presented to it (introspection, gateway check, revocation, "
        "token exchange), by what the cache of checked tokens answered (hit, miss, expired).",
        "result", check_cache_names, metrics.check_cache, CHECK_CACHE_ANSWERS, false);

    labelled_counters(
        &b, "mandate_http_connections_closed_total",
        "Connections closed to protect the others: the peer address held "
        "server.connections_per_address already, or the connection did not send its "
        "request in time (server.request_timeout, server.connection_timeout).",
        "reason", guard_reason_names, metrics.connections_closed, MANDATE_GUARD_REASON_COUNT_,
        true);

    labelled_counters(
        &b, "mandate_refusals_total",
        "Refused requests (failed client authentication, malformed requests, gateway "
        "checks without a valid token, ...): written to the audit trail (recorded), counted "
        "into one record of identical refusals from one address in one second "
        "(coalesced), or over the address's refusal budget and answered 429 "
        "(over_budget).",
        "result", refusal_names, metrics.refusals, MANDATE_REFUSAL_METRIC_COUNT_, true);

    family(&b, "mandate_process_start_time_seconds", "gauge",
           "Start time of the process since the Unix epoch, in seconds.");
    sample_seconds(&b, "mandate_process_start_time_seconds", "", NULL, process_start());

    char *out = mandate_pool_strndup(pool, b.data, b.len);
    free(b.data);
    return out;
}
