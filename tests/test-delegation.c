/* Delegation: the rules of mandate.conf (each mistake named with file and
 * line) and the decision for a token exchange of one of our own tokens:
 * who may act for whose tokens, that nothing grows, and how deep the chain
 * of actors may go. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config-private.h"
#include "delegation-private.h"
#include "pool-private.h"
#include "test-helpers.h"
#include "util-private.h"

#define CAL "https://mcp.example/cal"
#define OTHER "https://other.example/api"

typedef struct fixture {
    test_conf_file file;
    mandate_delegation d;
    mandate_pool *pool;
    mandate_grant token;
    mandate_delegation_request rq;
    mandate_delegation_result res;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    test_conf_file_init(&f->file);
    f->pool = mandate_pool_new();
    f->d.max_depth = MANDATE_DELEGATION_DEFAULT_MAX_DEPTH;
    /* the finding: agent-a's token, for the calendar */
    f->token = (mandate_grant){.subject = "agent-a",
                               .client_id = "agent-a",
                               .scope = "mcp:call gateway:invoke",
                               .audience = CAL};
    f->rq = (mandate_delegation_request){.actor = "agent-d",
                                         .actor_scopes = "mcp:call gateway:invoke audit:read",
                                         .actor_audiences = CAL " " OTHER,
                                         .token = &f->token};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    mandate_delegation_free(&f->d);
    mandate_pool_free(&f->pool);
    test_conf_file_clear(&f->file);
    free(f);
    return 0;
}

/* Reads text as mandate.conf's delegation rules; whether they were accepted. */
static bool parse(fixture *f, const char *text)
{
    mandate_delegation_free(&f->d);
    config_t cfg;
    bool ok = test_conf_file_read(&f->file, text, &cfg) &&
              mandate_delegation_read(&cfg, f->file.path, &f->d, &f->file.diag);
    config_destroy(&cfg);
    return ok;
}

/* Refused, with no rule kept, and a diagnostic at line that holds what. */
static void assert_bad(fixture *f, const char *text, int line, const char *what)
{
    assert_false(parse(f, text) || f->d.count > 0 || f->d.rules != NULL);
    test_assert_diag_at(&f->file.diag, f->file.path, line, what);
}

#define RULES(body) "delegation = {\n  rules = (\n" body "  );\n};\n"

static mandate_delegation_verdict decide(fixture *f)
{
    return mandate_delegation_decide(&f->d, &f->rq, f->pool, &f->res);
}

static void expect(fixture *f, mandate_delegation_verdict want, const char *why)
{
    mandate_delegation_verdict got = decide(f);
    if (got != want)
        fail_msg("verdict %s, want %s (%s)", mandate_delegation_verdict_name(got),
                 mandate_delegation_verdict_name(want), f->res.why ? f->res.why : "-");
    assert_int_equal(f->res.verdict, want);
    if (why != NULL && !test_contains(f->res.why, why))
        fail_msg("expected \"%s\" in why \"%s\"", why, f->res.why ? f->res.why : "(null)");
}

/* ---- reading ---- */

static void test_read(void **state)
{
    fixture *f = *state;
    assert_true(
        parse(f, RULES("    { name = \"helpers\"; actors = [\"agent-d\", \"agent-e\"];\n"
                       "      clients = [\"agent-a\"];\n"
                       "      audiences = [\"" OTHER "\"]; },\n"
                       "    { name = \"for-an-advisor\"; actors = [\"agent-b\"];\n"
                       "      subjects = [\"advisor-1\"]; }\n")));
    assert_int_equal(f->d.count, 2);
    const mandate_delegation_rule *r = &f->d.rules[0];
    assert_string_equal(r->name, "helpers");
    assert_string_equal(r->actors[0], "agent-d");
    assert_string_equal(r->actors[1], "agent-e");
    assert_null(r->actors[2]);
    assert_string_equal(r->clients[0], "agent-a");
    assert_null(r->subjects[0]);
    assert_string_equal(r->audiences[0], OTHER);
    r = &f->d.rules[1];
    assert_null(r->clients[0]);
    assert_string_equal(r->subjects[0], "advisor-1");
    assert_null(r->audiences[0]);
    /* nothing: no rules */
    assert_true(parse(f, "tokens: { lifetime = 60; };\n"));
    assert_int_equal(f->d.count, 0);
    assert_true(parse(f, "delegation = { max_depth = 2; };\n"));
    assert_int_equal(f->d.count, 0);
    assert_true(parse(f, RULES("")));
    assert_int_equal(f->d.count, 0);
}

static void test_read_refusals(void **state)
{
    fixture *f = *state;
    assert_bad(f, "delegation = { rules = { name = \"x\"; }; };\n", 1, "must be a list");
    /* libconfig places a scalar on the line after it */
    assert_bad(f, RULES("    \"agent-d\"\n"), 4, "must be a group");
    assert_bad(f, RULES("    { actors = [\"agent-d\"]; clients = [\"agent-a\"]; }\n"), 3,
               "'name' is missing");
    assert_bad(f, RULES("    { name = \"r\"; clients = [\"agent-a\"]; }\n"), 3,
               "'actors' is required");
    assert_bad(f, RULES("    { name = \"r\"; actors = []; clients = [\"agent-a\"]; }\n"), 3,
               "'actors' is required");
    assert_bad(f, RULES("    { name = \"r\"; actors = [\"agent-d\"]; }\n"), 3,
               "'clients', 'subjects' or both");
    /* no wildcards: a bank names each client */
    assert_bad(f, RULES("    { name = \"r\"; actors = [\"*\"]; clients = [\"agent-a\"]; }\n"),
               3, "no wildcards");
    assert_bad(f,
               RULES("    { name = \"r\"; actors = [\"agent-d\"];\n"
                     "      clients = [\"agent a\"]; }\n"),
               4, "'agent a' is not a client id");
    assert_bad(f, RULES("    { name = \"r\"; actors = [\"agent-d\"]; subjects = [\"\"]; }\n"),
               3, "is not a client id");
    assert_bad(f,
               RULES("    { name = \"r\"; actors = [\"agent-d\"]; clients = [\"agent-a\"];\n"
                     "      audiences = [\"not a uri\"]; }\n"),
               4, "must be an absolute URI");
    assert_bad(f,
               RULES("    { name = \"r\"; actors = [\"agent-d\"]; clients = [\"agent-a\"];\n"
                     "      may_act = true; }\n"),
               4, "may_act");
    assert_bad(
        f,
        RULES("    { name = \"r\"; actors = [\"agent-d\"]; clients = [\"agent-a\"]; },\n"
              "    { name = \"r\"; actors = [\"agent-e\"]; clients = [\"agent-a\"]; }\n"),
        4, "named twice");
    /* a rule's own limits: a scope each, a depth within the global one */
    assert_bad(f,
               RULES("    { name = \"r\"; actors = [\"agent-d\"]; clients = [\"agent-a\"];\n"
                     "      scopes = [\"mcp:call\", \"two words\"]; }\n"),
               4, "rule 'r': scope 'two words' is not a scope");
    assert_bad(f,
               RULES("    { name = \"r\"; actors = [\"agent-d\"]; clients = [\"agent-a\"];\n"
                     "      max_depth = 0; }\n"),
               4, "max_depth");
    assert_bad(f,
               RULES("    { name = \"r\"; actors = [\"agent-d\"]; clients = [\"agent-a\"];\n"
                     "      max_depth = 4; }\n"),
               4, "max_depth 4 is more than delegation.max_depth 3");
}

/* The whole configuration: max_depth with its default and its bounds, and
 * a bad rule failing the load. */
static void test_config_load(void **state)
{
    fixture *f = *state;
    free(test_write_file(f->file.dir, "mandate.d/store-sqlite.conf",
                         "kind = \"store\";\nplugin = \"sqlite\";\n"));
    free(f->file.path);
    f->file.path =
        test_write_file(f->file.dir, "mandate.conf", "tokens: { lifetime = 60; };\n");
    mandate_config *cfg = NULL;
    assert_true(mandate_config_load(f->file.path, &cfg, &f->file.diag));
    assert_int_equal(cfg->delegation.max_depth, MANDATE_DELEGATION_DEFAULT_MAX_DEPTH);
    assert_int_equal(cfg->delegation.count, 0);
    mandate_config_free(&cfg);

    free(test_write_file(
        f->file.dir, "mandate.conf",
        "delegation = {\n  max_depth = 5;\n  rules = (\n"
        "    { name = \"r\"; actors = [\"agent-d\"]; clients = [\"agent-a\"]; }\n"
        "  );\n};\n"));
    assert_true(mandate_config_load(f->file.path, &cfg, &f->file.diag));
    assert_int_equal(cfg->delegation.max_depth, 5);
    assert_int_equal(cfg->delegation.count, 1);
    mandate_config_free(&cfg);

    free(test_write_file(f->file.dir, "mandate.conf", "delegation = { max_depth = 17; };\n"));
    assert_false(mandate_config_load(f->file.path, &cfg, &f->file.diag));
    test_assert_diag_at(&f->file.diag, f->file.path, 1, "max_depth");
    mandate_diag_free(&f->file.diag);
    free(test_write_file(f->file.dir, "mandate.conf", "delegation = { max_depth = 0; };\n"));
    assert_false(mandate_config_load(f->file.path, &cfg, &f->file.diag));
    mandate_diag_free(&f->file.diag);
    free(test_write_file(f->file.dir, "mandate.conf", "delegation = { maxdepth = 2; };\n"));
    assert_false(mandate_config_load(f->file.path, &cfg, &f->file.diag));
    test_assert_diag_at(&f->file.diag, f->file.path, 1, "maxdepth");
    mandate_diag_free(&f->file.diag);
    free(
        test_write_file(f->file.dir, "mandate.conf",
                        "delegation = {\n  rules = (\n    { name = \"r\"; actors = [\"d\"]; }\n"
                        "  );\n};\n"));
    assert_false(mandate_config_load(f->file.path, &cfg, &f->file.diag));
    assert_null(cfg);
    test_assert_diag_at(&f->file.diag, f->file.path, 3, "'clients', 'subjects' or both");
}

/* etc/mandate.conf carries example rules, commented out in its delegation
 * group: uncommented, they load. */
static void test_shipped_example(void **state)
{
    fixture *f = *state;
    char *path = mandate_xasprintf("%s/etc/mandate.conf", SRCDIR);
    FILE *fp = fopen(path, "r");
    free(path);
    assert_non_null(fp);
    char line[512], block[4096] = "delegation = {\n";
    size_t used = strlen(block);
    bool in = false;
    while (fgets(line, sizeof(line), fp) != NULL) {
        if (!in && strcmp(line, "  # rules = (\n") == 0)
            in = true;
        if (!in)
            continue;
        assert_true(strncmp(line, "  # ", 4) == 0);
        size_t n = strlen(line + 4);
        assert_true(used + n + 8 < sizeof(block));
        memcpy(block + used, line + 4, n);
        used += n;
        if (strcmp(line, "  # );\n") == 0)
            break;
    }
    fclose(fp);
    memcpy(block + used, "};\n", 4);
    assert_true(in);
    if (!parse(f, block)) {
        char *all = mandate_diag_join(&f->file.diag);
        fail_msg("the shipped example does not load: %s\n%s", all, block);
    }
    assert_int_equal(f->d.count, 1);
    assert_string_equal(f->d.rules[0].name, "calendar-helpers");
}

/* ---- deciding ---- */

/* The finding, as reported: agent-d turns agent-a's token for the calendar
 * into one for another audience of its own. */
static void test_attack_refused(void **state)
{
    fixture *f = *state;
    f->rq.requested_audience = OTHER;
    expect(f, MANDATE_DELEGATION_NOT_ALLOWED,
           "no delegation rule lets agent-d act for tokens "
           "of client agent-a");
    assert_true(f->res.delegated);
    assert_null(f->res.rule);
    /* even asking for nothing more: another client's token needs a rule */
    f->rq.requested_audience = NULL;
    expect(f, MANDATE_DELEGATION_NOT_ALLOWED, NULL);
    /* a rule for another actor, or for another client's tokens, is no rule for this one */
    assert_true(parse(
        f, RULES("    { name = \"e\"; actors = [\"agent-e\"]; clients = [\"agent-a\"]; },\n"
                 "    { name = \"b\"; actors = [\"agent-d\"]; clients = [\"agent-b\"]; }\n")));
    expect(f, MANDATE_DELEGATION_NOT_ALLOWED, NULL);
    assert_string_equal(mandate_delegation_verdict_name(f->res.verdict), "actor_not_allowed");
}

static void test_rule_admits_within_the_token(void **state)
{
    fixture *f = *state;
    assert_true(parse(f, RULES("    { name = \"helpers\"; actors = [\"agent-d\"]; "
                               "clients = [\"agent-a\"]; }\n")));
    expect(f, MANDATE_DELEGATION_ADMITTED, "delegation rule helpers");
    assert_string_equal(f->res.rule->name, "helpers");
    assert_string_equal(f->res.actor, "agent-d");
    assert_null(f->res.prior_actors);
    assert_int_equal(f->res.depth, 1);
    assert_string_equal(f->res.audience, CAL);
    assert_string_equal(f->res.scope, "mcp:call gateway:invoke");
    /* but not for an audience beyond the token's: the rule lists none */
    f->rq.requested_audience = OTHER;
    expect(f, MANDATE_DELEGATION_AUDIENCE, "beyond the subject_token's audience");
    assert_string_equal(f->res.word, OTHER);
    assert_null(f->res.rule);
    /* asked for explicitly, the token's own is fine */
    f->rq.requested_audience = CAL;
    expect(f, MANDATE_DELEGATION_ADMITTED, NULL);
    assert_string_equal(f->res.audience, CAL);
}

static void test_rule_lists_an_audience(void **state)
{
    fixture *f = *state;
    /* the first rule admits the actor, the second also the other audience */
    assert_true(parse(f, RULES("    { name = \"plain\"; actors = [\"agent-d\"]; "
                               "clients = [\"agent-a\"]; },\n"
                               "    { name = \"wider\"; actors = [\"agent-d\"]; "
                               "clients = [\"agent-a\"];\n"
                               "      audiences = [\"" OTHER "\"]; }\n")));
    f->rq.requested_audience = OTHER;
    expect(f, MANDATE_DELEGATION_ADMITTED, "delegation rule wider");
    assert_string_equal(f->res.audience, OTHER);
    f->rq.requested_audience = CAL " " OTHER;
    expect(f, MANDATE_DELEGATION_ADMITTED, "delegation rule wider");
    f->rq.requested_audience = NULL;
    expect(f, MANDATE_DELEGATION_ADMITTED, "delegation rule plain");
    assert_string_equal(f->res.audience, CAL);
    /* the acting client's own audiences still bound what it may ask */
    f->rq.actor_audiences = CAL;
    f->rq.requested_audience = OTHER;
    expect(f, MANDATE_DELEGATION_AUDIENCE, "not among the audiences of agent-d");
    f->rq.actor_audiences = NULL;
    expect(f, MANDATE_DELEGATION_AUDIENCE, NULL);
}

/* Nothing asked: the token's audiences within the actor's, never one it
 * would be refused by name (review s32, finding 4); none left is refused. */
static void test_default_audience_within_the_actor(void **state)
{
    fixture *f = *state;
    assert_true(parse(f, RULES("    { name = \"helpers\"; actors = [\"agent-d\"]; "
                               "clients = [\"agent-a\"]; }\n")));
    f->token.audience = CAL " " OTHER;
    f->rq.actor_audiences = CAL;
    f->rq.requested_audience = OTHER;
    expect(f, MANDATE_DELEGATION_AUDIENCE, "not among the audiences of agent-d");
    f->rq.requested_audience = NULL;
    expect(f, MANDATE_DELEGATION_ADMITTED, "delegation rule helpers");
    assert_string_equal(f->res.audience, CAL);
    f->rq.actor_audiences = "https://elsewhere.example " OTHER " " CAL;
    expect(f, MANDATE_DELEGATION_ADMITTED, NULL);
    assert_string_equal(f->res.audience, CAL " " OTHER); /* in the token's order */
    f->rq.actor_audiences = "https://elsewhere.example";
    expect(f, MANDATE_DELEGATION_AUDIENCE,
           "none of the subject_token's audiences (" CAL " " OTHER ") is among the audiences "
           "of agent-d");
    assert_string_equal(f->res.word, CAL);
    f->rq.actor_audiences = NULL;
    expect(f, MANDATE_DELEGATION_AUDIENCE, NULL);
    /* the same for a client narrowing its own token */
    f->rq.actor = "agent-a";
    f->rq.actor_audiences = OTHER;
    expect(f, MANDATE_DELEGATION_ADMITTED, "its own token, narrowed");
    assert_string_equal(f->res.audience, OTHER);
}

static void test_own_token_narrowed(void **state)
{
    fixture *f = *state;
    /* no rule needed to narrow one's own token */
    f->rq.actor = "agent-a";
    f->rq.requested_scope = "mcp:call";
    expect(f, MANDATE_DELEGATION_ADMITTED, "its own token, narrowed");
    assert_false(f->res.delegated);
    assert_null(f->res.rule);
    assert_string_equal(f->res.actor, "agent-a");
    assert_string_equal(f->res.scope, "mcp:call");
    /* but not to widen it, even to an audience of its own */
    f->rq.requested_audience = OTHER;
    expect(f, MANDATE_DELEGATION_AUDIENCE, "beyond the subject_token's audience");
    /* unless a rule says so */
    assert_true(parse(f, RULES("    { name = \"own\"; actors = [\"agent-a\"]; "
                               "clients = [\"agent-a\"];\n"
                               "      audiences = [\"" OTHER "\"]; }\n")));
    expect(f, MANDATE_DELEGATION_ADMITTED, "delegation rule own");
    /* narrowing a token it already acts in adds no hop */
    f->rq.requested_audience = NULL;
    f->token = (mandate_grant){.subject = "advisor-1",
                               .client_id = "agent-a",
                               .actor = "agent-a",
                               .prior_actors = "agent-x",
                               .scope = "mcp:call",
                               .audience = CAL};
    expect(f, MANDATE_DELEGATION_ADMITTED, NULL);
    assert_null(f->res.rule);
    assert_string_equal(f->res.actor, "agent-a");
    assert_string_equal(f->res.prior_actors, "agent-x");
    assert_int_equal(f->res.depth, 2);
}

/* A -> B -> C -> D, then E: nested, nearest first, and refused past
 * max_depth. */
static void test_chain_nests_to_max_depth(void **state)
{
    fixture *f = *state;
    assert_true(parse(
        f, RULES("    { name = \"b\"; actors = [\"agent-b\"]; clients = [\"agent-a\"]; },\n"
                 "    { name = \"c\"; actors = [\"agent-c\"]; clients = [\"agent-b\"]; },\n"
                 "    { name = \"d\"; actors = [\"agent-d\"]; clients = [\"agent-c\"]; },\n"
                 "    { name = \"e\"; actors = [\"agent-e\"]; clients = [\"agent-d\"]; }\n")));
    f->d.max_depth = 3;
    const char *actors[] = {"agent-b", "agent-c", "agent-d"};
    const char *priors[] = {NULL, "agent-b", "agent-c agent-b"};
    for (size_t i = 0; i < 3; i++) {
        f->rq.actor = actors[i];
        expect(f, MANDATE_DELEGATION_ADMITTED, NULL);
        assert_string_equal(f->res.actor, actors[i]);
        test_assert_str_or_null(priors[i], f->res.prior_actors);
        assert_int_equal(f->res.depth, i + 1);
        /* the token the next one exchanges */
        f->token.client_id = actors[i];
        f->token.actor = f->res.actor;
        f->token.prior_actors = f->res.prior_actors;
    }
    f->rq.actor = "agent-e";
    expect(f, MANDATE_DELEGATION_TOO_DEEP,
           "4 actors (agent-e agent-d agent-c agent-b), more than delegation.max_depth 3");
    assert_string_equal(mandate_delegation_verdict_name(f->res.verdict), "too_deep");
    f->d.max_depth = 4;
    expect(f, MANDATE_DELEGATION_ADMITTED, NULL);
    assert_string_equal(f->res.prior_actors, "agent-d agent-c agent-b");
    /* an actor without a rule learns nothing of the depth */
    f->d.max_depth = 3;
    f->rq.actor = "agent-z";
    expect(f, MANDATE_DELEGATION_NOT_ALLOWED, NULL);
    /* max_depth is never taken past what a format carries */
    f->d.max_depth = 1000;
    f->rq.actor = "agent-e";
    f->token.prior_actors =
        "p1 p2 p3 p4 p5 p6 p7 p8 p9 p10 p11 p12 p13 p14"; /* with actor, 15: with e, 16 */
    expect(f, MANDATE_DELEGATION_ADMITTED, NULL);
    assert_int_equal(f->res.depth, MANDATE_GRANT_MAX_ACTORS);
    f->token.prior_actors = "p1 p2 p3 p4 p5 p6 p7 p8 p9 p10 p11 p12 p13 p14 p15";
    expect(f, MANDATE_DELEGATION_TOO_DEEP, NULL);
}

static void test_scopes_never_grow(void **state)
{
    fixture *f = *state;
    assert_true(parse(
        f, RULES("    { name = \"r\"; actors = [\"agent-d\"]; clients = [\"agent-a\"]; }\n")));
    f->rq.requested_scope = "mcp:call audit:read"; /* the actor's, not the token's */
    expect(f, MANDATE_DELEGATION_SCOPE, "scope audit:read is beyond");
    assert_string_equal(f->res.word, "audit:read");
    assert_string_equal(mandate_delegation_verdict_name(f->res.verdict), "scope");
    f->rq.actor_scopes = "mcp:call";
    f->rq.requested_scope = "gateway:invoke"; /* the token's, not the actor's */
    expect(f, MANDATE_DELEGATION_SCOPE, NULL);
    assert_string_equal(f->res.word, "gateway:invoke");
    /* asking nothing: the token's, which must be the actor's too */
    f->rq.requested_scope = NULL;
    expect(f, MANDATE_DELEGATION_SCOPE, NULL);
    f->rq.actor_scopes = "mcp:call gateway:invoke";
    expect(f, MANDATE_DELEGATION_ADMITTED, NULL);
    assert_string_equal(f->res.scope, "mcp:call gateway:invoke");
    f->rq.requested_scope = "";
    expect(f, MANDATE_DELEGATION_ADMITTED, NULL);
    assert_null(f->res.scope);
}

static void test_subjects(void **state)
{
    fixture *f = *state;
    /* any client's token, but only for advisor-1 */
    assert_true(parse(f, RULES("    { name = \"for-advisor-1\"; actors = [\"agent-d\"];\n"
                               "      subjects = [\"advisor-1\"]; }\n")));
    f->token.subject = "advisor-1";
    expect(f, MANDATE_DELEGATION_ADMITTED, "delegation rule for-advisor-1");
    f->token.subject = "advisor-2";
    expect(f, MANDATE_DELEGATION_NOT_ALLOWED, "(subject advisor-2)");
    /* both lists: both must hold */
    assert_true(
        parse(f, RULES("    { name = \"both\"; actors = [\"agent-d\"];\n"
                       "      clients = [\"agent-a\"]; subjects = [\"advisor-1\"]; }\n")));
    f->token.subject = "advisor-1";
    expect(f, MANDATE_DELEGATION_ADMITTED, NULL);
    f->token.client_id = "agent-b";
    expect(f, MANDATE_DELEGATION_NOT_ALLOWED, NULL);
}

/* A rule's own max_depth and scopes: it admits an actor only that deep and
 * only for those scopes; the refusal names the rule and the limit, a later
 * rule without the limit may admit instead, and may_act does not lift it. */
static void test_rule_limits(void **state)
{
    fixture *f = *state;
    assert_true(parse(f, RULES("    { name = \"shallow\"; actors = [\"agent-d\"];\n"
                               "      clients = [\"agent-a\"]; max_depth = 1;\n"
                               "      scopes = [\"mcp:call\"]; }\n")));
    assert_int_equal(f->d.rules[0].max_depth, 1);
    assert_string_equal(f->d.rules[0].scopes[0], "mcp:call");
    /* the token's scopes, asked for by default, are more than the rule's */
    expect(f, MANDATE_DELEGATION_SCOPE,
           "rule shallow: scope gateway:invoke is not among its scopes");
    assert_string_equal(f->res.word, "gateway:invoke");
    assert_null(f->res.rule);
    f->rq.requested_scope = "mcp:call";
    expect(f, MANDATE_DELEGATION_ADMITTED,
           "delegation rule shallow, to depth 1, for scopes mcp:call");
    assert_string_equal(f->res.rule->name, "shallow");
    /* a token agent-b acts in already: agent-d would be the second actor */
    f->token.client_id = "agent-a";
    f->token.actor = "agent-b";
    expect(f, MANDATE_DELEGATION_TOO_DEEP,
           "rule shallow: the act chain would hold 2 actors, more than its max_depth 1");
    assert_string_equal(mandate_delegation_verdict_name(f->res.verdict), "too_deep");
    /* the token's may_act names agent-d (written from the same rule): still refused */
    f->token.may_act = "agent-d";
    expect(f, MANDATE_DELEGATION_TOO_DEEP, "admit it only within their limits");
    /* a later rule without the limit admits */
    assert_true(parse(f, RULES("    { name = \"shallow\"; actors = [\"agent-d\"];\n"
                               "      clients = [\"agent-a\"]; max_depth = 1; },\n"
                               "    { name = \"deeper\"; actors = [\"agent-d\"];\n"
                               "      clients = [\"agent-a\"]; max_depth = 2; }\n")));
    expect(f, MANDATE_DELEGATION_ADMITTED, "delegation rule deeper, to depth 2");
    assert_int_equal(f->res.depth, 2);
    /* every limited rule says why */
    f->token.prior_actors = "agent-q";
    expect(f, MANDATE_DELEGATION_TOO_DEEP, "; rule shallow: the act chain would hold 3 actors");
    expect(f, MANDATE_DELEGATION_TOO_DEEP, "; rule deeper: the act chain would hold 3 actors");
    /* an audience beyond the token's: only a rule within its limits lists it */
    assert_true(parse(f, RULES("    { name = \"near\"; actors = [\"agent-d\"];\n"
                               "      clients = [\"agent-a\"]; },\n"
                               "    { name = \"far\"; actors = [\"agent-d\"];\n"
                               "      clients = [\"agent-a\"]; max_depth = 1;\n"
                               "      audiences = [\"" OTHER "\"]; }\n")));
    f->token.prior_actors = NULL;
    f->rq.requested_audience = OTHER;
    expect(f, MANDATE_DELEGATION_AUDIENCE, "resource " OTHER " is beyond");
    f->token.actor = NULL;
    expect(f, MANDATE_DELEGATION_ADMITTED, "delegation rule far");
}

/* may_act in the subject token admits an actor no rule names; the rest of
 * the decision holds all the same. */
static void test_may_act_admits(void **state)
{
    fixture *f = *state;
    assert_true(parse(
        f, RULES("    { name = \"b\"; actors = [\"agent-b\"]; clients = [\"agent-a\"]; }\n")));
    expect(f, MANDATE_DELEGATION_NOT_ALLOWED, "and the subject_token has no may_act");
    f->token.may_act = "agent-m agent-d";
    expect(f, MANDATE_DELEGATION_ADMITTED, "the subject_token's may_act");
    assert_true(f->res.by_may_act);
    assert_null(f->res.rule);
    assert_string_equal(f->res.actor, "agent-d");
    /* no wider audience: no rule lists one */
    f->rq.requested_audience = OTHER;
    expect(f, MANDATE_DELEGATION_AUDIENCE, NULL);
    f->rq.requested_audience = NULL;
    /* a prefix of a name is not the name */
    f->rq.actor = "agent";
    f->rq.actor_scopes = "mcp:call gateway:invoke";
    expect(f, MANDATE_DELEGATION_NOT_ALLOWED, "may_act does not name it");
}

/* A refusal for want of a rule names, for each rule, the list that leaves
 * the request out. */
static void test_each_rule_says_why(void **state)
{
    fixture *f = *state;
    assert_true(parse(
        f, RULES("    { name = \"b\"; actors = [\"agent-b\"]; clients = [\"agent-a\"]; },\n"
                 "    { name = \"d\"; actors = [\"agent-d\"]; clients = [\"agent-c\"]; },\n"
                 "    { name = \"s\"; actors = [\"agent-d\"]; subjects = [\"advisor-1\"]; }\n")));
    expect(f, MANDATE_DELEGATION_NOT_ALLOWED, "; rule b: agent-d is not among its actors");
    expect(f, MANDATE_DELEGATION_NOT_ALLOWED, "; rule d: client agent-a is not among its clients");
    expect(f, MANDATE_DELEGATION_NOT_ALLOWED,
           "; rule s: subject agent-a is not among its subjects");
}

/* An actor already in the chain: A acting for B acting for A. */
static void test_cycle_refused(void **state)
{
    fixture *f = *state;
    assert_true(parse(
        f, RULES("    { name = \"ab\"; actors = [\"agent-a\"]; clients = [\"agent-b\"]; }\n")));
    f->rq.actor = "agent-a";
    f->token.client_id = "agent-b";
    f->token.actor = "agent-b";
    f->token.prior_actors = "agent-a";
    expect(f, MANDATE_DELEGATION_CYCLE, "agent-a is already in the subject_token's act chain");
    assert_string_equal(mandate_delegation_verdict_name(f->res.verdict), "cycle");
    /* the chain's first client, its subject (client credentials): B's
     * token, act B, sub agent-a, handed back to agent-a */
    f->token.subject = "agent-a";
    f->token.prior_actors = NULL;
    expect(f, MANDATE_DELEGATION_CYCLE, "agent-a began the subject_token's chain");
    /* the current actor narrowing its own token is no cycle */
    f->token.actor = "agent-a";
    f->token.prior_actors = "agent-b";
    f->token.client_id = "agent-a";
    expect(f, MANDATE_DELEGATION_ADMITTED, NULL);
    assert_string_equal(f->res.prior_actors, "agent-b");
}

/* The may_act written into a token: the client's own, then each rule's
 * about the token's client and subject, once each, never the client. */
static void test_may_act_for_a_token(void **state)
{
    fixture *f = *state;
    assert_true(parse(
        f, RULES("    { name = \"b\"; actors = [\"agent-b\", \"agent-a\"]; clients = [\"agent-a\"]; },\n"
                 "    { name = \"c\"; actors = [\"agent-c\"]; clients = [\"agent-x\"]; },\n"
                 "    { name = \"s\"; actors = [\"agent-b\", \"agent-s\"]; subjects = [\"agent-a\"]; }\n")));
    test_assert_str_or_null("agent-b agent-s",
                            mandate_delegation_may_act(&f->d, f->pool, NULL, &f->token));
    test_assert_str_or_null(
        "agent-m agent-b agent-s",
        mandate_delegation_may_act(&f->d, f->pool, "{\"may_act\":[\"agent-m\",\"a b\"]}",
                                   &f->token));
    f->token.client_id = "agent-q";
    f->token.subject = "advisor-9";
    assert_null(mandate_delegation_may_act(&f->d, f->pool, "not json", &f->token));
}

/* Review s32, finding 11: a chain that began with a sign-in (its subject a
 * user, not the client) comes back to its first client through another. */
static void test_cycle_through_the_origin(void **state)
{
    fixture *f = *state;
    assert_true(parse(f, RULES("    { name = \"xy\"; actors = [\"app-y\"]; clients = [\"app-x\"]; },\n"
                               "    { name = \"yx\"; actors = [\"app-x\"]; clients = [\"app-y\"]; }\n")));
    /* alice signed in through app-x: sub alice, client_id app-x, no act */
    f->token = (mandate_grant){.subject = "alice", .client_id = "app-x", .scope = "mcp:call",
                               .audience = CAL};
    f->rq.actor = "app-y";
    expect(f, MANDATE_DELEGATION_ADMITTED, NULL);
    /* the derived token keeps where its chain began */
    assert_string_equal(f->res.origin_client_id, "app-x");
    assert_null(f->res.prior_actors);
    /* app-x exchanges app-y's token (sub alice, act app-y): a cycle */
    f->token.client_id = "app-y";
    f->token.actor = "app-y";
    f->token.origin_client_id = "app-x";
    f->rq.actor = "app-x";
    expect(f, MANDATE_DELEGATION_CYCLE,
           "app-x began the subject_token's chain (it is its origin_client_id)");
    /* the origin is handed down unchanged, however long the chain */
    f->rq.actor = "app-z";
    assert_true(parse(f, RULES("    { name = \"yz\"; actors = [\"app-z\"]; clients = [\"app-y\"]; }\n")));
    expect(f, MANDATE_DELEGATION_ADMITTED, NULL);
    assert_string_equal(f->res.origin_client_id, "app-x");
    assert_string_equal(f->res.prior_actors, "app-y");
    /* a token from before ABI 1.9 (no origin) after the first hop: none
     * kept, and the checks of before (subject, act chain) still run */
    f->token.origin_client_id = NULL;
    expect(f, MANDATE_DELEGATION_ADMITTED, NULL);
    assert_null(f->res.origin_client_id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST_FX(test_read),
        TEST_FX(test_read_refusals),
        TEST_FX(test_config_load),
        TEST_FX(test_shipped_example),
        TEST_FX(test_attack_refused),
        TEST_FX(test_rule_admits_within_the_token),
        TEST_FX(test_rule_lists_an_audience),
        TEST_FX(test_default_audience_within_the_actor),
        TEST_FX(test_own_token_narrowed),
        TEST_FX(test_chain_nests_to_max_depth),
        TEST_FX(test_scopes_never_grow),
        TEST_FX(test_subjects),
        TEST_FX(test_may_act_admits),
        TEST_FX(test_each_rule_says_why),
        TEST_FX(test_cycle_refused),
        TEST_FX(test_may_act_for_a_token),
        TEST_FX(test_rule_limits),
        TEST_FX(test_cycle_through_the_origin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
