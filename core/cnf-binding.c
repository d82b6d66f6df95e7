/* Sender-constrained tokens across delegation: cnf-binding-private.h. */
#include "config.h"

#include <string.h>

#include "cnf-binding-private.h"
#include "dpop-binding-private.h"
#include "grant-claims.h"
#include "mtls-private.h"

bool mandate_cnf_of_claims(mandate_pool *pool, const json_t *claims, mandate_cnf *cnf_r,
                           const char **why_r)
{
    const char *jkt, *x5t;
    *why_r = mandate_grant_cnf_of(claims, &jkt, &x5t);
    cnf_r->jkt = jkt != NULL ? mandate_pool_strdup(pool, jkt) : NULL;
    cnf_r->x5t_s256 = x5t != NULL ? mandate_pool_strdup(pool, x5t) : NULL;
    return *why_r == NULL;
}

bool mandate_cnf_held(mandate_http_request *req, const mandate_cnf *cnf, const char *what,
                      mandate_oauth_error *oerr)
{
    if (cnf->jkt != NULL && !mandate_dpop_request_holds(req, cnf->jkt)) {
        mandate_oauth_fail(oerr, 400, "invalid_grant",
                           mandate_pool_printf(
                               req->pool,
                               req->dpop_jkt == NULL
                                   ? "the %s is DPoP-bound: a DPoP proof of its key is required"
                                   : "the %s is DPoP-bound to another key than the DPoP "
                                     "proof's",
                               what));
        return false;
    }
    if (cnf->x5t_s256 != NULL && !mandate_mtls_request_holds(req, cnf->x5t_s256)) {
        mandate_oauth_fail(oerr, 400, "invalid_grant",
                           mandate_pool_printf(req->pool,
                                               "the %s is certificate-bound: present it over "
                                               "TLS with that client certificate",
                                               what));
        return false;
    }
    return true;
}

void mandate_cnf_carry(const mandate_cnf *cnf, mandate_grant *grant)
{
    if (cnf->jkt != NULL)
        grant->cnf_jkt = cnf->jkt;
    if (cnf->x5t_s256 != NULL)
        grant->cnf_x5t_s256 = cnf->x5t_s256;
}

void mandate_cnf_audit(const mandate_http_request *req, const mandate_cnf *cnf, json_t *fields)
{
    if (cnf->jkt != NULL)
        json_object_set_new(fields, "bound_jkt", json_string(cnf->jkt));
    if (cnf->x5t_s256 != NULL)
        json_object_set_new(fields, "bound_x5t_s256", json_string(cnf->x5t_s256));
    if (req->dpop_jkt != NULL && (cnf->jkt == NULL || strcmp(cnf->jkt, req->dpop_jkt) != 0))
        json_object_set_new(fields, "proof_jkt", json_string(req->dpop_jkt));
}
