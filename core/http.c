#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "audit-events-private.h"
#include "http-guard-private.h"
#include "http-private.h"
#include "log-private.h"
#include "metrics-private.h"
#include "pool-private.h"
#include "text-encoding.h"
#include "util-private.h"
#include "work-queue-private.h"

/* Certificates and keys are small; a bigger file is a mistake. */
#define TLS_FILE_MAX (256 * 1024)

struct mandate_http_server {
    struct MHD_Daemon *daemon;
    /* Our own listening socket and the thread that accepts on it: see
     * acceptor_main. stop_pipe wakes the acceptor when the server drains. */
    int listen_fd;
    int stop_pipe[2];
    pthread_t acceptor;
    bool accepting;
    /* the connections handed to MHD, against the limits; see
     * http-guard-private.h */
    mandate_http_guard *guard;
    mandate_http_handler handler;
    mandate_http_source source;
    size_t body_limit;
    atomic_uint in_flight;
    /* the threads requests are set aside for (mandate_http_set_aside), and
     * how long one may wait in their queue before it is answered 503 */
    mandate_work_queue *aside;
    int64_t aside_wait_ms;
    /* set once mandate_http_stop begins: set-aside work is no longer done */
    atomic_bool stopping;
    /* connections suspended now (set aside, or waiting for an audit
     * record): libmicrohttpd aborts when stopped with one */
    atomic_uint suspended;
    char *tls_cert, *tls_key, *tls_trust;
    size_t tls_key_len;
};

/* Per-request state, kept in MHD's connection-class pointer. */
typedef struct request_state {
    mandate_http_request req;
    mandate_strbuf body; /* as read so far */
    bool too_large;
    /* refused for its framing: the body is read and dropped first (see
     * on_request), then this is the answer */
    unsigned refused_status;
    const char *refused_why;
    struct timespec started;
    /* A response waiting for its audit record to reach the disk: the
     * connection is suspended meanwhile, and resumed by the committer. */
    bool waiting;
    _Atomic bool record_lost;
    mandate_http_response pending;
    /* the newest audit record of the request's handler calls (a request
     * set aside is handled twice): answered once it is durable */
    uint64_t record;
    /* set aside (mandate_http_set_aside): suspended while a set-aside
     * thread does aside_work; handled again once it has */
    bool aside;
    mandate_http_work aside_work;
    void *aside_ctx;
    int64_t aside_queued_ms;
    mandate_http_server *server;
    char *raw_target; /* from on_request_line */
} request_state;

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int connection_fd(struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    return info != NULL ? info->connect_fd : -1;
}

const char *mandate_http_request_header(const mandate_http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->connection, MHD_HEADER_KIND, name);
}

typedef struct header_count {
    const char *name;
    size_t count;
} header_count;

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    header_count *c = cls;
    (void)kind, (void)value;
    if (strcasecmp(key, c->name) == 0)
        c->count++;
    return MHD_YES;
}

size_t mandate_http_request_header_count(const mandate_http_request *req, const char *name)
{
    if (mandate_http_request_header(req, name) == NULL)
        return 0;
    if (req->connection == NULL)
        return 1;
    header_count c = {name, 0};
    MHD_get_connection_values(req->connection, MHD_HEADER_KIND, count_header, &c);
    return c.count;
}

size_t mandate_http_request_peer_certificates(const mandate_http_request *req,
                                              const unsigned char **ders, size_t *lens,
                                              size_t max)
{
    if (req->connection == NULL)
        return 0;
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(req->connection, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (info == NULL || info->tls_session == NULL)
        return 0;
    gnutls_session_t session = (gnutls_session_t)info->tls_session;
    if (gnutls_certificate_type_get(session) != GNUTLS_CRT_X509)
        return 0;
    unsigned int count = 0;
    const gnutls_datum_t *peers = gnutls_certificate_get_peers(session, &count);
    size_t n = 0;
    for (; peers != NULL && n < count && n < max; n++) {
        ders[n] = peers[n].data;
        lens[n] = peers[n].size;
    }
    return n;
}

void mandate_http_response_header(mandate_http_response *resp, const char *name,
                                  const char *value)
{
    if (resp->header_count < MANDATE_HTTP_MAX_HEADERS)
        resp->headers[resp->header_count++] = (mandate_http_header){name, value};
    else
        log_error("more than %d response headers; '%s' dropped", MANDATE_HTTP_MAX_HEADERS,
                  name);
}

void mandate_http_response_json(mandate_http_request *req, mandate_http_response *resp,
                                unsigned status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (text == NULL)
        mandate_die("out of memory serialising a response");
    resp->status = status;
    resp->content_type = "application/json";
    resp->body_len = strlen(text);
    resp->body = mandate_pool_memdup(req->pool, text, resp->body_len);
    free(text);
}

/* What a token is made of (base64url, the dots of a JWS, an opaque
 * token's prefix) is never escaped in JSON, so such a token is copied as
 * it is. Why: jansson checks and then dumps a string one code point at a
 * time, which for a 600-character JWT was 48,000 instructions, 8 % of an
 * ES256 token (callgrind, doc/benchmarks.md). */
static bool json_needs_no_escape(const char *s, size_t len)
{
    static const char unescaped[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                    "0123456789-_.~+/=";
    return strspn(s, unescaped) == len;
}

void mandate_http_response_token_json(mandate_http_request *req, mandate_http_response *resp,
                                      unsigned status, const char *member, const char *token,
                                      json_t *rest)
{
    if (rest == NULL)
        mandate_die("out of memory serialising a response");
    size_t member_len = strlen(member), token_len = strlen(token);
    if (!json_needs_no_escape(member, member_len) || !json_needs_no_escape(token, token_len)) {
        json_t *body = json_object();
        json_t *value = json_stringn(token, token_len);
        if (body == NULL || value == NULL || json_object_set_new(body, member, value) != 0 ||
            json_object_update(body, rest) != 0) {
            json_decref(body);
            json_decref(rest);
            mandate_http_response_error(req, resp, 500, "server_error",
                                        "the token cannot be encoded as JSON");
            return;
        }
        json_decref(rest);
        mandate_http_response_json(req, resp, status, body);
        return;
    }
    char *tail = json_dumps(rest, JSON_COMPACT); /* "{...}" */
    json_decref(rest);
    if (tail == NULL)
        mandate_die("out of memory serialising a response");
    size_t tail_len = strlen(tail);
    bool empty = tail_len == 2;
    /* {"member":"token" then "}" or "," and tail after its brace; copied
     * rather than mandate_pool_printf'd, whose two vsnprintf passes over
     * the token cost 20,000 more instructions per response (callgrind) */
    size_t len = 6 + member_len + token_len + (empty ? 1 : tail_len);
    char *out = mandate_pool_alloc(req->pool, len + 1), *at = out;
    memcpy(at, "{\"", 2);
    at += 2;
    memcpy(at, member, member_len);
    at += member_len;
    memcpy(at, "\":\"", 3);
    at += 3;
    memcpy(at, token, token_len);
    at += token_len;
    *at++ = '"';
    if (empty) {
        *at++ = '}';
    } else {
        *at++ = ',';
        memcpy(at, tail + 1, tail_len - 1);
        at += tail_len - 1;
    }
    *at = '\0';
    free(tail);
    resp->status = status;
    resp->content_type = "application/json";
    resp->body = out;
    resp->body_len = len;
}

void mandate_http_response_error(mandate_http_request *req, mandate_http_response *resp,
                                 unsigned status, const char *error, const char *description)
{
    json_t *body = json_pack("{s:s}", "error", error);
    if (description != NULL)
        json_object_set_new(body, "error_description", json_string(description));
    mandate_http_response_json(req, resp, status, body);
}

static void new_request_id(char out[MANDATE_REQUEST_ID_LEN + 1])
{
    unsigned char raw[MANDATE_REQUEST_ID_LEN / 2];
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        memset(raw, 0, sizeof(raw));
    mandate_hex_encode(raw, sizeof(raw), out);
}

static enum MHD_Result queue(request_state *st, const mandate_http_response *resp)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        resp->body_len, (void *)(resp->body ? resp->body : ""), MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "X-Request-Id", st->req.request_id);
    if (resp->content_type != NULL)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
    for (size_t i = 0; i < resp->header_count; i++)
        MHD_add_response_header(r, resp->headers[i].name, resp->headers[i].value);
    enum MHD_Result ret = MHD_queue_response(st->req.connection, resp->status, r);
    MHD_destroy_response(r);

    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t us = (int64_t)(now.tv_sec - st->started.tv_sec) * 1000000 +
                 (now.tv_nsec - st->started.tv_nsec) / 1000;
    mandate_metrics_request(mandate_metrics_endpoint_of(st->req.path), st->req.metric_grant,
                            resp->status, us);
    log_info("%s %s %u %.3fms", st->req.method, st->req.path, resp->status, (double)us / 1e3);
    return ret;
}

/* On the audit committer's thread: it must not block. */
static void on_record_durable(void *ctx, bool durable)
{
    request_state *st = ctx;
    if (!durable)
        atomic_store(&st->record_lost, true);
    MHD_resume_connection(st->req.connection);
}

/* Suspends the connection of a request being served: counted, so that
 * the server is not stopped while one is (mandate_http_stop). */
static void suspend(request_state *st)
{
    atomic_fetch_add(&st->server->suspended, 1);
    MHD_suspend_connection(st->req.connection);
}

/* On a set-aside thread (on the worker when the server is stopping). */
static void run_set_aside(void *arg)
{
    request_state *st = arg;
    mandate_http_server *srv = st->server;
    mandate_log_set_request_id(st->req.request_id);
    int64_t waited = monotonic_ms() - st->aside_queued_ms;
    if (atomic_load(&srv->stopping) ||
        (srv->aside_wait_ms > 0 && waited > srv->aside_wait_ms)) {
        /* a client gives up long before a queue of slow work is done */
        log_info("work set aside not done: %s",
                 atomic_load(&srv->stopping) ? "the server is stopping" : "it waited too long");
    } else {
        st->aside_work(st->aside_ctx);
    }
    st->req.set_aside = st->aside_ctx;
    mandate_log_set_request_id(NULL);
    MHD_resume_connection(st->req.connection);
}

mandate_http_aside mandate_http_set_aside(mandate_http_request *req, mandate_http_work work,
                                          void *ctx)
{
    if (req->connection == NULL) {
        work(ctx);
        req->set_aside = ctx;
        return MANDATE_HTTP_ASIDE_DONE_HERE;
    }
    request_state *st = (request_state *)req; /* req is its first member */
    if (st->aside)
        mandate_die("a request set aside twice in one handler call");
    /* a place now, the work handed over once the handler has returned
     * (handle): until then the handler still uses the request (its pool),
     * which the work may use too */
    if (!mandate_work_queue_reserve(st->server->aside))
        return MANDATE_HTTP_ASIDE_FULL;
    st->aside = true;
    st->aside_work = work;
    st->aside_ctx = ctx;
    st->req.set_aside = NULL;
    return MANDATE_HTTP_SET_ASIDE;
}

bool mandate_http_request_is_set_aside(const mandate_http_request *req)
{
    return req->connection != NULL && ((const request_state *)req)->aside;
}

/* Calls the handler (again, for a request that was set aside) and answers,
 * once the request's audit records are durable, or sets it aside. */
static enum MHD_Result handle(mandate_http_server *srv, request_state *st)
{
    mandate_http_response resp = {0};
    mandate_audit_events_defer_begin();
    srv->handler(&st->req, &resp);
    uint64_t record = mandate_audit_events_defer_end();
    if (record > st->record)
        st->record = record;
    if (st->aside) { /* handled again once its work is done */
        /* suspended first: the work may be done, and the connection
         * resumed, before the submission returns */
        st->aside_queued_ms = monotonic_ms();
        suspend(st);
        if (!mandate_work_queue_submit_reserved(srv->aside, run_set_aside, st))
            run_set_aside(st); /* the server is stopping: not done, then */
        return MHD_YES;
    }
    if (resp.status == 0)
        mandate_http_response_error(&st->req, &resp, 500, "server_error", NULL);
    if (st->record == 0)
        return queue(st, &resp);
    /* Not before its audit record is durable. Suspended first: the
     * committer may resume the connection as soon as it is registered. */
    st->pending = resp;
    st->waiting = true;
    suspend(st);
    switch (mandate_audit_events_when_durable(st->record, on_record_durable, st)) {
    case MANDATE_AUDIT_PENDING: break;
    case MANDATE_AUDIT_LOST: atomic_store(&st->record_lost, true); /* fall through */
    case MANDATE_AUDIT_DURABLE: MHD_resume_connection(st->req.connection); break;
    }
    return MHD_YES;
}

static enum MHD_Result reply_error(request_state *st, unsigned status, const char *error,
                                   const char *description)
{
    mandate_http_response resp = {0};
    mandate_http_response_error(&st->req, &resp, status, error, description);
    return queue(st, &resp);
}

/* How the request says its body is framed (RFC 9112 §6). */
typedef struct framing {
    unsigned content_lengths;
    unsigned transfer_encodings;
    bool chunked_only; /* every Transfer-Encoding is exactly "chunked" */
} framing;

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    framing *f = cls;
    (void)kind;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        f->content_lengths++;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        f->transfer_encodings++;
        if (value == NULL || strcasecmp(value, "chunked") != 0)
            f->chunked_only = false;
    }
    return MHD_YES;
}

/* A body whose length two parts of the request could read differently is
 * refused, never guessed at (RFC 9112 §6.3): a proxy in front of us may
 * have framed it the other way, and what it took for the next request
 * would be smuggled past it. Its status, or 0 when the framing is sound. */
static unsigned framing_refusal(struct MHD_Connection *connection, const char **why_r)
{
    framing f = {.chunked_only = true};
    MHD_get_connection_values(connection, MHD_HEADER_KIND, count_framing, &f);
    if (f.content_lengths > 1) {
        *why_r = "more than one Content-Length";
        return 400;
    }
    if (f.transfer_encodings > 0 && f.content_lengths > 0) {
        *why_r = "both Content-Length and Transfer-Encoding";
        return 400;
    }
    if (f.transfer_encodings > 1 || !f.chunked_only) {
        *why_r = "a Transfer-Encoding other than chunked";
        return 501;
    }
    return 0;
}

/* An answer after which the connection cannot be trusted to be at the
 * start of a request: closed once sent. */
static enum MHD_Result reply_and_close(request_state *st, unsigned status, const char *error,
                                       const char *description)
{
    mandate_http_response resp = {0};
    mandate_http_response_error(&st->req, &resp, status, error, description);
    mandate_http_response_header(&resp, MHD_HTTP_HEADER_CONNECTION, "close");
    return queue(st, &resp);
}

/* A body over the limit (announced by Content-Length, or read in chunks):
 * told to the layer above, for its audit record. The body is never handed
 * over, only the request line, the peer and the limit. */
static void report_too_large(mandate_http_server *srv, request_state *st)
{
    log_info("refused: a request body over %zu bytes", srv->body_limit);
    if (srv->source.too_large != NULL)
        srv->source.too_large(srv->source.ctx, &st->req, srv->body_limit);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *connection, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    mandate_http_server *srv = cls;
    request_state *st = *con_cls;

    if (st == NULL || st->req.pool == NULL) {
        if (st == NULL) /* on_request_line always makes it: never, but safe */
            st = mandate_xcalloc(1, sizeof(*st));
        clock_gettime(CLOCK_MONOTONIC, &st->started);
        *con_cls = st;
        atomic_fetch_add(&srv->in_flight, 1);
        st->req.connection = connection;
        st->server = srv;
        st->req.pool = mandate_pool_new();
        st->req.method = mandate_pool_strdup(st->req.pool, method);
        st->req.path = mandate_pool_strdup(st->req.pool, url);
        st->req.raw_target = st->raw_target;
        const union MHD_ConnectionInfo *from =
            MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (from != NULL && from->client_addr != NULL)
            memcpy(&st->req.socket_peer, from->client_addr,
                   from->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                            : sizeof(struct sockaddr_in));
        new_request_id(st->req.request_id);
        mandate_log_set_request_id(st->req.request_id);
        const char *why = NULL;
        unsigned refusal = framing_refusal(connection, &why);
        if (refusal == 501) { /* a coding libmicrohttpd cannot frame either */
            log_info("refused: %s", why);
            return reply_and_close(st, refusal, "invalid_request", why);
        }
        if (refusal != 0) {
            /* Answered once the body has been read (and dropped) as
             * libmicrohttpd frames it: closing a socket with unread bytes
             * makes the kernel send a reset, which can destroy the answer
             * before the client reads it. The connection closes after the
             * answer either way, so nothing read here is ever a request. */
            log_info("refused: %s", why);
            st->refused_status = refusal;
            st->refused_why = why;
            return MHD_YES;
        }
        const char *length = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
                                                         MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (length != NULL) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(length, &end, 10);
            if (errno != 0 || *end != '\0' || end == length || length[0] < '0' ||
                length[0] > '9')
                return reply_and_close(st, 400, "invalid_request", "malformed Content-Length");
            if (n > srv->body_limit) { /* refuse before reading a byte of it */
                report_too_large(srv, st);
                return reply_and_close(st, 413, "invalid_request", "request body too large");
            }
        }
        return MHD_YES;
    }
    mandate_log_set_request_id(st->req.request_id);

    if (st->aside) { /* resumed: the work it was set aside for is done */
        st->aside = false;
        atomic_fetch_sub(&srv->suspended, 1);
        return handle(srv, st);
    }
    if (st->waiting) {
        /* resumed: the audit record is on disk, or never will be */
        st->waiting = false;
        atomic_fetch_sub(&srv->suspended, 1);
        if (atomic_load(&st->record_lost)) {
            log_error("the audit record of this request is not on disk: answering 503");
            mandate_http_response lost = {0};
            mandate_http_response_error(&st->req, &lost, 503, "temporarily_unavailable",
                                        "the broker cannot record this request now");
            mandate_http_response_header(&lost, "Retry-After", "5");
            return queue(st, &lost);
        }
        return queue(st, &st->pending);
    }

    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (st->refused_status != 0)
            return MHD_YES; /* dropped */
        if (st->too_large || n > srv->body_limit - st->body.len) {
            st->too_large = true;
            return MHD_YES;
        }
        mandate_strbuf_addn(&st->body, upload_data, n);
        return MHD_YES;
    }

    mandate_http_guard_request_read(srv->guard, connection_fd(connection));
    if (st->refused_status != 0)
        return reply_and_close(st, st->refused_status, "invalid_request", st->refused_why);
    if (st->too_large) {
        report_too_large(srv, st);
        return reply_error(st, 413, "invalid_request", "request body too large");
    }
    st->req.body = st->body.data ? st->body.data : "";
    st->req.body_len = st->body.len;
    st->req.runtime = srv->source.acquire(srv->source.ctx);
    if (st->req.runtime == NULL)
        return reply_error(st, 503, "temporarily_unavailable", "the broker is not serving");
    return handle(srv, st);
}

static void on_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    mandate_http_server *srv = cls;
    request_state *st = *con_cls;
    (void)toe;
    mandate_http_guard_request_done(srv->guard, connection_fd(connection), monotonic_ms());
    if (st == NULL)
        return;
    *con_cls = NULL;
    free(st->raw_target);
    if (st->req.pool == NULL) { /* refused by MHD before on_request */
        free(st);
        return;
    }
    if (st->req.runtime != NULL)
        srv->source.release(srv->source.ctx, st->req.runtime);
    st->req.runtime = NULL;
    mandate_pool_free(&st->req.pool);
    free(st->body.data);
    free(st);
    mandate_log_set_request_id(NULL);
    atomic_fetch_sub(&srv->in_flight, 1);
}

static void on_mhd_error(void *cls, const char *fmt, va_list ap) MANDATE_PRINTF(2, 0);

static void on_mhd_error(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t len = strlen(msg);
    while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
        msg[--len] = '\0';
    log_warning("http: %s", msg);
}

/* One per core: no worker blocks on the disk (a response waiting for its
 * audit record's group commit is suspended, not waited for). */
/* Why we accept rather than libmicrohttpd: its workers all wait on one
 * listening socket and each takes up to ten connections per wake-up, so a
 * burst of keep-alive connections (a gateway's pool, a load test) can land
 * on one worker and leave the other cores idle for the connections' life:
 * measured, a quarter of wrk runs served from one core at two thirds of the
 * throughput. MHD_add_connection spreads connections over the workers by
 * socket number, which is even for a burst and refills the worker whose
 * connections closed.
 *
 * The acceptor also keeps the guard (http-guard-private.h): it hands over
 * no more connections than server.connection_limit, closes a peer's
 * connection over server.connections_per_address at once, and shuts down
 * the connections past their deadline. */

/* What the acceptor closed since it last said so in the log: one line
 * every few seconds, not one per connection (an attack would flood it). */
typedef struct closed_tally {
    unsigned count[MANDATE_GUARD_REASON_COUNT_];
    char last_address[INET6_ADDRSTRLEN];
    int64_t since_ms;
} closed_tally;

#define TALLY_LOG_MS 5000
#define SWEEP_MS 250

static void peer_text(const struct sockaddr *sa, char out[INET6_ADDRSTRLEN])
{
    const void *addr = sa->sa_family == AF_INET6
                           ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                           : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
    if (inet_ntop(sa->sa_family, addr, out, INET6_ADDRSTRLEN) == NULL)
        strcpy(out, "?");
}

static void tally_flush(closed_tally *t, int64_t now_ms, bool force)
{
    if (!force && now_ms - t->since_ms < TALLY_LOG_MS)
        return;
    unsigned address = t->count[MANDATE_GUARD_ADDRESS_LIMIT],
             request = t->count[MANDATE_GUARD_REQUEST_DEADLINE],
             idle = t->count[MANDATE_GUARD_IDLE_DEADLINE];
    if (address + request + idle > 0)
        log_warning("http: closed %u connections from addresses at "
                    "server.connections_per_address (the last from %s), %u whose request "
                    "did not arrive within server.request_timeout and %u that sent none "
                    "within server.connection_timeout",
                    address, address ? t->last_address : "-", request, idle);
    memset(t->count, 0, sizeof(t->count));
    t->since_ms = now_ms;
}

/* Under the guard's lock, for a connection past its deadline: libmicrohttpd
 * then reads the end of the stream and closes it itself. */
static void shut_connection(int fd, mandate_http_guard_reason reason, void *ctx)
{
    closed_tally *t = ctx;
    shutdown(fd, SHUT_RDWR);
    mandate_metrics_connection_closed(reason);
    t->count[reason]++;
}

static void *acceptor_main(void *arg)
{
    mandate_http_server *srv = arg;
    struct pollfd fds[2] = {{.fd = srv->listen_fd, .events = POLLIN},
                            {.fd = srv->stop_pipe[0], .events = POLLIN}};
    closed_tally tally = {.since_ms = monotonic_ms()};
    int64_t next_sweep = tally.since_ms + SWEEP_MS;
    for (;;) {
        /* at the limit, only the stop pipe and the deadlines are watched:
         * new connections wait in the kernel's backlog */
        bool full = mandate_http_guard_full(srv->guard);
        int64_t now = monotonic_ms();
        int timeout = now >= next_sweep ? 0 : (int)(next_sweep - now);
        if (full && timeout > 10)
            timeout = 10;
        int n = poll(full ? fds + 1 : fds, full ? 1 : 2, timeout);
        if (n < 0 && errno != EINTR) {
            log_error("http: poll on the listening socket: %s", strerror(errno));
            break;
        }
        now = monotonic_ms();
        if (now >= next_sweep) {
            mandate_http_guard_sweep(srv->guard, now, shut_connection, &tally);
            tally_flush(&tally, now, false);
            next_sweep = now + SWEEP_MS;
        }
        if (n <= 0)
            continue;
        if (fds[1].revents != 0)
            break;
        if (full || fds[0].revents == 0)
            continue;
        struct sockaddr_storage peer;
        socklen_t len = sizeof(peer);
        int fd = accept4(srv->listen_fd, (struct sockaddr *)&peer, &len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* out of descriptors: let connections close, do not spin */
                log_warning("http: cannot accept a connection: %s", strerror(errno));
                struct timespec pause = {0, 100 * 1000 * 1000};
                nanosleep(&pause, NULL);
            }
            continue; /* EAGAIN, EINTR, ECONNABORTED, a peer's error */
        }
        if (!mandate_http_guard_admit(srv->guard, fd, (struct sockaddr *)&peer, now)) {
            close(fd);
            mandate_metrics_connection_closed(MANDATE_GUARD_ADDRESS_LIMIT);
            tally.count[MANDATE_GUARD_ADDRESS_LIMIT]++;
            peer_text((struct sockaddr *)&peer, tally.last_address);
            continue;
        }
        /* it closes the socket when it cannot take it, and says why */
        if (MHD_add_connection(srv->daemon, fd, (struct sockaddr *)&peer, len) != MHD_YES)
            mandate_http_guard_release(srv->guard, fd);
    }
    tally_flush(&tally, monotonic_ms(), true);
    return NULL;
}

static void on_connection(void *cls, struct MHD_Connection *connection, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    mandate_http_server *srv = cls;
    (void)socket_context;
    if (code == MHD_CONNECTION_NOTIFY_STARTED)
        mandate_http_guard_started(srv->guard, connection_fd(connection));
    else if (code == MHD_CONNECTION_NOTIFY_CLOSED)
        mandate_http_guard_closed(srv->guard, connection_fd(connection));
}

/* Called once per request, when its first line has arrived and before its
 * headers are parsed. Two jobs:
 * - the request's deadline starts here (http-guard-private.h);
 * - libmicrohttpd hands on_request the path percent-decoded, and cut at an
 *   encoded NUL: "/a%2Fb" and "/a/b" arrive alike. The gateway check must
 *   judge the path as the client sent it, since that is what the tool
 *   server gets; MHD shows the request-target undecoded only here. So the
 *   request's state begins here, and on_completed frees it whether or not
 *   on_request was ever called. */
static void *on_request_line(void *cls, const char *uri, struct MHD_Connection *connection)
{
    mandate_http_server *srv = cls;
    mandate_http_guard_request_begins(srv->guard, connection_fd(connection), monotonic_ms());
    request_state *st = mandate_xcalloc(1, sizeof(*st));
    st->raw_target = mandate_xstrdup(uri);
    return st;
}

static void stop_accepting(mandate_http_server *srv)
{
    if (srv->accepting) {
        ssize_t w;
        do
            w = write(srv->stop_pipe[1], "x", 1);
        while (w < 0 && errno == EINTR);
        pthread_join(srv->acceptor, NULL);
        srv->accepting = false;
    }
    if (srv->listen_fd >= 0) {
        close(srv->listen_fd);
        srv->listen_fd = -1;
    }
}

/* The listening socket, bound and listening; -1 with errno set. No
 * SO_REUSEPORT: a second daemon on the port must fail, not share it. */
static int listen_on(const struct sockaddr_storage *ss)
{
    socklen_t len = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                              : sizeof(struct sockaddr_in);
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int on = 1;
    /* restart at once while old connections sit in TIME_WAIT */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        (ss->ss_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) != 0) ||
        bind(fd, (const struct sockaddr *)ss, len) != 0 || listen(fd, SOMAXCONN) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static void server_free(mandate_http_server *srv)
{
    stop_accepting(srv);
    for (int i = 0; i < 2; i++)
        if (srv->stop_pipe[i] >= 0)
            close(srv->stop_pipe[i]);
    mandate_http_guard_free(&srv->guard);
    mandate_work_queue_free(&srv->aside);
    free(srv->tls_cert);
    free(srv->tls_trust);
    if (srv->tls_key != NULL)
        OPENSSL_cleanse(srv->tls_key, srv->tls_key_len);
    free(srv->tls_key);
    free(srv);
}

mandate_rc mandate_http_start(const mandate_http_settings *settings,
                              mandate_http_handler handler, const mandate_http_source *source,
                              mandate_http_server **server_r, mandate_error *err)
{
    const char *host = settings->host;
    unsigned port = settings->port;
    struct sockaddr_storage ss = {0};
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
                     MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
    } else {
        return mandate_error_set(err, MANDATE_INVALID, "bad listen address '%s'",
                                 settings->listen);
    }

    mandate_http_server *srv = mandate_xcalloc(1, sizeof(*srv));
    srv->listen_fd = srv->stop_pipe[0] = srv->stop_pipe[1] = -1;
    srv->handler = handler;
    srv->source = *source;
    srv->body_limit = settings->body_limit;
    atomic_init(&srv->in_flight, 0);
    srv->guard = mandate_http_guard_new(&(mandate_http_guard_limits){
        .connections = settings->connection_limit,
        .per_address = settings->connections_per_address,
        .request_ms = settings->request_timeout * 1000,
        .idle_ms = settings->connection_timeout * 1000,
    });
    if (settings->tls_certificate != NULL) {
        mandate_rc rc =
            mandate_read_file(settings->tls_certificate, TLS_FILE_MAX, &srv->tls_cert, NULL,
                              err);
        if (rc == MANDATE_OK)
            rc = mandate_read_file(settings->tls_key, TLS_FILE_MAX, &srv->tls_key,
                                   &srv->tls_key_len, err);
        if (rc == MANDATE_OK && settings->tls_client_ca != NULL)
            rc = mandate_read_file(settings->tls_client_ca, TLS_FILE_MAX, &srv->tls_trust, NULL,
                                   err);
        if (rc != MANDATE_OK) {
            server_free(srv);
            return rc;
        }
        flags |= MHD_USE_TLS;
    }

    srv->listen_fd = listen_on(&ss);
    if (srv->listen_fd < 0) {
        int e = errno;
        server_free(srv);
        return mandate_error_set(err, MANDATE_ERROR, "cannot listen on %s: %s",
                                 settings->listen, strerror(e));
    }
    if (pipe2(srv->stop_pipe, O_CLOEXEC) != 0) {
        int e = errno;
        server_free(srv);
        return mandate_error_set(err, MANDATE_ERROR, "cannot make a pipe: %s", strerror(e));
    }

    unsigned threads = settings->threads > 0 ? settings->threads : 1;
    /* libmicrohttpd 0.9.75 (Debian 12) splits its connection limit among
     * the workers and, when a connection handed over with
     * MHD_add_connection finds its worker at its share, returns from
     * new_connection_process_ with the worker's cleanup mutex still
     * locked: the worker then waits on itself for ever (fixed upstream in
     * 0.9.77, "process new connection: fixed missing mutex unlock in error
     * handling path"). So its limit must never be met: the guard admits at
     * most connection_limit connections in all, a worker holds at most
     * those (libmicrohttpd counts one down before the guard can admit
     * another in its place: both happen in its cleanup, and a connection
     * handed over is taken in after it), and each worker's share is
     * twice that. */
    uint64_t mhd_limit = (uint64_t)settings->connection_limit * threads * 2;
    if (mhd_limit > UINT_MAX)
        mhd_limit = UINT_MAX;
    struct MHD_OptionItem tls_opts[] = {
        {srv->tls_cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, srv->tls_cert},
        {srv->tls_cert ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, srv->tls_key},
        {srv->tls_trust ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END, 0, srv->tls_trust},
        {MHD_OPTION_END, 0, NULL}};
    /* clang-format off */
    srv->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, srv,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_error, NULL, /* first, or MHD warns */
        MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)settings->connection_timeout,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)mhd_limit,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv,
        MHD_OPTION_URI_LOG_CALLBACK, on_request_line, srv,
        MHD_OPTION_ARRAY, tls_opts,
        MHD_OPTION_END);
    /* clang-format on */
    if (srv->daemon == NULL) {
        int e = errno;
        server_free(srv);
        return mandate_error_set(err, MANDATE_ERROR, "cannot serve on %s: %s", settings->listen,
                                 e ? strerror(e) : "libmicrohttpd refused");
    }
    unsigned aside_threads = settings->aside_threads > 0 ? settings->aside_threads : 1;
    srv->aside_wait_ms = settings->aside_wait_ms;
    srv->aside = mandate_work_queue_new(
        aside_threads, settings->aside_queue > 0 ? settings->aside_queue : aside_threads * 8);
    if (srv->aside == NULL) {
        MHD_stop_daemon(srv->daemon);
        server_free(srv);
        return mandate_error_set(err, MANDATE_ERROR, "cannot start the set-aside threads");
    }
    int e = pthread_create(&srv->acceptor, NULL, acceptor_main, srv);
    if (e != 0) {
        mandate_work_queue_stop(srv->aside);
        MHD_stop_daemon(srv->daemon);
        server_free(srv);
        return mandate_error_set(err, MANDATE_ERROR, "cannot start the acceptor: %s",
                                 strerror(e));
    }
    srv->accepting = true;
    log_info("serving with %u worker threads, %u for work set aside", threads, aside_threads);
    *server_r = srv;
    return MANDATE_OK;
}

unsigned mandate_http_port(const mandate_http_server *srv)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (srv->listen_fd < 0 || getsockname(srv->listen_fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                          : ((struct sockaddr_in *)&ss)->sin_port);
}

unsigned mandate_http_drain(mandate_http_server *srv, int64_t timeout)
{
    stop_accepting(srv);
    struct timespec step = {0, 10 * 1000 * 1000};
    for (int64_t waited = 0; waited < timeout * 100; waited++) {
        if (atomic_load(&srv->in_flight) == 0)
            return 0;
        nanosleep(&step, NULL);
    }
    return atomic_load(&srv->in_flight);
}

void mandate_http_stop(mandate_http_server **srvp)
{
    mandate_http_server *srv = *srvp;
    if (srv == NULL)
        return;
    stop_accepting(srv); /* no new connection for a daemon being stopped */
    /* libmicrohttpd aborts when stopped with a connection suspended: the
     * work set aside is not done any more (the fetches under way end
     * within their timeout), the requests that waited for it are answered
     * 503, and those waiting for their audit record are answered once it
     * is written, before it stops */
    atomic_store(&srv->stopping, true);
    mandate_work_queue_stop(srv->aside);
    struct timespec step = {0, 10 * 1000 * 1000};
    for (int i = 0; atomic_load(&srv->suspended) > 0; i++) {
        if (i == 3000) {
            log_error("http: %u connections still suspended after 30 s: stopping anyway",
                      atomic_load(&srv->suspended));
            break;
        }
        nanosleep(&step, NULL);
    }
    /* and the answers they were given a moment to be sent */
    for (int i = 0; i < 100 && atomic_load(&srv->in_flight) > 0; i++)
        nanosleep(&step, NULL);
    MHD_stop_daemon(srv->daemon);
    server_free(srv);
    *srvp = NULL;
}
