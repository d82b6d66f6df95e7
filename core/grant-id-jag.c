/* Placeholder: ID-JAG issuance and acceptance. */
#include "config.h"
typedef int mandate_id_jag_placeholder;
