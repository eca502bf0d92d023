/*
 * readyscan.c - see readyscan.h. Three statements, prepared once per call
 * and reused for every zone: households, nodes with their health, and the
 * last ten acknowledge times.
 */
#include "readyscan.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RESPONSES 10

struct scan {
    sqlite3_stmt *hh, *nodes, *resp;
    char (*hh_ids)[FW_ID_MAX + 1];
    size_t cap_hh;
    struct readiness_node *rn;
    size_t cap_rn;
};

static void *grow(void *p, size_t *cap, size_t want, size_t elem)
{
    if (want <= *cap)
        return p;
    size_t n = *cap ? *cap : 32;
    while (n < want)
        n *= 2;
    void *q = realloc(p, n * elem);
    if (q)
        *cap = n;
    return q;
}

/* Scores one zone. Returns 0 or a negative errno. */
static int score_zone(struct scan *sc, const char *zone, int64_t now, struct readiness_result *out)
{
    int64_t resp[RESPONSES];
    struct readiness_zone_input in = {.response_ms = resp};
    uint32_t n_hh = 0;

    sqlite3_reset(sc->hh);
    sqlite3_bind_text(sc->hh, 1, zone, -1, SQLITE_STATIC);
    while (sqlite3_step(sc->hh) == SQLITE_ROW) {
        void *p = grow(sc->hh_ids, &sc->cap_hh, n_hh + 1, sizeof *sc->hh_ids);
        if (!p)
            return -ENOMEM;
        sc->hh_ids = p;
        const unsigned char *t = sqlite3_column_text(sc->hh, 0);
        snprintf(sc->hh_ids[n_hh++], FW_ID_MAX + 1, "%s", t ? (const char *)t : "");
    }
    in.households = n_hh;

    /* Households come sorted, and so do the nodes' households: one walk. */
    sqlite3_reset(sc->nodes);
    sqlite3_bind_text(sc->nodes, 1, zone, -1, SQLITE_STATIC);
    uint32_t idx = 0;
    while (sqlite3_step(sc->nodes) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(sc->nodes, 0);
        const char *hh = t ? (const char *)t : "";
        while (idx < n_hh && strcmp(sc->hh_ids[idx], hh) < 0)
            idx++;
        if (idx >= n_hh || strcmp(sc->hh_ids[idx], hh) != 0)
            continue;
        void *p = grow(sc->rn, &sc->cap_rn, in.n_nodes + 1, sizeof *sc->rn);
        if (!p)
            return -ENOMEM;
        sc->rn = p;
        struct readiness_node *rn = &sc->rn[in.n_nodes++];
        rn->household = idx;
        rn->commissioned = sqlite3_column_int(sc->nodes, 1) != 0;
        rn->online = sqlite3_column_int(sc->nodes, 2) != 0;
        rn->battery_ok = sqlite3_column_int(sc->nodes, 3) != 0;
        rn->trouble_free = sqlite3_column_int(sc->nodes, 4) != 0;
        rn->last_pass_ms = sqlite3_column_int64(sc->nodes, 5);
    }
    in.nodes = sc->rn;

    sqlite3_reset(sc->resp);
    sqlite3_bind_text(sc->resp, 1, zone, -1, SQLITE_STATIC);
    while (in.n_response < RESPONSES && sqlite3_step(sc->resp) == SQLITE_ROW)
        resp[in.n_response++] = sqlite3_column_int64(sc->resp, 0);
    return readiness_zone(&in, now, out);
}

int readyscan_zones(struct store *s, const char *only, int64_t now_ms, struct readyscan_zone **out)
{
    sqlite3 *db = store_handle(s);
    struct scan sc;
    memset(&sc, 0, sizeof sc);
    sqlite3_stmt *zones = NULL;
    struct readyscan_zone *zs = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    *out = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT id, site_id FROM zones WHERE ?1 IS NULL OR id = ?1 ORDER BY site_id, id",
                           -1, &zones, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT id FROM households WHERE zone_id = ?1 ORDER BY id", -1, &sc.hh,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(
            db,
            "SELECT n.household_id, n.commissioned_ms > 0, n.online, n.batt_pct >= 20, NOT EXISTS "
            "(SELECT 1 FROM troubles t WHERE t.node_id = n.id AND t.cleared_ms IS NULL), "
            "n.last_test_ms FROM nodes n JOIN households h ON h.id = n.household_id "
            "WHERE h.zone_id = ?1 AND n.decommissioned_ms = 0 ORDER BY n.household_id",
            -1, &sc.nodes, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "SELECT acked_ms - CASE WHEN drill OR escalated_ms = 0 THEN opened_ms ELSE "
                           "escalated_ms END FROM incidents WHERE zone_id = ?1 AND acked_ms > 0 "
                           "ORDER BY id DESC LIMIT 10",
                           -1, &sc.resp, NULL) != SQLITE_OK) {
        rc = -EIO;
        goto done;
    }
    if (only)
        sqlite3_bind_text(zones, 1, only, -1, SQLITE_STATIC);
    while (rc == 0 && sqlite3_step(zones) == SQLITE_ROW) {
        void *p = grow(zs, &cap, n + 1, sizeof *zs);
        if (!p) {
            rc = -ENOMEM;
            break;
        }
        zs = p;
        struct readyscan_zone *z = &zs[n];
        memset(z, 0, sizeof *z);
        const unsigned char *id = sqlite3_column_text(zones, 0), *site = sqlite3_column_text(zones, 1);
        snprintf(z->id, sizeof z->id, "%s", id ? (const char *)id : "");
        snprintf(z->site, sizeof z->site, "%s", site ? (const char *)site : "");
        rc = score_zone(&sc, z->id, now_ms, &z->r);
        n++;
    }
done:
    sqlite3_finalize(zones);
    sqlite3_finalize(sc.hh);
    sqlite3_finalize(sc.nodes);
    sqlite3_finalize(sc.resp);
    free(sc.hh_ids);
    free(sc.rn);
    if (rc < 0) {
        free(zs);
        return rc;
    }
    *out = zs;
    return (int)n;
}

int readyscan_snapshot(struct store *s, int64_t now_ms)
{
    struct readyscan_zone *zs = NULL;
    int n = readyscan_zones(s, NULL, now_ms, &zs);
    if (n <= 0)
        return n;
    sqlite3 *db = store_handle(s);
    sqlite3_stmt *q = NULL;
    int rc = store_begin(s);
    if (rc == 0 &&
        sqlite3_prepare_v2(db,
                           "INSERT INTO readiness(ts_ms, zone_id, site_id, score, level, households, "
                           "nodes, healthy, reasons) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                           -1, &q, NULL) != SQLITE_OK)
        rc = -EIO;
    for (int i = 0; rc == 0 && i < n; i++) {
        const struct readiness_result *r = &zs[i].r;
        char reasons[READINESS_REASONS_MAX * READINESS_REASON_MAX] = "";
        size_t used = 0;
        for (size_t k = 0; k < r->n_reasons && used < sizeof reasons; k++) {
            int w = snprintf(reasons + used, sizeof reasons - used, "%s%s", k ? "; " : "", r->reasons[k]);
            if (w < 0)
                break;
            used += (size_t)w;
        }
        sqlite3_reset(q);
        sqlite3_bind_int64(q, 1, now_ms);
        sqlite3_bind_text(q, 2, zs[i].id, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 3, zs[i].site, -1, SQLITE_STATIC);
        sqlite3_bind_int(q, 4, (int)r->score);
        sqlite3_bind_text(q, 5, readiness_level_name(r->level), -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 6, r->households);
        sqlite3_bind_int64(q, 7, r->nodes);
        sqlite3_bind_int64(q, 8, r->healthy);
        sqlite3_bind_text(q, 9, reasons, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(q) != SQLITE_DONE)
            rc = -EIO;
    }
    sqlite3_finalize(q);
    if (rc == 0)
        rc = store_commit(s);
    else if (store_commit(s) < 0) /* keep what was written; a failed commit rolls back */
        rc = -EIO;
    free(zs);
    return rc < 0 ? rc : n;
}
