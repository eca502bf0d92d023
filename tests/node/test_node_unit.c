/*
 * test_node_unit.c - the node's modules below the main loop: config (every
 * refusal names file, line and key; the example file matches the table),
 * scenario CSV parsing, the sysfs readers against files this test writes,
 * the gpiod backend's error for a missing chip, the outgoing queue's
 * drop order, software debounce, sounder patterns and the boot counter.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "harness.h"
#include "hw.h"
#include "outq.h"
#include "scenario.h"
#include "state.h"
#include "sysfs.h"

static char dir[256];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static const char *tmp_path(const char *name)
{
    static char p[200];
    if (!dir[0])
        snprintf(dir, sizeof dir, "%s", th_tmpdir("node-unit"));
    snprintf(p, sizeof p, "%.120s/%s", dir, name);
    return p;
}

static void test_example_matches_table(void)
{
    struct conf_error err;
    char msg[512];
    int rc = conf_check_example(th_root_path("firmware/node.conf.example"), node_options, node_options_count,
                                &err);
    if (rc < 0)
        th_fail(__FILE__, __LINE__, "%s", conf_error_text(&err, msg, sizeof msg));
    /* The example, with an id, is a valid config. */
    struct node_config c;
    char path[512];
    snprintf(path, sizeof path, "%s", tmp_path("ex.conf"));
    FILE *in = fopen(th_root_path("firmware/node.conf.example"), "r");
    FILE *out = fopen(path, "w");
    CHECK(in && out);
    if (in && out) {
        char line[512];
        while (fgets(line, sizeof line, in))
            fputs(line, out);
        fputs("id node-7\n", out);
    }
    if (in)
        fclose(in);
    if (out)
        fclose(out);
    rc = node_config_load(path, &c, &err);
    if (rc < 0)
        th_fail(__FILE__, __LINE__, "%s", conf_error_text(&err, msg, sizeof msg));
    CHECK_STR(c.id, "node-7");
    CHECK_INT(c.interval_s, 60);
    CHECK(c.det.fixed_c == 57.0);
    CHECK(c.det.temp_max_c == 125.0); /* not in the table, from detect_config_default */
}

static void test_config_refusals(void)
{
    static const struct {
        const char *text;
        int line;
        const char *key;
        const char *why;
    } rows[] = {
        {"zone z\n", 0, "id", "required"},
        {"# hi\nid Node_1\n", 2, "id", "must match"},
        {"id n1\nzone\nbroker mqtt://x:1\n", 3, "broker", "tcp:// or ssl://"},
        {"id n1\nbroker tcp://host\n", 2, "broker", "host:port"},
        {"id n1\nbackend sim\n", 0, "scenario", "required with backend sim"},
        {"id n1\nbackend spi\n", 2, "backend", "gpiod or sim"},
        {"id n1\ninterval_s 2\n", 2, "interval_s", "out of range"},
        {"id n1\nhush_max_s 900\n", 2, "hush_max_s", "out of range"},
        {"id n1\nfixed_c 50\ncomp_c 55\n", 3, "comp_c", "below fixed_c"},
        {"id n1\nbogus 1\n", 2, "bogus", "unknown option"},
        {"id n1\ntemp_source spi\n", 2, "temp_source", "w1, iio or none"},
        {"id n1\nkind smoky\n", 2, "kind", "smoke, heat or combo"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct node_config c;
        struct conf_error err;
        char msg[512];
        write_file(tmp_path("bad.conf"), rows[i].text);
        int rc = node_config_load(tmp_path("bad.conf"), &c, &err);
        conf_error_text(&err, msg, sizeof msg);
        bool ok = rc == -EINVAL && err.line == rows[i].line && strcmp(err.key, rows[i].key) == 0 &&
                  strstr(err.msg, rows[i].why) && strstr(msg, "bad.conf");
        th_report(ok, "config refuses %s: %s", rows[i].key, msg);
    }
}

static void test_scenario_parse(void)
{
    struct scenario sc;
    char err[160];
    const char *good = "# comment\n" SCENARIO_HEADER "\n0,20,0,90,\n10,30.5,1,,fire\n10,,0,50,hush\n";
    CHECK_INT(scenario_parse(good, strlen(good), &sc, err, sizeof err), 0);
    CHECK_INT((long long)sc.n, 3);
    struct scenario_state st;
    scenario_at(&sc, 5000, &st);
    CHECK(st.temp_ok && st.temp_c > 25.2 && st.temp_c < 25.3); /* interpolated */
    CHECK(!st.smoke && st.batt_ok && st.batt_pct == 90);
    scenario_at(&sc, 20000, &st);
    CHECK(!st.temp_ok && !st.smoke && st.batt_pct == 50);
    size_t cur = 0;
    CHECK_INT(scenario_next_button(&sc, &cur, -1, 9999), DET_BTN_NONE);
    CHECK_INT(scenario_next_button(&sc, &cur, 9999, 10000), DET_BTN_FIRE);
    CHECK_INT(scenario_next_button(&sc, &cur, 9999, 10000), DET_BTN_HUSH);
    CHECK_INT(scenario_next_button(&sc, &cur, 10000, 99999), DET_BTN_NONE);
    scenario_free(&sc);

    static const struct {
        const char *text;
        const char *why;
    } bad[] = {
        {"", "no header"},
        {"t,temp\n", "line 1: first line must be the header"},
        {SCENARIO_HEADER "\n", "no rows"},
        {SCENARIO_HEADER "\n0,20,0,90\n", "line 2: expected 5 fields"},
        {SCENARIO_HEADER "\n0,20,0,90,,x\n", "line 2: more than 5 fields"},
        {SCENARIO_HEADER "\n-1,20,0,90,\n", "t_s"},
        {SCENARIO_HEADER "\n0,hot,0,90,\n", "temp_c"},
        {SCENARIO_HEADER "\n0,20,2,90,\n", "smoke"},
        {SCENARIO_HEADER "\n0,20,0,101,\n", "batt_pct"},
        {SCENARIO_HEADER "\n0,20,0,9.5,\n", "batt_pct"},
        {SCENARIO_HEADER "\n0,20,0,90,press\n", "button"},
        {SCENARIO_HEADER "\n5,20,0,90,\n4,20,0,90,\n", "line 3: t_s goes backwards"},
        {SCENARIO_HEADER "\n0,nan,0,90,\n", "temp_c"},
        {SCENARIO_HEADER "\n0,1e999,0,90,\n", "temp_c"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = scenario_parse(bad[i].text, strlen(bad[i].text), &sc, err, sizeof err);
        th_report(rc == -EINVAL && strstr(err, bad[i].why) != NULL, "scenario refuses '%s': %s", bad[i].why,
                  err);
    }
    CHECK_INT(scenario_load(tmp_path("missing.csv"), &sc, err, sizeof err), -ENOENT);
    CHECK(strstr(err, "missing.csv") != NULL);
}

static void test_sysfs_readers(void)
{
    double c = 0;
    int pct = 0;
    char path[512], found[512];
    /* w1_slave text, good and bad CRC. */
    CHECK_INT(sysfs_parse_w1_slave(
                  "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n", &c),
              0);
    CHECK(c == 23.125);
    CHECK_INT(sysfs_parse_w1_slave("72 01 4b 46 7f ff 0e 10 57 : crc=57 NO\n72 01 t=23125\n", &c), -EIO);
    CHECK_INT(sysfs_parse_w1_slave("garbage", &c), -EINVAL);
    /* A fake /sys/bus/w1/devices with two sensors; the lowest id wins. */
    snprintf(path, sizeof path, "%s", tmp_path("w1"));
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s", tmp_path("w1/28-0000000bbbbb"));
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s", tmp_path("w1/28-0000000aaaaa"));
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s", tmp_path("w1/w1_bus_master1"));
    mkdir(path, 0755);
    write_file(tmp_path("w1/28-0000000aaaaa/w1_slave"), "50 05 4b 46 7f ff 0c 10 1c : crc=1c YES\n"
                                                        "50 05 4b 46 7f ff 0c 10 1c t=-1250\n");
    CHECK_INT(sysfs_find_w1(tmp_path("w1"), found, sizeof found), 0);
    CHECK(strstr(found, "28-0000000aaaaa/w1_slave") != NULL);
    CHECK_INT(sysfs_read_w1(found, &c), 0);
    CHECK(c == -1.25);
    write_file(tmp_path("w1/28-0000000aaaaa/temperature"), "57062\n");
    CHECK_INT(sysfs_find_w1(tmp_path("w1"), found, sizeof found), 0);
    CHECK(strstr(found, "28-0000000aaaaa/temperature") != NULL);
    CHECK_INT(sysfs_read_w1(found, &c), 0);
    CHECK(c == 57.062);
    CHECK_INT(sysfs_find_w1(tmp_path("nothing"), found, sizeof found), -ENOENT);
    /* IIO: processed value, then raw + offset + scale. */
    snprintf(path, sizeof path, "%s", tmp_path("iio"));
    mkdir(path, 0755);
    CHECK_INT(sysfs_read_iio(path, &c), -ENOENT);
    write_file(tmp_path("iio/in_temp_raw"), "1000\n");
    write_file(tmp_path("iio/in_temp_offset"), "-500\n");
    write_file(tmp_path("iio/in_temp_scale"), "50.5\n");
    CHECK_INT(sysfs_read_iio(path, &c), 0);
    CHECK(c > 25.24 && c < 25.26);
    write_file(tmp_path("iio/in_temp_scale"), "fifty\n");
    CHECK_INT(sysfs_read_iio(path, &c), -EINVAL);
    write_file(tmp_path("iio/in_temp_input"), "31500\n");
    CHECK_INT(sysfs_read_iio(path, &c), 0);
    CHECK(c == 31.5);
    /* power_supply: the mains supply is skipped, the battery found. */
    snprintf(path, sizeof path, "%s", tmp_path("ps"));
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s", tmp_path("ps/AC"));
    mkdir(path, 0755);
    write_file(tmp_path("ps/AC/type"), "Mains\n");
    snprintf(path, sizeof path, "%s", tmp_path("ps/BAT0"));
    mkdir(path, 0755);
    write_file(tmp_path("ps/BAT0/type"), "Battery\n");
    write_file(tmp_path("ps/BAT0/capacity"), "17\n");
    CHECK_INT(sysfs_find_battery(tmp_path("ps"), found, sizeof found), 0);
    CHECK(strstr(found, "BAT0") != NULL);
    CHECK_INT(sysfs_read_battery(found, &pct), 0);
    CHECK_INT(pct, 17);
    write_file(tmp_path("ps/BAT0/capacity"), "x\n");
    CHECK_INT(sysfs_read_battery(found, &pct), -EINVAL);
}

static struct hw_config base_hw(void)
{
    struct hw_config h;
    memset(&h, 0, sizeof h);
    h.speed = 1;
    h.smoke_line = 17;
    h.hush_line = 27;
    h.fire_line = 22;
    h.test_line = -1;
    h.sounder_line = 23;
    h.led_line = 24;
    h.debounce_ms = 30;
    snprintf(h.temp_source, sizeof h.temp_source, "none");
    snprintf(h.battery, sizeof h.battery, "none");
    return h;
}

static void test_hw_errors(void)
{
    char err[256];
    struct hw_config h = base_hw();
    snprintf(h.backend, sizeof h.backend, "gpiod");
    snprintf(h.chip, sizeof h.chip, "gpiochip-fw-missing");
    struct hw *hw = hw_open(&h, err, sizeof err);
    CHECK(hw == NULL);
    CHECK(strstr(err, "gpio chip 'gpiochip-fw-missing'") != NULL);
    th_report(hw == NULL && strstr(err, "gpiochip-fw-missing"), "missing chip named: %s", err);
    snprintf(h.chip, sizeof h.chip, "/dev/gpiochip-fw-missing");
    hw = hw_open(&h, err, sizeof err);
    th_report(hw == NULL && strstr(err, "/dev/gpiochip-fw-missing"), "missing chip path named: %s", err);
    hw_close(hw);

    snprintf(h.backend, sizeof h.backend, "sim");
    snprintf(h.scenario, sizeof h.scenario, "%s", tmp_path("none.csv"));
    hw = hw_open(&h, err, sizeof err);
    th_report(hw == NULL && strstr(err, "none.csv"), "missing scenario named: %s", err);
    snprintf(h.backend, sizeof h.backend, "spi");
    hw = hw_open(&h, err, sizeof err);
    th_report(hw == NULL && strstr(err, "spi"), "unknown backend named: %s", err);
}

static void test_sim_backend(void)
{
    char err[256], log_path[512];
    struct hw_config h = base_hw();
    snprintf(h.backend, sizeof h.backend, "sim");
    snprintf(h.scenario, sizeof h.scenario, "%s", tmp_path("s.csv"));
    snprintf(log_path, sizeof log_path, "%s", tmp_path("sim.log"));
    snprintf(h.sim_log, sizeof h.sim_log, "%.200s", log_path);
    h.speed = 1000;
    write_file(h.scenario, SCENARIO_HEADER "\n0,21.5,0,77,\n1,21.5,1,77,fire\n");
    struct hw *hw = hw_open(&h, err, sizeof err);
    CHECK(hw != NULL);
    if (!hw)
        return;
    struct hw_sample s;
    hw_sample(hw, &s);
    CHECK(s.temp_ok && s.temp_c == 21.5 && s.batt_ok && s.batt_pct == 77);
    CHECK(hw_real_delay_ms(hw, 1000) == 1);
    hw_set_outputs(hw, DET_PAT_ALARM, DET_LED_ALARM, 0);
    hw_close(hw);
    FILE *f = fopen(log_path, "r");
    char buf[1024] = "";
    if (f) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        fclose(f);
    }
    CHECK(strstr(buf, " sounder alarm\n") != NULL);
    CHECK(strstr(buf, " led alarm\n") != NULL);
}

static void test_outq_drop_order(void)
{
    struct outq *q = outq_new(4);
    CHECK(q != NULL);
    if (!q)
        return;
    CHECK_INT(outq_push(q, FW_CH_NODE_READING, 0, false, OUTQ_READING, "r1", 2), 0);
    CHECK_INT(outq_push(q, FW_CH_NODE_EVENT, 1, false, OUTQ_ALARM, "a1", 2), 0);
    CHECK_INT(outq_push(q, FW_CH_NODE_READING, 0, false, OUTQ_READING, "r2", 2), 0);
    CHECK_INT(outq_push(q, FW_CH_NODE_EVENT, 1, false, OUTQ_EVENT, "t1", 2), 0);
    /* Full: an alarm pushes out the oldest reading, then the next. */
    CHECK_INT(outq_push(q, FW_CH_NODE_EVENT, 1, false, OUTQ_ALARM, "a2", 2), 1);
    CHECK_INT(outq_push(q, FW_CH_NODE_EVENT, 1, false, OUTQ_ALARM, "a3", 2), 1);
    /* No readings left: a reading is refused; an alarm pushes out the trouble event. */
    CHECK_INT(outq_push(q, FW_CH_NODE_READING, 0, false, OUTQ_READING, "r3", 2), -ENOBUFS);
    CHECK_INT(outq_push(q, FW_CH_NODE_EVENT, 1, false, OUTQ_ALARM, "a4", 2), 1);
    /* All alarms: the newest is refused, the old ones are kept. */
    CHECK_INT(outq_push(q, FW_CH_NODE_EVENT, 1, false, OUTQ_ALARM, "a5", 2), -ENOBUFS);
    const char *want[] = {"a1", "a2", "a3", "a4"};
    for (int i = 0; i < 4; i++) {
        const struct outq_msg *m = outq_peek(q);
        CHECK(m != NULL);
        if (m)
            CHECK_STR(m->payload, want[i]);
        outq_pop(q);
    }
    CHECK(outq_peek(q) == NULL);
    CHECK_INT(outq_dropped(q, OUTQ_READING), 3);
    CHECK_INT(outq_dropped(q, OUTQ_EVENT), 1);
    CHECK_INT(outq_dropped(q, OUTQ_ALARM), 1);
    CHECK_INT(outq_event_class(FW_EV_ALARM), OUTQ_ALARM);
    CHECK_INT(outq_event_class(FW_EV_CMD_RESULT), OUTQ_EVENT);
    outq_free(q);
}

static void test_debounce_and_patterns(void)
{
    struct hw_debounce d = {0};
    hw_debounce_feed(&d, true, 100);
    CHECK_INT(hw_debounce_update(&d, 120, 30), 0);
    hw_debounce_feed(&d, false, 125); /* a bounce */
    hw_debounce_feed(&d, true, 128);
    CHECK_INT(hw_debounce_next(&d, 30), 158);
    CHECK_INT(hw_debounce_update(&d, 157, 30), 0);
    CHECK_INT(hw_debounce_update(&d, 158, 30), 1);
    CHECK_INT(hw_debounce_update(&d, 500, 30), 0);
    CHECK(hw_debounce_next(&d, 30) == INT64_MAX);

    int64_t next;
    /* temporal-three: on .5 off .5 on .5 off .5 on .5 off 1.5 */
    CHECK(hw_pattern_level(DET_PAT_ALARM, 0, &next) && next == 500);
    CHECK(!hw_pattern_level(DET_PAT_ALARM, 600, &next) && next == 1000);
    CHECK(hw_pattern_level(DET_PAT_ALARM, 2100, &next) && next == 2500);
    CHECK(!hw_pattern_level(DET_PAT_ALARM, 3000, &next) && next == 4000);
    CHECK(hw_pattern_level(DET_PAT_ALARM, 4000, &next));
    /* The neighbour pattern differs from the alarm within the first cycle. */
    CHECK(hw_pattern_level(DET_PAT_NEIGHBOUR, 600, &next) && next == 1000);
    CHECK(!hw_pattern_level(DET_PAT_OFF, 600, &next) && next == INT64_MAX);
    CHECK(hw_led_level(DET_LED_ALARM, 12345, &next) && next == INT64_MAX);
}

static void test_boot_counter(void)
{
    char sd[512];
    uint32_t boot = 0;
    snprintf(sd, sizeof sd, "%s", tmp_path("state"));
    CHECK_INT(state_next_boot(sd, &boot), 0);
    CHECK_INT(boot, 1);
    CHECK_INT(state_next_boot(sd, &boot), 0);
    CHECK_INT(boot, 2);
    write_file(tmp_path("state/boot"), "41\n");
    CHECK_INT(state_next_boot(sd, &boot), 0);
    CHECK_INT(boot, 42);
    struct stat st;
    CHECK(stat(tmp_path("state/boot.tmp"), &st) != 0); /* renamed away */
    CHECK(state_next_boot("/proc/no/such/dir", &boot) < 0);
    CHECK_INT(boot, 1);
}

static void test_cleanup(void)
{
    th_rmtree(dir);
}

TH_MAIN(TH_TEST(test_example_matches_table), TH_TEST(test_config_refusals), TH_TEST(test_scenario_parse),
        TH_TEST(test_sysfs_readers), TH_TEST(test_hw_errors), TH_TEST(test_sim_backend),
        TH_TEST(test_outq_drop_order), TH_TEST(test_debounce_and_patterns), TH_TEST(test_boot_counter),
        TH_TEST(test_cleanup))
