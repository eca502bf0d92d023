/*
 * test_fleet.c - the fleet simulator against a real broker: every node is
 * born with a valid retained status, readings decode with the protocol
 * library, selftest commands are answered, and scripted offline nodes stay
 * away.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker.h"
#include "firewatch/protocol.h"
#include "harness.h"

static bool file_exists(void *path)
{
    return access(path, R_OK) == 0;
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
}

TH_MAIN(TH_TEST(test_fleet_publishes_valid_traffic), TH_TEST(test_fleet_help_and_bad_args))
