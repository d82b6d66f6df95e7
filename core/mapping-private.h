/* Mapping rules: how a federated identity (SAML attributes, OIDC claims)
 * becomes a grant. They live in mandate.conf as a list of groups:
 *
 *   mappings = (
 *     { name = "advisors";
 *       idp = "backend-corp-saml";              # the backend instance (or plugin name)
 *       when = ( { attribute = "role"; equals = "FinancialAdvisor"; },
 *                { attribute = "employeeId"; present = true; } );
 *       subject = "advisor-${employeeId}";
 *       tenant = "wealth";                       # default "default"
 *       scopes = ["gateway:invoke", "mcp:call"];
 *       audience = ["https://mcp.example/market-calendar"];
 *       max_lifetime = 900;                      # seconds; default tokens.lifetime
 *       sensitive_scopes = ["trade:execute"];    # optional
 *       sensitive_lifetime = 300;                # their tokens' lifetime
 *       sensitive_max_authn_age = 600; }         # AuthnInstant no older than this
 *   );
 *
 * A condition is one of: equals = "v" (one of the attribute's values is v),
 * one_of = ["a", "b"], present = true, matches = "POSIX extended regex"
 * (anchored: the whole value must match). All conditions of a rule must
 * hold; the first rule (in file order) whose idp and conditions match
 * wins; no match means no token.
 *
 * Attributes are the identity's JSON object: a member's value is a string,
 * a number, a boolean, or an array of those (multi-valued SAML attributes,
 * OIDC groups). A dotted name ("address.country") walks nested objects.
 * A name is first looked up whole (SAML names are often URIs with dots),
 * then walked. Values compare as text: integers without decimals, booleans
 * as true/false; an empty string, null, an object or a string holding a NUL
 * is no value, and present = true means at least one value.
 * ${name} in the subject template takes the attribute's first value (as text), which
 * must be a non-empty string of client-id characters (RFC 3986 unreserved),
 * else the rule refuses (a value from the IdP never shapes the subject
 * freely). The literal parts of the template may hold those characters
 * only ('$' outside ${...} is refused at load), and the whole subject is a
 * valid client id (at most 128 characters, not "." or "..").
 *
 * Sensitive scopes: when a granted scope is among sensitive_scopes and the
 * rule sets sensitive_max_authn_age, the IdP's authentication (AuthnInstant)
 * must be known and no older than that. If it is not, the sensitive scopes
 * are dropped and the others granted, and why says so ("sensitive scope
 * trade:execute dropped: authentication too old (700 s > 600 s)"); only when
 * nothing else is left is the exchange refused ("authentication too old for
 * sensitive scope ..."). The agent gets a narrower token, not an error, and
 * sees it in the response's scope, as RFC 6749 §3.3 allows. Without
 * sensitive_max_authn_age the authentication's age is not checked. A token
 * holding a sensitive scope lives min(max_lifetime or tokens.lifetime,
 * sensitive_lifetime). */
#ifndef MANDATE_MAPPING_PRIVATE_H
#define MANDATE_MAPPING_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <libconfig.h>
#include <mandate/backend.h>

#include "conf-private.h"
#include "pool-private.h"
#include "word-list.h"

typedef enum mandate_condition_op {
    MANDATE_COND_EQUALS = 1,
    MANDATE_COND_ONE_OF,
    MANDATE_COND_PRESENT,
    MANDATE_COND_MATCHES
} mandate_condition_op;

typedef struct mandate_condition {
    char *attribute;
    mandate_condition_op op;
    char **values;           /* EQUALS: one; ONE_OF: several; MATCHES: the
                                pattern as written; NULL-terminated */
    void *regex;             /* MATCHES: a compiled regex_t */
} mandate_condition;

typedef struct mandate_mapping_rule {
    char *name;
    char *idp;
    mandate_condition *conditions;
    size_t condition_count;
    char *subject;            /* template */
    char *tenant;
    char **scopes;            /* NULL-terminated */
    char **audiences;         /* NULL-terminated; may be empty */
    int64_t max_lifetime;     /* 0: tokens.lifetime */
    char **sensitive_scopes;  /* NULL-terminated; may be empty */
    int64_t sensitive_lifetime;
    int64_t sensitive_max_authn_age; /* 0: no limit */
} mandate_mapping_rule;

typedef struct mandate_mappings {
    mandate_mapping_rule *rules;
    size_t count;
} mandate_mappings;

/* Reads the "mappings" list of a loaded mandate.conf into *out; every
 * problem is one diag line with file and line. An absent list is no rules.
 * true when everything was valid; on false *out is empty. */
bool mandate_mappings_read(const config_t *file, const char *path, mandate_mappings *out,
                           mandate_diag *diag);
void mandate_mappings_free(mandate_mappings *mappings);

/* What the exchange asks for and who asks. */
typedef struct mandate_mapping_request {
    const char *idp;              /* the instance name of the backend that validated */
    const char *idp_plugin;       /* its plugin name ("saml", "oidc") */
    const mandate_identity *identity;
    const char *requested_scope;  /* space-separated; NULL: everything allowed */
    const char *client_scopes;    /* the acting client's allowed scopes */
    const char *requested_audience; /* space-separated (RFC 8707 resource / audience); NULL: the rule's */
    int64_t default_lifetime;     /* tokens.lifetime */
    int64_t now;
} mandate_mapping_request;

typedef struct mandate_mapping_result {
    const mandate_mapping_rule *rule; /* NULL: no rule matched */
    const char *subject;
    const char *tenant;
    const char *scope;            /* the intersection, space-separated; never empty on OK */
    const char *audience;         /* space-separated; may be NULL */
    int64_t lifetime;
    /* for the log, the audit trail and mapping test: which rule and why
     * (also when refused: "no rule matched", "rule advisors: attribute
     * employeeId is missing", "no scope left: asked mcp:admin") */
    const char *why;
} mandate_mapping_result;

/* The first rule whose idp is request->idp or request->idp_plugin and
 * whose conditions hold makes the grant: scope = requested ∩ rule ∩
 * client_scopes (in the order asked; requested NULL or blank: the rule's ∩
 * the client's), audience = the requested ones, each among the rule's when
 * it lists any, else all of the rule's; lifetime = max_lifetime or
 * default_lifetime, shortened to sensitive_lifetime when a sensitive scope
 * is granted. why always names the rule; with no match it names, for each
 * rule of that idp, its first failing condition (bounded).
 * MANDATE_OK with a grant; MANDATE_DENIED (invalid_grant/invalid_scope for
 * the caller: *result_r says why, and which rule) when no rule matches, the
 * subject cannot be made, no scope is left, the audience is not allowed,
 * or the authentication is too old for a sensitive scope and nothing else
 * is left; MANDATE_INVALID for bad arguments (attributes that are not a JSON
 * object among them). Strings are in pool (why may be static). */
mandate_rc mandate_mapping_apply(const mandate_mappings *mappings,
                                 const mandate_mapping_request *request, mandate_pool *pool,
                                 mandate_mapping_result *result_r);

#endif
