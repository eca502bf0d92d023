/*
 * fed.c - see fed.h. Documents go through cJSON both ways; every field a
 * regional hub keeps is checked for type, range and length before it is
 * believed, since a regional broker hears from many hubs run by many people.
 */
#include "fed.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[FED_KIND_COUNT] = {[FED_HUB] = "hub",
                                                       [FED_READINESS] = "readiness",
                                                       [FED_BRIDGE] = "bridge",
                                                       [FED_INCIDENT] = "incident",
                                                       [FED_CAP] = "cap"};

static int fit(int n, size_t size)
{
    if (n < 0)
        return -EINVAL;
    return (size_t)n >= size ? -ENOSPC : n;
}

int fed_topic(char *buf, size_t size, const char *area, enum fed_kind kind, uint32_t id)
{
    if (!buf || !area || !fw_id_valid(area) || (int)kind < 0 || kind >= FED_KIND_COUNT)
        return -EINVAL;
    bool with_id = kind == FED_INCIDENT || kind == FED_CAP;
    if (with_id && id == 0)
        return -EINVAL;
    if (with_id)
        return fit(snprintf(buf, size, FED_ROOT "/%s/%s/%u", area, kind_names[kind], id), size);
    return fit(snprintf(buf, size, FED_ROOT "/%s/%s", area, kind_names[kind]), size);
}

int fed_topic_filter(char *buf, size_t size, const char *area)
{
    if (!buf || (area && !fw_id_valid(area)))
        return -EINVAL;
    return fit(snprintf(buf, size, FED_ROOT "/%s/#", area ? area : "+"), size);
}

int fed_topic_parse(const char *topic, size_t len, char area[FW_ID_MAX + 1], enum fed_kind *kind,
                    uint32_t *id)
{
    static const char root[] = FED_ROOT "/";
    if (!topic || len <= sizeof root - 1 || len >= FED_TOPIC_MAX || memcmp(topic, root, sizeof root - 1) != 0)
        return -EINVAL;
    char t[FED_TOPIC_MAX];
    memcpy(t, topic + sizeof root - 1, len - (sizeof root - 1));
    t[len - (sizeof root - 1)] = '\0';
    if (memchr(t, '\0', len - (sizeof root - 1)))
        return -EINVAL;
    char *slash = strchr(t, '/');
    if (!slash)
        return -EINVAL;
    *slash = '\0';
    if (!fw_id_valid(t))
        return -EINVAL;
    const char *rest = slash + 1;
    char *slash2 = strchr(rest, '/');
    size_t klen = slash2 ? (size_t)(slash2 - rest) : strlen(rest);
    for (int k = 0; k < FED_KIND_COUNT; k++) {
        if (strlen(kind_names[k]) != klen || memcmp(kind_names[k], rest, klen) != 0)
            continue;
        bool with_id = k == FED_INCIDENT || k == FED_CAP;
        uint32_t v = 0;
        if (with_id) {
            const char *d = slash2 ? slash2 + 1 : "";
            size_t nd = strlen(d);
            if (nd == 0 || nd > 10 || d[0] == '0' || strspn(d, "0123456789") != nd)
                return -EINVAL;
            unsigned long long x = strtoull(d, NULL, 10);
            if (x == 0 || x > UINT32_MAX)
                return -EINVAL;
            v = (uint32_t)x;
        } else if (slash2) {
            return -EINVAL;
        }
        memcpy(area, t, strlen(t) + 1); /* fw_id_valid: at most FW_ID_MAX */
        *kind = (enum fed_kind)k;
        *id = v;
        return 0;
    }
    return -EINVAL;
}

int fed_area_user(char *buf, size_t size, const char *area)
{
    if (!buf || !area || !fw_id_valid(area))
        return -EINVAL;
    return fit(snprintf(buf, size, FED_AREA_USER_PREFIX "%s", area), size);
}

static const char *const states[] = {"verifying", "alarm", "acknowledged", "cleared", "dismissed"};

static bool state_valid(const char *s)
{
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++)
        if (strcmp(s, states[i]) == 0)
            return true;
    return false;
}

bool fed_state_closed(const char *state)
{
    return state && (strcmp(state, "cleared") == 0 || strcmp(state, "dismissed") == 0);
}

static bool kind_valid(const char *k)
{
    return strcmp(k, "fire") == 0 || strcmp(k, "drill") == 0;
}

/* Free text the regional view shows: valid UTF-8, no control characters. */
static bool text_ok(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return fw_utf8_valid(s, strlen(s));
}

char *fed_incident_encode(const char *area, const struct fed_incident *inc, int64_t ts_ms, size_t *len)
{
    if (!area || !fw_id_valid(area) || !inc || inc->id == 0 || !fw_id_valid(inc->zone) ||
        !state_valid(inc->state) || !kind_valid(inc->kind) || inc->opened_ms <= 0 ||
        (inc->origin[0] && !fw_id_valid(inc->origin)) || !text_ok(inc->zone_name) ||
        !text_ok(inc->site_name) || !text_ok(inc->ack_by)) {
        errno = EINVAL;
        return NULL;
    }
    cJSON *d = cJSON_CreateObject();
    if (!d) {
        errno = ENOMEM;
        return NULL;
    }
    cJSON_AddNumberToObject(d, "v", FED_VERSION);
    cJSON_AddStringToObject(d, "hub", area);
    cJSON_AddNumberToObject(d, "ts", (double)ts_ms);
    cJSON_AddNumberToObject(d, "id", inc->id);
    cJSON_AddStringToObject(d, "zone", inc->zone);
    cJSON_AddStringToObject(d, "zone_name", inc->zone_name);
    cJSON_AddStringToObject(d, "site_name", inc->site_name);
    cJSON_AddStringToObject(d, "state", inc->state);
    cJSON_AddStringToObject(d, "kind", inc->kind);
    cJSON_AddStringToObject(d, "origin", inc->origin);
    cJSON_AddStringToObject(d, "cause", inc->cause);
    cJSON_AddStringToObject(d, "ack_by", inc->ack_by);
    cJSON_AddNumberToObject(d, "opened_ms", (double)inc->opened_ms);
    cJSON_AddNumberToObject(d, "alarm_ms", (double)inc->alarm_ms);
    cJSON_AddNumberToObject(d, "ack_ms", (double)inc->ack_ms);
    cJSON_AddNumberToObject(d, "closed_ms", (double)inc->closed_ms);
    char *s = cJSON_PrintUnformatted(d);
    cJSON_Delete(d);
    if (!s) {
        errno = ENOMEM;
        return NULL;
    }
    size_t n = strlen(s);
    if (n > FED_PAYLOAD_MAX) {
        free(s);
        errno = EINVAL;
        return NULL;
    }
    if (len)
        *len = n;
    return s;
}

static int why_set(char *why, size_t size, const char *what)
{
    if (why && size)
        snprintf(why, size, "%s", what);
    return -EINVAL;
}

static int why_field(char *why, size_t size, const char *field)
{
    if (why && size)
        snprintf(why, size, "bad field %s", field);
    return -EINVAL;
}

/* Parses payload as a JSON object of this format version from area. */
static cJSON *parse_doc(const char *area, const char *payload, size_t len, int64_t *ts, char *why,
                        size_t size)
{
    if (!payload || len == 0 || len > FED_PAYLOAD_MAX || memchr(payload, '\0', len)) {
        why_set(why, size, len > FED_PAYLOAD_MAX ? "document too large" : "empty or binary document");
        return NULL;
    }
    cJSON *d = cJSON_ParseWithLength(payload, len);
    if (!cJSON_IsObject(d)) {
        cJSON_Delete(d);
        why_set(why, size, "not a JSON object");
        return NULL;
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(d, "v");
    const cJSON *hub = cJSON_GetObjectItemCaseSensitive(d, "hub");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(d, "ts");
    const char *bad = !cJSON_IsNumber(v) || v->valuedouble != FED_VERSION ? "v"
                      : !cJSON_IsString(hub) || strcmp(hub->valuestring, area) != 0
                          ? "hub (must be the area of the topic)"
                      : !cJSON_IsNumber(t) || t->valuedouble <= 0 || t->valuedouble > 9.0e15 ? "ts"
                                                                                             : NULL;
    if (bad) {
        cJSON_Delete(d);
        why_field(why, size, bad);
        return NULL;
    }
    *ts = (int64_t)t->valuedouble;
    return d;
}

/* Copies string member key into dst (size bytes); false when missing, not a
 * string, too long or not text. */
static bool get_str(const cJSON *d, const char *key, char *dst, size_t size, bool optional)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(d, key);
    if (!s && optional) {
        dst[0] = '\0';
        return true;
    }
    if (!cJSON_IsString(s) || strlen(s->valuestring) >= size || !text_ok(s->valuestring))
        return false;
    snprintf(dst, size, "%s", s->valuestring);
    return true;
}

static bool get_ms(const cJSON *d, const char *key, int64_t *out)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(d, key);
    if (!n) {
        *out = 0;
        return true;
    }
    if (!cJSON_IsNumber(n) || n->valuedouble < 0 || n->valuedouble > 9.0e15)
        return false;
    *out = (int64_t)n->valuedouble;
    return true;
}

int fed_incident_decode(const char *area, const char *payload, size_t len, struct fed_incident *out,
                        char *why, size_t why_size)
{
    memset(out, 0, sizeof *out);
    int64_t ts;
    cJSON *d = parse_doc(area, payload, len, &ts, why, why_size);
    if (!d)
        return -EINVAL;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(d, "id");
    const char *bad = NULL;
    if (!cJSON_IsNumber(id) || id->valuedouble < 1 || id->valuedouble > UINT32_MAX ||
        id->valuedouble != (double)(uint32_t)id->valuedouble)
        bad = "id";
    else if (!get_str(d, "zone", out->zone, sizeof out->zone, false) || !fw_id_valid(out->zone))
        bad = "zone";
    else if (!get_str(d, "zone_name", out->zone_name, sizeof out->zone_name, true))
        bad = "zone_name";
    else if (!get_str(d, "site_name", out->site_name, sizeof out->site_name, true))
        bad = "site_name";
    else if (!get_str(d, "state", out->state, sizeof out->state, false) || !state_valid(out->state))
        bad = "state";
    else if (!get_str(d, "kind", out->kind, sizeof out->kind, false) || !kind_valid(out->kind))
        bad = "kind";
    else if (!get_str(d, "origin", out->origin, sizeof out->origin, true) ||
             (out->origin[0] && !fw_id_valid(out->origin)))
        bad = "origin";
    else if (!get_str(d, "cause", out->cause, sizeof out->cause, true))
        bad = "cause";
    else if (!get_str(d, "ack_by", out->ack_by, sizeof out->ack_by, true))
        bad = "ack_by";
    else if (!get_ms(d, "opened_ms", &out->opened_ms) || out->opened_ms == 0)
        bad = "opened_ms";
    else if (!get_ms(d, "alarm_ms", &out->alarm_ms))
        bad = "alarm_ms";
    else if (!get_ms(d, "ack_ms", &out->ack_ms))
        bad = "ack_ms";
    else if (!get_ms(d, "closed_ms", &out->closed_ms) || (fed_state_closed(out->state) && !out->closed_ms))
        bad = "closed_ms";
    if (!bad) {
        out->id = (uint32_t)id->valuedouble;
        out->ts_ms = ts;
    }
    cJSON_Delete(d);
    return bad ? why_field(why, why_size, bad) : 0;
}

int fed_summary_decode(const char *area, enum fed_kind kind, const char *payload, size_t len,
                       struct fed_summary *out, char *why, size_t why_size)
{
    memset(out, 0, sizeof *out);
    out->score = -1;
    if (kind != FED_HUB && kind != FED_READINESS)
        return why_set(why, why_size, "not a summary topic");
    cJSON *d = parse_doc(area, payload, len, &out->ts_ms, why, why_size);
    if (!d)
        return -EINVAL;
    snprintf(out->area, sizeof out->area, "%s", area);
    const char *bad = NULL;
    if (kind == FED_HUB) {
        const cJSON *open = cJSON_GetObjectItemCaseSensitive(d, "open");
        if (!get_str(d, "name", out->name, sizeof out->name, false))
            bad = "name";
        else if (!cJSON_IsArray(open) || cJSON_GetArraySize(open) > FED_OPEN_MAX)
            bad = "open";
        const cJSON *e, *list = bad ? NULL : open;
        cJSON_ArrayForEach(e, list)
        {
            if (!cJSON_IsNumber(e) || e->valuedouble < 1 || e->valuedouble > UINT32_MAX) {
                bad = "open";
                break;
            }
            out->open[out->n_open++] = (uint32_t)e->valuedouble;
        }
    } else {
        const cJSON *score = cJSON_GetObjectItemCaseSensitive(d, "score");
        const cJSON *zones = cJSON_GetObjectItemCaseSensitive(d, "zones");
        if (!cJSON_IsNumber(score) || score->valuedouble < 0 || score->valuedouble > 100)
            bad = "score";
        else if (!cJSON_IsArray(zones))
            bad = "zones";
        const cJSON *z, *list = bad ? NULL : zones;
        cJSON_ArrayForEach(z, list)
        {
            const cJSON *zid = cJSON_GetObjectItemCaseSensitive(z, "id");
            const cJSON *zs = cJSON_GetObjectItemCaseSensitive(z, "score");
            if (!cJSON_IsString(zid) || !fw_id_valid(zid->valuestring) || !cJSON_IsNumber(zs) ||
                zs->valuedouble < 0 || zs->valuedouble > 100) {
                bad = "zones";
                break;
            }
        }
        if (!bad)
            out->score = (int)score->valuedouble;
    }
    cJSON_Delete(d);
    return bad ? why_field(why, why_size, bad) : 0;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(n) ? n->valuedouble : 0;
}

static int by_score(const void *a, const void *b)
{
    double x = num(*(const cJSON *const *)a, "score"), y = num(*(const cJSON *const *)b, "score");
    return x < y ? -1 : x > y;
}

char *fed_readiness_summary(const char *payload, size_t len, int worst)
{
    cJSON *rd = payload && len <= FED_PAYLOAD_MAX ? cJSON_ParseWithLength(payload, len) : NULL;
    cJSON *zones = cJSON_GetObjectItemCaseSensitive(rd, "zones");
    if (!cJSON_IsObject(rd) || !cJSON_IsArray(zones) || worst < 0) {
        cJSON_Delete(rd);
        errno = EINVAL;
        return NULL;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(rd, "v");
    cJSON_DeleteItemFromObjectCaseSensitive(rd, "hub");
    int n = cJSON_GetArraySize(zones), k = 0;
    cJSON **v = n ? calloc((size_t)n, sizeof *v) : NULL;
    if (n && !v) {
        cJSON_Delete(rd);
        errno = ENOMEM;
        return NULL;
    }
    while (cJSON_GetArraySize(zones) > 0) {
        cJSON *z = cJSON_DetachItemFromArray(zones, 0);
        if (num(z, "score") < 100)
            v[k++] = z;
        else
            cJSON_Delete(z);
    }
    qsort(v, (size_t)k, sizeof *v, by_score);
    for (int i = 0; i < k; i++) {
        if (i < worst)
            cJSON_AddItemToArray(zones, v[i]);
        else
            cJSON_Delete(v[i]);
    }
    free(v);
    if (!cJSON_GetObjectItemCaseSensitive(rd, "zones_total"))
        cJSON_AddNumberToObject(rd, "zones_total", n);
    char *s = cJSON_PrintUnformatted(rd);
    cJSON_Delete(rd);
    if (!s)
        errno = ENOMEM;
    return s;
}

int fed_cap_check(const char *area, const char *payload, size_t len, char *why, size_t why_size)
{
    if (!payload || len == 0 || len > FED_PAYLOAD_MAX || memchr(payload, '\0', len))
        return why_set(why, why_size, len > FED_PAYLOAD_MAX ? "alert too large" : "empty or binary alert");
    if (!fw_utf8_valid(payload, len))
        return why_set(why, why_size, "alert is not UTF-8");
    char want[FW_ID_MAX + 40];
    snprintf(want, sizeof want, "<identifier>firewatch-%s-", area);
    static const char ns[] = "urn:oasis:names:tc:emergency:cap:1.2";
    if (len < 5 || memcmp(payload, "<?xml", 5) != 0 || !memmem(payload, len, ns, sizeof ns - 1))
        return why_set(why, why_size, "not a CAP 1.2 document");
    if (!memmem(payload, len, want, strlen(want)))
        return why_set(why, why_size, "the identifier does not name the area");
    /* The regional side serves it inside its own Atom feed (cap_feed_wrap):
     * one <alert> element after the declaration, nothing that could close
     * that feed's elements or open new ones, no DTD, CDATA, comments or
     * processing instructions (CAP needs none of them). */
    const char *end = memmem(payload, len, "?>", 2);
    const char *body = end ? end + 2 : payload;
    size_t rest = len - (size_t)(body - payload);
    while (rest && (*body == ' ' || *body == '\n' || *body == '\r' || *body == '\t')) {
        body++;
        rest--;
    }
    size_t tail = rest;
    while (tail && (body[tail - 1] == ' ' || body[tail - 1] == '\n' || body[tail - 1] == '\r'))
        tail--;
    static const char *const banned[] = {"<!",       "<?",        "<entry", "</entry",
                                         "<content", "</content", "<feed",  "</feed"};
    bool bad = rest < 16 || memcmp(body, "<alert", 6) != 0 || tail < 8 ||
               memcmp(body + tail - 8, "</alert>", 8) != 0;
    for (size_t i = 0; !bad && i < sizeof banned / sizeof banned[0]; i++)
        bad = memmem(body, rest, banned[i], strlen(banned[i])) != NULL;
    const char *second = bad ? NULL : memmem(body + 6, rest - 6, "<alert", 6);
    if (bad || second)
        return why_set(why, why_size, "not a single CAP <alert> element");
    return 0;
}
