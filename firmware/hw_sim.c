/*
 * hw_sim.c - the simulated backend: inputs replayed from a scenario CSV on
 * the scenario clock ((real time since start) x speed), outputs recorded to
 * the sim log as "<scenario seconds> sounder|led <name>" lines, flushed at
 * once so tests can read them while the node runs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "hw_internal.h"
#include "scenario.h"

struct sim {
    struct scenario sc;
    size_t cursor;   /* next row for button presses */
    int64_t seen_ms; /* scenario time already replayed */
    bool smoke;
    FILE *log;
    enum det_pattern logged_pat;
    enum det_led logged_led;
};

static int64_t sim_now(const struct hw *hw)
{
    return (int64_t)((double)(clock_mono_ms() - hw->start_mono) * hw->cfg.speed);
}

/* Replays rows up to now: smoke level and button presses. */
static void sim_handle(struct hw *hw, const struct pollfd *p, int n, int64_t now_mono)
{
    (void)p;
    (void)n;
    (void)now_mono;
    struct sim *s = hw->priv;
    int64_t now = sim_now(hw);
    enum det_button b;
    while ((b = scenario_next_button(&s->sc, &s->cursor, s->seen_ms, now)) != DET_BTN_NONE)
        hw_push_button(hw, b);
    struct scenario_state st;
    scenario_at(&s->sc, now, &st);
    s->smoke = st.smoke;
    s->seen_ms = now;
}

/* The real time of the next row that changes smoke or presses a button. */
static int64_t sim_next(const struct hw *hw)
{
    const struct sim *s = hw->priv;
    for (size_t i = s->cursor; i < s->sc.n; i++) {
        const struct scenario_row *r = &s->sc.rows[i];
        if (r->t_ms <= s->seen_ms)
            continue;
        if (r->button != DET_BTN_NONE || r->smoke != s->smoke)
            return hw->start_mono + hw_real_delay_ms(hw, r->t_ms);
        if (i > s->cursor + 1000)
            break; /* far enough; the node's own timers wake it before */
    }
    return INT64_MAX;
}

static void sim_sample(struct hw *hw, struct hw_sample *out)
{
    struct sim *s = hw->priv;
    struct scenario_state st;
    scenario_at(&s->sc, sim_now(hw), &st);
    out->temp_ok = st.temp_ok;
    out->temp_c = st.temp_c;
    out->batt_ok = st.batt_ok;
    out->batt_pct = st.batt_pct;
}

static bool sim_smoke(struct hw *hw)
{
    return ((struct sim *)hw->priv)->smoke;
}

static void sim_outputs(struct hw *hw, enum det_pattern pat, enum det_led led, bool changed)
{
    struct sim *s = hw->priv;
    (void)changed;
    if (!s->log)
        return;
    double t = (double)sim_now(hw) / 1000.0;
    if (pat != s->logged_pat)
        fprintf(s->log, "%.3f sounder %s\n", t, detect_pattern_name(pat));
    if (led != s->logged_led)
        fprintf(s->log, "%.3f led %s\n", t, detect_led_name(led));
    fflush(s->log);
    s->logged_pat = pat;
    s->logged_led = led;
}

static void sim_close(struct hw *hw)
{
    struct sim *s = hw->priv;
    if (s->log) {
        fprintf(s->log, "%.3f stop\n", (double)sim_now(hw) / 1000.0);
        fclose(s->log);
    }
    scenario_free(&s->sc);
    free(s);
}

static const struct hw_ops sim_ops = {
    .now_ms = sim_now,
    .handle = sim_handle,
    .next_mono_ms = sim_next,
    .sample = sim_sample,
    .smoke = sim_smoke,
    .outputs = sim_outputs,
    .close = sim_close,
};

int hw_sim_open(struct hw *hw, char *err, size_t errsize)
{
    if (hw->cfg.scenario[0] == '\0') {
        snprintf(err, errsize, "backend sim needs a scenario file (option scenario)");
        return -EINVAL;
    }
    if (!(hw->cfg.speed > 0)) {
        snprintf(err, errsize, "speed must be above 0");
        return -EINVAL;
    }
    struct sim *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    int rc = scenario_load(hw->cfg.scenario, &s->sc, err, errsize);
    if (rc < 0) {
        free(s);
        return rc;
    }
    if (hw->cfg.sim_log[0]) {
        s->log = fopen(hw->cfg.sim_log, "we");
        if (!s->log) {
            rc = -errno;
            snprintf(err, errsize, "%s: cannot write the sim log: %s", hw->cfg.sim_log, strerror(errno));
            scenario_free(&s->sc);
            free(s);
            return rc;
        }
        fprintf(s->log, "0.000 start %s speed %g\n", hw->cfg.scenario, hw->cfg.speed);
        fflush(s->log);
    }
    s->seen_ms = -1;
    hw->priv = s;
    hw->ops = &sim_ops;
    return 0;
}
