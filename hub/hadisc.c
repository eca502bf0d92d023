/*
 * hadisc.c - Home Assistant MQTT discovery configs (see hadisc.h and
 * docs/home-assistant.md).
 *
 * Every entity is one row of a table: its component, object id, name,
 * device class, which Firewatch v1 topic it reads and the template that
 * turns that topic's JSON into Home Assistant's state. Payloads are built
 * with cJSON, so names and versions from the database are always valid JSON.
 * Templates producing ON/OFF leave payload_on/payload_off at Home
 * Assistant's defaults ("ON"/"OFF"); a binary sensor fed by the event topic
 * renders "" for events that do not concern it, which Home Assistant
 * documents as "ignore this message".
 */
#include "hadisc.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XSTR(x) STR(x)
#define STR(x) #x

#define KIND_SMOKE (1u << FW_KIND_SMOKE)
#define KIND_HEAT (1u << FW_KIND_HEAT)
#define KIND_COMBO (1u << FW_KIND_COMBO)
#define KIND_ALL (KIND_SMOKE | KIND_HEAT | KIND_COMBO)

/* Availability from a Firewatch status payload ({"online":true,...}). */
#define ONLINE_TEMPLATE "{{ 'online' if value_json.online else 'offline' }}"

static const struct entity {
    const char *component;
    const char *object;
    const char *name;
    const char *device_class;
    enum fw_channel channel; /* the node topic it reads */
    const char *value_template;
    const char *unit;  /* sensors: unit_of_measurement */
    bool diagnostic;   /* entity_category diagnostic */
    bool availability; /* unavailable while the node is offline */
    bool expires;      /* expire_after: a value fed by periodic readings */
    int qos;           /* the state topic's QoS */
    unsigned kinds;    /* node kinds that have it */
} entities[] = {
    {"binary_sensor", "smoke", "Smoke", "smoke", FW_CH_NODE_READING,
     "{{ 'ON' if value_json.smoke else 'OFF' }}", NULL, false, true, true, 0, KIND_SMOKE | KIND_COMBO},
    {"binary_sensor", "heat", "Heat", "heat", FW_CH_NODE_EVENT,
     "{% if value_json.type == 'alarm' and value_json.cause in ['heat_fixed', 'heat_ror'] %}ON"
     "{% elif value_json.type == 'alarm_clear' %}OFF{% endif %}",
     NULL, false, true, false, 1, KIND_HEAT | KIND_COMBO},
    {"binary_sensor", "problem", "Sensor fault", "problem", FW_CH_NODE_EVENT,
     "{% if value_json.type in ['trouble', 'trouble_clear'] and value_json.cause in ['sensor_fault', "
     "'smoke_fault'] %}{{ 'ON' if value_json.type == 'trouble' else 'OFF' }}{% endif %}",
     NULL, true, true, false, 1, KIND_ALL},
    {"binary_sensor", "battery_low", "Battery low", "battery", FW_CH_NODE_READING,
     "{{ 'ON' if value_json.batt_pct < " XSTR(HADISC_LOW_BATT_PCT) " else 'OFF' }}", NULL, true, true, true,
     0, KIND_ALL},
    {"binary_sensor", "connectivity", "Connected", "connectivity", FW_CH_NODE_STATUS,
     "{{ 'ON' if value_json.online else 'OFF' }}", NULL, true, false, false, 1, KIND_ALL},
    {"sensor", "temperature", "Temperature", "temperature", FW_CH_NODE_READING, "{{ value_json.temp_c }}",
     "\xC2\xB0"
     "C",
     false, true, true, 0, KIND_ALL},
    {"sensor", "battery", "Battery", "battery", FW_CH_NODE_READING, "{{ value_json.batt_pct }}", "%", true,
     true, true, 0, KIND_ALL},
};
#define N_ENTITIES (sizeof entities / sizeof entities[0])

static const char *const kind_models[FW_KIND_COUNT] = {"Smoke detector", "Heat detector",
                                                       "Smoke and heat detector"};

static bool empty(const char *s)
{
    return !s || !*s;
}

static const char *prefix_of(const struct hadisc_config *cfg)
{
    return cfg && !empty(cfg->prefix) ? cfg->prefix : HADISC_PREFIX_DEFAULT;
}

/* A prefix is one or more topic levels without wildcards. */
static bool prefix_valid(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > HADISC_PREFIX_MAX || p[0] == '/' || p[n - 1] == '/' || strstr(p, "//"))
        return false;
    return strpbrk(p, "+#") == NULL;
}

static int topic(char *buf, const char *prefix, const char *component, const char *what, const char *id,
                 const char *object)
{
    int n = snprintf(buf, HADISC_TOPIC_MAX, "%s/%s/firewatch_%s_%s/%s/config", prefix, component, what, id,
                     object);
    return n > 0 && n < HADISC_TOPIC_MAX ? 0 : -EINVAL;
}

/* "firewatch_n_3f2a" from "n-3f2a": entity ids allow [a-z0-9_] only. */
static void entity_slug(char *buf, size_t size, const char *component, const char *what, const char *id,
                        const char *object)
{
    int n = snprintf(buf, size, "%s.firewatch_%s%s_%s", component, what, id, object);
    if (n < 0)
        return;
    for (char *p = buf + strlen(component) + 1; *p; p++)
        if (*p == '-')
            *p = '_';
}

/* Adds one string member; false when cJSON ran out of memory. */
static bool add_str(cJSON *o, const char *key, const char *value)
{
    return cJSON_AddStringToObject(o, key, value) != NULL;
}

static bool add_num(cJSON *o, const char *key, double value)
{
    return cJSON_AddNumberToObject(o, key, value) != NULL;
}

/* The "origin" block: who published the config (Home Assistant shows it in
 * its logs and device page). */
static bool add_origin(cJSON *o, const struct hadisc_config *cfg)
{
    cJSON *org = cJSON_AddObjectToObject(o, "origin");
    if (!org || !add_str(org, "name", "Firewatch"))
        return false;
    if (cfg && !empty(cfg->sw_version) && !add_str(org, "sw_version", cfg->sw_version))
        return false;
    if (cfg && !empty(cfg->support_url) && !add_str(org, "support_url", cfg->support_url))
        return false;
    return true;
}

/* Prints o into the next message of out and frees o. */
static int emit(struct hadisc_set *out, const char *topic_buf, cJSON *o)
{
    if (!o)
        return -ENOMEM;
    if (out->n >= HADISC_MSGS_MAX) {
        cJSON_Delete(o);
        return -EINVAL;
    }
    char *json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!json)
        return -ENOMEM;
    struct hadisc_msg *m = &out->msg[out->n++];
    snprintf(m->topic, sizeof m->topic, "%s", topic_buf);
    m->payload = json;
    m->len = strlen(json);
    return 0;
}

static cJSON *node_device(const struct hadisc_node *node)
{
    cJSON *dev = cJSON_CreateObject();
    if (!dev)
        return NULL;
    char buf[64];
    bool ok = true;
    cJSON *ids = cJSON_AddArrayToObject(dev, "identifiers");
    snprintf(buf, sizeof buf, "firewatch_node_%s", node->id);
    ok = ids && cJSON_AddItemToArray(ids, cJSON_CreateString(buf));
    snprintf(buf, sizeof buf, "Firewatch %s", node->id);
    ok = ok && add_str(dev, "name", buf);
    ok = ok && add_str(dev, "manufacturer", "Firewatch");
    ok = ok && add_str(dev, "model", kind_models[node->kind]);
    if (!empty(node->fw))
        ok = ok && add_str(dev, "sw_version", node->fw);
    if (!empty(node->room))
        ok = ok && add_str(dev, "suggested_area", node->room);
    if (!ok) {
        cJSON_Delete(dev);
        return NULL;
    }
    return dev;
}

int hadisc_node_configs(const struct hadisc_config *cfg, const struct hadisc_node *node,
                        struct hadisc_set *out)
{
    if (!out)
        return -EINVAL;
    out->n = 0;
    const char *prefix = prefix_of(cfg);
    if (!node || !node->id || !fw_id_valid(node->id) || (unsigned)node->kind >= FW_KIND_COUNT ||
        !prefix_valid(prefix))
        return -EINVAL;
    if ((!empty(node->zone) && !fw_id_valid(node->zone)) ||
        (!empty(node->household) && !fw_id_valid(node->household)))
        return -EINVAL;

    char status[FW_TOPIC_MAX], reading[FW_TOPIC_MAX], event[FW_TOPIC_MAX];
    if (fw_topic_build(status, sizeof status, FW_CH_NODE_STATUS, node->id) < 0 ||
        fw_topic_build(reading, sizeof reading, FW_CH_NODE_READING, node->id) < 0 ||
        fw_topic_build(event, sizeof event, FW_CH_NODE_EVENT, node->id) < 0)
        return -EINVAL;
    int interval = node->interval_s > 0 ? node->interval_s : HADISC_INTERVAL_DEFAULT;
    /* The hub's supervision window: a value older than 3 intervals + 30 s
     * means the node stopped reporting. */
    double expire = 3.0 * interval + 30.0;

    for (size_t i = 0; i < N_ENTITIES; i++) {
        const struct entity *e = &entities[i];
        if (!(e->kinds & (1u << node->kind)))
            continue;
        char t[HADISC_TOPIC_MAX], buf[128];
        if (topic(t, prefix, e->component, "node", node->id, e->object) < 0)
            return -EINVAL;
        cJSON *o = cJSON_CreateObject();
        if (!o)
            return -ENOMEM;
        bool ok = add_str(o, "name", e->name);
        snprintf(buf, sizeof buf, "firewatch_node_%s_%s", node->id, e->object);
        ok = ok && add_str(o, "unique_id", buf);
        entity_slug(buf, sizeof buf, e->component, "", node->id, e->object);
        ok = ok && add_str(o, "default_entity_id", buf);
        ok = ok && add_str(o, "device_class", e->device_class);
        const char *st = e->channel == FW_CH_NODE_STATUS  ? status
                         : e->channel == FW_CH_NODE_EVENT ? event
                                                          : reading;
        ok = ok && add_str(o, "state_topic", st);
        ok = ok && add_str(o, "value_template", e->value_template);
        if (e->qos)
            ok = ok && add_num(o, "qos", e->qos);
        if (e->unit) {
            ok = ok && add_str(o, "unit_of_measurement", e->unit);
            ok = ok && add_str(o, "state_class", "measurement");
        }
        if (strcmp(e->object, "temperature") == 0)
            ok = ok && add_num(o, "suggested_display_precision", 1);
        if (e->expires)
            ok = ok && add_num(o, "expire_after", expire);
        if (e->availability) {
            ok = ok && add_str(o, "availability_topic", status);
            ok = ok && add_str(o, "availability_template", ONLINE_TEMPLATE);
        }
        if (e->diagnostic)
            ok = ok && add_str(o, "entity_category", "diagnostic");
        cJSON *dev = ok ? node_device(node) : NULL;
        if (dev && !cJSON_AddItemToObject(o, "device", dev)) {
            cJSON_Delete(dev);
            dev = NULL;
        }
        ok = ok && dev && add_origin(o, cfg);
        if (!ok) {
            cJSON_Delete(o);
            return -ENOMEM;
        }
        int rc = emit(out, t, o);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int hadisc_zone_configs(const struct hadisc_config *cfg, const struct hadisc_zone *zone,
                        struct hadisc_set *out)
{
    if (!out)
        return -EINVAL;
    out->n = 0;
    const char *prefix = prefix_of(cfg);
    if (!zone || !zone->id || !fw_id_valid(zone->id) || !prefix_valid(prefix))
        return -EINVAL;
    char alarm[FW_TOPIC_MAX], hub[FW_TOPIC_MAX], t[HADISC_TOPIC_MAX], buf[128];
    if (fw_topic_build(alarm, sizeof alarm, FW_CH_ZONE_ALARM, zone->id) < 0 ||
        fw_topic_build(hub, sizeof hub, FW_CH_HUB_STATUS, NULL) < 0 ||
        topic(t, prefix, "binary_sensor", "zone", zone->id, "alarm") < 0)
        return -EINVAL;

    cJSON *o = cJSON_CreateObject();
    if (!o)
        return -ENOMEM;
    bool ok = add_str(o, "name", "Fire alarm");
    snprintf(buf, sizeof buf, "firewatch_zone_%s_alarm", zone->id);
    ok = ok && add_str(o, "unique_id", buf);
    entity_slug(buf, sizeof buf, "binary_sensor", "zone_", zone->id, "alarm");
    ok = ok && add_str(o, "default_entity_id", buf);
    ok = ok && add_str(o, "device_class", "safety");
    ok = ok && add_str(o, "state_topic", alarm);
    ok = ok && add_str(o, "value_template", "{{ 'ON' if value_json.state == 'alarm' else 'OFF' }}");
    ok = ok && add_num(o, "qos", 1);
    /* state, incident, origin and ts of the zone's alarm as attributes. */
    ok = ok && add_str(o, "json_attributes_topic", alarm);
    /* The retained zone state is only current while the hub runs. */
    ok = ok && add_str(o, "availability_topic", hub);
    ok = ok && add_str(o, "availability_template", ONLINE_TEMPLATE);

    cJSON *dev = ok ? cJSON_AddObjectToObject(o, "device") : NULL;
    cJSON *ids = dev ? cJSON_AddArrayToObject(dev, "identifiers") : NULL;
    snprintf(buf, sizeof buf, "firewatch_zone_%s", zone->id);
    ok = ids && cJSON_AddItemToArray(ids, cJSON_CreateString(buf));
    /* "Firewatch <zone name>": names have no length limit here. */
    const char *name = empty(zone->name) ? zone->id : zone->name;
    size_t n = sizeof "Firewatch " + strlen(name);
    char *full = malloc(n);
    if (full)
        snprintf(full, n, "Firewatch %s", name);
    ok = ok && full && add_str(dev, "name", full);
    free(full);
    ok = ok && add_str(dev, "manufacturer", "Firewatch");
    ok = ok && add_str(dev, "model", "Household group alarm");
    if (!empty(zone->site))
        ok = ok && add_str(dev, "suggested_area", zone->site);
    ok = ok && add_origin(o, cfg);
    if (!ok) {
        cJSON_Delete(o);
        return -ENOMEM;
    }
    return emit(out, t, o);
}

int hadisc_node_removal(const struct hadisc_config *cfg, const char *node_id, struct hadisc_set *out)
{
    if (!out)
        return -EINVAL;
    out->n = 0;
    const char *prefix = prefix_of(cfg);
    if (!node_id || !fw_id_valid(node_id) || !prefix_valid(prefix))
        return -EINVAL;
    for (size_t i = 0; i < N_ENTITIES && out->n < HADISC_MSGS_MAX; i++) {
        struct hadisc_msg *m = &out->msg[out->n];
        if (topic(m->topic, prefix, entities[i].component, "node", node_id, entities[i].object) < 0)
            return -EINVAL;
        m->payload = NULL;
        m->len = 0;
        out->n++;
    }
    return 0;
}

int hadisc_zone_removal(const struct hadisc_config *cfg, const char *zone_id, struct hadisc_set *out)
{
    if (!out)
        return -EINVAL;
    out->n = 0;
    const char *prefix = prefix_of(cfg);
    if (!zone_id || !fw_id_valid(zone_id) || !prefix_valid(prefix))
        return -EINVAL;
    struct hadisc_msg *m = &out->msg[0];
    if (topic(m->topic, prefix, "binary_sensor", "zone", zone_id, "alarm") < 0)
        return -EINVAL;
    m->payload = NULL;
    m->len = 0;
    out->n = 1;
    return 0;
}

void hadisc_set_free(struct hadisc_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n && i < HADISC_MSGS_MAX; i++) {
        cJSON_free(set->msg[i].payload);
        set->msg[i].payload = NULL;
        set->msg[i].len = 0;
    }
    set->n = 0;
}

int hadisc_birth_topic(const struct hadisc_config *cfg, char *buf, size_t size)
{
    if (!buf || size == 0)
        return -EINVAL;
    int n;
    if (cfg && !empty(cfg->birth_topic)) {
        n = snprintf(buf, size, "%s", cfg->birth_topic);
    } else {
        const char *prefix = prefix_of(cfg);
        if (!prefix_valid(prefix))
            return -EINVAL;
        n = snprintf(buf, size, "%s/status", prefix);
    }
    if (n < 0 || (size_t)n >= size)
        return -ENOSPC;
    return n;
}

bool hadisc_is_birth(const struct hadisc_config *cfg, const char *topic_name, const void *payload, size_t len)
{
    char birth[HADISC_TOPIC_MAX];
    if (!topic_name || (len > 0 && !payload) || hadisc_birth_topic(cfg, birth, sizeof birth) < 0)
        return false;
    size_t pl = strlen(HADISC_BIRTH_PAYLOAD);
    return strcmp(topic_name, birth) == 0 && len == pl && memcmp(payload, HADISC_BIRTH_PAYLOAD, pl) == 0;
}
