/*
 * brokercfg.c - the Mosquitto configuration and ACL files, the reload, and
 * the atomic file replacement every brokercfg_ writer uses. Passwords live
 * in brokercfg_passwd.c, certificates in brokercfg_tls.c. The generated
 * files are plain text that an operator can read: every configuration line
 * carries a comment saying why it is there.
 */
#include "brokercfg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "brokercfg_internal.h"
#include "fed.h"
#include "firewatch/protocol.h"

/* QoS 1 messages a node causes per hour in the hub's queue (events and
 * status births/wills); generous, since alarms come in bursts. */
#define QUEUE_PER_NODE_HOUR 6u
#define QUEUE_MIN 1000u

/* ------------------------------------------------------------------------ */
/* Atomic replacement and locking                                           */

int brokercfg_atomic_begin(struct brokercfg_atomic *a, const char *path, mode_t mode)
{
    memset(a, 0, sizeof *a);
    int n = snprintf(a->path, sizeof a->path, "%s", path);
    if (n < 0 || (size_t)n >= sizeof a->path)
        return -ENAMETOOLONG;
    n = snprintf(a->tmp, sizeof a->tmp, "%s.tmp-XXXXXX", path);
    if (n < 0 || (size_t)n >= sizeof a->tmp)
        return -ENAMETOOLONG;
    int fd = mkostemp(a->tmp, O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        a->tmp[0] = '\0';
        return -e;
    }
    /* mkostemp makes it 0600; fchmod makes the mode exact whatever the umask. */
    if (fchmod(fd, mode) != 0) {
        int e = errno;
        close(fd);
        unlink(a->tmp);
        a->tmp[0] = '\0';
        return -e;
    }
    a->f = fdopen(fd, "w");
    if (!a->f) {
        int e = errno;
        close(fd);
        unlink(a->tmp);
        a->tmp[0] = '\0';
        return -e;
    }
    return 0;
}

void brokercfg_atomic_abort(struct brokercfg_atomic *a)
{
    if (a->f) {
        fclose(a->f);
        a->f = NULL;
    }
    if (a->tmp[0]) {
        unlink(a->tmp);
        a->tmp[0] = '\0';
    }
}

/* fsyncs the directory holding path, so the rename itself is durable. */
static int sync_dir(const char *path)
{
    char dir[PATH_MAX];
    int n = snprintf(dir, sizeof dir, "%s", path);
    if (n < 0 || (size_t)n >= sizeof dir)
        return -ENAMETOOLONG;
    char *slash = strrchr(dir, '/');
    if (!slash)
        memcpy(dir, ".", 2);
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

int brokercfg_atomic_commit(struct brokercfg_atomic *a)
{
    int rc = 0;
    if (fflush(a->f) != 0 || ferror(a->f))
        rc = -EIO;
    int fd = fileno(a->f);
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    struct stat old;
    if (rc == 0 && a->set_owner) {
        if (fchown(fd, a->uid, a->gid) != 0)
            rc = -errno;
    } else if (rc == 0 && stat(a->path, &old) == 0) {
        /* Keep the owner: a file chowned to the broker's account stays readable by it. */
        struct stat cur;
        if (fstat(fd, &cur) != 0)
            rc = -errno;
        else if ((cur.st_uid != old.st_uid || cur.st_gid != old.st_gid) &&
                 fchown(fd, old.st_uid, old.st_gid) != 0)
            rc = -errno;
    }
    if (fclose(a->f) != 0 && rc == 0)
        rc = -EIO;
    a->f = NULL;
    if (rc == 0 && rename(a->tmp, a->path) != 0)
        rc = -errno;
    if (rc != 0) {
        unlink(a->tmp);
        a->tmp[0] = '\0';
        return rc;
    }
    a->tmp[0] = '\0';
    return sync_dir(a->path);
}

int brokercfg_lock(const char *path)
{
    char lock[PATH_MAX];
    int n = snprintf(lock, sizeof lock, "%s.lock", path);
    if (n < 0 || (size_t)n >= sizeof lock)
        return -ENAMETOOLONG;
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            int e = errno;
            close(fd);
            return -e;
        }
    }
    return fd;
}

void brokercfg_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* closing releases the flock */
}

int brokercfg_token_ok(const char *s)
{
    if (!s || !*s)
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return 0;
    return 1;
}

bool brokercfg_user_valid(const char *name)
{
    if (!name)
        return false;
    size_t len = strlen(name);
    if (len == 0 || len > BROKERCFG_USER_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                  c == '.' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

int brokercfg_file_chown(const char *path, const char *account)
{
    if (!path || !account || !*account)
        return -EINVAL;
    errno = 0;
    struct passwd *pw = getpwnam(account);
    if (!pw)
        return errno ? -errno : -ENOENT;
    return chown(path, pw->pw_uid, pw->pw_gid) == 0 ? 0 : -errno;
}

/* ------------------------------------------------------------------------ */
/* Configuration                                                            */

void brokercfg_options_init(struct brokercfg_options *o)
{
    memset(o, 0, sizeof *o);
    o->node_port = 1883;
    o->hub_port = 1884;
    o->run_as_user = "mosquitto";
    o->expected_nodes = 1000;
    o->hub_downtime_hours = 24;
    o->autosave_changes = 1;
    o->max_packet_size = 16384;
}

unsigned brokercfg_queue_size(unsigned expected_nodes, unsigned hub_downtime_hours)
{
    uint64_t n = (uint64_t)expected_nodes * QUEUE_PER_NODE_HOUR * hub_downtime_hours;
    if (n < QUEUE_MIN)
        n = QUEUE_MIN;
    if (n > UINT32_MAX)
        n = UINT32_MAX;
    return (unsigned)n;
}

static bool port_ok(int port)
{
    return port > 0 && port <= 65535;
}

static bool path_ok(const char *p)
{
    return brokercfg_token_ok(p) && p[0] == '/' && strlen(p) < PATH_MAX;
}

/* An address for a listener: empty/NULL (all), an IP literal or a host name. */
static bool address_ok(const char *a)
{
    if (!a || !*a)
        return true;
    unsigned char buf[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, a, buf) == 1 || inet_pton(AF_INET6, a, buf) == 1)
        return true;
    size_t len = strlen(a);
    if (len > 253)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = a[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '-'))
            return false;
    }
    return true;
}

/* True when a listener on address covers 127.0.0.1 (all addresses or loopback). */
static bool covers_loopback(const char *a)
{
    return !a || !*a || strcmp(a, "0.0.0.0") == 0 || strcmp(a, "::") == 0 || strcmp(a, "127.0.0.1") == 0 ||
           strcmp(a, "localhost") == 0;
}

/* Splits "host:port" (the host an IP literal or a name, the port 1-65535). */
static bool host_port_ok(const char *s)
{
    if (!s || strlen(s) > 300)
        return false;
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s)
        return false;
    char host[301];
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno != 0 || end == colon + 1 || *end != '\0' || port < 1 || port > 65535)
        return false;
    return address_ok(host);
}

static int bridge_check(const struct brokercfg_bridge *b)
{
    if (!b || !b->area || !fw_id_valid(b->area) || !host_port_ok(b->address))
        return -EINVAL;
    if (!brokercfg_token_ok(b->password) || strlen(b->password) > BROKERCFG_PASSWORD_MAX)
        return -EINVAL;
    if (b->cafile && *b->cafile && !path_ok(b->cafile))
        return -EINVAL;
    return 0;
}

static int options_check(const struct brokercfg_options *o)
{
    if (!o || !path_ok(o->password_file) || !path_ok(o->acl_file) || !path_ok(o->persistence_dir))
        return -EINVAL;
    if ((o->pid_file && !path_ok(o->pid_file)) || (o->log_file && !path_ok(o->log_file)))
        return -EINVAL;
    if (o->run_as_user && !brokercfg_token_ok(o->run_as_user))
        return -EINVAL;
    if (!port_ok(o->hub_port) || (o->node_port != 0 && !port_ok(o->node_port)) ||
        (o->tls_port != 0 && !port_ok(o->tls_port)))
        return -EINVAL;
    if (!address_ok(o->node_address) || !address_ok(o->tls_address))
        return -EINVAL;
    if (o->node_port == 0 && o->tls_port == 0)
        return -EINVAL; /* nodes would have no way in */
    if (o->node_port == o->hub_port && covers_loopback(o->node_address))
        return -EINVAL;
    if (o->tls_port != 0) {
        if (o->tls_port == o->hub_port && covers_loopback(o->tls_address))
            return -EINVAL;
        if (o->tls_port == o->node_port)
            return -EINVAL;
        if (!path_ok(o->tls_cafile) || !path_ok(o->tls_certfile) || !path_ok(o->tls_keyfile))
            return -EINVAL;
    }
    if (o->max_packet_size != 0 && o->max_packet_size < 1024 + FW_TOPIC_MAX + 64)
        return -EINVAL; /* must carry the largest protocol message */
    if (o->bridge && bridge_check(o->bridge) != 0)
        return -EINVAL;
    return 0;
}

/* Per listener: the client id is forced to the user name, so one node cannot
 * take over another's session (or the hub's) by reusing its client id. */
static void print_clientid_line(FILE *out)
{
    fprintf(out, "# Client id := user name: nobody takes over another account's session.\n"
                 "use_username_as_clientid true\n");
}

int brokercfg_config_print(const struct brokercfg_options *o, FILE *out)
{
    int rc = options_check(o);
    if (rc != 0)
        return rc;
    unsigned queued = o->max_queued_messages ? o->max_queued_messages
                                             : brokercfg_queue_size(o->expected_nodes, o->hub_downtime_hours);
    size_t plen = strlen(o->persistence_dir);
    const char *pslash = o->persistence_dir[plen - 1] == '/' ? "" : "/";

    fprintf(out, "# mosquitto.conf for Firewatch, written by firewatchctl broker config.\n"
                 "# Regenerate it rather than editing it; see docs/internals/broker-security.md.\n"
                 "# Mosquitto 2.0 reads this file at start and again on SIGHUP.\n\n");

    fprintf(out, "# -- Who may connect --------------------------------------------------------\n");
    if (o->run_as_user)
        fprintf(out,
                "# Started as root, drop to this account; it must be able to read the\n"
                "# password and ACL files (firewatchctl chowns them to it).\n"
                "user %s\n",
                o->run_as_user);
    fprintf(out, "# One set of security settings for all listeners: the same accounts and the\n"
                 "# same ACL whether a node comes in on plain MQTT or on TLS.\n"
                 "per_listener_settings false\n"
                 "# Every client logs in with a user name and password; no anonymous access.\n"
                 "allow_anonymous false\n");
    fprintf(out,
            "# user:$7$ hashes (PBKDF2-HMAC-SHA512), one line per node and one for the hub.\n"
            "password_file %s\n",
            o->password_file);
    fprintf(out,
            "# What each account may publish and read, written from the node list; anything\n"
            "# not granted there is denied.\n"
            "acl_file %s\n",
            o->acl_file);
    fprintf(out, "\n");

    fprintf(out, "# -- Durability -------------------------------------------------------------\n");
    fprintf(out,
            "# Keep sessions, queued messages and retained alarm/status topics on disk.\n"
            "persistence true\n"
            "# Where the database (mosquitto.db) is kept.\n"
            "persistence_location %s%s\n",
            o->persistence_dir, pslash);
    fprintf(out,
            "# Save after a number of changes instead of every 30 minutes, so a queued\n"
            "# alarm event survives a broker crash.\n"
            "autosave_on_changes true\n"
            "# With autosave_on_changes this counts changes (queued QoS 1 messages,\n"
            "# retained messages, subscriptions), not seconds.\n"
            "autosave_interval %u\n",
            o->autosave_changes ? o->autosave_changes : 1u);
    fprintf(out,
            "# Messages queued for an offline persistent session - in practice the hub's\n"
            "# while it is down. Beyond this Mosquitto drops messages silently. Sized as\n"
            "# nodes x %u QoS 1 messages per node-hour x hours of hub downtime, at least %u\n"
            "# (here %u nodes, %u hours).\n"
            "max_queued_messages %u\n\n",
            QUEUE_PER_NODE_HOUR, QUEUE_MIN, o->expected_nodes, o->hub_downtime_hours, queued);

    fprintf(out, "# -- Behaviour --------------------------------------------------------------\n"
                 "# Send small packets at once: without it Nagle's algorithm and delayed ACKs\n"
                 "# add ~40 ms to every alarm.\n"
                 "set_tcp_nodelay true\n");
    if (o->max_packet_size)
        fprintf(out,
                "# Largest packet accepted, bytes; protocol payloads are at most %d bytes.\n"
                "max_packet_size %u\n",
                FW_PAYLOAD_MAX, o->max_packet_size);
    if (o->pid_file)
        fprintf(out,
                "# Where the broker writes its pid; brokercfg_reload() sends SIGHUP to it.\n"
                "pid_file %s\n",
                o->pid_file);
    if (o->log_file)
        fprintf(out, "# Log to a file.\nlog_dest file %s\n", o->log_file);
    else
        fprintf(out, "# Log to stderr (the journal, under systemd).\nlog_dest stderr\n");
    fprintf(out, "# Log errors,\nlog_type error\n# warnings,\nlog_type warning\n# notices\nlog_type notice\n"
                 "# and information such as connects (never payloads, never passwords).\n"
                 "log_type information\n"
                 "# Log each connect and disconnect with its user name: shows which nodes are\n"
                 "# up and which credentials are refused.\n"
                 "connection_messages true\n\n");

    fprintf(out, "# -- Listeners --------------------------------------------------------------\n"
                 "# Listener options apply to the listener above them. use_username_as_clientid\n"
                 "# is one: it must be repeated in each block (set before the first listener it\n"
                 "# would open an extra default listener on port 1883 instead).\n");
    if (o->node_port) {
        bool all = !o->node_address || !*o->node_address;
        fprintf(out, "# Plain MQTT for the nodes%s.\nlistener %d%s%s\n", all ? ", on every address" : "",
                o->node_port, all ? "" : " ", all ? "" : o->node_address);
        print_clientid_line(out);
    }
    fprintf(out,
            "# The hub's own listener, reachable only from this machine.\n"
            "listener %d 127.0.0.1\n",
            o->hub_port);
    print_clientid_line(out);
    if (o->tls_port) {
        bool all = !o->tls_address || !*o->tls_address;
        fprintf(out, "# MQTT over TLS for the nodes%s.\nlistener %d%s%s\n", all ? ", on every address" : "",
                o->tls_port, all ? "" : " ", all ? "" : o->tls_address);
        print_clientid_line(out);
        fprintf(out,
                "# The Firewatch CA: nodes check the broker's certificate against it%s.\n"
                "cafile %s\n"
                "# The broker's certificate (brokercfg_tls_create_server)\n"
                "certfile %s\n"
                "# and its private key.\n"
                "keyfile %s\n"
                "# TLS 1.2 is the oldest version accepted.\n"
                "tls_version tlsv1.2\n",
                o->tls_require_certificate ? ", and the broker checks theirs" : "", o->tls_cafile,
                o->tls_certfile, o->tls_keyfile);
        fprintf(out,
                "# %s\n"
                "require_certificate %s\n",
                o->tls_require_certificate ? "Clients must also present a certificate signed by the CA."
                                           : "Clients authenticate with their password only.",
                o->tls_require_certificate ? "true" : "false");
    }
    if (o->bridge) {
        fprintf(out, "\n");
        rc = brokercfg_bridge_print(out, o->bridge);
        if (rc != 0)
            return rc;
    }
    if (ferror(out))
        return -EIO;
    return 0;
}

int brokercfg_bridge_print(FILE *out, const struct brokercfg_bridge *b)
{
    if (!out || bridge_check(b) != 0)
        return -EINVAL;
    const char *area = b->area;
    bool tls = b->cafile && *b->cafile;
    fprintf(out,
            "# -- Federation bridge ------------------------------------------------------\n"
            "# Forwards this area's summaries (" FED_ROOT "/%s/...) to the regional\n"
            "# broker; see docs/federation.md. It must stay last: a connection line starts\n"
            "# a bridge section that takes every option after it. Bridges are not reloaded\n"
            "# on SIGHUP: restart the broker after changing this. It holds the area's\n"
            "# password, so the file is mode 0600.\n"
            "connection firewatch-fed-%s\n"
            "# The regional broker.\n"
            "address %s\n",
            area, area, b->address);
    fprintf(out,
            "# The client id on the regional broker: the account's name (its listener forces\n"
            "# the client id to the user name anyway).\n"
            "remote_clientid " FED_AREA_USER_PREFIX "%s\n"
            "# The account firewatchctl area add made for this area on the regional broker;\n"
            "# its ACL lets it write " FED_ROOT "/%s/# and nothing else.\n"
            "remote_username " FED_AREA_USER_PREFIX "%s\n"
            "# Its password (fed_password in hub.conf).\n"
            "remote_password %s\n",
            area, area, area, b->password);
    fprintf(out,
            "# MQTT 3.1.1, which every broker speaks.\n"
            "bridge_protocol_version mqttv311\n"
            "# A persistent session: messages for the regional broker queue here (up to\n"
            "# max_queued_messages, on disk) while the link is down and go when it is back.\n"
            "cleansession false\n"
            "# Publish the link's state, retained: 1 when up, 0 when it fails (on the\n"
            "# regional broker as the bridge's will), so the regional view can tell a\n"
            "# silent area from a cut link.\n"
            "notifications true\n"
            "# ...on this area's bridge topic, inside the subtree its account may write.\n"
            "notification_topic " FED_ROOT "/%s/bridge\n"
            "# Reconnect after 2 s, backing off (with jitter) to at most 30 s.\n"
            "restart_timeout 2 30\n"
            "# Ping after 30 s of silence: a dead link is noticed within ~45 s.\n"
            "keepalive_interval 30\n"
            "# Connect as an ordinary client, so the regional broker's ACL and\n"
            "# use_username_as_clientid apply to it like to any other account.\n"
            "try_private false\n"
            "# Forward the area's documents, out only (nothing comes back in), QoS 1:\n"
            "# every kind of docs/federation.md except bridge. Not /#: the bridge topic\n"
            "# must stay out, or the \"0\" the bridge publishes here when the link drops\n"
            "# is queued and delivered after it reconnects, and the regional broker ends\n"
            "# up saying 0 for a link that is up (seen with Mosquitto 2.0.11).\n"
            "# The hub document,\n"
            "topic " FED_ROOT "/%s/hub out 1\n"
            "# the readiness document,\n"
            "topic " FED_ROOT "/%s/readiness out 1\n"
            "# incidents\n"
            "topic " FED_ROOT "/%s/incident/+ out 1\n"
            "# and CAP alerts.\n"
            "topic " FED_ROOT "/%s/cap/+ out 1\n",
            area, area, area, area, area);
    if (tls)
        fprintf(out,
                "# TLS: the regional broker's certificate must be signed by this CA\n"
                "bridge_cafile %s\n"
                "# and name the host in address (hostname verification on).\n"
                "bridge_insecure false\n"
                "# TLS 1.2 at least.\n"
                "bridge_tls_version tlsv1.2\n",
                b->cafile);
    return ferror(out) ? -EIO : 0;
}

int brokercfg_config_write(const struct brokercfg_options *o, const char *path)
{
    int rc = options_check(o);
    if (rc != 0)
        return rc;
    struct passwd *pw = NULL;
    if (o->bridge && geteuid() == 0 && o->run_as_user) {
        /* Mosquitto rereads the file on SIGHUP after dropping to this account. */
        errno = 0;
        pw = getpwnam(o->run_as_user);
        if (!pw)
            return errno ? -errno : -ENOENT;
    }
    struct brokercfg_atomic a;
    rc = brokercfg_atomic_begin(&a, path, o->bridge ? 0600 : 0644);
    if (rc != 0)
        return rc;
    if (pw) {
        a.set_owner = true;
        a.uid = pw->pw_uid;
        a.gid = pw->pw_gid;
    }
    rc = brokercfg_config_print(o, a.f);
    if (rc != 0) {
        brokercfg_atomic_abort(&a);
        return rc;
    }
    return brokercfg_atomic_commit(&a);
}

/* Creates path as an empty file with mode when it does not exist. */
static int create_empty(const char *path, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return errno == EEXIST ? 0 : -errno;
    int rc = fchmod(fd, mode) == 0 ? 0 : -errno; /* exact, whatever the umask */
    close(fd);
    return rc;
}

int brokercfg_prepare(const struct brokercfg_options *o)
{
    int rc = options_check(o);
    if (rc != 0)
        return rc;
    if (mkdir(o->persistence_dir, 0700) != 0 && errno != EEXIST)
        return -errno;
    if ((rc = create_empty(o->password_file, 0600)) != 0 || (rc = create_empty(o->acl_file, 0600)) != 0)
        return rc;
    if (geteuid() != 0 || !o->run_as_user)
        return 0;
    if ((rc = brokercfg_file_chown(o->persistence_dir, o->run_as_user)) != 0 ||
        (rc = brokercfg_file_chown(o->password_file, o->run_as_user)) != 0 ||
        (rc = brokercfg_file_chown(o->acl_file, o->run_as_user)) != 0)
        return rc;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* ACL                                                                      */

/* True when filters a and b can match a common topic. */
static bool filters_overlap(const char *a, const char *b)
{
    for (;;) {
        size_t la = strcspn(a, "/"), lb = strcspn(b, "/");
        if ((la == 1 && a[0] == '#') || (lb == 1 && b[0] == '#'))
            return true;
        bool level_ok =
            (la == 1 && a[0] == '+') || (lb == 1 && b[0] == '+') || (la == lb && memcmp(a, b, la) == 0);
        if (!level_ok)
            return false;
        bool a_end = a[la] == '\0', b_end = b[lb] == '\0';
        if (a_end && b_end)
            return true;
        if (a_end || b_end) /* "x" and "x/#" overlap: # also matches the parent */
            return (!a_end && strcmp(a + la, "/#") == 0) || (!b_end && strcmp(b + lb, "/#") == 0);
        a += la + 1;
        b += lb + 1;
    }
}

bool brokercfg_filter_valid(const char *filter)
{
    if (!brokercfg_token_ok(filter) || strlen(filter) > BROKERCFG_FILTER_MAX)
        return false;
    for (const char *p = filter;;) {
        size_t len = strcspn(p, "/");
        bool last = p[len] == '\0';
        for (size_t i = 0; i < len; i++)
            if ((p[i] == '+' || p[i] == '#') && len != 1)
                return false;
        if (len == 1 && p[0] == '#' && !last)
            return false;
        if (last)
            return true;
        p += len + 1;
    }
}

/* An extra write grant for the hub: well-formed, not $SYS, and nowhere near
 * the nodes' topics. */
static bool hub_write_ok(const char *filter)
{
    return brokercfg_filter_valid(filter) && filter[0] != '$' &&
           !filters_overlap(filter, FW_TOPIC_ROOT "/node/#");
}

static int acl_check(const struct brokercfg_acl *acl)
{
    if (!acl || !brokercfg_user_valid(acl->hub_user) || fw_id_valid(acl->hub_user))
        return -EINVAL;
    if ((acl->n_nodes > 0 && !acl->nodes) || (acl->n_hub_write > 0 && !acl->hub_write) ||
        (acl->n_areas > 0 && !acl->areas))
        return -EINVAL;
    for (size_t i = 0; i < acl->n_nodes; i++)
        if (!acl->nodes[i].id || !acl->nodes[i].zone || !fw_id_valid(acl->nodes[i].id) ||
            !fw_id_valid(acl->nodes[i].zone))
            return -EINVAL;
    for (size_t i = 0; i < acl->n_hub_write; i++)
        if (!hub_write_ok(acl->hub_write[i]))
            return -EINVAL;
    size_t plen = strlen(FED_AREA_USER_PREFIX);
    if (strncmp(acl->hub_user, FED_AREA_USER_PREFIX, plen) == 0)
        return -EINVAL; /* the hub must not share a name with an area's account */
    for (size_t i = 0; i < acl->n_areas; i++) {
        if (!acl->areas[i] || !fw_id_valid(acl->areas[i]))
            return -EINVAL;
        for (size_t j = 0; j < i; j++)
            if (strcmp(acl->areas[i], acl->areas[j]) == 0)
                return -EINVAL;
    }
    return 0;
}

int brokercfg_acl_print_ex(FILE *out, const struct brokercfg_acl *acl)
{
    if (!out || acl_check(acl) != 0)
        return -EINVAL;
    fprintf(out, "# Mosquitto ACL for Firewatch, written by firewatchctl from the node list.\n"
                 "# Explicit per-account blocks; nothing here applies to anyone else, and\n"
                 "# anything not granted is denied. See docs/internals/broker-security.md.\n\n");
    fprintf(out,
            "# The hub reads everything and is the only writer of alarms, commands and\n"
            "# its own status.\n"
            "user %s\n"
            "topic read " FW_TOPIC_ROOT "/#\n"
            "topic write " FW_TOPIC_ROOT "/zone/+/alarm\n"
            "topic write " FW_TOPIC_ROOT "/node/+/cmd\n"
            "topic write " FW_TOPIC_ROOT "/hub/status\n",
            acl->hub_user);
    if (acl->n_hub_write > 0)
        fprintf(out, "# and what its configuration adds (federation, Home Assistant discovery).\n");
    for (size_t i = 0; i < acl->n_hub_write; i++)
        fprintf(out, "topic write %s\n", acl->hub_write[i]);
    for (size_t i = 0; i < acl->n_nodes; i++) {
        const char *id = acl->nodes[i].id, *zone = acl->nodes[i].zone;
        fprintf(out,
                "\n# node %s, zone %s\n"
                "user %s\n"
                "topic write " FW_TOPIC_ROOT "/node/%s/status\n"
                "topic write " FW_TOPIC_ROOT "/node/%s/reading\n"
                "topic write " FW_TOPIC_ROOT "/node/%s/event\n"
                "topic read " FW_TOPIC_ROOT "/node/%s/cmd\n"
                "topic read " FW_TOPIC_ROOT "/zone/%s/alarm\n",
                id, zone, id, id, id, id, id, zone);
    }
    for (size_t i = 0; i < acl->n_areas; i++) {
        const char *id = acl->areas[i];
        fprintf(out,
                "\n# area %s: its hub's bridge forwards its summaries here, and may write\n"
                "# nothing else and read nothing.\n"
                "user " FED_AREA_USER_PREFIX "%s\n"
                "topic write " FED_ROOT "/%s/#\n",
                id, id, id);
    }
    return ferror(out) ? -EIO : 0;
}

int brokercfg_acl_write_ex(const char *path, const struct brokercfg_acl *acl)
{
    if (!path)
        return -EINVAL;
    struct brokercfg_atomic a;
    int rc = brokercfg_atomic_begin(&a, path, 0600);
    if (rc != 0)
        return rc;
    rc = brokercfg_acl_print_ex(a.f, acl);
    if (rc != 0) {
        brokercfg_atomic_abort(&a);
        return rc;
    }
    return brokercfg_atomic_commit(&a);
}

int brokercfg_acl_print(FILE *out, const char *hub_user, const struct brokercfg_node *nodes, size_t n)
{
    struct brokercfg_acl acl = {.hub_user = hub_user, .nodes = nodes, .n_nodes = n};
    return brokercfg_acl_print_ex(out, &acl);
}

int brokercfg_acl_write(const char *path, const char *hub_user, const struct brokercfg_node *nodes, size_t n)
{
    struct brokercfg_acl acl = {.hub_user = hub_user, .nodes = nodes, .n_nodes = n};
    return brokercfg_acl_write_ex(path, &acl);
}

/* ------------------------------------------------------------------------ */
/* Reload                                                                   */

static int read_pid_file(const char *path, pid_t *out)
{
    char buf[32];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t got = read(fd, buf, sizeof buf - 1);
    int e = errno;
    close(fd);
    if (got < 0)
        return -e;
    buf[got] = '\0';
    char *end;
    errno = 0;
    long v = strtol(buf, &end, 10);
    if (errno != 0 || end == buf || (*end != '\0' && *end != '\n') || v <= 1 || v > INT32_MAX)
        return -EINVAL;
    *out = (pid_t)v;
    return 0;
}

/* True when /proc/<pid>/comm names mosquitto. */
static bool is_mosquitto(pid_t pid)
{
    char path[64], comm[32];
    snprintf(path, sizeof path, "/proc/%ld/comm", (long)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t got = read(fd, comm, sizeof comm - 1);
    close(fd);
    if (got <= 0)
        return false;
    comm[got] = '\0';
    comm[strcspn(comm, "\n")] = '\0';
    return strcmp(comm, "mosquitto") == 0;
}

int brokercfg_reload(const char *pid_file, pid_t pid)
{
    if (pid <= 0) {
        if (!pid_file)
            return -EINVAL;
        int rc = read_pid_file(pid_file, &pid);
        if (rc != 0)
            return rc;
    }
    if (!is_mosquitto(pid))
        return -ESRCH;
    return kill(pid, SIGHUP) == 0 ? 0 : -errno;
}
