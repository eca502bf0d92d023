/*
 * fixture.c - see fixture.h.
 */
#include "fixture.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <sodium.h>
#include <sqlite3.h>

#include "cap.h"
#include "fed.h"
#include "harness.h"
#include "store.h"

#define MIN_MS 60000LL
#define HOUR_MS 3600000LL
#define DAY_MS (24 * HOUR_MS)

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int fx_sql(struct fixture *fx, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(fx->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "fixture sql: %s\n  in: %.200s\n", msg ? msg : "?", sql);
        sqlite3_free(msg);
        return -EIO;
    }
    return 0;
}

int64_t fx_sql_int(struct fixture *fx, const char *sql)
{
    sqlite3_stmt *q;
    int64_t v = -1;
    pthread_mutex_lock(&fx->mu);
    if (sqlite3_prepare_v2(fx->db, sql, -1, &q, NULL) == SQLITE_OK) {
        if (sqlite3_step(q) == SQLITE_ROW)
            v = sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
    }
    pthread_mutex_unlock(&fx->mu);
    return v;
}

/* Runs a formatted statement with up to four text arguments bound safely. */
static int exec_bind(struct fixture *fx, const char *sql, const char *a, const char *b, const char *c,
                     const char *d)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(fx->db, sql, -1, &q, NULL) != SQLITE_OK) {
        fprintf(stderr, "fixture sql: %s\n", sqlite3_errmsg(fx->db));
        return -EIO;
    }
    const char *v[4] = {a, b, c, d};
    for (int i = 0; i < 4; i++)
        if (v[i])
            sqlite3_bind_text(q, i + 1, v[i], -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) {
        fprintf(stderr, "fixture sql: %s\n", sqlite3_errmsg(fx->db));
        return -EIO;
    }
    return 0;
}

static const struct {
    const char *id, *zone, *address, *contact, *phone;
    double lat, lon;
} households[] = {
    {"h-101", FX_ZONE_A, "12/1 Lê Lợi", "Nguyễn Văn An", "0901 234 101", 10.7765, 106.7009},
    {"h-102", FX_ZONE_A, "12/3 Lê Lợi", "Trần Thị Bích", "0901 234 102", 10.7766, 106.7011},
    {"h-103", FX_ZONE_A, "12/5 Lê Lợi", "Lê Văn Cường", "0901 234 103", 10.7767, 106.7013},
    {"h-104", FX_ZONE_A, "12/7 Lê Lợi", "Phạm Thị Dung", "0901 234 104", 10.7768, 106.7015},
    {"h-105", FX_ZONE_A, "12/9 Lê Lợi", "Hoàng Văn Em", "0901 234 105", 10.7764, 106.7010},
    {"h-106", FX_ZONE_A, "12/11 Lê Lợi", "Vũ Thị Gấm", "0901 234 106", 10.7763, 106.7012},
    {"h-107", FX_ZONE_A, "12/13 Lê Lợi", "Đặng Văn Hải", "0901 234 107", 10.7762, 106.7014},
    {"h-108", FX_ZONE_A, "12/15 Lê Lợi", "Bùi Thị Hoa", "0901 234 108", 10.7761, 106.7016},
    {"h-201", FX_ZONE_B, "14/2 Lê Lợi", "Đỗ Văn Khoa", "0902 345 201", 10.7770, 106.7020},
    {"h-202", FX_ZONE_B, "14/4 Lê Lợi", "Ngô Thị Lan", "0902 345 202", 10.7771, 106.7022},
    {"h-203", FX_ZONE_B, "14/6 Lê Lợi", "Dương Văn Minh", "0902 345 203", 10.7772, 106.7024},
    {"h-204", FX_ZONE_B, "14/8 Lê Lợi", "Lý Thị Ngọc", "0902 345 204", 10.7773, 106.7026},
    {"h-205", FX_ZONE_B, "14/10 Lê Lợi", "Mai Văn Phúc", "0902 345 205", 10.7769, 106.7021},
    {"h-206", FX_ZONE_B, "14/12 Lê Lợi", "Trịnh Thị Quỳnh", "0902 345 206", 10.7768, 106.7023},
};

/* node, household, kind, room, online, battery, last test days ago (-1 never), commissioned */
static const struct {
    const char *id, *hh, *kind, *room;
    int online, batt, test_days, commissioned;
} nodes[] = {
    {"n-101", "h-101", "combo", "kitchen", 1, 91, 5, 1},
    {"n-102", "h-102", "smoke", "hall", 1, 88, 5, 1},
    {"n-103", "h-103", "heat", "kitchen", 1, 84, 6, 1},
    {"n-104", "h-104", "combo", "kitchen", 1, 79, 40, 1},
    {"n-105", "h-105", "smoke", "bedroom", 1, 93, 5, 1},
    {"n-106", "h-106", "combo", "kitchen", 1, 90, 7, 1},
    {"n-107", "h-107", "smoke", "hall", 1, 86, 5, 1},
    {"n-201", "h-201", "combo", "kitchen", 1, 95, 3, 1},
    {"n-202", "h-202", "smoke", "hall", 1, 82, 3, 1},
    {"n-203", "h-203", "heat", "kitchen", 1, 12, 3, 1},
    {"n-204", "h-204", "combo", "kitchen", 1, 77, 3, 1},
    {"n-205", "h-205", "smoke", "hall", 0, 64, 3, 1},
    {"n-206", "h-206", "combo", "kitchen", 1, 100, -1, 0},
};

static int fill(struct fixture *fx, bool hostile)
{
    int64_t now = wall_ms();
    char sql[4096];
    int rc = 0;
    rc |= fx_sql(fx, "BEGIN");
    rc |= exec_bind(fx, "INSERT INTO sites(id, name) VALUES (?1, ?2)", FX_SITE,
                    "Phường Hòa Bình · Tổ dân phố 5", NULL, NULL);
    rc |= exec_bind(fx, "INSERT INTO zones(id, site_id, name) VALUES (?1, ?2, ?3)", FX_ZONE_A, FX_SITE,
                    hostile ? FX_HOSTILE_ZONE_NAME : "Tổ liên gia 1 · Hẻm 12", NULL);
    rc |= exec_bind(fx, "INSERT INTO zones(id, site_id, name) VALUES (?1, ?2, ?3)", FX_ZONE_B, FX_SITE,
                    "Tổ liên gia 2 · Hẻm 14", NULL);
    rc |= fx_sql(fx, "INSERT INTO zone_neighbours VALUES ('to-1', 'to-2'), ('to-2', 'to-1')");
    for (size_t i = 0; i < sizeof households / sizeof households[0]; i++) {
        snprintf(
            sql, sizeof sql,
            "INSERT INTO households(id, zone_id, address, contact, phone, lat, lon) VALUES (?1, ?2, ?3, ?4, "
            "'%s', %.6f, %.6f)",
            households[i].phone, households[i].lat, households[i].lon);
        rc |= exec_bind(fx, sql, households[i].id, households[i].zone, households[i].address,
                        hostile && i == 1 ? FX_HOSTILE_CONTACT : households[i].contact);
    }
    for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
        int64_t test = nodes[i].test_days < 0 ? 0 : now - nodes[i].test_days * DAY_MS;
        snprintf(
            sql, sizeof sql,
            "INSERT INTO nodes(id, household_id, kind, room, fw, boot, online, last_seen_ms, last_test_ms, "
            "batt_pct, interval_s, created_ms, commissioned_ms) VALUES ('%s', '%s', '%s', '%s', '1.2.0', 3, "
            "%d, %lld, %lld, %d, 60, %lld, %lld)",
            nodes[i].id, nodes[i].hh, nodes[i].kind, nodes[i].room, nodes[i].online,
            (long long)(now - (nodes[i].online ? 30000 : 2 * HOUR_MS)), (long long)test, nodes[i].batt,
            (long long)(now - 90 * DAY_MS), (long long)(nodes[i].commissioned ? now - 60 * DAY_MS : 0));
        rc |= fx_sql(fx, sql);
        if (nodes[i].test_days >= 0) {
            snprintf(sql, sizeof sql,
                     "INSERT INTO events(node_id, boot, seq, node_ts, rx_ms, type, cause, result) VALUES "
                     "('%s', 3, "
                     "%zu, %lld, %lld, 'test', '', 'pass')",
                     nodes[i].id, i, (long long)test, (long long)test);
            rc |= fx_sql(fx, sql);
        }
        /* The latest reading of every node. */
        snprintf(
            sql, sizeof sql,
            "INSERT INTO readings(node_id, rx_ms, node_ts, seq, temp_c, smoke, batt_pct) VALUES ('%s', %lld, "
            "%lld, 1, %.1f, 0, %d)",
            nodes[i].id, (long long)(now - (nodes[i].online ? 30000 : 2 * HOUR_MS)), (long long)(now - 30000),
            25.0 + (double)(i % 5) * 0.7, nodes[i].batt);
        rc |= fx_sql(fx, sql);
    }
    /* A month of history for one node: every 5 minutes, every minute for the
     * last 6 hours; a daily warm-up at cooking time. */
    sqlite3_stmt *q;
    rc |= sqlite3_prepare_v2(
              fx->db,
              "INSERT INTO readings(node_id, rx_ms, node_ts, seq, temp_c, smoke, batt_pct) VALUES "
              "(?1, ?2, ?2, ?3, ?4, ?5, 91)",
              -1, &q, NULL) != SQLITE_OK;
    uint32_t seq = 0;
    for (int64_t t = now - 30 * DAY_MS; t < now - 60000; t += (t < now - 6 * HOUR_MS ? 5 * MIN_MS : MIN_MS)) {
        double hour = (double)((t / MIN_MS) % 1440) / 60.0;
        double temp = 27.0 + 2.5 * sin((hour - 9.0) / 24.0 * 2 * M_PI);
        if (hour > 17.5 && hour < 18.5)
            temp += 6.0 * sin((hour - 17.5) * M_PI);
        sqlite3_bind_text(q, 1, FX_NODE, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, t);
        sqlite3_bind_int64(q, 3, seq++);
        sqlite3_bind_double(q, 4, round(temp * 10) / 10);
        sqlite3_bind_int(q, 5, 0);
        rc |= sqlite3_step(q) != SQLITE_DONE;
        sqlite3_reset(q);
    }
    sqlite3_finalize(q);
    snprintf(
        sql, sizeof sql,
        "INSERT INTO troubles(node_id, kind, opened_ms, detail) VALUES ('n-205', 'offline', %lld, 'no "
        "reading "
        "for 2 h'), ('n-203', 'low_battery', %lld, 'battery at 12 %%'), ('n-104', 'overdue_test', %lld, 'no "
        "passed test for 40 days');"
        "INSERT INTO troubles(node_id, kind, opened_ms, cleared_ms, detail) VALUES ('n-102', 'offline', "
        "%lld, %lld, 'power cut')",
        (long long)(now - 2 * HOUR_MS), (long long)(now - DAY_MS), (long long)(now - 10 * DAY_MS),
        (long long)(now - 4 * DAY_MS), (long long)(now - 4 * DAY_MS + HOUR_MS));
    rc |= fx_sql(fx, sql);
    /* History: a drill, a cooking false alarm, and a real fire next door. */
    int64_t d = now - 10 * DAY_MS, f = now - 3 * DAY_MS, g = now - 20 * DAY_MS;
    snprintf(
        sql, sizeof sql,
        "INSERT INTO incidents(id, zone_id, origin_node, state, cause, drill, opened_ms, escalated_ms, "
        "acked_ms, acked_by, cleared_ms, cleared_by, opened_by) VALUES "
        "(1, 'to-1', '', 'cleared', '', 1, %lld, %lld, %lld, 'binh.watch', %lld, 'binh.watch', 'an.admin'),"
        "(2, 'to-1', 'n-103', 'dismissed', 'heat_ror', 0, %lld, 0, 0, '', %lld, '', ''),"
        "(3, 'to-2', 'n-202', 'cleared', 'smoke', 0, %lld, %lld, %lld, 'binh.watch', %lld, 'binh.watch', '');"
        "INSERT INTO timeline(incident_id, ts_ms, what, who, node_id, detail) VALUES "
        "(1, %lld, 'drill_started', 'an.admin', '', 'Drill started'),"
        "(1, %lld, 'acknowledged', 'binh.watch', '', 'Acknowledged after 1 min 35 s'),"
        "(1, %lld, 'cleared', 'binh.watch', '', 'Drill ended'),"
        "(2, %lld, 'opened', 'n-103', 'n-103', 'Heat rising fast in the kitchen'),"
        "(2, %lld, 'dismissed', 'n-103', 'n-103', 'Resident hushed it: cooking'),"
        "(3, %lld, 'opened', 'n-202', 'n-202', 'Smoke in the hall'),"
        "(3, %lld, 'escalated', '', '', 'Verifying window elapsed'),"
        "(3, %lld, 'acknowledged', 'binh.watch', '', 'Acknowledged after 1 min 10 s'),"
        "(3, %lld, 'cleared', 'binh.watch', '', 'Sensors normal; cleared')",
        (long long)d, (long long)d, (long long)(d + 95000), (long long)(d + 600000), (long long)f,
        (long long)(f + 15000), (long long)g, (long long)(g + 20000), (long long)(g + 90000),
        (long long)(g + 1800000), (long long)d, (long long)(d + 95000), (long long)(d + 600000), (long long)f,
        (long long)(f + 15000), (long long)g, (long long)(g + 20000), (long long)(g + 90000),
        (long long)(g + 1800000));
    rc |= fx_sql(fx, sql);
    char hash[crypto_pwhash_STRBYTES];
    rc |= crypto_pwhash_str(hash, FX_PASSWORD, strlen(FX_PASSWORD), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                            crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0;
    const char *users[][2] = {{FX_ADMIN, "admin"}, {FX_WATCH, "watch"}, {FX_TECH, "technician"}};
    for (size_t i = 0; i < 3; i++) {
        snprintf(sql, sizeof sql,
                 "INSERT INTO users(name, role, pwhash, created_ms) VALUES (?1, ?2, ?3, %lld)",
                 (long long)(now - 100 * DAY_MS));
        rc |= exec_bind(fx, sql, users[i][0], users[i][1], hash, NULL);
    }
    rc |= fx_sql(fx, "COMMIT");
    return rc ? -EIO : 0;
}

int fx_open(struct fixture *fx, bool hostile)
{
    memset(fx, 0, sizeof *fx);
    if (sodium_init() < 0)
        return -EIO;
    pthread_mutex_init(&fx->mu, NULL);
    snprintf(fx->dir, sizeof fx->dir, "%s", th_tmpdir("http"));
    snprintf(fx->db_path, sizeof fx->db_path, "%s/hub.db", fx->dir);
    char why[256];
    fx->store = store_open(fx->db_path, STORE_CREATE, why, sizeof why);
    if (!fx->store) {
        fprintf(stderr, "fixture: store_open: %s\n", why);
        return -errno;
    }
    if (sqlite3_open_v2(fx->db_path, &fx->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        return -EIO;
    sqlite3_busy_timeout(fx->db, 5000);
    return fill(fx, hostile);
}

void fx_close(struct fixture *fx)
{
    sqlite3_close(fx->db);
    store_close(fx->store);
    pthread_mutex_destroy(&fx->mu);
    if (fx->dir[0])
        th_rmtree(fx->dir);
    fx->dir[0] = '\0';
}

int fx_bulk(struct fixture *fx, int n_nodes, int readings_per_node)
{
    int64_t now = wall_ms();
    char sql[512];
    int rc = fx_sql(fx, "BEGIN");
    sqlite3_stmt *rd;
    rc |= sqlite3_prepare_v2(
              fx->db,
              "INSERT INTO readings(node_id, rx_ms, node_ts, seq, temp_c, smoke, batt_pct) VALUES "
              "(?1, ?2, ?2, ?3, ?4, 0, 90)",
              -1, &rd, NULL) != SQLITE_OK;
    for (int i = 0; i < n_nodes && rc == 0; i++) {
        if (i % 25 == 0) {
            snprintf(sql, sizeof sql,
                     "INSERT INTO zones(id, site_id, name) VALUES ('bulk-%d', '%s', 'Bulk %d')", i / 25,
                     FX_SITE, i / 25);
            rc |= fx_sql(fx, sql);
        }
        snprintf(sql, sizeof sql,
                 "INSERT INTO households(id, zone_id, address) VALUES ('bh-%d', 'bulk-%d', '%d Bulk Street');"
                 "INSERT INTO nodes(id, household_id, kind, online, last_seen_ms, last_test_ms, batt_pct, "
                 "commissioned_ms) VALUES ('bn-%d', 'bh-%d', 'combo', 1, %lld, %lld, 90, %lld)",
                 i, i / 25, i, i, i, (long long)now, (long long)(now - DAY_MS),
                 (long long)(now - 60 * DAY_MS));
        rc |= fx_sql(fx, sql);
        char id[32];
        snprintf(id, sizeof id, "bn-%d", i);
        for (int k = 0; k < readings_per_node; k++) {
            sqlite3_bind_text(rd, 1, id, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(rd, 2, now - (int64_t)(readings_per_node - k) * MIN_MS);
            sqlite3_bind_int64(rd, 3, k);
            sqlite3_bind_double(rd, 4, 25.0 + (double)(k % 7) * 0.3);
            rc |= sqlite3_step(rd) != SQLITE_DONE;
            sqlite3_reset(rd);
        }
    }
    sqlite3_finalize(rd);
    rc |= fx_sql(fx, "COMMIT");
    return rc ? -EIO : 0;
}

/* Publishes the incident's row as an "incident" event, as the daemon does. */
static void publish_incident(struct fixture *fx, uint32_t id, const char *event, const char *who)
{
    if (!fx->stream)
        return;
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(
            fx->db,
            "SELECT zone_id, state, drill, origin_node, opened_ms, escalated_ms, acked_ms, acked_by "
            "FROM incidents WHERE id = ?1",
            -1, &q, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_int64(q, 1, id);
    if (sqlite3_step(q) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", id);
        cJSON_AddStringToObject(o, "zone", (const char *)sqlite3_column_text(q, 0));
        cJSON_AddStringToObject(o, "state", (const char *)sqlite3_column_text(q, 1));
        cJSON_AddStringToObject(o, "kind", sqlite3_column_int(q, 2) ? "drill" : "fire");
        cJSON_AddStringToObject(o, "origin", (const char *)sqlite3_column_text(q, 3));
        cJSON_AddStringToObject(o, "event", event);
        cJSON_AddStringToObject(o, "who", who ? who : "");
        cJSON_AddNumberToObject(o, "ts", (double)wall_ms());
        char *text = cJSON_PrintUnformatted(o);
        if (text)
            stream_publish(fx->stream, "incident", text);
        free(text);
        cJSON_Delete(o);
    }
    sqlite3_finalize(q);
}

static void timeline(struct fixture *fx, uint32_t id, const char *what, const char *who, const char *node,
                     const char *detail)
{
    char sql[160];
    snprintf(sql, sizeof sql,
             "INSERT INTO timeline(incident_id, ts_ms, what, who, node_id, detail) VALUES (%u, %lld, ?1, ?2, "
             "?3, ?4)",
             id, (long long)wall_ms());
    exec_bind(fx, sql, what, who, node, detail);
}

static int hook_action(void *ctx, enum http_incident_op op, uint32_t id, const char *zone, const char *user,
                       uint32_t *new_id, char *msg, size_t msg_size)
{
    struct fixture *fx = ctx;
    __atomic_add_fetch(&fx->entered, 1, __ATOMIC_SEQ_CST);
    if (fx->hook_delay_ms > 0) {
        /* The daemon's main loop busy elsewhere: the hook waits, as the real
         * one does for its answer. */
        struct timespec ts = {fx->hook_delay_ms / 1000, (long)(fx->hook_delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&fx->mu);
    fx->calls++;
    fx->last_op = op;
    fx->last_id = id;
    snprintf(fx->last_user, sizeof fx->last_user, "%s", user ? user : "");
    snprintf(fx->last_zone, sizeof fx->last_zone, "%s", zone ? zone : "");
    int rc = 0;
    if (fx->regional) {
        /* A regional hub's daemon has no incident engine: it refuses. */
        rc = -EROFS;
        goto out;
    }
    if (fx->force_rc) {
        rc = fx->force_rc;
        if (rc == -EBUSY)
            snprintf(msg, msg_size, "sensors of this incident are still in alarm");
        goto out;
    }
    char sql[256];
    int64_t now = wall_ms();
    if (op == HTTP_INCIDENT_DRILL) {
        snprintf(sql, sizeof sql, "SELECT count(*) FROM zones WHERE id = '%s'", zone);
        sqlite3_stmt *q;
        int exists = 0, open = 0;
        if (sqlite3_prepare_v2(fx->db, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
            exists = sqlite3_column_int(q, 0);
        sqlite3_finalize(q);
        snprintf(
            sql, sizeof sql,
            "SELECT count(*) FROM incidents WHERE zone_id = '%s' AND drill = 1 AND state NOT IN ('cleared', "
            "'dismissed')",
            zone);
        if (sqlite3_prepare_v2(fx->db, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
            open = sqlite3_column_int(q, 0);
        sqlite3_finalize(q);
        if (!exists) {
            rc = -ENOENT;
            goto out;
        }
        if (open) {
            rc = -EALREADY;
            snprintf(msg, msg_size, "a drill is already running in this zone");
            goto out;
        }
        uint32_t nid;
        snprintf(
            sql, sizeof sql,
            "INSERT INTO incidents(zone_id, origin_node, state, drill, opened_ms, escalated_ms, opened_by) "
            "VALUES ('%s', '', 'alarm', 1, %lld, %lld, ?1)",
            zone, (long long)now, (long long)now);
        exec_bind(fx, sql, user, NULL, NULL, NULL);
        nid = (uint32_t)sqlite3_last_insert_rowid(fx->db);
        timeline(fx, nid, "drill_started", user, "", "Drill started");
        if (new_id)
            *new_id = nid;
        publish_incident(fx, nid, "drill", user);
        goto out;
    }
    snprintf(sql, sizeof sql, "SELECT state FROM incidents WHERE id = %u", id);
    sqlite3_stmt *q;
    char state[32] = "";
    if (sqlite3_prepare_v2(fx->db, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
        snprintf(state, sizeof state, "%s", (const char *)sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    if (!state[0] || strcmp(state, "cleared") == 0 || strcmp(state, "dismissed") == 0) {
        rc = -ENOENT;
    } else if (op == HTTP_INCIDENT_ACK) {
        if (strcmp(state, "acknowledged") == 0) {
            rc = -EALREADY;
            snprintf(msg, msg_size, "already acknowledged");
        } else if (strcmp(state, "alarm") != 0) {
            rc = -EPERM;
        } else {
            snprintf(
                sql, sizeof sql,
                "UPDATE incidents SET state = 'acknowledged', acked_ms = %lld, acked_by = ?1 WHERE id = %u",
                (long long)now, id);
            exec_bind(fx, sql, user, NULL, NULL, NULL);
            timeline(fx, id, "acknowledged", user, "", "Acknowledged");
            publish_incident(fx, id, "acknowledged", user);
        }
    } else {
        if (strcmp(state, "acknowledged") != 0) {
            rc = -EPERM;
            snprintf(msg, msg_size, "acknowledge it before clearing");
        } else {
            snprintf(
                sql, sizeof sql,
                "UPDATE incidents SET state = 'cleared', cleared_ms = %lld, cleared_by = ?1 WHERE id = %u",
                (long long)now, id);
            exec_bind(fx, sql, user, NULL, NULL, NULL);
            timeline(fx, id, "cleared", user, "", "Cleared");
            publish_incident(fx, id, "cleared", user);
        }
    }
out:
    pthread_mutex_unlock(&fx->mu);
    return rc;
}

static int hook_metrics(void *ctx, char *buf, size_t size)
{
    (void)ctx;
    int n = snprintf(buf, size,
                     "# HELP firewatch_messages_in_total MQTT messages received.\n"
                     "# TYPE firewatch_messages_in_total counter\nfirewatch_messages_in_total 42\n");
    return n < 0 || (size_t)n >= size ? -ENOSPC : n;
}

struct http_hooks fx_hooks(struct fixture *fx)
{
    struct http_hooks h = {.ctx = fx, .incident_action = hook_action, .metrics = hook_metrics};
    return h;
}

uint32_t fx_escalate(struct fixture *fx, const char *zone, const char *node)
{
    pthread_mutex_lock(&fx->mu);
    int64_t now = wall_ms();
    char sql[320];
    snprintf(
        sql, sizeof sql,
        "INSERT INTO incidents(zone_id, origin_node, state, cause, drill, opened_ms, escalated_ms, nodes) "
        "VALUES (?1, ?2, 'alarm', 'heat_ror', 0, %lld, %lld, ?2)",
        (long long)(now - 20000), (long long)now);
    exec_bind(fx, sql, zone, node, NULL, NULL);
    uint32_t id = (uint32_t)sqlite3_last_insert_rowid(fx->db);
    timeline(fx, id, "opened", node, node, "Heat rising fast");
    timeline(fx, id, "escalated", "", "", "Verifying window elapsed: zone alarm sounded");
    publish_incident(fx, id, "escalated", "");
    pthread_mutex_unlock(&fx->mu);
    return id;
}

/* --- The regional fixture --------------------------------------------------- */

/* One zone of an area's readiness document. */
struct fx_zone_rd {
    const char *id, *site;
    int score, households, covered, nodes, healthy, offline;
    const char *reasons[3];
};

/* One area as a regional hub knows it. Times are minutes before now;
 * bridge -1 unknown (never heard), 0 down, 1 up. */
static const struct fx_area {
    const char *id, *name, *site, *url;
    int bridge;
    double bridge_min, seen_min, added_days, removed_days;
    int score, zones, households, nodes;
    struct fx_zone_rd z[2];
} areas[] = {
    {FX_AREA_ALARM,
     "Phường 7 · Quận 3",
     "p7-q3",
     "https://phuong7.example.vn/",
     1,
     130,
     0.3,
     40,
     0,
     81,
     2,
     20,
     21,
     {{"to-3",
       "p7-q3",
       72,
       9,
       8,
       9,
       7,
       2,
       {"1 of 9 households has no healthy detector", "2 of 9 detectors are offline"}},
      {"to-4",
       "p7-q3",
       88,
       11,
       11,
       12,
       11,
       0,
       {"1 of 12 detectors has no passed test in the last 30 days"}}}},
    {FX_AREA_STALE,
     "Xã An Phú",
     "an-phu",
     "https://anphu.example.vn/",
     0,
     45,
     FX_AREA_STALE_MIN,
     30,
     0,
     60,
     2,
     24,
     22,
     {{"ap-1",
       "an-phu",
       54,
       14,
       9,
       12,
       7,
       5,
       {"5 of 14 households have no healthy detector", "5 of 12 detectors are offline",
        "3 of 12 detectors have a low battery"}},
      {"ap-2",
       "an-phu",
       68,
       10,
       9,
       10,
       8,
       1,
       {"1 of 10 detectors is offline", "no incident or drill yet to measure response time: run a drill"}}}},
    {FX_AREA_OK,
     "Phường Hòa Bình · Tổ dân phố 5",
     FX_SITE,
     "https://hoabinh.example.vn/",
     1,
     300,
     0.25,
     60,
     0,
     96,
     2,
     14,
     13,
     {{"to-1", FX_SITE, 97, 8, 8, 7, 7, 0, {NULL}},
      {"to-2", FX_SITE, 94, 6, 6, 6, 5, 1, {"1 of 6 detectors has a low battery"}}}},
    {FX_AREA_REMOVED,
     "Cư xá cũ",
     "cu-xa",
     "",
     -1,
     0,
     900,
     90,
     20,
     40,
     2,
     8,
     5,
     {{"cx-1", "cu-xa", 40, 5, 2, 3, 2, 1, {"3 of 5 households have no healthy detector"}},
      {"cx-2", "cu-xa", 55, 3, 2, 2, 2, 0, {"1 of 3 households has no healthy detector"}}}},
};

/* One incident of an area, minutes before now (0: not reached). */
static const struct fx_area_incident {
    const char *area;
    uint32_t id;
    const char *zone, *zone_name, *state, *kind, *origin, *cause, *ack_by;
    double opened_min, alarm_min, ack_min, closed_min;
    bool cap;
} area_incidents[] = {
    {FX_AREA_ALARM, FX_AREA_ALARM_INCIDENT, "to-3", "Tổ 3 · Hẻm 45 Lý Chính Thắng", "alarm", "fire", "n-317",
     "smoke", "", 4, 3.6, 0, 0, true},
    {FX_AREA_ALARM, FX_AREA_DRILL_INCIDENT, "to-4", "Tổ 4 · Hẻm 51 Lý Chính Thắng", "acknowledged", "drill",
     "", "", "lan.watch", 10, 10, 9, 0, false},
    {FX_AREA_ALARM, 9, "to-4", "Tổ 4 · Hẻm 51 Lý Chính Thắng", "dismissed", "fire", "n-402", "heat_ror", "",
     6 * 1440, 0, 0, 6 * 1440 - 0.5, false},
    {FX_AREA_OK, FX_AREA_CLEARED_INCIDENT, "to-2", "Tổ liên gia 2 · Hẻm 14", "cleared", "fire", "n-202",
     "smoke", "binh.watch", 3 * 1440, 3 * 1440 - 0.3, 3 * 1440 - 1.5, 3 * 1440 - 30, true},
    {FX_AREA_STALE, 4, "ap-1", "Ấp 1 · Kênh Xáng", "dismissed", "fire", "n-115", "heat_ror", "", 2 * 1440, 0,
     0, 2 * 1440 - 1, false},
};

static int64_t ago(int64_t now, double min)
{
    return min > 0 ? now - (int64_t)(min * (double)MIN_MS) : 0;
}

static const char *level_of(int score)
{
    return score >= 90 ? "ready" : score >= 70 ? "attention" : "not_ready";
}

/* The hub document an area's hub publishes (fedpub.c), as JSON text. */
static char *hub_doc(const struct fx_area *a, int64_t ts)
{
    cJSON *d = cJSON_CreateObject();
    cJSON_AddNumberToObject(d, "v", 1);
    cJSON_AddStringToObject(d, "hub", a->id);
    cJSON_AddNumberToObject(d, "ts", (double)ts);
    cJSON_AddStringToObject(d, "name", a->name);
    cJSON_AddStringToObject(d, "public_url", a->url);
    cJSON_AddStringToObject(d, "version", "1.4.0");
    cJSON *open = cJSON_AddArrayToObject(d, "open");
    for (size_t i = 0; i < sizeof area_incidents / sizeof area_incidents[0]; i++)
        if (strcmp(area_incidents[i].area, a->id) == 0 && area_incidents[i].closed_min == 0)
            cJSON_AddItemToArray(open, cJSON_CreateNumber(area_incidents[i].id));
    cJSON_AddNumberToObject(d, "zones", a->zones);
    cJSON_AddNumberToObject(d, "households", a->households);
    cJSON_AddNumberToObject(d, "nodes", a->nodes);
    cJSON_AddNumberToObject(d, "score", a->score);
    cJSON_AddNumberToObject(d, "heartbeat_s", 60);
    char *s = cJSON_PrintUnformatted(d);
    cJSON_Delete(d);
    return s;
}

/* The readiness document (fedpub.c), as JSON text. */
static char *readiness_doc(const struct fx_area *a, int64_t ts)
{
    cJSON *d = cJSON_CreateObject();
    cJSON_AddNumberToObject(d, "v", 1);
    cJSON_AddStringToObject(d, "hub", a->id);
    cJSON_AddNumberToObject(d, "ts", (double)ts);
    cJSON_AddNumberToObject(d, "score", a->score);
    cJSON_AddStringToObject(d, "level", level_of(a->score));
    cJSON_AddNumberToObject(d, "households", a->households);
    cJSON *zones = cJSON_AddArrayToObject(d, "zones");
    for (size_t i = 0; i < 2 && a->z[i].id; i++) {
        const struct fx_zone_rd *z = &a->z[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", z->id);
        cJSON_AddStringToObject(o, "site", z->site);
        cJSON_AddNumberToObject(o, "score", z->score);
        cJSON_AddStringToObject(o, "level", level_of(z->score));
        cJSON_AddNumberToObject(o, "households", z->households);
        cJSON_AddNumberToObject(o, "covered", z->covered);
        cJSON_AddNumberToObject(o, "nodes", z->nodes);
        cJSON_AddNumberToObject(o, "healthy", z->healthy);
        cJSON_AddNumberToObject(o, "offline", z->offline);
        cJSON *reasons = cJSON_AddArrayToObject(o, "reasons");
        for (size_t k = 0; k < 3 && z->reasons[k]; k++)
            cJSON_AddItemToArray(reasons, cJSON_CreateString(z->reasons[k]));
        cJSON_AddItemToArray(zones, o);
    }
    char *s = cJSON_PrintUnformatted(d);
    cJSON_Delete(d);
    return s;
}

/* The CAP alert of an incident, written by the real encoder (cap.c) as the
 * area's hub would have (its hub_id is the area), into a malloc'd string. */
static char *area_cap(const struct fx_area *a, const struct fx_area_incident *inc, int64_t now)
{
    static const struct cap_point pts[] = {{10.7841, 106.6857}, {10.7846, 106.6861}, {10.7843, 106.6868}};
    char sender[96], sender_name[160];
    snprintf(sender, sizeof sender, "firewatch@%s.example.vn", a->id);
    snprintf(sender_name, sizeof sender_name, "%s Firewatch", a->name);
    struct cap_hub hub = {.hub_id = a->id, .sender = sender, .sender_name = sender_name, .web_base = a->url};
    enum incident_state st = strcmp(inc->state, "alarm") == 0          ? INCIDENT_ALARM
                             : strcmp(inc->state, "acknowledged") == 0 ? INCIDENT_ACKNOWLEDGED
                             : strcmp(inc->state, "cleared") == 0      ? INCIDENT_CLEARED
                             : strcmp(inc->state, "dismissed") == 0    ? INCIDENT_DISMISSED
                                                                       : INCIDENT_VERIFYING;
    struct cap_incident c = {
        .id = inc->id,
        .kind = strcmp(inc->kind, "drill") == 0 ? INCIDENT_DRILL : INCIDENT_FIRE,
        .state = st,
        .zone = inc->zone,
        .zone_name = inc->zone_name,
        .site_name = a->name,
        .origin = inc->origin,
        .cause = strcmp(inc->cause, "smoke") == 0      ? FW_CAUSE_SMOKE
                 : strcmp(inc->cause, "heat_ror") == 0 ? FW_CAUSE_HEAT_ROR
                                                       : FW_CAUSE_NONE,
        .ack_by = inc->ack_by,
        .closed_by = inc->ack_by,
        .opened_ms = ago(now, inc->opened_min),
        .alarm_ms = ago(now, inc->alarm_min),
        .ack_ms = ago(now, inc->ack_min),
        .closed_ms = ago(now, inc->closed_min),
        .points = pts,
        .n_points = sizeof pts / sizeof pts[0],
    };
    return cap_alert_new(&hub, &c, NULL);
}

int fx_regional(struct fixture *fx)
{
    int64_t now = wall_ms();
    int rc = 0;
    sqlite3_stmt *q = NULL;
    pthread_mutex_lock(&fx->mu);
    rc |= fx_sql(fx, "BEGIN");
    rc |=
        sqlite3_prepare_v2(
            fx->db,
            "INSERT INTO areas(id, name, added_ms, removed_ms, bridge_online, bridge_ms, "
            "last_seen_ms, hub_doc, hub_ms, readiness_doc, readiness_ms, readiness_summary) VALUES (?1, ?2, "
            "?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?9, ?11)",
            -1, &q, NULL) != SQLITE_OK;
    for (size_t i = 0; i < sizeof areas / sizeof areas[0] && q; i++) {
        const struct fx_area *a = &areas[i];
        int64_t seen = ago(now, a->seen_min);
        char *hub = hub_doc(a, seen), *rd = readiness_doc(a, seen);
        /* The regional operator names areas with firewatchctl area add
         * --name; one is left unnamed so the hub document's name shows. */
        sqlite3_bind_text(q, 1, a->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, strcmp(a->id, FX_AREA_OK) == 0 ? "" : a->name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 3, ago(now, a->added_days * 1440));
        sqlite3_bind_int64(q, 4, ago(now, a->removed_days * 1440));
        if (a->bridge < 0)
            sqlite3_bind_null(q, 5);
        else
            sqlite3_bind_int(q, 5, a->bridge);
        sqlite3_bind_int64(q, 6, ago(now, a->bridge_min));
        sqlite3_bind_int64(q, 7, seen);
        sqlite3_bind_text(q, 8, hub, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(q, 9, seen);
        sqlite3_bind_text(q, 10, rd, -1, SQLITE_TRANSIENT);
        /* As the receiver stores it (hub/region.c). */
        char *sum = rd ? fed_readiness_summary(rd, strlen(rd), FED_WORST_ZONES) : NULL;
        sqlite3_bind_text(q, 11, sum, -1, SQLITE_TRANSIENT);
        rc |= sqlite3_step(q) != SQLITE_DONE;
        free(sum);
        sqlite3_reset(q);
        cJSON_free(hub);
        cJSON_free(rd);
    }
    sqlite3_finalize(q);
    q = NULL;
    rc |= sqlite3_prepare_v2(
              fx->db,
              "INSERT INTO area_incidents(area, id, zone, zone_name, site_name, state, kind, "
              "origin, cause, opened_ms, alarm_ms, ack_ms, ack_by, closed_ms, updated_ms) VALUES "
              "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, max(?10, ?11, ?12, "
              "?14))",
              -1, &q, NULL) != SQLITE_OK;
    for (size_t i = 0; i < sizeof area_incidents / sizeof area_incidents[0] && q; i++) {
        const struct fx_area_incident *inc = &area_incidents[i];
        const struct fx_area *a = &areas[0];
        for (size_t k = 0; k < sizeof areas / sizeof areas[0]; k++)
            if (strcmp(areas[k].id, inc->area) == 0)
                a = &areas[k];
        sqlite3_bind_text(q, 1, inc->area, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, inc->id);
        sqlite3_bind_text(q, 3, inc->zone, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 4, inc->zone_name, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 5, a->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 6, inc->state, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 7, inc->kind, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 8, inc->origin, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 9, inc->cause, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 10, ago(now, inc->opened_min));
        sqlite3_bind_int64(q, 11, ago(now, inc->alarm_min));
        sqlite3_bind_int64(q, 12, ago(now, inc->ack_min));
        sqlite3_bind_text(q, 13, inc->ack_by, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 14, ago(now, inc->closed_min));
        rc |= sqlite3_step(q) != SQLITE_DONE;
        sqlite3_reset(q);
        if (!inc->cap)
            continue;
        char *xml = area_cap(a, inc, now);
        char sql[160];
        snprintf(sql, sizeof sql,
                 "INSERT INTO area_alerts(area, id, xml, updated_ms) VALUES (?1, %u, ?2, %lld)", inc->id,
                 (long long)now);
        rc |= !xml || exec_bind(fx, sql, inc->area, xml, NULL, NULL) < 0;
        free(xml);
    }
    sqlite3_finalize(q);
    rc |= fx_sql(fx, "COMMIT");
    if (rc)
        fx_sql(fx, "ROLLBACK");
    pthread_mutex_unlock(&fx->mu);
    return rc ? -EIO : 0;
}

uint32_t fx_area_escalate(struct fixture *fx, const char *area, const char *zone)
{
    pthread_mutex_lock(&fx->mu);
    int64_t now = wall_ms();
    char sql[512];
    uint32_t id = 0;
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(fx->db, "SELECT COALESCE(max(id), 0) + 1 FROM area_incidents WHERE area = ?1", -1,
                           &q, NULL) == SQLITE_OK) {
        sqlite3_bind_text(q, 1, area, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(q) == SQLITE_ROW)
            id = (uint32_t)sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
    }
    /* The incident, then the area's hub document listing it open: what the
     * receiver writes from the two messages. */
    snprintf(
        sql, sizeof sql,
        "INSERT INTO area_incidents(area, id, zone, zone_name, site_name, state, kind, origin, cause, "
        "opened_ms, alarm_ms, updated_ms) SELECT ?1, %u, ?2, '', COALESCE(NULLIF(name, ''), ?1), 'alarm', "
        "'fire', '', 'heat_ror', %lld, %lld, %lld FROM areas WHERE id = ?1",
        id, (long long)(now - 20000), (long long)now, (long long)now);
    if (id == 0 || exec_bind(fx, sql, area, zone, NULL, NULL) < 0 || sqlite3_changes(fx->db) != 1) {
        pthread_mutex_unlock(&fx->mu);
        return 0;
    }
    snprintf(sql, sizeof sql,
             "UPDATE areas SET hub_doc = json_set(hub_doc, '$.open[#]', %u, '$.ts', %lld), hub_ms = %lld, "
             "last_seen_ms = %lld WHERE id = ?1",
             id, (long long)now, (long long)now, (long long)now);
    exec_bind(fx, sql, area, NULL, NULL, NULL);
    pthread_mutex_unlock(&fx->mu);
    return id;
}
