/* Placeholder: the oidc backend plugin. */
#include "config.h"
const int mandate_plugin_oidc_placeholder = 0;
