/* The audit trail: writer (open, append with group commit, rotation,
 * several processes on one directory) and verifier. The contract is in
 * audit-private.h.
 *
 * How several writers stay on one chain: every append holds the mutex
 * (threads of this handle) and then an exclusive flock on DIR/audit.lock
 * (other handles and processes; flock locks belong to the open file
 * description, so threads of one handle cannot use it against each other).
 * Under the flock one fstat of the file we append to tells whether anyone
 * else touched the trail since our last append:
 *   - its size differs from what we left: another writer appended (or cut
 *     a torn line) -> read its last record again;
 *   - it lost its write permission: a writer that rotates first seals the
 *     file it leaves (mode 0400), then begins the next one -> list the
 *     directory and continue in the newest file;
 *   - it has no link left: it was moved away -> list the directory.
 * So finished files are 0400, the file being written is 0600.
 *
 * Group commit (BATCH): the record is written under the mutex; then the
 * caller waits until `durable` reaches its seq. When no fdatasync is in
 * flight the caller becomes the syncer: it notes the highest seq written,
 * drops the mutex, runs fdatasync, and publishes that seq as durable. All
 * records written while one fdatasync runs share the next one.
 *
 * Seals: a checkpoint record is written under the mutex and the flock like
 * any record (it must chain right after the head it seals, so it is signed
 * there: one Ed25519 signature, tens of microseconds, every
 * checkpoint_records records at most). The sealer thread writes them on
 * time and on count, so that no caller of an append ever signs; the caller
 * that crosses the count only wakes it. A checkpoint waits in sink_lines
 * until it is durable in the trail, then the sealer sends it to the second
 * sink outside the mutex: a slow syslog or a FIFO without a reader never
 * holds up an append, and the sink never names a record a crash of the
 * machine could still take from the trail (verify would call that a cut). */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "audit-private.h"
#include "log-private.h"
#include "metrics-private.h"
#include "text-encoding.h"
#include "util-private.h"

/* The longest record line, without its newline. */
#define AUDIT_LINE_MAX ((size_t)1024 * 1024)
#define AUDIT_SCAN_CHUNK 65536
#define AUDIT_HASH_HEX 64
/* "2026-11-27T14:03:07.123456Z" */
#define AUDIT_TS_LEN 27
/* "20261127T140307Z" in a file name */
#define AUDIT_NAME_TS_LEN 16
#define AUDIT_MAX_SUFFIX 99999u
/* The members before an event's own: {"seq":N,"ts":"..","prev":"..","event":
 * ,"request_id": } and a newline, with room to spare. */
#define AUDIT_HEAD_MAX 192
/* "audit-20261127T140307Z-99999.jsonl" and its NUL, with room to spare */
#define AUDIT_NAME_MAX 48
/* checkpoints by count, when the configuration names no count */
#define AUDIT_CHECKPOINT_RECORDS 1000

static const char zero_hash[AUDIT_HASH_HEX + 1] =
    "0000000000000000000000000000000000000000000000000000000000000000";

struct mandate_audit {
    char *dir;
    mandate_audit_fsync fsync_mode;
    int64_t rotate_bytes;
    bool rotate_daily;
    /* root (mandatectl) gives new files to the directory's owner (the
     * daemon), so that the daemon can go on appending to them */
    bool chown_files;
    uid_t dir_uid;
    gid_t dir_gid;

    pthread_mutex_t mutex;
    pthread_cond_t durable_cond;
    int lock_fd; /* DIR/audit.lock, kept open */

    /* The file appended to (O_APPEND), -1 when none is open: an empty trail
     * or a sealed newest file; the next append begins a file then. */
    int fd;
    int64_t size; /* its length as we left it, under the flock */
    /* The newest file of the trail (the one at fd, or a sealed one): a new
     * file's name must sort after it. */
    bool have_newest;
    char newest_ts[AUDIT_NAME_TS_LEN + 1];
    unsigned newest_suffix;

    /* The last record of the trail as we know it. */
    uint64_t seq;
    char hash[AUDIT_HASH_HEX + 1];

    /* Durability of this handle's records: all with seq <= durable are on
     * disk; written is the highest this handle wrote. */
    uint64_t written, durable;
    bool syncing;      /* an fdatasync runs without the mutex */
    int sync_fd;       /* on this descriptor */
    int retired_fd;    /* sync_fd, left while the sync ran: closed by the syncer */
    uint64_t syncs;    /* fdatasync calls on trail files */
    int broken;        /* errno of a failed fdatasync: no append succeeds after */
    bool dir_unsynced; /* OFF began a file: the directory is synced when it is left */

    /* BATCH: a committer thread runs the fdatasyncs, so that a caller may
     * go on (mandate_audit_append_nowait) and be told when its record is on
     * disk; durable_cond is broadcast whenever written or durable moves. */
    bool committer_started, stopping;
    pthread_t committer;
    struct durable_waiter *waiters;

    /* The base name of the file that holds record seq ("" for none). */
    char head_file[AUDIT_NAME_MAX];
    bool wrote; /* this handle appended a record: close seals the head */

    /* Seals; seal_key NULL: none. */
    EVP_PKEY *seal_key;
    char host[MANDATE_AUDIT_CP_HOST_MAX + 1];
    uint64_t checkpoint_records;
    int64_t checkpoint_us;        /* 0: no sealer thread */
    uint64_t sealed;              /* seq of the last checkpoint record known */
    int64_t unsealed_since;       /* monotonic us of the first record after it; 0 */
    char *last_checkpoint;        /* its line for the second sink; NULL unknown */
    struct sink_line *sink_lines; /* checkpoints waiting to be durable, in seq order */
    struct sink_line **sink_tail;
    int sink_facility; /* 0: none */
    char *sink_file;
    pthread_mutex_t sink_mutex; /* one writer at a time on the second sink */
    bool sink_failing;          /* the sink file failed last time (sink_mutex) */
    int64_t seal_retry_at;      /* a checkpoint failed: not again before (monotonic us) */
    bool sealer_started, sealer_stopping;
    pthread_t sealer;
    pthread_cond_t seal_cond; /* CLOCK_MONOTONIC */
};

/* A checkpoint for the second sink: sent once record seq is durable. */
typedef struct sink_line {
    uint64_t seq;
    char *line;
    struct sink_line *next;
} sink_line;

typedef struct durable_waiter {
    uint64_t seq;
    mandate_audit_durable_cb cb;
    void *ctx;
    bool ok;
    struct durable_waiter *next;
} durable_waiter;

static void *committer_main(void *arg);
static void *sealer_main(void *arg);
static mandate_rc checkpoint_locked(mandate_audit *a, const char *why, mandate_error *err);
static sink_line *sink_take(mandate_audit *a);
static void sink_send(mandate_audit *a, sink_line *lines);
static void sink_deliver(mandate_audit *a);

/* The longest the committer lets a group grow, in microseconds. */
#define COMMIT_DELAY_MAX_US 1000

/* --- small helpers -------------------------------------------------------- */

/* SHA-256 fetched once: EVP_sha256() makes OpenSSL 3 look the algorithm up
 * again on every digest, which costs about as much as hashing a record. */
static EVP_MD *sha256_fetched;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
    sha256_fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static void sha256_hex(const void *data, size_t len, char hex_r[AUDIT_HASH_HEX + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    pthread_once(&sha256_once, sha256_fetch);
    const EVP_MD *sha256 = sha256_fetched != NULL ? sha256_fetched : EVP_sha256();
    if (EVP_Digest(data, len, md, &md_len, sha256, NULL) != 1 || md_len != 32)
        mandate_die("SHA-256 failed");
    mandate_hex_encode(md, AUDIT_HASH_HEX / 2, hex_r);
}

static bool is_hash_hex(const char *s)
{
    size_t i;
    for (i = 0; s[i] != '\0'; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    }
    return i == AUDIT_HASH_HEX;
}

static int64_t monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* "2026-11-27T14:03:07.123456Z" */
static void now_iso(char ts_r[AUDIT_TS_LEN + 1])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char buf[64]; /* room for any int, so the compiler sees no truncation */
    snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (long)(ts.tv_nsec / 1000));
    memcpy(ts_r, buf, AUDIT_TS_LEN);
    ts_r[AUDIT_TS_LEN] = '\0';
}

/* The file-name form of a record time: "20261127T140307Z". */
static void name_ts_of(const char *iso, char ts_r[AUDIT_NAME_TS_LEN + 1])
{
    memcpy(ts_r, iso, 4);
    memcpy(ts_r + 4, iso + 5, 2);
    memcpy(ts_r + 6, iso + 8, 2);
    ts_r[8] = 'T';
    memcpy(ts_r + 9, iso + 11, 2);
    memcpy(ts_r + 11, iso + 14, 2);
    memcpy(ts_r + 13, iso + 17, 2);
    ts_r[15] = 'Z';
    ts_r[16] = '\0';
}

static bool pread_full(int fd, void *buf, size_t len, int64_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, (char *)buf + got, len - got, (off_t)(off + (int64_t)got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO; /* shorter than fstat said */
            return false;
        }
        got += (size_t)n;
    }
    return true;
}

static int flock_retry(int fd, int op)
{
    int r;
    do {
        r = flock(fd, op);
    } while (r != 0 && errno == EINTR);
    return r;
}

/* fdatasync, counted and timed for the metrics. Called with or without the
 * mutex; the counter is only touched with it. */
static int timed_fdatasync(int fd, int64_t *us_r)
{
    int64_t t0 = monotonic_us();
    int r;
    do {
        r = fdatasync(fd);
    } while (r != 0 && errno == EINTR);
    int saved = errno;
    *us_r = monotonic_us() - t0;
    mandate_metrics_audit_fsync(*us_r);
    errno = saved;
    return r;
}

/* --- file names ----------------------------------------------------------- */

typedef struct audit_name {
    char *name;
    char ts[AUDIT_NAME_TS_LEN + 1];
    unsigned suffix; /* 1 for none, then 2, 3, ... */
} audit_name;

/* audit-YYYYMMDDTHHMMSSZ.jsonl or audit-YYYYMMDDTHHMMSSZ-N.jsonl (N >= 2). */
static bool parse_name(const char *name, char ts_r[AUDIT_NAME_TS_LEN + 1], unsigned *suffix_r)
{
    if (strncmp(name, "audit-", 6) != 0)
        return false;
    const char *t = name + 6;
    for (int i = 0; i < AUDIT_NAME_TS_LEN; i++) {
        char c = t[i];
        if (i == 8 ? c != 'T' : i == 15 ? c != 'Z' : (c < '0' || c > '9'))
            return false;
    }
    const char *p = t + AUDIT_NAME_TS_LEN;
    unsigned suffix = 1;
    if (*p == '-') {
        p++;
        if (*p < '1' || *p > '9')
            return false;
        unsigned long v = 0;
        while (*p >= '0' && *p <= '9') {
            v = v * 10 + (unsigned long)(*p - '0');
            if (v > AUDIT_MAX_SUFFIX)
                return false;
            p++;
        }
        if (v < 2)
            return false;
        suffix = (unsigned)v;
    }
    if (strcmp(p, ".jsonl") != 0)
        return false;
    if (ts_r != NULL) {
        memcpy(ts_r, t, AUDIT_NAME_TS_LEN);
        ts_r[AUDIT_NAME_TS_LEN] = '\0';
    }
    *suffix_r = suffix;
    return true;
}

static int name_cmp(const void *a, const void *b)
{
    const audit_name *x = a, *y = b;
    int c = strcmp(x->ts, y->ts);
    if (c != 0)
        return c;
    return x->suffix < y->suffix ? -1 : x->suffix > y->suffix;
}

static void names_free(audit_name *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i].name);
    free(names);
}

/* The trail's files in dir, in chain order. */
static mandate_rc list_names(const char *dir, audit_name **names_r, size_t *n_r,
                             mandate_error *err)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return mandate_error_set(err, errno == ENOENT ? MANDATE_NOT_FOUND : MANDATE_ERROR,
                                 "audit: %s: %s", dir, strerror(errno));
    audit_name *names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        audit_name an;
        if (!parse_name(de->d_name, an.ts, &an.suffix))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            names = mandate_xrealloc(names, cap * sizeof(*names));
        }
        an.name = mandate_xstrdup(de->d_name);
        names[n++] = an;
    }
    closedir(d);
    if (n > 1)
        qsort(names, n, sizeof(*names), name_cmp);
    *names_r = names;
    *n_r = n;
    return MANDATE_OK;
}

mandate_rc mandate_audit_list_files(const char *dir, char ***files_r, mandate_error *err)
{
    audit_name *names;
    size_t n;
    mandate_rc rc = list_names(dir, &names, &n, err);
    if (rc != MANDATE_OK)
        return rc;
    char **files = mandate_xcalloc(n + 1, sizeof(*files));
    for (size_t i = 0; i < n; i++)
        files[i] = mandate_path_join(dir, names[i].name);
    names_free(names, n);
    *files_r = files;
    return MANDATE_OK;
}

/* --- reading the end of a file -------------------------------------------- */

/* The offset of the last '\n' before end, looking back at most max_back
 * bytes: -1 when there is none down to the start of the file;
 * MANDATE_INVALID when there is none within max_back bytes. */
static mandate_rc last_newline(int fd, int64_t end, int64_t max_back, char *chunk,
                               int64_t *pos_r)
{
    int64_t low = end > max_back ? end - max_back : 0;
    while (end > low) {
        int64_t from = end - AUDIT_SCAN_CHUNK > low ? end - AUDIT_SCAN_CHUNK : low;
        size_t len = (size_t)(end - from);
        if (!pread_full(fd, chunk, len, from))
            return MANDATE_ERROR;
        for (size_t i = len; i > 0; i--) {
            if (chunk[i - 1] == '\n') {
                *pos_r = from + (int64_t)i - 1;
                return MANDATE_OK;
            }
        }
        end = from;
    }
    if (low > 0)
        return MANDATE_INVALID;
    *pos_r = -1;
    return MANDATE_OK;
}

/* Reads the last complete record of the file at fd: its seq and hash
 * (*seq_r = 0 when the file holds no complete line). A torn last line (no
 * newline: a write that never completed) is cut away when cut, else
 * skipped. *size_r gets the file's length after that. When that record is
 * a checkpoint, *checkpoint_r gets it as its line for the second sink
 * (malloc'd), else NULL. */
static mandate_rc read_tail(int fd, const char *path, bool cut, bool sync_cut, int64_t *size_r,
                            uint64_t *seq_r, char hash_r[AUDIT_HASH_HEX + 1],
                            char **checkpoint_r, mandate_error *err)
{
    *checkpoint_r = NULL;
    struct stat st;
    if (fstat(fd, &st) != 0)
        return mandate_error_set(err, MANDATE_ERROR, "audit: %s: %s", path, strerror(errno));
    int64_t size = (int64_t)st.st_size, end = size, nl;
    char *chunk = mandate_xmalloc(AUDIT_SCAN_CHUNK);
    char *line = NULL;
    mandate_rc rc;

    *seq_r = 0;
    memcpy(hash_r, zero_hash, sizeof(zero_hash));
    if (size > 0) {
        char last;
        if (!pread_full(fd, &last, 1, size - 1)) {
            rc = mandate_error_set(err, MANDATE_ERROR, "audit: %s: %s", path, strerror(errno));
            goto out;
        }
        if (last != '\n') {
            rc = last_newline(fd, size, (int64_t)AUDIT_LINE_MAX + 1, chunk, &nl);
            if (rc == MANDATE_INVALID) {
                rc = mandate_error_set(err, MANDATE_ERROR,
                                       "audit: %s: ends in a line over 1 MiB without a newline",
                                       path);
                goto out;
            }
            if (rc != MANDATE_OK) {
                rc = mandate_error_set(err, MANDATE_ERROR, "audit: %s: %s", path,
                                       strerror(errno));
                goto out;
            }
            end = nl + 1;
            if (cut) {
                if (ftruncate(fd, (off_t)end) != 0) {
                    rc = mandate_error_set(err, MANDATE_ERROR,
                                           "audit: %s: cannot cut a torn last line: %s", path,
                                           strerror(errno));
                    goto out;
                }
                int64_t us;
                if (sync_cut)
                    (void)timed_fdatasync(fd, &us);
                log_warning("audit: %s: cut off a torn last line of %" PRId64
                            " bytes (a write that never completed)",
                            path, size - end);
                size = end;
            }
        }
    }
    *size_r = size;
    if (end == 0) {
        rc = MANDATE_OK;
        goto out;
    }
    rc = last_newline(fd, end - 1, (int64_t)AUDIT_LINE_MAX + 1, chunk, &nl);
    if (rc == MANDATE_INVALID) {
        rc = mandate_error_set(err, MANDATE_ERROR,
                               "audit: %s: the last record is longer than 1 MiB", path);
        goto out;
    }
    if (rc != MANDATE_OK) {
        rc = mandate_error_set(err, MANDATE_ERROR, "audit: %s: %s", path, strerror(errno));
        goto out;
    }
    size_t len = (size_t)(end - 1 - (nl + 1));
    line = mandate_xmalloc(len + 1);
    if (!pread_full(fd, line, len, nl + 1)) {
        rc = mandate_error_set(err, MANDATE_ERROR, "audit: %s: %s", path, strerror(errno));
        goto out;
    }
    json_error_t jerr;
    json_t *rec = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *seq = json_object_get(rec, "seq");
    if (!json_is_integer(seq) || json_integer_value(seq) < 1 ||
        !json_is_string(json_object_get(rec, "prev"))) {
        json_decref(rec);
        rc = mandate_error_set(err, MANDATE_ERROR,
                               "audit: %s: the last line is not a record, so the chain "
                               "cannot go on (see mandatectl audit verify)",
                               path);
        goto out;
    }
    *seq_r = (uint64_t)json_integer_value(seq);
    /* a checkpoint at the end: the head needs no other seal */
    mandate_audit_checkpoint cp;
    char why[128];
    const char *event = json_string_value(json_object_get(rec, "event"));
    if (event != NULL && strcmp(event, MANDATE_AUDIT_CHECKPOINT_EVENT) == 0 &&
        mandate_audit_checkpoint_parse(rec, &cp, why, sizeof(why))) {
        char *members = mandate_audit_checkpoint_members(&cp);
        *checkpoint_r = mandate_xasprintf("{%s}", members);
        free(members);
    }
    json_decref(rec);
    sha256_hex(line, len, hash_r);
    rc = MANDATE_OK;
out:
    free(line);
    free(chunk);
    return rc;
}

/* --- the writer ------------------------------------------------------------ */

/* Makes everything this handle wrote durable, then leaves the current file
 * (the syncer closes it when an fdatasync on it is in flight). In every
 * mode: OFF only means no fsync per record, so that a short-lived command
 * (mandatectl) syncs once, when it closes. Mutex held. */
static void leave_file(mandate_audit *a)
{
    if (a->fd < 0)
        return;
    if (a->dir_unsynced) {
        int dfd = open(a->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            (void)fsync(dfd);
            close(dfd);
        }
        a->dir_unsynced = false;
    }
    if (a->written > a->durable && !a->broken) {
        int64_t us;
        a->syncs++;
        /* waiters of these records are answered by the committer, which
         * wakes on the broadcast below */
        if (timed_fdatasync(a->fd, &us) != 0) {
            a->broken = errno;
            log_error("audit: fdatasync failed: %s; no record is taken from now on",
                      strerror(errno));
        } else {
            a->durable = a->written;
        }
        pthread_cond_broadcast(&a->durable_cond);
    }
    if (a->syncing && a->sync_fd == a->fd)
        a->retired_fd = a->fd;
    else
        close(a->fd);
    a->fd = -1;
}

/* Finds the trail's newest file and its last record again (another writer
 * may have appended, rotated or begun the trail). Mutex and flock held. */
static mandate_rc resync(mandate_audit *a, mandate_error *err)
{
    audit_name *names;
    size_t n;
    mandate_rc rc = list_names(a->dir, &names, &n, err);
    if (rc != MANDATE_OK)
        return rc;
    if (n == 0) {
        /* no file (yet, or all archived away): the next append begins one,
         * continuing the chain we know */
        leave_file(a);
        a->have_newest = false;
        names_free(names, n);
        return MANDATE_OK;
    }

    const audit_name *newest = &names[n - 1];
    char *path = mandate_path_join(a->dir, newest->name);
    char *checkpoint = NULL;
    const char *head_name = newest->name;
    struct stat st, cur;
    if (stat(path, &st) != 0) {
        rc = mandate_error_set(err, MANDATE_ERROR, "audit: %s: %s", path, strerror(errno));
        goto out;
    }
    bool writable = (st.st_mode & S_IWUSR) != 0;
    int fd;
    if (a->fd >= 0 && fstat(a->fd, &cur) == 0 && cur.st_dev == st.st_dev &&
        cur.st_ino == st.st_ino && writable) {
        fd = a->fd;
    } else {
        fd = open(path, (writable ? O_RDWR | O_APPEND : O_RDONLY) | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
            rc = mandate_error_set(err, MANDATE_ERROR, "audit: %s: %s", path, strerror(errno));
            goto out;
        }
        leave_file(a);
    }

    int64_t size;
    uint64_t seq;
    char hash[AUDIT_HASH_HEX + 1];
    rc = read_tail(fd, path, writable, a->fsync_mode != MANDATE_AUDIT_FSYNC_OFF, &size, &seq,
                   hash, &checkpoint, err);
    if (rc != MANDATE_OK) {
        if (fd != a->fd)
            close(fd);
        goto out;
    }
    if (writable) {
        a->fd = fd;
        a->size = size;
    } else {
        close(fd); /* sealed: the next append begins a new file */
    }
    a->have_newest = true;
    memcpy(a->newest_ts, newest->ts, sizeof(a->newest_ts));
    a->newest_suffix = newest->suffix;

    /* an empty newest file (a crash right after it was begun): the last
     * record is in a file before it */
    for (size_t i = n - 1; seq == 0 && i > 0; i--) {
        char *older = mandate_path_join(a->dir, names[i - 1].name);
        int ofd = open(older, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (ofd < 0) {
            rc = mandate_error_set(err, MANDATE_ERROR, "audit: %s: %s", older, strerror(errno));
            free(older);
            goto out;
        }
        int64_t osize;
        rc = read_tail(ofd, older, false, false, &osize, &seq, hash, &checkpoint, err);
        close(ofd);
        free(older);
        if (rc != MANDATE_OK)
            goto out;
        head_name = names[i - 1].name;
    }
    if (seq != 0) {
        if (seq < a->seq)
            log_error("audit: the trail now ends at record seq %" PRIu64
                      ", but this process knew it up to seq %" PRIu64
                      ": records were removed from its end (see mandatectl audit verify)",
                      seq, a->seq);
        if (a->sealed > seq)
            a->sealed = 0;
        a->seq = seq;
        memcpy(a->hash, hash, sizeof(a->hash));
        snprintf(a->head_file, sizeof(a->head_file), "%s", head_name);
        if (checkpoint != NULL) {
            a->sealed = seq;
            a->unsealed_since = 0;
            free(a->last_checkpoint);
            a->last_checkpoint = checkpoint;
            checkpoint = NULL;
        }
    }
    rc = MANDATE_OK;
out:
    free(checkpoint);
    free(path);
    names_free(names, n);
    return rc;
}

/* Begins a new file for a record of time iso: seals the current one (so
 * other writers see that it is finished) and creates the next, named after
 * the record's time and sorting after every file before it. Mutex and
 * flock held. */
static mandate_rc begin_file(mandate_audit *a, const char *iso, mandate_error *err)
{
    char ts[AUDIT_NAME_TS_LEN + 1];
    name_ts_of(iso, ts);
    unsigned suffix = 1;
    if (a->have_newest) {
        int c = strcmp(ts, a->newest_ts);
        if (c <= 0) {
            /* same second, or the clock went back: keep the order of names */
            memcpy(ts, a->newest_ts, sizeof(ts));
            suffix = a->newest_suffix + 1;
        }
    }
    if (a->fd >= 0) {
        if (fchmod(a->fd, S_IRUSR) != 0)
            return mandate_error_set(err, MANDATE_ERROR,
                                     "audit: cannot seal a finished file: %s", strerror(errno));
        leave_file(a);
    }

    int fd = -1;
    char *path = NULL;
    for (; suffix <= AUDIT_MAX_SUFFIX; suffix++) {
        free(path);
        path = suffix == 1 ? mandate_xasprintf("%s/audit-%s.jsonl", a->dir, ts)
                           : mandate_xasprintf("%s/audit-%s-%u.jsonl", a->dir, ts, suffix);
        fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY,
                  S_IRUSR | S_IWUSR);
        if (fd >= 0 || errno != EEXIST)
            break;
    }
    if (fd < 0) {
        mandate_rc rc =
            mandate_error_set(err, MANDATE_ERROR, "audit: %s: %s", path,
                              suffix > AUDIT_MAX_SUFFIX ? "too many files" : strerror(errno));
        free(path);
        return rc;
    }
    /* whatever the umask: the write bit tells writers the file is open */
    if (fchmod(fd, S_IRUSR | S_IWUSR) != 0 ||
        (a->chown_files && fchown(fd, a->dir_uid, a->dir_gid) != 0)) {
        mandate_rc rc =
            mandate_error_set(err, MANDATE_ERROR, "audit: %s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        free(path);
        return rc;
    }
    free(path);
    /* the new name itself must survive a crash */
    if (a->fsync_mode != MANDATE_AUDIT_FSYNC_OFF) {
        int dfd = open(a->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            (void)fsync(dfd);
            close(dfd);
        }
    } else {
        a->dir_unsynced = true;
    }
    a->fd = fd;
    a->size = 0;
    a->have_newest = true;
    memcpy(a->newest_ts, ts, sizeof(ts));
    a->newest_suffix = suffix;
    return MANDATE_OK;
}

static mandate_rc start_thread(mandate_audit *a, pthread_t *thread, void *(*run)(void *),
                               bool *started_r, const char *what, mandate_error *err)
{
    int e = pthread_create(thread, NULL, run, a);
    if (e != 0)
        return mandate_error_set(err, MANDATE_ERROR, "audit: no %s thread: %s", what,
                                 strerror(e));
    *started_r = true;
    return MANDATE_OK;
}

mandate_rc mandate_audit_open(const mandate_audit_config *config, mandate_audit **audit_r,
                              mandate_error *err)
{
    *audit_r = NULL;
    if (config == NULL || config->dir == NULL || config->dir[0] == '\0')
        return mandate_error_set(err, MANDATE_INVALID, "audit: no directory given");
    if (config->rotate_bytes < 0)
        return mandate_error_set(err, MANDATE_INVALID, "audit: rotate_bytes is negative");
    if (mkdir(config->dir, S_IRWXU) != 0 && errno != EEXIST)
        return mandate_error_set(err, MANDATE_ERROR, "audit: cannot create %s: %s", config->dir,
                                 strerror(errno));
    struct stat dst;
    if (stat(config->dir, &dst) != 0 || !S_ISDIR(dst.st_mode))
        return mandate_error_set(err, MANDATE_ERROR, "audit: %s is not a directory",
                                 config->dir);

    mandate_audit *a = mandate_xcalloc(1, sizeof(*a));
    a->dir = mandate_xstrdup(config->dir);
    a->fsync_mode = config->fsync;
    a->rotate_bytes = config->rotate_bytes;
    a->rotate_daily = config->rotate_daily;
    a->chown_files = geteuid() == 0 && dst.st_uid != 0;
    a->dir_uid = dst.st_uid;
    a->dir_gid = dst.st_gid;
    pthread_mutex_init(&a->mutex, NULL);
    pthread_cond_init(&a->durable_cond, NULL);
    a->fd = -1;
    a->sync_fd = -1;
    a->retired_fd = -1;
    memcpy(a->hash, zero_hash, sizeof(zero_hash));
    /* the sealer waits on the monotonic clock: a clock set back must not
     * hold a seal back */
    mandate_cond_init_monotonic(&a->seal_cond);
    pthread_mutex_init(&a->sink_mutex, NULL);
    a->sink_tail = &a->sink_lines;
    if (config->seal_key != NULL) {
        EVP_PKEY_up_ref(config->seal_key);
        a->seal_key = config->seal_key;
        mandate_audit_seal_host(a->host);
        a->checkpoint_records = config->checkpoint_records > 0 ? config->checkpoint_records
                                                               : AUDIT_CHECKPOINT_RECORDS;
        a->checkpoint_us =
            config->checkpoint_seconds > 0 ? config->checkpoint_seconds * 1000000 : 0;
        a->sink_facility = config->checkpoint_syslog;
        if (config->checkpoint_file != NULL && config->checkpoint_file[0] != '\0')
            a->sink_file = mandate_xstrdup(config->checkpoint_file);
    }

    char *lock_path = mandate_path_join(a->dir, "audit.lock");
    a->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, S_IRUSR | S_IWUSR);
    mandate_rc rc;
    if (a->lock_fd < 0) {
        rc = mandate_error_set(err, MANDATE_ERROR, "audit: %s: %s", lock_path, strerror(errno));
        free(lock_path);
        mandate_audit_close(&a);
        return rc;
    }
    if (a->chown_files)
        (void)fchown(a->lock_fd, a->dir_uid, a->dir_gid);
    if (flock_retry(a->lock_fd, LOCK_EX) != 0) {
        rc = mandate_error_set(err, MANDATE_ERROR, "audit: %s: flock: %s", lock_path,
                               strerror(errno));
        free(lock_path);
        mandate_audit_close(&a);
        return rc;
    }
    free(lock_path);
    pthread_mutex_lock(&a->mutex);
    rc = resync(a, err);
    pthread_mutex_unlock(&a->mutex);
    (void)flock_retry(a->lock_fd, LOCK_UN);
    if (rc != MANDATE_OK) {
        mandate_audit_close(&a);
        return rc;
    }
    a->written = a->durable = a->seq;
    if (a->fsync_mode == MANDATE_AUDIT_FSYNC_BATCH)
        rc = start_thread(a, &a->committer, committer_main, &a->committer_started, "committer",
                          err);
    if (rc == MANDATE_OK && a->seal_key != NULL && a->checkpoint_us > 0)
        rc = start_thread(a, &a->sealer, sealer_main, &a->sealer_started, "sealer", err);
    if (rc != MANDATE_OK) {
        mandate_audit_close(&a);
        return rc;
    }
    *audit_r = a;
    return MANDATE_OK;
}

/* Tells a thread of the handle to stop (its flag, under the mutex) and
 * waits for it. */
static void stop_thread(mandate_audit *a, bool *stopping, pthread_cond_t *cond,
                        pthread_t thread)
{
    pthread_mutex_lock(&a->mutex);
    *stopping = true;
    pthread_cond_broadcast(cond);
    pthread_mutex_unlock(&a->mutex);
    pthread_join(thread, NULL);
}

void mandate_audit_close(mandate_audit **audit)
{
    mandate_audit *a = *audit;
    if (a == NULL)
        return;
    if (a->sealer_started)
        stop_thread(a, &a->sealer_stopping, &a->seal_cond, a->sealer);
    /* a clean close leaves the trail sealed up to its last record */
    pthread_mutex_lock(&a->mutex);
    if (a->seal_key != NULL && a->wrote && !a->broken) {
        mandate_error err = {0};
        if (checkpoint_locked(a, "close", &err) != MANDATE_OK)
            log_error("audit: the closing checkpoint was not written: %s", err.message);
    }
    pthread_mutex_unlock(&a->mutex);
    /* the committer syncs what is left and answers every waiter before it
     * ends */
    if (a->committer_started)
        stop_thread(a, &a->stopping, &a->durable_cond, a->committer);
    pthread_mutex_lock(&a->mutex);
    leave_file(a); /* fsyncs what this handle wrote and is not yet durable */
    if (a->retired_fd >= 0)
        close(a->retired_fd);
    sink_line *ready = sink_take(a), *lost = a->sink_lines;
    a->sink_lines = NULL;
    pthread_mutex_unlock(&a->mutex);
    sink_send(a, ready);
    while (lost != NULL) {
        sink_line *l = lost;
        lost = l->next;
        log_error("audit: the checkpoint of seq %" PRIu64
                  " was not sent to the second sink: it may not be on disk",
                  l->seq);
        free(l->line);
        free(l);
    }
    if (a->lock_fd >= 0)
        close(a->lock_fd);
    pthread_cond_destroy(&a->durable_cond);
    pthread_cond_destroy(&a->seal_cond);
    pthread_mutex_destroy(&a->sink_mutex);
    pthread_mutex_destroy(&a->mutex);
    EVP_PKEY_free(a->seal_key);
    free(a->sink_file);
    free(a->last_checkpoint);
    free(a->dir);
    free(a);
    *audit = NULL;
}

void mandate_audit_head(mandate_audit *audit, uint64_t *seq_r, char hash_hex_r[65])
{
    pthread_mutex_lock(&audit->mutex);
    if (seq_r != NULL)
        *seq_r = audit->seq;
    if (hash_hex_r != NULL)
        memcpy(hash_hex_r, audit->hash, AUDIT_HASH_HEX + 1);
    pthread_mutex_unlock(&audit->mutex);
}

uint64_t mandate_audit_syncs(mandate_audit *audit)
{
    pthread_mutex_lock(&audit->mutex);
    uint64_t n = audit->syncs;
    pthread_mutex_unlock(&audit->mutex);
    return n;
}

/* A JSON string literal for s, or NULL when s is not UTF-8. */
static char *json_quote(const char *s)
{
    json_t *j = json_string(s);
    if (j == NULL)
        return NULL;
    char *out = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
    json_decref(j);
    return out;
}

/* One fdatasync of what is written and not yet durable. Mutex held; it is
 * dropped during the sync, so that writers go on meanwhile. */
static int64_t sync_once(mandate_audit *a)
{
    uint64_t target = a->written;
    int fd = a->fd;
    a->syncing = true;
    a->sync_fd = fd;
    a->syncs++;
    pthread_mutex_unlock(&a->mutex);
    int64_t us = 0;
    int r = timed_fdatasync(fd, &us);
    int saved = errno;
    pthread_mutex_lock(&a->mutex);
    a->syncing = false;
    a->sync_fd = -1;
    if (a->retired_fd == fd) {
        close(fd);
        a->retired_fd = -1;
    }
    if (r != 0) {
        a->broken = saved;
        log_error("audit: fdatasync failed: %s; no record is taken from now on",
                  strerror(saved));
    } else if (target > a->durable) {
        a->durable = target;
    }
    pthread_cond_broadcast(&a->durable_cond);
    return us;
}

/* Calls, outside the mutex, the waiters whose record is durable (or will
 * never be: broken). Mutex held. */
static void notify_waiters(mandate_audit *a)
{
    durable_waiter *ready = NULL, **link = &a->waiters;
    while (*link != NULL) {
        durable_waiter *w = *link;
        if (w->seq <= a->durable || a->broken) {
            /* a broken trail fails only the records not already on disk */
            w->ok = w->seq <= a->durable;
            *link = w->next;
            w->next = ready;
            ready = w;
        } else {
            link = &w->next;
        }
    }
    if (ready == NULL)
        return;
    pthread_mutex_unlock(&a->mutex);
    while (ready != NULL) {
        durable_waiter *w = ready;
        ready = w->next;
        w->cb(w->ctx, w->ok);
        free(w);
    }
    pthread_mutex_lock(&a->mutex);
}

/* BATCH: syncs whenever records wait, so that records written while one
 * fdatasync runs share the next one (group commit). Runs until close, and
 * leaves nothing unsynced behind. */
static void *committer_main(void *arg)
{
    mandate_audit *a = arg;
    pthread_mutex_lock(&a->mutex);
    for (;;) {
        if (a->written > a->durable && !a->broken && a->fd >= 0) {
            int64_t took = sync_once(a);
            notify_waiters(a);
            sink_deliver(a);
            /* Records came in during that sync: the server is busy. An
             * fdatasync costs the CPU as much as several requests, so let
             * the next group grow for half a sync's time before it goes
             * (PostgreSQL's commit_delay, adaptive). */
            if (a->written > a->durable && !a->stopping && took > 0) {
                struct timespec pause = {0, (long)(took < COMMIT_DELAY_MAX_US * 2
                                                       ? took / 2
                                                       : COMMIT_DELAY_MAX_US) * 1000};
                pthread_mutex_unlock(&a->mutex);
                nanosleep(&pause, NULL);
                pthread_mutex_lock(&a->mutex);
            }
            continue;
        }
        notify_waiters(a);
        if (a->stopping)
            break;
        pthread_cond_wait(&a->durable_cond, &a->mutex);
    }
    pthread_mutex_unlock(&a->mutex);
    return NULL;
}

/* Waits until the record seq of this handle is on disk: the committer
 * syncs it. Mutex held. */
static mandate_rc group_commit(mandate_audit *a, uint64_t seq, mandate_error *err)
{
    while (a->durable < seq && !a->broken)
        pthread_cond_wait(&a->durable_cond, &a->mutex);
    if (a->durable < seq)
        return mandate_error_set(err, MANDATE_ERROR,
                                 "audit: record seq %" PRIu64 " may not be on disk: %s", seq,
                                 strerror(a->broken));
    return MANDATE_OK;
}

mandate_audit_durability mandate_audit_when_durable(mandate_audit *a, uint64_t seq,
                                                    mandate_audit_durable_cb cb, void *ctx)
{
    mandate_audit_durability d = MANDATE_AUDIT_DURABLE;
    pthread_mutex_lock(&a->mutex);
    if (a->fsync_mode == MANDATE_AUDIT_FSYNC_BATCH && seq > a->durable) {
        if (a->broken || !a->committer_started) {
            d = MANDATE_AUDIT_LOST;
        } else {
            durable_waiter *w = mandate_xcalloc(1, sizeof(*w));
            w->seq = seq;
            w->cb = cb;
            w->ctx = ctx;
            w->next = a->waiters;
            a->waiters = w;
            pthread_cond_broadcast(&a->durable_cond);
            d = MANDATE_AUDIT_PENDING;
        }
    }
    pthread_mutex_unlock(&a->mutex);
    return d;
}

/* --- records -------------------------------------------------------------- */

/* The base name of the newest file (the one at fd when a file is open). */
static void newest_name(const mandate_audit *a, char out[AUDIT_NAME_MAX])
{
    if (a->newest_suffix <= 1)
        snprintf(out, AUDIT_NAME_MAX, "audit-%.16s.jsonl", a->newest_ts);
    else
        snprintf(out, AUDIT_NAME_MAX, "audit-%.16s-%u.jsonl", a->newest_ts, a->newest_suffix);
}

/* Formats the next record (seq a->seq + 1, prev a->hash) of time iso into
 * buf: ev and rid are JSON strings (rid may be NULL), body the members of
 * the event and the closing brace, as in "\"a\":1}" (NULL for none). Its
 * hash goes into hash_r.
 * Returns the length with the newline. Mutex and flock held. */
static size_t format_record(const mandate_audit *a, char *buf, size_t cap, const char *iso,
                            const char *ev, const char *rid, const char *body,
                            char hash_r[AUDIT_HASH_HEX + 1])
{
    int head = snprintf(
        buf, cap, "{\"seq\":%" PRIu64 ",\"ts\":\"%s\",\"prev\":\"%s\",\"event\":", a->seq + 1,
        iso, a->hash);
    size_t len = (size_t)head;
    size_t ev_len = strlen(ev);
    memcpy(buf + len, ev, ev_len);
    len += ev_len;
    if (rid != NULL) {
        size_t rid_len = strlen(rid);
        memcpy(buf + len, ",\"request_id\":", 14);
        len += 14;
        memcpy(buf + len, rid, rid_len);
        len += rid_len;
    }
    if (body != NULL) {
        size_t body_len = strlen(body);
        buf[len++] = ',';
        memcpy(buf + len, body, body_len);
        len += body_len;
    } else {
        buf[len++] = '}';
    }
    sha256_hex(buf, len, hash_r);
    buf[len++] = '\n';
    return len;
}

/* Whether a record of len bytes and time iso must begin a new file. */
static bool needs_new_file(const mandate_audit *a, const char *iso, size_t len)
{
    if (a->fd < 0)
        return true;
    if (a->rotate_bytes > 0 && a->size > 0 && a->size + (int64_t)len > a->rotate_bytes)
        return true;
    if (a->rotate_daily) {
        char day[AUDIT_NAME_TS_LEN + 1];
        name_ts_of(iso, day);
        return memcmp(day, a->newest_ts, 8) > 0;
    }
    return false;
}

/* Writes a formatted record to the current file, and makes it the head.
 * Mutex and flock held. */
static mandate_rc write_record(mandate_audit *a, const char *buf, size_t len,
                               const char hash[AUDIT_HASH_HEX + 1], mandate_error *err)
{
    ssize_t n;
    do {
        n = write(a->fd, buf, len);
    } while (n < 0 && errno == EINTR);
    if (n != (ssize_t)len) {
        int saved = n < 0 ? errno : ENOSPC;
        /* never leave a torn line behind: other writers would chain onto
         * nothing, and verify would call the file cut short */
        if (n > 0 && ftruncate(a->fd, (off_t)a->size) != 0)
            log_error("audit: cannot cut a partly written record: %s", strerror(errno));
        return mandate_error_set(err, MANDATE_ERROR,
                                 "audit: record seq %" PRIu64 " not written: %s", a->seq + 1,
                                 strerror(saved));
    }
    a->size += (int64_t)len;
    a->seq++;
    memcpy(a->hash, hash, AUDIT_HASH_HEX + 1);
    a->written = a->seq;
    newest_name(a, a->head_file);
    return MANDATE_OK;
}

/* Under the flock: one fstat says whether anyone else wrote since we did
 * (the common path); if so, the trail is read again. Mutex held. */
static mandate_rc catch_up(mandate_audit *a, mandate_error *err)
{
    struct stat st;
    if (a->fd < 0 || fstat(a->fd, &st) != 0 || st.st_size != a->size ||
        (st.st_mode & S_IWUSR) == 0 || st.st_nlink == 0)
        return resync(a, err);
    return MANDATE_OK;
}

/* --- seals ---------------------------------------------------------------- */

static bool have_sink(const mandate_audit *a)
{
    return a->sink_facility != 0 || a->sink_file != NULL;
}

/* Writes a checkpoint record sealing the head (a->seq >= 1), signed. It
 * goes into the current file unless may_rotate and it begins a new one.
 * Mutex and flock held. */
static mandate_rc write_checkpoint(mandate_audit *a, const char *iso, const char *why,
                                   bool may_rotate, mandate_error *err)
{
    mandate_audit_checkpoint cp;
    memset(&cp, 0, sizeof(cp));
    cp.seq = a->seq;
    memcpy(cp.hash, a->hash, sizeof(cp.hash));
    memcpy(cp.ts, iso, AUDIT_TS_LEN + 1);
    snprintf(cp.file, sizeof(cp.file), "%s", a->head_file);
    memcpy(cp.host, a->host, sizeof(cp.host));
    snprintf(cp.why, sizeof(cp.why), "%s", why);
    mandate_rc rc = mandate_audit_checkpoint_sign(&cp, a->seal_key, err);
    if (rc != MANDATE_OK)
        return rc;
    static const char ev[] = "\"" MANDATE_AUDIT_CHECKPOINT_EVENT "\"";
    char *members = mandate_audit_checkpoint_members(&cp);
    char *body = mandate_xasprintf("%s}", members);
    size_t cap = AUDIT_HEAD_MAX + sizeof(ev) + strlen(body);
    char *buf = mandate_xmalloc(cap);
    char hash[AUDIT_HASH_HEX + 1];
    size_t len = format_record(a, buf, cap, iso, ev, NULL, body, hash);
    if (may_rotate && needs_new_file(a, iso, len))
        rc = begin_file(a, iso, err);
    if (rc == MANDATE_OK)
        rc = write_record(a, buf, len, hash, err);
    if (rc == MANDATE_OK) {
        a->sealed = a->seq;
        a->unsealed_since = 0;
        free(a->last_checkpoint);
        a->last_checkpoint = mandate_xasprintf("{%s}", members);
        if (have_sink(a)) {
            sink_line *l = mandate_xcalloc(1, sizeof(*l));
            l->seq = a->seq;
            l->line = mandate_xstrdup(a->last_checkpoint);
            *a->sink_tail = l;
            a->sink_tail = &l->next;
        }
    }
    free(buf);
    free(body);
    free(members);
    return rc;
}

/* Records written outside an append (checkpoints): ALWAYS syncs them now,
 * BATCH hands them to the committer. Mutex held. */
static mandate_rc settle(mandate_audit *a, mandate_error *err)
{
    if (a->written <= a->durable || a->fd < 0)
        return MANDATE_OK;
    if (a->fsync_mode == MANDATE_AUDIT_FSYNC_ALWAYS) {
        int64_t us;
        a->syncs++;
        if (timed_fdatasync(a->fd, &us) != 0) {
            a->broken = errno;
            return mandate_error_set(err, MANDATE_ERROR,
                                     "audit: checkpoint may not be on disk: %s",
                                     strerror(errno));
        }
        a->durable = a->written;
    } else if (a->fsync_mode == MANDATE_AUDIT_FSYNC_BATCH) {
        pthread_cond_broadcast(&a->durable_cond); /* the committer */
    }
    return MANDATE_OK;
}

/* Seals the head unless it already is: takes the flock, catches up with
 * other writers, writes the checkpoint and settles it. Mutex held. */
static mandate_rc checkpoint_locked(mandate_audit *a, const char *why, mandate_error *err)
{
    if (a->broken)
        return mandate_error_set(err, MANDATE_ERROR,
                                 "audit: an earlier fdatasync failed (%s); reopen the trail",
                                 strerror(a->broken));
    if (flock_retry(a->lock_fd, LOCK_EX) != 0)
        return mandate_error_set(err, MANDATE_ERROR, "audit: flock: %s", strerror(errno));
    mandate_rc rc = catch_up(a, err);
    if (rc == MANDATE_OK && a->seq > a->sealed) {
        char iso[AUDIT_TS_LEN + 1];
        now_iso(iso);
        rc = write_checkpoint(a, iso, why, true, err);
    }
    (void)flock_retry(a->lock_fd, LOCK_UN);
    if (rc == MANDATE_OK)
        rc = settle(a, err);
    return rc;
}

/* Whether the first checkpoint waiting for the second sink may go: it is
 * durable in the trail (OFF promises nothing: written is enough). */
static bool sink_ready(const mandate_audit *a)
{
    return a->sink_lines != NULL &&
           (a->fsync_mode == MANDATE_AUDIT_FSYNC_OFF || a->sink_lines->seq <= a->durable);
}

/* Takes the checkpoints that may go to the second sink. Mutex held. */
static sink_line *sink_take(mandate_audit *a)
{
    sink_line *ready = NULL, **tail = &ready;
    while (sink_ready(a)) {
        sink_line *l = a->sink_lines;
        a->sink_lines = l->next;
        l->next = NULL;
        *tail = l;
        tail = &l->next;
    }
    if (a->sink_lines == NULL)
        a->sink_tail = &a->sink_lines;
    return ready;
}

/* Appends line to the sink file (a file, or a FIFO: opened without
 * blocking, so a FIFO without a reader loses the line rather than stopping
 * the sealer). Opened for each line: checkpoints are rare, and a file that
 * logrotate moved away is begun again. sink_mutex held. */
static bool sink_file_append(mandate_audit *a, const char *line, char *why, size_t why_cap)
{
    int flags = O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC | O_NOCTTY;
    int fd = open(a->sink_file, flags);
    if (fd < 0 && errno == ENOENT) {
        fd = open(a->sink_file, flags | O_CREAT | O_EXCL, S_IRUSR | S_IWUSR);
        /* root (mandatectl) leaves it to the daemon's user, as the trail */
        if (fd >= 0 && a->chown_files)
            (void)fchown(fd, a->dir_uid, a->dir_gid);
        else if (fd < 0 && errno == EEXIST)
            fd = open(a->sink_file, flags);
    }
    if (fd < 0) {
        snprintf(why, why_cap, "%s", strerror(errno));
        return false;
    }
    size_t len = strlen(line);
    char *buf = mandate_xmalloc(len + 1);
    memcpy(buf, line, len);
    buf[len] = '\n';
    ssize_t n;
    do {
        n = write(fd, buf, len + 1);
    } while (n < 0 && errno == EINTR);
    bool ok = n == (ssize_t)(len + 1);
    if (!ok)
        snprintf(why, why_cap, "%s", n < 0 ? strerror(errno) : "short write");
    struct stat st;
    if (ok && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && fdatasync(fd) != 0) {
        snprintf(why, why_cap, "fdatasync: %s", strerror(errno));
        ok = false;
    }
    free(buf);
    close(fd);
    return ok;
}

/* Sends checkpoints to the second sink and frees them. Without the mutex. */
static void sink_send(mandate_audit *a, sink_line *lines)
{
    if (lines == NULL)
        return;
    pthread_mutex_lock(&a->sink_mutex);
    while (lines != NULL) {
        sink_line *l = lines;
        lines = l->next;
        if (a->sink_facility != 0)
            syslog(a->sink_facility | LOG_NOTICE, "audit checkpoint %s", l->line);
        char why[160];
        if (a->sink_file != NULL) {
            /* said once when it fails and once when it works again, not
             * for every checkpoint */
            bool ok = sink_file_append(a, l->line, why, sizeof(why));
            if (!ok && !a->sink_failing)
                log_warning("audit: checkpoint of seq %" PRIu64 " not written to %s: %s",
                            l->seq, a->sink_file, why);
            else if (ok && a->sink_failing)
                log_info("audit: checkpoints are written to %s again", a->sink_file);
            a->sink_failing = !ok;
        }
        free(l->line);
        free(l);
    }
    pthread_mutex_unlock(&a->sink_mutex);
}

/* Hands the checkpoints that may go to the sealer thread, or sends them
 * (dropping the mutex meanwhile) when there is none. Mutex held. */
static void sink_deliver(mandate_audit *a)
{
    if (!sink_ready(a))
        return;
    if (a->sealer_started && !a->sealer_stopping) {
        pthread_cond_signal(&a->seal_cond);
        return;
    }
    sink_line *ready = sink_take(a);
    pthread_mutex_unlock(&a->mutex);
    sink_send(a, ready);
    pthread_mutex_lock(&a->mutex);
}

static struct timespec monotonic_at(int64_t us)
{
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
    return ts;
}

/* Seals on count and on time, and sends checkpoints to the second sink,
 * so that no caller of an append signs or waits for syslog. */
static void *sealer_main(void *arg)
{
    mandate_audit *a = arg;
    pthread_mutex_lock(&a->mutex);
    while (!a->sealer_stopping) {
        if (sink_ready(a)) {
            sink_line *ready = sink_take(a);
            pthread_mutex_unlock(&a->mutex);
            sink_send(a, ready);
            pthread_mutex_lock(&a->mutex);
            continue;
        }
        int64_t wake = 0; /* 0: until signalled */
        if (!a->broken && a->seq > a->sealed) {
            int64_t now = monotonic_us();
            if (a->unsealed_since == 0)
                a->unsealed_since = now; /* records of another writer */
            int64_t due = a->unsealed_since + a->checkpoint_us;
            bool by_count = a->seq - a->sealed >= a->checkpoint_records;
            if ((by_count || now >= due) && now >= a->seal_retry_at) {
                mandate_error err = {0};
                if (checkpoint_locked(a, by_count ? "records" : "time", &err) != MANDATE_OK) {
                    log_error("audit: checkpoint not written: %s", err.message);
                    a->seal_retry_at = now + a->checkpoint_us; /* not in a loop */
                }
                continue;
            }
            wake = by_count || due < a->seal_retry_at ? a->seal_retry_at : due;
        }
        if (wake > 0) {
            struct timespec until = monotonic_at(wake);
            pthread_cond_timedwait(&a->seal_cond, &a->mutex, &until);
        } else {
            pthread_cond_wait(&a->seal_cond, &a->mutex);
        }
    }
    pthread_mutex_unlock(&a->mutex);
    return NULL;
}

/* After a record of an append: starts the clock of the unsealed records,
 * and seals on count (through the sealer thread when there is one).
 * Mutex and flock held. */
static void seal_after_append(mandate_audit *a)
{
    if (a->seal_key == NULL)
        return;
    bool wake = false;
    if (a->unsealed_since == 0) {
        a->unsealed_since = monotonic_us();
        wake = true; /* the sealer arms its timer */
    }
    if (a->seq - a->sealed >= a->checkpoint_records) {
        if (a->sealer_started) {
            wake = true;
        } else {
            char iso[AUDIT_TS_LEN + 1];
            mandate_error err = {0};
            now_iso(iso);
            /* the record is written: a seal that fails is said, not the
             * append's failure */
            if (write_checkpoint(a, iso, "records", true, &err) != MANDATE_OK)
                log_error("audit: checkpoint not written: %s", err.message);
        }
    }
    if (wake && a->sealer_started)
        pthread_cond_signal(&a->seal_cond);
}

mandate_rc mandate_audit_seal(mandate_audit *a, char **line_r, mandate_error *err)
{
    *line_r = NULL;
    if (a->seal_key == NULL)
        return mandate_error_set(err, MANDATE_NOT_FOUND,
                                 "audit: the trail is not sealed (no seal key: audit.seal)");
    pthread_mutex_lock(&a->mutex);
    mandate_rc rc = checkpoint_locked(a, "request", err);
    if (rc == MANDATE_OK && a->seq == 0)
        rc = mandate_error_set(err, MANDATE_NOT_FOUND,
                               "audit: the trail is empty: nothing to seal");
    /* our own checkpoint: durable before it is shown */
    if (rc == MANDATE_OK && a->fsync_mode == MANDATE_AUDIT_FSYNC_BATCH &&
        a->sealed <= a->written)
        rc = group_commit(a, a->sealed, err);
    if (rc == MANDATE_OK && a->last_checkpoint == NULL)
        rc = mandate_error_set(err, MANDATE_ERROR, "audit: the last checkpoint cannot be read");
    if (rc == MANDATE_OK)
        *line_r = mandate_xstrdup(a->last_checkpoint);
    sink_deliver(a);
    pthread_mutex_unlock(&a->mutex);
    return rc;
}

/* --- appending -------------------------------------------------------------- */

static mandate_rc append(mandate_audit *audit, const char *event, const char *request_id,
                         json_t *fields, uint64_t *seq_r, bool wait, mandate_error *err)
{
    mandate_audit *a = audit;
    static const char *const reserved[] = {"seq", "ts", "prev", "event", "request_id"};
    char *ev = NULL, *rid = NULL, *members = NULL, *buf = NULL;
    mandate_rc rc;

    if (event == NULL || event[0] == '\0') {
        json_decref(fields);
        return mandate_error_set(err, MANDATE_INVALID, "audit: a record needs an event");
    }
    if (strcmp(event, MANDATE_AUDIT_CHECKPOINT_EVENT) == 0) {
        json_decref(fields);
        return mandate_error_set(err, MANDATE_INVALID,
                                 "audit: %s records are written by the trail itself", event);
    }
    if (fields != NULL && !json_is_object(fields)) {
        json_decref(fields);
        return mandate_error_set(err, MANDATE_INVALID, "audit: %s: fields is not an object",
                                 event);
    }
    /* everything that does not depend on the chain is done before the lock */
    ev = json_quote(event);
    rid = request_id != NULL ? json_quote(request_id) : NULL;
    if (fields != NULL) {
        for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
            (void)json_object_del(fields, reserved[i]);
        members = json_dumps(fields, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(fields);
    }
    if (ev == NULL || (request_id != NULL && rid == NULL) ||
        (fields != NULL && members == NULL)) {
        rc = mandate_error_set(err, MANDATE_INVALID, "audit: %s: cannot be encoded as JSON",
                               event);
        goto out_free;
    }
    /* members is "{...}": its text after the brace is spliced in */
    const char *body = members != NULL && strcmp(members, "{}") != 0 ? members + 1 : NULL;
    size_t cap = AUDIT_HEAD_MAX + strlen(ev) + (rid != NULL ? strlen(rid) : 0) +
                 (body != NULL ? strlen(body) : 0);
    if (cap > AUDIT_LINE_MAX) {
        rc = mandate_error_set(err, MANDATE_INVALID,
                               "audit: %s: a record of %zu bytes is longer than 1 MiB", event,
                               cap);
        goto out_free;
    }
    buf = mandate_xmalloc(cap);

    pthread_mutex_lock(&a->mutex);
    if (a->broken) {
        rc = mandate_error_set(err, MANDATE_ERROR,
                               "audit: an earlier fdatasync failed (%s); reopen the trail",
                               strerror(a->broken));
        goto out_unlock;
    }
    if (flock_retry(a->lock_fd, LOCK_EX) != 0) {
        rc = mandate_error_set(err, MANDATE_ERROR, "audit: flock: %s", strerror(errno));
        goto out_unlock;
    }
    rc = catch_up(a, err);
    if (rc != MANDATE_OK)
        goto out_unflock;

    char iso[AUDIT_TS_LEN + 1];
    now_iso(iso);
    char hash[AUDIT_HASH_HEX + 1];
    size_t len = format_record(a, buf, cap, iso, ev, rid, body, hash);
    if (needs_new_file(a, iso, len)) {
        /* a finished file ends with the seal of its last record */
        if (a->seal_key != NULL && a->fd >= 0 && a->seq > a->sealed) {
            mandate_error cerr = {0};
            if (write_checkpoint(a, iso, "rotation", false, &cerr) != MANDATE_OK)
                log_error("audit: checkpoint not written: %s", cerr.message);
            len = format_record(a, buf, cap, iso, ev, rid, body, hash);
        }
        rc = begin_file(a, iso, err);
        if (rc != MANDATE_OK)
            goto out_unflock;
    }
    rc = write_record(a, buf, len, hash, err);
    if (rc != MANDATE_OK)
        goto out_unflock;
    uint64_t seq = a->seq;
    a->wrote = true;
    seal_after_append(a);
    /* the bytes are in order in the file: other writers may go on while
     * this one waits for the disk */
    (void)flock_retry(a->lock_fd, LOCK_UN);

    if (a->fsync_mode == MANDATE_AUDIT_FSYNC_ALWAYS) {
        int64_t us;
        a->syncs++;
        if (timed_fdatasync(a->fd, &us) != 0) {
            a->broken = errno;
            rc = mandate_error_set(err, MANDATE_ERROR,
                                   "audit: record seq %" PRIu64 " may not be on disk: %s", seq,
                                   strerror(errno));
        } else {
            a->durable = a->written;
        }
    } else if (a->fsync_mode == MANDATE_AUDIT_FSYNC_BATCH) {
        pthread_cond_broadcast(&a->durable_cond); /* the committer */
        if (wait)
            rc = group_commit(a, seq, err);
    }
    if (rc == MANDATE_OK && seq_r != NULL)
        *seq_r = seq;
    sink_deliver(a);
    goto out_unlock;

out_unflock:
    (void)flock_retry(a->lock_fd, LOCK_UN);
out_unlock:
    pthread_mutex_unlock(&a->mutex);
out_free:
    free(buf);
    free(ev);
    free(rid);
    free(members);
    return rc;
}

mandate_rc mandate_audit_append(mandate_audit *audit, const char *event, const char *request_id,
                                json_t *fields, uint64_t *seq_r, mandate_error *err)
{
    return append(audit, event, request_id, fields, seq_r, true, err);
}

mandate_rc mandate_audit_append_nowait(mandate_audit *audit, const char *event,
                                       const char *request_id, json_t *fields, uint64_t *seq_r,
                                       mandate_error *err)
{
    return append(audit, event, request_id, fields, seq_r, false, err);
}

/* --- verification ---------------------------------------------------------- */

/* Reads lines of at most AUDIT_LINE_MAX bytes; a longer line is skipped
 * and flagged. */
typedef struct line_reader {
    int fd;
    char *block;
    size_t block_len, block_pos;
    char *line;
    size_t line_len;
    bool eof;
} line_reader;

typedef enum line_kind { LINE_NONE, LINE_OK, LINE_TOO_LONG, LINE_NO_NEWLINE } line_kind;

static line_kind reader_next(line_reader *r, int *errno_r)
{
    bool too_long = false;
    r->line_len = 0;
    *errno_r = 0;
    for (;;) {
        if (r->block_pos == r->block_len) {
            if (r->eof)
                break;
            ssize_t n = read(r->fd, r->block, AUDIT_SCAN_CHUNK);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                *errno_r = errno;
                return LINE_NONE;
            }
            if (n == 0) {
                r->eof = true;
                break;
            }
            r->block_len = (size_t)n;
            r->block_pos = 0;
        }
        char *start = r->block + r->block_pos;
        size_t avail = r->block_len - r->block_pos;
        char *nl = memchr(start, '\n', avail);
        size_t take = nl != NULL ? (size_t)(nl - start) : avail;
        if (!too_long) {
            if (r->line_len + take > AUDIT_LINE_MAX) {
                too_long = true;
            } else {
                memcpy(r->line + r->line_len, start, take);
                r->line_len += take;
            }
        }
        r->block_pos += take;
        if (nl != NULL) {
            r->block_pos++;
            return too_long ? LINE_TOO_LONG : LINE_OK;
        }
    }
    if (too_long)
        return LINE_TOO_LONG;
    return r->line_len > 0 ? LINE_NO_NEWLINE : LINE_NONE;
}

/* One line of the trail as the verifier sees it. */
typedef struct vitem {
    bool record; /* else why in what */
    uint64_t seq;
    char prev[AUDIT_HASH_HEX + 1];
    char hash[AUDIT_HASH_HEX + 1];
    char ts[AUDIT_TS_LEN + 1]; /* as written, when it fits; else "" */
    const char *file;          /* base name */
    uint64_t line;
    char what[200];
    /* a checkpoint record: cp when it could be read, else why in what */
    bool is_checkpoint, checkpoint_read;
    mandate_audit_checkpoint cp;
} vitem;

/* A checkpoint of the checkpoints file (the second sink). */
typedef struct sink_cp {
    uint64_t seq;
    uint64_t line; /* in the checkpoints file */
    char hash[AUDIT_HASH_HEX + 1];
    char ts[AUDIT_TS_LEN + 1];
    char file[MANDATE_AUDIT_CP_FILE_MAX + 1];
} sink_cp;

/* The verifier reads the trail once. While the chain holds, each record
 * is checked against the one before it (L). At the first broken link
 * (L -> R) it goes on reading to the end and gathers what it needs to name
 * the tampering: the record after R (N), whether a later record chains to
 * L (L's real successor is further on: R was inserted), and whether a later
 * record has a seq between L's and R's (the missing ones come later: the
 * records were reordered, not removed). Memory stays constant. */
typedef struct verifier {
    mandate_audit_report *report;
    bool have_last;
    vitem last;                           /* L */
    char before_last[AUDIT_HASH_HEX + 1]; /* hash of the record before L, "" unknown */
    bool broken;                          /* a link broke: gathering */
    vitem r;                              /* the record after L */
    bool have_n;
    vitem n; /* the first record after R */
    bool have_between;
    uint64_t between_seq; /* the first later seq in (L.seq, R.seq) */
    bool have_chains_l;
    uint64_t chains_l_seq; /* the first later record chaining to L */

    /* seals */
    const mandate_audit_keys *keys; /* NULL: signatures not checked */
    bool have_checkpoint;
    uint64_t last_checkpoint_seq; /* the seq of the last checkpoint record */
    /* the checkpoints file, sorted by seq; next: the first not yet met */
    const char *sink_name;
    sink_cp *sink;
    size_t n_sink, next_sink;
    const char *const *files;
    size_t n_files;
} verifier;

static void parse_item(const char *line, size_t len, vitem *it)
{
    json_error_t jerr;
    json_t *rec = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    it->record = false;
    if (rec == NULL) {
        snprintf(it->what, sizeof(it->what), "not a record (invalid JSON: %s)", jerr.text);
        return;
    }
    json_t *seq = json_object_get(rec, "seq");
    json_t *ts = json_object_get(rec, "ts");
    json_t *prev = json_object_get(rec, "prev");
    json_t *event = json_object_get(rec, "event");
    if (!json_is_object(rec))
        snprintf(it->what, sizeof(it->what), "not a record (not a JSON object)");
    else if (!json_is_integer(seq) || json_integer_value(seq) < 1)
        snprintf(it->what, sizeof(it->what), "not a record (no \"seq\" above 0)");
    else if (!json_is_string(ts))
        snprintf(it->what, sizeof(it->what), "not a record (no \"ts\")");
    else if (!json_is_string(prev) || !is_hash_hex(json_string_value(prev)))
        snprintf(it->what, sizeof(it->what), "not a record (no \"prev\" hash)");
    else if (!json_is_string(event))
        snprintf(it->what, sizeof(it->what), "not a record (no \"event\")");
    else {
        it->record = true;
        it->seq = (uint64_t)json_integer_value(seq);
        memcpy(it->prev, json_string_value(prev), sizeof(it->prev));
        sha256_hex(line, len, it->hash);
        if (json_string_length(ts) <= AUDIT_TS_LEN)
            memcpy(it->ts, json_string_value(ts), json_string_length(ts) + 1);
        if (strcmp(json_string_value(event), MANDATE_AUDIT_CHECKPOINT_EVENT) == 0) {
            it->is_checkpoint = true;
            it->checkpoint_read =
                mandate_audit_checkpoint_parse(rec, &it->cp, it->what, sizeof(it->what));
        }
    }
    json_decref(rec);
}

/* The first problem, at line of file. */
MANDATE_PRINTF(4, 0)
static void problem_v(verifier *v, const char *file, uint64_t line, const char *fmt, va_list ap)
{
    mandate_audit_report *rep = v->report;
    if (!rep->intact)
        return;
    rep->intact = false;
    int n = snprintf(rep->problem, sizeof(rep->problem), "%s:%" PRIu64 ": ", file, line);
    if (n < 0 || (size_t)n >= sizeof(rep->problem))
        return;
    vsnprintf(rep->problem + n, sizeof(rep->problem) - (size_t)n, fmt, ap);
}

MANDATE_PRINTF(3, 4)
static void problem(verifier *v, const vitem *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    problem_v(v, at->file, at->line, fmt, ap);
    va_end(ap);
}

/* A problem found by a line of the checkpoints file. */
MANDATE_PRINTF(3, 4)
static void sink_problem(verifier *v, uint64_t line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    problem_v(v, v->sink_name, line, fmt, ap);
    va_end(ap);
}

static bool hash_eq(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

/* Names the broken link L -> R from what was gathered after it. */
static void name_break(verifier *v)
{
    const vitem *l = &v->last, *r = &v->r;
    const vitem *n = v->have_n ? &v->n : NULL;
    bool n_chains_l = n != NULL && hash_eq(n->prev, l->hash);
    const char *where = n_chains_l ? "after it" : "further on";

    if (r->seq == l->seq + 1) {
        /* in order, but R does not name L's hash */
        if (v->have_chains_l)
            problem(v, r,
                    "record seq %" PRIu64 " was inserted (record seq %" PRIu64
                    " %s chains to record seq %" PRIu64 " before it)",
                    r->seq, v->chains_l_seq, where, l->seq);
        else if (n != NULL && hash_eq(n->prev, r->hash))
            problem(v, l,
                    "record seq %" PRIu64 " was changed (record seq %" PRIu64
                    " names another hash for it)",
                    l->seq, r->seq);
        else if (n != NULL)
            problem(v, r,
                    "record seq %" PRIu64 " was changed (its prev is not the hash of record "
                    "seq %" PRIu64 ", and record seq %" PRIu64 " names another hash for it)",
                    r->seq, l->seq, n->seq);
        else
            problem(v, r,
                    "record seq %" PRIu64 " or record seq %" PRIu64
                    " before it was changed (record seq %" PRIu64
                    " names another hash for seq %" PRIu64 ")",
                    r->seq, l->seq, r->seq, l->seq);
    } else if (r->seq == l->seq) {
        if (hash_eq(r->hash, l->hash))
            problem(v, r,
                    "record seq %" PRIu64 " was inserted (a copy of the record before it)",
                    r->seq);
        else if (v->have_chains_l)
            problem(v, r,
                    "record seq %" PRIu64 " was inserted (its seq repeats, and record seq "
                    "%" PRIu64 " %s chains to the record before it)",
                    r->seq, v->chains_l_seq, where);
        else if (v->before_last[0] != '\0' && hash_eq(r->prev, v->before_last))
            problem(v, l,
                    "record seq %" PRIu64 " was inserted (the record after it has the same "
                    "seq and chains to the record before it)",
                    l->seq);
        else
            problem(v, r, "record seq %" PRIu64 " was inserted (its seq repeats)", r->seq);
    } else if (r->seq > l->seq + 1) {
        if (hash_eq(r->prev, l->hash))
            problem(v, r,
                    "record seq %" PRIu64 " was changed (it chains to record seq %" PRIu64
                    ", so its seq should be %" PRIu64 ")",
                    r->seq, l->seq, l->seq + 1);
        else if (v->have_between)
            problem(v, r,
                    "records were reordered (record seq %" PRIu64 " comes before record seq "
                    "%" PRIu64 ")",
                    r->seq, v->between_seq);
        else if (v->have_chains_l)
            problem(v, r,
                    "record seq %" PRIu64 " was inserted (record seq %" PRIu64
                    " %s chains to record seq %" PRIu64 " before it)",
                    r->seq, v->chains_l_seq, where, l->seq);
        else if (r->seq == l->seq + 2)
            problem(v, r,
                    "record seq %" PRIu64 " was removed (seq jumps from %" PRIu64 " to %" PRIu64
                    ")",
                    l->seq + 1, l->seq, r->seq);
        else
            problem(v, r,
                    "records seq %" PRIu64 " to %" PRIu64
                    " were removed (seq jumps from %" PRIu64 " to %" PRIu64 ")",
                    l->seq + 1, r->seq - 1, l->seq, r->seq);
    } else {
        if (v->have_chains_l)
            problem(v, r,
                    "record seq %" PRIu64 " was inserted (seq goes down from %" PRIu64
                    ", and record seq %" PRIu64 " %s chains to record seq %" PRIu64 ")",
                    r->seq, l->seq, v->chains_l_seq, where, l->seq);
        else
            problem(v, r,
                    "records were reordered (seq goes down from %" PRIu64 " to %" PRIu64 ")",
                    l->seq, r->seq);
    }
}

/* Gathers facts about a record after a broken link. */
static void gather(verifier *v, const vitem *it)
{
    if (!v->have_n) {
        v->n = *it;
        v->have_n = true;
    }
    if (!v->have_between && it->seq > v->last.seq && it->seq < v->r.seq) {
        v->have_between = true;
        v->between_seq = it->seq;
    }
    if (!v->have_chains_l && hash_eq(it->prev, v->last.hash)) {
        v->have_chains_l = true;
        v->chains_l_seq = it->seq;
    }
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash != NULL ? slash + 1 : path;
}

/* ", which is missing" when no file verified has that base name. */
static const char *missing(const verifier *v, const char *name)
{
    for (size_t i = 0; i < v->n_files; i++)
        if (strcmp(base_name(v->files[i]), name) == 0)
            return "";
    return ", which is missing";
}

/* A checkpoint record R (in the chain, after the record before it): it
 * must seal that record, by its seq and hash (the chain was recomputed
 * after an edit, or records were renumbered, when it does not), and be
 * signed by one of the keys. The file it names is not compared: a name is
 * not content (an auditor may get the files under other names), and files
 * put out of order break the chain anyway; it only says, when records are
 * missing, which file to look for. */
static void check_checkpoint(verifier *v, const vitem *it)
{
    mandate_audit_report *rep = v->report;
    const mandate_audit_checkpoint *cp = &it->cp;
    if (!it->checkpoint_read) {
        problem(v, it, "record seq %" PRIu64 " is a checkpoint that cannot be read (%s)",
                it->seq, it->what);
        return;
    }
    if (cp->seq + 1 != it->seq) {
        problem(v, it,
                "record seq %" PRIu64 " is a checkpoint of record seq %" PRIu64
                ", not of the record before it: records were renumbered, removed or "
                "inserted after it was taken",
                it->seq, cp->seq);
        return;
    }
    if (!hash_eq(cp->hash, it->prev)) {
        problem(v, it,
                "record seq %" PRIu64 ", or one before it, was changed after it was "
                "sealed: the checkpoint in record seq %" PRIu64
                " names another hash for it, and the chain was recomputed",
                cp->seq, it->seq);
        return;
    }
    if (v->keys != NULL) {
        mandate_rc rc = mandate_audit_checkpoint_check(cp, v->keys);
        if (rc == MANDATE_NOT_FOUND) {
            problem(v, it,
                    "record seq %" PRIu64 " is a checkpoint signed by key %s, which is not "
                    "one of the keys given",
                    it->seq, cp->key);
            return;
        }
        if (rc != MANDATE_OK) {
            problem(v, it,
                    "record seq %" PRIu64 " is a checkpoint with a bad signature: forged, or "
                    "changed after it was signed",
                    it->seq);
            return;
        }
    }
    rep->checkpoints++;
    rep->sealed_seq = cp->seq;
    memcpy(rep->sealed_ts, cp->ts, sizeof(rep->sealed_ts));
    memcpy(rep->sealed_key, cp->key, sizeof(rep->sealed_key));
    memcpy(rep->sealed_why, cp->why, sizeof(rep->sealed_why));
    v->have_checkpoint = true;
    v->last_checkpoint_seq = it->seq;
}

/* A record of the chain against the checkpoints of the file that seal it,
 * and those before it (which only the first record can have). */
static void check_sink(verifier *v, const vitem *it)
{
    while (v->next_sink < v->n_sink && v->sink[v->next_sink].seq < it->seq) {
        const sink_cp *c = &v->sink[v->next_sink++];
        sink_problem(v, c->line,
                     "the checkpoint of %s seals record seq %" PRIu64 " in %s%s, but the trail "
                     "starts at record seq %" PRIu64
                     ": its first files were removed (or archived: verify them too)",
                     c->ts, c->seq, c->file, missing(v, c->file), it->seq);
        return;
    }
    while (v->next_sink < v->n_sink && v->sink[v->next_sink].seq == it->seq) {
        const sink_cp *c = &v->sink[v->next_sink++];
        if (!hash_eq(c->hash, it->hash)) {
            problem(v, it,
                    "record seq %" PRIu64 ", or one before it, was changed after it was "
                    "sealed: the checkpoint of %s (%s:%" PRIu64 ") names another hash for it",
                    it->seq, c->ts, v->sink_name, c->line);
            return;
        }
    }
}

/* After the last record: a checkpoint of the file beyond it means records
 * were cut from the end (or the trail's last files removed). */
static void check_sink_end(verifier *v)
{
    mandate_audit_report *rep = v->report;
    if (v->next_sink >= v->n_sink)
        return;
    const sink_cp *c = &v->sink[v->n_sink - 1];
    if (rep->records == 0)
        sink_problem(v, c->line,
                     "the trail has no record, but the checkpoint of %s seals record seq "
                     "%" PRIu64 " in %s%s: its files were removed",
                     c->ts, c->seq, c->file, missing(v, c->file));
    else
        sink_problem(v, c->line,
                     "the trail ends at record seq %" PRIu64 ", but the checkpoint of %s "
                     "seals record seq %" PRIu64 " in %s%s: records seq %" PRIu64 " to %" PRIu64
                     " were cut from its end",
                     rep->last_seq, c->ts, c->seq, c->file, missing(v, c->file),
                     rep->last_seq + 1, c->seq);
}

/* One line of the trail, in order. */
static void take(verifier *v, const vitem *it)
{
    mandate_audit_report *rep = v->report;
    if (it->record) {
        if (rep->records == 0)
            rep->first_seq = it->seq;
        rep->records++;
        rep->last_seq = it->seq;
        memcpy(rep->last_hash, it->hash, sizeof(rep->last_hash));
        memcpy(rep->last_ts, it->ts, sizeof(rep->last_ts));
    }
    if (!rep->intact)
        return;
    if (v->broken) {
        if (it->record)
            gather(v, it);
        return;
    }
    if (!it->record) {
        problem(v, it, "%s", it->what);
        return;
    }
    if (!v->have_last) {
        if (it->seq == 1 && !hash_eq(it->prev, zero_hash)) {
            problem(v, it, "record seq 1 was changed (its prev is not 64 zeros)");
            return;
        }
        /* a trail that starts later (older files archived away) is taken
         * from where it starts */
        if (it->seq == 1)
            memcpy(v->before_last, zero_hash, sizeof(v->before_last));
        else
            v->before_last[0] = '\0';
    } else if (it->seq == v->last.seq + 1 && hash_eq(it->prev, v->last.hash)) {
        memcpy(v->before_last, v->last.hash, sizeof(v->before_last));
    } else {
        v->broken = true;
        v->r = *it;
        return;
    }
    if (it->is_checkpoint)
        check_checkpoint(v, it);
    if (v->n_sink > 0)
        check_sink(v, it);
    v->last = *it;
    v->have_last = true;
}

static int sink_cp_cmp(const void *x, const void *y)
{
    const sink_cp *a = x, *b = y;
    if (a->seq != b->seq)
        return a->seq < b->seq ? -1 : 1;
    return a->line < b->line ? -1 : a->line > b->line;
}

/* The longest line of a checkpoints file looked at: a syslog line with a
 * checkpoint is some 500 bytes. */
#define SINK_LINE_MAX 65536

/* Reads the checkpoints file: each line holding {"checkpoint": ...} (with
 * anything before it: a syslog prefix) is a checkpoint, checked with the
 * keys; the others are skipped. Sorted by seq, since two writers (or a
 * collector) may have put them slightly out of order. */
static mandate_rc load_sink(verifier *v, const char *path, mandate_error *err)
{
    mandate_audit_report *rep = v->report;
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return mandate_error_set(err, MANDATE_ERROR, "audit: %s: %s", path, strerror(errno));
    v->sink_name = base_name(path);
    char *line = NULL;
    size_t cap = 0, n_cap = 0;
    ssize_t len;
    uint64_t line_no = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        line_no++;
        char *m = (size_t)len <= SINK_LINE_MAX ? strstr(line, "{\"checkpoint\":") : NULL;
        if (m == NULL)
            continue;
        size_t mlen = (size_t)(line + len - m);
        while (mlen > 0 && (m[mlen - 1] == '\n' || m[mlen - 1] == '\r' || m[mlen - 1] == ' '))
            mlen--;
        json_error_t jerr;
        json_t *obj = json_loadb(m, mlen, JSON_REJECT_DUPLICATES, &jerr);
        mandate_audit_checkpoint cp;
        char what[200];
        bool ok = json_is_object(obj) && json_object_size(obj) == 2 &&
                  mandate_audit_checkpoint_parse(obj, &cp, what, sizeof(what));
        if (obj == NULL)
            snprintf(what, sizeof(what), "invalid JSON: %s", jerr.text);
        else if (!ok && json_is_object(obj) && json_object_size(obj) != 2)
            snprintf(what, sizeof(what), "members other than checkpoint and sig");
        json_decref(obj);
        if (!ok) {
            sink_problem(v, line_no, "not a checkpoint (%s)", what);
            continue;
        }
        mandate_rc rc =
            v->keys != NULL ? mandate_audit_checkpoint_check(&cp, v->keys) : MANDATE_OK;
        if (rc == MANDATE_NOT_FOUND)
            sink_problem(v, line_no,
                         "a checkpoint signed by key %s, which is not one of the keys given",
                         cp.key);
        else if (rc != MANDATE_OK)
            sink_problem(v, line_no,
                         "a checkpoint with a bad signature: forged, or changed after it was "
                         "signed");
        if (v->n_sink == n_cap) {
            n_cap = n_cap ? n_cap * 2 : 64;
            v->sink = mandate_xrealloc(v->sink, n_cap * sizeof(*v->sink));
        }
        sink_cp *c = &v->sink[v->n_sink++];
        c->seq = cp.seq;
        c->line = line_no;
        memcpy(c->hash, cp.hash, sizeof(c->hash));
        memcpy(c->ts, cp.ts, sizeof(c->ts));
        memcpy(c->file, cp.file, sizeof(c->file));
        rep->sink_checkpoints++;
        if (cp.seq > rep->sink_last_seq)
            rep->sink_last_seq = cp.seq;
    }
    int read_errno = ferror(f) ? errno : 0;
    free(line);
    fclose(f);
    if (read_errno != 0)
        return mandate_error_set(err, MANDATE_ERROR, "audit: %s: %s", path,
                                 strerror(read_errno));
    if (v->n_sink > 1)
        qsort(v->sink, v->n_sink, sizeof(*v->sink), sink_cp_cmp);
    return MANDATE_OK;
}

mandate_rc mandate_audit_verify(const char *const *files, size_t n_files,
                                const mandate_audit_verify_opts *opts,
                                mandate_audit_report *report, mandate_error *err)
{
    memset(report, 0, sizeof(*report));
    report->intact = true;
    memcpy(report->last_hash, zero_hash, sizeof(zero_hash));

    verifier v;
    memset(&v, 0, sizeof(v));
    v.report = report;
    v.files = files;
    v.n_files = n_files;
    if (opts != NULL && mandate_audit_keys_count(opts->keys) > 0) {
        v.keys = opts->keys;
        report->seals_checked = true;
    }
    line_reader r;
    memset(&r, 0, sizeof(r));
    mandate_rc rc = MANDATE_OK;
    if (opts != NULL && opts->checkpoints != NULL) {
        rc = load_sink(&v, opts->checkpoints, err);
        if (rc != MANDATE_OK)
            goto out;
    }
    r.block = mandate_xmalloc(AUDIT_SCAN_CHUNK);
    r.line = mandate_xmalloc(AUDIT_LINE_MAX + 1);

    for (size_t f = 0; f < n_files; f++) {
        r.fd = open(files[f], O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (r.fd < 0) {
            rc = mandate_error_set(err, MANDATE_ERROR, "audit: %s: %s", files[f],
                                   strerror(errno));
            goto out;
        }
        r.block_len = r.block_pos = 0;
        r.eof = false;
        const char *name = base_name(files[f]);
        uint64_t line_no = 0;
        for (;;) {
            int read_errno;
            line_kind kind = reader_next(&r, &read_errno);
            if (kind == LINE_NONE) {
                if (read_errno != 0) {
                    rc = mandate_error_set(err, MANDATE_ERROR, "audit: %s: %s", files[f],
                                           strerror(read_errno));
                    close(r.fd);
                    goto out;
                }
                break;
            }
            vitem it;
            memset(&it, 0, sizeof(it));
            it.file = name;
            it.line = ++line_no;
            if (kind == LINE_TOO_LONG) {
                snprintf(it.what, sizeof(it.what), "not a record (a line longer than 1 MiB)");
            } else if (kind == LINE_NO_NEWLINE) {
                snprintf(it.what, sizeof(it.what),
                         "file cut short (its last line of %zu bytes has no newline)",
                         r.line_len);
            } else {
                parse_item(r.line, r.line_len, &it);
            }
            take(&v, &it);
        }
        close(r.fd);
    }
    if (v.broken && report->intact)
        name_break(&v);
    if (!v.broken)
        check_sink_end(&v);
    /* only an intact trail has a seq that rises by one to its end */
    if (report->intact)
        report->unsealed =
            v.have_checkpoint ? report->last_seq - v.last_checkpoint_seq : report->records;
out:
    free(v.sink);
    free(r.block);
    free(r.line);
    return rc;
}

/* --- for people ------------------------------------------------------------- */

/* Printable ASCII without space, quotes, backslash or '=' goes as it is;
 * anything else as a JSON string in ASCII, so that no control character
 * (or escape sequence) reaches a terminal. */
static void sb_text(mandate_strbuf *sb, const char *s)
{
    bool plain = s[0] != '\0';
    for (const char *p = s; *p != '\0' && plain; p++) {
        unsigned char c = (unsigned char)*p;
        plain = c > 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '=';
    }
    if (plain) {
        mandate_strbuf_add(sb, s);
        return;
    }
    json_t *j = json_string(s);
    char *q = j != NULL ? json_dumps(j, JSON_ENCODE_ANY | JSON_ENSURE_ASCII) : NULL;
    mandate_strbuf_add(sb, q != NULL ? q : "\"?\"");
    free(q);
    json_decref(j);
}

static void sb_value(mandate_strbuf *sb, const json_t *value)
{
    if (json_is_string(value)) {
        sb_text(sb, json_string_value(value));
        return;
    }
    char *s = json_dumps(value, JSON_ENCODE_ANY | JSON_COMPACT | JSON_ENSURE_ASCII);
    mandate_strbuf_add(sb, s != NULL ? s : "?");
    free(s);
}

static bool ts_shape(const char *ts)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd";
    for (size_t i = 0; i < sizeof(shape) - 1; i++) {
        if (shape[i] == 'd' ? ts[i] < '0' || ts[i] > '9' : ts[i] != shape[i])
            return false;
    }
    return true;
}

char *mandate_audit_format_line(const json_t *record)
{
    if (!json_is_object(record))
        return NULL;
    mandate_strbuf sb = {0};
    const json_t *ts = json_object_get(record, "ts");
    const char *tss = json_string_value(ts);
    if (tss != NULL && ts_shape(tss)) {
        mandate_strbuf_addn(&sb, tss, 10);
        mandate_strbuf_add(&sb, " ");
        mandate_strbuf_addn(&sb, tss + 11, 8);
        mandate_strbuf_add(&sb, "Z");
    } else if (tss != NULL) {
        sb_text(&sb, tss);
    } else {
        mandate_strbuf_add(&sb, "-");
    }
    const json_t *seq = json_object_get(record, "seq");
    char num[32];
    if (json_is_integer(seq))
        snprintf(num, sizeof(num), " #%" JSON_INTEGER_FORMAT, json_integer_value(seq));
    else
        snprintf(num, sizeof(num), " #?");
    mandate_strbuf_add(&sb, num);
    mandate_strbuf_add(&sb, " ");
    const char *event = json_string_value(json_object_get(record, "event"));
    sb_text(&sb, event != NULL ? event : "?");

    const char *key;
    const json_t *value;
    /* jansson keeps members in the order read */
    json_object_foreach((json_t *)record, key, value)
    {
        if (strcmp(key, "seq") == 0 || strcmp(key, "ts") == 0 || strcmp(key, "prev") == 0 ||
            strcmp(key, "event") == 0)
            continue;
        mandate_strbuf_add(&sb, " ");
        sb_text(&sb, key);
        mandate_strbuf_add(&sb, "=");
        sb_value(&sb, value);
    }
    return sb.data;
}
