/*
 * log.h - one-line logging to stderr for both daemons, with rate limits.
 *
 * Lines go to stderr with a level and the program name (systemd's journal
 * adds the time; FW_LOG_TIME=1 adds it for terminals and tests). Any thread
 * may log: each line is a single stdio call. Input the daemons cannot
 * control (malformed payloads, unknown nodes) is logged through a
 * log_limit so a flood cannot fill the disk; secrets are never passed in.
 */
#ifndef FIREWATCH_LOG_H
#define FIREWATCH_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level { LOGL_ERROR, LOGL_WARN, LOGL_INFO, LOGL_DEBUG };

/* Sets the program name shown on each line and the most verbose level kept. */
void log_init(const char *ident, enum log_level max_level);

/* Parses "error", "warn", "info" or "debug". Returns 0 or -EINVAL. */
int log_level_parse(const char *s, enum log_level *out);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOGL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOGL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOGL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOGL_DEBUG, __VA_ARGS__)

/* A token window: at most burst lines per period_ms. Zero-initialise. */
struct log_limit {
    int64_t window_start_ms;
    int used;
    uint64_t suppressed; /* lines refused since the last one allowed */
};

/* True when a line may be logged now. When lines were suppressed, the next
 * allowed call sets *suppressed (if not NULL) to how many, so the caller can
 * say "(N similar suppressed)". Not thread-safe: one limiter per thread. */
bool log_limit_allow(struct log_limit *l, int64_t now_ms, int burst, int period_ms, uint64_t *suppressed);

#endif
