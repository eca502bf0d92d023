/*
 * scenario.h - scenario files for the sim backend and the detection tests.
 *
 * A scenario is a CSV file with the header `t_s,temp_c,smoke,batt_pct,button`
 * and one row per change: t_s seconds from the start (non-decreasing);
 * temp_c a temperature, or empty for a failed read; smoke 0 or 1; batt_pct
 * 0..100, or empty on mains power; button empty, hush, fire or test (a
 * press at that moment). Lines starting with '#' are comments. Between rows
 * the temperature is interpolated linearly; the other columns hold. The
 * parser is pure over a buffer, bounded, and fuzzed.
 */
#ifndef FIREWATCH_SCENARIO_H
#define FIREWATCH_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "detect.h"

#define SCENARIO_ROWS_MAX 100000
#define SCENARIO_LINE_MAX 256
#define SCENARIO_HEADER "t_s,temp_c,smoke,batt_pct,button"

struct scenario_row {
    int64_t t_ms;
    bool temp_ok;
    double temp_c;
    bool smoke;
    bool batt_ok;
    int batt_pct;
    enum det_button button;
};

/* A parsed scenario; rows is owned by it (scenario_free). */
struct scenario {
    struct scenario_row *rows;
    size_t n;
};

/* The inputs at one moment. */
struct scenario_state {
    bool temp_ok;
    double temp_c;
    bool smoke;
    bool batt_ok;
    int batt_pct;
};

/* Parses len bytes of CSV. Returns 0 and fills sc (free with
 * scenario_free), or -EINVAL with "line N: why" in err, or -ENOMEM. */
int scenario_parse(const char *text, size_t len, struct scenario *sc, char *err, size_t errsize);

/* Reads and parses a file (at most 8 MiB). Errors start with the path. */
int scenario_load(const char *path, struct scenario *sc, char *err, size_t errsize);

void scenario_free(struct scenario *sc);

/* The inputs at t_ms (before the first row: the first row; after the last:
 * the last). Requires sc->n > 0. */
void scenario_at(const struct scenario *sc, int64_t t_ms, struct scenario_state *st);

/* Finds the next button press with from_ms < t <= to_ms, starting at row
 * *cursor (start with 0). Returns the button and advances *cursor past it,
 * or DET_BTN_NONE when there is none in the range. */
enum det_button scenario_next_button(const struct scenario *sc, size_t *cursor, int64_t from_ms,
                                     int64_t to_ms);

/* Scenario length: t_ms of the last row. */
int64_t scenario_end_ms(const struct scenario *sc);

#endif
