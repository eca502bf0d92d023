/*
 * http_hub.h - the daemon's half of the HTTP face: it starts the HTTP
 * server (http.h) from the hub's configuration and implements its hooks.
 *
 * The HTTP worker threads never touch the hub's state. An incident action
 * from the dashboard (acknowledge, clear, start a drill) is posted to a
 * small mutex-protected queue and the main loop is woken through an
 * eventfd in its poll set; the main loop runs it through the same handler
 * as firewatchctl's commands (http_hub_serve) and the worker, waiting on a
 * condition variable, gets the engine's answer or -ETIMEDOUT after
 * HTTP_HUB_ACTION_TIMEOUT_MS. /metrics reads a text snapshot that the main
 * loop refreshes (http_hub_set_metrics), so the hook only copies under a
 * lock. Stream events are published from the main loop; publishing copies
 * into the stream's ring and never waits for a client. Readiness is the
 * exception: scoring every zone reads the database, so a thread of this
 * module does it on its own connection when the main loop says something
 * changed (http_hub_readiness_changed), at most every
 * HTTP_HUB_READINESS_EVERY_MS, and publishes the zones whose score or
 * level moved.
 */
#ifndef FIREWATCH_HUB_HTTP_HUB_H
#define FIREWATCH_HUB_HTTP_HUB_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "http.h"
#include "hubconf.h"
#include "incident.h"
#include "ingest.h"
#include "writer.h"

#define HTTP_HUB_ACTION_TIMEOUT_MS 5000  /* a dashboard action waits this long for the main loop */
#define HTTP_HUB_QUEUE_MAX 64            /* actions waiting for the main loop at most */
#define HTTP_HUB_READINESS_EVERY_MS 5000 /* readiness is rescored at most this often */

struct http_hub;

/* Starts the HTTP server on cfg->http_listen. Returns the handle, owned by
 * the caller (http_hub_stop), or NULL with errno set (the reason is
 * logged); errno 0 means HTTP is turned off (http_listen empty). */
struct http_hub *http_hub_start(const struct hub_config *cfg);

/* The eventfd that becomes readable when actions are waiting; -1 for NULL. */
int http_hub_fd(const struct http_hub *w);

/* The main loop's side of an action: performs op for user and returns 0 or
 * the engine's negative errno; *new_id gets a drill's incident id. */
typedef int (*http_hub_action_fn)(void *ctx, enum http_incident_op op, uint32_t id, const char *zone,
                                  const char *user, uint32_t *new_id);

/* Runs every waiting action through fn (main loop only) and wakes the HTTP
 * threads waiting for them. Accepts NULL. */
void http_hub_serve(struct http_hub *w, http_hub_action_fn fn, void *ctx);

/* Publishes one stream event of type (see docs/http-api.md) and frees doc.
 * Main loop; never waits. Accepts a NULL handle (doc is still freed). */
void http_hub_publish(struct http_hub *w, const char *type, cJSON *doc);

/* The daemon's numbers for /metrics, gathered by the main loop. */
struct http_hub_metrics {
    struct ingest_stats ingest;
    struct writer_stats writer;
    uint64_t unknown_node;                           /* items from nodes the main loop does not know */
    uint64_t seq_gaps;                               /* readings and events missed, by sequence number */
    uint64_t incidents_open[INCIDENT_STATE_COUNT];   /* open incidents by state (final states 0) */
    uint64_t incidents_closed[INCIDENT_STATE_COUNT]; /* closed since start, by final state */
    uint32_t last_incident_id;
    uint64_t nodes_ok, nodes_offline, nodes_trouble, nodes_uncommissioned;
    uint64_t troubles_open[8]; /* by enum supervise_trouble */
    const char *trouble_names[8];
    size_t n_trouble_kinds;
    uint64_t zones;
};

/* Something readiness depends on changed (troubles, node state, incidents,
 * topology): rescore soon. Main loop; never waits. Accepts NULL. */
void http_hub_readiness_changed(struct http_hub *w);

/* Formats m as Prometheus text and keeps it for the metrics hook. Main
 * loop. Accepts NULL. */
void http_hub_set_metrics(struct http_hub *w, const struct http_hub_metrics *m);

/* Answers every waiting action with -ETIMEDOUT, then stops the server
 * (waiting for requests in flight) and frees everything. Accepts NULL. */
void http_hub_stop(struct http_hub *w);

#endif
