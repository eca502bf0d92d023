/*
 * state.h - what the node keeps on disk: the boot counter (the protocol's
 * `boot`, one per process start, i.e. per MQTT session the node begins).
 */
#ifndef FIREWATCH_NODE_STATE_H
#define FIREWATCH_NODE_STATE_H

#include <stdint.h>

/* Reads dir/boot (0 when absent), adds one, and stores it durably: write a
 * temporary file, fsync it, rename it over, fsync the directory, so a power
 * cut leaves either the old or the new value. Creates dir if missing.
 * Returns 0 with *boot set, or a negative errno (*boot is still set to the
 * next value, so the node can run on without persistence). */
int state_next_boot(const char *dir, uint32_t *boot);

#endif
