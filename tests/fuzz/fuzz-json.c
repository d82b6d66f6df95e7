/* libFuzzer harness: JSON from outside, parsed with jansson the way
 * libmandate does (libmandate/verifier.c and token-source.c).
 *
 * Target: the verifier's discovery and key handling (authorization server
 * metadata -> jwks_uri -> JWK set -> keys through mandate_jwk_to_key), the
 * check of a token against those keys (header, signature, claims, audience,
 * scopes), and the token source's reading of a token endpoint response
 * (parse_success for 200, parse_failure otherwise). The network is replaced
 * with -Wl,--wrap of mandate_client_http_get (the JWKS cache's fetches) and
 * mandate_client_http_send (the token source's requests): they answer with
 * parts of the input. A call that reaches the real network would make each
 * input wait on a DNS lookup (this harness once ran 262 inputs in 45 s that
 * way), so every HTTP entry point libmandate calls must be wrapped here.
 *
 * Input: up to four parts split at FUZZ_SEP ("\n\f\n"):
 *   0  the metadata document (GET <issuer>/.well-known/oauth-authorization-server)
 *   1  the JWK set (GET <jwks_uri>)
 *   2  the token handed to mandate_verifier_check
 *   3  the token endpoint's response body; "HTTP nnn\n" in front sets the
 *      status (default 200)
 * The clock is fixed (FUZZ_NOW). A fresh verifier and token source per
 * input: no state carries over. Bounds: 256 KiB, libmandate's body limit. */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mandate/client.h>

#include "fuzz-common.h"
#include "http-client.h"

#define HARNESS_MAX_INPUT MANDATE_CLIENT_HTTP_MAX_BODY
#define ISSUER "https://broker.example.com"
#define AUDIENCE "https://api.example.com"

__typeof__(mandate_client_http_get) __wrap_mandate_client_http_get;
__typeof__(mandate_client_http_send) __wrap_mandate_client_http_send;

static fuzz_part parts[4];
static size_t n_parts;

static void respond(long status, const fuzz_part *part, mandate_client_http_response *resp_r)
{
    resp_r->status = status;
    resp_r->body = fuzz_strndup(part->data, part->len);
    resp_r->len = part->len;
}

mandate_client_rc __wrap_mandate_client_http_get(const char *url, long timeout_ms,
                                                 mandate_client_http_response *resp_r,
                                                 char *errbuf, size_t errlen)
{
    (void)timeout_ms;
    static const char md[] = "/.well-known/oauth-authorization-server";
    size_t ulen = strlen(url);
    size_t which =
        ulen >= sizeof(md) - 1 && strcmp(url + ulen - (sizeof(md) - 1), md) == 0 ? 0 : 1;
    if (which >= n_parts)
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_UNAVAILABLE,
                                   "connection refused");
    respond(200, &parts[which], resp_r);
    return MANDATE_CLIENT_OK;
}

mandate_client_rc __wrap_mandate_client_http_send(const mandate_client_http_request *req,
                                                  mandate_client_http_response *resp_r,
                                                  char *errbuf, size_t errlen)
{
    (void)req;
    if (n_parts < 4)
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_UNAVAILABLE,
                                   "connection refused");
    fuzz_part p = parts[3];
    long status = fuzz_http_status(&p);
    respond(status, &p, resp_r);
    return MANDATE_CLIENT_OK;
}

static int64_t fixed_now(void *ctx)
{
    (void)ctx;
    return FUZZ_NOW;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > HARNESS_MAX_INPUT)
        return -1;
    n_parts = fuzz_split(data, size, parts, 4);
    char errbuf[256];

    mandate_verifier_config vc = {.issuer = ISSUER, .audience = AUDIENCE, .now = fixed_now};
    mandate_verifier *v = mandate_verifier_new(&vc, errbuf, sizeof(errbuf));
    if (v == NULL)
        abort();
    char *token = n_parts > 2 ? fuzz_strndup(parts[2].data, parts[2].len) : strdup("");
    mandate_verified_token out = {0};
    errbuf[0] = '\0';
    mandate_client_rc vrc =
        mandate_verifier_check(v, token, "mcp:call", &out, errbuf, sizeof(errbuf));
    if (fuzz_debug())
        fprintf(stderr, "verifier: %s: %s\n", mandate_client_rc_name(vrc), errbuf);
    if (vrc == MANDATE_CLIENT_OK) {
        if (out.subject == NULL || out.client_id == NULL || out.expires_at <= FUZZ_NOW - 300)
            abort();
        mandate_verified_token_clear(&out);
    }
    free(token);
    mandate_verifier_free(&v);

    mandate_token_source_config tc = {
        .token_url = ISSUER "/oauth2/token",
        .client_id = "fuzz-agent",
        .client_secret = "fuzz-secret",
        .scope = "mcp:call",
        .now = fixed_now,
    };
    mandate_token_source *src = mandate_token_source_new(&tc, errbuf, sizeof(errbuf));
    if (src == NULL)
        abort();
    char *at = NULL;
    int64_t exp = 0;
    errbuf[0] = '\0';
    mandate_client_rc trc = mandate_token_source_get(src, &at, &exp, errbuf, sizeof(errbuf));
    if (fuzz_debug())
        fprintf(stderr, "token source: %s: %s\n", mandate_client_rc_name(trc), errbuf);
    if (trc == MANDATE_CLIENT_OK) {
        if (at == NULL || at[0] == '\0' || exp <= FUZZ_NOW)
            abort();
        free(at);
    }
    mandate_token_source_free(&src);
    return 0;
}
