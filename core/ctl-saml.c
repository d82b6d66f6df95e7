/* mandatectl saml sp-metadata INSTANCE: the service provider's SAML metadata
 * of a saml backend instance, for the IdP's administrator; the same document
 * as GET /login/INSTANCE/metadata, with the ACS under the configured issuer
 * (server.issuer: the broker's public URL). */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "ctl-private.h"
#include "plugins-private.h"
#include "pool-private.h"

static int usage(void)
{
    fprintf(stderr, "Usage: mandatectl saml sp-metadata INSTANCE\n");
    return CTL_USAGE;
}

int ctl_cmd_saml(ctl *c, int argc, char **argv)
{
    if (argc != 3 || strcmp(argv[1], "sp-metadata") != 0)
        return usage();
    const char *name = argv[2];
    mandate_runtime *rt = ctl_runtime(c, MANDATE_RUNTIME_MIGRATE | MANDATE_RUNTIME_DRY_RUN);
    if (rt == NULL)
        return CTL_REFUSED;
    int status = CTL_REFUSED;
    const mandate_instance *in = mandate_runtime_find(rt, MANDATE_BACKEND, name);
    if (in == NULL || !mandate_backend_publishes_login_metadata(in)) {
        fprintf(stderr, "mandatectl saml sp-metadata: no enabled backend '%s' publishes sign-in "
                        "metadata\n",
                name);
    } else {
        const mandate_config *cfg = mandate_runtime_config(rt);
        mandate_pool *pool = mandate_pool_new();
        mandate_error err = {0};
        char *text = NULL;
        const char *type = NULL;
        const char *acs = mandate_pool_printf(pool, "%s/login/%s/callback", cfg->issuer, name);
        if (cfg->issuer_derived)
            fprintf(stderr, "mandatectl saml sp-metadata: server.issuer is not set; the ACS is "
                            "%s (set server.issuer to the broker's public URL)\n",
                    acs);
        if (mandate_backend_login_metadata(in, pool, acs, &text, &type, &err) != MANDATE_OK) {
            fprintf(stderr, "mandatectl saml sp-metadata: %s\n",
                    err.message[0] ? err.message : "nothing to publish");
        } else {
            fputs(text, stdout);
            status = CTL_OK;
        }
        mandate_pool_free(&pool);
    }
    mandate_runtime_unref(&rt);
    return status;
}
