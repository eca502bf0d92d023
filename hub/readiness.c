/*
 * readiness.c - zone and site readiness scores (see readiness.h and
 * docs/internals/readiness.md).
 *
 * The score is computed once from counts, and the reasons are generated from
 * the same counts through one table of English sentences (singular and
 * plural), so what the report says always matches the number it explains.
 */
#include "readiness.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define W_COVERAGE 40.0
#define W_HEALTH 30.0
#define W_TESTED 20.0
#define W_RESPONSE 10.0

enum reason {
    R_NO_HOUSEHOLDS,
    R_UNCOVERED,
    R_NO_NODES,
    R_UNCOMMISSIONED,
    R_OFFLINE,
    R_BATTERY,
    R_TROUBLE,
    R_UNTESTED,
    R_NO_RESPONSE,
    R_SLOW_RESPONSE,
    R_COUNT
};

/* Each sentence takes (count, total) except where noted; one and many. */
static const struct {
    const char *one, *many;
} reason_text[R_COUNT] = {
    [R_NO_HOUSEHOLDS] = {"the zone has no households", "the zone has no households"},
    [R_UNCOVERED] = {"%u of %u households has no healthy detector",
                     "%u of %u households have no healthy detector"},
    [R_NO_NODES] = {"the zone has no detectors", "the zone has no detectors"},
    [R_UNCOMMISSIONED] = {"%u of %u detectors is not commissioned",
                          "%u of %u detectors are not commissioned"},
    [R_OFFLINE] = {"%u of %u detectors is offline", "%u of %u detectors are offline"},
    [R_BATTERY] = {"%u of %u detectors has a low battery", "%u of %u detectors have a low battery"},
    [R_TROUBLE] = {"%u of %u detectors has a fault or tamper trouble",
                   "%u of %u detectors have a fault or tamper trouble"},
    [R_UNTESTED] = {"%u of %u detectors has no passed test in the last 30 days",
                    "%u of %u detectors have no passed test in the last 30 days"},
    [R_NO_RESPONSE] = {"no incident or drill yet to measure response time: run a drill",
                       "no incident or drill yet to measure response time: run a drill"},
    /* (minutes, seconds) */
    [R_SLOW_RESPONSE] = {"median response time is %u min %02u s; full marks need under 2 minutes",
                         "median response time is %u min %02u s; full marks need under 2 minutes"},
};

static const char *const level_names[] = {
    [READINESS_LEVEL_NOT_READY] = "not_ready",
    [READINESS_LEVEL_ATTENTION] = "attention",
    [READINESS_LEVEL_READY] = "ready",
};

const char *readiness_level_name(enum readiness_level level)
{
    return (unsigned)level < sizeof level_names / sizeof level_names[0] ? level_names[level] : NULL;
}

enum readiness_level readiness_level_of(unsigned score)
{
    if (score >= READINESS_READY)
        return READINESS_LEVEL_READY;
    if (score >= READINESS_ATTENTION)
        return READINESS_LEVEL_ATTENTION;
    return READINESS_LEVEL_NOT_READY;
}

static void add_reason(struct readiness_result *out, enum reason r, unsigned a, unsigned b)
{
    if (out->n_reasons >= READINESS_REASONS_MAX)
        return;
    const char *fmt = a == 1 ? reason_text[r].one : reason_text[r].many;
    /* The format comes from the table above, never from input. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(out->reasons[out->n_reasons++], READINESS_REASON_MAX, fmt, a, b);
#pragma GCC diagnostic pop
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Median of the samples; the mean of the middle two for an even count. */
static int64_t median(const int64_t *v, size_t n)
{
    int64_t s[READINESS_RESPONSE_MAX];
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_i64);
    return n % 2 ? s[n / 2] : s[n / 2 - 1] + (s[n / 2] - s[n / 2 - 1]) / 2;
}

/* Share of the response marks for a median acknowledge time. */
static double response_share(int64_t median_ms)
{
    if (median_ms <= READINESS_RESPONSE_FULL_MS)
        return 1.0;
    if (median_ms >= READINESS_RESPONSE_ZERO_MS)
        return 0.0;
    return (double)(READINESS_RESPONSE_ZERO_MS - median_ms) /
           (double)(READINESS_RESPONSE_ZERO_MS - READINESS_RESPONSE_FULL_MS);
}

static unsigned round_score(double points)
{
    /* The epsilon keeps 89.5 computed as 89.49999... from rounding down. */
    double r = floor(points + 0.5 + 1e-9);
    return r < 0 ? 0 : r > 100 ? 100 : (unsigned)r;
}

int readiness_zone(const struct readiness_zone_input *in, int64_t now_ms, struct readiness_result *out)
{
    if (!in || !out || (in->n_nodes > 0 && !in->nodes) || (in->n_response > 0 && !in->response_ms) ||
        in->n_response > READINESS_RESPONSE_MAX || in->n_nodes > UINT32_MAX)
        return -EINVAL;
    for (size_t i = 0; i < in->n_nodes; i++)
        if (in->nodes[i].household >= in->households)
            return -EINVAL;
    for (size_t i = 0; i < in->n_response; i++)
        if (in->response_ms[i] < 0)
            return -EINVAL;

    memset(out, 0, sizeof *out);
    out->households = in->households;
    out->nodes = (uint32_t)in->n_nodes;
    bool *covered = in->households ? calloc(in->households, sizeof *covered) : NULL;
    if (in->households && !covered)
        return -ENOMEM;
    for (size_t i = 0; i < in->n_nodes; i++) {
        const struct readiness_node *nd = &in->nodes[i];
        if (!nd->commissioned) {
            out->uncommissioned++;
            continue; /* neither healthy nor tested, whatever it reports */
        }
        out->offline += !nd->online;
        out->battery_low += !nd->battery_ok;
        out->troubled += !nd->trouble_free;
        if (nd->last_pass_ms > 0 && now_ms - nd->last_pass_ms <= READINESS_TEST_MAX_AGE_MS)
            out->tested++;
        if (nd->online && nd->battery_ok && nd->trouble_free) {
            out->healthy++;
            if (!covered[nd->household]) {
                covered[nd->household] = true;
                out->covered++;
            }
        }
    }
    free(covered);

    double cov = in->households ? (double)out->covered / in->households : 0.0;
    double health = out->nodes ? (double)out->healthy / out->nodes : 0.0;
    double tested = out->nodes ? (double)out->tested / out->nodes : 0.0;
    out->median_response_ms = in->n_response ? median(in->response_ms, in->n_response) : -1;
    double resp = in->n_response ? response_share(out->median_response_ms) : 0.0;
    out->coverage_pts = W_COVERAGE * cov;
    out->health_pts = W_HEALTH * health;
    out->tested_pts = W_TESTED * tested;
    out->response_pts = W_RESPONSE * resp;
    out->score = round_score(out->coverage_pts + out->health_pts + out->tested_pts + out->response_pts);
    out->level = readiness_level_of(out->score);

    /* Reasons, heaviest part first. */
    if (in->households == 0)
        add_reason(out, R_NO_HOUSEHOLDS, 0, 0);
    else if (out->covered < out->households)
        add_reason(out, R_UNCOVERED, out->households - out->covered, out->households);
    if (out->nodes == 0) {
        add_reason(out, R_NO_NODES, 0, 0);
    } else {
        if (out->uncommissioned)
            add_reason(out, R_UNCOMMISSIONED, out->uncommissioned, out->nodes);
        if (out->offline)
            add_reason(out, R_OFFLINE, out->offline, out->nodes);
        if (out->battery_low)
            add_reason(out, R_BATTERY, out->battery_low, out->nodes);
        if (out->troubled)
            add_reason(out, R_TROUBLE, out->troubled, out->nodes);
        if (out->tested < out->nodes)
            add_reason(out, R_UNTESTED, out->nodes - out->tested, out->nodes);
    }
    if (in->n_response == 0) {
        add_reason(out, R_NO_RESPONSE, 0, 0);
    } else if (out->median_response_ms > READINESS_RESPONSE_FULL_MS) {
        int64_t s = out->median_response_ms / 1000;
        add_reason(out, R_SLOW_RESPONSE, (unsigned)(s / 60), (unsigned)(s % 60));
    }
    return 0;
}

int readiness_site(const struct readiness_result *zones, size_t n, struct readiness_site_result *out)
{
    if (!out || (n > 0 && !zones))
        return -EINVAL;
    double weighted = 0;
    uint64_t households = 0;
    for (size_t i = 0; i < n; i++) {
        weighted += (double)zones[i].score * zones[i].households;
        households += zones[i].households;
    }
    memset(out, 0, sizeof *out);
    out->households = households > UINT32_MAX ? UINT32_MAX : (uint32_t)households;
    out->score = households ? round_score(weighted / (double)households) : 0;
    out->level = readiness_level_of(out->score);
    return 0;
}
