#include "config.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "log-private.h"
#include "text-encoding.h"

#define LOG_LINE_MAX 2048

static _Atomic int log_level = MANDATE_LOG_INFO;
static _Atomic bool log_syslog = false;
static _Thread_local const char *thread_request_id;

static const char *const level_names[] = {"error", "warning", "info", "debug"};

bool mandate_log_level_parse(const char *name, mandate_log_level *level_r)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *level_r = (mandate_log_level)i;
            return true;
        }
    }
    return false;
}

bool mandate_log_setup(const char *destination, mandate_log_level level, const char *ident)
{
    bool to_syslog;
    if (destination == NULL || strcmp(destination, "stderr") == 0)
        to_syslog = false;
    else if (strcmp(destination, "syslog") == 0)
        to_syslog = true;
    else
        return false;
    if (to_syslog && !atomic_load(&log_syslog))
        openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
    atomic_store(&log_syslog, to_syslog);
    atomic_store(&log_level, (int)level);
    return true;
}

mandate_log_level mandate_log_get_level(void)
{
    return (mandate_log_level)atomic_load(&log_level);
}

void mandate_log_set_request_id(const char *request_id)
{
    thread_request_id = request_id;
}

const char *mandate_log_request_id(void)
{
    return thread_request_id;
}

/* Copies src into dst, escaping control characters and backslashes. */
static size_t escape_into(char *dst, size_t cap, size_t pos, const char *src)
{
    for (; *src != '\0' && pos + 5 < cap; src++) {
        unsigned char c = (unsigned char)*src;
        if (c < 0x20 || c == 0x7f || c == '\\') {
            dst[pos++] = '\\';
            if (c == '\\') {
                dst[pos++] = '\\';
            } else {
                dst[pos++] = 'x';
                mandate_hex_encode(&c, 1, dst + pos);
                pos += 2;
            }
        } else {
            dst[pos++] = (char)c;
        }
    }
    dst[pos] = '\0';
    return pos;
}

void mandate_log_vwrite(mandate_log_level level, const char *instance, const char *file,
                        int line, const char *func, const char *fmt, va_list ap)
{
    if ((int)level > atomic_load(&log_level))
        return;
    char message[LOG_LINE_MAX];
    vsnprintf(message, sizeof(message), fmt, ap);

    char out[LOG_LINE_MAX + 256];
    size_t pos = 0;
    if (thread_request_id != NULL)
        pos += (size_t)snprintf(out + pos, sizeof(out) - pos, "[%s] ", thread_request_id);
    if (instance != NULL)
        pos += (size_t)snprintf(out + pos, sizeof(out) - pos, "%s: ", instance);
    pos = escape_into(out, sizeof(out) - 64, pos, message);
    if (level == MANDATE_LOG_ERROR || level == MANDATE_LOG_DEBUG) {
        const char *base = strrchr(file, '/');
        snprintf(out + pos, sizeof(out) - pos, " (%s:%d %s)", base ? base + 1 : file,
                 line, func);
    }

    if (atomic_load(&log_syslog)) {
        static const int priorities[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
        syslog(priorities[level], "%s", out);
        return;
    }
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    /* one fprintf per line: stdio locks the stream, so lines never interleave */
    fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s\n", tm.tm_year + 1900,
            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
            ts.tv_nsec / 1000000, level_names[level], out);
}

void mandate_log_write(mandate_log_level level, const char *instance, const char *file,
                       int line, const char *func, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mandate_log_vwrite(level, instance, file, line, func, fmt, ap);
    va_end(ap);
}
