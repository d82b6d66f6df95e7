/* Mapping rules: read from mandate.conf, applied to a federated identity.
 * See mapping-private.h for the rules' syntax and meaning. */
#include "config.h"

#include <math.h>
#include <regex.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "clients-private.h"
#include "mapping-private.h"
#include "oauth-private.h"
#include "util-private.h"

/* The longest lifetime a rule may set, in seconds. */
#define LIFETIME_MAX 86400
/* Bounds of the texts put into why. */
#define WHY_MAX 640
#define QUOTE_MAX 40

#define RULE_OFF(field) offsetof(mandate_mapping_rule, field)
/* Required keys are checked by hand so that the message names the rule's
 * line, not only the file. */
static const mandate_conf_def rule_defs[] = {
    {"name", MANDATE_CONF_STRING, 0, RULE_OFF(name), NULL, 0, 0, NULL,
     "the rule's name, for logs and the audit trail"},
    {"idp", MANDATE_CONF_STRING, 0, RULE_OFF(idp), NULL, 0, 0, NULL,
     "the backend instance (or plugin name) whose identities the rule maps"},
    {"subject", MANDATE_CONF_STRING, 0, RULE_OFF(subject), NULL, 0, 0, NULL,
     "the subject template, e.g. \"advisor-${employeeId}\""},
    {"tenant", MANDATE_CONF_STRING, 0, RULE_OFF(tenant), "default", 0, 0, NULL,
     "the tenant of the tokens"},
    {"scopes", MANDATE_CONF_STRING_LIST, 0, RULE_OFF(scopes), NULL, 0, 0, NULL,
     "the scopes the rule allows"},
    {"audience", MANDATE_CONF_STRING_LIST, 0, RULE_OFF(audiences), "", 0, 0, NULL,
     "the audiences the rule allows"},
    {"max_lifetime", MANDATE_CONF_INT, 0, RULE_OFF(max_lifetime), "0", 0, LIFETIME_MAX, NULL,
     "seconds; 0: tokens.lifetime"},
    {"sensitive_scopes", MANDATE_CONF_STRING_LIST, 0, RULE_OFF(sensitive_scopes), "", 0, 0,
     NULL, "scopes (among scopes) with a shorter lifetime and a fresh authentication"},
    {"sensitive_lifetime", MANDATE_CONF_INT, 0, RULE_OFF(sensitive_lifetime), "0", 0,
     LIFETIME_MAX, NULL, "seconds a token with a sensitive scope lives"},
    {"sensitive_max_authn_age", MANDATE_CONF_INT, 0, RULE_OFF(sensitive_max_authn_age), "0", 0,
     LIFETIME_MAX, NULL, "seconds since the IdP authentication; 0: no limit"},
    MANDATE_CONF_END};
static const char *const rule_reserved[] = {"when", NULL};

/* A condition group as written, before it becomes a mandate_condition. */
typedef struct condition_conf {
    char *attribute;
    char *equals;
    char **one_of;
    bool present;
    char *matches;
} condition_conf;

#define COND_OFF(field) offsetof(condition_conf, field)
static const mandate_conf_def condition_defs[] = {
    {"attribute", MANDATE_CONF_STRING, 0, COND_OFF(attribute), NULL, 0, 0, NULL,
     "the attribute or claim; dotted for nested objects"},
    {"equals", MANDATE_CONF_STRING, 0, COND_OFF(equals), NULL, 0, 0, NULL,
     "one of the values is this"},
    {"one_of", MANDATE_CONF_STRING_LIST, 0, COND_OFF(one_of), NULL, 0, 0, NULL,
     "one of the values is among these"},
    {"present", MANDATE_CONF_BOOL, 0, COND_OFF(present), NULL, 0, 0, NULL,
     "the attribute has a value"},
    {"matches", MANDATE_CONF_STRING, 0, COND_OFF(matches), NULL, 0, 0, NULL,
     "one of the values matches this POSIX extended regex, whole"},
    MANDATE_CONF_END};

static const char *const condition_ops[] = {"equals", "one_of", "present", "matches", NULL};

static void free_list(char **list)
{
    for (size_t i = 0; list != NULL && list[i] != NULL; i++)
        free(list[i]);
    free(list);
}

/* Checks a subject template; NULL when good, else what is wrong (static or
 * in buf). */
static const char *template_problem(const char *t, char *buf, size_t cap)
{
    if (t[0] == '\0')
        return "is empty";
    for (const char *p = t; *p != '\0'; p++) {
        if (*p == '$') {
            if (p[1] != '{')
                return "holds a '$' that does not begin ${attribute}";
            const char *name = p + 2;
            size_t n = strcspn(name, "}${ \t");
            if (name[n] != '}')
                return "has a ${ without its closing }";
            if (n == 0)
                return "has an empty ${}";
            p = name + n;
        } else if (!mandate_client_id_char(*p)) {
            snprintf(buf, cap,
                     "holds '%c', which a subject cannot (letters, digits, '-', '.', '_', '~')",
                     (unsigned char)*p >= 0x20 && *p != 0x7f ? *p : '?');
            return buf;
        }
    }
    return NULL;
}

static void condition_free(mandate_condition *c)
{
    free(c->attribute);
    free_list(c->values);
    if (c->regex != NULL) {
        regfree(c->regex);
        free(c->regex);
    }
    memset(c, 0, sizeof(*c));
}

static void rule_free(mandate_mapping_rule *r)
{
    for (size_t i = 0; i < r->condition_count; i++)
        condition_free(&r->conditions[i]);
    free(r->conditions);
    mandate_conf_free_values(rule_defs, r);
    memset(r, 0, sizeof(*r));
}

/* One group of `when` into *c; false (said in diag) when it is wrong. */
static bool read_condition(const config_setting_t *g, const char *path, const char *rule,
                           mandate_condition *c, mandate_diag *diag)
{
    if (!config_setting_is_group(g)) {
        mandate_diag_add_at(diag, g,
                            "mapping '%s': each condition must be a group "
                            "{ attribute = ...; equals = ...; }",
                            rule);
        return false;
    }
    condition_conf cc = {0};
    bool ok = mandate_conf_apply(g, path, condition_defs, NULL, NULL, &cc, diag);
    if (cc.attribute == NULL || cc.attribute[0] == '\0') {
        mandate_diag_add_at(diag, g, "mapping '%s': a condition needs 'attribute'", rule);
        ok = false;
    }
    const char *op_name = NULL;
    size_t ops = 0;
    for (size_t i = 0; condition_ops[i] != NULL; i++)
        if (config_setting_get_member(g, condition_ops[i]) != NULL) {
            if (ops++ == 0)
                op_name = condition_ops[i];
        }
    if (ops != 1) {
        mandate_diag_add_at(diag, g,
                            "mapping '%s': a condition needs exactly one of equals, one_of, "
                            "present, matches (it has %zu)",
                            rule, ops);
        ok = false;
    }
    if (ok) {
        c->attribute = cc.attribute;
        cc.attribute = NULL;
        if (strcmp(op_name, "equals") == 0) {
            c->op = MANDATE_COND_EQUALS;
            c->values = mandate_xcalloc(2, sizeof(char *));
            c->values[0] = cc.equals;
            cc.equals = NULL;
        } else if (strcmp(op_name, "one_of") == 0) {
            c->op = MANDATE_COND_ONE_OF;
            c->values = cc.one_of;
            cc.one_of = NULL;
            if (c->values[0] == NULL) {
                mandate_diag_add_at(diag, config_setting_get_member(g, "one_of"),
                                    "mapping '%s': 'one_of' is empty", rule);
                ok = false;
            }
        } else if (strcmp(op_name, "present") == 0) {
            c->op = MANDATE_COND_PRESENT;
            if (!cc.present) {
                mandate_diag_add_at(diag, config_setting_get_member(g, "present"),
                                    "mapping '%s': 'present' can only be true", rule);
                ok = false;
            }
        } else {
            c->op = MANDATE_COND_MATCHES;
            /* the pattern is kept in values[0], for why */
            c->values = mandate_xcalloc(2, sizeof(char *));
            c->values[0] = cc.matches;
            cc.matches = NULL;
            char *anchored = mandate_xasprintf("^(%s)$", c->values[0]);
            regex_t *re = mandate_xcalloc(1, sizeof(*re));
            int rc = regcomp(re, anchored, REG_EXTENDED | REG_NOSUB);
            free(anchored);
            if (rc != 0) {
                char msg[256];
                regerror(rc, re, msg, sizeof(msg));
                mandate_diag_add_at(diag, config_setting_get_member(g, "matches"),
                                    "mapping '%s': bad regex '%.100s': %s", rule, c->values[0],
                                    msg);
                free(re);
                ok = false;
            } else {
                c->regex = re;
            }
        }
    }
    free(cc.attribute);
    free(cc.equals);
    free_list(cc.one_of);
    free(cc.matches);
    return ok;
}

static bool read_rule(const config_setting_t *g, const char *path, mandate_mappings *m,
                      mandate_mapping_rule *r, size_t index, mandate_diag *diag)
{
    size_t before = diag->count;
    mandate_conf_apply(g, path, rule_defs, rule_reserved, NULL, r, diag);
    char label[64];
    if (r->name == NULL || r->name[0] == '\0') {
        if (r->name != NULL || config_setting_get_member(g, "name") == NULL)
            mandate_diag_add_at(diag, g, "mapping #%zu: required key 'name' is missing",
                                index + 1);
        snprintf(label, sizeof(label), "#%zu", index + 1);
    } else {
        snprintf(label, sizeof(label), "%.60s", r->name);
        for (size_t k = 0; k < index; k++)
            if (m->rules[k].name != NULL && strcmp(m->rules[k].name, r->name) == 0)
                mandate_diag_add_at(diag, g, "mapping '%s' is named twice", label);
    }
    if ((r->idp == NULL && config_setting_get_member(g, "idp") == NULL) ||
        (r->idp != NULL && r->idp[0] == '\0'))
        mandate_diag_add_at(diag, g, "mapping '%s': required key 'idp' is missing", label);
    if (r->subject == NULL) {
        if (config_setting_get_member(g, "subject") == NULL)
            mandate_diag_add_at(diag, g, "mapping '%s': required key 'subject' is missing",
                                label);
    } else {
        char buf[128];
        const char *problem = template_problem(r->subject, buf, sizeof(buf));
        if (problem != NULL)
            mandate_diag_add_at(diag, config_setting_get_member(g, "subject"),
                                "mapping '%s': subject template %s", label, problem);
    }
    if (r->tenant != NULL && !mandate_client_id_valid(r->tenant))
        mandate_diag_add_at(diag, config_setting_get_member(g, "tenant"),
                            "mapping '%s': tenant must be 1 to 128 letters, digits, '-', '.', "
                            "'_' or '~'",
                            label);
    config_setting_t *scopes = config_setting_get_member(g, "scopes");
    if (r->scopes == NULL || r->scopes[0] == NULL) {
        if (scopes == NULL || r->scopes != NULL)
            mandate_diag_add_at(diag, scopes != NULL ? scopes : g,
                                "mapping '%s': 'scopes' is required and must not be empty",
                                label);
    } else {
        for (char **s = r->scopes; *s != NULL; s++)
            if (!mandate_scope_token_valid(*s, strlen(*s)))
                mandate_diag_add_at(diag, config_setting_get_member(g, "scopes"),
                                    "mapping '%s': scope '%.64s' holds a character RFC 6749 "
                                    "does not allow",
                                    label, *s);
    }
    for (char **a = r->audiences; a != NULL && *a != NULL; a++)
        if (!mandate_audience_uri_valid(*a, strlen(*a)))
            mandate_diag_add_at(diag, config_setting_get_member(g, "audience"),
                                "mapping '%s': audience '%.100s' must be an absolute URI "
                                "without a fragment",
                                label, *a);
    bool sensitive = r->sensitive_scopes != NULL && r->sensitive_scopes[0] != NULL;
    for (char **s = r->sensitive_scopes; s != NULL && *s != NULL; s++)
        if (!mandate_string_list_has(r->scopes, *s, strlen(*s)))
            mandate_diag_add_at(diag, config_setting_get_member(g, "sensitive_scopes"),
                                "mapping '%s': sensitive scope '%.64s' is not among its scopes",
                                label, *s);
    if (sensitive && r->sensitive_lifetime == 0)
        mandate_diag_add_at(diag, g,
                            "mapping '%s': sensitive_scopes needs sensitive_lifetime "
                            "(1..%d seconds)",
                            label, LIFETIME_MAX);
    if (!sensitive && (config_setting_get_member(g, "sensitive_lifetime") != NULL ||
                       config_setting_get_member(g, "sensitive_max_authn_age") != NULL))
        mandate_diag_add_at(diag, g,
                            "mapping '%s': sensitive_lifetime and sensitive_max_authn_age "
                            "mean nothing without sensitive_scopes",
                            label);

    config_setting_t *when = config_setting_get_member(g, "when");
    if (when != NULL) {
        if (!config_setting_is_list(when)) {
            mandate_diag_add_at(diag, when,
                                "mapping '%s': 'when' must be a list of groups: "
                                "( { attribute = ...; equals = ...; }, ... )",
                                label);
        } else {
            int n = config_setting_length(when);
            r->conditions = mandate_xcalloc(n > 0 ? (size_t)n : 1, sizeof(mandate_condition));
            for (int i = 0; i < n; i++) {
                mandate_condition *c = &r->conditions[r->condition_count];
                if (read_condition(config_setting_get_elem(when, (unsigned)i), path, label, c,
                                   diag))
                    r->condition_count++;
                else
                    condition_free(c);
            }
        }
    }
    return diag->count == before;
}

bool mandate_mappings_read(const config_t *file, const char *path, mandate_mappings *out,
                           mandate_diag *diag)
{
    memset(out, 0, sizeof(*out));
    config_setting_t *list = config_lookup(file, "mappings");
    if (list == NULL)
        return true;
    if (!config_setting_is_list(list)) {
        mandate_diag_add_at(
            diag, list, "'mappings' must be a list of groups: ( { name = ...; ... }, ... )");
        return false;
    }
    int n = config_setting_length(list);
    out->rules = mandate_xcalloc(n > 0 ? (size_t)n : 1, sizeof(mandate_mapping_rule));
    bool ok = true;
    for (int i = 0; i < n; i++) {
        config_setting_t *g = mandate_conf_list_group(list, i, "mapping", diag);
        mandate_mapping_rule *r = &out->rules[out->count++];
        if (g == NULL || !read_rule(g, path, out, r, (size_t)i, diag))
            ok = false;
    }
    if (!ok)
        mandate_mappings_free(out);
    return ok;
}

void mandate_mappings_free(mandate_mappings *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->count; i++)
        rule_free(&m->rules[i]);
    free(m->rules);
    m->rules = NULL;
    m->count = 0;
}

/* ---- applying ---- */

/* Texts grow in a mandate_strbuf, copied into the pool at the end. */

/* Adds a word to a space-separated list unless it holds it already. */
static void text_add_word(mandate_strbuf *t, const char *w, size_t n)
{
    if (t->data != NULL && mandate_word_list_has(t->data, w, n))
        return;
    if (t->len > 0)
        mandate_strbuf_addn(t, " ", 1);
    mandate_strbuf_addn(t, w, n);
}

static const char *text_done(mandate_strbuf *t, mandate_pool *pool)
{
    const char *s = t->data != NULL ? mandate_pool_strdup(pool, t->data) : NULL;
    free(t->data);
    memset(t, 0, sizeof(*t));
    return s;
}

static const char *join(mandate_pool *pool, char *const *list)
{
    mandate_strbuf t = {0};
    for (size_t i = 0; list != NULL && list[i] != NULL; i++)
        text_add_word(&t, list[i], strlen(list[i]));
    const char *s = text_done(&t, pool);
    return s != NULL ? s : "";
}

/* An IdP's value as it may appear in why: printable ASCII, bounded. */
static const char *quote(mandate_pool *pool, const char *v)
{
    size_t n = strlen(v);
    char *out = mandate_pool_alloc(pool, QUOTE_MAX + 4);
    size_t k;
    for (k = 0; k < n && k < QUOTE_MAX; k++)
        out[k] = (unsigned char)v[k] >= 0x20 && (unsigned char)v[k] < 0x7f ? v[k] : '?';
    if (n > QUOTE_MAX)
        memcpy(out + k, "...", 3);
    return out;
}

static json_t *attribute_lookup(json_t *attrs, const char *name, mandate_pool *pool)
{
    json_t *j = json_object_get(attrs, name);
    if (j != NULL || strchr(name, '.') == NULL)
        return j;
    /* SAML names are often URIs with dots: the whole name is tried first,
     * then the dotted walk through nested objects */
    char *copy = mandate_pool_strdup(pool, name), *save = NULL;
    j = attrs;
    for (char *part = strtok_r(copy, ".", &save); part != NULL;
         part = strtok_r(NULL, ".", &save)) {
        if (!json_is_object(j))
            return NULL;
        j = json_object_get(j, part);
    }
    return j;
}

/* A scalar as text: strings as they are (none with a NUL inside), integers
 * without decimals, booleans as true/false; NULL for anything else. */
static const char *scalar_text(json_t *j, mandate_pool *pool)
{
    switch (json_typeof(j)) {
    case JSON_STRING: {
        const char *s = json_string_value(j);
        if (strlen(s) != json_string_length(j) || s[0] == '\0')
            return NULL;
        return s;
    }
    case JSON_INTEGER:
        return mandate_pool_printf(pool, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
    case JSON_REAL: {
        double d = json_real_value(j);
        if (isfinite(d) && d > -9e15 && d < 9e15 && d == (double)(long long)d)
            return mandate_pool_printf(pool, "%lld", (long long)d);
        return mandate_pool_printf(pool, "%.17g", d);
    }
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    default: return NULL;
    }
}

/* The attribute's values as texts (an empty string is no value); their
 * number. The texts live as long as attrs or the pool. */
static size_t attribute_values(json_t *attrs, const char *name, mandate_pool *pool,
                               const char ***values_r)
{
    json_t *j = attribute_lookup(attrs, name, pool);
    *values_r = NULL;
    if (j == NULL)
        return 0;
    size_t cap = json_is_array(j) ? json_array_size(j) : 1;
    const char **v = mandate_pool_alloc(pool, (cap + 1) * sizeof(char *));
    size_t n = 0;
    if (json_is_array(j)) {
        size_t i;
        json_t *e;
        json_array_foreach(j, i, e)
        {
            const char *s = scalar_text(e, pool);
            if (s != NULL)
                v[n++] = s;
        }
    } else {
        const char *s = scalar_text(j, pool);
        if (s != NULL)
            v[n++] = s;
    }
    *values_r = v;
    return n;
}

/* NULL when the condition holds, else why not. */
static const char *condition_fails(const mandate_condition *c, json_t *attrs,
                                   mandate_pool *pool)
{
    const char **v;
    size_t n = attribute_values(attrs, c->attribute, pool, &v);
    if (n == 0)
        return mandate_pool_printf(pool, "attribute %.80s is missing", c->attribute);
    switch (c->op) {
    case MANDATE_COND_PRESENT: return NULL;
    case MANDATE_COND_EQUALS:
        for (size_t i = 0; i < n; i++)
            if (strcmp(v[i], c->values[0]) == 0)
                return NULL;
        return mandate_pool_printf(pool, "attribute %.80s is not %.80s", c->attribute,
                                   c->values[0]);
    case MANDATE_COND_ONE_OF:
        for (size_t i = 0; i < n; i++)
            for (char **w = c->values; *w != NULL; w++)
                if (strcmp(v[i], *w) == 0)
                    return NULL;
        return mandate_pool_printf(pool, "attribute %.80s is none of %.120s", c->attribute,
                                   join(pool, c->values));
    case MANDATE_COND_MATCHES:
        for (size_t i = 0; i < n; i++)
            if (regexec(c->regex, v[i], 0, NULL, 0) == 0)
                return NULL;
        return mandate_pool_printf(pool, "attribute %.80s does not match %.80s", c->attribute,
                                   c->values[0]);
    }
    return "bad condition";
}

/* The subject from the rule's template, or NULL with *why_r said. */
static const char *make_subject(const mandate_mapping_rule *r, json_t *attrs,
                                mandate_pool *pool, const char **why_r)
{
    mandate_strbuf t = {0};
    for (const char *p = r->subject; *p != '\0';) {
        if (p[0] != '$' || p[1] != '{') { /* checked at load: only ${name} */
            size_t n = strcspn(p, "$");
            mandate_strbuf_addn(&t, p, n);
            p += n;
            continue;
        }
        const char *name_start = p + 2;
        size_t name_len = strcspn(name_start, "}");
        const char *name = mandate_pool_strndup(pool, name_start, name_len);
        p = name_start + name_len + (name_start[name_len] == '}');
        const char **v;
        if (attribute_values(attrs, name, pool, &v) == 0) {
            *why_r =
                mandate_pool_printf(pool, "attribute %.80s for the subject is missing", name);
            free(t.data);
            return NULL;
        }
        if (!mandate_client_id_valid(v[0])) {
            *why_r = mandate_pool_printf(pool,
                                         "attribute %.80s is not fit for a subject: '%s' "
                                         "(1 to 128 letters, digits, '-', '.', '_', '~')",
                                         name, quote(pool, v[0]));
            free(t.data);
            return NULL;
        }
        mandate_strbuf_add(&t, v[0]);
    }
    const char *subject = text_done(&t, pool);
    if (subject == NULL || !mandate_client_id_valid(subject) || strcmp(subject, ".") == 0 ||
        strcmp(subject, "..") == 0) {
        *why_r = mandate_pool_printf(pool,
                                     "the subject '%s' is not valid (1 to 128 letters, "
                                     "digits, '-', '.', '_', '~')",
                                     quote(pool, subject ? subject : ""));
        return NULL;
    }
    return subject;
}

static bool idp_matches(const mandate_mapping_rule *r, const mandate_mapping_request *rq)
{
    return strcmp(r->idp, rq->idp) == 0 ||
           (rq->idp_plugin != NULL && strcmp(r->idp, rq->idp_plugin) == 0);
}

static bool blank(const char *s)
{
    return s == NULL || s[strspn(s, " ")] == '\0';
}

static mandate_rc deny(mandate_mapping_result *res, mandate_pool *pool,
                       const mandate_mapping_rule *r, const char *what)
{
    res->why = mandate_pool_printf(pool, "rule %s matched: %s", r->name, what);
    return MANDATE_DENIED;
}

/* The rule matched: make the grant. */
static mandate_rc grant(const mandate_mapping_rule *r, const mandate_mapping_request *rq,
                        json_t *attrs, mandate_pool *pool, mandate_mapping_result *res)
{
    const char *why = NULL;
    res->rule = r;
    res->tenant = r->tenant;
    res->subject = make_subject(r, attrs, pool, &why);
    if (res->subject == NULL)
        return deny(res, pool, r, why);

    /* scopes: asked ∩ rule ∩ client, in the order asked */
    bool asked = !blank(rq->requested_scope);
    const char *candidates = asked ? rq->requested_scope : join(pool, r->scopes);
    mandate_strbuf granted = {0};
    const char *p;
    size_t n;
    for (const char *cur = candidates; mandate_word_list_next(&cur, &p, &n);)
        if (mandate_string_list_has(r->scopes, p, n) &&
            mandate_word_list_has(rq->client_scopes, p, n))
            text_add_word(&granted, p, n);
    const char *scope = text_done(&granted, pool);
    if (scope == NULL)
        return deny(
            res, pool, r,
            mandate_pool_printf(pool,
                                "no scope left: asked %.160s, rule allows %.160s, "
                                "client allows %.160s",
                                asked ? rq->requested_scope : "(any)", join(pool, r->scopes),
                                blank(rq->client_scopes) ? "(none)" : rq->client_scopes));

    /* sensitive scopes: only with a recent enough authentication; dropped
     * otherwise, refused when nothing else is left */
    mandate_strbuf sensitive = {0}, rest = {0};
    for (const char *cur = scope; mandate_word_list_next(&cur, &p, &n);)
        text_add_word(mandate_string_list_has(r->sensitive_scopes, p, n) ? &sensitive : &rest,
                      p, n);
    const char *sens = text_done(&sensitive, pool);
    const char *others = text_done(&rest, pool);
    const char *note = "";
    bool sensitive_granted = sens != NULL;
    if (sens != NULL && r->sensitive_max_authn_age > 0) {
        int64_t instant = rq->identity->authn_instant;
        int64_t age = instant != 0 ? rq->now - instant : -1;
        if (instant != 0 && age < 0)
            age = 0; /* clock skew: the IdP's clock runs ahead */
        if (instant == 0 || age > r->sensitive_max_authn_age) {
            const char *cause =
                instant == 0
                    ? mandate_pool_printf(pool, "authentication time unknown (max %lld s)",
                                          (long long)r->sensitive_max_authn_age)
                    : mandate_pool_printf(pool, "%lld s > %lld s", (long long)age,
                                          (long long)r->sensitive_max_authn_age);
            if (others == NULL)
                return deny(res, pool, r,
                            mandate_pool_printf(pool,
                                                "authentication too old for sensitive "
                                                "scope %.160s (%s)",
                                                sens, cause));
            note = mandate_pool_printf(pool,
                                       "; sensitive scope %.160s dropped: "
                                       "authentication too old (%s)",
                                       sens, cause);
            scope = others;
            sensitive_granted = false;
        }
    }
    res->scope = scope;

    /* audience: a subset of the rule's, or all of the rule's */
    if (blank(rq->requested_audience)) {
        res->audience =
            r->audiences != NULL && r->audiences[0] != NULL ? join(pool, r->audiences) : NULL;
    } else {
        mandate_strbuf aud = {0};
        for (const char *cur = rq->requested_audience; mandate_word_list_next(&cur, &p, &n);) {
            const char *bad = NULL;
            if (!mandate_audience_uri_valid(p, n))
                bad = "is not an absolute URI";
            else if (r->audiences != NULL && r->audiences[0] != NULL &&
                     !mandate_string_list_has(r->audiences, p, n))
                bad = mandate_pool_printf(pool, "is not allowed (rule allows %.200s)",
                                          join(pool, r->audiences));
            if (bad != NULL) {
                free(aud.data);
                return deny(res, pool, r,
                            mandate_pool_printf(pool, "audience %s %s",
                                                quote(pool, mandate_pool_strndup(pool, p, n)),
                                                bad));
            }
            text_add_word(&aud, p, n);
        }
        res->audience = text_done(&aud, pool);
    }

    int64_t lifetime = r->max_lifetime > 0 ? r->max_lifetime : rq->default_lifetime;
    if (sensitive_granted && r->sensitive_lifetime > 0 && r->sensitive_lifetime < lifetime)
        lifetime = r->sensitive_lifetime;
    res->lifetime = lifetime;
    res->why =
        mandate_pool_printf(pool, "rule %s matched: subject %s, scope %s, lifetime %lld s%s",
                            r->name, res->subject, res->scope, (long long)lifetime, note);
    return MANDATE_OK;
}

mandate_rc mandate_mapping_apply(const mandate_mappings *mappings,
                                 const mandate_mapping_request *rq, mandate_pool *pool,
                                 mandate_mapping_result *res)
{
    if (res == NULL)
        return MANDATE_INVALID;
    memset(res, 0, sizeof(*res));
    if (mappings == NULL || rq == NULL || pool == NULL || rq->idp == NULL ||
        rq->identity == NULL) {
        res->why = "mapping: bad arguments";
        return MANDATE_INVALID;
    }
    if (rq->default_lifetime <= 0) {
        res->why = "mapping: no default lifetime";
        return MANDATE_INVALID;
    }
    json_t *attrs;
    if (rq->identity->attributes == NULL) {
        attrs = json_object();
    } else {
        json_error_t jerr;
        attrs = json_loads(rq->identity->attributes, JSON_REJECT_DUPLICATES, &jerr);
        if (attrs == NULL || !json_is_object(attrs)) {
            json_decref(attrs);
            res->why = "mapping: the identity's attributes are not a JSON object";
            return MANDATE_INVALID;
        }
    }

    mandate_strbuf misses = {0};
    size_t tried = 0;
    mandate_rc rc = MANDATE_DENIED;
    bool matched = false;
    for (size_t i = 0; i < mappings->count && !matched; i++) {
        const mandate_mapping_rule *r = &mappings->rules[i];
        if (!idp_matches(r, rq))
            continue;
        tried++;
        const char *fail = NULL;
        for (size_t k = 0; k < r->condition_count && fail == NULL; k++)
            fail = condition_fails(&r->conditions[k], attrs, pool);
        if (fail == NULL) {
            matched = true;
            rc = grant(r, rq, attrs, pool, res);
        } else if (misses.len < WHY_MAX) {
            mandate_strbuf_add(&misses, misses.len > 0 ? "; " : ": ");
            mandate_strbuf_add(&misses, r->name);
            mandate_strbuf_add(&misses, ": ");
            mandate_strbuf_add(&misses, fail);
        }
    }
    if (!matched) {
        if (misses.len > WHY_MAX) {
            misses.len = WHY_MAX;
            misses.data[misses.len] = '\0';
            mandate_strbuf_add(&misses, "...");
        }
        res->why = mandate_pool_printf(pool, "no rule matched (%zu rule%s for idp %.80s)%s",
                                       tried, tried == 1 ? "" : "s", rq->idp,
                                       misses.data != NULL ? misses.data : "");
    }
    free(misses.data);
    json_decref(attrs);
    return rc;
}
