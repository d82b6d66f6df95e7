/* Client authentication: which method the client used, its record from the
 * store, then the backends in their configured order. */
#include "config.h"

#include <string.h>

#include "jose.h"
#include "log-private.h"
#include "mtls-private.h"
#include "oauth-private.h"
#include "plugins-private.h"
#include "pool-private.h"
#include "runtime-private.h"

#define JWT_BEARER_ASSERTION "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#define CLIENT_ID_MAX 255

static mandate_rc refuse(mandate_pool *pool, mandate_oauth_error *oerr, const char *client_id,
                         const char *why)
{
    log_info("client authentication failed: client_id=%s: %s",
             client_id ? client_id : "(none)", why);
    mandate_rc rc = mandate_oauth_fail(oerr, 401, "invalid_client", "client authentication failed");
    /* why may be a stack buffer of the caller's */
    oerr->reason = mandate_pool_strdup(pool, why);
    oerr->client_id = client_id ? mandate_pool_strdup(pool, client_id) : NULL;
    return rc;
}

/* The client id a client assertion names, read before it is verified (the
 * backend verifies it against the key of that very client). */
static const char *assertion_subject(mandate_pool *pool, const char *assertion)
{
    mandate_jws jws = {0};
    mandate_error err = {0};
    const char *sub = NULL;
    if (mandate_jws_parse(assertion, strlen(assertion), &jws, &err) == MANDATE_OK) {
        const char *s = json_string_value(json_object_get(jws.claims, "sub"));
        if (s != NULL)
            sub = mandate_pool_strdup(pool, s);
    }
    mandate_jws_clear(&jws);
    return sub;
}

/* RFC 8705 §2: only client_id in the form, and a client registered for
 * tls_client_auth or self_signed_tls_client_auth: its certificate. */
static mandate_rc certificate_authenticate(mandate_http_request *req, const char *client_id,
                                           mandate_client *client_r, mandate_oauth_error *oerr)
{
    mandate_error err = {0};
    if (strlen(client_id) > CLIENT_ID_MAX)
        return refuse(req->pool, oerr, NULL, "client_id too long");
    mandate_rc rc = mandate_store_client_get(mandate_runtime_store(req->runtime), req->pool,
                                             client_id, client_r, &err);
    if (rc == MANDATE_NOT_FOUND)
        return refuse(req->pool, oerr, client_id, "no such client");
    if (rc != MANDATE_OK) {
        log_error("client %s: store: %s", client_id, err.message);
        return mandate_oauth_fail_rc(oerr, rc);
    }
    if (mandate_mtls_client_method(client_r) == NULL)
        return mandate_oauth_fail(oerr, 401, "invalid_client",
                                  "client authentication required");
    if (client_r->status != MANDATE_CLIENT_ENABLED)
        return refuse(req->pool, oerr, client_id, "client is disabled");
    const char *why = NULL;
    if (!mandate_mtls_client_authenticate(req, client_r, &why))
        return refuse(req->pool, oerr, client_id, why);
    req->client_auth_method = mandate_mtls_client_method(client_r); /* the profile's rule */
    return MANDATE_OK;
}

const char *mandate_client_registered_auth(const mandate_client *client)
{
    const char *by_certificate = mandate_mtls_client_method(client);
    if (by_certificate != NULL)
        return by_certificate;
    json_t *meta = client->metadata ? json_loads(client->metadata, 0, NULL) : NULL;
    const char *method = json_string_value(json_object_get(meta, "token_endpoint_auth_method"));
    bool is_public = method != NULL && strcmp(method, "none") == 0;
    json_decref(meta);
    return is_public ? "none" : client->public_key ? "private_key_jwt" : "client_secret";
}

const char *mandate_client_claimed_id(mandate_http_request *req, const mandate_form *form)
{
    const char *authorization = mandate_http_request_header(req, "Authorization");
    char *basic_id = NULL, *basic_secret = NULL;
    mandate_error err = {0};
    if (authorization != NULL &&
        mandate_basic_auth_parse(req->pool, authorization, &basic_id, &basic_secret, &err) ==
            MANDATE_OK)
        return basic_id;
    const char *form_id = mandate_form_get(form, "client_id");
    return form_id != NULL && form_id[0] != '\0' ? form_id : "(none)";
}

mandate_rc mandate_client_authenticate(mandate_http_request *req, const mandate_form *form,
                                       mandate_client *client_r, mandate_oauth_error *oerr)
{
    mandate_credential cred = {0};
    mandate_error err = {0};
    const char *form_id = mandate_form_get(form, "client_id");
    const char *form_secret = mandate_form_get(form, "client_secret");
    const char *assertion_type = mandate_form_get(form, "client_assertion_type");
    const char *assertion = mandate_form_get(form, "client_assertion");
    const char *authorization = mandate_http_request_header(req, "Authorization");
    int methods = 0;

    char *basic_id = NULL, *basic_secret = NULL;
    if (authorization != NULL) {
        mandate_rc rc =
            mandate_basic_auth_parse(req->pool, authorization, &basic_id, &basic_secret, &err);
        if (rc == MANDATE_INVALID)
            return refuse(req->pool, oerr, NULL, err.message);
        if (rc == MANDATE_OK) {
            methods++;
            cred.auth_method = "client_secret_basic";
            cred.client_id = basic_id;
            cred.secret = (const unsigned char *)basic_secret;
            cred.secret_len = strlen(basic_secret);
        }
    }
    if (form_secret != NULL) {
        methods++;
        cred.auth_method = "client_secret_post";
        cred.client_id = form_id;
        cred.secret = (const unsigned char *)form_secret;
        cred.secret_len = strlen(form_secret);
    }
    if (assertion_type != NULL || assertion != NULL) {
        methods++;
        if (assertion_type == NULL || assertion == NULL)
            return mandate_oauth_fail(oerr, 400, "invalid_request",
                                      "client_assertion and client_assertion_type go together");
        if (strcmp(assertion_type, JWT_BEARER_ASSERTION) != 0)
            return refuse(req->pool, oerr, form_id, "unsupported client_assertion_type");
        cred.auth_method = "private_key_jwt";
        cred.assertion = assertion;
        cred.client_id = form_id ? form_id : assertion_subject(req->pool, assertion);
        cred.audience = mandate_pool_printf(req->pool, "%s %s",
                                            mandate_oauth_endpoint_url(req, "/oauth2/token"),
                                            mandate_runtime_config(req->runtime)->issuer);
    }
    if (methods == 0 && form_id != NULL && form_id[0] != '\0')
        return certificate_authenticate(req, form_id, client_r, oerr);
    if (methods == 0)
        return mandate_oauth_fail(oerr, 401, "invalid_client",
                                  "client authentication required");
    if (methods > 1)
        return mandate_oauth_fail(oerr, 400, "invalid_request",
                                  "use exactly one client authentication method");
    if (basic_id != NULL && form_id != NULL && strcmp(basic_id, form_id) != 0)
        return mandate_oauth_fail(oerr, 400, "invalid_request",
                                  "client_id differs from the Basic credentials");
    if (cred.client_id == NULL || cred.client_id[0] == '\0')
        return refuse(req->pool, oerr, NULL, "no client_id");
    if (strlen(cred.client_id) > CLIENT_ID_MAX)
        return refuse(req->pool, oerr, NULL, "client_id too long");

    mandate_rc rc = mandate_store_client_get(mandate_runtime_store(req->runtime), req->pool,
                                             cred.client_id, client_r, &err);
    if (rc == MANDATE_NOT_FOUND)
        return refuse(req->pool, oerr, cred.client_id, "no such client");
    if (rc != MANDATE_OK) {
        log_error("client %s: store: %s", cred.client_id, err.message);
        return mandate_oauth_fail_rc(oerr, rc);
    }
    if (client_r->status != MANDATE_CLIENT_ENABLED)
        return refuse(req->pool, oerr, cred.client_id, "client is disabled");
    /* RFC 7591 §2: the method the client is registered for, and no other: a
     * secret left behind by a move to a certificate or a key authenticates
     * nobody */
    const char *registered = mandate_client_registered_auth(client_r);
    bool fits = strcmp(registered, "client_secret") == 0     ? cred.secret != NULL
                : strcmp(registered, "private_key_jwt") == 0 ? cred.assertion != NULL
                                                             : false;
    if (!fits)
        return refuse(req->pool, oerr, cred.client_id,
                      mandate_pool_printf(req->pool, "client is registered for %s only, not %s",
                                          registered, cred.auth_method));

    for (size_t i = 0; i < mandate_runtime_instance_count(req->runtime); i++) {
        const mandate_instance *in = mandate_runtime_instance(req->runtime, i);
        if (!mandate_backend_authenticates(in))
            continue;
        err = (mandate_error){0};
        rc = mandate_backend_authenticate(in, req->pool, &cred, client_r, &err);
        if (rc == MANDATE_NEXT)
            continue;
        if (rc == MANDATE_OK) {
            log_info("Credentials validated: client_id=%s method=%s backend=%s",
                     cred.client_id, cred.auth_method, in->conf->name);
            req->client_auth_method = cred.auth_method; /* the profile's rule */
            return MANDATE_OK;
        }
        if (rc == MANDATE_DENIED || rc == MANDATE_INVALID || rc == MANDATE_EXPIRED)
            return refuse(req->pool, oerr, cred.client_id, err.message[0] ? err.message : "denied");
        log_error("client %s: backend %s: %s", cred.client_id, in->conf->name, err.message);
        return mandate_oauth_fail_rc(oerr, rc);
    }
    return refuse(req->pool, oerr, cred.client_id, "no enabled backend holds this client's credentials");
}
