/*
 * bench_fed.c - the regional receiver (hub/region.c) under a city's worth
 * of areas, beside a baseline taken in the same run.
 *
 * It registers A areas in a fresh regional database and hands the receiver,
 * message by message as the MQTT callback would, what each area publishes
 * when a regional hub first subscribes: its hub document, its readiness
 * document with Z zones (and their reasons), an open fire incident in alarm
 * and a closed one, each with its CAP alert (written by the real hub/cap.c).
 * The baseline writes the same topics and payloads, one transaction each,
 * into a plain two-column table of a second database opened the same way:
 * the cheapest durable write of the same bytes. The database it leaves is
 * the one `make bench` then serves with a regional firewatch-hub to time
 * the regional API (bench-http -m region).
 *
 * usage: bench-fed -d REGION_DB -a AREAS -z ZONES [-o OUT.json]
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cap.h"
#include "fed.h"
#include "region.h"
#include "store.h"

struct msg {
    char topic[FED_TOPIC_MAX];
    char *payload;
    size_t len;
};

struct msgs {
    struct msg *m;
    size_t n, cap;
};

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int add(struct msgs *ms, const char *area, enum fed_kind kind, uint32_t id, char *payload, size_t len)
{
    if (!payload)
        return -ENOMEM;
    if (ms->n == ms->cap) {
        size_t cap = ms->cap ? ms->cap * 2 : 1024;
        struct msg *p = realloc(ms->m, cap * sizeof *p);
        if (!p)
            return -ENOMEM;
        ms->m = p;
        ms->cap = cap;
    }
    struct msg *m = &ms->m[ms->n++];
    fed_topic(m->topic, sizeof m->topic, area, kind, id);
    m->payload = payload;
    m->len = len;
    return 0;
}

static char *printf_new(size_t *len, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *printf_new(size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    *len = (size_t)n;
    return s;
}

/* What area a publishes, as fedpub.c would. */
static int area_msgs(struct msgs *ms, int a, int zones, int64_t now)
{
    char area[FW_ID_MAX + 1];
    snprintf(area, sizeof area, "area-%04d", a);
    size_t len;
    /* Readiness: zones with scores and reasons, as the publisher sends them. */
    size_t cap = 256 + (size_t)zones * 420, used = 0;
    char *rd = malloc(cap);
    if (!rd)
        return -ENOMEM;
    used += (size_t)snprintf(rd + used, cap - used,
                             "{\"v\":1,\"hub\":\"%s\",\"ts\":%lld,\"score\":%d,\"level\":\"attention\","
                             "\"households\":%d,\"zones\":[",
                             area, (long long)now, 70 + a % 30, zones * 12);
    for (int z = 0; z < zones && used < cap; z++)
        used += (size_t)snprintf(
            rd + used, cap - used,
            "%s{\"id\":\"z%d\",\"site\":\"s1\",\"score\":%d,\"level\":\"attention\",\"households\":12,"
            "\"covered\":11,\"nodes\":14,\"healthy\":12,\"offline\":1,\"reasons\":[\"1 of 12 households have "
            "no "
            "healthy detector\",\"1 of 14 detectors offline\",\"2 of 14 detectors not tested in the last 30 "
            "days\"]}",
            z ? "," : "", z, 60 + (a + z) % 40);
    used += (size_t)snprintf(rd + used, cap - used, "]}");
    if (used >= cap || used > FED_PAYLOAD_MAX) {
        free(rd);
        fprintf(stderr, "bench-fed: %d zones make a readiness document over %d bytes\n", zones,
                FED_PAYLOAD_MAX);
        return -E2BIG;
    }
    int rc = add(ms, area, FED_READINESS, 0, rd, used);
    char *doc = printf_new(&len,
                           "{\"v\":1,\"hub\":\"%s\",\"ts\":%lld,\"name\":\"Area %d\",\"public_url\":\"\","
                           "\"version\":\"0.1.0\",\"open\":[2],\"zones\":%d,\"households\":%d,\"nodes\":%d,"
                           "\"score\":%d,\"heartbeat_s\":60}",
                           area, (long long)now, a, zones, zones * 12, zones * 14, 70 + a % 30);
    if (rc == 0)
        rc = add(ms, area, FED_HUB, 0, doc, len); /* len is set once doc is made */
    for (uint32_t id = 1; rc == 0 && id <= 2; id++) {
        bool closed = id == 1;
        struct fed_incident f = {.id = id, .opened_ms = now - 600000, .alarm_ms = now - 590000};
        snprintf(f.zone, sizeof f.zone, "z%u", id);
        snprintf(f.zone_name, sizeof f.zone_name, "Alley %u", id);
        snprintf(f.site_name, sizeof f.site_name, "Area %d", a);
        snprintf(f.state, sizeof f.state, "%s", closed ? "cleared" : "alarm");
        snprintf(f.kind, sizeof f.kind, "fire");
        snprintf(f.origin, sizeof f.origin, "n%u", id);
        snprintf(f.cause, sizeof f.cause, "heat_fixed");
        if (closed) {
            f.ack_ms = now - 580000;
            f.closed_ms = now - 300000;
            snprintf(f.ack_by, sizeof f.ack_by, "lan");
        }
        doc = fed_incident_encode(area, &f, now, &len);
        if (rc == 0)
            rc = add(ms, area, FED_INCIDENT, id, doc, len);
        struct cap_point pts[12];
        for (int p = 0; p < 12; p++)
            pts[p] = (struct cap_point){10.77 + 0.0003 * p, 106.70 + 0.0002 * ((p * 7) % 12)};
        struct cap_hub hub = {.hub_id = area, .sender_name = "Bench area"};
        struct cap_incident ci = {.id = id,
                                  .kind = INCIDENT_FIRE,
                                  .state = closed ? INCIDENT_CLEARED : INCIDENT_ALARM,
                                  .zone = f.zone,
                                  .zone_name = f.zone_name,
                                  .site_name = f.site_name,
                                  .origin = f.origin,
                                  .address = "12/7 Le Loi",
                                  .cause = FW_CAUSE_HEAT_FIXED,
                                  .ack_by = f.ack_by,
                                  .closed_by = "lan",
                                  .opened_ms = f.opened_ms,
                                  .alarm_ms = f.alarm_ms,
                                  .ack_ms = f.ack_ms,
                                  .closed_ms = f.closed_ms,
                                  .points = pts,
                                  .n_points = 12};
        doc = cap_alert_new(&hub, &ci, &len);
        if (rc == 0)
            rc = add(ms, area, FED_CAP, id, doc, len);
    }
    return rc;
}

static long long file_kb(const char *path)
{
    struct stat st;
    char wal[600];
    long long kb = stat(path, &st) == 0 ? (long long)st.st_size / 1024 : 0;
    snprintf(wal, sizeof wal, "%s-wal", path);
    if (stat(wal, &st) == 0)
        kb += (long long)st.st_size / 1024;
    return kb;
}

int main(int argc, char **argv)
{
    const char *db_path = NULL, *out = NULL;
    int areas = 1000, zones = 20, c;
    while ((c = getopt(argc, argv, "d:a:z:o:h")) != -1) {
        switch (c) {
        case 'd': db_path = optarg; break;
        case 'a': areas = atoi(optarg); break;
        case 'z': zones = atoi(optarg); break;
        case 'o': out = optarg; break;
        default:
            printf("usage: bench-fed -d REGION_DB -a AREAS -z ZONES [-o OUT.json]\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (!db_path || areas < 1 || areas > 9999 || zones < 1 || zones > 200) {
        fprintf(stderr, "usage: bench-fed -d REGION_DB -a AREAS (1-9999) -z ZONES (1-200) [-o OUT.json]\n");
        return 2;
    }
    char why[256], base_path[600];
    snprintf(base_path, sizeof base_path, "%s.baseline", db_path);
    unlink(db_path);
    unlink(base_path);
    struct store *db = store_open(db_path, STORE_CREATE, why, sizeof why);
    struct store *bdb = db ? store_open(base_path, STORE_CREATE, why, sizeof why) : NULL;
    if (!db || !bdb) {
        fprintf(stderr, "bench-fed: %s\n", why);
        return 1;
    }
    int64_t now = (int64_t)time(NULL) * 1000;
    sqlite3_exec(store_handle(db), "BEGIN", NULL, NULL, NULL);
    for (int a = 0; a < areas; a++) {
        char sql[200];
        snprintf(sql, sizeof sql,
                 "INSERT INTO areas(id, name, added_ms) VALUES ('area-%04d', 'Area %d', %lld)", a, a,
                 (long long)now);
        sqlite3_exec(store_handle(db), sql, NULL, NULL, NULL);
    }
    sqlite3_exec(store_handle(db), "COMMIT", NULL, NULL, NULL);
    sqlite3_exec(store_handle(bdb), "CREATE TABLE raw(topic TEXT NOT NULL, payload BLOB NOT NULL)", NULL,
                 NULL, NULL);

    struct msgs ms = {0};
    size_t bytes = 0;
    for (int a = 0; a < areas; a++)
        if (area_msgs(&ms, a, zones, now) < 0)
            return 1;
    for (size_t i = 0; i < ms.n; i++)
        bytes += ms.m[i].len;

    /* The baseline first, then the receiver: the same bytes, one transaction each. */
    sqlite3_stmt *ins = NULL;
    sqlite3_prepare_v2(store_handle(bdb), "INSERT INTO raw(topic, payload) VALUES (?1, ?2)", -1, &ins, NULL);
    int64_t t0 = mono_us();
    for (size_t i = 0; i < ms.n; i++) {
        sqlite3_exec(store_handle(bdb), "BEGIN IMMEDIATE", NULL, NULL, NULL);
        sqlite3_bind_text(ins, 1, ms.m[i].topic, -1, SQLITE_STATIC);
        sqlite3_bind_blob(ins, 2, ms.m[i].payload, (int)ms.m[i].len, SQLITE_STATIC);
        sqlite3_step(ins);
        sqlite3_reset(ins);
        sqlite3_exec(store_handle(bdb), "COMMIT", NULL, NULL, NULL);
    }
    int64_t base_us = mono_us() - t0;
    sqlite3_finalize(ins);

    struct region *r = region_new(db_path, why, sizeof why);
    if (!r) {
        fprintf(stderr, "bench-fed: %s\n", why);
        return 1;
    }
    t0 = mono_us();
    for (size_t i = 0; i < ms.n; i++)
        region_on_message(r, ms.m[i].topic, strlen(ms.m[i].topic), ms.m[i].payload, ms.m[i].len);
    int64_t recv_us = mono_us() - t0;
    struct region_stats st;
    region_get_stats(r, &st);
    region_free(r);
    store_close(bdb);
    store_close(db);

    double recv_rate = (double)ms.n / ((double)recv_us / 1e6),
           base_rate = (double)ms.n / ((double)base_us / 1e6);
    FILE *f = out ? fopen(out, "w") : stdout;
    if (!f)
        return 1;
    fprintf(
        f,
        "{\"areas\":%d,\"zones_per_area\":%d,\"messages\":%zu,\"bytes\":%zu,\"applied\":%llu,"
        "\"rejected\":%llu,\"errors\":%llu,\"receiver_per_s\":%.1f,\"baseline_per_s\":%.1f,"
        "\"ratio\":%.3f,\"receiver_ms\":%.1f,\"baseline_ms\":%.1f,\"db_kb\":%lld,\"db_kb_per_area\":%.1f}\n",
        areas, zones, ms.n, bytes, (unsigned long long)st.applied, (unsigned long long)st.rejected,
        (unsigned long long)st.errors, recv_rate, base_rate, recv_rate / base_rate, (double)recv_us / 1000,
        (double)base_us / 1000, file_kb(db_path), (double)file_kb(db_path) / areas);
    if (out)
        fclose(f);
    for (size_t i = 0; i < ms.n; i++)
        free(ms.m[i].payload);
    free(ms.m);
    unlink(base_path);
    return st.applied == ms.n && st.errors == 0 ? 0 : 3;
}
