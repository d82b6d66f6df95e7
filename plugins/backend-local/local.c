/* The local backend: clients whose credentials Mandate itself holds, in the
 * store.
 *
 * Two ways to authenticate a client:
 *  - client_secret_basic / client_secret_post: the secret is hashed with the
 *    host's keyed hash (HMAC-SHA256 under a key derived from the
 *    key-encryption key) and compared in constant time with the stored hash,
 *    then with the previous one while its rotation grace period lasts.
 *    Secrets are generated here (provision) with at least 256 bits, so a fast
 *    keyed hash is the right tool: a slow hash would only make the token
 *    endpoint a denial-of-service target.
 *  - private_key_jwt (RFC 7523 §2.2 and §3): a JWS signed with the key the
 *    client registered (PEM SubjectPublicKeyInfo), whose iss and sub name the
 *    client, whose aud names us, which lives briefly, and whose jti is claimed
 *    once in the store's replay cache.
 *
 * The instance keeps no mutable state: every call is thread-safe. Messages go
 * to the log and the audit trail; they never hold a secret, a hash or an
 * assertion. Only libc, OpenSSL, jansson, the JOSE helpers linked into this
 * module and the host table are used: no core symbol. */
#include "config.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <mandate/backend.h>

#include "client-secret.h"
#include "jose.h"
#include "word-list.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

/* The keyed hash is HMAC-SHA256. */
#define HASH_LEN 32
/* Bounds of the secret_bytes key; the encoded secret of the largest fits in
 * SECRET_TEXT_MAX bytes with its NUL. */
#define SECRET_BYTES_MIN 32
#define SECRET_BYTES_MAX 64
#define SECRET_TEXT_MAX 128
/* RFC 7523 sets no bound on jti; ours keeps replay keys small. */
#define JTI_LEN_MAX 256
#define REPLAY_NS "client-assertion"

typedef struct local_inst {
    /* conf */
    int64_t secret_bytes;
    int64_t assertion_max_lifetime;
    int64_t clock_skew;
    /* set by instantiate */
    const mandate_host *host;
} local_inst;

/* --- client secrets ------------------------------------------------------- */

static bool has_hash(const unsigned char *hash, size_t len)
{
    return hash != NULL && len > 0;
}

static mandate_rc auth_secret(local_inst *inst, const mandate_credential *cred,
                              const mandate_client *client, mandate_error *err)
{
    const mandate_host *host = inst->host;
    if (!has_hash(client->secret_hash, client->secret_hash_len)) {
        if (client->public_key != NULL && client->public_key[0] != '\0')
            return mandate_error_set(err, MANDATE_DENIED,
                                     "local: client has no secret: it is registered "
                                     "for private_key_jwt only");
        return mandate_error_set(err, MANDATE_DENIED, "local: client has no secret");
    }
    if (client->secret_hash_len != HASH_LEN)
        return mandate_error_set(err, MANDATE_ERROR,
                                 "local: stored secret hash is %zu bytes, not %d",
                                 client->secret_hash_len, HASH_LEN);

    unsigned char hash[HASH_LEN];
    mandate_rc rc = mandate_client_secret_hash(host, "local", cred, hash, err);
    if (rc != MANDATE_OK)
        return rc;
    if (CRYPTO_memcmp(hash, client->secret_hash, HASH_LEN) == 0) {
        rc = MANDATE_OK;
    } else if (has_hash(client->prev_secret_hash, client->prev_secret_hash_len) &&
               client->prev_secret_expires_at > host->now(host)) {
        if (client->prev_secret_hash_len != HASH_LEN) {
            rc = mandate_error_set(err, MANDATE_ERROR,
                                   "local: stored previous secret hash is %zu bytes, not %d",
                                   client->prev_secret_hash_len, HASH_LEN);
        } else if (CRYPTO_memcmp(hash, client->prev_secret_hash, HASH_LEN) == 0) {
            mandate_log_info(host,
                             "local: client \"%s\" used its previous secret (accepted until "
                             "%" PRId64 ")",
                             client->client_id, client->prev_secret_expires_at);
            rc = MANDATE_OK;
        } else {
            rc = mandate_error_set(err, MANDATE_DENIED, "local: secret does not match");
        }
    } else {
        rc = mandate_error_set(err, MANDATE_DENIED, "local: secret does not match");
    }
    host->wipe(hash, sizeof(hash));
    return rc;
}

/* --- private_key_jwt ------------------------------------------------------- */

/* A JSON string without an embedded NUL, or NULL. */
static const char *claim_string(const json_t *claims, const char *name, size_t *len_r)
{
    const json_t *v = json_object_get(claims, name);
    if (!json_is_string(v))
        return NULL;
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (strlen(s) != len)
        return NULL;
    if (len_r != NULL)
        *len_r = len;
    return s;
}

static mandate_rc check_aud(const json_t *claims, const char *acceptable, mandate_error *err)
{
    const json_t *aud = json_object_get(claims, "aud");
    size_t len;
    if (aud == NULL)
        return mandate_error_set(err, MANDATE_DENIED, "local: client assertion has no aud");
    if (json_is_string(aud)) {
        const char *s = claim_string(claims, "aud", &len);
        if (s != NULL && len > 0 && mandate_word_list_has(acceptable, s, len))
            return MANDATE_OK;
        return mandate_error_set(err, MANDATE_DENIED,
                                 "local: client assertion aud does not name this server");
    }
    if (!json_is_array(aud))
        return mandate_error_set(
            err, MANDATE_DENIED,
            "local: client assertion aud is neither a string nor an array");
    bool found = false;
    size_t i;
    const json_t *v;
    json_array_foreach(aud, i, v)
    {
        if (!json_is_string(v))
            return mandate_error_set(err, MANDATE_DENIED,
                                     "local: client assertion aud holds a non-string");
        const char *s = json_string_value(v);
        len = json_string_length(v);
        if (strlen(s) == len && len > 0 && mandate_word_list_has(acceptable, s, len))
            found = true;
    }
    if (!found)
        return mandate_error_set(err, MANDATE_DENIED,
                                 "local: client assertion aud does not name this server");
    return MANDATE_OK;
}

/* A NumericDate that must be an integer; absent is *present_r = false. */
static bool claim_time(const json_t *claims, const char *name, bool *present_r,
                       int64_t *value_r)
{
    const json_t *v = json_object_get(claims, name);
    *present_r = v != NULL;
    if (v == NULL)
        return true;
    if (!json_is_integer(v))
        return false;
    *value_r = (int64_t)json_integer_value(v);
    return true;
}

static mandate_rc check_claims(local_inst *inst, const json_t *claims,
                               const mandate_credential *cred, const mandate_client *client,
                               int64_t now, int64_t *exp_r, const char **jti_r,
                               mandate_error *err)
{
    const int64_t skew = inst->clock_skew;
    const char *s;

    /* RFC 7523 §3: iss and sub are the client_id. */
    s = claim_string(claims, "iss", NULL);
    if (s == NULL || strcmp(s, client->client_id) != 0)
        return mandate_error_set(err, MANDATE_DENIED,
                                 "local: client assertion iss is not the client_id");
    s = claim_string(claims, "sub", NULL);
    if (s == NULL || strcmp(s, client->client_id) != 0)
        return mandate_error_set(err, MANDATE_DENIED,
                                 "local: client assertion sub is not the client_id");

    mandate_rc rc = check_aud(claims, cred->audience, err);
    if (rc != MANDATE_OK)
        return rc;

    bool present;
    int64_t exp = 0, t = 0;
    if (!claim_time(claims, "exp", &present, &exp) || !present)
        return mandate_error_set(err, MANDATE_DENIED,
                                 "local: client assertion has no integer exp");
    if (exp <= now - skew)
        return mandate_error_set(err, MANDATE_DENIED, "local: client assertion expired");
    if (exp > now + inst->assertion_max_lifetime + skew)
        return mandate_error_set(err, MANDATE_DENIED,
                                 "local: client assertion lives too long (exp is %" PRId64
                                 " s away, at most %" PRId64 " allowed)",
                                 exp - now, inst->assertion_max_lifetime);
    /* the times that may not lie ahead, each optional */
    static const struct {
        const char *claim, *ahead;
    } not_ahead[] = {{"nbf", "is not valid yet (nbf)"},
                     {"iat", "was issued in the future (iat)"}};
    for (size_t i = 0; i < sizeof(not_ahead) / sizeof(not_ahead[0]); i++) {
        if (!claim_time(claims, not_ahead[i].claim, &present, &t))
            return mandate_error_set(err, MANDATE_DENIED,
                                     "local: client assertion %s is not an integer",
                                     not_ahead[i].claim);
        if (present && t > now + skew)
            return mandate_error_set(err, MANDATE_DENIED, "local: client assertion %s",
                                     not_ahead[i].ahead);
    }

    size_t jti_len = 0;
    s = claim_string(claims, "jti", &jti_len);
    if (s == NULL || jti_len == 0 || jti_len > JTI_LEN_MAX)
        return mandate_error_set(err, MANDATE_DENIED,
                                 "local: client assertion has no jti of 1 to %d characters",
                                 JTI_LEN_MAX);
    *exp_r = exp;
    *jti_r = s;
    return MANDATE_OK;
}

static mandate_rc auth_assertion(local_inst *inst, mandate_pool *pool,
                                 const mandate_credential *cred, const mandate_client *client,
                                 mandate_error *err)
{
    const mandate_host *host = inst->host;
    if (client->public_key == NULL || client->public_key[0] == '\0')
        return mandate_error_set(err, MANDATE_DENIED,
                                 "local: client has no public key registered");
    if (cred->audience == NULL || cred->audience[strspn(cred->audience, " ")] == '\0')
        return mandate_error_set(
            err, MANDATE_ERROR,
            "local: no audience given to check the client assertion against");

    size_t len = strnlen(cred->assertion, MANDATE_JWS_MAX_LEN + 1);
    if (len > MANDATE_JWS_MAX_LEN)
        return mandate_error_set(err, MANDATE_DENIED, "local: client assertion is too long");

    mandate_error jerr = {0};
    mandate_jws jws = {0};
    mandate_rc rc = mandate_jws_parse(cred->assertion, len, &jws, &jerr);
    if (rc != MANDATE_OK) {
        mandate_jws_clear(&jws);
        if (rc == MANDATE_NEXT)
            return mandate_error_set(err, MANDATE_DENIED,
                                     "local: client assertion is not a JWS");
        if (rc == MANDATE_INVALID)
            return mandate_error_set(err, MANDATE_DENIED, "local: client assertion: %s",
                                     jerr.message);
        return mandate_error_set(err, rc, "local: client assertion: %s", jerr.message);
    }

    EVP_PKEY *key =
        mandate_jose_public_from_pem(client->public_key, strlen(client->public_key));
    if (key == NULL) {
        mandate_jws_clear(&jws);
        return mandate_error_set(err, MANDATE_ERROR,
                                 "local: the public key registered for client \"%s\" does not "
                                 "parse",
                                 client->client_id);
    }
    rc = mandate_jws_verify(cred->assertion, len, key, &jerr);
    EVP_PKEY_free(key);
    if (rc != MANDATE_OK) {
        mandate_jws_clear(&jws);
        if (rc == MANDATE_INVALID)
            rc = MANDATE_DENIED;
        return mandate_error_set(err, rc, "local: client assertion: %s", jerr.message);
    }

    int64_t exp = 0;
    const char *jti = NULL;
    rc = check_claims(inst, jws.claims, cred, client, host->now(host), &exp, &jti, err);
    if (rc != MANDATE_OK) {
        mandate_jws_clear(&jws);
        return rc;
    }

    /* Last, so that a refused assertion does not use up its jti. */
    size_t id_len = strlen(client->client_id) + 1 + strlen(jti) + 1;
    char *id = host->pool_alloc(pool, id_len);
    if (id == NULL) {
        mandate_jws_clear(&jws);
        return mandate_error_set(err, MANDATE_ERROR, "local: out of memory");
    }
    snprintf(id, id_len, "%s:%s", client->client_id, jti);
    mandate_jws_clear(&jws);

    rc = host->replay_claim(host, REPLAY_NS, id, exp + inst->clock_skew, err);
    if (rc == MANDATE_EXISTS)
        return mandate_error_set(err, MANDATE_DENIED, "local: client assertion replayed");
    if (rc == MANDATE_OK)
        return MANDATE_OK;
    if (rc != MANDATE_TEMPFAIL && rc != MANDATE_ERROR)
        return mandate_error_set(err, MANDATE_ERROR, "local: replay cache answered %d: %s",
                                 (int)rc, err != NULL ? err->message : "");
    return rc;
}

/* --- backend ops ----------------------------------------------------------- */

static mandate_rc local_authenticate_client(void *inst_, mandate_pool *pool,
                                            const mandate_credential *cred,
                                            const mandate_client *client, mandate_error *err)
{
    local_inst *inst = inst_;
    if (cred == NULL || client == NULL || client->client_id == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "local: no credential or no client");
    if (client->backend != NULL && client->backend[0] != '\0' &&
        strcmp(client->backend, inst->host->instance) != 0)
        return MANDATE_NEXT;
    if (cred->client_id != NULL && strcmp(cred->client_id, client->client_id) != 0)
        return mandate_error_set(err, MANDATE_ERROR,
                                 "local: the client record is not the one presented");

    bool secret = cred->secret != NULL, assertion = cred->assertion != NULL;
    if (secret && assertion)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "local: both a secret and a client assertion presented");
    if (cred->auth_method != NULL &&
        ((secret && strcmp(cred->auth_method, "client_secret_basic") != 0 &&
          strcmp(cred->auth_method, "client_secret_post") != 0) ||
         (assertion && strcmp(cred->auth_method, "private_key_jwt") != 0)))
        return mandate_error_set(err, MANDATE_INVALID,
                                 "local: credential does not fit auth method %.40s",
                                 cred->auth_method);
    if (secret)
        return auth_secret(inst, cred, client, err);
    if (assertion)
        return auth_assertion(inst, pool, cred, client, err);
    return mandate_error_set(err, MANDATE_INVALID,
                             "local: neither a secret nor a client assertion presented");
}

static mandate_rc local_provision(void *inst_, mandate_pool *pool, mandate_provision_mode mode,
                                  mandate_client *client, char **secret_r, mandate_error *err)
{
    local_inst *inst = inst_;
    const mandate_host *host = inst->host;
    if (client == NULL || secret_r == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "local: provision: no client");
    if (mode != MANDATE_PROVISION_CREATE && mode != MANDATE_PROVISION_ROTATE)
        return mandate_error_set(err, MANDATE_INVALID, "local: provision: unknown mode %d",
                                 (int)mode);
    *secret_r = NULL;

    size_t n = (size_t)inst->secret_bytes;
    unsigned char raw[SECRET_BYTES_MAX];
    char text[SECRET_TEXT_MAX];
    unsigned char hash[HASH_LEN];
    char *secret = NULL;
    unsigned char *stored = NULL;

    mandate_rc rc = host->random(raw, n);
    if (rc != MANDATE_OK) {
        rc = mandate_error_set(err, rc == MANDATE_TEMPFAIL ? MANDATE_TEMPFAIL : MANDATE_ERROR,
                               "local: provision: no random bytes");
        goto out;
    }
    mandate_b64url_encode(raw, n, text);
    size_t text_len = strlen(text);
    rc = host->keyed_hash(host, text, text_len, hash, err);
    if (rc != MANDATE_OK)
        goto out;
    secret = host->pool_strdup(pool, text);
    stored = (unsigned char *)host->pool_memdup(pool, hash, sizeof(hash));
    if (secret == NULL || stored == NULL) {
        rc = mandate_error_set(err, MANDATE_ERROR, "local: provision: out of memory");
        goto out;
    }
    client->secret_hash = stored;
    client->secret_hash_len = sizeof(hash);
    *secret_r = secret;
out:
    host->wipe(raw, sizeof(raw));
    host->wipe(text, sizeof(text));
    host->wipe(hash, sizeof(hash));
    return rc;
}

/* --- plugin ----------------------------------------------------------------- */

static mandate_rc local_instantiate(void *inst_, const mandate_host *host, mandate_error *err)
{
    local_inst *inst = inst_;
    if (mandate_plugin_host_check(host, "local", err) != MANDATE_OK)
        return MANDATE_ERROR;
    /* The core has checked these against the conf table; a caller that did
     * not must not get a buffer overrun. */
    if (inst->secret_bytes < SECRET_BYTES_MIN || inst->secret_bytes > SECRET_BYTES_MAX ||
        mandate_b64url_encoded_len((size_t)inst->secret_bytes) >= SECRET_TEXT_MAX)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "local: secret_bytes must be between %d and %d",
                                 SECRET_BYTES_MIN, SECRET_BYTES_MAX);
    if (inst->assertion_max_lifetime < 10 || inst->assertion_max_lifetime > 3600)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "local: assertion_max_lifetime must be between 10 and 3600");
    if (inst->clock_skew < 0 || inst->clock_skew > 300)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "local: clock_skew must be between 0 and 300");
    inst->host = host;
    mandate_log_debug(host,
                      "local: %" PRId64 "-byte secrets, client assertions live at most %" PRId64
                      " s, clock skew %" PRId64 " s",
                      inst->secret_bytes, inst->assertion_max_lifetime, inst->clock_skew);
    return MANDATE_OK;
}

static const mandate_conf_def local_conf[] = {
    {"secret_bytes", MANDATE_CONF_INT, 0, offsetof(local_inst, secret_bytes), "32",
     SECRET_BYTES_MIN, SECRET_BYTES_MAX, NULL,
     "random bytes in each generated client secret (at least 256 bits)"},
    {"assertion_max_lifetime", MANDATE_CONF_INT, 0,
     offsetof(local_inst, assertion_max_lifetime), "300", 10, 3600, NULL,
     "seconds: the longest exp - now a private_key_jwt client assertion may have"},
    {"clock_skew", MANDATE_CONF_INT, 0, offsetof(local_inst, clock_skew), "30", 0, 300, NULL,
     "seconds of clock difference tolerated in client assertions"},
    MANDATE_CONF_END};

static const mandate_backend_ops local_ops = {
    .authenticate_client = local_authenticate_client,
    .assertion_types = NULL,
    .validate_assertion = NULL,
    .provision = local_provision,
};

MANDATE_PLUGIN(local, MANDATE_BACKEND, PACKAGE_VERSION, 0, local_inst, local_conf,
               local_instantiate, NULL, &local_ops);
