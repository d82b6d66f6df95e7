/* Issuing, one floor below the grants of POST /oauth2/token: every grant
 * starts its grant here, checks the client's rate, and ends here, issued
 * (minted with the client's format, audited, answered per RFC 6749 §5.1) or
 * refused (audited, answered per §5.2). */
#ifndef MANDATE_ISSUE_PRIVATE_H
#define MANDATE_ISSUE_PRIVATE_H

#include <jansson.h>
#include <mandate/format.h>
#include <mandate/store.h>

#include "http-private.h"
#include "oauth-private.h"
#include "plugins-private.h"

/* Mints grant with the client's format, records token.issued (with the
 * members of extra, stolen, may be NULL) and answers; issued_token_type
 * (RFC 8693) goes into the response when not NULL. */
void mandate_token_issue(mandate_http_request *req, mandate_http_response *resp,
                         const mandate_client *client, const mandate_grant *grant,
                         const char *grant_type, json_t *extra, const char *issued_token_type);
/* The second half of mandate_token_issue, for a token already made (by
 * fmt): records token.issued and answers; token_type is "N_A" when
 * issued_token_type is an ID-JAG (RFC 8693 §2.2.1), else "Bearer". */
void mandate_token_answer(mandate_http_request *req, mandate_http_response *resp,
                          const mandate_client *client, const mandate_grant *grant,
                          const char *token, const mandate_instance *fmt,
                          const char *grant_type, json_t *extra, const char *issued_token_type);
/* The first half of mandate_token_issue: grant minted with the client's
 * format into *token_r (fmt_r: the format), its may_act set first from the
 * delegation policy when it has none. false: refused, audited (with extra,
 * stolen) and answered. */
bool mandate_token_mint(mandate_http_request *req, mandate_http_response *resp,
                        const mandate_client *client, mandate_grant *grant,
                        const char *grant_type, json_t *extra, char **token_r,
                        const mandate_instance **fmt_r);
/* Every refusal of mandate_token_mint (audience, format, DPoP-bound client
 * without a proof, the profile...) without minting: for a grant that spends
 * something (a refresh token's rotation) before it mints. false: refused,
 * audited and answered. */
bool mandate_token_may_mint(mandate_http_request *req, mandate_http_response *resp,
                            const mandate_client *client, const mandate_grant *grant,
                            const char *grant_type);
/* mandate_token_answer with more members in the answer (stolen, may be
 * NULL): a refresh_token (RFC 6749 §5.1). */
void mandate_token_answer_with(mandate_http_request *req, mandate_http_response *resp,
                               const mandate_client *client, const mandate_grant *grant,
                               const char *token, const mandate_instance *fmt,
                               const char *grant_type, json_t *extra,
                               const char *issued_token_type, json_t *more);
/* Records token.refused with the reason (and extra, stolen, may be NULL),
 * then answers the error. */
void mandate_token_refuse(mandate_http_request *req, mandate_http_response *resp,
                          const mandate_oauth_error *oerr, const char *grant_type,
                          const char *client_id, json_t *extra);
/* The same as event (par.refused at /oauth2/par). */
void mandate_oauth_refuse(mandate_http_request *req, mandate_http_response *resp,
                          const char *event, const mandate_oauth_error *oerr,
                          const char *grant_type, const char *client_id, json_t *extra);
/* The client's rate limit on the token endpoint: false when over it, with
 * the 429 answered and audited. */
bool mandate_token_within_rate(mandate_http_request *req, mandate_http_response *resp,
                               const mandate_client *client, const char *grant_type);
/* The same, a refusal audited as event (par.refused at /oauth2/par, which
 * spends the client's token endpoint allowance). */
bool mandate_oauth_within_rate(mandate_http_request *req, mandate_http_response *resp,
                               const char *event, const mandate_client *client,
                               const char *grant_type);
/* The issuer, a fresh jti and the times of a grant that lives lifetime
 * seconds from now, never past not_after (0: no bound). false: no
 * randomness for the jti. */
bool mandate_token_grant_start(mandate_http_request *req, mandate_grant *grant,
                               int64_t lifetime, int64_t not_after);

#endif
