/*
 * test_broker.c - the private-broker helper itself: it starts a real
 * Mosquitto on a free loopback port, carries a retained message through a
 * persistence restart, and leaves nothing listening when stopped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>

#include "broker.h"
#include "harness.h"

/* Runs a shell command and returns its first output line in out. */
static int run_capture(const char *cmd, char *out, size_t size)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    out[0] = '\0';
    if (!fgets(out, (int)size, p))
        out[0] = '\0';
    out[strcspn(out, "\n")] = '\0';
    return pclose(p);
}

static void test_retained_survives_restart(void)
{
    struct tb_broker b;
    char cmd[512], line[256];
    CHECK_INT(tb_init(&b), 0);
    CHECK_INT(tb_start(&b, NULL), 0);
    CHECK(b.pid > 0);

    snprintf(cmd, sizeof cmd, "mosquitto_pub -V mqttv5 -p %d -h 127.0.0.1 -q 1 -r -t fw/test -m hello",
             b.port);
    CHECK_INT(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "mosquitto_sub -V mqttv5 -p %d -h 127.0.0.1 -t fw/test -C 1 -W 5", b.port);
    CHECK_INT(run_capture(cmd, line, sizeof line), 0);
    CHECK_STR(line, "hello");

    tb_halt(&b); /* SIGTERM: the broker saves its state */
    CHECK_INT(tb_restart(&b), 0);
    CHECK_INT(run_capture(cmd, line, sizeof line), 0);
    CHECK_STR(line, "hello");

    int port = b.port;
    tb_stop(&b);
    snprintf(cmd, sizeof cmd, "mosquitto_pub -p %d -h 127.0.0.1 -t x -m y 2>/dev/null", port);
    CHECK(system(cmd) != 0);
}

static void test_anonymous_refused_when_configured(void)
{
    struct tb_broker b;
    char cmd[512];
    CHECK_INT(tb_init(&b), 0);
    CHECK_INT(tb_start(&b, "allow_anonymous false"), 0);
    snprintf(cmd, sizeof cmd, "mosquitto_pub -V mqttv5 -p %d -h 127.0.0.1 -t x -m y 2>/dev/null", b.port);
    CHECK(system(cmd) != 0);
    tb_stop(&b);
}

TH_MAIN(TH_TEST(test_retained_survives_restart), TH_TEST(test_anonymous_refused_when_configured))
