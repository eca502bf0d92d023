/*
 * client.c - see client.h.
 */
#include "client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READ_TIMEOUT_MS 20000

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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

/* Decodes a chunked body in place; returns the decoded length. */
static size_t dechunk(char *b, size_t n)
{
    size_t in = 0, out = 0;
    while (in < n) {
        char *end;
        unsigned long sz = strtoul(b + in, &end, 16);
        char *nl = strstr(b + in, "\r\n");
        if (!nl || end == b + in)
            break;
        in = (size_t)(nl - b) + 2;
        if (sz == 0 || in + sz > n)
            break;
        memmove(b + out, b + in, sz);
        out += sz;
        in += sz + 2;
    }
    b[out] = '\0';
    return out;
}

static int read_answer(int fd, struct hc_response *out)
{
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    int64_t deadline = now_ms() + READ_TIMEOUT_MS;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int64_t left = deadline - now_ms();
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        if (len + 4096 > cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb)
                break;
            buf = nb;
            cap *= 2;
        }
        ssize_t r = recv(fd, buf + len, cap - len - 1, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    memset(out, 0, sizeof *out);
    char *sep = strstr(buf, "\r\n\r\n");
    if (strncmp(buf, "HTTP/1.", 7) != 0 || !sep) {
        out->body = buf;
        out->body_len = len;
        return -EPROTO;
    }
    out->status = (int)strtol(buf + 9, NULL, 10);
    size_t hl = (size_t)(sep - buf);
    if (hl >= sizeof out->headers)
        hl = sizeof out->headers - 1;
    memcpy(out->headers, buf, hl);
    out->headers[hl] = '\0';
    size_t off = (size_t)(sep - buf) + 4;
    memmove(buf, buf + off, len - off + 1);
    out->body = buf;
    out->body_len = len - off;
    char te[64];
    if (hc_header(out, "Transfer-Encoding", te, sizeof te) && strcasecmp(te, "chunked") == 0)
        out->body_len = dechunk(out->body, out->body_len);
    return 0;
}

int hc_raw(int port, const char *req, size_t len, struct hc_response *out)
{
    memset(out, 0, sizeof *out);
    int fd = connect_to(port);
    if (fd < 0)
        return fd;
    int rc = send_all(fd, req, len);
    if (rc == 0)
        rc = read_answer(fd, out);
    close(fd);
    return rc;
}

int hc_request(int port, const char *method, const char *path, const char *extra_headers, const char *body,
               size_t body_len, struct hc_response *out)
{
    size_t cap = 4096 + body_len;
    char *req = malloc(cap);
    if (!req)
        return -ENOMEM;
    int n = snprintf(req, cap, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n%s%s", method,
                     path, port, extra_headers ? extra_headers : "", body ? "" : "\r\n");
    size_t len = (size_t)n;
    if (body) {
        len += (size_t)snprintf(req + len, cap - len,
                                "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n", body_len);
        memcpy(req + len, body, body_len);
        len += body_len;
    }
    int rc = hc_raw(port, req, len, out);
    free(req);
    return rc;
}

const char *hc_header(const struct hc_response *r, const char *name, char *out, size_t size)
{
    size_t nl = strlen(name);
    const char *p = r->headers;
    while ((p = strstr(p, "\r\n")) != NULL) {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t vl = strcspn(v, "\r\n");
            if (vl >= size)
                vl = size - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return out;
        }
    }
    return NULL;
}

void hc_free(struct hc_response *r)
{
    free(r->body);
    r->body = NULL;
}

int hc_open(int port, const char *req)
{
    int fd = connect_to(port);
    if (fd < 0)
        return fd;
    int rc = send_all(fd, req, strlen(req));
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

bool hc_read_until(int fd, char *buf, size_t size, size_t *len, size_t from, const char *needle,
                   int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        buf[*len] = '\0';
        if (from <= *len && strstr(buf + from, needle))
            return true;
        int64_t left = deadline - now_ms();
        if (left <= 0 || *len + 1 >= size)
            return false;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)left) <= 0)
            return false;
        ssize_t r = recv(fd, buf + *len, size - *len - 1, 0);
        if (r <= 0)
            return false;
        *len += (size_t)r;
    }
}
