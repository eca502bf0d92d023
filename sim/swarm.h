/*
 * swarm.h - many MQTT 5 clients in one process, driven by one epoll loop in
 * the calling thread (libmosquitto, no library threads).
 *
 * A swarm owns n clients, addressed by index 0..n-1. Each client has its
 * own identity (client id = user name), password and retained QoS 1 will.
 * Connections are opened at a bounded rate, dropped connections come back
 * with exponential backoff, and keep-alives run from a sweep that visits
 * every client once a second. Callbacks run in the caller's thread, from
 * swarm_run(); they may publish and subscribe. docs/internals/fleet.md says
 * why this is not paho.
 */
#ifndef FIREWATCH_SIM_SWARM_H
#define FIREWATCH_SIM_SWARM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct swarm;

/* What the swarm tells its owner. ctx is swarm_config.ctx; idx the client. */
struct swarm_callbacks {
    /* CONNACK with success: publish the birth and subscribe here. */
    void (*on_up)(void *ctx, int idx);
    /* A message arrived on a subscription (payload is not NUL-terminated). */
    void (*on_message)(void *ctx, int idx, const char *topic, const void *payload, size_t len);
    /* The broker answered a QoS 1 publish made with this tag; reason is the
     * MQTT 5 reason code (>= 0x80: refused). */
    void (*on_ack)(void *ctx, int idx, int tag, int reason);
};

struct swarm_config {
    char host[256];
    int port;
    int keepalive_s;     /* >= 5 */
    double connect_rate; /* connection attempts per second, first and re- */
    struct swarm_callbacks cb;
    void *ctx;
};

/* Counters since swarm_new. */
struct swarm_stats {
    long up;               /* clients connected now */
    long connect_failures; /* attempts that ended before a successful CONNACK */
    long reconnects;       /* successful connections after a lost one */
};

/* Initialises libmosquitto (once per process) and makes a swarm for n
 * clients. Returns NULL with errno set. The caller frees with swarm_free. */
struct swarm *swarm_new(const struct swarm_config *cfg, int n);

/* Frees the swarm and every client (closing sockets without goodbye). NULL is fine. */
void swarm_free(struct swarm *s);

/* Gives client idx its identity and will, and queues it for connection.
 * Strings are copied. Returns 0 or a negative errno. */
int swarm_start(struct swarm *s, int idx, const char *id, const char *password, const char *will_topic,
                const char *will_payload);

/* Publishes from client idx. QoS 1 publishes report to on_ack with tag.
 * Returns 0, -ENOTCONN (QoS 0 while down), -ENOBUFS (too many QoS 1
 * publishes awaiting their PUBACK) or -EIO. */
int swarm_publish(struct swarm *s, int idx, const char *topic, const char *payload, int len, int qos,
                  bool retain, int tag);

/* Subscribes client idx to topic at QoS 1. Returns 0 or a negative errno. */
int swarm_subscribe(struct swarm *s, int idx, const char *topic);

/* True when client idx has a session (CONNACK success, not lost since). */
bool swarm_is_up(const struct swarm *s, int idx);

/* True when client idx's socket is full and output is waiting on it. */
bool swarm_is_backlogged(const struct swarm *s, int idx);

/* Waits up to timeout_ms for socket activity, handles it, then opens due
 * connections and runs keep-alives. Returns 0 or a negative errno. */
int swarm_run(struct swarm *s, int timeout_ms);

/* Says goodbye: for every client with a session calls goodbye(ctx, idx)
 * (which may publish), then sends DISCONNECT, and waits until the sockets
 * are closed or timeout_ms has passed. Returns how many were closed cleanly. */
int swarm_shutdown(struct swarm *s, int timeout_ms, void (*goodbye)(void *ctx, int idx));

void swarm_get_stats(const struct swarm *s, struct swarm_stats *out);

#endif
