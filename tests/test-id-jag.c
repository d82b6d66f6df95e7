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
#include <time.h>

#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "client-cert.h"
#include "clients-private.h"
#include "dpop.h"
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
#define TT_ID_JAG "urn:ietf:params:oauth:token-type:id-jag"
#define ADVISOR                                                                                \
    "sub=alice;auth_time=1700000000;attrs={\"role\":\"advisor\",\"employeeId\":\"42\"}"

TEST_FACADE_WRAP(format_sign,
                 (const mandate_instance *in, mandate_pool *pool, const char *typ,
                  const char *claims, size_t claims_len, char **jws_r, mandate_error *err),
                 (in, pool, typ, claims, claims_len, jws_r, err))

static const char mappings[] = TEST_ADVISORS_MAPPING(CAL);

typedef struct fixture {
    test_runtime *t;
    mandate_pool *pool;
    const char *agent, *other; /* Basic credentials */
    EVP_PKEY *keys[2];         /* new_key's, freed by teardown */
    size_t n_keys;
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
static fixture *started_with(void **state, const char *server, const char *extra,
                             const char *const *formats)
{
    fixture *f = mandate_xcalloc(1, sizeof(*f));
    *state = f;
    char *conf = mandate_xasprintf("server: { issuer = \"https://broker.example\"; %s };\n%s%s",
                                   server, mappings, extra);
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

/* the tests' requests come from 127.0.0.1: a trusted proxy, whose
 * X-Client-Cert header is the TLS client certificate (as nginx's) */
#define CERT_FROM_PROXY                                                                        \
    "trusted_proxies = [\"127.0.0.1\"]; client_certificate_header = \"X-Client-Cert\";"

static int setup(void **state)
{
    started_with(state, CERT_FROM_PROXY,
                 "id_jag = { audiences = [\"" RS "\"]; lifetime = 300; };\n", jwt_format);
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    test_runtime_teardown(&f->t, &f->pool);
    for (size_t i = 0; i < f->n_keys; i++)
        EVP_PKEY_free(f->keys[i]);
    free(f);
    return 0;
}

/* A fresh key of the test's, freed with the fixture. */
static EVP_PKEY *new_key(fixture *f, mandate_jws_alg alg)
{
    assert_true(f->n_keys < sizeof(f->keys) / sizeof(f->keys[0]));
    return f->keys[f->n_keys++] = mandate_jose_keygen(alg);
}

static void post(fixture *f, const char *basic, const char *body, test_answer *a)
{
    test_token(f->t, f->pool, basic, body, a);
}

static void expect_reason(const char *why)
{
    assert_true(test_contains(test_audit_field("token.refused", "reason"), why));
}

/* --- issued: a sign-in exchanged for an ID-JAG ----------------------------------- */

static const char *jag_request(fixture *f, const char *script, const char *extra)
{
    return test_saml_exchange(
        f->pool, script,
        mandate_pool_printf(f->pool, "&requested_token_type=" TT_ID_JAG "%s", extra));
}

/* A broker started as started_with does, asked by the agent for the usual
 * ID-JAG (the advisor's, to RS): it must refuse with status and error, its
 * answer kept in a. */
static fixture *started_and_refused(void **state, const char *server, const char *extra,
                                    const char *const *formats, test_answer *a, unsigned status,
                                    const char *error)
{
    fixture *f = started_with(state, server, extra, formats);
    post(f, f->agent, jag_request(f, ADVISOR, "&audience=" RS), a);
    test_answer_expect(a, status, error);
    return f;
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
    test_answer a = {0};
    started_and_refused(state, "", "", jwt_format, &a, 400, "invalid_request");
    assert_true(test_contains(test_answer_get(&a, "error_description"), "issues no ID-JAG"));
    test_answer_clear(&a);
}

/* Only a format of ABI 1.3 or later with sign signs ID-JAGs. */
static void test_issue_without_a_signing_format(void **state)
{
    static const char *const old_format[] = {"format-old", "old", NULL};
    test_answer a = {0};
    started_and_refused(state, "",
                        "tokens: { format = \"old\"; };\n"
                        "id_jag = { audiences = [\"" RS "\"]; };\n",
                        old_format, &a, 500, "server_error");
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

/* An ID-JAG comes with the JWT bearer grant only: through the token exchange
 * the mapping rules would take it, and another client's ID-JAG (or scopes
 * beyond its own) would pass, as an access token or laundered into an
 * ID-JAG of the presenter's. */
static void test_accept_not_through_exchange(void **state)
{
    fixture *f = *state;
    const char *jag = test_jwt_script(
        f->pool, "oauth-id-jag+jwt",
        "sub=alice;attrs={\"role\":\"advisor\",\"employeeId\":\"42\",\"aud\":"
        "\"https://broker.example\",\"client_id\":\"agent\",\"scope\":\"mcp:call\"}");
    /* another client's, as an access token or an ID-JAG of its own; its
     * own client's, asking for more than its scope */
    const struct {
        const char *basic, *client_id, *extra;
    } cases[] = {
        {f->other, "other-agent", ""},
        {f->other, "other-agent", "&requested_token_type=" TT_ID_JAG "&audience=" RS},
        {f->agent, "agent", "&scope=mcp:call%20gateway:invoke"},
    };
    test_answer a = {0};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        post(f, cases[i].basic,
             mandate_pool_printf(f->pool,
                                 "grant_type=" XCHG "&subject_token_type=" TT_ID_JAG
                                 "&subject_token=%s%s",
                                 test_form_encode(f->pool, jag), cases[i].extra),
             &a);
        test_answer_expect(&a, 400, "invalid_request");
        assert_string_equal(test_answer_get(&a, "error_description"),
                            "an ID-JAG is presented with the JWT bearer grant (" JWT_BEARER
                            "), not exchanged");
        assert_string_equal(test_audit_field("token.refused", "error"), "invalid_request");
        assert_string_equal(test_audit_field("token.refused", "client_id"), cases[i].client_id);
    }
    test_answer_clear(&a);
}

/* --- sender-constrained across delegation (cnf) ------------------------------------ */

#define TOKEN_URL "https://broker.example/oauth2/token"
#define TT_ID_TOKEN "urn:ietf:params:oauth:token-type:id_token"

/* A DPoP proof of key for the token endpoint, made now. */
static const char *proof_of(fixture *f, EVP_PKEY *key)
{
    char *p = mandate_dpop_proof_make(key, "POST", TOKEN_URL, NULL, NULL, (int64_t)time(NULL));
    assert_non_null(p);
    const char *out = mandate_pool_strdup(f->pool, p);
    free(p);
    return out;
}

static const char *jkt_of(fixture *f, EVP_PKEY *key)
{
    char jkt[MANDATE_JWK_THUMBPRINT_LEN + 1];
    assert_true(mandate_jwk_thumbprint(key, jkt));
    return mandate_pool_strdup(f->pool, jkt);
}

/* A self-signed certificate of key as nginx's $ssl_client_escaped_cert
 * forwards it (the X-Client-Cert of a trusted proxy), and its thumbprint. */
static const char *escaped_cert(fixture *f, EVP_PKEY *key, const char **x5t_r)
{
    X509 *x = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"agent", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    char x5t[MANDATE_CERT_THUMBPRINT_LEN + 1];
    assert_true(mandate_cert_thumbprint(x, x5t));
    *x5t_r = mandate_pool_strdup(f->pool, x5t);
    BIO *bio = BIO_new(BIO_s_mem());
    assert_true(PEM_write_bio_X509(bio, x) == 1);
    char *pem;
    long len = BIO_get_mem_data(bio, &pem);
    const char *out = "";
    for (long i = 0; i < len; i++)
        out = strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-",
                     pem[i]) != NULL &&
                      pem[i] != '\0'
                  ? mandate_pool_printf(f->pool, "%s%c", out, pem[i])
                  : mandate_pool_printf(f->pool, "%s%%%02X", out, (unsigned char)pem[i]);
    BIO_free(bio);
    X509_free(x);
    return out;
}

/* POST /oauth2/token with a DPoP proof and a client certificate (either
 * may be NULL). */
static void post_bound(fixture *f, const char *dpop, const char *cert, const char *body,
                       test_answer *a)
{
    const char *headers[9] = {"Content-Type", "application/x-www-form-urlencoded",
                              "Authorization", f->agent};
    size_t n = 4;
    if (dpop != NULL) {
        headers[n++] = "DPoP";
        headers[n++] = dpop;
    }
    if (cert != NULL) {
        headers[n++] = "X-Client-Cert";
        headers[n++] = cert;
    }
    test_token_with(f->t, f->pool, headers, body, a);
}

static void expect_refused(const test_answer *a, const char *error, const char *description)
{
    test_answer_expect(a, 400, error);
    assert_string_equal(test_answer_get(a, "error_description"), description);
    assert_string_equal(test_audit_field("token.refused", "error"), error);
}

/* The ID-JAG's claims, bound by cnf (a JSON object's text). */
static const char *bound_claims(fixture *f, const char *cnf)
{
    return mandate_pool_printf(f->pool,
                               "{\"aud\":\"https://broker.example\",\"client_id\":\"agent\","
                               "\"scope\":\"mcp:call\",\"resource\":\"" CAL "\",\"cnf\":%s}",
                               cnf);
}

/* An ID-JAG bound to a DPoP key: only with a proof of that key, and the
 * access token bound to it (draft-ietf-oauth-identity-assertion-authz-grant,
 * "Proof-of-Possession During ID-JAG Exchange"). */
static void test_accept_dpop_bound(void **state)
{
    fixture *f = *state;
    EVP_PKEY *key = new_key(f, MANDATE_JWS_ES256);
    EVP_PKEY *thief = new_key(f, MANDATE_JWS_EDDSA);
    const char *jkt = jkt_of(f, key);
    const char *body = jag_bearer(
        f, bound_claims(f, mandate_pool_printf(f->pool, "{\"jkt\":\"%s\"}", jkt)), "");
    test_answer a = {0};
    post_bound(f, NULL, NULL, body, &a);
    expect_refused(&a, "invalid_grant",
                   "the ID-JAG is DPoP-bound: a DPoP proof of its key is required");
    assert_string_equal(test_audit_field("token.refused", "bound_jkt"), jkt);
    post_bound(f, proof_of(f, thief), NULL, body, &a);
    expect_refused(&a, "invalid_grant",
                   "the ID-JAG is DPoP-bound to another key than the DPoP proof's");
    assert_string_equal(test_audit_field("token.refused", "proof_jkt"), jkt_of(f, thief));
    post_bound(f, proof_of(f, key), NULL, body, &a);
    test_answer_expect(&a, 200, "");
    assert_string_equal(test_answer_get(&a, "token_type"), "DPoP");
    assert_string_equal(grant_of(f, test_answer_get(&a, "access_token")).cnf_jkt, jkt);
    assert_string_equal(test_audit_field("token.issued", "cnf_jkt"), jkt);
    /* a cnf that cannot be checked is refused, not taken for a bearer one */
    static const test_text_case bad[] = {
        /* a cnf, why it is refused */
        {"\"x\"", "cnf is not an object"},
        {"{}", "cnf names no key this broker knows"},
        {"{\"jkt\":\"short\"}", "cnf holds a thumbprint that is not one"},
        {"{\"jwk\":{\"kty\":\"EC\"}}",
         "cnf binds the token by a method this broker does not check"},
    };
    for (size_t i = 0; i < TEST_COUNT(bad); i++) {
        post_bound(f, proof_of(f, key), NULL, jag_bearer(f, bound_claims(f, bad[i].text), ""),
                   &a);
        expect_refused(
            &a, "invalid_grant",
            mandate_pool_printf(f->pool, "the ID-JAG cannot be honoured: %s", bad[i].want));
    }
    test_answer_clear(&a);
}

/* One bound to a client certificate: only over TLS with it, and the
 * access token bound to it even for a client that authenticates by secret. */
static void test_accept_certificate_bound(void **state)
{
    fixture *f = *state;
    EVP_PKEY *key = new_key(f, MANDATE_JWS_ES256);
    EVP_PKEY *thief = new_key(f, MANDATE_JWS_ES256);
    const char *x5t, *x5t_other;
    const char *cert = escaped_cert(f, key, &x5t);
    const char *other = escaped_cert(f, thief, &x5t_other);
    const char *body = jag_bearer(
        f, bound_claims(f, mandate_pool_printf(f->pool, "{\"x5t#S256\":\"%s\"}", x5t)), "");
    test_answer a = {0};
    static const char refusal[] =
        "the ID-JAG is certificate-bound: present it over TLS with that client certificate";
    post_bound(f, NULL, NULL, body, &a);
    expect_refused(&a, "invalid_grant", refusal);
    assert_string_equal(test_audit_field("token.refused", "bound_x5t_s256"), x5t);
    post_bound(f, NULL, other, body, &a);
    expect_refused(&a, "invalid_grant", refusal);
    post_bound(f, NULL, cert, body, &a);
    test_answer_expect(&a, 200, "");
    assert_string_equal(test_answer_get(&a, "token_type"), "Bearer"); /* RFC 8705 §3 */
    mandate_grant g = grant_of(f, test_answer_get(&a, "access_token"));
    assert_string_equal(g.cnf_x5t_s256, x5t);
    assert_null(g.cnf_jkt);
    test_answer_clear(&a);
}

/* The same check for the other grants that take someone else's token: a
 * JWT bearer assertion and a token exchange's subject_token; a SAML
 * attribute named cnf binds nothing. */
static void test_bound_assertions(void **state)
{
    fixture *f = *state;
    EVP_PKEY *key = new_key(f, MANDATE_JWS_ES256);
    const char *script = mandate_pool_printf(
        f->pool,
        "sub=alice;attrs={\"role\":\"advisor\",\"employeeId\":\"42\",\"cnf\":{\"jkt\":\"%s\"}}",
        jkt_of(f, key));
    const char *jwt = test_form_encode(f->pool, test_jwt_script(f->pool, "JWT", script));
    const char *bearer =
        mandate_pool_printf(f->pool, "grant_type=" JWT_BEARER "&assertion=%s", jwt);
    test_answer a = {0};
    post_bound(f, NULL, NULL, bearer, &a);
    expect_refused(&a, "invalid_grant",
                   "the assertion is DPoP-bound: a DPoP proof of its key is required");
    post_bound(f, proof_of(f, key), NULL, bearer, &a);
    test_answer_expect(&a, 200, "");
    assert_string_equal(test_answer_get(&a, "token_type"), "DPoP");
    const char *xchg = mandate_pool_printf(
        f->pool, "grant_type=" XCHG "&subject_token_type=" TT_ID_TOKEN "&subject_token=%s",
        jwt);
    post_bound(f, NULL, NULL, xchg, &a);
    expect_refused(&a, "invalid_grant",
                   "the subject_token is DPoP-bound: a DPoP proof of its key is required");
    post_bound(f, proof_of(f, key), NULL, xchg, &a);
    test_answer_expect(&a, 200, "");
    assert_string_equal(grant_of(f, test_answer_get(&a, "access_token")).cnf_jkt,
                        jkt_of(f, key));
    /* SAML attributes are no JWT claims */
    post_bound(f, NULL, NULL, test_saml_exchange(f->pool, script, ""), &a);
    test_answer_expect(&a, 200, "");
    assert_string_equal(test_answer_get(&a, "token_type"), "Bearer");
    test_answer_clear(&a);
}

/* An ID-JAG asked for with a DPoP proof carries cnf.jkt of its key (the
 * draft's "Proof-of-Possession During Token Exchange"); one made of a
 * certificate-bound subject token, that certificate's x5t#S256. */
static void test_issue_bound(void **state)
{
    fixture *f = *state;
    EVP_PKEY *key = new_key(f, MANDATE_JWS_ES256);
    const char *jkt = jkt_of(f, key), *x5t;
    const char *cert = escaped_cert(f, key, &x5t);
    test_answer a = {0};
    post_bound(f, proof_of(f, key), NULL, jag_request(f, ADVISOR, "&audience=" RS), &a);
    test_answer_expect(&a, 200, "");
    assert_string_equal(test_answer_get(&a, "token_type"), "N_A");
    const char *jag = test_answer_get(&a, "access_token");
    mandate_jws jws = {0};
    mandate_error err = {0};
    assert_int_equal(mandate_jws_parse(jag, strlen(jag), &jws, &err), MANDATE_OK);
    const json_t *cnf = json_object_get(jws.claims, "cnf");
    assert_string_equal(json_string_value(json_object_get(cnf, "jkt")), jkt);
    assert_null(json_object_get(cnf, "x5t#S256"));
    mandate_jws_clear(&jws);
    assert_string_equal(test_audit_field("token.issued", "cnf_jkt"), jkt);
    /* a client registered for DPoP-bound tokens gets no unbound ID-JAG */
    mandate_client_spec spec = {.client_id = "bound-agent",
                                .scopes = "mcp:call",
                                .audiences = CAL,
                                .attributes = "{\"dpop_bound_access_tokens\":true}"};
    mandate_client c;
    char *secret = NULL;
    assert_int_equal(mandate_clients_create(f->t->rt, f->pool, &spec, &c, &secret, &err),
                     MANDATE_OK);
    const char *bound_basic = test_basic(f->pool, "bound-agent", secret);
    post(f, bound_basic, jag_request(f, ADVISOR, "&audience=" RS), &a);
    expect_refused(&a, "invalid_dpop_proof",
                   "this client's tokens are DPoP-bound: a DPoP proof is required");
    /* without a proof: none */
    post_bound(f, NULL, NULL, jag_request(f, ADVISOR, "&audience=" RS), &a);
    test_answer_expect(&a, 200, "");
    jag = test_answer_get(&a, "access_token");
    assert_int_equal(mandate_jws_parse(jag, strlen(jag), &jws, &err), MANDATE_OK);
    assert_null(json_object_get(jws.claims, "cnf"));
    mandate_jws_clear(&jws);
    /* an id_token bound to a certificate, presented with it */
    const char *script =
        mandate_pool_printf(f->pool,
                            "sub=alice;attrs={\"role\":\"advisor\",\"employeeId\":\"42\","
                            "\"cnf\":{\"x5t#S256\":\"%s\"}}",
                            x5t);
    const char *body =
        mandate_pool_printf(f->pool,
                            "grant_type=" XCHG "&subject_token_type=" TT_ID_TOKEN
                            "&subject_token=%s&requested_token_type=" TT_ID_JAG "&audience=" RS,
                            test_form_encode(f->pool, test_jwt_script(f->pool, "JWT", script)));
    post_bound(f, NULL, NULL, body, &a);
    expect_refused(&a, "invalid_grant",
                   "the subject_token is certificate-bound: present it over TLS with that "
                   "client certificate");
    post_bound(f, NULL, cert, body, &a);
    test_answer_expect(&a, 200, "");
    jag = test_answer_get(&a, "access_token");
    assert_int_equal(mandate_jws_parse(jag, strlen(jag), &jws, &err), MANDATE_OK);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(jws.claims, "cnf"), "x5t#S256")),
        x5t);
    mandate_jws_clear(&jws);
    test_answer_clear(&a);
}

/* The profile fapi2 holds for an ID-JAG as for an access token (review s32,
 * finding 6): no client secret, and bound to a key or a certificate. */
static void test_issue_fapi2(void **state)
{
    test_answer a = {0};
    fixture *f =
        started_and_refused(state, CERT_FROM_PROXY,
                            "profile = { fapi2_tenants = [\"default\"]; };\n"
                            "id_jag = { audiences = [\"" RS "\"]; lifetime = 300; };\n",
                            jwt_format, &a, 401, "invalid_client");
    assert_string_equal(test_answer_get(&a, "error_description"),
                        "profile fapi2 (client_auth): client secrets are not accepted; "
                        "authenticate with private_key_jwt or a client certificate");
    expect_reason("profile fapi2 (client_auth)");
    /* a certificate client whose tokens are not bound to its certificate:
     * only with a DPoP proof */
    EVP_PKEY *key = mandate_jose_keygen(MANDATE_JWS_ES256);
    const char *x5t;
    const char *cert = escaped_cert(f, key, &x5t);
    mandate_client_spec spec = {
        .client_id = "cert-agent",
        .scopes = "mcp:call",
        .audiences = CAL,
        .attributes = mandate_pool_printf(
            f->pool,
            "{\"token_endpoint_auth_method\":\"self_signed_tls_client_auth\","
            "\"tls_client_auth_x5t_s256\":\"%s\","
            "\"tls_client_certificate_bound_access_tokens\":false}",
            x5t)};
    mandate_client c;
    char *secret = NULL;
    mandate_error err = {0};
    assert_int_equal(mandate_clients_create(f->t->rt, f->pool, &spec, &c, &secret, &err),
                     MANDATE_OK);
    const char *body = mandate_pool_printf(f->pool, "%s&client_id=cert-agent",
                                           jag_request(f, ADVISOR, "&audience=" RS));
    const char *headers[7] = {"Content-Type", "application/x-www-form-urlencoded",
                              "X-Client-Cert", cert};
    test_answer_clear(&a);
    test_token_with(f->t, f->pool, headers, body, &a);
    expect_refused(&a, "invalid_dpop_proof",
                   "profile fapi2 (sender_constrained): tokens are sender-constrained only: "
                   "send a DPoP proof (or use a client certificate)");
    expect_reason("profile fapi2 (sender_constrained)");
    headers[4] = "DPoP";
    headers[5] = proof_of(f, key);
    test_answer_clear(&a);
    test_token_with(f->t, f->pool, headers, body, &a);
    test_answer_expect(&a, 200, "");
    const char *jag = test_answer_get(&a, "access_token");
    mandate_jws jws = {0};
    assert_int_equal(mandate_jws_parse(jag, strlen(jag), &jws, &err), MANDATE_OK);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(jws.claims, "cnf"), "jkt")),
        jkt_of(f, key));
    mandate_jws_clear(&jws);
    EVP_PKEY_free(key);
    test_answer_clear(&a);
}

/* The acting client's audiences bound what a sign-in is exchanged for, as
 * they bound its client credentials (review s32, finding 8): a client
 * registered for OTHER only gets no token for CAL, which the mapping rule
 * lists, whether asked for or by default. */
static void test_federated_within_client_audiences(void **state)
{
    fixture *f = *state;
    mandate_client_spec spec = {
        .client_id = "narrow", .scopes = "mcp:call gateway:invoke", .audiences = OTHER};
    mandate_client c;
    char *secret = NULL;
    mandate_error err = {0};
    assert_int_equal(mandate_clients_create(f->t->rt, f->pool, &spec, &c, &secret, &err),
                     MANDATE_OK);
    const char *narrow = test_basic(f->pool, "narrow", secret);
    const char *saml = test_form_encode(f->pool, ADVISOR);
    const char *asked = "resource '" CAL "' is not allowed for this client";
    const char *by_default =
        "none of the audiences the mapping rule grants is allowed for this "
        "client";
    const struct {
        const char *body, *description;
    } cases[] = {
        {test_saml_exchange(f->pool, ADVISOR, "&resource=" CAL), asked},
        {test_saml_exchange(f->pool, ADVISOR, "&audience=" CAL), asked},
        {test_saml_exchange(f->pool, ADVISOR, ""), by_default},
        {mandate_pool_printf(f->pool,
                             "grant_type=urn:ietf:params:oauth:grant-type:saml2-bearer"
                             "&assertion=%s",
                             saml),
         by_default},
        {jag_request(f, ADVISOR, "&audience=" RS "&resource=" CAL), asked},
    };
    test_answer a = {0};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        post(f, narrow, cases[i].body, &a);
        if (a.status != 400 || strcmp(a.error, "invalid_target") != 0 ||
            strcmp(test_answer_get(&a, "error_description"), cases[i].description) != 0)
            fail_msg("case %zu: %u %s (%s)", i, a.status, a.error,
                     test_answer_get(&a, "error_description"));
        assert_string_equal(test_audit_field("token.refused", "error"), "invalid_target");
        assert_string_equal(test_audit_field("token.refused", "client_id"), "narrow");
        expect_reason("beyond the client's: " OTHER);
    }
    /* a client that may have CAL gets it, by default or asked */
    post(f, f->agent, test_saml_exchange(f->pool, ADVISOR, ""), &a);
    test_answer_expect(&a, 200, "");
    assert_string_equal(grant_of(f, test_answer_get(&a, "access_token")).audience, CAL);
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
    const struct CMUnitTest tests[] = {
        TEST_FX(test_issue),
        TEST_FX(test_issue_refusals),
        cmocka_unit_test_teardown(test_issue_not_configured, teardown),
        cmocka_unit_test_teardown(test_issue_without_a_signing_format, teardown),
        TEST_FX(test_accept),
        TEST_FX(test_accept_refusals),
        TEST_FX(test_accept_not_through_exchange),
        TEST_FX(test_federated_within_client_audiences),
        TEST_FX(test_id_jag_is),
        TEST_FX(test_accept_dpop_bound),
        TEST_FX(test_accept_certificate_bound),
        TEST_FX(test_bound_assertions),
        TEST_FX(test_issue_bound),
        cmocka_unit_test_teardown(test_issue_fapi2, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
