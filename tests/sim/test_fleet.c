/*
 * test_fleet.c - the fleet simulator against a real broker: every node is
 * born with a valid retained status, readings decode with the protocol
 * library, selftest commands are answered, and scripted offline nodes stay
 * away; 500 nodes connect on one descriptor each and say a clean goodbye
 * within the shutdown bound; a node with a wrong password is refused and
 * counted, and a publish the ACL denies is counted as refused (MQTT 5
 * reason code); and nodes come back, births re-sent, after the broker
 * restarts.
 */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "firewatch/protocol.h"
#include "harness.h"

static bool file_exists(void *path)
{
    return access(path, R_OK) == 0;
}

/* Starts the fleet with argv (argv[0] is replaced by the built binary),
 * output to log; it dies with the test. Returns the pid or -1. */
static pid_t fleet_spawn(char **argv, const char *log)
{
    char bin[512];
    snprintf(bin, sizeof bin, "%s", th_bin_path("firewatch-fleet"));
    argv[0] = bin;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        if (!freopen(log, "w", stderr))
            _exit(1);
        execv(bin, argv);
        _exit(127);
    }
    return pid;
}

/* Sends sig and waits up to timeout_ms for the exit. Returns the exit
 * status, or -1 (after SIGKILL) when the deadline passed. */
static int fleet_stop(pid_t pid, int sig, int timeout_ms)
{
    int st = 0;
    if (pid <= 0)
        return -1;
    if (sig)
        kill(pid, sig);
    int64_t deadline = th_now_ms() + timeout_ms;
    while (th_now_ms() < deadline) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

static int count_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    int n = 0;
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n - 2;
}

/* Counts, in the output of a shell command, status lines that decode and
 * are births (online) or goodbyes; for births, only those with ts >= min_ts. */
static void count_statuses(const char *cmd, int64_t min_ts, int *births, int *offline)
{
    char line[1200];
    *births = *offline = 0;
    FILE *p = popen(cmd, "r");
    if (!p)
        return;
    while (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = '\0';
        char *sp = strchr(line, ' ');
        struct fw_topic t;
        struct fw_msg m;
        if (!sp)
            continue;
        *sp = '\0';
        if (fw_topic_parse(line, strlen(line), &t, NULL) < 0 || t.channel != FW_CH_NODE_STATUS ||
            fw_msg_decode(t.channel, sp + 1, strlen(sp + 1), &m, NULL) < 0)
            continue;
        if (m.u.status.online && m.u.status.ts >= min_ts)
            (*births)++;
        else if (!m.u.status.online)
            (*offline)++;
    }
    pclose(p);
}

/* Reads the one-line stats file into buf; true when it was there. */
static bool read_stats(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool ok = fgets(buf, (int)size, f) != NULL;
    fclose(f);
    return ok;
}

static long stat_value(const char *json, const char *key)
{
    char k[64];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *p = strstr(json, k);
    return p ? strtol(p + strlen(k), NULL, 10) : -1;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_fleet_publishes_valid_traffic(void)
{
    struct tb_broker b;
    char cmd[1024], line[1200], stats[300];
    CHECK_INT(tb_init(&b), 0);
    CHECK_INT(tb_start(&b, NULL), 0);
    snprintf(stats, sizeof stats, "%s/stats.json", b.dir);

    /* A subscriber that records everything while the fleet runs; popen
     * lets it run beside the fleet, and reading it to EOF waits for it. */
    snprintf(cmd, sizeof cmd, "timeout 7 mosquitto_sub -V mqttv5 -h 127.0.0.1 -p %d -t 'firewatch/v1/#' -v",
             b.port);
    FILE *sub = popen(cmd, "r");
    CHECK(sub != NULL);
    snprintf(cmd, sizeof cmd,
             "%s -b %s -n 20 --prefix t -i 0.5 -d 4 -q --offline t-0007 --stats %s 2>/dev/null &",
             th_bin_path("firewatch-fleet"), b.url, stats);
    CHECK_INT(system(cmd), 0);

    int births = 0, readings = 0, bad = 0, test_pass = 0, cmd_ok = 0, seen7 = 0;
    while (sub && fgets(line, sizeof line, sub)) {
        line[strcspn(line, "\n")] = '\0';
        char *sp = strchr(line, ' ');
        if (!sp)
            continue;
        *sp = '\0';
        const char *payload = sp + 1;
        struct fw_topic t;
        struct fw_msg m;
        if (fw_topic_parse(line, strlen(line), &t, NULL) < 0 ||
            fw_msg_decode(t.channel, payload, strlen(payload), &m, NULL) < 0) {
            bad++;
            continue;
        }
        if (strcmp(t.id, "t-0007") == 0)
            seen7++;
        /* Once t-0002 is born, send it a command, as the hub would. */
        if (t.channel == FW_CH_NODE_STATUS && m.u.status.online && strcmp(t.id, "t-0002") == 0) {
            snprintf(cmd, sizeof cmd,
                     "mosquitto_pub -V mqttv5 -h 127.0.0.1 -p %d -q 1 -t firewatch/v1/node/t-0002/cmd "
                     "-m '{\"id\":\"c-9\",\"cmd\":\"selftest\"}'",
                     b.port);
            CHECK_INT(system(cmd), 0);
        }
        if (t.channel == FW_CH_NODE_STATUS && m.u.status.online)
            births++;
        if (t.channel == FW_CH_NODE_READING)
            readings++;
        if (t.channel == FW_CH_NODE_EVENT && m.u.event.type == FW_EV_TEST &&
            m.u.event.result == FW_RESULT_PASS)
            test_pass++;
        if (t.channel == FW_CH_NODE_EVENT && m.u.event.type == FW_EV_CMD_RESULT &&
            strcmp(m.u.event.cmd_id, "c-9") == 0)
            cmd_ok++;
    }
    if (sub)
        pclose(sub);
    CHECK(th_wait_until(file_exists, stats, 10000));
    FILE *f = fopen(stats, "r");
    CHECK(f != NULL);
    if (f) {
        CHECK(fgets(line, sizeof line, f) != NULL);
        fclose(f);
        CHECK(strstr(line, "\"nodes\":20") != NULL);
        CHECK(strstr(line, "\"send_failures\":0") != NULL);
    }
    CHECK_INT(bad, 0);
    CHECK_INT(births, 19);
    CHECK(readings >= 19 * 4);
    CHECK_INT(test_pass, 1);
    CHECK_INT(cmd_ok, 1);
    CHECK_INT(seen7, 0);
    tb_stop(&b);
}

static void test_fleet_help_and_bad_args(void)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s --help | grep -q -- --fire", th_bin_path("firewatch-fleet"));
    CHECK_INT(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s --nodes 0 2>/dev/null", th_bin_path("firewatch-fleet"));
    CHECK(WEXITSTATUS(system(cmd)) == 2);
    snprintf(cmd, sizeof cmd, "%s --fire 'Bad@1' 2>/dev/null", th_bin_path("firewatch-fleet"));
    CHECK(WEXITSTATUS(system(cmd)) == 2);
    snprintf(cmd, sizeof cmd, "%s --broker ssl://127.0.0.1:8883 2>/dev/null", th_bin_path("firewatch-fleet"));
    CHECK(WEXITSTATUS(system(cmd)) == 2);
    snprintf(cmd, sizeof cmd, "%s --broker tcp://127.0.0.1:99999 2>/dev/null",
             th_bin_path("firewatch-fleet"));
    CHECK(WEXITSTATUS(system(cmd)) == 2);
    /* More nodes than the descriptor limit allows: refused up front, saying so. */
    snprintf(cmd, sizeof cmd, "ulimit -n 200 && %s --nodes 500 2>&1 | grep -q 'hard limit'",
             th_bin_path("firewatch-fleet"));
    CHECK_INT(system(cmd), 0);
}

/* 500 nodes: all births arrive, one descriptor per node, and SIGTERM gives
 * every node a clean retained goodbye well inside the 3 s bound. */
static void test_fleet_500_nodes(void)
{
    struct tb_broker b;
    char cmd[1024], log[320], port[16];
    CHECK_INT(tb_init(&b), 0);
    CHECK_INT(tb_start(&b, "allow_anonymous true\nmax_connections -1"), 0);
    snprintf(log, sizeof log, "%s/fleet.log", b.dir);
    snprintf(port, sizeof port, "%d", b.port);
    snprintf(cmd, sizeof cmd,
             "mosquitto_sub -V mqttv5 -h 127.0.0.1 -p %d -t 'firewatch/v1/node/+/status' -v -C 500 -W 20",
             b.port);
    FILE *sub = popen(cmd, "r"); /* subscribed before the fleet starts: live births only */
    CHECK(sub != NULL);
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);

    char *argv[] = {"",     "--broker",   b.url, "--nodes", "500", "--prefix", "m", "--connect-rate",
                    "2000", "--interval", "30",  "--quiet", NULL};
    int64_t t0 = th_now_ms();
    pid_t pid = fleet_spawn(argv, log);
    CHECK(pid > 0);
    int births = 0;
    char line[1200];
    while (sub && fgets(line, sizeof line, sub))
        if (strstr(line, "\"online\":true"))
            births++;
    if (sub)
        pclose(sub);
    CHECK_INT(births, 500);
    printf("# 500 births in %lld ms\n", (long long)(th_now_ms() - t0));
    int fds = count_fds(pid);
    CHECK(fds >= 500 && fds <= 500 + 16); /* no per-client socketpair */

    int64_t t1 = th_now_ms();
    CHECK_INT(fleet_stop(pid, SIGTERM, 10000), 0);
    int64_t stop_ms = th_now_ms() - t1;
    printf("# shutdown of 500 nodes in %lld ms\n", (long long)stop_ms);
    CHECK(stop_ms < 3500);
    int online = 0, offline = 0;
    snprintf(cmd, sizeof cmd,
             "mosquitto_sub -V mqttv5 -h 127.0.0.1 -p %d -t 'firewatch/v1/node/+/status' -v --retained-only "
             "-W 3 2>/dev/null",
             b.port);
    count_statuses(cmd, 0, &online, &offline);
    CHECK_INT(online, 0);
    CHECK_INT(offline, 500);
    /* Clean goodbyes: the broker logged DISCONNECTs, not lost connections. */
    snprintf(cmd, sizeof cmd, "grep -c 'Client m-[0-9]* disconnected' %s/mosquitto.log", b.dir);
    FILE *p = popen(cmd, "r");
    CHECK(p && fgets(line, sizeof line, p) && strtol(line, NULL, 10) == 500);
    if (p)
        pclose(p);
    tb_stop(&b);
}

/* A node with the wrong password is refused (and keeps being refused,
 * counted), while its neighbour connects; the neighbour's ACL lets it send
 * its status and readings but not events, so its answer to a selftest is
 * refused with an MQTT 5 reason code and counted, not acknowledged. */
static void test_fleet_refusals(void)
{
    struct tb_broker b;
    char cmd[2048], path[320], stats[320], conf[1024], line[600];
    CHECK_INT(tb_init(&b), 0);
    snprintf(path, sizeof path, "%s/passwd", b.dir);
    snprintf(cmd, sizeof cmd,
             "mosquitto_passwd -c -b %s/passwd r-0001 good && mosquitto_passwd -b %s/passwd r-0002 right && "
             "mosquitto_passwd -b %s/passwd watcher w",
             b.dir, b.dir, b.dir);
    CHECK_INT(system(cmd), 0);
    snprintf(path, sizeof path, "%s/acl", b.dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fprintf(f, "user watcher\ntopic readwrite #\n\n"
                   "pattern write firewatch/v1/node/%%u/status\npattern write firewatch/v1/node/%%u/reading\n"
                   "pattern read firewatch/v1/node/%%u/cmd\n");
        fclose(f);
    }
    snprintf(conf, sizeof conf, "allow_anonymous false\npassword_file %s/passwd\nacl_file %s/acl", b.dir,
             b.dir);
    CHECK_INT(tb_start(&b, conf), 0);
    /* A retained command is delivered as soon as r-0001 subscribes. */
    snprintf(cmd, sizeof cmd,
             "mosquitto_pub -V mqttv5 -h 127.0.0.1 -p %d -u watcher -P w -q 1 -r "
             "-t firewatch/v1/node/r-0001/cmd -m '{\"id\":\"c-1\",\"cmd\":\"selftest\"}'",
             b.port);
    CHECK_INT(system(cmd), 0);
    snprintf(path, sizeof path, "%s/ids", b.dir);
    f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fprintf(f, "# id password\nr-0001 good\nr-0002 wrong\n");
        fclose(f);
    }
    snprintf(stats, sizeof stats, "%s/stats.json", b.dir);
    snprintf(cmd, sizeof cmd, "%s", path);
    char log[320];
    snprintf(log, sizeof log, "%s/fleet.log", b.dir);
    char *argv[] = {"",           "--broker", b.url,     "--ids-from", cmd,   "--interval", "0.5",
                    "--duration", "3.5",      "--quiet", "--stats",    stats, NULL};
    pid_t pid = fleet_spawn(argv, log);
    CHECK(pid > 0);
    CHECK_INT(fleet_stop(pid, 0, 15000), 0);
    CHECK(read_stats(stats, line, sizeof line));
    CHECK_INT(stat_value(line, "connected"), 1);
    CHECK(stat_value(line, "connect_failures") >= 2); /* refused, then refused again after backoff */
    CHECK_INT(stat_value(line, "commands"), 1);
    CHECK_INT(stat_value(line, "events"), 2);
    CHECK_INT(stat_value(line, "events_acked"), 0);
    CHECK_INT(stat_value(line, "refused"), 2);
    CHECK(stat_value(line, "readings") >= 4);
    snprintf(cmd, sizeof cmd, "grep -q 'r-0002: connection refused' %s", log);
    CHECK_INT(system(cmd), 0);
    int births = 0, offline = 0;
    snprintf(
        cmd, sizeof cmd,
        "mosquitto_sub -V mqttv5 -h 127.0.0.1 -p %d -u watcher -P w -t 'firewatch/v1/node/r-0002/status' -v "
        "--retained-only -W 2 2>/dev/null",
        b.port);
    count_statuses(cmd, 0, &births, &offline);
    CHECK_INT(births + offline, 0);
    tb_stop(&b);
}

static bool births_since(void *arg)
{
    const struct {
        int port;
        int64_t since;
    } *w = arg;
    char cmd[512];
    int births = 0, offline = 0;
    snprintf(cmd, sizeof cmd,
             "mosquitto_sub -V mqttv5 -h 127.0.0.1 -p %d -t 'firewatch/v1/node/+/status' -v --retained-only "
             "-W 1 2>/dev/null",
             w->port);
    count_statuses(cmd, w->since, &births, &offline);
    return births == 20;
}

/* The broker goes away and comes back: every node reconnects with backoff,
 * resubscribes and sends a fresh birth. */
static void test_fleet_reconnects(void)
{
    struct tb_broker b;
    char log[320], stats[320], line[600];
    CHECK_INT(tb_init(&b), 0);
    CHECK_INT(tb_start(&b, NULL), 0);
    snprintf(log, sizeof log, "%s/fleet.log", b.dir);
    snprintf(stats, sizeof stats, "%s/stats.json", b.dir);
    char *argv[] = {"",           "--broker", b.url,     "--nodes", "20",  "--prefix", "c",
                    "--interval", "1",        "--quiet", "--stats", stats, NULL};
    struct {
        int port;
        int64_t since;
    } w = {b.port, wall_ms()};
    pid_t pid = fleet_spawn(argv, log);
    CHECK(pid > 0);
    CHECK(th_wait_until(births_since, &w, 10000));
    tb_halt(&b);
    w.since = wall_ms();
    CHECK_INT(tb_restart(&b), 0);
    CHECK(th_wait_until(births_since, &w, 15000));
    /* ...and they answer commands on the restored subscription. */
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "mosquitto_pub -V mqttv5 -h 127.0.0.1 -p %d -q 1 -t firewatch/v1/node/c-0005/cmd "
             "-m '{\"id\":\"c-2\",\"cmd\":\"identify\"}'",
             b.port);
    CHECK_INT(system(cmd), 0);
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
    CHECK_INT(fleet_stop(pid, SIGTERM, 10000), 0);
    CHECK(read_stats(stats, line, sizeof line));
    CHECK_INT(stat_value(line, "reconnects"), 20);
    CHECK_INT(stat_value(line, "commands"), 1);
    CHECK_INT(stat_value(line, "events_acked"), 1);
    CHECK_INT(stat_value(line, "send_failures"), 0);
    tb_stop(&b);
}

TH_MAIN(TH_TEST(test_fleet_publishes_valid_traffic), TH_TEST(test_fleet_help_and_bad_args),
        TH_TEST(test_fleet_500_nodes), TH_TEST(test_fleet_refusals), TH_TEST(test_fleet_reconnects))
