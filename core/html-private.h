/* The broker's few pages (the IdP chooser, consent, errors, logout), made
 * from templates compiled into the program, where every value is escaped.
 *
 * Why not a template library: Debian 12 has none for C that escapes HTML
 * by itself (ctemplate is C++, CTPL neither escapes nor runs without
 * GLib, mustach is not packaged), and the pages need four features:
 * values, sections repeated over a list, sections shown when a value is
 * set, and nothing else. So a template is text with
 *   {{name}}              the value, HTML-escaped (there is no unescaped form)
 *   {{#name}}...{{/name}} the inside once per item of the list `name`, or once
 *                         when `name` is a set value, never when it is unset
 *   {{^name}}...{{/name}} the inside when `name` is unset or an empty list
 * and nothing can put text from outside into the page unescaped: a value is
 * always written through mandate_html_escape, whatever it holds. A missing
 * name, an unclosed section or a section nested deeper than
 * MANDATE_HTML_MAX_DEPTH is the template's bug: render fails (and the test
 * of each page says so), never prints half a page. */
#ifndef MANDATE_HTML_PRIVATE_H
#define MANDATE_HTML_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "pool-private.h"

#define MANDATE_HTML_MAX_DEPTH 4

/* text with &, <, >, " and ' escaped (and any byte below 0x20 other than
 * tab and newline dropped), into pool memory. */
char *mandate_html_escape(mandate_pool *pool, const char *text);

/* Renders template with the values of view, a JSON object whose members
 * are strings, numbers, booleans (sections), or arrays of objects (lists;
 * inside, names are looked up in the item first, then outward). NULL when
 * the template is wrong (see above); the reason in *why_r. */
char *mandate_html_render(mandate_pool *pool, const char *template_text, const json_t *view,
                          const char **why_r);

#endif
