/* lib/grant-claims.c: a grant to claims and back (round trips, with and
 * without the earlier actors), the bounds of the act chain, claims that are
 * missing or of the wrong type (graded by the reader), and the copy of a
 * grant's strings. Linked with lib/ alone: a host of the test's own (a pool
 * that is a list of mallocs) stands in for the core's. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>

#include "grant-claims.h"

/* --- a host with a pool of its own ------------------------------------------------ */

struct mandate_pool {
    void **blocks;
    size_t n;
};

static void *pool_alloc(mandate_pool *pool, size_t size)
{
    void *p = calloc(1, size ? size : 1);
    assert_non_null(p);
    pool->blocks = realloc(pool->blocks, (pool->n + 1) * sizeof(pool->blocks[0]));
    assert_non_null(pool->blocks);
    pool->blocks[pool->n++] = p;
    return p;
}

static char *pool_memdup(mandate_pool *pool, const void *p, size_t len)
{
    char *copy = pool_alloc(pool, len + 1);
    memcpy(copy, p, len);
    return copy;
}

static char *pool_strdup(mandate_pool *pool, const char *s)
{
    return s != NULL ? pool_memdup(pool, s, strlen(s)) : NULL;
}

static void pool_clear(mandate_pool *pool)
{
    for (size_t i = 0; i < pool->n; i++)
        free(pool->blocks[i]);
    free(pool->blocks);
    memset(pool, 0, sizeof(*pool));
}

static mandate_host host_of_minor(uint16_t minor)
{
    return (mandate_host){.abi_major = MANDATE_PLUGIN_ABI_MAJOR,
                          .abi_minor = minor,
                          .pool_alloc = pool_alloc,
                          .pool_strdup = pool_strdup,
                          .pool_memdup = pool_memdup};
}

static const mandate_grant_claims_reader token_reader = {"jwt: claim", MANDATE_INVALID};
static const mandate_grant_claims_reader record_reader = {"opaque: stored grant's",
                                                          MANDATE_ERROR};

static mandate_grant full_grant(void)
{
    return (mandate_grant){.issuer = "https://broker.example",
                           .subject = "advisor-1234",
                           .client_id = "planner-2",
                           .actor = "agent-c",
                           .tenant = "bank-a",
                           .scope = "mcp:call mcp:read",
                           .audience = "https://mcp.example/a https://mcp.example/b",
                           .idp = "corp-saml",
                           .jti = "jti-1",
                           .issued_at = 1900000000,
                           .not_before = 1900000005,
                           .expires_at = 1900000900,
                           .prior_actors = "agent-b agent-a"};
}

static mandate_grant bare_grant(void)
{
    return (mandate_grant){.issuer = "https://broker.example",
                           .subject = "agent-x",
                           .client_id = "agent-x",
                           .jti = "jti-2",
                           .issued_at = 1900000000,
                           .expires_at = 1900000600};
}

/* The grant's strings, in a fixed order, to compare two grants in a loop. */
#define STRINGS 10
static void strings_of(const mandate_grant *g, const char *out[STRINGS])
{
    const char *s[STRINGS] = {g->issuer, g->subject,  g->client_id, g->actor, g->tenant,
                              g->scope,  g->audience, g->idp,       g->jti,   g->prior_actors};
    memcpy(out, s, sizeof(s));
}

static void assert_grants_equal(const mandate_grant *want, const mandate_grant *got)
{
    const char *w[STRINGS], *g[STRINGS];
    strings_of(want, w);
    strings_of(got, g);
    for (size_t i = 0; i < STRINGS; i++)
        if (w[i] == NULL ? g[i] != NULL : g[i] == NULL || strcmp(w[i], g[i]) != 0)
            fail_msg("string %zu: want %s, got %s", i, w[i] ? w[i] : "NULL",
                     g[i] ? g[i] : "NULL");
    assert_int_equal(want->issued_at, got->issued_at);
    assert_int_equal(want->not_before != 0 ? want->not_before : want->issued_at,
                     got->not_before);
    assert_int_equal(want->expires_at, got->expires_at);
}

/* The claims of g as compact JSON text (malloc'd), for exact comparisons. */
static char *claims_text(const mandate_grant *g, bool with_prior)
{
    json_t *obj = json_object();
    mandate_error err = {0};
    assert_int_equal(mandate_grant_claims_put(obj, g, with_prior, "test", &err), MANDATE_OK);
    char *text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    return text;
}

/* mandate_grant_claims_get with a pool of its own, cleared each call: the
 * strings of *got stay valid until the next call or get_done(). */
static mandate_pool get_pool;

static mandate_rc get(uint16_t minor, const json_t *claims,
                      const mandate_grant_claims_reader *r, mandate_grant *got,
                      bool *nbf_given_r, mandate_error *err)
{
    mandate_host host = host_of_minor(minor);
    pool_clear(&get_pool);
    return mandate_grant_claims_get(&host, &get_pool, claims, r, got, nbf_given_r, err);
}

static void get_done(void)
{
    pool_clear(&get_pool);
}

/* --- grant -> claims -> grant -------------------------------------------------------- */

static void test_round_trip(void **state)
{
    (void)state;
    const mandate_grant grants[] = {full_grant(), bare_grant()};
    for (size_t i = 0; i < sizeof(grants) / sizeof(grants[0]); i++) {
        json_t *obj = json_object();
        mandate_error err = {0};
        assert_int_equal(mandate_grant_claims_put(obj, &grants[i], true, "test", &err),
                         MANDATE_OK);
        mandate_grant got = {0};
        bool nbf_given = false;
        assert_int_equal(get(4, obj, &token_reader, &got, &nbf_given, &err), MANDATE_OK);
        assert_grants_equal(&grants[i], &got);
        /* nbf is always written: iat when the grant has none */
        assert_true(nbf_given);
        json_decref(obj);
        get_done();
    }
}

static void test_claims_written(void **state)
{
    (void)state;
    /* the order and shape of a JWT's claims: RFC 9068, then ours and act */
    const mandate_grant full = full_grant();
    char *text = claims_text(&full, true);
    assert_string_equal(
        text,
        "{\"iss\":\"https://broker.example\",\"sub\":\"advisor-1234\","
        "\"aud\":[\"https://mcp.example/a\",\"https://mcp.example/b\"],"
        "\"exp\":1900000900,\"iat\":1900000000,\"nbf\":1900000005,\"jti\":\"jti-1\","
        "\"client_id\":\"planner-2\",\"scope\":\"mcp:call mcp:read\",\"tenant\":\"bank-a\","
        "\"act\":{\"sub\":\"agent-c\",\"act\":{\"sub\":\"agent-b\",\"act\":{\"sub\":"
        "\"agent-a\"}}},\"idp\":\"corp-saml\"}");
    free(text);
    /* without the earlier actors (a host of before ABI 1.4): act is the
     * actor alone, whatever lies in prior_actors */
    text = claims_text(&full, false);
    assert_non_null(strstr(text, "\"act\":{\"sub\":\"agent-c\"},"));
    free(text);

    /* left out: no audience, no scope, an empty tenant, idp or actor */
    mandate_grant g = bare_grant();
    g.tenant = "";
    g.idp = "";
    g.actor = "";
    g.audience = "   ";
    text = claims_text(&g, true);
    assert_string_equal(text, "{\"iss\":\"https://broker.example\",\"sub\":\"agent-x\","
                              "\"exp\":1900000600,\"iat\":1900000000,\"nbf\":1900000000,"
                              "\"jti\":\"jti-2\",\"client_id\":\"agent-x\"}");
    free(text);
    /* one audience is a string, spaces around it or not */
    g.audience = " https://one ";
    text = claims_text(&g, true);
    assert_non_null(strstr(text, "\"aud\":\"https://one\""));
    free(text);
}

static void test_put_refusals(void **state)
{
    (void)state;
    struct {
        mandate_grant g;
        const char *needle;
    } cases[] = {
        {bare_grant(), "issuer"},    {bare_grant(), "subject"}, {bare_grant(), "jti"},
        {bare_grant(), "client_id"}, {bare_grant(), "scope"},   {bare_grant(), "audience"},
        {bare_grant(), "tenant"},    {bare_grant(), "idp"},     {bare_grant(), "act"},
    };
    cases[0].g.issuer = NULL;
    cases[1].g.subject = "bad \xff";
    cases[2].g.jti = NULL;
    cases[3].g.client_id = "bad \xc3";
    cases[4].g.scope = "a \xff";
    cases[5].g.audience = "https://a https://\xff";
    cases[6].g.tenant = "\xff";
    cases[7].g.idp = "\xff";
    cases[8].g.actor = "agent \xff";
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *obj = json_object();
        mandate_error err = {0};
        assert_int_equal(mandate_grant_claims_put(obj, &cases[i].g, true, "who", &err),
                         MANDATE_INVALID);
        if (strncmp(err.message, "who: ", 5) != 0 ||
            strstr(err.message, cases[i].needle) == NULL)
            fail_msg("case %zu: \"%s\" does not name %s", i, err.message, cases[i].needle);
        json_decref(obj);
    }
}

static void test_act_bounds(void **state)
{
    (void)state;
    /* MANDATE_GRANT_MAX_ACTORS in all, the actor and those before it */
    char prior[MANDATE_GRANT_MAX_ACTORS * 4] = "";
    for (int i = 1; i < MANDATE_GRANT_MAX_ACTORS; i++)
        snprintf(prior + strlen(prior), sizeof(prior) - strlen(prior), "%sa%d",
                 i > 1 ? " " : "", i);
    mandate_grant g = full_grant();
    g.prior_actors = prior;
    json_t *obj = json_object();
    mandate_error err = {0};
    assert_int_equal(mandate_grant_claims_put(obj, &g, true, "test", &err), MANDATE_OK);
    mandate_grant got = {0};
    assert_int_equal(get(4, obj, &token_reader, &got, NULL, &err), MANDATE_OK);
    assert_string_equal(got.prior_actors, prior);
    json_decref(obj);
    get_done();

    /* one more is refused, naming the act */
    snprintf(prior + strlen(prior), sizeof(prior) - strlen(prior), " a%d",
             MANDATE_GRANT_MAX_ACTORS);
    obj = json_object();
    assert_int_equal(mandate_grant_claims_put(obj, &g, true, "test", &err), MANDATE_INVALID);
    assert_non_null(strstr(err.message, "test: grant's act: more actors"));
    json_decref(obj);
}

/* --- claims -> grant: what is refused, and how ------------------------------------------- */

static json_t *sample_claims(void)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:I,s:I}", "iss", "https://broker.example", "sub",
                     "agent-x", "jti", "j", "client_id", "agent-x", "iat",
                     (json_int_t)1900000000, "exp", (json_int_t)1900000600);
}

static void test_get_refusals(void **state)
{
    (void)state;
    struct {
        const char *name;
        json_t *value; /* NULL: removed */
        const char *message;
    } cases[] = {
        {"iss", NULL, "iss is missing"},
        {"sub", json_integer(7), "sub is not a string"},
        {"jti", NULL, "jti is missing"},
        {"client_id", json_null(), "client_id is not a string"},
        {"exp", json_string("soon"), "exp is not an integer"},
        {"exp", json_real(1900000600.0), "exp is not an integer"},
        {"iat", NULL, "iat is missing"},
        {"nbf", json_true(), "nbf is not an integer"},
        {"scope", json_pack("[s]", "a"), "scope is not a string"},
        {"tenant", json_integer(1), "tenant is not a string"},
        {"idp", json_false(), "idp is not a string"},
        {"aud", json_integer(1), "aud is neither a string nor an array"},
        {"aud", json_pack("[s,i]", "a", 1), "aud holds something else than strings"},
        {"act", json_string("human"), "act: "},
        {"act", json_pack("{s:i}", "sub", 1), "act: "},
        {"act", json_pack("{s:s}", "sub", "a b"), "act: "},
        {"act", json_pack("{s:s,s:s}", "sub", "b", "act", "x"), "act: "},
    };
    const mandate_grant_claims_reader *readers[] = {&token_reader, &record_reader};
    for (size_t r = 0; r < 2; r++)
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            json_t *claims = sample_claims();
            if (cases[i].value == NULL)
                json_object_del(claims, cases[i].name);
            else
                json_object_set(claims, cases[i].name, cases[i].value);
            mandate_grant got = {0};
            mandate_error err = {0};
            assert_int_equal(get(4, claims, readers[r], &got, NULL, &err), readers[r]->bad);
            /* "<what> <claim> <problem>": the reader's words, then ours */
            size_t n = strlen(readers[r]->what);
            if (strncmp(err.message, readers[r]->what, n) != 0 || err.message[n] != ' ' ||
                strstr(err.message, cases[i].message) == NULL)
                fail_msg("%s: \"%s\"", cases[i].name, err.message);
            json_decref(claims);
            get_done();
        }
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        json_decref(cases[i].value);
}

static void test_get_optional(void **state)
{
    (void)state;
    mandate_error err = {0};
    /* absent: NULL strings, nbf from iat, and nbf_given says so */
    json_t *claims = sample_claims();
    mandate_grant got = {0};
    bool nbf_given = true;
    assert_int_equal(get(4, claims, &token_reader, &got, &nbf_given, &err), MANDATE_OK);
    assert_false(nbf_given);
    assert_int_equal(got.not_before, 1900000000);
    assert_null(got.scope);
    assert_null(got.tenant);
    assert_null(got.idp);
    assert_null(got.audience);
    assert_null(got.actor);
    assert_null(got.prior_actors);
    /* aud: an empty array is none; an array is joined with spaces */
    json_object_set_new(claims, "aud", json_array());
    assert_int_equal(get(4, claims, &token_reader, &got, NULL, &err), MANDATE_OK);
    assert_null(got.audience);
    json_object_set_new(claims, "aud", json_pack("[s,s]", "https://a", "urn:b"));
    assert_int_equal(get(4, claims, &token_reader, &got, NULL, &err), MANDATE_OK);
    assert_string_equal(got.audience, "https://a urn:b");
    json_decref(claims);
    get_done();
}

static void test_get_older_host(void **state)
{
    (void)state;
    /* a host of ABI 1.3 has no prior_actors: never written, and a nested
     * act refused rather than shortened; an act of one actor is fine */
    mandate_error err = {0};
    json_t *claims = sample_claims();
    json_object_set_new(claims, "act", json_pack("{s:s}", "sub", "agent-c"));
    mandate_grant got;
    memset(&got, 0x5a, sizeof(got));
    assert_int_equal(get(3, claims, &record_reader, &got, NULL, &err), MANDATE_OK);
    assert_string_equal(got.actor, "agent-c");
    const unsigned char *tail = (const unsigned char *)&got.prior_actors;
    for (size_t i = 0; i < sizeof(got.prior_actors); i++)
        assert_int_equal(tail[i], 0x5a);

    json_object_set_new(claims, "act",
                        json_pack("{s:s,s:{s:s}}", "sub", "agent-c", "act", "sub", "agent-b"));
    assert_int_equal(get(3, claims, &record_reader, &got, NULL, &err), MANDATE_ERROR);
    assert_non_null(strstr(err.message, "opaque: stored grant's act is nested"));
    assert_non_null(strstr(err.message, "ABI 1.3"));
    json_decref(claims);
    get_done();
}

/* cnf (ABI 1.5): written by mandate_grant_cnf_put, read back by a host of
 * 1.5, refused by an older one (it would take the token for a bearer one),
 * malformed ones refused, copied with the grant's strings. */
static void test_cnf(void **state)
{
    (void)state;
    static const char jkt[] = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
    mandate_grant g = bare_grant();
    g.cnf_jkt = jkt;
    json_t *obj = json_object();
    mandate_error err = {0};
    assert_int_equal(mandate_grant_claims_put(obj, &g, true, "test", &err), MANDATE_OK);
    assert_int_equal(mandate_grant_cnf_put(obj, &g, "test", &err), MANDATE_OK);
    assert_string_equal(json_string_value(json_object_get(json_object_get(obj, "cnf"), "jkt")),
                        jkt);
    mandate_grant got = {0};
    assert_int_equal(get(5, obj, &token_reader, &got, NULL, &err), MANDATE_OK);
    assert_string_equal(got.cnf_jkt, jkt);
    assert_null(got.cnf_x5t_s256);
    assert_int_equal(get(4, obj, &token_reader, &got, NULL, &err), MANDATE_INVALID);
    assert_non_null(strstr(err.message, "cnf binds the token"));

    /* malformed */
    json_object_set_new(obj, "cnf", json_string(jkt));
    assert_int_equal(get(5, obj, &token_reader, &got, NULL, &err), MANDATE_INVALID);
    json_object_set_new(obj, "cnf", json_pack("{s:s}", "jkt", "short"));
    assert_int_equal(get(5, obj, &token_reader, &got, NULL, &err), MANDATE_INVALID);
    json_object_set_new(obj, "cnf", json_object());
    assert_int_equal(get(5, obj, &token_reader, &got, NULL, &err), MANDATE_INVALID);
    json_decref(obj);

    /* a bearer grant: no cnf */
    obj = json_object();
    g.cnf_jkt = NULL;
    assert_int_equal(mandate_grant_cnf_put(obj, &g, "test", &err), MANDATE_OK);
    assert_null(json_object_get(obj, "cnf"));
    json_decref(obj);

    /* copied with the strings */
    g.cnf_jkt = jkt;
    size_t size = mandate_grant_strings_size(&g);
    char *buf = malloc(size);
    mandate_grant_strings_copy(&g, buf);
    assert_true(g.cnf_jkt >= buf && g.cnf_jkt < buf + size);
    assert_string_equal(g.cnf_jkt, jkt);
    free(buf);
    get_done();
}

/* The string member of a grant that claims hold: read back as want by a
 * host of minor, left NULL by one a minor older (it has no place for it). */
static void assert_read_from_minor(const json_t *claims, uint16_t minor, size_t member,
                                   const char *want)
{
    mandate_error err = {0};
    mandate_grant got = {0};
    assert_int_equal(get(minor, claims, &token_reader, &got, NULL, &err), MANDATE_OK);
    assert_string_equal(*(const char **)((char *)&got + member), want);
    memset(&got, 0, sizeof(got));
    assert_int_equal(get(minor - 1, claims, &token_reader, &got, NULL, &err), MANDATE_OK);
    assert_null(*(const char **)((char *)&got + member));
}

/* may_act (ABI 1.6, RFC 8693 §4.4): one actor an object, several an array
 * of them; read back by a host of 1.6, left by an older one (the token then
 * admits fewer actors); malformed ones refused; copied with the strings. */
static void test_may_act(void **state)
{
    (void)state;
    mandate_grant g = bare_grant();
    mandate_error err = {0};
    json_t *obj = json_object();
    g.may_act = "agent-b";
    assert_int_equal(mandate_grant_may_act_put(obj, &g, "test", &err), MANDATE_OK);
    assert_true(json_is_object(json_object_get(obj, "may_act")));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(obj, "may_act"), "sub")), "agent-b");
    g.may_act = "agent-b agent-c";
    assert_int_equal(mandate_grant_claims_put(obj, &g, true, "test", &err), MANDATE_OK);
    assert_int_equal(mandate_grant_may_act_put(obj, &g, "test", &err), MANDATE_OK);
    assert_int_equal(json_array_size(json_object_get(obj, "may_act")), 2);
    assert_read_from_minor(obj, 6, offsetof(mandate_grant, may_act), "agent-b agent-c");
    mandate_grant got = {0};

    /* malformed */
    static const char *const bad[] = {"[]", "\"agent-b\"", "{}", "{\"sub\": 7}",
                                      "[{\"sub\": \"a b\"}]", "{\"sub\": \"\"}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_object_set_new(obj, "may_act", json_loads(bad[i], JSON_DECODE_ANY, NULL));
        if (get(6, obj, &token_reader, &got, NULL, &err) != MANDATE_INVALID)
            fail_msg("may_act %s was taken", bad[i]);
    }
    json_decref(obj);

    /* too many to name */
    obj = json_object();
    g.may_act = "a1 a2 a3 a4 a5 a6 a7 a8 a9 a10 a11 a12 a13 a14 a15 a16 a17";
    assert_int_equal(mandate_grant_may_act_put(obj, &g, "test", &err), MANDATE_INVALID);
    g.may_act = NULL;
    json_object_clear(obj);
    assert_int_equal(mandate_grant_may_act_put(obj, &g, "test", &err), MANDATE_OK);
    assert_null(json_object_get(obj, "may_act"));
    json_decref(obj);

    /* copied with the strings */
    g.may_act = "agent-b";
    size_t size = mandate_grant_strings_size(&g);
    char *buf = malloc(size);
    mandate_grant_strings_copy(&g, buf);
    assert_true(g.may_act >= buf && g.may_act < buf + size);
    free(buf);
    get_done();
}

/* --- the grant's strings ------------------------------------------------------------------ */

static void test_strings_copy(void **state)
{
    (void)state;
    const mandate_grant want = full_grant();
    mandate_grant g = want;
    size_t size = mandate_grant_strings_size(&g);
    size_t expect = 0;
    const char *all[] = {want.issuer, want.subject,     want.client_id, want.actor,
                         want.tenant, want.scope,       want.audience,  want.idp,
                         want.jti,    want.prior_actors};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        expect += strlen(all[i]) + 1;
    assert_int_equal(size, expect);
    char *buf = malloc(size);
    assert_non_null(buf);
    mandate_grant_strings_copy(&g, buf);
    assert_grants_equal(&want, &g);
    /* every string now lies in buf, none in the original */
    const char *copied[] = {g.issuer, g.subject,  g.client_id, g.actor, g.tenant,
                            g.scope,  g.audience, g.idp,       g.jti,   g.prior_actors};
    for (size_t i = 0; i < sizeof(copied) / sizeof(copied[0]); i++)
        assert_true(copied[i] >= buf && copied[i] < buf + size);
    free(buf);

    /* NULL members stay NULL and take nothing */
    g = bare_grant();
    size = mandate_grant_strings_size(&g);
    assert_int_equal(size, strlen(g.issuer) + strlen(g.subject) + strlen(g.client_id) +
                               strlen(g.jti) + 4);
    buf = malloc(size);
    mandate_grant_strings_copy(&g, buf);
    assert_null(g.actor);
    assert_null(g.prior_actors);
    assert_string_equal(g.jti, "jti-2");
    free(buf);
    mandate_grant none = {0};
    assert_int_equal(mandate_grant_strings_size(&none), 0);
    mandate_grant_strings_copy(&none, NULL);
    assert_null(none.issuer);
}

/* origin_client_id (ABI 1.9): written by put_all for a host of 1.9 only,
 * read back by one, left by an older one; not a string refused; copied
 * with the grant's strings. And put_all writes what each minor has. */
static void test_origin_and_put_all(void **state)
{
    (void)state;
    mandate_grant g = bare_grant();
    mandate_error err = {0};
    g.origin_client_id = "app-x";
    g.may_act = "agent-b";
    g.cnf_jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
    json_t *obj = json_object();
    assert_int_equal(mandate_grant_claims_put_all(obj, &g, 9, "test", &err), MANDATE_OK);
    assert_string_equal(json_string_value(json_object_get(obj, "origin_client_id")), "app-x");
    assert_non_null(json_object_get(obj, "may_act"));
    assert_non_null(json_object_get(obj, "cnf"));
    assert_read_from_minor(obj, 9, offsetof(mandate_grant, origin_client_id), "app-x");
    mandate_grant got = {0};
    json_object_set_new(obj, "origin_client_id", json_integer(7));
    assert_int_equal(get(9, obj, &token_reader, &got, NULL, &err), MANDATE_INVALID);
    assert_non_null(strstr(err.message, "origin_client_id is not a string"));
    json_decref(obj);

    /* each minor, what its grant has and no more */
    static const struct {
        uint16_t minor;
        bool cnf, may_act, origin;
    } minors[] = {{4, false, false, false},
                  {5, true, false, false},
                  {6, true, true, false},
                  {9, true, true, true}};
    for (size_t i = 0; i < sizeof(minors) / sizeof(minors[0]); i++) {
        obj = json_object();
        assert_int_equal(mandate_grant_claims_put_all(obj, &g, minors[i].minor, "test", &err),
                         MANDATE_OK);
        assert_int_equal(json_object_get(obj, "cnf") != NULL, minors[i].cnf);
        assert_int_equal(json_object_get(obj, "may_act") != NULL, minors[i].may_act);
        assert_int_equal(json_object_get(obj, "origin_client_id") != NULL, minors[i].origin);
        json_decref(obj);
    }

    /* copied with the strings */
    g.cnf_jkt = NULL;
    size_t size = mandate_grant_strings_size(&g);
    char *buf = malloc(size);
    assert_non_null(buf);
    mandate_grant_strings_copy(&g, buf);
    assert_true(g.origin_client_id >= buf && g.origin_client_id < buf + size);
    assert_string_equal(g.origin_client_id, "app-x");
    free(buf);
    get_done();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),     cmocka_unit_test(test_claims_written),
        cmocka_unit_test(test_put_refusals),   cmocka_unit_test(test_act_bounds),
        cmocka_unit_test(test_get_refusals),   cmocka_unit_test(test_get_optional),
        cmocka_unit_test(test_get_older_host), cmocka_unit_test(test_strings_copy),
        cmocka_unit_test(test_cnf),
        cmocka_unit_test(test_may_act),
        cmocka_unit_test(test_origin_and_put_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
