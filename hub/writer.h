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
 *
 * A transaction the database refuses for want of space or I/O (a storage
 * trouble) is rolled back and its operations are kept for the next try,
 * every 500 ms, at most 20,000 of them; its readings are dropped and
 * counted. Test knobs: FW_TEST_MAX_PAGES_FILE (store_test_limits) and
 * FW_TEST_WRITER_DELAY_MS (a slow disk), see docs/reliability.md.
 */
#ifndef FIREWATCH_HUB_WRITER_H
#define FIREWATCH_HUB_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ingest.h"
#include "store.h"

struct writer;

struct writer_stats {
    uint64_t readings;         /* readings committed */
    uint64_t readings_dropped; /* refused because too many were waiting */
    uint64_t commits;
    uint64_t errors;      /* transactions that failed */
    uint64_t ops_held;    /* operations waiting for the database to accept writes again */
    uint64_t ops_dropped; /* held operations given up (over the bound) */
    bool storage_trouble; /* the last transaction was refused for want of space or I/O */
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

/* Records, after the operations the engine queued for items (one drained
 * batch), that the engine's effects of every event received up to the
 * newest of them are committed with it (meta key engine_mark, receive time
 * in ms). At start the hub replays the alarm events received since the
 * mark (ingest_new), so an incident decided but not yet written when the
 * hub was killed is decided again instead of being cleared. */
int writer_engine_mark(struct writer *w, const struct ingest_item *items, size_t n);

/* Asks for a readiness snapshot of every zone (table readiness) at now_ms. */
int writer_readiness(struct writer *w, int64_t now_ms);

/* Wakes the thread to commit now (used at shutdown and by tests). Returns
 * once the batch that was waiting when it was called is committed. */
void writer_flush(struct writer *w);

void writer_get_stats(struct writer *w, struct writer_stats *out);

#endif
