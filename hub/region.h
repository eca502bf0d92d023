/*
 * region.h - a regional hub's receiver (mode regional): every message under
 * firewatch/v1/fed/ on the regional broker, checked with fed.h and written
 * to the areas, area_incidents and area_alerts tables before it is
 * acknowledged. It runs on the MQTT receive thread (ingest.h's raw hook),
 * with its own database connection; the HTTP side reads the tables.
 *
 * Only areas registered with firewatchctl area add (and not removed) are
 * believed; anything else, or a document that fails its checks, is counted
 * and logged (rate-limited) and changes nothing. Documents are applied in
 * the area hub's own time order: an older incident document never replaces
 * a newer one (retained copies may arrive after live ones). A hub document
 * closes the incidents it no longer lists as open, so a close missed while
 * the link was down is caught up.
 */
#ifndef FIREWATCH_HUB_REGION_H
#define FIREWATCH_HUB_REGION_H

#include <stddef.h>
#include <stdint.h>

struct region;

struct region_stats {
    uint64_t received;     /* messages under firewatch/v1/fed/ */
    uint64_t applied;      /* written */
    uint64_t rejected;     /* malformed topic or document */
    uint64_t unknown_area; /* from an area that is not registered */
    uint64_t errors;       /* database errors */
};

/* Opens the receiver's connection to database. NULL with why filled. */
struct region *region_new(const char *database, char *why, size_t why_size);

/* The raw hook for ingest_config (ctx is the struct region). */
void region_on_message(void *ctx, const char *topic, size_t topic_len, const void *payload, size_t len);

void region_get_stats(struct region *r, struct region_stats *out);

/* Accepts NULL. Stop the MQTT client first. */
void region_free(struct region *r);

#endif
