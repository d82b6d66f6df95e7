/* lib/client-secret.c: the checks before hashing (empty, overlong), the
 * host's keyed hash on the secret itself, and a failed hash wiped. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "client-secret.h"

static int hashes, wipes;
static bool hash_fails;

/* A stand-in keyed hash: each output byte is the secret's length plus its
 * first byte, so a test can tell that the secret was hashed. */
static mandate_rc fake_keyed_hash(const mandate_host *host, const void *data, size_t len,
                                  unsigned char out[32], mandate_error *err)
{
    (void)host;
    hashes++;
    memset(out, hash_fails ? 0xAA : (int)(len + ((const unsigned char *)data)[0]), 32);
    if (hash_fails)
        return mandate_error_set(err, MANDATE_ERROR, "keyed hash: no key");
    return MANDATE_OK;
}

static void fake_wipe(void *buf, size_t len)
{
    wipes++;
    memset(buf, 0, len);
}

static const mandate_host host = {.keyed_hash = fake_keyed_hash, .wipe = fake_wipe};

static int reset(void **state)
{
    (void)state;
    hashes = wipes = 0;
    hash_fails = false;
    return 0;
}

static unsigned char hash[MANDATE_CLIENT_SECRET_HASH_LEN];
static mandate_error err;

/* mandate_client_secret_hash of secret[0..len) as BACKEND presents it, into
 * hash and err. */
static mandate_rc hash_secret(const char *backend, const char *secret, size_t len)
{
    mandate_credential cred = {
        .client_id = "agent", .secret = (const unsigned char *)secret, .secret_len = len};
    memset(&err, 0, sizeof(err));
    return mandate_client_secret_hash(&host, backend, &cred, hash, &err);
}

static void test_hashes_the_secret(void **state)
{
    (void)state;
    assert_int_equal(hash_secret("local", "s3cret", 6), MANDATE_OK);
    assert_int_equal(hashes, 1);
    assert_int_equal(hash[0], 6 + 's');
    assert_int_equal(hash[31], 6 + 's');
}

static void test_empty_or_overlong_secret(void **state)
{
    (void)state;
    static char big[MANDATE_CLIENT_SECRET_LEN_MAX + 1];
    memset(big, 'x', sizeof(big));
    assert_int_equal(hash_secret("local", "", 0), MANDATE_DENIED);
    assert_string_equal(err.message, "local: empty secret");
    assert_int_equal(hash_secret("secretsmanager", big, sizeof(big)), MANDATE_DENIED);
    assert_string_equal(err.message, "secretsmanager: secret does not match");
    assert_int_equal(hashes, 0);
    /* the longest allowed is hashed */
    assert_int_equal(hash_secret("secretsmanager", big, MANDATE_CLIENT_SECRET_LEN_MAX),
                     MANDATE_OK);
    assert_int_equal(hashes, 1);
}

static void test_failed_hash_is_wiped(void **state)
{
    (void)state;
    hash_fails = true;
    assert_int_equal(hash_secret("local", "s3cret", 6), MANDATE_ERROR);
    assert_string_equal(err.message, "keyed hash: no key");
    assert_int_equal(wipes, 1);
    for (size_t i = 0; i < sizeof(hash); i++)
        assert_int_equal(hash[i], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_hashes_the_secret, reset),
        cmocka_unit_test_setup(test_empty_or_overlong_secret, reset),
        cmocka_unit_test_setup(test_failed_hash_is_wiped, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
