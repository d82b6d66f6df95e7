/* The saml backend's single logout (SAML 2.0 profiles §4.4, the
 * HTTP-Redirect binding; backend ABI 1.6):
 *
 *  - at the ACS (saml_session_refs): the assertion's NameID (with its
 *    Format and qualifiers) and the AuthnStatement's SessionIndex, kept by
 *    the core with the browser session (session_ref) and as the key it
 *    finds the session by (session_key);
 *  - logout_start: a LogoutRequest for that NameID and SessionIndex to the
 *    IdP's SingleLogoutService (HTTP-Redirect) from its metadata, signed
 *    as AuthnRequests are; its ID is remembered by the core;
 *  - logout_finish, at /login/INSTANCE/logout: the IdP's LogoutResponse to
 *    it (InResponseTo = the remembered ID), or the IdP's own LogoutRequest
 *    (the keys of the sign-ins to end, and both LogoutResponses made in
 *    advance: Success, or Requester/UnknownPrincipal when none matched).
 *
 * Both messages come through the browser: the signature of the redirect
 * binding is checked over the query's exact octets with the IdP metadata's
 * certificates (required unless logout_require_signature = false; an XML
 * signature inside a redirect message is not looked at), the Issuer is the
 * IdP's entityID, the Destination (when present, required when signed) is
 * our route, IssueInstant within LOGOUT_MAX_AGE, a request's ID used once.
 * The query, the deflated and the inflated message are bounded by
 * max_assertion_size; no DTD. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <zlib.h>

#include <mandate/backend.h>

#include "saml-internal.h"

/* seconds a LogoutRequest or LogoutResponse may be old, the skew besides */
#define LOGOUT_MAX_AGE 300
#define SESSION_INDEX_LEN_MAX 256
#define NAMEID_FORMAT_UNSPECIFIED "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
#define STATUS_REQUESTER "urn:oasis:names:tc:SAML:2.0:status:Requester"
#define STATUS_UNKNOWN_PRINCIPAL "urn:oasis:names:tc:SAML:2.0:status:UnknownPrincipal"

/* --- metadata -------------------------------------------------------------- */

mandate_rc saml_slo_from_metadata(saml_inst *inst, const xmlNode *idp, mandate_error *err)
{
    for (xmlNode *slo = saml_child_el(idp, NS_MD, "SingleLogoutService", NULL);
         slo != NULL && inst->slo_url == NULL;
         slo = saml_next_el(slo, NS_MD, "SingleLogoutService")) {
        char *binding = saml_attr(slo, "Binding");
        char *location = saml_attr(slo, "Location");
        char *response = saml_attr(slo, "ResponseLocation");
        if (binding != NULL && strcmp(binding, BINDING_REDIRECT) == 0 && location != NULL &&
            location[0] != '\0') {
            inst->slo_url = strdup(location);
            inst->slo_response_url =
                strdup(response != NULL && response[0] != '\0' ? response : location);
        }
        xmlFree(binding);
        xmlFree(location);
        xmlFree(response);
        if (inst->slo_url != NULL && inst->slo_response_url == NULL)
            return mandate_error_set(err, MANDATE_ERROR, "saml: out of memory");
    }
    return MANDATE_OK;
}

void saml_slo_metadata(FILE *f, const char *callback_url)
{
    static const char tail[] = "/callback";
    size_t n = strlen(callback_url), t = sizeof(tail) - 1;
    if (n < t || strcmp(callback_url + n - t, tail) != 0)
        return;
    fputs("    <md:SingleLogoutService Binding=\"" BINDING_REDIRECT "\" Location=\"", f);
    char *base = strndup(callback_url, n - t);
    if (base != NULL)
        saml_xml_escaped(f, base);
    free(base);
    fputs("/logout\"/>\n", f);
}

/* --- what names a sign-in ---------------------------------------------------- */

/* The fields of a sign-in for single logout, each percent-encoded, joined
 * by spaces: the key is the same text whether made from the assertion or
 * from the IdP's LogoutRequest. */
typedef struct session_fields {
    const char *format, *sp_qualifier, *qualifier, *name_id, *session_index;
} session_fields;

static char *encode_fields(const saml_inst *inst, mandate_pool *pool, const session_fields *s,
                           bool key)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (f == NULL)
        return NULL;
    saml_url_escaped(f, s->format != NULL ? s->format : NAMEID_FORMAT_UNSPECIFIED);
    if (!key) {
        fputc(' ', f);
        saml_url_escaped(f, s->sp_qualifier != NULL ? s->sp_qualifier : "");
        fputc(' ', f);
        saml_url_escaped(f, s->qualifier != NULL ? s->qualifier : "");
    }
    fputc(' ', f);
    saml_url_escaped(f, s->name_id);
    fputc(' ', f);
    saml_url_escaped(f, s->session_index != NULL ? s->session_index : "");
    return saml_memstream_done(inst, pool, f, &buf);
}

static int hex_value(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Percent-decodes s[0..len) into a new pool string ('+' is a space when
 * plus_space); NULL when malformed or holding a NUL. */
static char *url_decode(const saml_inst *inst, mandate_pool *pool, const char *s, size_t len,
                        bool plus_space)
{
    char *out = inst->host->pool_alloc(pool, len + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%') {
            int hi = i + 1 < len ? hex_value(s[i + 1]) : -1;
            int lo = i + 2 < len ? hex_value(s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return NULL;
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
            continue;
        }
        out[o++] = plus_space && s[i] == '+' ? ' ' : s[i];
    }
    out[o] = '\0';
    return out;
}

mandate_rc saml_session_refs(const saml_inst *inst, mandate_pool *pool, const xmlNode *a,
                             mandate_identity *identity_r, mandate_error *err)
{
    xmlNode *subject = saml_child_el(a, NS_SAML, "Subject", NULL);
    xmlNode *name_id = saml_child_el(subject, NS_SAML, "NameID", NULL);
    xmlNode *as = saml_child_el(a, NS_SAML, "AuthnStatement", NULL);
    if (name_id == NULL || identity_r->subject == NULL)
        return MANDATE_OK; /* checked before: not reached */
    char *format = saml_attr(name_id, "Format");
    char *spq = saml_attr(name_id, "SPNameQualifier");
    char *nq = saml_attr(name_id, "NameQualifier");
    char *index = as != NULL ? saml_attr(as, "SessionIndex") : NULL;
    mandate_rc rc = MANDATE_OK;
    if (index != NULL && strlen(index) > SESSION_INDEX_LEN_MAX) {
        rc = mandate_error_set(err, MANDATE_DENIED, "saml: the SessionIndex is longer than %d",
                               SESSION_INDEX_LEN_MAX);
    } else {
        session_fields s = {format, spq, nq, identity_r->subject, index};
        identity_r->session_ref = encode_fields(inst, pool, &s, false);
        identity_r->session_key = encode_fields(inst, pool, &s, true);
        if (identity_r->session_ref == NULL || identity_r->session_key == NULL)
            rc = mandate_error_set(err, MANDATE_ERROR, "saml: out of memory");
    }
    xmlFree(format);
    xmlFree(spq);
    xmlFree(nq);
    xmlFree(index);
    return rc;
}

/* session_ref back into its fields (pool strings); false when malformed. */
static bool decode_ref(const saml_inst *inst, mandate_pool *pool, const char *ref,
                       session_fields *s)
{
    const char *part[5];
    size_t len[5], n = 0;
    const char *p = ref;
    while (n < 5) {
        const char *sp = strchr(p, ' ');
        part[n] = p;
        len[n] = sp != NULL ? (size_t)(sp - p) : strlen(p);
        n++;
        if (sp == NULL)
            break;
        p = sp + 1;
    }
    if (n != 5 || strchr(part[4], ' ') != NULL)
        return false;
    char *v[5];
    for (size_t i = 0; i < 5; i++)
        if ((v[i] = url_decode(inst, pool, part[i], len[i], false)) == NULL)
            return false;
    *s = (session_fields){v[0], v[1][0] ? v[1] : NULL, v[2][0] ? v[2] : NULL, v[3],
                          v[4][0] ? v[4] : NULL};
    return s->name_id[0] != '\0';
}

/* --- logout_start ------------------------------------------------------------ */

static void name_id_xml(FILE *f, const session_fields *s)
{
    fputs("<saml:NameID Format=\"", f);
    saml_xml_escaped(f, s->format);
    fputc('"', f);
    if (s->sp_qualifier != NULL) {
        fputs(" SPNameQualifier=\"", f);
        saml_xml_escaped(f, s->sp_qualifier);
        fputc('"', f);
    }
    if (s->qualifier != NULL) {
        fputs(" NameQualifier=\"", f);
        saml_xml_escaped(f, s->qualifier);
        fputc('"', f);
    }
    fputc('>', f);
    saml_xml_escaped(f, s->name_id);
    fputs("</saml:NameID>", f);
}

mandate_rc saml_logout_start(void *inst_, mandate_pool *pool,
                             const mandate_logout_request *request,
                             mandate_login_redirect *redirect_r, mandate_error *err)
{
    const saml_inst *inst = inst_;
    const mandate_host *host = inst->host;
    if (inst->slo_url == NULL)
        return mandate_error_set(err, MANDATE_NOT_FOUND,
                                 "saml: the IdP's metadata has no SingleLogoutService with "
                                 "the HTTP-Redirect binding");
    if (request->session_ref == NULL)
        return mandate_error_set(err, MANDATE_NOT_FOUND,
                                 "saml: the session has no NameID to log out");
    session_fields s;
    if (!decode_ref(inst, pool, request->session_ref, &s))
        return mandate_error_set(err, MANDATE_ERROR, "saml: a session_ref not made here");
    saml_message m;
    if (!saml_message_open(inst, &m, "LogoutRequest", inst->slo_url, err))
        return err != NULL ? err->rc : MANDATE_ERROR;
    FILE *f = m.f;
    saml_message_issuer(inst, &m);
    name_id_xml(f, &s);
    if (s.session_index != NULL) {
        fputs("<samlp:SessionIndex>", f);
        saml_xml_escaped(f, s.session_index);
        fputs("</samlp:SessionIndex>", f);
    }
    fputs("</samlp:LogoutRequest>", f);
    mandate_rc rc =
        saml_redirect_request(inst, pool, inst->slo_url, &m, request->handle, redirect_r, err);
    if (rc != MANDATE_OK)
        return rc;
    mandate_log_debug(host, "saml: LogoutRequest %s to %s", m.id, Q(inst->slo_url));
    return MANDATE_OK;
}

/* --- the redirect binding's query ---------------------------------------------- */

/* The fields of a redirect message, raw (as sent, percent-encoded) and
 * decoded. */
typedef struct redirect_query {
    const char *raw_message, *raw_relay, *raw_sig_alg;
    size_t raw_message_len, raw_relay_len, raw_sig_alg_len;
    bool is_request; /* SAMLRequest, else SAMLResponse */
    const char *message, *relay_state, *sig_alg, *signature;
} redirect_query;

static mandate_rc parse_query(const saml_inst *inst, mandate_pool *pool, const char *raw,
                              redirect_query *q, mandate_error *err)
{
    memset(q, 0, sizeof(*q));
    if (raw == NULL || raw[0] == '\0')
        return mandate_error_set(err, MANDATE_INVALID,
                                 "saml: no query (single logout takes the HTTP-Redirect "
                                 "binding)");
    size_t max = (size_t)inst->max_assertion_size;
    if (strlen(raw) > max)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "saml: the logout message's query is %zu bytes, more than "
                                 "max_assertion_size (%zu)",
                                 strlen(raw), max);
    const char *raw_sig = NULL;
    size_t raw_sig_len = 0;
    int requests = 0, responses = 0, relays = 0, algs = 0, sigs = 0;
    for (const char *p = raw; *p != '\0';) {
        const char *amp = strchr(p, '&');
        size_t len = amp != NULL ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t name_len = eq != NULL ? (size_t)(eq - p) : len;
        const char *value = eq != NULL ? eq + 1 : p + len;
        size_t value_len = len - name_len - (eq != NULL ? 1 : 0);
#define IS(name) (name_len == sizeof(name) - 1 && memcmp(p, name, name_len) == 0)
        if (IS("SAMLRequest") || IS("SAMLResponse")) {
            q->is_request = IS("SAMLRequest");
            if (q->is_request)
                requests++;
            else
                responses++;
            q->raw_message = p;
            q->raw_message_len = len;
        } else if (IS("RelayState")) {
            relays++;
            q->raw_relay = p;
            q->raw_relay_len = len;
        } else if (IS("SigAlg")) {
            algs++;
            q->raw_sig_alg = p;
            q->raw_sig_alg_len = len;
        } else if (IS("Signature")) {
            sigs++;
            raw_sig = value;
            raw_sig_len = value_len;
        }
#undef IS
        p += len;
        if (*p == '&')
            p++;
    }
    if (requests + responses != 1)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "saml: the query holds %d SAMLRequest and %d SAMLResponse "
                                 "fields, not one of them",
                                 requests, responses);
    if (relays > 1 || algs > 1 || sigs > 1)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "saml: a field of the query is repeated (RelayState, SigAlg "
                                 "or Signature)");
    if (algs != sigs)
        return mandate_error_set(err, MANDATE_INVALID, "saml: the query has %s without %s",
                                 algs ? "SigAlg" : "Signature", algs ? "Signature" : "SigAlg");
    size_t name = q->is_request ? strlen("SAMLRequest=") : strlen("SAMLResponse=");
    q->message = q->raw_message_len > name ? url_decode(inst, pool, q->raw_message + name,
                                                        q->raw_message_len - name, true)
                                           : NULL;
    if (q->raw_relay != NULL)
        q->relay_state = q->raw_relay_len > strlen("RelayState=")
                             ? url_decode(inst, pool, q->raw_relay + strlen("RelayState="),
                                          q->raw_relay_len - strlen("RelayState="), true)
                             : "";
    if (q->raw_sig_alg != NULL) {
        /* "SigAlg" alone (no '='): shorter than the name and its '=' */
        q->sig_alg = q->raw_sig_alg_len > strlen("SigAlg=")
                         ? url_decode(inst, pool, q->raw_sig_alg + strlen("SigAlg="),
                                      q->raw_sig_alg_len - strlen("SigAlg="), true)
                         : NULL;
        q->signature = url_decode(inst, pool, raw_sig, raw_sig_len, true);
    }
    if (q->message == NULL || q->message[0] == '\0' ||
        (q->raw_relay != NULL && q->relay_state == NULL) ||
        (q->raw_sig_alg != NULL && (q->sig_alg == NULL || q->signature == NULL)))
        return mandate_error_set(err, MANDATE_INVALID,
                                 "saml: a field of the query is empty or not percent-encoded");
    return MANDATE_OK;
}

/* The redirect binding's signature (bindings §3.4.4.1): over
 * "SAMLxxx=..&RelayState=..&SigAlg=.." as received, with one of the IdP
 * metadata's keys. */
static mandate_rc check_query_signature(const saml_inst *inst, mandate_pool *pool,
                                        const redirect_query *q, mandate_error *err)
{
    if (q->sig_alg == NULL) {
        if (inst->logout_require_signature)
            return mandate_error_set(err, MANDATE_INVALID,
                                     "saml: the logout message is not signed (no SigAlg and "
                                     "Signature), and this instance requires it");
        return MANDATE_OK;
    }
    bool rsa = strcmp(q->sig_alg, ALG_RSA_SHA256) == 0;
    bool ec = strcmp(q->sig_alg, ALG_ECDSA_SHA256) == 0;
    if (!rsa && !ec)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "saml: SigAlg \"%s\" refused (rsa-sha256 or ecdsa-sha256)",
                                 Q(q->sig_alg));
    size_t sig_len = strlen(q->signature);
    unsigned char *sig = inst->host->pool_alloc(pool, sig_len / 4 * 3 + 3);
    size_t bad = 0;
    long n = sig != NULL ? saml_b64_decode(q->signature, sig_len, sig, &bad) : -1;
    if (n <= 0)
        return mandate_error_set(err, MANDATE_INVALID, "saml: the Signature is not base64");
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (f == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "saml: out of memory");
    fwrite(q->raw_message, 1, q->raw_message_len, f);
    if (q->raw_relay != NULL) {
        fputc('&', f);
        fwrite(q->raw_relay, 1, q->raw_relay_len, f);
    }
    fputc('&', f);
    fwrite(q->raw_sig_alg, 1, q->raw_sig_alg_len, f);
    if (fclose(f) != 0) {
        free(buf);
        return mandate_error_set(err, MANDATE_ERROR, "saml: out of memory");
    }
    bool ok = false;
    for (size_t i = 0; i < inst->n_keys && !ok; i++) {
        EVP_PKEY *key = inst->idp_pkeys[i];
        int type = EVP_PKEY_get_base_id(key);
        if ((rsa && type != EVP_PKEY_RSA) || (ec && type != EVP_PKEY_EC))
            continue;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        ok = ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
             EVP_DigestVerify(ctx, sig, (size_t)n, (const unsigned char *)buf, size) == 1;
        EVP_MD_CTX_free(ctx);
    }
    free(buf);
    if (!ok)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "saml: the logout message's signature does not verify with "
                                 "the IdP metadata's certificates");
    return MANDATE_OK;
}

/* base64, then raw INFLATE, at most max bytes out: a deflate bomb stops
 * there. */
static char *inflate_b64(const saml_inst *inst, const char *b64, size_t *len_r,
                         mandate_error *err)
{
    size_t max = (size_t)inst->max_assertion_size, len = strlen(b64), bad = 0;
    unsigned char *raw = malloc(len / 4 * 3 + 3);
    char *out = malloc(max + 1);
    long n = raw != NULL && out != NULL ? saml_b64_decode(b64, len, raw, &bad) : -1;
    z_stream z = {0};
    int zrc = Z_DATA_ERROR;
    bool full = false;
    if (n > 0 && inflateInit2(&z, -15) == Z_OK) {
        z.next_in = raw;
        z.avail_in = (uInt)n;
        z.next_out = (Bytef *)out;
        z.avail_out = (uInt)max;
        zrc = inflate(&z, Z_FINISH);
        full = z.avail_out == 0;
        *len_r = z.total_out;
        inflateEnd(&z);
    }
    free(raw);
    if (zrc == Z_STREAM_END) {
        out[*len_r] = '\0';
        return out;
    }
    free(out);
    if (n <= 0)
        mandate_error_set(err, MANDATE_INVALID, "saml: the logout message is not base64");
    else if (full && zrc != Z_DATA_ERROR)
        mandate_error_set(err, MANDATE_INVALID,
                          "saml: the logout message inflates to more than max_assertion_size "
                          "(%zu)",
                          max);
    else
        mandate_error_set(err, MANDATE_INVALID,
                          "saml: the logout message is not DEFLATE data (HTTP-Redirect)");
    return NULL;
}

/* What a LogoutRequest and a LogoutResponse share: Version, Issuer, ID,
 * Destination, IssueInstant. */
static mandate_rc check_envelope(const saml_inst *inst, const xmlNode *root, const char *what,
                                 const char *callback_url, bool signed_, const char **id_r,
                                 mandate_error *err)
{
    const mandate_host *host = inst->host;
    char *version = saml_attr(root, "Version");
    bool v2 = version != NULL && strcmp(version, "2.0") == 0;
    xmlFree(version);
    if (!v2)
        return mandate_error_set(err, MANDATE_INVALID, "saml: the %s's Version is not 2.0",
                                 what);
    size_t n;
    const char *issuer = NULL;
    xmlNode *iss = saml_child_el(root, NS_SAML, "Issuer", &n);
    if (n != 1 || saml_single_text(iss, &issuer) != TEXT_OK)
        return mandate_error_set(err, MANDATE_INVALID, "saml: the %s has no single Issuer",
                                 what);
    if (strcmp(issuer, inst->entity_id) != 0)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "saml: the %s's Issuer \"%s\" is not this instance's IdP "
                                 "(\"%s\")",
                                 what, Q(issuer), Q(inst->entity_id));
    char *id = saml_attr(root, "ID");
    char *dest = saml_attr(root, "Destination");
    char *instant = saml_attr(root, "IssueInstant");
    int64_t t = 0, now = host->now(host);
    mandate_rc rc = MANDATE_OK;
    if (id == NULL || id[0] == '\0' || strlen(id) > ID_LEN_MAX)
        rc = mandate_error_set(err, MANDATE_INVALID, "saml: the %s has no usable ID", what);
    else if (dest == NULL && signed_)
        rc = mandate_error_set(err, MANDATE_INVALID,
                               "saml: the signed %s has no Destination (bindings §3.4.5.2)",
                               what);
    else if (dest != NULL && strcmp(dest, callback_url) != 0)
        rc = mandate_error_set(err, MANDATE_INVALID,
                               "saml: the %s's Destination \"%s\" is not this route (\"%s\")",
                               what, Q(dest), Q(callback_url));
    else if (instant == NULL || !saml_parse_time(instant, &t) || t == 0)
        rc = mandate_error_set(err, MANDATE_INVALID, "saml: the %s has no usable IssueInstant",
                               what);
    else if (t > now + inst->clock_skew || t < now - inst->clock_skew - LOGOUT_MAX_AGE)
        rc = mandate_error_set(err, MANDATE_INVALID,
                               "saml: the %s's IssueInstant %s is not within %d s of now", what,
                               Q(instant), LOGOUT_MAX_AGE);
    xmlFree(dest);
    xmlFree(instant);
    if (rc == MANDATE_OK)
        *id_r = id; /* the caller copies it into the pool and frees it */
    else
        xmlFree(id);
    return rc;
}

/* --- the IdP's answer to our LogoutRequest -------------------------------------- */

static mandate_rc logout_response(const saml_inst *inst, const xmlNode *root,
                                  const mandate_logout_message *message,
                                  mandate_logout_result *result_r, mandate_error *err)
{
    char *in_response_to = saml_attr(root, "InResponseTo");
    mandate_rc rc = MANDATE_OK;
    if (message->remember == NULL)
        rc = mandate_error_set(err, MANDATE_INVALID,
                               "saml: a LogoutResponse to no logout outstanding here (unknown "
                               "or used RelayState)");
    else if (in_response_to == NULL || strcmp(in_response_to, message->remember) != 0)
        rc = mandate_error_set(err, MANDATE_INVALID,
                               "saml: the LogoutResponse's InResponseTo \"%s\" is not the "
                               "outstanding request's",
                               Q(in_response_to != NULL ? in_response_to : "(none)"));
    xmlFree(in_response_to);
    if (rc != MANDATE_OK)
        return rc;
    result_r->kind = MANDATE_LOGOUT_ANSWERED;
    xmlNode *status = saml_child_el(root, NS_SAMLP, "Status", NULL);
    xmlNode *code = saml_child_el(status, NS_SAMLP, "StatusCode", NULL);
    char *value = code != NULL ? saml_attr(code, "Value") : NULL;
    bool success = value != NULL && strcmp(value, STATUS_SUCCESS) == 0;
    if (!success)
        rc = mandate_error_set(err, MANDATE_DENIED,
                               "saml: the IdP could not end its session (Status \"%s\")",
                               Q(value != NULL ? value : "(none)"));
    xmlFree(value);
    return rc;
}

/* --- the IdP's own LogoutRequest -------------------------------------------------- */

static const char *response_url(const saml_inst *inst, mandate_pool *pool,
                                const char *request_id, const char *status,
                                const char *sub_status, const char *relay_state,
                                mandate_error *err)
{
    saml_message m;
    if (!saml_message_open(inst, &m, "LogoutResponse", inst->slo_response_url, err))
        return NULL;
    FILE *f = m.f;
    fputs(" InResponseTo=\"", f);
    saml_xml_escaped(f, request_id);
    fputc('"', f);
    saml_message_issuer(inst, &m);
    fprintf(f, "<samlp:Status><samlp:StatusCode Value=\"%s\"", status);
    if (sub_status != NULL)
        fprintf(f, "><samlp:StatusCode Value=\"%s\"/></samlp:StatusCode>", sub_status);
    else
        fputs("/>", f);
    fputs("</samlp:Status></samlp:LogoutResponse>", f);
    char *xml = saml_memstream_done(inst, pool, f, &m.buf);
    const char *url = NULL;
    if (xml == NULL)
        mandate_error_set(err, MANDATE_ERROR, "saml: out of memory");
    else if (saml_redirect_url(inst, pool, inst->slo_response_url, "SAMLResponse", xml,
                               relay_state, &url, err) != MANDATE_OK)
        url = NULL;
    return url;
}

static mandate_rc logout_request(const saml_inst *inst, mandate_pool *pool, const xmlNode *root,
                                 const char *request_id, const char *relay_state,
                                 mandate_logout_result *result_r, mandate_error *err)
{
    const mandate_host *host = inst->host;
    if (inst->slo_url == NULL)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "saml: a LogoutRequest, and the IdP's metadata names no "
                                 "SingleLogoutService (HTTP-Redirect) to answer at");
    if (saml_child_el(root, NS_SAML, "EncryptedID", NULL) != NULL ||
        saml_child_el(root, NS_SAML, "BaseID", NULL) != NULL)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "saml: the LogoutRequest's identifier is not a plain NameID "
                                 "(EncryptedID and BaseID are not supported)");
    size_t n;
    xmlNode *name_id = saml_child_el(root, NS_SAML, "NameID", &n);
    const char *value = NULL;
    if (n != 1)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "saml: the LogoutRequest has %zu NameIDs, not 1", n);
    if (saml_single_text(name_id, &value) != TEXT_OK)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "saml: the LogoutRequest's NameID is not one text node");
    if (strlen(value) > NAMEID_LEN_MAX)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "saml: the LogoutRequest's NameID is longer than %d",
                                 NAMEID_LEN_MAX);
    char *not_after = saml_attr(root, "NotOnOrAfter");
    int64_t t = 0;
    bool expired = not_after != NULL &&
                   (!saml_parse_time(not_after, &t) || host->now(host) >= t + inst->clock_skew);
    xmlFree(not_after);
    if (expired)
        return mandate_error_set(err, MANDATE_INVALID,
                                 "saml: the LogoutRequest is past its NotOnOrAfter");
    char *format = saml_attr(name_id, "Format");
    session_fields s = {
        .format = host->pool_strdup(pool, format != NULL ? format : NAMEID_FORMAT_UNSPECIFIED),
        .name_id = value};
    xmlFree(format);
    size_t count = 0;
    mandate_rc rc = MANDATE_OK;
    for (xmlNode *si = saml_child_el(root, NS_SAMLP, "SessionIndex", NULL);
         si != NULL && rc == MANDATE_OK; si = saml_next_el(si, NS_SAMLP, "SessionIndex")) {
        const char *index;
        if (count == MANDATE_LOGOUT_KEYS_MAX)
            rc = mandate_error_set(err, MANDATE_INVALID,
                                   "saml: the LogoutRequest has more than %d SessionIndexes",
                                   MANDATE_LOGOUT_KEYS_MAX);
        else if (saml_single_text(si, &index) != TEXT_OK ||
                 strlen(index) > SESSION_INDEX_LEN_MAX)
            rc = mandate_error_set(err, MANDATE_INVALID,
                                   "saml: a SessionIndex is not one short text node");
        else {
            s.session_index = index;
            result_r->session_keys[count++] = encode_fields(inst, pool, &s, true);
        }
    }
    if (rc != MANDATE_OK)
        return rc;
    if (count == 0) {
        /* no SessionIndex: the sign-ins that had none (see doc/saml-sso.md) */
        s.session_index = NULL;
        result_r->session_keys[count++] = encode_fields(inst, pool, &s, true);
    }
    result_r->kind = MANDATE_LOGOUT_ASKED;
    result_r->key_count = count;
    result_r->subject = host->pool_strdup(pool, value);
    /* the request's ID once: a replayed LogoutRequest is refused */
    if (inst->replay_check) {
        char replay_id[ID_LEN_MAX + 8];
        snprintf(replay_id, sizeof(replay_id), "logout:%s", request_id);
        rc = saml_replay_claim(inst, replay_id, request_id,
                               host->now(host) + LOGOUT_MAX_AGE + 2 * inst->clock_skew,
                               MANDATE_INVALID, "LogoutRequest", err);
        if (rc != MANDATE_OK)
            return rc;
    }
    result_r->done_url =
        response_url(inst, pool, request_id, STATUS_SUCCESS, NULL, relay_state, err);
    result_r->unknown_url = result_r->done_url == NULL
                                ? NULL
                                : response_url(inst, pool, request_id, STATUS_REQUESTER,
                                               STATUS_UNKNOWN_PRINCIPAL, relay_state, err);
    for (size_t i = 0; i < count; i++)
        if (result_r->session_keys[i] == NULL)
            return mandate_error_set(err, MANDATE_ERROR, "saml: out of memory");
    return result_r->unknown_url != NULL ? MANDATE_OK : (err != NULL ? err->rc : MANDATE_ERROR);
}

mandate_rc saml_logout_finish(void *inst_, mandate_pool *pool,
                              const mandate_logout_message *message,
                              mandate_logout_result *result_r, mandate_error *err)
{
    const saml_inst *inst = inst_;
    redirect_query q;
    mandate_rc rc = parse_query(inst, pool, message->raw_query, &q, err);
    if (rc == MANDATE_OK)
        rc = check_query_signature(inst, pool, &q, err);
    if (rc != MANDATE_OK)
        return rc;
    size_t len = 0;
    char *xml = inflate_b64(inst, q.message, &len, err);
    if (xml == NULL)
        return MANDATE_INVALID;
    const char *what = q.is_request ? "LogoutRequest" : "LogoutResponse";
    xmlDocPtr doc = saml_parse_xml(xml, len, NULL, what, MANDATE_INVALID, err);
    free(xml);
    if (doc == NULL)
        return MANDATE_INVALID;
    xmlNode *root = xmlDocGetRootElement(doc);
    const char *id = NULL;
    if (!saml_is_el(root, NS_SAMLP, what))
        rc = mandate_error_set(
            err, MANDATE_INVALID, "saml: the %s field holds \"%s\", not a %s",
            q.is_request ? "SAMLRequest" : "SAMLResponse",
            Q(root != NULL ? root->name : (const xmlChar *)"(nothing)"), what);
    else
        rc = check_envelope(inst, root, what, message->callback_url, q.sig_alg != NULL, &id,
                            err);
    if (rc == MANDATE_OK) {
        const char *request_id = inst->host->pool_strdup(pool, id);
        xmlFree((char *)id);
        if (request_id == NULL)
            rc = mandate_error_set(err, MANDATE_ERROR, "saml: out of memory");
        else if (q.is_request)
            rc = logout_request(inst, pool, root, request_id, q.relay_state, result_r, err);
        else
            rc = logout_response(inst, root, message, result_r, err);
    }
    xmlFreeDoc(doc);
    return rc;
}
