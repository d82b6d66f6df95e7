/* Threads released at the same moment, for the tests of a first use under
 * contention (one fetch of a JWKS or of a token for many callers). */
#ifndef MANDATE_TESTS_RUN_TOGETHER_H
#define MANDATE_TESTS_RUN_TOGETHER_H

#include <stddef.h>

/* Calls fn on each of the n elements of args (each size bytes long), each
 * in a thread of its own, all at once once every thread has started; back
 * when all have returned. The test fails when a thread cannot start. */
void run_together(void (*fn)(void *arg), void *args, size_t n, size_t size);

#endif
