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
#include "capdb.h"
#include "log.h"

#define FEED_RECENT_MS (3600 * 1000LL) /* closed incidents stay in the feed this long */
#define FEED_MAX 200

/* The CAP statements of a pooled connection. */
static struct capdb_stmts stmts_of(struct api_db *db)
{
    struct capdb_stmts st = {.incident = api_stmt(db, Q_INC_GET),
                             .zone = api_stmt(db, Q_CAP_ZONE),
                             .address = api_stmt(db, Q_CAP_ADDRESS),
                             .points = api_stmt(db, Q_CAP_POINTS)};
    return st;
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
    struct capdb_row r;
    struct capdb_stmts st = stmts_of(db);
    int rc = capdb_load(&st, (uint32_t)v, &r);
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
    struct capdb_row *rows = n ? calloc(n, sizeof *rows) : NULL;
    struct cap_incident *incs = n ? calloc(n, sizeof *incs) : NULL;
    size_t k = 0;
    if (rc == SQLITE_DONE || rc == SQLITE_ROW) {
        struct capdb_stmts st = stmts_of(db);
        for (size_t i = 0; i < n && rows && incs; i++)
            if (capdb_load(&st, ids[i], &rows[k]) == 0) {
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
