/* A backend whose answers the test writes into the assertion itself, so the
 * core's grants and its plugin facade can be driven through every path of a
 * real backend without an IdP: the assertion is a script of key=value pairs
 * separated by ';' (or a JWT whose payload segment, base64url, is one):
 *
 *   rc=ok|next|denied|invalid|expired|tempfail|error   the answer (ok)
 *   msg=TEXT        the error message
 *   sleep=MS        wait that long first (the facade's bound on BLOCKING)
 *   sub=, iss=, tenant=, id=, exp=, auth_time=   the identity's fields
 *   attrs=JSON      the identity's attributes: the rest of the script
 *
 * iss defaults to the instance's issuer; an assertion that names another
 * issuer is answered NEXT with "another issuer", as a real backend does.
 * Built twice: backend-script, and backend-slowscript with
 * MANDATE_PLUGIN_BLOCKING (SCRIPT_BLOCKING). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mandate/backend.h>

#include "jose.h"

#ifdef SCRIPT_BLOCKING
#define SCRIPT_PLUGIN slowscript
#define SCRIPT_FLAGS MANDATE_PLUGIN_BLOCKING
#else
#define SCRIPT_PLUGIN script
#define SCRIPT_FLAGS 0u
#endif

typedef struct script {
    char *issuer;
    char *state;
    const mandate_host *host;
} script;

static const mandate_conf_def conf[] = {
    {"issuer", MANDATE_CONF_STRING, 0, offsetof(script, issuer), "https://idp.example", 0, 0,
     NULL, NULL},
    {"state", MANDATE_CONF_STRING, 0, offsetof(script, state), "ok", 0, 0, NULL, NULL},
    MANDATE_CONF_END};

static mandate_rc start(void *inst, const mandate_host *host, mandate_error *err)
{
    (void)err;
    ((script *)inst)->host = host;
    return MANDATE_OK;
}

/* The script: the text itself, or the decoded payload of a JWT (which
 * holds no '=': base64url without padding). */
static char *script_text(const mandate_host *host, mandate_pool *pool, const char *a,
                         size_t len)
{
    const char *dot = memchr(a, '.', len);
    if (dot == NULL || memchr(a, '=', len) != NULL)
        return host->pool_memdup(pool, a, len);
    const char *p = dot + 1, *end = memchr(p, '.', len - (size_t)(p - a));
    if (end == NULL)
        end = a + len;
    size_t cap = (size_t)(end - p) + 1, n = 0;
    unsigned char *out = host->pool_alloc(pool, cap);
    if (!mandate_b64url_decode(p, (size_t)(end - p), out, cap, &n))
        return NULL;
    out[n] = '\0';
    return (char *)out;
}

static const struct {
    const char *name;
    mandate_rc rc;
} answers[] = {
    {"ok", MANDATE_OK},           {"next", MANDATE_NEXT},       {"denied", MANDATE_DENIED},
    {"invalid", MANDATE_INVALID}, {"expired", MANDATE_EXPIRED}, {"tempfail", MANDATE_TEMPFAIL},
    {"error", MANDATE_ERROR},
};

static mandate_rc validate(void *inst, mandate_pool *pool, const char *token_type,
                           const char *assertion, size_t len, mandate_identity *id,
                           mandate_error *err)
{
    const script *s = inst;
    (void)token_type;
    char *text = script_text(s->host, pool, assertion, len);
    if (text == NULL)
        return mandate_error_set(err, MANDATE_INVALID, "not a script");
    mandate_rc rc = MANDATE_OK;
    const char *msg = "refused by the script";
    id->issuer = s->issuer;
    id->subject = "alice";
    for (char *p = text; *p != '\0';) {
        char *eq = strchr(p, '=');
        if (eq == NULL)
            return mandate_error_set(err, MANDATE_INVALID, "no '=' in '%s'", p);
        *eq = '\0';
        const char *k = p, *v = eq + 1;
        if (strcmp(k, "attrs") == 0) {
            id->attributes = v; /* the rest of the script, ';' and all */
            break;
        }
        char *semi = strchr(eq + 1, ';');
        if (semi != NULL)
            *semi = '\0';
        p = semi != NULL ? semi + 1 : eq + 1 + strlen(eq + 1);
        if (strcmp(k, "rc") == 0) {
            rc = MANDATE_ERROR;
            for (size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); i++)
                if (strcmp(v, answers[i].name) == 0)
                    rc = answers[i].rc;
        } else if (strcmp(k, "msg") == 0) {
            msg = v;
        } else if (strcmp(k, "sleep") == 0) {
            long ms = strtol(v, NULL, 10);
            struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        } else if (strcmp(k, "sub") == 0) {
            id->subject = v;
        } else if (strcmp(k, "iss") == 0) {
            id->issuer = v;
        } else if (strcmp(k, "tenant") == 0) {
            id->tenant = v;
        } else if (strcmp(k, "id") == 0) {
            id->assertion_id = v;
        } else if (strcmp(k, "exp") == 0) {
            id->expires_at = strtoll(v, NULL, 10);
        } else if (strcmp(k, "auth_time") == 0) {
            id->authn_instant = strtoll(v, NULL, 10);
        } else {
            return mandate_error_set(err, MANDATE_INVALID, "unknown key '%s'", k);
        }
    }
    if (rc == MANDATE_OK && strcmp(id->issuer, s->issuer) != 0)
        return mandate_error_set(err, MANDATE_NEXT, "another issuer");
    if (rc != MANDATE_OK)
        return mandate_error_set(err, rc, "%s", msg);
    return MANDATE_OK;
}

static const char *status(void *inst, mandate_pool *pool, const char **detail_r)
{
    (void)pool;
    *detail_r = "scripted";
    return ((const script *)inst)->state;
}

static const char *const types[] = {"urn:ietf:params:oauth:token-type:saml2",
                                    "urn:ietf:params:oauth:token-type:jwt",
                                    "urn:ietf:params:oauth:token-type:id_token",
                                    "urn:ietf:params:oauth:token-type:id-jag", NULL};

static const mandate_backend_ops ops = {
    .assertion_types = types,
    .validate_assertion = validate,
    .status = status,
};

MANDATE_PLUGIN(SCRIPT_PLUGIN, MANDATE_BACKEND, "1.0.0", SCRIPT_FLAGS, script, conf, start, NULL,
               &ops);
