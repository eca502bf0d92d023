/*
 * fuzz_fed.c - libFuzzer target for what a regional hub believes from the
 * areas (hub/fed.c). The input is "<topic>\n<payload>": the topic goes
 * through fed_topic_parse, and a payload on a topic that parses through the
 * check of its kind. Whatever is refused says why; an incident document
 * that is accepted encodes again and decodes to the same incident.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    const char *nl = memchr(in, '\n', size);
    size_t tlen = nl ? (size_t)(nl - in) : size;
    const char *payload = nl ? nl + 1 : in + size;
    size_t plen = nl ? size - tlen - 1 : 0;

    char area[FW_ID_MAX + 1];
    enum fed_kind kind;
    uint32_t id;
    if (fed_topic_parse(in, tlen, area, &kind, &id) < 0)
        return 0;
    if (!fw_id_valid(area) || (int)kind < 0 || kind >= FED_KIND_COUNT)
        abort();
    char why[128] = "";
    switch (kind) {
    case FED_INCIDENT: {
        struct fed_incident f, g;
        if (fed_incident_decode(area, payload, plen, &f, why, sizeof why) < 0) {
            if (!why[0])
                abort();
            break;
        }
        size_t len = 0;
        char *doc = fed_incident_encode(area, &f, f.ts_ms, &len);
        if (!doc)
            break; /* decode is looser than encode on free text (an empty origin is fine both ways) */
        if (fed_incident_decode(area, doc, len, &g, why, sizeof why) < 0 || g.id != f.id ||
            strcmp(g.state, f.state) != 0 || strcmp(g.zone, f.zone) != 0 || g.opened_ms != f.opened_ms ||
            g.closed_ms != f.closed_ms)
            abort();
        free(doc);
        break;
    }
    case FED_HUB:
    case FED_READINESS: {
        struct fed_summary s;
        if (fed_summary_decode(area, kind, payload, plen, &s, why, sizeof why) < 0) {
            if (!why[0])
                abort();
        } else if (s.n_open > FED_OPEN_MAX || strcmp(s.area, area) != 0 ||
                   (kind == FED_READINESS && (s.score < 0 || s.score > 100))) {
            abort();
        }
        break;
    }
    case FED_CAP:
        if (fed_cap_check(area, payload, plen, why, sizeof why) < 0 && !why[0])
            abort();
        break;
    default: break;
    }
    return 0;
}
