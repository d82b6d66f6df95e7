/* A working backend with one key of each type: it exercises the config
 * parser through the real loader, and records that the host reached it. */
#include <string.h>

#include <mandate/backend.h>

#include "backend-dummy.h"

static const mandate_conf_def conf[] = {
    {"label", MANDATE_CONF_STRING, MANDATE_CONF_REQUIRED, offsetof(dummy, label), NULL, 0, 0,
     NULL, NULL},
    {"count", MANDATE_CONF_INT, 0, offsetof(dummy, count), "3", 1, 10, NULL, NULL},
    {"enabled", MANDATE_CONF_BOOL, 0, offsetof(dummy, enabled), "true", 0, 0, NULL, NULL},
    {"file", MANDATE_CONF_PATH, 0, offsetof(dummy, file), "dummy.dat", 0, 0, NULL, NULL},
    {"tags", MANDATE_CONF_STRING_LIST, 0, offsetof(dummy, tags), "a b", 0, 0, NULL, NULL},
    {"secret", MANDATE_CONF_STRING, MANDATE_CONF_SECRET, offsetof(dummy, secret), NULL, 0, 0,
     NULL, NULL},
    {"mode.kind", MANDATE_CONF_STRING, 0, offsetof(dummy, mode_kind), NULL, 0, 0,
     "fast|slow", NULL},
    MANDATE_CONF_END};

static mandate_rc start(void *inst, const mandate_host *host, mandate_error *err)
{
    dummy *d = inst;
    d->host = host;
    if (host->abi_major != MANDATE_PLUGIN_ABI_MAJOR)
        return mandate_error_set(err, MANDATE_ERROR, "host ABI %u", host->abi_major);
    mandate_log_info(host, "dummy backend '%s' started with count %lld", d->label,
                     (long long)d->count);
    return MANDATE_OK;
}

static const mandate_backend_ops ops = {0};

MANDATE_PLUGIN(dummy, MANDATE_BACKEND, "1.2.3", 0, dummy, conf, start, NULL, &ops);
