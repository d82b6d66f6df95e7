#include "config.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>

#include "dpop.h"
#include "host-private.h"
#include "kek-private.h"
#include "keys-private.h"
#include "token-cache-private.h"
#include "log-private.h"
#include "runtime-private.h"
#include "util-private.h"

/* How many agents' DPoP proof keys a runtime keeps imported (lib/dpop.h):
 * the agents signing now, a few MB at most. */
#define DPOP_KEYS_KEPT 1024

struct mandate_runtime {
    mandate_config *config;
    mandate_instance *instances;
    size_t count;
    mandate_instance *store;
    bool have_kek;
    /* HMAC-SHA256 keyed once with the client secret hash key: a copy per
     * call costs half of keying afresh (an algorithm fetch and the pads) */
    EVP_MAC_CTX *secret_hash;
    unsigned char key_wrap_key[32];
    unsigned char signin_key[32]; /* CSRF tokens of the sign-in pages */
    struct mandate_keyring *keyring;
    struct mandate_token_cache *token_cache;
    struct mandate_dpop_keys *dpop_keys;
    mandate_host_env host_env; /* what the instances' hosts reach */
    atomic_int refs;
};

const mandate_config *mandate_runtime_config(const mandate_runtime *rt)
{
    return rt->config;
}

void mandate_runtime_use_port(mandate_runtime *rt, unsigned port)
{
    mandate_config_use_port(rt->config, port);
}

size_t mandate_runtime_instance_count(const mandate_runtime *rt)
{
    return rt->count;
}

const mandate_instance *mandate_runtime_instance(const mandate_runtime *rt, size_t i)
{
    return i < rt->count ? &rt->instances[i] : NULL;
}

const mandate_instance *mandate_runtime_store(const mandate_runtime *rt)
{
    return rt != NULL ? rt->store : NULL;
}

const unsigned char *mandate_runtime_key_wrap_key(const mandate_runtime *rt)
{
    return rt != NULL && rt->have_kek ? rt->key_wrap_key : NULL;
}

const unsigned char *mandate_runtime_signin_key(const mandate_runtime *rt)
{
    return rt != NULL && rt->have_kek ? rt->signin_key : NULL;
}

struct mandate_keyring *mandate_runtime_keyring(const mandate_runtime *rt)
{
    return rt->keyring;
}

struct mandate_token_cache *mandate_runtime_token_cache(const mandate_runtime *rt)
{
    return rt->token_cache;
}

struct mandate_dpop_keys *mandate_runtime_dpop_keys(const mandate_runtime *rt)
{
    return rt->dpop_keys;
}

const mandate_instance *mandate_runtime_find(const mandate_runtime *rt,
                                             mandate_plugin_kind kind, const char *name)
{
    const mandate_instance *by_plugin = NULL;
    size_t plugin_matches = 0;
    for (size_t i = 0; i < rt->count; i++) {
        const mandate_instance *in = &rt->instances[i];
        if (in->handle == NULL || in->handle->plugin->kind != kind)
            continue;
        if (strcmp(in->conf->name, name) == 0)
            return in;
        if (strcmp(in->conf->plugin, name) == 0) {
            by_plugin = in;
            plugin_matches++;
        }
    }
    return plugin_matches == 1 ? by_plugin : NULL;
}

static void instance_destroy(mandate_instance *in)
{
    if (in->handle == NULL)
        return;
    const mandate_plugin *p = in->handle->plugin;
    if (in->instantiated && p->destroy != NULL)
        p->destroy(in->inst);
    mandate_plugins_gate_close(in);
    free(in->host);
    in->host = NULL;
    if (in->inst != NULL) {
        mandate_conf_free_values(p->conf, in->inst);
        free(in->inst);
    }
    mandate_plugin_close(&in->handle);
    in->inst = NULL;
    in->instantiated = false;
}

static void runtime_destroy(mandate_runtime *rt)
{
    mandate_keyring_free(&rt->keyring);
    mandate_token_cache_free(&rt->token_cache);
    mandate_dpop_keys_free(&rt->dpop_keys);
    for (size_t i = rt->count; i-- > 0;)
        instance_destroy(&rt->instances[i]);
    free(rt->instances);
    mandate_config_free(&rt->config);
    EVP_MAC_CTX_free(rt->secret_hash); /* OpenSSL cleanses the key state */
    OPENSSL_cleanse(rt->key_wrap_key, sizeof(rt->key_wrap_key));
    OPENSSL_cleanse(rt->signin_key, sizeof(rt->signin_key));
    free(rt);
}

/* Open the plugin of one instance and check its keys into a new instance
 * struct. */
static bool instance_load(mandate_runtime *rt, mandate_instance *in, mandate_diag *diag)
{
    const mandate_instance_conf *ic = in->conf;
    mandate_error err = {0};
    if (mandate_plugin_open(rt->config->plugin_dir, ic->kind, ic->plugin, &in->handle, &err) !=
        MANDATE_OK) {
        mandate_diag_add(diag, "instance '%s' (%s): %s", ic->name, ic->file, err.message);
        return false;
    }
    const mandate_plugin *p = in->handle->plugin;
    in->inst = mandate_xcalloc(1, p->inst_size ? p->inst_size : 1);
    return mandate_conf_apply(config_root_setting(&ic->cfg), ic->file, p->conf,
                              mandate_config_instance_reserved(), rt->config->state_dir,
                              in->inst, diag);
}

static bool instance_start(mandate_runtime *rt, mandate_instance *in, mandate_diag *diag)
{
    const mandate_plugin *p = in->handle->plugin;
    in->host = mandate_xcalloc(1, sizeof(*in->host));
    mandate_host_init(in->host, in->conf->name, &rt->host_env);
    mandate_plugins_gate_open(in, mandate_config_workers(rt->config));
    mandate_error err = {0};
    mandate_rc rc = p->instantiate(in->inst, &in->host->pub, &err);
    if (rc != MANDATE_OK) {
        mandate_diag_add(diag, "instance '%s': plugin '%s' (%s) failed to start: %s",
                         in->conf->name, p->name, in->handle->file,
                         err.message[0] ? err.message : mandate_rc_name(rc));
        return false;
    }
    in->instantiated = true;
    return true;
}

static EVP_MAC_CTX *hmac_sha256_keyed(const unsigned char key[32])
{
    EVP_MAC *hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = hmac != NULL ? EVP_MAC_CTX_new(hmac) : NULL;
    EVP_MAC_free(hmac); /* the context holds its own reference */
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    if (ctx == NULL || EVP_MAC_init(ctx, key, 32, params) != 1) {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static bool load_kek(mandate_runtime *rt, mandate_diag *diag)
{
    unsigned char kek[MANDATE_KEK_LEN], hash_key[32];
    mandate_error err = {0};
    mandate_rc rc = mandate_kek_load(rt->config->kek_file, kek, &err);
    if (rc == MANDATE_OK)
        rc = mandate_kek_derive(kek, "mandate client secret hash v1", hash_key, &err);
    if (rc == MANDATE_OK)
        rc = mandate_kek_derive(kek, "mandate signing key wrap v1", rt->key_wrap_key, &err);
    if (rc == MANDATE_OK)
        rc = mandate_kek_derive(kek, "mandate sign-in v1", rt->signin_key, &err);
    if (rc == MANDATE_OK && (rt->secret_hash = hmac_sha256_keyed(hash_key)) == NULL)
        rc = mandate_error_set(&err, MANDATE_ERROR, "cannot prepare HMAC-SHA256");
    OPENSSL_cleanse(kek, sizeof(kek));
    OPENSSL_cleanse(hash_key, sizeof(hash_key));
    if (rc != MANDATE_OK) {
        mandate_diag_add(diag, "%s", err.message);
        return false;
    }
    rt->have_kek = true;
    rt->host_env.secret_hash = rt->secret_hash;
    return true;
}

mandate_rc mandate_runtime_create(mandate_config *config, unsigned flags,
                                  mandate_runtime **rt_r, mandate_diag *diag)
{
    mandate_runtime *rt = mandate_xcalloc(1, sizeof(*rt));
    atomic_init(&rt->refs, 1);
    rt->config = config;
    rt->host_env.state_dir = config->state_dir;
    rt->host_env.dry_run = (flags & MANDATE_RUNTIME_DRY_RUN) != 0;
    rt->count = config->instance_count;
    rt->instances = mandate_xcalloc(rt->count ? rt->count : 1, sizeof(mandate_instance));

    bool ok = true;
    size_t stores = 0;
    for (size_t i = 0; i < rt->count; i++) {
        mandate_instance *in = &rt->instances[i];
        in->conf = &config->instances[i];
        if (!instance_load(rt, in, diag))
            ok = false;
        if (strcmp(in->conf->kind, "store") == 0 && stores++ == 0)
            rt->store = in;
    }
    rt->host_env.store = rt->store;
    size_t formats = 0;
    for (size_t i = 0; i < rt->count; i++)
        if (strcmp(rt->instances[i].conf->kind, "format") == 0)
            formats++;
    if (ok && formats > 0 && mandate_runtime_find(rt, MANDATE_FORMAT, config->token_format) == NULL) {
        mandate_diag_add(diag,
                         "%s: tokens.format = \"%s\" names no enabled format instance (by "
                         "instance name, or plugin name when only one instance has that plugin)",
                         config->path, config->token_format);
        ok = false;
    }
    if (stores != 1) {
        mandate_diag_add(diag,
                         "%s: %zu store instances are enabled; exactly one must be "
                         "(e.g. store-sqlite.conf with kind = \"store\"; plugin = \"sqlite\";)",
                         config->instances_dir, stores);
        ok = false;
    }
    if (ok && !(flags & MANDATE_RUNTIME_CHECK_ONLY)) {
        ok = load_kek(rt, diag) && instance_start(rt, rt->store, diag);
        if (ok && (flags & MANDATE_RUNTIME_MIGRATE)) {
            mandate_error err = {0};
            if (mandate_store_migrate(rt->store, &err) != MANDATE_OK) {
                mandate_diag_add(diag, "instance '%s': schema migration failed: %s",
                                 rt->store->conf->name, err.message);
                ok = false;
            }
        }
        for (size_t i = 0; ok && i < rt->count; i++)
            if (&rt->instances[i] != rt->store)
                ok = instance_start(rt, &rt->instances[i], diag);
        if (ok) {
            /* formats get their keys before the runtime serves anything */
            mandate_error err = {0};
            rt->keyring = mandate_keyring_new();
            if (rt->config->token_check_cache > 0)
                rt->token_cache =
                    mandate_token_cache_new((size_t)rt->config->token_check_cache);
            rt->dpop_keys = mandate_dpop_keys_new(DPOP_KEYS_KEPT);
            mandate_rc rc = MANDATE_OK;
            if (flags & MANDATE_RUNTIME_CREATE_KEYS)
                rc = mandate_keys_ensure(rt, &err);
            if (rc == MANDATE_OK)
                rc = mandate_keyring_sync(rt, true, &err);
            if (rc != MANDATE_OK) {
                mandate_diag_add(diag, "signing keys: %s", err.message);
                ok = false;
            }
        }
    }
    if (!ok) {
        runtime_destroy(rt);
        return MANDATE_ERROR;
    }
    *rt_r = rt;
    return MANDATE_OK;
}

mandate_runtime *mandate_runtime_ref(mandate_runtime *rt)
{
    atomic_fetch_add_explicit(&rt->refs, 1, memory_order_relaxed);
    return rt;
}

void mandate_runtime_unref(mandate_runtime **rtp)
{
    mandate_runtime *rt = *rtp;
    *rtp = NULL;
    if (rt != NULL && atomic_fetch_sub_explicit(&rt->refs, 1, memory_order_acq_rel) == 1)
        runtime_destroy(rt);
}
