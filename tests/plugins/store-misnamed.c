/* Exports the right symbol for its file but declares another name. */
#include <mandate/store.h>

static mandate_rc start(void *inst, const mandate_host *host, mandate_error *err)
{
    (void)inst, (void)host, (void)err;
    return MANDATE_OK;
}

static const mandate_store_ops ops;

const mandate_plugin mandate_plugin_misnamed;
const mandate_plugin mandate_plugin_misnamed = {
    MANDATE_PLUGIN_INIT(MANDATE_STORE, "sqlite", "1.0"),
    .inst_size = 8,
    .instantiate = start,
    .ops = &ops,
};
