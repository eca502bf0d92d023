/*
 * harness.c - see harness.h. Output is line-oriented so the runner can count
 * results from any suite, C or shell, the same way.
 */
#include "harness.h"

#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int failures;   /* in the running test */
static int row_fails;  /* rows reported as failed in the running test */
static int rows_total; /* failed rows across the suite, for the exit code */

void th_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    failures++;
    fprintf(stdout, "#   %s:%d: check failed: ", file, line);
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

int th_failures(void)
{
    return failures;
}

bool th_report(bool pass, const char *fmt, ...)
{
    va_list ap;
    fputs(pass ? "ok - " : "not ok - ", stdout);
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
    if (!pass) {
        row_fails++;
        rows_total++;
    }
    return pass;
}

int th_main(const struct th_test *tests, size_t n, int argc, char **argv)
{
    int failed = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (size_t i = 0; i < n; i++) {
        if (argc > 1 && !strstr(tests[i].name, argv[1]))
            continue;
        failures = 0;
        row_fails = 0;
        tests[i].fn();
        /* A test whose rows all reported themselves adds no line of its own
         * unless a plain check failed. */
        bool pass = failures == 0 && row_fails == 0;
        printf("%s - %s\n", pass ? "ok" : "not ok", tests[i].name);
        if (!pass)
            failed++;
    }
    return failed || rows_total ? 1 : 0;
}

int64_t th_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool th_wait_until(bool (*cond)(void *), void *arg, int timeout_ms)
{
    int64_t deadline = th_now_ms() + timeout_ms;
    for (;;) {
        if (cond(arg))
            return true;
        if (th_now_ms() >= deadline)
            return cond(arg);
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

const char *th_tmpdir(const char *tag)
{
    static char path[512];
    const char *base = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/fw-%s-XXXXXX", base && *base ? base : "/tmp", tag);
    if (!mkdtemp(path)) {
        fprintf(stderr, "th_tmpdir: mkdtemp %s: %s\n", path, strerror(errno));
        abort();
    }
    return path;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

void th_rmtree(const char *path)
{
    if (path && *path)
        nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

const char *th_root_path(const char *rel)
{
    static char path[1024];
    const char *root = getenv("FW_ROOT");
    snprintf(path, sizeof path, "%s/%s", root && *root ? root : ".", rel);
    return path;
}

const char *th_bin_path(const char *name)
{
    static char path[1024];
    const char *b = getenv("FW_BUILD");
    snprintf(path, sizeof path, "%s/bin/%s", b && *b ? b : "build/san", name);
    return path;
}
