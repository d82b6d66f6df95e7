#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log-private.h"
#include "util-private.h"
#include "work-queue-private.h"

typedef struct job {
    mandate_work_fn fn;
    void *ctx;
} job;

struct mandate_work_queue {
    pthread_mutex_t lock;
    pthread_cond_t ready; /* a job queued, or stopping */
    job *ring;            /* capacity slots; head is the oldest */
    unsigned capacity, head, count;
    unsigned reserved; /* places taken for jobs not submitted yet */
    bool stopping;
    pthread_t *threads;
    unsigned thread_count;
};

static void *worker_main(void *arg)
{
    mandate_work_queue *q = arg;
    pthread_mutex_lock(&q->lock);
    for (;;) {
        while (q->count == 0 && !q->stopping)
            pthread_cond_wait(&q->ready, &q->lock);
        if (q->count == 0) /* stopping, and nothing left to run */
            break;
        job j = q->ring[q->head];
        q->head = (q->head + 1) % q->capacity;
        q->count--;
        pthread_mutex_unlock(&q->lock);
        j.fn(j.ctx);
        pthread_mutex_lock(&q->lock);
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

mandate_work_queue *mandate_work_queue_new(unsigned threads, unsigned capacity)
{
    mandate_work_queue *q = mandate_xcalloc(1, sizeof(*q));
    q->capacity = capacity > 0 ? capacity : 1;
    q->ring = mandate_xcalloc(q->capacity, sizeof(*q->ring));
    q->threads = mandate_xcalloc(threads > 0 ? threads : 1, sizeof(*q->threads));
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->ready, NULL);
    for (unsigned i = 0; i < (threads > 0 ? threads : 1); i++) {
        int e = pthread_create(&q->threads[i], NULL, worker_main, q);
        if (e != 0) {
            log_error("cannot start a work thread: %s", strerror(e));
            mandate_work_queue_free(&q);
            return NULL;
        }
        q->thread_count++;
    }
    return q;
}

bool mandate_work_queue_reserve(mandate_work_queue *q)
{
    pthread_mutex_lock(&q->lock);
    bool taken = !q->stopping && q->count + q->reserved < q->capacity;
    if (taken)
        q->reserved++;
    pthread_mutex_unlock(&q->lock);
    return taken;
}

bool mandate_work_queue_submit_reserved(mandate_work_queue *q, mandate_work_fn fn, void *ctx)
{
    pthread_mutex_lock(&q->lock);
    q->reserved--;
    bool taken = !q->stopping;
    if (taken) {
        q->ring[(q->head + q->count) % q->capacity] = (job){fn, ctx};
        q->count++;
        pthread_cond_signal(&q->ready);
    }
    pthread_mutex_unlock(&q->lock);
    return taken;
}

bool mandate_work_queue_submit(mandate_work_queue *q, mandate_work_fn fn, void *ctx)
{
    return mandate_work_queue_reserve(q) && mandate_work_queue_submit_reserved(q, fn, ctx);
}

void mandate_work_queue_stop(mandate_work_queue *q)
{
    pthread_mutex_lock(&q->lock);
    q->stopping = true;
    pthread_cond_broadcast(&q->ready);
    pthread_mutex_unlock(&q->lock);
    for (unsigned i = 0; i < q->thread_count; i++)
        pthread_join(q->threads[i], NULL);
    q->thread_count = 0;
}

void mandate_work_queue_free(mandate_work_queue **qp)
{
    mandate_work_queue *q = *qp;
    if (q == NULL)
        return;
    mandate_work_queue_stop(q);
    pthread_cond_destroy(&q->ready);
    pthread_mutex_destroy(&q->lock);
    free(q->threads);
    free(q->ring);
    free(q);
    *qp = NULL;
}
