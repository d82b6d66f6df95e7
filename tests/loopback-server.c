#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "jose.h"
#include "loopback-server.h"

void loopback_server_start(loopback_server *srv, MHD_AccessHandlerCallback handler, void *cls,
                           MHD_RequestCompletedCallback completed)
{
    *srv = (loopback_server){0};
    pthread_mutex_init(&srv->lock, NULL);
    struct sockaddr_in sin = {0};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    srv->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION,
                                0, NULL, NULL, handler, cls, MHD_OPTION_SOCK_ADDR, &sin,
                                MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
    assert_non_null(srv->mhd);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_BIND_PORT);
    assert_non_null(info);
    srv->port = info->port;
    snprintf(srv->base, sizeof(srv->base), "http://127.0.0.1:%u", (unsigned)srv->port);
}

void loopback_server_stop(loopback_server *srv)
{
    if (srv->mhd != NULL)
        MHD_stop_daemon(srv->mhd);
    srv->mhd = NULL;
}

void loopback_server_close(loopback_server *srv)
{
    loopback_server_stop(srv);
    pthread_mutex_destroy(&srv->lock);
}

enum MHD_Result loopback_reply(struct MHD_Connection *conn, unsigned status, const char *type,
                               char *body, const char *const *extra)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_COPY);
    free(body);
    MHD_add_response_header(resp, "Content-Type", type);
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i += 2)
        MHD_add_response_header(resp, extra[i], extra[i + 1]);
    enum MHD_Result ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

void loopback_publish(loopback_server *srv, EVP_PKEY *key, const char *kid)
{
    pthread_mutex_lock(&srv->lock);
    assert_true(srv->key_count < LOOPBACK_MAX_KEYS);
    srv->keys[srv->key_count] = key;
    srv->kids[srv->key_count++] = kid;
    pthread_mutex_unlock(&srv->lock);
}

void loopback_unpublish_all(loopback_server *srv)
{
    pthread_mutex_lock(&srv->lock);
    srv->key_count = 0;
    pthread_mutex_unlock(&srv->lock);
}

void loopback_append_jwks(loopback_server *srv, json_t *keys)
{
    pthread_mutex_lock(&srv->lock);
    for (size_t i = 0; i < srv->key_count; i++)
        json_array_append_new(keys, mandate_jwk_from_key(srv->keys[i], srv->kids[i]));
    pthread_mutex_unlock(&srv->lock);
}
