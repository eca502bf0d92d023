/*
 * test_fed.c - federation without a broker: the topics and documents of
 * hub/fed.c (built, parsed back, and hostile ones refused with the field at
 * fault), and the regional receiver hub/region.c fed message by message
 * against a real database: registered areas only, documents applied in the
 * area's time order, closes missed while the link was down reconciled by
 * the hub document, CAP alerts kept as they came.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fed.h"
#include "harness.h"
#include "region.h"
#include "store.h"

static void test_topics(void)
{
    char t[FED_TOPIC_MAX], area[FW_ID_MAX + 1];
    enum fed_kind kind;
    uint32_t id;
    CHECK_INT(fed_topic(t, sizeof t, "ward7", FED_HUB, 0), (int)strlen("firewatch/v1/fed/ward7/hub"));
    CHECK_STR(t, "firewatch/v1/fed/ward7/hub");
    CHECK(fed_topic(t, sizeof t, "ward7", FED_INCIDENT, 42) > 0);
    CHECK_STR(t, "firewatch/v1/fed/ward7/incident/42");
    CHECK_INT(fed_topic_parse(t, strlen(t), area, &kind, &id), 0);
    CHECK_STR(area, "ward7");
    CHECK_INT(kind, FED_INCIDENT);
    CHECK_INT(id, 42);
    CHECK_INT(fed_topic(t, sizeof t, "ward7", FED_CAP, 0), -EINVAL);
    CHECK_INT(fed_topic(t, sizeof t, "Ward7", FED_HUB, 0), -EINVAL);
    CHECK_INT(fed_topic(t, 10, "ward7", FED_HUB, 0), -ENOSPC);
    CHECK(fed_topic_filter(t, sizeof t, NULL) > 0);
    CHECK_STR(t, "firewatch/v1/fed/+/#");
    CHECK(fed_area_user(t, sizeof t, "ward7") > 0);
    CHECK_STR(t, "area_ward7");

    static const char *const bad[] = {"firewatch/v1/fed/ward7",
                                      "firewatch/v1/fed/ward7/hub/x",
                                      "firewatch/v1/fed/ward7/incident",
                                      "firewatch/v1/fed/ward7/incident/0",
                                      "firewatch/v1/fed/ward7/cap/01",
                                      "firewatch/v1/fed/ward7/cap/4294967296",
                                      "firewatch/v1/fed/WARD/hub",
                                      "firewatch/v1/fed/ward7/nope",
                                      "firewatch/v1/node/n1/event",
                                      "firewatch/v1/fed//hub",
                                      "firewatch/v1/fed/ward7/incident/1x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        th_report(fed_topic_parse(bad[i], strlen(bad[i]), area, &kind, &id) == -EINVAL, "topic %s is refused",
                  bad[i]);
    CHECK_INT(fed_topic_parse("firewatch/v1/fed/ward7/bridge", 29, area, &kind, &id), 0);
    CHECK_INT(kind, FED_BRIDGE);
}

static struct fed_incident sample(void)
{
    struct fed_incident f;
    memset(&f, 0, sizeof f);
    f.id = 7;
    snprintf(f.zone, sizeof f.zone, "z1");
    snprintf(f.zone_name, sizeof f.zone_name, "Hẻm 12");
    snprintf(f.state, sizeof f.state, "alarm");
    snprintf(f.kind, sizeof f.kind, "fire");
    snprintf(f.origin, sizeof f.origin, "n1");
    snprintf(f.cause, sizeof f.cause, "heat_fixed");
    f.opened_ms = 1700000000000;
    f.alarm_ms = 1700000000000;
    return f;
}

static void test_incident_documents(void)
{
    struct fed_incident f = sample(), g;
    size_t len = 0;
    char *doc = fed_incident_encode("ward7", &f, 1700000000500, &len);
    CHECK(doc != NULL && len == strlen(doc));
    char why[128];
    CHECK_INT(fed_incident_decode("ward7", doc, len, &g, why, sizeof why), 0);
    CHECK_INT(g.id, 7);
    CHECK_STR(g.zone_name, "Hẻm 12");
    CHECK_STR(g.state, "alarm");
    CHECK_INT(g.ts_ms, 1700000000500);
    /* The area is the topic's: a document naming another is refused. */
    CHECK_INT(fed_incident_decode("ward8", doc, len, &g, why, sizeof why), -EINVAL);
    CHECK(strstr(why, "hub") != NULL);
    free(doc);

    struct fed_incident bad = sample();
    snprintf(bad.state, sizeof bad.state, "burning");
    CHECK(fed_incident_encode("ward7", &bad, 1, NULL) == NULL);
    bad = sample();
    snprintf(bad.zone_name, sizeof bad.zone_name, "a\nb");
    CHECK(fed_incident_encode("ward7", &bad, 1, NULL) == NULL);

    static const struct {
        const char *doc, *field;
    } rows[] = {
        {"{\"v\":2,\"hub\":\"ward7\",\"ts\":1,\"id\":1}", "v"},
        {"{\"v\":1,\"hub\":\"ward7\",\"ts\":-5,\"id\":1}", "ts"},
        {"{\"v\":1,\"hub\":\"ward7\",\"ts\":1,\"id\":0,\"zone\":\"z1\"}", "id"},
        {"{\"v\":1,\"hub\":\"ward7\",\"ts\":1,\"id\":1.5,\"zone\":\"z1\"}", "id"},
        {"{\"v\":1,\"hub\":\"ward7\",\"ts\":1,\"id\":1,\"zone\":\"Z 1\"}", "zone"},
        {"{\"v\":1,\"hub\":\"ward7\",\"ts\":1,\"id\":1,\"zone\":\"z1\",\"state\":\"x\"}", "state"},
        {"{\"v\":1,\"hub\":\"ward7\",\"ts\":1,\"id\":1,\"zone\":\"z1\",\"state\":\"alarm\",\"kind\":\"fire\","
         "\"opened_ms\":0}",
         "opened_ms"},
        {"{\"v\":1,\"hub\":\"ward7\",\"ts\":1,\"id\":1,\"zone\":\"z1\",\"state\":\"cleared\",\"kind\":"
         "\"fire\","
         "\"opened_ms\":5}",
         "closed_ms"},
        {"{\"v\":1,\"hub\":\"ward7\",\"ts\":1,\"id\":1,\"zone\":\"z1\",\"state\":\"alarm\",\"kind\":\"fire\","
         "\"opened_ms\":5,\"origin\":\"N!\"}",
         "origin"},
        {"[1,2]", "JSON object"},
        {"{\"v\":1,", "JSON object"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int rc = fed_incident_decode("ward7", rows[i].doc, strlen(rows[i].doc), &g, why, sizeof why);
        th_report(rc == -EINVAL && strstr(why, rows[i].field) != NULL, "incident %s refused for %s (%s)",
                  rows[i].doc, rows[i].field, why);
    }
    char big[FED_PAYLOAD_MAX + 10];
    memset(big, ' ', sizeof big);
    CHECK_INT(fed_incident_decode("ward7", big, sizeof big, &g, why, sizeof why), -EINVAL);
    CHECK(strstr(why, "too large") != NULL);
}

static void test_summaries_and_cap(void)
{
    struct fed_summary s;
    char why[128];
    const char *hub = "{\"v\":1,\"hub\":\"ward7\",\"ts\":5,\"name\":\"Ward 7\",\"open\":[3,4]}";
    CHECK_INT(fed_summary_decode("ward7", FED_HUB, hub, strlen(hub), &s, why, sizeof why), 0);
    CHECK_STR(s.name, "Ward 7");
    CHECK_INT(s.n_open, 2);
    CHECK_INT(s.open[1], 4);
    const char *rd =
        "{\"v\":1,\"hub\":\"ward7\",\"ts\":5,\"score\":83,\"zones\":[{\"id\":\"z1\",\"score\":83}]}";
    CHECK_INT(fed_summary_decode("ward7", FED_READINESS, rd, strlen(rd), &s, why, sizeof why), 0);
    CHECK_INT(s.score, 83);
    const char *bad_rd = "{\"v\":1,\"hub\":\"ward7\",\"ts\":5,\"score\":101,\"zones\":[]}";
    CHECK_INT(fed_summary_decode("ward7", FED_READINESS, bad_rd, strlen(bad_rd), &s, why, sizeof why),
              -EINVAL);
    const char *bad_open = "{\"v\":1,\"hub\":\"ward7\",\"ts\":5,\"name\":\"W\",\"open\":[\"x\"]}";
    CHECK_INT(fed_summary_decode("ward7", FED_HUB, bad_open, strlen(bad_open), &s, why, sizeof why), -EINVAL);

    /* The overview's summary: the worst zones under 100, worst first. */
    const char *five =
        "{\"v\":1,\"hub\":\"ward7\",\"ts\":5,\"score\":74,\"zones\":[{\"id\":\"a\",\"score\":100},"
        "{\"id\":\"b\",\"score\":50},{\"id\":\"c\",\"score\":70},{\"id\":\"d\",\"score\":90},"
        "{\"id\":\"e\",\"score\":60}]}";
    char *sum = fed_readiness_summary(five, strlen(five), FED_WORST_ZONES);
    CHECK(sum != NULL);
    if (sum) {
        CHECK(strstr(sum, "\"zones\":[{\"id\":\"b\",\"score\":50},{\"id\":\"e\",\"score\":60},{\"id\":\"c\","
                          "\"score\":70}],\"zones_total\":5") != NULL);
        CHECK(strstr(sum, "\"hub\"") == NULL && strstr(sum, "\"v\"") == NULL &&
              strstr(sum, "\"score\":74") != NULL);
    }
    free(sum);
    CHECK(fed_readiness_summary("[1]", 3, 3) == NULL);

    const char *cap = "<?xml version=\"1.0\"?><alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\">"
                      "<identifier>firewatch-ward7-1-2</identifier></alert>";
    CHECK_INT(fed_cap_check("ward7", cap, strlen(cap), why, sizeof why), 0);
    CHECK_INT(fed_cap_check("ward8", cap, strlen(cap), why, sizeof why), -EINVAL);
    CHECK_INT(fed_cap_check("ward7", "<html/>", 7, why, sizeof why), -EINVAL);
    CHECK_INT(fed_cap_check("ward7", "<?xml \xff", 7, why, sizeof why), -EINVAL);
    /* Nothing that could break out of the regional Atom feed it is served in. */
    static const char *const hostile[] = {
        "<?xml version=\"1.0\"?><alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\"><identifier>"
        "firewatch-ward7-1-2</identifier></alert></content></entry><entry><alert></alert>",
        "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e \"boom\">]><alert "
        "xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\"><identifier>firewatch-ward7-1-2</identifier></alert>",
        "<?xml version=\"1.0\"?><alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\"><identifier>"
        "firewatch-ward7-1-2</identifier><![CDATA[x]]></alert>",
        "<?xml version=\"1.0\"?><alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\"><identifier>"
        "firewatch-ward7-1-2</identifier></alert><alert></alert>",
    };
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++)
        th_report(fed_cap_check("ward7", hostile[i], strlen(hostile[i]), why, sizeof why) == -EINVAL,
                  "hostile CAP alert %zu refused (%s)", i, why);
}

/* ---- the regional receiver ---------------------------------------------- */

struct db {
    char dir[256], path[320];
    struct store *s;
};

static int db_open(struct db *d)
{
    snprintf(d->dir, sizeof d->dir, "%s", th_tmpdir("fed"));
    snprintf(d->path, sizeof d->path, "%s/region.db", d->dir);
    char why[256];
    d->s = store_open(d->path, STORE_CREATE, why, sizeof why);
    if (!d->s)
        th_fail(__FILE__, __LINE__, "%s", why);
    return d->s ? 0 : -1;
}

static long long q1(struct db *d, const char *sql)
{
    sqlite3_stmt *q = NULL;
    long long v = -1;
    if (sqlite3_prepare_v2(store_handle(d->s), sql, -1, &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW)
        v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return v;
}

static void msg(struct region *r, const char *topic, const char *payload)
{
    region_on_message(r, topic, strlen(topic), payload, strlen(payload));
}

static char *incident_doc(const char *area, uint32_t id, const char *state, int64_t ts)
{
    struct fed_incident f = sample();
    f.id = id;
    snprintf(f.state, sizeof f.state, "%s", state);
    if (fed_state_closed(state))
        f.closed_ms = ts;
    return fed_incident_encode(area, &f, ts, NULL);
}

static void test_region_receiver(void)
{
    struct db d;
    memset(&d, 0, sizeof d);
    if (db_open(&d) < 0)
        return;
    char why[256];
    struct region *r = region_new(d.path, why, sizeof why);
    CHECK(r != NULL);
    if (!r)
        goto out;
    sqlite3_exec(store_handle(d.s), "INSERT INTO areas(id, name, added_ms) VALUES ('ward7', 'Ward 7', 1)",
                 NULL, NULL, NULL);

    /* An area nobody registered is not believed. */
    char *doc = incident_doc("ward9", 1, "alarm", 100);
    msg(r, "firewatch/v1/fed/ward9/incident/1", doc);
    free(doc);
    CHECK_INT(q1(&d, "SELECT count(*) FROM area_incidents"), 0);

    /* Live documents, in order; a stale retained one changes nothing. */
    doc = incident_doc("ward7", 1, "alarm", 100);
    msg(r, "firewatch/v1/fed/ward7/incident/1", doc);
    free(doc);
    CHECK_INT(q1(&d, "SELECT count(*) FROM area_incidents WHERE area = 'ward7' AND state = 'alarm'"), 1);
    doc = incident_doc("ward7", 1, "acknowledged", 200);
    msg(r, "firewatch/v1/fed/ward7/incident/1", doc);
    free(doc);
    doc = incident_doc("ward7", 1, "verifying", 50);
    msg(r, "firewatch/v1/fed/ward7/incident/1", doc);
    free(doc);
    CHECK_INT(q1(&d, "SELECT count(*) FROM area_incidents WHERE state = 'acknowledged' AND updated_ms = 200"),
              1);
    /* The topic's id and the document's must agree. */
    doc = incident_doc("ward7", 2, "alarm", 300);
    msg(r, "firewatch/v1/fed/ward7/incident/3", doc);
    free(doc);
    CHECK_INT(q1(&d, "SELECT count(*) FROM area_incidents"), 1);
    /* A cleared retained copy (empty) is nothing to do. */
    msg(r, "firewatch/v1/fed/ward7/incident/1", "");

    /* Incident 2 opens; then a hub document lists only 2: incident 1 was
     * closed while we were not listening. */
    doc = incident_doc("ward7", 2, "alarm", 400);
    msg(r, "firewatch/v1/fed/ward7/incident/2", doc);
    free(doc);
    msg(r, "firewatch/v1/fed/ward7/hub",
        "{\"v\":1,\"hub\":\"ward7\",\"ts\":500,\"name\":\"Ward 7\",\"open\":[2]}");
    CHECK_INT(q1(&d, "SELECT closed_ms FROM area_incidents WHERE id = 1"), 500);
    CHECK_INT(q1(&d, "SELECT closed_ms FROM area_incidents WHERE id = 2"), 0);
    CHECK_INT(q1(&d, "SELECT hub_ms FROM areas WHERE id = 'ward7'"), 500);
    /* An older hub document does not replace it. */
    msg(r, "firewatch/v1/fed/ward7/hub",
        "{\"v\":1,\"hub\":\"ward7\",\"ts\":450,\"name\":\"Old\",\"open\":[]}");
    CHECK_INT(q1(&d, "SELECT hub_ms FROM areas WHERE id = 'ward7'"), 500);
    CHECK_INT(q1(&d, "SELECT closed_ms FROM area_incidents WHERE id = 2"), 0);

    msg(r, "firewatch/v1/fed/ward7/readiness",
        "{\"v\":1,\"hub\":\"ward7\",\"ts\":600,\"score\":77,\"zones\":[{\"id\":\"z1\",\"score\":77}]}");
    CHECK_INT(q1(&d, "SELECT json_extract(readiness_doc, '$.score') FROM areas"), 77);

    msg(r, "firewatch/v1/fed/ward7/bridge", "1");
    CHECK_INT(q1(&d, "SELECT bridge_online FROM areas"), 1);
    msg(r, "firewatch/v1/fed/ward7/bridge", "0");
    CHECK_INT(q1(&d, "SELECT bridge_online FROM areas"), 0);
    msg(r, "firewatch/v1/fed/ward7/bridge", "maybe");
    CHECK_INT(q1(&d, "SELECT bridge_online FROM areas"), 0);

    const char *cap = "<?xml version=\"1.0\"?><alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\">"
                      "<identifier>firewatch-ward7-2-2</identifier></alert>";
    msg(r, "firewatch/v1/fed/ward7/cap/2", cap);
    msg(r, "firewatch/v1/fed/ward7/cap/3", "<not cap/>");
    CHECK_INT(q1(&d, "SELECT count(*) FROM area_alerts WHERE id = 2"), 1);
    CHECK_INT(q1(&d, "SELECT count(*) FROM area_alerts"), 1);

    /* Garbage never crashes and never writes. */
    msg(r, "firewatch/v1/fed/ward7/hub", "{\"v\":1,\"hub\":\"ward7\",\"ts\":900,\"open\":[]}"); /* no name */
    msg(r, "firewatch/v1/fed/ward7/hub", "\x01\x02");
    msg(r, "firewatch/v1/fed/ward7", "x");
    CHECK_INT(q1(&d, "SELECT hub_ms FROM areas"), 500);

    /* A removed area is not believed any more. */
    sqlite3_exec(store_handle(d.s), "UPDATE areas SET removed_ms = 5", NULL, NULL, NULL);
    doc = incident_doc("ward7", 9, "alarm", 1000);
    msg(r, "firewatch/v1/fed/ward7/incident/9", doc);
    free(doc);
    CHECK_INT(q1(&d, "SELECT count(*) FROM area_incidents WHERE id = 9"), 0);

    struct region_stats st;
    region_get_stats(r, &st);
    CHECK(st.applied >= 8);
    CHECK(st.rejected >= 6);
    CHECK_INT(st.unknown_area, 2);
    CHECK_INT(st.errors, 0);
out:
    region_free(r);
    store_close(d.s);
    th_rmtree(d.dir);
}

static const struct th_test tests[] = {
    {"federation topics are built and parsed; malformed ones refused", test_topics},
    {"incident documents round-trip; hostile ones are refused with the field at fault",
     test_incident_documents},
    {"hub and readiness summaries and CAP alerts are checked", test_summaries_and_cap},
    {"the regional receiver believes registered areas only, in the area's time order", test_region_receiver},
};

int main(int argc, char **argv)
{
    return th_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
