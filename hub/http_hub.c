/*
 * http_hub.c - see http_hub.h. One queue of dashboard actions shared by the
 * HTTP worker threads (producers) and the main loop (the one consumer), one
 * metrics text swapped under a lock, and the server itself.
 *
 * An action lives on its worker's stack. It moves QUEUED -> TAKEN (the main
 * loop copied it and is running it, lock released) -> DONE. A worker whose
 * deadline passes while its action is still QUEUED unlinks it and returns
 * -ETIMEDOUT; one whose action is TAKEN waits for DONE, which the main loop
 * reaches without blocking (the engine is in memory), so the stack memory
 * is never written after its owner returned.
 */
#include "http_hub.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "readyscan.h"
#include "store.h"

#define METRICS_MAX (32 * 1024)

enum act_phase { ACT_QUEUED, ACT_TAKEN, ACT_DONE };

struct action {
    enum http_incident_op op;
    uint32_t id;
    char zone[FW_ID_MAX + 1];
    char user[INCIDENT_USER_MAX + 1];
    enum act_phase phase;
    int rc;
    uint32_t new_id;
    struct action *next;
};

struct http_hub {
    struct http_server *srv;
    struct stream *live;
    int efd;
    pthread_mutex_t mu;
    pthread_cond_t done; /* signalled when any action reaches DONE */
    struct action *head, *tail;
    size_t queued;
    bool closing;
    uint64_t served;
    char *metrics; /* malloc'd Prometheus text, under mu */
    size_t metrics_len;
    /* readiness thread */
    pthread_t rd_thread;
    bool rd_started, rd_due, rd_stop; /* under mu */
    pthread_cond_t rd_cv;
    char database[256];
};

/* Last published score of a zone (readiness thread only). */
struct zscore {
    char zone[FW_ID_MAX + 1];
    unsigned score;
    enum readiness_level level;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Scores every zone and publishes those that moved; the first pass only
 * learns the scores (a burst of every zone would push the ring's recent
 * events out). Returns the new table (or the old one on failure). */
static struct zscore *rescore(struct http_hub *w, struct store *db, struct zscore *old, size_t *n_old,
                              bool first)
{
    struct readyscan_zone *z = NULL;
    int n = readyscan_zones(db, NULL, wall_ms(), &z);
    if (n < 0)
        return old;
    struct zscore *now = n ? calloc((size_t)n, sizeof *now) : NULL;
    if (n && !now) {
        free(z);
        return old;
    }
    for (int i = 0; i < n; i++) {
        snprintf(now[i].zone, sizeof now[i].zone, "%s", z[i].id);
        now[i].score = z[i].r.score;
        now[i].level = z[i].r.level;
        const struct zscore *was = NULL;
        for (size_t k = 0; k < *n_old && !was; k++)
            if (strcmp(old[k].zone, now[i].zone) == 0)
                was = &old[k];
        if (first || (was && was->score == now[i].score && was->level == now[i].level))
            continue;
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "zone", now[i].zone);
        cJSON_AddNumberToObject(d, "score", now[i].score);
        cJSON_AddStringToObject(d, "level", readiness_level_name(now[i].level));
        http_hub_publish(w, "readiness", d);
    }
    free(z);
    free(old);
    *n_old = (size_t)n;
    return now;
}

static void *readiness_main(void *arg)
{
    struct http_hub *w = arg;
    char why[256];
    struct store *db = store_open(w->database, STORE_NO_CHECKPOINT, why, sizeof why);
    if (!db) {
        log_error("stream: readiness is not published: %s", why);
        return NULL;
    }
    struct zscore *scores = NULL;
    size_t n = 0;
    scores = rescore(w, db, scores, &n, true);
    int64_t next = mono_ms() + HTTP_HUB_READINESS_EVERY_MS;
    bool settle = false;
    pthread_mutex_lock(&w->mu);
    while (!w->rd_stop) {
        if (!w->rd_due || mono_ms() < next) {
            struct timespec until;
            clock_gettime(CLOCK_MONOTONIC, &until);
            until.tv_sec += 1;
            pthread_cond_timedwait(&w->rd_cv, &w->mu, &until);
            continue;
        }
        /* One more pass a period later: what changed may reach the
         * database only with the daemon's next batch of node state. */
        settle = !settle;
        w->rd_due = settle;
        pthread_mutex_unlock(&w->mu);
        scores = rescore(w, db, scores, &n, false);
        next = mono_ms() + HTTP_HUB_READINESS_EVERY_MS;
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    free(scores);
    store_close(db);
    return NULL;
}

void http_hub_readiness_changed(struct http_hub *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->rd_due = true;
    pthread_cond_signal(&w->rd_cv);
    pthread_mutex_unlock(&w->mu);
}

static void wake(struct http_hub *w)
{
    uint64_t one = 1;
    ssize_t n = write(w->efd, &one, sizeof one);
    (void)n; /* a full counter still wakes the reader */
}

/* Removes a from the queue (mu held). */
static void unlink_action(struct http_hub *w, struct action *a)
{
    struct action **pp = &w->head, *prev = NULL;
    while (*pp && *pp != a) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp)
        return;
    *pp = a->next;
    if (w->tail == a)
        w->tail = prev;
    w->queued--;
}

/* The incident_action hook: runs on an HTTP worker thread. */
static int hook_action(void *ctx, enum http_incident_op op, uint32_t id, const char *zone, const char *user,
                       uint32_t *new_id, char *msg, size_t msg_size)
{
    struct http_hub *w = ctx;
    struct action a;
    memset(&a, 0, sizeof a);
    a.op = op;
    a.id = id;
    snprintf(a.zone, sizeof a.zone, "%s", zone ? zone : "");
    snprintf(a.user, sizeof a.user, "%s", user ? user : "");
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += HTTP_HUB_ACTION_TIMEOUT_MS / 1000;
    deadline.tv_nsec += (long)(HTTP_HUB_ACTION_TIMEOUT_MS % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->mu);
    if (w->closing || w->queued >= HTTP_HUB_QUEUE_MAX) {
        bool closing = w->closing;
        pthread_mutex_unlock(&w->mu);
        snprintf(msg, msg_size, "%s",
                 closing ? "the hub is stopping; try again" : "the hub is busy; try again");
        return -ETIMEDOUT;
    }
    if (w->tail)
        w->tail->next = &a;
    else
        w->head = &a;
    w->tail = &a;
    w->queued++;
    wake(w);
    while (a.phase != ACT_DONE) {
        int rc = pthread_cond_timedwait(&w->done, &w->mu, &deadline);
        if (rc == ETIMEDOUT && a.phase == ACT_QUEUED) {
            unlink_action(w, &a);
            pthread_mutex_unlock(&w->mu);
            snprintf(msg, msg_size, "the hub did not answer in time; try again");
            return -ETIMEDOUT;
        }
    }
    pthread_mutex_unlock(&w->mu);
    if (new_id)
        *new_id = a.new_id;
    if (a.rc < 0)
        snprintf(msg, msg_size, "%s",
                 a.rc == -ETIMEDOUT ? "the hub is stopping; try again" : incident_strerror(a.rc));
    return a.rc;
}

void http_hub_serve(struct http_hub *w, http_hub_action_fn fn, void *ctx)
{
    if (!w)
        return;
    uint64_t v;
    ssize_t r = read(w->efd, &v, sizeof v);
    (void)r;
    pthread_mutex_lock(&w->mu);
    struct action *a;
    while ((a = w->head) != NULL) {
        w->head = a->next;
        if (!w->head)
            w->tail = NULL;
        w->queued--;
        a->phase = ACT_TAKEN;
        struct action copy = *a;
        pthread_mutex_unlock(&w->mu);
        uint32_t new_id = 0;
        int rc = fn(ctx, copy.op, copy.id, copy.zone[0] ? copy.zone : NULL, copy.user, &new_id);
        pthread_mutex_lock(&w->mu);
        a->rc = rc;
        a->new_id = new_id;
        a->phase = ACT_DONE;
        w->served++;
        pthread_cond_broadcast(&w->done);
    }
    pthread_mutex_unlock(&w->mu);
}

/* The metrics hook: runs on an HTTP polling thread. */
static int hook_metrics(void *ctx, char *buf, size_t size)
{
    struct http_hub *w = ctx;
    pthread_mutex_lock(&w->mu);
    size_t n = w->metrics && w->metrics_len < size ? w->metrics_len : 0;
    if (n)
        memcpy(buf, w->metrics, n);
    pthread_mutex_unlock(&w->mu);
    return (int)n;
}

struct http_hub *http_hub_start(const struct hub_config *cfg)
{
    if (!cfg->http_listen[0]) {
        errno = 0;
        return NULL;
    }
    struct http_hub *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->efd < 0) {
        int e = errno;
        free(w);
        errno = e;
        return NULL;
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->done, &ca);
    pthread_cond_init(&w->rd_cv, &ca);
    pthread_condattr_destroy(&ca);
    snprintf(w->database, sizeof w->database, "%s", cfg->database);

    struct http_config c;
    http_config_defaults(&c);
    c.listen = cfg->http_listen;
    c.database = cfg->database;
    c.web_root = cfg->http_web_root;
    c.lang = cfg->http_lang;
    c.secure_cookie = cfg->http_secure_cookie;
    c.hub_id = cfg->hub_id;
    c.public_url = cfg->public_url;
    c.cap_sender = cfg->cap_sender;
    c.cap_sender_name = cfg->cap_sender_name;
    c.regional = strcmp(cfg->mode, "regional") == 0;
    struct http_hooks hk = {.ctx = w, .incident_action = hook_action, .metrics = hook_metrics};
    w->srv = http_start(&c, &hk);
    if (!w->srv) {
        int e = errno ? errno : EIO;
        close(w->efd);
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->done);
        pthread_cond_destroy(&w->rd_cv);
        free(w);
        errno = e;
        return NULL;
    }
    w->live = http_stream(w->srv);
    int rc = pthread_create(&w->rd_thread, NULL, readiness_main, w);
    if (rc == 0)
        w->rd_started = true;
    else
        log_error("stream: cannot start the readiness thread: %s", strerror(rc));
    return w;
}

int http_hub_fd(const struct http_hub *w)
{
    return w ? w->efd : -1;
}

void http_hub_publish(struct http_hub *w, const char *type, cJSON *doc)
{
    char *text = w && doc ? cJSON_PrintUnformatted(doc) : NULL;
    cJSON_Delete(doc);
    if (!text)
        return;
    int64_t rc = stream_publish(w->live, type, text);
    if (rc < 0)
        log_warn("stream: %s event not published: %s", type, strerror((int)-rc));
    free(text);
}

/* ---- /metrics ------------------------------------------------------------ */

struct mbuf {
    char *p;
    size_t len, cap;
};

static void mb_printf(struct mbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void mb_printf(struct mbuf *b, const char *fmt, ...)
{
    if (b->len >= b->cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= b->cap - b->len)
        b->len = b->cap; /* full: the page is cut, never overrun */
    else
        b->len += (size_t)n;
}

static void mb_head(struct mbuf *b, const char *name, const char *type, const char *help)
{
    mb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void mb_one(struct mbuf *b, const char *name, const char *type, const char *help, uint64_t v)
{
    mb_head(b, name, type, help);
    mb_printf(b, "%s %" PRIu64 "\n", name, v);
}

void http_hub_set_metrics(struct http_hub *w, const struct http_hub_metrics *m)
{
    if (!w)
        return;
    struct mbuf b = {malloc(METRICS_MAX), 0, METRICS_MAX};
    if (!b.p)
        return;
    const struct ingest_stats *is = &m->ingest;
    mb_one(&b, "firewatch_messages_received_total", "counter", "MQTT messages delivered to the hub.",
           is->received);
    mb_head(&b, "firewatch_messages_rejected_total", "counter",
            "Messages refused (malformed topic or payload, unknown node, duplicate), by reason.");
    for (int i = 1; i < FW_E_COUNT; i++)
        mb_printf(&b, "firewatch_messages_rejected_total{reason=\"%s\"} %" PRIu64 "\n",
                  fw_err_name((enum fw_err)i), is->rejected[i]);
    mb_printf(&b, "firewatch_messages_rejected_total{reason=\"unknown_node\"} %" PRIu64 "\n",
              is->unknown_node + m->unknown_node);
    mb_printf(&b, "firewatch_messages_rejected_total{reason=\"duplicate\"} %" PRIu64 "\n", is->duplicates);
    mb_one(&b, "firewatch_events_stored_total", "counter", "Node events committed before their PUBACK.",
           is->events_stored);
    mb_one(&b, "firewatch_event_write_errors_total", "counter", "Node events the database refused.",
           is->event_errors);
    mb_one(&b, "firewatch_readings_stored_total", "counter", "Readings committed.", m->writer.readings);
    mb_one(&b, "firewatch_readings_dropped_total", "counter", "Readings dropped (queue or writer full).",
           is->readings_dropped + m->writer.readings_dropped);
    mb_one(&b, "firewatch_sequence_gaps_total", "counter", "Readings and events missed, by sequence number.",
           m->seq_gaps);
    mb_one(&b, "firewatch_queue_depth", "gauge", "Messages waiting for the main loop.", is->queue_depth);
    mb_one(&b, "firewatch_writer_commits_total", "counter", "Writer transactions committed.",
           m->writer.commits);
    mb_one(&b, "firewatch_writer_errors_total", "counter", "Writer transactions that failed.",
           m->writer.errors);
    mb_one(&b, "firewatch_broker_connected", "gauge", "1 while connected to the broker.",
           is->connected ? 1 : 0);
    mb_one(&b, "firewatch_broker_connects_total", "counter", "Successful broker connections.", is->connects);
    mb_one(&b, "firewatch_storage_trouble", "gauge",
           "1 while the database refuses writes (disk full or failing): events wait in the spill file.",
           is->storage_trouble || m->writer.storage_trouble ? 1 : 0);
    mb_one(&b, "firewatch_events_spilled_total", "counter",
           "Node events the database refused, made durable in the spill file.", is->events_spilled);
    mb_one(&b, "firewatch_events_held", "gauge", "Spilled events still waiting for the database.",
           is->events_held);
    mb_one(&b, "firewatch_writes_held", "gauge", "Other writes waiting for the database to accept writes.",
           m->writer.ops_held);
    mb_one(&b, "firewatch_writes_dropped_total", "counter", "Held writes given up (over their bound).",
           m->writer.ops_dropped);

    mb_head(&b, "firewatch_event_commit_seconds", "histogram",
            "Time to commit a node event to SQLite before its PUBACK.");
    for (int i = 0; i < INGEST_COMMIT_BUCKETS; i++)
        mb_printf(&b, "firewatch_event_commit_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
                  (double)ingest_commit_bounds_ms[i] / 1000.0, is->commit_le[i]);
    mb_printf(&b,
              "firewatch_event_commit_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n"
              "firewatch_event_commit_seconds_sum %.6f\nfirewatch_event_commit_seconds_count %" PRIu64 "\n",
              is->commit_count, (double)is->commit_us_sum / 1e6, is->commit_count);

    mb_head(&b, "firewatch_incidents_open", "gauge", "Open incidents by state.");
    for (int s = 0; s < INCIDENT_STATE_COUNT; s++)
        if (s != INCIDENT_CLEARED && s != INCIDENT_DISMISSED)
            mb_printf(&b, "firewatch_incidents_open{state=\"%s\"} %" PRIu64 "\n",
                      incident_state_name((enum incident_state)s), m->incidents_open[s]);
    mb_head(&b, "firewatch_incidents_closed_total", "counter", "Incidents closed since the hub started.");
    mb_printf(&b, "firewatch_incidents_closed_total{state=\"cleared\"} %" PRIu64 "\n",
              m->incidents_closed[INCIDENT_CLEARED]);
    mb_printf(&b, "firewatch_incidents_closed_total{state=\"dismissed\"} %" PRIu64 "\n",
              m->incidents_closed[INCIDENT_DISMISSED]);
    mb_one(&b, "firewatch_incident_last_id", "gauge", "Highest incident id handed out.", m->last_incident_id);
    mb_head(&b, "firewatch_nodes", "gauge", "Registered nodes by health.");
    mb_printf(&b,
              "firewatch_nodes{health=\"ok\"} %" PRIu64 "\nfirewatch_nodes{health=\"offline\"} %" PRIu64
              "\nfirewatch_nodes{health=\"trouble\"} %" PRIu64
              "\nfirewatch_nodes{health=\"uncommissioned\"} %" PRIu64 "\n",
              m->nodes_ok, m->nodes_offline, m->nodes_trouble, m->nodes_uncommissioned);
    mb_head(&b, "firewatch_troubles_open", "gauge", "Open troubles by kind.");
    for (size_t i = 0; i < m->n_trouble_kinds && i < 8; i++)
        mb_printf(&b, "firewatch_troubles_open{kind=\"%s\"} %" PRIu64 "\n",
                  m->trouble_names[i] ? m->trouble_names[i] : "?", m->troubles_open[i]);
    mb_one(&b, "firewatch_zones", "gauge", "Zones (household groups).", m->zones);
    pthread_mutex_lock(&w->mu);
    uint64_t served = w->served;
    pthread_mutex_unlock(&w->mu);
    mb_one(&b, "firewatch_dashboard_actions_total", "counter",
           "Acknowledge, clear and drill requests from the dashboard and API served by the main loop.",
           served);
    if (b.len >= b.cap) {
        log_warn("metrics: the page is over %d bytes; cut", METRICS_MAX);
        b.len = b.cap - 1;
    }
    pthread_mutex_lock(&w->mu);
    free(w->metrics);
    w->metrics = b.p;
    w->metrics_len = b.len;
    pthread_mutex_unlock(&w->mu);
}

void http_hub_stop(struct http_hub *w)
{
    if (!w)
        return;
    /* Waiting actions get their answer now, and new ones are refused, so
     * http_stop, which waits for them, never waits long. */
    pthread_mutex_lock(&w->mu);
    w->closing = true;
    struct action *a;
    while ((a = w->head) != NULL) {
        w->head = a->next;
        a->rc = -ETIMEDOUT;
        a->phase = ACT_DONE;
    }
    w->tail = NULL;
    w->queued = 0;
    pthread_cond_broadcast(&w->done);
    w->rd_stop = true;
    pthread_cond_signal(&w->rd_cv);
    pthread_mutex_unlock(&w->mu);
    if (w->rd_started)
        pthread_join(w->rd_thread, NULL);
    http_stop(w->srv);
    close(w->efd);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->done);
    pthread_cond_destroy(&w->rd_cv);
    free(w->metrics);
    free(w);
}
