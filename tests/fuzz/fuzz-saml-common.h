/* The saml backend instance the SAML harnesses fuzz (fuzz-saml,
 * fuzz-saml-acs, fuzz-saml-logout): one program each, so static. */
#ifndef MANDATE_FUZZ_SAML_COMMON_H
#define MANDATE_FUZZ_SAML_COMMON_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <mandate/backend.h>

#include "fake-host.h"
#include "fuzz-common.h"

extern const mandate_plugin mandate_plugin_saml;

/* The IdP metadata the harnesses trust: $MANDATE_FUZZ_SAML_METADATA, or
 * the one in tests/fuzz. */
static inline const char *fuzz_saml_metadata(void)
{
    const char *md = getenv("MANDATE_FUZZ_SAML_METADATA");
    return md != NULL ? md : SRCDIR "/tests/fuzz/saml-metadata.xml";
}

/* A saml instance on the quiet fake host at FUZZ_NOW, audience
 * https://mandate.example.com/saml, with the harness's settings (key,
 * value pairs ending in NULL); aborts naming the harness if it cannot be
 * made. */
static inline void *fuzz_saml_instance(const char *harness, ...)
{
    const mandate_plugin *p = &mandate_plugin_saml;
    mandate_host *host = fake_host_quiet(FUZZ_NOW);
    void *inst = fake_instance_new(p);
    if (inst == NULL ||
        fake_conf_set(p, inst, "sp_entity_id", "https://mandate.example.com/saml") != 0)
        abort();
    va_list ap;
    va_start(ap, harness);
    for (const char *key; (key = va_arg(ap, const char *)) != NULL;) {
        const char *value = va_arg(ap, const char *);
        if (fake_conf_set(p, inst, key, value) != 0) {
            fprintf(stderr, "%s: setting %s refused\n", harness, key);
            abort();
        }
    }
    va_end(ap);
    mandate_error err = {0};
    if (p->instantiate(inst, host, &err) != MANDATE_OK) {
        fprintf(stderr, "%s: instantiate: %s\n", harness, err.message);
        abort();
    }
    return inst;
}

#endif
