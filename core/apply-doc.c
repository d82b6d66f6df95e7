/* mandatectl apply's document and plan (see apply-doc-private.h). */
#include "config.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "apply-doc-private.h"
#include "util-private.h"
#include "word-list.h"

typedef enum field_kind {
    FIELD_STRING,   /* a string */
    FIELD_NULLABLE, /* a string or null */
    FIELD_WORDS,    /* an array of words, or one string of space-separated words */
    FIELD_INT,
    FIELD_NUMBER,   /* an integer or a real */
    FIELD_BOOL
} field_kind;

typedef enum word_syntax { WORDS_ANY, WORDS_SCOPE, WORDS_URI, WORDS_PATH } word_syntax;

typedef struct field_def {
    const char *key;
    field_kind kind;
    size_t offset;
    double min, max;    /* FIELD_INT, FIELD_NUMBER */
    word_syntax syntax; /* FIELD_WORDS */
} field_def;

#define CLIENT_OFF(f) offsetof(mandate_apply_client, f)
static const field_def client_fields[] = {
    {"id", FIELD_STRING, CLIENT_OFF(id), 0, 0, 0},
    {"name", FIELD_NULLABLE, CLIENT_OFF(name), 0, 0, 0},
    {"tenant", FIELD_STRING, CLIENT_OFF(tenant), 0, 0, 0},
    {"auth", FIELD_STRING, CLIENT_OFF(auth), 0, 0, 0},
    {"backend", FIELD_STRING, CLIENT_OFF(backend), 0, 0, 0},
    {"format", FIELD_NULLABLE, CLIENT_OFF(format), 0, 0, 0},
    {"scopes", FIELD_WORDS, CLIENT_OFF(scopes), 0, 0, WORDS_SCOPE},
    {"default_scopes", FIELD_WORDS, CLIENT_OFF(default_scopes), 0, 0, WORDS_SCOPE},
    {"audiences", FIELD_WORDS, CLIENT_OFF(audiences), 0, 0, WORDS_URI},
    {"grant_types", FIELD_WORDS, CLIENT_OFF(grant_types), 0, 0, WORDS_ANY},
    {"redirect_uris", FIELD_WORDS, CLIENT_OFF(redirect_uris), 0, 0, WORDS_URI},
    {"ttl", FIELD_INT, CLIENT_OFF(ttl), 0, 31536000, 0},
    {"rate_limit", FIELD_NUMBER, CLIENT_OFF(rate_limit), 0, 1000000, 0},
    {"rate_burst", FIELD_INT, CLIENT_OFF(rate_burst), 0, 1000000, 0},
    {"introspect", FIELD_BOOL, CLIENT_OFF(introspect), 0, 0, 0},
    {"disabled", FIELD_BOOL, CLIENT_OFF(disabled), 0, 0, 0},
    {"secret_file", FIELD_STRING, CLIENT_OFF(secret_file), 0, 0, 0},
    {"public_key_file", FIELD_STRING, CLIENT_OFF(public_key_file), 0, 0, 0},
    {"kms_key_id", FIELD_STRING, CLIENT_OFF(kms_key_id), 0, 0, 0},
    {NULL, 0, 0, 0, 0, 0}};

#define TARGET_OFF(f) offsetof(mandate_apply_target, f)
static const field_def target_fields[] = {
    {"name", FIELD_STRING, TARGET_OFF(name), 0, 0, 0},
    {"paths", FIELD_WORDS, TARGET_OFF(paths), 0, 0, WORDS_PATH},
    {"audience", FIELD_STRING, TARGET_OFF(audience), 0, 0, 0},
    {"scopes", FIELD_WORDS, TARGET_OFF(scopes), 0, 0, WORDS_SCOPE},
    {"tenant", FIELD_STRING, TARGET_OFF(tenant), 0, 0, 0},
    {"resource_metadata", FIELD_STRING, TARGET_OFF(resource_metadata), 0, 0, 0},
    {NULL, 0, 0, 0, 0, 0}};

typedef struct reader {
    mandate_pool *pool;
    mandate_diag *diag;
    bool ok;
} reader;

#define say(r, ...)                                                                          \
    do {                                                                                     \
        (r)->ok = false;                                                                     \
        if ((r)->diag->count < MANDATE_APPLY_MAX_ERRORS)                                     \
            mandate_diag_add((r)->diag, __VA_ARGS__);                                        \
    } while (0)

static const char *known_keys(mandate_pool *pool, const field_def *defs)
{
    const char *out = "";
    for (const field_def *d = defs; d->key != NULL; d++)
        out = mandate_pool_printf(pool, "%s%s%s", out, d == defs ? "" : ", ", d->key);
    return out;
}

/* No control characters: the values end up in a store, a log line and a
 * libconfig file. */
static bool printable(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

static bool word_ok(word_syntax syntax, const char *w, size_t n)
{
    switch (syntax) {
    case WORDS_SCOPE: return mandate_scope_token_valid(w, n);
    case WORDS_URI: return mandate_audience_uri_valid(w, n);
    case WORDS_PATH: return n > 0 && w[0] == '/';
    default: return n > 0;
    }
}

static const char *syntax_name(word_syntax syntax)
{
    switch (syntax) {
    case WORDS_SCOPE: return "a scope token (RFC 6749 §3.3)";
    case WORDS_URI: return "an absolute URI without a fragment";
    case WORDS_PATH: return "a path beginning with '/'";
    default: return "a word";
    }
}

/* Appends word to the space-separated list being built, checking it. */
static bool add_word(reader *r, const char *place, const field_def *d, const char *word,
                     size_t n, char **list, size_t *count)
{
    if (++*count > MANDATE_APPLY_MAX_LIST) {
        say(r, "%s: more than %d entries", place, MANDATE_APPLY_MAX_LIST);
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)word[i] <= 0x20 || word[i] == 0x7f) {
            say(r, "%s: '%.*s' holds a space or a control character", place,
                (int)(n > 80 ? 80 : n), word);
            return false;
        }
    if (!word_ok(d->syntax, word, n)) {
        say(r, "%s: '%.*s' is not %s", place, (int)(n > 80 ? 80 : n), word,
            syntax_name(d->syntax));
        return false;
    }
    *list = mandate_pool_printf(r->pool, "%s%s%.*s", *list, **list ? " " : "", (int)n, word);
    return true;
}

static void read_words(reader *r, const char *place, const field_def *d, json_t *v,
                       const char **out)
{
    char *list = "";
    size_t count = 0;
    if (json_is_string(v)) {
        const char *cur = json_string_value(v), *w;
        size_t n;
        if (json_string_length(v) > MANDATE_APPLY_MAX_STRING) {
            say(r, "%s: longer than %d bytes", place, MANDATE_APPLY_MAX_STRING);
            return;
        }
        while (mandate_word_list_next(&cur, &w, &n))
            if (!add_word(r, place, d, w, n, &list, &count))
                return;
    } else if (json_is_array(v)) {
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item)
        {
            const char *item_place = mandate_pool_printf(r->pool, "%s[%zu]", place, i);
            if (!json_is_string(item)) {
                say(r, "%s: must be a string", item_place);
                return;
            }
            if (json_string_length(item) > MANDATE_APPLY_MAX_STRING) {
                say(r, "%s: longer than %d bytes", item_place, MANDATE_APPLY_MAX_STRING);
                return;
            }
            if (!add_word(r, item_place, d, json_string_value(item), json_string_length(item),
                          &list, &count))
                return;
        }
    } else {
        say(r, "%s: must be a list of strings", place);
        return;
    }
    *out = count > 0 ? list : NULL;
}

/* Reads obj's keys into the record at base, as defs say. */
static void read_fields(reader *r, const char *place, json_t *obj, const field_def *defs,
                        void *base)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        const field_def *d = defs;
        while (d->key != NULL && strcmp(d->key, key) != 0)
            d++;
        if (d->key == NULL) {
            say(r, "%s: unknown key '%.64s' (known: %s)", place, key,
                known_keys(r->pool, defs));
            continue;
        }
        const char *at = mandate_pool_printf(r->pool, "%s.%s", place, key);
        void *field = (char *)base + d->offset;
        switch (d->kind) {
        case FIELD_NULLABLE:
            if (json_is_null(v))
                break;
            /* fall through */
        case FIELD_STRING:
            if (!json_is_string(v)) {
                say(r, "%s: must be a string%s", at, d->kind == FIELD_NULLABLE ? " or null" : "");
            } else if (json_string_length(v) == 0 ||
                       json_string_length(v) > MANDATE_APPLY_MAX_STRING) {
                say(r, "%s: must be 1 to %d bytes", at, MANDATE_APPLY_MAX_STRING);
            } else if (!printable(json_string_value(v))) {
                say(r, "%s: holds a control character", at);
            } else {
                *(const char **)field = mandate_pool_strdup(r->pool, json_string_value(v));
            }
            break;
        case FIELD_WORDS: read_words(r, at, d, v, (const char **)field); break;
        case FIELD_INT:
            if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)d->min ||
                json_integer_value(v) > (json_int_t)d->max)
                say(r, "%s: must be a whole number from %.0f to %.0f", at, d->min, d->max);
            else
                *(int64_t *)field = json_integer_value(v);
            break;
        case FIELD_NUMBER:
            if (!json_is_number(v) || json_number_value(v) < d->min ||
                json_number_value(v) > d->max)
                say(r, "%s: must be a number from %.0f to %.0f", at, d->min, d->max);
            else
                *(double *)field = json_number_value(v);
            break;
        case FIELD_BOOL:
            if (!json_is_boolean(v))
                say(r, "%s: must be true or false", at);
            else
                *(bool *)field = json_is_true(v);
            break;
        }
    }
}

static void check_client(reader *r, const char *place, mandate_apply_client *c)
{
    if (c->id == NULL)
        say(r, "%s: 'id' is missing", place);
    else if (!mandate_client_id_valid(c->id))
        say(r, "%s.id: '%.80s' must be 1 to %d letters, digits, '-', '.', '_' or '~'", place,
            c->id, MANDATE_CLIENT_ID_MAX_LEN);
    if (c->tenant != NULL && !mandate_client_id_valid(c->tenant))
        say(r, "%s.tenant: '%.80s' must be letters, digits, '-', '.', '_' or '~'", place,
            c->tenant);
    const char *auth = mandate_apply_client_auth(c);
    bool secret = strcmp(auth, "client_secret") == 0, key = strcmp(auth, "private_key_jwt") == 0,
         none = strcmp(auth, "none") == 0;
    if (!secret && !key && !none) {
        say(r, "%s.auth: '%.40s' must be client_secret, private_key_jwt or none", place, auth);
        return;
    }
    if (key && c->public_key_file == NULL)
        say(r, "%s: auth private_key_jwt needs 'public_key_file' (a PEM public key)", place);
    if (!key && c->public_key_file != NULL)
        say(r, "%s.public_key_file: goes with auth private_key_jwt only", place);
    if (!secret && c->secret_file != NULL)
        say(r, "%s.secret_file: a client with auth %s has no secret", place, auth);
    if (!secret && c->kms_key_id != NULL)
        say(r, "%s.kms_key_id: goes with a secret kept by a backend (auth client_secret)",
            place);
    if (none && c->backend != NULL)
        say(r, "%s.backend: a public client (auth none) has no credential for a backend",
            place);
    if ((none || c->grant_types != NULL) && c->redirect_uris == NULL)
        say(r, "%s: %s needs 'redirect_uris'", place,
            none ? "a public client (auth none)" : "'grant_types'");
    const char *cur = c->default_scopes, *w;
    size_t n;
    while (mandate_word_list_next(&cur, &w, &n))
        if (!mandate_word_list_has(c->scopes, w, n)) {
            say(r, "%s.default_scopes: '%.*s' is not among its scopes", place, (int)n, w);
            break;
        }
}

static void check_target(reader *r, const char *place, mandate_apply_target *t)
{
    if (t->name == NULL)
        say(r, "%s: 'name' is missing", place);
    if (t->paths == NULL)
        say(r, "%s: 'paths' is missing: a target covers at least one path", place);
    if (t->audience == NULL)
        say(r, "%s: 'audience' is missing: the aud its tokens must carry", place);
    else if (!mandate_audience_uri_valid(t->audience, strlen(t->audience)))
        say(r, "%s.audience: '%.80s' is not an absolute URI without a fragment", place,
            t->audience);
    if (t->tenant != NULL && !mandate_client_id_valid(t->tenant))
        say(r, "%s.tenant: '%.80s' must be letters, digits, '-', '.', '_' or '~'", place,
            t->tenant);
}

bool mandate_apply_doc_read(mandate_pool *pool, json_t *root, mandate_apply_doc *doc,
                            mandate_diag *diag)
{
    memset(doc, 0, sizeof(*doc));
    reader r = {pool, diag, true};
    if (!json_is_object(root)) {
        say(&r, "the document must be an object: { \"clients\": [...], \"targets\": [...] }");
        return false;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        bool clients = strcmp(key, "clients") == 0;
        if (!clients && strcmp(key, "targets") != 0) {
            say(&r, "%.64s: unknown key at the top (known: clients, targets)", key);
            continue;
        }
        size_t max = clients ? MANDATE_APPLY_MAX_CLIENTS : MANDATE_APPLY_MAX_TARGETS;
        if (!json_is_array(v)) {
            say(&r, "%s: must be a list of objects", key);
            continue;
        }
        if (json_array_size(v) > max) {
            say(&r, "%s: more than %zu entries", key, max);
            continue;
        }
        size_t n = json_array_size(v);
        if (clients) {
            doc->clients = mandate_pool_alloc(pool, (n ? n : 1) * sizeof(*doc->clients));
            memset(doc->clients, 0, (n ? n : 1) * sizeof(*doc->clients));
        } else {
            doc->has_targets = true;
            doc->targets = mandate_pool_alloc(pool, (n ? n : 1) * sizeof(*doc->targets));
            memset(doc->targets, 0, (n ? n : 1) * sizeof(*doc->targets));
        }
        for (size_t i = 0; i < n; i++) {
            json_t *item = json_array_get(v, i);
            const char *place = mandate_pool_printf(pool, "%s[%zu]", key, i);
            if (!json_is_object(item)) {
                say(&r, "%s: must be an object", place);
                continue;
            }
            if (clients) {
                mandate_apply_client *c = &doc->clients[doc->client_count++];
                c->index = i;
                read_fields(&r, place, item, client_fields, c);
                check_client(&r, place, c);
                for (size_t k = 0; c->id != NULL && k + 1 < doc->client_count; k++)
                    if (doc->clients[k].id != NULL && strcmp(doc->clients[k].id, c->id) == 0)
                        say(&r, "%s.id: '%s' is clients[%zu] again", place, c->id,
                            doc->clients[k].index);
            } else {
                mandate_apply_target *t = &doc->targets[doc->target_count++];
                t->index = i;
                read_fields(&r, place, item, target_fields, t);
                check_target(&r, place, t);
                for (size_t k = 0; t->name != NULL && k + 1 < doc->target_count; k++)
                    if (doc->targets[k].name != NULL &&
                        strcmp(doc->targets[k].name, t->name) == 0)
                        say(&r, "%s.name: '%s' is targets[%zu] again", place, t->name,
                            doc->targets[k].index);
            }
        }
    }
    if (!r.ok && diag->count >= MANDATE_APPLY_MAX_ERRORS)
        mandate_diag_add(diag, "(more errors not shown)");
    return r.ok;
}

json_t *mandate_apply_json_from_setting(const config_setting_t *s, int depth)
{
    if (depth > MANDATE_APPLY_MAX_DEPTH)
        return NULL;
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_GROUP: {
        json_t *o = json_object();
        for (int i = 0; i < config_setting_length(s); i++) {
            config_setting_t *m = config_setting_get_elem(s, (unsigned)i);
            json_t *v = mandate_apply_json_from_setting(m, depth + 1);
            if (v == NULL || config_setting_name(m) == NULL) {
                json_decref(v);
                json_decref(o);
                return NULL;
            }
            json_object_set_new(o, config_setting_name(m), v);
        }
        return o;
    }
    case CONFIG_TYPE_LIST:
    case CONFIG_TYPE_ARRAY: {
        json_t *a = json_array();
        for (int i = 0; i < config_setting_length(s); i++) {
            json_t *v =
                mandate_apply_json_from_setting(config_setting_get_elem(s, (unsigned)i), depth + 1);
            if (v == NULL) {
                json_decref(a);
                return NULL;
            }
            json_array_append_new(a, v);
        }
        return a;
    }
    case CONFIG_TYPE_INT: return json_integer(config_setting_get_int(s));
    case CONFIG_TYPE_INT64: return json_integer(config_setting_get_int64(s));
    case CONFIG_TYPE_FLOAT: return json_real(config_setting_get_float(s));
    case CONFIG_TYPE_BOOL: return json_boolean(config_setting_get_bool(s));
    case CONFIG_TYPE_STRING: return json_string(config_setting_get_string(s));
    default: return NULL;
    }
}

const char *mandate_apply_client_auth(const mandate_apply_client *c)
{
    return c->auth != NULL ? c->auth : "client_secret";
}

/* --- the plan ------------------------------------------------------------ */

/* Two lists hold the same words, order and repeats aside. */
static bool same_words(const char *a, const char *b)
{
    return mandate_word_list_missing(a, b, &(size_t){0}) == NULL &&
           mandate_word_list_missing(b, a, &(size_t){0}) == NULL;
}

static bool same_text(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static const char *shown_text(const char *s)
{
    return s != NULL ? s : "-";
}

static const char *shown_words(mandate_pool *pool, const char *s)
{
    return mandate_pool_printf(pool, "[%s]", s != NULL ? s : "");
}

typedef struct field_diff {
    mandate_pool *pool;
    const char **fields;
    size_t count;
} field_diff;

static void differs(field_diff *fd, const char *name, const char *old, const char *new)
{
    fd->fields = mandate_xrealloc(fd->fields, (fd->count + 1) * sizeof(char *));
    fd->fields[fd->count++] = mandate_pool_printf(fd->pool, "%s: %s -> %s", name, old, new);
}

static void diff_text(field_diff *fd, const char *name, const char *have, const char *want)
{
    if (!same_text(have, want))
        differs(fd, name, shown_text(have), shown_text(want));
}

static void diff_words(field_diff *fd, const char *name, const char *have, const char *want)
{
    if (!same_words(have, want))
        differs(fd, name, shown_words(fd->pool, have), shown_words(fd->pool, want));
}

static void diff_int(field_diff *fd, const char *name, int64_t have, int64_t want)
{
    if (have != want)
        differs(fd, name, mandate_pool_printf(fd->pool, "%lld", (long long)have),
                mandate_pool_printf(fd->pool, "%lld", (long long)want));
}

static void diff_bool(field_diff *fd, const char *name, bool have, bool want)
{
    if (have != want)
        differs(fd, name, have ? "true" : "false", want ? "true" : "false");
}

static const char *tenant_of(const char *tenant)
{
    return tenant != NULL ? tenant : "default";
}

static void diff_client(field_diff *fd, const mandate_apply_client *have,
                        const mandate_apply_client *want)
{
    diff_text(fd, "name", have->name, want->name);
    diff_text(fd, "tenant", tenant_of(have->tenant), tenant_of(want->tenant));
    diff_text(fd, "format", have->format, want->format);
    diff_words(fd, "scopes", have->scopes, want->scopes);
    diff_words(fd, "default_scopes", have->default_scopes, want->default_scopes);
    diff_words(fd, "audiences", have->audiences, want->audiences);
    /* kept when the document does not say */
    if (want->grant_types != NULL)
        diff_words(fd, "grant_types", have->grant_types, want->grant_types);
    if (want->redirect_uris != NULL)
        diff_words(fd, "redirect_uris", have->redirect_uris, want->redirect_uris);
    diff_int(fd, "ttl", have->ttl, want->ttl);
    if (have->rate_limit != want->rate_limit)
        differs(fd, "rate_limit", mandate_pool_printf(fd->pool, "%g", have->rate_limit),
                mandate_pool_printf(fd->pool, "%g", want->rate_limit));
    diff_int(fd, "rate_burst", have->rate_burst, want->rate_burst);
    diff_bool(fd, "introspect", have->introspect, want->introspect);
    if (want->public_key != NULL && !same_text(have->public_key, want->public_key))
        differs(fd, "public_key", "(the stored key)", "(the key in the file)");
    diff_bool(fd, "disabled", have->disabled, want->disabled);
}

static void diff_target(field_diff *fd, const mandate_apply_target *have,
                        const mandate_apply_target *want)
{
    diff_words(fd, "paths", have->paths, want->paths);
    diff_text(fd, "audience", have->audience, want->audience);
    diff_words(fd, "scopes", have->scopes, want->scopes);
    diff_text(fd, "tenant", have->tenant, want->tenant);
    diff_text(fd, "resource_metadata", have->resource_metadata, want->resource_metadata);
}

static mandate_apply_change *add_change(mandate_apply_plan *plan, mandate_apply_op op,
                                        bool is_target, const char *name)
{
    plan->changes = mandate_xrealloc(plan->changes, (plan->count + 1) * sizeof(*plan->changes));
    mandate_apply_change *c = &plan->changes[plan->count++];
    memset(c, 0, sizeof(*c));
    c->op = op;
    c->is_target = is_target;
    c->name = name;
    switch (op) {
    case MANDATE_APPLY_CREATE: plan->creates++; break;
    case MANDATE_APPLY_UPDATE: plan->updates++; break;
    case MANDATE_APPLY_DISABLE: plan->disables++; break;
    case MANDATE_APPLY_REMOVE: plan->removals++; break;
    }
    return c;
}

/* The fields, copied into the pool (the list itself is malloc'd). */
/* The update of name to the fields fd found different (fd is emptied), or
 * NULL when it found none. */
static mandate_apply_change *update_of(mandate_pool *pool, mandate_apply_plan *plan,
                                       field_diff *fd, bool is_target, const char *name)
{
    if (fd->count == 0)
        return NULL;
    mandate_apply_change *c = add_change(plan, MANDATE_APPLY_UPDATE, is_target, name);
    c->fields = mandate_pool_alloc(pool, (fd->count ? fd->count : 1) * sizeof(char *));
    memcpy(c->fields, fd->fields, fd->count * sizeof(char *));
    c->field_count = fd->count;
    free(fd->fields);
    fd->fields = NULL;
    fd->count = 0;
    return c;
}

static const mandate_apply_client *client_named(const mandate_apply_client *list, size_t n,
                                                const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i].id, id) == 0)
            return &list[i];
    return NULL;
}

static const mandate_apply_target *target_named(const mandate_apply_target *list, size_t n,
                                                const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i].name, name) == 0)
            return &list[i];
    return NULL;
}

bool mandate_apply_plan_make(mandate_pool *pool, const mandate_apply_doc *doc,
                             const mandate_apply_client *have, size_t have_count,
                             const mandate_apply_target *have_targets, size_t have_target_count,
                             bool prune, mandate_apply_plan *plan, mandate_diag *diag)
{
    memset(plan, 0, sizeof(*plan));
    reader r = {pool, diag, true};
    field_diff fd = {pool, NULL, 0};
    /* creates first, then updates: the order the document gives */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < doc->client_count; i++) {
            const mandate_apply_client *want = &doc->clients[i];
            const mandate_apply_client *old = client_named(have, have_count, want->id);
            if (pass == 0 && old == NULL) {
                add_change(plan, MANDATE_APPLY_CREATE, false, want->id)->want = want;
                continue;
            }
            if (pass == 0 || old == NULL)
                continue;
            const char *place = mandate_pool_printf(pool, "clients[%zu] (%s)", want->index,
                                                    want->id);
            if (strcmp(mandate_apply_client_auth(old), mandate_apply_client_auth(want)) != 0) {
                say(&r, "%s.auth: the client authenticates with %s, not %s; a credential "
                        "cannot change in place: declare a new client",
                    place, mandate_apply_client_auth(old), mandate_apply_client_auth(want));
                continue;
            }
            if (want->backend != NULL && !same_text(old->backend, want->backend)) {
                say(&r, "%s.backend: the client's credential is with backend '%s', not '%s'; "
                        "it cannot move: declare a new client",
                    place, shown_text(old->backend), want->backend);
                continue;
            }
            diff_client(&fd, old, want);
            mandate_apply_change *c = update_of(pool, plan, &fd, false, want->id);
            if (c != NULL)
                c->want = want, c->have = old;
        }
    for (size_t k = 0; k < have_count; k++) {
        if (client_named(doc->clients, doc->client_count, have[k].id) != NULL ||
            have[k].disabled)
            continue;
        if (!prune || have[k].registered)
            plan->left_alone++;
        else
            add_change(plan, MANDATE_APPLY_DISABLE, false, have[k].id)->have = &have[k];
    }
    if (doc->has_targets) {
        for (size_t i = 0; i < doc->target_count; i++) {
            const mandate_apply_target *want = &doc->targets[i];
            const mandate_apply_target *old =
                target_named(have_targets, have_target_count, want->name);
            if (old == NULL) {
                add_change(plan, MANDATE_APPLY_CREATE, true, want->name)->want_target = want;
                continue;
            }
            diff_target(&fd, old, want);
            mandate_apply_change *c = update_of(pool, plan, &fd, true, want->name);
            if (c != NULL)
                c->want_target = want, c->have_target = old;
        }
        for (size_t k = 0; k < have_target_count; k++)
            if (target_named(doc->targets, doc->target_count, have_targets[k].name) == NULL)
                add_change(plan, MANDATE_APPLY_REMOVE, true, have_targets[k].name)->have_target =
                    &have_targets[k];
    }
    if (!r.ok) {
        free(plan->changes);
        memset(plan, 0, sizeof(*plan));
    }
    return r.ok;
}
