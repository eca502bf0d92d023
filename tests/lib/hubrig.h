/*
 * hubrig.h - a whole managed hub for end-to-end suites: a scratch
 * directory, a hub.conf whose broker_* keys point into it, a real
 * Mosquitto on the configuration `firewatchctl broker config` writes
 * (tb_start_config), the real firewatch-hub with its output in a log file
 * and HTTP on a free port, and a logged-in HTTP session.
 *
 * Several rigs may run in one test (the federation suite runs an area and
 * a regional one). Children die with the test (PR_SET_PDEATHSIG).
 */
#ifndef FIREWATCH_TEST_HUBRIG_H
#define FIREWATCH_TEST_HUBRIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "broker.h"
#include "client.h"

struct hubrig {
    struct tb_broker b; /* b.port: the nodes' listener; b.dir holds everything */
    int hub_port;       /* the hub's loopback listener */
    char conf[320], db[320], log[320];
    pid_t hub;
    long log_from; /* where the running hub's lines start in the log */
    int http_port;
    char cookie[160], csrf[96];
};

/* Runs a shell command; returns its exit status (-1 when it could not run),
 * its standard output in out (may be NULL). */
int hr_sh(const char *cmd, char *out, size_t size);

/* Scratch directory, ports, and hub.conf with the broker_* keys, a random
 * hub password, HTTP on a free loopback port, and extra lines appended
 * (each `key value`; a key in extra replaces the base one). */
int hr_init(struct hubrig *r, const char *extra_conf);

/* Runs `firewatchctl -c <conf> args` (stdin from input, or /dev/null);
 * returns its exit status, its output (stdout and stderr) in out. */
int hr_ctl(const struct hubrig *r, const char *input, const char *args, char *out, size_t size);

/* broker config, then Mosquitto on that file. Returns 0 or -1 (reported). */
int hr_broker_up(struct hubrig *r);

/* Starts firewatch-hub and waits until it serves HTTP and has connected to
 * its broker. Returns 0 or -1 (reported). */
int hr_hub_start(struct hubrig *r);

/* Signals the hub and waits up to 10 s; true when it exited 0. */
bool hr_hub_stop(struct hubrig *r, int sig);

/* Adds user with role and password (firewatchctl user add; role NULL: the
 * user exists already) and logs in over HTTP, keeping the cookie and CSRF
 * token (sessions live in the hub's memory: log in again after a restart).
 * Returns 0 or -1. */
int hr_login(struct hubrig *r, const char *user, const char *role, const char *password);

/* A request with the session (and the CSRF token on a state change). */
int hr_req(struct hubrig *r, const char *method, const char *path, const char *body, struct hc_response *out);

/* Waits until GET path answers 200 with needle in the body. */
bool hr_wait_api(struct hubrig *r, const char *path, const char *needle, int ms);

/* Waits until needle appears in the hub's log. */
bool hr_wait_log(struct hubrig *r, const char *needle, int ms);

/* Stops everything and removes the directory; on a failure so far, the
 * tail of the hub's and the broker's logs goes to the test output first. */
void hr_down(struct hubrig *r, const char *name);

#endif
