/*
 * client.c - see client.h. paho calls back on its own threads; everything
 * the callbacks touch is behind one mutex, and every operation result is
 * tagged with a sequence number so a late answer to a timed-out operation
 * is never mistaken for the next one's.
 */
#include "client.h"

#include <MQTTAsync.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define OP_TIMEOUT_MS 5000
#define SEEN_MAX 64 /* distinct topics remembered */
#define PAYLOAD_KEEP 256
#define OPS 16 /* operation contexts, reused round-robin; calls are sequential */

struct seen {
    char topic[128];
    int count;
    char last[PAYLOAD_KEEP];
};

/* What paho hands back to an operation's callbacks. It lives inside the
 * client, which outlives every callback (MQTTAsync_destroy comes first), so
 * an answer that arrives after its wait timed out is harmless. */
struct op_ctx {
    struct tc_client *c;
    int seq;
};

struct tc_client {
    MQTTAsync handle;
    struct op_ctx ops[OPS];
    pthread_mutex_t lock;
    int op_seq;  /* the operation being waited for */
    int op_done; /* sequence number of the last answered operation */
    int op_rc;   /* its reason code */
    bool connected;
    bool lost;
    struct seen seen[SEEN_MAX];
    int nseen;
};

struct op_wait {
    struct tc_client *c;
    int seq;
};

static void finish(struct tc_client *c, int seq, int rc)
{
    pthread_mutex_lock(&c->lock);
    if (seq == c->op_seq) {
        c->op_done = seq;
        c->op_rc = rc;
    }
    pthread_mutex_unlock(&c->lock);
}

static void on_success(void *context, MQTTAsync_successData5 *resp)
{
    struct op_ctx *o = context;
    finish(o->c, o->seq, resp ? (int)resp->reasonCode : 0);
}

static void on_failure(void *context, MQTTAsync_failureData5 *resp)
{
    struct op_ctx *o = context;
    /* Acks carry their reason in reasonCode; a refused CONNACK's reason comes
     * in code (paho 1.3.12). Anything else is a local failure. */
    int rc = TC_NO_ANSWER;
    if (resp && resp->reasonCode != 0)
        rc = (int)resp->reasonCode;
    else if (resp && resp->code >= 0x80 && resp->code <= 0xff)
        rc = resp->code;
    finish(o->c, o->seq, rc);
}

static void on_lost(void *context, char *cause)
{
    (void)cause;
    struct tc_client *c = context;
    pthread_mutex_lock(&c->lock);
    c->connected = false;
    c->lost = true;
    pthread_mutex_unlock(&c->lock);
}

static int on_message(void *context, char *topic, int topic_len, MQTTAsync_message *m)
{
    struct tc_client *c = context;
    char t[128];
    int len = topic_len > 0 ? topic_len : (int)strlen(topic);
    if (len >= (int)sizeof t)
        len = (int)sizeof t - 1;
    memcpy(t, topic, (size_t)len);
    t[len] = '\0';
    pthread_mutex_lock(&c->lock);
    struct seen *s = NULL;
    for (int i = 0; i < c->nseen; i++)
        if (strcmp(c->seen[i].topic, t) == 0)
            s = &c->seen[i];
    if (!s && c->nseen < SEEN_MAX) {
        s = &c->seen[c->nseen++];
        snprintf(s->topic, sizeof s->topic, "%s", t);
    }
    if (s) {
        s->count++;
        int plen = m->payloadlen < PAYLOAD_KEEP - 1 ? m->payloadlen : PAYLOAD_KEEP - 1;
        memcpy(s->last, m->payload, (size_t)plen);
        s->last[plen] = '\0';
    }
    pthread_mutex_unlock(&c->lock);
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

/* Starts a new operation and returns its context. */
static struct op_ctx *op_begin(struct tc_client *c)
{
    pthread_mutex_lock(&c->lock);
    int seq = ++c->op_seq;
    struct op_ctx *o = &c->ops[seq % OPS];
    o->c = c;
    o->seq = seq;
    pthread_mutex_unlock(&c->lock);
    return o;
}

static bool op_answered(void *arg)
{
    struct op_wait *w = arg;
    pthread_mutex_lock(&w->c->lock);
    bool done = w->c->op_done == w->seq;
    pthread_mutex_unlock(&w->c->lock);
    return done;
}

/* Waits for operation seq; returns its reason code or TC_NO_ANSWER. */
static int op_wait(struct tc_client *c, int seq)
{
    struct op_wait w = {c, seq};
    if (!th_wait_until(op_answered, &w, OP_TIMEOUT_MS))
        return TC_NO_ANSWER;
    pthread_mutex_lock(&c->lock);
    int rc = c->op_rc;
    pthread_mutex_unlock(&c->lock);
    return rc;
}

static void destroy(struct tc_client *c)
{
    MQTTAsync_destroy(&c->handle);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static struct tc_client *connect_full(const char *url, const char *client_id, const char *user,
                                      const char *password, const struct tc_tls *tls, const char *will_topic,
                                      const char *will_payload, int *reason)
{
    *reason = TC_NO_ANSWER;
    struct tc_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    pthread_mutex_init(&c->lock, NULL);
    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
    const char *id = client_id ? client_id : user ? user : "anon";
    if (MQTTAsync_createWithOptions(&c->handle, url, id, MQTTCLIENT_PERSISTENCE_NONE, NULL, &co) !=
        MQTTASYNC_SUCCESS) {
        pthread_mutex_destroy(&c->lock);
        free(c);
        return NULL;
    }
    MQTTAsync_setCallbacks(c->handle, c, on_lost, on_message, NULL);

    MQTTAsync_connectOptions opts = MQTTAsync_connectOptions_initializer5;
    MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
    opts.keepAliveInterval = 20;
    opts.cleanstart = 1;
    opts.connectTimeout = 5;
    opts.username = user;
    opts.password = password;
    MQTTAsync_willOptions will = MQTTAsync_willOptions_initializer;
    if (will_topic) {
        will.topicName = will_topic;
        will.message = will_payload;
        will.qos = 1;
        will.retained = 1;
        opts.will = &will;
    }
    if (tls) {
        ssl.trustStore = tls->cafile;
        ssl.keyStore = tls->certfile;
        ssl.privateKey = tls->keyfile;
        ssl.enableServerCertAuth = 1;
        ssl.verify = 1;
        opts.ssl = &ssl;
    }
    struct op_ctx *o = op_begin(c);
    int seq = o->seq;
    opts.onSuccess5 = on_success;
    opts.onFailure5 = on_failure;
    opts.context = o;
    if (MQTTAsync_connect(c->handle, &opts) != MQTTASYNC_SUCCESS) {
        destroy(c);
        return NULL;
    }
    int rc = op_wait(c, seq);
    if (rc != 0) {
        *reason = rc;
        destroy(c);
        return NULL;
    }
    pthread_mutex_lock(&c->lock);
    c->connected = true;
    pthread_mutex_unlock(&c->lock);
    *reason = 0;
    return c;
}

struct tc_client *tc_connect(const char *url, const char *client_id, const char *user, const char *password,
                             const struct tc_tls *tls, int *reason)
{
    return connect_full(url, client_id, user, password, tls, NULL, NULL, reason);
}

struct tc_client *tc_connect_will(const char *url, const char *user, const char *password,
                                  const char *will_topic, const char *will_payload, int *reason)
{
    return connect_full(url, NULL, user, password, NULL, will_topic, will_payload, reason);
}

int tc_disconnect_with_will(struct tc_client *c)
{
    MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer5;
    struct op_ctx *o = op_begin(c);
    int seq = o->seq;
    d.timeout = 1000;
    d.reasonCode = MQTTREASONCODE_DISCONNECT_WITH_WILL_MESSAGE;
    d.onSuccess5 = on_success;
    d.onFailure5 = on_failure;
    d.context = o;
    if (MQTTAsync_disconnect(c->handle, &d) != MQTTASYNC_SUCCESS)
        return TC_NO_ANSWER;
    int rc = op_wait(c, seq);
    pthread_mutex_lock(&c->lock);
    c->connected = false;
    pthread_mutex_unlock(&c->lock);
    return rc;
}

int tc_publish(struct tc_client *c, const char *topic, const char *payload, int qos, bool retain)
{
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    MQTTAsync_message m = MQTTAsync_message_initializer;
    m.payload = (void *)payload;
    m.payloadlen = (int)strlen(payload);
    m.qos = qos;
    m.retained = retain;
    struct op_ctx *o = op_begin(c);
    int seq = o->seq;
    ro.onSuccess5 = on_success;
    ro.onFailure5 = on_failure;
    ro.context = o;
    if (MQTTAsync_sendMessage(c->handle, topic, &m, &ro) != MQTTASYNC_SUCCESS)
        return TC_NO_ANSWER;
    return op_wait(c, seq);
}

int tc_subscribe(struct tc_client *c, const char *topic, int qos)
{
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    struct op_ctx *o = op_begin(c);
    int seq = o->seq;
    ro.onSuccess5 = on_success;
    ro.onFailure5 = on_failure;
    ro.context = o;
    if (MQTTAsync_subscribe(c->handle, topic, qos, &ro) != MQTTASYNC_SUCCESS)
        return TC_NO_ANSWER;
    return op_wait(c, seq);
}

int tc_count(struct tc_client *c, const char *topic)
{
    int n = 0;
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < c->nseen; i++)
        if (strcmp(c->seen[i].topic, topic) == 0)
            n = c->seen[i].count;
    pthread_mutex_unlock(&c->lock);
    return n;
}

struct count_wait {
    struct tc_client *c;
    const char *topic;
    int n;
};

static bool count_reached(void *arg)
{
    struct count_wait *w = arg;
    return tc_count(w->c, w->topic) >= w->n;
}

bool tc_wait_count(struct tc_client *c, const char *topic, int n, int timeout_ms)
{
    struct count_wait w = {c, topic, n};
    return th_wait_until(count_reached, &w, timeout_ms);
}

void tc_last_payload(struct tc_client *c, const char *topic, char *buf, int size)
{
    buf[0] = '\0';
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < c->nseen; i++)
        if (strcmp(c->seen[i].topic, topic) == 0)
            snprintf(buf, (size_t)size, "%s", c->seen[i].last);
    pthread_mutex_unlock(&c->lock);
}

bool tc_connected(struct tc_client *c)
{
    pthread_mutex_lock(&c->lock);
    bool up = c->connected;
    pthread_mutex_unlock(&c->lock);
    return up;
}

static bool is_lost(void *arg)
{
    return !tc_connected(arg);
}

bool tc_wait_lost(struct tc_client *c, int timeout_ms)
{
    return th_wait_until(is_lost, c, timeout_ms);
}

void tc_free(struct tc_client *c)
{
    if (!c)
        return;
    if (tc_connected(c)) {
        MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer5;
        struct op_ctx *o = op_begin(c);
        int seq = o->seq;
        d.timeout = 1000;
        d.onSuccess5 = on_success;
        d.onFailure5 = on_failure;
        d.context = o;
        if (MQTTAsync_disconnect(c->handle, &d) == MQTTASYNC_SUCCESS)
            op_wait(c, seq);
    }
    destroy(c);
}
