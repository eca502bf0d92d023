/*
 * fuzz_hubconf.c - libFuzzer target for firewatch-hub's configuration: the
 * real option table (hubconf_options) through conf_parse, then
 * hubconf_validate. Any input either loads or is refused with a message;
 * whatever loads is within the table's bounds and NUL-terminated.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hubconf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hub_config cfg;
    struct conf_error err;
    if (conf_defaults(hubconf_options, hubconf_n_options, &cfg, &err) < 0)
        abort();
    int rc = conf_parse((const char *)data, size, "fuzz", hubconf_options, hubconf_n_options, &cfg, &err);
    if (rc == 0)
        rc = hubconf_validate(&cfg, &err);
    if (rc < 0) {
        if (err.msg[0] == '\0')
            abort();
        return 0;
    }
    if (memchr(cfg.broker, '\0', sizeof cfg.broker) == NULL ||
        memchr(cfg.database, '\0', sizeof cfg.database) == NULL ||
        memchr(cfg.notify_command, '\0', sizeof cfg.notify_command) == NULL)
        abort();
    if (cfg.keepalive_s <= 0 || cfg.batch_max <= 0 || cfg.queue_max <= 0)
        abort();
    return 0;
}
