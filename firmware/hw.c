/*
 * hw.c - the hardware seam's dispatch: picks the backend, runs the sounder
 * and LED patterns on the real clock (the same for both backends) and holds
 * the pieces both share: software debounce, pending buttons and the sysfs
 * sensor readers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "hw_internal.h"
#include "sysfs.h"

/* Patterns as on/off durations in ms, starting with "on"; one cycle
 * repeats. Alarm is ISO 8201 temporal-three; the neighbour pattern is a
 * slow even pulse no one mistakes for it. */
static const int pat_alarm[] = {500, 500, 500, 500, 500, 1500};
static const int pat_neighbour[] = {1000, 1000};
static const int pat_identify[] = {100, 900};
static const int led_hush[] = {100, 1900};
static const int led_trouble[] = {100, 9900};
static const int led_identify[] = {250, 250};

static bool steps_level(const int *steps, int n, int64_t t, int64_t *next_ms)
{
    int64_t cycle = 0;
    for (int i = 0; i < n; i++)
        cycle += steps[i];
    if (cycle <= 0) {
        *next_ms = INT64_MAX;
        return false;
    }
    int64_t base = t - t % cycle, pos = t % cycle, acc = 0;
    for (int i = 0; i < n; i++) {
        acc += steps[i];
        if (pos < acc) {
            *next_ms = base + acc;
            return i % 2 == 0;
        }
    }
    *next_ms = base + cycle;
    return false;
}

#define STEPS(a) a, (int)(sizeof a / sizeof a[0])

bool hw_pattern_level(enum det_pattern p, int64_t t, int64_t *next_ms)
{
    switch (p) {
    case DET_PAT_ALARM: return steps_level(STEPS(pat_alarm), t, next_ms);
    case DET_PAT_NEIGHBOUR: return steps_level(STEPS(pat_neighbour), t, next_ms);
    case DET_PAT_IDENTIFY: return steps_level(STEPS(pat_identify), t, next_ms);
    case DET_PAT_TEST: *next_ms = INT64_MAX; return true;
    case DET_PAT_OFF:
    case DET_PAT_COUNT: break;
    }
    *next_ms = INT64_MAX;
    return false;
}

bool hw_led_level(enum det_led l, int64_t t, int64_t *next_ms)
{
    switch (l) {
    case DET_LED_ALARM: *next_ms = INT64_MAX; return true;
    case DET_LED_HUSH: return steps_level(STEPS(led_hush), t, next_ms);
    case DET_LED_TROUBLE: return steps_level(STEPS(led_trouble), t, next_ms);
    case DET_LED_IDENTIFY: return steps_level(STEPS(led_identify), t, next_ms);
    case DET_LED_OFF:
    case DET_LED_COUNT: break;
    }
    *next_ms = INT64_MAX;
    return false;
}

void hw_debounce_feed(struct hw_debounce *d, bool raw, int64_t now)
{
    if (raw != d->raw) {
        d->raw = raw;
        d->raw_since = now;
    }
}

int hw_debounce_update(struct hw_debounce *d, int64_t now, int debounce_ms)
{
    if (d->raw == d->stable || now - d->raw_since < debounce_ms)
        return 0;
    d->stable = d->raw;
    return d->stable ? 1 : -1;
}

int64_t hw_debounce_next(const struct hw_debounce *d, int debounce_ms)
{
    return d->raw == d->stable ? INT64_MAX : d->raw_since + debounce_ms;
}

struct hw *hw_open(const struct hw_config *cfg, char *err, size_t errsize)
{
    struct hw *hw = calloc(1, sizeof *hw);
    if (!hw) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    hw->cfg = *cfg;
    hw->start_mono = clock_mono_ms();
    hw->next_edge = INT64_MAX;
    int rc;
    if (strcmp(cfg->backend, "sim") == 0) {
        rc = hw_sim_open(hw, err, errsize);
    } else if (strcmp(cfg->backend, "gpiod") == 0) {
        rc = hw_gpiod_open(hw, err, errsize);
    } else {
        snprintf(err, errsize, "unknown hardware backend '%s'", cfg->backend);
        rc = -EINVAL;
    }
    if (rc < 0) {
        free(hw);
        errno = -rc;
        return NULL;
    }
    return hw;
}

void hw_close(struct hw *hw)
{
    if (!hw)
        return;
    if (hw->ops->set_levels)
        hw->ops->set_levels(hw, false, false);
    hw->ops->close(hw);
    free(hw);
}

int64_t hw_now_ms(const struct hw *hw)
{
    return hw->ops->now_ms(hw);
}

int64_t hw_real_delay_ms(const struct hw *hw, int64_t node_ms)
{
    if (node_ms <= 0)
        return 0;
    double speed = strcmp(hw->cfg.backend, "sim") == 0 && hw->cfg.speed > 0 ? hw->cfg.speed : 1.0;
    double real = (double)node_ms / speed;
    int64_t r = (int64_t)real;
    return (double)r < real ? r + 1 : r;
}

int hw_fds(struct hw *hw, struct pollfd *p, int max)
{
    return hw->ops->fds ? hw->ops->fds(hw, p, max) : 0;
}

/* Recomputes the output levels at now and drives them on a change. */
static void run_patterns(struct hw *hw, int64_t now)
{
    int64_t n1, n2;
    bool s = hw_pattern_level(hw->pat, now - hw->pat_start, &n1);
    bool l = hw_led_level(hw->led, now - hw->led_start, &n2);
    hw->next_edge = INT64_MAX;
    if (n1 != INT64_MAX)
        hw->next_edge = hw->pat_start + n1;
    if (n2 != INT64_MAX && hw->led_start + n2 < hw->next_edge)
        hw->next_edge = hw->led_start + n2;
    if (s != hw->snd_level || l != hw->led_level) {
        hw->snd_level = s;
        hw->led_level = l;
        if (hw->ops->set_levels)
            hw->ops->set_levels(hw, s, l);
    }
}

void hw_handle(struct hw *hw, const struct pollfd *p, int n, int64_t now_mono)
{
    if (hw->ops->handle)
        hw->ops->handle(hw, p, n, now_mono);
    if (now_mono >= hw->next_edge)
        run_patterns(hw, now_mono);
}

int64_t hw_next_mono_ms(const struct hw *hw)
{
    int64_t b = hw->ops->next_mono_ms ? hw->ops->next_mono_ms(hw) : INT64_MAX;
    return b < hw->next_edge ? b : hw->next_edge;
}

void hw_sample(struct hw *hw, struct hw_sample *s)
{
    memset(s, 0, sizeof *s);
    hw->ops->sample(hw, s);
}

bool hw_smoke(struct hw *hw)
{
    return hw->ops->smoke(hw);
}

void hw_push_button(struct hw *hw, enum det_button b)
{
    if (hw->nbuttons < HW_BUTTONS_MAX)
        hw->buttons[hw->nbuttons++] = b;
}

enum det_button hw_take_button(struct hw *hw)
{
    if (hw->nbuttons == 0)
        return DET_BTN_NONE;
    enum det_button b = hw->buttons[0];
    memmove(hw->buttons, hw->buttons + 1, (size_t)(hw->nbuttons - 1) * sizeof hw->buttons[0]);
    hw->nbuttons--;
    return b;
}

void hw_set_outputs(struct hw *hw, enum det_pattern sounder, enum det_led led, int64_t now_mono)
{
    bool changed = sounder != hw->pat || led != hw->led;
    if (sounder != hw->pat) {
        hw->pat = sounder;
        hw->pat_start = now_mono;
    }
    if (led != hw->led) {
        hw->led = led;
        hw->led_start = now_mono;
    }
    if (changed) {
        if (hw->ops->outputs)
            hw->ops->outputs(hw, sounder, led, true);
        run_patterns(hw, now_mono);
    }
}

void hw_sysfs_sample(struct hw *hw, struct hw_sample *s)
{
    const struct hw_config *c = &hw->cfg;
    int rc = -ENODEV;
    if (strcmp(c->temp_source, "w1") == 0) {
        char path[HW_PATH_MAX + 32];
        if (strcmp(c->w1_path, "auto") == 0)
            rc = sysfs_find_w1("/sys/bus/w1/devices", path, sizeof path);
        else
            rc = snprintf(path, sizeof path, "%s", c->w1_path) < 0 ? -EINVAL : 0;
        if (rc == 0)
            rc = sysfs_read_w1(path, &s->temp_c);
    } else if (strcmp(c->temp_source, "iio") == 0) {
        rc = sysfs_read_iio(c->iio_dir, &s->temp_c);
    }
    s->temp_ok = rc == 0;
    if (strcmp(c->battery, "none") != 0) {
        char dir[HW_PATH_MAX + 32];
        rc = 0;
        if (strcmp(c->battery, "auto") == 0)
            rc = sysfs_find_battery("/sys/class/power_supply", dir, sizeof dir);
        else
            snprintf(dir, sizeof dir, "%s", c->battery);
        s->batt_ok = rc == 0 && sysfs_read_battery(dir, &s->batt_pct) == 0;
    }
}
