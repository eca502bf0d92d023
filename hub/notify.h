/*
 * notify.h - the notifier hook: hand a JSON document to an external command.
 *
 * Operators plug in their SMS gateway, webhook script or pager by naming a
 * command; for every notification the hub runs it with /bin/sh -c, writes
 * the JSON document to its stdin and closes it. The command runs on the
 * notifier's own worker thread, so notify_post() only copies the document
 * into a bounded queue and returns: it never blocks the daemon's main loop,
 * and a full queue drops the document and counts it. A command that outlives
 * the timeout is killed with its whole process group. Failures go to stderr
 * as one line without the command text (it may carry a gateway key) and are
 * counted; notify_stats() gives the counters for /metrics.
 *
 * The child gets stdin from the document, stdout to /dev/null, the hub's
 * stderr, no other inherited descriptors, default signal dispositions, and
 * its own process group. The worker reaps its own child with waitpid(pid):
 * the daemon must not set SIGCHLD to SIG_IGN nor reap with waitpid(-1).
 */
#ifndef FIREWATCH_HUB_NOTIFY_H
#define FIREWATCH_HUB_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#define NOTIFY_TIMEOUT_DEFAULT_MS 10000
#define NOTIFY_QUEUE_DEFAULT 64
#define NOTIFY_QUEUE_MAX 4096
#define NOTIFY_DOC_MAX 8192 /* longest document, in bytes */

struct notify_config {
    const char *command; /* run with /bin/sh -c; required, copied */
    int timeout_ms;      /* per run; 0 means NOTIFY_TIMEOUT_DEFAULT_MS */
    size_t queue_max;    /* documents waiting; 0 means NOTIFY_QUEUE_DEFAULT */
};

/* Counters since notify_new, all monotonic except queued. */
struct notify_stats {
    uint64_t posted;    /* accepted into the queue */
    uint64_t sent;      /* command ran and exited 0 */
    uint64_t failed;    /* could not start, exited non-zero or by a signal (timeouts included) */
    uint64_t timed_out; /* killed at the timeout (also counted in failed) */
    uint64_t dropped;   /* refused because the queue was full, or discarded by notify_free */
    uint64_t queued;    /* waiting now, not counting one running */
};

/* Creates a notifier and starts its worker thread. Returns NULL with errno
 * EINVAL (no command, negative timeout, queue_max over NOTIFY_QUEUE_MAX),
 * ENOMEM, or the pthread_create error. Free with notify_free. */
struct notifier *notify_new(const struct notify_config *cfg);

/* Stops the worker: lets a running command finish (bounded by the timeout),
 * discards documents still queued (counted as dropped), joins the thread and
 * frees everything. Accepts NULL. */
void notify_free(struct notifier *n);

/* Queues a copy of the len-byte document (NUL not required; it must not
 * contain one). Never blocks on the command. Returns 0, -EAGAIN when the
 * queue is full (the document is dropped and counted), -EMSGSIZE over
 * NOTIFY_DOC_MAX, -EINVAL, -ENOMEM. Safe from any thread. */
int notify_post(struct notifier *n, const char *doc, size_t len);

/* Copies the counters (all zero for a NULL notifier). Safe from any thread. */
void notify_stats(struct notifier *n, struct notify_stats *out);

#endif
