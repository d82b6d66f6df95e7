/* A runtime is one loaded configuration: the config, its plugin instances
 * and the keys derived for them. A reload builds a new runtime beside the
 * running one and swaps; requests hold a reference to the runtime they
 * started with, so the old one is destroyed only when its last request
 * ends. */
#ifndef MANDATE_RUNTIME_PRIVATE_H
#define MANDATE_RUNTIME_PRIVATE_H

#include "config-private.h"
#include "plugins-private.h"

typedef struct mandate_runtime mandate_runtime;

enum {
    /* Load plugins and check their keys; instantiate nothing, read no key. */
    MANDATE_RUNTIME_CHECK_ONLY = 0x1,
    /* Bring the store's schema up to date at start. */
    MANDATE_RUNTIME_MIGRATE = 0x2,
    /* Give every format that signs a first key if it has none (the daemon
     * and init; never a read-only command). */
    MANDATE_RUNTIME_CREATE_KEYS = 0x4,
    /* Claim nothing for good: replay claims succeed without being stored
     * (mandatectl mapping test must not burn the assertion it looks at). */
    MANDATE_RUNTIME_DRY_RUN = 0x8,
};

/* No token lives longer; retired keys stay published this long. */
#define MANDATE_TOKEN_MAX_LIFETIME 86400

/* Takes ownership of config, also on failure. Each problem is one line in
 * diag naming the instance, the plugin, its file and the reason. */
mandate_rc mandate_runtime_create(mandate_config *config, unsigned flags,
                                  mandate_runtime **runtime_r, mandate_diag *diag);
mandate_runtime *mandate_runtime_ref(mandate_runtime *runtime);
/* Drops a reference; the last one destroys the instances (newest first). */
void mandate_runtime_unref(mandate_runtime **runtime);

const mandate_config *mandate_runtime_config(const mandate_runtime *runtime);
/* See mandate_config_use_port; before the runtime serves. */
void mandate_runtime_use_port(mandate_runtime *runtime, unsigned port);
size_t mandate_runtime_instance_count(const mandate_runtime *runtime);
const mandate_instance *mandate_runtime_instance(const mandate_runtime *runtime, size_t i);
/* The store instance, to hand to the mandate_store_* calls
 * (plugins-private.h); NULL for a NULL runtime. */
const mandate_instance *mandate_runtime_store(const mandate_runtime *runtime);
/* The key that wraps signing keys; NULL when no key-encryption key was
 * loaded (CHECK_ONLY). */
const unsigned char *mandate_runtime_key_wrap_key(const mandate_runtime *runtime);
/* The 32-byte key of the sign-in pages' CSRF tokens, derived from the KEK;
 * NULL without one. */
const unsigned char *mandate_runtime_signin_key(const mandate_runtime *runtime);

/* An instance of a kind by its instance name ("format-jwt"), else the one
 * instance of that kind whose plugin has that name ("jwt"); NULL if none or
 * ambiguous. */
const mandate_instance *mandate_runtime_find(const mandate_runtime *runtime,
                                             mandate_plugin_kind kind, const char *name);
/* The keys this runtime signs with and publishes (core/keys.c). */
struct mandate_keyring *mandate_runtime_keyring(const mandate_runtime *runtime);
/* Tokens already read and checked (core/token-cache.c); NULL in CHECK_ONLY. */
struct mandate_token_cache *mandate_runtime_token_cache(const mandate_runtime *runtime);
/* The public keys of DPoP proofs already checked (lib/dpop.h); NULL when it
 * could not be made (each proof's key is imported then). */
struct mandate_dpop_keys *mandate_runtime_dpop_keys(const mandate_runtime *runtime);

#endif
