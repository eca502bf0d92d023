/*
 * spill.h - the event spill file: where an event goes when the database
 * refuses it (disk full, I/O error), so that it is still durable before
 * paho sends its PUBACK.
 *
 * The file sits next to the database (<database>-spill). Its space is
 * reserved when it is opened (fallocate with KEEP_SIZE), so appending keeps
 * working on a disk that has filled up since. Each record is one line,
 * "<node> <boot> <rx_ms> <event JSON>\n", written with one write() and made
 * durable with fdatasync() before spill_append returns. The file holds at
 * most max_bytes: that is the bounded queue of unwritten events. Draining
 * replays every record into the database with INSERT OR IGNORE semantics
 * (the caller's), and empties the file only when all of them succeeded, so
 * a crash at any moment loses nothing and a record replayed twice is still
 * stored once. docs/reliability.md explains where this sits in the ingest
 * path.
 */
#ifndef FIREWATCH_HUB_SPILL_H
#define FIREWATCH_HUB_SPILL_H

#include <stddef.h>
#include <stdint.h>

#include "firewatch/protocol.h"

struct spill;

/* Called once per held event, oldest first; returns 0 or a negative errno. */
typedef int (*spill_fn)(void *ctx, const char *node, uint32_t boot, int64_t rx_ms, const struct fw_event *ev);

/* Opens (creating) path and reserves max_bytes for it. Records already in
 * the file (from before a crash) are kept and counted. Returns NULL with
 * errno set and why filled. Free with spill_close. */
struct spill *spill_open(const char *path, size_t max_bytes, char *why, size_t why_size);

/* Closes; accepts NULL. The file stays, with whatever it holds. */
void spill_close(struct spill *sp);

/* Appends one event and makes it durable. Returns 0, -ENOSPC when the file
 * holds max_bytes already, or another negative errno from the disk. */
int spill_append(struct spill *sp, const char *node, uint32_t boot, int64_t rx_ms, const struct fw_event *ev);

/* Events held in the file. */
size_t spill_count(const struct spill *sp);

/* Hands every held event to fn in order. When all calls return 0 the file
 * is emptied (and that is made durable); otherwise it is kept whole for the
 * next try. Returns the number of events written, or the first negative
 * errno from fn or the disk. */
int spill_drain(struct spill *sp, spill_fn fn, void *ctx);

/* Hands every held event to fn in order and keeps the file as it is.
 * Returns the number of calls that returned 0, or the first negative errno. */
int spill_foreach(struct spill *sp, spill_fn fn, void *ctx);

#endif
