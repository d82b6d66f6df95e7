/* The connection guard (core/http-guard.c): limits in all and per address,
 * the deadlines, and what it does with sockets libmicrohttpd dropped
 * without a word. The sockets here are plain numbers: the guard never
 * touches one itself, it hands them to the sweep's callback. */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http-guard-private.h"

static struct sockaddr_in v4(const char *text)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    assert_int_equal(inet_pton(AF_INET, text, &a.sin_addr), 1);
    return a;
}

static struct sockaddr_in6 v6(const char *text)
{
    struct sockaddr_in6 a = {.sin6_family = AF_INET6};
    assert_int_equal(inet_pton(AF_INET6, text, &a.sin6_addr), 1);
    return a;
}

#define SA(a) ((const struct sockaddr *)&(a))

/* the i-th of many addresses, from 10.0.0.0 on */
static struct sockaddr_in nth(int i)
{
    return (struct sockaddr_in){.sin_family = AF_INET,
                                .sin_addr.s_addr = htonl(0x0a000000u + (uint32_t)i)};
}

/* what the sweep shut down */
typedef struct shut_log {
    int fds[64];
    mandate_http_guard_reason reasons[64];
    unsigned n;
} shut_log;

static void record_shut(int fd, mandate_http_guard_reason reason, void *ctx)
{
    shut_log *log = ctx;
    if (log->n < 64) {
        log->fds[log->n] = fd;
        log->reasons[log->n] = reason;
    }
    log->n++;
}

static mandate_http_guard *guard(unsigned connections, unsigned per_address)
{
    return mandate_http_guard_new(&(mandate_http_guard_limits){
        .connections = connections,
        .per_address = per_address,
        .request_ms = 2000,
        .idle_ms = 3000,
    });
}

/* accepted and started, as libmicrohttpd would report */
static void serve(mandate_http_guard *g, int fd, const struct sockaddr *peer, int64_t now)
{
    assert_true(mandate_http_guard_admit(g, fd, peer, now));
    mandate_http_guard_started(g, fd);
}

static void test_limit_in_all(void **state)
{
    (void)state;
    mandate_http_guard *g = guard(3, 0);
    struct sockaddr_in a = v4("127.0.0.2");
    assert_false(mandate_http_guard_full(g));
    serve(g, 10, SA(a), 0);
    serve(g, 11, SA(a), 0);
    assert_false(mandate_http_guard_full(g));
    serve(g, 12, SA(a), 0);
    assert_true(mandate_http_guard_full(g));
    assert_int_equal(mandate_http_guard_open(g), 3);
    mandate_http_guard_closed(g, 11);
    assert_false(mandate_http_guard_full(g));
    assert_int_equal(mandate_http_guard_open(g), 2);
    /* a close of a socket the guard does not know changes nothing */
    mandate_http_guard_closed(g, 11);
    mandate_http_guard_closed(g, 999);
    mandate_http_guard_closed(g, -1);
    assert_int_equal(mandate_http_guard_open(g), 2);
    mandate_http_guard_free(&g);
    assert_null(g);
}

static void test_per_address_cap(void **state)
{
    (void)state;
    mandate_http_guard *g = guard(100, 2);
    struct sockaddr_in a = v4("127.0.0.2"), b = v4("127.0.0.3");
    serve(g, 10, SA(a), 0);
    serve(g, 11, SA(a), 0);
    assert_false(mandate_http_guard_admit(g, 12, SA(a), 0));
    assert_int_equal(mandate_http_guard_from(g, SA(a)), 2);
    /* another address is not affected */
    serve(g, 12, SA(b), 0);
    assert_int_equal(mandate_http_guard_from(g, SA(b)), 1);
    /* once one of a's closes, a may connect again */
    mandate_http_guard_closed(g, 10);
    assert_int_equal(mandate_http_guard_from(g, SA(a)), 1);
    serve(g, 10, SA(a), 0);
    assert_int_equal(mandate_http_guard_open(g), 3);
    mandate_http_guard_free(&g);
}

static void test_ipv4_and_ipv6_are_one_address_when_mapped(void **state)
{
    (void)state;
    mandate_http_guard *g = guard(100, 2);
    struct sockaddr_in a = v4("192.0.2.7");
    struct sockaddr_in6 mapped = v6("::ffff:192.0.2.7"), other = v6("2001:db8::7");
    serve(g, 10, SA(a), 0);
    serve(g, 11, SA(mapped), 0);
    assert_false(mandate_http_guard_admit(g, 12, SA(a), 0));
    serve(g, 12, SA(other), 0);
    assert_int_equal(mandate_http_guard_from(g, SA(mapped)), 2);
    mandate_http_guard_free(&g);
}

static void test_refused_at_once_is_released(void **state)
{
    (void)state;
    mandate_http_guard *g = guard(1, 1);
    struct sockaddr_in a = v4("127.0.0.2");
    assert_true(mandate_http_guard_admit(g, 10, SA(a), 0));
    assert_true(mandate_http_guard_full(g));
    mandate_http_guard_release(g, 10); /* libmicrohttpd said no */
    assert_false(mandate_http_guard_full(g));
    assert_int_equal(mandate_http_guard_from(g, SA(a)), 0);
    mandate_http_guard_free(&g);
}

/* A socket libmicrohttpd dropped before serving it (it says nothing then):
 * when its number comes back from accept, the old entry is forgotten. */
static void test_a_socket_number_reused_forgets_the_dropped_one(void **state)
{
    (void)state;
    mandate_http_guard *g = guard(10, 1);
    struct sockaddr_in a = v4("127.0.0.2"), b = v4("127.0.0.3");
    assert_true(mandate_http_guard_admit(g, 10, SA(a), 0)); /* never started */
    assert_true(mandate_http_guard_admit(g, 10, SA(b), 0));
    assert_int_equal(mandate_http_guard_open(g), 1);
    assert_int_equal(mandate_http_guard_from(g, SA(a)), 0);
    assert_int_equal(mandate_http_guard_from(g, SA(b)), 1);
    /* and a can connect again despite its cap of one */
    assert_true(mandate_http_guard_admit(g, 11, SA(a), 0));
    mandate_http_guard_free(&g);
}

/* The deadline tests' guard (10 connections, no cap per address), one
 * peer, and what its sweeps shut down. */
typedef struct deadlines {
    mandate_http_guard *g;
    struct sockaddr_in a;
    shut_log log;
} deadlines;

static int deadlines_setup(void **state)
{
    deadlines *d = calloc(1, sizeof(*d));
    d->g = guard(10, 0);
    d->a = v4("127.0.0.2");
    *state = d;
    return 0;
}

static int deadlines_teardown(void **state)
{
    deadlines *d = *state;
    mandate_http_guard_free(&d->g);
    free(d);
    return 0;
}

/* How many connections a sweep at now shut down. */
static unsigned sweep(deadlines *d, int64_t now)
{
    return mandate_http_guard_sweep(d->g, now, record_shut, &d->log);
}

static void test_request_deadline(void **state)
{
    deadlines *d = *state;
    serve(d->g, 10, SA(d->a), 0);
    serve(d->g, 11, SA(d->a), 0);
    mandate_http_guard_request_begins(d->g, 10, 100);  /* due at 2100 */
    mandate_http_guard_request_begins(d->g, 11, 1000); /* due at 3000 */
    assert_int_equal(sweep(d, 2099), 0);
    assert_int_equal(sweep(d, 2100), 1);
    assert_int_equal(d->log.fds[0], 10);
    assert_int_equal(d->log.reasons[0], MANDATE_GUARD_REQUEST_DEADLINE);
    /* shut down once: libmicrohttpd closes it in its own time */
    assert_int_equal(sweep(d, 2500), 0);
    /* 11's request arrives whole in time: no deadline while it is worked on */
    mandate_http_guard_request_read(d->g, 11);
    assert_int_equal(sweep(d, 100000), 0);
    /* answered: now it must start its next request in idle_ms */
    mandate_http_guard_request_done(d->g, 11, 200000);
    assert_int_equal(sweep(d, 202999), 0);
    assert_int_equal(sweep(d, 203000), 1);
    assert_int_equal(d->log.fds[1], 11);
    assert_int_equal(d->log.reasons[1], MANDATE_GUARD_IDLE_DEADLINE);
    assert_int_equal(d->log.n, 2);
    /* shut down, not forgotten: still counted until libmicrohttpd closes it */
    assert_int_equal(mandate_http_guard_open(d->g), 2);
    mandate_http_guard_closed(d->g, 10);
    mandate_http_guard_closed(d->g, 11);
    assert_int_equal(mandate_http_guard_open(d->g), 0);
}

/* A connection that never sends a whole request line is under the idle
 * deadline from its accept, however many bytes it trickles. */
static void test_idle_deadline_from_accept(void **state)
{
    deadlines *d = *state;
    serve(d->g, 10, SA(d->a), 500);
    assert_int_equal(sweep(d, 3499), 0);
    assert_int_equal(sweep(d, 3500), 1);
    assert_int_equal(d->log.reasons[0], MANDATE_GUARD_IDLE_DEADLINE);
}

/* Handed over but not started: its socket may be gone (and its number
 * another descriptor's), so the sweep never shuts it down. */
static void test_never_shuts_a_connection_not_started(void **state)
{
    deadlines *d = *state;
    assert_true(mandate_http_guard_admit(d->g, 10, SA(d->a), 0));
    assert_int_equal(sweep(d, 1000000), 0);
    assert_int_equal(d->log.n, 0);
}

/* A closed connection leaves the deadline lists: nothing is shut down for
 * it later, even when a new connection gets its number. */
static void test_closed_leaves_the_lists(void **state)
{
    deadlines *d = *state;
    serve(d->g, 10, SA(d->a), 0);
    serve(d->g, 11, SA(d->a), 0);
    serve(d->g, 12, SA(d->a), 0);
    mandate_http_guard_request_begins(d->g, 10, 0);
    mandate_http_guard_request_begins(d->g, 11, 0);
    mandate_http_guard_request_begins(d->g, 12, 0);
    mandate_http_guard_closed(d->g, 11); /* from the middle of the list */
    mandate_http_guard_closed(d->g, 10); /* its head */
    serve(d->g, 10, SA(d->a), 5000);     /* the number again: idle until 8000 */
    assert_int_equal(sweep(d, 7999), 1);
    assert_int_equal(d->log.fds[0], 12);
    assert_int_equal(sweep(d, 8000), 1);
    assert_int_equal(d->log.fds[1], 10);
}

/* Many addresses come and go: the table grows, and every count returns to
 * zero (the backward-shift deletion keeps every probe run whole). */
static void test_many_addresses(void **state)
{
    (void)state;
    enum { N = 3000 };
    mandate_http_guard *g = guard(N, 1);
    for (int i = 0; i < N; i++) {
        struct sockaddr_in a = nth(i);
        serve(g, 100 + i, SA(a), 0);
    }
    assert_int_equal(mandate_http_guard_open(g), N);
    for (int i = 0; i < N; i++) {
        struct sockaddr_in a = nth(i);
        assert_int_equal(mandate_http_guard_from(g, SA(a)), 1);
        assert_false(mandate_http_guard_admit(g, 100 + N + i, SA(a), 0));
    }
    /* close every other one, then check every count */
    for (int i = 0; i < N; i += 2)
        mandate_http_guard_closed(g, 100 + i);
    for (int i = 0; i < N; i++) {
        struct sockaddr_in a = nth(i);
        assert_int_equal(mandate_http_guard_from(g, SA(a)), i % 2);
    }
    for (int i = 1; i < N; i += 2)
        mandate_http_guard_closed(g, 100 + i);
    assert_int_equal(mandate_http_guard_open(g), 0);
    mandate_http_guard_free(&g);
}

int main(void)
{
#define D(f) cmocka_unit_test_setup_teardown(f, deadlines_setup, deadlines_teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limit_in_all),
        cmocka_unit_test(test_per_address_cap),
        cmocka_unit_test(test_ipv4_and_ipv6_are_one_address_when_mapped),
        cmocka_unit_test(test_refused_at_once_is_released),
        cmocka_unit_test(test_a_socket_number_reused_forgets_the_dropped_one),
        D(test_request_deadline),
        D(test_idle_deadline_from_accept),
        D(test_never_shuts_a_connection_not_started),
        D(test_closed_leaves_the_lists),
        cmocka_unit_test(test_many_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
