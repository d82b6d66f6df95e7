/* The grant table: see grant-table-private.h. */
#include "config.h"

#include <pthread.h>
#include <string.h>

#include "grant-table-private.h"
#include "grants-private.h"
#include "metrics-private.h"
#include "plugins-private.h"
#include "runtime-private.h"
#include "signin-private.h"
#include "token-types-private.h"

static const char *const saml2_types[] = {MANDATE_TOKEN_TYPE_SAML2, NULL};
static const char *const jwt_types[] = {MANDATE_TOKEN_TYPE_JWT, MANDATE_TOKEN_TYPE_ID_JAG,
                                        NULL};

/* In the order of grant_types_supported. Token exchange of our own tokens
 * always works; the bearer grants only when a backend takes such
 * assertions. */
static const mandate_grant_type rows[] = {
    {MANDATE_GRANT_AUTHORIZATION_CODE_URI, mandate_grant_authorization_code,
     "authorization_code", MANDATE_GRANT_ADVERTISED_IF_SIGNIN, NULL},
    {MANDATE_GRANT_REFRESH_TOKEN_URI, mandate_grant_refresh_token, "refresh_token",
     MANDATE_GRANT_ADVERTISED_IF_SIGNIN, NULL},
    {MANDATE_GRANT_CLIENT_CREDENTIALS_URI, mandate_grant_client_credentials,
     "client_credentials", MANDATE_GRANT_ADVERTISED, NULL},
    {MANDATE_GRANT_TOKEN_EXCHANGE_URI, mandate_grant_token_exchange, "token_exchange",
     MANDATE_GRANT_ADVERTISED, NULL},
    {MANDATE_GRANT_SAML2_BEARER_URI, mandate_grant_saml2_bearer, "saml2_bearer",
     MANDATE_GRANT_ADVERTISED_IF_ACCEPTED, saml2_types},
    {MANDATE_GRANT_JWT_BEARER_URI, mandate_grant_jwt_bearer, "jwt_bearer",
     MANDATE_GRANT_ADVERTISED_IF_ACCEPTED, jwt_types},
};
#define ROWS (sizeof(rows) / sizeof(rows[0]))
_Static_assert(MANDATE_METRICS_GRANT_FIRST + ROWS <= MANDATE_METRICS_GRANT_SLOTS,
               "more grants than the request metrics have slots for");

const mandate_grant_type *mandate_grant_table_find(const char *grant_type)
{
    for (size_t i = 0; grant_type != NULL && i < ROWS; i++)
        if (strcmp(grant_type, rows[i].uri) == 0)
            return &rows[i];
    return NULL;
}

size_t mandate_grant_table_count(void)
{
    return ROWS;
}

const mandate_grant_type *mandate_grant_table_at(size_t i)
{
    return i < ROWS ? &rows[i] : NULL;
}

bool mandate_grant_table_advertised(const mandate_grant_type *grant,
                                    const struct mandate_runtime *rt)
{
    switch (grant->advertised) {
    case MANDATE_GRANT_ADVERTISED: return true;
    case MANDATE_GRANT_NOT_ADVERTISED: return false;
    case MANDATE_GRANT_ADVERTISED_IF_SIGNIN: return mandate_signin_available(rt);
    case MANDATE_GRANT_ADVERTISED_IF_ACCEPTED: break;
    }
    for (size_t i = 0; i < mandate_runtime_instance_count(rt); i++)
        for (const char *const *t = grant->subject_token_types; t && *t; t++)
            if (mandate_backend_accepts(mandate_runtime_instance(rt, i), *t))
                return true;
    return false;
}

unsigned mandate_grant_table_metric_slot(const char *grant_type)
{
    if (grant_type == NULL)
        return MANDATE_METRICS_GRANT_NONE;
    const mandate_grant_type *g = mandate_grant_table_find(grant_type);
    return g != NULL ? MANDATE_METRICS_GRANT_FIRST + (unsigned)(g - rows)
                     : MANDATE_METRICS_GRANT_OTHER;
}

static const char *labels[ROWS + 1];
static pthread_once_t labels_once = PTHREAD_ONCE_INIT;

static void labels_fill(void)
{
    for (size_t i = 0; i < ROWS; i++)
        labels[i] = rows[i].metric;
}

const char *const *mandate_grant_table_metric_labels(void)
{
    pthread_once(&labels_once, labels_fill);
    return labels;
}
