/* The threads that do the work set aside from the HTTP workers
 * (core/work-queue.c): every job taken runs, in order on one thread, none
 * past the queue's capacity, and freeing the queue runs what is queued. */
#include "config.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "work-queue-private.h"

/* A job that waits, when told to, until it is let go: the queue's one
 * thread stays busy while the test fills the queue behind it. */
typedef struct gate {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    bool open;
    unsigned entered;
    unsigned ran[16]; /* the order the jobs ran in */
    unsigned ran_count;
} gate;

typedef struct job {
    gate *g;
    unsigned id;
    bool waits;
} job;

static void run_job(void *ctx)
{
    job *j = ctx;
    gate *g = j->g;
    pthread_mutex_lock(&g->lock);
    g->entered++;
    pthread_cond_broadcast(&g->changed);
    while (j->waits && !g->open)
        pthread_cond_wait(&g->changed, &g->lock);
    g->ran[g->ran_count++] = j->id;
    pthread_cond_broadcast(&g->changed);
    pthread_mutex_unlock(&g->lock);
}

static void gate_init(gate *g)
{
    *g = (gate){.open = false};
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->changed, NULL);
}

static void wait_entered(gate *g, unsigned n)
{
    pthread_mutex_lock(&g->lock);
    while (g->entered < n)
        pthread_cond_wait(&g->changed, &g->lock);
    pthread_mutex_unlock(&g->lock);
}

static void open_gate(gate *g)
{
    pthread_mutex_lock(&g->lock);
    g->open = true;
    pthread_cond_broadcast(&g->changed);
    pthread_mutex_unlock(&g->lock);
}

static void test_bounded_and_in_order(void **state)
{
    (void)state;
    gate g;
    gate_init(&g);
    mandate_work_queue *q = mandate_work_queue_new(1, 3);
    assert_non_null(q);
    job jobs[6];
    for (unsigned i = 0; i < 6; i++)
        jobs[i] = (job){&g, i, i == 0};
    assert_true(mandate_work_queue_submit(q, run_job, &jobs[0]));
    wait_entered(&g, 1); /* the one thread is held by job 0 */
    for (unsigned i = 1; i <= 3; i++)
        assert_true(mandate_work_queue_submit(q, run_job, &jobs[i]));
    /* three wait: the fourth is refused, and never run */
    assert_false(mandate_work_queue_submit(q, run_job, &jobs[4]));
    open_gate(&g);
    /* freeing runs what is queued first */
    mandate_work_queue_free(&q);
    assert_null(q);
    assert_int_equal(g.ran_count, 4);
    for (unsigned i = 0; i < 4; i++)
        assert_int_equal(g.ran[i], i);
}

static void test_threads_run_at_once(void **state)
{
    (void)state;
    gate g;
    gate_init(&g);
    mandate_work_queue *q = mandate_work_queue_new(2, 2);
    job held[2] = {{&g, 0, true}, {&g, 1, true}};
    assert_true(mandate_work_queue_submit(q, run_job, &held[0]));
    assert_true(mandate_work_queue_submit(q, run_job, &held[1]));
    /* both entered while neither may finish: two threads */
    wait_entered(&g, 2);
    assert_int_equal(g.ran_count, 0);
    open_gate(&g);
    mandate_work_queue_stop(q);
    assert_int_equal(g.ran_count, 2);
    /* stopped: nothing is taken any more */
    job late = {&g, 2, false};
    assert_false(mandate_work_queue_submit(q, run_job, &late));
    mandate_work_queue_free(&q);
    assert_int_equal(g.ran_count, 2);
}

/* A place reserved counts as a job waiting; a place reserved on a queue
 * stopped before the job is handed over is given back, the job not run. */
static void test_reserved_places(void **state)
{
    (void)state;
    gate g;
    gate_init(&g);
    mandate_work_queue *q = mandate_work_queue_new(1, 2);
    job held = {&g, 0, true}, later = {&g, 1, false}, refused = {&g, 2, false};
    assert_true(mandate_work_queue_submit(q, run_job, &held));
    wait_entered(&g, 1);
    assert_true(mandate_work_queue_reserve(q));
    assert_true(mandate_work_queue_reserve(q));
    assert_false(mandate_work_queue_reserve(q));
    assert_false(mandate_work_queue_submit(q, run_job, &refused));
    assert_true(mandate_work_queue_submit_reserved(q, run_job, &later));
    open_gate(&g);
    mandate_work_queue_stop(q);
    assert_false(mandate_work_queue_submit_reserved(q, run_job, &refused));
    mandate_work_queue_free(&q);
    assert_int_equal(g.ran_count, 2);
    assert_int_equal(g.ran[0], 0);
    assert_int_equal(g.ran[1], 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reserved_places),
        cmocka_unit_test(test_bounded_and_in_order),
        cmocka_unit_test(test_threads_run_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
