/*
 * bench_http.c - measures the hub's HTTP side: dashboard query latency and
 * live stream fan-out, through the real hub, each beside a baseline taken
 * in the same run.
 *
 * -m api: logs in, then issues N dashboard queries round-robin over the
 * routes the dashboard loads (zones, a page of nodes, a node's readings
 * over 1 and 30 days, active incidents, readiness, troubles, the monthly
 * report) on one keep-alive connection, each followed by a GET
 * /api/v1/health on the same connection: the baseline, the cheapest route
 * through the same server and connection handling. Latency is from the
 * first byte sent to the last byte of the answer.
 *
 * -m region: the same against a regional hub (bench-fed made its
 * database): the regional overview, open incidents across areas, one
 * area's incidents, and the Atom feed of every area's CAP alerts.
 *
 * -m stream: logs in, opens C clients on /api/v1/stream and waits until
 * every one has its opening comment; then, per trial, publishes a
 * heat_fixed alarm for a probe node alone in its zone and times the
 * arrival of the escalation (`incident` event, state alarm, that zone) at
 * every client. The baseline is the same publish to the zone alarm
 * arriving at an MQTT subscriber of this process, in the same trial.
 */
#include <MQTTAsync.h>
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "firewatch/protocol.h"

#define CLIENTS_MAX 1000
#define TRIALS_MAX 50
#define SAMPLE_NODES_MAX 1000
#define IO_TIMEOUT_MS 30000

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double pct_ms(int64_t *sorted, int n, int pct)
{
    if (n <= 0)
        return -1;
    int i = (n * pct) / 100;
    return (double)sorted[i < n ? i : n - 1] / 1000.0;
}

/* --- a small HTTP/1.1 client: one keep-alive connection ------------------ */

struct conn {
    int port;
    int fd;
    char *buf;
    size_t cap, len;
    int reconnects;
};

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Value of header name in the header block [h, end), or NULL; *vlen set. */
static const char *header_value(const char *h, const char *end, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    for (const char *p = h; p < end;) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = eol;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
                ve--;
            *vlen = (size_t)(ve - v);
            return v;
        }
        p = eol + 1;
    }
    return NULL;
}

/* Length of the complete chunked body starting at b (n bytes available),
 * or 0 while incomplete. */
static size_t chunked_complete(const char *b, size_t n)
{
    size_t in = 0;
    for (;;) {
        const char *nl = in < n ? memchr(b + in, '\n', n - in) : NULL;
        if (!nl)
            return 0;
        unsigned long sz = strtoul(b + in, NULL, 16);
        in = (size_t)(nl - b) + 1;
        if (sz == 0) {
            /* Trailers, then an empty line. */
            for (;;) {
                const char *e = in < n ? memchr(b + in, '\n', n - in) : NULL;
                if (!e)
                    return 0;
                size_t ll = (size_t)(e - (b + in));
                in = (size_t)(e - b) + 1;
                if (ll == 0 || (ll == 1 && b[in - 2] == '\r'))
                    return in;
            }
        }
        if (in + sz + 2 > n)
            return 0;
        in += sz + 2;
    }
}

struct answer {
    int status;
    size_t body_len;
    bool close;
    char cookie[256]; /* "fw_session=..." when the answer set one */
};

/* Reads one complete answer from c (keeping any extra bytes). 0 or -errno. */
static int read_answer(struct conn *c, struct answer *a)
{
    int64_t deadline = now_us() + (int64_t)IO_TIMEOUT_MS * 1000;
    memset(a, 0, sizeof *a);
    for (;;) {
        char *sep = c->len ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL;
        if (sep) {
            const char *hend = sep + 2;
            size_t hlen = (size_t)(sep - c->buf) + 4, total = 0, vl = 0;
            const char *v;
            bool known = false;
            if ((v = header_value(c->buf, hend, "Transfer-Encoding", &vl)) && vl >= 7 &&
                strncasecmp(v, "chunked", 7) == 0) {
                size_t bl = chunked_complete(c->buf + hlen, c->len - hlen);
                if (bl) {
                    total = hlen + bl;
                    a->body_len = bl;
                    known = true;
                }
            } else if ((v = header_value(c->buf, hend, "Content-Length", &vl))) {
                size_t cl = (size_t)strtoull(v, NULL, 10);
                if (c->len >= hlen + cl) {
                    total = hlen + cl;
                    a->body_len = cl;
                    known = true;
                }
            } else if (c->fd < 0) { /* no length: the body ends at close */
                total = c->len;
                a->body_len = c->len - hlen;
                known = true;
                a->close = true;
            }
            if (known) {
                if (strncmp(c->buf, "HTTP/1.", 7) != 0)
                    return -EPROTO;
                a->status = (int)strtol(c->buf + 9, NULL, 10);
                if ((v = header_value(c->buf, hend, "Connection", &vl)) && vl >= 5 &&
                    strncasecmp(v, "close", 5) == 0)
                    a->close = true;
                if ((v = header_value(c->buf, hend, "Set-Cookie", &vl))) {
                    size_t cl = 0;
                    while (cl < vl && v[cl] != ';')
                        cl++;
                    if (cl < sizeof a->cookie) {
                        memcpy(a->cookie, v, cl);
                        a->cookie[cl] = '\0';
                    }
                }
                memmove(c->buf, c->buf + total, c->len - total);
                c->len -= total;
                return 0;
            }
        }
        if (c->fd < 0)
            return -ECONNRESET;
        if (c->len + 65536 > c->cap) {
            size_t ncap = c->cap ? c->cap * 2 : 262144;
            char *nb = realloc(c->buf, ncap);
            if (!nb)
                return -ENOMEM;
            c->buf = nb;
            c->cap = ncap;
        }
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int64_t left = (deadline - now_us()) / 1000;
        if (left <= 0)
            return -ETIMEDOUT;
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            close(c->fd);
            c->fd = -1;
            continue;
        }
        c->len += (size_t)r;
    }
}

/* Sends one request on c (reconnecting once if the server had closed it)
 * and reads the answer; *us gets the time from sending to the last byte. */
static int request(struct conn *c, const char *method, const char *path, const char *cookie, const char *body,
                   struct answer *a, int64_t *us)
{
    char req[2048], extra[512] = "";
    if (body)
        snprintf(extra, sizeof extra, "Content-Type: application/json\r\nContent-Length: %zu\r\n",
                 strlen(body));
    bool with_cookie = cookie && *cookie;
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n%s%s%s%s\r\n%s",
                     method, path, with_cookie ? "Cookie: " : "", with_cookie ? cookie : "",
                     with_cookie ? "\r\n" : "", extra, body ? body : "");
    if (n < 0 || (size_t)n >= sizeof req)
        return -E2BIG;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (c->fd < 0) {
            c->fd = connect_to(c->port);
            if (c->fd < 0)
                return c->fd;
            c->len = 0;
            if (attempt)
                c->reconnects++;
        }
        int64_t t0 = now_us();
        int rc = send_all(c->fd, req, (size_t)n);
        if (rc == 0)
            rc = read_answer(c, a);
        int64_t t1 = now_us();
        if (rc == 0) {
            *us = t1 - t0;
            if (a->close && c->fd >= 0) {
                close(c->fd);
                c->fd = -1;
            }
            return 0;
        }
        if (c->fd >= 0)
            close(c->fd);
        c->fd = -1;
        if (rc == -ETIMEDOUT)
            return rc;
    }
    return -ECONNRESET;
}

static int login(int port, const char *user, const char *pass, char *cookie, size_t size)
{
    struct conn c = {.port = port, .fd = -1};
    struct answer a;
    int64_t us;
    char body[512];
    snprintf(body, sizeof body, "{\"user\":\"%s\",\"password\":\"%s\"}", user, pass);
    int rc = request(&c, "POST", "/api/v1/session", NULL, body, &a, &us);
    if (c.fd >= 0)
        close(c.fd);
    free(c.buf);
    if (rc < 0 || a.status != 200 || !a.cookie[0]) {
        fprintf(stderr, "bench-http: login as %s failed (%s, status %d)\n", user,
                rc < 0 ? strerror(-rc) : "ok", a.status);
        return -1;
    }
    snprintf(cookie, size, "%s", a.cookie);
    return 0;
}

/* --- api mode ------------------------------------------------------------ */

enum route { R_ZONES, R_NODES, R_READ_1D, R_READ_30D, R_INCIDENTS, R_READINESS, R_TROUBLES, R_REPORT, R_N };
static const char *const route_name[R_N] = {"zones",     "nodes_page", "readings_1d", "readings_30d",
                                            "incidents", "readiness",  "troubles",    "report_monthly"};

struct series {
    int64_t *v;
    int n, errors;
    size_t bytes; /* the body of the last answer */
};

static void series_json(FILE *f, const char *name, struct series *s)
{
    qsort(s->v, (size_t)s->n, sizeof *s->v, cmp_i64);
    fprintf(f,
            "\"%s\":{\"n\":%d,\"errors\":%d,\"bytes\":%zu,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f}",
            name, s->n, s->errors, s->bytes, pct_ms(s->v, s->n, 50), pct_ms(s->v, s->n, 99),
            s->n ? (double)s->v[s->n - 1] / 1000 : -1);
}

/* Writes {"requests", head, "overall", "baseline", "routes": {...}} to out
 * (stdout when NULL) and frees the series. Returns 0, 3 when a request
 * failed, 1 when out cannot be written. */
static int report(const char *out, const char *head, struct series *all, struct series *base,
                  const char *const *names, struct series *per, int n_routes)
{
    int status = all->errors ? 3 : 0;
    FILE *f = out ? fopen(out, "w") : stdout;
    if (f) {
        fprintf(f, "{\"requests\":%d,%s,", all->n + all->errors, head);
        series_json(f, "overall", all);
        fputc(',', f);
        series_json(f, "baseline", base);
        fputs(",\"routes\":{", f);
        for (int r = 0; r < n_routes; r++) {
            if (r)
                fputc(',', f);
            series_json(f, names[r], &per[r]);
        }
        fputs("}}\n", f);
        if (out)
            fclose(f);
    } else {
        status = 1;
    }
    for (int r = 0; r < n_routes; r++)
        free(per[r].v);
    free(all->v);
    free(base->v);
    return status;
}

static int run_api(int port, const char *cookie, int n, const char *site, const char *nodes_file,
                   int nodes_total, const char *out)
{
    static char sample[SAMPLE_NODES_MAX][FW_ID_MAX + 1];
    int n_sample = 0;
    FILE *nf = nodes_file ? fopen(nodes_file, "r") : NULL;
    char line[256];
    while (nf && n_sample < SAMPLE_NODES_MAX && fgets(line, sizeof line, nf)) {
        line[strcspn(line, " \t\r\n")] = '\0';
        size_t l = strlen(line);
        if (l < sizeof sample[0] && fw_id_valid(line))
            memcpy(sample[n_sample++], line, l + 1);
    }
    if (nf)
        fclose(nf);
    if (!n_sample) {
        fprintf(stderr, "bench-http: no sample nodes (-f)\n");
        return 2;
    }
    struct series per[R_N], all = {0}, base = {0};
    for (int r = 0; r < R_N; r++) {
        per[r] = (struct series){.v = calloc((size_t)n + 1, sizeof(int64_t))};
    }
    all.v = calloc((size_t)n + 1, sizeof(int64_t));
    base.v = calloc((size_t)n + 1, sizeof(int64_t));
    struct conn c = {.port = port, .fd = -1};
    struct answer a;
    int64_t us;
    /* Warm-up: one of each, not counted (first statement preparation). */
    request(&c, "GET", "/api/v1/health", cookie, NULL, &a, &us);
    int pages = nodes_total / 1000 > 0 ? nodes_total / 1000 : 1;
    for (int i = 0; i < n + R_N; i++) {
        enum route r = (enum route)(i % R_N);
        int round = i / R_N;
        const char *node = sample[round % n_sample];
        int64_t now = wall_ms();
        char path[512];
        switch (r) {
        case R_ZONES: snprintf(path, sizeof path, "/api/v1/zones"); break;
        case R_NODES:
            if (round % pages == 0)
                snprintf(path, sizeof path, "/api/v1/nodes?limit=1000");
            else
                snprintf(path, sizeof path, "/api/v1/nodes?limit=1000&after=n-%04d", (round % pages) * 1000);
            break;
        case R_READ_1D:
            snprintf(path, sizeof path, "/api/v1/nodes/%s/readings?from=%lld&to=%lld", node,
                     (long long)(now - 86400000LL), (long long)now);
            break;
        case R_READ_30D:
            snprintf(path, sizeof path, "/api/v1/nodes/%s/readings?from=%lld&to=%lld", node,
                     (long long)(now - 30 * 86400000LL), (long long)now);
            break;
        case R_INCIDENTS: snprintf(path, sizeof path, "/api/v1/incidents?state=active"); break;
        case R_READINESS: snprintf(path, sizeof path, "/api/v1/readiness"); break;
        case R_TROUBLES: snprintf(path, sizeof path, "/api/v1/troubles"); break;
        case R_REPORT: snprintf(path, sizeof path, "/api/v1/reports/monthly?site=%s", site); break;
        default: continue;
        }
        bool counted = i >= R_N; /* the first round warms up */
        int rc = request(&c, "GET", path, cookie, NULL, &a, &us);
        if (counted) {
            if (rc < 0 || a.status != 200) {
                per[r].errors++;
                all.errors++;
                if (per[r].errors == 1)
                    fprintf(stderr, "bench-http: GET %s: %s %d\n", path, rc < 0 ? strerror(-rc) : "status",
                            a.status);
            } else {
                per[r].v[per[r].n++] = us;
                per[r].bytes = a.body_len;
                all.v[all.n++] = us;
            }
        }
        rc = request(&c, "GET", "/api/v1/health", cookie, NULL, &a, &us);
        if (counted) {
            if (rc < 0 || a.status != 200)
                base.errors++;
            else
                base.v[base.n++] = us;
        }
    }
    char head[64];
    snprintf(head, sizeof head, "\"reconnects\":%d", c.reconnects);
    if (c.fd >= 0)
        close(c.fd);
    free(c.buf);
    return report(out, head, &all, &base, route_name, per, R_N);
}

/* --- region mode: a regional hub's view (bench-fed made its database) ------ */

enum rroute { RR_REGION, RR_OPEN, RR_AREA, RR_FEED, RR_N };
static const char *const rroute_name[RR_N] = {"region", "region_incidents_open", "region_incidents_area",
                                              "region_cap_feed"};

static int run_region(int port, const char *cookie, int n, int areas, const char *out)
{
    struct series per[RR_N], all = {0}, base = {0};
    for (int r = 0; r < RR_N; r++)
        per[r] = (struct series){.v = calloc((size_t)n + 1, sizeof(int64_t))};
    all.v = calloc((size_t)n + 1, sizeof(int64_t));
    base.v = calloc((size_t)n + 1, sizeof(int64_t));
    struct conn c = {.port = port, .fd = -1};
    struct answer a;
    int64_t us;
    request(&c, "GET", "/api/v1/health", cookie, NULL, &a, &us);
    for (int i = 0; i < n + RR_N; i++) {
        enum rroute r = (enum rroute)(i % RR_N);
        char path[256];
        switch (r) {
        case RR_REGION: snprintf(path, sizeof path, "/api/v1/region"); break;
        case RR_OPEN: snprintf(path, sizeof path, "/api/v1/region/incidents?open=1"); break;
        case RR_AREA:
            snprintf(path, sizeof path, "/api/v1/region/incidents?area=area-%04d",
                     (i / RR_N) % (areas ? areas : 1));
            break;
        case RR_FEED: snprintf(path, sizeof path, "/api/v1/region/cap"); break;
        default: continue;
        }
        bool counted = i >= RR_N;
        int rc = request(&c, "GET", path, cookie, NULL, &a, &us);
        if (counted) {
            if (rc < 0 || a.status != 200) {
                per[r].errors++;
                all.errors++;
                if (per[r].errors == 1)
                    fprintf(stderr, "bench-http: GET %s: %s %d\n", path, rc < 0 ? strerror(-rc) : "status",
                            a.status);
            } else {
                per[r].v[per[r].n++] = us;
                per[r].bytes = a.body_len;
                all.v[all.n++] = us;
            }
        }
        rc = request(&c, "GET", "/api/v1/health", cookie, NULL, &a, &us);
        if (counted && (rc < 0 || a.status != 200))
            base.errors++;
        else if (counted)
            base.v[base.n++] = us;
    }
    char head[64];
    snprintf(head, sizeof head, "\"areas\":%d", areas);
    if (c.fd >= 0)
        close(c.fd);
    free(c.buf);
    return report(out, head, &all, &base, rroute_name, per, RR_N);
}

/* --- stream mode --------------------------------------------------------- */

/* One SSE client: the raw bytes are de-chunked into text, scanned by line. */
struct sse {
    int fd;
    bool chunked, headers_done, hello;
    size_t chunk_left; /* data bytes left in the current chunk */
    int chunk_crlf;    /* bytes of the CRLF after a chunk still to skip */
    char raw[8192];    /* undecoded bytes not yet consumed */
    size_t raw_len;
    char text[16384]; /* decoded text, from the start of the unfinished line */
    size_t text_len;
    int64_t got_us; /* the trial's escalation arrived */
};

static struct sse clients[CLIENTS_MAX];
static int n_clients;
static char want_zone[64]; /* "\"zone\":\"pz-0400\"" */
static _Atomic int64_t mqtt_got_us;
static char mqtt_zone[FW_ID_MAX + 1];
static atomic_int connected_ok;
static pthread_mutex_t zone_mu = PTHREAD_MUTEX_INITIALIZER;

/* Scans complete lines of decoded text for this trial's escalation. */
static void sse_lines(struct sse *s, int64_t t)
{
    char *p = s->text, *end = s->text + s->text_len;
    for (;;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break;
        *nl = '\0';
        if (!s->hello && strstr(p, ": firewatch stream"))
            s->hello = true;
        if (want_zone[0] && !s->got_us && strncmp(p, "data:", 5) == 0 && strstr(p, want_zone) &&
            strstr(p, "\"state\":\"alarm\""))
            s->got_us = t;
        p = nl + 1;
    }
    size_t rest = (size_t)(end - p);
    if (rest >= sizeof s->text - 1024) /* a runaway line: drop it */
        rest = 0;
    memmove(s->text, p, rest);
    s->text_len = rest;
}

static void sse_text(struct sse *s, const char *b, size_t n)
{
    if (n > sizeof s->text - s->text_len - 1)
        n = sizeof s->text - s->text_len - 1;
    memcpy(s->text + s->text_len, b, n);
    s->text_len += n;
}

/* Consumes s->raw: headers, then chunk framing (or plain bytes). */
static void sse_feed(struct sse *s, int64_t t)
{
    size_t off = 0;
    if (!s->headers_done) {
        char *sep = memmem(s->raw, s->raw_len, "\r\n\r\n", 4);
        if (!sep)
            return;
        size_t vl = 0;
        const char *v = header_value(s->raw, sep + 2, "Transfer-Encoding", &vl);
        s->chunked = v && vl >= 7 && strncasecmp(v, "chunked", 7) == 0;
        s->headers_done = true;
        off = (size_t)(sep - s->raw) + 4;
    }
    while (off < s->raw_len) {
        if (!s->chunked) {
            sse_text(s, s->raw + off, s->raw_len - off);
            off = s->raw_len;
        } else if (s->chunk_crlf) {
            off++;
            s->chunk_crlf--;
        } else if (s->chunk_left) {
            size_t k = s->raw_len - off < s->chunk_left ? s->raw_len - off : s->chunk_left;
            sse_text(s, s->raw + off, k);
            off += k;
            s->chunk_left -= k;
            if (!s->chunk_left)
                s->chunk_crlf = 2;
        } else {
            char *nl = memchr(s->raw + off, '\n', s->raw_len - off);
            if (!nl)
                break;
            s->chunk_left = strtoul(s->raw + off, NULL, 16);
            off = (size_t)(nl - s->raw) + 1;
        }
    }
    memmove(s->raw, s->raw + off, s->raw_len - off);
    s->raw_len -= off;
    sse_lines(s, t);
}

/* Reads whatever is waiting on every client; returns how many have the
 * trial's escalation (or, with hello, their opening comment). */
static int sse_poll(int timeout_ms, bool hello)
{
    static struct pollfd pf[CLIENTS_MAX];
    for (int i = 0; i < n_clients; i++)
        pf[i] = (struct pollfd){.fd = clients[i].fd, .events = POLLIN};
    int r = poll(pf, (nfds_t)n_clients, timeout_ms);
    for (int i = 0; r > 0 && i < n_clients; i++) {
        if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        struct sse *s = &clients[i];
        ssize_t got = recv(s->fd, s->raw + s->raw_len, sizeof s->raw - s->raw_len, 0);
        int64_t t = now_us();
        if (got <= 0) {
            if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
                close(s->fd);
                s->fd = -1; /* poll ignores negative fds */
            }
            continue;
        }
        s->raw_len += (size_t)got;
        sse_feed(s, t);
    }
    int done = 0;
    for (int i = 0; i < n_clients; i++)
        done += hello ? clients[i].hello : clients[i].got_us != 0;
    return done;
}

static int on_message(void *ctx, char *topic, int tlen, MQTTAsync_message *m)
{
    int64_t t = now_us();
    struct fw_topic tp;
    (void)ctx;
    if (!m->retained && fw_topic_parse(topic, (size_t)tlen, &tp, NULL) == 0 &&
        tp.channel == FW_CH_ZONE_ALARM) {
        struct fw_msg msg;
        if (fw_msg_decode(FW_CH_ZONE_ALARM, m->payload, (size_t)m->payloadlen, &msg, NULL) == 0 &&
            msg.u.alarm.state == FW_STATE_ALARM) {
            pthread_mutex_lock(&zone_mu);
            int64_t zero = 0;
            if (mqtt_zone[0] && strcmp(mqtt_zone, tp.id) == 0)
                atomic_compare_exchange_strong(&mqtt_got_us, &zero, t);
            pthread_mutex_unlock(&zone_mu);
        }
    }
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

static void on_connect(void *ctx, MQTTAsync_successData5 *r)
{
    (void)ctx, (void)r;
    atomic_store(&connected_ok, 1);
}

/* paho sets no TCP_NODELAY; set it on every TCP socket, as bench-probe does. */
static void tcp_nodelay_all(void)
{
    for (int fd = 3; fd < 4096; fd++) {
        int type = 0, one = 1;
        socklen_t len = sizeof type;
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM)
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
}

static int publish(MQTTAsync c, const char *topic, const char *payload, int qos, int retain)
{
    MQTTAsync_message msg = MQTTAsync_message_initializer;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    msg.payload = (void *)payload;
    msg.payloadlen = (int)strlen(payload);
    msg.qos = qos;
    msg.retained = retain;
    return MQTTAsync_sendMessage(c, topic, &msg, &ro) == MQTTASYNC_SUCCESS ? 0 : -EIO;
}

struct trial {
    char node[FW_ID_MAX + 1], zone[FW_ID_MAX + 1];
    double mqtt_ms, first_ms, p50_ms, last_ms;
    int got;
};

static int run_stream(int port, const char *cookie, const char *broker, int want, const char *file,
                      const char *out)
{
    struct trial trials[TRIALS_MAX];
    int n_trials = 0;
    FILE *pf = fopen(file, "r");
    if (!pf) {
        fprintf(stderr, "bench-http: %s: %s\n", file, strerror(errno));
        return 2;
    }
    char line[256];
    while (n_trials < TRIALS_MAX && fgets(line, sizeof line, pf)) {
        char *save = NULL, *node = strtok_r(line, " \t\r\n", &save), *zone = strtok_r(NULL, " \t\r\n", &save);
        if (!node || !zone || !fw_id_valid(node) || !fw_id_valid(zone))
            continue;
        memset(&trials[n_trials], 0, sizeof trials[0]);
        snprintf(trials[n_trials].node, sizeof trials[0].node, "%s", node);
        snprintf(trials[n_trials].zone, sizeof trials[0].zone, "%s", zone);
        n_trials++;
    }
    fclose(pf);
    if (!n_trials) {
        fprintf(stderr, "bench-http: no probe nodes in %s\n", file);
        return 2;
    }

    /* The MQTT side: one client publishes the alarms and subscribes to the zone alarms. */
    MQTTAsync client;
    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
    if (MQTTAsync_createWithOptions(&client, broker, "bench-http", MQTTCLIENT_PERSISTENCE_NONE, NULL, &co) !=
        MQTTASYNC_SUCCESS)
        return 1;
    MQTTAsync_setCallbacks(client, NULL, NULL, on_message, NULL);
    MQTTAsync_connectOptions opts = MQTTAsync_connectOptions_initializer5;
    opts.cleanstart = 1;
    opts.onSuccess5 = on_connect;
    if (MQTTAsync_connect(client, &opts) != MQTTASYNC_SUCCESS)
        return 1;
    for (int i = 0; i < 500 && !atomic_load(&connected_ok); i++)
        pause_ms(10);
    if (!atomic_load(&connected_ok)) {
        fprintf(stderr, "bench-http: cannot connect to %s\n", broker);
        return 1;
    }
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    MQTTAsync_subscribe(client, "firewatch/v1/zone/+/alarm", 1, &ro);
    tcp_nodelay_all();

    /* The stream clients. */
    char req[1024];
    int rn = snprintf(req, sizeof req,
                      "GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
                      "Cookie: %s\r\n\r\n",
                      cookie);
    for (int i = 0; i < want && i < CLIENTS_MAX; i++) {
        memset(&clients[i], 0, sizeof clients[i]);
        clients[i].fd = connect_to(port);
        if (clients[i].fd < 0 || send_all(clients[i].fd, req, (size_t)rn) < 0) {
            fprintf(stderr, "bench-http: stream client %d cannot connect\n", i);
            if (clients[i].fd >= 0)
                close(clients[i].fd);
            break;
        }
        n_clients++;
    }
    int64_t until = now_us() + 20000000;
    int hello = 0;
    while ((hello = sse_poll(100, true)) < n_clients && now_us() < until)
        ;
    fprintf(stderr, "bench-http: %d of %d stream clients connected\n", hello, want);

    /* Births, so the hub knows each probe node (boot from the clock). */
    uint32_t boot = (uint32_t)(wall_ms() / 1000 % 1000000);
    char topic[FW_TOPIC_MAX], payload[FW_PAYLOAD_MAX + 1];
    for (int i = 0; i < n_trials; i++) {
        struct fw_msg m = {.channel = FW_CH_NODE_STATUS};
        m.u.status.online = true;
        m.u.status.boot = boot;
        m.u.status.kind = FW_KIND_COMBO;
        m.u.status.ts = wall_ms();
        snprintf(m.u.status.fw, sizeof m.u.status.fw, "bench-http");
        fw_topic_build(topic, sizeof topic, FW_CH_NODE_STATUS, trials[i].node);
        fw_msg_encode(&m, payload, sizeof payload);
        publish(client, topic, payload, 1, 1);
    }
    /* Let the births and their node events reach every client, then drain. */
    int64_t settle = now_us() + 1500000;
    while (now_us() < settle)
        sse_poll(50, true);

    static int64_t lat[CLIENTS_MAX];
    for (int t = 0; t < n_trials; t++) {
        struct trial *tr = &trials[t];
        for (int i = 0; i < n_clients; i++)
            clients[i].got_us = 0;
        snprintf(want_zone, sizeof want_zone, "\"zone\":\"%s\"", tr->zone);
        pthread_mutex_lock(&zone_mu);
        snprintf(mqtt_zone, sizeof mqtt_zone, "%s", tr->zone);
        atomic_store(&mqtt_got_us, 0);
        pthread_mutex_unlock(&zone_mu);

        struct fw_msg m = {.channel = FW_CH_NODE_EVENT};
        m.u.event.seq = 1;
        m.u.event.ts = wall_ms();
        m.u.event.type = FW_EV_ALARM;
        m.u.event.cause = FW_CAUSE_HEAT_FIXED;
        fw_topic_build(topic, sizeof topic, FW_CH_NODE_EVENT, tr->node);
        fw_msg_encode(&m, payload, sizeof payload);
        int64_t t0 = now_us();
        publish(client, topic, payload, 1, 0);
        int64_t deadline = t0 + 5000000;
        while ((sse_poll(20, false) < n_clients || atomic_load(&mqtt_got_us) == 0) && now_us() < deadline)
            ;
        int n = 0;
        for (int i = 0; i < n_clients; i++)
            if (clients[i].got_us)
                lat[n++] = clients[i].got_us - t0;
        qsort(lat, (size_t)n, sizeof lat[0], cmp_i64);
        int64_t mq = atomic_load(&mqtt_got_us);
        tr->got = n;
        tr->mqtt_ms = mq ? (double)(mq - t0) / 1000.0 : -1;
        tr->first_ms = n ? (double)lat[0] / 1000.0 : -1;
        tr->p50_ms = pct_ms(lat, n, 50);
        tr->last_ms = n ? (double)lat[n - 1] / 1000.0 : -1;
        fprintf(stderr,
                "bench-http: trial %d (%s): mqtt %.2f ms, stream %d/%d first %.2f p50 %.2f last %.2f ms\n",
                t + 1, tr->node, tr->mqtt_ms, n, n_clients, tr->first_ms, tr->p50_ms, tr->last_ms);
        want_zone[0] = '\0';
        int64_t gap = now_us() + 500000;
        while (now_us() < gap)
            sse_poll(50, false);
    }

    /* Worst over trials (a missing arrival counts as the worst of all). */
    double worst_last = 0, worst_p50 = 0, worst_mqtt = 0;
    int missing = 0;
    for (int t = 0; t < n_trials; t++) {
        missing += n_clients - trials[t].got + (trials[t].mqtt_ms < 0);
        if (trials[t].last_ms > worst_last)
            worst_last = trials[t].last_ms;
        if (trials[t].p50_ms > worst_p50)
            worst_p50 = trials[t].p50_ms;
        if (trials[t].mqtt_ms > worst_mqtt)
            worst_mqtt = trials[t].mqtt_ms;
    }
    FILE *f = out ? fopen(out, "w") : stdout;
    if (!f)
        return 1;
    fprintf(f,
            "{\"clients\":%d,\"connected\":%d,\"trials_n\":%d,\"missing\":%d,\"stream_last_ms\":%.3f,"
            "\"stream_p50_ms\":%.3f,\"baseline_mqtt_ms\":%.3f,\"trials\":[",
            want, hello, n_trials, missing, worst_last, worst_p50, worst_mqtt);
    for (int t = 0; t < n_trials; t++)
        fprintf(f,
                "%s{\"node\":\"%s\",\"got\":%d,\"mqtt_ms\":%.3f,\"first_ms\":%.3f,\"p50_ms\":%.3f,"
                "\"last_ms\":%.3f}",
                t ? "," : "", trials[t].node, trials[t].got, trials[t].mqtt_ms, trials[t].first_ms,
                trials[t].p50_ms, trials[t].last_ms);
    fputs("]}\n", f);
    if (out)
        fclose(f);
    for (int i = 0; i < n_clients; i++)
        if (clients[i].fd >= 0)
            close(clients[i].fd);
    MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer5;
    MQTTAsync_disconnect(client, &d);
    MQTTAsync_destroy(&client);
    return missing || hello < want ? 3 : 0;
}

static void usage(void)
{
    printf("usage: bench-http -p HTTP_PORT -u USER -P PASSWORD -m api [-n REQUESTS] [-s SITE] -f NODES\n"
           "                  [-N NODES_TOTAL] [-o STATS.json]\n"
           "       bench-http -p HTTP_PORT -u USER -P PASSWORD -m stream [-b URL] [-c CLIENTS] -f PROBES\n"
           "                  [-o STATS.json]\n"
           "       bench-http -p HTTP_PORT -u USER -P PASSWORD -m region [-n REQUESTS] -N AREAS [-o "
           "STATS.json]\n"
           "NODES has one node id per line (nodes with reading history); PROBES one \"node zone\"\n"
           "per line, each node alone in its zone and not yet in alarm: one trial each.\n");
}

int main(int argc, char **argv)
{
    const char *broker = "tcp://127.0.0.1:1883", *file = NULL, *out = NULL, *user = NULL, *pass = NULL,
               *mode = NULL, *site = "bench";
    int port = 0, n = 800, want = 200, nodes_total = 10000, c;
    while ((c = getopt(argc, argv, "p:u:P:m:n:s:f:N:b:c:o:h")) != -1) {
        switch (c) {
        case 'p': port = (int)strtol(optarg, NULL, 10); break;
        case 'u': user = optarg; break;
        case 'P': pass = optarg; break;
        case 'm': mode = optarg; break;
        case 'n': n = (int)strtol(optarg, NULL, 10); break;
        case 's': site = optarg; break;
        case 'f': file = optarg; break;
        case 'N': nodes_total = (int)strtol(optarg, NULL, 10); break;
        case 'b': broker = optarg; break;
        case 'c': want = (int)strtol(optarg, NULL, 10); break;
        case 'o': out = optarg; break;
        default: usage(); return c == 'h' ? 0 : 2;
        }
    }
    bool region = mode && strcmp(mode, "region") == 0;
    if (port <= 0 || !user || !pass || !mode || (!file && !region) || n < 1 || want < 1 ||
        want > CLIENTS_MAX) {
        usage();
        return 2;
    }
    char cookie[256];
    if (login(port, user, pass, cookie, sizeof cookie) < 0)
        return 1;
    if (strcmp(mode, "api") == 0)
        return run_api(port, cookie, n, site, file, nodes_total, out);
    if (strcmp(mode, "stream") == 0)
        return run_stream(port, cookie, broker, want, file, out);
    if (region)
        return run_region(port, cookie, n, nodes_total, out);
    usage();
    return 2;
}
