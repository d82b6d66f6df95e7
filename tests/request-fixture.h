/* Requests for the core's unit tests that call an endpoint or a grant
 * directly, without a server: a mandate_http_request made here, its headers
 * answered by a wrapped mandate_http_request_header, and the audit records
 * the code under test writes caught by a wrapped mandate_audit_event (and
 * made to fail on demand). A program that uses it links with
 * -Wl,--wrap=mandate_http_request_header -Wl,--wrap=mandate_audit_event
 * -Wl,--wrap=RAND_bytes. */
#ifndef MANDATE_TESTS_REQUEST_FIXTURE_H
#define MANDATE_TESTS_REQUEST_FIXTURE_H

#include <jansson.h>

#include "http-private.h"
#include "runtime-fixture.h"

/* The headers of the next requests: name/value pairs, NULL-terminated (the
 * strings must outlive them); NULL: none. Names match without case. */
void test_request_headers(const char *const *pairs);
/* A request from 127.0.0.1, served with rt; body NULL: none. */
void test_request_init(mandate_http_request *req, mandate_pool *pool, mandate_runtime *rt,
                       const char *method, const char *path, const char *body);

/* The audit records written since the last reset (which also disarms
 * test_audit_fail and test_random_fails_next). */
void test_audit_reset(void);
size_t test_audit_count(const char *event);
/* The fields of the last record of event (owned by the fixture); NULL: none. */
json_t *test_audit_last(const char *event);
/* The last record's member as a string ("" when absent or not a string). */
const char *test_audit_field(const char *event, const char *member);
/* The next n records of event are not written: mandate_audit_event
 * answers MANDATE_ERROR, as for a trail that cannot be written. */
void test_audit_fail(const char *event, int n);

/* The next call of RAND_bytes from the core fails (a request's jti, say):
 * RAND_bytes is wrapped too. */
void test_random_fails_next(void);

/* "Basic base64(id:secret)", in pool. */
const char *test_basic(mandate_pool *pool, const char *id, const char *secret);

/* An answer of POST /oauth2/token. */
typedef struct test_answer {
    mandate_http_response resp;
    unsigned status;
    json_t *body;          /* NULL when not JSON */
    const char *error;     /* the body's "error", or "" */
    unsigned metric_grant; /* the request's grant_type label slot */
} test_answer;

/* POST /oauth2/token with the form body (and an Authorization header when
 * authorization is not NULL), through mandate_endpoint_token. a is released
 * first (test_answer_clear), so one answer serves request after request:
 * start it at {0}. */
void test_token(test_runtime *t, mandate_pool *pool, const char *authorization,
                const char *body, test_answer *a);
/* The same with the request headers given (test_request_headers). */
void test_token_with(test_runtime *t, mandate_pool *pool, const char *const *headers,
                     const char *body, test_answer *a);
/* The same for another endpoint (a mandate_endpoint_*), method and path. */
typedef void test_endpoint_fn(mandate_http_request *req, mandate_http_response *resp);
void test_endpoint_with(test_runtime *t, mandate_pool *pool, test_endpoint_fn *endpoint,
                        const char *method, const char *path, const char *const *headers,
                        const char *body, test_answer *a);
/* A response header's value, or NULL. */
const char *test_answer_header(const test_answer *a, const char *name);
/* A member of the answer's body as a string ("" when absent). */
const char *test_answer_get(const test_answer *a, const char *member);
void test_answer_clear(test_answer *a);
/* Fails the test unless the answer is status with that error ("": none). */
void test_answer_expect(const test_answer *a, unsigned status, const char *error);

/* What the teardown of a test on a runtime does: forgets the audit records
 * and frees the pool and the runtime. */
void test_runtime_teardown(test_runtime **t, mandate_pool **pool);

/* The mapping rule of the grant tests' federated users, who sign in at the
 * scripted backend "backend-idp" (tests/plugins/backend-script.c): an
 * advisor becomes advisor-<employeeId>, for audience only. */
#define TEST_ADVISORS_MAPPING(audience)                                                        \
    "mappings = (\n"                                                                           \
    "  { name = \"advisors\"; idp = \"backend-idp\";\n"                                        \
    "    when = ( { attribute = \"role\"; equals = \"advisor\"; } );\n"                        \
    "    subject = \"advisor-${employeeId}\"; tenant = \"default\";\n"                         \
    "    scopes = [\"mcp:call\", \"gateway:invoke\"]; audience = [\"" audience "\"];\n"        \
    "    max_lifetime = 900; }\n"                                                              \
    ");\n"

/* s percent-encoded for a form body, in pool. */
const char *test_form_encode(mandate_pool *pool, const char *s);
/* The form body of a token exchange of a SAML assertion that the scripted
 * test backend (tests/plugins/backend-script.c) reads as script, then extra
 * ("", or more "&name=value"), in pool. */
const char *test_saml_exchange(mandate_pool *pool, const char *script, const char *extra);
/* An assertion for the scripted test backend (tests/plugins/backend-script.c)
 * shaped as a JWT: a header with that typ, the script as its payload. */
const char *test_jwt_script(mandate_pool *pool, const char *typ, const char *script);

#endif
