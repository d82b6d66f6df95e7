/* See client-secret.h. */
#include "config.h"

#include "client-secret.h"

mandate_rc mandate_client_secret_hash(const mandate_host *host, const char *backend,
                                      const mandate_credential *cred,
                                      unsigned char hash[MANDATE_CLIENT_SECRET_HASH_LEN],
                                      mandate_error *err)
{
    if (cred->secret_len == 0)
        return mandate_error_set(err, MANDATE_DENIED, "%s: empty secret", backend);
    if (cred->secret_len > MANDATE_CLIENT_SECRET_LEN_MAX)
        return mandate_error_set(err, MANDATE_DENIED, "%s: secret does not match", backend);
    mandate_rc rc = host->keyed_hash(host, cred->secret, cred->secret_len, hash, err);
    if (rc != MANDATE_OK)
        host->wipe(hash, MANDATE_CLIENT_SECRET_HASH_LEN);
    return rc;
}
