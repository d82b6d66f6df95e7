#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "html-private.h"
#include "util-private.h"

char *mandate_html_escape(mandate_pool *pool, const char *text)
{
    if (text == NULL)
        return mandate_pool_strdup(pool, "");
    size_t len = 0;
    for (const char *p = text; *p != '\0'; p++) {
        switch (*p) {
        case '&': len += 5; break;
        case '<':
        case '>': len += 4; break;
        case '"': len += 6; break;
        case '\'': len += 5; break;
        default: len += 1; break;
        }
    }
    char *out = mandate_pool_alloc(pool, len + 1), *o = out;
    for (const char *p = text; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        switch (c) {
        case '&': memcpy(o, "&amp;", 5), o += 5; break;
        case '<': memcpy(o, "&lt;", 4), o += 4; break;
        case '>': memcpy(o, "&gt;", 4), o += 4; break;
        case '"': memcpy(o, "&quot;", 6), o += 6; break;
        case '\'': memcpy(o, "&#39;", 5), o += 5; break;
        default:
            if (c >= 0x20 || c == '\t' || c == '\n')
                *o++ = (char)c;
            break;
        }
    }
    *o = '\0';
    return out;
}

typedef struct renderer {
    mandate_pool *pool;
    mandate_strbuf out;
    const json_t *scopes[MANDATE_HTML_MAX_DEPTH + 1]; /* innermost last */
    size_t depth;
    const char *why;
} renderer;

/* A name's value: looked up in the innermost scope first. NULL: unset. */
static const json_t *lookup(const renderer *r, const char *name, size_t len)
{
    for (size_t i = r->depth; i-- > 0;) {
        const json_t *v = json_object_getn(r->scopes[i], name, len);
        if (v != NULL)
            return v;
    }
    return NULL;
}

static bool is_set(const json_t *v)
{
    return v != NULL && !json_is_null(v) && !json_is_false(v) &&
           !(json_is_string(v) && json_string_length(v) == 0) &&
           !(json_is_array(v) && json_array_size(v) == 0);
}

static bool name_valid(const char *name, size_t len)
{
    if (len == 0 || len > 64)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return false;
    }
    return true;
}

/* The end of the section opened by name at text: where its closing tag
 * starts (*close_r) and ends (*after_r); false when unclosed. Sections of
 * the same name nest. */
static bool find_close(const char *text, const char *name, size_t len, const char **close_r,
                       const char **after_r)
{
    int open = 1;
    for (const char *p = strstr(text, "{{"); p != NULL; p = strstr(p + 2, "{{")) {
        const char *end = strstr(p, "}}");
        if (end == NULL)
            return false;
        char kind = p[2];
        const char *tag = kind == '#' || kind == '^' || kind == '/' ? p + 3 : NULL;
        if (tag == NULL || (size_t)(end - tag) != len || memcmp(tag, name, len) != 0)
            continue;
        if (kind == '/' && --open == 0) {
            *close_r = p;
            *after_r = end + 2;
            return true;
        }
        if (kind != '/')
            open++;
    }
    return false;
}

static bool render(renderer *r, const char *text, const char *stop);

static bool section(renderer *r, char kind, const char *name, size_t len, const char *inside,
                    const char *close)
{
    const json_t *v = lookup(r, name, len);
    if (kind == '^')
        return is_set(v) ? true : render(r, inside, close);
    if (!is_set(v))
        return true;
    if (r->depth >= MANDATE_HTML_MAX_DEPTH) {
        r->why = "sections nested too deep";
        return false;
    }
    if (!json_is_array(v))
        return render(r, inside, close);
    size_t i;
    const json_t *item;
    json_array_foreach(v, i, item)
    {
        if (!json_is_object(item)) {
            r->why = "a list item is not an object";
            return false;
        }
        r->scopes[r->depth++] = item;
        bool ok = render(r, inside, close);
        r->depth--;
        if (!ok)
            return false;
    }
    return true;
}

static bool value(renderer *r, const char *name, size_t len)
{
    const json_t *v = lookup(r, name, len);
    if (v == NULL) {
        r->why = "a value the page names is missing";
        return false;
    }
    char number[64];
    const char *text = "";
    if (json_is_string(v))
        text = json_string_value(v);
    else if (json_is_integer(v))
        snprintf(number, sizeof(number), "%lld", (long long)json_integer_value(v)),
            text = number;
    else if (json_is_true(v))
        text = "true";
    else if (!json_is_null(v) && !json_is_false(v)) {
        r->why = "a value is neither text, a number nor a boolean";
        return false;
    }
    const char *escaped = mandate_html_escape(r->pool, text);
    mandate_strbuf_addn(&r->out, escaped, strlen(escaped));
    return true;
}

static bool render(renderer *r, const char *text, const char *stop)
{
    const char *p = text;
    while (p < stop) {
        const char *open = strstr(p, "{{");
        if (open == NULL || open >= stop) {
            mandate_strbuf_addn(&r->out, p, (size_t)(stop - p));
            return true;
        }
        mandate_strbuf_addn(&r->out, p, (size_t)(open - p));
        const char *end = strstr(open, "}}");
        if (end == NULL || end >= stop) {
            r->why = "an unclosed {{";
            return false;
        }
        char kind = open[2];
        const char *name = kind == '#' || kind == '^' || kind == '/' ? open + 3 : open + 2;
        size_t len = (size_t)(end - name);
        if (!name_valid(name, len)) {
            r->why = "a tag with a bad name";
            return false;
        }
        if (kind == '/') {
            r->why = "a section closed that was not open";
            return false;
        }
        if (kind == '#' || kind == '^') {
            const char *close, *after;
            if (!find_close(end + 2, name, len, &close, &after)) {
                r->why = "an unclosed section";
                return false;
            }
            if (!section(r, kind, name, len, end + 2, close))
                return false;
            p = after;
        } else {
            if (!value(r, name, len))
                return false;
            p = end + 2;
        }
    }
    return true;
}

char *mandate_html_render(mandate_pool *pool, const char *template_text, const json_t *view,
                          const char **why_r)
{
    renderer r = {.pool = pool};
    *why_r = NULL;
    if (!json_is_object(view)) {
        *why_r = "the view is not an object";
        return NULL;
    }
    r.scopes[r.depth++] = view;
    bool ok = render(&r, template_text, template_text + strlen(template_text));
    char *out = ok ? mandate_pool_strndup(pool, r.out.data ? r.out.data : "", r.out.len) : NULL;
    free(r.out.data);
    if (!ok)
        *why_r = r.why;
    return out;
}
