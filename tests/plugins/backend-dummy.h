/* The instance of tests/plugins/backend-dummy.c, which tests/test-loader.c
 * reads to see what the core filled in from the config and handed over. */
#ifndef MANDATE_TESTS_PLUGINS_BACKEND_DUMMY_H
#define MANDATE_TESTS_PLUGINS_BACKEND_DUMMY_H

#include <stdbool.h>
#include <stdint.h>

#include <mandate/plugin.h>

typedef struct dummy {
    char *label;
    int64_t count;
    bool enabled;
    char *file;
    char **tags;
    char *secret;
    char *mode_kind;
    const mandate_host *host;
} dummy;

#endif
