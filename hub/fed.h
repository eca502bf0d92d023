/*
 * fed.h - federation: what an area hub tells a regional hub, pure.
 *
 * An area hub (federation true) publishes its summaries on its own broker
 * under firewatch/v1/fed/<area>/, where <area> is its hub_id; a Mosquitto
 * bridge forwards that subtree to the regional broker, where a hub in
 * regional mode reads every area's. docs/federation.md is the whole story;
 * this module names the topics, builds the documents and checks them on
 * the way in. It does no I/O and reads no clock.
 *
 *   firewatch/v1/fed/<area>/hub             retained  who the area is, what is open
 *   firewatch/v1/fed/<area>/readiness       retained  the area's readiness by zone
 *   firewatch/v1/fed/<area>/incident/<id>   retained while open, then cleared
 *   firewatch/v1/fed/<area>/cap/<id>        retained while open, then cleared
 *   firewatch/v1/fed/<area>/bridge          retained  "1"/"0": the bridge's own
 *                                           notification (its will says "0")
 *
 * Documents are JSON objects with "v": 1, at most FED_PAYLOAD_MAX bytes
 * (CAP alerts are the XML itself). A closed incident's last document is sent
 * without retain and its retained copy is then cleared (an empty retained
 * message), so the regional broker keeps only what is open; the hub
 * document lists the open incident ids, so a regional hub that missed a
 * close reconciles on the next one.
 */
#ifndef FIREWATCH_HUB_FED_H
#define FIREWATCH_HUB_FED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "firewatch/protocol.h"

#define FED_ROOT FW_TOPIC_ROOT "/fed"
#define FED_VERSION 1
#define FED_PAYLOAD_MAX 12288        /* under the brokers' 16 KiB packet limit, with the topic */
#define FED_AREA_USER_PREFIX "area_" /* an area's bridge account on the regional broker */
#define FED_TOPIC_MAX 96
#define FED_OPEN_MAX 64 /* open incident ids one hub document lists */
#define FED_NAME_MAX 127

enum fed_kind { FED_HUB, FED_READINESS, FED_BRIDGE, FED_INCIDENT, FED_CAP, FED_KIND_COUNT };

/* Writes the topic of kind for area (id: the incident, for FED_INCIDENT and
 * FED_CAP only) into buf. Returns its length, -EINVAL (bad area or id) or
 * -ENOSPC. */
int fed_topic(char *buf, size_t size, const char *area, enum fed_kind kind, uint32_t id);

/* The subscription that covers one area's subtree ("firewatch/v1/fed/<area>/#")
 * or, with area NULL, every area's. Returns the length or -EINVAL/-ENOSPC. */
int fed_topic_filter(char *buf, size_t size, const char *area);

/* Parses a topic of len bytes (not NUL-terminated). Returns 0 with area,
 * kind and id (0 when the kind has none) filled, or -EINVAL. */
int fed_topic_parse(const char *topic, size_t len, char area[FW_ID_MAX + 1], enum fed_kind *kind,
                    uint32_t *id);

/* The area's bridge account name, "area_<area>". Returns the length or
 * -EINVAL/-ENOSPC. */
int fed_area_user(char *buf, size_t size, const char *area);

/* One incident as it crosses. Times are the area hub's, Unix ms, 0 when not
 * reached. */
struct fed_incident {
    uint32_t id;
    char zone[FW_ID_MAX + 1];
    char zone_name[FED_NAME_MAX + 1];
    char site_name[FED_NAME_MAX + 1];
    char state[16]; /* verifying, alarm, acknowledged, cleared, dismissed */
    char kind[8];   /* fire, drill */
    char origin[FW_ID_MAX + 1];
    char cause[16]; /* the protocol's cause name, or "" */
    char ack_by[72];
    int64_t opened_ms, alarm_ms, ack_ms, closed_ms;
    int64_t ts_ms; /* decode: when the area hub sent it */
};

/* True for cleared and dismissed. */
bool fed_state_closed(const char *state);

/* Encodes inc (for area, stamped ts_ms) into a malloc'd JSON string; *len
 * (may be NULL) gets its length. NULL with errno EINVAL (a bad field) or
 * ENOMEM. */
char *fed_incident_encode(const char *area, const struct fed_incident *inc, int64_t ts_ms, size_t *len);

/* Decodes and checks an incident document from area. Returns 0, or -EINVAL
 * with why filled (the first field at fault). */
int fed_incident_decode(const char *area, const char *payload, size_t len, struct fed_incident *out,
                        char *why, size_t why_size);

/* What a hub or readiness document says that the regional side keeps apart
 * from the document itself. */
struct fed_summary {
    char area[FW_ID_MAX + 1];
    char name[FED_NAME_MAX + 1]; /* hub document */
    int64_t ts_ms;
    size_t n_open; /* hub document: the open incident ids */
    uint32_t open[FED_OPEN_MAX];
    int score; /* readiness document: the area's score, -1 when none */
};

/* Checks a hub document (kind FED_HUB) or a readiness document
 * (FED_READINESS) from area: a JSON object with "v" 1, "hub" equal to
 * area, a "ts", and the kind's fields (docs/federation.md). Returns 0 with
 * out filled, or -EINVAL with why filled. */
int fed_summary_decode(const char *area, enum fed_kind kind, const char *payload, size_t len,
                       struct fed_summary *out, char *why, size_t why_size);

/* What a regional overview shows of an area's readiness: the document
 * (checked by fed_summary_decode) without its envelope ("v", "hub"), its
 * zones cut to the `worst` under 100, worst first, and "zones_total" saying
 * how many it has. A malloc'd JSON text, or NULL (errno EINVAL or ENOMEM). */
#define FED_WORST_ZONES 3
char *fed_readiness_summary(const char *payload, size_t len, int worst);

/* Checks a CAP alert forwarded by area: well under the size limit, and
 * XML that names the CAP 1.2 namespace and an identifier carrying the
 * area ("firewatch-<area>-"). The regional side keeps it as it came.
 * Returns 0 or -EINVAL with why filled. */
int fed_cap_check(const char *area, const char *payload, size_t len, char *why, size_t why_size);

#endif
