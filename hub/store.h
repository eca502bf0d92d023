/*
 * store.h - the hub's SQLite database: topology, readings, events,
 * incidents and their timelines, troubles, users and the audit log.
 *
 * One struct store wraps one SQLite connection with its statements prepared
 * once. The hub opens several (the main thread's, the event writer's in the
 * MQTT callback, the readings writer's); firewatchctl opens one. Every
 * connection runs in WAL mode with foreign keys on and a busy timeout, so
 * they can write one after another without SQLITE_BUSY errors. The schema is
 * created and migrated by PRAGMA user_version on open. SQLite result codes
 * are turned into negative errnos here and logged once, at this boundary.
 */
#ifndef FIREWATCH_HUB_STORE_H
#define FIREWATCH_HUB_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "firewatch/protocol.h"

struct store;
struct sqlite3;

/* Newest schema version this build writes. */
#define STORE_SCHEMA_VERSION 7

/* How long one connection waits for another's write lock. */
#define STORE_BUSY_TIMEOUT_MS 5000

enum store_open_flags {
    STORE_CREATE = 1 << 0,        /* create the file and the schema if missing */
    STORE_QUICK_CHECK = 1 << 1,   /* run PRAGMA quick_check and refuse a damaged file */
    STORE_SYNC_FULL = 1 << 2,     /* synchronous=FULL: commits survive a power cut */
    STORE_NO_CHECKPOINT = 1 << 3, /* leave WAL checkpoints to the other connections */
};

/* Opens (and migrates) the database at path. Returns the store, owned by the
 * caller (store_close), or NULL with errno set and a one-line reason fit for
 * an operator in why: -ENOENT missing, -EACCES unwritable, -EILSEQ corrupt
 * or not a database, -EPROTO made by a newer version. */
struct store *store_open(const char *path, int flags, char *why, size_t why_size);

/* Closes the connection; accepts NULL. */
void store_close(struct store *s);

/* The raw connection, for read-only listing queries (firewatchctl). Owned by
 * the store. */
struct sqlite3 *store_handle(struct store *s);

/* --- Topology ---------------------------------------------------------- */

struct store_household {
    char id[FW_ID_MAX + 1];
    char zone[FW_ID_MAX + 1];
    char address[128];
    char contact[64];
    char phone[32];
    double lat, lon;
    bool has_pos;
};

/* Each returns 0, -EEXIST (id taken), -ENOENT (id or a referenced parent
 * missing), -ENOTEMPTY (remove while children exist), -EINVAL (bad id) or
 * -EIO. */
int store_site_add(struct store *s, const char *id, const char *name);
int store_site_edit(struct store *s, const char *id, const char *name);
int store_site_remove(struct store *s, const char *id);

/* neighbours: comma-separated zone ids (may be NULL or ""); each must exist. */
int store_zone_add(struct store *s, const char *id, const char *site, const char *name,
                   const char *neighbours);
/* Any of site, name, neighbours may be NULL to leave it unchanged. */
int store_zone_edit(struct store *s, const char *id, const char *site, const char *name,
                    const char *neighbours);
int store_zone_remove(struct store *s, const char *id);

int store_household_add(struct store *s, const struct store_household *h);
/* Replaces every field of the household h->id. */
int store_household_edit(struct store *s, const struct store_household *h);
int store_household_get(struct store *s, const char *id, struct store_household *out);
int store_household_remove(struct store *s, const char *id);

int store_node_add(struct store *s, const char *id, const char *household, enum fw_node_kind kind,
                   const char *room, int64_t now_ms);
int store_node_remove(struct store *s, const char *id);

/* A number that changes whenever the topology changes (kept by triggers on
 * sites, zones, neighbours, households and nodes). The hub polls it to pick up firewatchctl's
 * edits without a restart. Returns 0 or -EIO. */
int store_change_counter(struct store *s, int64_t *out);

/* One node as the hub loads it. */
struct store_node {
    char id[FW_ID_MAX + 1];
    char household[FW_ID_MAX + 1];
    char zone[FW_ID_MAX + 1];
    enum fw_node_kind kind;
    uint32_t boot;
    bool online;
    int64_t last_seen_ms;
    int64_t last_test_ms;
    int batt_pct; /* -1 when unknown */
    int interval_s;
    int64_t seq_gaps;
    int64_t commissioned_ms;   /* first passed test; 0 when not yet commissioned */
    int64_t decommissioned_ms; /* retired (firewatchctl node decommission); 0 in service */
};

struct store_zone {
    char id[FW_ID_MAX + 1];
    char site[FW_ID_MAX + 1];
    char neighbours[256]; /* comma-separated */
};

/* Calls fn for every row; stops and returns fn's value when it is non-zero.
 * Returns 0, fn's value, or -EIO. */
int store_each_zone(struct store *s, int (*fn)(void *ctx, const struct store_zone *z), void *ctx);
int store_each_node(struct store *s, int (*fn)(void *ctx, const struct store_node *n), void *ctx);
/* Households per zone: fn(ctx, zone, household). */
int store_each_household(struct store *s, int (*fn)(void *ctx, const char *zone, const char *household),
                         void *ctx);

/* Writes the runtime fields of a node (online, boot, fw, last seen, battery,
 * last test, seq gaps). Returns 0, -ENOENT or -EIO. */
int store_node_save(struct store *s, const struct store_node *n, const char *fw);

/* --- Readings and events ----------------------------------------------- */

struct store_reading {
    char node[FW_ID_MAX + 1];
    int64_t rx_ms; /* hub receive time */
    struct fw_reading r;
};

/* Inserts n readings in one transaction. Returns the number written or -EIO. */
int store_readings_write(struct store *s, const struct store_reading *r, size_t n);

/* Inserts one event in its own transaction, de-duplicated on
 * (node, boot, seq). Returns 1 when stored now, 0 when already stored,
 * -ENOENT when the node is unknown (nothing stored), -EIO on failure. */
int store_event_write(struct store *s, const char *node, uint32_t boot, const struct fw_event *ev,
                      int64_t rx_ms);

/* The ingest thread's view of a node: its current boot (0 when never
 * seen) and the highest event seq stored for that boot (-1 when none).
 * Returns 0, -ENOENT (unknown node) or -EIO. */
int store_node_ingest_state(struct store *s, const char *node, uint32_t *boot, int64_t *last_seq);

/* Raises the node's stored boot to boot (never lowers it). 0, -EIO. */
int store_node_raise_boot(struct store *s, const char *node, uint32_t boot);

/* Drops raw readings older than retention_days after folding them into
 * 5-minute and hourly rollups (min, max, mean), and rollups older than two
 * years. Returns the number of raw rows removed, or -EIO. */
int store_retention(struct store *s, int64_t now_ms, int retention_days);

/* Folds the raw readings in [from_ms, to_ms) into the rollup tables. */
int store_rollup(struct store *s, int64_t from_ms, int64_t to_ms);

/* --- Incidents, troubles, commands ------------------------------------- */

struct store_incident {
    uint32_t id;
    char zone[FW_ID_MAX + 1];
    char origin[FW_ID_MAX + 1];
    char state[16]; /* verifying alarm acknowledged cleared dismissed */
    char cause[16];
    bool drill;
    int64_t opened_ms, escalated_ms, acked_ms, cleared_ms;
    char acked_by[72], cleared_by[72];
    char opened_by[72]; /* drill: who started it */
    char nodes[1024];   /* alarming nodes, comma-separated; "!id" for one back to normal */
    char sounded[640];  /* zones it published "alarm" to, comma-separated */
};

/* Inserts or replaces incident inc->id. Returns 0 or -EIO. */
int store_incident_save(struct store *s, const struct store_incident *inc);
/* Marks incident id final (cleared or dismissed) at ts by who. 0 or -EIO. */
int store_incident_close(struct store *s, uint32_t id, const char *state, int64_t ts_ms, const char *who);
/* Reads one incident. Returns 0, -ENOENT or -EIO. */
int store_incident_get(struct store *s, uint32_t id, struct store_incident *out);
/* Highest incident id ever stored (0 when none). */
int store_incident_max_id(struct store *s, uint32_t *out);
/* Calls fn for every incident not cleared or dismissed. */
int store_each_open_incident(struct store *s, int (*fn)(void *ctx, const struct store_incident *inc),
                             void *ctx);
/* Appends one timeline entry. */
int store_timeline_add(struct store *s, uint32_t incident, int64_t ts_ms, const char *what, const char *who,
                       const char *node, const char *detail);

/* Opens a trouble (node, kind) unless one is already open. Returns its id
 * (> 0), 0 when already open, or -EIO. */
int64_t store_trouble_open(struct store *s, const char *node, const char *kind, int64_t now_ms,
                           const char *detail);
/* Calls fn for every open trouble. */
int store_each_open_trouble(struct store *s,
                            int (*fn)(void *ctx, const char *node, const char *kind, int64_t opened_ms,
                                      int64_t notified_ms),
                            void *ctx);
/* Clears the open trouble (node, kind). Returns 1 cleared, 0 none open, -EIO. */
int store_trouble_clear(struct store *s, const char *node, const char *kind, int64_t now_ms);
/* Records that an open trouble was notified now. */
int store_trouble_notified(struct store *s, const char *node, const char *kind, int64_t now_ms);

/* A request from firewatchctl for the running hub: "ack", "clear" or
 * "drill". */
struct store_command {
    int64_t id;
    char action[16];
    uint32_t incident;
    char zone[FW_ID_MAX + 1];
    char who[64];
};

/* Queues a command. Returns its id (> 0) or -EIO. */
int64_t store_command_add(struct store *s, const char *action, uint32_t incident, const char *zone,
                          const char *who, int64_t now_ms);
/* Fetches the oldest pending command with an id above after_id. Returns 1
 * with out filled, 0 when none, -EIO. */
int store_command_next(struct store *s, int64_t after_id, struct store_command *out);
/* Marks a command done with its outcome ("ok" or a reason). */
int store_command_done(struct store *s, int64_t id, const char *result, int64_t now_ms);
/* Reads a command's outcome: 1 done (result filled), 0 pending, -ENOENT, -EIO. */
int store_command_result(struct store *s, int64_t id, char *result, size_t size);

/* --- Users and audit ---------------------------------------------------- */

/* role: watch, technician or admin. hash: a crypto_pwhash_str string. */
int store_user_add(struct store *s, const char *name, const char *role, const char *hash, int64_t now_ms);
int store_user_remove(struct store *s, const char *name);
int store_user_set_role(struct store *s, const char *name, const char *role);
int store_user_set_password(struct store *s, const char *name, const char *hash);
/* Copies the stored hash. Returns 0, -ENOENT or -EIO. */
int store_user_hash(struct store *s, const char *name, char *hash, size_t size);

/* Appends to the audit log. Returns 0 or -EIO. */
int store_audit(struct store *s, const char *who, const char *action, const char *detail, int64_t now_ms);

/* --- Maintenance -------------------------------------------------------- */

/* Writes a consistent copy of the live database to path with the online
 * backup API. Returns 0, -EEXIST when path exists, or -EIO. */
int store_backup(struct store *s, const char *path);

/* Opens a transaction / commits it (for batches of small writes). */
int store_begin(struct store *s);
int store_commit(struct store *s);

/* Test knob for disk-full tests, a no-op unless the environment variable
 * FW_TEST_MAX_PAGES_FILE names a file: its number becomes this
 * connection's PRAGMA max_page_count (SQLite keeps it at least the current
 * size, so "1" means "no more growth"; raise it to give space back). The
 * hub's writing threads call it before each write. */
void store_test_limits(struct store *s);

#endif
