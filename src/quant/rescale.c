/* Exact and self-adaptive rescaling of int32 accumulators to int8 (the rule is in rescale.h).
 * Work is split into fixed parts whose max and saturation counts combine order-independently. */
#include "quant/rescale.h"

#include <time.h>

#define MAX_PARTS 64

typedef struct {
  const mh_cpu_kernels *kt;
  const int32_t *x;
  int8_t *y;
  long n;
  int parts, shift, round;
  mh_requant_stats st[MAX_PARTS];
  uint32_t max[MAX_PARTS];
} rs_job;

static int parts_for(mh_pool *pool, long n) {
  int p = mh_pool_size(pool) * 4;
  if (n < 16384) p = 1; /* small tensors: one pass on the caller's thread */
  return p > MAX_PARTS ? MAX_PARTS : p;
}

static void max_part(void *p, int task, int thread) {
  (void)thread;
  rs_job *j = p;
  long lo, hi;
  mh_split_range(j->n, j->parts, task, &lo, &hi);
  uint32_t m = 0;
  for (long i = lo; i < hi; i++) {
    uint32_t a = mh_q_abs32(j->x[i]);
    m = a > m ? a : m;
  }
  j->max[task] = m;
}

static void requant_part(void *p, int task, int thread) {
  (void)thread;
  rs_job *j = p;
  long lo, hi;
  mh_split_range(j->n, j->parts, task, &lo, &hi);
  j->kt->requant_s8(j->x + lo, j->y + lo, hi - lo, j->shift, j->round, 0, (uint32_t)lo, &j->st[task]);
}

static void run(mh_pool *pool, rs_job *j, mh_task_fn fn) {
  if (j->parts == 1) fn(j, 0, 0);
  else mh_pool_run(pool, j->parts, fn, j);
}

uint32_t mh_rescale_max_abs(mh_pool *pool, const int32_t *x, long n) {
  rs_job j = {.x = x, .n = n, .parts = parts_for(pool, n)};
  run(pool, &j, max_part);
  uint32_t m = 0;
  for (int i = 0; i < j.parts; i++) m = j.max[i] > m ? j.max[i] : m;
  return m;
}

/* One requantise pass with `shift`; returns the measured max and saturation count. */
static mh_requant_stats requant(mh_pool *pool, rs_job *j, int shift) {
  j->shift = shift;
  run(pool, j, requant_part);
  mh_requant_stats s = {0, 0};
  for (int i = 0; i < j->parts; i++) {
    if (j->st[i].max_abs > s.max_abs) s.max_abs = j->st[i].max_abs;
    s.saturated += j->st[i].saturated;
  }
  return s;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int mh_rescale_needs_exact(const mh_rescale_state *st, mh_rescale_mode mode) {
  return mh_rule_needs_exact(st, mode == MH_RESCALE_ADAPTIVE);
}

void mh_rescale_count_event(mh_rescale_counts *cnt, int events, long n, mh_rescale_mode mode) {
  double bytes = (double)n * 4;
  cnt->calls++;
  if (events & MH_RULE_EXACT) {
    if (mode == MH_RESCALE_ADAPTIVE) cnt->periodic++;
    cnt->max_passes++;
    cnt->int32_bytes_read += 2 * bytes;
    return;
  }
  cnt->int32_bytes_read += bytes;
  if (events & MH_RULE_MISPREDICTED) cnt->mispredicted++;
  if (events & MH_RULE_REDO) {
    cnt->fallbacks++;
    cnt->int32_bytes_read += bytes;
  } else {
    cnt->passes_avoided++;
    cnt->int32_bytes_avoided += bytes;
  }
}

void mh_rescale_after_exact(mh_rescale_state *st, mh_rescale_counts *cnt, int shift, long n, mh_rescale_mode mode) {
  mh_rule_after_exact(st, shift);
  mh_rescale_count_event(cnt, MH_RULE_EXACT, n, mode);
}

int mh_rescale_after_predicted(mh_rescale_state *st, mh_rescale_counts *cnt, const mh_requant_stats *s, long n,
                               int *redo) {
  int events, shift = mh_rule_after_predicted(st, s->max_abs, s->saturated, (uint64_t)n, &events);
  mh_rescale_count_event(cnt, events, n, MH_RESCALE_ADAPTIVE);
  *redo = (events & MH_RULE_REDO) != 0;
  return shift;
}

int mh_rescale_s32_s8(const mh_cpu_kernels *kt, mh_pool *pool, const int32_t *acc, long n, int8_t *out,
                      mh_round_mode round, mh_rescale_mode mode, mh_rescale_state *st, mh_rescale_counts *cnt) {
  double t0 = now_s();
  rs_job j = {.kt = kt, .x = acc, .y = out, .n = n, .parts = parts_for(pool, n), .round = (int)round};
  int shift;
  if (mh_rescale_needs_exact(st, mode)) {
    shift = mh_q_niti_shift_for(mh_rescale_max_abs(pool, acc, n));
    requant(pool, &j, shift);
    mh_rescale_after_exact(st, cnt, shift, n, mode);
  } else {
    mh_requant_stats s = requant(pool, &j, st->shift);
    int redo;
    shift = mh_rescale_after_predicted(st, cnt, &s, n, &redo);
    if (redo) requant(pool, &j, shift);
  }
  cnt->seconds += now_s() - t0;
  return shift;
}

void mh_rescale_counts_add(mh_rescale_counts *into, const mh_rescale_counts *c) {
  into->calls += c->calls;
  into->max_passes += c->max_passes;
  into->passes_avoided += c->passes_avoided;
  into->fallbacks += c->fallbacks;
  into->periodic += c->periodic;
  into->mispredicted += c->mispredicted;
  into->int32_bytes_read += c->int32_bytes_read;
  into->int32_bytes_avoided += c->int32_bytes_avoided;
  into->seconds += c->seconds;
}
