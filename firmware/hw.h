/*
 * hw.h - the hardware seam: inputs (smoke line, buttons, temperature,
 * battery) and outputs (sounder, LED) of one node, behind one interface with
 * two backends chosen at start-up:
 *
 *   gpiod  libgpiod v1 (1.6): the smoke line and buttons as edge-event
 *          inputs folded into the node's poll() loop and debounced in
 *          software, the sounder and LED as outputs; temperature from a
 *          DS18B20 or an IIO channel and the battery from power_supply, both
 *          through sysfs.
 *   sim    a scenario CSV (scenario.h) replayed at real speed or faster;
 *          outputs are written to a log file, one line per change.
 *
 * The backend also owns the node's clock for detection: real monotonic time
 * for gpiod, scenario time for sim, so hush and rate-of-rise windows run at
 * the scenario's pace when it is accelerated.
 */
#ifndef FIREWATCH_HW_H
#define FIREWATCH_HW_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "detect.h"

#define HW_PATH_MAX 256

/* Where a node's hardware is; filled from the node's config file. */
struct hw_config {
    char backend[8]; /* "gpiod" or "sim" */
    /* sim */
    char scenario[HW_PATH_MAX];
    double speed;
    char sim_log[HW_PATH_MAX]; /* "" : outputs are not recorded */
    /* gpiod: line offsets on chip, -1 when not wired */
    char chip[64]; /* name ("gpiochip0") or path ("/dev/gpiochip0") */
    int smoke_line, hush_line, fire_line, test_line, sounder_line, led_line;
    bool smoke_active_low, buttons_active_low, sounder_active_low, led_active_low;
    int debounce_ms;
    /* sensors */
    char temp_source[8];       /* "w1", "iio" or "none" */
    char w1_path[HW_PATH_MAX]; /* "auto": the first 28-* device */
    char iio_dir[HW_PATH_MAX];
    char battery[HW_PATH_MAX]; /* power_supply dir, "auto" or "none" */
};

/* One reading of the slow sensors. */
struct hw_sample {
    bool temp_ok;
    double temp_c;
    bool batt_ok;
    int batt_pct;
};

struct hw;

/* Opens the backend. Returns the handle (free with hw_close) or NULL with
 * errno set and a message naming what is missing (chip, line, file) in err. */
struct hw *hw_open(const struct hw_config *cfg, char *err, size_t errsize);

/* Releases the lines (outputs are switched off first) and frees hw. NULL is ignored. */
void hw_close(struct hw *hw);

/* The node's clock for detection, in ms (scenario time under sim). */
int64_t hw_now_ms(const struct hw *hw);

/* Converts a delay on the node's clock into real milliseconds (rounded up). */
int64_t hw_real_delay_ms(const struct hw *hw, int64_t node_ms);

/* Fills up to max pollfds the backend wants watched; returns how many. */
int hw_fds(struct hw *hw, struct pollfd *p, int max);

/* Reads pending input events after poll() (p and n as given to hw_fds) and
 * advances debouncing and output patterns; now_mono is clock_mono_ms(). */
void hw_handle(struct hw *hw, const struct pollfd *p, int n, int64_t now_mono);

/* The earliest clock_mono_ms() at which hw_handle must run again (pattern
 * edges, debounce), or INT64_MAX. */
int64_t hw_next_mono_ms(const struct hw *hw);

/* Reads temperature and battery (blocking for a DS18B20 conversion). */
void hw_sample(struct hw *hw, struct hw_sample *s);

/* The smoke input's debounced level. */
bool hw_smoke(struct hw *hw);

/* Takes the next pending button press, or DET_BTN_NONE. */
enum det_button hw_take_button(struct hw *hw);

/* Sets what the sounder and LED play; a change restarts the pattern. */
void hw_set_outputs(struct hw *hw, enum det_pattern sounder, enum det_led led, int64_t now_mono);

/* Whether a pattern or LED mode drives its output at t ms into it; *next_ms
 * gets the time into it of the next change (INT64_MAX when steady). Pure. */
bool hw_pattern_level(enum det_pattern p, int64_t t, int64_t *next_ms);
bool hw_led_level(enum det_led l, int64_t t, int64_t *next_ms);

/* Software debounce of one input line: the level is accepted once the raw
 * level has held for debounce_ms. Zero-initialise. */
struct hw_debounce {
    bool stable, raw;
    int64_t raw_since;
};

/* Feeds a raw level seen at now. */
void hw_debounce_feed(struct hw_debounce *d, bool raw, int64_t now);

/* Returns +1 on an accepted rising edge, -1 on a falling one, 0 otherwise. */
int hw_debounce_update(struct hw_debounce *d, int64_t now, int debounce_ms);

/* When hw_debounce_update may next report an edge, or INT64_MAX. */
int64_t hw_debounce_next(const struct hw_debounce *d, int debounce_ms);

#endif
