/* What the broker's browser-facing endpoints share (the authorization
 * endpoint, the IdP callbacks, consent, logout): pages with the headers a
 * bank's security team checks for, redirects, the session cookie, CSRF
 * tokens, single-use handles, and the query string read as strictly as a
 * form body. */
#ifndef MANDATE_WEB_PRIVATE_H
#define MANDATE_WEB_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "form-private.h"
#include "http-private.h"

/* The session cookie: __Host- so that no subdomain can set or read it
 * (Secure, Path=/, no Domain: RFC 6265bis), HttpOnly, SameSite=Lax (the
 * IdP's redirect back is a top-level GET, which Lax lets through). */
#define MANDATE_SESSION_COOKIE "__Host-mandate-session"

/* A page: status, the template rendered with view (stolen), and the
 * headers: Content-Security-Policy (no script at all, styles from the
 * page's own <style> by hash only... see web.c, frame-ancestors 'none',
 * form-action 'self' plus form_target's origin when the page's form or
 * its answer leads there; MANDATE_WEB_ANY_TARGET: any http(s) origin, for
 * a form whose answer redirects to an IdP), X-Frame-Options DENY, Referrer-Policy
 * no-referrer, Cache-Control no-store, X-Content-Type-Options nosniff. A
 * template that does not render is a 500 with a plain message. */
#define MANDATE_WEB_ANY_TARGET "*"
void mandate_web_page(mandate_http_request *req, mandate_http_response *resp, unsigned status,
                      const char *title, const char *body_template, json_t *view,
                      const char *form_target);
/* The error page: what went wrong, for a person; never redirected to a
 * client (used when the client or its redirect_uri is not known good). */
void mandate_web_error_page(mandate_http_request *req, mandate_http_response *resp,
                            unsigned status, const char *title, const char *message);
/* The audit record of a refused browser request (fields: stolen); false
 * when the address is over its refusal budget and the 429 page is
 * answered. */
bool mandate_web_refusal_recorded(mandate_http_request *req, mandate_http_response *resp,
                                  const char *event, json_t *fields);
/* 303 See Other to url (after a form) or 302 Found (after a GET). */
void mandate_web_redirect(mandate_http_request *req, mandate_http_response *resp,
                          const char *url);
/* url with name=value pairs added to its query (values percent-encoded);
 * names and values NULL-terminated and paired. */
char *mandate_web_url_with(mandate_pool *pool, const char *url, const char *const *pairs);

/* A cookie's value from the Cookie header; NULL when absent. */
const char *mandate_web_cookie(mandate_http_request *req, const char *name);
/* Set-Cookie for the session: value for max_age seconds; NULL value: clear it. */
void mandate_web_set_session_cookie(mandate_http_request *req, mandate_http_response *resp,
                                    const char *value, int64_t max_age);

/* The request's query string, parsed as strictly as a form body (a name
 * twice is refused unless repeatable; bad escapes, bad UTF-8, control
 * characters). MANDATE_INVALID with a reason fit for a page. */
mandate_rc mandate_web_query(mandate_http_request *req, const char *const *repeatable,
                             mandate_form *form_r, mandate_error *err);

/* A fresh random secret: 32 bytes, base64url (43 characters). */
char *mandate_web_secret(mandate_pool *pool);
/* SHA-256 of a secret the browser or a client holds: what the store keys. */
void mandate_web_hash(const char *secret, unsigned char out[32]);
/* The CSRF token of a form bound to the session and to the form's handle:
 * HMAC-SHA256 under the runtime's sign-in key, base64url. Checked in
 * constant time. */
char *mandate_web_csrf(mandate_http_request *req, const char *session, const char *handle);
bool mandate_web_csrf_ok(mandate_http_request *req, const char *session, const char *handle,
                         const char *presented);

#endif
