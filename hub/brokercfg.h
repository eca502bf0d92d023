/*
 * brokercfg.h - the Mosquitto broker's security, managed by Firewatch.
 *
 * The broker enforces identity (docs/protocol.md): a node may publish only
 * under its own topics and read only its own cmd topic and its zone's alarm.
 * This module writes everything Mosquitto 2.0 needs for that - the
 * configuration file, the password file, the ACL file, the TLS certificates -
 * and tells a running broker to reread them. firewatchctl calls it for
 * `broker config`, `broker tls` and node add / rotate-credentials /
 * decommission, and for federation: the bridge section an area hub's broker
 * uses to forward its summaries to the regional broker, and the regional
 * broker's per-area accounts (`area add`). docs/internals/broker-security.md
 * explains the choices.
 *
 * Every file is replaced atomically (temporary file in the same directory,
 * fsync, rename), so a broker reloading at any moment reads either the old or
 * the new file, never half of one. Errors are 0 or a negative errno; nothing
 * here logs, and no function ever writes a password anywhere but into the
 * caller's buffer (hashes only go to the password file).
 */
#ifndef FIREWATCH_BROKERCFG_H
#define FIREWATCH_BROKERCFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

/* A generated password: 32 characters of [A-Za-z0-9-_], 6 bits each = 192
 * bits of randomness. Buffers for one need BROKERCFG_PASSWORD_SIZE bytes. */
#define BROKERCFG_PASSWORD_LEN 32
#define BROKERCFG_PASSWORD_SIZE (BROKERCFG_PASSWORD_LEN + 1)

/* Longest password accepted by brokercfg_passwd_set (bytes, without NUL). */
#define BROKERCFG_PASSWORD_MAX 256

/* Longest broker user name (node ids are at most 32). User names are
 * [A-Za-z0-9_.-]{1,64}. */
#define BROKERCFG_USER_MAX 64

/* A Mosquitto 2.0 password hash "$7$<iter>$<salt b64>$<hash b64>" fits in
 * this many bytes with the NUL. */
#define BROKERCFG_HASH_SIZE 160

/* PBKDF2-HMAC-SHA512 iterations; the same as mosquitto_passwd 2.0 uses. The
 * passwords we generate are 192-bit random, so stretching adds nothing but
 * CPU time on every CONNECT; a low count keeps reconnect storms cheap. */
#define BROKERCFG_PBKDF2_ITERATIONS 101

/* The hub's broker account. The underscore keeps it out of the node id space
 * ([a-z0-9][a-z0-9-]*), so no node can ever be provisioned with the hub's
 * name. */
#define BROKERCFG_HUB_USER_DEFAULT "firewatch_hub"

/* ------------------------------------------------------------------------ */
/* Configuration file                                                        */

/* A Mosquitto bridge that forwards one area's federation subtree,
 * firewatch/v1/fed/<area>/#, out to the regional broker (docs/federation.md).
 * String members are borrowed. */
struct brokercfg_bridge {
    const char *area;     /* the area hub's hub_id (fw_id_valid) */
    const char *address;  /* the regional broker, "host:port" */
    const char *password; /* account area_<area> on the regional broker */
    const char *cafile;   /* the regional broker's CA: TLS; NULL or "": plain MQTT */
};

/* What the generated mosquitto.conf says. Fill with brokercfg_options_init()
 * and then set what differs; string members are borrowed, not copied. */
struct brokercfg_options {
    /* Plain MQTT listener for nodes. node_port 0 = none (TLS only).
     * node_address NULL or "" = every address. Default 1883, every address. */
    const char *node_address;
    int node_port;

    /* Listener on 127.0.0.1 for the hub. Default 1884. Must differ from
     * node_port when the node listener covers loopback. */
    int hub_port;

    /* Optional TLS listener for nodes: tls_port 0 = none (default). The three
     * files are required when tls_port is set (brokercfg_tls_* writes them).
     * tls_require_certificate: clients must also present a certificate
     * signed by tls_cafile (the password is still required). */
    const char *tls_address;
    int tls_port;
    const char *tls_cafile;
    const char *tls_certfile;
    const char *tls_keyfile;
    bool tls_require_certificate;

    /* Absolute paths. Required: password_file, acl_file, persistence_dir. */
    const char *password_file;
    const char *acl_file;
    const char *persistence_dir;
    const char *pid_file; /* NULL = none; needed by brokercfg_reload(pid_file) */
    const char *log_file; /* NULL = log to stderr (journald under systemd) */

    /* The account Mosquitto drops to when started as root. Default
     * "mosquitto" (Debian's). The password and ACL files must be readable by
     * it: see brokercfg_file_chown(). */
    const char *run_as_user;

    /* Queue for an offline persistent session (in practice: the hub's while
     * it is down). 0 = computed by brokercfg_queue_size(expected_nodes,
     * hub_downtime_hours). Beyond it Mosquitto drops messages silently. */
    unsigned max_queued_messages;
    unsigned expected_nodes;     /* default 1000 */
    unsigned hub_downtime_hours; /* default 24 */

    /* With autosave_on_changes, save the database after this many changes
     * (queued QoS>0 messages, retained messages, subscriptions). Default 1:
     * after every change, because a queued alarm event must survive a broker
     * crash; in steady state changes are rare (readings are QoS 0). */
    unsigned autosave_changes;

    /* Largest MQTT packet accepted, bytes. Default 16384 (16 x the protocol's
     * payload limit) so a misbehaving client cannot push megabytes. */
    unsigned max_packet_size;

    /* Optional federation bridge, written at the end of the file (a
     * `connection` line opens a section that takes every option after it).
     * NULL = none. With a bridge the file holds a password: see
     * brokercfg_config_write. */
    const struct brokercfg_bridge *bridge;
};

/* Fills o with the defaults above (paths NULL). */
void brokercfg_options_init(struct brokercfg_options *o);

/* Messages the broker should queue for the hub: expected_nodes x 6 QoS 1
 * messages per node-hour (events and status) x downtime hours, at least
 * 1000. Saturates instead of overflowing. */
unsigned brokercfg_queue_size(unsigned expected_nodes, unsigned hub_downtime_hours);

/* Writes the complete, commented configuration to out. Returns 0, -EINVAL
 * for a missing or bad option (relative path, bad port, port clash, a
 * newline in a string), or -EIO when out fails. */
int brokercfg_config_print(const struct brokercfg_options *o, FILE *out);

/* Same, atomically replacing the file at path. Without a bridge the file
 * holds no secret: mode 0644, owner kept. With one it holds the bridge's
 * password: mode 0600, and when running as root with o->run_as_user set it
 * is given to that account (Mosquitto rereads its configuration on SIGHUP
 * after dropping root); otherwise the old file's owner is kept. Returns 0,
 * -ENOENT when run_as_user does not exist, or a negative errno. */
int brokercfg_config_write(const struct brokercfg_options *o, const char *path);

/* Writes the bridge section alone - what `firewatchctl federation bridge`
 * prints for an operator who runs their own Mosquitto (conf.d) - to out:
 * connection firewatch-fed-<area>, client id and user area_<area>, a
 * persistent session (cleansession false: messages for the regional broker
 * queue here while the link is down), notifications on
 * firewatch/v1/fed/<area>/bridge, and `topic firewatch/v1/fed/<area>/# out 1`;
 * with a cafile, TLS with hostname verification. Returns 0, -EINVAL for a
 * bad area, address (host:port), password or cafile (empty, whitespace or
 * control characters, a relative path), or -EIO. */
int brokercfg_bridge_print(FILE *out, const struct brokercfg_bridge *b);

/* Creates what the configuration points at, for a first `broker config`:
 * the persistence directory (0700) and empty password and ACL files (0600;
 * an empty ACL denies everything) when they are missing. When running as
 * root and o->run_as_user is set, all three are then chowned to that
 * account: Mosquitto reads the password and ACL files after dropping to it,
 * at start and on every SIGHUP, and fails to start if it cannot. Existing
 * files keep their contents. Returns 0, -EINVAL for bad options, -ENOENT
 * when the account does not exist, or a negative errno. */
int brokercfg_prepare(const struct brokercfg_options *o);

/* ------------------------------------------------------------------------ */
/* Credentials                                                               */

/* True when name is a valid broker user name ([A-Za-z0-9_.-]{1,64}). */
bool brokercfg_user_valid(const char *name);

/* Writes a fresh random password (BROKERCFG_PASSWORD_LEN chars + NUL) into
 * buf. Returns 0, -ENOSPC when size < BROKERCFG_PASSWORD_SIZE, or -EIO when
 * libsodium cannot be initialised. */
int brokercfg_password_generate(char *buf, size_t size);

/* Hashes password in Mosquitto 2.0's format ($7$, PBKDF2-HMAC-SHA512, random
 * 12-byte salt) into out. Returns 0, -EINVAL (empty or too long password),
 * -ENOSPC (out smaller than BROKERCFG_HASH_SIZE) or -EIO. */
int brokercfg_password_hash(const char *password, char *out, size_t size);

/* Checks password against a "$7$..." hash. Returns 0 on a match, -EACCES on
 * a mismatch, -EINVAL when the hash is not a $7$ hash we can read. */
int brokercfg_password_verify(const char *hash, const char *password);

/* Adds user to the password file at path, or replaces its password. The
 * file is created if missing (mode 0600) and other lines are kept as they
 * are. An existing file's owner and group are kept (so a file chowned to
 * the broker's account stays readable by it). Concurrent callers are
 * serialised with a lock on "<path>.lock". Returns 0 or a negative errno
 * (-EINVAL for a bad user name or password). */
int brokercfg_passwd_set(const char *path, const char *user, const char *password);

/* Removes user from the password file. Returns 0, -ENOENT when the user (or
 * the file) is not there, or a negative errno. */
int brokercfg_passwd_remove(const char *path, const char *user);

/* Checks user's password in the file. Returns 0 on a match, -EACCES on a
 * mismatch, -ENOENT when the user is not in the file. */
int brokercfg_passwd_check(const char *path, const char *user, const char *password);

/* Changes the owner and group of path to the named account (getpwnam), mode
 * unchanged, so a broker that dropped to that account can read it. Returns
 * 0, -ENOENT when there is no such account, or a negative errno. */
int brokercfg_file_chown(const char *path, const char *account);

/* ------------------------------------------------------------------------ */
/* ACL file                                                                  */

/* One provisioned node: its id (the broker user name) and its zone. Both
 * must match the protocol's id syntax (fw_id_valid). */
struct brokercfg_node {
    const char *id;
    const char *zone;
};

/* Writes the ACL to out: one explicit block for the hub user (read
 * firewatch/v1/#; write zone alarms, node cmd topics and hub/status) and one
 * per node (write its own status, reading and event; read its own cmd and its
 * zone's alarm). Anything not granted is denied. Returns 0, -EINVAL for a
 * bad id, zone or hub user (or a node named like the hub), -EIO. */
int brokercfg_acl_print(FILE *out, const char *hub_user, const struct brokercfg_node *nodes, size_t n);

/* Same, atomically replacing the file at path (mode 0600; owner kept like
 * brokercfg_passwd_set). */
int brokercfg_acl_write(const char *path, const char *hub_user, const struct brokercfg_node *nodes, size_t n);

/* Everything the ACL can hold. Arrays and strings are borrowed. */
struct brokercfg_acl {
    const char *hub_user;
    /* Extra `topic write` filters for the hub (its federation subtree, Home
     * Assistant's discovery prefix). Each must be a well-formed MQTT filter
     * of at most BROKERCFG_FILTER_MAX bytes, without whitespace or a leading
     * '$', that cannot match any node topic (firewatch/v1/node/...): not
     * even the hub may forge a node's message. */
    const char *const *hub_write;
    size_t n_hub_write;
    const struct brokercfg_node *nodes;
    size_t n_nodes;
    /* A regional broker's areas (fw_id_valid ids, no duplicates): one block
     * each for the bridge account area_<id>, which may write
     * firewatch/v1/fed/<id>/# and nothing else, read nothing. */
    const char *const *areas;
    size_t n_areas;
};

#define BROKERCFG_FILTER_MAX 256

/* brokercfg_acl_print / _write with the extras above. Returns 0, -EINVAL
 * for anything refused above (and what brokercfg_acl_print refuses), -EIO. */
int brokercfg_acl_print_ex(FILE *out, const struct brokercfg_acl *acl);
int brokercfg_acl_write_ex(const char *path, const struct brokercfg_acl *acl);

/* True when filter is a well-formed MQTT topic filter: non-empty, at most
 * BROKERCFG_FILTER_MAX bytes, no whitespace or control characters, '+' and
 * '#' only as whole levels and '#' only last. */
bool brokercfg_filter_valid(const char *filter);

/* ------------------------------------------------------------------------ */
/* Reload                                                                    */

/* Tells a running Mosquitto to reread its configuration, password and ACL
 * files (SIGHUP). Mosquitto 2.0 then also disconnects clients whose
 * credentials no longer check, so a decommissioned node is cut off at once.
 * The broker is busy for the reread (~0.8 s at 10,000 nodes): reload once
 * per batch of changes. The pid is pid when > 0, else read from pid_file. Refuses
 * (-ESRCH) when that process is not a mosquitto (a stale pid file must not
 * make us hang up some other program). Returns 0 or a negative errno. */
int brokercfg_reload(const char *pid_file, pid_t pid);

/* ------------------------------------------------------------------------ */
/* TLS                                                                       */

/* File names inside a TLS directory. Keys are 0600, certificates 0644. */
#define BROKERCFG_TLS_CA_KEY "ca.key"
#define BROKERCFG_TLS_CA_CERT "ca.crt"
#define BROKERCFG_TLS_SERVER_KEY "server.key"
#define BROKERCFG_TLS_SERVER_CERT "server.crt"
#define BROKERCFG_TLS_CLIENT_DIR "clients" /* clients/<node>.key, clients/<node>.crt */

/* Default certificate lifetimes, days. */
#define BROKERCFG_TLS_CA_DAYS 3650
#define BROKERCFG_TLS_CERT_DAYS 825

/* Creates a private CA in dir (made 0700 if missing): ca.key (EC P-256) and a
 * self-signed ca.crt with common name cn. days 0 = BROKERCFG_TLS_CA_DAYS.
 * Refuses with -EEXIST when dir already holds a CA: replacing it would cut
 * off every node. Runs the openssl command-line tool. Returns 0, -EINVAL for
 * a bad name, -EEXIST, -ENOENT when openssl is missing, -EIO when it fails. */
int brokercfg_tls_create_ca(const char *dir, const char *cn, int days);

/* Issues server.key and server.crt in dir, signed by dir's CA, for the
 * broker. names are the DNS names and IP addresses clients use to reach it
 * (each goes into subjectAltName; IPs are recognised by inet_pton); the
 * first is also the common name. n >= 1. Replaces an existing server
 * certificate. days 0 = BROKERCFG_TLS_CERT_DAYS. Returns as above, and
 * -ENOENT when dir holds no CA. */
int brokercfg_tls_create_server(const char *dir, const char *const *names, size_t n, int days);

/* Issues clients/<node_id>.key and .crt in dir, signed by dir's CA, common
 * name node_id, for TLS client authentication. Replaces an existing one.
 * days 0 = BROKERCFG_TLS_CERT_DAYS. Returns as for the server certificate. */
int brokercfg_tls_create_client(const char *dir, const char *node_id, int days);

/* Writes "<dir>/<name>" into buf: 0, or -ENAMETOOLONG. A convenience for
 * filling tls_cafile and friends. */
int brokercfg_tls_path(char *buf, size_t size, const char *dir, const char *name);

#endif
