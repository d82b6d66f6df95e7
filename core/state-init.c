#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kek-private.h"
#include "runtime-private.h"
#include "state-init-private.h"
#include "util-private.h"

static mandate_rc write_new_file(const char *path, const char *text, mode_t mode,
                                 mandate_error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return mandate_error_set(err, errno == EEXIST ? MANDATE_EXISTS : MANDATE_ERROR,
                                 "%s: %s", path, strerror(errno));
    size_t len = strlen(text);
    ssize_t n = write(fd, text, len);
    int e = errno;
    close(fd);
    if (n < 0 || (size_t)n != len)
        return mandate_error_set(err, MANDATE_ERROR, "%s: write: %s", path, strerror(e));
    return MANDATE_OK;
}

/* A string as a libconfig literal. */
static char *quoted(const char *s)
{
    size_t len = strlen(s);
    char *out = mandate_xmalloc(2 * len + 3);
    size_t j = 0;
    out[j++] = '"';
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"' || s[i] == '\\')
            out[j++] = '\\';
        out[j++] = s[i];
    }
    out[j++] = '"';
    out[j] = '\0';
    return out;
}

mandate_rc mandate_state_init(const mandate_init_options *opts, char **config_path_r,
                              mandate_error *err)
{
    if (mkdir(opts->dir, 0700) != 0 && errno != EEXIST)
        return mandate_error_set(err, MANDATE_ERROR, "%s: %s", opts->dir, strerror(errno));
    char dir[PATH_MAX];
    if (realpath(opts->dir, dir) == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "%s: %s", opts->dir, strerror(errno));

    char *conf_path = mandate_path_join(dir, "mandate.conf");
    char *instances = mandate_path_join(dir, "mandate.d");
    char *kek = mandate_path_join(dir, "kek");
    char *listen = quoted(opts->listen ? opts->listen : "127.0.0.1:8080");
    char *plugin_dir = quoted(opts->plugin_dir ? opts->plugin_dir : PLUGINDIR);
    char *issuer = opts->issuer ? quoted(opts->issuer) : NULL;
    char *resource = quoted(opts->default_resource ? opts->default_resource
                                                   : MANDATE_INIT_EXAMPLE_RESOURCE);
    char *targets = NULL;
    char *conf_text = NULL;
    mandate_rc rc = MANDATE_OK;

    if (access(conf_path, F_OK) == 0) {
        rc = mandate_error_set(err, MANDATE_EXISTS,
                               "%s already exists: this folder is initialised", conf_path);
        goto out;
    }
    if (mkdir(instances, 0755) != 0 && errno != EEXIST) {
        rc = mandate_error_set(err, MANDATE_ERROR, "%s: %s", instances, strerror(errno));
        goto out;
    }
    /* Out of the box, the gateway check protects the MarketPulse example
     * (examples/marketpulse: nginx on 127.0.0.1:9000 in front of the market
     * calendar); below it, commented, the shape of another target. */
    targets = mandate_xasprintf(
        "# Gateway targets: what GET /gateway/check protects (nginx auth_request,\n"
        "# Envoy ext_authz). A call is let through only with a token of the\n"
        "# target's audience and scopes. See mandate.conf(5), TARGETS.\n"
        "%s"
        "%s"
        "  # { name = \"crm-mcp\";\n"
        "  #   paths = [\"/crm/\"];                # and all below, whole segments\n"
        "  #   audience = \"https://crm.example/mcp\";\n"
        "  #   scopes = [\"crm:read\"];\n"
        "  #   tenant = \"bank-a\";\n"
        "  #   resource_metadata = \"https://gateway.example/.well-known/oauth-protected-resource/crm\"; }\n"
        "%s",
        opts->no_example
            ? "# targets = (\n"
            : "targets = (\n"
              "  # The MarketPulse example's market calendar (examples/marketpulse):\n"
              "  # every call needs a token for its audience with the scope mcp:call.\n"
              "  { name = \"market-calendar-mcp\";\n"
              "    paths = [\"/mcp\", \"/tools/\"];\n"
              "    audience = \"" MANDATE_INIT_EXAMPLE_RESOURCE "\";\n"
              "    scopes = [\"mcp:call\"];\n"
              "    resource_metadata = \"" MANDATE_INIT_EXAMPLE_METADATA "\"; }\n",
        opts->no_example ? "  # A tool server, for one tenant only:\n"
                         : "  # Another tool server, for one tenant only (a comma after the\n"
                           "  # target above):\n",
        opts->no_example ? "# );\n" : ");\n");
    conf_text = mandate_xasprintf(
        "# Mandate configuration, written by mandatectl init. See mandate.conf(5).\n"
        "server: {\n"
        "  listen = %s;\n"
        "%s%s%s"
        "  # threads = 0;          # 0: one per core\n"
        "  # body_limit = 65536;   # bytes\n"
        "};\n\n"
        "# Relative paths are taken from this file's folder.\n"
        "state_dir = \".\";\n"
        "kek_file = \"kek\";\n"
        "plugin_dir = %s;\n"
        "instances_dir = \"mandate.d\";\n\n"
        "log: {\n"
        "  destination = \"stderr\";  # or \"syslog\"\n"
        "  level = \"info\";\n"
        "};\n"
        "# The audit trail is in audit/ beside this file: mandatectl audit tail.\n\n"
        "# Every access token names the resource it is for (RFC 9068 aud): the\n"
        "# client's audience (client create --audience), the resource it asks for\n"
        "# (RFC 8707), or, for a client with no audience, this one. Remove it and\n"
        "# such a client gets invalid_target.\n"
        "default_resource = %s;\n\n"
        "%s",
        listen, issuer ? "  issuer = " : "", issuer ? issuer : "", issuer ? ";\n" : "",
        plugin_dir, resource, targets);
    static const struct {
        const char *file, *text;
    } instance_files[] = {
        {"store-sqlite.conf", "# The embedded default store. See mandate.conf(5).\n"
                              "kind = \"store\";\n"
                              "plugin = \"sqlite\";\n"
                              "path = \"mandate.db\";  # relative to state_dir\n"},
        {"format-jwt.conf", "# RFC 9068 JWT access tokens. See mandate.conf(5).\n"
                            "kind = \"format\";\n"
                            "plugin = \"jwt\";\n"
                            "algorithm = \"ES256\";  # or RS256, EdDSA: for new keys\n"},
        {"format-opaque.conf", "# Reference tokens: random, checked by introspection and the\n"
                               "# gateway check; the store keeps only their SHA-256.\n"
                               "# A client gets them with mandatectl client create --format opaque.\n"
                               "kind = \"format\";\n"
                               "plugin = \"opaque\";\n"},
        {"backend-local.conf", "# Clients whose secrets or public keys Mandate holds.\n"
                               "kind = \"backend\";\n"
                               "plugin = \"local\";\n"},
    };
    for (size_t i = 0; rc == MANDATE_OK && i < sizeof(instance_files) / sizeof(instance_files[0]);
         i++) {
        char *path = mandate_path_join(instances, instance_files[i].file);
        rc = write_new_file(path, instance_files[i].text, 0644, err);
        if (rc == MANDATE_EXISTS)
            rc = MANDATE_OK; /* keep an instance file the operator already put there */
        free(path);
    }
    if (rc == MANDATE_OK) {
        rc = mandate_kek_create(kek, err);
        if (rc == MANDATE_EXISTS)
            rc = MANDATE_OK; /* an existing key protects existing secrets: keep it */
    }
    if (rc == MANDATE_OK)
        rc = write_new_file(conf_path, conf_text, 0644, err);
    if (rc != MANDATE_OK)
        goto out;

    /* Load what was written, exactly as the daemon will, and create the
     * database with its schema. */
    mandate_diag diag = {0};
    mandate_config *cfg = NULL;
    mandate_runtime *rt = NULL;
    if (!mandate_config_load(conf_path, &cfg, &diag) ||
        mandate_runtime_create(cfg, MANDATE_RUNTIME_MIGRATE | MANDATE_RUNTIME_CREATE_KEYS, &rt,
                               &diag) != MANDATE_OK) {
        char *why = mandate_diag_join(&diag);
        rc = mandate_error_set(err, MANDATE_ERROR, "%s", why);
        free(why);
        unlink(conf_path); /* so that init can be run again once the cause is fixed */
    }
    mandate_runtime_unref(&rt);
    mandate_diag_free(&diag);
    if (rc == MANDATE_OK)
        *config_path_r = mandate_xstrdup(conf_path);
out:
    free(targets);
    free(resource);
    free(conf_text);
    free(conf_path);
    free(instances);
    free(kek);
    free(listen);
    free(plugin_dir);
    free(issuer);
    return rc;
}

/* Whether a folder holds nothing but . and .. */
static bool folder_is_empty(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return false;
    bool empty = true;
    struct dirent *e;
    while (empty && (e = readdir(d)) != NULL)
        empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    closedir(d);
    return empty;
}

mandate_rc mandate_state_init_config(const char *config_path, char **state_dir_r,
                                     bool *kek_created_r, mandate_error *err)
{
    *kek_created_r = false;
    mandate_diag diag = {0};
    mandate_config *cfg = NULL;
    if (!mandate_config_load(config_path, &cfg, &diag)) {
        char *why = mandate_diag_join(&diag);
        mandate_diag_free(&diag);
        mandate_rc rc = mandate_error_set(err, MANDATE_ERROR, "%s", why);
        free(why);
        return rc;
    }
    char *state_dir = mandate_xstrdup(cfg->state_dir);
    mandate_rc rc = MANDATE_OK;
    if (mkdir(state_dir, 0700) != 0 && errno != EEXIST)
        rc = mandate_error_set(err, MANDATE_ERROR, "state_dir %s: %s", state_dir, strerror(errno));
    const char *env_kek = getenv("MANDATE_KEK");
    bool kek_from_env = env_kek != NULL && env_kek[0] != '\0';
    if (rc == MANDATE_OK && !kek_from_env && access(cfg->kek_file, F_OK) != 0) {
        if (errno != ENOENT)
            rc = mandate_error_set(err, MANDATE_ERROR, "key-encryption key %s: %s",
                                   cfg->kek_file, strerror(errno));
        else if (!folder_is_empty(state_dir))
            rc = mandate_error_set(
                err, MANDATE_INVALID,
                "key-encryption key %s missing but %s holds data: restore the key (a new "
                "one would make the stored secrets and signing keys unusable)",
                cfg->kek_file, state_dir);
        else if ((rc = mandate_kek_create(cfg->kek_file, err)) == MANDATE_OK)
            *kek_created_r = true;
    }
    if (rc != MANDATE_OK) {
        mandate_config_free(&cfg);
        free(state_dir);
        return rc;
    }
    /* Load it exactly as the daemon will: the database, its schema and the
     * first signing key of each format instance. */
    mandate_runtime *rt = NULL;
    if (mandate_runtime_create(cfg, MANDATE_RUNTIME_MIGRATE | MANDATE_RUNTIME_CREATE_KEYS, &rt,
                               &diag) != MANDATE_OK) {
        char *why = mandate_diag_join(&diag);
        rc = mandate_error_set(err, MANDATE_ERROR, "%s", why);
        free(why);
    }
    mandate_runtime_unref(&rt);
    mandate_diag_free(&diag);
    if (rc == MANDATE_OK)
        *state_dir_r = state_dir;
    else
        free(state_dir);
    return rc;
}
