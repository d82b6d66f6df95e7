/* Helpers shared by the unit tests of the core and of the plugins: temp
 * folders and files, and assertions more than one of them makes. */
#ifndef MANDATE_TEST_HELPERS_H
#define MANDATE_TEST_HELPERS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mandate/format.h>

#include "conf-private.h"

/* What a test's worker thread got wrong: how many times, and the last
 * reason (read once the thread is joined). */
typedef struct test_failures {
    int count;
    char last[MANDATE_ERROR_MAX];
} test_failures;
void test_failures_note(test_failures *failures, const char *why);

/* Mints grant with ops on inst and parses the token back into back_r, as
 * a thread of a format's concurrency test does: the token (malloc'ed), or
 * NULL with the failure noted in failures. */
char *test_mint_and_parse(const mandate_format_ops *ops, void *inst, mandate_pool *pool,
                          const mandate_grant *grant, mandate_grant *back_r,
                          test_failures *failures);

/* A fresh folder under $TMPDIR (or /tmp); free with test_rmdir_rf. */
char *test_mkdtemp(void);
void test_rmdir_rf(const char *dir);
/* Writes text to dir/name (creating sub-folders of name); returns the path. */
char *test_write_file(const char *dir, const char *name, const char *text);
bool test_contains(const char *haystack, const char *needle);
/* Some line of diag must start with "<file>:<line>: " and hold what: the
 * test fails otherwise, showing them all. */
void test_assert_diag_at(const mandate_diag *diag, const char *file, int line,
                         const char *what);

/* A mandate.conf in a fresh temp folder, for tests that read config text. */
typedef struct test_conf_file {
    char *dir;
    char *path; /* dir/mandate.conf */
    mandate_diag diag;
} test_conf_file;
void test_conf_file_init(test_conf_file *c);
/* Writes text as the mandate.conf and empties diag; returns the path. */
const char *test_conf_file_write(test_conf_file *c, const char *text);
/* Writes text and reads it with libconfig into cfg (which the caller
 * destroys either way); false with diag set when it does not parse. */
bool test_conf_file_read(test_conf_file *c, const char *text, config_t *cfg);
/* Removes the folder and frees c's members. */
void test_conf_file_clear(test_conf_file *c);

/* Both NULL, or the same string. */
void test_assert_str_or_null(const char *want, const char *got);
/* Every member of the two grants the same (strings by test_assert_str_or_null;
 * issuer, subject, client_id and jti never NULL). */
void test_assert_grants_equal(const mandate_grant *want, const mandate_grant *got);

/* A cmocka test run with its file's fixture, the functions named setup and
 * teardown there. */
#define TEST_FX(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
/* The same for one case of a test function that runs over several: the
 * state setup is handed is case_ (a string literal), the name says it. */
#define TEST_FX_CASE(fn, case_) {#fn "(" case_ ")", fn, setup, teardown, (void *)(case_)}

/* How many elements a table of cases holds. */
#define TEST_COUNT(array) (sizeof(array) / sizeof((array)[0]))

/* Each test's state is a fresh pool of its own (cmocka setup and teardown). */
int test_pool_setup(void **state);
int test_pool_teardown(void **state);

/* One row of a table-driven test: a text to give the code under test, and
 * what its answer must be or hold. */
typedef struct test_text_case {
    const char *text;
    const char *want;
} test_text_case;
/* What the code under test says when it refuses text: a malloc'ed message,
 * or NULL when it accepted the text. */
typedef char *test_refuse_fn(void *ctx, const char *text);
/* Gives each case's text to refuse: the test fails, naming the text, unless
 * it was refused with a message that holds the case's want. */
void test_expect_refusals(const test_text_case *cases, size_t count, test_refuse_fn *refuse,
                          void *ctx);

/* Sets a plugin instance's keys from the key/value pairs of ap, up to a
 * NULL key, with set (fake_conf_set): the test fails, naming the pair, when
 * set refuses one. */
typedef int test_conf_setter(const mandate_plugin *plugin, void *inst, const char *key,
                             const char *value);
void test_conf_set_pairs(test_conf_setter *set, const mandate_plugin *plugin, void *inst,
                         va_list ap);

/* The grant the token tests mint: agent-7 by build-agent, one scope pair
 * and one audience, issued at now and good for 600 s. */
mandate_grant test_sample_grant(int64_t now);

/* plugin's descriptor begins as the loader checks it: the magic number,
 * this ABI's major version, kind and name. */
void test_assert_plugin_descriptor(const mandate_plugin *plugin, mandate_plugin_kind kind,
                                   const char *name);

/* data in base64url without padding; free() the result. */
char *test_b64url(const void *data, size_t len);

#endif
