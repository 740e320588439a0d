/* Float <-> int8/int32 conversions with power-of-two scales. Reductions (max) are per-range then
 * combined, so the result does not depend on the thread count. */
#include "quant/quantize.h"

#include <math.h>

int mh_q_exp_for_max(float maxabs) {
  if (!(maxabs > 0) || !isfinite(maxabs)) return 0;
  int e = (int)ceil(log2((double)maxabs / MH_Q8_MAX));
  /* settle the boundary exactly: maxabs <= 127 * 2^e and not for e - 1 */
  while ((double)maxabs > MH_Q8_MAX * ldexp(1.0, e)) e++;
  while ((double)maxabs <= MH_Q8_MAX * ldexp(1.0, e - 1)) e--;
  return e;
}

typedef struct {
  const float *x;
  int8_t *q;
  float *part_max;
  int parts;
  long n;
  float scale;
  mh_round_mode mode;
  uint32_t key;
  const mh_cpu_kernels *kt;
} qjob;

static void max_task(void *p, int task, int thread) {
  qjob *j = p;
  long lo, hi;
  mh_split_range(j->n, j->parts, task, &lo, &hi);
  j->part_max[task] = j->kt->absmax_f32(j->x + lo, hi - lo);
}

static void quant_range(void *p, long lo, long hi) {
  qjob *j = p;
  j->kt->quant_f32_s8(j->x + lo, j->q + lo, hi - lo, j->scale, j->mode, j->key, (uint32_t)lo);
}

int mh_quantize_f32_s8_max(const mh_cpu_kernels *kt, mh_pool *pool, const float *x, long n, int8_t *q,
                           mh_round_mode mode, uint32_t key, float maxabs) {
  int e = mh_q_exp_for_max(maxabs);
  qjob j = {x, q, NULL, 1, n, (float)ldexp(1.0, -e), mode, key, kt};
  mh_parallel_for(pool, n, quant_range, &j);
  return e;
}

int mh_quantize_f32_s8(const mh_cpu_kernels *kt, mh_pool *pool, const float *x, long n, int8_t *q, mh_round_mode mode,
                       uint32_t key) {
  float part_max[64] = {0};
  int parts = mh_pool_size(pool) * 4; /* max is order-independent: any split gives the same e */
  if (parts > 64) parts = 64;
  qjob j = {x, q, part_max, parts, n, 1.f, mode, key, kt};
  mh_pool_run(pool, parts, max_task, &j);
  float m = 0;
  for (int i = 0; i < parts; i++) m = part_max[i] > m ? part_max[i] : m;
  return mh_quantize_f32_s8_max(kt, pool, x, n, q, mode, key, m);
}

typedef struct {
  const int32_t *x;
  float *y;
  float scale;
  int accumulate;
} dqjob;

static void dequant_range(void *p, long lo, long hi) {
  dqjob *j = p;
  if (j->accumulate)
    for (long i = lo; i < hi; i++) j->y[i] += (float)j->x[i] * j->scale;
  else
    for (long i = lo; i < hi; i++) j->y[i] = (float)j->x[i] * j->scale;
}

void mh_dequantize_s32_f32(mh_pool *pool, const int32_t *x, long n, int e, float *y, int accumulate) {
  dqjob j = {x, y, (float)ldexp(1.0, e), accumulate};
  mh_parallel_for(pool, n, dequant_range, &j);
}
