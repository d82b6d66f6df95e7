/* The sqlite store plugin, linked in directly and driven through its
 * descriptor with a fake host: the store conformance suite, each test on a
 * fresh database file in a fresh directory under /tmp, then what only the
 * sqlite store has (its conf keys, file mode, WAL, failures to open). */
#include "config.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include <mandate/store.h>

#include "fake-host.h"
#include "pool-private.h"
#include "store-conformance.h"

extern const mandate_plugin mandate_plugin_sqlite;

#define P (&mandate_plugin_sqlite)
#define OPS ((const mandate_store_ops *)mandate_plugin_sqlite.ops)

/* --- the target: a database file in a directory of its own ------------------ */

struct sqlite_store {
    char dir[64];
    char path[128];
};

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

static void *store_create(void)
{
    struct sqlite_store *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    strcpy(s->dir, "/tmp/mandate-sqlite-XXXXXX");
    assert_non_null(mkdtemp(s->dir));
    snprintf(s->path, sizeof(s->path), "%s/mandate.db", s->dir);
    return s;
}

static void store_configure(void *store, void *inst)
{
    struct sqlite_store *s = store;
    assert_int_equal(fake_conf_set(P, inst, "path", s->path), 0);
}

static void store_remove(void *store)
{
    struct sqlite_store *s = store;
    rmtree(s->dir);
    free(s);
}

/* Runs one statement on the database file through a connection of our own. */
static void store_exec(void *store, const char *sql)
{
    struct sqlite_store *s = store;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(s->path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
    sqlite3_close(db);
}

static int64_t store_query_int(void *store, const char *sql)
{
    struct sqlite_store *s = store;
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_open(s->path, &db), SQLITE_OK);
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return v;
}

static const store_target sqlite_target = {
    .plugin = &mandate_plugin_sqlite,
    .create = store_create,
    .configure = store_configure,
    .remove = store_remove,
    .exec = store_exec,
    .query_int = store_query_int,
};

/* --- sqlite only --------------------------------------------------------------- */

static void test_descriptor(void **state)
{
    assert_string_equal(P->name, "sqlite");

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

/* The file: created private and empty by instantiate, in WAL mode, with the
 * indexes once migrated. */
static void test_file(void **state)
{
    struct store_fx *fx = *state;
    struct sqlite_store *s = fx->store;
    char expect[256];

    struct stat st;
    assert_int_equal(stat(s->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(store_query_int(s, "SELECT count(*) FROM sqlite_master"), 0);

    store_expect_ok(OPS->migrate(fx->inst, &fx->err), &fx->err);
    int version = -1;
    store_expect_ok(OPS->schema_version(fx->inst, &version, &fx->err), &fx->err);
    snprintf(expect, sizeof(expect), "sqlite: %s: migrated to schema version %d", s->path,
             version);
    assert_string_equal(fake_host_last_log(), expect);
    assert_int_equal(store_query_int(s, "SELECT count(*) FROM sqlite_master "
                                        "WHERE type = 'index' AND name IN "
                                        "('clients_tenant', 'tokens_expires_at')"),
                     2);

    /* WAL mode sticks to the file */
    sqlite3 *db;
    sqlite3_stmt *stmt;
    assert_int_equal(sqlite3_open(s->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "wal");
    sqlite3_finalize(stmt);
    sqlite3_close(db);
}

/* A database of schema version 1 (before sign-in) with a client in it:
 * refused until migrated, then its client has no metadata and the sign-in
 * tables serve. */
static void test_migrate_from_1(void **state)
{
    struct store_fx *fx = *state;
    struct sqlite_store *s = fx->store;
    mandate_client in = {
        .client_id = "old", .tenant = "acme", .status = MANDATE_CLIENT_ENABLED};
    mandate_client out;
    int version = -1;

    store_expect_ok(OPS->client_create(fx->inst, &in, &fx->err), &fx->err);
    store_inst_free(fx->inst);
    store_exec(s, "DROP TABLE once; DROP TABLE auth_codes; DROP TABLE refresh_families; "
                  "DROP TABLE refresh_tokens; DROP TABLE sessions; DROP TABLE consents; "
                  "DROP TABLE client_documents; DROP TABLE lineage; "
                  "ALTER TABLE clients DROP COLUMN metadata; "
                  "UPDATE schema_version SET version = 1");
    fx->inst = store_inst_open(s);
    assert_int_equal(OPS->client_get(fx->inst, fx->pool, "old", &out, &fx->err), MANDATE_ERROR);
    assert_non_null(strstr(fx->err.message, "older than"));

    store_expect_ok(OPS->migrate(fx->inst, &fx->err), &fx->err);
    assert_non_null(strstr(fake_host_last_log(), "migrated to schema version 2"));
    store_expect_ok(OPS->schema_version(fx->inst, &version, &fx->err), &fx->err);
    assert_int_equal(version, 2);
    store_expect_ok(OPS->client_get(fx->inst, fx->pool, "old", &out, &fx->err), &fx->err);
    assert_null(out.metadata);
    static const unsigned char key[32] = {1};
    store_expect_ok(OPS->once_put(fx->inst, "par", key, sizeof(key), "v", INT64_MAX, &fx->err),
                    &fx->err);
}

static void test_instantiate_failures(void **state)
{
    mandate_error err = {0};
    struct sqlite_store *s = store_create();
    void *inst;

    /* a directory that does not exist */
    snprintf(s->path, sizeof(s->path), "%s/missing/mandate.db", s->dir);
    inst = store_inst_new(s);
    assert_int_equal(P->instantiate(inst, fake_host_get(), &err), MANDATE_TEMPFAIL);
    assert_non_null(strstr(err.message, s->path));
    store_inst_free(inst);

    /* a file that is not a database */
    snprintf(s->path, sizeof(s->path), "%s/garbage.db", s->dir);
    FILE *f = fopen(s->path, "w");
    assert_non_null(f);
    for (int i = 0; i < 200; i++)
        fputs("this is not an SQLite database ", f);
    fclose(f);
    inst = store_inst_new(s);
    assert_int_equal(P->instantiate(inst, fake_host_get(), &err), MANDATE_ERROR);
    assert_non_null(strstr(err.message, "not a database"));
    store_inst_free(inst);

    store_remove(s);
}

/* Token record i of a numbered series, and the check that all n are there. */
static void put_numbered(void *inst, int i)
{
    mandate_error err = {0};
    unsigned char hash[32];
    memset(hash, 0xc3, sizeof(hash));
    hash[0] = (unsigned char)(i >> 8);
    hash[1] = (unsigned char)i;
    mandate_token_record rec = {.token_hash = hash,
                                .token_hash_len = sizeof(hash),
                                .jti = "a-jti-of-some-length-0123456789",
                                .client_id = "agent",
                                .grant = "{\"scope\":\"read write\"}",
                                .issued_at = 1000,
                                .expires_at = 2000};
    store_expect_ok(OPS->token_put(inst, &rec, &err), &err);
}

static void expect_numbered(void *inst, int n)
{
    mandate_error err = {0};
    mandate_pool *pool = mandate_pool_new();
    for (int i = 0; i < n; i++) {
        unsigned char hash[32];
        mandate_token_record out;
        memset(hash, 0xc3, sizeof(hash));
        hash[0] = (unsigned char)(i >> 8);
        hash[1] = (unsigned char)i;
        store_expect_ok(OPS->token_get(inst, pool, hash, sizeof(hash), 1500, &out, &err), &err);
        mandate_pool_clear(pool);
    }
    mandate_pool_free(&pool);
}

/* No connection that serves a request checkpoints: the checkpoint thread
 * copies the WAL into the database file, and makes the WAL start over once it
 * holds four times checkpoint_pages pages; every record stays readable. */
static void test_checkpoint_thread(void **state)
{
    (void)state;
    mandate_error err = {0};
    struct sqlite_store *s = store_create();
    void *inst = store_inst_new(s);
    assert_int_equal(fake_conf_set(P, inst, "checkpoint_pages", "99"), -1);
    assert_int_equal(fake_conf_set(P, inst, "checkpoint_pages", "100"), 0);
    assert_int_equal(P->instantiate(inst, fake_host_get(), &err), MANDATE_OK);
    store_expect_ok(OPS->migrate(inst, &err), &err);
    char wal[160];
    snprintf(wal, sizeof(wal), "%s-wal", s->path);
    struct stat st;
    assert_int_equal(stat(s->path, &st), 0);
    off_t db_before = st.st_size;

    /* a commit of three or four pages each, in rounds the thread can catch
     * up with (the WAL may overshoot by what one checkpoint lets through) */
    enum { N = 2000, ROUND = 200 };
    for (int i = 0; i < N; i++) {
        put_numbered(inst, i);
        if (i % ROUND == ROUND - 1)
            usleep(200 * 1000);
    }
    /* the thread copied pages into the database file (nothing else
     * checkpoints while the instance is open) */
    assert_int_equal(stat(s->path, &st), 0);
    assert_true(st.st_size > db_before + 256 * 1024);
    /* and the WAL started over rather than growing with every commit: its
     * file would hold about 27 MiB, where a round is about 3 MiB */
    assert_int_equal(stat(wal, &st), 0);
    assert_true(st.st_size < 12 * 1024 * 1024);

    expect_numbered(inst, N);
    store_inst_free(inst);
    /* the last connection closed: SQLite copied the rest and removed the WAL */
    assert_int_not_equal(stat(wal, &st), 0);
    store_remove(s);
}

/* --- a VFS over the default one whose database-file syncs can be made to fail */

static sqlite3_vfs *real_vfs;
static sqlite3_vfs failing_vfs;
static atomic_int database_syncs_to_fail;

typedef struct shim_file {
    sqlite3_file base;
    bool main_db;
    sqlite3_file *real; /* right after this struct, real_vfs->szOsFile bytes */
} shim_file;

#define REAL(f) (((shim_file *)(f))->real)
static int shim_close(sqlite3_file *f)
{
    return REAL(f)->pMethods->xClose(REAL(f));
}
static int shim_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o)
{
    return REAL(f)->pMethods->xRead(REAL(f), b, n, o);
}
static int shim_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
{
    return REAL(f)->pMethods->xWrite(REAL(f), b, n, o);
}
static int shim_truncate(sqlite3_file *f, sqlite3_int64 n)
{
    return REAL(f)->pMethods->xTruncate(REAL(f), n);
}
static int shim_sync(sqlite3_file *f, int flags)
{
    /* as Linux does, the error is told once: the next sync succeeds */
    if (((shim_file *)f)->main_db) {
        int n = atomic_load(&database_syncs_to_fail);
        while (n > 0 && !atomic_compare_exchange_weak(&database_syncs_to_fail, &n, n - 1))
            ;
        if (n > 0)
            return SQLITE_IOERR_FSYNC;
    }
    return REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int shim_size(sqlite3_file *f, sqlite3_int64 *n)
{
    return REAL(f)->pMethods->xFileSize(REAL(f), n);
}
static int shim_lock(sqlite3_file *f, int l)
{
    return REAL(f)->pMethods->xLock(REAL(f), l);
}
static int shim_unlock(sqlite3_file *f, int l)
{
    return REAL(f)->pMethods->xUnlock(REAL(f), l);
}
static int shim_reserved(sqlite3_file *f, int *r)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), r);
}
static int shim_fcntl(sqlite3_file *f, int op, void *arg)
{
    /* SQLITE_FCNTL_FILE_POINTER is answered by SQLite above the VFS */
    return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int shim_sector(sqlite3_file *f)
{
    return REAL(f)->pMethods->xSectorSize(REAL(f));
}
static int shim_caps(sqlite3_file *f)
{
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int shim_shm_map(sqlite3_file *f, int i, int sz, int ext, void volatile **p)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), i, sz, ext, p);
}
static int shim_shm_lock(sqlite3_file *f, int o, int n, int fl)
{
    return REAL(f)->pMethods->xShmLock(REAL(f), o, n, fl);
}
static void shim_shm_barrier(sqlite3_file *f)
{
    REAL(f)->pMethods->xShmBarrier(REAL(f));
}
static int shim_shm_unmap(sqlite3_file *f, int del)
{
    return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static const sqlite3_io_methods shim_methods = {
    .iVersion = 2, /* no xFetch: no memory-mapped reads */
    .xClose = shim_close,
    .xRead = shim_read,
    .xWrite = shim_write,
    .xTruncate = shim_truncate,
    .xSync = shim_sync,
    .xFileSize = shim_size,
    .xLock = shim_lock,
    .xUnlock = shim_unlock,
    .xCheckReservedLock = shim_reserved,
    .xFileControl = shim_fcntl,
    .xSectorSize = shim_sector,
    .xDeviceCharacteristics = shim_caps,
    .xShmMap = shim_shm_map,
    .xShmLock = shim_shm_lock,
    .xShmBarrier = shim_shm_barrier,
    .xShmUnmap = shim_shm_unmap,
};

static int shim_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out)
{
    (void)vfs;
    shim_file *s = (shim_file *)f;
    s->real = (sqlite3_file *)(s + 1);
    s->main_db = (flags & SQLITE_OPEN_MAIN_DB) != 0;
    int rc = real_vfs->xOpen(real_vfs, name, s->real, flags, out);
    s->base.pMethods = rc == SQLITE_OK ? &shim_methods : NULL;
    return rc;
}

/* Makes it the default VFS (every connection the store opens uses it). */
static void failing_vfs_register(void)
{
    real_vfs = sqlite3_vfs_find(NULL);
    failing_vfs = *real_vfs;
    failing_vfs.zName = "failing-sync";
    failing_vfs.szOsFile = (int)sizeof(shim_file) + real_vfs->szOsFile;
    failing_vfs.xOpen = shim_open;
    assert_int_equal(sqlite3_vfs_register(&failing_vfs, 1), SQLITE_OK);
}

static void failing_vfs_unregister(void)
{
    sqlite3_vfs_unregister(&failing_vfs);
    sqlite3_vfs_register(real_vfs, 1);
}

/* When the database file cannot be flushed once, the checkpoint thread says
 * so and checkpoints no more: the WAL keeps every commit, since the next
 * flush may succeed with the pages of the failed one lost (Linux reports a
 * writeback error once); nothing is lost at the next start. */
static void test_checkpoint_flush_failure(void **state)
{
    (void)state;
    failing_vfs_register();
    mandate_error err = {0};
    struct sqlite_store *s = store_create();
    void *inst = store_inst_new(s);
    assert_int_equal(fake_conf_set(P, inst, "checkpoint_pages", "100"), 0);
    assert_int_equal(P->instantiate(inst, fake_host_get(), &err), MANDATE_OK);
    store_expect_ok(OPS->migrate(inst, &err), &err);
    char wal[160];
    snprintf(wal, sizeof(wal), "%s-wal", s->path);
    fake_host_clear_log();
    atomic_store(&database_syncs_to_fail, 1);

    enum { N = 2000, ROUND = 200 };
    for (int i = 0; i < N; i++) {
        put_numbered(inst, i);
        if (i % ROUND == ROUND - 1)
            usleep(200 * 1000);
    }
    assert_int_equal(atomic_load(&database_syncs_to_fail), 0);
    assert_non_null(strstr(fake_host_last_log(), "no more checkpoints"));
    /* no restart: about 27 MiB of WAL, where restarts keep it under 12 */
    struct stat st;
    assert_int_equal(stat(wal, &st), 0);
    assert_true(st.st_size > 16 * 1024 * 1024);
    expect_numbered(inst, N);

    /* closing copies the WAL in; every record is there */
    store_inst_free(inst);
    failing_vfs_unregister();
    inst = store_inst_new(s);
    assert_int_equal(P->instantiate(inst, fake_host_get(), &err), MANDATE_OK);
    expect_numbered(inst, N);
    store_inst_free(inst);
    store_remove(s);
}

int main(void)
{
    int failures = store_conformance_run(&sqlite_target);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor),
        cmocka_unit_test_setup_teardown(test_file, store_fx_setup_open, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_migrate_from_1, store_fx_setup_ready,
                                        store_fx_teardown),
        cmocka_unit_test(test_instantiate_failures),
        cmocka_unit_test(test_checkpoint_thread),
        cmocka_unit_test(test_checkpoint_flush_failure),
    };
    return failures + cmocka_run_group_tests_name("sqlite store", tests, NULL, NULL);
}
