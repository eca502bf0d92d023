/*
 * config.c - the option table of firewatch-node and the checks a range in
 * the table cannot express. Keep firmware/node.conf.example in step (a test
 * checks it with conf_check_example).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define C struct node_config
const struct conf_option node_options[] = {
    CONF_OPT_STR(C, id, "id", "", "node id, [a-z0-9][a-z0-9-]{0,31}; also the MQTT client id (required)"),
    CONF_OPT_STR(C, zone, "zone", "", "zone id whose alarm topic drives the neighbour pattern (\"\": none)"),
    CONF_OPT_STR(C, kind, "kind", "combo", "detector kind: smoke, heat or combo"),
    CONF_OPT_STR(C, broker, "broker", "tcp://127.0.0.1:1883",
                 "broker URL, tcp://host:port or ssl://host:port"),
    CONF_OPT_STR(C, username, "username", "", "broker user name (\"\": none)"),
    CONF_OPT_STR(C, password, "password", "", "broker password"),
    CONF_OPT_STR(C, cafile, "cafile", "", "CA certificate file for ssl:// (\"\": system store)"),
    CONF_OPT_INT(C, interval_s, "interval_s", 5, 86400, "60", "seconds between readings"),
    CONF_OPT_INT(C, sample_ms, "sample_ms", 100, 60000, "2000", "milliseconds between temperature samples"),
    CONF_OPT_STR(C, state_dir, "state_dir", "/var/lib/firewatch-node", "where the boot counter is kept"),
    CONF_OPT_INT(C, keepalive_s, "keepalive_s", 2, 3600, "60", "MQTT keep-alive, seconds"),
    CONF_OPT_INT(C, reconnect_max_s, "reconnect_max_s", 1, 3600, "60", "longest wait between reconnects"),
    CONF_OPT_INT(C, queue_max, "queue_max", 8, 100000, "500", "messages kept while the broker is away"),
    CONF_OPT_STR(C, log_level, "log_level", "info", "error, warn, info or debug"),
    CONF_OPT_STR(C, hw.backend, "backend", "gpiod", "hardware backend: gpiod or sim"),
    CONF_OPT_STR(C, hw.scenario, "scenario", "", "sim: scenario CSV to replay"),
    CONF_OPT_DOUBLE(C, hw.speed, "speed", 0.001, 100000, "1", "sim: replay speed (1 = real time)"),
    CONF_OPT_STR(C, hw.sim_log, "sim_log", "", "sim: file recording sounder and LED changes (\"\": none)"),
    CONF_OPT_STR(C, hw.chip, "gpio_chip", "gpiochip0", "gpio chip name or /dev path"),
    CONF_OPT_INT(C, hw.smoke_line, "smoke_line", -1, 1023, "17", "smoke input line (-1: none)"),
    CONF_OPT_BOOL(C, hw.smoke_active_low, "smoke_active_low", "true",
                  "smoke input is active low (optocoupler)"),
    CONF_OPT_INT(C, hw.hush_line, "hush_line", -1, 1023, "27", "hush button line (-1: none)"),
    CONF_OPT_INT(C, hw.fire_line, "fire_line", -1, 1023, "22",
                 "fire button (manual call point) line (-1: none)"),
    CONF_OPT_INT(C, hw.test_line, "test_line", -1, 1023, "-1", "test button line (-1: none)"),
    CONF_OPT_BOOL(C, hw.buttons_active_low, "buttons_active_low", "true", "buttons pull the line low"),
    CONF_OPT_INT(C, hw.sounder_line, "sounder_line", -1, 1023, "23", "sounder output line (-1: none)"),
    CONF_OPT_BOOL(C, hw.sounder_active_low, "sounder_active_low", "false", "sounder output is active low"),
    CONF_OPT_INT(C, hw.led_line, "led_line", -1, 1023, "24", "LED output line (-1: none)"),
    CONF_OPT_BOOL(C, hw.led_active_low, "led_active_low", "false", "LED output is active low"),
    CONF_OPT_INT(C, hw.debounce_ms, "debounce_ms", 0, 1000, "30", "input debounce, milliseconds"),
    CONF_OPT_STR(C, hw.temp_source, "temp_source", "w1", "temperature sensor: w1 (DS18B20), iio or none"),
    CONF_OPT_STR(C, hw.w1_path, "w1_path", "auto", "DS18B20 temperature or w1_slave file (auto: first 28-*)"),
    CONF_OPT_STR(C, hw.iio_dir, "iio_dir", "/sys/bus/iio/devices/iio:device0", "IIO device directory"),
    CONF_OPT_STR(C, hw.battery, "battery", "auto", "power_supply directory, auto or none"),
    CONF_OPT_DOUBLE(C, det.fixed_c, "fixed_c", 40, 120, "57", "fixed heat alarm, deg C"),
    CONF_OPT_DOUBLE(C, det.ror_c_per_min, "ror_c_per_min", 1, 60, "8.3",
                    "rate-of-rise alarm, deg C per minute"),
    CONF_OPT_INT(C, det.ror_window_s, "ror_window_s", 20, 600, "60", "rate-of-rise window, seconds"),
    CONF_OPT_DOUBLE(C, det.comp_c, "comp_c", 30, 120, "46", "rate-compensated threshold, deg C"),
    CONF_OPT_DOUBLE(C, det.comp_c_per_min, "comp_c_per_min", 0.5, 60, "4",
                    "rate-compensated threshold applies above this rise, deg C/min"),
    CONF_OPT_INT(C, det.smoke_confirm_ms, "smoke_confirm_ms", 0, 30000, "500",
                 "smoke must persist this long"),
    CONF_OPT_INT(C, det.hush_max_s, "hush_max_s", 10, 600, "600",
                 "longest hush, seconds (at most 10 minutes)"),
    CONF_OPT_INT(C, det.button_hold_s, "button_hold_s", 10, 3600, "300",
                 "a fire-button alarm lasts, seconds"),
    CONF_OPT_INT(C, det.low_batt_pct, "low_batt_pct", 5, 50, "20", "low battery trouble below, percent"),
    CONF_OPT_INT(C, det.fault_reads, "fault_reads", 1, 100, "3", "bad reads in a row before a sensor fault"),
    CONF_OPT_INT(C, det.stuck_s, "stuck_s", 0, 604800, "21600",
                 "unchanged temperature for this long is a fault"),
};
#undef C
const size_t node_options_count = sizeof node_options / sizeof node_options[0];

/* Finds the line of "key ..." in text (for errors about a value), or 0. */
static int line_of(const char *text, const char *key)
{
    if (!text)
        return 0;
    size_t kl = strlen(key);
    int line = 1;
    for (const char *p = text; *p; line++) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncmp(p, key, kl) == 0 &&
            (p[kl] == ' ' || p[kl] == '\t' || p[kl] == '\n' || p[kl] == '\r' || p[kl] == '\0'))
            return line;
        const char *nl = strchr(p, '\n');
        if (!nl)
            break;
        p = nl + 1;
    }
    return 0;
}

static int bad(struct conf_error *err, const char *text, const char *key, const char *why)
{
    err->line = line_of(text, key);
    snprintf(err->key, sizeof err->key, "%s", key);
    snprintf(err->msg, sizeof err->msg, "%s", why);
    return -EINVAL;
}

static bool one_of(const char *v, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(v, *list) == 0)
            return true;
    return false;
}

int node_config_validate(struct node_config *c, const char *name, const char *text, struct conf_error *err)
{
    static const char *const backends[] = {"gpiod", "sim", NULL};
    static const char *const sources[] = {"w1", "iio", "none", NULL};
    enum fw_node_kind kind;
    enum log_level lvl;

    memset(err, 0, sizeof *err);
    snprintf(err->file, sizeof err->file, "%s", name ? name : "(config)");
    if (c->id[0] == '\0')
        return bad(err, text, "id", "required: set the node's id");
    if (!fw_id_valid(c->id))
        return bad(err, text, "id", "must match [a-z0-9][a-z0-9-]{0,31}");
    if (c->zone[0] && !fw_id_valid(c->zone))
        return bad(err, text, "zone", "must match [a-z0-9][a-z0-9-]{0,31}");
    if (fw_kind_parse(c->kind, &kind) < 0)
        return bad(err, text, "kind", "must be smoke, heat or combo");
    if (strncmp(c->broker, "tcp://", 6) != 0 && strncmp(c->broker, "ssl://", 6) != 0)
        return bad(err, text, "broker", "must start with tcp:// or ssl://");
    const char *colon = strrchr(c->broker + 6, ':');
    if (c->broker[6] == '\0' || !colon || colon[1] == '\0' ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1))
        return bad(err, text, "broker", "must be tcp://host:port or ssl://host:port");
#ifdef FW_NODE_NO_TLS
    if (strncmp(c->broker, "ssl://", 6) == 0)
        return bad(err, text, "broker", "this build has no TLS (built with NODE_TLS=0)");
#endif
    if (!one_of(c->hw.backend, backends))
        return bad(err, text, "backend", "must be gpiod or sim");
    if (strcmp(c->hw.backend, "sim") == 0 && c->hw.scenario[0] == '\0')
        return bad(err, text, "scenario", "required with backend sim");
    if (!one_of(c->hw.temp_source, sources))
        return bad(err, text, "temp_source", "must be w1, iio or none");
    if (log_level_parse(c->log_level, &lvl) < 0)
        return bad(err, text, "log_level", "must be error, warn, info or debug");
    if (c->det.comp_c >= c->det.fixed_c)
        return bad(err, text, "comp_c", "must be below fixed_c");
    if (c->state_dir[0] == '\0')
        return bad(err, text, "state_dir", "must not be empty");
    return 0;
}

int node_config_load(const char *path, struct node_config *c, struct conf_error *err)
{
    memset(c, 0, sizeof *c);
    detect_config_default(&c->det); /* the fields the table leaves out */
    int rc = conf_defaults(node_options, node_options_count, c, err);
    if (rc < 0)
        return rc;
    rc = conf_load(path, node_options, node_options_count, c, err);
    if (rc < 0)
        return rc;
    /* Re-read the text only to point value errors at their line. */
    char *text = NULL;
    FILE *f = fopen(path, "rb");
    if (f) {
        text = calloc(1, 64 * 1024 + 1);
        if (text && fread(text, 1, 64 * 1024, f) == 0 && ferror(f)) {
            free(text);
            text = NULL;
        }
        fclose(f);
    }
    rc = node_config_validate(c, path, text, err);
    free(text);
    return rc;
}
