#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "audit-events-private.h"
#include "endpoints-private.h"
#include "jose.h"
#include "pool-private.h"
#include "request-fixture.h"

static const char *const *headers;

void test_request_headers(const char *const *pairs)
{
    headers = pairs;
}

__typeof__(mandate_http_request_header) __wrap_mandate_http_request_header;
const char *__wrap_mandate_http_request_header(const mandate_http_request *req,
                                               const char *name)
{
    (void)req;
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i += 2)
        if (strcasecmp(headers[i], name) == 0)
            return headers[i + 1];
    return NULL;
}

void test_request_init(mandate_http_request *req, mandate_pool *pool, mandate_runtime *rt,
                       const char *method, const char *path, const char *body)
{
    memset(req, 0, sizeof(*req));
    req->method = method;
    req->path = path;
    req->raw_target = path;
    req->pool = pool;
    req->runtime = rt;
    req->body = body != NULL ? body : "";
    req->body_len = strlen(req->body);
    strcpy(req->request_id, "0123456789abcdef");
    struct sockaddr_in *sin = (struct sockaddr_in *)&req->socket_peer;
    sin->sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &sin->sin_addr);
}

/* --- the audit trail ------------------------------------------------------- */

#define KEPT 64

static struct {
    char event[64];
    json_t *fields;
} records[KEPT];
static size_t n_records;
static char failing[64];
static int failing_left;

static bool random_fails;

void test_audit_reset(void)
{
    random_fails = false;
    for (size_t i = 0; i < n_records; i++)
        json_decref(records[i].fields);
    n_records = 0;
    failing_left = 0;
}

__typeof__(mandate_audit_event) __wrap_mandate_audit_event;
mandate_rc __wrap_mandate_audit_event(const char *event, json_t *fields)
{
    if (failing_left > 0 && strcmp(event, failing) == 0) {
        failing_left--;
        json_decref(fields);
        return MANDATE_ERROR;
    }
    if (n_records == KEPT) {
        json_decref(records[0].fields);
        memmove(&records[0], &records[1], (KEPT - 1) * sizeof(records[0]));
        n_records--;
    }
    snprintf(records[n_records].event, sizeof(records[n_records].event), "%s", event);
    records[n_records].fields = fields != NULL ? fields : json_object();
    n_records++;
    return MANDATE_OK;
}

size_t test_audit_count(const char *event)
{
    size_t n = 0;
    for (size_t i = 0; i < n_records; i++)
        n += strcmp(records[i].event, event) == 0;
    return n;
}

json_t *test_audit_last(const char *event)
{
    for (size_t i = n_records; i-- > 0;)
        if (strcmp(records[i].event, event) == 0)
            return records[i].fields;
    return NULL;
}

const char *test_audit_field(const char *event, const char *member)
{
    const char *s = json_string_value(json_object_get(test_audit_last(event), member));
    return s != NULL ? s : "";
}

void test_audit_fail(const char *event, int n)
{
    snprintf(failing, sizeof(failing), "%s", event);
    failing_left = n;
}

void test_random_fails_next(void)
{
    random_fails = true;
}

__typeof__(RAND_bytes) __real_RAND_bytes;
__typeof__(RAND_bytes) __wrap_RAND_bytes;
int __wrap_RAND_bytes(unsigned char *buf, int num)
{
    if (random_fails) {
        random_fails = false;
        return 0;
    }
    return __real_RAND_bytes(buf, num);
}

/* --- the token endpoint ---------------------------------------------------- */

const char *test_basic(mandate_pool *pool, const char *id, const char *secret)
{
    char *plain = mandate_pool_printf(pool, "%s:%s", id, secret);
    size_t n = strlen(plain);
    unsigned char *b64 = mandate_pool_alloc(pool, 4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock(b64, (const unsigned char *)plain, (int)n);
    return mandate_pool_printf(pool, "Basic %s", (const char *)b64);
}

void test_endpoint_with(test_runtime *t, mandate_pool *pool, test_endpoint_fn *endpoint,
                        const char *method, const char *path, const char *const *pairs,
                        const char *body, test_answer *a)
{
    test_request_headers(pairs);
    mandate_http_request req;
    test_request_init(&req, pool, t->rt, method, path, body);
    test_answer_clear(a);
    endpoint(&req, &a->resp);
    test_request_headers(NULL);
    a->status = a->resp.status;
    a->metric_grant = req.metric_grant;
    a->body = a->resp.body != NULL ? json_loadb(a->resp.body, a->resp.body_len, 0, NULL) : NULL;
    const char *error = json_string_value(json_object_get(a->body, "error"));
    a->error = error != NULL ? error : "";
}

void test_token_with(test_runtime *t, mandate_pool *pool, const char *const *pairs,
                     const char *body, test_answer *a)
{
    test_endpoint_with(t, pool, mandate_endpoint_token, "POST", "/oauth2/token", pairs, body, a);
}

void test_token(test_runtime *t, mandate_pool *pool, const char *authorization,
                const char *body, test_answer *a)
{
    const char *pairs[] = {"Content-Type", "application/x-www-form-urlencoded",
                           authorization != NULL ? "Authorization" : NULL, authorization, NULL};
    test_token_with(t, pool, pairs, body, a);
}

const char *test_answer_header(const test_answer *a, const char *name)
{
    for (size_t i = 0; i < a->resp.header_count; i++)
        if (strcasecmp(a->resp.headers[i].name, name) == 0)
            return a->resp.headers[i].value;
    return NULL;
}

const char *test_answer_get(const test_answer *a, const char *member)
{
    const char *s = json_string_value(json_object_get(a->body, member));
    return s != NULL ? s : "";
}

void test_answer_clear(test_answer *a)
{
    json_decref(a->body);
    memset(a, 0, sizeof(*a));
}

void test_runtime_teardown(test_runtime **t, mandate_pool **pool)
{
    test_audit_reset();
    mandate_pool_free(pool);
    test_runtime_free(t);
}

void test_answer_expect(const test_answer *a, unsigned status, const char *error)
{
    if (a->status != status || strcmp(a->error, error) != 0)
        fail_msg("%u %s, expected %u %s: %.*s", a->status, a->error, status, error,
                 (int)a->resp.body_len, a->resp.body);
}

const char *test_form_encode(mandate_pool *pool, const char *s)
{
    char *out = mandate_pool_alloc(pool, 3 * strlen(s) + 1), *o = out;
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("-._~", c) != NULL) {
            *o++ = (char)c;
        } else {
            snprintf(o, 4, "%%%02X", c);
            o += 3;
        }
    }
    *o = '\0';
    return out;
}

const char *test_saml_exchange(mandate_pool *pool, const char *script, const char *extra)
{
    return mandate_pool_printf(pool,
                               "grant_type=urn:ietf:params:oauth:grant-type:token-exchange"
                               "&subject_token_type=urn:ietf:params:oauth:token-type:saml2"
                               "&subject_token=%s%s",
                               test_form_encode(pool, script), extra);
}

const char *test_jwt_script(mandate_pool *pool, const char *typ, const char *script)
{
    const char *header = mandate_pool_printf(pool, "{\"alg\":\"ES256\",\"typ\":\"%s\"}", typ);
    char *h = mandate_pool_alloc(pool, mandate_b64url_encoded_len(strlen(header)) + 1);
    char *p = mandate_pool_alloc(pool, mandate_b64url_encoded_len(strlen(script)) + 1);
    mandate_b64url_encode((const unsigned char *)header, strlen(header), h);
    mandate_b64url_encode((const unsigned char *)script, strlen(script), p);
    return mandate_pool_printf(pool, "%s.%s.c2ln", h, p);
}
