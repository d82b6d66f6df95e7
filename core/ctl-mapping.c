/* mandatectl mapping test: which mapping rule an assertion meets and the
 * grant it would give, without issuing anything and without claiming the
 * assertion's ID (the runtime is a dry run), so the same assertion still
 * works afterwards. */
#include "config.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "clock-private.h"
#include "ctl-private.h"
#include "jose.h"
#include "mapping-private.h"
#include "plugins-private.h"
#include "pool-private.h"
#include "token-types-private.h"
#include "util-private.h"

#define ASSERTION_FILE_MAX (1024 * 1024)

/* The file's text, trimmed; raw XML is base64url-encoded as a client
 * would send it. */
static char *read_subject(const char *file, mandate_pool *pool)
{
    size_t len = 0;
    char *text = ctl_read_file("mandatectl mapping test", file, ASSERTION_FILE_MAX, &len);
    if (text == NULL)
        return NULL;
    size_t start = 0;
    while (start < len && (text[start] == ' ' || text[start] == '\n' || text[start] == '\r' ||
                           text[start] == '\t'))
        start++;
    while (len > start && (text[len - 1] == ' ' || text[len - 1] == '\n' ||
                           text[len - 1] == '\r' || text[len - 1] == '\t'))
        len--;
    char *out;
    if (start < len && text[start] == '<') {
        out = mandate_pool_alloc(pool, mandate_b64url_encoded_len(len - start) + 1);
        mandate_b64url_encode((const unsigned char *)text + start, len - start, out);
    } else {
        out = mandate_pool_printf(pool, "%.*s", (int)(len - start), text + start);
    }
    free(text);
    return out;
}

int ctl_cmd_mapping(ctl *c, int argc, char **argv)
{
    const char *idp = NULL, *file = NULL, *client_id = NULL, *scope = NULL, *resource = NULL;
    const char *token_type = NULL; /* of the file: which option named it */
    const ctl_option opts[] = {
        CTL_VALUE("idp", &idp),
        CTL_VALUE_KIND("assertion", &file, &token_type, MANDATE_TOKEN_TYPE_SAML2),
        CTL_VALUE_KIND("token", &file, &token_type, MANDATE_TOKEN_TYPE_JWT),
        CTL_VALUE("client", &client_id),
        CTL_VALUE("scope", &scope),
        CTL_VALUE("resource", &resource),
        {0}};
    static const char usage[] =
        "Usage: mandatectl mapping test --idp NAME --assertion FILE|--token FILE "
        "[--client ID] [--scope S] [--resource URI]\n";
    if (argc < 2 || strcmp(argv[1], "test") != 0) {
        fputs(usage, stderr);
        return CTL_USAGE;
    }
    argc--;
    argv++;
    if (!ctl_options(argc, argv, opts) ||
        !ctl_operands(argc, 0, idp != NULL && file != NULL, usage))
        return CTL_USAGE;
    mandate_runtime *rt = ctl_runtime(c, MANDATE_RUNTIME_MIGRATE | MANDATE_RUNTIME_DRY_RUN);
    if (rt == NULL)
        return CTL_REFUSED;
    int status = CTL_REFUSED;
    mandate_pool *pool = mandate_pool_new();
    const mandate_instance *in = mandate_runtime_find(rt, MANDATE_BACKEND, idp);
    bool validates = mandate_backend_validates(in);
    char *subject = read_subject(file, pool);
    mandate_error err = {0};
    mandate_identity id = {0};
    mandate_client client = {0};
    if (subject == NULL) {
        /* said */
    } else if (!validates) {
        fprintf(stderr, "mandatectl mapping test: no enabled backend '%s' validates assertions\n",
                idp);
    } else if (client_id != NULL) {
        const mandate_instance *store = mandate_runtime_store(rt);
        if (mandate_store_client_get(store, pool, client_id, &client, &err) != MANDATE_OK) {
            fprintf(stderr, "mandatectl mapping test: client %s: %s\n", client_id,
                    err.message[0] ? err.message : "not found");
            subject = NULL;
        }
    }
    mandate_rc rc = MANDATE_ERROR;
    /* a JWT: as whichever kind the instance takes (an id_token, an access
     * token, an ID-JAG), in that order */
    static const char *const jwt_types[] = {MANDATE_TOKEN_TYPE_ID_TOKEN, MANDATE_TOKEN_TYPE_JWT,
                                            MANDATE_TOKEN_TYPE_ID_JAG, NULL};
    static const char *const saml_types[] = {MANDATE_TOKEN_TYPE_SAML2, NULL};
    const char *const *types = token_type != NULL && strcmp(token_type, MANDATE_TOKEN_TYPE_JWT) == 0
                                   ? jwt_types
                                   : saml_types;
    for (size_t t = 0; types[t] != NULL && subject != NULL && validates; t++) {
        memset(&id, 0, sizeof(id));
        memset(&err, 0, sizeof(err));
        rc = mandate_backend_validate(in, pool, types[t], subject, strlen(subject), &id, &err);
        if (rc != MANDATE_NEXT)
            break;
    }
    if (rc == MANDATE_NEXT && err.message[0] == '\0')
        snprintf(err.message, sizeof(err.message),
                 "not this instance's: another issuer, or a kind of token it does not accept");
    if (subject != NULL && validates && rc != MANDATE_OK) {
        printf("assertion refused by %s: %s\n", in->conf->name,
               err.message[0] ? err.message : mandate_rc_name(rc));
    } else if (rc == MANDATE_OK) {
        const mandate_config *cfg = mandate_runtime_config(rt);
        /* without --client, no client narrows the grant: every rule's scopes */
        const char *client_scopes = client_id ? client.scopes : "";
        for (size_t r = 0; client_id == NULL && r < cfg->mappings.count; r++)
            for (char **s = cfg->mappings.rules[r].scopes; s && *s; s++)
                client_scopes = mandate_pool_printf(pool, "%s%s%s", client_scopes,
                                                    client_scopes[0] ? " " : "", *s);
        mandate_mapping_request mr = {.idp = in->conf->name,
                                      .idp_plugin = in->handle->plugin->name,
                                      .identity = &id,
                                      .requested_scope = scope,
                                      .client_scopes = client_scopes,
                                      .requested_audience = resource,
                                      .default_lifetime = cfg->token_lifetime,
                                      .now = mandate_clock_now()};
        mandate_mapping_result m = {0};
        mandate_rc mrc = mandate_mapping_apply(&cfg->mappings, &mr, pool, &m);
        json_t *o = json_pack("{s:s,s:s?,s:s?,s:s?,s:I}", "idp", in->conf->name, "issuer",
                              id.issuer, "idp_subject", id.subject, "assertion_id",
                              id.assertion_id, "authn_instant", (json_int_t)id.authn_instant);
        json_t *attributes = id.attributes ? json_loads(id.attributes, 0, NULL) : NULL;
        json_object_set_new(o, "attributes", attributes ? attributes : json_object());
        json_object_set_new(o, "rule", m.rule ? json_string(m.rule->name) : json_null());
        json_object_set_new(o, "why", m.why ? json_string(m.why) : json_null());
        if (mrc == MANDATE_OK) {
            json_object_set_new(o, "grant",
                                json_pack("{s:s,s:s,s:s,s:s?,s:I}", "sub", m.subject, "tenant",
                                          m.tenant, "scope", m.scope, "aud", m.audience,
                                          "lifetime", (json_int_t)m.lifetime));
            status = CTL_OK;
        }
        if (c->json) {
            ctl_print_json(o);
        } else {
            printf("idp:          %s (%s)\n", in->conf->name, id.issuer ? id.issuer : "-");
            printf("idp subject:  %s\n", id.subject ? id.subject : "-");
            printf("assertion id: %s\n", id.assertion_id ? id.assertion_id : "-");
            char *attrs = json_dumps(json_object_get(o, "attributes"), JSON_COMPACT);
            printf("attributes:   %s\n", attrs ? attrs : "{}");
            free(attrs);
            printf("rule:         %s\n", m.rule ? m.rule->name : "(none)");
            if (mrc == MANDATE_OK)
                printf("grant:        sub=%s tenant=%s scope=\"%s\" aud=\"%s\" lifetime=%llds\n",
                       m.subject, m.tenant, m.scope, m.audience ? m.audience : "",
                       (long long)m.lifetime);
            else
                printf("no token:     %s\n", m.why ? m.why : mandate_rc_name(mrc));
            json_decref(o);
        }
    }
    mandate_pool_free(&pool);
    mandate_runtime_unref(&rt);
    return status;
}
