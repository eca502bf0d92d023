/*
 * swarm.c - see swarm.h. One epoll set holds every client's socket; the
 * library is only ever entered from here, in one thread, so it needs no
 * locks and starts no threads: readable -> mosquitto_loop_read, writable
 * (armed only while mosquitto_want_write) -> mosquitto_loop_write, and a
 * sweep calls mosquitto_loop_misc for keep-alives and re-queues clients
 * whose backoff has run out. After every call into the library for a
 * client, client_sync() reconciles the epoll registration with the
 * library's socket: the library closes sockets itself on errors (closing
 * removes them from epoll), and reconnecting opens a new one.
 */
#include "swarm.h"

#include <errno.h>
#include <math.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

#define SWARM_PENDING_MAX 16      /* QoS 1 publishes per client awaiting PUBACK */
#define SWARM_BACKOFF_MIN_MS 1000 /* first retry after a lost or failed connection */
#define SWARM_BACKOFF_MAX_MS 30000
#define SWARM_SWEEP_PERIOD_MS 1000 /* every client is visited once per period */
#define SWARM_EVENTS 512           /* epoll events handled per wait */

enum client_state {
    CS_IDLE,       /* not started */
    CS_QUEUED,     /* waiting for a connection slot */
    CS_CONNECTING, /* socket open, no CONNACK yet */
    CS_UP,         /* session established */
    CS_DOWN,       /* waiting for retry_at */
    CS_CLOSING     /* DISCONNECT sent at shutdown */
};

struct pending {
    uint16_t mid;
    uint8_t tag;
    bool used;
};

struct client {
    struct swarm *s;
    int idx;
    struct mosquitto *m;
    int fd;         /* socket registered in epoll, or -1 */
    bool armed_out; /* EPOLLOUT in the registration */
    bool ever_up;
    bool inited;  /* mosquitto_connect_async done; later attempts reconnect */
    bool counted; /* this attempt's failure is already counted */
    bool up_due;  /* CONNACK seen; on_up runs once the read returns */
    char id[48];
    enum client_state state;
    int backoff_ms;
    int64_t retry_at_ms;
    struct pending pend[SWARM_PENDING_MAX];
};

struct swarm {
    struct swarm_config cfg;
    struct client *c;
    int n;
    int epfd;
    int *queue; /* connection queue: a ring of client indices */
    int q_head, q_len;
    double tokens;
    int64_t last_run_ms;
    int sweep_cursor;
    double sweep_carry;
    bool stopping;
    uint32_t rng;
    struct swarm_stats st;
    struct log_limit lim;
};

/*
 * libmosquitto 2.0 opens a socketpair in mosquitto_new and again in every
 * mosquitto_connect*, only to wake its own select() in mosquitto_loop(),
 * which we never call. That is two more descriptors per client (30,000 for
 * 10,000 nodes, over the 20,000 hard limit here), and since nothing reads
 * the pair, one queued byte per packet sent until its buffer fills. The
 * library tolerates a failed socketpair (it logs a warning and carries on),
 * so this process refuses socketpair while creating or connecting a client.
 * libmosquitto 2.1 has MOSQ_OPT_DISABLE_SOCKETPAIR for this; drop the
 * override when Debian ships it. Outside those calls it forwards to the
 * kernel unchanged.
 */
static bool deny_socketpair;

int socketpair(int domain, int type, int protocol, int sv[2])
{
    if (deny_socketpair) {
        errno = EMFILE;
        return -1;
    }
    return (int)syscall(SYS_socketpair, domain, type, protocol, sv);
}

static int lib_users;

static uint32_t rng_next(struct swarm *s)
{
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 17;
    s->rng ^= s->rng << 5;
    return s->rng;
}

/* Makes the epoll registration match the library's socket and output. */
static void client_sync(struct client *c);

static void client_down(struct client *c)
{
    struct swarm *s = c->s;
    if (c->state == CS_UP)
        s->st.up--;
    else if (c->state == CS_CONNECTING && !c->counted && !s->stopping)
        s->st.connect_failures++;
    if (s->stopping || c->state == CS_CLOSING) {
        c->state = CS_DOWN;
        c->retry_at_ms = INT64_MAX;
        return;
    }
    /* Retry after the backoff, with +-25 % jitter so a broker restart does
     * not bring every client back in the same millisecond. */
    double jitter = 0.75 + 0.5 * (double)(rng_next(s) % 1000) / 1000.0;
    c->retry_at_ms = clock_mono_ms() + (int64_t)(c->backoff_ms * jitter);
    c->backoff_ms = c->backoff_ms * 2 > SWARM_BACKOFF_MAX_MS ? SWARM_BACKOFF_MAX_MS : c->backoff_ms * 2;
    c->state = CS_DOWN;
}

static void client_sync(struct client *c)
{
    struct swarm *s = c->s;
    int fd = c->m ? mosquitto_socket(c->m) : -1;
    if (fd != c->fd) {
        /* The library closed our socket (close() already took it out of
         * epoll), or a connect opened a new one. */
        if (c->fd >= 0) {
            c->fd = -1;
            client_down(c);
        }
        if (fd >= 0) {
            c->armed_out = mosquitto_want_write(c->m);
            struct epoll_event ev = {.events = EPOLLIN | (c->armed_out ? EPOLLOUT : 0u), .data.ptr = c};
            if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                log_error("epoll_ctl add: %s", strerror(errno));
                return;
            }
            c->fd = fd;
        }
        return;
    }
    if (fd < 0)
        return;
    bool want = mosquitto_want_write(c->m);
    if (want != c->armed_out) {
        struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0u), .data.ptr = c};
        if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, fd, &ev) == 0)
            c->armed_out = want;
    }
}

static void on_connect(struct mosquitto *m, void *obj, int rc, int flags, const mosquitto_property *props)
{
    struct client *c = obj;
    struct swarm *s = c->s;
    (void)m, (void)flags, (void)props;
    if (rc != 0) {
        /* Refused: bad credentials, not authorised, server busy... The
         * broker closes the connection; retry with backoff like a node. */
        s->st.connect_failures++;
        c->counted = true;
        uint64_t supp = 0;
        if (log_limit_allow(&s->lim, clock_mono_ms(), 5, 10000, &supp))
            log_warn("%s: connection refused: %s (reason 0x%02x)%s", c->id, mosquitto_reason_string(rc),
                     (unsigned)rc, supp ? " (more suppressed)" : "");
        return;
    }
    c->state = CS_UP;
    c->backoff_ms = SWARM_BACKOFF_MIN_MS;
    s->st.up++;
    if (c->ever_up)
        s->st.reconnects++;
    c->ever_up = true;
    /* Not from inside the callback: libmosquitto 2.0 re-sends a QoS 1
     * publish queued here in its own post-CONNACK retry pass, so every
     * birth would arrive twice. dispatch() calls on_up after the read. */
    c->up_due = true;
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg,
                       const mosquitto_property *props)
{
    struct client *c = obj;
    (void)m, (void)props;
    if (c->s->cfg.cb.on_message && msg->payloadlen >= 0)
        c->s->cfg.cb.on_message(c->s->cfg.ctx, c->idx, msg->topic, msg->payload, (size_t)msg->payloadlen);
}

/* libmosquitto calls this for a QoS 0 publish once it is written, and for
 * QoS 1 when its PUBACK arrives; only the second kind is in pend[]. */
static void on_publish(struct mosquitto *m, void *obj, int mid, int reason, const mosquitto_property *props)
{
    struct client *c = obj;
    (void)m, (void)props;
    for (int i = 0; i < SWARM_PENDING_MAX; i++) {
        struct pending *p = &c->pend[i];
        if (p->used && p->mid == (uint16_t)mid) {
            p->used = false;
            if (c->s->cfg.cb.on_ack)
                c->s->cfg.cb.on_ack(c->s->cfg.ctx, c->idx, p->tag, reason);
            return;
        }
    }
}

struct swarm *swarm_new(const struct swarm_config *cfg, int n)
{
    if (n <= 0 || cfg->keepalive_s < 5 || !(cfg->connect_rate > 0)) {
        errno = EINVAL;
        return NULL;
    }
    struct swarm *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->cfg = *cfg;
    s->n = n;
    s->c = calloc((size_t)n, sizeof *s->c);
    s->queue = calloc((size_t)n, sizeof *s->queue);
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (!s->c || !s->queue || s->epfd < 0) {
        int e = s->epfd < 0 ? errno : ENOMEM;
        if (s->epfd >= 0)
            close(s->epfd);
        free(s->c);
        free(s->queue);
        free(s);
        errno = e;
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        s->c[i].s = s;
        s->c[i].idx = i;
        s->c[i].fd = -1;
        s->c[i].backoff_ms = SWARM_BACKOFF_MIN_MS;
    }
    s->tokens = fmax(1.0, cfg->connect_rate / 20.0);
    s->last_run_ms = clock_mono_ms();
    s->rng = (uint32_t)s->last_run_ms | 1u;
    if (lib_users++ == 0)
        mosquitto_lib_init();
    return s;
}

void swarm_free(struct swarm *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n; i++)
        if (s->c[i].m)
            mosquitto_destroy(s->c[i].m);
    close(s->epfd);
    free(s->c);
    free(s->queue);
    free(s);
    if (--lib_users == 0)
        mosquitto_lib_cleanup();
}

static void enqueue(struct swarm *s, struct client *c)
{
    s->queue[(s->q_head + s->q_len) % s->n] = c->idx;
    s->q_len++;
    c->state = CS_QUEUED;
}

int swarm_start(struct swarm *s, int idx, const char *id, const char *password, const char *will_topic,
                const char *will_payload)
{
    if (idx < 0 || idx >= s->n || s->c[idx].m)
        return -EINVAL;
    struct client *c = &s->c[idx];
    snprintf(c->id, sizeof c->id, "%s", id);
    deny_socketpair = true;
    c->m = mosquitto_new(id, true, c);
    deny_socketpair = false;
    if (!c->m)
        return -errno;
    int rc = mosquitto_int_option(c->m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_int_option(c->m, MOSQ_OPT_TCP_NODELAY, 1);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_username_pw_set(c->m, id, password && password[0] ? password : NULL);
    if (rc == MOSQ_ERR_SUCCESS && will_topic)
        rc = mosquitto_will_set_v5(c->m, will_topic, (int)strlen(will_payload), will_payload, 1, true, NULL);
    if (rc != MOSQ_ERR_SUCCESS) {
        log_error("%s: cannot set up the MQTT client: %s", id, mosquitto_strerror(rc));
        mosquitto_destroy(c->m);
        c->m = NULL;
        return -EINVAL;
    }
    mosquitto_connect_v5_callback_set(c->m, on_connect);
    mosquitto_message_v5_callback_set(c->m, on_message);
    mosquitto_publish_v5_callback_set(c->m, on_publish);
    enqueue(s, c);
    return 0;
}

/* Opens (or re-opens) client c's connection; the CONNECT goes out when the
 * socket becomes writable. */
static void client_connect(struct swarm *s, struct client *c)
{
    int rc;
    c->counted = false;
    if (c->fd >= 0) {
        /* Defensive: never leave a stale registration for a number the
         * library may reuse for the new socket. */
        epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
        c->fd = -1;
    }
    c->state = CS_CONNECTING;
    deny_socketpair = true;
    if (!c->inited)
        rc = mosquitto_connect_async(c->m, s->cfg.host, s->cfg.port, s->cfg.keepalive_s);
    else
        rc = mosquitto_reconnect_async(c->m);
    deny_socketpair = false;
    c->inited = true;
    if (rc != MOSQ_ERR_SUCCESS) {
        uint64_t supp = 0;
        if (log_limit_allow(&s->lim, clock_mono_ms(), 5, 10000, &supp))
            log_warn("%s: connect to %s:%d failed: %s%s", c->id, s->cfg.host, s->cfg.port,
                     rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc),
                     supp ? " (more suppressed)" : "");
        s->st.connect_failures++;
        c->counted = true;
        c->fd = -1;
        client_down(c);
        return;
    }
    client_sync(c);
}

int swarm_publish(struct swarm *s, int idx, const char *topic, const char *payload, int len, int qos,
                  bool retain, int tag)
{
    struct client *c = &s->c[idx];
    if (!c->m)
        return -ENOTCONN;
    struct pending *slot = NULL;
    if (qos > 0) {
        for (int i = 0; i < SWARM_PENDING_MAX && !slot; i++)
            if (!c->pend[i].used)
                slot = &c->pend[i];
        if (!slot)
            return -ENOBUFS;
    } else if (c->state != CS_UP) {
        return -ENOTCONN;
    }
    int mid = 0;
    int rc = mosquitto_publish_v5(c->m, &mid, topic, len, payload, qos, retain, NULL);
    /* A QoS 1 message published while down stays in the library's queue and
     * is sent after the next CONNACK, as a node's would be. */
    if (rc == MOSQ_ERR_SUCCESS || (qos > 0 && rc == MOSQ_ERR_NO_CONN)) {
        if (slot)
            *slot = (struct pending){.mid = (uint16_t)mid, .tag = (uint8_t)tag, .used = true};
        client_sync(c);
        return 0;
    }
    client_sync(c);
    return rc == MOSQ_ERR_NO_CONN ? -ENOTCONN : -EIO;
}

int swarm_subscribe(struct swarm *s, int idx, const char *topic)
{
    struct client *c = &s->c[idx];
    if (!c->m)
        return -ENOTCONN;
    int rc = mosquitto_subscribe_v5(c->m, NULL, topic, 1, 0, NULL);
    client_sync(c);
    return rc == MOSQ_ERR_SUCCESS ? 0 : rc == MOSQ_ERR_NO_CONN ? -ENOTCONN : -EIO;
}

bool swarm_is_up(const struct swarm *s, int idx)
{
    return s->c[idx].state == CS_UP;
}

bool swarm_is_backlogged(const struct swarm *s, int idx)
{
    return s->c[idx].armed_out;
}

/* Handles one epoll batch. */
static int dispatch(struct swarm *s, int timeout_ms)
{
    struct epoll_event ev[SWARM_EVENTS];
    int n = epoll_wait(s->epfd, ev, SWARM_EVENTS, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        struct client *c = ev[i].data.ptr;
        if (c->fd < 0 || !c->m)
            continue;
        if (ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
            mosquitto_loop_read(c->m, 1);
        if (c->up_due) {
            c->up_due = false;
            if (c->state == CS_UP && mosquitto_socket(c->m) == c->fd && s->cfg.cb.on_up)
                s->cfg.cb.on_up(s->cfg.ctx, c->idx);
        }
        /* Flush what the read produced (PUBACKs, answers from callbacks)
         * at once rather than after another trip through epoll. */
        if (mosquitto_socket(c->m) == c->fd && ((ev[i].events & EPOLLOUT) || mosquitto_want_write(c->m)))
            mosquitto_loop_write(c->m, 1);
        client_sync(c);
    }
    return 0;
}

/* Connections at the configured rate, then a slice of the keep-alive sweep. */
static void housekeeping(struct swarm *s)
{
    int64_t now = clock_mono_ms();
    int64_t dt = now - s->last_run_ms;
    s->last_run_ms = now;
    double burst = fmax(1.0, s->cfg.connect_rate / 20.0);
    s->tokens = fmin(burst, s->tokens + s->cfg.connect_rate * (double)dt / 1000.0);
    while (s->q_len > 0 && s->tokens >= 1.0) {
        struct client *c = &s->c[s->queue[s->q_head]];
        s->q_head = (s->q_head + 1) % s->n;
        s->q_len--;
        s->tokens -= 1.0;
        client_connect(s, c);
    }

    s->sweep_carry += (double)s->n * (double)dt / SWARM_SWEEP_PERIOD_MS;
    int k = (int)fmin(s->sweep_carry, (double)s->n);
    s->sweep_carry -= k;
    for (; k > 0; k--) {
        struct client *c = &s->c[s->sweep_cursor];
        s->sweep_cursor = (s->sweep_cursor + 1) % s->n;
        if (c->fd >= 0) {
            mosquitto_loop_misc(c->m); /* PINGREQ when due; drops a dead link */
            client_sync(c);
        } else if (c->state == CS_DOWN && c->retry_at_ms <= now) {
            enqueue(s, c);
        }
    }
}

int swarm_run(struct swarm *s, int timeout_ms)
{
    int rc = dispatch(s, timeout_ms);
    housekeeping(s);
    return rc;
}

int swarm_shutdown(struct swarm *s, int timeout_ms, void (*goodbye)(void *ctx, int idx))
{
    int64_t deadline = clock_mono_ms() + timeout_ms;
    int closing = 0, clean = 0;
    s->stopping = true;
    for (int i = 0; i < s->n; i++) {
        struct client *c = &s->c[i];
        if (c->state != CS_UP)
            continue;
        if (goodbye)
            goodbye(s->cfg.ctx, i);
        c->state = CS_CLOSING;
        s->st.up--;
        if (mosquitto_disconnect_v5(c->m, MQTT_RC_NORMAL_DISCONNECTION, NULL) == MOSQ_ERR_SUCCESS)
            closing++;
        client_sync(c);
    }
    /* Flush until every DISCONNECT is out: libmosquitto closes the socket
     * once it has written the DISCONNECT, or the broker closes it. */
    for (;;) {
        int open = 0;
        for (int i = 0; i < s->n; i++)
            if (s->c[i].state == CS_CLOSING && s->c[i].fd >= 0)
                open++;
        clean = closing - open;
        int64_t left = deadline - clock_mono_ms();
        if (open == 0 || left <= 0)
            break;
        if (dispatch(s, (int)(left < 50 ? left : 50)) < 0)
            break;
    }
    return clean;
}

void swarm_get_stats(const struct swarm *s, struct swarm_stats *out)
{
    *out = s->st;
}
