/*
 * clock.h - the only place the daemons read the time. Pure modules take
 * now_ms as an argument instead, so tests can drive time.
 */
#ifndef FIREWATCH_CLOCK_H
#define FIREWATCH_CLOCK_H

#include <stdint.h>

/* Unix time in milliseconds (wall clock: timestamps on the wire and in the database). */
int64_t clock_wall_ms(void);

/* Milliseconds on the monotonic clock (timeouts and intervals). */
int64_t clock_mono_ms(void);

#endif
