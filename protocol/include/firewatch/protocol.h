/*
 * firewatch/protocol.h - the Firewatch v1 wire protocol, shared by the node
 * and the hub.
 *
 * Topics are built and parsed here, and every payload is encoded and strictly
 * decoded here, so both sides agree byte for byte on what is valid. Decoding
 * fills plain value structs owned by the caller: nothing allocated inside the
 * library outlives a call. docs/protocol.md is the normative description;
 * this header is its C face. Every exported name starts with fw_.
 */
#ifndef FIREWATCH_PROTOCOL_H
#define FIREWATCH_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FW_PROTOCOL_VERSION 1
#define FW_TOPIC_ROOT "firewatch/v1"

#define FW_ID_MAX 32        /* longest node or zone id, without the NUL */
#define FW_PAYLOAD_MAX 1024 /* longest payload in bytes */
#define FW_TOPIC_MAX 96     /* longest topic we ever build, with the NUL */
#define FW_JSON_DEPTH_MAX 8 /* deepest nesting accepted, counting the top object */
#define FW_FW_MAX 24        /* longest firmware version string */
#define FW_CMD_ID_MAX 36    /* longest command id */
#define FW_DETAIL_MAX 128   /* longest free-text detail in an event */

/* ts bounds: Unix milliseconds up to 2100-01-01. A node whose clock was never
 * set sends small values; those are accepted (the hub keeps its own receive
 * time) rather than losing an alarm over a clock. */
#define FW_TS_MAX INT64_C(4102444800000)

#define FW_TEMP_MIN (-40.0)
#define FW_TEMP_MAX 200.0
#define FW_INTERVAL_MIN 5     /* set interval_s lower bound, seconds */
#define FW_INTERVAL_MAX 86400 /* set interval_s upper bound, seconds */

/* What a topic carries. One value per row of the spec's topic table. */
enum fw_channel {
    FW_CH_NODE_STATUS,
    FW_CH_NODE_READING,
    FW_CH_NODE_EVENT,
    FW_CH_NODE_CMD,
    FW_CH_ZONE_ALARM,
    FW_CH_HUB_STATUS,
    FW_CH_COUNT
};

enum fw_node_kind { FW_KIND_SMOKE, FW_KIND_HEAT, FW_KIND_COMBO, FW_KIND_COUNT };

enum fw_event_type {
    FW_EV_ALARM,
    FW_EV_ALARM_CLEAR,
    FW_EV_SILENCE,
    FW_EV_TEST,
    FW_EV_TROUBLE,
    FW_EV_TROUBLE_CLEAR,
    FW_EV_TAMPER,
    FW_EV_CMD_RESULT,
    FW_EV_COUNT
};

/* Causes. Alarm events carry one of the first four; trouble and
 * trouble_clear events one of the trouble causes. */
enum fw_cause {
    FW_CAUSE_NONE,
    FW_CAUSE_SMOKE,
    FW_CAUSE_HEAT_FIXED,
    FW_CAUSE_HEAT_ROR,
    FW_CAUSE_BUTTON,
    FW_CAUSE_LOW_BATTERY,
    FW_CAUSE_SENSOR_FAULT,
    FW_CAUSE_SMOKE_FAULT,
    FW_CAUSE_COUNT
};

enum fw_cmd_kind { FW_CMD_SELFTEST, FW_CMD_SILENCE, FW_CMD_IDENTIFY, FW_CMD_SET, FW_CMD_COUNT };

/* Outcome carried by test and cmd_result events. */
enum fw_result {
    FW_RESULT_NONE,
    FW_RESULT_PASS,
    FW_RESULT_FAIL,
    FW_RESULT_OK,
    FW_RESULT_ERROR,
    FW_RESULT_COUNT
};

enum fw_alarm_state { FW_STATE_ALARM, FW_STATE_CLEAR, FW_STATE_COUNT };

/* A parsed topic: the channel and, for node and zone topics, the id. */
struct fw_topic {
    enum fw_channel channel;
    char id[FW_ID_MAX + 1]; /* empty for the hub status topic */
};

/* firewatch/v1/node/<node>/status. A birth has online=true and every field;
 * the will has online=false and boot only (has_birth_fields false). */
struct fw_status {
    bool online;
    uint32_t boot;
    bool has_birth_fields;
    char fw[FW_FW_MAX + 1];
    enum fw_node_kind kind;
    int64_t ts;
};

/* firewatch/v1/node/<node>/reading. */
struct fw_reading {
    uint32_t seq;
    int64_t ts;
    double temp_c;
    bool smoke;
    uint8_t batt_pct;
};

/* firewatch/v1/node/<node>/event. cause is required for alarm, trouble and
 * trouble_clear; result for test and cmd_result; cmd_id for cmd_result. */
struct fw_event {
    uint32_t seq;
    int64_t ts;
    enum fw_event_type type;
    enum fw_cause cause;
    enum fw_result result;
    char cmd_id[FW_CMD_ID_MAX + 1];
    char detail[FW_DETAIL_MAX + 1]; /* optional free text, may be empty */
};

/* firewatch/v1/node/<node>/cmd. interval_s only for FW_CMD_SET. */
struct fw_cmd {
    char id[FW_CMD_ID_MAX + 1];
    enum fw_cmd_kind cmd;
    uint32_t interval_s;
};

/* firewatch/v1/zone/<zone>/alarm. origin is required for state alarm. */
struct fw_zone_alarm {
    enum fw_alarm_state state;
    uint32_t incident;
    char origin[FW_ID_MAX + 1];
    int64_t ts;
};

/* firewatch/v1/hub/status. ts is required when online. */
struct fw_hub_status {
    bool online;
    int64_t ts;
};

/* One decoded message: channel says which member of u is valid. */
struct fw_msg {
    enum fw_channel channel;
    union {
        struct fw_status status;
        struct fw_reading reading;
        struct fw_event event;
        struct fw_cmd cmd;
        struct fw_zone_alarm alarm;
        struct fw_hub_status hub;
    } u;
};

/* Why a topic or payload was refused. Stable: the hub counts rejections by
 * these names in its metrics. */
enum fw_err {
    FW_OK = 0,
    FW_E_EMPTY,      /* zero-length payload */
    FW_E_TOO_LONG,   /* payload over FW_PAYLOAD_MAX or topic too long */
    FW_E_UTF8,       /* payload is not valid UTF-8 */
    FW_E_DEPTH,      /* nesting deeper than FW_JSON_DEPTH_MAX */
    FW_E_JSON,       /* not parseable JSON */
    FW_E_NOT_OBJECT, /* top level is not an object */
    FW_E_MISSING,    /* a required field is absent */
    FW_E_TYPE,       /* a field has the wrong JSON type */
    FW_E_RANGE,      /* a number out of range, not integral, or a string too long */
    FW_E_ENUM,       /* a string not in the field's list */
    FW_E_TOPIC,      /* topic not one of the v1 topics */
    FW_E_ID,         /* id in a topic or field is not [a-z0-9][a-z0-9-]{0,31} */
    FW_E_COUNT
};

/* A refusal: the code, the offending field (empty when not about a field),
 * and a one-line message fit for a log. */
struct fw_error {
    enum fw_err code;
    char field[24];
    char msg[128];
};

/* Returns the stable short name of an error code ("missing", "type", ...). */
const char *fw_err_name(enum fw_err code);

/* Names of enum values as they appear on the wire; NULL when out of range. */
const char *fw_channel_name(enum fw_channel ch);
const char *fw_kind_name(enum fw_node_kind kind);
const char *fw_event_type_name(enum fw_event_type type);
const char *fw_cause_name(enum fw_cause cause);
const char *fw_cmd_name(enum fw_cmd_kind cmd);
const char *fw_result_name(enum fw_result result);
const char *fw_state_name(enum fw_alarm_state state);

/* Wire name to enum value: 0 and *out set on success, -EINVAL otherwise. */
int fw_kind_parse(const char *s, enum fw_node_kind *out);
int fw_event_type_parse(const char *s, enum fw_event_type *out);
int fw_cause_parse(const char *s, enum fw_cause *out);
int fw_cmd_parse(const char *s, enum fw_cmd_kind *out);

/* True when the NUL-terminated id matches [a-z0-9][a-z0-9-]{0,31}. */
bool fw_id_valid(const char *id);

/* True when the n bytes at s are well-formed UTF-8 (no overlongs, no
 * surrogates, nothing above U+10FFFF). */
bool fw_utf8_valid(const char *s, size_t n);

/* Writes the topic for channel and id (id ignored for FW_CH_HUB_STATUS) into
 * buf. Returns the topic length, -EINVAL for a bad id or channel, or
 * -ENOSPC when buf is too small. */
int fw_topic_build(char *buf, size_t size, enum fw_channel ch, const char *id);

/* Parses a topic of len bytes (not necessarily NUL-terminated). Returns 0 and
 * fills out, or -EINVAL and fills err (FW_E_TOPIC, FW_E_ID, FW_E_TOO_LONG).
 * err may be NULL. */
int fw_topic_parse(const char *topic, size_t len, struct fw_topic *out, struct fw_error *err);

/* Strictly decodes a payload of len bytes for channel ch into out. Unknown
 * fields are ignored. Returns 0, or a negative errno with err filled:
 * -EMSGSIZE (too long), -EILSEQ (bad UTF-8), -EBADMSG (anything else).
 * err may be NULL. The payload need not be NUL-terminated. */
int fw_msg_decode(enum fw_channel ch, const char *payload, size_t len, struct fw_msg *out,
                  struct fw_error *err);

/* Encodes msg as compact JSON into buf (NUL-terminated). Returns the length
 * without the NUL, -EINVAL when msg holds an invalid value, -ENOSPC when it
 * does not fit in size, or -ENOMEM. */
int fw_msg_encode(const struct fw_msg *msg, char *buf, size_t size);

#endif
