/*
 * supervise.c - node supervision rules (see supervise.h and
 * docs/internals/supervision.md).
 *
 * Each node keeps the facts the rules need (flags set and cleared by its
 * messages, and the times of its last reading, birth and passed test). One
 * function, evaluate(), turns those facts and now_ms into the set of troubles
 * that should be open and emits the difference as open/close actions, plus a
 * repeat for every open trouble whose last notice is a repeat period old.
 * Message handlers only update facts and call evaluate() for that node; the
 * tick calls it for every node. Keeping the rules in one place is what makes
 * latching and closing consistent whichever path noticed the change.
 *
 * Nodes live in an array scanned linearly by the tick: 10,000 nodes cost
 * microseconds per tick, and lookups by id go through a small open-addressing
 * hash so ingest stays O(1).
 */
#include "supervise.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The most actions evaluate() can emit for one node: one per trouble. */
#define NODE_ACTIONS SUPERVISE_TROUBLE_COUNT

struct node {
    char id[FW_ID_MAX + 1];
    uint32_t interval_s;
    uint32_t boot;
    bool boot_known;
    bool will_offline; /* the broker reported this boot's session gone */
    bool commissioned;
    int64_t commissioned_ms;
    int64_t registered_ms;
    int64_t last_heard_ms;   /* last reading, event or birth: the silence clock */
    int64_t last_reading_ms; /* last reading, for display */
    int64_t last_test_ms;    /* last passed test */
    int batt_pct;
    bool batt_low;     /* latched by readings below the low mark, released at the ok mark */
    bool flag_battery; /* the node says its battery is low */
    bool sensor_fault; /* trouble event or a failed self-test */
    bool smoke_fault;
    bool tamper;
    bool dirty; /* registration changed: evaluate on the next tick */
    unsigned open;
    int64_t opened_ms[SUPERVISE_TROUBLE_COUNT];
    int64_t notified_ms[SUPERVISE_TROUBLE_COUNT];
};

struct supervisor {
    struct supervise_config cfg;
    struct node *nodes;
    size_t n, cap;
    uint32_t *slots; /* hash of node index + 1; 0 is empty */
    size_t n_slots;
};

static const char *const trouble_names[SUPERVISE_TROUBLE_COUNT] = {
    [SUPERVISE_OFFLINE] = "offline",
    [SUPERVISE_LOW_BATTERY] = "low_battery",
    [SUPERVISE_SENSOR_FAULT] = "sensor_fault",
    [SUPERVISE_SMOKE_FAULT] = "smoke_fault",
    [SUPERVISE_TAMPER] = "tamper",
    [SUPERVISE_OVERDUE_TEST] = "overdue_test",
};

const char *supervise_trouble_name(enum supervise_trouble trouble)
{
    return (unsigned)trouble < SUPERVISE_TROUBLE_COUNT ? trouble_names[trouble] : NULL;
}

struct supervisor *supervise_new(const struct supervise_config *cfg)
{
    struct supervise_config c = cfg ? *cfg : (struct supervise_config){0};
    if (c.grace_ms < 0 || c.test_max_age_ms < 0 || c.repeat_ms < 0 || c.battery_low_pct > 100 ||
        c.battery_ok_pct > 100) {
        errno = EINVAL;
        return NULL;
    }
    c.grace_ms = c.grace_ms ? c.grace_ms : SUPERVISE_GRACE_DEFAULT_MS;
    c.test_max_age_ms = c.test_max_age_ms ? c.test_max_age_ms : SUPERVISE_TEST_MAX_AGE_MS;
    c.repeat_ms = c.repeat_ms ? c.repeat_ms : SUPERVISE_REPEAT_MS;
    c.battery_low_pct = c.battery_low_pct ? c.battery_low_pct : SUPERVISE_BATTERY_LOW_PCT;
    c.battery_ok_pct = c.battery_ok_pct ? c.battery_ok_pct : SUPERVISE_BATTERY_OK_PCT;
    if (c.battery_ok_pct < c.battery_low_pct) {
        errno = EINVAL;
        return NULL;
    }
    struct supervisor *sup = calloc(1, sizeof *sup);
    if (!sup) {
        errno = ENOMEM;
        return NULL;
    }
    sup->cfg = c;
    return sup;
}

void supervise_free(struct supervisor *sup)
{
    if (!sup)
        return;
    free(sup->nodes);
    free(sup->slots);
    free(sup);
}

/* ---- the node index ---- */

static size_t hash_id(const char *s)
{
    size_t h = 14695981039346656037u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

static size_t *slot_of(const struct supervisor *sup, const char *id, size_t *slot)
{
    if (sup->n_slots == 0)
        return NULL;
    size_t mask = sup->n_slots - 1;
    for (size_t i = hash_id(id) & mask;; i = (i + 1) & mask) {
        if (sup->slots[i] == 0 || strcmp(sup->nodes[sup->slots[i] - 1].id, id) == 0) {
            *slot = i;
            return slot;
        }
    }
}

static struct node *node_find(const struct supervisor *sup, const char *id)
{
    size_t slot;
    if (!id || !slot_of(sup, id, &slot) || sup->slots[slot] == 0)
        return NULL;
    return &sup->nodes[sup->slots[slot] - 1];
}

/* Rebuilds the hash for want nodes, keeping it at most half full. It only
 * allocates when it must grow, so rebuilding after a removal cannot fail. */
static int rehash(struct supervisor *sup, size_t want)
{
    if (want * 2 > sup->n_slots) {
        size_t n_slots = 64;
        while (n_slots < want * 2)
            n_slots *= 2;
        uint32_t *slots = calloc(n_slots, sizeof *slots);
        if (!slots)
            return -ENOMEM;
        free(sup->slots);
        sup->slots = slots;
        sup->n_slots = n_slots;
    } else {
        memset(sup->slots, 0, sup->n_slots * sizeof *sup->slots);
    }
    for (size_t k = 0; k < sup->n; k++) {
        size_t slot;
        slot_of(sup, sup->nodes[k].id, &slot);
        sup->slots[slot] = (uint32_t)k + 1;
    }
    return 0;
}

/* ---- rules ---- */

static int64_t silence_limit_ms(const struct supervisor *sup, const struct node *nd)
{
    return (int64_t)SUPERVISE_MISSED_READINGS * nd->interval_s * 1000 + sup->cfg.grace_ms;
}

/* The time the test clock counts from: the last passed test, else
 * commissioning, else registration with the supervisor. */
static int64_t test_ref_ms(const struct node *nd)
{
    if (nd->last_test_ms > 0)
        return nd->last_test_ms;
    if (nd->commissioned_ms > 0)
        return nd->commissioned_ms;
    return nd->registered_ms;
}

static void add_action(struct supervise_actions *out, enum supervise_action_kind kind, const struct node *nd,
                       enum supervise_trouble t, int64_t now_ms, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static void add_action(struct supervise_actions *out, enum supervise_action_kind kind, const struct node *nd,
                       enum supervise_trouble t, int64_t now_ms, const char *fmt, ...)
{
    if (out->n >= SUPERVISE_ACTIONS_MAX)
        return; /* cannot happen: callers reserve NODE_ACTIONS per node */
    struct supervise_action *a = &out->a[out->n++];
    memset(a, 0, sizeof *a);
    a->kind = kind;
    a->trouble = t;
    snprintf(a->node, sizeof a->node, "%s", nd->id);
    a->ts = now_ms;
    a->opened_ms = nd->opened_ms[t];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->detail, sizeof a->detail, fmt, ap);
    va_end(ap);
}

/* Why trouble t is (or was) open, in words, for the action detail. */
static void describe(const struct supervisor *sup, const struct node *nd, enum supervise_trouble t,
                     int64_t now_ms, char *buf, size_t size)
{
    switch (t) {
    case SUPERVISE_OFFLINE:
        if (nd->will_offline)
            snprintf(buf, size, "connection lost (will for boot %u)", (unsigned)nd->boot);
        else
            snprintf(buf, size, "no reading for %lld s (limit %lld s)",
                     (long long)((now_ms - nd->last_heard_ms) / 1000),
                     (long long)(silence_limit_ms(sup, nd) / 1000));
        break;
    case SUPERVISE_LOW_BATTERY:
        if (nd->batt_pct >= 0)
            snprintf(buf, size, "battery at %d %%%s", nd->batt_pct,
                     nd->flag_battery ? ", node reports low" : "");
        else
            snprintf(buf, size, "node reports low battery");
        break;
    case SUPERVISE_SENSOR_FAULT: snprintf(buf, size, "sensor fault or failed self-test"); break;
    case SUPERVISE_SMOKE_FAULT: snprintf(buf, size, "smoke detector fault"); break;
    case SUPERVISE_TAMPER: snprintf(buf, size, "tamper switch opened"); break;
    case SUPERVISE_OVERDUE_TEST:
        if (nd->last_test_ms > 0)
            snprintf(buf, size, "last passed test %lld days ago",
                     (long long)((now_ms - nd->last_test_ms) / (24LL * 3600 * 1000)));
        else
            snprintf(buf, size, "never passed a test since commissioning");
        break;
    default: snprintf(buf, size, "unknown trouble"); break;
    }
}

static bool wanted(const struct supervisor *sup, const struct node *nd, enum supervise_trouble t,
                   int64_t now_ms)
{
    if (!nd->commissioned)
        return false; /* not in service yet: readiness counts it, supervision does not nag */
    switch (t) {
    case SUPERVISE_OFFLINE: return nd->will_offline || now_ms - nd->last_heard_ms > silence_limit_ms(sup, nd);
    case SUPERVISE_LOW_BATTERY: return nd->batt_low || nd->flag_battery;
    case SUPERVISE_SENSOR_FAULT: return nd->sensor_fault;
    case SUPERVISE_SMOKE_FAULT: return nd->smoke_fault;
    case SUPERVISE_TAMPER: return nd->tamper;
    case SUPERVISE_OVERDUE_TEST: return now_ms - test_ref_ms(nd) > sup->cfg.test_max_age_ms;
    default: return false;
    }
}

/* Brings the node's open troubles in line with its facts at now_ms. */
static void evaluate(const struct supervisor *sup, struct node *nd, int64_t now_ms,
                     struct supervise_actions *out)
{
    nd->dirty = false;
    for (int i = 0; i < SUPERVISE_TROUBLE_COUNT; i++) {
        enum supervise_trouble t = (enum supervise_trouble)i;
        unsigned bit = 1u << i;
        bool want = wanted(sup, nd, t, now_ms);
        char why[SUPERVISE_DETAIL_MAX];
        if (want && !(nd->open & bit)) {
            nd->open |= bit;
            nd->opened_ms[t] = nd->notified_ms[t] = now_ms;
            describe(sup, nd, t, now_ms, why, sizeof why);
            add_action(out, SUPERVISE_ACT_OPEN, nd, t, now_ms, "%s", why);
        } else if (!want && (nd->open & bit)) {
            nd->open &= ~bit;
            add_action(out, SUPERVISE_ACT_CLOSE, nd, t, now_ms, "%s resolved", trouble_names[t]);
        } else if (want && now_ms - nd->notified_ms[t] >= sup->cfg.repeat_ms) {
            nd->notified_ms[t] = now_ms;
            describe(sup, nd, t, now_ms, why, sizeof why);
            add_action(out, SUPERVISE_ACT_REPEAT, nd, t, now_ms, "still open: %s", why);
        }
    }
}

/* The earliest time evaluate() would change something for this node. */
static int64_t node_deadline(const struct supervisor *sup, const struct node *nd)
{
    if (nd->dirty)
        return INT64_MIN;
    int64_t next = SUPERVISE_NO_DEADLINE;
#define EARLIER(t)                                                                                           \
    do {                                                                                                     \
        int64_t t_ = (t);                                                                                    \
        if (t_ < next)                                                                                       \
            next = t_;                                                                                       \
    } while (0)
    for (int i = 0; i < SUPERVISE_TROUBLE_COUNT; i++)
        if (nd->open & (1u << i))
            EARLIER(nd->notified_ms[i] + sup->cfg.repeat_ms);
    if (nd->commissioned) {
        if (!(nd->open & (1u << SUPERVISE_OFFLINE)))
            EARLIER(nd->last_heard_ms + silence_limit_ms(sup, nd) + 1);
        if (!(nd->open & (1u << SUPERVISE_OVERDUE_TEST)))
            EARLIER(test_ref_ms(nd) + sup->cfg.test_max_age_ms + 1);
    }
#undef EARLIER
    return next;
}

/* ---- nodes ---- */

int supervise_add_node(struct supervisor *sup, const char *node, const struct supervise_node_info *info,
                       int64_t now_ms)
{
    if (!sup || !info || !fw_id_valid(node) || info->interval_s > FW_INTERVAL_MAX)
        return -EINVAL;
    struct node *nd = node_find(sup, node);
    if (!nd) {
        if (sup->n >= SUPERVISE_NODES_MAX)
            return -ENOSPC;
        if (sup->n == sup->cap) {
            size_t cap = sup->cap ? sup->cap * 2 : 64;
            struct node *grown = realloc(sup->nodes, cap * sizeof *grown);
            if (!grown)
                return -ENOMEM;
            sup->nodes = grown;
            sup->cap = cap;
        }
        if ((sup->n + 1) * 2 > sup->n_slots) {
            int rc = rehash(sup, sup->n + 1);
            if (rc < 0)
                return rc;
        }
        nd = &sup->nodes[sup->n];
        memset(nd, 0, sizeof *nd);
        snprintf(nd->id, sizeof nd->id, "%s", node);
        nd->batt_pct = -1;
        nd->registered_ms = now_ms;
        /* The silence clock starts now, not at the stored last reading: a
         * hub that was down did not hear anyone, and that is not the nodes'
         * fault. */
        nd->last_heard_ms = now_ms;
        nd->last_reading_ms = info->last_reading_ms;
        size_t slot;
        slot_of(sup, nd->id, &slot);
        sup->slots[slot] = (uint32_t)sup->n + 1;
        sup->n++;
    }
    if (info->commissioned && !nd->commissioned && now_ms > nd->last_heard_ms)
        nd->last_heard_ms = now_ms; /* supervision of a newly commissioned node starts now */
    nd->interval_s = info->interval_s ? info->interval_s : SUPERVISE_INTERVAL_DEFAULT_S;
    nd->commissioned = info->commissioned;
    nd->commissioned_ms = info->commissioned_ms;
    if (info->last_test_ms > nd->last_test_ms)
        nd->last_test_ms = info->last_test_ms;
    /* Facts may already call for a trouble (a test long overdue) or for
     * closing one (decommissioned in place): the next tick evaluates. */
    nd->dirty = true;
    return 0;
}

int supervise_remove_node(struct supervisor *sup, const char *node, int64_t now_ms,
                          struct supervise_actions *out)
{
    if (!sup || !out)
        return -EINVAL;
    out->n = 0;
    struct node *nd = node_find(sup, node);
    if (!nd)
        return -ENOENT;
    for (int i = 0; i < SUPERVISE_TROUBLE_COUNT; i++)
        if (nd->open & (1u << i))
            add_action(out, SUPERVISE_ACT_CLOSE, nd, (enum supervise_trouble)i, now_ms, "node removed");
    size_t k = (size_t)(nd - sup->nodes);
    memmove(&sup->nodes[k], &sup->nodes[k + 1], (sup->n - k - 1) * sizeof sup->nodes[0]);
    sup->n--;
    return rehash(sup, sup->n); /* same size: cannot fail */
}

int supervise_set_interval(struct supervisor *sup, const char *node, uint32_t interval_s)
{
    if (!sup || interval_s < FW_INTERVAL_MIN || interval_s > FW_INTERVAL_MAX)
        return -EINVAL;
    struct node *nd = node_find(sup, node);
    if (!nd)
        return -ENOENT;
    nd->interval_s = interval_s;
    return 0;
}

/* Looks the node up and starts a handler's call. */
static struct node *begin(struct supervisor *sup, const char *node, const void *msg,
                          struct supervise_actions *out, int *rc)
{
    if (!sup || !msg || !out) {
        *rc = -EINVAL;
        return NULL;
    }
    out->n = 0;
    struct node *nd = node_find(sup, node);
    *rc = nd ? 0 : -ENOENT;
    return nd;
}

int supervise_on_status(struct supervisor *sup, const char *node, const struct fw_status *st, int64_t now_ms,
                        struct supervise_actions *out)
{
    int rc;
    struct node *nd = begin(sup, node, st, out, &rc);
    if (!nd)
        return rc;
    if (nd->boot_known && st->boot < nd->boot)
        return 0; /* from an older session: a late will or a stale birth */
    if (st->online) {
        if (nd->boot_known && st->boot == nd->boot && nd->will_offline)
            return 0; /* this session already ended; its birth is stale */
        nd->will_offline = false;
        nd->last_heard_ms = now_ms;
    } else {
        nd->will_offline = true;
    }
    nd->boot = st->boot;
    nd->boot_known = true;
    evaluate(sup, nd, now_ms, out);
    return 0;
}

int supervise_on_reading(struct supervisor *sup, const char *node, const struct fw_reading *rd,
                         int64_t now_ms, struct supervise_actions *out)
{
    int rc;
    struct node *nd = begin(sup, node, rd, out, &rc);
    if (!nd)
        return rc;
    /* A reading is proof of life whatever the status topic last said. */
    nd->will_offline = false;
    nd->last_heard_ms = nd->last_reading_ms = now_ms;
    nd->batt_pct = rd->batt_pct;
    if (rd->batt_pct < sup->cfg.battery_low_pct)
        nd->batt_low = true;
    else if (rd->batt_pct >= sup->cfg.battery_ok_pct)
        nd->batt_low = false;
    evaluate(sup, nd, now_ms, out);
    return 0;
}

static bool *fault_flag(struct node *nd, enum fw_cause cause)
{
    switch (cause) {
    case FW_CAUSE_LOW_BATTERY: return &nd->flag_battery;
    case FW_CAUSE_SENSOR_FAULT: return &nd->sensor_fault;
    case FW_CAUSE_SMOKE_FAULT: return &nd->smoke_fault;
    default: return NULL;
    }
}

int supervise_on_event(struct supervisor *sup, const char *node, const struct fw_event *ev, int64_t now_ms,
                       struct supervise_actions *out)
{
    int rc;
    struct node *nd = begin(sup, node, ev, out, &rc);
    if (!nd)
        return rc;
    /* Any message proves the node reachable; only a birth or a reading
     * undoes a will, since a QoS 1 event may be a redelivery from the
     * session the will ended. */
    nd->last_heard_ms = now_ms;
    bool *flag;
    switch (ev->type) {
    case FW_EV_TROUBLE:
    case FW_EV_TROUBLE_CLEAR:
        flag = fault_flag(nd, ev->cause);
        if (flag)
            *flag = ev->type == FW_EV_TROUBLE;
        break;
    case FW_EV_TAMPER: nd->tamper = true; break;
    case FW_EV_TEST:
        if (ev->result == FW_RESULT_PASS) {
            nd->last_test_ms = now_ms;
            nd->sensor_fault = false;
        } else if (ev->result == FW_RESULT_FAIL) {
            nd->sensor_fault = true;
        }
        break;
    default: break; /* alarms and the rest are the incident engine's */
    }
    evaluate(sup, nd, now_ms, out);
    return 0;
}

int supervise_resolve(struct supervisor *sup, const char *node, enum supervise_trouble trouble,
                      int64_t now_ms, struct supervise_actions *out)
{
    int rc;
    struct node *nd = begin(sup, node, &trouble, out, &rc);
    if (!nd)
        return rc;
    if ((unsigned)trouble >= SUPERVISE_TROUBLE_COUNT)
        return -EINVAL;
    if (trouble != SUPERVISE_TAMPER)
        return -EPERM;
    if (!(nd->open & (1u << trouble)))
        return -EALREADY;
    nd->tamper = false;
    evaluate(sup, nd, now_ms, out);
    return 0;
}

int supervise_restore_trouble(struct supervisor *sup, const char *node, enum supervise_trouble trouble,
                              int64_t opened_ms, int64_t last_notified_ms)
{
    if (!sup || (unsigned)trouble >= SUPERVISE_TROUBLE_COUNT)
        return -EINVAL;
    struct node *nd = node_find(sup, node);
    if (!nd)
        return -ENOENT;
    /* Restore the fact behind the trouble too, or the next evaluation would
     * close it before the node had a chance to say anything. */
    switch (trouble) {
    case SUPERVISE_OFFLINE: nd->will_offline = true; break;
    case SUPERVISE_LOW_BATTERY: nd->batt_low = true; break;
    case SUPERVISE_SENSOR_FAULT: nd->sensor_fault = true; break;
    case SUPERVISE_SMOKE_FAULT: nd->smoke_fault = true; break;
    case SUPERVISE_TAMPER: nd->tamper = true; break;
    default: break; /* overdue_test follows from the test times */
    }
    nd->open |= 1u << trouble;
    nd->opened_ms[trouble] = opened_ms;
    nd->notified_ms[trouble] = last_notified_ms > opened_ms ? last_notified_ms : opened_ms;
    return 0;
}

int supervise_tick(struct supervisor *sup, int64_t now_ms, struct supervise_actions *out)
{
    if (!sup || !out)
        return -EINVAL;
    out->n = 0;
    for (size_t i = 0; i < sup->n; i++) {
        if (node_deadline(sup, &sup->nodes[i]) > now_ms)
            continue;
        if (SUPERVISE_ACTIONS_MAX - out->n < NODE_ACTIONS)
            break; /* the rest stays due: the next deadline is already past */
        evaluate(sup, &sup->nodes[i], now_ms, out);
    }
    return 0;
}

int64_t supervise_next_deadline(const struct supervisor *sup)
{
    int64_t next = SUPERVISE_NO_DEADLINE;
    for (size_t i = 0; sup && i < sup->n; i++) {
        int64_t t = node_deadline(sup, &sup->nodes[i]);
        if (t < next)
            next = t;
    }
    return next;
}

static void copy_state(const struct node *nd, struct supervise_node_state *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->node, sizeof out->node, "%s", nd->id);
    out->online = !(nd->open & (1u << SUPERVISE_OFFLINE)) && !nd->will_offline;
    out->boot = nd->boot;
    out->interval_s = nd->interval_s;
    out->batt_pct = nd->batt_pct;
    out->commissioned = nd->commissioned;
    out->last_reading_ms = nd->last_reading_ms;
    out->last_test_ms = nd->last_test_ms;
    out->troubles = nd->open;
    memcpy(out->opened_ms, nd->opened_ms, sizeof out->opened_ms);
}

int supervise_get(const struct supervisor *sup, const char *node, struct supervise_node_state *out)
{
    const struct node *nd = sup && out ? node_find(sup, node) : NULL;
    if (!nd)
        return -ENOENT;
    copy_state(nd, out);
    return 0;
}

size_t supervise_list(const struct supervisor *sup, struct supervise_node_state *out, size_t max)
{
    if (!sup)
        return 0;
    for (size_t i = 0; i < sup->n && i < max && out; i++)
        copy_state(&sup->nodes[i], out + i);
    return sup->n;
}
