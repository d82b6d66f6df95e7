/* The sign-in branch's placeholder (see client-documents-private.h). */
#include "config.h"

#include <string.h>

#include "client-documents-private.h"

bool mandate_client_id_is_document(const char *client_id)
{
    return client_id != NULL && strncmp(client_id, "https://", 8) == 0;
}

mandate_rc mandate_client_document_resolve(mandate_runtime *rt, mandate_pool *pool,
                                           const char *url, mandate_client *client_r,
                                           mandate_error *err)
{
    (void)rt;
    (void)pool;
    (void)url;
    (void)client_r;
    return mandate_error_set(err, MANDATE_NOT_FOUND, "client metadata documents are not read");
}
