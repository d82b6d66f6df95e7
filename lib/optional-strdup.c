/* Copies of strings that may be absent: optional-strdup.h. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "optional-strdup.h"

char *mandate_strdup_optional(const char *s, bool *oom)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        *oom = true;
    return d;
}
