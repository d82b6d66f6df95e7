/* The first step of checking a presented client secret, the same in every
 * backend that keeps secrets (backend-local, backend-secretsmanager): an
 * empty or overlong secret is refused, and the secret is hashed with the
 * host's keyed hash, the form both store and compare.
 *
 * Part of lib/, the floor under the core, the plugins and libmandate: it
 * reaches the core only through the host table it is given. */
#ifndef MANDATE_CLIENT_SECRET_H
#define MANDATE_CLIENT_SECRET_H

#include <stddef.h>

#include <mandate/backend.h>
#include <mandate/plugin.h>

/* The keyed hash's length (HMAC-SHA256). */
#define MANDATE_CLIENT_SECRET_HASH_LEN 32
/* A presented secret longer than this is refused without hashing it: ours
 * are at most 86 characters, and imported ones are not kilobytes long. */
#define MANDATE_CLIENT_SECRET_LEN_MAX 1024

/* Hashes cred's secret into hash. MANDATE_DENIED, "BACKEND: empty secret"
 * or "BACKEND: secret does not match" (an overlong one), before any hashing;
 * the keyed hash's own error otherwise, with hash wiped. */
mandate_rc mandate_client_secret_hash(const mandate_host *host, const char *backend,
                                      const mandate_credential *cred,
                                      unsigned char hash[MANDATE_CLIENT_SECRET_HASH_LEN],
                                      mandate_error *err);

#endif
