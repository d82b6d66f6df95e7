/* What keeps one client from holding the HTTP server: every connection
 * handed to libmicrohttpd is counted, in all and per peer address, and
 * given a deadline for the phase it is in.
 *
 * - In all: the acceptor hands over at most `connections` at once; more
 *   wait in the kernel's backlog. libmicrohttpd's own limit is set far
 *   above it (http.c says why: 0.9.75 deadlocks when its limit is met by
 *   a connection handed over with MHD_add_connection).
 * - Per address: a peer holding `per_address` connections has its next
 *   one closed at once, so one client cannot take every slot.
 * - Deadlines: a connection must send a whole request (from its first
 *   line to the last byte of its body) within `request_ms`, and must start
 *   one within `idle_ms` of being accepted or answered. libmicrohttpd's own
 *   timeout only counts silence, so a client that trickles a header line
 *   every few seconds (slowloris) would hold its connection for ever.
 *   A connection past its deadline is shut down (shutdown(2)), and
 *   libmicrohttpd closes it as it would any connection its peer dropped.
 *
 * Connections are known by their socket, which is unique among open
 * descriptors: the table is indexed by it. libmicrohttpd reports a
 * connection it starts serving and, before closing its socket, the end of
 * it; a socket is only ever shut down between the two, under the guard's
 * lock, so never after libmicrohttpd has closed it (when its number could
 * already belong to another descriptor). Thread-safe. */
#ifndef MANDATE_HTTP_GUARD_PRIVATE_H
#define MANDATE_HTTP_GUARD_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct mandate_http_guard mandate_http_guard;

typedef struct mandate_http_guard_limits {
    unsigned connections; /* at once, in all (at least 1) */
    unsigned per_address; /* at once, from one peer address; 0: no cap */
    int64_t request_ms;   /* from a request's first line to its last body byte */
    int64_t idle_ms;      /* from the accept or the last answer to the next request */
} mandate_http_guard_limits;

/* Why a connection was closed by the guard. */
typedef enum mandate_http_guard_reason {
    MANDATE_GUARD_ADDRESS_LIMIT,    /* its peer already held per_address connections */
    MANDATE_GUARD_REQUEST_DEADLINE, /* its request did not arrive whole in time */
    MANDATE_GUARD_IDLE_DEADLINE,    /* it did not start a request in time */
    MANDATE_GUARD_REASON_COUNT_
} mandate_http_guard_reason;

mandate_http_guard *mandate_http_guard_new(const mandate_http_guard_limits *limits);
void mandate_http_guard_free(mandate_http_guard **guard);

/* Whether the connections in all are at the limit: then the acceptor does
 * not accept (the connection waits in the backlog). */
bool mandate_http_guard_full(mandate_http_guard *guard);

/* A socket just accepted from peer: true when it may be handed over (it is
 * then counted from now_ms); false when its address is at its cap (the
 * caller closes it: MANDATE_GUARD_ADDRESS_LIMIT). */
bool mandate_http_guard_admit(mandate_http_guard *guard, int fd, const struct sockaddr *peer,
                              int64_t now_ms);
/* Handed over, but libmicrohttpd refused it at once (it closed the socket):
 * no longer counted. */
void mandate_http_guard_release(mandate_http_guard *guard, int fd);

/* libmicrohttpd's connection notifications: serving begins / the socket is
 * about to be closed. */
void mandate_http_guard_started(mandate_http_guard *guard, int fd);
void mandate_http_guard_closed(mandate_http_guard *guard, int fd);

/* A request's first line has arrived: its deadline starts. */
void mandate_http_guard_request_begins(mandate_http_guard *guard, int fd, int64_t now_ms);
/* Its body has arrived whole: the broker is working on it (no deadline). */
void mandate_http_guard_request_read(mandate_http_guard *guard, int fd);
/* Answered: the connection waits for its next request from now_ms. */
void mandate_http_guard_request_done(mandate_http_guard *guard, int fd, int64_t now_ms);

/* Shuts down every connection past its deadline at now_ms, calling
 * shut(fd, reason, ctx) for each under the guard's lock (shut must not call
 * back into the guard). Returns how many. */
unsigned mandate_http_guard_sweep(mandate_http_guard *guard, int64_t now_ms,
                                  void (*shut)(int fd, mandate_http_guard_reason reason,
                                               void *ctx),
                                  void *ctx);

/* Connections open now, in all and from peer's address. */
unsigned mandate_http_guard_open(mandate_http_guard *guard);
unsigned mandate_http_guard_from(mandate_http_guard *guard, const struct sockaddr *peer);

#endif
