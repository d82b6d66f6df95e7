/* Makes the seeds of tests/fuzz/corpus that need a signature or a hash
 * chain: jwt (tokens by the keys of fuzz-keys.h), json (metadata, JWK set,
 * token and token response for fuzz-json), audit (trails written by
 * mandate_audit_append, then tampered with) and oidc (discovery, JWK set and
 * tokens of an upstream provider for fuzz-oidc) and dpop (proofs for fuzz-dpop).
 * The other corpora are written
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
#include <openssl/hmac.h>

#include "audit-private.h"
#include "fuzz-common.h"
#include "fuzz-keys.h"
#include "dpop.h"
#include "jose.h"

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
 * files joined with FUZZ_SEP. With seal, a checkpoint every 4 records signed
 * by seal, and the checkpoints file as the fourth part (fuzz-audit.c): the
 * files then are at most three, and an empty part stands for a missing one. */
static char *trail_sealed(int n, int64_t rotate, EVP_PKEY *seal)
{
    char dir[] = "/tmp/mandate-seeds-XXXXXX";
    if (mkdtemp(dir) == NULL)
        abort();
    char sink[64];
    snprintf(sink, sizeof(sink), "%s/checkpoints.log", dir);
    mandate_audit_config cfg = {.dir = dir,
                                .fsync = MANDATE_AUDIT_FSYNC_OFF,
                                .rotate_bytes = rotate,
                                .seal_key = seal,
                                .checkpoint_records = 4,
                                .checkpoint_file = sink};
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
    int n_files = 0;
    for (size_t i = 0; files[i] != NULL; i++, n_files++) {
        if (seal != NULL && i >= 3)
            abort(); /* a sealed seed has room for three files */
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
    if (seal != NULL) {
        size_t len;
        char *s = slurp(sink, &len);
        for (int i = 0; i < 4 - n_files; i++) {
            all = realloc(all, all_len + FUZZ_SEP_LEN + 1);
            memcpy(all + all_len, FUZZ_SEP, FUZZ_SEP_LEN);
            all_len += FUZZ_SEP_LEN;
        }
        all = realloc(all, all_len + len + 1);
        memcpy(all + all_len, s, len);
        all_len += len;
        all[all_len] = '\0';
        free(s);
    }
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        abort();
    return all;
}

static char *trail(int n, int64_t rotate)
{
    return trail_sealed(n, rotate, NULL);
}

/* The n-th line (from 0) of text, as a pointer into it. */
static char *nth_line(char *text, int n)
{
    char *p = text;
    for (int i = 0; i < n && p != NULL; i++) {
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    if (p == NULL)
        abort();
    return p;
}

/* Recomputes the prev of every record from line from on (counted from 0,
 * across the parts), as an attacker who edited the trail would. */
static void rechain(char *text, int from)
{
    char prev[65] = "";
    char *p = text;
    for (int i = 0; *p != '\0'; i++) {
        char *nl = strchr(p, '\n');
        if (nl == NULL)
            break;
        if (strncmp(p, "{\"seq\":", 7) == 0) {
            char *h = strstr(p, "\"prev\":\"");
            if (i >= from && prev[0] != '\0' && h != NULL && h < nl)
                memcpy(h + 8, prev, 64);
            unsigned char md[32];
            unsigned int md_len;
            EVP_Digest(p, (size_t)(nl - p), md, &md_len, EVP_sha256(), NULL);
            for (int k = 0; k < 32; k++)
                snprintf(prev + 2 * k, 3, "%02x", md[k]);
        }
        p = nl + 1;
    }
}

/* Sealed trails: valid, and the attacks of issue 20 on them. */
static void sealed_seeds(EVP_PKEY *seal)
{
    char *t = trail_sealed(12, 2500, seal);
    puts_("audit", "sealed", t);
    /* record 2 changed, and every later prev recomputed: the checkpoints
     * name the old hashes */
    char *c = strdup(t);
    char *agent = strstr(nth_line(c, 1), "agent-7");
    agent[6] = '9';
    rechain(c, 2);
    puts_("audit", "sealed-rechained", c);
    free(c);
    /* a checkpoint's time changed (and the chain after it recomputed): its
     * signature no longer matches */
    c = strdup(t);
    char *h = strstr(c, "\"checkpoint\":{");
    h = strstr(h, "\"ts\":\"") + 6 + 20; /* a digit of the microseconds */
    h[0] = h[0] == '1' ? '2' : '1';
    rechain(c, 0);
    puts_("audit", "sealed-forged", c);
    free(c);
    /* the trail cut after its first file: the checkpoints file goes on */
    c = strdup(t);
    char *sep = strstr(c, FUZZ_SEP);
    char *sink_part = strrchr(c, '\f') - 1;
    memmove(sep + FUZZ_SEP_LEN, FUZZ_SEP FUZZ_SEP, 2 * FUZZ_SEP_LEN);
    memmove(sep + 3 * FUZZ_SEP_LEN, sink_part + FUZZ_SEP_LEN,
            strlen(sink_part + FUZZ_SEP_LEN) + 1);
    puts_("audit", "sealed-cut", c);
    free(c);
    free(t);
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

/* --- oidc ------------------------------------------------------------------ */

/* For fuzz-oidc: discovery document, JWK set, token, control bytes and a
 * second JWK set, joined with FUZZ_SEP (see tests/fuzz/fuzz-oidc.c). */
#define OIDC_ISS "https://idp.example.com/tenant"
#define OIDC_AUD "api://mandate"
#define OIDC_BROKER "https://mandate.example.com"
#define OIDC_JAG_TYP "oauth-id-jag+jwt"
/* control byte 0 */
#define OIDC_ID_TOKEN 0x00
#define OIDC_JWT 0x01
#define OIDC_ID_JAG 0x02
#define OIDC_SAML2 0x03
#define OIDC_ACCEPT_JAG 0x04
#define OIDC_FIXED_JWKS 0x08
#define OIDC_AZP 0x10
#define OIDC_STRICT 0x20
#define OIDC_ROTATE 0x40
#define OIDC_TWICE 0x80
/* control byte 1 */
#define OIDC_ONLY_JAG 0x04
#define OIDC_LOGIN 0x08

static const char oidc_discovery[] =
    "{\"issuer\":\"" OIDC_ISS "\",\"jwks_uri\":\"" OIDC_ISS "/keys\","
    "\"authorization_endpoint\":\"" OIDC_ISS "/authorize\","
    "\"token_endpoint\":\"" OIDC_ISS "/token\",\"response_types_supported\":[\"code\"],"
    "\"subject_types_supported\":[\"public\"],"
    "\"id_token_signing_alg_values_supported\":[\"RS256\",\"ES256\",\"EdDSA\"]}";

/* n keys named by kids, each JWK as mandate_jwk_from_key writes it; extra
 * (a JSON array's members, or NULL) goes first. */
static char *oidc_jwks(EVP_PKEY **keys, const char *const *kids, size_t n, const char *extra)
{
    json_t *list = extra != NULL ? json_loads(extra, 0, NULL) : json_array();
    if (list == NULL)
        abort();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, mandate_jwk_from_key(keys[i], kids[i]));
    json_t *doc = json_pack("{s:o}", "keys", list);
    char *s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return s;
}

static void oidc_seed(const char *name, const char *disc, const char *jwks, const char *token,
                      const unsigned char *ctl, size_t ctl_len, const char *jwks2)
{
    size_t cap = strlen(disc) + strlen(jwks) + strlen(token) + ctl_len +
                 (jwks2 != NULL ? strlen(jwks2) : 0) + 4 * FUZZ_SEP_LEN + 1;
    char *s = malloc(cap);
    size_t len =
        (size_t)snprintf(s, cap, "%s" FUZZ_SEP "%s" FUZZ_SEP "%s" FUZZ_SEP, disc, jwks, token);
    memcpy(s + len, ctl, ctl_len);
    len += ctl_len;
    if (jwks2 != NULL)
        len += (size_t)snprintf(s + len, cap - len, FUZZ_SEP "%s", jwks2);
    put("oidc", name, s, len);
    free(s);
}

/* One control byte. */
#define CTL(b) ((const unsigned char[]){(b)}), 1

/* Claims of an ID token (kind 0), an access token (1) or an ID-JAG (2). */
static json_t *oidc_claims(int kind)
{
    json_int_t now = (json_int_t)FUZZ_NOW;
    switch (kind) {
    case 0:
        return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:s}", "iss", OIDC_ISS,
                         "sub", "00u1a2b3c4", "aud", OIDC_AUD, "azp", OIDC_AUD, "exp",
                         now + 3600, "iat", now - 30, "auth_time", now - 60, "nonce", "n-0S6",
                         "email", "ada@example.com", "name", "Ada");
    case 1:
        return json_pack("{s:s, s:s, s:[s,s], s:s, s:s, s:s, s:I, s:I, s:I}", "iss", OIDC_ISS,
                         "sub", "svc-build", "aud", OIDC_AUD, "0b5c7f3e-client", "azp",
                         "0b5c7f3e-client", "client_id", "0b5c7f3e-client", "scope",
                         "openid repo:read", "exp", now + 600, "iat", now - 10, "nbf",
                         now - 10);
    default:
        return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "iss", OIDC_ISS, "sub",
                         "ada@example.com", "aud", OIDC_BROKER, "client_id", "agent-7", "jti",
                         "jag-5f1e", "scope", "mcp:call", "exp", now + 120, "iat", now);
    }
}

static char *oidc_sign(EVP_PKEY *key, const char *kid, const char *typ, json_t *c)
{
    char *t = mandate_jws_sign(key, kid, typ, c);
    json_decref(c);
    if (t == NULL)
        abort();
    return t;
}

/* "h.p.s" with an HMAC-SHA256 keyed with secret: the old confusion of a
 * verifier that takes the header's alg and the public key as an HMAC key. */
static char *hs256_jws(const char *header, const char *payload, const void *secret,
                       size_t secret_len)
{
    char *t = raw_jws(header, payload);
    t[strlen(t) - 5] = '\0'; /* drop ".c2ln" */
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    if (HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)t, strlen(t), mac,
             &mac_len) == NULL)
        abort();
    char *sig = b64url(mac, mac_len);
    size_t len = strlen(t) + strlen(sig) + 2;
    char *jws = malloc(len);
    snprintf(jws, len, "%s.%s", t, sig);
    free(t), free(sig);
    return jws;
}

static void oidc_seeds(EVP_PKEY **keys)
{
    static const char *const kids[] = {"ec-1", "rsa-1", "ed-1"};
    EVP_PKEY *rogue = mandate_jose_keygen(MANDATE_JWS_ES256);
    if (rogue == NULL)
        abort();
    const char *disc = oidc_discovery;
    /* the provider's keys, besides a symmetric key and an encryption key
     * (both to be skipped) */
    char *jwks =
        oidc_jwks(keys, kids, 3,
                  "[{\"kty\":\"oct\",\"k\":\"c2VjcmV0\",\"kid\":\"sym\"},"
                  "{\"kty\":\"EC\",\"crv\":\"P-256\",\"use\":\"enc\",\"kid\":\"enc-1\","
                  "\"x\":\"AA\",\"y\":\"AA\"}]");
    char *t;
    json_t *c;

    /* valid tokens of each kind and each key */
    t = oidc_sign(keys[0], "ec-1", "JWT", oidc_claims(0));
    oidc_seed("id-token-es256", disc, jwks, t, CTL(OIDC_ID_TOKEN), NULL);
    oidc_seed("id-token-strict", disc, jwks, t, CTL(OIDC_ID_TOKEN | OIDC_STRICT | OIDC_AZP),
              NULL);
    oidc_seed("id-token-fixed-jwks", "", jwks, t, CTL(OIDC_ID_TOKEN | OIDC_FIXED_JWKS), NULL);
    oidc_seed("id-token-as-saml2", disc, jwks, t, CTL(OIDC_SAML2), NULL);
    /* the keys refreshed 301 s later: the provider is down (degraded), or
     * a day later (past jwks_max_age: unavailable) */
    oidc_seed("refresh-provider-down", disc, jwks, t,
              (const unsigned char[]){OIDC_ID_TOKEN | OIDC_TWICE, 2}, 2, "HTTP 503\n{}");
    oidc_seed("keys-past-max-age", disc, jwks, t,
              (const unsigned char[]){OIDC_ID_TOKEN | OIDC_TWICE, 3}, 2, "HTTP 000\n");
    oidc_seed("refresh-keys-rotated-away", disc, jwks, t,
              (const unsigned char[]){OIDC_ID_TOKEN | OIDC_TWICE, 2}, 2,
              "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"ed-9\","
              "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}");
    /* the keys rotated: the kid is unknown in the first set, found in the
     * second */
    char *jwks_old = oidc_jwks(keys + 1, kids + 1, 1, NULL);
    oidc_seed("kid-rotated-in", disc, jwks_old, t, CTL(OIDC_ID_TOKEN | OIDC_ROTATE), jwks);
    oidc_seed("kid-unknown-no-refetch", disc, jwks_old, t, CTL(OIDC_ID_TOKEN), jwks);
    free(jwks_old);
    free(t);

    t = oidc_sign(keys[1], "rsa-1", "JWT", oidc_claims(0));
    oidc_seed("id-token-rs256", disc, jwks, t, CTL(OIDC_ID_TOKEN), NULL);
    oidc_seed("rs256-not-in-algorithms", disc, jwks, t, CTL(OIDC_ID_TOKEN | OIDC_STRICT), NULL);
    free(t);
    t = oidc_sign(keys[2], "ed-1", NULL, oidc_claims(0));
    oidc_seed("id-token-eddsa", disc, jwks, t, CTL(OIDC_ID_TOKEN), NULL);
    free(t);
    t = oidc_sign(keys[0], "ec-1", "at+jwt", oidc_claims(1));
    oidc_seed("jwt-at-es256", disc, jwks, t, CTL(OIDC_JWT), NULL);
    oidc_seed("jwt-azp-not-authorized", disc, jwks, t, CTL(OIDC_JWT | OIDC_AZP), NULL);
    /* typ confusion: an access token taken for an ID token */
    oidc_seed("typ-at-jwt-as-id-token", disc, jwks, t, CTL(OIDC_ID_TOKEN), NULL);
    free(t);
    t = oidc_sign(keys[2], "ed-1", "application/at+jwt", oidc_claims(1));
    oidc_seed("jwt-eddsa", disc, jwks, t, CTL(OIDC_JWT | OIDC_FIXED_JWKS), NULL);
    free(t);

    t = oidc_sign(keys[0], "ec-1", OIDC_JAG_TYP, oidc_claims(2));
    oidc_seed("id-jag-es256", disc, jwks, t, CTL(OIDC_ID_JAG | OIDC_ACCEPT_JAG), NULL);
    /* the same ID-JAG twice, at once: a replay */
    oidc_seed("id-jag-replayed", disc, jwks, t,
              (const unsigned char[]){OIDC_ID_JAG | OIDC_ACCEPT_JAG | OIDC_TWICE, 0}, 2, NULL);
    oidc_seed("id-jag-not-accepted", disc, jwks, t, CTL(OIDC_ID_JAG), NULL);
    /* typ confusion: an ID-JAG offered as an ID token or a JWT */
    oidc_seed("typ-jag-as-id-token", disc, jwks, t, CTL(OIDC_ID_TOKEN | OIDC_ACCEPT_JAG), NULL);
    oidc_seed("typ-jag-as-jwt-not-accepted", disc, jwks, t, CTL(OIDC_JWT), NULL);
    free(t);
    t = oidc_sign(keys[1], "rsa-1", "application/" OIDC_JAG_TYP, oidc_claims(2));
    oidc_seed("id-jag-rs256", disc, jwks, t, CTL(OIDC_ID_JAG | OIDC_ACCEPT_JAG | OIDC_AZP),
              NULL);
    free(t);
    /* an ID-JAG without its typ, jti, client_id, iat; one too long-lived */
    t = oidc_sign(keys[2], "ed-1", "JWT", oidc_claims(2));
    oidc_seed("id-jag-typ-jwt", disc, jwks, t, CTL(OIDC_ID_JAG | OIDC_ACCEPT_JAG), NULL);
    free(t);
    static const char *const jag_drop[] = {"jti", "client_id", "iat"};
    for (size_t i = 0; i < 3; i++) {
        c = oidc_claims(2);
        json_object_del(c, jag_drop[i]);
        t = oidc_sign(keys[2], "ed-1", OIDC_JAG_TYP, c);
        char name[64];
        snprintf(name, sizeof(name), "id-jag-no-%s", jag_drop[i]);
        oidc_seed(name, disc, jwks, t, CTL(OIDC_ID_JAG | OIDC_ACCEPT_JAG), NULL);
        free(t);
    }
    c = oidc_claims(2);
    json_object_set_new(c, "exp", json_integer((json_int_t)FUZZ_NOW + 3600));
    t = oidc_sign(keys[0], "ec-1", OIDC_JAG_TYP, c);
    oidc_seed("id-jag-long-lived", disc, jwks, t,
              CTL(OIDC_ID_JAG | OIDC_ACCEPT_JAG | OIDC_STRICT), NULL);
    free(t);
    char long_id[300];
    memset(long_id, 'j', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    c = oidc_claims(2);
    json_object_set_new(c, "jti", json_string(long_id));
    t = oidc_sign(keys[0], "ec-1", OIDC_JAG_TYP, c);
    oidc_seed("id-jag-jti-too-long", disc, jwks, t, CTL(OIDC_ID_JAG | OIDC_ACCEPT_JAG), NULL);
    free(t);
    /* an instance that takes ID-JAGs only: an ID token, and an ID-JAG
     * offered as an ID token, are passed on with the reason */
    t = oidc_sign(keys[0], "ec-1", OIDC_JAG_TYP, oidc_claims(2));
    oidc_seed("only-jag-typ-jag-as-id-token", disc, jwks, t,
              (const unsigned char[]){OIDC_ID_TOKEN, OIDC_ONLY_JAG}, 2, NULL);
    oidc_seed("only-jag-id-jag", disc, jwks, t,
              (const unsigned char[]){OIDC_ID_JAG, OIDC_ONLY_JAG}, 2, NULL);
    free(t);
    oidc_seed("only-jag-malformed-jwt", disc, jwks,
              "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlLmNvbS90ZW5hbnQifQ.",
              (const unsigned char[]){OIDC_JWT, OIDC_ONLY_JAG}, 2, NULL);
    /* a long kid and a long aud, quoted short in the messages */
    t = oidc_sign(keys[0], long_id, "JWT", oidc_claims(0));
    oidc_seed("kid-long-unknown", disc, jwks, t, CTL(OIDC_ID_TOKEN | OIDC_ROTATE), NULL);
    free(t);
    c = oidc_claims(0);
    json_object_set_new(c, "aud", json_string(long_id));
    t = oidc_sign(keys[0], "ec-1", "JWT", c);
    oidc_seed("claim-aud-long", disc, jwks, t, CTL(OIDC_ID_TOKEN), NULL);
    free(t);

    /* claims refused after a good signature */
    struct {
        const char *name, *claim, *value; /* value: JSON; NULL: removed */
    } bad[] = {
        {"claim-expired", "exp", "1899990000"},
        {"claim-exp-in-skew", "exp", "1899999950"},
        {"claim-exp-string", "exp", "\"1900003600\""},
        {"claim-exp-real", "exp", "1900003600.5"},
        {"claim-exp-huge", "exp", "253402300800"},
        {"claim-exp-real-huge", "exp", "1e300"},
        {"claim-exp-negative", "exp", "-1"},
        {"claim-no-exp", "exp", NULL},
        {"claim-nbf-future", "nbf", "1900000600"},
        {"claim-iat-future", "iat", "1900000600"},
        {"claim-no-sub", "sub", NULL},
        {"claim-sub-empty", "sub", "\"\""},
        {"claim-sub-number", "sub", "7"},
        {"claim-aud-other", "aud", "\"api://other\""},
        {"claim-aud-array-no-azp", "aud", "[\"api://mandate\",\"0b5c7f3e-client\"]"},
        {"claim-aud-array-one-no-azp", "aud", "[\"api://mandate\"]"},
        {"claim-aud-array-number", "aud", "[\"api://mandate\",7]"},
        {"claim-aud-object", "aud", "{\"a\":\"api://mandate\"}"},
        {"claim-no-aud", "aud", NULL},
        {"claim-azp-other", "azp", "\"evil-client\""},
        {"claim-azp-number", "azp", "1"},
        {"claim-auth-time-string", "auth_time", "\"yesterday\""},
        {"claim-jti-empty", "jti", "\"\""},
        {"claim-iss-trailing-slash", "iss", "\"" OIDC_ISS "/\""},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        c = oidc_claims(0);
        if (bad[i].value == NULL) {
            json_object_del(c, bad[i].claim);
        } else {
            json_t *v = json_loads(bad[i].value, JSON_DECODE_ANY, NULL);
            if (v == NULL)
                abort();
            json_object_set_new(c, bad[i].claim, v);
        }
        if (strstr(bad[i].name, "no-azp") != NULL)
            json_object_del(c, "azp");
        t = oidc_sign(keys[0], "ec-1", "JWT", c);
        oidc_seed(bad[i].name, disc, jwks, t, CTL(OIDC_ID_TOKEN), NULL);
        free(t);
    }

    /* another provider's token: passed on */
    c = oidc_claims(0);
    json_object_set_new(c, "iss", json_string("https://accounts.example.org"));
    t = oidc_sign(keys[0], "ec-1", "JWT", c);
    oidc_seed("other-issuer-token", disc, jwks, t, CTL(OIDC_ID_TOKEN), NULL);
    free(t);

    /* known attacks on the signature */
    json_t *claims0 = oidc_claims(0);
    char *payload = json_dumps(claims0, JSON_COMPACT);
    json_decref(claims0);
    t = raw_jws("{\"alg\":\"none\",\"typ\":\"JWT\",\"kid\":\"ec-1\"}", payload);
    t[strlen(t) - 4] = '\0';
    oidc_seed("alg-none", disc, jwks, t, CTL(OIDC_ID_TOKEN), NULL);
    free(t);
    t = raw_jws("{\"alg\":\"NONE\",\"kid\":\"ec-1\"}", payload);
    oidc_seed("alg-none-upper", disc, jwks, t, CTL(OIDC_ID_TOKEN | OIDC_ACCEPT_JAG), NULL);
    free(t);
    /* HS256 keyed with the provider's public key: its PEM, its JWK */
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem = NULL;
    if (bio == NULL || PEM_write_bio_PUBKEY(bio, keys[1]) != 1)
        abort();
    long pem_len = BIO_get_mem_data(bio, &pem);
    t = hs256_jws("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"rsa-1\"}", payload, pem,
                  (size_t)pem_len);
    oidc_seed("hs256-public-key-pem", disc, jwks, t, CTL(OIDC_ID_TOKEN), NULL);
    free(t);
    BIO_free(bio);
    json_t *jwk = mandate_jwk_from_key(keys[0], "ec-1");
    char *jwk_text = json_dumps(jwk, JSON_COMPACT);
    json_decref(jwk);
    t = hs256_jws("{\"alg\":\"HS256\",\"kid\":\"ec-1\"}", payload, jwk_text, strlen(jwk_text));
    oidc_seed("hs256-public-key-jwk", disc, jwks, t, CTL(OIDC_JWT), NULL);
    free(t);
    free(jwk_text);
    /* kid confusion: ES256 over the RSA key's kid; a rogue key's signature
     * under a published kid, also when the rogue key is published second
     * under the same kid (the first is kept);
     * no kid; a kid that is no string */
    t = oidc_sign(keys[0], "rsa-1", "JWT", oidc_claims(0));
    oidc_seed("kid-confusion-other-key-type", disc, jwks, t, CTL(OIDC_ID_TOKEN), NULL);
    free(t);
    t = oidc_sign(rogue, "ec-1", "JWT", oidc_claims(0));
    oidc_seed("kid-confusion-rogue-key", disc, jwks, t, CTL(OIDC_ID_TOKEN), NULL);
    char *jwks_dup = oidc_jwks((EVP_PKEY *[]){keys[0], rogue},
                               (const char *const[]){"ec-1", "ec-1"}, 2, NULL);
    oidc_seed("kid-duplicate-rogue-second", disc, jwks_dup, t, CTL(OIDC_ID_TOKEN), NULL);
    free(jwks_dup);
    free(t);
    t = raw_jws("{\"alg\":\"ES256\",\"typ\":\"JWT\"}", payload);
    oidc_seed("kid-missing", disc, jwks, t, CTL(OIDC_ID_TOKEN), NULL);
    free(t);
    t = raw_jws("{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":[\"ec-1\"]}", payload);
    oidc_seed("kid-array", disc, jwks, t, CTL(OIDC_ID_TOKEN), NULL);
    free(t);
    t = raw_jws("{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"../../ec-1\"}", payload);
    oidc_seed("kid-path", disc, jwks, t, CTL(OIDC_ID_TOKEN | OIDC_ROTATE), NULL);
    free(t);
    t = raw_jws("{\"alg\":\"ES256\",\"kid\":\"ec-1\",\"crit\":[\"exp\"]}", payload);
    oidc_seed("crit", disc, jwks, t, CTL(OIDC_ID_TOKEN), NULL);
    free(t);
    t = raw_jws("{\"alg\":\"EdDSA\",\"kid\":\"ec-1\",\"jwk\":{\"kty\":\"OKP\"}}", payload);
    oidc_seed("alg-of-other-key", disc, jwks, t, CTL(OIDC_ID_TOKEN), NULL);
    free(t);

    /* oversized: past max_token_size (16384), and past 1024 */
    c = oidc_claims(0);
    char *pad = malloc(17000);
    memset(pad, 'p', 16999);
    pad[16999] = '\0';
    json_object_set_new(c, "pad", json_string(pad));
    free(pad);
    char *big = json_dumps(c, JSON_COMPACT);
    json_decref(c);
    t = raw_jws("{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"ec-1\"}", big);
    oidc_seed("oversized", disc, jwks, t, CTL(OIDC_ID_TOKEN), NULL);
    oidc_seed("oversized-not-accepted", disc, jwks, t, CTL(OIDC_ID_JAG), NULL);
    free(t);
    free(big);
    /* past 64 KiB, where the plugin no longer reads the iss */
    big = malloc(70000);
    memset(big, 'A', 69999);
    big[69999] = '\0';
    memcpy(big, "eyJhbGciOiJFUzI1NiJ9.", 21);
    oidc_seed("oversized-64k", disc, jwks, big, CTL(OIDC_ID_TOKEN), NULL);
    free(big);
    c = oidc_claims(0);
    json_object_set_new(c, "groups",
                        json_pack("[s,s,s,s,s,s,s,s]", "engineering-platform-admins",
                                  "engineering-platform-oncall", "finance-read-only-auditors",
                                  "mcp-agents-production", "mcp-agents-staging",
                                  "security-incident-responders", "sre-database-owners",
                                  "support-tier-two-escalations"));
    json_object_set_new(c, "picture",
                        json_string("https://idp.example.com/avatars/00u1a2b3c4/"
                                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b78"
                                    "52b855.png?size=256&format=png&v=20300317"));
    json_object_set_new(c, "address",
                        json_pack("{s:s, s:s, s:s, s:s}", "street_address",
                                  "1 Analytical Engine Way", "locality", "London",
                                  "postal_code", "EC1A 1BB", "country", "GB"));
    t = oidc_sign(keys[2], "ed-1", "JWT", c);
    oidc_seed("over-1024-strict", disc, jwks, t, CTL(OIDC_ID_TOKEN | OIDC_STRICT), NULL);
    free(t);

    /* the provider's side: discovery of another issuer, no jwks_uri, an
     * http jwks_uri elsewhere, errors, nonsense, JWK sets without usable
     * keys */
    t = oidc_sign(keys[0], "ec-1", "JWT", oidc_claims(0));
    oidc_seed("discovery-other-issuer",
              "{\"issuer\":\"https://evil.example\",\"jwks_uri\":"
              "\"https://evil.example/keys\"}",
              jwks, t, CTL(OIDC_ID_TOKEN), NULL);
    oidc_seed("discovery-issuer-slash",
              "{\"issuer\":\"" OIDC_ISS "/\",\"jwks_uri\":\"" OIDC_ISS "/keys\"}", jwks, t,
              CTL(OIDC_ID_TOKEN), NULL);
    oidc_seed("discovery-no-jwks-uri", "{\"issuer\":\"" OIDC_ISS "\"}", jwks, t,
              CTL(OIDC_ID_TOKEN), NULL);
    oidc_seed("discovery-jwks-uri-ftp",
              "{\"issuer\":\"" OIDC_ISS "\",\"jwks_uri\":"
              "\"ftp://idp.example.com/keys\"}",
              jwks, t, CTL(OIDC_ID_TOKEN), NULL);
    oidc_seed("discovery-jwks-uri-http",
              "{\"issuer\":\"" OIDC_ISS "\",\"jwks_uri\":"
              "\"http://10.0.0.1:8080/keys\"}",
              jwks, t, CTL(OIDC_ID_TOKEN), NULL);
    oidc_seed("discovery-duplicate-issuer",
              "{\"issuer\":\"https://evil.example\",\"issuer\":\"" OIDC_ISS
              "\",\"jwks_uri\":\"" OIDC_ISS "/keys\"}",
              jwks, t, CTL(OIDC_ID_TOKEN), NULL);
    oidc_seed("discovery-404", "HTTP 404\n<html>not found</html>", jwks, t, CTL(OIDC_ID_TOKEN),
              NULL);
    oidc_seed("discovery-redirect", "HTTP 302\n", jwks, t, CTL(OIDC_ID_TOKEN), NULL);
    oidc_seed("discovery-array", "[\"" OIDC_ISS "\"]", jwks, t, CTL(OIDC_ID_TOKEN), NULL);
    oidc_seed("jwks-503", disc, "HTTP 503\n{\"error\":\"unavailable\"}", t,
              CTL(OIDC_ID_TOKEN | OIDC_ROTATE), NULL);
    oidc_seed("jwks-unreachable", disc, "HTTP 000\n", t, CTL(OIDC_ID_TOKEN), NULL);
    oidc_seed("jwks-keys-object", disc, "{\"keys\":{\"kid\":\"ec-1\",\"kty\":\"EC\"}}", t,
              CTL(OIDC_ID_TOKEN), NULL);
    oidc_seed("jwks-no-usable-key", disc,
              "{\"keys\":[{\"kid\":\"ec-1\",\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"AA\","
              "\"y\":\"AA\"},{\"kid\":\"rsa-1\",\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"},"
              "{\"kid\":\"ed-1\",\"kty\":\"OKP\",\"crv\":\"Ed448\",\"x\":\"AA\"},"
              "{\"kid\":\"\",\"kty\":\"oct\",\"k\":\"c2VjcmV0\"},{\"kty\":\"EC\"},7,null,"
              "{\"kid\":7}]}",
              t, CTL(OIDC_ID_TOKEN), NULL);
    oidc_seed("jwks-empty", disc, "{\"keys\":[]}", t, CTL(OIDC_ID_TOKEN | OIDC_TWICE), NULL);
    oidc_seed("jwks-bare-array", disc, "[]", t, CTL(OIDC_ID_TOKEN | OIDC_FIXED_JWKS), NULL);
    oidc_seed("nothing", "", "", "", CTL(OIDC_ID_TOKEN), NULL);
    free(t);
    oidc_seed("not-a-jwt", disc, jwks, "mnd_0123456789abcdef", CTL(OIDC_JWT), NULL);
    oidc_seed("jwt-two-parts", disc, jwks,
              "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lkcC5l"
              "eGFtcGxlLmNvbS90ZW5hbnQifQ",
              CTL(OIDC_JWT), NULL);

    free(payload);
    free(jwks);
    EVP_PKEY_free(rogue);
}

/* A sign-in (fuzz-oidc's OIDC_LOGIN): part 2 is the token endpoint's answer.
 * The harness's random bytes are zeros: the nonce is 43 'A's. */
static void oidc_login_seeds(EVP_PKEY **keys)
{
    static const char *const kids[] = {"ec-1", "rsa-1", "ed-1"};
    char *jwks = oidc_jwks(keys, kids, 3, NULL);
    const char *nonce = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    /* byte 0: bit 4 asks max_age 300, bit 7 a new login; byte 1 keeps the
     * default jump (2) */
    static const unsigned char plain[] = {0, OIDC_LOGIN | 2},
                               max_age[] = {0x10, OIDC_LOGIN | 2},
                               fresh[] = {0x80, OIDC_LOGIN | 2};
    struct {
        const char *name;
        const unsigned char *ctl;
        const char *claim, *value; /* a claim changed (JSON; NULL: removed) */
    } ok[] = {
        {"login-ok", plain, NULL, NULL},
        {"login-max-age", max_age, NULL, NULL},
        {"login-max-age-too-old", max_age, "auth_time", "1899999000"},
        {"login-max-age-no-auth-time", max_age, "auth_time", NULL},
        {"login-new-login-too-old", fresh, "auth_time", "1899999000"},
        {"login-wrong-nonce", plain, "nonce", "\"n-0S6\""},
        {"login-no-nonce", plain, "nonce", NULL},
        {"login-aud-exchange-only", plain, "aud", "\"0b5c7f3e-client\""},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        json_t *c = oidc_claims(0);
        json_object_set_new(c, "nonce", json_string(nonce));
        if (ok[i].claim != NULL && ok[i].value == NULL)
            json_object_del(c, ok[i].claim);
        else if (ok[i].claim != NULL)
            json_object_set_new(c, ok[i].claim, json_loads(ok[i].value, JSON_DECODE_ANY, NULL));
        char *t = oidc_sign(keys[0], "ec-1", "JWT", c);
        json_t *doc = json_pack("{s:s,s:s,s:i,s:s}", "access_token", "at-1", "token_type",
                                "Bearer", "expires_in", 3600, "id_token", t);
        char *answer = json_dumps(doc, JSON_COMPACT);
        json_decref(doc);
        oidc_seed(ok[i].name, oidc_discovery, jwks, answer, ok[i].ctl, 2, NULL);
        free(answer);
        free(t);
    }
    /* the token endpoint's refusals and troubles */
    static const char *const answers[][2] = {
        {"login-invalid-grant", "HTTP 400\n{\"error\":\"invalid_grant\"}"},
        {"login-invalid-client", "HTTP 401\n{\"error\":\"invalid_client\"}"},
        {"login-server-error", "HTTP 500\n{}"},
        {"login-reset", "HTTP 000\n"},
        {"login-no-id-token", "{\"access_token\":\"at-1\",\"token_type\":\"Bearer\"}"},
        {"login-not-json", "<html></html>"},
    };
    for (size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); i++)
        oidc_seed(answers[i][0], oidc_discovery, jwks, answers[i][1], plain, 2, NULL);
    /* discovery without the sign-in's endpoints */
    oidc_seed("login-discovery-no-endpoints",
              "{\"issuer\":\"" OIDC_ISS "\",\"jwks_uri\":\"" OIDC_ISS "/keys\"}", jwks, "{}",
              plain, 2, NULL);
    free(jwks);
}

/* dpop: proofs by each key for the harness's request (POST to its token
 * endpoint at FUZZ_NOW), one with a token for ath, and proofs the checker
 * refuses (alg none, no jwk). */
static void dpop_seeds(EVP_PKEY *keys[3])
{
    static const char *const names[3] = {"es256-valid", "rs256-valid", "eddsa-valid"};
    static const char htu[] = "https://as.example.com/oauth2/token";
    for (int i = 0; i < 3; i++) {
        char *proof = mandate_dpop_proof_make(keys[i], "POST", htu, NULL, NULL, FUZZ_NOW);
        puts_("dpop", names[i], proof);
        free(proof);
    }
    char *proof =
        mandate_dpop_proof_make(keys[0], "POST", htu, "an-access-token", "a-nonce", FUZZ_NOW);
    char *with = malloc(strlen(proof) + 64);
    sprintf(with, "%s" FUZZ_SEP "an-access-token" FUZZ_SEP
                  "HTTPS://AS.example.com:443/oauth2/%%74oken",
            proof);
    puts_("dpop", "es256-ath-uri", with);
    free(with);
    free(proof);
    char *none = raw_jws("{\"typ\":\"dpop+jwt\",\"alg\":\"none\",\"jwk\":{\"kty\":\"EC\"}}",
                         "{\"jti\":\"a\",\"htm\":\"POST\",\"htu\":\"https://as.example.com/"
                         "oauth2/token\",\"iat\":1900000000}");
    puts_("dpop", "alg-none", none);
    free(none);
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
    sealed_seeds(keys[2]);
    oidc_seeds(keys);
    oidc_login_seeds(keys);
    dpop_seeds(keys);
    for (int i = 0; i < 3; i++)
        EVP_PKEY_free(keys[i]);
    return 0;
}
