/* libFuzzer harness: what the sign-in's browser endpoints read besides form
 * bodies (those are mandate_form_parse's, fuzzed by fuzz-form: the consent,
 * logout and chooser forms are read by it as the token endpoint's are):
 * the Cookie header (mandate_web_cookie, core/web.c), the query of a
 * request-target (mandate_web_query), the pages' CSRF tokens
 * (mandate_web_csrf, mandate_web_csrf_ok) and the escaping of the pages'
 * values (mandate_html_escape, mandate_html_render, core/html.c).
 *
 * Input: up to four parts split at FUZZ_SEP ("\n\f\n"), each up to its
 * first NUL (what a header or a target can hold):
 *   0  a Cookie header: the session and login cookies read from it
 *   1  a request-target ("/oauth2/authorize?..."): its query read
 *   2  a CSRF token presented
 *   3  a form's handle, and the text rendered into a page
 *
 * Invariants (abort):
 *   - a cookie's value is what a reading of our own finds: the first
 *     ';'-separated pair (leading spaces skipped) named exactly NAME "=",
 *     its value up to the next ';' (so it holds no ';'), NULL when there is
 *     none;
 *   - a query is the form of the bytes between the first '?' and the first
 *     '#' after it, with the same verdict and parameters as
 *     mandate_form_parse gives them (no '?': an empty form);
 *   - a CSRF token is 43 base64url characters, the same for the same
 *     session and handle and different for another handle; it is
 *     accepted for them, and a token presented is accepted only when it is
 *     that one; no handle or no token: refused;
 *   - the escaped text holds no '<', '>', '"' or '\'', every '&' begins
 *     one of the five entities, no byte under 0x20 but tab and newline, and
 *     unescaping it gives the text without those bytes; a template renders
 *     the text escaped and the text of a list's items the same way.
 * Bounds: 16 KiB in all (headers and targets are bounded far lower by the
 * server). */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "form-private.h"
#include "fuzz-common.h"
#include "html-private.h"
#include "http-private.h"
#include "pool-private.h"
#include "runtime-private.h"
#include "web-private.h"

#define HARNESS_MAX_INPUT (16 * 1024)


FUZZ_WRAP_COOKIE_HEADER

/* The runtime's sign-in key: fixed (there is no runtime here). */
__typeof__(mandate_runtime_signin_key) __wrap_mandate_runtime_signin_key;
const unsigned char *__wrap_mandate_runtime_signin_key(const mandate_runtime *runtime)
{
    (void)runtime;
    static const unsigned char key[32] = "fuzz-web: the sign-in key 32 B.";
    return key;
}

/* --- cookies ----------------------------------------------------------------- */

static const char *reference_cookie(mandate_pool *pool, const char *header, const char *name)
{
    size_t nn = strlen(name);
    const char *p = header;
    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, ';');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        size_t lead = 0;
        while (lead < len && p[lead] == ' ')
            lead++;
        if (len - lead > nn && strncmp(p + lead, name, nn) == 0 && p[lead + nn] == '=')
            return mandate_pool_strndup(pool, p + lead + nn + 1, len - lead - nn - 1);
        p = end != NULL ? end + 1 : NULL;
    }
    return NULL;
}

static const char *check_cookie(mandate_http_request *req, const char *name)
{
    const char *got = mandate_web_cookie(req, name);
    const char *want = reference_cookie(req->pool, fuzz_cookie_header, name);
    if ((got == NULL) != (want == NULL) || (got != NULL && strcmp(got, want) != 0) ||
        (got != NULL && strchr(got, ';') != NULL)) {
        fprintf(stderr, "fuzz-web: cookie %s: got %s, want %s\n", name, got ? got : "(none)",
                want ? want : "(none)");
        abort();
    }
    return got;
}

/* --- the query ----------------------------------------------------------------- */

static void check_query(mandate_http_request *req, const char *target)
{
    static const char *const repeatable[] = {"resource", NULL};
    mandate_form got, want;
    mandate_error e1 = {0}, e2 = {0};
    req->raw_target = target;
    mandate_rc rc = mandate_web_query(req, repeatable, &got, &e1);
    const char *q = strchr(target, '?');
    mandate_rc ref = MANDATE_OK;
    memset(&want, 0, sizeof(want));
    if (q != NULL)
        ref = mandate_form_parse(req->pool, q + 1, strcspn(q + 1, "#"), repeatable, &want, &e2);
    if (rc != ref || (rc != MANDATE_OK && strcmp(e1.message, e2.message) != 0))
        abort();
    if (rc != MANDATE_OK)
        return;
    if (got.count != want.count)
        abort();
    for (size_t i = 0; i < got.count; i++) {
        if (strcmp(got.params[i].name, want.params[i].name) != 0 ||
            got.params[i].value_count != want.params[i].value_count)
            abort();
        for (size_t k = 0; k < got.params[i].value_count; k++)
            if (strcmp(got.params[i].values[k], want.params[i].values[k]) != 0)
                abort();
    }
}

/* --- CSRF tokens ----------------------------------------------------------------- */

static bool b64url(const char *s)
{
    for (; *s != '\0'; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_'))
            return false;
    return true;
}

static void check_csrf(mandate_http_request *req, const char *session, const char *handle,
                       const char *presented)
{
    if (mandate_web_csrf_ok(req, session, NULL, presented) ||
        mandate_web_csrf_ok(req, session, handle, NULL))
        abort();
    const char *token = mandate_web_csrf(req, session, handle);
    if (token == NULL || strlen(token) != 43 || !b64url(token) ||
        strcmp(token, mandate_web_csrf(req, session, handle)) != 0 ||
        !mandate_web_csrf_ok(req, session, handle, token))
        abort();
    const char *other = mandate_pool_printf(req->pool, "%sx", handle);
    if (strcmp(mandate_web_csrf(req, session, other), token) == 0 ||
        mandate_web_csrf_ok(req, session, other, token))
        abort();
    if (mandate_web_csrf_ok(req, session, handle, presented) != (strcmp(presented, token) == 0))
        abort();
}

/* --- pages ------------------------------------------------------------------------ */

/* The text as escaping must give it back: without the bytes it drops. */
static char *kept(const char *text, size_t len)
{
    char *out = malloc(len + 1), *o = out;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c >= 0x20 || c == '\t' || c == '\n')
            *o++ = (char)c;
    }
    *o = '\0';
    return out;
}

/* Unescapes the five entities; NULL when a '&' begins something else or a
 * character that must be escaped is not. */
static char *unescape(const char *s)
{
    static const struct {
        const char *entity;
        char c;
    } entities[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&#39;", '\''}};
    char *out = malloc(strlen(s) + 1), *o = out;
    while (*s != '\0') {
        if (strchr("<>\"'", *s) != NULL || ((unsigned char)*s < 0x20 && *s != '\t' && *s != '\n')) {
            free(out);
            return NULL;
        }
        if (*s != '&') {
            *o++ = *s++;
            continue;
        }
        size_t i;
        for (i = 0; i < 5; i++)
            if (strncmp(s, entities[i].entity, strlen(entities[i].entity)) == 0)
                break;
        if (i == 5) {
            free(out);
            return NULL;
        }
        *o++ = entities[i].c;
        s += strlen(entities[i].entity);
    }
    *o = '\0';
    return out;
}

static void check_html(mandate_pool *pool, const char *text, size_t len)
{
    char *want = kept(text, len);
    const char *escaped = mandate_html_escape(pool, text);
    char *back = unescape(escaped);
    if (back == NULL || strcmp(back, want) != 0)
        abort();
    free(back);

    /* a value, a section and a list; only valid UTF-8 reaches a view */
    json_t *v = json_string(text);
    if (v != NULL) {
        json_t *items = json_array();
        json_array_append_new(items, json_pack("{s:O}", "w", v));
        json_array_append_new(items, json_pack("{s:s}", "w", "second"));
        json_t *view = json_pack("{s:o,s:o,s:b}", "v", v, "l", items, "on", 1);
        const char *why = NULL;
        char *page = mandate_html_render(pool, "<p>{{v}}</p>{{#on}}<ul>{{#l}}<li>{{w}}</li>"
                                               "{{/l}}</ul>{{/on}}{{^l}}none{{/l}}",
                                         view, &why);
        json_decref(view);
        char *expect = mandate_pool_printf(pool, "<p>%s</p><ul><li>%s</li><li>second</li></ul>",
                                           escaped, escaped);
        if (page == NULL || strcmp(page, expect) != 0) {
            fprintf(stderr, "fuzz-web: rendered %s (%s)\n", page ? page : "(null)",
                    why ? why : "");
            abort();
        }
    }
    free(want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > HARNESS_MAX_INPUT)
        return -1;
    fuzz_part parts[4];
    size_t n = fuzz_split(data, size, parts, 4);
    char *text[4] = {NULL};
    for (size_t i = 0; i < 4; i++)
        text[i] = i < n ? fuzz_strndup(parts[i].data, parts[i].len) : fuzz_strndup("", 0);

    mandate_pool *pool = mandate_pool_new();
    mandate_http_request req;
    memset(&req, 0, sizeof(req));
    req.method = "GET";
    req.path = "/";
    req.pool = pool;
    req.body = "";
    fuzz_cookie_header = n > 0 ? text[0] : NULL;

    const char *session = check_cookie(&req, MANDATE_SESSION_COOKIE);
    (void)check_cookie(&req, "__Host-mandate-login");
    check_query(&req, text[1]);
    check_csrf(&req, session, text[3], text[2]);
    check_html(pool, text[3], strlen(text[3]));

    mandate_pool_free(&pool);
    for (size_t i = 0; i < 4; i++)
        free(text[i]);
    return 0;
}
