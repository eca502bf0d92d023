/*
 * hadisc.h - Home Assistant MQTT discovery for Firewatch nodes and zones,
 * pure.
 *
 * Home Assistant creates entities from retained JSON configs published
 * under its discovery prefix; this module builds those (topic, payload)
 * pairs so each node appears as one device with binary sensors (smoke,
 * heat, problem, battery low, connectivity) and sensors (temperature,
 * battery), and each zone as a device with one binary sensor for its alarm.
 * The entities read the Firewatch v1 topics directly (reading, event,
 * status, zone alarm) through value templates: no extra state topic, and
 * nothing for the hub to publish when a value changes. It does no I/O; the
 * daemon publishes the set retained at QoS 1 when discovery is enabled, for
 * every node and zone at start, on a topology change, and again whenever
 * Home Assistant's birth message arrives (hadisc_is_birth); on decommission
 * it publishes the removal set (empty retained payloads). docs/home-
 * assistant.md lists every entity and the exact payloads.
 *
 * Topics: <prefix>/<component>/firewatch_node_<node>/<object>/config and
 * <prefix>/binary_sensor/firewatch_zone_<zone>/alarm/config, following
 * <discovery_prefix>/<component>/<node_id>/<object_id>/config.
 */
#ifndef FIREWATCH_HUB_HADISC_H
#define FIREWATCH_HUB_HADISC_H

#include <stdbool.h>
#include <stddef.h>

#include "firewatch/protocol.h"

#define HADISC_PREFIX_DEFAULT "homeassistant"
#define HADISC_PREFIX_MAX 64       /* longest discovery prefix, without the NUL */
#define HADISC_TOPIC_MAX 160       /* longest topic built, with the NUL */
#define HADISC_MSGS_MAX 8          /* messages in one set */
#define HADISC_LOW_BATT_PCT 20     /* "battery low" below this, as the hub's trouble */
#define HADISC_INTERVAL_DEFAULT 60 /* reading interval when the node's is unknown */
#define HADISC_BIRTH_PAYLOAD "online"

/* Strings are borrowed for the call. */
struct hadisc_config {
    const char *prefix;      /* discovery prefix; NULL or "": "homeassistant" */
    const char *birth_topic; /* Home Assistant's status topic; NULL or "": "<prefix>/status" */
    const char *sw_version;  /* Firewatch version for "origin"; NULL: left out */
    const char *support_url; /* origin support_url (the dashboard); NULL: left out */
};

struct hadisc_node {
    const char *id;         /* node id (required) */
    enum fw_node_kind kind; /* smoke: no heat sensor; heat: no smoke sensor */
    const char *room;       /* e.g. "kitchen": suggested_area; NULL or "": none */
    const char *household;  /* household id; NULL or "": none */
    const char *zone;       /* zone id; NULL or "": none */
    const char *fw;         /* firmware version: sw_version; NULL or "": unknown */
    int interval_s;         /* reading interval; <= 0: HADISC_INTERVAL_DEFAULT */
};

struct hadisc_zone {
    const char *id;   /* zone id (required) */
    const char *name; /* human name; NULL or "": the id */
    const char *site; /* site name; NULL or "": none */
};

/* One message to publish retained at QoS 1. payload is malloc'd JSON owned
 * by the set, or NULL with len 0 for a removal (publish zero bytes). */
struct hadisc_msg {
    char topic[HADISC_TOPIC_MAX];
    char *payload;
    size_t len;
};

struct hadisc_set {
    size_t n;
    struct hadisc_msg msg[HADISC_MSGS_MAX];
};

/* Builds the discovery configs of a node into *out (which the caller
 * releases with hadisc_set_free, also after an error). Returns 0, -EINVAL
 * (bad id, kind or prefix) or -ENOMEM. */
int hadisc_node_configs(const struct hadisc_config *cfg, const struct hadisc_node *node,
                        struct hadisc_set *out);

/* The same for a zone's alarm sensor. */
int hadisc_zone_configs(const struct hadisc_config *cfg, const struct hadisc_zone *zone,
                        struct hadisc_set *out);

/* Removal sets: every config topic a node (of any kind) or a zone may have,
 * each with an empty payload. Publishing them retained deletes the retained
 * configs on the broker and the entities in Home Assistant. Returns 0 or
 * -EINVAL. */
int hadisc_node_removal(const struct hadisc_config *cfg, const char *node_id, struct hadisc_set *out);
int hadisc_zone_removal(const struct hadisc_config *cfg, const char *zone_id, struct hadisc_set *out);

/* Frees the payloads and empties the set. Accepts NULL. */
void hadisc_set_free(struct hadisc_set *set);

/* Home Assistant's birth topic for cfg, into buf (for the daemon's
 * subscription). Returns its length, -EINVAL or -ENOSPC. */
int hadisc_birth_topic(const struct hadisc_config *cfg, char *buf, size_t size);

/* True when a message on topic (NUL-terminated) with len bytes of payload is
 * Home Assistant announcing it is online: the moment to publish every
 * config again. */
bool hadisc_is_birth(const struct hadisc_config *cfg, const char *topic, const void *payload, size_t len);

#endif
