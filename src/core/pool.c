/* Persistent pthread pool: a generation counter wakes workers, an atomic cursor hands out tasks,
 * and an atomic completion count ends a job. A short spin precedes every sleep, on both sides. */
#include "core/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "core/fpenv.h"
#include "core/status.h"

/* How long an idle worker polls for the next job before sleeping on the condition variable. */
#define MH_POOL_SPIN_NS 50000L

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define mh__cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define mh__cpu_relax() __asm__ __volatile__("yield")
#else
#define mh__cpu_relax() ((void)0)
#endif

struct mh_pool {
  int nth;
  pthread_t *threads;
  pthread_mutex_t mu;
  pthread_cond_t wake, done;
  atomic_ulong generation; /* bumped per job, under mu; read lock-free while spinning */
  atomic_int stop;
  /* the current job */
  mh_task_fn fn;
  void *ctx;
  int n_tasks;
  mh_fpenv fpenv; /* the caller's floating-point environment, applied by workers for the job */
  atomic_int next_task;
  atomic_int workers_done; /* workers finished with the current job */
  atomic_int in_job; /* nonzero while the caller is inside mh_pool_run */
  /* per-thread scratch, grown on demand by its own thread only */
  void **scratch;
  size_t *scratch_size;
};

typedef struct {
  mh_pool *pool;
  int id;
} worker_arg;

static void run_tasks(mh_pool *p, int thread) {
  for (;;) {
    int t = atomic_fetch_add_explicit(&p->next_task, 1, memory_order_relaxed);
    if (t >= p->n_tasks) break;
    p->fn(p->ctx, t, thread);
  }
}

static void *worker_main(void *argp) {
  worker_arg *arg = argp;
  mh_pool *p = arg->pool;
  int id = arg->id;
  free(arg);
  unsigned long seen = 0;
  for (;;) {
    /* Spin for at most MH_POOL_SPIN_NS waiting for a back-to-back job, then sleep: a bounded spin
     * keeps hand-off latency low without burning a core that another process needs. */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int spin = 1; atomic_load_explicit(&p->generation, memory_order_acquire) == seen && !p->stop; spin++) {
      mh__cpu_relax();
      if ((spin & 63) == 0) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if ((t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec) > MH_POOL_SPIN_NS) break;
      }
    }
    pthread_mutex_lock(&p->mu);
    while (!p->stop && p->generation == seen) pthread_cond_wait(&p->wake, &p->mu);
    if (p->stop) {
      pthread_mutex_unlock(&p->mu);
      return NULL;
    }
    seen = p->generation;
    pthread_mutex_unlock(&p->mu);
    mh_fpenv_set(p->fpenv);
    run_tasks(p, id);
    if (atomic_fetch_add(&p->workers_done, 1) + 1 == p->nth - 1) { /* the last: wake a sleeping caller */
      pthread_mutex_lock(&p->mu);
      pthread_cond_signal(&p->done);
      pthread_mutex_unlock(&p->mu);
    }
  }
}

int mh_pool_init(mh_pool **out, int n_threads) {
  *out = NULL;
  if (n_threads < 1 || n_threads > 256)
    return mh__error(MH_ERR_INVALID_ARG, "thread count %d out of range [1, 256]", n_threads);
  mh_pool *p = calloc(1, sizeof *p);
  if (!p) return mh__error(MH_ERR_NOMEM, "thread pool: out of memory");
  p->nth = n_threads;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->wake, NULL);
  pthread_cond_init(&p->done, NULL);
  p->threads = calloc((size_t)n_threads, sizeof *p->threads);
  p->scratch = calloc((size_t)n_threads, sizeof *p->scratch);
  p->scratch_size = calloc((size_t)n_threads, sizeof *p->scratch_size);
  if (!p->threads || !p->scratch || !p->scratch_size) {
    mh_pool_free(p);
    return mh__error(MH_ERR_NOMEM, "thread pool: out of memory");
  }
  for (int i = 1; i < n_threads; i++) {
    worker_arg *a = malloc(sizeof *a);
    if (!a || pthread_create(&p->threads[i], NULL, worker_main, a ? (a->pool = p, a->id = i, a) : NULL) != 0) {
      free(a);
      p->nth = i; /* only threads 1..i-1 exist */
      mh_pool_free(p);
      return mh__error(MH_ERR_INTERNAL, "thread pool: cannot start thread %d of %d", i, n_threads);
    }
  }
  *out = p;
  return MH_OK;
}

void mh_pool_free(mh_pool *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  p->stop = 1;
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);
  for (int i = 1; i < p->nth; i++) pthread_join(p->threads[i], NULL);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->wake);
  pthread_cond_destroy(&p->done);
  for (int i = 0; p->scratch && i < p->nth; i++) free(p->scratch[i]);
  free(p->scratch);
  free(p->scratch_size);
  free(p->threads);
  free(p);
}

void *mh_pool_scratch(mh_pool *p, int thread, size_t bytes) {
  if (!p || thread < 0 || thread >= p->nth) return NULL;
  if (p->scratch_size[thread] < bytes) {
    free(p->scratch[thread]);
    bytes = (bytes + 63) & ~(size_t)63;
    p->scratch[thread] = aligned_alloc(64, bytes);
    p->scratch_size[thread] = p->scratch[thread] ? bytes : 0;
  }
  return p->scratch[thread];
}

int mh_pool_size(const mh_pool *p) { return p ? p->nth : 1; }

void mh_pool_run(mh_pool *p, int n_tasks, mh_task_fn fn, void *ctx) {
  if (n_tasks <= 0) return;
  if (!p || p->nth == 1 || n_tasks == 1 || atomic_exchange(&p->in_job, 1)) {
    for (int t = 0; t < n_tasks; t++) fn(ctx, t, 0);
    return;
  }
  pthread_mutex_lock(&p->mu);
  p->fn = fn;
  p->ctx = ctx;
  p->n_tasks = n_tasks;
  p->fpenv = mh_fpenv_get();
  atomic_store(&p->next_task, 0);
  atomic_store(&p->workers_done, 0);
  p->generation++;
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);
  run_tasks(p, 0);
  /* the workers are finishing their last tasks: poll briefly before sleeping (a futex wake-up costs
   * more than most of a small op's tasks) */
  for (int spin = 0; spin < 4096 && atomic_load(&p->workers_done) < p->nth - 1; spin++) mh__cpu_relax();
  if (atomic_load(&p->workers_done) < p->nth - 1) {
    pthread_mutex_lock(&p->mu);
    while (atomic_load(&p->workers_done) < p->nth - 1) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
  }
  atomic_store(&p->in_job, 0);
}

typedef struct {
  long n;
  int parts;
  mh_range_fn fn;
  void *ctx;
} range_job;

static void range_task(void *p, int task, int thread) {
  range_job *j = p;
  long lo, hi;
  mh_split_range(j->n, j->parts, task, &lo, &hi);
  if (hi > lo) j->fn(j->ctx, lo, hi);
}

void mh_parallel_for(mh_pool *pool, long n, mh_range_fn fn, void *ctx) {
  if (n <= 0) return;
  int parts = mh_pool_size(pool);
  if (parts > n) parts = (int)n;
  range_job j = {n, parts, fn, ctx};
  mh_pool_run(pool, parts, range_task, &j);
}
