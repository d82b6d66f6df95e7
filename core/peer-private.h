/* The address a request comes from, as far as the broker can trust it: the
 * socket's peer, or, when that peer is a configured trusted proxy
 * (server.trusted_proxies: addresses or CIDR blocks), the nearest address
 * in X-Forwarded-For that is not itself a trusted proxy. A forwarding
 * header from any other peer is ignored: anyone can write one. */
#ifndef MANDATE_PEER_PRIVATE_H
#define MANDATE_PEER_PRIVATE_H

#include <arpa/inet.h>
#include <stdbool.h>
#include <sys/socket.h>

#define MANDATE_PEER_MAX INET6_ADDRSTRLEN

/* Whether text is an IPv4 or IPv6 address, or one with a /prefix. */
bool mandate_peer_block_valid(const char *text);

/* Whether the socket's peer is in one of the trusted blocks (NULL-
 * terminated, may be NULL): a proxy whose forwarded headers are believed. */
bool mandate_peer_trusted(const struct sockaddr *peer, char *const *trusted);

/* The request's address as text into out. trusted: NULL-terminated blocks
 * (may be NULL); forwarded_for: the X-Forwarded-For header (may be NULL).
 * A peer that is not an IP socket gives "local". */
void mandate_peer_resolve(const struct sockaddr *peer, const char *forwarded_for,
                          char *const *trusted, char out[MANDATE_PEER_MAX]);

/* What a limit per address counts an address (text, as mandate_peer_resolve
 * gives it) as: an IPv4 address itself (::ffff:a.b.c.d too), an IPv6
 * address by its /64 ("2001:db8:1:2::/64", its zone dropped), anything
 * else ("local") as it is. */
void mandate_peer_limit_key(const char *address, char out[MANDATE_PEER_MAX]);

#endif
