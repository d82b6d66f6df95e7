/* Loading plugins with libltdl. Every check on the descriptor (magic, ABI,
 * kind, name) happens before any plugin code is called. */
#ifndef MANDATE_PLUGIN_LOADER_PRIVATE_H
#define MANDATE_PLUGIN_LOADER_PRIVATE_H

#include <mandate/plugin.h>

typedef struct mandate_plugin_handle {
    void *dl; /* lt_dlhandle */
    const mandate_plugin *plugin;
    char *file;
} mandate_plugin_handle;

const char *mandate_plugin_kind_name(mandate_plugin_kind kind);
bool mandate_plugin_kind_parse(const char *name, mandate_plugin_kind *kind_r);

/* Load <dir>/<kind>-<name>.so and check its descriptor. */
mandate_rc mandate_plugin_open(const char *dir, const char *kind, const char *name,
                               mandate_plugin_handle **handle_r, mandate_error *err);
/* Load a file named <kind>-<name>.so. */
mandate_rc mandate_plugin_open_file(const char *path, mandate_plugin_handle **handle_r,
                                    mandate_error *err);
void mandate_plugin_close(mandate_plugin_handle **handle);

/* Call each() for every *.so in dir, sorted, with the loaded handle or the
 * reason it was refused (handle NULL). */
typedef void (*mandate_plugin_scan_cb)(void *ctx, const char *file,
                                       const mandate_plugin_handle *handle,
                                       const mandate_error *err);
mandate_rc mandate_plugin_scan(const char *dir, mandate_plugin_scan_cb each, void *ctx,
                               mandate_error *err);

#endif
