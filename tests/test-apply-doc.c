/* core/apply-doc.c: mandatectl apply's document (each field's checks, with
 * the place named), the libconfig form, and the plan (create, update with
 * its fields, disable only with prune and never a registered client, the
 * changes that cannot be made, targets added, edited and removed). */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "apply-doc-private.h"
#include "test-helpers.h"

typedef struct fixture {
    mandate_pool *pool;
    mandate_diag diag;
    mandate_apply_doc doc;
    mandate_apply_plan plan;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    f->pool = mandate_pool_new();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    free(f->plan.changes);
    mandate_diag_free(&f->diag);
    mandate_pool_free(&f->pool);
    free(f);
    return 0;
}

static bool read_text(fixture *f, const char *text)
{
    json_error_t jerr;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    assert_non_null(root);
    mandate_diag_free(&f->diag);
    bool ok = mandate_apply_doc_read(f->pool, root, &f->doc, &f->diag);
    json_decref(root);
    return ok;
}

/* Whether one line of the diagnostics holds text. */
static bool said(const fixture *f, const char *text)
{
    for (size_t i = 0; i < f->diag.count; i++)
        if (strstr(f->diag.lines[i], text) != NULL)
            return true;
    return false;
}

static void refused(fixture *f, const char *text, const char *expected)
{
    assert_false(read_text(f, text));
    if (!said(f, expected)) {
        for (size_t i = 0; i < f->diag.count; i++)
            print_message("diag: %s\n", f->diag.lines[i]);
        fail_msg("'%s' not said for %s", expected, text);
    }
}

static void test_reads_a_document(void **state)
{
    fixture *f = *state;
    assert_true(read_text(f, "{\"clients\": [{\"id\": \"mp\", \"name\": \"MarketPulse\","
                             " \"scopes\": [\"a\", \"b\"], \"default_scopes\": \"a\","
                             " \"audiences\": [\"https://x.example\"], \"ttl\": 600,"
                             " \"rate_limit\": 2.5, \"rate_burst\": 5, \"introspect\": true,"
                             " \"disabled\": false, \"secret_file\": \"s/mp\"}],"
                             " \"targets\": [{\"name\": \"t\", \"paths\": [\"/mcp\", \"/x/\"],"
                             " \"audience\": \"https://x.example\"}]}"));
    assert_int_equal(f->doc.client_count, 1);
    const mandate_apply_client *c = &f->doc.clients[0];
    assert_string_equal(c->id, "mp");
    assert_string_equal(c->scopes, "a b");
    assert_string_equal(c->default_scopes, "a");
    assert_int_equal(c->ttl, 600);
    assert_true(c->rate_limit == 2.5);
    assert_true(c->introspect);
    assert_string_equal(mandate_apply_client_auth(c), "client_secret");
    assert_true(f->doc.has_targets);
    assert_string_equal(f->doc.targets[0].paths, "/mcp /x/");
    assert_true(read_text(f, "{\"clients\": []}"));
    assert_false(f->doc.has_targets);
}

static void test_refuses_with_the_place(void **state)
{
    fixture *f = *state;
    refused(f, "[]", "the document must be an object");
    refused(f, "{\"clinets\": []}", "clinets: unknown key at the top");
    refused(f, "{\"clients\": {}}", "clients: must be a list of objects");
    refused(f, "{\"clients\": [3]}", "clients[0]: must be an object");
    refused(f, "{\"clients\": [{\"id\": \"x\", \"scope\": \"a\"}]}",
            "clients[0]: unknown key 'scope' (known: id, name, tenant");
    refused(f, "{\"clients\": [{\"name\": \"x\"}]}", "clients[0]: 'id' is missing");
    refused(f, "{\"clients\": [{\"id\": \"a b\"}]}", "clients[0].id: 'a b' must be");
    refused(f, "{\"clients\": [{\"id\": \"x\", \"ttl\": -1}]}",
            "clients[0].ttl: must be a whole number from 0 to 31536000");
    refused(f, "{\"clients\": [{\"id\": \"x\", \"ttl\": 1.5}]}", "clients[0].ttl: must be");
    refused(f, "{\"clients\": [{\"id\": \"x\", \"rate_limit\": 2000000}]}",
            "clients[0].rate_limit: must be a number from 0 to 1000000");
    refused(f, "{\"clients\": [{\"id\": \"x\", \"introspect\": \"yes\"}]}",
            "clients[0].introspect: must be true or false");
    refused(f, "{\"clients\": [{\"id\": \"x\", \"name\": 3}]}",
            "clients[0].name: must be a string or null");
    refused(f, "{\"clients\": [{\"id\": \"x\", \"name\": \"a\\u0001\"}]}",
            "clients[0].name: holds a control character");
    refused(f, "{\"clients\": [{\"id\": \"x\", \"scopes\": [\"a\", 3]}]}",
            "clients[0].scopes[1]: must be a string");
    refused(f, "{\"clients\": [{\"id\": \"x\", \"scopes\": [\"a b\"]}]}",
            "clients[0].scopes[0]: 'a b' holds a space");
    refused(f, "{\"clients\": [{\"id\": \"x\", \"audiences\": \"nota-uri\"}]}",
            "clients[0].audiences: 'nota-uri' is not an absolute URI");
    refused(f, "{\"clients\": [{\"id\": \"x\", \"scopes\": \"a\", \"default_scopes\": \"b\"}]}",
            "clients[0].default_scopes: 'b' is not among its scopes");
    refused(f, "{\"clients\": [{\"id\": \"x\"}, {\"id\": \"x\"}]}",
            "clients[1].id: 'x' is clients[0] again");
    refused(f, "{\"clients\": [{\"id\": \"x\", \"auth\": \"private_key_jwt\"}]}",
            "needs 'public_key_file'");
    refused(f, "{\"clients\": [{\"id\": \"x\", \"auth\": \"none\"}]}",
            "a public client (auth none) needs 'redirect_uris'");
    refused(f, "{\"clients\": [{\"id\": \"x\", \"auth\": \"none\", \"secret_file\": \"s\","
               " \"redirect_uris\": [\"https://a.example/cb\"]}]}",
            "clients[0].secret_file: a client with auth none has no secret");
    refused(f, "{\"targets\": [{\"name\": \"t\", \"paths\": [\"mcp\"], \"audience\": \"a:b\"}]}",
            "targets[0].paths[0]: 'mcp' is not a path beginning with '/'");
    refused(f, "{\"targets\": [{\"name\": \"t\", \"paths\": [\"/m\"]}]}",
            "targets[0]: 'audience' is missing");
    refused(f, "{\"targets\": [{\"name\": \"t\", \"paths\": \"/m\", \"audience\": \"a:b\"},"
               " {\"name\": \"t\", \"paths\": \"/n\", \"audience\": \"a:b\"}]}",
            "targets[1].name: 't' is targets[0] again");
}

static void test_bounds(void **state)
{
    fixture *f = *state;
    /* a list one word too long */
    char *text = malloc(16 * 1024);
    strcpy(text, "{\"clients\": [{\"id\": \"x\", \"scopes\": \"");
    for (int i = 0; i <= MANDATE_APPLY_MAX_LIST; i++)
        strcat(text, "s ");
    strcat(text, "\"}]}");
    refused(f, text, "clients[0].scopes: more than 256 entries");
    free(text);
    /* every error is said, up to a bound */
    json_t *clients = json_array();
    for (int i = 0; i < 200; i++)
        json_array_append_new(clients, json_pack("{s:s}", "bad", "x"));
    json_t *root = json_pack("{s:o}", "clients", clients);
    mandate_diag_free(&f->diag);
    assert_false(mandate_apply_doc_read(f->pool, root, &f->doc, &f->diag));
    json_decref(root);
    assert_int_equal(f->diag.count, MANDATE_APPLY_MAX_ERRORS + 1);
    assert_true(said(f, "more errors not shown"));
}

static void test_libconfig_form(void **state)
{
    fixture *f = *state;
    config_t cfg;
    config_init(&cfg);
    assert_int_equal(config_read_string(&cfg, "clients = ( { id = \"lc\"; ttl = 60; "
                                              "scopes = [\"a\", \"b\"]; introspect = true; "
                                              "rate_limit = 1.5; } );"),
                     CONFIG_TRUE);
    json_t *root = mandate_apply_json_from_setting(config_root_setting(&cfg), 0);
    config_destroy(&cfg);
    assert_non_null(root);
    assert_true(mandate_apply_doc_read(f->pool, root, &f->doc, &f->diag));
    json_decref(root);
    assert_string_equal(f->doc.clients[0].id, "lc");
    assert_int_equal(f->doc.clients[0].ttl, 60);
    assert_string_equal(f->doc.clients[0].scopes, "a b");
    assert_true(f->doc.clients[0].introspect);
}

static const mandate_apply_change *change_of(const fixture *f, const char *name, bool target)
{
    for (size_t i = 0; i < f->plan.count; i++)
        if (strcmp(f->plan.changes[i].name, name) == 0 && f->plan.changes[i].is_target == target)
            return &f->plan.changes[i];
    return NULL;
}

static bool plan(fixture *f, const mandate_apply_client *have, size_t n,
                 const mandate_apply_target *targets, size_t tn, bool prune)
{
    free(f->plan.changes);
    mandate_diag_free(&f->diag);
    return mandate_apply_plan_make(f->pool, &f->doc, have, n, targets, tn, prune, &f->plan,
                                   &f->diag);
}

static void test_plan(void **state)
{
    fixture *f = *state;
    assert_true(read_text(f, "{\"clients\": [{\"id\": \"new\"},"
                             " {\"id\": \"same\", \"scopes\": \"b a\"},"
                             " {\"id\": \"edited\", \"ttl\": 900, \"scopes\": \"a c\"}],"
                             " \"targets\": [{\"name\": \"t1\", \"paths\": \"/a\","
                             " \"audience\": \"a:b\"}, {\"name\": \"t2\", \"paths\": \"/b\","
                             " \"audience\": \"a:b\"}]}"));
    mandate_apply_client have[] = {
        {.id = "same", .scopes = "a b", .auth = "client_secret", .backend = "local"},
        {.id = "edited", .scopes = "a b", .ttl = 600, .auth = "client_secret"},
        {.id = "gone", .auth = "client_secret"},
        {.id = "gone-disabled", .auth = "client_secret", .disabled = true},
        {.id = "self-registered", .auth = "none", .registered = true},
    };
    mandate_apply_target have_targets[] = {
        {.name = "t1", .paths = "/a", .audience = "a:b"},
        {.name = "t2", .paths = "/old", .audience = "a:b"},
        {.name = "t3", .paths = "/c", .audience = "a:b"},
    };
    assert_true(plan(f, have, 5, have_targets, 3, false));
    const mandate_apply_change *c = change_of(f, "new", false);
    assert_non_null(c);
    assert_int_equal(c->op, MANDATE_APPLY_CREATE);
    assert_null(change_of(f, "same", false)); /* the order of words aside */
    c = change_of(f, "edited", false);
    assert_non_null(c);
    assert_int_equal(c->op, MANDATE_APPLY_UPDATE);
    assert_int_equal(c->field_count, 2);
    assert_string_equal(c->fields[0], "scopes: [a b] -> [a c]");
    assert_string_equal(c->fields[1], "ttl: 600 -> 900");
    assert_null(change_of(f, "gone", false));
    assert_int_equal(f->plan.left_alone, 2);
    assert_null(change_of(f, "t1", true));
    assert_int_equal(change_of(f, "t2", true)->op, MANDATE_APPLY_UPDATE);
    assert_string_equal(change_of(f, "t2", true)->fields[0], "paths: [/old] -> [/b]");
    assert_int_equal(change_of(f, "t3", true)->op, MANDATE_APPLY_REMOVE);
    assert_int_equal(f->plan.creates, 1);
    assert_int_equal(f->plan.updates, 2);
    assert_int_equal(f->plan.removals, 1);
    /* with prune: the one left out is disabled, not the registered one */
    assert_true(plan(f, have, 5, have_targets, 3, true));
    assert_int_equal(change_of(f, "gone", false)->op, MANDATE_APPLY_DISABLE);
    assert_null(change_of(f, "gone-disabled", false));
    assert_null(change_of(f, "self-registered", false));
    assert_int_equal(f->plan.left_alone, 1);
    /* a document without targets leaves them */
    assert_true(read_text(f, "{\"clients\": []}"));
    assert_true(plan(f, NULL, 0, have_targets, 3, false));
    assert_int_equal(f->plan.count, 0);
}

static void test_plan_refuses_what_cannot_change(void **state)
{
    fixture *f = *state;
    mandate_apply_client have[] = {{.id = "x", .auth = "private_key_jwt", .backend = "local"}};
    assert_true(read_text(f, "{\"clients\": [{\"id\": \"x\"}]}"));
    assert_false(plan(f, have, 1, NULL, 0, false));
    assert_true(said(f, "clients[0] (x).auth: the client authenticates with private_key_jwt, "
                        "not client_secret"));
    have[0].auth = "client_secret";
    assert_true(read_text(f, "{\"clients\": [{\"id\": \"x\", \"backend\": \"sm\"}]}"));
    assert_false(plan(f, have, 1, NULL, 0, false));
    assert_true(said(f, "credential is with backend 'local', not 'sm'"));
    /* no backend named: kept, no change */
    assert_true(read_text(f, "{\"clients\": [{\"id\": \"x\"}]}"));
    assert_true(plan(f, have, 1, NULL, 0, false));
    assert_int_equal(f->plan.count, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST_FX(test_reads_a_document),
        TEST_FX(test_refuses_with_the_place),
        TEST_FX(test_bounds),
        TEST_FX(test_libconfig_form),
        TEST_FX(test_plan),
        TEST_FX(test_plan_refuses_what_cannot_change),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
