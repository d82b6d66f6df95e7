/* A libmicrohttpd server on 127.0.0.1 that plays an upstream for a test
 * (an OpenID provider, a broker), and the keys it publishes as a JWKS,
 * which a test changes while the server's threads read them. */
#ifndef MANDATE_TESTS_LOOPBACK_SERVER_H
#define MANDATE_TESTS_LOOPBACK_SERVER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <microhttpd.h>
#include <openssl/evp.h>

#define LOOPBACK_MAX_KEYS 4

typedef struct loopback_server {
    struct MHD_Daemon *mhd;
    uint16_t port;
    char base[64]; /* "http://127.0.0.1:<port>" */

    /* guards the keys and kids, and whatever else the test shares with
     * the handler's threads */
    pthread_mutex_t lock;
    EVP_PKEY *keys[LOOPBACK_MAX_KEYS];
    const char *kids[LOOPBACK_MAX_KEYS];
    size_t key_count;
} loopback_server;

/* Starts srv, publishing no key yet, on a port of the system's choosing, a
 * thread per connection, answering with handler(cls); completed (NULL:
 * none) frees what a request kept in *con_cls. The test fails when it
 * cannot start. */
void loopback_server_start(loopback_server *srv, MHD_AccessHandlerCallback handler, void *cls,
                           MHD_RequestCompletedCallback completed);
/* Stops srv answering, if it still does (the upstream going away). */
void loopback_server_stop(loopback_server *srv);
/* Stops srv and frees what start made. */
void loopback_server_close(loopback_server *srv);

/* Queues body (malloc'ed, freed here) as a response of status and type,
 * with the headers of extra: name, value, ..., NULL (NULL: none). */
enum MHD_Result loopback_reply(struct MHD_Connection *conn, unsigned status, const char *type,
                               char *body, const char *const *extra);

/* Adds key (the caller keeps it) under kid to the JWKS; the test fails
 * when it is full. */
void loopback_publish(loopback_server *srv, EVP_PKEY *key, const char *kid);
void loopback_unpublish_all(loopback_server *srv);
/* Appends the JWK of each published key to the array keys. */
void loopback_append_jwks(loopback_server *srv, json_t *keys);

#endif
