/* libmandate against a loopback broker played by the test: a libmicrohttpd
 * server on 127.0.0.1 that serves RFC 8414 metadata, a JWKS of keys made
 * here, and a token endpoint that checks the Basic header, counts requests,
 * and answers with tokens signed here (claims as the jwt format writes
 * them), an OAuth error, or a 503, after an optional delay. Both the token
 * source and the verifier run on an injected clock. With DPoP, the token
 * endpoint and a resource (/resource) check proofs with lib/dpop.c, the
 * daemon's checker, and ask for a nonce when one is set. */
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

#include <cmocka.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <mandate/client.h>

#include "dpop.h"
#include "jose.h"
#include "loopback-server.h"
#include "run-together.h"
#include "signing-keys.h"

#define T0 1800000000
#define CLIENT_ID "agent one/é"
#define CLIENT_SECRET "s3cr:t+/%&=x"
/* RFC 6749 §2.3.1 by hand: each half form-urlencoded, then base64 */
#define CLIENT_ID_ENC "agent+one%2F%C3%A9"
#define CLIENT_SECRET_ENC "s3cr%3At%2B%2F%25%26%3Dx"
#define AUDIENCE "https://mcp.example/market-calendar"
#define SCOPE "mcp:call gateway:invoke"
#define BODY_MAX 4096

/* --- keys, made once ------------------------------------------------------- */

/* --- the fixture --------------------------------------------------------------- */

typedef struct fixture {
    loopback_server srv;
    char token_url[96];
    _Atomic int64_t now;
    char expected_auth[256];

    /* everything below is shared with the handler, under srv.lock */
    char metadata_issuer[96];
    EVP_PKEY *signing_key;
    const char *signing_kid;
    long expires_in; /* 0: left out of the response */
    int delay_ms;
    int token_status; /* 200, or an error status */
    int jwks_delay_ms;
    char last_body[BODY_MAX];
    char last_auth[256];
    unsigned jti_seq;
    /* DPoP: a nonce each endpoint requires ("" none), what it saw */
    char token_nonce[32], resource_nonce[32];
    bool answer_dpop_without_proof; /* token_type DPoP to a request without one */
    char last_jkt[MANDATE_JWK_THUMBPRINT_LEN + 1];
    char last_resource_auth[2048];
    char last_resource_error[256];
    atomic_int resource_requests;

    atomic_int token_requests, jwks_requests, metadata_requests;
} fixture;

typedef struct request {
    char body[BODY_MAX];
    size_t len;
    bool overflow;
} request;

static int64_t fixture_now(void *ctx)
{
    return atomic_load(&((fixture *)ctx)->now);
}

static void set_now(fixture *fx, int64_t now)
{
    atomic_store(&fx->now, now);
}

static json_t *token_claims(fixture *fx, int64_t now, long lifetime)
{
    char jti[32];
    pthread_mutex_lock(&fx->srv.lock);
    snprintf(jti, sizeof(jti), "jti-%u", ++fx->jti_seq);
    pthread_mutex_unlock(&fx->srv.lock);
    return json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:s,s:s,s:s,s:s,s:{s:s}}", "iss", fx->srv.base,
                     "sub", CLIENT_ID, "aud", AUDIENCE, "exp", (json_int_t)(now + lifetime),
                     "iat", (json_int_t)now, "nbf", (json_int_t)now, "jti", jti, "client_id",
                     CLIENT_ID, "scope", SCOPE, "tenant", "default", "act", "sub",
                     "orchestrator");
}

static char *sign(EVP_PKEY *key, const char *kid, const char *typ, json_t *claims)
{
    char *token = mandate_jws_sign(key, kid, typ, claims);
    json_decref(claims);
    assert_non_null(token);
    return token;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
                             char *body)
{
    return loopback_reply(conn, status, type, body, NULL);
}

/* A proof checked as the daemon checks one; "" when good, else why. */
static const char *proof_refused(fixture *fx, const char *proof, const char *method,
                                 const char *uri, const char *token, const char *want_nonce,
                                 mandate_dpop_proof *p)
{
    static _Thread_local char why[256];
    mandate_dpop_expect x = {.method = method,
                             .uri = uri,
                             .access_token = token,
                             .algs = MANDATE_DPOP_ALGS_ALL,
                             .now = (int64_t)time(NULL),
                             .max_age = 60,
                             .max_future = 5};
    (void)fx;
    mandate_error err = {0};
    if (mandate_dpop_check(proof, strlen(proof), &x, p, &err) != MANDATE_OK) {
        snprintf(why, sizeof(why), "%s", err.message);
        return why;
    }
    if (want_nonce[0] != '\0' && strcmp(p->nonce, want_nonce) != 0)
        return "use_dpop_nonce";
    return "";
}

static enum MHD_Result resource_endpoint(fixture *fx, struct MHD_Connection *conn,
                                         const char *method)
{
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    const char *proof = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "DPoP");
    char uri[128], nonce[32];
    snprintf(uri, sizeof(uri), "%s/resource", fx->srv.base);
    pthread_mutex_lock(&fx->srv.lock);
    snprintf(fx->last_resource_auth, sizeof(fx->last_resource_auth), "%s", auth ? auth : "");
    snprintf(nonce, sizeof(nonce), "%s", fx->resource_nonce);
    pthread_mutex_unlock(&fx->srv.lock);
    const char *why = "no DPoP token";
    mandate_dpop_proof p;
    if (auth != NULL && strncmp(auth, "DPoP ", 5) == 0)
        why = proof == NULL ? "no proof"
                            : proof_refused(fx, proof, method, uri, auth + 5, nonce, &p);
    pthread_mutex_lock(&fx->srv.lock);
    snprintf(fx->last_resource_error, sizeof(fx->last_resource_error), "%s", why);
    pthread_mutex_unlock(&fx->srv.lock);
    if (strcmp(why, "use_dpop_nonce") == 0)
        return loopback_reply(conn, 401, "application/json", strdup("{}"),
                              (const char *const[]){"WWW-Authenticate",
                                                    "DPoP error=\"use_dpop_nonce\"",
                                                    "DPoP-Nonce", nonce, NULL});
    if (why[0] != '\0')
        return loopback_reply(conn, 401, "application/json", strdup("{}"),
                              (const char *const[]){"WWW-Authenticate",
                                                    "DPoP error=\"invalid_dpop_proof\"", NULL});
    return reply(conn, 200, "application/json", strdup("{\"ok\":true}"));
}

static enum MHD_Result token_endpoint(fixture *fx, struct MHD_Connection *conn,
                                      const request *r)
{
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    const char *proof = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "DPoP");
    bool dpop = proof != NULL;
    if (dpop) {
        char nonce[32];
        pthread_mutex_lock(&fx->srv.lock);
        snprintf(nonce, sizeof(nonce), "%s", fx->token_nonce);
        pthread_mutex_unlock(&fx->srv.lock);
        mandate_dpop_proof p;
        const char *why = proof_refused(fx, proof, "POST", fx->token_url, NULL, nonce, &p);
        /* a nonce starting with '!' is never accepted: the one sent is
         * the rest, the one required the whole */
        if (strcmp(why, "use_dpop_nonce") == 0)
            return loopback_reply(
                conn, 400, "application/json", strdup("{\"error\":\"use_dpop_nonce\"}"),
                (const char *const[]){"DPoP-Nonce", nonce + (nonce[0] == '!'), NULL});
        if (why[0] != '\0')
            return reply(conn, 400, "application/json",
                         strdup("{\"error\":\"invalid_dpop_proof\"}"));
        pthread_mutex_lock(&fx->srv.lock);
        memcpy(fx->last_jkt, p.jkt, sizeof(fx->last_jkt));
        pthread_mutex_unlock(&fx->srv.lock);
    }
    pthread_mutex_lock(&fx->srv.lock);
    snprintf(fx->last_body, sizeof(fx->last_body), "%.*s", (int)r->len, r->body);
    snprintf(fx->last_auth, sizeof(fx->last_auth), "%s", auth ? auth : "");
    int delay = fx->delay_ms, status = fx->token_status;
    long expires_in = fx->expires_in;
    EVP_PKEY *key = fx->signing_key;
    const char *kid = fx->signing_kid;
    pthread_mutex_unlock(&fx->srv.lock);
    if (delay > 0)
        usleep((useconds_t)delay * 1000);

    if (auth == NULL || strcmp(auth, fx->expected_auth) != 0 || status == 401)
        return reply(conn, 401, "application/json",
                     strdup("{\"error\":\"invalid_client\","
                            "\"error_description\":\"client authentication failed\"}"));
    if (status != 200)
        return reply(conn, (unsigned)status, "application/json",
                     strdup("{\"error\":\"temporarily_unavailable\"}"));
    if (r->len >= 29 && strncmp(r->body, "grant_type=client_credentials", 29) != 0)
        return reply(conn, 400, "application/json",
                     strdup("{\"error\":\"unsupported_grant_type\"}"));
    int64_t now = atomic_load(&fx->now);
    char *token =
        sign(key, kid, "at+jwt", token_claims(fx, now, expires_in > 0 ? expires_in : 300));
    pthread_mutex_lock(&fx->srv.lock);
    bool say_dpop = dpop || fx->answer_dpop_without_proof;
    pthread_mutex_unlock(&fx->srv.lock);
    json_t *doc = json_pack("{s:s,s:s,s:s}", "access_token", token, "token_type",
                            say_dpop ? "DPoP" : "bearer", "scope", SCOPE);
    if (expires_in > 0)
        json_object_set_new(doc, "expires_in", json_integer(expires_in));
    free(token);
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return reply(conn, 200, "application/json", text);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *upload_data,
                               size_t *upload_data_size, void **con_cls)
{
    (void)version;
    fixture *fx = cls;
    request *r = *con_cls;
    if (r == NULL) {
        *con_cls = r = calloc(1, sizeof(*r));
        return r != NULL ? MHD_YES : MHD_NO;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        if (r->len + n >= sizeof(r->body))
            r->overflow = true;
        else {
            memcpy(r->body + r->len, upload_data, n);
            r->len += n;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }

    if (strcmp(method, "POST") == 0 && strcmp(url, "/oauth2/token") == 0) {
        atomic_fetch_add(&fx->token_requests, 1);
        return token_endpoint(fx, conn, r);
    }
    if (strcmp(url, "/resource") == 0) {
        atomic_fetch_add(&fx->resource_requests, 1);
        return resource_endpoint(fx, conn, method);
    }
    if (strcmp(method, "GET") == 0 &&
        strcmp(url, "/.well-known/oauth-authorization-server") == 0) {
        atomic_fetch_add(&fx->metadata_requests, 1);
        pthread_mutex_lock(&fx->srv.lock);
        json_t *doc = json_pack("{s:s,s:s,s:s}", "issuer", fx->metadata_issuer,
                                "token_endpoint", fx->token_url, "jwks_uri", "");
        pthread_mutex_unlock(&fx->srv.lock);
        char jwks_uri[128];
        snprintf(jwks_uri, sizeof(jwks_uri), "%s/oauth2/jwks", fx->srv.base);
        json_object_set_new(doc, "jwks_uri", json_string(jwks_uri));
        char *text = json_dumps(doc, JSON_COMPACT);
        json_decref(doc);
        return reply(conn, 200, "application/json", text);
    }
    if (strcmp(method, "GET") == 0 && strcmp(url, "/oauth2/jwks") == 0) {
        atomic_fetch_add(&fx->jwks_requests, 1);
        /* besides the published keys: a symmetric key and a key without a
         * kid, which a verifier must skip */
        json_t *keys = json_pack("[{s:s,s:s,s:s},{s:s,s:s,s:s}]", "kty", "oct", "k", "c2VjcmV0",
                                 "kid", "sym", "kty", "OKP", "crv", "Ed25519", "x",
                                 "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
        loopback_append_jwks(&fx->srv, keys);
        pthread_mutex_lock(&fx->srv.lock);
        int delay = fx->jwks_delay_ms;
        pthread_mutex_unlock(&fx->srv.lock);
        if (delay > 0)
            usleep((useconds_t)delay * 1000);
        json_t *doc = json_pack("{s:o}", "keys", keys);
        char *text = json_dumps(doc, JSON_COMPACT);
        json_decref(doc);
        return reply(conn, 200, "application/jwk-set+json", text);
    }
    return reply(conn, 404, "text/plain", strdup("not found"));
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)conn, (void)toe;
    free(*con_cls);
    *con_cls = NULL;
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    atomic_init(&fx->now, T0);
    fx->expires_in = 100;
    fx->token_status = 200;
    fx->signing_key = es_key;
    fx->signing_kid = "k1";
    loopback_server_start(&fx->srv, handler, fx, completed);
    snprintf(fx->token_url, sizeof(fx->token_url), "%s/oauth2/token", fx->srv.base);
    snprintf(fx->metadata_issuer, sizeof(fx->metadata_issuer), "%s", fx->srv.base);

    const char pair[] = CLIENT_ID_ENC ":" CLIENT_SECRET_ENC;
    memcpy(fx->expected_auth, "Basic ", 6);
    EVP_EncodeBlock((unsigned char *)fx->expected_auth + 6, (const unsigned char *)pair,
                    (int)strlen(pair));
    loopback_publish(&fx->srv, es_key, "k1");
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    loopback_server_close(&fx->srv);
    free(fx);
    return 0;
}

/* --- the token source ------------------------------------------------------- */

/* What a constructor made, or the test fails with the error it gave. */
static void *made(void *thing, const char *constructor, const char *err)
{
    if (thing == NULL)
        fail_msg("%s: %s", constructor, err);
    return thing;
}

/* A token source of the fixture's client, for resource (NULL: none), with
 * DPoP when key is not NULL. */
static mandate_token_source *new_source_with(fixture *fx, const char *resource,
                                             const mandate_dpop_key *key)
{
    mandate_token_source_config cfg = {
        .token_url = fx->token_url,
        .client_id = CLIENT_ID,
        .client_secret = CLIENT_SECRET,
        .scope = SCOPE,
        .resource = resource,
        .timeout_ms = 3000,
        .now = fixture_now,
        .now_ctx = fx,
        .dpop_key = key,
    };
    char err[256] = "";
    return made(mandate_token_source_new(&cfg, err, sizeof(err)), "mandate_token_source_new",
                err);
}

static mandate_token_source *new_source(fixture *fx)
{
    return new_source_with(fx, AUDIENCE, NULL);
}

static char *get_ok(mandate_token_source *src, int64_t *expires_at_r)
{
    char *token = NULL, err[256] = "";
    mandate_client_rc rc =
        mandate_token_source_get(src, &token, expires_at_r, err, sizeof(err));
    if (rc != MANDATE_CLIENT_OK)
        fail_msg("get: %s: %s", mandate_client_rc_name(rc), err);
    assert_non_null(token);
    return token;
}

/* A get that src must refuse with want: no token, and its reason in err. */
static void get_refused(mandate_token_source *src, mandate_client_rc want, char *err,
                        size_t size)
{
    char *token = NULL;
    err[0] = '\0';
    mandate_client_rc rc = mandate_token_source_get(src, &token, NULL, err, size);
    if (rc != want)
        fail_msg("get: %s, want %s: %s", mandate_client_rc_name(rc),
                 mandate_client_rc_name(want), err);
    assert_null(token);
}

static void test_token_cache_and_refresh(void **state)
{
    fixture *fx = *state;
    mandate_token_source *src = new_source(fx);
    assert_int_equal(mandate_token_source_fetches(src), 0);

    int64_t exp = 0;
    char *t1 = get_ok(src, &exp);
    assert_int_equal(exp, T0 + 100);
    assert_int_equal(mandate_token_source_fetches(src), 1);
    assert_int_equal(atomic_load(&fx->token_requests), 1);
    /* what went over the wire */
    assert_string_equal(fx->last_auth, fx->expected_auth);
    assert_string_equal(fx->last_body, "grant_type=client_credentials&scope=mcp%3Acall+gateway%"
                                       "3Ainvoke&resource=https%3A%2F%2Fmcp.example%2Fmarket-"
                                       "calendar");

    set_now(fx, T0 + 79); /* before 80%: the cache */
    char *t2 = get_ok(src, NULL);
    assert_string_equal(t1, t2);
    assert_int_equal(mandate_token_source_fetches(src), 1);

    set_now(fx, T0 + 80); /* 80% of the lifetime: a new token */
    char *t3 = get_ok(src, &exp);
    assert_string_not_equal(t1, t3);
    assert_int_equal(exp, T0 + 180);
    assert_int_equal(mandate_token_source_fetches(src), 2);
    assert_int_equal(atomic_load(&fx->token_requests), 2);

    set_now(fx, T0 + 120);
    char *t4 = get_ok(src, NULL);
    assert_string_equal(t3, t4);
    assert_int_equal(mandate_token_source_fetches(src), 2);
    free(t1);
    free(t2);
    free(t3);
    free(t4);
    mandate_token_source_free(&src);
    assert_null(src);
}

static void test_token_refresh_at(void **state)
{
    fixture *fx = *state;
    mandate_token_source_config cfg = {.token_url = fx->token_url,
                                       .client_id = CLIENT_ID,
                                       .client_secret = CLIENT_SECRET,
                                       .refresh_at = 0.5,
                                       .now = fixture_now,
                                       .now_ctx = fx};
    mandate_token_source *src = mandate_token_source_new(&cfg, NULL, 0);
    assert_non_null(src);
    free(get_ok(src, NULL));
    set_now(fx, T0 + 49);
    free(get_ok(src, NULL));
    assert_int_equal(mandate_token_source_fetches(src), 1);
    set_now(fx, T0 + 50);
    free(get_ok(src, NULL));
    assert_int_equal(mandate_token_source_fetches(src), 2);
    assert_string_equal(fx->last_body, "grant_type=client_credentials"); /* no scope */
    mandate_token_source_free(&src);
}

static void test_token_expires_in_absent(void **state)
{
    fixture *fx = *state;
    fx->expires_in = 0;
    mandate_token_source *src = new_source(fx);
    int64_t exp = 0;
    free(get_ok(src, &exp));
    assert_int_equal(exp, T0 + 300);
    mandate_token_source_free(&src);
}

typedef struct getter {
    mandate_token_source *src;
    mandate_client_rc rc;
    char *token;
    char err[256];
} getter;

static void getter_run(void *arg)
{
    getter *g = arg;
    g->rc = mandate_token_source_get(g->src, &g->token, NULL, g->err, sizeof(g->err));
}

/* n threads call get at once; returns their results in g */
static void get_concurrently(mandate_token_source *src, getter *g, size_t n)
{
    for (size_t i = 0; i < n; i++)
        g[i] = (getter){.src = src};
    run_together(getter_run, g, n, sizeof(*g));
}

static void test_token_single_flight(void **state)
{
    fixture *fx = *state;
    fx->delay_ms = 400;
    mandate_token_source *src = new_source(fx);
    getter g[8];
    get_concurrently(src, g, 8);
    for (size_t i = 0; i < 8; i++) {
        assert_int_equal(g[i].rc, MANDATE_CLIENT_OK);
        assert_string_equal(g[i].token, g[0].token);
    }
    assert_int_equal(mandate_token_source_fetches(src), 1);
    assert_int_equal(atomic_load(&fx->token_requests), 1);

    /* at refresh time: one fetch again; callers with the still-valid token
     * need not queue behind it */
    set_now(fx, T0 + 90);
    getter h[8];
    get_concurrently(src, h, 8);
    size_t fresh = 0;
    for (size_t i = 0; i < 8; i++) {
        assert_int_equal(h[i].rc, MANDATE_CLIENT_OK);
        fresh += strcmp(h[i].token, g[0].token) != 0;
    }
    assert_true(fresh >= 1);
    assert_int_equal(mandate_token_source_fetches(src), 2);
    assert_int_equal(atomic_load(&fx->token_requests), 2);
    for (size_t i = 0; i < 8; i++) {
        free(g[i].token);
        free(h[i].token);
    }
    mandate_token_source_free(&src);
}

static void test_token_waiters_get_the_error(void **state)
{
    fixture *fx = *state;
    fx->delay_ms = 300;
    fx->token_status = 401;
    mandate_token_source *src = new_source(fx);
    getter g[6];
    get_concurrently(src, g, 6);
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(g[i].rc, MANDATE_CLIENT_DENIED);
        assert_null(g[i].token);
        assert_string_equal(g[i].err, "invalid_client: client authentication failed");
    }
    assert_int_equal(atomic_load(&fx->token_requests), 1);
    mandate_token_source_free(&src);
}

static void test_token_denied(void **state)
{
    fixture *fx = *state;
    mandate_token_source_config cfg = {.token_url = fx->token_url,
                                       .client_id = CLIENT_ID,
                                       .client_secret = "wrong",
                                       .now = fixture_now,
                                       .now_ctx = fx};
    mandate_token_source *src = mandate_token_source_new(&cfg, NULL, 0);
    char *token = (char *)"unchanged", err[256] = "";
    int64_t exp = 42;
    assert_int_equal(mandate_token_source_get(src, &token, &exp, err, sizeof(err)),
                     MANDATE_CLIENT_DENIED);
    assert_null(token);
    assert_int_equal(exp, 0);
    assert_string_equal(err, "invalid_client: client authentication failed");
    assert_null(strstr(err, "wrong"));
    mandate_token_source_free(&src);
}

static void test_token_unavailable(void **state)
{
    fixture *fx = *state;
    char err[256];

    /* a 503 */
    fx->token_status = 503;
    mandate_token_source *src = new_source(fx);
    get_refused(src, MANDATE_CLIENT_UNAVAILABLE, err, sizeof(err));
    assert_non_null(strstr(err, "503"));
    fx->token_status = 200;

    /* a token, then the broker goes away */
    char *t1 = get_ok(src, NULL);
    assert_int_equal(mandate_token_source_fetches(src), 2);
    loopback_server_stop(&fx->srv);
    set_now(fx, T0 + 85); /* refresh fails: the cached token still serves */
    char *t2 = get_ok(src, NULL);
    assert_string_equal(t1, t2);
    assert_int_equal(mandate_token_source_fetches(src), 3);
    set_now(fx, T0 + 87); /* and the next attempt waits a few seconds */
    char *t3 = get_ok(src, NULL);
    assert_string_equal(t1, t3);
    assert_int_equal(mandate_token_source_fetches(src), 3);
    set_now(fx, T0 + 95);
    char *t4 = get_ok(src, NULL);
    assert_string_equal(t1, t4);
    assert_int_equal(mandate_token_source_fetches(src), 4);

    set_now(fx, T0 + 100); /* expired: now it is an error */
    get_refused(src, MANDATE_CLIENT_UNAVAILABLE, err, sizeof(err));
    assert_non_null(strstr(err, "token endpoint"));
    assert_null(strstr(err, t1));
    free(t1);
    free(t2);
    free(t3);
    free(t4);
    mandate_token_source_free(&src);

    /* never had one */
    src = new_source(fx);
    get_refused(src, MANDATE_CLIENT_UNAVAILABLE, err, sizeof(err));
    mandate_token_source_free(&src);
}

static void test_token_source_config(void **state)
{
    fixture *fx = *state;
    char err[256];
    mandate_token_source_config good = {
        .token_url = fx->token_url, .client_id = "a", .client_secret = "b"};
    mandate_token_source_config cfg;

    assert_null(mandate_token_source_new(NULL, err, sizeof(err)));
    cfg = good;
    cfg.token_url = "ftp://broker/token";
    assert_null(mandate_token_source_new(&cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "token_url"));
    cfg = good;
    cfg.token_url = NULL;
    assert_null(mandate_token_source_new(&cfg, NULL, 0));
    cfg = good;
    cfg.client_id = "";
    assert_null(mandate_token_source_new(&cfg, err, sizeof(err)));
    cfg = good;
    cfg.client_secret = NULL;
    assert_null(mandate_token_source_new(&cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "client_secret"));
    cfg = good;
    cfg.refresh_at = 1.5;
    assert_null(mandate_token_source_new(&cfg, err, sizeof(err)));
    cfg = good;
    cfg.refresh_at = -0.1;
    assert_null(mandate_token_source_new(&cfg, err, sizeof(err)));
    cfg = good;
    cfg.timeout_ms = -1;
    assert_null(mandate_token_source_new(&cfg, err, sizeof(err)));

    mandate_token_source *src = mandate_token_source_new(&good, err, sizeof(err));
    assert_non_null(src);
    assert_int_equal(mandate_token_source_get(src, NULL, NULL, err, sizeof(err)),
                     MANDATE_CLIENT_INVALID);
    mandate_token_source_free(&src);
    mandate_token_source_free(&src); /* NULL: nothing */
    mandate_token_source_free(NULL);
    assert_int_equal(mandate_token_source_fetches(NULL), 0);
    assert_string_equal(mandate_client_rc_name(MANDATE_CLIENT_INSUFFICIENT_SCOPE),
                        "insufficient_scope");
}

/* --- the verifier --------------------------------------------------------------- */

static mandate_verifier *new_verifier(fixture *fx)
{
    mandate_verifier_config cfg = {
        .issuer = fx->srv.base,
        .audience = AUDIENCE,
        .jwks_max_age = 300,
        .min_refetch_interval = 10,
        .timeout_ms = 3000,
        .now = fixture_now,
        .now_ctx = fx,
    };
    char err[256] = "";
    return made(mandate_verifier_new(&cfg, err, sizeof(err)), "mandate_verifier_new", err);
}

static mandate_client_rc check(mandate_verifier *v, const char *token, const char *scope,
                               char *err, size_t errlen)
{
    mandate_verified_token out;
    mandate_client_rc rc = mandate_verifier_check(v, token, scope, &out, err, errlen);
    if (rc != MANDATE_CLIENT_OK)
        assert_null(out.subject);
    mandate_verified_token_clear(&out);
    return rc;
}

static void expect_rc(mandate_verifier *v, const char *token, const char *scope,
                      mandate_client_rc want, const char *needle)
{
    char err[256] = "";
    mandate_client_rc rc = check(v, token, scope, err, sizeof(err));
    if (rc != want)
        fail_msg("expected %s, got %s: %s", mandate_client_rc_name(want),
                 mandate_client_rc_name(rc), err);
    if (needle != NULL && strstr(err, needle) == NULL)
        fail_msg("expected '%s' in '%s'", needle, err);
}

/* a token as the jwt format would mint it, with one claim changed (value
 * NULL: removed) */
static char *mint_with(fixture *fx, EVP_PKEY *key, const char *kid, const char *claim,
                       json_t *value)
{
    json_t *claims = token_claims(fx, atomic_load(&fx->now), 100);
    if (claim != NULL) {
        if (value != NULL)
            json_object_set_new(claims, claim, value);
        else
            json_object_del(claims, claim);
    }
    return sign(key, kid, "at+jwt", claims);
}

static char *mint(fixture *fx)
{
    return mint_with(fx, es_key, "k1", NULL, NULL);
}

static void test_verify_good(void **state)
{
    fixture *fx = *state;
    mandate_verifier *v = new_verifier(fx);
    assert_int_equal(mandate_verifier_jwks_fetches(v), 0); /* lazily */
    char *token = mint(fx);
    mandate_verified_token out;
    char err[256] = "";
    mandate_client_rc rc = mandate_verifier_check(v, token, "mcp:call", &out, err, sizeof(err));
    if (rc != MANDATE_CLIENT_OK)
        fail_msg("%s: %s", mandate_client_rc_name(rc), err);
    assert_string_equal(out.subject, CLIENT_ID);
    assert_string_equal(out.client_id, CLIENT_ID);
    assert_string_equal(out.scope, SCOPE);
    assert_string_equal(out.tenant, "default");
    assert_string_equal(out.actor, "orchestrator");
    assert_string_equal(out.jti, "jti-1");
    assert_int_equal(out.issued_at, T0);
    assert_int_equal(out.expires_at, T0 + 100);
    mandate_verified_token_clear(&out);
    assert_null(out.subject);
    assert_int_equal(mandate_verifier_jwks_fetches(v), 1);
    assert_int_equal(atomic_load(&fx->metadata_requests), 1);

    /* every scope asked for, in any order; no scope; out may be NULL */
    assert_int_equal(
        mandate_verifier_check(v, token, "gateway:invoke  mcp:call", NULL, NULL, 0),
        MANDATE_CLIENT_OK);
    expect_rc(v, token, NULL, MANDATE_CLIENT_OK, NULL);
    expect_rc(v, token, "", MANDATE_CLIENT_OK, NULL);
    free(token);

    /* aud as an array; no tenant or act; typ in its long form; Ed25519 */
    loopback_publish(&fx->srv, ed_key, "k3");
    set_now(fx, T0 + 10); /* past the refetch interval: the new key is fetched */
    token = mint_with(fx, es_key, "k1", "aud", json_pack("[ss]", "https://other", AUDIENCE));
    expect_rc(v, token, "mcp:call", MANDATE_CLIENT_OK, NULL);
    free(token);
    json_t *claims = token_claims(fx, T0 + 10, 100);
    json_object_del(claims, "tenant");
    json_object_del(claims, "act");
    token = sign(ed_key, "k3", "application/at+jwt", claims);
    assert_int_equal(mandate_verifier_check(v, token, NULL, &out, NULL, 0), MANDATE_CLIENT_OK);
    assert_null(out.tenant);
    assert_null(out.actor);
    mandate_verified_token_clear(&out);
    free(token);
    assert_int_equal(mandate_verifier_jwks_fetches(v), 2);
    /* the metadata is read once */
    assert_int_equal(atomic_load(&fx->metadata_requests), 1);
    mandate_verifier_free(&v);
    assert_null(v);
}

static void test_verify_insufficient_scope(void **state)
{
    fixture *fx = *state;
    mandate_verifier *v = new_verifier(fx);
    char *token = mint(fx);
    expect_rc(v, token, "trading:execute", MANDATE_CLIENT_INSUFFICIENT_SCOPE,
              "trading:execute");
    expect_rc(v, token, "mcp:call trading:execute", MANDATE_CLIENT_INSUFFICIENT_SCOPE, NULL);
    expect_rc(v, token, "mcp", MANDATE_CLIENT_INSUFFICIENT_SCOPE, NULL); /* no prefixes */
    free(token);
    token = mint_with(fx, es_key, "k1", "scope", NULL);
    expect_rc(v, token, "mcp:call", MANDATE_CLIENT_INSUFFICIENT_SCOPE, NULL);
    expect_rc(v, token, NULL, MANDATE_CLIENT_OK, NULL);
    free(token);
    mandate_verifier_free(&v);
}

static void test_verify_wrong_audience_and_issuer(void **state)
{
    fixture *fx = *state;
    mandate_verifier *v = new_verifier(fx);
    char *token = mint_with(fx, es_key, "k1", "aud", json_string("https://other"));
    expect_rc(v, token, NULL, MANDATE_CLIENT_TOKEN_INVALID, "aud");
    free(token);
    token = mint_with(fx, es_key, "k1", "aud", json_pack("[ss]", "https://a", "https://b"));
    expect_rc(v, token, NULL, MANDATE_CLIENT_TOKEN_INVALID, "aud");
    free(token);
    token = mint_with(fx, es_key, "k1", "aud", NULL);
    expect_rc(v, token, NULL, MANDATE_CLIENT_TOKEN_INVALID, "aud");
    free(token);
    token = mint_with(fx, es_key, "k1", "iss", json_string("http://evil.example"));
    expect_rc(v, token, NULL, MANDATE_CLIENT_TOKEN_INVALID, "iss");
    free(token);
    token = mint_with(fx, es_key, "k1", "iss", json_integer(1));
    expect_rc(v, token, NULL, MANDATE_CLIENT_TOKEN_INVALID, NULL);
    free(token);
    token = mint_with(fx, es_key, "k1", "sub", NULL);
    expect_rc(v, token, NULL, MANDATE_CLIENT_TOKEN_INVALID, NULL);
    free(token);
    mandate_verifier_free(&v);
}

static void test_verify_times(void **state)
{
    fixture *fx = *state;
    mandate_verifier *v = new_verifier(fx);
    char *token = mint(fx); /* exp T0 + 100 */
    set_now(fx, T0 + 104);  /* within the leeway of 5 s */
    expect_rc(v, token, NULL, MANDATE_CLIENT_OK, NULL);
    set_now(fx, T0 + 105);
    expect_rc(v, token, NULL, MANDATE_CLIENT_TOKEN_INVALID, "expired");
    set_now(fx, T0);
    free(token);
    token = mint_with(fx, es_key, "k1", "exp", NULL);
    expect_rc(v, token, NULL, MANDATE_CLIENT_TOKEN_INVALID, NULL);
    free(token);
    token = mint_with(fx, es_key, "k1", "exp", json_string("soon"));
    expect_rc(v, token, NULL, MANDATE_CLIENT_TOKEN_INVALID, NULL);
    free(token);
    token = mint_with(fx, es_key, "k1", "nbf", json_integer(T0 + 60));
    expect_rc(v, token, NULL, MANDATE_CLIENT_TOKEN_INVALID, "not valid before");
    set_now(fx, T0 + 56);
    expect_rc(v, token, NULL, MANDATE_CLIENT_OK, NULL);
    set_now(fx, T0);
    free(token);
    token = mint_with(fx, es_key, "k1", "iat", json_integer(T0 + 60));
    expect_rc(v, token, NULL, MANDATE_CLIENT_TOKEN_INVALID, "future");
    free(token);
    mandate_verifier_free(&v);
}

static void test_verify_forgeries(void **state)
{
    fixture *fx = *state;
    mandate_verifier *v = new_verifier(fx);
    char *good = mint(fx);
    expect_rc(v, good, NULL, MANDATE_CLIENT_OK, NULL);

    /* tampered: a wider scope under the original signature */
    json_t *claims = token_claims(fx, T0, 100);
    json_object_set_new(claims, "scope", json_string("mcp:call trading:execute"));
    char *text = json_dumps(claims, JSON_COMPACT);
    json_decref(claims);
    char *tampered = forged_payload(good, text);
    free(text);
    expect_rc(v, tampered, "trading:execute", MANDATE_CLIENT_TOKEN_INVALID, NULL);
    free(tampered);
    /* a flipped signature byte */
    char *flipped = strdup(good);
    char *last = flipped + strlen(flipped) - 3;
    *last = *last == 'A' ? 'B' : 'A';
    expect_rc(v, flipped, NULL, MANDATE_CLIENT_TOKEN_INVALID, NULL);
    free(flipped);

    /* alg none, with and without a signature */
    char *input =
        forged_signing_input(good, "{\"alg\":\"none\",\"typ\":\"at+jwt\",\"kid\":\"k1\"}");
    char none[4096];
    snprintf(none, sizeof(none), "%s.", input);
    expect_rc(v, none, NULL, MANDATE_CLIENT_TOKEN_INVALID, NULL);
    snprintf(none, sizeof(none), "%s.%s", input, strrchr(good, '.') + 1);
    expect_rc(v, none, NULL, MANDATE_CLIENT_TOKEN_INVALID, NULL);
    free(input);

    /* HS256 keyed with the public key, as PEM */
    input = forged_signing_input(good, "{\"alg\":\"HS256\",\"typ\":\"at+jwt\",\"kid\":\"k1\"}");
    char *hs = forged_hs256_token(input, es_key);
    expect_rc(v, hs, NULL, MANDATE_CLIENT_TOKEN_INVALID, NULL);
    free(hs);
    free(input);

    /* the right kid, another key's signature (and an alg the key is not for) */
    char *other = sign(rogue_key, "k1", "at+jwt", token_claims(fx, T0, 100));
    expect_rc(v, other, NULL, MANDATE_CLIENT_TOKEN_INVALID, NULL);
    free(other);
    other = sign(ed_key, "k1", "at+jwt", token_claims(fx, T0, 100));
    expect_rc(v, other, NULL, MANDATE_CLIENT_TOKEN_INVALID, NULL);
    free(other);

    /* typ and kid */
    other = sign(es_key, "k1", "JWT", token_claims(fx, T0, 100));
    expect_rc(v, other, NULL, MANDATE_CLIENT_TOKEN_INVALID, "typ");
    free(other);
    other = sign(es_key, "k1", NULL, token_claims(fx, T0, 100));
    expect_rc(v, other, NULL, MANDATE_CLIENT_TOKEN_INVALID, "typ");
    free(other);
    other = sign(es_key, NULL, "at+jwt", token_claims(fx, T0, 100));
    expect_rc(v, other, NULL, MANDATE_CLIENT_TOKEN_INVALID, "kid");
    free(other);
    /* the keys the fixture's JWKS holds besides k1 were skipped */
    other = sign(es_key, "sym", "at+jwt", token_claims(fx, T0, 100));
    expect_rc(v, other, NULL, MANDATE_CLIENT_TOKEN_INVALID, NULL);
    free(other);

    /* not a JWS at all */
    expect_rc(v, "", NULL, MANDATE_CLIENT_TOKEN_INVALID, NULL);
    expect_rc(v, "opaque-token", NULL, MANDATE_CLIENT_TOKEN_INVALID, NULL);
    expect_rc(v, "a.b.c", NULL, MANDATE_CLIENT_TOKEN_INVALID, NULL);
    assert_int_equal(mandate_verifier_check(v, NULL, NULL, NULL, NULL, 0),
                     MANDATE_CLIENT_INVALID);
    free(good);
    mandate_verifier_free(&v);
}

static void test_verify_key_rotation(void **state)
{
    fixture *fx = *state;
    mandate_verifier *v = new_verifier(fx);
    char *t1 = mint(fx);
    expect_rc(v, t1, NULL, MANDATE_CLIENT_OK, NULL);
    assert_int_equal(mandate_verifier_jwks_fetches(v), 1);

    /* a new key: within the refetch interval of the first fetch, an unknown
     * kid is refused without a fetch */
    loopback_publish(&fx->srv, rs_key, "k2");
    char *t2 = mint_with(fx, rs_key, "k2", NULL, NULL);
    set_now(fx, T0 + 5);
    expect_rc(v, t2, NULL, MANDATE_CLIENT_TOKEN_INVALID, "kid");
    assert_int_equal(mandate_verifier_jwks_fetches(v), 1);
    /* after it: exactly one refetch, and the token verifies */
    set_now(fx, T0 + 10);
    expect_rc(v, t2, NULL, MANDATE_CLIENT_OK, NULL);
    assert_int_equal(mandate_verifier_jwks_fetches(v), 2);
    expect_rc(v, t2, NULL, MANDATE_CLIENT_OK, NULL);
    expect_rc(v, t1, NULL, MANDATE_CLIENT_OK, NULL);
    assert_int_equal(mandate_verifier_jwks_fetches(v), 2);
    assert_int_equal(atomic_load(&fx->jwks_requests), 2);

    /* a flood of unknown kids: at most one refetch per interval */
    set_now(fx, T0 + 20);
    for (int i = 0; i < 100; i++) {
        char kid[32];
        snprintf(kid, sizeof(kid), "made-up-%d", i);
        char *bad = sign(rogue_key, kid, "at+jwt", token_claims(fx, T0 + 20, 100));
        expect_rc(v, bad, NULL, MANDATE_CLIENT_TOKEN_INVALID, NULL);
        free(bad);
    }
    assert_int_equal(mandate_verifier_jwks_fetches(v), 3);
    assert_int_equal(atomic_load(&fx->jwks_requests), 3);
    /* good tokens go on verifying meanwhile */
    expect_rc(v, t2, NULL, MANDATE_CLIENT_OK, NULL);
    free(t1);
    free(t2);
    mandate_verifier_free(&v);
}

static void test_verify_jwks_max_age(void **state)
{
    fixture *fx = *state;
    mandate_verifier *v = new_verifier(fx);
    char *t = mint(fx);
    expect_rc(v, t, NULL, MANDATE_CLIENT_OK, NULL);
    free(t);
    set_now(fx, T0 + 299);
    t = mint(fx);
    expect_rc(v, t, NULL, MANDATE_CLIENT_OK, NULL);
    assert_int_equal(mandate_verifier_jwks_fetches(v), 1);
    free(t);
    set_now(fx, T0 + 300); /* too old: fetched again */
    t = mint(fx);
    expect_rc(v, t, NULL, MANDATE_CLIENT_OK, NULL);
    assert_int_equal(mandate_verifier_jwks_fetches(v), 2);
    free(t);
    /* the broker goes away: the old set is used on */
    loopback_server_stop(&fx->srv);
    set_now(fx, T0 + 700);
    t = mint(fx);
    expect_rc(v, t, NULL, MANDATE_CLIENT_OK, NULL);
    free(t);
    /* an unknown kid cannot be checked now */
    t = sign(rogue_key, "k9", "at+jwt", token_claims(fx, T0 + 800, 100));
    set_now(fx, T0 + 800);
    expect_rc(v, t, NULL, MANDATE_CLIENT_UNAVAILABLE, NULL);
    free(t);
    mandate_verifier_free(&v);
}

static void test_verify_metadata_issuer_mismatch(void **state)
{
    fixture *fx = *state;
    snprintf(fx->metadata_issuer, sizeof(fx->metadata_issuer), "http://evil.example");
    mandate_verifier *v = new_verifier(fx);
    char *t = mint(fx);
    expect_rc(v, t, NULL, MANDATE_CLIENT_INVALID, "issuer");
    assert_int_equal(mandate_verifier_jwks_fetches(v), 0);
    assert_int_equal(atomic_load(&fx->jwks_requests), 0);
    free(t);
    mandate_verifier_free(&v);
}

static void test_verify_broker_down(void **state)
{
    fixture *fx = *state;
    mandate_verifier *v = new_verifier(fx);
    char *t = mint(fx);
    loopback_server_stop(&fx->srv);
    expect_rc(v, t, NULL, MANDATE_CLIENT_UNAVAILABLE, "metadata");
    /* within the interval: no new attempt, the same answer */
    expect_rc(v, t, NULL, MANDATE_CLIENT_UNAVAILABLE, NULL);
    free(t);
    mandate_verifier_free(&v);
}

typedef struct checker {
    mandate_verifier *v;
    const char *token;
    mandate_client_rc rc;
} checker;

static void checker_run(void *arg)
{
    checker *c = arg;
    c->rc = mandate_verifier_check(c->v, c->token, "mcp:call", NULL, NULL, 0);
}

static void test_verify_concurrent_first_use(void **state)
{
    fixture *fx = *state;
    fx->jwks_delay_ms = 300;
    mandate_verifier *v = new_verifier(fx);
    char *t = mint(fx);
    checker c[8];
    for (size_t i = 0; i < 8; i++)
        c[i] = (checker){.v = v, .token = t};
    run_together(checker_run, c, 8, sizeof(c[0]));
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(c[i].rc, MANDATE_CLIENT_OK);
    assert_int_equal(mandate_verifier_jwks_fetches(v), 1);
    assert_int_equal(atomic_load(&fx->jwks_requests), 1);
    free(t);
    mandate_verifier_free(&v);
}

static void test_verifier_config(void **state)
{
    fixture *fx = *state;
    char err[256];
    mandate_verifier_config good = {.issuer = fx->srv.base, .audience = AUDIENCE};
    mandate_verifier_config cfg;
    assert_null(mandate_verifier_new(NULL, err, sizeof(err)));
    cfg = good;
    cfg.issuer = "broker.example";
    assert_null(mandate_verifier_new(&cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "issuer"));
    cfg = good;
    cfg.audience = NULL;
    assert_null(mandate_verifier_new(&cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "audience"));
    cfg = good;
    cfg.leeway = -1;
    assert_null(mandate_verifier_new(&cfg, NULL, 0));
    mandate_verifier *v = mandate_verifier_new(&good, err, sizeof(err));
    assert_non_null(v);
    mandate_verifier_free(&v);
    mandate_verifier_free(&v);
    mandate_verifier_free(NULL);
    mandate_verified_token_clear(NULL);
    assert_int_equal(mandate_verifier_jwks_fetches(NULL), 0);
}

/* --- both: a token from the source passes the verifier ----------------------- */

static void test_source_then_verifier(void **state)
{
    fixture *fx = *state;
    mandate_token_source *src = new_source(fx);
    mandate_verifier *v = new_verifier(fx);
    char *token = get_ok(src, NULL);
    expect_rc(v, token, "mcp:call", MANDATE_CLIENT_OK, NULL);
    expect_rc(v, token, "trading:execute", MANDATE_CLIENT_INSUFFICIENT_SCOPE, NULL);
    free(token);
    mandate_verifier_free(&v);
    mandate_token_source_free(&src);
}

/* --- DPoP -------------------------------------------------------------------- */

static mandate_token_source *new_dpop_source(fixture *fx, const mandate_dpop_key *key)
{
    return new_source_with(fx, NULL, key);
}

static mandate_dpop_key *new_key(const char *alg)
{
    char err[256] = "";
    mandate_dpop_key *key = mandate_dpop_key_generate(alg, err, sizeof(err));
    if (key == NULL)
        fail_msg("mandate_dpop_key_generate(%s): %s", alg ? alg : "NULL", err);
    return key;
}

static void test_dpop_token_with_nonce(void **state)
{
    fixture *fx = *state;
    snprintf(fx->token_nonce, sizeof(fx->token_nonce), "as-nonce-1");
    mandate_dpop_key *key = new_key(NULL);
    mandate_token_source *src = new_dpop_source(fx, key);
    /* the source holds its own reference */
    char jkt[MANDATE_JWK_THUMBPRINT_LEN + 1];
    snprintf(jkt, sizeof(jkt), "%s", mandate_dpop_key_thumbprint(key));
    assert_int_equal(strlen(jkt), MANDATE_JWK_THUMBPRINT_LEN);
    mandate_dpop_key_free(&key);
    assert_null(key);
    assert_string_equal(mandate_token_source_token_type(src), "Bearer");

    /* the first proof has no nonce: refused with one, and sent again */
    char *t1 = get_ok(src, NULL);
    assert_int_equal(atomic_load(&fx->token_requests), 2);
    assert_int_equal(mandate_token_source_fetches(src), 2);
    assert_string_equal(fx->last_jkt, jkt);
    assert_string_equal(mandate_token_source_token_type(src), "DPoP");
    assert_string_equal(fx->last_auth, fx->expected_auth); /* still the client's secret */

    /* the nonce is kept: the next token takes one request */
    set_now(fx, T0 + 80);
    char *t2 = get_ok(src, NULL);
    assert_string_not_equal(t1, t2);
    assert_int_equal(atomic_load(&fx->token_requests), 3);

    /* a new nonce: one retry, not a loop */
    snprintf(fx->token_nonce, sizeof(fx->token_nonce), "as-nonce-2");
    set_now(fx, T0 + 160);
    char *t3 = get_ok(src, NULL);
    assert_int_equal(atomic_load(&fx->token_requests), 5);
    free(t1);
    free(t2);
    free(t3);
    mandate_token_source_free(&src);
}

static void test_dpop_token_nonce_refused_twice(void **state)
{
    fixture *fx = *state;
    /* a broker that never takes the nonce it gives: one retry, then its
     * error */
    snprintf(fx->token_nonce, sizeof(fx->token_nonce), "!as-nonce");
    mandate_dpop_key *key = new_key("EdDSA");
    mandate_token_source *src = new_dpop_source(fx, key);
    mandate_dpop_key_free(&key);
    char err[256];
    get_refused(src, MANDATE_CLIENT_DENIED, err, sizeof(err));
    assert_string_equal(err, "use_dpop_nonce");
    assert_int_equal(atomic_load(&fx->token_requests), 2);

    /* a nonce that is not printable ASCII is not kept: no retry */
    snprintf(fx->token_nonce, sizeof(fx->token_nonce), "as nonce");
    set_now(fx, T0 + 10); /* past the retry pause */
    get_refused(src, MANDATE_CLIENT_DENIED, err, sizeof(err));
    assert_int_equal(atomic_load(&fx->token_requests), 3);
    mandate_token_source_free(&src);
}

static void test_dpop_token_type_without_proof(void **state)
{
    fixture *fx = *state;
    fx->answer_dpop_without_proof = true;
    mandate_token_source *src = new_source(fx);
    char err[256];
    get_refused(src, MANDATE_CLIENT_UNAVAILABLE, err, sizeof(err));
    assert_non_null(strstr(err, "token_type is DPoP, and no proof was sent"));
    mandate_token_source_free(&src);
}

static void test_dpop_resource_request(void **state)
{
    fixture *fx = *state;
    snprintf(fx->resource_nonce, sizeof(fx->resource_nonce), "rs-nonce-1");
    mandate_dpop_key *key = new_key("RS256");
    mandate_token_source *src = new_dpop_source(fx, key);
    char url[128], err[256] = "", *body = NULL;
    snprintf(url, sizeof(url), "%s/resource?q=1", fx->srv.base);
    long status = 0;
    /* 401 use_dpop_nonce, then the same request with the nonce: 200 */
    mandate_client_rc rc = mandate_token_source_request(src, "POST", url, "{\"a\":1}", NULL,
                                                        &status, &body, err, sizeof(err));
    assert_int_equal(rc, MANDATE_CLIENT_OK);
    assert_int_equal(status, 200);
    assert_string_equal(body, "{\"ok\":true}");
    free(body);
    assert_int_equal(atomic_load(&fx->resource_requests), 2);
    assert_string_equal(fx->last_resource_error, "");
    assert_true(strncmp(fx->last_resource_auth, "DPoP ", 5) == 0);
    /* the nonce is kept for the next call */
    rc = mandate_token_source_request(src, "POST", url, NULL, NULL, &status, NULL, err,
                                      sizeof(err));
    assert_int_equal(rc, MANDATE_CLIENT_OK);
    assert_int_equal(status, 200);
    assert_int_equal(atomic_load(&fx->resource_requests), 3);

    /* the headers alone: a proof for that method and URI, with ath */
    char *authorization = NULL, *proof = NULL;
    assert_int_equal(mandate_token_source_headers(src, "GET", url, "rs-nonce-1", &authorization,
                                                  &proof, err, sizeof(err)),
                     MANDATE_CLIENT_OK);
    assert_true(strncmp(authorization, "DPoP ", 5) == 0);
    mandate_dpop_proof p;
    char uri[128];
    snprintf(uri, sizeof(uri), "%s/resource", fx->srv.base);
    assert_string_equal(
        proof_refused(fx, proof, "GET", uri, authorization + 5, "rs-nonce-1", &p), "");
    assert_string_equal(p.jkt, mandate_dpop_key_thumbprint(key));
    /* not for another method, nor another token */
    assert_string_not_equal(proof_refused(fx, proof, "POST", uri, authorization + 5, "", &p),
                            "");
    assert_string_not_equal(proof_refused(fx, proof, "GET", uri, "another", "", &p), "");
    free(authorization);
    free(proof);
    mandate_token_source_free(&src);
    mandate_dpop_key_free(&key);
}

static void test_dpop_stolen_token_refused(void **state)
{
    fixture *fx = *state;
    mandate_dpop_key *key = new_key(NULL), *thief = new_key(NULL);
    mandate_token_source *src = new_dpop_source(fx, key);
    char url[128], err[256] = "", *token = get_ok(src, NULL);
    snprintf(url, sizeof(url), "%s/resource", fx->srv.base);
    char *proof = NULL;
    assert_int_equal(
        mandate_dpop_key_proof(thief, "GET", url, token, NULL, &proof, err, sizeof(err)),
        MANDATE_CLIENT_OK);
    mandate_dpop_proof p;
    /* the thief's proof is good on its own: the resource must compare its
     * key with the token's cnf.jkt, which the thief cannot match */
    assert_string_equal(proof_refused(fx, proof, "GET", url, token, "", &p), "");
    assert_string_not_equal(p.jkt, mandate_dpop_key_thumbprint(key));
    assert_string_equal(p.jkt, mandate_dpop_key_thumbprint(thief));
    free(proof);
    free(token);
    mandate_token_source_free(&src);
    mandate_dpop_key_free(&key);
    mandate_dpop_key_free(&thief);
}

static void test_dpop_bearer_headers(void **state)
{
    fixture *fx = *state;
    mandate_token_source *src = new_source(fx);
    char url[128], err[256] = "", *authorization = NULL, *proof = (char *)"x";
    snprintf(url, sizeof(url), "%s/resource", fx->srv.base);
    assert_int_equal(mandate_token_source_headers(src, "GET", url, NULL, &authorization, &proof,
                                                  err, sizeof(err)),
                     MANDATE_CLIENT_OK);
    assert_true(strncmp(authorization, "Bearer ey", 9) == 0);
    assert_null(proof);
    free(authorization);
    assert_int_equal(mandate_token_source_headers(src, "GET", "ftp://x/", NULL, &authorization,
                                                  &proof, err, sizeof(err)),
                     MANDATE_CLIENT_INVALID);
    mandate_token_source_free(&src);
}

/* A JWK of key with its private member d added. */
static char *private_jwk(EVP_PKEY *key, bool wrong_d)
{
    json_t *jwk = mandate_jwk_from_key(key, "k");
    unsigned char d[32];
    size_t n = sizeof(d);
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519) {
        assert_int_equal(EVP_PKEY_get_raw_private_key(key, d, &n), 1);
    } else {
        BIGNUM *bn = NULL;
        assert_int_equal(EVP_PKEY_get_bn_param(key, "priv", &bn), 1);
        assert_int_equal(BN_bn2binpad(bn, d, 32), 32);
        BN_clear_free(bn);
    }
    if (wrong_d)
        d[31] ^= 1;
    char b64[64];
    mandate_b64url_encode(d, 32, b64);
    json_object_set_new(jwk, "d", json_string(b64));
    char *text = json_dumps(jwk, JSON_COMPACT);
    json_decref(jwk);
    return text;
}

static char *write_temp(const char *text)
{
    char *path = strdup("/tmp/test-libmandate-key-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void expect_load(const char *text, const char *jkt, const char *why)
{
    char *path = write_temp(text), err[256] = "";
    mandate_dpop_key *key = mandate_dpop_key_load(path, err, sizeof(err));
    unlink(path);
    free(path);
    if (jkt != NULL) {
        if (key == NULL)
            fail_msg("load: %s", err);
        assert_string_equal(mandate_dpop_key_thumbprint(key), jkt);
    } else {
        assert_null(key);
        if (strstr(err, why) == NULL)
            fail_msg("load: expected \"%s\", got \"%s\"", why, err);
    }
    mandate_dpop_key_free(&key);
}

static void test_dpop_key_files(void **state)
{
    (void)state;
    EVP_PKEY *keys[] = {es_key, ed_key, rs_key};
    for (size_t i = 0; i < 3; i++) {
        char jkt[MANDATE_JWK_THUMBPRINT_LEN + 1];
        assert_true(mandate_jwk_thumbprint(keys[i], jkt));
        BIO *bio = BIO_new(BIO_s_mem());
        assert_int_equal(PEM_write_bio_PrivateKey(bio, keys[i], NULL, NULL, 0, NULL, NULL), 1);
        char *pem = NULL;
        long n = BIO_get_mem_data(bio, &pem);
        char *text = strndup(pem, (size_t)n);
        BIO_free(bio);
        expect_load(text, jkt, NULL);
        free(text);
        if (keys[i] != rs_key) {
            text = private_jwk(keys[i], false);
            expect_load(text, jkt, NULL);
            free(text);
            text = private_jwk(keys[i], true);
            expect_load(text, NULL, "not the public key of its d");
            free(text);
        }
    }
    /* a public JWK, an HMAC key, garbage, an empty file, a small RSA key */
    json_t *pub = mandate_jwk_from_key(es_key, "k");
    char *text = json_dumps(pub, JSON_COMPACT);
    json_decref(pub);
    expect_load(text, NULL, "EC P-256 or OKP Ed25519 with its private member d");
    free(text);
    expect_load("{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}", NULL, "private member d");
    expect_load("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", NULL,
                "neither a PEM private key nor a JWK");
    expect_load("", NULL, "empty");
    EVP_PKEY *small = EVP_RSA_gen(1024);
    assert_non_null(small);
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(bio, small, NULL, NULL, 0, NULL, NULL), 1);
    char *pem = NULL;
    long n = BIO_get_mem_data(bio, &pem);
    text = strndup(pem, (size_t)n);
    BIO_free(bio);
    EVP_PKEY_free(small);
    expect_load(text, NULL, "2048 bits");
    free(text);
    char err[256] = "";
    assert_null(mandate_dpop_key_load("/nonexistent/key.pem", err, sizeof(err)));
    assert_null(mandate_dpop_key_generate("HS256", err, sizeof(err)));
    assert_null(mandate_dpop_key_generate("none", err, sizeof(err)));
    mandate_dpop_key *k = mandate_dpop_key_generate("EdDSA", err, sizeof(err));
    assert_non_null(k);
    char *proof = NULL;
    assert_int_equal(
        mandate_dpop_key_proof(k, "GET", "http://x/", NULL, "", &proof, err, sizeof(err)),
        MANDATE_CLIENT_INVALID); /* an empty nonce */
    assert_int_equal(
        mandate_dpop_key_proof(k, "GET", "file:///etc", NULL, NULL, &proof, err, sizeof(err)),
        MANDATE_CLIENT_INVALID);
    assert_null(proof);
    mandate_dpop_key_free(&k);
    mandate_dpop_key_free(&k); /* NULL: nothing */
}

static char *proof_by(const mandate_dpop_key *key, const char *method, const char *uri,
                      const char *token)
{
    char *proof = NULL, err[256] = "";
    if (mandate_dpop_key_proof(key, method, uri, token, NULL, &proof, err, sizeof(err)) !=
        MANDATE_CLIENT_OK)
        fail_msg("proof: %s", err);
    return proof;
}

/* what: the function that answered rc with err; want and why (NULL: any
 * message): what it should have answered */
static void expect_answer(const char *what, mandate_client_rc rc, const char *err,
                          mandate_client_rc want, const char *why)
{
    if (rc != want)
        fail_msg("%s: %s, not %s: %s", what, mandate_client_rc_name(rc),
                 mandate_client_rc_name(want), err);
    if (why != NULL && strstr(err, why) == NULL)
        fail_msg("%s: expected \"%s\", got \"%s\"", what, why, err);
}

/* What the tests of sender-constrained tokens start from: the fixture's
 * clock at the real time (a DPoP proof's iat is), a verifier, a token bound
 * by cnf and a bearer token. */
typedef struct bound_case {
    mandate_verifier *v;
    char *bound, *bearer;
} bound_case;

static bound_case bound_case_start(fixture *fx, json_t *cnf)
{
    set_now(fx, (int64_t)time(NULL));
    bound_case bc = {.v = new_verifier(fx)};
    bc.bound = mint_with(fx, es_key, "k1", "cnf", cnf);
    bc.bearer = mint(fx);
    return bc;
}

static void bound_case_end(bound_case *bc)
{
    free(bc->bound);
    free(bc->bearer);
    mandate_verifier_free(&bc->v);
}

static void expect_dpop(mandate_verifier *v, const char *token, const char *proof,
                        const char *method, mandate_client_rc want, const char *why)
{
    char err[256] = "";
    mandate_verified_token out;
    mandate_client_rc rc =
        mandate_verifier_check_dpop(v, token, proof, method, "https://tools.example/mcp?x=1",
                                    "mcp:call", &out, err, sizeof(err));
    expect_answer("check_dpop", rc, err, want, why);
    if (rc == MANDATE_CLIENT_OK)
        assert_non_null(out.cnf_jkt);
    mandate_verified_token_clear(&out);
}

static void test_verify_dpop(void **state)
{
    fixture *fx = *state;
    mandate_dpop_key *key = new_key(NULL), *thief = new_key("EdDSA");
    const char *uri = "https://tools.example/mcp";
    bound_case bc =
        bound_case_start(fx, json_pack("{s:s}", "jkt", mandate_dpop_key_thumbprint(key)));
    mandate_verifier *v = bc.v;
    const char *bound = bc.bound, *bearer = bc.bearer;

    /* a bound token as a bearer token: refused */
    expect_rc(v, bound, "mcp:call", MANDATE_CLIENT_TOKEN_INVALID,
              "DPoP-bound, presented without a proof");
    /* with a proof of its key: accepted, once */
    char *proof = proof_by(key, "POST", uri, bound);
    expect_dpop(v, bound, proof, "POST", MANDATE_CLIENT_OK, NULL);
    expect_dpop(v, bound, proof, "POST", MANDATE_CLIENT_TOKEN_INVALID, "used before");
    free(proof);
    /* the thief's own key, another method, no ath, no proof */
    proof = proof_by(thief, "POST", uri, bound);
    expect_dpop(v, bound, proof, "POST", MANDATE_CLIENT_TOKEN_INVALID, "another key");
    free(proof);
    proof = proof_by(key, "GET", uri, bound);
    expect_dpop(v, bound, proof, "POST", MANDATE_CLIENT_TOKEN_INVALID, "htm");
    free(proof);
    proof = proof_by(key, "POST", uri, NULL);
    expect_dpop(v, bound, proof, "POST", MANDATE_CLIENT_TOKEN_INVALID, "ath");
    free(proof);
    proof = proof_by(key, "POST", "https://elsewhere.example/mcp", bound);
    expect_dpop(v, bound, proof, "POST", MANDATE_CLIENT_TOKEN_INVALID, "htu");
    free(proof);
    expect_dpop(v, bound, NULL, "POST", MANDATE_CLIENT_TOKEN_INVALID, "missing");
    /* a bearer token with the DPoP scheme */
    proof = proof_by(key, "POST", uri, bearer);
    expect_dpop(v, bearer, proof, "POST", MANDATE_CLIENT_TOKEN_INVALID, "not DPoP-bound");
    free(proof);
    /* a stale proof: 61 s later */
    proof = proof_by(key, "POST", uri, bound);
    set_now(fx, atomic_load(&fx->now) + 70);
    expect_dpop(v, bound, proof, "POST", MANDATE_CLIENT_TOKEN_INVALID, "iat");
    free(proof);
    mandate_dpop_key_free(&key);
    mandate_dpop_key_free(&thief);
    bound_case_end(&bc);
}

/* --- certificate-bound tokens (RFC 8705 §3) -------------------------------------- */

/* A self-signed client certificate of key, as DER (malloc'd, *len_r). */
static unsigned char *client_cert_der(EVP_PKEY *key, const char *cn, size_t *len_r)
{
    X509 *x = X509_new();
    assert_non_null(x);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_set_pubkey(x, key);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    assert_true(n > 0);
    X509_free(x);
    unsigned char *copy = malloc((size_t)n);
    memcpy(copy, der, (size_t)n);
    OPENSSL_free(der);
    *len_r = (size_t)n;
    return copy;
}

/* base64url(SHA-256(DER)), by hand (RFC 8705 §3.1) */
static char *x5t_of(const unsigned char *der, size_t len)
{
    unsigned char digest[32];
    assert_int_equal(EVP_Digest(der, len, digest, NULL, EVP_sha256(), NULL), 1);
    char *out = malloc(mandate_b64url_encoded_len(sizeof(digest)) + 1);
    mandate_b64url_encode(digest, sizeof(digest), out);
    return out;
}

static void expect_request(mandate_verifier *v, const mandate_verifier_request *rq,
                           mandate_client_rc want, const char *why, const char *x5t)
{
    char err[256] = "";
    mandate_verified_token out;
    mandate_client_rc rc =
        mandate_verifier_check_request(v, rq, "mcp:call", &out, err, sizeof(err));
    expect_answer("check_request", rc, err, want, why);
    if (rc == MANDATE_CLIENT_OK) {
        assert_string_equal(out.subject, CLIENT_ID);
        if (x5t != NULL)
            assert_string_equal(out.cnf_x5t_s256, x5t);
        else
            assert_null(out.cnf_x5t_s256);
    } else {
        assert_null(out.subject);
    }
    mandate_verified_token_clear(&out);
}

/* Two client certificates: the agent's (of es_key), to which the tests bind
 * tokens, and a thief's (of rogue_key). */
typedef struct client_certs {
    unsigned char *agent_der, *thief_der;
    size_t agent_len, thief_len;
    char *agent_x5t;
} client_certs;

static client_certs client_certs_new(void)
{
    client_certs cc;
    cc.agent_der = client_cert_der(es_key, "agent", &cc.agent_len);
    cc.thief_der = client_cert_der(rogue_key, "thief", &cc.thief_len);
    cc.agent_x5t = x5t_of(cc.agent_der, cc.agent_len);
    return cc;
}

static void client_certs_free(client_certs *cc)
{
    free(cc->agent_der);
    free(cc->thief_der);
    free(cc->agent_x5t);
}

/* rq with the thief's certificate is refused, with the agent's taken; rq is
 * left with the agent's. */
static void expect_agent_cert_only(mandate_verifier *v, mandate_verifier_request *rq,
                                   const client_certs *cc)
{
    rq->client_cert_der = cc->thief_der;
    rq->client_cert_len = cc->thief_len;
    expect_request(v, rq, MANDATE_CLIENT_TOKEN_INVALID, "another client certificate", NULL);
    rq->client_cert_der = cc->agent_der;
    rq->client_cert_len = cc->agent_len;
    expect_request(v, rq, MANDATE_CLIENT_OK, NULL, cc->agent_x5t);
}

/* A token bound to a client certificate is refused as a bearer token (a
 * copied one must be no use without the certificate) and taken with that
 * certificate only; a cnf the verifier cannot check is refused, never
 * taken as bearer (RFC 7800 §3). */
static void test_verify_cert_bound(void **state)
{
    fixture *fx = *state;
    client_certs cc = client_certs_new();
    const char *x5t = cc.agent_x5t;
    bound_case bc = bound_case_start(fx, json_pack("{s:s}", "x5t#S256", x5t));
    mandate_verifier *v = bc.v;
    const char *bound = bc.bound, *bearer = bc.bearer;

    /* as a bearer token, through either older function: refused */
    expect_rc(v, bound, "mcp:call", MANDATE_CLIENT_TOKEN_INVALID,
              "certificate-bound (cnf x5t#S256), presented without a client certificate");
    mandate_dpop_key *key = new_key(NULL);
    char *proof = proof_by(key, "POST", "https://tools.example/mcp", bound);
    expect_dpop(v, bound, proof, "POST", MANDATE_CLIENT_TOKEN_INVALID, "certificate-bound");
    free(proof);

    /* with the request's certificate: its own passes, another does not */
    mandate_verifier_request rq = {.token = bound};
    expect_request(v, &rq, MANDATE_CLIENT_TOKEN_INVALID, "without a client certificate", NULL);
    expect_agent_cert_only(v, &rq, &cc);
    /* not a certificate: the caller's mistake, not the token's */
    rq.client_cert_len = cc.agent_len - 1;
    expect_request(v, &rq, MANDATE_CLIENT_INVALID, "not one DER X.509", NULL);
    rq.client_cert_len = cc.agent_len;
    /* a bearer token with a certificate: no objection */
    rq.token = bearer;
    expect_request(v, &rq, MANDATE_CLIENT_OK, NULL, NULL);

    /* bound both ways (a certificate client that sent a DPoP proof): both */
    char *both = mint_with(
        fx, es_key, "k1", "cnf",
        json_pack("{s:s,s:s}", "x5t#S256", x5t, "jkt", mandate_dpop_key_thumbprint(key)));
    rq.token = both;
    rq.method = "POST";
    rq.uri = "https://tools.example/mcp";
    expect_request(v, &rq, MANDATE_CLIENT_TOKEN_INVALID, "without a proof", NULL);
    proof = proof_by(key, "POST", rq.uri, both);
    rq.dpop_proof = proof;
    expect_agent_cert_only(v, &rq, &cc);
    free(proof);

    /* a cnf naming what the verifier cannot check, or not a thumbprint */
    json_t *unknown[] = {
        json_pack("{s:{s:s}}", "jwk", "kty", "EC"),
        json_pack("{s:s}", "jku", "https://keys.example/jwks"),
        json_pack("{s:s,s:s}", "x5t#S256", x5t, "kid", "k1"),
        json_pack("{s:s}", "x5t#S256", "not a thumbprint"),
        json_pack("{}"),
        json_string("x5t"),
    };
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        char *t = mint_with(fx, es_key, "k1", "cnf", unknown[i]);
        expect_rc(v, t, "mcp:call", MANDATE_CLIENT_TOKEN_INVALID, "token: cnf");
        rq = (mandate_verifier_request){
            .token = t, .client_cert_der = cc.agent_der, .client_cert_len = cc.agent_len};
        expect_request(v, &rq, MANDATE_CLIENT_TOKEN_INVALID, "token: cnf", NULL);
        free(t);
    }

    /* arguments */
    expect_request(v, &(mandate_verifier_request){0}, MANDATE_CLIENT_INVALID, "no token", NULL);
    rq = (mandate_verifier_request){.token = bearer, .dpop_proof = "x"};
    expect_request(v, &rq, MANDATE_CLIENT_INVALID, "method or URI", NULL);

    free(both);
    client_certs_free(&cc);
    mandate_dpop_key_free(&key);
    bound_case_end(&bc);
}

static void test_tls_client_config(void **state)
{
    fixture *fx = *state;
    mandate_token_source_config cfg = {.token_url = fx->token_url,
                                       .client_id = "a",
                                       .client_secret = "b",
                                       .tls_client_cert = "/x/cert.pem"};
    char err[256] = "";
    assert_null(mandate_token_source_new(&cfg, err, sizeof(err)));
    assert_string_equal(err, "tls_client_cert and tls_client_key go together");
    /* given: a client certificate libcurl cannot read fails the request,
     * it is not silently left out (over https; over http curl ignores it) */
    cfg.tls_client_key = "/x/key.pem";
    mandate_token_source *src = mandate_token_source_new(&cfg, err, sizeof(err));
    assert_non_null(src);
    mandate_token_source_free(&src);
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_token_cache_and_refresh),
        TEST(test_token_refresh_at),
        TEST(test_token_expires_in_absent),
        TEST(test_token_single_flight),
        TEST(test_token_waiters_get_the_error),
        TEST(test_token_denied),
        TEST(test_token_unavailable),
        TEST(test_token_source_config),
        TEST(test_verify_good),
        TEST(test_verify_insufficient_scope),
        TEST(test_verify_wrong_audience_and_issuer),
        TEST(test_verify_times),
        TEST(test_verify_forgeries),
        TEST(test_verify_key_rotation),
        TEST(test_verify_jwks_max_age),
        TEST(test_verify_metadata_issuer_mismatch),
        TEST(test_verify_broker_down),
        TEST(test_verify_concurrent_first_use),
        TEST(test_verifier_config),
        TEST(test_source_then_verifier),
        TEST(test_dpop_token_with_nonce),
        TEST(test_dpop_token_nonce_refused_twice),
        TEST(test_dpop_token_type_without_proof),
        TEST(test_dpop_resource_request),
        TEST(test_dpop_stolen_token_refused),
        TEST(test_dpop_bearer_headers),
        TEST(test_dpop_key_files),
        TEST(test_verify_dpop),
        TEST(test_verify_cert_bound),
        TEST(test_tls_client_config),
    };
    return cmocka_run_group_tests(tests, signing_keys_setup, signing_keys_teardown);
}
