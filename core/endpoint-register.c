/* POST /oauth2/register: OAuth 2.0 Dynamic Client Registration (RFC 7591),
 * for MCP clients that know neither Client ID Metadata Documents nor a
 * pre-registered client id. registration.mode says who may register:
 *
 *   off    (the default) the endpoint is not there: 404, as for any other
 *          path, and not in the metadata;
 *   token  with an initial access token (Authorization: Bearer, RFC 7591
 *          §3) an admin issued with mandatectl client registration-token;
 *          each token registers one client, then is gone;
 *   open   anyone, at most registration.rate registrations an hour from
 *          one address.
 *
 * A registered client is public (token_endpoint_auth_method "none": it is
 * given no secret), of registration.tenant, with the scopes and audiences
 * of registration.scopes and .audiences (narrowed to the scope it asks
 * for), and its metadata checked as a document's (core/client-documents.c)
 * with "registered_by": "registration". Anyone can call this endpoint, so
 * every refusal goes through the refusal budget (core/refusals.c). */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "audit-events-private.h"
#include "client-documents-private.h"
#include "clients-private.h"
#include "clock-private.h"
#include "endpoints-private.h"
#include "jose.h"
#include "log-private.h"
#include "oauth-private.h"
#include "plugins-private.h"
#include "pool-private.h"
#include "ratelimit-private.h"
#include "refusals-private.h"

#define TOKEN_PREFIX "mit_" /* never a refresh token's "mrt_" */
#define TOKEN_BYTES 32
#define CLIENT_ID_PREFIX "dcr-"
#define CLIENT_ID_RANDOM 16
/* addresses whose registrations are counted at once (registration.rate) */
#define RATE_BUCKETS 4096

/* --- initial access tokens ----------------------------------------------------- */

mandate_rc mandate_registration_token_issue(mandate_runtime *rt, mandate_pool *pool,
                                            int64_t ttl, const char *issued_by, char **token_r,
                                            int64_t *expires_at_r, mandate_error *err)
{
    unsigned char raw[TOKEN_BYTES], hash[SHA256_DIGEST_LENGTH];
    *token_r = NULL;
    if (ttl < 1 || ttl > MANDATE_REGISTRATION_TOKEN_TTL_MAX)
        return mandate_error_set(err, MANDATE_INVALID, "the lifetime must be 1 to %d seconds",
                                 MANDATE_REGISTRATION_TOKEN_TTL_MAX);
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return mandate_error_set(err, MANDATE_ERROR, "no random bytes");
    char *token = mandate_pool_alloc(pool, strlen(TOKEN_PREFIX) +
                                               mandate_b64url_encoded_len(sizeof(raw)) + 1);
    strcpy(token, TOKEN_PREFIX);
    mandate_b64url_encode(raw, sizeof(raw), token + strlen(TOKEN_PREFIX));
    OPENSSL_cleanse(raw, sizeof(raw));
    SHA256((const unsigned char *)token, strlen(token), hash);
    int64_t expires_at = mandate_clock_now() + ttl;
    json_t *value = json_pack("{s:s,s:I}", "issued_by", issued_by ? issued_by : "?",
                              "expires_at", (json_int_t)expires_at);
    char *text = json_dumps(value, JSON_COMPACT);
    json_decref(value);
    mandate_rc rc =
        mandate_store_once_put(mandate_runtime_store(rt), MANDATE_REGISTRATION_TOKEN_NS, hash,
                               sizeof(hash), text, expires_at, err);
    free(text);
    if (rc != MANDATE_OK) {
        OPENSSL_cleanse(token, strlen(token));
        return rc;
    }
    *token_r = token;
    if (expires_at_r != NULL)
        *expires_at_r = expires_at;
    return MANDATE_OK;
}

/* --- refusals ------------------------------------------------------------------------ */

typedef struct registration {
    mandate_http_request *req;
    mandate_http_response *resp;
    const char *token; /* the initial access token presented, or NULL */
    char token_ref[9]; /* its short hash, for the audit trail */
} registration;

/* Audits the refusal (its reason, never the token) and answers it, or
 * answers 429 or 503 when the refusal cannot be recorded as one. */
static void refuse(registration *r, unsigned status, const char *error, const char *description,
                   const char *reason)
{
    json_t *fields =
        json_pack("{s:s,s:o,s:i}", "error", error, "reason",
                  mandate_audit_text(reason, MANDATE_AUDIT_TEXT_MAX), "status", (int)status);
    if (r->token != NULL)
        json_object_set_new(fields, "token_sha256_prefix", json_string(r->token_ref));
    log_info("registration refused: %s", reason);
    unsigned retry_after;
    mandate_oauth_error oerr;
    switch (
        mandate_refusal_record(r->req, "client.registration_refused", fields, &retry_after)) {
    case MANDATE_REFUSAL_RECORDED: break;
    case MANDATE_REFUSAL_OVER_BUDGET:
        mandate_refusal_respond_over_budget(r->req, r->resp, retry_after);
        return;
    case MANDATE_REFUSAL_UNRECORDED:
        mandate_oauth_fail_rc(&oerr, MANDATE_TEMPFAIL);
        mandate_oauth_respond_error(r->req, r->resp, &oerr);
        return;
    }
    mandate_http_response_error(r->req, r->resp, status, error, description);
    mandate_http_response_header(r->resp, "Cache-Control", "no-store");
    if (status == 401)
        /* RFC 6750 §3: the initial access token is a bearer token */
        mandate_http_response_header(r->resp, "WWW-Authenticate",
                                     r->token != NULL ? "Bearer error=\"invalid_token\""
                                                      : "Bearer");
}

/* A failure on our side (the store): not the caller's doing, so not a
 * refusal; logged, answered 503 or 500. */
static void fail(registration *r, mandate_rc rc, const char *what, const mandate_error *err)
{
    mandate_oauth_error oerr;
    log_error("registration: %s: %s", what, err->message);
    mandate_oauth_fail_rc(&oerr, rc);
    mandate_oauth_respond_error(r->req, r->resp, &oerr);
}

/* --- the request ------------------------------------------------------------------ */

/* The initial access token: "Authorization: Bearer" and a b64token (RFC
 * 6750 §2.1) of at most MANDATE_REGISTRATION_TOKEN_MAX printable bytes;
 * NULL when there is none such. */
static const char *bearer_token(mandate_http_request *req)
{
    const char *h = mandate_http_request_header(req, "Authorization");
    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
        return NULL;
    const char *t = h + 7 + strspn(h + 7, " ");
    size_t n = strlen(t);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
            return NULL;
    return n > 0 && n <= MANDATE_REGISTRATION_TOKEN_MAX ? t : NULL;
}

static bool json_body(mandate_http_request *req)
{
    const char *ct = mandate_http_request_header(req, "Content-Type");
    if (ct == NULL)
        return false;
    size_t n = strcspn(ct, ";");
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    return n == 16 && strncasecmp(ct, "application/json", 16) == 0;
}

static pthread_once_t rate_once = PTHREAD_ONCE_INIT;
static mandate_ratelimit *rate_table;

static void rate_init(void)
{
    rate_table = mandate_ratelimit_new(RATE_BUCKETS);
}

/* registration.rate registrations an hour from one address (an IPv6 one's
 * /64), all at once
 * if it likes (the burst is the hour's). */
static bool within_rate(mandate_http_request *req, unsigned *retry_after_r)
{
    int64_t per_hour = mandate_runtime_config(req->runtime)->registration.rate;
    if (per_hour <= 0)
        return true;
    pthread_once(&rate_once, rate_init);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    return mandate_ratelimit_take(rate_table, mandate_request_limit_key(req),
                                  (double)per_hour / 3600.0, (double)per_hour, now_us,
                                  retry_after_r);
}

static const char *new_client_id(mandate_pool *pool)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char raw[CLIENT_ID_RANDOM];
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return NULL;
    char *id = mandate_pool_alloc(pool, strlen(CLIENT_ID_PREFIX) + CLIENT_ID_RANDOM + 1);
    strcpy(id, CLIENT_ID_PREFIX);
    for (size_t i = 0; i < CLIENT_ID_RANDOM; i++)
        /* uniqueness, not secrecy: the bias is harmless */
        id[strlen(CLIENT_ID_PREFIX) + i] = alphabet[raw[i] % 36];
    return id;
}

/* RFC 7591 §3.2.1: the client information, what was registered. */
static void respond_created(registration *r, const mandate_client *c, json_t *meta)
{
    json_t *body = json_pack("{s:s,s:I}", "client_id", c->client_id, "client_id_issued_at",
                             (json_int_t)c->created_at);
    json_object_update(body, meta);
    json_object_del(body, "registered_by");
    if (c->scopes != NULL)
        json_object_set_new(body, "scope", json_string(c->scopes));
    else
        json_object_del(body, "scope");
    mandate_http_response_json(r->req, r->resp, 201, body);
    mandate_http_response_header(r->resp, "Cache-Control", "no-store");
    mandate_http_response_header(r->resp, "Pragma", "no-cache");
}

void mandate_endpoint_register(mandate_http_request *req, mandate_http_response *resp)
{
    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    const char *mode = cfg->registration.mode;
    const mandate_instance *store = mandate_runtime_store(req->runtime);
    registration r = {.req = req, .resp = resp};
    mandate_error err = {0};

    if (strcmp(mode, "off") == 0) {
        /* not offered: the same answer as for a path that is not there */
        refuse(&r, 404, "not_found", "no such endpoint",
               "registration is off (registration.mode)");
        return;
    }
    if (strcmp(req->method, "POST") != 0) {
        refuse(&r, 405, "invalid_request", "method not allowed on this endpoint",
               "registration takes POST only");
        mandate_http_response_header(resp, "Allow", "POST");
        return;
    }
    bool by_token = strcmp(mode, "token") == 0;
    r.token = bearer_token(req);
    if (r.token != NULL)
        mandate_audit_token_ref(r.token, strlen(r.token), r.token_ref);
    if (by_token && r.token == NULL) {
        refuse(&r, 401, "invalid_token", "an initial access token is required (Bearer)",
               "no initial access token");
        return;
    }
    if (!json_body(req)) {
        refuse(&r, 400, "invalid_client_metadata", "Content-Type must be application/json",
               "the request is not application/json");
        return;
    }
    json_t *meta;
    const char *oauth_error;
    if (mandate_client_metadata_check(req->body, req->body_len, MANDATE_REGISTRATION_MAX_BYTES,
                                      MANDATE_METADATA_REGISTRATION, NULL, &meta, &oauth_error,
                                      &err) != MANDATE_OK) {
        const char *why = mandate_pool_strdup(req->pool, err.message);
        refuse(&r, 400, oauth_error, why, why);
        return;
    }
    unsigned retry_after = 0;
    if (!within_rate(req, &retry_after)) {
        json_decref(meta);
        json_t *fields = json_pack("{s:s,s:s,s:i}", "error", "too_many_requests", "reason",
                                   "over registration.rate for this address", "status", 429);
        if (mandate_refusal_record(req, "client.registration_refused", fields, NULL) ==
            MANDATE_REFUSAL_UNRECORDED) {
            mandate_oauth_error oerr;
            mandate_oauth_fail_rc(&oerr, MANDATE_TEMPFAIL);
            mandate_oauth_respond_error(req, resp, &oerr);
            return;
        }
        mandate_oauth_respond_too_many(req, resp, "too many registrations from this address",
                                       retry_after);
        return;
    }

    /* the token is spent only by a request that would register: a typo in
     * the metadata does not cost the caller its token */
    unsigned char hash[SHA256_DIGEST_LENGTH];
    char *token_value = NULL;
    if (by_token) {
        SHA256((const unsigned char *)r.token, strlen(r.token), hash);
        mandate_rc rc =
            mandate_store_once_take(store, req->pool, MANDATE_REGISTRATION_TOKEN_NS, hash,
                                    sizeof(hash), mandate_clock_now(), &token_value, &err);
        if (rc == MANDATE_NOT_FOUND) {
            json_decref(meta);
            refuse(&r, 401, "invalid_token", "the initial access token is not valid",
                   "the initial access token is unknown, used or expired");
            return;
        }
        if (rc != MANDATE_OK) {
            json_decref(meta);
            fail(&r, rc, "the initial access token cannot be checked", &err);
            return;
        }
    }

    mandate_pool *pool = req->pool;
    char *meta_text = json_dumps(meta, JSON_COMPACT);
    mandate_client_spec spec = {
        .tenant = cfg->registration.tenant,
        .name = json_string_value(json_object_get(meta, "client_name")),
        .scopes =
            mandate_client_allowed_scopes(pool, cfg, cfg->registration.scopes,
                                          json_string_value(json_object_get(meta, "scope"))),
        .audiences = mandate_client_allowed_audiences(pool, cfg, cfg->registration.audiences),
        .public_client = true,
        .metadata = mandate_pool_strdup(pool, meta_text),
    };
    free(meta_text);
    spec.default_scopes = spec.scopes;
    mandate_client client;
    char *secret = NULL;
    mandate_rc rc = MANDATE_EXISTS;
    /* a random id taken already: as good as impossible, but not fatal */
    for (int attempt = 0; attempt < 3 && rc == MANDATE_EXISTS; attempt++) {
        spec.client_id = new_client_id(pool);
        rc = spec.client_id == NULL
                 ? mandate_error_set(&err, MANDATE_ERROR, "no random bytes")
                 : mandate_clients_create(req->runtime, pool, &spec, &client, &secret, &err);
    }
    json_t *fields = NULL;
    if (rc == MANDATE_OK) {
        json_t *uris = json_array();
        size_t i;
        json_t *u;
        json_array_foreach(json_object_get(meta, "redirect_uris"), i, u)
        {
            json_array_append_new(uris, mandate_audit_text(json_string_value(u), 512));
        }
        fields = json_pack("{s:s,s:s,s:s,s:o,s:s,s:s,s:o,s:s}", "client_id", client.client_id,
                           "tenant", client.tenant, "mode", mode, "redirect_uris", uris,
                           "scope", client.scopes ? client.scopes : "", "audience",
                           client.audiences ? client.audiences : "", "client_name",
                           mandate_audit_text(client.name, MANDATE_AUDIT_TEXT_MAX), "peer",
                           mandate_request_peer(req));
        if (by_token)
            json_object_set_new(fields, "token_sha256_prefix", json_string(r.token_ref));
        if (mandate_audit_event("client.registered", fields) != MANDATE_OK) {
            /* nothing that is not on record stays */
            mandate_error del_err = {0};
            if (mandate_store_client_delete(store, client.client_id, &del_err) != MANDATE_OK)
                log_error("registration: client %s is registered but not audited, and cannot "
                          "be removed: %s",
                          client.client_id, del_err.message);
            rc = mandate_error_set(&err, MANDATE_TEMPFAIL, "the audit trail cannot be written");
        }
    }
    if (rc != MANDATE_OK && by_token) {
        /* our failure, not the caller's: the token is given back, so that
         * a retry can still use it */
        json_t *v = json_loads(token_value, 0, NULL);
        json_int_t expires_at = json_integer_value(json_object_get(v, "expires_at"));
        mandate_error put_err = {0};
        if (expires_at > mandate_clock_now() &&
            mandate_store_once_put(store, MANDATE_REGISTRATION_TOKEN_NS, hash, sizeof(hash),
                                   token_value, (int64_t)expires_at, &put_err) != MANDATE_OK)
            log_error("registration: the initial access token %s is lost: %s", r.token_ref,
                      put_err.message);
        json_decref(v);
    }
    if (rc != MANDATE_OK) {
        json_decref(meta);
        if (rc == MANDATE_INVALID || rc == MANDATE_NOT_FOUND)
            /* the registration settings cannot make a client: the operator's */
            rc = MANDATE_ERROR;
        fail(&r, rc, "the client cannot be created", &err);
        return;
    }
    log_info("client registered: client_id=%s mode=%s", client.client_id, mode);
    respond_created(&r, &client, meta);
    json_decref(meta);
}
