/* mandatectl token get: the client credentials grant from a script. The
 * secret comes from a file or the environment, never from argv (which every
 * user of the machine can read in ps). */
#include "config.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "mandate/client.h"

#include "clock-private.h"
#include "ctl-private.h"
#include "plugins-private.h"
#include "pool-private.h"
#include "util-private.h"
#include "validate-private.h"

#define SECRET_FILE_MAX 4096
#define TIMEOUT_MS 30000
#define TOKEN_MAX (16 * 1024)

/* Drops the line end and spaces a file's last line leaves after a secret
 * or a token; returns the length left. */
static size_t trim_end(char *text, size_t len)
{
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
        text[--len] = '\0';
    return len;
}

static char *read_secret(const char *file)
{
    if (file == NULL) {
        const char *env = getenv("MANDATE_CLIENT_SECRET");
        return env && env[0] ? mandate_xstrdup(env) : NULL;
    }
    /* As ssh refuses a private key others may read: a secret that group or
     * world can read is no longer the client's alone, and using it would
     * hide that. */
    struct stat st;
    if (stat(file, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077) != 0) {
        fprintf(stderr,
                "mandatectl token get: %s is readable by %s (mode %04o): a client secret must "
                "be readable by its owner only; chmod 600 %s, and rotate the secret if others "
                "may have read it (mandatectl client rotate-secret)\n",
                file, (st.st_mode & 007) != 0 ? "others" : "its group",
                (unsigned)(st.st_mode & 07777), file);
        return NULL;
    }
    size_t len = 0;
    char *text = ctl_read_file("mandatectl token get", file, SECRET_FILE_MAX, &len);
    if (text == NULL)
        return NULL;
    if (trim_end(text, len) == 0) {
        fprintf(stderr, "mandatectl token get: %s is empty\n", file);
        free(text);
        return NULL;
    }
    return text;
}

static int token_get(const ctl *c, int argc, char **argv)
{
    const char *url = NULL, *client_id = NULL, *scope = NULL, *secret_file = NULL;
    const char *resource = NULL;
    const ctl_option opts[] = {CTL_VALUE("token-url", &url),
                               CTL_VALUE("client-id", &client_id),
                               CTL_VALUE("scope", &scope),
                               {.name = "resource",
                                .value = &resource,
                                .once = "mandatectl token get: give --resource once"},
                               CTL_VALUE("secret-file", &secret_file),
                               {0}};
    if (!ctl_options(argc, argv, opts) ||
        !ctl_operands(argc, 0, url != NULL && client_id != NULL,
                      "Usage: mandatectl token get --token-url URL --client-id ID "
                      "[--scope S] [--resource URI] [--secret-file FILE]\n"))
        return CTL_USAGE;
    char *secret = read_secret(secret_file);
    if (secret == NULL) {
        if (secret_file == NULL)
            fprintf(stderr, "mandatectl token get: give the secret with --secret-file or "
                            "$MANDATE_CLIENT_SECRET\n");
        return CTL_REFUSED;
    }

    /* The same code path agents use: libmandate's token source. */
    char err[256] = "";
    mandate_token_source_config config = {.token_url = url,
                                           .client_id = client_id,
                                           .client_secret = secret,
                                           .scope = scope,
                                           .resource = resource,
                                           .timeout_ms = TIMEOUT_MS};
    mandate_token_source *source = mandate_token_source_new(&config, err, sizeof(err));
    OPENSSL_cleanse(secret, strlen(secret));
    free(secret);
    if (source == NULL) {
        fprintf(stderr, "mandatectl token get: %s\n", err);
        return CTL_USAGE;
    }
    char *token = NULL;
    int64_t expires_at = 0;
    mandate_client_rc rc = mandate_token_source_get(source, &token, &expires_at, err, sizeof(err));
    mandate_token_source_free(&source);
    if (rc != MANDATE_CLIENT_OK) {
        fprintf(stderr, "mandatectl token get: %s: %s\n", url, err);
        return CTL_REFUSED;
    }
    if (c->json) {
        int64_t expires_in = expires_at - mandate_clock_now();
        ctl_print_json(json_pack("{s:s, s:s, s:I}", "access_token", token, "token_type", "Bearer",
                                 "expires_in", (json_int_t)(expires_in > 0 ? expires_in : 0)));
    } else {
        puts(token);
    }
    OPENSSL_cleanse(token, strlen(token));
    free(token);
    return CTL_OK;
}

char *ctl_read_token(const char *file)
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
    } else if ((text = ctl_read_file("mandatectl token", file, TOKEN_MAX, &len)) == NULL) {
        return NULL;
    }
    trim_end(text, len);
    return text;
}

static int token_introspect(const ctl *c, int argc, char **argv)
{
    const char *file = NULL;
    const ctl_option opts[] = {CTL_VALUE("token-file", &file), {0}};
    if (!ctl_options(argc, argv, opts) ||
        !ctl_operands(argc, 0, file != NULL,
                      "Usage: mandatectl token introspect --token-file FILE|-\n"))
        return CTL_USAGE;
    char *token = ctl_read_token(file);
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

static int token_revoke(const ctl *c, int argc, char **argv)
{
    const char *file = NULL, *jti = NULL, *client_id = NULL;
    const ctl_option opts[] = {CTL_VALUE("token-file", &file),
                               CTL_VALUE("jti", &jti),
                               CTL_VALUE("client", &client_id),
                               {0}};
    if (!ctl_options(argc, argv, opts) ||
        !ctl_operands(argc, 0, (file == NULL) != (jti == NULL),
                      "Usage: mandatectl token revoke --jti JTI [--client ID] | "
                      "--token-file FILE|-\n"))
        return CTL_USAGE;
    char *token = file ? ctl_read_token(file) : NULL;
    if (file != NULL && token == NULL)
        return CTL_REFUSED;
    mandate_runtime *rt = ctl_runtime_for_change(c, MANDATE_RUNTIME_MIGRATE);
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
    uint64_t descendants = 0;
    if (rt != NULL && jti != NULL) {
        const mandate_instance *store = mandate_runtime_store(rt);
        /* and every token handed down from it, however deep */
        if (mandate_store_revoke(store, jti, client_id, expires_at, &err) == MANDATE_OK &&
            mandate_store_revoke_descendants(store, jti, &descendants, &err) == MANDATE_OK &&
            ctl_audit("token.revoked",
                      json_pack("{s:s,s:o,s:I,s:I}", "jti", jti, "client_id",
                                client_id ? json_string(client_id) : json_null(), "exp",
                                (json_int_t)expires_at, "descendants",
                                (json_int_t)descendants))) {
            status = CTL_OK;
            if (c->json)
                ctl_print_json(json_pack("{s:s,s:I,s:I}", "revoked", jti, "until",
                                         (json_int_t)expires_at, "descendants",
                                         (json_int_t)descendants));
            else
                printf("token %s revoked, and %llu token%s derived from it; every broker "
                       "refuses them within a second\n",
                       jti, (unsigned long long)descendants, descendants == 1 ? "" : "s");
        }
    }
    if (status != CTL_OK && rt != NULL && err.message[0] != '\0')
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
    static const ctl_verb verbs[] = {
        {"get", token_get}, {"introspect", token_introspect}, {"revoke", token_revoke}, {0}};
    return ctl_run_verb(c, argc, argv, verbs,
                        "Usage: mandatectl token get|introspect|revoke ...\n");
}
