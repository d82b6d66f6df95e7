/* People's sign-in, the steps between the browser's endpoints
 * (endpoint-authorize.c, endpoint-login.c, endpoint-consent.c,
 * endpoint-logout.c) and the grants that redeem what they hand out
 * (grant-authorization-code.c, grant-refresh-token.c):
 *
 *   authorize: client and redirect_uri checked (else an error page), then
 *     the request (else an error sent to the redirect_uri), kept as a
 *     pending authorization under a single-use handle
 *   -> a browser session that suits it, or the IdP's login (login_start)
 *   -> the callback: the pending authorization taken once, login_finish,
 *      the mapping rules, a browser session
 *   -> consent (remembered, or a page with a CSRF token)
 *   -> an authorization code (60 s, single use, its hash stored), and the
 *      browser sent to the redirect_uri with code, state and iss.
 *
 * Everything the browser hands back (the handle, the session cookie, the
 * code) is a 256-bit secret of which the store keeps only a hash. The
 * pending authorization is bound to the browser that started it by a
 * second cookie, so that nobody can finish a sign-in in someone else's
 * browser (login CSRF). */
#ifndef MANDATE_SIGNIN_PRIVATE_H
#define MANDATE_SIGNIN_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <mandate/backend.h>
#include <mandate/store.h>

#include "form-private.h"
#include "http-private.h"
#include "mapping-private.h"
#include "oauth-private.h"
#include "plugins-private.h"

/* The cookie that binds a pending authorization to its browser:
 * SameSite=None, since a SAML IdP answers with a cross-site POST. */
#define MANDATE_LOGIN_COOKIE "__Host-mandate-login"
/* The prefix of refresh tokens: tells them from access tokens at
 * introspection and revocation. */
#define MANDATE_REFRESH_PREFIX "mrt_"

/* Whether anyone can sign in: a backend instance that offers it. */
bool mandate_signin_available(const mandate_runtime *rt);
/* The backend instances offered for sign-in, in the chooser's order, with
 * their labels (signin.idps, else every instance that signs in). */
size_t mandate_signin_idps(const mandate_runtime *rt, const mandate_instance **instances,
                           const char **labels, size_t max);

/* The client of a sign-in: a registered one (the store) or a Client ID
 * Metadata Document. MANDATE_NOT_FOUND, MANDATE_INVALID (why in err), or
 * MANDATE_TEMPFAIL. With may_set_aside, a document that must be fetched is
 * fetched with the request set aside (mandate_http_set_aside): then
 * MANDATE_TEMPFAIL and mandate_http_request_is_set_aside(req), and the
 * caller returns at once, to be called again with the document fetched;
 * so a caller that may set aside has done nothing before it that it must
 * not do twice. Without, the fetch is made here, on the HTTP worker: for
 * a client the operator named. */
mandate_rc mandate_signin_client(mandate_http_request *req, const char *client_id,
                                 bool may_set_aside, mandate_client *client_r,
                                 mandate_error *err);
/* A string member of a client's registered metadata, or NULL. */
const char *mandate_signin_client_meta(mandate_pool *pool, const mandate_client *client,
                                       const char *name);
/* Whether the client registered uri as a redirect URI: the exact string,
 * or, for a loopback http URI (127.0.0.1, [::1]), any port (RFC 8252 §7.3). */
bool mandate_signin_redirect_ok(mandate_pool *pool, const mandate_client *client,
                                const char *uri);
/* Whether the client's grant_types (its metadata; none: client
 * credentials only) hold grant_type. */
bool mandate_signin_client_grants(mandate_pool *pool, const mandate_client *client,
                                  const char *grant_type);
/* Whether the client may use grant_type at the token endpoint: a client
 * that registered itself (RFC 7591 registration or a client ID metadata
 * document: "registered_by" in its metadata) only for the grant_types it
 * registered; a client an operator made, for any grant its policy allows.
 * false: refused 400 unauthorized_client, answered and audited. */
bool mandate_signin_grant_registered(mandate_http_request *req, mandate_http_response *resp,
                                     const mandate_client *client, const char *grant_type);
/* The client of POST /oauth2/token in a sign-in grant: a public client
 * (token_endpoint_auth_method "none") names itself with client_id alone;
 * any other authenticates as on the other grants. false: *oerr says why
 * (401 invalid_client), or the request was set aside while the client's
 * document is fetched (mandate_http_request_is_set_aside: the caller
 * answers nothing, and has done nothing it must not do twice). */
bool mandate_signin_token_client(mandate_http_request *req, const mandate_form *form,
                                 mandate_client *client_r, mandate_oauth_error *oerr);

/* A pending authorization, between the authorization request and the code. */
typedef struct mandate_pending {
    const char *client_id;
    const char *redirect_uri;
    const char *state;          /* the client's; may be NULL */
    const char *scope;          /* asked; may be NULL */
    const char *resources;      /* asked (RFC 8707), space-separated; may be NULL */
    const char *code_challenge; /* S256 */
    bool force_login, force_consent;
    int64_t max_age;            /* -1: any */
    int64_t started_at;         /* when the authorization request came; 0: unknown */
    const char *login_hint;
    const char *idp;            /* the instance chosen, once chosen */
    const char *remember;       /* the backend's, for login_finish */
    const char *binding;        /* hash (hex) of the login cookie's value */
    const char *session;        /* hash (hex) of the browser session, after login */
    const char *mapped;         /* the mapping's result, after login (JSON text) */
    const char *dpop_jkt;       /* RFC 9449 §10: the code is bound to this key; may be NULL */
    bool prompt_none;           /* prompt=none (kept for a pushed request) */
    const char *idp_hint;       /* kept for a pushed request */
    const char *replaces;       /* hash (hex) of the browser's session a sign-in replaces */
} mandate_pending;

/* The authorization request's parameters in q (RFC 6749 §4.1.1, PKCE,
 * RFC 8707, prompt, max_age, login_hint, idp_hint, dpop_jkt) for client,
 * into p, whose client_id and redirect_uri (checked) are set: what
 * /oauth2/authorize and /oauth2/par share. false: *error_r and
 * *description_r (p->state NULL when it is the fault). */
bool mandate_signin_request_read(mandate_http_request *req, const mandate_form *q,
                                 const mandate_client *client, mandate_pending *p,
                                 const char **error_r, const char **description_r);

/* A pushed authorization request's request_uri (RFC 9126 §2.2) starts
 * with this. */
#define MANDATE_PAR_URN "urn:ietf:params:oauth:request_uri:"


/* Keeps pending under a fresh handle in namespace ns ("authorize",
 * "consent") for signin.pending_lifetime; the handle in *handle_r. */
mandate_rc mandate_signin_pending_put(mandate_http_request *req, const char *ns,
                                      const mandate_pending *pending, const char **handle_r,
                                      mandate_error *err);
/* The write that keeps pending under a new handle for lifetime seconds
 * (*handle_r, its memory the request's), for the caller to make. */
mandate_rc mandate_signin_pending_write(mandate_http_request *req, const char *ns,
                                        const mandate_pending *pending, int64_t lifetime,
                                        const char **handle_r, mandate_store_write *write_r,
                                        mandate_error *err);
/* pending_put for lifetime seconds. */
mandate_rc mandate_signin_pending_put_for(mandate_http_request *req, const char *ns,
                                          const mandate_pending *pending, int64_t lifetime,
                                          const char **handle_r, mandate_error *err);
/* Takes it back, once: MANDATE_NOT_FOUND when unknown, used or expired. */
mandate_rc mandate_signin_pending_take(mandate_http_request *req, const char *ns,
                                       const char *handle, mandate_pending *pending_r,
                                       mandate_error *err);

/* The error of an authorization request sent to its (checked) redirect
 * URI with state and iss (RFC 6749 §4.1.2.1, RFC 9207), audited as
 * authorize.refused with reason. */
void mandate_signin_redirect_error(mandate_http_request *req, mandate_http_response *resp,
                                   const mandate_pending *pending, const char *error,
                                   const char *description, const char *reason);

/* The page of a refusal over its address's budget: 429. */
void mandate_signin_over_budget_page(mandate_http_request *req, mandate_http_response *resp);
/* Whether an authorization request's errors may go to the redirect URI
 * before anyone acted: only for a client an operator registered, not for
 * one that described itself (a client ID metadata document, a
 * registration), whose redirect URI is anyone's choice. */
bool mandate_signin_redirect_at_once(mandate_pool *pool, const mandate_client *client);
/* An error before any user interaction: mandate_signin_redirect_error for
 * a client that may be redirected to at once, else a 400 page (429 over
 * the address's refusal budget), audited alike. */
void mandate_signin_refuse_unattended(mandate_http_request *req, mandate_http_response *resp,
                                      const mandate_pending *pending,
                                      const mandate_client *client, const char *error,
                                      const char *description, const char *reason);

/* The sign-in at instance: login_start, the pending authorization kept, the
 * login cookie set, the browser sent to the IdP. */
void mandate_signin_start_login(mandate_http_request *req, mandate_http_response *resp,
                                mandate_pending *pending, const mandate_instance *instance);

/* The mapping rules applied to an identity vouched for by instance idp,
 * for pending's client (client: as looked up in this request, or NULL to
 * look it up), scopes and resources. false: refused (no rule admits the
 * user: a page; nothing left to grant, another tenant: an error to the
 * client), audited as login.refused. from_session: the browser's session
 * answers, with no login in this request (nobody acted): those errors go
 * as mandate_signin_refuse_unattended's, as under prompt=none. */
bool mandate_signin_map(mandate_http_request *req, mandate_http_response *resp,
                        mandate_pending *pending, const mandate_client *client,
                        const char *idp, const mandate_identity *id, bool from_session,
                        mandate_mapping_result *m_r);

/* The root of a user's sign-ins in the store's lineage: each family hangs
 * below it, each access token below its family, so that ending a user
 * (mandate_signin_end_user) reaches the access tokens too. A hash of
 * (tenant, subject): never a value anyone could present. */
const char *mandate_signin_user_root(mandate_pool *pool, const char *tenant,
                                     const char *subject);

/* The root of what was issued through one browser session in the store's
 * lineage (id_hash_hex: the session's id_hash in hex, as a pending
 * authorization's session holds it): each family redeemed from a code
 * issued in that session hangs below it, so that a logout ends them. A
 * hash: never a value anyone could present. */
const char *mandate_signin_session_root(mandate_pool *pool, const char *id_hash_hex);

/* A logout: what the browser session gave ends with it. Its root marked
 * (a code it issued, redeemed later, is refused), then every family below
 * it and the access tokens issued from them revoked (a refresh of such a
 * family is refused: mandate_signin_family_ended). revocations_r (may be
 * NULL): revocations recorded. The caller audits. */
mandate_rc mandate_signin_end_session_grants(mandate_http_request *req,
                                             const unsigned char id_hash[32],
                                             uint64_t *revocations_r, mandate_error *err);

/* After a sign-in opened a new session for (tenant, subject) in this
 * browser: the sessions it replaces end, the one the authorization request
 * noted (replaces: pending's, may be NULL; a SAML IdP's answer is a
 * cross-site POST, which carries no SameSite=Lax cookie) and the one the
 * callback's cookie names. What applications got through one ends with it
 * when it was another person's; the same person keeps it. Audited as
 * session.ended (reason replaced); a failure is logged (the sign-in
 * stands, and the browser holds the new cookie only). solicited: false
 * for an IdP-initiated sign-in, which nobody in this browser asked for:
 * another person's session is then left as it is, grants and all (the
 * browser holds the new cookie only). */
void mandate_signin_end_replaced(mandate_http_request *req, const char *replaces,
                                 const char *tenant, const char *subject, bool solicited);

/* Ends everything a user's sign-ins gave: their refresh families, the
 * access tokens issued from them (revoked at once, everywhere) and their
 * browser sessions. Counts in the *_r (may be NULL): refresh tokens that
 * were active, revocations recorded (each access token and each family,
 * as the lineage holds them), sessions. The caller audits. */
mandate_rc mandate_signin_end_user(const mandate_instance *store, mandate_pool *pool,
                                   const char *tenant, const char *subject,
                                   uint64_t *refresh_tokens_r, uint64_t *revocations_r,
                                   uint64_t *sessions_r, mandate_error *err);

/* Whether the user was ended (mandate_signin_end_user) while a code issued
 * at issued_at was still redeemable (codes live at most 60 s): *ended_r.
 * A code issued after the revocation (a sign-in made again) is not. */
mandate_rc mandate_signin_user_ended(const mandate_instance *store, mandate_pool *pool,
                                     const char *tenant, const char *subject, int64_t issued_at,
                                     bool *ended_r, mandate_error *err);

/* Who an IdP's user was mapped to at their last sign-in, so that a later
 * sign-in that no rule admits any more (the IdP changed the user's
 * attributes: disabled, moved out of the group) ends what the earlier one
 * left: that user's refresh families and browser sessions (issue 22).
 * Kept as a one-time record under a hash of (idp, issuer, subject) for a
 * refresh family's life; user_record makes the write that replaces it (the
 * caller makes it with the sign-in's other writes, in one transaction),
 * forget takes it and ends the user, audited as user.disabled (its store
 * failures are logged). */
void mandate_signin_user_record(mandate_http_request *req, const char *idp,
                                const mandate_identity *id, const char *tenant,
                                const char *subject, mandate_store_write *write_r);
void mandate_signin_forget_user(mandate_http_request *req, const char *idp,
                                const mandate_identity *id);

/* pending's client as looked up in this request, or false when it is not
 * known (any more): answered with a page. */
bool mandate_signin_known_client(mandate_http_request *req, mandate_http_response *resp,
                                 const char *client_id, mandate_client *client_r);

/* What follows a sign-in whose mapping is made (mandate_signin_next): the
 * code at once (a remembered consent covers the request) or the consent
 * page, whose pending consent (consent_write, under consent_handle) the
 * caller writes first. Its strings and client are the caller's. */
typedef struct mandate_signin_step {
    bool remembered;
    const char *consent_handle;
    mandate_store_write consent_write;
    const mandate_client *client;
    const char *session_value;
    const char *subject, *tenant, *scope, *audience;
} mandate_signin_step;

/* After the mapping rules admitted the user (m, for id and client): the
 * mapped grant and the session kept in pending, the remembered consent
 * looked up, *step_r filled. false: answered already (an error to the
 * client). */
bool mandate_signin_next(mandate_http_request *req, mandate_http_response *resp,
                         mandate_pending *pending, const mandate_client *client,
                         const mandate_identity *id, const mandate_mapping_result *m,
                         const mandate_session *session, const char *session_value,
                         mandate_signin_step *step_r);
/* Once step's pending consent is written (when it is not remembered): the
 * code and the redirect, or the consent page; audited. */
void mandate_signin_answer(mandate_http_request *req, mandate_http_response *resp,
                           const mandate_pending *pending, const mandate_signin_step *step);

/* After the user is known (a fresh login or a suitable session): the
 * mapping rules for this request, then consent (remembered, or the
 * page), then the code. client: pending's, as looked up in this request,
 * or NULL to look it up. session_value is the session cookie's value (for
 * the consent form's CSRF token), identity and idp the session's. */
void mandate_signin_continue(mandate_http_request *req, mandate_http_response *resp,
                             mandate_pending *pending, const mandate_client *client,
                             const mandate_session *session, const char *session_value);

/* The code for an approved pending authorization, and the redirect. */
void mandate_signin_issue_code(mandate_http_request *req, mandate_http_response *resp,
                               const mandate_pending *pending);

/* The browser session of the request's cookie, if alive (not past
 * signin.session_idle since last seen nor its absolute end); its cookie
 * value in *value_r. MANDATE_NOT_FOUND otherwise. */
mandate_rc mandate_signin_session(mandate_http_request *req, mandate_session *session_r,
                                  const char **value_r, mandate_error *err);

/* Whether session may answer client_id's authorization requests: one an
 * IdP-initiated sign-in opened ("idp_initiated" in its identity) only
 * those of the client that sign-in was allowed for; any other. */
bool mandate_signin_session_serves(const mandate_session *session, const char *client_id);

/* A refresh token for a grant just issued from a sign-in (family, client,
 * user, what it may ask for): the token's text; NULL on a store failure
 * (logged). */
const char *mandate_signin_refresh_issue(mandate_http_request *req, const char *family_id,
                                         const mandate_client *client, const char *tenant,
                                         const char *subject, json_t *grant,
                                         int64_t family_expires_at, mandate_error *err);

/* Ends what a sign-in's family issued: its refresh tokens and the access
 * tokens derived from it. count_r (may be NULL): access tokens revoked. */
mandate_rc mandate_signin_end_family(mandate_http_request *req, const char *family_id,
                                     uint64_t *count_r, mandate_error *err);

/* Has the family been ended (a replayed code, a reused refresh token)?
 * Asked after a redemption or rotation has tied its tokens to the family. */
mandate_rc mandate_signin_family_ended(mandate_http_request *req, const char *family_id,
                                       bool *ended_r, mandate_error *err);

#endif
