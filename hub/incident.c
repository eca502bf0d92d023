/*
 * incident.c - the incident engine (see incident.h and
 * docs/internals/incident-engine.md).
 *
 * Open incidents live in one array sorted by id, which is also opening
 * order; a site has a handful of zones and at most one open fire incident and
 * one drill per zone, so linear scans are the honest data structure. A small
 * ring remembers how recently closed incidents ended, so that clearing twice
 * says "already cleared" rather than "no such incident". Every call builds
 * its actions in the caller's array and finally moves the zone publishes to
 * the front: the daemon publishes before it touches the disk.
 */
#include "incident.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLOSED_RING 64
/* Actions one escalation can need: a publish per sounded zone, a notify and
 * a timeline entry. An event may add one more timeline entry before it. */
#define ESCALATE_ACTIONS (INCIDENT_SOUNDED_MAX + 2)
#define EVENT_ACTIONS (ESCALATE_ACTIONS + 1)
#define CLEAR_ACTIONS (INCIDENT_SOUNDED_MAX + 2)

struct zone {
    char id[FW_ID_MAX + 1];
    size_t n_nb;
    char nb[INCIDENT_NEIGHBOURS_MAX][FW_ID_MAX + 1];
};

struct closed {
    uint32_t id;
    enum incident_state state;
};

struct incident_engine {
    int64_t window_ms;
    uint32_t last_id;
    struct zone *zones;
    size_t n_zones, cap_zones;
    struct incident_info *open; /* sorted by id */
    size_t n_open, cap_open;
    struct closed closed[CLOSED_RING];
    size_t closed_next;
    struct incident_action scratch[INCIDENT_ACTIONS_MAX]; /* for reordering */
};

static const char *const state_names[INCIDENT_STATE_COUNT] = {
    [INCIDENT_VERIFYING] = "verifying",       [INCIDENT_ALARM] = "alarm",
    [INCIDENT_ACKNOWLEDGED] = "acknowledged", [INCIDENT_CLEARED] = "cleared",
    [INCIDENT_DISMISSED] = "dismissed",
};

static const char *const kind_names[INCIDENT_KIND_COUNT] = {
    [INCIDENT_FIRE] = "fire", [INCIDENT_DRILL] = "drill"};

const char *incident_state_name(enum incident_state state)
{
    return (unsigned)state < INCIDENT_STATE_COUNT ? state_names[state] : NULL;
}

const char *incident_kind_name(enum incident_kind kind)
{
    return (unsigned)kind < INCIDENT_KIND_COUNT ? kind_names[kind] : NULL;
}

const char *incident_strerror(int err)
{
    static const struct {
        int err;
        const char *text;
    } rows[] = {
        {0, "done"},
        {-ENOENT, "no such open incident or zone"},
        {-EALREADY, "already done: the incident is already in that state"},
        {-EPERM, "not allowed in the incident's current state"},
        {-EBUSY, "sensors of this incident are still in alarm; clear them first"},
        {-EINVAL, "invalid request"},
        {-ENOSPC, "too many open incidents"},
        {-EEXIST, "an incident with this id is already open"},
        {-ENOMEM, "out of memory"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (rows[i].err == err)
            return rows[i].text;
    return "unexpected error";
}

static bool user_valid(const char *user)
{
    return user && user[0] != '\0' && strlen(user) <= INCIDENT_USER_MAX;
}

struct incident_engine *incident_engine_new(const struct incident_config *cfg)
{
    if (cfg && cfg->window_ms < 0) {
        errno = EINVAL;
        return NULL;
    }
    struct incident_engine *eng = calloc(1, sizeof *eng);
    if (!eng) {
        errno = ENOMEM;
        return NULL;
    }
    eng->window_ms = cfg && cfg->window_ms > 0 ? cfg->window_ms : INCIDENT_WINDOW_DEFAULT_MS;
    eng->last_id = cfg ? cfg->last_id : 0;
    return eng;
}

void incident_engine_free(struct incident_engine *eng)
{
    if (!eng)
        return;
    free(eng->zones);
    free(eng->open);
    free(eng);
}

uint32_t incident_last_id(const struct incident_engine *eng)
{
    return eng ? eng->last_id : 0;
}

/* ---- zones ---- */

static struct zone *zone_find(const struct incident_engine *eng, const char *id)
{
    for (size_t i = 0; i < eng->n_zones; i++)
        if (strcmp(eng->zones[i].id, id) == 0)
            return &eng->zones[i];
    return NULL;
}

int incident_set_zone(struct incident_engine *eng, const char *zone, const char *const *neighbours, size_t n)
{
    if (!eng || !fw_id_valid(zone) || (n > 0 && !neighbours))
        return -EINVAL;
    if (n > INCIDENT_NEIGHBOURS_MAX)
        return -E2BIG;
    for (size_t i = 0; i < n; i++)
        if (!fw_id_valid(neighbours[i]))
            return -EINVAL;
    struct zone *z = zone_find(eng, zone);
    if (!z) {
        if (eng->n_zones == eng->cap_zones) {
            size_t cap = eng->cap_zones ? eng->cap_zones * 2 : 16;
            struct zone *grown = realloc(eng->zones, cap * sizeof *grown);
            if (!grown)
                return -ENOMEM;
            eng->zones = grown;
            eng->cap_zones = cap;
        }
        z = &eng->zones[eng->n_zones++];
        memset(z, 0, sizeof *z);
        snprintf(z->id, sizeof z->id, "%s", zone);
    }
    /* Keep each neighbour once and never the zone itself: it sounds anyway. */
    z->n_nb = 0;
    for (size_t i = 0; i < n; i++) {
        bool dup = strcmp(neighbours[i], zone) == 0;
        for (size_t k = 0; k < z->n_nb && !dup; k++)
            dup = strcmp(z->nb[k], neighbours[i]) == 0;
        if (!dup)
            snprintf(z->nb[z->n_nb++], sizeof z->nb[0], "%s", neighbours[i]);
    }
    return 0;
}

/* ---- actions ---- */

static struct incident_action *act_add(struct incident_actions *out, enum incident_action_kind kind,
                                       const struct incident_info *inc, int64_t now_ms)
{
    if (out->n >= INCIDENT_ACTIONS_MAX)
        return NULL; /* cannot happen: callers reserve room before starting work */
    struct incident_action *a = &out->a[out->n++];
    memset(a, 0, sizeof *a);
    a->kind = kind;
    a->incident = inc->id;
    a->incident_kind = inc->kind;
    a->state = inc->state;
    snprintf(a->zone, sizeof a->zone, "%s", inc->zone);
    snprintf(a->origin, sizeof a->origin, "%s", inc->origin);
    a->ts = now_ms;
    a->response_ms = -1;
    return a;
}

static void act_publish(struct incident_actions *out, const struct incident_info *inc, const char *zone,
                        enum fw_alarm_state state, int64_t now_ms)
{
    struct incident_action *a = act_add(out, INCIDENT_ACT_ZONE_PUBLISH, inc, now_ms);
    if (!a)
        return;
    snprintf(a->zone, sizeof a->zone, "%s", zone);
    a->zone_state = state;
}

__attribute__((format(printf, 6, 7))) static struct incident_action *
act_text(struct incident_actions *out, enum incident_action_kind kind, const struct incident_info *inc,
         const char *event, int64_t now_ms, const char *fmt, ...)
{
    struct incident_action *a = act_add(out, kind, inc, now_ms);
    if (!a)
        return NULL;
    a->event = event;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->what, sizeof a->what, fmt, ap);
    va_end(ap);
    return a;
}

static void set_who(struct incident_action *a, const char *who)
{
    if (a)
        snprintf(a->who, sizeof a->who, "%s", who);
}

/* Moves the zone publishes of out->a to the front, keeping order within
 * each group, so the daemon publishes before persisting anything. */
static void publishes_first(struct incident_engine *eng, struct incident_actions *out)
{
    size_t k = 0;
    for (size_t i = 0; i < out->n; i++)
        if (out->a[i].kind == INCIDENT_ACT_ZONE_PUBLISH)
            eng->scratch[k++] = out->a[i];
    for (size_t i = 0; i < out->n; i++)
        if (out->a[i].kind != INCIDENT_ACT_ZONE_PUBLISH)
            eng->scratch[k++] = out->a[i];
    memcpy(out->a, eng->scratch, out->n * sizeof out->a[0]);
}

static size_t room(const struct incident_actions *out)
{
    return INCIDENT_ACTIONS_MAX - out->n;
}

/* ---- open incidents ---- */

static struct incident_info *find_id(const struct incident_engine *eng, uint32_t id)
{
    for (size_t i = 0; i < eng->n_open; i++)
        if (eng->open[i].id == id)
            return &eng->open[i];
    return NULL;
}

static struct incident_info *find_open(const struct incident_engine *eng, const char *zone,
                                       enum incident_kind kind)
{
    for (size_t i = 0; i < eng->n_open; i++)
        if (eng->open[i].kind == kind && strcmp(eng->open[i].zone, zone) == 0)
            return &eng->open[i];
    return NULL;
}

static const struct closed *find_closed(const struct incident_engine *eng, uint32_t id)
{
    for (size_t i = 0; i < CLOSED_RING; i++)
        if (eng->closed[i].id == id && id != 0)
            return &eng->closed[i];
    return NULL;
}

/* Makes room for one more open incident at index pos. Returns it zeroed. */
static struct incident_info *insert_at(struct incident_engine *eng, size_t pos, int *rc)
{
    if (eng->n_open >= INCIDENT_OPEN_MAX) {
        *rc = -ENOSPC;
        return NULL;
    }
    if (eng->n_open == eng->cap_open) {
        size_t cap = eng->cap_open ? eng->cap_open * 2 : 8;
        struct incident_info *grown = realloc(eng->open, cap * sizeof *grown);
        if (!grown) {
            *rc = -ENOMEM;
            return NULL;
        }
        eng->open = grown;
        eng->cap_open = cap;
    }
    memmove(&eng->open[pos + 1], &eng->open[pos], (eng->n_open - pos) * sizeof eng->open[0]);
    eng->n_open++;
    memset(&eng->open[pos], 0, sizeof eng->open[pos]);
    *rc = 0;
    return &eng->open[pos];
}

/* Removes an incident that reached a final state, remembering how it ended. */
static void close_incident(struct incident_engine *eng, struct incident_info *inc)
{
    eng->closed[eng->closed_next] = (struct closed){inc->id, inc->state};
    eng->closed_next = (eng->closed_next + 1) % CLOSED_RING;
    size_t pos = (size_t)(inc - eng->open);
    memmove(&eng->open[pos], &eng->open[pos + 1], (eng->n_open - pos - 1) * sizeof eng->open[0]);
    eng->n_open--;
}

static int node_index(const struct incident_info *inc, const char *node)
{
    for (size_t i = 0; i < inc->n_nodes; i++)
        if (strcmp(inc->nodes[i].id, node) == 0)
            return (int)i;
    return -1;
}

static size_t alarming_count(const struct incident_info *inc)
{
    size_t n = 0;
    for (size_t i = 0; i < inc->n_nodes; i++)
        n += inc->nodes[i].alarming;
    return n;
}

static bool sounds(const struct incident_info *inc, const char *zone)
{
    for (size_t i = 0; i < inc->n_sounded; i++)
        if (strcmp(inc->sounded[i], zone) == 0)
            return true;
    return false;
}

/* The zones an escalating fire sounds: its own, then its neighbours. */
static void compute_sounded(const struct incident_engine *eng, struct incident_info *inc)
{
    inc->n_sounded = 0;
    snprintf(inc->sounded[inc->n_sounded++], sizeof inc->sounded[0], "%s", inc->zone);
    const struct zone *z = zone_find(eng, inc->zone);
    for (size_t i = 0; z && i < z->n_nb; i++)
        snprintf(inc->sounded[inc->n_sounded++], sizeof inc->sounded[0], "%s", z->nb[i]);
}

static bool immediate_cause(enum fw_cause cause)
{
    return cause == FW_CAUSE_HEAT_FIXED || cause == FW_CAUSE_BUTTON;
}

static const char *cause_text(enum fw_cause cause)
{
    const char *name = fw_cause_name(cause);
    return name && *name ? name : "unknown cause";
}

/* VERIFYING -> ALARM: sound the zone and its neighbours, wake the watch. */
static void escalate(struct incident_engine *eng, struct incident_info *inc, const char *who, int64_t now_ms,
                     struct incident_actions *out, const char *why)
{
    inc->state = INCIDENT_ALARM;
    inc->alarm_ms = now_ms;
    compute_sounded(eng, inc);
    for (size_t i = 0; i < inc->n_sounded; i++)
        act_publish(out, inc, inc->sounded[i], FW_STATE_ALARM, now_ms);
    set_who(act_text(out, INCIDENT_ACT_NOTIFY, inc, "alarm", now_ms, "fire alarm in zone %s from node %s",
                     inc->zone, inc->origin),
            who);
    set_who(act_text(out, INCIDENT_ACT_TIMELINE, inc, "escalated", now_ms,
                     "alarm raised: %s; %zu zone%s sounded", why, inc->n_sounded,
                     inc->n_sounded == 1 ? "" : "s"),
            who);
}

/* Escalates verifying incidents whose window has elapsed, oldest first, as
 * long as reserve actions stay free for the caller's own work. */
static void expire(struct incident_engine *eng, int64_t now_ms, struct incident_actions *out, size_t reserve)
{
    for (size_t i = 0; i < eng->n_open; i++) {
        struct incident_info *inc = &eng->open[i];
        if (inc->state != INCIDENT_VERIFYING || now_ms - inc->opened_ms < eng->window_ms)
            continue;
        if (room(out) < ESCALATE_ACTIONS + reserve)
            return;
        char why[64];
        snprintf(why, sizeof why, "verifying window of %lld s elapsed", (long long)(eng->window_ms / 1000));
        escalate(eng, inc, inc->origin, now_ms, out, why);
    }
}

int incident_tick(struct incident_engine *eng, int64_t now_ms, struct incident_actions *out)
{
    if (!eng || !out)
        return -EINVAL;
    out->n = 0;
    expire(eng, now_ms, out, 0);
    publishes_first(eng, out);
    return 0;
}

int64_t incident_next_deadline(const struct incident_engine *eng)
{
    int64_t next = INCIDENT_NO_DEADLINE;
    for (size_t i = 0; eng && i < eng->n_open; i++)
        if (eng->open[i].state == INCIDENT_VERIFYING && eng->open[i].opened_ms + eng->window_ms < next)
            next = eng->open[i].opened_ms + eng->window_ms;
    return next;
}

/* ---- node events ---- */

static int on_alarm(struct incident_engine *eng, const struct incident_input *in, int64_t now_ms,
                    struct incident_actions *out)
{
    struct incident_info *inc = find_open(eng, in->zone, INCIDENT_FIRE);
    const char *cause = cause_text(in->cause);
    if (!inc) {
        int rc;
        inc = insert_at(eng, eng->n_open, &rc);
        if (!inc)
            return rc;
        inc->id = ++eng->last_id;
        inc->kind = INCIDENT_FIRE;
        inc->state = INCIDENT_VERIFYING;
        snprintf(inc->zone, sizeof inc->zone, "%s", in->zone);
        snprintf(inc->origin, sizeof inc->origin, "%s", in->node);
        inc->cause = in->cause;
        inc->opened_ms = now_ms;
        inc->n_nodes = 1;
        snprintf(inc->nodes[0].id, sizeof inc->nodes[0].id, "%s", in->node);
        inc->nodes[0].alarming = true;
        set_who(act_text(out, INCIDENT_ACT_TIMELINE, inc, "opened", now_ms,
                         "alarm (%s) from node %s in zone %s; verifying", cause, in->node, in->zone),
                in->node);
        if (immediate_cause(in->cause)) {
            char why[64];
            snprintf(why, sizeof why, "%s alarm escalates at once", cause);
            escalate(eng, inc, in->node, now_ms, out, why);
        }
        return 0;
    }

    int idx = node_index(inc, in->node);
    bool second = false;
    if (idx < 0) {
        /* A node beyond INCIDENT_NODES_MAX is still recorded and still
         * escalates; it is only not tracked for the sensors-normal check. */
        if (inc->n_nodes < INCIDENT_NODES_MAX) {
            snprintf(inc->nodes[inc->n_nodes].id, sizeof inc->nodes[0].id, "%s", in->node);
            inc->nodes[inc->n_nodes++].alarming = true;
        }
        second = true;
        set_who(act_text(out, INCIDENT_ACT_TIMELINE, inc, "joined", now_ms, "alarm (%s) from node %s joined",
                         cause, in->node),
                in->node);
    } else if (!inc->nodes[idx].alarming) {
        inc->nodes[idx].alarming = true;
        set_who(act_text(out, INCIDENT_ACT_TIMELINE, inc, "joined", now_ms, "node %s alarmed again (%s)",
                         in->node, cause),
                in->node);
    } else if (!(inc->state == INCIDENT_VERIFYING && immediate_cause(in->cause))) {
        return 0; /* the same node repeating itself changes nothing */
    }

    if (inc->state == INCIDENT_VERIFYING) {
        char why[64];
        if (second)
            snprintf(why, sizeof why, "a second node (%s) alarmed", in->node);
        else if (immediate_cause(in->cause))
            snprintf(why, sizeof why, "%s alarm escalates at once", cause);
        else
            return 0;
        escalate(eng, inc, in->node, now_ms, out, why);
    } else if (second) {
        set_who(act_text(out, INCIDENT_ACT_NOTIFY, inc, "spread", now_ms,
                         "another node (%s) alarms in zone %s", in->node, inc->zone),
                in->node);
    }
    return 0;
}

static int on_alarm_clear(struct incident_engine *eng, const struct incident_input *in, int64_t now_ms,
                          struct incident_actions *out)
{
    struct incident_info *inc = find_open(eng, in->zone, INCIDENT_FIRE);
    int idx = inc ? node_index(inc, in->node) : -1;
    if (idx < 0 || !inc->nodes[idx].alarming)
        return 0;
    inc->nodes[idx].alarming = false;
    size_t left = alarming_count(inc);
    if (left == 0)
        set_who(act_text(out, INCIDENT_ACT_TIMELINE, inc, "sensor_normal", now_ms,
                         "node %s back to normal; all sensors normal", in->node),
                in->node);
    else
        set_who(act_text(out, INCIDENT_ACT_TIMELINE, inc, "sensor_normal", now_ms,
                         "node %s back to normal; %zu still in alarm", in->node, left),
                in->node);
    return 0;
}

static int on_silence(struct incident_engine *eng, const struct incident_input *in, int64_t now_ms,
                      struct incident_actions *out)
{
    struct incident_info *inc = find_open(eng, in->zone, INCIDENT_FIRE);
    if (!inc || node_index(inc, in->node) < 0)
        return 0;
    if (inc->state == INCIDENT_VERIFYING) {
        inc->state = INCIDENT_DISMISSED;
        set_who(act_text(out, INCIDENT_ACT_TIMELINE, inc, "dismissed", now_ms,
                         "resident hushed node %s before the alarm spread", in->node),
                in->node);
        close_incident(eng, inc);
    } else {
        /* Once neighbours are woken a hush only quiets that one house. */
        set_who(act_text(out, INCIDENT_ACT_TIMELINE, inc, "silenced", now_ms,
                         "resident hushed node %s; the zone alarm continues", in->node),
                in->node);
    }
    return 0;
}

int incident_on_event(struct incident_engine *eng, const struct incident_input *in, int64_t now_ms,
                      struct incident_actions *out)
{
    if (!eng || !in || !out || !fw_id_valid(in->node) || !fw_id_valid(in->zone))
        return -EINVAL;
    out->n = 0;
    expire(eng, now_ms, out, EVENT_ACTIONS);
    int rc = 0;
    switch (in->type) {
    case FW_EV_ALARM: rc = on_alarm(eng, in, now_ms, out); break;
    case FW_EV_ALARM_CLEAR: rc = on_alarm_clear(eng, in, now_ms, out); break;
    case FW_EV_SILENCE: rc = on_silence(eng, in, now_ms, out); break;
    default: break; /* tests, troubles, tamper: never an incident */
    }
    publishes_first(eng, out);
    return rc;
}

/* ---- watch members ---- */

int incident_acknowledge(struct incident_engine *eng, uint32_t id, const char *user, int64_t now_ms,
                         struct incident_actions *out)
{
    if (!eng || !out || !user_valid(user))
        return -EINVAL;
    out->n = 0;
    expire(eng, now_ms, out, 2);
    int rc = 0;
    struct incident_info *inc = find_id(eng, id);
    if (!inc)
        rc = find_closed(eng, id) ? -EPERM : -ENOENT;
    else if (inc->state == INCIDENT_ACKNOWLEDGED)
        rc = -EALREADY;
    else if (inc->state != INCIDENT_ALARM)
        rc = -EPERM;
    if (rc == 0) {
        inc->state = INCIDENT_ACKNOWLEDGED;
        inc->ack_ms = now_ms;
        snprintf(inc->ack_by, sizeof inc->ack_by, "%s", user);
        int64_t response = now_ms - inc->alarm_ms;
        struct incident_action *a = act_text(out, INCIDENT_ACT_NOTIFY, inc, "acknowledged", now_ms,
                                             "%s is responding in zone %s", user, inc->zone);
        set_who(a, user);
        if (a)
            a->response_ms = response;
        a = act_text(out, INCIDENT_ACT_TIMELINE, inc, "acknowledged", now_ms,
                     "acknowledged by %s after %lld s", user, (long long)(response / 1000));
        set_who(a, user);
        if (a)
            a->response_ms = response;
    }
    publishes_first(eng, out);
    return rc;
}

int incident_clear(struct incident_engine *eng, uint32_t id, const char *user, int64_t now_ms,
                   struct incident_actions *out)
{
    if (!eng || !out || !user_valid(user))
        return -EINVAL;
    out->n = 0;
    expire(eng, now_ms, out, CLEAR_ACTIONS);
    struct incident_info *inc = find_id(eng, id);
    int rc = 0;
    if (!inc) {
        const struct closed *c = find_closed(eng, id);
        rc = !c ? -ENOENT : c->state == INCIDENT_CLEARED ? -EALREADY : -EPERM;
    } else if (inc->state != INCIDENT_ACKNOWLEDGED &&
               !(inc->kind == INCIDENT_DRILL && inc->state == INCIDENT_ALARM)) {
        rc = -EPERM; /* a drill nobody answered may still be ended */
    } else if (alarming_count(inc) > 0) {
        rc = -EBUSY;
    }
    if (rc != 0) {
        publishes_first(eng, out);
        return rc;
    }
    inc->state = INCIDENT_CLEARED;
    /* A zone another escalated fire still sounds gets that fire's alarm
     * again instead of "clear": the retained state must stay true. */
    for (size_t i = 0; i < inc->n_sounded; i++) {
        const struct incident_info *other = NULL;
        for (size_t k = 0; k < eng->n_open; k++) {
            const struct incident_info *o = &eng->open[k];
            if (o != inc && o->kind == INCIDENT_FIRE &&
                (o->state == INCIDENT_ALARM || o->state == INCIDENT_ACKNOWLEDGED) &&
                sounds(o, inc->sounded[i]))
                other = o;
        }
        if (other)
            act_publish(out, other, inc->sounded[i], FW_STATE_ALARM, now_ms);
        else
            act_publish(out, inc, inc->sounded[i], FW_STATE_CLEAR, now_ms);
    }
    set_who(act_text(out, INCIDENT_ACT_NOTIFY, inc, "cleared", now_ms, "%s in zone %s cleared by %s",
                     inc->kind == INCIDENT_DRILL ? "drill" : "fire alarm", inc->zone, user),
            user);
    set_who(act_text(out, INCIDENT_ACT_TIMELINE, inc, "cleared", now_ms, "cleared by %s", user), user);
    close_incident(eng, inc);
    publishes_first(eng, out);
    return 0;
}

int incident_start_drill(struct incident_engine *eng, const char *zone, const char *user, int64_t now_ms,
                         uint32_t *id, struct incident_actions *out)
{
    if (!eng || !out || !fw_id_valid(zone) || !user_valid(user))
        return -EINVAL;
    out->n = 0;
    expire(eng, now_ms, out, 2);
    int rc = 0;
    struct incident_info *inc = NULL;
    if (!zone_find(eng, zone))
        rc = -ENOENT;
    else if (find_open(eng, zone, INCIDENT_DRILL))
        rc = -EALREADY;
    else
        inc = insert_at(eng, eng->n_open, &rc);
    if (inc) {
        inc->id = ++eng->last_id;
        inc->kind = INCIDENT_DRILL;
        inc->state = INCIDENT_ALARM;
        snprintf(inc->zone, sizeof inc->zone, "%s", zone);
        snprintf(inc->opened_by, sizeof inc->opened_by, "%s", user);
        inc->cause = FW_CAUSE_NONE;
        inc->opened_ms = inc->alarm_ms = now_ms;
        if (id)
            *id = inc->id;
        set_who(act_text(out, INCIDENT_ACT_TIMELINE, inc, "drill_started", now_ms,
                         "drill started in zone %s by %s", zone, user),
                user);
        set_who(act_text(out, INCIDENT_ACT_NOTIFY, inc, "drill", now_ms,
                         "DRILL in zone %s: this is an exercise, please acknowledge", zone),
                user);
    }
    publishes_first(eng, out);
    return rc;
}

int incident_remove_node(struct incident_engine *eng, const char *node, int64_t now_ms,
                         struct incident_actions *out)
{
    if (!eng || !out || !fw_id_valid(node))
        return -EINVAL;
    out->n = 0;
    expire(eng, now_ms, out, 1);
    for (size_t i = 0; i < eng->n_open && room(out) > 0; i++) {
        struct incident_info *inc = &eng->open[i];
        int idx = node_index(inc, node);
        if (idx < 0)
            continue;
        /* Drop it from the tracked set; its alarms stay in the timeline. */
        memmove(&inc->nodes[idx], &inc->nodes[idx + 1],
                (inc->n_nodes - (size_t)idx - 1) * sizeof inc->nodes[0]);
        inc->n_nodes--;
        set_who(act_text(out, INCIDENT_ACT_TIMELINE, inc, "node_removed", now_ms,
                         "node %s removed; %zu sensor%s still in alarm", node, alarming_count(inc),
                         alarming_count(inc) == 1 ? "" : "s"),
                node);
    }
    publishes_first(eng, out);
    return 0;
}

/* ---- restore and queries ---- */

int incident_restore(struct incident_engine *eng, const struct incident_info *info)
{
    if (!eng || !info || info->id == 0 || (unsigned)info->kind >= INCIDENT_KIND_COUNT ||
        !fw_id_valid(info->zone) || info->n_nodes > INCIDENT_NODES_MAX ||
        info->n_sounded > INCIDENT_SOUNDED_MAX)
        return -EINVAL;
    if (info->state != INCIDENT_VERIFYING && info->state != INCIDENT_ALARM &&
        info->state != INCIDENT_ACKNOWLEDGED)
        return -EINVAL;
    if (info->kind == INCIDENT_DRILL && info->state == INCIDENT_VERIFYING)
        return -EINVAL;
    if (find_id(eng, info->id))
        return -EEXIST;
    size_t pos = eng->n_open;
    while (pos > 0 && eng->open[pos - 1].id > info->id)
        pos--;
    int rc;
    struct incident_info *inc = insert_at(eng, pos, &rc);
    if (!inc)
        return rc;
    *inc = *info;
    /* Make every string terminated whatever the caller's buffer held. */
    inc->zone[FW_ID_MAX] = inc->origin[FW_ID_MAX] = '\0';
    inc->opened_by[INCIDENT_USER_MAX] = inc->ack_by[INCIDENT_USER_MAX] = '\0';
    for (size_t i = 0; i < inc->n_nodes; i++)
        inc->nodes[i].id[FW_ID_MAX] = '\0';
    for (size_t i = 0; i < inc->n_sounded; i++)
        inc->sounded[i][FW_ID_MAX] = '\0';
    if (inc->kind == INCIDENT_FIRE && inc->state != INCIDENT_VERIFYING && inc->n_sounded == 0)
        compute_sounded(eng, inc);
    if (inc->kind == INCIDENT_DRILL)
        inc->n_sounded = 0; /* drills never sound */
    if (info->id > eng->last_id)
        eng->last_id = info->id;
    return 0;
}

int incident_get(const struct incident_engine *eng, uint32_t id, struct incident_info *out)
{
    const struct incident_info *inc = eng && out ? find_id(eng, id) : NULL;
    if (!inc)
        return -ENOENT;
    *out = *inc;
    return 0;
}

size_t incident_list(const struct incident_engine *eng, struct incident_info *out, size_t max)
{
    if (!eng)
        return 0;
    for (size_t i = 0; i < eng->n_open && i < max && out; i++)
        out[i] = eng->open[i];
    return eng->n_open;
}
