/* Seals of the audit trail: the key, signing and checking checkpoints. The
 * format and the reasons are in audit-seal-private.h. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "audit-seal-private.h"
#include "jose.h"
#include "kek-private.h"
#include "util-private.h"

#define SEAL_LABEL "mandate audit seal v1"
#define SEAL_TEXT_MAX 512
#define SEAL_SIG_B64_LEN 86
/* a PEM file of public keys: a few keys of some 113 bytes each */
#define KEY_FILE_MAX (64 * 1024)

static const char *const whys[] = {"records", "time", "rotation", "close", "request", NULL};

mandate_rc mandate_audit_seal_key_load(const char *kek_file, EVP_PKEY **key_r,
                                       mandate_error *err)
{
    unsigned char kek[MANDATE_KEK_LEN], seed[32];
    *key_r = NULL;
    mandate_rc rc = mandate_kek_load(kek_file, kek, err);
    if (rc == MANDATE_OK)
        rc = mandate_kek_derive(kek, SEAL_LABEL, seed, err);
    OPENSSL_cleanse(kek, sizeof(kek));
    if (rc != MANDATE_OK)
        return rc;
    /* an Ed25519 private key is a 32-byte seed: any seed is a valid key */
    EVP_PKEY *key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof(seed));
    OPENSSL_cleanse(seed, sizeof(seed));
    if (key == NULL) {
        ERR_clear_error();
        return mandate_error_set(err, MANDATE_ERROR, "OpenSSL has no Ed25519");
    }
    *key_r = key;
    return MANDATE_OK;
}

bool mandate_audit_seal_key_id(const EVP_PKEY *key, char kid_r[MANDATE_AUDIT_KID_LEN + 1])
{
    kid_r[0] = '\0';
    if (key == NULL || EVP_PKEY_get_base_id(key) != EVP_PKEY_ED25519)
        return false;
    return mandate_jwk_thumbprint(key, kid_r) && strlen(kid_r) == MANDATE_AUDIT_KID_LEN;
}

char *mandate_audit_seal_public_pem(const EVP_PKEY *key)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *out = NULL;
    if (bio != NULL && PEM_write_bio_PUBKEY(bio, key) == 1) {
        char *data;
        long len = BIO_get_mem_data(bio, &data);
        if (len > 0) {
            out = mandate_xmalloc((size_t)len + 1);
            memcpy(out, data, (size_t)len);
            out[len] = '\0';
        }
    }
    BIO_free(bio);
    ERR_clear_error();
    return out;
}

static bool host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '-' || c == '_';
}

void mandate_audit_seal_host(char host_r[MANDATE_AUDIT_CP_HOST_MAX + 1])
{
    char buf[256];
    if (gethostname(buf, sizeof(buf)) != 0 || buf[0] == '\0')
        snprintf(buf, sizeof(buf), "localhost");
    buf[sizeof(buf) - 1] = '\0';
    size_t i;
    for (i = 0; buf[i] != '\0' && i < MANDATE_AUDIT_CP_HOST_MAX; i++)
        host_r[i] = host_char(buf[i]) ? buf[i] : '_';
    host_r[i] = '\0';
}

/* --- the fields' charsets: none of them needs JSON escaping, and none can
 * hold the newline that separates them in the signed text ----------------- */

static bool is_b64url(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

static bool is_hex64(const char *s)
{
    size_t i;
    for (i = 0; s[i] != '\0'; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return i == 64;
}

/* "2026-11-27T14:03:07.123456Z" */
static bool is_ts(const char *s)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";
    for (size_t i = 0; i < sizeof(shape) - 1; i++) {
        if (s[i] == '\0')
            return false;
        if (shape[i] == 'd' ? s[i] < '0' || s[i] > '9' : s[i] != shape[i])
            return false;
    }
    return s[sizeof(shape) - 1] == '\0';
}

static bool is_name(const char *s, size_t max)
{
    size_t i;
    for (i = 0; s[i] != '\0'; i++)
        if (i >= max || !host_char(s[i]))
            return false;
    return i > 0;
}

static bool is_why(const char *s)
{
    for (size_t i = 0; whys[i] != NULL; i++)
        if (strcmp(s, whys[i]) == 0)
            return true;
    return false;
}

/* Whether the fields other than key and sig are each of their charset. */
static const char *bad_field(const mandate_audit_checkpoint *cp)
{
    if (cp->seq < 1 || cp->seq > (uint64_t)INT64_MAX)
        return "seq";
    if (!is_hex64(cp->hash))
        return "hash";
    if (!is_ts(cp->ts))
        return "ts";
    if (!is_name(cp->file, MANDATE_AUDIT_CP_FILE_MAX))
        return "file";
    if (!is_name(cp->host, MANDATE_AUDIT_CP_HOST_MAX))
        return "host";
    if (!is_why(cp->why))
        return "why";
    return NULL;
}

static size_t signed_text(const mandate_audit_checkpoint *cp, char text[SEAL_TEXT_MAX])
{
    int n = snprintf(text, SEAL_TEXT_MAX,
                     "mandate-audit-checkpoint-v1\nkey=%s\nseq=%" PRIu64
                     "\nhash=%s\nts=%s\nfile=%s\nhost=%s\nwhy=%s\n",
                     cp->key, cp->seq, cp->hash, cp->ts, cp->file, cp->host, cp->why);
    return n > 0 && n < SEAL_TEXT_MAX ? (size_t)n : 0;
}

mandate_rc mandate_audit_checkpoint_sign(mandate_audit_checkpoint *cp, EVP_PKEY *key,
                                         mandate_error *err)
{
    const char *bad = bad_field(cp);
    if (bad != NULL)
        return mandate_error_set(err, MANDATE_INVALID, "audit checkpoint: bad %s", bad);
    if (!mandate_audit_seal_key_id(key, cp->key))
        return mandate_error_set(err, MANDATE_INVALID, "audit checkpoint: not an Ed25519 key");
    char text[SEAL_TEXT_MAX];
    size_t len = signed_text(cp, text);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t sig_len = sizeof(cp->sig);
    /* Ed25519 hashes the message itself: no digest is named */
    bool ok = ctx != NULL && len > 0 && EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
              EVP_DigestSign(ctx, cp->sig, &sig_len, (const unsigned char *)text, len) == 1 &&
              sig_len == sizeof(cp->sig);
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        ERR_clear_error();
        return mandate_error_set(err, MANDATE_ERROR,
                                 "audit checkpoint: Ed25519 signing failed");
    }
    return MANDATE_OK;
}

char *mandate_audit_checkpoint_members(const mandate_audit_checkpoint *cp)
{
    char sig[SEAL_SIG_B64_LEN + 1];
    mandate_b64url_encode(cp->sig, sizeof(cp->sig), sig);
    return mandate_xasprintf("\"checkpoint\":{\"key\":\"%s\",\"seq\":%" PRIu64
                             ",\"hash\":\"%s\",\"ts\":\"%s\",\"file\":\"%s\",\"host\":\"%s\","
                             "\"why\":\"%s\"},\"sig\":\"%s\"",
                             cp->key, cp->seq, cp->hash, cp->ts, cp->file, cp->host, cp->why,
                             sig);
}

/* Copies the string member name of o into out (cap bytes with the NUL). */
static bool get_str(const json_t *o, const char *name, char *out, size_t cap)
{
    const json_t *v = json_object_get(o, name);
    if (!json_is_string(v) || json_string_length(v) >= cap ||
        strlen(json_string_value(v)) != json_string_length(v))
        return false;
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return true;
}

bool mandate_audit_checkpoint_parse(const json_t *obj, mandate_audit_checkpoint *cp,
                                    char *why_r, size_t why_cap)
{
    memset(cp, 0, sizeof(*cp));
    const json_t *c = json_object_get(obj, "checkpoint");
    const json_t *sig = json_object_get(obj, "sig");
    const char *bad = NULL;
    if (!json_is_object(c))
        bad = "no \"checkpoint\" object";
    else if (json_object_size(c) != 7)
        bad = "the checkpoint must have exactly key, seq, hash, ts, file, host and why";
    else if (!get_str(c, "key", cp->key, sizeof(cp->key)) ||
             strlen(cp->key) != MANDATE_AUDIT_KID_LEN ||
             !is_b64url(cp->key, MANDATE_AUDIT_KID_LEN))
        bad = "bad key id";
    else if (!json_is_integer(json_object_get(c, "seq")) ||
             json_integer_value(json_object_get(c, "seq")) < 1)
        bad = "bad seq";
    else if (!get_str(c, "hash", cp->hash, sizeof(cp->hash)) ||
             !get_str(c, "ts", cp->ts, sizeof(cp->ts)) ||
             !get_str(c, "file", cp->file, sizeof(cp->file)) ||
             !get_str(c, "host", cp->host, sizeof(cp->host)) ||
             !get_str(c, "why", cp->why, sizeof(cp->why)))
        bad = "a member is missing or too long";
    if (bad == NULL) {
        cp->seq = (uint64_t)json_integer_value(json_object_get(c, "seq"));
        const char *field = bad_field(cp);
        if (field != NULL) {
            snprintf(why_r, why_cap, "bad %s", field);
            return false;
        }
        size_t len = 0;
        if (!json_is_string(sig) || json_string_length(sig) != SEAL_SIG_B64_LEN ||
            !mandate_b64url_decode(json_string_value(sig), SEAL_SIG_B64_LEN, cp->sig,
                                   sizeof(cp->sig), &len) ||
            len != sizeof(cp->sig))
            bad = "bad \"sig\"";
    }
    if (bad != NULL) {
        snprintf(why_r, why_cap, "%s", bad);
        return false;
    }
    return true;
}

/* --- verification keys ------------------------------------------------------ */

struct mandate_audit_keys {
    size_t n;
    EVP_PKEY **keys;
    char (*ids)[MANDATE_AUDIT_KID_LEN + 1];
};

mandate_audit_keys *mandate_audit_keys_new(void)
{
    return mandate_xcalloc(1, sizeof(mandate_audit_keys));
}

void mandate_audit_keys_free(mandate_audit_keys **keys)
{
    mandate_audit_keys *k = *keys;
    if (k == NULL)
        return;
    for (size_t i = 0; i < k->n; i++)
        EVP_PKEY_free(k->keys[i]);
    free(k->keys);
    free(k->ids);
    free(k);
    *keys = NULL;
}

size_t mandate_audit_keys_count(const mandate_audit_keys *keys)
{
    return keys != NULL ? keys->n : 0;
}

mandate_rc mandate_audit_keys_add(mandate_audit_keys *keys, EVP_PKEY *key, mandate_error *err)
{
    char kid[MANDATE_AUDIT_KID_LEN + 1];
    if (!mandate_audit_seal_key_id(key, kid))
        return mandate_error_set(err, MANDATE_INVALID, "not an Ed25519 key");
    for (size_t i = 0; i < keys->n; i++)
        if (strcmp(keys->ids[i], kid) == 0)
            return MANDATE_OK; /* given twice */
    keys->keys = mandate_xrealloc(keys->keys, (keys->n + 1) * sizeof(*keys->keys));
    keys->ids = mandate_xrealloc(keys->ids, (keys->n + 1) * sizeof(*keys->ids));
    EVP_PKEY_up_ref(key);
    keys->keys[keys->n] = key;
    memcpy(keys->ids[keys->n], kid, sizeof(kid));
    keys->n++;
    return MANDATE_OK;
}

mandate_rc mandate_audit_keys_add_pem_file(mandate_audit_keys *keys, const char *path,
                                           mandate_error *err)
{
    char *text = NULL;
    size_t len = 0;
    mandate_rc rc = mandate_read_file(path, KEY_FILE_MAX, &text, &len, err);
    if (rc != MANDATE_OK)
        return rc;
    BIO *bio = BIO_new_mem_buf(text, (int)len);
    size_t added = 0;
    EVP_PKEY *key;
    while (rc == MANDATE_OK && bio != NULL &&
           (key = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL)) != NULL) {
        rc = mandate_audit_keys_add(keys, key, err);
        if (rc != MANDATE_OK)
            rc = mandate_error_set(err, MANDATE_INVALID, "%s: a key that is not Ed25519", path);
        EVP_PKEY_free(key);
        added++;
    }
    ERR_clear_error();
    BIO_free(bio);
    free(text);
    if (rc == MANDATE_OK && added == 0)
        rc = mandate_error_set(err, MANDATE_INVALID,
                               "%s: no PEM public key (see mandatectl audit key)", path);
    return rc;
}

mandate_rc mandate_audit_checkpoint_check(const mandate_audit_checkpoint *cp,
                                          const mandate_audit_keys *keys)
{
    EVP_PKEY *key = NULL;
    for (size_t i = 0; keys != NULL && i < keys->n && key == NULL; i++)
        if (strcmp(keys->ids[i], cp->key) == 0)
            key = keys->keys[i];
    if (key == NULL)
        return MANDATE_NOT_FOUND;
    char text[SEAL_TEXT_MAX];
    size_t len = signed_text(cp, text);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok =
        ctx != NULL && len > 0 && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) == 1 &&
        EVP_DigestVerify(ctx, cp->sig, sizeof(cp->sig), (const unsigned char *)text, len) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok ? MANDATE_OK : MANDATE_INVALID;
}
