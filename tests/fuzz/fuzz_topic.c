/*
 * fuzz_topic.c - libFuzzer target for the topic parser. Any topic that
 * parses must build back to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "firewatch/protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fw_topic t;
    char buf[FW_TOPIC_MAX];
    if (fw_topic_parse((const char *)data, size, &t, NULL) < 0)
        return 0;
    int n = fw_topic_build(buf, sizeof buf, t.channel, t.id);
    if (n < 0 || (size_t)n != size || memcmp(buf, data, size) != 0)
        abort();
    return 0;
}
