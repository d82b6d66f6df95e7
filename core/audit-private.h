/* The audit trail: one JSON object per line, each a record of one event,
 * chained by SHA-256 so that a changed, removed, inserted or reordered
 * record is found by mandatectl audit verify.
 *
 * A record is written as compact JSON whose first members are, in order:
 *   "seq": 1, 2, 3, ... with no gap across files and restarts;
 *   "ts": UTC time with microseconds, "2026-11-27T14:03:07.123456Z";
 *   "prev": the lower-case hex SHA-256 of the previous record's line (its
 *           exact bytes, without the newline); 64 zeros for seq 1;
 *   "event": "token.issued", "client.created", ...;
 *   "request_id": when the event belongs to an HTTP request;
 * then the event's own members. Never a secret or a whole token.
 *
 * Files: DIR/audit-YYYYMMDDTHHMMSSZ.jsonl (UTC time of the file's first
 * record; names sort in chain order; a clash within one second gets
 * "-2", "-3", ... before .jsonl). A new file is begun when the current one
 * would pass rotate_bytes, or on the first record of a new UTC day when
 * rotate_daily; the chain continues: the first record of a file names the
 * last of the one before.
 *
 * Several processes may append to one trail (the daemon, and mandatectl
 * for admin changes): every append holds an exclusive flock on
 * DIR/audit.lock, and a writer that finds the newest file longer than it
 * left it (or a newer file) reads the last record again before it chains
 * on. A writer that begins a new file first takes the write permission off
 * the one it leaves (finished files are 0400): so one fstat of its own file
 * under the lock tells another writer whether anything changed. On open,
 * a last line without its newline (a crash in mid-write: the record was
 * never acknowledged) is cut off, with a warning in the log.
 *
 * Durability (fsync): OFF: write(2) only, and one fdatasync when a handle
 * leaves a file it wrote to (rotation, close: a short-lived command syncs
 * once, at exit); ALWAYS: fdatasync after every record; BATCH: group
 * commit: a caller returns only once its record is on disk, but records
 * written by concurrent callers while one fdatasync runs share the next
 * one. mandate_audit_append returns only once the record is as durable as
 * configured, so a response sent after it is covered.
 *
 * Seals (audit-seal-private.h has the format and the reasons): with a seal
 * key, the writer adds checkpoint records ("event":"audit.checkpoint") that
 * seal the head, each signed with Ed25519: when checkpoint_records records
 * wait unsealed, or the oldest of them has waited checkpoint_seconds; as the
 * last record of a file it leaves (rotation); on close, when this handle
 * wrote records. A checkpoint record at seq S seals record S-1: its "prev".
 * Each checkpoint also goes, once it is durable in the trail, to the second
 * sink: syslog and/or a file or FIFO, which an operator ships off the
 * machine. Signing and the second sink run on a thread of their own (when
 * checkpoint_seconds > 0), never on the caller of an append: a checkpoint
 * costs the trail one record and one signature (tens of microseconds) every
 * checkpoint_records records at most.
 * After a SIGKILL, the records written since the last checkpoint (at most
 * checkpoint_records, or checkpoint_seconds of them) are chained but not
 * sealed: the next checkpoint, after a restart, seals them. */
#ifndef MANDATE_AUDIT_PRIVATE_H
#define MANDATE_AUDIT_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <mandate/plugin.h>

#include "audit-seal-private.h"

typedef enum mandate_audit_fsync {
    MANDATE_AUDIT_FSYNC_OFF,
    MANDATE_AUDIT_FSYNC_BATCH,
    MANDATE_AUDIT_FSYNC_ALWAYS
} mandate_audit_fsync;

typedef struct mandate_audit_config {
    const char *dir; /* created mode 0700 if missing; files 0600, 0400 once finished */
    mandate_audit_fsync fsync;
    int64_t rotate_bytes; /* 0: never by size */
    bool rotate_daily;
    /* Ed25519 private key the checkpoints are signed with (the handle takes
     * a reference); NULL: no checkpoint, the trail is only chained. */
    EVP_PKEY *seal_key;
    uint64_t checkpoint_records; /* a checkpoint when so many wait; 0: 1000 */
    /* a checkpoint when the oldest unsealed record is so old; 0: no timer
     * and no thread (a short-lived command seals on close) */
    int64_t checkpoint_seconds;
    /* the second sink: a syslog facility (LOG_AUTHPRIV, ...; 0: none) and a
     * file or FIFO appended to (NULL: none), one checkpoint a line */
    int checkpoint_syslog;
    const char *checkpoint_file;
} mandate_audit_config;

typedef struct mandate_audit mandate_audit;

/* Opens the trail (the newest file in dir, read to its last record), or
 * begins one. */
mandate_rc mandate_audit_open(const mandate_audit_config *config, mandate_audit **audit_r,
                              mandate_error *err);
/* Fsyncs the records this handle wrote that are not yet on disk (in every
 * mode, OFF included) and closes; sets *audit to NULL. */
void mandate_audit_close(mandate_audit **audit);

/* Appends one record of event (request_id may be NULL) with the members of
 * fields (an object, or NULL; its reference is stolen; keys seq, ts, prev,
 * event and request_id in it are ignored). Returns when durable as
 * configured. *seq_r (may be NULL) gets the record's seq. Thread-safe.
 * MANDATE_ERROR when the record could not be written: the caller must then
 * not act as if it were (the token endpoint answers 503). */
mandate_rc mandate_audit_append(mandate_audit *audit, const char *event, const char *request_id,
                                json_t *fields, uint64_t *seq_r, mandate_error *err);

/* The last record written: its seq and hex hash (65 bytes with the NUL);
 * seq 0 for an empty trail. For the log and for anchoring a trail outside. */
void mandate_audit_head(mandate_audit *audit, uint64_t *seq_r, char hash_hex_r[65]);

/* Seals the head now unless the last record is already a checkpoint, and
 * gives the checkpoint that seals it as its JSON line (malloc'd, the form
 * the second sink gets; it is sent there too). Returns once it is durable
 * as configured. MANDATE_NOT_FOUND: no seal key, or an empty trail. */
mandate_rc mandate_audit_seal(mandate_audit *audit, char **line_r, mandate_error *err);

/* fdatasync calls made on the trail's files so far (tests: group commit
 * shares them). */
uint64_t mandate_audit_syncs(mandate_audit *audit);

/* For a server that must not answer before the record is durable but need
 * not block a thread meanwhile (BATCH): writes the record and returns at
 * once with its seq; mandate_audit_when_durable then says when it is on
 * disk. In the other modes it is mandate_audit_append. */
mandate_rc mandate_audit_append_nowait(mandate_audit *audit, const char *event,
                                       const char *request_id, json_t *fields, uint64_t *seq_r,
                                       mandate_error *err);
/* durable: the record is on disk; false: it never will be (fdatasync
 * failed). Called on the committer thread: it must not block. */
typedef void (*mandate_audit_durable_cb)(void *ctx, bool durable);
typedef enum mandate_audit_durability {
    MANDATE_AUDIT_DURABLE, /* already (or the mode does not wait): cb is not called */
    MANDATE_AUDIT_PENDING, /* cb will be called */
    MANDATE_AUDIT_LOST     /* an fdatasync failed: it never will be; cb is not called */
} mandate_audit_durability;
mandate_audit_durability mandate_audit_when_durable(mandate_audit *audit, uint64_t seq,
                                                    mandate_audit_durable_cb cb, void *ctx);

/* --- verification (mandatectl audit verify) ------------------------------- */

typedef struct mandate_audit_verify_opts {
    /* Public keys the checkpoints must be signed with; NULL or none: the
     * signatures are not checked (what each checkpoint seals still is). */
    const mandate_audit_keys *keys;
    /* A file from the second sink (or syslog), NULL for none: every line
     * holding {"checkpoint": ...} is a checkpoint the trail must match; other
     * lines are skipped. */
    const char *checkpoints;
} mandate_audit_verify_opts;

typedef struct mandate_audit_report {
    bool intact;
    uint64_t records; /* records read */
    uint64_t first_seq, last_seq;
    char last_hash[65]; /* hex SHA-256 of the last record: the head */
    char last_ts[28];   /* its time, "" when none */
    /* seals in the trail */
    bool seals_checked;   /* keys were given: every signature was checked */
    uint64_t checkpoints; /* checkpoint records read */
    uint64_t sealed_seq;  /* the record the last checkpoint seals; 0: none */
    char sealed_ts[28];   /* the last checkpoint's time */
    char sealed_key[MANDATE_AUDIT_KID_LEN + 1];
    char sealed_why[12];
    /* intact: records after the last checkpoint record (all when there is
     * none): chained, not sealed; 0 otherwise */
    uint64_t unsealed;
    /* the checkpoints file */
    uint64_t sink_checkpoints; /* checkpoints read from it */
    uint64_t sink_last_seq;    /* the highest seq they seal */
    /* when not intact: where and what, e.g.
     * "audit-20261127T140307Z.jsonl:42: record seq 42 was changed (record
     *  seq 43 names another hash for it)" */
    char problem[512];
} mandate_audit_report;

/* Checks files, in the order given (the chain runs across them): every
 * line is one JSON object with seq, ts, prev and event; seq rises by one
 * from the first record's; each prev is the hash of the line before.
 * The first problem found is named: a record changed, removed, inserted
 * or reordered, a line that is not a record, a file cut short. When the
 * first record's seq is 1 its prev must be 64 zeros; a trail that starts
 * later (older files archived away) is verified from where it starts.
 * Each checkpoint record must seal the record before it (its seq and hash:
 * a chain recomputed after an edit no longer matches), and with keys, be
 * signed by one of them (a forged or changed checkpoint). With a
 * checkpoints file, each of its checkpoints must match the record it
 * seals: a record changed after it was sealed, records cut from the end
 * (a checkpoint beyond the last record) or the first files removed (one
 * before the first record) are named.
 * opts may be NULL: no key, no checkpoints file.
 * MANDATE_OK when the files could be read (intact or not); MANDATE_ERROR
 * when a file cannot be opened. Lines longer than 1 MiB are a problem,
 * not a crash. */
mandate_rc mandate_audit_verify(const char *const *files, size_t n_files,
                                const mandate_audit_verify_opts *opts,
                                mandate_audit_report *report, mandate_error *err);

/* The files of a trail in DIR, in chain order (malloc'd array of malloc'd
 * paths, NULL-terminated). */
mandate_rc mandate_audit_list_files(const char *dir, char ***files_r, mandate_error *err);

/* One record as a line for people: "2026-11-27 14:03:07Z #42 token.issued
 * client=agent-7 scope=mcp:call ..." (members after event, key=value). */
char *mandate_audit_format_line(const json_t *record);

#endif
