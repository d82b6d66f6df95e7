/* The descriptor a well-formed test plugin exports, written once: each of
 * them has a conf table named conf, an instance type, an instantiate named
 * start and an ops table named ops. (The plugins that test the loader's
 * refusals write theirs out: being wrong is what they are for.) */
#ifndef MANDATE_TESTS_PLUGINS_TEST_PLUGIN_H
#define MANDATE_TESTS_PLUGINS_TEST_PLUGIN_H

#include <mandate/plugin.h>

/* Exports mandate_plugin_<name>, a plugin of kind called "<name>"; name is
 * expanded first, so that a macro may give it. */
#define TEST_PLUGIN(name, kind, version, flags, inst_type)                                      \
    TEST_PLUGIN_NAMED(name, kind, version, flags, inst_type)
#define TEST_PLUGIN_NAMED(name, kind_, version_, flags_, inst_type)                            \
    const mandate_plugin mandate_plugin_##name;                                                \
    const mandate_plugin mandate_plugin_##name = {                                             \
        MANDATE_PLUGIN_INIT(kind_, #name, version_),                                           \
        .flags = (flags_),                                                                     \
        .conf = conf,                                                                          \
        .inst_size = sizeof(inst_type),                                                        \
        .instantiate = start,                                                                  \
        .ops = &ops,                                                                           \
    }

#endif
