/*
 * test_readiness.c - zone and site scores against worked numbers: the four
 * weighted parts, the response scale, levels at their boundaries, reasons in
 * words, uncommissioned nodes, and household weighting across a site.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "readiness.h"

#define T0 INT64_C(1764950400000)
#define MIN (60 * INT64_C(1000))
#define DAY (24 * 60 * MIN)

static struct readiness_result res;

static struct readiness_node healthy(uint32_t household)
{
    return (struct readiness_node){.household = household,
                                   .commissioned = true,
                                   .online = true,
                                   .battery_ok = true,
                                   .trouble_free = true,
                                   .last_pass_ms = T0 - 3 * DAY};
}

static bool near(double a, double b)
{
    return fabs(a - b) < 0.001;
}

static bool has_reason(const char *text)
{
    for (size_t i = 0; i < res.n_reasons; i++)
        if (strcmp(res.reasons[i], text) == 0)
            return true;
    return false;
}

static void print_reasons(void)
{
    for (size_t i = 0; i < res.n_reasons; i++)
        printf("#   reason: %s\n", res.reasons[i]);
}

/* 12 households, 14 detectors:
 *   households 0-9: one healthy, tested detector each            (10)
 *   household 10: its only detector is offline (tested)           (1)
 *   household 11: its only detector has a low battery (untested)  (1)
 *   household 0: a second detector, not commissioned              (1)
 *   household 1: a second detector with a sensor fault (untested) (1)
 * Response: acks after 60 s, 90 s and 5 min; median 90 s.
 *   coverage 40 x 10/12 = 33.33, health 30 x 10/14 = 21.43,
 *   tested 20 x 11/14 = 15.71, response 10 -> 80.48 -> 80, attention. */
static void test_worked_zone(void)
{
    struct readiness_node nodes[14];
    for (uint32_t h = 0; h < 10; h++)
        nodes[h] = healthy(h);
    nodes[10] = healthy(10);
    nodes[10].online = false;
    nodes[11] = healthy(11);
    nodes[11].battery_ok = false;
    nodes[11].last_pass_ms = T0 - 40 * DAY;
    nodes[12] = healthy(0);
    nodes[12].commissioned = false;
    nodes[13] = healthy(1);
    nodes[13].trouble_free = false;
    nodes[13].last_pass_ms = 0;
    int64_t resp[] = {60000, 5 * MIN, 90000};
    struct readiness_zone_input in = {
        .households = 12, .nodes = nodes, .n_nodes = 14, .response_ms = resp, .n_response = 3};
    CHECK_INT(readiness_zone(&in, T0, &res), 0);
    CHECK_INT(res.covered, 10);
    CHECK_INT(res.healthy, 10);
    CHECK_INT(res.tested, 11);
    CHECK_INT(res.median_response_ms, 90000);
    CHECK(near(res.coverage_pts, 40.0 * 10 / 12));
    CHECK(near(res.health_pts, 30.0 * 10 / 14));
    CHECK(near(res.tested_pts, 20.0 * 11 / 14));
    CHECK(near(res.response_pts, 10.0));
    CHECK_INT(res.score, 80);
    CHECK_INT(res.level, READINESS_LEVEL_ATTENTION);
    CHECK(has_reason("2 of 12 households have no healthy detector"));
    CHECK(has_reason("1 of 14 detectors is not commissioned"));
    CHECK(has_reason("1 of 14 detectors is offline"));
    CHECK(has_reason("1 of 14 detectors has a low battery"));
    CHECK(has_reason("1 of 14 detectors has a fault or tamper trouble"));
    CHECK(has_reason("3 of 14 detectors have no passed test in the last 30 days"));
    CHECK_INT(res.n_reasons, 6);
    if (th_failures())
        print_reasons();
}

static void test_perfect_zone_and_no_response_data(void)
{
    struct readiness_node nodes[] = {healthy(0), healthy(1), healthy(2), healthy(2)};
    int64_t resp[] = {45000};
    struct readiness_zone_input in = {
        .households = 3, .nodes = nodes, .n_nodes = 4, .response_ms = resp, .n_response = 1};
    CHECK_INT(readiness_zone(&in, T0, &res), 0);
    CHECK_INT(res.score, 100);
    CHECK_INT(res.level, READINESS_LEVEL_READY);
    CHECK_INT(res.n_reasons, 0);
    /* Nothing measured: the response part scores 0 and says what to do;
     * everything else perfect is exactly ready. */
    in.n_response = 0;
    CHECK_INT(readiness_zone(&in, T0, &res), 0);
    CHECK_INT(res.score, 90);
    CHECK_INT(res.level, READINESS_LEVEL_READY);
    CHECK_INT(res.median_response_ms, -1);
    CHECK_INT(res.n_reasons, 1);
    CHECK(has_reason("no incident or drill yet to measure response time: run a drill"));
}

static void test_response_scale(void)
{
    static const struct {
        int64_t samples[4];
        size_t n;
        int64_t median_ms;
        double points;
    } rows[] = {
        {{0}, 1, 0, 10.0},
        {{2 * MIN}, 1, 2 * MIN, 10.0}, /* at 2 minutes: still full marks */
        {{6 * MIN}, 1, 6 * MIN, 5.0},  /* halfway down the 2-10 minute slope */
        {{8 * MIN}, 1, 8 * MIN, 2.5},
        {{10 * MIN}, 1, 10 * MIN, 0.0},
        {{60 * MIN}, 1, 60 * MIN, 0.0},
        {{9 * MIN, MIN, 3 * MIN}, 3, 3 * MIN, 8.75},           /* median of three, unsorted */
        {{MIN, 2 * MIN, 4 * MIN, 30 * MIN}, 4, 3 * MIN, 8.75}, /* even: mean of the middle two */
    };
    struct readiness_node nodes[] = {healthy(0)};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct readiness_zone_input in = {.households = 1,
                                          .nodes = nodes,
                                          .n_nodes = 1,
                                          .response_ms = rows[i].samples,
                                          .n_response = rows[i].n};
        int rc = readiness_zone(&in, T0, &res);
        bool ok =
            rc == 0 && res.median_response_ms == rows[i].median_ms && near(res.response_pts, rows[i].points);
        th_report(ok, "response median %lld s -> %.2f points (got %.2f)",
                  (long long)(rows[i].median_ms / 1000), rows[i].points, res.response_pts);
    }
    int64_t slow[] = {6 * MIN + 5000};
    struct readiness_zone_input in = {
        .households = 1, .nodes = nodes, .n_nodes = 1, .response_ms = slow, .n_response = 1};
    readiness_zone(&in, T0, &res);
    CHECK(has_reason("median response time is 6 min 05 s; full marks need under 2 minutes"));
}

static void test_levels(void)
{
    static const struct {
        unsigned score;
        enum readiness_level level;
        const char *name;
    } rows[] = {
        {100, READINESS_LEVEL_READY, "ready"},        {90, READINESS_LEVEL_READY, "ready"},
        {89, READINESS_LEVEL_ATTENTION, "attention"}, {70, READINESS_LEVEL_ATTENTION, "attention"},
        {69, READINESS_LEVEL_NOT_READY, "not_ready"}, {0, READINESS_LEVEL_NOT_READY, "not_ready"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        enum readiness_level l = readiness_level_of(rows[i].score);
        th_report(l == rows[i].level && strcmp(readiness_level_name(l), rows[i].name) == 0, "score %u is %s",
                  rows[i].score, rows[i].name);
    }
    CHECK(readiness_level_name((enum readiness_level)7) == NULL);
}

static void test_test_window(void)
{
    struct readiness_node nodes[] = {healthy(0), healthy(0), healthy(0), healthy(0)};
    nodes[0].last_pass_ms = T0 - 30 * DAY;     /* exactly 30 days: counts */
    nodes[1].last_pass_ms = T0 - 30 * DAY - 1; /* a millisecond more: does not */
    nodes[2].last_pass_ms = 0;                 /* never */
    nodes[3].last_pass_ms = T0;
    struct readiness_zone_input in = {.households = 1, .nodes = nodes, .n_nodes = 4};
    CHECK_INT(readiness_zone(&in, T0, &res), 0);
    CHECK_INT(res.tested, 2);
    CHECK(near(res.tested_pts, 10.0));
    CHECK(has_reason("2 of 4 detectors have no passed test in the last 30 days"));
}

static void test_uncommissioned_count_against(void)
{
    /* Online, tested, healthy in every other way, but not commissioned. */
    struct readiness_node nodes[] = {healthy(0), healthy(1)};
    nodes[1].commissioned = false;
    int64_t resp[] = {MIN};
    struct readiness_zone_input in = {
        .households = 2, .nodes = nodes, .n_nodes = 2, .response_ms = resp, .n_response = 1};
    CHECK_INT(readiness_zone(&in, T0, &res), 0);
    CHECK_INT(res.covered, 1);
    CHECK_INT(res.healthy, 1);
    CHECK_INT(res.tested, 1);
    CHECK_INT(res.uncommissioned, 1);
    CHECK_INT(res.score, 55); /* 20 + 15 + 10 + 10 */
    CHECK_INT(res.level, READINESS_LEVEL_NOT_READY);
    CHECK(has_reason("1 of 2 households has no healthy detector"));
    CHECK(has_reason("1 of 2 detectors is not commissioned"));
    CHECK(has_reason("1 of 2 detectors has no passed test in the last 30 days"));
}

static void test_empty_zones(void)
{
    struct readiness_zone_input in = {.households = 0};
    CHECK_INT(readiness_zone(&in, T0, &res), 0);
    CHECK_INT(res.score, 0);
    CHECK(has_reason("the zone has no households"));
    in.households = 3;
    CHECK_INT(readiness_zone(&in, T0, &res), 0);
    CHECK_INT(res.score, 0);
    CHECK(has_reason("3 of 3 households have no healthy detector"));
    CHECK(has_reason("the zone has no detectors"));
    CHECK_INT(res.level, READINESS_LEVEL_NOT_READY);
}

static void test_bad_input(void)
{
    struct readiness_node nodes[] = {healthy(5)};
    struct readiness_zone_input in = {.households = 5, .nodes = nodes, .n_nodes = 1};
    CHECK_INT(readiness_zone(&in, T0, &res), -EINVAL);
    in.households = 6;
    int64_t neg[] = {-1};
    in.response_ms = neg;
    in.n_response = 1;
    CHECK_INT(readiness_zone(&in, T0, &res), -EINVAL);
    in.n_response = READINESS_RESPONSE_MAX + 1;
    CHECK_INT(readiness_zone(&in, T0, &res), -EINVAL);
    CHECK_INT(readiness_zone(NULL, T0, &res), -EINVAL);
    CHECK_INT(readiness_site(NULL, 1, NULL), -EINVAL);
}

static void test_site_household_weighted(void)
{
    static const struct {
        unsigned scores[3];
        uint32_t households[3];
        size_t n;
        unsigned site;
    } rows[] = {
        {{100, 50}, {10, 30}, 2, 63},    /* (1000 + 1500) / 40 = 62.5; a plain mean would say 75 */
        {{100, 50}, {30, 10}, 2, 88},    /* (3000 + 500) / 40 = 87.5 */
        {{90, 70, 0}, {5, 5, 0}, 3, 80}, /* a zone without households weighs nothing */
        {{80}, {0}, 1, 0},               /* no households at all */
        {{0}, {0}, 0, 0},                /* no zones */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct readiness_result zones[3];
        memset(zones, 0, sizeof zones);
        for (size_t k = 0; k < rows[i].n; k++) {
            zones[k].score = rows[i].scores[k];
            zones[k].households = rows[i].households[k];
        }
        struct readiness_site_result site;
        int rc = readiness_site(zones, rows[i].n, &site);
        th_report(rc == 0 && site.score == rows[i].site && site.level == readiness_level_of(rows[i].site),
                  "site row %zu -> %u (want %u)", i, site.score, rows[i].site);
    }
}

TH_MAIN(TH_TEST(test_worked_zone), TH_TEST(test_perfect_zone_and_no_response_data),
        TH_TEST(test_response_scale), TH_TEST(test_levels), TH_TEST(test_test_window),
        TH_TEST(test_uncommissioned_count_against), TH_TEST(test_empty_zones), TH_TEST(test_bad_input),
        TH_TEST(test_site_household_weighted))
