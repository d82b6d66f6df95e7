/* libFuzzer harness: the authorization endpoint, GET /oauth2/authorize
 * (core/endpoint-authorize.c), driven whole through a request made here as
 * tests/request-fixture.c makes them for the unit tests: the query read by
 * mandate_web_query (core/web.c), the client (the store's, or a Client ID
 * Metadata Document through the real mandate_client_document_resolve), the
 * redirect_uri (mandate_signin_redirect_ok), state, response_type, the
 * client's grants, PKCE, scope and resource, prompt, max_age, login_hint
 * routing, the browser session, and then what follows in core/signin.c: the
 * IdP's login_start (the test backend fakeidp, two instances), the chooser
 * page, the mapping rules, the consent page, a remembered consent and the
 * code, and every error sent back to the client.
 *
 * The runtime is real (mandate.conf in a temporary folder made once, the
 * sqlite store, the jwt format and tests/plugins/backend-fakeidp loaded
 * from the build folder, which must have built them), but the store's
 * sign-in calls are faked by -Wl,--wrap as tests/test-register.c fakes
 * them, so that nothing is written per input: the clients (a fixed table),
 * the cached client documents (part 2 of the input), the one-time records
 * (kept for the checks, never read back), the browser sessions (named by
 * the cookie), remembered consent, authorization codes. libcurl's
 * curl_easy_perform is wrapped too: a document not in the "cache" is a
 * server that cannot be reached, never a fetch. The audit trail is caught
 * (mandate_audit_event) and the request headers answered from the input.
 * The clock is fixed at FUZZ_NOW. The randomness is real (handles, codes).
 *
 * Input: up to four parts split at FUZZ_SEP ("\n\f\n"):
 *   0  what follows "/oauth2/authorize" in the request-target: "?" and the
 *      query (a fragment after '#' is not the query's), up to its first NUL
 *   1  the Cookie header (absent: none); known sessions: alice-session
 *      (corp, signed in 10 min ago), old-session (corp, 2 h ago),
 *      partner-session (partner, whose user no rule admits),
 *      stale-session (idle too long), gone-session (an IdP not offered)
 *   2  the client document the store holds for any document URL, fresh
 *      (absent: none, and the fetch fails: 503)
 *   3  control byte 0 (absent: 0): bit 0 alice has a remembered consent for
 *      mcp:call at the calendar; bit 1 the one-time records fail
 *      (TEMPFAIL); bit 2 the audit trail fails; bit 3 the auth code store
 *      fails
 *
 * Invariants (abort):
 *   - the answer is a page (200, 400, 403, 404, 429, 503, text/html with
 *     the CSP header) or a 302; never a 500 (a page that does not render);
 *   - a 302 only when the query parses, its client is known (enabled in the
 *     table, or a document that mandate_client_metadata_check accepts for
 *     that URL) and its redirect_uri is one the client registered (the
 *     exact string, or for http://127.0.0.1 and http://[::1] any port,
 *     checked here by a reading of our own); then the Location is that
 *     redirect_uri with error or code (consent_required and
 *     interaction_required only for prompt=none), iss = the issuer and
 *     state exactly the request's (absent when absent or over 1024 bytes),
 *     or the IdP
 *     (the broker's own /login/<idp>/callback for fakeidp) with the pending
 *     authorization kept for this client, redirect_uri, state and
 *     code_challenge, and the login cookie set; a code only for a session
 *     of the input's cookie, stored for that redirect_uri and challenge;
 *   - no header value holds a control character, a space in Location;
 *   - every page's '<' opens one of the templates' tags: so no value of the
 *     query, the cookie or the client document that holds any other '<'
 *     reaches a page unescaped (one made only of the templates' own tags
 *     cannot be told from them; '"' cannot reach an attribute, which hold
 *     only the issuer, IdP names, random handles and tokens);
 *   - every audit record has its fields (a json_pack that fails gives NULL
 *     and the record is written empty).
 * Its findings (a record without fields; a 500 for a page that did not
 * render) are fixed, their inputs in the corpus (regress-*).
 * Bounds: 64 KiB in all (the server's own target limit is far below). */
#include "config.h"

#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "audit-events-private.h"
#include "client-documents-private.h"
#include "clock-private.h"
#include "config-private.h"
#include "endpoints-private.h"
#include "form-private.h"
#include "fuzz-common.h"
#include "kek-private.h"
#include "log-private.h"
#include "plugins-private.h"
#include "pool-private.h"
#include "runtime-private.h"
#include "signin-private.h"
#include "web-private.h"

#define HARNESS_MAX_INPUT (64 * 1024)
#define ISSUER "https://broker.example"
#define CAL "https://mcp.example/cal"
#define STATE_MAX 1024

#define C_CONSENT 0x01
#define C_ONCE_FAILS 0x02
#define C_AUDIT_FAILS 0x04
#define C_CODE_FAILS 0x08

static mandate_runtime *rt;
static char dir[256];
static unsigned control;
static const char *document; /* part 2, NUL-terminated; NULL: absent */

/* --- the clients ------------------------------------------------------------- */

typedef struct fuzz_client {
    const char *client_id;
    mandate_client_status status;
    const char *metadata; /* NULL: a machine client */
} fuzz_client;

static const fuzz_client clients[] = {
    {"mcp-app", MANDATE_CLIENT_ENABLED,
     "{\"redirect_uris\":[\"http://127.0.0.1:7777/cb\",\"https://app.example.com/cb\","
     "\"com.example.app:/oauth\",\"http://[::1]/cb\"],\"grant_types\":"
     "[\"authorization_code\",\"refresh_token\"],\"token_endpoint_auth_method\":\"none\","
     "\"client_name\":\"MCP <App>\",\"registered_by\":\"admin\"}"},
    /* a redirect URI with a query of its own: answers are added with '&' */
    {"web-app", MANDATE_CLIENT_ENABLED,
     "{\"redirect_uris\":[\"https://web.example.com/cb?tenant=1\",\"http://localhost/cb\"],"
     "\"token_endpoint_auth_method\":\"client_secret_basic\",\"registered_by\":\"admin\"}"},
    /* registered for client credentials only */
    {"robot", MANDATE_CLIENT_ENABLED,
     "{\"redirect_uris\":[\"https://robot.example.com/cb\"],\"grant_types\":"
     "[\"client_credentials\"],\"registered_by\":\"admin\"}"},
    {"machine", MANDATE_CLIENT_ENABLED, NULL},
    {"retired", MANDATE_CLIENT_DISABLED,
     "{\"redirect_uris\":[\"https://retired.example.com/cb\"],\"registered_by\":\"admin\"}"},
};

static const fuzz_client *table_client(const char *client_id)
{
    for (size_t i = 0; i < sizeof(clients) / sizeof(clients[0]); i++)
        if (strcmp(clients[i].client_id, client_id) == 0)
            return &clients[i];
    return NULL;
}

__typeof__(mandate_store_client_get) __wrap_mandate_store_client_get;
mandate_rc __wrap_mandate_store_client_get(const mandate_instance *store, mandate_pool *pool,
                                           const char *client_id, mandate_client *client_r,
                                           mandate_error *err)
{
    (void)store;
    memset(client_r, 0, sizeof(*client_r));
    const fuzz_client *c = table_client(client_id);
    if (c == NULL)
        return mandate_error_set(err, MANDATE_NOT_FOUND, "no such client");
    client_r->client_id = mandate_pool_strdup(pool, c->client_id);
    client_r->tenant = "default";
    client_r->name = "A client";
    client_r->scopes = "mcp:call gateway:invoke";
    client_r->audiences = CAL;
    client_r->status = c->status;
    client_r->metadata = c->metadata;
    return MANDATE_OK;
}

__typeof__(mandate_store_client_document_get) __wrap_mandate_store_client_document_get;
mandate_rc __wrap_mandate_store_client_document_get(const mandate_instance *store,
                                                    mandate_pool *pool, const char *url,
                                                    mandate_client_document *doc_r,
                                                    mandate_error *err)
{
    (void)store;
    memset(doc_r, 0, sizeof(*doc_r));
    if (document == NULL)
        return mandate_error_set(err, MANDATE_NOT_FOUND, "no copy");
    doc_r->url = mandate_pool_strdup(pool, url);
    doc_r->document = document;
    doc_r->fetched_at = FUZZ_NOW - 60;
    doc_r->expires_at = FUZZ_NOW + 3600;
    return MANDATE_OK;
}

__typeof__(mandate_store_client_document_put) __wrap_mandate_store_client_document_put;
mandate_rc __wrap_mandate_store_client_document_put(const mandate_instance *store,
                                                    const mandate_client_document *doc,
                                                    mandate_error *err)
{
    (void)store, (void)err;
    /* nothing is fetched, so no document is stored: only the failed
     * fetch, remembered (no document) */
    if (doc->document != NULL)
        abort();
    return MANDATE_OK;
}

__typeof__(curl_easy_perform) __wrap_curl_easy_perform;
CURLcode __wrap_curl_easy_perform(CURL *curl)
{
    (void)curl;
    return CURLE_COULDNT_CONNECT;
}

/* --- one-time records, sessions, consent, codes -------------------------------- */

#define ONCE_MAX 8
static struct {
    char ns[32];
    json_t *value;
} once[ONCE_MAX];
static size_t n_once;

__typeof__(mandate_store_once_put) __wrap_mandate_store_once_put;
mandate_rc __wrap_mandate_store_once_put(const mandate_instance *store, const char *ns,
                                         const unsigned char *key, size_t key_len,
                                         const char *value, int64_t expires_at,
                                         mandate_error *err)
{
    (void)store, (void)key;
    if (key_len != 32 || expires_at <= FUZZ_NOW || n_once == ONCE_MAX)
        abort();
    if (control & C_ONCE_FAILS)
        return mandate_error_set(err, MANDATE_TEMPFAIL, "the store is away");
    snprintf(once[n_once].ns, sizeof(once[n_once].ns), "%s", ns);
    once[n_once].value = json_loads(value, 0, NULL);
    if (once[n_once].value == NULL)
        abort();
    n_once++;
    return MANDATE_OK;
}

static const struct {
    const char *cookie, *idp, *identity;
    int64_t authn_ago, idle;
} sessions[] = {
    {"alice-session", "backend-corp",
     "{\"issuer\":\"https://fake-idp.test\",\"subject\":\"alice\",\"attributes\":"
     "{\"role\":\"advisor\",\"uid\":\"alice\"}}",
     600, 60},
    {"old-session", "backend-corp",
     "{\"issuer\":\"https://fake-idp.test\",\"subject\":\"bob\",\"attributes\":"
     "{\"role\":\"advisor\",\"uid\":\"bob<b>\"}}",
     7200, 60},
    {"partner-session", "backend-partner",
     "{\"issuer\":\"https://fake-idp.test\",\"subject\":\"<i>mallory</i>\",\"attributes\":"
     "{\"role\":\"guest\",\"uid\":\"mallory\"}}",
     60, 10},
    {"stale-session", "backend-corp",
     "{\"issuer\":\"https://fake-idp.test\",\"subject\":\"carol\",\"attributes\":"
     "{\"role\":\"advisor\",\"uid\":\"carol\"}}",
     90000, 90000},
    {"gone-session", "backend-gone",
     "{\"issuer\":\"https://fake-idp.test\",\"subject\":\"dave\",\"attributes\":{}}", 60, 10},
};
#define N_SESSIONS (sizeof(sessions) / sizeof(sessions[0]))
static unsigned char session_keys[N_SESSIONS][32];
static int session_used; /* the session looked up, -1: none */

__typeof__(mandate_store_session_get) __wrap_mandate_store_session_get;
mandate_rc __wrap_mandate_store_session_get(const mandate_instance *store, mandate_pool *pool,
                                            const unsigned char *hash, size_t hash_len,
                                            int64_t now, mandate_session *session_r,
                                            mandate_error *err)
{
    (void)store;
    memset(session_r, 0, sizeof(*session_r));
    for (size_t i = 0; i < N_SESSIONS && hash_len == 32; i++) {
        if (memcmp(session_keys[i], hash, 32) != 0)
            continue;
        session_used = (int)i;
        session_r->id_hash = mandate_pool_alloc(pool, 32);
        memcpy((unsigned char *)session_r->id_hash, hash, 32);
        session_r->id_hash_len = 32;
        session_r->tenant = "default";
        session_r->idp = sessions[i].idp;
        session_r->identity = sessions[i].identity;
        json_t *id = json_loads(sessions[i].identity, 0, NULL);
        session_r->subject =
            mandate_pool_strdup(pool, json_string_value(json_object_get(id, "subject")));
        json_decref(id);
        session_r->created_at = now - sessions[i].authn_ago;
        session_r->authn_at = now - sessions[i].authn_ago;
        session_r->last_seen_at = now - sessions[i].idle;
        session_r->expires_at = now + 3600;
        return MANDATE_OK;
    }
    return mandate_error_set(err, MANDATE_NOT_FOUND, "no such session");
}

__typeof__(mandate_store_session_touch) __wrap_mandate_store_session_touch;
mandate_rc __wrap_mandate_store_session_touch(const mandate_instance *store,
                                              const unsigned char *hash, size_t hash_len,
                                              int64_t now, mandate_error *err)
{
    (void)store, (void)hash, (void)hash_len, (void)now, (void)err;
    return MANDATE_OK;
}

__typeof__(mandate_store_consent_get) __wrap_mandate_store_consent_get;
mandate_rc __wrap_mandate_store_consent_get(const mandate_instance *store, mandate_pool *pool,
                                            const char *tenant, const char *subject,
                                            const char *client_id, int64_t now,
                                            mandate_consent *consent_r, mandate_error *err)
{
    (void)store, (void)now;
    memset(consent_r, 0, sizeof(*consent_r));
    if (!(control & C_CONSENT) || strcmp(subject, "advisor-alice") != 0)
        return mandate_error_set(err, MANDATE_NOT_FOUND, "no consent");
    consent_r->tenant = mandate_pool_strdup(pool, tenant);
    consent_r->subject = mandate_pool_strdup(pool, subject);
    consent_r->client_id = mandate_pool_strdup(pool, client_id);
    consent_r->scope = "mcp:call";
    consent_r->resources = CAL;
    return MANDATE_OK;
}

static struct {
    bool put;
    unsigned char hash[32];
    char *client_id, *redirect_uri, *challenge;
} code;

__typeof__(mandate_store_auth_code_put) __wrap_mandate_store_auth_code_put;
mandate_rc __wrap_mandate_store_auth_code_put(const mandate_instance *store,
                                              const mandate_auth_code *c, mandate_error *err)
{
    (void)store;
    if (code.put || c->code_hash_len != 32 || c->expires_at <= FUZZ_NOW)
        abort();
    if (control & C_CODE_FAILS)
        return mandate_error_set(err, MANDATE_TEMPFAIL, "the store is away");
    code.put = true;
    memcpy(code.hash, c->code_hash, 32);
    code.client_id = strdup(c->client_id);
    code.redirect_uri = strdup(c->redirect_uri);
    code.challenge = strdup(c->code_challenge);
    return MANDATE_OK;
}

/* --- the request's headers and the audit trail --------------------------------- */

FUZZ_WRAP_COOKIE_HEADER

__typeof__(mandate_audit_event) __wrap_mandate_audit_event;
mandate_rc __wrap_mandate_audit_event(const char *event, json_t *fields)
{
    if (event == NULL)
        abort();
    if (fields == NULL) /* a json_pack that failed */
        abort();
    json_decref(fields);
    return (control & C_AUDIT_FAILS) ? MANDATE_ERROR : MANDATE_OK;
}

/* --- the runtime --------------------------------------------------------------- */

static int64_t fixed_now(void)
{
    return FUZZ_NOW;
}

static void write_in(const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fuzz_write_file(path, text, strlen(text));
}

static void link_plugin(const char *from, const char *name)
{
    char target[1024], link[512];
    snprintf(target, sizeof(target), "%s/%s", from, name);
    snprintf(link, sizeof(link), "%s/plugins/%s", dir, name);
    if (access(target, R_OK) != 0 || symlink(target, link) != 0) {
        fprintf(stderr, "fuzz-authorize: %s: build it first (make)\n", target);
        abort();
    }
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_dir(void)
{
    mandate_runtime_unref(&rt);
    if (dir[0] != '\0')
        nftw(dir, remove_one, 8, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    mandate_log_setup("stderr", fuzz_debug() ? MANDATE_LOG_DEBUG : MANDATE_LOG_ERROR,
                      "fuzz-authorize");
    fuzz_mkdtemp(dir, sizeof(dir), "fuzz-authorize");
    atexit(remove_dir);
    char sub[512];
    const char *subs[] = {"plugins", "state", "mandate.d"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(sub, sizeof(sub), "%s/%s", dir, subs[i]);
        if (mkdir(sub, 0700) != 0)
            abort();
    }
    link_plugin(BUILDDIR "/plugins/.libs", "store-sqlite.so");
    link_plugin(BUILDDIR "/plugins/.libs", "format-jwt.so");
    link_plugin(BUILDDIR "/tests/plugins/.libs", "backend-fakeidp.so");
    snprintf(sub, sizeof(sub), "%s/state/kek", dir);
    mandate_error err = {0};
    if (mandate_kek_create(sub, &err) != MANDATE_OK)
        abort();
    char text[4096];
    snprintf(text, sizeof(text),
             "plugin_dir = \"%s/plugins\";\nstate_dir = \"state\";\n"
             "server: { issuer = \"" ISSUER "\"; };\n"
             "targets = ( { name = \"cal\"; paths = [\"/mcp\"]; audience = \"" CAL "\";\n"
             "  scopes = [\"mcp:call\"]; } );\n"
             "mappings = ( { name = \"advisors\"; idp = \"backend-corp\";\n"
             "  when = ( { attribute = \"role\"; equals = \"advisor\"; } );\n"
             "  subject = \"advisor-${uid}\"; tenant = \"default\";\n"
             "  scopes = [\"mcp:call\", \"gateway:invoke\"]; audience = [\"" CAL "\"]; } );\n"
             "client_documents: { enabled = true; deny_hosts = [\"*.evil.example\"]; };\n"
             "signin: {\n"
             "  idps = ( { instance = \"backend-corp\"; label = \"Corp <SSO>\";\n"
             "             domains = [\"corp.example\"]; },\n"
             "           { instance = \"backend-partner\"; domains = [\"partner.example\"]; } );\n"
             "  tenants = ( { tenant = \"default\"; name = \"Example & \\\"Bank\\\"\"; } );\n"
             "};\n",
             dir);
    write_in("mandate.conf", text);
    write_in("mandate.d/store.conf", "kind = \"store\"; plugin = \"sqlite\";\n");
    write_in("mandate.d/format-jwt.conf", "kind = \"format\"; plugin = \"jwt\";\n");
    write_in("mandate.d/backend-corp.conf", "kind = \"backend\"; plugin = \"fakeidp\";\n");
    write_in("mandate.d/backend-partner.conf", "kind = \"backend\"; plugin = \"fakeidp\";\n");
    snprintf(sub, sizeof(sub), "%s/mandate.conf", dir);
    mandate_config *cfg = NULL;
    mandate_diag diag = {0};
    if (!mandate_config_load(sub, &cfg, &diag) ||
        mandate_runtime_create(cfg, MANDATE_RUNTIME_MIGRATE | MANDATE_RUNTIME_CREATE_KEYS, &rt,
                               &diag) != MANDATE_OK) {
        char *why = mandate_diag_join(&diag);
        fprintf(stderr, "fuzz-authorize: the runtime: %s\n", why);
        abort();
    }
    mandate_diag_free(&diag);
    mandate_clock_set(fixed_now);
    for (size_t i = 0; i < N_SESSIONS; i++)
        mandate_web_hash(sessions[i].cookie, session_keys[i]);
    return 0;
}

/* --- the checks ------------------------------------------------------------------ */

/* http://127.0.0.1[:port]REST or http://[::1][:port]REST, REST empty or
 * beginning with '/' or '?': the host's index (0, 1) and REST; -1: not one. */
static int loopback(const char *uri, const char **rest_r)
{
    static const char *const hosts[] = {"http://127.0.0.1", "http://[::1]"};
    for (int h = 0; h < 2; h++) {
        size_t n = strlen(hosts[h]);
        if (strncmp(uri, hosts[h], n) != 0)
            continue;
        const char *p = uri + n;
        if (*p == ':') {
            size_t digits = strspn(p + 1, "0123456789");
            if (digits == 0)
                return -1;
            p += 1 + digits;
        }
        if (*p != '\0' && *p != '/' && *p != '?')
            return -1;
        *rest_r = p;
        return h;
    }
    return -1;
}

/* Whether metadata (JSON text) registers uri (RFC 8252 §7.3 for loopback). */
static bool registered(const char *metadata, const char *uri)
{
    json_t *meta = json_loads(metadata, 0, NULL);
    json_t *uris = json_object_get(meta, "redirect_uris"), *v;
    const char *rest, *rrest;
    int host = loopback(uri, &rest);
    bool ok = false;
    size_t i;
    json_array_foreach(uris, i, v)
    {
        const char *r = json_string_value(v);
        if (r != NULL && (strcmp(r, uri) == 0 ||
                          (host >= 0 && loopback(r, &rrest) == host && strcmp(rrest, rest) == 0)))
            ok = true;
    }
    json_decref(meta);
    return ok;
}

/* The metadata of the request's client when it may be sent anywhere; NULL:
 * unknown or refused. For a document, the input's copy as the check reads
 * it (malloc'd). */
static char *known_client(const char *client_id)
{
    if (mandate_client_id_is_document(client_id)) {
        if (document == NULL)
            return NULL;
        mandate_pool *pool = mandate_pool_new();
        const char *host = mandate_client_document_host(pool, client_id);
        size_t hn = strlen(host), sn = strlen(".evil.example");
        bool denied = hn > sn && strcmp(host + hn - sn, ".evil.example") == 0;
        mandate_pool_free(&pool);
        if (denied)
            return NULL;
        json_t *normalised;
        const char *oauth_error;
        mandate_error err = {0};
        const mandate_config *cfg = mandate_runtime_config(rt);
        if (mandate_client_metadata_check(document, strlen(document),
                                          (size_t)cfg->client_documents.max_bytes,
                                          MANDATE_METADATA_DOCUMENT, client_id, &normalised,
                                          &oauth_error, &err) != MANDATE_OK)
            return NULL;
        char *text = json_dumps(normalised, JSON_COMPACT);
        json_decref(normalised);
        return text;
    }
    const fuzz_client *c = table_client(client_id);
    if (c == NULL || c->status != MANDATE_CLIENT_ENABLED || c->metadata == NULL)
        return NULL;
    return strdup(c->metadata);
}

static const char *header(const mandate_http_response *resp, const char *name)
{
    for (size_t i = 0; i < resp->header_count; i++)
        if (strcasecmp(resp->headers[i].name, name) == 0)
            return resp->headers[i].value;
    return NULL;
}

/* The tags of the pages' templates (core/web.c, endpoint-authorize.c,
 * signin.c): a '<' opens one of them or it came from outside. */
static bool tag_ok(const char *p)
{
    static const char *const tags[] = {
        "!DOCTYPE html>", "html ",   "head>",  "meta ",   "title>", "style>",  "body>",
        "main>",          "div ",    "h1>",    "p>",      "form ",  "input ",  "button ",
        "button>",        "strong>", "small>", "code>",   "ul>",    "li>",     "label>",
        "/html>",         "/head>",  "/title>", "/style>", "/body>", "/main>",  "/div>",
        "/h1>",           "/p>",     "/form>", "/button>", "/strong>", "/small>", "/code>",
        "/ul>",           "/li>",    "/label>"};
    for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++)
        if (strncmp(p + 1, tags[i], strlen(tags[i])) == 0)
            return true;
    return false;
}

static void check_page(const mandate_http_response *resp)
{
    if (resp->content_type == NULL || strncmp(resp->content_type, "text/html", 9) != 0 ||
        resp->body == NULL || header(resp, "Content-Security-Policy") == NULL ||
        header(resp, "Location") != NULL || strlen(resp->body) != resp->body_len)
        abort();
    for (const char *p = strchr(resp->body, '<'); p != NULL; p = strchr(p + 1, '<'))
        if (!tag_ok(p)) {
            fprintf(stderr, "fuzz-authorize: a '<' from outside: %.60s\n", p);
            abort();
        }
}

/* The answer added to the client's redirect_uri: parsed. */
static void check_back_to_client(mandate_pool *pool, const char *location,
                                 const char *redirect_uri, const mandate_form *q)
{
    char sep = strchr(redirect_uri, '?') != NULL ? '&' : '?';
    size_t n = strlen(redirect_uri);
    if (location[n] != sep)
        abort();
    mandate_form a;
    mandate_error err = {0};
    const char *added = location + n + 1;
    if (mandate_form_parse(pool, added, strlen(added), NULL, &a, &err) != MANDATE_OK)
        abort();
    const char *iss = mandate_form_get(&a, "iss"), *state = mandate_form_get(&a, "state");
    const char *error = mandate_form_get(&a, "error"), *c = mandate_form_get(&a, "code");
    const char *want_state = mandate_form_get(q, "state");
    if (want_state != NULL && strlen(want_state) > STATE_MAX)
        want_state = NULL;
    if (iss == NULL || strcmp(iss, ISSUER) != 0 || (error == NULL) == (c == NULL) ||
        (want_state == NULL) != (state == NULL) ||
        (state != NULL && strcmp(state, want_state) != 0))
        abort();
    if (error != NULL) {
        static const char *const errors[] = {
            "invalid_request",     "unsupported_response_type", "unauthorized_client",
            "invalid_scope",       "invalid_target",            "login_required",
            "access_denied",       "server_error",              "temporarily_unavailable",
            "consent_required",    "interaction_required"};
        bool known = false;
        for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
            known |= strcmp(error, errors[i]) == 0;
        /* consent_required and interaction_required answer prompt=none only
         * (OpenID Connect Core 3.1.2.6): otherwise the user is asked */
        const char *prompt = mandate_form_get(q, "prompt");
        bool silent = prompt != NULL && strstr(prompt, "none") != NULL;
        if ((strcmp(error, "consent_required") == 0 ||
             strcmp(error, "interaction_required") == 0) &&
            !silent)
            known = false;
        if (!known || mandate_form_get(&a, "error_description") == NULL || code.put) {
            fprintf(stderr, "fuzz-authorize: error=%s\n", error);
            abort();
        }
        return;
    }
    /* a code: a session of the cookie's, stored for this request */
    unsigned char h[32];
    mandate_web_hash(c, h);
    if (session_used < 0 || !code.put || memcmp(h, code.hash, 32) != 0 ||
        strcmp(code.redirect_uri, redirect_uri) != 0 ||
        strcmp(code.client_id, mandate_form_get(q, "client_id")) != 0 ||
        strcmp(code.challenge, mandate_form_get(q, "code_challenge")) != 0)
        abort();
}

static const char *login_cookie(const mandate_http_response *resp)
{
    for (size_t i = 0; i < resp->header_count; i++)
        if (strcasecmp(resp->headers[i].name, "Set-Cookie") == 0 &&
            strncmp(resp->headers[i].value, MANDATE_LOGIN_COOKIE "=",
                    strlen(MANDATE_LOGIN_COOKIE) + 1) == 0)
            return resp->headers[i].value;
    return NULL;
}

/* The browser sent to the IdP (fakeidp: the broker's own callback), the
 * pending authorization kept for it. */
static void check_to_idp(const mandate_http_response *resp, const char *location,
                         const mandate_form *q)
{
    const char *cookie = login_cookie(resp);
    if (strncmp(location, ISSUER "/login/backend-", strlen(ISSUER "/login/backend-")) != 0)
        abort();
    json_t *p = NULL;
    for (size_t i = 0; i < n_once; i++)
        if (strcmp(once[i].ns, "authorize") == 0)
            p = once[i].value;
    const char *state = mandate_form_get(q, "state");
    if (cookie == NULL || p == NULL || code.put)
        abort();
    const char *kept_state = json_string_value(json_object_get(p, "state"));
    if (strcmp(json_string_value(json_object_get(p, "client_id")),
               mandate_form_get(q, "client_id")) != 0 ||
        strcmp(json_string_value(json_object_get(p, "redirect_uri")),
               mandate_form_get(q, "redirect_uri")) != 0 ||
        strcmp(json_string_value(json_object_get(p, "code_challenge")),
               mandate_form_get(q, "code_challenge")) != 0 ||
        (state == NULL) != (kept_state == NULL) ||
        (state != NULL && strcmp(state, kept_state) != 0))
        abort();
}

static void check_headers(const mandate_http_response *resp)
{
    for (size_t i = 0; i < resp->header_count; i++) {
        const char *v = resp->headers[i].value;
        if (v == NULL)
            abort();
        bool location = strcasecmp(resp->headers[i].name, "Location") == 0;
        for (const unsigned char *c = (const unsigned char *)v; *c != '\0'; c++)
            if (*c < 0x20 || *c == 0x7f || (location && (*c == ' ' || *c >= 0x80))) {
                fprintf(stderr, "fuzz-authorize: %s: %s\n", resp->headers[i].name, v);
                abort();
            }
    }
}

static void check(mandate_http_request *req, const mandate_http_response *resp)
{
    check_headers(resp);
    mandate_form q;
    mandate_error err = {0};
    bool q_ok = mandate_web_query(req, (const char *const[]){"resource", NULL}, &q, &err) ==
                MANDATE_OK;
    const char *client_id = q_ok ? mandate_form_get(&q, "client_id") : NULL;
    const char *redirect_uri = q_ok ? mandate_form_get(&q, "redirect_uri") : NULL;
    char *metadata = client_id != NULL ? known_client(client_id) : NULL;
    bool may_redirect = metadata != NULL && redirect_uri != NULL &&
                        registered(metadata, redirect_uri);
    free(metadata);
    if (fuzz_debug())
        fprintf(stderr, "authorize: %u %s (query %s, may redirect %d)\n", resp->status,
                header(resp, "Location") ? header(resp, "Location") : "", q_ok ? "ok" : err.message,
                may_redirect);
    switch (resp->status) {
    case 302: {
        const char *location = header(resp, "Location");
        if (!may_redirect || location == NULL || resp->body_len != 0)
            abort();
        if (login_cookie(resp) != NULL)
            check_to_idp(resp, location, &q);
        else if (strncmp(location, redirect_uri, strlen(redirect_uri)) == 0)
            check_back_to_client(req->pool, location, redirect_uri, &q);
        else
            abort();
        break;
    }
    case 200:
    case 400:
    case 403:
    case 404:
    case 429:
    case 503:
        check_page(resp);
        if (resp->status == 200 && !may_redirect)
            abort(); /* a chooser or a consent page for an unchecked client */
        if (code.put && resp->status == 200)
            abort();
        break;
    default:
        fprintf(stderr, "fuzz-authorize: status %u: %.*s\n", resp->status,
                (int)resp->body_len, resp->body ? resp->body : "");
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > HARNESS_MAX_INPUT)
        return -1;
    fuzz_part parts[4];
    size_t n = fuzz_split(data, size, parts, 4);
    char *query = fuzz_strndup(parts[0].data, parts[0].len);
    char *cookie = n > 1 ? fuzz_strndup(parts[1].data, parts[1].len) : NULL;
    char *doc = n > 2 ? fuzz_strndup(parts[2].data, parts[2].len) : NULL;
    control = fuzz_control_byte(parts, n, 3);
    fuzz_cookie_header = cookie;
    document = doc;
    session_used = -1;
    n_once = 0;
    memset(&code, 0, sizeof(code));

    mandate_pool *pool = mandate_pool_new();
    mandate_http_request req;
    memset(&req, 0, sizeof(req));
    req.method = "GET";
    req.path = "/oauth2/authorize";
    req.raw_target = mandate_pool_printf(pool, "/oauth2/authorize%s", query);
    req.pool = pool;
    req.runtime = rt;
    req.body = "";
    strcpy(req.request_id, "0123456789abcdef");
    struct sockaddr_in *sin = (struct sockaddr_in *)&req.socket_peer;
    sin->sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &sin->sin_addr);

    mandate_http_response resp;
    memset(&resp, 0, sizeof(resp));
    mandate_endpoint_authorize(&req, &resp);
    check(&req, &resp);

    for (size_t i = 0; i < n_once; i++)
        json_decref(once[i].value);
    free(code.client_id);
    free(code.redirect_uri);
    free(code.challenge);
    mandate_pool_free(&pool);
    free(query);
    free(cookie);
    free(doc);
    return 0;
}
