#include "config.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "signin-config-private.h"
#include "util-private.h"

#define IDP_OFF(field) offsetof(mandate_signin_idp, field)
static const mandate_conf_def idp_defs[] = {
    {"instance", MANDATE_CONF_STRING, MANDATE_CONF_REQUIRED, IDP_OFF(instance), NULL, 0, 0, NULL,
     "the backend instance (its file's name) the user signs in at"},
    {"label", MANDATE_CONF_STRING, 0, IDP_OFF(label), NULL, 0, 0, NULL,
     "what the sign-in page calls it; default: the instance's name"},
    {"domains", MANDATE_CONF_STRING_LIST, 0, IDP_OFF(domains), "", 0, 0, NULL,
     "e-mail domains of login_hint sent straight to it"},
    MANDATE_CONF_END};

#define TENANT_OFF(field) offsetof(mandate_signin_tenant, field)
static const mandate_conf_def tenant_defs[] = {
    {"tenant", MANDATE_CONF_STRING, MANDATE_CONF_REQUIRED, TENANT_OFF(tenant), NULL, 0, 0, NULL,
     "the tenant"},
    {"name", MANDATE_CONF_STRING, MANDATE_CONF_REQUIRED, TENANT_OFF(name), NULL, 0, 0, NULL,
     "its name on the sign-in and consent pages"},
    MANDATE_CONF_END};

/* A list of groups read with defs into an array of elements of size
 * bytes; an absent list is none. */
static bool read_groups(const config_t *file, const char *path, const char *key,
                        const mandate_conf_def *defs, size_t size, void **array_r,
                        size_t *count_r, mandate_diag *diag)
{
    *array_r = NULL;
    *count_r = 0;
    config_setting_t *list = config_lookup(file, key);
    if (list == NULL)
        return true;
    if (!config_setting_is_list(list)) {
        mandate_diag_add_at(diag, list, "'%s' must be a list of groups: ( { ... }, ... )", key);
        return false;
    }
    int n = config_setting_length(list);
    char *array = mandate_xcalloc(n > 0 ? (size_t)n : 1, size);
    *array_r = array;
    bool ok = true;
    for (int i = 0; i < n; i++) {
        config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
        if (!config_setting_is_group(g)) {
            mandate_diag_add_at(diag, g, "each of '%s' must be a group { ... }", key);
            ok = false;
            continue;
        }
        if (!mandate_conf_apply(g, path, defs, NULL, NULL, array + (size_t)i * size, diag))
            ok = false;
        (*count_r)++;
    }
    return ok;
}

bool mandate_signin_config_read(const config_t *file, const char *path,
                                mandate_signin_config *out, mandate_diag *diag)
{
    void *idps, *tenants;
    bool ok = read_groups(file, path, "signin.idps", idp_defs, sizeof(mandate_signin_idp), &idps,
                          &out->idp_count, diag);
    out->idps = idps;
    ok = read_groups(file, path, "signin.tenants", tenant_defs, sizeof(mandate_signin_tenant),
                     &tenants, &out->tenant_count, diag) &&
         ok;
    out->tenants = tenants;
    for (size_t i = 0; ok && i < out->idp_count; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(out->idps[i].instance, out->idps[j].instance) == 0) {
                mandate_diag_add_at(diag, config_lookup(file, "signin.idps"),
                                    "'signin.idps' names instance '%s' twice",
                                    out->idps[i].instance);
                ok = false;
            }
    if (!ok)
        mandate_signin_config_free(out);
    return ok;
}

void mandate_signin_config_free(mandate_signin_config *signin)
{
    for (size_t i = 0; i < signin->idp_count; i++)
        mandate_conf_free_values(idp_defs, &signin->idps[i]);
    free(signin->idps);
    for (size_t i = 0; i < signin->tenant_count; i++)
        mandate_conf_free_values(tenant_defs, &signin->tenants[i]);
    free(signin->tenants);
    signin->idps = NULL;
    signin->tenants = NULL;
    signin->idp_count = signin->tenant_count = 0;
}

const char *mandate_signin_tenant_name(const mandate_signin_config *signin, const char *tenant)
{
    for (size_t i = 0; tenant != NULL && i < signin->tenant_count; i++)
        if (strcmp(signin->tenants[i].tenant, tenant) == 0)
            return signin->tenants[i].name;
    return tenant != NULL ? tenant : "";
}
