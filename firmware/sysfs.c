/*
 * sysfs.c - see sysfs.h. Every file is read whole into a small buffer with
 * one read(): sysfs attributes are produced in one go, and a DS18B20's
 * w1_slave read blocks for its ~750 ms conversion.
 */
#include "sysfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Reads a small file into buf as a string. Returns 0 or a negative errno. */
static int read_small(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, size - 1);
    int e = errno;
    close(fd);
    if (n < 0)
        return -e;
    buf[n] = '\0';
    return 0;
}

/* Parses a whole decimal integer, allowing trailing blanks/newline. */
static int parse_long(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s)
        return -EINVAL;
    while (*end == ' ' || *end == '\n' || *end == '\t' || *end == '\r')
        end++;
    if (*end)
        return -EINVAL;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !isfinite(v))
        return -EINVAL;
    while (*end == ' ' || *end == '\n' || *end == '\t' || *end == '\r')
        end++;
    if (*end)
        return -EINVAL;
    *out = v;
    return 0;
}

static int read_long(const char *path, long *v)
{
    char buf[64];
    int rc = read_small(path, buf, sizeof buf);
    return rc < 0 ? rc : parse_long(buf, v);
}

int sysfs_parse_w1_slave(const char *text, double *c)
{
    const char *nl = strchr(text, '\n');
    if (!nl)
        return -EINVAL;
    /* The first line ends in "crc=xx YES" or "crc=xx NO". */
    const char *crc = strstr(text, "crc=");
    if (!crc || crc > nl)
        return -EINVAL;
    if (nl - text < 3 || memcmp(nl - 3, "YES", 3) != 0)
        return -EIO;
    const char *t = strstr(nl + 1, "t=");
    if (!t)
        return -EINVAL;
    long v;
    if (parse_long(t + 2, &v) < 0)
        return -EINVAL;
    *c = (double)v / 1000.0;
    return 0;
}

int sysfs_read_w1(const char *path, double *c)
{
    char buf[256];
    int rc = read_small(path, buf, sizeof buf);
    if (rc < 0)
        return rc;
    size_t n = strlen(path);
    if (n >= 8 && strcmp(path + n - 8, "w1_slave") == 0)
        return sysfs_parse_w1_slave(buf, c);
    long v;
    if (parse_long(buf, &v) < 0)
        return -EINVAL;
    *c = (double)v / 1000.0;
    return 0;
}

int sysfs_find_w1(const char *base, char *out, size_t size)
{
    DIR *dir = opendir(base);
    if (!dir)
        return -ENOENT;
    struct dirent *de;
    int rc = -ENOENT;
    char best[256] = "";
    while ((de = readdir(dir))) {
        if (strncmp(de->d_name, "28-", 3) != 0)
            continue;
        if (best[0] && strcmp(de->d_name, best) > 0)
            continue; /* the lowest id, so the choice is stable */
        snprintf(best, sizeof best, "%s", de->d_name);
    }
    closedir(dir);
    if (best[0]) {
        snprintf(out, size, "%s/%s/temperature", base, best);
        if (access(out, R_OK) != 0)
            snprintf(out, size, "%s/%s/w1_slave", base, best);
        rc = 0;
    }
    return rc;
}

int sysfs_read_iio(const char *dir, double *c)
{
    char path[512], buf[64];
    long v;
    snprintf(path, sizeof path, "%s/in_temp_input", dir);
    if (read_long(path, &v) == 0) {
        *c = (double)v / 1000.0;
        return 0;
    }
    snprintf(path, sizeof path, "%s/in_temp_raw", dir);
    int rc = read_long(path, &v);
    if (rc < 0)
        return rc;
    double offset = 0, scale = 1;
    snprintf(path, sizeof path, "%s/in_temp_offset", dir);
    if (read_small(path, buf, sizeof buf) == 0 && parse_double(buf, &offset) < 0)
        return -EINVAL;
    snprintf(path, sizeof path, "%s/in_temp_scale", dir);
    if (read_small(path, buf, sizeof buf) == 0 && parse_double(buf, &scale) < 0)
        return -EINVAL;
    *c = ((double)v + offset) * scale / 1000.0;
    return 0;
}

int sysfs_read_battery(const char *dir, int *pct)
{
    char path[512];
    long v;
    snprintf(path, sizeof path, "%s/capacity", dir);
    int rc = read_long(path, &v);
    if (rc < 0)
        return rc;
    *pct = v < 0 ? 0 : v > 100 ? 100 : (int)v;
    return 0;
}

int sysfs_find_battery(const char *base, char *out, size_t size)
{
    DIR *dir = opendir(base);
    if (!dir)
        return -ENOENT;
    struct dirent *de;
    int rc = -ENOENT;
    while (rc < 0 && (de = readdir(dir))) {
        char path[512], type[32];
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s/type", base, de->d_name);
        if (read_small(path, type, sizeof type) == 0 && strncmp(type, "Battery", 7) == 0) {
            snprintf(out, size, "%s/%s", base, de->d_name);
            rc = 0;
        }
    }
    closedir(dir);
    return rc;
}
