/* A persistent thread pool for data-parallel loops: the caller runs task ranges together
 * with the workers. Workers sleep on a condition variable between jobs (no unbounded spinning). */
#ifndef MH_CORE_POOL_H
#define MH_CORE_POOL_H

#include <stddef.h>

typedef struct mh_pool mh_pool;

/* fn(ctx, task, thread) is called once for each task in [0, n_tasks); tasks are handed out
 * dynamically, so a task must write only its own outputs (results then do not depend on which
 * thread ran it). `thread` is in [0, nth) and may index per-thread scratch. */
typedef void (*mh_task_fn)(void *ctx, int task, int thread);

int mh_pool_init(mh_pool **pool, int n_threads); /* n_threads >= 1 including the caller */
void mh_pool_free(mh_pool *pool);                 /* NULL-safe */
int mh_pool_size(const mh_pool *pool);            /* 1 for a NULL pool */
/* Runs all tasks and returns when every one finished. Workers run them in the caller's
 * floating-point environment (rounding, flush-to-zero). A NULL pool runs them inline. Not reentrant:
 * a task must not call mh_pool_run on the same pool (nested calls run inline). */
void mh_pool_run(mh_pool *pool, int n_tasks, mh_task_fn fn, void *ctx);

/* A 64-byte aligned per-thread buffer of at least `bytes`, owned by the pool and reused across
 * jobs (contents not preserved when it grows). Only thread `thread` may call this for its slot.
 * NULL when out of memory or when pool is NULL. */
void *mh_pool_scratch(mh_pool *pool, int thread, size_t bytes);

/* Runs fn(ctx, lo, hi) over contiguous ranges of [0, n) on the pool, at most one range per thread. */
typedef void (*mh_range_fn)(void *ctx, long lo, long hi);
void mh_parallel_for(mh_pool *pool, long n, mh_range_fn fn, void *ctx);

/* Splits [0, n) into `parts` near-equal contiguous ranges; part p is [*lo, *hi). */
static inline void mh_split_range(long n, int parts, int p, long *lo, long *hi) {
  long q = n / parts, r = n % parts;
  *lo = p * q + (p < r ? p : r);
  *hi = *lo + q + (p < r ? 1 : 0);
}

#endif
