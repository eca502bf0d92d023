/*
 * test_acl.c - the broker enforces identity, proved against a real
 * Mosquitto running the configuration, password file and ACL that brokercfg
 * generates.
 *
 * Three nodes (n1 and n3 in zone z1, n2 in zone z2) and the hub account are
 * provisioned with generated passwords. A node publishes to its own topics;
 * every other publish is answered with MQTT 5 reason 0x87 and reaches no
 * one; a node receives only its own cmd and its zone's alarm; anonymous
 * clients and wrong passwords are refused; and after a decommission (user
 * removed, ACL rewritten, SIGHUP) the node is cut off at once. Federation:
 * a regional broker's area accounts write only their own subtree, and two
 * real brokers show the generated bridge at work. "Nothing
 * arrived" is always proved with a barrier: a permitted message sent after
 * the refused ones, which the same subscriber must receive.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker.h"
#include "brokercfg.h"
#include "client.h"
#include "harness.h"

#define RC_NOT_AUTHORIZED 0x87
#define WAIT_MS 5000

#define ROOT "firewatch/v1/"
#define HUB_USER BROKERCFG_HUB_USER_DEFAULT

static const struct brokercfg_node nodes[] = {{"n1", "z1"}, {"n2", "z2"}, {"n3", "z1"}};
enum { NODES = sizeof nodes / sizeof nodes[0] };

struct fx {
    struct tb_broker b;
    int hub_port;
    char node_url[64];
    char hub_url[64];
    char passwd[320];
    char acl[320];
    char pid_file[320];
    char hub_pw[BROKERCFG_PASSWORD_SIZE];
    char pw[NODES][BROKERCFG_PASSWORD_SIZE];
    char area_pw[2][BROKERCFG_PASSWORD_SIZE]; /* the areas' accounts, when fed */
};

/* What a federation test adds to the standard fixture. */
struct fx_fed {
    const char *const *areas; /* accounts area_<id> (a regional broker), at most 2 */
    size_t n_areas;
    const char *const *hub_write; /* the hub's extra write grants */
    size_t n_hub_write;
    const struct brokercfg_bridge *bridge; /* a bridge out of this broker */
};

static void path_in(char *buf, size_t size, const struct fx *f, const char *name)
{
    snprintf(buf, size, "%s/%s", f->b.dir, name);
}

/* Provisions every node and the hub (and fed's areas), writes the whole
 * configuration with brokercfg (with fed's bridge) and starts the broker on
 * it. fed may be NULL. */
static int fx_start_fed(struct fx *f, const struct fx_fed *fed)
{
    memset(f, 0, sizeof *f);
    int rc = tb_init(&f->b);
    if (rc != 0)
        return rc;
    int hub_port;
    do
        hub_port = tb_free_port();
    while (hub_port == f->b.port);
    if (hub_port < 0)
        return hub_port;
    f->hub_port = hub_port;
    snprintf(f->node_url, sizeof f->node_url, "tcp://127.0.0.1:%d", f->b.port);
    snprintf(f->hub_url, sizeof f->hub_url, "tcp://127.0.0.1:%d", hub_port);
    path_in(f->passwd, sizeof f->passwd, f, "passwd");
    path_in(f->acl, sizeof f->acl, f, "acl");
    path_in(f->pid_file, sizeof f->pid_file, f, "mosquitto.pid");

    if ((rc = brokercfg_password_generate(f->hub_pw, sizeof f->hub_pw)) != 0 ||
        (rc = brokercfg_passwd_set(f->passwd, HUB_USER, f->hub_pw)) != 0)
        return rc;
    for (int i = 0; i < NODES; i++)
        if ((rc = brokercfg_password_generate(f->pw[i], sizeof f->pw[i])) != 0 ||
            (rc = brokercfg_passwd_set(f->passwd, nodes[i].id, f->pw[i])) != 0)
            return rc;
    struct brokercfg_acl acl = {.hub_user = HUB_USER, .nodes = nodes, .n_nodes = NODES};
    if (fed) {
        acl.hub_write = fed->hub_write;
        acl.n_hub_write = fed->n_hub_write;
        acl.areas = fed->areas;
        acl.n_areas = fed->n_areas;
        for (size_t i = 0; i < fed->n_areas && i < 2; i++) {
            char user[64];
            snprintf(user, sizeof user, "area_%s", fed->areas[i]);
            if ((rc = brokercfg_password_generate(f->area_pw[i], sizeof f->area_pw[i])) != 0 ||
                (rc = brokercfg_passwd_set(f->passwd, user, f->area_pw[i])) != 0)
                return rc;
        }
    }
    if ((rc = brokercfg_acl_write_ex(f->acl, &acl)) != 0)
        return rc;

    char conf[320], log[320];
    path_in(conf, sizeof conf, f, "mosquitto.conf");
    path_in(log, sizeof log, f, "mosquitto.log");
    struct brokercfg_options o;
    brokercfg_options_init(&o);
    o.node_address = "127.0.0.1";
    o.node_port = f->b.port;
    o.hub_port = hub_port;
    o.password_file = f->passwd;
    o.acl_file = f->acl;
    o.persistence_dir = f->b.dir;
    o.pid_file = f->pid_file;
    o.log_file = log;
    o.run_as_user = geteuid() == 0 ? "root" : NULL; /* the scratch files are ours */
    o.bridge = fed ? fed->bridge : NULL;
    if ((rc = brokercfg_config_write(&o, conf)) != 0)
        return rc;
    return tb_start_config(&f->b);
}

static int fx_start(struct fx *f)
{
    return fx_start_fed(f, NULL);
}

/* Stops the broker, first copying its log to stderr when the test failed. */
static void fx_stop(struct fx *f)
{
    char path[320], line[512];
    path_in(path, sizeof path, f, "mosquitto.log");
    FILE *log = th_failures() > 0 ? fopen(path, "r") : NULL;
    if (log) {
        while (fgets(line, sizeof line, log))
            fprintf(stderr, "mosquitto: %s", line);
        fclose(log);
    }
    tb_stop(&f->b);
}

static struct tc_client *node(struct fx *f, int i)
{
    int reason;
    struct tc_client *c = tc_connect(f->node_url, NULL, nodes[i].id, f->pw[i], NULL, &reason);
    if (!c)
        th_fail(__FILE__, __LINE__, "node %s cannot connect: reason 0x%x", nodes[i].id, (unsigned)reason);
    return c;
}

/* The hub, on its loopback listener, subscribed to everything it may read. */
static struct tc_client *hub(struct fx *f)
{
    int reason;
    struct tc_client *c = tc_connect(f->hub_url, NULL, HUB_USER, f->hub_pw, NULL, &reason);
    if (!c) {
        th_fail(__FILE__, __LINE__, "hub cannot connect: reason 0x%x", (unsigned)reason);
        return NULL;
    }
    CHECK_INT(tc_subscribe(c, ROOT "#", 1), 1);
    return c;
}

static void test_node_publishes_own_topics(void)
{
    struct fx f;
    if (fx_start(&f) != 0) {
        th_fail(__FILE__, __LINE__, "broker did not start");
        fx_stop(&f);
        return;
    }
    struct tc_client *h = hub(&f), *n1 = node(&f, 0);
    if (h && n1) {
        CHECK_INT(tc_publish(n1, ROOT "node/n1/status", "{\"online\":true}", 1, true), 0);
        CHECK_INT(tc_publish(n1, ROOT "node/n1/reading", "{\"seq\":0}", 0, false), 0);
        CHECK_INT(tc_publish(n1, ROOT "node/n1/event", "{\"seq\":1}", 1, false), 0);
        CHECK(tc_wait_count(h, ROOT "node/n1/status", 1, WAIT_MS));
        CHECK(tc_wait_count(h, ROOT "node/n1/reading", 1, WAIT_MS));
        CHECK(tc_wait_count(h, ROOT "node/n1/event", 1, WAIT_MS));
        char payload[64];
        tc_last_payload(h, ROOT "node/n1/event", payload, sizeof payload);
        CHECK_STR(payload, "{\"seq\":1}");
    }
    tc_free(n1);
    tc_free(h);
    fx_stop(&f);
}

/* Every publish outside the node's own status/reading/event is refused with
 * 0x87 in the PUBACK, and the hub (which reads everything) never sees it. */
static void test_node_cannot_publish_elsewhere(void)
{
    static const char *const forbidden[] = {
        ROOT "node/n2/event",  /* another node's event: a forged alarm */
        ROOT "node/n2/status", /* another node's status */
        ROOT "zone/z1/alarm",  /* its own zone's alarm: only the hub sounds zones */
        ROOT "zone/z2/alarm",  /* another zone's alarm */
        ROOT "hub/status",     /* the hub's birth/will */
        ROOT "node/n1/cmd",    /* commands come from the hub, even its own */
        ROOT "node/n1/other",  /* not a protocol topic */
        "elsewhere/topic",     /* outside the protocol root */
    };
    struct fx f;
    if (fx_start(&f) != 0) {
        th_fail(__FILE__, __LINE__, "broker did not start");
        fx_stop(&f);
        return;
    }
    struct tc_client *h = hub(&f), *n1 = node(&f, 0);
    if (h && n1) {
        for (size_t i = 0; i < sizeof forbidden / sizeof forbidden[0]; i++) {
            int rc = tc_publish(n1, forbidden[i], "{\"state\":\"alarm\"}", 1, false);
            th_report(rc == RC_NOT_AUTHORIZED, "n1 publish %s -> 0x%x (want 0x87)", forbidden[i],
                      (unsigned)rc);
        }
        /* Retained too: a refused retained alarm must not be stored for later subscribers. */
        CHECK_INT(tc_publish(n1, ROOT "zone/z1/alarm", "{\"state\":\"alarm\"}", 1, true), RC_NOT_AUTHORIZED);
        /* Barrier: a permitted publish after the refused ones arrives; nothing before it did. */
        CHECK_INT(tc_publish(n1, ROOT "node/n1/event", "{\"seq\":9}", 1, false), 0);
        CHECK(tc_wait_count(h, ROOT "node/n1/event", 1, WAIT_MS));
        for (size_t i = 0; i < sizeof forbidden / sizeof forbidden[0]; i++)
            th_report(tc_count(h, forbidden[i]) == 0, "hub received nothing on %s", forbidden[i]);
        /* And the connection survives refusals (MQTT 5: reported, not dropped). */
        CHECK(tc_connected(n1));
    }
    tc_free(n1);
    tc_free(h);

    /* A fresh subscriber finds no retained alarm from the refused publish. */
    int reason;
    struct tc_client *n3 = tc_connect(f.node_url, NULL, "n3", f.pw[2], NULL, &reason);
    CHECK(n3 != NULL);
    if (n3) {
        struct tc_client *h2 = hub(&f);
        CHECK_INT(tc_subscribe(n3, ROOT "zone/z1/alarm", 1), 1);
        CHECK_INT(tc_subscribe(n3, ROOT "node/n3/cmd", 1), 1);
        if (h2)
            CHECK_INT(tc_publish(h2, ROOT "node/n3/cmd", "{\"id\":\"b\",\"cmd\":\"identify\"}", 1, false), 0);
        CHECK(tc_wait_count(n3, ROOT "node/n3/cmd", 1, WAIT_MS));
        CHECK_INT(tc_count(n3, ROOT "zone/z1/alarm"), 0);
        tc_free(h2);
    }
    tc_free(n3);
    fx_stop(&f);
}

/* The hub writes alarms, commands and its status; a node reads only its own
 * cmd and its own zone's alarm, whatever it subscribes to. */
static void test_node_reads_only_its_own(void)
{
    struct fx f;
    if (fx_start(&f) != 0) {
        th_fail(__FILE__, __LINE__, "broker did not start");
        fx_stop(&f);
        return;
    }
    struct tc_client *h = hub(&f), *n1 = node(&f, 0), *n2 = node(&f, 1);
    if (h && n1 && n2) {
        static const char *const subs[] = {ROOT "node/n2/cmd", ROOT "zone/z2/alarm", ROOT "node/+/cmd",
                                           ROOT "#",           ROOT "node/n1/cmd",   ROOT "zone/z1/alarm"};
        for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
            /* Mosquitto 2.0's ACL file grants the SUBSCRIBE itself (reason 1,
             * QoS 1) and filters at delivery; what matters is what arrives. */
            int rc = tc_subscribe(n1, subs[i], 1);
            th_report(rc == 1 || rc == RC_NOT_AUTHORIZED, "n1 subscribe %s -> 0x%x", subs[i], (unsigned)rc);
        }
        /* Others' traffic first, then n1's own cmd and zone alarm as the barrier. */
        CHECK_INT(tc_publish(h, ROOT "node/n2/cmd", "{\"id\":\"c1\",\"cmd\":\"selftest\"}", 1, false), 0);
        CHECK_INT(tc_publish(h, ROOT "zone/z2/alarm", "{\"state\":\"alarm\"}", 1, true), 0);
        CHECK_INT(tc_publish(h, ROOT "hub/status", "{\"online\":true}", 1, true), 0);
        CHECK_INT(tc_publish(n2, ROOT "node/n2/event", "{\"seq\":1}", 1, false), 0);
        CHECK_INT(tc_publish(n2, ROOT "node/n2/status", "{\"online\":true}", 1, true), 0);
        CHECK_INT(tc_publish(h, ROOT "node/n1/cmd", "{\"id\":\"c2\",\"cmd\":\"identify\"}", 1, false), 0);
        CHECK_INT(tc_publish(h, ROOT "zone/z1/alarm", "{\"state\":\"clear\"}", 1, true), 0);
        CHECK(tc_wait_count(n1, ROOT "node/n1/cmd", 1, WAIT_MS));
        CHECK(tc_wait_count(n1, ROOT "zone/z1/alarm", 1, WAIT_MS));
        CHECK_INT(tc_count(n1, ROOT "node/n2/cmd"), 0);
        CHECK_INT(tc_count(n1, ROOT "zone/z2/alarm"), 0);
        CHECK_INT(tc_count(n1, ROOT "hub/status"), 0);
        CHECK_INT(tc_count(n1, ROOT "node/n2/event"), 0);
        CHECK_INT(tc_count(n1, ROOT "node/n2/status"), 0);
        /* n2 did get its own. */
        CHECK_INT(tc_subscribe(n2, ROOT "zone/z2/alarm", 1), 1);
        CHECK(tc_wait_count(n2, ROOT "zone/z2/alarm", 1, WAIT_MS)); /* retained */

        /* The hub itself may not write node topics: no forged events, even from the hub. */
        CHECK_INT(tc_publish(h, ROOT "node/n1/event", "{\"seq\":5}", 1, false), RC_NOT_AUTHORIZED);
        CHECK_INT(tc_publish(h, ROOT "node/n1/status", "{\"online\":false}", 1, true), RC_NOT_AUTHORIZED);
    }
    tc_free(n2);
    tc_free(n1);
    tc_free(h);

    /* A node joining later gets its zone's retained alarm, not another zone's. */
    int reason;
    struct tc_client *n3 = tc_connect(f.node_url, NULL, "n3", f.pw[2], NULL, &reason);
    CHECK(n3 != NULL);
    if (n3) {
        CHECK_INT(tc_subscribe(n3, ROOT "zone/z2/alarm", 1), 1);
        CHECK_INT(tc_subscribe(n3, ROOT "zone/z1/alarm", 1), 1);
        CHECK(tc_wait_count(n3, ROOT "zone/z1/alarm", 1, WAIT_MS));
        char payload[64];
        tc_last_payload(n3, ROOT "zone/z1/alarm", payload, sizeof payload);
        CHECK_STR(payload, "{\"state\":\"clear\"}");
        CHECK_INT(tc_count(n3, ROOT "zone/z2/alarm"), 0);
    }
    tc_free(n3);
    fx_stop(&f);
}

static void test_bad_logins_refused(void)
{
    struct fx f;
    if (fx_start(&f) != 0) {
        th_fail(__FILE__, __LINE__, "broker did not start");
        fx_stop(&f);
        return;
    }
    static const struct {
        const char *what;
        int hub_listener;
        const char *user;
        int pw; /* index into f.pw, -1 none, -2 the hub's, -3 a wrong one */
    } rows[] = {
        {"anonymous on the node listener", 0, NULL, -1},
        {"anonymous on the hub listener", 1, NULL, -1},
        {"user without password", 0, "n1", -1},
        {"wrong password", 0, "n1", -3},
        {"another node's password", 0, "n1", 1},
        {"the hub's password for a node", 0, "n1", -2},
        {"unknown user", 0, "n9", 0},
        {"hub with a node's password", 1, HUB_USER, 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const char *pw = rows[i].pw >= 0    ? f.pw[rows[i].pw]
                         : rows[i].pw == -2 ? f.hub_pw
                         : rows[i].pw == -3 ? "not-the-password"
                                            : NULL;
        int reason = 0;
        struct tc_client *c = tc_connect(rows[i].hub_listener ? f.hub_url : f.node_url, "probe", rows[i].user,
                                         pw, NULL, &reason);
        /* Mosquitto 2.0.11 answers every failed login with 0x87 (not
         * authorized), never 0x86, so a prober learns nothing about names. */
        th_report(!c && reason == RC_NOT_AUTHORIZED, "%s refused (reason 0x%x)", rows[i].what,
                  (unsigned)reason);
        tc_free(c);
    }
    fx_stop(&f);
}

/* use_username_as_clientid: n2 connecting with n1's client id does not
 * take over n1's session. */
static void test_client_id_takeover_prevented(void)
{
    struct fx f;
    if (fx_start(&f) != 0) {
        th_fail(__FILE__, __LINE__, "broker did not start");
        fx_stop(&f);
        return;
    }
    int reason;
    struct tc_client *h = hub(&f), *n1 = node(&f, 0);
    struct tc_client *n2 = tc_connect(f.node_url, "n1", "n2", f.pw[1], NULL, &reason);
    CHECK(n2 != NULL);
    if (h && n1 && n2) {
        /* Barrier: both still publish and both publishes arrive. */
        CHECK_INT(tc_publish(n2, ROOT "node/n2/event", "{\"seq\":1}", 1, false), 0);
        CHECK_INT(tc_publish(n1, ROOT "node/n1/event", "{\"seq\":1}", 1, false), 0);
        CHECK(tc_wait_count(h, ROOT "node/n1/event", 1, WAIT_MS));
        CHECK(tc_wait_count(h, ROOT "node/n2/event", 1, WAIT_MS));
        CHECK(tc_connected(n1));
        CHECK(tc_connected(n2));
    }
    tc_free(n2);
    tc_free(n1);
    tc_free(h);
    fx_stop(&f);
}

/* Decommission: remove the user, rewrite the ACL without the node, SIGHUP.
 * The live connection is dropped and a new one refused at once; the other
 * nodes carry on. Rotation: a new password works, the old one does not. */
static void test_decommission_and_rotate(void)
{
    struct fx f;
    if (fx_start(&f) != 0) {
        th_fail(__FILE__, __LINE__, "broker did not start");
        fx_stop(&f);
        return;
    }
    struct tc_client *h = hub(&f), *n1 = node(&f, 0), *n2 = node(&f, 1);
    if (h && n1 && n2) {
        CHECK_INT(tc_publish(n1, ROOT "node/n1/event", "{\"seq\":1}", 1, false), 0);

        CHECK_INT(brokercfg_passwd_remove(f.passwd, "n1"), 0);
        CHECK_INT(brokercfg_acl_write(f.acl, HUB_USER, nodes + 1, NODES - 1), 0);
        char new_pw[BROKERCFG_PASSWORD_SIZE];
        CHECK_INT(brokercfg_password_generate(new_pw, sizeof new_pw), 0);
        CHECK_INT(brokercfg_passwd_set(f.passwd, "n2", new_pw), 0);
        CHECK_INT(brokercfg_reload(f.pid_file, 0), 0);

        /* The decommissioned node's live session is cut. */
        CHECK(tc_wait_lost(n1, WAIT_MS));
        int reason = 0;
        struct tc_client *again = tc_connect(f.node_url, NULL, "n1", f.pw[0], NULL, &reason);
        th_report(!again && reason == RC_NOT_AUTHORIZED,
                  "decommissioned n1 refused after reload (reason 0x%x)", (unsigned)reason);
        tc_free(again);

        /* Rotation also ends the session that logged in with the old password. */
        CHECK(tc_wait_lost(n2, WAIT_MS));
        /* n2's old password no longer works, the new one does. */
        struct tc_client *old = tc_connect(f.node_url, NULL, "n2", f.pw[1], NULL, &reason);
        th_report(!old && reason == RC_NOT_AUTHORIZED, "n2 old password refused after rotation (reason 0x%x)",
                  (unsigned)reason);
        tc_free(old);
        struct tc_client *fresh = tc_connect(f.node_url, NULL, "n2", new_pw, NULL, &reason);
        th_report(fresh != NULL, "n2 new password accepted (reason 0x%x)", (unsigned)reason);
        if (fresh) {
            CHECK_INT(tc_publish(fresh, ROOT "node/n2/event", "{\"seq\":2}", 1, false), 0);
            CHECK(tc_wait_count(h, ROOT "node/n2/event", 1, WAIT_MS));
        }
        tc_free(fresh);
        /* The hub stayed connected through the reload. */
        CHECK(tc_connected(h));
        CHECK(tc_wait_count(h, ROOT "node/n1/event", 1, WAIT_MS));
    }
    tc_free(n2);
    tc_free(n1);
    tc_free(h);
    fx_stop(&f);
}

/* The broker opens exactly the generated listeners: nothing on 1883 or any
 * other port behind our back. */
static void test_only_configured_listeners(void)
{
    struct fx f;
    if (fx_start(&f) != 0) {
        th_fail(__FILE__, __LINE__, "broker did not start");
        fx_stop(&f);
        return;
    }
    char path[320], line[512];
    path_in(path, sizeof path, &f, "mosquitto.log");
    FILE *log = fopen(path, "r");
    CHECK(log != NULL);
    int opened = 0;
    while (log && fgets(line, sizeof line, log)) {
        const char *p = strstr(line, "listen socket on port ");
        if (!p)
            continue;
        int port = (int)strtol(p + strlen("listen socket on port "), NULL, 10);
        opened++;
        th_report(port == f.b.port || port == f.hub_port, "listener on port %d is one we configured", port);
    }
    if (log)
        fclose(log);
    CHECK_INT(opened, 2);
    fx_stop(&f);
}

/* True once the broker's log says client id has gone (its will, if any, is
 * published by then). */
struct gone {
    const struct fx *f;
    const char *line;
};

static bool log_has(void *arg)
{
    const struct gone *g = arg;
    char path[320], line[512];
    path_in(path, sizeof path, g->f, "mosquitto.log");
    FILE *log = fopen(path, "r");
    bool found = false;
    while (log && !found && fgets(line, sizeof line, log))
        found = strstr(line, g->line) != NULL;
    if (log)
        fclose(log);
    return found;
}

/* A node's will on its own status topic is published by the broker; a will
 * aimed at another node's status is not (or the connection is refused). */
static void test_wills(void)
{
    struct fx f;
    if (fx_start(&f) != 0) {
        th_fail(__FILE__, __LINE__, "broker did not start");
        fx_stop(&f);
        return;
    }
    struct tc_client *h = hub(&f);
    int reason;
    struct tc_client *n1 = tc_connect_will(f.node_url, "n1", f.pw[0], ROOT "node/n1/status",
                                           "{\"online\":false,\"boot\":1}", &reason);
    CHECK(n1 != NULL);
    if (h && n1) {
        CHECK_INT(tc_disconnect_with_will(n1), 0);
        CHECK(tc_wait_count(h, ROOT "node/n1/status", 1, WAIT_MS));
        char payload[64];
        tc_last_payload(h, ROOT "node/n1/status", payload, sizeof payload);
        CHECK_STR(payload, "{\"online\":false,\"boot\":1}");
    }
    tc_free(n1);

    /* n3 tries to have the broker announce n2 offline. */
    struct tc_client *n3 = tc_connect_will(f.node_url, "n3", f.pw[2], ROOT "node/n2/status",
                                           "{\"online\":false,\"boot\":7}", &reason);
    if (n3) {
        CHECK_INT(tc_disconnect_with_will(n3), 0);
        struct gone g = {&f, "Client n3 disconnected"};
        CHECK(th_wait_until(log_has, &g, WAIT_MS));
    } else {
        th_report(reason == RC_NOT_AUTHORIZED, "foreign will refused at CONNECT (reason 0x%x)",
                  (unsigned)reason);
    }
    tc_free(n3);
    /* Barrier, then: nothing arrived for n2. */
    struct tc_client *n2 = node(&f, 1);
    if (h && n2) {
        CHECK_INT(tc_publish(n2, ROOT "node/n2/event", "{\"seq\":1}", 1, false), 0);
        CHECK(tc_wait_count(h, ROOT "node/n2/event", 1, WAIT_MS));
        CHECK_INT(tc_count(h, ROOT "node/n2/status"), 0);
    }
    tc_free(n2);
    tc_free(h);
    fx_stop(&f);
}

/* Deployed as Debian runs it: started as root, dropping to the mosquitto
 * account. brokercfg_prepare gives that account the files, and the atomic
 * rewrites keep the owner, so a reload after provisioning still reads them. */
static void test_runs_as_broker_account(void)
{
    struct passwd *pw = getpwnam("mosquitto");
    if (geteuid() != 0 || !pw) {
        th_report(true, "skipped: needs root and a mosquitto account");
        return;
    }
    struct fx f;
    memset(&f, 0, sizeof f);
    CHECK_INT(tb_init(&f.b), 0);
    int hub_port;
    do
        hub_port = tb_free_port();
    while (hub_port == f.b.port);
    f.hub_port = hub_port;
    snprintf(f.node_url, sizeof f.node_url, "tcp://127.0.0.1:%d", f.b.port);
    chmod(f.b.dir, 0755); /* the account must reach its files */
    char data[400], conf[320], log[320];
    snprintf(data, sizeof data, "%s/data", f.b.dir);
    path_in(f.passwd, sizeof f.passwd, &f, "data/passwd");
    path_in(f.acl, sizeof f.acl, &f, "data/acl");
    /* Mosquitto writes its pid file after dropping root: it goes where the account may write. */
    path_in(f.pid_file, sizeof f.pid_file, &f, "data/mosquitto.pid");
    path_in(conf, sizeof conf, &f, "mosquitto.conf");
    path_in(log, sizeof log, &f, "mosquitto.log");

    struct brokercfg_options o;
    brokercfg_options_init(&o); /* run_as_user "mosquitto" */
    o.node_address = "127.0.0.1";
    o.node_port = f.b.port;
    o.hub_port = hub_port;
    o.password_file = f.passwd;
    o.acl_file = f.acl;
    o.persistence_dir = data;
    o.pid_file = f.pid_file;
    o.log_file = log;
    CHECK_INT(brokercfg_prepare(&o), 0);
    CHECK_INT(brokercfg_prepare(&o), 0); /* idempotent */
    struct stat st;
    CHECK(stat(f.passwd, &st) == 0 && st.st_uid == pw->pw_uid && (st.st_mode & 0777) == 0600);
    CHECK(stat(data, &st) == 0 && st.st_uid == pw->pw_uid && (st.st_mode & 0777) == 0700);
    CHECK_INT(brokercfg_config_write(&o, conf), 0);
    /* So is the log file (opened after the drop, and again on reload). */
    FILE *lf = fopen(log, "w");
    if (lf)
        fclose(lf);
    CHECK_INT(brokercfg_file_chown(log, "mosquitto"), 0);
    CHECK_INT(tb_start_config(&f.b), 0);

    /* Provision a node on the running broker, then reload. */
    CHECK_INT(brokercfg_password_generate(f.pw[0], sizeof f.pw[0]), 0);
    CHECK_INT(brokercfg_passwd_set(f.passwd, "n1", f.pw[0]), 0);
    CHECK_INT(brokercfg_acl_write(f.acl, HUB_USER, nodes, 1), 0);
    CHECK(stat(f.passwd, &st) == 0 && st.st_uid == pw->pw_uid && (st.st_mode & 0777) == 0600);
    CHECK(stat(f.acl, &st) == 0 && st.st_uid == pw->pw_uid && (st.st_mode & 0777) == 0600);
    CHECK_INT(brokercfg_reload(f.pid_file, 0), 0);
    struct gone g = {&f, "Reloading config"};
    CHECK(th_wait_until(log_has, &g, WAIT_MS));
    int reason;
    struct tc_client *n1 = tc_connect(f.node_url, NULL, "n1", f.pw[0], NULL, &reason);
    th_report(n1 != NULL, "node provisioned while running connects after reload (reason 0x%x)",
              (unsigned)reason);
    if (n1)
        CHECK_INT(tc_publish(n1, ROOT "node/n1/event", "{\"seq\":1}", 1, false), 0);
    tc_free(n1);
    fx_stop(&f);
}

/* ---- federation -------------------------------------------------------- */

/* A regional broker's area accounts: each may write its own
 * firewatch/v1/fed/<id>/ subtree and nothing else. On an area broker the hub
 * may write its federation subtree and Home Assistant's discovery prefix when
 * given them. Refusals are proved with a barrier as above. */
static void test_area_accounts(void)
{
    static const char *const areas[] = {"a1", "a2"};
    static const char *const extra[] = {ROOT "fed/hub1/#", "homeassistant/#"};
    const struct fx_fed fed = {areas, 2, extra, 2, NULL};
    struct fx f;
    if (fx_start_fed(&f, &fed) != 0) {
        th_fail(__FILE__, __LINE__, "broker did not start");
        fx_stop(&f);
        return;
    }
    int reason;
    struct tc_client *h = hub(&f);
    struct tc_client *a1 = tc_connect(f.node_url, NULL, "area_a1", f.area_pw[0], NULL, &reason);
    th_report(a1 != NULL, "area_a1 logs in with its password (reason 0x%x)", (unsigned)reason);
    if (h && a1) {
        CHECK_INT(tc_publish(a1, ROOT "fed/a1/hub", "{\"v\":1,\"hub\":\"a1\"}", 1, true), 0);
        CHECK_INT(tc_publish(a1, ROOT "fed/a1/incident/7", "{\"v\":1}", 1, true), 0);
        CHECK(tc_wait_count(h, ROOT "fed/a1/hub", 1, WAIT_MS));
        static const char *const forbidden[] = {
            ROOT "fed/a2/hub",                              /* another area's summary */
            ROOT "fed/a2/incident/1",                       /* another area's incident */
            ROOT "fed/hub1/hub",                            /* the hub's own subtree */
            ROOT "node/n1/event",                           /* a node's alarm */
            ROOT "node/n1/status",    ROOT "zone/z1/alarm", /* sounding a zone */
            ROOT "hub/status",        ROOT "fed",
        };
        for (size_t i = 0; i < sizeof forbidden / sizeof forbidden[0]; i++) {
            int rc = tc_publish(a1, forbidden[i], "{\"v\":1}", 1, false);
            th_report(rc == RC_NOT_AUTHORIZED, "area_a1 publish %s -> 0x%x (want 0x87)", forbidden[i],
                      (unsigned)rc);
        }
        /* Outside the protocol root too (nobody reads there, so the reason code is the proof). */
        CHECK_INT(tc_publish(a1, "homeassistant/x", "{}", 1, false), RC_NOT_AUTHORIZED);
        /* Barrier: a permitted publish after the refused ones arrives; none of them did. */
        CHECK_INT(tc_publish(a1, ROOT "fed/a1/readiness", "{\"v\":1}", 1, false), 0);
        CHECK(tc_wait_count(h, ROOT "fed/a1/readiness", 1, WAIT_MS));
        for (size_t i = 0; i < sizeof forbidden / sizeof forbidden[0]; i++)
            th_report(tc_count(h, forbidden[i]) == 0, "hub received nothing on %s", forbidden[i]);

        /* The hub's extras: its federation subtree and the discovery prefix (accepted: PUBACK 0
         * where a refusal is 0x87), nothing beside them. Home Assistant's own account would
         * read the discovery topics; the hub reads only the protocol root. */
        CHECK_INT(tc_publish(h, ROOT "fed/hub1/x", "{\"v\":1}", 1, false), 0);
        CHECK_INT(tc_publish(h, "homeassistant/x", "{}", 1, false), 0);
        CHECK_INT(tc_publish(h, ROOT "fed/a1/hub", "{\"forged\":1}", 1, true), RC_NOT_AUTHORIZED);
        CHECK_INT(tc_publish(h, "elsewhere/x", "{}", 1, false), RC_NOT_AUTHORIZED);
        CHECK_INT(tc_publish(h, "homeassistantx/y", "{}", 1, false), RC_NOT_AUTHORIZED);
        CHECK(tc_wait_count(h, ROOT "fed/hub1/x", 1, WAIT_MS));
        char payload[64];
        tc_last_payload(h, ROOT "fed/a1/hub", payload, sizeof payload);
        CHECK_STR(payload, "{\"v\":1,\"hub\":\"a1\"}");
    }
    tc_free(a1);

    /* area_a2 with area_a1's password, and a node's name with an area's: refused. */
    struct tc_client *bad = tc_connect(f.node_url, "probe", "area_a2", f.area_pw[0], NULL, &reason);
    th_report(!bad && reason == RC_NOT_AUTHORIZED, "area_a2 with area_a1's password refused (0x%x)",
              (unsigned)reason);
    tc_free(bad);
    tc_free(h);
    fx_stop(&f);
}

struct counted {
    struct tc_client *c;
    const char *topic;
    const char *payload;
};

/* True once the last message on topic carries payload. */
static bool last_is(void *arg)
{
    const struct counted *w = arg;
    char buf[128];
    tc_last_payload(w->c, w->topic, buf, sizeof buf);
    return strcmp(buf, w->payload) == 0;
}

/* Two real brokers on loopback: the area broker runs the configuration
 * brokercfg writes with the bridge section, pointing at a regional broker
 * that has the area's account. What the area hub publishes under its
 * federation subtree arrives on the regional broker (retained, so a
 * regional hub starting later still gets it), the bridge's notification says
 * 1 there, nothing else crosses, the bridge survives the area broker's
 * reloads, and what is published while the regional broker is down arrives
 * when it is back. The area broker's ACL has no entry for the bridge: it
 * does not apply to the bridge's own local subscription. */
static void test_bridge_two_brokers(void)
{
    static const char *const region_areas[] = {"a1"};
    struct fx reg, area;
    const struct fx_fed reg_fed = {region_areas, 1, NULL, 0, NULL};
    if (fx_start_fed(&reg, &reg_fed) != 0) {
        th_fail(__FILE__, __LINE__, "regional broker did not start");
        fx_stop(&reg);
        return;
    }
    char address[64];
    snprintf(address, sizeof address, "127.0.0.1:%d", reg.b.port); /* the nodes' listener */
    const struct brokercfg_bridge bridge = {"a1", address, reg.area_pw[0], NULL};
    static const char *const extra[] = {ROOT "fed/a1/#"};
    const struct fx_fed area_fed = {NULL, 0, extra, 1, &bridge};
    if (fx_start_fed(&area, &area_fed) != 0) {
        th_fail(__FILE__, __LINE__, "area broker did not start with the bridge section");
        fx_stop(&area);
        fx_stop(&reg);
        return;
    }
    int reason;
    struct tc_client *ah = hub(&area); /* the area hub, on its own broker */
    if (ah) {
        CHECK_INT(tc_publish(ah, ROOT "fed/a1/hub", "{\"v\":1,\"hub\":\"a1\",\"n\":1}", 1, true), 0);
        CHECK_INT(tc_publish(ah, ROOT "hub/status", "{\"online\":true}", 1, true), 0);
        CHECK_INT(tc_publish(ah, ROOT "zone/z1/alarm", "{\"state\":\"clear\"}", 1, true), 0);
        /* Locally, the bridge announces itself on its notification topic. */
        struct counted lw = {ah, ROOT "fed/a1/bridge", "1"};
        th_report(th_wait_until(last_is, &lw, 15000), "area broker: bridge notification 1");
    }
    /* The regional hub subscribes afterwards: what it gets was retained there. */
    struct tc_client *rh = tc_connect(reg.hub_url, NULL, HUB_USER, reg.hub_pw, NULL, &reason);
    CHECK(rh != NULL);
    if (ah && rh) {
        CHECK_INT(tc_subscribe(rh, ROOT "#", 1), 1);
        struct counted w = {rh, ROOT "fed/a1/hub", "{\"v\":1,\"hub\":\"a1\",\"n\":1}"};
        th_report(th_wait_until(last_is, &w, 15000), "retained fed/a1/hub arrived on the regional broker");
        struct counted n = {rh, ROOT "fed/a1/bridge", "1"};
        th_report(th_wait_until(last_is, &n, WAIT_MS), "regional broker: bridge notification 1");
        /* Live, and a barrier for what must not cross. */
        CHECK_INT(tc_publish(ah, ROOT "fed/a1/incident/1", "{\"v\":1,\"id\":1}", 1, true), 0);
        CHECK(tc_wait_count(rh, ROOT "fed/a1/incident/1", 1, WAIT_MS));
        CHECK_INT(tc_count(rh, ROOT "hub/status"), 0);
        CHECK_INT(tc_count(rh, ROOT "zone/z1/alarm"), 0);

        /* A reload of the area broker (every node add does one) keeps the bridge. */
        CHECK_INT(brokercfg_reload(area.pid_file, 0), 0);
        struct gone g = {&area, "Reloading config"};
        CHECK(th_wait_until(log_has, &g, WAIT_MS));
        CHECK_INT(tc_publish(ah, ROOT "fed/a1/incident/2", "{\"v\":1,\"id\":2}", 1, true), 0);
        CHECK(tc_wait_count(rh, ROOT "fed/a1/incident/2", 1, WAIT_MS));
    }
    tc_free(rh);
    rh = NULL;

    /* The link goes down: the area broker says 0 locally and keeps what the
     * hub publishes meanwhile; it crosses once the regional broker is back. */
    tb_halt(&reg.b);
    if (ah) {
        struct counted lw = {ah, ROOT "fed/a1/bridge", "0"};
        th_report(th_wait_until(last_is, &lw, WAIT_MS), "area broker: bridge notification 0 while down");
        CHECK_INT(tc_publish(ah, ROOT "fed/a1/incident/3", "{\"v\":1,\"id\":3}", 1, true), 0);
    }
    CHECK_INT(tb_restart(&reg.b), 0);
    rh = tc_connect(reg.hub_url, NULL, HUB_USER, reg.hub_pw, NULL, &reason);
    CHECK(rh != NULL);
    if (ah && rh) {
        CHECK_INT(tc_subscribe(rh, ROOT "fed/#", 1), 1);
        struct counted w = {rh, ROOT "fed/a1/incident/3", "{\"v\":1,\"id\":3}"};
        th_report(th_wait_until(last_is, &w, 45000), "published while the link was down, arrived after");
        struct counted n = {rh, ROOT "fed/a1/bridge", "1"};
        bool one = th_wait_until(last_is, &n, WAIT_MS);
        char got[32];
        tc_last_payload(rh, ROOT "fed/a1/bridge", got, sizeof got);
        th_report(one, "regional broker: notification 1 again (last \"%s\", %d messages)", got,
                  tc_count(rh, ROOT "fed/a1/bridge"));
    }
    tc_free(rh);
    tc_free(ah);
    fx_stop(&area);
    fx_stop(&reg);
}

TH_MAIN(TH_TEST(test_only_configured_listeners), TH_TEST(test_node_publishes_own_topics),
        TH_TEST(test_node_cannot_publish_elsewhere), TH_TEST(test_node_reads_only_its_own),
        TH_TEST(test_bad_logins_refused), TH_TEST(test_client_id_takeover_prevented),
        TH_TEST(test_decommission_and_rotate), TH_TEST(test_wills), TH_TEST(test_runs_as_broker_account),
        TH_TEST(test_area_accounts), TH_TEST(test_bridge_two_brokers))
