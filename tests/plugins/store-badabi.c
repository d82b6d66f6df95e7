/* A store plugin built for a future ABI major: the loader must refuse it. */
#include <mandate/store.h>

static mandate_rc never(void *inst, const mandate_host *host, mandate_error *err)
{
    (void)inst, (void)host;
    /* if the loader called this, the ABI check came too late */
    return mandate_error_set(err, MANDATE_ERROR, "instantiate of a wrong-ABI plugin ran");
}

static const mandate_store_ops ops;

const mandate_plugin mandate_plugin_badabi;
const mandate_plugin mandate_plugin_badabi = {
    .magic = MANDATE_PLUGIN_MAGIC,
    .abi_major = MANDATE_PLUGIN_ABI_MAJOR + 1,
    .abi_minor = 0,
    .kind = MANDATE_STORE,
    .name = "badabi",
    .version = "9.9",
    .inst_size = 8,
    .instantiate = never,
    .ops = &ops,
};
