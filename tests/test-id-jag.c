/* Identity Assertion JWT Authorization Grants (core/grant-id-jag.c), both
 * ways, through mandate_endpoint_token without a server: issued by the
 * token exchange for a sign-in (requested_token_type id-jag), and accepted
 * with the JWT bearer grant from a trusted IdP; each refusal of each. The
 * scripted test backend plays the IdP (its "signature" is not checked: what
 * is tested here is what the broker does with what the backend vouches
 * for). */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clients-private.h"
#include "grants-private.h"
#include "jose.h"
#include "plugins-private.h"
#include "pool-private.h"
#include "request-fixture.h"
#include "test-helpers.h"
#include "util-private.h"
#include "validate-private.h"

#define CAL "https://mcp.example/cal"
#define OTHER "https://other.example/api"
#define RS "https://rs.example"
#define XCHG "urn:ietf:params:oauth:grant-type:token-exchange"
#define JWT_BEARER "urn:ietf:params:oauth:grant-type:jwt-bearer"
#define TT_SAML2 "urn:ietf:params:oauth:token-type:saml2"
#define TT_ID_JAG "urn:ietf:params:oauth:token-type:id-jag"
#define ADVISOR                                                                                \
    "sub=alice;auth_time=1700000000;attrs={\"role\":\"advisor\",\"employeeId\":\"42\"}"

TEST_FACADE_WRAP(format_sign,
                 (const mandate_instance *in, mandate_pool *pool, const char *typ,
                  const char *claims, size_t claims_len, char **jws_r, mandate_error *err),
                 (in, pool, typ, claims, claims_len, jws_r, err))

static const char mappings[] =
    "mappings = (\n"
    "  { name = \"advisors\"; idp = \"backend-idp\";\n"
    "    when = ( { attribute = \"role\"; equals = \"advisor\"; } );\n"
    "    subject = \"advisor-${employeeId}\"; tenant = \"default\";\n"
    "    scopes = [\"mcp:call\", \"gateway:invoke\"]; audience = [\"" CAL "\"];\n"
    "    max_lifetime = 900; }\n"
    ");\n";

typedef struct fixture {
    test_runtime *t;
    mandate_pool *pool;
    const char *agent, *other; /* Basic credentials */
} fixture;

static const char *make_client(fixture *f, const char *id)
{
    mandate_client_spec spec = {
        .client_id = id, .scopes = "mcp:call gateway:invoke", .audiences = CAL " " OTHER};
    mandate_client c;
    char *secret = NULL;
    mandate_error err = {0};
    if (mandate_clients_create(f->t->rt, f->pool, &spec, &c, &secret, &err) != MANDATE_OK)
        fail_msg("client %s: %s", id, err.message);
    return test_basic(f->pool, id, secret);
}

/* A runtime of extra configuration, with the formats named (instance file
 * name, plugin), NULL-terminated. */
static fixture *started(void **state, const char *extra, const char *const *formats)
{
    fixture *f = mandate_xcalloc(1, sizeof(*f));
    *state = f;
    char *conf = mandate_xasprintf("server: { issuer = \"https://broker.example\"; };\n%s%s",
                                   mappings, extra);
    f->t = test_runtime_new(conf);
    free(conf);
    test_runtime_instance(f->t, "store", "kind = \"store\"; plugin = \"sqlite\";\n");
    test_runtime_instance(f->t, "backend-local", "kind = \"backend\"; plugin = \"local\";\n");
    test_runtime_instance(f->t, "backend-idp", "kind = \"backend\"; plugin = \"script\";\n");
    for (size_t i = 0; formats[i] != NULL; i += 2) {
        char *text = mandate_xasprintf("kind = \"format\"; plugin = \"%s\";\n", formats[i + 1]);
        test_runtime_instance(f->t, formats[i], text);
        free(text);
    }
    if (test_runtime_start(f->t, MANDATE_RUNTIME_MIGRATE | MANDATE_RUNTIME_CREATE_KEYS) !=
        MANDATE_OK)
        fail_msg("runtime: %s", mandate_diag_join(&f->t->diag));
    f->pool = mandate_pool_new();
    f->agent = make_client(f, "agent");
    f->other = make_client(f, "other-agent");
    test_audit_reset();
    return f;
}

static const char *const jwt_format[] = {"format-jwt", "jwt", NULL};

static int setup(void **state)
{
    started(state, "id_jag = { audiences = [\"" RS "\"]; lifetime = 300; };\n", jwt_format);
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    test_audit_reset();
    mandate_pool_free(&f->pool);
    test_runtime_free(&f->t);
    free(f);
    return 0;
}

static void post(fixture *f, const char *basic, const char *body, test_answer *a)
{
    test_answer_clear(a);
    test_token(f->t, f->pool, basic, body, a);
}

static void expect_reason(const char *why)
{
    assert_true(test_contains(test_audit_field("token.refused", "reason"), why));
}

/* --- issued: a sign-in exchanged for an ID-JAG ----------------------------------- */

static const char *jag_request(fixture *f, const char *script, const char *extra)
{
    return mandate_pool_printf(f->pool,
                               "grant_type=" XCHG "&subject_token_type=" TT_SAML2
                               "&subject_token=%s&requested_token_type=" TT_ID_JAG "%s",
                               test_form_encode(f->pool, script), extra);
}

static void test_issue(void **state)
{
    fixture *f = *state;
    test_answer a = {0};
    post(f, f->agent,
         jag_request(f, ADVISOR, "&audience=" RS "&resource=" CAL "&scope=mcp:call"), &a);
    test_answer_expect(&a, 200, "");
    assert_string_equal(test_answer_get(&a, "issued_token_type"), TT_ID_JAG);
    assert_string_equal(test_answer_get(&a, "token_type"), "N_A");
    assert_string_equal(test_answer_get(&a, "scope"), "mcp:call");
    const char *jag = test_answer_get(&a, "access_token");
    mandate_jws jws = {0};
    mandate_error err = {0};
    assert_int_equal(mandate_jws_parse(jag, strlen(jag), &jws, &err), MANDATE_OK);
    assert_string_equal(json_string_value(json_object_get(jws.header, "typ")),
                        "oauth-id-jag+jwt");
    const json_t *c = jws.claims;
    assert_string_equal(json_string_value(json_object_get(c, "iss")), "https://broker.example");
    assert_string_equal(json_string_value(json_object_get(c, "sub")), "advisor-42");
    assert_string_equal(json_string_value(json_object_get(c, "aud")), RS);
    assert_string_equal(json_string_value(json_object_get(c, "client_id")), "agent");
    assert_string_equal(json_string_value(json_object_get(c, "scope")), "mcp:call");
    assert_string_equal(json_string_value(json_object_get(c, "resource")), CAL);
    assert_string_equal(json_string_value(json_object_get(c, "tenant")), "default");
    assert_int_equal(json_integer_value(json_object_get(c, "auth_time")), 1700000000);
    json_int_t life = json_integer_value(json_object_get(c, "exp")) -
                      json_integer_value(json_object_get(c, "iat"));
    assert_int_equal(life, 300); /* id_jag.lifetime, below the rule's 900 */
    mandate_jws_clear(&jws);
    assert_string_equal(test_audit_field("token.issued", "issued_token_type"), TT_ID_JAG);
    assert_string_equal(test_audit_field("token.issued", "resource"), CAL);
    /* an ID-JAG is no access token of this broker */
    mandate_token_status st;
    assert_int_not_equal(mandate_token_validate(f->t->rt, f->pool, jag, strlen(jag), &st, &err),
                         MANDATE_OK);
    test_answer_clear(&a);
}

static void test_issue_refusals(void **state)
{
    fixture *f = *state;
    test_answer a = {0};
    post(f, f->agent, jag_request(f, ADVISOR, ""), &a);
    test_answer_expect(&a, 400, "invalid_request");
    assert_true(
        test_contains(test_answer_get(&a, "error_description"), "exactly one audience"));
    post(f, f->agent, jag_request(f, ADVISOR, "&audience=" RS "&audience=https://b"), &a);
    test_answer_expect(&a, 400, "invalid_request");
    post(f, f->agent, jag_request(f, ADVISOR, "&audience=https://evil.example"), &a);
    test_answer_expect(&a, 400, "invalid_target");
    assert_string_equal(test_audit_field("token.refused", "audience"), "https://evil.example");
    post(f, f->agent, jag_request(f, "rc=denied;msg=bad signature", "&audience=" RS), &a);
    test_answer_expect(&a, 400, "invalid_grant");
    expect_reason("backend-idp: bad signature");
    post(f, f->agent,
         jag_request(f, "attrs={\"role\":\"intern\",\"employeeId\":\"1\"}", "&audience=" RS),
         &a);
    test_answer_expect(&a, 400, "invalid_grant");
    assert_string_equal(test_answer_get(&a, "error_description"),
                        "no mapping rule grants a token to this identity");
    post(f, NULL, jag_request(f, ADVISOR, "&audience=" RS), &a);
    test_answer_expect(&a, 401, "invalid_client");

    test_fail_next("format_sign", MANDATE_TEMPFAIL);
    post(f, f->agent, jag_request(f, ADVISOR, "&audience=" RS), &a);
    test_answer_expect(&a, 503, "temporarily_unavailable");
    expect_reason("the ID-JAG could not be signed");
    test_random_fails_next();
    post(f, f->agent, jag_request(f, ADVISOR, "&audience=" RS), &a);
    test_answer_expect(&a, 500, "server_error");
    test_audit_fail("token.issued", 1);
    post(f, f->agent, jag_request(f, ADVISOR, "&audience=" RS), &a);
    test_answer_expect(&a, 503, "temporarily_unavailable");
    test_answer_clear(&a);
}

/* Without id_jag.audiences the broker issues none. */
static void test_issue_not_configured(void **state)
{
    fixture *f = started(state, "", jwt_format);
    test_answer a = {0};
    post(f, f->agent, jag_request(f, ADVISOR, "&audience=" RS), &a);
    test_answer_expect(&a, 400, "invalid_request");
    assert_true(test_contains(test_answer_get(&a, "error_description"), "issues no ID-JAG"));
    test_answer_clear(&a);
}

/* Only a format of ABI 1.3 or later with sign signs ID-JAGs. */
static void test_issue_without_a_signing_format(void **state)
{
    static const char *const old_format[] = {"format-old", "old", NULL};
    fixture *f = started(state,
                         "tokens: { format = \"old\"; };\n"
                         "id_jag = { audiences = [\"" RS "\"]; };\n",
                         old_format);
    test_answer a = {0};
    post(f, f->agent, jag_request(f, ADVISOR, "&audience=" RS), &a);
    test_answer_expect(&a, 500, "server_error");
    expect_reason("the ID-JAG could not be signed");
    test_answer_clear(&a);
}

/* --- accepted: an ID-JAG from a trusted IdP, through the JWT bearer grant ---------- */

static const char *jag_bearer(fixture *f, const char *claims, const char *extra)
{
    const char *script = mandate_pool_printf(f->pool, "sub=alice;attrs=%s", claims);
    return mandate_pool_printf(
        f->pool, "grant_type=" JWT_BEARER "&assertion=%s%s",
        test_form_encode(f->pool, test_jwt_script(f->pool, "oauth-id-jag+jwt", script)), extra);
}

#define CLAIMS                                                                                 \
    "{\"aud\":\"https://broker.example\",\"client_id\":\"agent\",\"scope\":\"mcp:call "        \
    "gateway:invoke\",\"resource\":\"" CAL "\"}"

static mandate_grant grant_of(fixture *f, const char *token)
{
    mandate_token_status st;
    mandate_error err = {0};
    assert_int_equal(mandate_token_validate(f->t->rt, f->pool, token, strlen(token), &st, &err),
                     MANDATE_OK);
    return st.grant;
}

static void test_accept(void **state)
{
    fixture *f = *state;
    test_answer a = {0};
    post(f, f->agent, jag_bearer(f, CLAIMS, "&scope=mcp:call"), &a);
    test_answer_expect(&a, 200, "");
    mandate_grant g = grant_of(f, test_answer_get(&a, "access_token"));
    assert_string_equal(g.subject, "alice");
    assert_string_equal(g.actor, "agent");
    assert_string_equal(g.scope, "mcp:call");
    assert_string_equal(g.audience, CAL); /* the ID-JAG's resource */
    assert_string_equal(g.idp, "https://idp.example");
    assert_string_equal(test_audit_field("token.issued", "id_jag_client_id"), "agent");
    /* no scope asked: the ID-JAG's, as far as the client may; aud may be a list */
    post(f, f->agent,
         jag_bearer(f,
                    "{\"aud\":[\"https://x\",\"https://broker.example\"],\"client_id\":"
                    "\"agent\",\"scope\":\"gateway:invoke trade:execute\"}",
                    ""),
         &a);
    test_answer_expect(&a, 200, "");
    assert_string_equal(test_answer_get(&a, "scope"), "gateway:invoke");
    test_answer_clear(&a);
}

static void test_accept_refusals(void **state)
{
    fixture *f = *state;
    static const struct {
        const char *claims, *extra;
        const char *error, *description;
    } cases[] = {
        {"null", "", "invalid_grant", "the ID-JAG has no claims or no sub"},
        {"{\"aud\":\"https://rs.other\",\"client_id\":\"agent\",\"scope\":\"mcp:call\"}", "",
         "invalid_grant", "the ID-JAG is for another authorization server (aud)"},
        {"{\"client_id\":\"agent\",\"scope\":\"mcp:call\"}", "", "invalid_grant",
         "the ID-JAG is for another authorization server (aud)"},
        {"{\"aud\":\"https://broker.example\",\"client_id\":\"other-agent\",\"scope\":\"a\"}",
         "", "invalid_grant", "the ID-JAG was issued to another client (client_id)"},
        {"{\"aud\":\"https://broker.example\",\"client_id\":\"agent\",\"scope\":7}", "",
         "invalid_grant", "the ID-JAG's scope or resource has the wrong type"},
        {"{\"aud\":\"https://broker.example\",\"client_id\":\"agent\",\"scope\":\"mcp:call\","
         "\"resource\":[1]}",
         "", "invalid_grant", "the ID-JAG's scope or resource has the wrong type"},
        {"{\"aud\":\"https://broker.example\",\"client_id\":\"agent\",\"scope\":\"mcp:call\"}",
         "&scope=gateway:invoke", "invalid_scope", NULL},
        {"{\"aud\":\"https://broker.example\",\"client_id\":\"agent\",\"scope\":\"trade:x\"}",
         "", "invalid_scope", NULL},
        {CLAIMS, "&resource=" OTHER, "invalid_target",
         "the resource is not within the ID-JAG's resource or this client's audiences"},
        {CLAIMS, "&resource=https://evil.example", "invalid_target", NULL},
    };
    test_answer a = {0};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        post(f, f->agent, jag_bearer(f, cases[i].claims, cases[i].extra), &a);
        if (a.status != 400 || strcmp(a.error, cases[i].error) != 0 ||
            (cases[i].description != NULL &&
             strcmp(test_answer_get(&a, "error_description"), cases[i].description) != 0))
            fail_msg("case %zu: %u %s (%s), expected 400 %s (%s)", i, a.status, a.error,
                     test_answer_get(&a, "error_description"), cases[i].error,
                     cases[i].description ? cases[i].description : "");
        assert_string_equal(test_audit_field("token.refused", "idp_instance"), "backend-idp");
    }
    /* what the IdP's backend refuses never gets this far */
    post(f, f->agent,
         mandate_pool_printf(
             f->pool, "grant_type=" JWT_BEARER "&assertion=%s",
             test_form_encode(f->pool, test_jwt_script(f->pool, "oauth-id-jag+jwt",
                                                       "rc=invalid;msg=alg none"))),
         &a);
    test_answer_expect(&a, 400, "invalid_grant");
    expect_reason("backend-idp: alg none");
    test_random_fails_next();
    post(f, f->agent, jag_bearer(f, CLAIMS, ""), &a);
    test_answer_expect(&a, 500, "server_error");
    test_answer_clear(&a);
}

/* Only the header's typ says ID-JAG, whatever its alg. */
static void test_id_jag_is(void **state)
{
    fixture *f = *state;
    assert_true(mandate_id_jag_is(test_jwt_script(f->pool, "oauth-id-jag+jwt", "x=y")));
    assert_true(
        mandate_id_jag_is(test_jwt_script(f->pool, "application/OAUTH-ID-JAG+JWT", "x=y")));
    assert_false(mandate_id_jag_is(test_jwt_script(f->pool, "JWT", "x=y")));
    assert_false(mandate_id_jag_is("no-dot"));
    assert_false(mandate_id_jag_is(".x.y"));
    assert_false(mandate_id_jag_is("!!!.x.y"));
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_issue),
        T(test_issue_refusals),
        cmocka_unit_test_teardown(test_issue_not_configured, teardown),
        cmocka_unit_test_teardown(test_issue_without_a_signing_format, teardown),
        T(test_accept),
        T(test_accept_refusals),
        T(test_id_jag_is),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
