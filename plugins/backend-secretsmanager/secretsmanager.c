/* The secretsmanager backend: clients whose secrets live in AWS Secrets
 * Manager, one secret per client, named from a template such as
 * "mandate/clients/${client_id}" and holding the JSON the AgentCore workshop
 * stores: {"client_id": "...", "client_secret": "..."}.
 *
 * Authentication fetches the AWSCURRENT version of the client's secret, and
 * the AWSPREVIOUS one while it exists, so that a rotation (PutSecretValue)
 * lets agents holding the old secret keep working until the next rotation;
 * an older secret is refused. The presented secret is hashed with the host's
 * keyed hash and compared in constant time with the keyed hashes of those
 * versions: the cache holds hashes, never a secret.
 *
 * The cache (bounded, shared by the worker threads under one mutex, never
 * held across a network call) keeps what Secrets Manager answered for
 * cache_ttl seconds, and an unknown or refused client for negative_ttl. A
 * presented secret that matches neither cached version triggers one re-fetch
 * at most every recheck_interval seconds, so a rotation done elsewhere takes
 * effect at once for the new secret. When Secrets Manager is unreachable,
 * throttles or refuses our own AWS credentials, a cached client keeps working
 * for stale_ttl seconds past its cache_ttl, and any other client gets
 * MANDATE_TEMPFAIL (503 temporarily_unavailable), never a refusal.
 * AccessDenied, a missing secret and a secret that is not that JSON are
 * refused (MANDATE_DENIED) and logged with the secret's name, never its value.
 *
 * Every call is signed by libcurl (CURLOPT_AWS_SIGV4), with the credentials
 * of the config or of the standard AWS_* environment variables; a session
 * token is sent (and signed) as X-Amz-Security-Token. Neither a secret nor a
 * signed header is ever logged: libcurl's verbose output stays off.
 *
 * provision() makes a 256-bit secret with the host's random bytes and stores
 * it with CreateSecret (KmsKeyId from the client's attributes or the config)
 * or PutSecretValue (a new AWSCURRENT; the old one becomes AWSPREVIOUS). */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include <mandate/backend.h>

#include "client-secret.h"
#include "jose.h"
#include "recency-list.h"
#include "wiped-buffer.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

/* The keyed hash is HMAC-SHA256. */
#define HASH_LEN 32
/* Generated secrets: 256 bits, 43 base64url characters. */
#define SECRET_BYTES 32
#define SECRET_TEXT_MAX 64
/* A presented or stored secret longer than this is refused. */
#define SECRET_LEN_MAX 1024
/* Secrets Manager: secret names are at most 512 characters; a secret value
 * at most 64 KiB, so a response larger than this is not one of ours. */
#define NAME_LEN_MAX 512
#define RESPONSE_MAX (256 * 1024)
/* Idle curl handles kept for reuse (each keeps its connection alive). */
#define HANDLE_POOL 8
/* While Secrets Manager fails, a stale entry is re-fetched at most this often. */
#define STALE_RETRY 5
/* CURLOPT_AWS_SIGV4 appeared in libcurl 7.75.0. */
#define CURL_SIGV4_VERSION 0x074b00
#define TEMPLATE_VAR "${client_id}"
#define ERROR_TEXT_MAX 160

typedef enum sm_target { SM_GET = 0, SM_CREATE, SM_PUT, SM_TARGETS } sm_target;

static const char *const target_names[SM_TARGETS] = {"GetSecretValue", "CreateSecret",
                                                     "PutSecretValue"};

/* One client in the cache. A negative entry (known = false) says that the
 * client has no usable secret until expires_at. */
typedef struct sm_entry {
    char *client_id;
    struct sm_entry *chain; /* next in the hash bucket */
    mandate_recency_link recency;
    bool known;
    bool has_previous;
    unsigned char current[HASH_LEN]; /* keyed hashes, never a secret */
    unsigned char previous[HASH_LEN];
    int64_t fetched_at;   /* when Secrets Manager last answered */
    int64_t recheck_at;   /* a mismatch re-fetches from then on */
    int64_t failed_until; /* Secrets Manager failed: no call before */
} sm_entry;

typedef enum sm_state { CACHE_MISS, CACHE_FRESH, CACHE_STALE, CACHE_NEGATIVE } sm_state;

typedef struct sm_inst {
    /* conf */
    char *region;
    char *endpoint;
    char *access_key_id;
    char *secret_access_key;
    char *session_token;
    char *secret_name;
    int64_t cache_ttl;
    int64_t negative_ttl;
    int64_t stale_ttl;
    int64_t recheck_interval;
    int64_t cache_size;
    int64_t timeout_ms;
    char *kms_key_id;
    /* set by instantiate */
    const mandate_host *host;
    bool curl_ready;
    char *url;
    char *sigv4; /* "aws:amz:REGION:secretsmanager" */
    char *akid;  /* owned copies of the credentials, wiped on destroy */
    char *secret;
    char *token; /* NULL: no session token */
    struct curl_slist *headers[SM_TARGETS];
    pthread_mutex_t handles_lock;
    CURL *handles[HANDLE_POOL];
    size_t handle_count;
    pthread_mutex_t cache_lock;
    sm_entry **buckets;
    size_t bucket_count; /* a power of two */
    size_t entry_count;
    mandate_recency_list recency;
    uint64_t hash_seed;
    bool locks_ready;
} sm_inst;

/* --- small helpers ----------------------------------------------------------- */

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p != NULL)
        memcpy(p, s, n);
    return p;
}

static void free_secret(char **s)
{
    if (*s != NULL) {
        OPENSSL_cleanse(*s, strlen(*s));
        free(*s);
        *s = NULL;
    }
}

/* Wipes the text of a jansson string before its owner is freed: jansson
 * frees without wiping, and these strings hold secrets. */
static void wipe_json_string(json_t *v)
{
    if (json_is_string(v))
        OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
}

/* Characters Secrets Manager allows in a secret name. */
static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("/_+=.@-", c) != NULL;
}

/* A header value may not hold a line break or a control character. */
static bool header_safe(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

/* The name of a client's secret, from the template, into buf (NAME_LEN_MAX + 1
 * bytes). false: the client id cannot be part of a secret name. */
static bool secret_name(const sm_inst *inst, const char *client_id, char *buf, mandate_rc rc,
                        mandate_error *err)
{
    for (const char *p = client_id; *p != '\0'; p++)
        if (!name_char(*p)) {
            mandate_error_set(err, rc,
                              "secretsmanager: client id \"%.128s\" holds '%c', which a "
                              "Secrets Manager secret name cannot hold",
                              client_id, *p);
            return false;
        }
    size_t used = 0, var = strlen(TEMPLATE_VAR), id_len = strlen(client_id);
    for (const char *t = inst->secret_name; *t != '\0';) {
        const char *part = t;
        size_t n;
        if (strncmp(t, TEMPLATE_VAR, var) == 0) {
            part = client_id;
            n = id_len;
            t += var;
        } else {
            n = 1;
            t++;
        }
        if (used + n > NAME_LEN_MAX) {
            mandate_error_set(err, rc,
                              "secretsmanager: the secret name for client \"%.128s\" would be "
                              "longer than %d characters",
                              client_id, NAME_LEN_MAX);
            return false;
        }
        memcpy(buf + used, part, n);
        used += n;
    }
    buf[used] = '\0';
    return true;
}

/* --- the cache ------------------------------------------------------------------ */

static uint64_t id_hash(const sm_inst *inst, const char *s)
{
    uint64_t h = 0xcbf29ce484222325u ^ inst->hash_seed; /* FNV-1a, seeded */
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3u;
    }
    return h ^ (h >> 29);
}

static sm_entry **bucket_of(sm_inst *inst, const char *client_id)
{
    return &inst->buckets[id_hash(inst, client_id) & (inst->bucket_count - 1)];
}

static sm_entry *oldest_entry(sm_inst *inst)
{
    mandate_recency_link *l = inst->recency.oldest;
    return l != NULL ? MANDATE_RECENCY_ENTRY(l, sm_entry, recency) : NULL;
}

static void entry_free(sm_entry *e)
{
    OPENSSL_cleanse(e->current, sizeof(e->current));
    OPENSSL_cleanse(e->previous, sizeof(e->previous));
    free(e->client_id);
    free(e);
}

/* Removes e from its bucket and the recency list, and frees it. Locked. */
static void entry_remove(sm_inst *inst, sm_entry *e)
{
    for (sm_entry **p = bucket_of(inst, e->client_id); *p != NULL; p = &(*p)->chain)
        if (*p == e) {
            *p = e->chain;
            break;
        }
    mandate_recency_unlink(&inst->recency, &e->recency);
    inst->entry_count--;
    entry_free(e);
}

static sm_entry *entry_find(sm_inst *inst, const char *client_id)
{
    for (sm_entry *e = *bucket_of(inst, client_id); e != NULL; e = e->chain)
        if (strcmp(e->client_id, client_id) == 0)
            return e;
    return NULL;
}

/* What the cache holds for client_id, copied into *copy_r (its pointers
 * cleared). An entry too old to be used even stale is dropped. */
static sm_state cache_get(sm_inst *inst, const char *client_id, int64_t now, sm_entry *copy_r)
{
    sm_state state = CACHE_MISS;
    memset(copy_r, 0, sizeof(*copy_r));
    pthread_mutex_lock(&inst->cache_lock);
    sm_entry *e = entry_find(inst, client_id);
    if (e != NULL) {
        int64_t age = now - e->fetched_at;
        if (!e->known)
            state = age < inst->negative_ttl ? CACHE_NEGATIVE : CACHE_MISS;
        else if (age < inst->cache_ttl)
            state = CACHE_FRESH;
        else if (age < inst->cache_ttl + inst->stale_ttl)
            state = CACHE_STALE;
        if (state == CACHE_MISS) {
            entry_remove(inst, e);
        } else {
            *copy_r = *e;
            copy_r->client_id = NULL;
            copy_r->chain = NULL;
            copy_r->recency = (mandate_recency_link){NULL, NULL};
            mandate_recency_touch(&inst->recency, &e->recency);
        }
    }
    pthread_mutex_unlock(&inst->cache_lock);
    return state;
}

/* Stores what was learnt of client_id (the fields of *data but its
 * pointers), evicting the least recently used entry when full. Out of
 * memory only means not caching. */
static void cache_put(sm_inst *inst, const char *client_id, const sm_entry *data)
{
    if (inst->cache_size <= 0)
        return;
    pthread_mutex_lock(&inst->cache_lock);
    sm_entry *e = entry_find(inst, client_id);
    if (e == NULL) {
        for (sm_entry *old; inst->entry_count >= (size_t)inst->cache_size &&
                            (old = oldest_entry(inst)) != NULL;)
            entry_remove(inst, old);
        e = calloc(1, sizeof(*e));
        if (e != NULL && (e->client_id = xstrdup(client_id)) == NULL) {
            free(e);
            e = NULL;
        }
        if (e == NULL) {
            pthread_mutex_unlock(&inst->cache_lock);
            return;
        }
        sm_entry **bucket = bucket_of(inst, client_id);
        e->chain = *bucket;
        *bucket = e;
        inst->entry_count++;
    } else {
        mandate_recency_unlink(&inst->recency, &e->recency);
    }
    e->known = data->known;
    e->has_previous = data->has_previous;
    memcpy(e->current, data->current, HASH_LEN);
    memcpy(e->previous, data->previous, HASH_LEN);
    e->fetched_at = data->fetched_at;
    e->recheck_at = data->recheck_at;
    e->failed_until = data->failed_until;
    mandate_recency_push(&inst->recency, &e->recency);
    pthread_mutex_unlock(&inst->cache_lock);
}

static void cache_set_failed(sm_inst *inst, const char *client_id, int64_t until)
{
    pthread_mutex_lock(&inst->cache_lock);
    sm_entry *e = entry_find(inst, client_id);
    if (e != NULL && e->failed_until < until)
        e->failed_until = until;
    pthread_mutex_unlock(&inst->cache_lock);
}

static void cache_drop(sm_inst *inst, const char *client_id)
{
    pthread_mutex_lock(&inst->cache_lock);
    sm_entry *e = entry_find(inst, client_id);
    if (e != NULL)
        entry_remove(inst, e);
    pthread_mutex_unlock(&inst->cache_lock);
}

static void cache_clear(sm_inst *inst)
{
    for (sm_entry *old; (old = oldest_entry(inst)) != NULL;)
        entry_remove(inst, old);
}

/* --- calls to Secrets Manager --------------------------------------------------- */

/* How a call ended. */
typedef enum sm_outcome {
    SM_OK,          /* 200 */
    SM_NOT_FOUND,   /* ResourceNotFoundException */
    SM_REFUSED,     /* AccessDenied, DecryptionFailure */
    SM_EXISTS,      /* ResourceExistsException */
    SM_INVALID,     /* InvalidRequest/InvalidParameter and the like */
    SM_CREDENTIALS, /* our own credentials or signature refused */
    SM_TRANSIENT,   /* unreachable, timeout, throttling, 5xx */
    SM_OTHER        /* any other answer */
} sm_outcome;

typedef struct sm_response {
    long status;
    char *body; /* NUL-terminated; may hold a secret: wiped when freed */
    size_t len, cap;
    bool too_big;
    char error_type[96]; /* from x-amzn-ErrorType, or the body's __type */
    char message[ERROR_TEXT_MAX];
    char transport[CURL_ERROR_SIZE]; /* set when no answer came */
} sm_response;

static void response_clear(sm_response *r)
{
    if (r->body != NULL) {
        OPENSSL_cleanse(r->body, r->cap);
        free(r->body);
    }
    memset(r, 0, sizeof(*r));
}

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
    sm_response *r = ctx;
    size_t len = size * n;
    if (r->len + len + 1 > RESPONSE_MAX) {
        r->too_big = true;
        return 0;
    }
    /* by copying: the old buffer may hold part of a secret */
    if (!mandate_wiped_append(&r->body, &r->len, &r->cap, data, len))
        return 0;
    return len;
}

/* Copies s (n bytes) into out (cap bytes) keeping printable ASCII only. */
static void copy_printable(char *out, size_t cap, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++)
        out[o++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    out[o] = '\0';
}

static size_t on_header(char *data, size_t size, size_t n, void *ctx)
{
    sm_response *r = ctx;
    size_t len = size * n;
    static const char name[] = "x-amzn-errortype:";
    if (len > sizeof(name) - 1 && strncasecmp(data, name, sizeof(name) - 1) == 0) {
        const char *v = data + sizeof(name) - 1;
        size_t vlen = len - (sizeof(name) - 1);
        while (vlen > 0 && (*v == ' ' || *v == '\t'))
            v++, vlen--;
        size_t end = 0;
        while (end < vlen && v[end] != ':' && v[end] != '\r' && v[end] != '\n')
            end++; /* "Type:http://internal.amazon.com/..." */
        copy_printable(r->error_type, sizeof(r->error_type), v, end);
    }
    return len;
}

/* The error type and message of a JSON error answer, when the header did not
 * name the type. */
static void parse_error_body(sm_response *r)
{
    if (r->body == NULL)
        return;
    json_t *o = json_loadb(r->body, r->len, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return;
    }
    const char *type = json_string_value(json_object_get(o, "__type"));
    if (r->error_type[0] == '\0' && type != NULL) {
        const char *hash = strrchr(type, '#'); /* "com.amazonaws...#Type" */
        type = hash ? hash + 1 : type;
        copy_printable(r->error_type, sizeof(r->error_type), type, strlen(type));
    }
    const char *msg = json_string_value(json_object_get(o, "message"));
    if (msg == NULL)
        msg = json_string_value(json_object_get(o, "Message"));
    if (msg != NULL)
        copy_printable(r->message, sizeof(r->message), msg, strlen(msg));
    json_decref(o);
}

static bool type_is(const sm_response *r, const char *const *types)
{
    for (; *types != NULL; types++)
        if (strcmp(r->error_type, *types) == 0)
            return true;
    return false;
}

static sm_outcome classify(const sm_response *r)
{
    static const char *const not_found[] = {"ResourceNotFoundException", NULL};
    static const char *const refused[] = {"AccessDeniedException", "AccessDenied",
                                          "DecryptionFailure", NULL};
    static const char *const exists[] = {"ResourceExistsException", NULL};
    static const char *const invalid[] = {"InvalidRequestException",
                                          "InvalidParameterException",
                                          "LimitExceededException",
                                          "EncryptionFailure",
                                          "MalformedPolicyDocumentException",
                                          "PreconditionNotMetException",
                                          "ValidationException",
                                          NULL};
    static const char *const credentials[] = {"UnrecognizedClientException",
                                              "InvalidSignatureException",
                                              "IncompleteSignature",
                                              "IncompleteSignatureException",
                                              "SignatureDoesNotMatch",
                                              "InvalidClientTokenId",
                                              "ExpiredTokenException",
                                              "ExpiredToken",
                                              "MissingAuthenticationToken",
                                              "MissingAuthenticationTokenException",
                                              "RequestExpired",
                                              "InvalidAccessKeyId",
                                              "InvalidSecurityToken",
                                              NULL};
    static const char *const transient[] = {"ThrottlingException",
                                            "Throttling",
                                            "RequestLimitExceeded",
                                            "TooManyRequestsException",
                                            "InternalServiceError",
                                            "InternalServiceErrorException",
                                            "InternalFailure",
                                            "ServiceUnavailable",
                                            "ServiceUnavailableException",
                                            NULL};
    if (r->transport[0] != '\0')
        return SM_TRANSIENT;
    if (r->status == 200)
        return r->too_big ? SM_OTHER : SM_OK;
    if (type_is(r, not_found))
        return SM_NOT_FOUND;
    if (type_is(r, refused))
        return SM_REFUSED;
    if (type_is(r, exists))
        return SM_EXISTS;
    if (type_is(r, invalid))
        return SM_INVALID;
    if (type_is(r, credentials))
        return SM_CREDENTIALS;
    if (type_is(r, transient) || r->status >= 500 || r->status == 429)
        return SM_TRANSIENT;
    return SM_OTHER;
}

/* "ThrottlingException (Rate exceeded)", "HTTP 418", or the transport error. */
static const char *describe(const sm_response *r, char *buf, size_t cap)
{
    if (r->transport[0] != '\0')
        snprintf(buf, cap, "no answer: %s", r->transport);
    else if (r->too_big)
        snprintf(buf, cap, "an answer over %d bytes", RESPONSE_MAX);
    else if (r->error_type[0] != '\0')
        snprintf(buf, cap, "%s%s%s%s (HTTP %ld)", r->error_type, r->message[0] ? " (" : "",
                 r->message, r->message[0] ? ")" : "", r->status);
    else
        snprintf(buf, cap, "HTTP %ld", r->status);
    return buf;
}

static CURL *handle_get(sm_inst *inst)
{
    CURL *h = NULL;
    pthread_mutex_lock(&inst->handles_lock);
    if (inst->handle_count > 0)
        h = inst->handles[--inst->handle_count];
    pthread_mutex_unlock(&inst->handles_lock);
    if (h == NULL)
        h = curl_easy_init();
    else
        curl_easy_reset(h); /* options cleared, the live connection kept */
    return h;
}

static void handle_put(sm_inst *inst, CURL *h)
{
    pthread_mutex_lock(&inst->handles_lock);
    if (inst->handle_count < HANDLE_POOL) {
        inst->handles[inst->handle_count++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&inst->handles_lock);
    if (h != NULL)
        curl_easy_cleanup(h);
}

/* POSTs body to the endpoint as target, signed by libcurl. MANDATE_OK when
 * the call was made, whatever the answer (see classify()); MANDATE_ERROR
 * when it could not be set up. */
static mandate_rc sm_call(sm_inst *inst, sm_target target, const char *body, sm_response *r,
                          mandate_error *err)
{
    memset(r, 0, sizeof(*r));
    CURL *h = handle_get(inst);
    if (h == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "secretsmanager: curl_easy_init failed");
    char errbuf[CURL_ERROR_SIZE] = "";
    CURLcode cc = CURLE_OK;
#define SET(opt, val)                                                                          \
    if (cc == CURLE_OK)                                                                        \
    cc = curl_easy_setopt(h, opt, val)
    SET(CURLOPT_URL, inst->url);
#if LIBCURL_VERSION_NUM >= 0x075500
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
    SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_TIMEOUT_MS, (long)inst->timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)inst->timeout_ms);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_USERAGENT, "mandate/" PACKAGE_VERSION " backend-secretsmanager");
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_POSTFIELDS, body);
    SET(CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    SET(CURLOPT_HTTPHEADER, inst->headers[target]);
#if LIBCURL_VERSION_NUM >= CURL_SIGV4_VERSION
    SET(CURLOPT_AWS_SIGV4, inst->sigv4);
#endif
    SET(CURLOPT_USERNAME, inst->akid);
    SET(CURLOPT_PASSWORD, inst->secret);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, r);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, r);
    SET(CURLOPT_ERRORBUFFER, errbuf);
#undef SET
    if (cc != CURLE_OK) {
        curl_easy_cleanup(h);
        return mandate_error_set(err, MANDATE_ERROR, "secretsmanager: curl option: %s",
                                 curl_easy_strerror(cc));
    }
    cc = curl_easy_perform(h);
    if (cc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
        if (r->status != 200)
            parse_error_body(r);
    } else if (r->too_big) {
        cc = CURLE_OK; /* classify() says what it is */
    } else {
        const char *why = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(cc);
        copy_printable(r->transport, sizeof(r->transport), why, strlen(why));
    }
    /* the handle must not keep pointers to this call's buffers */
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
    handle_put(inst, h);
    return MANDATE_OK;
}

/* --- fetching a client's secret --------------------------------------------------- */

typedef enum fetch_result {
    FETCH_OK,       /* entry filled */
    FETCH_ABSENT,   /* no such secret, or no AWSCURRENT */
    FETCH_REFUSED,  /* AccessDenied, malformed, invalid: logged */
    FETCH_TEMPFAIL, /* unreachable, throttled, our credentials refused: logged */
    FETCH_ERROR
} fetch_result;

/* The keyed hash of client_secret in a GetSecretValue answer, checking that
 * the secret is the workshop's JSON for this client. FETCH_REFUSED for a
 * malformed secret, FETCH_TEMPFAIL for an answer that is not Secrets
 * Manager's (a proxy's page): both logged, with the name only. */
static fetch_result parse_secret(sm_inst *inst, const char *name, const char *stage,
                                 const char *client_id, const sm_response *r,
                                 unsigned char out[HASH_LEN], mandate_error *err)
{
    const mandate_host *host = inst->host;
    /* never log a jansson error here: its text quotes the input */
    json_t *answer = json_loadb(r->body ? r->body : "", r->len, JSON_REJECT_DUPLICATES, NULL);
    json_t *string = json_object_get(answer, "SecretString");
    json_t *secret = NULL;
    const char *why = NULL;
    fetch_result result = FETCH_REFUSED;
    if (!json_is_object(answer) ||
        (string == NULL && json_object_get(answer, "SecretBinary") == NULL)) {
        mandate_log_error(host,
                          "secretsmanager: GetSecretValue for secret \"%s\" (%s): the answer "
                          "is not Secrets Manager's (no JSON with SecretString); is endpoint "
                          "right?",
                          name, stage);
        mandate_error_set(err, MANDATE_TEMPFAIL,
                          "secretsmanager: GetSecretValue for secret \"%s\": an answer that is "
                          "not Secrets Manager's",
                          name);
        json_decref(answer);
        return FETCH_TEMPFAIL;
    }
    if (string == NULL)
        why = "it is a binary secret, not a SecretString";
    else if (!json_is_string(string))
        why = "SecretString is not a string";
    else if ((secret = json_loadb(json_string_value(string), json_string_length(string),
                                  JSON_REJECT_DUPLICATES, NULL)) == NULL ||
             !json_is_object(secret))
        why = "the secret is not JSON {\"client_id\": ..., \"client_secret\": ...}";
    if (why == NULL) {
        json_t *id = json_object_get(secret, "client_id");
        json_t *value = json_object_get(secret, "client_secret");
        size_t len = json_string_length(value);
        if (!json_is_string(id) || strlen(json_string_value(id)) != json_string_length(id))
            why = "the secret has no string \"client_id\"";
        else if (strcmp(json_string_value(id), client_id) != 0)
            why = "the secret's \"client_id\" is another client's";
        else if (!json_is_string(value) || len == 0)
            why = "the secret has no non-empty string \"client_secret\"";
        else if (len > SECRET_LEN_MAX)
            why = "the secret's \"client_secret\" is too long";
        else if (host->keyed_hash(host, json_string_value(value), len, out, err) == MANDATE_OK)
            result = FETCH_OK;
        else
            result = FETCH_ERROR; /* err says why */
        wipe_json_string(value);
    }
    if (why != NULL) {
        mandate_log_error(host,
                          "secretsmanager: secret \"%s\" (%s) is malformed: %s; refused "
                          "(expected SecretString {\"client_id\": \"%s\", \"client_secret\": "
                          "...})",
                          name, stage, why, client_id);
        mandate_error_set(err, MANDATE_DENIED,
                          "secretsmanager: secret \"%s\" (%s) is malformed (see the log)", name,
                          stage);
    }
    wipe_json_string(string);
    json_decref(secret);
    json_decref(answer);
    return result;
}

/* One GetSecretValue for a version stage. */
static fetch_result fetch_stage(sm_inst *inst, const char *name, const char *stage,
                                const char *client_id, unsigned char out[HASH_LEN],
                                mandate_error *err)
{
    const mandate_host *host = inst->host;
    json_t *req = json_pack("{s:s,s:s}", "SecretId", name, "VersionStage", stage);
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (body == NULL) {
        mandate_error_set(err, MANDATE_ERROR, "secretsmanager: out of memory");
        return FETCH_ERROR;
    }
    sm_response r;
    mandate_rc rc = sm_call(inst, SM_GET, body, &r, err);
    free(body);
    if (rc != MANDATE_OK)
        return FETCH_ERROR;
    char what[ERROR_TEXT_MAX + 128];
    fetch_result result;
    switch (classify(&r)) {
    case SM_OK: result = parse_secret(inst, name, stage, client_id, &r, out, err); break;
    case SM_NOT_FOUND:
        mandate_error_set(err, MANDATE_DENIED,
                          "secretsmanager: no secret \"%s\" with a version %s", name, stage);
        result = FETCH_ABSENT;
        break;
    case SM_REFUSED:
    case SM_INVALID:
        mandate_log_error(host,
                          "secretsmanager: GetSecretValue for secret \"%s\" (%s) refused: %s",
                          name, stage, describe(&r, what, sizeof(what)));
        mandate_error_set(err, MANDATE_DENIED,
                          "secretsmanager: Secrets Manager refused to read secret \"%s\" (%s): "
                          "%s",
                          name, stage, r.error_type[0] ? r.error_type : "refused");
        result = FETCH_REFUSED;
        break;
    case SM_CREDENTIALS:
        mandate_log_error(host,
                          "secretsmanager: Secrets Manager refused this instance's AWS "
                          "credentials or signature on GetSecretValue for secret \"%s\": %s; "
                          "check access_key_id, secret_access_key and session_token (or the "
                          "AWS_* environment variables), region and endpoint",
                          name, describe(&r, what, sizeof(what)));
        mandate_error_set(err, MANDATE_TEMPFAIL,
                          "secretsmanager: our AWS credentials were refused (%s) reading "
                          "secret \"%s\"",
                          r.error_type[0] ? r.error_type : "refused", name);
        result = FETCH_TEMPFAIL;
        break;
    case SM_TRANSIENT:
        mandate_log_warning(host, "secretsmanager: GetSecretValue for secret \"%s\" (%s): %s",
                            name, stage, describe(&r, what, sizeof(what)));
        mandate_error_set(err, MANDATE_TEMPFAIL,
                          "secretsmanager: Secrets Manager unavailable reading secret \"%s\": "
                          "%s",
                          name, describe(&r, what, sizeof(what)));
        result = FETCH_TEMPFAIL;
        break;
    default:
        mandate_error_set(
            err, MANDATE_ERROR,
            "secretsmanager: GetSecretValue for secret \"%s\" (%s): unexpected %s", name, stage,
            describe(&r, what, sizeof(what)));
        result = FETCH_ERROR;
        break;
    }
    response_clear(&r);
    return result;
}

/* AWSCURRENT, then AWSPREVIOUS, into *e (fetched_at set). */
static fetch_result fetch_secret(sm_inst *inst, const char *name, const char *client_id,
                                 int64_t now, sm_entry *e, mandate_error *err)
{
    memset(e, 0, sizeof(*e));
    e->fetched_at = now;
    fetch_result result = fetch_stage(inst, name, "AWSCURRENT", client_id, e->current, err);
    if (result != FETCH_OK)
        return result;
    e->known = true;
    mandate_error perr = {0};
    switch (fetch_stage(inst, name, "AWSPREVIOUS", client_id, e->previous, &perr)) {
    case FETCH_OK: e->has_previous = true; break;
    case FETCH_ABSENT: break; /* no rotation yet */
    case FETCH_REFUSED:
        /* logged; the current version alone still serves */
        break;
    case FETCH_TEMPFAIL:
    case FETCH_ERROR:
        if (err != NULL)
            *err = perr;
        return perr.rc == MANDATE_TEMPFAIL ? FETCH_TEMPFAIL : FETCH_ERROR;
    }
    return FETCH_OK;
}

/* --- backend ops ------------------------------------------------------------------ */

/* Which cached version the hash matches: 1 current, 2 previous, 0 none. */
static int match(const sm_entry *e, const unsigned char hash[HASH_LEN])
{
    int m = CRYPTO_memcmp(hash, e->current, HASH_LEN) == 0 ? 1 : 0;
    /* both compared always, so timing says nothing of which one matched */
    int p = CRYPTO_memcmp(hash, e->previous, HASH_LEN) == 0 && e->has_previous ? 2 : 0;
    return m ? m : p;
}

static mandate_rc accepted(sm_inst *inst, const char *client_id, const char *name, int which,
                           bool stale, int64_t age)
{
    if (which == 2)
        mandate_log_info(inst->host,
                         "secretsmanager: client \"%s\" used the AWSPREVIOUS version of secret "
                         "\"%s\"",
                         client_id, name);
    if (stale)
        mandate_log_warning(
            inst->host,
            "secretsmanager: client \"%s\" accepted from a copy of secret \"%s\" "
            "cached %" PRId64 " s ago: Secrets Manager cannot be read now",
            client_id, name, age);
    return MANDATE_OK;
}

static mandate_rc check_secret(sm_inst *inst, const mandate_credential *cred,
                               const mandate_client *client, mandate_error *err)
{
    const mandate_host *host = inst->host;
    const char *id = client->client_id;
    char name[NAME_LEN_MAX + 1];
    if (!secret_name(inst, id, name, MANDATE_DENIED, err))
        return MANDATE_DENIED;

    unsigned char hash[HASH_LEN];
    mandate_rc rc = mandate_client_secret_hash(host, "secretsmanager", cred, hash, err);
    if (rc != MANDATE_OK)
        return rc;
    int64_t now = host->now(host);
    sm_entry cached, fresh = {0};
    sm_state state = cache_get(inst, id, now, &cached);
    int which;
    if (state == CACHE_NEGATIVE) {
        rc = mandate_error_set(err, MANDATE_DENIED,
                               "secretsmanager: secret \"%s\" is missing or unusable (cached "
                               "for up to %" PRId64 " s)",
                               name, inst->negative_ttl);
        goto out;
    }
    if (state == CACHE_FRESH && (which = match(&cached, hash)) != 0) {
        rc = accepted(inst, id, name, which, false, 0);
        goto out;
    }
    if (state == CACHE_FRESH && now < cached.recheck_at) {
        rc = mandate_error_set(err, MANDATE_DENIED, "secretsmanager: secret does not match");
        goto out;
    }
    if ((state == CACHE_FRESH || state == CACHE_STALE) && now < cached.failed_until) {
        /* Secrets Manager failed a moment ago: only the cached copy answers */
        if (state == CACHE_STALE && (which = match(&cached, hash)) != 0)
            rc = accepted(inst, id, name, which, true, now - cached.fetched_at);
        else
            rc = mandate_error_set(err, MANDATE_TEMPFAIL,
                                   "secretsmanager: secret matches no cached version of \"%s\" "
                                   "and Secrets Manager cannot be read now",
                                   name);
        goto out;
    }

    switch (fetch_secret(inst, name, id, now, &fresh, err)) {
    case FETCH_OK:
        fresh.recheck_at = now + inst->recheck_interval;
        cache_put(inst, id, &fresh);
        if ((which = match(&fresh, hash)) != 0)
            rc = accepted(inst, id, name, which, false, 0);
        else
            rc =
                mandate_error_set(err, MANDATE_DENIED, "secretsmanager: secret does not match");
        break;
    case FETCH_ABSENT:
    case FETCH_REFUSED:
        memset(&fresh, 0, sizeof(fresh));
        fresh.fetched_at = now;
        cache_put(inst, id, &fresh);
        rc = MANDATE_DENIED; /* err says why */
        break;
    case FETCH_TEMPFAIL:
        if (state == CACHE_FRESH || state == CACHE_STALE) {
            cache_set_failed(inst, id, now + STALE_RETRY);
            if (state == CACHE_STALE && (which = match(&cached, hash)) != 0) {
                rc = accepted(inst, id, name, which, true, now - cached.fetched_at);
                break;
            }
        }
        rc = MANDATE_TEMPFAIL; /* err says why */
        break;
    case FETCH_ERROR:
        rc = err != NULL && err->rc != MANDATE_OK ? err->rc : MANDATE_ERROR;
        break;
    }
out:
    host->wipe(hash, sizeof(hash));
    OPENSSL_cleanse(&cached, sizeof(cached));
    OPENSSL_cleanse(&fresh, sizeof(fresh));
    return rc;
}

static mandate_rc sm_authenticate_client(void *inst_, mandate_pool *pool,
                                         const mandate_credential *cred,
                                         const mandate_client *client, mandate_error *err)
{
    sm_inst *inst = inst_;
    (void)pool;
    if (cred == NULL || client == NULL || client->client_id == NULL)
        return mandate_error_set(err, MANDATE_ERROR,
                                 "secretsmanager: no credential or no client");
    /* only the clients provisioned through this very instance */
    if (client->backend == NULL || strcmp(client->backend, inst->host->instance) != 0)
        return MANDATE_NEXT;
    if (cred->client_id != NULL && strcmp(cred->client_id, client->client_id) != 0)
        return mandate_error_set(err, MANDATE_ERROR,
                                 "secretsmanager: the client record is not the one presented");
    if (cred->secret == NULL)
        return mandate_error_set(err, MANDATE_DENIED,
                                 "secretsmanager: this client authenticates with a client "
                                 "secret only");
    if (cred->assertion != NULL)
        return mandate_error_set(
            err, MANDATE_INVALID,
            "secretsmanager: both a secret and a client assertion presented");
    if (cred->auth_method != NULL && strcmp(cred->auth_method, "client_secret_basic") != 0 &&
        strcmp(cred->auth_method, "client_secret_post") != 0)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "secretsmanager: credential does not fit auth method %.40s",
                                 cred->auth_method);
    return check_secret(inst, cred, client, err);
}

/* The KMS key for a new secret: the client's attributes, else the config. */
static mandate_rc kms_key_for(sm_inst *inst, mandate_pool *pool, const mandate_client *client,
                              const char **kms_r, mandate_error *err)
{
    *kms_r = inst->kms_key_id;
    if (client->attributes == NULL || client->attributes[0] == '\0')
        return MANDATE_OK;
    json_t *attrs = json_loads(client->attributes, 0, NULL);
    if (!json_is_object(attrs)) {
        json_decref(attrs);
        return mandate_error_set(
            err, MANDATE_INVALID,
            "secretsmanager: the client's attributes are not a JSON object");
    }
    json_t *kms = json_object_get(attrs, "kms_key_id");
    mandate_rc rc = MANDATE_OK;
    if (kms != NULL && (!json_is_string(kms) || json_string_length(kms) == 0 ||
                        json_string_length(kms) > 2048))
        rc = mandate_error_set(err, MANDATE_INVALID,
                               "secretsmanager: attribute kms_key_id must be a key id, ARN or "
                               "alias");
    else if (kms != NULL &&
             (*kms_r = inst->host->pool_strdup(pool, json_string_value(kms))) == NULL)
        rc = mandate_error_set(err, MANDATE_ERROR, "secretsmanager: out of memory");
    json_decref(attrs);
    return rc;
}

/* A random UUID (version 4): the ClientRequestToken, which becomes the new
 * version's VersionId and makes a repeated call idempotent. */
static mandate_rc request_token(const mandate_host *host, char out[37])
{
    unsigned char b[16];
    if (host->random(b, sizeof(b)) != MANDATE_OK)
        return MANDATE_ERROR;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
             b[13], b[14], b[15]);
    return MANDATE_OK;
}

/* The call's body, with the new secret in it. */
static char *provision_body(sm_inst *inst, mandate_provision_mode mode, const char *name,
                            const char *client_id, const char *secret, const char *kms,
                            const char *token)
{
    json_t *value = json_pack("{s:s,s:s}", "client_id", client_id, "client_secret", secret);
    char *value_text = value ? json_dumps(value, JSON_COMPACT) : NULL;
    json_t *client_secret = json_object_get(value, "client_secret");
    wipe_json_string(client_secret);
    json_decref(value);
    if (value_text == NULL)
        return NULL;
    json_t *req;
    if (mode == MANDATE_PROVISION_CREATE) {
        req = json_pack("{s:s,s:s,s:s,s:s,s:[{s:s,s:s},{s:s,s:s}]}", "Name", name,
                        "ClientRequestToken", token, "SecretString", value_text, "Description",
                        "Mandate OAuth client credentials", "Tags", "Key", "mandate:client_id",
                        "Value", client_id, "Key", "mandate:instance", "Value",
                        inst->host->instance);
        if (req != NULL && kms != NULL)
            json_object_set_new(req, "KmsKeyId", json_string(kms));
    } else {
        req = json_pack("{s:s,s:s,s:s}", "SecretId", name, "ClientRequestToken", token,
                        "SecretString", value_text);
    }
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    wipe_json_string(json_object_get(req, "SecretString"));
    json_decref(req);
    OPENSSL_cleanse(value_text, strlen(value_text));
    free(value_text);
    return body;
}

static mandate_rc sm_provision(void *inst_, mandate_pool *pool, mandate_provision_mode mode,
                               mandate_client *client, char **secret_r, mandate_error *err)
{
    sm_inst *inst = inst_;
    const mandate_host *host = inst->host;
    if (client == NULL || secret_r == NULL || client->client_id == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "secretsmanager: provision: no client");
    if (mode != MANDATE_PROVISION_CREATE && mode != MANDATE_PROVISION_ROTATE)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "secretsmanager: provision: unknown mode %d", (int)mode);
    *secret_r = NULL;
    const char *id = client->client_id;
    char name[NAME_LEN_MAX + 1];
    if (!secret_name(inst, id, name, MANDATE_INVALID, err))
        return MANDATE_INVALID;
    const char *kms = NULL;
    mandate_rc rc = kms_key_for(inst, pool, client, &kms, err);
    if (rc != MANDATE_OK)
        return rc;

    unsigned char raw[SECRET_BYTES];
    char text[SECRET_TEXT_MAX], token[37];
    char *body = NULL;
    sm_response r = {0};
    if (host->random(raw, sizeof(raw)) != MANDATE_OK ||
        request_token(host, token) != MANDATE_OK) {
        rc = mandate_error_set(err, MANDATE_ERROR, "secretsmanager: no random bytes");
        goto out;
    }
    mandate_b64url_encode(raw, sizeof(raw), text);
    body = provision_body(inst, mode, name, id, text, kms, token);
    if (body == NULL) {
        rc = mandate_error_set(err, MANDATE_ERROR, "secretsmanager: out of memory");
        goto out;
    }
    sm_target target = mode == MANDATE_PROVISION_CREATE ? SM_CREATE : SM_PUT;
    rc = sm_call(inst, target, body, &r, err);
    if (rc != MANDATE_OK)
        goto out;
    char what[ERROR_TEXT_MAX + 128];
    switch (classify(&r)) {
    case SM_OK: break;
    case SM_EXISTS:
        rc =
            mandate_error_set(err, MANDATE_EXISTS,
                              "secretsmanager: a secret named \"%s\" already exists in Secrets "
                              "Manager; it was left as it is",
                              name);
        goto out;
    case SM_NOT_FOUND:
        rc = mandate_error_set(err, MANDATE_NOT_FOUND,
                               "secretsmanager: %s: no secret \"%s\" in Secrets Manager (%s)",
                               target_names[target], name, describe(&r, what, sizeof(what)));
        goto out;
    case SM_REFUSED:
        rc = mandate_error_set(err, MANDATE_DENIED, "secretsmanager: %s for secret \"%s\": %s",
                               target_names[target], name, describe(&r, what, sizeof(what)));
        goto out;
    case SM_INVALID:
        rc = mandate_error_set(err, MANDATE_INVALID, "secretsmanager: %s for secret \"%s\": %s",
                               target_names[target], name, describe(&r, what, sizeof(what)));
        goto out;
    case SM_CREDENTIALS:
        rc = mandate_error_set(err, MANDATE_ERROR,
                               "secretsmanager: Secrets Manager refused this instance's AWS "
                               "credentials or signature on %s: %s; check access_key_id, "
                               "secret_access_key, session_token, region and endpoint",
                               target_names[target], describe(&r, what, sizeof(what)));
        goto out;
    case SM_TRANSIENT:
        rc = mandate_error_set(err, MANDATE_TEMPFAIL,
                               "secretsmanager: %s for secret \"%s\": Secrets Manager "
                               "unavailable: %s",
                               target_names[target], name, describe(&r, what, sizeof(what)));
        goto out;
    default:
        rc = mandate_error_set(err, MANDATE_ERROR, "secretsmanager: %s for secret \"%s\": %s",
                               target_names[target], name, describe(&r, what, sizeof(what)));
        goto out;
    }

    json_t *answer = json_loadb(r.body ? r.body : "", r.len, 0, NULL);
    const char *arn = json_string_value(json_object_get(answer, "ARN"));
    if (mode == MANDATE_PROVISION_CREATE) {
        /* what was made, for operators; authentication uses the template */
        json_t *attrs = json_pack("{s:s}", "secret_name", name);
        if (attrs != NULL && arn != NULL)
            json_object_set_new(attrs, "secret_arn", json_string(arn));
        if (attrs != NULL && kms != NULL)
            json_object_set_new(attrs, "kms_key_id", json_string(kms));
        char *text_attrs = attrs ? json_dumps(attrs, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        json_decref(attrs);
        client->attributes = text_attrs ? host->pool_strdup(pool, text_attrs) : NULL;
        free(text_attrs);
    }
    json_decref(answer);
    /* the secrets are Secrets Manager's: the store keeps no hash of them, and
     * AWSPREVIOUS, not a grace period, says how long the old one works */
    client->secret_hash = NULL;
    client->secret_hash_len = 0;
    client->prev_secret_hash = NULL;
    client->prev_secret_hash_len = 0;
    client->prev_secret_expires_at = 0;
    if ((*secret_r = host->pool_strdup(pool, text)) == NULL) {
        rc = mandate_error_set(err, MANDATE_ERROR, "secretsmanager: out of memory");
        goto out;
    }
    cache_drop(inst, id);
    mandate_log_info(host, "secretsmanager: %s: secret \"%s\" for client \"%s\"%s%s",
                     target_names[target], name, id, kms ? " under KMS key " : "",
                     kms ? kms : "");
out:
    response_clear(&r);
    if (body != NULL) {
        OPENSSL_cleanse(body, strlen(body));
        free(body);
    }
    host->wipe(raw, sizeof(raw));
    host->wipe(text, sizeof(text));
    return rc;
}

/* --- plugin ---------------------------------------------------------------------- */

static const char *env_value(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

static bool is_loopback_url(const char *url)
{
    const char *host = strstr(url, "://");
    if (host == NULL)
        return false;
    host += 3;
    static const char *const loopback[] = {"127.0.0.1", "localhost", "[::1]", NULL};
    for (size_t i = 0; loopback[i] != NULL; i++) {
        size_t n = strlen(loopback[i]);
        if (strncmp(host, loopback[i], n) == 0 &&
            (host[n] == '\0' || host[n] == ':' || host[n] == '/'))
            return true;
    }
    return false;
}

static mandate_rc check_endpoint(const char *url, mandate_error *err)
{
    if (!header_safe(url) || strchr(url, ' ') != NULL)
        return mandate_error_set(err, MANDATE_INVALID, "secretsmanager: endpoint is not a URL");
    if (strncmp(url, "https://", 8) == 0 && url[8] != '\0' && url[8] != '/')
        return MANDATE_OK;
    if (strncmp(url, "http://", 7) == 0 && is_loopback_url(url))
        return MANDATE_OK;
    return mandate_error_set(err, MANDATE_INVALID,
                             "secretsmanager: endpoint must be an https:// URL (http:// only "
                             "on the loopback interface, for tests)");
}

static mandate_rc check_template(const char *t, mandate_error *err)
{
    size_t var = strlen(TEMPLATE_VAR);
    bool has_var = false;
    for (const char *p = t; *p != '\0';) {
        if (strncmp(p, TEMPLATE_VAR, var) == 0) {
            has_var = true;
            p += var;
        } else if (!name_char(*p)) {
            return mandate_error_set(err, MANDATE_INVALID,
                                     "secretsmanager: secret_name holds '%c': a secret name is "
                                     "letters, digits and /_+=.@- around ${client_id}",
                                     *p);
        } else {
            p++;
        }
    }
    if (!has_var)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "secretsmanager: secret_name must contain ${client_id}, e.g. "
                                 "\"mandate/clients/${client_id}\"");
    return MANDATE_OK;
}

static void sm_destroy(void *inst_);

static mandate_rc take_credentials(sm_inst *inst, const char **from_r, mandate_error *err)
{
    const char *akid, *secret, *token;
    if (inst->access_key_id != NULL || inst->secret_access_key != NULL) {
        if (inst->access_key_id == NULL || inst->secret_access_key == NULL)
            return mandate_error_set(err, MANDATE_INVALID,
                                     "secretsmanager: access_key_id and secret_access_key go "
                                     "together");
        akid = inst->access_key_id;
        secret = inst->secret_access_key;
        token = inst->session_token;
        *from_r = "the config";
    } else {
        if (inst->session_token != NULL)
            return mandate_error_set(err, MANDATE_INVALID,
                                     "secretsmanager: session_token needs access_key_id and "
                                     "secret_access_key in the config");
        akid = env_value("AWS_ACCESS_KEY_ID");
        secret = env_value("AWS_SECRET_ACCESS_KEY");
        token = env_value("AWS_SESSION_TOKEN");
        *from_r = "the environment";
        if (akid == NULL || secret == NULL)
            return mandate_error_set(
                err, MANDATE_INVALID,
                "secretsmanager: no AWS credentials: set access_key_id and "
                "secret_access_key in the instance file, or "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and "
                "AWS_SESSION_TOKEN) in the daemon's environment");
    }
    if (token != NULL && token[0] == '\0')
        token = NULL;
    if (!header_safe(akid) || !header_safe(secret) || (token != NULL && !header_safe(token)) ||
        akid[0] == '\0' || secret[0] == '\0')
        return mandate_error_set(err, MANDATE_INVALID,
                                 "secretsmanager: the AWS credentials from %s hold control "
                                 "characters or are empty",
                                 *from_r);
    inst->akid = xstrdup(akid);
    inst->secret = xstrdup(secret);
    inst->token = token ? xstrdup(token) : NULL;
    if (inst->akid == NULL || inst->secret == NULL || (token != NULL && inst->token == NULL))
        return mandate_error_set(err, MANDATE_ERROR, "secretsmanager: out of memory");
    return MANDATE_OK;
}

static mandate_rc build_headers(sm_inst *inst, mandate_error *err)
{
    for (int t = 0; t < SM_TARGETS; t++) {
        char target[64];
        snprintf(target, sizeof(target), "X-Amz-Target: secretsmanager.%s", target_names[t]);
        struct curl_slist *l =
            curl_slist_append(NULL, "Content-Type: application/x-amz-json-1.1");
        struct curl_slist *next = l ? curl_slist_append(l, target) : NULL;
        if (next != NULL && inst->token != NULL) {
            size_t n = strlen("X-Amz-Security-Token: ") + strlen(inst->token) + 1;
            char *h = malloc(n);
            if (h != NULL) {
                snprintf(h, n, "X-Amz-Security-Token: %s", inst->token);
                next = curl_slist_append(l, h);
                OPENSSL_cleanse(h, n);
                free(h);
            } else {
                next = NULL;
            }
        }
        inst->headers[t] = l;
        if (next == NULL)
            return mandate_error_set(err, MANDATE_ERROR, "secretsmanager: out of memory");
    }
    return MANDATE_OK;
}

static mandate_rc sm_instantiate(void *inst_, const mandate_host *host, mandate_error *err)
{
    sm_inst *inst = inst_;
    if (mandate_plugin_host_check(host, "secretsmanager", err) != MANDATE_OK)
        return MANDATE_ERROR;
    inst->host = host;
#if LIBCURL_VERSION_NUM < CURL_SIGV4_VERSION
    return mandate_error_set(err, MANDATE_ERROR,
                             "secretsmanager: built with libcurl %s; AWS SigV4 signing needs "
                             "7.75.0 or newer",
                             LIBCURL_VERSION);
#else
    const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    if (cv == NULL || cv->version_num < CURL_SIGV4_VERSION)
        return mandate_error_set(
            err, MANDATE_ERROR,
            "secretsmanager: libcurl %s is loaded; AWS SigV4 signing needs "
            "7.75.0 or newer",
            cv ? cv->version : "?");
    if (inst->cache_ttl < 0 || inst->negative_ttl < 0 || inst->stale_ttl < 0 ||
        inst->recheck_interval < 0 || inst->cache_size < 0 || inst->timeout_ms < 100)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "secretsmanager: cache_ttl, negative_ttl, stale_ttl, "
                                 "recheck_interval and cache_size must be >= 0, timeout_ms >= "
                                 "100");
    const char *region = inst->region;
    if (region == NULL)
        region = env_value("AWS_REGION");
    if (region == NULL)
        region = env_value("AWS_DEFAULT_REGION");
    if (region == NULL)
        return mandate_error_set(
            err, MANDATE_INVALID,
            "secretsmanager: no region: set region (e.g. \"eu-west-1\"), or "
            "AWS_REGION in the daemon's environment");
    if (strlen(region) > 32 ||
        strspn(region, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(region))
        return mandate_error_set(err, MANDATE_INVALID,
                                 "secretsmanager: region \"%.40s\" is not an AWS region name",
                                 region);
    const char *template =
        inst->secret_name ? inst->secret_name : "mandate/clients/${client_id}";
    mandate_rc rc = check_template(template, err);
    if (rc != MANDATE_OK)
        return rc;
    if (inst->kms_key_id != NULL &&
        (inst->kms_key_id[0] == '\0' || !header_safe(inst->kms_key_id)))
        return mandate_error_set(err, MANDATE_INVALID,
                                 "secretsmanager: kms_key_id must be a key id, ARN or alias");

    size_t n = strlen(region) + 64;
    inst->sigv4 = malloc(n);
    if (inst->sigv4 != NULL)
        snprintf(inst->sigv4, n, "aws:amz:%s:secretsmanager", region);
    if (inst->endpoint != NULL) {
        inst->url = xstrdup(inst->endpoint);
    } else if ((inst->url = malloc(n)) != NULL) {
        snprintf(inst->url, n, "https://secretsmanager.%s.amazonaws.com/", region);
    }
    if (inst->sigv4 == NULL || inst->url == NULL) {
        sm_destroy(inst);
        return mandate_error_set(err, MANDATE_ERROR, "secretsmanager: out of memory");
    }
    if ((rc = check_endpoint(inst->url, err)) != MANDATE_OK) {
        sm_destroy(inst);
        return rc;
    }
    if (inst->secret_name == NULL && (inst->secret_name = xstrdup(template)) == NULL) {
        sm_destroy(inst);
        return mandate_error_set(err, MANDATE_ERROR, "secretsmanager: out of memory");
    }
    const char *from = NULL;
    if ((rc = take_credentials(inst, &from, err)) != MANDATE_OK) {
        sm_destroy(inst);
        return rc;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        sm_destroy(inst);
        return mandate_error_set(err, MANDATE_ERROR, "secretsmanager: curl_global_init failed");
    }
    inst->curl_ready = true;
    if ((rc = build_headers(inst, err)) != MANDATE_OK) {
        sm_destroy(inst);
        return rc;
    }

    size_t want = inst->cache_size > 0 ? (size_t)inst->cache_size : 1;
    inst->bucket_count = 16;
    while (inst->bucket_count < want && inst->bucket_count < ((size_t)1 << 20))
        inst->bucket_count *= 2;
    inst->buckets = calloc(inst->bucket_count, sizeof(*inst->buckets));
    if (inst->buckets == NULL ||
        host->random(&inst->hash_seed, sizeof(inst->hash_seed)) != MANDATE_OK) {
        sm_destroy(inst);
        return mandate_error_set(err, MANDATE_ERROR,
                                 "secretsmanager: out of memory or random bytes");
    }
    pthread_mutex_init(&inst->cache_lock, NULL);
    pthread_mutex_init(&inst->handles_lock, NULL);
    inst->locks_ready = true;
    mandate_log_info(host,
                     "secretsmanager: region %s, endpoint %s, secrets named \"%s\", AWS "
                     "credentials from %s%s; cache %" PRId64 " s (unknown clients %" PRId64
                     " s, stale up to %" PRId64 " s more while Secrets Manager fails), %" PRId64
                     " entries, timeout %" PRId64 " ms",
                     region, inst->url, inst->secret_name, from,
                     inst->token ? " with a session token" : "", inst->cache_ttl,
                     inst->negative_ttl, inst->stale_ttl, inst->cache_size, inst->timeout_ms);
    return MANDATE_OK;
#endif
}

static void sm_destroy(void *inst_)
{
    sm_inst *inst = inst_;
    if (inst->locks_ready) {
        pthread_mutex_lock(&inst->cache_lock);
        cache_clear(inst);
        pthread_mutex_unlock(&inst->cache_lock);
        pthread_mutex_destroy(&inst->cache_lock);
        pthread_mutex_destroy(&inst->handles_lock);
        inst->locks_ready = false;
    }
    free(inst->buckets);
    inst->buckets = NULL;
    for (size_t i = 0; i < inst->handle_count; i++)
        curl_easy_cleanup(inst->handles[i]);
    inst->handle_count = 0;
    for (int t = 0; t < SM_TARGETS; t++) {
        for (struct curl_slist *l = inst->headers[t]; l != NULL; l = l->next)
            OPENSSL_cleanse(l->data, strlen(l->data)); /* the session token */
        curl_slist_free_all(inst->headers[t]);
        inst->headers[t] = NULL;
    }
    if (inst->curl_ready) {
        curl_global_cleanup();
        inst->curl_ready = false;
    }
    free_secret(&inst->akid);
    free_secret(&inst->secret);
    free_secret(&inst->token);
    free(inst->sigv4);
    inst->sigv4 = NULL;
    free(inst->url);
    inst->url = NULL;
}

#define OFF(f) offsetof(sm_inst, f)
static const mandate_conf_def sm_conf[] = {
    {"region", MANDATE_CONF_STRING, 0, OFF(region), NULL, 0, 0, NULL,
     "AWS region, e.g. \"eu-west-1\"; default: $AWS_REGION, then $AWS_DEFAULT_REGION"},
    {"endpoint", MANDATE_CONF_STRING, 0, OFF(endpoint), NULL, 0, 0, NULL,
     "Secrets Manager URL (a VPC endpoint); default "
     "https://secretsmanager.REGION.amazonaws.com/"},
    {"access_key_id", MANDATE_CONF_STRING, MANDATE_CONF_SECRET, OFF(access_key_id), NULL, 0, 0,
     NULL, "AWS access key id; default: $AWS_ACCESS_KEY_ID"},
    {"secret_access_key", MANDATE_CONF_STRING, MANDATE_CONF_SECRET, OFF(secret_access_key),
     NULL, 0, 0, NULL, "AWS secret access key; default: $AWS_SECRET_ACCESS_KEY"},
    {"session_token", MANDATE_CONF_STRING, MANDATE_CONF_SECRET, OFF(session_token), NULL, 0, 0,
     NULL, "AWS session token of temporary credentials; default: $AWS_SESSION_TOKEN"},
    {"secret_name", MANDATE_CONF_STRING, 0, OFF(secret_name), "mandate/clients/${client_id}", 0,
     0, NULL, "name of a client's secret; ${client_id} is replaced"},
    {"cache_ttl", MANDATE_CONF_INT, 0, OFF(cache_ttl), "300", 0, 86400, NULL,
     "seconds a fetched secret is used before it is fetched again"},
    {"negative_ttl", MANDATE_CONF_INT, 0, OFF(negative_ttl), "30", 0, 3600, NULL,
     "seconds a missing, refused or malformed secret is remembered as such"},
    {"stale_ttl", MANDATE_CONF_INT, 0, OFF(stale_ttl), "3600", 0, 604800, NULL,
     "seconds past cache_ttl a cached secret still serves while Secrets Manager cannot be "
     "read"},
    {"recheck_interval", MANDATE_CONF_INT, 0, OFF(recheck_interval), "5", 0, 3600, NULL,
     "a secret matching no cached version re-fetches the client's secret at most this often "
     "(seconds)"},
    {"cache_size", MANDATE_CONF_INT, 0, OFF(cache_size), "10000", 0, 1000000, NULL,
     "clients kept in the cache (least recently used evicted); 0: no cache"},
    {"timeout_ms", MANDATE_CONF_INT, 0, OFF(timeout_ms), "3000", 100, 60000, NULL,
     "milliseconds a call to Secrets Manager may take, connection included"},
    {"kms_key_id", MANDATE_CONF_STRING, 0, OFF(kms_key_id), NULL, 0, 0, NULL,
     "KMS key (id, ARN or alias) for the secrets CreateSecret makes; default: "
     "aws/secretsmanager"},
    MANDATE_CONF_END};
#undef OFF

static const mandate_backend_ops sm_ops = {
    .authenticate_client = sm_authenticate_client,
    .assertion_types = NULL,
    .validate_assertion = NULL,
    .provision = sm_provision,
};

MANDATE_PLUGIN(secretsmanager, MANDATE_BACKEND, PACKAGE_VERSION, MANDATE_PLUGIN_BLOCKING,
               sm_inst, sm_conf, sm_instantiate, sm_destroy, &sm_ops);
