/* A test backend whose "IdP" signs in whoever is asked for, at once: its
 * login_start sends the browser straight back to the broker's callback with
 * the user named by login_hint (else "alice"). It lets the end-to-end tests
 * drive the whole sign-in (authorization request, callback, session,
 * consent, code, tokens) with curl; the real IdPs (OpenID Connect, SAML)
 * are tested with real providers in tests/interop/.
 *
 * It checks what the core owes a backend: the handle it gave login_start
 * comes back as state, and what it asked to remember comes back as is.
 * Answers: user=error -> DENIED (the IdP said no), user=forged -> INVALID
 * (a tampered answer); the identity carries an e-mail and a role: the
 * instance's, or ROLE for a login_hint "NAME+ROLE@..." (the same user,
 * NAME, whose attributes the IdP changed). */
#include <stdio.h>
#include <string.h>

#include <mandate/backend.h>


typedef struct fakeidp {
    char *issuer;
    char *role;
    const mandate_host *host;
} fakeidp;

static const mandate_conf_def conf[] = {
    {"issuer", MANDATE_CONF_STRING, 0, offsetof(fakeidp, issuer), "https://fake-idp.test", 0,
     0, NULL, "the identities' issuer"},
    {"role", MANDATE_CONF_STRING, 0, offsetof(fakeidp, role), "advisor", 0, 0, NULL,
     "the role every user has"},
    MANDATE_CONF_END};

static mandate_rc start(void *inst, const mandate_host *host, mandate_error *err)
{
    (void)err;
    ((fakeidp *)inst)->host = host;
    return MANDATE_OK;
}

static char *encode(const mandate_host *h, mandate_pool *pool, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len = strlen(s);
    char *out = h->pool_alloc(pool, 3 * len + 1), *o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 0xf];
        }
    }
    *o = '\0';
    return out;
}

static mandate_rc login_start(void *inst, mandate_pool *pool, const mandate_login_request *rq,
                              mandate_login_redirect *out, mandate_error *err)
{
    fakeidp *f = inst;
    const char *user = rq->login_hint != NULL ? rq->login_hint : "alice";
    const char *at = strchr(user, '@');
    char name[128];
    snprintf(name, sizeof(name), "%.*s", at ? (int)(at - user) : (int)strlen(user), user);
    size_t n = strlen(rq->callback_url) + strlen(rq->handle) * 3 + strlen(name) * 3 + 64;
    char *url = f->host->pool_alloc(pool, n);
    snprintf(url, n, "%s?state=%s&user=%s%s", rq->callback_url,
             encode(f->host, pool, rq->handle), encode(f->host, pool, name),
             rq->force_login ? "&forced=1" : "");
    char remember[256];
    snprintf(remember, sizeof(remember), "fake:%s", rq->handle);
    out->url = url;
    out->remember = f->host->pool_strdup(pool, remember);
    (void)err;
    return MANDATE_OK;
}

static const char *param(const mandate_login_response *r, const char *name)
{
    for (size_t i = 0; i < r->param_count; i++)
        if (strcmp(r->params[i].name, name) == 0)
            return r->params[i].value;
    return NULL;
}

static mandate_rc login_finish(void *inst, mandate_pool *pool, const mandate_login_response *r,
                               mandate_identity *id, mandate_error *err)
{
    fakeidp *f = inst;
    const char *state = param(r, "state"), *user = param(r, "user");
    char want[256];
    snprintf(want, sizeof(want), "fake:%s", state ? state : "");
    if (r->remember == NULL || strcmp(r->remember, want) != 0)
        return mandate_error_set(err, MANDATE_INVALID, "what login_start remembered is lost");
    if (user == NULL || strcmp(user, "forged") == 0)
        return mandate_error_set(err, MANDATE_INVALID, "a forged answer");
    if (strcmp(user, "error") == 0)
        return mandate_error_set(err, MANDATE_DENIED, "the IdP said access_denied");
    const char *plus = strchr(user, '+');
    const char *role = plus != NULL ? plus + 1 : f->role;
    int name_len = plus != NULL ? (int)(plus - user) : (int)strlen(user);
    char attrs[512];
    snprintf(attrs, sizeof(attrs),
             "{\"email\":\"%.*s@example.com\",\"role\":\"%s\",\"uid\":\"%.*s\"}", name_len,
             user, role, name_len, user);
    user = f->host->pool_strdup(pool, user);
    if (plus != NULL)
        ((char *)user)[name_len] = '\0';
    id->issuer = f->issuer;
    id->subject = user;
    id->attributes = f->host->pool_strdup(pool, attrs);
    id->authn_instant = f->host->now(f->host);
    return MANDATE_OK;
}

static const mandate_backend_ops ops = {
    .login_start = login_start,
    .login_finish = login_finish,
};

MANDATE_PLUGIN(fakeidp, MANDATE_BACKEND, "1.0", 0, fakeidp, conf, start, NULL, &ops);
