/*
 * scenario.c - see scenario.h. Written by hand: five fixed columns need no
 * CSV library, and a hand parser lets every field be range-checked with the
 * line number in the error.
 */
#include "scenario.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCENARIO_FILE_MAX (8 * 1024 * 1024)
#define SCENARIO_T_MAX 31536000.0 /* one year of scenario time */

static int fail(char *err, size_t size, int line, const char *why)
{
    if (err && size)
        snprintf(err, size, "line %d: %s", line, why);
    return -EINVAL;
}

/* Trims blanks from [*s, *e). */
static void trim(const char **s, const char **e)
{
    while (*s < *e && (**s == ' ' || **s == '\t'))
        (*s)++;
    while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t' || (*e)[-1] == '\r'))
        (*e)--;
}

/* Parses a finite number filling the whole field [s, e). */
static bool parse_num(const char *s, const char *e, double *out)
{
    char buf[48];
    size_t n = (size_t)(e - s);
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (errno || end != buf + n || !isfinite(v))
        return false;
    *out = v;
    return true;
}

static bool field_is(const char *s, const char *e, const char *word)
{
    size_t n = strlen(word);
    return (size_t)(e - s) == n && memcmp(s, word, n) == 0;
}

/* Parses one data line (NUL-free, without the newline) into row. */
static int parse_row(const char *line, size_t len, int lineno, struct scenario_row *row, char *err,
                     size_t errsize)
{
    const char *f[5][2];
    const char *p = line, *end = line + len;
    int nf = 0;
    while (nf < 5) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *fe = comma ? comma : end;
        f[nf][0] = p;
        f[nf][1] = fe;
        trim(&f[nf][0], &f[nf][1]);
        nf++;
        if (!comma)
            break;
        p = comma + 1;
        if (nf == 5)
            return fail(err, errsize, lineno, "more than 5 fields");
    }
    if (nf != 5)
        return fail(err, errsize, lineno, "expected 5 fields: " SCENARIO_HEADER);

    double v;
    if (!parse_num(f[0][0], f[0][1], &v) || v < 0 || v > SCENARIO_T_MAX)
        return fail(err, errsize, lineno, "t_s: not a time in seconds");
    row->t_ms = (int64_t)llround(v * 1000.0);

    row->temp_ok = f[1][0] != f[1][1];
    row->temp_c = 0;
    if (row->temp_ok &&
        (!parse_num(f[1][0], f[1][1], &row->temp_c) || row->temp_c < -273 || row->temp_c > 2000))
        return fail(err, errsize, lineno, "temp_c: not a temperature");

    if (field_is(f[2][0], f[2][1], "0"))
        row->smoke = false;
    else if (field_is(f[2][0], f[2][1], "1"))
        row->smoke = true;
    else
        return fail(err, errsize, lineno, "smoke: not 0 or 1");

    row->batt_ok = f[3][0] != f[3][1];
    row->batt_pct = 0;
    if (row->batt_ok) {
        if (!parse_num(f[3][0], f[3][1], &v) || v < 0 || v > 100 || v != floor(v))
            return fail(err, errsize, lineno, "batt_pct: not a whole number 0..100");
        row->batt_pct = (int)v;
    }

    if (f[4][0] == f[4][1])
        row->button = DET_BTN_NONE;
    else if (field_is(f[4][0], f[4][1], "hush"))
        row->button = DET_BTN_HUSH;
    else if (field_is(f[4][0], f[4][1], "fire"))
        row->button = DET_BTN_FIRE;
    else if (field_is(f[4][0], f[4][1], "test"))
        row->button = DET_BTN_TEST;
    else
        return fail(err, errsize, lineno, "button: not empty, hush, fire or test");
    return 0;
}

int scenario_parse(const char *text, size_t len, struct scenario *sc, char *err, size_t errsize)
{
    size_t pos = 0, cap = 0;
    int lineno = 0;
    bool header = false;
    int rc = 0;

    memset(sc, 0, sizeof *sc);
    if (err && errsize)
        err[0] = '\0';
    while (pos < len && rc == 0) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - line) : len - pos;
        pos += ll + (nl ? 1 : 0);
        lineno++;
        if (ll > SCENARIO_LINE_MAX) {
            rc = fail(err, errsize, lineno, "line too long");
            break;
        }
        if (memchr(line, '\0', ll)) {
            rc = fail(err, errsize, lineno, "NUL byte");
            break;
        }
        const char *s = line, *e = line + ll;
        trim(&s, &e);
        if (s == e || *s == '#')
            continue;
        if (!header) {
            if (!field_is(s, e, SCENARIO_HEADER)) {
                rc = fail(err, errsize, lineno, "first line must be the header " SCENARIO_HEADER);
                break;
            }
            header = true;
            continue;
        }
        if (sc->n == SCENARIO_ROWS_MAX) {
            rc = fail(err, errsize, lineno, "too many rows");
            break;
        }
        if (sc->n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            struct scenario_row *nr = realloc(sc->rows, ncap * sizeof *nr);
            if (!nr) {
                rc = -ENOMEM;
                break;
            }
            sc->rows = nr;
            cap = ncap;
        }
        struct scenario_row *row = &sc->rows[sc->n];
        rc = parse_row(s, (size_t)(e - s), lineno, row, err, errsize);
        if (rc == 0 && sc->n > 0 && row->t_ms < sc->rows[sc->n - 1].t_ms)
            rc = fail(err, errsize, lineno, "t_s goes backwards");
        if (rc == 0)
            sc->n++;
    }
    if (rc == 0 && sc->n == 0)
        rc = fail(err, errsize, lineno, header ? "no rows" : "no header");
    if (rc < 0)
        scenario_free(sc);
    return rc;
}

int scenario_load(const char *path, struct scenario *sc, char *err, size_t errsize)
{
    memset(sc, 0, sizeof *sc);
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        snprintf(err, errsize, "%s: cannot open: %s", path, strerror(e));
        return -e;
    }
    char *buf = malloc(SCENARIO_FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        return -ENOMEM;
    }
    size_t n = fread(buf, 1, SCENARIO_FILE_MAX + 1, f);
    bool bad = ferror(f) != 0;
    fclose(f);
    int rc;
    if (bad || n > SCENARIO_FILE_MAX) {
        snprintf(err, errsize, "%s: %s", path, bad ? "read error" : "larger than 8 MiB");
        rc = bad ? -EIO : -EFBIG;
    } else {
        char why[160];
        rc = scenario_parse(buf, n, sc, why, sizeof why);
        if (rc < 0)
            snprintf(err, errsize, "%s: %s", path, rc == -ENOMEM ? "out of memory" : why);
    }
    free(buf);
    return rc;
}

void scenario_free(struct scenario *sc)
{
    if (!sc)
        return;
    free(sc->rows);
    sc->rows = NULL;
    sc->n = 0;
}

void scenario_at(const struct scenario *sc, int64_t t_ms, struct scenario_state *st)
{
    /* Binary search for the last row with t <= t_ms. */
    size_t lo = 0, hi = sc->n;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (sc->rows[mid].t_ms <= t_ms)
            lo = mid;
        else
            hi = mid;
    }
    const struct scenario_row *r = &sc->rows[lo];
    st->temp_ok = r->temp_ok;
    st->temp_c = r->temp_c;
    st->smoke = r->smoke;
    st->batt_ok = r->batt_ok;
    st->batt_pct = r->batt_pct;
    if (lo + 1 < sc->n && t_ms > r->t_ms) {
        const struct scenario_row *nx = &sc->rows[lo + 1];
        if (r->temp_ok && nx->temp_ok && nx->t_ms > r->t_ms) {
            double f = (double)(t_ms - r->t_ms) / (double)(nx->t_ms - r->t_ms);
            st->temp_c = r->temp_c + (nx->temp_c - r->temp_c) * f;
        }
    }
}

enum det_button scenario_next_button(const struct scenario *sc, size_t *cursor, int64_t from_ms,
                                     int64_t to_ms)
{
    while (*cursor < sc->n && sc->rows[*cursor].t_ms <= from_ms)
        (*cursor)++;
    while (*cursor < sc->n && sc->rows[*cursor].t_ms <= to_ms) {
        enum det_button b = sc->rows[(*cursor)++].button;
        if (b != DET_BTN_NONE)
            return b;
    }
    return DET_BTN_NONE;
}

int64_t scenario_end_ms(const struct scenario *sc)
{
    return sc->n ? sc->rows[sc->n - 1].t_ms : 0;
}
