/*
 * log.c - see log.h.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *log_ident = "firewatch";
static enum log_level log_max = LOGL_INFO;
static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_init(const char *ident, enum log_level max_level)
{
    log_ident = ident ? ident : "firewatch";
    log_max = max_level;
}

int log_level_parse(const char *s, enum log_level *out)
{
    for (int i = 0; i <= LOGL_DEBUG; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    char line[1024], stamp[40] = "";
    if (level > log_max)
        return;
    const char *t = getenv("FW_LOG_TIME");
    if (t && *t == '1') {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        size_t n = strftime(stamp, sizeof stamp, "%H:%M:%S", &tm);
        snprintf(stamp + n, sizeof stamp - n, ".%03ld ", ts.tv_nsec / 1000000);
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s%s[%s]: %s\n", stamp, log_ident, level_names[level], line);
}

bool log_limit_allow(struct log_limit *l, int64_t now_ms, int burst, int period_ms, uint64_t *suppressed)
{
    if (now_ms - l->window_start_ms >= period_ms || now_ms < l->window_start_ms) {
        l->window_start_ms = now_ms;
        l->used = 0;
    }
    if (l->used >= burst) {
        l->suppressed++;
        return false;
    }
    l->used++;
    if (suppressed)
        *suppressed = l->suppressed;
    l->suppressed = 0;
    return true;
}
