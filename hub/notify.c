/*
 * notify.c - the notifier hook (see notify.h).
 *
 * One worker thread per notifier takes documents from a ring buffer guarded
 * by a mutex and runs the command for each in turn, so a slow SMS gateway
 * delays only later notifications, never the daemon. The child is started
 * with posix_spawn (safe in a threaded process, unlike fork followed by
 * arbitrary code) in a new process group, which is what lets a timeout kill
 * the shell together with anything it started. The document is written
 * through a non-blocking pipe so a command that never reads stdin cannot
 * wedge the worker either. The worker runs with every signal blocked: a
 * command exiting early raises EPIPE instead of SIGPIPE, and the daemon's
 * signal handlers never run on this thread.
 */
#include "notify.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define WAIT_STEP_MS 5 /* child exit polling step */

struct item {
    char *doc;
    size_t len;
};

struct notifier {
    char *command;
    int timeout_ms;
    size_t queue_max;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct item *ring; /* queue_max slots */
    size_t head, count;
    bool stop;
    struct notify_stats st; /* guarded by mu; queued is derived from count */
    pthread_t thread;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* Writes the document to the child's stdin until done, the child stops
 * reading (EPIPE: not our failure, the command decides), or the deadline. */
static void feed(int fd, const char *doc, size_t len, int64_t deadline)
{
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, doc + off, len - off);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno != EAGAIN)
            return;
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            return;
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        poll(&p, 1, left > 1000 ? 1000 : (int)left);
    }
}

enum outcome { OUT_SENT, OUT_FAILED, OUT_TIMED_OUT };

/* Runs the command once with doc on its stdin; bounded by the timeout. */
static enum outcome run_command(const struct notifier *n, const char *doc, size_t len)
{
    int64_t deadline = mono_ms() + n->timeout_ms;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) {
        fprintf(stderr, "notify: pipe: %s\n", strerror(errno));
        return OUT_FAILED;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_adddup2(&fa, fds[0], STDIN_FILENO);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    /* The daemon's sockets and database are none of the command's business. */
    posix_spawn_file_actions_addclosefrom_np(&fa, STDERR_FILENO + 1);
#endif
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    char *argv[] = {(char *)"sh", (char *)"-c", n->command, NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, "/bin/sh", &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(fds[0]);
    if (rc != 0) {
        close(fds[1]);
        fprintf(stderr, "notify: cannot start /bin/sh: %s\n", strerror(rc));
        return OUT_FAILED;
    }
    fcntl(fds[1], F_SETFL, O_NONBLOCK);
    feed(fds[1], doc, len, deadline);
    close(fds[1]);

    int status = 0;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR) {
            fprintf(stderr, "notify: waitpid: %s\n", strerror(errno));
            return OUT_FAILED;
        }
        if (mono_ms() >= deadline) {
            kill(-pid, SIGKILL); /* the whole group: the shell and its children */
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
            fprintf(stderr, "notify: command timed out after %d ms; process group killed\n", n->timeout_ms);
            return OUT_TIMED_OUT;
        }
        sleep_ms(WAIT_STEP_MS);
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return OUT_SENT;
    if (WIFEXITED(status))
        fprintf(stderr, "notify: command exited with status %d\n", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        fprintf(stderr, "notify: command killed by signal %d\n", WTERMSIG(status));
    return OUT_FAILED;
}

static void *worker(void *arg)
{
    struct notifier *n = arg;
    pthread_mutex_lock(&n->mu);
    for (;;) {
        while (!n->stop && n->count == 0)
            pthread_cond_wait(&n->cv, &n->mu);
        if (n->stop)
            break;
        struct item it = n->ring[n->head];
        n->head = (n->head + 1) % n->queue_max;
        n->count--;
        pthread_mutex_unlock(&n->mu);
        enum outcome o = run_command(n, it.doc, it.len);
        free(it.doc);
        pthread_mutex_lock(&n->mu);
        if (o == OUT_SENT) {
            n->st.sent++;
        } else {
            n->st.failed++;
            if (o == OUT_TIMED_OUT)
                n->st.timed_out++;
        }
    }
    /* Shutting down: what is still queued is not sent. */
    while (n->count > 0) {
        free(n->ring[n->head].doc);
        n->head = (n->head + 1) % n->queue_max;
        n->count--;
        n->st.dropped++;
    }
    pthread_mutex_unlock(&n->mu);
    return NULL;
}

struct notifier *notify_new(const struct notify_config *cfg)
{
    if (!cfg || !cfg->command || !cfg->command[0] || cfg->timeout_ms < 0 ||
        cfg->queue_max > NOTIFY_QUEUE_MAX) {
        errno = EINVAL;
        return NULL;
    }
    struct notifier *n = calloc(1, sizeof *n);
    if (!n)
        goto nomem;
    n->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : NOTIFY_TIMEOUT_DEFAULT_MS;
    n->queue_max = cfg->queue_max ? cfg->queue_max : NOTIFY_QUEUE_DEFAULT;
    n->command = strdup(cfg->command);
    n->ring = calloc(n->queue_max, sizeof *n->ring);
    if (!n->command || !n->ring)
        goto nomem;
    pthread_mutex_init(&n->mu, NULL);
    pthread_cond_init(&n->cv, NULL);
    /* The worker inherits a mask blocking everything (see the top). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&n->thread, NULL, worker, n);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        pthread_cond_destroy(&n->cv);
        pthread_mutex_destroy(&n->mu);
        free(n->ring);
        free(n->command);
        free(n);
        errno = rc;
        return NULL;
    }
    return n;
nomem:
    if (n) {
        free(n->ring);
        free(n->command);
        free(n);
    }
    errno = ENOMEM;
    return NULL;
}

void notify_free(struct notifier *n)
{
    if (!n)
        return;
    pthread_mutex_lock(&n->mu);
    n->stop = true;
    pthread_cond_signal(&n->cv);
    pthread_mutex_unlock(&n->mu);
    pthread_join(n->thread, NULL);
    pthread_cond_destroy(&n->cv);
    pthread_mutex_destroy(&n->mu);
    free(n->ring);
    free(n->command);
    free(n);
}

int notify_post(struct notifier *n, const char *doc, size_t len)
{
    if (!n || !doc || memchr(doc, '\0', len))
        return -EINVAL;
    if (len > NOTIFY_DOC_MAX)
        return -EMSGSIZE;
    char *copy = malloc(len ? len : 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, doc, len);
    pthread_mutex_lock(&n->mu);
    if (n->count == n->queue_max || n->stop) {
        n->st.dropped++;
        pthread_mutex_unlock(&n->mu);
        free(copy);
        return -EAGAIN;
    }
    n->ring[(n->head + n->count) % n->queue_max] = (struct item){copy, len};
    n->count++;
    n->st.posted++;
    pthread_cond_signal(&n->cv);
    pthread_mutex_unlock(&n->mu);
    /* The ring owns copy now; the worker frees it after the run. */
    // cppcheck-suppress memleak
    return 0;
}

void notify_stats(struct notifier *n, struct notify_stats *out)
{
    if (!n) {
        memset(out, 0, sizeof *out);
        return;
    }
    pthread_mutex_lock(&n->mu);
    *out = n->st;
    out->queued = n->count;
    pthread_mutex_unlock(&n->mu);
}
