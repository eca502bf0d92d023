/*
 * test_supervise.c - the trouble rules with injected time: late wills, the
 * silence window, battery hysteresis, faults and tamper latching, overdue
 * tests, the 4-hour repeat, restore after a restart, and that a tick never
 * returns more than fits.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "supervise.h"

#define T0 INT64_C(1764950400000)
#define SEC INT64_C(1000)
#define HOUR (3600 * SEC)
#define DAY (24 * HOUR)

static struct supervise_actions out;

static struct supervisor *setup(uint32_t interval_s)
{
    struct supervisor *sup = supervise_new(NULL);
    if (!sup)
        abort();
    struct supervise_node_info info = {.interval_s = interval_s, .commissioned = true, .commissioned_ms = T0};
    CHECK_INT(supervise_add_node(sup, "n1", &info, T0), 0);
    return sup;
}

static int status(struct supervisor *sup, bool online, uint32_t boot, int64_t now)
{
    struct fw_status st = {.online = online, .boot = boot, .has_birth_fields = online, .ts = now};
    return supervise_on_status(sup, "n1", &st, now, &out);
}

static int reading(struct supervisor *sup, unsigned batt, int64_t now)
{
    struct fw_reading rd = {.ts = now, .temp_c = 24.0, .batt_pct = (uint8_t)batt};
    return supervise_on_reading(sup, "n1", &rd, now, &out);
}

static int event(struct supervisor *sup, enum fw_event_type type, enum fw_cause cause, enum fw_result result,
                 int64_t now)
{
    struct fw_event ev = {.ts = now, .type = type, .cause = cause, .result = result};
    return supervise_on_event(sup, "n1", &ev, now, &out);
}

/* True when out holds exactly one action, of that kind and trouble. */
static bool only(enum supervise_action_kind kind, enum supervise_trouble t)
{
    return out.n == 1 && out.a[0].kind == kind && out.a[0].trouble == t && strcmp(out.a[0].node, "n1") == 0;
}

static bool is_open(struct supervisor *sup, enum supervise_trouble t)
{
    struct supervise_node_state st;
    return supervise_get(sup, "n1", &st) == 0 && (st.troubles & (1u << t));
}

static void test_late_will_cannot_mark_newer_session_offline(void)
{
    struct supervisor *sup = setup(60);
    CHECK_INT(status(sup, true, 5, T0 + SEC), 0);
    CHECK_INT(out.n, 0);
    CHECK_INT(status(sup, true, 6, T0 + 2 * SEC), 0);  /* reconnected before the broker noticed */
    CHECK_INT(status(sup, false, 5, T0 + 3 * SEC), 0); /* the old session's will, late */
    CHECK_INT(out.n, 0);
    CHECK(!is_open(sup, SUPERVISE_OFFLINE));
    struct supervise_node_state st;
    CHECK_INT(supervise_get(sup, "n1", &st), 0);
    CHECK(st.online);
    CHECK_INT(st.boot, 6);

    CHECK_INT(status(sup, false, 6, T0 + 4 * SEC), 0); /* this session's will */
    CHECK(only(SUPERVISE_ACT_OPEN, SUPERVISE_OFFLINE));
    CHECK(strstr(out.a[0].detail, "boot 6") != NULL);
    CHECK_INT(status(sup, true, 6, T0 + 5 * SEC), 0); /* a stale birth of the ended session */
    CHECK_INT(out.n, 0);
    CHECK(is_open(sup, SUPERVISE_OFFLINE));
    CHECK_INT(status(sup, true, 4, T0 + 6 * SEC), 0); /* an even older one */
    CHECK_INT(out.n, 0);
    CHECK_INT(status(sup, true, 7, T0 + 7 * SEC), 0); /* the new session */
    CHECK(only(SUPERVISE_ACT_CLOSE, SUPERVISE_OFFLINE));
    CHECK_INT(out.a[0].opened_ms, T0 + 4 * SEC);
    supervise_free(sup);
}

static void test_silence_window(void)
{
    static const struct {
        uint32_t interval_s;
        int64_t limit_ms; /* 3 x interval + 30 s */
    } rows[] = {{0, 210 * SEC}, {10, 60 * SEC}, {60, 210 * SEC}, {300, 930 * SEC}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct supervisor *sup = setup(rows[i].interval_s);
        int64_t last = T0 + 5 * SEC;
        reading(sup, 90, last);
        bool ok = out.n == 0;
        ok = ok && supervise_next_deadline(sup) == last + rows[i].limit_ms + 1;
        supervise_tick(sup, last + rows[i].limit_ms, &out);
        ok = ok && out.n == 0;
        supervise_tick(sup, last + rows[i].limit_ms + 1, &out);
        ok = ok && only(SUPERVISE_ACT_OPEN, SUPERVISE_OFFLINE) &&
             strstr(out.a[0].detail, "no reading") != NULL;
        reading(sup, 90, last + rows[i].limit_ms + 10 * SEC); /* proof of life closes it */
        ok = ok && only(SUPERVISE_ACT_CLOSE, SUPERVISE_OFFLINE);
        th_report(ok, "interval %u s: offline after %lld s of silence", rows[i].interval_s,
                  (long long)(rows[i].limit_ms / SEC));
        supervise_free(sup);
    }
    /* A changed interval moves the window. */
    struct supervisor *sup = setup(60);
    CHECK_INT(supervise_set_interval(sup, "n1", 600), 0);
    CHECK_INT(supervise_set_interval(sup, "n1", 1), -EINVAL);
    CHECK_INT(supervise_set_interval(sup, "nx", 600), -ENOENT);
    supervise_tick(sup, T0 + 1000 * SEC, &out);
    CHECK_INT(out.n, 0);
    supervise_tick(sup, T0 + 1831 * SEC, &out);
    CHECK(only(SUPERVISE_ACT_OPEN, SUPERVISE_OFFLINE));
    supervise_free(sup);
}

static void test_latching_and_four_hour_repeat(void)
{
    struct supervisor *sup = setup(60);
    int64_t t = T0 + SEC;
    CHECK_INT(event(sup, FW_EV_TAMPER, FW_CAUSE_NONE, FW_RESULT_NONE, t), 0);
    CHECK(only(SUPERVISE_ACT_OPEN, SUPERVISE_TAMPER));
    CHECK_INT(event(sup, FW_EV_TAMPER, FW_CAUSE_NONE, FW_RESULT_NONE, t + SEC), 0);
    CHECK_INT(out.n, 0); /* latched: no second open */
    /* Readings keep the node alive; only tamper stays open, repeating. */
    int repeats = 0;
    for (int64_t now = t + 60 * SEC; now <= t + 13 * HOUR; now += 60 * SEC) {
        supervise_tick(sup, now, &out);
        for (size_t i = 0; i < out.n; i++) {
            CHECK_INT(out.a[i].kind, SUPERVISE_ACT_REPEAT);
            CHECK_INT(out.a[i].trouble, SUPERVISE_TAMPER);
            CHECK_INT(out.a[i].opened_ms, t);
            CHECK_INT((out.a[i].ts - t) % (4 * HOUR), 0);
            repeats++;
        }
        reading(sup, 90, now);
        CHECK_INT(out.n, 0);
    }
    CHECK_INT(repeats, 3); /* at 4, 8 and 12 hours */
    CHECK_INT(supervise_resolve(sup, "n1", SUPERVISE_OFFLINE, t, &out), -EPERM);
    CHECK_INT(supervise_resolve(sup, "n1", SUPERVISE_TAMPER, t + 13 * HOUR, &out), 0);
    CHECK(only(SUPERVISE_ACT_CLOSE, SUPERVISE_TAMPER));
    CHECK_INT(supervise_resolve(sup, "n1", SUPERVISE_TAMPER, t + 13 * HOUR, &out), -EALREADY);
    CHECK_INT(supervise_resolve(sup, "nx", SUPERVISE_TAMPER, t, &out), -ENOENT);
    supervise_free(sup);
}

static void test_repeat_deadline_exact(void)
{
    struct supervisor *sup = setup(60);
    int64_t t = T0 + 10 * SEC;
    reading(sup, 12, t);
    CHECK(only(SUPERVISE_ACT_OPEN, SUPERVISE_LOW_BATTERY));
    CHECK(strstr(out.a[0].detail, "12 %") != NULL);
    /* Readings at the same level keep it open; the repeat comes with the
     * first call at or after 4 hours, whichever call that is. */
    reading(sup, 12, t + 4 * HOUR - 1);
    CHECK_INT(out.n, 0);
    reading(sup, 12, t + 4 * HOUR);
    CHECK(only(SUPERVISE_ACT_REPEAT, SUPERVISE_LOW_BATTERY));
    CHECK(strstr(out.a[0].detail, "still open") != NULL);
    CHECK_INT(supervise_next_deadline(sup) <= t + 8 * HOUR, 1);
    reading(sup, 30, t + 5 * HOUR);
    CHECK(only(SUPERVISE_ACT_CLOSE, SUPERVISE_LOW_BATTERY));
    reading(sup, 30, t + 9 * HOUR);
    CHECK_INT(out.n, 0); /* closed: no more repeats */
    supervise_free(sup);
}

static void test_battery_hysteresis(void)
{
    static const struct {
        unsigned pct;
        bool open;
    } rows[] = {{50, false}, {20, false}, {19, true}, {22, true},  {24, true},
                {25, false}, {21, false}, {19, true}, {100, false}};
    struct supervisor *sup = setup(60);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        reading(sup, rows[i].pct, T0 + (int64_t)i * 60 * SEC);
        th_report(is_open(sup, SUPERVISE_LOW_BATTERY) == rows[i].open, "battery %u %% -> low_battery %s",
                  rows[i].pct, rows[i].open ? "open" : "closed");
    }
    /* The node's own flag opens it whatever the percentage says... */
    event(sup, FW_EV_TROUBLE, FW_CAUSE_LOW_BATTERY, FW_RESULT_NONE, T0 + HOUR);
    CHECK(only(SUPERVISE_ACT_OPEN, SUPERVISE_LOW_BATTERY));
    reading(sup, 80, T0 + HOUR + 60 * SEC);
    CHECK_INT(out.n, 0);
    /* ...and its trouble_clear closes it. */
    event(sup, FW_EV_TROUBLE_CLEAR, FW_CAUSE_LOW_BATTERY, FW_RESULT_NONE, T0 + HOUR + 120 * SEC);
    CHECK(only(SUPERVISE_ACT_CLOSE, SUPERVISE_LOW_BATTERY));
    supervise_free(sup);
}

static void test_faults(void)
{
    static const struct {
        enum fw_event_type type;
        enum fw_cause cause;
        enum fw_result result;
        enum supervise_trouble trouble;
        bool open;
    } rows[] = {
        {FW_EV_TROUBLE, FW_CAUSE_SENSOR_FAULT, FW_RESULT_NONE, SUPERVISE_SENSOR_FAULT, true},
        {FW_EV_TROUBLE_CLEAR, FW_CAUSE_SENSOR_FAULT, FW_RESULT_NONE, SUPERVISE_SENSOR_FAULT, false},
        {FW_EV_TEST, FW_CAUSE_NONE, FW_RESULT_FAIL, SUPERVISE_SENSOR_FAULT, true},
        {FW_EV_TEST, FW_CAUSE_NONE, FW_RESULT_PASS, SUPERVISE_SENSOR_FAULT, false},
        {FW_EV_TROUBLE, FW_CAUSE_SMOKE_FAULT, FW_RESULT_NONE, SUPERVISE_SMOKE_FAULT, true},
        {FW_EV_TROUBLE, FW_CAUSE_SENSOR_FAULT, FW_RESULT_NONE, SUPERVISE_SMOKE_FAULT, true},
        {FW_EV_TROUBLE_CLEAR, FW_CAUSE_SMOKE_FAULT, FW_RESULT_NONE, SUPERVISE_SMOKE_FAULT, false},
        {FW_EV_TROUBLE_CLEAR, FW_CAUSE_SENSOR_FAULT, FW_RESULT_NONE, SUPERVISE_SENSOR_FAULT, false},
    };
    struct supervisor *sup = setup(60);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int64_t now = T0 + (int64_t)i * SEC;
        int rc = event(sup, rows[i].type, rows[i].cause, rows[i].result, now);
        th_report(rc == 0 && is_open(sup, rows[i].trouble) == rows[i].open, "row %zu: %s %s -> %s %s", i,
                  fw_event_type_name(rows[i].type),
                  rows[i].type == FW_EV_TEST ? fw_result_name(rows[i].result) : fw_cause_name(rows[i].cause),
                  supervise_trouble_name(rows[i].trouble), rows[i].open ? "open" : "closed");
    }
    supervise_free(sup);
}

static void test_troubles_never_look_like_fires(void)
{
    struct supervisor *sup = setup(60);
    static const enum fw_cause causes[] = {FW_CAUSE_SMOKE, FW_CAUSE_HEAT_FIXED, FW_CAUSE_HEAT_ROR,
                                           FW_CAUSE_BUTTON};
    for (size_t i = 0; i < sizeof causes / sizeof causes[0]; i++) {
        CHECK_INT(event(sup, FW_EV_ALARM, causes[i], FW_RESULT_NONE, T0 + SEC), 0);
        CHECK_INT(out.n, 0);
        CHECK_INT(event(sup, FW_EV_ALARM_CLEAR, FW_CAUSE_NONE, FW_RESULT_NONE, T0 + SEC), 0);
        CHECK_INT(out.n, 0);
    }
    CHECK_INT(event(sup, FW_EV_SILENCE, FW_CAUSE_NONE, FW_RESULT_NONE, T0 + SEC), 0);
    CHECK_INT(out.n, 0);
    /* A trouble with an alarm cause is not a fault this module knows. */
    CHECK_INT(event(sup, FW_EV_TROUBLE, FW_CAUSE_SMOKE, FW_RESULT_NONE, T0 + SEC), 0);
    CHECK_INT(out.n, 0);
    supervise_free(sup);
}

static void test_overdue_test(void)
{
    struct supervisor *sup = setup(60);
    int64_t limit = 30 * DAY;
    /* Never tested: counts from commissioning (T0). Keep it alive daily. */
    for (int64_t now = T0 + DAY; now < T0 + limit; now += DAY) {
        reading(sup, 90, now);
        supervise_tick(sup, now, &out);
        CHECK_INT(out.n, 0);
    }
    reading(sup, 90, T0 + limit);
    CHECK_INT(out.n, 0);
    reading(sup, 90, T0 + limit + 1);
    CHECK(only(SUPERVISE_ACT_OPEN, SUPERVISE_OVERDUE_TEST));
    CHECK(strstr(out.a[0].detail, "never passed") != NULL);
    int64_t pass = T0 + limit + HOUR;
    event(sup, FW_EV_TEST, FW_CAUSE_NONE, FW_RESULT_PASS, pass);
    CHECK(only(SUPERVISE_ACT_CLOSE, SUPERVISE_OVERDUE_TEST));
    event(sup, FW_EV_TEST, FW_CAUSE_NONE, FW_RESULT_FAIL, pass + HOUR); /* a failed test is not a pass */
    CHECK(only(SUPERVISE_ACT_OPEN, SUPERVISE_SENSOR_FAULT));
    event(sup, FW_EV_TROUBLE_CLEAR, FW_CAUSE_SENSOR_FAULT, FW_RESULT_NONE, pass + 2 * HOUR);
    CHECK(only(SUPERVISE_ACT_CLOSE, SUPERVISE_SENSOR_FAULT));
    reading(sup, 90, pass + limit + 1);
    CHECK(only(SUPERVISE_ACT_OPEN, SUPERVISE_OVERDUE_TEST));
    CHECK(strstr(out.a[0].detail, "30 days") != NULL);
    struct supervise_node_state st;
    supervise_get(sup, "n1", &st);
    CHECK_INT(st.last_test_ms, pass);
    supervise_free(sup);
}

static void test_uncommissioned_nodes_raise_nothing(void)
{
    struct supervisor *sup = supervise_new(NULL);
    struct supervise_node_info info = {.interval_s = 60};
    CHECK_INT(supervise_add_node(sup, "n1", &info, T0), 0);
    reading(sup, 5, T0 + SEC);
    CHECK_INT(out.n, 0);
    event(sup, FW_EV_TAMPER, FW_CAUSE_NONE, FW_RESULT_NONE, T0 + 2 * SEC);
    CHECK_INT(out.n, 0);
    CHECK_INT(supervise_next_deadline(sup), SUPERVISE_NO_DEADLINE);
    supervise_tick(sup, T0 + 60 * DAY, &out);
    CHECK_INT(out.n, 0);
    /* Commissioned: supervision starts then, facts already known apply. */
    info.commissioned = true;
    info.commissioned_ms = T0 + 60 * DAY;
    CHECK_INT(supervise_add_node(sup, "n1", &info, T0 + 60 * DAY), 0);
    supervise_tick(sup, T0 + 60 * DAY, &out);
    CHECK_INT(out.n, 2); /* low battery and tamper, not offline, not overdue */
    CHECK(!is_open(sup, SUPERVISE_OFFLINE) && !is_open(sup, SUPERVISE_OVERDUE_TEST));
    supervise_tick(sup, T0 + 60 * DAY + 211 * SEC, &out);
    CHECK(only(SUPERVISE_ACT_OPEN, SUPERVISE_OFFLINE));
    /* Back to uncommissioned: open troubles close. */
    info.commissioned = false;
    supervise_add_node(sup, "n1", &info, T0 + 61 * DAY);
    CHECK(supervise_next_deadline(sup) <= T0 + 61 * DAY);
    supervise_tick(sup, T0 + 61 * DAY, &out);
    CHECK_INT(out.n, 3);
    for (size_t i = 0; i < out.n; i++)
        CHECK_INT(out.a[i].kind, SUPERVISE_ACT_CLOSE);
    supervise_free(sup);
}

static void test_restart_restore(void)
{
    /* A hub restarted at T0 + 10 h: the stored last reading is old, but
     * silence counts from registration, not from before the outage. */
    int64_t start = T0 + 10 * HOUR;
    struct supervisor *sup = supervise_new(NULL);
    struct supervise_node_info info = {.interval_s = 60,
                                       .commissioned = true,
                                       .commissioned_ms = T0,
                                       .last_test_ms = T0,
                                       .last_reading_ms = T0};
    CHECK_INT(supervise_add_node(sup, "n1", &info, start), 0);
    CHECK_INT(supervise_restore_trouble(sup, "n1", SUPERVISE_TAMPER, T0 + HOUR, T0 + 9 * HOUR), 0);
    CHECK_INT(supervise_restore_trouble(sup, "nx", SUPERVISE_TAMPER, T0, T0), -ENOENT);
    CHECK_INT(supervise_restore_trouble(sup, "n1", SUPERVISE_TROUBLE_COUNT, T0, T0), -EINVAL);
    CHECK(is_open(sup, SUPERVISE_TAMPER));
    supervise_tick(sup, start, &out);
    CHECK_INT(out.n, 0); /* neither re-opened nor closed nor re-notified */
    CHECK_INT(supervise_next_deadline(sup), start + 210 * SEC + 1);
    reading(sup, 90, start + 60 * SEC);
    CHECK_INT(out.n, 0);
    supervise_tick(sup, T0 + 13 * HOUR, &out); /* 4 h after the last notice */
    CHECK(only(SUPERVISE_ACT_REPEAT, SUPERVISE_TAMPER) ||
          (out.n == 2 && out.a[1].kind == SUPERVISE_ACT_REPEAT));
    struct supervise_node_state st;
    CHECK_INT(supervise_get(sup, "n1", &st), 0);
    CHECK_INT(st.opened_ms[SUPERVISE_TAMPER], T0 + HOUR);
    supervise_free(sup);
}

static void test_remove_node_closes_troubles(void)
{
    struct supervisor *sup = setup(60);
    struct supervise_node_info info = {.interval_s = 60, .commissioned = true, .commissioned_ms = T0};
    CHECK_INT(supervise_add_node(sup, "n2", &info, T0), 0);
    event(sup, FW_EV_TAMPER, FW_CAUSE_NONE, FW_RESULT_NONE, T0 + SEC);
    reading(sup, 3, T0 + 2 * SEC);
    CHECK_INT(supervise_remove_node(sup, "n1", T0 + 3 * SEC, &out), 0);
    CHECK_INT(out.n, 2);
    for (size_t i = 0; i < out.n; i++)
        CHECK_INT(out.a[i].kind, SUPERVISE_ACT_CLOSE);
    CHECK_INT(supervise_remove_node(sup, "n1", T0 + 3 * SEC, &out), -ENOENT);
    CHECK_INT(reading(sup, 50, T0 + 4 * SEC), -ENOENT);
    struct supervise_node_state st;
    CHECK_INT(supervise_get(sup, "n2", &st), 0); /* the index survived the removal */
    CHECK_INT(supervise_list(sup, NULL, 0), 1);
    supervise_free(sup);
}

static void test_tick_bounded_with_many_nodes(void)
{
    struct supervisor *sup = supervise_new(NULL);
    struct supervise_node_info info = {.interval_s = 60, .commissioned = true, .commissioned_ms = T0};
    char id[24];
    const int nodes = 1000;
    for (int i = 0; i < nodes; i++) {
        snprintf(id, sizeof id, "node-%d", i);
        CHECK_INT(supervise_add_node(sup, id, &info, T0), 0);
    }
    CHECK_INT(supervise_list(sup, NULL, 0), nodes);
    /* The hub's network dies: every node goes silent at once. */
    int64_t now = T0 + 211 * SEC;
    int calls = 0, opened = 0;
    while (supervise_next_deadline(sup) <= now && calls < 100) {
        CHECK_INT(supervise_tick(sup, now, &out), 0);
        CHECK(out.n > 0 && out.n <= SUPERVISE_ACTIONS_MAX);
        for (size_t i = 0; i < out.n; i++)
            opened += out.a[i].kind == SUPERVISE_ACT_OPEN && out.a[i].trouble == SUPERVISE_OFFLINE;
        calls++;
    }
    CHECK_INT(opened, nodes);
    CHECK(calls > 1);
    struct supervise_node_state st;
    CHECK_INT(supervise_get(sup, "node-999", &st), 0);
    CHECK(!st.online);
    supervise_free(sup);
}

static void test_bad_input(void)
{
    struct supervisor *sup = setup(60);
    struct supervise_node_info info = {0};
    CHECK_INT(supervise_add_node(sup, "Bad Id", &info, T0), -EINVAL);
    CHECK_INT(supervise_on_status(sup, "nx", &(struct fw_status){.online = true}, T0, &out), -ENOENT);
    CHECK_INT(supervise_on_reading(sup, "n1", NULL, T0, &out), -EINVAL);
    struct supervise_config bad = {.battery_low_pct = 30, .battery_ok_pct = 25};
    CHECK(supervise_new(&bad) == NULL);
    CHECK_STR(supervise_trouble_name(SUPERVISE_OVERDUE_TEST), "overdue_test");
    CHECK(supervise_trouble_name(SUPERVISE_TROUBLE_COUNT) == NULL);
    supervise_free(NULL);
    supervise_free(sup);
}

TH_MAIN(TH_TEST(test_late_will_cannot_mark_newer_session_offline), TH_TEST(test_silence_window),
        TH_TEST(test_latching_and_four_hour_repeat), TH_TEST(test_repeat_deadline_exact),
        TH_TEST(test_battery_hysteresis), TH_TEST(test_faults), TH_TEST(test_troubles_never_look_like_fires),
        TH_TEST(test_overdue_test), TH_TEST(test_uncommissioned_nodes_raise_nothing),
        TH_TEST(test_restart_restore), TH_TEST(test_remove_node_closes_troubles),
        TH_TEST(test_tick_bounded_with_many_nodes), TH_TEST(test_bad_input))
