/* The core's clock: a leaf module, so that whatever reads the time (clients,
 * keys, the host table, the grants) depends on nothing else to do it. */
#include "config.h"

#include <stdatomic.h>
#include <time.h>

#include "clock-private.h"

/* Atomic: a test may set it while the HTTP workers of its daemon read it. */
static _Atomic(int64_t (*)(void)) clock_override;

void mandate_clock_set(int64_t (*now)(void))
{
    atomic_store(&clock_override, now);
}

int64_t mandate_clock_now(void)
{
    int64_t (*now)(void) = atomic_load(&clock_override);
    if (now != NULL)
        return now();
    return (int64_t)time(NULL);
}
