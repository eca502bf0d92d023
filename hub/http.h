/*
 * http.h - the hub's HTTP face: dashboard, JSON API, live stream, metrics.
 *
 * One call starts it all: http_start() binds http_listen, opens its own
 * read-only SQLite connections (and one read-write connection for users,
 * API tokens and the audit log), creates the live stream and starts
 * libmicrohttpd's polling threads (epoll). Nothing in here touches the
 * daemon's state directly: anything that changes incidents (acknowledge,
 * clear, start a drill) goes through http_hooks, which the daemon implements
 * by posting to its main loop and waiting for the answer with a timeout.
 * The daemon publishes changes to dashboards with stream_publish() on
 * http_stream(srv). docs/http-api.md lists the routes; docs/internals/http.md
 * explains the threads and limits.
 */
#ifndef FIREWATCH_HUB_HTTP_H
#define FIREWATCH_HUB_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stream.h"

#define HTTP_LISTEN_DEFAULT "127.0.0.1:8080"
#define HTTP_BODY_MAX_DEFAULT (16 * 1024)
#define HTTP_MSG_MAX 160 /* a hook's message to the user, with the NUL */

struct http_config {
    const char *listen;      /* "host:port", "[v6]:port"; NULL: HTTP_LISTEN_DEFAULT; port 0 picks one */
    const char *database;    /* the hub's SQLite file (required) */
    const char *web_root;    /* the dashboard's directory (hub/web, installed under share/) */
    const char *lang;        /* the site's default dashboard language: "vi" or "en"; NULL: "en" */
    bool secure_cookie;      /* add Secure to the session cookie (behind a TLS proxy) */
    int threads;             /* libmicrohttpd polling threads; 0: 2 */
    int db_readers;          /* read-only connections; 0: threads + 1 */
    size_t body_max;         /* request body limit; 0: HTTP_BODY_MAX_DEFAULT */
    int timeout_s;           /* idle connection / slow sender timeout; 0: 30 */
    int connections_max;     /* 0: 1024 */
    int session_idle_s;      /* 0: 12 hours */
    int stream_keepalive_ms; /* 0: STREAM_KEEPALIVE_MS */
    size_t stream_ring;      /* 0: STREAM_RING_DEFAULT */
    /* CAP 1.2 alerts (GET /api/v1/incidents/<id>/cap, /api/v1/cap; hub/cap.h): */
    const char *hub_id;          /* identifiers' hub part; NULL or "": "hub" */
    const char *public_url;      /* the dashboard's public URL, for links; NULL or "": none */
    const char *cap_sender;      /* NULL or "": firewatch-<hub_id> */
    const char *cap_sender_name; /* NULL or "": none */
    bool regional;               /* a regional hub (hub.conf mode regional): /api/v1/health says so */
};

/* What a state-changing request asks the daemon's incident engine to do. */
enum http_incident_op {
    HTTP_INCIDENT_ACK,   /* acknowledge incident id */
    HTTP_INCIDENT_CLEAR, /* clear incident id */
    HTTP_INCIDENT_DRILL, /* start a drill in zone; the new id goes to *new_id */
};

/* Implemented by the daemon; called from HTTP threads, never the main one. */
struct http_hooks {
    void *ctx;
    /* Performs op as user and waits for the main loop's answer. Returns 0,
     * or the engine's negative errno (-ENOENT unknown id or zone, -EALREADY,
     * -EPERM wrong state, -EBUSY sensors still in alarm, -EINVAL), or
     * -ETIMEDOUT when the main loop did not answer in time. msg (may be
     * left empty) receives a sentence for the user, e.g. incident_strerror. */
    int (*incident_action)(void *ctx, enum http_incident_op op, uint32_t id, const char *zone,
                           const char *user, uint32_t *new_id, char *msg, size_t msg_size);
    /* Appends the daemon's counters to /metrics as Prometheus text (messages
     * in, rejected by reason, queue depth, commit latency, incidents by
     * state, nodes by health). Must be thread-safe (copy counters under a
     * lock or read atomics). Returns bytes written (< size) or a negative
     * errno. May be NULL. */
    int (*metrics)(void *ctx, char *buf, size_t size);
};

struct http_server;

/* Sets every field of cfg to its default (database stays NULL). */
void http_config_defaults(struct http_config *cfg);

/* Starts serving. The strings in cfg and the hooks are copied. Returns the
 * server, owned by the caller (http_stop), or NULL with errno: EINVAL (bad
 * listen address or missing database), EADDRINUSE, ENOENT (database), or
 * another errno; the reason is logged. */
struct http_server *http_start(const struct http_config *cfg, const struct http_hooks *hooks);

/* The live stream, owned by the server; publish to it from any thread. */
struct stream *http_stream(struct http_server *srv);

/* The TCP port actually bound (useful with port 0). */
int http_port(const struct http_server *srv);

/* Ends every stream, stops the threads, closes the database connections and
 * frees the server. Accepts NULL. */
void http_stop(struct http_server *srv);

#endif
