/* A grant (include/mandate/format.h) as JSON claims and back: the one place
 * that knows which member of a mandate_grant is which claim of RFC 9068
 * (iss sub aud exp iat nbf jti client_id scope), of ours (tenant, idp) and
 * of RFC 8693 (act, the earlier actors nested in it), and which strings a
 * grant holds. Its users: the jwt format (a token's claims), the opaque
 * format (the grant it stores in its token record), the core's RFC 7662
 * introspection answer, and the token cache (a grant copied whole).
 *
 * Part of lib/, the floor under the core, the plugins and libmandate: it
 * allocates through the host table a plugin is handed, never through the
 * core. */
#ifndef MANDATE_GRANT_CLAIMS_H
#define MANDATE_GRANT_CLAIMS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include <mandate/format.h>

/* --- grant -> claims ---------------------------------------------------------- */

/* Sets the grant's claims in obj, in the order iss sub aud exp iat nbf jti
 * client_id scope tenant act idp. Left out: aud when the audience holds no
 * word (one word is a string, several an array), scope when NULL, tenant and
 * idp when NULL or empty, act when there is no actor. nbf is iat when the
 * grant has none. The earlier actors are read only when with_prior (a grant
 * of a host or format of ABI 1.4 or later). MANDATE_INVALID, err starting
 * with "<who>: ", when a member is NULL where required or not valid UTF-8,
 * or the actors are more than MANDATE_GRANT_MAX_ACTORS; obj then holds the
 * claims before that one. */
mandate_rc mandate_grant_claims_put(json_t *obj, const mandate_grant *grant, bool with_prior,
                                    const char *who, mandate_error *err);

/* cnf (RFC 7800 §3.1) of a bound grant: {"jkt"} for DPoP (RFC 9449 §6.1),
 * {"x5t#S256"} for a certificate (RFC 8705 §3.1); nothing for a bearer
 * grant. Only for a grant of ABI 1.5 or later (the fields are not there
 * before). MANDATE_INVALID when a thumbprint is not valid UTF-8. */
mandate_rc mandate_grant_cnf_put(json_t *obj, const mandate_grant *grant, const char *who,
                                 mandate_error *err);

/* cnf (RFC 7800 §3.1) of claims: its jkt and x5t#S256 (pointers into
 * claims; both NULL without a cnf). NULL, or why the cnf cannot be
 * honoured: not an object, a thumbprint that is not one, no method this
 * broker knows, or one it does not check (jwk, jku, kid...). */
const char *mandate_grant_cnf_of(const json_t *claims, const char **jkt_r, const char **x5t_r);

/* The most actors a grant's may_act names: a policy that lets more clients
 * act for one token than this says too little to a reader of the token. */
#define MANDATE_GRANT_MAX_MAY_ACT 16

/* may_act (RFC 8693 §4.4) of a grant that names actors: {"sub": client_id}
 * for one, an array of those for several; nothing when it names none. Only
 * for a grant of ABI 1.6 or later. MANDATE_INVALID when it names more than
 * MANDATE_GRANT_MAX_MAY_ACT or is not valid UTF-8. */
mandate_rc mandate_grant_may_act_put(json_t *obj, const mandate_grant *grant, const char *who,
                                     mandate_error *err);

/* origin_client_id of a derived grant: the client its chain began with
 * (format.h); nothing when the grant has none. Only for a grant of ABI 1.9
 * or later. MANDATE_INVALID when it is not valid UTF-8. */
mandate_rc mandate_grant_origin_put(json_t *obj, const mandate_grant *grant, const char *who,
                                    mandate_error *err);

/* Every claim of the grant that a grant of ABI 1.abi_minor has: the above
 * in order (claims, cnf from 1.5, may_act from 1.6, origin_client_id from
 * 1.9), stopping at the first failure. What a format writes into a token,
 * and introspection into its answer. */
mandate_rc mandate_grant_claims_put_all(json_t *obj, const mandate_grant *grant,
                                        uint16_t abi_minor, const char *who, mandate_error *err);

/* --- claims -> grant ---------------------------------------------------------- */

/* How a reader names and grades what it finds wrong with the claims: the
 * jwt format reads a token someone presents (a bad claim is theirs:
 * MANDATE_INVALID, "jwt: claim"), the opaque format the record it wrote
 * itself (a bad member is our fault: MANDATE_ERROR, "opaque: stored
 * grant's"). Messages read "<what> <claim> is missing". */
typedef struct mandate_grant_claims_reader {
    const char *what;
    mandate_rc bad;
} mandate_grant_claims_reader;

/* Fills grant from claims: iss, sub, jti, client_id, exp and iat required;
 * nbf, scope, tenant, idp, aud (a string, or an array of strings joined
 * with spaces), act, cnf, may_act and origin_client_id (a host of ABI 1.9
 * or later) optional (cnf refused for a host before ABI
 * 1.5, which could not keep the binding). Strings are copied into pool through host.
 * not_before is nbf, or iat without one; *nbf_given_r (may be NULL) says
 * which. prior_actors is written only for a host of ABI 1.4 or later, and a
 * nested act is refused for an older one (it would read the chain as its
 * nearest actor alone). Times are not checked against the clock: the caller
 * knows its leeway. On failure the grant holds what was read before it. */
mandate_rc mandate_grant_claims_get(const mandate_host *host, mandate_pool *pool,
                                    const json_t *claims,
                                    const mandate_grant_claims_reader *reader,
                                    mandate_grant *grant, bool *nbf_given_r,
                                    mandate_error *err);

/* --- the grant's strings ------------------------------------------------------ */

/* Bytes the grant's strings take, their NULs included (0: none). */
size_t mandate_grant_strings_size(const mandate_grant *grant);
/* Copies the grant's strings into buf (mandate_grant_strings_size bytes)
 * and points the grant at the copies; NULL members stay NULL. */
void mandate_grant_strings_copy(mandate_grant *grant, char *buf);

#endif
