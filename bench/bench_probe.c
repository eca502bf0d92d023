/*
 * bench_probe.c - measures alarm latency: the time from a node's alarm
 * event leaving the probe to the hub's zone alarm arriving back at the
 * probe, through the real broker and the real hub.
 *
 * Each probe node sits alone in its own zone, so every alarm opens a fresh
 * incident and every escalation publishes. The baseline, taken in the same
 * run, travels the same path with a do-nothing relay in the hub's place: a
 * second client in this process that republishes every bench/ping it
 * receives to bench/pong, both QoS 1. The difference between the two is
 * what the hub adds. For causes
 * that wait out the verifying window, pass --window-ms and the figure
 * reported is the delay beyond the window.
 *
 * With -r RATE -d SECONDS it is an event pump instead (for the soak test):
 * it publishes QoS 1 `test` events from the probe nodes at RATE per second
 * and counts the broker's acknowledgements, so the soak can check that
 * every acknowledged event reached the database.
 */
#include <MQTTAsync.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <getopt.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "firewatch/protocol.h"

#define PROBES_MAX 2000

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct probe {
    char node[FW_ID_MAX + 1], zone[FW_ID_MAX + 1];
    _Atomic int64_t sent_us, got_us;
};

static struct probe probes[PROBES_MAX];
static int n_probes;
static _Atomic int64_t echo_sent_us, echo_got_us;
static atomic_int connected_ok;
static atomic_long pump_acked, pump_failed;

static void on_pump_ack(void *ctx, MQTTAsync_successData5 *r)
{
    (void)ctx;
    if (r && r->reasonCode >= 0x80)
        atomic_fetch_add(&pump_failed, 1);
    else
        atomic_fetch_add(&pump_acked, 1);
}

static void on_pump_fail(void *ctx, MQTTAsync_failureData5 *r)
{
    (void)ctx, (void)r;
    atomic_fetch_add(&pump_failed, 1);
}

static MQTTAsync relay;

/* The relay: republish a ping as a pong, nothing else (paho's receive thread). */
static int on_relay_message(void *ctx, char *topic, int tlen, MQTTAsync_message *m)
{
    (void)ctx, (void)tlen;
    MQTTAsync_message out = MQTTAsync_message_initializer;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    out.payload = m->payload;
    out.payloadlen = m->payloadlen;
    out.qos = 1;
    MQTTAsync_sendMessage(relay, "bench/pong", &out, &ro);
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

/* paho sets no TCP_NODELAY; like the hub (hub/ingest.c), set it on every TCP
 * socket of the process so Nagle's algorithm does not skew either figure. */
static void tcp_nodelay_all(void)
{
    for (int fd = 3; fd < 1024; fd++) {
        int type = 0, one = 1;
        socklen_t len = sizeof type;
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM)
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
}

static int on_message(void *ctx, char *topic, int tlen, MQTTAsync_message *m)
{
    int64_t t = now_us();
    struct fw_topic tp;
    (void)ctx;
    if (strncmp(topic, "bench/pong", 10) == 0) {
        atomic_store(&echo_got_us, t);
    } else if (!m->retained && fw_topic_parse(topic, (size_t)tlen, &tp, NULL) == 0 &&
               tp.channel == FW_CH_ZONE_ALARM) {
        struct fw_msg msg;
        if (fw_msg_decode(FW_CH_ZONE_ALARM, m->payload, (size_t)m->payloadlen, &msg, NULL) == 0 &&
            msg.u.alarm.state == FW_STATE_ALARM) {
            for (int i = 0; i < n_probes; i++) {
                int64_t zero = 0;
                if (strcmp(probes[i].zone, tp.id) == 0 && atomic_load(&probes[i].sent_us) > 0)
                    atomic_compare_exchange_strong(&probes[i].got_us, &zero, t);
            }
        }
    }
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

static void on_connect(void *ctx, MQTTAsync_successData5 *r)
{
    (void)ctx, (void)r;
    atomic_store(&connected_ok, 1);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void summary(FILE *f, const char *name, int64_t *v, int n, int missing)
{
    qsort(v, (size_t)n, sizeof *v, cmp_i64);
    double p50 = n ? (double)v[n / 2] / 1000.0 : -1;
    double p99 = n ? (double)v[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1] / 1000.0 : -1;
    double max = n ? (double)v[n - 1] / 1000.0 : -1;
    fprintf(f, "\"%s\":{\"n\":%d,\"missing\":%d,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f}", name, n,
            missing, p50, p99, max);
}

static int publish(MQTTAsync c, const char *topic, const char *payload, int qos, int retain)
{
    MQTTAsync_message msg = MQTTAsync_message_initializer;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    msg.payload = (void *)payload;
    msg.payloadlen = (int)strlen(payload);
    msg.qos = qos;
    msg.retained = retain;
    return MQTTAsync_sendMessage(c, topic, &msg, &ro) == MQTTASYNC_SUCCESS ? 0 : -EIO;
}

static void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Short waits while a sample is in flight: 50 us of sleep keeps the core
 * free for the broker and the hub at a resolution far below the figures. */
static void pause_us(long us)
{
    struct timespec ts = {0, us * 1000L};
    nanosleep(&ts, NULL);
}

/* Pump mode: QoS 1 test events round-robin over the probes at rate/s. */
static int pump(MQTTAsync client, double rate, double seconds, uint32_t boot, const char *out)
{
    char topic[FW_TOPIC_MAX], payload[FW_PAYLOAD_MAX + 1];
    uint32_t *seq = calloc((size_t)n_probes, sizeof *seq);
    long sent = 0;
    int64_t start = now_us(), end = start + (int64_t)(seconds * 1e6);
    while (now_us() < end) {
        int64_t due = (int64_t)((double)(now_us() - start) / 1e6 * rate);
        for (; sent < due; sent++) {
            int i = (int)(sent % n_probes);
            struct fw_msg m = {.channel = FW_CH_NODE_EVENT};
            m.u.event.seq = ++seq[i];
            m.u.event.ts = wall_ms();
            m.u.event.type = FW_EV_TEST;
            m.u.event.result = FW_RESULT_PASS;
            fw_topic_build(topic, sizeof topic, FW_CH_NODE_EVENT, probes[i].node);
            fw_msg_encode(&m, payload, sizeof payload);
            MQTTAsync_message msg = MQTTAsync_message_initializer;
            MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
            msg.payload = payload;
            msg.payloadlen = (int)strlen(payload);
            msg.qos = 1;
            ro.onSuccess5 = on_pump_ack;
            ro.onFailure5 = on_pump_fail;
            if (MQTTAsync_sendMessage(client, topic, &msg, &ro) != MQTTASYNC_SUCCESS)
                atomic_fetch_add(&pump_failed, 1);
        }
        pause_ms(5);
    }
    /* Wait (bounded) for the last acknowledgements. */
    for (int i = 0; i < 1000 && atomic_load(&pump_acked) + atomic_load(&pump_failed) < sent; i++)
        pause_ms(10);
    free(seq);
    FILE *f = out ? fopen(out, "w") : stdout;
    if (!f)
        return 1;
    fprintf(f, "{\"boot\":%u,\"sent\":%ld,\"acked\":%ld,\"failed\":%ld}\n", boot, sent,
            atomic_load(&pump_acked), atomic_load(&pump_failed));
    if (out)
        fclose(f);
    return 0;
}

static void usage(void)
{
    printf("usage: bench-probe [-b URL] [-u USER -P PASSWORD] -f PROBES [-c CAUSE] [-w WINDOW_MS]\n"
           "                   [-g GAP_MS] [-o STATS.json]\n"
           "       bench-probe [-b URL] -f PROBES -r RATE -d SECONDS [-o STATS.json]   (event pump)\n"
           "PROBES has one \"node zone\" per line; each node must be alone in its zone.\n"
           "CAUSE is heat_fixed (default), button, heat_ror or smoke.\n");
}

int main(int argc, char **argv)
{
    const char *broker = "tcp://127.0.0.1:1883", *file = NULL, *out = NULL, *user = NULL, *pass = NULL;
    enum fw_cause cause = FW_CAUSE_HEAT_FIXED;
    int window_ms = 0, gap_ms = 100, c;
    double rate = 0, seconds = 0;
    while ((c = getopt(argc, argv, "b:u:P:f:c:w:g:o:r:d:h")) != -1) {
        switch (c) {
        case 'b': broker = optarg; break;
        case 'u': user = optarg; break;
        case 'P': pass = optarg; break;
        case 'f': file = optarg; break;
        case 'c':
            if (fw_cause_parse(optarg, &cause) < 0) {
                fprintf(stderr, "bench-probe: unknown cause %s\n", optarg);
                return 2;
            }
            break;
        case 'w': window_ms = (int)strtol(optarg, NULL, 10); break;
        case 'g': gap_ms = (int)strtol(optarg, NULL, 10); break;
        case 'o': out = optarg; break;
        case 'r': rate = strtod(optarg, NULL); break;
        case 'd': seconds = strtod(optarg, NULL); break;
        default: usage(); return c == 'h' ? 0 : 2;
        }
    }
    if (!file) {
        usage();
        return 2;
    }
    FILE *pf = fopen(file, "r");
    if (!pf) {
        fprintf(stderr, "bench-probe: %s: %s\n", file, strerror(errno));
        return 2;
    }
    char line[256];
    while (n_probes < PROBES_MAX && fgets(line, sizeof line, pf)) {
        char *save = NULL, *node = strtok_r(line, " \t\r\n", &save), *zone = strtok_r(NULL, " \t\r\n", &save);
        if (!node || !zone || !fw_id_valid(node) || !fw_id_valid(zone))
            continue;
        snprintf(probes[n_probes].node, sizeof probes[n_probes].node, "%s", node);
        snprintf(probes[n_probes].zone, sizeof probes[n_probes].zone, "%s", zone);
        n_probes++;
    }
    fclose(pf);

    MQTTAsync client;
    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
    if (MQTTAsync_createWithOptions(&client, broker, "bench-probe", MQTTCLIENT_PERSISTENCE_NONE, NULL, &co) !=
        MQTTASYNC_SUCCESS)
        return 1;
    MQTTAsync_setCallbacks(client, NULL, NULL, on_message, NULL);
    MQTTAsync_connectOptions opts = MQTTAsync_connectOptions_initializer5;
    opts.cleanstart = 1;
    opts.username = user;
    opts.password = pass;
    opts.onSuccess5 = on_connect;
    if (MQTTAsync_connect(client, &opts) != MQTTASYNC_SUCCESS)
        return 1;
    for (int i = 0; i < 500 && !atomic_load(&connected_ok); i++)
        pause_ms(10);
    if (!atomic_load(&connected_ok)) {
        fprintf(stderr, "bench-probe: cannot connect to %s\n", broker);
        return 1;
    }
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    MQTTAsync_subscribe(client, "firewatch/v1/zone/+/alarm", 1, &ro);
    MQTTAsync_subscribe(client, "bench/pong", 1, &ro);

    /* The do-nothing relay for the baseline. */
    atomic_store(&connected_ok, 0);
    if (MQTTAsync_createWithOptions(&relay, broker, "bench-relay", MQTTCLIENT_PERSISTENCE_NONE, NULL, &co) !=
        MQTTASYNC_SUCCESS)
        return 1;
    MQTTAsync_setCallbacks(relay, NULL, NULL, on_relay_message, NULL);
    if (MQTTAsync_connect(relay, &opts) != MQTTASYNC_SUCCESS)
        return 1;
    for (int i = 0; i < 1000 && !atomic_load(&connected_ok); i++)
        pause_ms(10);
    if (!atomic_load(&connected_ok)) {
        fprintf(stderr, "bench-probe: the relay cannot connect to %s\n", broker);
        return 1;
    }
    MQTTAsync_subscribe(relay, "bench/ping", 1, &ro);
    tcp_nodelay_all();
    pause_ms(300);

    /* Births, so the hub knows each probe node's boot. */
    uint32_t boot = (uint32_t)(wall_ms() / 1000 % 1000000);
    char topic[FW_TOPIC_MAX], payload[FW_PAYLOAD_MAX + 1];
    for (int i = 0; i < n_probes; i++) {
        struct fw_msg m = {.channel = FW_CH_NODE_STATUS};
        m.u.status.online = true;
        m.u.status.boot = boot;
        m.u.status.kind = FW_KIND_COMBO;
        m.u.status.ts = wall_ms();
        snprintf(m.u.status.fw, sizeof m.u.status.fw, "probe");
        fw_topic_build(topic, sizeof topic, FW_CH_NODE_STATUS, probes[i].node);
        fw_msg_encode(&m, payload, sizeof payload);
        publish(client, topic, payload, 1, 1);
    }
    pause_ms(1000);
    if (rate > 0 && seconds > 0) {
        int rc = pump(client, rate, seconds, boot, out);
        MQTTAsync_disconnectOptions dd = MQTTAsync_disconnectOptions_initializer5;
        MQTTAsync_disconnect(client, &dd);
        MQTTAsync_destroy(&client);
        return rc;
    }

    /* Baseline: the same path through a do-nothing relay, as many samples as probes. */
    int64_t *base = calloc((size_t)n_probes + 1, sizeof *base),
            *lat = calloc((size_t)n_probes + 1, sizeof *lat);
    int nb = 0, nbmiss = 0;
    /* Warm-up: wait until the relay's subscription carries a ping through. */
    for (int tries = 0; tries < 50; tries++) {
        atomic_store(&echo_got_us, 0);
        publish(client, "bench/ping", "{\"warm\":1}", 1, 0);
        int64_t until = now_us() + 200000;
        while (atomic_load(&echo_got_us) == 0 && now_us() < until)
            pause_us(100);
        if (atomic_load(&echo_got_us))
            break;
    }
    for (int i = 0; i < n_probes; i++) {
        atomic_store(&echo_got_us, 0);
        int64_t t0 = now_us();
        atomic_store(&echo_sent_us, t0);
        publish(client, "bench/ping", "{\"ping\":1}", 1, 0);
        int64_t deadline = t0 + 2000000;
        while (atomic_load(&echo_got_us) == 0 && now_us() < deadline)
            pause_us(50);
        if (atomic_load(&echo_got_us))
            base[nb++] = atomic_load(&echo_got_us) - t0;
        else
            nbmiss++;
        pause_ms(gap_ms / 4 + 1);
    }

    /* Alarms, one probe at a time, each waiting for its zone alarm. */
    int nl = 0, nlmiss = 0;
    for (int i = 0; i < n_probes; i++) {
        struct fw_msg m = {.channel = FW_CH_NODE_EVENT};
        m.u.event.seq = 1;
        m.u.event.ts = wall_ms();
        m.u.event.type = FW_EV_ALARM;
        m.u.event.cause = cause;
        fw_topic_build(topic, sizeof topic, FW_CH_NODE_EVENT, probes[i].node);
        fw_msg_encode(&m, payload, sizeof payload);
        int64_t t0 = now_us();
        atomic_store(&probes[i].sent_us, t0);
        publish(client, topic, payload, 1, 0);
        int64_t deadline = t0 + (int64_t)(window_ms + 5000) * 1000;
        while (atomic_load(&probes[i].got_us) == 0 && now_us() < deadline)
            pause_us(50);
        int64_t got = atomic_load(&probes[i].got_us);
        if (got) {
            int64_t d = got - t0 - (int64_t)window_ms * 1000;
            lat[nl++] = d < 0 ? 0 : d;
        } else {
            nlmiss++;
        }
        pause_ms(gap_ms);
    }
    FILE *f = out ? fopen(out, "w") : stdout;
    if (!f)
        return 1;
    fprintf(f, "{\"cause\":\"%s\",\"window_ms\":%d,", fw_cause_name(cause), window_ms);
    summary(f, "alarm", lat, nl, nlmiss);
    fputc(',', f);
    summary(f, "baseline", base, nb, nbmiss);
    fputs("}\n", f);
    if (out)
        fclose(f);
    free(base);
    free(lat);
    MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer5;
    MQTTAsync_disconnect(client, &d);
    MQTTAsync_disconnect(relay, &d);
    MQTTAsync_destroy(&client);
    MQTTAsync_destroy(&relay);
    return nlmiss ? 3 : 0;
}
