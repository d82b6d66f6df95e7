#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <ltdl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plugin-loader-private.h"
#include "util-private.h"

#define PLUGIN_SUFFIX ".so"

/* lt_dlinit/lt_dlexit are reference counted but not thread-safe. */
static pthread_mutex_t ltdl_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const kind_names[] = {NULL, "backend", "format", "store"};

const char *mandate_plugin_kind_name(mandate_plugin_kind kind)
{
    if (kind >= MANDATE_BACKEND && kind <= MANDATE_STORE)
        return kind_names[kind];
    return "unknown";
}

bool mandate_plugin_kind_parse(const char *name, mandate_plugin_kind *kind_r)
{
    for (int k = MANDATE_BACKEND; k <= MANDATE_STORE; k++) {
        if (strcmp(kind_names[k], name) == 0) {
            *kind_r = (mandate_plugin_kind)k;
            return true;
        }
    }
    return false;
}

/* Plugin names become part of a symbol: lower-case letters, digits and '_'. */
static bool valid_plugin_name(const char *name)
{
    if (name[0] == '\0' || strlen(name) > 64)
        return false;
    for (const char *p = name; *p != '\0'; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return true;
}

/* Checks the descriptor without calling into the plugin. */
static mandate_rc check_descriptor(const mandate_plugin *p, mandate_plugin_kind kind,
                                   const char *name, const char *file, mandate_error *err)
{
    if (p->magic != MANDATE_PLUGIN_MAGIC)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "plugin '%s' (%s): bad magic 0x%08x, not a mandate plugin",
                                 name, file, p->magic);
    if (p->abi_major != MANDATE_PLUGIN_ABI_MAJOR)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "plugin '%s' (%s): built for plugin ABI %u.%u, this mandate "
                                 "speaks ABI %d.%d; rebuild the plugin",
                                 name, file, p->abi_major, p->abi_minor,
                                 MANDATE_PLUGIN_ABI_MAJOR, MANDATE_PLUGIN_ABI_MINOR);
    if (p->kind != kind)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "plugin '%s' (%s): declares kind '%s' but its file says '%s'",
                                 name, file, mandate_plugin_kind_name(p->kind),
                                 mandate_plugin_kind_name(kind));
    if (p->name == NULL || strcmp(p->name, name) != 0)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "plugin '%s' (%s): declares the name '%s', which does not "
                                 "match its file",
                                 name, file, p->name ? p->name : "(none)");
    if (p->instantiate == NULL || p->ops == NULL || p->version == NULL)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "plugin '%s' (%s): descriptor lacks instantiate, ops or "
                                 "version",
                                 name, file);
    return MANDATE_OK;
}

static void ltdl_release(void)
{
    pthread_mutex_lock(&ltdl_lock);
    lt_dlexit();
    pthread_mutex_unlock(&ltdl_lock);
}

static mandate_rc open_checked(const char *path, mandate_plugin_kind kind, const char *name,
                               mandate_plugin_handle **handle_r, mandate_error *err)
{
    if (access(path, F_OK) != 0)
        return mandate_error_set(err, MANDATE_NOT_FOUND,
                                 "plugin '%s' (%s): not found: %s", name, path,
                                 strerror(errno));
    pthread_mutex_lock(&ltdl_lock);
    if (lt_dlinit() != 0) {
        pthread_mutex_unlock(&ltdl_lock);
        return mandate_error_set(err, MANDATE_ERROR, "libltdl: %s", lt_dlerror());
    }
    /* local: two plugins may use the same internal symbol names */
    lt_dladvise advise;
    lt_dladvise_init(&advise);
    lt_dladvise_local(&advise);
    lt_dlhandle dl = lt_dlopenadvise(path, advise);
    lt_dladvise_destroy(&advise);
    const char *why = dl == NULL ? lt_dlerror() : NULL;
    char why_copy[256] = "";
    if (why != NULL)
        snprintf(why_copy, sizeof(why_copy), "%s", why);
    pthread_mutex_unlock(&ltdl_lock);
    if (dl == NULL) {
        ltdl_release();
        return mandate_error_set(err, MANDATE_INVALID, "plugin '%s' (%s): cannot load: %s",
                                 name, path, why_copy);
    }

    char symbol[128];
    snprintf(symbol, sizeof(symbol), "mandate_plugin_%s", name);
    pthread_mutex_lock(&ltdl_lock);
    const mandate_plugin *p = lt_dlsym(dl, symbol);
    pthread_mutex_unlock(&ltdl_lock);
    mandate_rc rc;
    if (p == NULL)
        rc = mandate_error_set(err, MANDATE_INVALID,
                               "plugin '%s' (%s): no symbol '%s', not a mandate plugin", name,
                               path, symbol);
    else
        rc = check_descriptor(p, kind, name, path, err);
    if (rc != MANDATE_OK) {
        pthread_mutex_lock(&ltdl_lock);
        lt_dlclose(dl);
        pthread_mutex_unlock(&ltdl_lock);
        ltdl_release();
        return rc;
    }
    mandate_plugin_handle *h = mandate_xcalloc(1, sizeof(*h));
    h->dl = dl;
    h->plugin = p;
    h->file = mandate_xstrdup(path);
    *handle_r = h;
    return MANDATE_OK;
}

mandate_rc mandate_plugin_open(const char *dir, const char *kind, const char *name,
                               mandate_plugin_handle **handle_r, mandate_error *err)
{
    mandate_plugin_kind k;
    if (!mandate_plugin_kind_parse(kind, &k))
        return mandate_error_set(err, MANDATE_INVALID, "unknown plugin kind '%s'", kind);
    if (!valid_plugin_name(name))
        return mandate_error_set(err, MANDATE_INVALID,
                                 "bad plugin name '%s': lower-case letters, digits and '_'",
                                 name);
    char *path = mandate_xasprintf("%s/%s-%s" PLUGIN_SUFFIX, dir, kind, name);
    mandate_rc rc = open_checked(path, k, name, handle_r, err);
    free(path);
    return rc;
}

mandate_rc mandate_plugin_open_file(const char *path, mandate_plugin_handle **handle_r,
                                    mandate_error *err)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dash = strchr(base, '-');
    size_t blen = strlen(base), slen = strlen(PLUGIN_SUFFIX);
    if (dash == NULL || blen <= slen || strcmp(base + blen - slen, PLUGIN_SUFFIX) != 0)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "%s: not a plugin file name (<kind>-<name>.so)", path);
    char kind[16], name[80];
    size_t klen = (size_t)(dash - base), nlen = blen - slen - klen - 1;
    if (klen >= sizeof(kind) || nlen >= sizeof(name) || nlen == 0)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "%s: not a plugin file name (<kind>-<name>.so)", path);
    memcpy(kind, base, klen);
    kind[klen] = '\0';
    memcpy(name, dash + 1, nlen);
    name[nlen] = '\0';
    mandate_plugin_kind k;
    if (!mandate_plugin_kind_parse(kind, &k))
        return mandate_error_set(err, MANDATE_INVALID,
                                 "%s: '%s' is not a plugin kind (backend, format, store)",
                                 path, kind);
    if (!valid_plugin_name(name))
        return mandate_error_set(err, MANDATE_INVALID, "%s: bad plugin name '%s'", path, name);
    return open_checked(path, k, name, handle_r, err);
}

void mandate_plugin_close(mandate_plugin_handle **handlep)
{
    mandate_plugin_handle *h = *handlep;
    if (h == NULL)
        return;
    pthread_mutex_lock(&ltdl_lock);
    lt_dlclose((lt_dlhandle)h->dl);
    lt_dlexit();
    pthread_mutex_unlock(&ltdl_lock);
    free(h->file);
    free(h);
    *handlep = NULL;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

mandate_rc mandate_plugin_scan(const char *dir, mandate_plugin_scan_cb each, void *ctx,
                               mandate_error *err)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return mandate_error_set(err, MANDATE_NOT_FOUND, "plugin folder %s: %s", dir,
                                 strerror(errno));
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    size_t slen = strlen(PLUGIN_SUFFIX);
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len <= slen || strcmp(e->d_name + len - slen, PLUGIN_SUFFIX) != 0)
            continue;
        names = mandate_xrealloc(names, (n + 1) * sizeof(char *));
        names[n++] = mandate_xstrdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(char *), compare_names);
    for (size_t i = 0; i < n; i++) {
        char *path = mandate_path_join(dir, names[i]);
        mandate_plugin_handle *h = NULL;
        mandate_error perr = {0};
        mandate_plugin_open_file(path, &h, &perr);
        each(ctx, path, h, h ? NULL : &perr);
        mandate_plugin_close(&h);
        free(path);
        free(names[i]);
    }
    free(names);
    return MANDATE_OK;
}
