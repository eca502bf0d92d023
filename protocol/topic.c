/*
 * topic.c - building and parsing v1 topics, and validating ids.
 *
 * Topics are few and fixed, so parsing is a prefix match plus one id level
 * and one suffix level; it is written by hand because no library does MQTT
 * topic grammar for us, and it never allocates.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "firewatch/protocol.h"
#include "protocol_internal.h"

static const char node_prefix[] = FW_TOPIC_ROOT "/node/";
static const char zone_prefix[] = FW_TOPIC_ROOT "/zone/";
static const char hub_status[] = FW_TOPIC_ROOT "/hub/status";

/* The last topic level of each node channel, indexed by enum fw_channel. */
static const char *const node_suffix[FW_CH_COUNT] = {
    [FW_CH_NODE_STATUS] = "status",
    [FW_CH_NODE_READING] = "reading",
    [FW_CH_NODE_EVENT] = "event",
    [FW_CH_NODE_CMD] = "cmd",
};

static bool id_valid_n(const char *id, size_t n)
{
    if (n == 0 || n > FW_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && i > 0);
        if (!ok)
            return false;
    }
    return true;
}

bool fw_id_valid(const char *id)
{
    if (!id)
        return false;
    size_t n = strnlen(id, FW_ID_MAX + 1);
    return id[n] == '\0' && id_valid_n(id, n);
}

int fw_topic_build(char *buf, size_t size, enum fw_channel ch, const char *id)
{
    int n;

    if (!buf || size == 0)
        return -ENOSPC;
    if (ch == FW_CH_HUB_STATUS) {
        n = snprintf(buf, size, "%s", hub_status);
    } else if (ch == FW_CH_ZONE_ALARM) {
        if (!fw_id_valid(id))
            return -EINVAL;
        n = snprintf(buf, size, "%s%s/alarm", zone_prefix, id);
    } else if ((unsigned)ch < FW_CH_COUNT && node_suffix[ch]) {
        if (!fw_id_valid(id))
            return -EINVAL;
        n = snprintf(buf, size, "%s%s/%s", node_prefix, id, node_suffix[ch]);
    } else {
        return -EINVAL;
    }
    if (n < 0)
        return -EINVAL;
    if ((size_t)n >= size)
        return -ENOSPC;
    return n;
}

static int topic_fail(struct fw_error *err, enum fw_err code, const char *msg)
{
    fw_error_set(err, code, "", "%s", msg);
    return -EINVAL;
}

/* Splits "<id>/<rest>" at the first '/', checks the id, copies it out. */
static int take_id(const char *p, size_t len, struct fw_topic *out, const char **rest, size_t *rest_len,
                   struct fw_error *err)
{
    const char *slash = memchr(p, '/', len);
    if (!slash)
        return topic_fail(err, FW_E_TOPIC, "topic has no channel after the id");
    size_t n = (size_t)(slash - p);
    if (!id_valid_n(p, n))
        return topic_fail(err, FW_E_ID, "id in topic is not [a-z0-9][a-z0-9-]{0,31}");
    memcpy(out->id, p, n);
    out->id[n] = '\0';
    *rest = slash + 1;
    *rest_len = len - n - 1;
    return 0;
}

static bool level_is(const char *p, size_t len, const char *word)
{
    size_t n = strlen(word);
    return len == n && memcmp(p, word, n) == 0;
}

int fw_topic_parse(const char *topic, size_t len, struct fw_topic *out, struct fw_error *err)
{
    const char *rest;
    size_t rest_len;

    if (!topic || !out)
        return topic_fail(err, FW_E_TOPIC, "no topic");
    if (len >= FW_TOPIC_MAX)
        return topic_fail(err, FW_E_TOO_LONG, "topic too long");
    memset(out, 0, sizeof *out);

    if (len == sizeof hub_status - 1 && memcmp(topic, hub_status, len) == 0) {
        out->channel = FW_CH_HUB_STATUS;
        return 0;
    }
    size_t np = sizeof node_prefix - 1, zp = sizeof zone_prefix - 1;
    if (len > np && memcmp(topic, node_prefix, np) == 0) {
        if (take_id(topic + np, len - np, out, &rest, &rest_len, err) < 0)
            return -EINVAL;
        for (int ch = 0; ch < FW_CH_COUNT; ch++) {
            if (node_suffix[ch] && level_is(rest, rest_len, node_suffix[ch])) {
                out->channel = (enum fw_channel)ch;
                return 0;
            }
        }
        return topic_fail(err, FW_E_TOPIC, "unknown node channel");
    }
    if (len > zp && memcmp(topic, zone_prefix, zp) == 0) {
        if (take_id(topic + zp, len - zp, out, &rest, &rest_len, err) < 0)
            return -EINVAL;
        if (level_is(rest, rest_len, "alarm")) {
            out->channel = FW_CH_ZONE_ALARM;
            return 0;
        }
        return topic_fail(err, FW_E_TOPIC, "unknown zone channel");
    }
    return topic_fail(err, FW_E_TOPIC, "not a " FW_TOPIC_ROOT " topic");
}
