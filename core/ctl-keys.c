/* mandatectl keys: list and rotate the signing keys. */
#include "config.h"

#include <getopt.h>
#include <string.h>

#include "ctl-private.h"
#include "keys-private.h"
#include "pool-private.h"

static const char *key_status(const mandate_key *k)
{
    return k->status == MANDATE_KEY_ACTIVE ? "active" : "retired";
}

static json_t *key_json(const mandate_key *k)
{
    char t1[32], t2[32], t3[32];
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "kid", k->kid, "alg", k->alg, "format",
                     k->format, "status", key_status(k), "created",
                     ctl_time(k->created_at, t1), "retired", ctl_time(k->retired_at, t2),
                     "published_until", ctl_time(k->remove_after, t3));
}

static int keys_list(ctl *c, mandate_runtime *rt)
{
    mandate_pool *pool = mandate_pool_new();
    mandate_key *keys;
    size_t count;
    mandate_error err = {0};
    if (mandate_keys_list(rt, pool, &keys, &count, &err) != MANDATE_OK) {
        fprintf(stderr, "mandatectl keys list: %s\n", err.message);
        mandate_pool_free(&pool);
        return CTL_REFUSED;
    }
    if (c->json) {
        json_t *a = json_array();
        for (size_t i = 0; i < count; i++)
            json_array_append_new(a, key_json(&keys[i]));
        ctl_print_json(a);
    } else {
        printf("%-44s %-6s %-12s %-8s %-20s %s\n", "KID", "ALG", "FORMAT", "STATUS", "CREATED",
               "PUBLISHED UNTIL");
        for (size_t i = 0; i < count; i++) {
            char t1[32], t2[32];
            printf("%-44s %-6s %-12s %-8s %-20s %s\n", keys[i].kid, keys[i].alg,
                   keys[i].format, key_status(&keys[i]), ctl_time(keys[i].created_at, t1),
                   keys[i].status == MANDATE_KEY_ACTIVE ? "-"
                                                        : ctl_time(keys[i].remove_after, t2));
        }
    }
    mandate_pool_free(&pool);
    return CTL_OK;
}

static int keys_rotate(ctl *c, mandate_runtime *rt, int argc, char **argv)
{
    const char *alg = NULL, *format = NULL;
    const ctl_option opts[] = {CTL_VALUE("alg", &alg), CTL_VALUE("format", &format), {0}};
    if (!ctl_options(argc, argv, opts) ||
        !ctl_operands(argc, 0, true,
                      "Usage: mandatectl keys rotate [--alg ES256|RS256|EdDSA] [--format F]\n"))
        return CTL_USAGE;
    if (alg != NULL && strcmp(alg, "ES256") != 0 && strcmp(alg, "RS256") != 0 &&
        strcmp(alg, "EdDSA") != 0) {
        fprintf(stderr, "mandatectl keys rotate: --alg is ES256, RS256 or EdDSA\n");
        return CTL_USAGE;
    }
    mandate_pool *pool = mandate_pool_new();
    mandate_key key;
    mandate_error err = {0};
    int status = CTL_OK;
    if (mandate_keys_rotate(rt, format, alg, pool, &key, &err) != MANDATE_OK) {
        fprintf(stderr, "mandatectl keys rotate: %s\n", err.message);
        status = CTL_REFUSED;
    } else if (!ctl_audit("key.rotated", json_pack("{s:s,s:s,s:s}", "kid", key.kid, "alg", key.alg,
                                                   "format", key.format))) {
        status = CTL_REFUSED;
    } else if (c->json) {
        ctl_print_json(key_json(&key));
    } else {
        printf("new signing key %s (%s) for %s; running brokers switch to it within a second\n",
               key.kid, key.alg, key.format);
    }
    mandate_pool_free(&pool);
    return status;
}

int ctl_cmd_keys(ctl *c, int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "list") != 0 && strcmp(argv[1], "rotate") != 0)) {
        fprintf(stderr, "Usage: mandatectl keys list | keys rotate [--alg ALG] [--format F]\n");
        return CTL_USAGE;
    }
    if (strcmp(argv[1], "list") == 0 && argc != 2) {
        fprintf(stderr, "Usage: mandatectl keys list\n");
        return CTL_USAGE;
    }
    bool rotate = strcmp(argv[1], "rotate") == 0;
    mandate_runtime *rt = rotate ? ctl_runtime_for_change(c, MANDATE_RUNTIME_MIGRATE)
                                 : ctl_runtime(c, MANDATE_RUNTIME_MIGRATE);
    if (rt == NULL)
        return CTL_REFUSED;
    int status = strcmp(argv[1], "list") == 0 ? keys_list(c, rt)
                                              : keys_rotate(c, rt, argc - 1, argv + 1);
    mandate_runtime_unref(&rt);
    return status;
}
