/*
 * hubha.h - the daemon's Home Assistant discovery: which configs to publish
 * and when (hub/hadisc.h builds them, purely).
 *
 * With ha_discovery on, the main loop subscribes to Home Assistant's status
 * topic and calls hubha_publish_all on every broker connection, after every
 * topology change and whenever Home Assistant announces itself online;
 * hubha_remove_node when a node leaves the topology. Everything is
 * published retained at QoS 1 through the hub's own MQTT client, which
 * never blocks. Main loop only.
 */
#ifndef FIREWATCH_HUB_HUBHA_H
#define FIREWATCH_HUB_HUBHA_H

#include <stdbool.h>
#include <stddef.h>

#include "ingest.h"
#include "store.h"

struct hubha;

/* prefix: the discovery prefix (NULL or "": homeassistant); sw_version and
 * support_url may be NULL. Returns the handle (hubha_free) or NULL with
 * errno EINVAL or ENOMEM. */
struct hubha *hubha_new(const char *prefix, const char *sw_version, const char *support_url);

/* Accepts NULL. */
void hubha_free(struct hubha *ha);

/* Home Assistant's status topic, to subscribe to. */
const char *hubha_birth_topic(const struct hubha *ha);

/* True when a message on the status topic says Home Assistant is online. */
bool hubha_is_birth(const struct hubha *ha, const void *payload, size_t len);

/* Publishes the configs of every zone and node in db. Returns the number of
 * messages published or a negative errno. */
int hubha_publish_all(struct hubha *ha, struct store *db, struct ingest *in);

/* Publishes the removal set of a node that left the topology. */
void hubha_remove_node(struct hubha *ha, struct ingest *in, const char *node);

#endif
