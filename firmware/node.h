/*
 * node.h - the firewatch-node daemon: one single-threaded poll() loop over
 * signals, the MQTT link's wake fd and the hardware's input fds, with every
 * timer (sampling, readings, hush and debounce expiry, sounder patterns,
 * reconnects) folded into the poll timeout. No busy loop: an idle node
 * sleeps until its next sample.
 */
#ifndef FIREWATCH_NODE_H
#define FIREWATCH_NODE_H

#define FW_NODE_VERSION "0.1.0"

/* Runs the node with the config at path until SIGTERM or SIGINT. Returns
 * the process exit status. */
int node_run(const char *config_path);

#endif
