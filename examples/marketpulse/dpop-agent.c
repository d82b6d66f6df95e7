/* The MarketPulse agent of the "bank" mode (issue 25), in C with
 * libmandate: it holds a DPoP proof key that never leaves the process, gets
 * DPoP-bound tokens with client credentials, and calls the market calendar
 * through the gateway over TLS with its client certificate. Server nonces
 * (the broker's and the gateway's use_dpop_nonce) are libmandate's to
 * handle.
 *
 *   dpop-agent --token-url URL --client-id ID [options] URL [JSON_BODY]
 *
 * The secret comes from $MANDATE_CLIENT_SECRET. Prints the answer's status
 * on the first line and its body on the next; exit 0 when the call got a
 * 2xx. With --show-token the access token goes to stderr, for the
 * walk-through's "a thief copies it" step (never do this in an agent). */
#include "config.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mandate/client.h>

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: dpop-agent --token-url URL --client-id ID [options] URL [JSON_BODY]\n"
            "\n"
            "POSTs JSON_BODY (default {\"country_code\":\"US\",\"days_ahead\":7}) to URL\n"
            "with a DPoP-bound token of the broker; the secret is $MANDATE_CLIENT_SECRET.\n"
            "\n"
            "  --key FILE        the proof key (PEM or JWK); default: a new ES256 key\n"
            "                    held in memory for this run only\n"
            "  --scope SCOPES    default mcp:call\n"
            "  --cert FILE       the agent's TLS client certificate (PEM) ...\n"
            "  --cert-key FILE   ... and its private key (PEM)\n"
            "  --ca FILE         the CA bundle the servers' certificates come from\n"
            "  --calls N         make the call N times (default 1), one token\n"
            "  --show-token      print the access token to stderr (for the demo)\n");
}

int main(int argc, char **argv)
{
    enum {
        OPT_TOKEN_URL = 256,
        OPT_CLIENT_ID,
        OPT_KEY,
        OPT_SCOPE,
        OPT_CERT,
        OPT_CERT_KEY,
        OPT_CA,
        OPT_CALLS,
        OPT_SHOW
    };
    static const struct option opts[] = {{"token-url", required_argument, NULL, OPT_TOKEN_URL},
                                         {"client-id", required_argument, NULL, OPT_CLIENT_ID},
                                         {"key", required_argument, NULL, OPT_KEY},
                                         {"scope", required_argument, NULL, OPT_SCOPE},
                                         {"cert", required_argument, NULL, OPT_CERT},
                                         {"cert-key", required_argument, NULL, OPT_CERT_KEY},
                                         {"ca", required_argument, NULL, OPT_CA},
                                         {"calls", required_argument, NULL, OPT_CALLS},
                                         {"show-token", no_argument, NULL, OPT_SHOW},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    mandate_token_source_config cfg = {.scope = "mcp:call"};
    const char *key_file = NULL;
    long calls = 1;
    bool show = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case OPT_TOKEN_URL: cfg.token_url = optarg; break;
        case OPT_CLIENT_ID: cfg.client_id = optarg; break;
        case OPT_KEY: key_file = optarg; break;
        case OPT_SCOPE: cfg.scope = optarg; break;
        case OPT_CERT: cfg.tls_client_cert = optarg; break;
        case OPT_CERT_KEY: cfg.tls_client_key = optarg; break;
        case OPT_CA: cfg.tls_ca_file = optarg; break;
        case OPT_CALLS: calls = strtol(optarg, NULL, 10); break;
        case OPT_SHOW: show = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    cfg.client_secret = getenv("MANDATE_CLIENT_SECRET");
    if (optind >= argc || argc - optind > 2 || calls < 1) {
        usage(stderr);
        return 2;
    }
    const char *url = argv[optind];
    const char *body =
        optind + 1 < argc ? argv[optind + 1] : "{\"country_code\":\"US\",\"days_ahead\":7}";

    char err[256] = "";
    mandate_dpop_key *key = key_file != NULL
                                ? mandate_dpop_key_load(key_file, err, sizeof(err))
                                : mandate_dpop_key_generate(NULL, err, sizeof(err));
    if (key == NULL) {
        fprintf(stderr, "dpop-agent: proof key: %s\n", err);
        return 1;
    }
    fprintf(stderr, "dpop-agent: proof key thumbprint (cnf.jkt) %s\n",
            mandate_dpop_key_thumbprint(key));
    cfg.dpop_key = key;
    mandate_token_source *src = mandate_token_source_new(&cfg, err, sizeof(err));
    mandate_dpop_key_free(&key); /* the source keeps its own reference */
    if (src == NULL) {
        fprintf(stderr, "dpop-agent: %s\n", err);
        return 2;
    }
    int status_rc = 0;
    for (long i = 0; i < calls && status_rc == 0; i++) {
        long status = 0;
        char *answer = NULL;
        mandate_client_rc rc = mandate_token_source_request(src, "POST", url, body, NULL,
                                                            &status, &answer, err, sizeof(err));
        if (rc != MANDATE_CLIENT_OK) {
            fprintf(stderr, "dpop-agent: %s: %s\n", mandate_client_rc_name(rc), err);
            status_rc = 1;
            break;
        }
        printf("%ld\n%s\n", status, answer != NULL ? answer : "");
        free(answer);
        status_rc = status >= 200 && status < 300 ? 0 : 1;
    }
    fprintf(stderr, "dpop-agent: token_type %s, %llu token request(s)\n",
            mandate_token_source_token_type(src),
            (unsigned long long)mandate_token_source_fetches(src));
    if (show) {
        char *token = NULL;
        if (mandate_token_source_get(src, &token, NULL, err, sizeof(err)) == MANDATE_CLIENT_OK)
            fprintf(stderr, "dpop-agent: access token %s\n", token);
        free(token);
    }
    mandate_token_source_free(&src);
    return status_rc;
}
