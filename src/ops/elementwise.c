/* Residual add (y = a + b) and flatten (a view: the executor aliases its output to its input),
 * forward and backward. */
#include "ops/ops.h"

typedef struct {
  mh_op_ctx *ctx;
} add_job;

static void add_fwd(void *p, long lo, long hi) {
  mh_op_ctx *ctx = ((add_job *)p)->ctx;
  const float *a = ctx->x[0], *b = ctx->x[1];
  for (long i = lo; i < hi; i++) ctx->y[i] = a[i] + b[i];
}

static void add_bwd(void *p, long lo, long hi) {
  mh_op_ctx *ctx = ((add_job *)p)->ctx;
  for (int k = 0; k < 2; k++)
    if (ctx->dx[k]) mh__add_or_copy(ctx->dx[k] + lo, ctx->dy + lo, (size_t)(hi - lo), ctx->dx_accumulate[k]);
}

static long numel(const mh_op_ctx *ctx) { return (long)ctx->n * ctx->node->c * ctx->node->h * ctx->node->w; }

static void add_forward(mh_op_ctx *ctx) {
  add_job j = {ctx};
  mh_parallel_for(ctx->pool, numel(ctx), add_fwd, &j);
}
static void add_backward(mh_op_ctx *ctx) {
  add_job j = {ctx};
  mh_parallel_for(ctx->pool, numel(ctx), add_bwd, &j);
}

/* Flatten's output is its input's memory: nothing to do forward; backward hands dy on. */
static void flatten_forward(mh_op_ctx *ctx) {}
static void flatten_backward(mh_op_ctx *ctx) {
  if (ctx->dx[0] && ctx->dx[0] != ctx->dy) mh__add_or_copy(ctx->dx[0], ctx->dy, (size_t)numel(ctx), ctx->dx_accumulate[0]);
}

const mh_op_impl mh_op_add = {.forward = add_forward, .backward = add_backward};
const mh_op_impl mh_op_flatten = {.alias_input = 1, .forward = flatten_forward, .backward = flatten_backward};
