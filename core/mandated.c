/* mandated: the broker daemon. Stays in the foreground; SIGHUP reloads the
 * configuration (a bad one is refused and the running one stays), SIGTERM
 * and SIGINT drain in-flight requests and exit 0. */
#include "config.h"

#include <getopt.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit-events-private.h"
#include "client-limits-private.h"
#include "clock-private.h"
#include "http-private.h"
#include "keys-private.h"
#include "log-private.h"
#include "refusals-private.h"
#include "router-private.h"
#include "runtime-private.h"
#include "util-private.h"

/* How often the main thread does housekeeping between signals. */
#define HOUSEKEEPING_INTERVAL_S 1
#define PURGE_INTERVAL_S 60

static pthread_mutex_t current_lock = PTHREAD_MUTEX_INITIALIZER;
static mandate_runtime *current;

static mandate_runtime *acquire_current(void *ctx)
{
    (void)ctx;
    pthread_mutex_lock(&current_lock);
    mandate_runtime *rt = current ? mandate_runtime_ref(current) : NULL;
    pthread_mutex_unlock(&current_lock);
    return rt;
}

static void release_current(void *ctx, mandate_runtime *rt)
{
    (void)ctx;
    mandate_runtime_unref(&rt);
}

/* A request body over server.body_limit, answered 413 by the HTTP layer
 * before any route sees it: a refusal like any other (the peer's refusal
 * budget, the audit trail), naming the route and the limit, never the body. */
static void body_too_large(void *ctx, mandate_http_request *req, size_t body_limit)
{
    req->runtime = acquire_current(ctx);
    if (req->runtime == NULL)
        return;
    unsigned retry_after;
    mandate_refusal_record(req, "http.body_too_large",
                           json_pack("{s:o,s:o,s:I}", "method",
                                     mandate_audit_text(req->method, MANDATE_AUDIT_TEXT_MAX),
                                     "route", mandate_audit_text(req->path, MANDATE_AUDIT_TEXT_MAX),
                                     "body_limit", (json_int_t)body_limit),
                           &retry_after);
    release_current(ctx, req->runtime);
    req->runtime = NULL;
}

static void replace_current(mandate_runtime *rt)
{
    pthread_mutex_lock(&current_lock);
    mandate_runtime *old = current;
    current = rt;
    pthread_mutex_unlock(&current_lock);
    mandate_runtime_unref(&old);
}

/* Revocations, token records and replay entries are kept only until the
 * token or assertion they concern would have expired anyway. */
static void purge_expired(void)
{
    mandate_runtime *rt = acquire_current(NULL);
    const mandate_instance *store = mandate_runtime_store(rt);
    uint64_t purged = 0;
    mandate_error err = {0};
    if (store != NULL &&
        mandate_store_purge(store, mandate_clock_now(), &purged, &err) != MANDATE_OK)
        log_warning("purging expired records failed: %s", err.message);
    else if (purged > 0)
        log_info("purged %llu expired records", (unsigned long long)purged);
    if (store != NULL && mandate_keys_purge(rt, mandate_clock_now(), &err) != MANDATE_OK)
        log_warning("purging expired signing keys failed: %s", err.message);
    mandate_runtime_unref(&rt);
}

/* A key rotated or a client changed on any node shows in the store's
 * generation; this picks it up within a poll interval. */
static void sync_keys(void)
{
    mandate_runtime *rt = acquire_current(NULL);
    mandate_error err = {0};
    if (rt != NULL && mandate_keyring_sync(rt, false, &err) != MANDATE_OK)
        log_warning("reloading signing keys failed: %s", err.message);
    mandate_runtime_unref(&rt);
}

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: mandated [-c FILE]\n"
            "The Mandate identity broker daemon. It stays in the foreground.\n\n"
            "  -c, --config FILE   configuration file (default: $MANDATE_CONF, else\n"
            "                      " CONFDIR "/mandate.conf)\n"
            "  -t, --test          check the configuration, load and start every plugin,\n"
            "                      then exit\n"
            "  -h, --help          this help\n"
            "  -V, --version       the version\n\n"
            "Signals: HUP reloads the configuration; TERM and INT drain in-flight\n"
            "requests and exit. See mandated(8).\n");
}

static bool apply_logging(const mandate_config *cfg)
{
    mandate_log_level level = MANDATE_LOG_INFO;
    mandate_log_level_parse(cfg->log_level, &level);
    return mandate_log_setup(cfg->log_destination, level, "mandated");
}

/* Load a configuration into a started runtime; reports every problem. */
static mandate_runtime *load_runtime(const char *path)
{
    mandate_diag diag = {0};
    mandate_config *cfg = NULL;
    mandate_runtime *rt = NULL;
    if (mandate_config_load(path, &cfg, &diag))
        mandate_runtime_create(cfg, MANDATE_RUNTIME_MIGRATE | MANDATE_RUNTIME_CREATE_KEYS, &rt,
                               &diag);
    for (size_t i = 0; i < diag.count; i++)
        log_error("%s", diag.lines[i]);
    mandate_diag_free(&diag);
    return rt;
}

/* The port bound at start: a reload keeps the socket. */
static unsigned bound_port;

static void reload(const char *path)
{
    log_info("reloading %s", path);
    mandate_runtime *rt = load_runtime(path);
    if (rt == NULL) {
        log_error("reload refused: the new configuration has errors; the running one stays");
        mandate_audit_event("daemon.reload", json_pack("{s:s,s:s}", "result", "refused", "reason",
                                                       "the new configuration has errors"));
        return;
    }
    mandate_runtime_use_port(rt, bound_port);
    const mandate_config *new_cfg = mandate_runtime_config(rt);
    mandate_runtime *old = acquire_current(NULL);
    const mandate_config *old_cfg = mandate_runtime_config(old);
    if (strcmp(new_cfg->listen, old_cfg->listen) != 0 || new_cfg->threads != old_cfg->threads ||
        new_cfg->body_limit != old_cfg->body_limit ||
        new_cfg->connection_limit != old_cfg->connection_limit ||
        new_cfg->connection_timeout != old_cfg->connection_timeout ||
        new_cfg->connections_per_address != old_cfg->connections_per_address ||
        new_cfg->request_timeout != old_cfg->request_timeout ||
        (new_cfg->tls_certificate == NULL) != (old_cfg->tls_certificate == NULL))
        log_warning("server settings (listen, threads, body_limit, connection limits and "
                    "timeouts, tls) change only on restart; the rest is reloaded");
    if (!mandate_audit_events_same(new_cfg) || new_cfg->rate_buckets != old_cfg->rate_buckets)
        log_warning("audit trail settings and rate_limit.buckets change only on restart");
    mandate_runtime_unref(&old);
    apply_logging(new_cfg);
    replace_current(rt);
    log_info("reloaded: %zu plugin instances", mandate_runtime_instance_count(rt));
    mandate_audit_event("daemon.reload", json_pack("{s:s,s:s}", "result", "reloaded", "config",
                                                   path));
}

int main(int argc, char **argv)
{
    static const struct option long_opts[] = {{"config", required_argument, NULL, 'c'},
                                              {"test", no_argument, NULL, 't'},
                                              {"help", no_argument, NULL, 'h'},
                                              {"version", no_argument, NULL, 'V'},
                                              {NULL, 0, NULL, 0}};
    const char *cli_config = NULL;
    bool test_only = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:thV", long_opts, NULL)) != -1) {
        switch (opt) {
        case 'c': cli_config = optarg; break;
        case 't': test_only = true; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("mandated %s\n", PACKAGE_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    const char *path = mandate_config_default_path(cli_config);

    /* Block the signals before any thread exists: the main thread takes
     * them with sigtimedwait, workers never see them. */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGHUP);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);
#ifdef __GLIBC__
    /* glibc hands the free top of a thread's heap back to the system
     * (madvise, and a TLB flush on every core) once it passes the trim
     * threshold, 128 KiB at first, and the next request grows it again:
     * 6 % of a refresh run, most of it inside the store's write
     * transaction. Keep up to 4 MiB free per heap instead. Setting the
     * threshold fixes the mmap threshold too (no longer raised as large
     * blocks are freed): 1 MiB, so that no request's buffer is mapped and
     * unmapped each time. */
    mallopt(M_TRIM_THRESHOLD, 4 << 20);
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
#endif

    mandate_runtime *rt = load_runtime(path);
    if (rt == NULL) {
        log_error("mandated not started: fix the configuration (mandatectl config check %s)",
                  path);
        return 1;
    }
    const mandate_config *cfg = mandate_runtime_config(rt);
    apply_logging(cfg);
    if (test_only) {
        printf("%s: configuration OK, %zu plugin instances started\n", path,
               mandate_runtime_instance_count(rt));
        mandate_runtime_unref(&rt);
        return 0;
    }
    /* The trail first: nothing may be served that is not recorded. */
    mandate_error err = {0};
    if (mandate_audit_events_start(cfg, &err) != MANDATE_OK) {
        log_error("mandated not started: audit trail %s: %s", cfg->audit_dir, err.message);
        mandate_runtime_unref(&rt);
        return 1;
    }
    mandate_client_limits_start((size_t)cfg->rate_buckets);
    mandate_refusals_start((size_t)cfg->rate_buckets);
    /* Bind first: a request arriving before the runtime is published gets
     * 503, and the runtime learns the port it serves on before anyone
     * reads it. */
    char host[256];
    unsigned port = 0;
    mandate_config_split_listen(cfg->listen, host, sizeof(host), &port); /* checked at load */
    const mandate_http_settings settings = {
        .listen = cfg->listen,
        .host = host,
        .port = port,
        .threads = mandate_config_workers(cfg),
        .body_limit = (size_t)cfg->body_limit,
        .connection_limit = (unsigned)cfg->connection_limit,
        .connections_per_address = (unsigned)cfg->connections_per_address,
        .request_timeout = cfg->request_timeout,
        .connection_timeout = cfg->connection_timeout,
        .tls_certificate = cfg->tls_certificate,
        .tls_key = cfg->tls_key,
        .tls_client_ca = cfg->tls_client_ca,
        .aside_threads = mandate_config_document_fetches(cfg),
        .aside_wait_ms = cfg->client_documents.timeout_ms,
    };
    const mandate_http_source source = {acquire_current, release_current, NULL,
                                        body_too_large};
    mandate_http_server *server = NULL;
    if (mandate_http_start(&settings, mandate_router_dispatch, &source, &server, &err) !=
        MANDATE_OK) {
        log_error("mandated not started: %s", err.message);
        mandate_audit_events_stop();
        mandate_runtime_unref(&rt);
        return 1;
    }
    bound_port = mandate_http_port(server);
    mandate_runtime_use_port(rt, bound_port);
    replace_current(rt);
    log_info("mandated %s listening on %s port %u, issuer %s", PACKAGE_VERSION, cfg->listen,
             bound_port, cfg->issuer);
    mandate_audit_event("daemon.start",
                        json_pack("{s:s,s:s,s:i,s:s,s:I}", "version", PACKAGE_VERSION, "listen",
                                  cfg->listen, "port", (int)bound_port, "issuer", cfg->issuer,
                                  "pid", (json_int_t)getpid()));
    int64_t drain_timeout = cfg->drain_timeout;

    int64_t last_purge = 0;
    for (;;) {
        struct timespec wait = {HOUSEKEEPING_INTERVAL_S, 0};
        int sig = sigtimedwait(&signals, NULL, &wait);
        sync_keys();
        mandate_refusals_flush();
        if (mandate_clock_now() - last_purge >= PURGE_INTERVAL_S) {
            last_purge = mandate_clock_now();
            purge_expired();
        }
        if (sig == SIGHUP) {
            reload(path);
            mandate_runtime *now = acquire_current(NULL);
            drain_timeout = mandate_runtime_config(now)->drain_timeout;
            mandate_runtime_unref(&now);
        } else if (sig == SIGTERM || sig == SIGINT) {
            log_info("%s received: draining in-flight requests (up to %llds)",
                     sig == SIGTERM ? "SIGTERM" : "SIGINT", (long long)drain_timeout);
            break;
        }
    }

    unsigned left = mandate_http_drain(server, drain_timeout);
    if (left > 0)
        log_warning("%u requests still running after %llds; closing them", left,
                    (long long)drain_timeout);
    mandate_http_stop(&server);
    mandate_refusals_stop(); /* the refusals still counted, into the trail */
    mandate_audit_event("daemon.stop", json_pack("{s:i}", "requests_cut_off", (int)left));
    uint64_t head_seq;
    char head_hash[65];
    if (mandate_audit_events_head(&head_seq, head_hash))
        log_info("audit trail: last record %llu, hash %s", (unsigned long long)head_seq,
                 head_hash);
    mandate_audit_events_stop();
    mandate_client_limits_stop();
    replace_current(NULL);
    log_info("mandated stopped");
    return 0;
}
