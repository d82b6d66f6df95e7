/* The HTTP client of libmandate and the oidc backend: a thin libcurl wrapper
 * for the token source and the JWKS cache. Each request has its own easy
 * handle, so nothing is shared between threads but curl_global_init, run
 * once. Only http and https, no redirects, a bounded body, a timeout, and
 * no signals (SIGALRM for DNS timeouts is not thread-safe). */
#include "config.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "http-client.h"
#include "wiped-buffer.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

mandate_client_rc mandate_client_fail(char *errbuf, size_t errlen, mandate_client_rc rc,
                                      const char *fmt, ...)
{
    if (errbuf != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

int64_t mandate_client_real_now(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

bool mandate_client_url_ok(const char *url)
{
    size_t skip;
    if (url == NULL)
        return false;
    if (strncasecmp(url, "http://", 7) == 0)
        skip = 7;
    else if (strncasecmp(url, "https://", 8) == 0)
        skip = 8;
    else
        return false;
    if (url[skip] == '\0' || url[skip] == '/')
        return false;
    for (const char *p = url; *p != '\0'; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return false;
    return true;
}

/* --- the body ----------------------------------------------------------------- */

typedef struct body_buf {
    char *data;
    size_t len, cap;
    bool overflow;
} body_buf;

/* Grows by copying (wiped-buffer.h), so that an old buffer holding part of
 * a token response is wiped rather than left behind by realloc. */
static size_t collect(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    body_buf *b = userdata;
    size_t n = size * nmemb;
    if (n > MANDATE_CLIENT_HTTP_MAX_BODY - b->len) {
        b->overflow = true;
        return 0;
    }
    if (!mandate_wiped_append(&b->data, &b->len, &b->cap, ptr, n))
        return 0;
    return n;
}

void mandate_client_http_response_clear(mandate_client_http_response *resp)
{
    if (resp == NULL)
        return;
    if (resp->body != NULL)
        OPENSSL_clear_free(resp->body, resp->len + 1);
    memset(resp, 0, sizeof(*resp));
}

/* --- response headers ----------------------------------------------------------- */

/* The two headers DPoP needs from an answer (RFC 9449 §8, §9): DPoP-Nonce,
 * kept when it is short and printable, and whether a WWW-Authenticate names
 * use_dpop_nonce. Every other header is ignored. */
static size_t header_line(char *line, size_t size, size_t nmemb, void *userdata)
{
    mandate_client_http_response *r = userdata;
    size_t n = size * nmemb;
    static const char nonce[] = "DPoP-Nonce:", challenge[] = "WWW-Authenticate:";
    if (n > strlen(nonce) && strncasecmp(line, nonce, strlen(nonce)) == 0) {
        const char *v = line + strlen(nonce), *end = line + n;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
            end--;
        size_t len = (size_t)(end - v);
        bool printable = len > 0 && len <= MANDATE_CLIENT_HTTP_NONCE_MAX;
        for (const char *c = v; printable && c < end; c++)
            printable = *c > 0x20 && *c < 0x7f;
        if (printable) {
            memcpy(r->dpop_nonce, v, len);
            r->dpop_nonce[len] = '\0';
        }
    } else if (n > strlen(challenge) && strncasecmp(line, challenge, strlen(challenge)) == 0) {
        static const char needle[] = "use_dpop_nonce";
        for (size_t i = strlen(challenge); i + strlen(needle) <= n; i++)
            if (memcmp(line + i, needle, strlen(needle)) == 0) {
                r->use_dpop_nonce = true;
                break;
            }
    }
    return n;
}

/* --- requests ----------------------------------------------------------------- */

/* "Name: value" appended to *headers; a line holding a credential is wiped
 * before it is freed. false when out of memory. */
static bool add_header(struct curl_slist **headers, const char *name, const char *value)
{
    size_t n = strlen(name) + 2 + strlen(value) + 1;
    char *line = malloc(n);
    if (line == NULL)
        return false;
    snprintf(line, n, "%s: %s", name, value);
    struct curl_slist *h = curl_slist_append(*headers, line);
    OPENSSL_clear_free(line, n);
    if (h == NULL)
        return false;
    *headers = h;
    return true;
}

mandate_client_rc mandate_client_http_send(const mandate_client_http_request *req,
                                           mandate_client_http_response *resp_r, char *errbuf,
                                           size_t errlen)
{
    memset(resp_r, 0, sizeof(*resp_r));
    const char *url = req->url;
    if (!mandate_client_url_ok(url))
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_INVALID,
                                   "URL is not http:// or https://");
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_ERROR,
                                   "curl_global_init failed: %s",
                                   curl_easy_strerror(global_rc));
    CURL *curl = curl_easy_init();
    if (curl == NULL)
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_ERROR,
                                   "curl_easy_init failed");

    char curl_err[CURL_ERROR_SIZE] = "";
    struct curl_slist *headers = NULL, *h;
    body_buf buf = {0};
    bool headers_ok = add_header(&headers, "Accept", "application/json");
    if (headers_ok && req->authorization != NULL)
        headers_ok = add_header(&headers, "Authorization", req->authorization);
    if (headers_ok && req->dpop != NULL)
        headers_ok = add_header(&headers, "DPoP", req->dpop);
    if (headers_ok && req->body != NULL)
        headers_ok =
            add_header(&headers, "Content-Type",
                       req->content_type != NULL ? req->content_type
                                                 : "application/x-www-form-urlencoded");
    if (!headers_ok) {
        curl_slist_free_all(headers);
        curl_easy_cleanup(curl);
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_ERROR, "out of memory");
    }

    curl_easy_setopt(curl, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, req->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, req->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)MANDATE_CLIENT_HTTP_MAX_BODY);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "libmandate/" PACKAGE_VERSION);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &buf);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, header_line);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, resp_r);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_err);
    if (req->tls_client_cert != NULL) {
        curl_easy_setopt(curl, CURLOPT_SSLCERT, req->tls_client_cert);
        curl_easy_setopt(curl, CURLOPT_SSLCERTTYPE, "PEM");
    }
    if (req->tls_client_key != NULL) {
        curl_easy_setopt(curl, CURLOPT_SSLKEY, req->tls_client_key);
        curl_easy_setopt(curl, CURLOPT_SSLKEYTYPE, "PEM");
    }
    if (req->tls_ca_file != NULL)
        curl_easy_setopt(curl, CURLOPT_CAINFO, req->tls_ca_file);
    if (req->body != NULL) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(req->body));
    }
    if (req->method != NULL)
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method);

    CURLcode cc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(curl);
    /* the header list holds the credentials: wipe it */
    for (h = headers; h != NULL; h = h->next)
        OPENSSL_cleanse(h->data, strlen(h->data));
    curl_slist_free_all(headers);

    if (cc != CURLE_OK) {
        if (buf.data != NULL)
            OPENSSL_clear_free(buf.data, buf.cap);
        memset(resp_r, 0, sizeof(*resp_r));
        if (buf.overflow || cc == CURLE_FILESIZE_EXCEEDED)
            return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_UNAVAILABLE,
                                       "response body over %d bytes",
                                       MANDATE_CLIENT_HTTP_MAX_BODY);
        if (cc == CURLE_OUT_OF_MEMORY || cc == CURLE_WRITE_ERROR)
            return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_ERROR, "out of memory");
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_UNAVAILABLE, "%s",
                                   curl_err[0] ? curl_err : curl_easy_strerror(cc));
    }
    if (buf.data == NULL) {
        buf.data = calloc(1, 1);
        buf.cap = 1;
        if (buf.data == NULL)
            return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_ERROR, "out of memory");
    }
    /* only the first len + 1 bytes ever held data: clearing those is enough */
    resp_r->status = status;
    resp_r->body = buf.data;
    resp_r->len = buf.len;
    return MANDATE_CLIENT_OK;
}

mandate_client_rc mandate_client_http_get(const char *url, long timeout_ms,
                                          mandate_client_http_response *resp_r, char *errbuf,
                                          size_t errlen)
{
    mandate_client_http_request req = {.url = url, .timeout_ms = timeout_ms};
    return mandate_client_http_send(&req, resp_r, errbuf, errlen);
}

mandate_client_rc mandate_client_http_post_form(const char *url, const char *authorization,
                                                const char *body, long timeout_ms,
                                                mandate_client_http_response *resp_r,
                                                char *errbuf, size_t errlen)
{
    mandate_client_http_request req = {.url = url,
                                       .authorization = authorization,
                                       .body = body != NULL ? body : "",
                                       .timeout_ms = timeout_ms};
    return mandate_client_http_send(&req, resp_r, errbuf, errlen);
}
