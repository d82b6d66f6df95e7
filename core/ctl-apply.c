/* mandatectl apply FILE: config as code. The document (JSON, or libconfig
 * like the rest of the configuration) declares clients and gateway
 * targets; apply makes the store and the targets file match it, and prints
 * the plan (+ create, ~ update, - disable, x remove) first.
 *
 * Order, so that nothing is half-applied that could have been refused:
 *  1. the whole document is checked (apply-doc.c) and compared with the
 *     store and the targets file: the plan;
 *  2. every change is checked as client create and client set check it
 *     (settings, backends, formats, keys, metadata, secret files, the new
 *     targets file loaded with mandate.conf) before anything is written;
 *  3. the new clients are created in one store call (client_import: all or
 *     none), their secret files written first under a temporary name and
 *     put in place once the clients exist; updates and disables follow one
 *     store call each (the store ABI has no wider transaction), and a
 *     failure among them is reported with what was applied before it;
 *  4. the targets file is replaced at once (rename), last.
 * Each change is an audit record, as client create/set/disable write. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "apply-doc-private.h"
#include "clients-private.h"
#include "config-private.h"
#include "ctl-private.h"
#include "jose.h"
#include "plugins-private.h"
#include "pool-private.h"
#include "util-private.h"

#define PUBLIC_KEY_MAX (16 * 1024)

typedef struct apply_opts {
    const char *file;
    char *full;  /* its absolute path, for the audit trail and the targets file */
    char *dir; /* the document's folder: relative paths in it start there */
    bool dry_run, prune, show_secrets, replace_secret_files;
} apply_opts;

/* --- reading ---------------------------------------------------------------- */

static bool ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && strcmp(s + n - m, tail) == 0;
}

/* A libconfig text as JSON; refuses @include: a document names its own
 * content, never another file's. */
static json_t *json_from_libconfig(const char *path, const char *text)
{
    int line = 1;
    for (const char *p = text; *p != '\0'; line++) {
        const char *q = p + strspn(p, " \t");
        if (strncmp(q, "@include", 8) == 0) {
            fprintf(stderr, "mandatectl apply: %s:%d: @include is not taken in an apply "
                            "document\n", path, line);
            return NULL;
        }
        const char *nl = strchr(p, '\n');
        p = nl ? nl + 1 : p + strlen(p);
    }
    config_t cfg;
    config_init(&cfg);
    json_t *root = NULL;
    if (config_read_string(&cfg, text) != CONFIG_TRUE) {
        fprintf(stderr, "mandatectl apply: %s:%d: %s\n", path, config_error_line(&cfg),
                config_error_text(&cfg));
    } else if ((root = mandate_apply_json_from_setting(config_root_setting(&cfg), 0)) == NULL) {
        fprintf(stderr, "mandatectl apply: %s: nested deeper than %d levels\n", path,
                MANDATE_APPLY_MAX_DEPTH);
    }
    config_destroy(&cfg);
    return root;
}

/* The document at path as JSON (.json), else as libconfig; NULL said. */
static json_t *read_document(const char *path, size_t max)
{
    size_t len = 0;
    char *text = ctl_read_file("mandatectl apply", path, max, &len);
    if (text == NULL)
        return NULL;
    json_t *root = NULL;
    if (ends_with(path, ".json")) {
        json_error_t jerr;
        root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
        if (root == NULL)
            fprintf(stderr, "mandatectl apply: %s:%d:%d: %s\n", path, jerr.line, jerr.column,
                    jerr.text);
    } else if (memchr(text, '\0', len) != NULL) {
        fprintf(stderr, "mandatectl apply: %s: holds a NUL byte\n", path);
    } else {
        root = json_from_libconfig(path, text);
    }
    free(text);
    return root;
}

static bool read_doc(mandate_pool *pool, const char *path, json_t *root, mandate_apply_doc *doc)
{
    mandate_diag diag = {0};
    bool ok = mandate_apply_doc_read(pool, root, doc, &diag);
    for (size_t i = 0; i < diag.count; i++)
        fprintf(stderr, "mandatectl apply: %s: %s\n", path, diag.lines[i]);
    mandate_diag_free(&diag);
    return ok;
}

/* --- what is there ---------------------------------------------------------- */

typedef struct have_clients {
    mandate_pool *pool;
    mandate_apply_client *list;
    size_t count;
} have_clients;

static const char *pooled(mandate_pool *pool, const char *s)
{
    return s != NULL ? mandate_pool_strdup(pool, s) : NULL;
}

/* A metadata list (redirect_uris, grant_types) as words. */
static const char *meta_words(mandate_pool *pool, json_t *meta, const char *key)
{
    json_t *a = json_object_get(meta, key);
    size_t i;
    json_t *item;
    char *out = NULL;
    json_array_foreach(a, i, item)
    {
        if (json_is_string(item))
            out = mandate_pool_printf(pool, "%s%s%s", out ? out : "", out ? " " : "",
                                      json_string_value(item));
    }
    return out;
}

static mandate_rc have_one(void *ctx, const mandate_client *c)
{
    have_clients *h = ctx;
    h->list = mandate_xrealloc(h->list, (h->count + 1) * sizeof(*h->list));
    mandate_apply_client *a = &h->list[h->count++];
    memset(a, 0, sizeof(*a));
    mandate_pool *pool = h->pool;
    a->id = pooled(pool, c->client_id);
    a->name = pooled(pool, c->name);
    a->tenant = pooled(pool, c->tenant);
    a->backend = pooled(pool, c->backend);
    a->format = pooled(pool, c->token_format);
    a->scopes = pooled(pool, c->scopes);
    a->default_scopes = pooled(pool, c->default_scopes);
    a->audiences = pooled(pool, c->audiences);
    a->ttl = c->token_ttl;
    a->rate_limit = c->rate_limit;
    a->rate_burst = c->rate_burst;
    a->introspect = (c->flags & MANDATE_CLIENT_CAN_INTROSPECT) != 0;
    a->disabled = c->status == MANDATE_CLIENT_DISABLED;
    a->public_key = pooled(pool, c->public_key);
    json_t *meta = c->metadata ? json_loads(c->metadata, 0, NULL) : NULL;
    const char *method = json_string_value(json_object_get(meta, "token_endpoint_auth_method"));
    a->auth = method != NULL && strcmp(method, "none") == 0 ? "none"
              : c->public_key != NULL                       ? "private_key_jwt"
                                                            : "client_secret";
    a->grant_types = meta_words(pool, meta, "grant_types");
    a->redirect_uris = meta_words(pool, meta, "redirect_uris");
    /* "admin": made by mandatectl; "registration", "document": by itself */
    const char *by = json_string_value(json_object_get(meta, "registered_by"));
    a->registered = by != NULL && strcmp(by, "admin") != 0;
    json_decref(meta);
    return MANDATE_OK;
}

/* The targets of the file apply owns (none when it does not exist yet). */
static bool read_have_targets(mandate_pool *pool, const char *path, mandate_apply_doc *have)
{
    memset(have, 0, sizeof(*have));
    if (path == NULL || (access(path, F_OK) != 0 && errno == ENOENT))
        return true;
    json_t *root = read_document(path, MANDATE_APPLY_MAX_BYTES);
    bool ok = root != NULL && read_doc(pool, path, root, have);
    json_decref(root);
    if (!ok)
        fprintf(stderr, "mandatectl apply: %s is the targets file apply writes; fix or remove "
                        "it\n", path);
    return ok;
}

/* A backend or a format may be named by its instance or its plugin; the
 * store holds the instance's name: compare with that. */
static void instance_names(mandate_runtime *rt, mandate_apply_doc *doc)
{
    for (size_t i = 0; i < doc->client_count; i++) {
        mandate_apply_client *c = &doc->clients[i];
        const mandate_instance *in;
        if (c->backend != NULL && (in = mandate_runtime_find(rt, MANDATE_BACKEND, c->backend)))
            c->backend = in->conf->name;
        if (c->format != NULL && (in = mandate_runtime_find(rt, MANDATE_FORMAT, c->format)))
            c->format = in->conf->name;
    }
}

/* --- the plan, shown ---------------------------------------------------------- */

static const char *secret_destination(const mandate_apply_client *want, const apply_opts *o,
                                      mandate_pool *pool)
{
    if (strcmp(mandate_apply_client_auth(want), "client_secret") != 0)
        return NULL;
    if (want->secret_file != NULL)
        return mandate_pool_printf(pool, "secret to %s", want->secret_file);
    return o->show_secrets ? "secret shown (--show-secrets)" : "secret kept by its backend";
}

static void print_plan(const mandate_apply_plan *plan, const apply_opts *o, mandate_pool *pool)
{
    for (size_t i = 0; i < plan->count; i++) {
        const mandate_apply_change *c = &plan->changes[i];
        const char *kind = c->is_target ? "target" : "client";
        switch (c->op) {
        case MANDATE_APPLY_CREATE:
            if (c->is_target) {
                printf("+ target %s (%s)\n", c->name, c->want_target->paths);
            } else {
                const char *dest = secret_destination(c->want, o, pool);
                printf("+ client %s (%s%s%s%s)\n", c->name, mandate_apply_client_auth(c->want),
                       dest ? ", " : "", dest ? dest : "", c->want->disabled ? ", disabled" : "");
            }
            break;
        case MANDATE_APPLY_UPDATE:
            printf("~ %s %s\n", kind, c->name);
            for (size_t k = 0; k < c->field_count; k++)
                printf("    %s\n", c->fields[k]);
            break;
        case MANDATE_APPLY_DISABLE:
            printf("- client %s (disabled: not in the document; --prune)\n", c->name);
            break;
        case MANDATE_APPLY_REMOVE: printf("- target %s (removed)\n", c->name); break;
        }
    }
}

static json_t *plan_json(const mandate_apply_plan *plan)
{
    json_t *changes = json_array();
    for (size_t i = 0; i < plan->count; i++) {
        const mandate_apply_change *c = &plan->changes[i];
        const char *op = c->op == MANDATE_APPLY_CREATE    ? "create"
                         : c->op == MANDATE_APPLY_UPDATE  ? "update"
                         : c->op == MANDATE_APPLY_DISABLE ? "disable"
                                                          : "remove";
        json_t *fields = json_array();
        for (size_t k = 0; k < c->field_count; k++)
            json_array_append_new(fields, json_string(c->fields[k]));
        json_array_append_new(changes, json_pack("{s:s,s:s,s:s,s:o}", "op", op, "kind",
                                                 c->is_target ? "target" : "client", "name",
                                                 c->name, "fields", fields));
    }
    return changes;
}

/* --- checks before any change --------------------------------------------------- */

typedef struct prepared {
    mandate_client_spec spec;
    char *metadata;   /* malloc'd */
    char *attributes; /* malloc'd */
    char *secret_path; /* resolved; NULL: none */
    char *partial;     /* where the secret is written before the client exists */
    bool partial_written;
    mandate_client client;
    char *secret;
} prepared;

static mandate_client_spec spec_of(const mandate_apply_client *want)
{
    return (mandate_client_spec){
        .client_id = want->id,
        .tenant = want->tenant,
        .name = want->name,
        .scopes = want->scopes,
        .default_scopes = want->default_scopes,
        .audiences = want->audiences,
        .token_format = want->format,
        .backend = want->backend,
        .ttl = want->ttl,
        .can_introspect = want->introspect,
        .rate_limit = want->rate_limit,
        .rate_burst = want->rate_burst,
        .public_client = strcmp(mandate_apply_client_auth(want), "none") == 0,
        .public_key_pem = want->public_key,
    };
}

static json_t *words_json(const char *list)
{
    if (list == NULL)
        return NULL;
    json_t *a = json_array();
    const char *cur = list, *w;
    size_t n;
    while (mandate_word_list_next(&cur, &w, &n))
        json_array_append_new(a, json_stringn(w, n));
    return a;
}

/* The client's metadata over base, or NULL (and *ok false) when refused. */
static char *metadata_for(const char *place, const mandate_apply_client *want, const char *base,
                          bool *ok)
{
    if (want->redirect_uris == NULL && want->grant_types == NULL)
        return NULL;
    json_t *uris = words_json(want->redirect_uris), *grants = words_json(want->grant_types);
    const char *auth = mandate_apply_client_auth(want);
    char *meta = ctl_client_metadata(place, base, uris, grants,
                                     strcmp(auth, "client_secret") == 0 ? "client_secret_basic"
                                                                        : auth);
    json_decref(uris);
    json_decref(grants);
    if (meta == NULL)
        *ok = false;
    return meta;
}

static bool key_ok(const char *place, const char *pem)
{
    EVP_PKEY *key = mandate_jose_public_from_pem(pem, strlen(pem));
    mandate_jws_alg alg = key ? mandate_jws_alg_for_key(key) : MANDATE_JWS_NONE;
    EVP_PKEY_free(key);
    if (alg != MANDATE_JWS_NONE)
        return true;
    fprintf(stderr, "mandatectl apply: %s.public_key_file: not a PEM P-256, RSA (2048 bits or "
                    "more) or Ed25519 public key\n", place);
    return false;
}

/* Reads each private_key_jwt client's public key file. */
static bool read_public_keys(mandate_pool *pool, mandate_apply_doc *doc, const apply_opts *o)
{
    bool ok = true;
    for (size_t i = 0; i < doc->client_count; i++) {
        mandate_apply_client *c = &doc->clients[i];
        if (c->public_key_file == NULL)
            continue;
        char *path = mandate_path_join(o->dir, c->public_key_file);
        char *pem = NULL;
        mandate_error err = {0};
        if (mandate_read_file(path, PUBLIC_KEY_MAX, &pem, NULL, &err) != MANDATE_OK) {
            fprintf(stderr, "mandatectl apply: clients[%zu].public_key_file: %s\n", c->index,
                    err.message);
            ok = false;
        } else {
            c->public_key = mandate_pool_strdup(pool, pem);
            const char *place = mandate_pool_printf(pool, "clients[%zu]", c->index);
            ok = key_ok(place, pem) && ok;
        }
        free(pem);
        free(path);
    }
    return ok;
}

/* Checks one create as client create would, without making a credential. */
static bool check_create(mandate_runtime *rt, mandate_pool *pool, const apply_opts *o,
                         const mandate_apply_client *want, prepared *p)
{
    const char *place = mandate_pool_printf(pool, "clients[%zu] (%s)", want->index, want->id);
    bool ok = true;
    p->spec = spec_of(want);
    p->metadata = metadata_for(mandate_pool_printf(pool, "apply: %s", place), want, NULL, &ok);
    p->spec.metadata = p->metadata;
    if (want->kms_key_id != NULL) {
        json_t *attrs = json_pack("{s:s}", "kms_key_id", want->kms_key_id);
        p->attributes = json_dumps(attrs, JSON_COMPACT);
        json_decref(attrs);
        p->spec.attributes = p->attributes;
    }
    mandate_client scratch;
    mandate_error err = {0};
    if (mandate_clients_settings(rt, pool, &p->spec, &scratch, &err) != MANDATE_OK) {
        fprintf(stderr, "mandatectl apply: %s: %s\n", place, err.message);
        ok = false;
    }
    if (want->backend != NULL && mandate_runtime_find(rt, MANDATE_BACKEND, want->backend) == NULL) {
        fprintf(stderr, "mandatectl apply: %s.backend: no backend instance '%s' is enabled\n",
                place, want->backend);
        ok = false;
    }
    if (want->secret_file != NULL) {
        p->secret_path = mandate_path_join(o->dir, want->secret_file);
        p->partial = mandate_xasprintf("%s.partial", p->secret_path);
        char *copy = mandate_xstrdup(p->secret_path);
        struct stat st;
        if (stat(dirname(copy), &st) != 0 || !S_ISDIR(st.st_mode)) {
            fprintf(stderr, "mandatectl apply: %s.secret_file: %s: no such folder\n", place,
                    p->secret_path);
            ok = false;
        } else if (!o->replace_secret_files && access(p->secret_path, F_OK) == 0) {
            fprintf(stderr, "mandatectl apply: %s.secret_file: %s exists; name a new file, or "
                            "--replace-secret-files\n", place, p->secret_path);
            ok = false;
        } else if (access(p->partial, F_OK) == 0) {
            fprintf(stderr, "mandatectl apply: %s.secret_file: %s exists (left by an apply "
                            "that failed?); remove it\n", place, p->partial);
            ok = false;
        }
        free(copy);
    }
    return ok;
}

/* An update as the record to write: the stored client with the document's
 * settings. */
static bool updated_record(mandate_runtime *rt, mandate_pool *pool,
                           const mandate_apply_client *want, mandate_client *cl, char **metadata_r)
{
    const char *place = mandate_pool_printf(pool, "clients[%zu] (%s)", want->index, want->id);
    mandate_error err = {0};
    *metadata_r = NULL;
    if (mandate_store_client_get(mandate_runtime_store(rt), pool, want->id, cl, &err) !=
        MANDATE_OK) {
        fprintf(stderr, "mandatectl apply: %s: %s\n", place, err.message);
        return false;
    }
    mandate_client_spec spec = spec_of(want);
    spec.public_client = false; /* settings only: no credential is made or checked */
    spec.public_key_pem = NULL;
    mandate_client set;
    if (mandate_clients_settings(rt, pool, &spec, &set, &err) != MANDATE_OK) {
        fprintf(stderr, "mandatectl apply: %s: %s\n", place, err.message);
        return false;
    }
    bool ok = true;
    *metadata_r = metadata_for(mandate_pool_printf(pool, "apply: %s", place), want, cl->metadata,
                               &ok);
    if (!ok)
        return false;
    cl->name = set.name;
    cl->tenant = set.tenant;
    cl->scopes = set.scopes;
    cl->default_scopes = set.default_scopes;
    cl->audiences = set.audiences;
    cl->token_format = set.token_format;
    cl->token_ttl = set.token_ttl;
    cl->rate_limit = set.rate_limit;
    cl->rate_burst = set.rate_burst;
    cl->flags = (cl->flags & ~MANDATE_CLIENT_CAN_INTROSPECT) | set.flags;
    cl->status = want->disabled ? MANDATE_CLIENT_DISABLED : MANDATE_CLIENT_ENABLED;
    if (want->public_key != NULL)
        cl->public_key = want->public_key;
    if (*metadata_r != NULL)
        cl->metadata = *metadata_r;
    cl->updated_at = 0;
    return true;
}

/* --- the targets file ----------------------------------------------------------- */

static void add_words(config_setting_t *group, const char *key, const char *list)
{
    config_setting_t *a = config_setting_add(group, key, CONFIG_TYPE_ARRAY);
    const char *cur = list, *w;
    size_t n;
    while (mandate_word_list_next(&cur, &w, &n)) {
        char *word = mandate_xasprintf("%.*s", (int)n, w);
        config_setting_set_string_elem(a, -1, word);
        free(word);
    }
}

static void add_string(config_setting_t *group, const char *key, const char *value)
{
    if (value != NULL)
        config_setting_set_string(config_setting_add(group, key, CONFIG_TYPE_STRING), value);
}

/* The document's targets, as a new file next to path (its name in *tmp_r). */
static bool write_targets(const char *path, const char *doc_path, const mandate_apply_doc *doc,
                          char **tmp_r)
{
    config_t cfg;
    config_init(&cfg);
    config_setting_t *list = config_setting_add(config_root_setting(&cfg), "targets",
                                                CONFIG_TYPE_LIST);
    for (size_t i = 0; i < doc->target_count; i++) {
        const mandate_apply_target *t = &doc->targets[i];
        config_setting_t *g = config_setting_add(list, NULL, CONFIG_TYPE_GROUP);
        add_string(g, "name", t->name);
        add_words(g, "paths", t->paths);
        add_string(g, "audience", t->audience);
        if (t->scopes != NULL)
            add_words(g, "scopes", t->scopes);
        add_string(g, "tenant", t->tenant);
        add_string(g, "resource_metadata", t->resource_metadata);
    }
    *tmp_r = mandate_xasprintf("%s.XXXXXX", path);
    int fd = mkstemp(*tmp_r);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    bool ok = f != NULL;
    if (ok) {
        fchmod(fd, 0644); /* configuration, not a secret: as mandate.conf */
        fprintf(f, "# Written by mandatectl apply from %s: edit that document and apply it\n"
                   "# again; changes made here are undone by the next apply.\n",
                doc_path);
        config_write(&cfg, f);
        ok = fflush(f) == 0 && fsync(fd) == 0;
        ok = fclose(f) == 0 && ok;
    }
    if (!ok) {
        fprintf(stderr, "mandatectl apply: %s: %s\n", *tmp_r, strerror(errno));
        if (fd >= 0)
            unlink(*tmp_r);
        free(*tmp_r);
        *tmp_r = NULL;
    }
    config_destroy(&cfg);
    return ok;
}

/* --- carrying the plan out ------------------------------------------------------- */

static void audit_with_file(const char *event, json_t *fields, const char *file, bool *ok)
{
    json_object_set_new(fields, "apply", json_string(file));
    if (!ctl_audit(event, fields))
        *ok = false;
}

static void unlink_partials(prepared *prep, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (prep[i].partial_written) {
            unlink(prep[i].partial);
            prep[i].partial_written = false;
        }
}

/* Makes the credentials, writes the secret files aside, creates every new
 * client in one store call, then puts the files in place. */
static bool create_clients(ctl *c, mandate_runtime *rt, mandate_pool *pool, const apply_opts *o,
                           const mandate_apply_plan *plan, prepared *prep, size_t n,
                           size_t *created_r)
{
    *created_r = 0;
    if (n == 0)
        return true;
    mandate_error err = {0};
    mandate_client *records = mandate_xcalloc(n, sizeof(*records));
    bool ok = true;
    size_t k = 0, provisioned = 0;
    for (size_t i = 0; i < plan->count && ok; i++) {
        const mandate_apply_change *ch = &plan->changes[i];
        if (ch->is_target || ch->op != MANDATE_APPLY_CREATE)
            continue;
        prepared *p = &prep[k++];
        if (mandate_clients_prepare(rt, pool, &p->spec, &p->client, &p->secret, &err) !=
            MANDATE_OK) {
            fprintf(stderr, "mandatectl apply: clients[%zu] (%s): %s\n", ch->want->index,
                    ch->name, err.message);
            ok = false;
            break;
        }
        provisioned++;
        if (ch->want->disabled)
            p->client.status = MANDATE_CLIENT_DISABLED;
        /* a secret the broker keeps only hashed must go somewhere */
        if (p->secret != NULL && p->client.secret_hash != NULL && p->secret_path == NULL &&
            !o->show_secrets) {
            fprintf(stderr, "mandatectl apply: clients[%zu] (%s): its backend '%s' keeps no "
                            "copy of the secret: name a 'secret_file' for it (or "
                            "--show-secrets)\n",
                    ch->want->index, ch->name, p->client.backend);
            ok = false;
        } else if (p->secret != NULL && p->secret_path != NULL) {
            ok = ctl_write_secret_file(p->partial, p->secret);
            p->partial_written = ok;
        }
        records[k - 1] = p->client;
    }
    if (ok && mandate_store_client_import(mandate_runtime_store(rt), records, n, &err) !=
                  MANDATE_OK) {
        fprintf(stderr, "mandatectl apply: creating the clients: %s\n", err.message);
        ok = false;
    }
    free(records);
    if (!ok) {
        unlink_partials(prep, n);
        fprintf(stderr, "mandatectl apply: nothing was applied%s\n",
                provisioned > 0 ? " (a backend that keeps secrets elsewhere, e.g. Secrets "
                                  "Manager, may hold secrets made for clients that do not "
                                  "exist: see the log)"
                                : "");
        return false;
    }
    *created_r = n;
    for (size_t i = 0; i < n; i++) {
        prepared *p = &prep[i];
        audit_with_file("client.created", ctl_client_audit_fields(&p->client), o->full, &ok);
        if (!p->partial_written)
            continue;
        /* link, not rename: never replaces a file that appeared meanwhile */
        int rc = o->replace_secret_files ? rename(p->partial, p->secret_path)
                                         : link(p->partial, p->secret_path);
        if (rc != 0 || (!o->replace_secret_files && unlink(p->partial) != 0)) {
            fprintf(stderr, "mandatectl apply: %s: %s (the secret of %s is in %s)\n",
                    p->secret_path, strerror(errno), p->client.client_id, p->partial);
            ok = false;
        }
        p->partial_written = false;
    }
    for (size_t i = 0; i < n; i++) {
        prepared *p = &prep[i];
        if (p->secret == NULL)
            continue;
        if (p->secret_path != NULL)
            fprintf(stderr, "mandatectl apply: the secret of %s is in %s (mode 0600)\n",
                    p->client.client_id, p->secret_path);
        else if (p->client.secret_hash == NULL)
            fprintf(stderr, "mandatectl apply: the secret of %s is kept by backend '%s'\n",
                    p->client.client_id, p->client.backend);
        if (o->show_secrets && p->secret_path == NULL && p->client.secret_hash != NULL) {
            if (c->json)
                ctl_print_json(json_pack("{s:s,s:s}", "client_id", p->client.client_id,
                                         "client_secret", p->secret));
            else
                printf("client_secret %s: %s\n", p->client.client_id, p->secret);
        }
    }
    return ok;
}

static void free_prepared(prepared *prep, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (prep[i].secret != NULL)
            OPENSSL_cleanse(prep[i].secret, strlen(prep[i].secret));
        free(prep[i].metadata);
        free(prep[i].attributes);
        free(prep[i].secret_path);
        free(prep[i].partial);
    }
    free(prep);
}

static int usage(void)
{
    fprintf(stderr, "Usage: mandatectl apply FILE [--dry-run] [--prune] [--show-secrets] "
                    "[--replace-secret-files]\n");
    return CTL_USAGE;
}

int ctl_cmd_apply(ctl *c, int argc, char **argv)
{
    apply_opts o = {0};
    const ctl_option opts[] = {CTL_FLAG("dry-run", &o.dry_run),
                               CTL_FLAG("prune", &o.prune),
                               CTL_FLAG("show-secrets", &o.show_secrets),
                               CTL_FLAG("replace-secret-files", &o.replace_secret_files),
                               {0}};
    if (!ctl_options(argc, argv, opts) || optind != argc - 1)
        return usage();
    o.file = argv[optind];
    char *copy = mandate_xstrdup(o.file);
    o.dir = mandate_xstrdup(dirname(copy));
    free(copy);
    o.full = realpath(o.file, NULL);
    if (o.full == NULL)
        o.full = mandate_xstrdup(o.file);

    int status = CTL_REFUSED;
    mandate_pool *pool = mandate_pool_new();
    mandate_apply_doc doc, have_targets = {0};
    mandate_apply_plan plan = {0};
    have_clients have = {.pool = pool};
    prepared *prep = NULL;
    size_t creates = 0;
    char *targets_tmp = NULL;
    mandate_runtime *rt = NULL;
    json_t *root = read_document(o.file, MANDATE_APPLY_MAX_BYTES);
    if (root == NULL || !read_doc(pool, o.file, root, &doc) || !read_public_keys(pool, &doc, &o))
        goto out;
    rt = o.dry_run ? ctl_runtime(c, MANDATE_RUNTIME_MIGRATE)
                   : ctl_runtime_for_change(c, MANDATE_RUNTIME_MIGRATE);
    if (rt == NULL)
        goto out;
    instance_names(rt, &doc);
    const mandate_config *cfg = mandate_runtime_config(rt);
    mandate_error err = {0};
    if (mandate_store_client_list(mandate_runtime_store(rt), &(mandate_client_filter){0},
                                  have_one, &have, &err) != MANDATE_OK) {
        fprintf(stderr, "mandatectl apply: reading the clients: %s\n", err.message);
        goto out;
    }
    if (doc.has_targets && cfg->targets_file == NULL) {
        fprintf(stderr, "mandatectl apply: %s declares targets, but %s names no targets_file: "
                        "add targets_file = \"targets.conf\"; to it (apply writes that file, "
                        "never mandate.conf)\n", o.file, cfg->path);
        goto out;
    }
    if (doc.has_targets && !read_have_targets(pool, cfg->targets_file, &have_targets))
        goto out;
    mandate_diag diag = {0};
    bool planned = mandate_apply_plan_make(pool, &doc, have.list, have.count,
                                           have_targets.targets, have_targets.target_count,
                                           o.prune, &plan, &diag);
    for (size_t i = 0; i < diag.count; i++)
        fprintf(stderr, "mandatectl apply: %s: %s\n", o.file, diag.lines[i]);
    mandate_diag_free(&diag);
    if (!planned)
        goto out;

    /* every change checked before any is made */
    bool ok = true;
    prep = mandate_xcalloc(plan.creates ? plan.creates : 1, sizeof(*prep));
    bool targets_change = false;
    for (size_t i = 0; i < plan.count; i++) {
        const mandate_apply_change *ch = &plan.changes[i];
        if (ch->is_target) {
            targets_change = true;
        } else if (ch->op == MANDATE_APPLY_CREATE) {
            ok = check_create(rt, pool, &o, ch->want, &prep[creates++]) && ok;
        } else if (ch->op == MANDATE_APPLY_UPDATE) {
            mandate_client cl;
            char *metadata = NULL;
            ok = updated_record(rt, pool, ch->want, &cl, &metadata) && ok;
            free(metadata);
        }
    }
    if (targets_change) {
        mandate_diag tdiag = {0};
        if (!write_targets(cfg->targets_file, o.full, &doc, &targets_tmp)) {
            ok = false;
        } else if (!mandate_config_targets_check(cfg, targets_tmp, &tdiag)) {
            for (size_t i = 0; i < tdiag.count; i++)
                fprintf(stderr, "mandatectl apply: %s\n", tdiag.lines[i]);
            fprintf(stderr, "mandatectl apply: the targets of %s do not load with %s\n", o.file,
                    cfg->path);
            ok = false;
        }
        mandate_diag_free(&tdiag);
    }
    if (c->json)
        ctl_print_json(json_pack("{s:s,s:b,s:o,s:I}", "file", o.file, "dry_run", o.dry_run,
                                 "changes", plan_json(&plan), "left_alone",
                                 (json_int_t)plan.left_alone));
    else
        print_plan(&plan, &o, pool);
    if (plan.left_alone > 0)
        fprintf(stderr, "mandatectl apply: %zu enabled client%s not in %s left alone "
                        "(--prune disables them)\n",
                plan.left_alone, plan.left_alone == 1 ? "" : "s", o.file);
    if (!ok) {
        fprintf(stderr, "mandatectl apply: nothing was applied\n");
        goto out;
    }
    if (plan.count == 0) {
        if (!c->json)
            printf("No changes: %s %s.\n",
                   doc.has_targets ? "the store and the targets match" : "the store matches",
                   o.file);
        status = CTL_OK;
        goto out;
    }
    if (!c->json)
        printf("Plan: %zu to create, %zu to update, %zu to disable, %zu to remove.\n",
               plan.creates, plan.updates, plan.disables, plan.removals);
    if (o.dry_run) {
        if (!c->json)
            printf("Dry run: nothing was changed.\n");
        status = CTL_OK;
        goto out;
    }

    size_t created = 0, updated = 0, disabled = 0;
    ok = create_clients(c, rt, pool, &o, &plan, prep, creates, &created);
    if (created == 0 && creates > 0)
        goto out;
    for (size_t i = 0; i < plan.count && ok; i++) {
        const mandate_apply_change *ch = &plan.changes[i];
        if (ch->is_target || ch->op == MANDATE_APPLY_CREATE)
            continue;
        mandate_pool *one = mandate_pool_new();
        mandate_client cl;
        char *metadata = NULL;
        if (ch->op == MANDATE_APPLY_UPDATE) {
            ok = updated_record(rt, one, ch->want, &cl, &metadata);
        } else {
            ok = mandate_store_client_get(mandate_runtime_store(rt), one, ch->name, &cl, &err) ==
                 MANDATE_OK;
            cl.status = MANDATE_CLIENT_DISABLED;
            cl.updated_at = 0;
            if (!ok)
                fprintf(stderr, "mandatectl apply: client %s: %s\n", ch->name, err.message);
        }
        if (ok && mandate_store_client_update(mandate_runtime_store(rt), &cl, &err) != MANDATE_OK) {
            fprintf(stderr, "mandatectl apply: client %s: %s\n", ch->name, err.message);
            ok = false;
        }
        if (ok && ch->op == MANDATE_APPLY_UPDATE) {
            json_t *fields = ctl_client_audit_fields(&cl);
            json_t *changed = json_array();
            for (size_t k = 0; k < ch->field_count; k++)
                json_array_append_new(changed, json_string(ch->fields[k]));
            json_object_set_new(fields, "changed", changed);
            audit_with_file("client.updated", fields, o.full, &ok);
            updated++;
        } else if (ok) {
            audit_with_file("client.disabled", json_pack("{s:s}", "client_id", ch->name), o.full,
                            &ok);
            disabled++;
        }
        free(metadata);
        mandate_pool_free(&one);
    }
    bool targets_written = false;
    if (ok && targets_tmp != NULL) {
        if (rename(targets_tmp, cfg->targets_file) != 0) {
            fprintf(stderr, "mandatectl apply: %s: %s\n", cfg->targets_file, strerror(errno));
            ok = false;
        } else {
            free(targets_tmp);
            targets_tmp = NULL;
            targets_written = true;
            json_t *changed = plan_json(&plan);
            json_t *targets = json_array();
            size_t i;
            json_t *item;
            json_array_foreach(changed, i, item)
            {
                if (strcmp(json_string_value(json_object_get(item, "kind")), "target") == 0)
                    json_array_append(targets, item);
            }
            json_decref(changed);
            audit_with_file("config.targets_applied",
                            json_pack("{s:s,s:o}", "targets_file", cfg->targets_file, "changes",
                                      targets),
                            o.full, &ok);
        }
    }
    if (!c->json)
        printf("Applied: %zu created, %zu updated, %zu disabled%s.\n", created, updated,
               disabled,
               targets_written ? "; targets written" : "");
    if (targets_written)
        fprintf(stderr, "mandatectl apply: %s written; a running mandated reads it on SIGHUP "
                        "(systemctl reload mandate, or kill -HUP its PID)\n",
                cfg->targets_file);
    if (!ok)
        fprintf(stderr, "mandatectl apply: stopped by the error above; only what the line "
                        "\"Applied\" counts was changed%s\n",
                targets_tmp != NULL ? " (the targets file was not)" : "");
    status = ok ? CTL_OK : CTL_REFUSED;
out:
    if (targets_tmp != NULL)
        unlink(targets_tmp);
    free(targets_tmp);
    if (prep != NULL)
        free_prepared(prep, creates);
    free(plan.changes);
    free(have.list);
    json_decref(root);
    mandate_runtime_unref(&rt);
    mandate_pool_free(&pool);
    free(o.dir);
    free(o.full);
    return status;
}
