/* DPoP proofs: dpop.h. */
#include "config.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "dpop.h"
#include "recency-list.h"
#include "text-encoding.h"

/* --- htu (RFC 9449 §4.3, RFC 3986 §6.2.2 and §6.2.3) ---------------------------- */

typedef struct uri_buf {
    char *p;
    size_t len, cap;
} uri_buf;

static bool put(uri_buf *b, char c)
{
    if (b->len + 1 >= b->cap)
        return false;
    b->p[b->len++] = c;
    b->p[b->len] = '\0';
    return true;
}

/* The percent-encoded triplet at *s: its octet when unreserved (the same
 * resource), else the triplet with its hex in upper case. */
static bool put_pct(uri_buf *b, const char **s)
{
    int octet = mandate_percent_decode_octet(*s, strnlen(*s, 3));
    if (octet < 0)
        return false;
    *s += 3;
    if (mandate_url_unreserved((unsigned char)octet))
        return put(b, (char)octet);
    char triplet[3];
    mandate_percent_octet(triplet, (unsigned char)octet);
    return put(b, triplet[0]) && put(b, triplet[1]) && put(b, triplet[2]);
}

/* scheme://host[:port]/path in normal form, the query and fragment left
 * out; false when it is not an http(s) URI or does not fit. */
static bool uri_normal(const char *uri, char *out, size_t cap)
{
    uri_buf b = {out, 0, cap};
    out[0] = '\0';
    if (uri == NULL || strnlen(uri, MANDATE_DPOP_URI_MAX + 1) > MANDATE_DPOP_URI_MAX)
        return false;
    const char *s = uri;
    const char *default_port, *scheme;
    if (strncasecmp(s, "https://", 8) == 0) {
        scheme = "https://", default_port = "443";
    } else if (strncasecmp(s, "http://", 7) == 0) {
        scheme = "http://", default_port = "80";
    } else {
        return false;
    }
    s += strlen(scheme);
    for (const char *c = scheme; *c; c++)
        put(&b, *c);
    /* the authority: no user information, a host, an optional port */
    const char *end = s + strcspn(s, "/?#");
    const char *colon = NULL;
    for (const char *c = s; c < end; c++) {
        /* a percent-encoded host is refused rather than decoded */
        if (*c == '@' || *c == '%' || (unsigned char)*c <= ' ' || *c == '\\')
            return false;
        if (*c == ']')
            colon = NULL;
        else if (*c == ':')
            colon = c;
    }
    const char *host_end = colon != NULL ? colon : end;
    if (host_end == s)
        return false;
    for (const char *c = s; c < host_end; c++)
        if (!put(&b, (char)tolower((unsigned char)*c)))
            return false;
    if (colon != NULL && colon + 1 < end) {
        size_t n = (size_t)(end - colon - 1);
        for (const char *c = colon + 1; c < end; c++)
            if (!isdigit((unsigned char)*c))
                return false;
        /* leading zeros are the same port */
        const char *digits = colon + 1;
        while (n > 1 && *digits == '0')
            digits++, n--;
        if (!(n == strlen(default_port) && strncmp(digits, default_port, n) == 0)) {
            if (!put(&b, ':'))
                return false;
            for (size_t i = 0; i < n; i++)
                if (!put(&b, digits[i]))
                    return false;
        }
    }
    /* the path, "/" when empty */
    s = end;
    if (*s != '/' && !put(&b, '/'))
        return false;
    while (*s != '\0' && *s != '?' && *s != '#') {
        if ((unsigned char)*s <= ' ')
            return false;
        if (*s == '%') {
            if (!put_pct(&b, &s))
                return false;
        } else if (!put(&b, *s++)) {
            return false;
        }
    }
    return true;
}

bool mandate_dpop_uri_equal(const char *a, const char *b)
{
    char na[MANDATE_DPOP_URI_MAX + 16], nb[MANDATE_DPOP_URI_MAX + 16];
    return uri_normal(a, na, sizeof(na)) && uri_normal(b, nb, sizeof(nb)) &&
           strcmp(na, nb) == 0;
}

/* --- the keys of proofs already checked ------------------------------------------ */

typedef struct key_entry {
    unsigned char digest[32]; /* SHA-256 of text: the bucket, and a quick compare */
    char *text;               /* the jwk, canonical (every member, sorted, compact) */
    EVP_PKEY *key;
    char jkt[MANDATE_JWK_THUMBPRINT_LEN + 1];
    mandate_recency_link recency;
    struct key_entry *next; /* the bucket's chain */
} key_entry;

struct mandate_dpop_keys {
    pthread_mutex_t lock;
    size_t capacity, count, buckets;
    key_entry **bucket;
    mandate_recency_list recency;
};

mandate_dpop_keys *mandate_dpop_keys_new(size_t capacity)
{
    mandate_dpop_keys *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->capacity = capacity > 0 ? capacity : 1;
    for (c->buckets = 16; c->buckets < c->capacity; c->buckets *= 2)
        ;
    c->bucket = calloc(c->buckets, sizeof(*c->bucket));
    if (c->bucket == NULL) {
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

static void key_entry_free(key_entry *e)
{
    EVP_PKEY_free(e->key);
    free(e->text);
    free(e);
}

void mandate_dpop_keys_free(mandate_dpop_keys **cp)
{
    mandate_dpop_keys *c = *cp;
    if (c == NULL)
        return;
    for (mandate_recency_link *l = c->recency.newest, *older; l != NULL; l = older) {
        older = l->older;
        key_entry_free(MANDATE_RECENCY_ENTRY(l, key_entry, recency));
    }
    pthread_mutex_destroy(&c->lock);
    free(c->bucket);
    free(c);
    *cp = NULL;
}

size_t mandate_dpop_keys_count(mandate_dpop_keys *c)
{
    pthread_mutex_lock(&c->lock);
    size_t n = c->count;
    pthread_mutex_unlock(&c->lock);
    return n;
}

static key_entry **bucket_of(mandate_dpop_keys *c, const unsigned char *digest)
{
    size_t h = 0;
    for (size_t i = 0; i < sizeof(h); i++)
        h = h << 8 | digest[i];
    return &c->bucket[h & (c->buckets - 1)];
}

/* The entry of text under c's lock, or NULL. */
static key_entry *keys_find(mandate_dpop_keys *c, const unsigned char *digest, const char *text)
{
    for (key_entry *e = *bucket_of(c, digest); e != NULL; e = e->next)
        if (memcmp(e->digest, digest, sizeof(e->digest)) == 0 && strcmp(e->text, text) == 0)
            return e;
    return NULL;
}

/* The key of text with its thumbprint (a reference the caller frees), or
 * NULL when c does not hold it. */
static EVP_PKEY *keys_get(mandate_dpop_keys *c, const unsigned char *digest, const char *text,
                          char jkt[MANDATE_JWK_THUMBPRINT_LEN + 1])
{
    EVP_PKEY *key = NULL;
    pthread_mutex_lock(&c->lock);
    key_entry *e = keys_find(c, digest, text);
    if (e != NULL && EVP_PKEY_up_ref(e->key) == 1) {
        key = e->key;
        memcpy(jkt, e->jkt, sizeof(e->jkt));
        mandate_recency_touch(&c->recency, &e->recency);
    }
    pthread_mutex_unlock(&c->lock);
    return key;
}

/* Remembers key (a reference of its own) and jkt for text; the least
 * recently used goes when c is full. Out of memory: not remembered. */
static void keys_put(mandate_dpop_keys *c, const unsigned char *digest, const char *text,
                     EVP_PKEY *key, const char *jkt)
{
    key_entry *e = calloc(1, sizeof(*e));
    if (e == NULL || (e->text = strdup(text)) == NULL || EVP_PKEY_up_ref(key) != 1) {
        if (e != NULL)
            free(e->text);
        free(e);
        return;
    }
    e->key = key;
    memcpy(e->digest, digest, sizeof(e->digest));
    snprintf(e->jkt, sizeof(e->jkt), "%s", jkt);
    key_entry *gone = NULL;
    pthread_mutex_lock(&c->lock);
    if (keys_find(c, digest, text) != NULL) {
        /* another thread put it meanwhile */
        gone = e;
    } else {
        if (c->count == c->capacity) {
            gone = MANDATE_RECENCY_ENTRY(c->recency.oldest, key_entry, recency);
            mandate_recency_unlink(&c->recency, &gone->recency);
            key_entry **link = bucket_of(c, gone->digest);
            while (*link != gone)
                link = &(*link)->next;
            *link = gone->next;
            c->count--;
        }
        key_entry **head = bucket_of(c, digest);
        e->next = *head;
        *head = e;
        mandate_recency_push(&c->recency, &e->recency);
        c->count++;
    }
    pthread_mutex_unlock(&c->lock);
    if (gone != NULL)
        key_entry_free(gone);
}

/* The canonical text of a jwk and its SHA-256: the cache's key (malloc'd;
 * NULL when it cannot be made, and the jwk is imported as without a cache). */
static char *jwk_text(const json_t *jwk, unsigned char digest[32])
{
    char *text = json_dumps(jwk, JSON_COMPACT | JSON_SORT_KEYS);
    unsigned int len = 0;
    if (text != NULL && (EVP_Digest(text, strlen(text), digest, &len, EVP_sha256(), NULL) != 1 ||
                         len != 32)) {
        free(text);
        return NULL;
    }
    return text;
}

bool mandate_dpop_keys_holds(mandate_dpop_keys *c, const json_t *jwk)
{
    unsigned char digest[32];
    char *text = jwk_text(jwk, digest);
    if (text == NULL)
        return false;
    pthread_mutex_lock(&c->lock);
    bool found = keys_find(c, digest, text) != NULL;
    pthread_mutex_unlock(&c->lock);
    free(text);
    return found;
}

/* --- the proof ---------------------------------------------------------------- */

bool mandate_dpop_ath(const char *token, size_t len, char out[MANDATE_JWK_THUMBPRINT_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (EVP_Digest(token, len, md, &md_len, EVP_sha256(), NULL) != 1 || md_len != 32)
        return false;
    mandate_b64url_encode(md, md_len, out);
    return true;
}

/* RFC 7517/7518 private members: a proof carrying one has leaked its key
 * and is refused rather than used. */
static bool has_private_member(const json_t *jwk)
{
    static const char *const members[] = {"d", "p", "q", "dp", "dq", "qi", "oth", "k", NULL};
    for (const char *const *m = members; *m != NULL; m++)
        if (json_object_get(jwk, *m) != NULL)
            return true;
    return false;
}

#define REFUSE(...) (rc = mandate_error_set(err, MANDATE_INVALID, __VA_ARGS__))

/* The claims of a proof whose signature holds. */
static mandate_rc check_claims(const json_t *claims, const mandate_dpop_expect *x,
                               mandate_dpop_proof *p, mandate_error *err)
{
    mandate_rc rc = MANDATE_OK;
    const char *htm = json_string_value(json_object_get(claims, "htm"));
    const char *htu = json_string_value(json_object_get(claims, "htu"));
    const json_t *iat = json_object_get(claims, "iat");
    const json_t *jti = json_object_get(claims, "jti");
    const json_t *ath = json_object_get(claims, "ath");
    if (htm == NULL)
        return REFUSE("the proof has no htm");
    if (x->method == NULL || strcmp(htm, x->method) != 0)
        return REFUSE("the proof's htm is not the request's method");
    if (htu == NULL)
        return REFUSE("the proof has no htu");
    if (!mandate_dpop_uri_equal(htu, x->uri) &&
        (x->uri_alias == NULL || !mandate_dpop_uri_equal(htu, x->uri_alias)))
        return REFUSE("the proof's htu is not the request's URI");
    if (!json_is_integer(iat))
        return REFUSE("the proof's iat is missing or not an integer");
    p->iat = (int64_t)json_integer_value(iat);
    if (p->iat < x->now - x->max_age)
        return REFUSE("the proof is too old (iat more than %lld s ago)", (long long)x->max_age);
    if (p->iat > x->now + x->max_future)
        return REFUSE("the proof's iat is in the future");
    if (!json_is_string(jti) || json_string_length(jti) == 0)
        return REFUSE("the proof has no jti");
    if (json_string_length(jti) > MANDATE_DPOP_JTI_MAX)
        return REFUSE("the proof's jti is longer than %d bytes", MANDATE_DPOP_JTI_MAX);
    memcpy(p->jti, json_string_value(jti), json_string_length(jti) + 1);
    if (strlen(p->jti) != json_string_length(jti))
        return REFUSE("the proof's jti holds a NUL");
    const json_t *nonce = json_object_get(claims, "nonce");
    if (nonce != NULL) {
        if (!json_is_string(nonce) || json_string_length(nonce) > MANDATE_DPOP_NONCE_MAX ||
            strlen(json_string_value(nonce)) != json_string_length(nonce))
            return REFUSE("the proof's nonce is not a string of at most %d bytes",
                          MANDATE_DPOP_NONCE_MAX);
        memcpy(p->nonce, json_string_value(nonce), json_string_length(nonce) + 1);
    }
    if (x->access_token == NULL)
        return ath != NULL ? REFUSE("the proof has an ath, and no token goes with it") : rc;
    char want[MANDATE_JWK_THUMBPRINT_LEN + 1];
    if (!json_is_string(ath))
        return REFUSE("the proof has no ath (the hash of the access token)");
    if (!mandate_dpop_ath(x->access_token, strlen(x->access_token), want))
        return mandate_error_set(err, MANDATE_ERROR, "no SHA-256");
    if (strcmp(json_string_value(ath), want) != 0)
        return REFUSE("the proof's ath is not the hash of the access token");
    return rc;
}

mandate_rc mandate_dpop_check(const char *proof, size_t len, const mandate_dpop_expect *x,
                              mandate_dpop_proof *p, mandate_error *err)
{
    mandate_rc rc = MANDATE_OK;
    memset(p, 0, sizeof(*p));
    if (proof == NULL || len == 0)
        return REFUSE("the DPoP proof is empty");
    if (len > MANDATE_DPOP_MAX_LEN)
        return REFUSE("the DPoP proof is longer than %d bytes", MANDATE_DPOP_MAX_LEN);
    mandate_jws jws;
    mandate_error perr = {0};
    rc = mandate_jws_parse(proof, len, &jws, &perr);
    if (rc != MANDATE_OK) {
        /* parse refuses none, HMAC and unknown algorithms itself */
        return REFUSE("the DPoP proof is not a JWS of an accepted algorithm: %s",
                      rc == MANDATE_NEXT ? "not three base64url parts" : perr.message);
    }
    EVP_PKEY *key = NULL;
    char *text = NULL;
    unsigned char digest[32];
    bool known = false;
    const json_t *jwk = json_object_get(jws.header, "jwk");
    if (jws.typ == NULL || strcmp(jws.typ, "dpop+jwt") != 0) {
        REFUSE("the proof's typ is not dpop+jwt");
    } else if (jws.alg == MANDATE_JWS_NONE || (x->algs & MANDATE_DPOP_ALG(jws.alg)) == 0) {
        REFUSE("the proof's alg is not one of the accepted");
    } else if (!json_is_object(jwk)) {
        REFUSE("the proof's header has no jwk");
    } else if (has_private_member(jwk)) {
        REFUSE("the proof's jwk holds a private key");
    } else if (x->keys != NULL && (text = jwk_text(jwk, digest)) != NULL &&
               (key = keys_get(x->keys, digest, text, p->jkt)) != NULL) {
        known = true;
    } else if ((key = mandate_jwk_to_key(jwk, &perr)) == NULL) {
        REFUSE("the proof's jwk is not a usable public key: %s", perr.message);
    }
    if (rc != MANDATE_OK) {
        /* refused above */
    } else if (mandate_jws_alg_for_key(key) != jws.alg) {
        /* also RSA under 2048 bits, for which alg_for_key says none */
        REFUSE("the proof's jwk is not a key for its alg");
    } else if (mandate_jws_verify_parsed(&jws, proof, len, key, &perr) != MANDATE_OK) {
        REFUSE("the proof's signature does not verify with its jwk");
    } else if (!known && !mandate_jwk_thumbprint(key, p->jkt)) {
        rc = mandate_error_set(err, MANDATE_ERROR, "the proof key's thumbprint");
    } else {
        /* a key that signed is remembered, whatever the claims say */
        if (!known && text != NULL)
            keys_put(x->keys, digest, text, key, p->jkt);
        p->alg = jws.alg;
        rc = check_claims(jws.claims, x, p, err);
    }
    free(text);
    EVP_PKEY_free(key);
    mandate_jws_clear(&jws);
    if (rc != MANDATE_OK)
        p->jkt[0] = '\0';
    return rc;
}

/* --- making a proof ------------------------------------------------------------ */

char *mandate_dpop_proof_make(const EVP_PKEY *key, const char *method, const char *uri,
                              const char *access_token, const char *nonce, int64_t iat)
{
    unsigned char raw[16];
    char jti[32], ath[MANDATE_JWK_THUMBPRINT_LEN + 1];
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return NULL;
    mandate_b64url_encode(raw, sizeof(raw), jti);
    json_t *jwk = mandate_jwk_from_key(key, NULL);
    if (jwk == NULL)
        return NULL;
    /* the key alone: RFC 9449 §4.2 wants no more in the proof's header */
    json_object_del(jwk, "use");
    json_object_del(jwk, "alg");
    json_object_del(jwk, "kid");
    json_t *header = json_pack("{s:s,s:s,s:o}", "typ", "dpop+jwt", "alg",
                               mandate_jws_alg_name(mandate_jws_alg_for_key(key)), "jwk", jwk);
    json_t *claims = json_pack("{s:s,s:s,s:s,s:I}", "jti", jti, "htm", method, "htu", uri,
                               "iat", (json_int_t)iat);
    char *proof = NULL;
    if (nonce != NULL && json_object_set_new(claims, "nonce", json_string(nonce)) != 0)
        json_decref(claims), claims = NULL;
    if (header != NULL && claims != NULL &&
        (access_token == NULL || (mandate_dpop_ath(access_token, strlen(access_token), ath) &&
                                  json_object_set_new(claims, "ath", json_string(ath)) == 0)))
        proof = mandate_jws_sign_with_header(key, header, claims);
    json_decref(header);
    json_decref(claims);
    return proof;
}
