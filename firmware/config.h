/*
 * config.h - firewatch-node's options: one table row each (common/conf.h),
 * so --help, node.conf.example and the parser cannot drift apart.
 */
#ifndef FIREWATCH_NODE_CONFIG_H
#define FIREWATCH_NODE_CONFIG_H

#include <stddef.h>

#include "conf.h"
#include "detect.h"
#include "firewatch/protocol.h"
#include "hw.h"

struct node_config {
    char id[FW_ID_MAX + 1];
    char zone[FW_ID_MAX + 1];
    char kind[8];
    char broker[160];
    char username[64];
    char password[128];
    char cafile[256];
    int interval_s;
    int sample_ms;
    char state_dir[256];
    int keepalive_s;
    int reconnect_max_s;
    int queue_max;
    char log_level[8];
    struct hw_config hw;
    struct det_config det;
};

/* The option table and its length. */
extern const struct conf_option node_options[];
extern const size_t node_options_count;

/* Loads path over the defaults and validates values that depend on each
 * other or need more than a range (ids, broker URL, backend). Returns 0 or
 * -EINVAL/-errno with err filled as file:line: key: why. */
int node_config_load(const char *path, struct node_config *c, struct conf_error *err);

/* Validates a config already parsed from text (the file name and text are
 * used to find the line of a key for the error). */
int node_config_validate(struct node_config *c, const char *name, const char *text, struct conf_error *err);

#endif
