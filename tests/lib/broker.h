/*
 * broker.h - a private Mosquitto for integration tests.
 *
 * tb_init() makes a scratch directory and picks a free loopback port; the
 * test may then write password or ACL files into b->dir; tb_start() writes a
 * config there and starts the real broker, returning once it accepts TCP
 * connections. The broker is started with PR_SET_PDEATHSIG so it dies with
 * the test even when the test crashes; tb_stop() stops it and removes the
 * directory.
 */
#ifndef FIREWATCH_TEST_BROKER_H
#define FIREWATCH_TEST_BROKER_H

#include <sys/types.h>

struct tb_broker {
    pid_t pid;
    int port;
    char dir[256];
    char url[64]; /* tcp://127.0.0.1:PORT */
};

/* Makes the scratch directory and picks a port. Returns 0 or -errno. */
int tb_init(struct tb_broker *b);

/* Writes b->dir/mosquitto.conf (a loopback listener on b->port, plus either
 * conf_lines or, when NULL, anonymous access with persistence in b->dir) and
 * starts mosquitto. Waits up to 10 s for it to listen. Returns 0 or -errno;
 * on failure the broker's log is copied to stderr. */
int tb_start(struct tb_broker *b, const char *conf_lines);

/* Stops the broker with SIGTERM (persisting its state) and waits for it.
 * Safe to call when it is not running. */
void tb_halt(struct tb_broker *b);

/* Kills the broker with SIGKILL and waits for it. */
void tb_kill(struct tb_broker *b);

/* Starts the broker again on the same port with the same config. */
int tb_restart(struct tb_broker *b);

/* Halts the broker and removes its directory. */
void tb_stop(struct tb_broker *b);

/* Returns a free loopback TCP port (for a second listener), or -errno. */
int tb_free_port(void);

/* Starts mosquitto with b->dir/mosquitto.conf exactly as the test wrote it
 * (for suites that generate the whole configuration themselves). The file
 * must have a listener on 127.0.0.1:b->port, which is polled for readiness
 * as in tb_start, and should log to b->dir/mosquitto.log so a failure shows
 * the broker's log. tb_halt, tb_restart and tb_stop work as usual. */
int tb_start_config(struct tb_broker *b);

#endif
