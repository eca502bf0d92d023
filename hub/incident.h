/*
 * incident.h - the incident engine: the hub's alarm state machine, pure.
 *
 * Node events, watch-member commands and the current time go in; actions
 * (zone alarm publishes, watch notifications, timeline entries to persist)
 * come out. The engine does no I/O, reads no clock and starts no thread, so
 * the daemon's main loop owns it and every transition is unit-tested with
 * injected time. Lifecycle (docs/internals/incident-engine.md):
 *
 *   first alarm -> VERIFYING --silence from a node of the incident--> DISMISSED
 *                  VERIFYING --window elapsed / second node / heat_fixed / button--> ALARM
 *                  ALARM --member acknowledges--> ACKNOWLEDGED
 *                  ACKNOWLEDGED --all sensors normal + member clears--> CLEARED
 *
 * A drill is an exercise incident a member starts for a zone: it opens in
 * ALARM, notifies the watch, never publishes a zone alarm, and measures the
 * response time (acknowledge time - start). Test events never open or
 * escalate anything.
 *
 * Every function that can change state first escalates the incidents whose
 * verifying window has elapsed at now_ms, so a late tick never delays an
 * escalation past the next call. Incident ids come from a counter seeded by
 * the daemon (incident_config.last_id), so escalation never waits on a disk
 * write. All timestamps are hub time in Unix milliseconds (the daemon's
 * clock), never the node's ts.
 *
 * Errors: 0 or a negative errno. Strings passed in are copied; nothing the
 * engine returns needs freeing except the engine itself. Not thread-safe by
 * design: one thread (the daemon's main loop) owns an engine.
 */
#ifndef FIREWATCH_HUB_INCIDENT_H
#define FIREWATCH_HUB_INCIDENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "firewatch/protocol.h"

#define INCIDENT_WINDOW_DEFAULT_MS 20000                   /* verifying window when the config says 0 */
#define INCIDENT_NEIGHBOURS_MAX 16                         /* neighbour zones per zone */
#define INCIDENT_SOUNDED_MAX (INCIDENT_NEIGHBOURS_MAX + 1) /* zones one incident sounds */
#define INCIDENT_NODES_MAX 64   /* alarming nodes tracked per incident (see incident_info) */
#define INCIDENT_USER_MAX 64    /* longest user name, without the NUL */
#define INCIDENT_WHAT_MAX 112   /* longest timeline text, with the NUL */
#define INCIDENT_ACTIONS_MAX 64 /* actions one call can return */
#define INCIDENT_OPEN_MAX 4096  /* open incidents held at once */
#define INCIDENT_NO_DEADLINE INT64_MAX

enum incident_kind { INCIDENT_FIRE, INCIDENT_DRILL, INCIDENT_KIND_COUNT };

/* CLEARED and DISMISSED are final: the incident leaves the engine in the
 * call that reaches them. */
enum incident_state {
    INCIDENT_VERIFYING,
    INCIDENT_ALARM,
    INCIDENT_ACKNOWLEDGED,
    INCIDENT_CLEARED,
    INCIDENT_DISMISSED,
    INCIDENT_STATE_COUNT
};

struct incident_config {
    int64_t window_ms; /* verifying window; 0 means INCIDENT_WINDOW_DEFAULT_MS */
    uint32_t last_id;  /* highest incident id already used (the database max); 0 when none */
};

/* One node event as the engine needs it. The daemon fills it from the
 * decoded fw_event and the node's registered zone. */
struct incident_input {
    const char *node;        /* node id */
    const char *zone;        /* the node's zone id */
    enum fw_event_type type; /* alarm, alarm_clear and silence matter; test and the rest are ignored */
    enum fw_cause cause;     /* for alarm events */
};

enum incident_action_kind {
    INCIDENT_ACT_ZONE_PUBLISH, /* publish retained firewatch/v1/zone/<zone>/alarm */
    INCIDENT_ACT_NOTIFY,       /* tell the watch group (notifier hook, stream) */
    INCIDENT_ACT_TIMELINE,     /* persist one timeline entry (and the incident's new state) */
};

/* One action. Which fields are set depends on kind:
 *   ZONE_PUBLISH: zone, state (FW_STATE_ALARM or FW_STATE_CLEAR), incident,
 *                 origin (the node that started it), ts. Encode as
 *                 fw_zone_alarm and publish with retain, QoS 1.
 *   NOTIFY:       incident, incident_kind, zone, origin, event (what happened:
 *                 "alarm", "spread", "acknowledged", "cleared", "drill"),
 *                 what (English sentence), who, ts, response_ms.
 *   TIMELINE:     incident, incident_kind, zone, origin, state (the incident's
 *                 state after this entry), event (stable code, see below),
 *                 what (English sentence), who (node id or user name), ts,
 *                 response_ms (acknowledge entries only, else -1).
 * Timeline event codes: "opened", "joined", "escalated", "dismissed",
 * "silenced", "sensor_normal", "acknowledged", "cleared", "drill_started",
 * "node_removed". The first TIMELINE of an id ("opened" or "drill_started")
 * is the daemon's cue to insert the incident row. */
struct incident_action {
    enum incident_action_kind kind;
    uint32_t incident;
    enum incident_kind incident_kind;
    enum incident_state state;      /* TIMELINE */
    enum fw_alarm_state zone_state; /* ZONE_PUBLISH */
    char zone[FW_ID_MAX + 1];
    char origin[FW_ID_MAX + 1];
    const char *event; /* static string, never freed */
    char what[INCIDENT_WHAT_MAX];
    char who[INCIDENT_USER_MAX + 1];
    int64_t ts;
    int64_t response_ms;
};

/* The actions of one call, filled by the engine into caller-owned storage.
 * Within one call every ZONE_PUBLISH comes before any NOTIFY or TIMELINE, so
 * the daemon can publish first and persist after. The engine resets n at the
 * start of each call. */
struct incident_actions {
    size_t n;
    struct incident_action a[INCIDENT_ACTIONS_MAX];
};

/* A copy of one open incident, for the API and for restore after a restart. */
struct incident_info {
    uint32_t id;
    enum incident_kind kind;
    enum incident_state state;
    char zone[FW_ID_MAX + 1];
    char origin[FW_ID_MAX + 1];            /* first alarming node; empty for a drill */
    char opened_by[INCIDENT_USER_MAX + 1]; /* drill: the member who started it; empty for a fire */
    enum fw_cause cause;                   /* cause of the first alarm; FW_CAUSE_NONE for a drill */
    int64_t opened_ms;                     /* first alarm, or drill start */
    int64_t alarm_ms;                      /* entered ALARM; 0 while verifying */
    int64_t ack_ms;                        /* acknowledged; 0 before */
    char ack_by[INCIDENT_USER_MAX + 1];    /* empty before */
    size_t n_nodes;                        /* nodes that alarmed in this incident */
    struct {
        char id[FW_ID_MAX + 1];
        bool alarming; /* false once its alarm_clear arrived */
    } nodes[INCIDENT_NODES_MAX];
    size_t n_sounded; /* zones this incident published "alarm" to (its zone first) */
    char sounded[INCIDENT_SOUNDED_MAX][FW_ID_MAX + 1];
};

/* Creates an engine. cfg may be NULL for defaults. Returns NULL with errno
 * EINVAL (negative window) or ENOMEM. The caller frees it with
 * incident_engine_free. */
struct incident_engine *incident_engine_new(const struct incident_config *cfg);

/* Frees the engine and everything it holds. Accepts NULL. */
void incident_engine_free(struct incident_engine *eng);

/* Declares zone and the neighbour zones that also sound when it escalates
 * (replacing any earlier list; n may be 0). Alarms from zones never declared
 * still open incidents, sounding only their own zone. Incidents already in
 * ALARM keep the zones they sounded. Returns 0, -EINVAL for a bad id or NULL,
 * -E2BIG for more than INCIDENT_NEIGHBOURS_MAX neighbours, -ENOMEM. */
int incident_set_zone(struct incident_engine *eng, const char *zone, const char *const *neighbours, size_t n);

/* Feeds one node event. alarm opens an incident in the zone or joins the
 * open one (escalating on a second node, heat_fixed or button); alarm_clear
 * marks the node normal; silence dismisses a verifying incident the node
 * belongs to (and is only recorded once escalated); every other type is
 * ignored. Returns 0 (out may be empty), -EINVAL for a bad input, -ENOSPC
 * when INCIDENT_OPEN_MAX incidents are open. */
int incident_on_event(struct incident_engine *eng, const struct incident_input *in, int64_t now_ms,
                      struct incident_actions *out);

/* Escalates every verifying incident whose window has elapsed at now_ms.
 * When out fills, the rest stays pending and incident_next_deadline returns
 * a time <= now_ms: call again. Returns 0. */
int incident_tick(struct incident_engine *eng, int64_t now_ms, struct incident_actions *out);

/* The earliest time incident_tick has work to do, or INCIDENT_NO_DEADLINE. */
int64_t incident_next_deadline(const struct incident_engine *eng);

/* A watch member acknowledges incident id (fire or drill): ALARM ->
 * ACKNOWLEDGED. Returns 0, -ENOENT (unknown id), -EALREADY (already
 * acknowledged), -EPERM (still verifying, or closed), -EINVAL (bad user). */
int incident_acknowledge(struct incident_engine *eng, uint32_t id, const char *user, int64_t now_ms,
                         struct incident_actions *out);

/* A watch member clears incident id: ACKNOWLEDGED -> CLEARED (a drill may
 * also be ended unacknowledged, from ALARM; it publishes nothing), publishing
 * "clear" to every zone it sounded that no other escalated incident still
 * sounds (those get that incident's "alarm" again, so retained state stays
 * true). Returns 0, -ENOENT, -EBUSY (a sensor of the incident is still in
 * alarm), -EPERM (not acknowledged yet, or dismissed), -EALREADY (already
 * cleared), -EINVAL. */
int incident_clear(struct incident_engine *eng, uint32_t id, const char *user, int64_t now_ms,
                   struct incident_actions *out);

/* Starts a drill in a declared zone; *id gets its incident id (id may be
 * NULL). Returns 0, -ENOENT (zone never declared), -EALREADY (a drill is
 * already open in the zone), -EINVAL, -ENOSPC. */
int incident_start_drill(struct incident_engine *eng, const char *zone, const char *user, int64_t now_ms,
                         uint32_t *id, struct incident_actions *out);

/* A node was decommissioned or removed: it leaves every open incident, so a
 * detector destroyed in a fire cannot block clearing forever. Emits a
 * "node_removed" timeline entry per incident. Returns 0 or -EINVAL. */
int incident_remove_node(struct incident_engine *eng, const char *node, int64_t now_ms,
                         struct incident_actions *out);

/* Re-loads an open incident after a restart, exactly as saved (no actions:
 * the broker still holds the retained zone alarm). A verifying incident keeps
 * its deadline opened_ms + window, so a hub that was down past it escalates
 * on the next tick. If an escalated fire has n_sounded 0, the zone's current
 * neighbour list is used. The id counter moves past info->id. Returns 0,
 * -EINVAL (bad or final state), -EEXIST (id already open), -ENOSPC, -ENOMEM. */
int incident_restore(struct incident_engine *eng, const struct incident_info *info);

/* Copies open incident id into *out. Returns 0 or -ENOENT. */
int incident_get(const struct incident_engine *eng, uint32_t id, struct incident_info *out);

/* Copies up to max open incidents, oldest first, into out (may be NULL when
 * max is 0). Returns how many are open, which may exceed max. */
size_t incident_list(const struct incident_engine *eng, struct incident_info *out, size_t max);

/* The last id handed out (for the daemon's metrics and sanity checks). */
uint32_t incident_last_id(const struct incident_engine *eng);

/* Lower-case names: "verifying", "alarm", "acknowledged", "cleared",
 * "dismissed"; "fire", "drill". NULL when out of range. */
const char *incident_state_name(enum incident_state state);
const char *incident_kind_name(enum incident_kind kind);

/* A sentence for a user explaining an error code returned by acknowledge,
 * clear or start_drill ("sensors of this incident are still in alarm"). */
const char *incident_strerror(int err);

#endif
