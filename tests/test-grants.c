/* POST /oauth2/token through mandate_endpoint_token, without a server: the
 * dispatcher over the grant table, the issuing floor, and the grants
 * (client credentials, token exchange of our own tokens and of federated
 * ones, the SAML 2.0 and JWT bearer grants), each failure path of each.
 * The real sqlite store, jwt format and local backend, a format of ABI 1.3
 * and the scripted test backend (tests/plugins/backend-script.c) as the
 * IdP, through the loader; the audit records caught, and failures of the
 * store, the formats, the mapping and the randomness injected (-Wl,--wrap).
 * The ID-JAGs have their own program (test-id-jag.c). */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/sha.h>

#include "client-limits-private.h"
#include "clients-private.h"
#include "clock-private.h"
#include "endpoints-private.h"
#include "grant-table-private.h"
#include "jose.h"
#include "mapping-private.h"
#include "metrics-private.h"
#include "plugins-private.h"
#include "pool-private.h"
#include "request-fixture.h"
#include "test-helpers.h"
#include "util-private.h"
#include "validate-private.h"
#include "web-private.h"

#define CAL "https://mcp.example/cal"
#define OTHER "https://other.example/api"
#define XCHG "urn:ietf:params:oauth:grant-type:token-exchange"
#define SAML_BEARER "urn:ietf:params:oauth:grant-type:saml2-bearer"
#define JWT_BEARER "urn:ietf:params:oauth:grant-type:jwt-bearer"
#define TT_ACCESS "urn:ietf:params:oauth:token-type:access_token"
#define TT_SAML2 "urn:ietf:params:oauth:token-type:saml2"
#define TT_JWT "urn:ietf:params:oauth:token-type:jwt"
#define TT_ID_JAG "urn:ietf:params:oauth:token-type:id-jag"

/* --- failures injected ------------------------------------------------------ */

TEST_FACADE_WRAP(format_mint,
                 (const mandate_instance *in, mandate_pool *pool, const mandate_grant *grant,
                  char **token_r, mandate_error *err),
                 (in, pool, grant, token_r, err))
TEST_FACADE_WRAP(store_is_revoked,
                 (const mandate_instance *store, const char *jti, bool *revoked_r,
                  mandate_error *err),
                 (store, jti, revoked_r, err))

/* The race of review s32 (finding 7) made deterministic: the revocation of
 * this jti (RFC 7009's: marked, then the lineage below it revoked) lands at
 * the exchange's first lineage write, between its check of the subject
 * token and the tie of the new token to it. */
static const char *revoke_at_link;
__typeof__(mandate_store_lineage_add) __real_mandate_store_lineage_add;
__typeof__(mandate_store_lineage_add) __wrap_mandate_store_lineage_add;
mandate_rc __wrap_mandate_store_lineage_add(const mandate_instance *store, const char *jti,
                                            const char *parent, const char *client_id,
                                            int64_t expires_at, mandate_error *err)
{
    const char *victim = revoke_at_link;
    revoke_at_link = NULL;
    uint64_t revoked = 0;
    if (victim != NULL &&
        (mandate_store_revoke(store, victim, NULL, time(NULL) + 3600, err) != MANDATE_OK ||
         mandate_store_revoke_descendants(store, victim, &revoked, err) != MANDATE_OK))
        fail_msg("revoke %s: %s", victim, err->message);
    return __real_mandate_store_lineage_add(store, jti, parent, client_id, expires_at, err);
}

static bool mapping_fails;
__typeof__(mandate_mapping_apply) __real_mandate_mapping_apply;
__typeof__(mandate_mapping_apply) __wrap_mandate_mapping_apply;
mandate_rc __wrap_mandate_mapping_apply(const mandate_mappings *m,
                                        const mandate_mapping_request *req, mandate_pool *pool,
                                        mandate_mapping_result *out)
{
    if (mapping_fails) {
        mapping_fails = false;
        memset(out, 0, sizeof(*out));
        out->why = "mapping: injected";
        return MANDATE_ERROR;
    }
    return __real_mandate_mapping_apply(m, req, pool, out);
}

/* --- the fixture ------------------------------------------------------------ */

static const char conf[] =
    "server: { issuer = \"https://broker.example\"; };\n"
    "tokens: { format = \"jwt\"; lifetime = 3600; };\n"
    TEST_ADVISORS_MAPPING(CAL)
    "delegation = { max_depth = 3; rules = (\n"
    "  { name = \"helper-for-agent\"; actors = [\"helper\"]; clients = [\"agent\"]; },\n"
    "  { name = \"old-for-helper\"; actors = [\"old-client\"]; clients = [\"helper\"]; },\n"
    "  { name = \"deep-for-helper\"; actors = [\"deep\"]; clients = [\"helper\"]; },\n"
    "  { name = \"agent-for-deep\"; actors = [\"agent\"]; clients = [\"deep\"]; },\n"
    "  { name = \"limited-for-deep\"; actors = [\"limited\"]; clients = [\"deep\"]; },\n"
    "  { name = \"helper-for-limited\"; actors = [\"helper\"]; clients = [\"limited\"]; }\n"
    "); };\n";

typedef struct client {
    const char *id;
    char *secret;
    const char *basic;
} client;

typedef struct fixture {
    test_runtime *t;
    mandate_pool *pool;
    client agent, helper, old, deep, limited, other_tenant;
} fixture;

static void make_client(fixture *f, client *c, const mandate_client_spec *spec)
{
    mandate_client record;
    char *secret = NULL;
    mandate_error err = {0};
    if (mandate_clients_create(f->t->rt, f->pool, spec, &record, &secret, &err) != MANDATE_OK)
        fail_msg("client %s: %s", spec->client_id, err.message);
    c->id = spec->client_id;
    c->secret = mandate_pool_strdup(f->pool, secret);
    c->basic = test_basic(f->pool, c->id, c->secret);
}

static int setup(void **state)
{
    fixture *f = mandate_xcalloc(1, sizeof(*f));
    static const char *const instances[] = {"format-old",
                                            "kind = \"format\"; plugin = \"old\";\n",
                                            "backend-local",
                                            "kind = \"backend\"; plugin = \"local\";\n",
                                            "backend-idp",
                                            "kind = \"backend\"; plugin = \"script\";\n",
                                            NULL};
    f->t = test_runtime_sqlite(conf, instances);
    f->pool = mandate_pool_new();
    const char *scopes = "mcp:call gateway:invoke";
    const char *auds = CAL " " OTHER;
    make_client(f, &f->agent,
                &(mandate_client_spec){.client_id = "agent",
                                       .scopes = scopes,
                                       .default_scopes = "mcp:call",
                                       .audiences = auds,
                                       /* it redeems a code too (the grant is checked) */
                                       .metadata = "{\"redirect_uris\":[\"https://app.example/"
                                                   "cb\"],\"grant_types\":[\"authorization_"
                                                   "code\"]}"});
    make_client(
        f, &f->helper,
        &(mandate_client_spec){.client_id = "helper", .scopes = scopes, .audiences = auds});
    make_client(f, &f->old,
                &(mandate_client_spec){.client_id = "old-client",
                                       .scopes = scopes,
                                       .audiences = auds,
                                       .token_format = "format-old"});
    make_client(
        f, &f->deep,
        &(mandate_client_spec){.client_id = "deep", .scopes = scopes, .audiences = auds});
    make_client(
        f, &f->limited,
        &(mandate_client_spec){
            /* default scopes and audiences: a request of no scope is
             * refused otherwise (issue 24), before its rate is counted */
            .client_id = "limited", .scopes = scopes, .default_scopes = "mcp:call",
            .audiences = auds, .rate_limit = 0.001, .rate_burst = 1});
    make_client(f, &f->other_tenant,
                &(mandate_client_spec){.client_id = "stranger",
                                       .tenant = "elsewhere",
                                       .scopes = scopes,
                                       .audiences = auds});
    test_audit_reset();
    mapping_fails = false;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    mandate_client_limits_stop();
    test_runtime_teardown(&f->t, &f->pool);
    free(f);
    return 0;
}

/* --- helpers ------------------------------------------------------------------ */

static void post(fixture *f, const client *c, const char *body, test_answer *a)
{
    test_token(f->t, f->pool, c != NULL ? c->basic : NULL, body, a);
}

/* The last refusal's audited reason holds why. */
static void expect_reason(const char *why)
{
    assert_true(test_contains(test_audit_field("token.refused", "reason"), why));
}

#define ADVISOR "sub=alice;id=a-1;attrs={\"role\":\"advisor\",\"employeeId\":\"42\"}"

/* An access token of c by client credentials. */
static const char *own_token(fixture *f, const client *c, const char *extra)
{
    test_answer a = {0};
    post(f, c,
         mandate_pool_printf(f->pool, "grant_type=client_credentials%s", extra ? extra : ""),
         &a);
    test_answer_expect(&a, 200, "");
    const char *token = mandate_pool_strdup(f->pool, test_answer_get(&a, "access_token"));
    test_answer_clear(&a);
    return token;
}

/* What a token of ours says. */
static mandate_grant grant_of(fixture *f, const char *token)
{
    mandate_token_status st;
    mandate_error err = {0};
    mandate_rc rc = mandate_token_validate(f->t->rt, f->pool, token, strlen(token), &st, &err);
    if (rc != MANDATE_OK)
        fail_msg("token not active: %s %s", st.reason ? st.reason : "", err.message);
    return st.grant;
}

/* --- the dispatcher ------------------------------------------------------------ */

static void test_dispatch(void **state)
{
    fixture *f = *state;
    test_answer a = {0};
    static const char *const no_form[] = {"Content-Type", "application/json", NULL};
    test_token_with(f->t, f->pool, no_form, "grant_type=client_credentials", &a);
    test_answer_expect(&a, 400, "invalid_request");
    assert_true(test_contains(test_answer_get(&a, "error_description"), "Content-Type"));
    assert_int_equal(a.metric_grant, MANDATE_METRICS_GRANT_NONE);

    post(f, &f->agent, "grant_type=client_credentials&scope=%zz", &a);
    test_answer_expect(&a, 400, "invalid_request");
    post(f, &f->agent, "scope=mcp%3Acall", &a);
    test_answer_expect(&a, 400, "invalid_request");
    assert_string_equal(test_answer_get(&a, "error_description"), "grant_type is missing");
    assert_int_equal(a.metric_grant, MANDATE_METRICS_GRANT_NONE);
    post(f, &f->agent, "grant_type=password&username=u&password=p", &a);
    test_answer_expect(&a, 400, "unsupported_grant_type");
    assert_int_equal(a.metric_grant, MANDATE_METRICS_GRANT_OTHER);
    assert_string_equal(test_audit_field("token.refused", "grant_type"), "password");
    /* each row of the table gets its requests, under its own label */
    for (size_t i = 0; i < mandate_grant_table_count(); i++) {
        const mandate_grant_type *g = mandate_grant_table_at(i);
        post(f, NULL,
             mandate_pool_printf(f->pool, "grant_type=%s", test_form_encode(f->pool, g->uri)),
             &a);
        test_answer_expect(&a, 401, "invalid_client");
        assert_int_equal(a.metric_grant, mandate_grant_table_metric_slot(g->uri));
        assert_int_equal(a.metric_grant, MANDATE_METRICS_GRANT_FIRST + i);
    }
    test_answer_clear(&a);
}

/* --- client credentials and the issuing floor ---------------------------------- */

static void test_client_credentials(void **state)
{
    fixture *f = *state;
    test_answer a = {0};
    post(f, &f->agent, "grant_type=client_credentials", &a);
    test_answer_expect(&a, 200, "");
    assert_string_equal(test_answer_get(&a, "token_type"), "Bearer");
    assert_string_equal(test_answer_get(&a, "scope"), "mcp:call"); /* the default */
    assert_int_equal(json_integer_value(json_object_get(a.body, "expires_in")), 3600);
    assert_string_equal(test_answer_header(&a, "Cache-Control"), "no-store");
    assert_string_equal(test_answer_header(&a, "Pragma"), "no-cache");
    mandate_grant g = grant_of(f, test_answer_get(&a, "access_token"));
    assert_string_equal(g.subject, "agent");
    assert_string_equal(g.client_id, "agent");
    assert_null(g.actor);
    assert_string_equal(g.tenant, "default");
    assert_string_equal(g.audience, CAL " " OTHER);
    assert_string_equal(test_audit_field("token.issued", "client_id"), "agent");
    assert_string_equal(test_audit_field("token.issued", "grant_type"), "client_credentials");
    assert_string_equal(test_audit_field("token.issued", "jti"), g.jti);

    post(f, &f->agent, "grant_type=client_credentials&scope=gateway%3Ainvoke&resource=" OTHER,
         &a);
    test_answer_expect(&a, 200, "");
    g = grant_of(f, test_answer_get(&a, "access_token"));
    assert_string_equal(g.scope, "gateway:invoke");
    assert_string_equal(g.audience, OTHER);
    test_answer_clear(&a);
}

static void test_client_credentials_refusals(void **state)
{
    fixture *f = *state;
    test_answer a = {0};
    post(f, NULL, "grant_type=client_credentials", &a);
    test_answer_expect(&a, 401, "invalid_client");
    assert_string_equal(test_answer_header(&a, "WWW-Authenticate"), "Basic realm=\"mandate\"");
    post(f, &f->agent, "grant_type=client_credentials&scope=trade%3Aexecute", &a);
    test_answer_expect(&a, 400, "invalid_scope");
    assert_string_equal(test_audit_field("token.refused", "client_id"), "agent");
    post(f, &f->agent, "grant_type=client_credentials&resource=https%3A%2F%2Fevil.example", &a);
    test_answer_expect(&a, 400, "invalid_target");
    test_random_fails_next();
    post(f, &f->agent, "grant_type=client_credentials", &a);
    test_answer_expect(&a, 500, "server_error");
    expect_reason("no random bytes for the jti");
    test_answer_clear(&a);
}

/* The client's rate on the token endpoint: 429 once spent, audited; the
 * refusal not recorded is a 503. */
static void test_rate_limit(void **state)
{
    fixture *f = *state;
    mandate_client_limits_start(64);
    test_answer a = {0};
    post(f, &f->limited, "grant_type=client_credentials", &a);
    test_answer_expect(&a, 200, "");
    post(f, &f->limited, "grant_type=client_credentials", &a);
    test_answer_expect(&a, 429, "too_many_requests");
    assert_non_null(test_answer_header(&a, "Retry-After"));
    assert_string_equal(test_audit_field("token.refused", "reason"), "rate limit");
    test_audit_fail("token.refused", 1);
    post(f, &f->limited, "grant_type=client_credentials", &a);
    test_answer_expect(&a, 503, "temporarily_unavailable");
    /* the federated grants check it too, after authentication */
    post(f, &f->limited,
         mandate_pool_printf(f->pool, "grant_type=" SAML_BEARER "&assertion=%s",
                             test_form_encode(f->pool, ADVISOR)),
         &a);
    test_answer_expect(&a, 429, "too_many_requests");
    test_answer_clear(&a);
}

/* The issuing floor's own failures: no format, a format that cannot carry
 * the grant, a mint that fails, a record that cannot be written. */
static void test_issue_failures(void **state)
{
    fixture *f = *state;
    test_answer a = {0};
    test_fail_next("format_mint", MANDATE_TEMPFAIL);
    post(f, &f->agent, "grant_type=client_credentials", &a);
    test_answer_expect(&a, 503, "temporarily_unavailable");
    assert_string_equal(test_answer_header(&a, "Retry-After"), "5");
    expect_reason("the format could not mint");
    test_fail_next("format_mint", MANDATE_ERROR);
    post(f, &f->agent, "grant_type=client_credentials", &a);
    test_answer_expect(&a, 500, "server_error");

    test_audit_fail("token.issued", 1);
    post(f, &f->agent, "grant_type=client_credentials", &a);
    test_answer_expect(&a, 503, "temporarily_unavailable");
    assert_null(json_object_get(a.body, "access_token"));
    /* a 4xx refusal that cannot be recorded is answered 503 */
    test_audit_fail("token.refused", 1);
    post(f, &f->agent, "grant_type=client_credentials&scope=nope", &a);
    test_answer_expect(&a, 503, "temporarily_unavailable");

    /* the client's format is no longer enabled */
    const mandate_instance *store = mandate_runtime_store(f->t->rt);
    mandate_client c;
    mandate_error err = {0};
    assert_int_equal(mandate_store_client_get(store, f->pool, "agent", &c, &err), MANDATE_OK);
    c.token_format = "format-gone";
    c.updated_at = 0;
    assert_int_equal(mandate_store_client_update(store, &c, &err), MANDATE_OK);
    post(f, &f->agent, "grant_type=client_credentials", &a);
    test_answer_expect(&a, 500, "server_error");
    expect_reason("the client's token format is not enabled");
    test_answer_clear(&a);
}

/* --- token exchange of our own tokens ---------------------------------------------- */

static const char *exchange_body(fixture *f, const char *token, const char *extra)
{
    return mandate_pool_printf(
        f->pool, "grant_type=" XCHG "&subject_token_type=" TT_ACCESS "&subject_token=%s%s",
        test_form_encode(f->pool, token), extra ? extra : "");
}

/* A code redeemed whose code.redeemed record cannot be written is not
 * redeemed (review s32, finding 13): 503, and no token. */
static void test_code_redeemed_unrecorded(void **state)
{
    fixture *f = *state;
    static const char code[] = "code-of-alice", redirect[] = "https://app.example/cb";
    static const char verifier[] = "0123456789012345678901234567890123456789abc";
    unsigned char code_hash[32], challenge_hash[SHA256_DIGEST_LENGTH];
    char challenge[64];
    mandate_web_hash(code, code_hash);
    SHA256((const unsigned char *)verifier, strlen(verifier), challenge_hash);
    mandate_b64url_encode(challenge_hash, sizeof(challenge_hash), challenge);
    int64_t now = mandate_clock_now();
    const mandate_auth_code c = {
        .code_hash = code_hash,
        .code_hash_len = sizeof(code_hash),
        .client_id = "agent",
        .redirect_uri = redirect,
        .code_challenge = challenge,
        .family_id = "fam_unrecorded",
        .grant = "{\"sub\":\"alice\",\"tenant\":\"default\",\"scope\":\"mcp:call\",\"aud\":\"" CAL
                 "\"}",
        .issued_at = now,
        .expires_at = now + 60,
    };
    mandate_error err = {0};
    assert_int_equal(mandate_store_auth_code_put(mandate_runtime_store(f->t->rt), &c, &err),
                     MANDATE_OK);
    test_audit_fail("code.redeemed", 1);
    test_answer a = {0};
    post(f, &f->agent,
         mandate_pool_printf(f->pool,
                             "grant_type=authorization_code&code=%s&code_verifier=%s&"
                             "redirect_uri=https%%3A%%2F%%2Fapp.example%%2Fcb",
                             code, verifier),
         &a);
    test_answer_expect(&a, 503, "temporarily_unavailable");
    assert_int_equal(test_audit_count("token.issued"), 0);
    expect_reason("code.redeemed cannot be recorded");
    test_answer_clear(&a);
}

static void test_exchange_own_token(void **state)
{
    fixture *f = *state;
    const char *t = own_token(f, &f->agent, "&scope=mcp%3Acall+gateway%3Ainvoke");
    test_answer a = {0};
    /* narrowed by its own client */
    post(f, &f->agent, exchange_body(f, t, "&scope=mcp%3Acall&resource=" CAL), &a);
    test_answer_expect(&a, 200, "");
    assert_string_equal(test_answer_get(&a, "issued_token_type"),
                        "urn:ietf:params:oauth:token-type:access_token");
    mandate_grant g = grant_of(f, test_answer_get(&a, "access_token"));
    assert_string_equal(g.subject, "agent");
    assert_string_equal(g.actor, "agent");
    assert_string_equal(g.scope, "mcp:call");
    assert_string_equal(g.audience, CAL);

    /* handed down: helper acts for agent's token, old-client for helper's */
    post(f, &f->helper, exchange_body(f, t, NULL), &a);
    test_answer_expect(&a, 200, "");
    const char *t2 = mandate_pool_strdup(f->pool, test_answer_get(&a, "access_token"));
    g = grant_of(f, t2);
    assert_string_equal(g.subject, "agent");
    assert_string_equal(g.client_id, "helper");
    assert_string_equal(g.actor, "helper");
    assert_string_equal(test_audit_field("token.issued", "delegation_rule"),
                        "helper-for-agent");
    /* never past the subject token's expiry */
    mandate_grant first = grant_of(f, t);
    assert_true(g.expires_at <= first.expires_at);

    /* old-client's format predates the chain of actors: refused, not minted
     * with the chain dropped */
    post(f, &f->old, exchange_body(f, t2, NULL), &a);
    test_answer_expect(&a, 500, "server_error");
    expect_reason("cannot carry a chain of actors");
    test_answer_clear(&a);
}

static void test_exchange_refusals(void **state)
{
    fixture *f = *state;
    const char *t = own_token(f, &f->agent, NULL);
    test_answer a = {0};
    post(f, &f->agent, "grant_type=" XCHG "&subject_token_type=" TT_ACCESS, &a);
    test_answer_expect(&a, 400, "invalid_request");
    post(f, &f->agent, exchange_body(f, t, "&actor_token=x&actor_token_type=" TT_ACCESS), &a);
    test_answer_expect(&a, 400, "invalid_request");
    assert_true(test_contains(test_answer_get(&a, "error_description"), "actor_token"));
    post(f, &f->agent, exchange_body(f, t, "&requested_token_type=" TT_SAML2), &a);
    test_answer_expect(&a, 400, "invalid_request");
    post(f, &f->agent, exchange_body(f, t, "&requested_token_type=" TT_ID_JAG), &a);
    test_answer_expect(&a, 400, "invalid_request");
    assert_true(test_contains(test_answer_get(&a, "error_description"), "not for an access"));
    post(f, NULL, exchange_body(f, t, NULL), &a);
    test_answer_expect(&a, 401, "invalid_client");

    post(f, &f->agent, exchange_body(f, "not-a-token", NULL), &a);
    test_answer_expect(&a, 400, "invalid_grant");
    assert_string_equal(test_answer_get(&a, "error_description"),
                        "the subject_token is not active");
    post(f, &f->other_tenant, exchange_body(f, t, NULL), &a);
    test_answer_expect(&a, 400, "invalid_grant");
    assert_true(test_contains(test_answer_get(&a, "error_description"), "another tenant"));
    /* deep has no rule for agent's tokens */
    post(f, &f->deep, exchange_body(f, t, NULL), &a);
    test_answer_expect(&a, 400, "invalid_grant");
    assert_string_equal(test_audit_field("token.refused", "delegation"), "actor_not_allowed");
    post(f, &f->agent, exchange_body(f, t, "&scope=gateway%3Ainvoke"), &a);
    test_answer_expect(&a, 400, "invalid_scope");
    post(f, &f->helper, exchange_body(f, t, "&resource=https%3A%2F%2Fevil.example"), &a);
    test_answer_expect(&a, 400, "invalid_target");

    test_fail_next("store_is_revoked", MANDATE_TEMPFAIL);
    post(f, &f->agent, exchange_body(f, t, NULL), &a);
    test_answer_expect(&a, 503, "temporarily_unavailable");
    test_random_fails_next();
    post(f, &f->agent, exchange_body(f, t, NULL), &a);
    test_answer_expect(&a, 500, "server_error");
    test_answer_clear(&a);
}

/* A revocation of the subject token while it is exchanged leaves no live
 * child: the parent is checked again once the child is tied to it. */
static void test_exchange_racing_the_revocation(void **state)
{
    fixture *f = *state;
    const char *t = own_token(f, &f->agent, NULL);
    revoke_at_link = grant_of(f, t).jti;
    test_answer a = {0};
    post(f, &f->helper, exchange_body(f, t, NULL), &a);
    assert_null(revoke_at_link); /* the revocation did land in between */
    test_answer_expect(&a, 400, "invalid_grant");
    assert_string_equal(test_answer_get(&a, "error_description"),
                        "the subject_token is not active");
    expect_reason("while it was exchanged: revoked");
    assert_string_equal(test_audit_field("token.refused", "subject_client_id"), "agent");
    /* and so is the parent, for everyone */
    post(f, &f->helper, exchange_body(f, t, NULL), &a);
    test_answer_expect(&a, 400, "invalid_grant");
    expect_reason("revoked");
    test_answer_clear(&a);
}

/* A chain as long as delegation.max_depth (3) allows, nested nearest
 * first, and one more actor refused. */
static const char *handed(fixture *f, const client *c, const char *token)
{
    test_answer a = {0};
    post(f, c, exchange_body(f, token, NULL), &a);
    test_answer_expect(&a, 200, "");
    const char *out = mandate_pool_strdup(f->pool, test_answer_get(&a, "access_token"));
    test_answer_clear(&a);
    return out;
}

static void test_exchange_too_deep(void **state)
{
    fixture *f = *state;
    const char *t = handed(f, &f->helper, own_token(f, &f->agent, NULL));
    t = handed(f, &f->deep, t);
    /* agent, whose token began the chain (its sub), acting again: a cycle */
    test_answer a = {0};
    post(f, &f->agent, exchange_body(f, t, NULL), &a);
    test_answer_expect(&a, 400, "invalid_grant");
    assert_string_equal(test_audit_field("token.refused", "delegation"), "cycle");
    test_answer_clear(&a);
    t = handed(f, &f->limited, t);
    mandate_grant g = grant_of(f, t);
    assert_string_equal(g.subject, "agent");
    assert_string_equal(g.actor, "limited");
    assert_string_equal(g.prior_actors, "deep helper");
    post(f, &f->helper, exchange_body(f, t, NULL), &a);
    test_answer_expect(&a, 400, "invalid_grant");
    assert_string_equal(test_answer_get(&a, "error_description"),
                        "the subject_token's chain of actors is as long as allowed");
    assert_string_equal(test_audit_field("token.refused", "delegation"), "too_deep");
    test_answer_clear(&a);
}

/* --- federated: token exchange, SAML bearer, JWT bearer ------------------------------- */

static void test_exchange_federated(void **state)
{
    fixture *f = *state;
    test_answer a = {0};
    post(f, &f->agent, test_saml_exchange(f->pool, ADVISOR, "&scope=mcp%3Acall"), &a);
    test_answer_expect(&a, 200, "");
    mandate_grant g = grant_of(f, test_answer_get(&a, "access_token"));
    assert_string_equal(g.subject, "advisor-42");
    assert_string_equal(g.actor, "agent");
    assert_string_equal(g.idp, "https://idp.example");
    assert_string_equal(g.scope, "mcp:call");
    assert_string_equal(g.audience, CAL);
    assert_true(g.expires_at - g.issued_at <= 900);
    assert_string_equal(test_audit_field("token.issued", "idp_instance"), "backend-idp");
    assert_string_equal(test_audit_field("token.issued", "rule"), "advisors");
    assert_string_equal(test_audit_field("token.issued", "assertion_id"), "a-1");
    test_answer_clear(&a);
}

static const char *saml_bearer(fixture *f, const char *script)
{
    return mandate_pool_printf(f->pool, "grant_type=" SAML_BEARER "&assertion=%s",
                               test_form_encode(f->pool, script));
}

/* What the backend and the mapping rules refuse, through either grant. */
static void test_federated_refusals(void **state)
{
    fixture *f = *state;
    test_answer a = {0};
    post(f, &f->agent, saml_bearer(f, "rc=denied;msg=signature does not verify"), &a);
    test_answer_expect(&a, 400, "invalid_grant");
    assert_string_equal(test_answer_get(&a, "error_description"), "the assertion was refused");
    expect_reason("backend-idp: signature does not verify");
    assert_string_equal(test_audit_field("token.refused", "idp_instance"), "backend-idp");

    post(f, &f->agent, saml_bearer(f, "rc=tempfail;msg=IdP down"), &a);
    test_answer_expect(&a, 503, "temporarily_unavailable");
    expect_reason("backend-idp: IdP down");
    post(f, &f->agent, saml_bearer(f, "rc=error;msg=bug"), &a);
    test_answer_expect(&a, 500, "server_error");
    /* an issuer no backend knows: the backend that passed says why */
    post(f, &f->agent, saml_bearer(f, "iss=https://unknown.example"), &a);
    test_answer_expect(&a, 400, "invalid_grant");
    assert_string_equal(test_answer_get(&a, "error_description"),
                        "no enabled backend knows this issuer");
    expect_reason("backend-idp: another issuer");
    /* a kind of token no backend takes */
    post(f, &f->agent,
         mandate_pool_printf(f->pool,
                             "grant_type=" XCHG "&subject_token_type=urn%%3Aexample%%3Aother"
                             "&subject_token=%s",
                             test_form_encode(f->pool, ADVISOR)),
         &a);
    test_answer_expect(&a, 400, "invalid_request");
    assert_string_equal(test_answer_get(&a, "error_description"),
                        "no enabled backend accepts this subject_token_type");

    /* the mapping rules: none matches; one matches but not what was asked */
    post(f, &f->agent, saml_bearer(f, "attrs={\"role\":\"intern\",\"employeeId\":\"7\"}"), &a);
    test_answer_expect(&a, 400, "invalid_grant");
    assert_string_equal(test_answer_get(&a, "error_description"),
                        "no mapping rule grants a token to this identity");
    post(f, &f->agent,
         mandate_pool_printf(f->pool, "%s&scope=trade%%3Aexecute", saml_bearer(f, ADVISOR)),
         &a);
    test_answer_expect(&a, 400, "invalid_grant");
    assert_string_equal(test_answer_get(&a, "error_description"),
                        "the mapping rule does not allow this request");
    assert_string_equal(test_audit_field("token.refused", "rule"), "advisors");
    mapping_fails = true;
    post(f, &f->agent, saml_bearer(f, ADVISOR), &a);
    test_answer_expect(&a, 500, "server_error");
    test_random_fails_next();
    post(f, &f->agent, saml_bearer(f, ADVISOR), &a);
    test_answer_expect(&a, 500, "server_error");
    test_answer_clear(&a);
}

/* The assertion grants' answer: a token for the mapped advisor, and the
 * audit record names the kind of assertion it was issued for. */
static void expect_advisor_token(fixture *f, test_answer *a, const char *subject_token_type)
{
    test_answer_expect(a, 200, "");
    mandate_grant g = grant_of(f, test_answer_get(a, "access_token"));
    assert_string_equal(g.subject, "advisor-42");
    assert_string_equal(test_audit_field("token.issued", "subject_token_type"),
                        subject_token_type);
}

static void test_saml_bearer(void **state)
{
    fixture *f = *state;
    test_answer a = {0};
    post(f, &f->agent, saml_bearer(f, ADVISOR), &a);
    expect_advisor_token(f, &a, "urn:ietf:params:oauth:token-type:saml2");
    assert_null(json_object_get(a.body, "issued_token_type"));

    post(f, &f->agent, "grant_type=" SAML_BEARER, &a);
    test_answer_expect(&a, 400, "invalid_request");
    assert_string_equal(test_answer_get(&a, "error_description"), "assertion is required");
    post(f, NULL, saml_bearer(f, ADVISOR), &a);
    test_answer_expect(&a, 401, "invalid_client");
    test_answer_clear(&a);
}

static void test_jwt_bearer(void **state)
{
    fixture *f = *state;
    test_answer a = {0};
    const char *jwt = test_jwt_script(f->pool, "JWT", ADVISOR);
    post(f, &f->agent,
         mandate_pool_printf(f->pool, "grant_type=" JWT_BEARER "&assertion=%s",
                             test_form_encode(f->pool, jwt)),
         &a);
    expect_advisor_token(f, &a, "urn:ietf:params:oauth:token-type:jwt");

    post(f, &f->agent, "grant_type=" JWT_BEARER, &a);
    test_answer_expect(&a, 400, "invalid_request");
    post(f, NULL,
         mandate_pool_printf(f->pool, "grant_type=" JWT_BEARER "&assertion=%s",
                             test_form_encode(f->pool, jwt)),
         &a);
    test_answer_expect(&a, 401, "invalid_client");
    post(f, &f->agent,
         mandate_pool_printf(
             f->pool, "grant_type=" JWT_BEARER "&assertion=%s",
             test_form_encode(f->pool, test_jwt_script(f->pool, "JWT", "rc=expired;msg=old"))),
         &a);
    test_answer_expect(&a, 400, "invalid_grant");
    expect_reason("backend-idp: old");
    /* a JWT subject token through the token exchange */
    post(f, &f->agent,
         mandate_pool_printf(
             f->pool, "grant_type=" XCHG "&subject_token_type=" TT_JWT "&subject_token=%s",
             test_form_encode(f->pool, jwt)),
         &a);
    test_answer_expect(&a, 200, "");
    test_answer_clear(&a);
}

/* The metadata lists the grants of the table it can serve, in its order:
 * the bearer grants only when a backend takes such assertions. */
static const char *grant_types_supported(test_runtime *t, mandate_pool *pool)
{
    mandate_http_request req;
    test_request_init(&req, pool, t->rt, "GET", "/.well-known/oauth-authorization-server",
                      NULL);
    mandate_http_response resp = {0};
    mandate_endpoint_metadata(&req, &resp);
    assert_int_equal(resp.status, 200);
    const char *from = strstr(resp.body, "\"grant_types_supported\":");
    assert_non_null(from);
    return mandate_pool_printf(pool, "%.*s", (int)(strchr(from, ']') + 1 - from), from);
}

static void test_metadata_lists_the_table(void **state)
{
    fixture *f = *state;
    assert_string_equal(grant_types_supported(f->t, f->pool),
                        "\"grant_types_supported\":[\"client_credentials\",\"" XCHG
                        "\",\"" SAML_BEARER "\",\"" JWT_BEARER "\"]");
    test_runtime *bare = test_runtime_new(NULL);
    test_runtime_instance(bare, "store", "kind = \"store\"; plugin = \"sqlite\";\n");
    test_runtime_instance(bare, "format-jwt", "kind = \"format\"; plugin = \"jwt\";\n");
    test_runtime_instance(bare, "backend-local", "kind = \"backend\"; plugin = \"local\";\n");
    assert_int_equal(test_runtime_start(bare, MANDATE_RUNTIME_MIGRATE), MANDATE_OK);
    assert_string_equal(grant_types_supported(bare, f->pool),
                        "\"grant_types_supported\":[\"client_credentials\",\"" XCHG "\"]");
    test_runtime_free(&bare);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST_FX(test_dispatch),
        TEST_FX(test_client_credentials),
        TEST_FX(test_client_credentials_refusals),
        TEST_FX(test_rate_limit),
        TEST_FX(test_issue_failures),
        TEST_FX(test_code_redeemed_unrecorded),
        TEST_FX(test_exchange_own_token),
        TEST_FX(test_exchange_refusals),
        TEST_FX(test_exchange_racing_the_revocation),
        TEST_FX(test_exchange_too_deep),
        TEST_FX(test_exchange_federated),
        TEST_FX(test_federated_refusals),
        TEST_FX(test_saml_bearer),
        TEST_FX(test_jwt_bearer),
        TEST_FX(test_metadata_lists_the_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
