/*
 * state.c - see state.h.
 */
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int read_boot(const char *path, uint32_t *out)
{
    char buf[32];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? (*out = 0, 0) : -errno;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -EINVAL;
    buf[n] = '\0';
    char *end;
    errno = 0;
    unsigned long v = strtoul(buf, &end, 10);
    if (errno || end == buf || (*end != '\n' && *end != '\0') || v > UINT32_MAX)
        return -EINVAL;
    *out = (uint32_t)v;
    return 0;
}

int state_next_boot(const char *dir, uint32_t *boot)
{
    char path[512], tmp[520];
    uint32_t cur = 0;
    snprintf(path, sizeof path, "%s/boot", dir);
    snprintf(tmp, sizeof tmp, "%s/boot.tmp", dir);
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        *boot = 1;
        return -errno;
    }
    int rc = read_boot(path, &cur);
    *boot = cur + 1; /* a corrupt file restarts the count; the hub sees a new boot either way */
    if (rc < 0 && rc != -EINVAL)
        return rc;

    char text[16];
    int len = snprintf(text, sizeof text, "%u\n", *boot);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    if (write(fd, text, (size_t)len) != len || fsync(fd) < 0) {
        int e = errno ? errno : EIO;
        close(fd);
        unlink(tmp);
        return -e;
    }
    if (close(fd) < 0 || rename(tmp, path) < 0)
        return -errno;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}
