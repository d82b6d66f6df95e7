/* mandatectl init: a ready-to-run state directory. */
#ifndef MANDATE_STATE_INIT_PRIVATE_H
#define MANDATE_STATE_INIT_PRIVATE_H

#include <stdbool.h>

#include <mandate/plugin.h>

typedef struct mandate_init_options {
    const char *dir;
    const char *listen;     /* NULL: 127.0.0.1:8080 */
    const char *issuer;     /* NULL: derived from listen */
    const char *plugin_dir; /* NULL: the installed plugins */
    /* the aud of tokens for clients with no audience; NULL: the MarketPulse
     * example's calendar, MANDATE_INIT_EXAMPLE_RESOURCE */
    const char *default_resource;
    bool no_example; /* no MarketPulse gateway target (the commented example stays) */
} mandate_init_options;

/* The MarketPulse example's market calendar (examples/marketpulse): the
 * resource a fresh state protects, and its gateway's metadata URL. */
#define MANDATE_INIT_EXAMPLE_RESOURCE "https://mcp.example/market-calendar"
#define MANDATE_INIT_EXAMPLE_METADATA "http://127.0.0.1:9000/.well-known/oauth-protected-resource"

/* Creates DIR (if needed), DIR/mandate.conf, DIR/mandate.d/store-sqlite.conf,
 * DIR/kek (mode 0600) and the migrated database. Refuses a DIR that already
 * holds a mandate.conf. On success *config_path_r is DIR/mandate.conf. */
mandate_rc mandate_state_init(const mandate_init_options *opts, char **config_path_r,
                              mandate_error *err);

/* The state of an existing configuration (a packaged /etc/mandate/mandate.conf
 * whose state_dir is /var/lib/mandate): creates state_dir (mode 0700) if
 * needed, the key-encryption key if there is none, and the database with its
 * schema and first signing keys. What exists is kept, so it can run again.
 * A missing key in a state_dir that holds anything is refused: a new key
 * would make the secrets and signing keys already stored unusable.
 * *state_dir_r is the configured state_dir; *kek_created_r says whether a new
 * key was written. */
mandate_rc mandate_state_init_config(const char *config_path, char **state_dir_r,
                                     bool *kek_created_r, mandate_error *err);

#endif
