/*
 * api_region.c - a regional hub's read-only view (docs/federation.md): every
 * area with what it last said (GET /api/v1/region), their incidents
 * (GET /api/v1/region/incidents), each one's CAP alert as the area sent
 * it (GET /api/v1/region/areas/<area>/incidents/<id>/cap), and an Atom
 * feed of those alerts, open ones and those closed in the last hour
 * (GET /api/v1/region/cap). The tables are
 * written by the receiver (region.c); the documents it stored were checked
 * on the way in, and are parsed again here only to be embedded.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cap.h"
#include "fed.h"

#define STALE_HEARTBEATS 3 /* an area is stale after this many missed heartbeats */
#define INCIDENTS_MAX 500

static sqlite3_stmt *prepare(struct api_db *db, const char *sql)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db->db, sql, -1, &q, NULL) != SQLITE_OK) {
        sqlite3_finalize(q);
        return NULL;
    }
    return q;
}

/* A stored JSON document column, parsed, or JSON null. */
static cJSON *doc_col(sqlite3_stmt *q, int i)
{
    const char *t = (const char *)sqlite3_column_text(q, i);
    cJSON *d = t ? cJSON_Parse(t) : NULL;
    if (!d)
        return cJSON_CreateNull();
    /* What the view needs, not the envelope. */
    cJSON_DeleteItemFromObjectCaseSensitive(d, "v");
    cJSON_DeleteItemFromObjectCaseSensitive(d, "hub");
    return d;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(n) ? n->valuedouble : 0;
}

void api_region(struct api_req *rq, struct api_reply *rp)
{
    int64_t now = api_now_ms();
    const char *only = api_arg(rq, "area");
    if (only && !fw_id_valid(only)) {
        api_error(rp, 400, "area must be an area id");
        return;
    }
    struct api_db *db = api_db_get(rq->srv);
    sqlite3_stmt *q = prepare(
        db, "SELECT a.id, a.name, a.added_ms, a.bridge_online, a.bridge_ms, a.last_seen_ms, a.hub_doc, "
            "CASE WHEN ?1 IS NULL THEN a.readiness_summary ELSE a.readiness_doc END, (SELECT count(*) FROM "
            "area_incidents i WHERE i.area = a.id AND +i.closed_ms = 0), "
            "(SELECT count(*) FROM area_incidents i WHERE i.area = a.id AND +i.closed_ms = 0 AND i.kind = "
            "'fire' AND i.state IN ('alarm', 'acknowledged')) FROM areas a WHERE a.removed_ms = 0 AND (?1 IS "
            "NULL OR "
            "a.id = ?1) ORDER BY a.id");
    if (q && only)
        sqlite3_bind_text(q, 1, only, -1, SQLITE_TRANSIENT);
    if (!q) {
        api_db_put(rq->srv, db);
        api_error(rp, 500, "database error");
        return;
    }
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "mode", rq->srv->regional ? "regional" : "area");
    cJSON_AddNumberToObject(doc, "now", (double)now);
    cJSON *areas = cJSON_AddArrayToObject(doc, "areas");
    double t_hh = 0, t_nodes = 0, t_open = 0, t_alarms = 0, n_areas = 0;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        cJSON *a = cJSON_CreateObject();
        api_col_str(a, "id", q, 0);
        cJSON *hub = doc_col(q, 6);
        const char *name = (const char *)sqlite3_column_text(q, 1);
        const cJSON *hname = cJSON_GetObjectItemCaseSensitive(hub, "name");
        cJSON_AddStringToObject(a, "name",
                                name && *name ? name
                                : cJSON_IsString(hname) && *hname->valuestring
                                    ? hname->valuestring
                                    : (const char *)sqlite3_column_text(q, 0));
        api_col_int(a, "added_ms", q, 2);
        const char *bridge = sqlite3_column_type(q, 3) == SQLITE_NULL ? "unknown"
                             : sqlite3_column_int(q, 3)               ? "up"
                                                                      : "down";
        cJSON_AddStringToObject(a, "bridge", bridge);
        api_col_int(a, "bridge_ms", q, 4);
        api_col_int(a, "last_seen_ms", q, 5);
        /* Stale: the area's hub has not spoken for several heartbeats (its
         * bridge may still be up: the hub itself may be down). */
        double hb = num(hub, "heartbeat_s") > 0 ? num(hub, "heartbeat_s") : 60;
        int64_t seen = sqlite3_column_int64(q, 5);
        cJSON_AddBoolToObject(a, "stale", seen == 0 || now - seen > (int64_t)(hb * 1000 * STALE_HEARTBEATS));
        cJSON_AddNumberToObject(a, "open_incidents", sqlite3_column_int(q, 8));
        cJSON_AddNumberToObject(a, "alarms", sqlite3_column_int(q, 9));
        t_hh += num(hub, "households");
        t_nodes += num(hub, "nodes");
        t_open += sqlite3_column_int(q, 8);
        t_alarms += sqlite3_column_int(q, 9);
        n_areas++;
        cJSON_AddItemToObject(a, "hub", hub);
        /* The list embeds each area's readiness summary as the receiver
         * stored it (fed_readiness_summary: valid JSON, worst zones only);
         * one area's whole document is parsed only for ?area=. */
        const char *sum = (const char *)sqlite3_column_text(q, 7);
        if (only)
            cJSON_AddItemToObject(a, "readiness", doc_col(q, 7));
        else if (sum)
            cJSON_AddItemToObject(a, "readiness", cJSON_CreateRaw(sum));
        else
            cJSON_AddNullToObject(a, "readiness");
        cJSON_AddItemToArray(areas, a);
    }
    sqlite3_finalize(q);
    api_db_put(rq->srv, db);
    if (rc != SQLITE_DONE) {
        cJSON_Delete(doc);
        api_error(rp, 500, "database error");
        return;
    }
    cJSON *t = cJSON_AddObjectToObject(doc, "totals");
    cJSON_AddNumberToObject(t, "areas", n_areas);
    cJSON_AddNumberToObject(t, "households", t_hh);
    cJSON_AddNumberToObject(t, "nodes", t_nodes);
    cJSON_AddNumberToObject(t, "open_incidents", t_open);
    cJSON_AddNumberToObject(t, "alarms", t_alarms);
    api_reply_json(rp, 200, doc);
}

void api_region_incidents(struct api_req *rq, struct api_reply *rp)
{
    int64_t limit, open_only;
    const char *area = api_arg(rq, "area");
    if (api_arg_i64(rq, "limit", 1, INCIDENTS_MAX, 100, &limit) < 0 ||
        api_arg_i64(rq, "open", 0, 1, 0, &open_only) < 0) {
        api_error(rp, 400, "limit must be 1-500 and open 0 or 1");
        return;
    }
    if (area && !fw_id_valid(area)) {
        api_error(rp, 400, "area must be an area id");
        return;
    }
    struct api_db *db = api_db_get(rq->srv);
    sqlite3_stmt *q = prepare(
        db,
        "SELECT i.area, COALESCE(NULLIF(a.name, ''), NULLIF(json_extract(a.hub_doc, '$.name'), ''), i.area), "
        "i.id, i.zone, i.zone_name, i.site_name, "
        "i.state, i.kind, i.origin, i.cause, i.opened_ms, i.alarm_ms, i.ack_ms, i.ack_by, i.closed_ms, "
        "i.updated_ms, (SELECT 1 FROM area_alerts c WHERE c.area = i.area AND c.id = i.id) FROM "
        "area_incidents i JOIN areas a ON a.id = i.area WHERE a.removed_ms = 0 AND (?1 IS NULL OR i.area = "
        "?1) AND "
        "(?2 = 0 OR "
        "i.closed_ms = 0) ORDER BY i.closed_ms != 0, i.opened_ms DESC LIMIT ?3");
    if (!q) {
        api_db_put(rq->srv, db);
        api_error(rp, 500, "database error");
        return;
    }
    if (area)
        sqlite3_bind_text(q, 1, area, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(q, 2, open_only);
    sqlite3_bind_int64(q, 3, limit);
    cJSON *doc = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(doc, "incidents");
    static const char *const cols[] = {
        "area",   "area_name", "id",        "zone",     "zone_name", "site_name", "state",     "kind",
        "origin", "cause",     "opened_ms", "alarm_ms", "ack_ms",    "ack_by",    "closed_ms", "updated_ms"};
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();
        for (int i = 0; i < (int)(sizeof cols / sizeof cols[0]); i++) {
            if (sqlite3_column_type(q, i) == SQLITE_INTEGER)
                api_col_int(o, cols[i], q, i);
            else
                api_col_str(o, cols[i], q, i);
        }
        cJSON_AddBoolToObject(o, "open", sqlite3_column_int64(q, 14) == 0);
        if (sqlite3_column_int(q, 16)) {
            char url[160];
            snprintf(url, sizeof url, "/api/v1/region/areas/%s/incidents/%lld/cap", sqlite3_column_text(q, 0),
                     (long long)sqlite3_column_int64(q, 2));
            cJSON_AddStringToObject(o, "cap", url);
        } else {
            cJSON_AddNullToObject(o, "cap");
        }
        cJSON_AddItemToArray(arr, o);
    }
    sqlite3_finalize(q);
    api_db_put(rq->srv, db);
    if (rc != SQLITE_DONE) {
        cJSON_Delete(doc);
        api_error(rp, 500, "database error");
        return;
    }
    api_reply_json(rp, 200, doc);
}

void api_region_cap(struct api_req *rq, struct api_reply *rp)
{
    const char *area = rq->params[0];
    char *end;
    errno = 0;
    unsigned long id = strtoul(rq->params[1], &end, 10);
    if (!fw_id_valid(area) || errno || *end || rq->params[1][0] < '1' || rq->params[1][0] > '9' ||
        id > UINT32_MAX) {
        api_error(rp, 400, "an area id and a positive incident id are needed");
        return;
    }
    struct api_db *db = api_db_get(rq->srv);
    sqlite3_stmt *q = prepare(
        db,
        "SELECT c.xml FROM area_alerts c JOIN areas a ON a.id = c.area WHERE c.area = ?1 AND c.id = ?2 AND "
        "a.removed_ms = 0");
    int rc = SQLITE_ERROR;
    char *xml = NULL;
    size_t len = 0;
    if (q) {
        sqlite3_bind_text(q, 1, area, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(q, 2, (sqlite3_int64)id);
        rc = sqlite3_step(q);
        if (rc == SQLITE_ROW) {
            len = (size_t)sqlite3_column_bytes(q, 0);
            xml = malloc(len + 1);
            if (xml) {
                memcpy(xml, sqlite3_column_text(q, 0), len);
                xml[len] = '\0';
            }
        }
        sqlite3_finalize(q);
    }
    api_db_put(rq->srv, db);
    if (rc == SQLITE_DONE) {
        api_error(rp, 404, "no CAP alert from that area for that incident");
        return;
    }
    if (rc != SQLITE_ROW || !xml) {
        free(xml);
        api_error(rp, 500, "database error");
        return;
    }
    api_reply_body(rp, 200, CAP_MIME_TYPE "; charset=utf-8", xml, len);
}

/* The <identifier> of a CAP alert, into buf ("" when absent). */
static void alert_identifier(const char *xml, char *buf, size_t size)
{
    buf[0] = '\0';
    const char *p = strstr(xml, "<identifier>");
    const char *q = p ? strstr(p, "</identifier>") : NULL;
    if (p && q && (size_t)(q - p - 12) < size)
        snprintf(buf, size, "%.*s", (int)(q - p - 12), p + 12);
}

#define FEED_RECENT_MS (3600 * 1000LL) /* closed incidents stay in the feed this long */
#define FEED_MAX 200

void api_region_cap_feed(struct api_req *rq, struct api_reply *rp)
{
    int64_t now = api_now_ms();
    struct api_db *db = api_db_get(rq->srv);
    sqlite3_stmt *q = prepare(
        db,
        "SELECT i.area, COALESCE(NULLIF(a.name, ''), NULLIF(json_extract(a.hub_doc, '$.name'), ''), i.area), "
        "i.id, COALESCE(NULLIF(i.zone_name, ''), i.zone), i.state, i.kind, i.updated_ms, c.xml FROM "
        "area_incidents i JOIN areas a ON a.id = i.area JOIN area_alerts c ON c.area = i.area AND c.id = "
        "i.id "
        "WHERE a.removed_ms = 0 AND (i.closed_ms = 0 OR c.updated_ms >= ?1) ORDER BY i.closed_ms != 0, "
        "i.opened_ms DESC LIMIT ?2");
    if (!q) {
        api_db_put(rq->srv, db);
        api_error(rp, 500, "database error");
        return;
    }
    sqlite3_bind_int64(q, 1, now - FEED_RECENT_MS);
    sqlite3_bind_int(q, 2, FEED_MAX);
    struct row {
        char id[200], title[400], link[160];
        char *xml;
    } *rows = calloc(FEED_MAX, sizeof *rows);
    struct cap_feed_entry *e = calloc(FEED_MAX, sizeof *e);
    size_t n = 0;
    int rc = rows && e ? SQLITE_ROW : SQLITE_NOMEM;
    while (rows && e && n < FEED_MAX && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *area = (const char *)sqlite3_column_text(q, 0);
        const char *xml = (const char *)sqlite3_column_text(q, 7);
        char ident[128];
        alert_identifier(xml ? xml : "", ident, sizeof ident);
        struct row *r = &rows[n];
        r->xml = strdup(xml ? xml : "");
        snprintf(r->id, sizeof r->id, "urn:firewatch:%s:cap:%s", area, ident[0] ? ident : "unknown");
        snprintf(r->title, sizeof r->title, "%s, %s: %s %s", sqlite3_column_text(q, 1),
                 sqlite3_column_text(q, 3), sqlite3_column_text(q, 5), sqlite3_column_text(q, 4));
        snprintf(r->link, sizeof r->link, "/api/v1/region/areas/%s/incidents/%lld/cap", area,
                 (long long)sqlite3_column_int64(q, 2));
        e[n] = (struct cap_feed_entry){.id = r->id,
                                       .title = r->title,
                                       .updated_ms = sqlite3_column_int64(q, 6),
                                       .link = r->link,
                                       .alert = r->xml};
        if (r->xml)
            n++;
    }
    sqlite3_finalize(q);
    api_db_put(rq->srv, db);
    char *feed = NULL;
    size_t len = 0;
    if (rc == SQLITE_DONE || rc == SQLITE_ROW)
        feed = cap_feed_wrap("urn:firewatch:region:cap", "Firewatch regional view: fire alerts of every area",
                             e, n, now, &len);
    for (size_t i = 0; rows && i < n; i++)
        free(rows[i].xml);
    free(rows);
    free(e);
    if (!feed) {
        api_error(rp, 500,
                  rc == SQLITE_DONE || rc == SQLITE_ROW ? "the feed cannot be written" : "database error");
        return;
    }
    api_reply_body(rp, 200, "application/atom+xml; charset=utf-8", feed, len);
}
