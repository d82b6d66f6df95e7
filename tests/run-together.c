#include "config.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "run-together.h"

typedef struct runner {
    pthread_barrier_t *start;
    void (*fn)(void *arg);
    void *arg;
} runner;

static void *runner_main(void *arg)
{
    runner *r = arg;
    pthread_barrier_wait(r->start);
    r->fn(r->arg);
    return NULL;
}

void run_together(void (*fn)(void *arg), void *args, size_t n, size_t size)
{
    pthread_t *threads = calloc(n, sizeof(*threads));
    runner *runners = calloc(n, sizeof(*runners));
    assert_non_null(threads);
    assert_non_null(runners);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)n);
    for (size_t i = 0; i < n; i++) {
        runners[i] = (runner){.start = &start, .fn = fn, .arg = (char *)args + i * size};
        assert_int_equal(pthread_create(&threads[i], NULL, runner_main, &runners[i]), 0);
    }
    for (size_t i = 0; i < n; i++)
        pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&start);
    free(runners);
    free(threads);
}
