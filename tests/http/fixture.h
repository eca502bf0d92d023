/*
 * fixture.h - a hub database with a small neighbourhood in it, and a fake
 * daemon behind the HTTP hooks, for the API suite and the browser suite's
 * server (serve_fixture).
 *
 * The database is created by the store's own store_open (so the schema is
 * exactly the daemon's) and filled with one site, two zones, households,
 * nodes with a month of readings, troubles, past incidents and drills, test
 * events and three users. The fake daemon acts on incidents the way the
 * real one's incident engine answers (acknowledge only in alarm, clear only
 * once acknowledged, one drill per zone), writes the result to the
 * database and publishes it on the live stream, as the daemon does.
 *
 * fx_regional adds what a regional hub (hub.conf mode regional) reads: three
 * areas with the documents their hubs forwarded (docs/federation.md), their
 * incidents and CAP alerts, and a removed area that must not show.
 */
#ifndef FIREWATCH_TEST_HTTP_FIXTURE_H
#define FIREWATCH_TEST_HTTP_FIXTURE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "http.h"

#define FX_SITE "hoa-binh"
#define FX_ZONE_A "to-1"
#define FX_ZONE_B "to-2"
#define FX_NODE "n-101" /* zone A, a month of readings */
#define FX_HOSTILE_ZONE_NAME "Zone \"<script>alert(1)</script>\" & 'x'"
#define FX_HOSTILE_CONTACT "\"; DROP TABLE users; -- <b>bold</b>"
#define FX_ADMIN "an.admin"
#define FX_WATCH "binh.watch"
#define FX_TECH "chi.tech"
#define FX_PASSWORD "correct horse battery"

/* The regional fixture (fx_regional). */
#define FX_AREA_ALARM "phuong-7"   /* a fire in alarm (with its CAP alert) and a drill */
#define FX_AREA_STALE "an-phu"     /* not heard from for 47 min, bridge down, not ready */
#define FX_AREA_OK "hoa-binh"      /* ready, bridge up, one fire cleared 3 days ago */
#define FX_AREA_REMOVED "cu-xa"    /* removed: must not be listed */
#define FX_AREA_ALARM_INCIDENT 12  /* phuong-7's fire, state alarm */
#define FX_AREA_DRILL_INCIDENT 13  /* phuong-7's drill, acknowledged */
#define FX_AREA_CLEARED_INCIDENT 7 /* hoa-binh's fire, cleared, CAP Cancel */
#define FX_AREA_STALE_MIN 47       /* minutes since an-phu's hub last spoke */

struct fixture {
    char dir[256];
    char db_path[512];
    struct sqlite3 *db; /* the fake daemon's connection */
    struct store *store;
    pthread_mutex_t mu;
    struct stream *stream; /* where the fake daemon publishes; set after http_start */
    /* what the hooks saw and how they answer */
    int calls;
    enum http_incident_op last_op;
    uint32_t last_id;
    char last_user[64];
    char last_zone[40];
    int force_rc;         /* non-zero: answer this instead of acting */
    int hook_delay_ms;    /* a daemon slow to answer: the hook waits this long first */
    volatile int entered; /* hooks entered (set before the delay) */
    bool regional;        /* a regional hub: incident actions answer -EROFS, as the daemon's do */
};

/* Creates the database under a fresh temporary directory. hostile: give a
 * zone and a household names full of quotes and markup. Returns 0 or -errno. */
int fx_open(struct fixture *fx, bool hostile);

/* Closes and removes everything. */
void fx_close(struct fixture *fx);

/* The hooks, with fx as their context. */
struct http_hooks fx_hooks(struct fixture *fx);

/* Simulates a node's fire escalating in zone: an incident in state alarm,
 * its timeline, and an "incident" event on the stream. Returns the id. */
uint32_t fx_escalate(struct fixture *fx, const char *zone, const char *node);

/* Adds n_nodes more detectors (one per household, 25 households per zone,
 * zones bulk-0, bulk-1, ...) with readings_per_node readings a minute apart
 * ending now, for measuring query times at scale. Returns 0 or -EIO. */
int fx_bulk(struct fixture *fx, int n_nodes, int readings_per_node);

/* Seeds the regional tables (areas, area_incidents, area_alerts) with the
 * FX_AREA_* areas, as a regional hub's receiver would have written them from
 * the area hubs' documents. A regional server also sets fx->regional.
 * Returns 0 or -EIO. */
int fx_regional(struct fixture *fx);

/* A new fire in alarm in an area's zone, as the receiver would store it
 * from the area's incident document (its hub document lists it open).
 * Returns the incident id (the area's next), or 0 on error. */
uint32_t fx_area_escalate(struct fixture *fx, const char *area, const char *zone);

/* Runs one SQL statement on the fixture's connection (0 or -EIO). */
int fx_sql(struct fixture *fx, const char *sql);

/* Reads one integer from a query (or -1). */
int64_t fx_sql_int(struct fixture *fx, const char *sql);

#endif
