/* libFuzzer harness: the gateway check's path (core/gateway-path.c).
 *
 * One input is the raw original URI, as a gateway forwards it (NUL bytes
 * included: the Envoy form reaches us undecoded). It is normalised, and a
 * path that passes must be in the one form targets are compared in:
 *   - it begins with '/' and is no longer than the path it came from;
 *   - it holds no "/./", "/../", "//", '%', '\' or ';', and ends neither
 *     in "/." nor in "/..";
 *   - the input had no NUL byte and no "%00" before its query: a NUL is
 *     always refused, never cut at;
 *   - normalising it again (when it is written with what a path may hold
 *     unencoded) gives it back unchanged;
 *   - the target chosen for it, if any, covers it, with and without
 *     letter case, and no longer target path covers it.
 * A refusal must say why. Bounds: inputs over 16 KiB are skipped (the
 * parser refuses paths over MANDATE_GATEWAY_PATH_MAX, 4 KiB, itself). */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config-private.h"
#include "fuzz-common.h"
#include "gateway-path-private.h"
#include "log-private.h"
#include "pool-private.h"

#define HARNESS_MAX_INPUT (16 * 1024)

/* The targets of issue 20, with a sub-tree, a trailing slash and the root. */
static char *mcp_paths[] = {"/mcp", NULL};
static char *public_paths[] = {"/mcp/public", NULL};
static char *admin_paths[] = {"/mcp/admin", "/admin/", NULL};
static char *reports_paths[] = {"/mcp/admin/reports", NULL};
static char *root_paths[] = {"/", NULL};
static mandate_target targets[] = {
    {.name = "mcp", .paths = mcp_paths},     {.name = "public", .paths = public_paths},
    {.name = "admin", .paths = admin_paths}, {.name = "reports", .paths = reports_paths},
    {.name = "root", .paths = root_paths},
};

static bool ends_with(const char *s, size_t len, const char *tail)
{
    size_t n = strlen(tail);
    return len >= n && memcmp(s + len - n, tail, n) == 0;
}

static void check_target(const mandate_config *cfg, const char *path)
{
    const mandate_target *t =
        mandate_gateway_path_target_for(cfg->targets, cfg->target_count, path, false);
    if (t == NULL)
        abort(); /* "/" covers every path */
    size_t best = 0;
    for (char **p = t->paths; *p != NULL; p++)
        if (mandate_gateway_path_covers(*p, path, false) && strlen(*p) > best)
            best = strlen(*p);
    if (best == 0)
        abort();
    for (size_t i = 0; i < cfg->target_count; i++)
        for (char **p = cfg->targets[i].paths; *p != NULL; p++) {
            bool covers = mandate_gateway_path_covers(*p, path, false);
            if (covers && strlen(*p) > best)
                abort(); /* a longer target path covers it */
            if (covers && !mandate_gateway_path_covers(*p, path, true))
                abort();
            if (covers && strncmp(*p, path, strlen(*p)) != 0)
                abort();
        }
}

/* a path refused for letter case is logged: errors only */
FUZZ_INITIALIZE_LOG_ERRORS("fuzz-gateway-path")

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > HARNESS_MAX_INPUT)
        return -1;
    mandate_config cfg = {.targets = targets,
                          .target_count = sizeof(targets) / sizeof(targets[0])};
    mandate_pool *pool = mandate_pool_new();

    /* exactly size bytes, so that ASan sees any read past them */
    char *raw = malloc(size ? size : 1);
    memcpy(raw, data, size);
    const char *q = memchr(raw, '?', size);
    size_t path_len = q ? (size_t)(q - raw) : size;

    char *path;
    const char *why = NULL;
    if (!mandate_gateway_path_normalise(pool, raw, size, &path, &why)) {
        if (why == NULL || why[0] == '\0' || path != NULL)
            abort(); /* a refusal always says why */
    } else {
        size_t n = strlen(path);
        if (path[0] != '/' || n > path_len)
            abort();
        if (memchr(raw, '\0', path_len) != NULL)
            abort();
        for (size_t i = 0; i + 3 <= path_len; i++)
            if (raw[i] == '%' && raw[i + 1] == '0' && raw[i + 2] == '0')
                abort();
        if (strstr(path, "/./") || strstr(path, "/../") || strstr(path, "//") ||
            strpbrk(path, "%\\;") || ends_with(path, n, "/.") || ends_with(path, n, "/.."))
            abort();
        static const char plain[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                    "0123456789-._~!$&'()*+,=:@/";
        char *again;
        if (strspn(path, plain) == n &&
            (!mandate_gateway_path_normalise(pool, path, n, &again, &why) ||
             strcmp(again, path) != 0))
            abort();
        check_target(&cfg, path);

        const mandate_target *t;
        char *path2;
        bool ok = mandate_gateway_path_target(pool, cfg.targets, cfg.target_count, raw, size,
                                              &t, &path2, &why);
        if (ok && (t != mandate_gateway_path_target_for(cfg.targets, cfg.target_count, path,
                                                        false) ||
                   strcmp(path2, path)))
            abort();
        if (!ok && (t != NULL ||
                    mandate_gateway_path_target_for(cfg.targets, cfg.target_count, path,
                                                    true) ==
                        mandate_gateway_path_target_for(cfg.targets, cfg.target_count, path,
                                                        false)))
            abort(); /* refused after normalising: only for letter case */
    }
    free(raw);
    mandate_pool_free(&pool);
    return 0;
}
