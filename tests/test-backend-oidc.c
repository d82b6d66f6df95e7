/* The oidc backend, linked in directly and driven through its descriptor
 * with the fake host (its clock, its replay cache). The provider is played
 * by a libmicrohttpd server on 127.0.0.1: an OpenID Connect discovery
 * document (whose issuer a test may change) and a JWKS of keys made here
 * (which a test may change, slow down or break), each request counted. The
 * tokens are signed here with the JOSE helpers; the forgeries (alg none,
 * HS256 keyed with the public key) are put together by hand. Each case says
 * what must come back: an identity, MANDATE_NEXT, or a refusal whose reason
 * holds the given words. */
#include "config.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include <jansson.h>
#include <microhttpd.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <mandate/backend.h>

#include "fake-host.h"
#include "jose.h"
#include "pool-private.h"

extern const mandate_plugin mandate_plugin_oidc;

#define P (&mandate_plugin_oidc)
#define OPS ((const mandate_backend_ops *)mandate_plugin_oidc.ops)

#define ID_TOKEN "urn:ietf:params:oauth:token-type:id_token"
#define JWT "urn:ietf:params:oauth:token-type:jwt"
#define ID_JAG "urn:ietf:params:oauth:token-type:id-jag"
#define SAML2 "urn:ietf:params:oauth:token-type:saml2"
#define JAG_TYP "oauth-id-jag+jwt"

#define T0 1800000000
#define AUD "api://mandate"
#define AUD2 "0b5c7f3e-client"
#define BROKER "https://mandate.example.com" /* an ID-JAG's audience */
#define AUDIENCES AUD " " AUD2 " " BROKER
#define MAX_KEYS 4

static EVP_PKEY *es_key, *rs_key, *ed_key, *rogue_key;

/* --- the provider ---------------------------------------------------------------- */

typedef struct fixture {
    struct MHD_Daemon *mhd;
    char base[64];
    pthread_mutex_t lock; /* guards the fields below it */
    char disc_issuer[128];
    EVP_PKEY *keys[MAX_KEYS];
    const char *kids[MAX_KEYS];
    size_t n_keys;
    int jwks_status;
    int jwks_delay_ms;
    atomic_int disc_requests, jwks_requests;

    void *inst; /* the default instance */
    mandate_pool *pool;
    unsigned jti_seq;
} fixture;

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, char *body)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_COPY);
    free(body);
    MHD_add_response_header(resp, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static char *dump(json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return text;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *upload_data,
                               size_t *upload_data_size, void **con_cls)
{
    fixture *fx = cls;
    if (strcmp(method, "GET") != 0)
        return reply(conn, 405, strdup("{}"));
    if (strcmp(url, "/tenant/.well-known/openid-configuration") == 0) {
        atomic_fetch_add(&fx->disc_requests, 1);
        char jwks_uri[128];
        snprintf(jwks_uri, sizeof(jwks_uri), "%s/tenant/keys", fx->base);
        pthread_mutex_lock(&fx->lock);
        json_t *doc = json_pack("{s:s,s:s,s:[s]}", "issuer", fx->disc_issuer, "jwks_uri",
                                jwks_uri, "id_token_signing_alg_values_supported", "RS256");
        pthread_mutex_unlock(&fx->lock);
        return reply(conn, 200, dump(doc));
    }
    if (strcmp(url, "/tenant/keys") == 0) {
        atomic_fetch_add(&fx->jwks_requests, 1);
        /* besides the published keys: a symmetric key and an encryption
         * key, which must be skipped */
        json_t *keys =
            json_pack("[{s:s,s:s,s:s}]", "kty", "oct", "k", "c2VjcmV0", "kid", "sym");
        json_t *enc = mandate_jwk_from_key(rogue_key, "enc");
        json_object_set_new(enc, "use", json_string("enc"));
        json_array_append_new(keys, enc);
        pthread_mutex_lock(&fx->lock);
        for (size_t i = 0; i < fx->n_keys; i++)
            json_array_append_new(keys, mandate_jwk_from_key(fx->keys[i], fx->kids[i]));
        int status = fx->jwks_status, delay = fx->jwks_delay_ms;
        pthread_mutex_unlock(&fx->lock);
        if (delay > 0)
            usleep((useconds_t)delay * 1000);
        if (status != 200) {
            json_decref(keys);
            return reply(conn, (unsigned)status, strdup("{\"error\":\"unavailable\"}"));
        }
        return reply(conn, 200, dump(json_pack("{s:o}", "keys", keys)));
    }
    return reply(conn, 404, strdup("{}"));
}

static void publish(fixture *fx, EVP_PKEY *key, const char *kid)
{
    pthread_mutex_lock(&fx->lock);
    assert_true(fx->n_keys < MAX_KEYS);
    fx->keys[fx->n_keys] = key;
    fx->kids[fx->n_keys++] = kid;
    pthread_mutex_unlock(&fx->lock);
}

static void unpublish_all(fixture *fx)
{
    pthread_mutex_lock(&fx->lock);
    fx->n_keys = 0;
    pthread_mutex_unlock(&fx->lock);
}

static void server_stop(fixture *fx)
{
    if (fx->mhd != NULL)
        MHD_stop_daemon(fx->mhd);
    fx->mhd = NULL;
}

static int jwks_requests(fixture *fx)
{
    return atomic_load(&fx->jwks_requests);
}

/* --- instances -------------------------------------------------------------------- */

/* An instance of the provider with the defaults, issuer and audiences set,
 * then key/value pairs ending in NULL. NULL when instantiate refuses, with
 * its message in err. */
static void *inst_try(fixture *fx, mandate_error *err, ...)
{
    void *inst = calloc(1, P->inst_size);
    assert_non_null(inst);
    assert_int_equal(fake_conf_defaults(P, inst), 0);
    char issuer[96];
    snprintf(issuer, sizeof(issuer), "%s/tenant", fx->base);
    assert_int_equal(fake_conf_set(P, inst, "issuer", issuer), 0);
    assert_int_equal(fake_conf_set(P, inst, "audiences", AUDIENCES), 0);
    va_list ap;
    va_start(ap, err);
    for (;;) {
        const char *key = va_arg(ap, const char *);
        if (key == NULL)
            break;
        const char *value = va_arg(ap, const char *);
        if (fake_conf_set(P, inst, key, value) != 0)
            fail_msg("fake_conf_set %s = %s", key, value);
    }
    va_end(ap);
    *err = (mandate_error){0};
    if (P->instantiate(inst, fake_host_get(), err) != MANDATE_OK) {
        P->destroy(inst);
        fake_conf_free(P, inst);
        free(inst);
        return NULL;
    }
    return inst;
}

#define INST(fx, ...)                                                                          \
    ({                                                                                         \
        mandate_error e_;                                                                      \
        void *i_ = inst_try((fx), &e_, ##__VA_ARGS__, NULL);                                   \
        if (i_ == NULL)                                                                        \
            fail_msg("instantiate: %s", e_.message);                                           \
        i_;                                                                                    \
    })

static void inst_free(void *inst)
{
    if (inst == NULL)
        return;
    P->destroy(inst);
    fake_conf_free(P, inst);
    free(inst);
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    pthread_mutex_init(&fx->lock, NULL);
    fx->jwks_status = 200;
    fake_host_set_now(T0);
    fake_host_replay_reset();

    struct sockaddr_in sin = {0};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fx->mhd =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0,
                         NULL, NULL, handler, fx, MHD_OPTION_SOCK_ADDR, &sin, MHD_OPTION_END);
    assert_non_null(fx->mhd);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(fx->mhd, MHD_DAEMON_INFO_BIND_PORT);
    assert_non_null(info);
    snprintf(fx->base, sizeof(fx->base), "http://127.0.0.1:%u", (unsigned)info->port);
    snprintf(fx->disc_issuer, sizeof(fx->disc_issuer), "%s/tenant", fx->base);
    publish(fx, es_key, "k1");
    fx->inst = INST(fx, "jwks_max_age", "3600");
    fx->pool = mandate_pool_new();
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    inst_free(fx->inst);
    server_stop(fx);
    mandate_pool_free(&fx->pool);
    pthread_mutex_destroy(&fx->lock);
    free(fx);
    fake_host_replay_reset();
    fake_host_set_now(T0);
    return 0;
}

/* --- tokens ------------------------------------------------------------------------ */

static int64_t now(void)
{
    return fake_host_get()->now(fake_host_get());
}

/* An ID token of the provider for alice, as Entra ID writes them (groups
 * nested in an object too, for the mapping rules). */
static json_t *id_claims(fixture *fx)
{
    char iss[96], jti[32];
    snprintf(iss, sizeof(iss), "%s/tenant", fx->base);
    snprintf(jti, sizeof(jti), "jti-%u", ++fx->jti_seq);
    int64_t t = now();
    return json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:s,s:s,s:[ss],s:{s:s,s:[s]}}", "iss", iss,
                     "sub", "alice-oid", "aud", AUD, "exp", (json_int_t)(t + 300), "iat",
                     (json_int_t)t, "nbf", (json_int_t)t, "auth_time", (json_int_t)(t - 60),
                     "jti", jti, "email", "alice@example.com", "groups", "advisors", "emea",
                     "org", "dept", "wealth", "roles", "Advisor");
}

/* An ID-JAG for agent-1, addressed to the broker. */
static json_t *jag_claims(fixture *fx)
{
    json_t *c = id_claims(fx);
    json_object_set_new(c, "aud", json_string(BROKER));
    json_object_set_new(c, "client_id", json_string("agent-1"));
    json_object_set_new(c, "scope", json_string("mcp:call"));
    json_object_set_new(c, "resource", json_string("https://mcp.example/calendar"));
    return c;
}

/* Signs claims (stolen). */
static char *sign(EVP_PKEY *key, const char *kid, const char *typ, json_t *claims)
{
    char *token = mandate_jws_sign(key, kid, typ, claims);
    json_decref(claims);
    assert_non_null(token);
    return token;
}

/* Claims with one member set (value stolen) or, value NULL, removed. */
static json_t *with(json_t *claims, const char *name, json_t *value)
{
    if (value != NULL)
        json_object_set_new(claims, name, value);
    else
        json_object_del(claims, name);
    return claims;
}

static mandate_rc validate(fixture *fx, void *inst, const char *type, const char *token,
                           mandate_identity *id, mandate_error *err)
{
    *id = (mandate_identity){0};
    *err = (mandate_error){0};
    return OPS->validate_assertion(inst, fx->pool, type, token, strlen(token), id, err);
}

/* MANDATE_NEXT with no reason: not the instance's token at all */
static void expect_silent_next(fixture *fx, void *inst, const char *type, const char *token)
{
    mandate_identity id;
    mandate_error err;
    assert_int_equal(validate(fx, inst, type, token, &id, &err), MANDATE_NEXT);
    assert_string_equal(err.message, "");
    assert_null(id.subject);
}

static void expect_rc(fixture *fx, void *inst, const char *type, const char *token,
                      mandate_rc want, const char *words)
{
    mandate_identity id;
    mandate_error err;
    mandate_rc rc = validate(fx, inst, type, token, &id, &err);
    if (rc != want || (words != NULL && strstr(err.message, words) == NULL))
        fail_msg("rc %d (want %d): \"%s\" (want \"%s\")", rc, want, err.message,
                 words != NULL ? words : "");
    if (rc != MANDATE_OK)
        assert_null(id.subject);
    print_message("    %-8d %s\n", rc, err.message);
}

/* Signs claims with k1 and expects the refusal. */
static void expect_claims(fixture *fx, const char *type, const char *typ, json_t *claims,
                          mandate_rc want, const char *words)
{
    char *t = sign(es_key, "k1", typ, claims);
    expect_rc(fx, fx->inst, type, t, want, words);
    free(t);
}

static const char *status_of(void *inst, mandate_pool *pool, const char **detail)
{
    *detail = NULL;
    const char *state = OPS->status(inst, pool, detail);
    assert_non_null(state);
    assert_non_null(*detail);
    print_message("    status %s: %s\n", state, *detail);
    return state;
}

static char *b64url_of(const char *text)
{
    size_t len = strlen(text);
    char *out = malloc(mandate_b64url_encoded_len(len) + 1);
    assert_non_null(out);
    mandate_b64url_encode((const unsigned char *)text, len, out);
    return out;
}

/* --- accepted ------------------------------------------------------------------------ */

static void test_good_id_token(void **state)
{
    fixture *fx = *state;
    assert_int_equal(jwks_requests(fx), 0); /* instantiate fetched nothing */
    char *t = sign(es_key, "k1", "JWT", id_claims(fx));
    mandate_identity id;
    mandate_error err;
    mandate_rc rc = validate(fx, fx->inst, ID_TOKEN, t, &id, &err);
    if (rc != MANDATE_OK)
        fail_msg("rc %d: %s", rc, err.message);
    char iss[96];
    snprintf(iss, sizeof(iss), "%s/tenant", fx->base);
    assert_string_equal(id.issuer, iss);
    assert_string_equal(id.subject, "alice-oid");
    assert_null(id.tenant);
    assert_string_equal(id.assertion_id, "jti-1");
    assert_int_equal(id.authn_instant, T0 - 60);
    assert_int_equal(id.expires_at, T0 + 300);
    json_error_t jerr;
    json_t *attrs = json_loads(id.attributes, 0, &jerr);
    assert_non_null(attrs);
    assert_string_equal(json_string_value(json_object_get(attrs, "email")),
                        "alice@example.com");
    assert_string_equal(json_string_value(json_array_get(json_object_get(attrs, "groups"), 1)),
                        "emea");
    const json_t *org = json_object_get(attrs, "org");
    assert_string_equal(json_string_value(json_object_get(org, "dept")), "wealth");
    assert_string_equal(json_string_value(json_array_get(json_object_get(org, "roles"), 0)),
                        "Advisor");
    json_decref(attrs);
    assert_int_equal(atomic_load(&fx->disc_requests), 1);
    assert_int_equal(jwks_requests(fx), 1);
    /* the same token again: no fetch, no replay check for ID tokens */
    expect_rc(fx, fx->inst, ID_TOKEN, t, MANDATE_OK, NULL);
    assert_int_equal(jwks_requests(fx), 1);
    free(t);

    /* no jti, no auth_time, aud as an array with our client as azp; RS256;
     * EdDSA */
    publish(fx, rs_key, "k2");
    publish(fx, ed_key, "k3");
    json_t *c = id_claims(fx);
    json_object_del(c, "jti");
    json_object_del(c, "auth_time");
    with(c, "aud", json_pack("[ss]", AUD2, "https://graph.example"));
    with(c, "azp", json_string(AUD2));
    t = sign(rs_key, "k2", "JWT", c);
    fake_host_set_now(T0 + 10); /* past min_refetch_interval: the new keys come */
    rc = validate(fx, fx->inst, ID_TOKEN, t, &id, &err);
    if (rc != MANDATE_OK)
        fail_msg("rc %d: %s", rc, err.message);
    assert_null(id.assertion_id);
    assert_int_equal(id.authn_instant, 0);
    free(t);
    t = sign(ed_key, "k3", NULL, id_claims(fx));
    expect_rc(fx, fx->inst, ID_TOKEN, t, MANDATE_OK, NULL);
    free(t);
    assert_int_equal(jwks_requests(fx), 2);
    assert_int_equal(atomic_load(&fx->disc_requests), 1); /* discovery read once */
}

static void test_good_jwt_access_token(void **state)
{
    fixture *fx = *state;
    json_t *c = with(id_claims(fx), "aud", json_string(AUD2));
    with(c, "scp", json_string("user_impersonation"));
    with(c, "client_id", json_string("upstream-app"));
    char *t = sign(es_key, "k1", "at+jwt", c);
    mandate_identity id;
    mandate_error err;
    mandate_rc rc = validate(fx, fx->inst, JWT, t, &id, &err);
    if (rc != MANDATE_OK)
        fail_msg("rc %d: %s", rc, err.message);
    assert_string_equal(id.subject, "alice-oid");
    assert_int_equal(id.expires_at, T0 + 300);
    assert_non_null(strstr(id.attributes, "\"scp\":\"user_impersonation\""));
    /* RFC 9068: an access token never passes for an id_token */
    expect_rc(fx, fx->inst, ID_TOKEN, t, MANDATE_DENIED, "at+jwt marks an access token");
    free(t);
    /* and an RFC 7523 bearer assertion, typ JWT */
    t = sign(es_key, "k1", "JWT", with(id_claims(fx), "aud", json_string(BROKER)));
    expect_rc(fx, fx->inst, JWT, t, MANDATE_OK, NULL);
    free(t);
}

static void test_fixed_jwks_uri(void **state)
{
    fixture *fx = *state;
    char uri[128];
    snprintf(uri, sizeof(uri), "%s/tenant/keys", fx->base);
    void *inst = INST(fx, "jwks_uri", uri);
    char *t = sign(es_key, "k1", "JWT", id_claims(fx));
    expect_rc(fx, inst, ID_TOKEN, t, MANDATE_OK, NULL);
    assert_int_equal(atomic_load(&fx->disc_requests), 0);
    assert_int_equal(jwks_requests(fx), 1);
    free(t);
    inst_free(inst);
}

/* --- not ours ---------------------------------------------------------------------------- */

static void test_next(void **state)
{
    fixture *fx = *state;
    /* another issuer: another instance's, without a fetch */
    char *t = sign(es_key, "k1", "JWT",
                   with(id_claims(fx), "iss", json_string("https://login.other.example")));
    expect_silent_next(fx, fx->inst, ID_TOKEN, t);
    free(t);
    /* the issuer with a trailing slash is another issuer */
    char iss[96];
    snprintf(iss, sizeof(iss), "%s/tenant/", fx->base);
    t = sign(es_key, "k1", "JWT", with(id_claims(fx), "iss", json_string(iss)));
    expect_silent_next(fx, fx->inst, ID_TOKEN, t);
    free(t);
    /* not a JWT, or no iss */
    expect_silent_next(fx, fx->inst, ID_TOKEN, "an-opaque-token");
    t = sign(es_key, "k1", "JWT", with(id_claims(fx), "iss", NULL));
    expect_silent_next(fx, fx->inst, ID_TOKEN, t);
    free(t);
    /* a kind the instance does not accept, or a type it does not know */
    t = sign(es_key, "k1", JAG_TYP, jag_claims(fx));
    expect_rc(fx, fx->inst, ID_JAG, t, MANDATE_NEXT, "does not accept id-jag");
    free(t);
    void *only_jwt = INST(fx, "accept", "jwt");
    t = sign(es_key, "k1", "JWT", id_claims(fx));
    expect_rc(fx, only_jwt, ID_TOKEN, t, MANDATE_NEXT, "does not accept id_token");
    expect_silent_next(fx, only_jwt, SAML2, t);
    free(t);
    /* the reason says what else is wrong with a token of this issuer, for
     * the core to report when no backend takes it; a token of another
     * issuer is passed on without a word */
    t = sign(es_key, "k1", JAG_TYP, jag_claims(fx));
    expect_rc(fx, only_jwt, ID_TOKEN, t, MANDATE_NEXT, "(accept: jwt); its typ " JAG_TYP);
    free(t);
    json_t *c = id_claims(fx);
    char *text = json_dumps(c, JSON_COMPACT);
    json_decref(c);
    char *h = b64url_of("{\"alg\":\"none\",\"kid\":\"k1\"}"), *p = b64url_of(text);
    char none[4096];
    snprintf(none, sizeof(none), "%s.%s.", h, p);
    expect_rc(fx, only_jwt, ID_TOKEN, none, MANDATE_NEXT, "malformed: JWS: alg \"none\"");
    free(h);
    free(p);
    free(text);
    t = sign(es_key, "k1", "JWT",
             with(id_claims(fx), "iss", json_string("https://login.other.example")));
    expect_silent_next(fx, only_jwt, ID_TOKEN, t);
    free(t);
    inst_free(only_jwt);
    assert_int_equal(jwks_requests(fx), 0);
    assert_int_equal(atomic_load(&fx->disc_requests), 0);
}

/* --- claims --------------------------------------------------------------------------- */

static void test_audience(void **state)
{
    fixture *fx = *state;
    expect_claims(fx, ID_TOKEN, "JWT", with(id_claims(fx), "aud", json_string("api://other")),
                  MANDATE_DENIED, "aud names none");
    expect_claims(fx, ID_TOKEN, "JWT", with(id_claims(fx), "aud", NULL), MANDATE_DENIED,
                  "no aud");
    expect_claims(fx, ID_TOKEN, "JWT", with(id_claims(fx), "aud", json_integer(7)),
                  MANDATE_DENIED, "aud");
    expect_claims(fx, ID_TOKEN, "JWT",
                  with(id_claims(fx), "aud", json_pack("[ss]", "api://x", "api://y")),
                  MANDATE_DENIED, "aud names none");
    /* several audiences: azp is required, and must be authorized */
    expect_claims(fx, ID_TOKEN, "JWT",
                  with(id_claims(fx), "aud", json_pack("[ss]", AUD, "api://other")),
                  MANDATE_DENIED, "no azp");
    json_t *c = with(id_claims(fx), "aud", json_pack("[ss]", AUD, "api://other"));
    expect_claims(fx, ID_TOKEN, "JWT", with(c, "azp", json_string("api://other")),
                  MANDATE_DENIED, "not an authorized party");
    /* a single aud with a foreign azp is refused as well */
    expect_claims(fx, ID_TOKEN, "JWT", with(id_claims(fx), "azp", json_string("evil-app")),
                  MANDATE_DENIED, "azp \"evil-app\"");
    expect_claims(fx, ID_TOKEN, "JWT", with(id_claims(fx), "azp", json_integer(1)),
                  MANDATE_DENIED, "azp");
    c = with(id_claims(fx), "aud", json_pack("[ss]", AUD, "api://other"));
    expect_claims(fx, ID_TOKEN, "JWT", with(c, "azp", json_string(AUD)), MANDATE_OK, NULL);
    /* authorized_parties set: another list than audiences */
    void *inst = INST(fx, "authorized_parties", "cli-app");
    c = with(id_claims(fx), "aud", json_pack("[ss]", AUD, "cli-app"));
    char *t = sign(es_key, "k1", "JWT", with(c, "azp", json_string("cli-app")));
    expect_rc(fx, inst, ID_TOKEN, t, MANDATE_OK, NULL);
    expect_rc(fx, fx->inst, ID_TOKEN, t, MANDATE_DENIED, "not an authorized party");
    free(t);
    inst_free(inst);
}

static void test_times(void **state)
{
    fixture *fx = *state;
    /* clock_skew 60: exp must be > now - 60 */
    expect_claims(fx, ID_TOKEN, "JWT", with(id_claims(fx), "exp", json_integer(T0 - 60)),
                  MANDATE_DENIED, "expired 60 s ago");
    expect_claims(fx, ID_TOKEN, "JWT", with(id_claims(fx), "exp", json_integer(T0 - 59)),
                  MANDATE_OK, NULL);
    expect_claims(fx, ID_TOKEN, "JWT", with(id_claims(fx), "exp", NULL), MANDATE_DENIED,
                  "no exp");
    expect_claims(fx, ID_TOKEN, "JWT", with(id_claims(fx), "exp", json_string("soon")),
                  MANDATE_DENIED, "NumericDate");
    expect_claims(fx, ID_TOKEN, "JWT", with(id_claims(fx), "exp", json_integer(-5)),
                  MANDATE_DENIED, "NumericDate");
    expect_claims(fx, ID_TOKEN, "JWT", with(id_claims(fx), "exp", json_real(T0 + 10.5)),
                  MANDATE_OK, NULL);
    expect_claims(fx, ID_TOKEN, "JWT", with(id_claims(fx), "nbf", json_integer(T0 + 61)),
                  MANDATE_DENIED, "not valid before");
    expect_claims(fx, ID_TOKEN, "JWT", with(id_claims(fx), "nbf", json_integer(T0 + 60)),
                  MANDATE_OK, NULL);
    expect_claims(fx, ID_TOKEN, "JWT", with(id_claims(fx), "iat", json_integer(T0 + 61)),
                  MANDATE_DENIED, "in the future");
    expect_claims(fx, ID_TOKEN, "JWT", with(id_claims(fx), "auth_time", json_string("x")),
                  MANDATE_DENIED, "auth_time");
    /* a token that was good goes bad as the clock moves */
    char *t = sign(es_key, "k1", "JWT", id_claims(fx));
    expect_rc(fx, fx->inst, ID_TOKEN, t, MANDATE_OK, NULL);
    fake_host_set_now(T0 + 360);
    expect_rc(fx, fx->inst, ID_TOKEN, t, MANDATE_DENIED, "expired");
    free(t);
}

static void test_subject_and_issuer(void **state)
{
    fixture *fx = *state;
    expect_claims(fx, ID_TOKEN, "JWT", with(id_claims(fx), "sub", NULL), MANDATE_DENIED,
                  "no sub");
    expect_claims(fx, ID_TOKEN, "JWT", with(id_claims(fx), "sub", json_string("")),
                  MANDATE_DENIED, "no sub");
    expect_claims(fx, ID_TOKEN, "JWT", with(id_claims(fx), "sub", json_integer(42)),
                  MANDATE_DENIED, "not a string");
    expect_claims(fx, ID_TOKEN, "JWT", with(id_claims(fx), "jti", json_integer(42)),
                  MANDATE_DENIED, "not a string");
}

/* --- the header and the signature --------------------------------------------------------- */

static void test_forgeries(void **state)
{
    fixture *fx = *state;
    char *good = sign(es_key, "k1", "JWT", id_claims(fx));
    expect_rc(fx, fx->inst, ID_TOKEN, good, MANDATE_OK, NULL);
    const char *payload = strchr(good, '.') + 1;
    int plen = (int)(strrchr(good, '.') - payload);
    char buf[8192];

    /* alg none, with no signature and with the good one */
    char *h = b64url_of("{\"alg\":\"none\",\"typ\":\"JWT\",\"kid\":\"k1\"}");
    snprintf(buf, sizeof(buf), "%s.%.*s.", h, plen, payload);
    expect_rc(fx, fx->inst, ID_TOKEN, buf, MANDATE_DENIED, "alg");
    snprintf(buf, sizeof(buf), "%s.%.*s.%s", h, plen, payload, strrchr(good, '.') + 1);
    expect_rc(fx, fx->inst, ID_TOKEN, buf, MANDATE_DENIED, "alg");
    free(h);

    /* HS256 keyed with the provider's public key, as PEM */
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PUBKEY(bio, es_key), 1);
    char *pem;
    long pem_len = BIO_get_mem_data(bio, &pem);
    h = b64url_of("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k1\"}");
    char input[8192];
    snprintf(input, sizeof(input), "%s.%.*s", h, plen, payload);
    unsigned char mac[32];
    unsigned int mac_len = 0;
    assert_non_null(HMAC(EVP_sha256(), pem, (int)pem_len, (unsigned char *)input, strlen(input),
                         mac, &mac_len));
    char mac_b64[64];
    mandate_b64url_encode(mac, mac_len, mac_b64);
    snprintf(buf, sizeof(buf), "%s.%s", input, mac_b64);
    expect_rc(fx, fx->inst, ID_TOKEN, buf, MANDATE_DENIED, "HS256");
    free(h);
    BIO_free(bio);

    /* the right kid, another key's signature; an alg the key is not for */
    char *t = sign(rogue_key, "k1", "JWT", id_claims(fx));
    expect_rc(fx, fx->inst, ID_TOKEN, t, MANDATE_DENIED, "signature");
    free(t);
    t = sign(ed_key, "k1", "JWT", id_claims(fx));
    expect_rc(fx, fx->inst, ID_TOKEN, t, MANDATE_DENIED, "does not match the key");
    free(t);
    /* a tampered payload under the good signature */
    json_t *c = with(id_claims(fx), "sub", json_string("admin"));
    char *text = json_dumps(c, JSON_COMPACT);
    json_decref(c);
    char *p = b64url_of(text);
    free(text);
    snprintf(buf, sizeof(buf), "%.*s.%s%s", (int)(payload - good - 1), good, p,
             strrchr(good, '.'));
    free(p);
    expect_rc(fx, fx->inst, ID_TOKEN, buf, MANDATE_DENIED, "signature");
    /* the symmetric and the encryption key of the JWKS were skipped */
    t = sign(rogue_key, "enc", "JWT", id_claims(fx));
    expect_rc(fx, fx->inst, ID_TOKEN, t, MANDATE_DENIED, "has kid \"enc\"");
    free(t);
    /* garbage that names our issuer */
    char iss[96], garbage[512];
    snprintf(iss, sizeof(iss), "{\"iss\":\"%s/tenant\"}", fx->base);
    p = b64url_of(iss);
    snprintf(garbage, sizeof(garbage), "e30.%s.AAAA", p); /* header {} */
    expect_rc(fx, fx->inst, ID_TOKEN, garbage, MANDATE_DENIED, "malformed");
    snprintf(garbage, sizeof(garbage), "!!!.%s.AAAA", p);
    expect_rc(fx, fx->inst, ID_TOKEN, garbage, MANDATE_DENIED, "malformed");
    free(p);
    free(good);
}

static void test_algorithms_and_kid(void **state)
{
    fixture *fx = *state;
    /* only RS256: an ES256 token is refused before any key is fetched */
    void *inst = INST(fx, "algorithms", "RS256");
    char *t = sign(es_key, "k1", "JWT", id_claims(fx));
    expect_rc(fx, inst, ID_TOKEN, t, MANDATE_DENIED, "alg ES256 is not in algorithms");
    assert_int_equal(jwks_requests(fx), 0);
    free(t);
    inst_free(inst);
    /* no kid */
    t = sign(es_key, NULL, "JWT", id_claims(fx));
    expect_rc(fx, fx->inst, ID_TOKEN, t, MANDATE_DENIED, "no kid");
    free(t);
    assert_int_equal(jwks_requests(fx), 0);
}

/* --- keys: rotation, removal, floods, outages ------------------------------------------ */

static void test_rotation(void **state)
{
    fixture *fx = *state;
    char *t1 = sign(es_key, "k1", "JWT", id_claims(fx));
    expect_rc(fx, fx->inst, ID_TOKEN, t1, MANDATE_OK, NULL);
    assert_int_equal(jwks_requests(fx), 1);

    /* the provider rotates to k2: within min_refetch_interval of the last
     * fetch the new kid is not fetched for */
    publish(fx, rs_key, "k2");
    char *t2 = sign(rs_key, "k2", "JWT", id_claims(fx));
    fake_host_set_now(T0 + 5);
    expect_rc(fx, fx->inst, ID_TOKEN, t2, MANDATE_DENIED, "has kid \"k2\"");
    assert_int_equal(jwks_requests(fx), 1);
    /* after it: one refetch, and it verifies; k1 still does */
    fake_host_set_now(T0 + 10);
    expect_rc(fx, fx->inst, ID_TOKEN, t2, MANDATE_OK, NULL);
    expect_rc(fx, fx->inst, ID_TOKEN, t1, MANDATE_OK, NULL);
    assert_int_equal(jwks_requests(fx), 2);

    /* k1 is dropped from the JWKS; once the set is refreshed (jwks_refresh
     * 300), a token of k1 is refused, however fresh */
    unpublish_all(fx);
    publish(fx, rs_key, "k2");
    fake_host_set_now(T0 + 311);
    free(t2);
    t2 = sign(rs_key, "k2", "JWT", id_claims(fx));
    expect_rc(fx, fx->inst, ID_TOKEN, t2, MANDATE_OK, NULL);
    assert_int_equal(jwks_requests(fx), 3); /* the refresh */
    char *t3 = sign(es_key, "k1", "JWT", id_claims(fx));
    expect_rc(fx, fx->inst, ID_TOKEN, t3, MANDATE_DENIED, "has kid \"k1\"");
    assert_int_equal(jwks_requests(fx), 3); /* within the interval: no fetch */
    fake_host_set_now(T0 + 330);
    expect_rc(fx, fx->inst, ID_TOKEN, t3, MANDATE_DENIED, "has kid \"k1\"");
    assert_int_equal(jwks_requests(fx), 4); /* one look, still gone */
    free(t1);
    free(t2);
    free(t3);
}

static void test_unknown_kid_flood(void **state)
{
    fixture *fx = *state;
    char *good = sign(es_key, "k1", "JWT", id_claims(fx));
    expect_rc(fx, fx->inst, ID_TOKEN, good, MANDATE_OK, NULL);
    assert_int_equal(jwks_requests(fx), 1);
    for (int round = 1; round <= 3; round++) {
        fake_host_set_now(T0 + 10 * round);
        for (int i = 0; i < 100; i++) {
            char kid[32];
            snprintf(kid, sizeof(kid), "made-up-%d-%d", round, i);
            char *t = sign(rogue_key, kid, "JWT", id_claims(fx));
            mandate_identity id;
            mandate_error err;
            assert_int_equal(validate(fx, fx->inst, ID_TOKEN, t, &id, &err), MANDATE_DENIED);
            assert_non_null(strstr(err.message, "no key of"));
            free(t);
        }
        /* at most one fetch per min_refetch_interval (10 s) */
        assert_int_equal(jwks_requests(fx), 1 + round);
        /* and good tokens verify all along */
        expect_rc(fx, fx->inst, ID_TOKEN, good, MANDATE_OK, NULL);
    }
    assert_int_equal(atomic_load(&fx->disc_requests), 1);
    free(good);
}

static void test_provider_down(void **state)
{
    fixture *fx = *state;
    const char *detail;
    /* unknown: nothing fetched yet */
    assert_string_equal(status_of(fx->inst, fx->pool, &detail), MANDATE_BACKEND_STATE_UNKNOWN);
    assert_non_null(strstr(detail, "not fetched"));

    char *t = sign(es_key, "k1", "JWT", id_claims(fx));
    expect_rc(fx, fx->inst, ID_TOKEN, t, MANDATE_OK, NULL);
    fake_host_set_now(T0 + 12);
    assert_string_equal(status_of(fx->inst, fx->pool, &detail), MANDATE_BACKEND_STATE_OK);
    assert_non_null(strstr(detail, "keys fetched 12 s ago"));

    /* the provider goes away: the cached keys go on verifying */
    server_stop(fx);
    expect_rc(fx, fx->inst, ID_TOKEN, t, MANDATE_OK, NULL);
    /* an unknown kid cannot be checked now: try again later */
    char *t2 = sign(rs_key, "k2", "JWT", id_claims(fx));
    expect_rc(fx, fx->inst, ID_TOKEN, t2, MANDATE_TEMPFAIL, "no usable key");
    assert_string_equal(status_of(fx->inst, fx->pool, &detail), MANDATE_BACKEND_STATE_DEGRADED);
    assert_non_null(strstr(detail, "provider unreachable"));
    assert_non_null(strstr(detail, "serving keys cached 12 s ago"));
    /* past jwks_refresh: a refresh fails, the set is used on */
    fake_host_set_now(T0 + 400);
    free(t);
    t = sign(es_key, "k1", "JWT", id_claims(fx));
    expect_rc(fx, fx->inst, ID_TOKEN, t, MANDATE_OK, NULL);
    assert_string_equal(status_of(fx->inst, fx->pool, &detail), MANDATE_BACKEND_STATE_DEGRADED);
    assert_non_null(strstr(detail, "serving keys cached 400 s ago"));
    /* past jwks_max_age (3600): no key is usable, not even a known one */
    fake_host_set_now(T0 + 3600);
    free(t);
    t = sign(es_key, "k1", "JWT", id_claims(fx));
    expect_rc(fx, fx->inst, ID_TOKEN, t, MANDATE_TEMPFAIL, "past max_age");
    assert_string_equal(status_of(fx->inst, fx->pool, &detail),
                        MANDATE_BACKEND_STATE_UNAVAILABLE);
    assert_non_null(strstr(detail, "no usable keys"));
    assert_non_null(strstr(detail, "past jwks_max_age"));
    /* within min_refetch_interval, the same answer without a new attempt */
    expect_rc(fx, fx->inst, ID_TOKEN, t, MANDATE_TEMPFAIL, "not retried");
    free(t);
    free(t2);
}

static void test_provider_down_from_start(void **state)
{
    fixture *fx = *state;
    server_stop(fx);
    /* the instance was made while it was up; another one made now works
     * too: instantiate never contacts the provider */
    void *inst = INST(fx);
    char *t = sign(es_key, "k1", "JWT", id_claims(fx));
    expect_rc(fx, inst, ID_TOKEN, t, MANDATE_TEMPFAIL, "discovery");
    const char *detail;
    assert_string_equal(status_of(inst, fx->pool, &detail), MANDATE_BACKEND_STATE_UNAVAILABLE);
    assert_non_null(strstr(detail, "no usable keys: discovery"));
    free(t);
    inst_free(inst);
}

static void test_jwks_errors(void **state)
{
    fixture *fx = *state;
    char *t = sign(es_key, "k1", "JWT", id_claims(fx));
    fx->jwks_status = 503;
    expect_rc(fx, fx->inst, ID_TOKEN, t, MANDATE_TEMPFAIL, "JWKS: HTTP 503");
    fake_host_set_now(T0 + 10);
    fx->jwks_status = 200;
    unpublish_all(fx);
    expect_rc(fx, fx->inst, ID_TOKEN, t, MANDATE_TEMPFAIL, "no usable key");
    fake_host_set_now(T0 + 20);
    publish(fx, es_key, "k1");
    expect_rc(fx, fx->inst, ID_TOKEN, t, MANDATE_OK, NULL);
    /* discovery was read again after each failure: the JWKS may move */
    assert_int_equal(atomic_load(&fx->disc_requests), 3);
    free(t);
}

static void test_discovery_issuer_mismatch(void **state)
{
    fixture *fx = *state;
    snprintf(fx->disc_issuer, sizeof(fx->disc_issuer), "https://evil.example/tenant");
    char *t = sign(es_key, "k1", "JWT", id_claims(fx));
    expect_rc(fx, fx->inst, ID_TOKEN, t, MANDATE_TEMPFAIL,
              "discovery: its issuer is not the configured issuer");
    assert_int_equal(jwks_requests(fx), 0);
    const char *detail;
    assert_string_equal(status_of(fx->inst, fx->pool, &detail),
                        MANDATE_BACKEND_STATE_UNAVAILABLE);
    assert_non_null(strstr(detail, "issuer"));
    free(t);
}

typedef struct worker {
    fixture *fx;
    void *inst;
    const char *token;
    pthread_barrier_t *barrier;
    mandate_rc rc;
} worker;

static void *worker_run(void *arg)
{
    worker *w = arg;
    mandate_pool *pool = mandate_pool_new();
    mandate_identity id;
    mandate_error err = {0};
    pthread_barrier_wait(w->barrier);
    w->rc =
        OPS->validate_assertion(w->inst, pool, ID_TOKEN, w->token, strlen(w->token), &id, &err);
    mandate_pool_free(&pool);
    return NULL;
}

static void test_concurrent_first_use(void **state)
{
    fixture *fx = *state;
    fx->jwks_delay_ms = 200;
    char *t = sign(es_key, "k1", "JWT", id_claims(fx));
    pthread_t threads[8];
    worker w[8];
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, 8);
    for (size_t i = 0; i < 8; i++) {
        w[i] = (worker){.fx = fx, .inst = fx->inst, .token = t, .barrier = &barrier};
        assert_int_equal(pthread_create(&threads[i], NULL, worker_run, &w[i]), 0);
    }
    for (size_t i = 0; i < 8; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(w[i].rc, MANDATE_OK);
    }
    pthread_barrier_destroy(&barrier);
    assert_int_equal(jwks_requests(fx), 1);
    free(t);
}

/* --- ID-JAG --------------------------------------------------------------------------- */

static void test_id_jag(void **state)
{
    fixture *fx = *state;
    void *inst = INST(fx, "accept", "id_token jwt id-jag");
    char *t = sign(es_key, "k1", JAG_TYP, jag_claims(fx));
    mandate_identity id;
    mandate_error err;
    mandate_rc rc = validate(fx, inst, ID_JAG, t, &id, &err);
    if (rc != MANDATE_OK)
        fail_msg("rc %d: %s", rc, err.message);
    assert_string_equal(id.subject, "alice-oid");
    assert_non_null(id.assertion_id);
    assert_int_equal(id.expires_at, T0 + 300);
    json_t *attrs = json_loads(id.attributes, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(attrs, "client_id")), "agent-1");
    assert_string_equal(json_string_value(json_object_get(attrs, "aud")), BROKER);
    json_decref(attrs);
    /* once only */
    expect_rc(fx, inst, ID_JAG, t, MANDATE_DENIED, "replayed");
    free(t);
    /* typ in its media type form, any case */
    t = sign(es_key, "k1", "application/OAUTH-ID-JAG+JWT", jag_claims(fx));
    expect_rc(fx, inst, ID_JAG, t, MANDATE_OK, NULL);
    free(t);

    /* typ confusion, both ways */
    t = sign(es_key, "k1", JAG_TYP, jag_claims(fx));
    expect_rc(fx, inst, ID_TOKEN, t, MANDATE_DENIED, "marks an ID-JAG");
    expect_rc(fx, inst, JWT, t, MANDATE_DENIED, "marks an ID-JAG");
    free(t);
    t = sign(es_key, "k1", "JWT", jag_claims(fx));
    expect_rc(fx, inst, ID_JAG, t, MANDATE_DENIED, "must have typ " JAG_TYP);
    free(t);
    t = sign(es_key, "k1", NULL, jag_claims(fx));
    expect_rc(fx, inst, ID_JAG, t, MANDATE_DENIED, "must have typ " JAG_TYP);
    free(t);

    /* what an ID-JAG must hold */
    t = sign(es_key, "k1", JAG_TYP, with(jag_claims(fx), "jti", NULL));
    expect_rc(fx, inst, ID_JAG, t, MANDATE_DENIED, "no jti");
    free(t);
    char long_jti[300];
    memset(long_jti, 'j', sizeof(long_jti) - 1);
    long_jti[sizeof(long_jti) - 1] = '\0';
    t = sign(es_key, "k1", JAG_TYP, with(jag_claims(fx), "jti", json_string(long_jti)));
    expect_rc(fx, inst, ID_JAG, t, MANDATE_DENIED, "longer than 256");
    free(t);
    t = sign(es_key, "k1", JAG_TYP, with(jag_claims(fx), "client_id", NULL));
    expect_rc(fx, inst, ID_JAG, t, MANDATE_DENIED, "no client_id");
    free(t);
    t = sign(es_key, "k1", JAG_TYP, with(jag_claims(fx), "client_id", json_integer(3)));
    expect_rc(fx, inst, ID_JAG, t, MANDATE_DENIED, "not a string");
    free(t);
    t = sign(es_key, "k1", JAG_TYP, with(jag_claims(fx), "iat", NULL));
    expect_rc(fx, inst, ID_JAG, t, MANDATE_DENIED, "no iat");
    free(t);
    /* id_jag_max_lifetime 300: exp - iat = 301 is too long */
    t = sign(es_key, "k1", JAG_TYP, with(jag_claims(fx), "exp", json_integer(T0 + 301)));
    expect_rc(fx, inst, ID_JAG, t, MANDATE_DENIED, "id_jag_max_lifetime");
    free(t);
    t = sign(es_key, "k1", JAG_TYP, with(jag_claims(fx), "aud", json_string("https://x")));
    expect_rc(fx, inst, ID_JAG, t, MANDATE_DENIED, "aud");
    free(t);
    /* a refused ID-JAG did not use up its jti */
    json_t *c = with(jag_claims(fx), "jti", json_string("once"));
    char *bad = sign(es_key, "k1", JAG_TYP, with(json_deep_copy(c), "aud", json_string("x")));
    expect_rc(fx, inst, ID_JAG, bad, MANDATE_DENIED, "aud");
    t = sign(es_key, "k1", JAG_TYP, c);
    expect_rc(fx, inst, ID_JAG, t, MANDATE_OK, NULL);
    expect_rc(fx, inst, ID_JAG, t, MANDATE_DENIED, "replayed");
    free(bad);
    free(t);
    inst_free(inst);
}

/* --- size, configuration, descriptor --------------------------------------------------- */

static void test_oversize(void **state)
{
    fixture *fx = *state;
    void *inst = INST(fx, "max_token_size", "2048");
    char pad[3000];
    memset(pad, 'x', sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    char *t = sign(es_key, "k1", "JWT", with(id_claims(fx), "pad", json_string(pad)));
    expect_rc(fx, inst, ID_TOKEN, t, MANDATE_DENIED, "max_token_size");
    expect_rc(fx, fx->inst, ID_TOKEN, t, MANDATE_OK, NULL); /* 16384 by default */
    free(t);
    inst_free(inst);
    /* more than any JWS may be */
    size_t big = 70 * 1024;
    char *huge = malloc(big + 1);
    assert_non_null(huge);
    memset(huge, 'A', big);
    huge[10] = '.';
    huge[big - 10] = '.';
    huge[big] = '\0';
    expect_rc(fx, fx->inst, ID_TOKEN, huge, MANDATE_DENIED, "max_token_size");
    free(huge);
    expect_rc(fx, fx->inst, ID_TOKEN, "", MANDATE_DENIED, "empty");
}

static void expect_bad_config(fixture *fx, const char *key, const char *value,
                              const char *words)
{
    mandate_error err;
    void *inst = inst_try(fx, &err, key, value, NULL);
    if (inst != NULL || strstr(err.message, words) == NULL)
        fail_msg("%s = %s: %s (want \"%s\")", key, value,
                 inst != NULL ? "accepted" : err.message, words);
    assert_int_equal(err.rc, MANDATE_INVALID);
    print_message("    %-20s %-28s %s\n", key, value, err.message);
}

static void test_bad_config(void **state)
{
    fixture *fx = *state;
    expect_bad_config(fx, "algorithms", "RS256 none", "\"none\" is never accepted");
    expect_bad_config(fx, "algorithms", "HS256", "\"HS256\" is refused");
    expect_bad_config(fx, "algorithms", "ES256 HS512", "\"HS512\" is refused");
    expect_bad_config(fx, "algorithms", "PS256", "not supported");
    expect_bad_config(fx, "algorithms", "", "algorithms is empty");
    expect_bad_config(fx, "issuer", "login.example.com", "must be an https:// URL");
    expect_bad_config(fx, "issuer", "http://login.example.com/tenant", "must be https://");
    expect_bad_config(fx, "issuer", "https://", "no host");
    expect_bad_config(fx, "issuer", "https://login.example.com/t?x=1", "query");
    expect_bad_config(fx, "issuer", "", "issuer");
    expect_bad_config(fx, "audiences", "", "audiences is required");
    expect_bad_config(fx, "authorized_parties", "", "authorized_parties is empty");
    expect_bad_config(fx, "accept", "id_token saml2", "\"saml2\" is none of");
    expect_bad_config(fx, "accept", "", "accept is empty");
    expect_bad_config(fx, "jwks_uri", "ftp://keys.example", "jwks_uri");
    expect_bad_config(fx, "discovery_url", "http://idp.example/.well-known/x", "discovery_url");
    expect_bad_config(fx, "jwks_max_age", "100", "at least jwks_refresh");
    /* ranges the conf table holds: the parser refuses these already */
    void *inst = calloc(1, P->inst_size);
    assert_int_equal(fake_conf_defaults(P, inst), 0);
    assert_int_equal(fake_conf_set(P, inst, "clock_skew", "601"), -1);
    assert_int_equal(fake_conf_set(P, inst, "max_token_size", "100000"), -1);
    assert_int_equal(fake_conf_set(P, inst, "min_refetch_interval", "0"), -1);
    /* no issuer at all */
    mandate_error err = {0};
    assert_int_equal(P->instantiate(inst, fake_host_get(), &err), MANDATE_INVALID);
    assert_non_null(strstr(err.message, "issuer is required"));
    P->destroy(inst);
    fake_conf_free(P, inst);
    free(inst);
    /* good ones: a loopback http issuer is allowed (tests, local IdPs);
     * jwks_max_age 0 is no limit */
    inst = INST(fx, "jwks_max_age", "0", "algorithms", "EdDSA");
    inst_free(inst);
    assert_int_equal(jwks_requests(fx), 0);
    assert_int_equal(atomic_load(&fx->disc_requests), 0);
}

static void test_descriptor(void **state)
{
    assert_int_equal(P->magic, MANDATE_PLUGIN_MAGIC);
    assert_int_equal(P->abi_major, MANDATE_PLUGIN_ABI_MAJOR);
    assert_true(P->abi_minor >= 3);
    assert_int_equal(P->kind, MANDATE_BACKEND);
    assert_string_equal(P->name, "oidc");
    assert_true(P->flags & MANDATE_PLUGIN_BLOCKING);
    assert_null(OPS->authenticate_client);
    assert_null(OPS->provision);
    assert_non_null(OPS->validate_assertion);
    assert_non_null(OPS->status);
    assert_string_equal(OPS->assertion_types[0], ID_TOKEN);
    assert_string_equal(OPS->assertion_types[1], JWT);
    assert_string_equal(OPS->assertion_types[2], ID_JAG);
    assert_null(OPS->assertion_types[3]);
}

/* Instances made and destroyed repeatedly (as reloads do), two at once for
 * two tenants of one provider, keep working. */
static void test_reinstantiate(void **state)
{
    fixture *fx = *state;
    for (int i = 0; i < 3; i++) {
        void *a = INST(fx);
        void *b = INST(fx, "issuer", "https://login.example.com/other/v2.0");
        char *t = sign(es_key, "k1", "JWT", id_claims(fx));
        expect_rc(fx, b, ID_TOKEN, t, MANDATE_NEXT, NULL);
        expect_rc(fx, a, ID_TOKEN, t, MANDATE_OK, NULL);
        free(t);
        inst_free(a);
        inst_free(b);
    }
    assert_int_equal(jwks_requests(fx), 3);
}

static int group_setup(void **state)
{
    (void)state;
    es_key = mandate_jose_keygen(MANDATE_JWS_ES256);
    rs_key = mandate_jose_keygen(MANDATE_JWS_RS256);
    ed_key = mandate_jose_keygen(MANDATE_JWS_EDDSA);
    rogue_key = mandate_jose_keygen(MANDATE_JWS_ES256);
    return es_key && rs_key && ed_key && rogue_key ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(es_key);
    EVP_PKEY_free(rs_key);
    EVP_PKEY_free(ed_key);
    EVP_PKEY_free(rogue_key);
    fake_host_unset_now();
    return 0;
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_good_id_token),
        T(test_good_jwt_access_token),
        T(test_fixed_jwks_uri),
        T(test_next),
        T(test_audience),
        T(test_times),
        T(test_subject_and_issuer),
        T(test_forgeries),
        T(test_algorithms_and_kid),
        T(test_rotation),
        T(test_unknown_kid_flood),
        T(test_provider_down),
        T(test_provider_down_from_start),
        T(test_jwks_errors),
        T(test_discovery_issuer_mismatch),
        T(test_concurrent_first_use),
        T(test_id_jag),
        T(test_oversize),
        T(test_bad_config),
        T(test_descriptor),
        T(test_reinstantiate),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
