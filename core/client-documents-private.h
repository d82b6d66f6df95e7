/* Client ID Metadata Documents: a client whose client_id is the https URL
 * of its metadata. (The sign-in branch's placeholder: the module itself
 * comes with its own branch, which replaces this file.) */
#ifndef MANDATE_CLIENT_DOCUMENTS_PRIVATE_H
#define MANDATE_CLIENT_DOCUMENTS_PRIVATE_H

#include <stdbool.h>

#include <mandate/store.h>

#include "pool-private.h"
#include "runtime-private.h"

bool mandate_client_id_is_document(const char *client_id);
mandate_rc mandate_client_document_resolve(mandate_runtime *rt, mandate_pool *pool,
                                           const char *url, mandate_client *client_r,
                                           mandate_error *err);

#endif
