/* mandatectl audit verify | tail: check the audit trail's hash chain, and
 * read it. Neither needs the plugins: only the configuration, for the
 * trail's folder, when no file is named. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit-private.h"
#include "config-private.h"
#include "ctl-private.h"
#include "util-private.h"

#define TAIL_LINE_MAX (1024 * 1024)
#define FOLLOW_POLL_US 200000

/* The trail's folder from the configuration; NULL (said) when it cannot be
 * read. */
static char *configured_dir(const ctl *c)
{
    mandate_diag diag = {0};
    mandate_config *cfg = NULL;
    char *dir = NULL;
    if (mandate_config_load(c->config_path, &cfg, &diag))
        dir = mandate_xstrdup(cfg->audit_dir);
    for (size_t i = 0; i < diag.count; i++)
        fprintf(stderr, "mandatectl: %s\n", diag.lines[i]);
    mandate_diag_free(&diag);
    mandate_config_free(&cfg);
    return dir;
}

static void free_list(char **files)
{
    for (size_t i = 0; files != NULL && files[i] != NULL; i++)
        free(files[i]);
    free(files);
}

static char **trail_files(const ctl *c, const char *dir_opt)
{
    char *dir = dir_opt ? mandate_xstrdup(dir_opt) : configured_dir(c);
    if (dir == NULL)
        return NULL;
    char **files = NULL;
    mandate_error err = {0};
    if (mandate_audit_list_files(dir, &files, &err) != MANDATE_OK) {
        fprintf(stderr, "mandatectl audit: %s: %s\n", dir, err.message);
        files = NULL;
    }
    free(dir);
    return files;
}

static int audit_verify(const ctl *c, int argc, char **argv)
{
    static const struct option opts[] = {{"dir", required_argument, NULL, 'd'},
                                         {NULL, 0, NULL, 0}};
    const char *dir = NULL;
    int opt;
    optind = 0;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (opt != 'd')
            return CTL_USAGE;
        dir = optarg;
    }
    char **listed = NULL;
    const char *const *files;
    size_t n;
    if (optind < argc) {
        if (dir != NULL) {
            fprintf(stderr, "Usage: mandatectl audit verify [FILE... | --dir DIR]\n");
            return CTL_USAGE;
        }
        files = (const char *const *)(argv + optind);
        n = (size_t)(argc - optind);
    } else {
        listed = trail_files(c, dir);
        if (listed == NULL)
            return CTL_REFUSED;
        for (n = 0; listed[n] != NULL; n++)
            ;
        files = (const char *const *)listed;
    }
    mandate_audit_report report;
    mandate_error err = {0};
    int status = CTL_REFUSED;
    if (mandate_audit_verify(files, n, NULL, &report, &err) != MANDATE_OK) {
        fprintf(stderr, "mandatectl audit verify: %s\n", err.message);
    } else if (c->json) {
        json_t *o = json_pack("{s:b,s:I,s:I,s:I,s:s}", "intact", report.intact, "records",
                              (json_int_t)report.records, "first_seq",
                              (json_int_t)report.first_seq, "last_seq",
                              (json_int_t)report.last_seq, "last_hash", report.last_hash);
        if (!report.intact)
            json_object_set_new(o, "problem", json_string(report.problem));
        ctl_print_json(o);
        status = report.intact ? CTL_OK : CTL_REFUSED;
    } else if (report.intact) {
        printf("intact: %llu records in %zu file%s, seq %llu to %llu; last hash %s\n",
               (unsigned long long)report.records, n, n == 1 ? "" : "s",
               (unsigned long long)report.first_seq, (unsigned long long)report.last_seq,
               report.last_hash);
        status = CTL_OK;
    } else {
        printf("NOT intact: %s\n", report.problem);
    }
    free_list(listed);
    return status;
}

typedef struct tail_filter {
    const char *client_id;
    const char *event;
} tail_filter;

static bool matches(const json_t *record, const tail_filter *f)
{
    if (f->event != NULL) {
        const char *e = json_string_value(json_object_get(record, "event"));
        size_t n = strlen(f->event);
        /* "token" matches token.issued, token.refused, ... */
        if (e == NULL || strncmp(e, f->event, n) != 0 || (e[n] != '\0' && e[n] != '.'))
            return false;
    }
    if (f->client_id != NULL) {
        const char *id = json_string_value(json_object_get(record, "client_id"));
        const char *by = json_string_value(json_object_get(record, "by"));
        if ((id == NULL || strcmp(id, f->client_id) != 0) &&
            (by == NULL || strcmp(by, f->client_id) != 0))
            return false;
    }
    return true;
}

static void print_record(const ctl *c, const char *line, size_t len, const tail_filter *f)
{
    json_t *record = json_loadb(line, len, 0, NULL);
    if (record == NULL) {
        printf("(not a record: %.*s)\n", (int)(len > 80 ? 80 : len), line);
    } else if (matches(record, f)) {
        if (c->json) {
            printf("%.*s\n", (int)len, line);
        } else {
            char *text = mandate_audit_format_line(record);
            puts(text);
            free(text);
        }
    }
    json_decref(record);
}

/* Prints the records of file from offset on; returns the offset after the
 * last whole line. */
static long print_from(const ctl *c, FILE *fp, long offset, size_t last_n, const tail_filter *f)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    if (fseek(fp, offset, SEEK_SET) != 0)
        return offset;
    /* last_n: print only the last N matching records of what is there */
    char **ring = last_n ? mandate_xcalloc(last_n, sizeof(char *)) : NULL;
    size_t count = 0;
    while ((len = getline(&line, &cap, fp)) > 0) {
        if (line[len - 1] != '\n')
            break; /* being written: read it next time */
        offset += len;
        if (len > TAIL_LINE_MAX)
            continue;
        if (ring == NULL) {
            print_record(c, line, (size_t)len - 1, f);
            continue;
        }
        json_t *record = json_loadb(line, (size_t)len - 1, 0, NULL);
        bool keep = record == NULL || matches(record, f);
        json_decref(record);
        if (keep) {
            free(ring[count % last_n]);
            ring[count % last_n] = mandate_xstrdup(line);
            count++;
        }
    }
    for (size_t i = count > last_n ? count - last_n : 0; ring != NULL && i < count; i++) {
        char *l = ring[i % last_n];
        print_record(c, l, strlen(l) - 1, f);
    }
    for (size_t i = 0; ring != NULL && i < last_n; i++)
        free(ring[i]);
    free(ring);
    free(line);
    fflush(stdout);
    return offset;
}

static int audit_tail(const ctl *c, int argc, char **argv)
{
    static const struct option opts[] = {{"follow", no_argument, NULL, 'f'},
                                         {"client", required_argument, NULL, 'c'},
                                         {"event", required_argument, NULL, 'e'},
                                         {"lines", required_argument, NULL, 'n'},
                                         {"dir", required_argument, NULL, 'd'},
                                         {NULL, 0, NULL, 0}};
    tail_filter filter = {0};
    bool follow = false;
    const char *dir = NULL;
    long lines = 20;
    int opt;
    optind = 0;
    while ((opt = getopt_long(argc, argv, "fn:", opts, NULL)) != -1) {
        switch (opt) {
        case 'f': follow = true; break;
        case 'c': filter.client_id = optarg; break;
        case 'e': filter.event = optarg; break;
        case 'd': dir = optarg; break;
        case 'n': {
            char *end;
            errno = 0;
            lines = strtol(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || lines < 1 || lines > 1000000) {
                fprintf(stderr, "mandatectl audit tail: -n takes 1 to 1000000\n");
                return CTL_USAGE;
            }
            break;
        }
        default: return CTL_USAGE;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "Usage: mandatectl audit tail [-f] [-n N] [--client ID] [--event TYPE] "
                        "[--dir DIR]\n");
        return CTL_USAGE;
    }
    char **files = trail_files(c, dir);
    if (files == NULL)
        return CTL_REFUSED;
    size_t n = 0;
    while (files[n] != NULL)
        n++;
    if (n == 0 && !follow) {
        free_list(files);
        return CTL_OK;
    }
    char *current = n > 0 ? mandate_xstrdup(files[n - 1]) : NULL;
    free_list(files);
    long offset = 0;
    bool first = true;
    int status = CTL_OK;
    for (;;) {
        if (current != NULL) {
            FILE *fp = fopen(current, "r");
            if (fp == NULL) {
                fprintf(stderr, "mandatectl audit tail: %s: %s\n", current, strerror(errno));
                status = CTL_REFUSED;
                break;
            }
            offset = print_from(c, fp, offset, first ? (size_t)lines : 0, &filter);
            fclose(fp);
            first = false;
        }
        if (!follow)
            break;
        usleep(FOLLOW_POLL_US);
        /* a rotation: go on in the newest file, from its start */
        files = trail_files(c, dir);
        if (files == NULL) {
            status = CTL_REFUSED;
            break;
        }
        for (n = 0; files[n] != NULL; n++)
            ;
        if (n > 0 && (current == NULL || strcmp(files[n - 1], current) != 0)) {
            if (current != NULL) {
                /* what was left in the old file first */
                FILE *fp = fopen(current, "r");
                if (fp != NULL) {
                    print_from(c, fp, offset, 0, &filter);
                    fclose(fp);
                }
            }
            free(current);
            current = mandate_xstrdup(files[n - 1]);
            offset = 0;
        }
        free_list(files);
    }
    free(current);
    return status;
}

int ctl_cmd_audit(ctl *c, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "verify") == 0)
        return audit_verify(c, argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "tail") == 0)
        return audit_tail(c, argc - 1, argv + 1);
    fprintf(stderr, "Usage: mandatectl audit verify [FILE... | --dir DIR] | audit tail [-f] "
                    "[-n N] [--client ID] [--event TYPE] [--dir DIR]\n");
    return CTL_USAGE;
}
