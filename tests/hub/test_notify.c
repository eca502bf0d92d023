/*
 * test_notify.c - the notifier hook with real commands: the document
 * arrives on stdin byte for byte and in order, failures and timeouts are
 * counted, a hanging command is killed with its whole process group at the
 * timeout, and notify_post never blocks while it hangs. Every wait is on a
 * condition with a deadline.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "harness.h"
#include "notify.h"

#define WAIT_MS 10000 /* generous: sanitizers and a busy CI machine */

struct done_arg {
    struct notifier *n;
    uint64_t want; /* sent + failed reaching this */
};

static bool runs_done(void *arg)
{
    struct done_arg *d = arg;
    struct notify_stats st;
    notify_stats(d->n, &st);
    return st.sent + st.failed >= d->want;
}

static bool wait_runs(struct notifier *n, uint64_t want)
{
    struct done_arg d = {n, want};
    return th_wait_until(runs_done, &d, WAIT_MS);
}

static size_t slurp(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    size_t len = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[len] = '\0';
    return len;
}

static void test_document_on_stdin(void)
{
    char dir[512], cmd[1400], path[600], buf[4096];
    snprintf(dir, sizeof dir, "%s", th_tmpdir("notify"));
    snprintf(path, sizeof path, "%s/out.json", dir);
    snprintf(cmd, sizeof cmd, "cat > '%s'", path);
    struct notifier *n = notify_new(&(struct notify_config){.command = cmd, .timeout_ms = 5000});
    CHECK(n != NULL);
    if (!n)
        return;
    const char *doc =
        "{\"event\":\"alarm\",\"incident\":7,\"zone\":\"z1\",\"what\":\"fire alarm in zone z1\"}";
    CHECK_INT(notify_post(n, doc, strlen(doc)), 0);
    CHECK(wait_runs(n, 1));
    struct notify_stats st;
    notify_stats(n, &st);
    CHECK_INT(st.posted, 1);
    CHECK_INT(st.sent, 1);
    CHECK_INT(st.failed, 0);
    CHECK_INT(slurp(path, buf, sizeof buf), strlen(doc));
    CHECK_STR(buf, doc);
    notify_free(n);
    th_rmtree(dir);
}

static void test_documents_in_order(void)
{
    char dir[512], cmd[1400], path[600], buf[4096];
    snprintf(dir, sizeof dir, "%s", th_tmpdir("notify"));
    snprintf(path, sizeof path, "%s/log", dir);
    snprintf(cmd, sizeof cmd, "cat >> '%s'; echo >> '%s'", path, path);
    struct notifier *n = notify_new(&(struct notify_config){.command = cmd});
    CHECK(n != NULL);
    if (!n)
        return;
    CHECK_INT(notify_post(n, "{\"n\":1}", 7), 0);
    CHECK_INT(notify_post(n, "{\"n\":2}", 7), 0);
    CHECK_INT(notify_post(n, "{\"n\":3}", 7), 0);
    CHECK(wait_runs(n, 3));
    slurp(path, buf, sizeof buf);
    CHECK_STR(buf, "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n");
    notify_free(n);
    th_rmtree(dir);
}

static void test_failures_counted(void)
{
    static const struct {
        const char *cmd;
        bool ok;
    } rows[] = {
        {"exit 0", true},            /* never reads stdin: no SIGPIPE, no failure */
        {"exit 3", false},           /* non-zero status */
        {"kill -TERM $$", false},    /* killed by a signal */
        {"/nonexistent/cmd", false}, /* the shell cannot find it: 127 */
        {"read line; exit 0", true}, /* reads part of it */
    };
    char big[NOTIFY_DOC_MAX];
    memset(big, 'x', sizeof big); /* fills the pipe buffer a fair way */
    big[0] = '"';
    big[sizeof big - 1] = '"';
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct notifier *n = notify_new(&(struct notify_config){.command = rows[i].cmd, .timeout_ms = 5000});
        bool ok = n && notify_post(n, big, sizeof big) == 0 && wait_runs(n, 1);
        struct notify_stats st = {0};
        if (n)
            notify_stats(n, &st);
        ok = ok && st.sent == (rows[i].ok ? 1u : 0u) && st.failed == (rows[i].ok ? 0u : 1u) &&
             st.timed_out == 0;
        th_report(ok, "command '%s' counted as %s", rows[i].cmd, rows[i].ok ? "sent" : "failed");
        notify_free(n);
    }
}

/* The pid's process is gone, or a zombie nobody has reaped yet. */
static bool pid_dead(void *arg)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%ld/stat", *(long *)arg);
    if (slurp(path, buf, sizeof buf) == 0)
        return true;
    const char *p = strrchr(buf, ')');
    return p && (p[2] == 'Z' || p[2] == 'X');
}

static bool file_has_pid(void *arg)
{
    char buf[64];
    return slurp(arg, buf, sizeof buf) > 0 && strchr(buf, '\n') != NULL;
}

static void test_hanging_command_killed_and_post_never_blocks(void)
{
    char dir[512], cmd[1200], path[600], buf[64];
    snprintf(dir, sizeof dir, "%s", th_tmpdir("notify"));
    snprintf(path, sizeof path, "%s/child.pid", dir);
    /* The shell starts a grandchild and waits: killing only the shell would
     * leave the sleep behind. */
    snprintf(cmd, sizeof cmd, "sleep 60 & echo $! > '%s'; wait", path);
    struct notifier *n =
        notify_new(&(struct notify_config){.command = cmd, .timeout_ms = 1000, .queue_max = 2});
    CHECK(n != NULL);
    if (!n)
        return;
    int64_t t0 = th_now_ms();
    CHECK_INT(notify_post(n, "{}", 2), 0);
    CHECK(th_wait_until(file_has_pid, path, WAIT_MS)); /* it is running and hanging */
    slurp(path, buf, sizeof buf);
    long pid = strtol(buf, NULL, 10);
    CHECK(pid > 1);

    /* While it hangs, posting stays instant: 2 fit, the rest are dropped. */
    int64_t p0 = th_now_ms();
    int accepted = 0, refused = 0;
    for (int i = 0; i < 50; i++) {
        int rc = notify_post(n, "{\"i\":1}", 7);
        accepted += rc == 0;
        refused += rc == -EAGAIN;
    }
    int64_t post_ms = th_now_ms() - p0;
    CHECK(post_ms < 500); /* blocking on the command would take its full second */
    CHECK_INT(accepted, 2);
    CHECK_INT(refused, 48);

    CHECK(wait_runs(n, 1));
    int64_t took = th_now_ms() - t0;
    CHECK(took >= 1000);
    struct notify_stats st;
    notify_stats(n, &st);
    CHECK_INT(st.timed_out >= 1, 1);
    CHECK_INT(st.failed >= 1, 1);
    CHECK_INT(st.dropped, 48);
    CHECK_INT(st.sent, 0);

    if (pid > 1)
        CHECK(th_wait_until(pid_dead, &pid, WAIT_MS)); /* the grandchild died with its group */

    /* Free waits for the running command (bounded by its timeout) and drops
     * the one still queued. */
    int64_t f0 = th_now_ms();
    notify_free(n);
    CHECK(th_now_ms() - f0 < 5000);
    th_rmtree(dir);
}

static void test_bad_arguments(void)
{
    errno = 0;
    CHECK(notify_new(&(struct notify_config){.command = ""}) == NULL);
    CHECK_INT(errno, EINVAL);
    CHECK(notify_new(NULL) == NULL);
    CHECK(notify_new(&(struct notify_config){.command = "true", .timeout_ms = -1}) == NULL);
    CHECK(notify_new(&(struct notify_config){.command = "true", .queue_max = NOTIFY_QUEUE_MAX + 1}) == NULL);
    struct notifier *n = notify_new(&(struct notify_config){.command = "true"});
    CHECK(n != NULL);
    if (!n)
        return;
    static char big[NOTIFY_DOC_MAX + 1];
    memset(big, ' ', sizeof big);
    CHECK_INT(notify_post(n, big, sizeof big), -EMSGSIZE);
    CHECK_INT(notify_post(n, "{\0}", 3), -EINVAL);
    CHECK_INT(notify_post(NULL, "{}", 2), -EINVAL);
    struct notify_stats st;
    notify_stats(n, &st);
    CHECK_INT(st.posted, 0);
    notify_free(n);
    notify_free(NULL);
}

TH_MAIN(TH_TEST(test_document_on_stdin), TH_TEST(test_documents_in_order), TH_TEST(test_failures_counted),
        TH_TEST(test_hanging_command_killed_and_post_never_blocks), TH_TEST(test_bad_arguments))
