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
 * against the fleet. One main thread drives all nodes on a 50 ms tick; paho's
 * own threads carry the traffic. The wire format comes from
 * libfirewatch-protocol, so the fleet can only send what a real node sends.
 */
#include <MQTTAsync.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "firewatch/protocol.h"
#include "log.h"

#define FLEET_VERSION "0.1.0"
#define FLEET_MAX_NODES 50000
#define FLEET_MAX_SCRIPTS 64
#define FLEET_PASSWORD_MAX 128

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
    MQTTAsync client;
    atomic_int connected;
    uint32_t boot;
    uint32_t seq; /* touched by the main thread and, for command answers, under lock */
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
static pthread_mutex_t seq_lock = PTHREAD_MUTEX_INITIALIZER;

/* Counters, written from paho's threads and the main thread. */
static atomic_long n_connected, n_conn_failed, n_readings, n_events, n_events_acked, n_send_failed, n_cmds;

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

static double now_s(int64_t start_ms)
{
    return (double)(clock_mono_ms() - start_ms) / 1000.0;
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

static void on_sent(void *ctx, MQTTAsync_successData5 *r)
{
    (void)ctx, (void)r;
    atomic_fetch_add(&n_events_acked, 1);
}

static void on_send_failed(void *ctx, MQTTAsync_failureData5 *r)
{
    (void)ctx, (void)r;
    atomic_fetch_add(&n_send_failed, 1);
}

/* Publishes a message of channel ch for node n; QoS 1 for events and status. */
static int publish(struct node *n, const char *topic, const struct fw_msg *m, int qos, bool retain)
{
    char buf[FW_PAYLOAD_MAX + 1];
    int len = fw_msg_encode(m, buf, sizeof buf);
    if (len < 0)
        return len;
    MQTTAsync_message msg = MQTTAsync_message_initializer;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    msg.payload = buf;
    msg.payloadlen = len;
    msg.qos = qos;
    msg.retained = retain;
    if (qos > 0) {
        ro.onSuccess5 = on_sent;
        ro.onFailure5 = on_send_failed;
        ro.context = n;
    }
    int rc = MQTTAsync_sendMessage(n->client, topic, &msg, &ro);
    if (rc != MQTTASYNC_SUCCESS) {
        atomic_fetch_add(&n_send_failed, 1);
        return -EIO;
    }
    return 0;
}

static uint32_t next_seq(struct node *n)
{
    pthread_mutex_lock(&seq_lock);
    uint32_t s = n->seq++;
    pthread_mutex_unlock(&seq_lock);
    return s;
}

static void send_event(struct node *n, enum fw_event_type type, enum fw_cause cause, enum fw_result result,
                       const char *cmd_id)
{
    struct fw_msg m = {.channel = FW_CH_NODE_EVENT};
    m.u.event.seq = next_seq(n);
    m.u.event.ts = clock_wall_ms();
    m.u.event.type = type;
    m.u.event.cause = cause;
    m.u.event.result = result;
    if (cmd_id)
        snprintf(m.u.event.cmd_id, sizeof m.u.event.cmd_id, "%s", cmd_id);
    if (publish(n, n->event_topic, &m, 1, false) == 0)
        atomic_fetch_add(&n_events, 1);
}

/* Runs on paho's thread: answer commands the way a healthy node does. */
static int on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *msg)
{
    struct node *n = ctx;
    struct fw_msg m;
    (void)topic_len;
    if (fw_msg_decode(FW_CH_NODE_CMD, msg->payload, (size_t)msg->payloadlen, &m, NULL) == 0) {
        atomic_fetch_add(&n_cmds, 1);
        if (m.u.cmd.cmd == FW_CMD_SELFTEST)
            send_event(n, FW_EV_TEST, FW_CAUSE_NONE, FW_RESULT_PASS, NULL);
        send_event(n, FW_EV_CMD_RESULT, FW_CAUSE_NONE, FW_RESULT_OK, m.u.cmd.id);
    }
    MQTTAsync_freeMessage(&msg);
    MQTTAsync_free(topic);
    return 1;
}

static void on_connected(void *ctx, char *cause)
{
    struct node *n = ctx;
    (void)cause;
    /* Birth and the command subscription, on first connect and every reconnect. */
    struct fw_msg m = {.channel = FW_CH_NODE_STATUS};
    m.u.status.online = true;
    m.u.status.boot = n->boot;
    m.u.status.kind = FW_KIND_COMBO;
    m.u.status.ts = clock_wall_ms();
    snprintf(m.u.status.fw, sizeof m.u.status.fw, "sim-%s", FLEET_VERSION);
    publish(n, n->status_topic, &m, 1, true);
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    MQTTAsync_subscribe(n->client, n->cmd_topic, 1, &ro);
    if (atomic_exchange(&n->connected, 1) == 0)
        atomic_fetch_add(&n_connected, 1);
}

static void on_connection_lost(void *ctx, char *cause)
{
    struct node *n = ctx;
    (void)cause;
    if (atomic_exchange(&n->connected, 0) == 1)
        atomic_fetch_sub(&n_connected, 1);
}

static void on_connect_failed(void *ctx, MQTTAsync_failureData5 *r)
{
    struct node *n = ctx;
    static atomic_int logged;
    atomic_fetch_add(&n_conn_failed, 1);
    if (atomic_fetch_add(&logged, 1) < 5)
        log_warn("%s: connect failed: %s (reason %d)", n->id, r && r->message ? r->message : "no answer",
                 r ? (int)r->reasonCode : -1);
}

static int node_start(struct node *n, const char *broker)
{
    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
    co.sendWhileDisconnected = 1;
    co.maxBufferedMessages = 100;
    co.allowDisconnectedSendAtAnyTime = 1;
    co.deleteOldestMessages = 1;
    int rc = MQTTAsync_createWithOptions(&n->client, broker, n->id, MQTTCLIENT_PERSISTENCE_NONE, NULL, &co);
    if (rc != MQTTASYNC_SUCCESS) {
        log_error("%s: cannot create client for %s (paho %d)", n->id, broker, rc);
        return -EINVAL;
    }
    MQTTAsync_setCallbacks(n->client, n, on_connection_lost, on_message, NULL);
    MQTTAsync_setConnected(n->client, n, on_connected);

    struct fw_msg w = {.channel = FW_CH_NODE_STATUS};
    w.u.status.online = false;
    w.u.status.boot = n->boot;
    if (fw_msg_encode(&w, n->will, sizeof n->will) < 0)
        return -EINVAL;
    MQTTAsync_willOptions will = MQTTAsync_willOptions_initializer;
    will.topicName = n->status_topic;
    will.message = n->will;
    will.retained = 1;
    will.qos = 1;

    MQTTAsync_connectOptions opts = MQTTAsync_connectOptions_initializer5;
    opts.keepAliveInterval = 60;
    opts.cleanstart = 1;
    opts.automaticReconnect = 1;
    opts.minRetryInterval = 1;
    opts.maxRetryInterval = 30;
    opts.username = n->id;
    opts.password = n->password[0] ? n->password : NULL;
    opts.will = &will;
    opts.onFailure5 = on_connect_failed;
    opts.context = n;
    rc = MQTTAsync_connect(n->client, &opts);
    if (rc != MQTTASYNC_SUCCESS) {
        log_error("%s: connect to %s refused at once (paho %d)", n->id, broker, rc);
        return -ECONNREFUSED;
    }
    return 0;
}

static void node_stop(struct node *n)
{
    if (!n->client)
        return;
    if (atomic_load(&n->connected)) {
        /* A clean goodbye is the will's payload, sent by the node itself. */
        struct fw_msg w = {.channel = FW_CH_NODE_STATUS};
        w.u.status.online = false;
        w.u.status.boot = n->boot;
        publish(n, n->status_topic, &w, 1, true);
        MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer5;
        d.timeout = 1000;
        MQTTAsync_disconnect(n->client, &d);
    }
}

static void send_reading(struct node *n, double t, unsigned tick)
{
    struct fw_msg m = {.channel = FW_CH_NODE_READING};
    m.u.reading.seq = next_seq(n);
    m.u.reading.ts = clock_wall_ms();
    m.u.reading.temp_c = node_temp(n, t, tick);
    m.u.reading.smoke = n->fire_at_s >= 0 && t >= n->fire_at_s + 20;
    m.u.reading.batt_pct = (uint8_t)lround(n->batt);
    if (publish(n, n->reading_topic, &m, 0, false) == 0)
        atomic_fetch_add(&n_readings, 1);
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

static void write_stats(const char *path, double secs)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        log_error("cannot write %s: %s", path, strerror(errno));
        return;
    }
    fprintf(f,
            "{\"nodes\":%d,\"connected\":%ld,\"connect_failures\":%ld,\"readings\":%ld,\"events\":%ld,"
            "\"events_acked\":%ld,\"send_failures\":%ld,\"commands\":%ld,\"seconds\":%.3f}\n",
            n_nodes, atomic_load(&n_connected), atomic_load(&n_conn_failed), atomic_load(&n_readings),
            atomic_load(&n_events), atomic_load(&n_events_acked), atomic_load(&n_send_failed),
            atomic_load(&n_cmds), secs);
    fclose(f);
}

static void raise_fd_limit(int want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)want) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)want ? rl.rlim_max : (rlim_t)want;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
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
    raise_fd_limit(n_nodes + 256);

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
    }
    for (int i = 0; i < o.n_scripts; i++) {
        struct node *n = find_node(o.scripts[i].node);
        switch (o.scripts[i].kind) {
        case SCRIPT_FIRE: n->fire_at_s = o.scripts[i].at_s; break;
        case SCRIPT_OFFLINE: n->dead = true; break;
        case SCRIPT_LOW_BATTERY:
            n->low_batt = true;
            n->batt = 22;
            break;
        }
    }

    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    MQTTAsync_init_options init = MQTTAsync_init_options_initializer;
    init.do_openssl_init = 1;
    MQTTAsync_global_init(&init);

    int64_t start = clock_mono_ms();
    double per_node_interval = o.rate > 0 ? (double)n_nodes / o.rate : o.interval_s;
    int started = 0, live = 0;
    unsigned tick = 0;
    int64_t next_progress = start;
    while (!stop_requested) {
        double t = now_s(start);
        if (o.duration_s > 0 && t >= o.duration_s)
            break;
        /* Connect in waves so the broker is not flooded. */
        int due = (int)fmin((double)n_nodes, t * o.connect_rate + o.connect_rate / 20.0);
        for (; started < due; started++) {
            struct node *n = &nodes[started];
            n->next_reading_ms =
                clock_mono_ms() + (int64_t)(per_node_interval * 1000 * hash01((unsigned)started));
            if (n->dead)
                continue;
            if (node_start(n, o.broker) == 0)
                live++;
        }
        int64_t now = clock_mono_ms();
        for (int i = 0; i < started; i++) {
            struct node *n = &nodes[i];
            if (n->dead || !n->client)
                continue;
            run_fire(n, t, tick);
            if (now >= n->next_reading_ms) {
                n->next_reading_ms += (int64_t)(per_node_interval * 1000);
                if (n->next_reading_ms < now)
                    n->next_reading_ms = now + (int64_t)(per_node_interval * 1000);
                if (!n->low_batt)
                    n->batt = fmax(20.5, n->batt - 0.001);
                else
                    n->batt = fmax(5, n->batt - 0.01);
                if (atomic_load(&n->connected))
                    send_reading(n, t, tick);
            }
        }
        if (!o.quiet && now >= next_progress) {
            fprintf(
                stderr, "\rfleet: %ld/%d connected, %ld readings, %ld events (%ld acked), %ld failed, %.0fs ",
                atomic_load(&n_connected), live, atomic_load(&n_readings), atomic_load(&n_events),
                atomic_load(&n_events_acked), atomic_load(&n_send_failed) + atomic_load(&n_conn_failed), t);
            next_progress = now + 1000;
        }
        tick++;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    double secs = now_s(start);
    if (!o.quiet)
        fputc('\n', stderr);
    log_info("stopping %d nodes", live);
    for (int i = 0; i < started; i++)
        node_stop(&nodes[i]);
    /* Give the goodbyes a moment to leave, bounded. */
    int64_t deadline = clock_mono_ms() + 2000;
    while (clock_mono_ms() < deadline) {
        bool pending = false;
        for (int i = 0; i < started && !pending; i++)
            if (nodes[i].client && MQTTAsync_isConnected(nodes[i].client))
                pending = true;
        if (!pending)
            break;
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < started; i++)
        if (nodes[i].client)
            MQTTAsync_destroy(&nodes[i].client);
    if (o.stats[0])
        write_stats(o.stats, secs);
    log_info("sent %ld readings and %ld events (%ld acknowledged) in %.1f s", atomic_load(&n_readings),
             atomic_load(&n_events), atomic_load(&n_events_acked), secs);
    free(nodes);
    return 0;
}
