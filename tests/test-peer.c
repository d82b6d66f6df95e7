/* The address a request comes from (core/peer.c): the socket's peer, or
 * the client behind a trusted proxy, never what an untrusted peer claims. */
#include "config.h"

#include <netdb.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "peer-private.h"

static const char *resolve(const char *socket_address, const char *forwarded_for,
                           char *const *trusted)
{
    static char out[MANDATE_PEER_MAX];
    struct addrinfo *peer = NULL;
    assert_int_equal(getaddrinfo(socket_address, NULL,
                                 &(struct addrinfo){.ai_flags = AI_NUMERICHOST}, &peer),
                     0);
    mandate_peer_resolve(peer->ai_addr, forwarded_for, trusted, out);
    freeaddrinfo(peer);
    return out;
}

static void test_the_socket_without_trusted_proxies(void **state)
{
    (void)state;
    assert_string_equal(resolve("127.0.0.3", NULL, NULL), "127.0.0.3");
    assert_string_equal(resolve("127.0.0.3", "192.0.2.1", NULL), "127.0.0.3");
    assert_string_equal(resolve("2001:db8::1", "192.0.2.1", NULL), "2001:db8::1");
    /* an IPv4 peer on an IPv6 socket reads as IPv4 */
    assert_string_equal(resolve("::ffff:192.0.2.4", NULL, NULL), "192.0.2.4");
    mandate_peer_resolve(NULL, NULL, NULL, (char[MANDATE_PEER_MAX]){0});
}

static void test_untrusted_peer_header_ignored(void **state)
{
    (void)state;
    char *trusted[] = {"10.0.0.1", NULL};
    assert_string_equal(resolve("10.0.0.2", "192.0.2.1", trusted), "10.0.0.2");
}

static void test_behind_trusted_proxies(void **state)
{
    (void)state;
    char *trusted[] = {"10.0.0.0/8", "2001:db8:1::/48", NULL};
    /* the nearest hop not itself a trusted proxy */
    assert_string_equal(resolve("10.0.0.1", "192.0.2.1", trusted), "192.0.2.1");
    assert_string_equal(resolve("10.0.0.1", "198.51.100.7, 192.0.2.1", trusted), "192.0.2.1");
    assert_string_equal(resolve("10.0.0.1", "198.51.100.7, 192.0.2.1, 10.9.9.9", trusted),
                        "192.0.2.1");
    assert_string_equal(resolve("10.0.0.1", " 192.0.2.1 ,\t10.1.1.1 ", trusted), "192.0.2.1");
    assert_string_equal(resolve("2001:db8:1::5", "2001:db8:2::9", trusted), "2001:db8:2::9");
    /* every hop trusted: the first one named */
    assert_string_equal(resolve("10.0.0.1", "10.2.2.2, 10.3.3.3", trusted), "10.2.2.2");
    /* no header, an empty one: the proxy itself */
    assert_string_equal(resolve("10.0.0.1", NULL, trusted), "10.0.0.1");
    assert_string_equal(resolve("10.0.0.1", "", trusted), "10.0.0.1");
    /* an entry that is not an address: believed no further */
    assert_string_equal(resolve("10.0.0.1", "192.0.2.1, unknown", trusted), "10.0.0.1");
    assert_string_equal(resolve("10.0.0.1", "192.0.2.1, 10.5.5.5:8080", trusted), "10.0.0.1");
    assert_string_equal(resolve("10.0.0.1", "192.0.2.1,", trusted), "10.0.0.1");
}

/* A chain of trusted proxies longer than believed: the walk stops, on a
 * trusted hop (never on an address the attacker wrote further left). */
static void test_long_chains_bounded(void **state)
{
    (void)state;
    char *trusted[] = {"10.0.0.0/8", NULL};
    char header[4096] = "203.0.113.66";
    for (int i = 0; i < 100; i++)
        strcat(header, ", 10.0.0.7");
    assert_string_equal(resolve("10.0.0.1", header, trusted), "10.0.0.7");
}

static void test_blocks(void **state)
{
    (void)state;
    /* what a trusted_proxies entry may be, and what it may not */
    static const char *const valid[] = {"127.0.0.1", "10.0.0.0/8",    "0.0.0.0/0",
                                        "::1",       "2001:db8::/32", "::ffff:10.0.0.0/104"};
    static const char *const invalid[] = {"",
                                          "10.0.0.0/33",
                                          "10.0.0.0/",
                                          "10.0.0.0/-1",
                                          "10.0.0.0/8x",
                                          "2001:db8::/129",
                                          "proxy.example",
                                          "10.0.0"};
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
        if (!mandate_peer_block_valid(valid[i]))
            fail_msg("\"%s\" refused", valid[i]);
    assert_false(mandate_peer_block_valid(NULL));
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
        if (mandate_peer_block_valid(invalid[i]))
            fail_msg("\"%s\" accepted", invalid[i]);
    /* /N of an IPv4 block counts IPv4 bits */
    char *v4_24[] = {"192.0.2.0/24", NULL};
    assert_string_equal(resolve("192.0.2.200", "198.51.100.1", v4_24), "198.51.100.1");
    assert_string_equal(resolve("192.0.3.1", "198.51.100.1", v4_24), "192.0.3.1");
    char *odd[] = {"192.0.2.128/25", NULL};
    assert_string_equal(resolve("192.0.2.129", "198.51.100.1", odd), "198.51.100.1");
    assert_string_equal(resolve("192.0.2.127", "198.51.100.1", odd), "192.0.2.127");
}

/* review s35, finding 7: a host with an IPv6 /64 has 2^64 addresses, so
 * the limits per address count the /64 */
static void test_limit_keys(void **state)
{
    (void)state;
    static const struct {
        const char *address, *key;
    } rows[] = {
        {"192.0.2.7", "192.0.2.7"},
        {"::ffff:192.0.2.7", "192.0.2.7"},
        {"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
        {"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
        {"2001:db8:1:3::1", "2001:db8:1:3::/64"},
        {"2001:db8::", "2001:db8::/64"},
        {"::1", "::/64"},
        {"fe80::1%eth0", "fe80::/64"},
        {"fe80::2:3:4:5%2", "fe80::/64"},
        {"local", "local"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char key[MANDATE_PEER_MAX];
        mandate_peer_limit_key(rows[i].address, key);
        if (strcmp(key, rows[i].key) != 0)
            fail_msg("%s: expected %s, got %s", rows[i].address, rows[i].key, key);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_socket_without_trusted_proxies),
        cmocka_unit_test(test_untrusted_peer_header_ignored),
        cmocka_unit_test(test_behind_trusted_proxies),
        cmocka_unit_test(test_long_chains_bounded),
        cmocka_unit_test(test_blocks),
        cmocka_unit_test(test_limit_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
