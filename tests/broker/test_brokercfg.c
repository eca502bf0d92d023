/*
 * test_brokercfg.c - brokercfg without a running broker: passwords and their
 * Mosquitto-compatible hashes (checked against openssl's PBKDF2 and against
 * mosquitto_passwd), the password file, the ACL (with the hub's extra grants
 * and the regional broker's area accounts) and configuration text (with the
 * federation bridge section), the
 * reload's refusal to signal anything but a mosquitto, and the TLS files
 * (checked with openssl verify).
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "brokercfg.h"
#include "harness.h"

/* Runs a shell command and returns its output (up to size bytes) in out. */
static int run_capture(const char *cmd, char *out, size_t size)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t used = fread(out, 1, size - 1, p);
    out[used] = '\0';
    return pclose(p);
}

/* Reads a whole (small) file into buf; returns its length or -1. */
static long slurp(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    fclose(f);
    return (long)n;
}

static int file_mode(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
}

static int count_lines_starting(const char *text, const char *prefix)
{
    int n = 0;
    size_t plen = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, prefix, plen) == 0)
            n++;
    return n;
}

static bool has_line(const char *text, const char *line)
{
    size_t len = strlen(line);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, line, len) == 0 && (p[len] == '\n' || p[len] == '\0'))
            return true;
    return false;
}

static void test_password_generate(void)
{
    char a[BROKERCFG_PASSWORD_SIZE], b[BROKERCFG_PASSWORD_SIZE], small[8];
    CHECK_INT(brokercfg_password_generate(a, sizeof a), 0);
    CHECK_INT(brokercfg_password_generate(b, sizeof b), 0);
    CHECK_INT(strlen(a), BROKERCFG_PASSWORD_LEN);
    CHECK(BROKERCFG_PASSWORD_LEN * 6 >= 128);
    CHECK_INT(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
              BROKERCFG_PASSWORD_LEN);
    CHECK(strcmp(a, b) != 0);
    CHECK_INT(brokercfg_password_generate(small, sizeof small), -ENOSPC);

    /* Every symbol of the alphabet turns up over many passwords: no lost bits. */
    int seen[128] = {0}, distinct = 0;
    for (int i = 0; i < 200; i++) {
        CHECK_INT(brokercfg_password_generate(a, sizeof a), 0);
        for (const char *p = a; *p; p++)
            seen[(unsigned char)*p & 127] = 1;
    }
    for (int i = 0; i < 128; i++)
        distinct += seen[i];
    CHECK_INT(distinct, 64);
}

static void test_hash_format_and_verify(void)
{
    char h1[BROKERCFG_HASH_SIZE], h2[BROKERCFG_HASH_SIZE];
    CHECK_INT(brokercfg_password_hash("correct horse", h1, sizeof h1), 0);
    CHECK_INT(brokercfg_password_hash("correct horse", h2, sizeof h2), 0);
    CHECK(strncmp(h1, "$7$101$", 7) == 0);
    CHECK(strcmp(h1, h2) != 0); /* fresh salt each time */
    /* $7$101$ + 16 base64 salt chars + $ + 88 base64 hash chars */
    CHECK_INT(strlen(h1), 7 + 16 + 1 + 88);
    CHECK_INT(brokercfg_password_verify(h1, "correct horse"), 0);
    CHECK_INT(brokercfg_password_verify(h2, "correct horse"), 0);
    CHECK_INT(brokercfg_password_verify(h1, "correct horsf"), -EACCES);
    CHECK_INT(brokercfg_password_verify(h1, ""), -EACCES);
    CHECK_INT(brokercfg_password_verify("$6$abc$def", "x"), -EINVAL);
    CHECK_INT(brokercfg_password_verify("$7$0$AAAA$AAAA", "x"), -EINVAL);
    CHECK_INT(brokercfg_password_verify("$7$101$!!$AAAA", "x"), -EINVAL);
    CHECK_INT(brokercfg_password_verify("$7$101$AAAAAAAAAAAAAAAA", "x"), -EINVAL);
    CHECK_INT(brokercfg_password_hash("", h1, sizeof h1), -EINVAL);
    CHECK_INT(brokercfg_password_hash("x", h1, 20), -ENOSPC);
    char big[BROKERCFG_PASSWORD_MAX + 2];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK_INT(brokercfg_password_hash(big, h1, sizeof h1), -EINVAL);
}

/* Our PBKDF2 against OpenSSL's: a known salt and iteration count, the
 * derived key from `openssl kdf` re-encoded as a $7$ hash must verify. */
static void test_pbkdf2_matches_openssl(void)
{
    static const struct {
        const char *password;
        const char *salt_hex;
        int iterations;
    } rows[] = {
        {"password", "73616c74", 1},
        {"password", "73616c74", 2},
        {"x4Ab-_9zQ", "000102030405060708090a0b", 101},
        {"a much longer password that is more than one hundred and twenty-eight bytes long, which is the "
         "SHA-512 block size, so HMAC hashes it first",
         "ffeeddccbbaa99887766554433221100", 1000},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char cmd[768], out[512];
        snprintf(cmd, sizeof cmd,
                 "openssl kdf -keylen 64 -kdfopt digest:SHA512 -kdfopt 'pass:%s' -kdfopt hexsalt:%s "
                 "-kdfopt iter:%d -binary PBKDF2 | base64 -w0",
                 rows[i].password, rows[i].salt_hex, rows[i].iterations);
        int rc = run_capture(cmd, out, sizeof out);
        if (!th_report(rc == 0 && strlen(out) == 88, "openssl kdf row %zu", i))
            continue;
        unsigned char salt[32];
        size_t salt_len = 0;
        char salt64[64];
        CHECK_INT(sodium_hex2bin(salt, sizeof salt, rows[i].salt_hex, strlen(rows[i].salt_hex), NULL,
                                 &salt_len, NULL),
                  0);
        sodium_bin2base64(salt64, sizeof salt64, salt, salt_len, sodium_base64_VARIANT_ORIGINAL);
        char hash[1024];
        snprintf(hash, sizeof hash, "$7$%d$%s$%s", rows[i].iterations, salt64, out);
        th_report(brokercfg_password_verify(hash, rows[i].password) == 0, "pbkdf2 row %zu matches openssl",
                  i);
        th_report(brokercfg_password_verify(hash, "wrong") == -EACCES, "pbkdf2 row %zu rejects wrong", i);
    }
}

/* A line written by mosquitto_passwd verifies with our code, and the broker
 * accepting our lines is shown by test_acl. */
static void test_reads_mosquitto_passwd_hashes(void)
{
    const char *dir = th_tmpdir("bcfg-mp");
    char path[512], cmd[1200], line[512];
    snprintf(path, sizeof path, "%s/pw", dir);
    /* The password goes on stdin, twice (mosquitto_passwd asks to confirm it). */
    snprintf(cmd, sizeof cmd,
             "touch %s && printf 'Secr3t-pw\\nSecr3t-pw\\n' | mosquitto_passwd %s node-1 >/dev/null 2>&1",
             path, path);
    CHECK_INT(system(cmd), 0);
    CHECK(slurp(path, line, sizeof line) > 0);
    CHECK(strncmp(line, "node-1:$7$", 10) == 0);
    CHECK_INT(brokercfg_passwd_check(path, "node-1", "Secr3t-pw"), 0);
    CHECK_INT(brokercfg_passwd_check(path, "node-1", "Secr3t-px"), -EACCES);
    CHECK_INT(brokercfg_passwd_check(path, "node-2", "Secr3t-pw"), -ENOENT);
    th_rmtree(dir);
}

static void test_passwd_file(void)
{
    const char *dir = th_tmpdir("bcfg-pw");
    char path[512], text[4096];
    snprintf(path, sizeof path, "%s/passwd", dir);

    CHECK_INT(brokercfg_passwd_remove(path, "nobody"), -ENOENT);
    CHECK_INT(brokercfg_passwd_set(path, "firewatch_hub", "hub-pass"), 0);
    CHECK_INT(file_mode(path), 0600);
    CHECK_INT(brokercfg_passwd_set(path, "n1", "pass-1"), 0);
    CHECK_INT(brokercfg_passwd_set(path, "n2", "pass-2"), 0);
    CHECK(slurp(path, text, sizeof text) > 0);
    CHECK_INT(count_lines_starting(text, "firewatch_hub:$7$101$"), 1);
    CHECK_INT(count_lines_starting(text, "n1:$7$101$"), 1);
    CHECK_INT(count_lines_starting(text, "n2:$7$101$"), 1);
    CHECK(strstr(text, "pass-") == NULL); /* never the password itself */

    CHECK_INT(brokercfg_passwd_check(path, "n1", "pass-1"), 0);
    CHECK_INT(brokercfg_passwd_check(path, "n2", "pass-1"), -EACCES);

    /* Replace keeps the order and the other lines. */
    CHECK_INT(brokercfg_passwd_set(path, "n1", "pass-1b"), 0);
    CHECK_INT(brokercfg_passwd_check(path, "n1", "pass-1b"), 0);
    CHECK_INT(brokercfg_passwd_check(path, "n1", "pass-1"), -EACCES);
    CHECK_INT(brokercfg_passwd_check(path, "n2", "pass-2"), 0);
    CHECK(slurp(path, text, sizeof text) > 0);
    CHECK_INT(count_lines_starting(text, "n1:"), 1);
    CHECK(strstr(text, "firewatch_hub:") < strstr(text, "n1:") && strstr(text, "n1:") < strstr(text, "n2:"));

    /* A user whose name is a prefix of another is a different user. */
    CHECK_INT(brokercfg_passwd_set(path, "n", "short"), 0);
    CHECK_INT(brokercfg_passwd_remove(path, "n"), 0);
    CHECK_INT(brokercfg_passwd_check(path, "n1", "pass-1b"), 0);

    CHECK_INT(brokercfg_passwd_remove(path, "n1"), 0);
    CHECK_INT(brokercfg_passwd_check(path, "n1", "pass-1b"), -ENOENT);
    CHECK_INT(brokercfg_passwd_remove(path, "n1"), -ENOENT);
    CHECK_INT(brokercfg_passwd_check(path, "n2", "pass-2"), 0);
    CHECK_INT(file_mode(path), 0600);

    /* Bad names and passwords never reach the file. */
    CHECK_INT(brokercfg_passwd_set(path, "a:b", "x"), -EINVAL);
    CHECK_INT(brokercfg_passwd_set(path, "a b", "x"), -EINVAL);
    CHECK_INT(brokercfg_passwd_set(path, "", "x"), -EINVAL);
    CHECK_INT(brokercfg_passwd_set(path, "ok", ""), -EINVAL);
    CHECK(!brokercfg_user_valid("n1\n"));
    CHECK(brokercfg_user_valid("firewatch_hub"));

    /* No temporary files are left behind. */
    char cmd[600], out[256];
    snprintf(cmd, sizeof cmd, "ls -A %s", dir);
    CHECK_INT(run_capture(cmd, out, sizeof out), 0);
    CHECK_STR(out, "passwd\npasswd.lock\n");
    th_rmtree(dir);
}

/* Writers racing on the same file lose nothing: the lock serialises them. */
static void test_passwd_concurrent_writers(void)
{
    const char *dir = th_tmpdir("bcfg-race");
    char path[512];
    snprintf(path, sizeof path, "%s/passwd", dir);
    enum { KIDS = 4, EACH = 10 };
    pid_t kids[KIDS];
    for (int k = 0; k < KIDS; k++) {
        kids[k] = fork();
        if (kids[k] == 0) {
            int bad = 0;
            for (int i = 0; i < EACH; i++) {
                char user[32];
                snprintf(user, sizeof user, "k%d-u%d", k, i);
                bad |= brokercfg_passwd_set(path, user, user) != 0;
            }
            _exit(bad);
        }
    }
    for (int k = 0; k < KIDS; k++) {
        int st = -1;
        waitpid(kids[k], &st, 0);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    int ok = 0;
    for (int k = 0; k < KIDS; k++)
        for (int i = 0; i < EACH; i++) {
            char user[32];
            snprintf(user, sizeof user, "k%d-u%d", k, i);
            ok += brokercfg_passwd_check(path, user, user) == 0;
        }
    CHECK_INT(ok, KIDS * EACH);
    th_rmtree(dir);
}

static void test_acl_text(void)
{
    const struct brokercfg_node nodes[] = {{"n1", "z1"}, {"n2", "z2"}};
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK_INT(brokercfg_acl_print(f, "firewatch_hub", nodes, 2), 0);
    fclose(f);
    CHECK(has_line(text, "user firewatch_hub"));
    CHECK(has_line(text, "topic read firewatch/v1/#"));
    CHECK(has_line(text, "topic write firewatch/v1/zone/+/alarm"));
    CHECK(has_line(text, "topic write firewatch/v1/node/+/cmd"));
    CHECK(has_line(text, "topic write firewatch/v1/hub/status"));
    CHECK(has_line(text, "user n1"));
    CHECK(has_line(text, "topic write firewatch/v1/node/n1/status"));
    CHECK(has_line(text, "topic write firewatch/v1/node/n1/reading"));
    CHECK(has_line(text, "topic write firewatch/v1/node/n1/event"));
    CHECK(has_line(text, "topic read firewatch/v1/node/n1/cmd"));
    CHECK(has_line(text, "topic read firewatch/v1/zone/z1/alarm"));
    CHECK(has_line(text, "topic read firewatch/v1/zone/z2/alarm"));
    CHECK_INT(count_lines_starting(text, "pattern"), 0);
    CHECK_INT(count_lines_starting(text, "topic readwrite"), 0);
    CHECK_INT(count_lines_starting(text, "user "), 3);
    CHECK_INT(count_lines_starting(text, "topic "), 4 + 2 * 5);
    free(text);

    /* Refusals: bad ids, a hub name that could be a node id, a node named like the hub. */
    static const struct {
        const char *hub, *id, *zone;
        int want;
    } rows[] = {
        {"firewatch_hub", "n1", "z1", 0},
        {"firewatch_hub", "N1", "z1", -EINVAL},
        {"firewatch_hub", "n1", "z/1", -EINVAL},
        {"firewatch_hub", "n1", "#", -EINVAL},
        {"firewatch_hub", "n1", "", -EINVAL},
        {"firewatch_hub", "-n1", "z1", -EINVAL},
        {"hub", "n1", "z1", -EINVAL},
        {"firewatch hub", "n1", "z1", -EINVAL},
        {"firewatch_hub", "firewatch_hub", "z1", -EINVAL},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct brokercfg_node n = {rows[i].id, rows[i].zone};
        FILE *null = fopen("/dev/null", "w");
        int rc = brokercfg_acl_print(null, rows[i].hub, &n, 1);
        fclose(null);
        th_report(rc == rows[i].want, "acl hub=%s id=%s zone=%s -> %d", rows[i].hub, rows[i].id, rows[i].zone,
                  rc);
    }

    const char *dir = th_tmpdir("bcfg-acl");
    char path[512];
    snprintf(path, sizeof path, "%s/acl", dir);
    CHECK_INT(brokercfg_acl_write(path, "firewatch_hub", nodes, 2), 0);
    CHECK_INT(file_mode(path), 0600);
    struct brokercfg_node bad = {"n1", "Z"};
    CHECK_INT(brokercfg_acl_write(path, "firewatch_hub", &bad, 1), -EINVAL);
    char text2[4096];
    CHECK(slurp(path, text2, sizeof text2) > 0);
    CHECK(has_line(text2, "user n2")); /* the failed write left the old file */
    th_rmtree(dir);
}

static void base_options(struct brokercfg_options *o)
{
    brokercfg_options_init(o);
    o->password_file = "/etc/firewatch/broker/passwd";
    o->acl_file = "/etc/firewatch/broker/acl";
    o->persistence_dir = "/var/lib/firewatch/broker";
    o->pid_file = "/run/firewatch/broker.pid";
}

/* Mosquitto applies listener options to the listener above them, and one
 * given before the first listener opens a default listener on 1883. So: no
 * listener option before the first "listener" line, and one
 * use_username_as_clientid per listener. */
static void check_listener_scope(const char *text, int listeners)
{
    static const char *const scoped[] = {"use_username_as_clientid",
                                         "max_connections",
                                         "max_qos",
                                         "mount_point",
                                         "protocol",
                                         "socket_domain",
                                         "bind_interface",
                                         "bind_address",
                                         "port",
                                         "cafile",
                                         "certfile",
                                         "keyfile",
                                         "require_certificate",
                                         "tls_version",
                                         "use_identity_as_username"};
    const char *first = strstr(text, "\nlistener ");
    CHECK(first != NULL);
    for (const char *p = text; first && p < first; p = strchr(p, '\n') + 1) {
        for (size_t i = 0; i < sizeof scoped / sizeof scoped[0]; i++) {
            size_t len = strlen(scoped[i]);
            if (strncmp(p, scoped[i], len) == 0 && p[len] == ' ')
                th_fail(__FILE__, __LINE__, "listener option %s before the first listener", scoped[i]);
        }
    }
    CHECK_INT(count_lines_starting(text, "listener "), listeners);
    CHECK_INT(count_lines_starting(text, "use_username_as_clientid true"), listeners);
}

static void test_config_text(void)
{
    struct brokercfg_options o;
    base_options(&o);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK_INT(brokercfg_config_print(&o, f), 0);
    fclose(f);
    static const char *const want[] = {
        "user mosquitto",
        "per_listener_settings false",
        "allow_anonymous false",
        "password_file /etc/firewatch/broker/passwd",
        "acl_file /etc/firewatch/broker/acl",
        "persistence true",
        "persistence_location /var/lib/firewatch/broker/",
        "autosave_on_changes true",
        "autosave_interval 1",
        "max_queued_messages 144000",
        "set_tcp_nodelay true",
        "max_packet_size 16384",
        "pid_file /run/firewatch/broker.pid",
        "log_dest stderr",
        "listener 1883",
        "listener 1884 127.0.0.1",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        th_report(has_line(text, want[i]), "config has \"%s\"", want[i]);
    CHECK(strstr(text, "cafile") == NULL);
    check_listener_scope(text, 2);

    /* Every setting line is preceded by a comment line. */
    int uncommented = 0;
    const char *prev = NULL;
    for (const char *p = text; *p; p = strchr(p, '\n') + 1) {
        if (*p != '#' && *p != '\n' && (!prev || *prev != '#'))
            uncommented++;
        prev = p;
        if (!strchr(p, '\n'))
            break;
    }
    CHECK_INT(uncommented, 0);
    free(text);

    /* TLS listener. */
    base_options(&o);
    o.node_address = "192.168.1.10";
    o.tls_port = 8883;
    o.tls_cafile = "/etc/firewatch/tls/ca.crt";
    o.tls_certfile = "/etc/firewatch/tls/server.crt";
    o.tls_keyfile = "/etc/firewatch/tls/server.key";
    o.tls_require_certificate = true;
    o.max_queued_messages = 5000;
    text = NULL;
    f = open_memstream(&text, &len);
    CHECK_INT(brokercfg_config_print(&o, f), 0);
    fclose(f);
    CHECK(has_line(text, "listener 1883 192.168.1.10"));
    CHECK(has_line(text, "listener 8883"));
    CHECK(has_line(text, "cafile /etc/firewatch/tls/ca.crt"));
    CHECK(has_line(text, "certfile /etc/firewatch/tls/server.crt"));
    CHECK(has_line(text, "keyfile /etc/firewatch/tls/server.key"));
    CHECK(has_line(text, "require_certificate true"));
    CHECK(has_line(text, "tls_version tlsv1.2"));
    CHECK(has_line(text, "max_queued_messages 5000"));
    check_listener_scope(text, 3);
    free(text);
}

static void test_config_refusals(void)
{
    static const struct {
        const char *what;
        int field;
    } rows[] = {
        {"relative password file", 0}, {"newline in acl path", 1}, {"space in persistence dir", 2},
        {"hub port clashes", 3},       {"port out of range", 4},   {"tls without files", 5},
        {"no node listener", 6},       {"bad address", 7},         {"tiny max_packet_size", 8},
    };
    FILE *null = fopen("/dev/null", "w");
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct brokercfg_options o;
        base_options(&o);
        switch (rows[i].field) {
        case 0: o.password_file = "passwd"; break;
        case 1: o.acl_file = "/etc/acl\nallow_anonymous true"; break;
        case 2: o.persistence_dir = "/var/lib/fire watch"; break;
        case 3: o.hub_port = 1883; break;
        case 4: o.node_port = 70000; break;
        case 5: o.tls_port = 8883; break;
        case 6: o.node_port = 0; break;
        case 7: o.node_address = "1.2.3.4 5"; break;
        case 8: o.max_packet_size = 100; break;
        }
        th_report(brokercfg_config_print(&o, null) == -EINVAL, "config refuses %s", rows[i].what);
    }
    fclose(null);
    /* A node listener on another address may share the hub's port number. */
    struct brokercfg_options o;
    base_options(&o);
    o.node_address = "192.168.1.10";
    o.hub_port = 1883;
    null = fopen("/dev/null", "w");
    CHECK_INT(brokercfg_config_print(&o, null), 0);
    fclose(null);
}

static void test_config_write(void)
{
    const char *dir = th_tmpdir("bcfg-conf");
    char path[512], text[8192];
    snprintf(path, sizeof path, "%s/mosquitto.conf", dir);
    struct brokercfg_options o;
    base_options(&o);
    CHECK_INT(brokercfg_config_write(&o, path), 0);
    CHECK_INT(file_mode(path), 0644);
    CHECK(slurp(path, text, sizeof text) > 0);
    CHECK(has_line(text, "allow_anonymous false"));
    o.password_file = "relative";
    CHECK_INT(brokercfg_config_write(&o, path), -EINVAL);
    CHECK(slurp(path, text, sizeof text) > 0);
    CHECK(has_line(text, "password_file /etc/firewatch/broker/passwd"));
    th_rmtree(dir);
}

/* Prints the bridge section into a malloc'd string (NULL on failure, rc in *rc). */
static char *bridge_text(const struct brokercfg_bridge *b, int *rc)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    *rc = brokercfg_bridge_print(f, b);
    fclose(f);
    if (*rc != 0) {
        free(text);
        return NULL;
    }
    return text;
}

static void test_bridge_text(void)
{
    struct brokercfg_bridge b = {"north-1", "region.example.org:1883", "pw-Abc_123", NULL};
    int rc;
    char *text = bridge_text(&b, &rc);
    CHECK_INT(rc, 0);
    if (!text)
        return;
    static const char *const want[] = {
        "connection firewatch-fed-north-1",
        "address region.example.org:1883",
        "remote_clientid area_north-1",
        "remote_username area_north-1",
        "remote_password pw-Abc_123",
        "bridge_protocol_version mqttv311",
        "cleansession false",
        "notifications true",
        "notification_topic firewatch/v1/fed/north-1/bridge",
        "restart_timeout 2 30",
        "keepalive_interval 30",
        "try_private false",
        "topic firewatch/v1/fed/north-1/hub out 1",
        "topic firewatch/v1/fed/north-1/readiness out 1",
        "topic firewatch/v1/fed/north-1/incident/+ out 1",
        "topic firewatch/v1/fed/north-1/cap/+ out 1",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        th_report(has_line(text, want[i]), "bridge has \"%s\"", want[i]);
    /* Four topic lines, all out: nothing flows back in, nothing else goes out, and
     * not the bridge's own notification topic (its local "0" would be queued and
     * overwrite the regional "1" after a reconnect: test_acl shows it). */
    CHECK_INT(count_lines_starting(text, "topic "), 4);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        size_t n = strcspn(p, "\n");
        if (strncmp(p, "topic ", 6) == 0 &&
            (memmem(p, n, "#", 1) != NULL || memmem(p, n, "/bridge", 7) != NULL || memmem(p, n, " in", 3) ||
             memmem(p, n, " both", 5)))
            th_fail(__FILE__, __LINE__, "bridge topic line %.*s", (int)n, p);
    }
    CHECK(strstr(text, "bridge_cafile") == NULL && strstr(text, "bridge_insecure") == NULL);
    /* The connection line comes first: everything after it belongs to the bridge. */
    const char *first = text;
    while (*first == '#')
        first = strchr(first, '\n') + 1;
    CHECK(strncmp(first, "connection ", 11) == 0);
    /* Every setting is commented. */
    int uncommented = 0;
    const char *prev = NULL;
    for (const char *p = text; *p; p = strchr(p, '\n') + 1) {
        if (*p != '#' && *p != '\n' && (!prev || *prev != '#'))
            uncommented++;
        prev = p;
        if (!strchr(p, '\n'))
            break;
    }
    CHECK_INT(uncommented, 0);
    free(text);

    /* TLS: the CA, hostname verification on, TLS 1.2 at least. */
    b.cafile = "/etc/firewatch/region-ca.crt";
    b.address = "10.0.0.5:8883";
    text = bridge_text(&b, &rc);
    CHECK_INT(rc, 0);
    if (text) {
        CHECK(has_line(text, "address 10.0.0.5:8883"));
        CHECK(has_line(text, "bridge_cafile /etc/firewatch/region-ca.crt"));
        CHECK(has_line(text, "bridge_insecure false"));
        CHECK(has_line(text, "bridge_tls_version tlsv1.2"));
    }
    free(text);
    b.cafile = ""; /* empty: plain */
    text = bridge_text(&b, &rc);
    CHECK(text && strstr(text, "bridge_cafile") == NULL);
    free(text);
    b.address = "[::1]:1883"; /* Mosquitto wants a bare IPv6 address */
    CHECK(bridge_text(&b, &rc) == NULL && rc == -EINVAL);
    b.address = "::1:1883";
    text = bridge_text(&b, &rc);
    CHECK_INT(rc, 0);
    free(text);

    /* Refusals: anything that could break out of its line or name the wrong area. */
    static const struct {
        const char *what, *area, *address, *password, *cafile;
    } rows[] = {
        {"upper-case area", "North", "r:1883", "pw", NULL},
        {"empty area", "", "r:1883", "pw", NULL},
        {"area with a slash", "a/b", "r:1883", "pw", NULL},
        {"area wildcard", "+", "r:1883", "pw", NULL},
        {"no port", "a1", "region.example.org", "pw", NULL},
        {"port 0", "a1", "r:0", "pw", NULL},
        {"port too big", "a1", "r:65536", "pw", NULL},
        {"port not a number", "a1", "r:18x3", "pw", NULL},
        {"space in address", "a1", "r egion:1883", "pw", NULL},
        {"newline in address", "a1", "r:1883\naddress evil:1883", "pw", NULL},
        {"empty password", "a1", "r:1883", "", NULL},
        {"space in password", "a1", "r:1883", "pw x", NULL},
        {"newline in password", "a1", "r:1883", "pw\ntopic # both 2", NULL},
        {"relative cafile", "a1", "r:1883", "pw", "ca.crt"},
        {"newline in cafile", "a1", "r:1883", "pw", "/ca.crt\nbridge_insecure true"},
        {"space in cafile", "a1", "r:1883", "pw", "/etc/my ca.crt"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct brokercfg_bridge bad = {rows[i].area, rows[i].address, rows[i].password, rows[i].cafile};
        char *t = bridge_text(&bad, &rc);
        th_report(!t && rc == -EINVAL, "bridge refuses %s (%d)", rows[i].what, rc);
        free(t);
    }
    FILE *null = fopen("/dev/null", "w");
    CHECK_INT(brokercfg_bridge_print(null, NULL), -EINVAL);
    struct brokercfg_bridge none = {NULL, "r:1883", "pw", NULL};
    CHECK_INT(brokercfg_bridge_print(null, &none), -EINVAL);
    fclose(null);
}

/* A configuration with a bridge: the section comes after every listener,
 * the file is 0600 (it holds a password) and a bad bridge writes nothing. */
static void test_config_with_bridge(void)
{
    const struct brokercfg_bridge b = {"a1", "127.0.0.1:18830", "Secret-pw_1", NULL};
    struct brokercfg_options o;
    base_options(&o);
    o.tls_port = 8883;
    o.tls_cafile = "/etc/firewatch/tls/ca.crt";
    o.tls_certfile = "/etc/firewatch/tls/server.crt";
    o.tls_keyfile = "/etc/firewatch/tls/server.key";
    o.bridge = &b;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK_INT(brokercfg_config_print(&o, f), 0);
    fclose(f);
    const char *conn = strstr(text, "\nconnection firewatch-fed-a1\n");
    CHECK(conn != NULL);
    if (conn) {
        /* No listener, and no listener option, after the connection line. */
        CHECK(strstr(conn, "\nlistener ") == NULL);
        CHECK(strstr(conn, "\nuse_username_as_clientid") == NULL);
        CHECK(strstr(conn, "\ncafile") == NULL);
        CHECK(strstr(conn, "\ntopic firewatch/v1/fed/a1/cap/+ out 1\n") != NULL);
        /* It is the end of the file: the bridge section's last setting is the last line. */
        CHECK(len > 0 && text[len - 1] == '\n');
    }
    CHECK(conn > strstr(text, "\nrequire_certificate"));
    check_listener_scope(text, 3);
    free(text);

    const char *dir = th_tmpdir("bcfg-bridge");
    char path[512], body[16384];
    snprintf(path, sizeof path, "%s/mosquitto.conf", dir);
    base_options(&o);
    o.run_as_user = NULL;
    CHECK_INT(brokercfg_config_write(&o, path), 0); /* no bridge: 0644 */
    CHECK_INT(file_mode(path), 0644);
    o.bridge = &b;
    CHECK_INT(brokercfg_config_write(&o, path), 0);
    CHECK_INT(file_mode(path), 0600);
    CHECK(slurp(path, body, sizeof body) > 0);
    CHECK(has_line(body, "remote_password Secret-pw_1"));
    const char *last = strstr(body, "\nconnection ");
    CHECK(last && strstr(last, "\nlistener ") == NULL);
    /* A bad bridge leaves the old file. */
    const struct brokercfg_bridge bad = {"a1", "127.0.0.1:18830", "two words", NULL};
    o.bridge = &bad;
    CHECK_INT(brokercfg_config_write(&o, path), -EINVAL);
    CHECK(slurp(path, body, sizeof body) > 0 && has_line(body, "remote_password Secret-pw_1"));
    /* Back to no bridge: no secret, 0644 again. */
    o.bridge = NULL;
    CHECK_INT(brokercfg_config_write(&o, path), 0);
    CHECK_INT(file_mode(path), 0644);
    if (geteuid() == 0) {
        /* As root with a run_as_user, the secret file goes to that account. */
        o.bridge = &b;
        o.run_as_user = "nobody";
        CHECK_INT(brokercfg_config_write(&o, path), 0);
        struct stat st;
        struct passwd *pw = getpwnam("nobody");
        CHECK(pw && stat(path, &st) == 0 && st.st_uid == pw->pw_uid && (st.st_mode & 07777) == 0600);
        o.run_as_user = "no-such-account-fw";
        CHECK_INT(brokercfg_config_write(&o, path), -ENOENT);
    }
    th_rmtree(dir);
}

static void test_acl_extras(void)
{
    const struct brokercfg_node nodes[] = {{"n1", "z1"}};
    const char *const extra[] = {"firewatch/v1/fed/hub-a/#", "homeassistant/#"};
    const char *const areas[] = {"a1", "north-2"};
    struct brokercfg_acl acl = {.hub_user = "firewatch_hub",
                                .hub_write = extra,
                                .n_hub_write = 2,
                                .nodes = nodes,
                                .n_nodes = 1,
                                .areas = areas,
                                .n_areas = 2};
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK_INT(brokercfg_acl_print_ex(f, &acl), 0);
    fclose(f);
    CHECK(has_line(text, "topic write firewatch/v1/fed/hub-a/#"));
    CHECK(has_line(text, "topic write homeassistant/#"));
    /* The extras belong to the hub's block: before the first node. */
    CHECK(strstr(text, "topic write homeassistant/#") < strstr(text, "user n1"));
    CHECK(has_line(text, "user area_a1"));
    CHECK(has_line(text, "topic write firewatch/v1/fed/a1/#"));
    CHECK(has_line(text, "user area_north-2"));
    CHECK(has_line(text, "topic write firewatch/v1/fed/north-2/#"));
    /* An area block grants exactly one write and no read. */
    const char *blk = strstr(text, "user area_a1\n");
    if (blk) {
        const char *end = strstr(blk + 1, "\nuser ");
        size_t n = end ? (size_t)(end - blk) : strlen(blk);
        char one[512];
        snprintf(one, sizeof one, "%.*s", (int)n, blk);
        CHECK_INT(count_lines_starting(one, "topic "), 1);
        CHECK_INT(count_lines_starting(one, "topic read"), 0);
    }
    CHECK_INT(count_lines_starting(text, "user "), 4);
    CHECK_INT(count_lines_starting(text, "topic "), 4 + 2 + 5 + 2);
    CHECK_INT(count_lines_starting(text, "pattern"), 0);
    free(text);

    /* The old entry point writes the same as _ex without extras. */
    char *a = NULL, *b = NULL;
    size_t la = 0, lb = 0;
    f = open_memstream(&a, &la);
    CHECK_INT(brokercfg_acl_print(f, "firewatch_hub", nodes, 1), 0);
    fclose(f);
    struct brokercfg_acl plain = {.hub_user = "firewatch_hub", .nodes = nodes, .n_nodes = 1};
    f = open_memstream(&b, &lb);
    CHECK_INT(brokercfg_acl_print_ex(f, &plain), 0);
    fclose(f);
    CHECK_STR(a, b);
    free(a);
    free(b);

    /* Refused extras: malformed filters, and any that would let the hub write a node's topics. */
    static const struct {
        const char *filter;
        int want;
    } filters[] = {
        {"homeassistant/#", 0},
        {"firewatch/v1/fed/a1/#", 0},
        {"ha/+/config", 0},
        {"firewatch/v1/nodes/x", 0},
        {"", -EINVAL},
        {"a/#/b", -EINVAL},
        {"a/b#", -EINVAL},
        {"a/+b/c", -EINVAL},
        {"a b", -EINVAL},
        {"a\nuser n1", -EINVAL},
        {"a\tb", -EINVAL},
        {"$SYS/#", -EINVAL},
        {"#", -EINVAL},
        {"firewatch/#", -EINVAL},
        {"+/v1/node/n1/event", -EINVAL},
        {"firewatch/v1/node/n1/event", -EINVAL},
        {"firewatch/v1/+/n1/event", -EINVAL},
        {"firewatch/v1/node", -EINVAL}, /* not a node topic, but node/# covers its parent */
    };
    for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++) {
        const char *one[] = {filters[i].filter};
        struct brokercfg_acl x = {.hub_user = "firewatch_hub", .hub_write = one, .n_hub_write = 1};
        FILE *null = fopen("/dev/null", "w");
        int rc = brokercfg_acl_print_ex(null, &x);
        fclose(null);
        th_report(rc == filters[i].want, "hub write extra %zu \"%.*s\" -> %d (want %d)", i,
                  (int)strcspn(filters[i].filter, "\n\t"), filters[i].filter, rc, filters[i].want);
    }
    char longf[BROKERCFG_FILTER_MAX + 2];
    memset(longf, 'a', sizeof longf - 1);
    longf[sizeof longf - 1] = '\0';
    CHECK(!brokercfg_filter_valid(longf));
    CHECK(brokercfg_filter_valid("a//b"));
    CHECK(!brokercfg_filter_valid(NULL));

    static const struct {
        const char *area;
        int want;
    } area_rows[] = {{"a1", 0},
                     {"A1", -EINVAL},
                     {"", -EINVAL},
                     {"a/b", -EINVAL},
                     {"+", -EINVAL},
                     {"#", -EINVAL},
                     {"-a", -EINVAL},
                     {"a b", -EINVAL},
                     {"a1\nuser x", -EINVAL},
                     {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", -EINVAL}};
    for (size_t i = 0; i < sizeof area_rows / sizeof area_rows[0]; i++) {
        const char *one[] = {area_rows[i].area};
        struct brokercfg_acl x = {.hub_user = "firewatch_hub", .areas = one, .n_areas = 1};
        FILE *null = fopen("/dev/null", "w");
        int rc = brokercfg_acl_print_ex(null, &x);
        fclose(null);
        th_report(rc == area_rows[i].want, "area %zu \"%.*s\" -> %d", i,
                  (int)strcspn(area_rows[i].area, "\n"), area_rows[i].area, rc);
    }
    FILE *null = fopen("/dev/null", "w");
    const char *dup[] = {"a1", "a1"};
    struct brokercfg_acl x = {.hub_user = "firewatch_hub", .areas = dup, .n_areas = 2};
    CHECK_INT(brokercfg_acl_print_ex(null, &x), -EINVAL);
    struct brokercfg_acl y = {.hub_user = "area_x"}; /* the hub named like an area's account */
    CHECK_INT(brokercfg_acl_print_ex(null, &y), -EINVAL);
    struct brokercfg_acl z = {.hub_user = "firewatch_hub", .n_areas = 1};
    CHECK_INT(brokercfg_acl_print_ex(null, &z), -EINVAL);
    CHECK_INT(brokercfg_acl_print_ex(null, NULL), -EINVAL);
    fclose(null);

    /* _write_ex: 0600, and a refused ACL leaves the old file. */
    const char *dir = th_tmpdir("bcfg-aclx");
    char path[512], body[4096];
    snprintf(path, sizeof path, "%s/acl", dir);
    CHECK_INT(brokercfg_acl_write_ex(path, &acl), 0);
    CHECK_INT(file_mode(path), 0600);
    CHECK_INT(brokercfg_acl_write_ex(path, &x), -EINVAL);
    CHECK(slurp(path, body, sizeof body) > 0 && has_line(body, "user area_north-2"));
    th_rmtree(dir);
}

static void test_prepare(void)
{
    const char *dir = th_tmpdir("bcfg-prep");
    char pwf[512], aclf[512], data[512], text[64];
    snprintf(pwf, sizeof pwf, "%s/passwd", dir);
    snprintf(aclf, sizeof aclf, "%s/acl", dir);
    snprintf(data, sizeof data, "%s/data", dir);
    struct brokercfg_options o;
    brokercfg_options_init(&o);
    o.password_file = pwf;
    o.acl_file = aclf;
    o.persistence_dir = data;
    o.run_as_user = NULL;
    CHECK_INT(brokercfg_prepare(&o), 0);
    CHECK_INT(file_mode(pwf), 0600);
    CHECK_INT(file_mode(aclf), 0600);
    CHECK_INT(file_mode(data), 0700);
    CHECK_INT(slurp(pwf, text, sizeof text), 0);
    /* Existing contents are kept. */
    CHECK_INT(brokercfg_passwd_set(pwf, "n1", "pw"), 0);
    CHECK_INT(brokercfg_prepare(&o), 0);
    CHECK_INT(brokercfg_passwd_check(pwf, "n1", "pw"), 0);
    if (geteuid() == 0) {
        o.run_as_user = "no-such-account-fw";
        CHECK_INT(brokercfg_prepare(&o), -ENOENT);
    }
    o.password_file = "relative";
    CHECK_INT(brokercfg_prepare(&o), -EINVAL);
    th_rmtree(dir);
}

static void test_queue_size(void)
{
    CHECK_INT(brokercfg_queue_size(0, 24), 1000);
    CHECK_INT(brokercfg_queue_size(10, 1), 1000);
    CHECK_INT(brokercfg_queue_size(1000, 24), 144000);
    CHECK_INT(brokercfg_queue_size(10000, 48), 2880000);
    CHECK_INT(brokercfg_queue_size(4000000000u, 4000000000u), 4294967295u);
}

static void test_reload_refusals(void)
{
    const char *dir = th_tmpdir("bcfg-pid");
    char path[512];
    snprintf(path, sizeof path, "%s/pid", dir);
    CHECK_INT(brokercfg_reload(path, 0), -ENOENT);
    CHECK_INT(brokercfg_reload(NULL, 0), -EINVAL);

    /* A pid file naming a process that is not mosquitto (this test) is refused:
     * SIGHUP would kill it. */
    FILE *f = fopen(path, "w");
    fprintf(f, "%ld\n", (long)getpid());
    fclose(f);
    CHECK_INT(brokercfg_reload(path, 0), -ESRCH);
    CHECK_INT(brokercfg_reload(NULL, getpid()), -ESRCH);

    f = fopen(path, "w");
    fprintf(f, "12abc\n");
    fclose(f);
    CHECK_INT(brokercfg_reload(path, 0), -EINVAL);
    th_rmtree(dir);
}

static void test_tls_files(void)
{
    const char *tmp = th_tmpdir("bcfg-tls");
    char dir[512], path[600], cmd[2048], out[2048];
    snprintf(dir, sizeof dir, "%s/tls", tmp);

    CHECK_INT(brokercfg_tls_create_server(dir, (const char *const[]){"localhost"}, 1, 0), -ENOENT);
    CHECK_INT(brokercfg_tls_create_ca(dir, "Firewatch test CA", 0), 0);
    CHECK_INT(file_mode(dir), 0700);
    CHECK_INT(brokercfg_tls_create_ca(dir, "Firewatch test CA", 0), -EEXIST);
    CHECK_INT(brokercfg_tls_create_ca(dir, "bad/cn", 0), -EINVAL);

    const char *names[] = {"broker.example.net", "localhost", "127.0.0.1", "::1"};
    CHECK_INT(brokercfg_tls_create_server(dir, names, 4, 30), 0);
    CHECK_INT(brokercfg_tls_create_client(dir, "n1", 0), 0);
    CHECK_INT(brokercfg_tls_create_client(dir, "Bad id", 0), -EINVAL);
    CHECK_INT(brokercfg_tls_create_server(dir, (const char *const[]){"bad name!"}, 1, 0), -EINVAL);
    CHECK_INT(brokercfg_tls_create_server(dir, (const char *const[]){"a..b"}, 1, 0), -EINVAL);

    static const struct {
        const char *file;
        int mode;
    } modes[] = {
        {"ca.key", 0600},     {"ca.crt", 0644},         {"server.key", 0600},
        {"server.crt", 0644}, {"clients/n1.key", 0600}, {"clients/n1.crt", 0644},
    };
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, modes[i].file);
        int m = file_mode(path);
        th_report(m == modes[i].mode, "%s mode %o (want %o)", modes[i].file, m, modes[i].mode);
    }

    snprintf(cmd, sizeof cmd, "cd %s && openssl verify -CAfile ca.crt server.crt clients/n1.crt 2>&1", dir);
    CHECK_INT(run_capture(cmd, out, sizeof out), 0);
    CHECK(strstr(out, "server.crt: OK") != NULL);
    CHECK(strstr(out, "clients/n1.crt: OK") != NULL);

    snprintf(cmd, sizeof cmd,
             "cd %s && openssl x509 -in server.crt -noout -subject -ext subjectAltName,extendedKeyUsage 2>&1",
             dir);
    CHECK_INT(run_capture(cmd, out, sizeof out), 0);
    CHECK(strstr(out, "CN = broker.example.net") != NULL);
    CHECK(strstr(out,
                 "DNS:broker.example.net, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1") !=
          NULL);
    CHECK(strstr(out, "TLS Web Server Authentication") != NULL);

    snprintf(cmd, sizeof cmd,
             "cd %s && openssl x509 -in clients/n1.crt -noout -subject -ext extendedKeyUsage 2>&1", dir);
    CHECK_INT(run_capture(cmd, out, sizeof out), 0);
    CHECK(strstr(out, "CN = n1") != NULL);
    CHECK(strstr(out, "TLS Web Client Authentication") != NULL);

    snprintf(cmd, sizeof cmd, "cd %s && openssl x509 -in ca.crt -noout -ext basicConstraints 2>&1", dir);
    CHECK_INT(run_capture(cmd, out, sizeof out), 0);
    CHECK(strstr(out, "CA:TRUE") != NULL);

    /* Reissuing replaces the certificate; no scratch directories remain. */
    CHECK_INT(brokercfg_tls_create_client(dir, "n1", 0), 0);
    snprintf(cmd, sizeof cmd, "ls -A %s", dir);
    CHECK_INT(run_capture(cmd, out, sizeof out), 0);
    CHECK_STR(out, "ca.crt\nca.key\nclients\nserver.crt\nserver.key\n");
    th_rmtree(tmp);
}

TH_MAIN(TH_TEST(test_password_generate), TH_TEST(test_hash_format_and_verify),
        TH_TEST(test_pbkdf2_matches_openssl), TH_TEST(test_reads_mosquitto_passwd_hashes),
        TH_TEST(test_passwd_file), TH_TEST(test_passwd_concurrent_writers), TH_TEST(test_acl_text),
        TH_TEST(test_config_text), TH_TEST(test_config_refusals), TH_TEST(test_config_write),
        TH_TEST(test_bridge_text), TH_TEST(test_config_with_bridge), TH_TEST(test_acl_extras),
        TH_TEST(test_prepare), TH_TEST(test_queue_size), TH_TEST(test_reload_refusals),
        TH_TEST(test_tls_files))
