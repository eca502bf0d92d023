/*
 * hw_gpiod.c - the real backend, on libgpiod's v1 API (1.6, as Debian 12
 * and Raspberry Pi OS ship it). Inputs are requested for both edges and
 * their event fds go into the node's poll(); after each event the line's
 * value is read back and debounced in software (v1 has no hardware
 * debounce). Outputs are plain output lines; wire the sounder relay
 * fail-safe, since a line's state after the process exits is not
 * guaranteed. Temperature and battery come through sysfs (hw.c).
 */
#include <errno.h>
#include <gpiod.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "hw_internal.h"
#include "log.h"

#define CONSUMER "firewatch-node"

enum { IN_SMOKE, IN_HUSH, IN_FIRE, IN_TEST, IN_COUNT };

struct gp {
    struct gpiod_chip *chip;
    struct gpiod_line *in[IN_COUNT];
    struct hw_debounce deb[IN_COUNT];
    struct gpiod_line *sounder, *led;
};

static const char *const in_names[IN_COUNT] = {"smoke_line", "hush_line", "fire_line", "test_line"};

static int64_t gp_now(const struct hw *hw)
{
    (void)hw;
    return clock_mono_ms();
}

static int gp_fds(struct hw *hw, struct pollfd *p, int max)
{
    struct gp *g = hw->priv;
    int n = 0;
    for (int i = 0; i < IN_COUNT && n < max; i++) {
        if (!g->in[i])
            continue;
        p[n].fd = gpiod_line_event_get_fd(g->in[i]);
        p[n].events = POLLIN;
        p[n].revents = 0;
        n++;
    }
    return n;
}

static void gp_handle(struct hw *hw, const struct pollfd *p, int n, int64_t now)
{
    struct gp *g = hw->priv;
    for (int i = 0; i < IN_COUNT; i++) {
        if (!g->in[i])
            continue;
        int fd = gpiod_line_event_get_fd(g->in[i]);
        for (int k = 0; k < n; k++) {
            if (p[k].fd != fd || !(p[k].revents & POLLIN))
                continue;
            struct gpiod_line_event ev;
            if (gpiod_line_event_read(g->in[i], &ev) < 0) {
                log_warn("gpio: reading an event of %s: %s", in_names[i], strerror(errno));
                continue;
            }
            int v = gpiod_line_get_value(g->in[i]); /* the level now, active-low applied */
            if (v >= 0)
                hw_debounce_feed(&g->deb[i], v == 1, now);
        }
        int edge = hw_debounce_update(&g->deb[i], now, hw->cfg.debounce_ms);
        if (edge > 0 && i == IN_HUSH)
            hw_push_button(hw, DET_BTN_HUSH);
        else if (edge > 0 && i == IN_FIRE)
            hw_push_button(hw, DET_BTN_FIRE);
        else if (edge > 0 && i == IN_TEST)
            hw_push_button(hw, DET_BTN_TEST);
    }
}

static int64_t gp_next(const struct hw *hw)
{
    const struct gp *g = hw->priv;
    int64_t next = INT64_MAX;
    for (int i = 0; i < IN_COUNT; i++) {
        int64_t t = hw_debounce_next(&g->deb[i], hw->cfg.debounce_ms);
        if (t < next)
            next = t;
    }
    return next;
}

static bool gp_smoke(struct hw *hw)
{
    return ((struct gp *)hw->priv)->deb[IN_SMOKE].stable;
}

static void gp_set_levels(struct hw *hw, bool sounder, bool led)
{
    struct gp *g = hw->priv;
    if (g->sounder && gpiod_line_set_value(g->sounder, sounder) < 0)
        log_error("gpio: setting the sounder: %s", strerror(errno));
    if (g->led && gpiod_line_set_value(g->led, led) < 0)
        log_warn("gpio: setting the LED: %s", strerror(errno));
}

static void gp_close(struct hw *hw)
{
    struct gp *g = hw->priv;
    if (!g)
        return;
    if (g->chip)
        gpiod_chip_close(g->chip); /* releases every line requested from it */
    free(g);
}

static const struct hw_ops gp_ops = {
    .now_ms = gp_now,
    .fds = gp_fds,
    .handle = gp_handle,
    .next_mono_ms = gp_next,
    .sample = hw_sysfs_sample,
    .smoke = gp_smoke,
    .set_levels = gp_set_levels,
    .close = gp_close,
};

/* Gets line offset from the chip, naming both in the error. */
static struct gpiod_line *get_line(struct gp *g, const struct hw_config *c, int offset, const char *what,
                                   char *err, size_t errsize)
{
    struct gpiod_line *line = gpiod_chip_get_line(g->chip, (unsigned)offset);
    if (!line)
        snprintf(err, errsize, "gpio chip '%s' has no line %d (%s): %s", c->chip, offset, what,
                 strerror(errno));
    return line;
}

int hw_gpiod_open(struct hw *hw, char *err, size_t errsize)
{
    const struct hw_config *c = &hw->cfg;
    struct gp *g = calloc(1, sizeof *g);
    if (!g)
        return -ENOMEM;
    hw->priv = g;
    hw->ops = &gp_ops;
    g->chip = c->chip[0] == '/' ? gpiod_chip_open(c->chip) : gpiod_chip_open_by_name(c->chip);
    if (!g->chip) {
        int e = errno ? errno : ENODEV;
        snprintf(err, errsize, "cannot open gpio chip '%s': %s", c->chip, strerror(e));
        gp_close(hw);
        return -e;
    }
    const int offsets[IN_COUNT] = {c->smoke_line, c->hush_line, c->fire_line, c->test_line};
    for (int i = 0; i < IN_COUNT; i++) {
        if (offsets[i] < 0)
            continue;
        struct gpiod_line *line = get_line(g, c, offsets[i], in_names[i], err, errsize);
        bool low = i == IN_SMOKE ? c->smoke_active_low : c->buttons_active_low;
        int flags = low ? GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW : 0;
        if (line && gpiod_line_request_both_edges_events_flags(line, CONSUMER, flags) < 0) {
            snprintf(err, errsize, "gpio chip '%s' line %d (%s): cannot request events: %s", c->chip,
                     offsets[i], in_names[i], strerror(errno));
            line = NULL;
        }
        if (!line) {
            int e = errno ? errno : EINVAL;
            gp_close(hw);
            return -e;
        }
        g->in[i] = line;
        int v = gpiod_line_get_value(line);
        g->deb[i].raw = g->deb[i].stable = v == 1; /* the level at start is taken as settled */
    }
    struct {
        int offset;
        bool low;
        const char *what;
        struct gpiod_line **out;
    } outs[] = {{c->sounder_line, c->sounder_active_low, "sounder_line", &g->sounder},
                {c->led_line, c->led_active_low, "led_line", &g->led}};
    for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) {
        if (outs[i].offset < 0)
            continue;
        struct gpiod_line *line = get_line(g, c, outs[i].offset, outs[i].what, err, errsize);
        int flags = outs[i].low ? GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW : 0;
        if (line && gpiod_line_request_output_flags(line, CONSUMER, flags, 0) < 0) {
            snprintf(err, errsize, "gpio chip '%s' line %d (%s): cannot request output: %s", c->chip,
                     outs[i].offset, outs[i].what, strerror(errno));
            line = NULL;
        }
        if (!line) {
            int e = errno ? errno : EINVAL;
            gp_close(hw);
            return -e;
        }
        *outs[i].out = line;
    }
    return 0;
}
