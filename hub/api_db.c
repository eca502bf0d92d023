/*
 * api_db.c - the HTTP side's own SQLite connections. Reads go through a
 * small pool of read-only connections (WAL readers never block the daemon's
 * writer, nor it them), each preparing its statements once, on first use.
 * Writes that belong to the HTTP side (users, API tokens, the audit log) go
 * through one read-write connection under a mutex; SQLite's busy timeout
 * queues them behind the daemon's own writes. The schema is the store's
 * (hub/store.c), api_tokens included (migration 3): the HTTP side opens
 * a database store_open made or migrated.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "capdb.h"
#include "log.h"

#define BUSY_TIMEOUT_MS 5000

/* A household with its detector count, open trouble kinds, the state of a
 * fire incident one of its detectors is in, and its commissioned detectors.
 * The list and the per-zone form differ only in their WHERE, so each can
 * use its own index (keyset paging by id, or households_zone). */
#define HH_QUERY(from, where)                                                                                \
    "SELECT h.id, h.zone_id, h.address, h.contact, h.phone, h.lat, h.lon, (SELECT count(*) FROM nodes n "    \
    "WHERE n.household_id = h.id), COALESCE((SELECT group_concat(t.kind, ',') FROM troubles t JOIN nodes n " \
    "ON n.id = t.node_id WHERE n.household_id = h.id AND t.cleared_ms IS NULL), ''), COALESCE((SELECT "      \
    "i.state FROM incidents i WHERE i.zone_id = h.zone_id AND i.drill = 0 AND i.state NOT IN ('cleared', "   \
    "'dismissed') AND EXISTS (SELECT 1 FROM nodes n WHERE n.household_id = h.id AND (i.origin_node = n.id "  \
    "OR ',' || i.nodes || ',' LIKE '%,' || n.id || ',%')) ORDER BY i.id DESC LIMIT 1), ''), (SELECT "        \
    "count(*) FROM nodes n WHERE n.household_id = h.id AND n.commissioned_ms > 0) FROM " from                \
    " WHERE " where

/* A node with its open trouble kinds and last reading. ?5 = 1 keeps only
 * the ones needing attention (offline, uncommissioned or with a trouble). */
#define NODE_QUERY(from, where)                                                                              \
    "SELECT n.id, n.household_id, h.zone_id, n.kind, n.room, n.fw, n.online, n.last_seen_ms, "               \
    "n.last_test_ms, n.batt_pct, n.interval_s, n.commissioned_ms, COALESCE((SELECT group_concat(kind, ',') " \
    "FROM troubles t WHERE t.node_id = n.id AND t.cleared_ms IS NULL), ''), r.rx_ms, r.temp_c, r.smoke "     \
    "FROM " from                                                                                             \
    " LEFT JOIN readings r ON r.rowid = (SELECT rowid FROM readings WHERE node_id = n.id ORDER "             \
    "BY rx_ms DESC LIMIT 1) WHERE " where                                                                    \
    " AND n.decommissioned_ms = 0 AND (?5 = 0 OR n.online = 0 OR n.commissioned_ms = 0 OR EXISTS "           \
    "(SELECT 1 FROM troubles t WHERE t.node_id = n.id AND t.cleared_ms IS NULL))"

static const char *const query_sql[Q_COUNT] = {
    [Q_SITES] = "SELECT s.id, s.name, (SELECT count(*) FROM zones z WHERE z.site_id = s.id), "
                "(SELECT count(*) FROM households h JOIN zones z ON z.id = h.zone_id WHERE z.site_id = s.id) "
                "FROM sites s ORDER BY s.id",
    [Q_SITE_GET] = "SELECT id, name FROM sites WHERE id = ?1",
    [Q_ZONES] = "SELECT z.id, z.site_id, z.name, COALESCE((SELECT group_concat(neighbour_id, ',') FROM "
                "zone_neighbours WHERE zone_id = z.id), ''), (SELECT count(*) FROM households h WHERE "
                "h.zone_id = z.id), (SELECT count(*) FROM nodes n JOIN households h ON h.id = n.household_id "
                "WHERE h.zone_id = z.id), COALESCE((SELECT state FROM incidents i WHERE i.zone_id = z.id AND "
                "i.state NOT IN ('cleared', 'dismissed') ORDER BY CASE state WHEN 'alarm' THEN 0 WHEN "
                "'verifying' THEN 1 ELSE 2 END, id DESC LIMIT 1), '') FROM zones z WHERE ?1 IS NULL OR "
                "z.site_id = ?1 ORDER BY z.id",
    [Q_ZONE_GET] = "SELECT id, site_id, name FROM zones WHERE id = ?1",
    [Q_ZONE_IDS_OF_SITE] = "SELECT id, name, site_id FROM zones WHERE ?1 IS NULL OR site_id = ?1 ORDER BY "
                           "site_id, id",
    [Q_HOUSEHOLDS] = HH_QUERY("households h", "h.id > ?2") " ORDER BY h.id LIMIT ?3",
    [Q_HOUSEHOLDS_ZONE] = HH_QUERY("households h", "h.zone_id = ?1") " ORDER BY h.id",
    [Q_NODES] = NODE_QUERY("nodes n JOIN households h ON h.id = n.household_id",
                           "n.id > ?3") " ORDER BY n.id LIMIT ?4",
    [Q_NODES_ZONE] =
        NODE_QUERY("households h JOIN nodes n ON n.household_id = h.id", "h.zone_id = ?1") " ORDER BY n.id",
    [Q_NODE_GET] = NODE_QUERY("nodes n JOIN households h ON h.id = n.household_id", "n.id = ?2"),
    [Q_NODE_EXISTS] = "SELECT 1 FROM nodes WHERE id = ?1",
    [Q_READINGS_RAW] =
        "SELECT rx_ms, temp_c, smoke, batt_pct FROM readings WHERE node_id = ?1 AND rx_ms >= ?2 "
        "AND rx_ms < ?3 ORDER BY rx_ms LIMIT 5000",
    [Q_READINGS_AGG] =
        "WITH raw AS (SELECT (rx_ms / ?4) * ?4 AS b, min(temp_c) AS mn, max(temp_c) AS mx, "
        "avg(temp_c) AS av, max(smoke) AS sm, count(*) AS n FROM readings WHERE node_id = ?1 AND "
        "rx_ms >= ?2 AND rx_ms < ?3 GROUP BY b) SELECT b, mn, mx, av, sm, n FROM raw UNION ALL "
        "SELECT start_ms, temp_min, temp_max, temp_mean, 0, n FROM rollups WHERE node_id = ?1 AND "
        "period_s = ?5 AND start_ms >= ?2 AND start_ms < ?3 AND start_ms NOT IN (SELECT b FROM "
        "raw) ORDER BY 1 LIMIT 5000",
    [Q_INC_ACTIVE] =
        "SELECT id, zone_id, origin_node, state, cause, drill, opened_ms, escalated_ms, acked_ms, "
        "acked_by, cleared_ms, cleared_by, opened_by, nodes FROM incidents WHERE state NOT IN "
        "('cleared', 'dismissed') ORDER BY id DESC",
    [Q_INC_HISTORY] =
        "SELECT id, zone_id, origin_node, state, cause, drill, opened_ms, escalated_ms, "
        "acked_ms, acked_by, cleared_ms, cleared_by, opened_by, nodes FROM incidents WHERE (?1 = 0 "
        "OR id < ?1) AND (?3 IS NULL OR zone_id = ?3) ORDER BY id DESC LIMIT ?2",
    [Q_INC_GET] = CAPDB_SQL_INCIDENT,
    [Q_TIMELINE] =
        "SELECT ts_ms, what, who, node_id, detail FROM timeline WHERE incident_id = ?1 ORDER BY id",
    [Q_TROUBLES] = "SELECT t.id, t.node_id, COALESCE(h.zone_id, ''), COALESCE(n.household_id, ''), t.kind, "
                   "t.opened_ms, COALESCE(t.cleared_ms, 0), t.detail FROM troubles t LEFT JOIN nodes n ON "
                   "n.id = t.node_id LEFT JOIN households h ON h.id = n.household_id WHERE (?1 = 0 OR "
                   "t.cleared_ms IS NULL) ORDER BY t.id DESC LIMIT ?2",
    [Q_RD_HOUSEHOLDS] = "SELECT id FROM households WHERE zone_id = ?1 ORDER BY id",
    /* As docs/internals/readiness.md defines them: offline, battery and
     * test state have their own fields, so trouble_free covers only faults
     * and tamper and one problem is never counted twice. */
    [Q_RD_NODES] =
        "SELECT n.household_id, n.commissioned_ms, n.online AND NOT EXISTS (SELECT 1 FROM troubles t "
        "WHERE t.node_id = n.id AND t.kind = 'offline' AND t.cleared_ms IS NULL), n.batt_pct, "
        "n.last_test_ms, NOT EXISTS (SELECT 1 FROM troubles t WHERE t.node_id = n.id AND t.cleared_ms "
        "IS NULL AND t.kind NOT IN ('offline', 'low_battery', 'overdue_test')), EXISTS (SELECT 1 FROM "
        "troubles t WHERE t.node_id = n.id AND t.kind = 'low_battery' AND t.cleared_ms IS NULL) FROM "
        "nodes n JOIN households h ON h.id = n.household_id WHERE h.zone_id = ?1 AND n.decommissioned_ms = 0",
    [Q_RD_RESPONSE] =
        "SELECT acked_ms - CASE WHEN drill = 0 AND escalated_ms > 0 THEN escalated_ms ELSE "
        "opened_ms END FROM incidents WHERE zone_id = ?1 AND acked_ms > 0 ORDER BY id DESC LIMIT 10",
    [Q_RPT_INCIDENTS] =
        "SELECT i.id, i.zone_id, i.drill, i.state, i.cause, i.opened_ms, i.escalated_ms, "
        "i.acked_ms, i.acked_by, i.cleared_ms, i.origin_node FROM incidents i JOIN zones z ON "
        "z.id = i.zone_id WHERE z.site_id = ?1 AND i.opened_ms >= ?2 AND i.opened_ms < ?3 ORDER "
        "BY i.id",
    [Q_RPT_TESTS] =
        "SELECT h.zone_id, count(*), count(DISTINCT e.node_id) FROM events e JOIN nodes n ON n.id "
        "= e.node_id JOIN households h ON h.id = n.household_id JOIN zones z ON z.id = h.zone_id "
        "WHERE z.site_id = ?1 AND e.type = 'test' AND e.result = 'pass' AND e.rx_ms >= ?2 AND "
        "e.rx_ms < ?3 GROUP BY h.zone_id",
    [Q_RPT_TROUBLES] = "SELECT h.zone_id, t.kind, count(*) FROM troubles t JOIN nodes n ON n.id = t.node_id "
                       "JOIN households h ON h.id = n.household_id JOIN zones z ON z.id = h.zone_id WHERE "
                       "z.site_id = ?1 AND t.opened_ms >= ?2 AND t.opened_ms < ?3 GROUP BY h.zone_id, t.kind",
    [Q_USERS] = "SELECT name, role, created_ms FROM users ORDER BY name",
    [Q_USER_GET] = "SELECT pwhash, role FROM users WHERE name = ?1",
    [Q_TOKEN_LOOKUP] =
        "SELECT t.user, u.role FROM api_tokens t JOIN users u ON u.name = t.user WHERE t.hash = "
        "?1",
    [Q_TOKENS] = "SELECT id, user, name, created_ms, last_used_ms FROM api_tokens WHERE ?1 IS NULL OR user = "
                 "?1 ORDER BY id",
    /* CAP (api_cap.c): the zone's and site's names, the origin's address,
     * the zone's household positions, and the feed's incidents (open, or
     * closed since ?1). */
    [Q_CAP_ZONE] = CAPDB_SQL_ZONE,
    [Q_CAP_ADDRESS] = CAPDB_SQL_ADDRESS,
    [Q_CAP_POINTS] = CAPDB_SQL_POINTS,
    [Q_CAP_FEED] = "SELECT id FROM incidents WHERE state NOT IN ('cleared', 'dismissed') OR cleared_ms >= ?1 "
                   "ORDER BY id DESC LIMIT 200",
    /* A dashboard session by its cookie's digest, with its user's role now
     * (http.c authenticate). */
    [Q_SESSION] =
        "SELECT s.user, u.role, s.csrf, s.created_ms FROM sessions s JOIN users u ON u.name = s.user "
        "WHERE s.digest = ?1",
};

static int open_one(const char *path, int flags, sqlite3 **out)
{
    int rc = sqlite3_open_v2(path, out, flags | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        log_error("http: database %s: %s", path, *out ? sqlite3_errmsg(*out) : sqlite3_errstr(rc));
        sqlite3_close(*out);
        *out = NULL;
        return (rc & 0xff) == SQLITE_CANTOPEN ? -ENOENT : -EIO;
    }
    sqlite3_extended_result_codes(*out, 1);
    sqlite3_busy_timeout(*out, BUSY_TIMEOUT_MS);
    return 0;
}

int api_db_open(struct http_server *srv, size_t n_readers)
{
    int rc = open_one(srv->database, SQLITE_OPEN_READWRITE, &srv->rw);
    if (rc < 0)
        return rc;
    char *msg = NULL;
    if (sqlite3_exec(srv->rw, "PRAGMA foreign_keys = ON", NULL, NULL, &msg) != SQLITE_OK) {
        log_error("http: database %s: %s", srv->database, msg ? msg : sqlite3_errmsg(srv->rw));
        sqlite3_free(msg);
        return -EIO;
    }
    srv->readers = calloc(n_readers, sizeof *srv->readers);
    if (!srv->readers)
        return -ENOMEM;
    srv->n_readers = n_readers;
    for (size_t i = 0; i < n_readers; i++) {
        rc = open_one(srv->database, SQLITE_OPEN_READONLY, &srv->readers[i].db);
        if (rc < 0)
            return rc;
        srv->readers[i].next_free = srv->pool_free;
        srv->pool_free = &srv->readers[i];
    }
    return 0;
}

void api_db_close(struct http_server *srv)
{
    for (size_t i = 0; i < srv->n_readers; i++) {
        for (int q = 0; q < Q_COUNT; q++)
            sqlite3_finalize(srv->readers[i].st[q]);
        sqlite3_close(srv->readers[i].db);
    }
    free(srv->readers);
    srv->readers = NULL;
    srv->n_readers = 0;
    sqlite3_close(srv->rw);
    srv->rw = NULL;
}

struct api_db *api_db_get(struct http_server *srv)
{
    pthread_mutex_lock(&srv->pool_mu);
    while (!srv->pool_free)
        pthread_cond_wait(&srv->pool_cv, &srv->pool_mu);
    struct api_db *db = srv->pool_free;
    srv->pool_free = db->next_free;
    pthread_mutex_unlock(&srv->pool_mu);
    return db;
}

void api_db_put(struct http_server *srv, struct api_db *db)
{
    if (!db)
        return;
    /* Reset every statement so no read transaction stays open and pins the
     * WAL (a reader left mid-step would stop checkpoints). */
    for (int q = 0; q < Q_COUNT; q++)
        if (db->st[q])
            sqlite3_reset(db->st[q]);
    pthread_mutex_lock(&srv->pool_mu);
    db->next_free = srv->pool_free;
    srv->pool_free = db;
    pthread_cond_signal(&srv->pool_cv);
    pthread_mutex_unlock(&srv->pool_mu);
}

sqlite3_stmt *api_stmt(struct api_db *db, enum api_query q)
{
    if (!db->st[q]) {
        int rc = sqlite3_prepare_v3(db->db, query_sql[q], -1, SQLITE_PREPARE_PERSISTENT, &db->st[q], NULL);
        if (rc != SQLITE_OK) {
            log_error("http: query %d: %s", (int)q, sqlite3_errmsg(db->db));
            db->st[q] = NULL;
            return NULL;
        }
    }
    sqlite3_reset(db->st[q]);
    sqlite3_clear_bindings(db->st[q]);
    return db->st[q];
}

void api_col_str(cJSON *obj, const char *key, sqlite3_stmt *q, int i)
{
    const unsigned char *t = sqlite3_column_text(q, i);
    cJSON_AddStringToObject(obj, key, t ? (const char *)t : "");
}

void api_col_int(cJSON *obj, const char *key, sqlite3_stmt *q, int i)
{
    cJSON_AddNumberToObject(obj, key, (double)sqlite3_column_int64(q, i));
}

/* Runs one write; *rowid (may be NULL) gets the new row's id. */
static int rw_run(struct http_server *srv, int64_t *rowid, const char *sql, const char *types, va_list ap)
{
    pthread_mutex_lock(&srv->rw_mu);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(srv->rw, sql, -1, &st, NULL);
    int out;
    if (rc != SQLITE_OK) {
        log_error("http: database write: %s", sqlite3_errmsg(srv->rw));
        pthread_mutex_unlock(&srv->rw_mu);
        return -EIO;
    }
    for (int i = 0; types[i]; i++) {
        if (types[i] == 's') {
            const char *v = va_arg(ap, const char *);
            sqlite3_bind_text(st, i + 1, v, -1, SQLITE_TRANSIENT);
        } else {
            int64_t v = va_arg(ap, int64_t);
            sqlite3_bind_int64(st, i + 1, v);
        }
    }
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW) {
        out = sqlite3_changes(srv->rw);
        if (rowid)
            *rowid = sqlite3_last_insert_rowid(srv->rw);
    } else if ((rc & 0xff) == SQLITE_CONSTRAINT) {
        out = -EEXIST;
    } else {
        log_error("http: database write: %s", sqlite3_errmsg(srv->rw));
        out = -EIO;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&srv->rw_mu);
    return out;
}

int api_rw_exec(struct http_server *srv, const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    int rc = rw_run(srv, NULL, sql, types, ap);
    va_end(ap);
    return rc;
}

int api_rw_insert(struct http_server *srv, int64_t *rowid, const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    int rc = rw_run(srv, rowid, sql, types, ap);
    va_end(ap);
    return rc;
}

void api_audit(struct http_server *srv, const char *who, const char *action, const char *detail)
{
    api_rw_exec(srv, "INSERT INTO audit(ts_ms, who, action, detail) VALUES (?1, ?2, ?3, ?4)", "isss",
                api_now_ms(), who ? who : "", action, detail ? detail : "");
}
