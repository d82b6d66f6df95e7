/* Backend plugin ABI: turn a presented client credential, or a subject
 * assertion (SAML, JWT), into an identity.
 *
 * The core asks the configured backends in order; MANDATE_NEXT means "not
 * mine". A backend knows nothing of HTTP: the core hands it the parsed
 * credential and the client record it already looked up. */
#ifndef MANDATE_BACKEND_H
#define MANDATE_BACKEND_H

#include <mandate/plugin.h>
#include <mandate/store.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What a client presented at an endpoint. */
typedef struct mandate_credential {
    const char *auth_method;    /* "client_secret_basic", "client_secret_post",
                                   "private_key_jwt" */
    const char *client_id;
    const unsigned char *secret; /* client_secret_*: not NUL-terminated */
    size_t secret_len;
    const char *assertion;      /* private_key_jwt: the client assertion */
    const char *audience;       /* the aud a client assertion must carry */
} mandate_credential;

/* Who was authenticated. Strings come from the request pool. */
typedef struct mandate_identity {
    const char *issuer;       /* the IdP or backend instance */
    const char *subject;
    const char *tenant;       /* NULL: decided by policy */
    const char *attributes;   /* JSON object: SAML attributes, OIDC claims */
    const char *assertion_id; /* for replay and the audit trail; may be NULL */
    int64_t authn_instant;    /* when the IdP authenticated the user; 0: unknown */
    int64_t expires_at;       /* of the assertion; 0: unknown */
    /* ABI 1.6, from login_finish only (the core reads them from a plugin of
     * abi_minor >= 6 and zeroes the struct before the call): what single
     * logout needs of this sign-in. Both may be NULL: no single logout. */
    const char *session_ref;  /* opaque to the core, kept with the browser
                                 session, handed back to logout_start (SAML:
                                 the NameID and the SessionIndex) */
    const char *session_key;  /* the same text as logout_finish gives for an
                                 IdP's request to end this sign-in: the core
                                 finds the session by it */
} mandate_identity;

typedef enum mandate_provision_mode {
    MANDATE_PROVISION_CREATE = 1,
    MANDATE_PROVISION_ROTATE
} mandate_provision_mode;

/* ABI 1.5: the start of a sign-in (mandate_backend_ops.login_start
 * and login_finish, below). */
typedef struct mandate_login_request {
    const char *callback_url; /* where the IdP sends the browser back (the core's route) */
    const char *handle;       /* opaque, single-use, for the IdP to send back (state) */
    const char *login_hint;   /* an e-mail or user name the user typed; may be NULL */
    bool force_login;         /* prompt=login: the IdP must ask again */
    int64_t max_age;          /* seconds the IdP's session may be old; -1: any */
} mandate_login_request;

typedef struct mandate_login_redirect {
    const char *url;          /* send the browser there */
    const char *remember;     /* text the core keeps for login_finish: a PKCE
                                 verifier, a nonce, a request ID; may be NULL */
} mandate_login_redirect;

/* One field of the IdP's answer, from the callback's query or form. */
typedef struct mandate_login_param {
    const char *name;
    const char *value;
} mandate_login_param;

typedef struct mandate_login_response {
    const char *callback_url;
    const mandate_login_param *params;
    size_t param_count;
    const char *remember;     /* from login_start; NULL when the IdP sent the
                                 answer unasked (SAML IdP-initiated) */
    /* ABI 1.10: how the answer came, "GET" (params: the query) or "POST"
     * (params: the form), so that a backend refuses a binding its protocol
     * does not use (a SAML Response in a query is a link anyone can send).
     * Read only when the host's abi_minor is >= 10. */
    const char *method;
} mandate_login_response;

/* ABI 1.6: single logout (mandate_backend_ops.logout_start and
 * logout_finish, below). The core's route for the IdP's messages is the
 * callback's with "logout" in place of "callback" (/login/INSTANCE/logout);
 * login_metadata may publish it so. */
typedef struct mandate_logout_request {
    const char *callback_url; /* /login/INSTANCE/logout: where the IdP answers */
    const char *handle;       /* opaque, single-use, for the IdP to send back (RelayState) */
    const char *session_ref;  /* the ended session's, from login_finish */
} mandate_logout_request;

/* What reached /login/INSTANCE/logout. */
typedef struct mandate_logout_message {
    const char *callback_url;
    const char *raw_query;    /* the query exactly as received (the HTTP-Redirect
                                 binding signs its octets); may be NULL */
    const mandate_login_param *params; /* the query or form, decoded */
    size_t param_count;
    const char *remember;     /* from logout_start, when the message's handle names
                                 a logout the core sent; NULL otherwise */
} mandate_logout_message;

typedef enum mandate_logout_kind {
    MANDATE_LOGOUT_ANSWERED = 1, /* the IdP's answer to our logout_start */
    MANDATE_LOGOUT_ASKED         /* the IdP asks us to end sign-ins (IdP-initiated) */
} mandate_logout_kind;

#define MANDATE_LOGOUT_KEYS_MAX 8

typedef struct mandate_logout_result {
    mandate_logout_kind kind;
    /* MANDATE_LOGOUT_ASKED: the sign-ins to end (as mandate_identity's
     * session_key), and the two answers made in advance: the core sends the
     * browser to done_url when it ended at least one session, else to
     * unknown_url */
    const char *session_keys[MANDATE_LOGOUT_KEYS_MAX];
    size_t key_count;
    const char *subject;      /* who, for the audit trail (the NameID) */
    const char *done_url;
    const char *unknown_url;
} mandate_logout_result;

typedef struct mandate_backend_ops {
    /* Authenticate a client. `client` is the store's record for
     * cred->client_id. MANDATE_OK, MANDATE_NEXT (not this backend's client),
     * MANDATE_DENIED, MANDATE_TEMPFAIL. May be NULL. */
    mandate_rc (*authenticate_client)(void *inst, mandate_pool *pool,
                                      const mandate_credential *cred,
                                      const mandate_client *client,
                                      mandate_error *err);
    /* Token types (RFC 8693 URIs) that validate_assertion accepts;
     * NULL-terminated; NULL: none. */
    const char *const *assertion_types;
    /* Validate a subject assertion; MANDATE_NEXT when it names another
     * issuer. May be NULL. */
    mandate_rc (*validate_assertion)(void *inst, mandate_pool *pool,
                                     const char *token_type, const char *assertion,
                                     size_t len, mandate_identity *identity_r,
                                     mandate_error *err);
    /* Make a new credential for a client (create or rotate). Fills the fields
     * of *client it owns (secret hashes, attributes) and returns the secret to
     * show once in *secret_r, or NULL when there is none. May be NULL. */
    mandate_rc (*provision)(void *inst, mandate_pool *pool, mandate_provision_mode mode,
                            mandate_client *client, char **secret_r,
                            mandate_error *err);

    /* ABI 1.3: the state of what the instance depends on (an upstream
     * provider's keys), for /readyz and the log. Returns one of the
     * MANDATE_BACKEND_STATE_* strings; *detail_r (from pool, may be set to
     * NULL) says why, without secrets. May be NULL: always "ok". It answers
     * from what the instance holds and never waits on the network: /readyz
     * calls it even when every slot of a blocking instance is taken. */
    const char *(*status)(void *inst, mandate_pool *pool, const char **detail_r);

    /* ABI 1.5: a person's sign-in at this backend's IdP, through their
     * browser (OpenID Connect authorization code, SAML Web Browser SSO).
     * The core routes the browser and keeps what login_start asks it to
     * remember, server-side, under the single-use handle it sends to the
     * IdP (state, RelayState); the backend speaks the protocol and never
     * sees HTTP. Read only when the plugin's abi_minor is >= 5; NULL: the
     * instance offers no sign-in. */
    mandate_rc (*login_start)(void *inst, mandate_pool *pool,
                              const mandate_login_request *request,
                              mandate_login_redirect *redirect_r, mandate_error *err);
    /* The IdP's answer at the callback: MANDATE_OK with the identity;
     * MANDATE_DENIED when the IdP refused the sign-in (an error response,
     * a cancelled login: err says why, and the core shows it); MANDATE_INVALID
     * when the answer is forged, tampered, replayed, for another audience
     * or request; MANDATE_TEMPFAIL when the IdP cannot be reached. */
    mandate_rc (*login_finish)(void *inst, mandate_pool *pool,
                               const mandate_login_response *response,
                               mandate_identity *identity_r, mandate_error *err);
    /* What the IdP's administrator needs to trust the broker (a SAML
     * service provider's metadata), in *text_r with its media type; may be
     * NULL: nothing to publish. */
    mandate_rc (*login_metadata)(void *inst, mandate_pool *pool, const char *callback_url,
                                 char **text_r, const char **content_type_r,
                                 mandate_error *err);

    /* ABI 1.6: single logout at the backend's IdP. Read only when the
     * plugin's abi_minor is >= 6; NULL: no single logout (Mandate's own
     * logout still ends its session).
     * logout_start, after the core ended a browser session that came from
     * this instance: where to send the browser so that the IdP ends its own
     * (a SAML LogoutRequest), and what to remember for logout_finish;
     * MANDATE_NOT_FOUND when the IdP offers no logout or the session has no
     * session_ref (the core then just says "signed out"). */
    mandate_rc (*logout_start)(void *inst, mandate_pool *pool,
                               const mandate_logout_request *request,
                               mandate_login_redirect *redirect_r, mandate_error *err);
    /* A message at /login/INSTANCE/logout: the IdP's answer to logout_start
     * (MANDATE_OK; MANDATE_DENIED when the IdP says it could not log out),
     * or the IdP's own request to end sign-ins (MANDATE_OK, kind ASKED).
     * MANDATE_INVALID when the message is forged, tampered, unsigned where
     * a signature is required, for another request or too old. */
    mandate_rc (*logout_finish)(void *inst, mandate_pool *pool,
                                const mandate_logout_message *message,
                                mandate_logout_result *result_r, mandate_error *err);
} mandate_backend_ops;

/* Everything works. */
#define MANDATE_BACKEND_STATE_OK "ok"
/* Upstream unreachable, but what is cached still serves. */
#define MANDATE_BACKEND_STATE_DEGRADED "degraded"
/* Nothing usable: requests that need this instance get 503. */
#define MANDATE_BACKEND_STATE_UNAVAILABLE "unavailable"
/* Not contacted yet (keys are fetched on first use). */
#define MANDATE_BACKEND_STATE_UNKNOWN "unknown"

#ifdef __cplusplus
}
#endif

#endif
