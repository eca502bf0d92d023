/*
 * techview.h - the technician's view: every node that needs a visit or an
 * action, by household, with what to do. `firewatchctl tech` and
 * GET /api/v1/tech both print it, so the query and the advice live here,
 * header-only: firewatchctl and the HTTP server link different objects, and
 * this is one SQL statement and one table of sentences.
 *
 * A problem is one row (household, node, kind, since, detail);
 * techview_collect() groups the rows by household as JSON. Kinds:
 *   still_publishing  decommissioned, yet the hub heard it afterwards
 *   offline, tamper, sensor_fault, smoke_fault, low_battery
 *                     the open troubles the hub's supervisor keeps
 *   overdue_test      the open trouble, or (hub not running) no passed test
 *                     for 30 days since commissioning
 *   uncommissioned    installed but no commissioning test has passed; it
 *                     counts against readiness until one does
 * Decommissioned nodes appear only as still_publishing.
 */
#ifndef FIREWATCH_HUB_TECHVIEW_H
#define FIREWATCH_HUB_TECHVIEW_H

#include <cjson/cJSON.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Parameters: ?1 now (Unix ms), ?2 a zone id or NULL for every zone.
 * Columns: 0 household, 1 zone, 2 address, 3 contact, 4 phone, 5 node,
 * 6 kind, 7 since (Unix ms), 8 detail. Ordered by household, node, and
 * urgency within a node. */
#define TECHVIEW_SQL                                                                                         \
    "WITH n AS (SELECT n.id, n.household_id, n.created_ms, n.last_seen_ms, n.last_test_ms, "                 \
    "n.commissioned_ms, n.decommissioned_ms, n.decommissioned_by, h.zone_id, h.address, h.contact, h.phone " \
    "FROM nodes n JOIN households h ON h.id = n.household_id WHERE ?2 IS NULL OR h.zone_id = ?2), "          \
    "p(node, kind, since, detail) AS ("                                                                      \
    "SELECT t.node_id, t.kind, t.opened_ms, t.detail FROM troubles t JOIN n ON n.id = t.node_id "            \
    "WHERE t.cleared_ms IS NULL AND n.decommissioned_ms = 0 AND t.kind IN ('offline', 'low_battery', "       \
    "'sensor_fault', 'smoke_fault', 'tamper', 'overdue_test') "                                              \
    "UNION ALL SELECT n.id, 'overdue_test', max(n.last_test_ms, n.commissioned_ms) + 2592000000, "           \
    "'last passed test ' || CASE WHEN n.last_test_ms = 0 THEN 'never' ELSE strftime('%Y-%m-%d', "            \
    "n.last_test_ms / 1000, 'unixepoch') END FROM n WHERE n.decommissioned_ms = 0 AND n.commissioned_ms > "  \
    "0 "                                                                                                     \
    "AND max(n.last_test_ms, n.commissioned_ms) < ?1 - 2592000000 AND NOT EXISTS (SELECT 1 FROM troubles t " \
    "WHERE t.node_id = n.id AND t.kind = 'overdue_test' AND t.cleared_ms IS NULL) "                          \
    "UNION ALL SELECT n.id, 'uncommissioned', n.created_ms, CASE WHEN n.last_seen_ms = 0 THEN "              \
    "'never connected' ELSE 'last heard ' || strftime('%Y-%m-%d %H:%M', n.last_seen_ms / 1000, "             \
    "'unixepoch') END || COALESCE('; last test: ' || (SELECT result FROM node_tests x WHERE x.node_id = "    \
    "n.id AND x.done_ms IS NOT NULL ORDER BY x.id DESC LIMIT 1), '; not tested yet') FROM n "                \
    "WHERE n.decommissioned_ms = 0 AND n.commissioned_ms = 0 "                                               \
    "UNION ALL SELECT n.id, 'still_publishing', n.last_seen_ms, 'decommissioned ' || strftime('%Y-%m-%d "    \
    "%H:%M', n.decommissioned_ms / 1000, 'unixepoch') || ' by ' || n.decommissioned_by || ', heard ' || "    \
    "strftime('%Y-%m-%d %H:%M', n.last_seen_ms / 1000, 'unixepoch') FROM n WHERE n.decommissioned_ms > 0 "   \
    "AND n.last_seen_ms > n.decommissioned_ms) "                                                             \
    "SELECT n.household_id, n.zone_id, n.address, n.contact, n.phone, p.node, p.kind, p.since, p.detail "    \
    "FROM p JOIN n ON n.id = p.node ORDER BY n.household_id, p.node, CASE p.kind "                           \
    "WHEN 'still_publishing' THEN 0 WHEN 'offline' THEN 1 WHEN 'tamper' THEN 2 WHEN 'sensor_fault' THEN 3 "  \
    "WHEN 'smoke_fault' THEN 4 WHEN 'low_battery' THEN 5 WHEN 'overdue_test' THEN 6 ELSE 7 END"

/* One sentence per problem kind: what the technician should do. */
struct techview_advice {
    const char *kind;
    const char *action;
};

/* The advice for kind ("" for a kind this build does not know). */
static inline const char *techview_action(const char *kind)
{
    static const struct techview_advice table[] = {
        {"still_publishing",
         "Its credentials were revoked but it still sends: make sure the broker runs with "
         "the files firewatchctl broker config writes, then collect the node."},
        {"offline", "Check the node's power and network, then look for its login in the broker log; "
                    "the trouble clears by itself when it reconnects."},
        {"tamper", "Visit the household and check the node's case and mounting, then clear the latch with "
                   "firewatchctl trouble resolve."},
        {"sensor_fault", "Check the temperature sensor and its wiring, then run a commissioning test; "
                         "replace the node if the test still fails."},
        {"smoke_fault", "Check the smoke detector and its interconnect wiring, then run a commissioning "
                        "test."},
        {"low_battery", "Replace the battery (or check the mains supply) and confirm the next reading shows "
                        "at least 25 %."},
        {"overdue_test", "Press the node's test button or run firewatchctl node test; a passed test resets "
                         "the 30-day clock."},
        {"uncommissioned", "Install and power the node with its config, then run firewatchctl node test; "
                           "until a test passes it counts against the zone's readiness."},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(table[i].kind, kind) == 0)
            return table[i].action;
    return "";
}

static inline void techview_str(cJSON *o, const char *key, sqlite3_stmt *q, int col)
{
    const unsigned char *t = sqlite3_column_text(q, col);
    cJSON_AddStringToObject(o, key, t ? (const char *)t : "");
}

/* Runs the view on db at now_ms (zone NULL: every zone) and returns a JSON
 * array of households, each {"household", "zone", "address", "contact",
 * "phone", "problems": [{"node", "problem", "since_ms", "detail",
 * "action"}]}, owned by the caller (cJSON_Delete). NULL with *err set to a
 * negative errno (-EIO: the query failed, -ENOMEM). */
static inline cJSON *techview_collect(sqlite3 *db, int64_t now_ms, const char *zone, int *err)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db, TECHVIEW_SQL, -1, &q, NULL) != SQLITE_OK) {
        *err = -EIO;
        return NULL;
    }
    sqlite3_bind_int64(q, 1, now_ms);
    if (zone)
        sqlite3_bind_text(q, 2, zone, -1, SQLITE_TRANSIENT);
    cJSON *arr = cJSON_CreateArray(), *problems = NULL;
    char last[64] = "";
    int rc;
    while (arr && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        const unsigned char *hh = sqlite3_column_text(q, 0);
        if (!problems || strcmp(last, hh ? (const char *)hh : "") != 0) {
            snprintf(last, sizeof last, "%s", hh ? (const char *)hh : "");
            cJSON *h = cJSON_CreateObject();
            techview_str(h, "household", q, 0);
            techview_str(h, "zone", q, 1);
            techview_str(h, "address", q, 2);
            techview_str(h, "contact", q, 3);
            techview_str(h, "phone", q, 4);
            problems = cJSON_AddArrayToObject(h, "problems");
            cJSON_AddItemToArray(arr, h);
        }
        cJSON *p = cJSON_CreateObject();
        const unsigned char *kind = sqlite3_column_text(q, 6);
        techview_str(p, "node", q, 5);
        techview_str(p, "problem", q, 6);
        cJSON_AddNumberToObject(p, "since_ms", (double)sqlite3_column_int64(q, 7));
        techview_str(p, "detail", q, 8);
        cJSON_AddStringToObject(p, "action", techview_action(kind ? (const char *)kind : ""));
        cJSON_AddItemToArray(problems, p);
    }
    sqlite3_finalize(q);
    if (!arr) {
        *err = -ENOMEM;
        return NULL;
    }
    if (rc != SQLITE_DONE) {
        cJSON_Delete(arr);
        *err = -EIO;
        return NULL;
    }
    *err = 0;
    return arr;
}

#endif
