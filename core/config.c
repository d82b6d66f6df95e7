#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netdb.h>
#include <unistd.h>

#include "client-documents-private.h"
#include "config-private.h"
#include "gateway-path-private.h"
#include "jose.h"
#include "peer-private.h"
#include "pool-private.h"
#include "util-private.h"

#define CONF_OFF(field) offsetof(mandate_config, field)
/* A number's macro as the text of a default value. */
#define CONF_TEXT_(x) #x
#define CONF_TEXT(x) CONF_TEXT_(x)

static const mandate_conf_def core_defs[] = {
    {"server.listen", MANDATE_CONF_STRING, 0, CONF_OFF(listen), "127.0.0.1:8080", 0, 0,
     NULL, "address:port to listen on"},
    {"server.issuer", MANDATE_CONF_STRING, 0, CONF_OFF(issuer), NULL, 0, 0, NULL,
     "the issuer URL; default http://<listen>"},
    {"server.threads", MANDATE_CONF_INT, 0, CONF_OFF(threads), "0", 0, 1024, NULL,
     "worker threads; 0: one per core"},
    {"server.body_limit", MANDATE_CONF_INT, 0, CONF_OFF(body_limit), "65536", 1024,
     16 * 1024 * 1024, NULL, "largest request body in bytes"},
    {"server.connection_timeout", MANDATE_CONF_INT, 0, CONF_OFF(connection_timeout), "30",
     1, 3600, NULL, "seconds an idle connection is kept"},
    {"server.connection_limit", MANDATE_CONF_INT, 0, CONF_OFF(connection_limit), "1024", 1,
     1000000, NULL, "connections served at once"},
    {"server.connections_per_address", MANDATE_CONF_INT, 0, CONF_OFF(connections_per_address),
     "256", 0, 1000000, NULL, "connections one peer address may hold at once; 0: no cap"},
    {"server.request_timeout", MANDATE_CONF_INT, 0, CONF_OFF(request_timeout), "10", 1, 3600,
     NULL, "seconds a request may take to arrive whole, from its first line"},
    {"server.trusted_proxies", MANDATE_CONF_STRING_LIST, 0, CONF_OFF(trusted_proxies), NULL, 0,
     0, NULL,
     "addresses or CIDR blocks of proxies whose X-Forwarded-For is believed; none by default"},
    {"server.cors", MANDATE_CONF_BOOL, 0, CONF_OFF(cors), "true", 0, 0, NULL,
     "answer browser pages of other origins (CORS) at the metadata, JWKS, token, revocation "
     "and registration endpoints, never with credentials"},
    {"server.cors_origins", MANDATE_CONF_STRING_LIST, 0, CONF_OFF(cors_origins), NULL, 0, 0,
     NULL, "only these origins (\"https://app.example\"); none: any origin"},
    {"server.drain_timeout", MANDATE_CONF_INT, 0, CONF_OFF(drain_timeout), "10", 0, 600,
     NULL, "seconds to finish in-flight requests on SIGTERM"},
    {"server.tls.certificate", MANDATE_CONF_PATH, 0, CONF_OFF(tls_certificate), NULL, 0, 0,
     NULL, "PEM certificate chain; enables HTTPS"},
    {"server.tls.key", MANDATE_CONF_PATH, MANDATE_CONF_SECRET, CONF_OFF(tls_key), NULL, 0,
     0, NULL, "PEM private key"},
    {"server.tls.client_ca", MANDATE_CONF_PATH, 0, CONF_OFF(tls_client_ca), NULL, 0, 0, NULL,
     "PEM CA certificates: HTTPS asks clients for a certificate, and tls_client_auth "
     "certificates must chain to one of these (RFC 8705)"},
    {"server.client_certificate_header", MANDATE_CONF_STRING, 0,
     CONF_OFF(client_certificate_header), NULL, 0, 0, NULL,
     "header in which a TLS-terminating proxy (server.client_certificate_proxies) forwards "
     "the client's certificate as URL-escaped PEM (nginx: $ssl_client_escaped_cert); none by "
     "default"},
    {"server.client_certificate_proxies", MANDATE_CONF_STRING_LIST, 0,
     CONF_OFF(client_certificate_proxies), NULL, 0, 0, NULL,
     "addresses or CIDR blocks of the proxies that terminate the clients' TLS and whose "
     "client_certificate_header is believed; none set: every server.trusted_proxies address"},
    {"server.mtls_base_url", MANDATE_CONF_STRING, 0, CONF_OFF(mtls_base_url), NULL, 0, 0, NULL,
     "base URL where clients reach the endpoints with their certificate, when not the issuer's "
     "(metadata: mtls_endpoint_aliases)"},
    {"state_dir", MANDATE_CONF_PATH, 0, CONF_OFF(state_dir), LOCALSTATEDIR "/lib/mandate",
     0, 0, NULL, "where the database and keys live"},
    {"kek_file", MANDATE_CONF_PATH, 0, CONF_OFF(kek_file), NULL, 0, 0, NULL,
     "key-encryption key file; default <state_dir>/kek"},
    {"plugin_dir", MANDATE_CONF_PATH, 0, CONF_OFF(plugin_dir), PLUGINDIR, 0, 0, NULL,
     "where plugins are loaded from"},
    {"instances_dir", MANDATE_CONF_PATH, 0, CONF_OFF(instances_dir), "mandate.d", 0, 0,
     NULL, "one file per enabled plugin instance"},
    {"targets_file", MANDATE_CONF_PATH, 0, CONF_OFF(targets_file), "targets.conf", 0, 0, NULL,
     "gateway targets kept by mandatectl apply, read after this file's own (absent: none)"},
    {"log.destination", MANDATE_CONF_STRING, 0, CONF_OFF(log_destination), "stderr", 0, 0,
     "stderr|syslog", NULL},
    {"log.level", MANDATE_CONF_STRING, 0, CONF_OFF(log_level), "info", 0, 0,
     "error|warning|info|debug", NULL},
    {"tokens.format", MANDATE_CONF_STRING, 0, CONF_OFF(token_format), "jwt", 0, 0, NULL,
     "format instance for clients that name none"},
    {"tokens.lifetime", MANDATE_CONF_INT, 0, CONF_OFF(token_lifetime), "3600", 1, 86400,
     NULL, "seconds, for clients that name none"},
    {"default_resource", MANDATE_CONF_STRING, 0, CONF_OFF(default_resource), NULL, 0, 0, NULL,
     "the resource (aud) of tokens for clients with no audience of their own that ask for "
     "none; none: such a request gets invalid_target"},
    {"tokens.check_cache", MANDATE_CONF_INT, 0, CONF_OFF(token_check_cache), "8192", 0,
     1048576, NULL, "checked tokens remembered by their SHA-256 (0: none)"},
    {"audit.dir", MANDATE_CONF_PATH, 0, CONF_OFF(audit_dir), NULL, 0, 0, NULL,
     "the audit trail's folder; default <state_dir>/audit"},
    {"audit.fsync", MANDATE_CONF_STRING, 0, CONF_OFF(audit_fsync), "batch", 0, 0,
     "always|batch|off", NULL},
    {"audit.rotate_bytes", MANDATE_CONF_INT, 0, CONF_OFF(audit_rotate_bytes), "67108864", 0,
     INT64_C(1) << 40, NULL, "begin a new file past this size; 0: never by size"},
    {"audit.rotate_daily", MANDATE_CONF_BOOL, 0, CONF_OFF(audit_rotate_daily), "true", 0, 0,
     NULL, "begin a new file each UTC day"},
    {"audit.seal", MANDATE_CONF_BOOL, 0, CONF_OFF(audit_seal), "true", 0, 0, NULL,
     "sign checkpoints of the trail's head (Ed25519, a key derived from the KEK)"},
    {"audit.checkpoint.records", MANDATE_CONF_INT, 0, CONF_OFF(audit_checkpoint_records),
     "1000", 1, 1000000000, NULL, "a checkpoint when so many records wait unsealed"},
    {"audit.checkpoint.seconds", MANDATE_CONF_INT, 0, CONF_OFF(audit_checkpoint_seconds), "10",
     1, 86400, NULL, "a checkpoint when the oldest unsealed record is so many seconds old"},
    {"audit.checkpoint.syslog", MANDATE_CONF_STRING, 0, CONF_OFF(audit_checkpoint_syslog),
     "authpriv", 0, 0,
     "off|auth|authpriv|daemon|user|local0|local1|local2|local3|local4|local5|local6|local7",
     NULL},
    {"audit.checkpoint.file", MANDATE_CONF_PATH, 0, CONF_OFF(audit_checkpoint_file), NULL, 0, 0,
     NULL, "a file or FIFO each checkpoint is appended to, to ship off the machine"},
    {"audit.verify_key", MANDATE_CONF_PATH, 0, CONF_OFF(audit_verify_key), NULL, 0, 0, NULL,
     "PEM public keys mandatectl audit verify checks the seals with"},
    {"rate_limit.token_rate", MANDATE_CONF_INT, 0, CONF_OFF(rate_token), "50", 0, 1000000,
     NULL, "token requests per second and client; 0: no limit"},
    {"rate_limit.token_burst", MANDATE_CONF_INT, 0, CONF_OFF(rate_token_burst), "100", 1,
     1000000, NULL, "token requests a client may make at once"},
    {"rate_limit.gateway_rate", MANDATE_CONF_INT, 0, CONF_OFF(rate_gateway), "0", 0, 1000000,
     NULL, "gateway checks per second and client; 0: no limit"},
    {"rate_limit.gateway_burst", MANDATE_CONF_INT, 0, CONF_OFF(rate_gateway_burst), "100", 1,
     1000000, NULL, "gateway checks a client may make at once"},
    {"rate_limit.refusal_rate", MANDATE_CONF_INT, 0, CONF_OFF(rate_refusals), "20", 0, 1000000,
     NULL, "refused requests per second one address may cause before it gets 429; 0: no limit"},
    {"rate_limit.refusal_burst", MANDATE_CONF_INT, 0, CONF_OFF(rate_refusals_burst), "100", 1,
     1000000, NULL, "refused requests one address may cause at once"},
    {"rate_limit.buckets", MANDATE_CONF_INT, 0, CONF_OFF(rate_buckets), "16384", 64, 16777216,
     NULL, "clients tracked at once; idle ones are evicted first"},
    {"metrics.enabled", MANDATE_CONF_BOOL, 0, CONF_OFF(metrics_enabled), "true", 0, 0, NULL,
     "serve GET /metrics (Prometheus)"},
    {"id_jag.audiences", MANDATE_CONF_STRING_LIST, 0, CONF_OFF(id_jag_audiences), NULL, 0, 0,
     NULL, "resource authorization servers (their issuer URLs) this broker issues ID-JAGs "
           "for; none: no ID-JAG is issued"},
    {"id_jag.lifetime", MANDATE_CONF_INT, 0, CONF_OFF(id_jag_lifetime), "300", 10, 3600, NULL,
     "seconds an ID-JAG is valid for"},
    {"delegation.max_depth", MANDATE_CONF_INT, 0, CONF_OFF(delegation.max_depth),
     CONF_TEXT(MANDATE_DELEGATION_DEFAULT_MAX_DEPTH), 1, MANDATE_GRANT_MAX_ACTORS, NULL,
     "actors a token's act chain may hold, the one acting now included"},
    {"signin.session_lifetime", MANDATE_CONF_INT, 0, CONF_OFF(signin.session_lifetime),
     "28800", 60, 31 * 86400, NULL, "seconds a browser session at the broker lasts at most"},
    {"signin.session_idle", MANDATE_CONF_INT, 0, CONF_OFF(signin.session_idle), "3600", 60,
     31 * 86400, NULL, "seconds a browser session may sit unused"},
    {"signin.pending_lifetime", MANDATE_CONF_INT, 0, CONF_OFF(signin.pending_lifetime), "600",
     60, 3600, NULL, "seconds a user has to sign in at the IdP"},
    {"signin.code_lifetime", MANDATE_CONF_INT, 0, CONF_OFF(signin.code_lifetime), "60", 5, 60,
     NULL, "seconds an authorization code lives (at most 60)"},
    {"signin.refresh_tokens", MANDATE_CONF_BOOL, 0, CONF_OFF(signin.refresh_tokens), "true", 0,
     0, NULL, "issue refresh tokens to clients whose grant_types hold refresh_token"},
    {"signin.refresh_lifetime", MANDATE_CONF_INT, 0, CONF_OFF(signin.refresh_lifetime),
     "2592000", 60, 366 * 86400, NULL,
     "seconds a sign-in's refresh tokens last at most, however often they rotate"},
    {"signin.refresh_idle", MANDATE_CONF_INT, 0, CONF_OFF(signin.refresh_idle), "1209600", 60,
     366 * 86400, NULL, "seconds a refresh token lives unless used (and rotated)"},
    {"signin.consent_lifetime", MANDATE_CONF_INT, 0, CONF_OFF(signin.consent_lifetime),
     "7776000", 0, 3660 * 86400, NULL, "seconds a remembered consent holds; 0: until revoked"},
    {"client_documents.enabled", MANDATE_CONF_BOOL, 0, CONF_OFF(client_documents.enabled),
     "true", 0, 0, NULL,
     "accept an https client_id whose Client ID Metadata Document is fetched"},
    {"client_documents.ca_file", MANDATE_CONF_PATH, 0, CONF_OFF(client_documents.ca_file), NULL,
     0, 0, NULL, "PEM CA certificates to check documents' servers with; default the system's"},
    {"client_documents.connect_timeout_ms", MANDATE_CONF_INT, 0,
     CONF_OFF(client_documents.connect_timeout_ms), "2000", 100, 10000, NULL,
     "milliseconds to connect to a document's server"},
    {"client_documents.timeout_ms", MANDATE_CONF_INT, 0, CONF_OFF(client_documents.timeout_ms),
     "5000", 100, 30000, NULL, "milliseconds a whole fetch may take"},
    {"client_documents.max_bytes", MANDATE_CONF_INT, 0, CONF_OFF(client_documents.max_bytes),
     "5120", 256, 65536, NULL, "largest document in bytes; the fetch stops past it"},
    {"client_documents.min_cache", MANDATE_CONF_INT, 0, CONF_OFF(client_documents.min_cache),
     "60", 0, 86400, NULL, "seconds a document is kept at least (the floor of max-age)"},
    {"client_documents.max_cache", MANDATE_CONF_INT, 0, CONF_OFF(client_documents.max_cache),
     "86400", 0, 604800, NULL, "seconds a document is kept at most (the ceiling of max-age)"},
    {"client_documents.max_stale", MANDATE_CONF_INT, 0, CONF_OFF(client_documents.max_stale),
     "3600", 0, 604800, NULL,
     "seconds past its expiry a document is still served while its server cannot be reached"},
    {"client_documents.allow_private_addresses", MANDATE_CONF_BOOL, 0,
     CONF_OFF(client_documents.allow_private_addresses), "false", 0, 0, NULL,
     "fetch from loopback, private, link-local and other non-public addresses"},
    {"client_documents.allow_hosts", MANDATE_CONF_STRING_LIST, 0,
     CONF_OFF(client_documents.allow_hosts), NULL, 0, 0, NULL,
     "only these hosts (\"host\" or \"*.example.com\"); none: any host"},
    {"client_documents.deny_hosts", MANDATE_CONF_STRING_LIST, 0,
     CONF_OFF(client_documents.deny_hosts), NULL, 0, 0, NULL,
     "never these hosts (\"host\" or \"*.example.com\")"},
    {"client_documents.tenant", MANDATE_CONF_STRING, 0, CONF_OFF(client_documents.tenant),
     "default", 0, 0, NULL, "the tenant of document clients"},
    {"client_documents.scopes", MANDATE_CONF_STRING_LIST, 0, CONF_OFF(client_documents.scopes),
     NULL, 0, 0, NULL, "scopes document clients may ask for; default the targets' scopes"},
    {"client_documents.audiences", MANDATE_CONF_STRING_LIST, 0,
     CONF_OFF(client_documents.audiences), NULL, 0, 0, NULL,
     "audiences document clients may ask for; default the targets' audiences"},
    {"registration.mode", MANDATE_CONF_STRING, 0, CONF_OFF(registration.mode), "off", 0, 0,
     "off|token|open", NULL},
    {"registration.tenant", MANDATE_CONF_STRING, 0, CONF_OFF(registration.tenant), "default", 0,
     0, NULL, "the tenant of registered clients"},
    {"registration.scopes", MANDATE_CONF_STRING_LIST, 0, CONF_OFF(registration.scopes), NULL, 0,
     0, NULL, "scopes registered clients may ask for; default the targets' scopes"},
    {"registration.audiences", MANDATE_CONF_STRING_LIST, 0, CONF_OFF(registration.audiences),
     NULL, 0, 0, NULL, "audiences registered clients may ask for; default the targets'"},
    {"registration.rate", MANDATE_CONF_INT, 0, CONF_OFF(registration.rate), "30", 0, 1000000,
     NULL, "registrations an address may make per hour; 0: no limit"},
    {"dpop.algorithms", MANDATE_CONF_STRING_LIST, 0, CONF_OFF(dpop.algorithms), NULL, 0, 0,
     NULL, "algorithms a DPoP proof may be signed with (ES256, EdDSA, RS256); default all three"},
    {"dpop.max_age", MANDATE_CONF_INT, 0, CONF_OFF(dpop.max_age), "60", 1, 600, NULL,
     "seconds a DPoP proof is accepted after its iat (and its jti remembered)"},
    {"dpop.max_future", MANDATE_CONF_INT, 0, CONF_OFF(dpop.max_future), "5", 0, 60, NULL,
     "seconds a DPoP proof's iat may be ahead of the clock"},
    {"dpop.nonce", MANDATE_CONF_BOOL, 0, CONF_OFF(dpop.nonce), "false", 0, 0, NULL,
     "DPoP proofs must carry a nonce the broker gave (DPoP-Nonce, use_dpop_nonce)"},
    {"par.lifetime", MANDATE_CONF_INT, 0, CONF_OFF(par.lifetime), "60", 10, 600, NULL,
     "seconds a pushed authorization request's request_uri lives (single use)"},
    {"par.required", MANDATE_CONF_BOOL, 0, CONF_OFF(par.required), "false", 0, 0, NULL,
     "every authorization request must be pushed first (RFC 9126 §5)"},
    {"profile.fapi2_tenants", MANDATE_CONF_STRING_LIST, 0, CONF_OFF(fapi2_tenants), NULL, 0, 0,
     NULL, "tenants whose every client is held to the FAPI 2.0-style profile (doc/fapi.md)"},
    MANDATE_CONF_END};

static const char *const instance_reserved[] = {"kind", "plugin", NULL};
/* Parsed by the core itself: lists of groups */
static const char *const core_reserved[] = {"targets",     "mappings",        "delegation.rules",
                                            "signin.idps", "signin.tenants", NULL};

#define TARGET_OFF(field) offsetof(mandate_target, field)
static const mandate_conf_def target_defs[] = {
    {"name", MANDATE_CONF_STRING, MANDATE_CONF_REQUIRED, TARGET_OFF(name), NULL, 0, 0, NULL,
     "the target's name, for logs and headers"},
    {"paths", MANDATE_CONF_STRING_LIST, MANDATE_CONF_REQUIRED, TARGET_OFF(paths), NULL, 0, 0,
     NULL,
     "the paths the target covers, with all below them (whole segments), e.g. "
     "[\"/mcp\", \"/tools/\"]"},
    {"audience", MANDATE_CONF_STRING, MANDATE_CONF_REQUIRED, TARGET_OFF(audience), NULL, 0, 0,
     NULL, "the aud its tokens must carry"},
    {"scopes", MANDATE_CONF_STRING_LIST, 0, TARGET_OFF(scopes), "", 0, 0, NULL,
     "scopes every call needs"},
    {"public_url", MANDATE_CONF_STRING, 0, TARGET_OFF(public_url), NULL, 0, 0, NULL,
     "the scheme and host clients reach the target at (\"https://tools.example\"): the htu "
     "of their DPoP proofs is checked against it and the original path"},
    {"resource_metadata", MANDATE_CONF_STRING, 0, TARGET_OFF(resource_metadata), NULL, 0, 0,
     NULL, "RFC 9728 protected resource metadata URL, named in 401 challenges"},
    {"tenant", MANDATE_CONF_STRING, 0, TARGET_OFF(tenant), NULL, 0, 0, NULL,
     "only tokens of this tenant pass; default: a token of any tenant"},
    MANDATE_CONF_END};

/* A target path must be written as the gateway check compares paths: what
 * mandate_gateway_path_normalise leaves as it is. So it has no dot-segment,
 * no '%' (requests are compared decoded), no "//", no ';' and no query: a
 * path written otherwise would never match, or match other than it reads. */
/* Every entry of a list of proxies (name: its setting) an address or a
 * CIDR block. */
static bool address_blocks_valid(config_t *file, const char *name, char *const *blocks,
                                 mandate_diag *diag)
{
    bool ok = true;
    for (char *const *t = blocks; t != NULL && *t != NULL; t++) {
        if (!mandate_peer_block_valid(*t)) {
            mandate_diag_add_at(diag, config_lookup(file, name),
                                "'%s': '%s' is not an address or a CIDR block like "
                                "\"10.0.0.0/8\"",
                                name, *t);
            ok = false;
        }
    }
    return ok;
}

static bool target_path_ok(mandate_pool *pool, const config_setting_t *at,
                           const mandate_target *t, const char *path, mandate_diag *diag)
{
    char *norm;
    const char *why;
    if (!mandate_gateway_path_normalise(pool, path, strlen(path), &norm, &why)) {
        mandate_diag_add_at(diag, at, "target '%s': path '%s' is refused: %s", t->name, path,
                            why);
        return false;
    }
    if (strchr(path, '%') != NULL) {
        mandate_diag_add_at(diag, at,
                            "target '%s': path '%s' must not be percent-encoded: requests are "
                            "compared decoded, and a target path holds only letters, digits, "
                            "'/' and -._~!$&'()*+,=:@",
                            t->name, path);
        return false;
    }
    if (strcmp(norm, path) != 0) {
        mandate_diag_add_at(diag, at,
                            "target '%s': path '%s' is not in normal form: write '%s'", t->name,
                            path, norm);
        return false;
    }
    return true;
}

/* Two target paths that differ only in letter case: a tool server that
 * routes without case (Express does by default) could not tell them apart,
 * and the check refuses a path that matches otherwise without case. */
static bool target_paths_distinct(const mandate_config *cfg, const config_setting_t *at,
                                  const mandate_target *t, const char *path, mandate_diag *diag)
{
    /* t is the last target read so far: the paths before this one */
    for (size_t k = 0; k < cfg->target_count; k++) {
        const mandate_target *o = &cfg->targets[k];
        if (o->name == NULL) /* a target refused already */
            continue;
        for (char **p = o->paths; p != NULL && *p != NULL && *p != path; p++) {
            if (strlen(*p) != strlen(path) || !mandate_gateway_path_covers(*p, path, true))
                continue;
            if (o == t)
                mandate_diag_add_at(diag, at, "target '%s': path '%s' is listed twice", t->name,
                                    path);
            else
                mandate_diag_add_at(diag, at,
                                    "target '%s': path '%s' is target '%s''s '%s' again "
                                    "(letter case aside)",
                                    t->name, path, o->name, *p);
            return false;
        }
    }
    return true;
}

static bool read_targets(mandate_config *cfg, config_t *file, mandate_diag *diag)
{
    config_setting_t *list = config_lookup(file, "targets");
    if (list == NULL)
        return true;
    if (!config_setting_is_list(list) && !config_setting_is_array(list)) {
        mandate_diag_add_at(diag, list, "'targets' must be a list of groups: ( { ... }, ... )");
        return false;
    }
    int n = config_setting_length(list);
    /* after the targets read already (mandate.conf's, then targets_file's) */
    cfg->targets = mandate_xrealloc(cfg->targets,
                                    (cfg->target_count + (size_t)n + 1) * sizeof(mandate_target));
    memset(cfg->targets + cfg->target_count, 0, ((size_t)n + 1) * sizeof(mandate_target));
    mandate_pool *pool = mandate_pool_new();
    bool ok = true;
    for (int i = 0; i < n; i++) {
        config_setting_t *g = mandate_conf_list_group(list, i, "target", diag);
        mandate_target *t = &cfg->targets[cfg->target_count++];
        if (g == NULL ||
            !mandate_conf_apply(g, cfg->path, target_defs, NULL, cfg->dir, t, diag)) {
            ok = false;
            continue;
        }
        config_setting_t *paths = config_setting_get_member(g, "paths");
        for (unsigned k = 0; t->paths[k] != NULL; k++) {
            config_setting_t *at = config_setting_get_elem(paths, k);
            if (!target_path_ok(pool, at ? at : g, t, t->paths[k], diag) ||
                !target_paths_distinct(cfg, at ? at : g, t, t->paths[k], diag))
                ok = false;
        }
        if (t->tenant != NULL && t->tenant[0] == '\0') {
            mandate_diag_add_at(diag, g, "target '%s': 'tenant' must not be empty", t->name);
            ok = false;
        }
        if (t->paths[0] == NULL) {
            mandate_diag_add_at(diag, g, "target '%s' covers no path", t->name);
            ok = false;
        }
        for (size_t k = 0; k + 1 < cfg->target_count; k++)
            if (cfg->targets[k].name != NULL && strcmp(cfg->targets[k].name, t->name) == 0) {
                mandate_diag_add_at(diag, g, "target '%s' is named twice", t->name);
                ok = false;
            }
    }
    mandate_pool_free(&pool);
    return ok;
}

/* The targets of a file that holds nothing else (targets_file: written by
 * mandatectl apply), after those read already; a missing file holds none. */
static bool read_targets_file(mandate_config *cfg, const char *path, mandate_diag *diag)
{
    if (access(path, F_OK) != 0 && errno == ENOENT)
        return true;
    config_t file;
    bool ok = mandate_conf_read_file(&file, path, diag);
    config_setting_t *root = config_root_setting(&file);
    for (int i = 0; ok && i < config_setting_length(root); i++) {
        config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
        if (strcmp(config_setting_name(s), "targets") != 0) {
            mandate_diag_add_at(diag, s, "unknown key '%s': a targets file holds 'targets' only",
                                config_setting_name(s));
            ok = false;
        }
    }
    ok = ok && read_targets(cfg, &file, diag);
    config_destroy(&file);
    return ok;
}

bool mandate_config_targets_check(const mandate_config *cfg, const char *candidate,
                                  mandate_diag *diag)
{
    mandate_config scratch = {.path = cfg->path, .dir = cfg->dir};
    config_t file;
    bool ok = mandate_conf_read_file(&file, cfg->path, diag) &&
              read_targets(&scratch, &file, diag) && read_targets_file(&scratch, candidate, diag);
    config_destroy(&file);
    for (size_t i = 0; i < scratch.target_count; i++)
        mandate_conf_free_values(target_defs, &scratch.targets[i]);
    free(scratch.targets);
    return ok;
}

unsigned mandate_config_workers(const mandate_config *cfg)
{
    if (cfg->threads > 0)
        return (unsigned)cfg->threads;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

unsigned mandate_config_document_fetches(const mandate_config *cfg)
{
    unsigned workers = mandate_config_workers(cfg);
    return workers / 4 > 0 ? workers / 4 : 1;
}

const char *mandate_config_default_path(const char *cli_path)
{
    if (cli_path != NULL)
        return cli_path;
    const char *env = getenv("MANDATE_CONF");
    if (env != NULL && env[0] != '\0')
        return env;
    return CONFDIR "/mandate.conf";
}

bool mandate_config_split_listen(const char *listen, char *host, size_t host_cap,
                                 unsigned *port_r)
{
    const char *colon;
    const char *h = listen;
    size_t hlen;
    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (close == NULL || close[1] != ':')
            return false;
        h = listen + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(listen, ':');
        if (colon == NULL)
            return false;
        hlen = (size_t)(colon - listen);
    }
    if (hlen == 0 || hlen >= host_cap)
        return false;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || port < 0 || port > 65535)
        return false;
    /* numeric addresses only: the broker must not depend on DNS to start */
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    if (getaddrinfo(host, NULL, &hints, &ai) != 0)
        return false;
    freeaddrinfo(ai);
    *port_r = (unsigned)port;
    return true;
}

void mandate_config_use_port(mandate_config *cfg, unsigned port)
{
    char host[256];
    unsigned configured;
    if (!cfg->issuer_derived ||
        !mandate_config_split_listen(cfg->listen, host, sizeof(host), &configured) ||
        configured != 0)
        return;
    free(cfg->issuer);
    bool v6 = strchr(host, ':') != NULL;
    cfg->issuer = mandate_xasprintf("%s://%s%s%s:%u", cfg->tls_certificate ? "https" : "http",
                                    v6 ? "[" : "", host, v6 ? "]" : "", port);
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n > m && strcmp(s + n - m, suffix) == 0;
}

static bool valid_instance_name(const char *name)
{
    for (const char *p = name; *p != '\0'; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
            return false;
    return name[0] != '\0';
}

static bool read_instance(mandate_config *cfg, const char *file, const char *name,
                          mandate_diag *diag)
{
    mandate_instance_conf *inst = &cfg->instances[cfg->instance_count];
    memset(inst, 0, sizeof(*inst));
    if (!mandate_conf_read_file(&inst->cfg, file, diag)) {
        config_destroy(&inst->cfg);
        return false;
    }
    cfg->instance_count++;
    inst->name = mandate_xstrdup(name);
    inst->file = mandate_xstrdup(file);
    config_setting_t *root = config_root_setting(&inst->cfg);
    bool ok = true;
    const char *kind = NULL, *plugin = NULL;
    config_setting_t *s = config_setting_get_member(root, "kind");
    if (s == NULL || (kind = config_setting_get_string(s)) == NULL) {
        mandate_diag_add(diag, "%s: 'kind' is missing: say kind = \"backend\", \"format\" or \"store\"",
                         file);
        ok = false;
    } else if (strcmp(kind, "backend") != 0 && strcmp(kind, "format") != 0 &&
               strcmp(kind, "store") != 0) {
        mandate_diag_add_at(diag, s, "'kind' must be \"backend\", \"format\" or \"store\"");
        ok = false;
    }
    s = config_setting_get_member(root, "plugin");
    if (s == NULL || (plugin = config_setting_get_string(s)) == NULL) {
        mandate_diag_add(diag, "%s: 'plugin' is missing: name the plugin, e.g. plugin = \"sqlite\"",
                         file);
        ok = false;
    }
    inst->kind = mandate_xstrdup(kind);
    inst->plugin = mandate_xstrdup(plugin);
    return ok;
}

static bool read_instances(mandate_config *cfg, mandate_diag *diag)
{
    DIR *d = opendir(cfg->instances_dir);
    if (d == NULL) {
        mandate_diag_add(diag, "%s: cannot open the instances folder: %s", cfg->instances_dir,
                         strerror(errno));
        return false;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || !has_suffix(e->d_name, ".conf"))
            continue;
        names = mandate_xrealloc(names, (n + 1) * sizeof(char *));
        names[n++] = mandate_xstrdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(char *), compare_names);

    bool ok = true;
    cfg->instances = mandate_xcalloc(n ? n : 1, sizeof(mandate_instance_conf));
    for (size_t i = 0; i < n; i++) {
        char *file = mandate_path_join(cfg->instances_dir, names[i]);
        names[i][strlen(names[i]) - strlen(".conf")] = '\0';
        if (!valid_instance_name(names[i])) {
            mandate_diag_add(diag, "%s: the file name must be letters, digits, '-', '_' or '.'",
                             file);
            ok = false;
        } else if (!read_instance(cfg, file, names[i], diag)) {
            ok = false;
        }
        free(file);
        free(names[i]);
    }
    free(names);
    return ok;
}

bool mandate_config_load(const char *path, mandate_config **config_r, mandate_diag *diag)
{
    mandate_config *cfg = mandate_xcalloc(1, sizeof(*cfg));
    cfg->path = mandate_xstrdup(path);
    char *copy = mandate_xstrdup(path);
    cfg->dir = mandate_xstrdup(dirname(copy));
    free(copy);

    config_t file;
    bool ok = mandate_conf_read_file(&file, path, diag);
    if (!ok && access(path, R_OK) != 0)
        /* not a mistake in the file: the wrong file, or none was named */
        mandate_diag_add(diag,
                         "%s: name the configuration with -c FILE or the MANDATE_CONF "
                         "environment variable (mandatectl init DIR makes one: DIR/mandate.conf)",
                         path);
    if (ok)
        ok = mandate_conf_apply(config_root_setting(&file), path, core_defs, core_reserved,
                                cfg->dir, cfg, diag) &&
             read_targets(cfg, &file, diag) &&
             (cfg->targets_file == NULL || read_targets_file(cfg, cfg->targets_file, diag)) &&
             mandate_mappings_read(&file, path, &cfg->mappings, diag) &&
             mandate_delegation_read(&file, path, &cfg->delegation, diag) &&
             mandate_signin_config_read(&file, path, &cfg->signin, diag);
    if (ok) {
        char host[256];
        unsigned port;
        if (!mandate_config_split_listen(cfg->listen, host, sizeof(host), &port)) {
            config_setting_t *s = config_lookup(&file, "server.listen");
            if (s != NULL)
                mandate_diag_add_at(diag, s,
                                    "'server.listen' must be a numeric address and port, "
                                    "like \"127.0.0.1:8080\" or \"[::1]:8080\"");
            else
                mandate_diag_add(diag, "%s: bad default listen address", path);
            ok = false;
        }
        if (!address_blocks_valid(&file, "server.trusted_proxies", cfg->trusted_proxies,
                                  diag) ||
            !address_blocks_valid(&file, "server.client_certificate_proxies",
                                  cfg->client_certificate_proxies, diag))
            ok = false;
        /* RFC 8707 §2: a resource is an absolute URI without a fragment */
        if (cfg->default_resource != NULL &&
            (strchr(cfg->default_resource, ':') == NULL ||
             strpbrk(cfg->default_resource, "# \t") != NULL)) {
            mandate_diag_add_at(diag, config_lookup(&file, "default_resource"),
                                "'default_resource' must be an absolute URI without a "
                                "fragment, like \"https://mcp.example/market-calendar\"");
            ok = false;
        }
        if (!mandate_client_registration_config_check(cfg, &file, diag))
            ok = false;
        for (char **a = cfg->dpop.algorithms; a != NULL && *a != NULL; a++) {
            if (mandate_jws_alg_parse(*a) == MANDATE_JWS_NONE) {
                mandate_diag_add_at(diag, config_lookup(&file, "dpop.algorithms"),
                                    "'dpop.algorithms': '%s' is not ES256, EdDSA or RS256", *a);
                ok = false;
            }
        }
        if (cfg->client_certificate_header != NULL && cfg->trusted_proxies == NULL &&
            cfg->client_certificate_proxies == NULL) {
            mandate_diag_add_at(diag, config_lookup(&file, "server.client_certificate_header"),
                                "'server.client_certificate_header' is believed only from "
                                "'server.client_certificate_proxies' (or, without it, "
                                "'server.trusted_proxies'): name the proxy's address there");
            ok = false;
        }
        if ((cfg->tls_certificate == NULL) != (cfg->tls_key == NULL)) {
            mandate_diag_add(diag, "%s: 'server.tls' needs both 'certificate' and 'key'", path);
            ok = false;
        }
        cfg->issuer_derived = cfg->issuer == NULL;
        if (cfg->issuer == NULL)
            cfg->issuer = mandate_xasprintf("%s://%s", cfg->tls_certificate ? "https" : "http",
                                            cfg->listen);
        size_t ilen = strlen(cfg->issuer);
        if (ilen > 0 && cfg->issuer[ilen - 1] == '/')
            cfg->issuer[ilen - 1] = '\0'; /* endpoints are appended to it */
        if (cfg->kek_file == NULL)
            cfg->kek_file = mandate_path_join(cfg->state_dir, "kek");
        if (cfg->audit_dir == NULL)
            cfg->audit_dir = mandate_path_join(cfg->state_dir, "audit");
    }
    config_destroy(&file);
    if (ok)
        ok = read_instances(cfg, diag);
    if (!ok) {
        mandate_config_free(&cfg);
        return false;
    }
    *config_r = cfg;
    return true;
}

void mandate_config_free(mandate_config **cfgp)
{
    mandate_config *cfg = *cfgp;
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cfg->instance_count; i++) {
        mandate_instance_conf *inst = &cfg->instances[i];
        free(inst->name);
        free(inst->file);
        free(inst->kind);
        free(inst->plugin);
        config_destroy(&inst->cfg);
    }
    free(cfg->instances);
    for (size_t i = 0; i < cfg->target_count; i++)
        mandate_conf_free_values(target_defs, &cfg->targets[i]);
    free(cfg->targets);
    mandate_mappings_free(&cfg->mappings);
    mandate_delegation_free(&cfg->delegation);
    mandate_signin_config_free(&cfg->signin);
    mandate_conf_free_values(core_defs, cfg);
    free(cfg->path);
    free(cfg->dir);
    free(cfg);
    *cfgp = NULL;
}

bool mandate_config_replace_store(mandate_config *cfg, const char *plugin, const char *key,
                                  const char *value, mandate_diag *diag)
{
    for (size_t i = 0; i < cfg->instance_count; i++) {
        mandate_instance_conf *ic = &cfg->instances[i];
        if (strcmp(ic->kind, "store") != 0)
            continue;
        config_destroy(&ic->cfg);
        config_init(&ic->cfg);
        config_setting_t *root = config_root_setting(&ic->cfg);
        config_setting_set_string(config_setting_add(root, "kind", CONFIG_TYPE_STRING), "store");
        config_setting_set_string(config_setting_add(root, "plugin", CONFIG_TYPE_STRING), plugin);
        config_setting_set_string(config_setting_add(root, key, CONFIG_TYPE_STRING), value);
        free(ic->plugin);
        ic->plugin = mandate_xstrdup(plugin);
        free(ic->name);
        ic->name = mandate_xasprintf("store-%s", plugin);
        free(ic->file);
        ic->file = mandate_xasprintf("(%s:%s given on the command line)", plugin, key);
        return true;
    }
    mandate_diag_add(diag, "%s: no store instance is enabled", cfg->instances_dir);
    return false;
}

const char *const *mandate_config_instance_reserved(void)
{
    return instance_reserved;
}
