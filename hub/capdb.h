/*
 * capdb.h - one incident's CAP input from the database: the incident row,
 * its zone's and site's names, the origin household's address and the
 * zone's household positions, gathered into a struct cap_incident for the
 * pure hub/cap.c. The HTTP routes (api_cap.c) use it with their pooled
 * statements, the federation publisher (fedpub.c) with its own; both pass
 * the four statements prepared from the SQL below.
 */
#ifndef FIREWATCH_HUB_CAPDB_H
#define FIREWATCH_HUB_CAPDB_H

#include <sqlite3.h>
#include <stdint.h>

#include "cap.h"

#define CAPDB_SQL_INCIDENT                                                                                   \
    "SELECT id, zone_id, origin_node, state, cause, drill, opened_ms, escalated_ms, acked_ms, acked_by, "    \
    "cleared_ms, cleared_by, opened_by, nodes FROM incidents WHERE id = ?1"
#define CAPDB_SQL_ZONE                                                                                       \
    "SELECT z.name, COALESCE(s.name, '') FROM zones z LEFT JOIN sites s ON s.id = z.site_id WHERE z.id = ?1"
#define CAPDB_SQL_ADDRESS                                                                                    \
    "SELECT h.address FROM nodes n JOIN households h ON h.id = n.household_id WHERE n.id = ?1"
#define CAPDB_SQL_POINTS                                                                                     \
    "SELECT lat, lon FROM households WHERE zone_id = ?1 AND lat IS NOT NULL AND lon IS NOT NULL ORDER BY "   \
    "id "                                                                                                    \
    "LIMIT 100000"

/* The four statements, prepared from the SQL above (in that order). */
struct capdb_stmts {
    sqlite3_stmt *incident, *zone, *address, *points;
};

/* One incident with the strings and positions its cap_incident borrows. */
struct capdb_row {
    struct cap_incident inc;
    char zone[FW_ID_MAX + 1], origin[FW_ID_MAX + 1];
    char zone_name[128], site_name[128], address[160];
    char opened_by[72], ack_by[72], closed_by[72];
    struct cap_point *points; /* malloc'd: capdb_row_free */
};

/* Prepares the four statements on db. Returns 0 or -EIO (all finalized). */
int capdb_prepare(sqlite3 *db, struct capdb_stmts *st);
void capdb_finalize(struct capdb_stmts *st);

/* Loads incident id into r (times made consistent with its state, never
 * going backwards). Statements are reset afterwards. Returns 0, -ENOENT
 * or -EIO; free r with capdb_row_free either way. */
int capdb_load(const struct capdb_stmts *st, uint32_t id, struct capdb_row *r);
void capdb_row_free(struct capdb_row *r);

/* The incidents table's state names (those of incident_state_name). */
const char *capdb_state_name(enum incident_state state);
int capdb_state_parse(const char *s, enum incident_state *out);

#endif
