/* libFuzzer harness: the audit trail verifier (core/audit.c
 * mandate_audit_verify, what `mandatectl audit verify` runs).
 *
 * Input: up to three parts split at FUZZ_SEP ("\n\f\n"), each written as one
 * file of a trail (audit-1.jsonl, audit-2.jsonl, audit-3.jsonl, in a
 * temporary folder made once) and verified in that order, so that the chain
 * across files is fuzzed too; a fourth part is a checkpoints file (the
 * second sink). The trail is verified twice: as the chain alone, and with
 * the seal key of the seeds (fuzz-keys.h's Ed25519 key: the seeds' checkpoint
 * records and lines carry its signatures) and the checkpoints file, so that
 * checkpoint records, their signatures and the file's lines are fuzzed.
 * Then every line that parses as a JSON object is rendered with
 * mandate_audit_format_line, as `mandatectl audit show` does. Checked: a
 * report that is not intact names a problem, and counts hold together.
 * Bounds: 256 KiB in all (the verifier's 1 MiB line limit is tested by the
 * unit tests; here it would only slow the fuzzer). */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "audit-private.h"
#include "fuzz-common.h"
#include "fuzz-keys.h"

#define HARNESS_MAX_INPUT (256 * 1024)
#define MAX_FILES 3
#define MAX_PARTS (MAX_FILES + 1)

static char dir[256];
static char paths[MAX_FILES][300];
static char sink_path[300];
static mandate_audit_keys *keys;

static void remove_dir(void)
{
    for (int i = 0; i < MAX_FILES; i++)
        unlink(paths[i]);
    unlink(sink_path);
    rmdir(dir);
    mandate_audit_keys_free(&keys);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_mkdtemp(dir, sizeof(dir), "fuzz-audit");
    for (int i = 0; i < MAX_FILES; i++)
        snprintf(paths[i], sizeof(paths[i]), "%s/audit-%d.jsonl", dir, i + 1);
    snprintf(sink_path, sizeof(sink_path), "%s/checkpoints.log", dir);
    keys = mandate_audit_keys_new();
    EVP_PKEY *key = fuzz_key_from_pem(fuzz_key_ed_pem);
    mandate_error err = {0};
    if (key == NULL || mandate_audit_keys_add(keys, key, &err) != MANDATE_OK)
        abort();
    EVP_PKEY_free(key);
    atexit(remove_dir);
    return 0;
}

/* The report's invariants, whatever the input. */
static void check_report(const mandate_audit_report *report, mandate_rc rc, bool sealed)
{
    if (rc != MANDATE_OK)
        abort(); /* the files are there: only an unreadable file is an error */
    if (!report->intact && report->problem[0] == '\0')
        abort();
    if (memchr(report->problem, '\0', sizeof(report->problem)) == NULL ||
        memchr(report->last_hash, '\0', sizeof(report->last_hash)) == NULL ||
        memchr(report->last_ts, '\0', sizeof(report->last_ts)) == NULL ||
        memchr(report->sealed_ts, '\0', sizeof(report->sealed_ts)) == NULL ||
        memchr(report->sealed_key, '\0', sizeof(report->sealed_key)) == NULL ||
        memchr(report->sealed_why, '\0', sizeof(report->sealed_why)) == NULL)
        abort();
    if (report->checkpoints > report->records || report->unsealed > report->records)
        abort();
    if (report->seals_checked != sealed)
        abort();
    /* intact, a checkpoint counted seals a record before the last */
    if (report->intact && report->checkpoints > 0 && report->sealed_seq >= report->last_seq)
        abort();
}

static void show_lines(const fuzz_part *part)
{
    const char *p = part->data, *end = p + part->len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
        json_t *rec = json_loadb(p, len, JSON_REJECT_DUPLICATES, NULL);
        if (json_is_object(rec))
            free(mandate_audit_format_line(rec));
        json_decref(rec);
        p += len + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > HARNESS_MAX_INPUT)
        return -1;
    fuzz_part parts[MAX_PARTS];
    size_t n_parts = fuzz_split(data, size, parts, MAX_PARTS);
    size_t n = n_parts < MAX_FILES ? n_parts : MAX_FILES;
    const char *files[MAX_FILES];
    for (size_t i = 0; i < n; i++) {
        fuzz_write_file(paths[i], parts[i].data, parts[i].len);
        files[i] = paths[i];
    }
    bool sink = n_parts == MAX_PARTS;
    if (sink)
        fuzz_write_file(sink_path, parts[MAX_FILES].data, parts[MAX_FILES].len);
    mandate_audit_report report;
    memset(&report, 0xa5, sizeof(report)); /* the verifier must fill it all in */
    mandate_error err = {0};
    mandate_rc rc = mandate_audit_verify(files, n, NULL, &report, &err);
    if (fuzz_debug())
        fprintf(stderr, "audit: rc %d, %zu file(s), intact %d, %llu records: %s\n", (int)rc, n,
                (int)report.intact, (unsigned long long)report.records, report.problem);
    check_report(&report, rc, false);

    /* sealed: the checkpoints' signatures, and the checkpoints file */
    mandate_audit_verify_opts opts = {.keys = keys, .checkpoints = sink ? sink_path : NULL};
    memset(&report, 0xa5, sizeof(report));
    rc = mandate_audit_verify(files, n, &opts, &report, &err);
    if (fuzz_debug())
        fprintf(stderr,
                "audit sealed: rc %d, intact %d, %llu checkpoints (sealed seq %llu), %llu in "
                "the file: %s\n",
                (int)rc, (int)report.intact, (unsigned long long)report.checkpoints,
                (unsigned long long)report.sealed_seq,
                (unsigned long long)report.sink_checkpoints, report.problem);
    check_report(&report, rc, true);
    for (size_t i = 0; i < n; i++)
        show_lines(&parts[i]);
    return 0;
}
