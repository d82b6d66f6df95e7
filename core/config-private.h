/* The core's configuration: mandate.conf plus one file per plugin instance
 * in the instances folder (mandate.d), each read on its own so that every
 * instance keeps its own namespace and errors name the right file. */
#ifndef MANDATE_CONFIG_PRIVATE_H
#define MANDATE_CONFIG_PRIVATE_H

#include <libconfig.h>

#include "conf-private.h"
#include "delegation-private.h"
#include "signin-config-private.h"
#include "gateway-path-private.h"
#include "mapping-private.h"

typedef struct mandate_instance_conf {
    char *name;   /* the file's name without .conf */
    char *file;
    char *kind;   /* "backend", "format", "store" */
    char *plugin;
    config_t cfg; /* kept: the plugin's own keys are checked once it is loaded */
} mandate_instance_conf;

/* How clients that are not pre-registered identify themselves (issue 22):
 * Client ID Metadata Documents (core/client-documents.c) and RFC 7591
 * dynamic registration (core/endpoint-register.c). Lists left NULL (not
 * configured) mean "what the targets give": their scopes, their
 * audiences. */
typedef struct mandate_client_documents_conf {
    bool enabled;
    char *ca_file; /* NULL: the system's trust store */
    int64_t connect_timeout_ms, timeout_ms;
    int64_t max_bytes;
    int64_t min_cache, max_cache, max_stale; /* seconds */
    bool allow_private_addresses;
    char **allow_hosts, **deny_hosts; /* "host" or "*.example.com"; NULL: none */
    char *tenant;
    char **scopes, **audiences;
} mandate_client_documents_conf;

typedef struct mandate_registration_conf {
    char *mode; /* "off", "token" (an initial access token), "open" */
    char *tenant;
    char **scopes, **audiences;
    int64_t rate; /* registrations per hour from one address; 0: no limit */
} mandate_registration_conf;

typedef struct mandate_dpop_conf {
    char **algorithms; /* NULL-terminated; NULL: ES256, EdDSA and RS256 */
    int64_t max_age, max_future;
    bool nonce; /* RFC 9449 §8: proofs must carry a nonce of ours */
} mandate_dpop_conf;

/* Pushed authorization requests (RFC 9126) and the FAPI 2.0-style profile
 * for regulated tenants (core/profile-private.h). */
typedef struct mandate_par_conf {
    int64_t lifetime; /* seconds a request_uri lives (single use) */
    bool required;    /* every authorization request comes through /oauth2/par */
} mandate_par_conf;

typedef struct mandate_config {
    char *path;
    char *dir; /* relative paths in mandate.conf are taken from here */

    char *listen;
    char *issuer;
    bool issuer_derived; /* not configured: made from listen */
    int64_t threads; /* 0: one per core */
    int64_t body_limit;
    int64_t connection_timeout;
    int64_t connection_limit;
    int64_t connections_per_address; /* 0: no cap */
    int64_t request_timeout;
    char **trusted_proxies; /* NULL-terminated address blocks; NULL: none */
    int64_t drain_timeout;
    bool cors;            /* CORS answers at the endpoints browser clients call */
    char **cors_origins;  /* NULL-terminated; NULL: any origin */
    char *tls_certificate;
    char *tls_key;
    char *tls_client_ca;             /* RFC 8705 trust anchors; NULL: none */
    char *client_certificate_header; /* from trusted proxies only; NULL: none */
    /* the proxies whose client_certificate_header is believed; NULL: the
     * trusted_proxies (configurations before the setting) */
    char **client_certificate_proxies;
    char *mtls_base_url;             /* mtls_endpoint_aliases; NULL: the issuer's */

    char *state_dir;
    char *kek_file;
    char *plugin_dir;
    char *instances_dir;

    char *log_destination;
    char *log_level;

    char *token_format;
    int64_t token_lifetime;
    char *default_resource; /* aud of clients with no audience; NULL: none */
    int64_t token_check_cache; /* slots; 0: no cache */

    char *audit_dir;
    char *audit_fsync; /* always|batch|off */
    int64_t audit_rotate_bytes;
    bool audit_rotate_daily;
    bool audit_seal; /* checkpoints signed with a key derived from the KEK */
    int64_t audit_checkpoint_records;
    int64_t audit_checkpoint_seconds;
    char *audit_checkpoint_syslog; /* a facility, or "off" */
    char *audit_checkpoint_file;   /* NULL: none */
    char *audit_verify_key;        /* PEM public keys for audit verify; NULL: none */

    int64_t rate_token, rate_token_burst;     /* per second; 0: no limit */
    int64_t rate_gateway, rate_gateway_burst;
    int64_t rate_buckets;
    int64_t rate_refusals, rate_refusals_burst; /* per peer address; 0: no budget */

    bool metrics_enabled;

    char **id_jag_audiences; /* NULL-terminated; NULL: no ID-JAG issued */
    int64_t id_jag_lifetime;

    mandate_instance_conf *instances;
    size_t instance_count;

    mandate_target *targets;
    size_t target_count;
    char *targets_file; /* more targets, kept by mandatectl apply; absent: none */

    mandate_mappings mappings; /* federated identity -> grant */

    mandate_delegation delegation; /* who may exchange whose tokens */
    mandate_signin_config signin;  /* people's sign-in */

    mandate_client_documents_conf client_documents;
    mandate_registration_conf registration;
    mandate_dpop_conf dpop; /* RFC 9449 proofs (dpop-private.h) */
    mandate_par_conf par;
    char **fapi2_tenants; /* profile.fapi2_tenants: every client of these tenants */
} mandate_config;

/* Read and check mandate.conf and the instance files it points to. Plugin
 * keys are not checked here (see mandate_runtime). On failure, diag says
 * what was wrong, with file and line. */
bool mandate_config_load(const char *path, mandate_config **config_r, mandate_diag *diag);
void mandate_config_free(mandate_config **config);

/* Points the configuration's store instance at another store: plugin, with
 * one setting key = value (sqlite: path; pgsql: conninfo). For mandatectl
 * migrate. false (said in diag) when there is no store instance. */
bool mandate_config_replace_store(mandate_config *config, const char *plugin, const char *key,
                                  const char *value, mandate_diag *diag);

/* When listen asked for port 0 and the issuer was derived from it, put the
 * port actually bound into the issuer. Call before serving. */
void mandate_config_use_port(mandate_config *config, unsigned port);

/* The HTTP worker threads: server.threads, else one per online processor. */
unsigned mandate_config_workers(const mandate_config *config);
/* How many threads the HTTP server keeps for client document fetches
 * (mandate_http_set_aside), and how many fetches may run at once on HTTP
 * workers besides (expired copies: client-documents.c): a quarter of the
 * workers, one at least. Anyone can make the broker fetch (an unknown
 * https client_id at the authorization endpoint), from a server as slow
 * as its timeout allows. */
unsigned mandate_config_document_fetches(const mandate_config *config);

/* The file to use: the -c argument, else $MANDATE_CONF, else the default. */
const char *mandate_config_default_path(const char *cli_path);

/* The listen address split for bind(): host as text and port. */
bool mandate_config_split_listen(const char *listen, char *host, size_t host_cap,
                                 unsigned *port_r);

/* Whether mandate.conf's targets and those of candidate (a targets_file
 * about to replace the configured one) load together; diag says why not. */
bool mandate_config_targets_check(const mandate_config *config, const char *candidate,
                                  mandate_diag *diag);

/* Keys of an instance file that belong to the core, not the plugin. */
const char *const *mandate_config_instance_reserved(void);

#endif
