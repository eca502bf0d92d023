/*
 * cap.h - incidents as OASIS Common Alerting Protocol 1.2 alerts, pure.
 *
 * Public warning systems, alert aggregators and emergency services read CAP;
 * this module turns one incident (a plain struct the daemon fills from the
 * incident engine and the store) into one CAP 1.2 <alert> document, and a
 * list of them into an Atom feed. It does no I/O and reads no clock: every
 * time is in the input, so the same incident in the same state always gives
 * the same bytes, and a consumer that fetches an alert twice sees one
 * message, not two.
 *
 * One incident is a thread of up to four messages, one per state it
 * reached; the message number is part of the CAP identifier
 * "firewatch-<hub>-<incident>-<seq>":
 *   seq 1 verifying     Alert                          sent = opened_ms
 *   seq 2 alarm         Alert, or Update after seq 1   sent = alarm_ms
 *   seq 3 acknowledged  Update                         sent = ack_ms
 *   seq 4 cleared or dismissed  Cancel                 sent = closed_ms
 * Every message after the first lists all earlier messages of the thread in
 * <references> ("sender,identifier,sent" each), the original first. The
 * state to urgency / severity / certainty / responseType mapping and the
 * area geometry are in docs/cap.md.
 *
 * Text from users (zone, site and user names, addresses) is XML-escaped and
 * its UTF-8 checked: invalid bytes and characters XML cannot carry become
 * U+FFFD, so the output is always well-formed.
 */
#ifndef FIREWATCH_HUB_CAP_H
#define FIREWATCH_HUB_CAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "firewatch/protocol.h"
#include "incident.h"

#define CAP_NAMESPACE "urn:oasis:names:tc:emergency:cap:1.2"
#define CAP_MIME_TYPE "application/cap+xml"
#define CAP_SENDER_MAX 128     /* longest sender, without the NUL */
#define CAP_IDENTIFIER_MAX 96  /* longest identifier we build, with the NUL */
#define CAP_POINTS_MAX 100000  /* household positions one alert may take */
#define CAP_CIRCLE_MIN_KM 0.05 /* a circle is at least a house plot and its neighbours */
#define CAP_EARTH_RADIUS_KM 6371.0088

/* Who speaks: the hub. Strings are borrowed for the call. */
struct cap_hub {
    const char *hub_id;      /* [a-z0-9][a-z0-9-]{0,31}; part of every identifier (required) */
    const char *sender;      /* CAP <sender>, e.g. "firewatch@ward7.example.org"; no spaces,
                                commas, '<' or '&'. NULL or "": "firewatch-<hub_id>" */
    const char *sender_name; /* <senderName>, e.g. "Ward 7 Firewatch"; NULL: none */
    const char *restriction; /* NULL or "": scope Public; else scope Restricted with this text */
    const char *web_base;    /* dashboard URL ending in '/', e.g. "https://hub.example/";
                                NULL: no <web> and no feed links */
    const char *contact;     /* <contact>, e.g. a phone number; NULL: none */
};

/* A household position, WGS 84 degrees. */
struct cap_point {
    double lat, lon;
};

/* One incident as CAP needs it. Times are hub time in Unix milliseconds; 0
 * means "not reached". Strings are borrowed for the call; NULL is "". */
struct cap_incident {
    uint32_t id;
    enum incident_kind kind;        /* fire, or drill (status Exercise) */
    enum incident_state state;      /* the message to build */
    bool test;                      /* status Test (a test incident, e.g. commissioning): overrides kind */
    const char *zone;               /* zone id (required) */
    const char *zone_name;          /* human name; "" falls back to the id */
    const char *site_name;          /* "" when unknown */
    const char *origin;             /* first alarming node; "" for a drill */
    const char *address;            /* the origin household's address; "" when unknown */
    enum fw_cause cause;            /* first alarm's cause; FW_CAUSE_NONE for a drill */
    const char *opened_by;          /* drill: who started it */
    const char *ack_by;             /* who acknowledged */
    const char *closed_by;          /* who cleared it (dismissed: the node that was hushed) */
    int64_t opened_ms;              /* first alarm or drill start (required) */
    int64_t alarm_ms;               /* entered ALARM (required from ALARM on, except dismissed) */
    int64_t ack_ms;                 /* acknowledged (required for ACKNOWLEDGED) */
    int64_t closed_ms;              /* cleared or dismissed (required for those states) */
    int64_t expires_ms;             /* <expires>; 0: none */
    const struct cap_point *points; /* positions of the zone's households */
    size_t n_points;                /* 0: no geometry */
};

enum cap_geometry { CAP_GEOM_NONE, CAP_GEOM_CIRCLE, CAP_GEOM_POLYGON };

/* Writes the incident's current message as a CAP 1.2 XML document (with the
 * XML declaration) into buf, NUL-terminated. Returns its length without the
 * NUL, -EINVAL (a required field missing, a bad hub id or sender, a state
 * whose time is 0, times going backwards), -E2BIG (more than CAP_POINTS_MAX
 * positions), -ENOSPC (buf too small; nothing useful in it) or -ENOMEM. */
int cap_alert_write(const struct cap_hub *hub, const struct cap_incident *inc, char *buf, size_t size);

/* As cap_alert_write into a malloc'd string the caller frees with free().
 * *len (may be NULL) gets its length. NULL with errno EINVAL or ENOMEM. */
char *cap_alert_new(const struct cap_hub *hub, const struct cap_incident *inc, size_t *len);

/* An Atom 1.0 feed (RFC 4287) with one entry per incident, each entry
 * carrying the full CAP alert inline in <content type="application/cap+xml">
 * and, with hub->web_base, a link to it at
 * <web_base>api/v1/incidents/<id>/cap. The feed's <updated> is the newest
 * entry's, or now_ms when there is none. Pass the open incidents and those
 * closed recently, so readers also see the Cancel. Returns a malloc'd string
 * the caller frees with free() (*len its length; may be NULL), or NULL with
 * errno EINVAL or ENOMEM. */
char *cap_feed_new(const struct cap_hub *hub, const struct cap_incident *incs, size_t n, int64_t now_ms,
                   size_t *len);

/* One alert someone else wrote (a regional hub passes on its areas'):
 * the entry's id, title, time and link, and the CAP document itself, kept
 * as it came apart from its XML declaration. Strings are borrowed. */
struct cap_feed_entry {
    const char *id;    /* an absolute URI, e.g. "urn:firewatch:ward7:cap:firewatch-ward7-3-2" */
    const char *title; /* free text */
    int64_t updated_ms;
    const char *link;  /* NULL: none; else the alert's URL (a path is fine) */
    const char *alert; /* a CAP <alert> document, with or without "<?xml ...?>" */
};

/* An Atom 1.0 feed titled title with id feed_id (an absolute URI) of n
 * entries, each carrying its alert inline in <content
 * type="application/cap+xml">. <updated> is the newest entry's, or now_ms.
 * Returns a malloc'd string (*len its length; may be NULL), or NULL with
 * errno EINVAL (a missing field, an alert that is not an <alert> element)
 * or ENOMEM. */
char *cap_feed_wrap(const char *feed_id, const char *title, const struct cap_feed_entry *entries, size_t n,
                    int64_t now_ms, size_t *len);

/* The identifier of the incident's current message,
 * "firewatch-<hub_id>-<id>-<seq>", into buf. Returns its length, -EINVAL or
 * -ENOSPC. */
int cap_identifier(const struct cap_hub *hub, const struct cap_incident *inc, char *buf, size_t size);

/* The area geometry of n positions, as CAP text into buf: no text for none
 * (buf ""), "lat,lon radius_km" for a circle (1 or 2 distinct positions, or
 * all on one line), or the closed convex hull "lat,lon lat,lon ... lat,lon"
 * (counter-clockwise, first pair repeated last) for 3 or more positions not
 * on one line. Coordinates are rounded to 6 decimals (about 0.1 m) before
 * anything else; positions that are not finite or out of range are
 * skipped. Returns the enum cap_geometry (>= 0), -EINVAL, -E2BIG (more than
 * CAP_POINTS_MAX), -ENOSPC or -ENOMEM. */
int cap_area_text(const struct cap_point *points, size_t n, char *buf, size_t size);

/* The sent time format of CAP 1.2: "YYYY-MM-DDThh:mm:ss-00:00" (UTC; the
 * standard requires "-00:00" for UTC and forbids "Z"). Seconds are
 * truncated. Returns the length (25) or -EINVAL / -ENOSPC. */
int cap_format_time(int64_t ms, char *buf, size_t size);

/* CAP names of the state mapping, for the API and docs:
 * "Alert"/"Update"/"Cancel", "Immediate"/"Past", "Severe"/"Minor",
 * "Likely"/"Observed"/"Unlikely". NULL when out of range. */
const char *cap_msg_type(const struct cap_incident *inc);
const char *cap_urgency(enum incident_state state);
const char *cap_severity(enum incident_state state);
const char *cap_certainty(enum incident_state state);

#endif
