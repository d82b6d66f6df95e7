/* libFuzzer harness: mandatectl apply's document and plan
 * (core/apply-doc.c). Nothing is stored: the plan is made against a second
 * document standing for what is there.
 *
 * Input: up to three parts split at FUZZ_SEP ("\n\f\n"):
 *   0  the document: JSON, or libconfig (control bit 0), as apply reads it
 *   1  "what is there": a document of the same form whose clients and
 *      targets stand for the store's and the targets file's (its clients
 *      are marked registered when control bit 2 is set)
 *   2  control byte 0 (absent: 0): bit 0 libconfig, bit 1 --prune
 *
 * Invariants (abort):
 *   - a document accepted: every client has a valid, distinct id, an auth
 *     of the three, default scopes among its scopes, a public key file
 *     exactly when it uses private_key_jwt; every list at most
 *     MANDATE_APPLY_MAX_LIST words without a space; every target a
 *     distinct name, paths and an audience;
 *   - a document refused: at least one line said, at most
 *     MANDATE_APPLY_MAX_ERRORS and the "more" line;
 *   - the plan of a document against itself is empty (apply is
 *     idempotent), with nothing left alone;
 *   - a plan against part 1: one create per client or target not there,
 *     no disable without --prune, never one of a registered client, a
 *     target removed only when the document has targets, and every update
 *     says at least one field.
 * Bounds: 64 KiB in all. */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "apply-doc-private.h"
#include "fuzz-common.h"
#include "log-private.h"
#include "word-list.h"

#define HARNESS_MAX_INPUT (64 * 1024)

FUZZ_SUPPRESS_LIBCONFIG_LEAK

static json_t *parse(const fuzz_part *part, bool libconfig)
{
    char *text = malloc(part->len + 1);
    memcpy(text, part->data, part->len);
    text[part->len] = '\0';
    json_t *root = NULL;
    if (!libconfig) {
        root = json_loadb(text, part->len, JSON_REJECT_DUPLICATES, NULL);
    } else if (strstr(text, "@include") == NULL) { /* apply refuses it before libconfig */
        config_t cfg;
        config_init(&cfg);
        if (config_read_string(&cfg, text) == CONFIG_TRUE)
            root = mandate_apply_json_from_setting(config_root_setting(&cfg), 0);
        config_destroy(&cfg);
    }
    free(text);
    return root;
}

static void check_list(const char *list)
{
    if (list == NULL)
        return;
    if (list[0] == '\0' || mandate_word_list_count(list) > MANDATE_APPLY_MAX_LIST)
        abort();
    const char *cur = list, *w;
    size_t n, total = 0;
    while (mandate_word_list_next(&cur, &w, &n))
        total += n + 1;
    if (total != strlen(list) + 1) /* single spaces between words, none at the ends */
        abort();
}

static void check_accepted(const mandate_apply_doc *doc)
{
    for (size_t i = 0; i < doc->client_count; i++) {
        const mandate_apply_client *c = &doc->clients[i];
        if (c->id == NULL || !mandate_client_id_valid(c->id))
            abort();
        for (size_t k = 0; k < i; k++)
            if (strcmp(doc->clients[k].id, c->id) == 0)
                abort();
        const char *auth = mandate_apply_client_auth(c);
        bool key = strcmp(auth, "private_key_jwt") == 0;
        if (!key && strcmp(auth, "client_secret") != 0 && strcmp(auth, "none") != 0)
            abort();
        if (key != (c->public_key_file != NULL))
            abort();
        size_t n;
        if (mandate_word_list_missing(c->default_scopes, c->scopes, &n) != NULL)
            abort();
        const char *lists[] = {c->scopes, c->default_scopes, c->audiences, c->grant_types,
                               c->redirect_uris};
        for (size_t k = 0; k < sizeof(lists) / sizeof(lists[0]); k++)
            check_list(lists[k]);
    }
    for (size_t i = 0; i < doc->target_count; i++) {
        const mandate_apply_target *t = &doc->targets[i];
        if (t->name == NULL || t->paths == NULL || t->audience == NULL)
            abort();
        for (size_t k = 0; k < i; k++)
            if (strcmp(doc->targets[k].name, t->name) == 0)
                abort();
        check_list(t->paths);
        check_list(t->scopes);
    }
}

static bool has_client(const mandate_apply_client *list, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i].id, id) == 0)
            return true;
    return false;
}

static bool has_target(const mandate_apply_target *list, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i].name, name) == 0)
            return true;
    return false;
}

static void check_plan(const mandate_apply_doc *doc, const mandate_apply_doc *have, bool prune,
                       const mandate_apply_plan *plan)
{
    size_t creates = 0;
    for (size_t i = 0; i < doc->client_count; i++)
        creates += !has_client(have->clients, have->client_count, doc->clients[i].id);
    if (doc->has_targets)
        for (size_t i = 0; i < doc->target_count; i++)
            creates += !has_target(have->targets, have->target_count, doc->targets[i].name);
    if (plan->creates != creates)
        abort();
    for (size_t i = 0; i < plan->count; i++) {
        const mandate_apply_change *c = &plan->changes[i];
        switch (c->op) {
        case MANDATE_APPLY_UPDATE:
            if (c->field_count == 0)
                abort();
            break;
        case MANDATE_APPLY_DISABLE:
            if (!prune || c->have == NULL || c->have->registered || c->have->disabled ||
                has_client(doc->clients, doc->client_count, c->name))
                abort();
            break;
        case MANDATE_APPLY_REMOVE:
            if (!doc->has_targets || has_target(doc->targets, doc->target_count, c->name))
                abort();
            break;
        case MANDATE_APPLY_CREATE: break;
        default: abort();
        }
    }
}

FUZZ_INITIALIZE_LOG_ERRORS("fuzz-apply")

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > HARNESS_MAX_INPUT)
        return -1;
    fuzz_part parts[3];
    size_t n = fuzz_split(data, size, parts, 3);
    unsigned control = fuzz_control_byte(parts, n, 2);
    bool libconfig = control & 1, prune = control & 2, registered = control & 4;
    mandate_pool *pool = mandate_pool_new();
    mandate_diag diag = {0};
    mandate_apply_doc doc;
    json_t *root = parse(&parts[0], libconfig);
    if (root != NULL) {
        bool ok = mandate_apply_doc_read(pool, root, &doc, &diag);
        json_decref(root);
        if (ok != (diag.count == 0) || diag.count > MANDATE_APPLY_MAX_ERRORS + 1)
            abort();
        if (ok) {
            check_accepted(&doc);
            /* against itself: nothing to do */
            mandate_apply_plan plan;
            if (!mandate_apply_plan_make(pool, &doc, doc.clients, doc.client_count, doc.targets,
                                         doc.target_count, prune, &plan, &diag) ||
                plan.count != 0 || plan.left_alone != 0)
                abort();
            free(plan.changes);
            /* against what part 1 stands for */
            mandate_apply_doc have;
            json_t *have_root = n > 1 ? parse(&parts[1], libconfig) : NULL;
            if (have_root != NULL && mandate_apply_doc_read(pool, have_root, &have, &diag)) {
                for (size_t i = 0; i < have.client_count; i++)
                    have.clients[i].registered = registered;
                if (mandate_apply_plan_make(pool, &doc, have.clients, have.client_count,
                                            have.targets, have.target_count, prune, &plan,
                                            &diag)) {
                    check_plan(&doc, &have, prune, &plan);
                    free(plan.changes);
                }
            }
            json_decref(have_root);
        }
    }
    mandate_diag_free(&diag);
    mandate_pool_free(&pool);
    return 0;
}
