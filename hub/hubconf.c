/*
 * hubconf.c - see hubconf.h. The table is the single description of every
 * option: its type, bounds, default and help line.
 */
#include "hubconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "firewatch/protocol.h"
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
    CONF_OPT_STR(S, broker_conf, "broker_conf", "/etc/firewatch/mosquitto.conf",
                 "the Mosquitto configuration firewatchctl broker config writes"),
    CONF_OPT_STR(S, broker_passwd, "broker_passwd", "/etc/firewatch/broker/passwd",
                 "the broker's password file (hashes only)"),
    CONF_OPT_STR(S, broker_acl, "broker_acl", "/etc/firewatch/broker/acl", "the broker's ACL file"),
    CONF_OPT_STR(S, broker_pid, "broker_pid", "/run/mosquitto/mosquitto.pid",
                 "the broker's pid file, for reloads after node changes"),
    CONF_OPT_STR(S, broker_persistence, "broker_persistence", "/var/lib/mosquitto",
                 "the broker's persistence directory"),
    CONF_OPT_STR(S, broker_user, "broker_user", "mosquitto",
                 "account the broker drops to when started as root"),
    CONF_OPT_STR(S, broker_listen, "broker_listen", "0.0.0.0:1883",
                 "the nodes' plain MQTT listener, host:port (empty: none)"),
    CONF_OPT_STR(S, broker_hub_listen, "broker_hub_listen", "127.0.0.1:1884", "the hub's loopback listener"),
    CONF_OPT_INT(S, broker_tls_port, "broker_tls_port", 0, 65535, "0",
                 "the nodes' MQTT over TLS listener port (0: none)"),
    CONF_OPT_STR(S, broker_tls_dir, "broker_tls_dir", "/etc/firewatch/broker/tls",
                 "CA, server and node certificates (firewatchctl broker tls)"),
    CONF_OPT_BOOL(S, broker_tls_require_cert, "broker_tls_require_cert", "false",
                  "TLS clients must also present a node certificate"),
    CONF_OPT_STR(S, node_broker_url, "node_broker_url", "tcp://hub.local:1883",
                 "broker URL written into provisioned node configs"),
    CONF_OPT_STR(S, database, "database", "/var/lib/firewatch/hub.db", "SQLite database file"),
    CONF_OPT_BOOL(S, db_sync_full, "db_sync_full", "true",
                  "fsync every commit (events survive a power cut, not only a crash)"),
    CONF_OPT_STR(S, http_listen, "http_listen", "127.0.0.1:8080",
                 "address and port of the dashboard and API (empty: no HTTP)"),
    CONF_OPT_STR(S, http_web_root, "http_web_root", "/usr/share/firewatch/web", "the dashboard's files"),
    CONF_OPT_STR(S, http_lang, "http_lang", "vi", "the dashboard's default language: vi or en"),
    CONF_OPT_BOOL(S, http_secure_cookie, "http_secure_cookie", "false",
                  "mark the session cookie Secure (when a TLS proxy serves the dashboard)"),
    CONF_OPT_STR(S, hub_id, "hub_id", "hub", "this hub's id in CAP alert identifiers"),
    CONF_OPT_STR(S, public_url, "public_url", "",
                 "the dashboard's URL as readers reach it, for links in CAP alerts (empty: no links)"),
    CONF_OPT_STR(S, cap_sender, "cap_sender", "",
                 "CAP sender, e.g. firewatch@ward7.example.org (empty: firewatch-<hub_id>)"),
    CONF_OPT_STR(S, cap_sender_name, "cap_sender_name", "", "CAP senderName, e.g. Ward 7 Firewatch"),
    CONF_OPT_BOOL(S, ha_discovery, "ha_discovery", "false", "publish Home Assistant MQTT discovery configs"),
    CONF_OPT_STR(S, ha_prefix, "ha_prefix", "homeassistant", "Home Assistant's discovery prefix"),
    CONF_OPT_STR(S, mode, "mode", "area",
                 "area (a hub of nodes) or regional (a read-only view of many areas' hubs)"),
    CONF_OPT_BOOL(S, federation, "federation", "false",
                  "publish incidents, readiness and CAP alerts for a regional view"),
    CONF_OPT_STR(S, fed_broker, "fed_broker", "",
                 "the regional broker, host:port, that the bridge forwards to (empty: no bridge)"),
    CONF_OPT_STR(S, fed_password, "fed_password", "",
                 "this area's password on the regional broker (from firewatchctl area add)"),
    CONF_OPT_STR(S, fed_cafile, "fed_cafile", "", "CA certificate of the regional broker (empty: no TLS)"),
    CONF_OPT_STR(S, fed_name, "fed_name", "",
                 "this area's name in the regional view (empty: cap_sender_name, else hub_id)"),
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
    if (strncmp(cfg->node_broker_url, "tcp://", 6) != 0 && strncmp(cfg->node_broker_url, "ssl://", 6) != 0)
        return invalid(err, "node_broker_url", "must start with tcp:// or ssl://");
    if (strcmp(cfg->http_lang, "vi") != 0 && strcmp(cfg->http_lang, "en") != 0)
        return invalid(err, "http_lang", "must be vi or en");
    if (!fw_id_valid(cfg->hub_id))
        return invalid(err, "hub_id", "must be lower-case letters, digits and '-' (at most 32)");
    if (cfg->public_url[0] && strncmp(cfg->public_url, "http://", 7) != 0 &&
        strncmp(cfg->public_url, "https://", 8) != 0)
        return invalid(err, "public_url", "must start with http:// or https://");
    if (strpbrk(cfg->cap_sender, " \t,<&"))
        return invalid(err, "cap_sender", "must not contain spaces, commas, '<' or '&'");
    if (!cfg->ha_prefix[0] || strpbrk(cfg->ha_prefix, "#+ "))
        return invalid(err, "ha_prefix", "must be a topic without spaces or wildcards");
    if (strcmp(cfg->mode, "area") != 0 && strcmp(cfg->mode, "regional") != 0)
        return invalid(err, "mode", "must be area or regional");
    if (strcmp(cfg->mode, "regional") == 0 && cfg->federation)
        return invalid(err, "federation",
                       "is for area hubs; a regional hub reads summaries, it does not send them");
    if (cfg->fed_broker[0]) {
        const char *colon = strrchr(cfg->fed_broker, ':');
        char *end = NULL;
        long port = colon ? strtol(colon + 1, &end, 10) : 0;
        if (!colon || colon == cfg->fed_broker || !end || *end || port < 1 || port > 65535 ||
            strpbrk(cfg->fed_broker, " \t/"))
            return invalid(err, "fed_broker", "must be host:port, e.g. region.example.org:8883");
        if (!cfg->federation)
            return invalid(err, "fed_broker", "is set but federation is false");
        if (!cfg->fed_password[0])
            return invalid(err, "fed_password",
                           "must be set with fed_broker (firewatchctl area add prints it)");
    }
    if (strpbrk(cfg->fed_password, " \t\r\n"))
        return invalid(err, "fed_password", "must not contain spaces or line breaks");
    if (strpbrk(cfg->fed_name, "\r\n"))
        return invalid(err, "fed_name", "must not contain line breaks");
    return 0;
}

void hubconf_print_help(void)
{
    printf("Config options (file %s; one `key value` per line):\n", HUBCONF_DEFAULT_PATH);
    for (size_t i = 0; i < hubconf_n_options; i++)
        printf("  %-20s %s (default: %s)\n", hubconf_options[i].key, hubconf_options[i].help,
               hubconf_options[i].def[0] ? hubconf_options[i].def : "empty");
}
