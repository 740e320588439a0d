/* The op table lookup and the small helpers shared by several ops (parallel ranges, add/copy).
 * Op arithmetic itself lives in one file per op family. */
#include "ops/ops.h"

#include <string.h>

const mh_op_impl *mh_op_impl_get(mh_op_type op) {
  switch (op) {
    case MH_OP_CONV2D: return &mh_op_conv2d;
    case MH_OP_LINEAR: return &mh_op_linear;
    case MH_OP_BATCHNORM: return &mh_op_batchnorm;
    case MH_OP_RELU: return &mh_op_relu;
    case MH_OP_RELU6: return &mh_op_relu6;
    case MH_OP_MAXPOOL: return &mh_op_maxpool;
    case MH_OP_AVGPOOL: return &mh_op_avgpool;
    case MH_OP_GAP: return &mh_op_gap;
    case MH_OP_ADD: return &mh_op_add;
    case MH_OP_FLATTEN: return &mh_op_flatten;
    default: return NULL;
  }
}

void mh__add_or_copy(float *dx, const float *dy, size_t n, int accumulate) {
  if (!accumulate) {
    memcpy(dx, dy, n * sizeof(float));
    return;
  }
  for (size_t i = 0; i < n; i++) dx[i] += dy[i];
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
