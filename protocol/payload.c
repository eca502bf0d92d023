/*
 * payload.c - strict decoding and encoding of v1 payloads.
 *
 * Decoding is layered so each layer refuses what it owns, cheapest first:
 * size, embedded NUL and UTF-8 (cJSON checks neither), nesting depth (before
 * cJSON recurses), then cJSON parses, then one reader per message type pulls
 * the fields it needs with a typed getter that names the field on refusal.
 * Encoding builds the object with cJSON and then decodes its own output, so
 * the library can never send what it would refuse.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "firewatch/protocol.h"
#include "protocol_internal.h"

void fw_error_set(struct fw_error *err, enum fw_err code, const char *field, const char *fmt, ...)
{
    if (!err)
        return;
    err->code = code;
    snprintf(err->field, sizeof err->field, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
}

bool fw_utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        unsigned cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
}

int fw_json_depth(const char *s, size_t n, int limit)
{
    int depth = 0, max = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max)
                max = depth;
            if (max > limit)
                return limit + 1;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return max;
}

/* ---- typed field getters --------------------------------------------------
 * Each returns 1 when the field was present and valid, 0 when it was absent
 * and not required, and -1 (with err filled) otherwise. */

static const cJSON *field(const cJSON *obj, const char *name, bool required, struct fw_error *err, int *rc)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!it || cJSON_IsNull(it)) {
        *rc = required ? -1 : 0;
        if (required)
            fw_error_set(err, FW_E_MISSING, name, "required field '%s' is missing", name);
        return NULL;
    }
    *rc = 1;
    return it;
}

static int get_int(const cJSON *obj, const char *name, bool required, double lo, double hi, double *out,
                   struct fw_error *err)
{
    int rc;
    const cJSON *it = field(obj, name, required, err, &rc);
    if (!it)
        return rc;
    if (!cJSON_IsNumber(it)) {
        fw_error_set(err, FW_E_TYPE, name, "field '%s' must be a number", name);
        return -1;
    }
    double d = it->valuedouble;
    if (!isfinite(d) || d != floor(d) || d < lo || d > hi) {
        fw_error_set(err, FW_E_RANGE, name, "field '%s' must be an integer in %.0f..%.0f", name, lo, hi);
        return -1;
    }
    *out = d;
    return 1;
}

static int get_u32(const cJSON *obj, const char *name, bool required, uint32_t *out, struct fw_error *err)
{
    double d = 0;
    int rc = get_int(obj, name, required, 0, 4294967295.0, &d, err);
    if (rc == 1)
        *out = (uint32_t)d;
    return rc;
}

static int get_ts(const cJSON *obj, bool required, int64_t *out, struct fw_error *err)
{
    double d = 0;
    int rc = get_int(obj, "ts", required, 0, (double)FW_TS_MAX, &d, err);
    if (rc == 1)
        *out = (int64_t)d;
    return rc;
}

static int get_bool(const cJSON *obj, const char *name, bool required, bool *out, struct fw_error *err)
{
    int rc;
    const cJSON *it = field(obj, name, required, err, &rc);
    if (!it)
        return rc;
    if (!cJSON_IsBool(it)) {
        fw_error_set(err, FW_E_TYPE, name, "field '%s' must be true or false", name);
        return -1;
    }
    *out = cJSON_IsTrue(it);
    return 1;
}

/* Copies a string field into out (size bytes with the NUL). */
static int get_str(const cJSON *obj, const char *name, bool required, char *out, size_t size,
                   struct fw_error *err)
{
    int rc;
    const cJSON *it = field(obj, name, required, err, &rc);
    if (!it)
        return rc;
    if (!cJSON_IsString(it)) {
        fw_error_set(err, FW_E_TYPE, name, "field '%s' must be a string", name);
        return -1;
    }
    size_t n = strlen(it->valuestring);
    if (n >= size) {
        fw_error_set(err, FW_E_RANGE, name, "field '%s' is longer than %zu bytes", name, size - 1);
        return -1;
    }
    memcpy(out, it->valuestring, n + 1);
    return 1;
}

/* Reads a string field and maps it through parse; FW_E_ENUM when unknown. */
static int get_enum(const cJSON *obj, const char *name, bool required, int (*parse)(const char *, int *),
                    int *out, struct fw_error *err)
{
    char buf[32];
    int rc = get_str(obj, name, required, buf, sizeof buf, err);
    if (rc != 1) {
        if (rc < 0 && err && err->code == FW_E_RANGE)
            fw_error_set(err, FW_E_ENUM, name, "field '%s' has an unknown value", name);
        return rc;
    }
    if (parse(buf, out) < 0) {
        fw_error_set(err, FW_E_ENUM, name, "field '%s' has unknown value '%s'", name, buf);
        return -1;
    }
    return 1;
}

/* Adapters from the typed public parsers to get_enum's int form. */
#define ENUM_ADAPTER(name, fn, type)                                                                         \
    static int name(const char *s, int *out)                                                                 \
    {                                                                                                        \
        type v;                                                                                              \
        if (fn(s, &v) < 0)                                                                                   \
            return -1;                                                                                       \
        *out = (int)v;                                                                                       \
        return 0;                                                                                            \
    }
ENUM_ADAPTER(p_kind, fw_kind_parse, enum fw_node_kind)
ENUM_ADAPTER(p_type, fw_event_type_parse, enum fw_event_type)
ENUM_ADAPTER(p_cause, fw_cause_parse, enum fw_cause)
ENUM_ADAPTER(p_cmd, fw_cmd_parse, enum fw_cmd_kind)
ENUM_ADAPTER(p_result, fw_result_parse_internal, enum fw_result)
ENUM_ADAPTER(p_state, fw_state_parse_internal, enum fw_alarm_state)

/* ---- one reader per channel -------------------------------------------- */

static int read_status(const cJSON *o, struct fw_status *s, struct fw_error *err)
{
    if (get_bool(o, "online", true, &s->online, err) < 0 || get_u32(o, "boot", true, &s->boot, err) < 0)
        return -1;
    bool req = s->online; /* a will carries only online and boot */
    int a = get_str(o, "fw", req, s->fw, sizeof s->fw, err);
    if (a < 0)
        return -1;
    int v = 0;
    int b = get_enum(o, "kind", req, p_kind, &v, err);
    if (b < 0)
        return -1;
    s->kind = (enum fw_node_kind)v;
    int c = get_ts(o, req, &s->ts, err);
    if (c < 0)
        return -1;
    s->has_birth_fields = a == 1 && b == 1 && c == 1;
    return 0;
}

static int read_reading(const cJSON *o, struct fw_reading *r, struct fw_error *err)
{
    double batt = 0;
    if (get_u32(o, "seq", true, &r->seq, err) < 0 || get_ts(o, true, &r->ts, err) < 0)
        return -1;
    int rc;
    const cJSON *t = field(o, "temp_c", true, err, &rc);
    if (!t)
        return -1;
    if (!cJSON_IsNumber(t)) {
        fw_error_set(err, FW_E_TYPE, "temp_c", "field 'temp_c' must be a number");
        return -1;
    }
    if (!isfinite(t->valuedouble) || t->valuedouble < FW_TEMP_MIN || t->valuedouble > FW_TEMP_MAX) {
        fw_error_set(err, FW_E_RANGE, "temp_c", "field 'temp_c' must be in -40..200");
        return -1;
    }
    r->temp_c = t->valuedouble;
    if (get_bool(o, "smoke", true, &r->smoke, err) < 0 ||
        get_int(o, "batt_pct", true, 0, 100, &batt, err) < 0)
        return -1;
    r->batt_pct = (uint8_t)batt;
    return 0;
}

static bool is_alarm_cause(enum fw_cause c)
{
    return c == FW_CAUSE_SMOKE || c == FW_CAUSE_HEAT_FIXED || c == FW_CAUSE_HEAT_ROR || c == FW_CAUSE_BUTTON;
}

static int read_event(const cJSON *o, struct fw_event *e, struct fw_error *err)
{
    int v = 0;
    if (get_u32(o, "seq", true, &e->seq, err) < 0 || get_ts(o, true, &e->ts, err) < 0 ||
        get_enum(o, "type", true, p_type, &v, err) < 0)
        return -1;
    e->type = (enum fw_event_type)v;

    bool alarmish = e->type == FW_EV_ALARM;
    bool troubleish = e->type == FW_EV_TROUBLE || e->type == FW_EV_TROUBLE_CLEAR;
    v = 0;
    int rc = get_enum(o, "cause", alarmish || troubleish, p_cause, &v, err);
    if (rc < 0)
        return -1;
    e->cause = (enum fw_cause)v;
    if (rc == 1 && (alarmish || e->type == FW_EV_ALARM_CLEAR) && !is_alarm_cause(e->cause)) {
        fw_error_set(err, FW_E_ENUM, "cause", "cause '%s' is not an alarm cause", fw_cause_name(e->cause));
        return -1;
    }
    if (rc == 1 && troubleish && is_alarm_cause(e->cause)) {
        fw_error_set(err, FW_E_ENUM, "cause", "cause '%s' is not a trouble cause", fw_cause_name(e->cause));
        return -1;
    }

    bool needs_result = e->type == FW_EV_TEST || e->type == FW_EV_CMD_RESULT;
    v = 0;
    rc = get_enum(o, "result", needs_result, p_result, &v, err);
    if (rc < 0)
        return -1;
    e->result = (enum fw_result)v;
    if (rc == 1) {
        bool test_res = e->result == FW_RESULT_PASS || e->result == FW_RESULT_FAIL;
        if ((e->type == FW_EV_TEST && !test_res) || (e->type == FW_EV_CMD_RESULT && test_res)) {
            fw_error_set(err, FW_E_ENUM, "result", "result '%s' does not fit a %s event",
                         fw_result_name(e->result), fw_event_type_name(e->type));
            return -1;
        }
    }
    if (get_str(o, "cmd_id", e->type == FW_EV_CMD_RESULT, e->cmd_id, sizeof e->cmd_id, err) < 0 ||
        get_str(o, "detail", false, e->detail, sizeof e->detail, err) < 0)
        return -1;
    if (e->type == FW_EV_CMD_RESULT && e->cmd_id[0] == '\0') {
        fw_error_set(err, FW_E_RANGE, "cmd_id", "field 'cmd_id' must not be empty");
        return -1;
    }
    return 0;
}

static int read_cmd(const cJSON *o, struct fw_cmd *c, struct fw_error *err)
{
    double iv = 0;
    if (get_str(o, "id", true, c->id, sizeof c->id, err) < 0)
        return -1;
    if (c->id[0] == '\0') {
        fw_error_set(err, FW_E_RANGE, "id", "field 'id' must not be empty");
        return -1;
    }
    int v = 0;
    if (get_enum(o, "cmd", true, p_cmd, &v, err) < 0)
        return -1;
    c->cmd = (enum fw_cmd_kind)v;
    if (get_int(o, "interval_s", c->cmd == FW_CMD_SET, FW_INTERVAL_MIN, FW_INTERVAL_MAX, &iv, err) < 0)
        return -1;
    c->interval_s = (uint32_t)iv;
    return 0;
}

static int read_alarm(const cJSON *o, struct fw_zone_alarm *a, struct fw_error *err)
{
    int v = 0;
    if (get_enum(o, "state", true, p_state, &v, err) < 0)
        return -1;
    a->state = (enum fw_alarm_state)v;
    if (get_u32(o, "incident", true, &a->incident, err) < 0 || get_ts(o, true, &a->ts, err) < 0)
        return -1;
    int rc = get_str(o, "origin", a->state == FW_STATE_ALARM, a->origin, sizeof a->origin, err);
    if (rc < 0)
        return -1;
    if (rc == 1 && !fw_id_valid(a->origin)) {
        fw_error_set(err, FW_E_ID, "origin", "field 'origin' is not a valid node id");
        return -1;
    }
    return 0;
}

static int read_hub(const cJSON *o, struct fw_hub_status *h, struct fw_error *err)
{
    if (get_bool(o, "online", true, &h->online, err) < 0 || get_ts(o, h->online, &h->ts, err) < 0)
        return -1;
    return 0;
}

int fw_msg_decode(enum fw_channel ch, const char *payload, size_t len, struct fw_msg *out,
                  struct fw_error *err)
{
    char buf[FW_PAYLOAD_MAX + 1];
    struct fw_error scratch;

    if (!err)
        err = &scratch;
    fw_error_set(err, FW_OK, "", "ok");
    if (!out || (unsigned)ch >= FW_CH_COUNT) {
        fw_error_set(err, FW_E_TOPIC, "", "unknown channel");
        return -EBADMSG;
    }
    memset(out, 0, sizeof *out);
    out->channel = ch;
    if (!payload || len == 0) {
        fw_error_set(err, FW_E_EMPTY, "", "empty payload");
        return -EBADMSG;
    }
    if (len > FW_PAYLOAD_MAX) {
        fw_error_set(err, FW_E_TOO_LONG, "", "payload of %zu bytes is over the %d-byte limit", len,
                     FW_PAYLOAD_MAX);
        return -EMSGSIZE;
    }
    if (memchr(payload, '\0', len)) {
        fw_error_set(err, FW_E_JSON, "", "payload contains a NUL byte");
        return -EBADMSG;
    }
    if (!fw_utf8_valid(payload, len)) {
        fw_error_set(err, FW_E_UTF8, "", "payload is not valid UTF-8");
        return -EILSEQ;
    }
    if (fw_json_depth(payload, len, FW_JSON_DEPTH_MAX) > FW_JSON_DEPTH_MAX) {
        fw_error_set(err, FW_E_DEPTH, "", "JSON nested deeper than %d levels", FW_JSON_DEPTH_MAX);
        return -EBADMSG;
    }
    memcpy(buf, payload, len);
    buf[len] = '\0';

    cJSON *root = cJSON_ParseWithOpts(buf, NULL, 1);
    if (!root) {
        fw_error_set(err, FW_E_JSON, "", "payload is not valid JSON");
        return -EBADMSG;
    }
    int rc = -1;
    if (!cJSON_IsObject(root)) {
        fw_error_set(err, FW_E_NOT_OBJECT, "", "payload must be a JSON object");
    } else {
        switch (ch) {
        case FW_CH_NODE_STATUS: rc = read_status(root, &out->u.status, err); break;
        case FW_CH_NODE_READING: rc = read_reading(root, &out->u.reading, err); break;
        case FW_CH_NODE_EVENT: rc = read_event(root, &out->u.event, err); break;
        case FW_CH_NODE_CMD: rc = read_cmd(root, &out->u.cmd, err); break;
        case FW_CH_ZONE_ALARM: rc = read_alarm(root, &out->u.alarm, err); break;
        case FW_CH_HUB_STATUS: rc = read_hub(root, &out->u.hub, err); break;
        case FW_CH_COUNT: break;
        }
    }
    cJSON_Delete(root);
    return rc < 0 ? -EBADMSG : 0;
}

/* ---- encoding ----------------------------------------------------------- */

/* Adds name to o only when s is non-empty. */
static void add_opt_str(cJSON *o, const char *name, const char *s)
{
    if (s && *s)
        cJSON_AddStringToObject(o, name, s);
}

static bool build(const struct fw_msg *m, cJSON *o)
{
    switch (m->channel) {
    case FW_CH_NODE_STATUS: {
        const struct fw_status *s = &m->u.status;
        cJSON_AddBoolToObject(o, "online", s->online);
        cJSON_AddNumberToObject(o, "boot", s->boot);
        if (s->online || s->has_birth_fields) {
            if (!fw_kind_name(s->kind))
                return false;
            cJSON_AddStringToObject(o, "fw", s->fw);
            cJSON_AddStringToObject(o, "kind", fw_kind_name(s->kind));
            cJSON_AddNumberToObject(o, "ts", (double)s->ts);
        }
        return true;
    }
    case FW_CH_NODE_READING: {
        const struct fw_reading *r = &m->u.reading;
        cJSON_AddNumberToObject(o, "seq", r->seq);
        cJSON_AddNumberToObject(o, "ts", (double)r->ts);
        /* One decimal is the sensors' real resolution and keeps payloads short. */
        cJSON_AddNumberToObject(o, "temp_c", round(r->temp_c * 10.0) / 10.0);
        cJSON_AddBoolToObject(o, "smoke", r->smoke);
        cJSON_AddNumberToObject(o, "batt_pct", r->batt_pct);
        return true;
    }
    case FW_CH_NODE_EVENT: {
        const struct fw_event *e = &m->u.event;
        if (!fw_event_type_name(e->type) || !fw_cause_name(e->cause) || !fw_result_name(e->result))
            return false;
        cJSON_AddNumberToObject(o, "seq", e->seq);
        cJSON_AddNumberToObject(o, "ts", (double)e->ts);
        cJSON_AddStringToObject(o, "type", fw_event_type_name(e->type));
        add_opt_str(o, "cause", fw_cause_name(e->cause));
        add_opt_str(o, "result", fw_result_name(e->result));
        add_opt_str(o, "cmd_id", e->cmd_id);
        add_opt_str(o, "detail", e->detail);
        return true;
    }
    case FW_CH_NODE_CMD: {
        const struct fw_cmd *c = &m->u.cmd;
        if (!fw_cmd_name(c->cmd))
            return false;
        cJSON_AddStringToObject(o, "id", c->id);
        cJSON_AddStringToObject(o, "cmd", fw_cmd_name(c->cmd));
        if (c->cmd == FW_CMD_SET)
            cJSON_AddNumberToObject(o, "interval_s", c->interval_s);
        return true;
    }
    case FW_CH_ZONE_ALARM: {
        const struct fw_zone_alarm *a = &m->u.alarm;
        if (!fw_state_name(a->state))
            return false;
        cJSON_AddStringToObject(o, "state", fw_state_name(a->state));
        cJSON_AddNumberToObject(o, "incident", a->incident);
        add_opt_str(o, "origin", a->origin);
        cJSON_AddNumberToObject(o, "ts", (double)a->ts);
        return true;
    }
    case FW_CH_HUB_STATUS:
        cJSON_AddBoolToObject(o, "online", m->u.hub.online);
        if (m->u.hub.online)
            cJSON_AddNumberToObject(o, "ts", (double)m->u.hub.ts);
        return true;
    case FW_CH_COUNT: break;
    }
    return false;
}

int fw_msg_encode(const struct fw_msg *msg, char *buf, size_t size)
{
    /* cJSON_PrintPreallocated wants a few bytes of slack, so print into a
     * buffer with room to spare and copy out what fits. */
    char tmp[FW_PAYLOAD_MAX + 64];
    struct fw_msg check;

    if (!msg || !buf || (unsigned)msg->channel >= FW_CH_COUNT)
        return -EINVAL;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return -ENOMEM;
    bool ok = build(msg, o);
    int printed = ok && cJSON_PrintPreallocated(o, tmp, (int)sizeof tmp, 0);
    cJSON_Delete(o);
    if (!ok)
        return -EINVAL;
    if (!printed)
        return -EINVAL; /* longer than any valid payload */
    size_t n = strlen(tmp);
    if (fw_msg_decode(msg->channel, tmp, n, &check, NULL) < 0)
        return -EINVAL;
    if (n + 1 > size)
        return -ENOSPC;
    memcpy(buf, tmp, n + 1);
    return (int)n;
}
