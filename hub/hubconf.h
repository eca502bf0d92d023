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
    /* The broker firewatchctl manages (broker config, node add, ...): */
    char broker_conf[256];        /* the mosquitto.conf it writes */
    char broker_passwd[256];      /* password file ($7$ hashes) */
    char broker_acl[256];         /* ACL file */
    char broker_pid[256];         /* the running broker's pid file, for SIGHUP reloads */
    char broker_persistence[256]; /* the broker's persistence directory */
    char broker_user[64];         /* account Mosquitto drops to when started as root */
    char broker_listen[64];       /* nodes' plain listener, host:port; port 0 or empty: none */
    char broker_hub_listen[64];   /* the hub's loopback listener, 127.0.0.1:port */
    int broker_tls_port;          /* nodes' TLS listener; 0: none */
    char broker_tls_dir[256];     /* CA, server and client certificates */
    bool broker_tls_require_cert; /* TLS clients must also present a certificate */
    char node_broker_url[256];    /* the broker URL written into provisioned node configs */
    char database[256];
    bool db_sync_full; /* synchronous=FULL: commits survive a power cut */
    char http_listen[64];
    char http_web_root[256]; /* the dashboard's files */
    char http_lang[8];       /* the site's dashboard language: vi or en */
    bool http_secure_cookie; /* Secure session cookie (the hub sits behind a TLS proxy) */
    char hub_id[33];         /* this hub's id in CAP identifiers */
    char public_url[256];    /* the dashboard's URL as others reach it (CAP links); empty: none */
    char cap_sender[129];    /* CAP <sender>; empty: firewatch-<hub_id> */
    char cap_sender_name[128];
    bool ha_discovery; /* publish Home Assistant MQTT discovery configs */
    char ha_prefix[65];
    /* Federation (docs/federation.md): */
    char mode[16];           /* "area" (a hub of nodes) or "regional" (reads areas' summaries) */
    bool federation;         /* area: publish summaries under firewatch/v1/fed/<hub_id>/ */
    char fed_broker[256];    /* area: the regional broker host:port the bridge connects to */
    char fed_password[256];  /* area: this area's account password on the regional broker */
    char fed_cafile[256];    /* area: CA of the regional broker (TLS); empty: plain MQTT */
    char fed_name[128];      /* area: its name in the regional view; empty: cap_sender_name or hub_id */
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
