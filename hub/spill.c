/*
 * spill.c - see spill.h. Written by hand because it is thirty lines of
 * append, fdatasync and replay; SQLite cannot be the fallback for SQLite.
 * The caller serialises every call (the ingest receive thread's mutex).
 */
#include "spill.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define SPILL_LINE_MAX (FW_ID_MAX + 64 + FW_PAYLOAD_MAX)

struct spill {
    int fd;
    size_t max_bytes;
    size_t bytes; /* current length of the file */
    size_t count; /* records in it */
};

static size_t count_lines(int fd, size_t len)
{
    char buf[4096];
    size_t n = 0, off = 0;
    while (off < len) {
        ssize_t r = pread(fd, buf, sizeof buf, (off_t)off);
        if (r <= 0)
            break;
        for (ssize_t i = 0; i < r; i++)
            n += buf[i] == '\n';
        off += (size_t)r;
    }
    return n;
}

struct spill *spill_open(const char *path, size_t max_bytes, char *why, size_t why_size)
{
    struct spill *sp = calloc(1, sizeof *sp);
    if (!sp) {
        snprintf(why, why_size, "out of memory");
        errno = ENOMEM;
        return NULL;
    }
    sp->max_bytes = max_bytes;
    sp->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    struct stat st;
    if (sp->fd < 0 || fstat(sp->fd, &st) != 0) {
        int e = errno;
        snprintf(why, why_size, "%s: %s", path, strerror(e));
        spill_close(sp);
        errno = e;
        return NULL;
    }
    /* Reserve the space now, while there is some: appends into reserved
     * blocks still succeed on a disk that has filled up since. Not every
     * filesystem can (the file then simply grows). */
    if (fallocate(sp->fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)max_bytes) != 0 && errno != EOPNOTSUPP)
        log_warn("spill: cannot reserve %zu bytes for %s: %s", max_bytes, path, strerror(errno));
    sp->bytes = (size_t)st.st_size;
    sp->count = count_lines(sp->fd, sp->bytes);
    return sp;
}

void spill_close(struct spill *sp)
{
    if (!sp)
        return;
    if (sp->fd >= 0)
        close(sp->fd);
    free(sp);
}

size_t spill_count(const struct spill *sp)
{
    return sp ? sp->count : 0;
}

int spill_append(struct spill *sp, const char *node, uint32_t boot, int64_t rx_ms, const struct fw_event *ev)
{
    struct fw_msg msg = {.channel = FW_CH_NODE_EVENT};
    char json[FW_PAYLOAD_MAX + 1], line[SPILL_LINE_MAX];
    msg.u.event = *ev;
    int jn = fw_msg_encode(&msg, json, sizeof json);
    if (jn < 0)
        return jn;
    int n = snprintf(line, sizeof line, "%s %u %lld %s\n", node, boot, (long long)rx_ms, json);
    if (n < 0 || (size_t)n >= sizeof line)
        return -EOVERFLOW;
    if (sp->bytes + (size_t)n > sp->max_bytes)
        return -ENOSPC;
    ssize_t w = write(sp->fd, line, (size_t)n);
    if (w != n) {
        int e = w < 0 ? errno : ENOSPC;
        /* Cut a torn record off so the file stays whole lines. */
        if (ftruncate(sp->fd, (off_t)sp->bytes) != 0)
            e = errno;
        return -e;
    }
    if (fdatasync(sp->fd) != 0) {
        int e = errno;
        if (ftruncate(sp->fd, (off_t)sp->bytes) != 0)
            e = errno;
        return -e;
    }
    sp->bytes += (size_t)n;
    sp->count++;
    return 0;
}

/* Parses one record; returns 0 or -EILSEQ. line is NUL-terminated, no \n. */
static int parse_line(char *line, char *node, size_t node_size, uint32_t *boot, int64_t *rx_ms,
                      struct fw_event *ev)
{
    char *sp1 = strchr(line, ' ');
    if (!sp1 || (size_t)(sp1 - line) >= node_size || sp1 == line)
        return -EILSEQ;
    memcpy(node, line, (size_t)(sp1 - line));
    node[sp1 - line] = '\0';
    char *end;
    errno = 0;
    unsigned long b = strtoul(sp1 + 1, &end, 10);
    if (errno || *end != ' ' || b > UINT32_MAX)
        return -EILSEQ;
    long long rx = strtoll(end + 1, &end, 10);
    if (errno || *end != ' ')
        return -EILSEQ;
    struct fw_msg msg;
    struct fw_error err;
    const char *json = end + 1;
    if (fw_msg_decode(FW_CH_NODE_EVENT, json, strlen(json), &msg, &err) < 0)
        return -EILSEQ;
    *boot = (uint32_t)b;
    *rx_ms = rx;
    *ev = msg.u.event;
    return 0;
}

/* Hands every held record to fn in order; with empty set, truncates the
 * file when every call succeeded. */
static int walk(struct spill *sp, spill_fn fn, void *ctx, bool empty)
{
    if (!sp || sp->bytes == 0)
        return 0;
    char *buf = malloc(sp->bytes + 1);
    if (!buf)
        return -ENOMEM;
    size_t got = 0;
    while (got < sp->bytes) {
        ssize_t r = pread(sp->fd, buf + got, sp->bytes - got, (off_t)got);
        if (r <= 0) {
            free(buf);
            return r < 0 ? -errno : -EIO;
        }
        got += (size_t)r;
    }
    buf[got] = '\0';
    int written = 0, rc = 0;
    char *p = buf;
    while (rc == 0 && *p) {
        char *nl = strchr(p, '\n');
        if (!nl)
            break; /* a torn last record never reached fdatasync: not acknowledged */
        *nl = '\0';
        char node[FW_ID_MAX + 1];
        uint32_t boot;
        int64_t rx;
        struct fw_event ev;
        if (parse_line(p, node, sizeof node, &boot, &rx, &ev) == 0) {
            rc = fn(ctx, node, boot, rx, &ev);
            if (rc == 0)
                written++;
        } else {
            log_error("spill: skipping an unreadable record");
        }
        p = nl + 1;
    }
    free(buf);
    if (rc < 0 || !empty)
        return rc < 0 ? rc : written;
    if (ftruncate(sp->fd, 0) != 0 || fdatasync(sp->fd) != 0)
        return -errno;
    sp->bytes = 0;
    sp->count = 0;
    /* Truncating gave the reserved blocks back: reserve them again. */
    if (fallocate(sp->fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)sp->max_bytes) != 0 && errno != EOPNOTSUPP)
        log_warn("spill: cannot reserve %zu bytes again: %s", sp->max_bytes, strerror(errno));
    return written;
}

int spill_drain(struct spill *sp, spill_fn fn, void *ctx)
{
    return walk(sp, fn, ctx, true);
}

int spill_foreach(struct spill *sp, spill_fn fn, void *ctx)
{
    return walk(sp, fn, ctx, false);
}
