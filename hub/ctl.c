/*
 * ctl.c - firewatchctl, the command line for admins and technicians.
 *
 * It reads the hub's config file only to find the database, and talks to
 * the database directly: topology and users are plain rows (the running hub
 * notices the change counter move and reloads), while anything that changes
 * an incident (ack, clear, drill) is queued in the commands table for the
 * hub, which owns incident state, and the answer is awaited for a few
 * seconds. Every command is one row of a table with its usage line; lists
 * are SQL queries printed as aligned columns or, with --json, as a JSON
 * array of objects.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "firewatch/protocol.h"
#include "hubconf.h"
#include "log.h"
#include "readiness.h"
#include "readyscan.h"
#include "store.h"

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
    audit(c, "node add", id);
    if (c->a.json)
        printf("{\"id\":\"%s\"}\n", id);
    else
        printf("%s\n", id);
    return 0;
}

static int node_remove(struct ctx *c)
{
    int rc = store_node_remove(c->db, c->a.pos[0]);
    if (rc < 0)
        return store_fail(rc, "node", c->a.pos[0]);
    audit(c, "node remove", c->a.pos[0]);
    return 0;
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
        "CASE WHEN n.commissioned_ms = 0 THEN 'uncommissioned' WHEN n.online AND n.batt_pct >= 20 AND NOT "
        "EXISTS "
        "(SELECT 1 FROM troubles t WHERE t.node_id = n.id AND t.cleared_ms IS NULL) THEN 'healthy' ELSE "
        "'attention' END AS health "
        "FROM nodes n JOIN households h ON h.id = n.household_id "
        "WHERE ?1 IS NULL OR h.zone_id = ?1 ORDER BY n.id",
        opt(&c->a, "zone"), NULL);
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
    {"node", "add", 0, node_add, "node add [ID] --household H --kind smoke|heat|combo [--room R]"},
    {"node", "list", 0, node_list, "node list [--zone Z]"},
    {"node", "remove", 1, node_remove, "node remove ID"},
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
    return strcmp(k, "all") == 0;
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
                "Aliases: incidents, troubles, users, nodes, sites, zones, households.\n",
                HUBCONF_DEFAULT_PATH);
}

/* Accepts plural group names ("incidents") as aliases. */
static const char *group_name(const char *g)
{
    static const char *const groups[] = {"site", "zone", "household", "node", "user", "incident", "trouble"};
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

    struct hub_config cfg;
    struct conf_error err;
    char msg[600];
    if (hubconf_load(config, &cfg, &err) < 0)
        return fail("%s", conf_error_text(&err, msg, sizeof msg));
    if (sodium_init() < 0)
        return fail("libsodium failed to initialise");
    const char *u = getenv("SUDO_USER");
    if (!u || !*u)
        u = getenv("USER");
    snprintf(c.who, sizeof c.who, "%s", u && *u ? u : "cli");
    c.db = store_open(cfg.database, STORE_CREATE, msg, sizeof msg);
    if (!c.db)
        return fail("%s", msg);
    int rc = cmd->fn(&c);
    store_close(c.db);
    return rc;
}
