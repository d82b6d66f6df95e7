/* The store ABI conformance suite (see store-conformance.h). Every test runs
 * on a fresh store; SQL of the test's own (through the target) only reads
 * the tables or bends them, in SQL both SQLite and PostgreSQL speak. */
#include "config.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <mandate/store.h>

#include "fake-host.h"
#include "pool-private.h"
#include "store-conformance.h"

static const store_target *target;

#define P (target->plugin)
#define OPS ((const mandate_store_ops *)target->plugin->ops)

void store_conformance_use(const store_target *t)
{
    target = t;
}

/* --- fixtures ---------------------------------------------------------------- */

static void *inst_new(void *store)
{
    void *inst = calloc(1, P->inst_size);
    assert_non_null(inst);
    assert_int_equal(fake_conf_defaults(P, inst), 0);
    target->configure(store, inst);
    return inst;
}

static void inst_free(void *inst)
{
    if (inst == NULL)
        return;
    P->destroy(inst);
    fake_conf_free(P, inst);
    free(inst);
}

static void *inst_open(void *store)
{
    mandate_error err = {0};
    void *inst = inst_new(store);
    mandate_rc rc = P->instantiate(inst, fake_host_get(), &err);
    if (rc != MANDATE_OK)
        fail_msg("instantiate: %s", err.message);
    return inst;
}

static void expect_ok(mandate_rc rc, const mandate_error *err)
{
    if (rc != MANDATE_OK)
        fail_msg("rc %d: %s", (int)rc, err->message);
}

void *store_inst_new(void *store)
{
    return inst_new(store);
}

void *store_inst_open(void *store)
{
    return inst_open(store);
}

void store_inst_free(void *inst)
{
    inst_free(inst);
}

void store_expect_ok(mandate_rc rc, const mandate_error *err)
{
    expect_ok(rc, err);
}

int store_fx_setup_open(void **state)
{
    struct store_fx *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    fake_host_unset_now();
    fake_host_clear_log();
    fx->store = target->create();
    fx->inst = inst_open(fx->store);
    fx->pool = mandate_pool_new();
    *state = fx;
    return 0;
}

int store_fx_setup_ready(void **state)
{
    store_fx_setup_open(state);
    struct store_fx *fx = *state;
    expect_ok(OPS->migrate(fx->inst, &fx->err), &fx->err);
    return 0;
}

int store_fx_teardown(void **state)
{
    struct store_fx *fx = *state;
    inst_free(fx->inst);
    mandate_pool_free(&fx->pool);
    target->remove(fx->store);
    free(fx);
    fake_host_unset_now();
    return 0;
}

/* --- helpers ----------------------------------------------------------------- */

static const unsigned char hash_a[32] = "0123456789abcdef0123456789abcde";
static const unsigned char hash_b[32] = "fedcba9876543210fedcba987654321";

static mandate_client sample_client(const char *id, const char *tenant)
{
    mandate_client c = {
        .client_id = id,
        .tenant = tenant,
        .name = "Build agent",
        .scopes = "repo:read repo:write",
        .default_scopes = "repo:read",
        .audiences = "https://api.example.com",
        .backend = "local",
        .token_format = NULL,
        .token_ttl = 600,
        .status = MANDATE_CLIENT_ENABLED,
        .flags = MANDATE_CLIENT_CAN_INTROSPECT,
        .secret_hash = hash_a,
        .secret_hash_len = sizeof(hash_a),
        .prev_secret_hash = NULL,
        .prev_secret_hash_len = 0,
        .prev_secret_expires_at = 0,
        .public_key = NULL,
        .rate_limit = 2.5,
        .rate_burst = 10,
        .attributes = "{\"team\":\"ci\"}",
        .created_at = 1000,
        .updated_at = 1001,
    };
    return c;
}

static void assert_str_or_null(const char *a, const char *b)
{
    if (a == NULL)
        assert_null(b);
    else
        assert_string_equal(a, b);
}

static void assert_blob(const unsigned char *a, size_t alen, const unsigned char *b,
                        size_t blen)
{
    assert_int_equal(alen, blen);
    if (a == NULL || alen == 0) {
        assert_null(b);
        return;
    }
    assert_non_null(b);
    assert_memory_equal(a, b, alen);
}

static void assert_client_equal(const mandate_client *a, const mandate_client *b)
{
    assert_string_equal(a->client_id, b->client_id);
    assert_string_equal(a->tenant, b->tenant);
    assert_str_or_null(a->name, b->name);
    assert_str_or_null(a->scopes, b->scopes);
    assert_str_or_null(a->default_scopes, b->default_scopes);
    assert_str_or_null(a->audiences, b->audiences);
    assert_str_or_null(a->backend, b->backend);
    assert_str_or_null(a->token_format, b->token_format);
    assert_int_equal(a->token_ttl, b->token_ttl);
    assert_int_equal(a->status, b->status);
    assert_int_equal(a->flags, b->flags);
    assert_blob(a->secret_hash, a->secret_hash_len, b->secret_hash, b->secret_hash_len);
    assert_blob(a->prev_secret_hash, a->prev_secret_hash_len, b->prev_secret_hash,
                b->prev_secret_hash_len);
    assert_int_equal(a->prev_secret_expires_at, b->prev_secret_expires_at);
    assert_str_or_null(a->public_key, b->public_key);
    assert_true(a->rate_limit == b->rate_limit);
    assert_int_equal(a->rate_burst, b->rate_burst);
    assert_str_or_null(a->attributes, b->attributes);
    assert_int_equal(a->created_at, b->created_at);
    assert_int_equal(a->updated_at, b->updated_at);
}

static uint64_t generation(struct store_fx *fx)
{
    uint64_t g = 0;
    expect_ok(OPS->generation(fx->inst, &g, &fx->err), &fx->err);
    return g;
}

/* Runs one statement on the database file through a connection of our own. */
static void raw_exec(struct store_fx *fx, const char *sql)
{
    target->exec(fx->store, sql);
}

static int64_t raw_int(struct store_fx *fx, const char *sql)
{
    return target->query_int(fx->store, sql);
}

struct seen {
    char ids[64][32];
    size_t n;
    size_t stop_after; /* 0: never stop */
    mandate_rc stop_rc;
    struct store_fx *fx; /* for callbacks that call back into the store */
};

static mandate_rc collect_client(void *ctx, const mandate_client *client)
{
    struct seen *s = ctx;
    assert_true(s->n < 64);
    snprintf(s->ids[s->n], sizeof(s->ids[0]), "%s", client->client_id);
    s->n++;
    if (s->stop_after != 0 && s->n >= s->stop_after)
        return s->stop_rc;
    return MANDATE_OK;
}

static mandate_rc count_client(void *ctx, const mandate_client *client)
{
    (*(size_t *)ctx)++;
    return MANDATE_OK;
}

static size_t client_count(struct store_fx *fx, const char *tenant)
{
    size_t n = 0;
    mandate_client_filter filter = {.tenant = tenant};
    expect_ok(OPS->client_list(fx->inst, &filter, count_client, &n, &fx->err), &fx->err);
    return n;
}

static void list_ids(struct store_fx *fx, const char *tenant, const char *after, size_t limit,
                     struct seen *s)
{
    memset(s->ids, 0, sizeof(s->ids));
    s->n = 0;
    mandate_client_filter filter = {.tenant = tenant, .after = after, .limit = limit};
    expect_ok(OPS->client_list(fx->inst, &filter, collect_client, s, &fx->err), &fx->err);
}

/* --- descriptor and lifecycle ------------------------------------------------ */

/* --- descriptor and schema --------------------------------------------------- */

static void test_descriptor(void **state)
{
    assert_int_equal(P->magic, MANDATE_PLUGIN_MAGIC);
    assert_int_equal(P->abi_major, MANDATE_PLUGIN_ABI_MAJOR);
    assert_int_equal(P->kind, MANDATE_STORE);
    assert_non_null(P->name);
    assert_non_null(P->version);
    assert_non_null(P->instantiate);
    assert_non_null(P->destroy);
    assert_non_null(P->conf);
    assert_non_null(OPS);
    const void *const *op = (const void *const *)OPS;
    for (size_t i = 0; i < sizeof(mandate_store_ops) / sizeof(void *); i++)
        assert_non_null(op[i]);
}

static void test_migrate_fresh(void **state)
{
    struct store_fx *fx = *state;
    int version = -1;
    uint64_t gen;
    mandate_client client;

    /* no schema yet */
    expect_ok(OPS->schema_version(fx->inst, &version, &fx->err), &fx->err);
    assert_int_equal(version, 0);

    /* every data op refuses, saying why */
    assert_int_equal(OPS->client_get(fx->inst, fx->pool, "x", &client, &fx->err),
                     MANDATE_ERROR);
    assert_non_null(strstr(fx->err.message, "no schema"));
    assert_non_null(strstr(fx->err.message, "run the migrations"));
    assert_int_equal(OPS->generation(fx->inst, &gen, &fx->err), MANDATE_ERROR);
    assert_int_equal(OPS->ping(fx->inst, &fx->err), MANDATE_ERROR);
    assert_int_equal(OPS->replay_claim(fx->inst, "ns", "id", 1, &fx->err), MANDATE_ERROR);

    expect_ok(OPS->migrate(fx->inst, &fx->err), &fx->err);
    expect_ok(OPS->schema_version(fx->inst, &version, &fx->err), &fx->err);
    assert_true(version >= 1);
    /* the same connection now serves */
    assert_int_equal(OPS->client_get(fx->inst, fx->pool, "x", &client, &fx->err),
                     MANDATE_NOT_FOUND);
    expect_ok(OPS->ping(fx->inst, &fx->err), &fx->err);
}

static void test_migrate_tables(void **state)
{
    struct store_fx *fx = *state;
    int version = -1, again = -1;
    char expect[64];

    expect_ok(OPS->migrate(fx->inst, &fx->err), &fx->err);
    expect_ok(OPS->schema_version(fx->inst, &version, &fx->err), &fx->err);
    assert_true(version >= 1);
    snprintf(expect, sizeof(expect), ": migrated to schema version %d", version);
    assert_non_null(strstr(fake_host_last_log(), expect));
    assert_int_equal(raw_int(fx, "SELECT version FROM schema_version"), version);
    static const char *const empty[] = {"clients", "keys", "tokens", "revocations", "replay"};
    for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
        char sql[64];
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", empty[i]);
        assert_int_equal(raw_int(fx, sql), 0);
    }
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM meta"), 1);
    assert_int_equal(raw_int(fx, "SELECT value FROM meta WHERE name = 'generation'"), 0);

    /* a second run is a no-op */
    fake_host_clear_log();
    expect_ok(OPS->migrate(fx->inst, &fx->err), &fx->err);
    expect_ok(OPS->schema_version(fx->inst, &again, &fx->err), &fx->err);
    assert_int_equal(again, version);
    assert_string_equal(fake_host_last_log(), "");
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM schema_version"), 1);

    expect_ok(OPS->ping(fx->inst, &fx->err), &fx->err);
    assert_int_equal(generation(fx), 0);
}

struct migrator {
    void *inst;
    mandate_rc rc;
    mandate_error err;
    pthread_barrier_t *barrier;
};

static void *migrate_thread(void *arg)
{
    struct migrator *m = arg;
    pthread_barrier_wait(m->barrier);
    m->rc = OPS->migrate(m->inst, &m->err);
    return NULL;
}

/* Two instances (as two processes would) migrate the same file at once. */
static void test_migrate_concurrent(void **state)
{
    struct store_fx *fx = *state;
    pthread_barrier_t barrier;
    pthread_t threads[2];
    struct migrator m[2] = {{fx->inst, MANDATE_ERROR, {0}, &barrier},
                            {inst_open(fx->store), MANDATE_ERROR, {0}, &barrier}};
    pthread_barrier_init(&barrier, NULL, 2);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, migrate_thread, &m[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&barrier);
    expect_ok(m[0].rc, &m[0].err);
    expect_ok(m[1].rc, &m[1].err);
    int v0 = -1, v1 = -1;
    expect_ok(OPS->schema_version(m[0].inst, &v0, &fx->err), &fx->err);
    expect_ok(OPS->schema_version(m[1].inst, &v1, &fx->err), &fx->err);
    assert_true(v0 >= 1);
    assert_int_equal(v0, v1);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM meta"), 1);
    mandate_client c = sample_client("after-race", "t");
    expect_ok(OPS->client_create(m[1].inst, &c, &fx->err), &fx->err);
    inst_free(m[1].inst);
}

static void test_reopen(void **state)
{
    struct store_fx *fx = *state;
    mandate_client in = sample_client("agent-1", "acme"), out;
    mandate_key key = {.kid = "k1",
                       .alg = "ES256",
                       .format = "jwt",
                       .status = MANDATE_KEY_ACTIVE,
                       .private_blob = hash_b,
                       .private_blob_len = sizeof(hash_b),
                       .public_jwk = "{}",
                       .created_at = 50};
    int version = -1, reopened = -1;

    expect_ok(OPS->client_create(fx->inst, &in, &fx->err), &fx->err);
    expect_ok(OPS->key_add(fx->inst, &key, &fx->err), &fx->err);
    expect_ok(OPS->revoke(fx->inst, "jti-1", "agent-1", INT64_MAX, &fx->err), &fx->err);
    expect_ok(OPS->schema_version(fx->inst, &version, &fx->err), &fx->err);
    uint64_t gen = generation(fx);
    assert_int_equal(gen, 3);

    inst_free(fx->inst);
    fx->inst = inst_open(fx->store);
    fake_host_clear_log();
    expect_ok(OPS->schema_version(fx->inst, &reopened, &fx->err), &fx->err);
    assert_int_equal(reopened, version);
    /* usable before any migrate call: the schema is current */
    expect_ok(OPS->client_get(fx->inst, fx->pool, "agent-1", &out, &fx->err), &fx->err);
    assert_client_equal(&in, &out);
    expect_ok(OPS->migrate(fx->inst, &fx->err), &fx->err);
    assert_string_equal(fake_host_last_log(), ""); /* nothing to migrate */
    assert_int_equal(generation(fx), gen);
    bool revoked = false;
    expect_ok(OPS->is_revoked(fx->inst, "jti-1", &revoked, &fx->err), &fx->err);
    assert_true(revoked);
}

static void test_newer_schema_refused(void **state)
{
    struct store_fx *fx = *state;
    mandate_client client;
    int version = -1;
    uint64_t gen;

    inst_free(fx->inst);
    fx->inst = NULL;
    raw_exec(fx, "UPDATE schema_version SET version = 999");
    fx->inst = inst_open(fx->store);

    assert_int_equal(OPS->migrate(fx->inst, &fx->err), MANDATE_ERROR);
    assert_non_null(strstr(fx->err.message, "newer mandate"));
    assert_non_null(strstr(fx->err.message, "999"));
    assert_int_equal(OPS->client_get(fx->inst, fx->pool, "x", &client, &fx->err),
                     MANDATE_ERROR);
    assert_non_null(strstr(fx->err.message, "newer mandate"));
    assert_int_equal(OPS->generation(fx->inst, &gen, &fx->err), MANDATE_ERROR);
    assert_int_equal(OPS->ping(fx->inst, &fx->err), MANDATE_ERROR);
    expect_ok(OPS->schema_version(fx->inst, &version, &fx->err), &fx->err);
    assert_int_equal(version, 999);
    /* and left as it was */
    assert_int_equal(raw_int(fx, "SELECT version FROM schema_version"), 999);
}

static void test_client_crud(void **state)
{
    struct store_fx *fx = *state;
    mandate_client in = sample_client("agent-1", "acme"), out;

    expect_ok(OPS->client_create(fx->inst, &in, &fx->err), &fx->err);
    memset(&out, 0, sizeof(out));
    expect_ok(OPS->client_get(fx->inst, fx->pool, "agent-1", &out, &fx->err), &fx->err);
    assert_client_equal(&in, &out);
    assert_null(out.token_format);
    assert_null(out.public_key);
    assert_null(out.prev_secret_hash);
    assert_ptr_not_equal(out.secret_hash, hash_a); /* a copy, in the pool */

    /* update replaces every field */
    mandate_client up = in;
    up.tenant = "acme-2";
    up.name = NULL;
    up.scopes = "repo:read";
    up.token_format = "jwt";
    up.token_ttl = 120;
    up.status = MANDATE_CLIENT_DISABLED;
    up.flags = 0;
    up.secret_hash = hash_b;
    up.prev_secret_hash = hash_a;
    up.prev_secret_hash_len = sizeof(hash_a);
    up.prev_secret_expires_at = 5000;
    up.public_key = "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n";
    up.rate_limit = 0.25;
    up.rate_burst = 1;
    up.attributes = NULL;
    up.created_at = 1000;
    up.updated_at = 2000;
    expect_ok(OPS->client_update(fx->inst, &up, &fx->err), &fx->err);
    expect_ok(OPS->client_get(fx->inst, fx->pool, "agent-1", &out, &fx->err), &fx->err);
    assert_client_equal(&up, &out);

    /* timestamps left 0: created_at kept, updated_at set to now */
    fake_host_set_now(7777);
    up.created_at = 0;
    up.updated_at = 0;
    expect_ok(OPS->client_update(fx->inst, &up, &fx->err), &fx->err);
    expect_ok(OPS->client_get(fx->inst, fx->pool, "agent-1", &out, &fx->err), &fx->err);
    assert_int_equal(out.created_at, 1000);
    assert_int_equal(out.updated_at, 7777);
    mandate_client fresh = sample_client("agent-2", "acme");
    fresh.created_at = fresh.updated_at = 0;
    expect_ok(OPS->client_create(fx->inst, &fresh, &fx->err), &fx->err);
    expect_ok(OPS->client_get(fx->inst, fx->pool, "agent-2", &out, &fx->err), &fx->err);
    assert_int_equal(out.created_at, 7777);
    assert_int_equal(out.updated_at, 7777);

    /* absent ids */
    mandate_client ghost = sample_client("ghost", "acme");
    assert_int_equal(OPS->client_update(fx->inst, &ghost, &fx->err), MANDATE_NOT_FOUND);
    assert_non_null(strstr(fx->err.message, "ghost"));
    assert_int_equal(OPS->client_get(fx->inst, fx->pool, "ghost", &out, &fx->err),
                     MANDATE_NOT_FOUND);
    assert_int_equal(OPS->client_delete(fx->inst, "ghost", &fx->err), MANDATE_NOT_FOUND);

    /* delete */
    expect_ok(OPS->client_delete(fx->inst, "agent-1", &fx->err), &fx->err);
    assert_int_equal(OPS->client_get(fx->inst, fx->pool, "agent-1", &out, &fx->err),
                     MANDATE_NOT_FOUND);
    assert_int_equal(OPS->client_delete(fx->inst, "agent-1", &fx->err), MANDATE_NOT_FOUND);
    assert_int_equal(client_count(fx, NULL), 1);

    /* a client needs an id and a tenant */
    mandate_client bad = sample_client(NULL, "acme");
    assert_int_equal(OPS->client_create(fx->inst, &bad, &fx->err), MANDATE_INVALID);
    bad = sample_client("bad", NULL);
    assert_int_equal(OPS->client_create(fx->inst, &bad, &fx->err), MANDATE_INVALID);
}

static void test_client_duplicate(void **state)
{
    struct store_fx *fx = *state;
    mandate_client first = sample_client("dup", "acme"), out;
    mandate_client second = sample_client("dup", "other");
    second.name = "impostor";

    expect_ok(OPS->client_create(fx->inst, &first, &fx->err), &fx->err);
    uint64_t gen = generation(fx);
    assert_int_equal(OPS->client_create(fx->inst, &second, &fx->err), MANDATE_EXISTS);
    assert_int_equal(fx->err.rc, MANDATE_EXISTS);
    assert_non_null(strstr(fx->err.message, "\"dup\""));
    expect_ok(OPS->client_get(fx->inst, fx->pool, "dup", &out, &fx->err), &fx->err);
    assert_client_equal(&first, &out);
    assert_int_equal(generation(fx), gen);
}

static void test_client_list(void **state)
{
    struct store_fx *fx = *state;
    static const char *const ids[] = {"b2", "a3", "a1", "b1", "a5", "b3", "a2", "a4"};
    struct seen s = {.fx = fx};

    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        mandate_client c = sample_client(ids[i], ids[i][0] == 'a' ? "acme" : "beta");
        expect_ok(OPS->client_create(fx->inst, &c, &fx->err), &fx->err);
    }

    list_ids(fx, NULL, NULL, 0, &s);
    assert_int_equal(s.n, 8);
    static const char *const sorted[] = {"a1", "a2", "a3", "a4", "a5", "b1", "b2", "b3"};
    for (size_t i = 0; i < 8; i++)
        assert_string_equal(s.ids[i], sorted[i]);

    list_ids(fx, "beta", NULL, 0, &s);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.ids[0], "b1");
    assert_string_equal(s.ids[1], "b2");
    assert_string_equal(s.ids[2], "b3");

    list_ids(fx, "nobody", NULL, 0, &s);
    assert_int_equal(s.n, 0);

    /* paging: pages of 3 stitch back into the whole list */
    list_ids(fx, NULL, NULL, 3, &s);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.ids[2], "a3");
    list_ids(fx, NULL, "a3", 3, &s);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.ids[0], "a4");
    assert_string_equal(s.ids[1], "a5");
    assert_string_equal(s.ids[2], "b1");
    list_ids(fx, NULL, "b1", 3, &s);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.ids[0], "b2");
    assert_string_equal(s.ids[1], "b3");
    list_ids(fx, NULL, "b3", 3, &s);
    assert_int_equal(s.n, 0);
    /* `after` need not be an existing id */
    list_ids(fx, NULL, "a", 0, &s);
    assert_int_equal(s.n, 8);

    /* tenant, after and limit together */
    list_ids(fx, "acme", "a2", 2, &s);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.ids[0], "a3");
    assert_string_equal(s.ids[1], "a4");
    list_ids(fx, "beta", "a5", 0, &s);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.ids[0], "b1");

    /* no filter at all */
    size_t n = 0;
    expect_ok(OPS->client_list(fx->inst, NULL, count_client, &n, &fx->err), &fx->err);
    assert_int_equal(n, 8);

    /* the callback stops the walk; its code comes back */
    memset(&s, 0, sizeof(s));
    s.stop_after = 2;
    s.stop_rc = MANDATE_DENIED;
    mandate_client_filter all = {0};
    assert_int_equal(OPS->client_list(fx->inst, &all, collect_client, &s, &fx->err),
                     MANDATE_DENIED);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.ids[1], "a2");

    /* the statement was released: the next walk starts over */
    list_ids(fx, NULL, NULL, 1, &s);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.ids[0], "a1");
}

/* A callback that calls back into the store on the same thread. */
static mandate_rc nested_cb(void *ctx, const mandate_client *client)
{
    struct seen *s = ctx;
    struct store_fx *fx = s->fx;
    mandate_client again;
    mandate_error err = {0};
    if (OPS->client_get(fx->inst, fx->pool, client->client_id, &again, &err) != MANDATE_OK)
        return MANDATE_ERROR;
    if (strcmp(again.client_id, client->client_id) != 0)
        return MANDATE_ERROR;
    /* the same kind of walk, while the outer one is open */
    size_t n = 0;
    mandate_client_filter filter = {.limit = 2};
    if (OPS->client_list(fx->inst, &filter, count_client, &n, &err) != MANDATE_OK || n != 2)
        return MANDATE_ERROR;
    return collect_client(ctx, client);
}

static void test_client_list_nested(void **state)
{
    struct store_fx *fx = *state;
    struct seen s = {.fx = fx};
    for (int i = 0; i < 5; i++) {
        char id[16];
        snprintf(id, sizeof(id), "n%d", i);
        mandate_client c = sample_client(id, "acme");
        expect_ok(OPS->client_create(fx->inst, &c, &fx->err), &fx->err);
    }
    mandate_client_filter all = {0};
    expect_ok(OPS->client_list(fx->inst, &all, nested_cb, &s, &fx->err), &fx->err);
    assert_int_equal(s.n, 5);
    assert_string_equal(s.ids[4], "n4");
}

#define IMPORT_N 10000

static void test_client_import(void **state)
{
    struct store_fx *fx = *state;
    static char ids[IMPORT_N][16];
    mandate_client *clients = calloc(IMPORT_N, sizeof(*clients));
    assert_non_null(clients);
    for (size_t i = 0; i < IMPORT_N; i++) {
        snprintf(ids[i], sizeof(ids[i]), "c%05zu", i);
        clients[i] = sample_client(ids[i], i % 2 == 0 ? "even" : "odd");
        clients[i].rate_burst = (int64_t)i;
    }
    uint64_t gen = generation(fx);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    expect_ok(OPS->client_import(fx->inst, clients, IMPORT_N, &fx->err), &fx->err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    print_message("imported %d clients in %.3f s\n", IMPORT_N, secs);
    /* valgrind slows everything tenfold or more */
    const char *preload = getenv("LD_PRELOAD");
    bool valgrind = preload != NULL && strstr(preload, "vgpreload") != NULL;
    assert_true(secs < (valgrind ? 20.0 : 1.0) * target->import_secs_max);

    assert_int_equal(client_count(fx, NULL), IMPORT_N);
    assert_int_equal(client_count(fx, "odd"), IMPORT_N / 2);
    mandate_client out;
    expect_ok(OPS->client_get(fx->inst, fx->pool, "c09999", &out, &fx->err), &fx->err);
    assert_client_equal(&clients[9999], &out);
    assert_int_equal(out.rate_burst, 9999);
    assert_true(generation(fx) > gen);

    /* one taken id in a batch: EXISTS naming it, and nothing written */
    gen = generation(fx);
    static char more[100][16];
    mandate_client batch[101];
    for (size_t i = 0; i < 100; i++) {
        snprintf(more[i], sizeof(more[i]), "new%03zu", i);
        batch[i] = sample_client(more[i], "even");
    }
    batch[100] = batch[50];
    batch[50] = sample_client("c00050", "even");
    assert_int_equal(OPS->client_import(fx->inst, batch, 101, &fx->err), MANDATE_EXISTS);
    assert_non_null(strstr(fx->err.message, "\"c00050\""));
    assert_int_equal(client_count(fx, NULL), IMPORT_N);
    for (size_t i = 0; i < 100; i++)
        assert_int_equal(OPS->client_get(fx->inst, fx->pool, more[i], &out, &fx->err),
                         MANDATE_NOT_FOUND);
    assert_int_equal(generation(fx), gen);

    /* the instance is usable after the rollback */
    batch[50] = batch[100];
    expect_ok(OPS->client_import(fx->inst, batch, 100, &fx->err), &fx->err);
    assert_int_equal(client_count(fx, NULL), IMPORT_N + 100);
    free(clients);
}

static void test_client_import_dup_in_batch(void **state)
{
    struct store_fx *fx = *state;
    mandate_client batch[3] = {sample_client("x1", "t"), sample_client("x2", "t"),
                               sample_client("x1", "t")};
    assert_int_equal(OPS->client_import(fx->inst, batch, 3, &fx->err), MANDATE_EXISTS);
    assert_non_null(strstr(fx->err.message, "\"x1\""));
    assert_int_equal(client_count(fx, NULL), 0);
    assert_int_equal(generation(fx), 0);
    /* an invalid entry is refused before anything is written */
    batch[2] = sample_client("x3", NULL);
    assert_int_equal(OPS->client_import(fx->inst, batch, 3, &fx->err), MANDATE_INVALID);
    assert_int_equal(client_count(fx, NULL), 0);
    expect_ok(OPS->client_import(fx->inst, batch, 0, &fx->err), &fx->err);
    expect_ok(OPS->client_import(fx->inst, batch, 2, &fx->err), &fx->err);
    assert_int_equal(client_count(fx, NULL), 2);
}

/* --- keys ------------------------------------------------------------------------- */

struct key_seen {
    char kids[8][16];
    mandate_key_status status[8];
    int64_t retired_at[8], remove_after[8];
    size_t n;
    size_t stop_after;
};

static mandate_rc collect_key(void *ctx, const mandate_key *key)
{
    struct key_seen *s = ctx;
    assert_true(s->n < 8);
    snprintf(s->kids[s->n], sizeof(s->kids[0]), "%s", key->kid);
    s->status[s->n] = key->status;
    s->retired_at[s->n] = key->retired_at;
    s->remove_after[s->n] = key->remove_after;
    if (strcmp(key->kid, "k1") == 0) {
        assert_string_equal(key->alg, "ES256");
        assert_string_equal(key->format, "jwt");
        assert_string_equal(key->public_jwk, "{\"kty\":\"EC\"}");
        assert_blob(hash_b, sizeof(hash_b), key->private_blob, key->private_blob_len);
        assert_int_equal(key->created_at, 100);
    }
    s->n++;
    if (s->stop_after != 0 && s->n >= s->stop_after)
        return MANDATE_DENIED;
    return MANDATE_OK;
}

static void list_keys(struct store_fx *fx, struct key_seen *s)
{
    memset(s, 0, sizeof(*s));
    expect_ok(OPS->key_list(fx->inst, collect_key, s, &fx->err), &fx->err);
}

static void test_keys(void **state)
{
    struct store_fx *fx = *state;
    struct key_seen s;
    mandate_key k1 = {.kid = "k1",
                      .alg = "ES256",
                      .format = "jwt",
                      .status = MANDATE_KEY_ACTIVE,
                      .private_blob = hash_b,
                      .private_blob_len = sizeof(hash_b),
                      .public_jwk = "{\"kty\":\"EC\"}",
                      .created_at = 100};
    mandate_key kb = k1, ka = k1;
    kb.kid = "kb";
    kb.created_at = 300;
    ka.kid = "ka";
    ka.created_at = 300;
    ka.private_blob = NULL;
    ka.private_blob_len = 0;

    expect_ok(OPS->key_add(fx->inst, &k1, &fx->err), &fx->err);
    expect_ok(OPS->key_add(fx->inst, &kb, &fx->err), &fx->err);
    expect_ok(OPS->key_add(fx->inst, &ka, &fx->err), &fx->err);
    assert_int_equal(OPS->key_add(fx->inst, &ka, &fx->err), MANDATE_EXISTS);
    assert_non_null(strstr(fx->err.message, "\"ka\""));

    /* newest first, then by kid */
    list_keys(fx, &s);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.kids[0], "ka");
    assert_string_equal(s.kids[1], "kb");
    assert_string_equal(s.kids[2], "k1");
    assert_int_equal(s.status[2], MANDATE_KEY_ACTIVE);

    /* update sets status, retired_at, remove_after only */
    mandate_key retire = {.kid = "k1",
                          .status = MANDATE_KEY_RETIRED,
                          .retired_at = 400,
                          .remove_after = 500,
                          .created_at = 999,
                          .alg = "RS256"};
    expect_ok(OPS->key_update(fx->inst, &retire, &fx->err), &fx->err);
    list_keys(fx, &s); /* collect_key checks k1's other fields are untouched */
    assert_string_equal(s.kids[2], "k1");
    assert_int_equal(s.status[2], MANDATE_KEY_RETIRED);
    assert_int_equal(s.retired_at[2], 400);
    assert_int_equal(s.remove_after[2], 500);
    retire.kid = "nope";
    assert_int_equal(OPS->key_update(fx->inst, &retire, &fx->err), MANDATE_NOT_FOUND);

    /* early stop */
    memset(&s, 0, sizeof(s));
    s.stop_after = 1;
    assert_int_equal(OPS->key_list(fx->inst, collect_key, &s, &fx->err), MANDATE_DENIED);
    assert_int_equal(s.n, 1);

    expect_ok(OPS->key_delete(fx->inst, "kb", &fx->err), &fx->err);
    assert_int_equal(OPS->key_delete(fx->inst, "kb", &fx->err), MANDATE_NOT_FOUND);
    list_keys(fx, &s);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.kids[0], "ka");
    assert_string_equal(s.kids[1], "k1");
}

/* --- tokens, revocations, replay ------------------------------------------------- */

static void test_tokens(void **state)
{
    struct store_fx *fx = *state;
    mandate_token_record in = {.token_hash = hash_a,
                               .token_hash_len = sizeof(hash_a),
                               .jti = "jti-1",
                               .client_id = "agent-1",
                               .subject = "alice",
                               .tenant = "acme",
                               .grant = "{\"scope\":\"read\"}",
                               .issued_at = 1000,
                               .expires_at = 1600};
    mandate_token_record out;

    expect_ok(OPS->token_put(fx->inst, &in, &fx->err), &fx->err);
    assert_int_equal(OPS->token_put(fx->inst, &in, &fx->err), MANDATE_EXISTS);

    memset(&out, 0, sizeof(out));
    expect_ok(OPS->token_get(fx->inst, fx->pool, hash_a, sizeof(hash_a), 1599, &out, &fx->err),
              &fx->err);
    assert_blob(hash_a, sizeof(hash_a), out.token_hash, out.token_hash_len);
    assert_ptr_not_equal(out.token_hash, hash_a);
    assert_string_equal(out.jti, "jti-1");
    assert_string_equal(out.client_id, "agent-1");
    assert_string_equal(out.subject, "alice");
    assert_string_equal(out.tenant, "acme");
    assert_string_equal(out.grant, "{\"scope\":\"read\"}");
    assert_int_equal(out.issued_at, 1000);
    assert_int_equal(out.expires_at, 1600);

    /* expired at expires_at */
    assert_int_equal(
        OPS->token_get(fx->inst, fx->pool, hash_a, sizeof(hash_a), 1600, &out, &fx->err),
        MANDATE_NOT_FOUND);
    assert_int_equal(
        OPS->token_get(fx->inst, fx->pool, hash_b, sizeof(hash_b), 0, &out, &fx->err),
        MANDATE_NOT_FOUND);
    /* a prefix of a stored hash is another hash */
    assert_int_equal(OPS->token_get(fx->inst, fx->pool, hash_a, 16, 0, &out, &fx->err),
                     MANDATE_NOT_FOUND);

    /* NULL fields come back NULL */
    mandate_token_record bare = {.token_hash = hash_b,
                                 .token_hash_len = sizeof(hash_b),
                                 .issued_at = 1,
                                 .expires_at = 2};
    expect_ok(OPS->token_put(fx->inst, &bare, &fx->err), &fx->err);
    expect_ok(OPS->token_get(fx->inst, fx->pool, hash_b, sizeof(hash_b), 1, &out, &fx->err),
              &fx->err);
    assert_null(out.jti);
    assert_null(out.grant);
    assert_int_equal(out.expires_at, 2);
}

static void test_revoke(void **state)
{
    struct store_fx *fx = *state;
    bool revoked = true;

    expect_ok(OPS->is_revoked(fx->inst, "jti-1", &revoked, &fx->err), &fx->err);
    assert_false(revoked);
    fake_host_set_now(1000);
    expect_ok(OPS->revoke(fx->inst, "jti-1", "agent-1", 2000, &fx->err), &fx->err);
    expect_ok(OPS->is_revoked(fx->inst, "jti-1", &revoked, &fx->err), &fx->err);
    assert_true(revoked);
    uint64_t gen = generation(fx);
    expect_ok(OPS->revoke(fx->inst, "jti-1", "agent-1", 2000, &fx->err), &fx->err);
    assert_int_equal(generation(fx), gen); /* nothing changed */
    expect_ok(OPS->revoke(fx->inst, "jti-1", "agent-1", 1500, &fx->err), &fx->err);
    assert_int_equal(raw_int(fx, "SELECT expires_at FROM revocations"), 2000);
    expect_ok(OPS->revoke(fx->inst, "jti-1", "agent-1", 3000, &fx->err), &fx->err);
    assert_int_equal(raw_int(fx, "SELECT expires_at FROM revocations"), 3000);
    assert_int_equal(raw_int(fx, "SELECT revoked_at FROM revocations"), 1000);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM revocations"), 1);
    expect_ok(OPS->is_revoked(fx->inst, "jti-2", &revoked, &fx->err), &fx->err);
    assert_false(revoked);
}

static void test_replay(void **state)
{
    struct store_fx *fx = *state;

    fake_host_set_now(1000);
    expect_ok(OPS->replay_claim(fx->inst, "idp-a", "assertion-1", 1300, &fx->err), &fx->err);
    assert_int_equal(OPS->replay_claim(fx->inst, "idp-a", "assertion-1", 1300, &fx->err),
                     MANDATE_EXISTS);
    assert_int_equal(fx->err.rc, MANDATE_EXISTS);
    /* namespaces are apart */
    expect_ok(OPS->replay_claim(fx->inst, "idp-b", "assertion-1", 1300, &fx->err), &fx->err);
    expect_ok(OPS->replay_claim(fx->inst, "idp-a", "assertion-2", 1300, &fx->err), &fx->err);

    fake_host_set_now(1299);
    assert_int_equal(OPS->replay_claim(fx->inst, "idp-a", "assertion-1", 1400, &fx->err),
                     MANDATE_EXISTS);
    assert_int_equal(raw_int(fx, "SELECT expires_at FROM replay "
                                 "WHERE ns = 'idp-a' AND id = 'assertion-1'"),
                     1300);
    /* expired: may be claimed again, for the new period */
    fake_host_set_now(1300);
    expect_ok(OPS->replay_claim(fx->inst, "idp-a", "assertion-1", 1900, &fx->err), &fx->err);
    assert_int_equal(raw_int(fx, "SELECT expires_at FROM replay "
                                 "WHERE ns = 'idp-a' AND id = 'assertion-1'"),
                     1900);
    assert_int_equal(OPS->replay_claim(fx->inst, "idp-a", "assertion-1", 1900, &fx->err),
                     MANDATE_EXISTS);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM replay"), 3);
}

static void test_purge(void **state)
{
    struct store_fx *fx = *state;
    mandate_token_record tok = {.token_hash_len = sizeof(hash_a), .issued_at = 1};
    unsigned char hashes[3][32];
    const int64_t token_exp[3] = {900, 1000, 1100};
    uint64_t count = 99;

    for (int i = 0; i < 3; i++) {
        memset(hashes[i], 'a' + i, sizeof(hashes[i]));
        tok.token_hash = hashes[i];
        tok.expires_at = token_exp[i];
        expect_ok(OPS->token_put(fx->inst, &tok, &fx->err), &fx->err);
    }
    expect_ok(OPS->revoke(fx->inst, "old", NULL, 500, &fx->err), &fx->err);
    expect_ok(OPS->revoke(fx->inst, "live", NULL, 2000, &fx->err), &fx->err);
    fake_host_set_now(0);
    expect_ok(OPS->replay_claim(fx->inst, "ns", "old", 999, &fx->err), &fx->err);
    expect_ok(OPS->replay_claim(fx->inst, "ns", "live", 5000, &fx->err), &fx->err);

    /* gone: tokens at 900 and 1000, revocation "old", replay "old" */
    expect_ok(OPS->purge(fx->inst, 1000, &count, &fx->err), &fx->err);
    assert_int_equal(count, 4);
    expect_ok(OPS->purge(fx->inst, 1000, &count, &fx->err), &fx->err);
    assert_int_equal(count, 0);
    expect_ok(OPS->purge(fx->inst, 1000, NULL, &fx->err), &fx->err);

    assert_int_equal(raw_int(fx, "SELECT count(*) FROM tokens"), 1);
    mandate_token_record out;
    expect_ok(OPS->token_get(fx->inst, fx->pool, hashes[2], 32, 1000, &out, &fx->err),
              &fx->err);
    assert_int_equal(out.expires_at, 1100);
    bool revoked;
    expect_ok(OPS->is_revoked(fx->inst, "old", &revoked, &fx->err), &fx->err);
    assert_false(revoked);
    expect_ok(OPS->is_revoked(fx->inst, "live", &revoked, &fx->err), &fx->err);
    assert_true(revoked);
    fake_host_set_now(1000);
    assert_int_equal(OPS->replay_claim(fx->inst, "ns", "live", 6000, &fx->err), MANDATE_EXISTS);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM replay"), 1);
}

static void test_generation(void **state)
{
    struct store_fx *fx = *state;
    mandate_client c = sample_client("g1", "acme"), c2 = sample_client("g2", "a"), out;
    mandate_key k = {.kid = "k",
                     .alg = "EdDSA",
                     .format = "jwt",
                     .status = MANDATE_KEY_ACTIVE,
                     .created_at = 1};
    mandate_token_record tok = {
        .token_hash = hash_a, .token_hash_len = 32, .expires_at = INT64_MAX};
    uint64_t g = generation(fx), next;
    bool revoked;
    assert_int_equal(g, 0);

#define RISES(call)                                                                            \
    do {                                                                                       \
        expect_ok(call, &fx->err);                                                             \
        next = generation(fx);                                                                 \
        assert_true(next > g);                                                                 \
        g = next;                                                                              \
    } while (0)
#define STAYS(call)                                                                            \
    do {                                                                                       \
        (void)(call);                                                                          \
        assert_int_equal(generation(fx), g);                                                   \
    } while (0)

    RISES(OPS->client_create(fx->inst, &c, &fx->err));
    RISES(OPS->client_update(fx->inst, &c, &fx->err));
    RISES(OPS->client_import(fx->inst, &c2, 1, &fx->err));
    RISES(OPS->client_delete(fx->inst, "g1", &fx->err));
    RISES(OPS->key_add(fx->inst, &k, &fx->err));
    k.status = MANDATE_KEY_RETIRED;
    RISES(OPS->key_update(fx->inst, &k, &fx->err));
    RISES(OPS->key_delete(fx->inst, "k", &fx->err));
    RISES(OPS->revoke(fx->inst, "j", NULL, 10, &fx->err));
    RISES(OPS->purge(fx->inst, 100, NULL, &fx->err)); /* dropped revocation "j" */

    STAYS(OPS->client_get(fx->inst, fx->pool, "g2", &out, &fx->err));
    STAYS(OPS->client_create(fx->inst, &c2, &fx->err));
    STAYS(OPS->client_delete(fx->inst, "g1", &fx->err));
    STAYS(OPS->token_put(fx->inst, &tok, &fx->err));
    STAYS(OPS->replay_claim(fx->inst, "ns", "id", INT64_MAX, &fx->err));
    STAYS(OPS->is_revoked(fx->inst, "j", &revoked, &fx->err));
    STAYS(OPS->purge(fx->inst, 100, NULL, &fx->err));
#undef RISES
#undef STAYS
}

/* --- threads ------------------------------------------------------------------------ */

#define THREADS 4
#define PER_THREAD 200

struct worker {
    void *inst;
    int index;
    int failures;
    mandate_error err;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    mandate_pool *pool = mandate_pool_new();
    for (int i = 0; i < PER_THREAD; i++) {
        char id[32];
        snprintf(id, sizeof(id), "t%d-%03d", w->index, i);
        mandate_client c = sample_client(id, w->index % 2 == 0 ? "even" : "odd");
        mandate_client out;
        if (OPS->client_create(w->inst, &c, &w->err) != MANDATE_OK)
            w->failures++;
        else if (OPS->client_get(w->inst, pool, id, &out, &w->err) != MANDATE_OK ||
                 strcmp(out.client_id, id) != 0)
            w->failures++;
        if (OPS->replay_claim(w->inst, "shared", id, INT64_MAX, &w->err) != MANDATE_OK)
            w->failures++;
        mandate_pool_clear(pool);
    }
    mandate_pool_free(&pool);
    return NULL;
}

static void test_threads(void **state)
{
    struct store_fx *fx = *state;
    pthread_t threads[THREADS];
    struct worker workers[THREADS];
    for (int i = 0; i < THREADS; i++) {
        workers[i] = (struct worker){.inst = fx->inst, .index = i};
        assert_int_equal(pthread_create(&threads[i], NULL, worker_main, &workers[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    for (int i = 0; i < THREADS; i++)
        if (workers[i].failures != 0)
            fail_msg("thread %d: %d failures, last: %s", i, workers[i].failures,
                     workers[i].err.message);
    assert_int_equal(client_count(fx, NULL), THREADS * PER_THREAD);
    assert_int_equal(client_count(fx, "odd"), THREADS / 2 * PER_THREAD);
    assert_int_equal(generation(fx), THREADS * PER_THREAD);
    mandate_client out;
    expect_ok(OPS->client_get(fx->inst, fx->pool, "t3-199", &out, &fx->err), &fx->err);
    assert_string_equal(out.tenant, "odd");
    /* the exited threads' connections were closed; the instance still works */
    expect_ok(OPS->ping(fx->inst, &fx->err), &fx->err);
}

/* Token records put by many threads at once: each is there as soon as
 * token_put returns (read back at once, by the same thread), none is lost,
 * and putting one twice, from another thread, is refused. */
struct token_worker {
    void *inst;
    pthread_barrier_t *barrier;
    int index;
    int failures;
    mandate_error err;
};

static void token_worker_hash(int thread, int i, unsigned char hash[32])
{
    memset(hash, 0x5a, 32);
    hash[0] = (unsigned char)thread;
    hash[1] = (unsigned char)(i >> 8);
    hash[2] = (unsigned char)i;
}

static void *token_worker_main(void *arg)
{
    struct token_worker *w = arg;
    mandate_pool *pool = mandate_pool_new();
    for (int i = 0; i < PER_THREAD; i++) {
        unsigned char hash[32];
        char jti[32];
        token_worker_hash(w->index, i, hash);
        snprintf(jti, sizeof(jti), "t%d-%03d", w->index, i);
        mandate_token_record rec = {.token_hash = hash,
                                    .token_hash_len = sizeof(hash),
                                    .jti = jti,
                                    .client_id = "agent",
                                    .grant = "{}",
                                    .issued_at = 1000,
                                    .expires_at = 2000};
        mandate_token_record out;
        if (OPS->token_put(w->inst, &rec, &w->err) != MANDATE_OK)
            w->failures++;
        else if (OPS->token_get(w->inst, pool, hash, sizeof(hash), 1500, &out, &w->err) !=
                     MANDATE_OK ||
                 out.jti == NULL || strcmp(out.jti, jti) != 0)
            w->failures++;
        mandate_pool_clear(pool);
    }
    pthread_barrier_wait(w->barrier);
    unsigned char other[32];
    token_worker_hash((w->index + 1) % THREADS, 0, other);
    mandate_token_record again = {.token_hash = other,
                                  .token_hash_len = sizeof(other),
                                  .issued_at = 1000,
                                  .expires_at = 2000};
    if (OPS->token_put(w->inst, &again, &w->err) != MANDATE_EXISTS)
        w->failures++;
    mandate_pool_free(&pool);
    return NULL;
}

static void test_token_threads(void **state)
{
    struct store_fx *fx = *state;
    pthread_t threads[THREADS];
    struct token_worker workers[THREADS];
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, THREADS);
    for (int i = 0; i < THREADS; i++) {
        workers[i] = (struct token_worker){.inst = fx->inst, .barrier = &barrier, .index = i};
        assert_int_equal(pthread_create(&threads[i], NULL, token_worker_main, &workers[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&barrier);
    for (int i = 0; i < THREADS; i++)
        if (workers[i].failures != 0)
            fail_msg("thread %d: %d failures, last: %s", i, workers[i].failures,
                     workers[i].err.message);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM tokens"), THREADS * PER_THREAD);
    for (int t = 0; t < THREADS; t++)
        for (int i = 0; i < PER_THREAD; i++) {
            unsigned char hash[32];
            mandate_token_record out;
            token_worker_hash(t, i, hash);
            expect_ok(
                OPS->token_get(fx->inst, fx->pool, hash, sizeof(hash), 1500, &out, &fx->err),
                &fx->err);
        }
}

/* The same replay id claimed by many threads of two instances at once:
 * exactly one wins. */
struct claimer {
    void *inst;
    pthread_barrier_t *barrier;
    int wins, replays, errors;
};

static void *claimer_main(void *arg)
{
    struct claimer *c = arg;
    mandate_error err;
    pthread_barrier_wait(c->barrier);
    for (int i = 0; i < 50; i++) {
        char id[16];
        snprintf(id, sizeof(id), "id-%d", i);
        mandate_rc rc = OPS->replay_claim(c->inst, "race", id, INT64_MAX, &err);
        if (rc == MANDATE_OK)
            c->wins++;
        else if (rc == MANDATE_EXISTS)
            c->replays++;
        else
            c->errors++;
    }
    return NULL;
}

static void test_replay_race(void **state)
{
    struct store_fx *fx = *state;
    pthread_t threads[THREADS];
    struct claimer claimers[THREADS];
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, THREADS);
    /* half the threads through another instance: a second node */
    void *other = inst_open(fx->store);
    for (int i = 0; i < THREADS; i++) {
        claimers[i] =
            (struct claimer){.inst = i % 2 == 0 ? fx->inst : other, .barrier = &barrier};
        assert_int_equal(pthread_create(&threads[i], NULL, claimer_main, &claimers[i]), 0);
    }
    int wins = 0, replays = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(claimers[i].errors, 0);
        wins += claimers[i].wins;
        replays += claimers[i].replays;
    }
    pthread_barrier_destroy(&barrier);
    inst_free(other);
    assert_int_equal(wins, 50);
    assert_int_equal(replays, (THREADS - 1) * 50);
}

/* --- two nodes, odd values ------------------------------------------------------ */

/* Two instances on one store, as two nodes would have: what one changes, the
 * other sees, and its generation says so. */
static void test_two_instances(void **state)
{
    struct store_fx *fx = *state;
    void *other = inst_open(fx->store);
    mandate_client c = sample_client("shared-1", "acme"), out;
    uint64_t seen = 0, now = 0;
    bool revoked = false;

    expect_ok(OPS->generation(other, &seen, &fx->err), &fx->err);
    expect_ok(OPS->client_create(fx->inst, &c, &fx->err), &fx->err);
    expect_ok(OPS->generation(other, &now, &fx->err), &fx->err);
    assert_true(now > seen);
    expect_ok(OPS->client_get(other, fx->pool, "shared-1", &out, &fx->err), &fx->err);
    assert_client_equal(&c, &out);
    assert_int_equal(OPS->client_create(other, &c, &fx->err), MANDATE_EXISTS);

    /* and the other way */
    seen = now;
    expect_ok(OPS->revoke(other, "jti-x", "shared-1", INT64_MAX, &fx->err), &fx->err);
    assert_true(generation(fx) > seen);
    expect_ok(OPS->is_revoked(fx->inst, "jti-x", &revoked, &fx->err), &fx->err);
    assert_true(revoked);
    mandate_key k = {.kid = "k", .alg = "ES256", .status = MANDATE_KEY_ACTIVE, .created_at = 1};
    seen = generation(fx);
    expect_ok(OPS->key_add(other, &k, &fx->err), &fx->err);
    assert_true(generation(fx) > seen);

    /* one claim, whichever node sees it first */
    fake_host_set_now(100);
    expect_ok(OPS->replay_claim(fx->inst, "idp", "a-1", 200, &fx->err), &fx->err);
    assert_int_equal(OPS->replay_claim(other, "idp", "a-1", 200, &fx->err), MANDATE_EXISTS);
    inst_free(other);
}

/* Listing and paging go by bytes, whatever the store's own collation. */
static void test_client_list_byte_order(void **state)
{
    struct store_fx *fx = *state;
    static const char *const ids[] = {"b0",  "a1", "\xc3\xa9t\xc3\xa9", "B1", "_x", "A2",
                                      "a10", "a"};
    static const char *const sorted[] = {"A2", "B1",  "_x", "a",
                                         "a1", "a10", "b0", "\xc3\xa9t\xc3\xa9"};
    struct seen s = {.fx = fx};
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        mandate_client c = sample_client(ids[i], i % 2 == 0 ? "Zeta" : "alpha");
        expect_ok(OPS->client_create(fx->inst, &c, &fx->err), &fx->err);
    }
    list_ids(fx, NULL, NULL, 0, &s);
    assert_int_equal(s.n, 8);
    for (size_t i = 0; i < 8; i++)
        assert_string_equal(s.ids[i], sorted[i]);
    list_ids(fx, NULL, "_x", 2, &s);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.ids[0], "a");
    assert_string_equal(s.ids[1], "a1");
    list_ids(fx, NULL, "a10", 0, &s);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.ids[1], "\xc3\xa9t\xc3\xa9");
    /* tenants match exactly: no case folding */
    list_ids(fx, "zeta", NULL, 0, &s);
    assert_int_equal(s.n, 0);
    list_ids(fx, "Zeta", NULL, 0, &s);
    assert_int_equal(s.n, 4);
    assert_string_equal(s.ids[0], "_x");
    /* a client_id differs from another by case alone */
    mandate_client out;
    assert_int_equal(OPS->client_get(fx->inst, fx->pool, "b1", &out, &fx->err),
                     MANDATE_NOT_FOUND);
}

/* Values at the edges of their types come back as they went in; an empty
 * string stays an empty string, apart from NULL. */
static void test_client_values(void **state)
{
    struct store_fx *fx = *state;
    mandate_client in = sample_client("edge", "t"), out;
    in.name = "";
    in.attributes = "{\"name\":\"J\xc3\xbcrgen \xe2\x9c\x93\",\"q\":\"'\\\"\\\\\"}";
    in.scopes = NULL;
    in.token_ttl = INT64_MAX;
    in.prev_secret_expires_at = INT64_MIN;
    in.flags = UINT32_MAX;
    in.status = MANDATE_CLIENT_DISABLED;
    in.rate_limit = 1.0 / 3.0;
    in.rate_burst = -1;
    in.created_at = -5;
    in.updated_at = INT64_MAX;
    static const unsigned char zeros[4] = {0, 0, 0, 0};
    in.prev_secret_hash = zeros;
    in.prev_secret_hash_len = sizeof(zeros);
    expect_ok(OPS->client_create(fx->inst, &in, &fx->err), &fx->err);
    expect_ok(OPS->client_get(fx->inst, fx->pool, "edge", &out, &fx->err), &fx->err);
    assert_client_equal(&in, &out);
    assert_non_null(out.name);
    assert_string_equal(out.name, "");
    assert_null(out.scopes);

    mandate_token_record t = {.token_hash = zeros,
                              .token_hash_len = sizeof(zeros),
                              .jti = "",
                              .issued_at = INT64_MIN,
                              .expires_at = INT64_MAX};
    mandate_token_record got;
    expect_ok(OPS->token_put(fx->inst, &t, &fx->err), &fx->err);
    expect_ok(
        OPS->token_get(fx->inst, fx->pool, zeros, sizeof(zeros), INT64_MAX - 1, &got, &fx->err),
        &fx->err);
    assert_string_equal(got.jti, "");
    assert_int_equal(got.issued_at, INT64_MIN);
    assert_int_equal(got.expires_at, INT64_MAX);
}

/* --- live rows, for mandatectl migrate (ABI 1.2) ------------------------------- */

struct live_seen {
    char rows[16][96];
    size_t n;
    size_t stop_after; /* 0: never stop */
};

static mandate_rc live_row(struct live_seen *s, const char *a, const char *b, int64_t exp)
{
    assert_true(s->n < 16);
    snprintf(s->rows[s->n++], sizeof(s->rows[0]), "%s|%s|%lld", a != NULL ? a : "(null)",
             b != NULL ? b : "(null)", (long long)exp);
    return s->stop_after != 0 && s->n >= s->stop_after ? MANDATE_DENIED : MANDATE_OK;
}

static mandate_rc see_revocation(void *ctx, const char *jti, const char *client_id,
                                 int64_t expires_at)
{
    return live_row(ctx, jti, client_id, expires_at);
}

static mandate_rc see_token(void *ctx, const mandate_token_record *t)
{
    char first[2] = {(char)t->token_hash[0], '\0'};
    assert_int_equal(t->token_hash_len, 32);
    return live_row(ctx, first, t->jti, t->expires_at);
}

static mandate_rc see_replay(void *ctx, const char *ns, const char *id, int64_t expires_at)
{
    return live_row(ctx, ns, id, expires_at);
}

/* What is still live at `now`, in byte order; listing changes nothing. */
static void test_live_lists(void **state)
{
    struct store_fx *fx = *state;
    struct live_seen s = {0};

    expect_ok(OPS->revoke(fx->inst, "b", "c1", 2000, &fx->err), &fx->err);
    expect_ok(OPS->revoke(fx->inst, "a", "c1", 1000, &fx->err), &fx->err);
    expect_ok(OPS->revoke(fx->inst, "B", NULL, 3000, &fx->err), &fx->err);
    unsigned char hashes[3][32];
    const char first[3] = {'z', 'a', 'm'};
    const int64_t token_exp[3] = {5000, 1000, 1001};
    for (int i = 0; i < 3; i++) {
        memset(hashes[i], first[i], 32);
        mandate_token_record t = {.token_hash = hashes[i],
                                  .token_hash_len = 32,
                                  .jti = i == 2 ? NULL : "j",
                                  .grant = "{}",
                                  .expires_at = token_exp[i]};
        expect_ok(OPS->token_put(fx->inst, &t, &fx->err), &fx->err);
    }
    fake_host_set_now(0);
    expect_ok(OPS->replay_claim(fx->inst, "idp", "x", 2000, &fx->err), &fx->err);
    expect_ok(OPS->replay_claim(fx->inst, "IdP", "y", 2000, &fx->err), &fx->err);
    expect_ok(OPS->replay_claim(fx->inst, "idp", "old", 1000, &fx->err), &fx->err);

    expect_ok(OPS->revocation_list(fx->inst, 1000, see_revocation, &s, &fx->err), &fx->err);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.rows[0], "B|(null)|3000");
    assert_string_equal(s.rows[1], "b|c1|2000");
    memset(&s, 0, sizeof(s));
    expect_ok(OPS->token_list(fx->inst, 1000, see_token, &s, &fx->err), &fx->err);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.rows[0], "m|(null)|1001");
    assert_string_equal(s.rows[1], "z|j|5000");
    memset(&s, 0, sizeof(s));
    expect_ok(OPS->replay_list(fx->inst, 1000, see_replay, &s, &fx->err), &fx->err);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.rows[0], "IdP|y|2000");
    assert_string_equal(s.rows[1], "idp|x|2000");

    /* the callback stops a walk, and its code comes back */
    memset(&s, 0, sizeof(s));
    s.stop_after = 1;
    assert_int_equal(OPS->revocation_list(fx->inst, 0, see_revocation, &s, &fx->err),
                     MANDATE_DENIED);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.rows[0], "B|(null)|3000");
    memset(&s, 0, sizeof(s));
    s.stop_after = 1;
    assert_int_equal(OPS->token_list(fx->inst, 0, see_token, &s, &fx->err), MANDATE_DENIED);
    assert_int_equal(s.n, 1);
    memset(&s, 0, sizeof(s));
    s.stop_after = 1;
    assert_int_equal(OPS->replay_list(fx->inst, 0, see_replay, &s, &fx->err), MANDATE_DENIED);
    assert_int_equal(s.n, 1);

    assert_int_equal(OPS->revocation_list(fx->inst, 0, NULL, &s, &fx->err), MANDATE_INVALID);
    assert_int_equal(OPS->token_list(fx->inst, 0, NULL, &s, &fx->err), MANDATE_INVALID);
    assert_int_equal(OPS->replay_list(fx->inst, 0, NULL, &s, &fx->err), MANDATE_INVALID);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM revocations"), 3);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM tokens"), 3);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM replay"), 3);
}

int store_conformance_run(const store_target *t)
{
#define OPEN(test) cmocka_unit_test_setup_teardown(test, store_fx_setup_open, store_fx_teardown)
#define READY(test)                                                                            \
    cmocka_unit_test_setup_teardown(test, store_fx_setup_ready, store_fx_teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor),
        OPEN(test_migrate_fresh),
        OPEN(test_migrate_tables),
        OPEN(test_migrate_concurrent),
        READY(test_reopen),
        READY(test_newer_schema_refused),
        READY(test_client_crud),
        READY(test_client_duplicate),
        READY(test_client_list),
        READY(test_client_list_nested),
        READY(test_client_list_byte_order),
        READY(test_client_values),
        READY(test_client_import),
        READY(test_client_import_dup_in_batch),
        READY(test_keys),
        READY(test_tokens),
        READY(test_revoke),
        READY(test_replay),
        READY(test_purge),
        READY(test_generation),
        READY(test_live_lists),
        READY(test_two_instances),
        READY(test_threads),
        READY(test_token_threads),
        READY(test_replay_race),
    };
#undef OPEN
#undef READY
    char name[64];
    store_conformance_use(t);
    snprintf(name, sizeof(name), "store conformance: %s", t->plugin->name);
    return _cmocka_run_group_tests(name, tests, sizeof(tests) / sizeof(tests[0]), NULL, NULL);
}
