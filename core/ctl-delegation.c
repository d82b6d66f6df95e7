/* mandatectl delegation test: whether a client may exchange a token (RFC
 * 8693), decided by the same mandate_delegation_decide the token endpoint
 * runs, without issuing anything: the rule (or the token's may_act) that
 * admits, or why each rule refuses. */
#include "config.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ctl-private.h"
#include "delegation-private.h"
#include "plugins-private.h"
#include "pool-private.h"
#include "runtime-private.h"
#include "util-private.h"
#include "validate-private.h"

#define USAGE                                                                                  \
    "Usage: mandatectl delegation test --subject-token FILE|- --actor ID [--resource URI]... " \
    "[--scope S]\n"

/* The decision for the actor and the token, as the token endpoint makes it
 * (the subject token active, the same tenant, then the delegation policy). */
static json_t *decide(mandate_runtime *rt, mandate_pool *pool, const char *token,
                      const char *actor, const char *resource, const char *scope)
{
    mandate_token_status st;
    mandate_error err = {0};
    mandate_rc rc = mandate_token_validate(rt, pool, token, strlen(token), &st, &err);
    json_t *o = json_pack("{s:s}", "actor", actor);
    if (st.parsed) {
        const mandate_grant *g = &st.grant;
        json_object_set_new(o, "subject_token",
                            json_pack("{s:s?,s:s?,s:s?,s:s?,s:s?,s:s?,s:s?,s:s?}", "jti",
                                      g->jti, "client_id", g->client_id, "sub", g->subject,
                                      "act", g->actor, "prior_actors", g->prior_actors,
                                      "may_act", g->may_act, "aud", g->audience,
                                      "origin_client_id", g->origin_client_id));
    }
    mandate_client client = {0};
    mandate_error cerr = {0};
    const char *refused = NULL, *verdict = "refused";
    if (rc != MANDATE_OK) {
        refused = mandate_pool_printf(pool, "the subject_token is not active: %s",
                                      rc == MANDATE_INVALID ? st.reason : err.message);
    } else if (mandate_store_client_get(mandate_runtime_store(rt), pool, actor, &client,
                                        &cerr) != MANDATE_OK) {
        refused = mandate_pool_printf(pool, "no client %s", actor);
    } else if (client.status != MANDATE_CLIENT_ENABLED) {
        refused = mandate_pool_printf(pool, "client %s is disabled", actor);
    } else if (st.grant.tenant == NULL || client.tenant == NULL ||
               strcmp(st.grant.tenant, client.tenant) != 0) {
        refused = "the subject_token belongs to another tenant";
    } else {
        const mandate_delegation_request dr = {.actor = actor,
                                               .actor_scopes = client.scopes,
                                               .actor_audiences = client.audiences,
                                               .token = &st.grant,
                                               .requested_scope = scope,
                                               .requested_audience = resource};
        mandate_delegation_result d;
        mandate_delegation_decide(&mandate_runtime_config(rt)->delegation, &dr, pool, &d);
        verdict = mandate_delegation_verdict_name(d.verdict);
        if (d.verdict == MANDATE_DELEGATION_ADMITTED) {
            json_object_set_new(o, "rule",
                                d.rule         ? json_string(d.rule->name)
                                : d.by_may_act ? json_string("may_act")
                                               : json_null());
            json_object_set_new(o, "why", json_string(d.why));
            json_object_set_new(o, "would_issue",
                                json_pack("{s:s,s:s?,s:s?,s:s?,s:I}", "act", d.actor,
                                          "prior_actors", d.prior_actors, "scope", d.scope,
                                          "aud", d.audience, "depth", (json_int_t)d.depth));
        } else {
            refused = d.why;
        }
    }
    json_object_set_new(o, "verdict", json_string(verdict));
    if (refused != NULL)
        json_object_set_new(o, "why", json_string(refused));
    return o;
}

static void print_decision(const json_t *o)
{
    const json_t *t = json_object_get(o, "subject_token");
    if (t != NULL)
        printf("subject token: jti=%s client=%s sub=%s act=%s%s%s may_act=[%s]\n",
               json_string_value(json_object_get(t, "jti")),
               json_string_value(json_object_get(t, "client_id")),
               json_string_value(json_object_get(t, "sub")),
               json_object_get(t, "act") ? json_string_value(json_object_get(t, "act")) : "-",
               json_object_get(t, "prior_actors") ? " " : "",
               json_object_get(t, "prior_actors")
                   ? json_string_value(json_object_get(t, "prior_actors"))
                   : "",
               json_object_get(t, "may_act") ? json_string_value(json_object_get(t, "may_act"))
                                             : "");
    const char *verdict = json_string_value(json_object_get(o, "verdict"));
    const char *why = json_string_value(json_object_get(o, "why"));
    printf("actor:         %s\n", json_string_value(json_object_get(o, "actor")));
    if (strcmp(verdict, "admitted") != 0) {
        printf("refused:       %s\n", verdict);
        /* the reasons, one a line: "; " separates those of each rule */
        const char *p = why;
        while (p != NULL && *p != '\0') {
            const char *end = strstr(p, "; ");
            int n = end ? (int)(end - p) : (int)strlen(p);
            printf("  %.*s\n", n, p);
            p = end ? end + 2 : NULL;
        }
        return;
    }
    const json_t *w = json_object_get(o, "would_issue");
    printf("admitted:      %s\n", why);
    printf("would issue:   act=%s%s%s scope=\"%s\" aud=\"%s\" (chain of %lld)\n",
           json_string_value(json_object_get(w, "act")),
           json_object_get(w, "prior_actors") ? " " : "",
           json_object_get(w, "prior_actors")
               ? json_string_value(json_object_get(w, "prior_actors"))
               : "",
           json_object_get(w, "scope") ? json_string_value(json_object_get(w, "scope")) : "",
           json_object_get(w, "aud") ? json_string_value(json_object_get(w, "aud")) : "",
           (long long)json_integer_value(json_object_get(w, "depth")));
}

int ctl_cmd_delegation(ctl *c, int argc, char **argv)
{
    const char *file = NULL, *actor = NULL, *scope = NULL;
    char *resource = NULL; /* repeatable, as at /token */
    const ctl_option opts[] = {CTL_VALUE("subject-token", &file),
                               CTL_VALUE("actor", &actor),
                               CTL_WORDS("resource", &resource),
                               CTL_VALUE("scope", &scope),
                               {0}};
    int status = CTL_USAGE;
    if (argc < 2 || strcmp(argv[1], "test") != 0) {
        fputs(USAGE, stderr);
        return CTL_USAGE;
    }
    if (!ctl_options(argc - 1, argv + 1, opts) ||
        !ctl_operands(argc - 1, 0, file != NULL && actor != NULL, USAGE))
        goto done;
    status = CTL_REFUSED;
    char *token = ctl_read_token(file);
    mandate_runtime *rt =
        token ? ctl_runtime(c, MANDATE_RUNTIME_MIGRATE | MANDATE_RUNTIME_DRY_RUN) : NULL;
    if (rt != NULL) {
        mandate_pool *pool = mandate_pool_new();
        json_t *o = decide(rt, pool, token, actor, resource, scope);
        if (strcmp(json_string_value(json_object_get(o, "verdict")), "admitted") == 0)
            status = CTL_OK;
        if (c->json) {
            ctl_print_json(o);
        } else {
            print_decision(o);
            json_decref(o);
        }
        mandate_pool_free(&pool);
        mandate_runtime_unref(&rt);
    }
    if (token != NULL)
        OPENSSL_cleanse(token, strlen(token));
    free(token);
done:
    free(resource);
    return status;
}
