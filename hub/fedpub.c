/*
 * fedpub.c - see fedpub.h. One thread, one read connection, a table of
 * what was last published per open incident, and the signatures of the
 * last readiness and hub documents.
 */
#include "fedpub.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "capdb.h"
#include "clock.h"
#include "fed.h"
#include "log.h"
#include "readyscan.h"
#include "store.h"

#define SIG_MAX 96
#define READY_SIG_MAX 8192
#define REASONS_SENT 3 /* reasons per zone in the readiness document */

struct sent {
    uint32_t id;
    char sig[SIG_MAX]; /* state and times of the last document sent */
};

struct fedpub {
    char database[256], area[FW_ID_MAX + 1], name[FED_NAME_MAX + 1], public_url[256], version[32];
    char cap_sender[CAP_SENDER_MAX + 1], cap_sender_name[128];
    struct cap_hub cap;
    int settle_ms;
    struct ingest *in;

    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop, force;
    int64_t due_at; /* monotonic ms; 0: nothing due */

    /* thread only */
    struct store *db;
    struct capdb_stmts st;
    struct sent sent[FED_OPEN_MAX];
    size_t n_sent;
    char ready_sig[READY_SIG_MAX];
    char hub_sig[SIG_MAX * 4];

    atomic_uint_fast64_t published, scans, errors;
};

static void publish(struct fedpub *p, enum fed_kind kind, uint32_t id, const char *payload, size_t len,
                    bool retain)
{
    char topic[FED_TOPIC_MAX];
    if (fed_topic(topic, sizeof topic, p->area, kind, id) < 0) {
        atomic_fetch_add(&p->errors, 1);
        return;
    }
    if (ingest_publish(p->in, topic, payload, len, 1, retain) == 0)
        atomic_fetch_add(&p->published, 1);
    else
        atomic_fetch_add(&p->errors, 1);
}

/* ---- incidents ------------------------------------------------------------ */

static void to_fed(const struct capdb_row *r, struct fed_incident *f)
{
    memset(f, 0, sizeof *f);
    const struct cap_incident *c = &r->inc;
    f->id = c->id;
    snprintf(f->zone, sizeof f->zone, "%s", r->zone);
    snprintf(f->zone_name, sizeof f->zone_name, "%s", r->zone_name);
    snprintf(f->site_name, sizeof f->site_name, "%s", r->site_name);
    snprintf(f->state, sizeof f->state, "%s", capdb_state_name(c->state));
    snprintf(f->kind, sizeof f->kind, "%s", c->kind == INCIDENT_DRILL ? "drill" : "fire");
    snprintf(f->origin, sizeof f->origin, "%s", r->origin);
    const char *cause = c->cause != FW_CAUSE_NONE ? fw_cause_name(c->cause) : NULL;
    snprintf(f->cause, sizeof f->cause, "%s", cause ? cause : "");
    snprintf(f->ack_by, sizeof f->ack_by, "%s", r->ack_by);
    f->opened_ms = c->opened_ms;
    f->alarm_ms = c->alarm_ms;
    f->ack_ms = c->ack_ms;
    f->closed_ms = c->closed_ms;
}

/* Sends incident id's document and CAP alert: retained while open; once
 * closed, sent plain and the retained copies cleared. Fills sig. Returns 0,
 * -ENOENT (no such row yet) or another negative errno. */
static int send_incident(struct fedpub *p, uint32_t id, bool force, const char *old_sig, char *sig)
{
    struct capdb_row r;
    int rc = capdb_load(&p->st, id, &r);
    if (rc < 0) {
        capdb_row_free(&r);
        return rc;
    }
    struct fed_incident f;
    to_fed(&r, &f);
    snprintf(sig, SIG_MAX, "%s/%lld/%lld/%lld", f.state, (long long)f.alarm_ms, (long long)f.ack_ms,
             (long long)f.closed_ms);
    if (!force && old_sig && strcmp(old_sig, sig) == 0) {
        capdb_row_free(&r);
        return 0;
    }
    bool closed = fed_state_closed(f.state);
    size_t len = 0;
    char *doc = fed_incident_encode(p->area, &f, clock_wall_ms(), &len);
    size_t xlen = 0;
    char *xml = cap_alert_new(&p->cap, &r.inc, &xlen);
    capdb_row_free(&r);
    if (doc)
        publish(p, FED_INCIDENT, id, doc, len, !closed);
    else
        atomic_fetch_add(&p->errors, 1);
    if (xml && xlen <= FED_PAYLOAD_MAX) {
        publish(p, FED_CAP, id, xml, xlen, !closed);
    } else {
        atomic_fetch_add(&p->errors, 1);
        log_warn("federation: incident %u's CAP alert is not forwarded (%s)", id,
                 xml ? "larger than a federation message may be" : "it cannot be written");
    }
    if (closed) {
        publish(p, FED_INCIDENT, id, "", 0, true);
        publish(p, FED_CAP, id, "", 0, true);
    }
    free(doc);
    free(xml);
    return 0;
}

/* Open incident ids, ascending; returns how many (<= max) or -EIO. */
static int open_ids(struct fedpub *p, uint32_t *ids, size_t max)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(store_handle(p->db),
                           "SELECT id FROM incidents WHERE state NOT IN ('cleared', 'dismissed') ORDER BY id "
                           "DESC LIMIT ?1",
                           -1, &q, NULL) != SQLITE_OK)
        return -EIO;
    sqlite3_bind_int64(q, 1, (sqlite3_int64)max);
    size_t n = 0;
    int rc;
    while (n < max && (rc = sqlite3_step(q)) == SQLITE_ROW)
        ids[n++] = (uint32_t)sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    /* newest first from SQL (so the newest fit); ascending for the reader */
    for (size_t i = 0; i < n / 2; i++) {
        uint32_t t = ids[i];
        ids[i] = ids[n - 1 - i];
        ids[n - 1 - i] = t;
    }
    return (int)n;
}

static void scan_incidents(struct fedpub *p, bool force, uint32_t *open, size_t *n_open)
{
    int n = open_ids(p, open, FED_OPEN_MAX);
    if (n < 0) {
        atomic_fetch_add(&p->errors, 1);
        *n_open = 0;
        return;
    }
    *n_open = (size_t)n;
    struct sent next[FED_OPEN_MAX];
    size_t n_next = 0;
    /* Open ones: new, or changed since sent. */
    for (int i = 0; i < n; i++) {
        const struct sent *was = NULL;
        for (size_t k = 0; k < p->n_sent && !was; k++)
            if (p->sent[k].id == open[i])
                was = &p->sent[k];
        struct sent *s = &next[n_next];
        s->id = open[i];
        if (send_incident(p, open[i], force, was ? was->sig : NULL, s->sig) == 0)
            n_next++;
        else if (was)
            next[n_next++] = *was;
    }
    /* Sent as open before and no longer open: their closing documents. */
    for (size_t k = 0; k < p->n_sent; k++) {
        bool still = false;
        for (int i = 0; i < n && !still; i++)
            still = open[i] == p->sent[k].id;
        if (still)
            continue;
        char sig[SIG_MAX];
        if (send_incident(p, p->sent[k].id, false, p->sent[k].sig, sig) < 0)
            atomic_fetch_add(&p->errors, 1);
    }
    memcpy(p->sent, next, n_next * sizeof *next);
    p->n_sent = n_next;
}

/* ---- readiness and the hub document ---------------------------------------- */

static cJSON *readiness_doc(struct fedpub *p, int64_t now, char *sig, size_t sig_size, int *score)
{
    struct readyscan_zone *z = NULL;
    int n = readyscan_zones(p->db, NULL, now, &z);
    if (n < 0)
        return NULL;
    struct readiness_result *rs = n ? calloc((size_t)n, sizeof *rs) : NULL;
    struct readiness_site_result site = {0};
    for (int i = 0; rs && i < n; i++)
        rs[i] = z[i].r;
    readiness_site(rs, (size_t)n, &site);
    free(rs);
    *score = (int)site.score;

    cJSON *d = cJSON_CreateObject();
    cJSON_AddNumberToObject(d, "v", FED_VERSION);
    cJSON_AddStringToObject(d, "hub", p->area);
    cJSON_AddNumberToObject(d, "ts", (double)now);
    cJSON_AddNumberToObject(d, "score", site.score);
    cJSON_AddStringToObject(d, "level", readiness_level_name(site.level));
    cJSON_AddNumberToObject(d, "households", site.households);
    cJSON *zones = cJSON_AddArrayToObject(d, "zones");
    size_t used = (size_t)snprintf(sig, sig_size, "%u", site.score);
    for (int i = 0; i < n; i++) {
        const struct readiness_result *r = &z[i].r;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", z[i].id);
        cJSON_AddStringToObject(o, "site", z[i].site);
        cJSON_AddNumberToObject(o, "score", r->score);
        cJSON_AddStringToObject(o, "level", readiness_level_name(r->level));
        cJSON_AddNumberToObject(o, "households", r->households);
        cJSON_AddNumberToObject(o, "covered", r->covered);
        cJSON_AddNumberToObject(o, "nodes", r->nodes);
        cJSON_AddNumberToObject(o, "healthy", r->healthy);
        cJSON_AddNumberToObject(o, "offline", r->offline);
        cJSON *reasons = cJSON_AddArrayToObject(o, "reasons");
        for (size_t k = 0; k < r->n_reasons && k < REASONS_SENT; k++)
            cJSON_AddItemToArray(reasons, cJSON_CreateString(r->reasons[k]));
        cJSON_AddItemToArray(zones, o);
        if (used < sig_size) {
            int w = snprintf(sig + used, sig_size - used, ",%s:%u:%u:%u:%u", z[i].id, r->score, r->healthy,
                             r->offline, r->households);
            used += w > 0 ? (size_t)w : 0;
        }
    }
    free(z);
    return d;
}

/* Serialises d within the size limit: reasons go first, then whole zones
 * from the end (the document then says how many zones there are). */
static char *fit_doc(cJSON *d, size_t *len)
{
    cJSON *zones = cJSON_GetObjectItemCaseSensitive(d, "zones");
    int total = cJSON_GetArraySize(zones);
    for (int pass = 0;; pass++) {
        char *s = cJSON_PrintUnformatted(d);
        if (!s)
            return NULL;
        *len = strlen(s);
        if (*len <= FED_PAYLOAD_MAX || !zones || cJSON_GetArraySize(zones) == 0)
            return s;
        free(s);
        if (pass == 0) {
            for (cJSON *z = zones->child; z; z = z->next)
                cJSON_DeleteItemFromObjectCaseSensitive(z, "reasons");
        } else {
            cJSON_DeleteItemFromArray(zones, cJSON_GetArraySize(zones) - 1);
            cJSON_DeleteItemFromObjectCaseSensitive(d, "zones_total");
            cJSON_AddNumberToObject(d, "zones_total", total);
        }
    }
}

static void count(struct fedpub *p, int64_t out[3])
{
    sqlite3_stmt *q = NULL;
    out[0] = out[1] = out[2] = 0;
    if (sqlite3_prepare_v2(store_handle(p->db),
                           "SELECT (SELECT count(*) FROM zones), (SELECT count(*) FROM households), (SELECT "
                           "count(*) FROM nodes WHERE decommissioned_ms = 0)",
                           -1, &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW)
        for (int i = 0; i < 3; i++)
            out[i] = sqlite3_column_int64(q, i);
    sqlite3_finalize(q);
}

static void scan(struct fedpub *p, bool force, bool heartbeat)
{
    atomic_fetch_add(&p->scans, 1);
    int64_t now = clock_wall_ms();
    /* One read transaction: the incidents, readiness and counts agree. */
    sqlite3_exec(store_handle(p->db), "BEGIN", NULL, NULL, NULL);
    uint32_t open[FED_OPEN_MAX];
    size_t n_open = 0;
    scan_incidents(p, force, open, &n_open);

    char sig[READY_SIG_MAX];
    int score = 0;
    cJSON *rd = readiness_doc(p, now, sig, sizeof sig, &score);
    if (rd && (force || heartbeat || strcmp(sig, p->ready_sig) != 0)) {
        size_t len = 0;
        char *s = fit_doc(rd, &len);
        if (s) {
            publish(p, FED_READINESS, 0, s, len, true);
            snprintf(p->ready_sig, sizeof p->ready_sig, "%s", sig);
        }
        free(s);
    } else if (!rd) {
        atomic_fetch_add(&p->errors, 1);
    }
    cJSON_Delete(rd);

    int64_t c[3];
    count(p, c);
    sqlite3_exec(store_handle(p->db), "COMMIT", NULL, NULL, NULL);
    char hsig[sizeof p->hub_sig];
    size_t used = (size_t)snprintf(hsig, sizeof hsig, "%lld/%lld/%lld/%d:", (long long)c[0], (long long)c[1],
                                   (long long)c[2], score);
    for (size_t i = 0; i < n_open && used < sizeof hsig; i++) {
        int w = snprintf(hsig + used, sizeof hsig - used, "%u,", open[i]);
        used += w > 0 ? (size_t)w : 0;
    }
    if (!force && !heartbeat && strcmp(hsig, p->hub_sig) == 0)
        return;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddNumberToObject(d, "v", FED_VERSION);
    cJSON_AddStringToObject(d, "hub", p->area);
    cJSON_AddNumberToObject(d, "ts", (double)now);
    cJSON_AddStringToObject(d, "name", p->name);
    cJSON_AddStringToObject(d, "public_url", p->public_url);
    cJSON_AddStringToObject(d, "version", p->version);
    cJSON *o = cJSON_AddArrayToObject(d, "open");
    for (size_t i = 0; i < n_open; i++)
        cJSON_AddItemToArray(o, cJSON_CreateNumber(open[i]));
    cJSON_AddNumberToObject(d, "zones", (double)c[0]);
    cJSON_AddNumberToObject(d, "households", (double)c[1]);
    cJSON_AddNumberToObject(d, "nodes", (double)c[2]);
    cJSON_AddNumberToObject(d, "score", score);
    cJSON_AddNumberToObject(d, "heartbeat_s", FEDPUB_HEARTBEAT_MS / 1000);
    char *s = cJSON_PrintUnformatted(d);
    cJSON_Delete(d);
    if (s) {
        publish(p, FED_HUB, 0, s, strlen(s), true);
        snprintf(p->hub_sig, sizeof p->hub_sig, "%s", hsig);
    }
    free(s);
}

/* ---- the thread ---------------------------------------------------------- */

static void until(struct timespec *ts, int64_t mono_deadline)
{
    int64_t ms = mono_deadline;
    ts->tv_sec = (time_t)(ms / 1000);
    ts->tv_nsec = (long)(ms % 1000) * 1000000;
}

static void *run(void *arg)
{
    struct fedpub *p = arg;
    int64_t heartbeat_at = clock_mono_ms() + FEDPUB_HEARTBEAT_MS, recheck_at = 0, last_scan = 0;
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        int64_t now = clock_mono_ms();
        int64_t next = heartbeat_at;
        if (p->due_at && p->due_at < next)
            next = p->due_at;
        if (recheck_at && recheck_at < next)
            next = recheck_at;
        /* A busy hub (10,000 nodes coming and going) changes all the time:
         * scoring every zone is not done more than once a second. */
        if (last_scan && next < last_scan + FEDPUB_MIN_GAP_MS)
            next = last_scan + FEDPUB_MIN_GAP_MS;
        if (now < next) {
            struct timespec ts;
            until(&ts, next);
            pthread_cond_timedwait(&p->cv, &p->mu, &ts);
            continue;
        }
        bool force = p->force;
        p->force = false;
        if (p->due_at && p->due_at <= now) {
            p->due_at = 0;
            recheck_at = now + FEDPUB_RECHECK_MS;
        } else if (recheck_at && recheck_at <= now) {
            recheck_at = 0;
        }
        bool heartbeat = now >= heartbeat_at;
        if (heartbeat)
            heartbeat_at = now + FEDPUB_HEARTBEAT_MS;
        pthread_mutex_unlock(&p->mu);
        scan(p, force, heartbeat);
        last_scan = clock_mono_ms();
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

struct fedpub *fedpub_start(const struct fedpub_config *cfg, struct ingest *in)
{
    if (!cfg || !in || !cfg->area || !fw_id_valid(cfg->area)) {
        errno = EINVAL;
        return NULL;
    }
    struct fedpub *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    snprintf(p->database, sizeof p->database, "%s", cfg->database);
    snprintf(p->area, sizeof p->area, "%s", cfg->area);
    snprintf(p->name, sizeof p->name, "%s", cfg->name && *cfg->name ? cfg->name : cfg->area);
    snprintf(p->public_url, sizeof p->public_url, "%s", cfg->public_url ? cfg->public_url : "");
    snprintf(p->version, sizeof p->version, "%s", cfg->version ? cfg->version : "");
    snprintf(p->cap_sender, sizeof p->cap_sender, "%s", cfg->cap.sender ? cfg->cap.sender : "");
    snprintf(p->cap_sender_name, sizeof p->cap_sender_name, "%s",
             cfg->cap.sender_name ? cfg->cap.sender_name : "");
    p->cap = cfg->cap;
    p->cap.hub_id = p->area;
    p->cap.sender = p->cap_sender[0] ? p->cap_sender : NULL;
    p->cap.sender_name = p->cap_sender_name[0] ? p->cap_sender_name : NULL;
    p->cap.web_base = p->public_url[0] ? p->public_url : NULL;
    p->settle_ms = cfg->settle_ms > 0 ? cfg->settle_ms : 500;
    p->in = in;
    char why[256];
    p->db = store_open(p->database, STORE_NO_CHECKPOINT, why, sizeof why);
    if (!p->db) {
        log_error("federation: %s", why);
        free(p);
        errno = EIO;
        return NULL;
    }
    if (capdb_prepare(store_handle(p->db), &p->st) < 0) {
        log_error("federation: cannot prepare the CAP queries");
        store_close(p->db);
        free(p);
        errno = EIO;
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    p->force = true;
    p->due_at = clock_mono_ms() + p->settle_ms;
    int rc = pthread_create(&p->thread, NULL, run, p);
    if (rc != 0) {
        capdb_finalize(&p->st);
        store_close(p->db);
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
        free(p);
        errno = rc;
        return NULL;
    }
    log_info("federation: publishing this hub's summaries as area %s under " FED_ROOT "/%s/", p->area,
             p->area);
    return p;
}

static void wake(struct fedpub *p, bool force)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    if (force)
        p->force = true;
    if (!p->due_at)
        p->due_at = clock_mono_ms() + p->settle_ms;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void fedpub_changed(struct fedpub *p)
{
    wake(p, false);
}

void fedpub_connected(struct fedpub *p)
{
    wake(p, true);
}

void fedpub_stop(struct fedpub *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    capdb_finalize(&p->st);
    store_close(p->db);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}

void fedpub_get_stats(struct fedpub *p, struct fedpub_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!p)
        return;
    out->published = atomic_load(&p->published);
    out->scans = atomic_load(&p->scans);
    out->errors = atomic_load(&p->errors);
}
