/* A grant as JSON claims and back, and the grant's strings: grant-claims.h. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "grant-claims.h"
#include "jose.h"
#include "word-list.h"

/* --- grant -> claims ---------------------------------------------------------- */

/* json_object_set_new takes the value's reference even when it fails, and
 * fails on the NULL that json_string returns for a NULL or a string that is
 * not valid UTF-8: one test covers both. */
static bool put_str(json_t *obj, const char *name, const char *value)
{
    return json_object_set_new(obj, name, json_string(value)) == 0;
}

static bool put_int(json_t *obj, const char *name, int64_t value)
{
    return json_object_set_new(obj, name, json_integer((json_int_t)value)) == 0;
}

/* aud from a space-separated list: nothing when it holds no word, a string
 * for one, an array for several. */
static bool put_aud(json_t *obj, const char *audience)
{
    const char *cur = audience, *w;
    size_t n, words = mandate_word_list_count(audience);
    if (words == 0)
        return true;
    if (words == 1 && mandate_word_list_next(&cur, &w, &n))
        return json_object_set_new(obj, "aud", json_stringn(w, n)) == 0;
    json_t *list = json_array();
    while (list != NULL && mandate_word_list_next(&cur, &w, &n))
        if (json_array_append_new(list, json_stringn(w, n)) != 0) {
            json_decref(list);
            return false;
        }
    return json_object_set_new(obj, "aud", list) == 0;
}

static bool given(const char *s)
{
    return s != NULL && s[0] != '\0';
}

mandate_rc mandate_grant_claims_put(json_t *obj, const mandate_grant *g, bool with_prior,
                                    const char *who, mandate_error *err)
{
    const char *bad = NULL, *why = NULL;
    if (!put_str(obj, "iss", g->issuer))
        bad = "issuer";
    else if (!put_str(obj, "sub", g->subject))
        bad = "subject";
    else if (!put_aud(obj, g->audience))
        bad = "audience";
    else if (!put_int(obj, "exp", g->expires_at) || !put_int(obj, "iat", g->issued_at) ||
             !put_int(obj, "nbf", g->not_before != 0 ? g->not_before : g->issued_at))
        bad = "times";
    else if (!put_str(obj, "jti", g->jti))
        bad = "jti";
    else if (!put_str(obj, "client_id", g->client_id))
        bad = "client_id";
    else if (g->scope != NULL && !put_str(obj, "scope", g->scope))
        bad = "scope";
    else if (given(g->tenant) && !put_str(obj, "tenant", g->tenant))
        bad = "tenant";
    else if (given(g->actor)) {
        /* RFC 8693 §4.1: the current actor outermost, those before it nested */
        json_t *act = mandate_jwt_act_encode(g->actor, with_prior ? g->prior_actors : NULL,
                                             MANDATE_GRANT_MAX_ACTORS, &why);
        if (act == NULL || json_object_set_new(obj, "act", act) != 0)
            bad = "act";
    }
    if (bad == NULL && given(g->idp) && !put_str(obj, "idp", g->idp))
        bad = "idp";
    if (bad == NULL)
        return MANDATE_OK;
    if (why != NULL)
        return mandate_error_set(err, MANDATE_INVALID, "%s: grant's act: %s", who, why);
    return mandate_error_set(err, MANDATE_INVALID, "%s: grant %s is not valid UTF-8", who, bad);
}

mandate_rc mandate_grant_cnf_put(json_t *obj, const mandate_grant *g, const char *who,
                                 mandate_error *err)
{
    if (!given(g->cnf_jkt) && !given(g->cnf_x5t_s256))
        return MANDATE_OK;
    json_t *cnf = json_object();
    if (cnf == NULL || (given(g->cnf_jkt) && !put_str(cnf, "jkt", g->cnf_jkt)) ||
        (given(g->cnf_x5t_s256) && !put_str(cnf, "x5t#S256", g->cnf_x5t_s256)) ||
        json_object_set_new(obj, "cnf", cnf) != 0) {
        json_decref(cnf);
        return mandate_error_set(err, MANDATE_INVALID, "%s: grant cnf is not valid UTF-8", who);
    }
    return MANDATE_OK;
}

mandate_rc mandate_grant_may_act_put(json_t *obj, const mandate_grant *g, const char *who,
                                     mandate_error *err)
{
    size_t words = mandate_word_list_count(g->may_act);
    if (words == 0)
        return MANDATE_OK;
    if (words > MANDATE_GRANT_MAX_MAY_ACT)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "%s: grant's may_act names %zu actors, "
                                 "more than %d",
                                 who, words, MANDATE_GRANT_MAX_MAY_ACT);
    /* RFC 8693 §4.4: one party is an object; several, an array of them */
    json_t *list = words > 1 ? json_array() : NULL, *one = NULL;
    const char *cur = g->may_act, *w;
    size_t n;
    bool ok = true;
    while (ok && mandate_word_list_next(&cur, &w, &n)) {
        one = json_pack("{s:s%}", "sub", w, n);
        ok = one != NULL && (list == NULL || json_array_append_new(list, one) == 0);
    }
    if (ok && json_object_set_new(obj, "may_act", list != NULL ? list : one) == 0)
        return MANDATE_OK;
    json_decref(list);
    return mandate_error_set(err, MANDATE_INVALID, "%s: grant may_act is not valid UTF-8", who);
}

mandate_rc mandate_grant_origin_put(json_t *obj, const mandate_grant *g, const char *who,
                                    mandate_error *err)
{
    if (g->origin_client_id == NULL || put_str(obj, "origin_client_id", g->origin_client_id))
        return MANDATE_OK;
    return mandate_error_set(err, MANDATE_INVALID, "%s: grant origin_client_id is not valid UTF-8",
                             who);
}

mandate_rc mandate_grant_claims_put_all(json_t *obj, const mandate_grant *g,
                                        uint16_t abi_minor, const char *who, mandate_error *err)
{
    mandate_rc rc = mandate_grant_claims_put(obj, g, abi_minor >= 4, who, err);
    if (rc == MANDATE_OK && abi_minor >= 5) /* the binding (cnf) */
        rc = mandate_grant_cnf_put(obj, g, who, err);
    if (rc == MANDATE_OK && abi_minor >= 6) /* who may act for it */
        rc = mandate_grant_may_act_put(obj, g, who, err);
    if (rc == MANDATE_OK && abi_minor >= 9) /* where its chain began */
        rc = mandate_grant_origin_put(obj, g, who, err);
    return rc;
}

/* --- claims -> grant ---------------------------------------------------------- */

/* The member name of claims in *v_r, NULL when absent (an error when
 * required); an error when it is there but not a string (or with integer,
 * not an integer). */
static mandate_rc member(const json_t *claims, const mandate_grant_claims_reader *r,
                         const char *name, bool required, bool integer, const json_t **v_r,
                         mandate_error *err)
{
    const json_t *v = json_object_get(claims, name);
    *v_r = v;
    if (v == NULL)
        return required ? mandate_error_set(err, r->bad, "%s %s is missing", r->what, name)
                        : MANDATE_OK;
    if (integer ? !json_is_integer(v) : !json_is_string(v))
        return mandate_error_set(err, r->bad, "%s %s is not %s", r->what, name,
                                 integer ? "an integer" : "a string");
    return MANDATE_OK;
}

/* A string claim into the pool: *value_r NULL when absent. */
static mandate_rc get_str(const mandate_host *host, mandate_pool *pool, const json_t *claims,
                          const mandate_grant_claims_reader *r, const char *name, bool required,
                          const char **value_r, mandate_error *err)
{
    const json_t *v;
    mandate_rc rc = member(claims, r, name, required, false, &v, err);
    *value_r =
        rc == MANDATE_OK && v != NULL ? host->pool_strdup(pool, json_string_value(v)) : NULL;
    return rc;
}

static mandate_rc get_int(const json_t *claims, const mandate_grant_claims_reader *r,
                          const char *name, bool required, bool *present_r, int64_t *value_r,
                          mandate_error *err)
{
    const json_t *v;
    mandate_rc rc = member(claims, r, name, required, true, &v, err);
    *present_r = v != NULL;
    *value_r = rc == MANDATE_OK && v != NULL ? (int64_t)json_integer_value(v) : 0;
    return rc;
}

/* aud: a string, or an array of strings joined with spaces. */
static mandate_rc get_aud(const mandate_host *host, mandate_pool *pool, const json_t *claims,
                          const mandate_grant_claims_reader *r, const char **value_r,
                          mandate_error *err)
{
    const json_t *aud = json_object_get(claims, "aud");
    *value_r = NULL;
    if (aud == NULL)
        return MANDATE_OK;
    if (json_is_string(aud)) {
        *value_r = host->pool_strdup(pool, json_string_value(aud));
        return MANDATE_OK;
    }
    if (!json_is_array(aud))
        return mandate_error_set(err, r->bad, "%s aud is neither a string nor an array",
                                 r->what);
    size_t total = 1, i;
    const json_t *v;
    json_array_foreach(aud, i, v)
    {
        if (!json_is_string(v))
            return mandate_error_set(err, r->bad, "%s aud holds something else than strings",
                                     r->what);
        total += json_string_length(v) + 1;
    }
    if (json_array_size(aud) == 0)
        return MANDATE_OK;
    char *joined = host->pool_alloc(pool, total), *p = joined;
    json_array_foreach(aud, i, v)
    {
        if (i > 0)
            *p++ = ' ';
        size_t len = json_string_length(v);
        memcpy(p, json_string_value(v), len);
        p += len;
    }
    *p = '\0';
    *value_r = joined;
    return MANDATE_OK;
}

/* A thumbprint: SHA-256 in base64url without padding (RFC 7638 §3,
 * RFC 8705 §3.1), 43 characters of that alphabet. */
static bool is_thumbprint(const json_t *v)
{
    static const char b64url[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *s = json_string_value(v);
    return s != NULL && json_string_length(v) == MANDATE_JWK_THUMBPRINT_LEN &&
           strspn(s, b64url) == MANDATE_JWK_THUMBPRINT_LEN;
}

const char *mandate_grant_cnf_of(const json_t *claims, const char **jkt_r, const char **x5t_r)
{
    *jkt_r = *x5t_r = NULL;
    const json_t *cnf = json_object_get(claims, "cnf");
    if (cnf == NULL)
        return NULL;
    if (!json_is_object(cnf))
        return "cnf is not an object";
    const char *name;
    const json_t *v;
    json_object_foreach((json_t *)cnf, name, v)
    {
        /* RFC 7800 §3: a binding that cannot be checked makes a token that
         * cannot be honoured, not a bearer token */
        if (strcmp(name, "jkt") != 0 && strcmp(name, "x5t#S256") != 0)
            return "cnf binds the token by a method this broker does not check";
        if (!is_thumbprint(v))
            return "cnf holds a thumbprint that is not one";
    }
    *jkt_r = json_string_value(json_object_get(cnf, "jkt"));
    *x5t_r = json_string_value(json_object_get(cnf, "x5t#S256"));
    if (*jkt_r == NULL && *x5t_r == NULL)
        return "cnf names no key this broker knows";
    return NULL;
}

/* cnf (RFC 7800 §3.1): the thumbprints a token is bound to. A host before
 * ABI 1.5 has nowhere to keep them and would take the token for a bearer
 * one: refused rather than loosened. */
static mandate_rc get_cnf(const mandate_host *host, mandate_pool *pool, const json_t *claims,
                          const mandate_grant_claims_reader *r, mandate_grant *g,
                          mandate_error *err)
{
    if (json_object_get(claims, "cnf") == NULL)
        return MANDATE_OK;
    if (host->abi_minor < 5)
        return mandate_error_set(err, r->bad,
                                 "%s cnf binds the token, and the host (ABI 1.%u) cannot "
                                 "check a binding",
                                 r->what, (unsigned)host->abi_minor);
    const char *jkt, *x5t, *why = mandate_grant_cnf_of(claims, &jkt, &x5t);
    if (why != NULL)
        return mandate_error_set(err, r->bad, "%s %s", r->what, why);
    g->cnf_jkt = jkt != NULL ? host->pool_strdup(pool, jkt) : NULL;
    g->cnf_x5t_s256 = x5t != NULL ? host->pool_strdup(pool, x5t) : NULL;
    return MANDATE_OK;
}

/* may_act (RFC 8693 §4.4): {"sub": ...} or an array of those, each sub a
 * client id; joined with spaces. A host before ABI 1.6 has no place for it
 * and leaves it: the token then admits fewer actors, never more. */
static mandate_rc get_may_act(const mandate_host *host, mandate_pool *pool,
                              const json_t *claims, const mandate_grant_claims_reader *r,
                              mandate_grant *g, mandate_error *err)
{
    const json_t *may = json_object_get(claims, "may_act");
    if (may == NULL || host->abi_minor < 6)
        return MANDATE_OK;
    size_t count = json_is_array(may) ? json_array_size(may) : 1;
    if (count == 0 || count > MANDATE_GRANT_MAX_MAY_ACT)
        return mandate_error_set(err, r->bad, "%s may_act names %zu actors (1 to %d)", r->what,
                                 count, MANDATE_GRANT_MAX_MAY_ACT);
    char buf[MANDATE_GRANT_MAX_MAY_ACT * 130];
    size_t len = 0;
    for (size_t i = 0; i < count; i++) {
        const json_t *one = json_is_array(may) ? json_array_get(may, i) : may;
        const json_t *sub = json_is_object(one) ? json_object_get(one, "sub") : NULL;
        size_t n = json_is_string(sub) ? json_string_length(sub) : 0;
        const char *v = json_is_string(sub) ? json_string_value(sub) : "";
        if (n == 0 || n > 128 || strcspn(v, " \t\r\n") != n)
            return mandate_error_set(err, r->bad,
                                     "%s may_act holds a party without a client "
                                     "id in sub",
                                     r->what);
        if (len > 0)
            buf[len++] = ' ';
        memcpy(buf + len, v, n);
        len += n;
    }
    buf[len] = '\0';
    g->may_act = host->pool_strdup(pool, buf);
    return MANDATE_OK;
}

static mandate_rc get_act(const mandate_host *host, mandate_pool *pool, const json_t *claims,
                          const mandate_grant_claims_reader *r, mandate_grant *g,
                          mandate_error *err)
{
    const json_t *act = json_object_get(claims, "act");
    char *actor, *prior;
    const char *why;
    mandate_rc rc = MANDATE_OK;
    if (act == NULL)
        return MANDATE_OK;
    if (!mandate_jwt_act_decode(act, MANDATE_GRANT_MAX_ACTORS, &actor, &prior, &why))
        return mandate_error_set(err, r->bad, "%s act: %s", r->what, why);
    g->actor = host->pool_strdup(pool, actor);
    /* a host without a place for the earlier actors would read the chain as
     * the nearest actor alone: refused rather than shortened */
    if (prior != NULL && host->abi_minor < 4)
        rc = mandate_error_set(err, r->bad,
                               "%s act is nested, and the host (ABI 1.%u) cannot carry the "
                               "earlier actors",
                               r->what, (unsigned)host->abi_minor);
    else if (prior != NULL)
        g->prior_actors = host->pool_strdup(pool, prior);
    free(actor);
    free(prior);
    return rc;
}

mandate_rc mandate_grant_claims_get(const mandate_host *host, mandate_pool *pool,
                                    const json_t *claims, const mandate_grant_claims_reader *r,
                                    mandate_grant *g, bool *nbf_given_r, mandate_error *err)
{
    bool has_exp, has_iat, has_nbf;
    int64_t exp, iat, nbf;
    mandate_rc rc;
    if ((rc = get_str(host, pool, claims, r, "iss", true, &g->issuer, err)) != MANDATE_OK ||
        (rc = get_str(host, pool, claims, r, "sub", true, &g->subject, err)) != MANDATE_OK ||
        (rc = get_str(host, pool, claims, r, "jti", true, &g->jti, err)) != MANDATE_OK ||
        (rc = get_str(host, pool, claims, r, "client_id", true, &g->client_id, err)) !=
            MANDATE_OK ||
        (rc = get_int(claims, r, "exp", true, &has_exp, &exp, err)) != MANDATE_OK ||
        (rc = get_int(claims, r, "iat", true, &has_iat, &iat, err)) != MANDATE_OK ||
        (rc = get_int(claims, r, "nbf", false, &has_nbf, &nbf, err)) != MANDATE_OK ||
        (rc = get_str(host, pool, claims, r, "scope", false, &g->scope, err)) != MANDATE_OK ||
        (rc = get_str(host, pool, claims, r, "tenant", false, &g->tenant, err)) != MANDATE_OK ||
        (rc = get_str(host, pool, claims, r, "idp", false, &g->idp, err)) != MANDATE_OK ||
        (rc = get_aud(host, pool, claims, r, &g->audience, err)) != MANDATE_OK ||
        (rc = get_act(host, pool, claims, r, g, err)) != MANDATE_OK ||
        (rc = get_cnf(host, pool, claims, r, g, err)) != MANDATE_OK ||
        (rc = get_may_act(host, pool, claims, r, g, err)) != MANDATE_OK)
        return rc;
    /* a host before ABI 1.9 has no place for it: the grant is read as its
     * chain's first (none), and only the cycle check has less to go on */
    if (host->abi_minor >= 9 &&
        (rc = get_str(host, pool, claims, r, "origin_client_id", false, &g->origin_client_id,
                      err)) != MANDATE_OK)
        return rc;
    g->expires_at = exp;
    g->issued_at = iat;
    g->not_before = has_nbf ? nbf : iat;
    if (nbf_given_r != NULL)
        *nbf_given_r = has_nbf;
    return MANDATE_OK;
}

/* --- the grant's strings ------------------------------------------------------ */

#define GRANT_STRINGS 14

/* The grant's strings, in order, for copying. A member added to
 * mandate_grant that holds a string is added here. */
static const char **grant_string(mandate_grant *g, size_t i)
{
    const char **fields[GRANT_STRINGS] = {
        &g->issuer,  &g->subject,      &g->client_id, &g->actor, &g->tenant,
        &g->scope,   &g->audience,     &g->idp,       &g->jti,   &g->prior_actors,
        &g->cnf_jkt, &g->cnf_x5t_s256, &g->may_act, &g->origin_client_id};
    return fields[i];
}

size_t mandate_grant_strings_size(const mandate_grant *grant)
{
    mandate_grant g = *grant;
    size_t len = 0;
    for (size_t i = 0; i < GRANT_STRINGS; i++)
        if (*grant_string(&g, i) != NULL)
            len += strlen(*grant_string(&g, i)) + 1;
    return len;
}

void mandate_grant_strings_copy(mandate_grant *grant, char *buf)
{
    for (size_t i = 0; i < GRANT_STRINGS; i++) {
        const char **s = grant_string(grant, i);
        if (*s == NULL)
            continue;
        size_t n = strlen(*s) + 1;
        memcpy(buf, *s, n);
        *s = buf;
        buf += n;
    }
}
