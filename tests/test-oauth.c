/* The parsing and policy steps of the token endpoint: form bodies, Basic
 * credentials, scopes and audiences; and the bytes of its answer. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http-private.h"
#include "oauth-private.h"
#include "pool-private.h"

static mandate_pool *pool;

static int setup(void **state)
{
    (void)state;
    pool = mandate_pool_new();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mandate_pool_free(&pool);
    return 0;
}

static mandate_rc parse(const char *body, mandate_form *form, mandate_error *err)
{
    static const char *const repeatable[] = {"resource", NULL};
    return mandate_form_parse(pool, body, strlen(body), repeatable, form, err);
}

/* A message that quotes input cut at a byte count stays valid UTF-8: it
 * goes into error_description and onto pages (found by fuzz-authorize). */
static void test_form_message_utf8(void **state)
{
    (void)state;
    mandate_form f;
    mandate_error err = {0};
    /* 39 ASCII bytes then "é": '%.40s' cuts the character in two */
    const char *body = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa%C3%A9=1&"
                       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa%C3%A9=2";
    assert_int_equal(parse(body, &f, &err), MANDATE_INVALID);
    json_t *j = json_string(err.message);
    assert_non_null(j);
    json_decref(j);
    assert_non_null(strstr(err.message, "aaa?"));
    /* mandate_utf8_repair itself: good sequences kept, bad bytes '?' */
    char s[] = "ok \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xc3 \xed\xa0\x80 \xc0\xaf \xf5\x80";
    mandate_utf8_repair(s);
    assert_string_equal(s, "ok \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 ? ??? ?? ??");
}

static void test_form_values(void **state)
{
    (void)state;
    mandate_form f;
    mandate_error err = {0};
    assert_int_equal(parse("grant_type=client_credentials&scope=gateway%3Ainvoke+mcp:call"
                           "&empty=&resource=https%3A%2F%2Fa&resource=https://b",
                           &f, &err),
                     MANDATE_OK);
    assert_string_equal(mandate_form_get(&f, "grant_type"), "client_credentials");
    assert_string_equal(mandate_form_get(&f, "scope"), "gateway:invoke mcp:call");
    /* RFC 6749 §3.1: a parameter without a value is omitted */
    assert_null(mandate_form_get(&f, "empty"));
    assert_null(mandate_form_get(&f, "absent"));
    const mandate_form_param *r = mandate_form_find(&f, "resource");
    assert_non_null(r);
    assert_int_equal(r->value_count, 2);
    assert_string_equal(r->values[0], "https://a");
    assert_string_equal(r->values[1], "https://b");
    assert_int_equal(parse("", &f, &err), MANDATE_OK);
    assert_int_equal(f.count, 0);
    assert_int_equal(parse("a=1&&b=%C3%A9", &f, &err), MANDATE_OK);
    assert_string_equal(mandate_form_get(&f, "b"), "\xc3\xa9");
    /* values with nothing encoded: a '+' alone, raw UTF-8, a long token */
    assert_int_equal(parse("a=x+y&b=\xc3\xa9&c=~-_.", &f, &err), MANDATE_OK);
    assert_string_equal(mandate_form_get(&f, "a"), "x y");
    assert_string_equal(mandate_form_get(&f, "b"), "\xc3\xa9");
    assert_string_equal(mandate_form_get(&f, "c"), "~-_.");
    char body[700] = "token=";
    char token[650];
    for (size_t i = 0; i < sizeof(token) - 1; i++)
        token[i] = "eyJhbGciOi.-_0123456789"[i % 23];
    token[sizeof(token) - 1] = '\0';
    strcat(body, token);
    strcat(body, "&token_type_hint=access_token");
    assert_int_equal(parse(body, &f, &err), MANDATE_OK);
    assert_string_equal(mandate_form_get(&f, "token"), token);
    assert_string_equal(mandate_form_get(&f, "token_type_hint"), "access_token");
}

static void expect_bad(const char *body, const char *why)
{
    mandate_form f;
    mandate_error err = {0};
    assert_int_equal(parse(body, &f, &err), MANDATE_INVALID);
    if (strstr(err.message, why) == NULL)
        fail_msg("\"%s\": expected \"%s\" in \"%s\"", body, why, err.message);
}

static void test_form_refusals(void **state)
{
    (void)state;
    expect_bad("scope=a&scope=b", "parameter 'scope' is repeated");
    expect_bad("grant_type=x&grant_type=", "repeated");
    expect_bad("a=%zz", "bad percent-encoding");
    expect_bad("a=%4", "truncated");
    expect_bad("a=x%00y", "control character");
    expect_bad("a=x%0Ay", "control character");
    expect_bad("a=x\ty", "control character");  /* raw, nothing encoded */
    expect_bad("a=x\x7fy", "control character");
    expect_bad("a=\xc3(", "invalid UTF-8");
    expect_bad("a=ok&b=%C2%85", "control character"); /* C1 */
    expect_bad("client_id=a%0D%0Ab", "control character");
    expect_bad("a=%C3%28", "invalid UTF-8");
    expect_bad("a=%C0%AF", "invalid UTF-8");          /* overlong */
    expect_bad("a=%ED%A0%80", "invalid UTF-8");       /* surrogate */
    expect_bad("a=%F4%90%80%80", "invalid UTF-8");    /* past U+10FFFF */
    expect_bad("a=%E2%82", "invalid UTF-8");          /* truncated sequence */
    expect_bad("=x", "no name");
    char many[1024] = "";
    for (int i = 0; i < 40; i++)
        sprintf(many + strlen(many), "p%d=1&", i);
    expect_bad(many, "too many parameters");
    char resources[1024] = "";
    for (int i = 0; i < 10; i++)
        strcat(resources, "resource=https://x&");
    expect_bad(resources, "repeated too often");
}

static void test_basic(void **state)
{
    (void)state;
    char *id = NULL, *secret = NULL;
    mandate_error err = {0};
    /* "marketpulse-abc:s3cr%3At" with ':' percent-encoded in the secret */
    assert_int_equal(mandate_basic_auth_parse(pool, "Basic bWFya2V0cHVsc2UtYWJjOnMzY3IlM0F0",
                                              &id, &secret, &err),
                     MANDATE_OK);
    assert_string_equal(id, "marketpulse-abc");
    assert_string_equal(secret, "s3cr:t");
    assert_int_equal(mandate_basic_auth_parse(pool, "basic YTpi", &id, &secret, &err),
                     MANDATE_OK);
    assert_string_equal(id, "a");
    assert_string_equal(secret, "b");
    assert_int_equal(mandate_basic_auth_parse(pool, "Bearer abc", &id, &secret, &err),
                     MANDATE_NEXT);
    assert_int_equal(mandate_basic_auth_parse(pool, "Basicx YTpi", &id, &secret, &err),
                     MANDATE_NEXT);
    const char *bad[] = {"Basic", "Basic !!!!", "Basic YTpi=", "Basic YWJj", /* no colon */
                         "Basic YT=i", "Basic YQ==YQ==", "Basic YToA"};   /* NUL in secret */
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(mandate_basic_auth_parse(pool, bad[i], &id, &secret, &err),
                         MANDATE_INVALID);
}

static const mandate_client client = {
    .client_id = "marketpulse-abc123",
    .scopes = "gateway:invoke mcp:call memory:read",
    .default_scopes = "gateway:invoke",
    .audiences = "https://mcp.example/calendar https://mcp.example/news",
};

static void test_scope_policy(void **state)
{
    (void)state;
    const char *scope = NULL;
    mandate_oauth_error e = {0};
    assert_int_equal(mandate_policy_scope(pool, &client, "mcp:call gateway:invoke", &scope, &e),
                     MANDATE_OK);
    assert_string_equal(scope, "mcp:call gateway:invoke");
    assert_int_equal(mandate_policy_scope(pool, &client, "  mcp:call  mcp:call ", &scope, &e),
                     MANDATE_OK);
    assert_string_equal(scope, "mcp:call");
    assert_int_equal(mandate_policy_scope(pool, &client, NULL, &scope, &e), MANDATE_OK);
    assert_string_equal(scope, "gateway:invoke");
    assert_int_equal(mandate_policy_scope(pool, &client, "mcp:call trading:execute", &scope, &e),
                     MANDATE_DENIED);
    assert_int_equal(e.status, 400);
    assert_string_equal(e.error, "invalid_scope");
    assert_string_equal(e.description, "scope 'trading:execute' is not allowed for this client");
    /* a prefix of an allowed scope is not that scope */
    assert_int_equal(mandate_policy_scope(pool, &client, "mcp", &scope, &e), MANDATE_DENIED);
    assert_int_equal(mandate_policy_scope(pool, &client, "a\"b", &scope, &e), MANDATE_DENIED);
    assert_string_equal(e.error, "invalid_scope");
    /* RFC 6749 §3.3: no scope asked and no default: invalid_scope, never a
     * token of no scope */
    mandate_client no_default = client;
    no_default.default_scopes = NULL;
    scope = "unchanged";
    assert_int_equal(mandate_policy_scope(pool, &no_default, NULL, &scope, &e), MANDATE_DENIED);
    assert_int_equal(e.status, 400);
    assert_string_equal(e.error, "invalid_scope");
    no_default.default_scopes = "";
    assert_int_equal(mandate_policy_scope(pool, &no_default, NULL, &scope, &e), MANDATE_DENIED);
    assert_string_equal(e.error, "invalid_scope");
}

static void test_audience_policy(void **state)
{
    (void)state;
    const char *aud = NULL;
    mandate_oauth_error e = {0};
    mandate_form_param p = {.name = "resource",
                            .values = {"https://mcp.example/news"},
                            .value_count = 1};
    assert_int_equal(mandate_policy_audience(pool, &client, &p, NULL, &aud, &e), MANDATE_OK);
    assert_string_equal(aud, "https://mcp.example/news");
    assert_int_equal(mandate_policy_audience(pool, &client, NULL, NULL, &aud, &e), MANDATE_OK);
    assert_string_equal(aud, client.audiences);
    p.values[0] = "https://evil.example/";
    assert_int_equal(mandate_policy_audience(pool, &client, &p, NULL, &aud, &e), MANDATE_DENIED);
    assert_string_equal(e.error, "invalid_target");
    p.values[0] = "not-a-uri";
    assert_int_equal(mandate_policy_audience(pool, &client, &p, NULL, &aud, &e), MANDATE_DENIED);
    p.values[0] = "https://mcp.example/news#frag";
    assert_int_equal(mandate_policy_audience(pool, &client, &p, NULL, &aud, &e), MANDATE_DENIED);
    const mandate_client none = {.client_id = "x"};
    /* a client of no audience: the default resource, else none (the
     * token is then refused as it is minted) */
    assert_int_equal(mandate_policy_audience(pool, &none, NULL, NULL, &aud, &e), MANDATE_OK);
    assert_null(aud);
    assert_int_equal(
        mandate_policy_audience(pool, &none, NULL, "https://mcp.example/default", &aud, &e),
        MANDATE_OK);
    assert_string_equal(aud, "https://mcp.example/default");
    p.values[0] = "https://mcp.example/default";
    assert_int_equal(
        mandate_policy_audience(pool, &none, &p, "https://mcp.example/default", &aud, &e),
        MANDATE_OK);
    assert_string_equal(aud, "https://mcp.example/default");
    p.values[0] = "https://mcp.example/news";
    assert_int_equal(
        mandate_policy_audience(pool, &none, &p, "https://mcp.example/default", &aud, &e),
        MANDATE_DENIED);
    assert_string_equal(e.error, "invalid_target");
    /* a client with audiences of its own is not widened by the default */
    p.values[0] = "https://mcp.example/default";
    assert_int_equal(
        mandate_policy_audience(pool, &client, &p, "https://mcp.example/default", &aud, &e),
        MANDATE_DENIED);
    assert_int_equal(
        mandate_policy_audience(pool, &client, NULL, "https://mcp.example/default", &aud, &e),
        MANDATE_OK);
    assert_string_equal(aud, client.audiences);
}

static void test_lifetime(void **state)
{
    (void)state;
    mandate_config cfg = {.token_lifetime = 3600};
    mandate_client c = client;
    assert_int_equal(mandate_policy_lifetime(&cfg, &c), 3600);
    c.token_ttl = 900;
    assert_int_equal(mandate_policy_lifetime(&cfg, &c), 900);
    c.token_ttl = 10 * 86400;
    assert_int_equal(mandate_policy_lifetime(&cfg, &c), 86400);
}

/* What jansson alone makes of {member: token, ...rest}: the reference the
 * token response must match byte for byte. */
static char *reference_json(const char *token, json_t *rest)
{
    json_t *body = json_object();
    json_object_set_new(body, "access_token", json_string(token));
    json_object_update(body, rest);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    return text;
}

static void assert_token_response(const char *token, json_t *rest)
{
    mandate_http_request req = {.pool = pool};
    mandate_http_response resp = {0};
    char *expected = reference_json(token, rest);
    mandate_http_response_token_json(&req, &resp, 200, "access_token", token, rest);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.content_type, "application/json");
    assert_int_equal(resp.body_len, strlen(expected));
    assert_memory_equal(resp.body, expected, resp.body_len);
    assert_int_equal(resp.body[resp.body_len], '\0');
    free(expected);
}

static void test_token_response(void **state)
{
    (void)state;
    /* a JWS and an opaque token: copied without jansson walking them */
    assert_token_response("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln-_~+/=",
                          json_pack("{s:s,s:I,s:s}", "token_type", "Bearer", "expires_in",
                                    (json_int_t)3600, "scope", "mcp:call \"x\""));
    assert_token_response("mdo_AAAA", json_object());
    assert_token_response("", json_pack("{s:s}", "token_type", "N_A"));
    /* anything JSON escapes goes through jansson */
    assert_token_response("a\"b\\c\nd\xc3\xa9\x01", json_pack("{s:s}", "token_type", "Bearer"));

    /* not UTF-8: refused, not sent broken */
    mandate_http_request req = {.pool = pool};
    mandate_http_response resp = {0};
    mandate_http_response_token_json(&req, &resp, 200, "access_token", "a\xff",
                                     json_pack("{s:s}", "token_type", "Bearer"));
    assert_int_equal(resp.status, 500);
    json_t *body = json_loadb(resp.body, resp.body_len, 0, NULL);
    assert_non_null(body);
    assert_string_equal(json_string_value(json_object_get(body, "error")), "server_error");
    json_decref(body);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_form_values),
        T(test_form_refusals),
        T(test_basic),
        T(test_form_message_utf8),
        T(test_scope_policy),
        T(test_audience_policy),
        T(test_lifetime),
        T(test_token_response),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
