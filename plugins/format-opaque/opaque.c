/* The opaque format: random reference tokens. A token is a prefix ("mdo_")
 * and the base64url of token_bytes (32 to 64) random bytes; it carries
 * nothing. The store keeps a record under the SHA-256 of the whole token
 * string (never the token itself), holding the grant as compact JSON, and
 * parse() finds the grant again through that record: introspection and the
 * gateway check answer from the store, and a token dies with its record.
 *
 * The prefix tells these tokens apart from a JWT (its alphabet has no '.'):
 * parse() answers MANDATE_NEXT for anything that does not start with it, and
 * MANDATE_INVALID for a token that does but has the wrong length or a
 * character outside base64url. The lookup is by hash, so no comparison of
 * the token itself needs to be constant-time; the token is never logged or
 * written into an error message.
 *
 * The records live in the store behind the host's token_record_put and
 * token_record_get, which came with ABI 1.1: an older host is refused.
 * No keys: keygen and set_keys are NULL.
 *
 * Only lib/ (base64url, the grant's claims) linked into this plugin, libc,
 * OpenSSL, jansson and the host table are used: no core symbol. */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <mandate/format.h>
#include <mandate/store.h>

#include "grant-claims.h"
#include "jose.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

#define OPAQUE_MIN_BYTES 32 /* 256 bits */
#define OPAQUE_MAX_BYTES 64
#define OPAQUE_MAX_PREFIX 16
/* base64url without padding of OPAQUE_MAX_BYTES: 86 characters */
#define OPAQUE_MAX_BODY                                                                        \
    (OPAQUE_MAX_BYTES / 3 * 4 + (OPAQUE_MAX_BYTES % 3 == 0 ? 0 : OPAQUE_MAX_BYTES % 3 + 1))
#define OPAQUE_MAX_TOKEN (OPAQUE_MAX_PREFIX + OPAQUE_MAX_BODY)
#define OPAQUE_HASH_LEN 32 /* SHA-256 */

struct opaque_inst {
    /* config, filled by the core */
    int64_t token_bytes;
    char *prefix;

    const mandate_host *host;
    size_t prefix_len;
    size_t body_len; /* base64url characters after the prefix */
    /* fetched once: EVP_sha256() makes OpenSSL 3 look SHA-256 up again on
     * every digest, which costs more than hashing a token */
    EVP_MD *sha256;
};

/* --- the token ---------------------------------------------------------------- */

static bool b64url_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

static mandate_rc token_hash(const struct opaque_inst *inst, const char *token, size_t len,
                             unsigned char hash[OPAQUE_HASH_LEN], mandate_error *err)
{
    unsigned int hash_len = 0;
    if (EVP_Digest(token, len, hash, &hash_len, inst->sha256, NULL) != 1 ||
        hash_len != OPAQUE_HASH_LEN)
        return mandate_error_set(err, MANDATE_ERROR, "opaque: SHA-256 failed");
    return MANDATE_OK;
}

/* --- mint ----------------------------------------------------------------------- */

/* The grant as compact JSON (malloc'd), with the claim names of a JWT
 * (lib/grant-claims.c); absent members are left out. The earlier actors
 * only from a host whose grant has them (ABI 1.4). */
static mandate_rc grant_json(const mandate_host *host, const mandate_grant *g, char **json_r,
                             mandate_error *err)
{
    json_t *obj = json_object();
    *json_r = NULL;
    if (obj == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "opaque: out of memory");
    mandate_rc rc = mandate_grant_claims_put_all(obj, g, host->abi_minor, "opaque", err);
    if (rc == MANDATE_OK && (*json_r = json_dumps(obj, JSON_COMPACT)) == NULL)
        rc = mandate_error_set(err, MANDATE_ERROR, "opaque: cannot serialize the grant");
    json_decref(obj);
    return rc;
}

static mandate_rc opaque_mint(void *inst_, mandate_pool *pool, const mandate_grant *grant,
                              char **token_r, mandate_error *err)
{
    struct opaque_inst *inst = inst_;
    const mandate_host *host = inst->host;
    *token_r = NULL;
    if (grant == NULL || grant->issuer == NULL || grant->subject == NULL ||
        grant->client_id == NULL || grant->jti == NULL)
        return mandate_error_set(err, MANDATE_ERROR,
                                 "opaque: grant lacks issuer, subject, client_id or jti");
    char *json;
    mandate_rc rc = grant_json(host, grant, &json, err);
    if (rc != MANDATE_OK)
        return rc;

    unsigned char rnd[OPAQUE_MAX_BYTES];
    char token[OPAQUE_MAX_TOKEN + 1];
    unsigned char hash[OPAQUE_HASH_LEN];
    size_t n = (size_t)inst->token_bytes, len = inst->prefix_len + inst->body_len;
    if (host->random(rnd, n) != MANDATE_OK) {
        rc = mandate_error_set(err, MANDATE_ERROR, "opaque: the random source failed");
    } else {
        memcpy(token, inst->prefix, inst->prefix_len);
        mandate_b64url_encode(rnd, n, token + inst->prefix_len);
        rc = token_hash(inst, token, len, hash, err);
    }
    host->wipe(rnd, sizeof(rnd));
    if (rc == MANDATE_OK) {
        const mandate_token_record record = {
            .token_hash = hash,
            .token_hash_len = sizeof(hash),
            .jti = grant->jti,
            .client_id = grant->client_id,
            .subject = grant->subject,
            .tenant = grant->tenant,
            .grant = json,
            .issued_at = grant->issued_at,
            .expires_at = grant->expires_at,
        };
        rc = host->token_record_put(host, &record, err);
        if (rc == MANDATE_EXISTS)
            rc = mandate_error_set(err, MANDATE_ERROR,
                                   "opaque: the store already holds a token with this hash "
                                   "(a SHA-256 collision, or a broken random source)");
    }
    if (rc == MANDATE_OK)
        *token_r = host->pool_memdup(pool, token, len + 1);
    host->wipe(token, sizeof(token));
    free(json);
    return rc;
}

/* --- parse ---------------------------------------------------------------------- */

/* The stored grant is ours: anything wrong with it is a fault on our side
 * (MANDATE_ERROR), never the caller's. */
static const mandate_grant_claims_reader stored_grant = {"opaque: stored grant's",
                                                         MANDATE_ERROR};

static mandate_rc grant_from_json(const mandate_host *host, mandate_pool *pool,
                                  const char *text, mandate_grant *g, mandate_error *err)
{
    json_error_t jerr;
    if (text == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "opaque: token record has no grant");
    json_t *obj = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (obj == NULL || !json_is_object(obj)) {
        json_decref(obj);
        return mandate_error_set(err, MANDATE_ERROR,
                                 "opaque: token record's grant is not a JSON object");
    }
    mandate_rc rc = mandate_grant_claims_get(host, pool, obj, &stored_grant, g, NULL, err);
    json_decref(obj);
    return rc;
}

static mandate_rc opaque_parse(void *inst_, mandate_pool *pool, const char *token, size_t len,
                               mandate_grant *grant_r, mandate_error *err)
{
    struct opaque_inst *inst = inst_;
    const mandate_host *host = inst->host;
    memset(grant_r, 0, mandate_grant_size(host->abi_minor));
    if (token == NULL || len < inst->prefix_len ||
        memcmp(token, inst->prefix, inst->prefix_len) != 0)
        return mandate_error_set(err, MANDATE_NEXT, "opaque: not an opaque token");
    if (len != inst->prefix_len + inst->body_len)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "opaque: token of %zu characters, not %zu", len,
                                 inst->prefix_len + inst->body_len);
    for (size_t i = inst->prefix_len; i < len; i++)
        if (!b64url_char((unsigned char)token[i]))
            return mandate_error_set(err, MANDATE_INVALID,
                                     "opaque: token has a character outside base64url at "
                                     "offset %zu",
                                     i);

    unsigned char hash[OPAQUE_HASH_LEN];
    mandate_rc rc = token_hash(inst, token, len, hash, err);
    if (rc != MANDATE_OK)
        return rc;
    mandate_token_record record;
    memset(&record, 0, sizeof(record));
    rc = host->token_record_get(host, pool, hash, sizeof(hash), &record, err);
    if (rc == MANDATE_NOT_FOUND)
        return mandate_error_set(err, MANDATE_INVALID, "opaque: unknown or expired token");
    if (rc != MANDATE_OK)
        return rc; /* TEMPFAIL: the store is unreachable; ERROR */
    if (record.token_hash_len != sizeof(hash) ||
        CRYPTO_memcmp(record.token_hash, hash, sizeof(hash)) != 0)
        return mandate_error_set(err, MANDATE_ERROR,
                                 "opaque: the store answered with another token's record");

    rc = grant_from_json(host, pool, record.grant, grant_r, err);
    if (rc == MANDATE_OK) {
        int64_t now = host->now(host);
        /* the store hides expired records; its own expiry counts as well as
         * the grant's, whichever comes first */
        int64_t exp =
            record.expires_at < grant_r->expires_at ? record.expires_at : grant_r->expires_at;
        if (exp <= now)
            rc = mandate_error_set(err, MANDATE_EXPIRED, "opaque: expired %lld s ago",
                                   (long long)(now - exp));
    }
    if (rc != MANDATE_OK)
        memset(grant_r, 0, mandate_grant_size(host->abi_minor));
    return rc;
}

/* --- instance ------------------------------------------------------------------- */

static mandate_rc opaque_instantiate(void *inst_, const mandate_host *host, mandate_error *err)
{
    struct opaque_inst *inst = inst_;
    inst->host = host;
    /* the token record functions are only in a host of ABI 1.1 or later:
     * read them only once the minor version says they are there */
    if (host->abi_minor < 1)
        return mandate_error_set(err, MANDATE_ERROR,
                                 "opaque: the host speaks plugin ABI %u.%u; opaque tokens need "
                                 "1.1 or later (token records in the store)",
                                 (unsigned)host->abi_major, (unsigned)host->abi_minor);
    if (host->token_record_put == NULL || host->token_record_get == NULL)
        return mandate_error_set(err, MANDATE_ERROR,
                                 "opaque: the host offers no token record store");
    if (inst->token_bytes < OPAQUE_MIN_BYTES || inst->token_bytes > OPAQUE_MAX_BYTES)
        return mandate_error_set(err, MANDATE_INVALID, "opaque: token_bytes must be %d to %d",
                                 OPAQUE_MIN_BYTES, OPAQUE_MAX_BYTES);
    const char *prefix = inst->prefix != NULL ? inst->prefix : "";
    size_t len = strlen(prefix);
    if (len < 1 || len > OPAQUE_MAX_PREFIX)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "opaque: prefix must be 1 to %d characters, not %zu",
                                 OPAQUE_MAX_PREFIX, len);
    if (strchr(prefix, '.') != NULL)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "opaque: prefix must not contain '.', so that a token never "
                                 "looks like a JWT");
    for (size_t i = 0; i < len; i++)
        if (!b64url_char((unsigned char)prefix[i]))
            return mandate_error_set(err, MANDATE_INVALID,
                                     "opaque: prefix may hold only A-Z, a-z, 0-9, '-' and '_'");
    inst->prefix_len = len;
    inst->body_len = mandate_b64url_encoded_len((size_t)inst->token_bytes);
    inst->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (inst->sha256 == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "opaque: SHA-256 is not available");
    return MANDATE_OK;
}

static void opaque_destroy(void *inst_)
{
    struct opaque_inst *inst = inst_;
    EVP_MD_free(inst->sha256);
    inst->sha256 = NULL;
}

static const mandate_conf_def opaque_conf[] = {
    {"token_bytes", MANDATE_CONF_INT, 0, offsetof(struct opaque_inst, token_bytes), "32",
     OPAQUE_MIN_BYTES, OPAQUE_MAX_BYTES, NULL,
     "random bytes in each token (32 is 256 bits); the token carries their base64url"},
    {"prefix", MANDATE_CONF_STRING, 0, offsetof(struct opaque_inst, prefix), "mdo_", 0, 0, NULL,
     "put in front of every token so that it is told apart from a JWT: 1 to 16 characters "
     "of A-Z, a-z, 0-9, '-' and '_'"},
    MANDATE_CONF_END,
};

static const mandate_format_ops opaque_ops = {
    .mint = opaque_mint,
    .parse = opaque_parse,
    .keygen = NULL,
    .set_keys = NULL,
};

MANDATE_PLUGIN(opaque, MANDATE_FORMAT, PACKAGE_VERSION, 0, struct opaque_inst, opaque_conf,
               opaque_instantiate, opaque_destroy, &opaque_ops);
