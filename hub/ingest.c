/*
 * ingest.c - see ingest.h. Three kinds of state live here and each has one
 * owner: the paho handle (paho's threads and the main loop's publishes,
 * which paho serialises), the queue (a mutex and a condition variable
 * shared with the main loop), and the receive thread's node map with the
 * event connection (touched only by the callback, behind its own mutex so a
 * second paho thread could never race it).
 */
#include "ingest.h"

#include <MQTTAsync.h>
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "spill.h"
#include "store.h"

#define SUB_TOPIC FW_TOPIC_ROOT "/node/+/+"
#define SPILL_MAX_BYTES (1024 * 1024) /* about 6,000 events held while the database refuses them */
#define SPILL_RETRY_MS 500

/* What the receive thread remembers per node: enough to de-duplicate
 * redelivered events without a query per event. */
struct cnode {
    char id[FW_ID_MAX + 1];
    uint32_t boot;
    int64_t last_seq; /* highest event seq stored for boot; -1 none */
};

struct ingest {
    MQTTAsync client;
    struct ingest_config cfg;
    char url[256], client_id[64], username[64], password[256], cafile[256], database[256];
    int efd;

    pthread_mutex_t qmu;
    pthread_cond_t qnotfull;
    struct ingest_item *ring;
    size_t cap, head, count;
    atomic_bool stopping;

    pthread_mutex_t cmu; /* the receive thread's node map and event connection */
    struct cnode *cnodes;
    size_t n_cnodes, cap_cnodes;
    struct store *events;
    struct log_limit limit;
    struct spill *spill; /* events the database refused, durable (see spill.h) */
    pthread_t drainer;   /* retries the spill into the database while it is not empty */
    bool drainer_started;
    bool replay_alarms; /* start-up replay of the spill to the engine: which pass */
    pthread_cond_t dwake;
    atomic_bool storage_failing;
    atomic_ullong events_spilled, events_held;

    atomic_bool connected;
    atomic_bool connecting;
    atomic_llong retry_at_ms;
    atomic_ullong received, malformed, unknown_node, duplicates, events_stored, event_errors,
        readings_dropped, connects;
    atomic_ullong rejected[FW_E_COUNT]; /* for /metrics */
    atomic_ullong commit_count, commit_us_sum, commit_le[INGEST_COMMIT_BUCKETS];
    char extra_topic[256];
    char raw_filter[128];
};

const int64_t ingest_commit_bounds_ms[INGEST_COMMIT_BUCKETS] = {1, 5, 25, 100, 500, 2500};

/* Counts one event commit's duration for the latency histogram. */
static void count_commit(struct ingest *in, int64_t us)
{
    atomic_fetch_add(&in->commit_count, 1);
    atomic_fetch_add(&in->commit_us_sum, (unsigned long long)(us > 0 ? us : 0));
    for (int i = 0; i < INGEST_COMMIT_BUCKETS; i++)
        if (us <= ingest_commit_bounds_ms[i] * 1000)
            atomic_fetch_add(&in->commit_le[i], 1);
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void wake(struct ingest *in)
{
    uint64_t one = 1;
    ssize_t n = write(in->efd, &one, sizeof one);
    (void)n; /* a full counter still wakes the reader */
}

/* Queues a copy of item. Readings are dropped when the queue is full;
 * status and events wait for room, since the main loop must see them. */
static bool enqueue(struct ingest *in, const struct ingest_item *item)
{
    pthread_mutex_lock(&in->qmu);
    while (in->count == in->cap) {
        if (item->channel == FW_CH_NODE_READING || atomic_load(&in->stopping)) {
            pthread_mutex_unlock(&in->qmu);
            return false;
        }
        pthread_cond_wait(&in->qnotfull, &in->qmu);
    }
    in->ring[(in->head + in->count) % in->cap] = *item;
    in->count++;
    pthread_mutex_unlock(&in->qmu);
    wake(in);
    return true;
}

size_t ingest_drain(struct ingest *in, struct ingest_item *out, size_t max)
{
    uint64_t v;
    ssize_t r = read(in->efd, &v, sizeof v);
    (void)r;
    pthread_mutex_lock(&in->qmu);
    size_t n = 0;
    while (n < max && in->count > 0) {
        out[n++] = in->ring[in->head];
        in->head = (in->head + 1) % in->cap;
        in->count--;
    }
    bool more = in->count > 0;
    pthread_cond_broadcast(&in->qnotfull);
    pthread_mutex_unlock(&in->qmu);
    if (more)
        wake(in);
    return n;
}

int ingest_fd(const struct ingest *in)
{
    return in->efd;
}

static int cnode_cmp(const void *key, const void *elem)
{
    return strcmp((const char *)key, ((const struct cnode *)elem)->id);
}

/* Finds node in the receive thread's map, loading it from the database on a
 * miss. NULL when the node is unknown (or the database failed). cmu held. */
static struct cnode *cnode_get(struct ingest *in, const char *node)
{
    struct cnode *c = in->n_cnodes ? bsearch(node, in->cnodes, in->n_cnodes, sizeof *c, cnode_cmp) : NULL;
    if (c)
        return c;
    uint32_t boot = 0;
    int64_t last = -1;
    if (store_node_ingest_state(in->events, node, &boot, &last) < 0)
        return NULL;
    if (in->n_cnodes == in->cap_cnodes) {
        size_t cap = in->cap_cnodes ? in->cap_cnodes * 2 : 256;
        struct cnode *p = realloc(in->cnodes, cap * sizeof *p);
        if (!p)
            return NULL;
        in->cnodes = p;
        in->cap_cnodes = cap;
    }
    size_t i = 0;
    while (i < in->n_cnodes && strcmp(in->cnodes[i].id, node) < 0)
        i++;
    memmove(&in->cnodes[i + 1], &in->cnodes[i], (in->n_cnodes - i) * sizeof *c);
    in->n_cnodes++;
    c = &in->cnodes[i];
    snprintf(c->id, sizeof c->id, "%s", node);
    c->boot = boot;
    c->last_seq = last;
    return c;
}

static void cnode_forget(struct ingest *in, const char *node)
{
    struct cnode *c = in->n_cnodes ? bsearch(node, in->cnodes, in->n_cnodes, sizeof *c, cnode_cmp) : NULL;
    if (!c)
        return;
    size_t i = (size_t)(c - in->cnodes);
    memmove(c, c + 1, (in->n_cnodes - i - 1) * sizeof *c);
    in->n_cnodes--;
}

/* A node's status: a birth with a newer boot is written through before the
 * PUBACK, so an event redelivered after a crash is stored under the same
 * boot as before it. */
static void on_status(struct ingest *in, struct ingest_item *item)
{
    pthread_mutex_lock(&in->cmu);
    struct cnode *c = cnode_get(in, item->node);
    if (c && item->u.status.boot > c->boot) {
        if (store_node_raise_boot(in->events, item->node, item->u.status.boot) == 0) {
            c->boot = item->u.status.boot;
            c->last_seq = -1;
        }
    }
    pthread_mutex_unlock(&in->cmu);
    enqueue(in, item);
}

/* Writes one held event back; a node removed meanwhile has nothing to keep
 * it for. */
static int spill_to_db(void *ctx, const char *node, uint32_t boot, int64_t rx_ms, const struct fw_event *ev)
{
    struct ingest *in = ctx;
    int rc = store_event_write(in->events, node, boot, ev, rx_ms);
    if (rc >= 0)
        atomic_fetch_add(rc == 1 ? &in->events_stored : &in->duplicates, 1);
    return rc == -ENOENT ? 0 : rc < 0 ? rc : 0;
}

/* Queues one held event for the main loop (at start, see ingest_new). */
static int spill_to_engine(void *ctx, const char *node, uint32_t boot, int64_t rx_ms,
                           const struct fw_event *ev)
{
    struct ingest *in = ctx;
    struct ingest_item item;
    memset(&item, 0, sizeof item);
    item.channel = FW_CH_NODE_EVENT;
    snprintf(item.node, sizeof item.node, "%s", node);
    item.rx_ms = rx_ms;
    item.boot = boot;
    item.stored = true;
    item.u.event = *ev;
    /* The main loop is not running yet: never wait for room. Alarms go in
     * the first pass, the rest only while the queue has room to spare. */
    bool alarm = ev->type == FW_EV_ALARM;
    if (alarm != in->replay_alarms)
        return 0;
    pthread_mutex_lock(&in->qmu);
    bool room = in->count + (alarm ? 0 : in->cap / 2) < in->cap;
    pthread_mutex_unlock(&in->qmu);
    if (room)
        enqueue(in, &item);
    return 0;
}

/* At start: the alarm, alarm_clear and silence events received since the
 * engine's last committed mark (writer_engine_mark) are queued for the
 * engine again. A kill -9 between an incident's decision and its write
 * would otherwise leave the database without the incident, and the first
 * connection would publish "clear" over a zone that is burning. An event
 * whose effects did reach the disk joins its restored incident. */
static void replay_unmarked(struct ingest *in)
{
    sqlite3 *db = store_handle(in->events);
    sqlite3_stmt *q = NULL;
    int64_t mark = 0;
    if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'engine_mark'", -1, &q, NULL) != SQLITE_OK)
        return;
    bool have = sqlite3_step(q) == SQLITE_ROW;
    if (have)
        mark = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    if (!have) {
        /* First start with marks: everything before now was handled by a
         * hub that finished with it (or by an older build). */
        char ins[96];
        snprintf(ins, sizeof ins, "INSERT OR IGNORE INTO meta(key, value) VALUES ('engine_mark', %lld)",
                 (long long)clock_wall_ms());
        sqlite3_exec(db, ins, NULL, NULL, NULL);
        return;
    }
    static const char sql[] = "SELECT node_id, boot, seq, node_ts, rx_ms, type, cause FROM events "
                              "WHERE rx_ms > ?1 AND type IN ('alarm', 'alarm_clear', 'silence') "
                              "ORDER BY id LIMIT 1000";
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_int64(q, 1, mark);
    int n = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
        const char *node = (const char *)sqlite3_column_text(q, 0);
        const char *type = (const char *)sqlite3_column_text(q, 5);
        const char *cause = (const char *)sqlite3_column_text(q, 6);
        char json[256];
        int len = snprintf(json, sizeof json, "{\"seq\":%lld,\"ts\":%lld,\"type\":\"%s\"%s%s%s}",
                           (long long)sqlite3_column_int64(q, 2), (long long)sqlite3_column_int64(q, 3),
                           type ? type : "", cause && *cause ? ",\"cause\":\"" : "",
                           cause && *cause ? cause : "", cause && *cause ? "\"" : "");
        struct fw_msg msg;
        struct fw_error err;
        if (!node || len <= 0 || (size_t)len >= sizeof json ||
            fw_msg_decode(FW_CH_NODE_EVENT, json, (size_t)len, &msg, &err) < 0)
            continue;
        struct ingest_item item;
        memset(&item, 0, sizeof item);
        item.channel = FW_CH_NODE_EVENT;
        snprintf(item.node, sizeof item.node, "%s", node);
        item.boot = (uint32_t)sqlite3_column_int64(q, 1);
        item.rx_ms = sqlite3_column_int64(q, 4);
        item.stored = true;
        item.u.event = msg.u.event;
        if (in->count + 1 >= in->cap)
            break; /* the main loop is not running yet: never wait for room */
        enqueue(in, &item);
        n++;
    }
    sqlite3_finalize(q);
    if (n > 0)
        log_warn("replaying %d alarm events received after the last committed engine state", n);
}

/* Moves the spill into the database if it accepts writes again. cmu held. */
static void drain_spill(struct ingest *in)
{
    if (spill_count(in->spill) == 0)
        return;
    store_test_limits(in->events);
    int n = spill_drain(in->spill, spill_to_db, in);
    atomic_store(&in->events_held, spill_count(in->spill));
    if (n >= 0 && atomic_exchange(&in->storage_failing, false))
        log_warn("storage recovered: %d held events written to the database", n);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The database refused an event (disk full, I/O error). The engine has it
 * already; make it durable in the spill file so the PUBACK can go. When the
 * spill is full as well, do not return: paho holds the PUBACK, the broker
 * keeps the event (and, at its in-flight limit, stops sending more to us)
 * until the database or the spill takes it. cmu held. */
static void hold_event(struct ingest *in, struct ingest_item *item, struct cnode *c)
{
    const struct fw_event *ev = &item->u.event;
    bool said = false;
    for (;;) {
        int rc = spill_append(in->spill, item->node, item->boot, item->rx_ms, ev);
        if (rc == 0) {
            c->last_seq = ev->seq;
            atomic_fetch_add(&in->events_spilled, 1);
            atomic_store(&in->events_held, spill_count(in->spill));
            if (!atomic_exchange(&in->storage_failing, true))
                log_error("storage trouble: the database refuses events; holding them in the spill file "
                          "until it accepts writes again");
            pthread_cond_signal(&in->dwake);
            return;
        }
        if (!said) {
            log_error("storage trouble: the database and the spill file (%s) both refuse event %s boot %u "
                      "seq %u; its acknowledgement waits until one of them takes it",
                      strerror(-rc), item->node, item->boot, ev->seq);
            said = true;
            atomic_store(&in->storage_failing, true);
        }
        if (atomic_load(&in->stopping))
            return;
        sleep_ms(SPILL_RETRY_MS);
        drain_spill(in);
        store_test_limits(in->events);
        rc = store_event_write(in->events, item->node, item->boot, ev, item->rx_ms);
        if (rc >= 0 || rc == -ENOENT) {
            if (rc >= 0) {
                c->last_seq = ev->seq;
                atomic_fetch_add(&in->events_stored, 1);
            }
            return;
        }
    }
}

/* The drainer thread: while the spill holds events, retry it into the
 * database every SPILL_RETRY_MS, so held events reach it when space comes
 * back even if no new event arrives. */
static void *drainer_main(void *arg)
{
    struct ingest *in = arg;
    pthread_mutex_lock(&in->cmu);
    while (!atomic_load(&in->stopping)) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += SPILL_RETRY_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&in->dwake, &in->cmu, &until);
        if (!atomic_load(&in->stopping))
            drain_spill(in);
    }
    pthread_mutex_unlock(&in->cmu);
    return NULL;
}

/* An event: de-duplicate, hand to the main loop, then commit before the
 * callback returns (and paho sends the PUBACK). redelivery is the MQTT DUP
 * flag: the broker sets it when it sends again a message it sent before
 * (to us, before a crash), which is the only way a stored event comes
 * back. */
static void on_event(struct ingest *in, struct ingest_item *item, bool redelivery)
{
    pthread_mutex_lock(&in->cmu);
    struct cnode *c = cnode_get(in, item->node);
    if (!c) {
        pthread_mutex_unlock(&in->cmu);
        atomic_fetch_add(&in->unknown_node, 1);
        int64_t now = clock_mono_ms();
        uint64_t sup = 0;
        if (log_limit_allow(&in->limit, now, 10, 60000, &sup))
            log_warn("event from unknown node %s ignored%s", item->node,
                     sup ? " (similar lines suppressed)" : "");
        return;
    }
    if ((int64_t)item->u.event.seq <= c->last_seq) {
        if (redelivery) {
            pthread_mutex_unlock(&in->cmu);
            atomic_fetch_add(&in->duplicates, 1);
            return;
        }
        /* Never delivered before (no DUP flag), yet its seq is not new: the
         * node's counters went backwards. An alarm must not be swallowed
         * over that, so the engine still gets it; the database keeps the
         * first event stored under that key. */
        uint64_t sup = 0;
        if (log_limit_allow(&in->limit, clock_mono_ms(), 10, 60000, &sup))
            log_warn("node %s reused boot %u seq %u (its counters went backwards)%s", item->node, c->boot,
                     item->u.event.seq, sup ? " (similar lines suppressed)" : "");
        c->last_seq = (int64_t)item->u.event.seq - 1;
    }
    item->boot = c->boot;
    item->stored = true;
    /* The engine decides from memory: it sees the event before the disk does. */
    enqueue(in, item);
    store_test_limits(in->events);
    if (spill_count(in->spill) > 0)
        drain_spill(in); /* events held earlier go first */
    int64_t t0 = mono_us();
    int rc = store_event_write(in->events, item->node, item->boot, &item->u.event, item->rx_ms);
    count_commit(in, mono_us() - t0);
    if (rc >= 0) {
        c->last_seq = item->u.event.seq;
        atomic_fetch_add(rc == 1 ? &in->events_stored : &in->duplicates, 1);
    } else if (rc == -ENOENT) {
        cnode_forget(in, item->node); /* removed meanwhile */
        atomic_fetch_add(&in->unknown_node, 1);
    } else {
        /* Logged by the store. The alarm already went to the engine; the
         * event must still be durable before the PUBACK. */
        atomic_fetch_add(&in->event_errors, 1);
        hold_event(in, item, c);
    }
    pthread_mutex_unlock(&in->cmu);
}

static int on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *m)
{
    struct ingest *in = ctx;
    struct ingest_item item;
    struct fw_topic t;
    struct fw_error err;
    struct fw_msg msg;
    size_t tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic);

    atomic_fetch_add(&in->received, 1);
    memset(&item, 0, sizeof item);
    item.rx_ms = clock_wall_ms();
    if (in->raw_filter[0]) {
        in->cfg.raw_fn(in->cfg.raw_ctx, topic, tlen, m->payload,
                       m->payloadlen > 0 ? (size_t)m->payloadlen : 0);
        goto done;
    }
    if (in->extra_topic[0] && tlen == strlen(in->extra_topic) && memcmp(topic, in->extra_topic, tlen) == 0) {
        /* Not ours to decode: the main loop knows what it subscribed for. */
        size_t n = m->payloadlen > 0 ? (size_t)m->payloadlen : 0;
        item.channel = INGEST_CH_EXTRA;
        item.u.extra.len = n;
        memcpy(item.u.extra.payload, m->payload, n < INGEST_EXTRA_MAX ? n : INGEST_EXTRA_MAX);
        enqueue(in, &item);
        goto done;
    }
    int rc = fw_topic_parse(topic, tlen, &t, &err);
    if (rc == 0 && t.channel == FW_CH_NODE_CMD)
        goto done; /* our own commands echoed back */
    if (rc == 0 && t.channel != FW_CH_NODE_STATUS && t.channel != FW_CH_NODE_READING &&
        t.channel != FW_CH_NODE_EVENT) {
        rc = -EINVAL;
        err.code = FW_E_TOPIC;
        snprintf(err.msg, sizeof err.msg, "not a node topic");
    }
    if (rc == 0)
        rc = fw_msg_decode(t.channel, m->payload, m->payloadlen > 0 ? (size_t)m->payloadlen : 0, &msg, &err);
    if (rc < 0) {
        atomic_fetch_add(&in->malformed, 1);
        if (err.code > FW_OK && err.code < FW_E_COUNT)
            atomic_fetch_add(&in->rejected[err.code], 1);
        uint64_t sup = 0;
        pthread_mutex_lock(&in->cmu);
        bool say = log_limit_allow(&in->limit, clock_mono_ms(), 10, 60000, &sup);
        pthread_mutex_unlock(&in->cmu);
        if (say)
            log_warn("ignored message on %.*s: %s: %s%s", (int)(tlen > 96 ? 96 : tlen), topic,
                     fw_err_name(err.code), err.msg, sup ? " (similar lines suppressed)" : "");
        goto done;
    }
    item.channel = t.channel;
    snprintf(item.node, sizeof item.node, "%s", t.id);
    switch (t.channel) {
    case FW_CH_NODE_STATUS:
        item.u.status = msg.u.status;
        on_status(in, &item);
        break;
    case FW_CH_NODE_READING:
        item.u.reading = msg.u.reading;
        if (!enqueue(in, &item))
            atomic_fetch_add(&in->readings_dropped, 1);
        break;
    case FW_CH_NODE_EVENT:
        item.u.event = msg.u.event;
        on_event(in, &item, m->dup != 0);
        break;
    default: break;
    }
done:
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

static void publish_hub_status(struct ingest *in, bool online)
{
    struct fw_msg msg = {.channel = FW_CH_HUB_STATUS};
    char topic[FW_TOPIC_MAX], payload[128];
    msg.u.hub.online = online;
    msg.u.hub.ts = clock_wall_ms();
    int n = fw_msg_encode(&msg, payload, sizeof payload);
    if (n > 0 && fw_topic_build(topic, sizeof topic, FW_CH_HUB_STATUS, NULL) > 0)
        ingest_publish(in, topic, payload, (size_t)n, 1, true);
}

static void on_subscribed(void *ctx, MQTTAsync_successData5 *resp)
{
    (void)ctx;
    if (resp && resp->reasonCode >= 0x80)
        log_error("subscription refused by the broker (reason %d)", resp->reasonCode);
}

static void on_subscribe_failed(void *ctx, MQTTAsync_failureData5 *resp)
{
    (void)ctx;
    log_error("cannot subscribe: %s", resp && resp->message ? resp->message : "no reason given");
}

/* paho does not set TCP_NODELAY and has no hook to do it, so a small zone
 * alarm can sit behind Nagle's algorithm waiting for the broker's delayed
 * ACK (~40 ms, measured). After each connection, set it on every TCP socket
 * of the process: the broker connection is among them, and no-delay is
 * harmless for any other. */
static void tcp_nodelay_all(void)
{
    for (int fd = 3; fd < 1024; fd++) {
        int type = 0, one = 1;
        socklen_t len = sizeof type;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM)
            continue;
        if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0 ||
            (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
            continue;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
}

/* Runs on every (re)connection: subscriptions are not restored by paho, so
 * subscribe again; then announce the hub. */
static void on_connected(void *ctx, char *cause)
{
    struct ingest *in = ctx;
    (void)cause;
    atomic_store(&in->connected, true);
    atomic_store(&in->connecting, false);
    atomic_fetch_add(&in->connects, 1);
    tcp_nodelay_all();
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.onSuccess5 = on_subscribed;
    ro.onFailure5 = on_subscribe_failed;
    ro.context = in;
    ro.subscribeOptions.noLocal = 1;
    const char *filter = in->raw_filter[0] ? in->raw_filter : SUB_TOPIC;
    int rc = MQTTAsync_subscribe(in->client, filter, 1, &ro);
    if (rc != MQTTASYNC_SUCCESS)
        log_error("cannot subscribe to %s: %s", filter, MQTTAsync_strerror(rc));
    if (in->extra_topic[0]) {
        MQTTAsync_responseOptions xo = MQTTAsync_responseOptions_initializer;
        xo.onSuccess5 = on_subscribed;
        xo.onFailure5 = on_subscribe_failed;
        xo.context = in;
        rc = MQTTAsync_subscribe(in->client, in->extra_topic, 1, &xo);
        if (rc != MQTTASYNC_SUCCESS)
            log_error("cannot subscribe to %s: %s", in->extra_topic, MQTTAsync_strerror(rc));
    }
    publish_hub_status(in, true);
    log_info("connected to %s", in->url);
}

static void on_lost(void *ctx, char *cause)
{
    struct ingest *in = ctx;
    atomic_store(&in->connected, false);
    log_warn("lost the broker connection%s%s; reconnecting", cause ? ": " : "", cause ? cause : "");
}

static void on_connect_failed(void *ctx, MQTTAsync_failureData5 *resp)
{
    struct ingest *in = ctx;
    atomic_store(&in->connecting, false);
    atomic_store(&in->retry_at_ms, clock_mono_ms() + 2000);
    uint64_t sup = 0;
    pthread_mutex_lock(&in->cmu);
    bool say = log_limit_allow(&in->limit, clock_mono_ms(), 10, 60000, &sup);
    pthread_mutex_unlock(&in->cmu);
    if (say)
        log_warn("cannot connect to %s: %s (retrying)", in->url,
                 resp && resp->message ? resp->message
                                       : MQTTReasonCode_toString(resp ? resp->reasonCode : 0));
}

struct ingest *ingest_new(const struct ingest_config *cfg, char *why, size_t why_size)
{
    struct ingest *in = calloc(1, sizeof *in);
    if (!in) {
        snprintf(why, why_size, "out of memory");
        errno = ENOMEM;
        return NULL;
    }
    in->cfg = *cfg;
    snprintf(in->url, sizeof in->url, "%s", cfg->url);
    snprintf(in->client_id, sizeof in->client_id, "%s", cfg->client_id);
    snprintf(in->username, sizeof in->username, "%s", cfg->username ? cfg->username : "");
    snprintf(in->password, sizeof in->password, "%s", cfg->password ? cfg->password : "");
    snprintf(in->cafile, sizeof in->cafile, "%s", cfg->cafile ? cfg->cafile : "");
    snprintf(in->database, sizeof in->database, "%s", cfg->database);
    snprintf(in->extra_topic, sizeof in->extra_topic, "%s", cfg->extra_topic ? cfg->extra_topic : "");
    if (cfg->raw_filter && cfg->raw_fn)
        snprintf(in->raw_filter, sizeof in->raw_filter, "%s", cfg->raw_filter);
    in->efd = -1;
    pthread_mutex_init(&in->qmu, NULL);
    pthread_cond_init(&in->qnotfull, NULL);
    pthread_mutex_init(&in->cmu, NULL);
    pthread_cond_init(&in->dwake, NULL);
    in->cap = cfg->queue_max ? cfg->queue_max : 10000;
    in->ring = calloc(in->cap, sizeof *in->ring);
    in->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (!in->ring || in->efd < 0) {
        snprintf(why, why_size, "cannot allocate the ingest queue: %s", strerror(errno));
        ingest_free(in);
        errno = ENOMEM;
        return NULL;
    }
    /* The receive thread must stay quick: the writer thread's connection
     * does the WAL checkpoints, never this one. */
    in->events =
        store_open(in->database, STORE_NO_CHECKPOINT | (cfg->sync_full ? STORE_SYNC_FULL : 0), why, why_size);
    if (!in->events) {
        int e = errno;
        ingest_free(in);
        errno = e;
        return NULL;
    }
    replay_unmarked(in);
    char spill_path[300];
    snprintf(spill_path, sizeof spill_path, "%s-spill", in->database);
    in->spill = spill_open(spill_path, SPILL_MAX_BYTES, why, why_size);
    if (!in->spill) {
        int e = errno;
        ingest_free(in);
        errno = e;
        return NULL;
    }
    if (spill_count(in->spill) > 0) {
        /* Held before a crash or a stop. The disk was refusing writes then,
         * so the incidents those events opened may never have reached the
         * database: the engine hears them again (an alarm reopens its
         * incident), then they go into the database before anything new. */
        log_warn("storage: %zu events held in %s from the last run", spill_count(in->spill), spill_path);
        atomic_store(&in->storage_failing, true);
        in->replay_alarms = true;
        spill_foreach(in->spill, spill_to_engine, in);
        in->replay_alarms = false;
        spill_foreach(in->spill, spill_to_engine, in);
        pthread_mutex_lock(&in->cmu);
        drain_spill(in);
        pthread_mutex_unlock(&in->cmu);
    }
    if (pthread_create(&in->drainer, NULL, drainer_main, in) != 0) {
        snprintf(why, why_size, "cannot start the spill thread");
        ingest_free(in);
        errno = EAGAIN;
        return NULL;
    }
    in->drainer_started = true;
    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
    co.sendWhileDisconnected = 1;
    co.maxBufferedMessages = 10000;
    co.allowDisconnectedSendAtAnyTime = 1;
    int rc = MQTTAsync_createWithOptions(&in->client, in->url, in->client_id, MQTTCLIENT_PERSISTENCE_NONE,
                                         NULL, &co);
    if (rc == MQTTASYNC_SUCCESS)
        rc = MQTTAsync_setCallbacks(in->client, in, on_lost, on_message, NULL);
    if (rc == MQTTASYNC_SUCCESS)
        rc = MQTTAsync_setConnected(in->client, in, on_connected);
    if (rc != MQTTASYNC_SUCCESS) {
        snprintf(why, why_size, "broker %s: %s", in->url, MQTTAsync_strerror(rc));
        ingest_free(in);
        errno = EINVAL;
        return NULL;
    }
    return in;
}

static int connect_now(struct ingest *in)
{
    MQTTAsync_connectOptions o = MQTTAsync_connectOptions_initializer5;
    MQTTAsync_willOptions w = MQTTAsync_willOptions_initializer;
    MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
    MQTTProperties props = MQTTProperties_initializer;
    MQTTProperty p = {.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL};
    char will_topic[FW_TOPIC_MAX];
    static const char will_payload[] = "{\"online\":false}";

    p.value.integer4 = (unsigned)in->cfg.session_expiry_s;
    MQTTProperties_add(&props, &p);
    fw_topic_build(will_topic, sizeof will_topic, FW_CH_HUB_STATUS, NULL);
    w.topicName = will_topic;
    w.payload.data = will_payload;
    w.payload.len = (int)strlen(will_payload);
    w.qos = 1;
    w.retained = 1;
    o.will = &w;
    o.keepAliveInterval = in->cfg.keepalive_s;
    o.cleanstart = 0; /* keep the session: the broker queues events while we are down */
    o.connectProperties = &props;
    o.automaticReconnect = 1;
    o.minRetryInterval = 1;
    o.maxRetryInterval = 15;
    o.connectTimeout = 10;
    o.onFailure5 = on_connect_failed;
    o.context = in;
    if (in->username[0]) {
        o.username = in->username;
        o.password = in->password;
    }
    if (strncmp(in->url, "ssl://", 6) == 0 || strncmp(in->url, "mqtts://", 8) == 0) {
        if (in->cafile[0])
            ssl.trustStore = in->cafile;
        ssl.enableServerCertAuth = 1;
        ssl.verify = 1;
        o.ssl = &ssl;
    }
    atomic_store(&in->connecting, true);
    int rc = MQTTAsync_connect(in->client, &o);
    MQTTProperties_free(&props);
    if (rc != MQTTASYNC_SUCCESS) {
        atomic_store(&in->connecting, false);
        atomic_store(&in->retry_at_ms, clock_mono_ms() + 2000);
        log_error("cannot start connecting to %s: %s", in->url, MQTTAsync_strerror(rc));
        return -EIO;
    }
    return 0;
}

int ingest_start(struct ingest *in)
{
    return connect_now(in);
}

/* paho's automatic reconnect only covers connections that once succeeded,
 * so a first connection that failed is retried from here. */
void ingest_tick(struct ingest *in, int64_t mono_ms)
{
    if (atomic_load(&in->connected) || atomic_load(&in->connecting) || atomic_load(&in->connects) > 0)
        return;
    if (mono_ms >= atomic_load(&in->retry_at_ms))
        connect_now(in);
}

int ingest_publish(struct ingest *in, const char *topic, const char *payload, size_t len, int qos,
                   bool retain)
{
    MQTTAsync_message m = MQTTAsync_message_initializer;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    m.payload = (void *)payload;
    m.payloadlen = (int)len;
    m.qos = qos;
    m.retained = retain;
    int rc = MQTTAsync_sendMessage(in->client, topic, &m, &ro);
    if (rc != MQTTASYNC_SUCCESS) {
        log_error("cannot publish to %s: %s", topic, MQTTAsync_strerror(rc));
        return -EIO;
    }
    return 0;
}

void ingest_get_stats(struct ingest *in, struct ingest_stats *out)
{
    out->received = atomic_load(&in->received);
    out->malformed = atomic_load(&in->malformed);
    out->unknown_node = atomic_load(&in->unknown_node);
    out->duplicates = atomic_load(&in->duplicates);
    out->events_stored = atomic_load(&in->events_stored);
    out->event_errors = atomic_load(&in->event_errors);
    out->readings_dropped = atomic_load(&in->readings_dropped);
    out->connects = atomic_load(&in->connects);
    out->connected = atomic_load(&in->connected);
    out->events_spilled = atomic_load(&in->events_spilled);
    out->events_held = atomic_load(&in->events_held);
    out->storage_trouble = atomic_load(&in->storage_failing);
    for (int i = 0; i < FW_E_COUNT; i++)
        out->rejected[i] = atomic_load(&in->rejected[i]);
    out->commit_count = atomic_load(&in->commit_count);
    out->commit_us_sum = atomic_load(&in->commit_us_sum);
    for (int i = 0; i < INGEST_COMMIT_BUCKETS; i++)
        out->commit_le[i] = atomic_load(&in->commit_le[i]);
    pthread_mutex_lock(&in->qmu);
    out->queue_depth = in->count;
    pthread_mutex_unlock(&in->qmu);
}

uint64_t ingest_connects(struct ingest *in)
{
    return atomic_load(&in->connects);
}

void ingest_stop(struct ingest *in, int timeout_ms)
{
    if (!in || !in->client)
        return;
    atomic_store(&in->stopping, true);
    pthread_mutex_lock(&in->qmu);
    pthread_cond_broadcast(&in->qnotfull);
    pthread_mutex_unlock(&in->qmu);
    if (MQTTAsync_isConnected(in->client)) {
        publish_hub_status(in, false);
        /* Let the offline status and any zone publishes drain. */
        MQTTAsync_token *tokens = NULL;
        int64_t deadline = clock_mono_ms() + timeout_ms;
        while (clock_mono_ms() < deadline &&
               MQTTAsync_getPendingTokens(in->client, &tokens) == MQTTASYNC_SUCCESS && tokens &&
               tokens[0] != -1) {
            MQTTAsync_free(tokens);
            tokens = NULL;
            usleep(10000);
        }
        MQTTAsync_free(tokens);
        MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer5;
        d.timeout = timeout_ms;
        MQTTAsync_disconnect(in->client, &d);
        int64_t until = clock_mono_ms() + timeout_ms;
        while (MQTTAsync_isConnected(in->client) && clock_mono_ms() < until)
            usleep(10000);
    }
}

void ingest_free(struct ingest *in)
{
    if (!in)
        return;
    if (in->client)
        MQTTAsync_destroy(&in->client);
    if (in->drainer_started) {
        atomic_store(&in->stopping, true);
        pthread_mutex_lock(&in->cmu);
        pthread_cond_signal(&in->dwake);
        pthread_mutex_unlock(&in->cmu);
        pthread_join(in->drainer, NULL);
    }
    spill_close(in->spill);
    store_close(in->events);
    if (in->efd >= 0)
        close(in->efd);
    free(in->ring);
    free(in->cnodes);
    pthread_mutex_destroy(&in->qmu);
    pthread_cond_destroy(&in->qnotfull);
    pthread_mutex_destroy(&in->cmu);
    pthread_cond_destroy(&in->dwake);
    free(in);
}
