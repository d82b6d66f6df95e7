/* The local backend, linked in directly and driven through its descriptor
 * with the fake host: generated secrets, secret authentication with a
 * rotation grace period, and private_key_jwt client assertions (RFC 7523)
 * with ES256, RS256 and EdDSA keys. The fake clock is fixed at NOW. */
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
#include <time.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <mandate/backend.h>

#include "fake-host.h"
#include "jose.h"
#include "pool-private.h"
#include "test-helpers.h"

extern const mandate_plugin mandate_plugin_local;

#define P (&mandate_plugin_local)
#define OPS ((const mandate_backend_ops *)mandate_plugin_local.ops)

#define NOW INT64_C(1800000000)
#define TOKEN_URL "https://mandate.example/oauth2/token"
#define ISSUER "https://mandate.example"
#define AUDIENCE TOKEN_URL " " ISSUER
#define CLIENT "agent-1"

/* One key type: the client's key, another of the same type, its PEM. */
struct alg_state {
    mandate_jws_alg alg;
    const char *name;
    EVP_PKEY *key;
    EVP_PKEY *other;
    char *pem;
};

static struct alg_state algs[] = {
    {MANDATE_JWS_ES256, "ES256", NULL, NULL, NULL},
    {MANDATE_JWS_RS256, "RS256", NULL, NULL, NULL},
    {MANDATE_JWS_EDDSA, "EdDSA", NULL, NULL, NULL},
};
#define N_ALGS (sizeof(algs) / sizeof(algs[0]))

struct fx {
    void *inst;
    mandate_pool *pool;
    mandate_error err;
    struct alg_state *alg; /* the JWT tests' key type, or NULL */
    mandate_client client;
};

/* --- fixture ---------------------------------------------------------------- */

static void *inst_new(void)
{
    void *inst = fake_instance_new(P);
    assert_non_null(inst);
    return inst;
}

static void inst_start(void *inst)
{
    mandate_error err = {0};
    mandate_rc rc = P->instantiate(inst, fake_host_get(), &err);
    if (rc != MANDATE_OK)
        fail_msg("instantiate: %s", err.message);
}

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    fx->alg = *state; /* the prestate, when there is one */
    fake_host_set_now(NOW);
    fake_host_replay_reset();
    fake_host_clear_log();
    fx->inst = inst_new();
    inst_start(fx->inst);
    fx->pool = mandate_pool_new();
    fx->client = (mandate_client){
        .client_id = CLIENT,
        .tenant = "acme",
        .scopes = "read",
        .backend = "test", /* the fake host's instance name */
        .status = MANDATE_CLIENT_ENABLED,
        .public_key = fx->alg != NULL ? fx->alg->pem : NULL,
    };
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    mandate_pool_free(&fx->pool);
    fake_instance_free(P, &fx->inst);
    free(fx);
    fake_host_replay_reset();
    fake_host_unset_now();
    return 0;
}

/* --- helpers ------------------------------------------------------------------ */

static bool is_b64url(const char *s)
{
    for (; *s != '\0'; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
              (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
            return false;
    return true;
}

/* cred, presented by client (its client_id filled in here). */
static mandate_rc authenticate(struct fx *fx, const mandate_client *client,
                               mandate_credential cred)
{
    cred.client_id = client->client_id;
    fx->err = (mandate_error){0};
    return OPS->authenticate_client(fx->inst, fx->pool, &cred, client, &fx->err);
}

static mandate_rc auth_secret(struct fx *fx, const mandate_client *client, const void *secret,
                              size_t len)
{
    return authenticate(fx, client,
                        (mandate_credential){.auth_method = "client_secret_basic",
                                             .secret = secret,
                                             .secret_len = len});
}

static mandate_rc auth_jwt(struct fx *fx, const mandate_client *client, const char *assertion)
{
    return authenticate(fx, client,
                        (mandate_credential){.auth_method = "private_key_jwt",
                                             .assertion = assertion,
                                             .audience = AUDIENCE});
}

/* Provision a secret into client; returns the secret (from the pool). */
static char *provision(struct fx *fx, mandate_client *client, mandate_provision_mode mode)
{
    char *secret = NULL;
    fx->err = (mandate_error){0};
    mandate_rc rc = OPS->provision(fx->inst, fx->pool, mode, client, &secret, &fx->err);
    if (rc != MANDATE_OK)
        fail_msg("provision: %s", fx->err.message);
    assert_non_null(secret);
    return secret;
}

static void expect_rc(mandate_rc want, mandate_rc got, const mandate_error *err,
                      const char *what)
{
    if (want != got)
        fail_msg("%s: rc %d, wanted %d (%s)", what, (int)got, (int)want, err->message);
}

/* DENIED with a message containing `reason` and not the whole assertion. */
static void expect_denied(struct fx *fx, mandate_rc rc, const char *reason,
                          const char *assertion, const char *what)
{
    expect_rc(MANDATE_DENIED, rc, &fx->err, what);
    if (getenv("MANDATE_TEST_VERBOSE") != NULL)
        print_message("[ DENIED   ] %s: %s\n", what, fx->err.message);
    if (reason != NULL && strstr(fx->err.message, reason) == NULL)
        fail_msg("%s: message \"%s\" does not say \"%s\"", what, fx->err.message, reason);
    assert_true(fx->err.message[0] != '\0');
    if (assertion != NULL && strlen(assertion) > 16)
        assert_null(strstr(fx->err.message, assertion));
}

static char *pem_of(EVP_PKEY *key)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    assert_int_equal(PEM_write_bio_PUBKEY(bio, key), 1);
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    assert_true(len > 0);
    char *pem = strndup(data, (size_t)len);
    BIO_free(bio);
    assert_non_null(pem);
    return pem;
}

static json_t *claims_for(const char *client_id, const char *jti)
{
    json_t *claims =
        json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "iss", client_id, "sub", client_id, "aud",
                  TOKEN_URL, "exp", (json_int_t)(NOW + 60), "iat", (json_int_t)NOW, "jti", jti);
    assert_non_null(claims);
    return claims;
}

/* Signs and releases claims; free() the result. */
static char *sign(EVP_PKEY *key, json_t *claims)
{
    char *jws = mandate_jws_sign(key, NULL, NULL, claims);
    json_decref(claims);
    assert_non_null(jws);
    return jws;
}

/* "b64url(header).b64url(claims)" for hand-made tokens; releases both. */
static char *signing_input(json_t *header, json_t *claims)
{
    char *h = json_dumps(header, JSON_COMPACT), *c = json_dumps(claims, JSON_COMPACT);
    assert_non_null(h);
    assert_non_null(c);
    char *hb = test_b64url(h, strlen(h)), *cb = test_b64url(c, strlen(c));
    size_t n = strlen(hb) + 1 + strlen(cb) + 1;
    char *out = malloc(n);
    assert_non_null(out);
    snprintf(out, n, "%s.%s", hb, cb);
    free(h);
    free(c);
    free(hb);
    free(cb);
    json_decref(header);
    json_decref(claims);
    return out;
}

static char *join3(const char *a, const char *b)
{
    size_t n = strlen(a) + 1 + strlen(b) + 1;
    char *out = malloc(n);
    assert_non_null(out);
    snprintf(out, n, "%s.%s", a, b);
    return out;
}

/* An HS256 token whose HMAC key is `key`: the public key confusion attack. */
static char *hs256_with(const void *key, size_t key_len, const char *jti)
{
    char *input = signing_input(json_pack("{s:s, s:s}", "alg", "HS256", "typ", "JWT"),
                                claims_for(CLIENT, jti));
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    assert_non_null(HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)input,
                         strlen(input), mac, &mac_len));
    char *sig = test_b64url(mac, mac_len);
    char *token = join3(input, sig);
    free(input);
    free(sig);
    return token;
}

/* --- descriptor and conf --------------------------------------------------------- */

static void test_descriptor(void **state)
{
    test_assert_plugin_descriptor(P, MANDATE_BACKEND, "local");
    assert_int_equal(P->flags & MANDATE_PLUGIN_BLOCKING, 0);
    assert_non_null(OPS->authenticate_client);
    assert_non_null(OPS->provision);
    assert_null(OPS->assertion_types);
    assert_null(OPS->validate_assertion);

    void *inst = inst_new();
    assert_int_equal(fake_conf_set(P, inst, "secret_bytes", "31"), -1);
    assert_int_equal(fake_conf_set(P, inst, "secret_bytes", "65"), -1);
    assert_int_equal(fake_conf_set(P, inst, "secret_bytes", "64"), 0);
    assert_int_equal(fake_conf_set(P, inst, "assertion_max_lifetime", "9"), -1);
    assert_int_equal(fake_conf_set(P, inst, "assertion_max_lifetime", "3601"), -1);
    assert_int_equal(fake_conf_set(P, inst, "assertion_max_lifetime", "3600"), 0);
    assert_int_equal(fake_conf_set(P, inst, "clock_skew", "-1"), -1);
    assert_int_equal(fake_conf_set(P, inst, "clock_skew", "301"), -1);
    assert_int_equal(fake_conf_set(P, inst, "clock_skew", "0"), 0);
    assert_int_equal(fake_conf_set(P, inst, "pepper", "x"), -1);
    inst_start(inst);
    fake_instance_free(P, &inst);

    /* A caller that skipped the conf checks is refused, not overrun. */
    inst = inst_new();
    int64_t big = 1000;
    const mandate_conf_def *d = P->conf;
    while (strcmp(d->key, "secret_bytes") != 0)
        d++;
    memcpy((char *)inst + d->offset, &big, sizeof(big));
    mandate_error err = {0};
    assert_int_equal(P->instantiate(inst, fake_host_get(), &err), MANDATE_INVALID);
    fake_instance_free(P, &inst);
}

/* --- provisioning ------------------------------------------------------------------ */

static void test_provision(void **state)
{
    struct fx *fx = *state;
    mandate_client a = fx->client, b = fx->client;
    char *sa = provision(fx, &a, MANDATE_PROVISION_CREATE);
    char *sb = provision(fx, &b, MANDATE_PROVISION_CREATE);

    assert_int_equal(strlen(sa), 43);
    assert_true(is_b64url(sa));
    assert_int_equal(strlen(sb), 43);
    assert_true(is_b64url(sb));
    assert_string_not_equal(sa, sb);

    unsigned char want[32];
    unsigned int want_len = 0;
    assert_non_null(HMAC(EVP_sha256(), fake_host_hash_key, sizeof(fake_host_hash_key),
                         (const unsigned char *)sa, strlen(sa), want, &want_len));
    assert_int_equal(want_len, 32);
    assert_int_equal(a.secret_hash_len, 32);
    assert_non_null(a.secret_hash);
    assert_memory_equal(a.secret_hash, want, 32);
    assert_memory_not_equal(a.secret_hash, b.secret_hash, 32);

    /* Rotating makes a new secret the same way; the previous hash is the
     * core's to keep. */
    mandate_client r = a;
    char *sr = provision(fx, &r, MANDATE_PROVISION_ROTATE);
    assert_int_equal(strlen(sr), 43);
    assert_string_not_equal(sr, sa);
    assert_memory_not_equal(r.secret_hash, a.secret_hash, 32);
    assert_null(r.prev_secret_hash);

    /* The log holds no secret. */
    assert_null(strstr(fake_host_last_log(), sa));

    /* Unknown mode. */
    char *none = NULL;
    assert_int_equal(
        OPS->provision(fx->inst, fx->pool, (mandate_provision_mode)7, &r, &none, &fx->err),
        MANDATE_INVALID);
    assert_null(none);
}

static void test_provision_64(void **state)
{
    struct fx *fx = *state;
    void *inst = inst_new();
    assert_int_equal(fake_conf_set(P, inst, "secret_bytes", "64"), 0);
    inst_start(inst);
    mandate_client c = fx->client;
    char *secret = NULL;
    assert_int_equal(
        OPS->provision(inst, fx->pool, MANDATE_PROVISION_CREATE, &c, &secret, &fx->err),
        MANDATE_OK);
    assert_int_equal(strlen(secret), 86);
    assert_true(is_b64url(secret));
    assert_int_equal(auth_secret(fx, &c, secret, strlen(secret)), MANDATE_OK);
    fake_instance_free(P, &inst);
}

static mandate_rc failing_random(void *buf, size_t len)
{
    return MANDATE_ERROR;
}

static void test_provision_no_random(void **state)
{
    struct fx *fx = *state;
    mandate_host *host = fake_host_get();
    mandate_rc (*saved)(void *, size_t) = host->random;
    host->random = failing_random;
    mandate_client c = fx->client;
    char *secret = NULL;
    mandate_rc rc =
        OPS->provision(fx->inst, fx->pool, MANDATE_PROVISION_CREATE, &c, &secret, &fx->err);
    host->random = saved;
    assert_int_equal(rc, MANDATE_ERROR);
    assert_null(secret);
    assert_null(c.secret_hash);
}

/* --- client secrets ------------------------------------------------------------------- */

static void test_secret(void **state)
{
    struct fx *fx = *state;
    mandate_client c = fx->client;
    char *secret = provision(fx, &c, MANDATE_PROVISION_CREATE);
    size_t len = strlen(secret);

    expect_rc(MANDATE_OK, auth_secret(fx, &c, secret, len), &fx->err, "right secret");

    mandate_credential post = {.auth_method = "client_secret_post",
                               .client_id = CLIENT,
                               .secret = (const unsigned char *)secret,
                               .secret_len = len};
    assert_int_equal(OPS->authenticate_client(fx->inst, fx->pool, &post, &c, &fx->err),
                     MANDATE_OK);
    post.auth_method = NULL; /* the method is optional: the fields say it */
    assert_int_equal(OPS->authenticate_client(fx->inst, fx->pool, &post, &c, &fx->err),
                     MANDATE_OK);

    expect_denied(fx, auth_secret(fx, &c, "wrong", 5), "does not match", NULL, "wrong");
    expect_denied(fx, auth_secret(fx, &c, "", 0), NULL, NULL, "empty");

    char *copy = malloc(len + 2);
    assert_non_null(copy);
    memcpy(copy, secret, len + 1);
    copy[len - 1] = copy[len - 1] == 'A' ? 'B' : 'A';
    expect_denied(fx, auth_secret(fx, &c, copy, len), "does not match", NULL, "last char");
    assert_null(strstr(fx->err.message, secret));
    assert_null(strstr(fx->err.message, copy));

    memcpy(copy, secret, len);
    copy[len] = 'x';
    copy[len + 1] = '\0';
    expect_denied(fx, auth_secret(fx, &c, copy, len + 1), "does not match", NULL, "trailing");
    copy[len] = '\0';
    expect_denied(fx, auth_secret(fx, &c, copy, len + 1), "does not match", NULL, "NUL");
    expect_denied(fx, auth_secret(fx, &c, secret, len - 1), "does not match", NULL, "prefix");
    free(copy);

    /* Hashes of one client do not open another. */
    mandate_client other = fx->client;
    other.client_id = "agent-2";
    (void)provision(fx, &other, MANDATE_PROVISION_CREATE);
    expect_denied(fx, auth_secret(fx, &other, secret, len), "does not match", NULL, "other");

    /* Neither the secret nor its hash reached the log. */
    assert_null(strstr(fake_host_last_log(), secret));
}

static void test_secret_grace(void **state)
{
    struct fx *fx = *state;
    mandate_client c = fx->client;
    char *old = provision(fx, &c, MANDATE_PROVISION_CREATE);
    const unsigned char *old_hash = c.secret_hash;

    /* What the core does on rotation: keep the old hash for an hour. */
    char *cur = provision(fx, &c, MANDATE_PROVISION_ROTATE);
    c.prev_secret_hash = old_hash;
    c.prev_secret_hash_len = 32;
    c.prev_secret_expires_at = NOW + 3600;

    expect_rc(MANDATE_OK, auth_secret(fx, &c, cur, strlen(cur)), &fx->err, "new");
    expect_rc(MANDATE_OK, auth_secret(fx, &c, old, strlen(old)), &fx->err, "old in grace");
    assert_null(strstr(fake_host_last_log(), old));
    expect_denied(fx, auth_secret(fx, &c, "guess", 5), "does not match", NULL, "guess");

    fake_host_set_now(NOW + 3599);
    expect_rc(MANDATE_OK, auth_secret(fx, &c, old, strlen(old)), &fx->err, "old, last second");
    fake_host_set_now(NOW + 3600);
    expect_denied(fx, auth_secret(fx, &c, old, strlen(old)), "does not match", NULL,
                  "old at expiry");
    fake_host_set_now(NOW + 86400);
    expect_denied(fx, auth_secret(fx, &c, old, strlen(old)), "does not match", NULL,
                  "old after");
    expect_rc(MANDATE_OK, auth_secret(fx, &c, cur, strlen(cur)), &fx->err, "new after");
}

static void test_secret_store_fault(void **state)
{
    struct fx *fx = *state;
    mandate_client c = fx->client;
    char *secret = provision(fx, &c, MANDATE_PROVISION_CREATE);
    size_t len = strlen(secret);

    mandate_client bad = c;
    bad.secret_hash_len = 20;
    expect_rc(MANDATE_ERROR, auth_secret(fx, &bad, secret, len), &fx->err, "short hash");
    bad.secret_hash_len = 64;
    expect_rc(MANDATE_ERROR, auth_secret(fx, &bad, secret, len), &fx->err, "long hash");

    /* A previous hash of the wrong length, consulted during its grace. */
    unsigned char junk[32] = {1};
    bad = c;
    bad.secret_hash = junk;
    bad.prev_secret_hash = c.secret_hash;
    bad.prev_secret_hash_len = 16;
    bad.prev_secret_expires_at = NOW + 60;
    expect_rc(MANDATE_ERROR, auth_secret(fx, &bad, secret, len), &fx->err, "short prev");
    bad.prev_secret_expires_at = NOW - 60; /* expired: not looked at */
    expect_denied(fx, auth_secret(fx, &bad, secret, len), "does not match", NULL,
                  "expired prev");
}

static mandate_rc failing_hash(const mandate_host *host, const void *data, size_t len,
                               unsigned char out[32], mandate_error *err)
{
    return mandate_error_set(err, MANDATE_ERROR, "no key-encryption key loaded");
}

static void test_secret_hash_unavailable(void **state)
{
    struct fx *fx = *state;
    mandate_client c = fx->client;
    char *secret = provision(fx, &c, MANDATE_PROVISION_CREATE);
    mandate_host *host = fake_host_get();
    mandate_rc (*saved)(const mandate_host *, const void *, size_t, unsigned char[32],
                        mandate_error *) = host->keyed_hash;
    host->keyed_hash = failing_hash;
    mandate_rc rc = auth_secret(fx, &c, secret, strlen(secret));
    char *none = NULL;
    mandate_rc prc =
        OPS->provision(fx->inst, fx->pool, MANDATE_PROVISION_CREATE, &c, &none, &fx->err);
    host->keyed_hash = saved;
    assert_int_equal(rc, MANDATE_ERROR);
    assert_int_equal(prc, MANDATE_ERROR);
    assert_null(none);
}

static void test_other_backend(void **state)
{
    struct fx *fx = *state;
    mandate_client c = fx->client;
    char *secret = provision(fx, &c, MANDATE_PROVISION_CREATE);
    size_t len = strlen(secret);

    c.backend = "corp-saml";
    assert_int_equal(auth_secret(fx, &c, secret, len), MANDATE_NEXT);
    assert_int_equal(auth_secret(fx, &c, "wrong", 5), MANDATE_NEXT);
    c.backend = "tes"; /* a prefix of ours is another name */
    assert_int_equal(auth_secret(fx, &c, secret, len), MANDATE_NEXT);
    c.backend = NULL; /* unset: ours */
    assert_int_equal(auth_secret(fx, &c, secret, len), MANDATE_OK);

    /* An instance named otherwise sees "test" as another's. */
    mandate_host *host = fake_host_get();
    host->instance = "local-2";
    c.backend = "test";
    mandate_rc rc = auth_secret(fx, &c, secret, len);
    c.backend = "local-2";
    mandate_rc rc2 = auth_secret(fx, &c, secret, len);
    host->instance = "test";
    assert_int_equal(rc, MANDATE_NEXT);
    assert_int_equal(rc2, MANDATE_OK);
}

static void test_no_secret_registered(void **state)
{
    struct fx *fx = *state;
    /* Registered for private_key_jwt only. */
    mandate_client c = fx->client;
    c.public_key = algs[0].pem;
    expect_denied(fx, auth_secret(fx, &c, "anything", 8), "private_key_jwt", NULL, "jwt only");
    c.public_key = NULL;
    expect_denied(fx, auth_secret(fx, &c, "anything", 8), "no secret", NULL, "nothing");
}

static void test_credential_shape(void **state)
{
    struct fx *fx = *state;
    mandate_client c = fx->client;
    c.public_key = algs[0].pem;
    char *secret = provision(fx, &c, MANDATE_PROVISION_CREATE);

    mandate_credential cred = {.auth_method = "client_secret_basic", .client_id = CLIENT};
    assert_int_equal(OPS->authenticate_client(fx->inst, fx->pool, &cred, &c, &fx->err),
                     MANDATE_INVALID);

    cred.secret = (const unsigned char *)secret;
    cred.secret_len = strlen(secret);
    cred.assertion = "a.b.c";
    cred.audience = AUDIENCE;
    assert_int_equal(OPS->authenticate_client(fx->inst, fx->pool, &cred, &c, &fx->err),
                     MANDATE_INVALID);

    cred.assertion = NULL;
    cred.auth_method = "private_key_jwt";
    assert_int_equal(OPS->authenticate_client(fx->inst, fx->pool, &cred, &c, &fx->err),
                     MANDATE_INVALID);

    /* The record is not the presented client's: a core fault. */
    cred.auth_method = "client_secret_basic";
    cred.client_id = "agent-2";
    assert_int_equal(OPS->authenticate_client(fx->inst, fx->pool, &cred, &c, &fx->err),
                     MANDATE_ERROR);
}

/* --- private_key_jwt ------------------------------------------------------------------ */

static void test_jwt_good(void **state)
{
    struct fx *fx = *state;
    EVP_PKEY *key = fx->alg->key;
    char *jws;

    jws = sign(key, claims_for(CLIENT, "good-1"));
    expect_rc(MANDATE_OK, auth_jwt(fx, &fx->client, jws), &fx->err, fx->alg->name);
    free(jws);

    /* aud as an array holding the issuer; nbf now; typ and kid set. */
    json_t *claims = claims_for(CLIENT, "good-2");
    json_object_set_new(claims, "aud", json_pack("[s, s]", "https://other.example", ISSUER));
    json_object_set_new(claims, "nbf", json_integer(NOW));
    jws = mandate_jws_sign(key, "k1", "JWT", claims);
    json_decref(claims);
    assert_non_null(jws);
    expect_rc(MANDATE_OK, auth_jwt(fx, &fx->client, jws), &fx->err, "aud array");
    free(jws);

    /* Within the clock skew on both ends; the longest lifetime allowed. */
    claims = claims_for(CLIENT, "good-3");
    json_object_set_new(claims, "exp", json_integer(NOW - 29));
    json_object_set_new(claims, "iat", json_integer(NOW + 30));
    json_object_set_new(claims, "nbf", json_integer(NOW + 30));
    jws = sign(key, claims);
    expect_rc(MANDATE_OK, auth_jwt(fx, &fx->client, jws), &fx->err, "skew");
    free(jws);
    claims = claims_for(CLIENT, "good-4");
    json_object_set_new(claims, "exp", json_integer(NOW + 330));
    json_object_del(claims, "iat");
    jws = sign(key, claims);
    expect_rc(MANDATE_OK, auth_jwt(fx, &fx->client, jws), &fx->err, "longest");
    free(jws);

    /* A client of another instance: NEXT, and the jti is not used up. */
    mandate_client c = fx->client;
    c.backend = "other";
    jws = sign(key, claims_for(CLIENT, "good-5"));
    assert_int_equal(auth_jwt(fx, &c, jws), MANDATE_NEXT);
    /* The owner of the client record is unset: ours. */
    c.backend = NULL;
    expect_rc(MANDATE_OK, auth_jwt(fx, &c, jws), &fx->err, "no backend");
    free(jws);
}

struct refusal {
    const char *what;
    const char *reason; /* a part of the message */
    void (*edit)(json_t *claims);
};

static void edit_iss(json_t *c)
{
    json_object_set_new(c, "iss", json_string("agent-2"));
}
static void edit_iss_missing(json_t *c)
{
    json_object_del(c, "iss");
}
static void edit_iss_number(json_t *c)
{
    json_object_set_new(c, "iss", json_integer(1));
}
static void edit_sub(json_t *c)
{
    json_object_set_new(c, "sub", json_string("agent-2"));
}
static void edit_sub_missing(json_t *c)
{
    json_object_del(c, "sub");
}
static void edit_iss_sub(json_t *c)
{
    json_object_set_new(c, "iss", json_string("agent-2"));
    json_object_set_new(c, "sub", json_string("agent-2"));
}
static void edit_iss_nul(json_t *c)
{
    json_object_set_new(c, "iss", json_stringn(CLIENT "\0x", sizeof(CLIENT) + 1));
}
static void edit_aud(json_t *c)
{
    json_object_set_new(c, "aud", json_string("https://other.example/token"));
}
static void edit_aud_prefix(json_t *c)
{
    json_object_set_new(c, "aud", json_string("https://mandate.example/oauth2"));
}
static void edit_aud_both(json_t *c)
{
    json_object_set_new(c, "aud", json_string(AUDIENCE));
}
static void edit_aud_empty(json_t *c)
{
    json_object_set_new(c, "aud", json_string(""));
}
static void edit_aud_array(json_t *c)
{
    json_object_set_new(c, "aud", json_pack("[s, s]", "a", "b"));
}
static void edit_aud_empty_array(json_t *c)
{
    json_object_set_new(c, "aud", json_array());
}
static void edit_aud_nonstring(json_t *c)
{
    json_object_set_new(c, "aud", json_pack("[s, i]", TOKEN_URL, 1));
}
static void edit_aud_object(json_t *c)
{
    json_object_set_new(c, "aud", json_pack("{s:s}", "aud", TOKEN_URL));
}
static void edit_aud_missing(json_t *c)
{
    json_object_del(c, "aud");
}
static void edit_expired(json_t *c)
{
    json_object_set_new(c, "exp", json_integer(NOW - 30));
}
static void edit_long_expired(json_t *c)
{
    json_object_set_new(c, "exp", json_integer(NOW - 86400));
}
static void edit_too_long(json_t *c)
{
    json_object_set_new(c, "exp", json_integer(NOW + 331));
}
static void edit_far_future(json_t *c)
{
    json_object_set_new(c, "exp", json_integer(INT64_MAX));
}
static void edit_exp_missing(json_t *c)
{
    json_object_del(c, "exp");
}
static void edit_exp_string(json_t *c)
{
    json_object_set_new(c, "exp", json_string("1800000060"));
}
static void edit_exp_real(json_t *c)
{
    json_object_set_new(c, "exp", json_real((double)(NOW + 60)));
}
static void edit_nbf(json_t *c)
{
    json_object_set_new(c, "nbf", json_integer(NOW + 31));
}
static void edit_nbf_string(json_t *c)
{
    json_object_set_new(c, "nbf", json_string("now"));
}
static void edit_iat(json_t *c)
{
    json_object_set_new(c, "iat", json_integer(NOW + 31));
}
static void edit_jti_missing(json_t *c)
{
    json_object_del(c, "jti");
}
static void edit_jti_empty(json_t *c)
{
    json_object_set_new(c, "jti", json_string(""));
}
static void edit_jti_number(json_t *c)
{
    json_object_set_new(c, "jti", json_integer(7));
}
static void edit_jti_long(json_t *c)
{
    char jti[258];
    memset(jti, 'j', 257);
    jti[257] = '\0';
    json_object_set_new(c, "jti", json_string(jti));
}

static const struct refusal refusals[] = {
    {"wrong iss", "iss", edit_iss},
    {"no iss", "iss", edit_iss_missing},
    {"iss a number", "iss", edit_iss_number},
    {"iss with NUL", NULL, edit_iss_nul}, /* may not even parse */
    {"sub of another client", "sub", edit_sub},
    {"no sub", "sub", edit_sub_missing},
    {"iss and sub of another client", "iss", edit_iss_sub},
    {"aud not ours", "aud", edit_aud},
    {"aud a prefix of ours", "aud", edit_aud_prefix},
    {"aud our whole list", "aud", edit_aud_both},
    {"aud empty", "aud", edit_aud_empty},
    {"aud array not ours", "aud", edit_aud_array},
    {"aud empty array", "aud", edit_aud_empty_array},
    {"aud array with a number", "aud", edit_aud_nonstring},
    {"aud an object", "aud", edit_aud_object},
    {"no aud", "aud", edit_aud_missing},
    {"expired", "expired", edit_expired},
    {"long expired", "expired", edit_long_expired},
    {"exp too far", "assertion lives too long", edit_too_long},
    {"exp at INT64_MAX", "assertion lives too long", edit_far_future},
    {"no exp", "exp", edit_exp_missing},
    {"exp a string", "exp", edit_exp_string},
    {"exp a real", "exp", edit_exp_real},
    {"nbf in the future", "nbf", edit_nbf},
    {"nbf a string", "nbf", edit_nbf_string},
    {"iat in the future", "iat", edit_iat},
    {"no jti", "jti", edit_jti_missing},
    {"empty jti", "jti", edit_jti_empty},
    {"jti a number", "jti", edit_jti_number},
    {"jti of 257 characters", "jti", edit_jti_long},
};

static void test_jwt_claims_refused(void **state)
{
    struct fx *fx = *state;
    for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
        json_t *claims = claims_for(CLIENT, "refused");
        refusals[i].edit(claims);
        char *jws = sign(fx->alg->key, claims);
        expect_denied(fx, auth_jwt(fx, &fx->client, jws), refusals[i].reason, jws,
                      refusals[i].what);
        free(jws);
    }
    /* None of those used up the jti they carried. */
    char *jws = sign(fx->alg->key, claims_for(CLIENT, "refused"));
    expect_rc(MANDATE_OK, auth_jwt(fx, &fx->client, jws), &fx->err, "jti still free");
    free(jws);

    /* A jti of 256 characters is fine. */
    char jti[257];
    memset(jti, 'j', 256);
    jti[256] = '\0';
    jws = sign(fx->alg->key, claims_for(CLIENT, jti));
    expect_rc(MANDATE_OK, auth_jwt(fx, &fx->client, jws), &fx->err, "jti of 256");
    free(jws);
}

static void test_jwt_lifetime_conf(void **state)
{
    struct fx *fx = *state;
    void *inst = inst_new();
    assert_int_equal(fake_conf_set(P, inst, "assertion_max_lifetime", "60"), 0);
    assert_int_equal(fake_conf_set(P, inst, "clock_skew", "0"), 0);
    inst_start(inst);
    mandate_credential cred = {
        .auth_method = "private_key_jwt", .client_id = CLIENT, .audience = AUDIENCE};

    json_t *claims = claims_for(CLIENT, "life-1");
    json_object_set_new(claims, "exp", json_integer(NOW + 61));
    char *jws = sign(fx->alg->key, claims);
    cred.assertion = jws;
    assert_int_equal(OPS->authenticate_client(inst, fx->pool, &cred, &fx->client, &fx->err),
                     MANDATE_DENIED);
    assert_non_null(strstr(fx->err.message, "assertion lives too long"));
    free(jws);

    claims = claims_for(CLIENT, "life-2");
    json_object_set_new(claims, "exp", json_integer(NOW));
    jws = sign(fx->alg->key, claims);
    cred.assertion = jws;
    assert_int_equal(OPS->authenticate_client(inst, fx->pool, &cred, &fx->client, &fx->err),
                     MANDATE_DENIED);
    free(jws);

    claims = claims_for(CLIENT, "life-3");
    json_object_set_new(claims, "exp", json_integer(NOW + 60));
    jws = sign(fx->alg->key, claims);
    cred.assertion = jws;
    assert_int_equal(OPS->authenticate_client(inst, fx->pool, &cred, &fx->client, &fx->err),
                     MANDATE_OK);
    free(jws);
    fake_instance_free(P, &inst);
}

static mandate_rc tempfail_replay(const mandate_host *host, const char *ns, const char *id,
                                  int64_t expires_at, mandate_error *err)
{
    return mandate_error_set(err, MANDATE_TEMPFAIL, "store unreachable");
}

static mandate_rc error_replay(const mandate_host *host, const char *ns, const char *id,
                               int64_t expires_at, mandate_error *err)
{
    return mandate_error_set(err, MANDATE_ERROR, "store broken");
}

static char seen_ns[64], seen_id[512];
static int64_t seen_expires;
static mandate_rc (*real_replay)(const mandate_host *, const char *, const char *, int64_t,
                                 mandate_error *);

static mandate_rc spy_replay(const mandate_host *host, const char *ns, const char *id,
                             int64_t expires_at, mandate_error *err)
{
    snprintf(seen_ns, sizeof(seen_ns), "%s", ns);
    snprintf(seen_id, sizeof(seen_id), "%s", id);
    seen_expires = expires_at;
    return real_replay(host, ns, id, expires_at, err);
}

static void test_jwt_replay(void **state)
{
    struct fx *fx = *state;
    mandate_host *host = fake_host_get();
    EVP_PKEY *key = fx->alg->key;

    char *jws = sign(key, claims_for(CLIENT, "once"));
    real_replay = host->replay_claim;
    host->replay_claim = spy_replay;
    mandate_rc rc = auth_jwt(fx, &fx->client, jws);
    host->replay_claim = real_replay;
    expect_rc(MANDATE_OK, rc, &fx->err, "first use");
    assert_string_equal(seen_ns, "client-assertion");
    assert_string_equal(seen_id, CLIENT ":once");
    assert_int_equal(seen_expires, NOW + 60 + 30);

    expect_denied(fx, auth_jwt(fx, &fx->client, jws), "client assertion replayed", jws,
                  "second use");
    /* Still refused a little later, while it could pass the exp check. */
    fake_host_set_now(NOW + 80);
    expect_denied(fx, auth_jwt(fx, &fx->client, jws), "replayed", jws, "later");
    fake_host_set_now(NOW);
    free(jws);

    jws = sign(key, claims_for(CLIENT, "twice"));
    expect_rc(MANDATE_OK, auth_jwt(fx, &fx->client, jws), &fx->err, "another jti");
    free(jws);

    /* The same jti from another client is that client's own. */
    mandate_client other = fx->client;
    other.client_id = "agent-2";
    jws = sign(key, claims_for("agent-2", "once"));
    expect_rc(MANDATE_OK, auth_jwt(fx, &other, jws), &fx->err, "other client, same jti");
    free(jws);

    /* Replay cache failures pass through; the assertion stays unused. */
    jws = sign(key, claims_for(CLIENT, "store-down"));
    host->replay_claim = tempfail_replay;
    rc = auth_jwt(fx, &fx->client, jws);
    host->replay_claim = real_replay;
    expect_rc(MANDATE_TEMPFAIL, rc, &fx->err, "tempfail");
    host->replay_claim = error_replay;
    rc = auth_jwt(fx, &fx->client, jws);
    host->replay_claim = real_replay;
    expect_rc(MANDATE_ERROR, rc, &fx->err, "error");
    expect_rc(MANDATE_OK, auth_jwt(fx, &fx->client, jws), &fx->err, "store back");
    free(jws);
}

static void test_jwt_wrong_key(void **state)
{
    struct fx *fx = *state;
    /* Another key of the same type: a bad signature. */
    char *jws = sign(fx->alg->other, claims_for(CLIENT, "k-1"));
    expect_denied(fx, auth_jwt(fx, &fx->client, jws), NULL, jws, "other key");
    free(jws);

    /* A key of each other type: an alg that does not fit the key. */
    for (size_t i = 0; i < N_ALGS; i++) {
        if (&algs[i] == fx->alg)
            continue;
        jws = sign(algs[i].key, claims_for(CLIENT, "k-2"));
        expect_denied(fx, auth_jwt(fx, &fx->client, jws), NULL, jws, algs[i].name);
        free(jws);
    }

    /* The right header and claims with a signature taken from another
     * token. */
    char *good = sign(fx->alg->key, claims_for(CLIENT, "k-3"));
    char *forged_src = sign(fx->alg->key, claims_for(CLIENT, "k-4"));
    char *dot = strrchr(good, '.');
    const char *sig = strrchr(forged_src, '.');
    assert_non_null(dot);
    assert_non_null(sig);
    *dot = '\0';
    char *forged = join3(good, sig + 1);
    expect_denied(fx, auth_jwt(fx, &fx->client, forged), NULL, forged, "spliced signature");
    free(forged);
    free(good);
    free(forged_src);

    /* The key is fine but the stored PEM is not: a store fault. */
    char *jws2 = sign(fx->alg->key, claims_for(CLIENT, "k-5"));
    mandate_client c = fx->client;
    c.public_key = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
    expect_rc(MANDATE_ERROR, auth_jwt(fx, &c, jws2), &fx->err, "bad PEM");
    free(jws2);
}

static void test_jwt_alg_none(void **state)
{
    struct fx *fx = *state;
    const char *names[] = {"none", "None", "NONE"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char *input = signing_input(json_pack("{s:s, s:s}", "alg", names[i], "typ", "JWT"),
                                    claims_for(CLIENT, "none"));
        char *token = join3(input, "");
        expect_denied(fx, auth_jwt(fx, &fx->client, token), NULL, token, names[i]);
        free(token);
        /* With a signature of the right key pasted on. */
        char *real = sign(fx->alg->key, claims_for(CLIENT, "none"));
        token = join3(input, strrchr(real, '.') + 1);
        expect_denied(fx, auth_jwt(fx, &fx->client, token), NULL, token, "none + sig");
        free(token);
        free(real);
        free(input);
    }
}

static void test_jwt_hs256(void **state)
{
    struct fx *fx = *state;
    const char *pem = fx->alg->pem;
    char *token = hs256_with(pem, strlen(pem), "hs-1");
    expect_denied(fx, auth_jwt(fx, &fx->client, token), NULL, token, "HS256 over the PEM");
    free(token);

    unsigned char *der = NULL;
    int der_len = i2d_PUBKEY(fx->alg->key, &der);
    assert_true(der_len > 0);
    token = hs256_with(der, (size_t)der_len, "hs-2");
    OPENSSL_free(der);
    expect_denied(fx, auth_jwt(fx, &fx->client, token), NULL, token, "HS256 over the DER");
    free(token);
}

static void test_jwt_no_public_key(void **state)
{
    struct fx *fx = *state;
    char *jws = sign(fx->alg->key, claims_for(CLIENT, "nk"));
    mandate_client c = fx->client;
    c.public_key = NULL;
    expect_denied(fx, auth_jwt(fx, &c, jws), "no public key registered", jws, "NULL");
    c.public_key = "";
    expect_denied(fx, auth_jwt(fx, &c, jws), "no public key registered", jws, "empty");
    /* A secret-only client with a hash is still refused an assertion. */
    (void)provision(fx, &c, MANDATE_PROVISION_CREATE);
    c.public_key = NULL;
    expect_denied(fx, auth_jwt(fx, &c, jws), "no public key registered", jws, "secret only");
    free(jws);
}

static void test_jwt_garbage(void **state)
{
    struct fx *fx = *state;
    const char *bad[] = {
        "garbage",     "",
        ".",           "..",
        "a.b.c",       "a.b",
        "a.b.c.d",     "eyJhbGciOiJFUzI1NiJ9.e30.",
        "e30.e30.e30", "eyJhbGciOiJFUzI1NiJ9..",
        "!!!.@@@.###",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_denied(fx, auth_jwt(fx, &fx->client, bad[i]), NULL, NULL, bad[i]);

    /* Oversized. */
    size_t n = MANDATE_JWS_MAX_LEN + 100;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'A', n);
    big[10] = '.';
    big[20] = '.';
    big[n] = '\0';
    expect_denied(fx, auth_jwt(fx, &fx->client, big), NULL, NULL, "oversized");
    free(big);

    /* A good token with bytes after it. */
    char *jws = sign(fx->alg->key, claims_for(CLIENT, "tail"));
    size_t len = strlen(jws);
    char *tail = malloc(len + 3);
    assert_non_null(tail);
    snprintf(tail, len + 3, "%s.x", jws);
    expect_denied(fx, auth_jwt(fx, &fx->client, tail), NULL, tail, "trailing part");
    snprintf(tail, len + 3, "%sA", jws);
    expect_denied(fx, auth_jwt(fx, &fx->client, tail), NULL, tail, "trailing byte");
    free(tail);
    expect_rc(MANDATE_OK, auth_jwt(fx, &fx->client, jws), &fx->err, "untouched");
    free(jws);

    /* The core gave no audience to check against: its fault, not the
     * client's. */
    jws = sign(fx->alg->key, claims_for(CLIENT, "noaud"));
    mandate_credential cred = {.auth_method = "private_key_jwt",
                               .client_id = CLIENT,
                               .assertion = jws,
                               .audience = NULL};
    assert_int_equal(OPS->authenticate_client(fx->inst, fx->pool, &cred, &fx->client, &fx->err),
                     MANDATE_ERROR);
    cred.audience = "  ";
    assert_int_equal(OPS->authenticate_client(fx->inst, fx->pool, &cred, &fx->client, &fx->err),
                     MANDATE_ERROR);
    free(jws);
}

/* --- the fake host's replay cache -------------------------------------------------------- */

#define THREADS 8
#define IDS 50

struct claimer {
    pthread_barrier_t *barrier;
    int wins, replays, errors;
};

static void *claimer_main(void *arg)
{
    struct claimer *c = arg;
    mandate_host *host = fake_host_get();
    pthread_barrier_wait(c->barrier);
    for (int i = 0; i < IDS; i++) {
        char id[16];
        mandate_error err = {0};
        snprintf(id, sizeof(id), "id-%d", i);
        mandate_rc rc = host->replay_claim(host, "race", id, NOW + 10, &err);
        if (rc == MANDATE_OK)
            c->wins++;
        else if (rc == MANDATE_EXISTS)
            c->replays++;
        else
            c->errors++;
    }
    return NULL;
}

static void test_fake_replay(void **state)
{
    mandate_host *host = fake_host_get();
    mandate_error err = {0};
    assert_int_equal(host->replay_claim(host, "a", "x", NOW + 10, &err), MANDATE_OK);
    assert_int_equal(host->replay_claim(host, "a", "x", NOW + 10, &err), MANDATE_EXISTS);
    assert_int_equal(host->replay_claim(host, "b", "x", NOW + 10, &err), MANDATE_OK);
    assert_int_equal(host->replay_claim(host, "a", "xy", NOW + 10, &err), MANDATE_OK);
    assert_int_equal(host->replay_claim(host, "ax", "", NOW + 10, &err), MANDATE_OK);
    assert_int_equal(host->replay_claim(host, "a", "x", NOW + 10, &err), MANDATE_EXISTS);
    fake_host_set_now(NOW + 9);
    assert_int_equal(host->replay_claim(host, "a", "x", NOW + 20, &err), MANDATE_EXISTS);
    fake_host_set_now(NOW + 10); /* expires_at <= now: gone */
    assert_int_equal(host->replay_claim(host, "a", "x", NOW + 20, &err), MANDATE_OK);
    assert_int_equal(host->replay_claim(host, "a", "x", NOW + 20, &err), MANDATE_EXISTS);
    fake_host_replay_reset();
    assert_int_equal(host->replay_claim(host, "a", "x", NOW + 20, &err), MANDATE_OK);
    assert_int_equal(host->replay_claim(host, NULL, "x", NOW + 20, &err), MANDATE_INVALID);
    fake_host_set_now(NOW);
    fake_host_replay_reset();

    pthread_t threads[THREADS];
    struct claimer claimers[THREADS];
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, THREADS);
    for (int i = 0; i < THREADS; i++) {
        claimers[i] = (struct claimer){.barrier = &barrier};
        assert_int_equal(pthread_create(&threads[i], NULL, claimer_main, &claimers[i]), 0);
    }
    int wins = 0, replays = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(claimers[i].errors, 0);
        wins += claimers[i].wins;
        replays += claimers[i].replays;
    }
    pthread_barrier_destroy(&barrier);
    assert_int_equal(wins, IDS);
    assert_int_equal(replays, (THREADS - 1) * IDS);
}

/* --- cost, reported and not asserted ------------------------------------------------------ */

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static void test_cost(void **state)
{
    struct fx *fx = *state;
    mandate_client c = fx->client;
    char *secret = provision(fx, &c, MANDATE_PROVISION_CREATE);
    size_t len = strlen(secret);
    const int rounds = 100000;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < rounds; i++)
        if (auth_secret(fx, &c, secret, len) != MANDATE_OK)
            fail_msg("round %d: %s", i, fx->err.message);
    double s = seconds_since(&t0);
    print_message("[ COST     ] secret verification: %.2f us each (%d in %.3f s)%s\n",
                  s * 1e6 / rounds, rounds, s,
#ifdef __SANITIZE_ADDRESS__
                  " [sanitizer build: not representative]"
#else
                  ""
#endif
    );

    for (size_t a = 0; a < N_ALGS; a++) {
        mandate_client jc = fx->client;
        jc.public_key = algs[a].pem;
        const int n = 200;
        char **tokens = calloc(n, sizeof(*tokens));
        assert_non_null(tokens);
        for (int i = 0; i < n; i++) {
            char jti[32];
            snprintf(jti, sizeof(jti), "cost-%zu-%d", a, i);
            tokens[i] = sign(algs[a].key, claims_for(CLIENT, jti));
        }
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int i = 0; i < n; i++)
            if (auth_jwt(fx, &jc, tokens[i]) != MANDATE_OK)
                fail_msg("%s %d: %s", algs[a].name, i, fx->err.message);
        s = seconds_since(&t0);
        print_message("[ COST     ] private_key_jwt %s: %.1f us each (%d)\n", algs[a].name,
                      s * 1e6 / n, n);
        for (int i = 0; i < n; i++)
            free(tokens[i]);
        free(tokens);
        fake_host_replay_reset();
    }
}

/* --- main --------------------------------------------------------------------------------- */

static void keys_make(void)
{
    for (size_t i = 0; i < N_ALGS; i++) {
        algs[i].key = mandate_jose_keygen(algs[i].alg);
        algs[i].other = mandate_jose_keygen(algs[i].alg);
        if (algs[i].key == NULL || algs[i].other == NULL) {
            fprintf(stderr, "keygen %s failed\n", algs[i].name);
            exit(1);
        }
        algs[i].pem = pem_of(algs[i].key);
    }
}

static void keys_free(void)
{
    for (size_t i = 0; i < N_ALGS; i++) {
        EVP_PKEY_free(algs[i].key);
        EVP_PKEY_free(algs[i].other);
        free(algs[i].pem);
    }
}

#define JWT_TESTS(i)                                                                           \
    cmocka_unit_test_prestate_setup_teardown(test_jwt_good, setup, teardown, &algs[i]),        \
        cmocka_unit_test_prestate_setup_teardown(test_jwt_claims_refused, setup, teardown,     \
                                                 &algs[i]),                                    \
        cmocka_unit_test_prestate_setup_teardown(test_jwt_lifetime_conf, setup, teardown,      \
                                                 &algs[i]),                                    \
        cmocka_unit_test_prestate_setup_teardown(test_jwt_replay, setup, teardown, &algs[i]),  \
        cmocka_unit_test_prestate_setup_teardown(test_jwt_wrong_key, setup, teardown,          \
                                                 &algs[i]),                                    \
        cmocka_unit_test_prestate_setup_teardown(test_jwt_alg_none, setup, teardown,           \
                                                 &algs[i]),                                    \
        cmocka_unit_test_prestate_setup_teardown(test_jwt_hs256, setup, teardown, &algs[i]),   \
        cmocka_unit_test_prestate_setup_teardown(test_jwt_no_public_key, setup, teardown,      \
                                                 &algs[i]),                                    \
        cmocka_unit_test_prestate_setup_teardown(test_jwt_garbage, setup, teardown, &algs[i])

int main(void)
{
    keys_make();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor),
        TEST_FX(test_provision),
        TEST_FX(test_provision_64),
        TEST_FX(test_provision_no_random),
        TEST_FX(test_secret),
        TEST_FX(test_secret_grace),
        TEST_FX(test_secret_store_fault),
        TEST_FX(test_secret_hash_unavailable),
        TEST_FX(test_other_backend),
        TEST_FX(test_no_secret_registered),
        TEST_FX(test_credential_shape),
        JWT_TESTS(0),
        JWT_TESTS(1),
        JWT_TESTS(2),
        TEST_FX(test_fake_replay),
        TEST_FX(test_cost),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    keys_free();
    return failed;
}
