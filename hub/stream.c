/*
 * stream.c - see stream.h. One mutex guards the ring and the client list;
 * it is held only to copy bytes, never across I/O. Each event is formatted
 * once, as its complete SSE frame, when it is published, so a client read is
 * a memcpy. A client with nothing to send suspends its own connection from
 * inside the content reader (the one place libmicrohttpd allows it); only
 * the pump thread resumes connections, and only ones this file marked as
 * suspended, under the same mutex, so a resume can never precede its
 * suspend.
 */
#include "stream.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#define FRAME_MAX (STREAM_DATA_MAX + STREAM_TYPE_MAX + 64)
#define READER_BLOCK (32 * 1024)

struct slot {
    uint64_t id;
    char *frame; /* "id: N\nevent: T\ndata: J\n\n", owned */
    size_t len;
};

struct client {
    struct stream *s;
    struct MHD_Connection *conn;
    struct client *prev, *next;
    uint64_t next_id; /* the next event this client has not been sent */
    bool hello;       /* retry advice sent */
    bool reset;       /* owes a "reset" event: it missed events the ring no longer holds */
    bool suspended;   /* suspended by the reader; only the pump resumes it */
    bool keepalive_due;
    bool closing;
    size_t pend_len, pend_off; /* a frame larger than the room MHD offered, part sent */
    char pend[FRAME_MAX];
};

struct stream {
    pthread_mutex_t mu;
    pthread_t pump;
    int efd;
    bool stop;     /* pump must exit */
    bool shutdown; /* no new clients; every client ends */
    int keepalive_ms;
    size_t clients_max;
    size_t ring_n;
    struct slot *ring;
    uint64_t first_id, last_id; /* last_id = first_id - 1 before any event */
    struct client *clients;
    struct stream_stats st;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The oldest id still in the ring (callers hold mu). */
static uint64_t oldest_id(const struct stream *s)
{
    if (s->last_id + 1 - s->first_id <= s->ring_n)
        return s->first_id;
    return s->last_id + 1 - s->ring_n;
}

static void wake(struct stream *s)
{
    uint64_t one = 1;
    /* A full counter (never in practice) still leaves the pump woken. */
    ssize_t w = write(s->efd, &one, sizeof one);
    (void)w;
}

/* Resumes the clients that have something to do (callers hold mu). */
static void resume_ready(struct stream *s)
{
    for (struct client *c = s->clients; c; c = c->next) {
        if (!c->suspended)
            continue;
        if (c->closing || c->keepalive_due || c->reset || c->pend_off < c->pend_len ||
            c->next_id <= s->last_id) {
            c->suspended = false;
            MHD_resume_connection(c->conn);
        }
    }
}

/* The pump: wakes on a publish or a keep-alive deadline and resumes the
 * suspended clients that now have something to send. */
static void *pump_main(void *arg)
{
    struct stream *s = arg;
    int64_t next_ka = mono_ms() + s->keepalive_ms;
    for (;;) {
        int64_t wait = next_ka - mono_ms();
        struct pollfd p = {.fd = s->efd, .events = POLLIN};
        if (wait > 0 && poll(&p, 1, (int)wait) > 0) {
            uint64_t v;
            ssize_t r = read(s->efd, &v, sizeof v);
            (void)r;
        }
        pthread_mutex_lock(&s->mu);
        if (s->stop) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        int64_t now = mono_ms();
        if (now >= next_ka) {
            for (struct client *c = s->clients; c; c = c->next)
                c->keepalive_due = true;
            next_ka = now + s->keepalive_ms;
        }
        resume_ready(s);
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

struct stream *stream_new(const struct stream_config *cfg)
{
    struct stream_config c = cfg ? *cfg : (struct stream_config){0};
    if (c.ring > STREAM_RING_MAX || c.keepalive_ms < 0) {
        errno = EINVAL;
        return NULL;
    }
    struct stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->ring_n = c.ring ? c.ring : STREAM_RING_DEFAULT;
    s->keepalive_ms = c.keepalive_ms ? c.keepalive_ms : STREAM_KEEPALIVE_MS;
    s->clients_max = c.clients_max ? c.clients_max : STREAM_CLIENTS_DEFAULT;
    if (c.first_id == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        c.first_id = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    }
    s->first_id = c.first_id;
    s->last_id = c.first_id - 1;
    s->st.last_id = s->last_id;
    s->ring = calloc(s->ring_n, sizeof *s->ring);
    s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (!s->ring || s->efd < 0) {
        int e = errno;
        free(s->ring);
        if (s->efd >= 0)
            close(s->efd);
        free(s);
        errno = e;
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    int rc = pthread_create(&s->pump, NULL, pump_main, s);
    if (rc != 0) {
        pthread_mutex_destroy(&s->mu);
        close(s->efd);
        free(s->ring);
        free(s);
        errno = rc;
        return NULL;
    }
    return s;
}

void stream_free(struct stream *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_mutex_unlock(&s->mu);
    wake(s);
    pthread_join(s->pump, NULL);
    for (size_t i = 0; i < s->ring_n; i++)
        free(s->ring[i].frame);
    free(s->ring);
    close(s->efd);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static bool type_valid(const char *t)
{
    size_t n = t ? strlen(t) : 0;
    if (n == 0 || n > STREAM_TYPE_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((t[i] >= 'a' && t[i] <= 'z') || t[i] == '_' || t[i] == '.'))
            return false;
    return true;
}

int64_t stream_publish(struct stream *s, const char *type, const char *json)
{
    if (!s || !type_valid(type) || !json)
        return -EINVAL;
    size_t jlen = strlen(json);
    if (jlen > STREAM_DATA_MAX)
        return -EMSGSIZE;
    char *frame = malloc(FRAME_MAX);
    if (!frame)
        return -ENOMEM;
    /* The id is only known under the lock; leave room for it and format the
     * rest first so the lock covers a short copy. */
    char tail[FRAME_MAX];
    int tl = snprintf(tail, sizeof tail, "event: %s\ndata: ", type);
    memcpy(tail + tl, json, jlen);
    for (size_t i = 0; i < jlen; i++)
        if (tail[tl + (int)i] == '\n' || tail[tl + (int)i] == '\r')
            tail[tl + (int)i] = ' ';
    size_t tlen = (size_t)tl + jlen;
    memcpy(tail + tlen, "\n\n", 2);
    tlen += 2;

    pthread_mutex_lock(&s->mu);
    uint64_t id = s->last_id + 1;
    int hl = snprintf(frame, FRAME_MAX, "id: %" PRIu64 "\n", id);
    memcpy(frame + hl, tail, tlen);
    struct slot *sl = &s->ring[id % s->ring_n];
    char *old = sl->frame;
    sl->id = id;
    sl->frame = frame;
    sl->len = (size_t)hl + tlen;
    s->last_id = id;
    s->st.last_id = id;
    s->st.published++;
    pthread_mutex_unlock(&s->mu);
    free(old);
    wake(s);
    return (int64_t)id;
}

void stream_stats(struct stream *s, struct stream_stats *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    pthread_mutex_unlock(&s->mu);
}

/* Copies as much of text as fits; returns bytes copied. */
static size_t put(char *buf, size_t room, const char *text, size_t len)
{
    size_t k = len < room ? len : room;
    memcpy(buf, text, k);
    return k;
}

/* libmicrohttpd's content reader for one client. */
static ssize_t reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct client *c = cls;
    struct stream *s = c->s;
    size_t n = 0;
    pthread_mutex_lock(&s->mu);
    if (c->closing || s->shutdown) {
        pthread_mutex_unlock(&s->mu);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    if (c->pend_off < c->pend_len) {
        size_t k = put(buf, max, c->pend + c->pend_off, c->pend_len - c->pend_off);
        c->pend_off += k;
        n += k;
    }
    if (!c->hello && c->pend_off >= c->pend_len) {
        /* Tell EventSource to retry quickly, and flush the headers at once. */
        int k = snprintf(c->pend, sizeof c->pend, "retry: 3000\n: firewatch stream\n\n");
        c->pend_len = (size_t)k;
        c->pend_off = put(buf + n, max - n, c->pend, c->pend_len);
        n += c->pend_off;
        c->hello = true;
    }
    if (c->reset && c->pend_off >= c->pend_len) {
        /* The id of a reset is the newest event: after reloading its state the
         * client continues from there, and resumes from there if it drops. */
        int k = snprintf(c->pend, sizeof c->pend,
                         "id: %" PRIu64 "\nevent: reset\ndata: {\"last\":%" PRIu64 "}\n\n", s->last_id,
                         s->last_id);
        c->pend_len = (size_t)k;
        c->pend_off = put(buf + n, max - n, c->pend, c->pend_len);
        n += c->pend_off;
        c->next_id = s->last_id + 1;
        c->reset = false;
    }
    while (c->pend_off >= c->pend_len && c->next_id <= s->last_id && n < max) {
        if (c->next_id < oldest_id(s)) {
            /* Fell behind the ring: the events it missed are gone. */
            s->st.dropped++;
            c->closing = true;
            pthread_mutex_unlock(&s->mu);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        const struct slot *sl = &s->ring[c->next_id % s->ring_n];
        if (sl->len <= max - n) {
            memcpy(buf + n, sl->frame, sl->len);
            n += sl->len;
        } else {
            memcpy(c->pend, sl->frame, sl->len);
            c->pend_len = sl->len;
            c->pend_off = put(buf + n, max - n, c->pend, c->pend_len);
            n += c->pend_off;
        }
        c->next_id++;
    }
    if (n == 0 && c->keepalive_due) {
        static const char ka[] = ": keep-alive\n\n";
        n = put(buf, max, ka, sizeof ka - 1);
        if (n < sizeof ka - 1) {
            memcpy(c->pend, ka, sizeof ka - 1);
            c->pend_len = sizeof ka - 1;
            c->pend_off = n;
        }
    }
    c->keepalive_due = false;
    if (n == 0) {
        c->suspended = true;
        MHD_suspend_connection(c->conn);
    }
    pthread_mutex_unlock(&s->mu);
    return (ssize_t)n;
}

/* Called by libmicrohttpd when the response is destroyed (connection gone). */
static void reader_free(void *cls)
{
    struct client *c = cls;
    struct stream *s = c->s;
    pthread_mutex_lock(&s->mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->st.clients--;
    pthread_mutex_unlock(&s->mu);
    free(c);
}

struct MHD_Response *stream_response(struct stream *s, struct MHD_Connection *conn, bool has_last_id,
                                     uint64_t last_id)
{
    struct client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->s = s;
    c->conn = conn;
    pthread_mutex_lock(&s->mu);
    if (s->shutdown || s->st.clients >= s->clients_max) {
        s->st.refused++;
        pthread_mutex_unlock(&s->mu);
        free(c);
        errno = EAGAIN;
        return NULL;
    }
    if (!has_last_id) {
        c->next_id = s->last_id + 1;
    } else if (last_id > s->last_id || last_id + 1 < oldest_id(s)) {
        /* From an earlier run of the hub, or older than the ring holds. */
        c->reset = true;
        c->next_id = s->last_id + 1;
    } else {
        c->next_id = last_id + 1;
    }
    c->next = s->clients;
    if (s->clients)
        s->clients->prev = c;
    s->clients = c;
    s->st.clients++;
    pthread_mutex_unlock(&s->mu);
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, READER_BLOCK, reader, c, reader_free);
    if (!r)
        reader_free(c);
    return r;
}

void stream_shutdown(struct stream *s)
{
    pthread_mutex_lock(&s->mu);
    s->shutdown = true;
    for (struct client *c = s->clients; c; c = c->next)
        c->closing = true;
    resume_ready(s);
    pthread_mutex_unlock(&s->mu);
}
