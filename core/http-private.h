/* The HTTP layer: libmicrohttpd with a thread pool. It owns bodies, limits,
 * request ids and the request's memory; it knows nothing of OAuth. */
#ifndef MANDATE_HTTP_PRIVATE_H
#define MANDATE_HTTP_PRIVATE_H

#include <jansson.h>
#include <microhttpd.h>

#include "peer-private.h"
#include "runtime-private.h"

#define MANDATE_REQUEST_ID_LEN 16
#define MANDATE_HTTP_MAX_HEADERS 8

typedef struct mandate_http_request {
    const char *method;
    const char *path;       /* percent-decoded by libmicrohttpd, without the query */
    const char *raw_target; /* the request-target as received: not decoded, query kept */
    struct MHD_Connection *connection;
    char request_id[MANDATE_REQUEST_ID_LEN + 1];
    const char *body; /* NUL-terminated; body_len excludes the NUL */
    size_t body_len;
    mandate_pool *pool;
    mandate_runtime *runtime;
    int metric_grant; /* mandate_metric_grant, set by the token endpoint */
    struct sockaddr_storage socket_peer;
    char peer[MANDATE_PEER_MAX]; /* see mandate_http_request_peer; "" until asked */
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
/* The address the request comes from (peer-private.h): the socket's peer,
 * or the client behind a trusted proxy (server.trusted_proxies). */
const char *mandate_http_request_peer(mandate_http_request *req);

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

/* Where each request finds the runtime to serve with: returns a reference
 * the HTTP layer drops when the response is sent. */
typedef mandate_runtime *(*mandate_runtime_source)(void *ctx);
typedef void (*mandate_http_handler)(mandate_http_request *req, mandate_http_response *resp);

typedef struct mandate_http_server mandate_http_server;

mandate_rc mandate_http_start(const mandate_config *config, mandate_http_handler handler,
                              mandate_runtime_source source, void *source_ctx,
                              mandate_http_server **server_r, mandate_error *err);
/* The port actually bound (useful with port 0). */
unsigned mandate_http_port(const mandate_http_server *server);
/* Stop accepting, wait up to timeout seconds for in-flight requests;
 * returns how many were still running. */
unsigned mandate_http_drain(mandate_http_server *server, int64_t timeout);
void mandate_http_stop(mandate_http_server **server);

#endif
