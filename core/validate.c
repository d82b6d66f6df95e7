#include "config.h"

#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "client-documents-private.h"
#include "clock-private.h"
#include "grant-claims.h"
#include "jose.h"
#include "log-private.h"
#include "metrics-private.h"
#include "plugins-private.h"
#include "pool-private.h"
#include "token-cache-private.h"
#include "validate-private.h"

static mandate_rc inactive(mandate_token_status *status, const char *reason)
{
    status->reason = reason;
    return MANDATE_INVALID;
}

mandate_rc mandate_token_validate(mandate_runtime *rt, mandate_pool *pool, const char *token,
                                  size_t len, mandate_token_status *status, mandate_error *err)
{
    memset(status, 0, sizeof(*status));
    if (len == 0 || len > MANDATE_JWS_MAX_LEN || memchr(token, '\0', len) != NULL)
        return inactive(status, "malformed token");

    unsigned char hash[MANDATE_TOKEN_HASH_LEN];
    mandate_token_cache *cache = mandate_runtime_token_cache(rt);
    mandate_token_cache_answer answer = MANDATE_TOKEN_CACHE_MISS;
    uint64_t epoch = 0;
    if (cache != NULL && EVP_Digest(token, len, hash, NULL, EVP_sha256(), NULL) == 1) {
        epoch = mandate_token_cache_epoch(cache);
        answer =
            mandate_token_cache_get(cache, hash, pool, mandate_clock_now(), &status->grant);
        mandate_metrics_token_check_cache(answer);
    } else {
        cache = NULL;
    }
    if (answer == MANDATE_TOKEN_CACHE_EXPIRED)
        return inactive(status, "expired");
    bool cached = answer == MANDATE_TOKEN_CACHE_HIT;

    /* the first format that recognises the token decides */
    mandate_rc rc = cached ? MANDATE_OK : MANDATE_NEXT;
    mandate_error ferr = {0};
    for (size_t i = 0; rc == MANDATE_NEXT && i < mandate_runtime_instance_count(rt); i++) {
        const mandate_instance *in = mandate_runtime_instance(rt, i);
        if (!mandate_format_parses(in))
            continue;
        ferr = (mandate_error){0};
        rc = mandate_format_parse(in, pool, token, len, &status->grant, &ferr);
    }
    switch (rc) {
    case MANDATE_OK: break;
    case MANDATE_NEXT: return inactive(status, "not a token of any enabled format");
    case MANDATE_EXPIRED:
        /* the format found it authentic and past its expiry: so it stays */
        if (cache != NULL)
            mandate_token_cache_put(cache, hash, &(mandate_grant){.expires_at = 0}, epoch);
        return inactive(status, "expired");
    case MANDATE_TEMPFAIL:
    case MANDATE_ERROR:
        return mandate_error_set(err, rc, "%s", ferr.message);
    default:
        return inactive(status, mandate_pool_printf(pool, "rejected: %s", ferr.message));
    }
    status->parsed = true;
    const mandate_grant *g = &status->grant;
    if (cache != NULL && !cached)
        mandate_token_cache_put(cache, hash, g, epoch);
    const mandate_config *cfg = mandate_runtime_config(rt);
    if (g->issuer == NULL || strcmp(g->issuer, cfg->issuer) != 0)
        return inactive(status, "issued by another issuer");
    if (g->expires_at <= mandate_clock_now())
        return inactive(status, "expired");

    const mandate_instance *store = mandate_runtime_store(rt);
    if (g->jti != NULL) {
        bool revoked = false;
        rc = mandate_store_is_revoked(store, g->jti, &revoked, err);
        if (rc != MANDATE_OK)
            return rc == MANDATE_TEMPFAIL ? rc : MANDATE_ERROR;
        if (revoked)
            return inactive(status, "revoked");
    }
    /* a disabled or deleted client takes its tokens with it, at once */
    rc = mandate_store_client_get(store, pool, g->client_id, &status->client, err);
    bool registered = rc == MANDATE_OK; /* not a document: created_at is its creation */
    if (rc == MANDATE_NOT_FOUND && g->client_id != NULL &&
        mandate_client_id_is_document(g->client_id)) {
        /* a Client ID Metadata Document's client is not in the clients
         * table: it holds while its document does (the store's copy while
         * fresh) and its host is allowed */
        mandate_error derr = {0};
        rc = mandate_client_document_resolve(rt, pool, g->client_id, &status->client, &derr);
        if (rc == MANDATE_TEMPFAIL || rc == MANDATE_ERROR)
            return mandate_error_set(err, rc, "%s", derr.message);
        if (rc != MANDATE_OK)
            return inactive(status, mandate_pool_printf(pool, "its client document is refused: %s",
                                                        derr.message));
    }
    if (rc == MANDATE_NOT_FOUND)
        return inactive(status, "its client was deleted");
    if (rc != MANDATE_OK)
        return rc == MANDATE_TEMPFAIL ? rc : MANDATE_ERROR;
    if (status->client.status != MANDATE_CLIENT_ENABLED)
        return inactive(status, "its client is disabled");
    /* a client deleted and created again under the same id does not bring
     * the deleted one's tokens back */
    if (registered && g->issued_at < status->client.created_at)
        return inactive(status, "issued before its client was created");
    return MANDATE_OK;
}

json_t *mandate_grant_to_introspection(const mandate_grant *g)
{
    /* RFC 9449 §6.2: a DPoP-bound token says so, with its cnf */
    json_t *o = json_pack("{s:b,s:s}", "active", 1, "token_type",
                          g->cnf_jkt != NULL ? "DPoP" : "Bearer");
    mandate_error err;
    /* the claims as in a token (nested act, aud a string or an array). The
     * grant was read by a format, which refuses what it could not write
     * back, so this does not fail; if it did, the answer would hold the
     * members before the bad one, as it did before. */
    if (o != NULL)
        (void)mandate_grant_claims_put_all(o, g, MANDATE_PLUGIN_ABI_MINOR, "introspection",
                                           &err);
    return o;
}
