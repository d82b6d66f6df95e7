/* The sqlite store plugin, linked in directly and driven through its
 * descriptor with a fake host. Each test gets a fresh directory under /tmp. */
#include "config.h"

#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include <mandate/store.h>

#include "fake-host.h"
#include "pool-private.h"

extern const mandate_plugin mandate_plugin_sqlite;

#define P (&mandate_plugin_sqlite)
#define OPS ((const mandate_store_ops *)mandate_plugin_sqlite.ops)

struct fx {
    char dir[64];
    char path[128];
    void *inst;
    mandate_pool *pool;
    mandate_error err;
};

/* --- helpers ----------------------------------------------------------------- */

static void rmtree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *e;
        char path[512];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* An instance with its conf defaults and the given path, not instantiated. */
static void *inst_new(const char *path)
{
    void *inst = calloc(1, P->inst_size);
    assert_non_null(inst);
    assert_int_equal(fake_conf_defaults(P, inst), 0);
    assert_int_equal(fake_conf_set(P, inst, "path", path), 0);
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

static void *inst_open(const char *path)
{
    mandate_error err = {0};
    void *inst = inst_new(path);
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

static int setup_open(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    strcpy(fx->dir, "/tmp/mandate-sqlite-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof(fx->path), "%s/mandate.db", fx->dir);
    fake_host_unset_now();
    fake_host_clear_log();
    fx->inst = inst_open(fx->path);
    fx->pool = mandate_pool_new();
    *state = fx;
    return 0;
}

static int setup_ready(void **state)
{
    setup_open(state);
    struct fx *fx = *state;
    expect_ok(OPS->migrate(fx->inst, &fx->err), &fx->err);
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    inst_free(fx->inst);
    mandate_pool_free(&fx->pool);
    rmtree(fx->dir);
    free(fx);
    fake_host_unset_now();
    return 0;
}

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

static uint64_t generation(struct fx *fx)
{
    uint64_t g = 0;
    expect_ok(OPS->generation(fx->inst, &g, &fx->err), &fx->err);
    return g;
}

/* Runs one statement on the database file through a connection of our own. */
static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
    sqlite3_close(db);
}

static int64_t raw_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return v;
}

/* Client ids a list call saw, in order. */
struct seen {
    char ids[64][32];
    size_t n;
    size_t stop_after; /* 0: never stop */
    mandate_rc stop_rc;
    struct fx *fx; /* for callbacks that call back into the store */
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

static size_t client_count(struct fx *fx, const char *tenant)
{
    size_t n = 0;
    mandate_client_filter filter = {.tenant = tenant};
    expect_ok(OPS->client_list(fx->inst, &filter, count_client, &n, &fx->err), &fx->err);
    return n;
}

static void list_ids(struct fx *fx, const char *tenant, const char *after, size_t limit,
                     struct seen *s)
{
    memset(s->ids, 0, sizeof(s->ids));
    s->n = 0;
    mandate_client_filter filter = {.tenant = tenant, .after = after, .limit = limit};
    expect_ok(OPS->client_list(fx->inst, &filter, collect_client, s, &fx->err), &fx->err);
}

/* --- descriptor and lifecycle ------------------------------------------------ */

static void test_descriptor(void **state)
{
    assert_int_equal(P->magic, MANDATE_PLUGIN_MAGIC);
    assert_int_equal(P->abi_major, MANDATE_PLUGIN_ABI_MAJOR);
    assert_int_equal(P->kind, MANDATE_STORE);
    assert_string_equal(P->name, "sqlite");
    assert_non_null(P->version);
    assert_non_null(P->instantiate);
    assert_non_null(P->destroy);
    assert_non_null(OPS);

    void *inst = calloc(1, P->inst_size);
    assert_non_null(inst);
    assert_int_equal(fake_conf_defaults(P, inst), 0);
    const mandate_conf_def *path = NULL, *busy = NULL, *sync = NULL;
    for (const mandate_conf_def *d = P->conf; d->key != NULL; d++) {
        if (strcmp(d->key, "path") == 0)
            path = d;
        else if (strcmp(d->key, "busy_timeout") == 0)
            busy = d;
        else if (strcmp(d->key, "synchronous") == 0)
            sync = d;
    }
    assert_non_null(path);
    assert_non_null(busy);
    assert_non_null(sync);
    assert_int_equal(path->type, MANDATE_CONF_PATH);
    assert_int_equal(busy->type, MANDATE_CONF_INT);
    assert_int_equal(sync->type, MANDATE_CONF_STRING);
    assert_string_equal(*(char **)(void *)((char *)inst + path->offset), "mandate.db");
    int64_t timeout;
    memcpy(&timeout, (char *)inst + busy->offset, sizeof(timeout));
    assert_int_equal(timeout, 5000);
    assert_string_equal(*(char **)(void *)((char *)inst + sync->offset), "normal");
    /* the conf table's bounds and choices hold */
    assert_int_equal(fake_conf_set(P, inst, "busy_timeout", "600001"), -1);
    assert_int_equal(fake_conf_set(P, inst, "busy_timeout", "-1"), -1);
    assert_int_equal(fake_conf_set(P, inst, "synchronous", "off"), -1);
    assert_int_equal(fake_conf_set(P, inst, "synchronous", "full"), 0);
    assert_string_equal(*(char **)(void *)((char *)inst + sync->offset), "full");
    fake_conf_free(P, inst);
    free(inst);
}

static void test_migrate_fresh(void **state)
{
    struct fx *fx = *state;
    int version = -1;
    uint64_t gen;
    mandate_client client;

    /* created private, in WAL mode, without a schema */
    struct stat st;
    assert_int_equal(stat(fx->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    expect_ok(OPS->schema_version(fx->inst, &version, &fx->err), &fx->err);
    assert_int_equal(version, 0);
    assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM sqlite_master"), 0);

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
    struct fx *fx = *state;
    int version = -1, again = -1;
    char expect[256];

    expect_ok(OPS->migrate(fx->inst, &fx->err), &fx->err);
    expect_ok(OPS->schema_version(fx->inst, &version, &fx->err), &fx->err);
    assert_true(version >= 1);
    snprintf(expect, sizeof(expect), "sqlite: %s: migrated to schema version %d", fx->path,
             version);
    assert_string_equal(fake_host_last_log(), expect);
    assert_int_equal(raw_int(fx->path, "SELECT version FROM schema_version"), version);
    assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM sqlite_master "
                                       "WHERE type = 'table' AND name IN ('clients', "
                                       "'keys', 'tokens', 'revocations', 'replay', "
                                       "'meta', 'schema_version')"),
                     7);
    assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM sqlite_master "
                                       "WHERE type = 'index' AND name IN "
                                       "('clients_tenant', 'tokens_expires_at')"),
                     2);
    assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM schema_version"), 1);
    assert_int_equal(raw_int(fx->path, "SELECT value FROM meta WHERE name = 'generation'"), 0);

    /* a second run is a no-op */
    fake_host_clear_log();
    expect_ok(OPS->migrate(fx->inst, &fx->err), &fx->err);
    expect_ok(OPS->schema_version(fx->inst, &again, &fx->err), &fx->err);
    assert_int_equal(again, version);
    assert_string_equal(fake_host_last_log(), "");
    assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM schema_version"), 1);

    expect_ok(OPS->ping(fx->inst, &fx->err), &fx->err);
    assert_int_equal(generation(fx), 0);

    /* WAL mode sticks to the file */
    sqlite3 *db;
    sqlite3_stmt *stmt;
    assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "wal");
    sqlite3_finalize(stmt);
    sqlite3_close(db);
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
    struct fx *fx = *state;
    pthread_barrier_t barrier;
    pthread_t threads[2];
    struct migrator m[2] = {{fx->inst, MANDATE_ERROR, {0}, &barrier},
                            {inst_open(fx->path), MANDATE_ERROR, {0}, &barrier}};
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
    assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM meta"), 1);
    mandate_client c = sample_client("after-race", "t");
    expect_ok(OPS->client_create(m[1].inst, &c, &fx->err), &fx->err);
    inst_free(m[1].inst);
}

static void test_reopen(void **state)
{
    struct fx *fx = *state;
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
    fx->inst = inst_open(fx->path);
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
    struct fx *fx = *state;
    mandate_client client;
    int version = -1;
    uint64_t gen;

    inst_free(fx->inst);
    fx->inst = NULL;
    raw_exec(fx->path, "UPDATE schema_version SET version = 999");
    fx->inst = inst_open(fx->path);

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
    assert_int_equal(raw_int(fx->path, "SELECT version FROM schema_version"), 999);
}

static void test_instantiate_failures(void **state)
{
    mandate_error err = {0};
    char dir[] = "/tmp/mandate-sqlite-XXXXXX";
    char path[128];
    assert_non_null(mkdtemp(dir));

    /* a directory that does not exist */
    snprintf(path, sizeof(path), "%s/missing/mandate.db", dir);
    void *inst = inst_new(path);
    assert_int_equal(P->instantiate(inst, fake_host_get(), &err), MANDATE_TEMPFAIL);
    assert_non_null(strstr(err.message, path));
    inst_free(inst);

    /* a file that is not a database */
    snprintf(path, sizeof(path), "%s/garbage.db", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 200; i++)
        fputs("this is not an SQLite database ", f);
    fclose(f);
    inst = inst_new(path);
    assert_int_equal(P->instantiate(inst, fake_host_get(), &err), MANDATE_ERROR);
    assert_non_null(strstr(err.message, "not a database"));
    inst_free(inst);

    rmtree(dir);
}

/* --- clients ------------------------------------------------------------------ */

static void test_client_crud(void **state)
{
    struct fx *fx = *state;
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
    struct fx *fx = *state;
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
    struct fx *fx = *state;
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
    struct fx *fx = s->fx;
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
    struct fx *fx = *state;
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
    struct fx *fx = *state;
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
    assert_true(secs < (valgrind ? 20.0 : 1.0));

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
    struct fx *fx = *state;
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

static void list_keys(struct fx *fx, struct key_seen *s)
{
    memset(s, 0, sizeof(*s));
    expect_ok(OPS->key_list(fx->inst, collect_key, s, &fx->err), &fx->err);
}

static void test_keys(void **state)
{
    struct fx *fx = *state;
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
    struct fx *fx = *state;
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
    struct fx *fx = *state;
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
    assert_int_equal(raw_int(fx->path, "SELECT expires_at FROM revocations"), 2000);
    expect_ok(OPS->revoke(fx->inst, "jti-1", "agent-1", 3000, &fx->err), &fx->err);
    assert_int_equal(raw_int(fx->path, "SELECT expires_at FROM revocations"), 3000);
    assert_int_equal(raw_int(fx->path, "SELECT revoked_at FROM revocations"), 1000);
    assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM revocations"), 1);
    expect_ok(OPS->is_revoked(fx->inst, "jti-2", &revoked, &fx->err), &fx->err);
    assert_false(revoked);
}

static void test_replay(void **state)
{
    struct fx *fx = *state;

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
    assert_int_equal(raw_int(fx->path, "SELECT expires_at FROM replay "
                                       "WHERE ns = 'idp-a' AND id = 'assertion-1'"),
                     1300);
    /* expired: may be claimed again, for the new period */
    fake_host_set_now(1300);
    expect_ok(OPS->replay_claim(fx->inst, "idp-a", "assertion-1", 1900, &fx->err), &fx->err);
    assert_int_equal(raw_int(fx->path, "SELECT expires_at FROM replay "
                                       "WHERE ns = 'idp-a' AND id = 'assertion-1'"),
                     1900);
    assert_int_equal(OPS->replay_claim(fx->inst, "idp-a", "assertion-1", 1900, &fx->err),
                     MANDATE_EXISTS);
    assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM replay"), 3);
}

static void test_purge(void **state)
{
    struct fx *fx = *state;
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

    assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM tokens"), 1);
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
    assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM replay"), 1);
}

static void test_generation(void **state)
{
    struct fx *fx = *state;
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
    struct fx *fx = *state;
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

/* The same replay id claimed by many threads at once: exactly one wins. */
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
    struct fx *fx = *state;
    pthread_t threads[THREADS];
    struct claimer claimers[THREADS];
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, THREADS);
    for (int i = 0; i < THREADS; i++) {
        claimers[i] = (struct claimer){.inst = fx->inst, .barrier = &barrier};
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
    assert_int_equal(wins, 50);
    assert_int_equal(replays, (THREADS - 1) * 50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor),
        cmocka_unit_test_setup_teardown(test_migrate_fresh, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_tables, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_concurrent, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_reopen, setup_ready, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup_ready, teardown),
        cmocka_unit_test(test_instantiate_failures),
        cmocka_unit_test_setup_teardown(test_client_crud, setup_ready, teardown),
        cmocka_unit_test_setup_teardown(test_client_duplicate, setup_ready, teardown),
        cmocka_unit_test_setup_teardown(test_client_list, setup_ready, teardown),
        cmocka_unit_test_setup_teardown(test_client_list_nested, setup_ready, teardown),
        cmocka_unit_test_setup_teardown(test_client_import, setup_ready, teardown),
        cmocka_unit_test_setup_teardown(test_client_import_dup_in_batch, setup_ready, teardown),
        cmocka_unit_test_setup_teardown(test_keys, setup_ready, teardown),
        cmocka_unit_test_setup_teardown(test_tokens, setup_ready, teardown),
        cmocka_unit_test_setup_teardown(test_revoke, setup_ready, teardown),
        cmocka_unit_test_setup_teardown(test_replay, setup_ready, teardown),
        cmocka_unit_test_setup_teardown(test_purge, setup_ready, teardown),
        cmocka_unit_test_setup_teardown(test_generation, setup_ready, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup_ready, teardown),
        cmocka_unit_test_setup_teardown(test_replay_race, setup_ready, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
