/* mandatectl client: create, list, show, enable, disable, delete,
 * rotate-secret, import. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "audit-events-private.h"
#include "client-documents-private.h"
#include "clients-private.h"
#include "clock-private.h"
#include "ctl-private.h"
#include "delegation-private.h"
#include "dpop-binding-private.h"
#include "mtls-private.h"
#include "oauth-private.h"
#include "grant-claims.h"
#include "profile-private.h"
#include "plugins-private.h"
#include "pool-private.h"
#include "util-private.h"

#define PUBLIC_KEY_MAX (16 * 1024)
#define IMPORT_FILE_MAX (512u * 1024 * 1024)

static const char *status_name(mandate_client_status s)
{
    return s == MANDATE_CLIENT_ENABLED ? "enabled" : "disabled";
}

static json_t *client_json(const mandate_client *c)
{
    char t1[32], t2[32];
    json_t *o = json_pack("{s:s,s:s,s:s}", "client_id", c->client_id, "tenant", c->tenant,
                          "status", status_name(c->status));
    json_object_set_new(o, "name", c->name ? json_string(c->name) : json_null());
    json_object_set_new(o, "scope", json_string(c->scopes ? c->scopes : ""));
    json_object_set_new(o, "default_scope", json_string(c->default_scopes ? c->default_scopes : ""));
    json_object_set_new(o, "audience", json_string(c->audiences ? c->audiences : ""));
    json_object_set_new(o, "ttl", json_integer(c->token_ttl));
    json_object_set_new(o, "backend", c->backend ? json_string(c->backend) : json_null());
    json_object_set_new(o, "format", c->token_format ? json_string(c->token_format) : json_null());
    json_t *meta = c->metadata ? json_loads(c->metadata, 0, NULL) : NULL;
    json_object_set_new(o, "auth", json_string(mandate_client_registered_auth(c)));
    /* what sign-in needs (issue 22): where codes may be sent, and how */
    static const char *const shown[] = {"redirect_uris", "grant_types", "initiate_login_uri",
                                        "registered_by", NULL};
    for (const char *const *m = shown; *m != NULL; m++)
        if (json_object_get(meta, *m) != NULL)
            json_object_set(o, *m, json_object_get(meta, *m));
    json_decref(meta);
    /* RFC 9449 §5.2, named only when set */
    if (mandate_dpop_client_bound(c))
        json_object_set_new(o, "dpop_bound", json_true());
    json_object_set_new(o, "introspect", json_boolean(c->flags & MANDATE_CLIENT_CAN_INTROSPECT));
    json_object_set_new(o, "rate_limit", json_real(c->rate_limit));
    json_object_set_new(o, "rate_burst", json_integer(c->rate_burst));
    if (c->prev_secret_expires_at > mandate_clock_now())
        json_object_set_new(o, "previous_secret_valid_until",
                            json_string(ctl_time(c->prev_secret_expires_at, t1)));
    json_object_set_new(o, "created", json_string(ctl_time(c->created_at, t1)));
    json_object_set_new(o, "updated", json_string(ctl_time(c->updated_at, t2)));
    return o;
}

/* What an audit record says of a client: its settings, never a secret. */
json_t *ctl_client_audit_fields(const mandate_client *c)
{
    json_t *o = client_json(c);
    json_object_del(o, "created");
    json_object_del(o, "updated");
    json_object_del(o, "previous_secret_valid_until");
    return o;
}

/* What the profile for regulated tenants (its own or its tenant's) and
 * pushed authorization requests change for client c, added to o. */
static void add_profile(json_t *o, const mandate_config *cfg, const mandate_client *c)
{
    if (mandate_profile_fapi2(cfg, c)) {
        json_object_set_new(o, "profile", json_string(MANDATE_PROFILE_FAPI2));
        json_t *rules = json_array();
        for (const char *const *r = mandate_profile_fapi2_rules(); *r != NULL; r++)
            json_array_append_new(rules, json_string(*r));
        json_object_set_new(o, "profile_rules", rules);
    }
    if (mandate_profile_par_required(cfg, c))
        json_object_set_new(o, "require_par", json_true());
}

/* o (stolen) as lines "key value"; a list of sentences one a line */
static void print_client(json_t *o)
{
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        if (json_is_string(v))
            printf("%-16s %s\n", key, json_string_value(v));
        else if (json_is_real(v))
            printf("%-16s %g\n", key, json_real_value(v));
        else if (json_is_integer(v))
            printf("%-16s %lld\n", key, (long long)json_integer_value(v));
        else if (json_is_boolean(v))
            printf("%-16s %s\n", key, json_is_true(v) ? "yes" : "no");
        else if (json_is_array(v)) {
            size_t i;
            json_t *item;
            printf("%-16s", key);
            json_array_foreach(v, i, item)
            {
                const char *text = json_is_string(item) ? json_string_value(item) : "?";
                printf(strchr(text, ' ') != NULL ? "\n  %s" : " %s", text);
            }
            printf("\n");
        } else
            printf("%-16s -\n", key);
    }
    json_decref(o);
}

/* arg as a whole number from min to max into *out; false if it is not. */
static bool whole_number(const char *arg, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    errno = 0;
    *out = strtoll(arg, &end, 10);
    return errno == 0 && *end == '\0' && *out >= min && *out <= max;
}

/* --rate and --burst, shared by create and set; false: a usage error, said. */
static bool parse_rate(int opt, const char *arg, double *rate, int64_t *burst)
{
    char *end;
    errno = 0;
    if (opt == 'r') {
        *rate = strtod(arg, &end);
        if (errno == 0 && end != arg && *end == '\0' && *rate >= 0 &&
            *rate <= MANDATE_CLIENT_RATE_MAX)
            return true;
        fprintf(stderr, "mandatectl: --rate takes requests per second, 0 to 1000000 "
                        "(0: the configured default)\n");
        return false;
    }
    *burst = strtoll(arg, &end, 10);
    if (errno == 0 && end != arg && *end == '\0' && *burst >= 0 &&
        *burst <= MANDATE_CLIENT_BURST_MAX)
        return true;
    fprintf(stderr, "mandatectl: --burst takes a number of requests, 0 to 1000000 "
                    "(0: the configured default)\n");
    return false;
}

static char *read_public_key(const char *path)
{
    return ctl_read_file("mandatectl", path, PUBLIC_KEY_MAX, NULL);
}

/* The secret alone in a new file only its owner can read. */
bool ctl_write_secret_file(const char *path, const char *secret)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "mandatectl: %s: %s\n", path, strerror(errno));
        return false;
    }
    size_t len = strlen(secret);
    bool ok = write(fd, secret, len) == (ssize_t)len && write(fd, "\n", 1) == 1 &&
              fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok) {
        fprintf(stderr, "mandatectl: %s: %s\n", path, strerror(errno));
        unlink(path);
    }
    return ok;
}

/* Appends a repeated option's value to *list (made on first use). */
void ctl_add_word(char **list, const char *word)
{
    char *joined = *list ? mandate_xasprintf("%s %s", *list, word) : mandate_xstrdup(word);
    free(*list);
    *list = joined;
}

static void add_value(json_t **list, const char *value)
{
    if (*list == NULL)
        *list = json_array();
    json_array_append_new(*list, json_string(value));
}

/* The client id, to change: "no client" named when there is none. */
static mandate_rc client_to_change(const mandate_instance *store, mandate_pool *pool,
                                   const char *id, mandate_client *cl, mandate_error *err)
{
    mandate_rc rc = mandate_store_client_get(store, pool, id, cl, err);
    if (rc == MANDATE_NOT_FOUND)
        mandate_error_set(err, rc, "no client '%s'", id);
    return rc;
}

/* A JSON object's text (NULL: {}) with member name set to value (stolen),
 * or removed when value is NULL; malloc'd. */
static char *with_member(const char *text, const char *name, json_t *value)
{
    json_t *o = text != NULL ? json_loads(text, 0, NULL) : NULL;
    if (!json_is_object(o)) {
        json_decref(o);
        o = json_object();
    }
    if (value != NULL)
        json_object_set_new(o, name, value);
    else
        json_object_del(o, name);
    char *out = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return out;
}

static char *with_dpop_bound(const char *text, bool on)
{
    return with_member(text, "dpop_bound_access_tokens", on ? json_true() : NULL);
}

/* A member of client set (--dpop-bound, --profile, --require-par): in the
 * client's metadata when it has one, else in its attributes; value stolen,
 * NULL or false to remove it; audited; said (NULL: the member and its
 * value) printed. */
static mandate_rc set_member(ctl *c, mandate_runtime *rt, const char *id, const char *name,
                             json_t *value, const char *said, mandate_error *err)
{
    const mandate_instance *store = mandate_runtime_store(rt);
    mandate_pool *pool = mandate_pool_new();
    mandate_client cl;
    char *changed = NULL;
    json_t *kept = json_is_false(value) ? NULL : value;
    mandate_rc rc = client_to_change(store, pool, id, &cl, err);
    if (rc == MANDATE_OK) {
        if (cl.metadata != NULL)
            cl.metadata = changed = with_member(cl.metadata, name, json_incref(kept));
        else
            cl.attributes = changed = with_member(cl.attributes, name, json_incref(kept));
        cl.updated_at = 0;
        rc = mandate_store_client_update(store, &cl, err);
    }
    if (rc == MANDATE_OK) {
        if (!ctl_audit("client.updated", json_pack("{s:s,s:O}", "client_id", id, name,
                                                   value ? value : json_null())))
            rc = mandate_error_set(err, MANDATE_ERROR, "the change is not in the audit trail");
        else if (!c->json && said != NULL)
            printf("client %s: %s\n", id, said);
        else if (!c->json) {
            char *shown = kept ? json_dumps(kept, JSON_ENCODE_ANY) : NULL;
            printf("client %s: %s %s\n", id, name, shown ? shown : "removed");
            free(shown);
        }
    }
    json_decref(value);
    free(changed);
    mandate_pool_free(&pool);
    return rc;
}

/* --may-act of client set: the clients that may act for this one's tokens
 * (RFC 8693 §4.4 may_act in each token issued to it), in its attributes;
 * an empty list takes them away. */
static mandate_rc set_may_act(ctl *c, mandate_runtime *rt, const char *id, json_t *actors,
                              mandate_error *err)
{
    const mandate_instance *store = mandate_runtime_store(rt);
    mandate_pool *pool = mandate_pool_new();
    mandate_client cl;
    char *changed = NULL;
    mandate_rc rc = client_to_change(store, pool, id, &cl, err);
    if (rc == MANDATE_OK && json_array_size(actors) > MANDATE_GRANT_MAX_MAY_ACT)
        rc = mandate_error_set(err, MANDATE_INVALID, "at most %d actors",
                               MANDATE_GRANT_MAX_MAY_ACT);
    if (rc == MANDATE_OK) {
        json_t *o = cl.attributes != NULL ? json_loads(cl.attributes, 0, NULL) : NULL;
        if (!json_is_object(o)) {
            json_decref(o);
            o = json_object();
        }
        if (json_array_size(actors) > 0)
            json_object_set(o, "may_act", actors);
        else
            json_object_del(o, "may_act");
        cl.attributes = changed = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        cl.updated_at = 0;
        rc = mandate_store_client_update(store, &cl, err);
    }
    if (rc == MANDATE_OK) {
        if (!ctl_audit("client.updated",
                       json_pack("{s:s,s:O}", "client_id", id, "may_act", actors)))
            rc = mandate_error_set(err, MANDATE_ERROR, "the change is not in the audit trail");
        else if (!c->json) {
            char *list = json_dumps(actors, JSON_COMPACT);
            printf("client %s: may act for its tokens: %s\n", id,
                   json_array_size(actors) > 0 ? list : "none but the rules");
            free(list);
        }
    }
    free(changed);
    mandate_pool_free(&pool);
    return rc;
}

/* --dpop-bound or --no-dpop-bound of client set */
static mandate_rc set_dpop_bound(ctl *c, mandate_runtime *rt, const char *id, bool on,
                                 mandate_error *err)
{
    return set_member(c, rt, id, "dpop_bound_access_tokens", json_boolean(on),
                      on ? "DPoP-bound access tokens only" : "bearer tokens allowed", err);
}

/* The client's metadata (RFC 7591 §2) from --redirect-uri and --grant-type,
 * over what it had (base, may be NULL), checked as every client's is; a
 * malloc'd JSON text, or NULL with why on stderr. redirect_uris and
 * grant_types replace the old lists when given (NULL: kept). */
char *ctl_client_metadata(const char *verb, const char *base, json_t *redirect_uris,
                          json_t *grant_types, const char *auth_method)
{
    json_t *meta = base != NULL ? json_loads(base, 0, NULL) : NULL;
    if (!json_is_object(meta)) {
        json_decref(meta);
        meta = json_object();
    }
    const char *registered_by = json_string_value(json_object_get(meta, "registered_by"));
    char *kept_by = registered_by ? strdup(registered_by) : NULL;
    if (redirect_uris != NULL)
        json_object_set(meta, "redirect_uris", redirect_uris);
    if (grant_types != NULL)
        json_object_set(meta, "grant_types", grant_types);
    if (json_object_get(meta, "token_endpoint_auth_method") == NULL)
        json_object_set_new(meta, "token_endpoint_auth_method", json_string(auth_method));
    char *text = json_dumps(meta, JSON_COMPACT);
    json_decref(meta);
    json_t *checked = NULL;
    const char *oauth_error;
    mandate_error err = {0};
    char *out = NULL;
    if (mandate_client_metadata_check(text, strlen(text), MANDATE_REGISTRATION_MAX_BYTES,
                                      MANDATE_METADATA_ADMIN, NULL, &checked, &oauth_error,
                                      &err) != MANDATE_OK) {
        fprintf(stderr, "mandatectl %s: %s\n", verb, err.message);
    } else {
        /* a registered client edited by an admin was still registered so */
        if (kept_by != NULL)
            json_object_set_new(checked, "registered_by", json_string(kept_by));
        out = json_dumps(checked, JSON_COMPACT);
    }
    json_decref(checked);
    free(text);
    free(kept_by);
    return out;
}

static int client_create(ctl *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"prefix", required_argument, NULL, 'p'},   {"scope", required_argument, NULL, 's'},
        {"default-scope", required_argument, NULL, 'd'},
        {"audience", required_argument, NULL, 'a'}, {"ttl", required_argument, NULL, 't'},
        {"tenant", required_argument, NULL, 'T'},   {"name", required_argument, NULL, 'n'},
        {"format", required_argument, NULL, 'f'},   {"backend", required_argument, NULL, 'b'},
        {"public-key", required_argument, NULL, 'k'},
        {"introspect", no_argument, NULL, 'i'},     {"secret-file", required_argument, NULL, 'S'},
        {"rate", required_argument, NULL, 'r'},     {"burst", required_argument, NULL, 'B'},
        {"kms-key-id", required_argument, NULL, 'K'},
        {"redirect-uri", required_argument, NULL, 'R'},
        {"grant-type", required_argument, NULL, 'G'},
        {"public", no_argument, NULL, 'P'},
        {"dpop-bound", no_argument, NULL, 'D'},
        CTL_MTLS_OPTIONS,
        {NULL, 0, NULL, 0}};
    mandate_client_spec spec = {0};
    ctl_mtls mtls = CTL_MTLS_INIT;
    bool dpop_bound = false;
    const char *key_file = NULL, *secret_file = NULL, *kms_key_id = NULL;
    char *audiences = NULL;
    json_t *redirect_uris = NULL, *grant_types = NULL;
    int opt;
    optind = 0;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'p': spec.prefix = optarg; break;
        case 's': spec.scopes = optarg; break;
        case 'd': spec.default_scopes = optarg; break;
        case 'a': ctl_add_word(&audiences, optarg); break; /* repeatable */
        case 't':
            if (!whole_number(optarg, 1, INT64_MAX, &spec.ttl)) {
                fprintf(stderr, "mandatectl: --ttl takes a number of seconds\n");
                goto usage;
            }
            break;
        case 'T': spec.tenant = optarg; break;
        case 'n': spec.name = optarg; break;
        case 'f': spec.token_format = optarg; break;
        case 'b': spec.backend = optarg; break;
        case 'k': key_file = optarg; break;
        case 'i': spec.can_introspect = true; break;
        case 'S': secret_file = optarg; break;
        case 'K': kms_key_id = optarg; break;
        case 'R': add_value(&redirect_uris, optarg); break;
        case 'G': add_value(&grant_types, optarg); break;
        case 'P': spec.public_client = true; break;
        case 'D': dpop_bound = true; break;
        case 'r':
        case 'B':
            if (!parse_rate(opt, optarg, &spec.rate_limit, &spec.rate_burst))
                goto usage;
            break;
        default:
            if (!ctl_mtls_option(&mtls, opt, optarg))
                goto usage;
        }
    }
    if (optind < argc - 1) {
        fprintf(stderr, "Usage: mandatectl client create [ID] [OPTIONS]\n");
        goto usage;
    }
    if (spec.public_client && (key_file != NULL || secret_file != NULL ||
                               spec.backend != NULL || kms_key_id != NULL)) {
        fprintf(stderr, "mandatectl: a --public client has no secret and no key: no "
                        "--public-key, --secret-file, --backend or --kms-key-id\n");
        goto usage;
    }
    if (mtls.auth != NULL && (spec.public_client || key_file != NULL || secret_file != NULL ||
                              spec.backend != NULL || kms_key_id != NULL)) {
        fprintf(stderr, "mandatectl: a client of --auth %s has its certificate and no "
                        "secret or key: no --public, --public-key, --secret-file, --backend "
                        "or --kms-key-id\n", mtls.auth);
        goto usage;
    }
    spec.certificate_client = mtls.auth != NULL;
    if ((spec.public_client || grant_types != NULL) && redirect_uris == NULL) {
        /* a public client's one grant is the authorization code's */
        fprintf(stderr, "mandatectl: --public and --grant-type go with --redirect-uri\n");
        goto usage;
    }
    if (optind == argc - 1)
        spec.client_id = argv[optind];
    spec.audiences = audiences;
    if (kms_key_id != NULL && (spec.backend == NULL || key_file != NULL)) {
        /* only a backend that stores secrets elsewhere reads it: say which */
        fprintf(stderr, "mandatectl: --kms-key-id goes with --backend (e.g. secretsmanager) "
                        "and a secret, not with --public-key\n");
        goto usage;
    }
    char *metadata = NULL;
    if (redirect_uris != NULL &&
        (metadata = ctl_client_metadata("client create", NULL, redirect_uris, grant_types,
                                   spec.public_client ? "none"
                                   : mtls.auth        ? mtls.auth
                                   : key_file         ? "private_key_jwt"
                                                      : "client_secret_basic")) == NULL) {
        json_decref(redirect_uris);
        json_decref(grant_types);
        free(audiences);
        return CTL_REFUSED;
    }
    json_decref(redirect_uris);
    json_decref(grant_types);
    /* RFC 9449 §5.2: in the metadata when it has one, else an attribute */
    if (dpop_bound && metadata != NULL) {
        char *bound = with_dpop_bound(metadata, true);
        free(metadata);
        metadata = bound;
    }
    spec.metadata = metadata;
    /* passed to the backend in the client's attributes */
    json_t *attrs = kms_key_id ? json_pack("{s:s}", "kms_key_id", kms_key_id) : NULL;
    if (dpop_bound && metadata == NULL) {
        if (attrs == NULL)
            attrs = json_object();
        json_object_set_new(attrs, "dpop_bound_access_tokens", json_true());
    }
    char *attributes = attrs ? json_dumps(attrs, JSON_COMPACT) : NULL;
    json_decref(attrs);
    if (mtls.any) {
        /* RFC 8705: the certificate the client is known by, in its
         * attributes; --cert-bound alone in its metadata when it has some,
         * as --dpop-bound (a public client has no attributes) */
        char **into = mtls.auth == NULL && metadata != NULL ? &metadata : &attributes;
        char *with_mtls = ctl_mtls_attributes(&mtls, *into);
        free(*into);
        *into = with_mtls;
        if (with_mtls == NULL) {
            free(attributes);
            free(audiences);
            free(metadata);
            return CTL_REFUSED;
        }
        spec.metadata = metadata;
    }
    spec.attributes = attributes;
    char *pem = NULL;
    if (key_file != NULL && (pem = read_public_key(key_file)) == NULL) {
        free(attributes);
        free(audiences);
        free(metadata);
        return CTL_REFUSED;
    }
    spec.public_key_pem = pem;

    int status = CTL_REFUSED;
    mandate_runtime *rt = ctl_runtime_for_change(c, MANDATE_RUNTIME_MIGRATE);
    mandate_pool *pool = mandate_pool_new();
    mandate_client client;
    char *secret = NULL;
    mandate_error err = {0};
    if (rt != NULL && mandate_clients_create(rt, pool, &spec, &client, &secret, &err) !=
                          MANDATE_OK) {
        fprintf(stderr, "mandatectl client create: %s\n", err.message);
    } else if (rt != NULL && secret != NULL && secret_file != NULL &&
               !ctl_write_secret_file(secret_file, secret)) {
        /* nobody could ever learn this client's secret: take it back */
        mandate_store_client_delete(mandate_runtime_store(rt), client.client_id, &err);
    } else if (rt != NULL && !ctl_audit("client.created", ctl_client_audit_fields(&client))) {
        status = CTL_REFUSED;
    } else if (rt != NULL) {
        status = CTL_OK;
        bool show_secret = secret != NULL && secret_file == NULL;
        if (c->json) {
            json_t *o = client_json(&client);
            if (show_secret)
                json_object_set_new(o, "client_secret", json_string(secret));
            ctl_print_json(o);
        } else {
            printf("client_id: %s\n", client.client_id);
            if (show_secret)
                printf("client_secret: %s\n", secret);
        }
        if (show_secret)
            fprintf(stderr, "mandatectl: the secret is shown only now: store it safely\n");
        else if (secret != NULL)
            fprintf(stderr, "mandatectl: the secret is in %s (mode 0600)\n", secret_file);
        else if (spec.public_client)
            fprintf(stderr, "mandatectl: a public client has no secret: none was made\n");
    }
    if (secret != NULL)
        OPENSSL_cleanse(secret, strlen(secret));
    mandate_pool_free(&pool);
    mandate_runtime_unref(&rt);
    free(pem);
    free(attributes);
    free(audiences);
    free(metadata);
    return status;
usage:
    json_decref(redirect_uris);
    json_decref(grant_types);
    free(audiences);
    return CTL_USAGE;
}

typedef struct list_ctx {
    bool json;
    json_t *array;
    size_t count;
} list_ctx;

static mandate_rc list_one(void *ctx, const mandate_client *cl)
{
    list_ctx *l = ctx;
    l->count++;
    if (l->json) {
        json_array_append_new(l->array, client_json(cl));
    } else {
        printf("%-32s %-12s %-9s %s\n", cl->client_id, cl->tenant, status_name(cl->status),
               cl->scopes ? cl->scopes : "");
    }
    return MANDATE_OK;
}

static int client_list(ctl *c, mandate_runtime *rt, int argc, char **argv)
{
    mandate_client_filter filter = {0};
    const ctl_option opts[] = {CTL_VALUE("tenant", &filter.tenant), {0}};
    if (!ctl_options(argc, argv, opts))
        return CTL_USAGE;
    list_ctx l = {.json = c->json, .array = json_array()};
    if (!c->json)
        printf("%-32s %-12s %-9s %s\n", "CLIENT_ID", "TENANT", "STATUS", "SCOPES");
    mandate_error err = {0};
    mandate_rc rc =
        mandate_store_client_list(mandate_runtime_store(rt), &filter, list_one, &l, &err);
    if (c->json)
        ctl_print_json(json_incref(l.array));
    json_decref(l.array);
    if (rc != MANDATE_OK) {
        fprintf(stderr, "mandatectl client list: %s\n", err.message);
        return CTL_REFUSED;
    }
    return CTL_OK;
}

/* metadata (JSON text, may be NULL) with initiate_login_uri set to uri, or
 * removed when uri is "": the result is checked by ctl_client_metadata. */
static const char *with_initiate_login_uri(mandate_pool *pool, const char *metadata,
                                           const char *uri)
{
    json_t *meta = metadata != NULL ? json_loads(metadata, 0, NULL) : NULL;
    if (!json_is_object(meta)) {
        json_decref(meta);
        meta = json_object();
    }
    if (uri[0] == '\0')
        json_object_del(meta, "initiate_login_uri");
    else
        json_object_set_new(meta, "initiate_login_uri", json_string(uri));
    char *text = json_dumps(meta, JSON_COMPACT);
    json_decref(meta);
    const char *out = mandate_pool_strdup(pool, text != NULL ? text : "{}");
    free(text);
    return out;
}

/* The redirect URIs and grant types of a client (its metadata), replaced;
 * its initiate_login_uri set (NULL: kept, "": removed). */
static mandate_rc set_metadata(ctl *c, mandate_runtime *rt, const char *id,
                               json_t *redirect_uris, json_t *grant_types,
                               const char *initiate_login_uri, mandate_error *err)
{
    const mandate_instance *store = mandate_runtime_store(rt);
    mandate_pool *pool = mandate_pool_new();
    mandate_client cl;
    char *metadata = NULL;
    mandate_rc rc = client_to_change(store, pool, id, &cl, err);
    if (rc == MANDATE_OK) {
        const char *base = cl.metadata;
        if (initiate_login_uri != NULL)
            base = with_initiate_login_uri(pool, base, initiate_login_uri);
        /* a client without metadata is a machine client: confidential */
        metadata = ctl_client_metadata("client set", base, redirect_uris, grant_types,
                                  cl.public_key ? "private_key_jwt" : "client_secret_basic");
        if (metadata == NULL)
            rc = mandate_error_set(err, MANDATE_INVALID, "nothing changed");
    }
    if (rc == MANDATE_OK) {
        cl.metadata = metadata;
        cl.updated_at = 0;
        rc = mandate_store_client_update(store, &cl, err);
    }
    if (rc == MANDATE_OK) {
        json_t *fields = ctl_client_audit_fields(&cl);
        if (!ctl_audit("client.updated", fields))
            rc = mandate_error_set(err, MANDATE_ERROR, "the change is not in the audit trail");
        else if (!c->json)
            printf("client %s: %s set\n", id,
                   redirect_uris != NULL || grant_types != NULL
                       ? "redirect URIs and grant types"
                       : "initiate_login_uri");
    }
    free(metadata);
    mandate_pool_free(&pool);
    return rc;
}

static int client_set(ctl *c, mandate_runtime *rt, const char *id, int argc, char **argv)
{
    static const struct option opts[] = {{"rate", required_argument, NULL, 'r'},
                                         {"burst", required_argument, NULL, 'B'},
                                         {"redirect-uri", required_argument, NULL, 'R'},
                                         {"grant-type", required_argument, NULL, 'G'},
                                         {"dpop-bound", no_argument, NULL, 'D'},
                                         {"no-dpop-bound", no_argument, NULL, 'N'},
                                         {"initiate-login-uri", required_argument, NULL, 'I'},
                                         {"may-act", required_argument, NULL, 'M'},
                                         {"no-may-act", no_argument, NULL, 'X'},
                                         CTL_MTLS_OPTIONS,
                                         {"profile", required_argument, NULL, 'P'},
                                         {"require-par", no_argument, NULL, 'Q'},
                                         {"no-require-par", no_argument, NULL, 'q'},
                                         {NULL, 0, NULL, 0}};
    ctl_mtls mtls = CTL_MTLS_INIT;
    int dpop = -1;          /* -1: unchanged */
    json_t *may_act = NULL; /* NULL: unchanged; [] (--no-may-act): none */
    int require_par = -1;
    const char *profile = NULL;
    double rate = 0;
    int64_t burst = 0;
    bool any_rate = false;
    json_t *redirect_uris = NULL, *grant_types = NULL;
    const char *initiate_login_uri = NULL;
    int opt, status = CTL_USAGE;
    mandate_error err = {0};
    optind = 0;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (opt == 'I') {
            initiate_login_uri = optarg;
        } else if (opt == 'D' || opt == 'N') {
            dpop = opt == 'D';
        } else if (opt == 'Q' || opt == 'q') {
            require_par = opt == 'Q';
        } else if (opt == 'P' && (strcmp(optarg, MANDATE_PROFILE_FAPI2) == 0 ||
                                  strcmp(optarg, "none") == 0)) {
            profile = optarg;
        } else if (opt == 'M' && mandate_client_id_valid(optarg)) {
            add_value(&may_act, optarg);
        } else if (opt == 'X' && may_act == NULL) {
            may_act = json_array();
        } else if (opt == 'M') {
            fprintf(stderr, "mandatectl client set: --may-act '%.80s' is not a client id\n",
                    optarg);
            goto done;
        } else if (opt == 'R') {
            add_value(&redirect_uris, optarg);
        } else if (opt == 'G') {
            add_value(&grant_types, optarg);
        } else if ((opt == 'r' || opt == 'B') && parse_rate(opt, optarg, &rate, &burst)) {
            any_rate = true;
        } else if (!ctl_mtls_option(&mtls, opt, optarg)) {
            goto done;
        }
    }
    if ((!any_rate && redirect_uris == NULL && grant_types == NULL && dpop < 0 && !mtls.any &&
         initiate_login_uri == NULL && may_act == NULL && require_par < 0 && profile == NULL) ||
        optind != argc) {
        fprintf(stderr, "Usage: mandatectl client set ID [--rate R --burst B] "
                        "[--redirect-uri URI]... [--grant-type T]... "
                        "[--dpop-bound|--no-dpop-bound] [--auth METHOD --tls-...] "
                        "[--cert-bound|--no-cert-bound] [--initiate-login-uri URI|\"\"] "
                        "[--may-act ACTOR...|--no-may-act] [--profile fapi2|none] "
                        "[--require-par|--no-require-par]\n");
        goto done;
    }
    status = CTL_REFUSED;
    if ((redirect_uris != NULL || grant_types != NULL || initiate_login_uri != NULL) &&
        set_metadata(c, rt, id, redirect_uris, grant_types, initiate_login_uri, &err) !=
            MANDATE_OK) {
        fprintf(stderr, "mandatectl client set: %s\n", err.message);
        goto done;
    }
    if (mtls.any && ctl_mtls_set(c, rt, id, &mtls) != CTL_OK)
        goto done;
    if (dpop >= 0 && set_dpop_bound(c, rt, id, dpop == 1, &err) != MANDATE_OK) {
        fprintf(stderr, "mandatectl client set: %s\n", err.message);
        goto done;
    }
    if (may_act != NULL && set_may_act(c, rt, id, may_act, &err) != MANDATE_OK) {
        fprintf(stderr, "mandatectl client set: %s\n", err.message);
        goto done;
    }
    if ((profile != NULL &&
         set_member(c, rt, id, "profile",
                    strcmp(profile, "none") != 0 ? json_string(profile) : NULL, NULL,
                    &err) != MANDATE_OK) ||
        (require_par >= 0 &&
         set_member(c, rt, id, "require_pushed_authorization_requests",
                    require_par ? json_true() : NULL, NULL, &err) != MANDATE_OK)) {
        fprintf(stderr, "mandatectl client set: %s\n", err.message);
        goto done;
    }
    if (any_rate) {
        if (mandate_clients_set_rate(rt, id, rate, burst, &err) != MANDATE_OK) {
            fprintf(stderr, "mandatectl client set: %s\n", err.message);
            goto done;
        }
        if (!ctl_audit("client.updated",
                       json_pack("{s:s,s:f,s:I}", "client_id", id, "rate_limit", rate,
                                 "rate_burst", (json_int_t)burst)))
            goto done;
        if (!c->json)
            printf("client %s: rate %g/s, burst %lld%s\n", id, rate, (long long)burst,
                   rate == 0 ? " (0: the configured default)" : "");
    }
    status = CTL_OK;
done:
    json_decref(redirect_uris);
    json_decref(grant_types);
    json_decref(may_act);
    return status;
}

/* Revokes every token handed down from client id's tokens, to other
 * clients (a disabled or deleted client's own go with it: validation
 * checks the client). */
static mandate_rc revoke_handed_down(mandate_runtime *rt, const char *id, uint64_t *count_r,
                                     mandate_error *err)
{
    mandate_pool *pool = mandate_pool_new();
    mandate_rc rc = mandate_store_revoke_descendants(
        mandate_runtime_store(rt), mandate_delegation_client_root(pool, id), count_r, err);
    mandate_pool_free(&pool);
    return rc;
}

static int client_by_id(ctl *c, mandate_runtime *rt, const char *verb, const char *id,
                        int argc, char **argv)
{
    mandate_error err = {0};
    mandate_rc rc;
    if (strcmp(verb, "show") == 0) {
        mandate_pool *pool = mandate_pool_new();
        mandate_client cl;
        rc = mandate_store_client_get(mandate_runtime_store(rt), pool, id, &cl, &err);
        if (rc == MANDATE_OK) {
            json_t *o = client_json(&cl);
            add_profile(o, mandate_runtime_config(rt), &cl);
            if (c->json)
                ctl_print_json(o);
            else
                print_client(o);
        } else if (rc == MANDATE_NOT_FOUND) {
            mandate_error_set(&err, rc, "no client '%s'", id);
        }
        mandate_pool_free(&pool);
    } else if (strcmp(verb, "enable") == 0 || strcmp(verb, "disable") == 0) {
        bool enable = verb[0] == 'e';
        rc = mandate_clients_set_status(
            rt, id, enable ? MANDATE_CLIENT_ENABLED : MANDATE_CLIENT_DISABLED, &err);
        uint64_t descendants = 0;
        if (rc == MANDATE_OK && !enable)
            rc = revoke_handed_down(rt, id, &descendants, &err);
        if (rc == MANDATE_OK &&
            !ctl_audit(enable ? "client.enabled" : "client.disabled",
                       enable ? json_pack("{s:s}", "client_id", id)
                              : json_pack("{s:s,s:I}", "client_id", id, "descendants",
                                          (json_int_t)descendants)))
            return CTL_REFUSED;
        if (rc == MANDATE_OK && !c->json && enable)
            printf("client %s enabled\n", id);
        else if (rc == MANDATE_OK && !c->json)
            printf("client %s disabled; %llu token%s in delegation chains below it revoked\n", id,
                   (unsigned long long)descendants, descendants == 1 ? "" : "s");
    } else if (strcmp(verb, "delete") == 0) {
        rc = mandate_store_client_delete(mandate_runtime_store(rt), id, &err);
        /* as for disable (a client created again under this id does not
         * bring its own back: validation refuses a token older than its
         * client) */
        uint64_t descendants = 0;
        if (rc == MANDATE_OK)
            rc = revoke_handed_down(rt, id, &descendants, &err);
        if (rc == MANDATE_OK &&
            !ctl_audit("client.deleted", json_pack("{s:s,s:I}", "client_id", id, "descendants",
                                                   (json_int_t)descendants)))
            return CTL_REFUSED;
        if (rc == MANDATE_NOT_FOUND)
            mandate_error_set(&err, rc, "no client '%s'", id);
        else if (rc == MANDATE_OK && !c->json)
            printf("client %s deleted; %llu token%s in delegation chains below it revoked\n", id,
                   (unsigned long long)descendants, descendants == 1 ? "" : "s");
    } else if (strcmp(verb, "set") == 0) {
        return client_set(c, rt, id, argc, argv);
    } else { /* rotate-secret */
        static const struct option opts[] = {{"grace", required_argument, NULL, 'g'},
                                             {NULL, 0, NULL, 0}};
        int64_t grace = MANDATE_DEFAULT_SECRET_GRACE;
        int opt;
        optind = 0;
        while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
            if (opt != 'g' || !whole_number(optarg, 0, 30 * 86400, &grace)) {
                fprintf(stderr, "mandatectl: --grace takes 0 to 2592000 seconds\n");
                return CTL_USAGE;
            }
        }
        mandate_pool *pool = mandate_pool_new();
        char *secret = NULL;
        int64_t applied = grace;
        rc = mandate_clients_rotate_secret(rt, pool, id, grace, &secret, &applied, &err);
        /* -1: the backend keeps the old secret (null in the audit record and --json) */
        json_t *grace_json = applied < 0 ? json_null() : json_integer((json_int_t)applied);
        if (rc == MANDATE_OK && !ctl_audit("client.secret_rotated",
                                           json_pack("{s:s,s:O}", "client_id", id,
                                                     "old_secret_grace", grace_json))) {
            json_decref(grace_json);
            OPENSSL_cleanse(secret, strlen(secret));
            mandate_pool_free(&pool);
            return CTL_REFUSED;
        }
        if (rc == MANDATE_OK) {
            if (c->json)
                ctl_print_json(json_pack("{s:s,s:s,s:O}", "client_id", id, "client_secret",
                                         secret, "grace", grace_json));
            else
                printf("client_id: %s\nclient_secret: %s\n", id, secret);
            if (applied < 0)
                fprintf(stderr, "mandatectl: the old secret stays valid as the backend's "
                                "previous version, until the next rotation\n");
            else if (grace > 0)
                fprintf(stderr, "mandatectl: the old secret stays valid for %llds\n",
                        (long long)grace);
            else
                fprintf(stderr, "mandatectl: the old secret no longer works\n");
            OPENSSL_cleanse(secret, strlen(secret));
        }
        json_decref(grace_json);
        mandate_pool_free(&pool);
    }
    if (rc != MANDATE_OK) {
        fprintf(stderr, "mandatectl client %s: %s\n", verb, err.message);
        return CTL_REFUSED;
    }
    return CTL_OK;
}

/* --- import ----------------------------------------------------------------- */

/* Splits one CSV line into fields (RFC 4180 quoting), in place. */
static size_t csv_fields(char *line, char **fields, size_t max)
{
    size_t n = 0;
    char *p = line;
    while (n < max) {
        char *out = p;
        fields[n++] = out;
        if (*p == '"') {
            p++;
            for (;;) {
                if (*p == '\0')
                    break;
                if (*p == '"' && p[1] == '"') {
                    *out++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    *out++ = *p++;
                }
            }
            while (*p != ',' && *p != '\0')
                p++;
        } else {
            while (*p != ',' && *p != '\0')
                *out++ = *p++;
        }
        char sep = *p;
        *out = '\0';
        if (sep == '\0')
            break;
        p++;
    }
    return n;
}

static const char *spec_field(mandate_client_spec *spec, const char *name, const char *value,
                              mandate_pool *pool)
{
    if (value != NULL && value[0] == '\0')
        value = NULL;
    if (strcmp(name, "client_id") == 0)
        spec->client_id = value;
    else if (strcmp(name, "prefix") == 0)
        spec->prefix = value;
    else if (strcmp(name, "tenant") == 0)
        spec->tenant = value;
    else if (strcmp(name, "name") == 0)
        spec->name = value;
    else if (strcmp(name, "scope") == 0 || strcmp(name, "scopes") == 0)
        spec->scopes = value;
    else if (strcmp(name, "default_scope") == 0 || strcmp(name, "default_scopes") == 0)
        spec->default_scopes = value;
    else if (strcmp(name, "audience") == 0 || strcmp(name, "audiences") == 0)
        spec->audiences = value;
    else if (strcmp(name, "format") == 0)
        spec->token_format = value;
    else if (strcmp(name, "ttl") == 0) {
        char *end;
        spec->ttl = value ? strtoll(value, &end, 10) : 0;
        if (value != NULL && (*end != '\0' || spec->ttl <= 0))
            return "ttl must be a positive number of seconds";
    } else
        return mandate_pool_printf(pool, "unknown field '%.40s'", name);
    return NULL;
}

/* A JSON value as a string field: a string, or an array of strings joined
 * with spaces, or a number. */
static const char *json_field(mandate_pool *pool, json_t *v)
{
    if (json_is_string(v))
        return mandate_pool_strdup(pool, json_string_value(v));
    if (json_is_integer(v))
        return mandate_pool_printf(pool, "%lld", (long long)json_integer_value(v));
    if (json_is_array(v)) {
        size_t i;
        json_t *item;
        char *out = "";
        json_array_foreach(v, i, item)
        {
            if (!json_is_string(item))
                return NULL;
            out = mandate_pool_printf(pool, "%s%s%s", out, i ? " " : "", json_string_value(item));
        }
        return out;
    }
    return NULL;
}

typedef struct import_set {
    mandate_client *clients;
    char **secrets;
    size_t count, cap;
} import_set;

static bool add_spec(mandate_runtime *rt, mandate_pool *pool, import_set *set,
                     const mandate_client_spec *spec, size_t line)
{
    if (set->count == set->cap) {
        set->cap = set->cap ? set->cap * 2 : 1024;
        set->clients = mandate_xrealloc(set->clients, set->cap * sizeof(mandate_client));
        set->secrets = mandate_xrealloc(set->secrets, set->cap * sizeof(char *));
    }
    mandate_error err = {0};
    if (mandate_clients_prepare(rt, pool, spec, &set->clients[set->count],
                                &set->secrets[set->count], &err) != MANDATE_OK) {
        fprintf(stderr, "mandatectl client import: line %zu: %s\n", line, err.message);
        return false;
    }
    set->count++;
    return true;
}

static bool parse_import(mandate_runtime *rt, mandate_pool *pool, char *text, bool csv,
                         import_set *set)
{
    char *save = NULL;
    char *header[16];
    size_t columns = 0, line_no = 0;
    for (char *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        line_no++;
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] == '\r')
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        mandate_client_spec spec = {0};
        if (csv) {
            char *fields[16];
            size_t n = csv_fields(line, fields, 16);
            if (columns == 0) {
                for (size_t i = 0; i < n; i++)
                    header[i] = mandate_pool_strdup(pool, fields[i]);
                columns = n;
                continue;
            }
            if (n != columns) {
                fprintf(stderr, "mandatectl client import: line %zu: %zu fields, the header has %zu\n",
                        line_no, n, columns);
                return false;
            }
            for (size_t i = 0; i < n; i++) {
                const char *why = spec_field(&spec, header[i], mandate_pool_strdup(pool, fields[i]), pool);
                if (why != NULL) {
                    fprintf(stderr, "mandatectl client import: line %zu: %s\n", line_no, why);
                    return false;
                }
            }
        } else {
            json_error_t jerr;
            json_t *o = json_loads(line, JSON_REJECT_DUPLICATES, &jerr);
            if (!json_is_object(o)) {
                fprintf(stderr, "mandatectl client import: line %zu: not a JSON object: %s\n",
                        line_no, o ? "" : jerr.text);
                json_decref(o);
                return false;
            }
            const char *key;
            json_t *v;
            const char *why = NULL;
            json_object_foreach(o, key, v)
            {
                const char *value = json_field(pool, v);
                why = value == NULL && !json_is_null(v)
                          ? mandate_pool_printf(pool, "field '%.40s' has the wrong type", key)
                          : spec_field(&spec, mandate_pool_strdup(pool, key), value, pool);
                if (why != NULL)
                    break;
            }
            json_decref(o);
            if (why != NULL) {
                fprintf(stderr, "mandatectl client import: line %zu: %s\n", line_no, why);
                return false;
            }
        }
        if (!add_spec(rt, pool, set, &spec, line_no))
            return false;
    }
    return true;
}

static bool write_credentials(const char *path, const import_set *set, bool csv)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "mandatectl client import: %s: %s\n", path, strerror(errno));
        return false;
    }
    FILE *f = fdopen(fd, "w");
    if (csv)
        fputs("client_id,client_secret\n", f);
    for (size_t i = 0; i < set->count; i++) {
        const char *secret = set->secrets[i] ? set->secrets[i] : "";
        /* ids and generated secrets are URL-safe: no quoting is needed */
        if (csv)
            fprintf(f, "%s,%s\n", set->clients[i].client_id, secret);
        else
            fprintf(f, "{\"client_id\":\"%s\",\"client_secret\":\"%s\"}\n",
                    set->clients[i].client_id, secret);
    }
    bool ok = fflush(f) == 0 && fsync(fd) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok)
        fprintf(stderr, "mandatectl client import: %s: %s\n", path, strerror(errno));
    return ok;
}

static int client_import(ctl *c, mandate_runtime *rt, int argc, char **argv)
{
    const char *out = NULL;
    bool csv = false;
    const ctl_option opts[] = {CTL_VALUE("out", &out), CTL_FLAG("csv", &csv), {0}};
    if (!ctl_options(argc, argv, opts) ||
        !ctl_operands(argc, 1, out != NULL,
                      "Usage: mandatectl client import FILE --out CREDENTIALS [--csv]\n"))
        return CTL_USAGE;
    const char *in = argv[optind];
    size_t len = strlen(in);
    if (len > 4 && strcmp(in + len - 4, ".csv") == 0)
        csv = true;
    char *text = ctl_read_file("mandatectl client import", in, IMPORT_FILE_MAX, NULL);
    if (text == NULL)
        return CTL_REFUSED;
    mandate_pool *pool = mandate_pool_new();
    import_set set = {0};
    int status = CTL_REFUSED;
    mandate_error err = {0};
    char *tmp = mandate_xasprintf("%s.partial", out);
    if (access(out, F_OK) == 0) {
        fprintf(stderr, "mandatectl client import: %s exists; name a new file\n", out);
    } else if (parse_import(rt, pool, text, csv, &set)) {
        /* the credentials are on disk before the clients exist, so none is
         * ever created without its secret being kept */
        if (write_credentials(tmp, &set, csv)) {
            if (mandate_store_client_import(mandate_runtime_store(rt), set.clients, set.count,
                                            &err) != MANDATE_OK) {
                fprintf(stderr, "mandatectl client import: nothing imported: %s\n",
                        err.message);
                unlink(tmp);
            } else if (link(tmp, out) != 0 || unlink(tmp) != 0) {
                /* link, not rename: never replaces a file that appeared meanwhile */
                fprintf(stderr, "mandatectl client import: %s: %s (credentials in %s)\n", out,
                        strerror(errno), tmp);
            } else {
                status = CTL_OK;
                /* one record per client, as for client create */
                for (size_t i = 0; i < set.count && status == CTL_OK; i++) {
                    json_t *fields = ctl_client_audit_fields(&set.clients[i]);
                    json_object_set_new(fields, "import", json_string(in));
                    if (!ctl_audit("client.created", fields))
                        status = CTL_REFUSED;
                }
            }
            if (status == CTL_OK) {
                if (c->json)
                    ctl_print_json(json_pack("{s:I,s:s}", "imported", (json_int_t)set.count,
                                             "credentials", out));
                else
                    printf("imported %zu clients; credentials in %s (mode 0600)\n", set.count,
                           out);
            }
        }
    }
    for (size_t i = 0; i < set.count; i++)
        if (set.secrets[i] != NULL)
            OPENSSL_cleanse(set.secrets[i], strlen(set.secrets[i]));
    free(set.clients);
    free(set.secrets);
    free(tmp);
    free(text);
    mandate_pool_free(&pool);
    return status;
}

/* An initial access token for POST /oauth2/register (registration.mode
 * "token"): printed once, stored only as its hash, good for one client. */
static int client_registration_token(ctl *c, int argc, char **argv)
{
    static const struct option opts[] = {{"ttl", required_argument, NULL, 't'},
                                         {NULL, 0, NULL, 0}};
    int64_t ttl = MANDATE_REGISTRATION_TOKEN_TTL_DEFAULT;
    int opt;
    optind = 0;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (opt != 't' || !whole_number(optarg, 1, MANDATE_REGISTRATION_TOKEN_TTL_MAX, &ttl)) {
            fprintf(stderr, "mandatectl: --ttl takes 1 to %d seconds\n",
                    MANDATE_REGISTRATION_TOKEN_TTL_MAX);
            return CTL_USAGE;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "Usage: mandatectl client registration-token [--ttl SECONDS]\n");
        return CTL_USAGE;
    }
    mandate_runtime *rt = ctl_runtime_for_change(c, MANDATE_RUNTIME_MIGRATE);
    if (rt == NULL)
        return CTL_REFUSED;
    int status = CTL_REFUSED;
    const char *mode = mandate_runtime_config(rt)->registration.mode;
    mandate_pool *pool = mandate_pool_new();
    mandate_error err = {0};
    char *token = NULL;
    int64_t expires_at = 0;
    char t[32], ref[9];
    if (mandate_registration_token_issue(rt, pool, ttl, mandate_audit_actor(), &token,
                                         &expires_at, &err) != MANDATE_OK) {
        fprintf(stderr, "mandatectl client registration-token: %s\n", err.message);
    } else {
        mandate_audit_token_ref(token, strlen(token), ref);
        if (ctl_audit("client.registration_token_issued",
                      json_pack("{s:s,s:s}", "token_sha256_prefix", ref, "expires",
                                ctl_time(expires_at, t)))) {
            status = CTL_OK;
            if (c->json)
                ctl_print_json(json_pack("{s:s,s:s}", "registration_token", token, "expires",
                                         ctl_time(expires_at, t)));
            else
                printf("registration_token: %s\nexpires: %s\n", token, ctl_time(expires_at, t));
            fprintf(stderr, "mandatectl: the token is shown only now; it registers one client "
                            "(Authorization: Bearer on POST /oauth2/register)\n");
            if (strcmp(mode, "token") != 0)
                fprintf(stderr,
                        "mandatectl: registration.mode is \"%s\": the endpoint takes "
                        "tokens only in mode \"token\"\n",
                        mode);
        }
        OPENSSL_cleanse(token, strlen(token));
    }
    mandate_pool_free(&pool);
    mandate_runtime_unref(&rt);
    return status;
}

int ctl_cmd_client(ctl *c, int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "Usage: mandatectl client create|list|show|set|enable|disable|delete|"
                        "rotate-secret|import|registration-token ...\n");
        return CTL_USAGE;
    }
    const char *verb = argv[1];
    if (strcmp(verb, "create") == 0)
        return client_create(c, argc - 1, argv + 1);
    if (strcmp(verb, "registration-token") == 0)
        return client_registration_token(c, argc - 1, argv + 1);
    static const char *const by_id[] = {"show", "enable", "disable", "delete",
                                        "rotate-secret", "set", NULL};
    bool known = strcmp(verb, "list") == 0 || strcmp(verb, "import") == 0;
    for (size_t i = 0; by_id[i] != NULL; i++)
        known = known || strcmp(verb, by_id[i]) == 0;
    if (!known) {
        fprintf(stderr, "mandatectl client: unknown action '%s'\n", verb);
        return CTL_USAGE;
    }
    bool takes_options = strcmp(verb, "rotate-secret") == 0 || strcmp(verb, "set") == 0;
    if (strcmp(verb, "list") != 0 && strcmp(verb, "import") != 0 &&
        (argc < 3 || (!takes_options && argc > 3))) {
        fprintf(stderr, "Usage: mandatectl client %s ID\n", verb);
        return CTL_USAGE;
    }
    bool changes = strcmp(verb, "list") != 0 && strcmp(verb, "show") != 0;
    mandate_runtime *rt = changes ? ctl_runtime_for_change(c, MANDATE_RUNTIME_MIGRATE)
                                  : ctl_runtime(c, MANDATE_RUNTIME_MIGRATE);
    if (rt == NULL)
        return CTL_REFUSED;
    int status;
    if (strcmp(verb, "list") == 0)
        status = client_list(c, rt, argc - 1, argv + 1);
    else if (strcmp(verb, "import") == 0)
        status = client_import(c, rt, argc - 1, argv + 1);
    else
        status = client_by_id(c, rt, verb, argv[2], argc - 2, argv + 2);
    mandate_runtime_unref(&rt);
    return status;
}
