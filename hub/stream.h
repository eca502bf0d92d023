/*
 * stream.h - the live stream: Server-Sent Events for dashboards and scripts.
 *
 * The daemon's main thread publishes small JSON documents (incident, trouble,
 * node status and readiness changes) with stream_publish(); each gets the
 * next id and lands in a bounded ring of recent events. Every connected
 * client reads from the ring at its own pace through libmicrohttpd's content
 * reader: a client with nothing to read is suspended, and a pump thread
 * resumes waiting clients when an event arrives or a keep-alive comment is
 * due. The publisher only copies into the ring under a short lock and writes
 * an eventfd, so it never waits for a client; a client that falls so far
 * behind that the ring overwrote what it had not read is disconnected (its
 * EventSource reconnects and resumes or is told to reload). A reconnecting
 * client sends Last-Event-ID and gets everything after it that is still in
 * the ring, or a "reset" event when the ring no longer holds it.
 * docs/internals/http.md has the whole picture.
 */
#ifndef FIREWATCH_HUB_STREAM_H
#define FIREWATCH_HUB_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STREAM_RING_DEFAULT 1024    /* events kept for resume */
#define STREAM_RING_MAX 65536       /* largest ring accepted */
#define STREAM_DATA_MAX 4096        /* longest event document, bytes */
#define STREAM_TYPE_MAX 31          /* longest event type name */
#define STREAM_KEEPALIVE_MS 15000   /* comment sent to idle clients this often */
#define STREAM_CLIENTS_DEFAULT 1024 /* connected clients at most */

struct stream_config {
    size_t ring;        /* 0: STREAM_RING_DEFAULT */
    int keepalive_ms;   /* 0: STREAM_KEEPALIVE_MS */
    size_t clients_max; /* 0: STREAM_CLIENTS_DEFAULT */
    uint64_t first_id;  /* id of the first event; 0: the wall clock in ms, so ids rise across restarts */
};

/* Counters for /metrics. */
struct stream_stats {
    uint64_t published; /* events accepted */
    uint64_t last_id;   /* id of the newest event, first_id - 1 before any */
    uint64_t clients;   /* connected now */
    uint64_t dropped;   /* clients disconnected because they fell behind the ring */
    uint64_t refused;   /* clients refused at clients_max */
};

struct stream;
struct MHD_Connection;
struct MHD_Response;

/* Creates a stream and starts its pump thread. cfg may be NULL. Returns
 * NULL with errno (EINVAL, ENOMEM, or the thread or eventfd error). Free
 * with stream_free after the HTTP daemon is stopped. */
struct stream *stream_new(const struct stream_config *cfg);

/* Stops the pump and frees the ring. Accepts NULL. Every client must be gone
 * (stream_shutdown, then MHD_stop_daemon). */
void stream_free(struct stream *s);

/* Appends one event: type matches [a-z_.]{1,31}, json is one JSON document
 * (line breaks are folded into spaces, since SSE data is line-based). Safe
 * from any thread; never waits for a client. Returns the event's id (> 0),
 * or -EINVAL, -EMSGSIZE (over STREAM_DATA_MAX), -ENOMEM. */
int64_t stream_publish(struct stream *s, const char *type, const char *json);

/* Copies the counters. Safe from any thread. */
void stream_stats(struct stream *s, struct stream_stats *out);

/* For http.c: the response that streams events to conn, starting after
 * last_id when has_last_id (Last-Event-ID), or with the next new event. The
 * response is for this one connection; queue it and destroy your reference.
 * Returns NULL when the client limit is reached or shutdown began (errno
 * EAGAIN) or on ENOMEM. */
struct MHD_Response *stream_response(struct stream *s, struct MHD_Connection *conn, bool has_last_id,
                                     uint64_t last_id);

/* Ends every client's stream and resumes the suspended ones, so the HTTP
 * daemon can stop; new clients are refused from now on. */
void stream_shutdown(struct stream *s);

#endif
