/* libFuzzer harness: the audit trail verifier (core/audit.c
 * mandate_audit_verify, what `mandatectl audit verify` runs).
 *
 * Input: up to three parts split at FUZZ_SEP ("\n\f\n"), each written as one
 * file of a trail (audit-1.jsonl, audit-2.jsonl, audit-3.jsonl, in a
 * temporary folder made once) and verified in that order, so that the chain
 * across files is fuzzed too. Then every line that parses as a JSON object
 * is rendered with mandate_audit_format_line, as `mandatectl audit show`
 * does. Checked: a report that is not intact names a problem. Bounds:
 * 256 KiB in all (the verifier's 1 MiB line limit is tested by the unit
 * tests; here it would only slow the fuzzer). */
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

#define HARNESS_MAX_INPUT (256 * 1024)
#define MAX_FILES 3

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[256];
static char paths[MAX_FILES][300];

static void remove_dir(void)
{
    for (int i = 0; i < MAX_FILES; i++)
        unlink(paths[i]);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/mandate-fuzz-audit-XXXXXX", tmp != NULL ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL)
        abort();
    for (int i = 0; i < MAX_FILES; i++)
        snprintf(paths[i], sizeof(paths[i]), "%s/audit-%d.jsonl", dir, i + 1);
    atexit(remove_dir);
    return 0;
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
    fuzz_part parts[MAX_FILES];
    size_t n = fuzz_split(data, size, parts, MAX_FILES);
    const char *files[MAX_FILES];
    for (size_t i = 0; i < n; i++) {
        fuzz_write_file(paths[i], parts[i].data, parts[i].len);
        files[i] = paths[i];
    }
    mandate_audit_report report;
    memset(&report, 0xa5, sizeof(report)); /* the verifier must fill it all in */
    mandate_error err = {0};
    mandate_rc rc = mandate_audit_verify(files, n, NULL, &report, &err);
    if (fuzz_debug())
        fprintf(stderr, "audit: rc %d, %zu file(s), intact %d, %llu records: %s\n", (int)rc, n,
                (int)report.intact, (unsigned long long)report.records, report.problem);
    if (rc != MANDATE_OK)
        abort(); /* the files are there: only an unreadable file is an error */
    if (!report.intact && report.problem[0] == '\0')
        abort();
    if (memchr(report.problem, '\0', sizeof(report.problem)) == NULL ||
        memchr(report.last_hash, '\0', sizeof(report.last_hash)) == NULL)
        abort();
    for (size_t i = 0; i < n; i++)
        show_lines(&parts[i]);
    return 0;
}
