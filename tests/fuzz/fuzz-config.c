/* libFuzzer harness: the libconfig config loader with our checks
 * (core/config.c mandate_config_load, core/conf.c mandate_conf_apply,
 * core/mapping.c's rules as read from mandate.conf).
 *
 * Input: up to two parts split at FUZZ_SEP ("\n\f\n"):
 *   0  mandate.conf, written to a temporary folder made once;
 *   1  when present, mandate.d/fuzz.conf: an instance file next to the fixed
 *      store-sqlite.conf and format-jwt.conf the folder always holds.
 * The file is loaded, and on success every instance's settings are applied
 * to a plugin-like table with every type (string with choices, int with a
 * range, bool, path, list, required, secret, deprecated) as the runtime does
 * with a plugin's table; then all is freed. Diagnostics go nowhere.
 * Bounds: 64 KiB. Inputs naming @include are skipped: libconfig would read
 * any file the input names (config files are the operator's, not an
 * attacker's, and the fuzzer must not wander the file system). */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf-private.h"
#include "config-private.h"
#include "fuzz-common.h"
#include "log-private.h"

#define HARNESS_MAX_INPUT (64 * 1024)

FUZZ_SUPPRESS_LIBCONFIG_LEAK

static char dir[256], conf_path[300], inst_path[320];

struct plugin_like {
    char *name;
    int64_t count;
    bool enabled;
    char *file;
    char **list;
    char *secret;
    char *mode;
    char *old;
};

#define OFF(f) offsetof(struct plugin_like, f)
static const mandate_conf_def plugin_defs[] = {
    {"name", MANDATE_CONF_STRING, MANDATE_CONF_REQUIRED, OFF(name), NULL, 0, 0, NULL, NULL},
    {"count", MANDATE_CONF_INT, 0, OFF(count), "5", -10, 1000, NULL, NULL},
    {"enabled", MANDATE_CONF_BOOL, 0, OFF(enabled), "true", 0, 0, NULL, NULL},
    {"file", MANDATE_CONF_PATH, 0, OFF(file), "x.db", 0, 0, NULL, NULL},
    {"list", MANDATE_CONF_STRING_LIST, 0, OFF(list), "a b,c", 0, 0, NULL, NULL},
    {"secret", MANDATE_CONF_STRING, MANDATE_CONF_SECRET, OFF(secret), NULL, 0, 0, NULL, NULL},
    {"mode", MANDATE_CONF_STRING, 0, OFF(mode), "fast", 0, 0, "fast|safe|off", NULL},
    {"nested.old", MANDATE_CONF_STRING, MANDATE_CONF_DEPRECATED, OFF(old), NULL, 0, 0, NULL,
     NULL},
    MANDATE_CONF_END};

static bool has_include(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i + 8 <= size; i++)
        if (data[i] == '@' && strncasecmp((const char *)data + i + 1, "include", 7) == 0)
            return true;
    return false;
}

static void remove_dir(void)
{
    char p[340];
    unlink(conf_path);
    unlink(inst_path);
    snprintf(p, sizeof(p), "%s/mandate.d/store-sqlite.conf", dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/mandate.d/format-jwt.conf", dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/mandate.d", dir);
    rmdir(p);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_mkdtemp(dir, sizeof(dir), "fuzz-config");
    char d[300];
    snprintf(d, sizeof(d), "%s/mandate.d", dir);
    if (mkdir(d, 0700) != 0)
        abort();
    char p[340];
    static const char sqlite_conf[] =
        "kind = \"store\";\nplugin = \"sqlite\";\npath = \"m.db\";\n";
    static const char jwt_conf[] =
        "kind = \"format\";\nplugin = \"jwt\";\nalgorithm = \"ES256\";\n";
    snprintf(p, sizeof(p), "%s/store-sqlite.conf", d);
    fuzz_write_file(p, sqlite_conf, sizeof(sqlite_conf) - 1);
    snprintf(p, sizeof(p), "%s/format-jwt.conf", d);
    fuzz_write_file(p, jwt_conf, sizeof(jwt_conf) - 1);
    snprintf(conf_path, sizeof(conf_path), "%s/mandate.conf", dir);
    snprintf(inst_path, sizeof(inst_path), "%s/fuzz.conf", d);
    atexit(remove_dir);
    /* deprecation warnings would flood the output: errors only */
    mandate_log_setup("stderr", MANDATE_LOG_ERROR, "fuzz-config");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > HARNESS_MAX_INPUT || has_include(data, size))
        return -1;
    fuzz_part parts[2];
    size_t n = fuzz_split(data, size, parts, 2);
    fuzz_write_file(conf_path, parts[0].data, parts[0].len);
    if (n > 1)
        fuzz_write_file(inst_path, parts[1].data, parts[1].len);
    else
        unlink(inst_path);

    mandate_config *cfg = NULL;
    mandate_diag diag = {0};
    bool loaded = mandate_config_load(conf_path, &cfg, &diag);
    if (fuzz_debug()) {
        char *all = mandate_diag_join(&diag);
        fprintf(stderr, "config: %s: %s\n", loaded ? "loaded" : "refused", all);
        free(all);
    }
    if (loaded) {
        if (cfg == NULL || cfg->listen == NULL)
            abort();
        for (size_t i = 0; i < cfg->instance_count; i++) {
            struct plugin_like pl = {0};
            static const char *const reserved[] = {"kind", "plugin", NULL};
            (void)mandate_conf_apply(config_root_setting(&cfg->instances[i].cfg),
                                     cfg->instances[i].file, plugin_defs, reserved, dir, &pl,
                                     &diag);
            mandate_conf_free_values(plugin_defs, &pl);
        }
        (void)mandate_gateway_path_target_for(cfg->targets, cfg->target_count, "/mcp/tools",
                                              false);
        (void)mandate_gateway_path_target_for(cfg->targets, cfg->target_count, "/MCP/Tools/",
                                              true);
        mandate_config_free(&cfg);
    } else if (diag.count == 0) {
        abort(); /* a refusal always says why */
    }
    mandate_diag_free(&diag);
    return 0;
}
