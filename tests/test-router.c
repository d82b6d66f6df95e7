/* The router (core/router.c): method and path to an endpoint, 404 for a
 * path no endpoint has, 405 with Allow for a method it does not take. The
 * endpoints are wrapped (-Wl,--wrap): each only says it was called. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "endpoints-private.h"
#include "pool-private.h"
#include "router-private.h"
#include "test-helpers.h"

static const char *called;

#define WRAP(name)                                                                             \
    void __wrap_mandate_endpoint_##name(mandate_http_request *req,                             \
                                        mandate_http_response *resp);                          \
    void __wrap_mandate_endpoint_##name(mandate_http_request *req,                             \
                                        mandate_http_response *resp)                           \
    {                                                                                          \
        (void)req;                                                                             \
        called = #name;                                                                        \
        resp->status = 299;                                                                    \
    }
WRAP(healthz)
WRAP(readyz)
WRAP(token)
WRAP(metadata)
WRAP(jwks)
WRAP(introspect)
WRAP(revoke)
WRAP(gateway_check)
WRAP(metrics)
WRAP(register)

/* the CORS answers, recorded */
static const char *cors_called; /* "response" or "preflight" */
static const char *preflight_methods;
void __wrap_mandate_cors_response(mandate_http_request *req, mandate_http_response *resp);
void __wrap_mandate_cors_response(mandate_http_request *req, mandate_http_response *resp)
{
    (void)req;
    (void)resp;
    cors_called = "response";
}
void __wrap_mandate_cors_preflight(mandate_http_request *req, mandate_http_response *resp,
                                   const char *methods);
void __wrap_mandate_cors_preflight(mandate_http_request *req, mandate_http_response *resp,
                                   const char *methods)
{
    (void)req;
    cors_called = "preflight";
    preflight_methods = methods;
    resp->status = 204;
}

typedef struct routed {
    mandate_http_response resp;
    const char *endpoint; /* NULL: none was called */
} routed;

static routed dispatch(mandate_pool *pool, const char *method, const char *path)
{
    mandate_http_request req = {.method = method, .path = path, .pool = pool};
    routed r = {0};
    called = NULL;
    cors_called = NULL;
    preflight_methods = NULL;
    mandate_router_dispatch(&req, &r.resp);
    r.endpoint = called;
    return r;
}

static const char *header(const mandate_http_response *resp, const char *name)
{
    for (size_t i = 0; i < resp->header_count; i++)
        if (strcmp(resp->headers[i].name, name) == 0)
            return resp->headers[i].value;
    return NULL;
}

/* Each method and path reaches its endpoint, or (endpoint NULL) is a path
 * that exists with another method: 405, and Allow lists the methods it takes
 * (RFC 9110 §15.5.6). */
static void test_routes(void **state)
{
    mandate_pool *pool = *state;
    static const struct {
        const char *method, *path, *endpoint, *allow;
    } cases[] = {
        {"GET", "/healthz", "healthz", NULL},
        {"HEAD", "/healthz", "healthz", NULL},
        {"GET", "/readyz", "readyz", NULL},
        {"HEAD", "/readyz", "readyz", NULL},
        {"POST", "/oauth2/token", "token", NULL},
        {"GET", "/oauth2/jwks", "jwks", NULL},
        {"GET", "/.well-known/oauth-authorization-server", "metadata", NULL},
        {"POST", "/oauth2/introspect", "introspect", NULL},
        {"POST", "/oauth2/revoke", "revoke", NULL},
        {"GET", "/metrics", "metrics", NULL},
        /* nginx auth_request keeps the original method; Envoy appends the path */
        {"GET", "/gateway/check", "gateway_check", NULL},
        {"POST", "/gateway/check", "gateway_check", NULL},
        {"DELETE", "/gateway/check", "gateway_check", NULL},
        {"GET", "/gateway/check/mcp/tools", "gateway_check", NULL},
        {"PUT", "/gateway/check/", "gateway_check", NULL},
        /* not allowed */
        {"GET", "/oauth2/token", NULL, "POST"},
        {"HEAD", "/oauth2/token", NULL, "POST"},
        {"POST", "/healthz", NULL, "GET, HEAD"},
        {"DELETE", "/readyz", NULL, "GET, HEAD"},
        {"POST", "/oauth2/jwks", NULL, "GET"},
        {"HEAD", "/oauth2/jwks", NULL, "GET"},
        {"GET", "/oauth2/introspect", NULL, "POST"},
        {"PUT", "/oauth2/revoke", NULL, "POST"},
        {"POST", "/metrics", NULL, "GET"},
        {"get", "/healthz", NULL, "GET, HEAD"}, /* methods are case-sensitive */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        routed r = dispatch(pool, cases[i].method, cases[i].path);
        unsigned status = cases[i].endpoint != NULL ? 299 : 405;
        bool reached = cases[i].endpoint != NULL
                           ? r.endpoint != NULL && strcmp(r.endpoint, cases[i].endpoint) == 0
                           : r.endpoint == NULL;
        if (!reached || r.resp.status != status)
            fail_msg("%s %s: %s %u, expected %s %u", cases[i].method, cases[i].path,
                     r.endpoint ? r.endpoint : "(none)", r.resp.status,
                     cases[i].endpoint ? cases[i].endpoint : "(none)", status);
        if (cases[i].allow == NULL)
            continue;
        assert_string_equal(header(&r.resp, "Allow"), cases[i].allow);
        assert_non_null(strstr(r.resp.body, "\"error\":\"invalid_request\""));
        assert_non_null(strstr(r.resp.body, "method not allowed"));
    }
}

/* Paths are matched whole and with their case: near misses are 404. */
static void test_not_found(void **state)
{
    mandate_pool *pool = *state;
    static const char *const paths[] = {"/", "/nope", "/oauth2/token/", "/oauth2/tokens",
                                        "/OAUTH2/TOKEN", "/healthz/x", "/gateway/checkx",
                                        "/gateway", "/metrics ", "", "/oauth2/jwks.json",
                                        /* RFC 8414 only: no OpenID provider */
                                        "/.well-known/openid-configuration"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        routed r = dispatch(pool, "GET", paths[i]);
        if (r.endpoint != NULL || r.resp.status != 404)
            fail_msg("GET '%s': %s %u, expected 404", paths[i],
                     r.endpoint ? r.endpoint : "(none)", r.resp.status);
        assert_non_null(strstr(r.resp.body, "\"error\":\"not_found\""));
        assert_string_equal(r.resp.content_type, "application/json");
        assert_null(header(&r.resp, "Allow"));
    }
}

/* The endpoints a browser client calls itself answer other origins (a
 * preflight, and CORS headers on the answer); the pages, the servers'
 * endpoints and the gateway check never do. */
static void test_cors(void **state)
{
    mandate_pool *pool = *state;
    static const test_text_case preflights[] = {
        /* path, the methods it takes */
        {"/oauth2/token", "POST"},
        {"/oauth2/jwks", "GET"},
        {"/.well-known/oauth-authorization-server", "GET"},
        {"/.well-known/oauth-authorization-server/tenant-a", "GET"},
        {"/oauth2/revoke", "POST"},
        {"/oauth2/register", "POST"},
    };
    for (size_t i = 0; i < TEST_COUNT(preflights); i++) {
        routed r = dispatch(pool, "OPTIONS", preflights[i].text);
        if (r.endpoint != NULL || cors_called == NULL || strcmp(cors_called, "preflight") != 0)
            fail_msg("OPTIONS %s: endpoint %s, cors %s", preflights[i].text,
                     r.endpoint ? r.endpoint : "(none)", cors_called ? cors_called : "(none)");
        assert_string_equal(preflight_methods, preflights[i].want);
        assert_int_equal(r.resp.status, 204);
    }
    static const struct {
        const char *method, *path;
        bool cors;
    } answers[] = {
        {"POST", "/oauth2/token", true},
        {"GET", "/oauth2/jwks", true},
        {"GET", "/.well-known/oauth-authorization-server", true},
        {"POST", "/oauth2/revoke", true},
        {"POST", "/oauth2/register", true},
        {"POST", "/oauth2/introspect", false},
        {"GET", "/gateway/check", false},
        {"OPTIONS", "/gateway/check", false}, /* the original method, for the gateway */
        {"GET", "/metrics", false},
        {"GET", "/healthz", false},
    };
    for (size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); i++) {
        routed r = dispatch(pool, answers[i].method, answers[i].path);
        assert_non_null(r.endpoint);
        if ((cors_called != NULL) != answers[i].cors ||
            (cors_called != NULL && strcmp(cors_called, "response") != 0))
            fail_msg("%s %s: cors %s", answers[i].method, answers[i].path,
                     cors_called ? cors_called : "(none)");
    }
    /* no preflight where no other origin may call */
    routed r = dispatch(pool, "OPTIONS", "/oauth2/introspect");
    assert_int_equal(r.resp.status, 405);
    assert_null(cors_called);
    assert_string_equal(header(&r.resp, "Allow"), "POST");
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, test_pool_setup, test_pool_teardown)
    const struct CMUnitTest tests[] = {
        T(test_routes),
        T(test_not_found),
        T(test_cors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
