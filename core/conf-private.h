/* Schema-driven checking of libconfig settings: the same mandate_conf_def
 * tables serve the core's own file and every plugin's section. */
#ifndef MANDATE_CONF_PRIVATE_H
#define MANDATE_CONF_PRIVATE_H

#include <stdbool.h>
#include <libconfig.h>

#include <mandate/plugin.h>

/* A list of diagnostics, each "FILE:LINE: message". */
typedef struct mandate_diag {
    char **lines;
    size_t count;
} mandate_diag;

void mandate_diag_add(mandate_diag *diag, const char *fmt, ...) MANDATE_PRINTF(2, 3);
void mandate_diag_add_at(mandate_diag *diag, const config_setting_t *setting,
                         const char *fmt, ...) MANDATE_PRINTF(3, 4);
void mandate_diag_free(mandate_diag *diag);
/* All lines joined with "; ", or "" (a fresh string). */
char *mandate_diag_join(const mandate_diag *diag);

/* Member i of a list of groups; NULL when it is none, said in diag as
 * "each <what> must be a group { name = ...; ... }". */
config_setting_t *mandate_conf_list_group(const config_setting_t *list, int i, const char *what,
                                          mandate_diag *diag);

/* Parse a libconfig file; a syntax error becomes "FILE:LINE: message". */
bool mandate_conf_read_file(config_t *cfg, const char *path, mandate_diag *diag);

/* Check every setting under `group` against `defs` (unknown keys, types,
 * ranges, choices, required keys), and store the values and defaults into
 * `target`. Keys named in `reserved` (NULL-terminated) are left to the
 * caller. Relative MANDATE_CONF_PATH values are taken from path_base.
 * Returns false when anything was wrong; each problem is in diag. */
bool mandate_conf_apply(const config_setting_t *group, const char *file,
                        const mandate_conf_def *defs, const char *const *reserved,
                        const char *path_base, void *target, mandate_diag *diag);

/* Free the strings and lists that mandate_conf_apply stored in target. */
void mandate_conf_free_values(const mandate_conf_def *defs, void *target);

#endif
