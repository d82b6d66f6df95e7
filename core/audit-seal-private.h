/* Seals of the audit trail: Ed25519-signed checkpoints of its head.
 *
 * The hash chain (audit-private.h) shows a record changed in place, but
 * whoever can write the files can also recompute every "prev" after an
 * edit, or cut records from the end, and the chain verifies again. A
 * checkpoint closes that gap: it names the head of the trail (the seq and
 * hash of its last record) and is signed with a key the writer keeps out of
 * the audit folder, so that a rewritten chain no longer matches the
 * checkpoints taken before the rewrite, and a cut tail no longer reaches the
 * last checkpoint sent elsewhere.
 *
 * Why a signature and not an HMAC: the verifier then needs only the public
 * key. An auditor (or a SIEM) checks the trail without holding anything that
 * could forge it, and the public key can be printed, pinned and published.
 * Why Ed25519: small (64-byte signatures, 32-byte keys), fast (tens of
 * microseconds to sign), deterministic (no nonce to get wrong), and in
 * OpenSSL 3.
 *
 * The key: the Ed25519 seed is derived from the key-encryption key with
 * HKDF-SHA256 and the label "mandate audit seal v1" (as every purpose key of
 * the broker, doc/README.md "Secrets"). Nothing is stored: the daemon and
 * mandatectl both derive it, the audit folder holds no key, and a new KEK is
 * a new seal key. Its id is the RFC 7638 thumbprint of its public JWK, named
 * in every checkpoint, so that a verifier given several public keys (before
 * and after a KEK change) picks the right one.
 *
 * A checkpoint, as a JSON object (the same in the trail and in the second
 * sink; every string is from a charset that needs no JSON escaping):
 *   {"checkpoint":{"key":KID,"seq":N,"hash":H,"ts":T,"file":F,"host":X,
 *                  "why":W},"sig":S}
 *   seq, hash: the record sealed (the head when the checkpoint was taken);
 *   ts: when; file: the base name of the file that holds record seq;
 *   host: the machine's name (to tell trails apart in a shared collector);
 *   why: records | time | rotation | close | request;
 *   sig: base64url of the Ed25519 signature of the text
 *     "mandate-audit-checkpoint-v1\nkey=KID\nseq=N\nhash=H\nts=T\nfile=F\n"
 *     "host=X\nwhy=W\n"
 *   (a fixed text rather than the JSON: a verifier rebuilds it exactly from
 *   the parsed fields, whatever a collector did to the JSON's spacing). */
#ifndef MANDATE_AUDIT_SEAL_PRIVATE_H
#define MANDATE_AUDIT_SEAL_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <mandate/plugin.h>

/* "kid": an RFC 7638 thumbprint, 43 base64url characters */
#define MANDATE_AUDIT_KID_LEN 43
#define MANDATE_AUDIT_SIG_LEN 64
/* the longest file and host names a checkpoint carries */
#define MANDATE_AUDIT_CP_FILE_MAX 63
#define MANDATE_AUDIT_CP_HOST_MAX 64
/* the event of a checkpoint record in the trail (reserved: no caller may
 * append it) */
#define MANDATE_AUDIT_CHECKPOINT_EVENT "audit.checkpoint"

typedef struct mandate_audit_checkpoint {
    char key[MANDATE_AUDIT_KID_LEN + 1];
    uint64_t seq;  /* >= 1 */
    char hash[65]; /* lower-case hex SHA-256 */
    char ts[28];   /* "2026-11-27T14:03:07.123456Z" */
    char file[MANDATE_AUDIT_CP_FILE_MAX + 1];
    char host[MANDATE_AUDIT_CP_HOST_MAX + 1];
    char why[12];
    unsigned char sig[MANDATE_AUDIT_SIG_LEN];
} mandate_audit_checkpoint;

/* The trail's seal key (Ed25519, private) from the key-encryption key in
 * kek_file (or $MANDATE_KEK). The KEK is wiped before it returns. */
mandate_rc mandate_audit_seal_key_load(const char *kek_file, EVP_PKEY **key_r,
                                       mandate_error *err);
/* The key id of an Ed25519 key (private or public). */
bool mandate_audit_seal_key_id(const EVP_PKEY *key, char kid_r[MANDATE_AUDIT_KID_LEN + 1]);
/* The public half as PEM (SubjectPublicKeyInfo), malloc'd; NULL on failure. */
char *mandate_audit_seal_public_pem(const EVP_PKEY *key);

/* The host name as a checkpoint carries it: characters outside
 * [A-Za-z0-9.-_] become '_', at most MANDATE_AUDIT_CP_HOST_MAX. */
void mandate_audit_seal_host(char host_r[MANDATE_AUDIT_CP_HOST_MAX + 1]);

/* Signs cp (seq, hash, ts, file, host and why filled in; key and sig are
 * set here). MANDATE_INVALID when a field is not of its charset. */
mandate_rc mandate_audit_checkpoint_sign(mandate_audit_checkpoint *cp, EVP_PKEY *key,
                                         mandate_error *err);
/* The members text `"checkpoint":{...},"sig":"..."` (malloc'd): spliced into
 * a trail record, or put between braces for the second sink. */
char *mandate_audit_checkpoint_members(const mandate_audit_checkpoint *cp);
/* Reads the "checkpoint" and "sig" members of obj, strictly: exactly the
 * seven members, each of its charset. false with the reason in why_r. */
bool mandate_audit_checkpoint_parse(const json_t *obj, mandate_audit_checkpoint *cp,
                                    char *why_r, size_t why_cap);

/* Public keys a verifier accepts seals from. */
typedef struct mandate_audit_keys mandate_audit_keys;
mandate_audit_keys *mandate_audit_keys_new(void);
void mandate_audit_keys_free(mandate_audit_keys **keys);
size_t mandate_audit_keys_count(const mandate_audit_keys *keys);
/* Adds an Ed25519 key (its public half is used; a reference is taken). */
mandate_rc mandate_audit_keys_add(mandate_audit_keys *keys, EVP_PKEY *key, mandate_error *err);
/* Adds every PEM public key in the file (one or more, as mandatectl audit
 * key prints them); MANDATE_INVALID when it holds none or one that is not
 * Ed25519. */
mandate_rc mandate_audit_keys_add_pem_file(mandate_audit_keys *keys, const char *path,
                                           mandate_error *err);
/* MANDATE_OK: signed by one of keys; MANDATE_NOT_FOUND: none has its key
 * id; MANDATE_INVALID: the signature does not match. */
mandate_rc mandate_audit_checkpoint_check(const mandate_audit_checkpoint *cp,
                                          const mandate_audit_keys *keys);

#endif
