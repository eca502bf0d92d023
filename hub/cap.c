/*
 * cap.c - CAP 1.2 alerts and their Atom feed (see cap.h, docs/cap.md).
 *
 * Written by hand rather than with libxml2: the documents are small, fixed
 * in shape and write-only, and what matters - escaping every piece of user
 * text and never emitting malformed UTF-8 - is one function here (xml_text),
 * tested against xmllint and the OASIS schema. All output goes through one
 * string builder that either fills the caller's buffer (failing with
 * -ENOSPC) or grows a malloc'd one. The area geometry works on integer
 * microdegrees, so the convex hull's orientation tests are exact.
 */
#include "cap.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the string builder -------------------------------------------------- */

struct sb {
    char *buf;
    size_t size, len;
    bool grow; /* realloc when full (else fail with -ENOSPC) */
    int err;   /* first error: -ENOSPC or -ENOMEM */
};

static bool sb_reserve(struct sb *b, size_t extra)
{
    if (b->err)
        return false;
    if (extra < b->size && b->len < b->size - extra)
        return true; /* room for extra bytes and the NUL */
    if (!b->grow) {
        b->err = -ENOSPC;
        return false;
    }
    size_t want = b->size ? b->size : 2048;
    while (want - b->len <= extra) {
        if (want > SIZE_MAX / 2) {
            b->err = -ENOMEM;
            return false;
        }
        want *= 2;
    }
    char *p = realloc(b->buf, want);
    if (!p) {
        b->err = -ENOMEM;
        return false;
    }
    b->buf = p;
    b->size = want;
    return true;
}

static void sb_putn(struct sb *b, const char *s, size_t n)
{
    if (!sb_reserve(b, n))
        return;
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = '\0';
}

static void sb_puts(struct sb *b, const char *s)
{
    sb_putn(b, s, strlen(s));
}

static void sb_printf(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sb *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        /* Only short numeric fragments go through here. */
        if (!b->err)
            b->err = -ENOSPC;
        return;
    }
    sb_putn(b, tmp, (size_t)n);
}

/* Length of the valid UTF-8 sequence at s that XML 1.0 can carry, or 0 when
 * the bytes there are not one (bad lead or continuation byte, overlong form,
 * surrogate, above U+10FFFF, a control character other than tab, LF and CR,
 * or U+FFFE / U+FFFF). */
static size_t xml_char_len(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return (c >= 0x20 || c == '\t' || c == '\n' || c == '\r') ? 1 : 0;
    if (c >= 0xC2 && c <= 0xDF)
        return (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        unsigned char lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        if (s[1] < lo || s[1] > hi || (s[2] & 0xC0) != 0x80)
            return 0;
        if (c == 0xEF && s[1] == 0xBF && (s[2] == 0xBE || s[2] == 0xBF))
            return 0; /* U+FFFE, U+FFFF */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        unsigned char lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        if (s[1] < lo || s[1] > hi || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        return 4;
    }
    return 0;
}

/* Appends s as XML character data, safe in elements and in attribute
 * values: the five markup characters as entities, anything XML cannot carry
 * as U+FFFD. NULL is "". */
static void xml_text(struct sb *b, const char *s)
{
    if (!s)
        return;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        const char *ent = NULL;
        switch (*p) {
        case '&': ent = "&amp;"; break;
        case '<': ent = "&lt;"; break;
        case '>': ent = "&gt;"; break;
        case '"': ent = "&quot;"; break;
        case '\'': ent = "&apos;"; break;
        default: break;
        }
        if (ent) {
            sb_puts(b, ent);
            p++;
            continue;
        }
        /* Copy the longest run of plain valid characters at once. */
        const unsigned char *run = p;
        size_t n;
        while (*p && *p != '&' && *p != '<' && *p != '>' && *p != '"' && *p != '\'' &&
               (n = xml_char_len(p)) > 0)
            p += n;
        if (p > run) {
            sb_putn(b, (const char *)run, (size_t)(p - run));
            continue;
        }
        if (*p && xml_char_len(p) == 0) {
            sb_puts(b, "\xEF\xBF\xBD"); /* U+FFFD REPLACEMENT CHARACTER */
            p++;
        }
    }
}

/* <name>text</name> on its own line. */
static void el(struct sb *b, const char *indent, const char *name, const char *text)
{
    sb_puts(b, indent);
    sb_printf(b, "<%s>", name);
    xml_text(b, text);
    sb_printf(b, "</%s>\n", name);
}

static const char *str(const char *s)
{
    return s ? s : "";
}

/* ---- times ---------------------------------------------------------------- */

static int format_utc(int64_t ms, const char *zone, char *buf, size_t size)
{
    if (ms < 0)
        return -EINVAL;
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 > 9999)
        return -EINVAL;
    int n = snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d%s", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, zone);
    if (n < 0 || (size_t)n >= size)
        return -ENOSPC;
    return n;
}

int cap_format_time(int64_t ms, char *buf, size_t size)
{
    return format_utc(ms, "-00:00", buf, size);
}

/* ---- the state mapping ----------------------------------------------------- */

/* One row per state: the message number in the incident's thread and the
 * CAP values of its <info>. docs/cap.md has the same table with reasons. */
static const struct state_row {
    int seq;
    const char *urgency, *severity, *certainty, *response;
} state_rows[INCIDENT_STATE_COUNT] = {
    [INCIDENT_VERIFYING] = {1, "Immediate", "Severe", "Likely", "Prepare"},
    [INCIDENT_ALARM] = {2, "Immediate", "Severe", "Observed", "Evacuate"},
    [INCIDENT_ACKNOWLEDGED] = {3, "Immediate", "Severe", "Observed", "Evacuate"},
    [INCIDENT_CLEARED] = {4, "Past", "Minor", "Observed", "AllClear"},
    [INCIDENT_DISMISSED] = {4, "Past", "Minor", "Unlikely", "AllClear"},
};

static const struct state_row *row_of(enum incident_state state)
{
    if ((unsigned)state >= INCIDENT_STATE_COUNT)
        return NULL;
    return &state_rows[state];
}

const char *cap_urgency(enum incident_state state)
{
    const struct state_row *r = row_of(state);
    return r ? r->urgency : NULL;
}

const char *cap_severity(enum incident_state state)
{
    const struct state_row *r = row_of(state);
    return r ? r->severity : NULL;
}

const char *cap_certainty(enum incident_state state)
{
    const struct state_row *r = row_of(state);
    return r ? r->certainty : NULL;
}

/* Whether the incident had a verifying phase, i.e. message 1 exists. An
 * incident that escalated in the call that opened it (heat_fixed, button,
 * a drill) has alarm_ms == opened_ms and starts at message 2. */
static bool had_verifying(const struct cap_incident *inc)
{
    return inc->alarm_ms == 0 || inc->alarm_ms > inc->opened_ms;
}

/* The time of message seq of the incident's thread, 0 when it never existed. */
static int64_t message_time(const struct cap_incident *inc, int seq)
{
    switch (seq) {
    case 1: return had_verifying(inc) ? inc->opened_ms : 0;
    case 2: return inc->alarm_ms;
    case 3: return inc->ack_ms;
    case 4: return inc->closed_ms;
    default: return 0;
    }
}

const char *cap_msg_type(const struct cap_incident *inc)
{
    const struct state_row *r = inc ? row_of(inc->state) : NULL;
    if (!r)
        return NULL;
    if (r->seq == 4)
        return "Cancel";
    for (int s = 1; s < r->seq; s++)
        if (message_time(inc, s) > 0)
            return "Update";
    return "Alert";
}

/* CAP forbids spaces, commas, '<' and '&' in sender and identifier; we also
 * keep them printable ASCII so they survive every consumer. */
static bool sender_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > CAP_SENDER_MAX)
        return false;
    for (; *s; s++)
        if (*s <= ' ' || *s > '~' || *s == ',' || *s == '<' || *s == '&')
            return false;
    return true;
}

/* Checks everything the writers rely on. 0 or -EINVAL. */
static int check_input(const struct cap_hub *hub, const struct cap_incident *inc)
{
    if (!hub || !inc || !hub->hub_id || !fw_id_valid(hub->hub_id))
        return -EINVAL;
    if (hub->sender && hub->sender[0] && !sender_valid(hub->sender))
        return -EINVAL;
    if (!row_of(inc->state) || (unsigned)inc->kind >= INCIDENT_KIND_COUNT)
        return -EINVAL;
    if (!inc->zone || !fw_id_valid(inc->zone) || inc->opened_ms <= 0 || inc->expires_ms < 0)
        return -EINVAL;
    if (inc->n_points > 0 && !inc->points)
        return -EINVAL;
    if (inc->n_points > CAP_POINTS_MAX)
        return -E2BIG;
    switch (inc->state) {
    case INCIDENT_VERIFYING: break;
    case INCIDENT_ALARM:
        if (inc->alarm_ms <= 0)
            return -EINVAL;
        break;
    case INCIDENT_ACKNOWLEDGED:
        if (inc->alarm_ms <= 0 || inc->ack_ms <= 0)
            return -EINVAL;
        break;
    case INCIDENT_CLEARED:
    case INCIDENT_DISMISSED:
        if (inc->closed_ms <= 0)
            return -EINVAL;
        break;
    default: return -EINVAL;
    }
    /* Times of a thread never go backwards. */
    int64_t last = 0;
    for (int s = 1; s <= row_of(inc->state)->seq; s++) {
        int64_t t = message_time(inc, s);
        if (t == 0)
            continue;
        if (t < last || t < inc->opened_ms)
            return -EINVAL;
        last = t;
    }
    return 0;
}

static void put_sender(struct sb *b, const struct cap_hub *hub)
{
    if (hub->sender && hub->sender[0])
        sb_puts(b, hub->sender);
    else
        sb_printf(b, "firewatch-%s", hub->hub_id);
}

int cap_identifier(const struct cap_hub *hub, const struct cap_incident *inc, char *buf, size_t size)
{
    if (!hub || !inc || !buf || !hub->hub_id || !fw_id_valid(hub->hub_id) || !row_of(inc->state))
        return -EINVAL;
    int n = snprintf(buf, size, "firewatch-%s-%" PRIu32 "-%d", hub->hub_id, inc->id, row_of(inc->state)->seq);
    if (n < 0 || (size_t)n >= size)
        return -ENOSPC;
    return n;
}

/* ---- area geometry --------------------------------------------------------- */

struct upt {
    int64_t lat, lon; /* microdegrees */
};

static int upt_cmp(const void *a, const void *b)
{
    const struct upt *p = a, *q = b;
    if (p->lon != q->lon)
        return p->lon < q->lon ? -1 : 1;
    if (p->lat != q->lat)
        return p->lat < q->lat ? -1 : 1;
    return 0;
}

/* Cross product of (a - o) x (b - o) with x = lon, y = lat: > 0 for a
 * counter-clockwise turn. Differences are below 4e8, so products fit. */
static int64_t cross(struct upt o, struct upt a, struct upt b)
{
    return (a.lon - o.lon) * (b.lat - o.lat) - (a.lat - o.lat) * (b.lon - o.lon);
}

static void put_coord(struct sb *b, int64_t u)
{
    int64_t a = u < 0 ? -u : u;
    sb_printf(b, "%s%lld.%06lld", u < 0 ? "-" : "", (long long)(a / 1000000), (long long)(a % 1000000));
}

static void put_pair(struct sb *b, struct upt p)
{
    put_coord(b, p.lat);
    sb_putn(b, ",", 1);
    put_coord(b, p.lon);
}

static double haversine_km(double lat1, double lon1, double lat2, double lon2)
{
    const double rad = M_PI / 180.0;
    double dlat = (lat2 - lat1) * rad, dlon = (lon2 - lon1) * rad;
    double h =
        sin(dlat / 2) * sin(dlat / 2) + cos(lat1 * rad) * cos(lat2 * rad) * sin(dlon / 2) * sin(dlon / 2);
    if (h > 1.0)
        h = 1.0;
    return 2.0 * CAP_EARTH_RADIUS_KM * asin(sqrt(h));
}

/* The circle around pts[0..n): the centre of their bounding box, and the
 * distance to the farthest one rounded up to the metre, at least
 * CAP_CIRCLE_MIN_KM. */
static void put_circle(struct sb *b, const struct upt *pts, size_t n)
{
    struct upt lo = pts[0], hi = pts[0];
    for (size_t i = 1; i < n; i++) {
        if (pts[i].lat < lo.lat)
            lo.lat = pts[i].lat;
        if (pts[i].lat > hi.lat)
            hi.lat = pts[i].lat;
        if (pts[i].lon < lo.lon)
            lo.lon = pts[i].lon;
        if (pts[i].lon > hi.lon)
            hi.lon = pts[i].lon;
    }
    struct upt c = {(lo.lat + hi.lat) / 2, (lo.lon + hi.lon) / 2};
    double far_km = 0;
    for (size_t i = 0; i < n; i++) {
        double d = haversine_km((double)c.lat / 1e6, (double)c.lon / 1e6, (double)pts[i].lat / 1e6,
                                (double)pts[i].lon / 1e6);
        if (d > far_km)
            far_km = d;
    }
    double m = ceil(far_km * 1000.0 - 1e-6); /* round up to the metre, ignoring float noise */
    if (m < CAP_CIRCLE_MIN_KM * 1000.0)
        m = CAP_CIRCLE_MIN_KM * 1000.0;
    long long metres = (long long)m;
    put_pair(b, c);
    sb_printf(b, " %lld.%03lld", metres / 1000, metres % 1000);
}

/* Writes the geometry of the positions as CAP text. Returns the enum
 * cap_geometry or a negative errno (also left in b->err for -ENOSPC and
 * -ENOMEM). */
static int put_geometry(struct sb *b, const struct cap_point *points, size_t n)
{
    if (n > CAP_POINTS_MAX)
        return -E2BIG;
    if (n == 0)
        return CAP_GEOM_NONE;
    if (!points)
        return -EINVAL;
    struct upt *u = malloc(n * sizeof *u);
    /* Andrew's monotone chain needs room for 2n hull entries. */
    struct upt *hull = malloc((2 * n + 1) * sizeof *hull);
    if (!u || !hull) {
        free(u);
        free(hull);
        return -ENOMEM;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        double lat = points[i].lat, lon = points[i].lon;
        if (!isfinite(lat) || !isfinite(lon) || lat < -90.0 || lat > 90.0 || lon < -180.0 || lon > 180.0)
            continue;
        u[m].lat = llround(lat * 1e6);
        u[m].lon = llround(lon * 1e6);
        m++;
    }
    qsort(u, m, sizeof *u, upt_cmp);
    size_t d = 0;
    for (size_t i = 0; i < m; i++)
        if (d == 0 || upt_cmp(&u[d - 1], &u[i]) != 0)
            u[d++] = u[i];

    int kind = CAP_GEOM_NONE;
    if (d >= 3) {
        size_t k = 0;
        for (size_t i = 0; i < d; i++) {
            while (k >= 2 && cross(hull[k - 2], hull[k - 1], u[i]) <= 0)
                k--;
            hull[k++] = u[i];
        }
        for (size_t i = d - 1, t = k + 1; i-- > 0;) {
            while (k >= t && cross(hull[k - 2], hull[k - 1], u[i]) <= 0)
                k--;
            hull[k++] = u[i];
        }
        /* hull[k-1] is hull[0] again: the ring is closed. k - 1 vertices. */
        if (k - 1 >= 3) {
            for (size_t i = 0; i < k; i++) {
                if (i)
                    sb_putn(b, " ", 1);
                put_pair(b, hull[i]);
            }
            kind = CAP_GEOM_POLYGON;
        }
    }
    if (kind == CAP_GEOM_NONE && d > 0) {
        put_circle(b, u, d);
        kind = CAP_GEOM_CIRCLE;
    }
    free(u);
    free(hull);
    return b->err ? b->err : kind;
}

int cap_area_text(const struct cap_point *points, size_t n, char *buf, size_t size)
{
    if (!buf || size == 0)
        return -EINVAL;
    struct sb b = {.buf = buf, .size = size};
    buf[0] = '\0';
    return put_geometry(&b, points, n);
}

/* ---- the alert ------------------------------------------------------------- */

static const char *cause_text(enum fw_cause cause)
{
    switch (cause) {
    case FW_CAUSE_SMOKE: return "smoke";
    case FW_CAUSE_HEAT_FIXED: return "high temperature";
    case FW_CAUSE_HEAT_ROR: return "a rapid rise in temperature";
    case FW_CAUSE_BUTTON: return "the manual fire button";
    default: return "an alarm";
    }
}

static const char *cause_code(enum fw_cause cause)
{
    switch (cause) {
    case FW_CAUSE_SMOKE: return "smoke";
    case FW_CAUSE_HEAT_FIXED: return "heat_fixed";
    case FW_CAUSE_HEAT_ROR: return "heat_ror";
    case FW_CAUSE_BUTTON: return "button";
    default: return NULL;
    }
}

static const char *state_code(enum incident_state s)
{
    static const char *const names[INCIDENT_STATE_COUNT] = {"verifying", "alarm", "acknowledged", "cleared",
                                                            "dismissed"};
    return (unsigned)s < INCIDENT_STATE_COUNT ? names[s] : "";
}

/* "Alley 12, Ward 7" (escaped): the zone's name, or its id, and the site. */
static void put_place(struct sb *b, const struct cap_incident *inc)
{
    xml_text(b, str(inc->zone_name)[0] ? inc->zone_name : inc->zone);
    if (str(inc->site_name)[0]) {
        sb_puts(b, ", ");
        xml_text(b, inc->site_name);
    }
}

/* " at <address>" when the address is known. */
static void put_where(struct sb *b, const struct cap_incident *inc)
{
    if (str(inc->address)[0]) {
        sb_puts(b, " at ");
        xml_text(b, inc->address);
    }
}

/* The headline's text (escaped), without the element. */
static void put_headline_text(struct sb *b, const struct cap_incident *inc)
{
    static const char *const fire[INCIDENT_STATE_COUNT] = {"Possible fire in ", "Fire in ", "Fire in ",
                                                           "Fire over in ", "False alarm in "};
    static const char *const tail[INCIDENT_STATE_COUNT] = {"", "", ": watch group responding", ": all clear",
                                                           ": dismissed"};
    static const char *const dtail[INCIDENT_STATE_COUNT] = {"", "", ": acknowledged", ": ended", ": ended"};
    bool drill = inc->kind == INCIDENT_DRILL;
    sb_puts(b, drill ? "Fire drill in " : fire[inc->state]);
    put_place(b, inc);
    sb_puts(b, drill ? dtail[inc->state] : tail[inc->state]);
}

static void put_description(struct sb *b, const struct cap_incident *inc)
{
    sb_puts(b, "    <description>");
    if (inc->kind == INCIDENT_DRILL) {
        sb_puts(b, "This is a drill, not a fire. A fire drill was started in ");
        put_place(b, inc);
        if (str(inc->opened_by)[0]) {
            sb_puts(b, " by ");
            xml_text(b, inc->opened_by);
        }
        sb_puts(b, " to measure how fast the watch group responds.");
    } else {
        sb_puts(b, inc->state == INCIDENT_VERIFYING ? "A fire alarm" : "Fire alarm");
        put_where(b, inc);
        sb_puts(b, " in ");
        put_place(b, inc);
        sb_puts(b, ": ");
        if (str(inc->origin)[0]) {
            sb_puts(b, "detector ");
            xml_text(b, inc->origin);
            sb_puts(b, " detected ");
        } else {
            sb_puts(b, "a detector reported ");
        }
        sb_puts(b, cause_text(inc->cause));
        sb_puts(b, ".");
        switch (inc->state) {
        case INCIDENT_VERIFYING:
            sb_puts(b, " The household is checking it; unless it is hushed, every home in the household "
                       "group will be alarmed.");
            break;
        case INCIDENT_ALARM:
        case INCIDENT_ACKNOWLEDGED:
            sb_puts(b, " The alarms of every home in the household group are sounding.");
            break;
        case INCIDENT_CLEARED: sb_puts(b, " The fire is over and the alarm has been cleared."); break;
        case INCIDENT_DISMISSED:
            sb_puts(b, " The household hushed it as a false alarm before the group was alarmed.");
            break;
        default: break;
        }
    }
    if (inc->state == INCIDENT_ACKNOWLEDGED || (inc->ack_ms > 0 && inc->state == INCIDENT_CLEARED)) {
        sb_puts(b, " A member of the neighbourhood watch");
        if (str(inc->ack_by)[0]) {
            sb_puts(b, " (");
            xml_text(b, inc->ack_by);
            sb_puts(b, ")");
        }
        sb_puts(b, " acknowledged it.");
    }
    sb_puts(b, "</description>\n");
}

static const char *instruction(const struct cap_incident *inc)
{
    bool drill = inc->kind == INCIDENT_DRILL;
    switch (inc->state) {
    case INCIDENT_VERIFYING:
        return "Be ready to leave your home. If you are next door, check on the household.";
    case INCIDENT_ALARM:
    case INCIDENT_ACKNOWLEDGED:
        return drill ? "This is a drill. Practise leaving your home by the planned route and meet at the "
                       "assembly point."
                     : "Leave the building now and stay out. Call the fire service. Help neighbours who need "
                       "it; do not go back inside.";
    case INCIDENT_CLEARED:
        return drill ? "The drill is over. No action is needed."
                     : "The danger is over. Return home only when the responders say it is safe.";
    case INCIDENT_DISMISSED: return "No action is needed.";
    default: return "";
    }
}

static void put_parameter(struct sb *b, const char *name, const char *value)
{
    sb_puts(b, "    <parameter>\n");
    el(b, "      ", "valueName", name);
    el(b, "      ", "value", value);
    sb_puts(b, "    </parameter>\n");
}

static void put_time_el(struct sb *b, const char *indent, const char *name, int64_t ms)
{
    char t[32];
    if (cap_format_time(ms, t, sizeof t) < 0) {
        if (!b->err)
            b->err = -EINVAL;
        return;
    }
    el(b, indent, name, t);
}

/* The <alert> element; decl adds the XML declaration first. Input checked. */
static void put_alert(struct sb *b, const struct cap_hub *hub, const struct cap_incident *inc, bool decl)
{
    const struct state_row *r = row_of(inc->state);
    char id[CAP_IDENTIFIER_MAX];
    if (cap_identifier(hub, inc, id, sizeof id) < 0) {
        b->err = -EINVAL;
        return;
    }
    if (decl)
        sb_puts(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    sb_puts(b, "<alert xmlns=\"" CAP_NAMESPACE "\">\n");
    el(b, "  ", "identifier", id);
    sb_puts(b, "  <sender>");
    put_sender(b, hub);
    sb_puts(b, "</sender>\n");
    put_time_el(b, "  ", "sent", message_time(inc, r->seq));
    el(b, "  ", "status", inc->test ? "Test" : inc->kind == INCIDENT_DRILL ? "Exercise" : "Actual");
    el(b, "  ", "msgType", cap_msg_type(inc));
    bool restricted = hub->restriction && hub->restriction[0];
    el(b, "  ", "scope", restricted ? "Restricted" : "Public");
    if (restricted)
        el(b, "  ", "restriction", hub->restriction);
    if (inc->state == INCIDENT_CLEARED || inc->state == INCIDENT_DISMISSED) {
        sb_puts(b, "  <note>");
        sb_puts(b, inc->state == INCIDENT_CLEARED ? "Cleared" : "Dismissed as a false alarm");
        if (str(inc->closed_by)[0]) {
            sb_puts(b, " by ");
            xml_text(b, inc->closed_by);
        }
        sb_puts(b, "</note>\n");
    }
    bool first = true;
    for (int s = 1; s < r->seq; s++) {
        int64_t t = message_time(inc, s);
        char when[32];
        if (t == 0 || cap_format_time(t, when, sizeof when) < 0)
            continue;
        sb_puts(b, first ? "  <references>" : " ");
        first = false;
        put_sender(b, hub);
        sb_printf(b, ",firewatch-%s-%" PRIu32 "-%d,", hub->hub_id, inc->id, s);
        sb_puts(b, when);
    }
    if (!first)
        sb_puts(b, "</references>\n");
    sb_printf(b, "  <incidents>firewatch-%s-%" PRIu32 "</incidents>\n", hub->hub_id, inc->id);

    sb_puts(b, "  <info>\n");
    el(b, "    ", "language", "en-US");
    el(b, "    ", "category", "Fire");
    el(b, "    ", "event", "Fire");
    el(b, "    ", "responseType", r->response);
    el(b, "    ", "urgency", r->urgency);
    el(b, "    ", "severity", r->severity);
    el(b, "    ", "certainty", r->certainty);
    put_time_el(b, "    ", "onset", inc->opened_ms);
    if (inc->expires_ms > 0)
        put_time_el(b, "    ", "expires", inc->expires_ms);
    if (hub->sender_name && hub->sender_name[0])
        el(b, "    ", "senderName", hub->sender_name);
    sb_puts(b, "    <headline>");
    put_headline_text(b, inc);
    sb_puts(b, "</headline>\n");
    put_description(b, inc);
    el(b, "    ", "instruction", instruction(inc));
    if (hub->web_base && hub->web_base[0]) {
        sb_puts(b, "    <web>");
        xml_text(b, hub->web_base);
        sb_puts(b, "#incidents</web>\n");
    }
    if (hub->contact && hub->contact[0])
        el(b, "    ", "contact", hub->contact);
    char num[16];
    snprintf(num, sizeof num, "%" PRIu32, inc->id);
    put_parameter(b, "firewatch:incident", num);
    put_parameter(b, "firewatch:state", state_code(inc->state));
    if (str(inc->origin)[0])
        put_parameter(b, "firewatch:origin", inc->origin);
    if (cause_code(inc->cause))
        put_parameter(b, "firewatch:cause", cause_code(inc->cause));

    sb_puts(b, "    <area>\n      <areaDesc>");
    put_place(b, inc);
    sb_puts(b, "</areaDesc>\n");
    /* polygon and circle come before geocode in the schema's sequence; the
     * geometry is built in a scratch builder to know which it is. */
    struct sb g = {.grow = true};
    int kind = put_geometry(&g, inc->points, inc->n_points);
    if (kind < 0) {
        if (!b->err)
            b->err = kind;
    } else if (kind == CAP_GEOM_POLYGON) {
        el(b, "      ", "polygon", g.buf);
    } else if (kind == CAP_GEOM_CIRCLE) {
        el(b, "      ", "circle", g.buf);
    }
    free(g.buf);
    sb_puts(b, "      <geocode>\n");
    el(b, "        ", "valueName", "firewatch:zone");
    el(b, "        ", "value", inc->zone);
    sb_puts(b, "      </geocode>\n    </area>\n  </info>\n</alert>\n");
}

int cap_alert_write(const struct cap_hub *hub, const struct cap_incident *inc, char *buf, size_t size)
{
    int rc = check_input(hub, inc);
    if (rc < 0)
        return rc;
    if (!buf || size == 0)
        return -ENOSPC;
    struct sb b = {.buf = buf, .size = size};
    buf[0] = '\0';
    put_alert(&b, hub, inc, true);
    if (b.err)
        return b.err;
    if (b.len > INT32_MAX)
        return -ENOSPC;
    return (int)b.len;
}

/* Hands the builder's buffer to the caller, or frees it and sets errno. */
static char *sb_finish(struct sb *b, size_t *len)
{
    if (b->err) {
        free(b->buf);
        errno = b->err == -ENOMEM ? ENOMEM : EINVAL;
        return NULL;
    }
    if (len)
        *len = b->len;
    return b->buf;
}

char *cap_alert_new(const struct cap_hub *hub, const struct cap_incident *inc, size_t *len)
{
    int rc = check_input(hub, inc);
    if (rc < 0) {
        errno = -rc == E2BIG ? EINVAL : -rc;
        return NULL;
    }
    struct sb b = {.grow = true};
    put_alert(&b, hub, inc, true);
    return sb_finish(&b, len);
}

/* ---- the Atom feed --------------------------------------------------------- */

static void put_atom_time(struct sb *b, const char *indent, const char *name, int64_t ms)
{
    char t[32];
    if (format_utc(ms, "Z", t, sizeof t) < 0) {
        if (!b->err)
            b->err = -EINVAL;
        return;
    }
    el(b, indent, name, t);
}

char *cap_feed_new(const struct cap_hub *hub, const struct cap_incident *incs, size_t n, int64_t now_ms,
                   size_t *len)
{
    if (!hub || !hub->hub_id || !fw_id_valid(hub->hub_id) || (n > 0 && !incs) || now_ms < 0) {
        errno = EINVAL;
        return NULL;
    }
    int64_t updated = 0;
    for (size_t i = 0; i < n; i++) {
        if (check_input(hub, &incs[i]) < 0) {
            errno = EINVAL;
            return NULL;
        }
        int64_t t = message_time(&incs[i], row_of(incs[i].state)->seq);
        if (t > updated)
            updated = t;
    }
    if (n == 0)
        updated = now_ms;

    bool web = hub->web_base && hub->web_base[0];
    struct sb b = {.grow = true};
    sb_puts(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n");
    sb_printf(&b, "  <id>urn:firewatch:%s:cap</id>\n", hub->hub_id);
    sb_puts(&b, "  <title>");
    xml_text(&b, hub->sender_name && hub->sender_name[0] ? hub->sender_name : "Firewatch");
    sb_puts(&b, ": active fire alerts</title>\n");
    put_atom_time(&b, "  ", "updated", updated);
    sb_puts(&b, "  <author>\n    <name>");
    if (hub->sender_name && hub->sender_name[0])
        xml_text(&b, hub->sender_name);
    else
        put_sender(&b, hub);
    sb_puts(&b, "</name>\n  </author>\n");
    sb_puts(&b, "  <generator>Firewatch</generator>\n");
    if (web) {
        sb_puts(&b, "  <link rel=\"self\" type=\"application/atom+xml\" href=\"");
        xml_text(&b, hub->web_base);
        sb_puts(&b, "api/v1/cap\"/>\n");
    }
    for (size_t i = 0; i < n; i++) {
        const struct cap_incident *inc = &incs[i];
        char id[CAP_IDENTIFIER_MAX];
        if (cap_identifier(hub, inc, id, sizeof id) < 0) {
            b.err = -EINVAL;
            break;
        }
        sb_puts(&b, "  <entry>\n");
        sb_printf(&b, "    <id>urn:firewatch:%s:cap:", hub->hub_id);
        sb_puts(&b, id);
        sb_puts(&b, "</id>\n");
        /* The entry's title and summary repeat the alert's headline and
         * description for readers that do not understand CAP. */
        sb_puts(&b, "    <title>");
        put_headline_text(&b, inc);
        sb_puts(&b, "</title>\n");
        put_atom_time(&b, "    ", "updated", message_time(inc, row_of(inc->state)->seq));
        if (web) {
            sb_puts(&b, "    <link rel=\"alternate\" type=\"" CAP_MIME_TYPE "\" href=\"");
            xml_text(&b, hub->web_base);
            sb_printf(&b, "api/v1/incidents/%" PRIu32 "/cap\"/>\n", inc->id);
        }
        sb_puts(&b, "    <content type=\"" CAP_MIME_TYPE "\">\n");
        put_alert(&b, hub, inc, false);
        sb_puts(&b, "    </content>\n  </entry>\n");
    }
    sb_puts(&b, "</feed>\n");
    return sb_finish(&b, len);
}

/* The alert element of a document: past an XML declaration and blanks. */
static const char *alert_element(const char *doc)
{
    const char *p = doc;
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    if (strncmp(p, "<?xml", 5) == 0) {
        const char *end = strstr(p, "?>");
        if (!end)
            return NULL;
        p = end + 2;
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
            p++;
    }
    return strncmp(p, "<alert", 6) == 0 && (p[6] == ' ' || p[6] == '>') ? p : NULL;
}

char *cap_feed_wrap(const char *feed_id, const char *title, const struct cap_feed_entry *entries, size_t n,
                    int64_t now_ms, size_t *len)
{
    if (!feed_id || !title || (n > 0 && !entries) || now_ms < 0) {
        errno = EINVAL;
        return NULL;
    }
    int64_t updated = n ? 0 : now_ms;
    for (size_t i = 0; i < n; i++) {
        if (!entries[i].id || !entries[i].title || !entries[i].alert || !alert_element(entries[i].alert) ||
            entries[i].updated_ms < 0) {
            errno = EINVAL;
            return NULL;
        }
        if (entries[i].updated_ms > updated)
            updated = entries[i].updated_ms;
    }
    struct sb b = {.grow = true};
    sb_puts(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n");
    el(&b, "  ", "id", feed_id);
    el(&b, "  ", "title", title);
    put_atom_time(&b, "  ", "updated", updated);
    sb_puts(&b, "  <author>\n    <name>");
    xml_text(&b, title);
    sb_puts(&b, "</name>\n  </author>\n  <generator>Firewatch</generator>\n");
    for (size_t i = 0; i < n; i++) {
        const struct cap_feed_entry *e = &entries[i];
        sb_puts(&b, "  <entry>\n");
        el(&b, "    ", "id", e->id);
        el(&b, "    ", "title", e->title);
        put_atom_time(&b, "    ", "updated", e->updated_ms);
        if (e->link) {
            sb_puts(&b, "    <link rel=\"alternate\" type=\"" CAP_MIME_TYPE "\" href=\"");
            xml_text(&b, e->link);
            sb_puts(&b, "\"/>\n");
        }
        sb_puts(&b, "    <content type=\"" CAP_MIME_TYPE "\">\n");
        sb_puts(&b, alert_element(e->alert));
        sb_puts(&b, "\n    </content>\n  </entry>\n");
    }
    sb_puts(&b, "</feed>\n");
    return sb_finish(&b, len);
}
