/* The pgsql store plugin, linked in directly and driven through its
 * descriptor with a fake host: the store conformance suite, each test on a
 * fresh database, then what only the pgsql store has: its conf keys, a
 * secret-free refusal of a bad conninfo, and how it fails and recovers when
 * the server refuses, goes silent, terminates its connection, cancels a
 * statement or restarts.
 *
 * The server is $MANDATE_TEST_PGSQL (a conninfo or URI for a superuser, or
 * a role that may create databases); without it the test skips (77).
 * tests/store-pgsql.sh starts one and sets it, and also sets
 * MANDATE_TEST_PGSQL_CTL and MANDATE_TEST_PGSQL_DIR so the restart test can
 * stop and start that server ("$CTL stop|start $DIR"). */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include <mandate/store.h>

#include "fake-host.h"
#include "store-conformance.h"

extern const mandate_plugin mandate_plugin_pgsql;

#define P (&mandate_plugin_pgsql)
#define OPS ((const mandate_store_ops *)mandate_plugin_pgsql.ops)

static const char *base_conninfo; /* $MANDATE_TEST_PGSQL */
static PGconn *admin;             /* to create and drop the test databases */
static bool have_icu; /* databases get an ICU collation that does not sort by bytes */
static unsigned db_count;

static double now_secs(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --- conninfo ------------------------------------------------------------------ */

static void put_value(FILE *f, const char *keyword, const char *value)
{
    fprintf(f, "%s='", keyword);
    for (const char *p = value; *p != '\0'; p++) {
        if (*p == '\'' || *p == '\\')
            fputc('\\', f);
        fputc(*p, f);
    }
    fputs("' ", f);
}

/* $MANDATE_TEST_PGSQL with dbname (and host and port when not NULL)
 * replaced; malloc'ed. */
static char *conninfo_with(const char *dbname, const char *host, const char *port)
{
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(base_conninfo, &msg);
    if (opts == NULL)
        fail_msg("MANDATE_TEST_PGSQL does not parse: %s", msg != NULL ? msg : "?");
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    assert_non_null(f);
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (o->val == NULL || o->val[0] == '\0' || strcmp(o->keyword, "dbname") == 0)
            continue;
        if (host != NULL &&
            (strcmp(o->keyword, "host") == 0 || strcmp(o->keyword, "hostaddr") == 0 ||
             strcmp(o->keyword, "port") == 0))
            continue;
        put_value(f, o->keyword, o->val);
    }
    if (host != NULL) {
        put_value(f, "host", host);
        put_value(f, "port", port);
    }
    put_value(f, "dbname", dbname);
    fclose(f);
    PQconninfoFree(opts);
    return out;
}

static PGresult *admin_run(const char *sql, bool may_fail)
{
    PGresult *res = PQexec(admin, sql);
    if (PQstatus(admin) != CONNECTION_OK) { /* the server restarted under it */
        PQclear(res);
        PQreset(admin);
        res = PQexec(admin, sql);
    }
    ExecStatusType st = PQresultStatus(res);
    if (!may_fail && st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(admin));
    return res;
}

static void admin_exec(const char *sql)
{
    PQclear(admin_run(sql, false));
}

static int64_t admin_int(const char *sql)
{
    PGresult *res = admin_run(sql, false);
    assert_true(PQntuples(res) > 0);
    int64_t v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return v;
}

/* --- the target: a database of its own per test ------------------------- */

struct pg_store {
    char name[64];
    char *conninfo; /* for the plugin */
    PGconn *raw;    /* the test's own, on first use */
};

static void create_database(const char *name, bool icu)
{
    char sql[256];
    /* template0: every database starts empty, whatever template1 holds */
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s TEMPLATE template0%s", name,
             icu ? " LOCALE_PROVIDER icu ICU_LOCALE 'en-US'" : "");
    admin_exec(sql);
}

static void *store_create(void)
{
    struct pg_store *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    snprintf(s->name, sizeof(s->name), "mandate_t_%ld_%u", (long)getpid(), db_count++);
    create_database(s->name, have_icu);
    s->conninfo = conninfo_with(s->name, NULL, NULL);
    return s;
}

static void store_configure(void *store, void *inst)
{
    struct pg_store *s = store;
    assert_int_equal(fake_conf_set(P, inst, "conninfo", s->conninfo), 0);
}

static void raw_close(struct pg_store *s)
{
    if (s->raw != NULL)
        PQfinish(s->raw);
    s->raw = NULL;
}

static void store_remove(void *store)
{
    struct pg_store *s = store;
    char sql[128];
    raw_close(s);
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", s->name);
    admin_exec(sql);
    free(s->conninfo);
    free(s);
}

static PGresult *raw_run(struct pg_store *s, const char *sql)
{
    if (s->raw == NULL || PQstatus(s->raw) != CONNECTION_OK) {
        raw_close(s);
        s->raw = PQconnectdb(s->conninfo);
        if (PQstatus(s->raw) != CONNECTION_OK)
            fail_msg("connecting to %s: %s", s->name, PQerrorMessage(s->raw));
    }
    PGresult *res = PQexec(s->raw, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(s->raw));
    return res;
}

static void store_exec(void *store, const char *sql)
{
    PQclear(raw_run(store, sql));
}

static int64_t store_query_int(void *store, const char *sql)
{
    PGresult *res = raw_run(store, sql);
    if (PQntuples(res) < 1)
        fail_msg("%s: no row", sql);
    int64_t v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return v;
}

static const store_target pgsql_target = {
    .plugin = &mandate_plugin_pgsql,
    .create = store_create,
    .configure = store_configure,
    .remove = store_remove,
    .exec = store_exec,
    .query_int = store_query_int,
    /* a round trip per statement, sanitizers: a bound for "not one by one" */
};

/* An instance on the fixture's database with conf keys of the test's own,
 * instantiated; rc is instantiate's. */
static void *inst_with(struct store_fx *fx, const char *const *kv, mandate_rc *rc_r,
                       mandate_error *err)
{
    void *inst = store_inst_new(fx->store);
    for (; kv != NULL && kv[0] != NULL; kv += 2)
        assert_int_equal(fake_conf_set(P, inst, kv[0], kv[1]), 0);
    *rc_r = P->instantiate(inst, fake_host_get(), err);
    return inst;
}

/* --- a TCP proxy to the server that can go silent --------------------------- */

#define PROXY_PAIRS 8

struct proxy {
    int listen_fd;
    char port[16];
    struct sockaddr_storage upstream;
    socklen_t upstream_len;
    int pairs[PROXY_PAIRS][2]; /* client side, server side; -1: free */
    atomic_bool silent;        /* accepts nothing, forwards nothing */
    atomic_bool stop;
    pthread_t thread;
};

static void pair_close(struct proxy *px, int i)
{
    close(px->pairs[i][0]);
    close(px->pairs[i][1]);
    px->pairs[i][0] = px->pairs[i][1] = -1;
}

static bool forward(int from, int to)
{
    char buf[16384];
    ssize_t n = read(from, buf, sizeof(buf));
    if (n <= 0)
        return false;
    for (ssize_t off = 0; off < n;) {
        ssize_t w = send(to, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
        if (w <= 0)
            return false;
        off += w;
    }
    return true;
}

static void *proxy_main(void *arg)
{
    struct proxy *px = arg;
    while (!atomic_load(&px->stop)) {
        struct pollfd fds[1 + 2 * PROXY_PAIRS];
        int who[1 + 2 * PROXY_PAIRS];
        nfds_t n = 0;
        bool silent = atomic_load(&px->silent);
        if (!silent) {
            fds[n] = (struct pollfd){.fd = px->listen_fd, .events = POLLIN};
            who[n++] = -1;
            for (int i = 0; i < PROXY_PAIRS; i++)
                for (int side = 0; side < 2 && px->pairs[i][0] >= 0; side++) {
                    fds[n] = (struct pollfd){.fd = px->pairs[i][side], .events = POLLIN};
                    who[n++] = i * 2 + side;
                }
        }
        if (poll(fds, n, 50) <= 0)
            continue;
        for (nfds_t k = 0; k < n; k++) {
            if (fds[k].revents == 0)
                continue;
            if (who[k] < 0) {
                int c = accept(px->listen_fd, NULL, NULL);
                int u = c >= 0 ? socket(px->upstream.ss_family, SOCK_STREAM, 0) : -1;
                int free_slot = -1;
                for (int i = 0; i < PROXY_PAIRS && free_slot < 0; i++)
                    if (px->pairs[i][0] < 0)
                        free_slot = i;
                if (u < 0 || free_slot < 0 ||
                    connect(u, (struct sockaddr *)&px->upstream, px->upstream_len) != 0) {
                    if (c >= 0)
                        close(c);
                    if (u >= 0)
                        close(u);
                    continue;
                }
                px->pairs[free_slot][0] = c;
                px->pairs[free_slot][1] = u;
                continue;
            }
            int i = who[k] / 2, side = who[k] % 2;
            if (px->pairs[i][0] >= 0 && !forward(px->pairs[i][side], px->pairs[i][1 - side]))
                pair_close(px, i);
        }
    }
    return NULL;
}

/* The server the admin connection reaches, by TCP or Unix socket. */
static void proxy_start(struct proxy *px)
{
    memset(px, 0, sizeof(*px));
    for (int i = 0; i < PROXY_PAIRS; i++)
        px->pairs[i][0] = px->pairs[i][1] = -1;
    const char *host = PQhost(admin), *port = PQport(admin);
    assert_non_null(host);
    assert_non_null(port);
    if (host[0] == '/') {
        struct sockaddr_un *un = (struct sockaddr_un *)&px->upstream;
        un->sun_family = AF_UNIX;
        snprintf(un->sun_path, sizeof(un->sun_path), "%s/.s.PGSQL.%s", host, port);
        px->upstream_len = sizeof(*un);
    } else {
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
        assert_int_equal(getaddrinfo(host, port, &hints, &ai), 0);
        memcpy(&px->upstream, ai->ai_addr, ai->ai_addrlen);
        px->upstream_len = ai->ai_addrlen;
        freeaddrinfo(ai);
    }
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    px->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(px->listen_fd >= 0);
    assert_int_equal(bind(px->listen_fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(px->listen_fd, 16), 0);
    assert_int_equal(getsockname(px->listen_fd, (struct sockaddr *)&sin, &len), 0);
    snprintf(px->port, sizeof(px->port), "%u", (unsigned)ntohs(sin.sin_port));
    assert_int_equal(pthread_create(&px->thread, NULL, proxy_main, px), 0);
}

static void proxy_stop(struct proxy *px)
{
    atomic_store(&px->stop, true);
    pthread_join(px->thread, NULL);
    for (int i = 0; i < PROXY_PAIRS; i++)
        if (px->pairs[i][0] >= 0)
            pair_close(px, i);
    close(px->listen_fd);
}

/* Pings until it answers MANDATE_OK; returns the seconds it took. */
static double ping_until_ok(void *inst, double limit)
{
    mandate_error err = {0};
    double t0 = now_secs();
    while (OPS->ping(inst, &err) != MANDATE_OK) {
        if (now_secs() - t0 > limit)
            fail_msg("still down after %.0f s: %s", limit, err.message);
        usleep(50 * 1000);
    }
    return now_secs() - t0;
}

/* --- pgsql only ---------------------------------------------------------------- */

static const mandate_conf_def *conf_def(const char *key)
{
    for (const mandate_conf_def *d = P->conf; d->key != NULL; d++)
        if (strcmp(d->key, key) == 0)
            return d;
    return NULL;
}

static void test_descriptor(void **state)
{
    assert_string_equal(P->name, "pgsql");
    assert_true(P->flags & MANDATE_PLUGIN_BLOCKING);
    const mandate_conf_def *conninfo = conf_def("conninfo");
    const mandate_conf_def *connect = conf_def("connect_timeout");
    const mandate_conf_def *statement = conf_def("statement_timeout");
    assert_non_null(conninfo);
    assert_non_null(connect);
    assert_non_null(statement);
    assert_int_equal(conninfo->type, MANDATE_CONF_STRING);
    assert_true(conninfo->flags & MANDATE_CONF_SECRET);
    assert_int_equal(connect->type, MANDATE_CONF_INT);
    assert_int_equal(statement->type, MANDATE_CONF_INT);

    void *inst = calloc(1, P->inst_size);
    assert_non_null(inst);
    assert_int_equal(fake_conf_defaults(P, inst), 0);
    assert_null(*(char **)(void *)((char *)inst + conninfo->offset));
    int64_t v;
    memcpy(&v, (char *)inst + connect->offset, sizeof(v));
    assert_int_equal(v, 5);
    memcpy(&v, (char *)inst + statement->offset, sizeof(v));
    assert_int_equal(v, 5000);
    assert_int_equal(fake_conf_set(P, inst, "connect_timeout", "0"), -1);
    assert_int_equal(fake_conf_set(P, inst, "statement_timeout", "0"), -1);
    assert_int_equal(fake_conf_set(P, inst, "statement_timeout", "250"), 0);
    fake_conf_free(P, inst);
    free(inst);
}

/* A conninfo that does not parse is refused without a word of it. */
static void test_bad_conninfo(void **state)
{
    mandate_error err = {0};
    void *inst = calloc(1, P->inst_size);
    assert_non_null(inst);
    assert_int_equal(fake_conf_defaults(P, inst), 0);
    fake_host_clear_log();
    assert_int_equal(fake_conf_set(P, inst, "conninfo", "host=x password=hunter2 port"), 0);
    assert_int_equal(P->instantiate(inst, fake_host_get(), &err), MANDATE_INVALID);
    assert_null(strstr(err.message, "hunter2"));
    assert_null(strstr(fake_host_last_log(), "hunter2"));
    P->destroy(inst);
    assert_int_equal(fake_conf_set(P, inst, "conninfo", "postgresql://u:hunter2@[::1"), 0);
    assert_int_equal(P->instantiate(inst, fake_host_get(), &err), MANDATE_INVALID);
    assert_null(strstr(err.message, "hunter2"));
    P->destroy(inst);
    fake_conf_free(P, inst);
    free(inst);
}

/* Nobody listens: TEMPFAIL at once, no password in the message. */
static void test_refused(void **state)
{
    mandate_error err = {0};
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    close(fd); /* bound, never listened on, now free: connections are refused */
    char conninfo[128];
    snprintf(conninfo, sizeof(conninfo),
             "host=127.0.0.1 port=%u dbname=x user=u password=hunter2",
             (unsigned)ntohs(sin.sin_port));

    void *inst = calloc(1, P->inst_size);
    assert_non_null(inst);
    assert_int_equal(fake_conf_defaults(P, inst), 0);
    assert_int_equal(fake_conf_set(P, inst, "conninfo", conninfo), 0);
    double t0 = now_secs();
    assert_int_equal(P->instantiate(inst, fake_host_get(), &err), MANDATE_TEMPFAIL);
    double took = now_secs() - t0;
    print_message("refused: instantiate failed in %.1f ms: %s\n", took * 1000, err.message);
    assert_true(took < 5.0);
    assert_null(strstr(err.message, "hunter2"));
    assert_non_null(strstr(err.message, "cannot connect"));
    P->destroy(inst);
    fake_conf_free(P, inst);
    free(inst);
}

/* Text goes to the server as UTF-8 and must be: anything else is refused as
 * invalid input, and the connection still serves (SQLite would store it). */
static void test_invalid_utf8(void **state)
{
    struct store_fx *fx = *state;
    mandate_client c = {.client_id = "bad\xff", .tenant = "t", .status = 1}, out;
    assert_int_equal(OPS->client_create(fx->inst, &c, &fx->err), MANDATE_INVALID);
    assert_non_null(strstr(fx->err.message, "22021"));
    assert_int_equal(OPS->client_get(fx->inst, fx->pool, "bad", &out, &fx->err),
                     MANDATE_NOT_FOUND);
    c.client_id = "good";
    store_expect_ok(OPS->client_create(fx->inst, &c, &fx->err), &fx->err);
}

/* A backend terminated between two calls (a failover, an operator's
 * pg_terminate_backend): the next call gets a new connection by itself. */
static void test_reconnect_after_terminate(void **state)
{
    struct store_fx *fx = *state;
    struct pg_store *s = fx->store;
    mandate_client c = {.client_id = "survivor", .tenant = "t", .status = 1}, out;
    char sql[256];
    store_expect_ok(OPS->client_create(fx->inst, &c, &fx->err), &fx->err);

    snprintf(sql, sizeof(sql),
             "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
             "WHERE datname = '%s' AND application_name = 'mandate'",
             s->name);
    assert_int_equal(admin_int(sql), 1);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM pg_stat_activity "
             "WHERE datname = '%s' AND application_name = 'mandate'",
             s->name);
    for (int i = 0; admin_int(sql) != 0; i++) {
        assert_true(i < 500);
        usleep(10 * 1000);
    }
    usleep(20 * 1000);
    store_expect_ok(OPS->client_get(fx->inst, fx->pool, "survivor", &out, &fx->err), &fx->err);
    assert_string_equal(out.tenant, "t");
    uint64_t gen = 0;
    store_expect_ok(OPS->generation(fx->inst, &gen, &fx->err), &fx->err);
    assert_int_equal(gen, 1);
    assert_int_equal(admin_int(sql), 1);
}

/* A statement waiting on a lock past statement_timeout: TEMPFAIL, the
 * change not made, and the connection still serves. */
static void test_statement_timeout(void **state)
{
    struct store_fx *fx = *state;
    struct pg_store *s = fx->store;
    static const char *const kv[] = {"statement_timeout", "300", NULL};
    mandate_rc rc;
    mandate_error err = {0};
    void *inst = inst_with(fx, kv, &rc, &err);
    store_expect_ok(rc, &err);

    store_exec(s, "BEGIN");
    store_exec(s, "UPDATE meta SET value = value WHERE name = 'generation'");
    mandate_client c = {.client_id = "blocked", .tenant = "t", .status = 1}, out;
    double t0 = now_secs();
    assert_int_equal(OPS->client_create(inst, &c, &err), MANDATE_TEMPFAIL);
    double took = now_secs() - t0;
    print_message("statement_timeout 300 ms: client_create gave up in %.0f ms: %s\n",
                  took * 1000, err.message);
    assert_true(took >= 0.25 && took < 5.0);
    assert_non_null(strstr(err.message, "57014"));
    store_exec(s, "ROLLBACK");

    assert_int_equal(OPS->client_get(inst, fx->pool, "blocked", &out, &err), MANDATE_NOT_FOUND);
    store_expect_ok(OPS->client_create(inst, &c, &err), &err);
    uint64_t gen = 0;
    store_expect_ok(OPS->generation(inst, &gen, &err), &err);
    assert_int_equal(gen, 1);
    store_inst_free(inst);
}

/* The server goes silent mid-connection (a partition, a hung host): a call
 * gives up after statement_timeout and a little more, a new connection after
 * connect_timeout; once the server talks again, calls succeed again. */
static void test_silent_server(void **state)
{
    struct store_fx *fx = *state;
    struct pg_store *s = fx->store;
    struct proxy px;
    proxy_start(&px);
    char *conninfo = conninfo_with(s->name, "127.0.0.1", px.port);
    const char *const kv[] = {"conninfo", conninfo, "connect_timeout", "2", "statement_timeout",
                              "300",      NULL};
    mandate_rc rc;
    mandate_error err = {0};
    void *inst = inst_with(fx, kv, &rc, &err);
    store_expect_ok(rc, &err);
    mandate_client c = {.client_id = "through-proxy", .tenant = "t", .status = 1}, out;
    store_expect_ok(OPS->client_create(inst, &c, &err), &err);

    atomic_store(&px.silent, true);
    double t0 = now_secs();
    assert_int_equal(OPS->client_get(inst, fx->pool, "through-proxy", &out, &err),
                     MANDATE_TEMPFAIL);
    double took = now_secs() - t0;
    print_message("silent server: client_get gave up in %.2f s: %s\n", took, err.message);
    assert_true(took < 10.0);
    t0 = now_secs();
    assert_int_equal(OPS->ping(inst, &err), MANDATE_TEMPFAIL);
    took = now_secs() - t0;
    print_message("silent server: ping (new connection) gave up in %.2f s: %s\n", took,
                  err.message);
    assert_true(took < 10.0);
    t0 = now_secs();
    assert_int_equal(OPS->ping(inst, &err), MANDATE_TEMPFAIL);
    print_message("silent server: ping again within the retry delay: %.1f ms\n",
                  (now_secs() - t0) * 1000);

    atomic_store(&px.silent, false);
    print_message("silent server: answers again after %.2f s\n", ping_until_ok(inst, 20));
    store_expect_ok(OPS->client_get(inst, fx->pool, "through-proxy", &out, &err), &err);
    store_inst_free(inst);
    proxy_stop(&px);
    free(conninfo);
}

/* The server stops and starts again (tests/store-pgsql.sh tells how). */
static void test_server_restart(void **state)
{
    struct store_fx *fx = *state;
    const char *ctl = getenv("MANDATE_TEST_PGSQL_CTL");
    const char *dir = getenv("MANDATE_TEST_PGSQL_DIR");
    if (ctl == NULL || dir == NULL || ctl[0] == '\0' || dir[0] == '\0')
        skip();
    char stop_cmd[1024], start_cmd[1024];
    snprintf(stop_cmd, sizeof(stop_cmd), "%s stop '%s' >/dev/null", ctl, dir);
    snprintf(start_cmd, sizeof(start_cmd), "%s start '%s' >/dev/null", ctl, dir);
    mandate_client c = {.client_id = "durable", .tenant = "t", .status = 1}, out;
    store_expect_ok(OPS->client_create(fx->inst, &c, &fx->err), &fx->err);

    assert_int_equal(system(stop_cmd), 0);
    double t0 = now_secs();
    assert_int_equal(OPS->ping(fx->inst, &fx->err), MANDATE_TEMPFAIL);
    print_message("server stopped: ping failed in %.1f ms: %s\n", (now_secs() - t0) * 1000,
                  fx->err.message);
    t0 = now_secs();
    assert_int_equal(OPS->client_get(fx->inst, fx->pool, "durable", &out, &fx->err),
                     MANDATE_TEMPFAIL);
    print_message("server stopped: client_get within the retry delay failed in %.2f ms\n",
                  (now_secs() - t0) * 1000);
    usleep(1100 * 1000);
    t0 = now_secs();
    assert_int_equal(OPS->client_get(fx->inst, fx->pool, "durable", &out, &fx->err),
                     MANDATE_TEMPFAIL);
    print_message("server stopped: client_get (new connection refused) failed in %.1f ms\n",
                  (now_secs() - t0) * 1000);

    assert_int_equal(system(start_cmd), 0);
    print_message("server started: ping answers after %.2f s\n", ping_until_ok(fx->inst, 20));
    store_expect_ok(OPS->client_get(fx->inst, fx->pool, "durable", &out, &fx->err), &fx->err);
    raw_close(fx->store);
}

/* A database whose default collation does not sort by bytes, when the
 * server has ICU: the conformance suite's byte-order test then means
 * something. */
static void probe_icu(void)
{
    char name[64], sql[256];
    snprintf(name, sizeof(name), "mandate_t_%ld_icu", (long)getpid());
    snprintf(sql, sizeof(sql),
             "CREATE DATABASE %s TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'",
             name);
    PGresult *res = admin_run(sql, true);
    have_icu = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (have_icu) {
        snprintf(sql, sizeof(sql), "DROP DATABASE %s", name);
        admin_exec(sql);
    }
}

int main(void)
{
    base_conninfo = getenv("MANDATE_TEST_PGSQL");
    if (base_conninfo == NULL || base_conninfo[0] == '\0') {
        fprintf(stderr, "MANDATE_TEST_PGSQL is not set: skipped (tests/store-pgsql.sh "
                        "runs this with a server of its own)\n");
        return 77;
    }
    admin = PQconnectdb(base_conninfo);
    if (PQstatus(admin) != CONNECTION_OK) {
        fprintf(stderr, "cannot connect with MANDATE_TEST_PGSQL: %s", PQerrorMessage(admin));
        PQfinish(admin);
        return 1;
    }
    PQclear(PQexec(admin, "SET client_min_messages = warning"));
    probe_icu();
    fprintf(stderr, "PostgreSQL %d, test databases %s\n", PQserverVersion(admin),
            have_icu ? "with ICU collation en-US" : "with the server's default collation");

    int failures = store_conformance_run(&pgsql_target);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor),
        cmocka_unit_test(test_bad_conninfo),
        cmocka_unit_test(test_refused),
        cmocka_unit_test_setup_teardown(test_invalid_utf8, store_fx_setup_ready,
                                        store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_reconnect_after_terminate, store_fx_setup_ready,
                                        store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_statement_timeout, store_fx_setup_ready,
                                        store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_silent_server, store_fx_setup_ready,
                                        store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_server_restart, store_fx_setup_ready,
                                        store_fx_teardown),
    };
    failures += cmocka_run_group_tests_name("pgsql store", tests, NULL, NULL);
    PQfinish(admin);
    return failures;
}
