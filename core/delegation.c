/* Delegation: the rules of mandate.conf, and the decision for one token
 * exchange. See delegation-private.h for what the rules mean. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "clients-private.h"
#include "grant-claims.h"
#include "delegation-private.h"
#include "mapping-private.h"
#include "oauth-private.h"
#include "plugins-private.h"
#include "util-private.h"

/* ---- reading ---- */

#define RULE_OFF(field) offsetof(mandate_delegation_rule, field)
/* name and actors are checked by hand, so that the message names the
 * rule's line, not only the file */
static const mandate_conf_def rule_defs[] = {
    {"name", MANDATE_CONF_STRING, 0, RULE_OFF(name), NULL, 0, 0, NULL,
     "the rule's name, for logs and the audit trail"},
    {"actors", MANDATE_CONF_STRING_LIST, 0, RULE_OFF(actors), NULL, 0, 0, NULL,
     "the clients that may exchange the tokens the rule covers"},
    {"clients", MANDATE_CONF_STRING_LIST, 0, RULE_OFF(clients), "", 0, 0, NULL,
     "whose tokens: the subject token's client_id; none: any client's (subjects then says "
     "whose)"},
    {"subjects", MANDATE_CONF_STRING_LIST, 0, RULE_OFF(subjects), "", 0, 0, NULL,
     "only tokens of these subjects (sub); none: any subject"},
    {"audiences", MANDATE_CONF_STRING_LIST, 0, RULE_OFF(audiences), "", 0, 0, NULL,
     "audiences the actors may ask for beyond the subject token's own"},
    {"scopes", MANDATE_CONF_STRING_LIST, 0, RULE_OFF(scopes), "", 0, 0, NULL,
     "the scopes the rule admits an exchange for, at most; none: any the token has"},
    {"max_depth", MANDATE_CONF_INT, 0, RULE_OFF(max_depth), NULL, 1, MANDATE_GRANT_MAX_ACTORS,
     NULL,
     "actors the new token's act chain may hold under this rule; none: "
     "delegation.max_depth"},
    MANDATE_CONF_END};

static bool list_empty(char *const *list)
{
    return list == NULL || list[0] == NULL;
}

/* Each entry of the list (key) is a client id; a problem is one diag line. */
static void check_ids(const config_setting_t *g, const char *key, char *const *list,
                      const char *label, mandate_diag *diag)
{
    for (size_t i = 0; list != NULL && list[i] != NULL; i++)
        if (!mandate_client_id_valid(list[i]))
            mandate_diag_add_at(diag, config_setting_get_member(g, key),
                                "delegation rule '%s': %s: '%.80s' is not a client id (1 to "
                                "128 letters, digits, '-', '.', '_' or '~'; there are no "
                                "wildcards: name each one)",
                                label, key, list[i]);
}

static bool read_rule(const config_setting_t *g, const char *path, mandate_delegation *d,
                      mandate_delegation_rule *r, size_t index, mandate_diag *diag)
{
    size_t before = diag->count;
    mandate_conf_apply(g, path, rule_defs, NULL, NULL, r, diag);
    char label[64];
    if (r->name == NULL || r->name[0] == '\0') {
        mandate_diag_add_at(diag, g, "delegation rule #%zu: required key 'name' is missing",
                            index + 1);
        snprintf(label, sizeof(label), "#%zu", index + 1);
    } else {
        snprintf(label, sizeof(label), "%.60s", r->name);
        for (size_t k = 0; k < index; k++)
            if (d->rules[k].name != NULL && strcmp(d->rules[k].name, r->name) == 0)
                mandate_diag_add_at(diag, g, "delegation rule '%s' is named twice", label);
    }
    if (list_empty(r->actors))
        mandate_diag_add_at(
            diag, g, "delegation rule '%s': 'actors' is required and must not be empty", label);
    if (list_empty(r->clients) && list_empty(r->subjects))
        mandate_diag_add_at(diag, g,
                            "delegation rule '%s': say whose tokens it covers: 'clients', "
                            "'subjects' or both",
                            label);
    check_ids(g, "actors", r->actors, label, diag);
    check_ids(g, "clients", r->clients, label, diag);
    check_ids(g, "subjects", r->subjects, label, diag);
    for (char **sc = r->scopes; sc != NULL && *sc != NULL; sc++)
        if (!mandate_scope_token_valid(*sc, strlen(*sc)))
            mandate_diag_add_at(diag, config_setting_get_member(g, "scopes"),
                                "delegation rule '%s': scope '%.80s' is not a scope (printable "
                                "ASCII, no space, '\\' or '\"')",
                                label, *sc);
    if (r->max_depth > 0 && d->max_depth > 0 && r->max_depth > d->max_depth)
        mandate_diag_add_at(diag, config_setting_get_member(g, "max_depth"),
                            "delegation rule '%s': max_depth %lld is more than "
                            "delegation.max_depth %lld, which bounds every chain",
                            label, (long long)r->max_depth, (long long)d->max_depth);
    for (char **a = r->audiences; a != NULL && *a != NULL; a++)
        if (!mandate_audience_uri_valid(*a, strlen(*a)))
            mandate_diag_add_at(diag, config_setting_get_member(g, "audiences"),
                                "delegation rule '%s': audience '%.100s' must be an absolute "
                                "URI without a fragment",
                                label, *a);
    return diag->count == before;
}

bool mandate_delegation_read(const config_t *file, const char *path, mandate_delegation *out,
                             mandate_diag *diag)
{
    out->rules = NULL;
    out->count = 0;
    config_setting_t *list = config_lookup(file, "delegation.rules");
    if (list == NULL)
        return true;
    if (!config_setting_is_list(list)) {
        mandate_diag_add_at(diag, list,
                            "'delegation.rules' must be a list of groups: ( { name = ...; "
                            "actors = [...]; ... }, ... )");
        return false;
    }
    int n = config_setting_length(list);
    out->rules = mandate_xcalloc(n > 0 ? (size_t)n : 1, sizeof(mandate_delegation_rule));
    bool ok = true;
    for (int i = 0; i < n; i++) {
        config_setting_t *g = mandate_conf_list_group(list, i, "delegation rule", diag);
        mandate_delegation_rule *r = &out->rules[out->count++];
        if (g == NULL || !read_rule(g, path, out, r, (size_t)i, diag))
            ok = false;
    }
    if (!ok)
        mandate_delegation_free(out);
    return ok;
}

void mandate_delegation_free(mandate_delegation *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->count; i++)
        mandate_conf_free_values(rule_defs, &d->rules[i]);
    free(d->rules);
    d->rules = NULL;
    d->count = 0;
}

/* ---- deciding ---- */

/* Every word of want is in have (both space-separated); the first that is
 * not goes to *missing_r. */
static bool words_within(mandate_pool *pool, const char *want, const char *have,
                         const char **missing_r)
{
    size_t n;
    const char *missing = mandate_word_list_missing(want, have, &n);
    if (missing != NULL)
        *missing_r = mandate_pool_printf(pool, "%.*s", (int)n, missing);
    return missing == NULL;
}

/* The rule is about tokens of this client and subject. */
static bool rule_about(const mandate_delegation_rule *r, const char *client,
                       const char *subject)
{
    client = client != NULL ? client : "";
    subject = subject != NULL ? subject : "";
    return (list_empty(r->clients) ||
            mandate_string_list_has(r->clients, client, strlen(client))) &&
           (list_empty(r->subjects) ||
            mandate_string_list_has(r->subjects, subject, strlen(subject)));
}

/* The rule names this actor, and the token's client and subject. */
static bool rule_covers(const mandate_delegation_rule *r, const char *actor,
                        const mandate_grant *token)
{
    return mandate_string_list_has(r->actors, actor, strlen(actor)) &&
           rule_about(r, token->client_id, token->subject);
}

/* Why the rule does not cover the actor for this token: the first of its
 * lists that leaves them out. */
static const char *rule_miss(mandate_pool *pool, const mandate_delegation_rule *r,
                             const char *actor, const mandate_grant *t)
{
    const char *client = t->client_id ? t->client_id : "-";
    const char *subject = t->subject ? t->subject : "-";
    if (!mandate_string_list_has(r->actors, actor, strlen(actor)))
        return mandate_pool_printf(pool, "rule %s: %s is not among its actors", r->name, actor);
    if (!list_empty(r->clients) && !mandate_string_list_has(r->clients, client, strlen(client)))
        return mandate_pool_printf(pool, "rule %s: client %s is not among its clients", r->name,
                                   client);
    return mandate_pool_printf(pool, "rule %s: subject %s is not among its subjects", r->name,
                               subject);
}

/* Every audience asked for is the token's or one the rule lists. */
static bool rule_lists_the_rest(const mandate_delegation_rule *r, const char *requested,
                                const char *token_audience)
{
    const char *p;
    size_t n;
    while (mandate_word_list_next(&requested, &p, &n))
        if (!mandate_word_list_has(token_audience, p, n) &&
            !mandate_string_list_has(r->audiences, p, n))
            return false;
    return true;
}

static mandate_delegation_verdict refuse(mandate_delegation_result *r,
                                         mandate_delegation_verdict verdict, const char *word,
                                         const char *why)
{
    r->verdict = verdict;
    r->word = word;
    r->why = why;
    r->rule = NULL;
    return verdict;
}

/* "delegation rule NAME", and its own limits when it has any. */
static const char *rule_admitted(mandate_pool *pool, const mandate_delegation_rule *r)
{
    const char *why = mandate_pool_printf(pool, "delegation rule %s", r->name);
    if (r->max_depth > 0)
        why = mandate_pool_printf(pool, "%s, to depth %lld", why, (long long)r->max_depth);
    for (size_t i = 0; !list_empty(r->scopes) && r->scopes[i] != NULL; i++)
        why = mandate_pool_printf(pool, "%s%s%s", why, i == 0 ? ", for scopes " : " ",
                                  r->scopes[i]);
    return why;
}

/* Why rule r, which names the actor and the token, does not admit a new
 * token of this depth and scope: its own max_depth or scopes (see
 * delegation-private.h); NULL: it does. *verdict_r and *word_r say which
 * limit and which scope. */
static const char *rule_limit(mandate_pool *pool, const mandate_delegation_rule *r,
                              size_t depth, const char *scope,
                              mandate_delegation_verdict *verdict_r, const char **word_r)
{
    if (r->max_depth > 0 && (int64_t)depth > r->max_depth) {
        *verdict_r = MANDATE_DELEGATION_TOO_DEEP;
        return mandate_pool_printf(pool,
                                   "rule %s: the act chain would hold %zu actors, more than "
                                   "its max_depth %lld",
                                   r->name, depth, (long long)r->max_depth);
    }
    const char *p;
    size_t n;
    while (!list_empty(r->scopes) && mandate_word_list_next(&scope, &p, &n))
        if (!mandate_string_list_has(r->scopes, p, n)) {
            *verdict_r = MANDATE_DELEGATION_SCOPE;
            *word_r = mandate_pool_printf(pool, "%.*s", (int)n, p);
            return mandate_pool_printf(pool, "rule %s: scope %.*s is not among its scopes",
                                       r->name, (int)n, p);
        }
    return NULL;
}

/* The rule names the actor and the token, and admits this depth and scope. */
static bool rule_admits(mandate_pool *pool, const mandate_delegation_rule *r, const char *actor,
                        const mandate_grant *token, size_t depth, const char *scope)
{
    mandate_delegation_verdict unused_verdict;
    const char *unused_word;
    return rule_covers(r, actor, token) &&
           rule_limit(pool, r, depth, scope, &unused_verdict, &unused_word) == NULL;
}

mandate_delegation_verdict mandate_delegation_decide(const mandate_delegation *policy,
                                                     const mandate_delegation_request *rq,
                                                     mandate_pool *pool,
                                                     mandate_delegation_result *r)
{
    const mandate_grant *t = rq->token;
    const char *missing = NULL;
    memset(r, 0, sizeof(*r));
    r->delegated = t->client_id == NULL || strcmp(rq->actor, t->client_id) != 0;

    /* the chain: the acting client outermost, unless it is already */
    bool narrowing = t->actor != NULL && strcmp(t->actor, rq->actor) == 0;
    if (narrowing) {
        r->actor = t->actor;
        r->prior_actors = t->prior_actors;
    } else {
        r->actor = rq->actor;
        r->prior_actors = t->actor == NULL ? NULL
                          : t->prior_actors == NULL
                              ? t->actor
                              : mandate_pool_printf(pool, "%s %s", t->actor, t->prior_actors);
    }
    r->depth = 1 + mandate_word_list_count(r->prior_actors);
    /* the token that begins a chain has no act: its client is where the
     * chain began (a sign-in's application need not be the subject) */
    r->origin_client_id = t->origin_client_id != NULL ? t->origin_client_id
                          : t->actor == NULL           ? t->client_id
                                                       : NULL;
    const char *scope = rq->requested_scope != NULL ? rq->requested_scope : t->scope;

    /* who may act: the first rule for this actor and this token within its
     * own limits (one that also lists an audience asked for may come later,
     * below), or the token's own may_act, written when it was issued; a
     * rule for them that refuses by its limits is not lifted by may_act */
    const mandate_delegation_rule *first = NULL;
    const char *limited = NULL, *limited_word = NULL;
    mandate_delegation_verdict limited_verdict = MANDATE_DELEGATION_NOT_ALLOWED;
    for (size_t i = 0; first == NULL && i < policy->count; i++) {
        const mandate_delegation_rule *rule = &policy->rules[i];
        if (!rule_covers(rule, rq->actor, t))
            continue;
        mandate_delegation_verdict verdict;
        const char *word = NULL;
        const char *why = rule_limit(pool, rule, r->depth, scope, &verdict, &word);
        if (why == NULL) {
            first = rule;
        } else if (limited == NULL) {
            limited = why;
            limited_verdict = verdict;
            limited_word = word;
        } else {
            limited = mandate_pool_printf(pool, "%s; %s", limited, why);
        }
    }
    r->by_may_act = first == NULL && limited == NULL && t->may_act != NULL &&
                    mandate_word_list_has(t->may_act, rq->actor, strlen(rq->actor));
    if (r->delegated && first == NULL && limited != NULL)
        return refuse(r, limited_verdict, limited_word,
                      mandate_pool_printf(pool,
                                          "the delegation rules for %s and tokens of client %s "
                                          "admit it only within their limits; %s",
                                          rq->actor, t->client_id ? t->client_id : "-",
                                          limited));
    if (r->delegated && first == NULL && !r->by_may_act) {
        const char *why = mandate_pool_printf(
            pool, "no delegation rule lets %s act for tokens of client %s (subject %s)%s",
            rq->actor, t->client_id ? t->client_id : "-", t->subject ? t->subject : "-",
            t->may_act != NULL ? ", and the subject_token's may_act does not name it"
                               : ", and the subject_token has no may_act");
        for (size_t i = 0; i < policy->count; i++)
            why = mandate_pool_printf(pool, "%s; %s", why,
                                      rule_miss(pool, &policy->rules[i], rq->actor, t));
        return refuse(r, MANDATE_DELEGATION_NOT_ALLOWED, NULL, why);
    }

    int64_t max =
        policy->max_depth > 0 ? policy->max_depth : MANDATE_DELEGATION_DEFAULT_MAX_DEPTH;
    if (max > MANDATE_GRANT_MAX_ACTORS)
        max = MANDATE_GRANT_MAX_ACTORS;
    if ((int64_t)r->depth > max)
        return refuse(r, MANDATE_DELEGATION_TOO_DEEP, NULL,
                      mandate_pool_printf(pool,
                                          "the act chain would hold %zu actors (%s %s), more "
                                          "than delegation.max_depth %lld",
                                          r->depth, r->actor,
                                          r->prior_actors ? r->prior_actors : "",
                                          (long long)max));
    /* a client already in the chain would act for itself through others:
     * the chain would no longer say who decided. The chain's first client
     * is its origin_client_id (the client of its first token, which had no
     * act), and its subject when it began with client credentials (sub is
     * then the client, and a token of before ABI 1.9 has no origin): A
     * acting for B acting for A. */
    if (!narrowing && mandate_word_list_has(t->prior_actors, rq->actor, strlen(rq->actor)))
        return refuse(r, MANDATE_DELEGATION_CYCLE, NULL,
                      mandate_pool_printf(pool,
                                          "%s is already in the subject_token's act chain "
                                          "(%s %s): a cycle",
                                          rq->actor, t->actor, t->prior_actors));
    bool is_subject = t->subject != NULL && strcmp(t->subject, rq->actor) == 0;
    bool is_origin = t->origin_client_id != NULL && strcmp(t->origin_client_id, rq->actor) == 0;
    if (!narrowing && r->delegated && t->actor != NULL && (is_subject || is_origin))
        return refuse(r, MANDATE_DELEGATION_CYCLE, NULL,
                      mandate_pool_printf(pool,
                                          "%s began the subject_token's chain (it is its "
                                          "%s): a cycle",
                                          rq->actor, is_subject ? "subject" : "origin_client_id"));

    if (!words_within(pool, scope, t->scope, &missing) ||
        !words_within(pool, scope, rq->actor_scopes, &missing))
        return refuse(r, MANDATE_DELEGATION_SCOPE, missing,
                      mandate_pool_printf(pool,
                                          "scope %s is beyond the subject_token's or those of "
                                          "%s",
                                          missing, rq->actor));
    r->scope = scope != NULL && scope[0] != '\0' ? scope : NULL;

    r->rule = r->delegated ? first : NULL;
    r->audience = t->audience;
    const char *asked = rq->requested_audience;
    if (asked != NULL) {
        if (!words_within(pool, asked, rq->actor_audiences, &missing))
            return refuse(r, MANDATE_DELEGATION_AUDIENCE, missing,
                          mandate_pool_printf(pool,
                                              "resource %s is not among the audiences of %s",
                                              missing, rq->actor));
        if (!words_within(pool, asked, t->audience, &missing)) {
            /* wider than the token: only where a rule says so */
            r->rule = NULL;
            for (size_t i = 0; r->rule == NULL && i < policy->count; i++)
                if (rule_admits(pool, &policy->rules[i], rq->actor, t, r->depth, scope) &&
                    rule_lists_the_rest(&policy->rules[i], asked, t->audience))
                    r->rule = &policy->rules[i];
            if (r->rule == NULL)
                return refuse(r, MANDATE_DELEGATION_AUDIENCE, missing,
                              mandate_pool_printf(pool,
                                                  "resource %s is beyond the subject_token's "
                                                  "audience, and no delegation rule lets %s "
                                                  "have it for tokens of client %s",
                                                  missing, rq->actor,
                                                  t->client_id ? t->client_id : "-"));
        }
        r->audience = asked;
    } else if (mandate_word_list_count(t->audience) > 0) {
        /* nothing asked: the token's audiences that the actor may have, never
         * one it would be refused by name */
        char *kept = mandate_pool_alloc(pool, strlen(t->audience) + 1);
        if (mandate_word_list_keep(kept, t->audience, rq->actor_audiences) == 0) {
            words_within(pool, t->audience, rq->actor_audiences, &missing);
            return refuse(r, MANDATE_DELEGATION_AUDIENCE, missing,
                          mandate_pool_printf(pool,
                                              "none of the subject_token's audiences (%s) is "
                                              "among the audiences of %s",
                                              t->audience, rq->actor));
        }
        r->audience = kept;
    }
    r->verdict = MANDATE_DELEGATION_ADMITTED;
    r->why = r->rule != NULL ? rule_admitted(pool, r->rule)
             : r->delegated  ? "the subject_token's may_act"
                             : "its own token, narrowed";
    return MANDATE_DELEGATION_ADMITTED;
}

const char *mandate_delegation_verdict_name(mandate_delegation_verdict verdict)
{
    switch (verdict) {
    case MANDATE_DELEGATION_ADMITTED: return "admitted";
    case MANDATE_DELEGATION_NOT_ALLOWED: return "actor_not_allowed";
    case MANDATE_DELEGATION_TOO_DEEP: return "too_deep";
    case MANDATE_DELEGATION_CYCLE: return "cycle";
    case MANDATE_DELEGATION_SCOPE: return "scope";
    case MANDATE_DELEGATION_AUDIENCE: return "audience";
    }
    return "unknown";
}

/* A client's own --may-act list: "may_act" in its attributes, an array of
 * client ids. */
static void add_client_may_act(mandate_pool *pool, const char *attributes, const char **out)
{
    json_t *o = attributes != NULL ? json_loads(attributes, 0, NULL) : NULL;
    json_t *list = json_object_get(o, "may_act");
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        const char *id = json_string_value(v);
        if (id != NULL && mandate_client_id_valid(id) &&
            !mandate_word_list_has(*out, id, strlen(id)))
            *out = *out ? mandate_pool_printf(pool, "%s %s", *out, id)
                        : mandate_pool_strdup(pool, id);
    }
    json_decref(o);
}

const char *mandate_delegation_may_act(const mandate_delegation *policy, mandate_pool *pool,
                                       const char *client_attributes, const mandate_grant *g)
{
    const char *out = NULL;
    add_client_may_act(pool, client_attributes, &out);
    for (size_t i = 0; i < policy->count; i++) {
        const mandate_delegation_rule *r = &policy->rules[i];
        if (!rule_about(r, g->client_id, g->subject))
            continue;
        for (char **a = r->actors; *a != NULL; a++)
            if (!mandate_word_list_has(out, *a, strlen(*a)))
                out = out ? mandate_pool_printf(pool, "%s %s", out, *a)
                          : mandate_pool_strdup(pool, *a);
    }
    /* the token names its own client's actors, not itself */
    if (out != NULL && g->client_id != NULL &&
        mandate_word_list_has(out, g->client_id, strlen(g->client_id))) {
        const char *kept = NULL, *cur = out, *w;
        size_t n;
        while (mandate_word_list_next(&cur, &w, &n))
            if (n != strlen(g->client_id) || strncmp(w, g->client_id, n) != 0)
                kept = kept ? mandate_pool_printf(pool, "%s %.*s", kept, (int)n, w)
                            : mandate_pool_printf(pool, "%.*s", (int)n, w);
        out = kept;
    }
    if (mandate_word_list_count(out) > MANDATE_GRANT_MAX_MAY_ACT)
        return NULL;
    return out;
}

const char *mandate_delegation_client_root(mandate_pool *pool, const char *client_id)
{
    return mandate_pool_printf(pool, "cli_%s", client_id);
}

/* MANDATE_EXISTS is a link made before (a token exchanged twice): fine. */
static bool linked(mandate_rc rc)
{
    return rc == MANDATE_OK || rc == MANDATE_EXISTS;
}

bool mandate_delegation_link(const struct mandate_instance *store, mandate_pool *pool,
                             const mandate_grant *parent, const mandate_grant *child,
                             mandate_error *err)
{
    if (parent->jti == NULL || child->jti == NULL || parent->client_id == NULL) {
        mandate_error_set(err, MANDATE_INVALID, "a token without a jti or client_id");
        return false;
    }
    return linked(mandate_store_lineage_add(
               store, parent->jti, mandate_delegation_client_root(pool, parent->client_id),
               parent->client_id, parent->expires_at, err)) &&
           linked(mandate_store_lineage_add(store, child->jti, parent->jti, child->client_id,
                                            child->expires_at, err));
}
