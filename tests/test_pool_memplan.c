/* The thread pool (every task runs exactly once, per-thread scratch, nested runs inline) and the
 * memory planner (no two buffers alive at the same time overlap; reuse never exceeds no reuse). */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "core/memplan.h"
#include "core/pool.h"
#include "core/rng.h"
#include "mandheling.h"
#include "testlib.h"

typedef struct {
  atomic_int *hits;
  mh_pool *pool;
  atomic_int nested;
} job;

static void count_task(void *p, int task, int thread) {
  job *j = p;
  atomic_fetch_add(&j->hits[task], 1);
  if (task == 3 && j->pool) { /* a nested run must execute inline, not deadlock */
    job inner = {j->hits + 1000, NULL, 0};
    mh_pool_run(j->pool, 4, count_task, &inner);
    atomic_fetch_add(&j->nested, 1);
  }
}

static void range_sum(void *p, long lo, long hi) {
  long *out = p;
  for (long i = lo; i < hi; i++) out[i] = i * 2;
}

/* Two planners in two threads at once: each thread plans its own random block set 200 times and
 * must get the offsets a lone run gives (the sort keeps no global state). */
typedef struct {
  uint64_t seed;
  int bad;
} plan_job;

static void random_blocks(mh_mem_block *b, int n, uint64_t seed) {
  mh_rng r = mh_rng_make(seed);
  for (int i = 0; i < n; i++) {
    b[i].size = 64 + mh_rng_below(&r, 1u << 16);
    b[i].start = (int)mh_rng_below(&r, 100);
    b[i].end = b[i].start + (int)mh_rng_below(&r, 40);
    b[i].offset = 0;
  }
}

static void *plan_thread(void *p) {
  plan_job *j = p;
  enum { N = 300 };
  static _Thread_local mh_mem_block a[N], want[N];
  random_blocks(want, N, j->seed);
  size_t total = mh_memplan_assign(want, N, 64);
  for (int it = 0; it < 200; it++) {
    random_blocks(a, N, j->seed);
    if (mh_memplan_assign(a, N, 64) != total) j->bad++;
    for (int i = 0; i < N; i++) j->bad += a[i].offset != want[i].offset;
  }
  return NULL;
}

static void planners_in_threads(void) {
  plan_job jobs[2] = {{11, 0}, {12, 0}};
  pthread_t th[2];
  for (int k = 0; k < 2; k++) pthread_create(&th[k], NULL, plan_thread, &jobs[k]);
  for (int k = 0; k < 2; k++) pthread_join(th[k], NULL);
  CHECK_EQ_INT(jobs[0].bad, 0);
  CHECK_EQ_INT(jobs[1].bad, 0);
}

int main(void) {
  planners_in_threads();
  for (int nth = 1; nth <= 3; nth++) {
    mh_pool *p;
    CHECK_OK(mh_pool_init(&p, nth));
    CHECK_EQ_INT(mh_pool_size(p), nth);
    for (int round = 0; round < 200; round++) {
      static atomic_int hits[1004];
      for (int i = 0; i < 1004; i++) atomic_store(&hits[i], 0);
      job j = {hits, p, 0};
      int n = 1 + round % 37;
      mh_pool_run(p, n, count_task, &j);
      int ok = 1;
      for (int i = 0; i < n; i++) ok &= atomic_load(&hits[i]) == 1;
      for (int i = n; i < 1000; i++) ok &= atomic_load(&hits[i]) == 0;
      if (n > 3) ok &= atomic_load(&j.nested) == 1 && atomic_load(&hits[1000]) == 1 && atomic_load(&hits[1003]) == 1;
      if (!ok) TL_FAIL("pool of %d: round %d with %d tasks did not run each task exactly once", nth, round, n);
      tl_checks++;
    }
    long out[1000];
    memset(out, 0, sizeof out);
    mh_parallel_for(p, 1000, range_sum, out);
    int ok = 1;
    for (long i = 0; i < 1000; i++) ok &= out[i] == 2 * i;
    CHECK(ok);
    void *s0 = mh_pool_scratch(p, 0, 1000), *s1 = mh_pool_scratch(p, 0, 500);
    CHECK(s0 != NULL && s0 == s1 && ((uintptr_t)s0 & 63) == 0);
    CHECK(mh_pool_scratch(p, nth, 10) == NULL);
    mh_pool_free(p);
  }
  CHECK_ERR(mh_pool_init(&(mh_pool *){0}, 0));

  /* memory planner on random lifetimes */
  mh_rng r = mh_rng_make(3);
  for (int trial = 0; trial < 200; trial++) {
    int n = 1 + (int)mh_rng_below(&r, 60);
    mh_mem_block b[60];
    size_t naive = 0;
    for (int i = 0; i < n; i++) {
      b[i].size = 1 + mh_rng_below(&r, 5000);
      b[i].start = (int)mh_rng_below(&r, 100);
      b[i].end = b[i].start + (int)mh_rng_below(&r, 30);
      naive += (b[i].size + 63) / 64 * 64;
    }
    size_t total = mh_memplan_assign(b, n, 64);
    int ok = total <= naive;
    for (int i = 0; i < n; i++) {
      ok &= b[i].offset % 64 == 0 && b[i].offset + b[i].size <= total;
      for (int k = i + 1; k < n; k++) {
        int live = !(b[i].end < b[k].start || b[k].end < b[i].start);
        int overlap = b[i].offset < b[k].offset + b[k].size && b[k].offset < b[i].offset + b[i].size;
        if (live && overlap) ok = 0;
      }
    }
    if (!ok) TL_FAIL("memplan trial %d: overlapping live buffers or arena larger than without reuse", trial);
    tl_checks++;
  }
  return tl_exit();
}
