/* Mapping rules: reading them from mandate.conf (each mistake named with
 * file and line) and applying them to federated identities. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config-private.h"
#include "mapping-private.h"
#include "pool-private.h"
#include "test-helpers.h"
#include "util-private.h"

#define NOW INT64_C(1700000000)

/* The example shipped, commented, in etc/mandate.conf (each line there is
 * this one with "# " in front): test_shipped_example checks they agree. */
static const char example[] =
    "mappings = (\n"
    "  { name = \"advisors\";\n"
    "    idp = \"backend-corp-saml\";\n"
    "    when = ( { attribute = \"role\"; equals = \"FinancialAdvisor\"; },\n"
    "             { attribute = \"employeeId\"; present = true; } );\n"
    "    subject = \"advisor-${employeeId}\";\n"
    "    tenant = \"wealth\";\n"
    "    scopes = [\"gateway:invoke\", \"mcp:call\"];\n"
    "    audience = [\"https://mcp.example/market-calendar\"];\n"
    "    max_lifetime = 900; },\n"
    "  { name = \"compliance\";\n"
    "    idp = \"backend-corp-saml\";\n"
    "    when = ( { attribute = \"role\"; equals = \"ComplianceOfficer\"; },\n"
    "             { attribute = \"employeeId\"; present = true; } );\n"
    "    subject = \"compliance-${employeeId}\";\n"
    "    tenant = \"wealth\";\n"
    "    scopes = [\"gateway:invoke\", \"mcp:call\"];\n"
    "    audience = [\"https://mcp.example/compliance-archive\"];\n"
    "    max_lifetime = 600; }\n"
    ");\n";

typedef struct fixture {
    test_conf_file file;
    mandate_mappings m;
    mandate_pool *pool;
    mandate_identity identity;
    mandate_mapping_request rq;
    mandate_mapping_result res;
} fixture;

static bool parse(fixture *f, const char *text);

/* A test's state on the way in may be the mappings it runs with (cmocka's
 * prestate; see RULES below), parsed here before it runs. */
static int setup(void **state)
{
    const char *rules = *state;
    fixture *f = calloc(1, sizeof(*f));
    test_conf_file_init(&f->file);
    f->pool = mandate_pool_new();
    f->rq.idp = "backend-corp-saml";
    f->rq.idp_plugin = "saml";
    f->rq.identity = &f->identity;
    f->rq.client_scopes = "gateway:invoke mcp:call audit:read trade:execute";
    f->rq.default_lifetime = 3600;
    f->rq.now = NOW;
    f->identity.issuer = "https://idp.example/";
    f->identity.subject = "someone";
    f->identity.authn_instant = NOW - 60;
    *state = f;
    return rules == NULL || parse(f, rules) ? 0 : -1;
}

static int teardown(void **state)
{
    fixture *f = *state;
    mandate_mappings_free(&f->m);
    mandate_pool_free(&f->pool);
    test_conf_file_clear(&f->file);
    free(f);
    return 0;
}

/* Reads text as mandate.conf's mappings; whether they were accepted. */
static bool parse(fixture *f, const char *text)
{
    mandate_mappings_free(&f->m);
    config_t cfg;
    bool ok = test_conf_file_read(&f->file, text, &cfg) &&
              mandate_mappings_read(&cfg, f->file.path, &f->m, &f->file.diag);
    config_destroy(&cfg);
    return ok;
}

static bool contains(const char *s, const char *what)
{
    return s != NULL && strstr(s, what) != NULL;
}

/* Some diagnostic must start with "<conf>:<line>: " and hold `what`. */
static void assert_diag_at(fixture *f, int line, const char *what)
{
    test_assert_diag_at(&f->file.diag, f->file.path, line, what);
}

static void assert_bad(fixture *f, const char *text, int line, const char *what)
{
    assert_false(parse(f, text));
    assert_int_equal(f->m.count, 0);
    assert_null(f->m.rules);
    assert_diag_at(f, line, what);
}

static mandate_rc apply(fixture *f, const char *attributes)
{
    f->identity.attributes = attributes;
    return mandate_mapping_apply(&f->m, &f->rq, f->pool, &f->res);
}

static void assert_why(fixture *f, const char *what)
{
    if (!contains(f->res.why, what))
        fail_msg("expected \"%s\" in why \"%s\"", what, f->res.why ? f->res.why : "(null)");
}

static bool same(const char *a, const char *b)
{
    return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

/* attributes map to subject (NULL: they are refused). */
static void expect_subject(fixture *f, const char *attributes, const char *subject)
{
    mandate_rc rc = apply(f, attributes);
    if (rc != (subject != NULL ? MANDATE_OK : MANDATE_DENIED) || !same(f->res.subject, subject))
        fail_msg("%s: rc %d, subject %s, expected %s (why: %s)",
                 attributes ? attributes : "(none)", (int)rc,
                 f->res.subject ? f->res.subject : "(none)", subject ? subject : "(refused)",
                 f->res.why ? f->res.why : "");
}

/* attributes are refused, and why says what. */
static void expect_denied(fixture *f, const char *attributes, const char *what)
{
    mandate_rc rc = apply(f, attributes);
    if (rc != MANDATE_DENIED)
        fail_msg("%s: rc %d, expected DENIED", attributes ? attributes : "(none)", (int)rc);
    assert_why(f, what);
}

/* Asked for scope asked (NULL: nothing), with no attributes: granted scope
 * for lifetime seconds. */
static void expect_granted(fixture *f, const char *asked, const char *scope, int64_t lifetime)
{
    f->rq.requested_scope = asked;
    mandate_rc rc = apply(f, "{}");
    if (rc != MANDATE_OK || !same(f->res.scope, scope) || f->res.lifetime != lifetime)
        fail_msg("asked %s: rc %d, %s for %lld s, expected %s for %lld s (why: %s)",
                 asked ? asked : "(nothing)", (int)rc, f->res.scope ? f->res.scope : "(none)",
                 (long long)f->res.lifetime, scope, (long long)lifetime,
                 f->res.why ? f->res.why : "");
}

/* Asked for audience asked (NULL: nothing), with no attributes: granted
 * for audience (NULL: none). */
static void expect_audience(fixture *f, const char *asked, const char *audience)
{
    f->rq.requested_audience = asked;
    mandate_rc rc = apply(f, "{}");
    if (rc != MANDATE_OK || !same(f->res.audience, audience))
        fail_msg("asked %s: rc %d, audience %s, expected %s (why: %s)",
                 asked ? asked : "(nothing)", (int)rc,
                 f->res.audience ? f->res.audience : "(none)", audience ? audience : "(none)",
                 f->res.why ? f->res.why : "");
}

#define RULE(extra)                                                                            \
    "mappings = (\n"                                                                           \
    "  { name = \"r\"; idp = \"x\"; subject = \"s-${id}\"; scopes = [\"a\"];\n" extra "  }\n"  \
    ");\n"

/* ---- reading ---- */

static void test_example_parses(void **state)
{
    fixture *f = *state;
    assert_int_equal(f->m.count, 2);
    const mandate_mapping_rule *r = &f->m.rules[0];
    assert_string_equal(r->name, "advisors");
    assert_string_equal(r->idp, "backend-corp-saml");
    assert_int_equal(r->condition_count, 2);
    assert_int_equal(r->conditions[0].op, MANDATE_COND_EQUALS);
    assert_string_equal(r->conditions[0].attribute, "role");
    assert_string_equal(r->conditions[0].values[0], "FinancialAdvisor");
    assert_null(r->conditions[0].values[1]);
    assert_int_equal(r->conditions[1].op, MANDATE_COND_PRESENT);
    assert_string_equal(r->subject, "advisor-${employeeId}");
    assert_string_equal(r->tenant, "wealth");
    assert_string_equal(r->scopes[0], "gateway:invoke");
    assert_string_equal(r->scopes[1], "mcp:call");
    assert_null(r->scopes[2]);
    assert_string_equal(r->audiences[0], "https://mcp.example/market-calendar");
    assert_int_equal(r->max_lifetime, 900);
    assert_null(r->sensitive_scopes[0]);
    assert_string_equal(f->m.rules[1].name, "compliance");
}

/* The example loads through the whole configuration, next to the core keys
 * and targets. */
static void test_example_in_config_load(void **state)
{
    fixture *f = *state;
    free(test_write_file(f->file.dir, "mandate.d/store-sqlite.conf",
                         "kind = \"store\";\nplugin = \"sqlite\";\n"));
    char *text = mandate_xasprintf("tokens: { lifetime = 1200; };\n"
                                   "targets = ( { name = \"t\"; paths = [\"/mcp\"]; "
                                   "audience = \"https://mcp.example/market-calendar\"; } );\n"
                                   "%s",
                                   example);
    test_conf_file_write(&f->file, text);
    free(text);
    mandate_config *cfg = NULL;
    if (!mandate_config_load(f->file.path, &cfg, &f->file.diag)) {
        char *all = mandate_diag_join(&f->file.diag);
        fail_msg("config load failed: %s", all);
    }
    assert_int_equal(cfg->mappings.count, 2);
    assert_string_equal(cfg->mappings.rules[1].subject, "compliance-${employeeId}");
    mandate_config_free(&cfg);

    /* a bad rule fails the load, named with file and line */
    test_conf_file_write(&f->file, "mappings = (\n"
                                   "  { name = \"r\"; idp = \"x\"; scopes = [\"a\"]; }\n"
                                   ");\n");
    mandate_diag_free(&f->file.diag);
    assert_false(mandate_config_load(f->file.path, &cfg, &f->file.diag));
    assert_null(cfg);
    assert_diag_at(f, 2, "'subject' is missing");
}

/* etc/mandate.conf carries the example above, commented out. */
static void test_shipped_example(void **state)
{
    (void)state;
    char *path = mandate_xasprintf("%s/etc/mandate.conf", SRCDIR);
    FILE *fp = fopen(path, "r");
    free(path);
    assert_non_null(fp);
    char line[512];
    char block[sizeof(example) + 512];
    size_t used = 0;
    bool in = false;
    while (fgets(line, sizeof(line), fp) != NULL) {
        if (!in && strcmp(line, "# mappings = (\n") == 0)
            in = true;
        if (!in)
            continue;
        const char *text = strncmp(line, "# ", 2) == 0 ? line + 2 : line + 1;
        size_t n = strlen(text);
        assert_true(used + n < sizeof(block));
        memcpy(block + used, text, n);
        used += n;
        if (strcmp(line, "# );\n") == 0)
            break;
    }
    fclose(fp);
    block[used] = '\0';
    assert_string_equal(block, example);
}

static const char no_mappings_rules[] = "tokens: { lifetime = 60; };\n";

static void test_no_mappings(void **state)
{
    fixture *f = *state;
    assert_int_equal(f->m.count, 0);
    assert_true(parse(f, "mappings = ();\n"));
    assert_int_equal(f->m.count, 0);
    /* no rules: every identity is refused */
    assert_int_equal(apply(f, "{\"role\": \"FinancialAdvisor\"}"), MANDATE_DENIED);
    assert_null(f->res.rule);
    assert_why(f, "no rule matched (0 rules for idp backend-corp-saml)");
}

static const char defaults_and_every_op_rules[] =
    RULE("    when = ( { attribute = \"a\"; equals = \"1\"; },\n"
         "             { attribute = \"b\"; one_of = [\"x\", \"y\"]; },\n"
         "             { attribute = \"c\"; present = true; },\n"
         "             { attribute = \"d\"; matches = \"[a-z]+\"; } );\n"
         "    sensitive_scopes = [\"a\"]; sensitive_lifetime = 60;\n");

static void test_defaults_and_every_op(void **state)
{
    fixture *f = *state;
    const mandate_mapping_rule *r = &f->m.rules[0];
    assert_string_equal(r->tenant, "default");
    assert_null(r->audiences[0]);
    assert_int_equal(r->max_lifetime, 0);
    assert_int_equal(r->sensitive_lifetime, 60);
    assert_int_equal(r->sensitive_max_authn_age, 0);
    assert_int_equal(r->condition_count, 4);
    assert_int_equal(r->conditions[1].op, MANDATE_COND_ONE_OF);
    assert_string_equal(r->conditions[1].values[1], "y");
    assert_int_equal(r->conditions[3].op, MANDATE_COND_MATCHES);
    assert_non_null(r->conditions[3].regex);
    /* a template without ${} and a rule without conditions are fine */
    assert_true(parse(f, "mappings = ( { name = \"all\"; idp = \"x\"; subject = \"team.ops\";"
                         " scopes = [\"a\"]; } );\n"));
    assert_int_equal(f->m.rules[0].condition_count, 0);
}

static void test_bad_unknown_key(void **state)
{
    fixture *f = *state;
    assert_bad(f, RULE("    colour = \"blue\";\n"), 3, "unknown key 'colour'");
    assert_bad(f,
               RULE("    when = (\n"
                    "      { attribute = \"a\"; equals = \"b\"; case = false; } );\n"),
               4, "unknown key 'case'");
}

static void test_bad_condition_ops(void **state)
{
    fixture *f = *state;
    assert_bad(f,
               RULE("    when = (\n"
                    "      { attribute = \"role\"; equals = \"x\"; matches = \"y\"; } );\n"),
               4, "exactly one of equals, one_of, present, matches (it has 2)");
    assert_bad(f,
               RULE("    when = (\n"
                    "      { attribute = \"role\"; } );\n"),
               4, "(it has 0)");
    assert_bad(f,
               RULE("    when = (\n"
                    "      { equals = \"x\"; } );\n"),
               4, "needs 'attribute'");
    assert_bad(f,
               RULE("    when = (\n"
                    "      { attribute = \"role\";\n"
                    "        present = false; } );\n"),
               5, "'present' can only be true");
    assert_bad(f,
               RULE("    when = (\n"
                    "      { attribute = \"role\";\n"
                    "        one_of = []; } );\n"),
               5, "'one_of' is empty");
    assert_bad(f, RULE("    when = { attribute = \"role\"; equals = \"x\"; };\n"), 3,
               "'when' must be a list");
}

static void test_bad_regex(void **state)
{
    fixture *f = *state;
    assert_bad(f,
               RULE("    when = (\n"
                    "      { attribute = \"role\";\n"
                    "        matches = \"adv(\"; } );\n"),
               5, "bad regex 'adv('");
}

static void test_bad_missing_keys(void **state)
{
    fixture *f = *state;
    assert_bad(f, "mappings = (\n  { name = \"r\"; idp = \"x\"; scopes = [\"a\"]; }\n);\n", 2,
               "mapping 'r': required key 'subject' is missing");
    assert_bad(f, "mappings = (\n  { name = \"r\"; subject = \"s\"; scopes = [\"a\"]; }\n);\n",
               2, "required key 'idp' is missing");
    assert_bad(f, "mappings = (\n  { idp = \"x\"; subject = \"s\"; scopes = [\"a\"]; }\n);\n",
               2, "mapping #1: required key 'name' is missing");
    assert_bad(f, "mappings = (\n  { name = \"r\"; idp = \"x\"; subject = \"s\"; }\n);\n", 2,
               "'scopes' is required");
    assert_bad(f,
               "mappings = (\n  { name = \"r\"; idp = \"x\"; subject = \"s\";\n"
               "    scopes = []; }\n);\n",
               3, "'scopes' is required and must not be empty");
    assert_bad(f, "mappings = { name = \"r\"; };\n", 1, "'mappings' must be a list");
    assert_bad(f, "mappings = ( \"r\" );\n", 1, "each mapping must be a group");
}

static void test_bad_template(void **state)
{
    fixture *f = *state;
    static const char *const bad[][2] = {
        {"adv$x", "'$' that does not begin ${attribute}"},
        {"adv-$", "'$' that does not begin"},
        {"adv-${id", "without its closing }"},
        {"adv-${}", "empty ${}"},
        {"adv-${a b}", "without its closing }"},
        {"adv/${id}", "holds '/'"},
        {"adv ${id}", "holds ' '"},
        {"", "is empty"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *text = mandate_xasprintf("mappings = (\n"
                                       "  { name = \"r\"; idp = \"x\"; scopes = [\"a\"];\n"
                                       "    subject = \"%s\"; }\n"
                                       ");\n",
                                       bad[i][0]);
        assert_bad(f, text, 3, bad[i][1]);
        free(text);
    }
}

static void test_bad_values(void **state)
{
    fixture *f = *state;
    assert_bad(f,
               RULE("    sensitive_scopes = [\"trade:execute\"];\n"
                    "    sensitive_lifetime = 60;\n"),
               3, "sensitive scope 'trade:execute' is not among its scopes");
    assert_bad(f, RULE("    sensitive_scopes = [\"a\"];\n"), 2,
               "sensitive_scopes needs sensitive_lifetime");
    assert_bad(f, RULE("    sensitive_max_authn_age = 60;\n"), 2,
               "mean nothing without sensitive_scopes");
    assert_bad(f,
               RULE("    sensitive_scopes = [\"a\"];\n"
                    "    sensitive_lifetime = 90000;\n"),
               4, "outside the allowed range 0..86400");
    assert_bad(f, RULE("    max_lifetime = 86401;\n"), 3, "'max_lifetime' is 86401");
    assert_bad(f, RULE("    max_lifetime = -1;\n"), 3, "'max_lifetime' is -1");
    assert_bad(f, RULE("    tenant = \"we alth\";\n"), 3, "tenant must be");
    assert_bad(f, RULE("    audience = [\"mcp.example/x\"];\n"), 3, "must be an absolute URI");
    assert_bad(f, RULE("    audience = [\"https://a.example/#f\"];\n"), 3, "absolute URI");
    assert_bad(f,
               "mappings = (\n  { name = \"r\"; idp = \"x\"; subject = \"s\";\n"
               "    scopes = [\"a\", \"b\\\\c\"]; }\n);\n",
               3, "scope 'b\\c' holds a character");
    assert_bad(f,
               "mappings = (\n  { name = \"r\"; idp = \"x\"; subject = \"s\";\n"
               "    scopes = \"a\"; }\n);\n",
               3, "'scopes' must be a list of strings");
}

static void test_bad_duplicate_name(void **state)
{
    fixture *f = *state;
    assert_bad(f,
               "mappings = (\n"
               "  { name = \"r\"; idp = \"x\"; subject = \"s\"; scopes = [\"a\"]; },\n"
               "  { name = \"q\"; idp = \"x\"; subject = \"s\"; scopes = [\"a\"]; },\n"
               "  { name = \"r\"; idp = \"y\"; subject = \"s\"; scopes = [\"a\"]; }\n"
               ");\n",
               4, "mapping 'r' is named twice");
}

/* Every mistake is reported, not only the first. */
static void test_bad_all_reported(void **state)
{
    fixture *f = *state;
    assert_false(parse(f, "mappings = (\n"
                          "  { name = \"r\"; idp = \"x\"; subject = \"$\"; scopes = [\"a\"];\n"
                          "    when = ( { attribute = \"a\"; matches = \"(\"; } ); },\n"
                          "  { name = \"r\"; idp = \"x\"; subject = \"s\"; scopes = [\"a\"];\n"
                          "    colour = 1; }\n"
                          ");\n"));
    assert_diag_at(f, 2, "subject template");
    assert_diag_at(f, 3, "bad regex");
    assert_diag_at(f, 4, "named twice");
    assert_diag_at(f, 5, "unknown key 'colour'");
}

/* ---- applying: the issue's example ---- */

static void test_example_advisor(void **state)
{
    fixture *f = *state;
    f->rq.requested_scope = "gateway:invoke mcp:call";
    assert_int_equal(apply(f, "{\"role\": \"FinancialAdvisor\", \"employeeId\": \"e1234\","
                              " \"mail\": \"a@corp.example\"}"),
                     MANDATE_OK);
    assert_ptr_equal(f->res.rule, &f->m.rules[0]);
    assert_string_equal(f->res.subject, "advisor-e1234");
    assert_string_equal(f->res.tenant, "wealth");
    assert_string_equal(f->res.scope, "gateway:invoke mcp:call");
    assert_string_equal(f->res.audience, "https://mcp.example/market-calendar");
    assert_int_equal(f->res.lifetime, 900);
    assert_why(f, "rule advisors matched");
    assert_why(f, "subject advisor-e1234");
}

static void test_example_compliance(void **state)
{
    fixture *f = *state;
    assert_int_equal(apply(f, "{\"role\": \"ComplianceOfficer\", \"employeeId\": \"c77\"}"),
                     MANDATE_OK);
    assert_string_equal(f->res.rule->name, "compliance");
    assert_string_equal(f->res.subject, "compliance-c77");
    assert_string_equal(f->res.scope, "gateway:invoke mcp:call");
    assert_string_equal(f->res.audience, "https://mcp.example/compliance-archive");
    assert_int_equal(f->res.lifetime, 600);
    /* the advisors' audience is not theirs */
    f->rq.requested_audience = "https://mcp.example/market-calendar";
    expect_denied(f, "{\"role\": \"ComplianceOfficer\", \"employeeId\": \"c77\"}",
                  "rule compliance matched: audience https://mcp.example/market-calendar is "
                  "not allowed");
}

static void test_example_no_match(void **state)
{
    fixture *f = *state;
    assert_int_equal(apply(f, "{\"role\": \"Receptionist\", \"employeeId\": \"r1\"}"),
                     MANDATE_DENIED);
    assert_null(f->res.rule);
    assert_null(f->res.subject);
    assert_null(f->res.scope);
    assert_why(f, "no rule matched (2 rules for idp backend-corp-saml): "
                  "advisors: attribute role is not FinancialAdvisor; "
                  "compliance: attribute role is not ComplianceOfficer");
    /* an advisor without employeeId */
    expect_denied(f, "{\"role\": \"FinancialAdvisor\"}",
                  "advisors: attribute employeeId is missing");
    /* no attributes at all */
    expect_denied(f, NULL, "advisors: attribute role is missing");
}

/* ---- conditions ---- */

static void test_multi_valued(void **state)
{
    fixture *f = *state;
    assert_int_equal(apply(f, "{\"role\": [\"Staff\", \"FinancialAdvisor\"],"
                              " \"employeeId\": [\"e9\", \"e10\"]}"),
                     MANDATE_OK);
    assert_string_equal(f->res.rule->name, "advisors");
    assert_string_equal(f->res.subject, "advisor-e9"); /* the first value */
    /* values that are not scalars are no values */
    expect_denied(f,
                  "{\"role\": [{\"x\": \"FinancialAdvisor\"}, null, [\"x\"]],"
                  " \"employeeId\": \"e9\"}",
                  "advisors: attribute role is missing");
    expect_denied(f, "{\"role\": [], \"employeeId\": \"e9\"}",
                  "advisors: attribute role is missing");
}

static const char nested_and_uri_names_rules[] =
    "mappings = (\n"
    "  { name = \"nested\"; idp = \"saml\";\n"
    "    when = ( { attribute = \"org.groups\"; equals = \"advisors\"; } );\n"
    "    subject = \"adv-${org.id}\"; scopes = [\"mcp:call\"]; },\n"
    "  { name = \"uri\"; idp = \"saml\";\n"
    "    when = ( { attribute = \"http://schemas.example/claims/role\";\n"
    "               equals = \"x\"; } );\n"
    "    subject = \"u-${http://schemas.example/claims/id}\";\n"
    "    scopes = [\"mcp:call\"]; }\n"
    ");\n";

static void test_nested_and_uri_names(void **state)
{
    fixture *f = *state;
    assert_int_equal(
        apply(f, "{\"org\": {\"groups\": [\"staff\", \"advisors\"], \"id\": \"o-1\"}}"),
        MANDATE_OK);
    assert_string_equal(f->res.rule->name, "nested");
    assert_string_equal(f->res.subject, "adv-o-1");
    /* a name with dots is first looked up whole */
    assert_int_equal(apply(f, "{\"http://schemas.example/claims/role\": \"x\","
                              " \"http://schemas.example/claims/id\": \"77\"}"),
                     MANDATE_OK);
    assert_string_equal(f->res.rule->name, "uri");
    assert_string_equal(f->res.subject, "u-77");
    /* the walk stops at something that is not an object */
    expect_denied(f, "{\"org\": \"advisors\"}", "nested: attribute org.groups is missing");
}

static const char one_of_present_matches_rules[] =
    "mappings = (\n"
    "  { name = \"one\"; idp = \"saml\";\n"
    "    when = ( { attribute = \"dept\"; one_of = [\"wm\", \"pb\"]; } );\n"
    "    subject = \"one-${id}\"; scopes = [\"mcp:call\"]; },\n"
    "  { name = \"pat\"; idp = \"saml\";\n"
    "    when = ( { attribute = \"title\"; matches = \"adv.*\"; } );\n"
    "    subject = \"pat-${id}\"; scopes = [\"mcp:call\"]; },\n"
    "  { name = \"pres\"; idp = \"saml\";\n"
    "    when = ( { attribute = \"badge\"; present = true; } );\n"
    "    subject = \"pres-${id}\"; scopes = [\"mcp:call\"]; }\n"
    ");\n";

static void test_one_of_present_matches(void **state)
{
    fixture *f = *state;
    expect_subject(f, "{\"dept\": \"pb\", \"id\": \"1\"}", "one-1");
    expect_subject(f, "{\"dept\": [\"hr\", \"wm\"], \"id\": \"1\"}", "one-1");
    expect_subject(f, "{\"title\": \"advisor\", \"id\": \"2\"}", "pat-2");
    /* anchored: the whole value must match */
    expect_denied(f, "{\"title\": \"xadvisor\", \"id\": \"2\"}",
                  "pat: attribute title does not match adv.*");
    assert_why(f, "one: attribute dept is missing");
    assert_why(f, "pres: attribute badge is missing");
    expect_subject(f, "{\"title\": [\"xadvisor\", \"adv\"], \"id\": \"2\"}", "pat-2");
    /* present: any non-empty value, of any scalar type */
    expect_subject(f, "{\"badge\": false, \"id\": \"3\"}", "pres-3");
    expect_subject(f, "{\"badge\": \"\", \"id\": \"3\"}", NULL);
    expect_subject(f, "{\"badge\": null, \"id\": \"3\"}", NULL);
    expect_denied(f, "{\"dept\": \"hr\", \"id\": \"3\"}",
                  "one: attribute dept is none of wm pb");
}

static const char scalar_values_rules[] =
    "mappings = (\n"
    "  { name = \"n\"; idp = \"saml\";\n"
    "    when = ( { attribute = \"level\"; one_of = [\"3\", \"4\"]; },\n"
    "             { attribute = \"active\"; equals = \"true\"; } );\n"
    "    subject = \"emp-${id}\"; scopes = [\"mcp:call\"]; }\n"
    ");\n";

/* Numbers and booleans compare as text; integers have no decimals. */
static void test_scalar_values(void **state)
{
    fixture *f = *state;
    expect_subject(f, "{\"level\": 3, \"active\": true, \"id\": 1234}", "emp-1234");
    expect_subject(f, "{\"level\": 4.0, \"active\": true, \"id\": 12.0}", "emp-12");
    expect_subject(f, "{\"level\": 3.5, \"active\": true, \"id\": 1}", NULL);
    expect_subject(f, "{\"level\": 3, \"active\": \"yes\", \"id\": 1}", NULL);
    /* a negative integer keeps its sign */
    expect_subject(f, "{\"level\": 3, \"active\": true, \"id\": -7}", "emp--7");
}

/* ---- the subject ---- */

static void test_subject_injection(void **state)
{
    fixture *f = *state;
    char *long_id = calloc(1, 200);
    memset(long_id, 'a', 199);
    char *long_attrs =
        mandate_xasprintf("{\"role\": \"FinancialAdvisor\", \"employeeId\": \"%s\"}", long_id);
    static const char *const bad[] = {
        "{\"role\": \"FinancialAdvisor\", \"employeeId\": \"../x\"}",
        "{\"role\": \"FinancialAdvisor\", \"employeeId\": \"a b\"}",
        "{\"role\": \"FinancialAdvisor\", \"employeeId\": \"a\\nb\"}",
        "{\"role\": \"FinancialAdvisor\", \"employeeId\": \"a@corp\"}",
        "{\"role\": \"FinancialAdvisor\", \"employeeId\": \"x${employeeId}\"}",
        "{\"role\": \"FinancialAdvisor\", \"employeeId\": \"\\u00e9\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(apply(f, bad[i]), MANDATE_DENIED);
        assert_ptr_equal(f->res.rule, &f->m.rules[0]);
        assert_null(f->res.scope);
        assert_why(f, "rule advisors matched: attribute employeeId is not fit for a subject");
    }
    /* the value in why is printable and bounded */
    expect_denied(f, "{\"role\": \"FinancialAdvisor\", \"employeeId\": \"a\\nb\"}", "'a?b'");
    expect_denied(f, long_attrs, "not fit for a subject");
    assert_true(strlen(f->res.why) < 300);
    /* empty: no value, so present fails and no rule matches */
    expect_denied(f, "{\"role\": \"FinancialAdvisor\", \"employeeId\": \"\"}",
                  "no rule matched");
    /* a NUL inside a value: the attributes are refused as a whole */
    assert_int_equal(
        apply(f, "{\"role\": \"FinancialAdvisor\", \"employeeId\": \"ok\\u0000/../x\"}"),
        MANDATE_INVALID);
    assert_null(f->res.subject);
    /* the whole subject is bounded too: "advisor-" + 120 is 128, the most */
    long_id[120] = '\0';
    free(long_attrs);
    long_attrs =
        mandate_xasprintf("{\"role\": \"FinancialAdvisor\", \"employeeId\": \"%s\"}", long_id);
    assert_int_equal(apply(f, long_attrs), MANDATE_OK);
    assert_int_equal(strlen(f->res.subject), 128);
    long_id[120] = 'a';
    long_id[121] = '\0';
    free(long_attrs);
    long_attrs =
        mandate_xasprintf("{\"role\": \"FinancialAdvisor\", \"employeeId\": \"%s\"}", long_id);
    expect_denied(f, long_attrs, "is not valid");
    free(long_attrs);
    free(long_id);

    /* a template without conditions on its attribute */
    assert_true(parse(f, "mappings = ( { name = \"r\"; idp = \"saml\"; subject = \"${uid}\";"
                         " scopes = [\"mcp:call\"]; } );\n"));
    expect_denied(f, "{}", "rule r matched: attribute uid for the subject is missing");
    expect_denied(f, "{\"uid\": \"..\"}", "is not valid");
    expect_subject(f, "{\"uid\": \"jdoe\"}", "jdoe");
    assert_string_equal(f->res.tenant, "default");
}

/* ---- scopes, audience, lifetime ---- */

static const char scope_intersection_rules[] =
    "mappings = ( { name = \"r\"; idp = \"saml\"; subject = \"s\";\n"
    "  scopes = [\"gateway:invoke\", \"mcp:call\", \"mcp:admin\"]; } );\n";

static void test_scope_intersection(void **state)
{
    fixture *f = *state;
    f->rq.client_scopes = "mcp:call gateway:invoke audit:read";
    /* nothing asked: the rule's ∩ the client's, in the rule's order */
    expect_granted(f, NULL, "gateway:invoke mcp:call", 3600);
    expect_granted(f, "  ", "gateway:invoke mcp:call", 3600);
    /* asked ∩ rule ∩ client, in the order asked, once each */
    expect_granted(f, "mcp:call  audit:read mcp:admin mcp:call gateway:invoke",
                   "mcp:call gateway:invoke", 3600);
    /* nothing left */
    f->rq.requested_scope = "mcp:admin";
    assert_int_equal(apply(f, "{}"), MANDATE_DENIED);
    assert_ptr_equal(f->res.rule, &f->m.rules[0]);
    assert_why(f, "rule r matched: no scope left: asked mcp:admin, rule allows gateway:invoke "
                  "mcp:call mcp:admin, client allows mcp:call gateway:invoke audit:read");
    f->rq.requested_scope = "audit:read";
    expect_denied(f, "{}", "no scope left");
    f->rq.requested_scope = NULL;
    f->rq.client_scopes = NULL;
    expect_denied(f, "{}",
                  "no scope left: asked (any), rule allows gateway:invoke mcp:call mcp:admin, "
                  "client allows (none)");
    /* a prefix is not a scope */
    f->rq.client_scopes = "mcp:call";
    f->rq.requested_scope = "mcp:cal mcp";
    assert_int_equal(apply(f, "{}"), MANDATE_DENIED);
}

static const char audience_rules[] =
    "mappings = (\n"
    "  { name = \"two\"; idp = \"saml\"; subject = \"s\";\n"
    "    scopes = [\"mcp:call\"];\n"
    "    audience = [\"https://a.example/\", \"https://b.example/\"]; },\n"
    "  { name = \"any\"; idp = \"other\"; subject = \"s\";\n"
    "    scopes = [\"mcp:call\"]; }\n"
    ");\n";

static void test_audience(void **state)
{
    fixture *f = *state;
    expect_audience(f, NULL, "https://a.example/ https://b.example/");
    expect_audience(f, "https://b.example/", "https://b.example/");
    expect_audience(f, "https://b.example/ https://a.example/ https://b.example/",
                    "https://b.example/ https://a.example/");
    f->rq.requested_audience = "https://b.example/ https://c.example/";
    expect_denied(f, "{}",
                  "rule two matched: audience https://c.example/ is not allowed (rule allows "
                  "https://a.example/ https://b.example/)");
    f->rq.requested_audience = "https://a.example";
    assert_int_equal(apply(f, "{}"), MANDATE_DENIED);
    /* a rule without audiences: none, or what was asked (if a URI) */
    f->rq.idp = "other";
    f->rq.idp_plugin = "oidc";
    expect_audience(f, NULL, NULL);
    expect_audience(f, "https://c.example/", "https://c.example/");
    f->rq.requested_audience = "c.example";
    expect_denied(f, "{}", "audience c.example is not an absolute URI");
}

static const char lifetime_rules[] =
    "mappings = (\n"
    "  { name = \"long\"; idp = \"a\"; subject = \"s\"; scopes = [\"x\", \"t\"];\n"
    "    max_lifetime = 7200; sensitive_scopes = [\"t\"];\n"
    "    sensitive_lifetime = 300; },\n"
    "  { name = \"dflt\"; idp = \"b\"; subject = \"s\"; scopes = [\"x\", \"t\"];\n"
    "    sensitive_scopes = [\"t\"]; sensitive_lifetime = 9000; }\n"
    ");\n";

static void test_lifetime(void **state)
{
    fixture *f = *state;
    f->rq.client_scopes = "x t";
    f->rq.idp = "a";
    expect_granted(f, "x", "x", 7200);
    expect_granted(f, "x t", "x t", 300);
    assert_why(f, "lifetime 300 s");
    f->rq.idp = "b";
    expect_granted(f, "x", "x", 3600);
    expect_granted(f, NULL, "x t", 3600); /* the min, never longer */
}

static const char sensitive_scopes_rules[] =
    "mappings = ( { name = \"traders\"; idp = \"saml\"; subject = \"s\";\n"
    "  scopes = [\"mcp:call\", \"trade:execute\", \"trade:cancel\"];\n"
    "  max_lifetime = 900;\n"
    "  sensitive_scopes = [\"trade:execute\", \"trade:cancel\"];\n"
    "  sensitive_lifetime = 120; sensitive_max_authn_age = 600; } );\n";

static void test_sensitive_scopes(void **state)
{
    fixture *f = *state;
    f->rq.client_scopes = "mcp:call trade:execute trade:cancel";
    const char *trade = "mcp:call trade:execute";
    /* fresh */
    f->identity.authn_instant = NOW - 600;
    expect_granted(f, trade, trade, 120);
    /* a little in the future (clock skew) counts as fresh */
    f->identity.authn_instant = NOW + 5;
    expect_granted(f, trade, trade, 120);
    /* too old: the sensitive scope is dropped, the rest granted, and said */
    f->identity.authn_instant = NOW - 700;
    expect_granted(f, trade, "mcp:call", 900);
    assert_why(f, "sensitive scope trade:execute dropped: authentication too old "
                  "(700 s > 600 s)");
    /* too old and nothing else asked: refused */
    f->rq.requested_scope = "trade:execute trade:cancel";
    assert_int_equal(apply(f, "{}"), MANDATE_DENIED);
    assert_null(f->res.scope);
    assert_why(f, "rule traders matched: authentication too old for sensitive scope "
                  "trade:execute trade:cancel (700 s > 600 s)");
    /* unknown authentication time: as too old */
    f->identity.authn_instant = 0;
    expect_denied(f, "{}", "authentication time unknown (max 600 s)");
    expect_granted(f, NULL, "mcp:call", 900);
    assert_why(f, "sensitive scope trade:execute trade:cancel dropped");

    /* without sensitive_max_authn_age only the lifetime changes */
    assert_true(parse(f, "mappings = ( { name = \"t\"; idp = \"saml\"; subject = \"s\";\n"
                         "  scopes = [\"mcp:call\", \"trade:execute\"];\n"
                         "  sensitive_scopes = [\"trade:execute\"];\n"
                         "  sensitive_lifetime = 120; } );\n"));
    f->identity.authn_instant = 0;
    expect_granted(f, NULL, "mcp:call trade:execute", 120);
}

/* ---- which rule ---- */

static const char first_match_and_idp_rules[] =
    "mappings = (\n"
    "  { name = \"okta\"; idp = \"backend-okta\"; subject = \"okta-${id}\";\n"
    "    scopes = [\"mcp:call\"]; },\n"
    "  { name = \"specific\"; idp = \"backend-corp-saml\";\n"
    "    when = ( { attribute = \"role\"; equals = \"Lead\"; } );\n"
    "    subject = \"lead-${id}\"; scopes = [\"mcp:call\"]; },\n"
    "  { name = \"by-plugin\"; idp = \"saml\"; subject = \"saml-${id}\";\n"
    "    scopes = [\"mcp:call\"]; },\n"
    "  { name = \"never\"; idp = \"backend-corp-saml\"; subject = \"n\";\n"
    "    scopes = [\"mcp:call\"]; }\n"
    ");\n";

static void test_first_match_and_idp(void **state)
{
    fixture *f = *state;
    assert_int_equal(apply(f, "{\"role\": \"Lead\", \"id\": \"1\"}"), MANDATE_OK);
    assert_string_equal(f->res.rule->name, "specific");
    assert_string_equal(f->res.subject, "lead-1");
    /* by plugin name, before a later rule naming the instance */
    assert_int_equal(apply(f, "{\"role\": \"Staff\", \"id\": \"1\"}"), MANDATE_OK);
    assert_string_equal(f->res.rule->name, "by-plugin");
    assert_string_equal(f->res.subject, "saml-1");
    /* by instance name */
    f->rq.idp = "backend-okta";
    f->rq.idp_plugin = "oidc";
    assert_int_equal(apply(f, "{\"role\": \"Lead\", \"id\": \"1\"}"), MANDATE_OK);
    assert_string_equal(f->res.rule->name, "okta");
    /* another IdP has no rule */
    f->rq.idp = "backend-other";
    expect_denied(f, "{\"id\": \"1\"}", "no rule matched (0 rules for idp backend-other)");
    /* no plugin name given: only the instance name counts */
    f->rq.idp = "backend-corp-saml";
    f->rq.idp_plugin = NULL;
    assert_int_equal(apply(f, "{\"id\": \"1\"}"), MANDATE_OK);
    assert_string_equal(f->res.rule->name, "never");
}

/* The no-match explanation stays bounded with many rules. */
static void test_why_bounded(void **state)
{
    fixture *f = *state;
    char *text = mandate_xasprintf("mappings = (\n");
    for (int i = 0; i < 60; i++) {
        char *next = mandate_xasprintf(
            "%s  { name = \"rule-%02d\"; idp = \"saml\"; subject = \"s\"; scopes = [\"a\"];\n"
            "    when = ( { attribute = \"role\"; equals = \"Role-%02d-with-a-long-name\"; } "
            "); "
            "}%s\n",
            text, i, i, i < 59 ? "," : "");
        free(text);
        text = next;
    }
    char *full = mandate_xasprintf("%s);\n", text);
    free(text);
    assert_true(parse(f, full));
    free(full);
    assert_int_equal(f->m.count, 60);
    expect_denied(f, "{\"role\": \"x\"}",
                  "no rule matched (60 rules for idp backend-corp-saml): rule-00: attribute "
                  "role is not Role-00-with-a-long-name");
    assert_why(f, "...");
    assert_true(strlen(f->res.why) < 900);
}

static void test_bad_arguments(void **state)
{
    fixture *f = *state;
    assert_int_equal(apply(f, "[1, 2]"), MANDATE_INVALID);
    assert_why(f, "not a JSON object");
    assert_int_equal(apply(f, "{\"role\": "), MANDATE_INVALID);
    assert_int_equal(apply(f, "{\"role\": \"a\", \"role\": \"b\"}"), MANDATE_INVALID);
    f->rq.identity = NULL;
    assert_int_equal(apply(f, "{}"), MANDATE_INVALID);
    f->rq.identity = &f->identity;
    f->rq.idp = NULL;
    assert_int_equal(apply(f, "{}"), MANDATE_INVALID);
    f->rq.idp = "saml";
    assert_int_equal(mandate_mapping_apply(NULL, &f->rq, f->pool, &f->res), MANDATE_INVALID);
    assert_int_equal(mandate_mapping_apply(&f->m, &f->rq, f->pool, NULL), MANDATE_INVALID);
}

int main(void)
{
    /* a test that runs with these mappings */
#define RULES(name, rules)                                                                     \
    cmocka_unit_test_prestate_setup_teardown(name, setup, teardown, (void *)(rules))
    const struct CMUnitTest tests[] = {
        RULES(test_example_parses, example),
        TEST_FX(test_example_in_config_load),
        TEST_FX(test_shipped_example),
        RULES(test_no_mappings, no_mappings_rules),
        RULES(test_defaults_and_every_op, defaults_and_every_op_rules),
        TEST_FX(test_bad_unknown_key),
        TEST_FX(test_bad_condition_ops),
        TEST_FX(test_bad_regex),
        TEST_FX(test_bad_missing_keys),
        TEST_FX(test_bad_template),
        TEST_FX(test_bad_values),
        TEST_FX(test_bad_duplicate_name),
        TEST_FX(test_bad_all_reported),
        RULES(test_example_advisor, example),
        RULES(test_example_compliance, example),
        RULES(test_example_no_match, example),
        RULES(test_multi_valued, example),
        RULES(test_nested_and_uri_names, nested_and_uri_names_rules),
        RULES(test_one_of_present_matches, one_of_present_matches_rules),
        RULES(test_scalar_values, scalar_values_rules),
        RULES(test_subject_injection, example),
        RULES(test_scope_intersection, scope_intersection_rules),
        RULES(test_audience, audience_rules),
        RULES(test_lifetime, lifetime_rules),
        RULES(test_sensitive_scopes, sensitive_scopes_rules),
        RULES(test_first_match_and_idp, first_match_and_idp_rules),
        TEST_FX(test_why_bounded),
        RULES(test_bad_arguments, example),
    };
#undef RULES
    return cmocka_run_group_tests(tests, NULL, NULL);
}
