/*
 * node.c - see node.h. Local first: detection and the sounder run in this
 * loop whatever the network does; MQTT is a client of the detector's
 * decisions, never in their way. Messages for the hub go through the
 * bounded outq (outq.h), drained in order whenever the link is up.
 */
#include "node.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "detect.h"
#include "firewatch/protocol.h"
#include "hw.h"
#include "link.h"
#include "log.h"
#include "outq.h"
#include "state.h"

#define HW_FDS_MAX 8
#define SIGNIFICANT_C 2.0       /* a temperature change that is published at once */
#define READING_MIN_GAP_MS 1000 /* ... but no more often than this */
#define IDENTIFY_MS 10000
#define CLOSE_TIMEOUT_MS 2000

struct node {
    struct node_config cfg;
    const char *config_path;
    struct hw *hw;
    struct link *link;
    struct outq *q;
    struct detect det;
    uint32_t boot, seq;
    enum fw_node_kind kind;
    char topic[FW_CH_COUNT][FW_TOPIC_MAX];
    int64_t next_sample, next_reading, last_reading;
    bool have_temp;
    double pub_temp;
    bool pub_smoke, have_pub;
    struct hw_sample last;
    struct log_limit bad_msg_limit;
    int sigfd;
    bool stop;
};

static void build_topics(struct node *n)
{
    for (int ch = 0; ch < FW_CH_COUNT; ch++) {
        n->topic[ch][0] = '\0';
        const char *id = ch == FW_CH_ZONE_ALARM ? n->cfg.zone : n->cfg.id;
        if (ch == FW_CH_ZONE_ALARM && !n->cfg.zone[0])
            continue;
        if (fw_topic_build(n->topic[ch], sizeof n->topic[ch], (enum fw_channel)ch, id) < 0)
            n->topic[ch][0] = '\0';
    }
}

/* Encodes msg and queues it; then tries to send what is queued. */
static void flush(struct node *n);

static void enqueue(struct node *n, const struct fw_msg *m, int qos, enum outq_class cls)
{
    char buf[FW_PAYLOAD_MAX + 1];
    int len = fw_msg_encode(m, buf, sizeof buf);
    if (len < 0) {
        log_error("cannot encode a %s message: %s", fw_channel_name(m->channel), strerror(-len));
        return;
    }
    int rc = outq_push(n->q, m->channel, qos, false, cls, buf, (size_t)len);
    if (rc == 1 || rc == -ENOBUFS)
        log_warn("outgoing queue full (%zu): dropped readings %llu, events %llu, alarms %llu", outq_len(n->q),
                 (unsigned long long)outq_dropped(n->q, OUTQ_READING),
                 (unsigned long long)outq_dropped(n->q, OUTQ_EVENT),
                 (unsigned long long)outq_dropped(n->q, OUTQ_ALARM));
    flush(n);
}

static void publish_event(struct node *n, const struct det_event *e, const char *cmd_id)
{
    struct fw_msg m = {.channel = FW_CH_NODE_EVENT};
    m.u.event.seq = n->seq++;
    m.u.event.ts = clock_wall_ms();
    m.u.event.type = e->type;
    m.u.event.cause = e->cause;
    m.u.event.result = e->result;
    snprintf(m.u.event.cmd_id, sizeof m.u.event.cmd_id, "%s", cmd_id ? cmd_id : "");
    snprintf(m.u.event.detail, sizeof m.u.event.detail, "%s", e->detail);
    log_info("event %s%s%s%s%s", fw_event_type_name(e->type), e->cause ? " " : "",
             e->cause ? fw_cause_name(e->cause) : "", e->detail[0] ? ": " : "", e->detail);
    enqueue(n, &m, 1, outq_event_class(e->type));
}

static void publish_events(struct node *n, const struct det_out *out)
{
    for (int i = 0; i < out->n; i++)
        publish_event(n, &out->ev[i], NULL);
}

static void publish_reading(struct node *n, int64_t t)
{
    if (!n->have_temp)
        return; /* nothing true to say yet; a sensor fault trouble says why */
    struct fw_msg m = {.channel = FW_CH_NODE_READING};
    double temp = n->det.temp_c;
    m.u.reading.seq = n->seq++;
    m.u.reading.ts = clock_wall_ms();
    m.u.reading.temp_c = temp < FW_TEMP_MIN ? FW_TEMP_MIN : temp > FW_TEMP_MAX ? FW_TEMP_MAX : temp;
    m.u.reading.smoke = detect_smoke(&n->det);
    m.u.reading.batt_pct = (uint8_t)(n->last.batt_ok ? n->last.batt_pct : 100);
    n->pub_temp = temp;
    n->pub_smoke = m.u.reading.smoke;
    n->have_pub = true;
    n->last_reading = t;
    n->next_reading = t + (int64_t)n->cfg.interval_s * 1000;
    enqueue(n, &m, 0, OUTQ_READING);
}

static void publish_status(struct node *n, bool online)
{
    struct fw_msg m = {.channel = FW_CH_NODE_STATUS};
    char buf[FW_PAYLOAD_MAX + 1];
    m.u.status.online = online;
    m.u.status.boot = n->boot;
    if (online) {
        snprintf(m.u.status.fw, sizeof m.u.status.fw, "%s", FW_NODE_VERSION);
        m.u.status.kind = n->kind;
        m.u.status.ts = clock_wall_ms();
    }
    int len = fw_msg_encode(&m, buf, sizeof buf);
    if (len > 0)
        link_send(n->link, n->topic[FW_CH_NODE_STATUS], buf, (size_t)len, 1, true);
}

static void flush(struct node *n)
{
    const struct outq_msg *m;
    if (!n->link)
        return; /* a reload failed to make a client: keep queueing */
    while (link_connected(n->link) && (m = outq_peek(n->q))) {
        if (link_send(n->link, n->topic[m->channel], m->payload, m->len, m->qos, m->retain) < 0)
            break;
        outq_pop(n->q);
    }
}

/* ---- link handlers ------------------------------------------------------- */

static void on_up(void *ctx)
{
    struct node *n = ctx;
    const char *topics[2] = {n->topic[FW_CH_NODE_CMD], n->topic[FW_CH_ZONE_ALARM]};
    link_subscribe(n->link, topics, n->cfg.zone[0] ? 2 : 1);
    publish_status(n, true);
    flush(n);
}

static void cmd_result(struct node *n, const char *id, bool ok, const char *detail)
{
    struct det_event e = {.type = FW_EV_CMD_RESULT, .result = ok ? FW_RESULT_OK : FW_RESULT_ERROR};
    snprintf(e.detail, sizeof e.detail, "%s", detail ? detail : "");
    publish_event(n, &e, id);
}

static void handle_cmd(struct node *n, const struct fw_cmd *c)
{
    int64_t t = hw_now_ms(n->hw);
    struct det_out out = {0};
    char detail[48];
    log_info("command %s (id %s)", fw_cmd_name(c->cmd), c->id);
    switch (c->cmd) {
    case FW_CMD_SELFTEST: {
        bool pass = detect_selftest(&n->det, t, &out);
        publish_events(n, &out); /* the test event the hub's commissioning waits for */
        cmd_result(n, c->id, true, pass ? "pass" : "fail");
        break;
    }
    case FW_CMD_SILENCE: {
        int rc = detect_hush(&n->det, t, &out);
        publish_events(n, &out);
        cmd_result(n, c->id, rc == 0,
                   rc == 0        ? "silenced"
                   : rc == -EPERM ? "fixed heat cannot be silenced"
                                  : "no local alarm");
        break;
    }
    case FW_CMD_IDENTIFY:
        detect_identify(&n->det, t, IDENTIFY_MS);
        cmd_result(n, c->id, true, NULL);
        break;
    case FW_CMD_SET:
        n->cfg.interval_s = (int)c->interval_s;
        if (n->next_reading > t + (int64_t)c->interval_s * 1000)
            n->next_reading = t + (int64_t)c->interval_s * 1000;
        snprintf(detail, sizeof detail, "interval_s=%u", c->interval_s);
        cmd_result(n, c->id, true, detail);
        break;
    case FW_CMD_COUNT: break;
    }
}

static void on_message(void *ctx, const struct link_msg *lm)
{
    struct node *n = ctx;
    struct fw_topic tp;
    struct fw_msg m;
    struct fw_error err;
    uint64_t supp = 0;
    if (lm->oversize || fw_topic_parse(lm->topic, lm->topic_len, &tp, &err) < 0 ||
        fw_msg_decode(tp.channel, lm->payload, lm->len, &m, &err) < 0) {
        if (log_limit_allow(&n->bad_msg_limit, clock_mono_ms(), 5, 60000, &supp))
            log_warn("ignoring a bad message on %s: %s (%llu similar suppressed)",
                     lm->oversize ? "?" : lm->topic, lm->oversize ? "too long" : err.msg,
                     (unsigned long long)supp);
        return;
    }
    if (tp.channel == FW_CH_NODE_CMD && strcmp(tp.id, n->cfg.id) == 0) {
        handle_cmd(n, &m.u.cmd);
    } else if (tp.channel == FW_CH_ZONE_ALARM && strcmp(tp.id, n->cfg.zone) == 0) {
        bool other = m.u.alarm.state == FW_STATE_ALARM && strcmp(m.u.alarm.origin, n->cfg.id) != 0;
        log_info("zone %s: %s (incident %u from %s)", tp.id, fw_state_name(m.u.alarm.state),
                 m.u.alarm.incident, m.u.alarm.origin[0] ? m.u.alarm.origin : "-");
        detect_set_neighbour(&n->det, other, hw_now_ms(n->hw));
    }
}

/* ---- the loop ------------------------------------------------------------ */

static int make_link(struct node *n)
{
    char will[128], err[256];
    struct fw_msg m = {.channel = FW_CH_NODE_STATUS};
    m.u.status.online = false;
    m.u.status.boot = n->boot;
    if (fw_msg_encode(&m, will, sizeof will) < 0)
        return -EINVAL;
    struct link_params p = {
        .url = n->cfg.broker,
        .client_id = n->cfg.id,
        .username = n->cfg.username,
        .password = n->cfg.password,
        .cafile = n->cfg.cafile,
        .keepalive_s = n->cfg.keepalive_s,
        .reconnect_max_s = n->cfg.reconnect_max_s,
        .will_topic = n->topic[FW_CH_NODE_STATUS],
        .will_payload = will,
    };
    n->link = link_new(&p, err, sizeof err);
    if (!n->link) {
        log_error("%s", err);
        return -EINVAL;
    }
    return 0;
}

static void apply_log_level(const struct node_config *c)
{
    enum log_level lvl = LOGL_INFO;
    log_level_parse(c->log_level, &lvl);
    log_init("firewatch-node", lvl);
}

static bool same_link_settings(const struct node_config *a, const struct node_config *b)
{
    return strcmp(a->id, b->id) == 0 && strcmp(a->zone, b->zone) == 0 && strcmp(a->broker, b->broker) == 0 &&
           strcmp(a->username, b->username) == 0 && strcmp(a->password, b->password) == 0 &&
           strcmp(a->cafile, b->cafile) == 0 && a->keepalive_s == b->keepalive_s &&
           a->reconnect_max_s == b->reconnect_max_s;
}

/* SIGHUP: re-read the file; a bad file keeps the running config. */
static void reload(struct node *n)
{
    struct node_config c;
    struct conf_error err;
    char msg[512];
    if (node_config_load(n->config_path, &c, &err) < 0) {
        log_error("reload refused, keeping the running config: %s", conf_error_text(&err, msg, sizeof msg));
        return;
    }
    if (memcmp(&c.hw, &n->cfg.hw, sizeof c.hw) != 0)
        log_warn("reload: hardware settings changed; they take effect at the next restart");
    c.hw = n->cfg.hw;
    bool relink = !same_link_settings(&c, &n->cfg);
    if (relink) {
        char buf[128];
        struct fw_msg m = {.channel = FW_CH_NODE_STATUS};
        m.u.status.boot = n->boot;
        int len = fw_msg_encode(&m, buf, sizeof buf);
        if (len > 0)
            link_close(n->link, n->topic[FW_CH_NODE_STATUS], buf, (size_t)len, CLOSE_TIMEOUT_MS);
        link_free(n->link);
        n->link = NULL;
    }
    n->cfg = c;
    n->kind = FW_KIND_COMBO;
    fw_kind_parse(c.kind, &n->kind);
    apply_log_level(&c);
    detect_set_config(&n->det, &c.det);
    build_topics(n);
    if (relink && make_link(n) < 0)
        log_error("reload: cannot make the MQTT client; running without a broker");
    log_info("reloaded %s", n->config_path);
}

/* One pass of inputs and timers at node time t. */
static void step(struct node *n, int64_t t)
{
    struct det_out out = {0};
    struct det_input in = {.smoke = hw_smoke(n->hw)};
    if (t >= n->next_sample) {
        hw_sample(n->hw, &n->last);
        in.has_temp = true;
        in.temp_ok = n->last.temp_ok;
        in.temp_c = n->last.temp_c;
        in.has_batt = n->last.batt_ok;
        in.batt_pct = n->last.batt_pct;
        n->next_sample += n->cfg.sample_ms;
        if (n->next_sample <= t)
            n->next_sample = t + n->cfg.sample_ms;
    }
    in.button = hw_take_button(n->hw);
    detect_step(&n->det, &in, t, &out);
    enum det_button b;
    while ((b = hw_take_button(n->hw)) != DET_BTN_NONE) {
        struct det_input again = {.smoke = in.smoke, .button = b};
        detect_step(&n->det, &again, t, &out);
    }
    if (in.has_temp && n->det.temp_valid)
        n->have_temp = true;
    publish_events(n, &out);

    bool significant = n->have_pub && (fabs(n->det.temp_c - n->pub_temp) >= SIGNIFICANT_C ||
                                       detect_smoke(&n->det) != n->pub_smoke);
    if (t >= n->next_reading || (significant && t - n->last_reading >= READING_MIN_GAP_MS))
        publish_reading(n, t);
    hw_set_outputs(n->hw, detect_pattern(&n->det, t), detect_led(&n->det, t), clock_mono_ms());
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* The poll timeout: the nearest deadline on either clock. */
static int timeout_ms(struct node *n, int64_t t, int64_t mono)
{
    int64_t node_next = min64(min64(n->next_sample, n->next_reading), detect_next_ms(&n->det, t));
    if (n->have_pub && !(t - n->last_reading >= READING_MIN_GAP_MS))
        node_next = min64(node_next, n->last_reading + READING_MIN_GAP_MS);
    int64_t wait = node_next == INT64_MAX ? 60000 : hw_real_delay_ms(n->hw, node_next - t);
    if (n->link)
        wait = min64(wait, link_next_ms(n->link) == INT64_MAX ? wait : link_next_ms(n->link) - mono);
    int64_t hwn = hw_next_mono_ms(n->hw);
    if (hwn != INT64_MAX)
        wait = min64(wait, hwn - mono);
    return wait < 0 ? 0 : wait > 60000 ? 60000 : (int)wait;
}

static int setup_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        return -errno;
    signal(SIGPIPE, SIG_IGN);
    int fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    return fd < 0 ? -errno : fd;
}

static void handle_signals(struct node *n)
{
    struct signalfd_siginfo si;
    while (read(n->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGHUP) {
            log_info("SIGHUP: reloading");
            reload(n);
        } else {
            log_info("%s: going offline", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
            n->stop = true;
        }
    }
}

static int run(struct node *n)
{
    const struct link_handlers h = {.up = on_up, .message = on_message, .ctx = n};
    int64_t t0 = hw_now_ms(n->hw);
    n->next_sample = t0;
    n->next_reading = t0;
    n->last_reading = t0 - READING_MIN_GAP_MS;
    while (!n->stop) {
        int64_t mono = clock_mono_ms();
        if (n->link)
            link_tick(n->link, mono);
        int64_t t = hw_now_ms(n->hw);
        step(n, t);
        flush(n);

        struct pollfd p[2 + HW_FDS_MAX];
        p[0] = (struct pollfd){.fd = n->sigfd, .events = POLLIN};
        p[1] = (struct pollfd){.fd = n->link ? link_fd(n->link) : -1, .events = POLLIN};
        int nhw = hw_fds(n->hw, p + 2, HW_FDS_MAX);
        int rc = poll(p, (nfds_t)(2 + nhw), timeout_ms(n, t, mono));
        if (rc < 0 && errno != EINTR) {
            log_error("poll: %s", strerror(errno));
            return 1;
        }
        if (rc > 0 && (p[0].revents & POLLIN))
            handle_signals(n);
        if (rc > 0 && n->link && (p[1].revents & POLLIN))
            link_dispatch(n->link, clock_mono_ms(), &h);
        hw_handle(n->hw, p + 2, nhw, clock_mono_ms());
    }
    return 0;
}

int node_run(const char *config_path)
{
    static struct node node; /* large (detector history); one per process */
    struct node *n = &node;
    struct conf_error err;
    char msg[512];

    memset(n, 0, sizeof *n);
    n->config_path = config_path;
    log_init("firewatch-node", LOGL_INFO);
    if (node_config_load(config_path, &n->cfg, &err) < 0) {
        log_error("%s", conf_error_text(&err, msg, sizeof msg));
        return 1;
    }
    apply_log_level(&n->cfg);
    fw_kind_parse(n->cfg.kind, &n->kind);
    build_topics(n);
    n->sigfd = setup_signals();
    if (n->sigfd < 0) {
        log_error("signalfd: %s", strerror(-n->sigfd));
        return 1;
    }
    int rc = state_next_boot(n->cfg.state_dir, &n->boot);
    if (rc < 0)
        log_error("cannot store the boot counter in %s: %s; running on with boot %u", n->cfg.state_dir,
                  strerror(-rc), n->boot);
    n->hw = hw_open(&n->cfg.hw, msg, sizeof msg);
    if (!n->hw) {
        log_error("hardware: %s", msg);
        close(n->sigfd);
        return 1;
    }
    detect_init(&n->det, &n->cfg.det);
    n->q = outq_new((size_t)n->cfg.queue_max);
    if (!n->q || make_link(n) < 0) {
        hw_close(n->hw);
        outq_free(n->q);
        close(n->sigfd);
        return 1;
    }
    log_info("node %s (zone %s) boot %u, backend %s, broker %s", n->cfg.id,
             n->cfg.zone[0] ? n->cfg.zone : "-", n->boot, n->cfg.hw.backend, n->cfg.broker);

    rc = run(n);

    flush(n);
    if (n->link) {
        char buf[128];
        struct fw_msg m = {.channel = FW_CH_NODE_STATUS};
        m.u.status.boot = n->boot;
        int len = fw_msg_encode(&m, buf, sizeof buf);
        if (len > 0 &&
            link_close(n->link, n->topic[FW_CH_NODE_STATUS], buf, (size_t)len, CLOSE_TIMEOUT_MS) < 0)
            log_warn("offline status not confirmed by the broker");
        link_free(n->link);
    }
    if (outq_len(n->q))
        log_warn("%zu messages not delivered at exit", outq_len(n->q));
    outq_free(n->q);
    hw_close(n->hw);
    close(n->sigfd);
    log_info("stopped");
    return rc;
}
