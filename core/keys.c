#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "clock-private.h"
#include "keys-private.h"
#include "log-private.h"
#include "plugins-private.h"
#include "pool-private.h"
#include "token-cache-private.h"
#include "util-private.h"

#define WRAP_VERSION 1
#define WRAP_NONCE_LEN 12
#define WRAP_TAG_LEN 16
#define WRAP_OVERHEAD (1 + WRAP_NONCE_LEN + WRAP_TAG_LEN)
/* Retired keys stay published this much past the longest token lifetime,
 * for clocks that disagree a little. */
#define RETIRE_MARGIN_S 300

struct mandate_keyring {
    pthread_mutex_t lock;
    char *jwks;
    bool ready;
    bool synced;
    uint64_t generation;
    /* of the key set the formats were last given: the generation also moves
     * with every client change and revocation, which leave the formats' keys
     * and the cache of checked tokens as they are */
    unsigned char key_set_digest[EVP_MAX_MD_SIZE];
};

mandate_keyring *mandate_keyring_new(void)
{
    mandate_keyring *k = mandate_xcalloc(1, sizeof(*k));
    pthread_mutex_init(&k->lock, NULL);
    k->jwks = mandate_xstrdup("{\"keys\":[]}");
    return k;
}

void mandate_keyring_free(mandate_keyring **kp)
{
    mandate_keyring *k = *kp;
    if (k == NULL)
        return;
    pthread_mutex_destroy(&k->lock);
    free(k->jwks);
    free(k);
    *kp = NULL;
}

/* AES-256-GCM of len bytes of in into out, the kid as associated data:
 * encrypting, the tag is written to tag; decrypting, it is checked. */
static bool gcm(int encrypt, const unsigned char *wrap_key, const unsigned char *nonce,
                const char *kid, const unsigned char *in, size_t len, unsigned char *out,
                unsigned char *tag)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0;
    bool ok =
        ctx != NULL &&
        EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, wrap_key, nonce, encrypt) == 1 &&
        EVP_CipherUpdate(ctx, NULL, &n, (const unsigned char *)kid, (int)strlen(kid)) == 1 &&
        EVP_CipherUpdate(ctx, out, &n, in, (int)len) == 1 &&
        (encrypt || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, WRAP_TAG_LEN, tag) == 1) &&
        EVP_CipherFinal_ex(ctx, out + n, &n) == 1 &&
        (!encrypt || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, WRAP_TAG_LEN, tag) == 1);
    EVP_CIPHER_CTX_free(ctx);
    return ok;
}

/* blob = version || nonce || ciphertext || tag */
static mandate_rc wrap(const unsigned char *wrap_key, const char *kid,
                       const unsigned char *plain, size_t len, mandate_pool *pool,
                       unsigned char **blob_r, size_t *blob_len_r, mandate_error *err)
{
    unsigned char *blob = mandate_pool_alloc(pool, len + WRAP_OVERHEAD);
    blob[0] = WRAP_VERSION;
    unsigned char *nonce = blob + 1, *ct = blob + 1 + WRAP_NONCE_LEN, *tag = ct + len;
    if (RAND_bytes(nonce, WRAP_NONCE_LEN) != 1)
        return mandate_error_set(err, MANDATE_ERROR, "no random bytes for a nonce");
    if (!gcm(1, wrap_key, nonce, kid, plain, len, ct, tag))
        return mandate_error_set(err, MANDATE_ERROR, "encrypting key %s failed", kid);
    *blob_r = blob;
    *blob_len_r = len + WRAP_OVERHEAD;
    return MANDATE_OK;
}

static mandate_rc unwrap(const unsigned char *wrap_key, const char *kid,
                         const unsigned char *blob, size_t blob_len, mandate_pool *pool,
                         unsigned char **plain_r, size_t *len_r, mandate_error *err)
{
    if (blob_len <= WRAP_OVERHEAD || blob[0] != WRAP_VERSION)
        return mandate_error_set(err, MANDATE_INVALID, "key %s: unknown wrapping", kid);
    size_t len = blob_len - WRAP_OVERHEAD;
    const unsigned char *nonce = blob + 1, *ct = blob + 1 + WRAP_NONCE_LEN;
    /* decrypting, gcm only reads the tag */
    unsigned char *tag = (unsigned char *)ct + len;
    unsigned char *plain = mandate_pool_alloc(pool, len);
    if (!gcm(0, wrap_key, nonce, kid, ct, len, plain, tag)) {
        OPENSSL_cleanse(plain, len);
        return mandate_error_set(err, MANDATE_DENIED,
                                 "key %s does not decrypt: another key-encryption key?", kid);
    }
    *plain_r = plain;
    *len_r = len;
    return MANDATE_OK;
}

typedef struct key_list {
    mandate_pool *pool;
    mandate_key *keys;
    size_t count, cap;
} key_list;

static mandate_rc collect_key(void *ctx, const mandate_key *key)
{
    key_list *l = ctx;
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        mandate_key *grown = mandate_pool_alloc(l->pool, cap * sizeof(*grown));
        if (l->count > 0)
            memcpy(grown, l->keys, l->count * sizeof(*grown));
        l->keys = grown;
        l->cap = cap;
    }
    mandate_key *k = &l->keys[l->count++];
    *k = *key;
    k->kid = mandate_pool_strdup(l->pool, key->kid);
    k->alg = mandate_pool_strdup(l->pool, key->alg);
    k->format = mandate_pool_strdup(l->pool, key->format);
    k->public_jwk = mandate_pool_strdup(l->pool, key->public_jwk);
    k->private_blob = key->private_blob
                          ? mandate_pool_memdup(l->pool, key->private_blob, key->private_blob_len)
                          : NULL;
    return MANDATE_OK;
}

mandate_rc mandate_keys_list(mandate_runtime *rt, mandate_pool *pool, mandate_key **keys_r,
                             size_t *count_r, mandate_error *err)
{
    key_list l = {.pool = pool};
    mandate_rc rc = mandate_store_key_list(mandate_runtime_store(rt), collect_key, &l, err);
    *keys_r = l.keys;
    *count_r = l.count;
    return rc;
}

/* One field: its length first (UINT64_MAX when absent), so that no two key
 * sets hash the same bytes. */
static bool digest_field(EVP_MD_CTX *md, const void *data, size_t len)
{
    uint64_t n = data != NULL ? (uint64_t)len : UINT64_MAX;
    return EVP_DigestUpdate(md, &n, sizeof(n)) == 1 &&
           (data == NULL || EVP_DigestUpdate(md, data, len) == 1);
}

/* SHA-256 over everything of the keys that decides what verifies; false
 * when it cannot be computed (the caller then assumes a change). */
static bool key_set_digest(const mandate_key *keys, size_t count,
                           unsigned char out[EVP_MAX_MD_SIZE])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
    for (size_t i = 0; ok && i < count; i++) {
        const mandate_key *k = &keys[i];
        const char *texts[] = {k->kid, k->alg, k->format, k->public_jwk};
        for (size_t t = 0; ok && t < sizeof(texts) / sizeof(texts[0]); t++)
            ok = digest_field(md, texts[t], texts[t] != NULL ? strlen(texts[t]) : 0);
        int64_t numbers[] = {(int64_t)k->status, k->retired_at, k->remove_after};
        ok = ok && digest_field(md, numbers, sizeof(numbers)) &&
             digest_field(md, k->private_blob, k->private_blob_len);
    }
    memset(out, 0, EVP_MAX_MD_SIZE);
    ok = ok && EVP_DigestFinal_ex(md, out, NULL) == 1;
    EVP_MD_CTX_free(md);
    return ok;
}

/* Hand one format its keys, decrypted; returns how many can sign. */
static size_t give_keys(mandate_runtime *rt, const mandate_instance *in,
                        const mandate_key *keys, size_t count, mandate_pool *pool,
                        mandate_error *err, mandate_rc *rc_r)
{
    mandate_signing_key *sk = mandate_pool_alloc(pool, (count ? count : 1) * sizeof(*sk));
    size_t n = 0, active = 0;
    const unsigned char *wrap_key = mandate_runtime_key_wrap_key(rt);
    for (size_t i = 0; i < count; i++) {
        if (strcmp(keys[i].format, in->conf->name) != 0)
            continue;
        unsigned char *der = NULL;
        size_t der_len = 0;
        mandate_error kerr = {0};
        if (unwrap(wrap_key, keys[i].kid, keys[i].private_blob, keys[i].private_blob_len, pool,
                   &der, &der_len, &kerr) != MANDATE_OK) {
            log_error("%s: %s", in->conf->name, kerr.message);
            continue;
        }
        sk[n++] = (mandate_signing_key){&keys[i], der, der_len};
        if (keys[i].status == MANDATE_KEY_ACTIVE)
            active++;
    }
    *rc_r = mandate_format_set_keys(in, sk, n, err);
    for (size_t i = 0; i < n; i++)
        OPENSSL_cleanse((void *)sk[i].private_der, sk[i].private_der_len);
    return *rc_r == MANDATE_OK ? active : 0;
}

mandate_rc mandate_keyring_sync(mandate_runtime *rt, bool force, mandate_error *err)
{
    mandate_keyring *kr = mandate_runtime_keyring(rt);
    const mandate_instance *store = mandate_runtime_store(rt);
    if (kr == NULL || store == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "no keyring or store");
    uint64_t generation;
    mandate_rc rc = mandate_store_generation(store, &generation, err);
    if (rc != MANDATE_OK)
        return rc;
    pthread_mutex_lock(&kr->lock);
    bool unchanged = kr->synced && kr->generation == generation;
    pthread_mutex_unlock(&kr->lock);
    if (unchanged && !force)
        return MANDATE_OK;

    mandate_pool *pool = mandate_pool_new();
    mandate_key *keys;
    size_t count;
    rc = mandate_keys_list(rt, pool, &keys, &count, err);
    unsigned char digest[EVP_MAX_MD_SIZE];
    bool digest_ok = rc == MANDATE_OK && key_set_digest(keys, count, digest);
    /* the generation also moves with every client change and revocation:
     * the formats keep the keys they have when these did not change */
    pthread_mutex_lock(&kr->lock);
    bool same_keys = digest_ok && kr->synced && !force &&
                     memcmp(digest, kr->key_set_digest, sizeof(digest)) == 0;
    bool ready = same_keys && kr->ready, any_signing = false;
    pthread_mutex_unlock(&kr->lock);
    for (size_t i = 0; rc == MANDATE_OK && !same_keys && i < mandate_runtime_instance_count(rt);
         i++) {
        const mandate_instance *in = mandate_runtime_instance(rt, i);
        if (!mandate_format_has_keys(in))
            continue;
        any_signing = true;
        if (give_keys(rt, in, keys, count, pool, err, &rc) > 0)
            ready = true;
    }
    ready = ready || (!same_keys && !any_signing);
    if (rc != MANDATE_OK) {
        mandate_pool_free(&pool);
        return rc;
    }

    int64_t now = mandate_clock_now();
    json_t *jwks_keys = json_array();
    for (size_t i = 0; i < count; i++) {
        const mandate_key *k = &keys[i];
        if (k->status != MANDATE_KEY_ACTIVE && (k->remove_after != 0 && k->remove_after <= now))
            continue;
        json_t *jwk = json_loads(k->public_jwk, 0, NULL);
        if (jwk == NULL) {
            log_error("key %s: its public JWK is not JSON; not published", k->kid);
            continue;
        }
        json_array_append_new(jwks_keys, jwk);
    }
    json_t *doc = json_pack("{s:o}", "keys", jwks_keys);
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    mandate_pool_free(&pool);

    pthread_mutex_lock(&kr->lock);
    memcpy(kr->key_set_digest, digest, sizeof(digest));
    free(kr->jwks);
    kr->jwks = text;
    kr->ready = ready;
    kr->synced = true;
    kr->generation = generation;
    pthread_mutex_unlock(&kr->lock);
    /* a key removed or replaced: tokens read with the old set are read again */
    if (!same_keys && mandate_runtime_token_cache(rt) != NULL)
        mandate_token_cache_clear(mandate_runtime_token_cache(rt));
    log_debug("keys synced at store generation %llu", (unsigned long long)generation);
    return MANDATE_OK;
}

char *mandate_keyring_jwks(mandate_runtime *rt, mandate_pool *pool)
{
    mandate_keyring *kr = mandate_runtime_keyring(rt);
    pthread_mutex_lock(&kr->lock);
    char *copy = mandate_pool_strdup(pool, kr->jwks);
    pthread_mutex_unlock(&kr->lock);
    return copy;
}

bool mandate_keyring_ready(mandate_runtime *rt)
{
    mandate_keyring *kr = mandate_runtime_keyring(rt);
    if (kr == NULL)
        return false;
    pthread_mutex_lock(&kr->lock);
    bool ready = kr->ready;
    pthread_mutex_unlock(&kr->lock);
    return ready;
}

static const mandate_instance *signing_format(mandate_runtime *rt, const char *name,
                                              mandate_error *err)
{
    if (name == NULL)
        name = mandate_runtime_config(rt)->token_format;
    const mandate_instance *in = mandate_runtime_find(rt, MANDATE_FORMAT, name);
    if (in == NULL) {
        mandate_error_set(err, MANDATE_NOT_FOUND, "no format instance '%s' is enabled", name);
        return NULL;
    }
    if (!mandate_format_has_keys(in)) {
        mandate_error_set(err, MANDATE_INVALID, "format '%s' has no signing keys", name);
        return NULL;
    }
    return in;
}

mandate_rc mandate_keys_rotate(mandate_runtime *rt, const char *format, const char *alg,
                               mandate_pool *pool, mandate_key *key_r, mandate_error *err)
{
    const mandate_instance *in = signing_format(rt, format, err);
    if (in == NULL)
        return err->rc;
    const mandate_instance *store = mandate_runtime_store(rt);
    mandate_key key = {0};
    unsigned char *der = NULL;
    size_t der_len = 0;
    mandate_rc rc = mandate_format_keygen(in, pool, alg, &key, &der, &der_len, err);
    if (rc != MANDATE_OK)
        return rc;
    key.format = in->conf->name;
    key.status = MANDATE_KEY_ACTIVE;
    if (key.created_at == 0)
        key.created_at = mandate_clock_now();
    unsigned char *blob = NULL;
    size_t blob_len = 0;
    rc = wrap(mandate_runtime_key_wrap_key(rt), key.kid, der, der_len, pool, &blob, &blob_len,
              err);
    OPENSSL_cleanse(der, der_len);
    if (rc != MANDATE_OK)
        return rc;
    key.private_blob = blob;
    key.private_blob_len = blob_len;

    /* the keys signing until now, read before the new one is added */
    mandate_key *old;
    size_t count;
    rc = mandate_keys_list(rt, pool, &old, &count, err);
    if (rc == MANDATE_OK)
        rc = mandate_store_key_add(store, &key, err);
    if (rc != MANDATE_OK)
        return rc;
    int64_t now = mandate_clock_now();
    for (size_t i = 0; i < count; i++) {
        if (old[i].status != MANDATE_KEY_ACTIVE || strcmp(old[i].format, key.format) != 0)
            continue;
        old[i].status = MANDATE_KEY_RETIRED;
        old[i].retired_at = now;
        old[i].remove_after = now + MANDATE_TOKEN_MAX_LIFETIME + RETIRE_MARGIN_S;
        rc = mandate_store_key_update(store, &old[i], err);
        if (rc != MANDATE_OK)
            return rc;
    }
    *key_r = key;
    key_r->private_blob = NULL;
    key_r->private_blob_len = 0;
    log_info("signing key %s (%s) made for %s; %s", key.kid, key.alg, key.format,
             count > 0 ? "the previous keys retire" : "it is the first");
    return MANDATE_OK;
}

mandate_rc mandate_keys_ensure(mandate_runtime *rt, mandate_error *err)
{
    mandate_pool *pool = mandate_pool_new();
    mandate_key *keys;
    size_t count;
    mandate_rc rc = mandate_keys_list(rt, pool, &keys, &count, err);
    for (size_t i = 0; rc == MANDATE_OK && i < mandate_runtime_instance_count(rt); i++) {
        const mandate_instance *in = mandate_runtime_instance(rt, i);
        if (!mandate_format_has_keys(in))
            continue;
        bool has_active = false;
        for (size_t k = 0; k < count; k++)
            if (keys[k].status == MANDATE_KEY_ACTIVE && strcmp(keys[k].format, in->conf->name) == 0)
                has_active = true;
        mandate_key made;
        if (!has_active)
            rc = mandate_keys_rotate(rt, in->conf->name, NULL, pool, &made, err);
    }
    mandate_pool_free(&pool);
    return rc;
}

mandate_rc mandate_keys_purge(mandate_runtime *rt, int64_t now, mandate_error *err)
{
    const mandate_instance *store = mandate_runtime_store(rt);
    mandate_pool *pool = mandate_pool_new();
    mandate_key *keys;
    size_t count;
    mandate_rc rc = mandate_keys_list(rt, pool, &keys, &count, err);
    for (size_t i = 0; rc == MANDATE_OK && i < count; i++) {
        if (keys[i].status == MANDATE_KEY_RETIRED && keys[i].remove_after != 0 &&
            keys[i].remove_after <= now) {
            rc = mandate_store_key_delete(store, keys[i].kid, err);
            if (rc == MANDATE_OK)
                log_info("signing key %s left the JWKS: every token it signed has expired",
                         keys[i].kid);
        }
    }
    mandate_pool_free(&pool);
    return rc;
}
