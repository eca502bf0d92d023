/*
 * capdb.c - see capdb.h.
 */
#include "capdb.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int capdb_state_parse(const char *s, enum incident_state *out)
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

int capdb_load(const struct capdb_stmts *st, uint32_t id, struct capdb_row *r)
{
    memset(r, 0, sizeof *r);
    sqlite3_stmt *q = st->incident;
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
    if (capdb_state_parse(state, &c->state) < 0) {
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

    if ((q = st->zone) != NULL) {
        sqlite3_bind_text(q, 1, r->zone, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(q) == SQLITE_ROW) {
            col_copy(r->zone_name, sizeof r->zone_name, q, 0);
            col_copy(r->site_name, sizeof r->site_name, q, 1);
        }
        sqlite3_reset(q);
    }
    if (r->origin[0] && (q = st->address) != NULL) {
        sqlite3_bind_text(q, 1, r->origin, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(q) == SQLITE_ROW)
            col_copy(r->address, sizeof r->address, q, 0);
        sqlite3_reset(q);
    }
    size_t n = 0, cap = 0;
    if ((q = st->points) != NULL) {
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

const char *capdb_state_name(enum incident_state state)
{
    return (int)state >= 0 && state < INCIDENT_STATE_COUNT ? state_names[state] : NULL;
}

void capdb_row_free(struct capdb_row *r)
{
    if (!r)
        return;
    free(r->points);
    r->points = NULL;
}

int capdb_prepare(sqlite3 *db, struct capdb_stmts *st)
{
    memset(st, 0, sizeof *st);
    if (sqlite3_prepare_v3(db, CAPDB_SQL_INCIDENT, -1, SQLITE_PREPARE_PERSISTENT, &st->incident, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v3(db, CAPDB_SQL_ZONE, -1, SQLITE_PREPARE_PERSISTENT, &st->zone, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(db, CAPDB_SQL_ADDRESS, -1, SQLITE_PREPARE_PERSISTENT, &st->address, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v3(db, CAPDB_SQL_POINTS, -1, SQLITE_PREPARE_PERSISTENT, &st->points, NULL) !=
            SQLITE_OK) {
        capdb_finalize(st);
        return -EIO;
    }
    return 0;
}

void capdb_finalize(struct capdb_stmts *st)
{
    sqlite3_finalize(st->incident);
    sqlite3_finalize(st->zone);
    sqlite3_finalize(st->address);
    sqlite3_finalize(st->points);
    memset(st, 0, sizeof *st);
}
