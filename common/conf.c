/*
 * conf.c - see conf.h. Written by hand because the format is a few lines of
 * grammar and no Debian-packaged library parses mosquitto.conf style; the
 * table keeps options declarative, as the style guide asks.
 */
#include "conf.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CONF_FILE_MAX (64 * 1024)
#define CONF_LINE_MAX 1024

static int fail(struct conf_error *err, int line, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct conf_error *err, int line, const char *key, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        err->line = line;
        snprintf(err->key, sizeof err->key, "%s", key ? key : "");
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

const struct conf_option *conf_find(const struct conf_option *opts, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(opts[i].key, key) == 0)
            return &opts[i];
    return NULL;
}

static int parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

int conf_set(const struct conf_option *opt, const char *value, void *target, struct conf_error *err)
{
    char *field = (char *)target + opt->offset;
    char *end;

    switch (opt->type) {
    case CONF_STRING: {
        size_t len = strlen(value);
        if (len >= opt->size)
            return fail(err, 0, opt->key, "value is longer than %zu characters", opt->size - 1);
        memcpy(field, value, len + 1);
        return 0;
    }
    case CONF_INT: {
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end != '\0')
            return fail(err, 0, opt->key, "'%s' is not a whole number", value);
        if ((double)v < opt->min || (double)v > opt->max)
            return fail(err, 0, opt->key, "%lld is out of range %.0f..%.0f", v, opt->min, opt->max);
        int iv = (int)v;
        memcpy(field, &iv, sizeof iv);
        return 0;
    }
    case CONF_DOUBLE: {
        errno = 0;
        double v = strtod(value, &end);
        if (errno || end == value || *end != '\0' || !isfinite(v))
            return fail(err, 0, opt->key, "'%s' is not a number", value);
        if (v < opt->min || v > opt->max)
            return fail(err, 0, opt->key, "%g is out of range %g..%g", v, opt->min, opt->max);
        memcpy(field, &v, sizeof v);
        return 0;
    }
    case CONF_BOOL: {
        bool b;
        if (parse_bool(value, &b) < 0)
            return fail(err, 0, opt->key, "'%s' is not true or false", value);
        memcpy(field, &b, sizeof b);
        return 0;
    }
    }
    return fail(err, 0, opt->key, "option has an unknown type");
}

int conf_defaults(const struct conf_option *opts, size_t n, void *target, struct conf_error *err)
{
    for (size_t i = 0; i < n; i++)
        if (conf_set(&opts[i], opts[i].def, target, err) < 0)
            return -EINVAL;
    return 0;
}

/* Trims blanks (space, tab, CR) from both ends in place; returns the start. */
static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* Splits a trimmed, non-comment line into key and value (value may be ""). */
static void split(char *line, char **key, char **value)
{
    size_t k = strcspn(line, " \t");
    *key = line;
    if (line[k] == '\0') {
        *value = line + k;
        return;
    }
    line[k] = '\0';
    *value = trim(line + k + 1);
}

int conf_parse(const char *text, size_t len, const char *name, const struct conf_option *opts, size_t n,
               void *target, struct conf_error *err)
{
    char line[CONF_LINE_MAX + 1];
    int seen_at[256] = {0};
    size_t pos = 0;
    int lineno = 0;

    if (err) {
        memset(err, 0, sizeof *err);
        snprintf(err->file, sizeof err->file, "%s", name ? name : "(config)");
    }
    if (n > sizeof seen_at / sizeof seen_at[0])
        return fail(err, 0, "", "too many options in the table");
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - (text + pos)) : len - pos;
        lineno++;
        if (ll > CONF_LINE_MAX)
            return fail(err, lineno, "", "line is longer than %d characters", CONF_LINE_MAX);
        memcpy(line, text + pos, ll);
        line[ll] = '\0';
        pos += ll + (nl ? 1 : 0);
        if (memchr(line, '\0', ll))
            return fail(err, lineno, "", "line contains a NUL byte");

        char *s = trim(line), *key, *value;
        if (*s == '\0' || *s == '#')
            continue;
        split(s, &key, &value);
        const struct conf_option *opt = conf_find(opts, n, key);
        if (!opt)
            return fail(err, lineno, key, "unknown option");
        size_t idx = (size_t)(opt - opts);
        if (seen_at[idx])
            return fail(err, lineno, key, "set twice (first on line %d)", seen_at[idx]);
        seen_at[idx] = lineno;
        if (conf_set(opt, value, target, err) < 0) {
            if (err)
                err->line = lineno;
            return -EINVAL;
        }
    }
    return 0;
}

/* Reads a whole file of at most CONF_FILE_MAX bytes into a malloc'd buffer. */
static int slurp(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    char *buf = malloc(CONF_FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        return -ENOMEM;
    }
    size_t n = fread(buf, 1, CONF_FILE_MAX + 1, f);
    int rc = ferror(f) ? -EIO : 0;
    fclose(f);
    if (rc == 0 && n > CONF_FILE_MAX)
        rc = -EFBIG;
    if (rc < 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    *len = n;
    return 0;
}

int conf_load(const char *path, const struct conf_option *opts, size_t n, void *target,
              struct conf_error *err)
{
    char *buf;
    size_t len;
    int rc = slurp(path, &buf, &len);
    if (rc < 0) {
        if (err) {
            memset(err, 0, sizeof *err);
            snprintf(err->file, sizeof err->file, "%s", path);
            snprintf(err->msg, sizeof err->msg, "cannot read: %s",
                     rc == -EFBIG ? "file is larger than 64 KiB" : strerror(-rc));
        }
        return rc;
    }
    rc = conf_parse(buf, len, path, opts, n, target, err);
    free(buf);
    return rc;
}

int conf_check_example(const char *path, const struct conf_option *opts, size_t n, struct conf_error *err)
{
    char *buf;
    size_t len;
    int count[256] = {0};
    int rc = slurp(path, &buf, &len);
    if (err) {
        memset(err, 0, sizeof *err);
        snprintf(err->file, sizeof err->file, "%s", path);
    }
    if (rc < 0)
        return fail(err, 0, "", "cannot read: %s", strerror(-rc));
    if (n > sizeof count / sizeof count[0]) {
        free(buf);
        return fail(err, 0, "", "too many options in the table");
    }
    rc = 0;
    int lineno = 0;
    buf[len] = '\0';
    for (char *l = buf, *next; l && rc == 0; l = next) {
        char *nl = strchr(l, '\n');
        next = nl ? nl + 1 : NULL;
        if (nl)
            *nl = '\0';
        lineno++;
        char *s = trim(l), *key, *value;
        /* An option line is "key value" or, commented out as in
         * mosquitto.conf, "#key value"; prose comments start "# ". */
        if (*s == '#')
            s++;
        if (*s == '\0' || *s == ' ' || *s == '\t' || *s == '#')
            continue;
        split(s, &key, &value);
        const struct conf_option *opt = conf_find(opts, n, key);
        if (!opt)
            continue;
        size_t idx = (size_t)(opt - opts);
        if (++count[idx] > 1)
            rc = fail(err, lineno, key, "listed twice");
        else if (strcmp(value, opt->def) != 0)
            rc = fail(err, lineno, key, "example shows '%s' but the default is '%s'", value, opt->def);
    }
    for (size_t i = 0; i < n && rc == 0; i++)
        if (count[i] == 0)
            rc = fail(err, 0, opts[i].key, "option is missing from the example");
    free(buf);
    return rc;
}

const char *conf_error_text(const struct conf_error *err, char *buf, size_t size)
{
    if (err->line > 0)
        snprintf(buf, size, "%s:%d: %s%s%s", err->file, err->line, err->key, err->key[0] ? ": " : "",
                 err->msg);
    else
        snprintf(buf, size, "%s: %s%s%s", err->file, err->key, err->key[0] ? ": " : "", err->msg);
    return buf;
}
