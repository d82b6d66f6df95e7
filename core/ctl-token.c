/* mandatectl token get: the client credentials grant from a script. The
 * secret comes from a file or the environment, never from argv (which every
 * user of the machine can read in ps). */
#include "config.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "ctl-private.h"
#include "host-private.h"
#include "pool-private.h"
#include "util-private.h"
#include "validate-private.h"

#define SECRET_FILE_MAX 4096
#define RESPONSE_MAX (64 * 1024)
#define TIMEOUT_S 30
#define TOKEN_MAX (16 * 1024)

typedef struct buffer {
    char *data;
    size_t len;
    bool overflow;
} buffer;

static size_t collect(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    buffer *b = userdata;
    size_t n = size * nmemb;
    if (b->len + n > RESPONSE_MAX) {
        b->overflow = true;
        return 0;
    }
    b->data = mandate_xrealloc(b->data, b->len + n + 1);
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

static char *read_secret(const char *file)
{
    if (file == NULL) {
        const char *env = getenv("MANDATE_CLIENT_SECRET");
        return env && env[0] ? mandate_xstrdup(env) : NULL;
    }
    char *text = NULL;
    size_t len = 0;
    mandate_error err = {0};
    if (mandate_read_file(file, SECRET_FILE_MAX, &text, &len, &err) != MANDATE_OK) {
        fprintf(stderr, "mandatectl token get: %s\n", err.message);
        return NULL;
    }
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
        text[--len] = '\0';
    if (len == 0) {
        fprintf(stderr, "mandatectl token get: %s is empty\n", file);
        free(text);
        return NULL;
    }
    return text;
}

static int token_get(ctl *c, int argc, char **argv)
{
    static const struct option opts[] = {{"token-url", required_argument, NULL, 'u'},
                                         {"client-id", required_argument, NULL, 'i'},
                                         {"scope", required_argument, NULL, 's'},
                                         {"resource", required_argument, NULL, 'r'},
                                         {"secret-file", required_argument, NULL, 'f'},
                                         {NULL, 0, NULL, 0}};
    const char *url = NULL, *client_id = NULL, *scope = NULL, *secret_file = NULL;
    const char *resources[8];
    size_t n_resources = 0;
    int opt;
    optind = 0;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'u': url = optarg; break;
        case 'i': client_id = optarg; break;
        case 's': scope = optarg; break;
        case 'f': secret_file = optarg; break;
        case 'r':
            if (n_resources == 8) {
                fprintf(stderr, "mandatectl token get: at most 8 --resource\n");
                return CTL_USAGE;
            }
            resources[n_resources++] = optarg;
            break;
        default: return CTL_USAGE;
        }
    }
    if (optind != argc || url == NULL || client_id == NULL) {
        fprintf(stderr, "Usage: mandatectl token get --token-url URL --client-id ID "
                        "[--scope S] [--resource URI] [--secret-file FILE]\n");
        return CTL_USAGE;
    }
    char *secret = read_secret(secret_file);
    if (secret == NULL) {
        if (secret_file == NULL)
            fprintf(stderr, "mandatectl token get: give the secret with --secret-file or "
                            "$MANDATE_CLIENT_SECRET\n");
        return CTL_REFUSED;
    }

    CURL *curl = curl_easy_init();
    if (curl == NULL) {
        free(secret);
        return CTL_REFUSED;
    }
    /* RFC 6749 §2.3.1: both halves of Basic are form-urlencoded first */
    char *id_enc = curl_easy_escape(curl, client_id, 0);
    char *secret_enc = curl_easy_escape(curl, secret, 0);
    OPENSSL_cleanse(secret, strlen(secret));
    free(secret);
    char *body = mandate_xstrdup("grant_type=client_credentials");
    if (scope != NULL) {
        char *e = curl_easy_escape(curl, scope, 0);
        char *next = mandate_xasprintf("%s&scope=%s", body, e);
        curl_free(e);
        free(body);
        body = next;
    }
    for (size_t i = 0; i < n_resources; i++) {
        char *e = curl_easy_escape(curl, resources[i], 0);
        char *next = mandate_xasprintf("%s&resource=%s", body, e);
        curl_free(e);
        free(body);
        body = next;
    }
    buffer resp = {0};
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(curl, CURLOPT_USERNAME, id_enc);
    curl_easy_setopt(curl, CURLOPT_PASSWORD, secret_enc);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)TIMEOUT_S);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "mandatectl/" PACKAGE_VERSION);
    CURLcode cc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    OPENSSL_cleanse(secret_enc, strlen(secret_enc));
    curl_free(secret_enc);
    curl_free(id_enc);
    curl_easy_cleanup(curl);
    free(body);

    int rc = CTL_REFUSED;
    json_t *doc = resp.data ? json_loads(resp.data, 0, NULL) : NULL;
    const char *token = json_string_value(json_object_get(doc, "access_token"));
    if (cc != CURLE_OK) {
        fprintf(stderr, "mandatectl token get: %s: %s\n", url,
                resp.overflow ? "response too large" : curl_easy_strerror(cc));
    } else if (status != 200 || token == NULL) {
        const char *error = json_string_value(json_object_get(doc, "error"));
        const char *desc = json_string_value(json_object_get(doc, "error_description"));
        fprintf(stderr, "mandatectl token get: HTTP %ld: %s%s%s\n", status,
                error ? error : "no token in the response", desc ? ": " : "", desc ? desc : "");
    } else {
        rc = CTL_OK;
        if (c->json)
            ctl_print_json(json_incref(doc));
        else
            puts(token);
    }
    json_decref(doc);
    free(resp.data);
    return rc;
}

/* A token from a file, or standard input for "-": tokens are secrets too,
 * so never from argv. */
static char *read_token(const char *file)
{
    char *text = NULL;
    size_t len = 0;
    if (strcmp(file, "-") == 0) {
        text = mandate_xmalloc(TOKEN_MAX + 2);
        len = fread(text, 1, TOKEN_MAX + 1, stdin);
        text[len] = '\0';
        if (len > TOKEN_MAX) {
            fprintf(stderr, "mandatectl token: the token is longer than %d bytes\n", TOKEN_MAX);
            free(text);
            return NULL;
        }
    } else {
        mandate_error err = {0};
        if (mandate_read_file(file, TOKEN_MAX, &text, &len, &err) != MANDATE_OK) {
            fprintf(stderr, "mandatectl token: %s\n", err.message);
            return NULL;
        }
    }
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
        text[--len] = '\0';
    return text;
}

static int token_introspect(ctl *c, int argc, char **argv)
{
    static const struct option opts[] = {{"token-file", required_argument, NULL, 't'},
                                         {NULL, 0, NULL, 0}};
    const char *file = NULL;
    int opt;
    optind = 0;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (opt != 't')
            return CTL_USAGE;
        file = optarg;
    }
    if (optind != argc || file == NULL) {
        fprintf(stderr, "Usage: mandatectl token introspect --token-file FILE|-\n");
        return CTL_USAGE;
    }
    char *token = read_token(file);
    if (token == NULL)
        return CTL_REFUSED;
    mandate_runtime *rt = ctl_runtime(c, MANDATE_RUNTIME_MIGRATE);
    if (rt == NULL) {
        free(token);
        return CTL_REFUSED;
    }
    mandate_pool *pool = mandate_pool_new();
    mandate_token_status st;
    mandate_error err = {0};
    mandate_rc rc = mandate_token_validate(rt, pool, token, strlen(token), &st, &err);
    int status = CTL_OK;
    if (rc == MANDATE_OK) {
        ctl_print_json(mandate_grant_to_introspection(&st.grant));
    } else if (rc == MANDATE_INVALID) {
        ctl_print_json(json_pack("{s:b,s:s}", "active", 0, "reason", st.reason));
    } else {
        fprintf(stderr, "mandatectl token introspect: %s\n", err.message);
        status = CTL_REFUSED;
    }
    mandate_pool_free(&pool);
    mandate_runtime_unref(&rt);
    OPENSSL_cleanse(token, strlen(token));
    free(token);
    return status;
}

static int token_revoke(ctl *c, int argc, char **argv)
{
    static const struct option opts[] = {{"token-file", required_argument, NULL, 't'},
                                         {"jti", required_argument, NULL, 'j'},
                                         {"client", required_argument, NULL, 'c'},
                                         {NULL, 0, NULL, 0}};
    const char *file = NULL, *jti = NULL, *client_id = NULL;
    int opt;
    optind = 0;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 't': file = optarg; break;
        case 'j': jti = optarg; break;
        case 'c': client_id = optarg; break;
        default: return CTL_USAGE;
        }
    }
    if (optind != argc || (file == NULL) == (jti == NULL)) {
        fprintf(stderr, "Usage: mandatectl token revoke --jti JTI [--client ID] | "
                        "--token-file FILE|-\n");
        return CTL_USAGE;
    }
    char *token = file ? read_token(file) : NULL;
    if (file != NULL && token == NULL)
        return CTL_REFUSED;
    mandate_runtime *rt = ctl_runtime(c, MANDATE_RUNTIME_MIGRATE);
    int status = CTL_REFUSED;
    mandate_pool *pool = mandate_pool_new();
    mandate_error err = {0};
    /* by jti alone the expiry is unknown: keep it for the longest lifetime */
    int64_t expires_at = mandate_clock_now() + MANDATE_TOKEN_MAX_LIFETIME;
    if (rt != NULL && token != NULL) {
        mandate_token_status st;
        mandate_rc rc = mandate_token_validate(rt, pool, token, strlen(token), &st, &err);
        if ((rc == MANDATE_OK || rc == MANDATE_INVALID) && st.parsed && st.grant.jti != NULL) {
            jti = st.grant.jti;
            client_id = st.grant.client_id;
            expires_at = st.grant.expires_at;
        } else if (rc == MANDATE_INVALID) {
            mandate_error_set(&err, rc, "not a token of this broker (%s)", st.reason);
            jti = NULL;
        }
    }
    if (rt != NULL && jti != NULL) {
        void *store;
        const mandate_store_ops *ops = mandate_runtime_store(rt, &store);
        if (ops->revoke(store, jti, client_id, expires_at, &err) == MANDATE_OK) {
            status = CTL_OK;
            if (c->json)
                ctl_print_json(json_pack("{s:s,s:I}", "revoked", jti, "until",
                                         (json_int_t)expires_at));
            else
                printf("token %s revoked; every broker refuses it within a second\n", jti);
        }
    }
    if (status != CTL_OK && rt != NULL)
        fprintf(stderr, "mandatectl token revoke: %s\n", err.message);
    mandate_pool_free(&pool);
    mandate_runtime_unref(&rt);
    if (token != NULL)
        OPENSSL_cleanse(token, strlen(token));
    free(token);
    return status;
}

int ctl_cmd_token(ctl *c, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "get") == 0)
        return token_get(c, argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "introspect") == 0)
        return token_introspect(c, argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "revoke") == 0)
        return token_revoke(c, argc - 1, argv + 1);
    fprintf(stderr, "Usage: mandatectl token get|introspect|revoke ...\n");
    return CTL_USAGE;
}
