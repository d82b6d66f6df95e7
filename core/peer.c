#include "config.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peer-private.h"

/* Beyond this many hops, a longer chain of proxies is not believed: the
 * address is the one reached so far. */
#define MAX_HOPS 16

typedef struct ip {
    unsigned char bytes[16]; /* IPv4 as ::ffff:a.b.c.d */
} ip;

/* the first 12 bytes of an IPv4 address kept as IPv6 */
static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static void ip_v4(ip *out, const void *in4)
{
    memset(out->bytes, 0, 10);
    out->bytes[10] = out->bytes[11] = 0xff;
    memcpy(out->bytes + 12, in4, 4);
}

static bool ip_parse(const char *text, size_t len, ip *out)
{
    char buf[MANDATE_PEER_MAX];
    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, text, len);
    buf[len] = '\0';
    unsigned char raw[16];
    if (inet_pton(AF_INET, buf, raw) == 1) {
        ip_v4(out, raw);
        return true;
    }
    if (inet_pton(AF_INET6, buf, out->bytes) == 1)
        return true;
    return false;
}

static void ip_text(const ip *a, char out[MANDATE_PEER_MAX])
{
    const char *ok = memcmp(a->bytes, v4_mapped, 12) == 0
                         ? inet_ntop(AF_INET, a->bytes + 12, out, MANDATE_PEER_MAX)
                         : inet_ntop(AF_INET6, a->bytes, out, MANDATE_PEER_MAX);
    if (ok == NULL)
        strcpy(out, "?");
}

/* A block "address[/prefix]": the address and the prefix in IPv6 bits (an
 * IPv4 prefix counts from bit 96). */
static bool block_parse(const char *text, ip *base, unsigned *bits_r)
{
    const char *slash = strchr(text, '/');
    size_t len = slash ? (size_t)(slash - text) : strlen(text);
    if (!ip_parse(text, len, base))
        return false;
    bool v4 = memchr(text, ':', len) == NULL;
    unsigned max = v4 ? 32 : 128;
    unsigned bits = max;
    if (slash != NULL) {
        char *end;
        if (slash[1] < '0' || slash[1] > '9')
            return false;
        unsigned long n = strtoul(slash + 1, &end, 10);
        if (*end != '\0' || n > max)
            return false;
        bits = (unsigned)n;
    }
    *bits_r = v4 ? 96 + bits : bits;
    return true;
}

bool mandate_peer_block_valid(const char *text)
{
    ip base;
    unsigned bits;
    return text != NULL && block_parse(text, &base, &bits);
}

static bool in_block(const ip *a, const char *block)
{
    ip base;
    unsigned bits;
    if (!block_parse(block, &base, &bits))
        return false;
    size_t whole = bits / 8;
    if (memcmp(a->bytes, base.bytes, whole) != 0)
        return false;
    unsigned rest = bits % 8;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a->bytes[whole] & mask) == (base.bytes[whole] & mask);
}

static bool trusted_proxy(const ip *a, char *const *trusted)
{
    for (char *const *t = trusted; t != NULL && *t != NULL; t++)
        if (in_block(a, *t))
            return true;
    return false;
}

/* The socket peer's address; false when it is not an IP socket. */
static bool socket_ip(const struct sockaddr *peer, ip *at)
{
    if (peer != NULL && peer->sa_family == AF_INET) {
        ip_v4(at, &((const struct sockaddr_in *)peer)->sin_addr);
        return true;
    }
    if (peer != NULL && peer->sa_family == AF_INET6) {
        memcpy(at->bytes, &((const struct sockaddr_in6 *)peer)->sin6_addr, 16);
        return true;
    }
    return false;
}

bool mandate_peer_trusted(const struct sockaddr *peer, char *const *trusted)
{
    ip at;
    return socket_ip(peer, &at) && trusted_proxy(&at, trusted);
}

void mandate_peer_resolve(const struct sockaddr *peer, const char *forwarded_for,
                          char *const *trusted, char out[MANDATE_PEER_MAX])
{
    ip at;
    if (!socket_ip(peer, &at)) {
        strcpy(out, "local");
        return;
    }
    /* X-Forwarded-For lists the client first and each proxy's peer after
     * it: walk it from the right while the hop we stand on is a proxy we
     * trust to have written the entry before it */
    if (forwarded_for != NULL) {
        const char *end = forwarded_for + strlen(forwarded_for);
        for (int hop = 0; hop < MAX_HOPS && trusted_proxy(&at, trusted) && end > forwarded_for;
             hop++) {
            const char *start = end;
            while (start > forwarded_for && start[-1] != ',')
                start--;
            const char *a = start, *b = end;
            while (a < b && (*a == ' ' || *a == '\t'))
                a++;
            while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
                b--;
            ip next;
            if (!ip_parse(a, (size_t)(b - a), &next))
                break; /* not an address: believe no more of it */
            at = next;
            end = start > forwarded_for ? start - 1 : start;
        }
    }
    ip_text(&at, out);
}

void mandate_peer_limit_key(const char *address, char out[MANDATE_PEER_MAX])
{
    /* a zone names the interface it came in on, not another host */
    ip at;
    if (!ip_parse(address, strcspn(address, "%"), &at)) {
        snprintf(out, MANDATE_PEER_MAX, "%s", address);
        return;
    }
    if (memcmp(at.bytes, v4_mapped, 12) == 0) {
        ip_text(&at, out);
        return;
    }
    /* one host holds a whole /64 (RFC 4291 interface identifiers, SLAAC,
     * any VPS): the interface half names no one */
    memset(at.bytes + 8, 0, 8);
    ip_text(&at, out);
    size_t len = strlen(out);
    snprintf(out + len, MANDATE_PEER_MAX - len, "/64");
}
