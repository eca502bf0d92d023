/*
 * detect.h - fire detection and local annunciation for one node, as a pure
 * module.
 *
 * The node feeds it samples (temperature, smoke line, battery), button
 * presses, commands and the zone's alarm state, each with now_ms from the
 * node's clock (the scenario clock under the sim backend); it answers with
 * the protocol events to publish and with what the sounder and LED should
 * do. It does no I/O and reads no clock, so every scenario curve in
 * tests/data/scenarios/ is replayed through it directly. The rules and where
 * their numbers come from are in docs/firmware.md.
 */
#ifndef FIREWATCH_DETECT_H
#define FIREWATCH_DETECT_H

#include <stdbool.h>
#include <stdint.h>

#include "firewatch/protocol.h"

/* Thresholds and timings. detect_config_default() fills the documented
 * defaults; the node's config file can override each one. */
struct det_config {
    double fixed_c;        /* fixed heat alarm, deg C (57: NFPA 72 ordinary, EN 54-5 A1) */
    double ror_c_per_min;  /* rate-of-rise alarm, deg C per minute (8.3 = 15 F/min) */
    int ror_window_s;      /* sliding window the rise must be sustained over */
    double comp_c;         /* rate-compensated threshold, deg C */
    double comp_c_per_min; /* ... applies while rising at least this fast */
    int smoke_confirm_ms;  /* smoke line must stay active this long */
    int hush_max_s;        /* longest a hush silences the local sounder */
    int button_hold_s;     /* a manual call point alarm lasts this long */
    int low_batt_pct;      /* low battery trouble below this */
    int fault_reads;       /* consecutive bad temperature reads before a sensor fault */
    int stuck_s;           /* identical readings for this long is a sensor fault (0: off) */
    double temp_min_c;     /* plausible range of the sensor; outside is a bad read */
    double temp_max_c;
};

/* What the sounder plays. Patterns are defined in hw.h. */
enum det_pattern {
    DET_PAT_OFF,
    DET_PAT_ALARM,     /* local alarm: ISO 8201 temporal-three */
    DET_PAT_NEIGHBOUR, /* another home in the zone is burning: slow distinct pulse */
    DET_PAT_TEST,      /* self-test: short steady tone */
    DET_PAT_IDENTIFY,  /* identify: chirps */
    DET_PAT_COUNT
};

enum det_led { DET_LED_OFF, DET_LED_ALARM, DET_LED_HUSH, DET_LED_TROUBLE, DET_LED_IDENTIFY, DET_LED_COUNT };

enum det_button { DET_BTN_NONE, DET_BTN_HUSH, DET_BTN_FIRE, DET_BTN_TEST };

/* One sample of the inputs. has_temp/has_batt say whether this call carries
 * a new reading of that sensor (smoke is a level, always present). */
struct det_input {
    bool has_temp;
    bool temp_ok; /* false: the read failed */
    double temp_c;
    bool has_batt;
    int batt_pct; /* 0..100 */
    bool smoke;   /* raw smoke line level (already debounced against contact bounce) */
    enum det_button button;
};

/* An event to publish (seq and ts are added by the caller). */
struct det_event {
    enum fw_event_type type;
    enum fw_cause cause;
    enum fw_result result;
    char detail[48];
};

#define DET_EVENTS_MAX 8
struct det_out {
    int n;
    struct det_event ev[DET_EVENTS_MAX];
};

#define DET_RING 256

/* Detector state: a value struct so tests and the node can embed it; touch
 * it only through the functions below. */
struct detect {
    struct det_config cfg;
    /* temperature history for the rate of rise: (t, temp) pairs */
    int64_t ring_t[DET_RING];
    double ring_c[DET_RING];
    int ring_head, ring_len;
    double temp_c; /* last good temperature */
    bool temp_valid;
    int bad_reads, good_reads;
    double stuck_value;
    bool stuck_armed;
    int64_t stuck_since;
    /* smoke confirmation */
    bool smoke_raw;
    int64_t smoke_raw_since;
    bool smoke;
    /* alarm state per cause (index by enum fw_cause) */
    bool active[FW_CAUSE_COUNT];
    bool alarm;
    enum fw_cause first_cause;
    int64_t button_until;
    int64_t hush_until; /* 0: not hushed */
    /* troubles latched (index by enum fw_cause) */
    bool trouble[FW_CAUSE_COUNT];
    int batt_pct;
    /* annunciation */
    bool neighbour;
    int64_t neighbour_mute_until;
    int64_t test_until;
    int64_t identify_until;
    double rate_c_per_min; /* last computed rate over the window, for readings and logs */
};

/* Fills the default thresholds. */
void detect_config_default(struct det_config *cfg);

/* Initialises d with cfg (copied). */
void detect_init(struct detect *d, const struct det_config *cfg);

/* Replaces the thresholds (SIGHUP reload) keeping the state. */
void detect_set_config(struct detect *d, const struct det_config *cfg);

/* Feeds one input sample taken at now_ms; appends events to out (which the
 * caller zeroes). now_ms must not go backwards. */
void detect_step(struct detect *d, const struct det_input *in, int64_t now_ms, struct det_out *out);

/* Advances timers only (hush expiry, smoke confirmation, button hold). */
void detect_tick(struct detect *d, int64_t now_ms, struct det_out *out);

/* The earliest now_ms at which detect_tick has something to do, or
 * INT64_MAX. */
int64_t detect_next_ms(const struct detect *d, int64_t now_ms);

/* Hush by command (same as the hush button). Returns 0 when it silenced a
 * local alarm (a silence event is appended), -EPERM when fixed heat forbids
 * it, -ENOENT when there is no local alarm to silence. */
int detect_hush(struct detect *d, int64_t now_ms, struct det_out *out);

/* Runs the self-test: appends a test event (pass, or fail with the reason in
 * detail) and plays the test pattern for a moment. Returns true on pass. */
bool detect_selftest(struct detect *d, int64_t now_ms, struct det_out *out);

/* Blinks the LED and chirps for duration_ms. */
void detect_identify(struct detect *d, int64_t now_ms, int duration_ms);

/* Sets whether the zone is in alarm for an incident from another node. */
void detect_set_neighbour(struct detect *d, bool active, int64_t now_ms);

/* The sounder pattern and LED mode wanted at now_ms. */
enum det_pattern detect_pattern(const struct detect *d, int64_t now_ms);
enum det_led detect_led(const struct detect *d, int64_t now_ms);

/* True while any alarm cause is active; smoke as confirmed. */
bool detect_in_alarm(const struct detect *d);
bool detect_smoke(const struct detect *d);

/* Name of a pattern or LED mode, as written to the sim log. */
const char *detect_pattern_name(enum det_pattern p);
const char *detect_led_name(enum det_led l);

#endif
