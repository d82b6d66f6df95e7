/* Token validation: the one place that decides whether a token presented to
 * the broker (introspection, the gateway check, mandatectl) is active. */
#ifndef MANDATE_VALIDATE_PRIVATE_H
#define MANDATE_VALIDATE_PRIVATE_H

#include "runtime-private.h"

typedef struct mandate_token_status {
    mandate_grant grant;   /* valid when the format could read the token */
    bool parsed;           /* the grant was read and its signature checked */
    mandate_client client; /* the client the token was issued to, when found */
    const char *reason;    /* why the token is inactive, for the log */
} mandate_token_status;

/* MANDATE_OK: active. MANDATE_INVALID: inactive, status->reason says why
 * (malformed, forged, expired, revoked, foreign issuer, client disabled or
 * deleted). MANDATE_TEMPFAIL / MANDATE_ERROR: cannot decide now (store or
 * format trouble), details in err. Memory from pool. */
mandate_rc mandate_token_validate(mandate_runtime *rt, mandate_pool *pool, const char *token,
                                  size_t len, mandate_token_status *status, mandate_error *err);

/* The grant as the RFC 7662 members (active, scope, client_id, sub, aud,
 * exp, iat, nbf, iss, jti, token_type, tenant, act, idp). New reference. */
json_t *mandate_grant_to_introspection(const mandate_grant *grant);

#endif
