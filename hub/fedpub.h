/*
 * fedpub.h - the area hub's federation publisher (federation true): a
 * thread that tells the regional view what this hub knows, on the hub's own
 * broker under firewatch/v1/fed/<hub_id>/ (fed.h names the topics), from
 * where a Mosquitto bridge forwards it.
 *
 * It reads the database on its own connection, never the main loop's
 * state: the main loop only says "something changed" (fedpub_changed) and
 * "we reconnected" (fedpub_connected). It then waits for the writer's next
 * batch to commit (settle_ms), reads the open incidents, the readiness of
 * every zone and a few counts, and publishes what differs from what it
 * published last, plus a heartbeat of the hub document every
 * FEDPUB_HEARTBEAT_MS. It looks again FEDPUB_RECHECK_MS later, since a
 * row may commit a batch late. Summaries are for people watching a region;
 * the alarm itself never waits for any of this.
 */
#ifndef FIREWATCH_HUB_FEDPUB_H
#define FIREWATCH_HUB_FEDPUB_H

#include <stdint.h>

#include "cap.h"
#include "ingest.h"

#define FEDPUB_HEARTBEAT_MS 60000 /* the hub document is republished this often */
#define FEDPUB_RECHECK_MS 2000    /* a second look after a change */
#define FEDPUB_MIN_GAP_MS 1000    /* between two looks at least */

struct fedpub_config {
    const char *database;
    const char *area;       /* this hub's hub_id */
    const char *name;       /* its name in the regional view */
    const char *public_url; /* its dashboard, or "" */
    const char *version;    /* the hub's version */
    struct cap_hub cap;     /* as the HTTP side builds CAP alerts */
    int settle_ms;          /* wait after a change before reading (> the writer's batch_ms) */
};

struct fedpub;

/* Starts the thread (strings are copied). Publishes through in, which must
 * outlive it. Returns NULL with errno set. */
struct fedpub *fedpub_start(const struct fedpub_config *cfg, struct ingest *in);

/* Incidents, troubles, nodes or topology may have changed. Never waits. */
void fedpub_changed(struct fedpub *p);

/* The hub (re)connected to its broker: republish everything. Never waits. */
void fedpub_connected(struct fedpub *p);

/* Publishes once more what is pending, stops the thread, frees. Accepts NULL. */
void fedpub_stop(struct fedpub *p);

/* Counters for the logs and tests. */
struct fedpub_stats {
    uint64_t published; /* messages handed to the client */
    uint64_t scans;
    uint64_t errors; /* reads or encodings that failed */
};
void fedpub_get_stats(struct fedpub *p, struct fedpub_stats *out);

#endif
