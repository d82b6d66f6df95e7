/* Single logout (issue 23; backend ABI 1.6 logout ops): core/endpoint-logout.c.
 *
 *   - a sign-in whose backend gave a session_ref keeps it in the browser
 *     session's identity, and a one-time record from its session_key to the
 *     session (so that the IdP's LogoutRequest finds it);
 *   - Mandate's own /logout, once the session is ended, sends the browser
 *     to the IdP with logout_start's request (SP-initiated), remembering
 *     its answer's handle;
 *   - /login/INSTANCE/logout takes the IdP's answer to it, or the IdP's own
 *     request to end sign-ins (IdP-initiated): the sessions found are ended
 *     and the browser sent back with the backend's answer.
 * Audited: logout.started, logout.finished, logout.refused, and
 * session.ended (reason idp_logout) for each session the IdP ended. */
#ifndef MANDATE_SIGNIN_LOGOUT_PRIVATE_H
#define MANDATE_SIGNIN_LOGOUT_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <mandate/backend.h>
#include <mandate/store.h>

#include "http-private.h"
#include "plugins-private.h"

/* At the callback, before the session is kept: the sign-in's session_ref
 * into the session's identity (JSON object), when the instance gave one. */
void mandate_signin_logout_note(const mandate_instance *in, const mandate_identity *id,
                                json_t *identity);
/* With the session (its hash, its end): the write of the record by which
 * an IdP's LogoutRequest finds it, for the caller to make with the
 * session's; false when the sign-in gave no session_ref. */
bool mandate_signin_logout_index(mandate_http_request *req, const mandate_instance *in,
                                 const mandate_identity *id,
                                 const unsigned char session_hash[32], int64_t expires_at,
                                 mandate_store_write *write_r);
/* Whether signing out of session would go on to its IdP (the sign-out
 * page's form may then lead to another origin). */
bool mandate_signin_logout_goes_on(mandate_http_request *req, const mandate_session *session);
/* After /logout ended session: true when the browser was sent to the IdP
 * to end its own session too (resp is the redirect); false: nothing to do
 * there (no logout at that IdP, or it cannot start: logged). */
bool mandate_signin_logout_at_idp(mandate_http_request *req, mandate_http_response *resp,
                                  const mandate_session *session);
/* GET /login/INSTANCE/logout (the method checked by the caller). */
void mandate_endpoint_login_logout(mandate_http_request *req, mandate_http_response *resp,
                                   const mandate_instance *in);

#endif
