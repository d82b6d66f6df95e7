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

/* Grows by copying, so that an old buffer holding part of a token response
 * is wiped rather than left behind by realloc. */
static size_t collect(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    body_buf *b = userdata;
    size_t n = size * nmemb;
    if (n > MANDATE_CLIENT_HTTP_MAX_BODY - b->len) {
        b->overflow = true;
        return 0;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *data = malloc(cap);
        if (data == NULL)
            return 0;
        if (b->data != NULL) {
            memcpy(data, b->data, b->len);
            OPENSSL_clear_free(b->data, b->cap);
        }
        b->data = data;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
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

/* --- requests ----------------------------------------------------------------- */

static mandate_client_rc perform(const char *url, const char *authorization, const char *body,
                                 long timeout_ms, mandate_client_http_response *resp_r,
                                 char *errbuf, size_t errlen)
{
    memset(resp_r, 0, sizeof(*resp_r));
    if (!mandate_client_url_ok(url))
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_INVALID,
                                   "URL is not http:// or https://");
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_ERROR,
                                   "curl_global_init failed: %s", curl_easy_strerror(global_rc));
    CURL *curl = curl_easy_init();
    if (curl == NULL)
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_ERROR,
                                   "curl_easy_init failed");

    char curl_err[CURL_ERROR_SIZE] = "";
    struct curl_slist *headers = NULL, *h;
    body_buf buf = {0};
    bool headers_ok = true;
    if ((h = curl_slist_append(headers, "Accept: application/json")) != NULL)
        headers = h;
    else
        headers_ok = false;
    if (authorization != NULL && headers_ok) {
        char *line = NULL;
        size_t n = strlen("Authorization: ") + strlen(authorization) + 1;
        if ((line = malloc(n)) != NULL) {
            snprintf(line, n, "Authorization: %s", authorization);
            h = curl_slist_append(headers, line);
            OPENSSL_clear_free(line, n);
        }
        if (line != NULL && h != NULL)
            headers = h;
        else
            headers_ok = false;
    }
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
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE,
                     (curl_off_t)MANDATE_CLIENT_HTTP_MAX_BODY);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "libmandate/" PACKAGE_VERSION);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &buf);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_err);
    if (body != NULL) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    }

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
    return perform(url, NULL, NULL, timeout_ms, resp_r, errbuf, errlen);
}

mandate_client_rc mandate_client_http_post_form(const char *url, const char *authorization,
                                                const char *body, long timeout_ms,
                                                mandate_client_http_response *resp_r,
                                                char *errbuf, size_t errlen)
{
    return perform(url, authorization, body != NULL ? body : "", timeout_ms, resp_r, errbuf,
                   errlen);
}
