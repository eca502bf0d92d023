/*
 * harness.h - the in-tree unit test harness.
 *
 * A suite is a table of named test functions; th_main() runs them (or those
 * whose name contains argv[1]) and prints one line per test, "ok - name" or
 * "not ok - name", which scripts/run-tests.sh counts. Checks record a failure
 * with file and line and carry on, so one run shows every broken assertion.
 * Table-driven tests report each row with th_report(). Waiting is always on
 * a condition with a deadline (th_wait_until), never a bare sleep.
 */
#ifndef FIREWATCH_HARNESS_H
#define FIREWATCH_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct th_test {
    const char *name;
    void (*fn)(void);
};

/* Records a failed check in the running test (or row) and prints why. */
void th_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Failures recorded since the current test started. */
int th_failures(void);

/* Reports one extra result line (a table row) for the running test. Returns pass. */
bool th_report(bool pass, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Runs the table and returns the process exit code (0 when all passed). */
int th_main(const struct th_test *tests, size_t n, int argc, char **argv);

/* Milliseconds on the monotonic clock. */
int64_t th_now_ms(void);

/* Polls cond(arg) every few milliseconds until it is true or timeout_ms has
 * passed. Returns the last value of cond. */
bool th_wait_until(bool (*cond)(void *), void *arg, int timeout_ms);

/* Makes a fresh private directory under $TMPDIR (or /tmp) and returns its
 * path in a static buffer that the next call overwrites. The runner removes
 * nothing: tests clean up with th_rmtree. */
const char *th_tmpdir(const char *tag);

/* Removes a directory tree made by th_tmpdir. */
void th_rmtree(const char *path);

/* Path of a file under the repository root ($FW_ROOT, default "."), in a
 * static buffer. */
const char *th_root_path(const char *rel);

/* Path of a built program ($FW_BUILD/bin/name, default build/san/bin). */
const char *th_bin_path(const char *name);

#define CHECK(cond)                                                                                          \
    do {                                                                                                     \
        if (!(cond))                                                                                         \
            th_fail(__FILE__, __LINE__, "%s", #cond);                                                        \
    } while (0)

#define CHECK_INT(a, b)                                                                                      \
    do {                                                                                                     \
        long long th_a_ = (long long)(a), th_b_ = (long long)(b);                                            \
        if (th_a_ != th_b_)                                                                                  \
            th_fail(__FILE__, __LINE__, "%s == %s (%lld != %lld)", #a, #b, th_a_, th_b_);                    \
    } while (0)

#define CHECK_STR(a, b)                                                                                      \
    do {                                                                                                     \
        const char *th_a_ = (a), *th_b_ = (b);                                                               \
        if (!th_a_ || !th_b_ || strcmp(th_a_, th_b_) != 0)                                                   \
            th_fail(__FILE__, __LINE__, "%s == %s (\"%s\" != \"%s\")", #a, #b, th_a_ ? th_a_ : "(null)",     \
                    th_b_ ? th_b_ : "(null)");                                                               \
    } while (0)

#define TH_TEST(fn)                                                                                          \
    {                                                                                                        \
#fn, fn                                                                                              \
    }
#define TH_MAIN(...)                                                                                         \
    int main(int argc, char **argv)                                                                          \
    {                                                                                                        \
        static const struct th_test th_tests_[] = {__VA_ARGS__};                                             \
        return th_main(th_tests_, sizeof th_tests_ / sizeof th_tests_[0], argc, argv);                       \
    }

#endif
