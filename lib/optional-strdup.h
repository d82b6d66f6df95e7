/* A copy of a string that may be absent, for the constructors that copy
 * several settings and fail once at the end when memory ran out.
 *
 * Part of lib/, the floor under the core, the plugins and libmandate. */
#ifndef MANDATE_OPTIONAL_STRDUP_H
#define MANDATE_OPTIONAL_STRDUP_H

#include <stdbool.h>

/* A malloc'd copy of s; NULL for NULL, and NULL with *oom set to true when
 * memory ran out (*oom is never set back to false). */
char *mandate_strdup_optional(const char *s, bool *oom);

#endif
