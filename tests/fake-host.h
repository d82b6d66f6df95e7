/* A fake mandate_host for plugin unit tests: the core's pool, a settable
 * clock, OpenSSL for random bytes and the keyed hash, a log that writes to
 * stderr and remembers its last line. Also fills a plugin instance from its
 * conf table, as the core would, for tests that load no config file. */
#ifndef MANDATE_TESTS_FAKE_HOST_H
#define MANDATE_TESTS_FAKE_HOST_H

#include <stddef.h>
#include <stdint.h>

#include <mandate/plugin.h>

/* One shared table (instance "test", no state_dir); tests may change its
 * fields. */
mandate_host *fake_host_get(void);
/* The same table with a log that says nothing and the clock at now (the
 * fuzz harnesses'). */
mandate_host *fake_host_quiet(int64_t now);

/* The last message logged through the fake host ("" before any). */
const char *fake_host_last_log(void);
void fake_host_clear_log(void);

/* The clock host->now() reads; until set, time(NULL). */
void fake_host_set_now(int64_t t);
void fake_host_unset_now(void);

/* replay_claim is an in-memory cache shared by all threads: namespace + id
 * until expires_at, read against the fake clock (an entry whose expires_at
 * <= now is gone); MANDATE_EXISTS for an entry still there. Empties it. */
void fake_host_replay_reset(void);

/* token_record_put and token_record_get are an in-memory store shared by all
 * threads, as the sqlite store behaves: put answers MANDATE_EXISTS for a hash
 * already there (expired or not: only a reset removes records), get answers
 * MANDATE_NOT_FOUND for an unknown hash or a record whose expires_at <= now
 * on the fake clock, and copies the record into the pool. */
struct mandate_token_record;
/* Empties the token record store. */
void fake_host_token_reset(void);
/* How many records the store holds. */
size_t fake_host_token_count(void);
/* The i-th record in the order they were put, as stored (its pointers stay
 * valid until the next reset), whether expired or not. Returns 0, or -1 when
 * there is no such record. */
int fake_host_token_record(size_t i, struct mandate_token_record *record_r);

/* The key fake keyed_hash uses (32 bytes), so a test can compute expected
 * values itself. */
extern const unsigned char fake_host_hash_key[32];

/* Writes every default of plugin's conf table into inst. Strings are
 * malloc'ed: release them with fake_conf_free(). Returns 0, or -1 when a
 * default does not parse. */
int fake_conf_defaults(const mandate_plugin *plugin, void *inst);
/* Sets one key from its text, as a config file would (ints checked against
 * min/max, strings against choices; lists split on spaces and commas). The
 * previous string in the field is freed: it must be NULL or come from
 * fake_conf_*. Returns 0, or -1 for an unknown key or a value that does not
 * parse. */
int fake_conf_set(const mandate_plugin *plugin, void *inst, const char *key, const char *value);
/* Frees the strings fake_conf_* stored into inst. */
void fake_conf_free(const mandate_plugin *plugin, void *inst);

/* An instance of plugin as the core allocates one (inst_size zeroed bytes)
 * with the defaults of its conf table (fake_conf_defaults); NULL when out of
 * memory or a default does not parse. Not instantiated yet. */
void *fake_instance_new(const mandate_plugin *plugin);
/* Destroys an instance of plugin (with its destroy, when it has one) and
 * frees it with its conf strings; sets *inst to NULL. NULL: nothing. */
void fake_instance_free(const mandate_plugin *plugin, void **inst);

/* What a plugin's unit test drives: one instance, a pool, the last error. */
typedef struct fake_plugin_fx {
    void *inst;
    mandate_pool *pool;
    mandate_error err;
    const char *test_case; /* the test's cmocka prestate (TEST_FX_CASE), or NULL */
} fake_plugin_fx;
/* The fake host's clock stopped at now and its log empty; a new pool; the
 * instance is the caller's to make. Never NULL. */
fake_plugin_fx *fake_plugin_fx_new(int64_t now);
/* Frees fx's instance of plugin (fake_instance_free), its pool and fx, and
 * lets the clock run again. */
void fake_plugin_fx_free(const mandate_plugin *plugin, fake_plugin_fx *fx);

#endif
