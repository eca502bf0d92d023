/*
 * fleet.c - firewatch-fleet, thousands of simulated sensor nodes in one
 * process, for the demo, the benchmarks and the soak test.
 *
 * Each simulated node is a real MQTT 5 client with its own identity (its id
 * is its client id and username), birth and will, sequence numbers and
 * readings that look like a house: a per-node base temperature, a daily
 * cycle, noise, a battery that slowly drains. Scripted fires make a node's
 * temperature climb until it raises heat alarms, exactly as a node would
 * publish them. Nodes answer `selftest` commands so commissioning works
 * against the fleet. Everything runs in the main thread: the MQTT traffic of
 * every node goes through one epoll loop (swarm.c, on libmosquitto), and a
 * heap orders the nodes by their next reading, so 10,000 nodes cost little
 * more than their bytes. The wire format comes from libfirewatch-protocol,
 * so the fleet can only send what a real node sends.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "firewatch/protocol.h"
#include "log.h"
#include "swarm.h"

#define FLEET_VERSION "0.1.0"
#define FLEET_MAX_NODES 50000
#define FLEET_MAX_SCRIPTS 64
#define FLEET_PASSWORD_MAX 128
#define FLEET_KEEPALIVE_S 60
#define FLEET_TICK_MS 10       /* scheduler tick: readings, fires, progress */
#define FLEET_SHUTDOWN_MS 3000 /* bound on the goodbye, whatever the node count */
#define FLEET_CATCHUP 16       /* most readings per node in one tick (--rate > nodes/tick) */
#define FLEET_FD_RESERVE 64    /* descriptors besides the nodes' sockets */

/* Tags of QoS 1 publishes, so acknowledgements are counted by kind. */
enum { TAG_STATUS, TAG_EVENT };

enum script_kind { SCRIPT_FIRE, SCRIPT_OFFLINE, SCRIPT_LOW_BATTERY };

/* One scripted happening, from the command line. */
struct script {
    enum script_kind kind;
    char node[FW_ID_MAX + 1];
    double at_s; /* seconds after start */
};

struct node {
    char id[FW_ID_MAX + 1];
    char password[FLEET_PASSWORD_MAX];
    uint32_t boot;
    uint32_t seq;
    double base_c, phase;
    double batt;
    int64_t next_reading_ms;
    bool dead;        /* scripted offline: never connects */
    bool low_batt;    /* scripted low battery */
    double fire_at_s; /* < 0: no fire */
    int fire_stage;   /* 0 none, 1 heat_ror sent, 2 heat_fixed sent */
    char status_topic[FW_TOPIC_MAX], reading_topic[FW_TOPIC_MAX], event_topic[FW_TOPIC_MAX],
        cmd_topic[FW_TOPIC_MAX];
    char will[64];
};

struct options {
    char broker[256];
    char host[256];
    int port;
    int nodes;
    char prefix[16];
    char ids_from[256];
    char password[FLEET_PASSWORD_MAX];
    double interval_s;
    double rate; /* total readings per second; 0: every node every interval_s */
    double duration_s;
    int connect_rate;
    bool quiet;
    char stats[256];
    uint32_t boot;
    struct script scripts[FLEET_MAX_SCRIPTS];
    int n_scripts;
};

static struct node *nodes;
static int n_nodes;
static volatile sig_atomic_t stop_requested;
static struct swarm *swarm;

/* Counters; everything runs in the main thread. */
static long n_readings, n_events, n_events_acked, n_send_failed, n_cmds, n_refused, n_dropped;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: firewatch-fleet [options]\n"
               "Runs many simulated Firewatch nodes against an MQTT broker.\n\n"
               "  -b, --broker URL        broker (default tcp://127.0.0.1:1883)\n"
               "  -n, --nodes N           number of nodes, ids PREFIX-0001... (default 60)\n"
               "      --prefix P          node id prefix (default n)\n"
               "      --ids-from FILE     node ids from FILE, one per line: \"id [password]\"\n"
               "      --password P        password for every node without its own\n"
               "                          (default: $FLEET_PASSWORD, else none)\n"
               "  -i, --interval S        reading interval per node in seconds (default 60)\n"
               "      --rate R            total readings per second instead, spread over the nodes\n"
               "  -d, --duration S        stop after S seconds (default: until Ctrl-C)\n"
               "      --connect-rate R    new connections per second (default 500)\n"
               "      --boot N            boot number for every node (default: seconds since 2025)\n"
               "      --fire ID@T         node ID starts a fire T seconds after start\n"
               "      --offline ID        node ID never comes online\n"
               "      --low-battery ID    node ID reports a battery running low\n"
               "      --stats FILE        write final counters as JSON to FILE\n"
               "  -q, --quiet             no progress line\n"
               "  -h, --help              this help\n"
               "      --version           print the version\n");
}

static int parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !(v >= lo && v <= hi))
        return -EINVAL;
    *out = v;
    return 0;
}

/* Splits a broker URL, tcp://host:port, mqtt://host:port, host:port or host
 * (IPv6 literals in brackets), into host and port. TLS and WebSocket URLs
 * are refused: the fleet speaks plain MQTT to a broker it is tested with. */
static int parse_broker(const char *url, char *host, size_t hsize, int *port)
{
    const char *p = url, *colon;
    const char *sep = strstr(url, "://");
    if (sep) {
        size_t slen = (size_t)(sep - url);
        if (!((slen == 3 && strncmp(url, "tcp", 3) == 0) || (slen == 4 && strncmp(url, "mqtt", 4) == 0)))
            return -EPROTONOSUPPORT;
        p = sep + 3;
    }
    size_t hlen;
    if (*p == '[') {
        const char *close = strchr(p, ']');
        if (!close)
            return -EINVAL;
        p++;
        hlen = (size_t)(close - p);
        colon = close[1] == ':' ? close + 1 : NULL;
        if (!colon && close[1] != '\0')
            return -EINVAL;
    } else {
        colon = strrchr(p, ':');
        hlen = colon ? (size_t)(colon - p) : strlen(p);
    }
    if (hlen == 0 || hlen >= hsize)
        return -EINVAL;
    memcpy(host, p, hlen);
    host[hlen] = '\0';
    *port = 1883;
    if (colon) {
        double v;
        if (parse_double(colon + 1, 1, 65535, &v) < 0 || v != floor(v))
            return -EINVAL;
        *port = (int)v;
    }
    return 0;
}

static int add_script(struct options *o, enum script_kind kind, const char *arg)
{
    if (o->n_scripts >= FLEET_MAX_SCRIPTS)
        return -E2BIG;
    struct script *s = &o->scripts[o->n_scripts];
    const char *at = strchr(arg, '@');
    size_t idlen = at ? (size_t)(at - arg) : strlen(arg);
    if (idlen == 0 || idlen > FW_ID_MAX)
        return -EINVAL;
    memcpy(s->node, arg, idlen);
    s->node[idlen] = '\0';
    if (!fw_id_valid(s->node))
        return -EINVAL;
    s->kind = kind;
    s->at_s = 0;
    if (at && parse_double(at + 1, 0, 1e7, &s->at_s) < 0)
        return -EINVAL;
    if (kind == SCRIPT_FIRE && !at)
        return -EINVAL;
    o->n_scripts++;
    return 0;
}

static int parse_args(int argc, char **argv, struct options *o)
{
    enum {
        OPT_PREFIX = 256,
        OPT_IDS,
        OPT_PASSWORD,
        OPT_RATE,
        OPT_CRATE,
        OPT_BOOT,
        OPT_FIRE,
        OPT_OFFLINE,
        OPT_LOWBATT,
        OPT_STATS,
        OPT_VERSION
    };
    static const struct option longopts[] = {
        {"broker", required_argument, 0, 'b'},
        {"nodes", required_argument, 0, 'n'},
        {"prefix", required_argument, 0, OPT_PREFIX},
        {"ids-from", required_argument, 0, OPT_IDS},
        {"password", required_argument, 0, OPT_PASSWORD},
        {"interval", required_argument, 0, 'i'},
        {"rate", required_argument, 0, OPT_RATE},
        {"duration", required_argument, 0, 'd'},
        {"connect-rate", required_argument, 0, OPT_CRATE},
        {"boot", required_argument, 0, OPT_BOOT},
        {"fire", required_argument, 0, OPT_FIRE},
        {"offline", required_argument, 0, OPT_OFFLINE},
        {"low-battery", required_argument, 0, OPT_LOWBATT},
        {"stats", required_argument, 0, OPT_STATS},
        {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, OPT_VERSION},
        {0, 0, 0, 0},
    };
    double v;
    int c;

    snprintf(o->broker, sizeof o->broker, "tcp://127.0.0.1:1883");
    snprintf(o->prefix, sizeof o->prefix, "n");
    const char *envpw = getenv("FLEET_PASSWORD");
    snprintf(o->password, sizeof o->password, "%s", envpw ? envpw : "");
    o->nodes = 60;
    o->interval_s = 60;
    o->connect_rate = 500;
    o->boot = (uint32_t)((clock_wall_ms() / 1000 - 1735689600) & 0x7fffffff);

    while ((c = getopt_long(argc, argv, "b:n:i:d:qh", longopts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'b': snprintf(o->broker, sizeof o->broker, "%s", optarg); break;
        case 'n':
            bad = parse_double(optarg, 1, FLEET_MAX_NODES, &v);
            o->nodes = (int)v;
            break;
        case OPT_PREFIX:
            snprintf(o->prefix, sizeof o->prefix, "%s", optarg);
            bad = fw_id_valid(o->prefix) ? 0 : -EINVAL;
            break;
        case OPT_IDS: snprintf(o->ids_from, sizeof o->ids_from, "%s", optarg); break;
        case OPT_PASSWORD: snprintf(o->password, sizeof o->password, "%s", optarg); break;
        case 'i': bad = parse_double(optarg, 0.05, 86400, &o->interval_s); break;
        case OPT_RATE: bad = parse_double(optarg, 0, 1e7, &o->rate); break;
        case 'd': bad = parse_double(optarg, 0, 1e9, &o->duration_s); break;
        case OPT_CRATE:
            bad = parse_double(optarg, 1, 1e6, &v);
            o->connect_rate = (int)v;
            break;
        case OPT_BOOT:
            bad = parse_double(optarg, 0, 4294967295.0, &v);
            o->boot = (uint32_t)v;
            break;
        case OPT_FIRE: bad = add_script(o, SCRIPT_FIRE, optarg); break;
        case OPT_OFFLINE: bad = add_script(o, SCRIPT_OFFLINE, optarg); break;
        case OPT_LOWBATT: bad = add_script(o, SCRIPT_LOW_BATTERY, optarg); break;
        case OPT_STATS: snprintf(o->stats, sizeof o->stats, "%s", optarg); break;
        case 'q': o->quiet = true; break;
        case 'h': usage(stdout); exit(0);
        case OPT_VERSION: printf("firewatch-fleet %s\n", FLEET_VERSION); exit(0);
        default: usage(stderr); return -EINVAL;
        }
        if (bad) {
            fprintf(stderr, "firewatch-fleet: bad value for --%s: '%s'\n", argv[optind - 1] + 2, optarg);
            return -EINVAL;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "firewatch-fleet: unexpected argument '%s'\n", argv[optind]);
        return -EINVAL;
    }
    int rc = parse_broker(o->broker, o->host, sizeof o->host, &o->port);
    if (rc < 0) {
        fprintf(stderr, "firewatch-fleet: bad value for --broker: '%s'%s\n", o->broker,
                rc == -EPROTONOSUPPORT ? " (only tcp:// and mqtt:// brokers)" : "");
        return -EINVAL;
    }
    return 0;
}

/* Deterministic per-node pseudo-randomness, so a run is repeatable. */
static double hash01(unsigned x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return (double)x / 4294967296.0;
}

static int load_ids(const char *path, const char *default_pw)
{
    FILE *f = fopen(path, "r");
    char line[512];
    int lineno = 0;
    if (!f) {
        fprintf(stderr, "firewatch-fleet: %s: %s\n", path, strerror(errno));
        return -errno;
    }
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *save = NULL, *id = strtok_r(line, " \t\r\n", &save);
        if (!id || id[0] == '#')
            continue;
        char *pw = strtok_r(NULL, " \t\r\n", &save);
        if (!fw_id_valid(id) || n_nodes >= FLEET_MAX_NODES) {
            fprintf(stderr, "firewatch-fleet: %s:%d: '%s' is not a node id (or too many nodes)\n", path,
                    lineno, id);
            fclose(f);
            return -EINVAL;
        }
        struct node *n = &nodes[n_nodes++];
        snprintf(n->id, sizeof n->id, "%s", id);
        snprintf(n->password, sizeof n->password, "%s", pw ? pw : default_pw);
    }
    fclose(f);
    return 0;
}

static struct node *find_node(const char *id)
{
    for (int i = 0; i < n_nodes; i++)
        if (strcmp(nodes[i].id, id) == 0)
            return &nodes[i];
    return NULL;
}

/* Temperature of node n at run time t (seconds): base + daily cycle + noise,
 * or a fire curve (about 15 C/min, then faster) once its fire started. */
static double node_temp(const struct node *n, double t, unsigned tick)
{
    double wall_h = (double)(clock_wall_ms() % 86400000) / 3600000.0;
    double temp = n->base_c + 2.5 * sin((wall_h / 24.0) * 2 * M_PI + n->phase) +
                  0.3 * (hash01(tick ^ (unsigned)(n - nodes) * 2654435761U) - 0.5);
    if (n->fire_at_s >= 0 && t >= n->fire_at_s) {
        double m = (t - n->fire_at_s) / 60.0;
        temp += 15.0 * m + 20.0 * m * m;
    }
    return fmin(fmax(temp, FW_TEMP_MIN), FW_TEMP_MAX);
}

/* Publishes message m for node n; QoS 1 publishes are acknowledged by tag. */
static int publish(struct node *n, const char *topic, const struct fw_msg *m, int qos, bool retain, int tag)
{
    char buf[FW_PAYLOAD_MAX + 1];
    int len = fw_msg_encode(m, buf, sizeof buf);
    if (len < 0)
        return len;
    int rc = swarm_publish(swarm, (int)(n - nodes), topic, buf, len, qos, retain, tag);
    if (rc < 0)
        n_send_failed++;
    return rc;
}

static void send_event(struct node *n, enum fw_event_type type, enum fw_cause cause, enum fw_result result,
                       const char *cmd_id)
{
    struct fw_msg m = {.channel = FW_CH_NODE_EVENT};
    m.u.event.seq = n->seq++;
    m.u.event.ts = clock_wall_ms();
    m.u.event.type = type;
    m.u.event.cause = cause;
    m.u.event.result = result;
    if (cmd_id)
        snprintf(m.u.event.cmd_id, sizeof m.u.event.cmd_id, "%s", cmd_id);
    if (publish(n, n->event_topic, &m, 1, false, TAG_EVENT) == 0)
        n_events++;
}

/* Answers commands the way a healthy node does. */
static void on_message(void *ctx, int idx, const char *topic, const void *payload, size_t len)
{
    struct node *n = &nodes[idx];
    struct fw_msg m;
    (void)ctx, (void)topic;
    if (fw_msg_decode(FW_CH_NODE_CMD, payload, len, &m, NULL) == 0) {
        n_cmds++;
        if (m.u.cmd.cmd == FW_CMD_SELFTEST)
            send_event(n, FW_EV_TEST, FW_CAUSE_NONE, FW_RESULT_PASS, NULL);
        send_event(n, FW_EV_CMD_RESULT, FW_CAUSE_NONE, FW_RESULT_OK, m.u.cmd.id);
    }
}

/* Birth and the command subscription, on first connect and every reconnect. */
static void on_up(void *ctx, int idx)
{
    struct node *n = &nodes[idx];
    (void)ctx;
    struct fw_msg m = {.channel = FW_CH_NODE_STATUS};
    m.u.status.online = true;
    m.u.status.boot = n->boot;
    m.u.status.kind = FW_KIND_COMBO;
    m.u.status.ts = clock_wall_ms();
    snprintf(m.u.status.fw, sizeof m.u.status.fw, "sim-%s", FLEET_VERSION);
    publish(n, n->status_topic, &m, 1, true, TAG_STATUS);
    if (swarm_subscribe(swarm, idx, n->cmd_topic) < 0)
        n_send_failed++;
}

/* A PUBACK: MQTT 5 reason codes from 0x80 up are refusals (an ACL denial
 * is 0x87), which a node must count as failures, not deliveries. */
static void on_ack(void *ctx, int idx, int tag, int reason)
{
    static struct log_limit lim;
    uint64_t supp = 0;
    (void)ctx;
    if (reason >= 0x80) {
        n_refused++;
        n_send_failed++;
        if (log_limit_allow(&lim, clock_mono_ms(), 5, 10000, &supp))
            log_warn("%s: publish refused by the broker (reason 0x%02x)%s", nodes[idx].id, (unsigned)reason,
                     supp ? " (more suppressed)" : "");
    } else if (tag == TAG_EVENT) {
        n_events_acked++;
    }
}

/* The clean goodbye is the will's payload, sent by the node itself. */
static void on_goodbye(void *ctx, int idx)
{
    struct node *n = &nodes[idx];
    (void)ctx;
    struct fw_msg w = {.channel = FW_CH_NODE_STATUS};
    w.u.status.online = false;
    w.u.status.boot = n->boot;
    publish(n, n->status_topic, &w, 1, true, TAG_STATUS);
}

/* A reading, when the node has a session (QoS 0: a node sends none offline). */
static void send_reading(struct node *n, double t, unsigned tick)
{
    if (!swarm_is_up(swarm, (int)(n - nodes)))
        return;
    struct fw_msg m = {.channel = FW_CH_NODE_READING};
    m.u.reading.seq = n->seq++;
    m.u.reading.ts = clock_wall_ms();
    m.u.reading.temp_c = node_temp(n, t, tick);
    m.u.reading.smoke = n->fire_at_s >= 0 && t >= n->fire_at_s + 20;
    m.u.reading.batt_pct = (uint8_t)lround(n->batt);
    if (publish(n, n->reading_topic, &m, 0, false, 0) == 0)
        n_readings++;
}

/* Fire progression: heat_ror once the curve is steep, heat_fixed at 57 C. */
static void run_fire(struct node *n, double t, unsigned tick)
{
    if (n->fire_at_s < 0 || t < n->fire_at_s || n->fire_stage >= 2)
        return;
    double temp = node_temp(n, t, tick);
    if (n->fire_stage == 0 && t - n->fire_at_s >= 20) {
        n->fire_stage = 1;
        log_info("%s: fire: temperature %.1f C rising fast, raising heat_ror alarm", n->id, temp);
        send_event(n, FW_EV_ALARM, FW_CAUSE_HEAT_ROR, FW_RESULT_NONE, NULL);
        send_reading(n, t, tick);
    }
    if (n->fire_stage == 1 && temp >= 57.0) {
        n->fire_stage = 2;
        log_info("%s: fire: temperature %.1f C, raising heat_fixed alarm", n->id, temp);
        send_event(n, FW_EV_ALARM, FW_CAUSE_HEAT_FIXED, FW_RESULT_NONE, NULL);
        send_reading(n, t, tick);
    }
}

/* Min-heap of node indices by next reading time: each tick pops only the
 * nodes that are due, instead of walking all of them. */
static int *heap;
static int heap_len;

static bool heap_less(int a, int b)
{
    return nodes[heap[a]].next_reading_ms < nodes[heap[b]].next_reading_ms;
}

static void heap_swap(int a, int b)
{
    int t = heap[a];
    heap[a] = heap[b];
    heap[b] = t;
}

static void heap_push(int idx)
{
    int i = heap_len++;
    heap[i] = idx;
    while (i > 0 && heap_less(i, (i - 1) / 2)) {
        heap_swap(i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

/* Restores the order after the top's time moved later. */
static void heap_sift_top(void)
{
    int i = 0;
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < heap_len && heap_less(l, m))
            m = l;
        if (r < heap_len && heap_less(r, m))
            m = r;
        if (m == i)
            return;
        heap_swap(i, m);
        i = m;
    }
}

static void write_stats(const char *path, double secs, long connected, const struct swarm_stats *st)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        log_error("cannot write %s: %s", path, strerror(errno));
        return;
    }
    fprintf(f,
            "{\"nodes\":%d,\"connected\":%ld,\"connect_failures\":%ld,\"readings\":%ld,\"events\":%ld,"
            "\"events_acked\":%ld,\"send_failures\":%ld,\"commands\":%ld,\"seconds\":%.3f,"
            "\"refused\":%ld,\"reconnects\":%ld,\"readings_dropped\":%ld}\n",
            n_nodes, connected, st->connect_failures, n_readings, n_events, n_events_acked, n_send_failed,
            n_cmds, secs, n_refused, st->reconnects, n_dropped);
    fclose(f);
}

/* Each node needs one descriptor (its socket). Raises the soft limit as far
 * as needed; fails, saying so, when the hard limit cannot hold the fleet. */
static int raise_fd_limit(int live)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)live + FLEET_FD_RESERVE;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -errno;
    if (rl.rlim_cur >= want)
        return 0;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
        fprintf(stderr,
                "firewatch-fleet: %d nodes need %llu open files, but the hard limit (ulimit -Hn) is %llu: "
                "at most %lld nodes per process here; raise the limit or split the fleet\n",
                live, (unsigned long long)want, (unsigned long long)rl.rlim_max,
                (long long)rl.rlim_max - FLEET_FD_RESERVE);
        return -EMFILE;
    }
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
        fprintf(stderr, "firewatch-fleet: cannot raise the open files limit to %llu: %s\n",
                (unsigned long long)want, strerror(errno));
        return -errno;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static struct options o;
    log_init("firewatch-fleet", LOGL_INFO);
    if (parse_args(argc, argv, &o) < 0)
        return 2;

    nodes = calloc(FLEET_MAX_NODES, sizeof *nodes);
    if (!nodes)
        return 1;
    if (o.ids_from[0]) {
        if (load_ids(o.ids_from, o.password) < 0)
            return 2;
    } else {
        for (int i = 0; i < o.nodes; i++) {
            snprintf(nodes[i].id, sizeof nodes[i].id, "%s-%04d", o.prefix, i + 1);
            snprintf(nodes[i].password, sizeof nodes[i].password, "%s", o.password);
        }
        n_nodes = o.nodes;
    }
    if (n_nodes == 0) {
        fprintf(stderr, "firewatch-fleet: no nodes\n");
        return 2;
    }
    for (int i = 0; i < o.n_scripts; i++) {
        struct node *n = find_node(o.scripts[i].node);
        if (!n) {
            fprintf(stderr, "firewatch-fleet: scripted node '%s' is not in the fleet\n", o.scripts[i].node);
            return 2;
        }
    }

    for (int i = 0; i < n_nodes; i++) {
        struct node *n = &nodes[i];
        n->boot = o.boot;
        n->base_c = 21.0 + 5.0 * hash01((unsigned)i * 7919U);
        n->phase = 2 * M_PI * hash01((unsigned)i * 104729U);
        n->batt = 60.0 + 40.0 * hash01((unsigned)i * 15485863U);
        n->fire_at_s = -1;
        fw_topic_build(n->status_topic, sizeof n->status_topic, FW_CH_NODE_STATUS, n->id);
        fw_topic_build(n->reading_topic, sizeof n->reading_topic, FW_CH_NODE_READING, n->id);
        fw_topic_build(n->event_topic, sizeof n->event_topic, FW_CH_NODE_EVENT, n->id);
        fw_topic_build(n->cmd_topic, sizeof n->cmd_topic, FW_CH_NODE_CMD, n->id);
        struct fw_msg w = {.channel = FW_CH_NODE_STATUS};
        w.u.status.online = false;
        w.u.status.boot = n->boot;
        if (fw_msg_encode(&w, n->will, sizeof n->will) < 0)
            return 1;
    }
    int fires[FLEET_MAX_SCRIPTS], n_fires = 0;
    for (int i = 0; i < o.n_scripts; i++) {
        struct node *n = find_node(o.scripts[i].node);
        switch (o.scripts[i].kind) {
        case SCRIPT_FIRE:
            n->fire_at_s = o.scripts[i].at_s;
            fires[n_fires++] = (int)(n - nodes);
            break;
        case SCRIPT_OFFLINE: n->dead = true; break;
        case SCRIPT_LOW_BATTERY:
            n->low_batt = true;
            n->batt = 19; /* already under the 20 % trouble threshold, and falling */
            break;
        }
    }
    int live = 0;
    for (int i = 0; i < n_nodes; i++)
        live += !nodes[i].dead;
    if (raise_fd_limit(live) < 0)
        return 2;

    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* A write to a socket the broker just closed must be an error, not death. */
    struct sigaction ign = {.sa_handler = SIG_IGN};
    sigaction(SIGPIPE, &ign, NULL);

    struct swarm_config sc = {
        .port = o.port,
        .keepalive_s = FLEET_KEEPALIVE_S,
        .connect_rate = o.connect_rate,
        .cb = {.on_up = on_up, .on_message = on_message, .on_ack = on_ack},
    };
    snprintf(sc.host, sizeof sc.host, "%s", o.host);
    swarm = swarm_new(&sc, n_nodes);
    heap = calloc((size_t)n_nodes, sizeof *heap);
    if (!swarm || !heap) {
        log_error("cannot set up %d nodes: %s", n_nodes, strerror(errno));
        return 1;
    }

    /* Every live node joins the connection queue now; the swarm opens the
     * connections at --connect-rate. Readings start at a per-node offset
     * within one interval, so the load is even from the start. */
    int64_t start = clock_mono_ms();
    double per_node_interval = o.rate > 0 ? (double)n_nodes / o.rate : o.interval_s;
    int64_t interval_ms = (int64_t)fmax(1.0, per_node_interval * 1000);
    for (int i = 0; i < n_nodes; i++) {
        struct node *n = &nodes[i];
        if (n->dead)
            continue;
        n->next_reading_ms = start + (int64_t)(per_node_interval * 1000 * hash01((unsigned)i));
        heap_push(i);
        if (swarm_start(swarm, i, n->id, n->password, n->status_topic, n->will) < 0)
            return 1;
    }

    int64_t next_progress = start;
    while (!stop_requested) {
        int64_t now = clock_mono_ms();
        double t = (double)(now - start) / 1000.0;
        if (o.duration_s > 0 && t >= o.duration_s)
            break;
        unsigned tick = (unsigned)((now - start) / 50); /* the noise model's 50 ms step */
        for (int i = 0; i < n_fires; i++)
            run_fire(&nodes[fires[i]], t, tick);
        /* Due readings. An interval shorter than the tick means several
         * readings per node per tick; a node that fell further behind than
         * two ticks skips ahead rather than bursting. */
        for (long sent = 0; heap_len > 0 && sent < FLEET_CATCHUP * (long)n_nodes; sent++) {
            struct node *n = &nodes[heap[0]];
            if (n->next_reading_ms > now)
                break;
            n->next_reading_ms += interval_ms;
            if (n->next_reading_ms + 2 * FLEET_TICK_MS < now)
                n->next_reading_ms = now + interval_ms;
            if (!n->low_batt)
                n->batt = fmax(20.5, n->batt - 0.001);
            else
                n->batt = fmax(5, n->batt - 0.05);
            /* Offline, a node sends no QoS 0 readings; with its socket full,
             * it drops them rather than queueing without bound. */
            if (swarm_is_up(swarm, heap[0]) && swarm_is_backlogged(swarm, heap[0]))
                n_dropped++;
            else
                send_reading(n, t, tick);
            heap_sift_top();
        }
        if (!o.quiet && now >= next_progress) {
            struct swarm_stats st;
            swarm_get_stats(swarm, &st);
            fprintf(
                stderr, "\rfleet: %ld/%d connected, %ld readings, %ld events (%ld acked), %ld failed, %.0fs ",
                st.up, live, n_readings, n_events, n_events_acked, n_send_failed + st.connect_failures, t);
            next_progress = now + 1000;
        }
        int64_t wait = FLEET_TICK_MS - (clock_mono_ms() - now);
        if (swarm_run(swarm, wait > 0 ? (int)wait : 0) < 0)
            break;
    }
    double secs = (double)(clock_mono_ms() - start) / 1000.0;
    if (!o.quiet)
        fputc('\n', stderr);
    struct swarm_stats st;
    swarm_get_stats(swarm, &st);
    long connected = st.up;
    log_info("stopping %d nodes (%ld connected)", live, connected);
    int64_t t0 = clock_mono_ms();
    int clean = swarm_shutdown(swarm, FLEET_SHUTDOWN_MS, on_goodbye);
    log_info("%d nodes said goodbye in %.2f s", clean, (double)(clock_mono_ms() - t0) / 1000.0);
    swarm_get_stats(swarm, &st);
    swarm_free(swarm);
    if (o.stats[0])
        write_stats(o.stats, secs, connected, &st);
    log_info("sent %ld readings and %ld events (%ld acknowledged) in %.1f s", n_readings, n_events,
             n_events_acked, secs);
    free(heap);
    free(nodes);
    return 0;
}
