/* The clock every part of the core and every plugin (through the host) reads:
 * one place, so that tests can move time for all of them at once. */
#ifndef MANDATE_CLOCK_PRIVATE_H
#define MANDATE_CLOCK_PRIVATE_H

#include <stdint.h>

/* Wall-clock seconds since the epoch. */
int64_t mandate_clock_now(void);
/* Tests replace the clock to move time; NULL restores the real one. */
void mandate_clock_set(int64_t (*now)(void));

#endif
