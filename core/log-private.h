/* The core's log: one line per event, to stderr or syslog, with the request
 * id of the calling thread on each line. Control characters in messages are
 * escaped, so text from outside cannot forge log lines. */
#ifndef MANDATE_LOG_PRIVATE_H
#define MANDATE_LOG_PRIVATE_H

#include <stdarg.h>
#include <stdbool.h>

#include <mandate/plugin.h>

/* destination: "stderr" or "syslog"; returns false for another value. */
bool mandate_log_setup(const char *destination, mandate_log_level level,
                       const char *ident);
bool mandate_log_level_parse(const char *name, mandate_log_level *level_r);
mandate_log_level mandate_log_get_level(void);

/* The request id of this thread, NULL outside a request. */
void mandate_log_set_request_id(const char *request_id);
const char *mandate_log_request_id(void);

void mandate_log_vwrite(mandate_log_level level, const char *instance, const char *file,
                        int line, const char *func, const char *fmt, va_list ap)
    MANDATE_PRINTF(6, 0);
void mandate_log_write(mandate_log_level level, const char *instance, const char *file,
                       int line, const char *func, const char *fmt, ...)
    MANDATE_PRINTF(6, 7);

#define LOG_AT(level, ...)                                                     \
    mandate_log_write((level), NULL, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define log_error(...) LOG_AT(MANDATE_LOG_ERROR, __VA_ARGS__)
#define log_warning(...) LOG_AT(MANDATE_LOG_WARNING, __VA_ARGS__)
#define log_info(...) LOG_AT(MANDATE_LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                         \
    do {                                                                       \
        if (mandate_log_get_level() >= MANDATE_LOG_DEBUG)                      \
            LOG_AT(MANDATE_LOG_DEBUG, __VA_ARGS__);                            \
    } while (0)

#endif
