/*
 * hw_internal.h - what the hardware backends share with hw.c, the dispatch
 * file. Not for callers outside firmware/hw*.c.
 */
#ifndef FIREWATCH_HW_INTERNAL_H
#define FIREWATCH_HW_INTERNAL_H

#include "hw.h"

struct hw_ops {
    int64_t (*now_ms)(const struct hw *hw);
    int (*fds)(struct hw *hw, struct pollfd *p, int max);
    void (*handle)(struct hw *hw, const struct pollfd *p, int n, int64_t now_mono);
    int64_t (*next_mono_ms)(const struct hw *hw);
    void (*sample)(struct hw *hw, struct hw_sample *s);
    bool (*smoke)(struct hw *hw);
    /* Drives the outputs: pattern/mode changes (sim logs them) and levels. */
    void (*outputs)(struct hw *hw, enum det_pattern pat, enum det_led led, bool changed);
    void (*set_levels)(struct hw *hw, bool sounder, bool led);
    void (*close)(struct hw *hw);
};

#define HW_BUTTONS_MAX 8

struct hw {
    const struct hw_ops *ops;
    struct hw_config cfg;
    int64_t start_mono;
    /* output patterns, on the real clock */
    enum det_pattern pat;
    enum det_led led;
    int64_t pat_start, led_start;
    bool snd_level, led_level;
    int64_t next_edge;
    /* pressed buttons not yet taken */
    enum det_button buttons[HW_BUTTONS_MAX];
    int nbuttons;
    void *priv;
};

/* Queues a button press (dropped when HW_BUTTONS_MAX are pending). */
void hw_push_button(struct hw *hw, enum det_button b);

/* Reads temperature and battery through sysfs as cfg says. */
void hw_sysfs_sample(struct hw *hw, struct hw_sample *s);

int hw_sim_open(struct hw *hw, char *err, size_t errsize);
int hw_gpiod_open(struct hw *hw, char *err, size_t errsize);

#endif
