/*
 * hubconf.h - firewatch-hub's configuration: one table row per option.
 *
 * firewatch-hub and firewatchctl read the same file (default
 * /etc/firewatch/hub.conf) through common/conf.h; hub/hub.conf.example
 * lists every row with its default and tests/hub/test_hubconf.c keeps the
 * two in step.
 */
#ifndef FIREWATCH_HUB_HUBCONF_H
#define FIREWATCH_HUB_HUBCONF_H

#include <stdbool.h>
#include <stddef.h>

#include "conf.h"

#define HUBCONF_DEFAULT_PATH "/etc/firewatch/hub.conf"

struct hub_config {
    char broker[256];   /* tcp://host:port or ssl://host:port */
    char client_id[64]; /* MQTT client id of the hub's persistent session */
    char username[64];
    char password[256];
    char cafile[256]; /* CA for ssl:// brokers; empty: system store */
    int keepalive_s;
    int session_expiry_s; /* how long the broker keeps the hub's queue while it is down */
    char database[256];
    bool db_sync_full; /* synchronous=FULL: commits survive a power cut */
    char http_listen[64];
    int retention_days;      /* raw readings */
    int verify_s;            /* incident verifying window */
    int supervision_grace_s; /* added to 3 reading intervals before a silent node is offline */
    char notify_command[512];
    int notify_timeout_s;
    int batch_ms;  /* readings commit tick */
    int batch_max; /* readings per transaction at most */
    int queue_max; /* messages waiting for the main loop */
    char log_level[16];
};

extern const struct conf_option hubconf_options[];
extern const size_t hubconf_n_options;

/* Sets defaults and loads path over them. Returns 0 or a negative errno with
 * err filled (conf_error_text formats it). */
int hubconf_load(const char *path, struct hub_config *cfg, struct conf_error *err);

/* Checks values that depend on each other (after a successful load).
 * Returns 0 or -EINVAL with err filled. */
int hubconf_validate(const struct hub_config *cfg, struct conf_error *err);

/* Prints the options, their defaults and help, for --help. */
void hubconf_print_help(void);

#endif
