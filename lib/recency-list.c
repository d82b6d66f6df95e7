/* The recency list of a bounded cache (recency-list.h). */
#include "config.h"

#include "recency-list.h"

void mandate_recency_push(mandate_recency_list *list, mandate_recency_link *link)
{
    link->older = list->newest;
    link->newer = NULL;
    if (list->newest != NULL)
        list->newest->newer = link;
    list->newest = link;
    if (list->oldest == NULL)
        list->oldest = link;
}

void mandate_recency_unlink(mandate_recency_list *list, mandate_recency_link *link)
{
    if (link->newer != NULL)
        link->newer->older = link->older;
    else
        list->newest = link->older;
    if (link->older != NULL)
        link->older->newer = link->newer;
    else
        list->oldest = link->newer;
    link->newer = link->older = NULL;
}

void mandate_recency_touch(mandate_recency_list *list, mandate_recency_link *link)
{
    mandate_recency_unlink(list, link);
    mandate_recency_push(list, link);
}
