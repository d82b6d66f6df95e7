/* The order of use of a bounded cache's entries, newest to oldest, so that
 * the least recently used one is the one evicted (the DPoP key cache of
 * lib/dpop.c, the Secrets Manager backend's secrets). The list is
 * intrusive: an entry holds a mandate_recency_link, and
 * MANDATE_RECENCY_ENTRY gives the entry of a link back.
 *
 * Part of lib/, the floor under the core, the plugins and libmandate. No
 * allocation and no lock: the cache's own lock covers its list. */
#ifndef MANDATE_RECENCY_LIST_H
#define MANDATE_RECENCY_LIST_H

#include <stddef.h>

typedef struct mandate_recency_link {
    struct mandate_recency_link *newer, *older; /* NULL at the ends, and out of a list */
} mandate_recency_link;

typedef struct mandate_recency_list {
    mandate_recency_link *newest, *oldest; /* both NULL: empty */
} mandate_recency_list;

/* The entry of type that holds link as its member. */
#define MANDATE_RECENCY_ENTRY(link, type, member)                                             \
    ((type *)(void *)((char *)(link) - offsetof(type, member)))

/* Puts link, which is in no list, first: the most recently used. */
void mandate_recency_push(mandate_recency_list *list, mandate_recency_link *link);

/* Takes link out of the list it is in; it is then in none. */
void mandate_recency_unlink(mandate_recency_list *list, mandate_recency_link *link);

/* Moves link, which is in the list, first: it was just used. */
void mandate_recency_touch(mandate_recency_list *list, mandate_recency_link *link);

#endif
