/*
 * detect.c - see detect.h. Heat detection works on a short history of
 * temperature samples: the rate of rise is the least-squares slope over the
 * sliding window, and it must also hold over each half of the window, so a
 * single puff of hot air (a kettle, an oven door) that lifts the whole-window
 * slope cannot raise an alarm on its own. Troubles (sensor fault, low
 * battery) latch with hysteresis and never touch the alarm state.
 */
#include "detect.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define SMOKE_CLEAR_MIN_MS 5000 /* smoke must be gone this long before it clears */
#define FIXED_HYST_C 2.0        /* fixed heat clears this far below the threshold */
#define BATT_HYST_PCT 5         /* low battery clears this far above the threshold */
#define TEST_PATTERN_MS 3000    /* how long the self-test sounds */
#define MIN_SPAN 0.8            /* share of the window the history must cover */

void detect_config_default(struct det_config *cfg)
{
    cfg->fixed_c = 57.0;
    cfg->ror_c_per_min = 8.3;
    cfg->ror_window_s = 60;
    cfg->comp_c = 46.0;
    cfg->comp_c_per_min = 4.0;
    cfg->smoke_confirm_ms = 500;
    cfg->hush_max_s = 600;
    cfg->button_hold_s = 300;
    cfg->low_batt_pct = 20;
    cfg->fault_reads = 3;
    cfg->stuck_s = 6 * 3600;
    cfg->temp_min_c = -40.0;
    cfg->temp_max_c = 125.0;
}

void detect_init(struct detect *d, const struct det_config *cfg)
{
    memset(d, 0, sizeof *d);
    d->cfg = *cfg;
    d->batt_pct = 100;
    d->first_cause = FW_CAUSE_NONE;
}

void detect_set_config(struct detect *d, const struct det_config *cfg)
{
    d->cfg = *cfg;
}

static void emit(struct det_out *out, enum fw_event_type type, enum fw_cause cause, enum fw_result result,
                 const char *detail)
{
    if (!out || out->n >= DET_EVENTS_MAX)
        return;
    struct det_event *e = &out->ev[out->n++];
    e->type = type;
    e->cause = cause;
    e->result = result;
    snprintf(e->detail, sizeof e->detail, "%s", detail ? detail : "");
}

/* ---- temperature history ---------------------------------------------- */

static int64_t window_ms(const struct detect *d)
{
    return (int64_t)d->cfg.ror_window_s * 1000;
}

static void ring_reset(struct detect *d)
{
    d->ring_head = 0;
    d->ring_len = 0;
}

static void ring_add(struct detect *d, int64_t t, double c)
{
    /* Keep at most DET_RING/2 samples per window so the ring always covers
     * the whole window, whatever the sampling period. */
    int64_t min_gap = window_ms(d) / (DET_RING / 2);
    if (d->ring_len > 0) {
        int last = (d->ring_head + d->ring_len - 1) % DET_RING;
        if (t - d->ring_t[last] < min_gap)
            return;
    }
    int idx;
    if (d->ring_len < DET_RING) {
        idx = (d->ring_head + d->ring_len) % DET_RING;
        d->ring_len++;
    } else {
        idx = d->ring_head;
        d->ring_head = (d->ring_head + 1) % DET_RING;
    }
    d->ring_t[idx] = t;
    d->ring_c[idx] = c;
}

/* Least-squares slope in deg C per minute of the samples with t in [t0, t1];
 * NAN when fewer than three samples. */
static double slope(const struct detect *d, int64_t t0, int64_t t1)
{
    double n = 0, st = 0, sc = 0, stt = 0, stc = 0;
    for (int i = 0; i < d->ring_len; i++) {
        int idx = (d->ring_head + i) % DET_RING;
        if (d->ring_t[idx] < t0 || d->ring_t[idx] > t1)
            continue;
        double t = (double)(d->ring_t[idx] - t0) / 60000.0;
        n += 1;
        st += t;
        sc += d->ring_c[idx];
        stt += t * t;
        stc += t * d->ring_c[idx];
    }
    double den = n * stt - st * st;
    if (n < 3 || den <= 0)
        return NAN;
    return (n * stc - st * sc) / den;
}

/* True when the history reaches back over most of the window. */
static bool span_ok(const struct detect *d, int64_t now)
{
    if (d->ring_len < 3)
        return false;
    return d->ring_t[d->ring_head] <= now - (int64_t)((double)window_ms(d) * MIN_SPAN);
}

static bool ge(double v, double thr)
{
    return !isnan(v) && v >= thr;
}

/* Decides the two heat causes from the history. */
static void heat_rules(struct detect *d, int64_t now, bool *fixed, bool *ror)
{
    const struct det_config *c = &d->cfg;
    double t = d->temp_c;
    *fixed = d->active[FW_CAUSE_HEAT_FIXED] ? t >= c->fixed_c - FIXED_HYST_C : t >= c->fixed_c;

    int64_t w = window_ms(d);
    bool span = span_ok(d, now);
    double all = slope(d, now - w, now);
    d->rate_c_per_min = isnan(all) ? 0 : all;

    /* Sustained: the whole window rises fast enough and every quarter of it
     * is still rising at a quarter of the rate, so one puff cannot do it. */
    bool quarters = true;
    for (int q = 0; q < 4 && quarters; q++)
        quarters = ge(slope(d, now - w + q * w / 4, now - w + (q + 1) * w / 4), c->ror_c_per_min / 4);
    bool sustained = span && ge(all, c->ror_c_per_min) && quarters;
    double last = slope(d, now - w / 4, now);
    bool compensated =
        span && t >= c->comp_c && ge(all, c->comp_c_per_min) && ge(last, c->comp_c_per_min / 2);
    if (d->active[FW_CAUSE_HEAT_ROR])
        *ror = sustained || compensated || t >= c->comp_c || ge(all, c->comp_c_per_min / 2);
    else
        *ror = sustained || compensated;
}

/* ---- alarm state ------------------------------------------------------- */

static const enum fw_cause alarm_causes[] = {FW_CAUSE_SMOKE, FW_CAUSE_HEAT_FIXED, FW_CAUSE_HEAT_ROR,
                                             FW_CAUSE_BUTTON};

static bool any_active(const struct detect *d)
{
    for (size_t i = 0; i < sizeof alarm_causes / sizeof alarm_causes[0]; i++)
        if (d->active[alarm_causes[i]])
            return true;
    return false;
}

/* Applies the wanted state of one cause, raising an alarm event on onset. */
static void set_cause(struct detect *d, enum fw_cause cause, bool want, struct det_out *out)
{
    if (want == d->active[cause])
        return;
    d->active[cause] = want;
    if (want) {
        if (!d->alarm) {
            d->alarm = true;
            d->first_cause = cause;
        }
        emit(out, FW_EV_ALARM, cause, FW_RESULT_NONE, NULL);
    }
}

static void settle_alarm(struct detect *d, int64_t now, struct det_out *out)
{
    if (d->active[FW_CAUSE_HEAT_FIXED] && d->hush_until) {
        d->hush_until = 0; /* fixed heat overrides a hush */
    }
    if (d->hush_until && now >= d->hush_until)
        d->hush_until = 0;
    if (d->alarm && !any_active(d)) {
        d->alarm = false;
        d->hush_until = 0;
        emit(out, FW_EV_ALARM_CLEAR, d->first_cause, FW_RESULT_NONE, NULL);
        d->first_cause = FW_CAUSE_NONE;
    }
}

static void set_trouble(struct detect *d, enum fw_cause cause, bool want, const char *detail,
                        struct det_out *out)
{
    if (want == d->trouble[cause])
        return;
    d->trouble[cause] = want;
    emit(out, want ? FW_EV_TROUBLE : FW_EV_TROUBLE_CLEAR, cause, FW_RESULT_NONE, detail);
}

static void smoke_update(struct detect *d, bool raw, int64_t now)
{
    if (raw != d->smoke_raw) {
        d->smoke_raw = raw;
        d->smoke_raw_since = now;
    }
    int64_t need = d->smoke_raw ? d->cfg.smoke_confirm_ms
                                : (d->cfg.smoke_confirm_ms > SMOKE_CLEAR_MIN_MS ? d->cfg.smoke_confirm_ms
                                                                                : SMOKE_CLEAR_MIN_MS);
    if (d->smoke_raw != d->smoke && now - d->smoke_raw_since >= need)
        d->smoke = d->smoke_raw;
}

/* Takes one temperature read: plausibility, fault latching, history. */
static void temp_update(struct detect *d, bool ok, double c, int64_t now, struct det_out *out)
{
    const struct det_config *cfg = &d->cfg;
    bool good = ok && isfinite(c) && c >= cfg->temp_min_c && c <= cfg->temp_max_c;
    if (!good) {
        d->good_reads = 0;
        if (++d->bad_reads >= cfg->fault_reads && !d->trouble[FW_CAUSE_SENSOR_FAULT]) {
            set_trouble(d, FW_CAUSE_SENSOR_FAULT, true,
                        ok ? "impossible temperature" : "temperature read failed", out);
            ring_reset(d);
        }
        return;
    }
    d->bad_reads = 0;
    d->good_reads++;
    if (c != d->stuck_value || !d->stuck_armed) {
        d->stuck_armed = true;
        d->stuck_value = c;
        d->stuck_since = now;
    }
    bool stuck = cfg->stuck_s > 0 && now - d->stuck_since >= (int64_t)cfg->stuck_s * 1000;
    if (stuck && !d->trouble[FW_CAUSE_SENSOR_FAULT]) {
        set_trouble(d, FW_CAUSE_SENSOR_FAULT, true, "temperature stuck", out);
        ring_reset(d);
    } else if (!stuck && d->trouble[FW_CAUSE_SENSOR_FAULT] && d->good_reads >= cfg->fault_reads) {
        set_trouble(d, FW_CAUSE_SENSOR_FAULT, false, NULL, out);
    }
    if (d->trouble[FW_CAUSE_SENSOR_FAULT])
        return; /* heat detection waits until the sensor is trusted again */
    d->temp_c = c;
    d->temp_valid = true;
    ring_add(d, now, c);
}

static void batt_update(struct detect *d, int pct, struct det_out *out)
{
    d->batt_pct = pct;
    bool low = d->trouble[FW_CAUSE_LOW_BATTERY] ? pct < d->cfg.low_batt_pct + BATT_HYST_PCT
                                                : pct < d->cfg.low_batt_pct;
    char detail[32];
    snprintf(detail, sizeof detail, "battery %d%%", pct);
    set_trouble(d, FW_CAUSE_LOW_BATTERY, low, detail, out);
}

/* Re-evaluates every alarm cause from the current state. */
static void evaluate(struct detect *d, int64_t now, struct det_out *out)
{
    if (d->temp_valid && !d->trouble[FW_CAUSE_SENSOR_FAULT]) {
        bool fixed, ror;
        heat_rules(d, now, &fixed, &ror);
        set_cause(d, FW_CAUSE_HEAT_FIXED, fixed, out);
        set_cause(d, FW_CAUSE_HEAT_ROR, ror, out);
    }
    set_cause(d, FW_CAUSE_SMOKE, d->smoke, out);
    set_cause(d, FW_CAUSE_BUTTON, d->button_until > now, out);
    settle_alarm(d, now, out);
}

int detect_hush(struct detect *d, int64_t now_ms, struct det_out *out)
{
    if (!d->alarm) {
        if (d->neighbour)
            d->neighbour_mute_until = now_ms + (int64_t)d->cfg.hush_max_s * 1000;
        return -ENOENT;
    }
    if (d->active[FW_CAUSE_HEAT_FIXED])
        return -EPERM;
    d->hush_until = now_ms + (int64_t)d->cfg.hush_max_s * 1000;
    emit(out, FW_EV_SILENCE, d->first_cause, FW_RESULT_NONE, NULL);
    return 0;
}

bool detect_selftest(struct detect *d, int64_t now_ms, struct det_out *out)
{
    const char *why = NULL;
    if (d->trouble[FW_CAUSE_SENSOR_FAULT])
        why = "temperature sensor fault";
    else if (!d->temp_valid)
        why = "no temperature reading yet";
    else if (d->trouble[FW_CAUSE_SMOKE_FAULT])
        why = "smoke input fault";
    d->test_until = now_ms + TEST_PATTERN_MS;
    emit(out, FW_EV_TEST, FW_CAUSE_NONE, why ? FW_RESULT_FAIL : FW_RESULT_PASS,
         why ? why : (d->trouble[FW_CAUSE_LOW_BATTERY] ? "battery low" : NULL));
    return why == NULL;
}

void detect_step(struct detect *d, const struct det_input *in, int64_t now_ms, struct det_out *out)
{
    if (in->has_temp)
        temp_update(d, in->temp_ok, in->temp_c, now_ms, out);
    if (in->has_batt)
        batt_update(d, in->batt_pct, out);
    smoke_update(d, in->smoke, now_ms);
    if (in->button == DET_BTN_FIRE)
        d->button_until = now_ms + (int64_t)d->cfg.button_hold_s * 1000;
    evaluate(d, now_ms, out);
    if (in->button == DET_BTN_HUSH)
        (void)detect_hush(d, now_ms, out);
    else if (in->button == DET_BTN_TEST)
        (void)detect_selftest(d, now_ms, out);
}

void detect_tick(struct detect *d, int64_t now_ms, struct det_out *out)
{
    smoke_update(d, d->smoke_raw, now_ms);
    evaluate(d, now_ms, out);
}

static int64_t earliest(int64_t a, int64_t b, int64_t now)
{
    return b > now && b < a ? b : a;
}

int64_t detect_next_ms(const struct detect *d, int64_t now_ms)
{
    int64_t next = INT64_MAX;
    if (d->smoke_raw != d->smoke) {
        int64_t need = d->smoke_raw ? d->cfg.smoke_confirm_ms
                                    : (d->cfg.smoke_confirm_ms > SMOKE_CLEAR_MIN_MS ? d->cfg.smoke_confirm_ms
                                                                                    : SMOKE_CLEAR_MIN_MS);
        int64_t at = d->smoke_raw_since + need;
        next = at > now_ms ? at : now_ms;
    }
    next = earliest(next, d->button_until, now_ms);
    next = earliest(next, d->hush_until, now_ms);
    next = earliest(next, d->test_until, now_ms);
    next = earliest(next, d->identify_until, now_ms);
    next = earliest(next, d->neighbour_mute_until, now_ms);
    return next;
}

void detect_identify(struct detect *d, int64_t now_ms, int duration_ms)
{
    d->identify_until = now_ms + duration_ms;
}

void detect_set_neighbour(struct detect *d, bool active, int64_t now_ms)
{
    (void)now_ms;
    if (active && !d->neighbour)
        d->neighbour_mute_until = 0;
    d->neighbour = active;
}

enum det_pattern detect_pattern(const struct detect *d, int64_t now_ms)
{
    bool hushed = d->hush_until > now_ms;
    if (d->alarm && !hushed)
        return DET_PAT_ALARM;
    if (d->test_until > now_ms)
        return DET_PAT_TEST;
    if (d->neighbour && d->neighbour_mute_until <= now_ms)
        return DET_PAT_NEIGHBOUR;
    if (d->identify_until > now_ms)
        return DET_PAT_IDENTIFY;
    return DET_PAT_OFF;
}

enum det_led detect_led(const struct detect *d, int64_t now_ms)
{
    if (d->alarm)
        return d->hush_until > now_ms ? DET_LED_HUSH : DET_LED_ALARM;
    if (d->identify_until > now_ms)
        return DET_LED_IDENTIFY;
    for (int c = 0; c < FW_CAUSE_COUNT; c++)
        if (d->trouble[c])
            return DET_LED_TROUBLE;
    return DET_LED_OFF;
}

bool detect_in_alarm(const struct detect *d)
{
    return d->alarm;
}

bool detect_smoke(const struct detect *d)
{
    return d->smoke;
}

const char *detect_pattern_name(enum det_pattern p)
{
    static const char *const names[] = {"off", "alarm", "neighbour", "test", "identify"};
    return (unsigned)p < DET_PAT_COUNT ? names[p] : "?";
}

const char *detect_led_name(enum det_led l)
{
    static const char *const names[] = {"off", "alarm", "hush", "trouble", "identify"};
    return (unsigned)l < DET_LED_COUNT ? names[l] : "?";
}
