/*
 * fuzz_conf.c - libFuzzer target for the config parser: any input either
 * parses or is refused with a message, never crashes, over a table with
 * every option type.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "conf.h"

struct sample {
    char name[16];
    int count;
    bool flag;
    double ratio;
};

static const struct conf_option opts[] = {
    CONF_OPT_STR(struct sample, name, "name", "x", "a string"),
    CONF_OPT_INT(struct sample, count, "count", -5, 500, "1", "an int"),
    CONF_OPT_BOOL(struct sample, flag, "flag", "false", "a bool"),
    CONF_OPT_DOUBLE(struct sample, ratio, "ratio", 0, 1, "0.5", "a double"),
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sample s;
    struct conf_error err;
    if (conf_defaults(opts, 4, &s, &err) < 0)
        abort();
    if (conf_parse((const char *)data, size, "fuzz", opts, 4, &s, &err) < 0) {
        if (err.msg[0] == '\0')
            abort();
        return 0;
    }
    if (s.count < -5 || s.count > 500 || s.ratio < 0 || s.ratio > 1)
        abort();
    return 0;
}
