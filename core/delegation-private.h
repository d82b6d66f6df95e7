/* Delegation: whether the client that exchanges one of our own access
 * tokens (RFC 8693 token exchange) may have a token for it, for which
 * scopes and audiences, and how long the chain of actors may grow. One
 * function, mandate_delegation_decide, makes the whole decision, so that the
 * token endpoint, the audit trail and (later) mandatectl agree.
 *
 * The policy lives in mandate.conf:
 *
 *   delegation = {
 *     max_depth = 3;                  # actors in a token's act chain, at most
 *     rules = (
 *       { name = "calendar-helpers";  # for the log and the audit trail
 *         actors = ["calendar-helper"];             # the clients that may exchange
 *         clients = ["marketpulse-agent"];          # whose tokens (their client_id)
 *         subjects = ["advisor-12345"];             # optional: only for these subjects
 *         audiences = ["https://other.example/api"];  # optional: beyond the token's own
 *         scopes = ["calendar:read"];                 # optional: only for these scopes
 *         max_depth = 2; }                            # optional: a shorter chain
 *     );
 *   };
 *
 * The rules, in full:
 *  - A client exchanging a token issued to itself narrows it: no rule is
 *    needed. A token issued to another client is delegation, allowed only
 *    when a rule names the acting client in actors and the token's client in
 *    clients (or lists no clients), and its subject in subjects (or lists no
 *    subjects); a rule lists clients, subjects or both. No rule: refused.
 *  - Nothing grows. Scopes: those asked (else the token's), each among the
 *    token's and the acting client's. Audiences: those asked (else the
 *    token's), each among the acting client's own, and among the token's
 *    unless the admitting rule lists it. Lifetime: never past the token's
 *    expiry (the caller bounds it).
 *  - The chain: the acting client becomes act.sub and the token's actors
 *    are nested below it (RFC 8693 §4.1), nearest first; a client narrowing
 *    a token it already acts in does not add itself again. A chain of more
 *    than max_depth actors is refused.
 *  - A rule's own limits: with scopes, it admits an exchange only when
 *    every scope of the new token is among them; with max_depth, only when
 *    the new token's chain holds at most that many actors (never more than
 *    delegation.max_depth: the configuration says so when read). A rule
 *    that names the actor and the token but refuses by its limits is the
 *    answer when no other rule admits: the refusal names it and the limit
 *    (too_deep, or scope: invalid_scope), and the token's may_act does not
 *    lift it (may_act is written from the same rules).
 *  - The first rule (in file order) that admits the request is the one
 *    named in the audit trail.
 * Names are compared exactly: there are no wildcards ("*" is refused when
 * the configuration is read).
 *
 *  - may_act (RFC 8693 §4.4): every token issued names, in may_act, the
 *    actors of the rules about its client and subject and those of its
 *    client's own list (mandatectl client set ID --may-act ACTOR...). An
 *    exchange of another client's token no rule admits is admitted when
 *    the token's may_act names the acting client; the rest (depth, cycle,
 *    scopes, audiences, lifetime) holds all the same.
 *  - A cycle: an acting client already among the chain's earlier actors
 *    is refused (A acting for B acting for A).
 *  - Refused for want of a rule: the reason names, for each rule, the
 *    first of its lists that leaves the request out. */
#ifndef MANDATE_DELEGATION_PRIVATE_H
#define MANDATE_DELEGATION_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libconfig.h>
#include <mandate/format.h>

#include "conf-private.h"
#include "pool-private.h"

/* delegation.max_depth when not configured. Three actors cover an agent
 * that signs in for an advisor (1), hands the token to an orchestrator's
 * sub-agent (2) and that one to a tool agent (3); every further hop makes
 * it harder to tell who decided what, so longer chains are opt-in. */
#define MANDATE_DELEGATION_DEFAULT_MAX_DEPTH 3

typedef struct mandate_delegation_rule {
    char *name;
    char **actors;     /* client ids that may act; NULL-terminated, not empty */
    char **clients;    /* the subject token's client_id; NULL-terminated; empty: any */
    char **subjects;   /* the subject token's sub; NULL-terminated; empty: any */
    char **audiences;  /* beyond the subject token's; NULL-terminated; may be empty */
    char **scopes;     /* the new token's scopes, at most these; NULL-terminated; empty: any */
    int64_t max_depth; /* actors in the new token's chain, at most; 0: delegation.max_depth */
} mandate_delegation_rule;

typedef struct mandate_delegation {
    int64_t max_depth; /* delegation.max_depth, read with the core's keys */
    mandate_delegation_rule *rules;
    size_t count;
} mandate_delegation;

/* Reads delegation.rules of a loaded mandate.conf into out's rules; every
 * problem is one diag line with file and line. No list: no rules. false
 * when anything was wrong, and then out holds no rules. max_depth is left as
 * it is. */
bool mandate_delegation_read(const config_t *file, const char *path, mandate_delegation *out,
                             mandate_diag *diag);
void mandate_delegation_free(mandate_delegation *delegation);

/* An exchange of one of our own access tokens. */
typedef struct mandate_delegation_request {
    const char *actor;              /* the authenticated client that exchanges */
    const char *actor_scopes;       /* its allowed scopes, space-separated */
    const char *actor_audiences;    /* its allowed audiences, space-separated; may be NULL */
    const mandate_grant *token;     /* the subject token, read and found active */
    const char *requested_scope;    /* NULL: the token's */
    const char *requested_audience; /* space-separated; NULL: the token's within the actor's */
} mandate_delegation_request;

/* Which check refused. */
typedef enum mandate_delegation_verdict {
    MANDATE_DELEGATION_ADMITTED = 0,
    MANDATE_DELEGATION_NOT_ALLOWED, /* another client's token, no rule for this actor:
                                       invalid_grant */
    MANDATE_DELEGATION_TOO_DEEP,    /* more actors than max_depth: invalid_grant */
    MANDATE_DELEGATION_CYCLE,       /* the actor is in the chain already: invalid_grant */
    MANDATE_DELEGATION_SCOPE,   /* a scope beyond the token's or the actor's: invalid_scope */
    MANDATE_DELEGATION_AUDIENCE /* an audience not allowed: invalid_target */
} mandate_delegation_verdict;

typedef struct mandate_delegation_result {
    mandate_delegation_verdict verdict;
    bool delegated;                      /* the token was issued to another client */
    const mandate_delegation_rule *rule; /* the rule that admitted it; NULL: none needed,
                                            or by_may_act */
    bool by_may_act;                     /* no rule, but the token's may_act names the actor */
    /* the new token's, when admitted */
    const char *actor;
    const char *prior_actors; /* nearest first; NULL: none */
    const char *origin_client_id; /* the client the chain began with (format.h) */
    size_t depth;             /* actors in the chain, actor included */
    const char *scope;        /* NULL: none */
    const char *audience;     /* NULL: none */
    /* when refused: the scope or audience at fault (NULL otherwise), and why,
     * for the log and the audit trail (names clients and rules: not for the
     * client) */
    const char *word;
    const char *why;
} mandate_delegation_result;

/* The decision (see the top of this file); strings of the result in pool. */
mandate_delegation_verdict mandate_delegation_decide(const mandate_delegation *policy,
                                                     const mandate_delegation_request *request,
                                                     mandate_pool *pool,
                                                     mandate_delegation_result *result_r);

/* "admitted", "actor_not_allowed", "too_deep", "cycle", "scope", "audience":
 * for the audit trail. */
const char *mandate_delegation_verdict_name(mandate_delegation_verdict verdict);

/* The may_act (RFC 8693 §4.4) of a token about to be issued (g: its
 * client_id and subject): the client's own list ("may_act" in its
 * attributes, set by mandatectl client set --may-act), then the actors of
 * every rule about the token's client and subject, each once, the token's
 * own client left out; space-separated in pool. NULL: none, or more than
 * MANDATE_GRANT_MAX_MAY_ACT (the token then names none, and exchanges go by
 * the rules alone). */
const char *mandate_delegation_may_act(const mandate_delegation *policy, mandate_pool *pool,
                                       const char *client_attributes, const mandate_grant *g);

/* The lineage root of a client's tokens that were handed down: disabling
 * the client revokes every token below it (mandatectl client disable). */
const char *mandate_delegation_client_root(mandate_pool *pool, const char *client_id);

/* Records in the store that child was derived from parent (jti to parent
 * jti) and that parent, a token of its client, was handed down (parent jti
 * below the client's root), each until its own expiry; a link already
 * there is kept. false: err says why, and the child must not be issued
 * (its parent's revocation would not reach it). */
struct mandate_instance; /* plugins-private.h, which includes this file's reader */
bool mandate_delegation_link(const struct mandate_instance *store, mandate_pool *pool,
                             const mandate_grant *parent, const mandate_grant *child,
                             mandate_error *err);

#endif
