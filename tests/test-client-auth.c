/* Client authentication (core/client-auth.c): which method the client used,
 * its record from the store, then the backends in their order; every
 * refusal, with the real sqlite store and local backend through the loader.
 * The store's and the backends' failures are injected by wrapping the
 * facade's calls (-Wl,--wrap). */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "clients-private.h"
#include "clock-private.h"
#include "jose.h"
#include "oauth-private.h"
#include "plugins-private.h"
#include "pool-private.h"
#include "request-fixture.h"
#include "test-helpers.h"
#include "util-private.h"

/* --- failures injected into the facade ------------------------------------- */

static mandate_rc store_answer, backend_answer; /* MANDATE_OK: call the real one */

__typeof__(mandate_store_client_get) __real_mandate_store_client_get;
__typeof__(mandate_store_client_get) __wrap_mandate_store_client_get;
mandate_rc __wrap_mandate_store_client_get(const mandate_instance *store, mandate_pool *pool,
                                           const char *client_id, mandate_client *client_r,
                                           mandate_error *err)
{
    if (store_answer != MANDATE_OK)
        return mandate_error_set(err, store_answer, "store: injected");
    return __real_mandate_store_client_get(store, pool, client_id, client_r, err);
}

__typeof__(mandate_backend_authenticate) __real_mandate_backend_authenticate;
__typeof__(mandate_backend_authenticate) __wrap_mandate_backend_authenticate;
mandate_rc __wrap_mandate_backend_authenticate(const mandate_instance *in, mandate_pool *pool,
                                               const mandate_credential *cred,
                                               const mandate_client *client, mandate_error *err)
{
    if (backend_answer != MANDATE_OK)
        return mandate_error_set(err, backend_answer, "backend: injected");
    return __real_mandate_backend_authenticate(in, pool, cred, client, err);
}

/* --- the fixture ------------------------------------------------------------ */

typedef struct fixture {
    test_runtime *t;
    mandate_pool *pool;
    char *secret;  /* of agent-1 */
    EVP_PKEY *key; /* of agent-key, registered for private_key_jwt */
    const char *token_url;
} fixture;

static int setup(void **state)
{
    fixture *f = mandate_xcalloc(1, sizeof(*f));
    static const char *const instances[] = {"backend-local",
                                            "kind = \"backend\"; plugin = \"local\";\n", NULL};
    f->t = test_runtime_sqlite("server: { issuer = \"https://broker.example\"; };", instances);
    f->pool = mandate_pool_new();
    mandate_error err = {0};
    mandate_client c;
    mandate_client_spec spec = {.client_id = "agent-1", .scopes = "mcp:call"};
    assert_int_equal(mandate_clients_create(f->t->rt, f->pool, &spec, &c, &f->secret, &err),
                     MANDATE_OK);
    f->secret = mandate_xstrdup(f->secret);
    f->key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    char *pem = test_public_pem(f->key);
    char *none = NULL;
    mandate_client_spec keyed = {.client_id = "agent-key", .public_key_pem = pem};
    assert_int_equal(mandate_clients_create(f->t->rt, f->pool, &keyed, &c, &none, &err),
                     MANDATE_OK);
    assert_null(none);
    free(pem);
    f->token_url = "https://broker.example/oauth2/token";
    store_answer = backend_answer = MANDATE_OK;
    test_audit_reset();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    test_request_headers(NULL);
    test_audit_reset();
    EVP_PKEY_free(f->key);
    free(f->secret);
    mandate_pool_free(&f->pool);
    test_runtime_free(&f->t);
    free(f);
    return 0;
}

typedef struct outcome {
    mandate_rc rc;
    mandate_client client;
    mandate_oauth_error oerr;
} outcome;

/* Authenticates a request with that form body and Authorization header. */
static outcome authenticate(fixture *f, const char *authorization, const char *body)
{
    const char *pairs[] = {authorization != NULL ? "Authorization" : NULL, authorization, NULL};
    test_request_headers(pairs);
    mandate_http_request req;
    test_request_init(&req, f->pool, f->t->rt, "POST", "/oauth2/token", body);
    static const char *const repeatable[] = {"resource", NULL};
    mandate_form form;
    mandate_error err = {0};
    assert_int_equal(mandate_form_parse(f->pool, body, strlen(body), repeatable, &form, &err),
                     MANDATE_OK);
    outcome o = {0};
    o.rc = mandate_client_authenticate(&req, &form, &o.client, &o.oerr);
    test_request_headers(NULL);
    return o;
}

static void expect_refused(const outcome *o, unsigned status, const char *error,
                           const char *reason)
{
    if (o->rc == MANDATE_OK)
        fail_msg("authenticated, expected %u %s (%s)", status, error, reason);
    assert_int_equal(o->oerr.status, status);
    assert_string_equal(o->oerr.error, error);
    if (reason != NULL)
        assert_true(
            test_contains(o->oerr.reason ? o->oerr.reason : o->oerr.description, reason));
}

/* Basic credentials id:secret refused as invalid_client for reason; the
 * refusal names id. */
static void expect_basic_refused(fixture *f, const char *id, const char *secret,
                                 const char *reason)
{
    outcome o = authenticate(f, test_basic(f->pool, id, secret), "");
    expect_refused(&o, 401, "invalid_client", reason);
    assert_string_equal(o.oerr.client_id, id);
}

/* agent-1's right secret while *answer (the store's or the backend's) is
 * an outage, then an error: 503, then 500. */
static void expect_outages_refused(fixture *f, mandate_rc *answer)
{
    static const struct {
        mandate_rc answer;
        unsigned status;
        const char *error;
    } cases[] = {
        {MANDATE_TEMPFAIL, 503, "temporarily_unavailable"},
        {MANDATE_ERROR, 500, "server_error"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        *answer = cases[i].answer;
        outcome o = authenticate(f, test_basic(f->pool, "agent-1", f->secret), "");
        expect_refused(&o, cases[i].status, cases[i].error, NULL);
    }
    *answer = MANDATE_OK;
}

/* A client assertion of agent-key's key (RFC 7523 §3), naming sub. */
static char *assertion(fixture *f, const char *sub, const char *aud)
{
    static int seq;
    int64_t now = mandate_clock_now();
    json_t *claims = json_pack("{s:s,s:s,s:s,s:s,s:I,s:I}", "iss", sub, "sub", sub, "aud", aud,
                               "jti", mandate_pool_printf(f->pool, "jti-%d", ++seq), "iat",
                               (json_int_t)now, "exp", (json_int_t)(now + 60));
    char *jws = mandate_jws_sign(f->key, NULL, NULL, claims);
    json_decref(claims);
    char *out = mandate_pool_strdup(f->pool, jws);
    free(jws);
    return out;
}

#define JWT_BEARER "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"

static void test_each_method(void **state)
{
    fixture *f = *state;
    outcome o = authenticate(f, test_basic(f->pool, "agent-1", f->secret), "scope=x");
    assert_int_equal(o.rc, MANDATE_OK);
    assert_string_equal(o.client.client_id, "agent-1");
    assert_string_equal(o.client.scopes, "mcp:call");

    o = authenticate(
        f, NULL, mandate_pool_printf(f->pool, "client_id=agent-1&client_secret=%s", f->secret));
    assert_int_equal(o.rc, MANDATE_OK);
    assert_string_equal(o.client.client_id, "agent-1");

    /* private_key_jwt, with client_id and without it (then the sub names it) */
    o = authenticate(f, NULL,
                     mandate_pool_printf(f->pool,
                                         "client_id=agent-key&client_assertion_type=%s"
                                         "&client_assertion=%s",
                                         JWT_BEARER, assertion(f, "agent-key", f->token_url)));
    assert_int_equal(o.rc, MANDATE_OK);
    assert_string_equal(o.client.client_id, "agent-key");
    o = authenticate(f, NULL,
                     mandate_pool_printf(f->pool,
                                         "client_assertion_type=%s&client_assertion=%s",
                                         JWT_BEARER, assertion(f, "agent-key", f->token_url)));
    assert_int_equal(o.rc, MANDATE_OK);
    assert_string_equal(o.client.client_id, "agent-key");
}

/* How the request presents its credentials: each mistake. */
static void test_method_refusals(void **state)
{
    fixture *f = *state;
    outcome o = authenticate(f, NULL, "scope=x");
    expect_refused(&o, 401, "invalid_client", "client authentication required");
    /* another scheme is no Basic credential: as if there were none */
    o = authenticate(f, "Bearer abc", "scope=x");
    expect_refused(&o, 401, "invalid_client", "client authentication required");
    o = authenticate(f, "Basic !!!!", "scope=x");
    expect_refused(&o, 401, "invalid_client", "malformed Basic credentials");
    o = authenticate(f, "Basic YWdlbnQtMQ==", "scope=x"); /* "agent-1": no ':' */
    expect_refused(&o, 401, "invalid_client", "lack a ':'");

    o = authenticate(
        f, test_basic(f->pool, "agent-1", f->secret),
        mandate_pool_printf(f->pool, "client_id=agent-1&client_secret=%s", f->secret));
    expect_refused(&o, 400, "invalid_request", "exactly one client authentication method");
    o = authenticate(f, NULL, "client_id=agent-key&client_assertion=abc");
    expect_refused(&o, 400, "invalid_request", "go together");
    o = authenticate(
        f, NULL, "client_id=agent-key&client_assertion_type=urn%3Aother&client_assertion=x");
    expect_refused(&o, 401, "invalid_client", "unsupported client_assertion_type");
    o = authenticate(f, test_basic(f->pool, "agent-1", f->secret), "client_id=agent-2");
    expect_refused(&o, 400, "invalid_request", "client_id differs from the Basic credentials");
    o = authenticate(f, NULL, "client_secret=s");
    expect_refused(&o, 401, "invalid_client", "no client_id");
    char long_id[300];
    memset(long_id, 'a', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    o = authenticate(f, NULL,
                     mandate_pool_printf(f->pool, "client_id=%s&client_secret=s", long_id));
    expect_refused(&o, 401, "invalid_client", "client_id too long");
    /* an assertion that names nobody, and no client_id */
    o = authenticate(f, NULL,
                     mandate_pool_printf(
                         f->pool, "client_assertion_type=%s&client_assertion=x.y", JWT_BEARER));
    expect_refused(&o, 401, "invalid_client", "no client_id");
}

/* The client's record: none, unreachable, disabled. */
static void test_record_refusals(void **state)
{
    fixture *f = *state;
    expect_basic_refused(f, "nobody", "s", "no such client");

    expect_outages_refused(f, &store_answer);

    mandate_error err = {0};
    assert_int_equal(
        mandate_clients_set_status(f->t->rt, "agent-1", MANDATE_CLIENT_DISABLED, &err),
        MANDATE_OK);
    outcome o = authenticate(f, test_basic(f->pool, "agent-1", f->secret), "");
    expect_refused(&o, 401, "invalid_client", "client is disabled");
}

/* What the backends answer: a wrong secret, a bad assertion, an outage,
 * a client no backend holds. */
static void test_backend_refusals(void **state)
{
    fixture *f = *state;
    expect_basic_refused(f, "agent-1", "not-the-secret", "secret does not match");
    /* a key client's assertion for another audience, and a secret it does not have */
    outcome o =
        authenticate(f, NULL,
                     mandate_pool_printf(
                         f->pool,
                         "client_id=agent-key&client_assertion_type=%s"
                         "&client_assertion=%s",
                         JWT_BEARER, assertion(f, "agent-key", "https://elsewhere.example")));
    expect_refused(&o, 401, "invalid_client", "aud");
    o = authenticate(f, test_basic(f->pool, "agent-key", "s"), "");
    expect_refused(&o, 401, "invalid_client", "private_key_jwt only");

    expect_outages_refused(f, &backend_answer);

    /* a record that names a backend instance that is not enabled */
    mandate_client c;
    mandate_error err = {0};
    const mandate_instance *store = mandate_runtime_store(f->t->rt);
    assert_int_equal(mandate_store_client_get(store, f->pool, "agent-1", &c, &err), MANDATE_OK);
    c.backend = "backend-gone";
    c.updated_at = 0;
    assert_int_equal(mandate_store_client_update(store, &c, &err), MANDATE_OK);
    o = authenticate(f, test_basic(f->pool, "agent-1", f->secret), "");
    expect_refused(&o, 401, "invalid_client", "no enabled backend holds this client");
}

/* A client authenticates with the method it is registered for and no
 * other: one moved to a certificate (its registration in its attributes,
 * as mandatectl client set --auth writes it) is refused its old secret and
 * its old key; the refusal names the client and why, which the endpoints
 * audit (review s32, finding 3). */
static void test_registered_method_only(void **state)
{
    fixture *f = *state;
    const mandate_instance *store = mandate_runtime_store(f->t->rt);
    mandate_error err = {0};
    static const char *const ids[] = {"agent-1", "agent-key"};
    for (size_t i = 0; i < 2; i++) {
        mandate_client c;
        assert_int_equal(mandate_store_client_get(store, f->pool, ids[i], &c, &err), MANDATE_OK);
        c.attributes = "{\"token_endpoint_auth_method\":\"self_signed_tls_client_auth\","
                       "\"tls_client_auth_x5t_s256\":"
                       "\"NimkcYoVZHn7S78_UW8Huy6hNntQG-kXkvA45DYN0EA\"}";
        c.updated_at = 0;
        assert_int_equal(mandate_store_client_update(store, &c, &err), MANDATE_OK);
    }
    expect_basic_refused(f, "agent-1", f->secret,
                         "registered for self_signed_tls_client_auth only, not "
                         "client_secret_basic");
    outcome o = authenticate(
        f, NULL, mandate_pool_printf(f->pool, "client_id=agent-1&client_secret=%s", f->secret));
    expect_refused(&o, 401, "invalid_client", "not client_secret_post");
    o = authenticate(f, NULL,
                     mandate_pool_printf(f->pool,
                                         "client_id=agent-key&client_assertion_type=%s"
                                         "&client_assertion=%s",
                                         JWT_BEARER, assertion(f, "agent-key", f->token_url)));
    expect_refused(&o, 401, "invalid_client",
                   "registered for self_signed_tls_client_auth only, not private_key_jwt");
    assert_string_equal(o.oerr.client_id, "agent-key");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST_FX(test_each_method),
        TEST_FX(test_method_refusals),
        TEST_FX(test_record_refusals),
        TEST_FX(test_backend_refusals),
        TEST_FX(test_registered_method_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
