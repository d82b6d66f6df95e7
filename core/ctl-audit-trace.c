/* mandatectl audit trace JTI: the chain around one token, from the audit
 * trail alone: the token it was derived from, up to the first (a sign-in
 * or client credentials), every token derived from those, however deep,
 * and for each its issue (actor, rule, scopes, audience), the exchanges of
 * it refused, its gateway checks and its revocation; as text, --json or
 * --dot (Graphviz). */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctl-private.h"
#include "util-private.h"

#define TRACE_LINE_MAX (1024 * 1024)
/* a chain longer than this is not one the broker made (max_depth <= 16) */
#define TRACE_UP_MAX 64

static const char *str(const json_t *record, const char *name)
{
    return json_string_value(json_object_get(record, name));
}

static bool is(const json_t *record, const char *event)
{
    const char *e = str(record, "event");
    return e != NULL && strcmp(e, event) == 0;
}

/* The records of the trail that a trace can use, in order. */
static json_t *read_records(char **files)
{
    json_t *all = json_array();
    char *line = NULL;
    size_t cap = 0;
    for (size_t i = 0; files[i] != NULL; i++) {
        FILE *fp = fopen(files[i], "r");
        if (fp == NULL)
            continue;
        ssize_t len;
        while ((len = getline(&line, &cap, fp)) > 0) {
            if (len > TRACE_LINE_MAX || strstr(line, "jti\"") == NULL)
                continue;
            json_t *r = json_loadb(line, (size_t)len, 0, NULL);
            if (is(r, "token.issued") || is(r, "token.refused") || is(r, "token.revoked") ||
                is(r, "gateway.check"))
                json_array_append(all, r);
            json_decref(r);
        }
        fclose(fp);
    }
    free(line);
    return all;
}

/* The issue record of jti; NULL when the trail has none. */
static json_t *issued(const json_t *records, const char *jti)
{
    size_t i;
    json_t *r;
    json_array_foreach(records, i, r)
    {
        const char *j = str(r, "jti");
        if (is(r, "token.issued") && j != NULL && strcmp(j, jti) == 0)
            return r;
    }
    return NULL;
}

/* The chain's tokens: the root above jti, then every token below it, each
 * after its parent: {jti: depth}. */
static json_t *chain_of(const json_t *records, const char *jti, const char **root_r)
{
    const char *root = jti;
    for (int up = 0; up < TRACE_UP_MAX; up++) {
        const json_t *r = issued(records, root);
        const char *parent = r != NULL ? str(r, "subject_jti") : NULL;
        if (parent == NULL)
            break;
        root = parent;
    }
    *root_r = root;
    json_t *depth = json_object();
    json_object_set_new(depth, root, json_integer(0));
    /* the trail is in time order and a child is issued after its parent:
     * one pass finds every descendant */
    size_t i;
    json_t *r;
    json_array_foreach(records, i, r)
    {
        const char *parent = str(r, "subject_jti"), *child = str(r, "jti");
        json_t *pd = parent != NULL ? json_object_get(depth, parent) : NULL;
        if (is(r, "token.issued") && pd != NULL && child != NULL &&
            json_object_get(depth, child) == NULL)
            json_object_set_new(depth, child, json_integer(json_integer_value(pd) + 1));
    }
    return depth;
}

/* The token a record is about, when it is one of the chain's. */
static const char *about(const json_t *r, const json_t *chain)
{
    const char *jti = is(r, "token.refused") ? str(r, "subject_jti") : str(r, "jti");
    return jti != NULL && json_object_get(chain, jti) != NULL ? jti : NULL;
}

static const char *or_dash(const char *s)
{
    return s != NULL && s[0] != '\0' ? s : "-";
}

static void print_text(const json_t *events, const json_t *chain, const char *root)
{
    printf("chain of %zu token%s from %s\n", json_object_size(chain),
           json_object_size(chain) == 1 ? "" : "s", root);
    size_t i;
    json_t *r;
    json_array_foreach(events, i, r)
    {
        const char *jti = about(r, chain);
        int depth = (int)json_integer_value(json_object_get(chain, jti));
        printf("%s %*s", or_dash(str(r, "ts")), 2 * depth, "");
        if (is(r, "token.issued") && str(r, "subject_jti") != NULL)
            printf("exchange  %s from %s: client %s acts (chain %s%s%s) by %s; scope \"%s\" "
                   "aud %s\n",
                   jti, str(r, "subject_jti"), or_dash(str(r, "client_id")),
                   or_dash(str(r, "act")), str(r, "prior_actors") ? " " : "",
                   str(r, "prior_actors") ? str(r, "prior_actors") : "",
                   str(r, "delegation_rule") ? str(r, "delegation_rule") : "its own token",
                   str(r, "scope") ? str(r, "scope") : "", or_dash(str(r, "aud")));
        else if (is(r, "token.issued"))
            printf("issued    %s to %s for %s (%s); scope \"%s\" aud %s%s%s\n", jti,
                   or_dash(str(r, "client_id")), or_dash(str(r, "sub")),
                   or_dash(str(r, "grant_type")), str(r, "scope") ? str(r, "scope") : "",
                   or_dash(str(r, "aud")), str(r, "may_act") ? "; may_act " : "",
                   str(r, "may_act") ? str(r, "may_act") : "");
        else if (is(r, "token.refused"))
            printf("refused   exchange of %s by %s: %s (%s)\n", jti,
                   or_dash(str(r, "client_id")), or_dash(str(r, "delegation")),
                   or_dash(str(r, "reason")));
        else if (is(r, "token.revoked"))
            printf("revoked   %s and %lld derived from it\n", jti,
                   (long long)json_integer_value(json_object_get(r, "descendants")));
        else
            printf("gateway   %s at %s: %s %lld%s%s\n", jti, or_dash(str(r, "target")),
                   or_dash(str(r, "result")),
                   (long long)json_integer_value(json_object_get(r, "status")),
                   str(r, "reason") ? ": " : "", str(r, "reason") ? str(r, "reason") : "");
    }
}

/* A DOT string: quotes and backslashes escaped, a line break DOT's. */
static void dot_str(const char *s)
{
    putchar('"');
    for (; s != NULL && *s != '\0'; s++) {
        if (*s == '\n') {
            fputs("\\n", stdout);
            continue;
        }
        if (*s == '"' || *s == '\\')
            putchar('\\');
        putchar(*s);
    }
    putchar('"');
}

static void print_dot(const json_t *events, const json_t *chain)
{
    puts("digraph mandate_trace {\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];");
    size_t i;
    json_t *r;
    json_array_foreach(events, i, r)
    {
        const char *jti = about(r, chain);
        char *label = NULL;
        if (is(r, "token.issued")) {
            label = mandate_xasprintf("%s\n%s for %s\nact %s\nscope %s", jti,
                                      or_dash(str(r, "client_id")), or_dash(str(r, "sub")),
                                      or_dash(str(r, "act")), or_dash(str(r, "scope")));
            printf("  ");
            dot_str(jti);
            printf(" [label=");
            dot_str(label);
            puts("];");
            if (str(r, "subject_jti") != NULL) {
                printf("  ");
                dot_str(str(r, "subject_jti"));
                printf(" -> ");
                dot_str(jti);
                printf(" [label=");
                dot_str(str(r, "delegation_rule") ? str(r, "delegation_rule") : "narrowed");
                puts("];");
            }
        } else if (is(r, "token.revoked")) {
            label = mandate_xasprintf(
                "revoked, and %lld derived",
                (long long)json_integer_value(json_object_get(r, "descendants")));
            printf("  ");
            dot_str(jti);
            printf(" [color=red, fontcolor=red, style=bold, xlabel=");
            dot_str(label);
            puts("];");
        } else {
            bool gateway = is(r, "gateway.check");
            label =
                gateway
                    ? mandate_xasprintf(
                          "%s %s %lld", or_dash(str(r, "target")), or_dash(str(r, "result")),
                          (long long)json_integer_value(json_object_get(r, "status")))
                    : mandate_xasprintf("refused: %s by %s",
                                        or_dash(str(r, "delegation") ? str(r, "delegation")
                                                                     : str(r, "reason")),
                                        or_dash(str(r, "client_id")));
            printf("  \"e%zu\" [shape=ellipse, label=", i);
            dot_str(label);
            puts(gateway ? "];" : ", color=red];");
            printf("  ");
            dot_str(jti);
            printf(" -> \"e%zu\" [style=dashed];\n", i);
        }
        free(label);
    }
    puts("}");
}

int ctl_audit_trace(const ctl *c, int argc, char **argv)
{
    static const struct option opts[] = {{"dot", no_argument, NULL, 'D'},
                                         {"dir", required_argument, NULL, 'd'},
                                         {NULL, 0, NULL, 0}};
    bool dot = false;
    const char *dir = NULL;
    int opt;
    optind = 0;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'D': dot = true; break;
        case 'd': dir = optarg; break;
        default: return CTL_USAGE;
        }
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "Usage: mandatectl audit trace JTI [--dot] [--dir DIR]\n");
        return CTL_USAGE;
    }
    const char *jti = argv[optind];
    char **files = ctl_audit_trail_files(c, dir);
    if (files == NULL)
        return CTL_REFUSED;
    json_t *records = read_records(files);
    ctl_audit_free_list(files);
    int status = CTL_OK;
    if (issued(records, jti) == NULL) {
        fprintf(stderr, "mandatectl audit trace: no token %s in the audit trail\n", jti);
        status = CTL_REFUSED;
    } else {
        const char *root;
        json_t *chain = chain_of(records, jti, &root);
        /* the records about the chain's tokens, in trail order */
        json_t *events = json_array();
        size_t i;
        json_t *r;
        json_array_foreach(records, i, r)
        {
            if (about(r, chain) != NULL)
                json_array_append(events, r);
        }
        if (dot)
            print_dot(events, chain);
        else if (c->json)
            ctl_print_json(json_pack("{s:s,s:s,s:O,s:O}", "jti", jti, "root", root, "tokens",
                                     chain, "events", events));
        else
            print_text(events, chain, root);
        json_decref(events);
        json_decref(chain);
    }
    json_decref(records);
    return status;
}
