/* The audit trail of this process and what goes into it. mandated opens it
 * at start and records every token request, issue, introspection, gateway
 * check and revocation; mandatectl opens it for each admin change and
 * records who made it. Both append to the same trail (see audit-private.h
 * for how two processes share it).
 *
 * Records never hold a secret or a whole token: a token is named by its
 * jti, and a token that could not be read at all by the first 8 hex digits
 * of its SHA-256. */
#ifndef MANDATE_AUDIT_EVENTS_PRIVATE_H
#define MANDATE_AUDIT_EVENTS_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <mandate/plugin.h>

#include "audit-private.h"
#include "config-private.h"

/* Opens the trail named by the configuration (audit.dir, fsync, rotation,
 * and with audit.seal the seal key derived from the KEK of kek_file, the
 * checkpoint intervals and the second sink). Until then, and after
 * mandate_audit_events_stop, nothing is recorded and mandate_audit_event
 * answers MANDATE_OK (tests of parts that do not audit). */
mandate_rc mandate_audit_events_start(const mandate_config *config, mandate_error *err);
/* The same for a short-lived command (mandatectl): no fsync per record;
 * mandate_audit_events_stop syncs them all at once, before it exits. */
mandate_rc mandate_audit_events_start_deferred(const mandate_config *config,
                                              mandate_error *err);
void mandate_audit_events_stop(void);
bool mandate_audit_events_started(void);
/* The last record written by this process: its seq and hash, to anchor the
 * trail outside the machine. false when no trail is open. */
bool mandate_audit_events_head(uint64_t *seq_r, char hash_hex_r[65]);
/* Whether config names the same trail settings as the open one (a reload
 * cannot move the trail: that takes a restart). */
bool mandate_audit_events_same(const mandate_config *config);
/* mandate_audit_seal on the open trail. */
mandate_rc mandate_audit_events_seal(char **line_r, mandate_error *err);
/* The syslog facility of audit.checkpoint.syslog ("authpriv": LOG_AUTHPRIV);
 * 0 for "off". */
int mandate_audit_syslog_facility(const char *name);

/* Appends event with fields (reference stolen; NULL for none), with the
 * request id of the calling thread. Returns once the record is as durable
 * as configured; on failure it logs why and returns the error: the caller
 * must not go on as if it had been recorded. */
mandate_rc mandate_audit_event(const char *event, json_t *fields);

/* Deferred durability, for the HTTP layer: between begin and end, the
 * records this thread appends are written but not waited for; end returns
 * the highest such seq (0: none). The response must then wait for
 * mandate_audit_events_when_durable: no thread blocks on the disk
 * meanwhile, and a thread's other connections go on. */
void mandate_audit_events_defer_begin(void);
uint64_t mandate_audit_events_defer_end(void);
/* PENDING: cb(ctx, durable) will be called (on another thread); DURABLE:
 * go on; LOST: the record never will be: answer 503. */
mandate_audit_durability mandate_audit_events_when_durable(uint64_t seq,
                                                           mandate_audit_durable_cb cb,
                                                           void *ctx);

/* Who runs this command, for admin records: "uid=0(root)", with
 * " sudo_user=alice" when run through sudo. */
const char *mandate_audit_actor(void);

/* A JSON string of text from outside (a presented client id, a grant
 * type): at most max bytes, bytes outside printable ASCII as '?', so that it
 * is always valid and bounded. NULL text gives JSON null. */
json_t *mandate_audit_text(const char *text, size_t max);
/* The bound for one such text in a record. */
#define MANDATE_AUDIT_TEXT_MAX 256

/* A short, non-reversible name for a token that has no jti to name it. */
void mandate_audit_token_ref(const char *token, size_t len, char out[9]);

#endif
