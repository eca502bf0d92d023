/*
 * fuzz_payload.c - libFuzzer target for the payload decoder.
 *
 * The first byte picks the channel, the rest is the payload. Whatever
 * decodes must re-encode, and the encoding must decode again: the library
 * must never emit what it refuses. Built with clang -fsanitize=fuzzer for
 * `make fuzz`, and with tests/fuzz/replay.c as a corpus replayer for make test.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "firewatch/protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    enum fw_channel ch = (enum fw_channel)(data[0] % FW_CH_COUNT);
    struct fw_msg m, m2;
    struct fw_error err;
    char buf[FW_PAYLOAD_MAX + 1];

    if (fw_msg_decode(ch, (const char *)data + 1, size - 1, &m, &err) < 0) {
        if (err.code == FW_OK || err.msg[0] == '\0')
            abort(); /* every refusal says why */
        return 0;
    }
    int n = fw_msg_encode(&m, buf, sizeof buf);
    if (n < 0)
        abort();
    if (fw_msg_decode(ch, buf, (size_t)n, &m2, &err) < 0)
        abort();
    return 0;
}
