/*
 * test_provision.c - provisioning, commissioning and broker security end to
 * end. firewatchctl writes the Mosquitto configuration, password file and
 * ACL (`broker config`); a real Mosquitto runs exactly that file
 * (tb_start_config); the real firewatch-hub connects on its loopback
 * listener with its own account; nodes are provisioned with `firewatchctl
 * node add --json`. Nodes are played by the paho test client
 * (tests/broker/client.c: it reports the MQTT 5 reason codes a node sees),
 * by mosquitto_pub / mosquitto_sub in their own processes (extra paho
 * connections in one process cost ~2 s each) and by the fleet simulator,
 * which answers selftest like a healthy node. Every child process dies with
 * the test (PR_SET_PDEATHSIG) and is stopped by it.
 *
 * "Nothing reached the hub" is shown with a barrier: a permitted message sent
 * after the refused ones, which the hub must have stored first.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../broker/client.h"
#include "../http/client.h"
#include "broker.h"
#include "harness.h"

#define NOT_AUTHORIZED 0x87
#define ROOT "firewatch/v1/"
#define PW_MAX 64

struct rig {
    struct tb_broker b; /* b.dir holds every file of the rig */
    int hub_port;
    char node_url[64];
    char conf[320], db[320], log[320];
    pid_t hub, fleet;
    int n_nodes;   /* nodes provisioned, for waiting on the hub's reload */
    int http_port; /* when the rig serves HTTP */
    char cookie[128], csrf[128];
};

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    fputs(text, f);
    fclose(f);
}

static void path_in(const struct rig *r, char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", r->b.dir, name);
}

/* Runs a shell command line and keeps its output (both streams when
 * with_stderr). Returns the exit status, or -1. */
static int run_cmd(const char *cmd, bool with_stderr, char *out, size_t size)
{
    char full[2048];
    snprintf(full, sizeof full, "%s %s%s", cmd, with_stderr ? "2>&1" : "2>/dev/null",
             strchr(cmd, '|') ? "" : " </dev/null");
    FILE *p = popen(full, "r");
    if (!p)
        return -1;
    size_t n = 0;
    if (out && size) {
        n = fread(out, 1, size - 1, p);
        out[n] = '\0';
    }
    char sink[256];
    while (fread(sink, 1, sizeof sink, p) > 0)
        ;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* firewatchctl with the rig's config. */
static int ctl(const struct rig *r, const char *args, bool with_stderr, char *out, size_t size)
{
    char cmd[1500];
    snprintf(cmd, sizeof cmd, "ASAN_OPTIONS=detect_leaks=1 %s -c %s %s", th_bin_path("firewatchctl"), r->conf,
             args);
    return run_cmd(cmd, with_stderr, out, size);
}

/* firewatchctl reading input (one line, e.g. a password) on its stdin. */
static int ctl_input(const struct rig *r, const char *input, const char *args)
{
    char cmd[1500], out[1024];
    snprintf(cmd, sizeof cmd, "printf '%s\\n' | %s -c %s %s", input, th_bin_path("firewatchctl"), r->conf,
             args);
    return run_cmd(cmd, true, out, sizeof out);
}

/* Publishes one QoS 1 message as user (password may be NULL: anonymous)
 * with mosquitto_pub over MQTT 5. Returns its exit status; the output (the
 * broker's refusal) goes to out. */
static int mosq_pub(const struct rig *r, const char *user, const char *pw, const char *topic,
                    const char *payload, char *out, size_t size)
{
    char cmd[1024], auth[200] = "";
    if (user)
        snprintf(auth, sizeof auth, "-u '%s' -P '%s'", user, pw ? pw : "");
    snprintf(cmd, sizeof cmd, "mosquitto_pub -V mqttv5 -h 127.0.0.1 -p %d %s -q 1 -t '%s' -m '%s'", r->b.port,
             auth, topic, payload);
    char buf[512];
    return run_cmd(cmd, true, out ? out : buf, out ? size : sizeof buf);
}

/* Waits up to wait_s for one message on topic as user; returns true when
 * one arrived (a retained message arrives at once). */
static bool mosq_sub_gets(const struct rig *r, const char *user, const char *pw, const char *topic,
                          int wait_s)
{
    char cmd[1024], out[512];
    snprintf(cmd, sizeof cmd, "mosquitto_sub -V mqttv5 -h 127.0.0.1 -p %d -u '%s' -P '%s' -t '%s' -C 1 -W %d",
             r->b.port, user, pw, topic, wait_s);
    return run_cmd(cmd, false, out, sizeof out) == 0 && out[0];
}

static long long db_int(const struct rig *r, const char *sql)
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

static int db_exec(const struct rig *r, const char *sql)
{
    sqlite3 *db;
    if (sqlite3_open(r->db, &db) != SQLITE_OK) {
        sqlite3_close(db);
        return -1;
    }
    sqlite3_busy_timeout(db, 5000);
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc == SQLITE_OK ? 0 : -1;
}

struct dbwait {
    const struct rig *r;
    const char *sql;
    long long want;
};

static bool db_reached(void *arg)
{
    const struct dbwait *w = arg;
    return db_int(w->r, w->sql) >= w->want;
}

/* Waits until the query's value is at least want. */
static bool wait_db(const struct rig *r, const char *sql, long long want, int ms)
{
    struct dbwait w = {r, sql, want};
    return th_wait_until(db_reached, &w, ms);
}

static int log_count(const struct rig *r, const char *needle)
{
    FILE *f = fopen(r->log, "r");
    if (!f)
        return 0;
    char line[2048];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

struct logwait {
    const struct rig *r;
    const char *needle;
    int count;
};

static bool log_reached(void *arg)
{
    const struct logwait *w = arg;
    return log_count(w->r, w->needle) >= w->count;
}

static bool wait_log(const struct rig *r, const char *needle, int ms)
{
    struct logwait w = {r, needle, 1};
    return th_wait_until(log_reached, &w, ms);
}

/* Forks and execs argv with stdout and stderr appended to logpath. */
static pid_t spawn(const char *const *argv, const char *logpath)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(1);
    int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
    }
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0)
        dup2(null, 0);
    setenv("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0", 0);
    execv(argv[0], (char *const *)argv);
    _exit(127);
}

/* Sends sig and waits up to 10 s (then SIGKILL). Returns true when the
 * process exited by itself with status 0. */
static bool stop_child(pid_t *pid, int sig)
{
    if (*pid <= 0)
        return true;
    kill(*pid, sig);
    int st = 0;
    int64_t deadline = th_now_ms() + 10000;
    while (th_now_ms() < deadline) {
        if (waitpid(*pid, &st, WNOHANG) == *pid) {
            *pid = -1;
            return WIFEXITED(st) && WEXITSTATUS(st) == 0;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(*pid, SIGKILL);
    waitpid(*pid, &st, 0);
    *pid = -1;
    return false;
}

static int hub_start(struct rig *r)
{
    int before = log_count(r, "connected to");
    const char *argv[] = {th_bin_path("firewatch-hub"), "--config", r->conf, NULL};
    char bin[512];
    snprintf(bin, sizeof bin, "%s", argv[0]); /* th_bin_path's buffer is static */
    argv[0] = bin;
    r->hub = spawn(argv, r->log);
    if (r->hub < 0)
        return -errno;
    struct logwait w = {r, "connected to", before + 1};
    if (!th_wait_until(log_reached, &w, 15000)) {
        th_fail(__FILE__, __LINE__, "the hub did not connect to the broker");
        return -ETIMEDOUT;
    }
    return 0;
}

/* Copies a log to stderr, prefixed, when the test has failed. */
static void dump_on_failure(const char *path, const char *prefix)
{
    if (th_failures() == 0)
        return;
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[2048];
    while (fgets(line, sizeof line, f))
        fprintf(stderr, "%s: %s", prefix, line);
    fclose(f);
}

static void rig_down(struct rig *r)
{
    stop_child(&r->fleet, SIGTERM);
    stop_child(&r->hub, SIGKILL);
    dump_on_failure(r->log, "hub");
    char path[320];
    path_in(r, path, sizeof path, "mosquitto.stderr");
    dump_on_failure(path, "mosquitto");
    tb_stop(&r->b);
}

/* The hub's config file; extra lines are appended. */
static void write_conf(struct rig *r, const char *extra)
{
    unsigned char rnd[12];
    char pw[32] = "";
    if (getrandom(rnd, sizeof rnd, 0) == (ssize_t)sizeof rnd)
        for (size_t i = 0; i < sizeof rnd; i++)
            snprintf(pw + 2 * i, 3, "%02x", rnd[i]);
    char text[4096];
    snprintf(text, sizeof text,
             "broker tcp://127.0.0.1:%d\ndatabase %s\nusername firewatch_hub\npassword hub-%s\n"
             "verify_s 2\nbatch_ms 20\nkeepalive_s 10\nhttp_listen \n"
             "broker_conf %s/mosquitto.conf\nbroker_passwd %s/passwd\nbroker_acl %s/acl\n"
             "broker_pid %s/mosquitto.pid\nbroker_persistence %s\nbroker_user %s\n"
             "broker_listen 127.0.0.1:%d\nbroker_hub_listen 127.0.0.1:%d\nbroker_tls_dir %s/tls\n"
             "node_broker_url %s\n%s\n",
             r->hub_port, r->db, pw, r->b.dir, r->b.dir, r->b.dir, r->b.dir, r->b.dir,
             geteuid() == 0 ? "root" : "", r->b.port, r->hub_port, r->b.dir, r->node_url, extra ? extra : "");
    /* A key may appear once: a line of extra replaces the base line. */
    FILE *f = fopen(r->conf, "w");
    if (!f)
        return;
    size_t base_len = strlen(text) - (extra ? strlen(extra) + 1 : 1);
    for (const char *line = text; *line;) {
        size_t n = strcspn(line, "\n");
        size_t klen = strcspn(line, " \n");
        bool replaced = false;
        if ((size_t)(line - text) < base_len && extra && klen > 0) {
            for (const char *e = extra; *e; e += strcspn(e, "\n") + (e[strcspn(e, "\n")] == '\n'))
                replaced = replaced || (strncmp(e, line, klen) == 0 &&
                                        (e[klen] == ' ' || e[klen] == '\n' || e[klen] == '\0'));
        }
        if (!replaced)
            fprintf(f, "%.*s\n", (int)n, line);
        line += n + (line[n] == '\n');
    }
    fclose(f);
}

/* A scratch rig: config and topology, without starting anything. Zones z1
 * (households h1, h2) and z2 (h3). */
static int rig_init(struct rig *r, const char *extra_conf)
{
    memset(r, 0, sizeof *r);
    r->hub = r->fleet = -1;
    if (tb_init(&r->b) < 0)
        return -1;
    do
        r->hub_port = tb_free_port();
    while (r->hub_port == r->b.port);
    snprintf(r->node_url, sizeof r->node_url, "tcp://127.0.0.1:%d", r->b.port);
    path_in(r, r->conf, sizeof r->conf, "hub.conf");
    path_in(r, r->db, sizeof r->db, "hub.db");
    path_in(r, r->log, sizeof r->log, "hub.log");
    write_conf(r, extra_conf);
    static const char *const setup[] = {
        "site add s1 --name Ward",
        "zone add z1 --site s1",
        "zone add z2 --site s1",
        "household add h1 --zone z1 --address '1 Main St' --contact Lan --phone 0901",
        "household add h2 --zone z1 --address '2 Main St'",
        "household add h3 --zone z2",
    };
    for (size_t i = 0; i < sizeof setup / sizeof setup[0]; i++) {
        char out[1024];
        if (ctl(r, setup[i], true, out, sizeof out) != 0) {
            th_fail(__FILE__, __LINE__, "firewatchctl %s: %s", setup[i], out);
            return -1;
        }
    }
    return 0;
}

/* The port the hub's HTTP server bound (it logs "http: serving on ... (port N)"). */
static bool find_http_port(void *arg)
{
    struct rig *r = arg;
    FILE *f = fopen(r->log, "r");
    char line[1024];
    while (f && r->http_port == 0 && fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "(port ");
        if (p && strstr(line, "http: serving on"))
            r->http_port = (int)strtol(p + 6, NULL, 10);
    }
    if (f)
        fclose(f);
    return r->http_port > 0;
}

/* rig_init, then broker config, the broker on that file, and the hub (with
 * HTTP on a free port when http). */
static int rig_up_with(struct rig *r, bool http)
{
    if (rig_init(r, http ? "http_listen 127.0.0.1:0" : NULL) < 0)
        return -1;
    char out[4096];
    if (ctl(r, "broker config", true, out, sizeof out) != 0) {
        th_fail(__FILE__, __LINE__, "broker config: %s", out);
        return -1;
    }
    if (tb_start_config(&r->b) < 0) {
        th_fail(__FILE__, __LINE__, "mosquitto does not start with the generated config");
        return -1;
    }
    if (hub_start(r) < 0)
        return -1;
    if (http && !th_wait_until(find_http_port, r, 10000)) {
        th_fail(__FILE__, __LINE__, "the hub serves no HTTP");
        return -1;
    }
    return 0;
}

static int rig_up(struct rig *r)
{
    return rig_up_with(r, false);
}

/* Logs in over HTTP as user (password PW_USER); keeps the cookie and CSRF token. */
#define PW_USER "correct horse battery"
static int http_login(struct rig *r, const char *user)
{
    char body[256];
    snprintf(body, sizeof body, "{\"user\":\"%s\",\"password\":\"" PW_USER "\"}", user);
    struct hc_response res;
    if (hc_request(r->http_port, "POST", "/api/v1/session", NULL, body, strlen(body), &res) != 0)
        return -1;
    char set[512] = "";
    hc_header(&res, "Set-Cookie", set, sizeof set);
    const char *v = strstr(set, "fw_session=");
    r->cookie[0] = r->csrf[0] = '\0';
    if (v)
        snprintf(r->cookie, sizeof r->cookie, "%.*s", (int)strcspn(v + 11, ";"), v + 11);
    cJSON *o = res.status == 200 ? cJSON_Parse(res.body) : NULL;
    const char *csrf = cJSON_GetStringValue(cJSON_GetObjectItem(o, "csrf"));
    if (csrf)
        snprintf(r->csrf, sizeof r->csrf, "%s", csrf);
    cJSON_Delete(o);
    hc_free(&res);
    return r->cookie[0] && r->csrf[0] ? 0 : -1;
}

/* A request as the logged-in user; returns the status, the body in out. */
static int http_req(struct rig *r, const char *method, const char *path, const char *body, char *out,
                    size_t size)
{
    char hdr[512];
    bool change = strcmp(method, "GET") != 0;
    snprintf(hdr, sizeof hdr, "Cookie: fw_session=%s\r\n%s%s%s", r->cookie, change ? "X-CSRF-Token: " : "",
             change ? r->csrf : "", change ? "\r\n" : "");
    struct hc_response res;
    if (hc_request(r->http_port, method, path, hdr, body, body ? strlen(body) : 0, &res) != 0)
        return -1;
    snprintf(out, size, "%s", res.body ? res.body : "");
    int status = res.status;
    hc_free(&res);
    return status;
}

struct testwait {
    struct rig *r;
    const char *path;
    char *out;
    size_t size;
};

/* True once the newest test listed at path is no longer running. */
static bool test_done(void *arg)
{
    struct testwait *w = arg;
    return http_req(w->r, "GET", w->path, NULL, w->out, w->size) == 200 && strstr(w->out, "\"state\":\"") &&
           !strstr(w->out, "\"state\":\"running\"");
}

/* `node add --json`: provisions id and returns its password. With the hub
 * running, waits until it has loaded the new node (it polls once a second):
 * a node heard before that is an unknown node. */
static int provision(struct rig *r, const char *id, const char *household, char *pw, size_t size)
{
    char args[256], out[2048];
    snprintf(args, sizeof args, "--json node add %s --household %s --kind combo", id, household);
    int rc = ctl(r, args, false, out, sizeof out);
    cJSON *o = rc == 0 ? cJSON_Parse(out) : NULL;
    const cJSON *p = cJSON_GetObjectItem(o, "password");
    const cJSON *b = cJSON_GetObjectItem(o, "broker");
    bool ok = cJSON_IsString(p) && strlen(p->valuestring) >= 32 && cJSON_IsString(b) &&
              strcmp(b->valuestring, r->node_url) == 0 && cJSON_GetObjectItem(o, "zone") &&
              cJSON_GetObjectItem(o, "username") && cJSON_GetObjectItem(o, "id");
    if (ok)
        snprintf(pw, size, "%s", p->valuestring);
    else
        th_fail(__FILE__, __LINE__, "node add %s: exit %d, output %s", id, rc, out);
    cJSON_Delete(o);
    if (ok && r->hub > 0) {
        char needle[64];
        snprintf(needle, sizeof needle, "topology: 2 zones, %d nodes", ++r->n_nodes);
        if (!wait_log(r, needle, 5000))
            th_fail(__FILE__, __LINE__, "the hub did not load node %s", id);
    }
    return ok ? 0 : -1;
}

/* The new password printed by a --json command (rotate-credentials). */
static int json_password(const char *out, char *pw, size_t size)
{
    cJSON *o = cJSON_Parse(out);
    const cJSON *p = cJSON_GetObjectItem(o, "password");
    int rc = cJSON_IsString(p) ? 0 : -1;
    if (rc == 0)
        snprintf(pw, size, "%s", p->valuestring);
    cJSON_Delete(o);
    return rc;
}

static bool file_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

#define READING(seq) "{\"seq\":" #seq ",\"ts\":1700000000000,\"temp_c\":24.5,\"smoke\":false,\"batt_pct\":87}"
#define ALARM "{\"seq\":5,\"ts\":1700000000000,\"type\":\"alarm\",\"cause\":\"heat_fixed\"}"

/* ------------------------------------------------------------------------- */

/* A provisioned node connects and publishes, and the hub stores it; the
 * same credentials cannot publish anywhere else (the node sees 0x87, the
 * hub sees nothing); bad logins are refused. */
static void test_node_confined_to_its_topics(void)
{
    struct rig r;
    char pw1[PW_MAX], pw2[PW_MAX], out[1024];
    if (rig_up(&r) < 0 || provision(&r, "n1", "h1", pw1, sizeof pw1) < 0 ||
        provision(&r, "n2", "h3", pw2, sizeof pw2) < 0) {
        rig_down(&r);
        return;
    }
    int reason = 0;
    struct tc_client *c = tc_connect(r.node_url, NULL, "n1", pw1, NULL, &reason);
    CHECK(c != NULL);
    if (!c) {
        th_fail(__FILE__, __LINE__, "n1 refused: 0x%x", (unsigned)reason);
        rig_down(&r);
        return;
    }
    CHECK_INT(tc_publish(c, ROOT "node/n1/reading", READING(0), 1, false), 0);
    CHECK(wait_db(&r, "SELECT count(*) FROM readings WHERE node_id = 'n1'", 1, 5000));

    static const char *const foreign[][2] = {
        {ROOT "node/n2/event", ALARM},
        {ROOT "node/n2/reading", READING(1)},
        {ROOT "node/n2/status", "{\"online\":false,\"boot\":1}"},
        {ROOT "node/n1/cmd", "{\"id\":\"x\",\"cmd\":\"selftest\"}"},
        {ROOT "zone/z1/alarm", "{\"state\":\"alarm\",\"incident\":99,\"origin\":\"n1\",\"ts\":1}"},
        {ROOT "zone/z2/alarm", "{\"state\":\"alarm\",\"incident\":99,\"origin\":\"n1\",\"ts\":1}"},
        {ROOT "hub/status", "{\"online\":false,\"ts\":1}"},
        {ROOT "node/ghost/event", ALARM},
    };
    for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++) {
        int rc = tc_publish(c, foreign[i][0], foreign[i][1], 1, false);
        th_report(rc == NOT_AUTHORIZED, "n1 publishing to %s is refused with 0x87 (got 0x%x)", foreign[i][0],
                  (unsigned)rc);
    }
    /* Barrier: a permitted reading sent after them reaches the hub... */
    CHECK_INT(tc_publish(c, ROOT "node/n1/reading", READING(1), 1, false), 0);
    CHECK(wait_db(&r, "SELECT count(*) FROM readings WHERE node_id = 'n1'", 2, 5000));
    /* ...and none of the refused ones did. */
    CHECK_INT(db_int(&r, "SELECT count(*) FROM events"), 0);
    CHECK_INT(db_int(&r, "SELECT count(*) FROM incidents"), 0);
    CHECK_INT(db_int(&r, "SELECT count(*) FROM readings WHERE node_id <> 'n1'"), 0);
    tc_free(c);

    /* Logins: anonymous, a wrong password, another node's password, an
     * unknown user - each refused as not authorised (MQTT 5 reason 0x87). */
    struct {
        const char *user, *pw, *what;
    } logins[] = {{NULL, NULL, "anonymous"},
                  {"n1", "wrong-password", "n1 with a wrong password"},
                  {"n1", pw2, "n1 with n2's password"},
                  {"ghost", pw1, "an unknown user"}};
    for (size_t i = 0; i < sizeof logins / sizeof logins[0]; i++) {
        int rc =
            mosq_pub(&r, logins[i].user, logins[i].pw, ROOT "node/n1/reading", READING(9), out, sizeof out);
        out[strcspn(out, "\n")] = '\0';
        th_report(rc != 0 && strstr(out, "uthori") != NULL, "%s is refused (exit %d: %.80s)", logins[i].what,
                  rc, out);
    }
    /* The password file holds hashes only; the database holds no password. */
    char passwd[320];
    path_in(&r, passwd, sizeof passwd, "passwd");
    CHECK(file_has(passwd, "n1:$7$"));
    CHECK(!file_has(passwd, pw1));
    CHECK(!file_has(r.db, pw1));
    CHECK_INT(mosq_pub(&r, "n1", pw1, ROOT "node/n1/reading", READING(2), NULL, 0), 0);
    CHECK(wait_db(&r, "SELECT count(*) FROM readings WHERE node_id = 'n1'", 3, 5000));
    rig_down(&r);
}

/* rotate-credentials: the old password is refused at once (even a live
 * session is cut), the new one works. decommission: cut off at once, the
 * history kept, the hub lets it go. */
static void test_rotate_and_decommission(void)
{
    struct rig r;
    char pw_old[PW_MAX], pw_new[PW_MAX], out[4096];
    if (rig_up(&r) < 0 || provision(&r, "n1", "h1", pw_old, sizeof pw_old) < 0) {
        rig_down(&r);
        return;
    }
    int reason = 0;
    struct tc_client *c = tc_connect(r.node_url, NULL, "n1", pw_old, NULL, &reason);
    CHECK(c != NULL);
    CHECK_INT(tc_publish(c, ROOT "node/n1/reading", READING(0), 1, false), 0);
    CHECK(wait_db(&r, "SELECT count(*) FROM readings WHERE node_id = 'n1'", 1, 5000));

    CHECK_INT(ctl(&r, "--json node rotate-credentials n1", false, out, sizeof out), 0);
    CHECK_INT(json_password(out, pw_new, sizeof pw_new), 0);
    CHECK(strcmp(pw_new, pw_old) != 0);
    CHECK(c && tc_wait_lost(c, 5000)); /* the reload cut the old session */
    tc_free(c);
    CHECK(mosq_pub(&r, "n1", pw_old, ROOT "node/n1/reading", READING(1), out, sizeof out) != 0);
    CHECK(strstr(out, "uthori") != NULL);
    CHECK_INT(mosq_pub(&r, "n1", pw_new, ROOT "node/n1/reading", READING(2), NULL, 0), 0);
    CHECK(wait_db(&r, "SELECT count(*) FROM readings WHERE node_id = 'n1'", 2, 5000));

    /* A plain rotate prints the whole node config. */
    CHECK_INT(ctl(&r, "node rotate-credentials n1", false, out, sizeof out), 0);
    CHECK(strstr(out, "id n1\nzone z1\nkind combo\n") != NULL);
    CHECK(strstr(out, "username n1\npassword ") != NULL);
    char *p = strstr(out, "password ");
    if (p && sscanf(p, "password %63s", pw_new) != 1)
        th_fail(__FILE__, __LINE__, "no password in %s", out);

    c = tc_connect(r.node_url, NULL, "n1", pw_new, NULL, &reason);
    CHECK(c != NULL);
    CHECK_INT(ctl(&r, "node decommission n1", true, out, sizeof out), 0);
    CHECK(strstr(out, "node n1 decommissioned") != NULL && strstr(out, "credentials revoked") != NULL);
    CHECK(c && tc_wait_lost(c, 5000)); /* cut off at once */
    tc_free(c);
    CHECK(mosq_pub(&r, "n1", pw_new, ROOT "node/n1/reading", READING(3), out, sizeof out) != 0);
    CHECK(strstr(out, "uthori") != NULL);
    /* The record and its history stay; the hub let it go. */
    CHECK(db_int(&r, "SELECT decommissioned_ms FROM nodes WHERE id = 'n1'") > 0);
    CHECK_INT(db_int(&r, "SELECT decommissioned_by <> '' FROM nodes WHERE id = 'n1'"), 1);
    CHECK_INT(db_int(&r, "SELECT count(*) FROM readings WHERE node_id = 'n1'"), 2);
    CHECK_INT(db_int(&r, "SELECT count(*) FROM audit WHERE action = 'node decommission'"), 1);
    CHECK(wait_log(&r, "node n1 decommissioned", 5000));
    char acl[320];
    path_in(&r, acl, sizeof acl, "acl");
    CHECK(!file_has(acl, "user n1"));
    /* A retired node cannot be tested, rotated or decommissioned again. */
    CHECK_INT(ctl(&r, "node test n1", true, out, sizeof out), 1);
    CHECK(strstr(out, "decommissioned") != NULL);
    CHECK(ctl(&r, "node rotate-credentials n1", true, out, sizeof out) != 0);
    CHECK(ctl(&r, "node decommission n1", true, out, sizeof out) != 0);
    /* remove is for mistakes only: an installed node is refused. */
    char pw3[PW_MAX];
    CHECK_INT(provision(&r, "n3", "h2", pw3, sizeof pw3), 0);
    CHECK_INT(mosq_pub(&r, "n3", pw3, ROOT "node/n3/reading", READING(0), NULL, 0), 0);
    CHECK(wait_db(&r, "SELECT count(*) FROM readings WHERE node_id = 'n3'", 1, 5000));
    CHECK(stop_child(&r.hub, SIGTERM)); /* saves last_seen */
    CHECK(ctl(&r, "node remove n3", true, out, sizeof out) != 0);
    CHECK(strstr(out, "node decommission n3") != NULL);
    CHECK_INT(ctl(&r, "--json node add n4 --household h2 --kind heat", false, out, sizeof out), 0);
    CHECK_INT(ctl(&r, "node remove n4", true, out, sizeof out), 0);
    CHECK(!file_has(acl, "user n4"));
    rig_down(&r);
}

/* node move: the zone read grant follows the household. */
static void test_move_follows_zone(void)
{
    struct rig r;
    char pw[PW_MAX], out[1024];
    if (rig_up(&r) < 0 || provision(&r, "n1", "h1", pw, sizeof pw) < 0) {
        rig_down(&r);
        return;
    }
    /* The hub publishes a retained clear on every zone once connected. */
    CHECK(mosq_sub_gets(&r, "n1", pw, ROOT "zone/z1/alarm", 3));
    CHECK(!mosq_sub_gets(&r, "n1", pw, ROOT "zone/z2/alarm", 1));
    CHECK_INT(ctl(&r, "node move n1 --household h3 --room hall", true, out, sizeof out), 0);
    CHECK(strstr(out, "zone z2") != NULL);
    CHECK(mosq_sub_gets(&r, "n1", pw, ROOT "zone/z2/alarm", 3));
    CHECK(!mosq_sub_gets(&r, "n1", pw, ROOT "zone/z1/alarm", 1));
    CHECK_INT(db_int(&r, "SELECT household_id = 'h3' AND room = 'hall' FROM nodes WHERE id = 'n1'"), 1);
    rig_down(&r);
}

/* A broker account the hub does not know (here: a node deleted from the
 * database behind the broker's back) gets through the broker, and the hub
 * rejects and counts what it sends. A node decommissioned without a broker
 * reload still publishing is ignored and shows in the technician view. */
static void test_unknown_and_retired_senders(void)
{
    struct rig r;
    char pw1[PW_MAX], pwg[PW_MAX], out[8192];
    if (rig_up(&r) < 0 || provision(&r, "n1", "h1", pw1, sizeof pw1) < 0 ||
        provision(&r, "g1", "h2", pwg, sizeof pwg) < 0) {
        rig_down(&r);
        return;
    }
    CHECK_INT(db_exec(&r, "DELETE FROM nodes WHERE id = 'g1'"), 0);
    CHECK(wait_log(&r, "node g1 removed", 5000));
    CHECK_INT(mosq_pub(&r, "g1", pwg, ROOT "node/g1/reading", READING(0), NULL, 0), 0);
    CHECK_INT(mosq_pub(&r, "g1", pwg, ROOT "node/g1/event", ALARM, NULL, 0), 0);
    CHECK_INT(mosq_pub(&r, "n1", pw1, ROOT "node/n1/reading", READING(0), NULL, 0), 0);
    CHECK(wait_db(&r, "SELECT count(*) FROM readings WHERE node_id = 'n1'", 1, 5000));
    CHECK(wait_log(&r, "message from unknown node g1 ignored", 5000));
    CHECK(wait_log(&r, "event from unknown node g1 ignored", 5000));
    CHECK_INT(db_int(&r, "SELECT count(*) FROM readings WHERE node_id = 'g1'"), 0);
    CHECK_INT(db_int(&r, "SELECT count(*) FROM events WHERE node_id = 'g1'"), 0);
    CHECK_INT(db_int(&r, "SELECT count(*) FROM incidents"), 0);

    /* Retired in the database only (as if the broker were never reloaded). */
    CHECK_INT(
        db_exec(&r, "UPDATE nodes SET decommissioned_ms = 1000, decommissioned_by = 'lan' WHERE id = 'n1'"),
        0);
    CHECK(wait_log(&r, "node n1 decommissioned", 5000));
    CHECK_INT(mosq_pub(&r, "n1", pw1, ROOT "node/n1/reading", READING(1), NULL, 0), 0);
    CHECK_INT(mosq_pub(&r, "n1", pw1, ROOT "node/n1/event", ALARM, NULL, 0), 0);
    CHECK(wait_log(&r, "message from decommissioned node n1 ignored", 5000));
    CHECK(stop_child(&r.hub, SIGTERM));
    CHECK(log_count(&r, "unknown node 1 (+1 readings)") == 1);
    CHECK_INT(db_int(&r, "SELECT count(*) FROM readings WHERE node_id = 'n1'"), 1);
    CHECK_INT(db_int(&r, "SELECT count(*) FROM incidents"), 0);
    CHECK_INT(ctl(&r, "tech", true, out, sizeof out), 0);
    CHECK(strstr(out, "still_publishing") != NULL);
    CHECK(strstr(out, "by lan") != NULL);
    rig_down(&r);
}

static int readiness_score(const struct rig *r, const char *zone)
{
    char args[128], out[4096];
    snprintf(args, sizeof args, "--json readiness --zone %s", zone);
    if (ctl(r, args, false, out, sizeof out) != 0)
        return -1;
    cJSON *a = cJSON_Parse(out);
    const cJSON *s = cJSON_GetObjectItem(cJSON_GetArrayItem(a, 0), "score");
    int v = cJSON_IsNumber(s) ? s->valueint : -1;
    cJSON_Delete(a);
    return v;
}

/* Commissioning: the fleet simulator answers selftest and the node is
 * commissioned (readiness rises); a provisioned node that is not running
 * fails with a clear reason and stays uncommissioned. */
static void test_commissioning(void)
{
    struct rig r;
    char pwf[PW_MAX], pws[PW_MAX], out[8192];
    if (rig_up_with(&r, true) < 0 || provision(&r, "f1", "h1", pwf, sizeof pwf) < 0 ||
        provision(&r, "s1", "h2", pws, sizeof pws) < 0) {
        rig_down(&r);
        return;
    }
    char ids[320], flog[320], line[200];
    path_in(&r, ids, sizeof ids, "fleet.ids");
    path_in(&r, flog, sizeof flog, "fleet.log");
    snprintf(line, sizeof line, "f1 %s\n", pwf);
    write_file(ids, line);
    char fleet[512];
    snprintf(fleet, sizeof fleet, "%s", th_bin_path("firewatch-fleet"));
    const char *argv[] = {fleet,        "--broker", r.node_url, "--ids-from", ids,
                          "--interval", "1",        "--quiet",  NULL};
    r.fleet = spawn(argv, flog);
    CHECK(wait_db(&r, "SELECT count(*) FROM readings WHERE node_id = 'f1'", 1, 10000));

    int before = readiness_score(&r, "z1");
    CHECK_INT(ctl(&r, "tech --zone z1", false, out, sizeof out), 0);
    CHECK(strstr(out, "f1") != NULL && strstr(out, "uncommissioned") != NULL);

    CHECK_INT(ctl(&r, "node test f1 --timeout 10", false, out, sizeof out), 0);
    CHECK(strstr(out, "node f1: pass") != NULL);
    CHECK(strstr(out, "now commissioned") != NULL);
    CHECK(db_int(&r, "SELECT commissioned_ms FROM nodes WHERE id = 'f1'") > 0);
    CHECK(db_int(&r, "SELECT last_test_ms FROM nodes WHERE id = 'f1'") > 0);
    CHECK_INT(db_int(&r, "SELECT count(*) FROM node_tests WHERE node_id = 'f1' AND result LIKE 'pass%' AND "
                         "who <> '' AND done_ms >= asked_ms"),
              1);
    int after = readiness_score(&r, "z1");
    th_report(before >= 0 && after > before, "readiness of z1 rises when f1 is commissioned (%d -> %d)",
              before, after);

    /* s1 is provisioned but nothing runs it. */
    int64_t t0 = th_now_ms();
    CHECK_INT(ctl(&r, "node test s1 --timeout 2", false, out, sizeof out), 1);
    CHECK(strstr(out, "node s1: fail: no answer from the node within 2 s") != NULL);
    CHECK(th_now_ms() - t0 < 6000);
    CHECK_INT(db_int(&r, "SELECT commissioned_ms FROM nodes WHERE id = 's1'"), 0);
    CHECK_INT(
        db_int(&r, "SELECT count(*) FROM node_tests WHERE node_id = 's1' AND result LIKE 'fail: no answer%'"),
        1);
    CHECK_INT(ctl(&r, "--json node test s1 --timeout 1", false, out, sizeof out), 1);
    CHECK(strstr(out, "\"result\":\"fail\"") != NULL && strstr(out, "\"commissioned\":false") != NULL);
    CHECK_INT(readiness_score(&r, "z1"), after);

    /* The technician's view: s1 is still to do, f1 is not. */
    CHECK_INT(ctl(&r, "tech", false, out, sizeof out), 0);
    CHECK(strstr(out, "household h2, zone z1 (2 Main St)") != NULL);
    CHECK(strstr(out, "s1") != NULL &&
          strstr(out, "last test: fail: no answer from the node within 1 s") != NULL);
    CHECK(strstr(out, "counts against the zone's readiness") != NULL);
    CHECK(strstr(out, "f1 ") == NULL);
    CHECK_INT(ctl(&r, "--json tech", false, out, sizeof out), 0);
    cJSON *a = cJSON_Parse(out);
    const cJSON *hh = cJSON_GetArrayItem(a, 0);
    const cJSON *p = cJSON_GetArrayItem(cJSON_GetObjectItem(hh, "problems"), 0);
    CHECK_INT(cJSON_GetArraySize(a), 1);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(hh, "household")), "h2");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(p, "problem")), "uncommissioned");
    const char *action = cJSON_GetStringValue(cJSON_GetObjectItem(p, "action"));
    CHECK(action && strstr(action, "node test") != NULL);
    cJSON_Delete(a);

    /* The same from the dashboard: a technician may test; a watch member
     * may not. The route answers at once; the outcome is polled. */
    CHECK_INT(ctl_input(&r, PW_USER, "user add tam --role technician"), 0);
    CHECK_INT(ctl_input(&r, PW_USER, "user add binh --role watch"), 0);
    CHECK_INT(http_login(&r, "binh"), 0);
    CHECK_INT(http_req(&r, "POST", "/api/v1/nodes/s1/test", NULL, out, sizeof out), 403);
    CHECK_INT(http_req(&r, "GET", "/api/v1/tech", NULL, out, sizeof out), 403);
    CHECK_INT(http_login(&r, "tam"), 0);
    CHECK_INT(http_req(&r, "POST", "/api/v1/nodes/nope/test", NULL, out, sizeof out), 404);
    CHECK_INT(http_req(&r, "POST", "/api/v1/nodes/s1/test", "{\"timeout_s\":9999}", out, sizeof out), 400);
    CHECK_INT(http_req(&r, "POST", "/api/v1/nodes/f1/test", "{\"timeout_s\":10}", out, sizeof out), 202);
    CHECK(strstr(out, "\"state\":\"running\"") != NULL);
    struct testwait w = {&r, "/api/v1/nodes/f1/tests", out, sizeof out};
    CHECK(th_wait_until(test_done, &w, 15000));
    CHECK(strstr(out, "\"by\":\"tam\"") != NULL && strstr(out, "\"state\":\"pass\"") != NULL);
    CHECK_INT(http_req(&r, "POST", "/api/v1/nodes/s1/test", "{\"timeout_s\":1}", out, sizeof out), 202);
    w.path = "/api/v1/nodes/s1/tests";
    CHECK(th_wait_until(test_done, &w, 10000));
    CHECK(strstr(out, "\"state\":\"fail\",\"reason\":\"no answer from the node within 1 s\"") != NULL);
    CHECK_INT(http_req(&r, "GET", "/api/v1/tech?zone=z1", NULL, out, sizeof out), 200);
    CHECK(strstr(out, "\"node\":\"s1\",\"problem\":\"uncommissioned\"") != NULL);
    CHECK(strstr(out, "\"node\":\"f1\"") == NULL);
    CHECK_INT(db_int(&r, "SELECT count(*) FROM audit WHERE action = 'node test' AND who = 'tam'"), 2);

    CHECK(stop_child(&r.fleet, SIGTERM));
    rig_down(&r);
}

/* No broker running: refusals with a reason, the generated config, the
 * node config file, and --help for every new command. */
static void test_offline_commands(void)
{
    struct rig r;
    char out[8192];
    if (rig_init(&r, NULL) < 0) {
        rig_down(&r);
        return;
    }
    /* Where the password file's directory does not exist (a broker this hub
     * does not manage), nodes are registered without credentials. */
    char unmanaged[400];
    snprintf(unmanaged, sizeof unmanaged, "broker_passwd %s/nowhere/passwd", r.b.dir);
    write_conf(&r, unmanaged);
    CHECK_INT(ctl(&r, "node add n0 --household h1 --kind smoke", true, out, sizeof out), 0);
    CHECK(strncmp(out, "# firewatch-node configuration for node n0", 42) == 0);
    CHECK(strstr(out, "no broker credentials") != NULL && strstr(out, "password ") == NULL);
    CHECK(ctl(&r, "node rotate-credentials n0", true, out, sizeof out) != 0);
    CHECK(strstr(out, "run firewatchctl broker config first") != NULL);
    /* Where it can be made, nodes get credentials even before broker config
     * (a script may provision first and start the broker after). */
    write_conf(&r, NULL);
    CHECK_INT(ctl(&r, "--json node add n9 --household h2 --kind smoke", true, out, sizeof out), 0);
    CHECK(strncmp(out, "{\"id\":\"n9\"", 10) == 0 && strstr(out, "\"password\":\"\"") == NULL);
    CHECK(strstr(out, "note:") == NULL); /* --json: no chatter about the broker not running yet */

    CHECK_INT(ctl(&r, "broker config --print", false, out, sizeof out), 0);
    CHECK(strstr(out, "allow_anonymous false") != NULL);
    CHECK(strstr(out, "autosave_on_changes true") != NULL);
    CHECK(strstr(out, "set_tcp_nodelay true") != NULL);
    char conf[320];
    path_in(&r, conf, sizeof conf, "mosquitto.conf");
    CHECK(access(conf, F_OK) != 0); /* --print writes nothing */
    CHECK_INT(ctl(&r, "broker config", false, out, sizeof out), 0);
    CHECK(strstr(out, "mosquitto -c ") != NULL);
    CHECK(strstr(out, "1 node has no broker password yet") != NULL);
    CHECK_INT(ctl(&r, "--json node rotate-credentials n0", false, out, sizeof out), 0);
    CHECK(strstr(out, "\"password\":\"") != NULL);

    /* --out writes the config 0600 and keeps the password off stdout. */
    char file[320];
    path_in(&r, file, sizeof file, "n5.conf");
    char args[512];
    snprintf(args, sizeof args, "node add n5 --household h1 --kind heat --room attic --out %s", file);
    CHECK_INT(ctl(&r, args, false, out, sizeof out), 0);
    CHECK(strstr(out, "password") == NULL && strstr(out, "mode 0600") != NULL);
    CHECK(file_has(file, "password "));
    CHECK(file_has(file, "zone z1"));
    CHECK(file_has(file, "kind heat"));
    char mode[64];
    snprintf(args, sizeof args, "stat -c %%a %s", file);
    CHECK_INT(run_cmd(args, false, mode, sizeof mode), 0);
    CHECK(strncmp(mode, "600", 3) == 0);

    /* The hub's account must be set, and not look like a node. */
    write_conf(&r, "password ");
    CHECK(ctl(&r, "broker config", true, out, sizeof out) != 0);
    CHECK(strstr(out, "password") != NULL);
    write_conf(&r, "username hub");
    CHECK(ctl(&r, "broker config", true, out, sizeof out) != 0);
    CHECK(strstr(out, "must not look like a node id") != NULL);
    write_conf(&r, "broker_hub_listen 0.0.0.0:1884");
    CHECK(ctl(&r, "broker config", true, out, sizeof out) != 0);
    CHECK(strstr(out, "loopback") != NULL);
    write_conf(&r, "broker_tls_port 8883");
    CHECK(ctl(&r, "broker config", true, out, sizeof out) != 0);
    CHECK(strstr(out, "broker tls --name") != NULL);

    static const char *const helps[] = {
        "broker config --help",     "broker tls --help", "node test --help", "node rotate-credentials --help",
        "node decommission --help", "node move --help",  "node tls --help",  "tech --help"};
    for (size_t i = 0; i < sizeof helps / sizeof helps[0]; i++) {
        int rc = ctl(&r, helps[i], true, out, sizeof out);
        th_report(rc == 0 && strstr(out, "usage: firewatchctl") != NULL, "%s", helps[i]);
    }
    rig_down(&r);
}

/* broker tls: a CA and a server certificate; node tls: a client one. */
static void test_tls_files(void)
{
    struct rig r;
    char out[4096];
    if (rig_init(&r, NULL) < 0) {
        rig_down(&r);
        return;
    }
    CHECK(ctl(&r, "broker tls", true, out, sizeof out) != 0);
    CHECK_INT(ctl(&r, "broker tls --name hub.local --name 127.0.0.1", true, out, sizeof out), 0);
    CHECK(strstr(out, "(new)") != NULL);
    CHECK_INT(ctl(&r, "broker tls --name hub.local", true, out, sizeof out), 0);
    CHECK(strstr(out, "(kept)") != NULL);
    char path[400], cmd[1024];
    snprintf(path, sizeof path, "%s/tls/server.crt", r.b.dir);
    CHECK(access(path, F_OK) == 0);
    snprintf(cmd, sizeof cmd, "openssl verify -CAfile %s/tls/ca.crt %s", r.b.dir, path);
    CHECK_INT(run_cmd(cmd, true, out, sizeof out), 0);
    CHECK_INT(ctl(&r, "node add n1 --household h1 --kind smoke", false, out, sizeof out), 0);
    CHECK_INT(ctl(&r, "node tls n1", false, out, sizeof out), 0);
    snprintf(path, sizeof path, "%s/tls/clients/n1.crt", r.b.dir);
    CHECK(access(path, F_OK) == 0);
    /* With TLS on, broker config adds the listener and the node config the CA. */
    write_conf(&r, "broker_tls_port 18883\nnode_broker_url ssl://hub.local:18883");
    CHECK_INT(ctl(&r, "broker config --print", false, out, sizeof out), 0);
    CHECK(strstr(out, "listener 18883 127.0.0.1") != NULL);
    CHECK_INT(ctl(&r, "node add n2 --household h1 --kind smoke", false, out, sizeof out), 0);
    CHECK(strstr(out, "broker ssl://hub.local:18883\n") != NULL);
    CHECK(strstr(out, "cafile /etc/firewatch/ca.crt\n") != NULL);
    rig_down(&r);
}

/* ---- federation: area accounts and the bridge --------------------------- */

struct pubwait {
    const struct rig *r;
    const char *user, *pw, *topic;
    bool want_ok;
};

/* One mosquitto_pub as w->user: true when the outcome is the wanted one
 * (accepted: exit 0 and no refusal; refused: "not authorised" at login or
 * publish). Polled while the broker rereads its files after a SIGHUP. */
static bool pub_outcome(void *arg)
{
    const struct pubwait *w = arg;
    char out[512];
    int rc = mosq_pub(w->r, w->user, w->pw, w->topic, "{\"v\":1}", out, sizeof out);
    bool refused = strstr(out, "uthori") != NULL;
    return w->want_ok ? rc == 0 && !refused : refused;
}

static bool pub_becomes(const struct rig *r, const char *user, const char *pw, const char *topic, bool ok)
{
    struct pubwait w = {r, user, pw, topic, ok};
    return th_wait_until(pub_outcome, &w, 5000);
}

/* The value of "fed_password " in area add's text output. */
static void find_password(const char *out, char *pw, size_t size)
{
    const char *p = strstr(out, "\nfed_password ");
    pw[0] = '\0';
    if (p)
        snprintf(pw, size, "%.*s", (int)strcspn(p + 14, "\n"), p + 14);
}

static const cJSON *area_row(const cJSON *arr, const char *id)
{
    const cJSON *row;
    cJSON_ArrayForEach(row, arr)
    {
        if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(row, "id")), id) == 0)
            return row;
    }
    return NULL;
}

/* area add / list / remove on a regional hub, against the real broker on
 * the file broker config wrote: a new area's password logs in and may
 * publish only under its own subtree; after remove it is refused and the
 * history stays; a removed area can be added again with a new password. */
static void test_areas(void)
{
    struct rig r;
    char out[8192], pw1[PW_MAX], pw2[PW_MAX], pw2b[PW_MAX];
    if (rig_init(&r, "mode regional") < 0) {
        rig_down(&r);
        return;
    }
    if (ctl(&r, "broker config", true, out, sizeof out) != 0 || tb_start_config(&r.b) < 0) {
        th_fail(__FILE__, __LINE__, "broker config / broker start: %s", out);
        rig_down(&r);
        return;
    }
    CHECK_INT(
        ctl(&r, "area add a1 --name 'North ward' --broker region.example.org:1883", false, out, sizeof out),
        0);
    CHECK(strstr(out, "\nhub_id a1\nfederation true\nfed_broker region.example.org:1883\nfed_password ") !=
          NULL);
    CHECK(strstr(out, "\nfed_name North ward\n") != NULL);
    CHECK(strstr(out, "firewatchctl broker config") != NULL && strstr(out, "restart") != NULL);
    find_password(out, pw1, sizeof pw1);
    CHECK_INT(strlen(pw1), 32);

    CHECK_INT(ctl(&r, "--json area add a2", false, out, sizeof out), 0);
    cJSON *o = cJSON_Parse(out);
    char want_broker[64];
    snprintf(want_broker, sizeof want_broker, "127.0.0.1:%d", r.b.port); /* from node_broker_url */
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(o, "area")), "a2");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(o, "user")), "area_a2");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(o, "broker")), want_broker);
    const char *p = cJSON_GetStringValue(cJSON_GetObjectItem(o, "password"));
    snprintf(pw2, sizeof pw2, "%s", p ? p : "");
    CHECK_INT(strlen(pw2), 32);
    CHECK_INT(cJSON_GetArraySize(o), 4);
    cJSON_Delete(o);

    /* The passwords work on the running broker (area add reloaded it), each
     * only under its own subtree. */
    CHECK(pub_becomes(&r, "area_a1", pw1, ROOT "fed/a1/hub", true));
    CHECK(pub_becomes(&r, "area_a2", pw2, ROOT "fed/a2/hub", true));
    CHECK(pub_becomes(&r, "area_a1", pw1, ROOT "fed/a2/hub", false));
    CHECK(pub_becomes(&r, "area_a1", pw1, ROOT "zone/z1/alarm", false));
    CHECK(pub_becomes(&r, "area_a1", pw2, ROOT "fed/a1/hub", false)); /* a2's password is not a1's */
    char acl[320], passwd[320];
    path_in(&r, acl, sizeof acl, "acl");
    path_in(&r, passwd, sizeof passwd, "passwd");
    CHECK(file_has(acl, "user area_a1") && file_has(acl, "topic write firewatch/v1/fed/a2/#"));
    CHECK(file_has(passwd, "area_a1:$7$") && !file_has(passwd, pw1));
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM audit WHERE detail LIKE '%%%s%%' OR detail LIKE '%%%s%%'",
             pw1, pw2);
    CHECK_INT(db_int(&r, sql), 0);
    CHECK_INT(db_int(&r, "SELECT count(*) FROM audit WHERE action = 'area add'"), 2);

    /* Once an area is active its account is taken. */
    CHECK_INT(ctl(&r, "area add a1", true, out, sizeof out), 1);
    CHECK(strstr(out, "already exists") != NULL);
    static const char *const bad[] = {"area add A1", "area add hub",
                                      "area add a-very-long-area-name-over-32-chars",
                                      "area add a3 --broker nohost", "area add a3 --broker 'h:99999'"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        th_report(ctl(&r, bad[i], true, out, sizeof out) == 1, "%s refused: %.*s", bad[i],
                  (int)strcspn(out, "\n"), out);
    CHECK_INT(db_int(&r, "SELECT count(*) FROM areas"), 2);

    /* What the regional hub records shows in area list. */
    CHECK_INT(db_exec(&r, "UPDATE areas SET bridge_online = 1, last_seen_ms = 1700000000000, readiness_doc = "
                          "'{\"v\":1,\"hub\":\"a1\",\"score\":73,\"zones\":[]}' WHERE id = 'a1';"
                          "UPDATE areas SET readiness_doc = 'not json' WHERE id = 'a2';"
                          "INSERT INTO area_incidents(area, id, zone, state, kind, opened_ms, updated_ms) "
                          "VALUES('a1', 1, 'z1', 'alarm', 'fire', 1, 1);"
                          "INSERT INTO area_incidents(area, id, zone, state, kind, opened_ms, closed_ms, "
                          "updated_ms) VALUES('a1', 2, 'z1', 'cleared', 'fire', 1, 5, 5);"),
              0);
    CHECK_INT(ctl(&r, "--json area list", false, out, sizeof out), 0);
    cJSON *arr = cJSON_Parse(out);
    const cJSON *a1 = area_row(arr, "a1"), *a2 = area_row(arr, "a2");
    CHECK_INT(cJSON_GetArraySize(arr), 2);
    CHECK(a1 && a2);
    if (a1 && a2) {
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(a1, "name")), "North ward");
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(a1, "bridge")), "online");
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(a1, "last_heard")), "2023-11-14 22:13:20");
        CHECK_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(a1, "readiness")), 73);
        CHECK_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(a1, "open_incidents")), 1);
        CHECK(cJSON_IsNull(cJSON_GetObjectItem(a1, "removed")));
        CHECK(cJSON_IsString(cJSON_GetObjectItem(a1, "added")));
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(a2, "bridge")), "unknown");
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(a2, "last_heard")), "never");
        CHECK(cJSON_IsNull(cJSON_GetObjectItem(a2, "readiness"))); /* a malformed document reads as none */
        CHECK_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(a2, "open_incidents")), 0);
    }
    cJSON_Delete(arr);
    CHECK_INT(ctl(&r, "areas", false, out, sizeof out), 0); /* the alias lists */
    CHECK(strstr(out, "open_incidents") != NULL && strstr(out, "North ward") != NULL);

    /* Remove: the account goes at once, the rows stay. */
    CHECK_INT(ctl(&r, "area remove a2", false, out, sizeof out), 0);
    CHECK(strstr(out, "area a2 removed") != NULL && strstr(out, "history is kept") != NULL);
    CHECK(pub_becomes(&r, "area_a2", pw2, ROOT "fed/a2/hub", false));
    CHECK(pub_becomes(&r, "area_a1", pw1, ROOT "fed/a1/readiness", true));
    CHECK(!file_has(acl, "user area_a2") && file_has(acl, "user area_a1"));
    CHECK(!file_has(passwd, "area_a2:"));
    CHECK_INT(db_int(&r, "SELECT removed_ms > 0 FROM areas WHERE id = 'a2'"), 1);
    CHECK_INT(ctl(&r, "--json area list", false, out, sizeof out), 0);
    arr = cJSON_Parse(out);
    a2 = area_row(arr, "a2");
    CHECK(a2 && cJSON_IsString(cJSON_GetObjectItem(a2, "removed")));
    CHECK(a2 && strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(a2, "bridge")), "removed") == 0);
    cJSON_Delete(arr);
    CHECK_INT(ctl(&r, "area remove a2", true, out, sizeof out), 1);
    CHECK(strstr(out, "already removed") != NULL);
    CHECK_INT(ctl(&r, "area remove nope", true, out, sizeof out), 1);
    CHECK(strstr(out, "no area nope") != NULL);
    CHECK_INT(ctl(&r, "--json area remove a1", false, out, sizeof out), 0);
    CHECK(strstr(out, "\"area\":\"a1\"") != NULL && strstr(out, "\"credentials_revoked\":true") != NULL);
    CHECK(pub_becomes(&r, "area_a1", pw1, ROOT "fed/a1/hub", false));
    CHECK_INT(db_int(&r, "SELECT count(*) FROM area_incidents WHERE area = 'a1'"), 2);

    /* Added again: a new password; the old one stays refused. */
    CHECK_INT(ctl(&r, "area add a2", false, out, sizeof out), 0);
    CHECK(strstr(out, "added again") != NULL);
    find_password(out, pw2b, sizeof pw2b);
    CHECK(strlen(pw2b) == 32 && strcmp(pw2b, pw2) != 0);
    CHECK(pub_becomes(&r, "area_a2", pw2b, ROOT "fed/a2/hub", true));
    CHECK(pub_becomes(&r, "area_a2", pw2, ROOT "fed/a2/hub", false));
    CHECK_INT(db_int(&r, "SELECT removed_ms FROM areas WHERE id = 'a2'"), 0);
    CHECK_INT(db_int(&r, "SELECT count(*) FROM audit WHERE action = 'area remove'"), 2);
    rig_down(&r);
}

/* On an area hub: federation bridge and broker config with fed_broker, the
 * hub's ACL extras, and the refusals that say what is missing. The written
 * configuration, bridge and all, starts a real Mosquitto. */
static void test_federation_config(void)
{
    struct rig r;
    char out[16384];
    if (rig_init(&r, NULL) < 0) {
        rig_down(&r);
        return;
    }
    CHECK_INT(ctl(&r, "area add a1", true, out, sizeof out), 1);
    CHECK(strstr(out, "regional") != NULL);
    CHECK_INT(ctl(&r, "federation bridge", true, out, sizeof out), 1);
    CHECK(strstr(out, "federation is false") != NULL);
    write_conf(&r, "federation true");
    CHECK_INT(ctl(&r, "federation bridge", true, out, sizeof out), 1);
    CHECK(strstr(out, "fed_broker is empty") != NULL);
    write_conf(&r, "federation true\nfed_broker region.example.org:1883\nfed_password Pw-123");
    CHECK_INT(ctl(&r, "federation bridge", true, out, sizeof out), 1);
    CHECK(strstr(out, "every area needs its own hub_id") != NULL);
    CHECK_INT(ctl(&r, "broker config --print", true, out, sizeof out), 1);
    write_conf(&r, "mode regional");
    CHECK_INT(ctl(&r, "federation bridge", true, out, sizeof out), 1);
    CHECK(strstr(out, "regional hub") != NULL);

    int fed_port = tb_free_port(); /* nothing listens: the bridge just retries */
    char conf[512];
    snprintf(conf, sizeof conf,
             "hub_id north\nfederation true\nfed_broker 127.0.0.1:%d\nfed_password Pw-123\nha_discovery true",
             fed_port);
    write_conf(&r, conf);
    CHECK_INT(ctl(&r, "federation bridge", false, out, sizeof out), 0);
    CHECK(strstr(out, "connection firewatch-fed-north\n") != NULL);
    CHECK(strstr(out, "remote_username area_north\n") != NULL);
    CHECK(strstr(out, "remote_password Pw-123\n") != NULL);
    CHECK(strstr(out, "\nlistener ") == NULL &&
          strstr(out, "\npassword_file") == NULL); /* the section alone */
    CHECK_INT(ctl(&r, "broker config --print", true, out, sizeof out), 0);
    CHECK(strstr(out, "connection firewatch-fed-north\n") != NULL && strstr(out, "Pw-123") == NULL);
    CHECK_INT(ctl(&r, "broker config", true, out, sizeof out), 0);
    CHECK(strstr(out, "bridge firewatch-fed-north") != NULL && strstr(out, "mode 0600") != NULL);
    CHECK(strstr(out, "Pw-123") == NULL);
    char path[320], cmd[512], mode[32];
    path_in(&r, path, sizeof path, "mosquitto.conf");
    CHECK(file_has(path, "remote_password Pw-123"));
    snprintf(cmd, sizeof cmd, "stat -c %%a %s", path);
    CHECK_INT(run_cmd(cmd, false, mode, sizeof mode), 0);
    CHECK(strncmp(mode, "600", 3) == 0);
    path_in(&r, path, sizeof path, "acl");
    CHECK(file_has(path, "topic write firewatch/v1/fed/north/#"));
    CHECK(file_has(path, "topic write homeassistant/#"));
    path_in(&r, path, sizeof path, "mosquitto.log");
    th_report(tb_start_config(&r.b) == 0, "mosquitto starts with the bridge section");
    char db_sql[128];
    snprintf(db_sql, sizeof db_sql, "SELECT count(*) FROM audit WHERE detail LIKE '%%Pw-123%%'");
    CHECK_INT(db_int(&r, db_sql), 0);

    static const char *const helps[] = {"area add --help", "area list --help", "area remove --help",
                                        "federation bridge --help"};
    for (size_t i = 0; i < sizeof helps / sizeof helps[0]; i++) {
        int rc = ctl(&r, helps[i], true, out, sizeof out);
        th_report(rc == 0 && strstr(out, "usage: firewatchctl") != NULL, "%s", helps[i]);
    }
    CHECK_INT(ctl(&r, "--help", false, out, sizeof out), 0);
    CHECK(strstr(out, "firewatchctl area add AREA") != NULL &&
          strstr(out, "firewatchctl federation bridge") != NULL);
    rig_down(&r);
}

/* A node heard a moment after node add, before the hub's once-a-second
 * topology poll, is not an unknown node: its first alarm opens an
 * incident. */
static void test_alarm_right_after_add(void)
{
    struct rig r;
    char out[2048], pw[PW_MAX] = "";
    if (rig_up(&r) < 0) {
        rig_down(&r);
        return;
    }
    CHECK_INT(ctl(&r, "--json node add n7 --household h1 --kind heat", false, out, sizeof out), 0);
    CHECK_INT(json_password(out, pw, sizeof pw), 0);
    /* The broker rereads its password file on the reload node add sent:
     * retry the login until it takes (each try is a fresh connection). */
    int64_t deadline = th_now_ms() + 5000;
    int rc;
    while ((rc = mosq_pub(&r, "n7", pw, ROOT "node/n7/event", ALARM, out, sizeof out)) != 0 &&
           th_now_ms() < deadline)
        ;
    CHECK_INT(rc, 0);
    CHECK(wait_db(&r, "SELECT count(*) FROM incidents WHERE origin_node = 'n7'", 1, 5000));
    CHECK(!file_has(r.log, "unknown node n7"));
    rig_down(&r);
}

/* firewatchctl run as root before the hub's first start creates the
 * database: it must belong to the state directory's owner (the hub's
 * account), or the hub finds it read-only. */
static void test_database_owner(void)
{
    if (geteuid() != 0) {
        th_report(true, "a database made by root belongs to its directory's owner # SKIP not root");
        return;
    }
    char dir[256], conf[320], cmd[2400], out[256];
    snprintf(dir, sizeof dir, "%s", th_tmpdir("dbowner"));
    snprintf(conf, sizeof conf, "%s/hub.conf", dir);
    snprintf(
        cmd, sizeof cmd,
        "mkdir -p %s/state && chown nobody:nogroup %s/state && printf 'database %s/state/hub.db\n' > %s && "
        "%s -c %s site add s1 </dev/null >/dev/null 2>&1 && stat -c %%U %s/state/hub.db",
        dir, dir, dir, conf, th_bin_path("firewatchctl"), conf, dir);
    int rc = run_cmd(cmd, false, out, sizeof out);
    out[strcspn(out, "\n")] = '\0';
    th_report(rc == 0 && strcmp(out, "nobody") == 0,
              "a database made by root belongs to its directory's owner (owner: %s)", out);
    th_rmtree(dir);
}

TH_MAIN(TH_TEST(test_offline_commands), TH_TEST(test_database_owner), TH_TEST(test_alarm_right_after_add),
        TH_TEST(test_tls_files), TH_TEST(test_node_confined_to_its_topics),
        TH_TEST(test_rotate_and_decommission), TH_TEST(test_move_follows_zone),
        TH_TEST(test_unknown_and_retired_senders), TH_TEST(test_commissioning), TH_TEST(test_areas),
        TH_TEST(test_federation_config))
