/* libFuzzer harness: the oidc backend (plugins/backend-oidc/oidc.c) with the
 * JWKS cache (lib/jwks-cache.c) under it, linked in and driven with the fake
 * host as tests/test-backend-oidc.c does. The provider's answers come from
 * the input: -Wl,--wrap of mandate_client_http_get answers the discovery URL
 * and the jwks_uri, and of mandate_client_http_post_form the token endpoint
 * of a sign-in.
 *
 * Target: discovery (issuer match, jwks_uri), the JWK set (keys, kids,
 * types, duplicates), the choice of the instance (token type, unverified
 * iss), the header checks (alg allowlist, kid, typ for each kind), the key
 * lookup with its refetch for an unknown kid, the signature, the claim
 * checks (iss, aud, azp, exp/nbf/iat, sub, auth_time; jti, client_id,
 * lifetime and replay for an ID-JAG), and the status op after it. With
 * byte 1 bit 3, a sign-in instead: login_start (the endpoints from
 * discovery), then login_finish with a code, whose token endpoint answers
 * part 2 (its status, its JSON, the id_token in it, then the sign-in's own
 * checks: nonce, auth_time, max_age, a new login). The host's random bytes
 * are zeros, so the nonce is 43 'A's and a seed can carry a good id_token.
 *
 * Input: up to five parts split at FUZZ_SEP ("\n\f\n"):
 *   0  the discovery document (GET ISSUER/.well-known/openid-configuration)
 *   1  the JWK set (GET of any other URL: the jwks_uri)
 *   2  the token, handed over as is (not NUL-terminated); for a sign-in the
 *      token endpoint's answer
 *   3  control bytes (an absent byte 0 is 0, an absent byte 1 is 2):
 *        byte 0, bits 0-1  token type: id_token, jwt, id-jag, saml2 (not ours)
 *                bit 2     accept "id_token jwt id-jag" (default: id_token jwt)
 *                bit 3     jwks_uri = JWKS_URI configured: no discovery
 *                bit 4     authorized_parties = AUD (azp must be it)
 *                bit 5     strict: algorithms "ES256 EdDSA", max_token_size
 *                          1024, clock_skew 0, id_jag_max_lifetime 60
 *                bit 6     the clock moves 11 s at every JWKS fetch (past
 *                          min_refetch_interval: an unknown kid refetches)
 *                bit 7     validate a second time, the clock moved by a
 *                          jump chosen by byte 1 (a replayed ID-JAG, a
 *                          refresh of the keys, keys past jwks_max_age)
 *        byte 1, bits 0-1  that jump: 0, 11, 301 (default) or 86401 s
 *                bit 2     accept "id-jag" only (over bit 2 of byte 0)
 *                bit 3     a sign-in (bits 0-3 of byte 0 do not count; bit
 *                          4: max_age 300 asked, bit 7: a new login asked)
 *   4  the JWK set of the second and later JWKS fetches (absent: part 1)
 * A body "HTTP nnn\n..." (parts 0, 1, 4, and 2 of a sign-in) sets the
 * status (default 200);
 * "HTTP 000\n" is a connection that fails. A part that is absent fails
 * too. The clock starts at FUZZ_NOW, the replay cache is emptied, and a
 * fresh instance is made and destroyed per input: no state carries over.
 * Bounds: 256 KiB, past the plugin's PEEK_MAX (64 KiB), so that both size
 * checks are reached; -max_len in Makefile.am keeps the mutations smaller.
 *
 * Invariants checked (abort): no MANDATE_ERROR (nothing runs out of memory
 * here); an identity only for an accepted token type, with our issuer, a
 * subject, an exp not past, a jti for an ID-JAG, an alg in the allowlist; a
 * replayed ID-JAG is refused; a refusal says why; the status op answers one
 * of the four states with a detail: "unknown" before any use, "ok" after a
 * verification. A sign-in: login_start answers OK or TEMPFAIL; login_finish
 * never DENIED (no error parameter is sent), ERROR only for a token
 * endpoint that refuses the client, an identity only with our issuer, a
 * subject and claims. */
#include "config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mandate/backend.h>

#include "fake-host.h"
#include "fuzz-common.h"
#include "jose.h"
#include "http-client.h"
#include "pool-private.h"

extern const mandate_plugin mandate_plugin_oidc;
#define P (&mandate_plugin_oidc)
#define OPS ((const mandate_backend_ops *)mandate_plugin_oidc.ops)

#define HARNESS_MAX_INPUT MANDATE_CLIENT_HTTP_MAX_BODY
#define ISSUER "https://idp.example.com/tenant"
#define DISCOVERY ISSUER "/.well-known/openid-configuration"
#define JWKS_URI ISSUER "/keys"
#define AUD "api://mandate"
#define AUDIENCES AUD " 0b5c7f3e-client https://mandate.example.com"

#define C_TYPE 0x03
#define C_ACCEPT_JAG 0x04
#define C_FIXED_JWKS 0x08
#define C_AZP 0x10
#define C_STRICT 0x20
#define C_ROTATE 0x40
#define C_TWICE 0x80
#define C_JUMP 0x300
#define C_ONLY_JAG 0x400
#define C_LOGIN 0x800
#define LOGIN_CLIENT AUD
#define CALLBACK "https://mandate.example.com/login/oidc/fuzz/callback"

static const char *const token_types[] = {
    "urn:ietf:params:oauth:token-type:id_token", "urn:ietf:params:oauth:token-type:jwt",
    "urn:ietf:params:oauth:token-type:id-jag", "urn:ietf:params:oauth:token-type:saml2"};

__typeof__(mandate_client_http_get) __wrap_mandate_client_http_get;
__typeof__(mandate_client_http_post_form) __wrap_mandate_client_http_post_form;

static fuzz_part parts[5];
static size_t n_parts;
static unsigned control; /* byte 0, and byte 1 << 8 */
static unsigned jwks_fetches;

static void quiet_log(const mandate_host *host, mandate_log_level level, const char *file,
                      int line, const char *func, const char *fmt, ...) MANDATE_PRINTF(6, 7);
static void quiet_log(const mandate_host *host, mandate_log_level level, const char *file,
                      int line, const char *func, const char *fmt, ...)
{
    (void)host, (void)level, (void)file, (void)line, (void)func;
    if (fuzz_debug()) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "log: ");
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
}

static int64_t now_value = FUZZ_NOW;

static void set_now(int64_t t)
{
    now_value = t;
    fake_host_set_now(t);
}

/* The part a request gets: the discovery URL part 0, anything else (the
 * jwks_uri) part 1, and from the second JWKS fetch on part 4 when present.
 * NULL: the part is absent. */
static const fuzz_part *part_for(const char *url)
{
    if (strcmp(url, DISCOVERY) == 0)
        return n_parts > 0 ? &parts[0] : NULL;
    jwks_fetches++;
    if (control & C_ROTATE)
        set_now(now_value + 11);
    if (jwks_fetches > 1 && n_parts > 4)
        return &parts[4];
    return n_parts > 1 ? &parts[1] : NULL;
}

/* The answer of a part (absent: a refused connection; "HTTP 000": a reset). */
static mandate_client_rc answer(const fuzz_part *part, mandate_client_http_response *resp_r,
                                char *errbuf, size_t errlen)
{
    if (part == NULL)
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_UNAVAILABLE,
                                   "connection refused");
    fuzz_part p = *part;
    long status = fuzz_http_status(&p);
    if (status == 0)
        return mandate_client_fail(errbuf, errlen, MANDATE_CLIENT_UNAVAILABLE,
                                   "connection reset");
    resp_r->status = status;
    resp_r->body = fuzz_strndup(p.data, p.len);
    resp_r->len = p.len;
    return MANDATE_CLIENT_OK;
}

/* The token endpoint of a sign-in: part 2. */
mandate_client_rc __wrap_mandate_client_http_post_form(const char *url,
                                                       const char *authorization,
                                                       const char *body, long timeout_ms,
                                                       mandate_client_http_response *resp_r,
                                                       char *errbuf, size_t errlen)
{
    (void)timeout_ms;
    /* the endpoint from discovery, the code with its verifier, the client
     * authenticated (client_secret_basic) */
    if (url == NULL || resp_r == NULL || !mandate_client_url_ok(url) || body == NULL ||
        strstr(body, "code_verifier=") == NULL || authorization == NULL ||
        strncmp(authorization, "Basic ", 6) != 0 || !(control & C_LOGIN))
        abort();
    memset(resp_r, 0, sizeof(*resp_r));
    if (fuzz_debug())
        fprintf(stderr, "POST %s\n", url);
    return answer(n_parts > 2 ? &parts[2] : NULL, resp_r, errbuf, errlen);
}

mandate_client_rc __wrap_mandate_client_http_get(const char *url, long timeout_ms,
                                                 mandate_client_http_response *resp_r,
                                                 char *errbuf, size_t errlen)
{
    (void)timeout_ms;
    if (url == NULL || resp_r == NULL || !mandate_client_url_ok(url))
        abort(); /* the cache checked its URLs */
    const fuzz_part *part = part_for(url);
    if (fuzz_debug())
        fprintf(stderr, "GET %s\n", url);
    return answer(part, resp_r, errbuf, errlen);
}

/* Zeros: the nonce and the verifier are known, so a seed's id_token can
 * hold the nonce. */
static mandate_rc zero_random(void *buf, size_t len)
{
    memset(buf, 0, len);
    return MANDATE_OK;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    mandate_host *host = fake_host_get();
    host->log = quiet_log;
    host->random = zero_random;
    set_now(FUZZ_NOW);
    return 0;
}

static void *instance(void)
{
    void *inst = calloc(1, P->inst_size);
    if (inst == NULL || fake_conf_defaults(P, inst) != 0 ||
        fake_conf_set(P, inst, "issuer", ISSUER) != 0 ||
        fake_conf_set(P, inst, "audiences", AUDIENCES) != 0 ||
        ((control & (C_ACCEPT_JAG | C_ONLY_JAG)) &&
         fake_conf_set(P, inst, "accept",
                       (control & C_ONLY_JAG) ? "id-jag" : "id_token jwt id-jag") != 0) ||
        ((control & C_FIXED_JWKS) && fake_conf_set(P, inst, "jwks_uri", JWKS_URI) != 0) ||
        ((control & C_LOGIN) && (fake_conf_set(P, inst, "login_client_id", LOGIN_CLIENT) != 0 ||
                                 fake_conf_set(P, inst, "login_client_secret", "s") != 0)) ||
        ((control & C_AZP) && fake_conf_set(P, inst, "authorized_parties", AUD) != 0) ||
        ((control & C_STRICT) && (fake_conf_set(P, inst, "algorithms", "ES256 EdDSA") != 0 ||
                                  fake_conf_set(P, inst, "max_token_size", "1024") != 0 ||
                                  fake_conf_set(P, inst, "clock_skew", "0") != 0 ||
                                  fake_conf_set(P, inst, "id_jag_max_lifetime", "60") != 0)))
        abort();
    mandate_error err = {0};
    if (P->instantiate(inst, fake_host_get(), &err) != MANDATE_OK) {
        fprintf(stderr, "fuzz-oidc: instantiate: %s\n", err.message);
        abort();
    }
    return inst;
}

/* Whether the instance takes the token type. */
static bool accepted(unsigned type)
{
    if (control & C_ONLY_JAG)
        return type == 2;
    return type < 2 || (type == 2 && (control & C_ACCEPT_JAG));
}

static mandate_rc validate(void *inst, const char *token, size_t len, unsigned type)
{
    mandate_pool *pool = mandate_pool_new();
    mandate_identity id = {0};
    mandate_error err = {0};
    mandate_rc rc =
        OPS->validate_assertion(inst, pool, token_types[type], token, len, &id, &err);
    if (fuzz_debug())
        fprintf(stderr, "oidc: %s: rc %d: %s\n", token_types[type], (int)rc, err.message);
    switch (rc) {
    case MANDATE_OK: {
        int64_t skew = (control & C_STRICT) ? 0 : 60;
        if (!accepted(type) || id.issuer == NULL || strcmp(id.issuer, ISSUER) != 0 ||
            id.subject == NULL || id.subject[0] == '\0' || id.attributes == NULL ||
            id.expires_at <= now_value - skew || (type == 2 && id.assertion_id == NULL))
            abort();
        mandate_jws jws;
        mandate_error jerr = {0};
        if (mandate_jws_parse(token, len, &jws, &jerr) != MANDATE_OK)
            abort();
        if (jws.alg == MANDATE_JWS_NONE ||
            ((control & C_STRICT) && jws.alg == MANDATE_JWS_RS256))
            abort();
        mandate_jws_clear(&jws);
        break;
    }
    case MANDATE_NEXT: break;
    case MANDATE_DENIED:
    case MANDATE_TEMPFAIL:
        if (err.message[0] == '\0')
            abort();
        break;
    default: abort();
    }
    mandate_pool_free(&pool);
    return rc;
}

static const char *status(void *inst)
{
    mandate_pool *pool = mandate_pool_new();
    const char *detail = NULL;
    const char *state = OPS->status(inst, pool, &detail);
    if (fuzz_debug())
        fprintf(stderr, "status: %s: %s\n", state, detail != NULL ? detail : "(null)");
    if (detail == NULL)
        abort();
    const char *known[] = {MANDATE_BACKEND_STATE_OK, MANDATE_BACKEND_STATE_DEGRADED,
                           MANDATE_BACKEND_STATE_UNAVAILABLE, MANDATE_BACKEND_STATE_UNKNOWN};
    const char *r = NULL;
    for (size_t i = 0; i < 4; i++)
        if (state != NULL && strcmp(state, known[i]) == 0)
            r = known[i];
    if (r == NULL)
        abort();
    mandate_pool_free(&pool);
    return r;
}

/* Validate the token, and with C_TWICE once more after the jump. */
static void validate_twice(void *inst, const char *token, size_t len, unsigned type,
                           int64_t jump)
{
    mandate_rc rc = validate(inst, token, len, type);
    const char *st = status(inst);
    if (rc == MANDATE_OK && strcmp(st, MANDATE_BACKEND_STATE_OK) != 0)
        abort();
    if (control & C_TWICE) {
        set_now(now_value + jump);
        mandate_rc rc2 = validate(inst, token, len, type);
        if (rc == MANDATE_OK && rc2 == MANDATE_OK && type == 2)
            abort(); /* an ID-JAG is used once */
        (void)status(inst);
    }
}

/* A sign-in: start it, then finish it with a code (part 2 answers it). */
static void sign_in(void *inst)
{
    mandate_pool *pool = mandate_pool_new();
    mandate_login_request req = {.callback_url = CALLBACK,
                                 .handle = "fuzz-handle",
                                 .login_hint = "ada@example.com",
                                 .force_login = (control & C_TWICE) != 0,
                                 .max_age = (control & C_AZP) ? 300 : -1};
    mandate_login_redirect redirect = {0};
    mandate_error err = {0};
    mandate_rc rc = OPS->login_start(inst, pool, &req, &redirect, &err);
    if (fuzz_debug())
        fprintf(stderr, "login_start: rc %d: %s\n", (int)rc,
                rc == MANDATE_OK ? redirect.url : err.message);
    if (rc == MANDATE_OK) {
        if (redirect.url == NULL || redirect.remember == NULL)
            abort();
        mandate_login_param params[] = {{"code", "fuzz-code"}, {"state", "fuzz-handle"}};
        mandate_login_response resp = {.callback_url = CALLBACK,
                                       .params = params,
                                       .param_count = 2,
                                       .remember = redirect.remember};
        mandate_identity id = {0};
        err = (mandate_error){0};
        rc = OPS->login_finish(inst, pool, &resp, &id, &err);
        if (fuzz_debug())
            fprintf(stderr, "login_finish: rc %d: %s\n", (int)rc, err.message);
        if (rc == MANDATE_OK &&
            (id.issuer == NULL || strcmp(id.issuer, ISSUER) != 0 || id.subject == NULL ||
             id.subject[0] == '\0' || id.attributes == NULL))
            abort();
        if (rc != MANDATE_OK && (err.message[0] == '\0' || id.subject != NULL))
            abort();
        if (rc == MANDATE_DENIED || rc == MANDATE_NEXT ||
            (rc == MANDATE_ERROR && strstr(err.message, "refused Mandate's client") == NULL))
            abort();
    } else if (rc != MANDATE_TEMPFAIL) {
        abort();
    }
    mandate_pool_free(&pool);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > HARNESS_MAX_INPUT)
        return -1;
    n_parts = fuzz_split(data, size, parts, 5);
    const fuzz_part *cp = n_parts > 3 ? &parts[3] : NULL;
    control = cp != NULL && cp->len > 0 ? (unsigned char)cp->data[0] : 0;
    control |= (cp != NULL && cp->len > 1 ? (unsigned char)cp->data[1] : 2) << 8;
    static const int64_t jumps[] = {0, 11, 301, 86401};
    int64_t jump = jumps[(control & C_JUMP) >> 8];
    unsigned type = control & C_TYPE;
    jwks_fetches = 0;
    set_now(FUZZ_NOW);
    fake_host_replay_reset();

    /* the token as the core hands it over: exactly len bytes */
    size_t len = n_parts > 2 ? parts[2].len : 0;
    char *token = malloc(len > 0 ? len : 1);
    if (token == NULL)
        abort();
    if (len > 0)
        memcpy(token, parts[2].data, len);

    void *inst = instance();
    if (strcmp(status(inst), MANDATE_BACKEND_STATE_UNKNOWN) != 0)
        abort(); /* nothing is fetched before the first use */
    if (control & C_LOGIN)
        sign_in(inst);
    else
        validate_twice(inst, token, len, type, jump);

    P->destroy(inst);
    fake_conf_free(P, inst);
    free(inst);
    free(token);
    fake_host_replay_reset();
    return 0;
}
