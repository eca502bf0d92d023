/*
 * hubha.c - see hubha.h. Reads names, rooms and firmware versions straight
 * from the main thread's read connection (a rare, whole-topology pass) and
 * hands each set from hadisc.c to ingest_publish.
 */
#include "hubha.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hadisc.h"
#include "log.h"

struct hubha {
    char prefix[HADISC_PREFIX_MAX + 1];
    char sw_version[32];
    char support_url[256];
    char birth[HADISC_TOPIC_MAX];
    struct hadisc_config cfg; /* points into the strings above */
};

struct hubha *hubha_new(const char *prefix, const char *sw_version, const char *support_url)
{
    struct hubha *ha = calloc(1, sizeof *ha);
    if (!ha)
        return NULL;
    snprintf(ha->prefix, sizeof ha->prefix, "%s", prefix && *prefix ? prefix : HADISC_PREFIX_DEFAULT);
    snprintf(ha->sw_version, sizeof ha->sw_version, "%s", sw_version ? sw_version : "");
    snprintf(ha->support_url, sizeof ha->support_url, "%s", support_url ? support_url : "");
    ha->cfg.prefix = ha->prefix;
    ha->cfg.sw_version = ha->sw_version[0] ? ha->sw_version : NULL;
    ha->cfg.support_url = ha->support_url[0] ? ha->support_url : NULL;
    if (hadisc_birth_topic(&ha->cfg, ha->birth, sizeof ha->birth) < 0) {
        free(ha);
        errno = EINVAL;
        return NULL;
    }
    return ha;
}

void hubha_free(struct hubha *ha)
{
    free(ha);
}

const char *hubha_birth_topic(const struct hubha *ha)
{
    return ha->birth;
}

bool hubha_is_birth(const struct hubha *ha, const void *payload, size_t len)
{
    return hadisc_is_birth(&ha->cfg, ha->birth, payload, len);
}

/* Publishes a set retained at QoS 1 and frees it; returns how many. */
static int send_set(struct ingest *in, struct hadisc_set *set)
{
    int n = 0;
    for (size_t i = 0; i < set->n; i++)
        if (ingest_publish(in, set->msg[i].topic, set->msg[i].payload ? set->msg[i].payload : "",
                           set->msg[i].len, 1, true) == 0)
            n++;
    hadisc_set_free(set);
    return n;
}

static const char *col(sqlite3_stmt *q, int i)
{
    const unsigned char *t = sqlite3_column_text(q, i);
    return t ? (const char *)t : "";
}

int hubha_publish_all(struct hubha *ha, struct store *db, struct ingest *in)
{
    sqlite3 *h = store_handle(db);
    sqlite3_stmt *q = NULL;
    int total = 0, rc;
    if (sqlite3_prepare_v2(h,
                           "SELECT z.id, z.name, COALESCE(s.name, '') FROM zones z LEFT JOIN sites s ON s.id "
                           "= z.site_id ORDER BY z.id",
                           -1, &q, NULL) != SQLITE_OK) {
        log_error("home assistant: cannot list zones: %s", sqlite3_errmsg(h));
        return -EIO;
    }
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        struct hadisc_zone z = {.id = col(q, 0), .name = col(q, 1), .site = col(q, 2)};
        struct hadisc_set set = {0};
        if (hadisc_zone_configs(&ha->cfg, &z, &set) == 0)
            total += send_set(in, &set);
        else
            hadisc_set_free(&set);
    }
    sqlite3_finalize(q);
    if (sqlite3_prepare_v2(h,
                           "SELECT n.id, n.kind, n.room, n.household_id, hh.zone_id, n.fw, n.interval_s FROM "
                           "nodes n JOIN households hh ON hh.id = n.household_id WHERE n.decommissioned_ms = "
                           "0 ORDER BY n.id",
                           -1, &q, NULL) != SQLITE_OK) {
        log_error("home assistant: cannot list nodes: %s", sqlite3_errmsg(h));
        return -EIO;
    }
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        enum fw_node_kind kind;
        if (fw_kind_parse(col(q, 1), &kind) < 0)
            continue;
        struct hadisc_node n = {.id = col(q, 0),
                                .kind = kind,
                                .room = col(q, 2),
                                .household = col(q, 3),
                                .zone = col(q, 4),
                                .fw = col(q, 5),
                                .interval_s = sqlite3_column_int(q, 6)};
        struct hadisc_set set = {0};
        if (hadisc_node_configs(&ha->cfg, &n, &set) == 0)
            total += send_set(in, &set);
        else
            hadisc_set_free(&set);
    }
    sqlite3_finalize(q);
    log_info("home assistant: %d discovery configs published under %s/", total, ha->prefix);
    return total;
}

void hubha_remove_node(struct hubha *ha, struct ingest *in, const char *node)
{
    struct hadisc_set set = {0};
    if (hadisc_node_removal(&ha->cfg, node, &set) == 0) {
        int n = send_set(in, &set);
        log_info("home assistant: node %s removed (%d configs cleared)", node, n);
    } else {
        hadisc_set_free(&set);
    }
}
