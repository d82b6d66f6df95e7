#include "config.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "clock-private.h"
#include "host-private.h"
#include "log-private.h"
#include "plugins-private.h"
#include "pool-private.h"

static void host_log(const mandate_host *host, mandate_log_level level, const char *file,
                     int line, const char *func, const char *fmt, ...) MANDATE_PRINTF(6, 7);

static void host_log(const mandate_host *host, mandate_log_level level, const char *file,
                     int line, const char *func, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mandate_log_vwrite(level, host->instance, file, line, func, fmt, ap);
    va_end(ap);
}

static char *host_pool_memdup(mandate_pool *pool, const void *p, size_t len)
{
    return mandate_pool_memdup(pool, p, len);
}

static int64_t host_now(const mandate_host *host)
{
    (void)host;
    return mandate_clock_now();
}

static mandate_rc host_random(void *buf, size_t len)
{
    if (len > INT32_MAX || RAND_bytes(buf, (int)len) != 1)
        return MANDATE_ERROR;
    return MANDATE_OK;
}

static void host_wipe(void *buf, size_t len)
{
    OPENSSL_cleanse(buf, len);
}

static mandate_rc host_keyed_hash(const mandate_host *host, const void *data, size_t len,
                                  unsigned char out[32], mandate_error *err)
{
    const mandate_core_host *h = (const mandate_core_host *)host;
    const EVP_MAC_CTX *keyed = h->env->secret_hash;
    if (keyed == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "no key-encryption key loaded");
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(keyed);
    size_t out_len = 0;
    bool ok = ctx != NULL && EVP_MAC_update(ctx, data, len) == 1 &&
              EVP_MAC_final(ctx, out, &out_len, 32) == 1 && out_len == 32;
    EVP_MAC_CTX_free(ctx);
    if (!ok)
        return mandate_error_set(err, MANDATE_ERROR, "HMAC-SHA256 failed");
    return MANDATE_OK;
}

static mandate_rc host_replay_claim(const mandate_host *host, const char *ns, const char *id,
                                    int64_t expires_at, mandate_error *err)
{
    const mandate_core_host *h = (const mandate_core_host *)host;
    if (h->env->dry_run)
        return MANDATE_OK;
    return mandate_store_replay_claim(h->env->store, ns, id, expires_at, err);
}

static mandate_rc host_token_record_put(const mandate_host *host,
                                        const struct mandate_token_record *record,
                                        mandate_error *err)
{
    const mandate_core_host *h = (const mandate_core_host *)host;
    return mandate_store_token_put(h->env->store, record, err);
}

static mandate_rc host_token_record_get(const mandate_host *host, mandate_pool *pool,
                                        const unsigned char *hash, size_t hash_len,
                                        struct mandate_token_record *record_r,
                                        mandate_error *err)
{
    const mandate_core_host *h = (const mandate_core_host *)host;
    return mandate_store_token_get(h->env->store, pool, hash, hash_len, mandate_clock_now(),
                                   record_r, err);
}

void mandate_host_init(mandate_core_host *host, const char *instance,
                       const mandate_host_env *env)
{
    *host = (mandate_core_host){
        .pub =
            {
                .abi_major = MANDATE_PLUGIN_ABI_MAJOR,
                .abi_minor = MANDATE_PLUGIN_ABI_MINOR,
                .instance = instance,
                .state_dir = env->state_dir,
                .log = host_log,
                .pool_alloc = mandate_pool_alloc,
                .pool_strdup = mandate_pool_strdup,
                .pool_memdup = host_pool_memdup,
                .now = host_now,
                .random = host_random,
                .wipe = host_wipe,
                .keyed_hash = host_keyed_hash,
                .replay_claim = host_replay_claim,
                .token_record_put = host_token_record_put,
                .token_record_get = host_token_record_get,
            },
        .env = env,
    };
}
