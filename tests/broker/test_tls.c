/*
 * test_tls.c - the TLS listener, with certificates made by brokercfg_tls_*
 * and a configuration written by brokercfg_config_write, against a real
 * Mosquitto: a node that trusts the Firewatch CA connects over ssl:// (with
 * paho and with mosquitto_pub --cafile) and its message reaches the hub on
 * the plain loopback listener; a client trusting another CA, or speaking
 * plain MQTT to the TLS port, gets nowhere; with require_certificate the
 * node also needs its client certificate.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "brokercfg.h"
#include "client.h"
#include "harness.h"

#define WAIT_MS 5000
#define HUB_USER BROKERCFG_HUB_USER_DEFAULT
#define EVENT_TOPIC "firewatch/v1/node/n1/event"

struct fx {
    struct tb_broker b;
    int hub_port;
    char tls_dir[320];
    char tls_url[64];
    char hub_url[64];
    char cafile[400], certfile[400], keyfile[400];
    char hub_pw[BROKERCFG_PASSWORD_SIZE];
    char pw[BROKERCFG_PASSWORD_SIZE];
};

static void fx_stop(struct fx *f)
{
    char path[320], line[512];
    snprintf(path, sizeof path, "%s/mosquitto.log", f->b.dir);
    FILE *log = th_failures() > 0 ? fopen(path, "r") : NULL;
    if (log) {
        while (fgets(line, sizeof line, log))
            fprintf(stderr, "mosquitto: %s", line);
        fclose(log);
    }
    tb_stop(&f->b);
}

/* A TLS-only broker (the TLS listener is b.port) plus the hub's plain
 * loopback listener, with n1 provisioned. */
static int fx_start_names(struct fx *f, bool require_certificate, const char *const *names, size_t n)
{
    memset(f, 0, sizeof *f);
    int rc = tb_init(&f->b);
    if (rc != 0)
        return rc;
    do
        f->hub_port = tb_free_port();
    while (f->hub_port == f->b.port);
    if (f->hub_port < 0)
        return f->hub_port;
    snprintf(f->tls_url, sizeof f->tls_url, "ssl://127.0.0.1:%d", f->b.port);
    snprintf(f->hub_url, sizeof f->hub_url, "tcp://127.0.0.1:%d", f->hub_port);
    snprintf(f->tls_dir, sizeof f->tls_dir, "%s/tls", f->b.dir);

    if ((rc = brokercfg_tls_create_ca(f->tls_dir, "Firewatch test CA", 0)) != 0 ||
        (rc = brokercfg_tls_create_server(f->tls_dir, names, n, 0)) != 0 ||
        (rc = brokercfg_tls_create_client(f->tls_dir, "n1", 0)) != 0)
        return rc;
    brokercfg_tls_path(f->cafile, sizeof f->cafile, f->tls_dir, BROKERCFG_TLS_CA_CERT);
    brokercfg_tls_path(f->certfile, sizeof f->certfile, f->tls_dir, "clients/n1.crt");
    brokercfg_tls_path(f->keyfile, sizeof f->keyfile, f->tls_dir, "clients/n1.key");

    char passwd[320], acl[320], conf[320], log[320], srv_crt[400], srv_key[400];
    snprintf(passwd, sizeof passwd, "%s/passwd", f->b.dir);
    snprintf(acl, sizeof acl, "%s/acl", f->b.dir);
    snprintf(conf, sizeof conf, "%s/mosquitto.conf", f->b.dir);
    snprintf(log, sizeof log, "%s/mosquitto.log", f->b.dir);
    brokercfg_tls_path(srv_crt, sizeof srv_crt, f->tls_dir, BROKERCFG_TLS_SERVER_CERT);
    brokercfg_tls_path(srv_key, sizeof srv_key, f->tls_dir, BROKERCFG_TLS_SERVER_KEY);

    const struct brokercfg_node nodes[] = {{"n1", "z1"}};
    if ((rc = brokercfg_password_generate(f->hub_pw, sizeof f->hub_pw)) != 0 ||
        (rc = brokercfg_password_generate(f->pw, sizeof f->pw)) != 0 ||
        (rc = brokercfg_passwd_set(passwd, HUB_USER, f->hub_pw)) != 0 ||
        (rc = brokercfg_passwd_set(passwd, "n1", f->pw)) != 0 ||
        (rc = brokercfg_acl_write(acl, HUB_USER, nodes, 1)) != 0)
        return rc;

    struct brokercfg_options o;
    brokercfg_options_init(&o);
    o.node_port = 0; /* TLS only */
    o.tls_address = "127.0.0.1";
    o.tls_port = f->b.port;
    o.tls_cafile = f->cafile;
    o.tls_certfile = srv_crt;
    o.tls_keyfile = srv_key;
    o.tls_require_certificate = require_certificate;
    o.hub_port = f->hub_port;
    o.password_file = passwd;
    o.acl_file = acl;
    o.persistence_dir = f->b.dir;
    o.log_file = log;
    o.run_as_user = geteuid() == 0 ? "root" : NULL;
    if ((rc = brokercfg_config_write(&o, conf)) != 0)
        return rc;
    return tb_start_config(&f->b);
}

/* The usual broker certificate: the names the tests connect with. */
static int fx_start(struct fx *f, bool require_certificate)
{
    static const char *const names[] = {"localhost", "127.0.0.1"};
    return fx_start_names(f, require_certificate, names, 2);
}

static struct tc_client *hub(struct fx *f)
{
    int reason;
    struct tc_client *c = tc_connect(f->hub_url, NULL, HUB_USER, f->hub_pw, NULL, &reason);
    if (!c) {
        th_fail(__FILE__, __LINE__, "hub cannot connect: reason 0x%x", (unsigned)reason);
        return NULL;
    }
    CHECK_INT(tc_subscribe(c, "firewatch/v1/#", 1), 1);
    return c;
}

static void test_tls_node_connects_with_ca(void)
{
    struct fx f;
    if (fx_start(&f, false) != 0) {
        th_fail(__FILE__, __LINE__, "TLS broker did not start");
        fx_stop(&f);
        return;
    }
    struct tc_client *h = hub(&f);
    const struct tc_tls tls = {.cafile = f.cafile};
    int reason;
    struct tc_client *n1 = tc_connect(f.tls_url, NULL, "n1", f.pw, &tls, &reason);
    th_report(n1 != NULL, "n1 connects over TLS trusting the Firewatch CA (reason 0x%x)", (unsigned)reason);
    if (h && n1) {
        CHECK_INT(tc_publish(n1, EVENT_TOPIC, "{\"seq\":1}", 1, false), 0);
        CHECK(tc_wait_count(h, EVENT_TOPIC, 1, WAIT_MS));
        /* The ACL holds on the TLS listener too. */
        CHECK_INT(tc_publish(n1, "firewatch/v1/zone/z1/alarm", "{}", 1, false), 0x87);
    }
    tc_free(n1);

    /* The same with mosquitto_pub --cafile (it checks the name in the URL
     * against the subjectAltName). The password is on argv here only
     * because this is a throwaway test broker. */
    if (h) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd,
                 "mosquitto_pub -V mqttv5 --cafile %s -h localhost -p %d -u n1 -P %s -q 1 -t %s -m "
                 "'{\"seq\":2}' 2>&1",
                 f.cafile, f.b.port, f.pw, EVENT_TOPIC);
        CHECK_INT(system(cmd), 0);
        CHECK(tc_wait_count(h, EVENT_TOPIC, 2, WAIT_MS));
    }
    tc_free(h);
    fx_stop(&f);
}

static void test_tls_refusals(void)
{
    struct fx f;
    if (fx_start(&f, false) != 0) {
        th_fail(__FILE__, __LINE__, "TLS broker did not start");
        fx_stop(&f);
        return;
    }
    int reason;
    /* A client trusting some other CA does not accept the broker. */
    char other[400], other_ca[480];
    snprintf(other, sizeof other, "%s/other-ca", f.b.dir);
    CHECK_INT(brokercfg_tls_create_ca(other, "Some other CA", 0), 0);
    brokercfg_tls_path(other_ca, sizeof other_ca, other, BROKERCFG_TLS_CA_CERT);
    const struct tc_tls wrong = {.cafile = other_ca};
    struct tc_client *c = tc_connect(f.tls_url, NULL, "n1", f.pw, &wrong, &reason);
    th_report(c == NULL, "client trusting another CA fails the handshake");
    tc_free(c);

    /* Plain MQTT to the TLS port gets no CONNACK. */
    char plain[64];
    snprintf(plain, sizeof plain, "tcp://127.0.0.1:%d", f.b.port);
    c = tc_connect(plain, NULL, "n1", f.pw, NULL, &reason);
    th_report(c == NULL, "plain MQTT on the TLS port fails");
    tc_free(c);

    /* Over TLS, a wrong password is still refused. */
    const struct tc_tls tls = {.cafile = f.cafile};
    c = tc_connect(f.tls_url, NULL, "n1", "wrong-password", &tls, &reason);
    th_report(c == NULL && reason == 0x87, "wrong password over TLS refused (reason 0x%x)", (unsigned)reason);
    tc_free(c);

    /* The node listener is off in a TLS-only configuration: the hub's port is
     * the only plain one, and it is loopback only (checked by address in the
     * configuration tests). */
    fx_stop(&f);
}

static void test_tls_client_certificate_required(void)
{
    struct fx f;
    if (fx_start(&f, true) != 0) {
        th_fail(__FILE__, __LINE__, "TLS broker did not start");
        fx_stop(&f);
        return;
    }
    int reason;
    const struct tc_tls no_cert = {.cafile = f.cafile};
    struct tc_client *c = tc_connect(f.tls_url, NULL, "n1", f.pw, &no_cert, &reason);
    th_report(c == NULL, "without a client certificate the handshake fails");
    tc_free(c);

    const struct tc_tls with_cert = {.cafile = f.cafile, .certfile = f.certfile, .keyfile = f.keyfile};
    c = tc_connect(f.tls_url, NULL, "n1", f.pw, &with_cert, &reason);
    th_report(c != NULL, "with its client certificate n1 connects (reason 0x%x)", (unsigned)reason);
    if (c)
        CHECK_INT(tc_publish(c, EVENT_TOPIC, "{\"seq\":3}", 1, false), 0);
    tc_free(c);

    /* The certificate does not replace the password. */
    c = tc_connect(f.tls_url, NULL, "n1", "wrong-password", &with_cert, &reason);
    th_report(c == NULL && reason == 0x87, "certificate with a wrong password refused (reason 0x%x)",
              (unsigned)reason);
    tc_free(c);
    fx_stop(&f);
}

/* The subjectAltName is what clients check: a certificate for another name,
 * though signed by the trusted CA, is refused when connecting to 127.0.0.1. */
static void test_tls_name_checked(void)
{
    static const char *const names[] = {"broker.invalid"};
    struct fx f;
    if (fx_start_names(&f, false, names, 1) != 0) {
        th_fail(__FILE__, __LINE__, "TLS broker did not start");
        fx_stop(&f);
        return;
    }
    int reason;
    const struct tc_tls tls = {.cafile = f.cafile};
    struct tc_client *c = tc_connect(f.tls_url, NULL, "n1", f.pw, &tls, &reason);
    th_report(c == NULL, "certificate without 127.0.0.1 in subjectAltName refused by the client");
    tc_free(c);
    fx_stop(&f);
}

TH_MAIN(TH_TEST(test_tls_node_connects_with_ca), TH_TEST(test_tls_refusals), TH_TEST(test_tls_name_checked),
        TH_TEST(test_tls_client_certificate_required))
