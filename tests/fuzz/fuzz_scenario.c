/*
 * fuzz_scenario.c - libFuzzer target for the sim backend's scenario CSV
 * parser: any input either parses into rows that keep the documented
 * invariants or is refused with a "line N: why" message, never crashes.
 * The same file builds the corpus replayer run by `make test`.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scenario.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct scenario sc;
    char err[160];
    int rc = scenario_parse((const char *)data, size, &sc, err, sizeof err);
    if (rc < 0) {
        if (strncmp(err, "line ", 5) != 0 || sc.rows != NULL || sc.n != 0)
            abort();
        return 0;
    }
    if (sc.n == 0 || sc.n > SCENARIO_ROWS_MAX)
        abort();
    for (size_t i = 0; i < sc.n; i++) {
        const struct scenario_row *r = &sc.rows[i];
        if (r->t_ms < 0 || (i > 0 && r->t_ms < sc.rows[i - 1].t_ms) || r->batt_pct < 0 || r->batt_pct > 100)
            abort();
    }
    int64_t end = scenario_end_ms(&sc);
    struct scenario_state st;
    int64_t probes[] = {-1, 0, end / 3, end / 2, end, end + 1};
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++)
        scenario_at(&sc, probes[i], &st);
    size_t cursor = 0;
    int presses = 0;
    while (scenario_next_button(&sc, &cursor, -1, end) != DET_BTN_NONE)
        if (++presses > (int)sc.n)
            abort();
    scenario_free(&sc);
    return 0;
}
