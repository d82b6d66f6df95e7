/* Run by tests/e2e/libmandate.sh against the real daemon, through the
 * public API only (linked with libmandate.so, nothing else of the tree):
 * get a token with mandate_token_source, check it with mandate_verifier,
 * then rotate the broker's keys with the command given after "--" and check
 * that a token under the new key verifies (an unknown kid: one refetch).
 *
 * Usage: libmandate-probe TOKEN_URL CLIENT_ID ISSUER AUDIENCE -- CMD...
 * The secret comes from $MANDATE_CLIENT_SECRET. Prints "ok: ..." and
 * "FAIL: ..." lines; exits 0 when nothing failed.
 *
 *   libmandate-probe dpop KEY_FILE TOKEN_URL CLIENT_ID METHOD URI [NONCE]
 * (tests/e2e/libmandate-dpop.sh): loads the proof key, gets a DPoP-bound
 * token (the broker may ask for a nonce first) and prints what an agent
 * would send for METHOD URI, one "name=value" a line: type, fetches, jkt,
 * authorization, dpop.
 *
 * Without arguments (make check runs every check program) it needs no
 * network: it checks that a program linked with libmandate alone runs, and
 * that the library refuses a bad configuration and never touches the
 * network before its first use. */
#include "config.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mandate/client.h>

static int failures;

static void expect(bool ok, const char *what, const char *detail)
{
    if (ok) {
        printf("ok: %s\n", what);
    } else {
        printf("FAIL: %s%s%s\n", what, detail && detail[0] ? ": " : "", detail ? detail : "");
        failures++;
    }
    fflush(stdout);
}

/* Clocks: the real one plus an offset the probe moves forward. */
static _Atomic int64_t source_skew, verifier_skew;

static int64_t skewed_now(void *ctx)
{
    return (int64_t)time(NULL) + atomic_load((_Atomic int64_t *)ctx);
}

static int run(char **argv)
{
    pid_t pid = fork();
    if (pid == 0) {
        execvp(argv[0], argv);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static size_t header_len(const char *token)
{
    const char *dot = strchr(token, '.');
    return dot ? (size_t)(dot - token) : strlen(token);
}

static int standalone(void)
{
    char err[256] = "";
    mandate_token_source_config bad = {
        .token_url = "file:///etc/passwd", .client_id = "a", .client_secret = "b"};
    expect(mandate_token_source_new(&bad, err, sizeof(err)) == NULL && err[0] != '\0',
           "a file: token URL is refused", NULL);
    /* port 9 (discard) on loopback: nothing is sent until a get or a check */
    mandate_token_source_config scfg = {
        .token_url = "http://127.0.0.1:9/oauth2/token", .client_id = "a", .client_secret = "b"};
    mandate_token_source *src = mandate_token_source_new(&scfg, err, sizeof(err));
    mandate_verifier_config vcfg = {.issuer = "http://127.0.0.1:9", .audience = "x"};
    mandate_verifier *ver = mandate_verifier_new(&vcfg, err, sizeof(err));
    expect(src != NULL && ver != NULL, "a source and a verifier", err);
    expect(mandate_token_source_fetches(src) == 0 && mandate_verifier_jwks_fetches(ver) == 0,
           "nothing fetched before first use", NULL);
    expect(mandate_verifier_check(ver, "not-a-jwt", NULL, NULL, err, sizeof(err)) ==
               MANDATE_CLIENT_TOKEN_INVALID,
           "a malformed token is refused before any fetch", err);
    expect(strcmp(mandate_client_rc_name(MANDATE_CLIENT_UNAVAILABLE), "unavailable") == 0,
           "rc names", NULL);
    mandate_verifier_free(&ver);
    mandate_token_source_free(&src);
    return failures == 0 ? 0 : 1;
}

/* Says how the probe is called (with the secret in the environment);
 * returns the exit status of a wrong call. */
static int usage(const char *argv0, const char *args)
{
    fprintf(stderr, "usage: MANDATE_CLIENT_SECRET=... %s %s\n", argv0, args);
    return 2;
}

static int dpop(int argc, char **argv, const char *secret)
{
    if (argc < 7 || argc > 8 || secret == NULL)
        return usage(argv[0], "dpop KEY_FILE TOKEN_URL CLIENT_ID METHOD URI [NONCE]");
    char err[256] = "";
    mandate_dpop_key *key = mandate_dpop_key_load(argv[2], err, sizeof(err));
    if (key == NULL) {
        printf("FAIL: key: %s\n", err);
        return 1;
    }
    mandate_token_source_config cfg = {.token_url = argv[3],
                                       .client_id = argv[4],
                                       .client_secret = secret,
                                       .scope = "mcp:call",
                                       .dpop_key = key};
    mandate_token_source *src = mandate_token_source_new(&cfg, err, sizeof(err));
    char *authorization = NULL, *proof = NULL;
    mandate_client_rc rc =
        src != NULL
            ? mandate_token_source_headers(src, argv[5], argv[6], argc == 8 ? argv[7] : NULL,
                                           &authorization, &proof, err, sizeof(err))
            : MANDATE_CLIENT_INVALID;
    if (rc == MANDATE_CLIENT_OK)
        printf("type=%s\nfetches=%llu\njkt=%s\nauthorization=%s\ndpop=%s\n",
               mandate_token_source_token_type(src),
               (unsigned long long)mandate_token_source_fetches(src),
               mandate_dpop_key_thumbprint(key), authorization, proof ? proof : "");
    else
        printf("FAIL: %s: %s\n", mandate_client_rc_name(rc), err);
    free(authorization);
    free(proof);
    mandate_token_source_free(&src);
    mandate_dpop_key_free(&key);
    return rc == MANDATE_CLIENT_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    const char *secret = getenv("MANDATE_CLIENT_SECRET");
    if (argc == 1)
        return standalone();
    if (strcmp(argv[1], "dpop") == 0)
        return dpop(argc, argv, secret);
    if (argc < 7 || strcmp(argv[5], "--") != 0 || secret == NULL)
        return usage(argv[0], "TOKEN_URL CLIENT_ID ISSUER AUDIENCE -- CMD...");
    char err[256] = "";
    mandate_token_source_config scfg = {.token_url = argv[1],
                                        .client_id = argv[2],
                                        .client_secret = secret,
                                        .scope = "mcp:call gateway:invoke",
                                        .now = skewed_now,
                                        .now_ctx = &source_skew};
    mandate_token_source *src = mandate_token_source_new(&scfg, err, sizeof(err));
    /* a refetch for an unknown kid at most once a second */
    mandate_verifier_config vcfg = {.issuer = argv[3],
                                    .audience = argv[4],
                                    .min_refetch_interval = 1,
                                    .now = skewed_now,
                                    .now_ctx = &verifier_skew};
    mandate_verifier *ver = src ? mandate_verifier_new(&vcfg, err, sizeof(err)) : NULL;
    if (src == NULL || ver == NULL) {
        printf("FAIL: setup: %s\n", err);
        mandate_token_source_free(&src);
        return 1;
    }

    char *t1 = NULL, *t2 = NULL;
    bool rotated = false;
    mandate_verified_token vt;
    mandate_client_rc rc = mandate_token_source_get(src, &t1, NULL, err, sizeof(err));
    expect(rc == MANDATE_CLIENT_OK, "a token from the broker", err);
    if (rc != MANDATE_CLIENT_OK)
        goto out;
    rc = mandate_verifier_check(ver, t1, "mcp:call", &vt, err, sizeof(err));
    expect(rc == MANDATE_CLIENT_OK, "it verifies with its audience and scope", err);
    expect(rc == MANDATE_CLIENT_OK && strcmp(vt.client_id, argv[2]) == 0 &&
               strcmp(vt.subject, argv[2]) == 0,
           "claims: client_id and sub", NULL);
    mandate_verified_token_clear(&vt);
    rc = mandate_verifier_check(ver, t1, "trading:execute", NULL, err, sizeof(err));
    expect(rc == MANDATE_CLIENT_INSUFFICIENT_SCOPE, "a scope it lacks: insufficient_scope",
           mandate_client_rc_name(rc));
    expect(mandate_verifier_jwks_fetches(ver) == 1, "one JWKS fetch", NULL);
    rc = mandate_token_source_get(src, &t2, NULL, err, sizeof(err));
    expect(rc == MANDATE_CLIENT_OK && strcmp(t1, t2) == 0 &&
               mandate_token_source_fetches(src) == 1,
           "the second get is served from the cache", err);
    free(t2);
    t2 = NULL;

    /* rotate, then refresh (by moving the source's clock past 80% of the
     * token's life) until a token carries the new key */
    expect(run(argv + 6) == 0, "keys rotated", NULL);
    for (int i = 0; i < 50 && !rotated; i++) {
        atomic_fetch_add(&source_skew, 3600);
        free(t2);
        t2 = NULL;
        rc = mandate_token_source_get(src, &t2, NULL, err, sizeof(err));
        if (rc != MANDATE_CLIENT_OK)
            break;
        rotated = header_len(t1) != header_len(t2) || memcmp(t1, t2, header_len(t1)) != 0;
        if (!rotated)
            usleep(200 * 1000);
    }
    expect(rotated, "a token under the new key", err);
    if (!rotated)
        goto out;
    /* past the refetch interval since the first fetch, whatever the timing */
    atomic_fetch_add(&verifier_skew, 2);
    rc = mandate_verifier_check(ver, t2, "mcp:call", NULL, err, sizeof(err));
    expect(rc == MANDATE_CLIENT_OK, "it verifies (unknown kid: JWKS refetched)", err);
    expect(mandate_verifier_jwks_fetches(ver) == 2, "exactly one refetch", NULL);
    rc = mandate_verifier_check(ver, t1, "mcp:call", NULL, err, sizeof(err));
    expect(rc == MANDATE_CLIENT_OK, "the old key's token still verifies", err);

out:
    free(t1);
    free(t2);
    mandate_verifier_free(&ver);
    mandate_token_source_free(&src);
    return failures == 0 && rotated ? 0 : 1;
}
