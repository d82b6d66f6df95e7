/* Client ID Metadata Documents (core/client-documents.c): the client_id URL,
 * redirect URIs, the metadata checker (a table of documents), the address
 * filter (a table of addresses), host patterns; and the resolver against a
 * local HTTPS server (libmicrohttpd with a certificate of a CA that
 * `openssl` makes here, in the test's folder): a fetch and a cache hit,
 * Cache-Control's floor and ceiling, a redirect refused, a slow server, a
 * body too large stopped while it is read, a wrong content type, a document
 * that lies about its client_id, a private address refused, a stale copy
 * served while the server is down. The store's document cache is a fake
 * here (the facade's calls wrapped): what was stored, and when it expires,
 * is read back from it. */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <microhttpd.h>

#include "client-documents-private.h"
#include "clock-private.h"
#include "plugins-private.h"
#include "pool-private.h"
#include "runtime-fixture.h"
#include "test-helpers.h"
#include "util-private.h"

/* --- the store's document cache, faked ------------------------------------ */

#define DOCS_MAX 16

static struct {
    char *url, *document;
    int64_t fetched_at, expires_at;
} docs[DOCS_MAX];
static size_t n_docs, puts_made;
static mandate_rc put_fails; /* MANDATE_OK: puts succeed */

static void docs_reset(void)
{
    for (size_t i = 0; i < n_docs; i++) {
        free(docs[i].url);
        free(docs[i].document);
    }
    n_docs = puts_made = 0;
    put_fails = MANDATE_OK;
}

static int find_doc(const char *url)
{
    for (size_t i = 0; i < n_docs; i++)
        if (strcmp(docs[i].url, url) == 0)
            return (int)i;
    return -1;
}

__typeof__(mandate_store_client_document_put) __wrap_mandate_store_client_document_put;
mandate_rc __wrap_mandate_store_client_document_put(const mandate_instance *store,
                                                    const mandate_client_document *doc,
                                                    mandate_error *err)
{
    (void)store;
    if (put_fails != MANDATE_OK)
        return mandate_error_set(err, put_fails, "the store is down (test)");
    int i = find_doc(doc->url);
    if (i < 0) {
        assert_true(n_docs < DOCS_MAX);
        i = (int)n_docs++;
        docs[i].url = mandate_xstrdup(doc->url);
        docs[i].document = NULL;
    }
    free(docs[i].document);
    docs[i].document = mandate_xstrdup(doc->document);
    docs[i].fetched_at = doc->fetched_at;
    docs[i].expires_at = doc->expires_at;
    puts_made++;
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
    int i = find_doc(url);
    if (i < 0)
        return mandate_error_set(err, MANDATE_NOT_FOUND, "no document");
    doc_r->url = mandate_pool_strdup(pool, docs[i].url);
    doc_r->document = mandate_pool_strdup(pool, docs[i].document);
    doc_r->fetched_at = docs[i].fetched_at;
    doc_r->expires_at = docs[i].expires_at;
    return MANDATE_OK;
}

/* --- the clock ----------------------------------------------------------------- */

static int64_t fake_now;

static int64_t test_now(void)
{
    return fake_now;
}

/* --- the client_id URL -------------------------------------------------------- */

/* check must accept url when want, refuse it otherwise (the test fails
 * naming the url and check's reason); a reason is given exactly when it
 * refuses. Returns whether it accepted. */
static bool expect_url(bool (*check)(const char *, const char **), const char *url, bool want)
{
    const char *why = NULL;
    bool ok = check(url, &why);
    if (ok != want)
        fail_msg("%s: %s, expected %s (%s)", url, ok ? "accepted" : "refused",
                 want ? "accepted" : "refused", why ? why : "");
    assert_int_equal(ok, why == NULL);
    return ok;
}

static void test_document_urls(void **state)
{
    (void)state;
    static const char *const accepted[] = {"https://app.example.com/oauth/client.json",
                                           "https://app.example.com:8443/client",
                                           "https://127.0.0.1:8443/client.json",
                                           "https://[::1]:8443/client.json",
                                           "https://app.example.com/c?v=1",
                                           "https://app.example.com/a/b/"};
    static const char *const refused[] = {"http://app.example.com/client.json",
                                          "HTTPS://app.example.com/client.json",
                                          "https://app.example.com",
                                          "https://app.example.com/",
                                          "https://app.example.com?x=1",
                                          "https://app.example.com/client.json#frag",
                                          "https://user:pw@app.example.com/client.json",
                                          "https://user@app.example.com/client.json",
                                          "https://app.example.com/a/../client.json",
                                          "https://app.example.com/a/./client.json",
                                          "https://app.example.com/a/%2e%2E/client.json",
                                          "https://app.example.com/a/..",
                                          "https://app.example.com/a b",
                                          "https://app.example.com/a\"b",
                                          "https://app.example.com/a%zz",
                                          "https://app.example.com:0/c",
                                          "https://app.example.com:70000/c",
                                          "https://app.example.com:/c",
                                          "https://app..example.com/c",
                                          "https://[::1/c",
                                          "https:///c",
                                          "",
                                          "dcr-abc123"};
    for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
        assert_true(expect_url(mandate_client_document_url_check, accepted[i], true));
        assert_true(mandate_client_id_is_document(accepted[i]));
    }
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        assert_false(expect_url(mandate_client_document_url_check, refused[i], false));
        assert_false(mandate_client_id_is_document(refused[i]));
    }
    char long_url[300] = "https://app.example.com/";
    memset(long_url + strlen(long_url), 'a', sizeof(long_url) - strlen(long_url) - 1);
    long_url[sizeof(long_url) - 1] = '\0';
    assert_false(mandate_client_id_is_document(long_url));
    assert_false(mandate_client_id_is_document(NULL));

    mandate_pool *pool = mandate_pool_new();
    assert_string_equal(mandate_client_document_host(pool, "https://App.Example.COM:8443/c"),
                        "app.example.com");
    assert_string_equal(mandate_client_document_host(pool, "https://[::1]/c"), "::1");
    assert_null(mandate_client_document_host(pool, "https://app.example.com/"));
    mandate_pool_free(&pool);
}

static void test_redirect_uris(void **state)
{
    (void)state;
    static const char *const accepted[] = {
        "https://app.example.com/callback", "https://app.example.com:8443/cb?x=1",
        "http://127.0.0.1:33418/callback",  "http://127.9.9.9/cb",
        "http://localhost:3000/cb",         "http://[::1]:3000/cb",
        "com.example.app:/oauth2redirect",  "HTTPS://APP.EXAMPLE.COM/cb"};
    static const char *const refused[] = {"https://app.example.com/cb#frag",
                                          "/callback",
                                          "callback",
                                          "http://app.example.com/cb",
                                          "http://10.0.0.1/cb",
                                          "http://localhost.evil.com/cb",
                                          "https://user@app.example.com/cb",
                                          "https:app.example.com/cb",
                                          "https:///cb",
                                          "javascript:alert(1)",
                                          "data:text/html,x",
                                          "file:///etc/passwd",
                                          "myapp:/cb",
                                          "https://app.example.com/c b",
                                          "https://app.example.com/<x>",
                                          ""};
    for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++)
        expect_url(mandate_redirect_uri_check, accepted[i], true);
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        expect_url(mandate_redirect_uri_check, refused[i], false);
    char *huge = mandate_xmalloc(MANDATE_REDIRECT_URI_MAX + 64);
    strcpy(huge, "https://app.example.com/");
    memset(huge + strlen(huge), 'a', MANDATE_REDIRECT_URI_MAX);
    huge[MANDATE_REDIRECT_URI_MAX + 10] = '\0';
    assert_false(mandate_redirect_uri_check(huge, NULL));
    free(huge);
}

/* --- the metadata ------------------------------------------------------------------ */

#define URL "https://app.example.com/client.json"

static void test_metadata_table(void **state)
{
    (void)state;
    char big_name[400], huge_doc[6000];
    memset(big_name, 'n', sizeof(big_name) - 1);
    big_name[sizeof(big_name) - 1] = '\0';
    int hn = snprintf(huge_doc, sizeof(huge_doc),
                      "{\"client_id\":\"" URL "\",\"redirect_uris\":[\"https://a.example/cb\"],"
                      "\"client_name\":\"");
    memset(huge_doc + hn, 'x', sizeof(huge_doc) - (size_t)hn - 4);
    strcpy(huge_doc + sizeof(huge_doc) - 4, "\"}");
    char *name_doc = mandate_xasprintf("{\"client_id\":\"" URL "\",\"redirect_uris\":"
                                       "[\"https://a.example/cb\"],\"client_name\":\"%s\"}",
                                       big_name);
    static const char good[] =
        "{\"client_id\":\"" URL "\",\"client_name\":\"Example MCP\","
        "\"redirect_uris\":[\"http://127.0.0.1:33418/cb\",\"https://app.example.com/cb\"],"
        "\"grant_types\":[\"authorization_code\",\"refresh_token\"],"
        "\"response_types\":[\"code\"],\"token_endpoint_auth_method\":\"none\","
        "\"client_uri\":\"https://app.example.com\",\"logo_uri\":\"https://app.example.com/l."
        "png\",\"scope\":\"mcp:call\",\"contacts\":[\"x@example.com\"],\"jwks\":{\"keys\":[]}}";
    const struct {
        const char *what, *text;
        size_t max;
        mandate_metadata_source source;
        const char *error; /* NULL: accepted */
    } cases[] = {
        {"a good document", good, 5120, MANDATE_METADATA_DOCUMENT, NULL},
        {"the least document",
         "{\"client_id\":\"" URL "\",\"redirect_uris\":[\"https://a.example/cb\"]}", 5120,
         MANDATE_METADATA_DOCUMENT, NULL},
        {"too big", good, 100, MANDATE_METADATA_DOCUMENT, "invalid_client_metadata"},
        {"a huge document", huge_doc, 5120, MANDATE_METADATA_DOCUMENT,
         "invalid_client_metadata"},
        {"not JSON", "<html>hello</html>", 5120, MANDATE_METADATA_DOCUMENT,
         "invalid_client_metadata"},
        {"not an object", "[\"" URL "\"]", 5120, MANDATE_METADATA_DOCUMENT,
         "invalid_client_metadata"},
        {"a member twice",
         "{\"client_id\":\"" URL "\",\"client_id\":\"" URL "\",\"redirect_uris\":[\"https://a."
         "example/cb\"]}",
         5120, MANDATE_METADATA_DOCUMENT, "invalid_client_metadata"},
        {"client_id missing", "{\"redirect_uris\":[\"https://a.example/cb\"]}", 5120,
         MANDATE_METADATA_DOCUMENT, "invalid_client_metadata"},
        {"client_id of another URL",
         "{\"client_id\":\"https://app.example.com/other.json\",\"redirect_uris\":[\"https://"
         "a.example/cb\"]}",
         5120, MANDATE_METADATA_DOCUMENT, "invalid_client_metadata"},
        {"client_id differing in case",
         "{\"client_id\":\"https://APP.example.com/client.json\",\"redirect_uris\":[\"https://"
         "a.example/cb\"]}",
         5120, MANDATE_METADATA_DOCUMENT, "invalid_client_metadata"},
        {"a shared-secret method",
         "{\"client_id\":\"" URL "\",\"redirect_uris\":[\"https://a.example/cb\"],"
         "\"token_endpoint_auth_method\":\"client_secret_basic\"}",
         5120, MANDATE_METADATA_DOCUMENT, "invalid_client_metadata"},
        {"client_secret_jwt",
         "{\"client_id\":\"" URL "\",\"redirect_uris\":[\"https://a.example/cb\"],"
         "\"token_endpoint_auth_method\":\"client_secret_jwt\"}",
         5120, MANDATE_METADATA_DOCUMENT, "invalid_client_metadata"},
        {"private_key_jwt (not supported here)",
         "{\"client_id\":\"" URL "\",\"redirect_uris\":[\"https://a.example/cb\"],"
         "\"token_endpoint_auth_method\":\"private_key_jwt\",\"jwks_uri\":\"https://a.example/"
         "jwks\"}",
         5120, MANDATE_METADATA_DOCUMENT, "invalid_client_metadata"},
        {"a client_secret",
         "{\"client_id\":\"" URL "\",\"redirect_uris\":[\"https://a.example/cb\"],"
         "\"client_secret\":\"s3cret\"}",
         5120, MANDATE_METADATA_DOCUMENT, "invalid_client_metadata"},
        {"no redirect_uris", "{\"client_id\":\"" URL "\"}", 5120, MANDATE_METADATA_DOCUMENT,
         "invalid_redirect_uri"},
        {"empty redirect_uris", "{\"client_id\":\"" URL "\",\"redirect_uris\":[]}", 5120,
         MANDATE_METADATA_DOCUMENT, "invalid_redirect_uri"},
        {"redirect_uris not an array",
         "{\"client_id\":\"" URL "\",\"redirect_uris\":\"https://a.example/cb\"}", 5120,
         MANDATE_METADATA_DOCUMENT, "invalid_redirect_uri"},
        {"a redirect URI with a fragment",
         "{\"client_id\":\"" URL "\",\"redirect_uris\":[\"https://a.example/cb#x\"]}", 5120,
         MANDATE_METADATA_DOCUMENT, "invalid_redirect_uri"},
        {"a relative redirect URI", "{\"client_id\":\"" URL "\",\"redirect_uris\":[\"/cb\"]}",
         5120, MANDATE_METADATA_DOCUMENT, "invalid_redirect_uri"},
        {"http on a public host",
         "{\"client_id\":\"" URL "\",\"redirect_uris\":[\"http://a.example/cb\"]}", 5120,
         MANDATE_METADATA_DOCUMENT, "invalid_redirect_uri"},
        {"a redirect URI twice",
         "{\"client_id\":\"" URL "\",\"redirect_uris\":[\"https://a.example/cb\","
         "\"https://a.example/cb\"]}",
         5120, MANDATE_METADATA_DOCUMENT, "invalid_redirect_uri"},
        {"a redirect URI not a string", "{\"client_id\":\"" URL "\",\"redirect_uris\":[42]}",
         5120, MANDATE_METADATA_DOCUMENT, "invalid_redirect_uri"},
        {"a huge client_name", name_doc, 5120, MANDATE_METADATA_DOCUMENT,
         "invalid_client_metadata"},
        {"a client_name with a control character",
         "{\"client_id\":\"" URL "\",\"redirect_uris\":[\"https://a.example/cb\"],"
         "\"client_name\":\"a\\u0007b\"}",
         5120, MANDATE_METADATA_DOCUMENT, "invalid_client_metadata"},
        {"a logo_uri not https",
         "{\"client_id\":\"" URL "\",\"redirect_uris\":[\"https://a.example/cb\"],"
         "\"logo_uri\":\"javascript:alert(1)\"}",
         5120, MANDATE_METADATA_DOCUMENT, "invalid_client_metadata"},
        {"an initiate_login_uri (https)",
         "{\"client_id\":\"" URL "\",\"redirect_uris\":[\"https://a.example/cb\"],"
         "\"initiate_login_uri\":\"https://a.example/login?from=idp\"}",
         5120, MANDATE_METADATA_DOCUMENT, NULL},
        {"an initiate_login_uri on a loopback host",
         "{\"client_id\":\"" URL "\",\"redirect_uris\":[\"https://a.example/cb\"],"
         "\"initiate_login_uri\":\"http://127.0.0.1:8765/login\"}",
         5120, MANDATE_METADATA_DOCUMENT, NULL},
        {"an initiate_login_uri in plain http elsewhere",
         "{\"client_id\":\"" URL "\",\"redirect_uris\":[\"https://a.example/cb\"],"
         "\"initiate_login_uri\":\"http://a.example/login\"}",
         5120, MANDATE_METADATA_DOCUMENT, "invalid_client_metadata"},
        {"an initiate_login_uri of another scheme",
         "{\"client_id\":\"" URL "\",\"redirect_uris\":[\"https://a.example/cb\"],"
         "\"initiate_login_uri\":\"javascript:alert(1)//\"}",
         5120, MANDATE_METADATA_DOCUMENT, "invalid_client_metadata"},
        {"an initiate_login_uri with a fragment",
         "{\"client_id\":\"" URL "\",\"redirect_uris\":[\"https://a.example/cb\"],"
         "\"initiate_login_uri\":\"https://a.example/login#x\"}",
         5120, MANDATE_METADATA_DOCUMENT, "invalid_client_metadata"},
        {"an initiate_login_uri not a string",
         "{\"client_id\":\"" URL "\",\"redirect_uris\":[\"https://a.example/cb\"],"
         "\"initiate_login_uri\":7}",
         5120, MANDATE_METADATA_DOCUMENT, "invalid_client_metadata"},
        {"client_credentials for a public client",
         "{\"client_id\":\"" URL "\",\"redirect_uris\":[\"https://a.example/cb\"],"
         "\"grant_types\":[\"authorization_code\",\"client_credentials\"]}",
         5120, MANDATE_METADATA_DOCUMENT, "invalid_client_metadata"},
        {"implicit",
         "{\"client_id\":\"" URL "\",\"redirect_uris\":[\"https://a.example/cb\"],"
         "\"grant_types\":[\"implicit\"],\"response_types\":[\"token\"]}",
         5120, MANDATE_METADATA_DOCUMENT, "invalid_client_metadata"},
        {"response type token",
         "{\"client_id\":\"" URL "\",\"redirect_uris\":[\"https://a.example/cb\"],"
         "\"response_types\":[\"code\",\"token\"]}",
         5120, MANDATE_METADATA_DOCUMENT, "invalid_client_metadata"},
        {"refresh_token without authorization_code",
         "{\"client_id\":\"" URL "\",\"redirect_uris\":[\"https://a.example/cb\"],"
         "\"grant_types\":[\"refresh_token\"]}",
         5120, MANDATE_METADATA_DOCUMENT, "invalid_client_metadata"},
        {"a bad scope",
         "{\"client_id\":\"" URL "\",\"redirect_uris\":[\"https://a.example/cb\"],"
         "\"scope\":\"a\\\\b \\\"q\"}",
         5120, MANDATE_METADATA_DOCUMENT, "invalid_client_metadata"},
        {"a registration (no client_id needed)",
         "{\"redirect_uris\":[\"https://a.example/cb\"],\"client_name\":\"x\"}", 16384,
         MANDATE_METADATA_REGISTRATION, NULL},
        {"a registration asking a secret method",
         "{\"redirect_uris\":[\"https://a.example/cb\"],"
         "\"token_endpoint_auth_method\":\"client_secret_post\"}",
         16384, MANDATE_METADATA_REGISTRATION, "invalid_client_metadata"},
        {"an admin's confidential client with client_credentials",
         "{\"redirect_uris\":[\"https://a.example/cb\"],\"token_endpoint_auth_method\":"
         "\"client_secret_basic\",\"grant_types\":[\"authorization_code\","
         "\"client_credentials\"]}",
         16384, MANDATE_METADATA_ADMIN, NULL},
        {"an admin's public client with client_credentials",
         "{\"redirect_uris\":[\"https://a.example/cb\"],\"token_endpoint_auth_method\":"
         "\"none\",\"grant_types\":[\"authorization_code\",\"client_credentials\"]}",
         16384, MANDATE_METADATA_ADMIN, "invalid_client_metadata"},
        {"an admin's client with a secret in it",
         "{\"redirect_uris\":[\"https://a.example/cb\"],\"token_endpoint_auth_method\":"
         "\"client_secret_basic\",\"client_secret\":\"x\"}",
         16384, MANDATE_METADATA_ADMIN, "invalid_client_metadata"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *out = NULL;
        const char *oauth_error = NULL;
        mandate_error err = {0};
        mandate_rc rc =
            mandate_client_metadata_check(cases[i].text, strlen(cases[i].text), cases[i].max,
                                          cases[i].source, URL, &out, &oauth_error, &err);
        if (cases[i].error == NULL) {
            if (rc != MANDATE_OK)
                fail_msg("%s: refused: %s", cases[i].what, err.message);
            assert_non_null(out);
            assert_null(oauth_error);
        } else {
            if (rc != MANDATE_INVALID)
                fail_msg("%s: accepted, expected %s", cases[i].what, cases[i].error);
            assert_null(out);
            assert_non_null(oauth_error);
            if (strcmp(oauth_error, cases[i].error) != 0)
                fail_msg("%s: %s, expected %s (%s)", cases[i].what, oauth_error, cases[i].error,
                         err.message);
            assert_true(err.message[0] != '\0');
        }
        json_decref(out);
    }

    /* the normalised form: known members only, defaults filled in */
    json_t *out;
    const char *oauth_error;
    mandate_error err = {0};
    assert_int_equal(mandate_client_metadata_check(good, strlen(good), 5120,
                                                   MANDATE_METADATA_DOCUMENT, URL, &out,
                                                   &oauth_error, &err),
                     MANDATE_OK);
    assert_string_equal(json_string_value(json_object_get(out, "registered_by")), "document");
    assert_string_equal(json_string_value(json_object_get(out, "token_endpoint_auth_method")),
                        "none");
    assert_int_equal(json_array_size(json_object_get(out, "redirect_uris")), 2);
    assert_string_equal(json_string_value(json_object_get(out, "client_name")), "Example MCP");
    assert_null(json_object_get(out, "client_id"));
    assert_null(json_object_get(out, "contacts"));
    assert_null(json_object_get(out, "jwks"));
    json_decref(out);
    static const char least[] = "{\"redirect_uris\":[\"https://a.example/cb\"]}";
    assert_int_equal(mandate_client_metadata_check(least, strlen(least), 5120,
                                                   MANDATE_METADATA_REGISTRATION, NULL, &out,
                                                   &oauth_error, &err),
                     MANDATE_OK);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(out, "grant_types"), 0)),
        "authorization_code");
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(out, "response_types"), 0)), "code");
    assert_string_equal(json_string_value(json_object_get(out, "registered_by")),
                        "registration");
    json_decref(out);
    free(name_doc);
}

/* A refusal quoting bytes that are not UTF-8 (jansson's parse error of a
 * document that is not JSON) is still valid UTF-8: it goes onto the error
 * page and into error_description (found by fuzz-client-document). */
static void test_metadata_message_utf8(void **state)
{
    (void)state;
    static const char bad[] = "{\"client_name\":\"\\ud800\xff\xfe\xc3\"}";
    json_t *out = NULL;
    const char *oauth_error = NULL;
    mandate_error err = {0};
    assert_int_equal(mandate_client_metadata_check(bad, strlen(bad), 5120,
                                                   MANDATE_METADATA_REGISTRATION, NULL, &out,
                                                   &oauth_error, &err),
                     MANDATE_INVALID);
    assert_null(out);
    assert_string_equal(oauth_error, "invalid_client_metadata");
    json_t *j = json_string(err.message);
    assert_non_null(j);
    json_decref(j);
}

/* --- the address filter --------------------------------------------------------------- */

static void test_addresses(void **state)
{
    (void)state;
    static const struct {
        const char *address;
        bool ok;
    } cases[] = {
        {"93.184.216.34", true},
        {"8.8.8.8", true},
        {"2606:4700::1111", true},
        {"2a00:1450:4001:82b::200e", true},
        {"::ffff:93.184.216.34", true},
        {"64:ff9b::808:808", true},
        {"2002:5db8:d822::1", true},
        {"10.0.0.1", false},
        {"10.255.255.255", false},
        {"172.16.0.1", false},
        {"172.31.255.254", false},
        {"172.32.0.1", true},
        {"172.15.255.255", true},
        {"192.168.1.1", false},
        {"127.0.0.1", false},
        {"127.255.0.9", false},
        {"169.254.169.254", false},
        {"100.64.0.1", false},
        {"100.127.255.255", false},
        {"100.128.0.1", true},
        {"0.0.0.0", false},
        {"0.1.2.3", false},
        {"224.0.0.1", false},
        {"239.255.255.250", false},
        {"255.255.255.255", false},
        {"240.0.0.1", false},
        {"192.0.2.1", false},
        {"198.18.0.1", false},
        {"::", false},
        {"::1", false},
        {"fc00::1", false},
        {"fd12:3456::1", false},
        {"fe80::1", false},
        {"febf::1", false},
        {"fec0::1", false},
        {"ff02::1", false},
        {"2001:db8::1", false},
        {"2001::1", false},
        {"::ffff:127.0.0.1", false},
        {"::ffff:10.1.2.3", false},
        {"::ffff:169.254.169.254", false},
        {"::127.0.0.1", false},
        {"64:ff9b::7f00:1", false},
        {"64:ff9b:1::1", false},
        {"2002:7f00:1::1", false},
        {"2002:c0a8:101::1", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sockaddr_storage ss = {0};
        struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        if (inet_pton(AF_INET, cases[i].address, &in4->sin_addr) == 1)
            in4->sin_family = AF_INET;
        else if (inet_pton(AF_INET6, cases[i].address, &in6->sin6_addr) == 1)
            in6->sin6_family = AF_INET6;
        else
            fail_msg("%s is not an address", cases[i].address);
        const char *why = NULL;
        bool ok = mandate_client_document_address_check((struct sockaddr *)&ss, &why);
        if (ok != cases[i].ok)
            fail_msg("%s: %s, expected %s", cases[i].address, ok ? "public" : why,
                     cases[i].ok ? "public" : "refused");
        assert_int_equal(ok, why == NULL);
    }
    struct sockaddr unix_like = {.sa_family = AF_UNIX};
    assert_false(mandate_client_document_address_check(&unix_like, NULL));
}

static void test_host_patterns(void **state)
{
    (void)state;
    assert_true(mandate_client_host_matches("app.example.com", "app.example.com"));
    assert_true(mandate_client_host_matches("app.example.com", "APP.example.com"));
    assert_false(mandate_client_host_matches("app.example.com", "x.app.example.com"));
    assert_true(mandate_client_host_matches("*.example.com", "app.example.com"));
    assert_true(mandate_client_host_matches("*.example.com", "a.b.example.com"));
    assert_false(mandate_client_host_matches("*.example.com", "example.com"));
    assert_false(mandate_client_host_matches("*.example.com", "evilexample.com"));
    assert_false(mandate_client_host_matches("*.example.com", "example.com.evil"));
}

/* --- the HTTPS server ------------------------------------------------------------------ */

typedef struct server {
    char *dir;
    struct MHD_Daemon *mhd;
    unsigned port;
    char base[64];
    char *ca_file;
    /* what /doc.json answers, set by each test */
    pthread_mutex_t lock;
    unsigned status;
    char cache_control[64];
    char content_type[64];
    atomic_uint hits;
    atomic_size_t big_sent; /* bytes /big.json produced */
} server;

static server srv = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void run(const char *cmd)
{
    if (system(cmd) != 0)
        fail_msg("failed: %s", cmd);
}

static char *read_all(const char *path)
{
    char *data = NULL;
    mandate_error err = {0};
    if (mandate_read_file(path, 1 << 20, &data, NULL, &err) != MANDATE_OK)
        fail_msg("%s", err.message);
    return data;
}

/* A CA, and a certificate of it for 127.0.0.1 and localhost. */
static void make_certificates(const char *dir)
{
    char *cmd = mandate_xasprintf(
        "cd '%s' && "
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
        "-subj '/CN=Mandate test CA' -addext basicConstraints=critical,CA:TRUE "
        "-addext keyUsage=critical,keyCertSign -keyout ca.key -out ca.pem 2>/dev/null && "
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
        "-subj '/CN=127.0.0.1' -keyout server.key -out server.csr 2>/dev/null && "
        "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > server.ext && "
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 "
        "-extfile server.ext -out server.pem 2>/dev/null",
        dir);
    run(cmd);
    free(cmd);
}

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned status, const char *ct,
                              const char *cc, const char *body)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (ct != NULL)
        MHD_add_response_header(r, "Content-Type", ct);
    if (cc != NULL && cc[0] != '\0')
        MHD_add_response_header(r, "Cache-Control", cc);
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* An endless JSON string: what a server that never stops sends. */
static ssize_t endless(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)cls;
    if (pos == 0 && max > 0) {
        buf[0] = '"';
        memset(buf + 1, 'a', max - 1);
    } else {
        memset(buf, 'a', max);
    }
    atomic_fetch_add(&srv.big_sent, max);
    /* a bound, so a broken client cannot make the test run for ever */
    return pos > 64u * 1024 * 1024 ? MHD_CONTENT_READER_END_OF_STREAM : (ssize_t)max;
}

static char *document_for(const char *path)
{
    return mandate_xasprintf("{\"client_id\":\"%s%s\",\"client_name\":\"Test client\","
                             "\"redirect_uris\":[\"http://127.0.0.1:4000/cb\"],"
                             "\"scope\":\"mcp:call\"}",
                             srv.base, path);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *upload_data,
                               size_t *upload_data_size, void **con_cls)
{
    (void)cls, (void)method, (void)version, (void)upload_data, (void)upload_data_size;
    (void)con_cls;
    atomic_fetch_add(&srv.hits, 1);
    if (strcmp(url, "/doc.json") == 0) {
        pthread_mutex_lock(&srv.lock);
        unsigned status = srv.status;
        char cc[64], ct[64];
        memcpy(cc, srv.cache_control, sizeof(cc));
        memcpy(ct, srv.content_type, sizeof(ct));
        pthread_mutex_unlock(&srv.lock);
        char *doc = document_for(url);
        enum MHD_Result r = answer(conn, status, ct, cc, status == 200 ? doc : "{}");
        free(doc);
        return r;
    }
    if (strcmp(url, "/redirect.json") == 0) {
        struct MHD_Response *r =
            MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        char *to = mandate_xasprintf("%s/doc.json", srv.base);
        MHD_add_response_header(r, "Location", to);
        free(to);
        enum MHD_Result ret = MHD_queue_response(conn, 302, r);
        MHD_destroy_response(r);
        return ret;
    }
    if (strcmp(url, "/slow.json") == 0) {
        usleep(1500 * 1000);
        char *doc = document_for(url);
        enum MHD_Result r = answer(conn, 200, "application/json", NULL, doc);
        free(doc);
        return r;
    }
    if (strcmp(url, "/big.json") == 0) {
        struct MHD_Response *r =
            MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, endless, NULL, NULL);
        MHD_add_response_header(r, "Content-Type", "application/json");
        enum MHD_Result ret = MHD_queue_response(conn, 200, r);
        MHD_destroy_response(r);
        return ret;
    }
    if (strcmp(url, "/liar.json") == 0) {
        char *doc = document_for("/doc.json");
        enum MHD_Result r = answer(conn, 200, "application/json", NULL, doc);
        free(doc);
        return r;
    }
    if (strcmp(url, "/notjson.json") == 0)
        return answer(conn, 200, "application/json", NULL, "hello, world");
    return answer(conn, 404, "text/plain", NULL, "not found");
}

static void server_start(void)
{
    srv.dir = test_mkdtemp();
    make_certificates(srv.dir);
    char *key_file = mandate_path_join(srv.dir, "server.key");
    char *cert_file = mandate_path_join(srv.dir, "server.pem");
    char *key = read_all(key_file), *cert = read_all(cert_file);
    srv.ca_file = mandate_path_join(srv.dir, "ca.pem");
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = 0};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    srv.mhd = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_TLS, 0, NULL,
        NULL, handler, NULL, MHD_OPTION_SOCK_ADDR, &sin, MHD_OPTION_HTTPS_MEM_KEY, key,
        MHD_OPTION_HTTPS_MEM_CERT, cert, MHD_OPTION_END);
    if (srv.mhd == NULL)
        fail_msg("cannot start the HTTPS server (libmicrohttpd without TLS?)");
    srv.port = MHD_get_daemon_info(srv.mhd, MHD_DAEMON_INFO_BIND_PORT)->port;
    snprintf(srv.base, sizeof(srv.base), "https://127.0.0.1:%u", srv.port);
    free(key);
    free(cert);
    free(key_file);
    free(cert_file);
}

static void serve(unsigned status, const char *content_type, const char *cache_control)
{
    pthread_mutex_lock(&srv.lock);
    srv.status = status;
    snprintf(srv.content_type, sizeof(srv.content_type), "%s", content_type);
    snprintf(srv.cache_control, sizeof(srv.cache_control), "%s", cache_control);
    pthread_mutex_unlock(&srv.lock);
}

/* --- the resolver ---------------------------------------------------------------------- */

typedef struct fixture {
    test_runtime *open;   /* documents from private addresses allowed (the test server) */
    test_runtime *strict; /* the defaults, and host lists */
    mandate_pool *pool;
    mandate_error err;
} fixture;

static int setup(void **state)
{
    fixture *f = mandate_xcalloc(1, sizeof(*f));
    char *open = mandate_xasprintf(
        "client_documents = { ca_file = \"%s\"; allow_private_addresses = true;\n"
        "  connect_timeout_ms = 500; timeout_ms = 400; max_bytes = 2048;\n"
        "  min_cache = 60; max_cache = 3600; max_stale = 600; };\n"
        "targets = ( { name = \"cal\"; paths = [\"/mcp\"]; audience = "
        "\"https://cal.example\";\n"
        "  scopes = [\"mcp:call\", \"cal:read\"]; } );\n",
        srv.ca_file);
    f->open = test_runtime_sqlite(open, NULL);
    free(open);
    char *strict = mandate_xasprintf(
        "client_documents = { ca_file = \"%s\"; allow_hosts = [\"127.0.0.1\", "
        "\"*.example.com\"];\n  deny_hosts = [\"bad.example.com\"]; scopes = [\"mcp:call\"];\n"
        "  audiences = [\"https://only.example\"]; tenant = \"agents\"; };\n",
        srv.ca_file);
    f->strict = test_runtime_sqlite(strict, NULL);
    free(strict);
    f->pool = mandate_pool_new();
    docs_reset();
    fake_now = 1800000000;
    mandate_clock_set(test_now);
    serve(200, "application/json", "");
    atomic_store(&srv.hits, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    mandate_clock_set(NULL);
    docs_reset();
    test_runtime_free(&f->open);
    test_runtime_free(&f->strict);
    mandate_pool_free(&f->pool);
    free(f);
    return 0;
}

static const char *url_of(fixture *f, const char *path)
{
    return mandate_pool_printf(f->pool, "%s%s", srv.base, path);
}

static mandate_rc resolve(fixture *f, test_runtime *t, const char *path, mandate_client *c)
{
    f->err = (mandate_error){0};
    return mandate_client_document_resolve(t->rt, f->pool, url_of(f, path), c, &f->err);
}

static void expect_rc(fixture *f, mandate_rc got, mandate_rc want, const char *message_part)
{
    if (got != want)
        fail_msg("%s, expected %s: %s", mandate_rc_name(got), mandate_rc_name(want),
                 f->err.message);
    if (message_part != NULL && strstr(f->err.message, message_part) == NULL)
        fail_msg("'%s' does not say '%s'", f->err.message, message_part);
}

static void test_fetch_and_cache(void **state)
{
    fixture *f = *state;
    mandate_client c;
    serve(200, "application/json; charset=utf-8", "public, max-age=300");
    expect_rc(f, resolve(f, f->open, "/doc.json", &c), MANDATE_OK, NULL);
    assert_int_equal(atomic_load(&srv.hits), 1);
    assert_string_equal(c.client_id, url_of(f, "/doc.json"));
    assert_string_equal(c.tenant, "default");
    assert_string_equal(c.name, "Test client");
    /* the targets' scopes, narrowed to the document's */
    assert_string_equal(c.scopes, "mcp:call");
    assert_string_equal(c.default_scopes, "mcp:call");
    assert_string_equal(c.audiences, "https://cal.example");
    test_assert_public_client(&c);
    json_t *meta = json_loads(c.metadata, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(meta, "registered_by")), "document");
    assert_string_equal(json_string_value(json_object_get(meta, "token_endpoint_auth_method")),
                        "none");
    json_decref(meta);
    assert_int_equal(puts_made, 1);
    assert_int_equal(docs[0].fetched_at, fake_now);
    assert_int_equal(docs[0].expires_at, fake_now + 300);

    /* fresh: from the store, not fetched again */
    fake_now += 299;
    expect_rc(f, resolve(f, f->open, "/doc.json", &c), MANDATE_OK, NULL);
    assert_int_equal(atomic_load(&srv.hits), 1);
    assert_string_equal(c.client_id, url_of(f, "/doc.json"));
    /* expired: fetched again */
    fake_now += 2;
    expect_rc(f, resolve(f, f->open, "/doc.json", &c), MANDATE_OK, NULL);
    assert_int_equal(atomic_load(&srv.hits), 2);
    assert_int_equal(puts_made, 2);
}

static void test_cache_bounds(void **state)
{
    fixture *f = *state;
    mandate_client c;
    static const struct {
        const char *cache_control;
        int64_t kept;
    } cases[] = {
        {"max-age=5", 60},        /* below the floor */
        {"max-age=999999", 3600}, /* above the ceiling */
        {"no-store", 60},         /* the floor */
        {"no-cache, max-age=900", 60},
        {"", 60}, /* none: the floor */
        {"private, max-age=900", 900},
        {"max-age=\"120\"", 120},
        {"max-age=abc", 60},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        docs_reset();
        serve(200, "application/json", cases[i].cache_control);
        expect_rc(f, resolve(f, f->open, "/doc.json", &c), MANDATE_OK, NULL);
        if (docs[0].expires_at - fake_now != cases[i].kept)
            fail_msg("Cache-Control '%s': kept %llds, expected %llds", cases[i].cache_control,
                     (long long)(docs[0].expires_at - fake_now), (long long)cases[i].kept);
    }
}

/* A failed fetch is remembered for min_cache (60 s here): past it, the
 * next resolve of the URL fetches again. */
static void forget_failures(void)
{
    fake_now += 60;
}

/* Whether every copy stored is a remembered failure (no document). */
static bool only_failures_stored(void)
{
    for (size_t i = 0; i < n_docs; i++)
        if (docs[i].document != NULL)
            return false;
    return true;
}

static void test_refusals(void **state)
{
    fixture *f = *state;
    mandate_client c;
    expect_rc(f, resolve(f, f->open, "/redirect.json", &c), MANDATE_INVALID,
              "redirects are never followed");
    assert_null(c.client_id);
    serve(200, "text/html", "");
    expect_rc(f, resolve(f, f->open, "/doc.json", &c), MANDATE_INVALID, "not application/json");
    forget_failures();
    serve(200, "", "");
    expect_rc(f, resolve(f, f->open, "/doc.json", &c), MANDATE_INVALID, "not application/json");
    expect_rc(f, resolve(f, f->open, "/notjson.json", &c), MANDATE_INVALID, "not a JSON");
    expect_rc(f, resolve(f, f->open, "/liar.json", &c), MANDATE_INVALID, "is not its URL");
    expect_rc(f, resolve(f, f->open, "/nothing.json", &c), MANDATE_INVALID, "answered 404");
    forget_failures();
    serve(503, "application/json", "");
    expect_rc(f, resolve(f, f->open, "/doc.json", &c), MANDATE_TEMPFAIL, "answered 503");
    /* not a document URL: nothing fetched */
    unsigned hits = atomic_load(&srv.hits);
    f->err = (mandate_error){0};
    assert_int_equal(mandate_client_document_resolve(f->open->rt, f->pool,
                                                     "https://127.0.0.1:1/", &c, &f->err),
                     MANDATE_INVALID);
    assert_int_equal(atomic_load(&srv.hits), hits);
    /* nothing of it all was stored but the failures */
    assert_true(only_failures_stored());
}

/* Review s33, finding 8: anyone can name a URL, so a failed fetch (a
 * refusal, an error answer, a timeout) is remembered for min_cache and
 * naming the URL again fetches nothing until then. */
static void test_failure_remembered(void **state)
{
    fixture *f = *state;
    mandate_client c;
    unsigned hits = atomic_load(&srv.hits);
    expect_rc(f, resolve(f, f->open, "/nothing.json", &c), MANDATE_INVALID, "answered 404");
    assert_int_equal(atomic_load(&srv.hits), hits + 1);
    fake_now += 59;
    for (int i = 0; i < 3; i++)
        expect_rc(f, resolve(f, f->open, "/nothing.json", &c), MANDATE_TEMPFAIL,
                  "not fetched again for 1s (client_documents.min_cache)");
    assert_null(c.client_id);
    assert_int_equal(atomic_load(&srv.hits), hits + 1);
    /* past min_cache: fetched again, and now it is there */
    fake_now++;
    serve(503, "application/json", "");
    expect_rc(f, resolve(f, f->open, "/doc.json", &c), MANDATE_TEMPFAIL, "answered 503");
    assert_int_equal(atomic_load(&srv.hits), hits + 2);
    expect_rc(f, resolve(f, f->open, "/doc.json", &c), MANDATE_TEMPFAIL, "not fetched again");
    assert_int_equal(atomic_load(&srv.hits), hits + 2);
    forget_failures();
    serve(200, "application/json", "");
    expect_rc(f, resolve(f, f->open, "/doc.json", &c), MANDATE_OK, NULL);
    assert_int_equal(atomic_load(&srv.hits), hits + 3);
}

static void test_slow_server(void **state)
{
    fixture *f = *state;
    mandate_client c;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    expect_rc(f, resolve(f, f->open, "/slow.json", &c), MANDATE_TEMPFAIL, "within 400 ms");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    /* the timeout, not the server, decided when it ended */
    assert_true(s < 1.4);
    assert_true(only_failures_stored());
}

static void test_too_big(void **state)
{
    fixture *f = *state;
    mandate_client c;
    atomic_store(&srv.big_sent, 0);
    expect_rc(f, resolve(f, f->open, "/big.json", &c), MANDATE_INVALID,
              "over 2048 bytes (client_documents.max_bytes): not read further");
    /* stopped while reading: the server got to produce little of its 64 MiB */
    usleep(200 * 1000);
    size_t sent = atomic_load(&srv.big_sent);
    if (sent > 4u * 1024 * 1024)
        fail_msg("the server sent %zu bytes before the fetch stopped", sent);
    assert_true(only_failures_stored());
}

static void test_hosts_and_addresses(void **state)
{
    fixture *f = *state;
    mandate_client c;
    /* 127.0.0.1 is allowed by name, then refused by its address */
    expect_rc(f, resolve(f, f->strict, "/doc.json", &c), MANDATE_DENIED,
              "loopback (127.0.0.0/8)");
    assert_int_equal(atomic_load(&srv.hits), 0);
    /* by name: refused before anything is resolved */
    const char *cases[][2] = {
        {"https://localhost:1/doc.json", "not among client_documents.allow_hosts"},
        {"https://bad.example.com/doc.json", "is denied"},
        {"https://elsewhere.org/doc.json", "not among client_documents.allow_hosts"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        f->err = (mandate_error){0};
        mandate_rc rc =
            mandate_client_document_resolve(f->strict->rt, f->pool, cases[i][0], &c, &f->err);
        expect_rc(f, rc, MANDATE_DENIED, cases[i][1]);
    }
    assert_int_equal(atomic_load(&srv.hits), 0);
    assert_true(only_failures_stored());
}

static void test_stale_copy(void **state)
{
    fixture *f = *state;
    mandate_client c;
    serve(200, "application/json", "max-age=100");
    expect_rc(f, resolve(f, f->open, "/doc.json", &c), MANDATE_OK, NULL);
    int64_t fetched = fake_now;
    /* expired, and the server is down: the copy is served up to max_stale */
    serve(503, "application/json", "");
    fake_now = fetched + 100 + 600;
    expect_rc(f, resolve(f, f->open, "/doc.json", &c), MANDATE_OK, NULL);
    assert_string_equal(c.client_id, url_of(f, "/doc.json"));
    assert_int_equal(c.created_at, fetched);
    fake_now++;
    expect_rc(f, resolve(f, f->open, "/doc.json", &c), MANDATE_TEMPFAIL, "answered 503");
    assert_null(c.client_id);
    /* a refusal is never covered by an old copy (the failure just
     * remembered has taken the copy's place: fetched again) */
    docs_reset();
    serve(200, "application/json", "max-age=100");
    expect_rc(f, resolve(f, f->open, "/doc.json", &c), MANDATE_OK, NULL);
    fake_now += 101;
    serve(404, "application/json", "");
    expect_rc(f, resolve(f, f->open, "/doc.json", &c), MANDATE_INVALID, "answered 404");
    assert_null(c.client_id);
}

static void test_store_failure(void **state)
{
    fixture *f = *state;
    mandate_client c;
    put_fails = MANDATE_TEMPFAIL;
    expect_rc(f, resolve(f, f->open, "/doc.json", &c), MANDATE_TEMPFAIL, "store is down");
    assert_null(c.client_id);
}

static void test_strict_client(void **state)
{
    fixture *f = *state;
    mandate_client c;
    /* a stored copy: what the strict runtime makes of it (no fetch) */
    serve(200, "application/json", "max-age=300");
    expect_rc(f, resolve(f, f->open, "/doc.json", &c), MANDATE_OK, NULL);
    expect_rc(f, resolve(f, f->strict, "/doc.json", &c), MANDATE_OK, NULL);
    assert_int_equal(atomic_load(&srv.hits), 1);
    assert_string_equal(c.tenant, "agents");
    assert_string_equal(c.scopes, "mcp:call");
    assert_string_equal(c.audiences, "https://only.example");
}

/* What the config loader says when it refuses text (NULL: it took it). */
static char *config_refusal(void *ctx, const char *text)
{
    (void)ctx;
    test_runtime *t = test_runtime_new(text);
    mandate_config *cfg = NULL;
    char *said = mandate_config_load(t->conf, &cfg, &t->diag) ? NULL : mandate_diag_join(&t->diag);
    mandate_config_free(&cfg);
    test_runtime_free(&t);
    return said;
}

static void test_config_checks(void **state)
{
    (void)state;
    static const test_text_case cases[] = {
        {"client_documents = { min_cache = 600; max_cache = 60; };", "over max_cache"},
        {"client_documents = { allow_hosts = [\"Bad.Example\"]; };", "lower-case"},
        {"client_documents = { deny_hosts = [\"*.\"]; };", "lower-case"},
        {"client_documents = { tenant = \"a b\"; };", "client_documents.tenant"},
        {"registration = { scopes = [\"a\\\"b\"]; };", "is not a scope"},
        {"registration = { audiences = [\"not-a-uri\"]; };", "not an absolute URI"},
        {"registration = { mode = \"sometimes\"; };", "must be one of"},
        {"client_documents = { max_bytes = 100000; };", "outside the allowed range"},
    };
    test_expect_refusals(cases, TEST_COUNT(cases), config_refusal, NULL);
    test_runtime *t =
        test_runtime_new("client_documents = { allow_hosts = [\"*.example.com\", \"::1\"]; };");
    test_runtime_instance(t, "store", "kind = \"store\"; plugin = \"sqlite\";\n");
    mandate_config *cfg = NULL;
    assert_true(mandate_config_load(t->conf, &cfg, &t->diag));
    assert_true(cfg->client_documents.enabled);
    assert_string_equal(cfg->registration.mode, "off");
    assert_int_equal(cfg->client_documents.max_bytes, 5120);
    assert_null(cfg->client_documents.scopes);
    mandate_config_free(&cfg);
    test_runtime_free(&t);
}

/* One address holds at most MANDATE_CLIENT_DOCUMENT_FETCHES_PER_ADDRESS
 * fetches set aside (review s36); another address is not held back by it,
 * and a fetch released gives its place back. */
static void test_fetch_claims_per_address(void **state)
{
    (void)state;
    for (int i = 0; i < MANDATE_CLIENT_DOCUMENT_FETCHES_PER_ADDRESS; i++)
        assert_true(mandate_client_document_fetch_claim("192.0.2.7"));
    assert_false(mandate_client_document_fetch_claim("192.0.2.7"));
    assert_true(mandate_client_document_fetch_claim("2001:db8:1:2::"));
    mandate_client_document_fetch_release("192.0.2.7");
    assert_true(mandate_client_document_fetch_claim("192.0.2.7"));
    for (int i = 0; i < MANDATE_CLIENT_DOCUMENT_FETCHES_PER_ADDRESS; i++)
        mandate_client_document_fetch_release("192.0.2.7");
    mandate_client_document_fetch_release("2001:db8:1:2::");
    /* a few dozen addresses at once at most: the next is refused, until
     * one is released */
    char key[32];
    int taken = 0;
    for (; taken < 1000; taken++) {
        snprintf(key, sizeof(key), "198.51.100.%d", taken);
        if (!mandate_client_document_fetch_claim(key))
            break;
    }
    assert_true(taken >= 16 && taken < 1000);
    mandate_client_document_fetch_release("198.51.100.0");
    assert_true(mandate_client_document_fetch_claim(key));
    mandate_client_document_fetch_release(key);
    for (int i = 1; i < taken; i++) {
        snprintf(key, sizeof(key), "198.51.100.%d", i);
        mandate_client_document_fetch_release(key);
    }
}

int main(void)
{
    const struct CMUnitTest unit[] = {
        cmocka_unit_test(test_document_urls),  cmocka_unit_test(test_redirect_uris),
        cmocka_unit_test(test_metadata_table), cmocka_unit_test(test_metadata_message_utf8),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_fetch_claims_per_address),
        cmocka_unit_test(test_host_patterns),  cmocka_unit_test(test_config_checks),
    };
    const struct CMUnitTest fetches[] = {
        TEST_FX(test_fetch_and_cache),
        TEST_FX(test_cache_bounds),
        TEST_FX(test_refusals),
        TEST_FX(test_failure_remembered),
        TEST_FX(test_slow_server),
        TEST_FX(test_too_big),
        TEST_FX(test_hosts_and_addresses),
        TEST_FX(test_stale_copy),
        TEST_FX(test_store_failure),
        TEST_FX(test_strict_client),
    };
    int failed = cmocka_run_group_tests_name("checks", unit, NULL, NULL);
    server_start();
    failed += cmocka_run_group_tests_name("fetches", fetches, NULL, NULL);
    MHD_stop_daemon(srv.mhd);
    test_rmdir_rf(srv.dir);
    free(srv.dir);
    free(srv.ca_file);
    return failed;
}
