/* The core's side of the mandate_host table: one per plugin instance. */
#ifndef MANDATE_HOST_PRIVATE_H
#define MANDATE_HOST_PRIVATE_H

#include <mandate/plugin.h>

struct mandate_runtime;

typedef struct mandate_core_host {
    mandate_host pub; /* first: plugins see only this part */
    struct mandate_runtime *runtime;
} mandate_core_host;

void mandate_host_init(mandate_core_host *host, const char *instance,
                       const char *state_dir, struct mandate_runtime *runtime);

#endif
