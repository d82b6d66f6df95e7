/* The jwt format plugin, linked in directly and driven through its
 * descriptor with the fake host: keygen, set_keys, mint and parse, key
 * rotation, forged and stale tokens, and set_keys racing mint on threads. */
#include "config.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include <mandate/format.h>

#include "fake-host.h"
#include "jose.h"
#include "pool-private.h"
#include "test-helpers.h"

extern const mandate_plugin mandate_plugin_jwt;

#define P (&mandate_plugin_jwt)
#define OPS ((const mandate_format_ops *)mandate_plugin_jwt.ops)

#define NOW ((int64_t)1900000000)

/* A key as keygen made it, with its private part. */
struct tkey {
    mandate_key key;
    unsigned char *der;
    size_t der_len;
};

/* --- helpers ------------------------------------------------------------------ */

static void expect_rc(mandate_rc want, mandate_rc rc, const mandate_error *err)
{
    if (rc != want)
        fail_msg("rc %d, want %d: %s", (int)rc, (int)want, err->message);
}

static void *inst_open(const char *algorithm)
{
    mandate_error err = {0};
    void *inst = fake_instance_new(P);
    assert_non_null(inst);
    if (algorithm != NULL)
        assert_int_equal(fake_conf_set(P, inst, "algorithm", algorithm), 0);
    expect_rc(MANDATE_OK, P->instantiate(inst, fake_host_get(), &err), &err);
    return inst;
}

static int setup(void **state)
{
    fake_plugin_fx *fx = fake_plugin_fx_new(NOW);
    fx->test_case = *state;
    fx->inst = inst_open(NULL);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fake_plugin_fx_free(P, *state);
    return 0;
}

static void keygen(fake_plugin_fx *fx, const char *alg, struct tkey *k)
{
    memset(k, 0, sizeof(*k));
    expect_rc(MANDATE_OK,
              OPS->keygen(fx->inst, fx->pool, alg, &k->key, &k->der, &k->der_len, &fx->err),
              &fx->err);
}

/* set_keys with keys[i] in the given status. */
static mandate_rc set_keys(void *inst, struct tkey **keys, const mandate_key_status *status,
                           size_t n, mandate_error *err)
{
    mandate_key copies[8];
    mandate_signing_key sk[8];
    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++) {
        copies[i] = keys[i]->key;
        copies[i].status = status[i];
        sk[i] = (mandate_signing_key){.key = &copies[i],
                                      .private_der = keys[i]->der,
                                      .private_der_len = keys[i]->der_len};
    }
    return OPS->set_keys(inst, sk, n, err);
}

static void use_key(fake_plugin_fx *fx, struct tkey *k)
{
    const mandate_key_status active = MANDATE_KEY_ACTIVE;
    expect_rc(MANDATE_OK, set_keys(fx->inst, &k, &active, 1, &fx->err), &fx->err);
}

/* A new key of alg, the only one and active. */
static void active_key(fake_plugin_fx *fx, const char *alg, struct tkey *k)
{
    keygen(fx, alg, k);
    use_key(fx, k);
}

static char *mint(fake_plugin_fx *fx, const mandate_grant *g)
{
    char *token = NULL;
    expect_rc(MANDATE_OK, OPS->mint(fx->inst, fx->pool, g, &token, &fx->err), &fx->err);
    assert_non_null(token);
    return token;
}

static mandate_rc parse(fake_plugin_fx *fx, const char *token, mandate_grant *g)
{
    memset(&fx->err, 0, sizeof(fx->err));
    return OPS->parse(fx->inst, fx->pool, token, strlen(token), g, &fx->err);
}

static void expect_parse(fake_plugin_fx *fx, const char *token, mandate_rc want,
                         const char *needle)
{
    mandate_grant g;
    mandate_rc rc = parse(fx, token, &g);
    expect_rc(want, rc, &fx->err);
    if (needle != NULL && strstr(fx->err.message, needle) == NULL)
        fail_msg("\"%s\" does not say \"%s\"", fx->err.message, needle);
    if (rc != MANDATE_OK)
        assert_null(g.subject);
}

/* The decoded header and claims of a token (not verified). */
static void decode(const char *token, mandate_jws *jws)
{
    mandate_error err = {0};
    expect_rc(MANDATE_OK, mandate_jws_parse(token, strlen(token), jws, &err), &err);
}

/* A token with chosen header fields and claims, signed by k's private key
 * through the JOSE helpers (not the plugin). */
static char *sign_with(const struct tkey *k, const char *kid, const char *typ, json_t *claims)
{
    EVP_PKEY *pkey = mandate_jose_private_from_der(k->der, k->der_len);
    assert_non_null(pkey);
    char *token = mandate_jws_sign(pkey, kid, typ, claims);
    assert_non_null(token);
    EVP_PKEY_free(pkey);
    json_decref(claims);
    return token;
}

static json_t *sample_claims(void)
{
    return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s}", "iss", "https://broker", "sub",
                     "agent", "aud", "https://api", "exp", (json_int_t)(NOW + 60), "iat",
                     (json_int_t)NOW, "nbf", (json_int_t)NOW, "jti", "j1", "client_id", "c1");
}

/* --- descriptor and config ------------------------------------------------------- */

static void test_descriptor(void **state)
{
    (void)state;
    test_assert_plugin_descriptor(P, MANDATE_FORMAT, "jwt");
    assert_non_null(OPS->mint);
    assert_non_null(OPS->parse);
    assert_non_null(OPS->keygen);
    assert_non_null(OPS->set_keys);
    assert_string_equal(P->conf[0].key, "algorithm");
    assert_string_equal(P->conf[0].default_value, "ES256");
    assert_string_equal(P->conf[1].key, "leeway");
    assert_string_equal(P->conf[1].default_value, "5");
    assert_null(P->conf[2].key);
}

static void test_conf(void **state)
{
    (void)state;
    void *inst = calloc(1, P->inst_size);
    assert_int_equal(fake_conf_defaults(P, inst), 0);
    assert_int_equal(fake_conf_set(P, inst, "algorithm", "HS256"), -1);
    assert_int_equal(fake_conf_set(P, inst, "algorithm", "none"), -1);
    assert_int_equal(fake_conf_set(P, inst, "leeway", "301"), -1);
    assert_int_equal(fake_conf_set(P, inst, "leeway", "-1"), -1);
    assert_int_equal(fake_conf_set(P, inst, "leeway", "300"), 0);
    assert_int_equal(fake_conf_set(P, inst, "algorithm", "EdDSA"), 0);
    mandate_error err = {0};
    expect_rc(MANDATE_OK, P->instantiate(inst, fake_host_get(), &err), &err);
    /* keygen without an alg uses the configured one */
    mandate_pool *pool = mandate_pool_new();
    mandate_key key;
    unsigned char *der;
    size_t der_len;
    expect_rc(MANDATE_OK, OPS->keygen(inst, pool, NULL, &key, &der, &der_len, &err), &err);
    assert_string_equal(key.alg, "EdDSA");
    mandate_pool_free(&pool);
    fake_instance_free(P, &inst);
}

/* --- keygen --------------------------------------------------------------------- */

static void check_keygen(fake_plugin_fx *fx, const char *alg, const char *want_alg)
{
    struct tkey k;
    keygen(fx, alg, &k);
    assert_string_equal(k.key.alg, want_alg);
    assert_int_equal(k.key.status, MANDATE_KEY_ACTIVE);
    assert_int_equal(k.key.created_at, NOW);
    assert_int_equal(k.key.retired_at, 0);
    assert_int_equal(strlen(k.key.kid), MANDATE_JWK_THUMBPRINT_LEN);
    assert_non_null(k.der);
    assert_true(k.der_len > 0);

    /* the kid is the RFC 7638 thumbprint of the key */
    char tp[MANDATE_JWK_THUMBPRINT_LEN + 1];
    EVP_PKEY *priv = mandate_jose_private_from_der(k.der, k.der_len);
    assert_non_null(priv);
    assert_string_equal(mandate_jws_alg_name(mandate_jws_alg_for_key(priv)), want_alg);
    assert_true(mandate_jwk_thumbprint(priv, tp));
    assert_string_equal(tp, k.key.kid);

    /* public_jwk is compact JSON of the public key, with use, alg and kid */
    assert_null(strchr(k.key.public_jwk, ' '));
    json_t *jwk = json_loads(k.key.public_jwk, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(jwk);
    assert_string_equal(json_string_value(json_object_get(jwk, "kid")), k.key.kid);
    assert_string_equal(json_string_value(json_object_get(jwk, "alg")), want_alg);
    assert_string_equal(json_string_value(json_object_get(jwk, "use")), "sig");
    static const char *const private_members[] = {"d", "p", "q", "dp", "dq", "qi"};
    for (size_t i = 0; i < 6; i++)
        assert_null(json_object_get(jwk, private_members[i]));
    EVP_PKEY *pub = mandate_jwk_to_key(jwk, &fx->err);
    assert_non_null(pub);
    assert_int_equal(EVP_PKEY_eq(pub, priv), 1);
    assert_true(mandate_jwk_thumbprint(pub, tp));
    assert_string_equal(tp, k.key.kid);
    EVP_PKEY_free(pub);
    EVP_PKEY_free(priv);
    json_decref(jwk);

    /* and it signs tokens that parse */
    use_key(fx, &k);
    mandate_grant g = test_sample_grant(NOW), back;
    char *token = mint(fx, &g);
    expect_rc(MANDATE_OK, parse(fx, token, &back), &fx->err);
}

/* The case is the algorithm. */
static void test_keygen(void **state)
{
    fake_plugin_fx *fx = *state;
    check_keygen(fx, fx->test_case, fx->test_case);
}

static void test_keygen_default_and_refused(void **state)
{
    fake_plugin_fx *fx = *state;
    check_keygen(fx, NULL, "ES256");
    mandate_key key;
    unsigned char *der;
    size_t der_len;
    static const char *const bad[] = {"HS256", "none", "es256", "RS512", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect_rc(MANDATE_INVALID,
                  OPS->keygen(fx->inst, fx->pool, bad[i], &key, &der, &der_len, &fx->err),
                  &fx->err);
        assert_null(der);
        assert_null(key.kid);
    }
    /* two keys never share a kid */
    struct tkey a, b;
    keygen(fx, "EdDSA", &a);
    keygen(fx, "EdDSA", &b);
    assert_string_not_equal(a.key.kid, b.key.kid);
}

/* --- mint and parse --------------------------------------------------------------- */

static void round_trip(fake_plugin_fx *fx, const char *alg)
{
    struct tkey k;
    keygen(fx, alg, &k);
    use_key(fx, &k);
    mandate_grant g = test_sample_grant(NOW), back;
    char *token = mint(fx, &g);

    mandate_jws jws;
    decode(token, &jws);
    assert_string_equal(json_string_value(json_object_get(jws.header, "alg")), alg);
    assert_string_equal(jws.typ, "at+jwt");
    assert_string_equal(jws.kid, k.key.kid);
    assert_int_equal(json_object_size(jws.header), 3);
    const json_t *c = jws.claims;
    assert_string_equal(json_string_value(json_object_get(c, "iss")), g.issuer);
    assert_string_equal(json_string_value(json_object_get(c, "sub")), g.subject);
    assert_string_equal(json_string_value(json_object_get(c, "aud")), g.audience);
    assert_string_equal(json_string_value(json_object_get(c, "client_id")), g.client_id);
    assert_string_equal(json_string_value(json_object_get(c, "scope")), g.scope);
    assert_string_equal(json_string_value(json_object_get(c, "jti")), g.jti);
    assert_int_equal(json_integer_value(json_object_get(c, "exp")), g.expires_at);
    assert_int_equal(json_integer_value(json_object_get(c, "iat")), g.issued_at);
    assert_int_equal(json_integer_value(json_object_get(c, "nbf")), g.not_before);
    assert_null(json_object_get(c, "act"));
    assert_null(json_object_get(c, "idp"));
    assert_null(json_object_get(c, "tenant"));
    assert_int_equal(json_object_size(c), 9);
    mandate_jws_clear(&jws);

    expect_rc(MANDATE_OK, parse(fx, token, &back), &fx->err);
    test_assert_grants_equal(&g, &back);
}

/* The case is the algorithm. */
static void test_round_trip(void **state)
{
    fake_plugin_fx *fx = *state;
    round_trip(fx, fx->test_case);
}

static void test_audience_forms(void **state)
{
    fake_plugin_fx *fx = *state;
    struct tkey k;
    active_key(fx, "ES256", &k);
    mandate_grant g = test_sample_grant(NOW), back;
    mandate_jws jws;

    /* several values: an array, back to a space-separated list */
    g.audience = "https://a.example.com https://b.example.com urn:tool:git";
    char *token = mint(fx, &g);
    decode(token, &jws);
    const json_t *aud = json_object_get(jws.claims, "aud");
    assert_true(json_is_array(aud));
    assert_int_equal(json_array_size(aud), 3);
    assert_string_equal(json_string_value(json_array_get(aud, 0)), "https://a.example.com");
    assert_string_equal(json_string_value(json_array_get(aud, 2)), "urn:tool:git");
    mandate_jws_clear(&jws);
    expect_rc(MANDATE_OK, parse(fx, token, &back), &fx->err);
    assert_string_equal(back.audience, g.audience);

    /* stray spaces do not make empty values */
    g.audience = "  https://a.example.com   ";
    token = mint(fx, &g);
    decode(token, &jws);
    assert_string_equal(json_string_value(json_object_get(jws.claims, "aud")),
                        "https://a.example.com");
    mandate_jws_clear(&jws);

    /* none: no aud claim */
    static const char *const none[] = {NULL, "", "   "};
    for (size_t i = 0; i < 3; i++) {
        g.audience = none[i];
        token = mint(fx, &g);
        decode(token, &jws);
        assert_null(json_object_get(jws.claims, "aud"));
        mandate_jws_clear(&jws);
        expect_rc(MANDATE_OK, parse(fx, token, &back), &fx->err);
        assert_null(back.audience);
    }

    /* no scope: no scope claim */
    g = test_sample_grant(NOW);
    g.scope = NULL;
    token = mint(fx, &g);
    decode(token, &jws);
    assert_null(json_object_get(jws.claims, "scope"));
    mandate_jws_clear(&jws);
    expect_rc(MANDATE_OK, parse(fx, token, &back), &fx->err);
    assert_null(back.scope);
}

static void test_act_idp_tenant(void **state)
{
    fake_plugin_fx *fx = *state;
    struct tkey k;
    active_key(fx, "EdDSA", &k);
    mandate_grant g = test_sample_grant(NOW), back;
    g.actor = "advisor-jane@example.com";
    g.idp = "corp-saml";
    g.tenant = "acme";
    char *token = mint(fx, &g);
    mandate_jws jws;
    decode(token, &jws);
    const json_t *act = json_object_get(jws.claims, "act");
    assert_true(json_is_object(act));
    assert_int_equal(json_object_size(act), 1);
    assert_string_equal(json_string_value(json_object_get(act, "sub")), g.actor);
    assert_string_equal(json_string_value(json_object_get(jws.claims, "idp")), g.idp);
    assert_string_equal(json_string_value(json_object_get(jws.claims, "tenant")), g.tenant);
    mandate_jws_clear(&jws);
    expect_rc(MANDATE_OK, parse(fx, token, &back), &fx->err);
    test_assert_grants_equal(&g, &back);
}

/* A DPoP-bound grant (ABI 1.5): cnf.jkt in the token, read back. */
static void test_cnf_jkt(void **state)
{
    fake_plugin_fx *fx = *state;
    struct tkey k;
    active_key(fx, "ES256", &k);
    mandate_grant g = test_sample_grant(NOW), back;
    g.cnf_jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
    char *token = mint(fx, &g);
    mandate_jws jws;
    decode(token, &jws);
    const json_t *cnf = json_object_get(jws.claims, "cnf");
    assert_string_equal(json_string_value(json_object_get(cnf, "jkt")), g.cnf_jkt);
    mandate_jws_clear(&jws);
    expect_rc(MANDATE_OK, parse(fx, token, &back), &fx->err);
    assert_string_equal(back.cnf_jkt, g.cnf_jkt);
    assert_null(back.cnf_x5t_s256);
}

/* The sample grant, with agent-c acting after prior_actors. */
static mandate_grant acted_for(const char *prior_actors)
{
    mandate_grant g = test_sample_grant(NOW);
    g.actor = "agent-c";
    g.prior_actors = prior_actors;
    return g;
}

/* A chain of actors: nested act objects, nearest first (RFC 8693 §4.1),
 * read back into prior_actors; bounded both ways. */
static void test_act_chain(void **state)
{
    fake_plugin_fx *fx = *state;
    struct tkey k;
    active_key(fx, "ES256", &k);
    mandate_grant g = acted_for("agent-b agent-a"), back;
    char *token = mint(fx, &g);
    mandate_jws jws;
    decode(token, &jws);
    char *act = json_dumps(json_object_get(jws.claims, "act"), JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(act, "{\"act\":{\"act\":{\"sub\":\"agent-a\"},\"sub\":\"agent-b\"},"
                             "\"sub\":\"agent-c\"}");
    free(act);
    mandate_jws_clear(&jws);
    expect_rc(MANDATE_OK, parse(fx, token, &back), &fx->err);
    test_assert_grants_equal(&g, &back);

    /* MANDATE_GRANT_MAX_ACTORS in all: minted and read; one more: neither */
    char prior[256] = "";
    for (int i = 1; i < MANDATE_GRANT_MAX_ACTORS; i++)
        snprintf(prior + strlen(prior), sizeof(prior) - strlen(prior), "%sp%d",
                 i > 1 ? " " : "", i);
    g.prior_actors = prior;
    token = mint(fx, &g);
    expect_rc(MANDATE_OK, parse(fx, token, &back), &fx->err);
    assert_string_equal(back.prior_actors, prior);
    g.prior_actors = mandate_pool_printf(fx->pool, "%s p%d", prior, MANDATE_GRANT_MAX_ACTORS);
    char *none = NULL;
    expect_rc(MANDATE_INVALID, OPS->mint(fx->inst, fx->pool, &g, &none, &fx->err), &fx->err);
    assert_non_null(strstr(fx->err.message, "act"));
    assert_null(none);

    /* signed by our key, but nested deeper than any chain we make */
    json_t *claims = sample_claims(), *nest = json_pack("{s:s}", "sub", "x");
    for (int i = 0; i < MANDATE_GRANT_MAX_ACTORS; i++)
        nest = json_pack("{s:s,s:o}", "sub", "x", "act", nest);
    json_object_set_new(claims, "act", nest);
    token = sign_with(&k, k.key.kid, "at+jwt", claims);
    expect_parse(fx, token, MANDATE_INVALID, "more actors");
    free(token);
    /* and other shapes we never write */
    const char *bad[] = {"{\"sub\":\"a\",\"act\":\"b\"}", "{\"sub\":\"a b\"}", "[]",
                         "{\"sub\":\"a\",\"act\":{}}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        claims = sample_claims();
        json_object_set_new(claims, "act", json_loads(bad[i], JSON_DECODE_ANY, NULL));
        token = sign_with(&k, k.key.kid, "at+jwt", claims);
        expect_parse(fx, token, MANDATE_INVALID, "act");
        free(token);
    }
}

/* A host of before ABI 1.4 has no prior_actors in its grant: the plugin
 * neither reads nor writes it, and refuses a nested act rather than read it
 * as the nearest actor alone. */
static void test_act_chain_old_host(void **state)
{
    fake_plugin_fx *fx = *state;
    struct tkey k;
    active_key(fx, "ES256", &k);
    mandate_grant g = acted_for("agent-b"), back;
    char *chained = mint(fx, &g);

    mandate_host old = *fake_host_get();
    old.abi_minor = 3;
    mandate_error err = {0};
    void *inst = calloc(1, P->inst_size);
    assert_int_equal(fake_conf_defaults(P, inst), 0);
    expect_rc(MANDATE_OK, P->instantiate(inst, &old, &err), &err);
    void *current = fx->inst;
    fx->inst = inst;
    use_key(fx, &k);
    char *token = mint(fx, &g);
    mandate_jws jws;
    decode(token, &jws);
    assert_null(json_object_get(json_object_get(jws.claims, "act"), "act"));
    mandate_jws_clear(&jws);
    memset(&back, 0x5a, sizeof(back));
    expect_rc(MANDATE_OK, parse(fx, token, &back), &fx->err);
    assert_string_equal(back.actor, "agent-c");
    /* past the old grant's end: not touched */
    const unsigned char *tail = (const unsigned char *)&back.prior_actors;
    for (size_t i = 0; i < sizeof(back.prior_actors); i++)
        assert_int_equal(tail[i], 0x5a);
    expect_parse(fx, chained, MANDATE_INVALID, "cannot carry");
    fx->inst = current;
    fake_instance_free(P, &inst);
}

static void test_mint_refusals(void **state)
{
    fake_plugin_fx *fx = *state;
    struct tkey k;
    active_key(fx, "ES256", &k);
    mandate_grant g = test_sample_grant(NOW);
    char *token = (char *)"untouched";
    /* invalid UTF-8 cannot become JSON */
    g.subject = "agent-\xff";
    expect_rc(MANDATE_INVALID, OPS->mint(fx->inst, fx->pool, &g, &token, &fx->err), &fx->err);
    assert_null(token);
    g = test_sample_grant(NOW);
    g.audience = "https://a \xc3";
    expect_rc(MANDATE_INVALID, OPS->mint(fx->inst, fx->pool, &g, &token, &fx->err), &fx->err);
    /* a grant without a subject is the core's fault */
    g = test_sample_grant(NOW);
    g.subject = NULL;
    expect_rc(MANDATE_ERROR, OPS->mint(fx->inst, fx->pool, &g, &token, &fx->err), &fx->err);
}

static void test_no_keys_tempfail(void **state)
{
    fake_plugin_fx *fx = *state;
    mandate_grant g = test_sample_grant(NOW);
    char *token;
    expect_rc(MANDATE_TEMPFAIL, OPS->mint(fx->inst, fx->pool, &g, &token, &fx->err), &fx->err);
    assert_non_null(strstr(fx->err.message, "no active signing key"));
    assert_null(token);
    /* an empty set, and a set of retired keys only, are the same */
    expect_rc(MANDATE_OK, OPS->set_keys(fx->inst, NULL, 0, &fx->err), &fx->err);
    expect_rc(MANDATE_TEMPFAIL, OPS->mint(fx->inst, fx->pool, &g, &token, &fx->err), &fx->err);
    struct tkey k, *kp = &k;
    active_key(fx, "ES256", &k);
    char *old = mint(fx, &g);
    const mandate_key_status retired = MANDATE_KEY_RETIRED;
    expect_rc(MANDATE_OK, set_keys(fx->inst, &kp, &retired, 1, &fx->err), &fx->err);
    expect_rc(MANDATE_TEMPFAIL, OPS->mint(fx->inst, fx->pool, &g, &token, &fx->err), &fx->err);
    /* a retired key still verifies */
    expect_parse(fx, old, MANDATE_OK, NULL);
}

/* --- parse refusals ------------------------------------------------------------------ */

static void test_expired(void **state)
{
    fake_plugin_fx *fx = *state;
    struct tkey k;
    active_key(fx, "ES256", &k);
    mandate_grant g = test_sample_grant(NOW);
    g.expires_at = NOW + 60;
    char *token = mint(fx, &g);
    /* within the 5 s leeway after exp: still good */
    fake_host_set_now(NOW + 64);
    expect_parse(fx, token, MANDATE_OK, NULL);
    /* exp <= now - leeway */
    fake_host_set_now(NOW + 65);
    expect_parse(fx, token, MANDATE_EXPIRED, "expired");
    fake_host_set_now(NOW + 86400);
    expect_parse(fx, token, MANDATE_EXPIRED, NULL);
}

static void test_not_yet_valid(void **state)
{
    fake_plugin_fx *fx = *state;
    struct tkey k;
    active_key(fx, "EdDSA", &k);
    /* minted by a node whose clock is 100 s ahead */
    mandate_grant g = test_sample_grant(NOW);
    g.issued_at = g.not_before = NOW + 100;
    g.expires_at = NOW + 700;
    char *token = mint(fx, &g);
    expect_parse(fx, token, MANDATE_INVALID, "not yet valid");
    /* 5 s ahead is within the leeway */
    g.issued_at = g.not_before = NOW + 5;
    token = mint(fx, &g);
    expect_parse(fx, token, MANDATE_OK, NULL);
    /* nbf later than iat */
    g.issued_at = NOW;
    g.not_before = NOW + 30;
    token = mint(fx, &g);
    expect_parse(fx, token, MANDATE_INVALID, "nbf");
    /* an iat in the future, even with nbf now */
    json_t *claims = sample_claims();
    json_object_set_new(claims, "iat", json_integer(NOW + 3600));
    token = sign_with(&k, k.key.kid, "at+jwt", claims);
    expect_parse(fx, token, MANDATE_INVALID, "iat");
    free(token);
}

static void test_unknown_kid(void **state)
{
    fake_plugin_fx *fx = *state;
    struct tkey in_set, outside;
    keygen(fx, "ES256", &in_set);
    keygen(fx, "ES256", &outside);
    use_key(fx, &in_set);
    /* signed by a key the set does not have, under its own kid */
    char *token = sign_with(&outside, outside.key.kid, "at+jwt", sample_claims());
    expect_parse(fx, token, MANDATE_INVALID, "unknown kid");
    free(token);
    /* the same, claiming the kid of the key in the set */
    token = sign_with(&outside, in_set.key.kid, "at+jwt", sample_claims());
    expect_parse(fx, token, MANDATE_INVALID, "does not verify");
    free(token);
    /* no kid at all */
    token = sign_with(&in_set, NULL, "at+jwt", sample_claims());
    expect_parse(fx, token, MANDATE_INVALID, "kid");
    free(token);
    /* with the right kid it parses */
    token = sign_with(&in_set, in_set.key.kid, "at+jwt", sample_claims());
    expect_parse(fx, token, MANDATE_OK, NULL);
    free(token);
}

static void test_alg_of_the_key_only(void **state)
{
    fake_plugin_fx *fx = *state;
    struct tkey es, ed;
    keygen(fx, "ES256", &es);
    keygen(fx, "EdDSA", &ed);
    struct tkey *keys[] = {&es, &ed};
    const mandate_key_status st[] = {MANDATE_KEY_ACTIVE, MANDATE_KEY_RETIRED};
    expect_rc(MANDATE_OK, set_keys(fx->inst, keys, st, 2, &fx->err), &fx->err);
    /* an EdDSA token that names the ES256 key */
    char *token = sign_with(&ed, es.key.kid, "at+jwt", sample_claims());
    expect_parse(fx, token, MANDATE_INVALID, "does not match");
    free(token);
}

/* A token of the sample grant signed by a new active key of alg. */
static char *fresh_token(fake_plugin_fx *fx, const char *alg)
{
    struct tkey k;
    active_key(fx, alg, &k);
    mandate_grant g = test_sample_grant(NOW);
    return mint(fx, &g);
}

static void test_tampered(void **state)
{
    fake_plugin_fx *fx = *state;
    char *token = fresh_token(fx, "ES256");

    /* the payload with sub changed, re-encoded, signature kept */
    char *p = strchr(token, '.') + 1, *s = strrchr(token, '.');
    unsigned char payload[1024];
    size_t len;
    assert_true(mandate_b64url_decode(p, (size_t)(s - p), payload, sizeof(payload), &len));
    payload[len] = '\0';
    char *at = strstr((char *)payload, "agent-7");
    assert_non_null(at);
    at[6] = '8';
    char forged[2048], enc[1500];
    mandate_b64url_encode(payload, len, enc);
    snprintf(forged, sizeof(forged), "%.*s%s%s", (int)(p - token), token, enc, s);
    expect_parse(fx, forged, MANDATE_INVALID, "does not verify");

    /* one character of the signature, swapped for another base64url one
     * (flipping a bit could make '-' into ',', which fails parsing instead) */
    snprintf(forged, sizeof(forged), "%s", token);
    char *c = &forged[strlen(forged) - 5];
    *c = *c == 'A' ? 'B' : 'A';
    expect_parse(fx, forged, MANDATE_INVALID, NULL);

    /* the untouched token still parses */
    expect_parse(fx, token, MANDATE_OK, NULL);
}

/* An ES256 token with s replaced by n - s is a valid ECDSA signature and
 * another string: refused, so that every token of ours has one string (the
 * check cache, deny lists and replay checks of others key by it). */
static void test_high_s_refused(void **state)
{
    fake_plugin_fx *fx = *state;
    char *token = fresh_token(fx, "ES256");
    char *s64 = strrchr(token, '.') + 1;
    unsigned char sig[64];
    size_t len;
    assert_true(mandate_b64url_decode(s64, strlen(s64), sig, sizeof(sig), &len));
    assert_int_equal(len, 64);
    EC_GROUP *group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    BIGNUM *s = BN_bin2bn(sig + 32, 32, NULL);
    assert_true(group != NULL && s != NULL);
    assert_int_equal(BN_sub(s, EC_GROUP_get0_order(group), s), 1);
    assert_int_equal(BN_bn2binpad(s, sig + 32, 32), 32);
    BN_free(s);
    EC_GROUP_free(group);
    char forged[2048], enc[100];
    mandate_b64url_encode(sig, 64, enc);
    snprintf(forged, sizeof(forged), "%.*s%s", (int)(s64 - token), token, enc);
    assert_string_not_equal(forged, token);
    expect_parse(fx, forged, MANDATE_INVALID, "canonical");
    expect_parse(fx, token, MANDATE_OK, NULL);
}

static void test_typ(void **state)
{
    fake_plugin_fx *fx = *state;
    struct tkey k;
    active_key(fx, "RS256", &k);
    char *token = sign_with(&k, k.key.kid, NULL, sample_claims());
    expect_parse(fx, token, MANDATE_INVALID, "typ is missing");
    free(token);
    token = sign_with(&k, k.key.kid, "JWT", sample_claims());
    expect_parse(fx, token, MANDATE_INVALID, "typ");
    free(token);
    token = sign_with(&k, k.key.kid, "dpop+jwt", sample_claims());
    expect_parse(fx, token, MANDATE_INVALID, "typ");
    free(token);
    static const char *const accepted[] = {"at+jwt", "AT+JWT", "application/at+jwt",
                                           "Application/AT+JWT"};
    for (size_t i = 0; i < 4; i++) {
        token = sign_with(&k, k.key.kid, accepted[i], sample_claims());
        expect_parse(fx, token, MANDATE_OK, NULL);
        free(token);
    }
}

static void test_claim_types(void **state)
{
    fake_plugin_fx *fx = *state;
    struct tkey k;
    active_key(fx, "EdDSA", &k);
    struct {
        const char *name;
        json_t *value; /* NULL: removed */
        const char *needle;
    } cases[] = {
        {"iss", NULL, "iss"},
        {"sub", json_integer(7), "sub"},
        {"exp", json_string("1900000060"), "exp"},
        {"exp", json_real(1900000060.0), "exp"},
        {"exp", NULL, "exp"},
        {"iat", NULL, "iat"},
        {"nbf", json_true(), "nbf"},
        {"jti", NULL, "jti"},
        {"client_id", json_null(), "client_id"},
        {"aud", json_integer(1), "aud"},
        {"aud", json_pack("[s,i]", "a", 1), "aud"},
        {"scope", json_pack("[s]", "a"), "scope"},
        {"act", json_string("human"), "act"},
        {"act", json_pack("{s:i}", "sub", 1), "sub"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *claims = sample_claims();
        if (cases[i].value == NULL)
            json_object_del(claims, cases[i].name);
        else
            json_object_set_new(claims, cases[i].name, cases[i].value);
        char *token = sign_with(&k, k.key.kid, "at+jwt", claims);
        expect_parse(fx, token, MANDATE_INVALID, cases[i].needle);
        free(token);
    }
    /* nbf may be left out; aud may be an array of one */
    json_t *claims = sample_claims();
    json_object_del(claims, "nbf");
    json_object_set_new(claims, "aud", json_pack("[s]", "https://api"));
    char *token = sign_with(&k, k.key.kid, "at+jwt", claims);
    mandate_grant g;
    expect_rc(MANDATE_OK, parse(fx, token, &g), &fx->err);
    assert_int_equal(g.not_before, NOW);
    assert_string_equal(g.audience, "https://api");
    free(token);
}

static void test_not_a_jwt(void **state)
{
    fake_plugin_fx *fx = *state;
    struct tkey k;
    active_key(fx, "ES256", &k);
    static const char *const others[] = {"mnd_at_0123456789abcdef", "a.b", "a.b.c.d", "",
                                         "not a token at all"};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
        expect_parse(fx, others[i], MANDATE_NEXT, NULL);
    /* a JWS-shaped token that is broken is ours to refuse */
    expect_parse(fx, "eyJhbGciOiJFUzI1NiJ9.e30.AAAA=", MANDATE_INVALID, NULL);
    expect_parse(fx, "eyJhbGciOiJub25lIn0.e30.", MANDATE_INVALID, "none");
}

/* --- key sets ------------------------------------------------------------------------ */

static void test_rotation(void **state)
{
    fake_plugin_fx *fx = *state;
    struct tkey k1, k2, *keys[2];
    keygen(fx, "ES256", &k1);
    keygen(fx, "EdDSA", &k2);
    use_key(fx, &k1);
    mandate_grant g = test_sample_grant(NOW);
    char *before = mint(fx, &g);

    /* rotate: k2 active and newest, k1 retired */
    keys[0] = &k2;
    keys[1] = &k1;
    const mandate_key_status st[] = {MANDATE_KEY_ACTIVE, MANDATE_KEY_RETIRED};
    expect_rc(MANDATE_OK, set_keys(fx->inst, keys, st, 2, &fx->err), &fx->err);
    expect_parse(fx, before, MANDATE_OK, NULL);
    char *after = mint(fx, &g);
    mandate_jws jws;
    decode(after, &jws);
    assert_string_equal(jws.kid, k2.key.kid);
    assert_int_equal(jws.alg, MANDATE_JWS_EDDSA);
    mandate_jws_clear(&jws);
    expect_parse(fx, after, MANDATE_OK, NULL);

    /* k1 leaves the set: its tokens are refused, k2's still parse */
    expect_rc(MANDATE_OK, set_keys(fx->inst, keys, st, 1, &fx->err), &fx->err);
    expect_parse(fx, before, MANDATE_INVALID, "unknown kid");
    expect_parse(fx, after, MANDATE_OK, NULL);

    /* the first active key signs, even when an older one is active too */
    const mandate_key_status both[] = {MANDATE_KEY_ACTIVE, MANDATE_KEY_ACTIVE};
    keys[0] = &k1;
    keys[1] = &k2;
    expect_rc(MANDATE_OK, set_keys(fx->inst, keys, both, 2, &fx->err), &fx->err);
    decode(mint(fx, &g), &jws);
    assert_string_equal(jws.kid, k1.key.kid);
    mandate_jws_clear(&jws);
}

static void test_set_keys_refused(void **state)
{
    fake_plugin_fx *fx = *state;
    struct tkey good, other;
    keygen(fx, "ES256", &good);
    keygen(fx, "RS256", &other);
    use_key(fx, &good);
    const mandate_key_status active[] = {MANDATE_KEY_ACTIVE, MANDATE_KEY_RETIRED};

    /* a DER that does not parse */
    struct tkey broken = other, *keys[2] = {&broken, &good};
    unsigned char junk[64];
    memset(junk, 0x30, sizeof(junk));
    broken.der = junk;
    broken.der_len = sizeof(junk);
    expect_rc(MANDATE_INVALID, set_keys(fx->inst, keys, active, 2, &fx->err), &fx->err);
    assert_non_null(strstr(fx->err.message, other.key.kid));

    /* an RSA key labelled ES256 */
    struct tkey mislabelled = other;
    mislabelled.key.alg = "ES256";
    keys[0] = &mislabelled;
    expect_rc(MANDATE_INVALID, set_keys(fx->inst, keys, active, 2, &fx->err), &fx->err);
    assert_non_null(strstr(fx->err.message, other.key.kid));
    assert_non_null(strstr(fx->err.message, "does not match"));

    /* an alg we do not know */
    mislabelled.key.alg = "HS256";
    expect_rc(MANDATE_INVALID, set_keys(fx->inst, keys, active, 2, &fx->err), &fx->err);
    assert_non_null(strstr(fx->err.message, other.key.kid));

    /* the same kid twice */
    keys[0] = &good;
    expect_rc(MANDATE_INVALID, set_keys(fx->inst, keys, active, 2, &fx->err), &fx->err);
    assert_non_null(strstr(fx->err.message, "twice"));

    /* the old set is still in place: tokens carry good's kid */
    mandate_grant g = test_sample_grant(NOW);
    mandate_jws jws;
    decode(mint(fx, &g), &jws);
    assert_string_equal(jws.kid, good.key.kid);
    mandate_jws_clear(&jws);
}

/* --- threads ------------------------------------------------------------------------ */

#define MINTERS 4
#define MINTS 150
#define SWAPS 300

struct race {
    void *inst;
    struct tkey *k1, *k2;
    atomic_bool stop;
    test_failures set_failures; /* the setter's */
};

struct minter {
    struct race *race;
    char *tokens[MINTS];
    test_failures failures;
};

static void *minter_main(void *arg)
{
    struct minter *m = arg;
    mandate_pool *pool = mandate_pool_new();
    mandate_grant g = test_sample_grant(NOW);
    for (int i = 0; i < MINTS; i++) {
        /* parsed on this thread too, while the set may change under it */
        mandate_grant back;
        m->tokens[i] = test_mint_and_parse(OPS, m->race->inst, pool, &g, &back, &m->failures);
        mandate_pool_clear(pool);
    }
    mandate_pool_free(&pool);
    return NULL;
}

static void *setter_main(void *arg)
{
    struct race *race = arg;
    mandate_error err = {0};
    for (int i = 0; i < SWAPS && !atomic_load(&race->stop); i++) {
        /* both keys always in the set, the active one alternating */
        struct tkey *keys[2] = {i % 2 == 0 ? race->k1 : race->k2,
                                i % 2 == 0 ? race->k2 : race->k1};
        const mandate_key_status st[] = {MANDATE_KEY_ACTIVE, MANDATE_KEY_RETIRED};
        if (set_keys(race->inst, keys, st, 2, &err) != MANDATE_OK)
            test_failures_note(&race->set_failures, err.message);
    }
    return NULL;
}

static void test_concurrent_mint_and_set_keys(void **state)
{
    fake_plugin_fx *fx = *state;
    struct tkey k1, k2;
    keygen(fx, "ES256", &k1);
    keygen(fx, "EdDSA", &k2);
    use_key(fx, &k1);
    fake_host_set_now(NOW);

    struct race race = {.inst = fx->inst, .k1 = &k1, .k2 = &k2};
    atomic_init(&race.stop, false);
    struct minter minters[MINTERS];
    pthread_t threads[MINTERS], setter;
    memset(minters, 0, sizeof(minters));
    assert_int_equal(pthread_create(&setter, NULL, setter_main, &race), 0);
    for (int i = 0; i < MINTERS; i++) {
        minters[i].race = &race;
        assert_int_equal(pthread_create(&threads[i], NULL, minter_main, &minters[i]), 0);
    }
    for (int i = 0; i < MINTERS; i++)
        pthread_join(threads[i], NULL);
    atomic_store(&race.stop, true);
    pthread_join(setter, NULL);
    if (race.set_failures.count != 0)
        fail_msg("set_keys failed %d times: %s", race.set_failures.count,
                 race.set_failures.last);

    /* every token parses with one of the two keys */
    const mandate_key_status st[] = {MANDATE_KEY_ACTIVE, MANDATE_KEY_RETIRED};
    struct tkey *keys[2] = {&k1, &k2};
    expect_rc(MANDATE_OK, set_keys(fx->inst, keys, st, 2, &fx->err), &fx->err);
    int by_k1 = 0, by_k2 = 0;
    for (int i = 0; i < MINTERS; i++) {
        if (minters[i].failures.count != 0)
            fail_msg("thread %d: %d failures, last: %s", i, minters[i].failures.count,
                     minters[i].failures.last);
        for (int j = 0; j < MINTS; j++) {
            mandate_jws jws;
            assert_non_null(minters[i].tokens[j]);
            decode(minters[i].tokens[j], &jws);
            if (strcmp(jws.kid, k1.key.kid) == 0)
                by_k1++;
            else if (strcmp(jws.kid, k2.key.kid) == 0)
                by_k2++;
            mandate_jws_clear(&jws);
            expect_parse(fx, minters[i].tokens[j], MANDATE_OK, NULL);
            free(minters[i].tokens[j]);
        }
    }
    assert_int_equal(by_k1 + by_k2, MINTERS * MINTS);
    print_message("tokens signed by k1: %d, by k2: %d\n", by_k1, by_k2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor),
        cmocka_unit_test(test_conf),
        TEST_FX_CASE(test_keygen, "ES256"),
        TEST_FX_CASE(test_keygen, "RS256"),
        TEST_FX_CASE(test_keygen, "EdDSA"),
        TEST_FX(test_keygen_default_and_refused),
        TEST_FX_CASE(test_round_trip, "ES256"),
        TEST_FX_CASE(test_round_trip, "RS256"),
        TEST_FX_CASE(test_round_trip, "EdDSA"),
        TEST_FX(test_audience_forms),
        TEST_FX(test_act_idp_tenant),
        TEST_FX(test_cnf_jkt),
        TEST_FX(test_act_chain),
        TEST_FX(test_act_chain_old_host),
        TEST_FX(test_mint_refusals),
        TEST_FX(test_no_keys_tempfail),
        TEST_FX(test_expired),
        TEST_FX(test_not_yet_valid),
        TEST_FX(test_unknown_kid),
        TEST_FX(test_alg_of_the_key_only),
        TEST_FX(test_tampered),
        TEST_FX(test_high_s_refused),
        TEST_FX(test_typ),
        TEST_FX(test_claim_types),
        TEST_FX(test_not_a_jwt),
        TEST_FX(test_rotation),
        TEST_FX(test_set_keys_refused),
        TEST_FX(test_concurrent_mint_and_set_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
