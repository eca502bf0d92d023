/*
 * test_node_mqtt.c - firewatch-node end to end: the built binary runs as a
 * child process with the sim backend at high speed against a private
 * Mosquitto (tests/lib/broker.h). A mosquitto_sub child with a persistent
 * session records everything under firewatch/v1/ to a file, and every line
 * is checked with the protocol library: topic parsed, payload decoded.
 *
 * Covered: birth (retained) and the will after kill -9; readings and events
 * on the documented topics; events raised while the broker is down arrive
 * in order, none lost, once it is back; commands answered with cmd_result
 * (selftest also with a test event); the zone alarm drives the neighbour
 * pattern (read from the sim log); the sounder starts with no broker at
 * all; SIGTERM publishes offline and exits 0; the command line.
 *
 * Every child gets PR_SET_PDEATHSIG so nothing outlives the suite.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker.h"
#include "firewatch/protocol.h"
#include "harness.h"

#define MAX_MSGS 2048

struct rec {
    struct fw_topic topic;
    struct fw_msg msg;
};

struct env {
    struct tb_broker b;
    char dir[256];
    char conf[320], sim_log[320], node_err[320], sub_out[320], scenario[320];
    pid_t node, sub;
    struct rec msgs[MAX_MSGS];
    int n, bad;
};

static struct env E;

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t cap = 1 << 20;
    char *buf = malloc(cap);
    if (buf) {
        size_t n = fread(buf, 1, cap - 1, f);
        buf[n] = '\0';
    }
    fclose(f);
    return buf;
}

/* Forks and execs argv with stdout/stderr to the files given (NULL: /dev/null). */
static pid_t spawn(char *const argv[], const char *out, const char *err)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(1);
    int o = open(out ? out : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
    int e = open(err ? err : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
    int in = open("/dev/null", O_RDONLY);
    if (o < 0 || e < 0 || in < 0)
        _exit(126);
    dup2(in, 0);
    dup2(o, 1);
    dup2(e, 2);
    execvp(argv[0], argv);
    _exit(127);
}

struct waitarg {
    pid_t pid;
    int status;
};

static bool exited(void *p)
{
    struct waitarg *w = p;
    return waitpid(w->pid, &w->status, WNOHANG) == w->pid;
}

/* Signals pid and waits up to timeout_ms; SIGKILL after that. Returns the
 * wait status, or -1 when it had to be killed. */
static int stop(pid_t *pid, int sig, int timeout_ms)
{
    if (*pid <= 0)
        return 0;
    struct waitarg w = {*pid, 0};
    kill(*pid, sig);
    int rc = 0;
    if (!th_wait_until(exited, &w, timeout_ms)) {
        kill(*pid, SIGKILL);
        waitpid(*pid, &w.status, 0);
        rc = -1;
    }
    *pid = -1;
    return rc < 0 ? rc : w.status;
}

static void env_start(const char *scenario_text, const char *extra_conf, bool with_broker)
{
    memset(&E, 0, sizeof E);
    E.node = E.sub = -1;
    E.b.pid = -1;
    snprintf(E.dir, sizeof E.dir, "%s", th_tmpdir("node-mqtt"));
    snprintf(E.conf, sizeof E.conf, "%s/node.conf", E.dir);
    snprintf(E.sim_log, sizeof E.sim_log, "%s/sim.log", E.dir);
    snprintf(E.node_err, sizeof E.node_err, "%s/node.err", E.dir);
    snprintf(E.sub_out, sizeof E.sub_out, "%s/sub.out", E.dir);
    snprintf(E.scenario, sizeof E.scenario, "%s/scenario.csv", E.dir);
    write_file(E.scenario, scenario_text);

    char port[16] = "1";
    if (with_broker) {
        CHECK_INT(tb_init(&E.b), 0);
        CHECK_INT(tb_start(&E.b, NULL), 0);
        snprintf(port, sizeof port, "%d", E.b.port);
        char *sub[] = {"mosquitto_sub",
                       "-V",
                       "mqttv5",
                       "-h",
                       "127.0.0.1",
                       "-p",
                       port,
                       "-i",
                       "fw-test-sub",
                       "-c",
                       "-x",
                       "3600",
                       "-q",
                       "1",
                       "-t",
                       "firewatch/v1/#",
                       "-F",
                       "%t %p",
                       NULL};
        E.sub = spawn(sub, E.sub_out, NULL);
    }
    char conf[2048];
    snprintf(conf, sizeof conf,
             "id node-1\nzone zone-a\nbroker tcp://127.0.0.1:%s\nbackend sim\nscenario %s\nsim_log %s\n"
             "state_dir %s/state\nreconnect_max_s 1\nsample_ms 1000\ninterval_s 10\n%s",
             with_broker ? port : "1", E.scenario, E.sim_log, E.dir, extra_conf ? extra_conf : "");
    write_file(E.conf, conf);
}

static void env_node_start(void)
{
    char *argv[] = {(char *)th_bin_path("firewatch-node"), "--config", E.conf, NULL};
    E.node = spawn(argv, NULL, E.node_err);
}

static void env_stop(void)
{
    stop(&E.node, SIGKILL, 2000);
    stop(&E.sub, SIGTERM, 2000);
    if (E.b.pid > 0 || E.b.dir[0])
        tb_stop(&E.b);
    if (th_failures()) {
        char *err = read_all(E.node_err);
        if (err)
            printf("# node stderr:\n%s", err);
        free(err);
    }
    th_rmtree(E.dir);
}

/* Re-reads the subscriber's output and decodes every line. */
static void collect(void)
{
    char *text = read_all(E.sub_out);
    E.n = 0;
    E.bad = 0;
    if (!text)
        return;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l && E.n < MAX_MSGS;
         l = strtok_r(NULL, "\n", &save)) {
        char *sp = strchr(l, ' ');
        if (!sp)
            continue;
        struct rec *r = &E.msgs[E.n];
        struct fw_error err;
        if (fw_topic_parse(l, (size_t)(sp - l), &r->topic, &err) < 0 ||
            fw_msg_decode(r->topic.channel, sp + 1, strlen(sp + 1), &r->msg, &err) < 0) {
            /* Only what the node sends must decode; the tests send bad commands on purpose. */
            if (strncmp(l, "firewatch/v1/node/", 18) == 0 && r->topic.channel != FW_CH_NODE_CMD) {
                printf("# undecodable: %s (%s)\n", l, err.msg);
                E.bad++;
            }
            continue;
        }
        E.n++;
    }
    free(text);
}

/* Counts node events of type (and cause unless NONE) from node-1. */
static int count_events(enum fw_event_type type, enum fw_cause cause)
{
    int c = 0;
    for (int i = 0; i < E.n; i++) {
        const struct rec *r = &E.msgs[i];
        if (r->topic.channel == FW_CH_NODE_EVENT && r->msg.u.event.type == type &&
            (cause == FW_CAUSE_NONE || r->msg.u.event.cause == cause))
            c++;
    }
    return c;
}

static const struct rec *last_status(void)
{
    const struct rec *s = NULL;
    for (int i = 0; i < E.n; i++)
        if (E.msgs[i].topic.channel == FW_CH_NODE_STATUS)
            s = &E.msgs[i];
    return s;
}

struct want {
    enum fw_event_type type;
    enum fw_cause cause;
    int n;
};

static bool have_event(void *p)
{
    const struct want *w = p;
    collect();
    return count_events(w->type, w->cause) >= w->n;
}

static bool online_seen(void *p)
{
    bool want = *(bool *)p;
    collect();
    const struct rec *s = last_status();
    return s && s->msg.u.status.online == want;
}

static bool readings_seen(void *p)
{
    int want = *(int *)p, c = 0;
    collect();
    for (int i = 0; i < E.n; i++)
        c += E.msgs[i].topic.channel == FW_CH_NODE_READING;
    return c >= want;
}

static bool sim_log_has(void *p)
{
    char *text = read_all(E.sim_log);
    bool ok = text && strstr(text, (const char *)p);
    free(text);
    return ok;
}

static bool node_err_has(void *p)
{
    char *text = read_all(E.node_err);
    bool ok = text && strstr(text, (const char *)p);
    free(text);
    return ok;
}

/* Rewrites the node's config replacing the first `from` with `to`. */
static void edit_conf(const char *from, const char *to)
{
    char *text = read_all(E.conf);
    char *at = text ? strstr(text, from) : NULL;
    CHECK(at != NULL);
    if (at) {
        FILE *f = fopen(E.conf, "w");
        CHECK(f != NULL);
        if (f) {
            fwrite(text, 1, (size_t)(at - text), f);
            fputs(to, f);
            fputs(at + strlen(from), f);
            fclose(f);
        }
    }
    free(text);
}

static void pub(const char *topic, const char *payload, bool retain)
{
    char port[16];
    snprintf(port, sizeof port, "%d", E.b.port);
    char *argv[] = {"mosquitto_pub",
                    "-V",
                    "mqttv5",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    port,
                    "-q",
                    "1",
                    "-t",
                    (char *)topic,
                    "-m",
                    (char *)payload,
                    retain ? "-r" : NULL,
                    NULL};
    pid_t pid = spawn(argv, NULL, NULL);
    struct waitarg w = {pid, 0};
    CHECK(th_wait_until(exited, &w, 5000));
    CHECK(WIFEXITED(w.status) && WEXITSTATUS(w.status) == 0);
}

/* A quiet room with a fire button press, a hush and a test press. */
static const char *quiet_with_buttons = "t_s,temp_c,smoke,batt_pct,button\n"
                                        "0,24.0,0,88,\n"
                                        "20,24.5,0,88,fire\n"
                                        "25,24.5,0,88,hush\n"
                                        "30,25.0,0,88,test\n"
                                        "600,25.0,0,88,\n";

static void test_birth_readings_events_and_will(void)
{
    env_start(quiet_with_buttons, "speed 20\n", true);
    env_node_start();
    bool online = true;
    CHECK(th_wait_until(online_seen, &online, 10000));
    struct want test_ev = {FW_EV_TEST, FW_CAUSE_NONE, 1};
    CHECK(th_wait_until(have_event, &test_ev, 10000));
    int readings = 2;
    CHECK(th_wait_until(readings_seen, &readings, 10000));
    collect();
    CHECK_INT(E.bad, 0);
    /* Birth: every field, from this node. */
    const struct rec *birth = NULL;
    for (int i = 0; i < E.n && !birth; i++)
        if (E.msgs[i].topic.channel == FW_CH_NODE_STATUS)
            birth = &E.msgs[i];
    CHECK(birth != NULL);
    if (birth) {
        CHECK_STR(birth->topic.id, "node-1");
        CHECK(birth->msg.u.status.online && birth->msg.u.status.has_birth_fields);
        CHECK_INT(birth->msg.u.status.boot, 1);
        CHECK_INT(birth->msg.u.status.kind, FW_KIND_COMBO);
    }
    CHECK_INT(count_events(FW_EV_ALARM, FW_CAUSE_BUTTON), 1);
    CHECK_INT(count_events(FW_EV_SILENCE, FW_CAUSE_NONE), 1);
    /* seq rises by one per reading or event, from 0, with nothing missing. */
    uint32_t next = 0;
    bool in_order = true;
    for (int i = 0; i < E.n; i++) {
        const struct rec *r = &E.msgs[i];
        if (r->topic.channel == FW_CH_NODE_READING || r->topic.channel == FW_CH_NODE_EVENT) {
            uint32_t seq = r->topic.channel == FW_CH_NODE_READING ? r->msg.u.reading.seq : r->msg.u.event.seq;
            in_order = in_order && seq == next;
            next = seq + 1;
            if (r->topic.channel == FW_CH_NODE_READING) {
                CHECK(r->msg.u.reading.temp_c >= 24.0 && r->msg.u.reading.temp_c <= 25.0);
                CHECK_INT(r->msg.u.reading.batt_pct, 88);
            }
        }
    }
    th_report(in_order, "seq runs 0..%u without a gap", next ? next - 1 : 0);
    /* The sounder: alarm at the button, off at the hush, test at the test press. */
    CHECK(sim_log_has("sounder alarm"));
    CHECK(sim_log_has("sounder test"));

    /* kill -9: the broker publishes the will, retained. */
    stop(&E.node, SIGKILL, 2000);
    online = false;
    CHECK(th_wait_until(online_seen, &online, 10000));
    const struct rec *will = last_status();
    if (will) {
        CHECK(!will->msg.u.status.online && !will->msg.u.status.has_birth_fields);
        CHECK_INT(will->msg.u.status.boot, 1);
    }
    /* A restart is a new boot, and seq starts again at 0. */
    env_node_start();
    online = true;
    CHECK(th_wait_until(online_seen, &online, 10000));
    const struct rec *again = last_status();
    if (again)
        CHECK_INT(again->msg.u.status.boot, 2);
    env_stop();
}

/* True once a reading with temp_c >= *p (or smoke, when *p < 0) arrived. */
static bool reading_with(void *p)
{
    double want = *(double *)p;
    collect();
    for (int i = 0; i < E.n; i++) {
        const struct rec *r = &E.msgs[i];
        if (r->topic.channel == FW_CH_NODE_READING &&
            (want < 0 ? r->msg.u.reading.smoke : r->msg.u.reading.temp_c >= want))
            return true;
    }
    return false;
}

static void test_readings_on_significant_change(void)
{
    /* interval_s is an hour: every reading after the first is "at once". */
    env_start("t_s,temp_c,smoke,batt_pct,button\n0,22,0,90,\n20,22,0,90,\n21,27,0,90,\n40,27,1,90,\n"
              "3600,27,1,90,\n",
              "speed 10\n", true);
    edit_conf("interval_s 10", "interval_s 3600");
    env_node_start();
    double hot = 26.0, smoke = -1;
    CHECK(th_wait_until(reading_with, &hot, 10000));
    CHECK(th_wait_until(reading_with, &smoke, 10000));
    int readings = 0;
    for (int i = 0; i < E.n; i++)
        readings += E.msgs[i].topic.channel == FW_CH_NODE_READING;
    th_report(readings >= 3 && readings <= 12, "%d readings: the first, the 5 C step, the smoke change",
              readings);
    env_stop();
}

static bool cmd_result_for(void *p)
{
    collect();
    for (int i = 0; i < E.n; i++) {
        const struct rec *r = &E.msgs[i];
        if (r->topic.channel == FW_CH_NODE_EVENT && r->msg.u.event.type == FW_EV_CMD_RESULT &&
            strcmp(r->msg.u.event.cmd_id, (const char *)p) == 0)
            return true;
    }
    return false;
}

static const struct fw_event *find_result(const char *id)
{
    for (int i = 0; i < E.n; i++) {
        const struct rec *r = &E.msgs[i];
        if (r->topic.channel == FW_CH_NODE_EVENT && r->msg.u.event.type == FW_EV_CMD_RESULT &&
            strcmp(r->msg.u.event.cmd_id, id) == 0)
            return &r->msg.u.event;
    }
    return NULL;
}

static void test_commands_and_sigterm(void)
{
    env_start("t_s,temp_c,smoke,batt_pct,button\n0,22,0,,\n3600,22.5,0,,\n", "speed 5\n", true);
    env_node_start();
    bool online = true;
    CHECK(th_wait_until(online_seen, &online, 10000));
    int one = 1;
    CHECK(th_wait_until(readings_seen, &one, 10000)); /* a temperature is known, so the self-test can pass */
    const char *topic = "firewatch/v1/node/node-1/cmd";
    pub(topic, "{\"id\":\"c-self\",\"cmd\":\"selftest\"}", false);
    pub(topic, "{\"id\":\"c-silence\",\"cmd\":\"silence\"}", false);
    pub(topic, "{\"id\":\"c-ident\",\"cmd\":\"identify\"}", false);
    pub(topic, "{\"id\":\"c-set\",\"cmd\":\"set\",\"interval_s\":30}", false);
    pub(topic, "{\"id\":\"c-bad\",\"cmd\":\"reboot\"}", false); /* refused, logged, ignored */
    CHECK(th_wait_until(cmd_result_for, "c-set", 10000));
    collect();
    const struct fw_event *e = find_result("c-self");
    CHECK(e && e->result == FW_RESULT_OK && strcmp(e->detail, "pass") == 0);
    CHECK_INT(count_events(FW_EV_TEST, FW_CAUSE_NONE), 1);
    e = find_result("c-silence");
    CHECK(e && e->result == FW_RESULT_ERROR); /* nothing to silence */
    e = find_result("c-ident");
    CHECK(e && e->result == FW_RESULT_OK);
    e = find_result("c-set");
    CHECK(e && e->result == FW_RESULT_OK && strcmp(e->detail, "interval_s=30") == 0);
    CHECK(find_result("c-bad") == NULL);
    CHECK(th_wait_until(sim_log_has, "sounder identify", 5000) || sim_log_has("led identify"));
    CHECK_INT(E.bad, 0);
    /* The test event comes before its cmd_result: commissioning waits on it. */
    int test_at = -1, result_at = -1;
    for (int i = 0; i < E.n; i++) {
        if (E.msgs[i].topic.channel != FW_CH_NODE_EVENT)
            continue;
        if (E.msgs[i].msg.u.event.type == FW_EV_TEST && test_at < 0)
            test_at = i;
        if (E.msgs[i].msg.u.event.type == FW_EV_CMD_RESULT && result_at < 0)
            result_at = i;
    }
    CHECK(test_at >= 0 && test_at < result_at);

    /* SIGHUP: a good file is applied; a bad one is refused and the node runs on. */
    edit_conf("interval_s 10", "interval_s 5");
    kill(E.node, SIGHUP);
    CHECK(th_wait_until(node_err_has, "reloaded", 5000));
    edit_conf("interval_s 5", "interval_s 1");
    kill(E.node, SIGHUP);
    CHECK(th_wait_until(node_err_has, "reload refused", 5000));
    CHECK(node_err_has("interval_s: 1 is out of range"));
    pub(topic, "{\"id\":\"c-after\",\"cmd\":\"identify\"}", false);
    CHECK(th_wait_until(cmd_result_for, "c-after", 5000));

    /* SIGTERM: offline status from the node itself, then a clean exit. */
    int st = stop(&E.node, SIGTERM, 5000);
    CHECK(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    online = false;
    CHECK(th_wait_until(online_seen, &online, 5000));
    env_stop();
}

/* Events at scenario 40..70 s; at speed 10 that is 4..7 s after start. */
static const char *outage_scenario = "t_s,temp_c,smoke,batt_pct,button\n"
                                     "0,23.0,0,70,\n"
                                     "40,23.0,0,70,fire\n"
                                     "45,23.0,0,70,hush\n"
                                     "50,23.0,1,70,\n"
                                     "55,23.0,1,70,test\n"
                                     "60,23.0,0,70,\n"
                                     "70,23.0,0,15,\n"
                                     "600,23.0,0,15,\n";

static void test_events_survive_outage(void)
{
    env_start(outage_scenario, "speed 10\nbutton_hold_s 10\n", true);
    env_node_start();
    bool online = true;
    CHECK(th_wait_until(online_seen, &online, 10000));
    tb_halt(&E.b);                                           /* the broker goes away before any event */
    CHECK(th_wait_until(sim_log_has, "led trouble", 15000)); /* low battery at 70 s: the last event */
    collect();
    int before = count_events(FW_EV_ALARM, FW_CAUSE_NONE);
    CHECK_INT(before, 0);
    CHECK_INT(tb_restart(&E.b), 0);
    struct want trouble = {FW_EV_TROUBLE, FW_CAUSE_LOW_BATTERY, 1};
    CHECK(th_wait_until(have_event, &trouble, 15000));
    collect();
    CHECK_INT(E.bad, 0);
    /* Every event, once, in the order raised. */
    static const struct {
        enum fw_event_type type;
        enum fw_cause cause;
    } order[] = {{FW_EV_ALARM, FW_CAUSE_BUTTON},
                 {FW_EV_SILENCE, FW_CAUSE_NONE},
                 {FW_EV_ALARM, FW_CAUSE_SMOKE},
                 {FW_EV_TEST, FW_CAUSE_NONE},
                 {FW_EV_TROUBLE, FW_CAUSE_LOW_BATTERY}};
    size_t k = 0;
    uint32_t last_seq = 0;
    bool first = true, rising = true;
    for (int i = 0; i < E.n; i++) {
        const struct rec *r = &E.msgs[i];
        if (r->topic.channel != FW_CH_NODE_EVENT)
            continue;
        const struct fw_event *ev = &r->msg.u.event;
        if (!first && ev->seq <= last_seq)
            rising = false;
        first = false;
        last_seq = ev->seq;
        if (k < sizeof order / sizeof order[0] && ev->type == order[k].type &&
            (order[k].cause == FW_CAUSE_NONE || ev->cause == order[k].cause))
            k++;
    }
    th_report(k == sizeof order / sizeof order[0], "all %zu outage events arrived in order (matched %zu)",
              sizeof order / sizeof order[0], k);
    th_report(rising, "event seq rises in arrival order (no loss, no reordering)");
    CHECK_INT(count_events(FW_EV_ALARM, FW_CAUSE_BUTTON), 1);
    CHECK_INT(count_events(FW_EV_TEST, FW_CAUSE_NONE), 1);
    env_stop();
}

static void test_zone_alarm_neighbour_pattern(void)
{
    env_start("t_s,temp_c,smoke,batt_pct,button\n0,22,0,90,\n3600,22,0,90,\n", "speed 1\n", true);
    env_node_start();
    bool online = true;
    CHECK(th_wait_until(online_seen, &online, 10000));
    const char *zone = "firewatch/v1/zone/zone-a/alarm";
    /* Our own incident: the local alarm covers it, no neighbour pattern. */
    pub(zone, "{\"state\":\"alarm\",\"incident\":6,\"origin\":\"node-1\",\"ts\":1}", true);
    pub(zone, "{\"state\":\"alarm\",\"incident\":7,\"origin\":\"node-9\",\"ts\":2}", true);
    CHECK(th_wait_until(sim_log_has, "sounder neighbour", 5000));
    char *log = read_all(E.sim_log);
    CHECK(log && strstr(log, "sounder neighbour") && !strstr(log, "sounder alarm"));
    free(log);
    pub(zone, "{\"state\":\"clear\",\"incident\":7,\"ts\":3}", true);
    CHECK(th_wait_until(sim_log_has, "sounder off", 5000));
    /* Retained and resubscribed: a node that starts during an incident sounds at once. */
    pub(zone, "{\"state\":\"alarm\",\"incident\":8,\"origin\":\"node-9\",\"ts\":4}", true);
    stop(&E.node, SIGTERM, 5000);
    unlink(E.sim_log);
    env_node_start();
    CHECK(th_wait_until(sim_log_has, "sounder neighbour", 10000));
    env_stop();
}

static void test_local_first_without_broker(void)
{
    /* No broker at all (port 1 refuses): the fire button at 1.0 s must sound
     * within a second of scenario time, at real speed. */
    env_start("t_s,temp_c,smoke,batt_pct,button\n0,22,0,90,\n1,22,0,90,fire\n600,22,0,90,\n", "speed 1\n",
              false);
    env_node_start();
    CHECK(th_wait_until(sim_log_has, "sounder alarm", 5000));
    char *log = read_all(E.sim_log);
    double t = -1;
    const char *at = log ? strstr(log, " sounder alarm") : NULL;
    if (at) {
        while (at > log && at[-1] != '\n')
            at--;
        t = strtod(at, NULL);
    }
    th_report(t >= 1.0 && t <= 2.0, "sounder at %.3f s for a press at 1.000 s, no broker", t);
    free(log);
    int st = stop(&E.node, SIGTERM, 5000); /* exits cleanly even never connected */
    CHECK(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    env_stop();
}

/* Runs the binary with args; returns the exit status and the output. */
static int run_cli(const char *args, char *out, size_t size)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", th_bin_path("firewatch-node"), args);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = fread(out, 1, size - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_command_line(void)
{
    char out[8192], args[512], dir[256];
    snprintf(dir, sizeof dir, "%s", th_tmpdir("node-cli"));
    CHECK_INT(run_cli("--version", out, sizeof out), 0);
    CHECK(strstr(out, "firewatch-node ") != NULL);
    CHECK_INT(run_cli("--help", out, sizeof out), 0);
    CHECK(strstr(out, "--check-config") && strstr(out, "interval_s") && strstr(out, "smoke_line"));
    CHECK_INT(run_cli("--bogus", out, sizeof out), 2);
    char path[320];
    snprintf(path, sizeof path, "%s/bad.conf", dir);
    write_file(path, "# node\nid node-1\nbroker tcp://hub:1883\ninterval_s 1\n");
    snprintf(args, sizeof args, "--config %s --check-config", path);
    CHECK_INT(run_cli(args, out, sizeof out), 1);
    out[strcspn(out, "\n")] = '\0';
    th_report(strstr(out, "bad.conf:4: interval_s: ") != NULL, "bad config named: %s", out);
    write_file(path, "id node-1\nbackend sim\nscenario /nonexistent.csv\nstate_dir /tmp\n");
    snprintf(args, sizeof args, "--config %s", path);
    CHECK_INT(run_cli(args, out, sizeof out), 1);
    CHECK(strstr(out, "/nonexistent.csv") != NULL);
    write_file(path, "id node-1\nbroker ssl://hub.example:8883\n");
    snprintf(args, sizeof args, "--config %s --check-config", path);
    CHECK_INT(run_cli(args, out, sizeof out), 0);
    th_rmtree(dir);
}

TH_MAIN(TH_TEST(test_command_line), TH_TEST(test_local_first_without_broker),
        TH_TEST(test_birth_readings_events_and_will), TH_TEST(test_commands_and_sigterm),
        TH_TEST(test_zone_alarm_neighbour_pattern), TH_TEST(test_readings_on_significant_change),
        TH_TEST(test_events_survive_outage))
