/* A well-formed store whose instantiate fails, with a reason. */
#include <mandate/store.h>


typedef struct failing {
    char *reason;
} failing;

static const mandate_conf_def conf[] = {
    {"reason", MANDATE_CONF_STRING, 0, offsetof(failing, reason), "disk on fire", 0, 0, NULL,
     NULL},
    MANDATE_CONF_END};

static mandate_rc start(void *inst, const mandate_host *host, mandate_error *err)
{
    (void)host;
    failing *f = inst;
    return mandate_error_set(err, MANDATE_ERROR, "cannot start: %s", f->reason);
}

static const mandate_store_ops ops;

MANDATE_PLUGIN(failing, MANDATE_STORE, "1.0", 0, failing, conf, start, NULL, &ops);
