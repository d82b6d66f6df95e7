/* mandatectl user: what the broker keeps of a person who signed in (issue
 * 22): their consents, and the end of everything their sign-ins hold.
 *
 *   mandatectl user revoke [--tenant T] SUBJECT
 *       ends every browser session and every refresh token family of the
 *       user (the refresh tokens stop at once; access tokens already out
 *       live to their expiry, minutes, unless revoked by jti)
 *   mandatectl user consents [--tenant T] SUBJECT
 *   mandatectl user forget-consent [--tenant T] SUBJECT CLIENT_ID */
#include "config.h"

#include <getopt.h>
#include <string.h>

#include "ctl-private.h"
#include "plugins-private.h"
#include "pool-private.h"
#include "signin-private.h"

static int usage(void)
{
    fprintf(stderr,
            "Usage: mandatectl user revoke [--tenant T] SUBJECT\n"
            "       mandatectl user consents [--tenant T] SUBJECT\n"
            "       mandatectl user forget-consent [--tenant T] SUBJECT CLIENT_ID\n");
    return CTL_USAGE;
}

/* --tenant T, then the positional words; tenant defaults to "default" */
static bool parse(int argc, char **argv, size_t want, const char **tenant_r,
                  const char **words_r)
{
    *tenant_r = "default";
    const ctl_option opts[] = {CTL_VALUE("tenant", tenant_r), {0}};
    if (!ctl_options(argc, argv, opts))
        return false;
    if ((size_t)(argc - optind) != want)
        return false;
    for (size_t i = 0; i < want; i++)
        words_r[i] = argv[optind + (int)i];
    return true;
}

typedef struct consent_list {
    ctl *c;
    json_t *array;
} consent_list;

static mandate_rc print_consent(void *ctx, const mandate_consent *k)
{
    consent_list *l = ctx;
    char t1[32], t2[32];
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s}", "client_id", k->client_id, "scope",
                          k->scope ? k->scope : "", "resources",
                          k->resources ? k->resources : "", "created",
                          ctl_time(k->created_at, t1), "expires",
                          k->expires_at ? ctl_time(k->expires_at, t2) : "never");
    if (l->c->json) {
        json_array_append_new(l->array, o);
    } else {
        printf("%-40s %-24s %-20s %s\n", k->client_id, k->scope ? k->scope : "",
               ctl_time(k->created_at, t1), k->expires_at ? ctl_time(k->expires_at, t2) : "never");
        json_decref(o);
    }
    return MANDATE_OK;
}

int ctl_cmd_user(ctl *c, int argc, char **argv)
{
    if (argc < 2)
        return usage();
    const char *verb = argv[1], *tenant, *words[2] = {NULL, NULL};
    bool change = strcmp(verb, "revoke") == 0 || strcmp(verb, "forget-consent") == 0;
    size_t want = strcmp(verb, "forget-consent") == 0 ? 2 : 1;
    if ((!change && strcmp(verb, "consents") != 0) ||
        !parse(argc - 1, argv + 1, want, &tenant, words))
        return usage();
    mandate_runtime *rt = change ? ctl_runtime_for_change(c, 0) : ctl_runtime(c, 0);
    if (rt == NULL)
        return CTL_REFUSED;
    const mandate_instance *store = mandate_runtime_store(rt);
    mandate_error err = {0};
    int status = CTL_OK;
    if (!mandate_store_signs_in(store)) {
        fprintf(stderr, "mandatectl user: the store keeps no sign-ins (before store ABI 1.5)\n");
        status = CTL_REFUSED;
    } else if (strcmp(verb, "revoke") == 0) {
        uint64_t families = 0, tokens = 0, sessions = 0;
        mandate_pool *pool = mandate_pool_new();
        mandate_rc rc = pool != NULL ? mandate_signin_end_user(store, pool, tenant, words[0],
                                                               &families, &tokens, &sessions,
                                                               &err)
                                     : mandate_error_set(&err, MANDATE_ERROR, "out of memory");
        mandate_pool_free(&pool);
        if (rc != MANDATE_OK) {
            fprintf(stderr, "mandatectl user revoke: %s\n", err.message);
            status = CTL_REFUSED;
        } else {
            if (!ctl_audit("user.revoked",
                           json_pack("{s:s,s:s,s:I,s:I,s:I}", "tenant", tenant, "sub",
                                     words[0], "refresh_tokens", (json_int_t)families,
                                     "revocations", (json_int_t)tokens, "sessions",
                                     (json_int_t)sessions)))
                status = CTL_REFUSED;
            if (c->json)
                ctl_print_json(json_pack("{s:s,s:s,s:I,s:I,s:I}", "tenant", tenant,
                                         "subject", words[0], "refresh_tokens_revoked",
                                         (json_int_t)families, "revocations_recorded",
                                         (json_int_t)tokens, "sessions_ended",
                                         (json_int_t)sessions));
            else
                printf("%s (tenant %s): %llu refresh tokens revoked, %llu revocations "
                       "recorded (access tokens and their sign-ins), %llu sessions ended\n",
                       words[0], tenant, (unsigned long long)families,
                       (unsigned long long)tokens, (unsigned long long)sessions);
        }
    } else if (strcmp(verb, "forget-consent") == 0) {
        mandate_rc rc = mandate_store_consent_delete(store, tenant, words[0], words[1], &err);
        if (rc != MANDATE_OK) {
            fprintf(stderr, "mandatectl user forget-consent: %s\n",
                    rc == MANDATE_NOT_FOUND ? "no such consent" : err.message);
            status = CTL_REFUSED;
        } else if (!ctl_audit("consent.revoked", json_pack("{s:s,s:s,s:s}", "tenant", tenant,
                                                            "sub", words[0], "client_id",
                                                            words[1]))) {
            status = CTL_REFUSED;
        }
    } else {
        consent_list l = {c, json_array()};
        if (!c->json)
            printf("%-40s %-24s %-20s %s\n", "CLIENT", "SCOPE", "GIVEN", "EXPIRES");
        if (mandate_store_consent_list(store, tenant, words[0], print_consent, &l, &err) !=
            MANDATE_OK) {
            fprintf(stderr, "mandatectl user consents: %s\n", err.message);
            status = CTL_REFUSED;
        } else if (c->json) {
            ctl_print_json(json_incref(l.array));
        }
        json_decref(l.array);
    }
    mandate_runtime_unref(&rt);
    return status;
}
