/*
 * ingest.h - the hub's MQTT side: one paho MQTTAsync client (MQTT 5, a
 * persistent session), its receive callback, and the bounded queue that
 * carries what arrived to the main loop.
 *
 * The callback runs on paho's receive thread. It decodes with the protocol
 * library, counts and drops what is malformed, and copies everything else
 * into the queue, waking the main loop through an eventfd. Events are the
 * exception that the style guide allows: paho sends the PUBACK as soon as
 * the callback returns, so an event is queued for the main loop first (the
 * incident engine must never wait for a disk) and then committed to SQLite
 * through this module's own connection before the callback returns. A
 * kill -9 at any moment therefore loses no acknowledged event; the broker
 * redelivers the rest. An event the database refuses (disk full) is made
 * durable in the spill file instead (spill.h). docs/internals/ingest.md
 * tells the whole story, docs/reliability.md the failure modes.
 */
#ifndef FIREWATCH_HUB_INGEST_H
#define FIREWATCH_HUB_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "firewatch/protocol.h"

/* The channel of a message on ingest_config.extra_topic (not a Firewatch
 * topic, e.g. Home Assistant's status): its payload is in u.extra. */
#define INGEST_CH_EXTRA ((enum fw_channel)FW_CH_COUNT)
#define INGEST_EXTRA_MAX 63 /* payload bytes kept of an extra-topic message */

/* The event commit latency histogram: upper bounds of its buckets (ms). */
#define INGEST_COMMIT_BUCKETS 6
extern const int64_t ingest_commit_bounds_ms[INGEST_COMMIT_BUCKETS];

/* One message for the main loop. */
struct ingest_item {
    enum fw_channel channel; /* FW_CH_NODE_STATUS, _READING, _EVENT or INGEST_CH_EXTRA */
    char node[FW_ID_MAX + 1];
    int64_t rx_ms; /* hub wall clock at arrival */
    uint32_t boot; /* events: the boot it was stored under */
    bool stored;   /* events: committed (false only when the database failed) */
    union {
        struct fw_status status;
        struct fw_reading reading;
        struct fw_event event;
        struct {
            char payload[INGEST_EXTRA_MAX + 1]; /* NUL-terminated, truncated */
            size_t len;                         /* the payload's full length */
        } extra;
    } u;
};

struct ingest_config {
    const char *url;
    const char *client_id;
    const char *username; /* NULL or "" for none */
    const char *password;
    const char *cafile;
    int keepalive_s;
    int session_expiry_s;
    size_t queue_max;
    const char *database; /* events are written here, on their own connection */
    bool sync_full;
    const char *extra_topic; /* NULL or "": none; else also subscribed (QoS 1), see INGEST_CH_EXTRA */
    /* A regional hub (region.h): subscribe to raw_filter (QoS 1) instead of
     * the node topics, and hand every message to raw_fn on the receive
     * thread; the PUBACK goes out after it returns, so what it commits is
     * never lost. The topic and payload are borrowed for the call. */
    const char *raw_filter;
    void (*raw_fn)(void *ctx, const char *topic, size_t topic_len, const void *payload, size_t len);
    void *raw_ctx;
};

/* Counters, all since ingest_new. */
struct ingest_stats {
    uint64_t received;         /* messages delivered by the broker */
    uint64_t malformed;        /* bad topic or payload, ignored */
    uint64_t unknown_node;     /* events from nodes not in the database, ignored */
    uint64_t duplicates;       /* events already stored (redelivered), ignored */
    uint64_t events_stored;    /* events committed */
    uint64_t event_errors;     /* events the database refused (still fed to the engine) */
    uint64_t readings_dropped; /* readings refused because the queue was full */
    uint64_t connects;         /* successful (re)connections */
    bool connected;
    uint64_t events_spilled; /* events the database refused, made durable in the spill file */
    uint64_t events_held;    /* of those, still waiting for the database */
    bool storage_trouble;    /* the database refuses events right now */

    /* For /metrics: */
    uint64_t rejected[FW_E_COUNT];             /* malformed messages by reason (fw_err_name) */
    size_t queue_depth;                        /* items waiting for the main loop now */
    uint64_t commit_count;                     /* event commits timed (before their PUBACK) */
    uint64_t commit_us_sum;                    /* their total duration, microseconds */
    uint64_t commit_le[INGEST_COMMIT_BUCKETS]; /* commits within each ingest_commit_bounds_ms */
};

/* Creates the client and opens the event connection. Nothing connects until
 * ingest_start. Returns NULL with errno set and why filled. Free with
 * ingest_free. */
struct ingest *ingest_new(const struct ingest_config *cfg, char *why, size_t why_size);

/* Starts connecting (and reconnecting automatically). Returns 0 or -EIO. */
int ingest_start(struct ingest *in);

/* Retries a first connection that failed; call from the main loop now and
 * then with the monotonic time. */
void ingest_tick(struct ingest *in, int64_t mono_ms);

/* The descriptor that becomes readable when items are queued. */
int ingest_fd(const struct ingest *in);

/* Moves up to max queued items into out and returns how many. */
size_t ingest_drain(struct ingest *in, struct ingest_item *out, size_t max);

/* Queues a publish (QoS 0 or 1). Never blocks: while disconnected paho keeps
 * it until the reconnect. Returns 0 or -EIO. */
int ingest_publish(struct ingest *in, const char *topic, const char *payload, size_t len, int qos,
                   bool retain);

/* Copies the counters. Any thread. */
void ingest_get_stats(struct ingest *in, struct ingest_stats *out);

/* Bumped on every successful connection; the main loop compares it. */
uint64_t ingest_connects(struct ingest *in);

/* Publishes the offline hub status, waits up to timeout_ms for outgoing
 * messages and disconnects. */
void ingest_stop(struct ingest *in, int timeout_ms);

/* Frees everything; accepts NULL. Call ingest_stop first for a clean exit. */
void ingest_free(struct ingest *in);

#endif
