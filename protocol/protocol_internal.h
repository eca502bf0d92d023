/*
 * protocol_internal.h - helpers shared by the protocol library's own files.
 * Not installed, not used outside protocol/.
 */
#ifndef FIREWATCH_PROTOCOL_INTERNAL_H
#define FIREWATCH_PROTOCOL_INTERNAL_H

#include "firewatch/protocol.h"

/* Fills err (when not NULL) with code, field and a formatted message. */
void fw_error_set(struct fw_error *err, enum fw_err code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Deepest nesting of objects and arrays in JSON text, strings skipped.
 * Stops counting once limit is exceeded and returns limit + 1. */
int fw_json_depth(const char *s, size_t n, int limit);

/* Wire name to enum for the two enums without a public parser. */
int fw_result_parse_internal(const char *s, enum fw_result *out);
int fw_state_parse_internal(const char *s, enum fw_alarm_state *out);

#endif
