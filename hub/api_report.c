/*
 * api_report.c - readiness per site and zone, and the monthly report.
 *
 * Readiness is computed here, from the database, with the pure scorer in
 * hub/readiness.h: households and nodes of the zone (commissioned, online,
 * battery, open troubles, last passed test) and the acknowledge times of
 * its last ten incidents and drills. It reads the same rows the daemon
 * writes, so the figures lag the daemon by at most its last commit; no hook
 * is needed. The monthly report gathers a month of incidents, drills,
 * tests and troubles per zone for the watch group's review meeting, as a
 * printable HTML page (every text HTML-escaped) or as CSV (quoted, with
 * spreadsheet formula triggers defused).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "readiness.h"

#define ZONES_MAX 4096
#define ZONE_NODES_MAX 4096
#define RESPONSES_MAX 10

struct zone_ref {
    char id[40], name[128], site[40];
};

struct buf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void b_put(struct buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 4096) + n;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

#define B_LIT(b, s) b_put((b), (s), sizeof(s) - 1)

static void b_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void b_printf(struct buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        b_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Text for HTML: &, <, >, " and ' become entities. */
static void b_html(struct buf *b, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': B_LIT(b, "&amp;"); break;
        case '<': B_LIT(b, "&lt;"); break;
        case '>': B_LIT(b, "&gt;"); break;
        case '"': B_LIT(b, "&quot;"); break;
        case '\'': B_LIT(b, "&#39;"); break;
        default: b_put(b, s, 1);
        }
    }
}

/* One CSV field: quoted, quotes doubled; a leading = + - @ gets a ' so a
 * spreadsheet shows it instead of evaluating it. */
static void b_csv(struct buf *b, const char *s)
{
    B_LIT(b, "\"");
    if (s && (*s == '=' || *s == '+' || *s == '-' || *s == '@' || *s == '\t' || *s == '\r'))
        B_LIT(b, "'");
    for (; s && *s; s++) {
        if (*s == '"')
            B_LIT(b, "\"\"");
        else
            b_put(b, s, 1);
    }
    B_LIT(b, "\"");
}

/* --- Readiness ----------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* Scores one zone from the database. Returns SQLITE_DONE or an error code. */
static int zone_score(struct api_db *db, const char *zone, int64_t now_ms, struct readiness_result *out)
{
    char(*hh)[40] = NULL;
    struct readiness_node *nodes = NULL;
    size_t n_hh = 0, n_nodes = 0, cap_hh = 0;
    int64_t resp[RESPONSES_MAX];
    size_t n_resp = 0;
    int rc = SQLITE_ERROR;

    sqlite3_stmt *q = api_stmt(db, Q_RD_HOUSEHOLDS);
    if (!q)
        goto done;
    sqlite3_bind_text(q, 1, zone, -1, SQLITE_TRANSIENT);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (n_hh == cap_hh) {
            cap_hh = cap_hh ? cap_hh * 2 : 32;
            void *np = realloc(hh, cap_hh * sizeof *hh);
            if (!np) {
                rc = SQLITE_NOMEM;
                goto done;
            }
            hh = np;
        }
        const unsigned char *id = sqlite3_column_text(q, 0);
        snprintf(hh[n_hh++], sizeof hh[0], "%s", id ? (const char *)id : "");
    }
    sqlite3_reset(q);
    if (rc != SQLITE_DONE)
        goto done;
    /* Ordered by id in SQL, but sort with strcmp so bsearch agrees. */
    if (n_hh)
        qsort(hh, n_hh, sizeof hh[0], cmp_str);

    q = api_stmt(db, Q_RD_NODES);
    rc = SQLITE_ERROR;
    if (!q)
        goto done;
    sqlite3_bind_text(q, 1, zone, -1, SQLITE_TRANSIENT);
    size_t cap_nodes = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW && n_nodes < ZONE_NODES_MAX) {
        char key[40];
        const unsigned char *h = sqlite3_column_text(q, 0);
        snprintf(key, sizeof key, "%s", h ? (const char *)h : "");
        char(*found)[40] = n_hh ? bsearch(key, hh, n_hh, sizeof hh[0], cmp_str) : NULL;
        if (!found)
            continue;
        if (n_nodes == cap_nodes) {
            cap_nodes = cap_nodes ? cap_nodes * 2 : 32;
            void *np = realloc(nodes, cap_nodes * sizeof *nodes);
            if (!np) {
                rc = SQLITE_NOMEM;
                break;
            }
            nodes = np;
        }
        struct readiness_node *n = &nodes[n_nodes++];
        memset(n, 0, sizeof *n);
        n->household = (uint32_t)(found - hh);
        n->commissioned = sqlite3_column_int64(q, 1) > 0;
        n->online = sqlite3_column_int(q, 2) != 0;
        int batt = sqlite3_column_int(q, 3);
        n->battery_ok = !sqlite3_column_int(q, 6) && (batt < 0 || batt >= 20);
        n->last_pass_ms = sqlite3_column_int64(q, 4);
        n->trouble_free = sqlite3_column_int(q, 5) != 0;
    }
    sqlite3_reset(q);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        goto done;

    q = api_stmt(db, Q_RD_RESPONSE);
    rc = SQLITE_ERROR;
    if (!q)
        goto done;
    sqlite3_bind_text(q, 1, zone, -1, SQLITE_TRANSIENT);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW && n_resp < RESPONSES_MAX) {
        int64_t v = sqlite3_column_int64(q, 0);
        resp[n_resp++] = v < 0 ? 0 : v;
    }
    sqlite3_reset(q);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        goto done;

    struct readiness_zone_input in = {
        .households = (uint32_t)n_hh,
        .nodes = nodes,
        .n_nodes = n_nodes,
        .response_ms = resp,
        .n_response = n_resp,
    };
    rc = readiness_zone(&in, now_ms, out) == 0 ? SQLITE_DONE : SQLITE_ERROR;
done:
    free(hh);
    free(nodes);
    return rc;
}

static cJSON *zone_json(const struct zone_ref *z, const struct readiness_result *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", z->id);
    cJSON_AddStringToObject(o, "name", z->name);
    cJSON_AddNumberToObject(o, "score", r->score);
    cJSON_AddStringToObject(o, "level", readiness_level_name(r->level));
    cJSON *parts = cJSON_AddObjectToObject(o, "points");
    cJSON_AddNumberToObject(parts, "coverage", r->coverage_pts);
    cJSON_AddNumberToObject(parts, "health", r->health_pts);
    cJSON_AddNumberToObject(parts, "tested", r->tested_pts);
    cJSON_AddNumberToObject(parts, "response", r->response_pts);
    cJSON *c = cJSON_AddObjectToObject(o, "counts");
    cJSON_AddNumberToObject(c, "households", r->households);
    cJSON_AddNumberToObject(c, "covered", r->covered);
    cJSON_AddNumberToObject(c, "nodes", r->nodes);
    cJSON_AddNumberToObject(c, "healthy", r->healthy);
    cJSON_AddNumberToObject(c, "tested", r->tested);
    cJSON_AddNumberToObject(c, "uncommissioned", r->uncommissioned);
    cJSON_AddNumberToObject(c, "offline", r->offline);
    cJSON_AddNumberToObject(c, "battery_low", r->battery_low);
    cJSON_AddNumberToObject(c, "troubled", r->troubled);
    if (r->median_response_ms >= 0)
        cJSON_AddNumberToObject(o, "median_response_ms", (double)r->median_response_ms);
    else
        cJSON_AddNullToObject(o, "median_response_ms");
    cJSON *reasons = cJSON_AddArrayToObject(o, "reasons");
    for (size_t i = 0; i < r->n_reasons; i++)
        cJSON_AddItemToArray(reasons, cJSON_CreateString(r->reasons[i]));
    return o;
}

/* Loads the zones of site (NULL: all) into a malloc'd array. */
static int load_zones(struct api_db *db, const char *site, struct zone_ref **out, size_t *n_out)
{
    sqlite3_stmt *q = api_stmt(db, Q_ZONE_IDS_OF_SITE);
    if (!q)
        return SQLITE_ERROR;
    if (site)
        sqlite3_bind_text(q, 1, site, -1, SQLITE_TRANSIENT);
    struct zone_ref *z = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW && n < ZONES_MAX) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            void *np = realloc(z, cap * sizeof *z);
            if (!np) {
                rc = SQLITE_NOMEM;
                break;
            }
            z = np;
        }
        const unsigned char *t;
        t = sqlite3_column_text(q, 0);
        snprintf(z[n].id, sizeof z[n].id, "%s", t ? (const char *)t : "");
        t = sqlite3_column_text(q, 1);
        snprintf(z[n].name, sizeof z[n].name, "%s", t ? (const char *)t : "");
        t = sqlite3_column_text(q, 2);
        snprintf(z[n].site, sizeof z[n].site, "%s", t ? (const char *)t : "");
        n++;
    }
    sqlite3_reset(q);
    if (rc == SQLITE_ROW)
        rc = SQLITE_DONE;
    if (rc != SQLITE_DONE) {
        free(z);
        return rc;
    }
    *out = z;
    *n_out = n;
    return SQLITE_DONE;
}

static const char *site_name(struct api_db *db, const char *site, char *out, size_t size)
{
    out[0] = '\0';
    sqlite3_stmt *q = api_stmt(db, Q_SITE_GET);
    if (!q)
        return NULL;
    sqlite3_bind_text(q, 1, site, -1, SQLITE_TRANSIENT);
    const char *ret = NULL;
    if (sqlite3_step(q) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(q, 1);
        snprintf(out, size, "%s", t ? (const char *)t : "");
        ret = out;
    }
    sqlite3_reset(q);
    return ret;
}

cJSON *api_readiness_json(struct api_db *db, const char *site, int64_t now_ms)
{
    struct zone_ref *zones = NULL;
    size_t n = 0;
    if (load_zones(db, site, &zones, &n) != SQLITE_DONE)
        return NULL;
    struct readiness_result *res = calloc(n ? n : 1, sizeof *res);
    cJSON *sites = cJSON_CreateArray();
    bool ok = res && sites;
    for (size_t i = 0; ok && i < n; i++)
        ok = zone_score(db, zones[i].id, now_ms, &res[i]) == SQLITE_DONE;
    /* Zones come ordered by site: one site object per run. */
    for (size_t i = 0; ok && i < n;) {
        size_t j = i;
        while (j < n && strcmp(zones[j].site, zones[i].site) == 0)
            j++;
        struct readiness_site_result sr;
        readiness_site(&res[i], j - i, &sr);
        char name[128];
        site_name(db, zones[i].site, name, sizeof name);
        cJSON *so = cJSON_CreateObject();
        cJSON_AddStringToObject(so, "id", zones[i].site);
        cJSON_AddStringToObject(so, "name", name);
        cJSON_AddNumberToObject(so, "score", sr.score);
        cJSON_AddStringToObject(so, "level", readiness_level_name(sr.level));
        cJSON_AddNumberToObject(so, "households", sr.households);
        cJSON *za = cJSON_AddArrayToObject(so, "zones");
        for (size_t k = i; k < j; k++)
            cJSON_AddItemToArray(za, zone_json(&zones[k], &res[k]));
        cJSON_AddItemToArray(sites, so);
        i = j;
    }
    free(zones);
    free(res);
    if (!ok) {
        cJSON_Delete(sites);
        return NULL;
    }
    return sites;
}

void api_readiness(struct api_req *rq, struct api_reply *rp)
{
    const char *site = api_arg(rq, "site");
    if (site && (!*site || strlen(site) > 32)) {
        api_error(rp, 400, "site must be an id");
        return;
    }
    struct api_db *db = api_db_get(rq->srv);
    char name[128];
    if (site && !site_name(db, site, name, sizeof name)) {
        api_db_put(rq->srv, db);
        api_error(rp, 404, "no such site");
        return;
    }
    cJSON *sites = api_readiness_json(db, site, api_now_ms());
    api_db_put(rq->srv, db);
    if (!sites) {
        api_error(rp, 500, "database error");
        return;
    }
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddItemToObject(doc, "sites", sites);
    api_reply_json(rp, 200, doc);
}

/* --- Monthly report ------------------------------------------------------ */

struct zone_month {
    unsigned fires, false_alarms, drills, acked;
    int64_t ack_ms[64];
    unsigned tests, nodes_tested, troubles;
    char trouble_kinds[160];
};

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int64_t median(int64_t *v, unsigned n)
{
    if (n == 0)
        return -1;
    qsort(v, n, sizeof *v, cmp_i64);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void fmt_duration(int64_t ms, char *out, size_t size)
{
    if (ms < 0)
        snprintf(out, size, "-");
    else
        snprintf(out, size, "%" PRId64 " min %02" PRId64 " s", ms / 60000, (ms / 1000) % 60);
}

static void fmt_time(int64_t ms, char *out, size_t size)
{
    if (ms <= 0) {
        out[0] = '\0';
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(out, size, "%Y-%m-%d %H:%M:%S", &tm);
}

static int zone_index(const struct zone_ref *z, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(z[i].id, id) == 0)
            return (int)i;
    return -1;
}

void api_report_monthly(struct api_req *rq, struct api_reply *rp)
{
    const char *site = api_arg(rq, "site");
    const char *month = api_arg(rq, "month");
    const char *format = api_arg(rq, "format");
    bool csv = format && strcmp(format, "csv") == 0;
    if (format && !csv && strcmp(format, "html") != 0) {
        api_error(rp, 400, "format is html or csv");
        return;
    }
    if (!site || !*site || strlen(site) > 32) {
        api_error(rp, 400, "site is required");
        return;
    }
    int year, mon;
    time_t now_t = time(NULL);
    struct tm tm;
    localtime_r(&now_t, &tm);
    year = tm.tm_year + 1900;
    mon = tm.tm_mon + 1;
    if (month) {
        char *end;
        long y = strtol(month, &end, 10);
        long m = (*end == '-') ? strtol(end + 1, &end, 10) : 0;
        if (strlen(month) != 7 || month[4] != '-' || *end || y < 2000 || y > 2099 || m < 1 || m > 12) {
            api_error(rp, 400, "month is YYYY-MM");
            return;
        }
        year = (int)y;
        mon = (int)m;
    }
    /* The month in the hub's local time zone. */
    struct tm a = {.tm_year = year - 1900, .tm_mon = mon - 1, .tm_mday = 1, .tm_isdst = -1};
    struct tm b = {.tm_year = year - 1900 + (mon == 12), .tm_mon = mon % 12, .tm_mday = 1, .tm_isdst = -1};
    int64_t from = (int64_t)mktime(&a) * 1000, to = (int64_t)mktime(&b) * 1000;

    struct api_db *db = api_db_get(rq->srv);
    char sname[128];
    if (!site_name(db, site, sname, sizeof sname)) {
        api_db_put(rq->srv, db);
        api_error(rp, 404, "no such site");
        return;
    }
    struct zone_ref *zones = NULL;
    size_t nz = 0;
    int rc = load_zones(db, site, &zones, &nz);
    struct zone_month *zm = calloc(nz ? nz : 1, sizeof *zm);
    struct readiness_result *res = calloc(nz ? nz : 1, sizeof *res);
    struct buf inc_rows = {0};
    if (rc != SQLITE_DONE || !zm || !res)
        goto fail;
    for (size_t i = 0; i < nz && rc == SQLITE_DONE; i++)
        rc = zone_score(db, zones[i].id, api_now_ms(), &res[i]);
    if (rc != SQLITE_DONE)
        goto fail;

    sqlite3_stmt *q = api_stmt(db, Q_RPT_INCIDENTS);
    if (!q)
        goto fail;
    sqlite3_bind_text(q, 1, site, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(q, 2, from);
    sqlite3_bind_int64(q, 3, to);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int zi = zone_index(zones, nz, (const char *)sqlite3_column_text(q, 1));
        if (zi < 0)
            continue;
        struct zone_month *m = &zm[zi];
        bool drill = sqlite3_column_int(q, 2) != 0;
        const char *state = (const char *)sqlite3_column_text(q, 3);
        int64_t opened = sqlite3_column_int64(q, 5), esc = sqlite3_column_int64(q, 6),
                acked = sqlite3_column_int64(q, 7);
        if (drill)
            m->drills++;
        else if (state && strcmp(state, "dismissed") == 0)
            m->false_alarms++;
        else
            m->fires++;
        if (acked > 0 && m->acked < 64) {
            int64_t start = !drill && esc > 0 ? esc : opened;
            m->ack_ms[m->acked++] = acked > start ? acked - start : 0;
        }
        /* One row per incident for the detail table. */
        char t_open[32], t_ack[32], t_clear[32];
        fmt_time(opened, t_open, sizeof t_open);
        fmt_time(acked, t_ack, sizeof t_ack);
        fmt_time(sqlite3_column_int64(q, 9), t_clear, sizeof t_clear);
        const char *cols[] = {
            (const char *)sqlite3_column_text(q, 0),
            zones[zi].id,
            drill ? "drill" : "fire",
            state ? state : "",
            (const char *)sqlite3_column_text(q, 4),
            (const char *)sqlite3_column_text(q, 10),
            t_open,
            t_ack,
            (const char *)sqlite3_column_text(q, 8),
            t_clear,
        };
        if (csv) {
            B_LIT(&inc_rows, "\"incident\"");
            for (size_t c = 0; c < sizeof cols / sizeof cols[0]; c++) {
                B_LIT(&inc_rows, ",");
                b_csv(&inc_rows, cols[c]);
            }
            B_LIT(&inc_rows, "\r\n");
        } else {
            B_LIT(&inc_rows, "<tr>");
            for (size_t c = 0; c < sizeof cols / sizeof cols[0]; c++) {
                B_LIT(&inc_rows, "<td>");
                b_html(&inc_rows, cols[c]);
                B_LIT(&inc_rows, "</td>");
            }
            B_LIT(&inc_rows, "</tr>\n");
        }
    }
    sqlite3_reset(q);
    if (rc != SQLITE_DONE)
        goto fail;

    q = api_stmt(db, Q_RPT_TESTS);
    if (!q)
        goto fail;
    sqlite3_bind_text(q, 1, site, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(q, 2, from);
    sqlite3_bind_int64(q, 3, to);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int zi = zone_index(zones, nz, (const char *)sqlite3_column_text(q, 0));
        if (zi >= 0) {
            zm[zi].tests = (unsigned)sqlite3_column_int(q, 1);
            zm[zi].nodes_tested = (unsigned)sqlite3_column_int(q, 2);
        }
    }
    sqlite3_reset(q);
    if (rc != SQLITE_DONE)
        goto fail;

    q = api_stmt(db, Q_RPT_TROUBLES);
    if (!q)
        goto fail;
    sqlite3_bind_text(q, 1, site, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(q, 2, from);
    sqlite3_bind_int64(q, 3, to);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int zi = zone_index(zones, nz, (const char *)sqlite3_column_text(q, 0));
        if (zi < 0)
            continue;
        struct zone_month *m = &zm[zi];
        unsigned cnt = (unsigned)sqlite3_column_int(q, 2);
        m->troubles += cnt;
        size_t l = strlen(m->trouble_kinds);
        snprintf(m->trouble_kinds + l, sizeof m->trouble_kinds - l, "%s%s %u", l ? ", " : "",
                 (const char *)sqlite3_column_text(q, 1), cnt);
    }
    sqlite3_reset(q);
    if (rc != SQLITE_DONE)
        goto fail;
    api_db_put(rq->srv, db);
    db = NULL;

    struct readiness_site_result sr;
    readiness_site(res, nz, &sr);
    char mlabel[32];
    snprintf(mlabel, sizeof mlabel, "%04d-%02d", year, mon);
    struct buf out = {0};
    if (csv) {
        B_LIT(&out,
              "\"section\",\"zone\",\"name\",\"readiness\",\"level\",\"households\",\"nodes\",\"fires\","
              "\"false_alarms\",\"drills\",\"median_ack\",\"tests_passed\",\"nodes_tested\","
              "\"troubles\",\"reasons\"\r\n");
        for (size_t i = 0; i < nz; i++) {
            struct zone_month *m = &zm[i];
            char med[32], reasons[READINESS_REASONS_MAX * READINESS_REASON_MAX] = "";
            fmt_duration(median(m->ack_ms, m->acked), med, sizeof med);
            for (size_t k = 0; k < res[i].n_reasons; k++) {
                size_t l = strlen(reasons);
                snprintf(reasons + l, sizeof reasons - l, "%s%s", k ? "; " : "", res[i].reasons[k]);
            }
            B_LIT(&out, "\"zone\",");
            b_csv(&out, zones[i].id);
            B_LIT(&out, ",");
            b_csv(&out, zones[i].name);
            b_printf(&out, ",%u,\"%s\",%u,%u,%u,%u,%u,\"%s\",%u,%u,", res[i].score,
                     readiness_level_name(res[i].level), res[i].households, res[i].nodes, m->fires,
                     m->false_alarms, m->drills, med, m->tests, m->nodes_tested);
            b_csv(&out, m->trouble_kinds);
            B_LIT(&out, ",");
            b_csv(&out, reasons);
            B_LIT(&out, "\r\n");
        }
        B_LIT(&out, "\"section\",\"id\",\"zone\",\"kind\",\"state\",\"cause\",\"origin\",\"opened\","
                    "\"acknowledged\",\"acknowledged_by\",\"cleared\"\r\n");
        if (inc_rows.p)
            b_put(&out, inc_rows.p, inc_rows.len);
        snprintf(rp->disposition, sizeof rp->disposition, "attachment; filename=\"firewatch-%s-%s.csv\"",
                 site, mlabel);
    } else {
        B_LIT(&out, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                    "<link rel=\"stylesheet\" href=\"/report.css\"><title>Firewatch monthly report: ");
        b_html(&out, sname);
        b_printf(&out,
                 " %s</title></head><body>\n<header><h1>Monthly readiness report</h1><p class=\"site\">",
                 mlabel);
        b_html(&out, sname);
        B_LIT(&out, " (");
        b_html(&out, site);
        b_printf(&out,
                 "), %s</p>\n<p class=\"score level-%s\">Site readiness now: <b>%u</b> (%s), %u "
                 "households</p></header>\n",
                 mlabel, readiness_level_name(sr.level), sr.score, readiness_level_name(sr.level),
                 sr.households);
        B_LIT(&out, "<h2>Zones</h2>\n<table><thead><tr><th>Zone</th><th>Readiness</th><th>Households</th>"
                    "<th>Detectors</th><th>Fires</th><th>False alarms</th><th>Drills</th><th>Median "
                    "acknowledge</th><th>Tests passed</th><th>Troubles opened</th><th>Why not 100</th></tr>"
                    "</thead><tbody>\n");
        for (size_t i = 0; i < nz; i++) {
            struct zone_month *m = &zm[i];
            char med[32];
            fmt_duration(median(m->ack_ms, m->acked), med, sizeof med);
            B_LIT(&out, "<tr><td>");
            b_html(&out, zones[i].name[0] ? zones[i].name : zones[i].id);
            B_LIT(&out, " <small>");
            b_html(&out, zones[i].id);
            b_printf(&out,
                     "</small></td><td class=\"level-%s\">%u</td><td>%u</td><td>%u</td><td>%u</td>"
                     "<td>%u</td><td>%u</td><td>%s</td><td>%u (%u detectors)</td><td>%u",
                     readiness_level_name(res[i].level), res[i].score, res[i].households, res[i].nodes,
                     m->fires, m->false_alarms, m->drills, med, m->tests, m->nodes_tested, m->troubles);
            if (m->trouble_kinds[0]) {
                B_LIT(&out, " <small>");
                b_html(&out, m->trouble_kinds);
                B_LIT(&out, "</small>");
            }
            B_LIT(&out, "</td><td><ul>");
            for (size_t k = 0; k < res[i].n_reasons; k++) {
                B_LIT(&out, "<li>");
                b_html(&out, res[i].reasons[k]);
                B_LIT(&out, "</li>");
            }
            B_LIT(&out, "</ul></td></tr>\n");
        }
        B_LIT(&out, "</tbody></table>\n<h2>Incidents and drills</h2>\n<table><thead><tr><th>#</th><th>Zone"
                    "</th><th>Kind</th><th>State</th><th>Cause</th><th>Origin</th><th>Opened</th>"
                    "<th>Acknowledged</th><th>By</th><th>Cleared</th></tr></thead><tbody>\n");
        if (inc_rows.p)
            b_put(&out, inc_rows.p, inc_rows.len);
        B_LIT(&out, "</tbody></table>\n<footer><p>Readiness is as of the moment this report was made; "
                    "the month's events are in the hub's local time.</p></footer></body></html>\n");
    }
    free(zones);
    free(zm);
    free(res);
    free(inc_rows.p);
    if (out.oom || !out.p) {
        free(out.p);
        api_error(rp, 500, "out of memory");
        return;
    }
    api_reply_body(rp, 200, csv ? "text/csv; charset=utf-8" : "text/html; charset=utf-8", out.p, out.len);
    return;
fail:
    if (db)
        api_db_put(rq->srv, db);
    free(zones);
    free(zm);
    free(res);
    free(inc_rows.p);
    api_error(rp, 500, "database error");
}
