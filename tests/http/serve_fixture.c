/*
 * serve_fixture.c - the HTTP server with the fixture database and the fake
 * daemon, for the browser suite (and for looking at the dashboard by hand).
 *
 *   serve_fixture [--lang vi|en] [--port N] [--nodes N] [--readings N] [--regional]
 *
 * --nodes adds N more detectors (25 households per extra zone) with
 * --readings readings each (default 60), to measure queries at scale.
 * --regional runs it as a regional hub (hub.conf mode regional): the areas
 * of fx_regional in the database, incident actions refused.
 * Prints "port N" once it listens, then reads commands on stdin, one per
 * line, answering each with one line:
 *   escalate ZONE NODE   a node's fire escalates: "escalated ID"
 *   trouble NODE KIND    a trouble opens: "trouble ID"
 *   area-escalate AREA ZONE  (regional) a fire in alarm in an area: "escalated ID"
 *   quit                 (or end of input) stops and removes the database
 * It dies with its parent (PR_SET_PDEATHSIG), so a crashed test leaves no
 * server behind.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "fixture.h"
#include "harness.h"
#include "http.h"
#include "log.h"

int main(int argc, char **argv)
{
    const char *lang = "vi";
    char listen[32] = "127.0.0.1:0";
    long bulk = 0, per = 60;
    bool regional = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--regional") == 0)
            regional = true;
        else if (i + 1 >= argc)
            break;
        else if (strcmp(argv[i], "--lang") == 0)
            lang = argv[++i];
        else if (strcmp(argv[i], "--nodes") == 0)
            bulk = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--readings") == 0)
            per = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--port") == 0)
            snprintf(listen, sizeof listen, "127.0.0.1:%s", argv[++i]);
    }
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    signal(SIGPIPE, SIG_IGN);
    log_init("serve_fixture", LOGL_WARN);
    struct fixture fx;
    if (fx_open(&fx, false) < 0) {
        fprintf(stderr, "serve_fixture: cannot make the fixture database\n");
        return 1;
    }
    if (bulk > 0 && fx_bulk(&fx, (int)bulk, (int)per) < 0) {
        fprintf(stderr, "serve_fixture: cannot add the bulk nodes\n");
        fx_close(&fx);
        return 1;
    }
    if (regional && fx_regional(&fx) < 0) {
        fprintf(stderr, "serve_fixture: cannot add the regional areas\n");
        fx_close(&fx);
        return 1;
    }
    fx.regional = regional;
    struct http_config cfg;
    http_config_defaults(&cfg);
    cfg.listen = listen;
    cfg.database = fx.db_path;
    cfg.web_root = th_root_path("hub/web");
    cfg.lang = lang;
    cfg.regional = regional;
    struct http_hooks hooks = fx_hooks(&fx);
    struct http_server *srv = http_start(&cfg, &hooks);
    if (!srv) {
        fprintf(stderr, "serve_fixture: http_start: %s\n", strerror(errno));
        fx_close(&fx);
        return 1;
    }
    fx.stream = http_stream(srv);
    printf("port %d\n", http_port(srv));
    fflush(stdout);
    char line[256];
    while (fgets(line, sizeof line, stdin)) {
        char a[64] = "", b[64] = "", c[64] = "";
        int n = sscanf(line, "%63s %63s %63s", a, b, c);
        if (n >= 1 && strcmp(a, "quit") == 0)
            break;
        if (n == 3 && strcmp(a, "escalate") == 0) {
            printf("escalated %u\n", fx_escalate(&fx, b, c));
        } else if (n == 3 && strcmp(a, "area-escalate") == 0) {
            printf("escalated %u\n", fx_area_escalate(&fx, b, c));
        } else if (n == 3 && strcmp(a, "trouble") == 0) {
            char json[200];
            snprintf(json, sizeof json, "{\"node\":\"%s\",\"kind\":\"%s\",\"open\":true}", b, c);
            printf("trouble %lld\n", (long long)stream_publish(fx.stream, "trouble", json));
        } else {
            printf("error unknown command\n");
        }
        fflush(stdout);
    }
    fx.stream = NULL;
    http_stop(srv);
    fx_close(&fx);
    return 0;
}
