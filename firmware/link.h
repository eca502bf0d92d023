/*
 * link.h - the node's MQTT connection: paho MQTTAsync speaking MQTT 5.
 *
 * paho runs its callbacks on its own threads. They only copy what happened
 * (connected, connection lost, connect failed, a message arrived) into a
 * mutex-protected bounded ring and write to an eventfd; the node's single
 * main thread polls that fd and handles everything in link_dispatch(). The
 * main thread is also the only caller of paho's API, so no callback ever
 * calls back into paho (which can deadlock, paho issues #363 and #1230).
 *
 * Reconnecting is ours, not paho's automaticReconnect: a node that boots
 * without a network must keep trying the first connect too, which paho's
 * option does not cover. Backoff doubles from 0.5 s up to reconnect_max_s.
 * The first connect of a process starts a clean session (a new boot);
 * reconnects resume it (cleanstart 0 plus a one-day Session Expiry
 * Interval), so QoS 1 messages in flight at a drop are retried by paho and
 * commands queued at the broker while the node was away are delivered.
 */
#ifndef FIREWATCH_LINK_H
#define FIREWATCH_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "firewatch/protocol.h"

struct link_params {
    const char *url; /* tcp://host:port or ssl://host:port */
    const char *client_id;
    const char *username; /* "" for none */
    const char *password;
    const char *cafile; /* "" : the system's trust store */
    int keepalive_s;
    int reconnect_max_s;
    const char *will_topic;
    const char *will_payload; /* retained, QoS 1 */
};

/* A message that arrived, copied out of paho. */
struct link_msg {
    char topic[FW_TOPIC_MAX + 32];
    size_t topic_len;
    char payload[FW_PAYLOAD_MAX + 1];
    size_t len;
    bool oversize; /* longer than FW_PAYLOAD_MAX or topic too long: payload not kept */
};

struct link_handlers {
    void (*up)(void *ctx);   /* connected (first time or again): resubscribe, send birth */
    void (*down)(void *ctx); /* connection lost or connect failed */
    void (*message)(void *ctx, const struct link_msg *m);
    void *ctx;
};

struct link;

/* Creates the client (no connection yet). NULL with errno and err filled. */
struct link *link_new(const struct link_params *p, char *err, size_t errsize);

/* Disconnects if needed and frees. NULL is ignored. */
void link_free(struct link *l);

/* The fd to poll for POLLIN; readable when link_dispatch has work. */
int link_fd(const struct link *l);

/* Handles everything paho reported since the last call. */
void link_dispatch(struct link *l, int64_t now_mono, const struct link_handlers *h);

/* Starts a connect attempt if one is due (call when link_next_ms passed). */
void link_tick(struct link *l, int64_t now_mono);

/* When link_tick next has work, or INT64_MAX. */
int64_t link_next_ms(const struct link *l);

bool link_connected(const struct link *l);

/* Subscribes to topics at QoS 1. Returns 0 or a negative errno. */
int link_subscribe(struct link *l, const char *const *topics, int n);

/* Hands one message to paho; only while connected. Returns 0, -ENOTCONN,
 * or -EIO when paho refuses it (the caller keeps it queued). */
int link_send(struct link *l, const char *topic, const char *payload, size_t len, int qos, bool retain);

/* Sends a last message (the offline status), waits up to timeout_ms for it
 * to be acknowledged, then disconnects cleanly. Returns 0 or a negative errno. */
int link_close(struct link *l, const char *topic, const char *payload, size_t len, int timeout_ms);

/* Counts for logs and tests. */
uint64_t link_dropped_incoming(const struct link *l);

#endif
