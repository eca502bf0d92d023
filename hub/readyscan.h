/*
 * readyscan.h - readiness from the database: gathers each zone's households,
 * node health, tests and acknowledge times with SQL and scores them with the
 * pure readiness module. firewatchctl prints it; the hub's writer thread
 * records a snapshot every hour (table readiness) for the monthly report.
 */
#ifndef FIREWATCH_HUB_READYSCAN_H
#define FIREWATCH_HUB_READYSCAN_H

#include <stddef.h>
#include <stdint.h>

#include "firewatch/protocol.h"
#include "readiness.h"
#include "store.h"

struct readyscan_zone {
    char id[FW_ID_MAX + 1];
    char site[FW_ID_MAX + 1];
    struct readiness_result r;
};

/* Scores every zone (only that one when only is not NULL) at now_ms, ordered
 * by site and zone. Returns the number of zones with *out set to a malloc'd
 * array the caller frees (NULL when 0), or a negative errno. */
int readyscan_zones(struct store *s, const char *only, int64_t now_ms, struct readyscan_zone **out);

/* Scores every zone and appends one row per zone to the readiness table, in
 * one transaction. Returns the number of zones or a negative errno. */
int readyscan_snapshot(struct store *s, int64_t now_ms);

#endif
