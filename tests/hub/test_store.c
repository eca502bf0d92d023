/*
 * test_store.c - the hub's SQLite store on real files: schema and
 * migrations, refusal of damaged or newer databases, topology rules,
 * event de-duplication, readings retention with rollups, incidents,
 * troubles, commands, users and online backup. Table-driven where the
 * cases are rows.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "readyscan.h"
#include "store.h"

static char dir[256], dbpath[320];

static struct store *fresh(void)
{
    snprintf(dir, sizeof dir, "%s", th_tmpdir("store"));
    snprintf(dbpath, sizeof dbpath, "%s/hub.db", dir);
    char why[256];
    struct store *s = store_open(dbpath, STORE_CREATE | STORE_QUICK_CHECK, why, sizeof why);
    if (!s)
        th_fail(__FILE__, __LINE__, "open: %s", why);
    return s;
}

static void done(struct store *s)
{
    store_close(s);
    th_rmtree(dir);
}

static long long q1(struct store *s, const char *sql)
{
    sqlite3_stmt *q;
    long long v = -1;
    if (sqlite3_prepare_v2(store_handle(s), sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
        v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return v;
}

static void seed(struct store *s)
{
    CHECK_INT(store_site_add(s, "s1", "Ward 1"), 0);
    CHECK_INT(store_zone_add(s, "z1", "s1", "", NULL), 0);
    struct store_household h = {.id = "h1", .zone = "z1"};
    CHECK_INT(store_household_add(s, &h), 0);
    CHECK_INT(store_node_add(s, "n1", "h1", FW_KIND_COMBO, "kitchen", 1000), 0);
}

static void test_schema_and_pragmas(void)
{
    struct store *s = fresh();
    if (!s)
        return;
    CHECK_INT(q1(s, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    CHECK_INT(q1(s, "PRAGMA foreign_keys"), 1);
    sqlite3_stmt *q;
    sqlite3_prepare_v2(store_handle(s), "PRAGMA journal_mode", -1, &q, NULL);
    CHECK(sqlite3_step(q) == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(q, 0), "wal") == 0);
    sqlite3_finalize(q);
    store_close(s);
    /* Re-opening runs no migration twice. */
    s = store_open(dbpath, STORE_QUICK_CHECK, NULL, 0);
    CHECK(s != NULL);
    done(s);
}

static void test_open_refusals(void)
{
    char why[256];
    snprintf(dir, sizeof dir, "%s", th_tmpdir("store"));
    snprintf(dbpath, sizeof dbpath, "%s/missing.db", dir);
    errno = 0;
    CHECK(store_open(dbpath, 0, why, sizeof why) == NULL);
    CHECK_INT(errno, ENOENT);
    th_report(strstr(why, dbpath) != NULL, "missing: %s", why);

    snprintf(dbpath, sizeof dbpath, "%s/garbage.db", dir);
    FILE *f = fopen(dbpath, "w");
    for (int i = 0; i < 64; i++)
        fputs("this is not an sqlite database at all. ", f);
    fclose(f);
    errno = 0;
    CHECK(store_open(dbpath, STORE_QUICK_CHECK, why, sizeof why) == NULL);
    CHECK_INT(errno, EILSEQ);
    th_report(strstr(why, dbpath) != NULL, "garbage: %s", why);

    snprintf(dbpath, sizeof dbpath, "%s/newer.db", dir);
    sqlite3 *db;
    sqlite3_open(dbpath, &db);
    sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL);
    sqlite3_close(db);
    errno = 0;
    CHECK(store_open(dbpath, STORE_QUICK_CHECK, why, sizeof why) == NULL);
    CHECK_INT(errno, EPROTO);
    th_report(strstr(why, "newer") != NULL, "newer: %s", why);
    th_rmtree(dir);
}

static void test_topology_rules(void)
{
    struct store *s = fresh();
    if (!s)
        return;
    struct store_household h1 = {.id = "h1", .zone = "z1", .address = "1 Main"};
    struct store_household hbad = {.id = "h2", .zone = "nozone"};
    struct store_household hid = {.id = "Bad Id", .zone = "z1"};
    static const char *const names[] = {
        "site s1",          "site s1 again",    "site bad id",   "zone z1",           "zone z2 nbr z1",
        "zone no site",     "zone nbr missing", "zone self nbr", "household h1",      "household nozone",
        "household bad id", "node n1",          "node n1 again", "node no household", "site remove used",
        "zone remove used", "hh remove used",   "node remove",   "hh remove",         "node remove gone",
        "zone edit nbrs",   "zone edit missing"};
    int got[22];
    got[0] = store_site_add(s, "s1", "Ward");
    got[1] = store_site_add(s, "s1", "Ward");
    got[2] = store_site_add(s, "S 1", "");
    got[3] = store_zone_add(s, "z1", "s1", "Z", NULL);
    got[4] = store_zone_add(s, "z2", "s1", "", "z1");
    got[5] = store_zone_add(s, "z3", "nosite", "", NULL);
    got[6] = store_zone_add(s, "z4", "s1", "", "z1,zx");
    got[7] = store_zone_add(s, "z5", "s1", "", "z5");
    got[8] = store_household_add(s, &h1);
    got[9] = store_household_add(s, &hbad);
    got[10] = store_household_add(s, &hid);
    got[11] = store_node_add(s, "n1", "h1", FW_KIND_SMOKE, NULL, 1);
    got[12] = store_node_add(s, "n1", "h1", FW_KIND_SMOKE, NULL, 1);
    got[13] = store_node_add(s, "n2", "hx", FW_KIND_SMOKE, NULL, 1);
    got[14] = store_site_remove(s, "s1");
    got[15] = store_zone_remove(s, "z1");
    got[16] = store_household_remove(s, "h1");
    got[17] = store_node_remove(s, "n1");
    got[18] = store_household_remove(s, "h1");
    got[19] = store_node_remove(s, "n1");
    got[20] = store_zone_edit(s, "z1", NULL, "new", "z2");
    got[21] = store_zone_edit(s, "zz", NULL, "new", NULL);
    static const int want[22] = {
        0, -EEXIST, -EINVAL, 0,          0,          -ENOENT,    -ENOENT, -EINVAL, 0,       -ENOENT, -EINVAL,
        0, -EEXIST, -ENOENT, -ENOTEMPTY, -ENOTEMPTY, -ENOTEMPTY, 0,       0,       -ENOENT, 0,       -ENOENT};
    for (size_t i = 0; i < 22; i++)
        th_report(got[i] == want[i], "%s: got %d want %d", names[i], got[i], want[i]);
    CHECK_INT(q1(s, "SELECT count(*) FROM zones WHERE id IN ('z4','z5')"), 0); /* rolled back whole */
    CHECK_INT(q1(s, "SELECT count(*) FROM zone_neighbours WHERE zone_id='z1' AND neighbour_id='z2'"), 1);
    done(s);
}

static void test_change_counter(void)
{
    struct store *s = fresh();
    if (!s)
        return;
    int64_t a = 0, b = 0, c = 0;
    CHECK_INT(store_change_counter(s, &a), 0);
    seed(s);
    CHECK_INT(store_change_counter(s, &b), 0);
    CHECK(b > a);
    /* Runtime state written by the hub does not count as a change. */
    struct store_node n = {.id = "n1", .boot = 3, .online = true, .batt_pct = 80, .interval_s = 60};
    CHECK_INT(store_node_save(s, &n, "1.0.0"), 0);
    CHECK_INT(store_change_counter(s, &c), 0);
    CHECK_INT(c, b);
    done(s);
}

static void test_events_dedup(void)
{
    struct store *s = fresh();
    if (!s)
        return;
    seed(s);
    struct fw_event ev = {.seq = 4, .ts = 1, .type = FW_EV_ALARM, .cause = FW_CAUSE_SMOKE};
    static const struct {
        const char *node;
        uint32_t boot, seq;
        int want;
    } rows[] = {
        {"n1", 1, 4, 1}, {"n1", 1, 4, 0}, {"n1", 2, 4, 1}, {"n1", 1, 5, 1}, {"ghost", 1, 4, -ENOENT},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        ev.seq = rows[i].seq;
        int rc = store_event_write(s, rows[i].node, rows[i].boot, &ev, 100);
        th_report(rc == rows[i].want, "event %s/%u/%u: %d", rows[i].node, rows[i].boot, rows[i].seq, rc);
    }
    CHECK_INT(q1(s, "SELECT count(*) FROM events"), 3);
    uint32_t boot = 0;
    int64_t last = 0;
    CHECK_INT(store_node_raise_boot(s, "n1", 2), 0);
    CHECK_INT(store_node_raise_boot(s, "n1", 1), 0); /* never lowered */
    CHECK_INT(store_node_ingest_state(s, "n1", &boot, &last), 0);
    CHECK_INT(boot, 2);
    CHECK_INT(last, 4);
    CHECK_INT(store_node_ingest_state(s, "ghost", &boot, &last), -ENOENT);
    done(s);
}

static void test_readings_retention_rollups(void)
{
    struct store *s = fresh();
    if (!s)
        return;
    seed(s);
    const int64_t day = 86400000, now = 1000LL * day;
    struct store_reading r[6];
    memset(r, 0, sizeof r);
    for (int i = 0; i < 6; i++) {
        snprintf(r[i].node, sizeof r[i].node, "n1");
        r[i].r.seq = (uint32_t)i;
        r[i].r.temp_c = 20.0 + i;
        r[i].r.batt_pct = (uint8_t)(90 - i);
        /* Three 20 days old in one 5-minute bucket, three from today. */
        r[i].rx_ms = i < 3 ? now - 20 * day + i * 1000 : now - 1000 + i;
    }
    CHECK_INT(store_readings_write(s, r, 6), 6);
    CHECK_INT(store_retention(s, now, 14), 3);
    CHECK_INT(q1(s, "SELECT count(*) FROM readings"), 3);
    CHECK_INT(q1(s, "SELECT n FROM rollups WHERE period_s = 300"), 3);
    CHECK_INT(q1(s, "SELECT temp_min * 10 FROM rollups WHERE period_s = 300"), 200);
    CHECK_INT(q1(s, "SELECT temp_max * 10 FROM rollups WHERE period_s = 3600"), 220);
    CHECK_INT(q1(s, "SELECT temp_mean * 10 FROM rollups WHERE period_s = 3600"), 210);
    CHECK_INT(q1(s, "SELECT batt_min FROM rollups WHERE period_s = 300"), 88);
    /* Rollups older than two years go too. */
    CHECK_INT(store_retention(s, now + 800 * day, 14), 3);
    CHECK_INT(q1(s, "SELECT count(*) FROM rollups"), 0);
    done(s);
}

static void test_incidents_roundtrip(void)
{
    struct store *s = fresh();
    if (!s)
        return;
    struct store_incident inc = {.id = 7,
                                 .zone = "z1",
                                 .origin = "n1",
                                 .state = "alarm",
                                 .cause = "smoke",
                                 .opened_ms = 10,
                                 .escalated_ms = 20,
                                 .nodes = "n1,!n2",
                                 .sounded = "z1,z2"};
    CHECK_INT(store_incident_save(s, &inc), 0);
    CHECK_INT(store_timeline_add(s, 7, 10, "opened", "n1", "n1", "alarm"), 0);
    struct store_incident got;
    CHECK_INT(store_incident_get(s, 7, &got), 0);
    CHECK_STR(got.state, "alarm");
    CHECK_STR(got.nodes, "n1,!n2");
    CHECK_STR(got.sounded, "z1,z2");
    CHECK_INT(got.escalated_ms, 20);
    uint32_t max = 0;
    CHECK_INT(store_incident_max_id(s, &max), 0);
    CHECK_INT(max, 7);
    CHECK_INT(store_incident_close(s, 7, "cleared", 30, "alice"), 0);
    CHECK_INT(store_incident_get(s, 7, &got), 0);
    CHECK_STR(got.cleared_by, "alice");
    CHECK_INT(store_incident_get(s, 8, &got), -ENOENT);
    done(s);
}

static void test_troubles_latch(void)
{
    struct store *s = fresh();
    if (!s)
        return;
    CHECK(store_trouble_open(s, "n1", "offline", 1, "will") > 0);
    CHECK_INT(store_trouble_open(s, "n1", "offline", 2, "again"), 0);
    CHECK(store_trouble_open(s, "n1", "low_battery", 2, "") > 0);
    CHECK_INT(store_trouble_clear(s, "n1", "offline", 3), 1);
    CHECK_INT(store_trouble_clear(s, "n1", "offline", 4), 0);
    CHECK(store_trouble_open(s, "n1", "offline", 5, "") > 0); /* a new record once resolved */
    CHECK_INT(q1(s, "SELECT count(*) FROM troubles WHERE kind='offline'"), 2);
    done(s);
}

static void test_commands_and_users(void)
{
    struct store *s = fresh();
    if (!s)
        return;
    int64_t id = store_command_add(s, "ack", 3, NULL, "bob", 1);
    CHECK(id > 0);
    struct store_command c;
    CHECK_INT(store_command_next(s, 0, &c), 1);
    CHECK_STR(c.action, "ack");
    CHECK_INT(c.incident, 3);
    CHECK_INT(store_command_next(s, id, &c), 0);
    char result[64];
    CHECK_INT(store_command_result(s, id, result, sizeof result), 0);
    CHECK_INT(store_command_done(s, id, "ok", 2), 0);
    CHECK_INT(store_command_result(s, id, result, sizeof result), 1);
    CHECK_STR(result, "ok");

    static const struct {
        const char *name, *role;
        int want;
    } rows[] = {{"alice", "admin", 0},
                {"alice", "watch", -EEXIST},
                {"bob", "boss", -EINVAL},
                {"", "watch", -EINVAL},
                {"x y", "watch", -EINVAL}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        th_report(store_user_add(s, rows[i].name, rows[i].role, "$argon2id$x", 1) == rows[i].want,
                  "user '%s' %s", rows[i].name, rows[i].role);
    CHECK_INT(store_user_set_role(s, "alice", "technician"), 0);
    CHECK_INT(store_user_set_role(s, "alice", "god"), -EINVAL);
    CHECK_INT(store_user_set_role(s, "nobody", "watch"), -ENOENT);
    CHECK_INT(store_user_set_password(s, "alice", "$argon2id$y"), 0);
    char hash[64];
    CHECK_INT(store_user_hash(s, "alice", hash, sizeof hash), 0);
    CHECK_STR(hash, "$argon2id$y");
    CHECK_INT(store_user_remove(s, "alice"), 0);
    CHECK_INT(store_user_remove(s, "alice"), -ENOENT);
    CHECK_INT(store_audit(s, "root", "user remove", "alice", 5), 0);
    done(s);
}

static void test_backup(void)
{
    struct store *s = fresh();
    if (!s)
        return;
    seed(s);
    char copy[400];
    snprintf(copy, sizeof copy, "%s/backup.db", dir);
    CHECK_INT(store_backup(s, copy), 0);
    CHECK_INT(store_backup(s, copy), -EEXIST);
    char why[256];
    struct store *b = store_open(copy, STORE_QUICK_CHECK, why, sizeof why);
    CHECK(b != NULL);
    if (b) {
        CHECK_INT(q1(b, "SELECT count(*) FROM nodes WHERE id='n1'"), 1);
        store_close(b);
    }
    done(s);
}

static void test_readiness_from_database(void)
{
    struct store *s = fresh();
    if (!s)
        return;
    seed(s); /* z1 with household h1 and node n1 */
    struct store_household h2 = {.id = "h2", .zone = "z1"};
    CHECK_INT(store_household_add(s, &h2), 0);
    CHECK_INT(store_zone_add(s, "z2", "s1", "", NULL), 0);
    const int64_t now = 1800000000000;
    struct store_node n = {.id = "n1",
                           .boot = 1,
                           .online = true,
                           .batt_pct = 80,
                           .interval_s = 60,
                           .last_test_ms = now - 1000,
                           .commissioned_ms = now - 5000};
    CHECK_INT(store_node_save(s, &n, "1.0"), 0);
    struct readyscan_zone *zs = NULL;
    int got = readyscan_zones(s, NULL, now, &zs);
    CHECK_INT(got, 2);
    if (got == 2) {
        CHECK_STR(zs[0].id, "z1");
        CHECK_INT(zs[0].r.households, 2);
        CHECK_INT(zs[0].r.covered, 1);
        CHECK_INT(zs[0].r.healthy, 1);
        CHECK(zs[0].r.score < 90);
        CHECK(zs[0].r.n_reasons > 0);
        CHECK_INT(zs[1].r.households, 0);
    }
    free(zs);
    CHECK_INT(readyscan_zones(s, "z2", now, &zs), 1);
    free(zs);
    CHECK_INT(readyscan_snapshot(s, now), 2);
    CHECK_INT(q1(s, "SELECT count(*) FROM readiness WHERE ts_ms = 1800000000000"), 2);
    CHECK_INT(q1(s, "SELECT length(reasons) > 0 FROM readiness WHERE zone_id = 'z1'"), 1);
    done(s);
}

TH_MAIN(TH_TEST(test_schema_and_pragmas), TH_TEST(test_open_refusals), TH_TEST(test_topology_rules),
        TH_TEST(test_change_counter), TH_TEST(test_events_dedup), TH_TEST(test_readings_retention_rollups),
        TH_TEST(test_incidents_roundtrip), TH_TEST(test_troubles_latch), TH_TEST(test_commands_and_users),
        TH_TEST(test_backup), TH_TEST(test_readiness_from_database))
