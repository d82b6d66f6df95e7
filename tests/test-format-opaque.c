/* The opaque format plugin, linked in directly and driven through its
 * descriptor with the fake host and its in-memory token record store: mint
 * and parse, the shape of the tokens, what the store holds (a hash, never
 * the token), tokens of another format, malformed, unknown and expired
 * tokens, store failures, config checks, an ABI 1.0 host, and mint from
 * several threads at once. */
#include "config.h"

#include <pthread.h>
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
#include <openssl/evp.h>

#include <mandate/format.h>
#include <mandate/store.h>

#include "fake-host.h"
#include "jose.h"
#include "pool-private.h"
#include "test-helpers.h"

extern const mandate_plugin mandate_plugin_opaque;

#define P (&mandate_plugin_opaque)
#define OPS ((const mandate_format_ops *)mandate_plugin_opaque.ops)

#define NOW ((int64_t)1900000000)
#define PREFIX "mdo_"
#define BODY_LEN 43 /* base64url of 32 bytes */
#define TOKEN_LEN (sizeof(PREFIX) - 1 + BODY_LEN)
#define B64URL "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

/* --- helpers ------------------------------------------------------------------ */

static void expect_rc(mandate_rc want, mandate_rc rc, const mandate_error *err)
{
    if (rc != want)
        fail_msg("rc %d, want %d: %s", (int)rc, (int)want, err->message);
}

/* An instance with the defaults and then key=value pairs (NULL-terminated),
 * instantiated with host; *rc_r gets what instantiate said. NULL when it
 * refused (the instance is freed then). */
static void *inst_try(const mandate_host *host, mandate_rc *rc_r, mandate_error *err, ...)
{
    va_list ap;
    void *inst = fake_instance_new(P);
    assert_non_null(inst);
    va_start(ap, err);
    test_conf_set_pairs(fake_conf_set, P, inst, ap);
    va_end(ap);
    memset(err, 0, sizeof(*err));
    *rc_r = P->instantiate(inst, host, err);
    if (*rc_r != MANDATE_OK) {
        fake_conf_free(P, inst);
        free(inst);
        return NULL;
    }
    return inst;
}

static void *inst_open_with(const char *key, const char *value)
{
    mandate_error err;
    mandate_rc rc;
    void *inst = inst_try(fake_host_get(), &rc, &err, key, value, NULL);
    expect_rc(MANDATE_OK, rc, &err);
    return inst;
}

static int setup(void **state)
{
    fake_plugin_fx *fx = fake_plugin_fx_new(NOW);
    fake_host_token_reset();
    fx->inst = inst_open_with(NULL, NULL);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fake_plugin_fx_free(P, *state);
    fake_host_token_reset();
    return 0;
}

/* The sample grant with every optional member set. */
static mandate_grant full_grant(void)
{
    mandate_grant g = test_sample_grant(NOW);
    g.actor = "orchestrator-1";
    g.prior_actors = "planner-2 advisor-app";
    g.tenant = "acme";
    g.audience = "https://api.example.com https://git.example.com";
    g.idp = "okta-main";
    g.not_before = NOW + 5;
    return g;
}

/* The sample grant without scope or audience, its own jti, for a minute. */
static mandate_grant bare_grant(void)
{
    mandate_grant g = test_sample_grant(NOW);
    g.scope = g.audience = NULL;
    g.jti = "bare-jti";
    g.expires_at = NOW + 60;
    return g;
}

static char *mint_in(void *inst, mandate_pool *pool, const mandate_grant *g)
{
    mandate_error err = {0};
    char *token = NULL;
    expect_rc(MANDATE_OK, OPS->mint(inst, pool, g, &token, &err), &err);
    assert_non_null(token);
    return token;
}

static char *mint(fake_plugin_fx *fx, const mandate_grant *g)
{
    return mint_in(fx->inst, fx->pool, g);
}

static mandate_rc parse_n(fake_plugin_fx *fx, const char *token, size_t len, mandate_grant *g)
{
    memset(&fx->err, 0, sizeof(fx->err));
    return OPS->parse(fx->inst, fx->pool, token, len, g, &fx->err);
}

static mandate_rc parse(fake_plugin_fx *fx, const char *token, mandate_grant *g)
{
    return parse_n(fx, token, strlen(token), g);
}

/* Parses and expects want; the message says needle (unless NULL) and never
 * holds the token's random part; a refused parse leaves the grant empty. */
static void expect_parse_n(fake_plugin_fx *fx, const char *token, size_t len, mandate_rc want,
                           const char *needle)
{
    mandate_grant g;
    memset(&g, 0x5a, sizeof(g));
    mandate_rc rc = parse_n(fx, token, len, &g);
    expect_rc(want, rc, &fx->err);
    if (needle != NULL && strstr(fx->err.message, needle) == NULL)
        fail_msg("\"%s\" does not say \"%s\"", fx->err.message, needle);
    if (len > strlen(PREFIX) + 8 && memchr(token, '\0', len) == NULL) {
        char body[128];
        snprintf(body, sizeof(body), "%.*s", (int)(len - strlen(PREFIX)),
                 token + strlen(PREFIX));
        assert_null(strstr(fx->err.message, body));
        assert_null(strstr(fake_host_last_log(), body));
    }
    if (rc != MANDATE_OK) {
        assert_null(g.subject);
        assert_null(g.jti);
        assert_int_equal(g.expires_at, 0);
    }
}

static void expect_parse(fake_plugin_fx *fx, const char *token, mandate_rc want,
                         const char *needle)
{
    expect_parse_n(fx, token, strlen(token), want, needle);
}

static bool all_b64url(const char *s, size_t len)
{
    return strspn(s, B64URL) == len;
}

static void sha256(const char *s, unsigned char out[32])
{
    unsigned int len = 0;
    assert_int_equal(EVP_Digest(s, strlen(s), out, &len, EVP_sha256(), NULL), 1);
    assert_int_equal(len, 32);
}

/* Does the haystack hold the needle anywhere (NULL haystack: no)? */
static bool holds(const void *hay, size_t hay_len, const char *needle)
{
    return hay != NULL && memmem(hay, hay_len, needle, strlen(needle)) != NULL;
}

static bool str_holds(const char *hay, const char *needle)
{
    return hay != NULL && holds(hay, strlen(hay), needle);
}

/* --- descriptor and config ---------------------------------------------------- */

static void test_descriptor(void **state)
{
    test_assert_plugin_descriptor(P, MANDATE_FORMAT, "opaque");
    assert_int_equal(P->abi_minor, MANDATE_PLUGIN_ABI_MINOR);
    assert_non_null(P->conf);
    assert_true(P->inst_size > 0);
    assert_non_null(OPS->mint);
    assert_non_null(OPS->parse);
    assert_null(OPS->keygen);
    assert_null(OPS->set_keys);
    bool bytes = false, prefix = false;
    for (const mandate_conf_def *d = P->conf; d->key != NULL; d++) {
        if (strcmp(d->key, "token_bytes") == 0) {
            bytes = true;
            assert_int_equal(d->type, MANDATE_CONF_INT);
            assert_string_equal(d->default_value, "32");
            assert_int_equal(d->min, 32);
            assert_int_equal(d->max, 64);
        } else if (strcmp(d->key, "prefix") == 0) {
            prefix = true;
            assert_int_equal(d->type, MANDATE_CONF_STRING);
            assert_string_equal(d->default_value, PREFIX);
        } else {
            fail_msg("unexpected key %s", d->key);
        }
    }
    assert_true(bytes && prefix);
}

static void expect_refused(const char *key, const char *value, const char *needle)
{
    mandate_error err;
    mandate_rc rc;
    void *inst = inst_try(fake_host_get(), &rc, &err, key, value, NULL);
    assert_null(inst);
    expect_rc(MANDATE_INVALID, rc, &err);
    if (strstr(err.message, needle) == NULL)
        fail_msg("\"%s\" does not say \"%s\"", err.message, needle);
}

static void test_conf(void **state)
{
    expect_refused("prefix", "", "1 to 16");
    expect_refused("prefix", "abcdefghijklmnopq", "1 to 16"); /* 17 */
    expect_refused("prefix", "mdo.", "'.'");
    expect_refused("prefix", "a.b", "'.'");
    expect_refused("prefix", "md o_", "A-Z");
    expect_refused("prefix", "mdo/", "A-Z");
    expect_refused("prefix", "mdo+", "A-Z");
    expect_refused("prefix", "mdo=", "A-Z");
    expect_refused("prefix", "m\xc3\xa9o_", "A-Z");

    /* the config layer checks the range of token_bytes ... */
    void *inst = fake_instance_new(P);
    assert_non_null(inst);
    assert_int_equal(fake_conf_set(P, inst, "token_bytes", "31"), -1);
    assert_int_equal(fake_conf_set(P, inst, "token_bytes", "65"), -1);
    assert_int_equal(fake_conf_set(P, inst, "nonsense", "1"), -1);
    /* ... and instantiate does again, for a value that slipped past */
    const mandate_conf_def *d = P->conf;
    while (strcmp(d->key, "token_bytes") != 0)
        d++;
    int64_t sixteen = 16;
    memcpy((char *)inst + d->offset, &sixteen, sizeof(sixteen));
    mandate_error err = {0};
    expect_rc(MANDATE_INVALID, P->instantiate(inst, fake_host_get(), &err), &err);
    assert_non_null(strstr(err.message, "token_bytes"));
    fake_conf_free(P, inst);
    free(inst);

    /* good prefixes */
    const char *good[] = {"x", "Ab-_9", "abcdefghijklmnop", "at_"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        inst = inst_open_with("prefix", good[i]);
        fake_instance_free(P, &inst);
    }
    inst = inst_open_with("token_bytes", "64");
    fake_instance_free(P, &inst);
}

static void test_old_host_refused(void **state)
{
    mandate_host old = *fake_host_get();
    mandate_error err;
    mandate_rc rc;

    old.abi_minor = 0;
    assert_null(inst_try(&old, &rc, &err, NULL));
    expect_rc(MANDATE_ERROR, rc, &err);
    assert_non_null(strstr(err.message, "1.1"));

    old = *fake_host_get();
    old.token_record_put = NULL;
    assert_null(inst_try(&old, &rc, &err, NULL));
    expect_rc(MANDATE_ERROR, rc, &err);
    assert_non_null(strstr(err.message, "token record"));

    old = *fake_host_get();
    old.token_record_get = NULL;
    assert_null(inst_try(&old, &rc, &err, NULL));
    expect_rc(MANDATE_ERROR, rc, &err);
}

/* --- mint and parse ----------------------------------------------------------- */

static void test_round_trip(void **state)
{
    fake_plugin_fx *fx = *state;
    const mandate_grant want = full_grant();
    char *token = mint(fx, &want);
    mandate_grant got;
    expect_rc(MANDATE_OK, parse(fx, token, &got), &fx->err);
    test_assert_grants_equal(&want, &got);
    /* every time */
    expect_rc(MANDATE_OK, parse(fx, token, &got), &fx->err);
    test_assert_grants_equal(&want, &got);
}

/* A DPoP-bound grant (ABI 1.5): its cnf.jkt kept in the record, read back. */
static void test_round_trip_cnf(void **state)
{
    fake_plugin_fx *fx = *state;
    mandate_grant want = bare_grant();
    want.cnf_jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
    char *token = mint(fx, &want);
    mandate_grant got;
    expect_rc(MANDATE_OK, parse(fx, token, &got), &fx->err);
    test_assert_grants_equal(&want, &got);
    assert_string_equal(got.cnf_jkt, want.cnf_jkt);
}

static void test_round_trip_bare(void **state)
{
    fake_plugin_fx *fx = *state;
    mandate_grant want = bare_grant();
    char *token = mint(fx, &want);
    mandate_grant got;
    expect_rc(MANDATE_OK, parse(fx, token, &got), &fx->err);
    test_assert_grants_equal(&want, &got);

    /* one audience; empty tenant, actor and idp are left out; no nbf is iat */
    want.audience = "https://api.example.com";
    want.tenant = "";
    want.actor = "";
    want.idp = "";
    want.scope = "";
    want.not_before = 0;
    want.jti = "bare-jti-2";
    token = mint(fx, &want);
    expect_rc(MANDATE_OK, parse(fx, token, &got), &fx->err);
    assert_string_equal(got.audience, "https://api.example.com");
    assert_null(got.tenant);
    assert_null(got.actor);
    assert_null(got.idp);
    assert_string_equal(got.scope, "");
    assert_int_equal(got.not_before, NOW);
}

static void test_token_shape(void **state)
{
    fake_plugin_fx *fx = *state;
    const mandate_grant g = bare_grant();
    enum { N = 64 };
    char *tokens[N];
    for (int i = 0; i < N; i++) {
        tokens[i] = mint(fx, &g);
        assert_int_equal(strlen(tokens[i]), TOKEN_LEN);
        assert_memory_equal(tokens[i], PREFIX, strlen(PREFIX));
        assert_true(all_b64url(tokens[i] + strlen(PREFIX), BODY_LEN));
        assert_null(strchr(tokens[i], '.'));
        for (int j = 0; j < i; j++)
            assert_string_not_equal(tokens[i], tokens[j]);
    }
    assert_int_equal(fake_host_token_count(), N);

    /* the body decodes to 32 random bytes */
    unsigned char raw[64];
    size_t raw_len = 0;
    assert_true(mandate_b64url_decode(tokens[0] + strlen(PREFIX), BODY_LEN, raw, sizeof(raw),
                                      &raw_len));
    assert_int_equal(raw_len, 32);

    /* 64 bytes and another prefix */
    void *inst = inst_open_with("token_bytes", "64");
    char *big = mint_in(inst, fx->pool, &g);
    assert_int_equal(strlen(big), strlen(PREFIX) + 86);
    assert_true(all_b64url(big + strlen(PREFIX), 86));
    mandate_grant got;
    expect_rc(MANDATE_OK, OPS->parse(inst, fx->pool, big, strlen(big), &got, &fx->err),
              &fx->err);
    /* a 32-byte instance finds a 64-byte token malformed */
    expect_parse(fx, big, MANDATE_INVALID, "characters");
    fake_instance_free(P, &inst);

    inst = inst_open_with("prefix", "acme-at_");
    char *other = mint_in(inst, fx->pool, &g);
    assert_int_equal(strlen(other), strlen("acme-at_") + BODY_LEN);
    assert_memory_equal(other, "acme-at_", strlen("acme-at_"));
    expect_rc(MANDATE_OK, OPS->parse(inst, fx->pool, other, strlen(other), &got, &fx->err),
              &fx->err);
    /* not ours for the other instance, and the other way round */
    expect_parse(fx, other, MANDATE_NEXT, NULL);
    expect_rc(MANDATE_NEXT,
              OPS->parse(inst, fx->pool, tokens[0], strlen(tokens[0]), &got, &fx->err),
              &fx->err);
    fake_instance_free(P, &inst);
}

/* The store holds the SHA-256 of the whole token and the grant, never the
 * token or its random part. */
static void test_store_holds_hash(void **state)
{
    fake_plugin_fx *fx = *state;
    const mandate_grant g = full_grant();
    char *token = mint(fx, &g);
    assert_int_equal(fake_host_token_count(), 1);

    mandate_token_record rec;
    assert_int_equal(fake_host_token_record(0, &rec), 0);
    assert_int_equal(fake_host_token_record(1, &rec), -1);
    assert_int_equal(fake_host_token_record(0, &rec), 0);
    unsigned char want[32];
    sha256(token, want);
    assert_int_equal(rec.token_hash_len, 32);
    assert_memory_equal(rec.token_hash, want, 32);
    assert_string_equal(rec.jti, g.jti);
    assert_string_equal(rec.client_id, g.client_id);
    assert_string_equal(rec.subject, g.subject);
    assert_string_equal(rec.tenant, g.tenant);
    assert_int_equal(rec.issued_at, g.issued_at);
    assert_int_equal(rec.expires_at, g.expires_at);

    /* neither the token nor a piece of its random part anywhere */
    const char *body = token + strlen(PREFIX);
    char piece[12];
    for (size_t off = 0; off + sizeof(piece) - 1 <= BODY_LEN; off += 4) {
        snprintf(piece, sizeof(piece), "%.*s", (int)sizeof(piece) - 1, body + off);
        assert_false(holds(rec.token_hash, rec.token_hash_len, piece));
        const char *fields[] = {rec.jti, rec.client_id, rec.subject, rec.tenant, rec.grant};
        for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
            assert_false(str_holds(fields[i], piece));
    }
    assert_false(str_holds(rec.grant, PREFIX));

    /* the grant: compact JSON with exactly the claim names */
    assert_null(strstr(rec.grant, ": "));
    assert_null(strstr(rec.grant, "\n"));
    json_error_t jerr;
    json_t *obj = json_loads(rec.grant, 0, &jerr);
    assert_non_null(obj);
    const char *names[] = {"iss", "sub", "client_id", "act", "tenant", "scope",
                           "aud", "idp", "jti",       "iat", "nbf",    "exp"};
    assert_int_equal(json_object_size(obj), sizeof(names) / sizeof(names[0]));
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (json_object_get(obj, names[i]) == NULL)
            fail_msg("grant lacks %s: %s", names[i], rec.grant);
    assert_string_equal(json_string_value(json_object_get(obj, "sub")), g.subject);
    /* the chain nested as in a JWT, nearest first */
    const json_t *act = json_object_get(obj, "act");
    assert_string_equal(json_string_value(json_object_get(act, "sub")), g.actor);
    act = json_object_get(act, "act");
    assert_string_equal(json_string_value(json_object_get(act, "sub")), "planner-2");
    act = json_object_get(act, "act");
    assert_string_equal(json_string_value(json_object_get(act, "sub")), "advisor-app");
    assert_int_equal(json_object_size(act), 1);
    assert_int_equal(json_array_size(json_object_get(obj, "aud")), 2);
    assert_int_equal(json_integer_value(json_object_get(obj, "nbf")), g.not_before);
    assert_int_equal(json_integer_value(json_object_get(obj, "exp")), g.expires_at);
    json_decref(obj);

    /* absent members are left out */
    const mandate_grant b = bare_grant();
    mint(fx, &b);
    assert_int_equal(fake_host_token_record(1, &rec), 0);
    assert_null(rec.tenant);
    obj = json_loads(rec.grant, 0, &jerr);
    assert_non_null(obj);
    const char *absent[] = {"act", "tenant", "scope", "aud", "idp"};
    for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++)
        assert_null(json_object_get(obj, absent[i]));
    assert_int_equal(json_object_size(obj), 7);
    json_decref(obj);
}

static void test_mint_refusals(void **state)
{
    fake_plugin_fx *fx = *state;
    char *token = (char *)"untouched";
    mandate_grant g = bare_grant();
    g.subject = NULL;
    expect_rc(MANDATE_ERROR, OPS->mint(fx->inst, fx->pool, &g, &token, &fx->err), &fx->err);
    assert_null(token);
    g = bare_grant();
    g.jti = NULL;
    expect_rc(MANDATE_ERROR, OPS->mint(fx->inst, fx->pool, &g, &token, &fx->err), &fx->err);
    expect_rc(MANDATE_ERROR, OPS->mint(fx->inst, fx->pool, NULL, &token, &fx->err), &fx->err);
    g = bare_grant();
    g.scope = "bad \xff utf-8";
    expect_rc(MANDATE_INVALID, OPS->mint(fx->inst, fx->pool, &g, &token, &fx->err), &fx->err);
    assert_null(token);
    assert_non_null(strstr(fx->err.message, "scope"));
    assert_int_equal(fake_host_token_count(), 0);
}

/* --- tokens that are not ours, malformed, unknown, expired ------------------------ */

static void test_not_ours(void **state)
{
    fake_plugin_fx *fx = *state;
    expect_parse(fx, "eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJhZ2VudCJ9.c2ln",
                 MANDATE_NEXT, NULL);
    expect_parse(fx, "garbage", MANDATE_NEXT, NULL);
    expect_parse(fx, "", MANDATE_NEXT, NULL);
    expect_parse(fx, "mdo", MANDATE_NEXT, NULL);
    expect_parse(fx, "MDO_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", MANDATE_NEXT, NULL);
    expect_parse(fx, "xmdo_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", MANDATE_NEXT, NULL);
    expect_parse(fx, "Bearer mdo_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", MANDATE_NEXT,
                 NULL);
    /* len, not the NUL, decides: "mdo_..." cut short before the prefix ends */
    expect_parse_n(fx, "mdo_AAAA", 3, MANDATE_NEXT, NULL);
    mandate_grant g;
    memset(&g, 0x5a, sizeof(g));
    expect_rc(MANDATE_NEXT, OPS->parse(fx->inst, fx->pool, NULL, 0, &g, &fx->err), &fx->err);
    assert_null(g.subject);
}

static void test_malformed(void **state)
{
    fake_plugin_fx *fx = *state;
    const mandate_grant want = bare_grant();
    const char *good = mint(fx, &want);
    char t[128];

    expect_parse(fx, PREFIX, MANDATE_INVALID, "characters");
    /* one character short, one too many */
    snprintf(t, sizeof(t), "%.*s", (int)TOKEN_LEN - 1, good);
    expect_parse(fx, t, MANDATE_INVALID, "characters");
    snprintf(t, sizeof(t), "%sA", good);
    expect_parse(fx, t, MANDATE_INVALID, "characters");
    snprintf(t, sizeof(t), "%s%s", good, good + strlen(PREFIX));
    expect_parse(fx, t, MANDATE_INVALID, "characters");

    /* the right length with a character outside base64url */
    const char bad[] = {'+', '/', '=', '.', ' ', '\n', '%', '~', '\x80', '\xff'};
    for (size_t i = 0; i < sizeof(bad); i++) {
        snprintf(t, sizeof(t), "%s", good);
        t[strlen(PREFIX) + (i * 7) % BODY_LEN] = bad[i];
        expect_parse(fx, t, MANDATE_INVALID, "base64url");
    }
    /* a NUL inside, with the length counting past it */
    memcpy(t, good, TOKEN_LEN + 1);
    t[TOKEN_LEN - 3] = '\0';
    expect_parse_n(fx, t, TOKEN_LEN, MANDATE_INVALID, "base64url");

    /* a token that is whole, but the length given cuts it */
    expect_parse_n(fx, good, TOKEN_LEN - 1, MANDATE_INVALID, "characters");
    /* and a token given with its length followed by more text */
    snprintf(t, sizeof(t), "%s trailing", good);
    mandate_grant got;
    expect_rc(MANDATE_OK, parse_n(fx, t, TOKEN_LEN, &got), &fx->err);
    test_assert_grants_equal(&want, &got);
}

static void test_unknown(void **state)
{
    fake_plugin_fx *fx = *state;
    const mandate_grant want = bare_grant();
    const char *good = mint(fx, &want);
    char t[128];

    expect_parse(fx, PREFIX "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", MANDATE_INVALID,
                 "unknown or expired token");
    /* one character changed */
    snprintf(t, sizeof(t), "%s", good);
    t[strlen(PREFIX) + 10] = t[strlen(PREFIX) + 10] == 'A' ? 'B' : 'A';
    expect_parse(fx, t, MANDATE_INVALID, "unknown or expired token");
    /* the last character's unused bits set: decodes to the same bytes, but is
     * another string, so another hash */
    snprintf(t, sizeof(t), "%s", good);
    char *last = &t[TOKEN_LEN - 1];
    const char *pos = strchr(B64URL, *last);
    *last = B64URL[((pos - B64URL) ^ 1) & 63];
    expect_parse(fx, t, MANDATE_INVALID, "unknown or expired token");

    /* after a reset of the store (e.g. another broker's database) */
    fake_host_token_reset();
    expect_parse(fx, good, MANDATE_INVALID, "unknown or expired token");
}

static void test_expired(void **state)
{
    fake_plugin_fx *fx = *state;
    const mandate_grant want = bare_grant(); /* expires at NOW + 60 */
    const char *token = mint(fx, &want);
    mandate_grant got;

    fake_host_set_now(NOW + 59);
    expect_rc(MANDATE_OK, parse(fx, token, &got), &fx->err);
    /* the store hides it from exp on */
    fake_host_set_now(NOW + 60);
    mandate_rc rc = parse(fx, token, &got);
    if (rc != MANDATE_EXPIRED && rc != MANDATE_INVALID)
        fail_msg("rc %d: %s", (int)rc, fx->err.message);
    expect_parse(fx, token, MANDATE_INVALID, "unknown or expired token");
    fake_host_set_now(NOW + 100000);
    expect_parse(fx, token, MANDATE_INVALID, "unknown or expired token");
}

/* --- a store that misbehaves -------------------------------------------------------- */

static mandate_rc store_rc = MANDATE_OK;

static mandate_rc failing_put(const mandate_host *host, const mandate_token_record *record,
                              mandate_error *err)
{
    return mandate_error_set(err, store_rc, "test store: put says %d", (int)store_rc);
}

static mandate_rc failing_get(const mandate_host *host, mandate_pool *pool,
                              const unsigned char *hash, size_t hash_len,
                              mandate_token_record *record_r, mandate_error *err)
{
    return mandate_error_set(err, store_rc, "test store: get says %d", (int)store_rc);
}

/* A store that does not hide expired records: it answers with the first
 * record whatever is asked (but with the right hash). */
static mandate_rc stale_get(const mandate_host *host, mandate_pool *pool,
                            const unsigned char *hash, size_t hash_len,
                            mandate_token_record *record_r, mandate_error *err)
{
    if (fake_host_token_record(0, record_r) != 0)
        return mandate_error_set(err, MANDATE_NOT_FOUND, "test store: empty");
    return MANDATE_OK;
}

/* A store that answers with the first record whatever the hash. */
static mandate_rc confused_get(const mandate_host *host, mandate_pool *pool,
                               const unsigned char *hash, size_t hash_len,
                               mandate_token_record *record_r, mandate_error *err)
{
    mandate_rc rc = stale_get(host, pool, hash, hash_len, record_r, err);
    if (rc == MANDATE_OK && record_r->token_hash_len == hash_len &&
        memcmp(record_r->token_hash, hash, hash_len) == 0)
        return mandate_error_set(err, MANDATE_NOT_FOUND, "test store: not found");
    return rc;
}

/* The same record with another grant text. */
static const char *grant_text;
static mandate_rc rewriting_get(const mandate_host *host, mandate_pool *pool,
                                const unsigned char *hash, size_t hash_len,
                                mandate_token_record *record_r, mandate_error *err)
{
    mandate_rc rc =
        fake_host_get()->token_record_get(host, pool, hash, hash_len, record_r, err);
    if (rc == MANDATE_OK)
        record_r->grant = grant_text;
    return rc;
}

static mandate_rc constant_random(void *buf, size_t len)
{
    memset(buf, 0x42, len);
    return MANDATE_OK;
}

static mandate_rc broken_random(void *buf, size_t len)
{
    return MANDATE_ERROR;
}

static void *inst_on(const mandate_host *host)
{
    mandate_error err;
    mandate_rc rc;
    void *inst = inst_try(host, &rc, &err, NULL);
    expect_rc(MANDATE_OK, rc, &err);
    return inst;
}

typedef mandate_rc record_get_fn(const mandate_host *host, mandate_pool *pool,
                                 const unsigned char *hash, size_t hash_len,
                                 mandate_token_record *record_r, mandate_error *err);

/* An instance on the fake host copied into *h (which must outlive it) with
 * the store's get or the random source replaced (NULL: the fake's own). */
static void *inst_replacing(mandate_host *h, record_get_fn *get,
                            mandate_rc (*random)(void *buf, size_t len))
{
    *h = *fake_host_get();
    if (get != NULL)
        h->token_record_get = get;
    if (random != NULL)
        h->random = random;
    return inst_on(h);
}

static void test_store_failures(void **state)
{
    fake_plugin_fx *fx = *state;
    const mandate_grant want = full_grant();
    const char *token = mint(fx, &want);
    mandate_grant got;
    char *out;

    mandate_host h = *fake_host_get();
    h.token_record_put = failing_put;
    h.token_record_get = failing_get;
    void *inst = inst_on(&h);
    const mandate_rc through[] = {MANDATE_TEMPFAIL, MANDATE_ERROR};
    for (size_t i = 0; i < 2; i++) {
        store_rc = through[i];
        out = (char *)"untouched";
        expect_rc(through[i], OPS->mint(inst, fx->pool, &want, &out, &fx->err), &fx->err);
        assert_null(out);
        expect_rc(through[i], OPS->parse(inst, fx->pool, token, strlen(token), &got, &fx->err),
                  &fx->err);
        assert_null(got.subject);
        assert_non_null(strstr(fx->err.message, "test store"));
    }
    /* a store answering EXISTS on put: a collision, our fault */
    store_rc = MANDATE_EXISTS;
    expect_rc(MANDATE_ERROR, OPS->mint(inst, fx->pool, &want, &out, &fx->err), &fx->err);
    assert_non_null(strstr(fx->err.message, "collision"));
    store_rc = MANDATE_OK;
    fake_instance_free(P, &inst);

    /* a real collision: the same random bytes twice */
    inst = inst_replacing(&h, NULL, constant_random);
    const char *first = mint_in(inst, fx->pool, &want);
    out = (char *)"untouched";
    expect_rc(MANDATE_ERROR, OPS->mint(inst, fx->pool, &want, &out, &fx->err), &fx->err);
    assert_null(out);
    assert_non_null(strstr(fx->err.message, "collision"));
    expect_rc(MANDATE_OK, OPS->parse(inst, fx->pool, first, strlen(first), &got, &fx->err),
              &fx->err);
    fake_instance_free(P, &inst);

    inst = inst_replacing(&h, NULL, broken_random);
    out = (char *)"untouched";
    expect_rc(MANDATE_ERROR, OPS->mint(inst, fx->pool, &want, &out, &fx->err), &fx->err);
    assert_null(out);
    fake_instance_free(P, &inst);

    /* a store that forgets to hide expired records: the plugin checks exp */
    inst = inst_replacing(&h, stale_get, NULL);
    expect_rc(MANDATE_OK, OPS->parse(inst, fx->pool, token, strlen(token), &got, &fx->err),
              &fx->err);
    fake_host_set_now(want.expires_at);
    memset(&got, 0x5a, sizeof(got));
    expect_rc(MANDATE_EXPIRED, OPS->parse(inst, fx->pool, token, strlen(token), &got, &fx->err),
              &fx->err);
    assert_null(got.subject);
    fake_host_set_now(NOW);
    fake_instance_free(P, &inst);

    /* a store that answers with another token's record */
    inst = inst_replacing(&h, confused_get, NULL);
    const char *second = mint(fx, &want);
    expect_rc(MANDATE_ERROR, OPS->parse(inst, fx->pool, second, strlen(second), &got, &fx->err),
              &fx->err);
    fake_instance_free(P, &inst);

    /* a stored grant that is broken is our fault, not the caller's */
    inst = inst_replacing(&h, rewriting_get, NULL);
    const char *broken[] = {
        NULL,
        "not json",
        "[1,2]",
        "{\"sub\":\"a\",\"client_id\":\"c\",\"jti\":\"j\",\"iat\":1,\"exp\":2}",
        "{\"iss\":\"i\",\"sub\":7,\"client_id\":\"c\",\"jti\":\"j\",\"iat\":1,\"exp\":2}",
        "{\"iss\":\"i\",\"sub\":\"a\",\"client_id\":\"c\",\"jti\":\"j\",\"iat\":1}",
        "{\"iss\":\"i\",\"sub\":\"a\",\"client_id\":\"c\",\"jti\":\"j\",\"iat\":1,"
        "\"exp\":\"soon\"}",
        "{\"iss\":\"i\",\"sub\":\"a\",\"client_id\":\"c\",\"jti\":\"j\",\"iat\":1,\"exp\":2,"
        "\"aud\":[1]}",
        "{\"iss\":\"i\",\"sub\":\"a\",\"client_id\":\"c\",\"jti\":\"j\",\"iat\":1,\"exp\":2,"
        "\"act\":\"x\"}",
        "{\"iss\":\"i\",\"sub\":\"a\",\"client_id\":\"c\",\"jti\":\"j\",\"iat\":1,\"exp\":2,"
        "\"act\":{\"sub\":\"b\",\"act\":\"x\"}}",
        "{\"iss\":\"i\",\"sub\":\"a\",\"client_id\":\"c\",\"jti\":\"j\",\"iat\":1,\"exp\":2,"
        "\"act\":{\"sub\":\"b c\"}}",
        /* 17 actors: more than a grant holds */
        "{\"iss\":\"i\",\"sub\":\"a\",\"client_id\":\"c\",\"jti\":\"j\",\"iat\":1,\"exp\":2,"
        "\"act\":{\"sub\":\"1\",\"act\":{\"sub\":\"2\",\"act\":{\"sub\":\"3\",\"act\":{\"sub\":"
        "\"4\",\"act\":{\"sub\":\"5\",\"act\":{\"sub\":\"6\",\"act\":{\"sub\":\"7\",\"act\":{"
        "\"sub\":\"8\",\"act\":{\"sub\":\"9\",\"act\":{\"sub\":\"10\",\"act\":{\"sub\":\"11\","
        "\"act\":{\"sub\":\"12\",\"act\":{\"sub\":\"13\",\"act\":{\"sub\":\"14\",\"act\":{"
        "\"sub\":\"15\",\"act\":{\"sub\":\"16\",\"act\":{\"sub\":\"17\"}}}}}}}}}}}}}}}}}}",
    };
    for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
        grant_text = broken[i];
        memset(&got, 0x5a, sizeof(got));
        expect_rc(MANDATE_ERROR,
                  OPS->parse(inst, fx->pool, token, strlen(token), &got, &fx->err), &fx->err);
        assert_null(got.subject);
    }
    /* the grant's exp counts as well as the record's */
    grant_text = "{\"iss\":\"i\",\"sub\":\"a\",\"client_id\":\"c\",\"jti\":\"j\",\"iat\":1,"
                 "\"exp\":2,\"aud\":\"one\"}";
    expect_rc(MANDATE_EXPIRED, OPS->parse(inst, fx->pool, token, strlen(token), &got, &fx->err),
              &fx->err);
    grant_text = "{\"iss\":\"i\",\"sub\":\"a\",\"client_id\":\"c\",\"jti\":\"j\",\"iat\":1,"
                 "\"exp\":1900000300,\"aud\":[\"one\",\"two\"]}";
    expect_rc(MANDATE_OK, OPS->parse(inst, fx->pool, token, strlen(token), &got, &fx->err),
              &fx->err);
    assert_string_equal(got.audience, "one two");
    assert_null(got.actor);
    assert_null(got.prior_actors);
    assert_int_equal(got.not_before, 1);
    fake_instance_free(P, &inst);

    /* a host of before ABI 1.4: no earlier actors stored, none read, and
     * nothing written past its grant's end; a nested act refused */
    h = *fake_host_get();
    h.abi_minor = 3;
    inst = inst_on(&h);
    const char *old = mint_in(inst, fx->pool, &want);
    mandate_token_record rec;
    assert_int_equal(fake_host_token_record(fake_host_token_count() - 1, &rec), 0);
    assert_null(strstr(rec.grant, "planner-2"));
    memset(&got, 0x5a, sizeof(got));
    expect_rc(MANDATE_OK, OPS->parse(inst, fx->pool, old, strlen(old), &got, &fx->err),
              &fx->err);
    assert_string_equal(got.actor, want.actor);
    const unsigned char *tail = (const unsigned char *)&got.prior_actors;
    for (size_t i = 0; i < sizeof(got.prior_actors); i++)
        assert_int_equal(tail[i], 0x5a);
    expect_rc(MANDATE_ERROR, OPS->parse(inst, fx->pool, token, strlen(token), &got, &fx->err),
              &fx->err);
    assert_non_null(strstr(fx->err.message, "cannot carry"));
    grant_text = NULL;
    fake_instance_free(P, &inst);
}

/* --- threads ------------------------------------------------------------------------ */

#define MINTERS 4
#define MINTS 100

struct minter {
    void *inst;
    int id;
    char *tokens[MINTS];
    test_failures failures;
};

static void *minter_main(void *arg)
{
    struct minter *m = arg;
    mandate_pool *pool = mandate_pool_new();
    for (int i = 0; i < MINTS; i++) {
        char jti[32];
        snprintf(jti, sizeof(jti), "t%d-%d", m->id, i);
        mandate_grant g = bare_grant();
        g.jti = jti;
        mandate_grant got;
        m->tokens[i] = test_mint_and_parse(OPS, m->inst, pool, &g, &got, &m->failures);
        if (m->tokens[i] != NULL && strcmp(got.jti, jti) != 0)
            test_failures_note(&m->failures, "parsed back with another jti");
        mandate_pool_clear(pool);
    }
    mandate_pool_free(&pool);
    return NULL;
}

static void test_concurrent_mint(void **state)
{
    fake_plugin_fx *fx = *state;
    pthread_t threads[MINTERS];
    struct minter *m = calloc(MINTERS, sizeof(*m));
    assert_non_null(m);
    for (int i = 0; i < MINTERS; i++) {
        m[i].inst = fx->inst;
        m[i].id = i;
        assert_int_equal(pthread_create(&threads[i], NULL, minter_main, &m[i]), 0);
    }
    for (int i = 0; i < MINTERS; i++)
        pthread_join(threads[i], NULL);
    for (int i = 0; i < MINTERS; i++)
        if (m[i].failures.count != 0)
            fail_msg("thread %d: %d failures, last: %s", i, m[i].failures.count,
                     m[i].failures.last);
    assert_int_equal(fake_host_token_count(), MINTERS * MINTS);

    /* every token parses to its own grant, and no two are the same */
    for (int i = 0; i < MINTERS; i++) {
        for (int j = 0; j < MINTS; j++) {
            char jti[32];
            snprintf(jti, sizeof(jti), "t%d-%d", i, j);
            mandate_grant got;
            assert_non_null(m[i].tokens[j]);
            expect_rc(MANDATE_OK, parse(fx, m[i].tokens[j], &got), &fx->err);
            assert_string_equal(got.jti, jti);
            for (int k = 0; k < i; k++)
                for (int l = 0; l < MINTS; l++)
                    assert_string_not_equal(m[i].tokens[j], m[k].tokens[l]);
        }
    }
    for (int i = 0; i < MINTERS; i++)
        for (int j = 0; j < MINTS; j++)
            free(m[i].tokens[j]);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor),
        cmocka_unit_test(test_conf),
        cmocka_unit_test(test_old_host_refused),
        TEST_FX(test_round_trip),
        TEST_FX(test_round_trip_bare),
        TEST_FX(test_round_trip_cnf),
        TEST_FX(test_token_shape),
        TEST_FX(test_store_holds_hash),
        TEST_FX(test_mint_refusals),
        TEST_FX(test_not_ours),
        TEST_FX(test_malformed),
        TEST_FX(test_unknown),
        TEST_FX(test_expired),
        TEST_FX(test_store_failures),
        TEST_FX(test_concurrent_mint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
