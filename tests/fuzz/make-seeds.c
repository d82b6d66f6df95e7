/* Makes the seeds of tests/fuzz/corpus that need a signature or a hash
 * chain: jwt (tokens by the keys of fuzz-keys.h), json (metadata, JWK set,
 * token and token response for fuzz-json) and audit (trails written by
 * mandate_audit_append, then tampered with). The other corpora are written
 * by hand. Built with --enable-fuzzing; run once and check the output in:
 *
 *   tests/fuzz/make-seeds $(srcdir)/tests/fuzz/corpus
 *
 * The seeds hold times around FUZZ_NOW, the harnesses' fixed clock. */
#include "config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "audit-private.h"
#include "fuzz-common.h"
#include "fuzz-keys.h"
#include "jose-private.h"

static const char *out;

static void put(const char *sub, const char *name, const char *data, size_t len)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s", out, sub);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/%s/%s", out, sub, name);
    fuzz_write_file(p, data, len);
}

static void puts_(const char *sub, const char *name, const char *s)
{
    put(sub, name, s, strlen(s));
}

static char *b64url(const void *data, size_t len)
{
    char *s = malloc(mandate_b64url_encoded_len(len) + 1);
    mandate_b64url_encode(data, len, s);
    return s;
}

/* "h.p.s" from raw header and payload text, with "c2ln" for a signature:
 * for headers the JOSE helpers would never write (alg none, HS256, crit). */
static char *raw_jws(const char *header, const char *payload)
{
    char *h = b64url(header, strlen(header)), *p = b64url(payload, strlen(payload));
    size_t len = strlen(h) + strlen(p) + 7;
    char *jws = malloc(len);
    snprintf(jws, len, "%s.%s.c2ln", h, p);
    free(h), free(p);
    return jws;
}

static json_t *claims(int64_t exp_delta)
{
    return json_pack(
        "{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s}", "iss", "https://broker.example.com",
        "sub", "agent-7", "client_id", "build-agent", "aud", "https://api.example.com", "exp",
        (json_int_t)(FUZZ_NOW + exp_delta), "iat", (json_int_t)FUZZ_NOW - 10, "nbf",
        (json_int_t)FUZZ_NOW - 10, "jti", "j-1", "scope", "mcp:call repo:read");
}

static char *sign(EVP_PKEY *key, const char *typ, json_t *c)
{
    char kid[MANDATE_JWK_THUMBPRINT_LEN + 1];
    if (!mandate_jwk_thumbprint(key, kid))
        abort();
    char *t = mandate_jws_sign(key, kid, typ, c);
    json_decref(c);
    if (t == NULL)
        abort();
    return t;
}

static void jwt_seeds(EVP_PKEY **keys)
{
    char *t;
    t = sign(keys[0], "at+jwt", claims(600));
    puts_("jwt", "es256-valid", t);
    /* truncated signature, and a signature of another token */
    t[strlen(t) - 10] = '\0';
    puts_("jwt", "es256-truncated-sig", t);
    free(t);
    t = sign(keys[1], "at+jwt", claims(600));
    puts_("jwt", "rs256-valid", t);
    free(t);
    t = sign(keys[2], "application/at+jwt", claims(600));
    puts_("jwt", "eddsa-valid", t);
    free(t);
    t = sign(keys[0], "at+jwt", claims(-3600));
    puts_("jwt", "expired", t);
    free(t);
    t = sign(keys[0], "JWT", claims(600));
    puts_("jwt", "wrong-typ", t);
    free(t);
    json_t *c = claims(600);
    json_object_set_new(c, "aud", json_pack("[s,s]", "https://api.example.com", "https://b"));
    json_object_set_new(c, "act", json_pack("{s:s}", "sub", "agent-0"));
    json_object_set_new(c, "tenant", json_string("t1"));
    json_object_set_new(c, "idp", json_string("backend-corp-saml"));
    t = sign(keys[0], "at+jwt", c);
    puts_("jwt", "aud-array-act", t);
    free(t);
    c = claims(600);
    json_object_set_new(c, "exp", json_string("soon"));
    t = sign(keys[0], "at+jwt", c);
    puts_("jwt", "exp-string", t);
    free(t);

    char kid[MANDATE_JWK_THUMBPRINT_LEN + 1];
    mandate_jwk_thumbprint(keys[0], kid);
    char hdr[2048];
    const char *payload = "{\"iss\":\"https://broker.example.com\",\"sub\":\"a\","
                          "\"client_id\":\"c\",\"jti\":\"j\",\"exp\":1900000600,"
                          "\"iat\":1899999990}";
    snprintf(hdr, sizeof(hdr), "{\"alg\":\"none\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}", kid);
    t = raw_jws(hdr, payload);
    t[strlen(t) - 4] = '\0'; /* "h.p." : alg none with an empty signature */
    puts_("jwt", "alg-none", t);
    free(t);
    snprintf(hdr, sizeof(hdr), "{\"alg\":\"HS256\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}", kid);
    t = raw_jws(hdr, payload);
    puts_("jwt", "alg-hs256", t);
    free(t);
    snprintf(hdr, sizeof(hdr),
             "{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"%s\",\"crit\":[\"exp\"]}", kid);
    t = raw_jws(hdr, payload);
    puts_("jwt", "crit", t);
    free(t);
    t = raw_jws("{\"alg\":\"ES256\",\"typ\":\"at+jwt\"}", payload);
    puts_("jwt", "no-kid", t);
    free(t);
    t = raw_jws("{\"alg\":\"ES256\",\"alg\":\"none\",\"kid\":\"k\"}", payload);
    puts_("jwt", "duplicate-alg", t);
    free(t);
    t = raw_jws("{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"k\"}", "[1,2]");
    puts_("jwt", "payload-array", t);
    free(t);
    /* a header larger than MANDATE_JWS_MAX_HEADER */
    char big[1400];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    snprintf(hdr, sizeof(hdr), "{\"alg\":\"ES256\",\"kid\":\"%s\",\"x\":\"%s\"}", kid, big);
    t = raw_jws(hdr, payload);
    puts_("jwt", "huge-header", t);
    free(t);
    puts_("jwt", "two-parts", "eyJhbGciOiJFUzI1NiJ9.e30");
    puts_("jwt", "four-parts", "eyJhbGciOiJFUzI1NiJ9.e30.c2ln.c2ln");
    puts_("jwt", "padding", "eyJhbGciOiJFUzI1NiJ9.e30=.c2ln");
    puts_("jwt", "opaque", "mnd_0123456789abcdefABCDEF");
}

static char *jwks_of(EVP_PKEY **keys, size_t n)
{
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        char kid[MANDATE_JWK_THUMBPRINT_LEN + 1];
        mandate_jwk_thumbprint(keys[i], kid);
        json_array_append_new(list, mandate_jwk_from_key(keys[i], kid));
    }
    json_t *doc = json_pack("{s:o}", "keys", list);
    char *s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return s;
}

static void json_seed(const char *name, const char *md, const char *jwks, const char *token,
                      const char *resp)
{
    size_t len = strlen(md) + strlen(jwks) + strlen(token) + strlen(resp) + 4 * FUZZ_SEP_LEN;
    char *s = malloc(len + 1);
    snprintf(s, len + 1, "%s" FUZZ_SEP "%s" FUZZ_SEP "%s" FUZZ_SEP "%s", md, jwks, token, resp);
    puts_("json", name, s);
    free(s);
}

static void json_seeds(EVP_PKEY **keys)
{
    const char *md = "{\"issuer\":\"https://broker.example.com\",\"jwks_uri\":"
                     "\"https://broker.example.com/.well-known/jwks.json\","
                     "\"token_endpoint\":\"https://broker.example.com/oauth2/token\"}";
    char *jwks = jwks_of(keys, 3), *jwks1 = jwks_of(keys + 1, 1);
    char *t = sign(keys[0], "at+jwt", claims(600));
    const char *ok = "{\"access_token\":\"eyJhbGciOiJFUzI1NiJ9.e30.c2ln\",\"token_type\":"
                     "\"Bearer\",\"expires_in\":3600,\"scope\":\"mcp:call\"}";
    json_seed("valid", md, jwks, t, ok);
    json_seed("unknown-kid", md, jwks1, t,
              "HTTP 400\n{\"error\":\"invalid_client\","
              "\"error_description\":\"no such client\"}");
    json_seed("other-issuer",
              "{\"issuer\":\"https://evil.example\",\"jwks_uri\":\"https://evil.example/k\"}",
              jwks, t, "HTTP 503\n<html>busy</html>");
    json_seed("jwks-not-array", md, "{\"keys\":{\"kty\":\"EC\"}}", t,
              "{\"access_token\":\"a\\u0000b\",\"token_type\":\"Bearer\"}");
    json_seed("jwks-bad-keys", md,
              "{\"keys\":[{\"kid\":\"a\",\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\","
              "\"y\":\"AA\"},{\"kid\":\"a\",\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"},"
              "{\"kid\":\"b\",\"kty\":\"OKP\",\"crv\":\"Ed448\",\"x\":\"AA\"},"
              "{\"kid\":\"c\",\"kty\":\"oct\",\"k\":\"c2VjcmV0\"},{\"kty\":\"EC\"},7,null]}",
              t, "{\"access_token\":\"x\",\"token_type\":\"mac\",\"expires_in\":-1}");
    json_seed("duplicate-members", "{\"issuer\":\"a\",\"issuer\":\"b\"}", "[]", "x.y.z",
              "{\"access_token\":\"x\",\"access_token\":\"y\"}");
    json_seed("redirect", md, jwks, "", "HTTP 302\n");
    json_seed("huge-expires", md, jwks, t,
              "{\"access_token\":\"x\",\"token_type\":\"bearer\","
              "\"expires_in\":9223372036854775807}");
    json_seed(
        "deep",
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
        "{\"keys\":[]}", t, "{}");
    free(t);
    free(jwks);
    free(jwks1);
}

/* --- audit --------------------------------------------------------------- */

static char *slurp(const char *path, size_t *len_r)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        abort();
    char *buf = NULL;
    size_t len = 0;
    for (;;) {
        buf = realloc(buf, len + 4096 + 1);
        size_t n = fread(buf + len, 1, 4096, f);
        len += n;
        if (n == 0)
            break;
    }
    fclose(f);
    buf[len] = '\0';
    *len_r = len;
    return buf;
}

/* Writes n records to a fresh trail rotated at rotate bytes and returns its
 * files joined with FUZZ_SEP. */
static char *trail(int n, int64_t rotate)
{
    char dir[] = "/tmp/mandate-seeds-XXXXXX";
    if (mkdtemp(dir) == NULL)
        abort();
    mandate_audit_config cfg = {
        .dir = dir, .fsync = MANDATE_AUDIT_FSYNC_OFF, .rotate_bytes = rotate};
    mandate_audit *a = NULL;
    mandate_error err = {0};
    if (mandate_audit_open(&cfg, &a, &err) != MANDATE_OK)
        abort();
    static const char *const events[] = {"token.issued", "client.created", "token.revoked",
                                         "key.rotated", "token.exchanged"};
    for (int i = 0; i < n; i++) {
        json_t *f =
            json_pack("{s:s, s:s, s:i}", "client", "agent-7", "scope", "mcp:call", "n", i);
        if (mandate_audit_append(a, events[i % 5], i % 2 ? "req-1" : NULL, f, NULL, &err) !=
            MANDATE_OK)
            abort();
    }
    mandate_audit_close(&a);
    char **files = NULL;
    if (mandate_audit_list_files(dir, &files, &err) != MANDATE_OK)
        abort();
    char *all = strdup("");
    size_t all_len = 0;
    for (size_t i = 0; files[i] != NULL; i++) {
        size_t len;
        char *s = slurp(files[i], &len);
        all = realloc(all, all_len + len + FUZZ_SEP_LEN + 1);
        if (i > 0) {
            memcpy(all + all_len, FUZZ_SEP, FUZZ_SEP_LEN);
            all_len += FUZZ_SEP_LEN;
        }
        memcpy(all + all_len, s, len);
        all_len += len;
        all[all_len] = '\0';
        free(s);
        unlink(files[i]);
        free(files[i]);
    }
    free(files);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        abort();
    return all;
}

static void audit_seeds(void)
{
    char *t = trail(6, 0);
    puts_("audit", "valid", t);
    /* a changed record: the client of the third line */
    char *c = strdup(t), *p = c;
    for (int i = 0; i < 2; i++)
        p = strchr(p, '\n') + 1;
    char *agent = strstr(p, "agent-7");
    agent[6] = '9';
    puts_("audit", "changed", c);
    free(c);
    /* a removed record: drop the third line */
    c = strdup(t);
    p = c;
    for (int i = 0; i < 2; i++)
        p = strchr(p, '\n') + 1;
    char *next = strchr(p, '\n') + 1;
    memmove(p, next, strlen(next) + 1);
    puts_("audit", "removed", c);
    free(c);
    /* cut short: half the last line */
    c = strdup(t);
    c[strlen(c) - 40] = '\0';
    puts_("audit", "truncated", c);
    free(c);
    /* reordered: swap lines 2 and 3 */
    c = strdup(t);
    char *l2 = strchr(c, '\n') + 1, *l3 = strchr(l2, '\n') + 1, *l4 = strchr(l3, '\n') + 1;
    size_t n2 = (size_t)(l3 - l2), n3 = (size_t)(l4 - l3);
    char *tmp = malloc(n2 + n3);
    memcpy(tmp, l3, n3);
    memcpy(tmp + n3, l2, n2);
    memcpy(l2, tmp, n2 + n3);
    free(tmp);
    puts_("audit", "reordered", c);
    free(c);
    /* starts later: the first two records archived away */
    p = strchr(strchr(t, '\n') + 1, '\n') + 1;
    puts_("audit", "starts-later", p);
    free(t);

    t = trail(12, 1200);
    puts_("audit", "rotated", t);
    free(t);

    puts_("audit", "not-json", "{\"seq\":1,\"ts\":\"x\"\nhello\n");
    puts_("audit", "empty-lines", "\n\n\n");
    puts_("audit", "seq-types",
          "{\"seq\":\"1\",\"ts\":1,\"prev\":null,\"event\":[]}\n"
          "{\"seq\":18446744073709551615,\"ts\":\"2026-11-27T14:03:07.123456Z\",\"prev\":"
          "\"0000000000000000000000000000000000000000000000000000000000000000\",\"event\":"
          "\"e\"}\n"
          "{\"seq\":-1,\"ts\":\"2026-11-27T14:03:07.123456Z\",\"prev\":\"zz\",\"event\":\"e\"}"
          "\n");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make-seeds CORPUS_DIR\n");
        return 2;
    }
    out = argv[1];
    EVP_PKEY *keys[3] = {fuzz_key_from_pem(fuzz_key_ec_pem),
                         fuzz_key_from_pem(fuzz_key_rsa_pem),
                         fuzz_key_from_pem(fuzz_key_ed_pem)};
    jwt_seeds(keys);
    json_seeds(keys);
    audit_seeds();
    for (int i = 0; i < 3; i++)
        EVP_PKEY_free(keys[i]);
    return 0;
}
