/* Clients that are not pre-registered (issue 22): Client ID Metadata
 * Documents (draft-ietf-oauth-client-id-metadata-document: the client_id is
 * the https URL of a JSON document that Mandate fetches, checks and
 * caches), and the checks of client metadata (RFC 7591 §2) that documents,
 * dynamic registration (core/endpoint-register.c) and mandatectl share.
 *
 * Every client made here is public (token_endpoint_auth_method "none"): a
 * document is public, so it can hold no secret, and a registered client is
 * given none. Its redirect URIs come only from its metadata, compared as
 * exact strings by the authorization endpoint.
 *
 * A refusal says why in err (for the log, the audit record and the error
 * page); the caller audits. */
#ifndef MANDATE_CLIENT_DOCUMENTS_PRIVATE_H
#define MANDATE_CLIENT_DOCUMENTS_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <libconfig.h>
#include <mandate/store.h>

#include "conf-private.h"
#include "config-private.h"
#include "peer-private.h"
#include "runtime-private.h"

struct sockaddr;

/* The longest client_id URL: client ids are bounded so at the token
 * endpoint (255) and in the audit trail. */
#define MANDATE_CLIENT_DOCUMENT_URL_MAX 255
/* The most redirect URIs a client may register, and the longest one. */
#define MANDATE_REDIRECT_URIS_MAX 16
#define MANDATE_REDIRECT_URI_MAX 2048
/* The largest registration request (RFC 7591 §3.1) read; the server's body
 * limit applies first. */
#define MANDATE_REGISTRATION_MAX_BYTES 16384
/* The namespace of initial access tokens among the store's one-time
 * records (mandate_store_once_put). */
#define MANDATE_REGISTRATION_TOKEN_NS "registration"

/* --- the client_id URL -------------------------------------------------------- */

/* Whether client_id is a Client ID Metadata Document URL (the draft's §3):
 * "https://", a host (a name, an IPv4 address or a bracketed IPv6 one) and
 * an optional port, no user name or password, a path other than "/" without
 * "." or ".." segments (nor their percent-encoded forms), an optional
 * query, no fragment, only URI characters, at most
 * MANDATE_CLIENT_DOCUMENT_URL_MAX bytes. A client_id that is not one is a
 * pre-registered or registered client's. */
bool mandate_client_id_is_document(const char *client_id);
/* The same, with why it is not one (NULL when it is). */
bool mandate_client_document_url_check(const char *url, const char **why_r);
/* The URL's host, lower-cased and without brackets, in pool: what the
 * consent page shows the user (the draft's §8: the name in the document is
 * the client's own claim; the host is the one fact we checked). NULL when
 * url is not a document URL. */
const char *mandate_client_document_host(mandate_pool *pool, const char *url);

/* --- client metadata (RFC 7591 §2) ------------------------------------------- */

/* Where metadata comes from: what it may say differs. */
typedef enum mandate_metadata_source {
    /* a Client ID Metadata Document: client_id must be its URL; public */
    MANDATE_METADATA_DOCUMENT = 1,
    /* an RFC 7591 registration request: no client_id; public */
    MANDATE_METADATA_REGISTRATION,
    /* mandatectl: confidential auth methods and the grant table's grants
     * (client_credentials, ...) allowed too */
    MANDATE_METADATA_ADMIN,
} mandate_metadata_source;

/* Checks metadata (JSON text of len bytes, at most max_len) as source
 * allows, and gives it normalised (*normalised_r, a new reference): only
 * the members Mandate knows (redirect_uris, grant_types, response_types,
 * token_endpoint_auth_method, client_name, client_uri, logo_uri, tos_uri,
 * policy_uri, software_id, software_version, scope), the RFC's defaults
 * filled in (grant_types ["authorization_code"], response_types ["code"],
 * token_endpoint_auth_method "none" for a document or a registration), and
 * "registered_by" ("document", "registration", "admin"). Unknown members
 * are dropped, as RFC 7591 §2 asks of a server. url: the document's URL
 * (MANDATE_METADATA_DOCUMENT only), which its client_id must equal exactly.
 *
 * Refused (MANDATE_INVALID, why in err, *oauth_error_r the RFC 7591 §3.2.2
 * code "invalid_redirect_uri" or "invalid_client_metadata"): not a JSON
 * object, over max_len, duplicate members, a client_id other than url,
 * client_secret or client_secret_expires_at (a public document holds no
 * secret), a shared-secret or another unsupported auth method, grant types
 * beyond authorization_code and refresh_token (admin: and the grant
 * table's), response types beyond code, inconsistent grant and response
 * types, no redirect_uris or a bad one (mandate_redirect_uri_check), the
 * text members too long or not text, the URLs among them not https. */
mandate_rc mandate_client_metadata_check(const char *text, size_t len, size_t max_len,
                                         mandate_metadata_source source, const char *url,
                                         json_t **normalised_r, const char **oauth_error_r,
                                         mandate_error *err);

/* Whether uri may be registered as a redirect URI (RFC 6749 §3.1.2, RFC
 * 8252, OAuth 2.1): at most MANDATE_REDIRECT_URI_MAX bytes of printable
 * ASCII, absolute, no fragment, and either https with a host and no user
 * name or password, or http on a loopback host (localhost, 127.0.0.0/8,
 * [::1]: a native app's listener, RFC 8252 §7.3), or a private-use scheme
 * (RFC 8252 §7.1: a reverse domain name, so with a '.'; never javascript:,
 * data: or file:). why_r (may be NULL): why not. */
bool mandate_redirect_uri_check(const char *uri, const char **why_r);

/* --- documents ---------------------------------------------------------------- */

/* Whether the metadata offers documents: client_documents.enabled and some
 * backend signs users in (a document client can do nothing else). */
bool mandate_client_documents_offered(const mandate_runtime *rt);
/* Whether public clients can use this broker: some backend signs users in
 * (the authorization code grant is a public client's only one). */
bool mandate_public_clients_possible(const mandate_runtime *rt);

/* The client whose client_id is url, from its metadata document: the
 * store's copy while it is fresh, else fetched (https only, the CA of
 * client_documents.ca_file or the system's, the configured timeouts, at
 * most client_documents.max_bytes read, Content-Type application/json,
 * status 200: a redirect is a refusal, never followed; every address the
 * host resolves to checked before connecting, see
 * mandate_client_document_address_check; no proxy, so that the address
 * checked is the one connected to), checked (mandate_client_metadata_check),
 * stored with its expiry (Cache-Control max-age within min_cache and
 * max_cache; no max-age, no-store or no-cache: min_cache) and then
 * returned. The client (memory from pool): client_id the URL, public (no
 * backend, no secret), enabled, tenant client_documents.tenant, scopes and
 * default scopes client_documents.scopes (default: every target's), within
 * the document's scope when it names one, audiences client_documents.audiences
 * (default: every target's), name the document's client_name, metadata
 * the normalised metadata with "registered_by": "document".
 *
 * MANDATE_DENIED: documents are off, the host is not allowed
 * (allow_hosts, deny_hosts) or an address is not public. MANDATE_INVALID:
 * not a document URL, or the answer is refused (a redirect, a status other
 * than 200, the content type, too big, not JSON, the document itself).
 * MANDATE_TEMPFAIL: the server could not be reached in time (connection,
 * TLS, timeout, 5xx, 429) and no copy is at most max_stale past its expiry
 * (a copy that is is served, with a warning), or too many fetches are
 * under way (mandate_config_document_fetches). The store's own failures as it
 * answered them. Nothing is stored unless the document was accepted, but
 * a fetch that failed or a document refused is remembered for min_cache
 * seconds as a copy without a document: until then the URL is answered
 * MANDATE_TEMPFAIL without a fetch (anyone can name a URL). */
mandate_rc mandate_client_document_resolve(mandate_runtime *rt, mandate_pool *pool,
                                           const char *url, mandate_client *client_r,
                                           mandate_error *err);
/* Where no fresh copy is kept, what mandate_client_document_resolve_as
 * does. */
typedef enum mandate_document_missing {
    /* fetch it here: mandate_client_document_resolve, on an HTTP worker */
    MANDATE_DOCUMENT_FETCH,
    /* fetch it here, on a set-aside thread (mandate_http_set_aside): not
     * counted against the limit of fetches on HTTP workers (those threads
     * are as many as that limit already) */
    MANDATE_DOCUMENT_FETCH_ASIDE,
    /* never fetch: as if the server could not be reached (a copy within
     * max_stale is served, else MANDATE_TEMPFAIL). For a request from an
     * address over its refusal budget: failed fetches are refusals, and
     * anyone can name a URL. */
    MANDATE_DOCUMENT_KEPT_ONLY,
    /* MANDATE_NEXT where a fetch would be made (a fresh copy, a refusal or
     * a failure remembered are answered as always): the caller has it
     * fetched where a slow server holds no HTTP worker */
    MANDATE_DOCUMENT_SAY_FETCH,
} mandate_document_missing;
mandate_rc mandate_client_document_resolve_as(mandate_runtime *rt, mandate_pool *pool,
                                              const char *url, mandate_document_missing missing,
                                              mandate_client *client_r, mandate_error *err);

/* The fetches one address (a limit key: mandate_peer_limit_key) has
 * waiting or under way on the set-aside threads, at most this many (review
 * s36: one address filled the queue in which every first sign-in at a
 * document waits). claim takes one, false when the address has as many
 * already (or a few dozen addresses have fetches set aside); every claim
 * is released once, when its fetch is done or given up. */
#define MANDATE_CLIENT_DOCUMENT_FETCHES_PER_ADDRESS 2
bool mandate_client_document_fetch_claim(const char *key);
void mandate_client_document_fetch_release(const char *key);

/* Whether a document may be fetched from this address: false (why_r says
 * which range) for unspecified, loopback, private (RFC 1918, fc00::/7),
 * shared (100.64.0.0/10), link-local (169.254.0.0/16, fe80::/10),
 * multicast, broadcast, documentation, benchmarking and other reserved
 * ranges, and IPv6 forms that carry an IPv4 address (IPv4-mapped,
 * IPv4-compatible, NAT64, 6to4) judged by that address. */
bool mandate_client_document_address_check(const struct sockaddr *addr, const char **why_r);

/* Whether host (lower case) matches a pattern: "host" exactly, or
 * "*.example.com" for any name below example.com (not example.com itself). */
bool mandate_client_host_matches(const char *pattern, const char *host);

/* --- the clients made here ---------------------------------------------------- */

/* The scopes (space-separated, in pool; NULL: none) and audiences a client
 * of documents or of registration may have: configured (NULL in the config:
 * every target's), narrowed to requested (a space-separated scope; NULL:
 * no narrowing). */
const char *mandate_client_allowed_scopes(mandate_pool *pool, const mandate_config *cfg,
                                          char *const *configured, const char *requested);
const char *mandate_client_allowed_audiences(mandate_pool *pool, const mandate_config *cfg,
                                             char *const *configured);

/* --- dynamic registration (core/endpoint-register.c) ---------------------------- */

/* The longest initial access token read from a request. */
#define MANDATE_REGISTRATION_TOKEN_MAX 128
/* Lifetimes an initial access token may be given (seconds). */
#define MANDATE_REGISTRATION_TOKEN_TTL_DEFAULT 86400
#define MANDATE_REGISTRATION_TOKEN_TTL_MAX (30 * 86400)

/* A new initial access token for registration.mode "token" (RFC 7591
 * §3): 256 random bits, "mit_" and base64url, in pool, valid for ttl
 * seconds and for one registration. Only its SHA-256 is stored (a one-time
 * record in MANDATE_REGISTRATION_TOKEN_NS, with issued_by): the token is
 * shown once, by whoever asked, and nowhere else. *expires_at_r (may be
 * NULL): when it stops being valid. */
mandate_rc mandate_registration_token_issue(mandate_runtime *rt, mandate_pool *pool,
                                            int64_t ttl, const char *issued_by, char **token_r,
                                            int64_t *expires_at_r, mandate_error *err);

/* For mandate_config_load: the client_documents and registration keys
 * that their table cannot check (host patterns, tenants, scopes,
 * audiences, min_cache <= max_cache). */
bool mandate_client_registration_config_check(const mandate_config *cfg, const config_t *file,
                                              mandate_diag *diag);

#endif
