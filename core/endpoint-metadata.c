/* RFC 8414 authorization server metadata and the RFC 7517 JWK set. */
#include "config.h"

#include <string.h>

#include "client-documents-private.h"
#include "dpop-binding-private.h"
#include "endpoints-private.h"
#include "grant-table-private.h"
#include "keys-private.h"
#include "mtls-private.h"
#include "oauth-private.h"
#include "pool-private.h"
#include "runtime-private.h"
#include "signin-private.h"

static json_t *string_array(const char *const *items)
{
    json_t *a = json_array();
    for (; *items != NULL; items++)
        json_array_append_new(a, json_string(*items));
    return a;
}

/* RFC 8414 §3.1: for an issuer with a path, the metadata is at the
 * well-known prefix with the issuer's path after it; only that path. */
static bool path_inserted_ok(mandate_http_request *req, const char *issuer)
{
    static const char prefix[] = "/.well-known/oauth-authorization-server";
    if (strncmp(req->path, prefix, sizeof(prefix) - 1) != 0 ||
        req->path[sizeof(prefix) - 1] == '\0')
        return true; /* the plain URL, or openid-configuration */
    const char *scheme = strstr(issuer, "://");
    const char *issuer_path = scheme != NULL ? strchr(scheme + 3, '/') : NULL;
    return issuer_path != NULL && strcmp(req->path + sizeof(prefix) - 1, issuer_path) == 0;
}

void mandate_endpoint_metadata(mandate_http_request *req, mandate_http_response *resp)
{
    if (!path_inserted_ok(req, mandate_runtime_config(req->runtime)->issuer)) {
        mandate_http_response_error(req, resp, 404, "not_found", "no such endpoint");
        return;
    }
    static const char *const auth_methods[] = {"client_secret_basic", "client_secret_post",
                                               "private_key_jwt", NULL};
    static const char *const algs[] = {"ES256", "RS256", "EdDSA", NULL};
    /* without an authorization endpoint no response type (RFC 8414 §2 wants
     * the member all the same) */
    static const char *const no_response_types[] = {NULL};
    static const char *const code_only[] = {"code", NULL};
    static const char *const s256_only[] = {"S256", NULL};
    const mandate_config *cfg = mandate_runtime_config(req->runtime);
    bool signin = mandate_signin_available(req->runtime);
    json_t *grants = json_array();
    for (size_t i = 0; i < mandate_grant_table_count(); i++)
        if (mandate_grant_table_advertised(mandate_grant_table_at(i), req->runtime))
            json_array_append_new(grants, json_string(mandate_grant_table_at(i)->uri));
    json_t *doc = json_pack(
        "{s:s,s:s,s:s,s:o,s:o,s:o,s:o,s:o}", "issuer", cfg->issuer, "token_endpoint",
        mandate_oauth_endpoint_url(req, "/oauth2/token"), "jwks_uri",
        mandate_oauth_endpoint_url(req, "/oauth2/jwks"), "grant_types_supported",
        grants, "token_endpoint_auth_methods_supported",
        string_array(auth_methods),
        "token_endpoint_auth_signing_alg_values_supported", string_array(algs),
        "response_types_supported", string_array(signin ? code_only : no_response_types),
        "access_token_signing_alg_values_supported", string_array(algs));
    if (signin) {
        json_object_set_new(doc, "authorization_endpoint",
                            json_string(mandate_oauth_endpoint_url(req, "/oauth2/authorize")));
        json_object_set_new(doc, "code_challenge_methods_supported", string_array(s256_only));
        json_object_set_new(doc, "response_modes_supported", json_pack("[s]", "query"));
        /* RFC 9207: every answer of the authorization endpoint names us */
        json_object_set_new(doc, "authorization_response_iss_parameter_supported", json_true());
        /* RFC 9126 §5 */
        json_object_set_new(doc, "pushed_authorization_request_endpoint",
                            json_string(mandate_oauth_endpoint_url(req, "/oauth2/par")));
        json_object_set_new(doc, "require_pushed_authorization_requests",
                            json_boolean(cfg->par.required));
    }
    json_object_set_new(doc, "introspection_endpoint",
                        json_string(mandate_oauth_endpoint_url(req, "/oauth2/introspect")));
    json_object_set_new(doc, "introspection_endpoint_auth_methods_supported",
                        string_array(auth_methods));
    json_object_set_new(doc, "revocation_endpoint",
                        json_string(mandate_oauth_endpoint_url(req, "/oauth2/revoke")));
    json_object_set_new(doc, "revocation_endpoint_auth_methods_supported",
                        string_array(auth_methods));
    /* issue 22: clients that are not pre-registered. "none" (a public
     * client, with PKCE and nothing else) once a user can sign in, the one
     * thing a public client can do; documents when they are on and usable;
     * registration when on */
    if (signin)
        json_array_append_new(json_object_get(doc, "token_endpoint_auth_methods_supported"),
                              json_string("none"));
    if (mandate_client_documents_offered(req->runtime))
        json_object_set_new(doc, "client_id_metadata_document_supported", json_true());
    if (strcmp(cfg->registration.mode, "off") != 0)
        json_object_set_new(doc, "registration_endpoint",
                            json_string(mandate_oauth_endpoint_url(req, "/oauth2/register")));
    /* RFC 9449 §5.1: DPoP proofs at the token endpoint */
    json_object_set_new(doc, "dpop_signing_alg_values_supported",
                        mandate_dpop_metadata_algs(req));
    /* RFC 8705: client certificates, when Mandate or its proxy takes them */
    mandate_mtls_metadata(req, doc);
    mandate_http_response_json(req, resp, 200, doc);
    mandate_http_response_header(resp, "Cache-Control", "public, max-age=300");
}

void mandate_endpoint_jwks(mandate_http_request *req, mandate_http_response *resp)
{
    resp->status = 200;
    resp->content_type = "application/jwk-set+json";
    resp->body = mandate_keyring_jwks(req->runtime, req->pool);
    resp->body_len = strlen(resp->body);
    /* short: a rotation is picked up by caches within a minute; verifiers
     * refetch at once on an unknown kid anyway */
    mandate_http_response_header(resp, "Cache-Control", "public, max-age=60");
}
