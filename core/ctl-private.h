/* mandatectl's commands, one file per noun. */
#ifndef MANDATE_CTL_PRIVATE_H
#define MANDATE_CTL_PRIVATE_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "runtime-private.h"

enum { CTL_OK = 0, CTL_REFUSED = 1, CTL_USAGE = 2 };

typedef struct ctl {
    const char *config_path; /* -c, $MANDATE_CONF or the default */
    bool config_given;       /* -c or $MANDATE_CONF */
    bool json;
} ctl;

/* Load the configuration and start its plugins, as the daemon does;
 * prints every problem. NULL on failure. */
mandate_runtime *ctl_runtime(const ctl *c, unsigned flags);
/* The same for a command that changes something: it also opens the audit
 * trail, and refuses (NULL) when that cannot be done, before any change. */
mandate_runtime *ctl_runtime_for_change(const ctl *c, unsigned flags);
/* Records an admin change with who made it (fields: reference stolen).
 * On failure prints that the change was made but not recorded and returns
 * false: the command then exits 1. The records are synced before exit. */
bool ctl_audit(const char *event, json_t *fields);
/* Print JSON (and release it); returns CTL_OK. */
int ctl_print_json(json_t *value);
/* "2026-11-26T08:00:00Z", or "-" for 0. */
const char *ctl_time(int64_t t, char buf[32]);

/* Shared by client and apply (core/ctl-client.c). What an audit record says
 * of a client: its settings, never a secret. */
json_t *ctl_client_audit_fields(const mandate_client *client);
/* The client's metadata (RFC 7591 §2) with redirect_uris and grant_types
 * (NULL: kept from base) checked as every client's is; malloc'd JSON text,
 * or NULL with "mandatectl VERB: why" on stderr. */
char *ctl_client_metadata(const char *verb, const char *base, json_t *redirect_uris,
                          json_t *grant_types, const char *auth_method);
/* The secret alone in a new file (O_EXCL) of mode 0600; false said. */
bool ctl_write_secret_file(const char *path, const char *secret);

/* mTLS client authentication (RFC 8705) on client create and set
 * (core/ctl-mtls.c): --auth tls_client_auth with one of --tls-subject-dn,
 * --tls-san-dns, --tls-san-uri, --tls-san-ip, --tls-san-email; --auth
 * self_signed_tls_client_auth with --tls-cert FILE or --tls-cert-sha256;
 * --cert-bound / --no-cert-bound (tls_client_certificate_bound_access_tokens). */
typedef struct ctl_mtls {
    const char *auth, *subject_dn, *san_dns, *san_uri, *san_ip, *san_email;
    const char *cert_file, *x5t_s256;
    int bound; /* -1: unchanged */
    bool any;
} ctl_mtls;
#define CTL_MTLS_OPT_FIRST 0x4d00
#define CTL_MTLS_OPTIONS                                                                       \
    {"auth", required_argument, NULL, CTL_MTLS_OPT_FIRST},                                     \
        {"tls-subject-dn", required_argument, NULL, CTL_MTLS_OPT_FIRST + 1},                   \
        {"tls-san-dns", required_argument, NULL, CTL_MTLS_OPT_FIRST + 2},                      \
        {"tls-san-uri", required_argument, NULL, CTL_MTLS_OPT_FIRST + 3},                      \
        {"tls-san-ip", required_argument, NULL, CTL_MTLS_OPT_FIRST + 4},                       \
        {"tls-san-email", required_argument, NULL, CTL_MTLS_OPT_FIRST + 5},                    \
        {"tls-cert", required_argument, NULL, CTL_MTLS_OPT_FIRST + 6},                         \
        {"tls-cert-sha256", required_argument, NULL, CTL_MTLS_OPT_FIRST + 7},                  \
        {"cert-bound", no_argument, NULL, CTL_MTLS_OPT_FIRST + 8},                             \
        {"no-cert-bound", no_argument, NULL, CTL_MTLS_OPT_FIRST + 9}
#define CTL_MTLS_INIT {.bound = -1}
/* Whether opt is one of CTL_MTLS_OPTIONS (then taken into m). */
bool ctl_mtls_option(ctl_mtls *m, int opt, const char *arg);
/* The client attributes (base: a JSON object's text, may be NULL) with the
 * registration of m, checked; malloc'd, or NULL with why on stderr. */
char *ctl_mtls_attributes(const ctl_mtls *m, const char *base);
/* client set ID with mTLS options: the client's attributes changed,
 * audited. */
int ctl_mtls_set(ctl *c, mandate_runtime *rt, const char *id, const ctl_mtls *m);

/* A long option of a command and where it lands: value (the option takes
 * one; the last given counts, or with once set a second one is refused
 * with that message; with kind set, *kind becomes kind_value too, for two
 * options into one value), flag (it takes none: set true) or words
 * (repeatable: each value appended, as ctl_add_word does). */
typedef struct ctl_option {
    const char *name;
    const char **value;
    bool *flag;
    char **words;
    const char *once;
    const char **kind;
    const char *kind_value;
} ctl_option;
/* One option each (kept on a line each: clang-format would give each
 * macro four) */
/* clang-format off */
#define CTL_VALUE(name_, value_) {.name = (name_), .value = (value_)}
#define CTL_VALUE_KIND(name_, value_, kind_, kind_value_)                                      \
    {.name = (name_), .value = (value_), .kind = (kind_), .kind_value = (kind_value_)}
#define CTL_FLAG(name_, flag_) {.name = (name_), .flag = (flag_)}
#define CTL_WORDS(name_, words_) {.name = (name_), .words = (words_)}
/* clang-format on */
#define CTL_OPTIONS_MAX 16
/* Reads argv's options (argv[0] is the command or verb; opts ends with a
 * NULL name) with getopt_long, its messages included; false after an
 * unknown option or a missing value. optind is then the first operand. */
bool ctl_options(int argc, char **argv, const ctl_option *opts);
/* After ctl_options: whether exactly `operands` operands follow the
 * options and the command is complete (the caller's check that its
 * required options came); if not, usage goes to stderr. */
bool ctl_operands(int argc, int operands, bool complete, const char *usage);

/* A noun's verb (mandatectl token get): its name, and what runs it with
 * argv[0] the verb. */
typedef struct ctl_verb {
    const char *name;
    int (*run)(const ctl *c, int argc, char **argv);
} ctl_verb;
/* Runs the verb of verbs (ended by a NULL name) that argv[1] names, else
 * prints usage and returns CTL_USAGE. */
int ctl_run_verb(const ctl *c, int argc, char **argv, const ctl_verb *verbs, const char *usage);

int ctl_cmd_apply(ctl *c, int argc, char **argv);
int ctl_cmd_client(ctl *c, int argc, char **argv);
int ctl_cmd_keys(ctl *c, int argc, char **argv);
int ctl_cmd_token(ctl *c, int argc, char **argv);
int ctl_cmd_audit(ctl *c, int argc, char **argv);
int ctl_cmd_migrate(ctl *c, int argc, char **argv);
int ctl_cmd_mapping(ctl *c, int argc, char **argv);
int ctl_cmd_user(ctl *c, int argc, char **argv);
int ctl_cmd_saml(ctl *c, int argc, char **argv);
int ctl_cmd_delegation(ctl *c, int argc, char **argv);

/* The audit trail's files in order (dir_opt, else audit.dir of the
 * configuration), NULL-terminated; NULL (said) on failure. Freed by
 * ctl_audit_free_list. */
char **ctl_audit_trail_files(const ctl *c, const char *dir_opt);
void ctl_audit_free_list(char **files);
/* mandatectl audit trace (ctl-audit-trace.c); argv[0] is "trace". */
int ctl_audit_trace(const ctl *c, int argc, char **argv);

/* Appends word to the space-separated, malloc'd *list (NULL: empty), for
 * a repeatable option. */
void ctl_add_word(char **list, const char *word);

/* The file at path (at most max bytes) as NUL-terminated text, malloc'd,
 * its length in *len (may be NULL); NULL with "who: why" on stderr. */
char *ctl_read_file(const char *who, const char *path, size_t max, size_t *len);

/* A token from a file, or standard input for "-" (tokens are secrets too,
 * so never from argv), trimmed; malloc'd. NULL: said on stderr. */
char *ctl_read_token(const char *file);

#endif
