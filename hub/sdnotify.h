/*
 * sdnotify.h - systemd's readiness and watchdog protocol without libsystemd.
 *
 * The protocol is one datagram of "KEY=value" lines to the AF_UNIX socket
 * named by $NOTIFY_SOCKET (a leading '@' means the abstract namespace), so
 * a few lines here save a dependency. Outside systemd every call is a no-op.
 */
#ifndef FIREWATCH_HUB_SDNOTIFY_H
#define FIREWATCH_HUB_SDNOTIFY_H

#include <stdint.h>

/* Sends state (e.g. "READY=1", "WATCHDOG=1", "STOPPING=1"). Returns 1 when
 * sent, 0 when not under systemd, or a negative errno. */
int sdnotify_send(const char *state);

/* The watchdog period from $WATCHDOG_USEC in milliseconds (0 when the unit
 * has no watchdog or it is meant for another process). */
int64_t sdnotify_watchdog_ms(void);

#endif
