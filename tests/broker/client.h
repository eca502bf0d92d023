/*
 * client.h - a blocking MQTT 5 test client over paho MQTTAsync, for the
 * broker security suites.
 *
 * Each call starts one paho operation and waits for its answer against a
 * deadline (th_wait_until), returning the MQTT 5 reason code the broker sent
 * - the point of these suites is to see exactly what a node sees when the
 * broker refuses it. Received messages are counted per topic.
 */
#ifndef FIREWATCH_TEST_CLIENT_H
#define FIREWATCH_TEST_CLIENT_H

#include <stdbool.h>

struct tc_client;

/* TLS settings for an ssl:// URL; NULL members are left out. */
struct tc_tls {
    const char *cafile;
    const char *certfile;
    const char *keyfile;
};

/* No answer from the broker before the deadline (or paho refused the call). */
#define TC_NO_ANSWER (-1)

/* Connects with MQTT 5 as client_id (NULL: user, or "anon") with user and
 * password (either may be NULL). Returns the client, or NULL with *reason set
 * to the CONNACK reason code (>= 0x80) or TC_NO_ANSWER. */
struct tc_client *tc_connect(const char *url, const char *client_id, const char *user, const char *password,
                             const struct tc_tls *tls, int *reason);

/* Like tc_connect, with a QoS 1 retained will message (as nodes set on their
 * status topic). */
struct tc_client *tc_connect_will(const char *url, const char *user, const char *password,
                                  const char *will_topic, const char *will_payload, int *reason);

/* Ends the session with DISCONNECT reason 0x04, which asks the broker to
 * publish the will as if the client had died. The client is then
 * disconnected; free it with tc_free. Returns 0 or TC_NO_ANSWER. */
int tc_disconnect_with_will(struct tc_client *c);

/* Publishes payload to topic. QoS 1 and 2: returns the reason code of the
 * broker's acknowledgement (0 accepted, 0x87 not authorized...); QoS 0:
 * returns 0 once paho sent it. TC_NO_ANSWER on timeout. */
int tc_publish(struct tc_client *c, const char *topic, const char *payload, int qos, bool retain);

/* Subscribes; returns the SUBACK reason code (granted QoS, or >= 0x80). */
int tc_subscribe(struct tc_client *c, const char *topic, int qos);

/* Messages received so far on exactly this topic. */
int tc_count(struct tc_client *c, const char *topic);

/* Waits up to timeout_ms for at least n messages on topic. */
bool tc_wait_count(struct tc_client *c, const char *topic, int n, int timeout_ms);

/* The payload of the last message received on topic, copied into buf ("" if
 * none). */
void tc_last_payload(struct tc_client *c, const char *topic, char *buf, int size);

/* True until the broker drops the connection. */
bool tc_connected(struct tc_client *c);

/* Waits up to timeout_ms for the broker to drop the connection. */
bool tc_wait_lost(struct tc_client *c, int timeout_ms);

/* Disconnects (if still connected) and frees. Accepts NULL. */
void tc_free(struct tc_client *c);

#endif
