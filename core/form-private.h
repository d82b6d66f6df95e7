/* application/x-www-form-urlencoded bodies and HTTP Basic credentials, as
 * OAuth 2.0 uses them (RFC 6749 §2.3.1, §3.1, Appendix B). */
#ifndef MANDATE_FORM_PRIVATE_H
#define MANDATE_FORM_PRIVATE_H

#include <mandate/plugin.h>

#define MANDATE_FORM_MAX_PARAMS 32
#define MANDATE_FORM_MAX_VALUES 8 /* of a parameter that may repeat */

typedef struct mandate_form_param {
    const char *name;
    const char *values[MANDATE_FORM_MAX_VALUES];
    size_t value_count;
} mandate_form_param;

typedef struct mandate_form {
    mandate_form_param params[MANDATE_FORM_MAX_PARAMS];
    size_t count;
} mandate_form;

/* Parse a form body into pool memory. Refused with MANDATE_INVALID and a
 * message fit for error_description: a parameter given twice (unless named
 * in `repeatable`, NULL-terminated, e.g. RFC 8707 resource), too many
 * parameters, bad percent-encoding, invalid UTF-8, control characters. A
 * parameter without a value counts as absent (RFC 6749 §3.1). */
/* Whether a Content-Type names a form (parameters after ';' allowed). */
bool mandate_form_content_type_ok(const char *ct);

mandate_rc mandate_form_parse(mandate_pool *pool, const char *body, size_t len,
                              const char *const *repeatable, mandate_form *form_r,
                              mandate_error *err);
/* The value, or NULL when absent. */
const char *mandate_form_get(const mandate_form *form, const char *name);
const mandate_form_param *mandate_form_find(const mandate_form *form, const char *name);

/* Percent-decode (with '+' as space when plus_is_space); MANDATE_INVALID on a
 * bad escape, invalid UTF-8 or a control character. */
mandate_rc mandate_url_decode(mandate_pool *pool, const char *s, size_t len,
                              bool plus_is_space, char **out_r, mandate_error *err);

/* Percent-encode everything but RFC 3986 unreserved characters, into pool
 * memory: for a value in a query string or a form. */
char *mandate_url_encode(mandate_pool *pool, const char *s);

/* "Basic <base64(urlencode(id):urlencode(secret))>" into its two parts;
 * MANDATE_NEXT when the header is not Basic, MANDATE_INVALID when malformed. */
mandate_rc mandate_basic_auth_parse(mandate_pool *pool, const char *header, char **id_r,
                                    char **secret_r, mandate_error *err);

#endif
