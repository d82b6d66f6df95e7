#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "grant-table-private.h"
#include "metrics-private.h"
#include "pool-private.h"
#include "test-helpers.h"

/* The grant slots of the request metrics: the token endpoint's grant table
 * numbers them (grant-table-private.h) and names them when they are
 * rendered. */
#define GRANT_NONE MANDATE_METRICS_GRANT_NONE
#define GRANT_OTHER MANDATE_METRICS_GRANT_OTHER
#define GRANT_CLIENT_CREDENTIALS mandate_grant_table_metric_slot("client_credentials")
#define GRANT_TOKEN_EXCHANGE                                                                   \
    mandate_grant_table_metric_slot("urn:ietf:params:oauth:grant-type:token-exchange")
#define GRANT_JWT_BEARER                                                                       \
    mandate_grant_table_metric_slot("urn:ietf:params:oauth:grant-type:jwt-bearer")
#define GRANT_SAML2_BEARER                                                                     \
    mandate_grant_table_metric_slot("urn:ietf:params:oauth:grant-type:saml2-bearer")

/* --- a small checker of the text exposition format 0.0.4 ---------------- */

typedef struct parsed_family {
    char name[128];
    char type[16];
    bool help;
    size_t samples;
} parsed_family;

typedef struct exposition {
    parsed_family families[32];
    size_t n_families;
    size_t n_samples;
} exposition;

static bool is_name_start(char c, bool colon)
{
    return isalpha((unsigned char)c) || c == '_' || (colon && c == ':');
}

static bool is_name_char(char c, bool colon)
{
    return is_name_start(c, colon) || isdigit((unsigned char)c);
}

/* Reads a metric (colon true) or label name at *p; its length, 0 if none. */
static size_t read_name(const char **p, const char *end, bool colon, char *out, size_t out_len)
{
    const char *s = *p;
    if (s >= end || !is_name_start(*s, colon))
        return 0;
    while (s < end && is_name_char(*s, colon))
        s++;
    size_t n = (size_t)(s - *p);
    if (n >= out_len)
        return 0;
    memcpy(out, *p, n);
    out[n] = '\0';
    *p = s;
    return n;
}

static bool is_number(const char *s, size_t len)
{
    char tmp[64];
    if (len == 0 || len >= sizeof(tmp))
        return false;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    if (strcmp(tmp, "+Inf") == 0 || strcmp(tmp, "-Inf") == 0 || strcmp(tmp, "NaN") == 0)
        return true;
    char *endp;
    errno = 0;
    double v = strtod(tmp, &endp);
    return errno == 0 && *endp == '\0' && isfinite(v) && !isspace((unsigned char)tmp[0]);
}

/* The family a sample belongs to: histograms own name_bucket/_sum/_count. */
static parsed_family *family_of(exposition *x, const char *sample)
{
    for (size_t i = 0; i < x->n_families; i++) {
        parsed_family *f = &x->families[i];
        size_t n = strlen(f->name);
        if (strcmp(sample, f->name) == 0)
            return f;
        if (strcmp(f->type, "histogram") == 0 && strncmp(sample, f->name, n) == 0 &&
            (strcmp(sample + n, "_bucket") == 0 || strcmp(sample + n, "_sum") == 0 ||
             strcmp(sample + n, "_count") == 0))
            return f;
    }
    return NULL;
}

#define BAD(...)                                                                               \
    do {                                                                                       \
        snprintf(why, why_len, __VA_ARGS__);                                                   \
        return false;                                                                          \
    } while (0)

/* Whether text is the exposition format: every line a HELP, a TYPE or a
 * sample `name{labels} value` / `name value` (no timestamp), each sample
 * after its family's HELP and TYPE, each family declared once with its
 * samples together, the last line ended by a line feed. why_r: the reason
 * when not. */
static bool check_exposition(const char *text, exposition *x, char *why, size_t why_len)
{
    memset(x, 0, sizeof(*x));
    size_t len = strlen(text);
    if (len == 0 || text[len - 1] != '\n')
        BAD("empty, or no line feed at the end");
    const parsed_family *current = NULL;

    for (const char *line = text; *line != '\0';) {
        const char *end = strchr(line, '\n');
        char copy[512];
        size_t n = (size_t)(end - line);
        if (n == 0 || n >= sizeof(copy))
            BAD("empty or overlong line");
        memcpy(copy, line, n);
        copy[n] = '\0';
        const char *p = line;
        char name[128];

        if (*p == '#') {
            bool help = strncmp(p, "# HELP ", 7) == 0;
            bool type = strncmp(p, "# TYPE ", 7) == 0;
            if (!help && !type)
                BAD("unexpected comment: %s", copy);
            p += 7;
            if (read_name(&p, end, true, name, sizeof(name)) == 0 || p >= end || *p != ' ')
                BAD("bad name in: %s", copy);
            p++;
            parsed_family *f = NULL;
            for (size_t i = 0; i < x->n_families; i++) {
                if (strcmp(x->families[i].name, name) == 0)
                    f = &x->families[i];
            }
            if (f == NULL) {
                if (x->n_families == sizeof(x->families) / sizeof(x->families[0]))
                    BAD("too many families");
                f = &x->families[x->n_families++];
                snprintf(f->name, sizeof(f->name), "%s", name);
            } else if (f->samples > 0 || f != current) {
                BAD("family declared again or apart: %s", copy);
            }
            if (help) {
                if (f->help)
                    BAD("second HELP: %s", copy);
                f->help = true;
                for (const char *q = p; q < end; q++) { /* only \\ and \n escapes */
                    if (*q == '\\' && (q + 1 >= end || (q[1] != '\\' && q[1] != 'n')))
                        BAD("bad escape in HELP: %s", copy);
                    if (*q == '\\')
                        q++;
                }
            } else {
                size_t tn = (size_t)(end - p);
                if (f->type[0] != '\0' || tn == 0 || tn >= sizeof(f->type))
                    BAD("bad or second TYPE: %s", copy);
                memcpy(f->type, p, tn);
                f->type[tn] = '\0';
                if (strcmp(f->type, "counter") != 0 && strcmp(f->type, "gauge") != 0 &&
                    strcmp(f->type, "histogram") != 0 && strcmp(f->type, "summary") != 0 &&
                    strcmp(f->type, "untyped") != 0)
                    BAD("unknown type: %s", copy);
            }
            current = f;
        } else {
            if (read_name(&p, end, true, name, sizeof(name)) == 0)
                BAD("bad metric name: %s", copy);
            if (p < end && *p == '{') {
                p++;
                while (p < end && *p != '}') {
                    char label[128];
                    if (read_name(&p, end, false, label, sizeof(label)) == 0)
                        BAD("bad label name: %s", copy);
                    if (p + 1 >= end || p[0] != '=' || p[1] != '"')
                        BAD("bad label: %s", copy);
                    p += 2;
                    while (p < end && *p != '"') {
                        if (*p == '\\') {
                            if (p + 1 >= end || (p[1] != '\\' && p[1] != 'n' && p[1] != '"'))
                                BAD("bad escape in label value: %s", copy);
                            p++;
                        }
                        p++;
                    }
                    if (p >= end)
                        BAD("unterminated label value: %s", copy);
                    p++;
                    if (p < end && *p == ',')
                        p++;
                    else if (p < end && *p != '}')
                        BAD("bad label list: %s", copy);
                }
                if (p >= end)
                    BAD("unterminated label list: %s", copy);
                p++;
            }
            if (p >= end || *p != ' ')
                BAD("no value: %s", copy);
            p++;
            if (!is_number(p, (size_t)(end - p)))
                BAD("value not a number: %s", copy);
            parsed_family *f = family_of(x, name);
            if (f == NULL || f != current || !f->help || f->type[0] == '\0')
                BAD("sample outside its family's HELP/TYPE: %s", copy);
            f->samples++;
            x->n_samples++;
        }
        line = end + 1;
    }
    return true;
}

static void parse_exposition(const char *text, exposition *x)
{
    char why[600];
    if (!check_exposition(text, x, why, sizeof(why)))
        fail_msg("not the exposition format: %s", why);
}

/* --- reading values ------------------------------------------------------ */

static char *render(mandate_pool *pool)
{
    char *text = mandate_metrics_render(pool, mandate_grant_table_metric_labels());
    assert_non_null(text);
    exposition x;
    parse_exposition(text, &x);
    return text;
}

/* The value of the series written exactly as `series` (name{labels}), or
 * -1 when it is not in the text. */
static double value_of(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *line = text; *line != '\0';) {
        const char *end = strchr(line, '\n');
        if (strncmp(line, series, n) == 0 && line[n] == ' ')
            return strtod(line + n + 1, NULL);
        line = end + 1;
    }
    return -1;
}

static double value_fmt(const char *text, const char *fmt, ...) MANDATE_PRINTF(2, 3);
static double value_fmt(const char *text, const char *fmt, ...)
{
    char series[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(series, sizeof(series), fmt, ap);
    va_end(ap);
    return value_of(text, series);
}

/* The literal text of a series' value ("7.001201"), in pool. */
static const char *raw_value_of(mandate_pool *pool, const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *line = text; *line != '\0';) {
        const char *end = strchr(line, '\n');
        if (strncmp(line, series, n) == 0 && line[n] == ' ')
            return mandate_pool_strndup(pool, line + n + 1, (size_t)(end - line - n - 1));
        line = end + 1;
    }
    return NULL;
}

static size_t count_lines_starting(const char *text, const char *prefix)
{
    size_t count = 0, n = strlen(prefix);
    for (const char *line = text; *line != '\0';) {
        if (strncmp(line, prefix, n) == 0)
            count++;
        line = strchr(line, '\n') + 1;
    }
    return count;
}

static const char *const request_les[] = {"0.0001", "0.00025", "0.0005", "0.001", "0.0025",
                                          "0.005",  "0.01",    "0.025",  "0.05",  "0.1",
                                          "0.25",   "0.5",     "1",      "2.5",   "+Inf"};
#define N_REQUEST_LES (sizeof(request_les) / sizeof(request_les[0]))

/* Checks a histogram series: buckets in order, cumulative, +Inf == _count;
 * returns _count. labels: `endpoint="token",` or "". */
static double check_histogram(const char *text, const char *name, const char *labels)
{
    double prev = 0, inf = -1, last_bound = 0;
    size_t seen = 0;
    for (const char *line = text; *line != '\0';) {
        const char *end = strchr(line, '\n');
        char prefix[256];
        snprintf(prefix, sizeof(prefix), "%s_bucket{%sle=\"", name, labels);
        if (strncmp(line, prefix, strlen(prefix)) == 0) {
            const char *le = line + strlen(prefix);
            const char *close = strchr(le, '"');
            const char *sp = strchr(close, ' ');
            double v = strtod(sp + 1, NULL);
            assert_true(v >= prev);
            prev = v;
            double bound = strncmp(le, "+Inf", 4) == 0 ? INFINITY : strtod(le, NULL);
            if (seen > 0)
                assert_true(bound > last_bound); /* increasing, +Inf last */
            last_bound = bound;
            if (isinf(bound))
                inf = v;
            seen++;
        }
        line = end + 1;
    }
    assert_true(seen >= 2);
    assert_true(inf >= 0);
    char series[256];
    size_t ln = strlen(labels);
    if (ln > 0) /* drop the trailing comma */
        snprintf(series, sizeof(series), "%s_count{%.*s}", name, (int)(ln - 1), labels);
    else
        snprintf(series, sizeof(series), "%s_count", name);
    assert_true(value_of(text, series) == inf);
    return inf;
}

static int reset_setup(void **state)
{
    (void)state;
    mandate_metrics_reset();
    return 0;
}

/* --- tests ---------------------------------------------------------------- */

static void test_endpoint_of(void **state)
{
    (void)state;
    static const struct {
        const char *path;
        mandate_metric_endpoint ep;
    } cases[] = {
        {"/oauth2/token", MANDATE_EP_TOKEN},
        {"/oauth2/introspect", MANDATE_EP_INTROSPECT},
        {"/oauth2/revoke", MANDATE_EP_REVOKE},
        {"/oauth2/jwks", MANDATE_EP_JWKS},
        {"/.well-known/oauth-authorization-server", MANDATE_EP_METADATA},
        {"/healthz", MANDATE_EP_HEALTH},
        {"/readyz", MANDATE_EP_HEALTH},
        {"/metrics", MANDATE_EP_METRICS},
        {"/oauth2/register", MANDATE_EP_REGISTER},
        {"/gateway/check", MANDATE_EP_GATEWAY},
        {"/gateway/check/", MANDATE_EP_GATEWAY},
        {"/gateway/check/api/v1/quotes", MANDATE_EP_GATEWAY},
        {"/gateway/checkout", MANDATE_EP_OTHER},
        {"/gateway", MANDATE_EP_OTHER},
        {"/oauth2/token/", MANDATE_EP_OTHER},
        {"/oauth2/tokens", MANDATE_EP_OTHER},
        {"/OAUTH2/TOKEN", MANDATE_EP_OTHER},
        {"/metrics/x", MANDATE_EP_OTHER},
        {"/", MANDATE_EP_OTHER},
        {"", MANDATE_EP_OTHER},
        {"/.well-known/jwks.json", MANDATE_EP_OTHER},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (mandate_metrics_endpoint_of(cases[i].path) != cases[i].ep)
            fail_msg("%s: %d, expected %d", cases[i].path,
                     (int)mandate_metrics_endpoint_of(cases[i].path), (int)cases[i].ep);
    }
    assert_int_equal(mandate_metrics_endpoint_of(NULL), MANDATE_EP_OTHER);
}

/* The label a grant_type value's requests are counted under. */
static const char *label_of(const char *grant_type)
{
    unsigned slot = mandate_grant_table_metric_slot(grant_type);
    if (slot == MANDATE_METRICS_GRANT_NONE)
        return "none";
    if (slot == MANDATE_METRICS_GRANT_OTHER)
        return "other";
    return mandate_grant_table_metric_labels()[slot - MANDATE_METRICS_GRANT_FIRST];
}

static void test_grant_of(void **state)
{
    (void)state;
    assert_string_equal(label_of(NULL), "none");
    assert_string_equal(label_of("client_credentials"), "client_credentials");
    assert_string_equal(label_of("urn:ietf:params:oauth:grant-type:token-exchange"),
                        "token_exchange");
    assert_string_equal(label_of("urn:ietf:params:oauth:grant-type:jwt-bearer"), "jwt_bearer");
    assert_string_equal(label_of("urn:ietf:params:oauth:grant-type:saml2-bearer"),
                        "saml2_bearer");
    assert_string_equal(label_of("password"), "other");
    assert_string_equal(label_of("authorization_code"), "authorization_code");
    assert_string_equal(label_of("refresh_token"), "refresh_token");
    assert_string_equal(label_of("authorization_code "), "other");
    assert_string_equal(label_of(""), "other");
    assert_string_equal(label_of("client_credentials "), "other");
    assert_string_equal(label_of("urn:ietf:params:oauth:grant-type:jwt-bearer2"), "other");
}

static void test_request_counts_land_in_series(void **state)
{
    (void)state;
    mandate_pool *pool = mandate_pool_new();
    for (int i = 0; i < 3; i++)
        mandate_metrics_request(MANDATE_EP_TOKEN, GRANT_CLIENT_CREDENTIALS, 200, 800);
    mandate_metrics_request(MANDATE_EP_TOKEN, GRANT_TOKEN_EXCHANGE, 400, 300);
    mandate_metrics_request(MANDATE_EP_TOKEN, GRANT_JWT_BEARER, 401, 300);
    mandate_metrics_request(MANDATE_EP_TOKEN, GRANT_SAML2_BEARER, 200, 300);
    mandate_metrics_request(MANDATE_EP_TOKEN, GRANT_OTHER, 400, 300);
    mandate_metrics_request(MANDATE_EP_TOKEN, GRANT_NONE, 400, 300);
    mandate_metrics_request(MANDATE_EP_INTROSPECT, GRANT_NONE, 200, 300);
    mandate_metrics_request(MANDATE_EP_REVOKE, GRANT_NONE, 200, 300);
    mandate_metrics_request(MANDATE_EP_GATEWAY, GRANT_NONE, 403, 300);
    mandate_metrics_request(MANDATE_EP_GATEWAY, GRANT_NONE, 403, 300);
    mandate_metrics_request(MANDATE_EP_JWKS, GRANT_NONE, 200, 300);
    mandate_metrics_request(MANDATE_EP_METADATA, GRANT_NONE, 200, 300);
    mandate_metrics_request(MANDATE_EP_HEALTH, GRANT_NONE, 503, 300);
    mandate_metrics_request(MANDATE_EP_METRICS, GRANT_NONE, 200, 300);
    mandate_metrics_request(MANDATE_EP_OTHER, GRANT_NONE, 404, 300);
    /* out-of-range enums fold into "other" */
    mandate_metrics_request((mandate_metric_endpoint)99, 77u, 404, 300);
    mandate_metrics_request((mandate_metric_endpoint)-1, GRANT_NONE, 404, 300);

    char *text = render(pool);
    const char *name = "mandate_http_requests_total";
    static const struct {
        const char *labels;
        double value;
    } want[] = {
        {"endpoint=\"token\",grant_type=\"client_credentials\",result=\"2xx\"", 3},
        {"endpoint=\"token\",grant_type=\"token_exchange\",result=\"400\"", 1},
        {"endpoint=\"token\",grant_type=\"jwt_bearer\",result=\"401\"", 1},
        {"endpoint=\"token\",grant_type=\"saml2_bearer\",result=\"2xx\"", 1},
        {"endpoint=\"token\",grant_type=\"other\",result=\"400\"", 1},
        {"endpoint=\"token\",grant_type=\"none\",result=\"400\"", 1},
        {"endpoint=\"introspect\",grant_type=\"none\",result=\"2xx\"", 1},
        {"endpoint=\"revoke\",grant_type=\"none\",result=\"2xx\"", 1},
        {"endpoint=\"gateway_check\",grant_type=\"none\",result=\"403\"", 2},
        {"endpoint=\"jwks\",grant_type=\"none\",result=\"2xx\"", 1},
        {"endpoint=\"metadata\",grant_type=\"none\",result=\"2xx\"", 1},
        {"endpoint=\"health\",grant_type=\"none\",result=\"503\"", 1},
        {"endpoint=\"metrics\",grant_type=\"none\",result=\"2xx\"", 1},
        {"endpoint=\"other\",grant_type=\"none\",result=\"404\"", 2},
        {"endpoint=\"other\",grant_type=\"other\",result=\"404\"", 1},
    };
    double total = 0;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        double v = value_fmt(text, "%s{%s}", name, want[i].labels);
        if (v != want[i].value)
            fail_msg("%s{%s}: %g, expected %g", name, want[i].labels, v, want[i].value);
        total += want[i].value;
    }
    /* and nothing else: one line per series above */
    assert_int_equal(count_lines_starting(text, "mandate_http_requests_total{"),
                     sizeof(want) / sizeof(want[0]));
    assert_true(total == 19);

    /* a latency series for each endpoint that saw a request */
    assert_true(
        value_of(text, "mandate_http_request_duration_seconds_count{endpoint=\"token\"}") == 8);
    assert_true(
        value_of(text, "mandate_http_request_duration_seconds_count{endpoint=\"other\"}") == 3);
    mandate_pool_free(&pool);
}

static void test_results_by_status(void **state)
{
    (void)state;
    static const struct {
        unsigned status;
        const char *result;
    } cases[] = {
        {200, "2xx"},       {201, "2xx"},         {204, "2xx"},       {299, "2xx"},
        {301, "3xx"},       {304, "3xx"},         {400, "400"},       {401, "401"},
        {403, "403"},       {404, "404"},         {405, "other_4xx"}, {409, "other_4xx"},
        {413, "413"},       {415, "other_4xx"},   {429, "429"},       {499, "other_4xx"},
        {500, "500"},       {501, "other_5xx"},   {502, "other_5xx"}, {503, "503"},
        {504, "other_5xx"}, {599, "other_5xx"},   {0, "other_5xx"},   {100, "other_5xx"},
        {600, "other_5xx"}, {99999, "other_5xx"},
    };
    mandate_pool *pool = mandate_pool_new();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mandate_metrics_reset();
        mandate_metrics_request(MANDATE_EP_INTROSPECT, GRANT_NONE, cases[i].status, 10);
        char *text = render(pool);
        double v = value_fmt(text,
                             "mandate_http_requests_total{endpoint=\"introspect\",grant_type="
                             "\"none\",result=\"%s\"}",
                             cases[i].result);
        if (v != 1)
            fail_msg("status %u: not counted as %s", cases[i].status, cases[i].result);
        assert_int_equal(count_lines_starting(text, "mandate_http_requests_total{"), 1);
    }

    /* counts add up within a class */
    mandate_metrics_reset();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        mandate_metrics_request(MANDATE_EP_REVOKE, GRANT_NONE, cases[i].status, 10);
    char *text = render(pool);
#define REVOKE_FMT                                                                             \
    "mandate_http_requests_total{endpoint=\"revoke\",grant_type=\"none\",result=\"%s\"}"
    assert_true(value_fmt(text, REVOKE_FMT, "2xx") == 4);
    assert_true(value_fmt(text, REVOKE_FMT, "3xx") == 2);
    assert_true(value_fmt(text, REVOKE_FMT, "other_4xx") == 4);
    assert_true(value_fmt(text, REVOKE_FMT, "other_5xx") == 8);
    assert_true(value_fmt(text, REVOKE_FMT, "429") == 1);
#undef REVOKE_FMT
    mandate_pool_free(&pool);
}

static void test_request_histogram(void **state)
{
    (void)state;
    mandate_pool *pool = mandate_pool_new();
    /* le is "less than or equal": 100 µs lands in 0.0001 */
    int64_t durations[] = {0, 100, 101, 1000, 2000000, 5000000, -5, 250, 2500000};
    for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++)
        mandate_metrics_request(MANDATE_EP_TOKEN, GRANT_CLIENT_CREDENTIALS, 200,
                                durations[i]);
    mandate_metrics_request(MANDATE_EP_JWKS, GRANT_NONE, 200, 42);

    char *text = render(pool);
    const char *name = "mandate_http_request_duration_seconds";
    /* cumulative counts per le for the token endpoint */
    static const double want[N_REQUEST_LES] = {3, 5, 5, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 8, 9};
    for (size_t i = 0; i < N_REQUEST_LES; i++) {
        double v =
            value_fmt(text, "%s_bucket{endpoint=\"token\",le=\"%s\"}", name, request_les[i]);
        if (v != want[i])
            fail_msg("le=%s: %g, expected %g", request_les[i], v, want[i]);
    }
    assert_true(check_histogram(text, name, "endpoint=\"token\",") == 9);
    /* the sum is exact, in seconds: 0+100+101+1000+2000000+5000000+0+250+2500000 µs */
    assert_string_equal(raw_value_of(pool, text,
                                     "mandate_http_request_duration_seconds_sum{"
                                     "endpoint=\"token\"}"),
                        "9.501451");
    assert_true(value_fmt(text, "%s_count{endpoint=\"token\"}", name) == 9);

    assert_true(check_histogram(text, name, "endpoint=\"jwks\",") == 1);
    assert_true(value_fmt(text, "%s_bucket{endpoint=\"jwks\",le=\"0.0001\"}", name) == 1);
    assert_string_equal(
        raw_value_of(pool, text,
                     "mandate_http_request_duration_seconds_sum{endpoint=\"jwks\"}"),
        "0.000042");
    /* endpoints without requests are left out */
    assert_true(value_fmt(text, "%s_count{endpoint=\"introspect\"}", name) == -1);
    assert_int_equal(
        count_lines_starting(text, "mandate_http_request_duration_seconds_bucket{"),
        2 * N_REQUEST_LES);
    mandate_pool_free(&pool);
}

static void test_other_families(void **state)
{
    (void)state;
    mandate_pool *pool = mandate_pool_new();
    mandate_metrics_token_issued("jwt");
    mandate_metrics_token_issued("jwt");
    mandate_metrics_token_issued("opaque");
    mandate_metrics_token_issued("paseto");
    mandate_metrics_token_issued(NULL);
    mandate_metrics_token_issued("JWT");
    mandate_metrics_rate_limited(MANDATE_EP_TOKEN);
    mandate_metrics_rate_limited(MANDATE_EP_TOKEN);
    mandate_metrics_rate_limited(MANDATE_EP_GATEWAY);
    mandate_metrics_rate_limited((mandate_metric_endpoint)1000);
    mandate_metrics_store_error();
    mandate_metrics_store_error();
    mandate_metrics_store_error();
    mandate_metrics_token_check_cache(MANDATE_TOKEN_CACHE_HIT);
    mandate_metrics_token_check_cache(MANDATE_TOKEN_CACHE_HIT);
    mandate_metrics_token_check_cache(MANDATE_TOKEN_CACHE_EXPIRED);
    mandate_metrics_token_check_cache((mandate_token_cache_answer)7); /* no such answer */
    mandate_metrics_connection_closed(MANDATE_GUARD_ADDRESS_LIMIT);
    mandate_metrics_connection_closed(MANDATE_GUARD_ADDRESS_LIMIT);
    mandate_metrics_connection_closed(MANDATE_GUARD_IDLE_DEADLINE);
    mandate_metrics_connection_closed((mandate_http_guard_reason)9); /* no such reason */
    int64_t fsyncs[] = {10, 50, 51, 400, 999999, 1000000, 1000001, -1};
    for (size_t i = 0; i < sizeof(fsyncs) / sizeof(fsyncs[0]); i++)
        mandate_metrics_audit_fsync(fsyncs[i]);

    char *text = render(pool);
    assert_true(value_of(text, "mandate_tokens_issued_total{format=\"jwt\"}") == 2);
    assert_true(value_of(text, "mandate_tokens_issued_total{format=\"opaque\"}") == 1);
    assert_true(value_of(text, "mandate_tokens_issued_total{format=\"other\"}") == 3);
    assert_true(value_of(text, "mandate_rate_limited_total{endpoint=\"token\"}") == 2);
    assert_true(value_of(text, "mandate_rate_limited_total{endpoint=\"gateway_check\"}") == 1);
    assert_true(value_of(text, "mandate_rate_limited_total{endpoint=\"other\"}") == 1);
    assert_true(value_of(text, "mandate_rate_limited_total{endpoint=\"jwks\"}") == -1);
    assert_true(value_of(text, "mandate_store_errors_total") == 3);
    assert_true(value_of(text, "mandate_token_check_cache_total{result=\"hit\"}") == 2);
    assert_true(value_of(text, "mandate_token_check_cache_total{result=\"expired\"}") == 1);
    assert_true(value_of(text, "mandate_token_check_cache_total{result=\"miss\"}") == -1);
    assert_int_equal(count_lines_starting(text, "mandate_token_check_cache_total{"), 2);
    /* every reason is shown, 0 included, so a dashboard sees the series */
    const char *closed = "mandate_http_connections_closed_total";
    assert_true(value_fmt(text, "%s{reason=\"address_limit\"}", closed) == 2);
    assert_true(value_fmt(text, "%s{reason=\"request_deadline\"}", closed) == 0);
    assert_true(value_fmt(text, "%s{reason=\"idle_deadline\"}", closed) == 1);
    assert_int_equal(count_lines_starting(text, "mandate_http_connections_closed_total{"), 3);
    assert_true(value_of(text, "mandate_refusals_total{result=\"recorded\"}") == 0);

    const char *fs = "mandate_audit_fsync_duration_seconds";
    assert_true(check_histogram(text, fs, "") == 8);
    assert_true(value_fmt(text, "%s_bucket{le=\"5e-05\"}", fs) == 3); /* 10, 50, -1 -> 0 */
    assert_true(value_fmt(text, "%s_bucket{le=\"0.0001\"}", fs) == 4);
    assert_true(value_fmt(text, "%s_bucket{le=\"0.0005\"}", fs) == 5);
    assert_true(value_fmt(text, "%s_bucket{le=\"0.5\"}", fs) == 5);
    assert_true(value_fmt(text, "%s_bucket{le=\"1\"}", fs) == 7);
    assert_true(value_fmt(text, "%s_bucket{le=\"+Inf\"}", fs) == 8);
    assert_string_equal(raw_value_of(pool, text, "mandate_audit_fsync_duration_seconds_sum"),
                        "3.000511");
    /* the smallest and largest finite bounds are 50 µs and 1 s */
    assert_true(strstr(text, "mandate_audit_fsync_duration_seconds_bucket{le=\"5e-05\"}") ==
                strstr(text, "mandate_audit_fsync_duration_seconds_bucket{"));
    assert_true(value_fmt(text, "%s_bucket{le=\"2.5\"}", fs) == -1);

    /* the start time: a plausible wall clock, not in the future */
    double start = value_of(text, "mandate_process_start_time_seconds");
    assert_true(start > 1.5e9);
    assert_true(start <= (double)time(NULL) + 1);
    mandate_pool_free(&pool);
}

static void test_every_family_has_help_and_type(void **state)
{
    (void)state;
    static const test_text_case want[] = { /* a family, its type */
        {"mandate_http_requests_total", "counter"},
        {"mandate_http_request_duration_seconds", "histogram"},
        {"mandate_tokens_issued_total", "counter"},
        {"mandate_rate_limited_total", "counter"},
        {"mandate_audit_fsync_duration_seconds", "histogram"},
        {"mandate_store_errors_total", "counter"},
        {"mandate_token_check_cache_total", "counter"},
        {"mandate_http_connections_closed_total", "counter"},
        {"mandate_refusals_total", "counter"},
        {"mandate_process_start_time_seconds", "gauge"},
    };
    mandate_pool *pool = mandate_pool_new();
    for (int round = 0; round < 2; round++) {
        /* empty first, then with a value in every family */
        if (round == 1) {
            mandate_metrics_request(MANDATE_EP_TOKEN, GRANT_JWT_BEARER, 200, 1234);
            mandate_metrics_token_issued("opaque");
            mandate_metrics_rate_limited(MANDATE_EP_INTROSPECT);
            mandate_metrics_audit_fsync(77);
            mandate_metrics_store_error();
            mandate_metrics_token_check_cache(MANDATE_TOKEN_CACHE_MISS);
            mandate_metrics_connection_closed(MANDATE_GUARD_REQUEST_DEADLINE);
            mandate_metrics_refusal(MANDATE_REFUSAL_METRIC_COALESCED);
        }
        char *text = mandate_metrics_render(pool, mandate_grant_table_metric_labels());
        exposition x;
        parse_exposition(text, &x);
        assert_int_equal(x.n_families, TEST_COUNT(want));
        for (size_t i = 0; i < TEST_COUNT(want); i++) {
            const parsed_family *f = NULL;
            for (size_t j = 0; j < x.n_families; j++) {
                if (strcmp(x.families[j].name, want[i].text) == 0)
                    f = &x.families[j];
            }
            if (f == NULL)
                fail_msg("no family %s", want[i].text);
            assert_true(f->help);
            assert_string_equal(f->type, want[i].want);
            if (round == 1)
                assert_true(f->samples > 0);
        }
        /* HELP comes before TYPE, once each */
        for (size_t i = 0; i < TEST_COUNT(want); i++) {
            char help[128], type[128];
            snprintf(help, sizeof(help), "# HELP %s ", want[i].text);
            snprintf(type, sizeof(type), "# TYPE %s %s\n", want[i].text, want[i].want);
            assert_int_equal(count_lines_starting(text, help), 1);
            assert_non_null(strstr(text, type));
            assert_true(strstr(text, help) < strstr(text, type));
        }
    }
    mandate_pool_free(&pool);
}

/* The checker itself: it takes the format and refuses what is not. */
static void test_checker(void **state)
{
    (void)state;
    static const char *const good[] = {
        "# HELP a_total A.\n# TYPE a_total counter\na_total 1\n",
        "# HELP h H \\\\ x\\n.\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.5\n"
        "h_count 2\n",
        "# HELP a A.\n# TYPE a gauge\na{x=\"q\\\"\\\\\\n\",y=\"\"} -1.5e-3\n",
        "# HELP a A.\n# TYPE a gauge\n", /* a family without samples */
    };
    static const char *const bad[] = {
        "",
        "# HELP a A.\n# TYPE a counter\na 1",              /* no final line feed */
        "# HELP a A.\n# TYPE a counter\n\na 1\n",          /* empty line */
        "a 1\n",                                           /* no HELP/TYPE */
        "# TYPE a counter\na 1\n",                         /* no HELP */
        "# HELP a A.\na 1\n",                              /* no TYPE */
        "# HELP a A.\n# TYPE a counter\na one\n",          /* value */
        "# HELP a A.\n# TYPE a counter\na 1 1700000000\n", /* timestamp */
        "# HELP a A.\n# TYPE a counter\na\n",
        "# HELP a A.\n# TYPE a counter\na{} \n",
        "# HELP a A.\n# TYPE a counter\na{x=1} 1\n",
        "# HELP a A.\n# TYPE a counter\na{x=\"1} 1\n",
        "# HELP a A.\n# TYPE a counter\na{x=\"1\" 1\n",
        "# HELP a A.\n# TYPE a counter\na{x=\"1\"y=\"2\"} 1\n",
        "# HELP a A.\n# TYPE a counter\na{x=\"\\t\"} 1\n", /* escape */
        "# HELP a A.\n# TYPE a counter\na{1x=\"\"} 1\n",   /* label name */
        "# HELP a A.\n# TYPE a counter\n1a 1\n",           /* metric name */
        "# HELP a A.\n# TYPE a counter\na-b 1\n",
        "# HELP a A.\n# TYPE a countr\na 1\n",
        "# HELP a A.\n# TYPE a counter\n# TYPE a counter\na 1\n",
        "# HELP a A.\n# TYPE a counter\na 1\n# HELP a A.\n",
        "# HELP a A.\n# TYPE a counter\n# HELP b B.\n# TYPE b counter\na 1\n", /* apart */
        "# HELP h H.\n# TYPE h counter\nh_bucket{le=\"1\"} 1\n", /* only histograms */
        "# comment\n",
    };
    exposition x;
    char why[600];
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (!check_exposition(good[i], &x, why, sizeof(why)))
            fail_msg("good[%zu] refused: %s", i, why);
        assert_int_equal(x.n_families, 1);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (check_exposition(bad[i], &x, why, sizeof(why)))
            fail_msg("bad[%zu] taken: %s", i, bad[i]);
    }
}

typedef struct worker {
    pthread_barrier_t *start;
    int index;
} worker;

#define THREADS 4
#define PER_THREAD 100000

static void *record(void *arg)
{
    const worker *w = arg;
    pthread_barrier_wait(w->start);
    for (int i = 0; i < PER_THREAD; i++) {
        /* every thread hits the same series, the worst case for atomics */
        mandate_metrics_request(MANDATE_EP_TOKEN, GRANT_CLIENT_CREDENTIALS, 200,
                                i % 2 ? 300 : 7000);
        mandate_metrics_request((mandate_metric_endpoint)(i % MANDATE_EP_COUNT_),
                                GRANT_NONE, 429, 1);
        mandate_metrics_token_issued(i % 2 ? "jwt" : "opaque");
        mandate_metrics_rate_limited(MANDATE_EP_GATEWAY);
        mandate_metrics_audit_fsync(60);
        mandate_metrics_store_error();
    }
    return NULL;
}

static void test_threads_exact_totals(void **state)
{
    (void)state;
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, THREADS + 1);
    pthread_t threads[THREADS];
    worker workers[THREADS];
    for (int i = 0; i < THREADS; i++) {
        workers[i] = (worker){&start, i};
        assert_int_equal(pthread_create(&threads[i], NULL, record, &workers[i]), 0);
    }
    pthread_barrier_wait(&start);

    /* scrapes while recording stay well formed and self-consistent */
    mandate_pool *pool = mandate_pool_new();
    for (int i = 0; i < 20; i++) {
        char *text = render(pool);
        double c =
            value_of(text, "mandate_http_request_duration_seconds_count{endpoint=\"token\"}");
        if (c >= 0)
            check_histogram(text, "mandate_http_request_duration_seconds",
                            "endpoint=\"token\",");
        check_histogram(text, "mandate_audit_fsync_duration_seconds", "");
        mandate_pool_clear(pool);
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(threads[i], NULL), 0);
    pthread_barrier_destroy(&start);

    char *text = render(pool);
    const double total = (double)THREADS * PER_THREAD;
    assert_true(value_of(text, "mandate_http_requests_total{endpoint=\"token\","
                               "grant_type=\"client_credentials\",result=\"2xx\"}") == total);
    /* the token endpoint also got its share of the 429s */
    double token_429 =
        (double)THREADS * ((PER_THREAD + MANDATE_EP_COUNT_ - 1) / MANDATE_EP_COUNT_);
    assert_true(value_of(text, "mandate_http_requests_total{endpoint=\"token\","
                               "grant_type=\"none\",result=\"429\"}") == token_429);
    double all_429 = 0;
    for (size_t e = 0; e < MANDATE_EP_COUNT_; e++) {
        static const char *const names[] = {"token",         "introspect", "revoke",
                                            "gateway_check", "jwks",       "metadata",
                                            "health",        "metrics",    "authorize",
                                            "signin",        "register",   "other"};
        double v = value_fmt(text,
                             "mandate_http_requests_total{endpoint=\"%s\",grant_type=\"none\","
                             "result=\"429\"}",
                             names[e]);
        assert_true(v > 0);
        all_429 += v;
    }
    assert_true(all_429 == total);

    const char *h = "mandate_http_request_duration_seconds";
    assert_true(check_histogram(text, h, "endpoint=\"token\",") == total + token_429);
    /* half at 300 µs, half at 7 ms, the 429s at 1 µs */
    assert_true(value_fmt(text, "%s_bucket{endpoint=\"token\",le=\"0.0001\"}", h) == token_429);
    assert_true(value_fmt(text, "%s_bucket{endpoint=\"token\",le=\"0.0005\"}", h) ==
                token_429 + total / 2);
    assert_true(value_fmt(text, "%s_bucket{endpoint=\"token\",le=\"0.01\"}", h) ==
                token_429 + total);
    char want_sum[64];
    uint64_t sum_us =
        (uint64_t)(total / 2) * 300 + (uint64_t)(total / 2) * 7000 + (uint64_t)token_429 * 1;
    snprintf(want_sum, sizeof(want_sum), "%" PRIu64 ".%06" PRIu64, sum_us / 1000000,
             sum_us % 1000000);
    assert_string_equal(
        raw_value_of(pool, text,
                     "mandate_http_request_duration_seconds_sum{endpoint=\"token\"}"),
        want_sum);

    assert_true(value_of(text, "mandate_tokens_issued_total{format=\"jwt\"}") == total / 2);
    assert_true(value_of(text, "mandate_tokens_issued_total{format=\"opaque\"}") == total / 2);
    assert_true(value_of(text, "mandate_rate_limited_total{endpoint=\"gateway_check\"}") ==
                total);
    assert_true(check_histogram(text, "mandate_audit_fsync_duration_seconds", "") == total);
    assert_true(value_of(text, "mandate_audit_fsync_duration_seconds_bucket{le=\"0.0001\"}") ==
                total);
    assert_string_equal(raw_value_of(pool, text, "mandate_audit_fsync_duration_seconds_sum"),
                        "24.000000"); /* 400000 × 60 µs */
    assert_true(value_of(text, "mandate_store_errors_total") == total);
    mandate_pool_free(&pool);
}

static void test_reset(void **state)
{
    (void)state;
    mandate_pool *pool = mandate_pool_new();
    char *before = render(pool);
    double start = value_of(before, "mandate_process_start_time_seconds");

    mandate_metrics_request(MANDATE_EP_GATEWAY, GRANT_NONE, 200, 120);
    mandate_metrics_request(MANDATE_EP_TOKEN, GRANT_TOKEN_EXCHANGE, 500, 120000);
    mandate_metrics_token_issued("jwt");
    mandate_metrics_rate_limited(MANDATE_EP_REVOKE);
    mandate_metrics_audit_fsync(3000);
    mandate_metrics_store_error();
    mandate_metrics_token_check_cache(MANDATE_TOKEN_CACHE_MISS);
    mandate_metrics_connection_closed(MANDATE_GUARD_REQUEST_DEADLINE);
    char *busy = render(pool);
    assert_true(strlen(busy) > strlen(before));

    mandate_metrics_reset();
    char *text = render(pool);
    assert_string_equal(text, before); /* the same output as a fresh process */
    assert_int_equal(count_lines_starting(text, "mandate_http_requests_total{"), 0);
    assert_int_equal(count_lines_starting(text, "mandate_http_request_duration_seconds_"), 0);
    assert_int_equal(count_lines_starting(text, "mandate_tokens_issued_total{"), 0);
    assert_int_equal(count_lines_starting(text, "mandate_rate_limited_total{"), 0);
    assert_true(value_of(text, "mandate_store_errors_total") == 0);
    assert_int_equal(count_lines_starting(text, "mandate_token_check_cache_total{"), 0);
    assert_true(check_histogram(text, "mandate_audit_fsync_duration_seconds", "") == 0);
    assert_string_equal(raw_value_of(pool, text, "mandate_audit_fsync_duration_seconds_sum"),
                        "0.000000");
    /* the start time is not a counter: reset keeps it */
    assert_true(value_of(text, "mandate_process_start_time_seconds") == start);

    /* and counting starts again from zero */
    mandate_metrics_request(MANDATE_EP_GATEWAY, GRANT_NONE, 200, 120);
    text = render(pool);
    assert_true(value_of(text, "mandate_http_requests_total{endpoint=\"gateway_check\","
                               "grant_type=\"none\",result=\"2xx\"}") == 1);
    assert_true(value_of(text, "mandate_http_request_duration_seconds_count{"
                               "endpoint=\"gateway_check\"}") == 1);
    mandate_pool_free(&pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_endpoint_of),
        cmocka_unit_test(test_grant_of),
        cmocka_unit_test_setup(test_request_counts_land_in_series, reset_setup),
        cmocka_unit_test_setup(test_results_by_status, reset_setup),
        cmocka_unit_test_setup(test_request_histogram, reset_setup),
        cmocka_unit_test_setup(test_other_families, reset_setup),
        cmocka_unit_test_setup(test_every_family_has_help_and_type, reset_setup),
        cmocka_unit_test(test_checker),
        cmocka_unit_test_setup(test_threads_exact_totals, reset_setup),
        cmocka_unit_test_setup(test_reset, reset_setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
