/* The saml backend's parts shared by its files: saml.c (metadata, the
 * assertion check, the token exchange), sp-login.c (the service provider:
 * AuthnRequest, Assertion Consumer Service, SP metadata) and sp-decrypt.c
 * (EncryptedAssertion, EncryptedID). None of these names leaves the plugin:
 * it exports mandate_plugin_saml alone. */
#ifndef MANDATE_SAML_INTERNAL_H
#define MANDATE_SAML_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <libxml/tree.h>
#include <openssl/evp.h>
#include <xmlsec/keys.h>
#include <xmlsec/keysmngr.h>

#include <mandate/backend.h>

#define NS_SAML "urn:oasis:names:tc:SAML:2.0:assertion"
#define NS_SAMLP "urn:oasis:names:tc:SAML:2.0:protocol"
#define NS_MD "urn:oasis:names:tc:SAML:2.0:metadata"
#define NS_DS "http://www.w3.org/2000/09/xmldsig#"
#define NS_XENC "http://www.w3.org/2001/04/xmlenc#"

#define ALG_EXC_C14N "http://www.w3.org/2001/10/xml-exc-c14n#"
#define ALG_ENVELOPED "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
#define ALG_SHA256 "http://www.w3.org/2001/04/xmlenc#sha256"
#define ALG_RSA_SHA256 "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
#define ALG_ECDSA_SHA256 "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"

#define CM_BEARER "urn:oasis:names:tc:SAML:2.0:cm:bearer"
#define STATUS_SUCCESS "urn:oasis:names:tc:SAML:2.0:status:Success"
#define BINDING_REDIRECT "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
#define BINDING_POST "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"

#define MAX_SIZE_MIN 4096
#define MAX_SIZE_MAX (4 * 1024 * 1024)
#define ID_LEN_MAX 256
#define NAMEID_LEN_MAX 1024
/* Characters of a document value quoted in an error message. */
#define QUOTE_MAX 64

/* One key pair of the service provider: signs AuthnRequests, decrypts
 * what the IdP encrypted to its certificate. */
typedef struct saml_sp_key {
    EVP_PKEY *pkey;          /* for the AuthnRequest's signature */
    xmlSecKeysMngrPtr mngr;  /* holds the private key, for xmlenc */
    char *cert_b64;          /* the certificate, base64 DER, for the SP metadata */
} saml_sp_key;

typedef struct saml_inst {
    /* conf */
    char *idp_metadata;
    char *sp_entity_id;
    int64_t clock_skew;
    bool replay_check;
    int64_t max_assertion_size;
    char *recipient;
    bool allow_response;
    /* conf: the service provider (sign-in) */
    char *sp_key_file, *sp_certificate_file;           /* current */
    char *sp_next_key_file, *sp_next_certificate_file; /* rollover: published, tried */
    bool sign_authn_requests;
    char *nameid_format;
    char *idp_initiated_client;
    char *idp_initiated_resource;
    /* set by instantiate */
    const mandate_host *host;
    char *entity_id;    /* the IdP's, from the metadata */
    char *replay_ns;    /* "saml:" + entity_id */
    xmlSecKeyPtr *keys; /* the metadata's signing certificates' keys */
    EVP_PKEY **idp_pkeys; /* the same keys, for the redirect binding's signatures */
    size_t n_keys;
    char *sso_url;      /* the IdP's SingleSignOnService, HTTP-Redirect; may be NULL */
    bool idp_wants_signed_requests; /* WantAuthnRequestsSigned="true" */
    char *slo_url;          /* the IdP's SingleLogoutService, HTTP-Redirect; may be NULL */
    char *slo_response_url; /* its ResponseLocation, else slo_url */
    bool logout_require_signature; /* conf */
    saml_sp_key sp_keys[2]; /* [0] current, [1] next; pkey NULL: none */
} saml_inst;

/* What the Assertion Consumer Service expects beyond the exchange's checks;
 * NULL for the exchange. */
typedef struct saml_expect {
    const char *acs_url;    /* Destination (when present) and Recipient */
    const char *request_id; /* InResponseTo; NULL: an unsolicited response */
    bool status_refused;    /* set: the Response's Status said no (a denial,
                               not a forgery) */
} saml_expect;

typedef enum text_rc { TEXT_OK, TEXT_EMPTY, TEXT_MIXED } text_rc;

/* A document value fit for a message (see saml.c). */
const char *saml_quote(const char *s, char buf[QUOTE_MAX + 4]);
#define Q(s) saml_quote((const char *)(s), (char[QUOTE_MAX + 4]){0})

bool saml_is_el(const xmlNode *n, const char *ns, const char *name);
xmlNode *saml_child_el(const xmlNode *parent, const char *ns, const char *name,
                       size_t *count_r);
xmlNode *saml_next_el(const xmlNode *n, const char *ns, const char *name);
char *saml_attr(const xmlNode *n, const char *name);
size_t saml_count_el(const xmlNode *root, const char *ns, const char *name);
text_rc saml_single_text(const xmlNode *n, const char **s_r);
bool saml_parse_time(const char *s, int64_t *t_r);
void saml_fmt_time(int64_t t, char buf[32]);
long saml_b64_decode(const char *in, size_t len, unsigned char *out, size_t *bad_r);
xmlDocPtr saml_parse_xml(const char *buf, size_t len, const char *path, const char *what,
                         mandate_rc rc, mandate_error *err);

/* MANDATE_OK when el has one ns:name (a ds:SignatureMethod, an
 * xenc:EncryptionMethod...) whose Algorithm is among allowed (NULL ends
 * it) and which names none of its parameters twice; else DENIED: "the
 * WHAT's KIND "..." is not allowed (NAMES)", which quotes the first one's
 * Algorithm, or "... names one of its parameters twice (NAMES)". */
mandate_rc saml_check_algorithm(const xmlNode *el, const char *ns, const char *name,
                                const char *const *allowed, const char *what, const char *kind,
                                const char *names, mandate_error *err);

/* Decodes base64 text (at most inst->max_assertion_size bytes once decoded)
 * into an XML document checked as the exchange checks it: DENIED with the
 * reason, or MANDATE_OK. what: "assertion", "SAMLResponse". */
mandate_rc saml_decode_and_validate(const saml_inst *inst, mandate_pool *pool,
                                    const char *text, size_t len, const char *what,
                                    saml_expect *expect, mandate_identity *identity_r,
                                    mandate_error *err);

/* Claims key (the ID id of what, or a key made of it) in the replay
 * store until then: replayed_rc when it was claimed before, TEMPFAIL or
 * ERROR when the store fails. */
mandate_rc saml_replay_claim(const saml_inst *inst, const char *key, const char *id,
                             int64_t until, mandate_rc replayed_rc, const char *what,
                             mandate_error *err);

/* sp-decrypt.c: replaces wrapper (an EncryptedAssertion or EncryptedID) by
 * the one element ns:name it decrypts to, with the SP's keys; *out_r is
 * that element. MANDATE_DENIED with the reason. */
mandate_rc saml_decrypt(const saml_inst *inst, xmlNode *wrapper, const char *ns,
                        const char *name, xmlNode **out_r, mandate_error *err);

/* sp-login.c */
mandate_rc saml_sp_instantiate(saml_inst *inst, mandate_error *err);
void saml_sp_destroy(saml_inst *inst);
mandate_rc saml_login_start(void *inst, mandate_pool *pool, const mandate_login_request *request,
                            mandate_login_redirect *redirect_r, mandate_error *err);
mandate_rc saml_login_finish(void *inst, mandate_pool *pool,
                             const mandate_login_response *response,
                             mandate_identity *identity_r, mandate_error *err);
mandate_rc saml_login_metadata(void *inst, mandate_pool *pool, const char *callback_url,
                               char **text_r, const char **content_type_r, mandate_error *err);
/* Shared with sp-logout.c: whether requests to the IdP are signed; a
 * message of the HTTP-Redirect binding (DEFLATE, base64, param=SAMLRequest
 * or SAMLResponse, RelayState, SigAlg and Signature with sp_key when
 * signed) to dest, in *url_r from pool. */
bool saml_signs_requests(const saml_inst *inst);
/* A fresh request ID: "_" and 40 hex digits. false: no randomness. */
#define REQUEST_ID_BYTES 20
#define SAML_REQUEST_ID_SIZE (2 * REQUEST_ID_BYTES + 2)
bool saml_new_id(const saml_inst *inst, char id[SAML_REQUEST_ID_SIZE]);
/* A protocol message being written: a memstream (its text in buf, see
 * saml_memstream_done) and the message's ID. */
typedef struct saml_message {
    char id[SAML_REQUEST_ID_SIZE];
    char *buf;
    size_t size;
    FILE *f;
} saml_message;
/* Starts m with a protocol message samlp:name to dest: a fresh ID,
 * Version, IssueInstant now, Destination; the caller goes on writing to
 * m->f more attributes, then saml_message_issuer. false: err says why (also
 * when the IdP wants messages signed and there is no sp_key to sign with). */
bool saml_message_open(const saml_inst *inst, saml_message *m, const char *name,
                       const char *dest, mandate_error *err);
/* Ends m's start tag and writes the SP's saml:Issuer, the first element of
 * every message the SP sends. */
void saml_message_issuer(const saml_inst *inst, saml_message *m);
mandate_rc saml_redirect_url(const saml_inst *inst, mandate_pool *pool, const char *dest,
                             const char *param, const char *xml, const char *relay_state,
                             const char **url_r, mandate_error *err);
/* A request (m, written to its end) sent to dest with the HTTP-Redirect
 * binding: redirect_r's url, and its remember = m's ID, for the answer's
 * InResponseTo. */
mandate_rc saml_redirect_request(const saml_inst *inst, mandate_pool *pool, const char *dest,
                                 saml_message *m, const char *relay_state,
                                 mandate_login_redirect *redirect_r, mandate_error *err);
/* s with XML's special characters escaped, into out. */
void saml_xml_escaped(FILE *out, const char *s);
/* Percent-encoding of all but RFC 3986's unreserved characters, into out. */
void saml_url_escaped(FILE *out, const char *s);
/* A memstream's text, copied into pool (NULL: out of memory). */
char *saml_memstream_done(const saml_inst *inst, mandate_pool *pool, FILE *f, char **buf);

/* sp-logout.c: single logout (ABI 1.6) */
/* Our SingleLogoutService in the SP metadata: the callback's URL with
 * "logout" for "callback" (the core's route); nothing when it does not end
 * in /callback. Written before NameIDFormat (the schema's order). */
void saml_slo_metadata(FILE *f, const char *callback_url);
mandate_rc saml_slo_from_metadata(saml_inst *inst, const xmlNode *idp_descriptor,
                                  mandate_error *err);
mandate_rc saml_session_refs(const saml_inst *inst, mandate_pool *pool, const xmlNode *assertion,
                             mandate_identity *identity_r, mandate_error *err);
mandate_rc saml_logout_start(void *inst, mandate_pool *pool, const mandate_logout_request *request,
                             mandate_login_redirect *redirect_r, mandate_error *err);
mandate_rc saml_logout_finish(void *inst, mandate_pool *pool,
                              const mandate_logout_message *message,
                              mandate_logout_result *result_r, mandate_error *err);

#endif
