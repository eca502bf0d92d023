/*
 * test_federation.c - two brokers and two hubs on loopback: an area hub
 * (ward7) with its own Mosquitto, and a regional hub (mode regional) with
 * the regional Mosquitto. Everything is configured the way an operator
 * would: `firewatchctl area add` on the regional side prints the area's
 * password, the area's `firewatchctl broker config` writes the bridge, and
 * each Mosquitto runs exactly the file it was given.
 *
 * A node of the area raises a fire; the regional view shows the area, its
 * readiness, the incident in alarm and its CAP alert (validated against the
 * OASIS schema when $FW_SHARED has it), then the clear and the Cancel. The
 * regional hub refuses to act. The area's broker dies and the regional view
 * says the bridge is down, then up again. The regional hub is down while a
 * drill starts and catches up from its persistent session. Removing the
 * area cuts its bridge off and takes it out of the view.
 */
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "hubrig.h"

#define PW "correct horse battery"

static void check_xsd(const char *xml, const char *what)
{
    const char *shared = getenv("FW_SHARED");
    char xsd[512];
    snprintf(xsd, sizeof xsd, "%s/data/cap-v1.2.xsd", shared ? shared : "");
    if (!shared || !*shared || access(xsd, R_OK) != 0) {
        printf("# skipped: %s not validated (no $FW_SHARED/data/cap-v1.2.xsd)\n", what);
        return;
    }
    char file[300], cmd[1400], out[2048];
    snprintf(file, sizeof file, "%s/alert.xml", th_tmpdir("fedcap"));
    FILE *f = fopen(file, "w");
    if (f) {
        fputs(xml, f);
        fclose(f);
    }
    snprintf(cmd, sizeof cmd, "xmllint --noout --schema '%s' '%s' 2>&1", xsd, file);
    int rc = hr_sh(cmd, out, sizeof out);
    th_report(rc == 0, "%s validates against the OASIS CAP 1.2 schema%s%s", what, rc ? ": " : "",
              rc ? out : "");
}

static void check_wellformed(const char *xml, const char *what)
{
    char file[300], cmd[700], out[2048];
    snprintf(file, sizeof file, "%s/feed.xml", th_tmpdir("fedfeed"));
    FILE *f = fopen(file, "w");
    if (f) {
        fputs(xml, f);
        fclose(f);
    }
    snprintf(cmd, sizeof cmd, "xmllint --noout '%s' 2>&1", file);
    int rc = hr_sh(cmd, out, sizeof out);
    th_report(rc == 0, "%s is well-formed XML%s%s", what, rc ? ": " : "", rc ? out : "");
}

/* Publishes one QoS 1 message as a node of the area. */
static int node_pub(struct hubrig *area, const char *user, const char *pw, const char *topic,
                    const char *payload)
{
    char cmd[1024], out[512];
    snprintf(cmd, sizeof cmd,
             "mosquitto_pub -V mqttv5 -h 127.0.0.1 -p %d -u '%s' -P '%s' -q 1 -t '%s' -m '%s' 2>&1",
             area->b.port, user, pw, topic, payload);
    return hr_sh(cmd, out, sizeof out);
}

static bool json_field(const char *text, const char *key, char *out, size_t size)
{
    cJSON *o = cJSON_Parse(text);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    bool ok = cJSON_IsString(v);
    if (ok)
        snprintf(out, size, "%s", v->valuestring);
    cJSON_Delete(o);
    return ok;
}

static int get(struct hubrig *r, const char *path, char *out, size_t size)
{
    struct hc_response res;
    if (hr_req(r, "GET", path, NULL, &res) != 0)
        return 0;
    int status = res.status;
    snprintf(out, size, "%s", res.body ? res.body : "");
    hc_free(&res);
    return status;
}

static void test_area_to_region(void)
{
    struct hubrig reg, area;
    memset(&area, 0, sizeof area);
    area.hub = -1;
    char out[8192], args[512], pw[128] = "", npw[128] = "";

    /* The regional side: its broker, and the area's account on it. */
    if (hr_init(&reg, "mode regional\nhub_id region\nclient_id regional-hub") < 0 || hr_broker_up(&reg) < 0)
        goto done;
    snprintf(args, sizeof args, "--json area add ward7 --name 'Ward 7' --broker 127.0.0.1:%d", reg.b.port);
    CHECK_INT(hr_ctl(&reg, NULL, args, out, sizeof out), 0);
    CHECK(json_field(out, "password", pw, sizeof pw) && strlen(pw) >= 32);
    if (!pw[0])
        goto done;

    /* The area: the lines area add printed, its topology, a node, and the
     * broker with the bridge that broker config wrote. */
    char extra[1024];
    snprintf(
        extra, sizeof extra,
        "hub_id ward7\nclient_id ward7-hub\ncap_sender_name Ward 7 Firewatch\npublic_url http://127.0.0.1/\n"
        "federation true\nfed_broker 127.0.0.1:%d\nfed_password %s",
        reg.b.port, pw);
    if (hr_init(&area, extra) < 0)
        goto done;
    static const char *const setup[] = {
        "site add s1 --name 'Ward 7'",
        "zone add z1 --site s1 --name 'Alley 12'",
        "household add h1 --zone z1 --address '12/7 Le Loi' --lat 10.7768 --lon 106.7015",
        "household add h2 --zone z1 --address '12/9 Le Loi' --lat 10.7770 --lon 106.7019",
    };
    for (size_t i = 0; i < sizeof setup / sizeof setup[0]; i++)
        if (hr_ctl(&area, NULL, setup[i], out, sizeof out) != 0) {
            th_fail(__FILE__, __LINE__, "%s: %s", setup[i], out);
            goto done;
        }
    CHECK_INT(hr_ctl(&area, NULL, "--json node add n1 --household h1 --kind combo", out, sizeof out), 0);
    CHECK(json_field(out, "password", npw, sizeof npw));
    if (hr_broker_up(&area) < 0)
        goto done;
    char conf[16384] = "";
    snprintf(args, sizeof args, "cat '%s/mosquitto.conf'", area.b.dir);
    hr_sh(args, conf, sizeof conf);
    CHECK(strstr(conf, "connection firewatch-fed-ward7") != NULL);
    CHECK(strstr(conf, "topic firewatch/v1/fed/ward7/incident/+ out 1") != NULL);
    if (hr_hub_start(&area) < 0 || hr_hub_start(&reg) < 0 || hr_login(&reg, "rosa", "watch", PW) < 0)
        goto done;

    /* The area appears: bridge up, its summary and its readiness. */
    CHECK(hr_wait_api(&reg, "/api/v1/region", "\"bridge\":\"up\"", 20000));
    CHECK(hr_wait_api(&reg, "/api/v1/region", "\"name\":\"Ward 7\"", 10000));
    CHECK(hr_wait_api(&reg, "/api/v1/region", "\"households\":2", 10000));
    CHECK(hr_wait_api(&reg, "/api/v1/region", "\"readiness\":{", 10000));
    /* The overview keeps each area's worst zones; ?area= has them all. */
    CHECK_INT(get(&reg, "/api/v1/region", out, sizeof out), 200);
    CHECK(strstr(out, "\"zones_total\":1") != NULL);
    CHECK_INT(get(&reg, "/api/v1/region?area=ward7", out, sizeof out), 200);
    CHECK(strstr(out, "\"id\":\"ward7\"") && strstr(out, "\"id\":\"z1\"") && !strstr(out, "zones_total"));
    CHECK_INT(get(&reg, "/api/v1/region?area=nowhere", out, sizeof out), 200);
    CHECK(strstr(out, "\"areas\":[]") != NULL);
    CHECK_INT(get(&reg, "/api/v1/region?area=Bad!", out, sizeof out), 400);
    CHECK_INT(get(&reg, "/api/v1/health", out, sizeof out), 200);
    CHECK(strstr(out, "\"mode\":\"regional\"") != NULL);

    /* The fire. */
    CHECK_INT(node_pub(&area, "n1", npw, "firewatch/v1/node/n1/status",
                       "{\"online\":true,\"boot\":1,\"fw\":\"1.0.0\",\"kind\":\"combo\",\"ts\":1}"),
              0);
    CHECK_INT(node_pub(&area, "n1", npw, "firewatch/v1/node/n1/event",
                       "{\"seq\":1,\"ts\":1700000000001,\"type\":\"alarm\",\"cause\":\"heat_fixed\"}"),
              0);
    CHECK(hr_wait_api(&reg, "/api/v1/region/incidents?open=1", "\"state\":\"alarm\"", 15000));
    CHECK(hr_wait_api(&reg, "/api/v1/region", "\"alarms\":1", 10000));
    CHECK_INT(get(&reg, "/api/v1/region/incidents?area=ward7", out, sizeof out), 200);
    CHECK(strstr(out, "\"area\":\"ward7\"") && strstr(out, "\"zone\":\"z1\"") &&
          strstr(out, "\"zone_name\":\"Alley 12\"") && strstr(out, "\"origin\":\"n1\"") &&
          strstr(out, "\"cause\":\"heat_fixed\""));
    CHECK(hr_wait_api(&reg, "/api/v1/region/incidents",
                      "\"cap\":\"/api/v1/region/areas/ward7/incidents/1/cap\"", 10000));
    CHECK_INT(get(&reg, "/api/v1/region/areas/ward7/incidents/1/cap", out, sizeof out), 200);
    CHECK(strstr(out, "<identifier>firewatch-ward7-1-") != NULL);
    CHECK(strstr(out, "<certainty>Observed</certainty>") != NULL);
    check_xsd(out, "the forwarded CAP alert");
    /* The Atom feed of every area's alerts, well-formed around the alert. */
    CHECK_INT(get(&reg, "/api/v1/region/cap", out, sizeof out), 200);
    CHECK(strstr(out, "<feed xmlns=\"http://www.w3.org/2005/Atom\">") != NULL);
    CHECK(strstr(out, "<id>urn:firewatch:ward7:cap:firewatch-ward7-1-") != NULL);
    CHECK(strstr(out, "<title>Ward 7, Alley 12: fire alarm</title>") != NULL);
    check_wellformed(out, "the regional CAP feed");
    CHECK_INT(get(&reg, "/api/v1/region/areas/ward7/incidents/99/cap", out, sizeof out), 404);
    CHECK_INT(get(&reg, "/api/v1/region/areas/Bad!/incidents/1/cap", out, sizeof out), 400);

    /* Read-only: the regional hub does not act on an area's incident. */
    struct hc_response res;
    CHECK_INT(hr_req(&reg, "POST", "/api/v1/incidents/1/acknowledge", "{}", &res), 0);
    CHECK_INT(res.status, 403);
    hc_free(&res);

    /* The area clears it: the view follows, with the CAP Cancel. */
    CHECK_INT(node_pub(&area, "n1", npw, "firewatch/v1/node/n1/event",
                       "{\"seq\":2,\"ts\":1700000000002,\"type\":\"alarm_clear\",\"cause\":\"heat_fixed\"}"),
              0);
    if (hr_ctl(&area, NULL, "incident ack 1 --user lan", out, sizeof out) != 0)
        th_fail(__FILE__, __LINE__, "incident ack: %s", out);
    CHECK(hr_wait_api(&reg, "/api/v1/region/incidents", "\"ack_by\":\"lan\"", 15000));
    if (hr_ctl(&area, NULL, "incident clear 1 --user lan", out, sizeof out) != 0)
        th_fail(__FILE__, __LINE__, "incident clear: %s", out);
    CHECK(hr_wait_api(&reg, "/api/v1/region/incidents", "\"state\":\"cleared\"", 15000));
    CHECK(
        hr_wait_api(&reg, "/api/v1/region/areas/ward7/incidents/1/cap", "<msgType>Cancel</msgType>", 10000));
    CHECK(hr_wait_api(&reg, "/api/v1/region", "\"open_incidents\":0", 10000));

    /* The area's broker dies: the bridge's will says so; it comes back. */
    tb_kill(&area.b);
    CHECK(hr_wait_api(&reg, "/api/v1/region", "\"bridge\":\"down\"", 20000));
    CHECK_INT(tb_restart(&area.b), 0);
    CHECK(hr_wait_api(&reg, "/api/v1/region", "\"bridge\":\"up\"", 30000));

    /* The regional hub is down while a drill starts: its session keeps it. */
    CHECK(hr_hub_stop(&reg, SIGTERM));
    if (hr_ctl(&area, NULL, "incident drill z1 --user lan", out, sizeof out) != 0)
        th_fail(__FILE__, __LINE__, "incident drill: %s", out);
    if (hr_hub_start(&reg) == 0 && hr_login(&reg, "rosa", NULL, PW) == 0) {
        CHECK(hr_wait_api(&reg, "/api/v1/region/incidents?open=1", "\"kind\":\"drill\"", 20000));
    }

    /* Removed: out of the view, and its bridge is refused. */
    if (hr_ctl(&reg, NULL, "area remove ward7", out, sizeof out) != 0)
        th_fail(__FILE__, __LINE__, "area remove: %s", out);
    if (!hr_wait_api(&reg, "/api/v1/region", "\"areas\":[]", 10000)) {
        get(&reg, "/api/v1/region", out, sizeof out);
        th_fail(__FILE__, __LINE__, "ward7 still in the view: %.300s", out);
    }
    CHECK_INT(get(&reg, "/api/v1/region/incidents?area=ward7", out, sizeof out), 200);
    CHECK(strstr(out, "\"incidents\":[]") != NULL);
    CHECK_INT(get(&reg, "/api/v1/region/areas/ward7/incidents/1/cap", out, sizeof out), 404);
    char sub[512];
    snprintf(
        sub, sizeof sub,
        "mosquitto_pub -V mqttv5 -h 127.0.0.1 -p %d -u area_ward7 -P '%s' -q 1 -t firewatch/v1/fed/ward7/hub "
        "-m x 2>&1",
        reg.b.port, pw);
    CHECK(hr_sh(sub, out, sizeof out) != 0);

done:
    hr_down(&area, "area");
    hr_down(&reg, "regional");
}

static const struct th_test tests[] = {
    {"an area hub's incidents, readiness and CAP alerts reach the regional view over a bridge",
     test_area_to_region},
};

int main(int argc, char **argv)
{
    return th_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
