#include "config.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "html-private.h"
#include "jose.h"
#include "log-private.h"
#include "pool-private.h"
#include "refusals-private.h"
#include "runtime-private.h"
#include "web-private.h"

/* The frame of every page. The stylesheet is in the page (no second
 * request, nothing to fetch) and allowed by its hash: the CSP below has no
 * 'unsafe-inline' and no script source at all. Keep STYLE and STYLE_HASH
 * together: tests/test-web checks the hash. */
#define STYLE                                                                                  \
    "body{font-family:system-ui,sans-serif;background:#f4f5f7;color:#1d2330;margin:0}"          \
    "main{max-width:32rem;margin:4rem auto;background:#fff;border-radius:8px;"                 \
    "box-shadow:0 1px 4px rgba(0,0,0,.12);padding:2rem}"                                       \
    "h1{font-size:1.3rem;margin:0 0 1rem}p{line-height:1.45}"                                  \
    ".tenant{color:#5a6275;font-size:.85rem;text-transform:uppercase;letter-spacing:.05em}"     \
    "ul{padding-left:1.2rem}code{background:#eef0f4;padding:0 .25rem;border-radius:3px}"       \
    "button{font-size:1rem;padding:.55rem 1.2rem;border-radius:6px;border:1px solid #2d5bd7;"  \
    "background:#2d5bd7;color:#fff;cursor:pointer;margin:.25rem .5rem .25rem 0}"              \
    "button.secondary{background:#fff;color:#2d5bd7}"                                          \
    ".error{border-left:4px solid #c62828;padding-left:1rem}"                                  \
    "label{display:block;margin:1rem 0}small{color:#5a6275}"

static const char page_template[] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    "<meta name=\"referrer\" content=\"no-referrer\">"
    "<title>{{title}}</title><style>" STYLE "</style></head>\n<body><main>"
    "{{#tenant_name}}<div class=\"tenant\">{{tenant_name}}</div>{{/tenant_name}}"
    "<h1>{{title}}</h1>\n";
static const char page_end[] = "\n</main></body></html>\n";

/* base64 of SHA-256 of STYLE, for the CSP (computed once) */
static char style_hash[64];

static void compute_style_hash(void)
{
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(STYLE, strlen(STYLE), md, &len, EVP_sha256(), NULL);
    EVP_EncodeBlock((unsigned char *)style_hash, md, (int)len);
}

static const char *csp(mandate_pool *pool, const char *form_target)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, compute_style_hash);
    /* form-action holds for the redirects after a form too (Chromium), so
     * a consent form whose answer goes to the client's redirect_uri names
     * that origin */
    char origin[512] = "";
    if (form_target != NULL && strcmp(form_target, MANDATE_WEB_ANY_TARGET) == 0) {
        /* the chooser: its answer redirects to the IdP chosen, whose origin
         * this layer does not know */
        strcpy(origin, " https: http:");
    } else if (form_target != NULL) {
        const char *scheme_end = strstr(form_target, "://");
        if (scheme_end != NULL) {
            const char *host = scheme_end + 3;
            size_t n = strcspn(host, "/?#");
            size_t total = (size_t)(host - form_target) + n;
            if (total < sizeof(origin) - 2) {
                origin[0] = ' ';
                memcpy(origin + 1, form_target, total);
                origin[total + 1] = '\0';
            }
        }
    }
    return mandate_pool_printf(pool,
                               "default-src 'none'; style-src 'sha256-%s'; img-src 'self'; "
                               "form-action 'self'%s; frame-ancestors 'none'; base-uri 'none'",
                               style_hash, origin);
}

static void page_headers(mandate_http_request *req, mandate_http_response *resp,
                         const char *form_target)
{
    mandate_http_response_header(resp, "Content-Security-Policy", csp(req->pool, form_target));
    mandate_http_response_header(resp, "X-Frame-Options", "DENY");
    mandate_http_response_header(resp, "Referrer-Policy", "no-referrer");
    mandate_http_response_header(resp, "X-Content-Type-Options", "nosniff");
    mandate_http_response_header(resp, "Cache-Control", "no-store");
    mandate_http_response_header(resp, "Pragma", "no-cache");
}

void mandate_web_page(mandate_http_request *req, mandate_http_response *resp, unsigned status,
                      const char *title, const char *body_template, json_t *view,
                      const char *form_target)
{
    if (view == NULL)
        view = json_object();
    json_object_set_new(view, "title", json_string(title));
    const char *why = NULL;
    char *head = mandate_html_render(req->pool, page_template, view, &why);
    char *body = head != NULL ? mandate_html_render(req->pool, body_template, view, &why) : NULL;
    json_decref(view);
    if (body == NULL) {
        log_error("page '%s' does not render: %s", title, why ? why : "?");
        resp->status = 500;
        resp->content_type = "text/plain; charset=utf-8";
        resp->body = "The broker cannot show this page.\n";
        resp->body_len = strlen(resp->body);
        page_headers(req, resp, NULL);
        return;
    }
    resp->status = status;
    resp->content_type = "text/html; charset=utf-8";
    resp->body = mandate_pool_printf(req->pool, "%s%s%s", head, body, page_end);
    resp->body_len = strlen(resp->body);
    page_headers(req, resp, form_target);
}

static const char error_template[] = "<div class=\"error\"><p>{{message}}</p></div>"
                                     "<p><small>Request {{request_id}}</small></p>";

void mandate_web_error_page(mandate_http_request *req, mandate_http_response *resp,
                            unsigned status, const char *title, const char *message)
{
    json_t *view = json_pack("{s:s,s:s}", "message", message, "request_id", req->request_id);
    mandate_web_page(req, resp, status, title, error_template, view, NULL);
}

bool mandate_web_refusal_recorded(mandate_http_request *req, mandate_http_response *resp,
                                  const char *event, json_t *fields)
{
    unsigned retry;
    if (mandate_refusal_record(req, event, fields, &retry) != MANDATE_REFUSAL_OVER_BUDGET)
        return true;
    mandate_web_error_page(req, resp, 429, "Too many requests",
                           "Too many refused requests came from your address.");
    return false;
}

void mandate_web_redirect(mandate_http_request *req, mandate_http_response *resp,
                          const char *url)
{
    resp->status = strcmp(req->method, "POST") == 0 ? 303 : 302;
    resp->content_type = NULL;
    resp->body = "";
    resp->body_len = 0;
    mandate_http_response_header(resp, "Location", url);
    mandate_http_response_header(resp, "Cache-Control", "no-store");
    mandate_http_response_header(resp, "Referrer-Policy", "no-referrer");
}

char *mandate_web_url_with(mandate_pool *pool, const char *url, const char *const *pairs)
{
    char *out = mandate_pool_strdup(pool, url);
    char sep = strchr(url, '?') != NULL ? '&' : '?';
    for (size_t i = 0; pairs[i] != NULL && pairs[i + 1] != NULL; i += 2) {
        out = mandate_pool_printf(pool, "%s%c%s=%s", out, sep, pairs[i],
                                  mandate_url_encode(pool, pairs[i + 1]));
        sep = '&';
    }
    return out;
}

const char *mandate_web_cookie(mandate_http_request *req, const char *name)
{
    const char *header = mandate_http_request_header(req, "Cookie");
    size_t name_len = strlen(name);
    for (const char *p = header; p != NULL && *p != '\0';) {
        while (*p == ' ' || *p == ';')
            p++;
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > name_len && strncmp(p, name, name_len) == 0 && p[name_len] == '=')
            return mandate_pool_strndup(req->pool, p + name_len + 1, len - name_len - 1);
        p = end;
    }
    return NULL;
}

void mandate_web_set_session_cookie(mandate_http_request *req, mandate_http_response *resp,
                                    const char *value, int64_t max_age)
{
    mandate_http_response_header(
        resp, "Set-Cookie",
        mandate_pool_printf(req->pool, "%s=%s; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=%lld",
                            MANDATE_SESSION_COOKIE, value != NULL ? value : "",
                            value != NULL ? (long long)max_age : 0LL));
}

mandate_rc mandate_web_query(mandate_http_request *req, const char *const *repeatable,
                             mandate_form *form_r, mandate_error *err)
{
    const char *target = req->raw_target != NULL ? req->raw_target : req->path;
    const char *q = strchr(target, '?');
    if (q == NULL) {
        memset(form_r, 0, sizeof(*form_r));
        return MANDATE_OK;
    }
    q++;
    size_t len = strcspn(q, "#");
    return mandate_form_parse(req->pool, q, len, repeatable, form_r, err);
}

char *mandate_web_secret(mandate_pool *pool)
{
    unsigned char raw[32];
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return NULL;
    char *out = mandate_pool_alloc(pool, mandate_b64url_encoded_len(sizeof(raw)) + 1);
    mandate_b64url_encode(raw, sizeof(raw), out);
    OPENSSL_cleanse(raw, sizeof(raw));
    return out;
}

void mandate_web_hash(const char *secret, unsigned char out[32])
{
    unsigned int len = 0;
    if (EVP_Digest(secret, strlen(secret), out, &len, EVP_sha256(), NULL) != 1)
        memset(out, 0, 32);
}

char *mandate_web_csrf(mandate_http_request *req, const char *session, const char *handle)
{
    const unsigned char *key = mandate_runtime_signin_key(req->runtime);
    unsigned char mac[32];
    unsigned int len = 0;
    /* each part length-prefixed: no two (session, handle) pairs give the
     * same text, whatever characters they hold */
    if (session == NULL)
        session = "";
    char *data = mandate_pool_printf(req->pool, "csrf|%zu:%s|%zu:%s", strlen(session), session,
                                     strlen(handle), handle);
    if (key == NULL ||
        HMAC(EVP_sha256(), key, 32, (const unsigned char *)data, strlen(data), mac, &len) ==
            NULL)
        return NULL;
    char *out = mandate_pool_alloc(req->pool, mandate_b64url_encoded_len(len) + 1);
    mandate_b64url_encode(mac, len, out);
    return out;
}

bool mandate_web_csrf_ok(mandate_http_request *req, const char *session, const char *handle,
                         const char *presented)
{
    if (presented == NULL || handle == NULL)
        return false;
    const char *want = mandate_web_csrf(req, session, handle);
    return want != NULL && strlen(want) == strlen(presented) &&
           CRYPTO_memcmp(want, presented, strlen(want)) == 0;
}
