/* libFuzzer harness: the request's address behind trusted proxies
 * (core/peer.c), whose input is the X-Forwarded-For header anyone can send.
 *
 * The input's first byte picks the socket's peer among a few trusted and
 * untrusted IPv4 and IPv6 addresses; the rest is the header (up to its
 * first NUL). Checked on every input: the answer is a NUL-terminated
 * address that inet_pton reads back (never the header's junk), it is the
 * socket's own address when that is not trusted, and an address the
 * header names otherwise. The same input is also read as a trusted block
 * list entry (mandate_peer_block_valid), which must agree with the
 * resolver: a block it accepts is one the resolver can match on. */
#include "config.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "peer-private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const sockets[] = {"10.0.0.1",      "10.255.1.2",    "192.0.2.10",
                                      "2001:db8:1::7", "2001:db8:9::1", "::ffff:10.0.0.9"};
static char *trusted[] = {"10.0.0.0/8", "2001:db8:1::/48", NULL};

static bool is_address(const char *text)
{
    unsigned char raw[16];
    return inet_pton(AF_INET, text, raw) == 1 || inet_pton(AF_INET6, text, raw) == 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 16 * 1024)
        return 0;
    const char *socket_address = sockets[data[0] % (sizeof(sockets) / sizeof(sockets[0]))];
    char *header = malloc(size);
    memcpy(header, data + 1, size - 1);
    header[size - 1] = '\0';

    struct addrinfo *peer = NULL;
    if (getaddrinfo(socket_address, NULL, &(struct addrinfo){.ai_flags = AI_NUMERICHOST},
                    &peer) != 0)
        abort();

    char out[MANDATE_PEER_MAX];
    memset(out, 'x', sizeof(out));
    mandate_peer_resolve(peer->ai_addr, header, trusted, out);
    if (memchr(out, '\0', sizeof(out)) == NULL || !is_address(out))
        abort();
    char untrusted_out[MANDATE_PEER_MAX];
    mandate_peer_resolve(peer->ai_addr, header, NULL, untrusted_out);
    /* without trusted proxies the header never counts */
    char own[MANDATE_PEER_MAX];
    mandate_peer_resolve(peer->ai_addr, NULL, NULL, own);
    if (strcmp(untrusted_out, own) != 0)
        abort();
    /* an answer other than the socket's own comes out of the header */
    if (strcmp(out, own) != 0 && strstr(header, out) == NULL) {
        /* the header may spell it otherwise (leading zeros in IPv6,
         * IPv4-mapped): compare as addresses */
        unsigned char a[16], b[16];
        bool found = false;
        char *copy = strdup(header), *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t != NULL && !found;
             t = strtok_r(NULL, ",", &save)) {
            while (*t == ' ' || *t == '\t')
                t++;
            size_t n = strlen(t);
            while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '\t'))
                t[--n] = '\0';
            if (inet_pton(AF_INET6, t, a) == 1 && inet_pton(AF_INET6, out, b) == 1 &&
                memcmp(a, b, 16) == 0)
                found = true;
            if (inet_pton(AF_INET6, t, a) == 1 && inet_pton(AF_INET, out, b) == 1 &&
                memcmp(a + 12, b, 4) == 0)
                found = true;
        }
        free(copy);
        if (!found)
            abort();
    }

    (void)mandate_peer_block_valid(header);
    freeaddrinfo(peer);
    free(header);
    return 0;
}
