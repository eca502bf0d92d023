/*
 * hubrig.c - see hubrig.h.
 */
#include "hubrig.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

int hr_sh(const char *cmd, char *out, size_t size)
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

/* Writes base with every line whose key extra also sets left out, then extra. */
static int write_conf(const char *path, const char *base, const char *extra)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    for (const char *line = base; *line;) {
        size_t n = strcspn(line, "\n"), klen = strcspn(line, " \n");
        bool replaced = false;
        for (const char *e = extra ? extra : ""; *e && klen;
             e += strcspn(e, "\n") + (e[strcspn(e, "\n")] == '\n'))
            replaced = replaced || (strncmp(e, line, klen) == 0 &&
                                    (e[klen] == ' ' || e[klen] == '\n' || e[klen] == '\0'));
        if (!replaced)
            fprintf(f, "%.*s\n", (int)n, line);
        line += n + (line[n] == '\n');
    }
    fprintf(f, "%s\n", extra ? extra : "");
    return fclose(f) == 0 ? 0 : -EIO;
}

int hr_init(struct hubrig *r, const char *extra_conf)
{
    memset(r, 0, sizeof *r);
    r->hub = -1;
    if (tb_init(&r->b) < 0)
        return -1;
    do
        r->hub_port = tb_free_port();
    while (r->hub_port == r->b.port);
    snprintf(r->conf, sizeof r->conf, "%s/hub.conf", r->b.dir);
    snprintf(r->db, sizeof r->db, "%s/hub.db", r->b.dir);
    snprintf(r->log, sizeof r->log, "%s/hub.log", r->b.dir);
    unsigned char rnd[12];
    char pw[32] = "";
    if (getrandom(rnd, sizeof rnd, 0) == (ssize_t)sizeof rnd)
        for (size_t i = 0; i < sizeof rnd; i++)
            snprintf(pw + 2 * i, 3, "%02x", rnd[i]);
    const char *d = r->b.dir;
    char base[4096];
    snprintf(base, sizeof base,
             "broker tcp://127.0.0.1:%d\ndatabase %s\nusername firewatch_hub\npassword hub-%s\n"
             "verify_s 2\nbatch_ms 20\nkeepalive_s 10\ndb_sync_full false\n"
             "http_listen 127.0.0.1:0\nhttp_web_root %s\nhttp_lang en\n"
             "broker_conf %s/mosquitto.conf\nbroker_passwd %s/passwd\nbroker_acl %s/acl\n"
             "broker_pid %s/mosquitto.pid\nbroker_persistence %s\nbroker_user %s\n"
             "broker_listen 127.0.0.1:%d\nbroker_hub_listen 127.0.0.1:%d\nbroker_tls_dir %s/tls\n"
             "node_broker_url tcp://127.0.0.1:%d",
             r->hub_port, r->db, pw, th_root_path("hub/web"), d, d, d, d, d, geteuid() == 0 ? "root" : "",
             r->b.port, r->hub_port, d, r->b.port);
    if (write_conf(r->conf, base, extra_conf) < 0) {
        th_fail(__FILE__, __LINE__, "cannot write %s", r->conf);
        return -1;
    }
    return 0;
}

int hr_ctl(const struct hubrig *r, const char *input, const char *args, char *out, size_t size)
{
    char cmd[2048], sink[256];
    snprintf(cmd, sizeof cmd, "%s%s%s%s -c %s %s 2>&1 %s", input ? "printf '" : "", input ? input : "",
             input ? "' | " : "", th_bin_path("firewatchctl"), r->conf, args, input ? "" : "</dev/null");
    return hr_sh(cmd, out ? out : sink, out ? size : sizeof sink);
}

int hr_broker_up(struct hubrig *r)
{
    char out[4096];
    if (hr_ctl(r, NULL, "broker config", out, sizeof out) != 0) {
        th_fail(__FILE__, __LINE__, "broker config: %s", out);
        return -1;
    }
    if (tb_start_config(&r->b) < 0) {
        th_fail(__FILE__, __LINE__, "mosquitto does not start with the generated config");
        return -1;
    }
    return 0;
}

/* Lines of the log from offset from that contain needle. */
static int log_has(const char *path, long from, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    fseek(f, from, SEEK_SET);
    char line[2048];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

/* The HTTP port from the hub's log ("http: serving on ... (port N)"), and
 * its first connection to the broker. */
static bool serving(void *arg)
{
    struct hubrig *r = arg;
    FILE *f = fopen(r->log, "r");
    if (!f)
        return false;
    fseek(f, r->log_from, SEEK_SET);
    char line[2048];
    while (fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "(port ");
        if (p && strstr(line, "http: serving on"))
            r->http_port = (int)strtol(p + 6, NULL, 10);
    }
    fclose(f);
    return r->http_port > 0 && log_has(r->log, r->log_from, "connected to") > 0;
}

int hr_hub_start(struct hubrig *r)
{
    pid_t parent = getpid();
    r->http_port = 0;
    struct stat st;
    r->log_from = stat(r->log, &st) == 0 ? (long)st.st_size : 0;
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
    if (pid < 0)
        return -1;
    r->hub = pid;
    if (!th_wait_until(serving, r, 15000)) {
        th_fail(__FILE__, __LINE__, "the hub (%s) did not serve HTTP and connect", r->conf);
        return -1;
    }
    return 0;
}

bool hr_hub_stop(struct hubrig *r, int sig)
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

/* Copies the string member key of a flat JSON text (enough for the login). */
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

int hr_login(struct hubrig *r, const char *user, const char *role, const char *password)
{
    char args[256], input[256], out[1024], body[512];
    snprintf(args, sizeof args, "user add %s --role %s", user, role ? role : "");
    snprintf(input, sizeof input, "%s\\n", password);
    if (role && hr_ctl(r, input, args, out, sizeof out) != 0) {
        th_fail(__FILE__, __LINE__, "user add %s: %s", user, out);
        return -1;
    }
    snprintf(body, sizeof body, "{\"user\":\"%s\",\"password\":\"%s\"}", user, password);
    struct hc_response res;
    if (hc_request(r->http_port, "POST", "/api/v1/session", NULL, body, strlen(body), &res) != 0 ||
        res.status != 200) {
        th_fail(__FILE__, __LINE__, "login as %s: HTTP %d", user, res.status);
        hc_free(&res);
        return -1;
    }
    char set[512] = "";
    hc_header(&res, "Set-Cookie", set, sizeof set);
    const char *v = strstr(set, "fw_session=");
    if (v)
        snprintf(r->cookie, sizeof r->cookie, "%.*s", (int)strcspn(v + 11, ";"), v + 11);
    json_str(res.body, "csrf", r->csrf, sizeof r->csrf);
    hc_free(&res);
    return r->cookie[0] && r->csrf[0] ? 0 : -1;
}

int hr_req(struct hubrig *r, const char *method, const char *path, const char *body, struct hc_response *out)
{
    char hdr[512];
    bool change = strcmp(method, "GET") != 0;
    snprintf(hdr, sizeof hdr, "Cookie: fw_session=%s\r\n%s%s%s", r->cookie, change ? "X-CSRF-Token: " : "",
             change ? r->csrf : "", change ? "\r\n" : "");
    return hc_request(r->http_port, method, path, hdr, body, body ? strlen(body) : 0, out);
}

struct apiwait {
    struct hubrig *r;
    const char *path, *needle;
};

static bool api_has(void *arg)
{
    struct apiwait *w = arg;
    struct hc_response res;
    if (hr_req(w->r, "GET", w->path, NULL, &res) != 0)
        return false;
    bool ok = res.status == 200 && res.body && strstr(res.body, w->needle) != NULL;
    hc_free(&res);
    return ok;
}

bool hr_wait_api(struct hubrig *r, const char *path, const char *needle, int ms)
{
    struct apiwait w = {r, path, needle};
    return th_wait_until(api_has, &w, ms);
}

struct logwait {
    struct hubrig *r;
    const char *needle;
};

static bool log_cond(void *arg)
{
    struct logwait *w = arg;
    return log_has(w->r->log, w->r->log_from, w->needle) > 0;
}

bool hr_wait_log(struct hubrig *r, const char *needle, int ms)
{
    struct logwait w = {r, needle};
    return th_wait_until(log_cond, &w, ms);
}

static void tail(const char *path, const char *who)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "tail -n 30 '%s' 2>/dev/null | sed 's/^/#   %s: /'", path, who);
    if (system(cmd) != 0)
        printf("#   (no %s log)\n", who);
}

void hr_down(struct hubrig *r, const char *name)
{
    hr_hub_stop(r, SIGKILL);
    if (!r->b.dir[0])
        return;
    if (th_failures() > 0) {
        char who[64], path[320];
        snprintf(who, sizeof who, "%s hub", name);
        tail(r->log, who);
        snprintf(who, sizeof who, "%s broker", name);
        snprintf(path, sizeof path, "%s/mosquitto.stderr", r->b.dir);
        tail(path, who);
    }
    tb_stop(&r->b);
}
