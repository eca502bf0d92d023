/*
 * test_protocol.c - the protocol library against its vectors and tables.
 *
 * tests/data/protocol/valid/<channel>.<desc>.json must decode, re-encode and
 * decode again to the same bytes; tests/data/protocol/invalid/
 * <channel>.<error>.<desc>.json must be refused with exactly that error code.
 * Topics, ids and encoding limits are table-driven below.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "firewatch/protocol.h"
#include "harness.h"

static int channel_from_name(const char *name)
{
    for (int ch = 0; ch < FW_CH_COUNT; ch++)
        if (strcmp(fw_channel_name((enum fw_channel)ch), name) == 0)
            return ch;
    return -1;
}

static int err_from_name(const char *name)
{
    for (int e = 0; e < FW_E_COUNT; e++)
        if (strcmp(fw_err_name((enum fw_err)e), name) == 0)
            return e;
    return -1;
}

static size_t read_file(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return (size_t)-1;
    size_t n = fread(buf, 1, size, f);
    fclose(f);
    /* Files end in one newline for readability; it is JSON whitespace, but
     * strip it so the vectors test exactly their content. */
    if (n > 0 && n < size && buf[n - 1] == '\n')
        n--;
    return n;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists *.json in dir, sorted. Returns the count; names are malloc'd. */
static size_t list_vectors(const char *dir, char ***out)
{
    DIR *d = opendir(dir);
    size_t n = 0, cap = 0;
    char **names = NULL;
    struct dirent *e;
    if (!d)
        return 0;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json") != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **grown = realloc(names, cap * sizeof *names);
            if (!grown)
                abort();
            names = grown;
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_names);
    *out = names;
    return n;
}

static void free_list(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static void test_valid_vectors(void)
{
    char dir[1024], path[1200], buf[4096], enc[FW_PAYLOAD_MAX + 1], enc2[FW_PAYLOAD_MAX + 1];
    char **names;
    snprintf(dir, sizeof dir, "%s", th_root_path("tests/data/protocol/valid"));
    size_t n = list_vectors(dir, &names);
    CHECK(n >= 20);
    bool seen[FW_CH_COUNT] = {0};
    for (size_t i = 0; i < n; i++) {
        char chname[32];
        snprintf(chname, sizeof chname, "%.*s", (int)strcspn(names[i], "."), names[i]);
        int ch = channel_from_name(chname);
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        size_t len = read_file(path, buf, sizeof buf);
        struct fw_msg m, m2;
        struct fw_error err = {0};
        bool ok = ch >= 0 && len != (size_t)-1 && fw_msg_decode((enum fw_channel)ch, buf, len, &m, &err) == 0;
        int elen = ok ? fw_msg_encode(&m, enc, sizeof enc) : -1;
        ok = ok && elen > 0 && fw_msg_decode((enum fw_channel)ch, enc, (size_t)elen, &m2, NULL) == 0;
        int elen2 = ok ? fw_msg_encode(&m2, enc2, sizeof enc2) : -1;
        ok = ok && elen2 == elen && memcmp(enc, enc2, (size_t)elen) == 0;
        if (ok)
            seen[ch] = true;
        th_report(ok, "valid vector %s%s%s", names[i], ok ? "" : ": ", ok ? "" : err.msg);
    }
    for (int ch = 0; ch < FW_CH_COUNT; ch++)
        if (!seen[ch])
            th_fail(__FILE__, __LINE__, "no valid vector for channel %s",
                    fw_channel_name((enum fw_channel)ch));
    free_list(names, n);
}

static void test_invalid_vectors(void)
{
    char dir[1024], path[1200], buf[4096];
    char **names;
    snprintf(dir, sizeof dir, "%s", th_root_path("tests/data/protocol/invalid"));
    size_t n = list_vectors(dir, &names);
    CHECK(n >= 40);
    for (size_t i = 0; i < n; i++) {
        char chname[32], errname[32];
        const char *dot = strchr(names[i], '.');
        const char *dot2 = dot ? strchr(dot + 1, '.') : NULL;
        if (!dot2) {
            th_report(false, "invalid vector %s: name is not channel.error.desc.json", names[i]);
            continue;
        }
        snprintf(chname, sizeof chname, "%.*s", (int)(dot - names[i]), names[i]);
        snprintf(errname, sizeof errname, "%.*s", (int)(dot2 - dot - 1), dot + 1);
        int ch = channel_from_name(chname), want = err_from_name(errname);
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        size_t len = read_file(path, buf, sizeof buf);
        struct fw_msg m;
        struct fw_error err = {0};
        int rc = (ch >= 0 && len != (size_t)-1) ? fw_msg_decode((enum fw_channel)ch, buf, len, &m, &err) : 0;
        bool ok = want > 0 && rc < 0 && (int)err.code == want && err.msg[0] != '\0';
        th_report(ok, "invalid vector %s -> %s (%s)", names[i], fw_err_name(err.code), err.msg);
    }
    free_list(names, n);
}

/* A refused field is named, so a technician reading the hub log knows what to fix. */
static void test_error_names_field(void)
{
    struct fw_msg m;
    struct fw_error err;
    const char *p = "{\"seq\":1,\"ts\":1,\"temp_c\":\"hot\",\"smoke\":false,\"batt_pct\":5}";
    CHECK_INT(fw_msg_decode(FW_CH_NODE_READING, p, strlen(p), &m, &err), -EBADMSG);
    CHECK_INT(err.code, FW_E_TYPE);
    CHECK_STR(err.field, "temp_c");
    CHECK(strstr(err.msg, "temp_c") != NULL);

    char big[FW_PAYLOAD_MAX + 10];
    memset(big, ' ', sizeof big);
    CHECK_INT(fw_msg_decode(FW_CH_NODE_READING, big, sizeof big, &m, &err), -EMSGSIZE);
    CHECK_INT(fw_msg_decode(FW_CH_NODE_READING, "\xff", 1, &m, &err), -EILSEQ);
    /* err may be NULL */
    CHECK_INT(fw_msg_decode(FW_CH_NODE_READING, "{}", 2, &m, NULL), -EBADMSG);
}

static void test_payload_at_limit(void)
{
    /* Exactly FW_PAYLOAD_MAX bytes is accepted; one more is not. */
    char buf[FW_PAYLOAD_MAX + 2];
    const char *head = "{\"online\":false,\"boot\":3,\"pad\":\"";
    size_t hl = strlen(head);
    memcpy(buf, head, hl);
    memset(buf + hl, 'a', FW_PAYLOAD_MAX - hl - 2);
    memcpy(buf + FW_PAYLOAD_MAX - 2, "\"}", 2);
    struct fw_msg m;
    CHECK_INT(fw_msg_decode(FW_CH_NODE_STATUS, buf, FW_PAYLOAD_MAX, &m, NULL), 0);
    CHECK(!m.u.status.online);
    CHECK_INT(m.u.status.boot, 3);
    CHECK(!m.u.status.has_birth_fields);
    memmove(buf + hl + 1, buf + hl, FW_PAYLOAD_MAX - hl);
    CHECK_INT(fw_msg_decode(FW_CH_NODE_STATUS, buf, FW_PAYLOAD_MAX + 1, &m, NULL), -EMSGSIZE);
}

static void test_decoded_values(void)
{
    struct fw_msg m;
    const char *p = "{\"seq\":9,\"ts\":1764950400123,\"type\":\"cmd_result\",\"cmd_id\":\"c-7\","
                    "\"result\":\"error\",\"detail\":\"bad\",\"extra\":[1]}";
    CHECK_INT(fw_msg_decode(FW_CH_NODE_EVENT, p, strlen(p), &m, NULL), 0);
    CHECK_INT(m.u.event.seq, 9);
    CHECK_INT(m.u.event.ts, 1764950400123LL);
    CHECK_INT(m.u.event.type, FW_EV_CMD_RESULT);
    CHECK_INT(m.u.event.result, FW_RESULT_ERROR);
    CHECK_STR(m.u.event.cmd_id, "c-7");
    CHECK_STR(m.u.event.detail, "bad");

    p = "{\"seq\":0,\"ts\":1,\"temp_c\":-12.25,\"smoke\":true,\"batt_pct\":19}";
    CHECK_INT(fw_msg_decode(FW_CH_NODE_READING, p, strlen(p), &m, NULL), 0);
    CHECK(m.u.reading.temp_c == -12.25);
    CHECK(m.u.reading.smoke);
    CHECK_INT(m.u.reading.batt_pct, 19);
}

static void test_encode_every_type(void)
{
    char buf[FW_PAYLOAD_MAX + 1];
    struct fw_msg m = {.channel = FW_CH_NODE_READING};
    m.u.reading =
        (struct fw_reading){.seq = 5, .ts = 1764950400000, .temp_c = 24.46, .smoke = false, .batt_pct = 87};
    CHECK(fw_msg_encode(&m, buf, sizeof buf) > 0);
    CHECK_STR(buf, "{\"seq\":5,\"ts\":1764950400000,\"temp_c\":24.5,\"smoke\":false,\"batt_pct\":87}");

    m = (struct fw_msg){.channel = FW_CH_NODE_STATUS};
    m.u.status = (struct fw_status){.online = false, .boot = 4};
    CHECK(fw_msg_encode(&m, buf, sizeof buf) > 0);
    CHECK_STR(buf, "{\"online\":false,\"boot\":4}");
    m.u.status = (struct fw_status){.online = true, .boot = 4, .kind = FW_KIND_HEAT, .ts = 10};
    snprintf(m.u.status.fw, sizeof m.u.status.fw, "1.2.3");
    CHECK(fw_msg_encode(&m, buf, sizeof buf) > 0);
    CHECK_STR(buf, "{\"online\":true,\"boot\":4,\"fw\":\"1.2.3\",\"kind\":\"heat\",\"ts\":10}");

    m = (struct fw_msg){.channel = FW_CH_NODE_EVENT};
    m.u.event = (struct fw_event){.seq = 1, .ts = 2, .type = FW_EV_ALARM, .cause = FW_CAUSE_HEAT_ROR};
    CHECK(fw_msg_encode(&m, buf, sizeof buf) > 0);
    CHECK_STR(buf, "{\"seq\":1,\"ts\":2,\"type\":\"alarm\",\"cause\":\"heat_ror\"}");
    m.u.event.cause = FW_CAUSE_NONE; /* an alarm without a cause is refused */
    CHECK_INT(fw_msg_encode(&m, buf, sizeof buf), -EINVAL);

    m = (struct fw_msg){.channel = FW_CH_NODE_CMD};
    m.u.cmd = (struct fw_cmd){.cmd = FW_CMD_SET, .interval_s = 30};
    snprintf(m.u.cmd.id, sizeof m.u.cmd.id, "c-9");
    CHECK(fw_msg_encode(&m, buf, sizeof buf) > 0);
    CHECK_STR(buf, "{\"id\":\"c-9\",\"cmd\":\"set\",\"interval_s\":30}");
    m.u.cmd.interval_s = 1;
    CHECK_INT(fw_msg_encode(&m, buf, sizeof buf), -EINVAL);

    m = (struct fw_msg){.channel = FW_CH_ZONE_ALARM};
    m.u.alarm = (struct fw_zone_alarm){.state = FW_STATE_ALARM, .incident = 7, .ts = 3};
    snprintf(m.u.alarm.origin, sizeof m.u.alarm.origin, "n-1");
    CHECK(fw_msg_encode(&m, buf, sizeof buf) > 0);
    CHECK_STR(buf, "{\"state\":\"alarm\",\"incident\":7,\"origin\":\"n-1\",\"ts\":3}");
    CHECK_INT(fw_msg_encode(&m, buf, 10), -ENOSPC);

    m = (struct fw_msg){.channel = FW_CH_HUB_STATUS};
    m.u.hub.online = false;
    CHECK(fw_msg_encode(&m, buf, sizeof buf) > 0);
    CHECK_STR(buf, "{\"online\":false}");
}

static void test_ids(void)
{
    static const struct {
        const char *id;
        bool ok;
    } rows[] = {
        {"a", true},
        {"0", true},
        {"node-1", true},
        {"abcdefghijklmnopqrstuvwxyz012345", true},
        {"abcdefghijklmnopqrstuvwxyz0123456", false}, /* 33 characters */
        {"", false},
        {"-a", false},
        {"A", false},
        {"a_b", false},
        {"a/b", false},
        {"a+", false},
        {"a#", false},
        {"a b", false},
        {"é", false},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        th_report(fw_id_valid(rows[i].id) == rows[i].ok, "id '%s' valid=%d", rows[i].id, rows[i].ok);
    CHECK(!fw_id_valid(NULL));
}

static void test_topics(void)
{
    static const struct {
        const char *topic;
        int channel; /* -1: refused */
        const char *id;
        enum fw_err err;
    } rows[] = {
        {"firewatch/v1/node/n1/status", FW_CH_NODE_STATUS, "n1", FW_OK},
        {"firewatch/v1/node/n1/reading", FW_CH_NODE_READING, "n1", FW_OK},
        {"firewatch/v1/node/kitchen-2/event", FW_CH_NODE_EVENT, "kitchen-2", FW_OK},
        {"firewatch/v1/node/n1/cmd", FW_CH_NODE_CMD, "n1", FW_OK},
        {"firewatch/v1/zone/z-9/alarm", FW_CH_ZONE_ALARM, "z-9", FW_OK},
        {"firewatch/v1/hub/status", FW_CH_HUB_STATUS, "", FW_OK},
        {"firewatch/v1/node/n1/alarm", -1, "", FW_E_TOPIC},
        {"firewatch/v1/zone/z1/status", -1, "", FW_E_TOPIC},
        {"firewatch/v1/node/N1/status", -1, "", FW_E_ID},
        {"firewatch/v1/node//status", -1, "", FW_E_ID},
        {"firewatch/v1/node/n1", -1, "", FW_E_TOPIC},
        {"firewatch/v1/node/n1/status/extra", -1, "", FW_E_TOPIC},
        {"firewatch/v2/node/n1/status", -1, "", FW_E_TOPIC},
        {"firewatch/v1/node/+/status", -1, "", FW_E_ID},
        {"firewatch/v1/hub/status/", -1, "", FW_E_TOPIC},
        {"", -1, "", FW_E_TOPIC},
        {"firewatch/v1/node/abcdefghijklmnopqrstuvwxyz0123456/status", -1, "", FW_E_ID},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct fw_topic t;
        struct fw_error err = {0};
        int rc = fw_topic_parse(rows[i].topic, strlen(rows[i].topic), &t, &err);
        bool ok = rows[i].channel >= 0
                      ? rc == 0 && (int)t.channel == rows[i].channel && strcmp(t.id, rows[i].id) == 0
                      : rc == -EINVAL && err.code == rows[i].err;
        th_report(ok, "topic '%s'", rows[i].topic);
    }
    /* Build then parse round-trips for every channel. */
    char buf[FW_TOPIC_MAX];
    for (int ch = 0; ch < FW_CH_COUNT; ch++) {
        struct fw_topic t;
        int n = fw_topic_build(buf, sizeof buf, (enum fw_channel)ch, "abc-1");
        CHECK(n > 0);
        CHECK_INT(fw_topic_parse(buf, (size_t)n, &t, NULL), 0);
        CHECK_INT(t.channel, ch);
    }
    CHECK_INT(fw_topic_build(buf, sizeof buf, FW_CH_NODE_EVENT, "Bad"), -EINVAL);
    CHECK_INT(fw_topic_build(buf, 8, FW_CH_NODE_EVENT, "n1"), -ENOSPC);
    CHECK_INT(fw_topic_build(buf, sizeof buf, FW_CH_COUNT, "n1"), -EINVAL);
}

static void test_names_round_trip(void)
{
    for (int k = 0; k < FW_KIND_COUNT; k++) {
        enum fw_node_kind v;
        CHECK_INT(fw_kind_parse(fw_kind_name((enum fw_node_kind)k), &v), 0);
        CHECK_INT(v, k);
    }
    for (int t = 0; t < FW_EV_COUNT; t++) {
        enum fw_event_type v;
        CHECK_INT(fw_event_type_parse(fw_event_type_name((enum fw_event_type)t), &v), 0);
        CHECK_INT(v, t);
    }
    for (int c = 1; c < FW_CAUSE_COUNT; c++) {
        enum fw_cause v;
        CHECK_INT(fw_cause_parse(fw_cause_name((enum fw_cause)c), &v), 0);
        CHECK_INT(v, c);
    }
    for (int c = 0; c < FW_CMD_COUNT; c++) {
        enum fw_cmd_kind v;
        CHECK_INT(fw_cmd_parse(fw_cmd_name((enum fw_cmd_kind)c), &v), 0);
        CHECK_INT(v, c);
    }
    for (int e = 0; e < FW_E_COUNT; e++)
        CHECK(fw_err_name((enum fw_err)e) != NULL);
    enum fw_cause c;
    CHECK_INT(fw_cause_parse("", &c), -EINVAL);
    CHECK(fw_kind_name(FW_KIND_COUNT) == NULL);
}

TH_MAIN(TH_TEST(test_valid_vectors), TH_TEST(test_invalid_vectors), TH_TEST(test_error_names_field),
        TH_TEST(test_payload_at_limit), TH_TEST(test_decoded_values), TH_TEST(test_encode_every_type),
        TH_TEST(test_ids), TH_TEST(test_topics), TH_TEST(test_names_round_trip))
