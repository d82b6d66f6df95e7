/* A runtime for the core's unit tests: a temp folder with mandate.conf, a
 * key-encryption key, the instance files a test writes and a plugin folder
 * holding the built plugins and the test plugins (tests/plugins/), loaded
 * through the real loader. */
#ifndef MANDATE_TESTS_RUNTIME_FIXTURE_H
#define MANDATE_TESTS_RUNTIME_FIXTURE_H

#include <openssl/evp.h>

#include "conf-private.h"
#include "plugins-private.h"
#include "runtime-private.h"

typedef struct test_runtime {
    char *dir;  /* the temp folder */
    char *conf; /* its mandate.conf */
    mandate_diag diag;
    mandate_runtime *rt; /* NULL until started */
} test_runtime;

/* mandate.conf is plugin_dir, state_dir and then extra (libconfig text, may
 * be NULL): e.g. "server: { threads = 2; };". */
test_runtime *test_runtime_new(const char *extra);
/* mandate.d/<name>.conf */
void test_runtime_instance(test_runtime *t, const char *name, const char *text);
/* (Re)starts the runtime with the files as they are; the diag says why not. */
mandate_rc test_runtime_start(test_runtime *t, unsigned flags);
/* A runtime started on the sqlite store and the jwt format (migrated, keys
 * made), with extra as for test_runtime_new and instances (NULL, or name
 * and text pairs ended by NULL) beside them; fails the test when it does
 * not start. */
test_runtime *test_runtime_sqlite(const char *extra, const char *const *instances);
/* The instance of that name; fails the test when there is none. */
const mandate_instance *test_runtime_find(test_runtime *t, const char *name);
void test_runtime_free(test_runtime **t);

/* Failures injected into the plugin facade: a test program links with
 * -Wl,--wrap=mandate_<call> and defines the wrapper with
 * TEST_FACADE_WRAP(<call>, (params), (args)); the wrapper calls the real
 * one unless test_fail_next armed it (once). The params must name the
 * error record err. */
void test_fail_next(const char *call, mandate_rc rc);
/* Whether call fails now (disarming it), with err set. */
bool test_fails(const char *call, mandate_error *err);
#define TEST_FACADE_WRAP(name, params, args)                                                   \
    mandate_rc __real_mandate_##name params;                                                   \
    mandate_rc __wrap_mandate_##name params;                                                   \
    mandate_rc __wrap_mandate_##name params                                                    \
    {                                                                                          \
        if (test_fails(#name, err))                                                            \
            return err->rc;                                                                    \
        return __real_mandate_##name args;                                                     \
    }

/* The client client_id as t's store holds it, in pool; fails the test
 * when the store has none. */
mandate_client test_stored_client(test_runtime *t, mandate_pool *pool, const char *client_id);
/* c is a public client, as registration without credentials stores one:
 * enabled, with no backend, no secret and no key. */
void test_assert_public_client(const mandate_client *c);

/* A key's public part as PEM (malloc'd), for a private_key_jwt client. */
char *test_public_pem(EVP_PKEY *key);

#endif
