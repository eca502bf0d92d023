/*
 * readiness.h - how ready a zone is to raise and answer an alarm, pure.
 *
 * Per zone, a score 0-100 out of four parts, with its reasons in words:
 *   coverage 40  share of households with at least one healthy detector
 *   health   30  share of nodes that are healthy
 *   tested   20  share of nodes with a passed test in the last 30 days
 *   response 10  median acknowledge time of recent incidents and drills:
 *                full marks at or under 2 minutes, falling linearly to 0 at
 *                10 minutes; 0 when there is nothing to measure (a zone
 *                that never ran a drill cannot show it responds)
 * A node is healthy when it is commissioned, online, its battery is OK and it
 * has no open fault or tamper trouble; uncommissioned nodes are neither
 * healthy nor tested.
 * Levels: ready >= 90, attention 70-89, not ready < 70. A site's score is
 * the household-weighted mean of its zones. docs/internals/readiness.md.
 *
 * Inputs are plain values the daemon gathers (households from the store,
 * node health from the supervisor, ack times from past incidents); the
 * functions do no I/O and read no clock.
 */
#ifndef FIREWATCH_HUB_READINESS_H
#define FIREWATCH_HUB_READINESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define READINESS_TEST_MAX_AGE_MS (30LL * 24 * 3600 * 1000) /* a test counts for 30 days */
#define READINESS_RESPONSE_FULL_MS (2LL * 60 * 1000)        /* full marks at or under */
#define READINESS_RESPONSE_ZERO_MS (10LL * 60 * 1000)       /* no marks at or over */
#define READINESS_READY 90
#define READINESS_ATTENTION 70
#define READINESS_RESPONSE_MAX 64 /* response samples one zone may pass */
#define READINESS_REASONS_MAX 8
#define READINESS_REASON_MAX 112 /* one reason, with the NUL */

enum readiness_level { READINESS_LEVEL_NOT_READY, READINESS_LEVEL_ATTENTION, READINESS_LEVEL_READY };

/* One node of the zone. household is an index in [0, households). */
struct readiness_node {
    uint32_t household;
    bool commissioned;
    bool online;
    bool battery_ok;
    bool trouble_free;    /* no open sensor_fault, smoke_fault or tamper (offline, battery
                             and tests have their own fields, so nothing counts twice) */
    int64_t last_pass_ms; /* last passed test, 0 if never */
};

struct readiness_zone_input {
    uint32_t households; /* every household of the zone, with or without nodes */
    const struct readiness_node *nodes;
    size_t n_nodes;
    const int64_t *response_ms; /* acknowledge minus start of the last incidents and drills */
    size_t n_response; /* the caller picks how many (<= READINESS_RESPONSE_MAX); 0: none to measure */
};

/* A zone's result. Points are the weighted parts (coverage out of 40 ...),
 * score their sum rounded to the nearest integer. */
struct readiness_result {
    unsigned score;
    enum readiness_level level;
    double coverage_pts, health_pts, tested_pts, response_pts;
    uint32_t households, covered; /* covered: with a healthy detector */
    uint32_t nodes, healthy, tested, uncommissioned, offline, battery_low, troubled;
    int64_t median_response_ms; /* -1 when no data */
    size_t n_reasons;           /* empty when the score is 100 */
    char reasons[READINESS_REASONS_MAX][READINESS_REASON_MAX];
};

struct readiness_site_result {
    unsigned score;
    enum readiness_level level;
    uint32_t households;
};

/* Scores one zone at now_ms into *out. Offline, battery and trouble counts
 * are over commissioned nodes; uncommissioned ones are counted apart. Returns
 * 0, -EINVAL (NULL arguments, a household index out of range, a negative or
 * too many response samples), or -ENOMEM. */
int readiness_zone(const struct readiness_zone_input *in, int64_t now_ms, struct readiness_result *out);

/* The household-weighted mean of n zone results (zones without households
 * weigh nothing; a site with no households scores 0). Returns 0 or -EINVAL. */
int readiness_site(const struct readiness_result *zones, size_t n, struct readiness_site_result *out);

/* The level of a score. */
enum readiness_level readiness_level_of(unsigned score);

/* "ready", "attention", "not_ready"; NULL when out of range. */
const char *readiness_level_name(enum readiness_level level);

#endif
