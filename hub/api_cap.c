/*
 * api_cap.c - CAP 1.2 over HTTP: one incident's current alert
 * (GET /api/v1/incidents/<id>/cap) and the Atom feed of the open incidents
 * plus those closed in the last hour (GET /api/v1/cap). Both read the
 * incident rows the daemon writes (so they lag it by one writer batch),
 * the zone's and site's names, the origin household's address and the
 * zone's household positions, and hand them to the pure hub/cap.c.
 * Contacts and phone numbers are never read here.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cap.h"
#include "log.h"

#define FEED_RECENT_MS (3600 * 1000LL) /* closed incidents stay in the feed this long */
#define FEED_MAX 200

/* One incident with the strings and positions its cap_incident borrows. */
struct cap_row {
    struct cap_incident inc;
    char zone[FW_ID_MAX + 1], origin[FW_ID_MAX + 1];
    char zone_name[128], site_name[128], address[160];
    char opened_by[72], ack_by[72], closed_by[72];
    struct cap_point *points;
};

static void col_copy(char *dst, size_t size, sqlite3_stmt *q, int i)
{
    const unsigned char *t = sqlite3_column_text(q, i);
    snprintf(dst, size, "%s", t ? (const char *)t : "");
}

/* The incidents table's state names (incident_state_name's, without
 * linking the engine into the HTTP side). */
static const char *const state_names[INCIDENT_STATE_COUNT] = {
    [INCIDENT_VERIFYING] = "verifying",       [INCIDENT_ALARM] = "alarm",
    [INCIDENT_ACKNOWLEDGED] = "acknowledged", [INCIDENT_CLEARED] = "cleared",
    [INCIDENT_DISMISSED] = "dismissed",
};

static int state_parse(const char *s, enum incident_state *out)
{
    for (int st = 0; st < INCIDENT_STATE_COUNT; st++) {
        if (strcmp(state_names[st], s) == 0) {
            *out = (enum incident_state)st;
            return 0;
        }
    }
    return -EINVAL;
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/* Loads incident id into r. Returns 0, -ENOENT or -EIO. */
static int load_row(struct api_db *db, uint32_t id, struct cap_row *r)
{
    memset(r, 0, sizeof *r);
    sqlite3_stmt *q = api_stmt(db, Q_INC_GET);
    if (!q)
        return -EIO;
    sqlite3_bind_int64(q, 1, id);
    int rc = sqlite3_step(q);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(q);
        return rc == SQLITE_DONE ? -ENOENT : -EIO;
    }
    struct cap_incident *c = &r->inc;
    char state[16];
    col_copy(state, sizeof state, q, 3);
    if (state_parse(state, &c->state) < 0) {
        sqlite3_reset(q);
        return -EIO;
    }
    c->id = id;
    col_copy(r->zone, sizeof r->zone, q, 1);
    col_copy(r->origin, sizeof r->origin, q, 2);
    char cause[16];
    col_copy(cause, sizeof cause, q, 4);
    if (!cause[0] || fw_cause_parse(cause, &c->cause) < 0)
        c->cause = FW_CAUSE_NONE;
    c->kind = sqlite3_column_int(q, 5) ? INCIDENT_DRILL : INCIDENT_FIRE;
    c->opened_ms = sqlite3_column_int64(q, 6);
    c->alarm_ms = sqlite3_column_int64(q, 7);
    c->ack_ms = sqlite3_column_int64(q, 8);
    col_copy(r->ack_by, sizeof r->ack_by, q, 9);
    c->closed_ms = sqlite3_column_int64(q, 10);
    col_copy(r->closed_by, sizeof r->closed_by, q, 11);
    col_copy(r->opened_by, sizeof r->opened_by, q, 12);
    sqlite3_reset(q);

    /* Times the state needs, never going backwards (a row written between
     * two of the daemon's batches may lag one of them). */
    if (c->state != INCIDENT_VERIFYING && c->state != INCIDENT_DISMISSED && c->alarm_ms == 0)
        c->alarm_ms = c->opened_ms;
    if (c->alarm_ms)
        c->alarm_ms = max64(c->alarm_ms, c->opened_ms);
    if (c->state == INCIDENT_ACKNOWLEDGED && c->ack_ms == 0)
        c->ack_ms = c->alarm_ms;
    if (c->ack_ms)
        c->ack_ms = max64(c->ack_ms, c->alarm_ms);
    if (c->state == INCIDENT_CLEARED || c->state == INCIDENT_DISMISSED)
        c->closed_ms = max64(c->closed_ms, max64(c->opened_ms, max64(c->alarm_ms, c->ack_ms)));
    else
        c->closed_ms = 0;

    if ((q = api_stmt(db, Q_CAP_ZONE)) != NULL) {
        sqlite3_bind_text(q, 1, r->zone, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(q) == SQLITE_ROW) {
            col_copy(r->zone_name, sizeof r->zone_name, q, 0);
            col_copy(r->site_name, sizeof r->site_name, q, 1);
        }
        sqlite3_reset(q);
    }
    if (r->origin[0] && (q = api_stmt(db, Q_CAP_ADDRESS)) != NULL) {
        sqlite3_bind_text(q, 1, r->origin, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(q) == SQLITE_ROW)
            col_copy(r->address, sizeof r->address, q, 0);
        sqlite3_reset(q);
    }
    size_t n = 0, cap = 0;
    if ((q = api_stmt(db, Q_CAP_POINTS)) != NULL) {
        sqlite3_bind_text(q, 1, r->zone, -1, SQLITE_TRANSIENT);
        while (sqlite3_step(q) == SQLITE_ROW) {
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 32;
                struct cap_point *p = realloc(r->points, nc * sizeof *p);
                if (!p)
                    break;
                r->points = p;
                cap = nc;
            }
            r->points[n].lat = sqlite3_column_double(q, 0);
            r->points[n].lon = sqlite3_column_double(q, 1);
            n++;
        }
        sqlite3_reset(q);
    }
    c->zone = r->zone;
    c->zone_name = r->zone_name;
    c->site_name = r->site_name;
    c->origin = r->origin;
    c->address = r->address;
    c->opened_by = r->opened_by;
    c->ack_by = r->ack_by;
    c->closed_by = r->closed_by;
    c->points = r->points;
    c->n_points = n;
    return 0;
}

static struct cap_hub hub_of(const struct http_server *srv)
{
    struct cap_hub h = {.hub_id = srv->hub_id,
                        .sender = srv->cap_sender,
                        .sender_name = srv->cap_sender_name[0] ? srv->cap_sender_name : NULL,
                        .web_base = srv->public_url[0] ? srv->public_url : NULL};
    return h;
}

void api_incident_cap(struct api_req *rq, struct api_reply *rp)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(rq->params[0], &end, 10);
    if (errno || *end || rq->params[0][0] < '0' || rq->params[0][0] > '9' || v == 0 || v > UINT32_MAX) {
        api_error(rp, 400, "incident ids are positive integers");
        return;
    }
    struct api_db *db = api_db_get(rq->srv);
    struct cap_row r;
    int rc = load_row(db, (uint32_t)v, &r);
    api_db_put(rq->srv, db);
    if (rc < 0) {
        free(r.points);
        api_error(rp, rc == -ENOENT ? 404 : 500, rc == -ENOENT ? "no such incident" : "database error");
        return;
    }
    struct cap_hub hub = hub_of(rq->srv);
    size_t len = 0;
    char *xml = cap_alert_new(&hub, &r.inc, &len);
    free(r.points);
    if (!xml) {
        log_warn("cap: incident %lu cannot be written as CAP: %s", v, strerror(errno));
        api_error(rp, 500, "this incident cannot be written as CAP");
        return;
    }
    api_reply_body(rp, 200, CAP_MIME_TYPE "; charset=utf-8", xml, len);
}

void api_cap_feed(struct api_req *rq, struct api_reply *rp)
{
    int64_t now = api_now_ms();
    uint32_t ids[FEED_MAX];
    size_t n = 0;
    struct api_db *db = api_db_get(rq->srv);
    sqlite3_stmt *q = api_stmt(db, Q_CAP_FEED);
    int rc = q ? SQLITE_ROW : SQLITE_ERROR;
    if (q) {
        sqlite3_bind_int64(q, 1, now - FEED_RECENT_MS);
        while (n < FEED_MAX && (rc = sqlite3_step(q)) == SQLITE_ROW)
            ids[n++] = (uint32_t)sqlite3_column_int64(q, 0);
        sqlite3_reset(q);
    }
    struct cap_row *rows = n ? calloc(n, sizeof *rows) : NULL;
    struct cap_incident *incs = n ? calloc(n, sizeof *incs) : NULL;
    size_t k = 0;
    if (rc == SQLITE_DONE || rc == SQLITE_ROW) {
        for (size_t i = 0; i < n && rows && incs; i++)
            if (load_row(db, ids[i], &rows[k]) == 0) {
                incs[k] = rows[k].inc;
                k++;
            }
    }
    api_db_put(rq->srv, db);
    if ((rc != SQLITE_DONE && rc != SQLITE_ROW) || (n && (!rows || !incs))) {
        for (size_t i = 0; rows && i < n; i++)
            free(rows[i].points);
        free(rows);
        free(incs);
        api_error(rp, 500, "database error");
        return;
    }
    struct cap_hub hub = hub_of(rq->srv);
    size_t len = 0;
    char *feed = cap_feed_new(&hub, incs, k, now, &len);
    for (size_t i = 0; i < n; i++)
        free(rows[i].points);
    free(rows);
    free(incs);
    if (!feed) {
        api_error(rp, 500, "the feed cannot be written");
        return;
    }
    api_reply_body(rp, 200, "application/atom+xml; charset=utf-8", feed, len);
}
