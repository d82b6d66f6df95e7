/* A format plugin as built for ABI 1.3, before the grant had prior_actors.
 * Its parse leaves something where prior_actors now lies (as an old
 * plugin's grant, smaller than the core's, leaves whatever was there): the
 * core must not take it for a chain of actors. */
#include <string.h>

#include <mandate/format.h>

typedef struct old_format {
    const mandate_host *host;
} old_format;

static mandate_rc start(void *inst, const mandate_host *host, mandate_error *err)
{
    (void)err;
    ((old_format *)inst)->host = host;
    return MANDATE_OK;
}

static mandate_rc mint(void *inst, mandate_pool *pool, const mandate_grant *grant,
                       char **token_r, mandate_error *err)
{
    (void)grant;
    *token_r = ((old_format *)inst)->host->pool_strdup(pool, "old_token");
    return *token_r != NULL ? MANDATE_OK : mandate_error_set(err, MANDATE_ERROR, "no memory");
}

static mandate_rc parse(void *inst, mandate_pool *pool, const char *token, size_t len,
                        mandate_grant *grant_r, mandate_error *err)
{
    (void)inst;
    (void)pool;
    if (len < 4 || memcmp(token, "old_", 4) != 0)
        return mandate_error_set(err, MANDATE_NEXT, "old: not mine");
    grant_r->issuer = "https://old.example";
    grant_r->subject = "agent-a";
    grant_r->client_id = "agent-c";
    grant_r->actor = "agent-c";
    grant_r->jti = "old-jti";
    grant_r->expires_at = INT64_MAX;
    grant_r->prior_actors = "not-an-actor";
    return MANDATE_OK;
}

static const mandate_format_ops ops = {.mint = mint, .parse = parse};

const mandate_plugin mandate_plugin_old;
const mandate_plugin mandate_plugin_old = {
    .magic = MANDATE_PLUGIN_MAGIC,
    .abi_major = MANDATE_PLUGIN_ABI_MAJOR,
    .abi_minor = 3,
    .kind = MANDATE_FORMAT,
    .name = "old",
    .version = "1.3.0",
    .inst_size = sizeof(old_format),
    .instantiate = start,
    .ops = &ops,
};
