/* A descriptor with the right symbol name but no magic number. */
#include <mandate/store.h>

static const mandate_store_ops ops;

const mandate_plugin mandate_plugin_badmagic;
const mandate_plugin mandate_plugin_badmagic = {
    .magic = 0xdeadbeefu,
    .abi_major = MANDATE_PLUGIN_ABI_MAJOR,
    .kind = MANDATE_STORE,
    .name = "badmagic",
    .version = "1.0",
    .ops = &ops,
};
