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

#include <sys/stat.h>

#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <mandate/backend.h>

#include "fake-host.h"
#include "jose.h"
#include "loopback-server.h"
#include "run-together.h"
#include "pool-private.h"
#include "signing-keys.h"
#include "test-helpers.h"

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

/* --- the provider ---------------------------------------------------------------- */

typedef struct fixture {
    loopback_server srv;
    /* the fields below are shared with the handler, under srv.lock */
    char disc_issuer[128];
    int jwks_status;
    int jwks_delay_ms;
    bool iss_param;     /* authorization_response_iss_parameter_supported */
    bool no_endpoints;  /* discovery without the sign-in's endpoints */
    int token_status;   /* the token endpoint's answer */
    char *token_answer; /* malloc'd; NULL: "{}" */
    char *got_body;     /* what the last token request carried: its form */
    char *got_auth;     /* its Authorization header, "" when none */
    char *got_type;     /* its Content-Type */
    atomic_int disc_requests, jwks_requests, token_requests;

    void *inst; /* the default instance */
    mandate_pool *pool;
    unsigned jti_seq;
} fixture;

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, char *body)
{
    return loopback_reply(conn, status, "application/json", body, NULL);
}

static char *dump(json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return text;
}

/* A POST body, gathered over the handler's calls. */
typedef struct upload {
    char *data;
    size_t len;
} upload;

static void upload_done(void *cls, struct MHD_Connection *conn, void **con_cls,
                        enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)conn, (void)toe;
    upload *u = *con_cls;
    if (u != NULL) {
        free(u->data);
        free(u);
        *con_cls = NULL;
    }
}

static char *dup_or_empty(const char *s)
{
    return strdup(s != NULL ? s : "");
}

/* The token endpoint: records what it was sent, answers what the test set. */
static enum MHD_Result token_endpoint(fixture *fx, struct MHD_Connection *conn,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **con_cls)
{
    upload *u = *con_cls;
    if (u == NULL) {
        *con_cls = calloc(1, sizeof(upload));
        return *con_cls != NULL ? MHD_YES : MHD_NO;
    }
    if (*upload_data_size > 0) {
        char *grown = realloc(u->data, u->len + *upload_data_size + 1);
        if (grown == NULL)
            return MHD_NO;
        memcpy(grown + u->len, upload_data, *upload_data_size);
        u->data = grown;
        u->len += *upload_data_size;
        u->data[u->len] = '\0';
        *upload_data_size = 0;
        return MHD_YES;
    }
    atomic_fetch_add(&fx->token_requests, 1);
    pthread_mutex_lock(&fx->srv.lock);
    free(fx->got_body);
    free(fx->got_auth);
    free(fx->got_type);
    fx->got_body = dup_or_empty(u->data);
    fx->got_auth = dup_or_empty(
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION));
    fx->got_type = dup_or_empty(
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE));
    unsigned status = (unsigned)fx->token_status;
    char *answer = dup_or_empty(fx->token_answer != NULL ? fx->token_answer : "{}");
    pthread_mutex_unlock(&fx->srv.lock);
    return reply(conn, status, answer);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *upload_data,
                               size_t *upload_data_size, void **con_cls)
{
    fixture *fx = cls;
    if (strcmp(method, "POST") == 0 && strcmp(url, "/tenant/token") == 0)
        return token_endpoint(fx, conn, upload_data, upload_data_size, con_cls);
    if (strcmp(method, "GET") != 0)
        return reply(conn, 405, strdup("{}"));
    if (strcmp(url, "/tenant/.well-known/openid-configuration") == 0) {
        atomic_fetch_add(&fx->disc_requests, 1);
        char jwks_uri[128], authorize[128], token[128];
        snprintf(jwks_uri, sizeof(jwks_uri), "%s/tenant/keys", fx->srv.base);
        snprintf(authorize, sizeof(authorize), "%s/tenant/authorize", fx->srv.base);
        snprintf(token, sizeof(token), "%s/tenant/token", fx->srv.base);
        pthread_mutex_lock(&fx->srv.lock);
        json_t *doc = json_pack("{s:s,s:s,s:[s]}", "issuer", fx->disc_issuer, "jwks_uri",
                                jwks_uri, "id_token_signing_alg_values_supported", "RS256");
        if (!fx->no_endpoints) {
            json_object_set_new(doc, "authorization_endpoint", json_string(authorize));
            json_object_set_new(doc, "token_endpoint", json_string(token));
        }
        if (fx->iss_param)
            json_object_set_new(doc, "authorization_response_iss_parameter_supported",
                                json_true());
        pthread_mutex_unlock(&fx->srv.lock);
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
        loopback_append_jwks(&fx->srv, keys);
        pthread_mutex_lock(&fx->srv.lock);
        int status = fx->jwks_status, delay = fx->jwks_delay_ms;
        pthread_mutex_unlock(&fx->srv.lock);
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
    void *inst = fake_instance_new(P);
    assert_non_null(inst);
    char issuer[96];
    snprintf(issuer, sizeof(issuer), "%s/tenant", fx->srv.base);
    assert_int_equal(fake_conf_set(P, inst, "issuer", issuer), 0);
    assert_int_equal(fake_conf_set(P, inst, "audiences", AUDIENCES), 0);
    va_list ap;
    va_start(ap, err);
    test_conf_set_pairs(fake_conf_set, P, inst, ap);
    va_end(ap);
    *err = (mandate_error){0};
    if (P->instantiate(inst, fake_host_get(), err) != MANDATE_OK)
        fake_instance_free(P, &inst); /* sets it to NULL */
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
    fake_instance_free(P, &inst);
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    fx->jwks_status = 200;
    fake_host_set_now(T0);
    fake_host_replay_reset();
    fx->token_status = 200;
    loopback_server_start(&fx->srv, handler, fx, upload_done);
    snprintf(fx->disc_issuer, sizeof(fx->disc_issuer), "%s/tenant", fx->srv.base);
    loopback_publish(&fx->srv, es_key, "k1");
    fx->inst = INST(fx, "jwks_max_age", "3600");
    fx->pool = mandate_pool_new();
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    inst_free(fx->inst);
    loopback_server_close(&fx->srv);
    mandate_pool_free(&fx->pool);
    free(fx->token_answer);
    free(fx->got_body);
    free(fx->got_auth);
    free(fx->got_type);
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
    snprintf(iss, sizeof(iss), "%s/tenant", fx->srv.base);
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
    return test_b64url(text, strlen(text));
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
    snprintf(iss, sizeof(iss), "%s/tenant", fx->srv.base);
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
    loopback_publish(&fx->srv, rs_key, "k2");
    loopback_publish(&fx->srv, ed_key, "k3");
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
    snprintf(uri, sizeof(uri), "%s/tenant/keys", fx->srv.base);
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
    snprintf(iss, sizeof(iss), "%s/tenant/", fx->srv.base);
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
    char buf[8192];

    /* alg none, with no signature and with the good one */
    char *input =
        forged_signing_input(good, "{\"alg\":\"none\",\"typ\":\"JWT\",\"kid\":\"k1\"}");
    snprintf(buf, sizeof(buf), "%s.", input);
    expect_rc(fx, fx->inst, ID_TOKEN, buf, MANDATE_DENIED, "alg");
    snprintf(buf, sizeof(buf), "%s.%s", input, strrchr(good, '.') + 1);
    expect_rc(fx, fx->inst, ID_TOKEN, buf, MANDATE_DENIED, "alg");
    free(input);

    /* HS256 keyed with the provider's public key, as PEM */
    input = forged_signing_input(good, "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k1\"}");
    char *hs = forged_hs256_token(input, es_key);
    expect_rc(fx, fx->inst, ID_TOKEN, hs, MANDATE_DENIED, "HS256");
    free(hs);
    free(input);

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
    t = forged_payload(good, text);
    free(text);
    expect_rc(fx, fx->inst, ID_TOKEN, t, MANDATE_DENIED, "signature");
    free(t);
    /* the symmetric and the encryption key of the JWKS were skipped */
    t = sign(rogue_key, "enc", "JWT", id_claims(fx));
    expect_rc(fx, fx->inst, ID_TOKEN, t, MANDATE_DENIED, "has kid \"enc\"");
    free(t);
    /* garbage that names our issuer */
    char iss[96], garbage[512];
    snprintf(iss, sizeof(iss), "{\"iss\":\"%s/tenant\"}", fx->srv.base);
    char *p = b64url_of(iss);
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
    loopback_publish(&fx->srv, rs_key, "k2");
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
    loopback_unpublish_all(&fx->srv);
    loopback_publish(&fx->srv, rs_key, "k2");
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
    loopback_server_stop(&fx->srv);
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
    loopback_server_stop(&fx->srv);
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
    loopback_unpublish_all(&fx->srv);
    expect_rc(fx, fx->inst, ID_TOKEN, t, MANDATE_TEMPFAIL, "no usable key");
    fake_host_set_now(T0 + 20);
    loopback_publish(&fx->srv, es_key, "k1");
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
    void *inst;
    const char *token;
    mandate_rc rc;
} worker;

static void worker_run(void *arg)
{
    worker *w = arg;
    mandate_pool *pool = mandate_pool_new();
    mandate_identity id;
    mandate_error err = {0};
    w->rc =
        OPS->validate_assertion(w->inst, pool, ID_TOKEN, w->token, strlen(w->token), &id, &err);
    mandate_pool_free(&pool);
}

static void test_concurrent_first_use(void **state)
{
    fixture *fx = *state;
    fx->jwks_delay_ms = 200;
    char *t = sign(es_key, "k1", "JWT", id_claims(fx));
    worker w[8];
    for (size_t i = 0; i < 8; i++)
        w[i] = (worker){.inst = fx->inst, .token = t};
    run_together(worker_run, w, 8, sizeof(w[0]));
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(w[i].rc, MANDATE_OK);
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

/* --- sign-in (login_start, login_finish) ----------------------------------------------- */

#define LOGIN_CLIENT "mandate-login"
/* characters that must be encoded both in a form and in Basic credentials */
#define LOGIN_SECRET "s3cr3t:/+=&% x"
#define CALLBACK "https://mandate.example.com/login/oidc/corp/callback"
#define HANDLE "h4ndl3-0123456789abcdef"

/* A sign-in instance of the provider (client_secret_basic), then key/value
 * pairs ending in NULL. */
#define LOGIN_INST(fx, ...)                                                                    \
    INST((fx), "login_client_id", LOGIN_CLIENT, "login_client_secret", LOGIN_SECRET,           \
         ##__VA_ARGS__)

/* The value of a query or form parameter, decoded (malloc'd); NULL when
 * absent. Fails the test when it is there twice. */
static char *param_of(const char *query, const char *name)
{
    const char *q = strchr(query, '?');
    q = q != NULL ? q + 1 : query;
    char *found = NULL;
    size_t nlen = strlen(name);
    while (*q != '\0') {
        const char *end = strchr(q, '&');
        size_t len = end != NULL ? (size_t)(end - q) : strlen(q);
        if (len > nlen && strncmp(q, name, nlen) == 0 && q[nlen] == '=') {
            if (found != NULL)
                fail_msg("parameter %s twice in %s", name, query);
            int out_len = 0;
            char *v = curl_easy_unescape(NULL, q + nlen + 1, (int)(len - nlen - 1), &out_len);
            assert_non_null(v);
            found = strdup(v);
            curl_free(v);
        }
        q += len;
        if (*q == '&')
            q++;
    }
    return found;
}

static void expect_param(const char *query, const char *name, const char *want)
{
    char *v = param_of(query, name);
    if (want == NULL && v != NULL)
        fail_msg("%s = \"%s\", want none", name, v);
    if (want != NULL && (v == NULL || strcmp(v, want) != 0))
        fail_msg("%s = \"%s\", want \"%s\"", name, v != NULL ? v : "(none)", want);
    free(v);
}

static char *b64url_sha256(const char *text)
{
    unsigned char md[32];
    unsigned int md_len = 0;
    assert_int_equal(EVP_Digest(text, strlen(text), md, &md_len, EVP_sha256(), NULL), 1);
    return test_b64url(md, md_len);
}

/* A sign-in started: the redirect's URL and what to remember, in the pool. */
typedef struct started {
    const char *url;
    const char *remember;
    char nonce[64];
    char verifier[64];
} started;

static mandate_rc try_start(fixture *fx, void *inst, const mandate_login_request *req,
                            started *st, mandate_error *err)
{
    mandate_login_redirect r = {0};
    *err = (mandate_error){0};
    *st = (started){0};
    mandate_rc rc = OPS->login_start(inst, fx->pool, req, &r, err);
    if (rc != MANDATE_OK) {
        assert_null(r.url);
        assert_null(r.remember);
        return rc;
    }
    st->url = r.url;
    st->remember = r.remember;
    json_t *memo = json_loads(r.remember, 0, NULL);
    assert_non_null(memo);
    snprintf(st->nonce, sizeof(st->nonce), "%s",
             json_string_value(json_object_get(memo, "nonce")));
    snprintf(st->verifier, sizeof(st->verifier), "%s",
             json_string_value(json_object_get(memo, "verifier")));
    json_decref(memo);
    return rc;
}

static started start_with(fixture *fx, void *inst, bool force_login, int64_t max_age)
{
    mandate_login_request req = {.callback_url = CALLBACK,
                                 .handle = HANDLE,
                                 .force_login = force_login,
                                 .max_age = max_age};
    started st;
    mandate_error err;
    mandate_rc rc = try_start(fx, inst, &req, &st, &err);
    if (rc != MANDATE_OK)
        fail_msg("login_start: rc %d: %s", rc, err.message);
    return st;
}

static started start(fixture *fx, void *inst)
{
    return start_with(fx, inst, false, -1);
}

/* The token endpoint's next answer. */
static void answer(fixture *fx, int status, const char *body)
{
    pthread_mutex_lock(&fx->srv.lock);
    fx->token_status = status;
    free(fx->token_answer);
    fx->token_answer = body != NULL ? strdup(body) : NULL;
    pthread_mutex_unlock(&fx->srv.lock);
}

/* A token answer with this id_token (claims stolen, signed with k1). */
static void answer_id_token(fixture *fx, json_t *claims)
{
    char *t = sign(es_key, "k1", "JWT", claims);
    json_t *doc = json_pack("{s:s,s:s,s:i,s:s}", "access_token", "at-opaque", "token_type",
                            "Bearer", "expires_in", 300, "id_token", t);
    char *text = dump(doc);
    answer(fx, 200, text);
    free(text);
    free(t);
}

/* The id_token the provider gives for a sign-in: alice's, for our sign-in
 * client, with the nonce. */
static json_t *login_claims(fixture *fx, const started *st)
{
    json_t *c = id_claims(fx);
    json_object_set_new(c, "aud", json_string(LOGIN_CLIENT));
    json_object_set_new(c, "nonce", json_string(st->nonce));
    return c;
}

/* login_finish with the callback's parameters, name/value pairs ending in
 * NULL. */
static mandate_rc finish_v(fixture *fx, void *inst, const char *remember, const char *callback,
                           mandate_identity *id, mandate_error *err, va_list ap)
{
    mandate_login_param params[8];
    size_t n = 0;
    for (;;) {
        const char *name = va_arg(ap, const char *);
        if (name == NULL)
            break;
        assert_true(n < 8);
        params[n].name = name;
        params[n++].value = va_arg(ap, const char *);
    }
    mandate_login_response resp = {
        .callback_url = callback, .params = params, .param_count = n, .remember = remember};
    *id = (mandate_identity){0};
    *err = (mandate_error){0};
    return OPS->login_finish(inst, fx->pool, &resp, id, err);
}

static mandate_rc finish(fixture *fx, void *inst, const char *remember, mandate_identity *id,
                         mandate_error *err, ...)
{
    va_list ap;
    va_start(ap, err);
    mandate_rc rc = finish_v(fx, inst, remember, CALLBACK, id, err, ap);
    va_end(ap);
    return rc;
}

/* A whole sign-in that must succeed: the start, the provider's answer with
 * claims_of's id_token, the callback with a code. */
static started sign_in(fixture *fx, void *inst,
                       json_t *(*claims_of)(fixture *, const started *), mandate_identity *id)
{
    started st = start(fx, inst);
    answer_id_token(fx, claims_of(fx, &st));
    mandate_error err;
    mandate_rc rc = finish(fx, inst, st.remember, id, &err, "code", "c0de", NULL);
    if (rc != MANDATE_OK)
        fail_msg("login_finish: rc %d: %s", rc, err.message);
    return st;
}

/* login_finish must answer want with words in its reason, and no identity. */
static void expect_finish(fixture *fx, void *inst, const char *remember, mandate_rc want,
                          const char *words, ...)
{
    mandate_identity id;
    mandate_error err;
    va_list ap;
    va_start(ap, words);
    mandate_rc rc = finish_v(fx, inst, remember, CALLBACK, &id, &err, ap);
    va_end(ap);
    if (rc != want || strstr(err.message, words) == NULL)
        fail_msg("rc %d (want %d): \"%s\" (want \"%s\")", rc, want, err.message, words);
    assert_null(id.subject);
    assert_null(id.attributes);
    print_message("    %-8d %s\n", rc, err.message);
}

/* A sign-in of inst whose id_token has these claims must be refused with
 * MANDATE_INVALID and words. claims_of makes them from the sign-in. */
static void expect_id_token(fixture *fx, void *inst,
                            json_t *(*claims_of)(fixture *, const started *), const char *words)
{
    started st = start(fx, inst);
    answer_id_token(fx, claims_of(fx, &st));
    expect_finish(fx, inst, st.remember, MANDATE_INVALID, words, "code", "c0de", "state",
                  HANDLE, NULL);
}

static void test_login_start(void **state)
{
    fixture *fx = *state;
    void *inst = LOGIN_INST(fx);
    started st = start(fx, inst);
    print_message("    %s\n", st.url);
    char authorize[128];
    snprintf(authorize, sizeof(authorize), "%s/tenant/authorize?", fx->srv.base);
    assert_int_equal(strncmp(st.url, authorize, strlen(authorize)), 0);
    expect_param(st.url, "response_type", "code");
    expect_param(st.url, "client_id", LOGIN_CLIENT);
    expect_param(st.url, "redirect_uri", CALLBACK);
    expect_param(st.url, "scope", "openid email profile");
    expect_param(st.url, "state", HANDLE);
    expect_param(st.url, "nonce", st.nonce);
    expect_param(st.url, "code_challenge_method", "S256");
    char *challenge = b64url_sha256(st.verifier);
    expect_param(st.url, "code_challenge", challenge);
    free(challenge);
    expect_param(st.url, "prompt", NULL);
    expect_param(st.url, "max_age", NULL);
    expect_param(st.url, "login_hint", NULL);
    expect_param(st.url, "acr_values", NULL);
    /* encoded, never raw: the space of the scope, the callback's ':' and '/' */
    assert_non_null(strstr(st.url, "scope=openid%20email%20profile"));
    assert_non_null(strstr(st.url, "redirect_uri=https%3A%2F%2Fmandate.example.com%2Flogin"));
    /* fresh and long: 256-bit nonce, RFC 7636 verifier of 43 characters,
     * which never goes to the browser */
    assert_int_equal(strlen(st.nonce), 43);
    assert_int_equal(strlen(st.verifier), 43);
    assert_null(strstr(st.url, st.verifier));
    started st2 = start(fx, inst);
    assert_string_not_equal(st.nonce, st2.nonce);
    assert_string_not_equal(st.verifier, st2.verifier);
    assert_string_not_equal(st.nonce, st.verifier);
    /* what is remembered */
    json_t *memo = json_loads(st.remember, 0, NULL);
    char iss[96];
    snprintf(iss, sizeof(iss), "%s/tenant", fx->srv.base);
    assert_int_equal(json_integer_value(json_object_get(memo, "v")), 1);
    assert_string_equal(json_string_value(json_object_get(memo, "iss")), iss);
    assert_string_equal(json_string_value(json_object_get(memo, "state")), HANDLE);
    assert_string_equal(json_string_value(json_object_get(memo, "redirect_uri")), CALLBACK);
    assert_int_equal(json_integer_value(json_object_get(memo, "max_age")), -1);
    assert_true(json_is_false(json_object_get(memo, "force_login")));
    assert_int_equal(json_integer_value(json_object_get(memo, "started_at")), T0);
    json_decref(memo);
    /* discovery was read once, the keys not at all */
    assert_int_equal(atomic_load(&fx->disc_requests), 1);
    assert_int_equal(jwks_requests(fx), 0);

    /* a new login, a session age, a hint with characters to encode */
    mandate_login_request req = {.callback_url = CALLBACK,
                                 .handle = "a b&c=d+e/f?g#h%",
                                 .login_hint = "alice+x@example.com & \xc3\xa9=1",
                                 .force_login = true,
                                 .max_age = 0};
    mandate_error err;
    assert_int_equal(try_start(fx, inst, &req, &st, &err), MANDATE_OK);
    print_message("    %s\n", st.url);
    expect_param(st.url, "prompt", "login");
    expect_param(st.url, "max_age", "0");
    expect_param(st.url, "login_hint", "alice+x@example.com & \xc3\xa9=1");
    expect_param(st.url, "state", "a b&c=d+e/f?g#h%");
    assert_non_null(strstr(st.url, "login_hint=alice%2Bx%40example.com%20%26%20%C3%A9%3D1"));
    assert_non_null(strstr(st.url, "state=a%20b%26c%3Dd%2Be%2Ff%3Fg%23h%25"));
    memo = json_loads(st.remember, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(memo, "max_age")), 0);
    assert_true(json_is_true(json_object_get(memo, "force_login")));
    json_decref(memo);
    req.max_age = 86400;
    req.login_hint = "";
    assert_int_equal(try_start(fx, inst, &req, &st, &err), MANDATE_OK);
    expect_param(st.url, "max_age", "86400");
    expect_param(st.url, "login_hint", NULL);
    inst_free(inst);

    /* configured endpoints: discovery is not read; the endpoint's own query
     * is kept; acr_values and other scopes are asked */
    atomic_store(&fx->disc_requests, 0);
    inst = LOGIN_INST(fx, "authorization_endpoint",
                      "https://login.example.com/b2c/authorize?p=B2C_1_signin",
                      "token_endpoint", "https://login.example.com/b2c/token", "login_scopes",
                      "openid offline_access", "login_acr_values", "urn:example:mfa phr");
    st = start(fx, inst);
    print_message("    %s\n", st.url);
    const char *kept = "https://login.example.com/b2c/authorize?p=B2C_1_signin&response_type=";
    assert_int_equal(strncmp(st.url, kept, strlen(kept)), 0);
    expect_param(st.url, "p", "B2C_1_signin");
    expect_param(st.url, "scope", "openid offline_access");
    expect_param(st.url, "acr_values", "urn:example:mfa phr");
    assert_int_equal(atomic_load(&fx->disc_requests), 0);
    inst_free(inst);
}

static void test_login_start_refusals(void **state)
{
    fixture *fx = *state;
    mandate_error err;
    started st;
    mandate_login_request req = {.callback_url = CALLBACK, .handle = HANDLE, .max_age = -1};
    /* no login_client_id: not this instance's */
    assert_int_equal(try_start(fx, fx->inst, &req, &st, &err), MANDATE_NEXT);
    assert_non_null(strstr(err.message, "login_client_id"));
    mandate_identity id;
    assert_int_equal(finish(fx, fx->inst, "{}", &id, &err, "code", "x", NULL), MANDATE_NEXT);

    void *inst = LOGIN_INST(fx);
    /* the core's mistakes */
    req.callback_url = "http://mandate.example.com/cb";
    assert_int_equal(try_start(fx, inst, &req, &st, &err), MANDATE_ERROR);
    assert_non_null(strstr(err.message, "callback URL"));
    req.callback_url = CALLBACK "#frag";
    assert_int_equal(try_start(fx, inst, &req, &st, &err), MANDATE_ERROR);
    req.callback_url = NULL;
    assert_int_equal(try_start(fx, inst, &req, &st, &err), MANDATE_ERROR);
    req.callback_url = CALLBACK;
    req.handle = "";
    assert_int_equal(try_start(fx, inst, &req, &st, &err), MANDATE_ERROR);
    assert_non_null(strstr(err.message, "handle"));
    req.handle = "bad\nhandle";
    assert_int_equal(try_start(fx, inst, &req, &st, &err), MANDATE_ERROR);
    /* a user's hint with a control character, or too long */
    req.handle = HANDLE;
    req.login_hint = "alice\r\nLocation: evil";
    assert_int_equal(try_start(fx, inst, &req, &st, &err), MANDATE_INVALID);
    assert_non_null(strstr(err.message, "login hint"));
    char long_hint[300];
    memset(long_hint, 'a', sizeof(long_hint) - 1);
    long_hint[sizeof(long_hint) - 1] = '\0';
    req.login_hint = long_hint;
    assert_int_equal(try_start(fx, inst, &req, &st, &err), MANDATE_INVALID);
    req.login_hint = NULL;
    assert_int_equal(atomic_load(&fx->disc_requests), 0);

    /* discovery without the endpoints, naming another issuer, unreachable:
     * try again later, and not before min_refetch_interval */
    fx->no_endpoints = true;
    assert_int_equal(try_start(fx, inst, &req, &st, &err), MANDATE_TEMPFAIL);
    assert_non_null(strstr(err.message, "no authorization_endpoint"));
    assert_int_equal(try_start(fx, inst, &req, &st, &err), MANDATE_TEMPFAIL);
    assert_non_null(strstr(err.message, "not retried"));
    assert_int_equal(atomic_load(&fx->disc_requests), 1);
    fx->no_endpoints = false;
    snprintf(fx->disc_issuer, sizeof(fx->disc_issuer), "https://evil.example/tenant");
    fake_host_set_now(T0 + 10);
    assert_int_equal(try_start(fx, inst, &req, &st, &err), MANDATE_TEMPFAIL);
    assert_non_null(strstr(err.message, "not the configured issuer"));
    snprintf(fx->disc_issuer, sizeof(fx->disc_issuer), "%s/tenant", fx->srv.base);
    fake_host_set_now(T0 + 20);
    assert_int_equal(try_start(fx, inst, &req, &st, &err), MANDATE_OK);
    /* the provider goes away: the endpoints held serve on (a refresh past
     * jwks_refresh fails) until jwks_max_age */
    loopback_server_stop(&fx->srv);
    fake_host_set_now(T0 + 20 + 400);
    assert_int_equal(try_start(fx, inst, &req, &st, &err), MANDATE_OK);
    fake_host_set_now(T0 + 20 + 86400);
    assert_int_equal(try_start(fx, inst, &req, &st, &err), MANDATE_TEMPFAIL);
    assert_non_null(strstr(err.message, "past jwks_max_age"));
    inst_free(inst);
    inst = LOGIN_INST(fx);
    assert_int_equal(try_start(fx, inst, &req, &st, &err), MANDATE_TEMPFAIL);
    assert_non_null(strstr(err.message, "discovery"));
    inst_free(inst);
}

static void expect_identity(fixture *fx, const mandate_identity *id)
{
    char iss[96];
    snprintf(iss, sizeof(iss), "%s/tenant", fx->srv.base);
    assert_string_equal(id->issuer, iss);
    assert_string_equal(id->subject, "alice-oid");
    assert_null(id->tenant);
    assert_int_equal(id->authn_instant, T0 - 60);
    assert_int_equal(id->expires_at, T0 + 300);
    json_t *attrs = json_loads(id->attributes, 0, NULL);
    assert_non_null(attrs);
    assert_string_equal(json_string_value(json_object_get(attrs, "email")),
                        "alice@example.com");
    assert_string_equal(json_string_value(json_object_get(attrs, "aud")), LOGIN_CLIENT);
    json_decref(attrs);
}

static void test_login_finish(void **state)
{
    fixture *fx = *state;
    void *inst = LOGIN_INST(fx);
    started st = start(fx, inst);
    answer_id_token(fx, login_claims(fx, &st));
    mandate_identity id;
    mandate_error err;
    mandate_rc rc = finish(fx, inst, st.remember, &id, &err, "code", "c0de/+= x", "state",
                           HANDLE, "session_state", "ignored", NULL);
    if (rc != MANDATE_OK)
        fail_msg("rc %d: %s", rc, err.message);
    expect_identity(fx, &id);

    /* what the token endpoint got: the code, the redirect_uri, the verifier,
     * and the client's credentials in Basic (RFC 6749 §2.3.1: each part
     * form-encoded, then base64), none in the form */
    assert_int_equal(atomic_load(&fx->token_requests), 1);
    print_message("    form: %s\n", fx->got_body);
    assert_string_equal(fx->got_type, "application/x-www-form-urlencoded");
    expect_param(fx->got_body, "grant_type", "authorization_code");
    expect_param(fx->got_body, "code", "c0de/+= x");
    expect_param(fx->got_body, "redirect_uri", CALLBACK);
    expect_param(fx->got_body, "code_verifier", st.verifier);
    expect_param(fx->got_body, "client_id", NULL);
    expect_param(fx->got_body, "client_secret", NULL);
    assert_int_equal(strncmp(fx->got_auth, "Basic ", 6), 0);
    unsigned char pair[128];
    int n = EVP_DecodeBlock(pair, (const unsigned char *)fx->got_auth + 6,
                            (int)strlen(fx->got_auth + 6));
    assert_true(n > 0);
    while (n > 0 && pair[n - 1] == '\0') /* EVP_DecodeBlock counts the padding */
        n--;
    pair[n] = '\0';
    assert_string_equal((char *)pair, LOGIN_CLIENT ":s3cr3t%3A%2F%2B%3D%26%25%20x");

    /* with RFC 9207's iss, and the provider announcing it */
    fx->iss_param = true;
    fake_host_set_now(T0 + 300); /* past jwks_refresh: discovery is read again */
    char iss[96];
    snprintf(iss, sizeof(iss), "%s/tenant", fx->srv.base);
    st = start(fx, inst);
    /* the sign-in's first read, the keys' one, this refresh */
    assert_int_equal(atomic_load(&fx->disc_requests), 3);
    fake_host_set_now(T0);
    answer_id_token(fx, login_claims(fx, &st));
    rc = finish(fx, inst, st.remember, &id, &err, "state", HANDLE, "iss", iss, "code", "c2",
                NULL);
    if (rc != MANDATE_OK)
        fail_msg("rc %d: %s", rc, err.message);
    expect_identity(fx, &id);
    /* a state is not needed (the core found the sign-in by it), nor the
     * callback URL (the remembered one is used) */
    st = start(fx, inst);
    answer_id_token(fx, login_claims(fx, &st));
    mandate_login_param params[] = {{"iss", iss}, {"code", "c3"}};
    mandate_login_response resp = {.params = params, .param_count = 2, .remember = st.remember};
    assert_int_equal(OPS->login_finish(inst, fx->pool, &resp, &id, &err), MANDATE_OK);
    expect_param(fx->got_body, "redirect_uri", CALLBACK);
    inst_free(inst);
}

static void test_login_client_secret_post(void **state)
{
    fixture *fx = *state;
    void *inst = LOGIN_INST(fx, "login_auth_method", "client_secret_post");
    mandate_identity id;
    started st = sign_in(fx, inst, login_claims, &id);
    expect_identity(fx, &id);
    print_message("    form: %s\n", fx->got_body);
    assert_string_equal(fx->got_auth, "");
    expect_param(fx->got_body, "client_id", LOGIN_CLIENT);
    expect_param(fx->got_body, "client_secret", LOGIN_SECRET);
    expect_param(fx->got_body, "code_verifier", st.verifier);
    expect_param(fx->got_body, "code", "c0de");
    assert_non_null(strstr(fx->got_body, "client_secret=s3cr3t%3A%2F%2B%3D%26%25%20x"));
    inst_free(inst);
}

static void test_login_private_key_jwt(void **state)
{
    fixture *fx = *state;
    char path[] = "/tmp/test-backend-oidc-key-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, rs_key, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
    void *inst = INST(fx, "login_client_id", LOGIN_CLIENT, "login_auth_method",
                      "private_key_jwt", "login_private_key", path);
    mandate_identity id;
    mandate_error err;
    started st = sign_in(fx, inst, login_claims, &id);
    expect_identity(fx, &id);
    assert_string_equal(fx->got_auth, "");
    expect_param(fx->got_body, "client_id", LOGIN_CLIENT);
    expect_param(fx->got_body, "client_secret", NULL);
    expect_param(fx->got_body, "client_assertion_type",
                 "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
    expect_param(fx->got_body, "code_verifier", st.verifier);
    /* the assertion: signed with the key, kid its thumbprint, for the
     * token endpoint, short-lived */
    char *assertion = param_of(fx->got_body, "client_assertion");
    assert_non_null(assertion);
    assert_int_equal(mandate_jws_verify(assertion, strlen(assertion), rs_key, &err),
                     MANDATE_OK);
    mandate_jws jws;
    assert_int_equal(mandate_jws_parse(assertion, strlen(assertion), &jws, &err), MANDATE_OK);
    char thumb[MANDATE_JWK_THUMBPRINT_LEN + 1], token_url[128];
    assert_true(mandate_jwk_thumbprint(rs_key, thumb));
    assert_string_equal(jws.kid, thumb);
    assert_int_equal(jws.alg, MANDATE_JWS_RS256);
    snprintf(token_url, sizeof(token_url), "%s/tenant/token", fx->srv.base);
    json_t *c = jws.claims;
    assert_string_equal(json_string_value(json_object_get(c, "iss")), LOGIN_CLIENT);
    assert_string_equal(json_string_value(json_object_get(c, "sub")), LOGIN_CLIENT);
    assert_string_equal(json_string_value(json_object_get(c, "aud")), token_url);
    assert_int_equal(json_integer_value(json_object_get(c, "iat")), T0);
    assert_int_equal(json_integer_value(json_object_get(c, "exp")), T0 + 60);
    assert_true(strlen(json_string_value(json_object_get(c, "jti"))) >= 22);
    mandate_jws_clear(&jws);
    free(assertion);
    inst_free(inst);
    /* a named kid */
    inst = INST(fx, "login_client_id", LOGIN_CLIENT, "login_auth_method", "private_key_jwt",
                "login_private_key", path, "login_private_key_id", "broker-2026");
    sign_in(fx, inst, login_claims, &id);
    assert_non_null(strstr(fx->got_body, "client_assertion=ey"));
    assert_null(strstr(fx->got_body, "client_secret"));
    inst_free(inst);
    /* a key anyone may read is refused */
    assert_int_equal(chmod(path, 0644), 0);
    void *bad = inst_try(fx, &err, "login_client_id", LOGIN_CLIENT, "login_auth_method",
                         "private_key_jwt", "login_private_key", path, NULL);
    assert_null(bad);
    assert_non_null(strstr(err.message, "readable by anyone"));
    unlink(path);
    bad = inst_try(fx, &err, "login_client_id", LOGIN_CLIENT, "login_auth_method",
                   "private_key_jwt", "login_private_key", path, NULL);
    assert_null(bad);
    assert_non_null(strstr(err.message, "login_private_key"));
}

static void test_login_idp_error(void **state)
{
    fixture *fx = *state;
    void *inst = LOGIN_INST(fx);
    started st = start(fx, inst);
    expect_finish(fx, inst, st.remember, MANDATE_DENIED,
                  "refused the sign-in: access_denied: "
                  "The user cancelled",
                  "error", "access_denied", "error_description", "The user cancelled", "state",
                  HANDLE, NULL);
    /* the provider's text is bounded and printable */
    char long_desc[400];
    memset(long_desc, 'd', sizeof(long_desc) - 1);
    long_desc[sizeof(long_desc) - 1] = '\0';
    long_desc[3] = '\n';
    long_desc[4] = '\x1b';
    mandate_identity id;
    mandate_error err;
    assert_int_equal(finish(fx, inst, st.remember, &id, &err, "error", "login_required",
                            "error_description", long_desc, NULL),
                     MANDATE_DENIED);
    assert_null(strchr(err.message, '\n'));
    assert_null(strchr(err.message, '\x1b'));
    assert_non_null(strstr(err.message, "login_required: ddd??ddd"));
    assert_true(strlen(err.message) < 200);
    /* an error with a code is an error */
    expect_finish(fx, inst, st.remember, MANDATE_DENIED, "interaction_required", "error",
                  "interaction_required", "code", "c0de", NULL);
    assert_int_equal(atomic_load(&fx->token_requests), 0);
    inst_free(inst);
}

static void test_login_bad_callback(void **state)
{
    fixture *fx = *state;
    void *inst = LOGIN_INST(fx);
    started st = start(fx, inst);
    char iss[96];
    snprintf(iss, sizeof(iss), "%s/tenant", fx->srv.base);
    expect_finish(fx, inst, st.remember, MANDATE_INVALID, "no code", "state", HANDLE, NULL);
    expect_finish(fx, inst, st.remember, MANDATE_INVALID, "no code", "code", "", NULL);
    expect_finish(fx, inst, st.remember, MANDATE_INVALID, "not printable", "code",
                  "c0\x01"
                  "de",
                  NULL);
    expect_finish(fx, inst, st.remember, MANDATE_INVALID, "repeats the parameter code", "code",
                  "a", "code", "b", NULL);
    expect_finish(fx, inst, st.remember, MANDATE_INVALID, "repeats the parameter state",
                  "state", HANDLE, "state", HANDLE, "code", "a", NULL);
    /* state tampered with */
    expect_finish(fx, inst, st.remember, MANDATE_INVALID, "state is not this sign-in's", "code",
                  "c0de", "state", HANDLE "x", NULL);
    expect_finish(fx, inst, st.remember, MANDATE_INVALID, "state is not this sign-in's", "code",
                  "c0de", "state", "", NULL);
    /* RFC 9207: another provider's answer (a mix-up) */
    expect_finish(fx, inst, st.remember, MANDATE_INVALID, "is not the provider's", "code",
                  "c0de", "iss", "https://evil.example/tenant", NULL);
    expect_finish(fx, inst, st.remember, MANDATE_INVALID, "is not the provider's", "error",
                  "access_denied", "iss", "https://evil.example/tenant", NULL);
    /* nothing remembered, something else remembered */
    expect_finish(fx, inst, NULL, MANDATE_INVALID, "unsolicited", "code", "c0de", NULL);
    expect_finish(fx, inst, "not json", MANDATE_INVALID, "not this backend's", "code", "c0de",
                  NULL);
    expect_finish(fx, inst, "{\"v\":1}", MANDATE_INVALID, "not this backend's", "code", "c0de",
                  NULL);
    json_t *memo = json_loads(st.remember, 0, NULL);
    json_object_set_new(memo, "v", json_integer(2));
    char *text = json_dumps(memo, JSON_COMPACT);
    expect_finish(fx, inst, text, MANDATE_INVALID, "not this backend's", "code", "c0de", NULL);
    free(text);
    json_object_set_new(memo, "v", json_integer(1));
    json_object_set_new(memo, "iss", json_string("https://other.example"));
    text = json_dumps(memo, JSON_COMPACT);
    expect_finish(fx, inst, text, MANDATE_INVALID, "started at another provider", "code",
                  "c0de", NULL);
    free(text);
    json_decref(memo);
    /* at another callback than the sign-in's */
    mandate_identity id;
    mandate_error err;
    mandate_login_param params[] = {{"code", "c0de"}};
    mandate_login_response resp = {.callback_url = CALLBACK "2",
                                   .params = params,
                                   .param_count = 1,
                                   .remember = st.remember};
    assert_int_equal(OPS->login_finish(inst, fx->pool, &resp, &id, &err), MANDATE_INVALID);
    assert_non_null(strstr(err.message, "another callback"));
    assert_int_equal(atomic_load(&fx->token_requests), 0);
    inst_free(inst);

    /* a provider that says it sends iss must */
    fx->iss_param = true;
    inst = LOGIN_INST(fx);
    st = start(fx, inst);
    expect_finish(fx, inst, st.remember, MANDATE_INVALID, "has no iss", "code", "c0de", "state",
                  HANDLE, NULL);
    assert_int_equal(atomic_load(&fx->token_requests), 0);
    inst_free(inst);
}

static void test_login_token_endpoint(void **state)
{
    fixture *fx = *state;
    void *inst = LOGIN_INST(fx, "max_token_size", "2048");
    started st = start(fx, inst);
    const char *rem = st.remember;
    static const struct {
        int status;
        const char *body;
        mandate_rc rc;
        const char *words;
    } cases[] = {
        {400, "{\"error\":\"invalid_grant\",\"error_description\":\"code expired\"}",
         MANDATE_INVALID, "refused the code (HTTP 400 invalid_grant: code expired)"},
        {400, "<html>bad request</html>", MANDATE_INVALID, "refused the code (HTTP 400"},
        /* our configuration's fault */
        {401, "{\"error\":\"invalid_client\"}", MANDATE_ERROR,
         "refused Mandate's client (HTTP 401 invalid_client"},
        {400, "{\"error\":\"unauthorized_client\"}", MANDATE_ERROR, "check login_client_id"},
        /* the provider's trouble */
        {500, "{\"error\":\"server_error\"}", MANDATE_TEMPFAIL, "answered HTTP 500"},
        {503, "", MANDATE_TEMPFAIL, "answered HTTP 503"},
        {302, "", MANDATE_TEMPFAIL, "answered HTTP 302"},
        {200, "<html>proxy login page</html>", MANDATE_TEMPFAIL, "not a JSON object"},
        {200, "[\"id_token\"]", MANDATE_TEMPFAIL, "not a JSON object"},
        {200, "{\"id_token\":\"a\",\"id_token\":\"b\"}", MANDATE_TEMPFAIL, "not a JSON object"},
        /* no id_token, or not one */
        {200, "{\"access_token\":\"x\",\"token_type\":\"Bearer\"}", MANDATE_INVALID,
         "holds no id_token"},
        {200, "{\"id_token\":42}", MANDATE_INVALID, "holds no id_token"},
        {200, "{\"id_token\":\"not.a.jwt\"}", MANDATE_INVALID, "malformed token"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        answer(fx, cases[i].status, cases[i].body);
        expect_finish(fx, inst, rem, cases[i].rc, cases[i].words, "code", "c0de", NULL);
    }
    /* oversized: beyond the answer's bound, beyond the HTTP client's */
    size_t sizes[] = {70 * 1024, 300 * 1024};
    const char *words[] = {"more than 65536",
                           "no answer from the token endpoint: response body"};
    for (size_t i = 0; i < 2; i++) {
        char *big = malloc(sizes[i] + 32);
        assert_non_null(big);
        int k = snprintf(big, 32, "{\"id_token\":\"");
        memset(big + k, 'a', sizes[i]);
        snprintf(big + k + sizes[i], 8, "\"}");
        answer(fx, 200, big);
        free(big);
        expect_finish(fx, inst, rem, MANDATE_TEMPFAIL, words[i], "code", "c0de", NULL);
    }
    /* an id_token over max_token_size (2048 here) */
    char pad[3000];
    memset(pad, 'x', sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    answer_id_token(fx, with(login_claims(fx, &st), "pad", json_string(pad)));
    expect_finish(fx, inst, rem, MANDATE_INVALID, "more than max_token_size", "code", "c0de",
                  NULL);
    /* the provider goes away between the start and the callback */
    loopback_server_stop(&fx->srv);
    expect_finish(fx, inst, rem, MANDATE_TEMPFAIL, "no answer from the token endpoint", "code",
                  "c0de", NULL);
    inst_free(inst);
}

static json_t *claims_wrong_nonce(fixture *fx, const started *st)
{
    return with(login_claims(fx, st), "nonce", json_string("another-sign-ins-nonce"));
}
static json_t *claims_no_nonce(fixture *fx, const started *st)
{
    return with(login_claims(fx, st), "nonce", NULL);
}
static json_t *claims_exchange_aud(fixture *fx, const started *st)
{
    return with(login_claims(fx, st), "aud", json_string(AUD)); /* an exchange's audience */
}
static json_t *claims_aud_array_no_azp(fixture *fx, const started *st)
{
    return with(login_claims(fx, st), "aud", json_pack("[ss]", LOGIN_CLIENT, "other-app"));
}
static json_t *claims_wrong_azp(fixture *fx, const started *st)
{
    json_t *c = with(login_claims(fx, st), "aud", json_pack("[ss]", LOGIN_CLIENT, AUD));
    return with(c, "azp", json_string(AUD));
}
static json_t *claims_expired(fixture *fx, const started *st)
{
    return with(login_claims(fx, st), "exp", json_integer(T0 - 61));
}
static json_t *claims_other_iss(fixture *fx, const started *st)
{
    return with(login_claims(fx, st), "iss", json_string("https://evil.example/tenant"));
}
static json_t *claims_old_auth(fixture *fx, const started *st)
{
    return with(login_claims(fx, st), "auth_time", json_integer(T0 - 1000));
}
static json_t *claims_no_auth_time(fixture *fx, const started *st)
{
    return with(login_claims(fx, st), "auth_time", NULL);
}
static json_t *claims_future_auth(fixture *fx, const started *st)
{
    return with(login_claims(fx, st), "auth_time", json_integer(T0 + 3600));
}
static json_t *claims_acr_pwd(fixture *fx, const started *st)
{
    return with(login_claims(fx, st), "acr", json_string("pwd"));
}
static json_t *claims_acr_mfa(fixture *fx, const started *st)
{
    return with(login_claims(fx, st), "acr", json_string("mfa"));
}

/* The id_token's signature and header, as an exchanged one's. */
static void expect_forged_id_token(fixture *fx, void *inst, const char *token,
                                   const char *words)
{
    started st = start(fx, inst);
    json_t *doc = json_pack("{s:s,s:s}", "token_type", "Bearer", "id_token", token);
    char *text = dump(doc);
    answer(fx, 200, text);
    free(text);
    expect_finish(fx, inst, st.remember, MANDATE_INVALID, words, "code", "c0de", NULL);
}

static void test_login_id_token(void **state)
{
    fixture *fx = *state;
    void *inst = LOGIN_INST(fx);
    expect_id_token(fx, inst, claims_wrong_nonce, "nonce is not this sign-in's");
    expect_id_token(fx, inst, claims_no_nonce, "has no nonce");
    expect_id_token(fx, inst, claims_exchange_aud,
                    "aud names none of this instance's "
                    "login_client_id");
    expect_id_token(fx, inst, claims_aud_array_no_azp, "there is no azp");
    expect_id_token(fx, inst, claims_wrong_azp, "is not an authorized party");
    expect_id_token(fx, inst, claims_expired, "expired");
    expect_id_token(fx, inst, claims_other_iss, "iss is not");
    expect_id_token(fx, inst, claims_future_auth, "auth_time is in the future");

    /* the signature: another key under our kid, alg none, an unknown kid */
    started st = start(fx, inst);
    char *t = sign(rogue_key, "k1", "JWT", login_claims(fx, &st));
    expect_forged_id_token(fx, inst, t, "bad signature");
    free(t);
    t = sign(rogue_key, "k9", "JWT", login_claims(fx, &st));
    expect_forged_id_token(fx, inst, t, "no key of");
    free(t);
    t = sign(es_key, "k1", "JWT", login_claims(fx, &st));
    char *input = forged_signing_input(t, "{\"alg\":\"none\",\"kid\":\"k1\"}");
    char none[4096];
    snprintf(none, sizeof(none), "%s.", input);
    expect_forged_id_token(fx, inst, none, "alg");
    free(input);
    free(t);
    t = sign(es_key, "k1", "at+jwt", login_claims(fx, &st));
    expect_forged_id_token(fx, inst, t, "access token");
    free(t);

    /* max_age: auth_time is required, and recent enough */
    st = start_with(fx, inst, false, 300);
    answer_id_token(fx, claims_old_auth(fx, &st));
    expect_finish(fx, inst, st.remember, MANDATE_INVALID, "more than the max_age asked (300 s)",
                  "code", "c0de", NULL);
    st = start_with(fx, inst, false, 300);
    answer_id_token(fx, claims_no_auth_time(fx, &st));
    expect_finish(fx, inst, st.remember, MANDATE_INVALID, "has no auth_time", "code", "c0de",
                  NULL);
    st = start_with(fx, inst, false, 3600);
    answer_id_token(fx, claims_old_auth(fx, &st));
    mandate_identity id;
    mandate_error err;
    assert_int_equal(finish(fx, inst, st.remember, &id, &err, "code", "c0de", NULL),
                     MANDATE_OK);
    assert_int_equal(id.authn_instant, T0 - 1000);
    /* a new login asked: not authenticated before the start */
    st = start_with(fx, inst, true, -1);
    answer_id_token(fx, login_claims(fx, &st)); /* auth_time T0 - 60, skew 60: just in */
    assert_int_equal(finish(fx, inst, st.remember, &id, &err, "code", "c0de", NULL),
                     MANDATE_OK);
    answer_id_token(fx, claims_old_auth(fx, &st));
    expect_finish(fx, inst, st.remember, MANDATE_INVALID, "a new login was asked", "code",
                  "c0de", NULL);
    inst_free(inst);

    /* acr: one of login_acr_values */
    inst = LOGIN_INST(fx, "login_acr_values", "mfa hwk");
    expect_id_token(fx, inst, claims_acr_pwd, "acr \"pwd\" is none of login_acr_values");
    expect_id_token(fx, inst, login_claims, "acr \"(none)\" is none of");
    sign_in(fx, inst, claims_acr_mfa, &id);
    inst_free(inst);
}

static void test_login_bad_config(void **state)
{
    fixture *fx = *state;
    mandate_error err;
    const char *const cases[][5] = {
        {"login_client_secret", "x", NULL, NULL, "login_client_secret is set but"},
        {"token_endpoint", "https://idp.example/token", NULL, NULL, "token_endpoint is set"},
        {"login_client_id", LOGIN_CLIENT, NULL, NULL, "takes login_client_secret"},
        {"login_client_id", "bad\tid", "login_client_secret", "x", "not printable"},
        {"login_client_id", LOGIN_CLIENT, "login_auth_method", "private_key_jwt",
         "takes login_private_key"},
        {"login_client_id", LOGIN_CLIENT, "login_client_secret", "",
         "takes login_client_secret"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        void *inst =
            inst_try(fx, &err, cases[i][0], cases[i][1], cases[i][2], cases[i][3], NULL);
        if (inst != NULL || strstr(err.message, cases[i][4]) == NULL)
            fail_msg("%s = %s: %s (want \"%s\")", cases[i][0], cases[i][1],
                     inst != NULL ? "accepted" : err.message, cases[i][4]);
        assert_int_equal(err.rc, MANDATE_INVALID);
        print_message("    %s\n", err.message);
    }
    const char *const login_cases[][3] = {
        {"login_scopes", "email profile", "must hold openid"},
        {"login_scopes", "openid bad\"scope", "not a scope token"},
        {"login_acr_values", "", "login_acr_values is empty"},
        {"login_private_key", "/nonexistent.pem", "takes login_client_secret, and no"},
        {"login_private_key_id", "kid-1", "for private_key_jwt"},
        {"authorization_endpoint", "https://idp.example/authorize", "go together"},
        {"authorization_endpoint", "http://idp.example/authorize", "must be https"},
    };
    for (size_t i = 0; i < sizeof(login_cases) / sizeof(login_cases[0]); i++) {
        void *inst =
            inst_try(fx, &err, "login_client_id", LOGIN_CLIENT, "login_client_secret", "x",
                     login_cases[i][0], login_cases[i][1], i == 6 ? "token_endpoint" : NULL,
                     "https://idp.example/token", NULL);
        if (inst != NULL || strstr(err.message, login_cases[i][2]) == NULL)
            fail_msg("%s = %s: %s (want \"%s\")", login_cases[i][0], login_cases[i][1],
                     inst != NULL ? "accepted" : err.message, login_cases[i][2]);
        assert_int_equal(err.rc, MANDATE_INVALID);
        print_message("    %s\n", err.message);
    }
    void *inst = fake_instance_new(P);
    assert_non_null(inst);
    assert_int_equal(fake_conf_set(P, inst, "login_auth_method", "none"), -1);
    fake_instance_free(P, &inst);
    /* sign-in with a fixed jwks_uri: the endpoints still come from
     * discovery */
    char uri[128];
    snprintf(uri, sizeof(uri), "%s/tenant/keys", fx->srv.base);
    inst = LOGIN_INST(fx, "jwks_uri", uri);
    mandate_identity id;
    sign_in(fx, inst, login_claims, &id);
    assert_int_equal(atomic_load(&fx->disc_requests), 1);
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
    void *inst = fake_instance_new(P);
    assert_non_null(inst);
    assert_int_equal(fake_conf_set(P, inst, "clock_skew", "601"), -1);
    assert_int_equal(fake_conf_set(P, inst, "max_token_size", "100000"), -1);
    assert_int_equal(fake_conf_set(P, inst, "min_refetch_interval", "0"), -1);
    /* no issuer at all */
    mandate_error err = {0};
    assert_int_equal(P->instantiate(inst, fake_host_get(), &err), MANDATE_INVALID);
    assert_non_null(strstr(err.message, "issuer is required"));
    fake_instance_free(P, &inst);
    /* good ones: a loopback http issuer is allowed (tests, local IdPs);
     * jwks_max_age 0 is no limit */
    inst = INST(fx, "jwks_max_age", "0", "algorithms", "EdDSA");
    inst_free(inst);
    assert_int_equal(jwks_requests(fx), 0);
    assert_int_equal(atomic_load(&fx->disc_requests), 0);
}

static void test_descriptor(void **state)
{
    test_assert_plugin_descriptor(P, MANDATE_BACKEND, "oidc");
    assert_true(P->abi_minor >= 3);
    assert_true(P->flags & MANDATE_PLUGIN_BLOCKING);
    assert_null(OPS->authenticate_client);
    assert_null(OPS->provision);
    assert_non_null(OPS->validate_assertion);
    assert_non_null(OPS->status);
    assert_string_equal(OPS->assertion_types[0], ID_TOKEN);
    assert_string_equal(OPS->assertion_types[1], JWT);
    assert_string_equal(OPS->assertion_types[2], ID_JAG);
    assert_null(OPS->assertion_types[3]);
    /* ABI 1.5: sign-in; no metadata to publish */
    assert_non_null(OPS->login_start);
    assert_non_null(OPS->login_finish);
    assert_null(OPS->login_metadata);
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

static int group_teardown(void **state)
{
    fake_host_unset_now();
    return signing_keys_teardown(state);
}


int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST_FX(test_good_id_token),
        TEST_FX(test_good_jwt_access_token),
        TEST_FX(test_fixed_jwks_uri),
        TEST_FX(test_next),
        TEST_FX(test_audience),
        TEST_FX(test_times),
        TEST_FX(test_subject_and_issuer),
        TEST_FX(test_forgeries),
        TEST_FX(test_algorithms_and_kid),
        TEST_FX(test_rotation),
        TEST_FX(test_unknown_kid_flood),
        TEST_FX(test_provider_down),
        TEST_FX(test_provider_down_from_start),
        TEST_FX(test_jwks_errors),
        TEST_FX(test_discovery_issuer_mismatch),
        TEST_FX(test_concurrent_first_use),
        TEST_FX(test_id_jag),
        TEST_FX(test_oversize),
        TEST_FX(test_bad_config),
        TEST_FX(test_descriptor),
        TEST_FX(test_reinstantiate),
        TEST_FX(test_login_start),
        TEST_FX(test_login_start_refusals),
        TEST_FX(test_login_finish),
        TEST_FX(test_login_client_secret_post),
        TEST_FX(test_login_private_key_jwt),
        TEST_FX(test_login_idp_error),
        TEST_FX(test_login_bad_callback),
        TEST_FX(test_login_token_endpoint),
        TEST_FX(test_login_id_token),
        TEST_FX(test_login_bad_config),
    };
    return cmocka_run_group_tests(tests, signing_keys_setup, group_teardown);
}
