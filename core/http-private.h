/* The HTTP layer: libmicrohttpd with a thread pool. It owns bodies, limits,
 * request ids and the request's memory; it knows nothing of OAuth, of the
 * configuration or of the runtime a request is served with (the layer above
 * hands it one, opaque, per request, and takes it back). */
#ifndef MANDATE_HTTP_PRIVATE_H
#define MANDATE_HTTP_PRIVATE_H

#include <jansson.h>
#include <microhttpd.h>

#include "peer-private.h"
#include "pool-private.h"

struct mandate_runtime;

#define MANDATE_REQUEST_ID_LEN 16
#define MANDATE_HTTP_MAX_HEADERS 16 /* a page: CSP, framing, cookies, caching, ... */

typedef struct mandate_http_request {
    const char *method;
    const char *path;       /* percent-decoded by libmicrohttpd, without the query */
    const char *raw_target; /* the request-target as received: not decoded, query kept */
    struct MHD_Connection *connection;
    char request_id[MANDATE_REQUEST_ID_LEN + 1];
    const char *body; /* NUL-terminated; body_len excludes the NUL */
    size_t body_len;
    mandate_pool *pool;
    struct mandate_runtime *runtime; /* from the server's source, for the request's life */
    unsigned metric_grant; /* its grant_type label (metrics-private.h): the token endpoint's */
    struct sockaddr_storage socket_peer;
    /* the address behind trusted proxies (refusals.c); "" until asked */
    char peer[MANDATE_PEER_MAX];
    /* the RFC 7638 thumbprint of the key of the request's DPoP proof, once
     * the token endpoint has checked it (dpop-binding-private.h); NULL: none */
    const char *dpop_jkt;
    /* that proof, checked, until its jti is claimed once the client is
     * authenticated (mandate_dpop_request_claim); NULL: none waiting */
    struct mandate_dpop_proof *dpop_proof;
    /* the client certificate of the request, once read (mtls-private.h) */
    struct mandate_mtls_cert *client_cert;
    /* how the request's client authenticated (client_secret_basic,
     * private_key_jwt, ...), once it has; NULL: not, or a public client */
    const char *client_auth_method;
    /* the ctx of the work this request was set aside for
     * (mandate_http_set_aside), once that work is done or given up and the
     * handler is called again; NULL on a request's first call */
    void *set_aside;
} mandate_http_request;

typedef struct mandate_http_header {
    const char *name, *value;
} mandate_http_header;

typedef struct mandate_http_response {
    unsigned status;
    const char *content_type;
    const char *body;
    size_t body_len;
    mandate_http_header headers[MANDATE_HTTP_MAX_HEADERS];
    size_t header_count;
} mandate_http_response;

/* A request header; NULL when absent. */
const char *mandate_http_request_header(const mandate_http_request *req, const char *name);
/* The certificates the TLS client sent (its own first, then the
 * intermediates), DER, at most max of them: how many. 0 over plain HTTP,
 * without a certificate, or for a request made without a connection. The
 * pointers last as long as the request. */
size_t mandate_http_request_peer_certificates(const mandate_http_request *req,
                                              const unsigned char **ders, size_t *lens,
                                              size_t max);
/* How many times the request holds the header name (1 for a request made
 * without a connection, as the tests make them, when it holds it at all). */
size_t mandate_http_request_header_count(const mandate_http_request *req, const char *name);

void mandate_http_response_header(mandate_http_response *resp, const char *name,
                                  const char *value);
/* Serialises body (and releases the reference) into the request pool. */
void mandate_http_response_json(mandate_http_request *req, mandate_http_response *resp,
                                unsigned status, json_t *body);
/* {"member": token, ...rest}: rest's members follow the token (rest is
 * released). The same bytes as mandate_http_response_json would give. */
void mandate_http_response_token_json(mandate_http_request *req, mandate_http_response *resp,
                                      unsigned status, const char *member, const char *token,
                                      json_t *rest);
/* {"error": error, "error_description": description} (RFC 6749 §5.2). */
void mandate_http_response_error(mandate_http_request *req, mandate_http_response *resp,
                                 unsigned status, const char *error, const char *description);

/* Work too slow for an HTTP worker: a fetch from a server anyone may name
 * holds its thread for as long as that server makes it wait, and every
 * other connection libmicrohttpd gave the worker waits with it. */
typedef void (*mandate_http_work)(void *ctx);
typedef enum mandate_http_aside {
    /* the connection is suspended and work(ctx) queued for one of the
     * server's set-aside threads: the handler returns at once, answering
     * nothing; once work is done the handler is called again for the same
     * request (the same pool and runtime), with req->set_aside == ctx; or
     * once it is given up without being run (the request waited longer
     * than the server's aside_wait_ms, or the server is stopping): ctx is
     * then as the handler left it, so it says itself whether work ran */
    MANDATE_HTTP_SET_ASIDE = 1,
    /* every set-aside thread is busy and the queue full: nothing was done,
     * the handler answers (503, try again) */
    MANDATE_HTTP_ASIDE_FULL,
    /* a request made without a connection (as the tests and fuzzers make
     * them): work(ctx) has run on this thread, req->set_aside == ctx, and
     * the handler goes on */
    MANDATE_HTTP_ASIDE_DONE_HERE,
} mandate_http_aside;
/* Sets the request aside for work, called from its handler (once a
 * handler call: a second aborts). work runs on another thread once the
 * handler has returned: it may use the request's pool and runtime, which
 * nothing else touches until the handler is called again, and must not
 * block for ever. What the handler did before the call it does again when
 * called again, so a handler sets aside before anything it must not do
 * twice (takes from a limit, writes, audits). */
mandate_http_aside mandate_http_set_aside(mandate_http_request *req, mandate_http_work work,
                                          void *ctx);
/* Whether the handler's call set the request aside (it then answers
 * nothing). */
bool mandate_http_request_is_set_aside(const mandate_http_request *req);

/* Where each request finds the runtime to serve with: acquire returns a
 * reference (NULL: the request is answered 503), which the HTTP layer hands
 * to release once the response is sent. too_large (may be NULL) hears of a
 * body over the limit before the layer answers it 413 (no handler runs for
 * it): the layer above keeps the audit record, which this layer cannot. */
typedef struct mandate_http_source {
    struct mandate_runtime *(*acquire)(void *ctx);
    void (*release)(void *ctx, struct mandate_runtime *runtime);
    void *ctx;
    void (*too_large)(void *ctx, mandate_http_request *req, size_t body_limit);
} mandate_http_source;
typedef void (*mandate_http_handler)(mandate_http_request *req, mandate_http_response *resp);

/* What the server is started with (the daemon reads it from the server
 * section of the configuration). */
typedef struct mandate_http_settings {
    const char *listen; /* as configured, for messages */
    const char *host;   /* a numeric IPv4 or IPv6 address */
    unsigned port;      /* 0: a free port (mandate_http_port says which) */
    unsigned threads;   /* worker threads, at least 1 */
    size_t body_limit;  /* bytes; a larger body is answered 413 */
    unsigned connection_limit, connections_per_address; /* 0: no cap per address */
    int64_t request_timeout, connection_timeout;        /* seconds */
    const char *tls_certificate, *tls_key; /* PEM files; NULL: plain HTTP */
    /* PEM CA certificates: with HTTPS, clients are asked for a certificate
     * (never required: libmicrohttpd only requests one, and the handler
     * judges it: mtls-private.h); NULL: none asked */
    const char *tls_client_ca;
    /* threads for the work requests are set aside for (0: 1), how many
     * such requests may wait for one besides (0: 8 a thread), and how long
     * one may wait before it is answered as if the queue were full (ms; 0:
     * no limit) */
    unsigned aside_threads, aside_queue;
    int64_t aside_wait_ms;
} mandate_http_settings;

typedef struct mandate_http_server mandate_http_server;

mandate_rc mandate_http_start(const mandate_http_settings *settings,
                              mandate_http_handler handler, const mandate_http_source *source,
                              mandate_http_server **server_r, mandate_error *err);
/* The port actually bound (useful with port 0). */
unsigned mandate_http_port(const mandate_http_server *server);
/* Stop accepting, wait up to timeout seconds for in-flight requests;
 * returns how many were still running. */
unsigned mandate_http_drain(mandate_http_server *server, int64_t timeout);
void mandate_http_stop(mandate_http_server **server);

#endif
