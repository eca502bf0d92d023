/*
 * link.c - see link.h.
 */
#include "link.h"

#include <MQTTAsync.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define RING 32
#define RING_MSGS 28 /* the last slots are kept for connection events */
#define SESSION_EXPIRY_S (24 * 3600)
#define BACKOFF_MIN_MS 500

enum item_kind { IT_UP, IT_DOWN, IT_FAILED, IT_MSG };

struct item {
    enum item_kind kind;
    int code;
    struct link_msg msg;
};

enum conn_state { ST_IDLE, ST_CONNECTING, ST_UP };

struct link {
    MQTTAsync client;
    int efd;
    /* shared with paho's threads, under mu */
    pthread_mutex_t mu;
    struct item ring[RING];
    int head, count;
    uint64_t dropped_in;
    /* main thread only */
    enum conn_state state;
    bool ever_connected;
    int attempts;
    int64_t retry_at;
    int keepalive_s, reconnect_max_s;
    bool tls;
    char *username, *password, *cafile, *will_topic, *will_payload;
};

static void wake(struct link *l)
{
    uint64_t one = 1;
    ssize_t n = write(l->efd, &one, sizeof one);
    (void)n; /* a full counter still wakes the loop */
}

/* Adds an item; messages may not take the slots kept for connection events. */
static struct item *push(struct link *l, enum item_kind kind)
{
    int limit = kind == IT_MSG ? RING_MSGS : RING;
    if (l->count >= limit) {
        if (kind == IT_MSG)
            l->dropped_in++;
        return NULL;
    }
    struct item *it = &l->ring[(l->head + l->count++) % RING];
    it->kind = kind;
    it->code = 0;
    return it;
}

static void post(struct link *l, enum item_kind kind, int code)
{
    pthread_mutex_lock(&l->mu);
    struct item *it = push(l, kind);
    if (it)
        it->code = code;
    pthread_mutex_unlock(&l->mu);
    wake(l);
}

/* ---- paho callbacks: copy, post, return -------------------------------- */

static void on_lost(void *ctx, char *cause)
{
    (void)cause;
    post(ctx, IT_DOWN, 0);
}

static int on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *m)
{
    struct link *l = ctx;
    size_t tl = topic_len > 0 ? (size_t)topic_len : strlen(topic);
    pthread_mutex_lock(&l->mu);
    struct item *it = push(l, IT_MSG);
    if (it) {
        struct link_msg *lm = &it->msg;
        size_t pl = m->payloadlen > 0 ? (size_t)m->payloadlen : 0;
        lm->oversize = tl >= sizeof lm->topic || pl > FW_PAYLOAD_MAX;
        lm->topic_len = lm->oversize ? 0 : tl;
        lm->len = lm->oversize ? 0 : pl;
        if (!lm->oversize) {
            memcpy(lm->topic, topic, tl);
            lm->topic[tl] = '\0';
            memcpy(lm->payload, m->payload, pl);
            lm->payload[pl] = '\0';
        }
    }
    pthread_mutex_unlock(&l->mu);
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    wake(l);
    return 1;
}

static void on_connect_ok(void *ctx, MQTTAsync_successData5 *r)
{
    (void)r;
    post(ctx, IT_UP, 0);
}

static void on_connect_fail(void *ctx, MQTTAsync_failureData5 *r)
{
    post(ctx, IT_FAILED, r ? (r->reasonCode ? (int)r->reasonCode : r->code) : -1);
}

static void on_publish_ok(void *ctx, MQTTAsync_successData5 *r)
{
    (void)ctx;
    if (r && r->reasonCode >= 0x80)
        log_warn("mqtt: the broker refused a publish: %s", MQTTReasonCode_toString(r->reasonCode));
}

static void on_publish_fail(void *ctx, MQTTAsync_failureData5 *r)
{
    (void)ctx;
    if (r)
        log_warn("mqtt: publish failed: %s (code %d)",
                 r->reasonCode ? MQTTReasonCode_toString(r->reasonCode) : (r->message ? r->message : "?"),
                 r->code);
}

/* ---- main thread --------------------------------------------------------- */

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

struct link *link_new(const struct link_params *p, char *err, size_t errsize)
{
    struct link *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    l->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (l->efd < 0) {
        snprintf(err, errsize, "eventfd: %s", strerror(errno));
        free(l);
        return NULL;
    }
    pthread_mutex_init(&l->mu, NULL);
    l->keepalive_s = p->keepalive_s;
    l->reconnect_max_s = p->reconnect_max_s;
    l->tls = strncmp(p->url, "ssl://", 6) == 0;
    l->username = dup_or_null(p->username);
    l->password = dup_or_null(p->password);
    l->cafile = dup_or_null(p->cafile);
    l->will_topic = dup_or_null(p->will_topic);
    l->will_payload = dup_or_null(p->will_payload);
    l->retry_at = 0; /* connect at the first tick */

    /* Initialise OpenSSL only for ssl:// brokers: paho otherwise sets it up
     * at create time, which alone costs a plain-TCP node about 3.5 MB of
     * resident set (OpenSSL 3 initialises itself when TLS is first used). */
    static bool paho_ready;
    if (!paho_ready) {
        MQTTAsync_init_options io = MQTTAsync_init_options_initializer;
        io.do_openssl_init = l->tls ? 1 : 0;
        MQTTAsync_global_init(&io);
        paho_ready = true;
    }
    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
    co.sendWhileDisconnected = 0; /* outq.h buffers, with alarm-first dropping */
    int rc =
        MQTTAsync_createWithOptions(&l->client, p->url, p->client_id, MQTTCLIENT_PERSISTENCE_NONE, NULL, &co);
    if (rc == MQTTASYNC_SUCCESS)
        rc = MQTTAsync_setCallbacks(l->client, l, on_lost, on_message, NULL);
    if (rc != MQTTASYNC_SUCCESS) {
        snprintf(err, errsize, "mqtt: cannot create the client for %s: %s", p->url, MQTTAsync_strerror(rc));
        errno = EINVAL;
        link_free(l);
        return NULL;
    }
    return l;
}

void link_free(struct link *l)
{
    if (!l)
        return;
    if (l->client)
        MQTTAsync_destroy(&l->client);
    close(l->efd);
    pthread_mutex_destroy(&l->mu);
    free(l->username);
    free(l->password);
    free(l->cafile);
    free(l->will_topic);
    free(l->will_payload);
    free(l);
}

int link_fd(const struct link *l)
{
    return l->efd;
}

bool link_connected(const struct link *l)
{
    return l->state == ST_UP;
}

uint64_t link_dropped_incoming(const struct link *l)
{
    return l->dropped_in;
}

static void schedule_retry(struct link *l, int64_t now)
{
    int64_t delay = BACKOFF_MIN_MS;
    for (int i = 0; i < l->attempts && delay < (int64_t)l->reconnect_max_s * 1000; i++)
        delay *= 2;
    if (delay > (int64_t)l->reconnect_max_s * 1000)
        delay = (int64_t)l->reconnect_max_s * 1000;
    l->attempts++;
    l->retry_at = now + delay;
    l->state = ST_IDLE;
}

void link_tick(struct link *l, int64_t now)
{
    if (l->state != ST_IDLE || now < l->retry_at)
        return;
    MQTTAsync_connectOptions o = MQTTAsync_connectOptions_initializer5;
    MQTTAsync_willOptions will = MQTTAsync_willOptions_initializer;
    MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
    MQTTProperties props = MQTTProperties_initializer;
    MQTTProperty expiry = {.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL};
    expiry.value.integer4 = SESSION_EXPIRY_S;
    MQTTProperties_add(&props, &expiry);

    o.keepAliveInterval = l->keepalive_s;
    o.cleanstart = l->ever_connected ? 0 : 1;
    o.connectTimeout = 10;
    o.username = l->username;
    o.password = l->password;
    o.connectProperties = &props;
    o.onSuccess5 = on_connect_ok;
    o.onFailure5 = on_connect_fail;
    o.context = l;
    if (l->will_topic && l->will_payload) {
        will.topicName = l->will_topic;
        will.payload.data = l->will_payload;
        will.payload.len = (int)strlen(l->will_payload);
        will.message = NULL;
        will.qos = 1;
        will.retained = 1;
        o.will = &will;
    }
    if (l->tls) {
        ssl.trustStore = l->cafile;
        ssl.enableServerCertAuth = 1;
        ssl.verify = 1;
        o.ssl = &ssl;
    }
    int rc = MQTTAsync_connect(l->client, &o);
    MQTTProperties_free(&props);
    if (rc != MQTTASYNC_SUCCESS) {
        log_warn("mqtt: cannot start a connect: %s", MQTTAsync_strerror(rc));
        schedule_retry(l, now);
        return;
    }
    l->state = ST_CONNECTING;
}

int64_t link_next_ms(const struct link *l)
{
    return l->state == ST_IDLE ? l->retry_at : INT64_MAX;
}

void link_dispatch(struct link *l, int64_t now, const struct link_handlers *h)
{
    uint64_t v;
    ssize_t n = read(l->efd, &v, sizeof v);
    (void)n;
    for (;;) {
        /* Copy one item out so handlers run without the lock held. */
        struct item it;
        pthread_mutex_lock(&l->mu);
        bool have = l->count > 0;
        if (have) {
            it = l->ring[l->head];
            l->head = (l->head + 1) % RING;
            l->count--;
        }
        pthread_mutex_unlock(&l->mu);
        if (!have)
            break;
        switch (it.kind) {
        case IT_UP:
            if (l->state == ST_UP)
                break;
            l->state = ST_UP;
            l->ever_connected = true;
            l->attempts = 0;
            log_info("mqtt: connected");
            if (h->up)
                h->up(h->ctx);
            break;
        case IT_DOWN:
        case IT_FAILED:
            if (it.kind == IT_DOWN)
                log_warn("mqtt: connection lost");
            else if (l->attempts < 3 || l->attempts % 20 == 0)
                log_warn("mqtt: connect failed (code %d), retrying", it.code);
            schedule_retry(l, now);
            if (h->down)
                h->down(h->ctx);
            break;
        case IT_MSG:
            if (h->message)
                h->message(h->ctx, &it.msg);
            break;
        }
    }
}

int link_subscribe(struct link *l, const char *const *topics, int n)
{
    if (l->state != ST_UP)
        return -ENOTCONN;
    int qos[4] = {1, 1, 1, 1};
    if (n > 4)
        return -EINVAL;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    int rc = MQTTAsync_subscribeMany(l->client, n, (char *const *)topics, qos, &ro);
    if (rc != MQTTASYNC_SUCCESS) {
        log_warn("mqtt: subscribe failed: %s", MQTTAsync_strerror(rc));
        return -EIO;
    }
    return 0;
}

static int send_msg(struct link *l, const char *topic, const char *payload, size_t len, int qos, bool retain,
                    MQTTAsync_token *tok)
{
    MQTTAsync_message m = MQTTAsync_message_initializer;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    m.payload = (void *)payload;
    m.payloadlen = (int)len;
    m.qos = qos;
    m.retained = retain;
    ro.onSuccess5 = on_publish_ok;
    ro.onFailure5 = on_publish_fail;
    ro.context = l;
    int rc = MQTTAsync_sendMessage(l->client, topic, &m, &ro);
    if (rc != MQTTASYNC_SUCCESS) {
        log_warn("mqtt: cannot publish to %s: %s", topic, MQTTAsync_strerror(rc));
        return -EIO;
    }
    if (tok)
        *tok = ro.token;
    return 0;
}

int link_send(struct link *l, const char *topic, const char *payload, size_t len, int qos, bool retain)
{
    if (l->state != ST_UP)
        return -ENOTCONN;
    return send_msg(l, topic, payload, len, qos, retain, NULL);
}

int link_close(struct link *l, const char *topic, const char *payload, size_t len, int timeout_ms)
{
    if (l->state != ST_UP || !MQTTAsync_isConnected(l->client))
        return -ENOTCONN;
    MQTTAsync_token tok = 0;
    int rc = send_msg(l, topic, payload, len, 1, true, &tok);
    if (rc == 0 &&
        MQTTAsync_waitForCompletion(l->client, tok, (unsigned long)timeout_ms) != MQTTASYNC_SUCCESS)
        rc = -ETIMEDOUT;
    MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer5;
    d.timeout = timeout_ms;
    MQTTAsync_disconnect(l->client, &d);
    /* Wait, bounded, for the DISCONNECT to go out before the process ends. */
    for (int i = 0; i < timeout_ms / 10 && MQTTAsync_isConnected(l->client); i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    l->state = ST_IDLE;
    return rc;
}
