/*
 * names.c - the wire names of every protocol enum, one table each, and the
 * lookups both ways. The tables are the single source of the spellings that
 * docs/protocol.md lists.
 */
#include <errno.h>
#include <string.h>

#include "firewatch/protocol.h"
#include "protocol_internal.h"

static const char *const err_names[FW_E_COUNT] = {
    [FW_OK] = "ok",
    [FW_E_EMPTY] = "empty",
    [FW_E_TOO_LONG] = "too_long",
    [FW_E_UTF8] = "utf8",
    [FW_E_DEPTH] = "depth",
    [FW_E_JSON] = "json",
    [FW_E_NOT_OBJECT] = "not_object",
    [FW_E_MISSING] = "missing",
    [FW_E_TYPE] = "type",
    [FW_E_RANGE] = "range",
    [FW_E_ENUM] = "enum",
    [FW_E_TOPIC] = "topic",
    [FW_E_ID] = "id",
};
static const char *const channel_names[FW_CH_COUNT] = {
    [FW_CH_NODE_STATUS] = "status", [FW_CH_NODE_READING] = "reading", [FW_CH_NODE_EVENT] = "event",
    [FW_CH_NODE_CMD] = "cmd",       [FW_CH_ZONE_ALARM] = "alarm",     [FW_CH_HUB_STATUS] = "hub_status",
};
static const char *const kind_names[FW_KIND_COUNT] = {"smoke", "heat", "combo"};
static const char *const event_names[FW_EV_COUNT] = {
    "alarm", "alarm_clear", "silence", "test", "trouble", "trouble_clear", "tamper", "cmd_result",
};
static const char *const cause_names[FW_CAUSE_COUNT] = {
    [FW_CAUSE_NONE] = "",
    [FW_CAUSE_SMOKE] = "smoke",
    [FW_CAUSE_HEAT_FIXED] = "heat_fixed",
    [FW_CAUSE_HEAT_ROR] = "heat_ror",
    [FW_CAUSE_BUTTON] = "button",
    [FW_CAUSE_LOW_BATTERY] = "low_battery",
    [FW_CAUSE_SENSOR_FAULT] = "sensor_fault",
    [FW_CAUSE_SMOKE_FAULT] = "smoke_fault",
};
static const char *const cmd_names[FW_CMD_COUNT] = {"selftest", "silence", "identify", "set"};
static const char *const result_names[FW_RESULT_COUNT] = {"", "pass", "fail", "ok", "error"};
static const char *const state_names[FW_STATE_COUNT] = {"alarm", "clear"};

static const char *name_at(const char *const *table, size_t n, unsigned v)
{
    return v < n ? table[v] : NULL;
}

/* Index of s in table (skipping empty names), or -1. */
static int index_of(const char *const *table, size_t n, const char *s)
{
    if (!s || !*s)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (table[i] && table[i][0] && strcmp(table[i], s) == 0)
            return (int)i;
    return -1;
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

const char *fw_err_name(enum fw_err c)
{
    return name_at(err_names, COUNT(err_names), c);
}
const char *fw_channel_name(enum fw_channel c)
{
    return name_at(channel_names, COUNT(channel_names), c);
}
const char *fw_kind_name(enum fw_node_kind k)
{
    return name_at(kind_names, COUNT(kind_names), k);
}
const char *fw_event_type_name(enum fw_event_type t)
{
    return name_at(event_names, COUNT(event_names), t);
}
const char *fw_cause_name(enum fw_cause c)
{
    return name_at(cause_names, COUNT(cause_names), c);
}
const char *fw_cmd_name(enum fw_cmd_kind c)
{
    return name_at(cmd_names, COUNT(cmd_names), c);
}
const char *fw_result_name(enum fw_result r)
{
    return name_at(result_names, COUNT(result_names), r);
}
const char *fw_state_name(enum fw_alarm_state s)
{
    return name_at(state_names, COUNT(state_names), s);
}

#define DEFINE_PARSE(fn, type, table)                                                                        \
    int fn(const char *s, type *out)                                                                         \
    {                                                                                                        \
        int i = index_of(table, COUNT(table), s);                                                            \
        if (i < 0)                                                                                           \
            return -EINVAL;                                                                                  \
        *out = (type)i;                                                                                      \
        return 0;                                                                                            \
    }

DEFINE_PARSE(fw_kind_parse, enum fw_node_kind, kind_names)
DEFINE_PARSE(fw_event_type_parse, enum fw_event_type, event_names)
DEFINE_PARSE(fw_cause_parse, enum fw_cause, cause_names)
DEFINE_PARSE(fw_cmd_parse, enum fw_cmd_kind, cmd_names)

DEFINE_PARSE(fw_result_parse_internal, enum fw_result, result_names)
DEFINE_PARSE(fw_state_parse_internal, enum fw_alarm_state, state_names)
