/*
 * test_detect.c - the detection module against every scenario curve in
 * tests/data/scenarios/, plus the rules one at a time.
 *
 * Each scenario file carries its expected outcome as comment lines
 * "# expect: ..." (alarm cause and time bounds, troubles, silences, the
 * sounder pattern at a moment) and its sampling step as "# step: S". The
 * table below lists every file; a file in the directory that the table does
 * not list fails the suite, so a new curve cannot go unchecked.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect.h"
#include "harness.h"
#include "scenario.h"

static const char *const scenario_files[] = {
    "flaming_fire.csv",      "smouldering_fire.csv", "cooking_warmup.csv",
    "sun_tin_roof.csv",      "kettle.csv",           "sensor_unplugged.csv",
    "battery_rundown.csv",   "hush_toast.csv",       "fixed_heat_overrides_hush.csv",
    "manual_call_point.csv",
};
#define NFILES (sizeof scenario_files / sizeof scenario_files[0])

#define MAX_LOG 256
struct logged {
    int64_t t_ms;
    struct det_event ev;
};

struct replay {
    struct logged log[MAX_LOG];
    int n;
    int64_t probe_t[8];
    enum det_pattern probe_pat[8];
    int nprobe;
};

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(1 << 20);
    if (!buf) {
        fclose(f);
        return NULL;
    }
    *len = fread(buf, 1, (1 << 20) - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

/* Replays sc through a fresh detector, sampling temperature every step_ms
 * and smoke/buttons every 250 ms, recording events with their times and the
 * pattern at each probe time. */
static void run(const struct scenario *sc, int64_t step_ms, struct replay *r)
{
    struct det_config cfg;
    struct detect d;
    detect_config_default(&cfg);
    detect_init(&d, &cfg);
    size_t cursor = 0;
    int64_t end = scenario_end_ms(sc) + 60000;
    int64_t tick = step_ms < 250 ? step_ms : 250;
    int probe = 0;
    for (int64_t t = 0, prev = -1; t <= end; prev = t, t += tick) {
        struct scenario_state st;
        scenario_at(sc, t, &st);
        struct det_input in = {.smoke = st.smoke};
        if (t % step_ms == 0) {
            in.has_temp = true;
            in.temp_ok = st.temp_ok;
            in.temp_c = st.temp_c;
            in.has_batt = st.batt_ok;
            in.batt_pct = st.batt_pct;
        }
        struct det_out out = {0};
        enum det_button b;
        in.button = scenario_next_button(sc, &cursor, prev, t);
        detect_step(&d, &in, t, &out);
        while ((b = scenario_next_button(sc, &cursor, prev, t)) != DET_BTN_NONE) {
            struct det_input again = in;
            again.has_temp = again.has_batt = false;
            again.button = b;
            detect_step(&d, &again, t, &out);
        }
        for (int i = 0; i < out.n && r->n < MAX_LOG; i++)
            r->log[r->n++] = (struct logged){t, out.ev[i]};
        while (probe < r->nprobe && r->probe_t[probe] <= t)
            r->probe_pat[probe++] = detect_pattern(&d, t);
    }
}

/* Finds the first logged event of type (and cause, unless NONE). */
static const struct logged *find(const struct replay *r, enum fw_event_type type, enum fw_cause cause)
{
    for (int i = 0; i < r->n; i++)
        if (r->log[i].ev.type == type && (cause == FW_CAUSE_NONE || r->log[i].ev.cause == cause))
            return &r->log[i];
    return NULL;
}

static bool in_bounds(const struct logged *l, double lo, double hi)
{
    return l && l->t_ms >= (int64_t)(lo * 1000) && l->t_ms <= (int64_t)(hi * 1000);
}

/* Checks one "# expect:" line against the replay. */
static bool check_expect(const char *file, const char *line, const struct replay *r, int *probe_idx)
{
    char what[32] = "", arg[32] = "";
    double lo = 0, hi = 0;
    int n = sscanf(line, "%31s %31s %lf %lf", what, arg, &lo, &hi);
    enum fw_cause cause = FW_CAUSE_NONE;
    const struct logged *l;
    char got[64] = "never";

    if (strcmp(what, "none") == 0) {
        l = find(r, FW_EV_ALARM, FW_CAUSE_NONE);
        if (l)
            snprintf(got, sizeof got, "%s at %.1f s", fw_cause_name(l->ev.cause), (double)l->t_ms / 1000);
        return th_report(!l, "%s: no alarm (got %s)", file, l ? got : "none");
    }
    if (strcmp(what, "no_trouble") == 0) {
        l = find(r, FW_EV_TROUBLE, FW_CAUSE_NONE);
        return th_report(!l, "%s: no trouble", file);
    }
    if (strcmp(what, "pattern") == 0) {
        int i = (*probe_idx)++;
        enum det_pattern p = r->probe_pat[i];
        return th_report(strcmp(detect_pattern_name(p), arg) == 0, "%s: pattern %s at %s s (got %s)", file,
                         arg, line + strlen("pattern ") + strlen(arg) + 1, detect_pattern_name(p));
    }
    if (strcmp(what, "silence") == 0 || strcmp(what, "alarm_clear") == 0) {
        /* "silence LO HI": no cause argument */
        lo = hi = -1;
        sscanf(line, "%*s %lf %lf", &lo, &hi);
        l = find(r, strcmp(what, "silence") == 0 ? FW_EV_SILENCE : FW_EV_ALARM_CLEAR, FW_CAUSE_NONE);
        if (l)
            snprintf(got, sizeof got, "%.2f s", (double)l->t_ms / 1000);
        return th_report(in_bounds(l, lo, hi), "%s: %s in %g..%g s (got %s)", file, what, lo, hi, got);
    }
    if (strcmp(what, "test") == 0) {
        l = find(r, FW_EV_TEST, FW_CAUSE_NONE);
        bool ok = in_bounds(l, lo, hi) && strcmp(fw_result_name(l->ev.result), arg) == 0;
        return th_report(ok, "%s: test %s in %g..%g s", file, arg, lo, hi);
    }
    if (fw_cause_parse(arg, &cause) < 0)
        return th_report(false, "%s: bad expect line '%s'", file, line);
    if (strcmp(what, "no_alarm") == 0) {
        l = find(r, FW_EV_ALARM, cause);
        return th_report(!l, "%s: no %s alarm", file, arg);
    }
    enum fw_event_type type;
    if (strcmp(what, "alarm") == 0)
        type = FW_EV_ALARM;
    else if (strcmp(what, "trouble") == 0)
        type = FW_EV_TROUBLE;
    else if (strcmp(what, "trouble_clear") == 0)
        type = FW_EV_TROUBLE_CLEAR;
    else
        return th_report(false, "%s: bad expect line '%s'", file, line);
    l = find(r, type, cause);
    if (l)
        snprintf(got, sizeof got, "%.2f s", (double)l->t_ms / 1000);
    return th_report(n == 4 && in_bounds(l, lo, hi), "%s: %s %s in %g..%g s (got %s)", file, what, arg, lo,
                     hi, got);
}

static void test_scenarios(void)
{
    for (size_t i = 0; i < NFILES; i++) {
        char rel[128], err[256];
        snprintf(rel, sizeof rel, "tests/data/scenarios/%s", scenario_files[i]);
        size_t len = 0;
        char *text = slurp(th_root_path(rel), &len);
        if (!th_report(text != NULL, "%s: readable", rel))
            continue;
        struct scenario sc;
        int rc = scenario_parse(text, len, &sc, err, sizeof err);
        if (!th_report(rc == 0, "%s: parses (%s)", rel, rc ? err : "ok")) {
            free(text);
            continue;
        }
        /* Collect directives. */
        static struct replay r;
        memset(&r, 0, sizeof r);
        int64_t step_ms = 1000;
        int nexpect = 0;
        for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
            double v;
            if (sscanf(l, "# step: %lf", &v) == 1)
                step_ms = (int64_t)(v * 1000);
            if (strncmp(l, "# expect: pattern ", 18) == 0 && r.nprobe < 8 &&
                sscanf(l + 18, "%*s %lf", &v) == 1)
                r.probe_t[r.nprobe++] = (int64_t)(v * 1000);
        }
        run(&sc, step_ms, &r);
        /* The text was split in place by strtok_r; re-read for the checks. */
        free(text);
        text = slurp(th_root_path(rel), &len);
        int probe_idx = 0;
        for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
            if (strncmp(l, "# expect: ", 10) == 0) {
                nexpect++;
                check_expect(scenario_files[i], l + 10, &r, &probe_idx);
            }
        th_report(nexpect > 0, "%s: has expectations", scenario_files[i]);
        /* Troubles never look like fires: no scenario may alarm with a
         * trouble cause, and every alarm cause must be an alarm cause. */
        for (int k = 0; k < r.n; k++)
            if (r.log[k].ev.type == FW_EV_ALARM && r.log[k].ev.cause >= FW_CAUSE_LOW_BATTERY)
                th_report(false, "%s: alarm with trouble cause", scenario_files[i]);
        scenario_free(&sc);
        free(text);
    }
}

static void test_every_file_listed(void)
{
    DIR *dir = opendir(th_root_path("tests/data/scenarios"));
    CHECK(dir != NULL);
    if (!dir)
        return;
    struct dirent *de;
    while ((de = readdir(dir))) {
        size_t n = strlen(de->d_name);
        if (n < 4 || strcmp(de->d_name + n - 4, ".csv") != 0)
            continue;
        bool listed = false;
        for (size_t i = 0; i < NFILES; i++)
            listed = listed || strcmp(scenario_files[i], de->d_name) == 0;
        th_report(listed, "%s is in the table", de->d_name);
    }
    closedir(dir);
}

/* Feeds a constant temperature for `secs` seconds at 1 Hz. */
static void feed(struct detect *d, int64_t *t, int secs, double temp, bool smoke, struct det_out *out)
{
    for (int i = 0; i < secs; i++) {
        struct det_input in = {.has_temp = true, .temp_ok = true, .temp_c = temp, .smoke = smoke};
        detect_step(d, &in, *t, out);
        *t += 1000;
    }
}

static void test_fixed_heat_and_hush_rules(void)
{
    struct det_config cfg;
    struct detect d;
    struct det_out out = {0};
    int64_t t = 0;
    detect_config_default(&cfg);
    detect_init(&d, &cfg);
    feed(&d, &t, 5, 56.9, false, &out);
    CHECK(!detect_in_alarm(&d));
    feed(&d, &t, 1, 57.0, false, &out);
    CHECK(detect_in_alarm(&d)); /* >= 57 exactly; rate of rise not involved */
    CHECK_INT(out.ev[0].cause, FW_CAUSE_HEAT_FIXED);
    memset(&out, 0, sizeof out);
    CHECK_INT(detect_hush(&d, t, &out), -EPERM); /* fixed heat cannot be hushed */
    CHECK_INT(detect_pattern(&d, t), DET_PAT_ALARM);
    feed(&d, &t, 1, 55.5, false, &out); /* within the hysteresis */
    CHECK(detect_in_alarm(&d));
    feed(&d, &t, 1, 54.0, false, &out);
    CHECK(!detect_in_alarm(&d));
    CHECK_INT(out.ev[0].type, FW_EV_ALARM_CLEAR);

    /* Smoke: hushed for at most hush_max_s, then the sounder resumes. */
    detect_init(&d, &cfg);
    t = 0;
    memset(&out, 0, sizeof out);
    feed(&d, &t, 1, 25, true, &out);
    CHECK(!detect_in_alarm(&d)); /* not yet confirmed */
    int64_t next = detect_next_ms(&d, 0);
    CHECK_INT(next, 500);
    detect_tick(&d, next, &out);
    CHECK(detect_in_alarm(&d));
    CHECK_INT(detect_hush(&d, t, &out), 0);
    CHECK_INT(detect_pattern(&d, t + 1000), DET_PAT_OFF);
    CHECK_INT(detect_led(&d, t + 1000), DET_LED_HUSH);
    CHECK_INT(detect_pattern(&d, t + 600 * 1000 - 1), DET_PAT_OFF);
    CHECK_INT(detect_pattern(&d, t + 600 * 1000), DET_PAT_ALARM);
    CHECK_INT(detect_next_ms(&d, t + 1000), t + 600 * 1000);
}

static void test_troubles_never_alarm(void)
{
    struct det_config cfg;
    struct detect d;
    struct det_out out = {0};
    int64_t t = 0;
    detect_config_default(&cfg);
    cfg.stuck_s = 3600;
    detect_init(&d, &cfg);
    /* Impossible values (a DS18B20's 85 C power-on value is possible, 130 is not). */
    feed(&d, &t, 2, 130.0, false, &out);
    CHECK_INT(out.n, 0);
    feed(&d, &t, 1, 130.0, false, &out);
    CHECK_INT(out.n, 1);
    CHECK_INT(out.ev[0].type, FW_EV_TROUBLE);
    CHECK_INT(out.ev[0].cause, FW_CAUSE_SENSOR_FAULT);
    CHECK(!detect_in_alarm(&d));
    CHECK_INT(detect_led(&d, t), DET_LED_TROUBLE);
    /* A stuck sensor: the same value for an hour. */
    detect_init(&d, &cfg);
    memset(&out, 0, sizeof out);
    t = 0;
    for (int i = 0; i <= 60; i++) {
        struct det_input in = {.has_temp = true, .temp_ok = true, .temp_c = 21.5};
        detect_step(&d, &in, t, &out);
        t += 60000;
    }
    CHECK_INT(out.n, 1);
    CHECK_INT(out.ev[0].cause, FW_CAUSE_SENSOR_FAULT);
    CHECK_STR(out.ev[0].detail, "temperature stuck");
    /* Self-test fails while the sensor is faulty. */
    memset(&out, 0, sizeof out);
    CHECK(!detect_selftest(&d, t, &out));
    CHECK_INT(out.ev[0].result, FW_RESULT_FAIL);
}

static void test_neighbour_pattern(void)
{
    struct det_config cfg;
    struct detect d;
    struct det_out out = {0};
    detect_config_default(&cfg);
    detect_init(&d, &cfg);
    detect_set_neighbour(&d, true, 0);
    CHECK_INT(detect_pattern(&d, 0), DET_PAT_NEIGHBOUR);
    /* A local alarm wins over the neighbour pattern. */
    struct det_input in = {.button = DET_BTN_FIRE};
    detect_step(&d, &in, 1000, &out);
    CHECK_INT(detect_pattern(&d, 1000), DET_PAT_ALARM);
    detect_init(&d, &cfg);
    detect_set_neighbour(&d, true, 0);
    /* Hush mutes the neighbour pattern without a silence event (that would
     * dismiss the other home's incident at the hub). */
    memset(&out, 0, sizeof out);
    CHECK_INT(detect_hush(&d, 0, &out), -ENOENT);
    CHECK_INT(out.n, 0);
    CHECK_INT(detect_pattern(&d, 1000), DET_PAT_OFF);
    detect_set_neighbour(&d, false, 2000);
    CHECK_INT(detect_pattern(&d, 2000), DET_PAT_OFF);
}

TH_MAIN(TH_TEST(test_scenarios), TH_TEST(test_every_file_listed), TH_TEST(test_fixed_heat_and_hush_rules),
        TH_TEST(test_troubles_never_alarm), TH_TEST(test_neighbour_pattern))
