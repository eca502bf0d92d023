/*
 * ctl.c - firewatchctl, the command line for admins and technicians.
 *
 * It reads the hub's config file for the database and the broker's files,
 * and talks to the database directly: topology and users are plain rows (the
 * running hub notices the change counter move and reloads), while anything
 * that changes an incident (ack, clear, drill) or needs the MQTT link (a
 * commissioning test) is queued in the commands table for the hub, which
 * owns that state, and the answer is awaited. It also manages the broker's
 * security through hub/brokercfg: the Mosquitto configuration, one password
 * and one ACL block per node, reloads, TLS certificates. Every command is one
 * row of a table with its usage line; lists are SQL queries printed as
 * aligned columns or, with --json, as a JSON array of objects. Passwords are
 * printed only inside the node config the technician asked for.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <sodium.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "brokercfg.h"
#include "clock.h"
#include "fed.h"
#include "firewatch/protocol.h"
#include "hubconf.h"
#include "log.h"
#include "readiness.h"
#include "readyscan.h"
#include "store.h"
#include "techview.h"

#ifndef FIREWATCH_VERSION
#define FIREWATCH_VERSION "0.1.0"
#endif

#define ARGS_MAX 16

/* One parsed command line: positionals and --key value options. */
struct args {
    const char *pos[ARGS_MAX];
    size_t n_pos;
    const char *key[ARGS_MAX];
    const char *val[ARGS_MAX];
    size_t n_opt;
    bool json, help;
};

struct ctx {
    struct store *db;
    struct args a;
    char who[64];
    struct hub_config cfg;
    int acl_areas; /* area accounts in the last ACL written */
};

static const char *opt(const struct args *a, const char *key)
{
    for (size_t i = 0; i < a->n_opt; i++)
        if (strcmp(a->key[i], key) == 0)
            return a->val[i];
    return NULL;
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("firewatchctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

/* Turns a store error into an operator's sentence. */
static int store_fail(int rc, const char *what, const char *id)
{
    switch (rc) {
    case -EEXIST: return fail("%s %s already exists", what, id);
    case -ENOENT: return fail("%s %s, or something it refers to, does not exist", what, id);
    case -ENOTEMPTY: return fail("%s %s is still in use; remove what belongs to it first", what, id);
    case -EINVAL: return fail("%s '%s': invalid value (ids are [a-z0-9][a-z0-9-]{0,31})", what, id);
    default: return fail("%s %s: %s", what, id, strerror(-rc));
    }
}

static void audit(struct ctx *c, const char *action, const char *detail)
{
    store_audit(c->db, c->who, action, detail, clock_wall_ms());
}

/* ---- printing query results --------------------------------------------- */

/* Prints the rows of sql (with up to two text parameters) as columns or JSON. */
static int print_query(struct ctx *c, const char *sql, const char *p1, const char *p2)
{
    sqlite3 *db = store_handle(c->db);
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK)
        return fail("query failed: %s", sqlite3_errmsg(db));
    if (p1)
        sqlite3_bind_text(q, 1, p1, -1, SQLITE_STATIC);
    if (p2)
        sqlite3_bind_text(q, 2, p2, -1, SQLITE_STATIC);
    int cols = sqlite3_column_count(q);
    cJSON *arr = cJSON_CreateArray();
    size_t width[32] = {0};
    int ncols = cols < 32 ? cols : 32;
    for (int i = 0; i < ncols; i++)
        width[i] = strlen(sqlite3_column_name(q, i));
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        cJSON *row = cJSON_CreateObject();
        for (int i = 0; i < ncols; i++) {
            const char *name = sqlite3_column_name(q, i);
            const char *t = (const char *)sqlite3_column_text(q, i);
            switch (sqlite3_column_type(q, i)) {
            case SQLITE_INTEGER:
                cJSON_AddNumberToObject(row, name, (double)sqlite3_column_int64(q, i));
                break;
            case SQLITE_FLOAT: cJSON_AddNumberToObject(row, name, sqlite3_column_double(q, i)); break;
            case SQLITE_NULL: cJSON_AddNullToObject(row, name); break;
            default: cJSON_AddStringToObject(row, name, t ? t : "");
            }
            size_t l = t ? strlen(t) : 1;
            if (l > width[i])
                width[i] = l;
        }
        cJSON_AddItemToArray(arr, row);
    }
    if (rc != SQLITE_DONE) {
        cJSON_Delete(arr);
        sqlite3_finalize(q);
        return fail("query failed: %s", sqlite3_errmsg(db));
    }
    if (c->a.json) {
        char *s = cJSON_Print(arr);
        if (s)
            puts(s);
        free(s);
    } else {
        for (int i = 0; i < ncols; i++)
            printf("%-*s%s", (int)width[i], sqlite3_column_name(q, i), i + 1 < ncols ? "  " : "\n");
        cJSON *row;
        cJSON_ArrayForEach(row, arr)
        {
            int i = 0;
            cJSON *f;
            cJSON_ArrayForEach(f, row)
            {
                char buf[64];
                const char *v = buf;
                if (cJSON_IsString(f))
                    v = f->valuestring;
                else if (cJSON_IsNull(f))
                    v = "-";
                else if (f->valuedouble == (double)(long long)f->valuedouble)
                    snprintf(buf, sizeof buf, "%lld", (long long)f->valuedouble);
                else
                    snprintf(buf, sizeof buf, "%.2f", f->valuedouble);
                printf("%-*s%s", (int)width[i], v, i + 1 < ncols ? "  " : "\n");
                i++;
            }
        }
    }
    cJSON_Delete(arr);
    sqlite3_finalize(q);
    return 0;
}

static int need(const struct ctx *c, size_t n_pos, const char *usage)
{
    if (c->a.n_pos < n_pos)
        return fail("usage: firewatchctl %s", usage);
    return 0;
}

/* ---- sites, zones, households, nodes ------------------------------------ */

static int site_add(struct ctx *c)
{
    const char *id = c->a.pos[0];
    int rc = store_site_add(c->db, id, opt(&c->a, "name"));
    if (rc < 0)
        return store_fail(rc, "site", id);
    audit(c, "site add", id);
    return 0;
}

static int site_edit(struct ctx *c)
{
    const char *id = c->a.pos[0];
    if (!opt(&c->a, "name"))
        return fail("site edit: nothing to change (give --name)");
    int rc = store_site_edit(c->db, id, opt(&c->a, "name"));
    if (rc < 0)
        return store_fail(rc, "site", id);
    audit(c, "site edit", id);
    return 0;
}

static int site_remove(struct ctx *c)
{
    int rc = store_site_remove(c->db, c->a.pos[0]);
    if (rc < 0)
        return store_fail(rc, "site", c->a.pos[0]);
    audit(c, "site remove", c->a.pos[0]);
    return 0;
}

static int site_list(struct ctx *c)
{
    return print_query(c,
                       "SELECT s.id, s.name, (SELECT count(*) FROM zones z WHERE z.site_id = s.id) AS zones "
                       "FROM sites s ORDER BY s.id",
                       NULL, NULL);
}

static int zone_add(struct ctx *c)
{
    const char *id = c->a.pos[0], *site = opt(&c->a, "site");
    if (!site)
        return fail("zone add: --site is required");
    int rc = store_zone_add(c->db, id, site, opt(&c->a, "name"), opt(&c->a, "neighbours"));
    if (rc < 0)
        return store_fail(rc, "zone", id);
    audit(c, "zone add", id);
    return 0;
}

static int zone_edit(struct ctx *c)
{
    const char *id = c->a.pos[0];
    int rc = store_zone_edit(c->db, id, opt(&c->a, "site"), opt(&c->a, "name"), opt(&c->a, "neighbours"));
    if (rc < 0)
        return store_fail(rc, "zone", id);
    audit(c, "zone edit", id);
    return 0;
}

static int zone_remove(struct ctx *c)
{
    int rc = store_zone_remove(c->db, c->a.pos[0]);
    if (rc < 0)
        return store_fail(rc, "zone", c->a.pos[0]);
    audit(c, "zone remove", c->a.pos[0]);
    return 0;
}

static int zone_list(struct ctx *c)
{
    return print_query(
        c,
        "SELECT z.id, z.site_id AS site, z.name, COALESCE((SELECT group_concat(neighbour_id, ',') "
        "FROM zone_neighbours WHERE zone_id = z.id), '') AS neighbours, (SELECT count(*) FROM "
        "households h WHERE h.zone_id = z.id) AS households FROM zones z "
        "WHERE ?1 IS NULL OR z.site_id = ?1 ORDER BY z.id",
        opt(&c->a, "site"), NULL);
}

static int parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end)
        return -EINVAL;
    *out = v;
    return 0;
}

/* Fills h from the options; fields not given keep their value. */
static int household_opts(struct ctx *c, struct store_household *h)
{
    const char *v;
    if ((v = opt(&c->a, "zone")))
        snprintf(h->zone, sizeof h->zone, "%s", v);
    if ((v = opt(&c->a, "address")))
        snprintf(h->address, sizeof h->address, "%s", v);
    if ((v = opt(&c->a, "contact")))
        snprintf(h->contact, sizeof h->contact, "%s", v);
    if ((v = opt(&c->a, "phone")))
        snprintf(h->phone, sizeof h->phone, "%s", v);
    const char *lat = opt(&c->a, "lat"), *lon = opt(&c->a, "lon");
    if (lat || lon) {
        if (!lat || !lon || parse_double(lat, &h->lat) < 0 || parse_double(lon, &h->lon) < 0 ||
            h->lat < -90 || h->lat > 90 || h->lon < -180 || h->lon > 180)
            return fail("household: --lat and --lon go together and must be degrees");
        h->has_pos = true;
    }
    return 0;
}

static int household_add(struct ctx *c)
{
    struct store_household h;
    memset(&h, 0, sizeof h);
    snprintf(h.id, sizeof h.id, "%s", c->a.pos[0]);
    if (strlen(c->a.pos[0]) > FW_ID_MAX)
        return store_fail(-EINVAL, "household", c->a.pos[0]);
    if (!opt(&c->a, "zone"))
        return fail("household add: --zone is required");
    if (household_opts(c, &h))
        return 1;
    int rc = store_household_add(c->db, &h);
    if (rc < 0)
        return store_fail(rc, "household", h.id);
    audit(c, "household add", h.id);
    return 0;
}

static int household_edit(struct ctx *c)
{
    struct store_household h;
    int rc = store_household_get(c->db, c->a.pos[0], &h);
    if (rc < 0)
        return store_fail(rc, "household", c->a.pos[0]);
    if (household_opts(c, &h))
        return 1;
    rc = store_household_edit(c->db, &h);
    if (rc < 0)
        return store_fail(rc, "household", h.id);
    audit(c, "household edit", h.id);
    return 0;
}

static int household_remove(struct ctx *c)
{
    int rc = store_household_remove(c->db, c->a.pos[0]);
    if (rc < 0)
        return store_fail(rc, "household", c->a.pos[0]);
    audit(c, "household remove", c->a.pos[0]);
    return 0;
}

static int household_list(struct ctx *c)
{
    return print_query(
        c,
        "SELECT h.id, h.zone_id AS zone, h.address, h.contact, h.phone, h.lat, h.lon, "
        "(SELECT count(*) FROM nodes n WHERE n.household_id = h.id) AS nodes FROM households h "
        "WHERE ?1 IS NULL OR h.zone_id = ?1 ORDER BY h.id",
        opt(&c->a, "zone"), NULL);
}

/* ---- the broker: passwords, ACL, reload --------------------------------- */

/* True when firewatchctl manages the broker's accounts: the password file
 * exists, or at least the directory it goes in (then node add creates it, so
 * nodes may be provisioned before `broker config`). Otherwise - a hub whose
 * broker someone else runs, or no broker_* paths set up yet - nodes are
 * registered without credentials, and the defaults under /etc are never
 * created behind the operator's back. */
static bool broker_managed(const struct ctx *c)
{
    const char *path = c->cfg.broker_passwd;
    if (!path[0])
        return false;
    if (access(path, F_OK) == 0)
        return true;
    char dir[512];
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path || (size_t)(slash - path) >= sizeof dir)
        return false;
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = '\0';
    struct stat st;
    return stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
}

static const char *hub_user(const struct ctx *c)
{
    return c->cfg.username[0] ? c->cfg.username : BROKERCFG_HUB_USER_DEFAULT;
}

/* Reads the ids of the areas in service (removed_ms = 0) into a malloc'd
 * array of ids. Returns the count or a negative errno (reported). */
static int areas_active(struct ctx *c, char (**out)[FW_ID_MAX + 1])
{
    sqlite3 *db = store_handle(c->db);
    sqlite3_stmt *q;
    *out = NULL;
    if (sqlite3_prepare_v2(db, "SELECT id FROM areas WHERE removed_ms = 0 ORDER BY id", -1, &q, NULL) !=
        SQLITE_OK) {
        fail("cannot read the areas: %s", sqlite3_errmsg(db));
        return -EIO;
    }
    char(*ids)[FW_ID_MAX + 1] = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    while (rc == 0 && sqlite3_step(q) == SQLITE_ROW) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            void *a = realloc(ids, ncap * sizeof *ids);
            if (!a) {
                rc = -ENOMEM;
                break;
            }
            ids = a;
            cap = ncap;
        }
        const unsigned char *id = sqlite3_column_text(q, 0);
        snprintf(ids[n], sizeof ids[n], "%s", id ? (const char *)id : "");
        n++;
    }
    sqlite3_finalize(q);
    if (rc < 0) {
        free(ids);
        return rc;
    }
    *out = ids;
    return (int)n;
}

/* Rewrites the ACL from the database and hub.conf: the hub (plus its
 * federation subtree when federation is on, and Home Assistant's discovery
 * prefix when ha_discovery is), every node in service with its zone, and on
 * a regional hub every area in service. Returns the number of nodes or a
 * negative errno (reported); c->acl_areas gets the number of areas. */
static int acl_rewrite(struct ctx *c)
{
    sqlite3 *db = store_handle(c->db);
    sqlite3_stmt *q = NULL;
    struct brokercfg_node *nodes = NULL;
    char(*ids)[FW_ID_MAX + 1] = NULL;
    char(*zones)[FW_ID_MAX + 1] = NULL;
    char(*areas)[FW_ID_MAX + 1] = NULL;
    const char **area_ids = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    if (sqlite3_prepare_v2(db,
                           "SELECT n.id, h.zone_id FROM nodes n JOIN households h ON h.id = n.household_id "
                           "WHERE n.decommissioned_ms = 0 ORDER BY n.id",
                           -1, &q, NULL) != SQLITE_OK) {
        fail("cannot read the nodes: %s", sqlite3_errmsg(db));
        return -EIO;
    }
    while (rc == 0 && sqlite3_step(q) == SQLITE_ROW) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 256;
            void *a = realloc(ids, ncap * sizeof *ids), *b = a ? realloc(zones, ncap * sizeof *zones) : NULL;
            if (a)
                ids = a;
            if (b)
                zones = b;
            if (!a || !b) {
                rc = -ENOMEM;
                break;
            }
            cap = ncap;
        }
        const unsigned char *id = sqlite3_column_text(q, 0), *zone = sqlite3_column_text(q, 1);
        snprintf(ids[n], sizeof ids[n], "%s", id ? (const char *)id : "");
        snprintf(zones[n], sizeof zones[n], "%s", zone ? (const char *)zone : "");
        n++;
    }
    sqlite3_finalize(q);
    if (rc == 0 && n > 0 && !(nodes = calloc(n, sizeof *nodes)))
        rc = -ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        nodes[i].id = ids[i];
        nodes[i].zone = zones[i];
    }
    int n_areas = 0;
    if (rc == 0 && (n_areas = areas_active(c, &areas)) < 0)
        rc = n_areas;
    if (rc == 0 && n_areas > 0 && !(area_ids = calloc((size_t)n_areas, sizeof *area_ids)))
        rc = -ENOMEM;
    for (int i = 0; rc == 0 && i < n_areas; i++)
        area_ids[i] = areas[i];
    /* The hub's extra write grants. */
    char fed_filter[FED_TOPIC_MAX], ha_filter[sizeof c->cfg.ha_prefix + 2];
    const char *extra[2];
    size_t n_extra = 0;
    if (rc == 0 && c->cfg.federation) {
        /* fed.c's fed_topic_filter, without linking the federation module. */
        snprintf(fed_filter, sizeof fed_filter, FED_ROOT "/%s/#", c->cfg.hub_id);
        extra[n_extra++] = fed_filter;
    }
    if (rc == 0 && c->cfg.ha_discovery) {
        snprintf(ha_filter, sizeof ha_filter, "%s/#", c->cfg.ha_prefix);
        extra[n_extra++] = ha_filter;
    }
    if (rc == 0) {
        struct brokercfg_acl acl = {.hub_user = hub_user(c),
                                    .hub_write = extra,
                                    .n_hub_write = n_extra,
                                    .nodes = nodes,
                                    .n_nodes = n,
                                    .areas = area_ids,
                                    .n_areas = (size_t)n_areas};
        rc = brokercfg_acl_write_ex(c->cfg.broker_acl, &acl);
        if (rc == -EINVAL)
            fail("cannot write the broker's ACL %s: a name in it is not usable (ha_prefix %s must not "
                 "cover the nodes' topics)",
                 c->cfg.broker_acl, c->cfg.ha_prefix);
        else if (rc < 0)
            fail("cannot write the broker's ACL %s: %s", c->cfg.broker_acl, strerror(-rc));
    }
    c->acl_areas = n_areas;
    free(area_ids);
    free(areas);
    free(nodes);
    free(ids);
    free(zones);
    return rc < 0 ? rc : (int)n;
}

/* Tells a running broker to reread its password and ACL files: once per
 * command, however many changes it made. A broker that is not running reads
 * them when it starts. Notes go to stderr (stdout may carry a node config). */
static void broker_reload(struct ctx *c)
{
    if (!c->cfg.broker_pid[0] || access(c->cfg.broker_pid, F_OK) != 0) {
        if (c->a.json) /* a script provisioning in bulk before the broker starts */
            return;
        fprintf(stderr,
                "firewatchctl: note: the broker is not running (no pid file %s); it reads the change "
                "when it starts\n",
                c->cfg.broker_pid);
        return;
    }
    int rc = brokercfg_reload(c->cfg.broker_pid, 0);
    if (rc == -ESRCH)
        fprintf(stderr,
                "firewatchctl: warning: %s names no running mosquitto; the broker reads the change "
                "when it starts\n",
                c->cfg.broker_pid);
    else if (rc < 0)
        fprintf(stderr,
                "firewatchctl: warning: cannot reload the broker (%s): run systemctl reload mosquitto\n",
                strerror(-rc));
}

/* Runs one write with parameters bound by types: 's' text, 'i' int64.
 * Returns the number of rows changed or a negative errno (reported). */
static int exec_write(struct ctx *c, const char *sql, const char *types, ...)
{
    sqlite3 *db = store_handle(c->db);
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK) {
        fail("database: %s", sqlite3_errmsg(db));
        return -EIO;
    }
    va_list ap;
    va_start(ap, types);
    for (int i = 0; types[i]; i++) {
        if (types[i] == 's')
            sqlite3_bind_text(q, i + 1, va_arg(ap, const char *), -1, SQLITE_TRANSIENT);
        else
            sqlite3_bind_int64(q, i + 1, va_arg(ap, int64_t));
    }
    va_end(ap);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) {
        fail("database: %s", sqlite3_errmsg(db));
        return rc == SQLITE_CONSTRAINT ? -ENOENT : -EIO;
    }
    return sqlite3_changes(db);
}

/* One node as the provisioning commands need it. */
struct node_row {
    char id[FW_ID_MAX + 1];
    char household[FW_ID_MAX + 1];
    char zone[FW_ID_MAX + 1];
    char kind[16];
    char room[64];
    char decommissioned_by[64];
    int64_t last_seen_ms, commissioned_ms, decommissioned_ms, last_test_ms;
};

static void col_text(sqlite3_stmt *q, int i, char *buf, size_t size)
{
    const unsigned char *t = sqlite3_column_text(q, i);
    snprintf(buf, size, "%s", t ? (const char *)t : "");
}

/* Reads node id. Returns 0, or 1 after reporting that it does not exist. */
static int node_get(struct ctx *c, const char *id, struct node_row *out)
{
    sqlite3 *db = store_handle(c->db);
    sqlite3_stmt *q;
    memset(out, 0, sizeof *out);
    if (sqlite3_prepare_v2(
            db,
            "SELECT n.id, n.household_id, h.zone_id, n.kind, n.room, n.decommissioned_by, "
            "n.last_seen_ms, n.commissioned_ms, n.decommissioned_ms, n.last_test_ms FROM nodes n "
            "JOIN households h ON h.id = n.household_id WHERE n.id = ?1",
            -1, &q, NULL) != SQLITE_OK)
        return fail("database: %s", sqlite3_errmsg(db));
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        col_text(q, 0, out->id, sizeof out->id);
        col_text(q, 1, out->household, sizeof out->household);
        col_text(q, 2, out->zone, sizeof out->zone);
        col_text(q, 3, out->kind, sizeof out->kind);
        col_text(q, 4, out->room, sizeof out->room);
        col_text(q, 5, out->decommissioned_by, sizeof out->decommissioned_by);
        out->last_seen_ms = sqlite3_column_int64(q, 6);
        out->commissioned_ms = sqlite3_column_int64(q, 7);
        out->decommissioned_ms = sqlite3_column_int64(q, 8);
        out->last_test_ms = sqlite3_column_int64(q, 9);
    }
    sqlite3_finalize(q);
    if (rc == SQLITE_ROW)
        return 0;
    if (rc == SQLITE_DONE)
        return fail("no node %s (firewatchctl node list shows them)", id);
    return fail("database: %s", sqlite3_errmsg(db));
}

/* "2026-12-05 21:50 UTC" */
static void fmt_time(int64_t ms, char *buf, size_t size)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (ms <= 0 || !gmtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M UTC", &tm) == 0)
        snprintf(buf, size, "never");
}

/* Refuses to work on a retired node. Returns 0 or 1 (reported). */
static int in_service(const struct node_row *n)
{
    if (n->decommissioned_ms == 0)
        return 0;
    char when[40];
    fmt_time(n->decommissioned_ms, when, sizeof when);
    return fail("node %s was decommissioned on %s by %s; provision a new node instead", n->id, when,
                n->decommissioned_by[0] ? n->decommissioned_by : "someone");
}

/* Gives node id a fresh broker password (returned in pw) and records when.
 * The database keeps no trace of the password: only its hash goes to the
 * broker's password file. Returns 0 or 1 (reported). */
static int set_credentials(struct ctx *c, const char *id, char *pw, size_t size)
{
    int rc = brokercfg_password_generate(pw, size);
    if (rc == 0)
        rc = brokercfg_passwd_set(c->cfg.broker_passwd, id, pw);
    if (rc < 0)
        return fail("cannot set the broker password of %s in %s: %s", id, c->cfg.broker_passwd,
                    strerror(-rc));
    exec_write(c, "UPDATE nodes SET credentials_ms = ?2 WHERE id = ?1", "si", id, clock_wall_ms());
    return 0;
}

/* Writes the node's config file, the one firmware/node.conf.example
 * describes, to f. password NULL: the broker is not managed yet. */
static void node_config_text(struct ctx *c, FILE *f, const struct node_row *n, const char *password,
                             const char *why)
{
    char when[40];
    fmt_time(clock_wall_ms(), when, sizeof when);
    fprintf(f, "# firewatch-node configuration for node %s: household %s, zone %s%s%s.\n", n->id,
            n->household, n->zone, n->room[0] ? ", " : "", n->room);
    fprintf(f, "# Written by firewatchctl %s on %s.\n", why, when);
    if (password)
        fprintf(f, "# It holds the node's broker password: install it on the node as\n"
                   "# /etc/firewatch/node.conf, owner root, group firewatch, mode 0640\n"
                   "# (the service runs as firewatch), and keep no other copy.\n");
    fprintf(f, "id %s\nzone %s\nkind %s\nbroker %s\n", n->id, n->zone, n->kind, c->cfg.node_broker_url);
    if (password)
        fprintf(f, "username %s\npassword %s\n", n->id, password);
    else
        fprintf(f, "# no username/password: the broker is not managed by firewatchctl yet\n");
    if (strncmp(c->cfg.node_broker_url, "ssl://", 6) == 0)
        fprintf(f, "# The Firewatch CA, copied from %s/%s on the hub.\ncafile /etc/firewatch/ca.crt\n",
                c->cfg.broker_tls_dir, BROKERCFG_TLS_CA_CERT);
}

/* Hands the node's config to the technician: --json prints the fields the
 * demo and scripts read, --out writes the file (0600), otherwise stdout. */
static int node_config_out(struct ctx *c, const struct node_row *n, const char *password, const char *why)
{
    const char *out = opt(&c->a, "out");
    if (out) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
        FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (!f) {
            if (fd >= 0)
                close(fd);
            return fail("cannot write %s: %s", out, strerror(errno));
        }
        fchmod(fd, 0600); /* an existing file keeps no looser mode */
        node_config_text(c, f, n, password, why);
        bool ok = fflush(f) == 0 && fsync(fd) == 0;
        if (fclose(f) != 0 || !ok)
            return fail("cannot write %s: %s", out, strerror(errno));
        if (!c->a.json)
            printf("node %s: config written to %s (mode 0600); install it on the node as "
                   "/etc/firewatch/node.conf, root:firewatch, mode 0640\n",
                   n->id, out);
    }
    if (c->a.json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", n->id);
        cJSON_AddStringToObject(o, "zone", n->zone);
        cJSON_AddStringToObject(o, "username", password ? n->id : "");
        cJSON_AddStringToObject(o, "password", password ? password : "");
        cJSON_AddStringToObject(o, "broker", c->cfg.node_broker_url);
        char *s = cJSON_PrintUnformatted(o);
        if (s) {
            puts(s);
            sodium_memzero(s, strlen(s));
        }
        free(s);
        cJSON_Delete(o);
    } else if (!out) {
        node_config_text(c, stdout, n, password, why);
    }
    return fflush(stdout) == 0 ? 0 : fail("cannot write the config: %s", strerror(errno));
}

/* With broker_tls_require_cert, a node needs its own client certificate. */
static void client_cert(struct ctx *c, const char *id, int days)
{
    int rc = brokercfg_tls_create_client(c->cfg.broker_tls_dir, id, days);
    if (rc < 0) {
        fprintf(stderr, "firewatchctl: warning: no client certificate for %s: %s%s\n", id, strerror(-rc),
                rc == -ENOENT ? " (run firewatchctl broker tls first)" : "");
        return;
    }
    fprintf(stderr,
            "firewatchctl: client certificate for %s: %s/%s/%s.crt and .key (copy both to the node)\n", id,
            c->cfg.broker_tls_dir, BROKERCFG_TLS_CLIENT_DIR, id);
}

/* ---- nodes ------------------------------------------------------------------ */

static int node_add(struct ctx *c)
{
    char id[FW_ID_MAX + 1];
    const char *hh = opt(&c->a, "household"), *kind_s = opt(&c->a, "kind");
    enum fw_node_kind kind;
    if (!hh || !kind_s)
        return fail("node add: --household and --kind are required");
    if (fw_kind_parse(kind_s, &kind) < 0)
        return fail("node add: --kind must be smoke, heat or combo");
    if (c->a.n_pos > 0) {
        snprintf(id, sizeof id, "%s", c->a.pos[0]);
        if (strlen(c->a.pos[0]) > FW_ID_MAX || !fw_id_valid(id))
            return store_fail(-EINVAL, "node", c->a.pos[0]);
    } else {
        unsigned char r[4];
        randombytes_buf(r, sizeof r);
        snprintf(id, sizeof id, "n-%02x%02x%02x%02x", r[0], r[1], r[2], r[3]);
    }
    int rc = store_node_add(c->db, id, hh, kind, opt(&c->a, "room"), clock_wall_ms());
    if (rc < 0)
        return store_fail(rc, "node", id);
    struct node_row n;
    if (node_get(c, id, &n))
        return 1;
    char pw[BROKERCFG_PASSWORD_SIZE];
    bool managed = broker_managed(c);
    if (managed) {
        /* Credentials and ACL first; undo the node if either fails, so a
         * node never exists half-provisioned. */
        if (set_credentials(c, id, pw, sizeof pw) || acl_rewrite(c) < 0) {
            brokercfg_passwd_remove(c->cfg.broker_passwd, id);
            store_node_remove(c->db, id);
            sodium_memzero(pw, sizeof pw);
            return 1;
        }
        broker_reload(c);
        if (c->cfg.broker_tls_port && c->cfg.broker_tls_require_cert)
            client_cert(c, id, 0);
    }
    audit(c, "node add", id);
    rc = node_config_out(c, &n, managed ? pw : NULL, "node add");
    sodium_memzero(pw, sizeof pw);
    if (!managed) /* after the config: its first line stays the first line */
        fprintf(
            stderr,
            "firewatchctl: warning: node %s has no broker credentials: the broker is not managed here yet "
            "(no %s). Run firewatchctl broker config, then firewatchctl node rotate-credentials %s\n",
            id, c->cfg.broker_passwd, id);
    return rc;
}

static int node_rotate(struct ctx *c)
{
    struct node_row n;
    if (node_get(c, c->a.pos[0], &n) || in_service(&n))
        return 1;
    if (!broker_managed(c))
        return fail("the broker's password file %s does not exist: run firewatchctl broker config first",
                    c->cfg.broker_passwd);
    char pw[BROKERCFG_PASSWORD_SIZE];
    if (set_credentials(c, n.id, pw, sizeof pw) || acl_rewrite(c) < 0) {
        sodium_memzero(pw, sizeof pw);
        return 1;
    }
    /* The reload also disconnects a session that logged in with the old
     * password: from here on only the new one works. */
    broker_reload(c);
    audit(c, "node rotate-credentials", n.id);
    int rc = node_config_out(c, &n, pw, "node rotate-credentials");
    sodium_memzero(pw, sizeof pw);
    return rc;
}

static int node_decommission(struct ctx *c)
{
    struct node_row n;
    if (node_get(c, c->a.pos[0], &n) || in_service(&n))
        return 1;
    int64_t now = clock_wall_ms();
    /* Revoke first: the password goes, then the ACL block, then one reload,
     * which also cuts a live session. The row stays, with its history. */
    bool managed = broker_managed(c);
    if (managed) {
        int rc = brokercfg_passwd_remove(c->cfg.broker_passwd, n.id);
        if (rc < 0 && rc != -ENOENT)
            return fail("cannot remove %s from %s: %s", n.id, c->cfg.broker_passwd, strerror(-rc));
    }
    if (exec_write(
            c, "UPDATE nodes SET decommissioned_ms = ?2, decommissioned_by = ?3, online = 0 WHERE id = ?1",
            "sis", n.id, now, c->who) < 0)
        return 1;
    /* Its troubles close now (the running hub does the same when it sees
     * the change; closing twice is harmless). */
    exec_write(c, "UPDATE troubles SET cleared_ms = ?2 WHERE node_id = ?1 AND cleared_ms IS NULL", "si", n.id,
               now);
    if (managed) {
        if (acl_rewrite(c) < 0)
            return 1;
        broker_reload(c);
    }
    audit(c, "node decommission", n.id);
    char when[40];
    fmt_time(now, when, sizeof when);
    if (c->a.json)
        printf("{\"id\":\"%s\",\"decommissioned_ms\":%lld,\"by\":\"%s\",\"credentials_revoked\":%s}\n", n.id,
               (long long)now, c->who, managed ? "true" : "false");
    else
        printf("node %s decommissioned on %s by %s: %s; its history is kept\n", n.id, when, c->who,
               managed ? "broker credentials revoked" : "it had no broker credentials here");
    return 0;
}

static int node_move(struct ctx *c)
{
    struct node_row n;
    const char *hh = opt(&c->a, "household"), *room = opt(&c->a, "room");
    if (!hh)
        return fail("node move: --household is required");
    if (node_get(c, c->a.pos[0], &n) || in_service(&n))
        return 1;
    struct store_household h;
    if (store_household_get(c->db, hh, &h) < 0)
        return fail("no household %s", hh);
    if (exec_write(c, "UPDATE nodes SET household_id = ?2, room = COALESCE(?3, room) WHERE id = ?1", "sss",
                   n.id, hh, room) < 0)
        return 1;
    bool managed = broker_managed(c);
    if (managed && strcmp(h.zone, n.zone) != 0) {
        /* Its read grant moves to the new zone's alarm topic. */
        if (acl_rewrite(c) < 0)
            return 1;
        broker_reload(c);
    }
    audit(c, "node move", n.id);
    printf("node %s moved to household %s, zone %s%s\n", n.id, hh, h.zone,
           strcmp(h.zone, n.zone) == 0 ? " (same zone)"
           : managed                   ? "; it now hears that zone's alarm (broker ACL updated)"
                                       : "");
    if (strcmp(h.zone, n.zone) != 0)
        printf("update the node's config: zone %s\n", h.zone);
    return 0;
}

static int node_remove(struct ctx *c)
{
    struct node_row n;
    if (node_get(c, c->a.pos[0], &n))
        return 1;
    if (n.last_seen_ms > 0 || n.commissioned_ms > 0)
        return fail("node %s has been installed (it was heard from): use firewatchctl node decommission %s, "
                    "which revokes it and keeps its history",
                    n.id, n.id);
    int rc = store_node_remove(c->db, n.id);
    if (rc < 0)
        return store_fail(rc, "node", n.id);
    if (broker_managed(c)) {
        brokercfg_passwd_remove(c->cfg.broker_passwd, n.id);
        if (acl_rewrite(c) >= 0)
            broker_reload(c);
    }
    audit(c, "node remove", n.id);
    return 0;
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -EINVAL;
    *out = v;
    return 0;
}

static int node_tls(struct ctx *c)
{
    struct node_row n;
    long days = 0;
    const char *d = opt(&c->a, "days");
    if (d && parse_int(d, 1, 36500, &days) < 0)
        return fail("--days must be 1 to 36500");
    if (node_get(c, c->a.pos[0], &n) || in_service(&n))
        return 1;
    int rc = brokercfg_tls_create_client(c->cfg.broker_tls_dir, n.id, (int)days);
    if (rc == -ENOENT)
        return fail("no CA in %s: run firewatchctl broker tls --name HOST first", c->cfg.broker_tls_dir);
    if (rc < 0)
        return fail("cannot make the certificate: %s", strerror(-rc));
    audit(c, "node tls", n.id);
    printf("node %s: client certificate %s/%s/%s.crt, key %s/%s/%s.key (mode 0600)\n", n.id,
           c->cfg.broker_tls_dir, BROKERCFG_TLS_CLIENT_DIR, n.id, c->cfg.broker_tls_dir,
           BROKERCFG_TLS_CLIENT_DIR, n.id);
    return 0;
}

/* Commissioning: the hub sends selftest and waits for the node's test event
 * (or the timeout); the answer comes back through the commands table. */
static int node_test(struct ctx *c)
{
    struct node_row n;
    long timeout = 30;
    const char *t = opt(&c->a, "timeout");
    if (t && parse_int(t, 1, 600, &timeout) < 0)
        return fail("--timeout must be 1 to 600 seconds");
    if (node_get(c, c->a.pos[0], &n) || in_service(&n))
        return 1;
    int64_t id = store_command_add(c->db, "selftest", (uint32_t)timeout, n.id, c->who, clock_wall_ms());
    if (id < 0)
        return fail("cannot queue the test: %s", strerror((int)-id));
    audit(c, "node test", n.id);
    if (!c->a.json)
        fprintf(stderr, "testing node %s: waiting up to %ld s for its answer...\n", n.id, timeout);
    char result[256] = "";
    /* The hub looks at commands once a second; give it a few more. */
    int64_t deadline = clock_mono_ms() + timeout * 1000 + 5000;
    int rc = 0;
    while (clock_mono_ms() < deadline && (rc = store_command_result(c->db, id, result, sizeof result)) == 0) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (rc != 1) {
        snprintf(result, sizeof result, "fail: the hub did not answer (is firewatch-hub running?)");
        store_command_done(c->db, id, result, clock_wall_ms()); /* so a hub started later skips it */
    }
    bool pass = strncmp(result, "pass", 4) == 0;
    const char *reason = pass ? result + 4 : strncmp(result, "fail: ", 6) == 0 ? result + 6 : result;
    while (*reason == ' ')
        reason++;
    struct node_row after;
    if (node_get(c, n.id, &after))
        return 1;
    if (c->a.json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "node", n.id);
        cJSON_AddStringToObject(o, "result", pass ? "pass" : "fail");
        cJSON_AddStringToObject(o, "reason", reason);
        cJSON_AddBoolToObject(o, "commissioned", after.commissioned_ms > 0);
        cJSON_AddStringToObject(o, "by", c->who);
        cJSON_AddNumberToObject(o, "test", (double)id);
        char *s = cJSON_PrintUnformatted(o);
        if (s)
            puts(s);
        free(s);
        cJSON_Delete(o);
    } else if (pass) {
        printf("node %s: pass%s%s%s\n", n.id, reason[0] ? " " : "", reason,
               n.commissioned_ms == 0 ? "; the node is now commissioned" : "");
    } else {
        printf("node %s: fail: %s\n", n.id, reason);
    }
    return pass ? 0 : 1;
}

static int node_list(struct ctx *c)
{
    return print_query(
        c,
        "SELECT n.id, n.household_id AS household, h.zone_id AS zone, n.kind, n.room, n.fw, "
        "CASE WHEN n.online THEN 'online' ELSE 'offline' END AS link, "
        "CASE WHEN n.batt_pct < 0 THEN NULL ELSE n.batt_pct END AS batt_pct, "
        "CASE WHEN n.last_seen_ms = 0 THEN 'never' ELSE strftime('%Y-%m-%d %H:%M:%S', n.last_seen_ms / 1000, "
        "'unixepoch') END AS last_seen, "
        "CASE WHEN n.last_test_ms = 0 THEN 'never' ELSE strftime('%Y-%m-%d', n.last_test_ms / 1000, "
        "'unixepoch') "
        "END AS last_test, n.seq_gaps, "
        "COALESCE((SELECT group_concat(kind, ',') FROM troubles t WHERE t.node_id = n.id AND t.cleared_ms IS "
        "NULL), '') AS troubles, "
        "CASE WHEN n.decommissioned_ms > 0 THEN 'decommissioned' WHEN n.commissioned_ms = 0 THEN "
        "'uncommissioned' WHEN n.online AND n.batt_pct >= 20 AND NOT EXISTS "
        "(SELECT 1 FROM troubles t WHERE t.node_id = n.id AND t.cleared_ms IS NULL) THEN 'healthy' ELSE "
        "'attention' END AS health "
        "FROM nodes n JOIN households h ON h.id = n.household_id "
        "WHERE ?1 IS NULL OR h.zone_id = ?1 ORDER BY n.id",
        opt(&c->a, "zone"), NULL);
}

/* ---- federation: areas on a regional hub, the bridge on an area hub -------- */

/* The bridge hub.conf describes (fed_broker set), for `broker config` and
 * `federation bridge`. Returns 0 with b filled, or 1 (reported). */
static int bridge_from_conf(const struct ctx *c, struct brokercfg_bridge *b)
{
    const struct hub_config *cfg = &c->cfg;
    if (strcmp(cfg->mode, "regional") == 0)
        return fail("this is the regional hub (mode regional): the bridge runs on each area hub's broker");
    if (!cfg->federation)
        return fail("federation is false in the hub's config: set federation true, fed_broker and "
                    "fed_password (firewatchctl area add on the regional hub prints them)");
    if (!cfg->fed_broker[0])
        return fail("fed_broker is empty in the hub's config: set it to the regional broker's host:port");
    if (!cfg->fed_password[0])
        return fail("fed_password is empty in the hub's config: firewatchctl area add on the regional hub "
                    "prints it");
    if (strcmp(cfg->hub_id, "hub") == 0)
        return fail("hub_id is still the default \"hub\": every area needs its own hub_id, the AREA given to "
                    "firewatchctl area add on the regional hub (its account there is " FED_AREA_USER_PREFIX
                    "AREA)");
    b->area = cfg->hub_id;
    b->address = cfg->fed_broker;
    b->password = cfg->fed_password;
    b->cafile = cfg->fed_cafile;
    FILE *null = fopen("/dev/null", "w");
    int rc = null ? brokercfg_bridge_print(null, b) : 0;
    if (null)
        fclose(null);
    if (rc < 0)
        return fail("the federation settings are not usable: fed_broker must be host:port, fed_password "
                    "a single word, fed_cafile an absolute path");
    return 0;
}

/* `federation bridge`: the bridge section alone, for an operator whose
 * Mosquitto is not the one `broker config` writes. It holds the password
 * from hub.conf, which is what the broker needs; stdout only. */
static int federation_bridge(struct ctx *c)
{
    struct brokercfg_bridge b;
    if (bridge_from_conf(c, &b))
        return 1;
    if (brokercfg_bridge_print(stdout, &b) < 0 || fflush(stdout) != 0)
        return fail("cannot write the bridge section: %s", strerror(errno));
    fprintf(stderr,
            "firewatchctl: note: the section holds the area's password: keep the file mode 0600 and "
            "readable by the broker's account, put it after every listener (a connection line takes the "
            "options after it), then restart the broker (bridges are not reloaded on SIGHUP)\n");
    return 0;
}

/* 0: no such area, 1: in service, 2: removed (then *removed_ms is set). */
static int area_state(struct ctx *c, const char *id, int64_t *removed_ms)
{
    sqlite3 *db = store_handle(c->db);
    sqlite3_stmt *q;
    *removed_ms = 0;
    if (sqlite3_prepare_v2(db, "SELECT removed_ms FROM areas WHERE id = ?1", -1, &q, NULL) != SQLITE_OK) {
        fail("database: %s", sqlite3_errmsg(db));
        return -EIO;
    }
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q), state = 0;
    if (rc == SQLITE_ROW) {
        *removed_ms = sqlite3_column_int64(q, 0);
        state = *removed_ms > 0 ? 2 : 1;
    } else if (rc != SQLITE_DONE) {
        fail("database: %s", sqlite3_errmsg(db));
        state = -EIO;
    }
    sqlite3_finalize(q);
    return state;
}

/* The regional broker as area hubs reach it: --broker, else the host and
 * port of node_broker_url (nodes and bridges use the same listener). */
static int area_broker_address(const struct ctx *c, char *buf, size_t size)
{
    const char *given = opt(&c->a, "broker");
    if (given) {
        const char *colon = strrchr(given, ':');
        long port;
        if (!colon || colon == given || parse_int(colon + 1, 1, 65535, &port) < 0 ||
            strpbrk(given, " \t\r\n/") || strlen(given) >= size)
            return fail("--broker must be host:port, e.g. region.example.org:1883");
        snprintf(buf, size, "%s", given);
        return 0;
    }
    const char *url = c->cfg.node_broker_url;
    bool tls = strncmp(url, "ssl://", 6) == 0;
    const char *host = strstr(url, "://") ? strstr(url, "://") + 3 : url;
    size_t len = strcspn(host, "/");
    if (len == 0 || len + 6 >= size)
        return fail("cannot tell the broker's address from node_broker_url %s: give --broker HOST:PORT", url);
    bool has_port = memchr(host, ':', len) != NULL && host[0] != '[';
    snprintf(buf, size, "%.*s%s", (int)len, host, has_port ? "" : tls ? ":8883" : ":1883");
    return 0;
}

static int area_add(struct ctx *c)
{
    const char *id = c->a.pos[0], *name = opt(&c->a, "name");
    const struct hub_config *cfg = &c->cfg;
    if (strcmp(cfg->mode, "regional") != 0)
        return fail("area add: this is an area hub (mode %s): areas are added on the regional hub, whose "
                    "config says `mode regional`",
                    cfg->mode);
    if (strlen(id) > FW_ID_MAX || !fw_id_valid(id) || strcmp(id, "hub") == 0)
        return fail("area '%s': invalid id: it becomes that area hub's hub_id, so it must be "
                    "[a-z0-9][a-z0-9-]{0,31} and not the default \"hub\"",
                    id);
    if (name && (strlen(name) > FED_NAME_MAX || strpbrk(name, "\r\n")))
        return fail("area add: --name must be one line of at most %d bytes", FED_NAME_MAX);
    char addr[300];
    if (area_broker_address(c, addr, sizeof addr))
        return 1;
    if (!broker_managed(c))
        return fail("the broker's password file %s does not exist: run firewatchctl broker config first",
                    cfg->broker_passwd);
    int64_t removed_ms;
    int state = area_state(c, id, &removed_ms);
    if (state < 0)
        return 1;
    if (state == 1)
        return fail("area %s already exists and its bridge account is in use. For a new password, run "
                    "firewatchctl area remove %s and then area add %s again",
                    id, id, id);
    int64_t now = clock_wall_ms();
    if (state == 0 && exec_write(c, "INSERT INTO areas(id, name, added_ms) VALUES(?1, ?2, ?3)", "ssi", id,
                                 name ? name : "", now) < 0)
        return 1;
    if (state == 2 &&
        exec_write(c, "UPDATE areas SET removed_ms = 0, name = COALESCE(?2, name) WHERE id = ?1", "ss", id,
                   name) < 0)
        return 1;
    char user[BROKERCFG_USER_MAX + 1], pw[BROKERCFG_PASSWORD_SIZE];
    snprintf(user, sizeof user, FED_AREA_USER_PREFIX "%s", id);
    int rc = brokercfg_password_generate(pw, sizeof pw);
    if (rc == 0)
        rc = brokercfg_passwd_set(cfg->broker_passwd, user, pw);
    if (rc < 0)
        fail("cannot set the broker password of %s in %s: %s", user, cfg->broker_passwd, strerror(-rc));
    if (rc < 0 || acl_rewrite(c) < 0) {
        /* Undo, so an area never exists half-provisioned. */
        brokercfg_passwd_remove(cfg->broker_passwd, user);
        if (state == 0)
            exec_write(c, "DELETE FROM areas WHERE id = ?1", "s", id);
        else
            exec_write(c, "UPDATE areas SET removed_ms = ?2 WHERE id = ?1", "si", id, removed_ms);
        sodium_memzero(pw, sizeof pw);
        return 1;
    }
    broker_reload(c);
    audit(c, "area add", id);
    if (c->a.json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "area", id);
        cJSON_AddStringToObject(o, "user", user);
        cJSON_AddStringToObject(o, "password", pw);
        cJSON_AddStringToObject(o, "broker", addr);
        char *js = cJSON_PrintUnformatted(o);
        if (js) {
            puts(js);
            sodium_memzero(js, strlen(js));
        }
        free(js);
        cJSON_Delete(o);
    } else {
        printf("area %s %s: its bridge logs in to this regional broker as %s.\n"
               "The password is shown only now. Put these lines in the config file of area %s's hub\n"
               "(/etc/firewatch/hub.conf), replacing any it has:\n\n",
               id, state == 2 ? "added again" : "added", user, id);
        printf("hub_id %s\nfederation true\nfed_broker %s\nfed_password %s\n", id, addr, pw);
        if (name)
            printf("fed_name %s\n", name);
        if (strncmp(cfg->node_broker_url, "ssl://", 6) == 0)
            printf("# the regional broker's CA, copied from %s/%s on this hub:\nfed_cafile "
                   "/etc/firewatch/region-ca.crt\n",
                   cfg->broker_tls_dir, BROKERCFG_TLS_CA_CERT);
        printf("\nThen, on that hub, run `firewatchctl broker config` and restart its broker (systemctl "
               "restart mosquitto):\nits bridge forwards the area's incidents, readiness and CAP alerts "
               "here. firewatchctl area list shows the link.\n");
    }
    sodium_memzero(pw, sizeof pw);
    return fflush(stdout) == 0 ? 0 : fail("cannot write the password: %s", strerror(errno));
}

static int area_list(struct ctx *c)
{
    return print_query(
        c,
        "SELECT a.id, a.name, strftime('%Y-%m-%d %H:%M', a.added_ms / 1000, 'unixepoch') AS added, "
        "CASE WHEN a.removed_ms > 0 THEN strftime('%Y-%m-%d %H:%M', a.removed_ms / 1000, 'unixepoch') END "
        "AS removed, CASE WHEN a.removed_ms > 0 THEN 'removed' WHEN a.bridge_online IS NULL THEN 'unknown' "
        "WHEN a.bridge_online THEN 'online' ELSE 'offline' END AS bridge, "
        "CASE WHEN a.last_seen_ms = 0 THEN 'never' ELSE strftime('%Y-%m-%d %H:%M:%S', a.last_seen_ms / 1000, "
        "'unixepoch') END AS last_heard, "
        /* CASE evaluates in order, so json_type never sees malformed JSON. */
        "CASE WHEN json_valid(a.readiness_doc) IS NOT 1 THEN NULL WHEN json_type(a.readiness_doc, '$.score') "
        "NOT IN ('integer', 'real') THEN NULL WHEN json_extract(a.readiness_doc, '$.score') < 0 THEN NULL "
        "ELSE json_extract(a.readiness_doc, '$.score') END AS readiness, "
        "(SELECT count(*) FROM area_incidents i WHERE i.area = a.id AND i.closed_ms = 0) AS open_incidents "
        "FROM areas a ORDER BY a.id",
        NULL, NULL);
}

static int area_remove(struct ctx *c)
{
    const char *id = c->a.pos[0];
    int64_t removed_ms;
    int state = fw_id_valid(id) ? area_state(c, id, &removed_ms) : 0;
    if (state < 0)
        return 1;
    if (state == 0)
        return fail("no area %s (firewatchctl area list shows them)", id);
    if (state == 2) {
        char when[40];
        fmt_time(removed_ms, when, sizeof when);
        return fail("area %s was already removed on %s", id, when);
    }
    char user[BROKERCFG_USER_MAX + 1];
    snprintf(user, sizeof user, FED_AREA_USER_PREFIX "%s", id);
    /* Revoke first: the password, then the ACL block, then one reload, which
     * also cuts the bridge's live session. The row and its incidents stay. */
    bool managed = broker_managed(c);
    if (managed) {
        int rc = brokercfg_passwd_remove(c->cfg.broker_passwd, user);
        if (rc < 0 && rc != -ENOENT)
            return fail("cannot remove %s from %s: %s", user, c->cfg.broker_passwd, strerror(-rc));
    }
    int64_t now = clock_wall_ms();
    if (exec_write(c, "UPDATE areas SET removed_ms = ?2 WHERE id = ?1", "si", id, now) < 0)
        return 1;
    if (managed) {
        if (acl_rewrite(c) < 0)
            return 1;
        broker_reload(c);
    }
    audit(c, "area remove", id);
    char when[40];
    fmt_time(now, when, sizeof when);
    if (c->a.json)
        printf("{\"area\":\"%s\",\"removed_ms\":%lld,\"credentials_revoked\":%s}\n", id, (long long)now,
               managed ? "true" : "false");
    else
        printf("area %s removed on %s: %s; its history is kept\n", id, when,
               managed ? "its bridge account is revoked and its link cut" : "it had no broker account here");
    return 0;
}

/* A database this run created as root belongs to whoever owns its
 * directory (the firewatch account under /var/lib/firewatch): otherwise the
 * hub, which runs as that account, finds it read-only. SQLite gives its
 * -wal and -shm files the database's owner when it creates them as root,
 * so those follow too. */
static void give_to_state_dir(const char *database)
{
    if (geteuid() != 0)
        return;
    char dir[512];
    snprintf(dir, sizeof dir, "%s", database);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    struct stat st;
    if (stat(dir, &st) != 0 || st.st_uid == 0)
        return;
    static const char *const suffix[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        char path[600];
        snprintf(path, sizeof path, "%s%s", database, suffix[i]);
        if (chown(path, st.st_uid, st.st_gid) != 0 && errno != ENOENT)
            fprintf(stderr, "firewatchctl: warning: cannot give %s to the owner of %s: %s\n", path, dir,
                    strerror(errno));
    }
}

/* ---- broker config and TLS ------------------------------------------------ */

/* Splits "host:port". An empty string is "no listener" (port 0). Returns 0
 * or -EINVAL. */
static int parse_listen(const char *s, char *host, size_t size, int *port)
{
    host[0] = '\0';
    *port = 0;
    if (!*s)
        return 0;
    const char *colon = strrchr(s, ':');
    long p;
    if (!colon || parse_int(colon + 1, 0, 65535, &p) < 0 || (size_t)(colon - s) >= size)
        return -EINVAL;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    *port = (int)p;
    return 0;
}

struct broker_paths {
    char node_host[64], hub_host[64];
    char cafile[320], certfile[320], keyfile[320];
};

/* Fills o from hub.conf's broker_* keys. Returns 0 or 1 (reported). */
static int broker_options(struct ctx *c, struct brokercfg_options *o, struct broker_paths *p)
{
    const struct hub_config *cfg = &c->cfg;
    brokercfg_options_init(o);
    int hub_port;
    if (parse_listen(cfg->broker_listen, p->node_host, sizeof p->node_host, &o->node_port) < 0)
        return fail("broker_listen must be host:port, e.g. 0.0.0.0:1883 (empty: none)");
    if (parse_listen(cfg->broker_hub_listen, p->hub_host, sizeof p->hub_host, &hub_port) < 0 ||
        hub_port == 0 || strcmp(p->hub_host, "127.0.0.1") != 0)
        return fail("broker_hub_listen must be 127.0.0.1:PORT: the hub's listener is on loopback only");
    bool every = !p->node_host[0] || strcmp(p->node_host, "*") == 0 || strcmp(p->node_host, "0.0.0.0") == 0;
    o->node_address = every ? NULL : p->node_host;
    o->hub_port = hub_port;
    o->password_file = cfg->broker_passwd;
    o->acl_file = cfg->broker_acl;
    o->persistence_dir = cfg->broker_persistence;
    o->pid_file = cfg->broker_pid[0] ? cfg->broker_pid : NULL;
    o->run_as_user = cfg->broker_user[0] ? cfg->broker_user : NULL;
    int64_t nodes = 0;
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(store_handle(c->db), "SELECT count(*) FROM nodes WHERE decommissioned_ms = 0", -1,
                           &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW)
        nodes = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    if (nodes > 1000) /* room to grow before the queue limit needs a new config */
        o->expected_nodes = (unsigned)(nodes + nodes / 2 < 10000000 ? nodes + nodes / 2 : 10000000);
    if (cfg->broker_tls_port) {
        o->tls_port = cfg->broker_tls_port;
        o->tls_address = o->node_address;
        o->tls_require_certificate = cfg->broker_tls_require_cert;
        if (brokercfg_tls_path(p->cafile, sizeof p->cafile, cfg->broker_tls_dir, BROKERCFG_TLS_CA_CERT) < 0 ||
            brokercfg_tls_path(p->certfile, sizeof p->certfile, cfg->broker_tls_dir,
                               BROKERCFG_TLS_SERVER_CERT) < 0 ||
            brokercfg_tls_path(p->keyfile, sizeof p->keyfile, cfg->broker_tls_dir, BROKERCFG_TLS_SERVER_KEY) <
                0)
            return fail("broker_tls_dir is too long");
        if (access(p->certfile, F_OK) != 0 || access(p->cafile, F_OK) != 0)
            return fail(
                "broker_tls_port is %d but %s holds no server certificate: run firewatchctl broker tls "
                "--name HOST first",
                cfg->broker_tls_port, cfg->broker_tls_dir);
        o->tls_cafile = p->cafile;
        o->tls_certfile = p->certfile;
        o->tls_keyfile = p->keyfile;
    }
    return 0;
}

/* mkdir -p of the directory that will hold path (0755: Mosquitto, after
 * dropping root, must be able to reach the files in it). */
static int make_parent(const char *path)
{
    char dir[512];
    if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir)
        return -ENAMETOOLONG;
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* Mosquitto started as root drops to broker_user and only then writes its
 * pid file: "Error: Unable to write pid file." and no broker if that account
 * cannot write the pid file's directory. Says so now rather than then. */
static void check_pid_dir(const struct hub_config *cfg)
{
    if (geteuid() != 0 || !cfg->broker_pid[0] || !cfg->broker_user[0])
        return;
    char dir[512];
    snprintf(dir, sizeof dir, "%s", cfg->broker_pid);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return;
    *slash = '\0';
    struct stat st;
    const struct passwd *pw = getpwnam(cfg->broker_user);
    if (!pw || stat(dir, &st) != 0 || pw->pw_uid == 0)
        return; /* a missing /run/mosquitto is made by Debian's unit at start */
    bool ok = (st.st_uid == pw->pw_uid && (st.st_mode & S_IWUSR)) ||
              (st.st_gid == pw->pw_gid && (st.st_mode & S_IWGRP)) || (st.st_mode & S_IWOTH);
    if (!ok)
        fprintf(
            stderr,
            "firewatchctl: warning: the broker drops to account %s, which cannot write its pid file in %s: "
            "Mosquitto would not start. Use a directory it owns (Debian's /run/mosquitto), or set "
            "broker_user root for a test setup\n",
            cfg->broker_user, dir);
}

static int broker_config(struct ctx *c)
{
    const struct hub_config *cfg = &c->cfg;
    if (!cfg->username[0] || !cfg->password[0])
        return fail(
            "the hub's broker account is not set: put `username %s` and `password` followed by a long "
            "random secret (e.g. from `openssl rand -base64 24`) in the hub's config file, then run "
            "this again",
            cfg->username[0] ? cfg->username : BROKERCFG_HUB_USER_DEFAULT);
    if (!brokercfg_user_valid(cfg->username) || fw_id_valid(cfg->username))
        return fail("username %s cannot be the hub's broker account: it must not look like a node id "
                    "(use %s)",
                    cfg->username, BROKERCFG_HUB_USER_DEFAULT);
    struct brokercfg_options o;
    struct broker_paths p;
    if (broker_options(c, &o, &p))
        return 1;
    struct brokercfg_bridge bridge;
    memset(&bridge, 0, sizeof bridge);
    if (cfg->fed_broker[0]) {
        if (bridge_from_conf(c, &bridge))
            return 1;
        o.bridge = &bridge;
    }
    if (opt(&c->a, "print")) {
        /* The password stays off the terminal; the written file has it. */
        struct brokercfg_bridge shown = bridge;
        shown.password = "<fed_password>";
        if (o.bridge)
            o.bridge = &shown;
        int rc = brokercfg_config_print(&o, stdout);
        return rc < 0 ? fail("the broker settings in the hub's config are not usable: %s", strerror(-rc)) : 0;
    }
    int rc = 0;
    const char *dirs[] = {cfg->broker_conf, cfg->broker_passwd, cfg->broker_acl};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0] && rc == 0; i++)
        if ((rc = make_parent(dirs[i])) < 0)
            return fail("cannot make the directory of %s: %s", dirs[i], strerror(-rc));
    rc = brokercfg_prepare(&o);
    if (rc == -ENOENT)
        return fail("broker_user %s does not exist (is mosquitto installed?)", cfg->broker_user);
    if (rc == -EINVAL)
        return fail("the broker settings in the hub's config are not usable (paths must be absolute, ports "
                    "distinct)");
    if (rc < 0)
        return fail("cannot prepare the broker's files: %s", strerror(-rc));
    rc = brokercfg_passwd_set(cfg->broker_passwd, cfg->username, cfg->password);
    if (rc < 0)
        return fail("cannot set the hub's account in %s: %s", cfg->broker_passwd, strerror(-rc));
    int n_acl = acl_rewrite(c);
    if (n_acl < 0)
        return 1;
    rc = brokercfg_config_write(&o, cfg->broker_conf);
    if (rc < 0)
        return fail("cannot write %s: %s", cfg->broker_conf, strerror(-rc));
    audit(c, "broker config", cfg->broker_conf);

    printf("wrote %s\n", cfg->broker_conf);
    printf("  password file %s: the hub's account %s\n", cfg->broker_passwd, cfg->username);
    printf("  ACL %s: the hub and %d node%s", cfg->broker_acl, n_acl, n_acl == 1 ? "" : "s");
    if (c->acl_areas > 0)
        printf(", %d area account%s", c->acl_areas, c->acl_areas == 1 ? "" : "s");
    printf("\n");
    printf("  listeners: ");
    if (o.node_port)
        printf("nodes on %s:%d, ", o.node_address ? o.node_address : "0.0.0.0", o.node_port);
    if (o.tls_port)
        printf("nodes over TLS on port %d, ", o.tls_port);
    printf("the hub on 127.0.0.1:%d\n", o.hub_port);
    if (o.bridge)
        printf("  bridge firewatch-fed-%s to the regional broker %s (%s), logging in as " FED_AREA_USER_PREFIX
               "%s and forwarding its documents under " FED_ROOT
               "/%s/; the file holds its password, so it is mode 0600%s%s\n"
               "  Bridges are not reloaded on SIGHUP: restart the broker to start or change it.\n",
               bridge.area, bridge.address, bridge.cafile[0] ? "TLS" : "plain MQTT", bridge.area, bridge.area,
               geteuid() == 0 && o.run_as_user ? " and owned by " : "",
               geteuid() == 0 && o.run_as_user ? o.run_as_user : "");
    printf("Start Mosquitto with it:\n  mosquitto -c %s\n", cfg->broker_conf);
    printf("or under systemd, with a drop-in (systemctl edit mosquitto):\n"
           "  [Service]\n  ExecStart=\n  ExecStart=/usr/sbin/mosquitto -c %s\n"
           "then: systemctl restart mosquitto\n",
           cfg->broker_conf);
    char want[64];
    snprintf(want, sizeof want, "tcp://127.0.0.1:%d", o.hub_port);
    if (strcmp(cfg->broker, want) != 0)
        printf("The hub must use its own listener: set `broker %s` in the hub's config (now %s) and restart "
               "firewatch-hub.\n",
               want, cfg->broker);
    int64_t bare = 0;
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(store_handle(c->db),
                           "SELECT count(*) FROM nodes WHERE decommissioned_ms = 0 AND credentials_ms = 0",
                           -1, &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW)
        bare = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    if (bare > 0)
        printf("%lld node%s no broker password yet: give each one with firewatchctl node rotate-credentials "
               "ID.\n",
               (long long)bare, bare == 1 ? " has" : "s have");
    check_pid_dir(cfg);
    if (cfg->broker_pid[0] && access(cfg->broker_pid, F_OK) == 0 && brokercfg_reload(cfg->broker_pid, 0) == 0)
        printf("A broker is running: it reread the passwords and the ACL; restart it for listener or bridge "
               "changes.\n");
    return 0;
}

static int broker_tls(struct ctx *c)
{
    const char *names[ARGS_MAX];
    size_t n = 0;
    for (size_t i = 0; i < c->a.n_opt; i++)
        if (strcmp(c->a.key[i], "name") == 0)
            names[n++] = c->a.val[i];
    if (n == 0)
        return fail("broker tls: give the names nodes use to reach the hub, e.g. --name hub.local --name "
                    "192.168.1.10");
    long days = 0;
    const char *d = opt(&c->a, "days");
    if (d && parse_int(d, 1, 36500, &days) < 0)
        return fail("--days must be 1 to 36500");
    const char *dir = c->cfg.broker_tls_dir;
    int rc = make_parent(dir);
    if (rc == 0)
        rc = brokercfg_tls_create_ca(dir, "Firewatch CA", 0);
    bool new_ca = rc == 0;
    if (rc < 0 && rc != -EEXIST)
        return fail("cannot create the CA in %s: %s", dir,
                    rc == -ENOENT ? "the openssl program is missing (apt-get install openssl)"
                                  : strerror(-rc));
    rc = brokercfg_tls_create_server(dir, names, n, (int)days);
    if (rc == -EINVAL)
        return fail("broker tls: each --name must be a DNS name or an IP address");
    if (rc < 0)
        return fail("cannot create the server certificate: %s", strerror(-rc));
    audit(c, "broker tls", names[0]);
    printf("CA %s/%s (%s)\n", dir, BROKERCFG_TLS_CA_CERT, new_ca ? "new" : "kept");
    printf("server certificate %s/%s for", dir, BROKERCFG_TLS_SERVER_CERT);
    for (size_t i = 0; i < n; i++)
        printf(" %s", names[i]);
    printf(
        "\nNext: set broker_tls_port (e.g. 8883) and node_broker_url ssl://%s:8883 in the hub's config, run "
        "firewatchctl broker config and restart the broker.\n"
        "Each node needs the CA: copy %s/%s to it as /etc/firewatch/ca.crt.\n",
        names[0], dir, BROKERCFG_TLS_CA_CERT);
    return 0;
}

/* ---- the technician's view ---------------------------------------------- */

static int tech(struct ctx *c)
{
    const char *zone = opt(&c->a, "zone");
    int err = 0;
    cJSON *arr = techview_collect(store_handle(c->db), clock_wall_ms(), zone, &err);
    if (!arr)
        return fail("cannot read the technician's view: %s",
                    err == -EIO ? sqlite3_errmsg(store_handle(c->db)) : strerror(-err));
    if (c->a.json) {
        char *s = cJSON_Print(arr);
        if (s)
            puts(s);
        free(s);
        cJSON_Delete(arr);
        return 0;
    }
    /* By household, one line per problem; then one sentence per kind. */
    size_t n_problems = 0, n_hh = 0;
    const char *kinds[16];
    size_t n_kinds = 0;
    const cJSON *h, *p;
    cJSON_ArrayForEach(h, arr)
    {
        const char *addr = cJSON_GetStringValue(cJSON_GetObjectItem(h, "address"));
        const char *contact = cJSON_GetStringValue(cJSON_GetObjectItem(h, "contact"));
        const char *phone = cJSON_GetStringValue(cJSON_GetObjectItem(h, "phone"));
        printf("%shousehold %s, zone %s", n_hh++ ? "\n" : "",
               cJSON_GetStringValue(cJSON_GetObjectItem(h, "household")),
               cJSON_GetStringValue(cJSON_GetObjectItem(h, "zone")));
        if (addr[0] || contact[0] || phone[0])
            printf(" (%s%s%s%s%s)", addr, addr[0] && (contact[0] || phone[0]) ? "; " : "", contact,
                   contact[0] && phone[0] ? " " : "", phone);
        printf("\n");
        cJSON_ArrayForEach(p, cJSON_GetObjectItem(h, "problems"))
        {
            const char *kind = cJSON_GetStringValue(cJSON_GetObjectItem(p, "problem"));
            char since[40];
            fmt_time((int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(p, "since_ms")), since, sizeof since);
            printf("  %-20s %-17s since %-20s  %s\n", cJSON_GetStringValue(cJSON_GetObjectItem(p, "node")),
                   kind, since, cJSON_GetStringValue(cJSON_GetObjectItem(p, "detail")));
            n_problems++;
            bool seen = false;
            for (size_t k = 0; k < n_kinds; k++)
                seen = seen || strcmp(kinds[k], kind) == 0;
            if (!seen && n_kinds < sizeof kinds / sizeof kinds[0])
                kinds[n_kinds++] = kind;
        }
    }
    if (n_problems == 0)
        printf("nothing to do: every node%s%s is commissioned, online, tested and trouble-free\n",
               zone ? " in zone " : "", zone ? zone : "");
    else
        printf("\n%zu problem%s in %zu household%s. What to do:\n", n_problems, n_problems == 1 ? "" : "s",
               n_hh, n_hh == 1 ? "" : "s");
    for (size_t k = 0; k < n_kinds; k++)
        printf("  %-17s %s\n", kinds[k], techview_action(kinds[k]));
    cJSON_Delete(arr);
    return 0;
}

/* ---- users --------------------------------------------------------------- */

/* Reads a password from the terminal (twice, without echo) or one line of
 * stdin. Never from argv, where ps would show it. */
static int read_password(char *buf, size_t size)
{
    bool tty = isatty(STDIN_FILENO);
    struct termios old, quiet;
    for (int round = 0; round < (tty ? 2 : 1); round++) {
        char *dst = round == 0 ? buf : buf + size / 2;
        size_t cap = round == 0 ? size / 2 : size - size / 2;
        if (tty) {
            fprintf(stderr, round == 0 ? "Password: " : "Again: ");
            tcgetattr(STDIN_FILENO, &old);
            quiet = old;
            quiet.c_lflag &= (tcflag_t) ~(ECHO);
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
        }
        char *got = fgets(dst, (int)cap, stdin);
        if (tty) {
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
            fputc('\n', stderr);
        }
        if (!got)
            return fail("no password given on stdin");
        dst[strcspn(dst, "\r\n")] = '\0';
    }
    if (tty && strcmp(buf, buf + size / 2) != 0)
        return fail("the passwords differ");
    if (strlen(buf) < 8)
        return fail("the password must have at least 8 characters");
    return 0;
}

static int hash_password(char hash[crypto_pwhash_STRBYTES])
{
    char pw[512];
    if (read_password(pw, sizeof pw))
        return 1;
    int rc = crypto_pwhash_str(hash, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                               crypto_pwhash_MEMLIMIT_INTERACTIVE);
    sodium_memzero(pw, sizeof pw);
    if (rc != 0)
        return fail("cannot hash the password (out of memory)");
    return 0;
}

static int user_add(struct ctx *c)
{
    const char *role = opt(&c->a, "role");
    char hash[crypto_pwhash_STRBYTES];
    if (!role)
        return fail("user add: --role watch|technician|admin is required");
    if (hash_password(hash))
        return 1;
    int rc = store_user_add(c->db, c->a.pos[0], role, hash, clock_wall_ms());
    if (rc < 0)
        return store_fail(rc, "user", c->a.pos[0]);
    audit(c, "user add", c->a.pos[0]);
    return 0;
}

static int user_remove(struct ctx *c)
{
    int rc = store_user_remove(c->db, c->a.pos[0]);
    if (rc < 0)
        return store_fail(rc == -EINVAL ? -ENOENT : rc, "user", c->a.pos[0]);
    audit(c, "user remove", c->a.pos[0]);
    return 0;
}

static int user_role(struct ctx *c)
{
    int rc = store_user_set_role(c->db, c->a.pos[0], c->a.pos[1]);
    if (rc == -EINVAL)
        return fail("role must be watch, technician or admin");
    if (rc < 0)
        return store_fail(rc, "user", c->a.pos[0]);
    audit(c, "user role", c->a.pos[0]);
    return 0;
}

static int user_password(struct ctx *c)
{
    char hash[crypto_pwhash_STRBYTES], old[256];
    int rc = store_user_hash(c->db, c->a.pos[0], old, sizeof old);
    if (rc < 0)
        return store_fail(rc, "user", c->a.pos[0]);
    if (hash_password(hash))
        return 1;
    rc = store_user_set_password(c->db, c->a.pos[0], hash);
    if (rc < 0)
        return store_fail(rc, "user", c->a.pos[0]);
    audit(c, "user password", c->a.pos[0]);
    return 0;
}

static int user_list(struct ctx *c)
{
    return print_query(c,
                       "SELECT name, role, strftime('%Y-%m-%d', created_ms / 1000, 'unixepoch') AS created "
                       "FROM users ORDER BY name",
                       NULL, NULL);
}

/* ---- incidents and troubles ---------------------------------------------- */

static int incident_list(struct ctx *c)
{
    bool all = opt(&c->a, "all") != NULL;
    return print_query(c,
                       "SELECT id, CASE WHEN drill THEN 'drill' ELSE 'fire' END AS kind, zone_id AS zone, "
                       "origin_node AS origin, state, cause, strftime('%Y-%m-%d %H:%M:%S', opened_ms / 1000, "
                       "'unixepoch') AS opened, acked_by, CASE WHEN acked_ms > 0 THEN (acked_ms - CASE WHEN "
                       "escalated_ms > 0 THEN escalated_ms ELSE opened_ms END) / 1000 END AS response_s "
                       "FROM incidents WHERE ?1 IS NOT NULL OR state NOT IN ('cleared', 'dismissed') "
                       "ORDER BY id DESC LIMIT 200",
                       all ? "all" : NULL, NULL);
}

static int parse_id(const char *s, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v == 0 || v > UINT32_MAX)
        return -EINVAL;
    *out = (uint32_t)v;
    return 0;
}

static int incident_show(struct ctx *c)
{
    uint32_t id;
    if (parse_id(c->a.pos[0], &id) < 0)
        return fail("incident id must be a positive number");
    struct store_incident inc;
    int rc = store_incident_get(c->db, id, &inc);
    if (rc < 0)
        return store_fail(rc, "incident", c->a.pos[0]);
    if (!c->a.json) {
        printf("incident %u (%s) in zone %s: %s\n", inc.id, inc.drill ? "drill" : "fire", inc.zone,
               inc.state);
        printf("origin %s, cause %s, acknowledged by %s\n\n", inc.origin[0] ? inc.origin : "-",
               inc.cause[0] ? inc.cause : "-", inc.acked_by[0] ? inc.acked_by : "-");
    }
    return print_query(
        c,
        "SELECT strftime('%Y-%m-%d %H:%M:%f', ts_ms / 1000.0, 'unixepoch') AS time, what AS event, "
        "who, detail FROM timeline WHERE incident_id = ?1 ORDER BY id",
        c->a.pos[0], NULL);
}

/* Queues a command for the hub and waits up to 5 s for its answer. */
static int hub_command(struct ctx *c, const char *action, uint32_t incident, const char *zone)
{
    const char *user = opt(&c->a, "user");
    int64_t id = store_command_add(c->db, action, incident, zone, user ? user : c->who, clock_wall_ms());
    if (id < 0)
        return fail("cannot queue the command: %s", strerror((int)-id));
    audit(c, action, zone ? zone : c->a.pos[0]);
    char result[256] = "";
    int64_t deadline = clock_mono_ms() + 5000;
    int rc = 0;
    while (clock_mono_ms() < deadline && (rc = store_command_result(c->db, id, result, sizeof result)) == 0) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (rc == 1) {
        if (strncmp(result, "ok", 2) != 0)
            return fail("%s: %s", action, result);
        printf("%s\n", result);
        return 0;
    }
    printf("queued: the hub applies it when it runs (is firewatch-hub running?)\n");
    return 0;
}

static int incident_ack(struct ctx *c)
{
    uint32_t id;
    if (parse_id(c->a.pos[0], &id) < 0)
        return fail("incident id must be a positive number");
    return hub_command(c, "ack", id, NULL);
}

static int incident_clear(struct ctx *c)
{
    uint32_t id;
    if (parse_id(c->a.pos[0], &id) < 0)
        return fail("incident id must be a positive number");
    return hub_command(c, "clear", id, NULL);
}

static int incident_drill(struct ctx *c)
{
    if (!fw_id_valid(c->a.pos[0]))
        return store_fail(-EINVAL, "zone", c->a.pos[0]);
    return hub_command(c, "drill", 0, c->a.pos[0]);
}

static int trouble_resolve(struct ctx *c)
{
    if (!fw_id_valid(c->a.pos[0]))
        return store_fail(-EINVAL, "node", c->a.pos[0]);
    return hub_command(c, "resolve", 0, c->a.pos[0]);
}

static int trouble_list(struct ctx *c)
{
    bool all = opt(&c->a, "all") != NULL;
    return print_query(
        c,
        "SELECT t.id, t.node_id AS node, h.zone_id AS zone, t.kind, strftime('%Y-%m-%d %H:%M:%S', "
        "t.opened_ms / 1000, 'unixepoch') AS opened, CASE WHEN t.cleared_ms IS NULL THEN 'open' "
        "ELSE 'resolved' END AS status, t.detail FROM troubles t LEFT JOIN nodes n ON n.id = "
        "t.node_id LEFT JOIN households h ON h.id = n.household_id "
        "WHERE ?1 IS NOT NULL OR t.cleared_ms IS NULL ORDER BY t.id DESC LIMIT 500",
        all ? "all" : NULL, NULL);
}

/* ---- readiness ------------------------------------------------------------ */

static int readiness(struct ctx *c)
{
    const char *only = opt(&c->a, "zone");
    struct readyscan_zone *zs = NULL;
    int got = readyscan_zones(c->db, only, clock_wall_ms(), &zs);
    if (got < 0)
        return fail("cannot compute readiness: %s", strerror(-got));
    if (only && got == 0)
        return fail("no zone %s", only);
    size_t n = (size_t)got;
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        const struct readiness_result *r = &zs[i].r;
        if (c->a.json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "zone", zs[i].id);
            cJSON_AddStringToObject(o, "site", zs[i].site);
            cJSON_AddNumberToObject(o, "score", r->score);
            cJSON_AddStringToObject(o, "level", readiness_level_name(r->level));
            cJSON_AddNumberToObject(o, "households", r->households);
            cJSON_AddNumberToObject(o, "nodes", r->nodes);
            cJSON_AddNumberToObject(o, "healthy", r->healthy);
            cJSON *reasons = cJSON_AddArrayToObject(o, "reasons");
            for (size_t k = 0; k < r->n_reasons; k++)
                cJSON_AddItemToArray(reasons, cJSON_CreateString(r->reasons[k]));
            cJSON_AddItemToArray(arr, o);
        } else {
            printf("zone %s (site %s): %u/100 %s\n", zs[i].id, zs[i].site, r->score,
                   readiness_level_name(r->level));
            printf("  coverage %.1f/40, health %.1f/30, tested %.1f/20, response %.1f/10\n", r->coverage_pts,
                   r->health_pts, r->tested_pts, r->response_pts);
            for (size_t k = 0; k < r->n_reasons; k++)
                printf("  - %s\n", r->reasons[k]);
        }
    }
    /* Sites: the household-weighted mean of their zones. */
    for (size_t i = 0; i < n && !only;) {
        size_t j = i;
        while (j < n && strcmp(zs[j].site, zs[i].site) == 0)
            j++;
        struct readiness_result *tmp = malloc((j - i) * sizeof *tmp);
        for (size_t k = i; tmp && k < j; k++)
            tmp[k - i] = zs[k].r;
        struct readiness_site_result sr;
        if (tmp && readiness_site(tmp, j - i, &sr) == 0) {
            if (c->a.json) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "site", zs[i].site);
                cJSON_AddNumberToObject(o, "score", sr.score);
                cJSON_AddStringToObject(o, "level", readiness_level_name(sr.level));
                cJSON_AddNumberToObject(o, "households", sr.households);
                cJSON_AddItemToArray(arr, o);
            } else {
                printf("site %s: %u/100 %s (%u households)\n", zs[i].site, sr.score,
                       readiness_level_name(sr.level), sr.households);
            }
        }
        free(tmp);
        i = j;
    }
    if (c->a.json) {
        char *s = cJSON_Print(arr);
        if (s)
            puts(s);
        free(s);
    }
    cJSON_Delete(arr);
    free(zs);
    return 0;
}

static int backup(struct ctx *c)
{
    int rc = store_backup(c->db, c->a.pos[0]);
    if (rc == -EEXIST)
        return fail("backup: %s already exists; choose a new file", c->a.pos[0]);
    if (rc < 0)
        return fail("backup to %s failed", c->a.pos[0]);
    audit(c, "backup", c->a.pos[0]);
    printf("backup written to %s\n", c->a.pos[0]);
    return 0;
}

/* ---- the command table ---------------------------------------------------- */

struct command {
    const char *group, *verb;
    size_t n_pos; /* positionals required */
    int (*fn)(struct ctx *c);
    const char *usage;
};

static const struct command commands[] = {
    {"site", "add", 1, site_add, "site add ID --name NAME"},
    {"site", "list", 0, site_list, "site list"},
    {"site", "edit", 1, site_edit, "site edit ID --name NAME"},
    {"site", "remove", 1, site_remove, "site remove ID"},
    {"zone", "add", 1, zone_add, "zone add ID --site S [--name N] [--neighbours Z1,Z2]"},
    {"zone", "list", 0, zone_list, "zone list [--site S]"},
    {"zone", "edit", 1, zone_edit, "zone edit ID [--site S] [--name N] [--neighbours Z1,Z2]"},
    {"zone", "remove", 1, zone_remove, "zone remove ID"},
    {"household", "add", 1, household_add,
     "household add ID --zone Z [--address A] [--contact C] [--phone P] [--lat LAT --lon LON]"},
    {"household", "list", 0, household_list, "household list [--zone Z]"},
    {"household", "edit", 1, household_edit,
     "household edit ID [--zone Z] [--address A] [--contact C] [--phone P] [--lat LAT --lon LON]"},
    {"household", "remove", 1, household_remove, "household remove ID"},
    {"node", "add", 0, node_add,
     "node add [ID] --household H --kind smoke|heat|combo [--room R] [--out FILE]   (prints its config)"},
    {"node", "list", 0, node_list, "node list [--zone Z]"},
    {"node", "test", 1, node_test, "node test ID [--timeout S]   (commissioning test through the hub)"},
    {"node", "rotate-credentials", 1, node_rotate, "node rotate-credentials ID [--out FILE]"},
    {"node", "move", 1, node_move, "node move ID --household H [--room R]"},
    {"node", "decommission", 1, node_decommission, "node decommission ID   (revokes it, keeps its history)"},
    {"node", "tls", 1, node_tls, "node tls ID [--days N]   (a client certificate)"},
    {"node", "remove", 1, node_remove, "node remove ID   (only a node never installed)"},
    {"broker", "config", 0, broker_config, "broker config [--print]"},
    {"broker", "tls", 0, broker_tls, "broker tls --name HOST [--name IP ...] [--days N]"},
    {"area", "add", 1, area_add,
     "area add AREA [--name NAME] [--broker HOST:PORT]   (regional hub: an area's bridge account)"},
    {"area", "list", 0, area_list, "area list"},
    {"area", "remove", 1, area_remove, "area remove AREA   (revokes its bridge, keeps its history)"},
    {"federation", "bridge", 0, federation_bridge,
     "federation bridge   (area hub: the Mosquitto bridge section, for a broker you run yourself)"},
    {"tech", NULL, 0, tech, "tech [--zone Z]   (nodes needing a technician, by household)"},
    {"user", "add", 1, user_add, "user add NAME --role watch|technician|admin   (password on stdin)"},
    {"user", "list", 0, user_list, "user list"},
    {"user", "remove", 1, user_remove, "user remove NAME"},
    {"user", "role", 2, user_role, "user role NAME watch|technician|admin"},
    {"user", "password", 1, user_password, "user password NAME   (new password on stdin)"},
    {"incident", "list", 0, incident_list, "incident list [--all]"},
    {"incident", "show", 1, incident_show, "incident show ID"},
    {"incident", "ack", 1, incident_ack, "incident ack ID [--user NAME]"},
    {"incident", "clear", 1, incident_clear, "incident clear ID [--user NAME]"},
    {"incident", "drill", 1, incident_drill, "incident drill ZONE [--user NAME]"},
    {"trouble", "list", 0, trouble_list, "trouble list [--all]"},
    {"trouble", "resolve", 1, trouble_resolve, "trouble resolve NODE [--user NAME]   (a tamper latch)"},
    {"readiness", NULL, 0, readiness, "readiness [--zone Z]"},
    {"backup", NULL, 1, backup, "backup FILE"},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

/* Options that take no value. */
static bool is_flag(const char *k)
{
    return strcmp(k, "all") == 0 || strcmp(k, "print") == 0;
}

static void usage(FILE *f, const char *group)
{
    fprintf(f, "usage: firewatchctl [-c FILE] [--json] COMMAND ...\n\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!group || strcmp(group, commands[i].group) == 0)
            fprintf(f, "  firewatchctl %s\n", commands[i].usage);
    if (!group)
        fprintf(f,
                "\n  -c FILE    the hub's config file (default %s), for the database path\n"
                "  --json     machine-readable output\n"
                "  --help     help (also after any command)\n"
                "  --version  print the version\n"
                "Aliases: incidents, troubles, users, nodes, sites, zones, households, areas.\n",
                HUBCONF_DEFAULT_PATH);
}

/* Accepts plural group names ("incidents") as aliases. */
static const char *group_name(const char *g)
{
    static const char *const groups[] = {"site", "zone",     "household", "node",
                                         "user", "incident", "trouble",   "area"};
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
        size_t n = strlen(groups[i]);
        if (strncmp(g, groups[i], n) == 0 && strcmp(g + n, "s") == 0)
            return groups[i];
    }
    return g;
}

int main(int argc, char **argv)
{
    struct ctx c;
    memset(&c, 0, sizeof c);
    const char *config = HUBCONF_DEFAULT_PATH;
    log_init("firewatchctl", LOGL_WARN);

    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "-c") == 0 || strcmp(s, "--config") == 0) {
            if (++i >= argc)
                return fail("-c needs a file");
            config = argv[i];
        } else if (strcmp(s, "--json") == 0) {
            c.a.json = true;
        } else if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            c.a.help = true;
        } else if (strcmp(s, "--version") == 0) {
            printf("firewatchctl %s\n", FIREWATCH_VERSION);
            return 0;
        } else if (strncmp(s, "--", 2) == 0 && s[2]) {
            if (c.a.n_opt == ARGS_MAX)
                return fail("too many options");
            c.a.key[c.a.n_opt] = s + 2;
            if (is_flag(s + 2)) {
                c.a.val[c.a.n_opt++] = "1";
            } else {
                if (++i >= argc)
                    return fail("%s needs a value", s);
                c.a.val[c.a.n_opt++] = argv[i];
            }
        } else {
            if (c.a.n_pos == ARGS_MAX)
                return fail("too many arguments");
            c.a.pos[c.a.n_pos++] = s;
        }
    }
    if (c.a.n_pos == 0) {
        usage(c.a.help ? stdout : stderr, NULL);
        return c.a.help ? 0 : 2;
    }
    const char *group = group_name(c.a.pos[0]);
    const struct command *cmd = NULL;
    bool group_known = false;
    for (size_t i = 0; i < N_COMMANDS && !cmd; i++) {
        if (strcmp(commands[i].group, group) != 0)
            continue;
        group_known = true;
        if (!commands[i].verb)
            cmd = &commands[i];
        else if (c.a.n_pos > 1 && strcmp(commands[i].verb, c.a.pos[1]) == 0)
            cmd = &commands[i];
        else if (c.a.n_pos == 1 && strcmp(commands[i].verb, "list") == 0 && !c.a.help)
            cmd = &commands[i]; /* "firewatchctl nodes" lists them */
    }
    if (!cmd) {
        if (!group_known) {
            fail("unknown command '%s'", c.a.pos[0]);
            usage(stderr, NULL);
            return 2;
        }
        usage(c.a.help ? stdout : stderr, group);
        return c.a.help ? 0 : 2;
    }
    if (c.a.help) {
        printf("usage: firewatchctl %s\n", cmd->usage);
        return 0;
    }
    /* Drop the group (and verb) from the positionals. */
    size_t skip = cmd->verb && c.a.n_pos > 1 ? 2 : 1;
    memmove(c.a.pos, c.a.pos + skip, (c.a.n_pos - skip) * sizeof c.a.pos[0]);
    c.a.n_pos -= skip;
    if (need(&c, cmd->n_pos, cmd->usage))
        return 2;
    for (size_t i = 0; i < c.a.n_opt; i++) {
        if (!strstr(cmd->usage, c.a.key[i]))
            return fail("%s %s: unknown option --%s (usage: firewatchctl %s)", cmd->group,
                        cmd->verb ? cmd->verb : "", c.a.key[i], cmd->usage);
    }

    struct hub_config *cfg = &c.cfg;
    struct conf_error err;
    char msg[600];
    if (hubconf_load(config, cfg, &err) < 0)
        return fail("%s", conf_error_text(&err, msg, sizeof msg));
    if (sodium_init() < 0)
        return fail("libsodium failed to initialise");
    const char *u = getenv("SUDO_USER");
    if (!u || !*u)
        u = getenv("USER");
    snprintf(c.who, sizeof c.who, "%s", u && *u ? u : "cli");
    bool created = access(cfg->database, F_OK) != 0;
    c.db = store_open(cfg->database, STORE_CREATE, msg, sizeof msg);
    if (!c.db)
        return fail("%s", msg);
    int rc = cmd->fn(&c);
    store_close(c.db);
    if (created)
        give_to_state_dir(cfg->database);
    sodium_memzero(cfg->password, sizeof cfg->password);
    return rc;
}
