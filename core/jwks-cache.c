/* Placeholder: the JWKS cache moves here from core/libmandate/verifier.c. */
#include "config.h"
typedef int mandate_jwks_cache_placeholder;
