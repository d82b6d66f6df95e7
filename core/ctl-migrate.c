/* mandatectl migrate --from PLUGIN:SETTING --to PLUGIN:SETTING: moves a
 * deployment from one store to another (sqlite:PATH to pgsql:CONNINFO),
 * through the store ABI only: clients, signing keys (still wrapped under the
 * same key-encryption key), and the short-lived rows that must survive the
 * move: revocations, opaque token records, claimed assertion IDs. */
#include "config.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "audit-events-private.h"
#include "clock-private.h"
#include "ctl-private.h"
#include "plugins-private.h"
#include "pool-private.h"
#include "util-private.h"

/* The one setting a store is named by on the command line. */
static const char *store_setting(const char *plugin)
{
    if (strcmp(plugin, "sqlite") == 0)
        return "path";
    if (strcmp(plugin, "pgsql") == 0)
        return "conninfo";
    return NULL;
}

/* A runtime of the configuration whose store is "PLUGIN:VALUE". */
static mandate_runtime *open_store(const ctl *c, const char *spec, const char *which)
{
    const char *colon = strchr(spec, ':');
    char *plugin = colon ? mandate_xasprintf("%.*s", (int)(colon - spec), spec) : NULL;
    const char *key = plugin ? store_setting(plugin) : NULL;
    if (key == NULL) {
        fprintf(stderr, "mandatectl migrate: %s '%s': give sqlite:PATH or pgsql:CONNINFO\n",
                which, spec);
        free(plugin);
        return NULL;
    }
    mandate_diag diag = {0};
    mandate_config *cfg = NULL;
    mandate_runtime *rt = NULL;
    if (mandate_config_load(c->config_path, &cfg, &diag) &&
        mandate_config_replace_store(cfg, plugin, key, colon + 1, &diag)) {
        mandate_runtime_create(cfg, MANDATE_RUNTIME_MIGRATE, &rt, &diag);
        cfg = NULL; /* the runtime owns it, also on failure */
    }
    mandate_config_free(&cfg);
    for (size_t i = 0; i < diag.count; i++)
        fprintf(stderr, "mandatectl migrate: %s: %s\n", which, diag.lines[i]);
    mandate_diag_free(&diag);
    if (rt != NULL && !mandate_store_can_list(mandate_runtime_store(rt))) {
        fprintf(stderr, "mandatectl migrate: %s: the %s store cannot list its rows (it "
                        "predates store ABI 1.2)\n", which, plugin);
        mandate_runtime_unref(&rt);
    }
    free(plugin);
    return rt;
}

typedef struct copy {
    const mandate_instance *to;
    mandate_pool *pool;
    mandate_client *clients;
    size_t n_clients, cap_clients;
    size_t keys, revocations, tokens, replays;
    mandate_error err;
} copy;

static mandate_rc collect_client(void *ctx, const mandate_client *cl)
{
    copy *cp = ctx;
    if (cp->n_clients == cp->cap_clients) {
        cp->cap_clients = cp->cap_clients ? 2 * cp->cap_clients : 256;
        cp->clients = mandate_xrealloc(cp->clients, cp->cap_clients * sizeof(*cp->clients));
    }
    /* client_list hands out rows valid during the call: deep copies */
    mandate_client *d = &cp->clients[cp->n_clients++];
    *d = *cl;
    const char **strings[] = {&d->client_id, &d->tenant,       &d->name,
                              &d->scopes,    &d->default_scopes, &d->audiences,
                              &d->backend,   &d->token_format, &d->public_key,
                              &d->attributes};
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
        if (*strings[i] != NULL)
            *strings[i] = mandate_pool_strdup(cp->pool, *strings[i]);
    if (d->secret_hash != NULL)
        d->secret_hash = mandate_pool_memdup(cp->pool, d->secret_hash, d->secret_hash_len);
    if (d->prev_secret_hash != NULL)
        d->prev_secret_hash =
            mandate_pool_memdup(cp->pool, d->prev_secret_hash, d->prev_secret_hash_len);
    return MANDATE_OK;
}

/* rc, a copy's answer, and counts it when it is MANDATE_OK. */
static mandate_rc counted(mandate_rc rc, size_t *count)
{
    if (rc == MANDATE_OK)
        (*count)++;
    return rc;
}

static mandate_rc copy_key(void *ctx, const mandate_key *key)
{
    copy *cp = ctx;
    return counted(mandate_store_key_add(cp->to, key, &cp->err), &cp->keys);
}

static mandate_rc copy_revocation(void *ctx, const char *jti, const char *client_id,
                                  int64_t expires_at)
{
    copy *cp = ctx;
    return counted(mandate_store_revoke(cp->to, jti, client_id, expires_at, &cp->err),
                   &cp->revocations);
}

static mandate_rc copy_token(void *ctx, const mandate_token_record *record)
{
    copy *cp = ctx;
    return counted(mandate_store_token_put(cp->to, record, &cp->err), &cp->tokens);
}

static mandate_rc copy_replay(void *ctx, const char *ns, const char *id, int64_t expires_at)
{
    copy *cp = ctx;
    return counted(mandate_store_replay_claim(cp->to, ns, id, expires_at, &cp->err),
                   &cp->replays);
}

static mandate_rc count_one(void *ctx, const mandate_client *cl)
{
    (void)cl;
    (*(size_t *)ctx)++;
    return MANDATE_OK;
}

static mandate_rc count_key(void *ctx, const mandate_key *key)
{
    (void)key;
    (*(size_t *)ctx)++;
    return MANDATE_OK;
}

static int migrate(const ctl *c, mandate_runtime *from, mandate_runtime *to)
{
    const mandate_instance *src = mandate_runtime_store(from);
    const mandate_instance *dst = mandate_runtime_store(to);
    copy cp = {.to = dst, .pool = mandate_pool_new()};
    int64_t now = mandate_clock_now();

    /* never merge into a store in use: its clients or keys would mix */
    size_t there = 0, keys_there = 0;
    mandate_client_filter any = {.limit = 1};
    mandate_rc rc = mandate_store_client_list(dst, &any, count_one, &there, &cp.err);
    if (rc == MANDATE_OK)
        rc = mandate_store_key_list(dst, count_key, &keys_there, &cp.err);
    if (rc == MANDATE_OK && (there > 0 || keys_there > 0)) {
        fprintf(stderr, "mandatectl migrate: the destination already holds clients or keys; "
                        "migrate into an empty store\n");
        mandate_pool_free(&cp.pool);
        return CTL_REFUSED;
    }
    mandate_client_filter all = {0};
    if (rc == MANDATE_OK)
        rc = mandate_store_client_list(src, &all, collect_client, &cp, &cp.err);
    if (rc == MANDATE_OK && cp.n_clients > 0)
        rc = mandate_store_client_import(dst, cp.clients, cp.n_clients, &cp.err);
    if (rc == MANDATE_OK)
        rc = mandate_store_key_list(src, copy_key, &cp, &cp.err);
    if (rc == MANDATE_OK)
        rc = mandate_store_revocation_list(src, now, copy_revocation, &cp, &cp.err);
    if (rc == MANDATE_OK)
        rc = mandate_store_token_list(src, now, copy_token, &cp, &cp.err);
    if (rc == MANDATE_OK)
        rc = mandate_store_replay_list(src, now, copy_replay, &cp, &cp.err);
    int status = CTL_REFUSED;
    if (rc != MANDATE_OK) {
        fprintf(stderr, "mandatectl migrate: %s\n", cp.err.message[0] ? cp.err.message
                                                                      : mandate_rc_name(rc));
    } else if (ctl_audit("store.migrated",
                         json_pack("{s:I,s:I,s:I,s:I,s:I}", "clients", (json_int_t)cp.n_clients,
                                   "keys", (json_int_t)cp.keys, "revocations",
                                   (json_int_t)cp.revocations, "token_records",
                                   (json_int_t)cp.tokens, "replay_entries",
                                   (json_int_t)cp.replays))) {
        status = CTL_OK;
        if (c->json)
            ctl_print_json(json_pack("{s:I,s:I,s:I,s:I,s:I}", "clients",
                                     (json_int_t)cp.n_clients, "keys", (json_int_t)cp.keys,
                                     "revocations", (json_int_t)cp.revocations,
                                     "token_records", (json_int_t)cp.tokens, "replay_entries",
                                     (json_int_t)cp.replays));
        else
            printf("migrated %zu clients, %zu signing keys, %zu revocations, %zu token "
                   "records, %zu replay entries\n",
                   cp.n_clients, cp.keys, cp.revocations, cp.tokens, cp.replays);
    }
    free(cp.clients);
    mandate_pool_free(&cp.pool);
    return status;
}

int ctl_cmd_migrate(ctl *c, int argc, char **argv)
{
    const char *from_spec = NULL, *to_spec = NULL;
    const ctl_option opts[] = {CTL_VALUE("from", &from_spec), CTL_VALUE("to", &to_spec), {0}};
    if (!ctl_options(argc, argv, opts) ||
        !ctl_operands(argc, 0, from_spec != NULL && to_spec != NULL,
                      "Usage: mandatectl migrate --from sqlite:PATH --to pgsql:CONNINFO\n"))
        return CTL_USAGE;
    mandate_runtime *from = open_store(c, from_spec, "--from");
    mandate_runtime *to = from ? open_store(c, to_spec, "--to") : NULL;
    int status = CTL_REFUSED;
    mandate_error err = {0};
    if (to != NULL) {
        /* the trail of this configuration records the move, or nothing moves */
        const mandate_config *cfg = mandate_runtime_config(from);
        if (mandate_audit_events_start_deferred(cfg, &err) != MANDATE_OK)
            fprintf(stderr, "mandatectl migrate: audit trail %s: %s; nothing was moved\n",
                    cfg->audit_dir, err.message);
        else
            status = migrate(c, from, to);
    }
    mandate_runtime_unref(&to);
    mandate_runtime_unref(&from);
    return status;
}
