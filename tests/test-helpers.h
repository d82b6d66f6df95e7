/* Helpers shared by the core's unit tests: temp folders and files. */
#ifndef MANDATE_TEST_HELPERS_H
#define MANDATE_TEST_HELPERS_H

#include <stdbool.h>
#include <stddef.h>

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

#endif
