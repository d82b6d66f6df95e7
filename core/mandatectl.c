/* mandatectl: the operator's command line. It loads the same configuration
 * and plugins as the daemon and acts through the same core, so both agree.
 * Exit codes: 0 success, 1 refused or failed, 2 bad usage. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "config-private.h"
#include "audit-events-private.h"
#include "ctl-private.h"
#include "log-private.h"
#include "plugin-loader-private.h"
#include "profile-private.h"
#include "runtime-private.h"
#include "state-init-private.h"
#include "util-private.h"

#define EXIT_REFUSED CTL_REFUSED
#define EXIT_USAGE CTL_USAGE

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: mandatectl [-c FILE] [--json] COMMAND [ARGS]\n"
            "Administer a Mandate identity broker.\n\n"
            "Commands:\n"
            "  init DIR [--listen ADDR:PORT] [--issuer URL] [--plugin-dir DIR]\n"
            "           [--default-resource URI] [--no-example]\n"
            "                        create a ready-to-run state folder: configuration,\n"
            "                        key-encryption key (mode 0600) and database; its\n"
            "                        gateway target protects the MarketPulse example\n"
            "                        (--no-example: none), and tokens of clients with no\n"
            "                        audience are for URI (default the example's\n"
            "                        " MANDATE_INIT_EXAMPLE_RESOURCE ")\n"
            "  -c FILE init          create the state FILE names (its state_dir): the\n"
            "                        key-encryption key if none, and the database\n"
            "  config check [FILE]   check a configuration and its plugins' keys without\n"
            "                        starting anything\n"
            "  plugins [--plugin-dir DIR]\n"
            "                        list the plugins found, with kind, version and file\n"
            "  client create [ID] [--prefix P] [--scope S] [--default-scope S]\n"
            "                [--audience URI] [--ttl SECONDS] [--tenant T] [--name TEXT]\n"
            "                [--format F] [--backend B] [--public-key FILE] [--introspect]\n"
            "                [--secret-file FILE] [--rate R] [--burst B] [--kms-key-id KEY]\n"
            "                [--redirect-uri URI]... [--grant-type T]... [--public]\n"
            "                [--dpop-bound]\n"
            "                        register a client; prints its secret once (or writes it\n"
            "                        to a new file of mode 0600); --public: none at all;\n"
            "                        --dpop-bound: DPoP-bound access tokens only (RFC 9449)\n"
            "  client list [--tenant T] | show ID | enable ID | disable ID | delete ID\n"
            "  client set ID [--rate R --burst B] [--redirect-uri URI]... [--grant-type T]...\n"
            "                [--dpop-bound | --no-dpop-bound]\n"
            "                        its own token request rate (0: the configured default),\n"
            "                        where sign-in codes may be sent\n"
            "  client registration-token [--ttl SECONDS]\n"
            "                        a single-use initial access token for POST\n"
            "                        /oauth2/register (registration.mode \"token\")\n"
            "  client rotate-secret ID [--grace SECONDS]\n"
            "                        a new secret; the old one works for the grace period\n"
            "                        (default 86400, 0 for none)\n"
            "  client import FILE --out FILE [--csv]\n"
            "                        create many clients at once (JSON lines or CSV), all or\n"
            "                        none; their secrets go to --out, mode 0600\n"
            "  apply FILE [--dry-run] [--prune] [--show-secrets] [--replace-secret-files]\n"
            "                        make the clients and gateway targets match a document\n"
            "                        (JSON or libconfig); prints the plan; --prune disables\n"
            "                        clients the document does not name\n"
            "  keys list | keys rotate [--alg ES256|RS256|EdDSA] [--format F]\n"
            "  token get --token-url URL --client-id ID [--scope S] [--resource URI]\n"
            "            [--secret-file FILE]\n"
            "                        print an access token; the secret comes from the file\n"
            "                        or $MANDATE_CLIENT_SECRET, never from the command line\n"
            "  token introspect --token-file FILE|-\n"
            "                        is this token active here, and what does it grant\n"
            "  token revoke --jti JTI [--client ID] | --token-file FILE|-\n"
            "                        revoke a token everywhere the broker answers\n"
            "  audit verify [FILE... | --dir DIR] [--key FILE]... [--checkpoints FILE]\n"
            "                        check the audit trail's hash chain and its signed\n"
            "                        checkpoints (default: the configured trail); exit 0\n"
            "                        only when intact\n"
            "  audit checkpoint      seal the trail's head now and print the checkpoint\n"
            "  audit key             print the public key that verifies the checkpoints\n"
            "  audit tail [-f] [-n N] [--client ID] [--event TYPE] [--dir DIR]\n"
            "                        print the last records readably; -f follows\n"
            "  audit trace JTI [--dot] [--dir DIR]\n"
            "                        the delegation chain around a token from the trail:\n"
            "                        its issue, each exchange (actor, rule, scope, audience),\n"
            "                        refusals, gateway checks, revocations\n"
            "  mapping test --idp NAME --assertion FILE [--client ID] [--scope S]\n"
            "               [--resource URI]\n"
            "                        which mapping rule an assertion meets and the grant it\n"
            "                        would give (nothing is issued or claimed)\n"
            "  delegation test --subject-token FILE|- --actor ID [--resource URI]...\n"
            "                  [--scope S]\n"
            "                        whether ID may exchange the token, and by which rule\n"
            "                        (or why each rule refuses); nothing is issued\n"
            "  user revoke [--tenant T] SUBJECT\n"
            "                        end a signed-in user's sessions and refresh tokens\n"
            "  user consents [--tenant T] SUBJECT\n"
            "  user forget-consent [--tenant T] SUBJECT CLIENT_ID\n"
            "                        list a user's remembered consents, or withdraw one\n"
            "  saml sp-metadata INSTANCE\n"
            "                        the SAML service provider metadata of a saml backend\n"
            "                        instance, for the IdP's administrator\n"
            "  migrate --from sqlite:PATH --to pgsql:CONNINFO\n"
            "                        move clients, keys, revocations and token records to\n"
            "                        another (empty) store\n\n"
            "Options:\n"
            "  -c, --config FILE     configuration (default: $MANDATE_CONF, else\n"
            "                        " CONFDIR "/mandate.conf)\n"
            "      --json            machine-readable output\n"
            "  -h, --help            this help\n"
            "  -V, --version         the version\n\n"
            "Exit status: 0 success, 1 refused or failed, 2 bad usage. See mandatectl(1).\n");
}

int ctl_print_json(json_t *value)
{
    char *text = json_dumps(value, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(value);
    if (text == NULL)
        return EXIT_REFUSED;
    puts(text);
    free(text);
    return 0;
}

#define print_json ctl_print_json

const char *ctl_time(int64_t t, char buf[32])
{
    if (t == 0)
        return "-";
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

bool ctl_options(int argc, char **argv, const ctl_option *opts)
{
    struct option longs[CTL_OPTIONS_MAX + 1] = {{0}};
    size_t n = 0;
    for (; opts[n].name != NULL; n++) {
        if (n == CTL_OPTIONS_MAX)
            abort(); /* a programming error: raise CTL_OPTIONS_MAX */
        /* val: the index, past any character getopt_long answers */
        longs[n] = (struct option){opts[n].name,
                                   opts[n].flag != NULL ? no_argument : required_argument, NULL,
                                   256 + (int)n};
    }
    int opt;
    optind = 0; /* 0, not 1: glibc then forgets the "+" mode of the main parse */
    while ((opt = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        if (opt < 256 || opt >= 256 + (int)n)
            return false;
        const ctl_option *o = &opts[opt - 256];
        if (o->flag != NULL)
            *o->flag = true;
        else if (o->words != NULL)
            ctl_add_word(o->words, optarg);
        else if (o->once != NULL && *o->value != NULL) {
            fprintf(stderr, "%s\n", o->once);
            return false;
        } else {
            *o->value = optarg;
            if (o->kind != NULL)
                *o->kind = o->kind_value;
        }
    }
    return true;
}

bool ctl_operands(int argc, int operands, bool complete, const char *usage)
{
    if (optind == argc - operands && complete)
        return true;
    fputs(usage, stderr);
    return false;
}

int ctl_run_verb(const ctl *c, int argc, char **argv, const ctl_verb *verbs, const char *usage)
{
    for (const ctl_verb *v = verbs; argc >= 2 && v->name != NULL; v++) {
        if (strcmp(argv[1], v->name) == 0)
            return v->run(c, argc - 1, argv + 1);
    }
    fputs(usage, stderr);
    return CTL_USAGE;
}

char *ctl_read_file(const char *who, const char *path, size_t max, size_t *len)
{
    char *text = NULL;
    mandate_error err = {0};
    if (mandate_read_file(path, max, &text, len, &err) != MANDATE_OK) {
        fprintf(stderr, "%s: %s\n", who, err.message);
        return NULL;
    }
    return text;
}

mandate_runtime *ctl_runtime(const ctl *c, unsigned flags)
{
    mandate_diag diag = {0};
    mandate_config *cfg = NULL;
    mandate_runtime *rt = NULL;
    if (mandate_config_load(c->config_path, &cfg, &diag))
        mandate_runtime_create(cfg, flags, &rt, &diag);
    for (size_t i = 0; i < diag.count; i++)
        fprintf(stderr, "mandatectl: %s\n", diag.lines[i]);
    mandate_diag_free(&diag);
    return rt;
}

mandate_runtime *ctl_runtime_for_change(const ctl *c, unsigned flags)
{
    mandate_runtime *rt = ctl_runtime(c, flags);
    if (rt == NULL)
        return NULL;
    const mandate_config *cfg = mandate_runtime_config(rt);
    mandate_error err = {0};
    if (mandate_audit_events_start_deferred(cfg, &err) != MANDATE_OK) {
        fprintf(stderr, "mandatectl: audit trail %s: %s; nothing was changed\n", cfg->audit_dir,
                err.message);
        mandate_runtime_unref(&rt);
        return NULL;
    }
    return rt;
}

bool ctl_audit(const char *event, json_t *fields)
{
    if (fields == NULL)
        fields = json_object();
    json_object_set_new(fields, "actor", json_string(mandate_audit_actor()));
    json_object_set_new(fields, "via", json_string("mandatectl"));
    if (mandate_audit_event(event, fields) == MANDATE_OK)
        return true;
    fprintf(stderr, "mandatectl: the change was made, but its audit record (%s) could not be "
                    "written: see the log\n", event);
    return false;
}

/* --- init ------------------------------------------------------------------ */

/* mandatectl -c FILE init: the state an existing configuration names
 * (the Debian package's /etc/mandate/mandate.conf and /var/lib/mandate). */
static int init_config_state(ctl *c)
{
    char *state_dir = NULL;
    bool kek_created = false;
    mandate_error err = {0};
    if (mandate_state_init_config(c->config_path, &state_dir, &kek_created, &err) != MANDATE_OK) {
        fprintf(stderr, "mandatectl init: %s\n", err.message);
        return EXIT_REFUSED;
    }
    if (c->json) {
        print_json(json_pack("{s:s,s:s,s:b}", "config", c->config_path, "state_dir", state_dir,
                             "kek_created", kek_created));
    } else {
        printf("Initialised the state of %s in %s (%s)\n", c->config_path, state_dir,
               kek_created ? "a new key-encryption key" : "its key-encryption key kept");
        printf("Start the broker with:  mandated -c %s\n", c->config_path);
    }
    free(state_dir);
    return 0;
}

static int cmd_init(ctl *c, int argc, char **argv)
{
    mandate_init_options io = {0};
    const ctl_option opts[] = {CTL_VALUE("listen", &io.listen),
                               CTL_VALUE("issuer", &io.issuer),
                               CTL_VALUE("plugin-dir", &io.plugin_dir),
                               CTL_VALUE("default-resource", &io.default_resource),
                               CTL_FLAG("no-example", &io.no_example),
                               {0}};
    if (!ctl_options(argc, argv, opts))
        return EXIT_USAGE;
    if (optind == argc && c->config_given && io.listen == NULL && io.issuer == NULL &&
        io.plugin_dir == NULL)
        return init_config_state(c);
    if (optind != argc - 1) {
        fprintf(stderr, "mandatectl init: name the folder to create, e.g. mandatectl init ./state\n"
                        "  (or the configuration whose state to create: mandatectl -c FILE init)\n");
        return EXIT_USAGE;
    }
    io.dir = argv[optind];
    char *conf = NULL;
    mandate_error err = {0};
    if (mandate_state_init(&io, &conf, &err) != MANDATE_OK) {
        fprintf(stderr, "mandatectl init: %s\n", err.message);
        return EXIT_REFUSED;
    }
    if (c->json) {
        print_json(json_pack("{s:s,s:s}", "config", conf, "state_dir", io.dir));
    } else {
        printf("Initialised %s\n", io.dir);
        printf("Start the broker with:  mandated -c %s\n", conf);
    }
    free(conf);
    return 0;
}

/* --- config check ----------------------------------------------------------- */

/* What pushed authorization requests and the profile for regulated tenants
 * change under this configuration (a client's own profile: client show). */
static void explain_profile(const mandate_config *cfg)
{
    if (cfg->par.required)
        printf("par.required: every authorization request must come through /oauth2/par "
               "(request_uri, %llds)\n",
               (long long)cfg->par.lifetime);
    if (cfg->fapi2_tenants == NULL || cfg->fapi2_tenants[0] == NULL)
        return;
    printf("profile fapi2 for every client of tenant");
    for (char **t = cfg->fapi2_tenants; *t != NULL; t++)
        printf(" %s", *t);
    printf(":\n");
    for (const char *const *r = mandate_profile_fapi2_rules(); *r != NULL; r++)
        printf("  %s\n", *r);
}

static int cmd_config(ctl *c, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "check") != 0 || argc > 3) {
        fprintf(stderr, "Usage: mandatectl config check [FILE]\n");
        return EXIT_USAGE;
    }
    const char *path = argc == 3 ? argv[2] : c->config_path;
    mandate_diag diag = {0};
    mandate_config *cfg = NULL;
    mandate_runtime *rt = NULL;
    if (mandate_config_load(path, &cfg, &diag))
        mandate_runtime_create(cfg, MANDATE_RUNTIME_CHECK_ONLY, &rt, &diag);
    int status = rt != NULL ? 0 : EXIT_REFUSED;
    if (c->json) {
        json_t *errors = json_array();
        for (size_t i = 0; i < diag.count; i++)
            json_array_append_new(errors, json_string(diag.lines[i]));
        print_json(json_pack("{s:s,s:b,s:o}", "file", path, "ok", rt != NULL, "errors", errors));
    } else if (rt != NULL) {
        printf("%s: OK (%zu plugin instance%s)\n", path, mandate_runtime_instance_count(rt),
               mandate_runtime_instance_count(rt) == 1 ? "" : "s");
        explain_profile(mandate_runtime_config(rt));
    } else {
        for (size_t i = 0; i < diag.count; i++)
            fprintf(stderr, "%s\n", diag.lines[i]);
        fprintf(stderr, "%s: %zu error%s\n", path, diag.count, diag.count == 1 ? "" : "s");
    }
    mandate_runtime_unref(&rt);
    mandate_diag_free(&diag);
    return status;
}

/* --- plugins ---------------------------------------------------------------- */

typedef struct plugin_list {
    bool json;
    json_t *array;
    size_t refused;
} plugin_list;

static void list_one(void *ctx, const char *file, const mandate_plugin_handle *h,
                     const mandate_error *err)
{
    plugin_list *pl = ctx;
    if (h == NULL)
        pl->refused++;
    if (pl->json) {
        if (h != NULL)
            json_array_append_new(
                pl->array, json_pack("{s:s,s:s,s:s,s:s,s:i}", "name", h->plugin->name, "kind",
                                     mandate_plugin_kind_name(h->plugin->kind), "version",
                                     h->plugin->version, "file", file, "abi_minor",
                                     h->plugin->abi_minor));
        else
            json_array_append_new(pl->array,
                                  json_pack("{s:s,s:s}", "file", file, "error", err->message));
        return;
    }
    if (h != NULL)
        printf("%-10s %-16s %-10s %s\n", mandate_plugin_kind_name(h->plugin->kind),
               h->plugin->name, h->plugin->version, file);
    else
        printf("%-10s %-16s %-10s %s\n", "-", "(refused)", "-", err->message);
}

static int cmd_plugins(ctl *c, int argc, char **argv)
{
    const char *dir = NULL;
    const ctl_option opts[] = {CTL_VALUE("plugin-dir", &dir), {0}};
    if (!ctl_options(argc, argv, opts) ||
        !ctl_operands(argc, 0, true, "Usage: mandatectl plugins [--plugin-dir DIR]\n"))
        return EXIT_USAGE;
    mandate_config *cfg = NULL;
    if (dir == NULL) {
        /* the configured folder when the configuration loads, else the default */
        mandate_diag diag = {0};
        if (mandate_config_load(c->config_path, &cfg, &diag))
            dir = cfg->plugin_dir;
        else if (c->config_given)
            fprintf(stderr, "mandatectl: %s has errors; listing %s\n", c->config_path,
                    PLUGINDIR);
        mandate_diag_free(&diag);
        if (dir == NULL)
            dir = PLUGINDIR;
    }
    plugin_list pl = {.json = c->json, .array = json_array()};
    if (!c->json)
        printf("%-10s %-16s %-10s %s\n", "KIND", "NAME", "VERSION", "FILE");
    mandate_error err = {0};
    mandate_rc rc = mandate_plugin_scan(dir, list_one, &pl, &err);
    if (c->json)
        print_json(json_pack("{s:s,s:O}", "plugin_dir", dir, "plugins", pl.array));
    json_decref(pl.array);
    mandate_config_free(&cfg);
    if (rc != MANDATE_OK) {
        fprintf(stderr, "mandatectl plugins: %s\n", err.message);
        return EXIT_REFUSED;
    }
    return 0;
}

/* --- main ------------------------------------------------------------------- */

typedef struct command {
    const char *name;
    int (*run)(ctl *c, int argc, char **argv);
} command;

static const command commands[] = {
    {"init", cmd_init},
    {"config", cmd_config},
    {"plugins", cmd_plugins},
    {"client", ctl_cmd_client},
    {"keys", ctl_cmd_keys},
    {"token", ctl_cmd_token},
    {"audit", ctl_cmd_audit},
    {"migrate", ctl_cmd_migrate},
    {"mapping", ctl_cmd_mapping},
    {"user", ctl_cmd_user},
    {"apply", ctl_cmd_apply},
    {"saml", ctl_cmd_saml},
    {"delegation", ctl_cmd_delegation},
};

int main(int argc, char **argv)
{
    static const struct option long_opts[] = {{"config", required_argument, NULL, 'c'},
                                              {"json", no_argument, NULL, 'j'},
                                              {"help", no_argument, NULL, 'h'},
                                              {"version", no_argument, NULL, 'V'},
                                              {NULL, 0, NULL, 0}};
    ctl c = {0};
    const char *cli_config = NULL;
    int opt;
    /* '+': stop at the command; its own options follow it */
    while ((opt = getopt_long(argc, argv, "+c:hV", long_opts, NULL)) != -1) {
        switch (opt) {
        case 'c': cli_config = optarg; break;
        case 'j': c.json = true; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("mandatectl %s\n", PACKAGE_VERSION); return 0;
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    c.config_path = mandate_config_default_path(cli_config);
    c.config_given = cli_config != NULL || getenv("MANDATE_CONF") != NULL;
    /* warnings only: errors are the commands' to print */
    mandate_log_setup("stderr", MANDATE_LOG_WARNING, "mandatectl");

    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(commands[i].name, argv[optind]) == 0)
        {
            int status = commands[i].run(&c, argc - optind, argv + optind);
            mandate_audit_events_stop(); /* syncs the records of this command */
            return status;
        }
    fprintf(stderr, "mandatectl: unknown command '%s'; see mandatectl --help\n", argv[optind]);
    return EXIT_USAGE;
}
