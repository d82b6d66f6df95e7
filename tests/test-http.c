/* The HTTP layer (core/http.c) on its own: a server on a free loopback port
 * with a handler of the test's and a source of fake runtimes, spoken to over
 * raw sockets. What it owns: the request as the handler sees it, request
 * ids, the body limit (413, announced or chunked), the framing refusals, the
 * runtime taken for each request and handed back, the answer without one
 * (503). The guard on connections has its own test (test-http-guard). */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "http-private.h"
#include "pool-private.h"
#include "test-helpers.h"
#include "util-private.h"

#define BODY_LIMIT 1024

/* The runtime the source hands out: any address will do, the HTTP layer
 * never looks inside. */
static char fake_runtime;
static atomic_int acquired, released, refuse_runtime;
static atomic_int handled;
/* the layer above told of each body over the limit: how often, and the last
 * route and limit it heard */
static atomic_int too_large_told;
static char too_large_route[64];
static size_t too_large_limit;

static void too_large(void *ctx, mandate_http_request *req, size_t body_limit)
{
    (void)ctx;
    snprintf(too_large_route, sizeof(too_large_route), "%s %s", req->method, req->path);
    too_large_limit = body_limit;
    atomic_fetch_add(&too_large_told, 1);
}

static struct mandate_runtime *acquire(void *ctx)
{
    (void)ctx;
    if (atomic_load(&refuse_runtime))
        return NULL;
    atomic_fetch_add(&acquired, 1);
    return (struct mandate_runtime *)&fake_runtime;
}

static void release(void *ctx, struct mandate_runtime *rt)
{
    (void)ctx;
    assert_ptr_equal(rt, &fake_runtime);
    atomic_fetch_add(&released, 1);
}

/* The work /aside sets its request aside for: it waits until the test
 * lets it go, so the test can see the worker serve others meanwhile. */
static pthread_mutex_t aside_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t aside_changed = PTHREAD_COND_INITIALIZER;
static unsigned aside_entered;
static bool aside_open;
static atomic_int aside_handled;

typedef struct aside_work {
    pthread_t thread;
    bool done;
} aside_work;

static void slow_work(void *ctx)
{
    aside_work *w = ctx;
    pthread_mutex_lock(&aside_lock);
    aside_entered++;
    pthread_cond_broadcast(&aside_changed);
    while (!aside_open)
        pthread_cond_wait(&aside_changed, &aside_lock);
    pthread_mutex_unlock(&aside_lock);
    w->thread = pthread_self();
    w->done = true;
}

/* /aside: set aside for slow_work on the first call, answered on the
 * second with what the work left; 503 when it cannot be set aside, or
 * when its work was given up. */
static void aside(mandate_http_request *req, mandate_http_response *resp)
{
    atomic_fetch_add(&aside_handled, 1);
    aside_work *done = req->set_aside;
    if (done == NULL) {
        aside_work *w = mandate_pool_alloc(req->pool, sizeof(*w));
        mandate_http_aside how = mandate_http_set_aside(req, slow_work, w);
        assert_int_equal(mandate_http_request_is_set_aside(req), how == MANDATE_HTTP_SET_ASIDE);
        if (how == MANDATE_HTTP_ASIDE_FULL)
            mandate_http_response_error(req, resp, 503, "temporarily_unavailable", "full");
        return;
    }
    if (!done->done) {
        mandate_http_response_error(req, resp, 503, "temporarily_unavailable", "given up");
        return;
    }
    mandate_http_response_json(req, resp, 200,
                               json_pack("{s:b,s:b}", "done", done->done, "elsewhere",
                                         !pthread_equal(done->thread, pthread_self())));
}

/* Echoes what it was handed. */
static void echo(mandate_http_request *req, mandate_http_response *resp)
{
    if (strcmp(req->path, "/aside") == 0) {
        aside(req, resp);
        return;
    }
    atomic_fetch_add(&handled, 1);
    const char *hdr = mandate_http_request_header(req, "X-Test-Header");
    json_t *body =
        json_pack("{s:s,s:s,s:s,s:s%,s:I,s:s,s:b}", "method", req->method, "path", req->path,
                  "target", req->raw_target ? req->raw_target : "", "body", req->body,
                  req->body_len, "len", (json_int_t)req->body_len, "id", req->request_id,
                  "runtime", req->runtime == (struct mandate_runtime *)&fake_runtime);
    if (hdr != NULL)
        json_object_set_new(body, "header", json_string(hdr));
    mandate_http_response_json(req, resp, strcmp(req->path, "/teapot") == 0 ? 418 : 200, body);
    mandate_http_response_header(resp, "X-Echo", "yes");
}

typedef struct server {
    mandate_http_server *srv;
    unsigned port;
} server;

static unsigned setup_threads = 2;

static int setup(void **state)
{
    atomic_store(&acquired, 0);
    atomic_store(&released, 0);
    atomic_store(&handled, 0);
    atomic_store(&refuse_runtime, 0);
    atomic_store(&too_large_told, 0);
    const mandate_http_settings settings = {
        .listen = "127.0.0.1:0",
        .host = "127.0.0.1",
        .port = 0,
        .threads = setup_threads,
        .body_limit = BODY_LIMIT,
        .connection_limit = 64,
        .aside_threads = 1,
        .aside_queue = 1,
        .connections_per_address = 0,
        .request_timeout = 5,
        .connection_timeout = 5,
    };
    const mandate_http_source source = {acquire, release, NULL, too_large};
    server *s = mandate_xcalloc(1, sizeof(*s));
    mandate_error err = {0};
    if (mandate_http_start(&settings, echo, &source, &s->srv, &err) != MANDATE_OK)
        fail_msg("start: %s", err.message);
    s->port = mandate_http_port(s->srv);
    *state = s;
    return 0;
}

/* One worker: a request that held it would hold every other. */
static int setup_one_worker(void **state)
{
    setup_threads = 1;
    int r = setup(state);
    setup_threads = 2;
    return r;
}

static int teardown(void **state)
{
    server *s = *state;
    assert_int_equal(mandate_http_drain(s->srv, 5), 0);
    mandate_http_stop(&s->srv);
    assert_null(s->srv);
    free(s);
    return 0;
}

typedef struct answer {
    unsigned status;
    char head[4096]; /* the status line and the headers */
    char *body;      /* in all, after the head */
    char all[65536];
} answer;

/* Reads the answer on fd until the server closes, and closes fd. */
static void read_answer(int fd, answer *a)
{
    memset(a, 0, sizeof(*a));
    size_t got = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 5000) != 1)
            fail_msg("no answer within 5 s; so far: %.*s", (int)got, a->all);
        ssize_t n = recv(fd, a->all + got, sizeof(a->all) - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    a->all[got] = '\0';
    assert_int_equal(sscanf(a->all, "HTTP/1.1 %u", &a->status), 1);
    char *end = strstr(a->all, "\r\n\r\n");
    assert_non_null(end);
    size_t head_len = (size_t)(end - a->all);
    assert_true(head_len < sizeof(a->head));
    memcpy(a->head, a->all, head_len);
    a->body = end + 4;
}

static int connect_to(const server *s)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    return fd;
}

/* Sends raw (len bytes), reads the answer until the server closes. */
static void exchange(const server *s, const char *raw, size_t len, answer *a)
{
    int fd = connect_to(s);
    for (size_t sent = 0; sent < len;) {
        ssize_t n = send(fd, raw + sent, len - sent, MSG_NOSIGNAL);
        if (n <= 0)
            break; /* the server may answer and close before all is sent */
        sent += (size_t)n;
    }
    read_answer(fd, a);
}

static void send_text(const server *s, const char *raw, answer *a)
{
    exchange(s, raw, strlen(raw), a);
}

/* A response header's value (case-insensitive name), or NULL. */
static const char *header_of(const answer *a, const char *name, char *out, size_t cap)
{
    for (const char *line = strstr(a->head, "\r\n"); line != NULL;
         line = strstr(line + 2, "\r\n")) {
        const char *l = line + 2;
        size_t n = strlen(name);
        if (strncasecmp(l, name, n) == 0 && l[n] == ':') {
            const char *v = l + n + 1;
            v += strspn(v, " ");
            size_t vn = strcspn(v, "\r\n");
            snprintf(out, cap, "%.*s", (int)vn, v);
            return out;
        }
    }
    return NULL;
}

/* The answer has this status, and its body says says (NULL: anything). */
static void expect_answer(const answer *a, unsigned status, const char *says)
{
    if (a->status != status)
        fail_msg("%u, expected %u: %s", a->status, status, a->all);
    if (says != NULL && !test_contains(a->body, says))
        fail_msg("the body does not say '%s': %s", says, a->body);
}

static json_t *body_json(const answer *a)
{
    json_error_t e;
    json_t *j = json_loads(a->body, 0, &e);
    if (j == NULL)
        fail_msg("not JSON (%s): %s", e.text, a->body);
    return j;
}

/* What the echo handler saw of raw, which it answered 200 to. */
static json_t *echoed(const server *s, const char *raw, answer *a)
{
    send_text(s, raw, a);
    expect_answer(a, 200, NULL);
    return body_json(a);
}

static void test_starts_on_a_free_port(void **state)
{
    server *s = *state;
    assert_int_not_equal(s->port, 0);
    answer a;
    json_t *j = echoed(s,
                       "GET /x/y?q=1 HTTP/1.1\r\nHost: t\r\nX-Test-Header: hello\r\n"
                       "Connection: close\r\n\r\n",
                       &a);
    assert_string_equal(json_string_value(json_object_get(j, "method")), "GET");
    assert_string_equal(json_string_value(json_object_get(j, "path")), "/x/y");
    assert_string_equal(json_string_value(json_object_get(j, "target")), "/x/y?q=1");
    assert_string_equal(json_string_value(json_object_get(j, "header")), "hello");
    assert_true(json_is_true(json_object_get(j, "runtime")));
    assert_int_equal(json_integer_value(json_object_get(j, "len")), 0);
    /* the request id: on the answer, and the one the handler saw */
    char id[64], v[64];
    assert_non_null(header_of(&a, "X-Request-Id", id, sizeof(id)));
    assert_int_equal(strlen(id), MANDATE_REQUEST_ID_LEN);
    assert_int_equal(strspn(id, "0123456789abcdef"), MANDATE_REQUEST_ID_LEN);
    assert_string_equal(json_string_value(json_object_get(j, "id")), id);
    assert_string_equal(header_of(&a, "Content-Type", v, sizeof(v)), "application/json");
    assert_string_equal(header_of(&a, "X-Echo", v, sizeof(v)), "yes");
    json_decref(j);

    /* a second request has another id; the handler's status is kept */
    answer b;
    send_text(s, "GET /teapot HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &b);
    assert_int_equal(b.status, 418);
    char id2[64];
    assert_non_null(header_of(&b, "X-Request-Id", id2, sizeof(id2)));
    assert_string_not_equal(id, id2);
}

static void test_body_reaches_the_handler(void **state)
{
    server *s = *state;
    answer a;
    static const char *const framings[] = {
        "Content-Length: 11\r\nConnection: close\r\n\r\nhello world",
        /* chunked, as long as the limit allows */
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(framings) / sizeof(framings[0]); i++) {
        char *raw = mandate_xasprintf("POST /p HTTP/1.1\r\nHost: t\r\n%s", framings[i]);
        json_t *j = echoed(s, raw, &a);
        free(raw);
        const char *body = json_string_value(json_object_get(j, "body"));
        if (body == NULL || strcmp(body, "hello world") != 0 ||
            json_integer_value(json_object_get(j, "len")) != 11)
            fail_msg("framing %zu: the handler saw %s", i, a.body);
        json_decref(j);
    }
    /* a body of exactly the limit */
    char *raw = mandate_xasprintf("POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n"
                                  "Connection: close\r\n\r\n%0*d",
                                  BODY_LIMIT, BODY_LIMIT, 0);
    send_text(s, raw, &a);
    free(raw);
    assert_int_equal(a.status, 200);
}

/* Over server.body_limit: 413, announced (before a byte is read) or found
 * while reading a chunked body; the handler never runs. */
static void test_body_limit(void **state)
{
    server *s = *state;
    answer a;
    char *raw = mandate_xasprintf("POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n"
                                  "Connection: close\r\n\r\n",
                                  BODY_LIMIT + 1);
    send_text(s, raw, &a);
    free(raw);
    expect_answer(&a, 413, "request body too large");
    assert_true(test_contains(a.body, "\"error\":\"invalid_request\""));
    char v[64];
    assert_string_equal(header_of(&a, "Connection", v, sizeof(v)), "close");
    /* told to the layer above (its audit record): the route and the limit */
    assert_int_equal(atomic_load(&too_large_told), 1);
    assert_string_equal(too_large_route, "POST /p");
    assert_int_equal(too_large_limit, BODY_LIMIT);

    char chunk[BODY_LIMIT + 200];
    memset(chunk, 'x', sizeof(chunk) - 1);
    chunk[sizeof(chunk) - 1] = '\0';
    raw = mandate_xasprintf("POST /p HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                            "Connection: close\r\n\r\n%zx\r\n%s\r\n0\r\n\r\n",
                            strlen(chunk), chunk);
    send_text(s, raw, &a);
    free(raw);
    expect_answer(&a, 413, "request body too large");
    assert_int_equal(atomic_load(&handled), 0);
    assert_int_equal(atomic_load(&too_large_told), 2);
}

/* A body two readers could frame differently is refused, never guessed. */
static void test_framing_refusals(void **state)
{
    server *s = *state;
    static const struct {
        const char *headers, *body;
        unsigned status;
        const char *why;
    } cases[] = {
        {"Content-Length: 5\r\nContent-Length: 6\r\n", "hello!", 400,
         "more than one Content-Length"},
        {"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "5\r\nhello\r\n0\r\n\r\n", 400,
         "both Content-Length and Transfer-Encoding"},
        {"Transfer-Encoding: gzip, chunked\r\n", "", 501,
         "a Transfer-Encoding other than chunked"},
        /* libmicrohttpd answers this one itself (in HTML) */
        {"Content-Length: +5\r\n", "", 400, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *raw = mandate_xasprintf("POST /p HTTP/1.1\r\nHost: t\r\n%sConnection: close\r\n"
                                      "\r\n%s",
                                      cases[i].headers, cases[i].body);
        answer a;
        send_text(s, raw, &a);
        free(raw);
        if (a.status != cases[i].status)
            fail_msg("case %zu: %u, expected %u: %s", i, a.status, cases[i].status, a.all);
        if (cases[i].why != NULL)
            assert_true(test_contains(a.body, cases[i].why));
        char v[64];
        assert_string_equal(header_of(&a, "Connection", v, sizeof(v)), "close");
    }
    assert_int_equal(atomic_load(&handled), 0);
}

/* Each request takes a runtime and hands it back once answered; without
 * one (before the daemon publishes its first), 503. */
static void test_runtime_taken_and_handed_back(void **state)
{
    server *s = *state;
    answer a;
    for (int i = 0; i < 3; i++) {
        send_text(s, "GET /r HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &a);
        assert_int_equal(a.status, 200);
    }
    /* handed back once the answer is out: the client may see it first */
    for (int waited = 0; atomic_load(&released) < 3 && waited < 500; waited++)
        usleep(2000);
    assert_int_equal(atomic_load(&acquired), 3);
    assert_int_equal(atomic_load(&released), 3);

    atomic_store(&refuse_runtime, 1);
    send_text(s, "GET /r HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &a);
    expect_answer(&a, 503, "temporarily_unavailable");
    assert_int_equal(atomic_load(&handled), 3);
    assert_int_equal(atomic_load(&released), 3);
}

/* HEAD: the handler's answer without its body. */
static void test_head(void **state)
{
    server *s = *state;
    answer a;
    send_text(s, "HEAD /h HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &a);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.body, "");
    char v[64];
    assert_non_null(header_of(&a, "X-Request-Id", v, sizeof(v)));
}

/* Two requests on one connection, each answered. */
static void test_keep_alive(void **state)
{
    server *s = *state;
    answer a;
    send_text(s,
              "GET /one HTTP/1.1\r\nHost: t\r\n\r\n"
              "GET /two HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
              &a);
    assert_int_equal(a.status, 200);
    assert_true(test_contains(a.all, "\"path\":\"/one\""));
    assert_true(test_contains(a.all, "\"path\":\"/two\""));
}

/* The bytes of a token answer are those mandate_http_response_json gives. */
static void test_token_json_is_json(void **state)
{
    (void)state;
    mandate_pool *pool = mandate_pool_new();
    mandate_http_request req = {.pool = pool};
    static const char *const tokens[] = {"eyJhbGciOi.eyJzdWIi.sig-_", "needs \"escaping\"\n",
                                         "x"};
    for (size_t i = 0; i < 3; i++) {
        for (int with_rest = 0; with_rest < 2; with_rest++) {
            json_t *rest =
                with_rest ? json_pack("{s:s,s:i}", "token_type", "Bearer", "expires_in", 60)
                          : json_object();
            json_t *whole = json_pack("{s:s}", "access_token", tokens[i]);
            json_object_update(whole, rest);
            mandate_http_response fast = {0}, slow = {0};
            mandate_http_response_token_json(&req, &fast, 200, "access_token", tokens[i], rest);
            mandate_http_response_json(&req, &slow, 200, whole);
            assert_int_equal(fast.body_len, slow.body_len);
            assert_memory_equal(fast.body, slow.body, slow.body_len);
            assert_string_equal(fast.content_type, "application/json");
        }
    }
    /* at most MANDATE_HTTP_MAX_HEADERS headers; more are dropped, not written past */
    mandate_http_response r = {0};
    for (int i = 0; i < MANDATE_HTTP_MAX_HEADERS + 2; i++)
        mandate_http_response_header(&r, "X", "y");
    assert_int_equal(r.header_count, MANDATE_HTTP_MAX_HEADERS);
    mandate_pool_free(&pool);
}

/* A listen address that is not a numeric address is refused at start. */
static void send_all(int fd, const char *raw)
{
    assert_int_equal(send(fd, raw, strlen(raw), MSG_NOSIGNAL), (ssize_t)strlen(raw));
}

static void wait_aside_entered(unsigned n)
{
    pthread_mutex_lock(&aside_lock);
    while (aside_entered < n)
        pthread_cond_wait(&aside_changed, &aside_lock);
    pthread_mutex_unlock(&aside_lock);
}

static const char get_aside[] = "GET /aside HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

/* Two requests set aside, with the work held (until aside_open): the
 * first's work under way on the one work thread, the second's queued. */
static void hold_two_set_aside(const server *s, int *first_r, int *second_r)
{
    aside_entered = 0;
    aside_open = false;
    atomic_store(&aside_handled, 0);
    *first_r = connect_to(s);
    send_all(*first_r, get_aside);
    wait_aside_entered(1); /* its work holds the one work thread */
    *second_r = connect_to(s);
    send_all(*second_r, get_aside);
    while (atomic_load(&aside_handled) < 2) /* queued */
        usleep(1000);
}

/* A request set aside (review s35, finding 5: a client document's slow
 * server held the worker that fetched it, and every connection on it):
 * its work runs on another thread while the server's one worker answers
 * others; then the handler is called again, and answers. One work thread
 * and one place in its queue: a third request is answered at once, 503. */
static void test_set_aside(void **state)
{
    server *s = *state;
    int first, second;
    hold_two_set_aside(s, &first, &second);
    answer a;
    /* the one worker is free for others meanwhile */
    json_t *j = echoed(s, "GET /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &a);
    assert_string_equal(json_string_value(json_object_get(j, "path")), "/other");
    json_decref(j);
    /* queued behind the first: the queue is full */
    send_text(s, get_aside, &a);
    expect_answer(&a, 503, "full");
    pthread_mutex_lock(&aside_lock);
    aside_open = true;
    pthread_cond_broadcast(&aside_changed);
    pthread_mutex_unlock(&aside_lock);
    for (int fd = first, i = 0; i < 2; fd = second, i++) {
        read_answer(fd, &a);
        expect_answer(&a, 200, NULL);
        j = body_json(&a);
        assert_true(json_is_true(json_object_get(j, "done")));
        assert_true(json_is_true(json_object_get(j, "elsewhere")));
        json_decref(j);
    }
    /* each set-aside request handled twice, the refused one once */
    assert_int_equal(atomic_load(&aside_handled), 5);
}

/* The same with libmicrohttpd's thread pool (two workers), as the daemon
 * runs it: the connection resumed from the work thread is served again. */
static void test_set_aside_worker_pool(void **state)
{
    server *s = *state;
    aside_open = true;
    atomic_store(&aside_handled, 0);
    answer a;
    send_text(s, get_aside, &a);
    expect_answer(&a, 200, NULL);
    json_t *j = body_json(&a);
    assert_true(json_is_true(json_object_get(j, "done")));
    assert_true(json_is_true(json_object_get(j, "elsewhere")));
    json_decref(j);
    assert_int_equal(atomic_load(&aside_handled), 2);
}

static void *open_aside_later(void *arg)
{
    (void)arg;
    usleep(200 * 1000); /* while the server is being stopped, most likely */
    pthread_mutex_lock(&aside_lock);
    aside_open = true;
    pthread_cond_broadcast(&aside_changed);
    pthread_mutex_unlock(&aside_lock);
    return NULL;
}

/* Whatever the server sent on fd before it closed: its status, 0 if none
 * (a server being stopped may close before a queued answer is sent). */
static unsigned status_sent(int fd)
{
    char buf[4096];
    size_t got = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 5000) != 1)
            fail_msg("the server neither answered nor closed within 5 s");
        ssize_t n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    unsigned status = 0;
    return sscanf(buf, "HTTP/1.1 %u", &status) == 1 ? status : 0;
}

/* Stopped with one request's work under way and another's queued: the
 * work under way is finished, the queued work not done (its request
 * answered 503), and libmicrohttpd is not stopped while a connection is
 * suspended (it aborts the process then: review s36). */
static void test_stop_with_work_set_aside(void **state)
{
    server *s = *state;
    int first, second;
    hold_two_set_aside(s, &first, &second);
    pthread_t opener;
    assert_int_equal(pthread_create(&opener, NULL, open_aside_later, NULL), 0);
    mandate_http_stop(&s->srv);
    pthread_join(opener, NULL);
    assert_null(s->srv);
    assert_int_equal(aside_entered, 1); /* the queued work was not done */
    unsigned one = status_sent(first), two = status_sent(second);
    assert_true(one == 200 || one == 0);
    assert_true(two == 503 || two == 0);
    assert_int_equal(atomic_load(&aside_handled), 4);
}

static int teardown_stopped(void **state)
{
    server *s = *state;
    assert_null(s->srv);
    free(s);
    return 0;
}

/* A request made without a connection (the tests' and fuzzers'): the work
 * is done there and then. */
static void test_set_aside_without_connection(void **state)
{
    (void)state;
    aside_open = true;
    mandate_http_request req = {.method = "GET", .path = "/aside", .pool = mandate_pool_new()};
    aside_work w = {0};
    assert_int_equal(mandate_http_set_aside(&req, slow_work, &w), MANDATE_HTTP_ASIDE_DONE_HERE);
    assert_true(w.done);
    assert_ptr_equal(req.set_aside, &w);
    assert_false(mandate_http_request_is_set_aside(&req));
    mandate_pool_free(&req.pool);
}

static void test_bad_address(void **state)
{
    (void)state;
    const mandate_http_settings settings = {.listen = "localhost:0",
                                            .host = "localhost",
                                            .threads = 1,
                                            .body_limit = BODY_LIMIT,
                                            .connection_limit = 4,
                                            .request_timeout = 1,
                                            .connection_timeout = 1};
    const mandate_http_source source = {acquire, release, NULL, NULL};
    mandate_http_server *srv = NULL;
    mandate_error err = {0};
    assert_int_equal(mandate_http_start(&settings, echo, &source, &srv, &err), MANDATE_INVALID);
    assert_null(srv);
    assert_true(test_contains(err.message, "bad listen address 'localhost:0'"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST_FX(test_starts_on_a_free_port),
        TEST_FX(test_body_reaches_the_handler),
        TEST_FX(test_body_limit),
        TEST_FX(test_framing_refusals),
        TEST_FX(test_runtime_taken_and_handed_back),
        TEST_FX(test_head),
        TEST_FX(test_keep_alive),
        cmocka_unit_test_setup_teardown(test_set_aside, setup_one_worker, teardown),
        TEST_FX(test_set_aside_worker_pool),
        cmocka_unit_test_setup_teardown(test_stop_with_work_set_aside, setup_one_worker,
                                        teardown_stopped),
        cmocka_unit_test(test_set_aside_without_connection),
        cmocka_unit_test(test_token_json_is_json),
        cmocka_unit_test(test_bad_address),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
