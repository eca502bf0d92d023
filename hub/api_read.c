/*
 * api_read.c - the read routes (sites, zones, households, nodes, readings,
 * incidents, troubles), the incident actions that go to the daemon through
 * its hooks, and the live stream's entry point. Every read borrows one
 * read-only connection for the whole request and returns it before the
 * reply is serialized.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "api.h"
#include "log.h"

#define HOUR_MS 3600000LL
#define PAGE_DEFAULT 1000 /* list pages: big enough for a ward in one, small enough to stay fast */
#define PAGE_MAX 5000
#define DAY_MS (24 * HOUR_MS)

/* Ids in paths follow the protocol: [a-z0-9][a-z0-9-]{0,31}. */
static bool id_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 32 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

/* An optional id filter from the query string: NULL when absent; *bad set
 * when present but malformed. */
static const char *id_arg(struct api_req *rq, const char *key, bool *bad)
{
    const char *v = api_arg(rq, key);
    if (!v || !*v)
        return NULL;
    if (!id_valid(v))
        *bad = true;
    return v;
}

static void bind_opt(sqlite3_stmt *q, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(q, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(q, i);
}

static cJSON *csv_array(const char *csv)
{
    cJSON *a = cJSON_CreateArray();
    const char *p = csv;
    while (a && p && *p) {
        size_t n = strcspn(p, ",");
        if (n > 0 && n < 128) {
            char item[128];
            memcpy(item, p, n);
            item[n] = '\0';
            cJSON_AddItemToArray(a, cJSON_CreateString(item));
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return a;
}

/* "next": the id to pass as after= for the following page, or null. */
static void add_next(cJSON *doc, const char *last)
{
    if (last)
        cJSON_AddStringToObject(doc, "next", last);
    else
        cJSON_AddNullToObject(doc, "next");
}

/* Sends whatever the loop produced, or 500 when the database failed. */
static void finish(struct api_reply *rp, struct http_server *srv, struct api_db *db, int rc, cJSON *doc)
{
    api_db_put(srv, db);
    if (rc != SQLITE_DONE) {
        cJSON_Delete(doc);
        api_error(rp, 500, "database error");
        return;
    }
    api_reply_json(rp, 200, doc);
}

void api_health(struct api_req *rq, struct api_reply *rp)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "status", "ok");
    cJSON_AddStringToObject(doc, "lang", rq->srv->lang);
    cJSON_AddStringToObject(doc, "mode", rq->srv->regional ? "regional" : "area");
    cJSON_AddNumberToObject(doc, "time_ms", (double)api_now_ms());
    struct api_db *db = api_db_get(rq->srv);
    int rc = sqlite3_exec(db->db, "SELECT 1 FROM sites LIMIT 1", NULL, NULL, NULL);
    api_db_put(rq->srv, db);
    cJSON_AddBoolToObject(doc, "database", rc == SQLITE_OK);
    if (rc != SQLITE_OK)
        cJSON_ReplaceItemInObject(doc, "status", cJSON_CreateString("degraded"));
    api_reply_json(rp, rc == SQLITE_OK ? 200 : 503, doc);
}

void api_sites(struct api_req *rq, struct api_reply *rp)
{
    struct api_db *db = api_db_get(rq->srv);
    sqlite3_stmt *q = api_stmt(db, Q_SITES);
    cJSON *arr = cJSON_CreateArray();
    int rc = q ? SQLITE_ROW : SQLITE_ERROR;
    while (q && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();
        api_col_str(o, "id", q, 0);
        api_col_str(o, "name", q, 1);
        api_col_int(o, "zones", q, 2);
        api_col_int(o, "households", q, 3);
        cJSON_AddItemToArray(arr, o);
    }
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddItemToObject(doc, "sites", arr);
    finish(rp, rq->srv, db, rc, doc);
}

void api_zones(struct api_req *rq, struct api_reply *rp)
{
    bool bad = false;
    const char *site = id_arg(rq, "site", &bad);
    if (bad) {
        api_error(rp, 400, "site must be an id");
        return;
    }
    struct api_db *db = api_db_get(rq->srv);
    sqlite3_stmt *q = api_stmt(db, Q_ZONES);
    cJSON *arr = cJSON_CreateArray();
    int rc = q ? SQLITE_ROW : SQLITE_ERROR;
    if (q)
        bind_opt(q, 1, site);
    while (q && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();
        api_col_str(o, "id", q, 0);
        api_col_str(o, "site", q, 1);
        api_col_str(o, "name", q, 2);
        cJSON_AddItemToObject(o, "neighbours", csv_array((const char *)sqlite3_column_text(q, 3)));
        api_col_int(o, "households", q, 4);
        api_col_int(o, "nodes", q, 5);
        const char *st = (const char *)sqlite3_column_text(q, 6);
        cJSON_AddStringToObject(o, "incident_state", st ? st : "");
        cJSON_AddItemToArray(arr, o);
    }
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddItemToObject(doc, "zones", arr);
    finish(rp, rq->srv, db, rc, doc);
}

void api_households(struct api_req *rq, struct api_reply *rp)
{
    bool bad = false;
    const char *zone = id_arg(rq, "zone", &bad);
    if (bad) {
        api_error(rp, 400, "zone must be an id");
        return;
    }
    int64_t limit;
    const char *after = id_arg(rq, "after", &bad);
    if (bad || api_arg_i64(rq, "limit", 1, PAGE_MAX, PAGE_DEFAULT, &limit) < 0) {
        api_error(rp, 400, "after must be a household id, limit 1-5000");
        return;
    }
    struct api_db *db = api_db_get(rq->srv);
    sqlite3_stmt *q = api_stmt(db, zone ? Q_HOUSEHOLDS_ZONE : Q_HOUSEHOLDS);
    cJSON *arr = cJSON_CreateArray();
    int rc = q ? SQLITE_ROW : SQLITE_ERROR;
    if (q) {
        bind_opt(q, 1, zone);
        bind_opt(q, 2, after ? after : "");
        sqlite3_bind_int64(q, 3, limit);
    }
    int64_t n = 0;
    char last[API_PARAM_LEN] = "";
    while (q && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();
        api_col_str(o, "id", q, 0);
        snprintf(last, sizeof last, "%s", (const char *)sqlite3_column_text(q, 0));
        n++;
        api_col_str(o, "zone", q, 1);
        api_col_str(o, "address", q, 2);
        api_col_str(o, "contact", q, 3);
        api_col_str(o, "phone", q, 4);
        if (sqlite3_column_type(q, 5) != SQLITE_NULL && sqlite3_column_type(q, 6) != SQLITE_NULL) {
            cJSON_AddNumberToObject(o, "lat", sqlite3_column_double(q, 5));
            cJSON_AddNumberToObject(o, "lon", sqlite3_column_double(q, 6));
        }
        api_col_int(o, "nodes", q, 7);
        const char *troubles = (const char *)sqlite3_column_text(q, 8);
        const char *inc = (const char *)sqlite3_column_text(q, 9);
        cJSON_AddItemToObject(o, "troubles", csv_array(troubles));
        /* One word for the map: fire beats trouble beats ok. */
        const char *state;
        if (inc && *inc)
            state = strcmp(inc, "verifying") == 0 ? "verifying" : "alarm";
        else if (troubles && *troubles)
            state = "trouble";
        else if (sqlite3_column_int64(q, 10) == 0)
            state = "no_detector"; /* none, or none commissioned yet */
        else
            state = "ok";
        cJSON_AddStringToObject(o, "state", state);
        cJSON_AddItemToArray(arr, o);
    }
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddItemToObject(doc, "households", arr);
    add_next(doc, !zone && n == limit ? last : NULL);
    finish(rp, rq->srv, db, rc, doc);
}

static cJSON *node_row(sqlite3_stmt *q)
{
    cJSON *o = cJSON_CreateObject();
    api_col_str(o, "id", q, 0);
    api_col_str(o, "household", q, 1);
    api_col_str(o, "zone", q, 2);
    api_col_str(o, "kind", q, 3);
    api_col_str(o, "room", q, 4);
    api_col_str(o, "fw", q, 5);
    bool online = sqlite3_column_int(q, 6) != 0;
    cJSON_AddBoolToObject(o, "online", online);
    api_col_int(o, "last_seen_ms", q, 7);
    api_col_int(o, "last_test_ms", q, 8);
    int batt = sqlite3_column_int(q, 9);
    if (batt >= 0)
        cJSON_AddNumberToObject(o, "batt_pct", batt);
    else
        cJSON_AddNullToObject(o, "batt_pct");
    api_col_int(o, "interval_s", q, 10);
    int64_t comm = sqlite3_column_int64(q, 11);
    cJSON_AddNumberToObject(o, "commissioned_ms", (double)comm);
    const char *troubles = (const char *)sqlite3_column_text(q, 12);
    cJSON_AddItemToObject(o, "troubles", csv_array(troubles));
    const char *health = comm == 0               ? "uncommissioned"
                         : !online               ? "offline"
                         : troubles && *troubles ? "trouble"
                                                 : "ok";
    cJSON_AddStringToObject(o, "health", health);
    if (sqlite3_column_type(q, 13) != SQLITE_NULL) {
        cJSON *r = cJSON_AddObjectToObject(o, "last_reading");
        api_col_int(r, "ts_ms", q, 13);
        cJSON_AddNumberToObject(r, "temp_c", sqlite3_column_double(q, 14));
        cJSON_AddBoolToObject(r, "smoke", sqlite3_column_int(q, 15) != 0);
    } else {
        cJSON_AddNullToObject(o, "last_reading");
    }
    return o;
}

void api_nodes(struct api_req *rq, struct api_reply *rp)
{
    bool bad = false;
    int64_t limit;
    const char *zone = id_arg(rq, "zone", &bad);
    const char *after = id_arg(rq, "after", &bad);
    const char *health = api_arg(rq, "health");
    bool problems = health && strcmp(health, "problem") == 0;
    if (bad || (health && !problems && strcmp(health, "all") != 0) ||
        api_arg_i64(rq, "limit", 1, PAGE_MAX, PAGE_DEFAULT, &limit) < 0) {
        api_error(rp, 400, "zone and after are ids, health is all or problem, limit 1-5000");
        return;
    }
    struct api_db *db = api_db_get(rq->srv);
    sqlite3_stmt *q = api_stmt(db, zone ? Q_NODES_ZONE : Q_NODES);
    cJSON *arr = cJSON_CreateArray();
    int rc = q ? SQLITE_ROW : SQLITE_ERROR;
    if (q) {
        bind_opt(q, 1, zone);
        bind_opt(q, 3, after ? after : "");
        sqlite3_bind_int64(q, 4, limit);
        sqlite3_bind_int(q, 5, problems);
    }
    int64_t n = 0;
    char last[API_PARAM_LEN] = "";
    while (q && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        snprintf(last, sizeof last, "%s", (const char *)sqlite3_column_text(q, 0));
        n++;
        cJSON_AddItemToArray(arr, node_row(q));
    }
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddItemToObject(doc, "nodes", arr);
    add_next(doc, !zone && n == limit ? last : NULL);
    finish(rp, rq->srv, db, rc, doc);
}

void api_node_get(struct api_req *rq, struct api_reply *rp)
{
    if (!id_valid(rq->params[0])) {
        api_error(rp, 400, "node ids are lower-case letters, digits and '-'");
        return;
    }
    struct api_db *db = api_db_get(rq->srv);
    sqlite3_stmt *q = api_stmt(db, Q_NODE_GET);
    cJSON *doc = NULL;
    int rc = SQLITE_ERROR;
    if (q) {
        bind_opt(q, 2, rq->params[0]);
        sqlite3_bind_int(q, 5, 0);
        rc = sqlite3_step(q);
        if (rc == SQLITE_ROW)
            doc = node_row(q);
    }
    api_db_put(rq->srv, db);
    if (rc == SQLITE_ROW)
        api_reply_json(rp, 200, doc);
    else if (rc == SQLITE_DONE)
        api_error(rp, 404, "no such node");
    else
        api_error(rp, 500, "database error");
}

/* Chooses the resolution for a span: raw up to 6 hours, 5-minute buckets up
 * to 7 days, hourly beyond (at most 5000 points either way). */
static int64_t bucket_for(int64_t span_ms)
{
    if (span_ms <= 6 * HOUR_MS)
        return 0;
    if (span_ms <= 7 * DAY_MS)
        return 300000;
    return HOUR_MS;
}

void api_node_readings(struct api_req *rq, struct api_reply *rp)
{
    if (!id_valid(rq->params[0])) {
        api_error(rp, 400, "node ids are lower-case letters, digits and '-'");
        return;
    }
    int64_t now = api_now_ms(), to, from;
    if (api_arg_i64(rq, "to", 0, INT64_C(4102444800000), now, &to) < 0 ||
        api_arg_i64(rq, "from", 0, INT64_C(4102444800000), to - DAY_MS, &from) < 0 || from >= to ||
        to - from > 400 * DAY_MS) {
        api_error(rp, 400, "from and to are Unix milliseconds, from < to, at most 400 days apart");
        return;
    }
    const char *res_arg = api_arg(rq, "resolution");
    int64_t bucket = bucket_for(to - from);
    if (res_arg && strcmp(res_arg, "raw") == 0 && to - from <= 2 * DAY_MS)
        bucket = 0;
    else if (res_arg && strcmp(res_arg, "5m") == 0 && to - from <= 60 * DAY_MS)
        bucket = 300000;
    else if (res_arg && strcmp(res_arg, "1h") == 0)
        bucket = HOUR_MS;
    else if (res_arg && *res_arg && strcmp(res_arg, "auto") != 0) {
        api_error(rp, 400, "resolution is auto, raw (up to 2 days), 5m (up to 60 days) or 1h");
        return;
    }
    struct api_db *db = api_db_get(rq->srv);
    sqlite3_stmt *ex = api_stmt(db, Q_NODE_EXISTS);
    int rc = SQLITE_ERROR;
    if (ex) {
        sqlite3_bind_text(ex, 1, rq->params[0], -1, SQLITE_TRANSIENT);
        rc = sqlite3_step(ex);
        sqlite3_reset(ex);
    }
    if (rc != SQLITE_ROW) {
        api_db_put(rq->srv, db);
        api_error(rp, rc == SQLITE_DONE ? 404 : 500, rc == SQLITE_DONE ? "no such node" : "database error");
        return;
    }
    sqlite3_stmt *q = api_stmt(db, bucket ? Q_READINGS_AGG : Q_READINGS_RAW);
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "node", rq->params[0]);
    cJSON_AddNumberToObject(doc, "from", (double)from);
    cJSON_AddNumberToObject(doc, "to", (double)to);
    cJSON_AddStringToObject(doc, "resolution", bucket == 0 ? "raw" : bucket == 300000 ? "5m" : "1h");
    /* Columns as parallel arrays: compact, and what a chart wants. */
    cJSON *t = cJSON_AddArrayToObject(doc, "t");
    cJSON *temp = cJSON_AddArrayToObject(doc, "temp_c");
    cJSON *tmin = bucket ? cJSON_AddArrayToObject(doc, "temp_min") : NULL;
    cJSON *tmax = bucket ? cJSON_AddArrayToObject(doc, "temp_max") : NULL;
    cJSON *smoke = cJSON_AddArrayToObject(doc, "smoke");
    rc = q ? SQLITE_ROW : SQLITE_ERROR;
    if (q) {
        sqlite3_bind_text(q, 1, rq->params[0], -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(q, 2, from);
        sqlite3_bind_int64(q, 3, to);
        if (bucket) {
            sqlite3_bind_int64(q, 4, bucket);
            sqlite3_bind_int64(q, 5, bucket / 1000);
        }
    }
    while (q && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        cJSON_AddItemToArray(t, cJSON_CreateNumber((double)sqlite3_column_int64(q, 0)));
        if (bucket) {
            cJSON_AddItemToArray(tmin, cJSON_CreateNumber(sqlite3_column_double(q, 1)));
            cJSON_AddItemToArray(tmax, cJSON_CreateNumber(sqlite3_column_double(q, 2)));
            cJSON_AddItemToArray(temp, cJSON_CreateNumber(sqlite3_column_double(q, 3)));
            cJSON_AddItemToArray(smoke, cJSON_CreateNumber(sqlite3_column_int(q, 4)));
        } else {
            cJSON_AddItemToArray(temp, cJSON_CreateNumber(sqlite3_column_double(q, 1)));
            cJSON_AddItemToArray(smoke, cJSON_CreateNumber(sqlite3_column_int(q, 2)));
        }
    }
    finish(rp, rq->srv, db, rc, doc);
}

static cJSON *incident_row(sqlite3_stmt *q)
{
    cJSON *o = cJSON_CreateObject();
    api_col_int(o, "id", q, 0);
    api_col_str(o, "zone", q, 1);
    api_col_str(o, "origin", q, 2);
    api_col_str(o, "state", q, 3);
    api_col_str(o, "cause", q, 4);
    cJSON_AddStringToObject(o, "kind", sqlite3_column_int(q, 5) ? "drill" : "fire");
    api_col_int(o, "opened_ms", q, 6);
    api_col_int(o, "escalated_ms", q, 7);
    api_col_int(o, "acked_ms", q, 8);
    api_col_str(o, "acked_by", q, 9);
    api_col_int(o, "cleared_ms", q, 10);
    api_col_str(o, "cleared_by", q, 11);
    api_col_str(o, "opened_by", q, 12);
    cJSON_AddItemToObject(o, "nodes", csv_array((const char *)sqlite3_column_text(q, 13)));
    return o;
}

static int add_timeline(struct api_db *db, cJSON *inc, int64_t id)
{
    sqlite3_stmt *q = api_stmt(db, Q_TIMELINE);
    if (!q)
        return SQLITE_ERROR;
    sqlite3_bind_int64(q, 1, id);
    cJSON *arr = cJSON_AddArrayToObject(inc, "timeline");
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        cJSON *e = cJSON_CreateObject();
        api_col_int(e, "ts_ms", q, 0);
        api_col_str(e, "what", q, 1);
        api_col_str(e, "who", q, 2);
        api_col_str(e, "node", q, 3);
        api_col_str(e, "detail", q, 4);
        cJSON_AddItemToArray(arr, e);
    }
    sqlite3_reset(q);
    return rc;
}

void api_incidents(struct api_req *rq, struct api_reply *rp)
{
    const char *state = api_arg(rq, "state");
    bool active = !state || strcmp(state, "active") == 0;
    if (state && !active && strcmp(state, "all") != 0) {
        api_error(rp, 400, "state is active or all");
        return;
    }
    int64_t limit, before;
    bool bad = false;
    const char *zone = id_arg(rq, "zone", &bad);
    if (bad || api_arg_i64(rq, "limit", 1, 500, 50, &limit) < 0 ||
        api_arg_i64(rq, "before", 0, UINT32_MAX, 0, &before) < 0) {
        api_error(rp, 400, "limit is 1-500, before an incident id, zone an id");
        return;
    }
    bool timeline = api_arg(rq, "timeline") && strcmp(api_arg(rq, "timeline"), "1") == 0;
    struct api_db *db = api_db_get(rq->srv);
    sqlite3_stmt *q = api_stmt(db, active ? Q_INC_ACTIVE : Q_INC_HISTORY);
    cJSON *arr = cJSON_CreateArray();
    int rc = q ? SQLITE_ROW : SQLITE_ERROR;
    if (q && !active) {
        sqlite3_bind_int64(q, 1, before);
        sqlite3_bind_int64(q, 2, limit);
        bind_opt(q, 3, zone);
    }
    while (q && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (active && zone && strcmp((const char *)sqlite3_column_text(q, 1), zone) != 0)
            continue;
        cJSON_AddItemToArray(arr, incident_row(q));
    }
    if (rc == SQLITE_DONE && timeline) {
        /* The active list is short; the dashboard shows each one's story. */
        cJSON *it;
        cJSON_ArrayForEach(it, arr)
        {
            int trc = add_timeline(db, it, (int64_t)cJSON_GetObjectItem(it, "id")->valuedouble);
            if (trc != SQLITE_DONE) {
                rc = trc;
                break;
            }
        }
    }
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddItemToObject(doc, "incidents", arr);
    finish(rp, rq->srv, db, rc, doc);
}

/* Parses an incident id path parameter. */
static bool incident_id(const char *s, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || s[0] < '0' || s[0] > '9' || v == 0 || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

void api_incident_get(struct api_req *rq, struct api_reply *rp)
{
    uint32_t id;
    if (!incident_id(rq->params[0], &id)) {
        api_error(rp, 400, "incident ids are positive integers");
        return;
    }
    struct api_db *db = api_db_get(rq->srv);
    sqlite3_stmt *q = api_stmt(db, Q_INC_GET);
    cJSON *doc = NULL;
    int rc = SQLITE_ERROR;
    if (q) {
        sqlite3_bind_int64(q, 1, id);
        rc = sqlite3_step(q);
        if (rc == SQLITE_ROW) {
            doc = incident_row(q);
            sqlite3_reset(q);
            rc = add_timeline(db, doc, id) == SQLITE_DONE ? SQLITE_ROW : SQLITE_ERROR;
        }
    }
    api_db_put(rq->srv, db);
    if (rc == SQLITE_ROW) {
        api_reply_json(rp, 200, doc);
        return;
    }
    cJSON_Delete(doc);
    api_error(rp, rc == SQLITE_DONE ? 404 : 500, rc == SQLITE_DONE ? "no such incident" : "database error");
}

static const char *const op_names[] = {
    [HTTP_INCIDENT_ACK] = "incident.acknowledge",
    [HTTP_INCIDENT_CLEAR] = "incident.clear",
    [HTTP_INCIDENT_DRILL] = "incident.drill",
};

/* Hands one action to the daemon and maps its answer to a status. */
static void incident_action(struct api_req *rq, struct api_reply *rp, enum http_incident_op op, uint32_t id,
                            const char *zone)
{
    struct http_server *srv = rq->srv;
    char detail[128];
    if (op == HTTP_INCIDENT_DRILL)
        snprintf(detail, sizeof detail, "zone %s", zone);
    else
        snprintf(detail, sizeof detail, "incident %" PRIu32, id);
    if (srv->regional) {
        /* A regional view never acts on an area's incidents (the daemon
         * refuses too: -EROFS). */
        api_error(rp, 403, "this is a regional hub, a read-only view: act on the area's own hub");
        return;
    }
    if (!srv->hooks.incident_action) {
        api_error(rp, 503, "the hub's incident engine is not connected");
        return;
    }
    char msg[HTTP_MSG_MAX] = "";
    uint32_t new_id = 0;
    int rc = srv->hooks.incident_action(srv->hooks.ctx, op, id, zone, rq->who.user, &new_id, msg, sizeof msg);
    char result[HTTP_MSG_MAX + 160];
    snprintf(result, sizeof result, "%s: %s", detail, rc == 0 ? "ok" : msg[0] ? msg : strerror(-rc));
    api_audit(srv, rq->who.user, op_names[op], result);
    if (rc == 0) {
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddBoolToObject(doc, "ok", true);
        cJSON_AddNumberToObject(doc, "incident", op == HTTP_INCIDENT_DRILL ? new_id : id);
        api_reply_json(rp, op == HTTP_INCIDENT_DRILL ? 201 : 200, doc);
        return;
    }
    unsigned status;
    const char *fallback;
    switch (rc) {
    case -ENOENT:
        status = 404;
        fallback = op == HTTP_INCIDENT_DRILL ? "no such zone" : "no such open incident";
        break;
    case -EALREADY:
        status = 409;
        fallback = "already done";
        break;
    case -EPERM:
        status = 409;
        fallback = "not possible in the incident's current state";
        break;
    case -EROFS:
        status = 403;
        fallback = "this is a regional hub, a read-only view: act on the area's own hub";
        break;
    case -EBUSY:
        status = 409;
        fallback = "sensors of this incident are still in alarm";
        break;
    case -EINVAL:
        status = 400;
        fallback = "invalid request";
        break;
    case -ETIMEDOUT:
        status = 504;
        fallback = "the hub did not answer in time; try again";
        atomic_fetch_add(&srv->hook_timeouts, 1);
        break;
    default:
        status = 500;
        fallback = "the hub could not do this";
        break;
    }
    api_error(rp, status, msg[0] ? msg : fallback);
}

void api_incident_ack(struct api_req *rq, struct api_reply *rp)
{
    uint32_t id;
    if (!incident_id(rq->params[0], &id)) {
        api_error(rp, 400, "incident ids are positive integers");
        return;
    }
    incident_action(rq, rp, HTTP_INCIDENT_ACK, id, NULL);
}

void api_incident_clear(struct api_req *rq, struct api_reply *rp)
{
    uint32_t id;
    if (!incident_id(rq->params[0], &id)) {
        api_error(rp, 400, "incident ids are positive integers");
        return;
    }
    incident_action(rq, rp, HTTP_INCIDENT_CLEAR, id, NULL);
}

void api_zone_drill(struct api_req *rq, struct api_reply *rp)
{
    if (!id_valid(rq->params[0])) {
        api_error(rp, 400, "zone ids are lower-case letters, digits and '-'");
        return;
    }
    incident_action(rq, rp, HTTP_INCIDENT_DRILL, 0, rq->params[0]);
}

void api_troubles(struct api_req *rq, struct api_reply *rp)
{
    const char *state = api_arg(rq, "state");
    bool open_only = !state || strcmp(state, "open") == 0;
    int64_t limit;
    if ((state && !open_only && strcmp(state, "all") != 0) ||
        api_arg_i64(rq, "limit", 1, 1000, 200, &limit) < 0) {
        api_error(rp, 400, "state is open or all; limit 1-1000");
        return;
    }
    struct api_db *db = api_db_get(rq->srv);
    sqlite3_stmt *q = api_stmt(db, Q_TROUBLES);
    cJSON *arr = cJSON_CreateArray();
    int rc = q ? SQLITE_ROW : SQLITE_ERROR;
    if (q) {
        sqlite3_bind_int(q, 1, open_only);
        sqlite3_bind_int64(q, 2, limit);
    }
    while (q && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();
        api_col_int(o, "id", q, 0);
        api_col_str(o, "node", q, 1);
        api_col_str(o, "zone", q, 2);
        api_col_str(o, "household", q, 3);
        api_col_str(o, "kind", q, 4);
        api_col_int(o, "opened_ms", q, 5);
        api_col_int(o, "cleared_ms", q, 6);
        api_col_str(o, "detail", q, 7);
        cJSON_AddItemToArray(arr, o);
    }
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddItemToObject(doc, "troubles", arr);
    finish(rp, rq->srv, db, rc, doc);
}

void api_stream(struct api_req *rq, struct api_reply *rp)
{
    const char *lei = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "Last-Event-ID");
    if (!lei)
        lei = api_arg(rq, "last_event_id");
    bool has = false;
    uint64_t last = 0;
    if (lei && *lei) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(lei, &end, 10);
        if (!errno && !*end && lei[0] >= '0' && lei[0] <= '9') {
            has = true;
            last = v;
        }
    }
    struct MHD_Response *r = stream_response(rq->srv->stream, rq->conn, has, last);
    if (!r) {
        rp->retry_after_s = 5;
        api_error(rp, 503, "too many stream clients; try again shortly");
        return;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream; charset=utf-8");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    rp->raw = r;
    rp->status = 200;
}
