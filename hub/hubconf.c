/*
 * hubconf.c - see hubconf.h. The table is the single description of every
 * option: its type, bounds, default and help line.
 */
#include "hubconf.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

#define S struct hub_config
const struct conf_option hubconf_options[] = {
    CONF_OPT_STR(S, broker, "broker", "tcp://127.0.0.1:1883", "MQTT broker URL (tcp:// or ssl://)"),
    CONF_OPT_STR(S, client_id, "client_id", "firewatch-hub",
                 "MQTT client id of the hub's persistent session"),
    CONF_OPT_STR(S, username, "username", "", "broker user name (empty: none)"),
    CONF_OPT_STR(S, password, "password", "", "broker password"),
    CONF_OPT_STR(S, cafile, "cafile", "", "CA certificate for ssl:// brokers (empty: system store)"),
    CONF_OPT_INT(S, keepalive_s, "keepalive_s", 5, 3600, "30", "MQTT keep-alive in seconds"),
    CONF_OPT_INT(S, session_expiry_s, "session_expiry_s", 60, 2147483647, "604800",
                 "seconds the broker keeps queuing events for the hub while it is down"),
    CONF_OPT_STR(S, database, "database", "/var/lib/firewatch/hub.db", "SQLite database file"),
    CONF_OPT_BOOL(S, db_sync_full, "db_sync_full", "true",
                  "fsync every commit (events survive a power cut, not only a crash)"),
    CONF_OPT_STR(S, http_listen, "http_listen", "0.0.0.0:8080", "address and port of the dashboard and API"),
    CONF_OPT_INT(S, retention_days, "retention_days", 1, 3650, "14", "days raw readings are kept"),
    CONF_OPT_INT(S, verify_s, "verify_s", 1, 600, "20",
                 "seconds an alarm stays verifying before it escalates"),
    CONF_OPT_INT(S, supervision_grace_s, "supervision_grace_s", 0, 3600, "30",
                 "seconds added to 3 reading intervals before a silent node is offline"),
    CONF_OPT_STR(S, notify_command, "notify_command", "",
                 "command run with the notification as JSON on stdin (empty: none)"),
    CONF_OPT_INT(S, notify_timeout_s, "notify_timeout_s", 1, 600, "10",
                 "seconds before the notifier is killed"),
    CONF_OPT_INT(S, batch_ms, "batch_ms", 10, 10000, "250", "milliseconds between readings commits"),
    CONF_OPT_INT(S, batch_max, "batch_max", 1, 100000, "2000", "readings per transaction at most"),
    CONF_OPT_INT(S, queue_max, "queue_max", 64, 1000000, "20000",
                 "messages waiting for the main loop before readings are dropped"),
    CONF_OPT_STR(S, log_level, "log_level", "info", "error, warn, info or debug"),
};
#undef S
const size_t hubconf_n_options = sizeof hubconf_options / sizeof hubconf_options[0];

int hubconf_load(const char *path, struct hub_config *cfg, struct conf_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    int rc = conf_defaults(hubconf_options, hubconf_n_options, cfg, err);
    if (rc < 0)
        return rc;
    rc = conf_load(path, hubconf_options, hubconf_n_options, cfg, err);
    if (rc < 0)
        return rc;
    return hubconf_validate(cfg, err);
}

static int invalid(struct conf_error *err, const char *key, const char *msg)
{
    if (err) {
        err->line = 0;
        snprintf(err->key, sizeof err->key, "%s", key);
        snprintf(err->msg, sizeof err->msg, "%s", msg);
    }
    return -EINVAL;
}

int hubconf_validate(const struct hub_config *cfg, struct conf_error *err)
{
    enum log_level lvl;
    if (strncmp(cfg->broker, "tcp://", 6) != 0 && strncmp(cfg->broker, "ssl://", 6) != 0 &&
        strncmp(cfg->broker, "mqtt://", 7) != 0 && strncmp(cfg->broker, "mqtts://", 8) != 0)
        return invalid(err, "broker", "must start with tcp:// or ssl://");
    if (cfg->database[0] == '\0')
        return invalid(err, "database", "must not be empty");
    if (cfg->client_id[0] == '\0')
        return invalid(err, "client_id", "must not be empty");
    if (log_level_parse(cfg->log_level, &lvl) < 0)
        return invalid(err, "log_level", "must be error, warn, info or debug");
    if (cfg->password[0] && !cfg->username[0])
        return invalid(err, "password", "is set but username is empty");
    return 0;
}

void hubconf_print_help(void)
{
    printf("Config options (file %s; one `key value` per line):\n", HUBCONF_DEFAULT_PATH);
    for (size_t i = 0; i < hubconf_n_options; i++)
        printf("  %-20s %s (default: %s)\n", hubconf_options[i].key, hubconf_options[i].help,
               hubconf_options[i].def[0] ? hubconf_options[i].def : "empty");
}
