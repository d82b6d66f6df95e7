/* What the token source and the verifier share of libmandate's public API
 * (include/mandate/client.h): the names of its return codes. The HTTP
 * client under both is in lib/, shared with the oidc backend plugin. */
#include "config.h"

#include <mandate/client.h>

const char *mandate_client_rc_name(mandate_client_rc rc)
{
    switch (rc) {
    case MANDATE_CLIENT_OK: return "ok";
    case MANDATE_CLIENT_INVALID: return "invalid";
    case MANDATE_CLIENT_DENIED: return "denied";
    case MANDATE_CLIENT_UNAVAILABLE: return "unavailable";
    case MANDATE_CLIENT_TOKEN_INVALID: return "token_invalid";
    case MANDATE_CLIENT_INSUFFICIENT_SCOPE: return "insufficient_scope";
    case MANDATE_CLIENT_ERROR: return "error";
    }
    return "unknown";
}
