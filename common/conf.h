/*
 * conf.h - the table-driven parser for Firewatch's config files.
 *
 * Both daemons read the same format, mosquitto.conf style: one `key value`
 * per line, the value is the rest of the line with surrounding blanks
 * trimmed (so it may hold '#' or spaces, as passwords do), whole-line `#`
 * comments, blank lines ignored. Each program describes its options as a
 * table, one row each, with type, bounds, default and a line of help; the
 * parser stores values into the program's own struct by offset. Unknown
 * keys, repeated keys, bad numbers and out-of-range values are errors that
 * name the file, line and key. conf_parse() is pure over a buffer, so it is
 * unit-tested and fuzzed directly.
 */
#ifndef FIREWATCH_CONF_H
#define FIREWATCH_CONF_H

#include <stdbool.h>
#include <stddef.h>

enum conf_type {
    CONF_STRING, /* char array of `size` bytes inside the struct */
    CONF_INT,    /* int, within [min, max] */
    CONF_BOOL,   /* bool: true/false, yes/no, on/off, 1/0 */
    CONF_DOUBLE, /* double, within [min, max] */
};

struct conf_option {
    const char *key;
    enum conf_type type;
    size_t offset; /* offsetof(struct yours, field) */
    size_t size;   /* CONF_STRING: the array's size, with the NUL */
    double min, max;
    const char *def;  /* default, as text; "" for an empty string */
    const char *help; /* one line, for --help and the example file */
};

/* Where and why a config was refused. */
struct conf_error {
    char file[256];
    int line; /* 0 when not about a line */
    char key[64];
    char msg[192];
};

#define CONF_OPT_STR(st, field, key, def, help)                                                              \
    {                                                                                                        \
        key, CONF_STRING, offsetof(st, field), sizeof(((st *)0)->field), 0, 0, def, help                     \
    }
#define CONF_OPT_INT(st, field, key, lo, hi, def, help)                                                      \
    {                                                                                                        \
        key, CONF_INT, offsetof(st, field), sizeof(int), lo, hi, def, help                                   \
    }
#define CONF_OPT_BOOL(st, field, key, def, help)                                                             \
    {                                                                                                        \
        key, CONF_BOOL, offsetof(st, field), sizeof(bool), 0, 1, def, help                                   \
    }
#define CONF_OPT_DOUBLE(st, field, key, lo, hi, def, help)                                                   \
    {                                                                                                        \
        key, CONF_DOUBLE, offsetof(st, field), sizeof(double), lo, hi, def, help                             \
    }

/* Sets every option of target to its default. Returns 0, or -EINVAL when a
 * default itself is invalid (a bug in the table; err says which). */
int conf_defaults(const struct conf_option *opts, size_t n, void *target, struct conf_error *err);

/* Sets one option from text. Returns 0 or -EINVAL with err->msg filled. */
int conf_set(const struct conf_option *opt, const char *value, void *target, struct conf_error *err);

/* Finds the option row for key, or NULL. */
const struct conf_option *conf_find(const struct conf_option *opts, size_t n, const char *key);

/* Parses len bytes of config text over target (call conf_defaults first).
 * name is used in errors. Returns 0 or -EINVAL with err filled at the first
 * bad line. */
int conf_parse(const char *text, size_t len, const char *name, const struct conf_option *opts, size_t n,
               void *target, struct conf_error *err);

/* Reads and parses a file (at most 64 KiB). Returns 0, -EINVAL for bad
 * content, or the negative errno of opening or reading it. */
int conf_load(const char *path, const struct conf_option *opts, size_t n, void *target,
              struct conf_error *err);

/* Checks that an example config lists every option exactly once, as
 * `key default` or commented out as `#key default` (no space after '#';
 * prose comments start "# "), with the table's default. Returns 0 or
 * -EINVAL with err filled. */
int conf_check_example(const char *path, const struct conf_option *opts, size_t n, struct conf_error *err);

/* Formats err as "file:line: key: message" into buf. Returns buf. */
const char *conf_error_text(const struct conf_error *err, char *buf, size_t size);

#endif
