/* The path a gateway check judges: the original request's path, as the
 * gateway forwarded it (nginx's $request_uri, Envoy's :path), put into the
 * one form that target paths are compared in. Anything a tool server could
 * read two ways is refused rather than guessed at (issue 20). */
#ifndef MANDATE_GATEWAY_PATH_PRIVATE_H
#define MANDATE_GATEWAY_PATH_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

#include <mandate/plugin.h>

/* A protected resource behind a gateway (an MCP server): the paths it
 * covers, the audience its tokens must carry and the scopes a call needs
 * (the config's targets). */
typedef struct mandate_target {
    char *name;
    char **paths;            /* normalised (checked at load); NULL-terminated */
    char *audience;
    char **scopes;           /* all required; NULL-terminated, may be empty */
    char *resource_metadata; /* RFC 9728 URL for WWW-Authenticate; may be NULL */
    char *tenant;            /* only tokens of this tenant pass; NULL: any tenant */
    char *public_url;        /* scheme://host[:port] clients call, for DPoP htu; may be NULL */
} mandate_target;

/* Longest path (before the query) judged; a longer one is refused whole
 * rather than judged in part. Tool paths are short; nginx's default request
 * line buffer (large_client_header_buffers) is 8 KiB. */
#define MANDATE_GATEWAY_PATH_MAX 4096

/* Normalises raw[0..raw_len), a request-target in origin form ("/a/b?q"):
 *   - the query (from the first '?') is dropped;
 *   - refused: a path that is empty, does not begin with '/' or is longer
 *     than MANDATE_GATEWAY_PATH_MAX; a NUL, control, space, non-ASCII or
 *     other byte that RFC 3986 §3.3 does not allow unencoded in a path; a
 *     '#', a '\', a ';', an empty segment ("//"); a bad percent-escape; an
 *     escape of '/', '\', '%', ';', '?', '#', NUL or a control character;
 *     an encoded dot-segment ("%2e", ".%2E", ...); invalid UTF-8 once
 *     decoded; a segment that ends in '.' or ' ' once decoded (but for
 *     the dot-segments); a decoded path that Unicode NFKC normalisation
 *     changes (a fullwidth dot, a no-break space); a ".." that climbs
 *     above the root;
 *   - what is left is percent-decoded once and its dot-segments removed
 *     (RFC 3986 §5.2.4). Letter case and a trailing slash are kept.
 * On success *path_r (pool memory) is the normalised path: it begins with
 * '/', holds no '%', no "//", no "." or ".." segment, no NUL. On refusal,
 * false and *why_r says why, in words fit for error_description (static). */
bool mandate_gateway_path_normalise(mandate_pool *pool, const char *raw, size_t raw_len,
                                    char **path_r, const char **why_r);

/* Whether the normalised path lies under prefix, a target path (itself
 * normalised): on whole segments, so "/mcp/public" covers "/mcp/public",
 * "/mcp/public/" and "/mcp/public/x" but never "/mcp/publicity"; a prefix
 * that ends in '/' covers only what is below it ("/tools/" covers "/tools/x",
 * not "/tools"). fold_case compares ASCII letters without their case. */
bool mandate_gateway_path_covers(const char *prefix, const char *path, bool fold_case);

/* Of the count targets, the one with the longest path that covers path on
 * whole segments (mandate_gateway_path_covers); NULL when none does. path
 * must be normalised by mandate_gateway_path_normalise. fold_case ignores
 * ASCII letter case: the gateway check asks both ways and refuses a path
 * whose answers differ. */
const mandate_target *mandate_gateway_path_target_for(const mandate_target *targets,
                                                      size_t count, const char *path,
                                                      bool fold_case);

/* The target the original path raw[0..raw_len) leads to: normalised, then
 * matched with mandate_gateway_path_target_for. Paths are case-sensitive, but a
 * tool server may route without case (Express does by default), so a path
 * that matching without letter case would give to another target (or to a
 * target at all) is refused rather than judged. true with *target_r (NULL:
 * no target covers the path) and *path_r, the normalised path; false with
 * *why_r as mandate_gateway_path_normalise. */
bool mandate_gateway_path_target(mandate_pool *pool, const mandate_target *targets,
                                 size_t count, const char *raw, size_t raw_len,
                                 const mandate_target **target_r, char **path_r,
                                 const char **why_r);

#endif
