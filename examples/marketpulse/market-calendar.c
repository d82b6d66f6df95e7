/* market-calendar: the MarketPulse "market calendar" tool server of the
 * AgentCore Identity workshop, protected by Mandate.
 *
 * One tool, check_market_holidays, answers which days the New York Stock
 * Exchange is closed in the coming days. It is served twice:
 *
 *   POST /tools/check_market_holidays   the workshop's plain JSON call
 *   POST /mcp                           MCP over Streamable HTTP (JSON-RPC
 *                                       2.0, plain JSON responses, no SSE)
 *
 * Every call must carry an access token of the broker (Authorization:
 * Bearer), checked here with libmandate's mandate_verifier even when a
 * gateway in front has checked it already: signature against the issuer's
 * JWKS, iss, aud, exp, nbf and the scope the call needs. GET /healthz and
 * the RFC 9728 protected resource metadata need none.
 *
 * Threads: libmicrohttpd's thread pool; mandate_verifier is safe to share
 * between threads, everything else a request touches is its own or
 * read-only after start-up. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/rand.h>
#include <microhttpd.h>

#include <mandate/client.h>

#include "nyse-calendar.h"

#define SERVER_NAME "market-calendar"
#define TOOL_NAME "check_market_holidays"
#define DEFAULT_LISTEN "127.0.0.1:8090"
#define DEFAULT_SCOPE "mcp:call"
#define DEFAULT_THREADS 4
#define BODY_LIMIT (16 * 1024)
#define DAYS_AHEAD_DEFAULT 7
#define DAYS_AHEAD_MAX 366
#define SESSION_ID_BYTES 16
#define MAX_ORIGINS 16
#define PRM_PATH "/.well-known/oauth-protected-resource"

/* Protocol revisions this server speaks, newest first. */
static const char *const protocol_versions[] = {"2025-11-25", "2025-06-18", "2025-03-26",
                                                "2024-11-05"};

/* The tool as tools/list describes it. */
static const char tool_json[] =
    "{\"name\": \"" TOOL_NAME "\","
    " \"title\": \"Check market holidays\","
    " \"description\": \"Lists the days the New York Stock Exchange is closed for a holiday"
    " from today (New York time) to days_ahead days ahead, both included, and counts the"
    " trading days they take away. Only US markets (NYSE) are covered. With"
    " include_early_closes, the days trading ends at 1:00 pm ET are listed too (they are"
    " trading days and count as affected).\","
    " \"inputSchema\": {\"type\": \"object\", \"properties\": {"
    "   \"country_code\": {\"type\": \"string\", \"enum\": [\"US\"], \"default\": \"US\","
    "     \"description\": \"Market country: only US (the New York Stock Exchange).\"},"
    "   \"days_ahead\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": 366,"
    "     \"default\": 7, \"description\": \"How many days past today to look.\"},"
    "   \"include_early_closes\": {\"type\": \"boolean\", \"default\": false,"
    "     \"description\": \"Also list the early (1:00 pm ET) closes.\"}},"
    "  \"additionalProperties\": false},"
    " \"outputSchema\": {\"type\": \"object\", \"properties\": {"
    "   \"holidays\": {\"type\": \"array\", \"items\": {\"type\": \"object\", \"properties\": {"
    "     \"date\": {\"type\": \"string\", \"pattern\": \"^[0-9]{4}-[0-9]{2}-[0-9]{2}$\"},"
    "     \"name\": {\"type\": \"string\"},"
    "     \"is_trading_day\": {\"type\": \"boolean\"},"
    "     \"early_close\": {\"type\": \"string\"}},"
    "    \"required\": [\"date\", \"name\", \"is_trading_day\"]}},"
    "   \"trading_days_affected\": {\"type\": \"integer\", \"minimum\": 0},"
    "   \"period\": {\"type\": \"object\", \"properties\": {"
    "     \"start\": {\"type\": \"string\"}, \"end\": {\"type\": \"string\"}},"
    "    \"required\": [\"start\", \"end\"]}},"
    "  \"required\": [\"holidays\", \"trading_days_affected\", \"period\"]},"
    " \"annotations\": {\"readOnlyHint\": true, \"destructiveHint\": false,"
    "   \"idempotentHint\": true, \"openWorldHint\": false}}";

typedef struct server {
    mandate_verifier *verifier;
    const char *issuer, *audience;
    const char *scope;       /* NULL: a valid token is enough */
    char *resource_metadata; /* RFC 9728 URL derived from the audience, or NULL */
    const char *public_url;  /* the URL clients call (DPoP proofs' htu), or NULL */
    const char *origins[MAX_ORIGINS];
    size_t origin_count;
    bool fixed_today;
    nyse_date today;
    json_t *tool; /* tool_json, parsed once */
} server;

typedef enum route { ROUTE_NONE, ROUTE_HEALTH, ROUTE_METADATA, ROUTE_TOOL, ROUTE_MCP } route;

/* What goes back to the client. */
typedef struct reply {
    unsigned status;
    json_t *body;           /* owned; NULL: no body */
    char *www_authenticate; /* owned; NULL: none */
    const char *allow;
    bool retry_after;
    char session_id[2 * SESSION_ID_BYTES + 1]; /* "": none */
} reply;

/* Per request, in libmicrohttpd's connection-class pointer. */
typedef struct request {
    route route;
    reply early; /* status != 0: decided before the body, which is discarded */
    char *body;
    size_t body_len;
    bool too_large;
    char *client_id; /* of the verified token, for the log */
    char *subject;   /* whom it acts for (a person signed in, or the client) */
    char rpc_method[48];
} request;

/* --- small helpers ---------------------------------------------------------- */

static void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void log_line(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, SERVER_NAME ": %s\n", line);
}

/* A copy of untrusted text for messages and logs: printable ASCII only,
 * truncated, so it can go into JSON strings (no broken UTF-8) and log lines
 * (no control characters) safely. */
static const char *printable(const char *in, char *out, size_t outlen)
{
    size_t i = 0;
    for (; in != NULL && in[i] != '\0' && i + 1 < outlen; i++)
        out[i] = in[i] >= 0x20 && in[i] < 0x7f ? in[i] : '?';
    out[i] = '\0';
    return out;
}

static const char *reason_phrase(unsigned status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorised"; /* the workshop's spelling */
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 503: return "Service Unavailable";
    default: return "Internal Server Error";
    }
}

/* The workshop's error shape: {"error", "message", "statusCode"}. */
static void reply_error(reply *r, unsigned status, const char *message)
{
    json_decref(r->body);
    r->status = status;
    r->body = json_pack("{s:s, s:s, s:i}", "error", reason_phrase(status), "message", message,
                        "statusCode", (int)status);
}

static void reply_clear(reply *r)
{
    json_decref(r->body);
    free(r->www_authenticate);
    memset(r, 0, sizeof(*r));
}

static bool random_hex(char *out, size_t bytes)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[64];
    if (bytes > sizeof(raw) || RAND_bytes(raw, (int)bytes) != 1)
        return false;
    for (size_t i = 0; i < bytes; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 0xf];
    }
    out[2 * bytes] = '\0';
    return true;
}

/* "application/json", any case, parameters allowed. */
static bool is_json_media_type(const char *value)
{
    static const char want[] = "application/json";
    if (value == NULL || strncasecmp(value, want, sizeof(want) - 1) != 0)
        return false;
    char next = value[sizeof(want) - 1];
    return next == '\0' || next == ';' || next == ' ' || next == '\t';
}

/* --- authorisation ---------------------------------------------------------- */

/* WWW-Authenticate: SCHEME [error=...][, scope=...][, resource_metadata=...]
 * (SCHEME Bearer, or DPoP when the call came with a DPoP-bound token) */
static char *www_authenticate(const server *srv, bool dpop, const char *error,
                              const char *scope)
{
    char value[1024];
    size_t n = (size_t)snprintf(value, sizeof(value),
                                dpop ? "DPoP algs=\"ES256 EdDSA RS256\"," : "Bearer");
    const char *sep = " ";
    if (error != NULL && n < sizeof(value)) {
        n += (size_t)snprintf(value + n, sizeof(value) - n, "%serror=\"%s\"", sep, error);
        sep = ", ";
    }
    if (scope != NULL && n < sizeof(value)) {
        n += (size_t)snprintf(value + n, sizeof(value) - n, "%sscope=\"%s\"", sep, scope);
        sep = ", ";
    }
    if (srv->resource_metadata != NULL && n < sizeof(value))
        n += (size_t)snprintf(value + n, sizeof(value) - n, "%sresource_metadata=\"%s\"", sep,
                              srv->resource_metadata);
    return n < sizeof(value) ? strdup(value) : NULL;
}

/* The token of "Authorization: SCHEME <token>" or NULL; *scheme_r says
 * whether that scheme was used at all. */
static const char *scheme_token(const char *header, const char *scheme, bool *scheme_r)
{
    size_t len = strlen(scheme);
    *scheme_r = false;
    if (header == NULL)
        return NULL;
    while (*header == ' ' || *header == '\t')
        header++;
    if (strncasecmp(header, scheme, len) != 0 ||
        (header[len] != '\0' && header[len] != ' ' && header[len] != '\t'))
        return NULL;
    *scheme_r = true;
    const char *token = header + len;
    while (*token == ' ' || *token == '\t')
        token++;
    return *token != '\0' ? token : NULL;
}

/* Checks the caller's token; false (with r filled in) when the call must
 * not go ahead. RFC 6750 section 3 for the answers; a DPoP-bound token
 * (RFC 9449 §7) comes as "Authorization: DPoP" with a proof for this
 * method and URL as the client called it (--public-url: behind a gateway,
 * the gateway's), checked here too. A certificate-bound token (cnf
 * x5t#S256, RFC 8705 §3) is refused by the verifier: this server speaks
 * plain HTTP and is forwarded no certificate, so it cannot check one
 * (mandate_verifier_check_request would take the certificate of a TLS
 * connection of its own; doc/mtls.md). */
static bool authorise(const server *srv, struct MHD_Connection *conn, const char *method,
                      const char *url, request *rq, reply *r)
{
    bool bearer, dpop = false;
    const char *header =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    const char *token = scheme_token(header, "Bearer", &bearer);
    if (token == NULL && !bearer)
        token = scheme_token(header, "DPoP", &dpop);
    if (token == NULL) {
        /* No credentials, or another scheme: no error code. A bare
         * "Bearer" is a malformed token. */
        reply_error(r, 401, "Valid OAuth token required");
        r->www_authenticate =
            www_authenticate(srv, dpop, bearer || dpop ? "invalid_token" : NULL, NULL);
        return false;
    }

    char err[256] = "";
    mandate_verified_token claims;
    mandate_client_rc rc;
    if (dpop) {
        /* the URL the proof names: the public one and this path (the query
         * is no part of it) */
        char uri[2048];
        int n = srv->public_url != NULL
                    ? snprintf(uri, sizeof(uri), "%s%s", srv->public_url, url)
                    : -1;
        const char *proof = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "DPoP");
        if (n < 0 || (size_t)n >= sizeof(uri)) {
            snprintf(err, sizeof(err),
                     "a DPoP-bound token, and no --public-url to check "
                     "its proof against");
            rc = MANDATE_CLIENT_TOKEN_INVALID;
        } else {
            rc = mandate_verifier_check_dpop(srv->verifier, token, proof, method, uri,
                                             srv->scope, &claims, err, sizeof(err));
        }
    } else {
        rc =
            mandate_verifier_check(srv->verifier, token, srv->scope, &claims, err, sizeof(err));
    }
    switch (rc) {
    case MANDATE_CLIENT_OK:
        rq->client_id = claims.client_id != NULL ? strdup(claims.client_id) : NULL;
        rq->subject = claims.subject != NULL ? strdup(claims.subject) : NULL;
        mandate_verified_token_clear(&claims);
        return true;
    case MANDATE_CLIENT_TOKEN_INVALID:
        log_line("token refused: %s", err);
        reply_error(r, 401, "Valid OAuth token required");
        r->www_authenticate = www_authenticate(srv, dpop, "invalid_token", NULL);
        return false;
    case MANDATE_CLIENT_INSUFFICIENT_SCOPE:
        log_line("token refused: %s", err);
        reply_error(r, 403, "The token lacks the scope this call needs");
        r->www_authenticate = www_authenticate(srv, dpop, "insufficient_scope", srv->scope);
        return false;
    case MANDATE_CLIENT_UNAVAILABLE:
        log_line("cannot verify tokens: %s", err);
        reply_error(r, 503, "Cannot verify tokens right now; try again shortly");
        r->retry_after = true;
        return false;
    default:
        log_line("token check failed (%s): %s", mandate_client_rc_name(rc), err);
        reply_error(r, 500, "Cannot verify tokens");
        return false;
    }
}

/* The RFC 9728 metadata URL named in this server's own 401s: where this
 * very server answers it (PRM_PATH), on the address it listens on. The URL
 * the audience would give (https://mcp.example/.well-known/...) is a name,
 * not a server that answers; behind a gateway, --resource-metadata names
 * the public one. NULL when the address cannot be written as a URL. */
static char *own_metadata_url(const char *listen_addr, unsigned port)
{
    const char *colon = strrchr(listen_addr, ':');
    if (colon == NULL || strpbrk(listen_addr, "\"\\ /?#") != NULL)
        return NULL;
    int host_len = (int)(colon - listen_addr);
    size_t len = (size_t)host_len + sizeof("http://:65535" PRM_PATH);
    char *url = malloc(len);
    if (url != NULL)
        snprintf(url, len, "http://%.*s:%u" PRM_PATH, host_len, listen_addr, port);
    return url;
}

static void reply_metadata(const server *srv, reply *r)
{
    json_t *scopes = json_array();
    if (srv->scope != NULL) {
        const char *s = srv->scope;
        while (*s != '\0') {
            size_t n = strcspn(s, " ");
            if (n > 0)
                json_array_append_new(scopes, json_stringn(s, n));
            s += n;
            while (*s == ' ')
                s++;
        }
    }
    r->status = 200;
    r->body = json_pack("{s:s, s:[s], s:o, s:[s], s:s}", "resource", srv->audience,
                        "authorization_servers", srv->issuer, "scopes_supported", scopes,
                        "bearer_methods_supported", "header", "resource_name",
                        "MarketPulse market calendar");
}

/* --- the tool --------------------------------------------------------------- */

typedef enum tool_rc { TOOL_OK, TOOL_BAD_ARGUMENTS, TOOL_FAILED } tool_rc;

/* check_market_holidays: *result_r on TOOL_OK, a message for the caller in
 * msg otherwise. */
static tool_rc check_market_holidays(const server *srv, const json_t *args, json_t **result_r,
                                     char *msg, size_t msglen)
{
    *result_r = NULL;
    if (args != NULL && !json_is_object(args)) {
        snprintf(msg, msglen, "the arguments must be a JSON object");
        return TOOL_BAD_ARGUMENTS;
    }
    const char *key;
    json_t *value;
    char shown[64];
    json_object_foreach((json_t *)args, key, value)
    {
        if (strcmp(key, "country_code") != 0 && strcmp(key, "days_ahead") != 0 &&
            strcmp(key, "include_early_closes") != 0) {
            snprintf(msg, msglen,
                     "unknown argument \"%s\": the arguments are country_code, days_ahead "
                     "and include_early_closes",
                     printable(key, shown, sizeof(shown)));
            return TOOL_BAD_ARGUMENTS;
        }
    }

    json_t *country = json_object_get(args, "country_code");
    if (country != NULL &&
        (!json_is_string(country) || strcasecmp(json_string_value(country), "US") != 0)) {
        snprintf(msg, msglen,
                 "country_code must be \"US\": this server knows the New York Stock "
                 "Exchange calendar only");
        return TOOL_BAD_ARGUMENTS;
    }
    json_int_t days = DAYS_AHEAD_DEFAULT;
    json_t *days_value = json_object_get(args, "days_ahead");
    if (days_value != NULL) {
        if (!json_is_integer(days_value) || json_integer_value(days_value) < 1 ||
            json_integer_value(days_value) > DAYS_AHEAD_MAX) {
            snprintf(msg, msglen, "days_ahead must be an integer from 1 to %d", DAYS_AHEAD_MAX);
            return TOOL_BAD_ARGUMENTS;
        }
        days = json_integer_value(days_value);
    }
    unsigned kinds = NYSE_CLOSED;
    json_t *early = json_object_get(args, "include_early_closes");
    if (early != NULL) {
        if (!json_is_boolean(early)) {
            snprintf(msg, msglen, "include_early_closes must be true or false");
            return TOOL_BAD_ARGUMENTS;
        }
        if (json_is_true(early))
            kinds |= NYSE_EARLY_CLOSE;
    }

    nyse_date today =
        srv->fixed_today ? srv->today : nyse_date_in_new_york((int64_t)time(NULL));
    nyse_holiday found[4 * NYSE_MAX_PER_YEAR];
    int n =
        nyse_window(today, (int)days, kinds, found, (int)(sizeof(found) / sizeof(found[0])));
    if (n < 0) {
        snprintf(msg, msglen, "the calendar covers the years %d to %d only", NYSE_YEAR_MIN,
                 NYSE_YEAR_MAX);
        return TOOL_BAD_ARGUMENTS;
    }
    if ((size_t)n > sizeof(found) / sizeof(found[0])) {
        snprintf(msg, msglen, "internal error: too many holidays");
        return TOOL_FAILED;
    }

    json_t *list = json_array();
    char date[11], end[11], name[96];
    for (int i = 0; i < n; i++) {
        const nyse_holiday *h = &found[i];
        snprintf(name, sizeof(name), "%s%s", h->name, h->observed ? " (observed)" : "");
        json_t *entry = json_pack("{s:s, s:s, s:b}", "date", nyse_date_format(h->date, date),
                                  "name", name, "is_trading_day", h->kind != NYSE_CLOSED);
        if (entry != NULL && h->kind == NYSE_EARLY_CLOSE)
            json_object_set_new(entry, "early_close", json_string("13:00"));
        if (entry == NULL || json_array_append_new(list, entry) != 0) {
            json_decref(list);
            snprintf(msg, msglen, "out of memory");
            return TOOL_FAILED;
        }
    }
    json_t *result =
        json_pack("{s:o, s:i, s:{s:s, s:s}}", "holidays", list, "trading_days_affected", n,
                  "period", "start", nyse_date_format(today, date), "end",
                  nyse_date_format(nyse_date_add(today, days), end));
    if (result == NULL) {
        snprintf(msg, msglen, "out of memory");
        return TOOL_FAILED;
    }
    *result_r = result;
    return TOOL_OK;
}

/* POST /tools/check_market_holidays: the workshop's call. */
static void handle_tool(const server *srv, const request *rq, reply *r)
{
    json_t *args = NULL;
    if (rq->body_len > 0) {
        json_error_t jerr;
        args =
            json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
        if (args == NULL) {
            char msg[256], text[160];
            snprintf(msg, sizeof(msg), "the body is not JSON: %s",
                     printable(jerr.text, text, sizeof(text)));
            reply_error(r, 400, msg);
            return;
        }
    }
    json_t *result;
    char msg[256];
    tool_rc rc = check_market_holidays(srv, args, &result, msg, sizeof(msg));
    json_decref(args);
    if (rc == TOOL_OK) {
        r->status = 200;
        r->body = result;
    } else {
        reply_error(r, rc == TOOL_BAD_ARGUMENTS ? 400 : 500, msg);
    }
}

/* --- MCP: JSON-RPC 2.0 over Streamable HTTP ---------------------------------- */

enum {
    RPC_PARSE_ERROR = -32700,
    RPC_INVALID_REQUEST = -32600,
    RPC_METHOD_NOT_FOUND = -32601,
    RPC_INVALID_PARAMS = -32602,
    RPC_INTERNAL_ERROR = -32603
};

static json_t *rpc_error(json_t *id, int code, const char *message)
{
    return json_pack("{s:s, s:O, s:{s:i, s:s}}", "jsonrpc", "2.0", "id",
                     id != NULL ? id : json_null(), "error", "code", code, "message", message);
}

/* Steals result. */
static json_t *rpc_result(json_t *id, json_t *result)
{
    if (result == NULL)
        return rpc_error(id, RPC_INTERNAL_ERROR, "out of memory");
    return json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id, "result", result);
}

static const char *supported_version(const char *version)
{
    for (size_t i = 0;
         version != NULL && i < sizeof(protocol_versions) / sizeof(*protocol_versions); i++)
        if (strcmp(version, protocol_versions[i]) == 0)
            return protocol_versions[i];
    return NULL;
}

static json_t *mcp_initialize(reply *r, json_t *id, json_t *params)
{
    if (params != NULL && !json_is_object(params))
        return rpc_error(id, RPC_INVALID_PARAMS, "initialize: params must be an object");
    /* The client's revision when we speak it, else our newest: the client
     * then decides whether it can go on. */
    const char *version =
        supported_version(json_string_value(json_object_get(params, "protocolVersion")));
    if (version == NULL)
        version = protocol_versions[0];
    if (!random_hex(r->session_id, SESSION_ID_BYTES)) {
        r->session_id[0] = '\0';
        return rpc_error(id, RPC_INTERNAL_ERROR, "no random numbers for a session id");
    }
    return rpc_result(
        id, json_pack("{s:s, s:{s:{}}, s:{s:s, s:s, s:s}, s:s}", "protocolVersion", version,
                      "capabilities", "tools", "serverInfo", "name", SERVER_NAME, "title",
                      "MarketPulse market calendar", "version", PACKAGE_VERSION, "instructions",
                      "Call " TOOL_NAME " to learn which days the New York Stock Exchange "
                      "is closed in the coming days."));
}

static json_t *mcp_tools_call(const server *srv, json_t *id, json_t *params)
{
    if (!json_is_object(params))
        return rpc_error(id, RPC_INVALID_PARAMS, "tools/call: params must be an object");
    const char *name = json_string_value(json_object_get(params, "name"));
    if (name == NULL)
        return rpc_error(id, RPC_INVALID_PARAMS, "tools/call: name is missing");
    if (strcmp(name, TOOL_NAME) != 0) {
        char msg[128], shown[64];
        snprintf(msg, sizeof(msg), "Unknown tool: %s", printable(name, shown, sizeof(shown)));
        return rpc_error(id, RPC_INVALID_PARAMS, msg);
    }
    json_t *args = json_object_get(params, "arguments");
    if (args != NULL && !json_is_object(args) && !json_is_null(args))
        return rpc_error(id, RPC_INVALID_PARAMS, "tools/call: arguments must be an object");

    json_t *result;
    char msg[256];
    tool_rc rc =
        check_market_holidays(srv, json_is_null(args) ? NULL : args, &result, msg, sizeof(msg));
    if (rc == TOOL_FAILED)
        return rpc_error(id, RPC_INTERNAL_ERROR, msg);
    if (rc == TOOL_BAD_ARGUMENTS) /* a tool error the model can read and correct */
        return rpc_result(id, json_pack("{s:[{s:s, s:s}], s:b}", "content", "type", "text",
                                        "text", msg, "isError", 1));
    char *text = json_dumps(result, JSON_COMPACT);
    json_t *out = text == NULL
                      ? NULL
                      : json_pack("{s:[{s:s, s:s}], s:o, s:b}", "content", "type", "text",
                                  "text", text, "structuredContent", result, "isError", 0);
    if (out == NULL && text == NULL)
        json_decref(result);
    free(text);
    return rpc_result(id, out);
}

/* One JSON-RPC message: the response, or NULL when none is due (a
 * notification, or a response from the client). */
static json_t *mcp_message(const server *srv, request *rq, reply *r, json_t *msg)
{
    if (!json_is_object(msg))
        return rpc_error(NULL, RPC_INVALID_REQUEST, "not a JSON-RPC message");
    json_t *id = json_object_get(msg, "id");
    if (id != NULL && !json_is_string(id) && !json_is_number(id))
        return rpc_error(NULL, RPC_INVALID_REQUEST, "id must be a string or a number");
    const char *jsonrpc = json_string_value(json_object_get(msg, "jsonrpc"));
    if (jsonrpc == NULL || strcmp(jsonrpc, "2.0") != 0)
        return rpc_error(id, RPC_INVALID_REQUEST, "jsonrpc must be \"2.0\"");
    json_t *method_value = json_object_get(msg, "method");
    if (method_value == NULL) {
        if (id != NULL && (json_object_get(msg, "result") || json_object_get(msg, "error")))
            return NULL; /* a response to a request of ours: we send none */
        return rpc_error(id, RPC_INVALID_REQUEST, "no method");
    }
    const char *method = json_string_value(method_value);
    if (method == NULL)
        return rpc_error(id, RPC_INVALID_REQUEST, "method must be a string");
    printable(method, rq->rpc_method, sizeof(rq->rpc_method));
    if (id == NULL)
        return NULL; /* notifications/initialized, notifications/cancelled, ... */

    json_t *params = json_object_get(msg, "params");
    if (params != NULL && !json_is_object(params) && !json_is_array(params))
        return rpc_error(id, RPC_INVALID_REQUEST, "params must be an object");
    if (strcmp(method, "initialize") == 0)
        return mcp_initialize(r, id, params);
    if (strcmp(method, "ping") == 0)
        return rpc_result(id, json_object());
    if (strcmp(method, "tools/list") == 0)
        return rpc_result(id, json_pack("{s:[O]}", "tools", srv->tool));
    if (strcmp(method, "tools/call") == 0)
        return mcp_tools_call(srv, id, params);
    char text[128], shown[48];
    snprintf(text, sizeof(text), "Method not found: %s",
             printable(method, shown, sizeof(shown)));
    return rpc_error(id, RPC_METHOD_NOT_FOUND, text);
}

static bool is_initialize(json_t *msg)
{
    const char *method = json_string_value(json_object_get(msg, "method"));
    return method != NULL && strcmp(method, "initialize") == 0;
}

/* POST /mcp. One message or (protocol 2025-03-26) a batch of them; the
 * answer is plain JSON, or 202 Accepted with no body when nothing needs one. */
static void handle_mcp(const server *srv, struct MHD_Connection *conn, request *rq, reply *r)
{
    const char *type =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!is_json_media_type(type)) {
        reply_error(r, 415, "Content-Type must be application/json");
        return;
    }
    json_error_t jerr;
    json_t *body =
        json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (body == NULL) {
        r->status = 400;
        r->body = rpc_error(NULL, RPC_PARSE_ERROR, "Parse error");
        return;
    }
    bool batch = json_is_array(body);
    if (batch && json_array_size(body) == 0) {
        json_decref(body);
        r->status = 400;
        r->body = rpc_error(NULL, RPC_INVALID_REQUEST, "empty batch");
        return;
    }

    /* After initialisation the client names the negotiated revision in
     * MCP-Protocol-Version; one we do not speak is refused (a missing one
     * means 2025-03-26). */
    bool initializing = batch ? false : is_initialize(body);
    for (size_t i = 0; batch && i < json_array_size(body); i++)
        initializing = initializing || is_initialize(json_array_get(body, i));
    const char *version =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "MCP-Protocol-Version");
    if (!initializing && version != NULL && supported_version(version) == NULL) {
        char msg[160], shown[48];
        snprintf(msg, sizeof(msg),
                 "Unsupported MCP-Protocol-Version %s; this server speaks "
                 "2025-11-25, 2025-06-18, 2025-03-26 and 2024-11-05",
                 printable(version, shown, sizeof(shown)));
        json_decref(body);
        r->status = 400;
        r->body = rpc_error(NULL, RPC_INVALID_REQUEST, msg);
        return;
    }

    if (!batch) {
        json_t *response = mcp_message(srv, rq, r, body);
        json_decref(body);
        if (response == NULL) {
            r->status = 202;
            return;
        }
        /* A message that is no JSON-RPC request at all is refused at the
         * HTTP level too. */
        json_t *error = json_object_get(response, "error");
        bool invalid =
            json_integer_value(json_object_get(error, "code")) == RPC_INVALID_REQUEST;
        r->status = invalid ? 400 : 200;
        r->body = response;
        return;
    }
    json_t *responses = json_array();
    for (size_t i = 0; i < json_array_size(body); i++) {
        json_t *response = mcp_message(srv, rq, r, json_array_get(body, i));
        if (response != NULL)
            json_array_append_new(responses, response);
    }
    json_decref(body);
    if (json_array_size(responses) == 0) {
        json_decref(responses);
        r->status = 202;
        return;
    }
    r->status = 200;
    r->body = responses;
}

/* --- HTTP ------------------------------------------------------------------- */

static enum MHD_Result send_reply(struct MHD_Connection *conn, const request *rq,
                                  const char *method, const char *url, reply *r)
{
    if (r->status == 0 || (r->status != 202 && r->body == NULL))
        reply_error(r, 500, "Internal error");
    char *text = NULL;
    if (r->body != NULL && (text = json_dumps(r->body, JSON_COMPACT)) == NULL) {
        reply_clear(r);
        return MHD_NO;
    }
    size_t len = text != NULL ? strlen(text) : 0;
    struct MHD_Response *resp =
        text != NULL ? MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE)
                     : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (resp == NULL) {
        free(text);
        reply_clear(r);
        return MHD_NO;
    }
    if (text != NULL) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    }
    if (r->www_authenticate != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, r->www_authenticate);
    if (r->allow != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    if (r->retry_after)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "5");
    if (r->session_id[0] != '\0')
        MHD_add_response_header(resp, "Mcp-Session-Id", r->session_id);
    enum MHD_Result ret = MHD_queue_response(conn, r->status, resp);
    MHD_destroy_response(resp);

    char client[80] = "", subject[80] = "", rpc[64] = "";
    if (rq != NULL && rq->client_id != NULL) {
        char shown[64];
        snprintf(client, sizeof(client), " client=%s",
                 printable(rq->client_id, shown, sizeof(shown)));
    }
    if (rq != NULL && rq->subject != NULL) {
        char shown[64];
        snprintf(subject, sizeof(subject), " sub=%s",
                 printable(rq->subject, shown, sizeof(shown)));
    }
    if (rq != NULL && rq->rpc_method[0] != '\0')
        snprintf(rpc, sizeof(rpc), " rpc=%s", rq->rpc_method);
    /* the agents acting for the subject, as the gateway check named them
     * (nginx.conf.in sets the header, so a caller's own never arrives):
     * logged for the trail, never used to decide */
    char chain[160] = "";
    const char *actors =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Mandate-Actor-Chain");
    if (rq != NULL && rq->client_id != NULL && actors != NULL && actors[0] != '\0') {
        char shown[128];
        snprintf(chain, sizeof(chain), " actor_chain=%s",
                 printable(actors, shown, sizeof(shown)));
    }
    char path[128];
    log_line("%s %s %u%s%s%s%s", method, printable(url, path, sizeof(path)), r->status, client,
             subject, rpc, chain);
    reply_clear(r);
    return ret;
}

static route find_route(const char *url)
{
    if (strcmp(url, "/healthz") == 0)
        return ROUTE_HEALTH;
    if (strcmp(url, "/tools/" TOOL_NAME) == 0)
        return ROUTE_TOOL;
    if (strcmp(url, "/mcp") == 0)
        return ROUTE_MCP;
    if (strcmp(url, PRM_PATH) == 0 || strncmp(url, PRM_PATH "/", sizeof(PRM_PATH)) == 0)
        return ROUTE_METADATA;
    return ROUTE_NONE;
}

static bool origin_allowed(const server *srv, const char *origin)
{
    for (size_t i = 0; i < srv->origin_count; i++)
        if (strcmp(origin, srv->origins[i]) == 0)
            return true;
    return false;
}

/* Everything decided from the request line and headers, before the body:
 * false with r filled in when the request ends here. */
static bool admit(const server *srv, struct MHD_Connection *conn, const char *method,
                  const char *url, request *rq, reply *r)
{
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    switch (rq->route) {
    case ROUTE_NONE:
        reply_error(r, 404, "No such endpoint: try POST /mcp or POST /tools/" TOOL_NAME);
        return false;
    case ROUTE_HEALTH:
        if (!get)
            break;
        r->status = 200;
        r->body = json_pack("{s:s}", "status", "ok");
        return false;
    case ROUTE_METADATA:
        if (!get)
            break;
        reply_metadata(srv, r);
        return false;
    case ROUTE_TOOL:
    case ROUTE_MCP:
        if (strcmp(method, "POST") != 0) {
            /* GET /mcp would open a server-to-client event stream; this
             * server sends no requests or notifications of its own. */
            reply_error(r, 405,
                        rq->route == ROUTE_MCP && strcmp(method, "GET") == 0
                            ? "This server offers no event stream: POST JSON-RPC here"
                            : "Use POST");
            r->allow = "POST";
            return false;
        }
        /* DNS rebinding: a browser page may not talk to the MCP endpoint
         * unless its origin is allowed. */
        const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
        if (rq->route == ROUTE_MCP && origin != NULL && !origin_allowed(srv, origin)) {
            reply_error(r, 403, "Origin not allowed");
            return false;
        }
        return authorise(srv, conn, method, url, rq, r);
    }
    reply_error(r, 405, "Use GET");
    r->allow = "GET, HEAD";
    return false;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    const server *srv = cls;
    request *rq = *con_cls;
    (void)version;

    if (rq == NULL) {
        if ((rq = calloc(1, sizeof(*rq))) == NULL)
            return MHD_NO;
        *con_cls = rq;
        rq->route = find_route(url);
        const char *length =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (length != NULL && strtoull(length, NULL, 10) > BODY_LIMIT) {
            /* Refused before a byte of it is read. */
            reply r = {0};
            reply_error(&r, 413, "The request body is limited to 16 KiB");
            return send_reply(conn, rq, method, url, &r);
        }
        admit(srv, conn, method, url, rq, &rq->early);
        return MHD_YES;
    }

    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (rq->early.status != 0 || rq->too_large)
            return MHD_YES; /* the answer is known: the body is read and dropped */
        if (n > BODY_LIMIT - rq->body_len) {
            rq->too_large = true;
            return MHD_YES;
        }
        char *grown = realloc(rq->body, rq->body_len + n + 1);
        if (grown == NULL)
            return MHD_NO;
        rq->body = grown;
        memcpy(rq->body + rq->body_len, upload_data, n);
        rq->body_len += n;
        rq->body[rq->body_len] = '\0';
        return MHD_YES;
    }

    if (rq->early.status != 0)
        return send_reply(conn, rq, method, url, &rq->early);
    reply r = {0};
    if (rq->too_large)
        reply_error(&r, 413, "The request body is limited to 16 KiB");
    else if (rq->route == ROUTE_TOOL)
        handle_tool(srv, rq, &r);
    else
        handle_mcp(srv, conn, rq, &r);
    return send_reply(conn, rq, method, url, &r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    request *rq = *con_cls;
    (void)cls;
    (void)conn;
    (void)toe;
    if (rq == NULL)
        return;
    reply_clear(&rq->early);
    free(rq->body);
    free(rq->client_id);
    free(rq->subject);
    free(rq);
    *con_cls = NULL;
}

static void on_mhd_error(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void on_mhd_error(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    (void)cls;
    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    log_line("libmicrohttpd: %s", line);
}

/* --- start-up --------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: " SERVER_NAME " --issuer URL --audience URI [options]\n"
            "\n"
            "The MarketPulse market calendar tool server: NYSE holidays over MCP\n"
            "(POST /mcp, Streamable HTTP) and plain JSON (POST /tools/" TOOL_NAME "),\n"
            "every call checked with an access token of the Mandate broker.\n"
            "\n"
            "  --listen HOST:PORT    address to listen on (default " DEFAULT_LISTEN ");\n"
            "                        port 0 picks a free one, printed to stderr as\n"
            "                        \"listening on port N\"\n"
            "  --issuer URL          the broker's issuer; its keys are found through\n"
            "                        URL/.well-known/oauth-authorization-server\n"
            "  --audience URI        this server's resource identifier: tokens must\n"
            "                        name it in aud\n"
            "  --scope SCOPES        scopes every call needs (default " DEFAULT_SCOPE
            "; \"\" for none)\n"
            "  --allow-origin ORIGIN a browser origin allowed on /mcp (repeatable; requests\n"
            "                        with any other Origin header get 403)\n"
            "  --threads N           worker threads (default %d)\n"
            "  --resource-metadata URL\n"
            "                        the RFC 9728 metadata URL this server's 401s name\n"
            "                        (default: its own, http://LISTEN" PRM_PATH ");\n"
            "                        behind a gateway, the gateway's\n"
            "  --public-url URL      the origin clients call (https://gateway:port):\n"
            "                        DPoP-bound tokens are checked with a proof for\n"
            "                        it and the request's path\n"
            "  --today YYYY-MM-DD    pretend today is this day (New York), for tests\n"
            "  --help                this text\n"
            "  --version             the version\n",
            DEFAULT_THREADS);
}

/* HOST:PORT, [IPv6]:PORT or a name; the first address that resolves. */
static bool parse_listen(const char *text, struct sockaddr_storage *ss, socklen_t *len_r)
{
    char host[256];
    const char *colon = strrchr(text, ':');
    if (colon == NULL || colon == text || colon[1] == '\0')
        return false;
    size_t host_len = (size_t)(colon - text);
    const char *h = text;
    if (text[0] == '[') {
        if (host_len < 3 || text[host_len - 1] != ']')
            return false;
        h = text + 1;
        host_len -= 2;
    }
    if (host_len >= sizeof(host))
        return false;
    memcpy(host, h, host_len);
    host[host_len] = '\0';
    char *end;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (*end != '\0' || port > 65535)
        return false;

    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || res == NULL)
        return false;
    bool ok = res->ai_addrlen <= sizeof(*ss);
    if (ok) {
        memcpy(ss, res->ai_addr, res->ai_addrlen);
        *len_r = (socklen_t)res->ai_addrlen;
    }
    freeaddrinfo(res);
    return ok;
}

int main(int argc, char **argv)
{
    enum {
        OPT_LISTEN = 256,
        OPT_ISSUER,
        OPT_AUDIENCE,
        OPT_SCOPE,
        OPT_TODAY,
        OPT_ORIGIN,
        OPT_THREADS,
        OPT_METADATA,
        OPT_PUBLIC_URL,
        OPT_VERSION
    };
    /* clang-format off */
    static const struct option opts[] = {
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"issuer", required_argument, NULL, OPT_ISSUER},
        {"audience", required_argument, NULL, OPT_AUDIENCE},
        {"scope", required_argument, NULL, OPT_SCOPE},
        {"today", required_argument, NULL, OPT_TODAY},
        {"allow-origin", required_argument, NULL, OPT_ORIGIN},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"resource-metadata", required_argument, NULL, OPT_METADATA},
        {"public-url", required_argument, NULL, OPT_PUBLIC_URL},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0}};
    /* clang-format on */
    server srv = {0};
    const char *listen_addr = DEFAULT_LISTEN;
    const char *scope = DEFAULT_SCOPE;
    const char *metadata_url = NULL;
    unsigned threads = DEFAULT_THREADS;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case OPT_LISTEN: listen_addr = optarg; break;
        case OPT_ISSUER: srv.issuer = optarg; break;
        case OPT_AUDIENCE: srv.audience = optarg; break;
        case OPT_SCOPE: scope = optarg; break;
        case OPT_TODAY:
            if (!nyse_date_parse(optarg, &srv.today) || srv.today.year < NYSE_YEAR_MIN ||
                srv.today.year > NYSE_YEAR_MAX) {
                fprintf(stderr, SERVER_NAME ": --today wants a date YYYY-MM-DD from %d to %d\n",
                        NYSE_YEAR_MIN, NYSE_YEAR_MAX);
                return 2;
            }
            srv.fixed_today = true;
            break;
        case OPT_ORIGIN:
            if (srv.origin_count == MAX_ORIGINS) {
                fprintf(stderr, SERVER_NAME ": at most %d --allow-origin\n", MAX_ORIGINS);
                return 2;
            }
            srv.origins[srv.origin_count++] = optarg;
            break;
        case OPT_THREADS: {
            char *end;
            unsigned long n = strtoul(optarg, &end, 10);
            if (*end != '\0' || n < 1 || n > 256) {
                fprintf(stderr, SERVER_NAME ": --threads wants 1 to 256\n");
                return 2;
            }
            threads = (unsigned)n;
            break;
        }
        case OPT_METADATA:
            if (strncmp(optarg, "http://", 7) != 0 && strncmp(optarg, "https://", 8) != 0) {
                fprintf(stderr, SERVER_NAME ": --resource-metadata wants an http(s) URL\n");
                return 2;
            }
            metadata_url = optarg;
            break;
        case OPT_PUBLIC_URL:
            if ((strncmp(optarg, "http://", 7) != 0 && strncmp(optarg, "https://", 8) != 0) ||
                optarg[strlen(optarg) - 1] == '/' || strpbrk(optarg, "?# ") != NULL) {
                fprintf(stderr, SERVER_NAME ": --public-url wants an http(s) origin "
                                            "(no trailing /)\n");
                return 2;
            }
            srv.public_url = optarg;
            break;
        case 'h': usage(stdout); return 0;
        case OPT_VERSION: printf(SERVER_NAME " " PACKAGE_VERSION "\n"); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || srv.issuer == NULL || srv.audience == NULL) {
        fprintf(stderr, SERVER_NAME ": %s\n",
                optind != argc ? "unexpected arguments"
                               : "--issuer and --audience are required");
        usage(stderr);
        return 2;
    }
    srv.scope = scope[strspn(scope, " ")] != '\0' ? scope : NULL;
    if (metadata_url != NULL && strpbrk(metadata_url, "\"\\ ") != NULL) {
        fprintf(stderr, SERVER_NAME ": --resource-metadata may not contain quotes, "
                                    "backslashes or spaces\n");
        return 2;
    }
    if (srv.scope != NULL && strpbrk(srv.scope, "\"\\") != NULL) {
        fprintf(stderr, SERVER_NAME ": --scope may not contain quotes or backslashes\n");
        return 2;
    }
    struct sockaddr_storage ss = {0};
    socklen_t ss_len = 0;
    if (!parse_listen(listen_addr, &ss, &ss_len)) {
        fprintf(stderr, SERVER_NAME ": --listen %s: not HOST:PORT\n", listen_addr);
        return 2;
    }

    char err[256] = "";
    mandate_verifier_config vc = {.issuer = srv.issuer, .audience = srv.audience};
    srv.verifier = mandate_verifier_new(&vc, err, sizeof(err));
    if (srv.verifier == NULL) {
        fprintf(stderr, SERVER_NAME ": %s\n", err);
        return 1;
    }
    json_error_t jerr;
    srv.tool = json_loads(tool_json, 0, &jerr);
    if (srv.tool == NULL) {
        fprintf(stderr, SERVER_NAME ": the tool description: %s\n", jerr.text);
        mandate_verifier_free(&srv.verifier);
        return 1;
    }

    /* SIGINT and SIGTERM are taken with sigwait below; the daemon's threads
     * inherit the mask. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* The socket is bound here, not by libmicrohttpd: its port (port 0
     * picks one) goes into the 401s' resource_metadata before any request
     * can arrive. */
    int listen_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (listen_fd < 0 ||
        setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(listen_fd, (struct sockaddr *)&ss, ss_len) != 0 || listen(listen_fd, 128) != 0) {
        fprintf(stderr, SERVER_NAME ": cannot listen on %s: %s\n", listen_addr,
                strerror(errno));
        if (listen_fd >= 0)
            close(listen_fd);
        json_decref(srv.tool);
        mandate_verifier_free(&srv.verifier);
        return 1;
    }
    struct sockaddr_storage bound = {0};
    socklen_t bound_len = sizeof(bound);
    unsigned port = 0;
    if (getsockname(listen_fd, (struct sockaddr *)&bound, &bound_len) == 0)
        port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                 : ((struct sockaddr_in *)&bound)->sin_port);
    srv.resource_metadata =
        metadata_url != NULL ? strdup(metadata_url) : own_metadata_url(listen_addr, port);

    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* clang-format off */
    struct MHD_Daemon *mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, &srv,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_error, NULL,
        MHD_OPTION_LISTEN_SOCKET, listen_fd,
        MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_CONNECTION_TIMEOUT, 30u,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_END);
    /* clang-format on */
    if (mhd == NULL) {
        fprintf(stderr, SERVER_NAME ": cannot listen on %s: %s\n", listen_addr,
                errno != 0 ? strerror(errno) : "libmicrohttpd refused");
        close(listen_fd);
        json_decref(srv.tool);
        free(srv.resource_metadata);
        mandate_verifier_free(&srv.verifier);
        return 1;
    }
    fprintf(stderr, SERVER_NAME ": listening on port %u\n", port);
    if (srv.fixed_today) {
        char day[11];
        log_line("today is %s (--today)", nyse_date_format(srv.today, day));
    }

    int sig = 0;
    while (sigwait(&stop, &sig) != 0)
        ;
    log_line("stopping on signal %d", sig);
    MHD_stop_daemon(mhd);
    json_decref(srv.tool);
    free(srv.resource_metadata);
    mandate_verifier_free(&srv.verifier);
    return 0;
}
