/*
 * main.c - firewatch-node's command line: --config, --check-config, --help,
 * --version. Everything else is in node.c.
 */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "node.h"

#define DEFAULT_CONFIG "/etc/firewatch/node.conf"

static void usage(FILE *f)
{
    fprintf(f, "usage: firewatch-node [--config FILE] [--check-config] [--help] [--version]\n"
               "\n"
               "The Firewatch sensor node daemon: detects fire locally, sounds the sounder,\n"
               "and reports to the hub over MQTT 5 (protocol v1).\n"
               "\n"
               "  --config FILE    config file (default " DEFAULT_CONFIG ")\n"
               "  --check-config   check the config file and exit (0 when valid)\n"
               "  --help           this text and the config options\n"
               "  --version        print the version\n"
               "\n"
               "Config options (key value, one per line, # comments):\n");
    for (size_t i = 0; i < node_options_count; i++)
        fprintf(f, "  %-20s %s (default: %s)\n", node_options[i].key, node_options[i].help,
                node_options[i].def[0] ? node_options[i].def : "\"\"");
}

int main(int argc, char **argv)
{
    const char *config = DEFAULT_CONFIG;
    int check = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            config = argv[i] + 9;
        } else if (strcmp(argv[i], "--check-config") == 0) {
            check = 1;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("firewatch-node %s (protocol v%d)\n", FW_NODE_VERSION, FW_PROTOCOL_VERSION);
            return 0;
        } else {
            fprintf(stderr, "firewatch-node: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (check) {
        struct node_config c;
        struct conf_error err;
        char msg[512];
        if (node_config_load(config, &c, &err) < 0) {
            fprintf(stderr, "%s\n", conf_error_text(&err, msg, sizeof msg));
            return 1;
        }
        printf("%s: ok\n", config);
        return 0;
    }
    return node_run(config);
}
