/* The router (core/router.c): method and path to an endpoint, 404 for a
 * path no endpoint has, 405 with Allow for a method it does not take. The
 * endpoints are wrapped (-Wl,--wrap): each only says it was called. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "endpoints-private.h"
#include "pool-private.h"
#include "router-private.h"

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

typedef struct routed {
    mandate_http_response resp;
    const char *endpoint; /* NULL: none was called */
} routed;

static routed dispatch(mandate_pool *pool, const char *method, const char *path)
{
    mandate_http_request req = {.method = method, .path = path, .pool = pool};
    routed r = {0};
    called = NULL;
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

static void test_routes(void **state)
{
    (void)state;
    static const struct {
        const char *method, *path, *endpoint;
    } cases[] = {
        {"GET", "/healthz", "healthz"},
        {"HEAD", "/healthz", "healthz"},
        {"GET", "/readyz", "readyz"},
        {"HEAD", "/readyz", "readyz"},
        {"POST", "/oauth2/token", "token"},
        {"GET", "/oauth2/jwks", "jwks"},
        {"GET", "/.well-known/oauth-authorization-server", "metadata"},
        {"POST", "/oauth2/introspect", "introspect"},
        {"POST", "/oauth2/revoke", "revoke"},
        {"GET", "/metrics", "metrics"},
        /* nginx auth_request keeps the original method; Envoy appends the path */
        {"GET", "/gateway/check", "gateway_check"},
        {"POST", "/gateway/check", "gateway_check"},
        {"DELETE", "/gateway/check", "gateway_check"},
        {"GET", "/gateway/check/mcp/tools", "gateway_check"},
        {"PUT", "/gateway/check/", "gateway_check"},
    };
    mandate_pool *pool = mandate_pool_new();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        routed r = dispatch(pool, cases[i].method, cases[i].path);
        if (r.endpoint == NULL || strcmp(r.endpoint, cases[i].endpoint) != 0)
            fail_msg("%s %s: %s, expected %s", cases[i].method, cases[i].path,
                     r.endpoint ? r.endpoint : "(none)", cases[i].endpoint);
        assert_int_equal(r.resp.status, 299);
    }
    mandate_pool_free(&pool);
}

/* Paths are matched whole and with their case: near misses are 404. */
static void test_not_found(void **state)
{
    (void)state;
    static const char *const paths[] = {"/",
                                        "/nope",
                                        "/oauth2/token/",
                                        "/oauth2/tokens",
                                        "/OAUTH2/TOKEN",
                                        "/healthz/x",
                                        "/gateway/checkx",
                                        "/gateway",
                                        "/metrics ",
                                        "",
                                        "/oauth2/jwks.json",
                                        /* RFC 8414 only: no OpenID provider */
                                        "/.well-known/openid-configuration"};
    mandate_pool *pool = mandate_pool_new();
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        routed r = dispatch(pool, "GET", paths[i]);
        if (r.endpoint != NULL || r.resp.status != 404)
            fail_msg("GET '%s': %s %u, expected 404", paths[i],
                     r.endpoint ? r.endpoint : "(none)", r.resp.status);
        assert_non_null(strstr(r.resp.body, "\"error\":\"not_found\""));
        assert_string_equal(r.resp.content_type, "application/json");
        assert_null(header(&r.resp, "Allow"));
    }
    mandate_pool_free(&pool);
}

/* A path that exists with another method: 405, and Allow lists the methods
 * it takes (RFC 9110 §15.5.6). */
static void test_method_not_allowed(void **state)
{
    (void)state;
    static const struct {
        const char *method, *path, *allow;
    } cases[] = {
        {"GET", "/oauth2/token", "POST"},
        {"HEAD", "/oauth2/token", "POST"},
        {"POST", "/healthz", "GET, HEAD"},
        {"DELETE", "/readyz", "GET, HEAD"},
        {"POST", "/oauth2/jwks", "GET"},
        {"HEAD", "/oauth2/jwks", "GET"},
        {"GET", "/oauth2/introspect", "POST"},
        {"PUT", "/oauth2/revoke", "POST"},
        {"POST", "/metrics", "GET"},
        {"get", "/healthz", "GET, HEAD"}, /* methods are case-sensitive */
    };
    mandate_pool *pool = mandate_pool_new();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        routed r = dispatch(pool, cases[i].method, cases[i].path);
        if (r.endpoint != NULL || r.resp.status != 405)
            fail_msg("%s %s: %s %u, expected 405", cases[i].method, cases[i].path,
                     r.endpoint ? r.endpoint : "(none)", r.resp.status);
        assert_string_equal(header(&r.resp, "Allow"), cases[i].allow);
        assert_non_null(strstr(r.resp.body, "\"error\":\"invalid_request\""));
        assert_non_null(strstr(r.resp.body, "method not allowed"));
    }
    mandate_pool_free(&pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_method_not_allowed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
