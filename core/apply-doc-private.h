/* mandatectl apply's document and plan: what an operator declares (clients
 * and gateway targets), read from JSON (a libconfig file is turned into the
 * same JSON first), checked field by field, and compared with what is there
 * to give the changes that make the two match.
 *
 * Pure: no store, no runtime, no files; the caller reads what is there and
 * carries the plan out (core/ctl-apply.c). Strings come from the pool given.
 * Every problem goes to diag, named by its place in the document
 * ("clients[2].scopes"), and a document with any problem gives no plan. */
#ifndef MANDATE_APPLY_DOC_PRIVATE_H
#define MANDATE_APPLY_DOC_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "conf-private.h"
#include "pool-private.h"

/* Bounds of a document: a bank's whole fleet fits, a hostile file does not. */
#define MANDATE_APPLY_MAX_BYTES (4 * 1024 * 1024)
#define MANDATE_APPLY_MAX_DEPTH 8
#define MANDATE_APPLY_MAX_CLIENTS 10000
#define MANDATE_APPLY_MAX_TARGETS 1000
#define MANDATE_APPLY_MAX_LIST 256   /* words in one list */
#define MANDATE_APPLY_MAX_STRING 4096 /* bytes of one value */
#define MANDATE_APPLY_MAX_ERRORS 50

/* One client, as the document declares it or as the store holds it. Lists
 * are space-separated (NULL: none). */
typedef struct mandate_apply_client {
    const char *id;
    const char *name;
    const char *tenant;  /* NULL: "default" */
    const char *auth;    /* "client_secret" (NULL), "private_key_jwt", "none" */
    const char *backend; /* NULL: document: the first that provisions; store: none */
    const char *format;  /* NULL: the configured default */
    const char *scopes, *default_scopes, *audiences;
    const char *grant_types, *redirect_uris; /* document: NULL when not given (kept) */
    int64_t ttl;         /* 0: the configured default */
    double rate_limit;   /* 0: the configured default */
    int64_t rate_burst;
    bool introspect;
    bool disabled;
    const char *public_key; /* PEM; the caller reads public_key_file into it */
    /* the document's only */
    const char *secret_file, *public_key_file, *kms_key_id;
    size_t index; /* its place in clients[] */
    /* the store's only: it registered itself (RFC 7591, a client document),
     * so it is not the operator's to declare and --prune leaves it */
    bool registered;
} mandate_apply_client;

typedef struct mandate_apply_target {
    const char *name;
    const char *paths; /* space-separated */
    const char *audience;
    const char *scopes;
    const char *tenant;
    const char *resource_metadata;
    size_t index;
} mandate_apply_target;

typedef struct mandate_apply_doc {
    mandate_apply_client *clients;
    size_t client_count;
    mandate_apply_target *targets;
    size_t target_count;
    bool has_targets; /* "targets" is in the document (an empty list removes all) */
} mandate_apply_doc;

/* Checks root against the document's schema. false (diag says why, each
 * line "PLACE: what"); unknown keys are errors naming their place. */
bool mandate_apply_doc_read(mandate_pool *pool, json_t *root, mandate_apply_doc *doc,
                            mandate_diag *diag);

/* A libconfig setting as JSON: groups become objects, lists and arrays
 * arrays. NULL past MANDATE_APPLY_MAX_DEPTH. */
json_t *mandate_apply_json_from_setting(const config_setting_t *setting, int depth);

typedef enum mandate_apply_op {
    MANDATE_APPLY_CREATE = '+',
    MANDATE_APPLY_UPDATE = '~',
    MANDATE_APPLY_DISABLE = '-', /* a client: disabled, never deleted */
    MANDATE_APPLY_REMOVE = 'x'   /* a target: taken out of the file apply owns */
} mandate_apply_op;

typedef struct mandate_apply_change {
    mandate_apply_op op;
    bool is_target;
    const char *name;
    const mandate_apply_client *want, *have; /* clients (want NULL on disable) */
    const mandate_apply_target *want_target, *have_target;
    const char **fields; /* UPDATE: "field: old -> new" */
    size_t field_count;
} mandate_apply_change;

typedef struct mandate_apply_plan {
    mandate_apply_change *changes;
    size_t count;
    size_t creates, updates, disables, removals;
    size_t left_alone; /* enabled clients not in the document, kept (no --prune) */
} mandate_apply_plan;

/* The changes that make have (the store's clients; the targets of the file
 * apply owns) match doc. Clients not in doc are disabled with prune (but
 * for registered ones), else left alone; targets not in doc are removed
 * when doc has "targets". false when a change cannot be made (a client's
 * auth method or backend differs: its credential stays with them). */
bool mandate_apply_plan_make(mandate_pool *pool, const mandate_apply_doc *doc,
                             const mandate_apply_client *have, size_t have_count,
                             const mandate_apply_target *have_targets, size_t have_target_count,
                             bool prune, mandate_apply_plan *plan_r, mandate_diag *diag);

/* "client_secret", "private_key_jwt" or "none". */
const char *mandate_apply_client_auth(const mandate_apply_client *client);

#endif
