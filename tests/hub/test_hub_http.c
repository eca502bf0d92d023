/*
 * test_hub_http.c - firewatch-hub's HTTP face end to end: the real daemon
 * with a private Mosquitto and an HTTP port, a watch member made by
 * firewatchctl, an alarm published with mosquitto_pub. The member logs in
 * over HTTP, sees the alarm arrive on the live stream (SSE) and in the API,
 * acknowledges and clears it with the CSRF token, and the retained zone
 * alarm goes back to clear; /metrics shows the daemon's counters; the
 * incident's CAP alert and the feed validate against the OASIS schema
 * ($FW_SHARED/data/cap-v1.2.xsd); Home Assistant discovery configs appear,
 * come back on Home Assistant's birth and go when a node is removed.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "client.h"
#include "harness.h"
#include "hubrig.h"

#define PASSWORD "correct horse battery"

struct rig {
    struct tb_broker b;
    char dir[256];
    char conf[320];
    char db[320];
    char log[320];
    pid_t hub;
    int port; /* HTTP */
    char cookie[160];
    char csrf[96];
};

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    fputs(text, f);
    fclose(f);
}

/* Runs a shell command; returns its exit status (output to out, if given). */
static int sh(const char *cmd, char *out, size_t size)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = 0;
    char sink[512];
    if (out && size) {
        n = fread(out, 1, size - 1, p);
        out[n] = '\0';
    }
    while (fread(sink, 1, sizeof sink, p) > 0)
        ;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int ctl(struct rig *r, const char *input, const char *args)
{
    char cmd[1400], out[1024];
    snprintf(cmd, sizeof cmd, "%s%s%s%s -c %s %s 2>&1 %s", input ? "printf '" : "", input ? input : "",
             input ? "' | " : "", th_bin_path("firewatchctl"), r->conf, args, input ? "" : "</dev/null");
    int rc = sh(cmd, out, sizeof out);
    if (rc != 0)
        th_fail(__FILE__, __LINE__, "firewatchctl %s: %s", args, out);
    return rc;
}

static int log_count(const struct rig *r, const char *needle)
{
    FILE *f = fopen(r->log, "r");
    if (!f)
        return 0;
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

/* The HTTP port from the hub's log ("http: serving on ... (port N)"). */
static bool find_port(void *arg)
{
    struct rig *r = arg;
    FILE *f = fopen(r->log, "r");
    if (!f)
        return false;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "(port ");
        if (p && strstr(line, "http: serving on"))
            r->port = (int)strtol(p + 6, NULL, 10);
    }
    fclose(f);
    return r->port > 0 && log_count(r, "connected to") > 0;
}

static int rig_up(struct rig *r, const char *extra)
{
    memset(r, 0, sizeof *r);
    r->hub = -1;
    if (tb_init(&r->b) < 0 || tb_start(&r->b, NULL) < 0)
        return -1;
    snprintf(r->dir, sizeof r->dir, "%s", th_tmpdir("hubhttp"));
    snprintf(r->conf, sizeof r->conf, "%s/hub.conf", r->dir);
    snprintf(r->db, sizeof r->db, "%s/hub.db", r->dir);
    snprintf(r->log, sizeof r->log, "%s/hub.log", r->dir);
    char text[2048];
    snprintf(text, sizeof text,
             "broker %s\ndatabase %s\nclient_id hub-http-test\nverify_s 2\nbatch_ms 20\nkeepalive_s 10\n"
             "db_sync_full false\nhttp_listen 127.0.0.1:0\nhttp_web_root %s\nhttp_lang en\nhub_id ward7\n"
             "public_url http://127.0.0.1/\ncap_sender firewatch@ward7.example.org\n"
             "cap_sender_name Ward 7 Firewatch\n%s\n",
             r->b.url, r->db, th_root_path("hub/web"), extra ? extra : "");
    write_file(r->conf, text);
    static const char *const setup[] = {
        "site add s1 --name 'Ward 7'",
        "zone add z1 --site s1 --name 'Alley 12'",
        "household add h1 --zone z1 --address '12/7 Le Loi' --lat 10.7768 --lon 106.7015",
        "household add h2 --zone z1 --address '12/9 Le Loi' --lat 10.7770 --lon 106.7019",
        "household add h3 --zone z1 --address '12/11 Le Loi' --lat 10.7772 --lon 106.7014",
        "node add n1 --household h1 --kind combo --room kitchen",
        "node add n2 --household h2 --kind smoke",
    };
    for (size_t i = 0; i < sizeof setup / sizeof setup[0]; i++)
        if (ctl(r, NULL, setup[i]) != 0)
            return -1;
    if (ctl(r, PASSWORD "\\n", "user add binh --role watch") != 0)
        return -1;
    return 0;
}

/* Starts firewatch-hub with its output in r->log; it dies with the test. */
static pid_t spawn_hub(struct rig *r)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        int fd = open(r->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(th_bin_path("firewatch-hub"), "firewatch-hub", "--config", r->conf, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int hub_start(struct rig *r)
{
    pid_t pid = spawn_hub(r);
    if (pid < 0)
        return -errno;
    r->hub = pid;
    if (!th_wait_until(find_port, r, 15000)) {
        th_fail(__FILE__, __LINE__, "hub did not start serving HTTP and connect");
        return -ETIMEDOUT;
    }
    return 0;
}

static bool hub_stop(struct rig *r, int sig)
{
    if (r->hub <= 0)
        return true;
    kill(r->hub, sig);
    int st = 0;
    int64_t deadline = th_now_ms() + 10000;
    while (th_now_ms() < deadline) {
        if (waitpid(r->hub, &st, WNOHANG) == r->hub) {
            r->hub = -1;
            return WIFEXITED(st) && WEXITSTATUS(st) == 0;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(r->hub, SIGKILL);
    waitpid(r->hub, &st, 0);
    r->hub = -1;
    return false;
}

static void rig_down(struct rig *r)
{
    hub_stop(r, SIGKILL);
    if (th_failures() > 0) { /* the hub's last words, for the log */
        char cmd[400];
        snprintf(cmd, sizeof cmd, "tail -n 40 '%s' | sed 's/^/#   hub: /'", r->log);
        if (system(cmd) != 0)
            printf("#   (no hub log)\n");
    }
    tb_stop(&r->b);
    th_rmtree(r->dir);
}

static int pub(struct rig *r, const char *topic, const char *payload, bool retain)
{
    char cmd[2048];
    /* An empty payload is -n: with -r it deletes the retained message. */
    snprintf(cmd, sizeof cmd, "mosquitto_pub -V mqttv5 -h 127.0.0.1 -p %d -q 1 %s -t '%s' %s%s%s", r->b.port,
             retain ? "-r" : "", topic, payload[0] ? "-m '" : "-n", payload, payload[0] ? "'" : "");
    return system(cmd);
}

/* The retained message on topic (empty when none). */
static void retained(struct rig *r, const char *topic, char *out, size_t size)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "mosquitto_sub -V mqttv5 -h 127.0.0.1 -p %d -t '%s' -C 1 -W 1 2>/dev/null",
             r->b.port, topic);
    out[0] = '\0';
    sh(cmd, out, size);
    out[strcspn(out, "\n")] = '\0';
}

struct retwait {
    struct rig *r;
    const char *topic, *needle; /* needle NULL: no retained message */
};

static bool retained_is(void *arg)
{
    struct retwait *w = arg;
    char line[2048];
    retained(w->r, w->topic, line, sizeof line);
    return w->needle ? strstr(line, w->needle) != NULL : line[0] == '\0';
}

/* A request as the logged-in member (cookie, and CSRF on state changes). */
static int req(struct rig *r, const char *method, const char *path, const char *body, struct hc_response *out)
{
    char hdr[512];
    bool change = strcmp(method, "GET") != 0;
    snprintf(hdr, sizeof hdr, "Cookie: fw_session=%s\r\n%s%s%s", r->cookie, change ? "X-CSRF-Token: " : "",
             change ? r->csrf : "", change ? "\r\n" : "");
    return hc_request(r->port, method, path, hdr, body, body ? strlen(body) : 0, out);
}

/* Copies the string member key of a flat JSON text (enough for these answers). */
static bool json_str(const char *text, const char *key, char *out, size_t size)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *p = text ? strstr(text, pat) : NULL;
    if (!p)
        return false;
    p += strlen(pat);
    size_t n = strcspn(p, "\"");
    snprintf(out, size, "%.*s", (int)(n < size ? n : size - 1), p);
    return true;
}

static int login(struct rig *r)
{
    struct hc_response res;
    int rc = hc_request(r->port, "POST", "/api/v1/session", NULL,
                        "{\"user\":\"binh\",\"password\":\"" PASSWORD "\"}",
                        strlen("{\"user\":\"binh\",\"password\":\"" PASSWORD "\"}"), &res);
    CHECK_INT(rc, 0);
    CHECK_INT(res.status, 200);
    char set[512] = "";
    hc_header(&res, "Set-Cookie", set, sizeof set);
    const char *v = strstr(set, "fw_session=");
    if (v)
        snprintf(r->cookie, sizeof r->cookie, "%.*s", (int)strcspn(v + 11, ";"), v + 11);
    CHECK(json_str(res.body, "csrf", r->csrf, sizeof r->csrf));
    hc_free(&res);
    return r->cookie[0] && r->csrf[0] ? 0 : -1;
}

struct apiwait {
    struct rig *r;
    const char *path, *needle;
};

static bool api_has(void *arg)
{
    struct apiwait *w = arg;
    struct hc_response res;
    if (req(w->r, "GET", w->path, NULL, &res) != 0)
        return false;
    bool ok = res.status == 200 && res.body && strstr(res.body, w->needle) != NULL;
    hc_free(&res);
    return ok;
}

static bool wait_api(struct rig *r, const char *path, const char *needle, int ms)
{
    struct apiwait w = {r, path, needle};
    return th_wait_until(api_has, &w, ms);
}

/* Validates an XML file against the CAP 1.2 schema; skips without it. */
static void check_xsd(const char *file, const char *what)
{
    const char *shared = getenv("FW_SHARED");
    if (!shared || !*shared) {
        printf("# skipped: %s not validated (FW_SHARED is unset; it names the directory with "
               "data/cap-v1.2.xsd)\n",
               what);
        return;
    }
    char xsd[512], cmd[1400], out[2048];
    snprintf(xsd, sizeof xsd, "%s/data/cap-v1.2.xsd", shared);
    if (access(xsd, R_OK) != 0) {
        printf("# skipped: %s not validated (%s is missing)\n", what, xsd);
        return;
    }
    snprintf(cmd, sizeof cmd, "xmllint --noout --schema '%s' '%s' 2>&1", xsd, file);
    int rc = sh(cmd, out, sizeof out);
    th_report(rc == 0, "%s validates against the OASIS CAP 1.2 schema%s%s", what, rc ? ": " : "",
              rc ? out : "");
}

/* ------------------------------------------------------------------------- */

static void test_alarm_over_http(void)
{
    struct rig r;
    if (rig_up(&r, NULL) < 0 || hub_start(&r) < 0 || login(&r) < 0) {
        rig_down(&r);
        return;
    }
    struct hc_response res;
    /* Every state change needs the CSRF token; the stream needs a login. */
    CHECK_INT(hc_request(r.port, "GET", "/api/v1/stream", NULL, NULL, 0, &res), 0);
    CHECK_INT(res.status, 401);
    hc_free(&res);

    char sreq[512];
    snprintf(sreq, sizeof sreq,
             "GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: fw_session=%s\r\n\r\n", r.cookie);
    int sfd = hc_open(r.port, sreq);
    CHECK(sfd >= 0);
    static char sbuf[65536];
    size_t slen = 0;
    sbuf[0] = '\0';
    CHECK(sfd >= 0 && hc_read_until(sfd, sbuf, sizeof sbuf, &slen, 0, ": firewatch stream", 5000));

    /* n1 comes online and passes its commissioning test: a node event now,
     * and its zone's readiness changes (checked at the end: readiness is
     * rescored at most every 5 s). */
    CHECK_INT(pub(&r, "firewatch/v1/node/n1/event",
                  "{\"seq\":0,\"ts\":1,\"type\":\"test\",\"result\":\"pass\"}", false),
              0);
    CHECK_INT(pub(&r, "firewatch/v1/node/n1/status",
                  "{\"online\":true,\"boot\":3,\"fw\":\"1.2.3\",\"kind\":\"combo\",\"ts\":1}", true),
              0);
    CHECK(sfd >= 0 && hc_read_until(sfd, sbuf, sizeof sbuf, &slen, 0, "\"id\":\"n1\",\"online\":true", 5000));
    CHECK(strstr(sbuf, "event: node") != NULL);

    /* The fire: fixed heat escalates at once. */
    int64_t t0 = th_now_ms();
    CHECK_INT(pub(&r, "firewatch/v1/node/n1/event",
                  "{\"seq\":1,\"ts\":1700000000001,\"type\":\"alarm\",\"cause\":\"heat_fixed\"}", false),
              0);
    size_t mark = slen;
    CHECK(sfd >= 0 && hc_read_until(sfd, sbuf, sizeof sbuf, &slen, mark, "\"state\":\"alarm\"", 5000));
    printf("# alarm on the stream after %lld ms\n", (long long)(th_now_ms() - t0));
    const char *ev = strstr(sbuf + mark, "event: incident");
    CHECK(ev != NULL);
    CHECK(strstr(sbuf + mark, "\"id\":1,\"zone\":\"z1\"") != NULL);
    CHECK(strstr(sbuf + mark, "\"kind\":\"fire\"") != NULL);
    CHECK(strstr(sbuf + mark, "\"origin\":\"n1\"") != NULL);
    CHECK(strstr(sbuf + mark, "\"event\":\"escalated\"") != NULL);
    CHECK(wait_api(&r, "/api/v1/incidents?state=active",
                   "\"id\":1,\"zone\":\"z1\",\"origin\":\"n1\",\"state\":\"alarm\"", 5000));

    /* Acknowledge: refused without the CSRF token, then done. */
    char hdr[300];
    snprintf(hdr, sizeof hdr, "Cookie: fw_session=%s\r\n", r.cookie);
    CHECK_INT(hc_request(r.port, "POST", "/api/v1/incidents/1/acknowledge", hdr, NULL, 0, &res), 0);
    CHECK_INT(res.status, 403);
    hc_free(&res);
    CHECK_INT(req(&r, "POST", "/api/v1/incidents/1/acknowledge", NULL, &res), 0);
    CHECK_INT(res.status, 200);
    CHECK(res.body && strstr(res.body, "\"ok\":true") != NULL);
    hc_free(&res);
    mark = slen;
    CHECK(sfd >= 0 && hc_read_until(sfd, sbuf, sizeof sbuf, &slen, mark, "\"state\":\"acknowledged\"", 5000));
    CHECK(strstr(sbuf + mark, "\"who\":\"binh\"") != NULL);
    CHECK_INT(req(&r, "POST", "/api/v1/incidents/1/acknowledge", NULL, &res), 0);
    CHECK_INT(res.status, 409); /* the engine's answer: already acknowledged */
    hc_free(&res);
    CHECK_INT(req(&r, "POST", "/api/v1/incidents/99/acknowledge", NULL, &res), 0);
    CHECK_INT(res.status, 404);
    hc_free(&res);

    /* Clear: refused while the detector is still in alarm. */
    CHECK_INT(req(&r, "POST", "/api/v1/incidents/1/clear", NULL, &res), 0);
    CHECK_INT(res.status, 409);
    CHECK(res.body && strstr(res.body, "still in alarm") != NULL);
    hc_free(&res);
    CHECK_INT(pub(&r, "firewatch/v1/node/n1/event",
                  "{\"seq\":2,\"ts\":1700000000002,\"type\":\"alarm_clear\",\"cause\":\"heat_fixed\"}",
                  false),
              0);
    mark = slen;
    CHECK(sfd >= 0 &&
          hc_read_until(sfd, sbuf, sizeof sbuf, &slen, mark, "\"event\":\"sensor_normal\"", 5000));
    CHECK_INT(req(&r, "POST", "/api/v1/incidents/1/clear", NULL, &res), 0);
    CHECK_INT(res.status, 200);
    hc_free(&res);
    mark = slen;
    CHECK(sfd >= 0 && hc_read_until(sfd, sbuf, sizeof sbuf, &slen, mark, "\"state\":\"cleared\"", 5000));
    struct retwait rw = {&r, "firewatch/v1/zone/z1/alarm", "\"state\":\"clear\""};
    CHECK(th_wait_until(retained_is, &rw, 5000));
    CHECK(wait_api(&r, "/api/v1/incidents/1", "\"state\":\"cleared\"", 5000));
    CHECK(wait_api(&r, "/api/v1/incidents/1", "\"acked_by\":\"binh\"", 5000));

    /* A drill from the API, ended without acknowledging. */
    CHECK_INT(req(&r, "POST", "/api/v1/zones/z1/drill", NULL, &res), 0);
    CHECK_INT(res.status, 201);
    CHECK(res.body && strstr(res.body, "\"incident\":2") != NULL);
    hc_free(&res);
    CHECK_INT(req(&r, "POST", "/api/v1/zones/nowhere/drill", NULL, &res), 0);
    CHECK_INT(res.status, 404);
    hc_free(&res);
    CHECK_INT(req(&r, "POST", "/api/v1/incidents/2/clear", NULL, &res), 0);
    CHECK_INT(res.status, 200);
    hc_free(&res);

    /* The daemon's counters on /metrics (refreshed every second). */
    CHECK(wait_api(&r, "/metrics", "firewatch_incidents_closed_total{state=\"cleared\"} 2", 5000));
    CHECK_INT(hc_request(r.port, "GET", "/metrics", NULL, NULL, 0, &res), 0);
    CHECK_INT(res.status, 200);
    static const char *const series[] = {
        "firewatch_messages_received_total ",
        "firewatch_messages_rejected_total{reason=\"json\"} 0",
        "firewatch_events_stored_total 3",
        "firewatch_queue_depth 0",
        "firewatch_event_commit_seconds_count 3",
        "firewatch_incidents_open{state=\"alarm\"} 0",
        "firewatch_nodes{health=\"uncommissioned\"} 1",
        "firewatch_nodes{health=\"ok\"} 1",
        "firewatch_dashboard_actions_total 8", /* every action above reached the main loop */
        "firewatch_http_requests_total{code=\"200\"}",
        "firewatch_stream_clients 1",
    };
    for (size_t i = 0; i < sizeof series / sizeof series[0]; i++)
        th_report(res.body && strstr(res.body, series[i]) != NULL, "/metrics has %s", series[i]);
    hc_free(&res);

    /* CAP: the incident's Cancel and the feed, watch role only. */
    CHECK_INT(hc_request(r.port, "GET", "/api/v1/incidents/1/cap", NULL, NULL, 0, &res), 0);
    CHECK_INT(res.status, 401);
    hc_free(&res);
    CHECK_INT(req(&r, "GET", "/api/v1/incidents/1/cap", NULL, &res), 0);
    CHECK_INT(res.status, 200);
    char ctype[128] = "";
    hc_header(&res, "Content-Type", ctype, sizeof ctype);
    CHECK(strncmp(ctype, "application/cap+xml", 19) == 0);
    CHECK(res.body && strstr(res.body, "<msgType>Cancel</msgType>") != NULL);
    CHECK(res.body && strstr(res.body, "<identifier>firewatch-ward7-1-4</identifier>") != NULL);
    CHECK(res.body && strstr(res.body, "<sender>firewatch@ward7.example.org</sender>") != NULL);
    CHECK(res.body && strstr(res.body, "<areaDesc>Alley 12, Ward 7</areaDesc>") != NULL);
    CHECK(res.body && strstr(res.body, "<polygon>") != NULL);
    CHECK(res.body && strstr(res.body, "12/7 Le Loi") != NULL);
    char path[400];
    snprintf(path, sizeof path, "%s/alert.xml", r.dir);
    write_file(path, res.body ? res.body : "");
    hc_free(&res);
    check_xsd(path, "GET /api/v1/incidents/1/cap");
    CHECK_INT(req(&r, "GET", "/api/v1/incidents/77/cap", NULL, &res), 0);
    CHECK_INT(res.status, 404);
    hc_free(&res);
    CHECK_INT(req(&r, "GET", "/api/v1/cap", NULL, &res), 0);
    CHECK_INT(res.status, 200);
    hc_header(&res, "Content-Type", ctype, sizeof ctype);
    CHECK(strncmp(ctype, "application/atom+xml", 20) == 0);
    CHECK(res.body && strstr(res.body, "<feed xmlns=\"http://www.w3.org/2005/Atom\">") != NULL);
    CHECK(res.body && strstr(res.body, "/api/v1/incidents/1/cap") != NULL);
    CHECK(res.body && strstr(res.body, "<status>Exercise</status>") != NULL); /* the drill */
    hc_free(&res);

    /* The readiness of z1 moved (n1 commissioned, an acknowledge time). */
    CHECK(sfd >= 0 && hc_read_until(sfd, sbuf, sizeof sbuf, &slen, 0, "\"zone\":\"z1\",\"score\":", 15000));
    CHECK(strstr(sbuf, "event: readiness") != NULL);

    /* A clean stop with a stream client still connected. */
    CHECK(hub_stop(&r, SIGTERM));
    if (sfd >= 0)
        close(sfd);
    rig_down(&r);
}

static void test_home_assistant_discovery(void)
{
    struct rig r;
    if (rig_up(&r, "ha_discovery true") < 0 || hub_start(&r) < 0) {
        rig_down(&r);
        return;
    }
    struct retwait zone = {&r, "homeassistant/binary_sensor/firewatch_zone_z1/alarm/config",
                           "\"unique_id\":\"firewatch_zone_z1_alarm\""};
    CHECK(th_wait_until(retained_is, &zone, 5000));
    struct retwait smoke = {&r, "homeassistant/binary_sensor/firewatch_node_n1/smoke/config",
                            "\"suggested_area\":\"kitchen\""};
    CHECK(th_wait_until(retained_is, &smoke, 5000));
    /* Someone deletes a config (once the hub has sent it: its publishes
     * are in flight a while); Home Assistant's birth brings it back. */
    struct retwait back = {&r, "homeassistant/sensor/firewatch_node_n2/battery/config",
                           "\"unique_id\":\"firewatch_node_n2_battery\""};
    CHECK(th_wait_until(retained_is, &back, 5000));
    CHECK_INT(pub(&r, "homeassistant/sensor/firewatch_node_n2/battery/config", "", true), 0);
    struct retwait gone = {&r, "homeassistant/sensor/firewatch_node_n2/battery/config", NULL};
    CHECK(th_wait_until(retained_is, &gone, 5000));
    CHECK_INT(pub(&r, "homeassistant/status", "online", false), 0);
    CHECK(th_wait_until(retained_is, &back, 5000));
    /* A removed node's entities go. */
    CHECK_INT(ctl(&r, NULL, "node remove n2"), 0);
    struct retwait removed = {&r, "homeassistant/binary_sensor/firewatch_node_n2/smoke/config", NULL};
    CHECK(th_wait_until(retained_is, &removed, 8000));
    /* So do a decommissioned node's, and they are not published again. */
    CHECK_INT(ctl(&r, NULL, "node decommission n1"), 0);
    struct retwait retired = {&r, "homeassistant/binary_sensor/firewatch_node_n1/smoke/config", NULL};
    CHECK(th_wait_until(retained_is, &retired, 8000));
    CHECK_INT(pub(&r, "homeassistant/status", "online", false), 0);
    struct retwait zone_again = {&r, "homeassistant/binary_sensor/firewatch_zone_z1/alarm/config",
                                 "\"unique_id\""};
    CHECK(th_wait_until(retained_is, &zone_again, 5000));
    CHECK(!th_wait_until(retained_is, &(struct retwait){&r, smoke.topic, "\"unique_id\""}, 2000));
    CHECK(hub_stop(&r, SIGTERM));
    rig_down(&r);
}

static void test_no_http_when_listen_is_empty(void)
{
    struct rig r;
    if (rig_up(&r, NULL) < 0) {
        rig_down(&r);
        return;
    }
    char text[1024];
    snprintf(text, sizeof text, "broker %s\ndatabase %s\nclient_id hub-http-test\nhttp_listen \n", r.b.url,
             r.db);
    write_file(r.conf, text);
    r.hub = spawn_hub(&r);
    int64_t deadline = th_now_ms() + 10000;
    while (log_count(&r, "connected to") == 0 && th_now_ms() < deadline) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    CHECK(log_count(&r, "connected to") > 0);
    CHECK_INT(log_count(&r, "http: serving"), 0);
    CHECK(hub_stop(&r, SIGTERM));
    rig_down(&r);
}

/* Sessions outlive the daemon: a member signed in before a restart (an
 * upgrade, a power cut) is still signed in after it, with the same CSRF
 * token; changing the role from firewatchctl takes effect at once, and a
 * password change or a removal from firewatchctl signs them out, restart or
 * not. Logging out is final, restart or not. */
static void test_sessions_survive_restart(void)
{
    struct hubrig r;
    char out[2048];
    if (hr_init(&r, NULL) < 0 || hr_broker_up(&r) < 0 || hr_hub_start(&r) < 0 ||
        hr_login(&r, "binh", "watch", PASSWORD) < 0) {
        hr_down(&r, "hub");
        return;
    }
    struct hc_response res;
    CHECK_INT(hr_req(&r, "GET", "/api/v1/session", NULL, &res), 0);
    CHECK_INT(res.status, 200);
    hc_free(&res);
    CHECK(hr_hub_stop(&r, SIGTERM));
    if (hr_hub_start(&r) < 0) {
        hr_down(&r, "hub");
        return;
    }
    CHECK_INT(hr_req(&r, "GET", "/api/v1/session", NULL, &res), 0);
    CHECK_INT(res.status, 200);
    CHECK(res.body && strstr(res.body, "\"user\":\"binh\"") && strstr(res.body, "\"role\":\"watch\""));
    hc_free(&res);
    /* The CSRF token came back with it: a state change passes the CSRF
     * check and reaches the engine (which knows no incident 99). */
    CHECK_INT(hr_req(&r, "POST", "/api/v1/incidents/99/acknowledge", "{}", &res), 0);
    CHECK_INT(res.status, 404);
    hc_free(&res);

    CHECK_INT(hr_ctl(&r, NULL, "user role binh technician", out, sizeof out), 0);
    CHECK(hr_wait_api(&r, "/api/v1/session", "\"role\":\"technician\"", 5000));
    CHECK_INT(hr_ctl(&r, "another long password\\n", "user password binh", out, sizeof out), 0);
    CHECK_INT(hr_req(&r, "GET", "/api/v1/session", NULL, &res), 0);
    CHECK_INT(res.status, 401);
    hc_free(&res);

    /* Logged out: gone for good. */
    CHECK_INT(hr_login(&r, "binh", NULL, "another long password"), 0);
    CHECK_INT(hr_req(&r, "DELETE", "/api/v1/session", NULL, &res), 0);
    CHECK_INT(res.status, 200);
    hc_free(&res);
    CHECK(hr_hub_stop(&r, SIGTERM));
    if (hr_hub_start(&r) == 0) {
        CHECK_INT(hr_req(&r, "GET", "/api/v1/session", NULL, &res), 0);
        CHECK_INT(res.status, 401);
        hc_free(&res);
    }
    /* A removed user's session ends with them. */
    CHECK_INT(hr_login(&r, "binh", NULL, "another long password"), 0);
    CHECK_INT(hr_ctl(&r, NULL, "user remove binh", out, sizeof out), 0);
    CHECK_INT(hr_req(&r, "GET", "/api/v1/session", NULL, &res), 0);
    CHECK_INT(res.status, 401);
    hc_free(&res);
    hr_down(&r, "hub");
}

TH_MAIN(TH_TEST(test_alarm_over_http), TH_TEST(test_sessions_survive_restart),
        TH_TEST(test_home_assistant_discovery), TH_TEST(test_no_http_when_listen_is_empty))
