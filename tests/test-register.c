/* POST /oauth2/register (core/endpoint-register.c), called directly with
 * the real sqlite store for clients: registration off (404), open (201, a
 * public client with its metadata; the RFC 7591 errors; the rate per
 * address), and with initial access tokens (single use; not spent by a
 * refused request; given back when the broker fails). The store's one-time
 * records are a fake here (the facade's calls wrapped), so that the test
 * does not wait for every store to have them. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "audit-events-private.h"
#include "client-documents-private.h"
#include "clock-private.h"
#include "endpoints-private.h"
#include "mtls-private.h"
#include "plugins-private.h"
#include "pool-private.h"
#include "request-fixture.h"
#include "test-helpers.h"
#include "util-private.h"

/* --- one-time records, faked ------------------------------------------------ */

#define ONCE_MAX 16

static struct {
    char ns[32];
    unsigned char key[64];
    size_t key_len;
    char *value;
    int64_t expires_at;
} once[ONCE_MAX];
static size_t n_once;

static void once_reset(void)
{
    for (size_t i = 0; i < n_once; i++)
        free(once[i].value);
    n_once = 0;
}

__typeof__(mandate_store_once_put) __wrap_mandate_store_once_put;
mandate_rc __wrap_mandate_store_once_put(const mandate_instance *store, const char *ns,
                                         const unsigned char *key, size_t key_len,
                                         const char *value, int64_t expires_at,
                                         mandate_error *err)
{
    (void)store;
    if (test_fails("store_once_put", err))
        return err->rc;
    assert_true(n_once < ONCE_MAX && key_len <= sizeof(once[0].key));
    for (size_t i = 0; i < n_once; i++)
        if (strcmp(once[i].ns, ns) == 0 && once[i].key_len == key_len &&
            memcmp(once[i].key, key, key_len) == 0)
            return mandate_error_set(err, MANDATE_EXISTS, "taken");
    snprintf(once[n_once].ns, sizeof(once[n_once].ns), "%s", ns);
    memcpy(once[n_once].key, key, key_len);
    once[n_once].key_len = key_len;
    once[n_once].value = mandate_xstrdup(value);
    once[n_once].expires_at = expires_at;
    n_once++;
    return MANDATE_OK;
}

__typeof__(mandate_store_once_take) __wrap_mandate_store_once_take;
mandate_rc __wrap_mandate_store_once_take(const mandate_instance *store, mandate_pool *pool,
                                          const char *ns, const unsigned char *key,
                                          size_t key_len, int64_t now, char **value_r,
                                          mandate_error *err)
{
    (void)store;
    *value_r = NULL;
    if (test_fails("store_once_take", err))
        return err->rc;
    for (size_t i = 0; i < n_once; i++) {
        if (strcmp(once[i].ns, ns) != 0 || once[i].key_len != key_len ||
            memcmp(once[i].key, key, key_len) != 0)
            continue;
        bool live = once[i].expires_at > now;
        if (live)
            *value_r = mandate_pool_strdup(pool, once[i].value);
        free(once[i].value);
        once[i] = once[--n_once];
        if (live)
            return MANDATE_OK;
        break;
    }
    return mandate_error_set(err, MANDATE_NOT_FOUND, "no such record");
}

TEST_FACADE_WRAP(store_client_create,
                 (const mandate_instance *store, const mandate_client *client,
                  mandate_error *err),
                 (store, client, err))

/* --- the fixture ------------------------------------------------------------- */

typedef struct fixture {
    test_runtime *off, *open, *token;
    mandate_pool *pool;
    test_answer a; /* the test's last answer */
} fixture;

#define TARGETS                                                                                \
    "targets = ( { name = \"cal\"; paths = [\"/mcp\"]; audience = \"https://cal.example\";\n"  \
    "  scopes = [\"mcp:call\"]; } );\n"

static int setup(void **state)
{
    fixture *f = mandate_xcalloc(1, sizeof(*f));
    f->off = test_runtime_sqlite(NULL, NULL);
    f->open = test_runtime_sqlite(TARGETS "registration = { mode = \"open\"; rate = 3;\n"
                                          "  scopes = [\"mcp:call\", \"cal:read\"]; };\n",
                                  NULL);
    f->token = test_runtime_sqlite(TARGETS "registration = { mode = \"token\"; tenant = "
                                           "\"mcp\"; rate = 0; };\n",
                                   NULL);
    f->pool = mandate_pool_new();
    test_audit_reset();
    once_reset();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    test_audit_reset();
    once_reset();
    test_runtime_free(&f->off);
    test_runtime_free(&f->open);
    test_runtime_free(&f->token);
    mandate_pool_free(&f->pool);
    test_answer_clear(&f->a);
    free(f);
    return 0;
}

/* POST (or method) /oauth2/register with body, as JSON unless content_type
 * says otherwise, with a bearer token when token is not NULL. */
static void call(fixture *f, test_runtime *t, const char *method, const char *content_type,
                 const char *token, const char *body, test_answer *a)
{
    const char *auth =
        token != NULL ? mandate_pool_printf(f->pool, "Bearer %s", token) : NULL;
    const char *pairs[] = {"Content-Type", content_type ? content_type : "application/json",
                           auth ? "Authorization" : NULL, auth, NULL};
    test_endpoint_with(t, f->pool, mandate_endpoint_register, method, "/oauth2/register", pairs,
                       body, a);
}

static const char good[] = "{\"redirect_uris\":[\"http://127.0.0.1:4000/cb\"],"
                           "\"client_name\":\"Inspector\",\"grant_types\":"
                           "[\"authorization_code\",\"refresh_token\"],"
                           "\"token_endpoint_auth_method\":\"none\",\"scope\":\"mcp:call x\"}";

static void test_off(void **state)
{
    fixture *f = *state;
    call(f, f->off, "POST", NULL, NULL, good, &f->a);
    test_answer_expect(&f->a, 404, "not_found");
    assert_int_equal(test_audit_count("client.registration_refused"), 1);
    assert_string_equal(test_audit_field("client.registration_refused", "reason"),
                        "registration is off (registration.mode)");
    assert_string_equal(test_audit_field("client.registration_refused", "peer"), "127.0.0.1");
    call(f, f->off, "GET", NULL, NULL, NULL, &f->a);
    test_answer_expect(&f->a, 404, "not_found");
}

static void test_open(void **state)
{
    fixture *f = *state;
    call(f, f->open, "POST", "application/json; charset=utf-8", NULL, good, &f->a);
    test_answer_expect(&f->a, 201, "");
    const char *id = mandate_pool_strdup(f->pool, test_answer_get(&f->a, "client_id"));
    assert_true(strncmp(id, "dcr-", 4) == 0 && strlen(id) == 20);
    assert_string_equal(test_answer_get(&f->a, "token_endpoint_auth_method"), "none");
    assert_string_equal(test_answer_get(&f->a, "client_name"), "Inspector");
    /* the scope asked for, within what registration allows */
    assert_string_equal(test_answer_get(&f->a, "scope"), "mcp:call");
    assert_null(json_object_get(f->a.body, "client_secret"));
    assert_null(json_object_get(f->a.body, "registered_by"));
    assert_true(json_is_integer(json_object_get(f->a.body, "client_id_issued_at")));
    assert_int_equal(json_array_size(json_object_get(f->a.body, "redirect_uris")), 1);
    assert_string_equal(test_answer_header(&f->a, "Cache-Control"), "no-store");

    mandate_client c = test_stored_client(f->open, f->pool, id);
    assert_string_equal(c.tenant, "default");
    assert_string_equal(c.scopes, "mcp:call");
    assert_string_equal(c.audiences, "https://cal.example");
    test_assert_public_client(&c);

    assert_int_equal(test_audit_count("client.registered"), 1);
    assert_string_equal(test_audit_field("client.registered", "client_id"), id);
    assert_string_equal(test_audit_field("client.registered", "mode"), "open");
    assert_string_equal(test_audit_field("client.registered", "peer"), "127.0.0.1");
}

static void test_refusals(void **state)
{
    fixture *f = *state;
    static const struct {
        const char *method, *content_type, *body;
        unsigned status;
        const char *error;
    } cases[] = {
        {"POST", NULL, "{\"redirect_uris\":[\"http://evil.example/cb\"]}", 400,
         "invalid_redirect_uri"},
        {"POST", NULL, "{\"redirect_uris\":[\"https://a.example/cb#f\"]}", 400,
         "invalid_redirect_uri"},
        {"POST", NULL, "{\"client_name\":\"no uris\"}", 400, "invalid_redirect_uri"},
        {"POST", NULL,
         "{\"redirect_uris\":[\"https://a.example/cb\"],\"token_endpoint_auth_method\":"
         "\"client_secret_basic\"}",
         400, "invalid_client_metadata"},
        {"POST", NULL, "not json", 400, "invalid_client_metadata"},
        {"POST", "application/x-www-form-urlencoded", "redirect_uris=https://a.example/cb",
         400, "invalid_client_metadata"},
        {"GET", NULL, NULL, 405, "invalid_request"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        test_answer a = {0};
        call(f, f->open, cases[i].method, cases[i].content_type, NULL, cases[i].body, &a);
        test_answer_expect(&a, cases[i].status, cases[i].error);
        if (cases[i].status == 405)
            assert_string_equal(test_answer_header(&a, "Allow"), "POST");
        test_answer_clear(&a);
    }
    assert_int_equal(test_audit_count("client.registration_refused"),
                     sizeof(cases) / sizeof(cases[0]));
    assert_int_equal(test_audit_count("client.registered"), 0);
    /* too big: the endpoint's own bound, whatever the server's */
    char *big = mandate_xmalloc(MANDATE_REGISTRATION_MAX_BYTES + 100);
    memset(big, ' ', MANDATE_REGISTRATION_MAX_BYTES + 99);
    memcpy(big, "{\"redirect_uris\":[\"https://a.example/cb\"]}", 42);
    big[MANDATE_REGISTRATION_MAX_BYTES + 99] = '\0';
    test_answer a = {0};
    call(f, f->open, "POST", NULL, NULL, big, &a);
    test_answer_expect(&a, 400, "invalid_client_metadata");
    test_answer_clear(&a);
    free(big);
}

static void test_rate(void **state)
{
    fixture *f = *state;
    /* registration.rate = 3 an hour from one address (this test's alone:
     * the table is the process's, and no other test uses the open mode's
     * rate with more than one) */
    for (int i = 0; i < 3; i++) {
        call(f, f->open, "POST", NULL, NULL, good, &f->a);
        if (f->a.status != 201 && f->a.status != 429)
            fail_msg("registration %d: %u", i, f->a.status);
        test_answer_clear(&f->a);
    }
    call(f, f->open, "POST", NULL, NULL, good, &f->a);
    test_answer_expect(&f->a, 429, "too_many_requests");
    assert_non_null(test_answer_header(&f->a, "Retry-After"));
    assert_string_equal(test_audit_field("client.registration_refused", "reason"),
                        "over registration.rate for this address");
}

static const char *issue(fixture *f, int64_t ttl)
{
    char *token = NULL;
    mandate_error err = {0};
    if (mandate_registration_token_issue(f->token->rt, f->pool, ttl, "uid=0(root)", &token,
                                         NULL, &err) != MANDATE_OK)
        fail_msg("issue: %s", err.message);
    assert_true(strncmp(token, "mit_", 4) == 0 && strlen(token) == 47);
    return token;
}

static void test_token_mode(void **state)
{
    fixture *f = *state;
    call(f, f->token, "POST", NULL, NULL, good, &f->a);
    test_answer_expect(&f->a, 401, "invalid_token");
    assert_string_equal(test_answer_header(&f->a, "WWW-Authenticate"), "Bearer");
    call(f, f->token, "POST", NULL, "mit_forged", good, &f->a);
    test_answer_expect(&f->a, 401, "invalid_token");
    assert_string_equal(test_answer_header(&f->a, "WWW-Authenticate"),
                        "Bearer error=\"invalid_token\"");

    const char *token = issue(f, 600);
    /* only its hash is kept */
    assert_int_equal(n_once, 1);
    assert_int_equal(once[0].key_len, 32);
    assert_null(strstr(once[0].value, token));
    /* a refused request does not spend it */
    call(f, f->token, "POST", NULL, token, "{\"redirect_uris\":[\"/relative\"]}", &f->a);
    test_answer_expect(&f->a, 400, "invalid_redirect_uri");
    call(f, f->token, "POST", NULL, token, good, &f->a);
    test_answer_expect(&f->a, 201, "");
    assert_string_equal(test_audit_field("client.registered", "mode"), "token");
    char ref[9];
    mandate_audit_token_ref(token, strlen(token), ref);
    assert_string_equal(test_audit_field("client.registered", "token_sha256_prefix"), ref);
    /* single use */
    call(f, f->token, "POST", NULL, token, good, &f->a);
    test_answer_expect(&f->a, 401, "invalid_token");
    assert_string_equal(test_audit_field("client.registration_refused", "token_sha256_prefix"),
                        ref);
    /* the whole token is in no record */
    for (const char *ev = "client.registered"; ev != NULL;
         ev = strcmp(ev, "client.registered") == 0 ? "client.registration_refused" : NULL) {
        char *text = json_dumps(test_audit_last(ev), 0);
        assert_null(strstr(text, token + 4));
        free(text);
    }

    /* expired */
    const char *old = issue(f, 1);
    mandate_clock_set(NULL);
    once[n_once - 1].expires_at = mandate_clock_now() - 1;
    call(f, f->token, "POST", NULL, old, good, &f->a);
    test_answer_expect(&f->a, 401, "invalid_token");
}

static void test_token_given_back(void **state)
{
    fixture *f = *state;
    const char *token = issue(f, 600);
    /* the store fails to create the client: 503, and the token still works */
    test_fail_next("store_client_create", MANDATE_TEMPFAIL);
    call(f, f->token, "POST", NULL, token, good, &f->a);
    test_answer_expect(&f->a, 503, "temporarily_unavailable");
    assert_int_equal(n_once, 1);
    /* the audit trail cannot take the registration: 503, nothing stays */
    test_audit_fail("client.registered", 1);
    call(f, f->token, "POST", NULL, token, good, &f->a);
    test_answer_expect(&f->a, 503, "temporarily_unavailable");
    assert_int_equal(n_once, 1);
    mandate_client_filter filter = {.tenant = "mcp"};
    size_t count = 0;
    mandate_error err = {0};
    assert_int_equal(mandate_store_client_list(mandate_runtime_store(f->token->rt), &filter,
                                               NULL, &count, &err) == MANDATE_OK ||
                         true,
                     true);
    call(f, f->token, "POST", NULL, token, good, &f->a);
    test_answer_expect(&f->a, 201, "");
    assert_int_equal(n_once, 0);
}

/* RFC 8705 §2.1.2, §2.2.2: a client that authenticates by certificate may
 * register, naming it; it gets no secret, only the sign-in's grants, and
 * the core knows it by its certificate (core/mtls.c reads the metadata). */
static void test_certificate_clients(void **state)
{
    fixture *f = *state;
#define URIS "\"redirect_uris\":[\"http://127.0.0.1:4000/cb\"],"
    static const char tls[] =
        "{" URIS "\"token_endpoint_auth_method\":\"tls_client_auth\","
        "\"tls_client_auth_subject_dn\":\"CN=agent,O=Example Corp,C=US\","
        "\"tls_client_certificate_bound_access_tokens\":true}";
    static const char self_signed[] =
        "{" URIS "\"token_endpoint_auth_method\":\"self_signed_tls_client_auth\","
        "\"jwks\":{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"a\",\"y\":\"b\","
        "\"x5c\":[\"MIIB\"]}]}}";
    call(f, f->token, "POST", NULL, issue(f, 600), tls, &f->a);
    test_answer_expect(&f->a, 201, "");
    assert_string_equal(test_answer_get(&f->a, "token_endpoint_auth_method"), "tls_client_auth");
    assert_string_equal(test_answer_get(&f->a, "tls_client_auth_subject_dn"),
                        "CN=agent,O=Example Corp,C=US");
    assert_true(json_is_true(json_object_get(f->a.body, "tls_client_certificate_bound_access_tokens")));
    assert_null(json_object_get(f->a.body, "client_secret"));
    mandate_client c = test_stored_client(f->token, f->pool, test_answer_get(&f->a, "client_id"));
    assert_string_equal(mandate_mtls_client_method(&c), "tls_client_auth");
    assert_null(c.secret_hash);
    call(f, f->token, "POST", NULL, issue(f, 600), self_signed, &f->a);
    test_answer_expect(&f->a, 201, "");
    assert_string_equal(test_answer_get(&f->a, "token_endpoint_auth_method"),
                        "self_signed_tls_client_auth");
    assert_non_null(json_object_get(json_object_get(f->a.body, "jwks"), "keys"));

    static const char *const refused[] = {
        "{" URIS "\"token_endpoint_auth_method\":\"tls_client_auth\"}",
        "{" URIS "\"token_endpoint_auth_method\":\"tls_client_auth\","
        "\"tls_client_auth_san_dns\":\"a.example\",\"tls_client_auth_san_uri\":\"spiffe://x\"}",
        "{" URIS "\"token_endpoint_auth_method\":\"tls_client_auth\","
        "\"tls_client_auth_subject_dn\":7}",
        "{" URIS "\"token_endpoint_auth_method\":\"none\","
        "\"tls_client_auth_subject_dn\":\"CN=agent\"}",
        "{" URIS "\"token_endpoint_auth_method\":\"self_signed_tls_client_auth\"}",
        "{" URIS "\"token_endpoint_auth_method\":\"self_signed_tls_client_auth\","
        "\"jwks_uri\":\"https://a.example/jwks\"}",
        "{" URIS "\"token_endpoint_auth_method\":\"self_signed_tls_client_auth\","
        "\"jwks\":{\"keys\":[{\"kty\":\"EC\",\"d\":\"secret\"}]}}",
        "{" URIS "\"token_endpoint_auth_method\":\"tls_client_auth\","
        "\"tls_client_auth_subject_dn\":\"CN=agent\",\"tls_client_certificate_bound_access_"
        "tokens\":\"yes\"}",
        /* what anyone may register stays at the sign-in's grants */
        "{" URIS "\"token_endpoint_auth_method\":\"tls_client_auth\","
        "\"tls_client_auth_subject_dn\":\"CN=agent\","
        "\"grant_types\":[\"authorization_code\",\"client_credentials\"]}",
    };
    const char *token = issue(f, 600);
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        call(f, f->token, "POST", NULL, token, refused[i], &f->a);
        if (f->a.status != 400 || strcmp(f->a.error, "invalid_client_metadata") != 0)
            fail_msg("case %zu: %u %s", i, f->a.status, f->a.error);
        test_answer_clear(&f->a);
    }
#undef URIS
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_given_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_certificate_clients, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
