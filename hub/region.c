/*
 * region.c - see region.h. One connection, statements prepared once, each
 * message one short transaction (a few per area per minute in steady
 * state; a burst of retained documents when the hub subscribes).
 */
#include "region.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "fed.h"
#include "log.h"
#include "store.h"

enum { R_AREA_OK, R_BRIDGE, R_HUB, R_READINESS, R_SEEN, R_INC_UPSERT, R_INC_RECONCILE, R_ALERT, R_COUNT };

static const char *const sql[R_COUNT] = {
    [R_AREA_OK] = "SELECT 1 FROM areas WHERE id = ?1 AND removed_ms = 0",
    [R_BRIDGE] = "UPDATE areas SET bridge_online = ?2, bridge_ms = ?3 WHERE id = ?1",
    [R_HUB] = "UPDATE areas SET hub_doc = ?2, hub_ms = ?3, last_seen_ms = ?4 WHERE id = ?1 AND hub_ms <= ?3",
    [R_READINESS] = "UPDATE areas SET readiness_doc = ?2, readiness_ms = ?3, last_seen_ms = ?4, "
                    "readiness_summary = ?5 WHERE id = ?1 AND readiness_ms <= ?3",
    [R_SEEN] = "UPDATE areas SET last_seen_ms = ?2 WHERE id = ?1",
    /* Newer documents only: updated_ms is the area hub's stamp. */
    [R_INC_UPSERT] =
        "INSERT INTO area_incidents(area, id, zone, zone_name, site_name, state, kind, origin, cause, "
        "opened_ms, alarm_ms, ack_ms, ack_by, closed_ms, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
        "?9, ?10, ?11, ?12, ?13, ?14, ?15) ON CONFLICT(area, id) DO UPDATE SET zone = excluded.zone, "
        "zone_name = excluded.zone_name, site_name = excluded.site_name, state = excluded.state, kind = "
        "excluded.kind, origin = excluded.origin, cause = excluded.cause, opened_ms = excluded.opened_ms, "
        "alarm_ms = excluded.alarm_ms, ack_ms = excluded.ack_ms, ack_by = excluded.ack_by, closed_ms = "
        "excluded.closed_ms, updated_ms = excluded.updated_ms WHERE excluded.updated_ms >= "
        "area_incidents.updated_ms",
    /* The hub document lists what is open (?3, JSON array); older open rows
     * it does not list were closed while we were not listening. "+closed_ms"
     * keeps SQLite on the primary key (this area's rows) rather than the
     * index of every area's open incidents, which grows with the region. */
    [R_INC_RECONCILE] = "UPDATE area_incidents SET closed_ms = ?2, updated_ms = ?2 WHERE area = ?1 AND "
                        "+closed_ms = 0 AND updated_ms <= ?2 AND id NOT IN (SELECT value FROM json_each(?3))",
    [R_ALERT] =
        "INSERT INTO area_alerts(area, id, xml, updated_ms) VALUES (?1, ?2, ?3, ?4) ON CONFLICT(area, "
        "id) DO UPDATE SET xml = excluded.xml, updated_ms = excluded.updated_ms",
};

struct region {
    struct store *db;
    sqlite3_stmt *st[R_COUNT];
    pthread_mutex_t mu; /* paho calls back on one thread; this guards against any other */
    struct log_limit limit;
    atomic_uint_fast64_t received, applied, rejected, unknown_area, errors;
};

struct region *region_new(const char *database, char *why, size_t why_size)
{
    struct region *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(why, why_size, "out of memory");
        return NULL;
    }
    r->db = store_open(database, 0, why, why_size);
    if (!r->db) {
        free(r);
        return NULL;
    }
    for (int i = 0; i < R_COUNT; i++) {
        if (sqlite3_prepare_v3(store_handle(r->db), sql[i], -1, SQLITE_PREPARE_PERSISTENT, &r->st[i], NULL) !=
            SQLITE_OK) {
            snprintf(why, why_size, "regional tables: %s", sqlite3_errmsg(store_handle(r->db)));
            region_free(r);
            return NULL;
        }
    }
    pthread_mutex_init(&r->mu, NULL);
    return r;
}

void region_free(struct region *r)
{
    if (!r)
        return;
    for (int i = 0; i < R_COUNT; i++)
        sqlite3_finalize(r->st[i]);
    store_close(r->db);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

void region_get_stats(struct region *r, struct region_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!r)
        return;
    out->received = atomic_load(&r->received);
    out->applied = atomic_load(&r->applied);
    out->rejected = atomic_load(&r->rejected);
    out->unknown_area = atomic_load(&r->unknown_area);
    out->errors = atomic_load(&r->errors);
}

/* Runs statement i with its bindings done by the caller; 0 or -EIO. */
static int step(struct region *r, int i)
{
    int rc = sqlite3_step(r->st[i]);
    sqlite3_reset(r->st[i]);
    sqlite3_clear_bindings(r->st[i]);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW)
        return 0;
    log_error("regional: %s", sqlite3_errmsg(store_handle(r->db)));
    return -EIO;
}

/* "regional: <what> <subject>: <why>", rate-limited. */
static void warn(struct region *r, const char *what, const char *subject, const char *why)
{
    uint64_t sup = 0;
    if (log_limit_allow(&r->limit, clock_mono_ms(), 10, 60000, &sup))
        log_warn("regional: %s %s ignored: %s%s", what, subject, why,
                 sup ? " (similar lines suppressed)" : "");
}

static bool area_known(struct region *r, const char *area)
{
    sqlite3_stmt *q = r->st[R_AREA_OK];
    sqlite3_bind_text(q, 1, area, -1, SQLITE_STATIC);
    bool ok = sqlite3_step(q) == SQLITE_ROW;
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    return ok;
}

static int apply_incident(struct region *r, const char *area, const struct fed_incident *f, int64_t ts)
{
    sqlite3_stmt *q = r->st[R_INC_UPSERT];
    sqlite3_bind_text(q, 1, area, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, f->id);
    sqlite3_bind_text(q, 3, f->zone, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 4, f->zone_name, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 5, f->site_name, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 6, f->state, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 7, f->kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 8, f->origin, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 9, f->cause, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 10, f->opened_ms);
    sqlite3_bind_int64(q, 11, f->alarm_ms);
    sqlite3_bind_int64(q, 12, f->ack_ms);
    sqlite3_bind_text(q, 13, f->ack_by, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 14, f->closed_ms);
    sqlite3_bind_int64(q, 15, ts);
    return step(r, R_INC_UPSERT);
}

/* Applies one message; returns 1 when written, 0 when ignored, or a
 * negative errno. Holds r->mu. */
static int apply(struct region *r, const char *area, enum fed_kind kind, uint32_t id, const char *payload,
                 size_t len, int64_t now)
{
    char why[128];
    int rc = 0;
    switch (kind) {
    case FED_BRIDGE: {
        if (len != 1 || (payload[0] != '0' && payload[0] != '1'))
            return -EINVAL;
        sqlite3_stmt *q = r->st[R_BRIDGE];
        sqlite3_bind_text(q, 1, area, -1, SQLITE_STATIC);
        sqlite3_bind_int(q, 2, payload[0] == '1');
        sqlite3_bind_int64(q, 3, now);
        rc = step(r, R_BRIDGE);
        if (rc == 0)
            log_info("regional: area %s's bridge is %s", area, payload[0] == '1' ? "up" : "down");
        return rc < 0 ? rc : 1;
    }
    case FED_HUB:
    case FED_READINESS: {
        struct fed_summary s;
        if (fed_summary_decode(area, kind, payload, len, &s, why, sizeof why) < 0) {
            warn(r, kind == FED_HUB ? "hub document of area" : "readiness of area", area, why);
            return -EINVAL;
        }
        int i = kind == FED_HUB ? R_HUB : R_READINESS;
        sqlite3_stmt *q = r->st[i];
        sqlite3_bind_text(q, 1, area, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, payload, (int)len, SQLITE_STATIC);
        sqlite3_bind_int64(q, 3, s.ts_ms);
        sqlite3_bind_int64(q, 4, now);
        char *sum = kind == FED_READINESS ? fed_readiness_summary(payload, len, FED_WORST_ZONES) : NULL;
        if (sum)
            sqlite3_bind_text(q, 5, sum, -1, free);
        rc = step(r, i);
        if (rc < 0 || kind != FED_HUB)
            return rc < 0 ? rc : 1;
        if (sqlite3_changes(store_handle(r->db)) == 0)
            return 0; /* older than the one we have: it says nothing new */
        char open[FED_OPEN_MAX * 11 + 3] = "[";
        size_t used = 1;
        for (size_t k = 0; k < s.n_open; k++)
            used += (size_t)snprintf(open + used, sizeof open - used, "%s%u", k ? "," : "", s.open[k]);
        snprintf(open + used, sizeof open - used, "]");
        q = r->st[R_INC_RECONCILE];
        sqlite3_bind_text(q, 1, area, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, s.ts_ms);
        sqlite3_bind_text(q, 3, open, -1, SQLITE_STATIC);
        rc = step(r, R_INC_RECONCILE);
        int closed = sqlite3_changes(store_handle(r->db));
        if (rc == 0 && closed > 0)
            log_info("regional: area %s: %d incident%s closed while the link was down", area, closed,
                     closed == 1 ? "" : "s");
        return rc < 0 ? rc : 1;
    }
    case FED_INCIDENT: {
        struct fed_incident f;
        if (fed_incident_decode(area, payload, len, &f, why, sizeof why) < 0) {
            warn(r, "incident document of area", area, why);
            return -EINVAL;
        }
        if (f.id != id) {
            warn(r, "incident document of area", area, "its id differs from the topic's");
            return -EINVAL;
        }
        rc = apply_incident(r, area, &f, f.ts_ms);
        if (rc == 0 && sqlite3_changes(store_handle(r->db)) == 0)
            return 0; /* older than the one we have */
        if (rc == 0)
            log_info("regional: area %s: incident %u %s", area, f.id, f.state);
        return rc < 0 ? rc : 1;
    }
    case FED_CAP: {
        if (fed_cap_check(area, payload, len, why, sizeof why) < 0) {
            warn(r, "CAP alert of area", area, why);
            return -EINVAL;
        }
        sqlite3_stmt *q = r->st[R_ALERT];
        sqlite3_bind_text(q, 1, area, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, id);
        sqlite3_bind_text(q, 3, payload, (int)len, SQLITE_STATIC);
        sqlite3_bind_int64(q, 4, now);
        rc = step(r, R_ALERT);
        return rc < 0 ? rc : 1;
    }
    default: return -EINVAL;
    }
}

void region_on_message(void *ctx, const char *topic, size_t topic_len, const void *payload, size_t len)
{
    struct region *r = ctx;
    char area[FW_ID_MAX + 1];
    enum fed_kind kind;
    uint32_t id;
    atomic_fetch_add(&r->received, 1);
    if (fed_topic_parse(topic, topic_len, area, &kind, &id) < 0) {
        atomic_fetch_add(&r->rejected, 1);
        char t[FED_TOPIC_MAX];
        snprintf(t, sizeof t, "%.*s", (int)(topic_len < sizeof t - 1 ? topic_len : sizeof t - 1), topic);
        warn(r, "message on", t, "not a federation topic");
        return;
    }
    if (len == 0)
        return; /* a retained copy cleared after its close: nothing to do */
    pthread_mutex_lock(&r->mu);
    if (!area_known(r, area)) {
        atomic_fetch_add(&r->unknown_area, 1);
        warn(r, "message from area", area, "not registered (firewatchctl area add) or removed");
        pthread_mutex_unlock(&r->mu);
        return;
    }
    int64_t now = clock_wall_ms();
    sqlite3 *db = store_handle(r->db);
    sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    int rc = apply(r, area, kind, id, payload, len, now);
    if (rc >= 0 && (kind == FED_INCIDENT || kind == FED_CAP)) {
        sqlite3_stmt *q = r->st[R_SEEN];
        sqlite3_bind_text(q, 1, area, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, now);
        if (step(r, R_SEEN) < 0)
            rc = -EIO;
    }
    if (rc >= 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = -EIO;
    if (rc < 0)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&r->mu);
    if (rc == -EINVAL)
        atomic_fetch_add(&r->rejected, 1);
    else if (rc < 0)
        atomic_fetch_add(&r->errors, 1);
    else if (rc > 0)
        atomic_fetch_add(&r->applied, 1);
}
