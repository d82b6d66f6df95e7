#include "config.h"

#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "audit-private.h"
#include "test-helpers.h"

#define ZEROS "0000000000000000000000000000000000000000000000000000000000000000"

/* --- fixtures ------------------------------------------------------------- */

typedef struct fixture {
    char *dir;
    EVP_PKEY *key; /* the seal tests' signing key (seal_setup); NULL otherwise */
} fixture;

/* A fixture of size bytes: a fixture, or a struct that begins with one */
static int setup_sized(void **state, size_t size)
{
    fixture *fx = calloc(1, size);
    fx->dir = test_mkdtemp();
    *state = fx;
    return 0;
}

static int setup(void **state)
{
    return setup_sized(state, sizeof(fixture));
}

static int teardown(void **state)
{
    fixture *fx = *state;
    test_rmdir_rf(fx->dir);
    free(fx->dir);
    EVP_PKEY_free(fx->key);
    free(fx);
    return 0;
}

/* --- helpers ---------------------------------------------------------------- */

static mandate_audit *open_trail(const char *dir, mandate_audit_fsync mode,
                                 int64_t rotate_bytes, bool daily)
{
    mandate_audit_config cfg = {
        .dir = dir, .fsync = mode, .rotate_bytes = rotate_bytes, .rotate_daily = daily};
    mandate_audit *a = NULL;
    mandate_error err = {0};
    mandate_rc rc = mandate_audit_open(&cfg, &a, &err);
    if (rc != MANDATE_OK)
        fail_msg("open: %s", err.message);
    return a;
}

static uint64_t append_one(mandate_audit *a, unsigned i)
{
    char client[32];
    snprintf(client, sizeof(client), "agent-%u", i);
    json_t *fields =
        json_pack("{s:s, s:s, s:i}", "client", client, "scope", "mcp:call", "n", (json_int_t)i);
    uint64_t seq = 0;
    mandate_error err = {0};
    mandate_rc rc =
        mandate_audit_append(a, "token.issued", i % 2 ? "req-x" : NULL, fields, &seq, &err);
    if (rc != MANDATE_OK)
        fail_msg("append: %s", err.message);
    return seq;
}

static void write_trail(const char *dir, unsigned n)
{
    mandate_audit *a = open_trail(dir, MANDATE_AUDIT_FSYNC_OFF, 0, false);
    for (unsigned i = 1; i <= n; i++)
        assert_int_equal(append_one(a, i), i);
    mandate_audit_close(&a);
    assert_null(a);
}

static void free_files(char **files)
{
    for (size_t i = 0; files[i] != NULL; i++)
        free(files[i]);
    free(files);
}

static size_t count_files(char **files)
{
    size_t n = 0;
    while (files[n] != NULL)
        n++;
    return n;
}

static void verify_dir(const char *dir, mandate_audit_report *report)
{
    char **files = NULL;
    mandate_error err = {0};
    assert_int_equal(mandate_audit_list_files(dir, &files, &err), MANDATE_OK);
    assert_int_equal(mandate_audit_verify((const char *const *)files, count_files(files), NULL,
                                          report, &err),
                     MANDATE_OK);
    free_files(files);
}

static void assert_intact(const char *dir, uint64_t records)
{
    mandate_audit_report report;
    verify_dir(dir, &report);
    if (!report.intact)
        fail_msg("not intact: %s", report.problem);
    assert_int_equal(report.records, records);
    if (records > 0) {
        assert_int_equal(report.last_seq - report.first_seq + 1, records);
    }
}

/* The trail in dir holds records 1 to records, intact, and head is the last
 * one's hash. */
static void assert_whole_trail(const char *dir, uint64_t records, const char *head)
{
    mandate_audit_report report;
    verify_dir(dir, &report);
    assert_true(report.intact);
    assert_int_equal(report.records, records);
    assert_int_equal(report.first_seq, 1);
    assert_int_equal(report.last_seq, records);
    assert_string_equal(report.last_hash, head);
    assert_string_equal(report.problem, "");
}

/* Record seq appended by a (which is closed then), and the trail intact up
 * to it. */
static void append_close_intact(const fixture *fx, mandate_audit **a, unsigned seq)
{
    assert_int_equal(append_one(*a, seq), seq);
    mandate_audit_close(a);
    assert_intact(fx->dir, seq);
}

/* The files of a trail, which must be want of them; free with free_files. */
static char **trail_files(const char *dir, size_t want)
{
    char **files = NULL;
    mandate_error err = {0};
    assert_int_equal(mandate_audit_list_files(dir, &files, &err), MANDATE_OK);
    assert_int_equal(count_files(files), want);
    return files;
}

/* The only file of a trail. */
static char *only_file(const char *dir)
{
    char **files = trail_files(dir, 1);
    char *path = strdup(files[0]);
    free_files(files);
    return path;
}

static char *read_all(const char *path, size_t *len_r)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = malloc((size_t)len + 1);
    assert_int_equal(fread(data, 1, (size_t)len, f), (size_t)len);
    data[len] = '\0';
    fclose(f);
    if (len_r != NULL)
        *len_r = (size_t)len;
    return data;
}

/* The lines of a file (without newlines), NULL-terminated, room for 4 more. */
static char **read_lines(const char *path, size_t *n_r)
{
    char *data = read_all(path, NULL);
    size_t n = 0, cap = 16;
    char **lines = malloc(cap * sizeof(*lines));
    char *save = NULL;
    for (char *l = strtok_r(data, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
        if (n + 6 > cap) {
            cap *= 2;
            lines = realloc(lines, cap * sizeof(*lines));
        }
        lines[n++] = strdup(l);
    }
    lines[n] = NULL;
    free(data);
    *n_r = n;
    return lines;
}

/* The lines of a file, which must be want of them; free with
 * free_lines(lines, want). */
static char **lines_of(const char *path, size_t want)
{
    size_t n;
    char **lines = read_lines(path, &n);
    assert_int_equal(n, want);
    return lines;
}

static void write_lines(const char *path, char **lines, size_t n, bool last_newline)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (size_t i = 0; i < n; i++) {
        fputs(lines[i], f);
        if (i + 1 < n || last_newline)
            fputc('\n', f);
    }
    fclose(f);
}

static void free_lines(char **lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
}

static void insert_line(char **lines, size_t *n, size_t at, char *line)
{
    memmove(lines + at + 1, lines + at, (*n - at + 1) * sizeof(*lines));
    lines[at] = line;
    (*n)++;
}

static char *replace(const char *s, const char *from, const char *to)
{
    const char *p = strstr(s, from);
    assert_non_null(p);
    size_t len = strlen(s) - strlen(from) + strlen(to);
    char *out = malloc(len + 1);
    size_t head = (size_t)(p - s);
    memcpy(out, s, head);
    strcpy(out + head, to);
    strcat(out, p + strlen(from));
    return out;
}

static void sha256_hex(const char *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int md_len = 0;
    assert_int_equal(EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL), 1);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Verifies the trail in dir and checks that the problem is named as
 * expected: "<file>:<line>: ..." containing what. */
static void assert_problem(const char *dir, unsigned line, const char *what)
{
    mandate_audit_report report;
    verify_dir(dir, &report);
    assert_false(report.intact);
    char where[32];
    snprintf(where, sizeof(where), ".jsonl:%u: ", line);
    if (strstr(report.problem, where) == NULL || strstr(report.problem, what) == NULL)
        fail_msg("expected \"%s\" at line %u, got: %s", what, line, report.problem);
    assert_non_null(strstr(report.problem, "audit-"));
}

/* --- writing ---------------------------------------------------------------- */

static void test_append_and_verify(void **state)
{
    fixture *fx = *state;
    mandate_audit *a = open_trail(fx->dir, MANDATE_AUDIT_FSYNC_OFF, 0, false);
    uint64_t seq;
    char hash[65];
    mandate_audit_head(a, &seq, hash);
    assert_int_equal(seq, 0);
    assert_string_equal(hash, ZEROS);
    for (unsigned i = 1; i <= 10; i++)
        assert_int_equal(append_one(a, i), i);
    mandate_audit_head(a, &seq, hash);
    assert_int_equal(seq, 10);
    mandate_audit_close(&a);

    char *path = only_file(fx->dir);
    struct stat st;
    assert_int_equal(stat(fx->dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    char **lines = lines_of(path, 10);
    /* member order, the first prev, and the head is the last line's hash */
    assert_true(strncmp(lines[0], "{\"seq\":1,\"ts\":\"", 15) == 0);
    assert_non_null(strstr(lines[0], "Z\",\"prev\":\"" ZEROS "\",\"event\":\"token.issued\","
                                     "\"request_id\":\"req-x\",\"client\":\"agent-1\","));
    assert_non_null(strstr(lines[1], ",\"event\":\"token.issued\",\"client\":\"agent-2\","));
    char h[65];
    sha256_hex(lines[0], strlen(lines[0]), h);
    assert_non_null(strstr(lines[1], h));
    sha256_hex(lines[9], strlen(lines[9]), h);
    assert_string_equal(h, hash);

    assert_whole_trail(fx->dir, 10, hash);
    free_lines(lines, 10);
    free(path);
}

static void test_append_input(void **state)
{
    fixture *fx = *state;
    mandate_audit *a = open_trail(fx->dir, MANDATE_AUDIT_FSYNC_OFF, 0, false);
    mandate_error err = {0};
    uint64_t seq = 0;
    /* reserved keys in fields are ignored */
    json_t *fields =
        json_pack("{s:i, s:s, s:s, s:s, s:s, s:s}", "seq", 99, "ts", "then", "prev", "x",
                  "event", "forged", "request_id", "r", "client", "a");
    assert_int_equal(mandate_audit_append(a, "client.created", "req-1", fields, &seq, &err),
                     MANDATE_OK);
    assert_int_equal(seq, 1);
    assert_int_equal(mandate_audit_append(a, "key.rotated", NULL, NULL, &seq, &err),
                     MANDATE_OK);
    assert_int_equal(seq, 2);
    assert_int_equal(mandate_audit_append(a, "x", NULL, json_string("no"), &seq, &err),
                     MANDATE_INVALID);
    assert_int_equal(mandate_audit_append(a, NULL, NULL, NULL, &seq, &err), MANDATE_INVALID);
    /* a record over 1 MiB is refused, and nothing is written */
    char *big = malloc(2 * 1024 * 1024);
    memset(big, 'a', 2 * 1024 * 1024 - 1);
    big[2 * 1024 * 1024 - 1] = '\0';
    assert_int_equal(
        mandate_audit_append(a, "x", NULL, json_pack("{s:s}", "blob", big), &seq, &err),
        MANDATE_INVALID);
    free(big);
    /* quotes and control characters are escaped: one line per record */
    assert_int_equal(mandate_audit_append(a, "odd\"event", "r\n2",
                                          json_pack("{s:s}", "note", "a\nb\"c"), &seq, &err),
                     MANDATE_OK);
    assert_int_equal(seq, 3);
    mandate_audit_close(&a);

    char *path = only_file(fx->dir);
    char **lines = lines_of(path, 3);
    assert_true(strncmp(lines[0], "{\"seq\":1,\"ts\":\"", 15) == 0);
    assert_non_null(strstr(lines[0], "\",\"event\":\"client.created\",\"request_id\":\"req-1\","
                                     "\"client\":\"a\"}"));
    assert_non_null(strstr(lines[1], ",\"event\":\"key.rotated\"}"));
    assert_non_null(strstr(lines[2], "\"event\":\"odd\\\"event\",\"request_id\":\"r\\n2\""));
    free_lines(lines, 3);
    free(path);
    assert_intact(fx->dir, 3);
}

static void test_reopen_continues(void **state)
{
    fixture *fx = *state;
    write_trail(fx->dir, 5);
    mandate_audit *a = open_trail(fx->dir, MANDATE_AUDIT_FSYNC_ALWAYS, 0, false);
    uint64_t seq;
    char hash[65];
    mandate_audit_head(a, &seq, hash);
    assert_int_equal(seq, 5);
    char *path = only_file(fx->dir);
    size_t n;
    char **lines = read_lines(path, &n);
    char h[65];
    sha256_hex(lines[4], strlen(lines[4]), h);
    assert_string_equal(hash, h);
    free_lines(lines, n);
    for (unsigned i = 6; i <= 10; i++)
        assert_int_equal(append_one(a, i), i);
    assert_true(mandate_audit_syncs(a) >= 5);
    mandate_audit_close(&a);
    free(only_file(fx->dir)); /* still one file */
    free(path);
    assert_intact(fx->dir, 10);
}

static void test_off_syncs_when_leaving(void **state)
{
    fixture *fx = *state;
    /* OFF: no fsync per record, one when the handle leaves a file it wrote
     * (here every record begins a file) */
    mandate_audit *a = open_trail(fx->dir, MANDATE_AUDIT_FSYNC_OFF, 100, false);
    assert_int_equal(append_one(a, 1), 1);
    assert_int_equal(mandate_audit_syncs(a), 0);
    for (unsigned i = 2; i <= 5; i++)
        assert_int_equal(append_one(a, i), i);
    assert_int_equal(mandate_audit_syncs(a), 4);
    mandate_audit_close(&a);
    assert_intact(fx->dir, 5);
}

static void test_hundred_thousand(void **state)
{
    fixture *fx = *state;
    mandate_audit *a = open_trail(fx->dir, MANDATE_AUDIT_FSYNC_OFF, 0, false);
    for (unsigned i = 1; i <= 100000; i++) {
        json_t *fields = json_pack("{s:s, s:i}", "client", "agent-7", "n", (json_int_t)i);
        uint64_t seq;
        assert_int_equal(mandate_audit_append(a, "token.issued", "req", fields, &seq, NULL),
                         MANDATE_OK);
        assert_int_equal(seq, i);
    }
    char head[65];
    mandate_audit_head(a, NULL, head);
    mandate_audit_close(&a);
    assert_whole_trail(fx->dir, 100000, head);
}

static void test_rotation_by_size(void **state)
{
    fixture *fx = *state;
    mandate_audit *a = open_trail(fx->dir, MANDATE_AUDIT_FSYNC_BATCH, 2000, false);
    for (unsigned i = 1; i <= 300; i++)
        assert_int_equal(append_one(a, i), i);
    mandate_audit_close(&a);

    char **files = NULL;
    mandate_error err = {0};
    assert_int_equal(mandate_audit_list_files(fx->dir, &files, &err), MANDATE_OK);
    size_t n = count_files(files);
    assert_true(n >= 10); /* most in one second: names with -2, ..., -10, ... */
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        assert_int_equal(stat(files[i], &st), 0);
        assert_true(st.st_size <= 2000);
        /* finished files are sealed, the last one is open */
        assert_int_equal(st.st_mode & 0777, i + 1 < n ? 0400 : 0600);
    }
    free_files(files);
    assert_intact(fx->dir, 300);

    /* reopened, the chain goes on in the newest file */
    a = open_trail(fx->dir, MANDATE_AUDIT_FSYNC_OFF, 2000, false);
    append_close_intact(fx, &a, 301);

    /* older files archived away: verified from where the trail starts */
    assert_int_equal(mandate_audit_list_files(fx->dir, &files, &err), MANDATE_OK);
    assert_int_equal(unlink(files[0]), 0);
    free_files(files);
    mandate_audit_report report;
    verify_dir(fx->dir, &report);
    assert_true(report.intact);
    assert_true(report.first_seq > 1);
    assert_int_equal(report.last_seq, 301);
}

static void test_rotation_daily(void **state)
{
    fixture *fx = *state;
    write_trail(fx->dir, 3);
    char *path = only_file(fx->dir);
    char old[512];
    snprintf(old, sizeof(old), "%s/audit-20000101T000000Z.jsonl", fx->dir);
    assert_int_equal(rename(path, old), 0);
    free(path);

    mandate_audit *a = open_trail(fx->dir, MANDATE_AUDIT_FSYNC_OFF, 0, true);
    assert_int_equal(append_one(a, 4), 4);
    assert_int_equal(append_one(a, 5), 5);
    mandate_audit_close(&a);
    char **files = trail_files(fx->dir, 2);
    assert_string_equal(files[0], old);
    char **lines = lines_of(files[1], 2);
    assert_true(strncmp(lines[0], "{\"seq\":4,", 9) == 0);
    free_lines(lines, 2);
    free_files(files);
    assert_intact(fx->dir, 5);
}

static void test_torn_line_cut_on_open(void **state)
{
    fixture *fx = *state;
    write_trail(fx->dir, 5);
    char *path = only_file(fx->dir);
    size_t len;
    free(read_all(path, &len));
    FILE *f = fopen(path, "ab");
    fputs("{\"seq\":6,\"ts\":\"2026-11-27T14:03", f);
    fclose(f);
    assert_problem(fx->dir, 6, "file cut short");

    mandate_audit *a = open_trail(fx->dir, MANDATE_AUDIT_FSYNC_OFF, 0, false);
    size_t now;
    free(read_all(path, &now));
    assert_int_equal(now, len);
    assert_intact(fx->dir, 5);
    append_close_intact(fx, &a, 6);
    free(path);
}

static void test_torn_line_of_another_writer(void **state)
{
    fixture *fx = *state;
    mandate_audit *a = open_trail(fx->dir, MANDATE_AUDIT_FSYNC_OFF, 0, false);
    for (unsigned i = 1; i <= 3; i++)
        append_one(a, i);
    /* another process died in mid-write */
    char *path = only_file(fx->dir);
    FILE *f = fopen(path, "ab");
    fputs("{\"seq\":4,\"ts\":", f);
    fclose(f);
    append_close_intact(fx, &a, 4);
    free(path);
}

static void test_two_writers_alternate(void **state)
{
    fixture *fx = *state;
    /* the daemon and mandatectl: two handles, two locks, one chain */
    mandate_audit *d = open_trail(fx->dir, MANDATE_AUDIT_FSYNC_BATCH, 1500, false);
    mandate_audit *c = open_trail(fx->dir, MANDATE_AUDIT_FSYNC_OFF, 1500, false);
    for (unsigned i = 1; i <= 200; i++)
        assert_int_equal(append_one(i % 2 ? d : c, i), i);
    uint64_t sd, sc;
    char hd[65], hc[65];
    mandate_audit_head(d, &sd, hd);
    mandate_audit_head(c, &sc, hc);
    assert_int_equal(sd, 199);
    assert_int_equal(sc, 200);
    mandate_audit_close(&d);
    mandate_audit_close(&c);
    assert_intact(fx->dir, 200);
}

static void test_writer_sees_rotation_by_another(void **state)
{
    fixture *fx = *state;
    /* d never rotates; c rotates: d must follow into c's new file, which
     * it learns from the seal on the file it was writing */
    mandate_audit *d = open_trail(fx->dir, MANDATE_AUDIT_FSYNC_OFF, 0, false);
    mandate_audit *c = open_trail(fx->dir, MANDATE_AUDIT_FSYNC_OFF, 200, false);
    assert_int_equal(append_one(d, 1), 1);
    assert_int_equal(append_one(c, 2), 2); /* begins a second file */
    assert_int_equal(append_one(d, 3), 3);
    assert_int_equal(append_one(d, 4), 4);
    mandate_audit_close(&d);
    mandate_audit_close(&c);
    char **files = trail_files(fx->dir, 2);
    char **lines = lines_of(files[1], 3);
    free_lines(lines, 3);
    free_files(files);
    assert_intact(fx->dir, 4);
}

static void test_processes_concurrent(void **state)
{
    fixture *fx = *state;
    /* several processes at once, each rotating: one chain, no gap */
    enum { PROCS = 4, EACH = 1000 };
    pid_t pids[PROCS];
    int gate[2]; /* the children start together when it closes */
    assert_int_equal(pipe(gate), 0);
    for (int p = 0; p < PROCS; p++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            mandate_audit_config cfg = {
                .dir = fx->dir, .fsync = MANDATE_AUDIT_FSYNC_OFF, .rotate_bytes = 4096};
            mandate_audit *a = NULL;
            if (mandate_audit_open(&cfg, &a, NULL) != MANDATE_OK)
                _exit(1);
            char c;
            close(gate[1]);
            if (read(gate[0], &c, 1) != 0)
                _exit(3);
            for (unsigned i = 0; i < EACH; i++) {
                json_t *f = json_pack("{s:i, s:i}", "proc", p, "n", (json_int_t)i);
                if (mandate_audit_append(a, "client.updated", NULL, f, NULL, NULL) !=
                    MANDATE_OK)
                    _exit(2);
            }
            mandate_audit_close(&a);
            _exit(0);
        }
        pids[p] = pid;
    }
    close(gate[0]);
    close(gate[1]);
    for (int p = 0; p < PROCS; p++) {
        int status = 0;
        assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    assert_intact(fx->dir, PROCS * EACH);
    mandate_audit_report report;
    verify_dir(fx->dir, &report);
    assert_int_equal(report.first_seq, 1);
}

typedef struct batch_arg {
    mandate_audit *audit;
    unsigned char *seen;
    pthread_mutex_t *lock;
    int failures;
} batch_arg;

#define THREADS 8
#define PER_THREAD 500

static void *batch_worker(void *p)
{
    batch_arg *arg = p;
    for (unsigned i = 0; i < PER_THREAD; i++) {
        uint64_t seq = 0;
        json_t *fields = json_pack("{s:s, s:i}", "client", "agent-7", "n", (json_int_t)i);
        if (mandate_audit_append(arg->audit, "token.issued", "req", fields, &seq, NULL) !=
                MANDATE_OK ||
            seq < 1 || seq > THREADS * PER_THREAD) {
            arg->failures++;
            continue;
        }
        pthread_mutex_lock(arg->lock);
        arg->seen[seq]++;
        pthread_mutex_unlock(arg->lock);
    }
    return NULL;
}

static void test_batch_group_commit(void **state)
{
    fixture *fx = *state;
    mandate_audit *a = open_trail(fx->dir, MANDATE_AUDIT_FSYNC_BATCH, 0, false);
    unsigned char *seen = calloc(THREADS * PER_THREAD + 1, 1);
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_t th[THREADS];
    batch_arg args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (batch_arg){a, seen, &lock, 0};
        assert_int_equal(pthread_create(&th[i], NULL, batch_worker, &args[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
    for (unsigned s = 1; s <= THREADS * PER_THREAD; s++)
        assert_int_equal(seen[s], 1);
    uint64_t syncs = mandate_audit_syncs(a);
    assert_true(syncs > 0);
    assert_true(syncs < THREADS * PER_THREAD);
    print_message("batch: %d records, %" PRIu64 " fdatasync calls\n", THREADS * PER_THREAD,
                  syncs);
    mandate_audit_close(&a);
    free(seen);
    assert_intact(fx->dir, THREADS * PER_THREAD);
}

/* The server's way: append without waiting, be told when the record is on
 * disk (on the committer's thread). */
typedef struct durable_count {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned calls, durable;
} durable_count;

static void count_durable(void *ctx, bool durable)
{
    durable_count *dc = ctx;
    pthread_mutex_lock(&dc->lock);
    dc->calls++;
    dc->durable += durable;
    pthread_cond_broadcast(&dc->cond);
    pthread_mutex_unlock(&dc->lock);
}

static void test_batch_nowait_notifies(void **state)
{
    fixture *fx = *state;
    mandate_audit *a = open_trail(fx->dir, MANDATE_AUDIT_FSYNC_BATCH, 0, false);
    durable_count dc = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    unsigned pending = 0;
    enum { RECORDS = 200 };
    for (int i = 0; i < RECORDS; i++) {
        uint64_t seq = 0;
        mandate_error err = {0};
        assert_int_equal(mandate_audit_append_nowait(a, "token.issued", "r",
                                                     json_pack("{s:i}", "i", i), &seq, &err),
                         MANDATE_OK);
        assert_int_equal(seq, (uint64_t)i + 1);
        mandate_audit_durability d = mandate_audit_when_durable(a, seq, count_durable, &dc);
        assert_true(d == MANDATE_AUDIT_PENDING || d == MANDATE_AUDIT_DURABLE);
        pending += d == MANDATE_AUDIT_PENDING;
    }
    pthread_mutex_lock(&dc.lock);
    while (dc.calls < pending)
        pthread_cond_wait(&dc.cond, &dc.lock);
    pthread_mutex_unlock(&dc.lock);
    assert_int_equal(dc.calls, pending);
    assert_int_equal(dc.durable, pending);
    /* every record is on disk now: asking again needs no wait */
    assert_int_equal(mandate_audit_when_durable(a, RECORDS, count_durable, &dc),
                     MANDATE_AUDIT_DURABLE);
    assert_true(mandate_audit_syncs(a) > 0);
    /* OFF never makes anyone wait */
    mandate_audit_close(&a);
    a = open_trail(fx->dir, MANDATE_AUDIT_FSYNC_OFF, 0, false);
    uint64_t seq = 0;
    mandate_error err = {0};
    assert_int_equal(mandate_audit_append_nowait(a, "x", NULL, NULL, &seq, &err), MANDATE_OK);
    assert_int_equal(mandate_audit_when_durable(a, seq, count_durable, &dc),
                     MANDATE_AUDIT_DURABLE);
    mandate_audit_close(&a);
    assert_intact(fx->dir, RECORDS + 1);
}

/* A waiter registered just before close is answered by close. */
static void test_batch_close_answers_waiters(void **state)
{
    fixture *fx = *state;
    mandate_audit *a = open_trail(fx->dir, MANDATE_AUDIT_FSYNC_BATCH, 0, false);
    durable_count dc = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    unsigned pending = 0;
    for (int i = 0; i < 50; i++) {
        uint64_t seq = 0;
        mandate_error err = {0};
        assert_int_equal(mandate_audit_append_nowait(a, "e", NULL, NULL, &seq, &err),
                         MANDATE_OK);
        pending += mandate_audit_when_durable(a, seq, count_durable, &dc) ==
                   MANDATE_AUDIT_PENDING;
    }
    mandate_audit_close(&a);
    assert_int_equal(dc.calls, pending);
    assert_int_equal(dc.durable, pending);
    assert_intact(fx->dir, 50);
}

/* --- tampering ----------------------------------------------------------------- */

/* The tests below start from a trail of 10 records in one file (written by
 * tamper_setup), change its lines as whoever can write the file would, and
 * check what verification names. */
typedef struct tampered {
    fixture fx; /* first: setup and teardown take it as a fixture */
    char *path;
    char **lines;
    size_t n;
} tampered;

static int tamper_setup(void **state)
{
    if (setup_sized(state, sizeof(tampered)) != 0)
        return -1;
    tampered *t = *state;
    write_trail(t->fx.dir, 10);
    t->path = only_file(t->fx.dir);
    t->lines = read_lines(t->path, &t->n);
    assert_int_equal(t->n, 10);
    return 0;
}

static int tamper_teardown(void **state)
{
    tampered *t = *state;
    free_lines(t->lines, t->n);
    free(t->path);
    return teardown(state); /* frees t, whose first member is the fixture */
}

/* Writes the changed lines back and checks the problem verification names. */
static void assert_tampered(tampered *t, unsigned line, const char *what)
{
    write_lines(t->path, t->lines, t->n, true);
    assert_problem(t->fx.dir, line, what);
}

static void set_line(tampered *t, size_t i, char *line)
{
    free(t->lines[i]);
    t->lines[i] = line;
}

static void swap_lines(tampered *t, size_t i, size_t j)
{
    char *line = t->lines[i];
    t->lines[i] = t->lines[j];
    t->lines[j] = line;
}

/* Removes count lines from i on. */
static void remove_lines(tampered *t, size_t i, size_t count)
{
    for (size_t k = i; k < i + count; k++)
        free(t->lines[k]);
    memmove(t->lines + i, t->lines + i + count, (t->n - i - count + 1) * sizeof(*t->lines));
    t->n -= count;
}

/* Where line i's prev hash begins. */
static char *prev_of(tampered *t, size_t i)
{
    return strstr(t->lines[i], "\"prev\":\"") + 8;
}

/* One way to tamper with the trail: what is done to its lines (indexes from
 * 0), and the problem verification must name (at line, a record's seq). */
typedef enum {
    EDIT_REPLACE,     /* line at: from becomes to */
    EDIT_PREV,        /* line at: the first n bytes of its prev hash become to[0] */
    EDIT_REMOVE,      /* n lines from at on */
    EDIT_INSERT_COPY, /* before line n: a copy of line at, from becoming to (if from) */
    EDIT_INSERT_TEXT, /* before line n: the line to */
    EDIT_SET,         /* line at becomes to */
    EDIT_SWAP,        /* lines at and n */
} tamper_edit;

static const struct tamper_case {
    const char *name;
    tamper_edit edit;
    size_t at, n;
    const char *from, *to;
    unsigned line;
    const char *what;
} tamper_cases[] = {
    {"changed field", EDIT_REPLACE, 4, 0, "\"agent-5\"", "\"mallory\"", 5,
     "record seq 5 was changed (record seq 6 names another hash"},
    {"changed prev", EDIT_PREV, 4, 64, NULL, "a", 5,
     "record seq 5 was changed (its prev is not the hash"},
    {"last prev", EDIT_PREV, 9, 64, NULL, "b", 10,
     "record seq 10 or record seq 9 before it was changed"},
    {"first prev", EDIT_PREV, 0, 1, NULL, "1", 1, "record seq 1 was changed"},
    {"changed seq", EDIT_REPLACE, 4, 0, "{\"seq\":5,", "{\"seq\":50,", 5,
     "record seq 50 was changed (it chains to record seq 4"},
    {"removed", EDIT_REMOVE, 4, 1, NULL, NULL, 5,
     "record seq 5 was removed (seq jumps from 4 to 6)"},
    {"removed several", EDIT_REMOVE, 3, 3, NULL, NULL, 4, "records seq 4 to 6 were removed"},
    /* a forged copy of record 5 with another client, after it */
    {"inserted after", EDIT_INSERT_COPY, 4, 5, "\"agent-5\"", "\"mallory\"", 6,
     "record seq 5 was inserted"},
    /* the same forgery, before the original: it chains to record 4 */
    {"inserted before", EDIT_INSERT_COPY, 4, 4, "\"agent-5\"", "\"mallory\"", 5,
     "record seq 5 was inserted (the record after it has the same"},
    {"inserted new seq", EDIT_INSERT_TEXT, 0, 5, NULL,
     "{\"seq\":6,\"ts\":\"2026-11-27T14:03:07.123456Z\",\"prev\":\"" ZEROS
     "\",\"event\":\"client.created\",\"client\":\"mallory\"}",
     6, "record seq 6 was inserted (record seq 6 after it chains to"},
    {"duplicated", EDIT_INSERT_COPY, 4, 5, NULL, NULL, 6,
     "record seq 5 was inserted (a copy of the record before it)"},
    {"reordered", EDIT_SWAP, 4, 5, NULL, NULL, 5,
     "records were reordered (record seq 6 comes before record seq 5)"},
    {"reordered far", EDIT_SWAP, 2, 7, NULL, NULL, 3,
     "records were reordered (record seq 8 comes before record seq 4)"},
    /* record 9 moved to the end: ..., 8, 10, 9 */
    {"moved back", EDIT_SWAP, 8, 9, NULL, NULL, 9, "reordered"},
    {"invalid JSON", EDIT_SET, 2, 0, NULL, "this is not json", 3, "not a record (invalid JSON"},
    {"no prev", EDIT_SET, 2, 0, NULL, "{\"seq\":3,\"ts\":\"x\",\"event\":\"e\"}", 3,
     "not a record (no \"prev\" hash)"},
    {"not an object", EDIT_SET, 2, 0, NULL, "[1,2,3]", 3, "not a record"},
};

static void apply_tamper(tampered *t, const struct tamper_case *c)
{
    switch (c->edit) {
    case EDIT_REPLACE: set_line(t, c->at, replace(t->lines[c->at], c->from, c->to)); break;
    case EDIT_PREV: memset(prev_of(t, c->at), c->to[0], c->n); break;
    case EDIT_REMOVE: remove_lines(t, c->at, c->n); break;
    case EDIT_INSERT_COPY:
        insert_line(t->lines, &t->n, c->n,
                    c->from ? replace(t->lines[c->at], c->from, c->to)
                            : strdup(t->lines[c->at]));
        break;
    case EDIT_INSERT_TEXT: insert_line(t->lines, &t->n, c->n, strdup(c->to)); break;
    case EDIT_SET: set_line(t, c->at, strdup(c->to)); break;
    case EDIT_SWAP: swap_lines(t, c->at, c->n); break;
    }
}

/* Each case on a fresh trail of 10 records; a failure names the case. */
static void test_tamper_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(tamper_cases) / sizeof(tamper_cases[0]); i++) {
        const struct tamper_case *c = &tamper_cases[i];
        void *case_state = NULL;
        assert_int_equal(tamper_setup(&case_state), 0);
        tampered *t = case_state;
        apply_tamper(t, c);
        print_message("tamper case: %s\n", c->name);
        assert_tampered(t, c->line, c->what);
        tamper_teardown(&case_state);
    }
}

static void test_tamper_cut_short(void **state)
{
    tampered *t = *state;
    t->lines[9][strlen(t->lines[9]) / 2] = '\0';
    write_lines(t->path, t->lines, t->n, false);
    assert_problem(t->fx.dir, 10, "file cut short");
}

static void test_tamper_long_line(void **state)
{
    tampered *t = *state;
    size_t big = 3 * 1024 * 1024;
    char *line = malloc(big + 1);
    memset(line, 'x', big);
    line[big] = '\0';
    insert_line(t->lines, &t->n, 7, line);
    write_lines(t->path, t->lines, t->n, true);
    mandate_audit_report report;
    verify_dir(t->fx.dir, &report);
    assert_false(report.intact);
    assert_non_null(strstr(report.problem, ":8: not a record (a line longer than 1 MiB)"));
    assert_int_equal(report.records, 10); /* read on past it */
}

/* --- listing, verify input, formatting ----------------------------------------- */

static void touch(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
}

static void test_list_files_order(void **state)
{
    fixture *fx = *state;
    const char *names[] = {"audit-20260101T000000Z-10.jsonl", "audit-20260101T000000Z.jsonl",
                           "audit-20251231T235959Z.jsonl", "audit-20260101T000000Z-2.jsonl",
                           /* not trail files */
                           "audit.lock", "audit-2026.jsonl", "audit-20260101T000000Z-1.jsonl",
                           "audit-20260101T000000Z-02.jsonl", "audit-20260101T000000Z.jsonl~",
                           "audit-20260101X000000Z.jsonl"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        touch(fx->dir, names[i]);
    char **files = trail_files(fx->dir, 4);
    const char *want[] = {"audit-20251231T235959Z.jsonl", "audit-20260101T000000Z.jsonl",
                          "audit-20260101T000000Z-2.jsonl", "audit-20260101T000000Z-10.jsonl"};
    for (size_t i = 0; i < 4; i++) {
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", fx->dir, want[i]);
        assert_string_equal(files[i], path);
    }
    free_files(files);

    /* empty files are a trail of no records */
    mandate_audit_report report;
    verify_dir(fx->dir, &report);
    assert_true(report.intact);
    assert_int_equal(report.records, 0);
    assert_string_equal(report.last_hash, ZEROS);

    char missing[512];
    snprintf(missing, sizeof(missing), "%s/nothing-here", fx->dir);
    mandate_error err = {0};
    assert_int_equal(mandate_audit_list_files(missing, &files, &err), MANDATE_NOT_FOUND);
    const char *paths[] = {missing};
    assert_int_equal(mandate_audit_verify(paths, 1, NULL, &report, &err), MANDATE_ERROR);
}

static void test_format_line(void **state)
{
    (void)state;
    json_t *rec =
        json_loads("{\"seq\":42,\"ts\":\"2026-11-27T14:03:07.123456Z\",\"prev\":\"" ZEROS
                   "\",\"event\":\"token.issued\",\"request_id\":\"r-1\",\"client\":"
                   "\"agent-7\",\"scope\":\"mcp:call\",\"n\":3,\"ok\":true,\"note\":"
                   "\"two words\",\"evil\":\"\\u001b[31m\",\"list\":[1,\"a\"]}",
                   0, NULL);
    assert_non_null(rec);
    char *line = mandate_audit_format_line(rec);
    assert_string_equal(line, "2026-11-27 14:03:07Z #42 token.issued request_id=r-1 "
                              "client=agent-7 scope=mcp:call n=3 ok=true note=\"two words\" "
                              "evil=\"\\u001B[31m\" list=[1,\"a\"]");
    free(line);
    json_decref(rec);
    assert_null(mandate_audit_format_line(NULL));
}

/* --- seals: checkpoints signed with a key kept out of the folder ----------- */

#define SINK_NAME "checkpoints.log"

static EVP_PKEY *new_key(void)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(key);
    return key;
}

/* A fixture with a signing key for the seal tests. */
static int seal_setup(void **state)
{
    if (setup(state) != 0)
        return -1;
    ((fixture *)*state)->key = new_key();
    return 0;
}

static void sink_path(const fixture *fx, char path[512])
{
    snprintf(path, 512, "%s/" SINK_NAME, fx->dir);
}

/* A sealed trail: a checkpoint every `every` records; seconds 0: no sealer
 * thread, so that checkpoints fall at known records. */
static mandate_audit *open_sealed(const fixture *fx, EVP_PKEY *key, mandate_audit_fsync mode,
                                  uint64_t every, int64_t seconds, int64_t rotate_bytes)
{
    char sink[512];
    sink_path(fx, sink);
    mandate_audit_config cfg = {.dir = fx->dir,
                                .fsync = mode,
                                .rotate_bytes = rotate_bytes,
                                .seal_key = key,
                                .checkpoint_records = every,
                                .checkpoint_seconds = seconds,
                                .checkpoint_file = sink};
    mandate_audit *a = NULL;
    mandate_error err = {0};
    if (mandate_audit_open(&cfg, &a, &err) != MANDATE_OK)
        fail_msg("open: %s", err.message);
    return a;
}

/* n records, a checkpoint every 100, files of 64 KiB. */
static void write_sealed(const fixture *fx, EVP_PKEY *key, unsigned n)
{
    mandate_audit *a = open_sealed(fx, key, MANDATE_AUDIT_FSYNC_OFF, 100, 0, 65536);
    for (unsigned i = 1; i <= n; i++)
        append_one(a, i);
    mandate_audit_close(&a);
}

/* Verifies the trail of fx with key (NULL: none) and, when sink, the
 * checkpoints file. */
static void verify_sealed(const fixture *fx, EVP_PKEY *key, EVP_PKEY *key2, bool sink,
                          mandate_audit_report *report)
{
    char path[512];
    sink_path(fx, path);
    mandate_audit_keys *keys = mandate_audit_keys_new();
    mandate_error err = {0};
    if (key != NULL)
        assert_int_equal(mandate_audit_keys_add(keys, key, &err), MANDATE_OK);
    if (key2 != NULL)
        assert_int_equal(mandate_audit_keys_add(keys, key2, &err), MANDATE_OK);
    mandate_audit_verify_opts opts = {.keys = keys, .checkpoints = sink ? path : NULL};
    char **files = NULL;
    assert_int_equal(mandate_audit_list_files(fx->dir, &files, &err), MANDATE_OK);
    assert_int_equal(mandate_audit_verify((const char *const *)files, count_files(files), &opts,
                                          report, &err),
                     MANDATE_OK);
    free_files(files);
    mandate_audit_keys_free(&keys);
}

static void assert_sealed_problem(const fixture *fx, EVP_PKEY *key, bool sink, const char *what)
{
    mandate_audit_report report;
    verify_sealed(fx, key, NULL, sink, &report);
    if (report.intact || strstr(report.problem, what) == NULL)
        fail_msg("expected \"%s\", got: %s", what, report.intact ? "intact" : report.problem);
}

/* The whole trail as lines, file by file, to tamper with as whoever can
 * write the folder would. */
#define TRAIL_MAX_FILES 64
typedef struct trail {
    size_t n_files;
    char *paths[TRAIL_MAX_FILES];
    mode_t modes[TRAIL_MAX_FILES];
    char **lines[TRAIL_MAX_FILES];
    size_t n_lines[TRAIL_MAX_FILES];
} trail;

static void trail_load(const char *dir, trail *t)
{
    memset(t, 0, sizeof(*t));
    char **files = NULL;
    mandate_error err = {0};
    assert_int_equal(mandate_audit_list_files(dir, &files, &err), MANDATE_OK);
    for (size_t i = 0; files[i] != NULL; i++) {
        assert_true(t->n_files < TRAIL_MAX_FILES);
        struct stat st;
        assert_int_equal(stat(files[i], &st), 0);
        t->paths[t->n_files] = strdup(files[i]);
        t->modes[t->n_files] = st.st_mode & 0777;
        t->lines[t->n_files] = read_lines(files[i], &t->n_lines[t->n_files]);
        t->n_files++;
    }
    free_files(files);
}

/* Writes every file back as it is in t; a file without lines is removed. */
static void trail_save(const trail *t)
{
    for (size_t f = 0; f < t->n_files; f++) {
        if (t->n_lines[f] == 0) {
            unlink(t->paths[f]);
            continue;
        }
        (void)chmod(t->paths[f], 0600);
        write_lines(t->paths[f], t->lines[f], t->n_lines[f], true);
        assert_int_equal(chmod(t->paths[f], t->modes[f]), 0);
    }
}

static void trail_free(trail *t)
{
    for (size_t f = 0; f < t->n_files; f++) {
        free_lines(t->lines[f], t->n_lines[f]);
        free(t->paths[f]);
    }
}

static uint64_t seq_of(const char *line)
{
    assert_true(strncmp(line, "{\"seq\":", 7) == 0);
    return strtoull(line + 7, NULL, 10);
}

static uint64_t trail_last_seq(const trail *t)
{
    const size_t f = t->n_files - 1;
    return seq_of(t->lines[f][t->n_lines[f] - 1]);
}

/* The line of record seq. */
static char **trail_line(trail *t, uint64_t seq)
{
    for (size_t f = 0; f < t->n_files; f++)
        for (size_t i = 0; i < t->n_lines[f]; i++)
            if (seq_of(t->lines[f][i]) == seq)
                return &t->lines[f][i];
    fail_msg("no record seq %llu", (unsigned long long)seq);
    return NULL;
}

static bool is_checkpoint_line(const char *line)
{
    return strstr(line, "\"event\":\"audit.checkpoint\"") != NULL;
}

/* Rewrites member name's 64-hex value in line. */
static void set_hex(char *line, const char *name, const char hex[65])
{
    char key[32];
    snprintf(key, sizeof(key), "\"%s\":\"", name);
    char *p = strstr(line, key);
    assert_non_null(p);
    memcpy(p + strlen(key), hex, 64);
}

/* What rechain does to each checkpoint after the edit: leaves it as it was,
 * rewrites the hash it names, or signs it anew with key (another key than
 * the trail's; with kid, not NULL, claiming that key id instead). */
typedef struct checkpoint_forgery {
    bool patch_hash;
    EVP_PKEY *key;
    const char *kid;
} checkpoint_forgery;

/* The checkpoint line *line, naming hash prev and signed by forgery's key. */
static void resign_checkpoint(char **line, const char prev[65], const checkpoint_forgery *forgery)
{
    json_t *rec = json_loads(*line, 0, NULL);
    mandate_audit_checkpoint cp;
    char why[128];
    mandate_error err = {0};
    assert_true(mandate_audit_checkpoint_parse(rec, &cp, why, sizeof(why)));
    json_decref(rec);
    memcpy(cp.hash, prev, sizeof(cp.hash));
    assert_int_equal(mandate_audit_checkpoint_sign(&cp, forgery->key, &err), MANDATE_OK);
    if (forgery->kid != NULL)
        memcpy(cp.key, forgery->kid, sizeof(cp.key));
    char *members = mandate_audit_checkpoint_members(&cp);
    char *at = strstr(*line, "\"checkpoint\":");
    assert_non_null(at);
    *at = '\0';
    char *forged = malloc(strlen(*line) + strlen(members) + 2);
    sprintf(forged, "%s%s}", *line, members);
    free(members);
    free(*line);
    *line = forged;
}

/* The attacker's tool: after an edit of record from, recomputes the prev of
 * every later record so that the chain holds again, and forges the later
 * checkpoints as forgery says. */
static void rechain(trail *t, uint64_t from, const checkpoint_forgery *forgery)
{
    char prev[65] = "";
    for (size_t f = 0; f < t->n_files; f++)
        for (size_t i = 0; i < t->n_lines[f]; i++) {
            char **line = &t->lines[f][i];
            if (seq_of(*line) > from) {
                set_hex(*line, "prev", prev);
                if (is_checkpoint_line(*line)) {
                    if (forgery->key != NULL)
                        resign_checkpoint(line, prev, forgery);
                    else if (forgery->patch_hash)
                        set_hex(*line, "hash", prev);
                }
            }
            sha256_hex(*line, strlen(*line), prev);
        }
}

/* Drops every record after seq keep. */
static void trail_cut(trail *t, uint64_t keep)
{
    for (size_t f = 0; f < t->n_files; f++)
        while (t->n_lines[f] > 0 && seq_of(t->lines[f][t->n_lines[f] - 1]) > keep) {
            free(t->lines[f][t->n_lines[f] - 1]);
            t->lines[f][--t->n_lines[f]] = NULL;
        }
}

static size_t count_sink_lines(const fixture *fx, const char *needle)
{
    char path[512];
    sink_path(fx, path);
    if (access(path, F_OK) != 0)
        return 0;
    size_t n;
    char **lines = read_lines(path, &n);
    size_t found = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(lines[i], "{\"checkpoint\":", 14) == 0 &&
            (needle == NULL || strstr(lines[i], needle) != NULL))
            found++;
    free_lines(lines, n);
    return found;
}

/* A sealed trail of n records written and loaded into t. */
static void write_sealed_trail(const fixture *fx, EVP_PKEY *key, unsigned n, trail *t)
{
    write_sealed(fx, key, n);
    trail_load(fx->dir, t);
}

/* Record 500 of t becomes another client's. */
static void edit_500(trail *t)
{
    char **l500 = trail_line(t, 500);
    char *edited = replace(*l500, "\"agent-", "\"mallory-");
    free(*l500);
    *l500 = edited;
}

/* Verification with the sink fails naming what, the file and that it is
 * missing. */
static void assert_sealed_file_missing(const fixture *fx, EVP_PKEY *key, const char *what,
                                       const char *file)
{
    assert_sealed_problem(fx, key, true, what);
    assert_sealed_problem(fx, key, true, file);
    assert_sealed_problem(fx, key, true, "which is missing");
}

static void test_seal_intact(void **state)
{
    fixture *fx = *state;
    trail t;
    write_sealed_trail(fx, fx->key, 2000, &t);
    assert_true(t.n_files >= 4);
    /* every finished file ends with the seal of its last record, the trail
     * with the seal of a clean close */
    for (size_t f = 0; f < t.n_files; f++) {
        const char *last = t.lines[f][t.n_lines[f] - 1];
        assert_true(is_checkpoint_line(last));
        assert_non_null(
            strstr(last, f + 1 < t.n_files ? "\"why\":\"rotation\"" : "\"why\":\"close\""));
    }
    /* on count: the record after the 100th is its checkpoint */
    assert_true(is_checkpoint_line(*trail_line(&t, 101)));
    assert_non_null(strstr(*trail_line(&t, 101), "\"seq\":100,"));
    uint64_t last = trail_last_seq(&t);
    trail_free(&t);

    mandate_audit_report report;
    verify_sealed(fx, fx->key, NULL, true, &report);
    if (!report.intact)
        fail_msg("not intact: %s", report.problem);
    assert_true(report.seals_checked);
    assert_true(report.checkpoints >= 20);
    assert_int_equal(report.last_seq, last);
    assert_int_equal(report.sealed_seq, last - 1);
    assert_string_equal(report.sealed_why, "close");
    assert_int_equal(report.unsealed, 0);
    /* the second sink got every checkpoint of the trail */
    assert_int_equal(report.sink_checkpoints, report.checkpoints);
    assert_int_equal(count_sink_lines(fx, NULL), report.checkpoints);
    assert_int_equal(report.sink_last_seq, last - 1);
    char kid[MANDATE_AUDIT_KID_LEN + 1];
    assert_true(mandate_audit_seal_key_id(fx->key, kid));
    assert_string_equal(report.sealed_key, kid);

    /* without a key: the same, said to be unchecked */
    verify_sealed(fx, NULL, NULL, false, &report);
    assert_true(report.intact);
    assert_false(report.seals_checked);
    assert_true(report.checkpoints >= 20);

    /* reopened and closed without a record: no checkpoint of a checkpoint */
    mandate_audit *a = open_sealed(fx, fx->key, MANDATE_AUDIT_FSYNC_OFF, 100, 0, 65536);
    mandate_audit_close(&a);
    trail_load(fx->dir, &t);
    assert_int_equal(trail_last_seq(&t), last);
    trail_free(&t);
}

/* A sealed trail of 2000 records written, loaded into t, and record 500
 * edited there (not saved yet). */
static void write_and_edit_500(const fixture *fx, EVP_PKEY *key, trail *t)
{
    write_sealed_trail(fx, key, 2000, t);
    edit_500(t);
}

/* The attack of issue 20 on a trail of 2000 records: record 500 edited,
 * the prev of every record after it recomputed (with patch, the hash each
 * later checkpoint names too). */
static void rechained_500(const fixture *fx, EVP_PKEY *key, bool patch)
{
    trail t;
    write_and_edit_500(fx, key, &t);
    rechain(&t, 500, &(checkpoint_forgery){.patch_hash = patch});
    trail_save(&t);
    trail_free(&t);
}

/* The chain alone holds again. */
static void test_seal_rechained_edit(void **state)
{
    fixture *fx = *state;
    rechained_500(fx, fx->key, false);

    /* the first checkpoint after it names the old hash: found without the
     * key, without the checkpoints file */
    mandate_audit_report report;
    verify_sealed(fx, NULL, NULL, false, &report);
    assert_false(report.intact);
    assert_non_null(strstr(report.problem, "was changed after it was sealed"));
    assert_non_null(strstr(report.problem, "the chain was recomputed"));
    assert_sealed_problem(fx, fx->key, true, "was changed after it was sealed");
}

/* The same, and the attacker also rewrote the hash each later checkpoint
 * names: only the signature (or the second sink) tells. */
static void test_seal_rechained_checkpoints(void **state)
{
    fixture *fx = *state;
    rechained_500(fx, fx->key, true);

    mandate_audit_report report;
    verify_sealed(fx, NULL, NULL, false, &report);
    assert_true(report.intact); /* without a key: what the chain alone says */
    assert_false(report.seals_checked);
    assert_sealed_problem(fx, fx->key, false, "is a checkpoint with a bad signature");
    /* the second sink, even without the key */
    assert_sealed_problem(fx, NULL, true,
                          ", or one before it, was changed after it was sealed");
}

/* Checkpoints signed anew by another key: not the trail's. */
static void test_seal_forged_checkpoints(void **state)
{
    fixture *fx = *state;
    EVP_PKEY *mallory = new_key();
    char kid[MANDATE_AUDIT_KID_LEN + 1];
    assert_true(mandate_audit_seal_key_id(fx->key, kid));
    trail orig, t;
    write_and_edit_500(fx, fx->key, &t);
    trail_load(fx->dir, &orig);
    rechain(&t, 500, &(checkpoint_forgery){.key = mallory});
    trail_save(&t);
    trail_free(&t);
    assert_sealed_problem(fx, fx->key, false, "which is not one of the keys given");
    /* an auditor who trusts mallory's key too is fooled: give only keys
     * from the broker (mandatectl audit key) */
    mandate_audit_report report;
    verify_sealed(fx, fx->key, mallory, false, &report);
    assert_true(report.intact);

    /* mallory's signature under the trail's key id */
    trail_save(&orig);
    trail_load(fx->dir, &t);
    edit_500(&t);
    rechain(&t, 500, &(checkpoint_forgery){.key = mallory, .kid = kid});
    trail_save(&t);
    trail_free(&t);
    assert_sealed_problem(fx, fx->key, false, "is a checkpoint with a bad signature");

    /* a forged line in the checkpoints file */
    trail_save(&orig);
    trail_free(&orig);
    verify_sealed(fx, fx->key, NULL, true, &report);
    assert_true(report.intact);
    mandate_audit_checkpoint cp = {.seq = 5000, .why = "time"};
    memset(cp.hash, 'a', 64);
    snprintf(cp.ts, sizeof(cp.ts), "2026-11-27T14:03:07.123456Z");
    snprintf(cp.file, sizeof(cp.file), "audit-20261127T140307Z.jsonl");
    snprintf(cp.host, sizeof(cp.host), "mallory");
    mandate_error err = {0};
    assert_int_equal(mandate_audit_checkpoint_sign(&cp, mallory, &err), MANDATE_OK);
    char *members = mandate_audit_checkpoint_members(&cp);
    char path[512];
    sink_path(fx, path);
    FILE *f = fopen(path, "a");
    fprintf(f, "Nov 27 14:03:07 host mandated[7]: audit checkpoint {%s}\n", members);
    fclose(f);
    free(members);
    assert_sealed_problem(fx, fx->key, true, "which is not one of the keys given");
    EVP_PKEY_free(mallory);
}

/* The last 1000 records cut: the chain that is left is whole; the
 * checkpoints sent elsewhere reach beyond its end. */
static void test_seal_cut_tail(void **state)
{
    fixture *fx = *state;
    trail t;
    write_sealed_trail(fx, fx->key, 2000, &t);
    uint64_t last = trail_last_seq(&t);
    trail_cut(&t, last - 1000);
    trail_save(&t);
    trail_free(&t);

    mandate_audit_report report;
    verify_sealed(fx, fx->key, NULL, false, &report);
    assert_true(report.intact); /* the trail alone cannot tell (doc/security.md) */
    assert_true(report.sealed_seq < last - 1000);
    verify_sealed(fx, fx->key, NULL, true, &report);
    assert_false(report.intact);
    char expect[160];
    snprintf(expect, sizeof(expect),
             "the trail ends at record seq %llu, but the checkpoint of ",
             (unsigned long long)(last - 1000));
    if (strstr(report.problem, expect) == NULL ||
        strstr(report.problem, "were cut from its end") == NULL ||
        strncmp(report.problem, SINK_NAME ":", strlen(SINK_NAME) + 1) != 0)
        fail_msg("got: %s", report.problem);
}

/* A file of the trail removed: the first, one in the middle, the last. */
static void test_seal_deleted_file(void **state)
{
    fixture *fx = *state;
    trail t;
    write_sealed_trail(fx, fx->key, 2000, &t);
    assert_true(t.n_files >= 4);
    const char *first = strrchr(t.paths[0], '/') + 1;
    const char *last = strrchr(t.paths[t.n_files - 1], '/') + 1;

    assert_int_equal(unlink(t.paths[0]), 0);
    mandate_audit_report report;
    verify_sealed(fx, fx->key, NULL, false, &report);
    assert_true(report.intact); /* as if archived away */
    assert_sealed_file_missing(fx, fx->key, "its first files were removed", first);
    trail_save(&t);

    assert_int_equal(unlink(t.paths[1]), 0);
    assert_sealed_problem(fx, NULL, false, "were removed (seq jumps from");
    trail_save(&t);

    assert_int_equal(unlink(t.paths[t.n_files - 1]), 0);
    assert_sealed_file_missing(fx, fx->key, "were cut from its end", last);
    trail_save(&t);

    /* every file removed */
    for (size_t f = 0; f < t.n_files; f++)
        assert_int_equal(unlink(t.paths[f]), 0);
    assert_sealed_problem(fx, fx->key, true, "the trail has no record, but the checkpoint of");
    trail_save(&t);
    verify_sealed(fx, fx->key, NULL, true, &report);
    assert_true(report.intact);
    trail_free(&t);
}

/* Records renumbered after some were removed, the chain recomputed: the
 * checkpoints after them no longer name the record before them. */
static void test_seal_renumbered(void **state)
{
    fixture *fx = *state;
    trail t;
    write_sealed_trail(fx, fx->key, 300, &t);
    /* drop record 50, number every later one down by one */
    for (size_t f = 0; f < t.n_files; f++)
        for (size_t i = 0; i < t.n_lines[f]; i++) {
            char *l = t.lines[f][i];
            uint64_t seq = seq_of(l);
            if (seq == 50) {
                free(l);
                memmove(&t.lines[f][i], &t.lines[f][i + 1],
                        (t.n_lines[f] - i) * sizeof(char *));
                t.n_lines[f]--;
                i--;
            } else if (seq > 50) {
                char from[40], to[40];
                snprintf(from, sizeof(from), "{\"seq\":%llu,", (unsigned long long)seq);
                snprintf(to, sizeof(to), "{\"seq\":%llu,", (unsigned long long)seq - 1);
                t.lines[f][i] = replace(l, from, to);
                free(l);
            }
        }
    rechain(&t, 49, &(checkpoint_forgery){.patch_hash = true});
    trail_save(&t);
    trail_free(&t);
    assert_sealed_problem(fx, NULL, false, "not of the record before it");
}

/* Key rollover: a trail sealed by one key, then another (a new KEK). */
static void test_seal_two_keys(void **state)
{
    fixture *fx = *state;
    EVP_PKEY *old_key = new_key(), *new_key_ = new_key();
    write_sealed(fx, old_key, 150);
    mandate_audit *a = open_sealed(fx, new_key_, MANDATE_AUDIT_FSYNC_OFF, 100, 0, 65536);
    for (unsigned i = 151; i <= 300; i++)
        append_one(a, i);
    mandate_audit_close(&a);
    mandate_audit_report report;
    verify_sealed(fx, old_key, new_key_, true, &report);
    if (!report.intact)
        fail_msg("not intact: %s", report.problem);
    char kid[MANDATE_AUDIT_KID_LEN + 1];
    assert_true(mandate_audit_seal_key_id(new_key_, kid));
    assert_string_equal(report.sealed_key, kid);
    assert_sealed_problem(fx, new_key_, false, "which is not one of the keys given");
    EVP_PKEY_free(old_key);
    EVP_PKEY_free(new_key_);
}

static bool wait_for_sink(const fixture *fx, const char *needle, size_t count)
{
    for (int i = 0; i < 100; i++) {
        if (count_sink_lines(fx, needle) >= count)
            return true;
        usleep(50000);
    }
    return false;
}

/* BATCH with the sealer thread: on time, on count, and the second sink
 * gets each checkpoint once it is durable. */
static void test_seal_sealer_thread(void **state)
{
    fixture *fx = *state;
    mandate_audit *a = open_sealed(fx, fx->key, MANDATE_AUDIT_FSYNC_BATCH, 50, 1, 0);
    for (unsigned i = 1; i <= 3; i++)
        append_one(a, i);
    /* no caller signs: the records are the trail's first three */
    uint64_t seq;
    mandate_audit_head(a, &seq, NULL);
    assert_true(seq >= 3);
    assert_true(wait_for_sink(fx, "\"why\":\"time\"", 1));
    assert_true(wait_for_sink(fx, "\"seq\":3,", 1));
    mandate_audit_close(&a);
    /* on count (a timer too long to interfere, however slow the disk) */
    a = open_sealed(fx, fx->key, MANDATE_AUDIT_FSYNC_BATCH, 50, 3600, 0);
    for (unsigned i = 4; i <= 120; i++)
        append_one(a, i);
    /* at least one: a sealer that wakes late seals the head it finds, once,
     * for all the records it is behind (one checkpoint covers them all) */
    assert_true(wait_for_sink(fx, "\"why\":\"records\"", 1));
    mandate_audit_close(&a);
    /* closed: sealed to the end (by count, or on close) */
    mandate_audit_report report;
    verify_sealed(fx, fx->key, NULL, true, &report);
    if (!report.intact)
        fail_msg("not intact: %s", report.problem);
    assert_int_equal(report.unsealed, 0);
    assert_int_equal(report.sink_checkpoints, report.checkpoints);
}

static void test_seal_now(void **state)
{
    fixture *fx = *state;
    char *line = NULL;
    mandate_error err = {0};
    mandate_audit *a = open_trail(fx->dir, MANDATE_AUDIT_FSYNC_OFF, 0, false);
    append_one(a, 1);
    assert_int_equal(mandate_audit_seal(a, &line, &err), MANDATE_NOT_FOUND); /* no key */
    assert_null(line);
    mandate_audit_close(&a);

    a = open_sealed(fx, fx->key, MANDATE_AUDIT_FSYNC_ALWAYS, 100, 0, 0);
    /* the event is the trail's own */
    assert_int_equal(mandate_audit_append(a, "audit.checkpoint", NULL, NULL, NULL, &err),
                     MANDATE_INVALID);
    append_one(a, 2);
    assert_int_equal(mandate_audit_seal(a, &line, &err), MANDATE_OK);
    assert_non_null(strstr(line, "\"seq\":2,"));
    assert_non_null(strstr(line, "\"why\":\"request\""));
    assert_true(strncmp(line, "{\"checkpoint\":{\"key\":\"", 22) == 0);
    /* nothing new: the same checkpoint, not one of it */
    char *again = NULL;
    assert_int_equal(mandate_audit_seal(a, &again, &err), MANDATE_OK);
    assert_string_equal(again, line);
    free(again);
    mandate_audit_close(&a);
    /* another handle finds it at the end of the trail */
    a = open_sealed(fx, fx->key, MANDATE_AUDIT_FSYNC_OFF, 100, 0, 0);
    assert_int_equal(mandate_audit_seal(a, &again, &err), MANDATE_OK);
    assert_string_equal(again, line);
    free(again);
    mandate_audit_close(&a);
    free(line);
    /* the last record was the request's checkpoint: close added none */
    assert_int_equal(count_sink_lines(fx, NULL), 1);
}

static void test_seal_empty(void **state)
{
    fixture *fx = *state;
    mandate_audit *a = open_sealed(fx, fx->key, MANDATE_AUDIT_FSYNC_OFF, 100, 0, 0);
    char *line = NULL;
    mandate_error err = {0};
    assert_int_equal(mandate_audit_seal(a, &line, &err), MANDATE_NOT_FOUND);
    mandate_audit_close(&a);
    assert_int_equal(count_sink_lines(fx, NULL), 0);
}

int main(void)
{
#define TT(f) cmocka_unit_test_setup_teardown(f, tamper_setup, tamper_teardown)
#define TS(f) cmocka_unit_test_setup_teardown(f, seal_setup, teardown)
    const struct CMUnitTest tests[] = {
        TEST_FX(test_append_and_verify),
        TEST_FX(test_append_input),
        TEST_FX(test_reopen_continues),
        TEST_FX(test_off_syncs_when_leaving),
        TEST_FX(test_hundred_thousand),
        TEST_FX(test_rotation_by_size),
        TEST_FX(test_rotation_daily),
        TEST_FX(test_torn_line_cut_on_open),
        TEST_FX(test_torn_line_of_another_writer),
        TEST_FX(test_two_writers_alternate),
        TEST_FX(test_writer_sees_rotation_by_another),
        TEST_FX(test_processes_concurrent),
        TEST_FX(test_batch_group_commit),
        TEST_FX(test_batch_nowait_notifies),
        TEST_FX(test_batch_close_answers_waiters),
        cmocka_unit_test(test_tamper_cases),
        TT(test_tamper_cut_short),
        TT(test_tamper_long_line),
        TEST_FX(test_list_files_order),
        TEST_FX(test_format_line),
        TS(test_seal_intact),
        TS(test_seal_rechained_edit),
        TS(test_seal_rechained_checkpoints),
        TS(test_seal_forged_checkpoints),
        TS(test_seal_cut_tail),
        TS(test_seal_deleted_file),
        TS(test_seal_renumbered),
        TEST_FX(test_seal_two_keys),
        TS(test_seal_sealer_thread),
        TS(test_seal_now),
        TS(test_seal_empty),
    };
#undef TS
#undef TT
    return cmocka_run_group_tests(tests, NULL, NULL);
}
