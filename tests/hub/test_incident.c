/*
 * test_incident.c - the incident engine, every transition and refusal of the
 * lifecycle with injected time: opening, the verifying window, hush, second
 * node and immediate causes, neighbour zones, acknowledge and clear with
 * their refusals, drills, test events, restore and id seeding.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "incident.h"

#define T0 INT64_C(1764950400000)
#define WINDOW 20000

static struct incident_actions out; /* big: keep it off the stack */

/* Zones: z1 sounds z2 and z3 too; z2 sounds z1; z3 has no neighbours. */
static struct incident_engine *setup(uint32_t last_id)
{
    struct incident_config cfg = {.window_ms = WINDOW, .last_id = last_id};
    struct incident_engine *eng = incident_engine_new(&cfg);
    if (!eng)
        abort();
    const char *nb1[] = {"z2", "z3"}, *nb2[] = {"z1"};
    CHECK_INT(incident_set_zone(eng, "z1", nb1, 2), 0);
    CHECK_INT(incident_set_zone(eng, "z2", nb2, 1), 0);
    CHECK_INT(incident_set_zone(eng, "z3", NULL, 0), 0);
    return eng;
}

static int event(struct incident_engine *eng, const char *node, const char *zone, enum fw_event_type type,
                 enum fw_cause cause, int64_t now)
{
    struct incident_input in = {.node = node, .zone = zone, .type = type, .cause = cause};
    return incident_on_event(eng, &in, now, &out);
}

static int alarm(struct incident_engine *eng, const char *node, const char *zone, enum fw_cause cause,
                 int64_t now)
{
    return event(eng, node, zone, FW_EV_ALARM, cause, now);
}

static size_t count(enum incident_action_kind kind)
{
    size_t n = 0;
    for (size_t i = 0; i < out.n; i++)
        n += out.a[i].kind == kind;
    return n;
}

/* The action of kind with that event code (or for that zone when a
 * publish), or NULL. */
static const struct incident_action *find(enum incident_action_kind kind, const char *key)
{
    for (size_t i = 0; i < out.n; i++) {
        const struct incident_action *a = &out.a[i];
        if (a->kind != kind)
            continue;
        if (kind == INCIDENT_ACT_ZONE_PUBLISH ? strcmp(a->zone, key) == 0 : strcmp(a->event, key) == 0)
            return a;
    }
    return NULL;
}

/* Every call's publishes come before anything else in its actions. */
static bool publishes_first(void)
{
    bool other = false;
    for (size_t i = 0; i < out.n; i++) {
        if (out.a[i].kind != INCIDENT_ACT_ZONE_PUBLISH)
            other = true;
        else if (other)
            return false;
    }
    return true;
}

static enum incident_state state_of(struct incident_engine *eng, uint32_t id)
{
    struct incident_info info;
    if (incident_get(eng, id, &info) != 0)
        return INCIDENT_STATE_COUNT;
    return info.state;
}

static void check_alarm_published(const char *zone, uint32_t id, const char *origin)
{
    const struct incident_action *a = find(INCIDENT_ACT_ZONE_PUBLISH, zone);
    CHECK(a != NULL);
    if (!a)
        return;
    CHECK_INT(a->zone_state, FW_STATE_ALARM);
    CHECK_INT(a->incident, id);
    CHECK_STR(a->origin, origin);
}

static void test_first_alarm_opens_verifying(void)
{
    struct incident_engine *eng = setup(0);
    CHECK_INT(incident_next_deadline(eng), INCIDENT_NO_DEADLINE);
    CHECK_INT(alarm(eng, "n1", "z1", FW_CAUSE_SMOKE, T0), 0);
    CHECK_INT(out.n, 1);
    CHECK_INT(count(INCIDENT_ACT_ZONE_PUBLISH), 0); /* nobody woken yet */
    const struct incident_action *t = find(INCIDENT_ACT_TIMELINE, "opened");
    CHECK(t != NULL);
    if (t) {
        CHECK_INT(t->incident, 1);
        CHECK_INT(t->state, INCIDENT_VERIFYING);
        CHECK_STR(t->who, "n1");
        CHECK_STR(t->zone, "z1");
        CHECK_INT(t->ts, T0);
        CHECK(strstr(t->what, "smoke") != NULL);
    }
    CHECK_INT(state_of(eng, 1), INCIDENT_VERIFYING);
    CHECK_INT(incident_next_deadline(eng), T0 + WINDOW);
    incident_engine_free(eng);
}

static void test_window_elapses_to_alarm(void)
{
    struct incident_engine *eng = setup(0);
    alarm(eng, "n1", "z1", FW_CAUSE_HEAT_ROR, T0);
    CHECK_INT(incident_tick(eng, T0 + WINDOW - 1, &out), 0);
    CHECK_INT(out.n, 0);
    CHECK_INT(state_of(eng, 1), INCIDENT_VERIFYING);
    CHECK_INT(incident_tick(eng, T0 + WINDOW, &out), 0);
    CHECK_INT(state_of(eng, 1), INCIDENT_ALARM);
    /* The zone and each neighbour, then the watch, then the timeline. */
    CHECK_INT(count(INCIDENT_ACT_ZONE_PUBLISH), 3);
    check_alarm_published("z1", 1, "n1");
    check_alarm_published("z2", 1, "n1");
    check_alarm_published("z3", 1, "n1");
    CHECK(publishes_first());
    CHECK(find(INCIDENT_ACT_NOTIFY, "alarm") != NULL);
    const struct incident_action *t = find(INCIDENT_ACT_TIMELINE, "escalated");
    CHECK(t && t->state == INCIDENT_ALARM && strstr(t->what, "window") != NULL);
    CHECK_INT(incident_next_deadline(eng), INCIDENT_NO_DEADLINE);
    CHECK_INT(incident_tick(eng, T0 + 10 * WINDOW, &out), 0);
    CHECK_INT(out.n, 0); /* escalates once */
    incident_engine_free(eng);
}

static void test_hush_dismisses(void)
{
    struct incident_engine *eng = setup(0);
    alarm(eng, "n1", "z1", FW_CAUSE_SMOKE, T0);
    CHECK_INT(event(eng, "n1", "z1", FW_EV_SILENCE, FW_CAUSE_NONE, T0 + 5000), 0);
    CHECK_INT(out.n, 1);
    const struct incident_action *t = find(INCIDENT_ACT_TIMELINE, "dismissed");
    CHECK(t && t->state == INCIDENT_DISMISSED && t->incident == 1);
    CHECK_INT(count(INCIDENT_ACT_ZONE_PUBLISH), 0);
    CHECK_INT(incident_list(eng, NULL, 0), 0);
    CHECK_INT(incident_tick(eng, T0 + 2 * WINDOW, &out), 0);
    CHECK_INT(out.n, 0); /* a dismissed incident never escalates */
    /* The next alarm is a new incident. */
    alarm(eng, "n1", "z1", FW_CAUSE_SMOKE, T0 + 60000);
    CHECK_INT(state_of(eng, 2), INCIDENT_VERIFYING);
    incident_engine_free(eng);
}

static void test_hush_from_other_node_ignored(void)
{
    struct incident_engine *eng = setup(0);
    alarm(eng, "n1", "z1", FW_CAUSE_SMOKE, T0);
    CHECK_INT(event(eng, "n9", "z1", FW_EV_SILENCE, FW_CAUSE_NONE, T0 + 1000), 0);
    CHECK_INT(out.n, 0);
    CHECK_INT(state_of(eng, 1), INCIDENT_VERIFYING);
    incident_engine_free(eng);
}

static void test_hush_after_alarm_only_recorded(void)
{
    struct incident_engine *eng = setup(0);
    alarm(eng, "n1", "z1", FW_CAUSE_BUTTON, T0);
    CHECK_INT(event(eng, "n1", "z1", FW_EV_SILENCE, FW_CAUSE_NONE, T0 + 1000), 0);
    CHECK(find(INCIDENT_ACT_TIMELINE, "silenced") != NULL);
    CHECK_INT(count(INCIDENT_ACT_ZONE_PUBLISH), 0);
    CHECK_INT(state_of(eng, 1), INCIDENT_ALARM);
    incident_engine_free(eng);
}

static void test_second_node_escalates(void)
{
    struct incident_engine *eng = setup(0);
    alarm(eng, "n1", "z1", FW_CAUSE_SMOKE, T0);
    CHECK_INT(alarm(eng, "n2", "z1", FW_CAUSE_SMOKE, T0 + 3000), 0);
    CHECK_INT(state_of(eng, 1), INCIDENT_ALARM);
    CHECK(find(INCIDENT_ACT_TIMELINE, "joined") != NULL);
    const struct incident_action *t = find(INCIDENT_ACT_TIMELINE, "escalated");
    CHECK(t && strstr(t->what, "second node") != NULL && strcmp(t->who, "n2") == 0);
    check_alarm_published("z1", 1, "n1"); /* origin stays the first node */
    CHECK(publishes_first());
    struct incident_info info;
    CHECK_INT(incident_get(eng, 1, &info), 0);
    CHECK_INT(info.n_nodes, 2);
    CHECK_INT(info.alarm_ms, T0 + 3000);
    incident_engine_free(eng);
}

static void test_same_node_repeating_does_not_escalate(void)
{
    struct incident_engine *eng = setup(0);
    alarm(eng, "n1", "z1", FW_CAUSE_SMOKE, T0);
    CHECK_INT(alarm(eng, "n1", "z1", FW_CAUSE_SMOKE, T0 + 1000), 0);
    CHECK_INT(out.n, 0);
    CHECK_INT(alarm(eng, "n1", "z1", FW_CAUSE_HEAT_ROR, T0 + 2000), 0);
    CHECK_INT(out.n, 0);
    CHECK_INT(state_of(eng, 1), INCIDENT_VERIFYING);
    /* ...but the same node reaching the fixed heat threshold does. */
    CHECK_INT(alarm(eng, "n1", "z1", FW_CAUSE_HEAT_FIXED, T0 + 3000), 0);
    CHECK_INT(state_of(eng, 1), INCIDENT_ALARM);
    CHECK_INT(count(INCIDENT_ACT_ZONE_PUBLISH), 3);
    incident_engine_free(eng);
}

static void test_causes(void)
{
    static const struct {
        enum fw_cause cause;
        bool immediate;
    } rows[] = {
        {FW_CAUSE_SMOKE, false},
        {FW_CAUSE_HEAT_ROR, false},
        {FW_CAUSE_HEAT_FIXED, true},
        {FW_CAUSE_BUTTON, true},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct incident_engine *eng = setup(0);
        int rc = alarm(eng, "n1", "z3", rows[i].cause, T0);
        bool escalated = state_of(eng, 1) == INCIDENT_ALARM;
        bool ok = rc == 0 && escalated == rows[i].immediate &&
                  count(INCIDENT_ACT_ZONE_PUBLISH) == (rows[i].immediate ? 1u : 0u) && publishes_first();
        th_report(ok, "cause %s escalates at once: %s", fw_cause_name(rows[i].cause),
                  rows[i].immediate ? "yes" : "no");
        incident_engine_free(eng);
    }
}

/* Which call results each (state, operation) pair gives. */
enum setup_state { S_VERIFYING, S_ALARM, S_ACK_ALARMING, S_ACK_NORMAL, S_CLEARED, S_DISMISSED, S_UNKNOWN };

static uint32_t reach(struct incident_engine *eng, enum setup_state s)
{
    if (s == S_UNKNOWN)
        return 99;
    alarm(eng, "n1", "z1", s == S_VERIFYING || s == S_DISMISSED ? FW_CAUSE_SMOKE : FW_CAUSE_BUTTON, T0);
    if (s == S_DISMISSED)
        event(eng, "n1", "z1", FW_EV_SILENCE, FW_CAUSE_NONE, T0 + 1);
    if (s >= S_ACK_ALARMING && s <= S_CLEARED)
        incident_acknowledge(eng, 1, "lan", T0 + 2, &out);
    if (s == S_ACK_NORMAL || s == S_CLEARED)
        event(eng, "n1", "z1", FW_EV_ALARM_CLEAR, FW_CAUSE_NONE, T0 + 3);
    if (s == S_CLEARED)
        incident_clear(eng, 1, "lan", T0 + 4, &out);
    return 1;
}

static void test_acknowledge_and_clear_refusals(void)
{
    static const struct {
        enum setup_state s;
        const char *name;
        int ack, clear;
    } rows[] = {
        {S_VERIFYING, "verifying", -EPERM, -EPERM},
        {S_ALARM, "alarm", 0, -EPERM},
        {S_ACK_ALARMING, "acknowledged, sensor in alarm", -EALREADY, -EBUSY},
        {S_ACK_NORMAL, "acknowledged, sensors normal", -EALREADY, 0},
        {S_CLEARED, "cleared", -EPERM, -EALREADY},
        {S_DISMISSED, "dismissed", -EPERM, -EPERM},
        {S_UNKNOWN, "unknown id", -ENOENT, -ENOENT},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct incident_engine *eng = setup(0);
        uint32_t id = reach(eng, rows[i].s);
        int ack = incident_acknowledge(eng, id, "mai", T0 + 10, &out);
        th_report(ack == rows[i].ack, "acknowledge when %s -> %d (want %d)", rows[i].name, ack, rows[i].ack);
        incident_engine_free(eng);
        eng = setup(0);
        id = reach(eng, rows[i].s);
        int clr = incident_clear(eng, id, "mai", T0 + 10, &out);
        th_report(clr == rows[i].clear, "clear when %s -> %d (want %d)", rows[i].name, clr, rows[i].clear);
        if (clr != 0)
            CHECK_INT(out.n, 0); /* a refusal changes nothing */
        incident_engine_free(eng);
    }
    CHECK(strstr(incident_strerror(-EBUSY), "still in alarm") != NULL);
}

static void test_full_lifecycle(void)
{
    struct incident_engine *eng = setup(0);
    alarm(eng, "n1", "z1", FW_CAUSE_SMOKE, T0);
    incident_tick(eng, T0 + WINDOW, &out);
    CHECK_INT(incident_acknowledge(eng, 1, "", T0 + 1, &out), -EINVAL);
    CHECK_INT(incident_acknowledge(eng, 1, "lan", T0 + WINDOW + 45000, &out), 0);
    CHECK_INT(state_of(eng, 1), INCIDENT_ACKNOWLEDGED);
    const struct incident_action *t = find(INCIDENT_ACT_TIMELINE, "acknowledged");
    CHECK(t && t->response_ms == 45000 && strcmp(t->who, "lan") == 0 && t->state == INCIDENT_ACKNOWLEDGED);
    CHECK(find(INCIDENT_ACT_NOTIFY, "acknowledged") != NULL); /* others see who responds */
    struct incident_info info;
    CHECK_INT(incident_get(eng, 1, &info), 0);
    CHECK_STR(info.ack_by, "lan");
    CHECK_INT(info.ack_ms, T0 + WINDOW + 45000);

    CHECK_INT(incident_clear(eng, 1, "lan", T0 + 100000, &out), -EBUSY);
    CHECK_INT(event(eng, "n1", "z1", FW_EV_ALARM_CLEAR, FW_CAUSE_NONE, T0 + 110000), 0);
    t = find(INCIDENT_ACT_TIMELINE, "sensor_normal");
    CHECK(t && strstr(t->what, "all sensors normal") != NULL);
    CHECK_INT(incident_clear(eng, 1, "lan", T0 + 120000, &out), 0);
    CHECK_INT(count(INCIDENT_ACT_ZONE_PUBLISH), 3);
    for (size_t i = 0; i < 3; i++)
        CHECK_INT(out.a[i].zone_state, FW_STATE_CLEAR);
    CHECK(find(INCIDENT_ACT_ZONE_PUBLISH, "z2") != NULL);
    t = find(INCIDENT_ACT_TIMELINE, "cleared");
    CHECK(t && t->state == INCIDENT_CLEARED && strcmp(t->who, "lan") == 0);
    CHECK(publishes_first());
    CHECK_INT(incident_list(eng, NULL, 0), 0);
    incident_engine_free(eng);
}

static void test_clear_waits_for_every_alarming_node(void)
{
    struct incident_engine *eng = setup(0);
    alarm(eng, "n1", "z1", FW_CAUSE_SMOKE, T0);
    alarm(eng, "n2", "z1", FW_CAUSE_SMOKE, T0 + 1000);
    incident_acknowledge(eng, 1, "lan", T0 + 2000, &out);
    event(eng, "n1", "z1", FW_EV_ALARM_CLEAR, FW_CAUSE_NONE, T0 + 3000);
    CHECK(strstr(find(INCIDENT_ACT_TIMELINE, "sensor_normal")->what, "1 still in alarm") != NULL);
    CHECK_INT(incident_clear(eng, 1, "lan", T0 + 4000, &out), -EBUSY);
    /* n1 alarms again: it is back in the set. */
    alarm(eng, "n1", "z1", FW_CAUSE_SMOKE, T0 + 5000);
    CHECK(find(INCIDENT_ACT_TIMELINE, "joined") != NULL);
    event(eng, "n2", "z1", FW_EV_ALARM_CLEAR, FW_CAUSE_NONE, T0 + 6000);
    CHECK_INT(incident_clear(eng, 1, "lan", T0 + 7000, &out), -EBUSY);
    event(eng, "n1", "z1", FW_EV_ALARM_CLEAR, FW_CAUSE_NONE, T0 + 8000);
    CHECK_INT(incident_clear(eng, 1, "lan", T0 + 9000, &out), 0);
    incident_engine_free(eng);
}

static void test_removed_node_unblocks_clear(void)
{
    struct incident_engine *eng = setup(0);
    alarm(eng, "n1", "z1", FW_CAUSE_HEAT_FIXED, T0);
    incident_acknowledge(eng, 1, "lan", T0 + 1000, &out);
    CHECK_INT(incident_clear(eng, 1, "lan", T0 + 2000, &out), -EBUSY);
    CHECK_INT(incident_remove_node(eng, "n1", T0 + 3000, &out), 0);
    const struct incident_action *t = find(INCIDENT_ACT_TIMELINE, "node_removed");
    CHECK(t && strstr(t->what, "0 sensors still in alarm") != NULL);
    CHECK_INT(incident_clear(eng, 1, "lan", T0 + 4000, &out), 0);
    incident_engine_free(eng);
}

static void test_join_after_alarm_notifies_spread(void)
{
    struct incident_engine *eng = setup(0);
    alarm(eng, "n1", "z1", FW_CAUSE_BUTTON, T0);
    incident_acknowledge(eng, 1, "lan", T0 + 1000, &out);
    CHECK_INT(alarm(eng, "n3", "z1", FW_CAUSE_SMOKE, T0 + 2000), 0);
    CHECK(find(INCIDENT_ACT_TIMELINE, "joined") != NULL);
    const struct incident_action *a = find(INCIDENT_ACT_NOTIFY, "spread");
    CHECK(a && strstr(a->what, "n3") != NULL);
    CHECK_INT(count(INCIDENT_ACT_ZONE_PUBLISH), 0); /* already sounding */
    CHECK_INT(state_of(eng, 1), INCIDENT_ACKNOWLEDGED);
    CHECK_INT(incident_list(eng, NULL, 0), 1); /* joined, not a new incident */
    incident_engine_free(eng);
}

static void test_tests_and_troubles_never_escalate(void)
{
    static const enum fw_event_type types[] = {FW_EV_TEST, FW_EV_TROUBLE, FW_EV_TROUBLE_CLEAR, FW_EV_TAMPER,
                                               FW_EV_CMD_RESULT};
    struct incident_engine *eng = setup(0);
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        int rc = event(eng, "n1", "z1", types[i], FW_CAUSE_NONE, T0 + (int64_t)i);
        bool ok = rc == 0 && out.n == 0 && incident_list(eng, NULL, 0) == 0;
        th_report(ok, "%s event opens nothing", fw_event_type_name(types[i]));
    }
    /* Nor inside a verifying incident. */
    alarm(eng, "n1", "z1", FW_CAUSE_SMOKE, T0 + 10);
    event(eng, "n2", "z1", FW_EV_TEST, FW_CAUSE_NONE, T0 + 20);
    CHECK_INT(out.n, 0);
    CHECK_INT(state_of(eng, 1), INCIDENT_VERIFYING);
    incident_engine_free(eng);
}

static void test_drill(void)
{
    struct incident_engine *eng = setup(0);
    uint32_t id = 0;
    CHECK_INT(incident_start_drill(eng, "nowhere", "lan", T0, &id, &out), -ENOENT);
    CHECK_INT(incident_start_drill(eng, "z1", "lan", T0, &id, &out), 0);
    CHECK_INT(id, 1);
    CHECK_INT(count(INCIDENT_ACT_ZONE_PUBLISH), 0);
    CHECK(find(INCIDENT_ACT_TIMELINE, "drill_started") != NULL);
    const struct incident_action *a = find(INCIDENT_ACT_NOTIFY, "drill");
    CHECK(a && a->incident_kind == INCIDENT_DRILL && strstr(a->what, "exercise") != NULL);
    CHECK_INT(incident_start_drill(eng, "z1", "lan", T0 + 1, NULL, &out), -EALREADY);
    struct incident_info info;
    CHECK_INT(incident_get(eng, id, &info), 0);
    CHECK_INT(info.kind, INCIDENT_DRILL);
    CHECK_INT(info.state, INCIDENT_ALARM);
    CHECK_STR(info.opened_by, "lan");
    CHECK_INT(incident_next_deadline(eng), INCIDENT_NO_DEADLINE);
    CHECK_INT(incident_tick(eng, T0 + 10 * WINDOW, &out), 0);
    CHECK_INT(out.n, 0);

    /* A real fire during a drill is its own incident and does escalate. */
    alarm(eng, "n1", "z1", FW_CAUSE_SMOKE, T0 + 1000);
    CHECK_INT(state_of(eng, 2), INCIDENT_VERIFYING);

    CHECK_INT(incident_acknowledge(eng, id, "mai", T0 + 95000, &out), 0);
    a = find(INCIDENT_ACT_TIMELINE, "acknowledged");
    CHECK(a && a->response_ms == 95000);
    CHECK(count(INCIDENT_ACT_ZONE_PUBLISH) >= 1); /* the fire's window elapsed meanwhile */
    CHECK(find(INCIDENT_ACT_TIMELINE, "escalated") &&
          find(INCIDENT_ACT_TIMELINE, "escalated")->incident == 2);
    CHECK_INT(incident_clear(eng, id, "mai", T0 + 100000, &out), 0);
    CHECK_INT(count(INCIDENT_ACT_ZONE_PUBLISH), 0); /* a drill never touches the zone topic */
    CHECK(find(INCIDENT_ACT_TIMELINE, "cleared") != NULL);
    CHECK_INT(state_of(eng, 2), INCIDENT_ALARM);

    /* An unanswered drill can be ended. */
    CHECK_INT(incident_start_drill(eng, "z3", "lan", T0 + 200000, &id, &out), 0);
    CHECK_INT(incident_clear(eng, id, "lan", T0 + 300000, &out), 0);
    incident_engine_free(eng);
}

static void test_overlapping_neighbours_keep_retained_state_true(void)
{
    struct incident_engine *eng = setup(0);
    alarm(eng, "a1", "z1", FW_CAUSE_BUTTON, T0);        /* sounds z1 z2 z3 */
    alarm(eng, "b1", "z2", FW_CAUSE_BUTTON, T0 + 1000); /* sounds z2 z1 */
    check_alarm_published("z2", 2, "b1");
    check_alarm_published("z1", 2, "b1");
    incident_acknowledge(eng, 1, "lan", T0 + 2000, &out);
    incident_remove_node(eng, "a1", T0 + 3000, &out);
    CHECK_INT(incident_clear(eng, 1, "lan", T0 + 4000, &out), 0);
    /* z1 and z2 still sound for incident 2; only z3 goes quiet. */
    check_alarm_published("z1", 2, "b1");
    check_alarm_published("z2", 2, "b1");
    const struct incident_action *z3 = find(INCIDENT_ACT_ZONE_PUBLISH, "z3");
    CHECK(z3 && z3->zone_state == FW_STATE_CLEAR && z3->incident == 1);
    incident_acknowledge(eng, 2, "lan", T0 + 5000, &out);
    incident_remove_node(eng, "b1", T0 + 6000, &out);
    CHECK_INT(incident_clear(eng, 2, "lan", T0 + 7000, &out), 0);
    CHECK_INT(count(INCIDENT_ACT_ZONE_PUBLISH), 2);
    for (size_t i = 0; i < 2; i++)
        CHECK_INT(out.a[i].zone_state, FW_STATE_CLEAR);
    incident_engine_free(eng);
}

static void test_zone_list_changes_do_not_move_an_alarm(void)
{
    struct incident_engine *eng = setup(0);
    alarm(eng, "n1", "z1", FW_CAUSE_BUTTON, T0);
    const char *nb[] = {"z9"};
    CHECK_INT(incident_set_zone(eng, "z1", nb, 1), 0);
    incident_acknowledge(eng, 1, "lan", T0 + 1, &out);
    event(eng, "n1", "z1", FW_EV_ALARM_CLEAR, FW_CAUSE_NONE, T0 + 2);
    CHECK_INT(incident_clear(eng, 1, "lan", T0 + 3, &out), 0);
    CHECK(find(INCIDENT_ACT_ZONE_PUBLISH, "z2") && find(INCIDENT_ACT_ZONE_PUBLISH, "z3"));
    CHECK(!find(INCIDENT_ACT_ZONE_PUBLISH, "z9"));
    /* Unknown zones still get incidents: a fire is never lost to config. */
    alarm(eng, "n5", "unlisted", FW_CAUSE_HEAT_FIXED, T0 + 10);
    CHECK_INT(count(INCIDENT_ACT_ZONE_PUBLISH), 1);
    check_alarm_published("unlisted", 2, "n5");
    incident_engine_free(eng);
}

static void test_event_escalates_expired_windows_first(void)
{
    struct incident_engine *eng = setup(0);
    alarm(eng, "n1", "z1", FW_CAUSE_SMOKE, T0);
    /* The daemon was late to tick; the next event still escalates z1. */
    CHECK_INT(alarm(eng, "m1", "z3", FW_CAUSE_SMOKE, T0 + WINDOW + 500), 0);
    CHECK_INT(state_of(eng, 1), INCIDENT_ALARM);
    check_alarm_published("z1", 1, "n1");
    CHECK(find(INCIDENT_ACT_TIMELINE, "opened") && find(INCIDENT_ACT_TIMELINE, "opened")->incident == 2);
    CHECK(publishes_first());
    incident_engine_free(eng);
}

static void test_ids_seeded_and_restore(void)
{
    struct incident_engine *eng = setup(41);
    alarm(eng, "n1", "z3", FW_CAUSE_SMOKE, T0);
    CHECK_INT(out.a[0].incident, 42);
    CHECK_INT(incident_last_id(eng), 42);
    incident_engine_free(eng);

    /* After a restart: one fire in ALARM, one still verifying. */
    eng = setup(50);
    struct incident_info fire = {.id = 48, .kind = INCIDENT_FIRE, .state = INCIDENT_ALARM, .opened_ms = T0};
    snprintf(fire.zone, sizeof fire.zone, "z1");
    snprintf(fire.origin, sizeof fire.origin, "n1");
    fire.alarm_ms = T0 + 1000;
    fire.n_nodes = 1;
    snprintf(fire.nodes[0].id, sizeof fire.nodes[0].id, "n1");
    fire.nodes[0].alarming = true;
    struct incident_info verifying = fire;
    verifying.id = 55;
    verifying.state = INCIDENT_VERIFYING;
    verifying.alarm_ms = 0;
    snprintf(verifying.zone, sizeof verifying.zone, "z3");
    CHECK_INT(incident_restore(eng, &verifying), 0);
    CHECK_INT(incident_restore(eng, &fire), 0);
    CHECK_INT(incident_restore(eng, &fire), -EEXIST);
    struct incident_info bad = fire;
    bad.id = 60;
    bad.state = INCIDENT_CLEARED;
    CHECK_INT(incident_restore(eng, &bad), -EINVAL);
    CHECK_INT(incident_last_id(eng), 55);

    struct incident_info list[4];
    CHECK_INT(incident_list(eng, list, 4), 2);
    CHECK_INT(list[0].id, 48); /* oldest first */
    CHECK_INT(list[1].id, 55);
    CHECK_INT(list[0].n_sounded, 3); /* filled from the zone's neighbours */

    /* ALARM stays ALARM: nothing republished, nothing re-escalated. */
    CHECK_INT(incident_tick(eng, T0 + 1, &out), 0);
    CHECK_INT(out.n, 0);
    /* The verifying one kept its deadline and is long past it. */
    CHECK_INT(incident_next_deadline(eng), T0 + WINDOW);
    CHECK_INT(incident_tick(eng, T0 + 3600000, &out), 0);
    CHECK_INT(state_of(eng, 55), INCIDENT_ALARM);
    check_alarm_published("z3", 55, "n1");

    /* New ids continue past the restored ones. */
    alarm(eng, "n7", "z2", FW_CAUSE_SMOKE, T0 + 3600001);
    CHECK_INT(out.a[0].incident, 56);
    CHECK_INT(incident_acknowledge(eng, 48, "lan", T0 + 3600002, &out), 0);
    event(eng, "n1", "z1", FW_EV_ALARM_CLEAR, FW_CAUSE_NONE, T0 + 3600003);
    CHECK_INT(incident_clear(eng, 48, "lan", T0 + 3600004, &out), 0);
    CHECK_INT(count(INCIDENT_ACT_ZONE_PUBLISH), 3);
    incident_engine_free(eng);
}

static void test_bad_input(void)
{
    struct incident_engine *eng = setup(0);
    CHECK_INT(alarm(eng, "Bad", "z1", FW_CAUSE_SMOKE, T0), -EINVAL);
    CHECK_INT(alarm(eng, "n1", "", FW_CAUSE_SMOKE, T0), -EINVAL);
    CHECK_INT(incident_on_event(eng, NULL, T0, &out), -EINVAL);
    const char *many[INCIDENT_NEIGHBOURS_MAX + 1];
    for (size_t i = 0; i < INCIDENT_NEIGHBOURS_MAX + 1; i++)
        many[i] = "z2";
    CHECK_INT(incident_set_zone(eng, "z1", many, INCIDENT_NEIGHBOURS_MAX + 1), -E2BIG);
    const char *bad[] = {"Z!"};
    CHECK_INT(incident_set_zone(eng, "z1", bad, 1), -EINVAL);
    char user[INCIDENT_USER_MAX + 2];
    memset(user, 'u', sizeof user - 1);
    user[sizeof user - 1] = '\0';
    CHECK_INT(incident_start_drill(eng, "z1", user, T0, NULL, &out), -EINVAL);
    struct incident_config neg = {.window_ms = -1};
    CHECK(incident_engine_new(&neg) == NULL);
    incident_engine_free(NULL);
    CHECK_STR(incident_state_name(INCIDENT_ACKNOWLEDGED), "acknowledged");
    CHECK_STR(incident_kind_name(INCIDENT_DRILL), "drill");
    CHECK(incident_state_name(INCIDENT_STATE_COUNT) == NULL);
    incident_engine_free(eng);

    /* Defaults: NULL config gives the 20 s window. */
    eng = incident_engine_new(NULL);
    alarm(eng, "n1", "z1", FW_CAUSE_SMOKE, T0);
    CHECK_INT(incident_next_deadline(eng), T0 + INCIDENT_WINDOW_DEFAULT_MS);
    incident_engine_free(eng);
}

static void test_many_escalations_in_one_tick(void)
{
    /* More windows expire at once than one action array holds: the tick
     * returns what fits and the deadline says to call again. */
    struct incident_config cfg = {.window_ms = WINDOW};
    struct incident_engine *eng = incident_engine_new(&cfg);
    char zone[16], node[16];
    const int zones = 40;
    for (int i = 0; i < zones; i++) {
        snprintf(zone, sizeof zone, "z%d", i);
        snprintf(node, sizeof node, "n%d", i);
        const char *nb[] = {"x1", "x2", "x3", "x4"};
        incident_set_zone(eng, zone, nb, 4);
        alarm(eng, node, zone, FW_CAUSE_SMOKE, T0);
    }
    int calls = 0;
    size_t published = 0;
    int64_t now = T0 + WINDOW;
    while (incident_next_deadline(eng) <= now && calls < 100) {
        incident_tick(eng, now, &out);
        CHECK(out.n > 0);
        CHECK(publishes_first());
        published += count(INCIDENT_ACT_ZONE_PUBLISH);
        calls++;
    }
    CHECK_INT(published, zones * 5);
    CHECK(calls > 1);
    struct incident_info *all = calloc((size_t)zones, sizeof *all);
    CHECK_INT(incident_list(eng, all, (size_t)zones), zones);
    for (int i = 0; i < zones; i++)
        CHECK_INT(all[i].state, INCIDENT_ALARM);
    free(all);
    incident_engine_free(eng);
}

/* ---- a randomized walk checking invariants after every call ---- */

#define WALK_ZONES 4
#define WALK_NODES 12

static const char *const walk_zone[WALK_ZONES] = {"w1", "w2", "w3", "w4"};

struct retained {
    bool alarm;
    uint32_t incident;
};

static uint32_t walk_rand(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(*s >> 33);
}

/* Applies the call's publishes to the model of the broker's retained
 * messages, then checks: publishes first, none for a drill, and every zone
 * says "alarm" exactly when an open escalated fire sounds it. */
static bool walk_check(struct incident_engine *eng, struct retained *ret, int64_t now, char *why, size_t size)
{
    if (!publishes_first()) {
        snprintf(why, size, "a publish after a non-publish");
        return false;
    }
    for (size_t i = 0; i < out.n; i++) {
        const struct incident_action *a = &out.a[i];
        if (a->kind != INCIDENT_ACT_ZONE_PUBLISH)
            continue;
        if (a->incident_kind == INCIDENT_DRILL) {
            snprintf(why, size, "drill %u published to %s", a->incident, a->zone);
            return false;
        }
        for (int z = 0; z < WALK_ZONES; z++)
            if (strcmp(a->zone, walk_zone[z]) == 0)
                ret[z] = (struct retained){a->zone_state == FW_STATE_ALARM, a->incident};
    }
    static struct incident_info open[64];
    size_t n = incident_list(eng, open, 64);
    for (int z = 0; z < WALK_ZONES; z++) {
        bool sounded = false, by_retained = false;
        for (size_t k = 0; k < n && k < 64; k++) {
            if (open[k].kind != INCIDENT_FIRE || open[k].state == INCIDENT_VERIFYING)
                continue;
            for (size_t j = 0; j < open[k].n_sounded; j++) {
                if (strcmp(open[k].sounded[j], walk_zone[z]) == 0) {
                    sounded = true;
                    by_retained = by_retained || open[k].id == ret[z].incident;
                }
            }
        }
        if (sounded != ret[z].alarm || (sounded && !by_retained)) {
            snprintf(why, size, "zone %s retained %s (incident %u) but sounded=%d", walk_zone[z],
                     ret[z].alarm ? "alarm" : "clear", ret[z].incident, sounded);
            return false;
        }
    }
    for (size_t k = 0; k < n && k < 64; k++) {
        if (open[k].state == INCIDENT_VERIFYING && now - open[k].opened_ms >= WINDOW) {
            snprintf(why, size, "incident %u still verifying past its window", open[k].id);
            return false;
        }
    }
    return true;
}

static void test_random_walk_invariants(void)
{
    for (uint64_t seed = 1; seed <= 20; seed++) {
        struct incident_config cfg = {.window_ms = WINDOW};
        struct incident_engine *eng = incident_engine_new(&cfg);
        const char *nb1[] = {"w2"}, *nb2[] = {"w1", "w3"}, *nb4[] = {"w1"};
        incident_set_zone(eng, "w1", nb1, 1);
        incident_set_zone(eng, "w2", nb2, 2);
        incident_set_zone(eng, "w3", NULL, 0);
        incident_set_zone(eng, "w4", nb4, 1);
        struct retained ret[WALK_ZONES] = {{0}};
        uint64_t s = seed;
        int64_t now = T0;
        char why[160] = "";
        bool ok = true;
        int step, cleared = 0;
        for (step = 0; step < 2000 && ok; step++) {
            now += walk_rand(&s) % 8000;
            int nd = (int)(walk_rand(&s) % WALK_NODES);
            char node[8];
            snprintf(node, sizeof node, "m%d", nd);
            const char *zone = walk_zone[nd % WALK_ZONES];
            uint32_t id = 1 + walk_rand(&s) % (incident_last_id(eng) + 1);
            switch (walk_rand(&s) % 10) {
            case 0:
            case 1: alarm(eng, node, zone, (enum fw_cause)(1 + walk_rand(&s) % 4), now); break;
            case 2: event(eng, node, zone, FW_EV_ALARM_CLEAR, FW_CAUSE_NONE, now); break;
            case 3: event(eng, node, zone, FW_EV_SILENCE, FW_CAUSE_NONE, now); break;
            case 4:
                /* A test event does nothing of its own; the call may still
                 * escalate windows that elapsed before it. */
                event(eng, node, zone, FW_EV_TEST, FW_CAUSE_NONE, now);
                for (size_t i = 0; i < out.n && ok; i++)
                    if (out.a[i].kind == INCIDENT_ACT_TIMELINE && !strstr(out.a[i].what, "window"))
                        ok = (snprintf(why, sizeof why, "a test event acted: %s", out.a[i].what), false);
                break;
            case 5: incident_acknowledge(eng, id, "walker", now, &out); break;
            case 6: cleared += incident_clear(eng, id, "walker", now, &out) == 0; break;
            case 7: incident_start_drill(eng, zone, "walker", now, NULL, &out); break;
            case 8:
                if (walk_rand(&s) % 8 == 0)
                    incident_remove_node(eng, node, now, &out);
                else
                    incident_tick(eng, now, &out);
                break;
            default: incident_tick(eng, now, &out); break;
            }
            ok = ok && walk_check(eng, ret, now, why, sizeof why);
        }
        th_report(ok && cleared > 10, "random walk seed %llu: %d steps, %d clears%s%s",
                  (unsigned long long)seed, step, cleared, ok ? "" : ": ", why);
        incident_engine_free(eng);
    }
}

TH_MAIN(TH_TEST(test_first_alarm_opens_verifying), TH_TEST(test_window_elapses_to_alarm),
        TH_TEST(test_hush_dismisses), TH_TEST(test_hush_from_other_node_ignored),
        TH_TEST(test_hush_after_alarm_only_recorded), TH_TEST(test_second_node_escalates),
        TH_TEST(test_same_node_repeating_does_not_escalate), TH_TEST(test_causes),
        TH_TEST(test_acknowledge_and_clear_refusals), TH_TEST(test_full_lifecycle),
        TH_TEST(test_clear_waits_for_every_alarming_node), TH_TEST(test_removed_node_unblocks_clear),
        TH_TEST(test_join_after_alarm_notifies_spread), TH_TEST(test_tests_and_troubles_never_escalate),
        TH_TEST(test_drill), TH_TEST(test_overlapping_neighbours_keep_retained_state_true),
        TH_TEST(test_zone_list_changes_do_not_move_an_alarm),
        TH_TEST(test_event_escalates_expired_windows_first), TH_TEST(test_ids_seeded_and_restore),
        TH_TEST(test_bad_input), TH_TEST(test_many_escalations_in_one_tick),
        TH_TEST(test_random_walk_invariants))
