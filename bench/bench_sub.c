/*
 * bench_sub.c - the ingest baseline: a bare paho MQTT 5 subscriber that
 * counts what the broker delivers, doing nothing else with it. The hub's
 * commit rate is compared with this rate under the same load in the same
 * run, so the ratio says what the hub costs, not what the machine can do.
 */
#include <MQTTAsync.h>
#include <errno.h>
#include <getopt.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"

static atomic_long received;
static atomic_long first_ms, last_ms;
static atomic_int subscribed;
static const char *match; /* count only topics containing this, when set */

static int on_message(void *ctx, char *topic, int len, MQTTAsync_message *m)
{
    (void)ctx, (void)len;
    if (match && !strstr(topic, match)) {
        MQTTAsync_freeMessage(&m);
        MQTTAsync_free(topic);
        return 1;
    }
    int64_t now = clock_mono_ms();
    long expected = 0;
    atomic_compare_exchange_strong(&first_ms, &expected, now);
    atomic_store(&last_ms, now);
    atomic_fetch_add(&received, 1);
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

static void on_subscribed(void *ctx, MQTTAsync_successData5 *r)
{
    (void)ctx, (void)r;
    atomic_store(&subscribed, 1);
}

static void on_connected(void *ctx, MQTTAsync_successData5 *r)
{
    MQTTAsync c = *(MQTTAsync *)ctx;
    const char *topic = getenv("BENCH_TOPIC");
    (void)r;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.onSuccess5 = on_subscribed;
    MQTTAsync_subscribe(c, topic, 0, &ro);
}

int main(int argc, char **argv)
{
    const char *broker = "tcp://127.0.0.1:1883", *out = NULL;
    double duration = 10;
    int c;
    static MQTTAsync client;
    setenv("BENCH_TOPIC", "firewatch/v1/node/+/reading", 0);
    while ((c = getopt(argc, argv, "b:t:m:d:o:h")) != -1) {
        switch (c) {
        case 'b': broker = optarg; break;
        case 't': setenv("BENCH_TOPIC", optarg, 1); break;
        case 'm': match = optarg; break;
        case 'd': duration = strtod(optarg, NULL); break;
        case 'o': out = optarg; break;
        default:
            printf("usage: bench-sub [-b URL] [-t TOPIC] [-m SUBSTRING] [-d SECONDS] [-o STATS.json]\n"
                   "Counts messages the broker delivers on TOPIC (QoS 0) for SECONDS,\n"
                   "only those whose topic contains SUBSTRING when -m is given.\n");
            return c == 'h' ? 0 : 2;
        }
    }
    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
    if (MQTTAsync_createWithOptions(&client, broker, "bench-sub", MQTTCLIENT_PERSISTENCE_NONE, NULL, &co) !=
        MQTTASYNC_SUCCESS)
        return 1;
    MQTTAsync_setCallbacks(client, NULL, NULL, on_message, NULL);
    MQTTAsync_connectOptions opts = MQTTAsync_connectOptions_initializer5;
    opts.cleanstart = 1;
    opts.keepAliveInterval = 60;
    opts.onSuccess5 = on_connected;
    opts.context = &client;
    if (MQTTAsync_connect(client, &opts) != MQTTASYNC_SUCCESS)
        return 1;
    int64_t deadline = clock_mono_ms() + 10000;
    while (!atomic_load(&subscribed) && clock_mono_ms() < deadline) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (!atomic_load(&subscribed)) {
        fprintf(stderr, "bench-sub: could not subscribe at %s\n", broker);
        return 1;
    }
    fprintf(stderr, "bench-sub: subscribed\n");
    int64_t end = clock_mono_ms() + (int64_t)(duration * 1000);
    while (clock_mono_ms() < end) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    long n = atomic_load(&received);
    double span = (double)(atomic_load(&last_ms) - atomic_load(&first_ms)) / 1000.0;
    double rate = span > 0 ? (double)n / span : 0;
    FILE *f = out ? fopen(out, "w") : stdout;
    if (!f)
        return 1;
    fprintf(f, "{\"received\":%ld,\"seconds\":%.3f,\"per_second\":%.1f}\n", n, span, rate);
    if (out)
        fclose(f);
    MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer5;
    MQTTAsync_disconnect(client, &d);
    MQTTAsync_destroy(&client);
    return 0;
}
