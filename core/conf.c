#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "conf-private.h"
#include "log-private.h"
#include "util-private.h"

static void diag_vadd(mandate_diag *diag, const char *prefix, const char *fmt, va_list ap)
    MANDATE_PRINTF(3, 0);

static void diag_vadd(mandate_diag *diag, const char *prefix, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    diag->lines = mandate_xrealloc(diag->lines, (diag->count + 1) * sizeof(char *));
    diag->lines[diag->count++] =
        prefix ? mandate_xasprintf("%s%s", prefix, msg) : mandate_xstrdup(msg);
}

void mandate_diag_add(mandate_diag *diag, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_vadd(diag, NULL, fmt, ap);
    va_end(ap);
}

void mandate_diag_add_at(mandate_diag *diag, const config_setting_t *setting,
                         const char *fmt, ...)
{
    char prefix[512];
    const char *file = config_setting_source_file(setting);
    snprintf(prefix, sizeof(prefix), "%s:%u: ", file ? file : "(config)",
             config_setting_source_line(setting));
    va_list ap;
    va_start(ap, fmt);
    diag_vadd(diag, prefix, fmt, ap);
    va_end(ap);
}

void mandate_diag_free(mandate_diag *diag)
{
    for (size_t i = 0; i < diag->count; i++)
        free(diag->lines[i]);
    free(diag->lines);
    diag->lines = NULL;
    diag->count = 0;
}

char *mandate_diag_join(const mandate_diag *diag)
{
    size_t len = 1;
    for (size_t i = 0; i < diag->count; i++)
        len += strlen(diag->lines[i]) + 2;
    char *out = mandate_xmalloc(len);
    out[0] = '\0';
    for (size_t i = 0; i < diag->count; i++) {
        if (i > 0)
            strcat(out, "; ");
        strcat(out, diag->lines[i]);
    }
    return out;
}

config_setting_t *mandate_conf_list_group(const config_setting_t *list, int i, const char *what,
                                          mandate_diag *diag)
{
    config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
    if (config_setting_is_group(g))
        return g;
    mandate_diag_add_at(diag, g, "each %s must be a group { name = ...; ... }", what);
    return NULL;
}

bool mandate_conf_read_file(config_t *cfg, const char *path, mandate_diag *diag)
{
    config_init(cfg);
    if (config_read_file(cfg, path) == CONFIG_TRUE)
        return true;
    if (config_error_type(cfg) == CONFIG_ERR_FILE_IO)
        mandate_diag_add(diag, "%s: cannot read: %s", path, strerror(errno));
    else
        mandate_diag_add(diag, "%s:%d: %s", config_error_file(cfg) ? config_error_file(cfg) : path,
                         config_error_line(cfg), config_error_text(cfg));
    return false;
}

static const char *type_name(mandate_conf_type type)
{
    switch (type) {
    case MANDATE_CONF_STRING: return "a string";
    case MANDATE_CONF_PATH: return "a path (string)";
    case MANDATE_CONF_INT: return "an integer";
    case MANDATE_CONF_BOOL: return "true or false";
    case MANDATE_CONF_STRING_LIST: return "a list of strings, like [\"a\", \"b\"]";
    }
    return "?";
}

/* The setting's dotted path below the group being checked. */
static void setting_path(const config_setting_t *s, const config_setting_t *top,
                         char *buf, size_t cap)
{
    const char *names[16];
    size_t n = 0;
    for (; s != NULL && s != top && n < 16; s = config_setting_parent(s))
        names[n++] = config_setting_name(s) ? config_setting_name(s) : "?";
    buf[0] = '\0';
    size_t pos = 0;
    while (n-- > 0 && pos < cap)
        pos += (size_t)snprintf(buf + pos, cap - pos, "%s%s", pos ? "." : "", names[n]);
}

static bool is_reserved(const char *key, const char *const *reserved)
{
    for (; reserved != NULL && *reserved != NULL; reserved++)
        if (strcmp(key, *reserved) == 0)
            return true;
    return false;
}

static const mandate_conf_def *find_def(const mandate_conf_def *defs, const char *key)
{
    for (; defs != NULL && defs->key != NULL; defs++)
        if (strcmp(defs->key, key) == 0)
            return defs;
    return NULL;
}

static bool is_group_prefix(const mandate_conf_def *defs, const char *key)
{
    size_t len = strlen(key);
    for (; defs != NULL && defs->key != NULL; defs++)
        if (strncmp(defs->key, key, len) == 0 && defs->key[len] == '.')
            return true;
    return false;
}

/* Report every setting that no def names. */
static void check_unknown(const config_setting_t *group, const config_setting_t *top,
                          const mandate_conf_def *defs, const char *const *reserved,
                          mandate_diag *diag)
{
    int n = config_setting_length(group);
    for (int i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
        char path[256];
        setting_path(s, top, path, sizeof(path));
        if (is_reserved(path, reserved) || find_def(defs, path) != NULL)
            continue;
        if (config_setting_is_group(s) && is_group_prefix(defs, path)) {
            check_unknown(s, top, defs, reserved, diag);
            continue;
        }
        mandate_diag_add_at(diag, s, "unknown key '%s'", path);
    }
}

/* Find a dotted key below group, walking one component at a time. */
static config_setting_t *lookup_dotted(const config_setting_t *group, const char *key,
                                       bool *parent_not_group_r)
{
    char part[128];
    config_setting_t *s = (config_setting_t *)group;
    *parent_not_group_r = false;
    while (s != NULL) {
        const char *dot = strchr(key, '.');
        size_t len = dot ? (size_t)(dot - key) : strlen(key);
        if (len >= sizeof(part))
            return NULL;
        memcpy(part, key, len);
        part[len] = '\0';
        if (!config_setting_is_group(s)) {
            *parent_not_group_r = true;
            return NULL;
        }
        s = config_setting_get_member(s, part);
        if (dot == NULL)
            return s;
        key = dot + 1;
    }
    return NULL;
}

static bool choice_ok(const char *choices, const char *value)
{
    size_t vlen = strlen(value);
    const char *p = choices;
    while (*p != '\0') {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == vlen && strncmp(p, value, len) == 0)
            return true;
        if (bar == NULL)
            break;
        p = bar + 1;
    }
    return false;
}

static void free_list(char **list)
{
    for (size_t i = 0; list != NULL && list[i] != NULL; i++)
        free(list[i]);
    free(list);
}

/* Store one value into the target; `s` is NULL when it comes from the
 * default text. Returns false (and adds a diagnostic) on a bad value. */
static bool store_value(const mandate_conf_def *def, const config_setting_t *s,
                        const char *file, const char *path_base, void *target,
                        mandate_diag *diag)
{
    char *field = (char *)target + def->offset;
    const char *where_key = def->key;
#define BAD(...)                                                               \
    do {                                                                       \
        if (s)                                                                 \
            mandate_diag_add_at(diag, s, __VA_ARGS__);                         \
        else                                                                   \
            mandate_diag_add(diag, "%s: " "default of %s is bad", file, where_key); \
        return false;                                                          \
    } while (0)

    switch (def->type) {
    case MANDATE_CONF_STRING:
    case MANDATE_CONF_PATH: {
        const char *v = s ? config_setting_get_string(s) : def->default_value;
        if (v == NULL)
            BAD("'%s' must be %s", def->key, type_name(def->type));
        if (def->choices != NULL && !choice_ok(def->choices, v))
            BAD("'%s' must be one of %s", def->key, def->choices);
        if (def->type == MANDATE_CONF_PATH && v[0] == '\0')
            BAD("'%s' must not be empty", def->key);
        char **slot = (char **)(void *)field;
        free(*slot);
        *slot = def->type == MANDATE_CONF_PATH ? mandate_path_join(path_base, v)
                                               : mandate_xstrdup(v);
        return true;
    }
    case MANDATE_CONF_INT: {
        long long v;
        if (s) {
            int t = config_setting_type(s);
            if (t == CONFIG_TYPE_INT)
                v = config_setting_get_int(s);
            else if (t == CONFIG_TYPE_INT64)
                v = config_setting_get_int64(s);
            else
                BAD("'%s' must be %s", def->key, type_name(def->type));
        } else {
            char *end;
            errno = 0;
            v = strtoll(def->default_value, &end, 10);
            if (errno != 0 || *end != '\0')
                BAD("bad default");
        }
        if ((def->min != 0 || def->max != 0) && (v < def->min || v > def->max))
            BAD("'%s' is %lld, outside the allowed range %" PRId64 "..%" PRId64, def->key,
                v, def->min, def->max);
        *(int64_t *)(void *)field = (int64_t)v;
        return true;
    }
    case MANDATE_CONF_BOOL: {
        bool v;
        if (s) {
            if (config_setting_type(s) != CONFIG_TYPE_BOOL)
                BAD("'%s' must be %s", def->key, type_name(def->type));
            v = config_setting_get_bool(s) != 0;
        } else {
            v = strcmp(def->default_value, "true") == 0;
        }
        *(bool *)(void *)field = v;
        return true;
    }
    case MANDATE_CONF_STRING_LIST: {
        char ***slot = (char ***)(void *)field;
        char **list;
        if (s) {
            if (!config_setting_is_aggregate(s) || config_setting_is_group(s))
                BAD("'%s' must be %s", def->key, type_name(def->type));
            int n = config_setting_length(s);
            list = mandate_xcalloc((size_t)n + 1, sizeof(char *));
            for (int i = 0; i < n; i++) {
                const char *v = config_setting_get_string_elem(s, i);
                if (v == NULL) {
                    free_list(list);
                    BAD("'%s' must be %s", def->key, type_name(def->type));
                }
                list[i] = mandate_xstrdup(v);
            }
        } else {
            /* a default list is written as space-separated words */
            list = mandate_xcalloc(strlen(def->default_value) / 2 + 2, sizeof(char *));
            size_t n = 0;
            char *copy = mandate_xstrdup(def->default_value), *save = NULL;
            for (char *w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save))
                list[n++] = mandate_xstrdup(w);
            free(copy);
        }
        free_list(*slot);
        *slot = list;
        return true;
    }
    }
#undef BAD
    return false;
}

bool mandate_conf_apply(const config_setting_t *group, const char *file,
                        const mandate_conf_def *defs, const char *const *reserved,
                        const char *path_base, void *target, mandate_diag *diag)
{
    size_t before = diag->count;
    check_unknown(group, group, defs, reserved, diag);
    for (const mandate_conf_def *def = defs; def != NULL && def->key != NULL; def++) {
        bool parent_not_group;
        config_setting_t *s = lookup_dotted(group, def->key, &parent_not_group);
        if (s == NULL) {
            if (def->flags & MANDATE_CONF_REQUIRED) {
                mandate_diag_add(diag, "%s: required key '%s' is missing", file, def->key);
                continue;
            }
            if (def->default_value != NULL)
                store_value(def, NULL, file, path_base, target, diag);
            continue;
        }
        if (def->flags & MANDATE_CONF_DEPRECATED)
            log_warning("%s:%u: '%s' is deprecated%s%s", file,
                        config_setting_source_line(s), def->key, def->help ? ": " : "",
                        def->help ? def->help : "");
        store_value(def, s, file, path_base, target, diag);
    }
    return diag->count == before;
}

void mandate_conf_free_values(const mandate_conf_def *defs, void *target)
{
    for (const mandate_conf_def *def = defs; def != NULL && def->key != NULL; def++) {
        char *field = (char *)target + def->offset;
        if (def->type == MANDATE_CONF_STRING || def->type == MANDATE_CONF_PATH) {
            char **slot = (char **)(void *)field;
            if (*slot != NULL && (def->flags & MANDATE_CONF_SECRET))
                OPENSSL_cleanse(*slot, strlen(*slot));
            free(*slot);
            *slot = NULL;
        } else if (def->type == MANDATE_CONF_STRING_LIST) {
            char ***slot = (char ***)(void *)field;
            free_list(*slot);
            *slot = NULL;
        }
    }
}
