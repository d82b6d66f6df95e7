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

typedef struct loopback_server {
    struct MHD_Daemon *mhd;
    uint16_t port;
    char base[64]; /* "http://127.0.0.1:<port>" */
} loopback_server;

/* Starts srv on a port of the system's choosing, a thread per connection,
 * answering with handler(cls); completed (NULL: none) frees what a request
 * kept in *con_cls. The test fails when it cannot start. */
void loopback_server_start(loopback_server *srv, MHD_AccessHandlerCallback handler, void *cls,
                           MHD_RequestCompletedCallback completed);
/* Stops srv, if it still runs. */
void loopback_server_stop(loopback_server *srv);

/* Queues body (malloc'ed, freed here) as a response of status and type,
 * with the headers of extra: name, value, ..., NULL (NULL: none). */
enum MHD_Result loopback_reply(struct MHD_Connection *conn, unsigned status, const char *type,
                               char *body, const char *const *extra);

#define LOOPBACK_MAX_KEYS 4

/* The keys of a JWKS, each under its kid. */
typedef struct loopback_keys {
    pthread_mutex_t lock; /* guards the fields below it */
    EVP_PKEY *keys[LOOPBACK_MAX_KEYS];
    const char *kids[LOOPBACK_MAX_KEYS];
    size_t count;
} loopback_keys;

void loopback_keys_init(loopback_keys *set);
void loopback_keys_destroy(loopback_keys *set);
/* Adds key (the caller keeps it) under kid; the test fails when the set is full. */
void loopback_keys_publish(loopback_keys *set, EVP_PKEY *key, const char *kid);
void loopback_keys_unpublish_all(loopback_keys *set);
/* Appends the JWK of each key to the array keys. */
void loopback_keys_append_jwks(loopback_keys *set, json_t *keys);

#endif
