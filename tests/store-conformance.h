/* The store ABI conformance suite: the same tests for every store plugin
 * (sqlite, pgsql), each linked in directly and driven through its descriptor
 * with the fake host. A runner describes how to make a fresh, empty store
 * for each test and how to reach it with SQL of its own, then runs the
 * group; it may add a group of tests of its own, using the fixtures below. */
#ifndef MANDATE_TESTS_STORE_CONFORMANCE_H
#define MANDATE_TESTS_STORE_CONFORMANCE_H

#include <stdint.h>

#include <mandate/store.h>

typedef struct store_target {
    const mandate_plugin *plugin;
    /* A fresh, empty store (a new file, a new database); fails the test when
     * it cannot. */
    void *(*create)(void);
    /* Sets the conf keys that point inst at store; the conf defaults are
     * already in inst (fake_conf_defaults). */
    void (*configure)(void *store, void *inst);
    /* Removes the store once no instance uses it any more. */
    void (*remove)(void *store);
    /* SQL on the store through a connection of the test's own: a statement,
     * and a query for one integer (first column of the first row). Both fail
     * the test on an error. */
    void (*exec)(void *store, const char *sql);
    int64_t (*query_int)(void *store, const char *sql);
} store_target;

/* A test's state: a fresh store and one instance on it. */
struct store_fx {
    void *store;
    void *inst;
    mandate_pool *pool;
    mandate_error err;
};

/* The target the fixtures and helpers below work with. */
void store_conformance_use(const store_target *target);
/* Runs the shared group against target; returns the number of failures. */
int store_conformance_run(const store_target *target);

/* Fixtures: a fresh store with an instance that is instantiated (open) or
 * instantiated and migrated (ready); teardown destroys both. */
int store_fx_setup_open(void **state);
int store_fx_setup_ready(void **state);
int store_fx_teardown(void **state);

/* An instance on store with its conf defaults and the target's keys, not
 * instantiated; instantiated (fails the test if it cannot be); destroyed and
 * freed (NULL is fine). */
void *store_inst_new(void *store);
void *store_inst_open(void *store);
void store_inst_free(void *inst);

/* Fails the test with err's message unless rc is MANDATE_OK. */
void store_expect_ok(mandate_rc rc, const mandate_error *err);

#endif
