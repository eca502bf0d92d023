/*
 * outq.h - the node's bounded outgoing queue, used while the broker is
 * unreachable (and to keep order while it drains).
 *
 * Why our own queue rather than paho's sendWhileDisconnected buffer: paho
 * drops by age only (deleteOldestMessages), so a burst of readings during an
 * outage could push out an alarm. Here each message has a class, and when
 * the queue is full the oldest message of the lowest class goes first:
 * readings, then other events (trouble, cmd_result), and alarm-class events
 * (alarm, alarm_clear, silence, test) only ever make room for nothing - a
 * new one is refused only when the whole queue already holds alarm-class
 * events. Pure: no I/O, no clock.
 */
#ifndef FIREWATCH_OUTQ_H
#define FIREWATCH_OUTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "firewatch/protocol.h"

enum outq_class { OUTQ_READING, OUTQ_EVENT, OUTQ_ALARM, OUTQ_CLASSES };

struct outq_msg {
    enum fw_channel channel;
    int qos;
    bool retain;
    enum outq_class cls;
    size_t len;
    char payload[]; /* len bytes, NUL-terminated */
};

struct outq;

/* Makes a queue of at most max messages. NULL with errno on failure. */
struct outq *outq_new(size_t max);
void outq_free(struct outq *q);

/* Appends a copy of payload. Returns 0; 1 when an older message was dropped
 * to make room; -ENOBUFS when this one was refused; -ENOMEM. */
int outq_push(struct outq *q, enum fw_channel ch, int qos, bool retain, enum outq_class cls,
              const char *payload, size_t len);

/* The oldest message, or NULL when empty. Owned by the queue. */
const struct outq_msg *outq_peek(const struct outq *q);

/* Removes the oldest message. */
void outq_pop(struct outq *q);

size_t outq_len(const struct outq *q);

/* Messages of class cls dropped or refused so far. */
uint64_t outq_dropped(const struct outq *q, enum outq_class cls);

/* The class of an event type. */
enum outq_class outq_event_class(enum fw_event_type type);

#endif
