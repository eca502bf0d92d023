/*
 * supervise.h - node supervision: the trouble rules, pure.
 *
 * The daemon feeds each node's status births and wills, readings and events
 * with the hub's now_ms; the supervisor keeps per-node health and returns
 * trouble actions: open, close, and a repeat reminder every 4 hours while a
 * trouble stays open. No I/O, no clock reads, no threads. Troubles are about
 * the system itself and never produce anything that looks like a fire: this
 * module has no way to emit an alarm. docs/internals/supervision.md has the
 * rules and the reasons for each threshold.
 *
 * Troubles:
 *   offline       will for the node's current boot, or nothing heard (no
 *                 reading, event or birth) for 3 x interval + 30 s. Closes on
 *                 a birth or a reading; any message ends a silence, but after
 *                 a will only a birth or reading does (a QoS 1 event may be a
 *                 redelivery from the ended session).
 *   low_battery   batt_pct < 20 in a reading, or a trouble event with cause
 *                 low_battery; closes when the node clears its flag and a
 *                 reading shows >= 25 % (hysteresis, so a battery hovering at
 *                 20 % does not flap).
 *   sensor_fault  trouble event sensor_fault, or a failed self-test; closes on
 *                 trouble_clear sensor_fault and a passed test respectively.
 *   smoke_fault   trouble event smoke_fault; closes on trouble_clear.
 *   tamper        tamper event; latches until a technician resolves it
 *                 (supervise_resolve), since the protocol has no tamper_clear.
 *   overdue_test  commissioned node with no passed test for 30 days; a node
 *                 never tested counts from its commissioning time. Closes on a
 *                 passed test. Uncommissioned nodes are never overdue (they are
 *                 not in service; readiness counts them against the zone).
 *
 * Errors: 0 or a negative errno. Strings passed in are copied. Not
 * thread-safe by design: the daemon's main loop owns the supervisor.
 */
#ifndef FIREWATCH_HUB_SUPERVISE_H
#define FIREWATCH_HUB_SUPERVISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "firewatch/protocol.h"

#define SUPERVISE_INTERVAL_DEFAULT_S 60                     /* reading interval when unknown */
#define SUPERVISE_GRACE_DEFAULT_MS 30000                    /* added to 3 intervals */
#define SUPERVISE_MISSED_READINGS 3                         /* intervals of silence before offline */
#define SUPERVISE_BATTERY_LOW_PCT 20                        /* below this: low_battery */
#define SUPERVISE_BATTERY_OK_PCT 25                         /* at or above this: closes */
#define SUPERVISE_TEST_MAX_AGE_MS (30LL * 24 * 3600 * 1000) /* 30 days */
#define SUPERVISE_REPEAT_MS (4LL * 3600 * 1000)             /* 4 hours */
#define SUPERVISE_ACTIONS_MAX 128                           /* actions one call can return */
#define SUPERVISE_DETAIL_MAX 96                             /* action detail, with the NUL */
#define SUPERVISE_NODES_MAX 65536
#define SUPERVISE_NO_DEADLINE INT64_MAX

enum supervise_trouble {
    SUPERVISE_OFFLINE,
    SUPERVISE_LOW_BATTERY,
    SUPERVISE_SENSOR_FAULT,
    SUPERVISE_SMOKE_FAULT,
    SUPERVISE_TAMPER,
    SUPERVISE_OVERDUE_TEST,
    SUPERVISE_TROUBLE_COUNT
};

/* Config; 0 in any field means its default above. */
struct supervise_config {
    int64_t grace_ms;
    int64_t test_max_age_ms;
    int64_t repeat_ms;
    unsigned battery_low_pct;
    unsigned battery_ok_pct;
};

/* What the daemon knows about a node from its database when it registers it. */
struct supervise_node_info {
    uint32_t interval_s; /* reading interval; 0 means SUPERVISE_INTERVAL_DEFAULT_S */
    bool commissioned;
    int64_t commissioned_ms; /* when it was commissioned (0 if not) */
    int64_t last_test_ms;    /* last passed test, 0 if never */
    int64_t last_reading_ms; /* last reading stored, 0 if none: supervision starts at now */
};

enum supervise_action_kind {
    SUPERVISE_ACT_OPEN,   /* a trouble began: persist it, notify technicians */
    SUPERVISE_ACT_CLOSE,  /* it resolved: persist */
    SUPERVISE_ACT_REPEAT, /* still open after another repeat period: notify again */
};

struct supervise_action {
    enum supervise_action_kind kind;
    enum supervise_trouble trouble;
    char node[FW_ID_MAX + 1];
    int64_t ts;                        /* now_ms of the call */
    int64_t opened_ms;                 /* when this trouble opened */
    char detail[SUPERVISE_DETAIL_MAX]; /* English, e.g. "no reading for 4 min 0 s" */
};

/* Caller-owned; the supervisor resets n at the start of each call. */
struct supervise_actions {
    size_t n;
    struct supervise_action a[SUPERVISE_ACTIONS_MAX];
};

/* A copy of one node's health, for the API and for readiness. */
struct supervise_node_state {
    char node[FW_ID_MAX + 1];
    bool online;   /* false once offline is open or a will came (the only sign for an uncommissioned node) */
    uint32_t boot; /* highest boot seen */
    uint32_t interval_s;
    int batt_pct; /* last reading, -1 before the first */
    bool commissioned;
    int64_t last_reading_ms;
    int64_t last_test_ms;
    unsigned troubles; /* bit (1u << enum supervise_trouble) per open trouble */
    int64_t opened_ms[SUPERVISE_TROUBLE_COUNT];
};

/* Creates a supervisor; cfg may be NULL. NULL with errno ENOMEM or EINVAL.
 * Free with supervise_free. */
struct supervisor *supervise_new(const struct supervise_config *cfg);

/* Frees it. Accepts NULL. */
void supervise_free(struct supervisor *sup);

/* Registers a node (or updates its info if known: interval, commissioning,
 * last test). The node's silence clock starts at now_ms, and the next
 * supervise_tick evaluates it (so a registration never emits actions itself).
 * Returns 0, -EINVAL, -ENOSPC (SUPERVISE_NODES_MAX), -ENOMEM. */
int supervise_add_node(struct supervisor *sup, const char *node, const struct supervise_node_info *info,
                       int64_t now_ms);

/* Forgets a node (decommissioned); its open troubles are closed in out.
 * Returns 0 or -ENOENT. */
int supervise_remove_node(struct supervisor *sup, const char *node, int64_t now_ms,
                          struct supervise_actions *out);

/* Sets the reading interval after a `set` command took effect. */
int supervise_set_interval(struct supervisor *sup, const char *node, uint32_t interval_s);

/* A status message (birth or will). A birth or will whose boot is older than
 * the newest boot seen is stale and ignored, so a late will cannot mark a
 * newer session offline; so is a birth for a boot whose will already came
 * (that session is over). Returns 0, -ENOENT (unknown node), -EINVAL. */
int supervise_on_status(struct supervisor *sup, const char *node, const struct fw_status *st, int64_t now_ms,
                        struct supervise_actions *out);

/* A reading: proves the node alive and carries its battery level. */
int supervise_on_reading(struct supervisor *sup, const char *node, const struct fw_reading *rd,
                         int64_t now_ms, struct supervise_actions *out);

/* An event: trouble, trouble_clear, tamper and test matter; others are
 * ignored (alarms belong to the incident engine). */
int supervise_on_event(struct supervisor *sup, const char *node, const struct fw_event *ev, int64_t now_ms,
                       struct supervise_actions *out);

/* A technician resolves a trouble that has no automatic end (tamper).
 * Returns 0, -ENOENT (unknown node), -EALREADY (not open), -EPERM (the
 * trouble closes by itself when its cause goes away). */
int supervise_resolve(struct supervisor *sup, const char *node, enum supervise_trouble trouble,
                      int64_t now_ms, struct supervise_actions *out);

/* Re-loads a trouble that was open before a restart, so it is neither
 * re-opened nor re-notified early. last_notified_ms is when the last OPEN or
 * REPEAT went out. No actions. Returns 0, -ENOENT, -EINVAL. */
int supervise_restore_trouble(struct supervisor *sup, const char *node, enum supervise_trouble trouble,
                              int64_t opened_ms, int64_t last_notified_ms);

/* Time-driven rules: silence, overdue tests, repeats. When out fills the
 * rest waits and supervise_next_deadline returns <= now_ms: call again. */
int supervise_tick(struct supervisor *sup, int64_t now_ms, struct supervise_actions *out);

/* Earliest time supervise_tick has work, or SUPERVISE_NO_DEADLINE. O(nodes). */
int64_t supervise_next_deadline(const struct supervisor *sup);

/* Copies one node's state. Returns 0 or -ENOENT. */
int supervise_get(const struct supervisor *sup, const char *node, struct supervise_node_state *out);

/* Copies up to max nodes' states (in registration order); returns the count. */
size_t supervise_list(const struct supervisor *sup, struct supervise_node_state *out, size_t max);

/* "offline", "low_battery", "sensor_fault", "smoke_fault", "tamper",
 * "overdue_test"; NULL when out of range. */
const char *supervise_trouble_name(enum supervise_trouble trouble);

#endif
