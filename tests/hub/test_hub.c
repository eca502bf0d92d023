/*
 * test_hub.c - firewatch-hub and firewatchctl end to end, against a private
 * Mosquitto: the real binaries run as child processes (dying with the test
 * through PR_SET_PDEATHSIG), nodes are played by mosquitto_pub and by a paho
 * publisher, and the results are read back from the SQLite file and from
 * the retained zone alarm topics.
 */
#include <MQTTAsync.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "harness.h"
#include "store.h"

struct rig {
    struct tb_broker b;
    char dir[256];
    char conf[320];
    char db[320];
    char log[320];
    pid_t hub;
};

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    fputs(text, f);
    fclose(f);
}

/* Runs firewatchctl with args; returns its exit status and first output line. */
static int ctl(struct rig *r, const char *args, char *out, size_t size)
{
    char cmd[1024], line[512] = "";
    snprintf(cmd, sizeof cmd, "%s -c %s %s 2>&1", th_bin_path("firewatchctl"), r->conf, args);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    if (!fgets(line, sizeof line, p))
        line[0] = '\0';
    char rest[512];
    while (fgets(rest, sizeof rest, p))
        ;
    line[strcspn(line, "\n")] = '\0';
    if (out)
        snprintf(out, size, "%s", line);
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Runs firewatchctl with input on its stdin (NULL: none) and keeps all of
 * its output. Returns the exit status. */
static int ctl_full(struct rig *r, const char *input, const char *args, char *out, size_t size)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "%s%s%s%s -c %s %s 2>&1 </dev/null", input ? "printf '" : "",
             input ? input : "", input ? "' | " : "", th_bin_path("firewatchctl"), r->conf, args);
    if (input) /* stdin comes from the pipe, not /dev/null */
        cmd[strlen(cmd) - strlen(" </dev/null")] = '\0';
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = fread(out, 1, size - 1, p);
    out[n] = '\0';
    char sink[256];
    while (fread(sink, 1, sizeof sink, p) > 0)
        ;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int rig_up(struct rig *r, const char *extra_conf)
{
    memset(r, 0, sizeof *r);
    r->hub = -1;
    if (tb_init(&r->b) < 0 || tb_start(&r->b, NULL) < 0)
        return -1;
    snprintf(r->dir, sizeof r->dir, "%s", th_tmpdir("hub"));
    snprintf(r->conf, sizeof r->conf, "%s/hub.conf", r->dir);
    snprintf(r->db, sizeof r->db, "%s/hub.db", r->dir);
    snprintf(r->log, sizeof r->log, "%s/hub.log", r->dir);
    char text[1024];
    snprintf(text, sizeof text,
             "broker %s\ndatabase %s\nclient_id hub-test\nverify_s 2\nbatch_ms 20\nkeepalive_s 10\n"
             "http_listen 127.0.0.1:0\n%s\n",
             r->b.url, r->db, extra_conf ? extra_conf : "");
    write_file(r->conf, text);
    static const char *const setup[] = {
        "site add s1 --name Ward",
        "zone add z1 --site s1",
        "zone add z2 --site s1 --neighbours z1",
        "zone add z3 --site s1",
        "zone edit z1 --neighbours z2",
        "household add h1 --zone z1 --address '1 Main St' --phone 555",
        "household add h2 --zone z1",
        "household add h3 --zone z3",
        "node add n1 --household h1 --kind combo --room kitchen",
        "node add n2 --household h2 --kind smoke",
        "node add n3 --household h3 --kind heat",
    };
    for (size_t i = 0; i < sizeof setup / sizeof setup[0]; i++) {
        char out[512];
        if (ctl(r, setup[i], out, sizeof out) != 0) {
            th_fail(__FILE__, __LINE__, "firewatchctl %s: %s", setup[i], out);
            return -1;
        }
    }
    return 0;
}

static bool log_has(const struct rig *r, const char *needle)
{
    FILE *f = fopen(r->log, "r");
    if (!f)
        return false;
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

struct logwait {
    const struct rig *r;
    const char *needle;
    int count;
};

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

static bool log_reached(void *arg)
{
    struct logwait *w = arg;
    return log_count(w->r, w->needle) >= w->count;
}

/* Starts the hub and waits until it has connected (once more than before). */
static int hub_start(struct rig *r)
{
    int before = log_count(r, "connected to");
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        int fd = open(r->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        setenv("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0", 0);
        /* make valgrind: FW_HUB_WRAPPER (valgrind and its options) runs the hub. */
        const char *wrapper = getenv("FW_HUB_WRAPPER");
        if (wrapper && *wrapper)
            execl("/bin/sh", "sh", "-c", "exec $FW_HUB_WRAPPER \"$0\" --config \"$1\"",
                  th_bin_path("firewatch-hub"), r->conf, (char *)NULL);
        execl(th_bin_path("firewatch-hub"), "firewatch-hub", "--config", r->conf, (char *)NULL);
        _exit(127);
    }
    r->hub = pid;
    struct logwait w = {r, "connected to", before + 1};
    if (!th_wait_until(log_reached, &w, 15000)) {
        th_fail(__FILE__, __LINE__, "hub did not connect");
        return -ETIMEDOUT;
    }
    return 0;
}

/* Stops the hub with sig; returns true when it exited by itself cleanly. */
static bool hub_stop(struct rig *r, int sig)
{
    if (r->hub <= 0)
        return true;
    kill(r->hub, sig);
    int st = 0;
    bool clean = false;
    int64_t deadline = th_now_ms() + 10000;
    while (th_now_ms() < deadline) {
        pid_t got = waitpid(r->hub, &st, WNOHANG);
        if (got == r->hub) {
            clean = WIFEXITED(st) && WEXITSTATUS(st) == 0;
            r->hub = -1;
            return clean;
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
    tb_stop(&r->b);
    th_rmtree(r->dir);
}

static int pub(struct rig *r, const char *topic, const char *payload, bool retain)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "mosquitto_pub -V mqttv5 -h 127.0.0.1 -p %d -q 1 %s -t '%s' -m '%s'", r->b.port,
             retain ? "-r" : "", topic, payload);
    return system(cmd);
}

/* Reads the retained message on topic (empty when none). */
static void retained(struct rig *r, const char *topic, char *out, size_t size)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "mosquitto_sub -V mqttv5 -h 127.0.0.1 -p %d -t '%s' -C 1 -W 2 2>/dev/null",
             r->b.port, topic);
    out[0] = '\0';
    FILE *p = popen(cmd, "r");
    if (!p)
        return;
    if (!fgets(out, (int)size, p))
        out[0] = '\0';
    out[strcspn(out, "\n")] = '\0';
    pclose(p);
}

/* Runs a one-value query against the hub's database (NULL or -1 on error). */
static long long db_int(struct rig *r, const char *sql)
{
    sqlite3 *db;
    long long v = -1;
    if (sqlite3_open_v2(r->db, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return -1;
    }
    sqlite3_busy_timeout(db, 2000);
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
        v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return v;
}

struct dbwait {
    struct rig *r;
    const char *sql;
    long long want;
};

static bool db_reached(void *arg)
{
    struct dbwait *w = arg;
    return db_int(w->r, w->sql) == w->want;
}

static bool wait_db(struct rig *r, const char *sql, long long want, int ms)
{
    struct dbwait w = {r, sql, want};
    return th_wait_until(db_reached, &w, ms);
}

struct retwait {
    struct rig *r;
    const char *topic;
    const char *needle;
};

static bool retained_has(void *arg)
{
    struct retwait *w = arg;
    char line[512];
    retained(w->r, w->topic, line, sizeof line);
    return strstr(line, w->needle) != NULL;
}

static bool wait_retained(struct rig *r, const char *topic, const char *needle, int ms)
{
    struct retwait w = {r, topic, needle};
    return th_wait_until(retained_has, &w, ms);
}

#define BIRTH(boot)                                                                                          \
    "{\"online\":true,\"boot\":" #boot ",\"fw\":\"1.2.3\",\"kind\":\"combo\",\"ts\":1700000000000}"

/* ------------------------------------------------------------------------- */

static void test_alarm_sounds_zone_and_neighbour(void)
{
    struct rig r;
    if (rig_up(&r, NULL) < 0 || hub_start(&r) < 0) {
        rig_down(&r);
        return;
    }
    CHECK_INT(pub(&r, "firewatch/v1/node/n1/status", BIRTH(7), true), 0);
    CHECK_INT(pub(&r, "firewatch/v1/node/n1/reading",
                  "{\"seq\":0,\"ts\":1700000000000,\"temp_c\":24.5,\"smoke\":false,\"batt_pct\":87}", false),
              0);
    CHECK_INT(pub(&r, "firewatch/v1/node/n1/event",
                  "{\"seq\":1,\"ts\":1700000000001,\"type\":\"alarm\","
                  "\"cause\":\"heat_fixed\"}",
                  false),
              0);
    CHECK(wait_retained(&r, "firewatch/v1/zone/z1/alarm",
                        "\"state\":\"alarm\",\"incident\":1,\"origin\":\"n1\"", 5000));
    CHECK(wait_retained(&r, "firewatch/v1/zone/z2/alarm", "\"state\":\"alarm\"", 5000));
    char line[512];
    retained(&r, "firewatch/v1/zone/z3/alarm", line, sizeof line);
    CHECK(strstr(line, "\"state\":\"clear\"") != NULL);
    CHECK(wait_db(&r, "SELECT count(*) FROM events WHERE node_id='n1' AND boot=7 AND seq=1 AND type='alarm'",
                  1, 5000));
    CHECK(
        wait_db(&r, "SELECT count(*) FROM incidents WHERE id=1 AND state='alarm' AND zone_id='z1'", 1, 5000));
    CHECK(wait_db(&r, "SELECT count(*) FROM readings WHERE node_id='n1' AND temp_c=24.5", 1, 5000));
    CHECK(wait_db(&r, "SELECT count(*) FROM timeline WHERE incident_id=1 AND what='escalated'", 1, 5000));

    /* Acknowledge and clear through firewatchctl while the hub runs. */
    CHECK_INT(ctl(&r, "incident ack 1 --user alice", line, sizeof line), 0);
    CHECK_STR(line, "ok");
    CHECK(ctl(&r, "incident clear 1 --user alice", line, sizeof line) != 0); /* sensor still in alarm */
    CHECK_INT(pub(&r, "firewatch/v1/node/n1/event",
                  "{\"seq\":2,\"ts\":1700000000002,\"type\":\"alarm_clear\",\"cause\":\"heat_fixed\"}",
                  false),
              0);
    CHECK(wait_db(&r, "SELECT count(*) FROM timeline WHERE incident_id=1 AND what='sensor_normal'", 1, 5000));
    CHECK_INT(ctl(&r, "incident clear 1 --user alice", line, sizeof line), 0);
    CHECK(wait_retained(&r, "firewatch/v1/zone/z1/alarm", "\"state\":\"clear\"", 5000));
    CHECK(wait_db(&r, "SELECT count(*) FROM incidents WHERE id=1 AND state='cleared' AND acked_by='alice'", 1,
                  5000));

    /* SIGTERM: clean exit and the offline hub status. */
    CHECK(hub_stop(&r, SIGTERM));
    retained(&r, "firewatch/v1/hub/status", line, sizeof line);
    CHECK_STR(line, "{\"online\":false}");
    rig_down(&r);
}

static void test_verifying_window_and_hush(void)
{
    struct rig r;
    char line[512];
    if (rig_up(&r, NULL) < 0 || hub_start(&r) < 0) {
        rig_down(&r);
        return;
    }
    /* One smoke alarm verifies for verify_s (2 s) before the zone sounds. */
    int64_t t0 = th_now_ms();
    CHECK_INT(pub(&r, "firewatch/v1/node/n3/event",
                  "{\"seq\":1,\"ts\":1,\"type\":\"alarm\",\"cause\":\"smoke\"}", false),
              0);
    CHECK(wait_db(&r, "SELECT count(*) FROM incidents WHERE zone_id='z3' AND state='verifying'", 1, 1500));
    retained(&r, "firewatch/v1/zone/z3/alarm", line, sizeof line);
    CHECK(strstr(line, "\"state\":\"clear\"") != NULL);
    CHECK(wait_retained(&r, "firewatch/v1/zone/z3/alarm", "\"state\":\"alarm\"", 5000));
    int64_t took = th_now_ms() - t0;
    th_report(took >= 1900 && took < 4500, "escalated after the window: %lld ms", (long long)took);
    CHECK(wait_db(&r, "SELECT count(*) FROM timeline WHERE what='escalated'", 1, 5000));

    /* A resident's hush during verifying dismisses it; nothing sounds. */
    CHECK_INT(pub(&r, "firewatch/v1/node/n1/event",
                  "{\"seq\":1,\"ts\":1,\"type\":\"alarm\",\"cause\":\"smoke\"}", false),
              0);
    CHECK_INT(pub(&r, "firewatch/v1/node/n1/event", "{\"seq\":2,\"ts\":1,\"type\":\"silence\"}", false), 0);
    CHECK(wait_db(&r, "SELECT count(*) FROM incidents WHERE zone_id='z1' AND state='dismissed'", 1, 5000));
    /* Past the window it stays quiet. */
    struct dbwait never = {&r, "SELECT count(*) FROM incidents WHERE zone_id='z1' AND state='alarm'", 1};
    CHECK(!th_wait_until(db_reached, &never, 2500));
    retained(&r, "firewatch/v1/zone/z1/alarm", line, sizeof line);
    CHECK(strstr(line, "\"state\":\"clear\"") != NULL);
    CHECK(hub_stop(&r, SIGTERM));
    rig_down(&r);
}

static void test_bad_input_counted_and_ignored(void)
{
    struct rig r;
    if (rig_up(&r, NULL) < 0 || hub_start(&r) < 0) {
        rig_down(&r);
        return;
    }
    static const struct {
        const char *topic, *payload;
    } bad[] = {
        {"firewatch/v1/node/n1/event", "not json"},
        {"firewatch/v1/node/n1/event", "{\"seq\":\"x\",\"ts\":1,\"type\":\"alarm\",\"cause\":\"smoke\"}"},
        {"firewatch/v1/node/n1/event", "{\"seq\":1,\"ts\":1,\"type\":\"explode\"}"},
        {"firewatch/v1/node/n1/event", "[1,2,3]"},
        {"firewatch/v1/node/n1/reading", "{\"seq\":1}"},
        {"firewatch/v1/node/n1/status", "{\"online\":\"yes\"}"},
        {"firewatch/v1/node/N1/event", "{\"seq\":1,\"ts\":1,\"type\":\"alarm\",\"cause\":\"smoke\"}"},
        {"firewatch/v1/node/n1/bogus", "{}"},
        {"firewatch/v1/node/ghost/event", "{\"seq\":1,\"ts\":1,\"type\":\"alarm\",\"cause\":\"button\"}"},
        {"firewatch/v1/node/ghost/reading",
         "{\"seq\":1,\"ts\":1,\"temp_c\":20,\"smoke\":false,\"batt_pct\":50}"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        th_report(pub(&r, bad[i].topic, bad[i].payload, false) == 0, "published bad row %zu", i);
    /* The hub is still alive and still works. */
    CHECK_INT(pub(&r, "firewatch/v1/node/n3/event",
                  "{\"seq\":5,\"ts\":1,\"type\":\"alarm\",\"cause\":\"button\"}", false),
              0);
    CHECK(wait_retained(&r, "firewatch/v1/zone/z3/alarm", "\"origin\":\"n3\"", 5000));
    CHECK(kill(r.hub, 0) == 0);
    CHECK_INT(db_int(&r, "SELECT count(*) FROM events"), 1);
    CHECK_INT(db_int(&r, "SELECT count(*) FROM events WHERE node_id='ghost'"), 0);
    CHECK(log_has(&r, "ignored"));
    CHECK(log_has(&r, "unknown node ghost"));
    CHECK(hub_stop(&r, SIGTERM));
    rig_down(&r);
}

static void test_late_will_is_ignored(void)
{
    struct rig r;
    if (rig_up(&r, NULL) < 0 || hub_start(&r) < 0) {
        rig_down(&r);
        return;
    }
    CHECK_INT(pub(&r, "firewatch/v1/node/n2/status", BIRTH(5), true), 0);
    CHECK(wait_db(&r, "SELECT boot FROM nodes WHERE id='n2'", 5, 5000));
    /* Commissioned by a passed test: only nodes in service are supervised. */
    CHECK_INT(pub(&r, "firewatch/v1/node/n2/event",
                  "{\"seq\":0,\"ts\":1,\"type\":\"test\",\"result\":\"pass\"}", false),
              0);
    CHECK(wait_db(&r, "SELECT count(*) FROM events WHERE node_id='n2'", 1, 5000));
    /* The broker publishes the will of the previous session late. */
    CHECK_INT(pub(&r, "firewatch/v1/node/n2/status", "{\"online\":false,\"boot\":4}", false), 0);
    CHECK_INT(pub(&r, "firewatch/v1/node/n2/reading",
                  "{\"seq\":1,\"ts\":1,\"temp_c\":21.0,\"smoke\":false,\"batt_pct\":90}", false),
              0);
    CHECK(wait_db(&r, "SELECT count(*) FROM readings WHERE node_id='n2'", 1, 5000));
    CHECK(wait_db(&r, "SELECT online FROM nodes WHERE id='n2'", 1, 8000));
    CHECK_INT(db_int(&r, "SELECT count(*) FROM troubles WHERE node_id='n2' AND kind='offline'"), 0);
    /* The will of the current session does mark it offline. */
    CHECK_INT(pub(&r, "firewatch/v1/node/n2/status", "{\"online\":false,\"boot\":5}", false), 0);
    CHECK(wait_db(
        &r, "SELECT count(*) FROM troubles WHERE node_id='n2' AND kind='offline' AND cleared_ms IS NULL", 1,
        5000));
    CHECK(hub_stop(&r, SIGTERM));
    rig_down(&r);
}

static void test_alarm_survives_restart(void)
{
    struct rig r;
    char line[512];
    if (rig_up(&r, NULL) < 0 || hub_start(&r) < 0) {
        rig_down(&r);
        return;
    }
    /* Two nodes of z1 alarm: escalation at once. */
    CHECK_INT(pub(&r, "firewatch/v1/node/n1/event",
                  "{\"seq\":1,\"ts\":1,\"type\":\"alarm\",\"cause\":\"smoke\"}", false),
              0);
    CHECK_INT(pub(&r, "firewatch/v1/node/n2/event",
                  "{\"seq\":1,\"ts\":1,\"type\":\"alarm\",\"cause\":\"smoke\"}", false),
              0);
    CHECK(wait_db(&r, "SELECT count(*) FROM incidents WHERE id=1 AND state='alarm'", 1, 5000));
    hub_stop(&r, SIGKILL);
    CHECK(hub_start(&r) == 0);
    CHECK(log_has(&r, "incident 1 restored in state alarm"));
    CHECK(wait_retained(&r, "firewatch/v1/zone/z1/alarm", "\"state\":\"alarm\",\"incident\":1", 5000));
    CHECK_INT(db_int(&r, "SELECT count(*) FROM incidents WHERE id=1 AND state='alarm'"), 1);
    /* The engine really holds it: an acknowledge works after the restart. */
    CHECK_INT(ctl(&r, "incident ack 1 --user bob", line, sizeof line), 0);
    CHECK(wait_db(&r, "SELECT count(*) FROM incidents WHERE id=1 AND state='acknowledged'", 1, 5000));
    /* A new incident gets a fresh id. */
    CHECK_INT(pub(&r, "firewatch/v1/node/n3/event",
                  "{\"seq\":1,\"ts\":1,\"type\":\"alarm\",\"cause\":\"button\"}", false),
              0);
    CHECK(wait_retained(&r, "firewatch/v1/zone/z3/alarm", "\"incident\":2", 5000));
    CHECK(hub_stop(&r, SIGTERM));
    rig_down(&r);
}

static void test_ctl_changes_apply_live(void)
{
    struct rig r;
    char line[512];
    if (rig_up(&r, NULL) < 0 || hub_start(&r) < 0) {
        rig_down(&r);
        return;
    }
    CHECK_INT(ctl(&r, "zone add z9 --site s1", line, sizeof line), 0);
    CHECK_INT(ctl(&r, "household add h9 --zone z9", line, sizeof line), 0);
    /* node add prints the node's config; --json gives {"id":...} first. */
    CHECK_INT(ctl(&r, "--json node add --household h9 --kind smoke", line, sizeof line), 0);
    char node[600] = "", topic[700];
    CHECK(sscanf(line, "{\"id\":\"%32[^\"]\"", node) == 1);
    CHECK(strncmp(node, "n-", 2) == 0);
    snprintf(topic, sizeof topic, "firewatch/v1/node/%s/event", node);
    /* Wait for the hub to reload, then alarm from the new node. */
    struct logwait w = {&r, "topology: 4 zones, 4 nodes", 1};
    CHECK(th_wait_until(log_reached, &w, 5000));
    CHECK_INT(pub(&r, topic, "{\"seq\":1,\"ts\":1,\"type\":\"alarm\",\"cause\":\"heat_fixed\"}", false), 0);
    CHECK(wait_retained(&r, "firewatch/v1/zone/z9/alarm", "\"state\":\"alarm\"", 5000));
    /* Drill from the command line. */
    CHECK_INT(ctl(&r, "incident drill z3 --user carol", line, sizeof line), 0);
    CHECK(strncmp(line, "ok ", 3) == 0);
    CHECK(wait_db(&r, "SELECT count(*) FROM incidents WHERE drill=1 AND zone_id='z3'", 1, 5000));
    CHECK(hub_stop(&r, SIGTERM));
    rig_down(&r);
}

static void test_bad_database_refused(void)
{
    struct rig r;
    char line[512];
    if (rig_up(&r, NULL) < 0) {
        rig_down(&r);
        return;
    }
    unlink(r.db);
    char path[400];
    snprintf(path, sizeof path, "%s-wal", r.db);
    unlink(path);
    write_file(r.db,
               "this is not a database, just some text that is long enough to be read as a header......");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s --config %s --check-config 2>&1", th_bin_path("firewatch-hub"), r.conf);
    FILE *p = popen(cmd, "r");
    line[0] = '\0';
    if (p) {
        if (!fgets(line, sizeof line, p))
            line[0] = '\0';
        int st = pclose(p);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    }
    CHECK(strstr(line, r.db) != NULL);
    CHECK(strstr(line, "database") != NULL || strstr(line, "damaged") != NULL);

    /* A bad config names file, line and key. */
    write_file(r.conf, "broker tcp://127.0.0.1:1\nverify_s lots\n");
    snprintf(cmd, sizeof cmd, "%s --config %s --check-config 2>&1", th_bin_path("firewatch-hub"), r.conf);
    p = popen(cmd, "r");
    line[0] = '\0';
    if (p) {
        if (!fgets(line, sizeof line, p))
            line[0] = '\0';
        pclose(p);
    }
    CHECK(strstr(line, ":2: verify_s:") != NULL);
    rig_down(&r);
}

static void conf_append(struct rig *r, const char *line)
{
    FILE *f = fopen(r->conf, "a");
    if (!f)
        return;
    fprintf(f, "%s\n", line);
    fclose(f);
}

/* Reads datagrams from fd until one equals want or timeout_ms passes. */
static bool got_datagram(int fd, const char *want, int timeout_ms)
{
    int64_t deadline = th_now_ms() + timeout_ms;
    while (th_now_ms() < deadline) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        char buf[256];
        ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        if (strcmp(buf, want) == 0)
            return true;
    }
    return false;
}

struct filewait {
    const char *path;
    const char *needle;
};

static bool file_has(void *arg)
{
    struct filewait *w = arg;
    FILE *f = fopen(w->path, "r");
    if (!f)
        return false;
    char line[2048];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, w->needle) != NULL;
    fclose(f);
    return found;
}

static void test_systemd_notify_reload_and_notifier(void)
{
    struct rig r;
    if (rig_up(&r, NULL) < 0) {
        rig_down(&r);
        return;
    }
    char notes[400], line[1000], sock[400];
    snprintf(notes, sizeof notes, "%s/notes.jsonl", r.dir);
    snprintf(line, sizeof line, "notify_command cat >> %s; echo >> %s", notes, notes);
    conf_append(&r, line);
    snprintf(sock, sizeof sock, "%s/notify.sock", r.dir);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t slen = strlen(sock);
    CHECK(slen < sizeof sa.sun_path);
    memcpy(sa.sun_path, sock, slen < sizeof sa.sun_path ? slen : sizeof sa.sun_path - 1);
    CHECK(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    setenv("NOTIFY_SOCKET", sock, 1);
    setenv("WATCHDOG_USEC", "200000", 1);
    int started = hub_start(&r);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    if (started < 0) {
        close(fd);
        rig_down(&r);
        return;
    }
    CHECK(got_datagram(fd, "READY=1", 5000));
    CHECK(got_datagram(fd, "WATCHDOG=1", 5000));

    /* The notifier gets the escalation as JSON on stdin. */
    CHECK_INT(pub(&r, "firewatch/v1/node/n3/event",
                  "{\"seq\":1,\"ts\":1,\"type\":\"alarm\",\"cause\":\"button\"}", false),
              0);
    struct filewait fw = {notes, "\"type\":\"incident\""};
    CHECK(th_wait_until(file_has, &fw, 5000));
    struct filewait fz = {notes, "\"zone\":\"z3\""};
    CHECK(th_wait_until(file_has, &fz, 5000));

    /* SIGHUP re-reads the file; a broken file is refused, the hub goes on. */
    conf_append(&r, "log_level debug");
    kill(r.hub, SIGHUP);
    struct logwait lw = {&r, "configuration reloaded", 1};
    CHECK(th_wait_until(log_reached, &lw, 5000));
    conf_append(&r, "no_such_option 1");
    kill(r.hub, SIGHUP);
    struct logwait lr = {&r, "reload refused", 1};
    CHECK(th_wait_until(log_reached, &lr, 5000));
    CHECK(log_has(&r, "no_such_option: unknown option"));
    CHECK(kill(r.hub, 0) == 0);

    CHECK(hub_stop(&r, SIGTERM));
    CHECK(got_datagram(fd, "STOPPING=1", 2000));
    CHECK(log_has(&r, "counters: received"));
    close(fd);
    rig_down(&r);
}

static void test_ctl_users_backup_readiness(void)
{
    struct rig r;
    static char out[16384];
    if (rig_up(&r, NULL) < 0 || hub_start(&r) < 0) {
        rig_down(&r);
        return;
    }
    /* Users: the password comes from stdin and is stored as Argon2id. */
    CHECK_INT(ctl_full(&r, "correct horse battery\\n", "user add alice --role admin", out, sizeof out), 0);
    CHECK_INT(db_int(&r, "SELECT count(*) FROM users WHERE name='alice' AND pwhash LIKE '$argon2id$%'"), 1);
    CHECK(ctl_full(&r, "short\\n", "user add bob --role watch", out, sizeof out) != 0);
    CHECK(strstr(out, "at least 8") != NULL);
    CHECK(ctl_full(&r, "long enough pw\\n", "user add bob --role boss", out, sizeof out) != 0);
    CHECK_INT(ctl_full(&r, NULL, "user role alice watch", out, sizeof out), 0);
    CHECK_INT(ctl_full(&r, NULL, "--json users", out, sizeof out), 0);
    CHECK(strstr(out, "\"role\":\t\"watch\"") != NULL);
    CHECK_INT(ctl_full(&r, "another password\\n", "user password alice", out, sizeof out), 0);
    CHECK_INT(ctl_full(&r, NULL, "user remove alice", out, sizeof out), 0);
    CHECK_INT(db_int(&r, "SELECT count(*) FROM audit WHERE action LIKE 'user %'"), 4);

    /* Refusals are sentences, and --help works on every subcommand. */
    CHECK(ctl_full(&r, NULL, "site remove s1", out, sizeof out) != 0);
    CHECK(strstr(out, "still in use") != NULL);
    CHECK(ctl_full(&r, NULL, "node add --household nohh --kind smoke", out, sizeof out) != 0);
    CHECK(ctl_full(&r, NULL, "node add --household h1 --kind fog", out, sizeof out) != 0);
    static const char *const helps[] = {"site add --help",      "zone edit --help",
                                        "household add --help", "node add --help",
                                        "user password --help", "incident ack --help",
                                        "trouble list --help",  "readiness --help",
                                        "backup --help",        "--help"};
    for (size_t i = 0; i < sizeof helps / sizeof helps[0]; i++) {
        int rc = ctl_full(&r, NULL, helps[i], out, sizeof out);
        th_report(rc == 0 && strstr(out, "usage: firewatchctl") != NULL, "%s", helps[i]);
    }

    /* Lists, JSON and readiness. */
    CHECK_INT(ctl_full(&r, NULL, "--json node list", out, sizeof out), 0);
    CHECK(strstr(out, "\"id\":\t\"n1\"") != NULL);
    CHECK(strstr(out, "uncommissioned") != NULL);
    CHECK_INT(ctl_full(&r, NULL, "household list --zone z1", out, sizeof out), 0);
    CHECK(strstr(out, "1 Main St") != NULL);
    CHECK_INT(ctl_full(&r, NULL, "readiness", out, sizeof out), 0);
    CHECK(strstr(out, "zone z1 (site s1)") != NULL);
    CHECK(strstr(out, "site s1:") != NULL);
    CHECK_INT(ctl_full(&r, NULL, "--json readiness --zone z1", out, sizeof out), 0);
    CHECK(strstr(out, "\"level\"") != NULL);

    /* A tamper latches until a technician resolves it. */
    CHECK_INT(pub(&r, "firewatch/v1/node/n1/event",
                  "{\"seq\":1,\"ts\":1,\"type\":\"test\",\"result\":\"pass\"}", false),
              0);
    CHECK_INT(pub(&r, "firewatch/v1/node/n1/event", "{\"seq\":2,\"ts\":1,\"type\":\"tamper\"}", false), 0);
    CHECK(wait_db(&r,
                  "SELECT count(*) FROM troubles WHERE node_id='n1' AND kind='tamper' AND cleared_ms IS NULL",
                  1, 5000));
    CHECK_INT(ctl_full(&r, NULL, "trouble list", out, sizeof out), 0);
    CHECK(strstr(out, "tamper") != NULL);
    CHECK_INT(ctl_full(&r, NULL, "trouble resolve n1 --user tech", out, sizeof out), 0);
    CHECK(wait_db(
        &r, "SELECT count(*) FROM troubles WHERE node_id='n1' AND kind='tamper' AND cleared_ms IS NOT NULL",
        1, 5000));

    /* Online backup while the hub runs. */
    char path[300], args[400];
    snprintf(path, sizeof path, "%.280s/backup.db", r.dir);
    snprintf(args, sizeof args, "backup %s", path);
    CHECK_INT(ctl_full(&r, NULL, args, out, sizeof out), 0);
    CHECK(ctl_full(&r, NULL, args, out, sizeof out) != 0); /* never overwrites */
    struct rig copy = r;
    snprintf(copy.db, sizeof copy.db, "%s", path);
    CHECK_INT(db_int(&copy, "SELECT count(*) FROM nodes"), 3);
    CHECK_INT(db_int(&copy, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    CHECK(hub_stop(&r, SIGTERM));
    rig_down(&r);
}

/* ---- kill -9 during 1,000 QoS 1 events ---------------------------------- */

#define KILL_EVENTS 1000

struct publisher {
    MQTTAsync client;
    atomic_int acked;
    atomic_int failed;
    atomic_bool connected;
    atomic_bool seen[KILL_EVENTS];
};

static void pub_acked(void *ctx, MQTTAsync_successData5 *resp)
{
    (void)resp;
    struct publisher *p = ctx;
    atomic_fetch_add(&p->acked, 1);
}

static void pub_failed(void *ctx, MQTTAsync_failureData5 *resp)
{
    (void)resp;
    struct publisher *p = ctx;
    atomic_fetch_add(&p->failed, 1);
}

static void pub_connected(void *ctx, MQTTAsync_successData5 *resp)
{
    (void)resp;
    struct publisher *p = ctx;
    atomic_store(&p->connected, true);
}

static bool pub_is_connected(void *arg)
{
    struct publisher *p = arg;
    return atomic_load(&p->connected);
}

struct ackwait {
    struct publisher *p;
    int want;
};

static bool acks_reached(void *arg)
{
    struct ackwait *w = arg;
    return atomic_load(&w->p->acked) + atomic_load(&w->p->failed) >= w->want;
}

static bool paho_gone(void *client)
{
    return !MQTTAsync_isConnected(client);
}

static void test_kill9_loses_no_acknowledged_event(void)
{
    struct rig r;
    static struct publisher p;
    memset(&p, 0, sizeof p);
    if (rig_up(&r, "db_sync_full true") < 0 || hub_start(&r) < 0) {
        rig_down(&r);
        return;
    }
    CHECK_INT(pub(&r, "firewatch/v1/node/n3/status", BIRTH(11), true), 0);
    CHECK(wait_db(&r, "SELECT boot FROM nodes WHERE id='n3'", 11, 5000));

    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
    CHECK_INT(MQTTAsync_createWithOptions(&p.client, r.b.url, "n3", MQTTCLIENT_PERSISTENCE_NONE, NULL, &co),
              MQTTASYNC_SUCCESS);
    MQTTAsync_connectOptions o = MQTTAsync_connectOptions_initializer5;
    o.cleanstart = 1;
    o.onSuccess5 = pub_connected;
    o.context = &p;
    o.maxInflight = 20;
    CHECK_INT(MQTTAsync_connect(p.client, &o), MQTTASYNC_SUCCESS);
    CHECK(th_wait_until(pub_is_connected, &p, 5000));

    int killed_at = -1;
    for (int i = 0; i < KILL_EVENTS; i++) {
        char payload[128];
        int n = snprintf(payload, sizeof payload,
                         "{\"seq\":%d,\"ts\":1700000000000,\"type\":\"test\",\"result\":\"pass\"}", i);
        MQTTAsync_message m = MQTTAsync_message_initializer;
        MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
        m.payload = payload;
        m.payloadlen = n;
        m.qos = 1;
        ro.onSuccess5 = pub_acked;
        ro.onFailure5 = pub_failed;
        ro.context = &p;
        int rc;
        /* Keep at most 20 in flight: wait for acks rather than overflow. */
        struct ackwait aw = {&p, i - 20};
        th_wait_until(acks_reached, &aw, 5000);
        while ((rc = MQTTAsync_sendMessage(p.client, "firewatch/v1/node/n3/event", &m, &ro)) !=
               MQTTASYNC_SUCCESS) {
            struct timespec ts = {0, 1000 * 1000};
            nanosleep(&ts, NULL);
            if (rc != MQTTASYNC_MAX_BUFFERED_MESSAGES)
                break;
        }
        if (i == 300 && killed_at < 0) {
            hub_stop(&r, SIGKILL); /* mid-stream, while events are arriving */
            killed_at = i;
            long long before = db_int(&r, "SELECT count(*) FROM events WHERE node_id='n3'");
            th_report(before > 0 && before < KILL_EVENTS, "%lld events stored when the hub was killed",
                      before);
        }
        if (i == 600)
            CHECK(hub_start(&r) == 0);
    }
    struct ackwait all = {&p, KILL_EVENTS};
    CHECK(th_wait_until(acks_reached, &all, 30000));
    CHECK_INT(atomic_load(&p.failed), 0);
    int acked = atomic_load(&p.acked);
    CHECK_INT(acked, KILL_EVENTS);
    /* Every acknowledged event is in the database exactly once. */
    CHECK(wait_db(&r, "SELECT count(*) FROM events WHERE node_id='n3' AND boot=11", acked, 30000));
    CHECK_INT(db_int(&r, "SELECT count(DISTINCT seq) FROM events WHERE node_id='n3' AND boot=11"), acked);
    CHECK_INT(db_int(&r, "SELECT count(*) FROM events WHERE node_id='n3' AND seq >= 0 AND seq < 1000"),
              acked);
    th_report(killed_at == 300, "hub killed after %d events were sent", killed_at);
    /* Redeliveries carry the DUP flag and are recognised as such. */
    CHECK(!log_has(&r, "reused boot"));

    MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer5;
    /* Disconnect is asynchronous: let it finish before destroy frees the
     * client under paho's threads. */
    if (MQTTAsync_disconnect(p.client, &d) == MQTTASYNC_SUCCESS)
        th_wait_until(paho_gone, p.client, 3000);
    MQTTAsync_destroy(&p.client);
    CHECK(hub_stop(&r, SIGTERM));
    /* How many redeliveries the restarted hub recognised (for the log). */
    FILE *f = fopen(r.log, "r");
    char line[1024];
    while (f && fgets(line, sizeof line, f)) {
        const char *dups = strstr(line, "duplicates ");
        if (dups && strstr(line, "counters:"))
            printf("# restarted hub: %.40s\n", dups);
    }
    if (f)
        fclose(f);
    rig_down(&r);
}

TH_MAIN(TH_TEST(test_alarm_sounds_zone_and_neighbour), TH_TEST(test_verifying_window_and_hush),
        TH_TEST(test_bad_input_counted_and_ignored), TH_TEST(test_late_will_is_ignored),
        TH_TEST(test_alarm_survives_restart), TH_TEST(test_ctl_changes_apply_live),
        TH_TEST(test_bad_database_refused), TH_TEST(test_systemd_notify_reload_and_notifier),
        TH_TEST(test_ctl_users_backup_readiness), TH_TEST(test_kill9_loses_no_acknowledged_event))
