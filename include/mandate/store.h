/* Store plugin ABI: persistence of clients, signing keys, token records,
 * revocations and replay caches.
 *
 * The ABI speaks in records and plain values, never in SQL: a store may be
 * SQLite, PostgreSQL or anything else that gives the same guarantees:
 *  - every operation is atomic; client_import is all-or-nothing;
 *  - replay_claim is a single atomic check-and-insert, shared by every node
 *    that uses the same store;
 *  - each change to clients, keys or revocations raises the generation
 *    counter, which nodes poll to refresh what they cache.
 * Instances are shared by all worker threads; a store keeps its own
 * per-thread connections. The core destroys an instance only once no worker
 * thread uses it any more. Times are seconds since the epoch. Strings returned
 * through `_r` or to callbacks come from the pool given (or live for the
 * duration of the callback) and are never freed by the caller. */
#ifndef MANDATE_STORE_H
#define MANDATE_STORE_H

#include <mandate/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mandate_client_status {
    MANDATE_CLIENT_ENABLED = 1,
    MANDATE_CLIENT_DISABLED = 2
} mandate_client_status;

/* Client may call the introspection endpoint. */
#define MANDATE_CLIENT_CAN_INTROSPECT 0x1u

typedef struct mandate_client {
    const char *client_id;
    const char *tenant;
    const char *name;           /* free text for operators; may be NULL */
    const char *scopes;         /* allowed scopes, space-separated */
    const char *default_scopes; /* granted when the request names none */
    const char *audiences;      /* allowed audiences (RFC 8707), space-separated */
    const char *backend;        /* instance that authenticates it, e.g. "local" */
    const char *token_format;   /* format instance; NULL: the config default */
    int64_t token_ttl;          /* seconds; 0: the config default */
    mandate_client_status status;
    uint32_t flags;             /* MANDATE_CLIENT_* */
    /* keyed hash of the current secret, and of the previous one while its
     * grace period lasts (prev_secret_expires_at > now) */
    const unsigned char *secret_hash;
    size_t secret_hash_len;
    const unsigned char *prev_secret_hash;
    size_t prev_secret_hash_len;
    int64_t prev_secret_expires_at;
    const char *public_key;     /* PEM, for private_key_jwt; may be NULL */
    double rate_limit;          /* requests per second; 0: the config default */
    int64_t rate_burst;         /* 0: the config default */
    const char *attributes;     /* JSON object for backend-specific data; may be NULL */
    int64_t created_at, updated_at;

    /* ABI 1.5: the client's registered metadata (RFC 7591 §2), a JSON
     * object: redirect_uris, grant_types, response_types,
     * token_endpoint_auth_method ("none" for a public client), client_name,
     * client_uri, logo_uri, jwks or jwks_uri, tls_client_auth_subject_dn
     * and the SAN forms (RFC 8705), dpop_bound_access_tokens (RFC 9449),
     * and "registered_by" ("admin", "registration": RFC 7591). NULL: a
     * machine client of the client credentials grant only, as before 1.5.
     * Opaque to the store: the core reads and checks it. */
    const char *metadata;
} mandate_client;

typedef struct mandate_client_filter {
    const char *tenant; /* NULL: all tenants */
    const char *after;  /* client_id to start after, for paging; NULL: first */
    size_t limit;       /* 0: no limit */
} mandate_client_filter;

typedef mandate_rc (*mandate_client_cb)(void *ctx, const mandate_client *client);

typedef enum mandate_key_status {
    MANDATE_KEY_ACTIVE = 1,  /* signs new tokens */
    MANDATE_KEY_RETIRED = 2  /* verifies only, until remove_after */
} mandate_key_status;

typedef struct mandate_key {
    const char *kid;
    const char *alg;          /* "ES256", "RS256", "EdDSA" */
    const char *format;       /* format instance that owns it, e.g. "jwt" */
    mandate_key_status status;
    /* the private key as stored: encrypted under the key-encryption key by
     * the core, opaque to the store */
    const unsigned char *private_blob;
    size_t private_blob_len;
    const char *public_jwk;   /* JSON text */
    int64_t created_at;
    int64_t retired_at;       /* 0 while active */
    int64_t remove_after;     /* leaves the JWKS after this; 0: not scheduled */
} mandate_key;

typedef mandate_rc (*mandate_key_cb)(void *ctx, const mandate_key *key);

/* A server-side token record, for reference (opaque) tokens. */
typedef struct mandate_token_record {
    const unsigned char *token_hash; /* hash of the token; the token itself is never stored */
    size_t token_hash_len;
    const char *jti;
    const char *client_id;
    const char *subject;
    const char *tenant;
    const char *grant;               /* the grant as JSON text */
    int64_t issued_at, expires_at;
} mandate_token_record;

typedef mandate_rc (*mandate_revocation_cb)(void *ctx, const char *jti, const char *client_id,
                                            int64_t expires_at);
typedef mandate_rc (*mandate_token_record_cb)(void *ctx, const mandate_token_record *record);
typedef mandate_rc (*mandate_replay_cb)(void *ctx, const char *ns, const char *id,
                                        int64_t expires_at);

/* ABI 1.5: an authorization code (RFC 6749 §4.1), held until redeemed or
 * expired. The code itself is never stored, only its hash. */
typedef struct mandate_auth_code {
    const unsigned char *code_hash;
    size_t code_hash_len;
    const char *client_id;
    const char *redirect_uri;   /* exactly as the authorization request named it */
    const char *code_challenge; /* PKCE S256 (RFC 7636) */
    const char *family_id;      /* what is issued from it: revoked if it is used twice */
    const char *grant;          /* the decided grant as JSON text */
    int64_t issued_at, expires_at;
} mandate_auth_code;

/* ABI 1.5: a refresh token. Every token of one sign-in's rotation shares a
 * family; only one of them is ever active. */
typedef enum mandate_refresh_status {
    MANDATE_REFRESH_ACTIVE = 1,
    MANDATE_REFRESH_USED = 2,    /* rotated: presenting it again is a reuse */
    MANDATE_REFRESH_REVOKED = 3  /* its family was ended */
} mandate_refresh_status;

typedef struct mandate_refresh_token {
    const unsigned char *token_hash;
    size_t token_hash_len;
    const char *family_id;
    const char *client_id;
    const char *tenant;
    const char *subject;
    const char *grant;           /* JSON text: scope, resources, idp, auth_time, cnf, ... */
    mandate_refresh_status status;
    int64_t issued_at;
    int64_t expires_at;          /* this token's end (idle timeout) */
    int64_t family_expires_at;   /* the family's end, however often it rotates */
} mandate_refresh_token;

/* ABI 1.5: a browser session at the broker (a sign-in at an IdP), known by
 * the hash of its cookie's value. */
typedef struct mandate_session {
    const unsigned char *id_hash;
    size_t id_hash_len;
    const char *tenant;
    const char *subject;
    const char *idp;             /* the backend instance the user signed in through */
    const char *identity;        /* the identity as JSON, for the mapping rules */
    int64_t created_at;
    int64_t authn_at;            /* when the IdP authenticated the user */
    int64_t last_seen_at;        /* for the idle timeout */
    int64_t expires_at;          /* absolute */
} mandate_session;

/* ABI 1.5: a user's remembered consent to a client, for a set of scopes
 * and resources. */
typedef struct mandate_consent {
    const char *tenant;
    const char *subject;
    const char *client_id;
    const char *scope;           /* space-separated */
    const char *resources;       /* space-separated */
    int64_t created_at;
    int64_t expires_at;          /* 0: until revoked */
} mandate_consent;

typedef mandate_rc (*mandate_consent_cb)(void *ctx, const mandate_consent *consent);

/* ABI 1.5: a client's metadata document (a Client ID Metadata Document: its
 * client_id is the document's https URL), as fetched and checked. */
typedef struct mandate_client_document {
    const char *url;
    const char *document;        /* JSON text */
    int64_t fetched_at;
    int64_t expires_at;          /* fetched again after this */
} mandate_client_document;

/* ABI 1.5: how long purge keeps a client document past its expires_at, for
 * a caller that serves a stale one while its fetch fails. */
#define MANDATE_STORE_DOCUMENT_KEEP 86400

/* ABI 1.8: one write of a batch (write_batch below), as the op of that
 * name would make it, with the fields that op takes; the others are not
 * read. */
typedef enum mandate_store_write_op {
    MANDATE_STORE_WRITE_ONCE_PUT = 1,   /* ns, key, key_len, value, expires_at */
    MANDATE_STORE_WRITE_ONCE_SET = 2,   /* the same and keep_until */
    MANDATE_STORE_WRITE_SESSION_PUT = 3 /* session */
} mandate_store_write_op;

typedef struct mandate_store_write {
    mandate_store_write_op op;
    const char *ns;
    const unsigned char *key;
    size_t key_len;
    const char *value;
    int64_t expires_at;
    int64_t keep_until;
    const mandate_session *session;
} mandate_store_write;

/* The most writes one write_batch takes. */
#define MANDATE_STORE_WRITE_BATCH_MAX 16

typedef struct mandate_store_ops {
    /* Is the store reachable? Cheap; used by /readyz. */
    mandate_rc (*ping)(void *inst, mandate_error *err);
    /* Bring the schema to the newest version; safe when several nodes
     * start at once. */
    mandate_rc (*migrate)(void *inst, mandate_error *err);
    mandate_rc (*schema_version)(void *inst, int *version_r, mandate_error *err);
    /* Raised by every change to clients, keys and revocations. */
    mandate_rc (*generation)(void *inst, uint64_t *generation_r, mandate_error *err);

    /* MANDATE_NOT_FOUND when there is no such client. */
    mandate_rc (*client_get)(void *inst, mandate_pool *pool, const char *client_id,
                             mandate_client *client_r, mandate_error *err);
    /* MANDATE_EXISTS when the client_id is taken. */
    mandate_rc (*client_create)(void *inst, const mandate_client *client,
                                mandate_error *err);
    /* Replaces every field of an existing client; MANDATE_NOT_FOUND if none.
     * created_at 0 keeps the stored value; updated_at 0 means now. */
    mandate_rc (*client_update)(void *inst, const mandate_client *client,
                                mandate_error *err);
    mandate_rc (*client_delete)(void *inst, const char *client_id, mandate_error *err);
    /* Calls each() in client_id order; stops early and returns what each()
     * returned when that is not MANDATE_OK. */
    mandate_rc (*client_list)(void *inst, const mandate_client_filter *filter,
                              mandate_client_cb each, void *ctx, mandate_error *err);
    /* Creates all clients or none (MANDATE_EXISTS names the first taken id). */
    mandate_rc (*client_import)(void *inst, const mandate_client *clients, size_t n,
                                mandate_error *err);

    mandate_rc (*key_add)(void *inst, const mandate_key *key, mandate_error *err);
    /* Sets status, retired_at and remove_after of an existing key. */
    mandate_rc (*key_update)(void *inst, const mandate_key *key, mandate_error *err);
    /* All keys, newest first. */
    mandate_rc (*key_list)(void *inst, mandate_key_cb each, void *ctx,
                           mandate_error *err);
    mandate_rc (*key_delete)(void *inst, const char *kid, mandate_error *err);

    /* MANDATE_EXISTS when a record with that hash is there. */
    mandate_rc (*token_put)(void *inst, const mandate_token_record *record,
                            mandate_error *err);
    /* MANDATE_NOT_FOUND when unknown or expired at `now`. */
    mandate_rc (*token_get)(void *inst, mandate_pool *pool, const unsigned char *hash,
                            size_t hash_len, int64_t now,
                            mandate_token_record *record_r, mandate_error *err);

    /* Revoke a token by jti until it would have expired anyway. Revoking twice
     * is not an error; a later expires_at extends the revocation. */
    mandate_rc (*revoke)(void *inst, const char *jti, const char *client_id,
                         int64_t expires_at, mandate_error *err);
    mandate_rc (*is_revoked)(void *inst, const char *jti, bool *revoked_r,
                             mandate_error *err);

    /* Claim a one-time identifier (an assertion ID, a jti) in a namespace
     * (usually the IdP) until expires_at. MANDATE_OK the first time,
     * MANDATE_EXISTS on a replay. Atomic across nodes. */
    mandate_rc (*replay_claim)(void *inst, const char *ns, const char *id,
                               int64_t expires_at, mandate_error *err);

    /* Drop revocations, token records and replay entries whose expires_at is
     * at or before `now`; count_r may be NULL. From ABI 1.5 also every
     * sign-in row past its end (see below); count_r counts them too. */
    mandate_rc (*purge)(void *inst, int64_t now, uint64_t *count_r, mandate_error *err);

    /* ABI 1.2: the short-lived rows still live at `now`, for moving a
     * deployment to another store (mandatectl migrate): a revoked token must
     * stay revoked, an opaque token valid, a claimed assertion ID claimed.
     * Each stops early and returns what each() returned when that is not
     * MANDATE_OK. Read only when the plugin's abi_minor is >= 2; may be
     * NULL (migrate then refuses). */
    mandate_rc (*revocation_list)(void *inst, int64_t now, mandate_revocation_cb each,
                                  void *ctx, mandate_error *err);
    mandate_rc (*token_list)(void *inst, int64_t now, mandate_token_record_cb each, void *ctx,
                             mandate_error *err);
    mandate_rc (*replay_list)(void *inst, int64_t now, mandate_replay_cb each, void *ctx,
                              mandate_error *err);

    /* ABI 1.5: sign-in (authorization codes, refresh tokens, browser
     * sessions, consents, client metadata documents), one-time records and
     * where tokens came from. Read only when the plugin's abi_minor is >= 5;
     * each may be NULL (the core then refuses what needs it, and says so).
     * purge() drops every kind of row past its expires_at: a refresh token
     * also past its family_expires_at, a consent only when its expires_at
     * is not 0, a client document only MANDATE_STORE_DOCUMENT_KEEP seconds
     * after its expires_at. Keys are hashes (SHA-256) of the secrets the
     * browser or the client holds; no store ever sees a code, refresh token
     * or session cookie. A NULL or empty hash, or a missing key field, is
     * MANDATE_INVALID. Where an op has no `now`, the store reads the host's
     * clock. */

    /* One-time records: a value held under (ns, key) until taken once or
     * expired: pending authorizations while the user signs in at an IdP,
     * pushed authorization requests, initial access tokens. put:
     * MANDATE_EXISTS when the key is taken (an expired record is replaced).
     * take: atomically removes and returns it; MANDATE_NOT_FOUND when none,
     * taken already or expired. */
    mandate_rc (*once_put)(void *inst, const char *ns, const unsigned char *key, size_t key_len,
                           const char *value, int64_t expires_at, mandate_error *err);
    mandate_rc (*once_take)(void *inst, mandate_pool *pool, const char *ns,
                            const unsigned char *key, size_t key_len, int64_t now,
                            char **value_r, mandate_error *err);

    /* Authorization codes. put: MANDATE_EXISTS on a hash already there.
     * take: redeems it, atomically across nodes: MANDATE_OK the first time
     * (code_r filled); MANDATE_EXISTS with code_r filled when it was
     * redeemed before (a replay: the caller ends its family), also past its
     * expires_at until purge drops it, so that a replay of an expired code
     * still ends its family; MANDATE_NOT_FOUND when unknown, or unredeemed
     * and expired at now. */
    mandate_rc (*auth_code_put)(void *inst, const mandate_auth_code *code, mandate_error *err);
    mandate_rc (*auth_code_take)(void *inst, mandate_pool *pool, const unsigned char *hash,
                                 size_t hash_len, int64_t now, mandate_auth_code *code_r,
                                 mandate_error *err);

    /* Refresh tokens. put: the first of a family (or after rotation, see
     * refresh_rotate); MANDATE_EXISTS on a hash already there. The first
     * token that names a family_id makes the family (its tenant, subject and
     * family_expires_at); status 0 is ACTIVE. get: any status
     * (introspection, revocation); MANDATE_NOT_FOUND when unknown or past
     * its expires_at or family_expires_at. rotate: atomically, when
     * old_hash is ACTIVE, unexpired and its family alive, marks it USED and
     * stores next (same family) -> MANDATE_OK with old_r; when old_hash is
     * USED, ends its family (every token REVOKED) -> MANDATE_DENIED with
     * old_r (reuse detected, RFC 9700 §4.14.2); REVOKED -> MANDATE_DENIED
     * with old_r; unknown or expired -> MANDATE_NOT_FOUND. old_r is the old
     * token as found, before the call changed it (status USED: a reuse).
     * next takes old's family_id and family_expires_at (the caller need not
     * know them: next's are not read), and old's client_id, tenant and
     * subject where next's are NULL; it is stored ACTIVE. MANDATE_EXISTS,
     * nothing changed, when next's hash is taken.
     * revoke_family: every token of the family REVOKED (count_r: how many
     * were ACTIVE; may be NULL). revoke_subject: the same for every family
     * of a user (a disabled user, an admin's revocation). A family ended
     * while one of its tokens is being rotated, on any node, ends with the
     * new token too: the store serializes the two. */
    mandate_rc (*refresh_put)(void *inst, const mandate_refresh_token *token, mandate_error *err);
    mandate_rc (*refresh_get)(void *inst, mandate_pool *pool, const unsigned char *hash,
                              size_t hash_len, int64_t now, mandate_refresh_token *token_r,
                              mandate_error *err);
    mandate_rc (*refresh_rotate)(void *inst, mandate_pool *pool, const unsigned char *old_hash,
                                 size_t old_hash_len, int64_t now,
                                 const mandate_refresh_token *next,
                                 mandate_refresh_token *old_r, mandate_error *err);
    mandate_rc (*refresh_revoke_family)(void *inst, const char *family_id, uint64_t *count_r,
                                        mandate_error *err);
    mandate_rc (*refresh_revoke_subject)(void *inst, const char *tenant, const char *subject,
                                         uint64_t *count_r, mandate_error *err);

    /* Browser sessions. put: MANDATE_EXISTS on a hash already there. get:
     * MANDATE_NOT_FOUND when unknown or past expires_at (the caller judges
     * the idle timeout from last_seen_at). touch: sets last_seen_at, never
     * back (the nodes' clocks differ); MANDATE_NOT_FOUND when unknown or
     * expired. delete: MANDATE_NOT_FOUND when none. delete_subject: every
     * session of a user (count_r may be NULL). */
    mandate_rc (*session_put)(void *inst, const mandate_session *session, mandate_error *err);
    mandate_rc (*session_get)(void *inst, mandate_pool *pool, const unsigned char *hash,
                              size_t hash_len, int64_t now, mandate_session *session_r,
                              mandate_error *err);
    mandate_rc (*session_touch)(void *inst, const unsigned char *hash, size_t hash_len,
                                int64_t now, mandate_error *err);
    mandate_rc (*session_delete)(void *inst, const unsigned char *hash, size_t hash_len,
                                 mandate_error *err);
    mandate_rc (*session_delete_subject)(void *inst, const char *tenant, const char *subject,
                                         uint64_t *count_r, mandate_error *err);

    /* Consents, one per (tenant, subject, client_id): put replaces it
     * (created_at 0: now). get: MANDATE_NOT_FOUND when none or expired at
     * now. delete: MANDATE_NOT_FOUND when none. list: a user's that have
     * not expired, in client_id order (by bytes); stops early and returns
     * what each() returned when that is not MANDATE_OK. */
    mandate_rc (*consent_put)(void *inst, const mandate_consent *consent, mandate_error *err);
    mandate_rc (*consent_get)(void *inst, mandate_pool *pool, const char *tenant,
                              const char *subject, const char *client_id, int64_t now,
                              mandate_consent *consent_r, mandate_error *err);
    mandate_rc (*consent_delete)(void *inst, const char *tenant, const char *subject,
                                 const char *client_id, mandate_error *err);
    mandate_rc (*consent_list)(void *inst, const char *tenant, const char *subject,
                               mandate_consent_cb each, void *ctx, mandate_error *err);

    /* Client metadata documents, one per URL: put replaces it. get:
     * MANDATE_NOT_FOUND when none (an expired one is returned: the caller
     * may serve it while a fetch fails, and decides; purge keeps it
     * MANDATE_STORE_DOCUMENT_KEEP seconds past its expires_at). */
    mandate_rc (*client_document_put)(void *inst, const mandate_client_document *doc,
                                      mandate_error *err);
    mandate_rc (*client_document_get)(void *inst, mandate_pool *pool, const char *url,
                                      mandate_client_document *doc_r, mandate_error *err);

    /* Where a token came from: jti (or a family or code id) was derived
     * from parent, and lives until expires_at. revoke_descendants revokes
     * (as revoke() does) every jti below root, however deep, each until its
     * own expires_at, and raises the generation: a refresh family, a code
     * redeemed twice, a token handed down a chain of agents. count_r: how
     * many were revoked (may be NULL). lineage_add: MANDATE_EXISTS when
     * that link (jti from parent) is there; a jti may have several parents.
     * revoke_descendants leaves out descendants already expired (their
     * links still lead further down), counts the revocations it recorded or
     * extended (revoking twice counts 0 and leaves the generation), and
     * ends on a cycle. */
    mandate_rc (*lineage_add)(void *inst, const char *jti, const char *parent,
                              const char *client_id, int64_t expires_at, mandate_error *err);
    mandate_rc (*revoke_descendants)(void *inst, const char *root, uint64_t *count_r,
                                     mandate_error *err);

    /* ABI 1.7: stores value under (ns, key) until expires_at in one atomic
     * write, replacing what is there, live or not (once_put refuses a live
     * record; taking it first is two writes); but a live record (expires_at
     * after the host's now) with the same value whose expires_at is at or
     * after keep_until is left as it is and nothing is written: a record
     * refreshed by every sign-in of a user, written once in a while. Read
     * only when the plugin's abi_minor is >= 7; may be NULL (the core then
     * takes and puts, writing every time). */
    mandate_rc (*once_set)(void *inst, const char *ns, const unsigned char *key, size_t key_len,
                           const char *value, int64_t expires_at, int64_t keep_until,
                           mandate_error *err);

    /* ABI 1.8: writes[0..n) in one atomic write transaction, in order, each
     * with the answers of its op (once_put's MANDATE_EXISTS on a live key,
     * session_put's on a hash already there, MANDATE_INVALID on a missing
     * key, namespace or hash). All or nothing: the first write that does
     * not answer MANDATE_OK ends the batch, nothing of it is kept (writes
     * before it rolled back, none after it made), its answer and message
     * are returned and *failed_r (may be NULL) is its index; on MANDATE_OK
     * every write is committed and *failed_r is n. n of 0 or above
     * MANDATE_STORE_WRITE_BATCH_MAX, or an unknown op, is MANDATE_INVALID
     * with nothing written (*failed_r: n, or the unknown op's index). A
     * sign-in's writes once the IdP's answer is checked (the browser
     * session, its single-logout record, the user record, the pending
     * consent) cost one transaction instead of four. Read only when the
     * plugin's abi_minor is >= 8; may be NULL (the core then makes each
     * write alone, in order, stopping at the first that fails: not atomic). */
    mandate_rc (*write_batch)(void *inst, const mandate_store_write *writes, size_t n,
                              size_t *failed_r, mandate_error *err);
} mandate_store_ops;

#ifdef __cplusplus
}
#endif

#endif
