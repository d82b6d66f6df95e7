/* The core's side of the mandate_host table: one per plugin instance. */
#ifndef MANDATE_HOST_PRIVATE_H
#define MANDATE_HOST_PRIVATE_H

#include <stdbool.h>

#include <openssl/evp.h>

#include <mandate/plugin.h>

struct mandate_instance;

/* What the host tables of one runtime reach. The runtime fills it before
 * its instances start and keeps it for as long as they live: the host knows
 * these, not the runtime. */
typedef struct mandate_host_env {
    const char *state_dir;
    /* HMAC-SHA256 keyed with the client secret hash key, ready for
     * EVP_MAC_CTX_dup and update; NULL without a key-encryption key */
    const EVP_MAC_CTX *secret_hash;
    const struct mandate_instance *store; /* replay claims and token records */
    bool dry_run; /* replay claims succeed without being stored */
} mandate_host_env;

typedef struct mandate_core_host {
    mandate_host pub; /* first: plugins see only this part */
    const mandate_host_env *env;
} mandate_core_host;

void mandate_host_init(mandate_core_host *host, const char *instance,
                       const mandate_host_env *env);

#endif
