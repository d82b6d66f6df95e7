/* Helpers shared by the unit tests of the core and of the plugins: temp
 * folders and files, and assertions more than one of them makes. */
#ifndef MANDATE_TEST_HELPERS_H
#define MANDATE_TEST_HELPERS_H

#include <stdbool.h>
#include <stddef.h>

#include <mandate/format.h>

#include "conf-private.h"

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

#endif
