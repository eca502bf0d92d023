/*
 * writer.c - see writer.h. Two lists wait under one mutex: readings (the
 * bulk, capped) and everything else (rare, never dropped). The thread swaps
 * both out and commits them together, so the lock is held only for the swap.
 */
#include "writer.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "clock.h"
#include "log.h"
#include "readyscan.h"

/* Operations kept for another try while the database refuses writes (disk
 * full): beyond this the oldest are dropped and counted. Node state and
 * troubles are rebuilt from live traffic; incidents are a handful. */
#define OPS_HELD_MAX 20000
#define RETRY_MS 500 /* the batch tick while the database is refusing writes */

enum wop_kind {
    WOP_NODE,
    WOP_INCIDENT,
    WOP_INCIDENT_CLOSE,
    WOP_TIMELINE,
    WOP_TROUBLE_OPEN,
    WOP_TROUBLE_CLEAR,
    WOP_TROUBLE_NOTIFIED,
    WOP_COMMAND_DONE,
    WOP_RETENTION,
    WOP_READINESS,
    WOP_ENGINE_MARK,
};

struct wop {
    enum wop_kind kind;
    int64_t ts, id;
    uint32_t incident;
    char what[32];
    char who[72];
    char node[FW_ID_MAX + 1];
    char detail[128];
    char fw[FW_FW_MAX + 1];
    void *obj; /* struct store_node or struct store_incident, malloc'd */
};

struct batch {
    struct store_reading *readings;
    size_t n_readings, cap_readings;
    struct wop *ops;
    size_t n_ops, cap_ops;
};

struct writer {
    struct store *db;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    struct batch pending;
    size_t batch_max, readings_cap;
    int batch_ms;
    bool stopping;
    uint64_t gen_queued, gen_done; /* flush generations */
    struct writer_stats stats;
    bool failing;      /* the last transaction was refused for want of space or I/O */
    int test_delay_ms; /* FW_TEST_WRITER_DELAY_MS: a slow disk, for the fault tests */
};

static void batch_free(struct batch *b)
{
    for (size_t i = 0; i < b->n_ops; i++)
        free(b->ops[i].obj);
    free(b->readings);
    free(b->ops);
    memset(b, 0, sizeof *b);
}

static int exec_op(struct store *db, const struct wop *o)
{
    switch (o->kind) {
    case WOP_NODE: return store_node_save(db, o->obj, o->fw);
    case WOP_INCIDENT: return store_incident_save(db, o->obj);
    case WOP_INCIDENT_CLOSE: return store_incident_close(db, o->incident, o->what, o->ts, o->who);
    case WOP_TIMELINE: return store_timeline_add(db, o->incident, o->ts, o->what, o->who, o->node, o->detail);
    case WOP_TROUBLE_OPEN: {
        int64_t rc = store_trouble_open(db, o->node, o->what, o->ts, o->detail);
        return rc < 0 ? (int)rc : 0;
    }
    case WOP_TROUBLE_CLEAR: {
        int rc = store_trouble_clear(db, o->node, o->what, o->ts);
        return rc < 0 ? rc : 0;
    }
    case WOP_TROUBLE_NOTIFIED: return store_trouble_notified(db, o->node, o->what, o->ts);
    case WOP_COMMAND_DONE: return store_command_done(db, o->id, o->detail, o->ts);
    case WOP_ENGINE_MARK: {
        char sql[96];
        snprintf(sql, sizeof sql, "INSERT OR REPLACE INTO meta(key, value) VALUES ('engine_mark', %lld)",
                 (long long)o->ts);
        return sqlite3_exec(store_handle(db), sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
    }
    case WOP_RETENTION:
    case WOP_READINESS: return 0; /* run after the batch, in their own transactions */
    }
    return -EINVAL;
}

/* Errors that pass (space comes back, the disk recovers): worth a retry. */
static bool transient(int rc)
{
    return rc == -ENOSPC || rc == -EIO || rc == -EBUSY || rc == -EAGAIN || rc == -ENOMEM;
}

/* After a refused transaction: puts b's operations back in front of what
 * was queued meanwhile (order matters: an incident row before its close),
 * keeping at most OPS_HELD_MAX, and drops b's readings (QoS 0 data the
 * nodes send again every interval). Takes the ops out of b. */
static void hold_ops(struct writer *w, struct batch *b)
{
    size_t keep = 0;
    for (size_t i = 0; i < b->n_ops; i++) {
        if (b->ops[i].kind == WOP_RETENTION || b->ops[i].kind == WOP_READINESS)
            continue; /* asked again within the hour */
        b->ops[keep++] = b->ops[i];
    }
    b->n_ops = keep;
    pthread_mutex_lock(&w->mu);
    struct batch *p = &w->pending;
    w->stats.readings_dropped += b->n_readings;
    size_t total = keep + p->n_ops, drop = total > OPS_HELD_MAX ? total - OPS_HELD_MAX : 0;
    struct wop *ops = malloc((total - drop + 1) * sizeof *ops);
    if (!ops) {
        w->stats.ops_dropped += keep;
        pthread_mutex_unlock(&w->mu);
        return; /* batch_free releases them */
    }
    size_t n = 0;
    for (size_t i = 0; i < keep; i++) {
        if (i < drop)
            free(b->ops[i].obj);
        else
            ops[n++] = b->ops[i];
    }
    for (size_t i = 0; i < p->n_ops; i++) {
        if (keep + i < drop)
            free(p->ops[i].obj);
        else
            ops[n++] = p->ops[i];
    }
    w->stats.ops_dropped += drop;
    free(p->ops);
    p->ops = ops;
    p->n_ops = n;
    p->cap_ops = total - drop + 1;
    w->stats.ops_held = n;
    pthread_mutex_unlock(&w->mu);
    b->n_ops = 0;
}

/* Commits one batch. A node that disappeared meanwhile (-ENOENT) is not an
 * error worth losing the batch over. When the database refuses the batch
 * for want of space or I/O (disk full), it is rolled back and its
 * operations are held for the next tick (see hold_ops): a storage trouble,
 * logged once when it starts and once when it ends, and counted. */
static void commit_batch(struct writer *w, struct batch *b)
{
    if (b->n_readings == 0 && b->n_ops == 0)
        return;
    store_test_limits(w->db);
    if (w->test_delay_ms > 0) {
        struct timespec ts = {w->test_delay_ms / 1000, (long)(w->test_delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    int rc = store_begin(w->db);
    if (rc == 0 && b->n_readings > 0) {
        int n = store_readings_write(w->db, b->readings, b->n_readings);
        rc = n < 0 ? n : 0;
    }
    for (size_t i = 0; rc == 0 && i < b->n_ops; i++) {
        int r = exec_op(w->db, &b->ops[i]);
        if (r < 0 && r != -ENOENT)
            rc = r;
    }
    if (rc == 0)
        rc = store_commit(w->db);
    else if (transient(rc))
        sqlite3_exec(store_handle(w->db), "ROLLBACK", NULL, NULL, NULL);
    else
        store_commit(w->db); /* nothing useful to keep; commit what stands rather than spin */
    pthread_mutex_lock(&w->mu);
    bool was_failing = w->failing;
    if (rc == 0) {
        w->stats.commits++;
        w->stats.readings += b->n_readings;
        w->failing = false;
        w->stats.storage_trouble = false;
        w->stats.ops_held = 0;
    } else {
        w->stats.errors++;
        w->failing = transient(rc);
        w->stats.storage_trouble = w->failing;
    }
    pthread_mutex_unlock(&w->mu);
    if (rc < 0 && transient(rc)) {
        if (!was_failing)
            log_error("storage trouble: the database refuses writes (%s); holding incidents, troubles and "
                      "node state for another try, dropping readings meanwhile",
                      strerror(-rc));
        hold_ops(w, b);
        return;
    }
    if (rc == 0 && was_failing)
        log_warn("storage recovered: held writes committed");
    for (size_t i = 0; i < b->n_ops; i++) {
        if (b->ops[i].kind == WOP_READINESS) {
            int n = readyscan_snapshot(w->db, b->ops[i].ts);
            if (n < 0)
                log_warn("readiness snapshot failed: %s", strerror(-n));
            continue;
        }
        if (b->ops[i].kind != WOP_RETENTION)
            continue;
        int removed = store_retention(w->db, b->ops[i].ts, (int)b->ops[i].id);
        if (removed > 0)
            log_info("retention: removed %d raw readings older than %lld days", removed,
                     (long long)b->ops[i].id);
    }
}

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        int64_t ns = until.tv_nsec +
                     (int64_t)(w->failing && w->batch_ms < RETRY_MS ? RETRY_MS : w->batch_ms) * 1000000;
        until.tv_sec += (time_t)(ns / 1000000000);
        until.tv_nsec = (long)(ns % 1000000000);
        while (!w->stopping && (w->gen_queued == w->gen_done || w->failing) &&
               w->pending.n_readings < w->batch_max) {
            if (pthread_cond_timedwait(&w->wake, &w->mu, &until) == ETIMEDOUT)
                break;
        }
        struct batch b = w->pending;
        memset(&w->pending, 0, sizeof w->pending);
        uint64_t gen = w->gen_queued;
        bool stop = w->stopping;
        pthread_mutex_unlock(&w->mu);
        commit_batch(w, &b);
        batch_free(&b);
        pthread_mutex_lock(&w->mu);
        w->gen_done = gen;
        pthread_cond_broadcast(&w->done);
        /* At a stop, a database that still refuses writes gives up the held ops
         * (they are rebuilt from the restored state and live traffic). */
        if (stop && ((w->pending.n_readings == 0 && w->pending.n_ops == 0) || w->failing))
            break;
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

struct writer *writer_new(const char *database, bool sync_full, int batch_ms, size_t batch_max, char *why,
                          size_t why_size)
{
    struct writer *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(why, why_size, "out of memory");
        errno = ENOMEM;
        return NULL;
    }
    w->batch_ms = batch_ms > 0 ? batch_ms : 250;
    w->batch_max = batch_max > 0 ? batch_max : 2000;
    w->readings_cap = w->batch_max * 8;
    const char *delay = getenv("FW_TEST_WRITER_DELAY_MS");
    if (delay) {
        char *end;
        long v = strtol(delay, &end, 10);
        if (end != delay && *end == '\0' && v > 0 && v <= 60000)
            w->test_delay_ms = (int)v;
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->wake, NULL);
    pthread_cond_init(&w->done, NULL);
    w->db = store_open(database, sync_full ? STORE_SYNC_FULL : 0, why, why_size);
    if (!w->db) {
        int e = errno;
        writer_free(w);
        errno = e;
        return NULL;
    }
    int rc = pthread_create(&w->thread, NULL, writer_main, w);
    if (rc != 0) {
        snprintf(why, why_size, "cannot start the writer thread: %s", strerror(rc));
        writer_free(w);
        errno = rc;
        return NULL;
    }
    w->started = true;
    return w;
}

void writer_free(struct writer *w)
{
    if (!w)
        return;
    if (w->started) {
        pthread_mutex_lock(&w->mu);
        w->stopping = true;
        pthread_cond_signal(&w->wake);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thread, NULL);
    }
    batch_free(&w->pending);
    store_close(w->db);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->wake);
    pthread_cond_destroy(&w->done);
    free(w);
}

int writer_reading(struct writer *w, const struct store_reading *r)
{
    pthread_mutex_lock(&w->mu);
    struct batch *b = &w->pending;
    int rc = 0;
    if (b->n_readings >= w->readings_cap) {
        w->stats.readings_dropped++;
        rc = -ENOBUFS;
    } else {
        if (b->n_readings == b->cap_readings) {
            size_t cap = b->cap_readings ? b->cap_readings * 2 : 256;
            struct store_reading *p = realloc(b->readings, cap * sizeof *p);
            if (!p) {
                pthread_mutex_unlock(&w->mu);
                return -ENOMEM;
            }
            b->readings = p;
            b->cap_readings = cap;
        }
        b->readings[b->n_readings++] = *r;
        if (b->n_readings == w->batch_max)
            pthread_cond_signal(&w->wake);
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* Appends op (taking ownership of op->obj). */
static int push(struct writer *w, struct wop *op)
{
    pthread_mutex_lock(&w->mu);
    struct batch *b = &w->pending;
    if (b->n_ops == b->cap_ops) {
        size_t cap = b->cap_ops ? b->cap_ops * 2 : 64;
        struct wop *p = realloc(b->ops, cap * sizeof *p);
        if (!p) {
            pthread_mutex_unlock(&w->mu);
            free(op->obj);
            return -ENOMEM;
        }
        b->ops = p;
        b->cap_ops = cap;
    }
    b->ops[b->n_ops++] = *op;
    pthread_mutex_unlock(&w->mu);
    return 0;
}

static void copy(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

int writer_node(struct writer *w, const struct store_node *n, const char *fw)
{
    struct wop op = {.kind = WOP_NODE};
    struct store_node *c = malloc(sizeof *c);
    if (!c)
        return -ENOMEM;
    *c = *n;
    op.obj = c;
    copy(op.fw, sizeof op.fw, fw);
    return push(w, &op);
}

int writer_incident(struct writer *w, const struct store_incident *inc)
{
    struct wop op = {.kind = WOP_INCIDENT};
    struct store_incident *c = malloc(sizeof *c);
    if (!c)
        return -ENOMEM;
    *c = *inc;
    op.obj = c;
    return push(w, &op);
}

int writer_incident_close(struct writer *w, uint32_t id, const char *state, int64_t ts_ms, const char *who)
{
    struct wop op = {.kind = WOP_INCIDENT_CLOSE, .incident = id, .ts = ts_ms};
    copy(op.what, sizeof op.what, state);
    copy(op.who, sizeof op.who, who);
    return push(w, &op);
}

int writer_timeline(struct writer *w, uint32_t incident, int64_t ts_ms, const char *what, const char *who,
                    const char *node, const char *detail)
{
    struct wop op = {.kind = WOP_TIMELINE, .incident = incident, .ts = ts_ms};
    copy(op.what, sizeof op.what, what);
    copy(op.who, sizeof op.who, who);
    copy(op.node, sizeof op.node, node);
    copy(op.detail, sizeof op.detail, detail);
    return push(w, &op);
}

int writer_trouble(struct writer *w, bool open, const char *node, const char *kind, int64_t ts_ms,
                   const char *detail)
{
    struct wop op = {.kind = open ? WOP_TROUBLE_OPEN : WOP_TROUBLE_CLEAR, .ts = ts_ms};
    copy(op.node, sizeof op.node, node);
    copy(op.what, sizeof op.what, kind);
    copy(op.detail, sizeof op.detail, detail);
    return push(w, &op);
}

int writer_trouble_notified(struct writer *w, const char *node, const char *kind, int64_t ts_ms)
{
    struct wop op = {.kind = WOP_TROUBLE_NOTIFIED, .ts = ts_ms};
    copy(op.node, sizeof op.node, node);
    copy(op.what, sizeof op.what, kind);
    return push(w, &op);
}

int writer_command_done(struct writer *w, int64_t id, const char *result, int64_t ts_ms)
{
    struct wop op = {.kind = WOP_COMMAND_DONE, .id = id, .ts = ts_ms};
    copy(op.detail, sizeof op.detail, result);
    return push(w, &op);
}

int writer_retention(struct writer *w, int64_t now_ms, int retention_days)
{
    struct wop op = {.kind = WOP_RETENTION, .id = retention_days, .ts = now_ms};
    return push(w, &op);
}

int writer_engine_mark(struct writer *w, const struct ingest_item *items, size_t n)
{
    int64_t mark = INT64_MIN;
    for (size_t i = 0; i < n; i++)
        if (items[i].channel == FW_CH_NODE_EVENT && items[i].rx_ms > mark)
            mark = items[i].rx_ms;
    if (mark == INT64_MIN)
        return 0;
    pthread_mutex_lock(&w->mu);
    struct batch *b = &w->pending;
    if (b->n_ops > 0 && b->ops[b->n_ops - 1].kind == WOP_ENGINE_MARK) {
        /* Nothing came between: move the waiting mark forward instead. */
        if (mark > b->ops[b->n_ops - 1].ts)
            b->ops[b->n_ops - 1].ts = mark;
        pthread_mutex_unlock(&w->mu);
        return 0;
    }
    pthread_mutex_unlock(&w->mu);
    struct wop op = {.kind = WOP_ENGINE_MARK, .ts = mark};
    return push(w, &op);
}

int writer_readiness(struct writer *w, int64_t now_ms)
{
    struct wop op = {.kind = WOP_READINESS, .ts = now_ms};
    return push(w, &op);
}

void writer_flush(struct writer *w)
{
    pthread_mutex_lock(&w->mu);
    uint64_t gen = ++w->gen_queued;
    pthread_cond_signal(&w->wake);
    while (w->gen_done < gen && !(w->stopping && !w->started))
        pthread_cond_wait(&w->done, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

void writer_get_stats(struct writer *w, struct writer_stats *out)
{
    pthread_mutex_lock(&w->mu);
    *out = w->stats;
    pthread_mutex_unlock(&w->mu);
}
