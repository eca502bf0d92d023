/*
 * store.c - see store.h. Every statement lives in one table, is prepared the
 * first time it is used and then kept for the life of the connection. The
 * schema is a list of migrations; PRAGMA user_version says how many have
 * run, so an old database is brought forward on open and a newer one is
 * refused rather than misread.
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

enum stmt_id {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SITE_ADD,
    ST_SITE_EDIT,
    ST_SITE_REMOVE,
    ST_ZONE_ADD,
    ST_ZONE_SITE,
    ST_ZONE_NAME,
    ST_ZONE_REMOVE,
    ST_ZONE_EXISTS,
    ST_NEIGH_CLEAR,
    ST_NEIGH_ADD,
    ST_HH_ADD,
    ST_HH_EDIT,
    ST_HH_GET,
    ST_HH_REMOVE,
    ST_NODE_ADD,
    ST_NODE_REMOVE,
    ST_COUNTER,
    ST_EACH_ZONE,
    ST_EACH_NODE,
    ST_EACH_HH,
    ST_NODE_SAVE,
    ST_READING_ADD,
    ST_EVENT_ADD,
    ST_NODE_EXISTS,
    ST_NODE_BOOT,
    ST_EVENT_LAST,
    ST_NODE_RAISE_BOOT,
    ST_TROUBLE_EACH,
    ST_INC_CLOSE,
    ST_ROLLUP5,
    ST_ROLLUP60,
    ST_READINGS_OLDEST,
    ST_READINGS_DROP,
    ST_ROLLUPS_DROP,
    ST_INC_SAVE,
    ST_INC_GET,
    ST_INC_MAX,
    ST_INC_OPEN,
    ST_TIMELINE_ADD,
    ST_TROUBLE_OPEN,
    ST_TROUBLE_CLEAR,
    ST_TROUBLE_NOTIFIED,
    ST_CMD_ADD,
    ST_CMD_NEXT,
    ST_CMD_DONE,
    ST_CMD_RESULT,
    ST_USER_ADD,
    ST_USER_REMOVE,
    ST_USER_ROLE,
    ST_USER_PASSWORD,
    ST_USER_HASH,
    ST_AUDIT,
    ST_COUNT
};

/* One row per statement: the SQL, prepared on first use. */
static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SITE_ADD] = "INSERT INTO sites(id, name) VALUES (?1, ?2)",
    [ST_SITE_EDIT] = "UPDATE sites SET name = ?2 WHERE id = ?1",
    [ST_SITE_REMOVE] = "DELETE FROM sites WHERE id = ?1",
    [ST_ZONE_ADD] = "INSERT INTO zones(id, site_id, name) VALUES (?1, ?2, ?3)",
    [ST_ZONE_SITE] = "UPDATE zones SET site_id = ?2 WHERE id = ?1",
    [ST_ZONE_NAME] = "UPDATE zones SET name = ?2 WHERE id = ?1",
    [ST_ZONE_REMOVE] = "DELETE FROM zones WHERE id = ?1",
    [ST_ZONE_EXISTS] = "SELECT 1 FROM zones WHERE id = ?1",
    [ST_NEIGH_CLEAR] = "DELETE FROM zone_neighbours WHERE zone_id = ?1",
    [ST_NEIGH_ADD] = "INSERT OR IGNORE INTO zone_neighbours(zone_id, neighbour_id) VALUES (?1, ?2)",
    [ST_HH_ADD] = "INSERT INTO households(id, zone_id, address, contact, phone, lat, lon) "
                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_HH_EDIT] = "UPDATE households SET zone_id = ?2, address = ?3, contact = ?4, phone = ?5, lat = ?6, "
                   "lon = ?7 WHERE id = ?1",
    [ST_HH_GET] = "SELECT zone_id, address, contact, phone, lat, lon FROM households WHERE id = ?1",
    [ST_HH_REMOVE] = "DELETE FROM households WHERE id = ?1",
    [ST_NODE_ADD] = "INSERT INTO nodes(id, household_id, kind, room, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_NODE_REMOVE] = "DELETE FROM nodes WHERE id = ?1",
    [ST_COUNTER] = "SELECT value FROM meta WHERE key = 'changes'",
    [ST_EACH_ZONE] = "SELECT z.id, z.site_id, COALESCE((SELECT group_concat(neighbour_id, ',') FROM "
                     "zone_neighbours WHERE zone_id = z.id), '') FROM zones z ORDER BY z.id",
    [ST_EACH_NODE] = "SELECT n.id, n.household_id, h.zone_id, n.kind, n.boot, n.online, n.last_seen_ms, "
                     "n.last_test_ms, n.batt_pct, n.interval_s, n.seq_gaps, n.commissioned_ms, "
                     "n.decommissioned_ms FROM nodes n "
                     "JOIN households h ON "
                     "h.id = n.household_id ORDER BY n.id",
    [ST_EACH_HH] = "SELECT zone_id, id FROM households ORDER BY zone_id, id",
    [ST_NODE_SAVE] =
        "UPDATE nodes SET boot = ?2, online = ?3, last_seen_ms = ?4, last_test_ms = ?5, "
        "batt_pct = ?6, interval_s = ?7, seq_gaps = ?8, fw = COALESCE(?9, fw), commissioned_ms = ?10 "
        "WHERE id = ?1",
    [ST_READING_ADD] = "INSERT INTO readings(node_id, rx_ms, node_ts, seq, temp_c, smoke, batt_pct) "
                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_EVENT_ADD] = "INSERT OR IGNORE INTO events(node_id, boot, seq, node_ts, rx_ms, type, cause, result, "
                     "cmd_id, detail) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10 "
                     "WHERE EXISTS (SELECT 1 FROM nodes WHERE id = ?1)",
    [ST_NODE_EXISTS] = "SELECT 1 FROM nodes WHERE id = ?1",
    [ST_NODE_BOOT] = "SELECT boot FROM nodes WHERE id = ?1",
    [ST_EVENT_LAST] = "SELECT COALESCE(max(seq), -1) FROM events WHERE node_id = ?1 AND boot = ?2",
    [ST_NODE_RAISE_BOOT] = "UPDATE nodes SET boot = ?2 WHERE id = ?1 AND boot < ?2",
    [ST_TROUBLE_EACH] =
        "SELECT node_id, kind, opened_ms, COALESCE(notified_ms, opened_ms) FROM troubles WHERE "
        "cleared_ms IS NULL ORDER BY id",
    [ST_INC_CLOSE] = "UPDATE incidents SET state = ?2, cleared_ms = ?3, cleared_by = ?4 WHERE id = ?1",
    [ST_ROLLUP5] = "INSERT OR REPLACE INTO rollups(node_id, period_s, start_ms, n, temp_min, temp_max, "
                   "temp_mean, batt_min) SELECT node_id, 300, (rx_ms / 300000) * 300000 AS b, count(*), "
                   "min(temp_c), max(temp_c), avg(temp_c), min(batt_pct) FROM readings WHERE rx_ms >= ?1 AND "
                   "rx_ms < ?2 GROUP BY node_id, b",
    [ST_ROLLUP60] =
        "INSERT OR REPLACE INTO rollups(node_id, period_s, start_ms, n, temp_min, temp_max, "
        "temp_mean, batt_min) SELECT node_id, 3600, (rx_ms / 3600000) * 3600000 AS b, count(*), "
        "min(temp_c), max(temp_c), avg(temp_c), min(batt_pct) FROM readings WHERE rx_ms >= ?1 AND "
        "rx_ms < ?2 GROUP BY node_id, b",
    [ST_READINGS_OLDEST] = "SELECT min(rx_ms) FROM readings",
    [ST_READINGS_DROP] = "DELETE FROM readings WHERE rx_ms < ?1",
    [ST_ROLLUPS_DROP] = "DELETE FROM rollups WHERE start_ms < ?1",
    [ST_INC_SAVE] =
        "INSERT OR REPLACE INTO incidents(id, zone_id, origin_node, state, cause, drill, opened_ms, "
        "escalated_ms, acked_ms, acked_by, cleared_ms, cleared_by, opened_by, nodes, sounded) VALUES (?1, "
        "?2, "
        "?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    [ST_INC_GET] = "SELECT id, zone_id, origin_node, state, cause, drill, opened_ms, escalated_ms, acked_ms, "
                   "acked_by, cleared_ms, cleared_by, opened_by, nodes, sounded FROM incidents WHERE id = ?1",
    [ST_INC_MAX] = "SELECT COALESCE(max(id), 0) FROM incidents",
    [ST_INC_OPEN] =
        "SELECT id, zone_id, origin_node, state, cause, drill, opened_ms, escalated_ms, acked_ms, "
        "acked_by, cleared_ms, cleared_by, opened_by, nodes, sounded FROM incidents WHERE state NOT IN ("
        "'cleared', "
        "'dismissed') ORDER BY id",
    [ST_TIMELINE_ADD] = "INSERT INTO timeline(incident_id, ts_ms, what, who, node_id, detail) "
                        "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_TROUBLE_OPEN] =
        "INSERT OR IGNORE INTO troubles(node_id, kind, opened_ms, detail) VALUES (?1, ?2, ?3, "
        "?4)",
    [ST_TROUBLE_CLEAR] =
        "UPDATE troubles SET cleared_ms = ?3 WHERE node_id = ?1 AND kind = ?2 AND cleared_ms "
        "IS NULL",
    [ST_TROUBLE_NOTIFIED] = "UPDATE troubles SET notified_ms = ?3 WHERE node_id = ?1 AND kind = ?2 AND "
                            "cleared_ms IS NULL",
    [ST_CMD_ADD] =
        "INSERT INTO commands(action, incident_id, zone_id, who, created_ms) VALUES (?1, ?2, ?3, ?4, "
        "?5)",
    [ST_CMD_NEXT] = "SELECT id, action, COALESCE(incident_id, 0), COALESCE(zone_id, ''), who FROM commands "
                    "WHERE done_ms IS NULL AND id > ?1 ORDER BY id LIMIT 1",
    [ST_CMD_DONE] = "UPDATE commands SET done_ms = ?3, result = ?2 WHERE id = ?1",
    [ST_CMD_RESULT] = "SELECT done_ms IS NOT NULL, COALESCE(result, '') FROM commands WHERE id = ?1",
    [ST_USER_ADD] = "INSERT INTO users(name, role, pwhash, created_ms) VALUES (?1, ?2, ?3, ?4)",
    [ST_USER_REMOVE] = "DELETE FROM users WHERE name = ?1",
    [ST_USER_ROLE] = "UPDATE users SET role = ?2 WHERE name = ?1",
    [ST_USER_PASSWORD] = "UPDATE users SET pwhash = ?2 WHERE name = ?1",
    [ST_USER_HASH] = "SELECT pwhash FROM users WHERE name = ?1",
    [ST_AUDIT] = "INSERT INTO audit(ts_ms, who, action, detail) VALUES (?1, ?2, ?3, ?4)",
};

/* The schema, one migration per entry; user_version counts those applied. */
static const char *const migrations[] = {
    /* 1: the first schema. */
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "INSERT INTO meta(key, value) VALUES ('changes', 0);"
    "CREATE TABLE sites(id TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE zones(id TEXT PRIMARY KEY, site_id TEXT NOT NULL REFERENCES sites(id), "
    "  name TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE zone_neighbours(zone_id TEXT NOT NULL REFERENCES zones(id) ON DELETE CASCADE, "
    "  neighbour_id TEXT NOT NULL REFERENCES zones(id) ON DELETE CASCADE, PRIMARY KEY(zone_id, "
    "neighbour_id)) "
    "  WITHOUT ROWID;"
    "CREATE TABLE households(id TEXT PRIMARY KEY, zone_id TEXT NOT NULL REFERENCES zones(id), "
    "  address TEXT NOT NULL DEFAULT '', contact TEXT NOT NULL DEFAULT '', phone TEXT NOT NULL DEFAULT '', "
    "  lat REAL, lon REAL);"
    "CREATE INDEX households_zone ON households(zone_id);"
    "CREATE TABLE nodes(id TEXT PRIMARY KEY, household_id TEXT NOT NULL REFERENCES households(id), "
    "  kind TEXT NOT NULL CHECK(kind IN ('smoke','heat','combo')), room TEXT NOT NULL DEFAULT '', "
    "  fw TEXT NOT NULL DEFAULT '', boot INTEGER NOT NULL DEFAULT 0, online INTEGER NOT NULL DEFAULT 0, "
    "  last_seen_ms INTEGER NOT NULL DEFAULT 0, last_test_ms INTEGER NOT NULL DEFAULT 0, "
    "  batt_pct INTEGER NOT NULL DEFAULT -1, interval_s INTEGER NOT NULL DEFAULT 60, "
    "  seq_gaps INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL DEFAULT 0, "
    "  commissioned_ms INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX nodes_household ON nodes(household_id);"
    "CREATE TABLE readings(node_id TEXT NOT NULL, rx_ms INTEGER NOT NULL, node_ts INTEGER NOT NULL, "
    "  seq INTEGER NOT NULL, temp_c REAL NOT NULL, smoke INTEGER NOT NULL, batt_pct INTEGER NOT NULL);"
    "CREATE INDEX readings_time ON readings(rx_ms);"
    "CREATE INDEX readings_node ON readings(node_id, rx_ms);"
    "CREATE TABLE rollups(node_id TEXT NOT NULL, period_s INTEGER NOT NULL, start_ms INTEGER NOT NULL, "
    "  n INTEGER NOT NULL, temp_min REAL, temp_max REAL, temp_mean REAL, batt_min INTEGER, "
    "  PRIMARY KEY(node_id, period_s, start_ms)) WITHOUT ROWID;"
    "CREATE TABLE events(id INTEGER PRIMARY KEY, node_id TEXT NOT NULL, boot INTEGER NOT NULL, "
    "  seq INTEGER NOT NULL, node_ts INTEGER NOT NULL, rx_ms INTEGER NOT NULL, type TEXT NOT NULL, "
    "  cause TEXT NOT NULL DEFAULT '', result TEXT NOT NULL DEFAULT '', cmd_id TEXT NOT NULL DEFAULT '', "
    "  detail TEXT NOT NULL DEFAULT '', UNIQUE(node_id, boot, seq));"
    "CREATE TABLE incidents(id INTEGER PRIMARY KEY, zone_id TEXT NOT NULL, origin_node TEXT NOT NULL, "
    "  state TEXT NOT NULL, cause TEXT NOT NULL DEFAULT '', drill INTEGER NOT NULL DEFAULT 0, "
    "  opened_ms INTEGER NOT NULL, escalated_ms INTEGER NOT NULL DEFAULT 0, acked_ms INTEGER NOT NULL "
    "DEFAULT 0, "
    "  acked_by TEXT NOT NULL DEFAULT '', cleared_ms INTEGER NOT NULL DEFAULT 0, "
    "  cleared_by TEXT NOT NULL DEFAULT '', opened_by TEXT NOT NULL DEFAULT '', "
    "  nodes TEXT NOT NULL DEFAULT '', sounded TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE timeline(id INTEGER PRIMARY KEY, incident_id INTEGER NOT NULL, ts_ms INTEGER NOT NULL, "
    "  what TEXT NOT NULL, who TEXT NOT NULL DEFAULT '', node_id TEXT NOT NULL DEFAULT '', "
    "  detail TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX timeline_incident ON timeline(incident_id, id);"
    "CREATE TABLE troubles(id INTEGER PRIMARY KEY, node_id TEXT NOT NULL, kind TEXT NOT NULL, "
    "  opened_ms INTEGER NOT NULL, cleared_ms INTEGER, notified_ms INTEGER, detail TEXT NOT NULL DEFAULT '');"
    "CREATE UNIQUE INDEX troubles_open ON troubles(node_id, kind) WHERE cleared_ms IS NULL;"
    "CREATE TABLE commands(id INTEGER PRIMARY KEY, action TEXT NOT NULL, incident_id INTEGER, zone_id TEXT, "
    "  who TEXT NOT NULL DEFAULT '', created_ms INTEGER NOT NULL, done_ms INTEGER, result TEXT);"
    "CREATE TABLE users(name TEXT PRIMARY KEY, role TEXT NOT NULL CHECK(role IN "
    "('watch','technician','admin')), "
    "  pwhash TEXT NOT NULL, created_ms INTEGER NOT NULL);"
    "CREATE TABLE audit(id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, who TEXT NOT NULL, "
    "  action TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '');"
    /* The change counter: what the running hub polls to see firewatchctl's edits. */
    "CREATE TRIGGER sites_i AFTER INSERT ON sites BEGIN UPDATE meta SET value = value + 1 WHERE key = "
    "'changes'; "
    "END;"
    "CREATE TRIGGER sites_d AFTER DELETE ON sites BEGIN UPDATE meta SET value = value + 1 WHERE key = "
    "'changes'; "
    "END;"
    "CREATE TRIGGER zones_i AFTER INSERT ON zones BEGIN UPDATE meta SET value = value + 1 WHERE key = "
    "'changes'; "
    "END;"
    "CREATE TRIGGER zones_u AFTER UPDATE ON zones BEGIN UPDATE meta SET value = value + 1 WHERE key = "
    "'changes'; "
    "END;"
    "CREATE TRIGGER zones_d AFTER DELETE ON zones BEGIN UPDATE meta SET value = value + 1 WHERE key = "
    "'changes'; "
    "END;"
    "CREATE TRIGGER neigh_i AFTER INSERT ON zone_neighbours BEGIN UPDATE meta SET value = value + 1 WHERE "
    "key = "
    "'changes'; END;"
    "CREATE TRIGGER neigh_d AFTER DELETE ON zone_neighbours BEGIN UPDATE meta SET value = value + 1 WHERE "
    "key = "
    "'changes'; END;"
    "CREATE TRIGGER hh_i AFTER INSERT ON households BEGIN UPDATE meta SET value = value + 1 WHERE key = "
    "'changes'; END;"
    "CREATE TRIGGER hh_u AFTER UPDATE OF zone_id ON households BEGIN UPDATE meta SET value = value + 1 WHERE "
    "key "
    "= 'changes'; END;"
    "CREATE TRIGGER hh_d AFTER DELETE ON households BEGIN UPDATE meta SET value = value + 1 WHERE key = "
    "'changes'; END;"
    "CREATE TRIGGER nodes_i AFTER INSERT ON nodes BEGIN UPDATE meta SET value = value + 1 WHERE key = "
    "'changes'; END;"
    "CREATE TRIGGER nodes_u AFTER UPDATE OF household_id, kind ON nodes BEGIN UPDATE meta SET value = value "
    "+ 1 "
    "WHERE key = 'changes'; END;"
    "CREATE TRIGGER nodes_d AFTER DELETE ON nodes BEGIN UPDATE meta SET value = value + 1 WHERE key = "
    "'changes'; END;",
    /* 2: hourly readiness snapshots per zone, for the monthly report. */
    "CREATE TABLE readiness(ts_ms INTEGER NOT NULL, zone_id TEXT NOT NULL, site_id TEXT NOT NULL, "
    "  score INTEGER NOT NULL, level TEXT NOT NULL, households INTEGER NOT NULL, nodes INTEGER NOT NULL, "
    "  healthy INTEGER NOT NULL, reasons TEXT NOT NULL DEFAULT '', PRIMARY KEY(zone_id, ts_ms)) WITHOUT "
    "ROWID;",
    /* 3: API tokens for scripts (hub/api_users.c), kept as BLAKE2b hashes. IF
     * NOT EXISTS: HTTP servers before this migration created it themselves. */
    "CREATE TABLE IF NOT EXISTS api_tokens(id INTEGER PRIMARY KEY, user TEXT NOT NULL REFERENCES users(name) "
    "  ON DELETE CASCADE, name TEXT NOT NULL DEFAULT '', hash TEXT NOT NULL UNIQUE, created_ms INTEGER NOT "
    "  NULL, last_used_ms INTEGER NOT NULL DEFAULT 0);",
    /* 4: provisioning (firewatchctl node ...). A decommissioned node keeps its
     * row and history but leaves the hub's topology; credentials_ms is when
     * its broker password was last set (the password itself is never stored
     * here, only its hash in the broker's password file). node_tests reads
     * the commissioning tests (selftest commands) with who asked and when. */
    "ALTER TABLE nodes ADD COLUMN decommissioned_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE nodes ADD COLUMN decommissioned_by TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE nodes ADD COLUMN credentials_ms INTEGER NOT NULL DEFAULT 0;"
    "CREATE TRIGGER nodes_decom AFTER UPDATE OF decommissioned_ms ON nodes BEGIN UPDATE meta SET value = "
    "  value + 1 WHERE key = 'changes'; END;"
    "CREATE VIEW node_tests AS SELECT id, zone_id AS node_id, who, created_ms AS asked_ms, done_ms, "
    "  COALESCE(result, '') AS result FROM commands WHERE action = 'selftest';",
    /* 5: federation, on a regional hub (docs/federation.md): the area hubs
     * whose bridges may log in (firewatchctl area add), what each last said
     * (its summary, its readiness, its bridge's state), their incidents,
     * and the latest CAP alert of each (apart: it may come first). */
    "CREATE TABLE areas(id TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '', added_ms INTEGER NOT NULL, "
    "  removed_ms INTEGER NOT NULL DEFAULT 0, bridge_online INTEGER, bridge_ms INTEGER NOT NULL DEFAULT 0, "
    "  last_seen_ms INTEGER NOT NULL DEFAULT 0, hub_doc TEXT, hub_ms INTEGER NOT NULL DEFAULT 0, "
    "  readiness_doc TEXT, readiness_ms INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE area_incidents(area TEXT NOT NULL REFERENCES areas(id) ON DELETE CASCADE, id INTEGER NOT "
    "  NULL, zone TEXT NOT NULL, zone_name TEXT NOT NULL DEFAULT '', site_name TEXT NOT NULL DEFAULT '', "
    "  state TEXT NOT NULL, kind TEXT NOT NULL, origin TEXT NOT NULL DEFAULT '', cause TEXT NOT NULL DEFAULT "
    "  '', opened_ms INTEGER NOT NULL, alarm_ms INTEGER NOT NULL DEFAULT 0, ack_ms INTEGER NOT NULL DEFAULT "
    "  0, ack_by TEXT NOT NULL DEFAULT '', closed_ms INTEGER NOT NULL DEFAULT 0, updated_ms INTEGER NOT "
    "NULL, "
    "  PRIMARY KEY(area, id));"
    "CREATE INDEX area_incidents_open ON area_incidents(closed_ms, opened_ms);"
    "CREATE TABLE area_alerts(area TEXT NOT NULL REFERENCES areas(id) ON DELETE CASCADE, id INTEGER NOT "
    "NULL, "
    "  xml TEXT NOT NULL, updated_ms INTEGER NOT NULL, PRIMARY KEY(area, id));",
    /* 6: dashboard sessions survive a restart (hub/http.c authenticate):
     * the BLAKE2b digest of the cookie, never the cookie; the role is read
     * from users on every request, and removing a user or changing their
     * password (from the API or firewatchctl) deletes their sessions. */
    "CREATE TABLE sessions(digest TEXT PRIMARY KEY, user TEXT NOT NULL REFERENCES users(name) ON DELETE "
    "  CASCADE ON UPDATE CASCADE, csrf TEXT NOT NULL, created_ms INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX sessions_user ON sessions(user);"
    "CREATE TRIGGER users_pw AFTER UPDATE OF pwhash ON users BEGIN DELETE FROM sessions WHERE user = "
    "NEW.name; "
    "END;",
    /* 7: what a regional overview shows of each area's readiness, made once
     * when the document arrives (fed_readiness_summary) instead of on every
     * refresh of every viewer. */
    "ALTER TABLE areas ADD COLUMN readiness_summary TEXT;",
};

_Static_assert(sizeof migrations / sizeof migrations[0] == STORE_SCHEMA_VERSION,
               "STORE_SCHEMA_VERSION must count the migrations");

struct store {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    char path[512];
    bool sync_full;
};

/* Logs a SQLite failure once, here at the boundary, and maps it to an errno. */
static int sql_fail(struct store *s, const char *what, int rc)
{
    log_error("database %s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT: return -EEXIST;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return -EBUSY;
    case SQLITE_FULL: return -ENOSPC;
    case SQLITE_READONLY:
    case SQLITE_PERM: return -EACCES;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return -EILSEQ;
    default: return -EIO;
    }
}

/* Returns the prepared statement id, reset and with bindings cleared. */
static sqlite3_stmt *stmt(struct store *s, enum stmt_id id)
{
    if (!s->st[id]) {
        int rc = sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s->st[id], NULL);
        if (rc != SQLITE_OK) {
            sql_fail(s, stmt_sql[id], rc);
            return NULL;
        }
    }
    sqlite3_reset(s->st[id]);
    sqlite3_clear_bindings(s->st[id]);
    return s->st[id];
}

static void bind_text(sqlite3_stmt *q, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(q, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(q, i);
}

/* Runs a statement that returns no rows. Returns 0 or a negative errno. */
static int run(struct store *s, sqlite3_stmt *q)
{
    if (!q)
        return -EIO;
    int rc = sqlite3_step(q);
    int out = (rc == SQLITE_DONE || rc == SQLITE_ROW) ? 0 : sql_fail(s, sqlite3_sql(q), rc);
    sqlite3_reset(q);
    return out;
}

/* Like run() but a constraint failure is reported without logging, as the
 * caller's -EEXIST / -ENOENT, since it is the user's mistake, not ours. */
static int run_user(struct store *s, sqlite3_stmt *q, int on_constraint)
{
    if (!q)
        return -EIO;
    int rc = sqlite3_step(q);
    sqlite3_reset(q);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW)
        return 0;
    if ((rc & 0xff) == SQLITE_CONSTRAINT) {
        int ext = sqlite3_extended_errcode(s->db);
        if (ext == SQLITE_CONSTRAINT_FOREIGNKEY)
            return on_constraint == -EEXIST ? -ENOENT : on_constraint;
        return on_constraint;
    }
    return sql_fail(s, sqlite3_sql(q), rc);
}

static int exec(struct store *s, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        log_error("database %s: %s", s->path, msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return (rc & 0xff) == SQLITE_NOTADB || (rc & 0xff) == SQLITE_CORRUPT ? -EILSEQ
               : (rc & 0xff) == SQLITE_READONLY                              ? -EACCES
               : (rc & 0xff) == SQLITE_FULL                                  ? -ENOSPC
                                                                             : -EIO;
    }
    return 0;
}

static int pragma_int(struct store *s, const char *sql, int64_t *out)
{
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &q, NULL);
    if (rc != SQLITE_OK)
        return (rc & 0xff) == SQLITE_NOTADB ? -EILSEQ : -EIO;
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return rc == SQLITE_ROW                                                ? 0
           : (rc & 0xff) == SQLITE_NOTADB || (rc & 0xff) == SQLITE_CORRUPT ? -EILSEQ
                                                                           : -EIO;
}

static int quick_check(struct store *s, char *why, size_t why_size)
{
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(s->db, "PRAGMA quick_check", -1, &q, NULL);
    if (rc != SQLITE_OK) {
        snprintf(why, why_size, "%s: not a usable database: %s", s->path, sqlite3_errmsg(s->db));
        return -EILSEQ;
    }
    int out = 0;
    rc = sqlite3_step(q);
    if (rc != SQLITE_ROW) {
        snprintf(why, why_size, "%s: integrity check failed: %s", s->path, sqlite3_errmsg(s->db));
        out = -EILSEQ;
    } else {
        const char *r = (const char *)sqlite3_column_text(q, 0);
        if (!r || strcmp(r, "ok") != 0) {
            snprintf(why, why_size, "%s: database is damaged (quick_check: %s); restore a backup", s->path,
                     r ? r : "?");
            out = -EILSEQ;
        }
    }
    sqlite3_finalize(q);
    return out;
}

static int migrate(struct store *s, char *why, size_t why_size)
{
    int64_t version = 0;
    int rc = pragma_int(s, "PRAGMA user_version", &version);
    if (rc < 0) {
        snprintf(why, why_size, "%s: not a Firewatch database or damaged: %s", s->path,
                 sqlite3_errmsg(s->db));
        return rc;
    }
    int64_t newest = (int64_t)(sizeof migrations / sizeof migrations[0]);
    if (version > newest) {
        snprintf(why, why_size,
                 "%s: schema version %lld is newer than this program (%lld); upgrade Firewatch", s->path,
                 (long long)version, (long long)newest);
        return -EPROTO;
    }
    for (int64_t v = version; v < newest; v++) {
        char sql[64];
        if ((rc = exec(s, "BEGIN IMMEDIATE")) < 0)
            goto fail;
        if ((rc = exec(s, migrations[v])) < 0) {
            exec(s, "ROLLBACK");
            goto fail;
        }
        snprintf(sql, sizeof sql, "PRAGMA user_version = %lld", (long long)(v + 1));
        if ((rc = exec(s, sql)) < 0 || (rc = exec(s, "COMMIT")) < 0) {
            exec(s, "ROLLBACK");
            goto fail;
        }
    }
    return 0;
fail:
    snprintf(why, why_size, "%s: cannot set up the schema: %s", s->path, sqlite3_errmsg(s->db));
    return rc;
}

struct store *store_open(const char *path, int flags, char *why, size_t why_size)
{
    char scratch[8];
    if (!why) {
        why = scratch;
        why_size = sizeof scratch;
    }
    why[0] = '\0';
    struct store *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(why, why_size, "out of memory");
        errno = ENOMEM;
        return NULL;
    }
    snprintf(s->path, sizeof s->path, "%s", path);
    int err = 0;
    if (!(flags & STORE_CREATE) && access(path, F_OK) != 0) {
        snprintf(why, why_size, "%s: no such database (the hub creates it on first start)", path);
        err = ENOENT;
        goto fail;
    }
    int oflags =
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | ((flags & STORE_CREATE) ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(path, &s->db, oflags, NULL);
    if (rc != SQLITE_OK) {
        int e = errno;
        snprintf(why, why_size, "%s: cannot open: %s%s%s", path,
                 s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc), e ? ": " : "", e ? strerror(e) : "");
        err = (rc & 0xff) == SQLITE_CANTOPEN && e == EACCES ? EACCES
              : (rc & 0xff) == SQLITE_CANTOPEN              ? ENOENT
                                                            : EIO;
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
    if (flags & STORE_QUICK_CHECK) {
        if ((rc = quick_check(s, why, why_size)) < 0) {
            err = -rc;
            goto fail;
        }
    }
    int64_t mode_ok = 0;
    {
        sqlite3_stmt *q;
        rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &q, NULL);
        if (rc == SQLITE_OK) {
            rc = sqlite3_step(q);
            const char *m = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(q, 0) : NULL;
            mode_ok = m && strcmp(m, "wal") == 0;
            sqlite3_finalize(q);
        }
        if (!mode_ok) {
            int code = sqlite3_errcode(s->db) & 0xff;
            snprintf(why, why_size, "%s: cannot use this database (WAL mode refused): %s", path,
                     sqlite3_errmsg(s->db));
            err = code == SQLITE_NOTADB || code == SQLITE_CORRUPT                             ? EILSEQ
                  : code == SQLITE_READONLY || code == SQLITE_CANTOPEN || code == SQLITE_PERM ? EACCES
                                                                                              : EIO;
            goto fail;
        }
    }
    s->sync_full = (flags & STORE_SYNC_FULL) != 0;
    if (exec(s, s->sync_full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL") < 0 ||
        exec(s, "PRAGMA foreign_keys = ON") < 0 ||
        ((flags & STORE_NO_CHECKPOINT) && exec(s, "PRAGMA wal_autocheckpoint = 0") < 0)) {
        snprintf(why, why_size, "%s: cannot configure the connection: %s", path, sqlite3_errmsg(s->db));
        err = EIO;
        goto fail;
    }
    if ((rc = migrate(s, why, why_size)) < 0) {
        err = -rc;
        goto fail;
    }
    /* Probe that we can write: an unwritable file or directory fails here,
     * at start-up, instead of at the first alarm. */
    if ((rc = exec(s, "BEGIN IMMEDIATE")) < 0) {
        snprintf(why, why_size, "%s: database is not writable: %s", path, sqlite3_errmsg(s->db));
        err = -rc == EIO ? EACCES : -rc;
        goto fail;
    }
    exec(s, "COMMIT");
    return s;
fail:
    if (!why[0])
        snprintf(why, why_size, "%s: cannot open", path);
    store_close(s);
    errno = err ? err : EIO;
    return NULL;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->st[i]);
    sqlite3_close(s->db);
    free(s);
}

struct sqlite3 *store_handle(struct store *s)
{
    return s->db;
}

int store_begin(struct store *s)
{
    return run(s, stmt(s, ST_BEGIN));
}

int store_commit(struct store *s)
{
    int rc = run(s, stmt(s, ST_COMMIT));
    if (rc < 0)
        run(s, stmt(s, ST_ROLLBACK));
    return rc;
}

void store_test_limits(struct store *s)
{
    const char *path = getenv("FW_TEST_MAX_PAGES_FILE");
    if (!path || !*path)
        return;
    char text[32] = "";
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    char *end;
    errno = 0;
    long long pages = strtoll(text, &end, 10);
    if (errno || end == text || pages < 1)
        return;
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA max_page_count = %lld", pages);
    sqlite3_exec(s->db, sql, NULL, NULL, NULL);
}

static void rollback(struct store *s)
{
    if (!sqlite3_get_autocommit(s->db))
        run(s, stmt(s, ST_ROLLBACK));
}

/* Runs a one-row UPDATE/DELETE by id; -ENOENT when it touched nothing. */
static int by_id(struct store *s, sqlite3_stmt *q, int on_constraint)
{
    int rc = run_user(s, q, on_constraint);
    if (rc == 0 && sqlite3_changes(s->db) == 0)
        return -ENOENT;
    return rc;
}

/* --- Topology ---------------------------------------------------------- */

int store_site_add(struct store *s, const char *id, const char *name)
{
    if (!fw_id_valid(id))
        return -EINVAL;
    sqlite3_stmt *q = stmt(s, ST_SITE_ADD);
    if (!q)
        return -EIO;
    bind_text(q, 1, id);
    bind_text(q, 2, name ? name : "");
    return run_user(s, q, -EEXIST);
}

int store_site_edit(struct store *s, const char *id, const char *name)
{
    sqlite3_stmt *q = stmt(s, ST_SITE_EDIT);
    if (!q)
        return -EIO;
    bind_text(q, 1, id);
    bind_text(q, 2, name ? name : "");
    return by_id(s, q, -EINVAL);
}

int store_site_remove(struct store *s, const char *id)
{
    sqlite3_stmt *q = stmt(s, ST_SITE_REMOVE);
    if (!q)
        return -EIO;
    bind_text(q, 1, id);
    return by_id(s, q, -ENOTEMPTY);
}

/* Replaces a zone's neighbour list from a comma-separated string. */
static int set_neighbours(struct store *s, const char *id, const char *list)
{
    sqlite3_stmt *q = stmt(s, ST_NEIGH_CLEAR);
    if (!q)
        return -EIO;
    bind_text(q, 1, id);
    int rc = run(s, q);
    const char *p = list ? list : "";
    while (rc == 0 && *p) {
        char one[FW_ID_MAX + 1];
        size_t n = strcspn(p, ",");
        if (n == 0 || n > FW_ID_MAX)
            return -EINVAL;
        memcpy(one, p, n);
        one[n] = '\0';
        p += n + (p[n] == ',');
        if (!fw_id_valid(one) || strcmp(one, id) == 0)
            return -EINVAL;
        q = stmt(s, ST_NEIGH_ADD);
        if (!q)
            return -EIO;
        bind_text(q, 1, id);
        bind_text(q, 2, one);
        rc = run_user(s, q, -ENOENT);
    }
    return rc;
}

int store_zone_add(struct store *s, const char *id, const char *site, const char *name,
                   const char *neighbours)
{
    if (!fw_id_valid(id))
        return -EINVAL;
    int rc = store_begin(s);
    if (rc < 0)
        return rc;
    sqlite3_stmt *q = stmt(s, ST_ZONE_ADD);
    if (!q) {
        rollback(s);
        return -EIO;
    }
    bind_text(q, 1, id);
    bind_text(q, 2, site);
    bind_text(q, 3, name ? name : "");
    rc = run_user(s, q, -EEXIST);
    if (rc == 0)
        rc = set_neighbours(s, id, neighbours);
    if (rc < 0) {
        rollback(s);
        return rc;
    }
    return store_commit(s);
}

int store_zone_edit(struct store *s, const char *id, const char *site, const char *name,
                    const char *neighbours)
{
    int rc = store_begin(s);
    if (rc < 0)
        return rc;
    sqlite3_stmt *q = stmt(s, ST_ZONE_EXISTS);
    bind_text(q, 1, id);
    if (!q || sqlite3_step(q) != SQLITE_ROW)
        rc = -ENOENT;
    if (q)
        sqlite3_reset(q);
    if (rc == 0 && site) {
        q = stmt(s, ST_ZONE_SITE);
        bind_text(q, 1, id);
        bind_text(q, 2, site);
        rc = run_user(s, q, -ENOENT);
    }
    if (rc == 0 && name) {
        q = stmt(s, ST_ZONE_NAME);
        bind_text(q, 1, id);
        bind_text(q, 2, name);
        rc = run_user(s, q, -EINVAL);
    }
    if (rc == 0 && neighbours)
        rc = set_neighbours(s, id, neighbours);
    if (rc < 0) {
        rollback(s);
        return rc;
    }
    return store_commit(s);
}

int store_zone_remove(struct store *s, const char *id)
{
    sqlite3_stmt *q = stmt(s, ST_ZONE_REMOVE);
    if (!q)
        return -EIO;
    bind_text(q, 1, id);
    return by_id(s, q, -ENOTEMPTY);
}

static void bind_household(sqlite3_stmt *q, const struct store_household *h)
{
    bind_text(q, 1, h->id);
    bind_text(q, 2, h->zone);
    bind_text(q, 3, h->address);
    bind_text(q, 4, h->contact);
    bind_text(q, 5, h->phone);
    if (h->has_pos) {
        sqlite3_bind_double(q, 6, h->lat);
        sqlite3_bind_double(q, 7, h->lon);
    }
}

int store_household_add(struct store *s, const struct store_household *h)
{
    if (!fw_id_valid(h->id))
        return -EINVAL;
    sqlite3_stmt *q = stmt(s, ST_HH_ADD);
    if (!q)
        return -EIO;
    bind_household(q, h);
    return run_user(s, q, -EEXIST);
}

int store_household_edit(struct store *s, const struct store_household *h)
{
    sqlite3_stmt *q = stmt(s, ST_HH_EDIT);
    if (!q)
        return -EIO;
    bind_household(q, h);
    return by_id(s, q, -ENOENT);
}

static void col_copy(sqlite3_stmt *q, int col, char *dst, size_t size)
{
    const unsigned char *t = sqlite3_column_text(q, col);
    snprintf(dst, size, "%s", t ? (const char *)t : "");
}

int store_household_get(struct store *s, const char *id, struct store_household *out)
{
    sqlite3_stmt *q = stmt(s, ST_HH_GET);
    if (!q)
        return -EIO;
    bind_text(q, 1, id);
    int rc = sqlite3_step(q);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(q);
        return rc == SQLITE_DONE ? -ENOENT : sql_fail(s, "household", rc);
    }
    memset(out, 0, sizeof *out);
    snprintf(out->id, sizeof out->id, "%s", id);
    col_copy(q, 0, out->zone, sizeof out->zone);
    col_copy(q, 1, out->address, sizeof out->address);
    col_copy(q, 2, out->contact, sizeof out->contact);
    col_copy(q, 3, out->phone, sizeof out->phone);
    out->has_pos = sqlite3_column_type(q, 4) != SQLITE_NULL;
    out->lat = sqlite3_column_double(q, 4);
    out->lon = sqlite3_column_double(q, 5);
    sqlite3_reset(q);
    return 0;
}

int store_household_remove(struct store *s, const char *id)
{
    sqlite3_stmt *q = stmt(s, ST_HH_REMOVE);
    if (!q)
        return -EIO;
    bind_text(q, 1, id);
    return by_id(s, q, -ENOTEMPTY);
}

int store_node_add(struct store *s, const char *id, const char *household, enum fw_node_kind kind,
                   const char *room, int64_t now_ms)
{
    if (!fw_id_valid(id) || !fw_kind_name(kind))
        return -EINVAL;
    sqlite3_stmt *q = stmt(s, ST_NODE_ADD);
    if (!q)
        return -EIO;
    bind_text(q, 1, id);
    bind_text(q, 2, household);
    bind_text(q, 3, fw_kind_name(kind));
    bind_text(q, 4, room ? room : "");
    sqlite3_bind_int64(q, 5, now_ms);
    return run_user(s, q, -EEXIST);
}

int store_node_remove(struct store *s, const char *id)
{
    sqlite3_stmt *q = stmt(s, ST_NODE_REMOVE);
    if (!q)
        return -EIO;
    bind_text(q, 1, id);
    return by_id(s, q, -ENOTEMPTY);
}

int store_change_counter(struct store *s, int64_t *out)
{
    sqlite3_stmt *q = stmt(s, ST_COUNTER);
    if (!q)
        return -EIO;
    int rc = sqlite3_step(q);
    int ret = rc == SQLITE_ROW ? 0 : sql_fail(s, "change counter", rc);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(q, 0);
    sqlite3_reset(q);
    return ret;
}

int store_each_zone(struct store *s, int (*fn)(void *ctx, const struct store_zone *z), void *ctx)
{
    sqlite3_stmt *q = stmt(s, ST_EACH_ZONE);
    if (!q)
        return -EIO;
    int rc, ret = 0;
    while (ret == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        struct store_zone z;
        col_copy(q, 0, z.id, sizeof z.id);
        col_copy(q, 1, z.site, sizeof z.site);
        col_copy(q, 2, z.neighbours, sizeof z.neighbours);
        ret = fn(ctx, &z);
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = sql_fail(s, "zones", rc);
    sqlite3_reset(q);
    return ret;
}

int store_each_node(struct store *s, int (*fn)(void *ctx, const struct store_node *n), void *ctx)
{
    sqlite3_stmt *q = stmt(s, ST_EACH_NODE);
    if (!q)
        return -EIO;
    int rc, ret = 0;
    while (ret == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        struct store_node n;
        memset(&n, 0, sizeof n);
        char kind[16];
        col_copy(q, 0, n.id, sizeof n.id);
        col_copy(q, 1, n.household, sizeof n.household);
        col_copy(q, 2, n.zone, sizeof n.zone);
        col_copy(q, 3, kind, sizeof kind);
        if (fw_kind_parse(kind, &n.kind) < 0)
            n.kind = FW_KIND_COMBO;
        n.boot = (uint32_t)sqlite3_column_int64(q, 4);
        n.online = sqlite3_column_int(q, 5) != 0;
        n.last_seen_ms = sqlite3_column_int64(q, 6);
        n.last_test_ms = sqlite3_column_int64(q, 7);
        n.batt_pct = sqlite3_column_int(q, 8);
        n.interval_s = sqlite3_column_int(q, 9);
        n.seq_gaps = sqlite3_column_int64(q, 10);
        n.commissioned_ms = sqlite3_column_int64(q, 11);
        n.decommissioned_ms = sqlite3_column_int64(q, 12);
        ret = fn(ctx, &n);
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = sql_fail(s, "nodes", rc);
    sqlite3_reset(q);
    return ret;
}

int store_each_household(struct store *s, int (*fn)(void *ctx, const char *zone, const char *household),
                         void *ctx)
{
    sqlite3_stmt *q = stmt(s, ST_EACH_HH);
    if (!q)
        return -EIO;
    int rc, ret = 0;
    while (ret == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        char z[FW_ID_MAX + 1], h[FW_ID_MAX + 1];
        col_copy(q, 0, z, sizeof z);
        col_copy(q, 1, h, sizeof h);
        ret = fn(ctx, z, h);
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = sql_fail(s, "households", rc);
    sqlite3_reset(q);
    return ret;
}

int store_node_save(struct store *s, const struct store_node *n, const char *fw)
{
    sqlite3_stmt *q = stmt(s, ST_NODE_SAVE);
    if (!q)
        return -EIO;
    bind_text(q, 1, n->id);
    sqlite3_bind_int64(q, 2, n->boot);
    sqlite3_bind_int(q, 3, n->online);
    sqlite3_bind_int64(q, 4, n->last_seen_ms);
    sqlite3_bind_int64(q, 5, n->last_test_ms);
    sqlite3_bind_int(q, 6, n->batt_pct);
    sqlite3_bind_int(q, 7, n->interval_s);
    sqlite3_bind_int64(q, 8, n->seq_gaps);
    bind_text(q, 9, fw && *fw ? fw : NULL);
    sqlite3_bind_int64(q, 10, n->commissioned_ms);
    return by_id(s, q, -EINVAL);
}

/* --- Readings and events ----------------------------------------------- */

int store_readings_write(struct store *s, const struct store_reading *r, size_t n)
{
    if (n == 0)
        return 0;
    bool own = sqlite3_get_autocommit(s->db) != 0;
    int rc = own ? store_begin(s) : 0;
    if (rc < 0)
        return rc;
    int written = 0;
    for (size_t i = 0; i < n; i++) {
        sqlite3_stmt *q = stmt(s, ST_READING_ADD);
        if (!q) {
            rollback(s);
            return -EIO;
        }
        bind_text(q, 1, r[i].node);
        sqlite3_bind_int64(q, 2, r[i].rx_ms);
        sqlite3_bind_int64(q, 3, r[i].r.ts);
        sqlite3_bind_int64(q, 4, r[i].r.seq);
        sqlite3_bind_double(q, 5, r[i].r.temp_c);
        sqlite3_bind_int(q, 6, r[i].r.smoke);
        sqlite3_bind_int(q, 7, r[i].r.batt_pct);
        if ((rc = run(s, q)) < 0) {
            if (own)
                rollback(s);
            return rc;
        }
        written++;
    }
    rc = own ? store_commit(s) : 0;
    return rc < 0 ? rc : written;
}

int store_event_write(struct store *s, const char *node, uint32_t boot, const struct fw_event *ev,
                      int64_t rx_ms)
{
    sqlite3_stmt *q = stmt(s, ST_EVENT_ADD);
    if (!q)
        return -EIO;
    const char *cause = ev->cause != FW_CAUSE_NONE ? fw_cause_name(ev->cause) : "";
    const char *result = ev->result != FW_RESULT_NONE ? fw_result_name(ev->result) : "";
    bind_text(q, 1, node);
    sqlite3_bind_int64(q, 2, boot);
    sqlite3_bind_int64(q, 3, ev->seq);
    sqlite3_bind_int64(q, 4, ev->ts);
    sqlite3_bind_int64(q, 5, rx_ms);
    bind_text(q, 6, fw_event_type_name(ev->type));
    bind_text(q, 7, cause ? cause : "");
    bind_text(q, 8, result ? result : "");
    bind_text(q, 9, ev->cmd_id);
    bind_text(q, 10, ev->detail);
    /* A single statement outside a transaction is its own transaction: when
     * sqlite3_step returns SQLITE_DONE the row is committed to the WAL. */
    int rc = run(s, q);
    if (rc < 0)
        return rc;
    if (sqlite3_changes(s->db) > 0)
        return 1;
    q = stmt(s, ST_NODE_EXISTS);
    if (!q)
        return -EIO;
    bind_text(q, 1, node);
    rc = sqlite3_step(q);
    sqlite3_reset(q);
    if (rc == SQLITE_ROW)
        return 0;
    return rc == SQLITE_DONE ? -ENOENT : sql_fail(s, "node lookup", rc);
}

int store_node_ingest_state(struct store *s, const char *node, uint32_t *boot, int64_t *last_seq)
{
    sqlite3_stmt *q = stmt(s, ST_NODE_BOOT);
    if (!q)
        return -EIO;
    bind_text(q, 1, node);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        *boot = (uint32_t)sqlite3_column_int64(q, 0);
    sqlite3_reset(q);
    if (rc != SQLITE_ROW)
        return rc == SQLITE_DONE ? -ENOENT : sql_fail(s, "node boot", rc);
    q = stmt(s, ST_EVENT_LAST);
    if (!q)
        return -EIO;
    bind_text(q, 1, node);
    sqlite3_bind_int64(q, 2, *boot);
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        *last_seq = sqlite3_column_int64(q, 0);
    sqlite3_reset(q);
    return rc == SQLITE_ROW ? 0 : sql_fail(s, "last event", rc);
}

int store_node_raise_boot(struct store *s, const char *node, uint32_t boot)
{
    sqlite3_stmt *q = stmt(s, ST_NODE_RAISE_BOOT);
    if (!q)
        return -EIO;
    bind_text(q, 1, node);
    sqlite3_bind_int64(q, 2, boot);
    /* A boot must outlive a crash of the hub (so a redelivered event is
     * stored under the same boot), which a WAL commit does without fsync.
     * Skipping the fsync keeps a storm of births (every node reconnecting
     * after a broker restart) from stalling events behind thousands of
     * fsyncs on the receive thread. */
    if (s->sync_full)
        exec(s, "PRAGMA synchronous = NORMAL");
    int rc = run(s, q);
    if (s->sync_full)
        exec(s, "PRAGMA synchronous = FULL");
    return rc;
}

int store_rollup(struct store *s, int64_t from_ms, int64_t to_ms)
{
    /* Align to whole hours so a re-run replaces buckets with complete ones. */
    from_ms = from_ms / 3600000 * 3600000;
    int rc = 0;
    for (enum stmt_id id = ST_ROLLUP5; id <= ST_ROLLUP60 && rc == 0; id++) {
        sqlite3_stmt *q = stmt(s, id);
        if (!q)
            return -EIO;
        sqlite3_bind_int64(q, 1, from_ms);
        sqlite3_bind_int64(q, 2, to_ms);
        rc = run(s, q);
    }
    return rc;
}

int store_retention(struct store *s, int64_t now_ms, int retention_days)
{
    const int64_t day = 86400000;
    int64_t cutoff = now_ms - (int64_t)retention_days * day;
    cutoff = cutoff / 3600000 * 3600000; /* whole hours: rollups stay complete */
    int rc = store_begin(s);
    if (rc < 0)
        return rc;
    /* Fold what is about to go into rollups first: everything from the
     * oldest raw reading (normally less than an hour's worth, since each
     * run deletes up to its cutoff) to the cutoff. */
    int64_t oldest = cutoff;
    sqlite3_stmt *mq = stmt(s, ST_READINGS_OLDEST);
    if (mq && sqlite3_step(mq) == SQLITE_ROW && sqlite3_column_type(mq, 0) != SQLITE_NULL)
        oldest = sqlite3_column_int64(mq, 0);
    if (mq)
        sqlite3_reset(mq);
    rc = oldest < cutoff ? store_rollup(s, oldest, cutoff) : 0;
    sqlite3_stmt *q = rc == 0 ? stmt(s, ST_READINGS_DROP) : NULL;
    int removed = 0;
    if (q) {
        sqlite3_bind_int64(q, 1, cutoff);
        rc = run(s, q);
        removed = sqlite3_changes(s->db);
    }
    if (rc == 0 && (q = stmt(s, ST_ROLLUPS_DROP)) != NULL) {
        sqlite3_bind_int64(q, 1, now_ms - 731 * day);
        rc = run(s, q);
    }
    if (rc < 0 || !q) {
        rollback(s);
        return rc < 0 ? rc : -EIO;
    }
    rc = store_commit(s);
    return rc < 0 ? rc : removed;
}

/* --- Incidents, troubles, commands ------------------------------------- */

int store_incident_save(struct store *s, const struct store_incident *inc)
{
    sqlite3_stmt *q = stmt(s, ST_INC_SAVE);
    if (!q)
        return -EIO;
    sqlite3_bind_int64(q, 1, inc->id);
    bind_text(q, 2, inc->zone);
    bind_text(q, 3, inc->origin);
    bind_text(q, 4, inc->state);
    bind_text(q, 5, inc->cause);
    sqlite3_bind_int(q, 6, inc->drill);
    sqlite3_bind_int64(q, 7, inc->opened_ms);
    sqlite3_bind_int64(q, 8, inc->escalated_ms);
    sqlite3_bind_int64(q, 9, inc->acked_ms);
    bind_text(q, 10, inc->acked_by);
    sqlite3_bind_int64(q, 11, inc->cleared_ms);
    bind_text(q, 12, inc->cleared_by);
    bind_text(q, 13, inc->opened_by);
    bind_text(q, 14, inc->nodes);
    bind_text(q, 15, inc->sounded);
    return run(s, q);
}

static void read_incident(sqlite3_stmt *q, struct store_incident *o)
{
    memset(o, 0, sizeof *o);
    o->id = (uint32_t)sqlite3_column_int64(q, 0);
    col_copy(q, 1, o->zone, sizeof o->zone);
    col_copy(q, 2, o->origin, sizeof o->origin);
    col_copy(q, 3, o->state, sizeof o->state);
    col_copy(q, 4, o->cause, sizeof o->cause);
    o->drill = sqlite3_column_int(q, 5) != 0;
    o->opened_ms = sqlite3_column_int64(q, 6);
    o->escalated_ms = sqlite3_column_int64(q, 7);
    o->acked_ms = sqlite3_column_int64(q, 8);
    col_copy(q, 9, o->acked_by, sizeof o->acked_by);
    o->cleared_ms = sqlite3_column_int64(q, 10);
    col_copy(q, 11, o->cleared_by, sizeof o->cleared_by);
    col_copy(q, 12, o->opened_by, sizeof o->opened_by);
    col_copy(q, 13, o->nodes, sizeof o->nodes);
    col_copy(q, 14, o->sounded, sizeof o->sounded);
}

int store_incident_get(struct store *s, uint32_t id, struct store_incident *out)
{
    sqlite3_stmt *q = stmt(s, ST_INC_GET);
    if (!q)
        return -EIO;
    sqlite3_bind_int64(q, 1, id);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        read_incident(q, out);
    sqlite3_reset(q);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : sql_fail(s, "incident", rc);
}

int store_incident_max_id(struct store *s, uint32_t *out)
{
    sqlite3_stmt *q = stmt(s, ST_INC_MAX);
    if (!q)
        return -EIO;
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        *out = (uint32_t)sqlite3_column_int64(q, 0);
    sqlite3_reset(q);
    return rc == SQLITE_ROW ? 0 : sql_fail(s, "incident max", rc);
}

int store_each_open_incident(struct store *s, int (*fn)(void *ctx, const struct store_incident *inc),
                             void *ctx)
{
    sqlite3_stmt *q = stmt(s, ST_INC_OPEN);
    if (!q)
        return -EIO;
    int rc, ret = 0;
    while (ret == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        struct store_incident inc;
        read_incident(q, &inc);
        ret = fn(ctx, &inc);
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = sql_fail(s, "open incidents", rc);
    sqlite3_reset(q);
    return ret;
}

int store_timeline_add(struct store *s, uint32_t incident, int64_t ts_ms, const char *what, const char *who,
                       const char *node, const char *detail)
{
    sqlite3_stmt *q = stmt(s, ST_TIMELINE_ADD);
    if (!q)
        return -EIO;
    sqlite3_bind_int64(q, 1, incident);
    sqlite3_bind_int64(q, 2, ts_ms);
    bind_text(q, 3, what);
    bind_text(q, 4, who ? who : "");
    bind_text(q, 5, node ? node : "");
    bind_text(q, 6, detail ? detail : "");
    return run(s, q);
}

int64_t store_trouble_open(struct store *s, const char *node, const char *kind, int64_t now_ms,
                           const char *detail)
{
    sqlite3_stmt *q = stmt(s, ST_TROUBLE_OPEN);
    if (!q)
        return -EIO;
    bind_text(q, 1, node);
    bind_text(q, 2, kind);
    sqlite3_bind_int64(q, 3, now_ms);
    bind_text(q, 4, detail ? detail : "");
    int rc = run(s, q);
    if (rc < 0)
        return rc;
    return sqlite3_changes(s->db) > 0 ? sqlite3_last_insert_rowid(s->db) : 0;
}

int store_each_open_trouble(struct store *s,
                            int (*fn)(void *ctx, const char *node, const char *kind, int64_t opened_ms,
                                      int64_t notified_ms),
                            void *ctx)
{
    sqlite3_stmt *q = stmt(s, ST_TROUBLE_EACH);
    if (!q)
        return -EIO;
    int rc, ret = 0;
    while (ret == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        char node[FW_ID_MAX + 1], kind[32];
        col_copy(q, 0, node, sizeof node);
        col_copy(q, 1, kind, sizeof kind);
        ret = fn(ctx, node, kind, sqlite3_column_int64(q, 2), sqlite3_column_int64(q, 3));
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = sql_fail(s, "troubles", rc);
    sqlite3_reset(q);
    return ret;
}

int store_incident_close(struct store *s, uint32_t id, const char *state, int64_t ts_ms, const char *who)
{
    sqlite3_stmt *q = stmt(s, ST_INC_CLOSE);
    if (!q)
        return -EIO;
    sqlite3_bind_int64(q, 1, id);
    bind_text(q, 2, state);
    sqlite3_bind_int64(q, 3, ts_ms);
    bind_text(q, 4, who ? who : "");
    return run(s, q);
}

int store_trouble_clear(struct store *s, const char *node, const char *kind, int64_t now_ms)
{
    sqlite3_stmt *q = stmt(s, ST_TROUBLE_CLEAR);
    if (!q)
        return -EIO;
    bind_text(q, 1, node);
    bind_text(q, 2, kind);
    sqlite3_bind_int64(q, 3, now_ms);
    int rc = run(s, q);
    return rc < 0 ? rc : sqlite3_changes(s->db) > 0;
}

int store_trouble_notified(struct store *s, const char *node, const char *kind, int64_t now_ms)
{
    sqlite3_stmt *q = stmt(s, ST_TROUBLE_NOTIFIED);
    if (!q)
        return -EIO;
    bind_text(q, 1, node);
    bind_text(q, 2, kind);
    sqlite3_bind_int64(q, 3, now_ms);
    return run(s, q);
}

int64_t store_command_add(struct store *s, const char *action, uint32_t incident, const char *zone,
                          const char *who, int64_t now_ms)
{
    sqlite3_stmt *q = stmt(s, ST_CMD_ADD);
    if (!q)
        return -EIO;
    bind_text(q, 1, action);
    if (incident)
        sqlite3_bind_int64(q, 2, incident);
    bind_text(q, 3, zone && *zone ? zone : NULL);
    bind_text(q, 4, who ? who : "");
    sqlite3_bind_int64(q, 5, now_ms);
    int rc = run(s, q);
    return rc < 0 ? rc : sqlite3_last_insert_rowid(s->db);
}

int store_command_next(struct store *s, int64_t after_id, struct store_command *out)
{
    sqlite3_stmt *q = stmt(s, ST_CMD_NEXT);
    if (!q)
        return -EIO;
    sqlite3_bind_int64(q, 1, after_id);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        out->id = sqlite3_column_int64(q, 0);
        col_copy(q, 1, out->action, sizeof out->action);
        out->incident = (uint32_t)sqlite3_column_int64(q, 2);
        col_copy(q, 3, out->zone, sizeof out->zone);
        col_copy(q, 4, out->who, sizeof out->who);
    }
    sqlite3_reset(q);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : sql_fail(s, "commands", rc);
}

int store_command_done(struct store *s, int64_t id, const char *result, int64_t now_ms)
{
    sqlite3_stmt *q = stmt(s, ST_CMD_DONE);
    if (!q)
        return -EIO;
    sqlite3_bind_int64(q, 1, id);
    bind_text(q, 2, result);
    sqlite3_bind_int64(q, 3, now_ms);
    return run(s, q);
}

int store_command_result(struct store *s, int64_t id, char *result, size_t size)
{
    sqlite3_stmt *q = stmt(s, ST_CMD_RESULT);
    if (!q)
        return -EIO;
    sqlite3_bind_int64(q, 1, id);
    int rc = sqlite3_step(q);
    int ret;
    if (rc == SQLITE_ROW) {
        ret = sqlite3_column_int(q, 0);
        col_copy(q, 1, result, size);
    } else {
        ret = rc == SQLITE_DONE ? -ENOENT : sql_fail(s, "command", rc);
    }
    sqlite3_reset(q);
    return ret;
}

/* --- Users and audit ---------------------------------------------------- */

static bool role_valid(const char *role)
{
    return role &&
           (strcmp(role, "watch") == 0 || strcmp(role, "technician") == 0 || strcmp(role, "admin") == 0);
}

static bool user_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-' || c == '@'))
            return false;
    }
    return true;
}

int store_user_add(struct store *s, const char *name, const char *role, const char *hash, int64_t now_ms)
{
    if (!user_valid(name) || !role_valid(role))
        return -EINVAL;
    sqlite3_stmt *q = stmt(s, ST_USER_ADD);
    if (!q)
        return -EIO;
    bind_text(q, 1, name);
    bind_text(q, 2, role);
    bind_text(q, 3, hash);
    sqlite3_bind_int64(q, 4, now_ms);
    return run_user(s, q, -EEXIST);
}

int store_user_remove(struct store *s, const char *name)
{
    sqlite3_stmt *q = stmt(s, ST_USER_REMOVE);
    if (!q)
        return -EIO;
    bind_text(q, 1, name);
    return by_id(s, q, -EINVAL);
}

int store_user_set_role(struct store *s, const char *name, const char *role)
{
    if (!role_valid(role))
        return -EINVAL;
    sqlite3_stmt *q = stmt(s, ST_USER_ROLE);
    if (!q)
        return -EIO;
    bind_text(q, 1, name);
    bind_text(q, 2, role);
    return by_id(s, q, -EINVAL);
}

int store_user_set_password(struct store *s, const char *name, const char *hash)
{
    sqlite3_stmt *q = stmt(s, ST_USER_PASSWORD);
    if (!q)
        return -EIO;
    bind_text(q, 1, name);
    bind_text(q, 2, hash);
    return by_id(s, q, -EINVAL);
}

int store_user_hash(struct store *s, const char *name, char *hash, size_t size)
{
    sqlite3_stmt *q = stmt(s, ST_USER_HASH);
    if (!q)
        return -EIO;
    bind_text(q, 1, name);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        col_copy(q, 0, hash, size);
    sqlite3_reset(q);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : sql_fail(s, "user", rc);
}

int store_audit(struct store *s, const char *who, const char *action, const char *detail, int64_t now_ms)
{
    sqlite3_stmt *q = stmt(s, ST_AUDIT);
    if (!q)
        return -EIO;
    sqlite3_bind_int64(q, 1, now_ms);
    bind_text(q, 2, who ? who : "");
    bind_text(q, 3, action);
    bind_text(q, 4, detail ? detail : "");
    return run(s, q);
}

/* --- Maintenance -------------------------------------------------------- */

int store_backup(struct store *s, const char *path)
{
    if (access(path, F_OK) == 0)
        return -EEXIST;
    sqlite3 *dst = NULL;
    int rc = sqlite3_open_v2(path, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        log_error("backup %s: %s", path, dst ? sqlite3_errmsg(dst) : sqlite3_errstr(rc));
        sqlite3_close(dst);
        return -EIO;
    }
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", s->db, "main");
    if (!b) {
        log_error("backup %s: %s", path, sqlite3_errmsg(dst));
        sqlite3_close(dst);
        unlink(path);
        return -EIO;
    }
    /* Copy in steps so a busy hub is never locked out for long. */
    do {
        rc = sqlite3_backup_step(b, 256);
        if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
            sqlite3_sleep(20);
    } while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
    sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE) {
        log_error("backup %s: %s", path, sqlite3_errstr(rc));
        sqlite3_close(dst);
        unlink(path);
        return -EIO;
    }
    rc = sqlite3_close(dst);
    return rc == SQLITE_OK ? 0 : -EIO;
}
