/* mandatectl audit verify | checkpoint | key | tail: check the audit
 * trail's hash chain and seals, seal it now, print the key that verifies
 * the seals, and read it. None needs the plugins: only the configuration,
 * for the trail's folder when no file is named, and the KEK for the seal
 * key. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit-events-private.h"
#include "audit-private.h"
#include "config-private.h"
#include "ctl-private.h"
#include "jose.h"
#include "util-private.h"

#define TAIL_LINE_MAX (1024 * 1024)
#define FOLLOW_POLL_US 200000

/* The configuration; NULL when it cannot be read (said when say). */
static mandate_config *ctl_audit_config(const ctl *c, bool say)
{
    mandate_diag diag = {0};
    mandate_config *cfg = NULL;
    if (!mandate_config_load(c->config_path, &cfg, &diag))
        cfg = NULL;
    for (size_t i = 0; say && i < diag.count; i++)
        fprintf(stderr, "mandatectl: %s\n", diag.lines[i]);
    mandate_diag_free(&diag);
    return cfg;
}

/* The trail's folder from the configuration; NULL (said) when it cannot be
 * read. */
static char *configured_dir(const ctl *c)
{
    mandate_config *cfg = ctl_audit_config(c, true);
    char *dir = cfg != NULL ? mandate_xstrdup(cfg->audit_dir) : NULL;
    mandate_config_free(&cfg);
    return dir;
}

void ctl_audit_free_list(char **files)
{
    for (size_t i = 0; files != NULL && files[i] != NULL; i++)
        free(files[i]);
    free(files);
}

/* The files of the trail in dir, in order; NULL (said) on failure. */
static char **list_trail(const char *dir)
{
    char **files = NULL;
    mandate_error err = {0};
    if (mandate_audit_list_files(dir, &files, &err) != MANDATE_OK) {
        fprintf(stderr, "mandatectl audit: %s: %s\n", dir, err.message);
        files = NULL;
    }
    return files;
}

char **ctl_audit_trail_files(const ctl *c, const char *dir_opt)
{
    char *dir = dir_opt ? mandate_xstrdup(dir_opt) : configured_dir(c);
    if (dir == NULL)
        return NULL;
    char **files = list_trail(dir);
    free(dir);
    return files;
}

/* The keys verify checks the seals with: --key files, else audit.verify_key
 * of the configuration, else the key derived from the configuration's KEK
 * (when it can be read: root or the daemon's user on the broker's machine).
 * *source_r says which, for the report. NULL with no key: the seals'
 * signatures are then not checked. */
static mandate_audit_keys *verify_keys(const mandate_config *cfg, char **key_files,
                                       size_t n_key_files, const char **source_r,
                                       bool *failed_r)
{
    mandate_audit_keys *keys = mandate_audit_keys_new();
    mandate_error err = {0};
    *failed_r = false;
    *source_r = NULL;
    for (size_t i = 0; i < n_key_files; i++) {
        if (mandate_audit_keys_add_pem_file(keys, key_files[i], &err) != MANDATE_OK) {
            fprintf(stderr, "mandatectl audit verify: %s\n", err.message);
            *failed_r = true;
            mandate_audit_keys_free(&keys);
            return NULL;
        }
        *source_r = "--key";
    }
    if (n_key_files == 0 && cfg != NULL && cfg->audit_verify_key != NULL) {
        if (mandate_audit_keys_add_pem_file(keys, cfg->audit_verify_key, &err) != MANDATE_OK) {
            fprintf(stderr, "mandatectl audit verify: audit.verify_key: %s\n", err.message);
            *failed_r = true;
            mandate_audit_keys_free(&keys);
            return NULL;
        }
        *source_r = "audit.verify_key";
    } else if (n_key_files == 0 && cfg != NULL && cfg->audit_seal) {
        EVP_PKEY *key = NULL;
        if (mandate_audit_seal_key_load(cfg->kek_file, &key, &err) == MANDATE_OK &&
            mandate_audit_keys_add(keys, key, &err) == MANDATE_OK)
            *source_r = "the key-encryption key";
        EVP_PKEY_free(key);
    }
    if (mandate_audit_keys_count(keys) == 0)
        mandate_audit_keys_free(&keys);
    return keys;
}

/* The configuration's checkpoints file, when it is a file that can be read
 * again (a FIFO cannot). */
static const char *configured_checkpoints(const mandate_config *cfg)
{
    struct stat st;
    if (cfg == NULL || cfg->audit_checkpoint_file == NULL ||
        stat(cfg->audit_checkpoint_file, &st) != 0 || !S_ISREG(st.st_mode))
        return NULL;
    return cfg->audit_checkpoint_file;
}

static json_t *verify_json(const mandate_audit_report *r, const char *key_source,
                           const char *checkpoints)
{
    json_t *o = json_pack("{s:b,s:I,s:I,s:I,s:s}", "intact", r->intact, "records",
                          (json_int_t)r->records, "first_seq", (json_int_t)r->first_seq,
                          "last_seq", (json_int_t)r->last_seq, "last_hash", r->last_hash);
    if (!r->intact)
        json_object_set_new(o, "problem", json_string(r->problem));
    json_t *seals = json_pack("{s:b,s:I,s:I}", "checked", r->seals_checked, "checkpoints",
                              (json_int_t)r->checkpoints, "unsealed", (json_int_t)r->unsealed);
    if (key_source != NULL)
        json_object_set_new(seals, "key_from", json_string(key_source));
    if (r->checkpoints > 0) {
        json_object_set_new(seals, "sealed_seq", json_integer((json_int_t)r->sealed_seq));
        json_object_set_new(seals, "sealed_ts", json_string(r->sealed_ts));
        json_object_set_new(seals, "key", json_string(r->sealed_key));
        json_object_set_new(seals, "why", json_string(r->sealed_why));
    }
    json_object_set_new(o, "seals", seals);
    if (checkpoints != NULL)
        json_object_set_new(o, "checkpoints_file",
                            json_pack("{s:s,s:I,s:I}", "file", checkpoints, "checkpoints",
                                      (json_int_t)r->sink_checkpoints, "last_seq",
                                      (json_int_t)r->sink_last_seq));
    return o;
}

static void verify_text(const mandate_audit_report *r, size_t n_files, const char *key_source,
                        const char *checkpoints)
{
    if (!r->intact) {
        printf("NOT intact: %s\n", r->problem);
        return;
    }
    printf("intact: %llu records in %zu file%s, seq %llu to %llu; last hash %s\n",
           (unsigned long long)r->records, n_files, n_files == 1 ? "" : "s",
           (unsigned long long)r->first_seq, (unsigned long long)r->last_seq, r->last_hash);
    if (r->checkpoints > 0)
        printf("sealed: %llu checkpoint%s%s; the last seals seq %llu (%s, %s), key %s\n",
               (unsigned long long)r->checkpoints, r->checkpoints == 1 ? "" : "s",
               r->seals_checked ? ", every signature good" : "",
               (unsigned long long)r->sealed_seq, r->sealed_ts, r->sealed_why, r->sealed_key);
    else if (r->records > 0)
        printf("sealed: no checkpoint in the trail\n");
    if (r->unsealed > 0)
        printf("not sealed: the last %llu record%s (seq %llu to %llu, up to %s)\n",
               (unsigned long long)r->unsealed, r->unsealed == 1 ? "" : "s",
               (unsigned long long)(r->last_seq - r->unsealed + 1),
               (unsigned long long)r->last_seq, r->last_ts);
    if (!r->seals_checked)
        printf("seals not checked: no key (--key FILE, the public key mandatectl audit key "
               "prints)\n");
    else
        printf("seals checked with the key from %s\n", key_source);
    if (checkpoints != NULL)
        printf("checkpoints: %llu in %s, all matching the trail; the last seals seq %llu\n",
               (unsigned long long)r->sink_checkpoints, checkpoints,
               (unsigned long long)r->sink_last_seq);
    else
        printf("checkpoints: no file of them given (--checkpoints FILE, from the second "
               "sink): records cut from the end cannot be told\n");
}

static int audit_verify(const ctl *c, int argc, char **argv)
{
    static const struct option opts[] = {{"dir", required_argument, NULL, 'd'},
                                         {"key", required_argument, NULL, 'k'},
                                         {"checkpoints", required_argument, NULL, 'p'},
                                         {NULL, 0, NULL, 0}};
    static const char usage[] = "Usage: mandatectl audit verify [FILE... | --dir DIR] "
                                "[--key FILE]... [--checkpoints FILE]\n";
    const char *dir = NULL, *checkpoints = NULL;
    char **key_files = mandate_xcalloc((size_t)argc + 1, sizeof(char *));
    size_t n_key_files = 0;
    int opt, status = CTL_USAGE;
    optind = 0;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'd': dir = optarg; break;
        case 'k': key_files[n_key_files++] = optarg; break;
        case 'p': checkpoints = optarg; break;
        default: free(key_files); return CTL_USAGE;
        }
    }
    bool named = optind < argc;
    if (named && dir != NULL) {
        fprintf(stderr, "%s", usage);
        free(key_files);
        return CTL_USAGE;
    }
    /* The configuration names the trail, the key and the checkpoints
     * file, unless files are named: an auditor elsewhere has none. */
    mandate_config *cfg = named && !c->config_given ? NULL : ctl_audit_config(c, !named);
    char **listed = NULL;
    const char *const *files;
    size_t n;
    status = CTL_REFUSED;
    if (named) {
        files = (const char *const *)(argv + optind);
        n = (size_t)(argc - optind);
    } else {
        if (dir == NULL && cfg == NULL)
            goto out;
        listed = list_trail(dir != NULL ? dir : cfg->audit_dir);
        if (listed == NULL)
            goto out;
        for (n = 0; listed[n] != NULL; n++)
            ;
        files = (const char *const *)listed;
    }
    const char *key_source;
    bool key_failed;
    mandate_audit_keys *keys =
        verify_keys(cfg, key_files, n_key_files, &key_source, &key_failed);
    if (key_failed)
        goto out;
    if (checkpoints == NULL && !named && dir == NULL)
        checkpoints = configured_checkpoints(cfg);
    mandate_audit_verify_opts vopts = {.keys = keys, .checkpoints = checkpoints};
    mandate_audit_report report;
    mandate_error err = {0};
    if (mandate_audit_verify(files, n, &vopts, &report, &err) != MANDATE_OK) {
        fprintf(stderr, "mandatectl audit verify: %s\n", err.message);
    } else {
        if (c->json)
            ctl_print_json(verify_json(&report, key_source, checkpoints));
        else
            verify_text(&report, n, key_source, checkpoints);
        status = report.intact ? CTL_OK : CTL_REFUSED;
    }
    mandate_audit_keys_free(&keys);
out:
    ctl_audit_free_list(listed);
    mandate_config_free(&cfg);
    free(key_files);
    return status;
}

/* The configuration for `audit NAME`, which takes no argument; NULL with
 * *status_r the exit status when there is none to go on with, else
 * *status_r is CTL_REFUSED until the command succeeds. */
static mandate_config *config_for(const ctl *c, int argc, const char *name, int *status_r)
{
    if (argc != 1) {
        fprintf(stderr, "Usage: mandatectl audit %s\n", name);
        *status_r = CTL_USAGE;
        return NULL;
    }
    *status_r = CTL_REFUSED;
    return ctl_audit_config(c, true);
}

/* mandatectl audit checkpoint: seals the head now, as the daemon does on
 * time; or, when the last record is a checkpoint already, shows it. Any
 * writer may: the trail takes several (audit-private.h), so it works
 * whether or not the daemon runs. It needs the KEK, as the daemon. */
static int audit_checkpoint(const ctl *c, int argc, char **argv)
{
    (void)argv;
    int status;
    mandate_config *cfg = config_for(c, argc, "checkpoint", &status);
    if (cfg == NULL)
        return status;
    mandate_error err = {0};
    char *line = NULL;
    if (!cfg->audit_seal) {
        fprintf(stderr, "mandatectl audit checkpoint: audit.seal is off: the trail is not "
                        "sealed\n");
    } else if (mandate_audit_events_start(cfg, &err) != MANDATE_OK ||
               mandate_audit_events_seal(&line, &err) != MANDATE_OK) {
        fprintf(stderr, "mandatectl audit checkpoint: %s\n", err.message);
    } else {
        json_t *obj = json_loads(line, JSON_REJECT_DUPLICATES, NULL);
        mandate_audit_checkpoint cp;
        char why[128];
        if (obj == NULL || !mandate_audit_checkpoint_parse(obj, &cp, why, sizeof(why))) {
            fprintf(stderr, "mandatectl audit checkpoint: cannot read the checkpoint\n");
        } else if (c->json) {
            ctl_print_json(json_incref(obj));
            status = CTL_OK;
        } else {
            printf("sealed: record seq %llu, hash %s, %s, %s, key %s\n%s\n",
                   (unsigned long long)cp.seq, cp.hash, cp.ts, cp.file, cp.key, line);
            status = CTL_OK;
        }
        json_decref(obj);
    }
    free(line);
    mandate_audit_events_stop(); /* sends the checkpoint to the second sink */
    mandate_config_free(&cfg);
    return status;
}

/* mandatectl audit key: the public key an auditor verifies the seals with,
 * as PEM. It needs the KEK; the key it prints holds no secret. */
static int audit_key(const ctl *c, int argc, char **argv)
{
    (void)argv;
    int status;
    mandate_config *cfg = config_for(c, argc, "key", &status);
    if (cfg == NULL)
        return status;
    mandate_error err = {0};
    EVP_PKEY *key = NULL;
    char kid[MANDATE_AUDIT_KID_LEN + 1];
    char *pem = NULL;
    if (mandate_audit_seal_key_load(cfg->kek_file, &key, &err) != MANDATE_OK) {
        fprintf(stderr, "mandatectl audit key: %s\n", err.message);
    } else if (!mandate_audit_seal_key_id(key, kid) ||
               (pem = mandate_audit_seal_public_pem(key)) == NULL) {
        fprintf(stderr, "mandatectl audit key: cannot export the public key\n");
    } else if (c->json) {
        ctl_print_json(json_pack("{s:s,s:s,s:o*}", "key_id", kid, "public_key", pem, "jwk",
                                 mandate_jwk_from_key(key, kid)));
        status = CTL_OK;
    } else {
        fputs(pem, stdout);
        status = CTL_OK;
    }
    free(pem);
    EVP_PKEY_free(key);
    mandate_config_free(&cfg);
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
    char **files = ctl_audit_trail_files(c, dir);
    if (files == NULL)
        return CTL_REFUSED;
    size_t n = 0;
    while (files[n] != NULL)
        n++;
    if (n == 0 && !follow) {
        ctl_audit_free_list(files);
        return CTL_OK;
    }
    char *current = n > 0 ? mandate_xstrdup(files[n - 1]) : NULL;
    ctl_audit_free_list(files);
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
        files = ctl_audit_trail_files(c, dir);
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
        ctl_audit_free_list(files);
    }
    free(current);
    return status;
}

int ctl_cmd_audit(ctl *c, int argc, char **argv)
{
    static const ctl_verb verbs[] = {{"verify", audit_verify},         {"tail", audit_tail},
                                     {"checkpoint", audit_checkpoint}, {"key", audit_key},
                                     {"trace", ctl_audit_trace},       {0}};
    return ctl_run_verb(c, argc, argv, verbs,
                        "Usage: mandatectl audit verify [FILE... | --dir DIR] [--key FILE]... "
                        "[--checkpoints FILE] | audit checkpoint | audit key | audit tail [-f] "
                        "[-n N] [--client ID] [--event TYPE] [--dir DIR] | audit trace JTI "
                        "[--dot] [--dir DIR]\n");
}
