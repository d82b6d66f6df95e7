/* A few threads that run jobs handed to them, in order, from a queue of
 * bounded length: work that must not run on an HTTP worker (a fetch from a
 * server anyone may name, which can take its whole timeout) is done here
 * while the worker serves other connections (http-private.h,
 * mandate_http_set_aside). */
#ifndef MANDATE_WORK_QUEUE_PRIVATE_H
#define MANDATE_WORK_QUEUE_PRIVATE_H

#include <stdbool.h>

typedef struct mandate_work_queue mandate_work_queue;
typedef void (*mandate_work_fn)(void *ctx);

/* threads (at least 1) that run at most capacity (at least 1) jobs waiting
 * besides the ones running. NULL when a thread cannot be started. */
mandate_work_queue *mandate_work_queue_new(unsigned threads, unsigned capacity);
/* Queues fn(ctx). false, and fn is not run, when capacity jobs wait
 * already (or have a place reserved) or the queue is stopped: the caller
 * refuses the work (it is never done on the caller's thread, which is what
 * the queue is for). */
bool mandate_work_queue_submit(mandate_work_queue *q, mandate_work_fn fn, void *ctx);
/* The same in two steps, for a job whose context is not ready to be
 * handed over yet: reserve says whether there is a place (false as
 * submit would be), and takes it; submit_reserved queues fn(ctx) in it,
 * false only when the queue was stopped meanwhile (the place given back,
 * fn not run). Every place reserved is submitted once. */
bool mandate_work_queue_reserve(mandate_work_queue *q);
bool mandate_work_queue_submit_reserved(mandate_work_queue *q, mandate_work_fn fn, void *ctx);
/* Runs every job queued, then stops the threads; from then on nothing is
 * taken. */
void mandate_work_queue_stop(mandate_work_queue *q);
/* Stops the queue (mandate_work_queue_stop) and frees it. */
void mandate_work_queue_free(mandate_work_queue **q);

#endif
