/*
 * hub.c - firewatch-hub, the daemon: it hears every node over MQTT, keeps
 * the state of every node and incident, decides, wakes the zone and stores
 * everything.
 *
 * One thread, this file's main loop, owns the hub's state: the topology,
 * the incident engine, the supervisor and the notifier's inputs. Around it:
 * paho's receive thread (ingest.c) decodes messages, commits events before
 * they are acknowledged and queues everything for this loop; the writer
 * thread (writer.c) does every other database write; the notifier thread
 * (notify.c) runs the operator's command. The loop sleeps in poll() on the
 * ingest queue's eventfd and a signalfd, with a timeout set by the nearest
 * timer (incident deadline, supervision sweep, housekeeping), so a zone
 * alarm is published from memory the moment the alarm event is dequeued.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "clock.h"
#include "fed.h"
#include "fedpub.h"
#include "firewatch/protocol.h"
#include "http_hub.h"
#include "hubconf.h"
#include "hubha.h"
#include "incident.h"
#include "ingest.h"
#include "log.h"
#include "notify.h"
#include "region.h"
#include "sdnotify.h"
#include "store.h"
#include "supervise.h"
#include "writer.h"

#ifndef FIREWATCH_VERSION
#define FIREWATCH_VERSION "0.1.0"
#endif

#define DRAIN_MAX 256
#define TOPOLOGY_POLL_MS 1000
#define NODE_SAVE_MS 5000
#define RETENTION_MS (3600 * 1000)

/* What the main loop knows about one registered node. */
struct hnode {
    struct store_node st; /* id, zone, household, boot, online, ... as stored */
    char fw[FW_FW_MAX + 1];
    int64_t last_seq; /* highest seq seen in st.boot (readings and events), -1 none */
    bool dirty;       /* st differs from the database */
};

#define SELFTEST_MAX 64            /* commissioning tests waiting at once */
#define SELFTEST_TIMEOUT_S 30      /* default wait for the node's answer */
#define SELFTEST_TIMEOUT_MAX_S 600 /* longest wait a command may ask for */

/* A commissioning test (firewatchctl node test, POST /api/v1/nodes/<id>/test)
 * waiting for its node's test event. The command row is answered when the
 * event comes or the time is up. */
struct selftest {
    int64_t command; /* the commands table row */
    char node[FW_ID_MAX + 1];
    char cmd_id[FW_CMD_ID_MAX + 1];
    int timeout_s;
    int64_t deadline_mono;
};

struct hub {
    struct hub_config cfg;
    const char *config_path;
    struct store *db; /* the main thread's connection: reads only */
    struct writer *writer;
    struct ingest *ingest;
    struct incident_engine *engine;
    struct supervisor *sup;
    struct notifier *notifier;
    struct http_hub *web;   /* the HTTP face; NULL when off or not started yet */
    int64_t web_retry_mono; /* when to try starting it again */
    struct hubha *ha;       /* Home Assistant discovery; NULL when off */
    struct fedpub *fed;     /* federation summaries (an area hub); NULL when off */
    struct region *region;  /* a regional hub's receiver; NULL on an area hub */
    bool ha_due;            /* publish every discovery config at the next poll */
    bool readiness_due;     /* readiness may have changed: tell the HTTP side */
    uint64_t closed[INCIDENT_STATE_COUNT];

    struct hnode *nodes; /* sorted by id */
    size_t n_nodes;
    char (*zones)[FW_ID_MAX + 1];
    size_t n_zones;
    int64_t change_counter;

    uint64_t seen_connects;
    bool retained_synced;
    uint64_t unknown_node, seq_gaps;
    int64_t last_command; /* id of the last firewatchctl command handled */
    struct log_limit limit;
    uint64_t decommissioned_msgs; /* messages from retired nodes, ignored */
    struct selftest tests[SELFTEST_MAX];
    size_t n_tests;

    struct incident_actions iact;
    struct supervise_actions sact;
    struct ingest_item items[DRAIN_MAX];
};

static int hnode_cmp(const void *key, const void *elem)
{
    return strcmp((const char *)key, ((const struct hnode *)elem)->st.id);
}

static struct hnode *find_node(struct hub *h, const char *id)
{
    return h->n_nodes ? bsearch(id, h->nodes, h->n_nodes, sizeof *h->nodes, hnode_cmp) : NULL;
}

/* ---- the live stream (docs/http-api.md lists the documents) ------------- */

/* An incident moved on: one timeline entry of the engine. */
static void web_incident(struct hub *h, const struct incident_action *a)
{
    if (a->state == INCIDENT_CLEARED || a->state == INCIDENT_DISMISSED)
        h->closed[a->state]++;
    if (a->state != INCIDENT_VERIFYING)
        h->readiness_due = true;
    fedpub_changed(h->fed);
    if (!h->web)
        return;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddNumberToObject(d, "id", a->incident);
    cJSON_AddStringToObject(d, "zone", a->zone);
    cJSON_AddStringToObject(d, "state", incident_state_name(a->state));
    cJSON_AddStringToObject(d, "kind", incident_kind_name(a->incident_kind));
    cJSON_AddStringToObject(d, "origin", a->origin);
    cJSON_AddStringToObject(d, "event", a->event ? a->event : "");
    cJSON_AddStringToObject(d, "who", a->who);
    cJSON_AddStringToObject(d, "what", a->what);
    cJSON_AddNumberToObject(d, "ts", (double)a->ts);
    http_hub_publish(h->web, "incident", d);
}

/* A trouble opened or closed. */
static void web_trouble(struct hub *h, const char *node, const char *kind, bool open, const char *detail,
                        int64_t ts)
{
    h->readiness_due = true;
    fedpub_changed(h->fed);
    if (!h->web)
        return;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "node", node);
    cJSON_AddStringToObject(d, "kind", kind);
    cJSON_AddBoolToObject(d, "open", open);
    cJSON_AddStringToObject(d, "detail", detail);
    cJSON_AddNumberToObject(d, "ts", (double)ts);
    http_hub_publish(h->web, "trouble", d);
}

/* A node came online or went offline. */
static void web_node(struct hub *h, const struct hnode *n)
{
    h->readiness_due = true;
    fedpub_changed(h->fed);
    if (!h->web)
        return;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "id", n->st.id);
    cJSON_AddBoolToObject(d, "online", n->st.online);
    if (n->st.batt_pct >= 0)
        cJSON_AddNumberToObject(d, "batt_pct", n->st.batt_pct);
    else
        cJSON_AddNullToObject(d, "batt_pct");
    cJSON_AddNumberToObject(d, "last_seen_ms", (double)n->st.last_seen_ms);
    http_hub_publish(h->web, "node", d);
}

/* ---- notifications ------------------------------------------------------ */

static void notify_json(struct hub *h, cJSON *doc)
{
    if (!h->notifier) {
        cJSON_Delete(doc);
        return;
    }
    char *text = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    if (!text)
        return;
    int rc = notify_post(h->notifier, text, strlen(text));
    if (rc < 0)
        log_warn("notification dropped: %s", strerror(-rc));
    free(text);
}

/* ---- incidents ---------------------------------------------------------- */

static void join_list(char *dst, size_t size, size_t n, const char *const *items, const bool *flags)
{
    size_t used = 0;
    dst[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(dst + used, size - used, "%s%s%s", i ? "," : "", flags && !flags[i] ? "!" : "",
                         items[i]);
        if (w < 0 || (size_t)w >= size - used) {
            dst[used] = '\0';
            return;
        }
        used += (size_t)w;
    }
}

static void info_to_store(const struct incident_info *in, struct store_incident *out)
{
    memset(out, 0, sizeof *out);
    out->id = in->id;
    snprintf(out->zone, sizeof out->zone, "%s", in->zone);
    snprintf(out->origin, sizeof out->origin, "%s", in->origin);
    snprintf(out->state, sizeof out->state, "%s", incident_state_name(in->state));
    const char *cause = in->cause != FW_CAUSE_NONE ? fw_cause_name(in->cause) : "";
    snprintf(out->cause, sizeof out->cause, "%s", cause ? cause : "");
    out->drill = in->kind == INCIDENT_DRILL;
    out->opened_ms = in->opened_ms;
    out->escalated_ms = in->alarm_ms;
    out->acked_ms = in->ack_ms;
    snprintf(out->acked_by, sizeof out->acked_by, "%s", in->ack_by);
    snprintf(out->opened_by, sizeof out->opened_by, "%s", in->opened_by);
    const char *ids[INCIDENT_NODES_MAX];
    bool flags[INCIDENT_NODES_MAX];
    for (size_t i = 0; i < in->n_nodes && i < INCIDENT_NODES_MAX; i++) {
        ids[i] = in->nodes[i].id;
        flags[i] = in->nodes[i].alarming;
    }
    join_list(out->nodes, sizeof out->nodes, in->n_nodes, ids, flags);
    const char *zs[INCIDENT_SOUNDED_MAX];
    for (size_t i = 0; i < in->n_sounded && i < INCIDENT_SOUNDED_MAX; i++)
        zs[i] = in->sounded[i];
    join_list(out->sounded, sizeof out->sounded, in->n_sounded, zs, NULL);
}

static int store_to_info(const struct store_incident *s, struct incident_info *out)
{
    memset(out, 0, sizeof *out);
    out->id = s->id;
    out->kind = s->drill ? INCIDENT_DRILL : INCIDENT_FIRE;
    bool found = false;
    for (int st = 0; st < INCIDENT_STATE_COUNT; st++) {
        if (strcmp(incident_state_name((enum incident_state)st), s->state) == 0) {
            out->state = (enum incident_state)st;
            found = true;
        }
    }
    if (!found)
        return -EINVAL;
    snprintf(out->zone, sizeof out->zone, "%s", s->zone);
    snprintf(out->origin, sizeof out->origin, "%s", s->origin);
    snprintf(out->opened_by, sizeof out->opened_by, "%.*s", INCIDENT_USER_MAX, s->opened_by);
    if (!s->cause[0] || fw_cause_parse(s->cause, &out->cause) < 0)
        out->cause = FW_CAUSE_NONE;
    out->opened_ms = s->opened_ms;
    out->alarm_ms = s->escalated_ms;
    out->ack_ms = s->acked_ms;
    snprintf(out->ack_by, sizeof out->ack_by, "%.*s", INCIDENT_USER_MAX, s->acked_by);
    for (const char *p = s->nodes; *p && out->n_nodes < INCIDENT_NODES_MAX;) {
        size_t n = strcspn(p, ",");
        bool alarming = *p != '!';
        const char *id = alarming ? p : p + 1;
        size_t idn = alarming ? n : n - 1;
        if (idn > 0 && idn <= FW_ID_MAX) {
            memcpy(out->nodes[out->n_nodes].id, id, idn);
            out->nodes[out->n_nodes].id[idn] = '\0';
            out->nodes[out->n_nodes].alarming = alarming;
            out->n_nodes++;
        }
        p += n + (p[n] == ',');
    }
    for (const char *p = s->sounded; *p && out->n_sounded < INCIDENT_SOUNDED_MAX;) {
        size_t n = strcspn(p, ",");
        if (n > 0 && n <= FW_ID_MAX) {
            memcpy(out->sounded[out->n_sounded], p, n);
            out->sounded[out->n_sounded][n] = '\0';
            out->n_sounded++;
        }
        p += n + (p[n] == ',');
    }
    return 0;
}

static void publish_zone(struct hub *h, const char *zone, enum fw_alarm_state state, uint32_t incident,
                         const char *origin, int64_t ts)
{
    struct fw_msg m = {.channel = FW_CH_ZONE_ALARM};
    char topic[FW_TOPIC_MAX], payload[FW_PAYLOAD_MAX + 1];
    m.u.alarm.state = state;
    m.u.alarm.incident = incident;
    snprintf(m.u.alarm.origin, sizeof m.u.alarm.origin, "%s", origin ? origin : "");
    m.u.alarm.ts = ts;
    int n = fw_msg_encode(&m, payload, sizeof payload);
    if (n < 0 || fw_topic_build(topic, sizeof topic, FW_CH_ZONE_ALARM, zone) < 0) {
        log_error("cannot encode the zone alarm for %s: %s", zone, strerror(n < 0 ? -n : EINVAL));
        return;
    }
    ingest_publish(h->ingest, topic, payload, (size_t)n, 1, true);
}

/* Carries out what the engine decided: every publish first (they come first
 * in the list), then notifications, then the writes, which only queue. */
static void apply_incident_actions(struct hub *h, const struct incident_actions *acts)
{
    uint32_t touched[INCIDENT_ACTIONS_MAX];
    size_t n_touched = 0;
    for (size_t i = 0; i < acts->n; i++) {
        const struct incident_action *a = &acts->a[i];
        switch (a->kind) {
        case INCIDENT_ACT_ZONE_PUBLISH:
            publish_zone(h, a->zone, a->zone_state, a->incident, a->origin, a->ts);
            log_info("zone %s: %s (incident %u, origin %s)", a->zone, fw_state_name(a->zone_state),
                     a->incident, a->origin);
            break;
        case INCIDENT_ACT_NOTIFY: {
            cJSON *d = cJSON_CreateObject();
            cJSON_AddStringToObject(d, "type", "incident");
            cJSON_AddStringToObject(d, "event", a->event ? a->event : "");
            cJSON_AddNumberToObject(d, "incident", a->incident);
            cJSON_AddStringToObject(d, "kind", incident_kind_name(a->incident_kind));
            cJSON_AddStringToObject(d, "zone", a->zone);
            cJSON_AddStringToObject(d, "origin", a->origin);
            cJSON_AddStringToObject(d, "what", a->what);
            cJSON_AddStringToObject(d, "who", a->who);
            cJSON_AddNumberToObject(d, "ts", (double)a->ts);
            if (a->response_ms >= 0)
                cJSON_AddNumberToObject(d, "response_ms", (double)a->response_ms);
            notify_json(h, d);
            break;
        }
        case INCIDENT_ACT_TIMELINE: {
            web_incident(h, a);
            const char *node = find_node(h, a->who) ? a->who : "";
            writer_timeline(h->writer, a->incident, a->ts, a->event, a->who, node, a->what);
            if (a->state == INCIDENT_CLEARED || a->state == INCIDENT_DISMISSED) {
                writer_incident_close(h->writer, a->incident, incident_state_name(a->state), a->ts, a->who);
                break;
            }
            bool seen = false;
            for (size_t k = 0; k < n_touched; k++)
                seen = seen || touched[k] == a->incident;
            if (!seen && n_touched < INCIDENT_ACTIONS_MAX)
                touched[n_touched++] = a->incident;
            break;
        }
        }
    }
    /* Snapshot each incident that changed (a closed one already has its row). */
    for (size_t k = 0; k < n_touched; k++) {
        struct incident_info info;
        struct store_incident row;
        if (incident_get(h->engine, touched[k], &info) == 0) {
            info_to_store(&info, &row);
            writer_incident(h->writer, &row);
        }
    }
}

static void incident_timers(struct hub *h, int64_t now)
{
    for (int guard = 0; guard < 64 && incident_next_deadline(h->engine) <= now; guard++) {
        incident_tick(h->engine, now, &h->iact);
        apply_incident_actions(h, &h->iact);
        if (h->iact.n == 0)
            break;
    }
}

/* ---- supervision -------------------------------------------------------- */

static void apply_supervise_actions(struct hub *h, const struct supervise_actions *acts)
{
    for (size_t i = 0; i < acts->n; i++) {
        const struct supervise_action *a = &acts->a[i];
        const char *kind = supervise_trouble_name(a->trouble);
        struct hnode *n = find_node(h, a->node);
        if (a->trouble == SUPERVISE_OFFLINE && n) {
            n->st.online = a->kind == SUPERVISE_ACT_CLOSE;
            n->dirty = true;
        }
        if (a->trouble == SUPERVISE_OFFLINE && n)
            web_node(h, n);
        if (a->kind != SUPERVISE_ACT_REPEAT)
            web_trouble(h, a->node, kind, a->kind == SUPERVISE_ACT_OPEN, a->detail, a->ts);
        if (a->kind == SUPERVISE_ACT_CLOSE) {
            writer_trouble(h->writer, false, a->node, kind, a->ts, a->detail);
            log_info("node %s: %s resolved", a->node, kind);
            continue;
        }
        if (a->kind == SUPERVISE_ACT_OPEN) {
            writer_trouble(h->writer, true, a->node, kind, a->ts, a->detail);
            log_warn("node %s: %s: %s", a->node, kind, a->detail);
        }
        writer_trouble_notified(h->writer, a->node, kind, a->ts);
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "type", "trouble");
        cJSON_AddStringToObject(d, "event", a->kind == SUPERVISE_ACT_OPEN ? "open" : "repeat");
        cJSON_AddStringToObject(d, "node", a->node);
        cJSON_AddStringToObject(d, "zone", n ? n->st.zone : "");
        cJSON_AddStringToObject(d, "household", n ? n->st.household : "");
        cJSON_AddStringToObject(d, "trouble", kind);
        cJSON_AddStringToObject(d, "detail", a->detail);
        cJSON_AddNumberToObject(d, "opened_ms", (double)a->opened_ms);
        cJSON_AddNumberToObject(d, "ts", (double)a->ts);
        notify_json(h, d);
    }
}

/* ---- topology ----------------------------------------------------------- */

struct load_ctx {
    struct hub *h;
    struct hnode *nodes;
    size_t n, cap;
    char (*zones)[FW_ID_MAX + 1];
    size_t nz, capz;
};

static int load_zone(void *ctx, const struct store_zone *z)
{
    struct load_ctx *c = ctx;
    const char *neigh[INCIDENT_NEIGHBOURS_MAX];
    char buf[INCIDENT_NEIGHBOURS_MAX][FW_ID_MAX + 1];
    size_t n = 0;
    for (const char *p = z->neighbours; *p && n < INCIDENT_NEIGHBOURS_MAX;) {
        size_t len = strcspn(p, ",");
        if (len > 0 && len <= FW_ID_MAX) {
            memcpy(buf[n], p, len);
            buf[n][len] = '\0';
            neigh[n] = buf[n];
            n++;
        }
        p += len + (p[len] == ',');
    }
    int rc = incident_set_zone(c->h->engine, z->id, neigh, n);
    if (rc < 0)
        log_warn("zone %s: cannot declare it to the incident engine: %s", z->id, strerror(-rc));
    if (c->nz == c->capz) {
        size_t cap = c->capz ? c->capz * 2 : 64;
        void *p = realloc(c->zones, cap * sizeof *c->zones);
        if (!p)
            return -ENOMEM;
        c->zones = p;
        c->capz = cap;
    }
    snprintf(c->zones[c->nz++], FW_ID_MAX + 1, "%s", z->id);
    return 0;
}

static int load_node(void *ctx, const struct store_node *sn)
{
    struct load_ctx *c = ctx;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 256;
        struct hnode *p = realloc(c->nodes, cap * sizeof *p);
        if (!p)
            return -ENOMEM;
        c->nodes = p;
        c->cap = cap;
    }
    struct hnode *n = &c->nodes[c->n++];
    memset(n, 0, sizeof *n);
    struct hnode *old = find_node(c->h, sn->id);
    if (old) {
        /* Keep the live state; take the new place in the topology. */
        *n = *old;
        snprintf(n->st.household, sizeof n->st.household, "%s", sn->household);
        snprintf(n->st.zone, sizeof n->st.zone, "%s", sn->zone);
        n->st.kind = sn->kind;
        n->st.decommissioned_ms = sn->decommissioned_ms;
    } else {
        n->st = *sn;
        n->last_seq = -1;
    }
    return 0;
}

/* (Re)reads zones and nodes from the database. Nodes that disappeared leave
 * the engine and the supervisor; new ones join. */
static int load_topology(struct hub *h, int64_t now)
{
    struct load_ctx c = {.h = h};
    int64_t t0 = clock_mono_ms();
    int rc = store_each_zone(h->db, load_zone, &c);
    if (rc == 0)
        rc = store_each_node(h->db, load_node, &c);
    if (rc < 0) {
        free(c.nodes);
        free(c.zones);
        return rc;
    }
    /* Removed nodes: both lists are sorted by id, so one merge walk finds
     * them (10,000 nodes reload in a few milliseconds). */
    for (size_t i = 0, k = 0; i < h->n_nodes; i++) {
        const char *id = h->nodes[i].st.id;
        while (k < c.n && strcmp(c.nodes[k].st.id, id) < 0)
            k++;
        if (k < c.n && strcmp(c.nodes[k].st.id, id) == 0)
            continue;
        log_info("node %s removed", id);
        if (h->ha)
            hubha_remove_node(h->ha, h->ingest, id);
        if (incident_remove_node(h->engine, id, now, &h->iact) == 0)
            apply_incident_actions(h, &h->iact);
        if (supervise_remove_node(h->sup, id, now, &h->sact) == 0)
            apply_supervise_actions(h, &h->sact);
    }
    /* New or changed nodes (registration is idempotent). */
    for (size_t k = 0; k < c.n; k++) {
        const struct store_node *sn = &c.nodes[k].st;
        if (sn->decommissioned_ms > 0) {
            /* Retired (firewatchctl node decommission): it leaves incidents
             * and supervision, its open troubles close, and the row stays
             * here only so that anything it still sends is recognised. */
            const struct hnode *was = find_node(h, sn->id);
            if (was && was->st.decommissioned_ms == 0) {
                log_info("node %s decommissioned", sn->id);
                if (h->ha)
                    hubha_remove_node(h->ha, h->ingest, sn->id);
                if (incident_remove_node(h->engine, sn->id, now, &h->iact) == 0)
                    apply_incident_actions(h, &h->iact);
                if (supervise_remove_node(h->sup, sn->id, now, &h->sact) == 0)
                    apply_supervise_actions(h, &h->sact);
                c.nodes[k].st.online = false;
                c.nodes[k].dirty = true;
            }
            continue;
        }
        struct supervise_node_info info = {
            .interval_s = sn->interval_s > 0 ? (uint32_t)sn->interval_s : 0,
            .commissioned = sn->commissioned_ms > 0,
            .commissioned_ms = sn->commissioned_ms,
            .last_test_ms = sn->last_test_ms,
            .last_reading_ms = sn->last_seen_ms,
        };
        rc = supervise_add_node(h->sup, sn->id, &info, now);
        if (rc < 0)
            log_warn("node %s: cannot supervise it: %s", sn->id, strerror(-rc));
    }
    free(h->nodes);
    free(h->zones);
    h->nodes = c.nodes;
    h->n_nodes = c.n;
    h->zones = c.zones;
    h->n_zones = c.nz;
    log_info("topology: %zu zones, %zu nodes (read in %lld ms)", h->n_zones, h->n_nodes,
             (long long)(clock_mono_ms() - t0));
    return 0;
}

/* ---- commissioning tests ------------------------------------------------ */

/* Answers test i's command with result and forgets it. */
static void selftest_finish(struct hub *h, size_t i, const char *result, int64_t now)
{
    const struct selftest *t = &h->tests[i];
    log_info("node %s: commissioning test (command %lld): %s", t->node, (long long)t->command, result);
    /* The node's new last_test / commissioned go in the same batch as the
     * answer: whoever reads the answer then sees them in the database. */
    struct hnode *n = find_node(h, t->node);
    if (n && n->dirty) {
        writer_node(h->writer, &n->st, n->fw);
        n->dirty = false;
    }
    writer_command_done(h->writer, t->command, result, now);
    h->tests[i] = h->tests[--h->n_tests];
}

/* Sends the selftest command a "selftest" row asks for (c->zone is the node,
 * c->incident the timeout in seconds, 0 for the default). Returns true when
 * the test is now waiting for the node; false with result filled when it was
 * refused at once. */
static bool selftest_start(struct hub *h, const struct store_command *c, char *result, size_t size)
{
    const struct hnode *n = find_node(h, c->zone);
    if (!n || n->st.decommissioned_ms > 0) {
        snprintf(result, size, "fail: %s", n ? "the node is decommissioned" : "no such node");
        return false;
    }
    if (h->n_tests == SELFTEST_MAX) {
        snprintf(result, size, "fail: %d tests are already running; try again in a minute", SELFTEST_MAX);
        return false;
    }
    struct selftest *t = &h->tests[h->n_tests];
    memset(t, 0, sizeof *t);
    t->command = c->id;
    t->timeout_s =
        c->incident > 0 && c->incident <= SELFTEST_TIMEOUT_MAX_S ? (int)c->incident : SELFTEST_TIMEOUT_S;
    snprintf(t->node, sizeof t->node, "%s", n->st.id);
    snprintf(t->cmd_id, sizeof t->cmd_id, "selftest-%lld", (long long)c->id);
    struct fw_msg m = {.channel = FW_CH_NODE_CMD};
    snprintf(m.u.cmd.id, sizeof m.u.cmd.id, "%s", t->cmd_id);
    m.u.cmd.cmd = FW_CMD_SELFTEST;
    char topic[FW_TOPIC_MAX], payload[FW_PAYLOAD_MAX + 1];
    int len = fw_msg_encode(&m, payload, sizeof payload);
    if (len < 0 || fw_topic_build(topic, sizeof topic, FW_CH_NODE_CMD, t->node) < 0 ||
        ingest_publish(h->ingest, topic, payload, (size_t)len, 1, false) < 0) {
        snprintf(result, size, "fail: the hub could not send the test command");
        return false;
    }
    t->deadline_mono = clock_mono_ms() + (int64_t)t->timeout_s * 1000;
    h->n_tests++;
    log_info("node %s: commissioning test asked by %s (command %lld), waiting up to %d s", t->node, c->who,
             (long long)c->id, t->timeout_s);
    return true;
}

/* A test event (or a failed cmd_result for our command) from node answers
 * every test waiting for it. A passed test has already set last_test and,
 * the first time, commissioned (handle_item). */
static void selftest_answer(struct hub *h, const char *node, const struct fw_event *ev, int64_t now)
{
    char result[200];
    for (size_t i = 0; i < h->n_tests;) {
        const struct selftest *t = &h->tests[i];
        bool ours =
            strcmp(t->node, node) == 0 && (ev->type == FW_EV_TEST || strcmp(ev->cmd_id, t->cmd_id) == 0);
        if (!ours) {
            i++;
            continue;
        }
        if (ev->type == FW_EV_CMD_RESULT)
            snprintf(result, sizeof result, "fail: the node could not run the test%s%s",
                     ev->detail[0] ? ": " : "", ev->detail);
        else if (ev->result == FW_RESULT_PASS)
            snprintf(result, sizeof result, "pass%s%s%s", ev->detail[0] ? " (" : "", ev->detail,
                     ev->detail[0] ? ")" : "");
        else
            snprintf(result, sizeof result, "fail: %s",
                     ev->detail[0] ? ev->detail : "the node reported a failed self-test");
        selftest_finish(h, i, result, now);
    }
}

/* Answers the tests whose node stayed silent. */
static void selftest_timeouts(struct hub *h, int64_t now, int64_t mono)
{
    for (size_t i = 0; i < h->n_tests;) {
        if (h->tests[i].deadline_mono > mono) {
            i++;
            continue;
        }
        char result[96];
        snprintf(result, sizeof result, "fail: no answer from the node within %d s", h->tests[i].timeout_s);
        selftest_finish(h, i, result, now);
    }
}

/* ---- messages ----------------------------------------------------------- */

static void count_seq(struct hub *h, struct hnode *n, uint32_t seq)
{
    if (n->last_seq >= 0 && (int64_t)seq > n->last_seq + 1) {
        int64_t gap = (int64_t)seq - n->last_seq - 1;
        n->st.seq_gaps += gap;
        h->seq_gaps += (uint64_t)gap;
    }
    if ((int64_t)seq > n->last_seq)
        n->last_seq = seq;
}

/* The node id's entry; when unknown, rereads the topology first if the
 * database changed since the last poll: a node provisioned a moment ago
 * (the poll runs once a second) must not have its first alarm ignored. */
static struct hnode *find_or_reload(struct hub *h, const char *id)
{
    struct hnode *n = find_node(h, id);
    int64_t counter = 0;
    if (n || store_change_counter(h->db, &counter) != 0 || counter == h->change_counter)
        return n;
    h->change_counter = counter;
    load_topology(h, clock_wall_ms());
    h->ha_due = h->readiness_due = true;
    fedpub_changed(h->fed);
    return find_node(h, id);
}

static void handle_item(struct hub *h, const struct ingest_item *it)
{
    if (it->channel == INGEST_CH_EXTRA) {
        /* Home Assistant's status topic, the one extra subscription. */
        if (h->ha && hubha_is_birth(h->ha, it->u.extra.payload, it->u.extra.len))
            h->ha_due = true;
        return;
    }
    struct hnode *n = find_or_reload(h, it->node);
    if (!n) {
        h->unknown_node++;
        uint64_t sup = 0;
        if (log_limit_allow(&h->limit, clock_mono_ms(), 10, 60000, &sup))
            log_warn("message from unknown node %s ignored%s", it->node,
                     sup ? " (similar lines suppressed)" : "");
        return;
    }
    if (n->st.decommissioned_ms > 0) {
        /* Its credentials were revoked, so the broker is not running with
         * firewatchctl's password file (or was not reloaded). Never acted
         * on; the time is kept for firewatchctl tech. A will is the broker
         * speaking for it, not the node. */
        h->decommissioned_msgs++;
        if (it->channel != FW_CH_NODE_STATUS || it->u.status.online) {
            n->st.last_seen_ms = it->rx_ms;
            n->dirty = true;
        }
        uint64_t sup = 0;
        if (log_limit_allow(&h->limit, clock_mono_ms(), 10, 60000, &sup))
            log_warn("message from decommissioned node %s ignored: is the broker using the password file "
                     "firewatchctl manages?%s",
                     it->node, sup ? " (similar lines suppressed)" : "");
        return;
    }
    int64_t now = it->rx_ms;
    switch (it->channel) {
    case FW_CH_NODE_STATUS: {
        const struct fw_status *st = &it->u.status;
        if (st->boot >= n->st.boot) {
            if (st->boot > n->st.boot)
                n->last_seq = -1;
            n->st.boot = st->boot;
            if (st->online) {
                n->st.online = true;
                n->st.last_seen_ms = now;
                if (st->has_birth_fields)
                    snprintf(n->fw, sizeof n->fw, "%s", st->fw);
            }
            n->dirty = true;
            if (st->online)
                web_node(h, n);
        }
        if (supervise_on_status(h->sup, n->st.id, st, now, &h->sact) == 0)
            apply_supervise_actions(h, &h->sact);
        break;
    }
    case FW_CH_NODE_READING: {
        const struct fw_reading *r = &it->u.reading;
        count_seq(h, n, r->seq);
        n->st.last_seen_ms = now;
        n->st.batt_pct = r->batt_pct;
        n->dirty = true;
        struct store_reading sr;
        memcpy(sr.node, n->st.id, sizeof sr.node);
        sr.rx_ms = now;
        sr.r = *r;
        writer_reading(h->writer, &sr);
        if (supervise_on_reading(h->sup, n->st.id, r, now, &h->sact) == 0)
            apply_supervise_actions(h, &h->sact);
        break;
    }
    case FW_CH_NODE_EVENT: {
        const struct fw_event *ev = &it->u.event;
        if (it->boot == n->st.boot)
            count_seq(h, n, ev->seq);
        struct incident_input in = {
            .node = n->st.id, .zone = n->st.zone, .type = ev->type, .cause = ev->cause};
        int rc = incident_on_event(h->engine, &in, now, &h->iact);
        if (rc == 0)
            apply_incident_actions(h, &h->iact);
        else
            log_error("incident engine refused an event from %s: %s", n->st.id, strerror(-rc));
        if (ev->type == FW_EV_TEST && ev->result == FW_RESULT_PASS) {
            n->st.last_test_ms = now;
            if (n->st.commissioned_ms == 0) {
                n->st.commissioned_ms = now;
                struct supervise_node_info info = {.interval_s = (uint32_t)n->st.interval_s,
                                                   .commissioned = true,
                                                   .commissioned_ms = now,
                                                   .last_test_ms = now,
                                                   .last_reading_ms = n->st.last_seen_ms};
                supervise_add_node(h->sup, n->st.id, &info, now);
                log_info("node %s commissioned by a passed test", n->st.id);
            }
        }
        n->st.last_seen_ms = now;
        n->dirty = true;
        if (supervise_on_event(h->sup, n->st.id, ev, now, &h->sact) == 0)
            apply_supervise_actions(h, &h->sact);
        if (ev->type == FW_EV_TEST || (ev->type == FW_EV_CMD_RESULT && ev->result == FW_RESULT_ERROR))
            selftest_answer(h, n->st.id, ev, now);
        break;
    }
    default: break;
    }
}

/* ---- commands from firewatchctl ---------------------------------------- */

/* A watch member acknowledges, clears, or starts a drill: the one handler
 * for firewatchctl's commands and the dashboard's requests. The engine's
 * actions are applied at once (and emptied, so nothing applies them twice).
 * Returns 0 or the engine's negative errno. */
static int member_action(struct hub *h, enum http_incident_op op, uint32_t id, const char *zone,
                         const char *who, int64_t now, uint32_t *new_id)
{
    int rc;
    switch (op) {
    case HTTP_INCIDENT_ACK: rc = incident_acknowledge(h->engine, id, who, now, &h->iact); break;
    case HTTP_INCIDENT_CLEAR: rc = incident_clear(h->engine, id, who, now, &h->iact); break;
    case HTTP_INCIDENT_DRILL:
        rc = incident_start_drill(h->engine, zone ? zone : "", who, now, new_id, &h->iact);
        break;
    default: rc = -EINVAL; break;
    }
    if (rc == 0)
        apply_incident_actions(h, &h->iact);
    h->iact.n = 0;
    return rc;
}

/* The dashboard's actions, posted by the HTTP threads (http_hub.h). */
static int web_action(void *ctx, enum http_incident_op op, uint32_t id, const char *zone, const char *user,
                      uint32_t *new_id)
{
    struct hub *h = ctx;
    if (h->region) {
        log_warn("dashboard: %s asked for an incident action on a regional hub, which is read-only", user);
        return -EROFS;
    }
    static const char *const names[] = {
        [HTTP_INCIDENT_ACK] = "ack", [HTTP_INCIDENT_CLEAR] = "clear", [HTTP_INCIDENT_DRILL] = "drill"};
    int rc = member_action(h, op, id, zone, user, clock_wall_ms(), new_id);
    log_info("dashboard: %s by %s (incident %u%s%s): %s", op <= HTTP_INCIDENT_DRILL ? names[op] : "?", user,
             op == HTTP_INCIDENT_DRILL && new_id ? *new_id : id, zone ? ", zone " : "", zone ? zone : "",
             rc == 0 ? "ok" : incident_strerror(rc));
    return rc;
}

static void run_commands(struct hub *h, int64_t now)
{
    struct store_command c;
    /* Each is marked done through the writer, later; until then the main
     * loop remembers the last id it handled. */
    while (store_command_next(h->db, h->last_command, &c) == 1) {
        char result[128] = "ok";
        int rc;
        if (strcmp(c.action, "ack") == 0) {
            rc = member_action(h, HTTP_INCIDENT_ACK, c.incident, NULL, c.who, now, NULL);
        } else if (strcmp(c.action, "clear") == 0) {
            rc = member_action(h, HTTP_INCIDENT_CLEAR, c.incident, NULL, c.who, now, NULL);
        } else if (strcmp(c.action, "drill") == 0) {
            uint32_t id = 0;
            rc = member_action(h, HTTP_INCIDENT_DRILL, 0, c.zone, c.who, now, &id);
            if (rc == 0)
                snprintf(result, sizeof result, "ok %u", id);
        } else if (strcmp(c.action, "resolve") == 0) {
            /* A technician resolves a tamper latch (the node is in c.zone). */
            h->iact.n = 0;
            rc = supervise_resolve(h->sup, c.zone, SUPERVISE_TAMPER, now, &h->sact);
            if (rc == 0)
                apply_supervise_actions(h, &h->sact);
            else
                snprintf(result, sizeof result, "%s",
                         rc == -EALREADY ? "no open tamper trouble on this node"
                         : rc == -ENOENT ? "no such node"
                                         : strerror(-rc));
            rc = 0;
        } else if (strcmp(c.action, "selftest") == 0) {
            /* A commissioning test: answered later, by the node's test event
             * or the timeout (selftest_answer, selftest_timeouts). */
            h->iact.n = 0;
            rc = 0;
            if (selftest_start(h, &c, result, sizeof result)) {
                h->last_command = c.id;
                continue;
            }
        } else {
            rc = -EINVAL;
            h->iact.n = 0;
        }
        if (rc == 0)
            apply_incident_actions(h, &h->iact);
        else
            snprintf(result, sizeof result, "%s", incident_strerror(rc));
        log_info("command %lld from %s: %s %u %s: %s", (long long)c.id, c.who, c.action, c.incident, c.zone,
                 result);
        writer_command_done(h->writer, c.id, result, now);
        h->last_command = c.id;
    }
}

/* ---- retained zone state ------------------------------------------------ */

/* Makes every zone's retained alarm agree with the engine (restored from the
 * database): alarm for zones sounded by an escalated fire, clear elsewhere.
 * Done once after start, since a crash may have come between a publish and
 * its write. */
static void sync_retained(struct hub *h, int64_t now)
{
    size_t n = incident_list(h->engine, NULL, 0);
    struct incident_info *list = n ? calloc(n, sizeof *list) : NULL;
    if (n && !list)
        return;
    n = incident_list(h->engine, list, n);
    for (size_t z = 0; z < h->n_zones; z++) {
        const struct incident_info *by = NULL;
        for (size_t i = 0; i < n && !by; i++) {
            if (list[i].kind != INCIDENT_FIRE ||
                (list[i].state != INCIDENT_ALARM && list[i].state != INCIDENT_ACKNOWLEDGED))
                continue;
            for (size_t k = 0; k < list[i].n_sounded; k++)
                if (strcmp(list[i].sounded[k], h->zones[z]) == 0)
                    by = &list[i];
        }
        if (by)
            publish_zone(h, h->zones[z], FW_STATE_ALARM, by->id, by->origin,
                         by->alarm_ms ? by->alarm_ms : now);
        else
            publish_zone(h, h->zones[z], FW_STATE_CLEAR, 0, NULL, now);
    }
    free(list);
}

/* ---- start-up and the loop ---------------------------------------------- */

static int restore_incident(void *ctx, const struct store_incident *s)
{
    struct hub *h = ctx;
    struct incident_info info;
    int rc = store_to_info(s, &info);
    if (rc == 0)
        rc = incident_restore(h->engine, &info);
    if (rc < 0)
        log_warn("incident %u could not be restored: %s", s->id, strerror(-rc));
    else
        log_info("incident %u restored in state %s", s->id, s->state);
    return 0;
}

static int restore_trouble(void *ctx, const char *node, const char *kind, int64_t opened, int64_t notified)
{
    struct hub *h = ctx;
    for (int t = 0; t < SUPERVISE_TROUBLE_COUNT; t++)
        if (strcmp(supervise_trouble_name((enum supervise_trouble)t), kind) == 0)
            supervise_restore_trouble(h->sup, node, (enum supervise_trouble)t, opened, notified);
    return 0;
}

static void save_nodes(struct hub *h)
{
    for (size_t i = 0; i < h->n_nodes; i++) {
        if (!h->nodes[i].dirty)
            continue;
        writer_node(h->writer, &h->nodes[i].st, h->nodes[i].fw);
        h->nodes[i].dirty = false;
    }
}

static struct notifier *make_notifier(const struct hub_config *cfg)
{
    if (!cfg->notify_command[0])
        return NULL;
    struct notify_config nc = {.command = cfg->notify_command, .timeout_ms = cfg->notify_timeout_s * 1000};
    struct notifier *n = notify_new(&nc);
    if (!n)
        log_error("cannot start the notifier: %s", strerror(errno));
    return n;
}

static void reload_config(struct hub *h)
{
    struct hub_config cfg;
    struct conf_error err;
    char msg[512];
    if (hubconf_load(h->config_path, &cfg, &err) < 0) {
        log_error("reload refused, keeping the running config: %s", conf_error_text(&err, msg, sizeof msg));
        return;
    }
    enum log_level lvl = LOGL_INFO;
    log_level_parse(cfg.log_level, &lvl);
    log_init("firewatch-hub", lvl);
    if (strcmp(cfg.broker, h->cfg.broker) || strcmp(cfg.database, h->cfg.database) ||
        strcmp(cfg.username, h->cfg.username) || strcmp(cfg.password, h->cfg.password) ||
        strcmp(cfg.client_id, h->cfg.client_id) || cfg.verify_s != h->cfg.verify_s ||
        cfg.supervision_grace_s != h->cfg.supervision_grace_s || cfg.batch_ms != h->cfg.batch_ms ||
        cfg.batch_max != h->cfg.batch_max || cfg.queue_max != h->cfg.queue_max)
        log_warn(
            "reload: broker, database, credentials, verify_s, supervision_grace_s and the queue sizes take "
            "effect at the next restart");
    if (strcmp(cfg.notify_command, h->cfg.notify_command) ||
        cfg.notify_timeout_s != h->cfg.notify_timeout_s) {
        notify_free(h->notifier);
        h->notifier = make_notifier(&cfg);
    }
    /* Keep what cannot change live. */
    memcpy(cfg.broker, h->cfg.broker, sizeof cfg.broker);
    memcpy(cfg.database, h->cfg.database, sizeof cfg.database);
    memcpy(cfg.username, h->cfg.username, sizeof cfg.username);
    memcpy(cfg.password, h->cfg.password, sizeof cfg.password);
    memcpy(cfg.client_id, h->cfg.client_id, sizeof cfg.client_id);
    cfg.verify_s = h->cfg.verify_s;
    cfg.supervision_grace_s = h->cfg.supervision_grace_s;
    cfg.batch_ms = h->cfg.batch_ms;
    cfg.batch_max = h->cfg.batch_max;
    cfg.queue_max = h->cfg.queue_max;
    /* The HTTP server, CAP and Home Assistant settings are read at start. */
    if (strcmp(cfg.http_listen, h->cfg.http_listen) || strcmp(cfg.http_web_root, h->cfg.http_web_root) ||
        strcmp(cfg.http_lang, h->cfg.http_lang) || cfg.http_secure_cookie != h->cfg.http_secure_cookie ||
        strcmp(cfg.hub_id, h->cfg.hub_id) || strcmp(cfg.public_url, h->cfg.public_url) ||
        strcmp(cfg.cap_sender, h->cfg.cap_sender) || strcmp(cfg.cap_sender_name, h->cfg.cap_sender_name) ||
        cfg.ha_discovery != h->cfg.ha_discovery || strcmp(cfg.ha_prefix, h->cfg.ha_prefix) ||
        strcmp(cfg.mode, h->cfg.mode) || cfg.federation != h->cfg.federation ||
        strcmp(cfg.fed_name, h->cfg.fed_name))
        log_warn("reload: the http_*, CAP, Home Assistant and federation options take effect at the next "
                 "restart");
    memcpy(cfg.http_listen, h->cfg.http_listen, sizeof cfg.http_listen);
    memcpy(cfg.http_web_root, h->cfg.http_web_root, sizeof cfg.http_web_root);
    memcpy(cfg.http_lang, h->cfg.http_lang, sizeof cfg.http_lang);
    cfg.http_secure_cookie = h->cfg.http_secure_cookie;
    memcpy(cfg.hub_id, h->cfg.hub_id, sizeof cfg.hub_id);
    memcpy(cfg.public_url, h->cfg.public_url, sizeof cfg.public_url);
    memcpy(cfg.cap_sender, h->cfg.cap_sender, sizeof cfg.cap_sender);
    memcpy(cfg.cap_sender_name, h->cfg.cap_sender_name, sizeof cfg.cap_sender_name);
    cfg.ha_discovery = h->cfg.ha_discovery;
    memcpy(cfg.ha_prefix, h->cfg.ha_prefix, sizeof cfg.ha_prefix);
    memcpy(cfg.mode, h->cfg.mode, sizeof cfg.mode);
    cfg.federation = h->cfg.federation;
    memcpy(cfg.fed_name, h->cfg.fed_name, sizeof cfg.fed_name);
    h->cfg = cfg;
    log_info("configuration reloaded from %s", h->config_path);
}

/* One line with every counter, for the journal (hourly and at exit). */
static void log_counters(struct hub *h)
{
    struct ingest_stats is;
    struct writer_stats ws;
    ingest_get_stats(h->ingest, &is);
    writer_get_stats(h->writer, &ws);
    log_info("counters: received %llu, malformed %llu, unknown node %llu (+%llu readings), duplicates %llu, "
             "events stored %llu, event write errors %llu, readings stored %llu, readings dropped %llu, "
             "sequence gaps %llu, connects %llu, write errors %llu, events spilled %llu, events held %llu, "
             "writes held %llu, writes dropped %llu, storage %s",
             (unsigned long long)is.received, (unsigned long long)is.malformed,
             (unsigned long long)is.unknown_node, (unsigned long long)h->unknown_node,
             (unsigned long long)is.duplicates, (unsigned long long)is.events_stored,
             (unsigned long long)is.event_errors, (unsigned long long)ws.readings,
             (unsigned long long)(is.readings_dropped + ws.readings_dropped), (unsigned long long)h->seq_gaps,
             (unsigned long long)is.connects, (unsigned long long)ws.errors,
             (unsigned long long)is.events_spilled, (unsigned long long)is.events_held,
             (unsigned long long)ws.ops_held, (unsigned long long)ws.ops_dropped,
             is.storage_trouble || ws.storage_trouble ? "trouble" : "ok");
}

/* ---- the HTTP face and Home Assistant: housekeeping --------------------- */

#define WEB_RETRY_MS 10000 /* a port that was taken is tried again this often */

/* The daemon's numbers for /metrics. */
static void web_metrics(struct hub *h)
{
    struct http_hub_metrics m;
    memset(&m, 0, sizeof m);
    ingest_get_stats(h->ingest, &m.ingest);
    writer_get_stats(h->writer, &m.writer);
    m.unknown_node = h->unknown_node;
    m.seq_gaps = h->seq_gaps;
    m.last_incident_id = incident_last_id(h->engine);
    m.zones = h->n_zones;
    for (int s = 0; s < INCIDENT_STATE_COUNT; s++)
        m.incidents_closed[s] = h->closed[s];
    size_t n = incident_list(h->engine, NULL, 0);
    struct incident_info *list = n ? calloc(n, sizeof *list) : NULL;
    n = list ? incident_list(h->engine, list, n) : 0;
    for (size_t i = 0; i < n; i++)
        if ((int)list[i].state < INCIDENT_STATE_COUNT)
            m.incidents_open[list[i].state]++;
    free(list);
    struct supervise_node_state *st = h->n_nodes ? calloc(h->n_nodes, sizeof *st) : NULL;
    size_t k = st ? supervise_list(h->sup, st, h->n_nodes) : 0;
    if (k > h->n_nodes)
        k = h->n_nodes;
    m.n_trouble_kinds = SUPERVISE_TROUBLE_COUNT < 8 ? SUPERVISE_TROUBLE_COUNT : 8;
    for (size_t t = 0; t < m.n_trouble_kinds; t++)
        m.trouble_names[t] = supervise_trouble_name((enum supervise_trouble)t);
    for (size_t i = 0; i < k; i++) {
        unsigned other = st[i].troubles & ~(1u << SUPERVISE_OFFLINE);
        if (!st[i].commissioned)
            m.nodes_uncommissioned++;
        else if (!st[i].online)
            m.nodes_offline++;
        else if (other)
            m.nodes_trouble++;
        else
            m.nodes_ok++;
        for (size_t t = 0; t < m.n_trouble_kinds; t++)
            if (st[i].troubles & (1u << t))
                m.troubles_open[t]++;
    }
    free(st);
    http_hub_set_metrics(h->web, &m);
}

/* Once a second from the loop: (re)start HTTP when it could not start,
 * refresh the metrics, publish readiness changes and Home Assistant's
 * configs when due. */
static void web_tick(struct hub *h, int64_t mono)
{
    if (!h->web && h->cfg.http_listen[0] && mono >= h->web_retry_mono) {
        h->web = http_hub_start(&h->cfg);
        if (!h->web) {
            log_error("the dashboard and API are not served (http_listen %s: %s); trying again every %d s",
                      h->cfg.http_listen, strerror(errno ? errno : EIO), WEB_RETRY_MS / 1000);
            h->web_retry_mono = mono + WEB_RETRY_MS;
        }
    }
    if (h->web) {
        web_metrics(h);
        if (h->readiness_due) {
            h->readiness_due = false;
            http_hub_readiness_changed(h->web);
        }
    }
    if (h->ha && h->ha_due && ingest_connects(h->ingest) > 0) {
        h->ha_due = false;
        hubha_publish_all(h->ha, h->db, h->ingest);
    }
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static int run(struct hub *h)
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) {
        log_error("signalfd: %s", strerror(errno));
        return 1;
    }
    if (ingest_start(h->ingest) < 0)
        log_warn("the broker is not reachable yet; retrying in the background");
    sdnotify_send("READY=1");
    log_info("firewatch-hub %s running%s (database %s, broker %s)", FIREWATCH_VERSION,
             h->region ? " as a regional hub" : "", h->cfg.database, h->cfg.broker);

    int64_t wd_ms = sdnotify_watchdog_ms();
    int64_t mono = clock_mono_ms();
    int64_t next_watchdog = wd_ms ? mono : INT64_MAX;
    int64_t next_poll = mono + TOPOLOGY_POLL_MS, next_save = mono + NODE_SAVE_MS, next_sweep = mono;
    int64_t next_retention = mono + 60000;
    bool stop = false;

    while (!stop) {
        int64_t now = clock_wall_ms();
        mono = clock_mono_ms();
        /* poll() timeout: the nearest of the engine's deadline (wall clock)
         * and the housekeeping timers (monotonic). */
        int64_t inc = incident_next_deadline(h->engine);
        int64_t wait = min64(next_poll, min64(next_save, min64(next_sweep, next_watchdog))) - mono;
        if (inc != INCIDENT_NO_DEADLINE)
            wait = min64(wait, inc - now);
        if (wait < 0)
            wait = 0;
        if (wait > 1000)
            wait = 1000;
        struct pollfd pfd[3] = {{.fd = ingest_fd(h->ingest), .events = POLLIN},
                                {.fd = sfd, .events = POLLIN},
                                {.fd = http_hub_fd(h->web), .events = POLLIN}};
        int pr = poll(pfd, 3, (int)wait);
        if (pr < 0 && errno != EINTR) {
            log_error("poll: %s", strerror(errno));
            break;
        }
        if (pfd[1].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
                if (si.ssi_signo == SIGHUP) {
                    reload_config(h);
                } else {
                    log_info("signal %u: shutting down", si.ssi_signo);
                    stop = true;
                }
            }
        }
        /* Messages first: an alarm is decided the moment it is dequeued. */
        size_t n;
        while ((n = ingest_drain(h->ingest, h->items, DRAIN_MAX)) > 0) {
            for (size_t i = 0; i < n; i++)
                handle_item(h, &h->items[i]);
            /* After the engine's writes: what a kill -9 would replay (writer.h). */
            writer_engine_mark(h->writer, h->items, n);
        }
        now = clock_wall_ms();
        mono = clock_mono_ms();
        incident_timers(h, now);
        if (h->n_tests)
            selftest_timeouts(h, now, mono);
        /* The dashboard's actions, after the messages that came with them. */
        if (pfd[2].revents & POLLIN)
            http_hub_serve(h->web, web_action, h);

        if (ingest_connects(h->ingest) != h->seen_connects) {
            h->seen_connects = ingest_connects(h->ingest);
            h->ha_due = true;
            fedpub_connected(h->fed);
            if (!h->retained_synced) {
                sync_retained(h, now);
                h->retained_synced = true;
            }
        }
        if (mono >= next_sweep) {
            supervise_tick(h->sup, now, &h->sact);
            apply_supervise_actions(h, &h->sact);
            next_sweep = mono + 1000;
        }
        if (mono >= next_poll) {
            int64_t counter = 0;
            if (store_change_counter(h->db, &counter) == 0 && counter != h->change_counter) {
                h->change_counter = counter;
                load_topology(h, now);
                h->ha_due = h->readiness_due = true;
                fedpub_changed(h->fed);
            }
            run_commands(h, now);
            ingest_tick(h->ingest, mono);
            web_tick(h, mono);
            next_poll = mono + TOPOLOGY_POLL_MS;
        }
        if (mono >= next_save) {
            save_nodes(h);
            next_save = mono + NODE_SAVE_MS;
        }
        if (mono >= next_retention) {
            writer_retention(h->writer, now, h->cfg.retention_days);
            writer_readiness(h->writer, now);
            log_counters(h);
            next_retention = mono + RETENTION_MS;
        }
        if (mono >= next_watchdog) {
            sdnotify_send("WATCHDOG=1");
            next_watchdog = mono + wd_ms / 2;
        }
    }
    sdnotify_send("STOPPING=1");
    /* Answer what the dashboard asked meanwhile, then stop serving it
     * (http_hub_stop waits for requests in flight). */
    http_hub_serve(h->web, web_action, h);
    http_hub_stop(h->web);
    h->web = NULL;
    fedpub_stop(h->fed);
    h->fed = NULL;
    ingest_stop(h->ingest, 2000);
    /* Whatever arrived meanwhile still gets stored. */
    size_t n;
    while ((n = ingest_drain(h->ingest, h->items, DRAIN_MAX)) > 0)
        for (size_t i = 0; i < n; i++)
            handle_item(h, &h->items[i]);
    while (h->n_tests)
        selftest_finish(h, 0, "fail: the hub stopped before the node answered", clock_wall_ms());
    save_nodes(h);
    writer_flush(h->writer);
    log_counters(h);
    close(sfd);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: firewatch-hub [--config FILE] [--check-config] [--help] [--version]\n"
               "\n"
               "The Firewatch hub daemon: MQTT ingest, storage, supervision and incidents.\n"
               "  -c, --config FILE   config file (default " HUBCONF_DEFAULT_PATH ")\n"
               "      --check-config  check the config file and the database, then exit\n"
               "  -h, --help          this help\n"
               "  -V, --version       print the version\n\n");
    if (f == stdout)
        hubconf_print_help();
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
                                             {"check-config", no_argument, NULL, 'k'},
                                             {"help", no_argument, NULL, 'h'},
                                             {"version", no_argument, NULL, 'V'},
                                             {NULL, 0, NULL, 0}};
    struct hub h;
    memset(&h, 0, sizeof h);
    h.config_path = HUBCONF_DEFAULT_PATH;
    bool check_only = false;
    int c;
    while ((c = getopt_long(argc, argv, "c:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': h.config_path = optarg; break;
        case 'k': check_only = true; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("firewatch-hub %s\n", FIREWATCH_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "firewatch-hub: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    struct conf_error err;
    char msg[600];
    if (hubconf_load(h.config_path, &h.cfg, &err) < 0) {
        fprintf(stderr, "firewatch-hub: %s\n", conf_error_text(&err, msg, sizeof msg));
        return 1;
    }
    enum log_level lvl = LOGL_INFO;
    log_level_parse(h.cfg.log_level, &lvl);
    log_init("firewatch-hub", lvl);

    /* Block the signals before any thread starts, so only signalfd sees them. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);

    h.db = store_open(h.cfg.database,
                      STORE_CREATE | STORE_QUICK_CHECK | (h.cfg.db_sync_full ? STORE_SYNC_FULL : 0), msg,
                      sizeof msg);
    if (!h.db) {
        fprintf(stderr, "firewatch-hub: %s\n", msg);
        return 1;
    }
    if (check_only) {
        printf("%s: configuration OK; database %s OK\n", h.config_path, h.cfg.database);
        store_close(h.db);
        return 0;
    }

    int rc = 1;
    uint32_t last_id = 0;
    store_incident_max_id(h.db, &last_id);
    struct incident_config icfg = {.window_ms = (int64_t)h.cfg.verify_s * 1000, .last_id = last_id};
    struct supervise_config scfg = {.grace_ms = (int64_t)h.cfg.supervision_grace_s * 1000};
    if (scfg.grace_ms == 0)
        scfg.grace_ms = 1; /* 0 would mean the default */
    h.engine = incident_engine_new(&icfg);
    h.sup = supervise_new(&scfg);
    if (!h.engine || !h.sup) {
        fprintf(stderr, "firewatch-hub: cannot start the decision modules: %s\n", strerror(errno));
        goto out;
    }
    h.writer = writer_new(h.cfg.database, h.cfg.db_sync_full, h.cfg.batch_ms, (size_t)h.cfg.batch_max, msg,
                          sizeof msg);
    if (!h.writer) {
        fprintf(stderr, "firewatch-hub: %s\n", msg);
        goto out;
    }
    if (h.cfg.ha_discovery) {
        h.ha = hubha_new(h.cfg.ha_prefix, FIREWATCH_VERSION, h.cfg.public_url[0] ? h.cfg.public_url : NULL);
        if (!h.ha) {
            fprintf(stderr, "firewatch-hub: ha_prefix %s: %s\n", h.cfg.ha_prefix, strerror(errno));
            goto out;
        }
    }
    bool regional = strcmp(h.cfg.mode, "regional") == 0;
    if (regional) {
        /* A read-only view of many areas: no nodes, no Home Assistant; the
         * receiver writes what the areas send (region.h). */
        h.region = region_new(h.cfg.database, msg, sizeof msg);
        if (!h.region) {
            fprintf(stderr, "firewatch-hub: %s\n", msg);
            goto out;
        }
        hubha_free(h.ha);
        h.ha = NULL;
    }
    struct ingest_config ic = {.url = h.cfg.broker,
                               .client_id = h.cfg.client_id,
                               .username = h.cfg.username,
                               .password = h.cfg.password,
                               .cafile = h.cfg.cafile,
                               .keepalive_s = h.cfg.keepalive_s,
                               .session_expiry_s = h.cfg.session_expiry_s,
                               .queue_max = (size_t)h.cfg.queue_max,
                               .database = h.cfg.database,
                               .sync_full = h.cfg.db_sync_full,
                               .extra_topic = h.ha ? hubha_birth_topic(h.ha) : NULL,
                               .raw_filter = regional ? FED_ROOT "/+/#" : NULL,
                               .raw_fn = regional ? region_on_message : NULL,
                               .raw_ctx = h.region};
    h.ingest = ingest_new(&ic, msg, sizeof msg);
    if (!h.ingest) {
        fprintf(stderr, "firewatch-hub: %s\n", msg);
        goto out;
    }
    h.notifier = make_notifier(&h.cfg);
    if (h.cfg.federation) {
        struct fedpub_config fc = {
            .database = h.cfg.database,
            .area = h.cfg.hub_id,
            .name = h.cfg.fed_name[0] ? h.cfg.fed_name : h.cfg.cap_sender_name,
            .public_url = h.cfg.public_url,
            .version = FIREWATCH_VERSION,
            .cap = {.hub_id = h.cfg.hub_id, .sender = h.cfg.cap_sender, .sender_name = h.cfg.cap_sender_name},
            .settle_ms = h.cfg.batch_ms + 250,
        };
        h.fed = fedpub_start(&fc, h.ingest);
        if (!h.fed) {
            fprintf(stderr, "firewatch-hub: cannot start the federation publisher: %s\n", strerror(errno));
            goto out;
        }
    }
    int64_t now = clock_wall_ms();
    store_change_counter(h.db, &h.change_counter);
    if (load_topology(&h, now) < 0) {
        fprintf(stderr, "firewatch-hub: cannot read the topology from %s\n", h.cfg.database);
        goto out;
    }
    store_each_open_incident(h.db, restore_incident, &h);
    store_each_open_trouble(h.db, restore_trouble, &h);
    run_commands(&h, now);
    /* The dashboard: its failure (a port in use) never stops the alarms;
     * the loop tries again (web_tick). */
    web_tick(&h, clock_mono_ms());
    rc = run(&h);
out:
    http_hub_stop(h.web);
    fedpub_stop(h.fed);
    hubha_free(h.ha);
    ingest_free(h.ingest);
    region_free(h.region);
    writer_free(h.writer);
    notify_free(h.notifier);
    incident_engine_free(h.engine);
    supervise_free(h.sup);
    free(h.nodes);
    free(h.zones);
    store_close(h.db);
    if (rc == 0)
        log_info("stopped");
    return rc;
}
