/* The settings of people's sign-in (the authorization endpoint, browser
 * sessions, codes, refresh tokens, consent), from the `signin` group of
 * mandate.conf; see mandate.conf(5), SIGN-IN. */
#ifndef MANDATE_SIGNIN_CONFIG_PRIVATE_H
#define MANDATE_SIGNIN_CONFIG_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include <libconfig.h>

#include "conf-private.h"

/* An IdP offered on the sign-in page (signin.idps). */
typedef struct mandate_signin_idp {
    char *instance; /* a backend instance that offers sign-in */
    char *label;    /* shown on the chooser; default: the instance name */
    char **domains; /* login_hint e-mail domains routed straight to it */
} mandate_signin_idp;

/* A tenant's display name (signin.tenants), shown on the pages. */
typedef struct mandate_signin_tenant {
    char *tenant;
    char *name;
} mandate_signin_tenant;

typedef struct mandate_signin_config {
    int64_t session_lifetime;  /* a browser session's absolute life */
    int64_t session_idle;      /* ... and how long it may sit unused */
    int64_t pending_lifetime;  /* the user's time at the IdP */
    int64_t code_lifetime;     /* an authorization code's life (at most 60 s) */
    bool refresh_tokens;       /* issued to clients whose grant_types allow */
    int64_t refresh_lifetime;  /* a refresh family's absolute life */
    int64_t refresh_idle;      /* a refresh token's life unless rotated */
    int64_t consent_lifetime;  /* a remembered consent's life; 0: until revoked */
    mandate_signin_idp *idps;  /* NULL/0: every backend instance that signs in */
    size_t idp_count;
    mandate_signin_tenant *tenants;
    size_t tenant_count;
} mandate_signin_config;

/* Reads the lists signin.idps and signin.tenants (the scalars come with
 * mandate.conf's other keys); every problem is a diag line with file and
 * line. */
bool mandate_signin_config_read(const config_t *file, const char *path,
                                mandate_signin_config *out, mandate_diag *diag);
void mandate_signin_config_free(mandate_signin_config *signin);

/* The display name of a tenant: its configured name, else the tenant. */
const char *mandate_signin_tenant_name(const mandate_signin_config *signin, const char *tenant);

#endif
