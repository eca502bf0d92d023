/*
 * writer.h - the hub's writer thread: every database write of the main loop
 * (readings, node state, incidents and their timelines, troubles, command
 * outcomes, retention) goes through it, so the main loop, which runs the
 * incident engine, never waits for a disk.
 *
 * The main loop appends operations under a mutex; the thread takes the
 * whole batch and commits it in one transaction on its own connection,
 * either when the batch tick (batch_ms) passes or when batch_max readings
 * are waiting. Events are not written here: they are committed by the MQTT
 * receive thread before they are acknowledged (see ingest.h).
 */
#ifndef FIREWATCH_HUB_WRITER_H
#define FIREWATCH_HUB_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct writer;

struct writer_stats {
    uint64_t readings;         /* readings committed */
    uint64_t readings_dropped; /* refused because too many were waiting */
    uint64_t commits;
    uint64_t errors; /* transactions that failed */
};

/* Opens the writer's connection to database and starts the thread. Returns
 * NULL with errno set and why filled. Free with writer_free. */
struct writer *writer_new(const char *database, bool sync_full, int batch_ms, size_t batch_max, char *why,
                          size_t why_size);

/* Flushes what is waiting, stops the thread and frees. Accepts NULL. */
void writer_free(struct writer *w);

/* Each queues one operation and returns 0, or -ENOBUFS when readings are
 * over their cap (the reading is dropped and counted) or -ENOMEM. */
int writer_reading(struct writer *w, const struct store_reading *r);
int writer_node(struct writer *w, const struct store_node *n, const char *fw);
int writer_incident(struct writer *w, const struct store_incident *inc);
int writer_incident_close(struct writer *w, uint32_t id, const char *state, int64_t ts_ms, const char *who);
int writer_timeline(struct writer *w, uint32_t incident, int64_t ts_ms, const char *what, const char *who,
                    const char *node, const char *detail);
int writer_trouble(struct writer *w, bool open, const char *node, const char *kind, int64_t ts_ms,
                   const char *detail);
int writer_trouble_notified(struct writer *w, const char *node, const char *kind, int64_t ts_ms);
int writer_command_done(struct writer *w, int64_t id, const char *result, int64_t ts_ms);
/* Asks for retention (rollups, then deletes) at now_ms, in its own transaction. */
int writer_retention(struct writer *w, int64_t now_ms, int retention_days);

/* Asks for a readiness snapshot of every zone (table readiness) at now_ms. */
int writer_readiness(struct writer *w, int64_t now_ms);

/* Wakes the thread to commit now (used at shutdown and by tests). Returns
 * once the batch that was waiting when it was called is committed. */
void writer_flush(struct writer *w);

void writer_get_stats(struct writer *w, struct writer_stats *out);

#endif
