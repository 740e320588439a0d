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
} qjob;

static void max_task(void *p, int task, int thread) {
  qjob *j = p;
  long lo, hi;
  mh_split_range(j->n, j->parts, task, &lo, &hi);
  float m = 0;
  for (long i = lo; i < hi; i++) {
    float a = fabsf(j->x[i]);
    m = a > m ? a : m;
  }
  j->part_max[task] = m;
}

/* |v| <= 127 * 1.0 + 1 after scaling, so float -> int conversions (truncating) are exact and the
 * loops vectorise without libm calls. */
static void quant_range(void *p, long lo, long hi) {
  qjob *j = p;
  if (j->mode == MH_ROUND_STOCH) {
    for (long i = lo; i < hi; i++) {
      float v = j->x[i] * j->scale;
      float u = (float)(mh_q_stoch_rand(j->key, (uint32_t)i) >> 8) * (1.0f / 16777216.0f);
      float a = v + u;
      int t = (int)a;          /* toward zero */
      t -= (float)t > a;       /* floor(v + u) */
      t = t > MH_Q8_MAX ? MH_Q8_MAX : t < -MH_Q8_MAX ? -MH_Q8_MAX : t;
      j->q[i] = (int8_t)t;
    }
    return;
  }
  for (long i = lo; i < hi; i++) {
    float v = j->x[i] * j->scale;
    int t = (int)(v + (v >= 0.f ? 0.5f : -0.5f)); /* nearest, ties away from zero */
    t = t > MH_Q8_MAX ? MH_Q8_MAX : t < -MH_Q8_MAX ? -MH_Q8_MAX : t;
    j->q[i] = (int8_t)t;
  }
}

int mh_quantize_f32_s8(mh_pool *pool, const float *x, long n, int8_t *q, mh_round_mode mode, uint32_t key) {
  float part_max[64] = {0};
  int parts = mh_pool_size(pool) * 4; /* max is order-independent: any split gives the same e */
  if (parts > 64) parts = 64;
  qjob j = {x, q, part_max, parts, n, 1.f, mode, key};
  mh_pool_run(pool, parts, max_task, &j);
  float m = 0;
  for (int i = 0; i < parts; i++) m = part_max[i] > m ? part_max[i] : m;
  int e = mh_q_exp_for_max(m);
  j.scale = (float)ldexp(1.0, -e);
  mh_parallel_for(pool, n, quant_range, &j);
  return e;
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
