/* ReLU and ReLU6 forward/backward. Backward masks with the saved output, as PyTorch does:
 * ReLU passes where y > 0, ReLU6 where 0 < y < 6 (hardtanh's strict bounds). */
#include "ops/ops.h"

typedef struct {
  mh_op_ctx *ctx;
  float hi; /* upper clamp: INFINITY for ReLU, 6 for ReLU6 */
} act_job;

static void act_fwd(void *p, long lo, long hi) {
  const act_job *j = p;
  const float *x = j->ctx->x[0];
  float *y = j->ctx->y, top = j->hi;
  /* branch-free so it vectorises: signs of activations are random, a branch mispredicts */
  for (long i = lo; i < hi; i++) {
    float v = x[i];
    v = v > 0.f ? v : 0.f;
    y[i] = v < top ? v : top;
  }
}

static void act_bwd(void *p, long lo, long hi) {
  const act_job *j = p;
  const float *y = j->ctx->y, *dy = j->ctx->dy;
  float *dx = j->ctx->dx[0], top = j->hi;
  /* the gradient passes where 0 < y < top; selects written to if-convert into vector blends */
  if (j->ctx->dx_accumulate[0])
    for (long i = lo; i < hi; i++) {
      float g = dy[i], v = y[i];
      g = v > 0.f ? g : 0.f;
      dx[i] += v < top ? g : 0.f;
    }
  else
    for (long i = lo; i < hi; i++) {
      float g = dy[i], v = y[i];
      g = v > 0.f ? g : 0.f;
      dx[i] = v < top ? g : 0.f;
    }
}

static long numel(const mh_op_ctx *ctx) { return (long)ctx->n * ctx->node->c * ctx->node->h * ctx->node->w; }

static void relu_forward(mh_op_ctx *ctx) {
  act_job j = {ctx, __builtin_inff()};
  mh_parallel_for(ctx->pool, numel(ctx), act_fwd, &j);
}
static void relu_backward(mh_op_ctx *ctx) {
  if (!ctx->dx[0]) return;
  act_job j = {ctx, __builtin_inff()};
  mh_parallel_for(ctx->pool, numel(ctx), act_bwd, &j);
}
static void relu6_forward(mh_op_ctx *ctx) {
  act_job j = {ctx, 6.f};
  mh_parallel_for(ctx->pool, numel(ctx), act_fwd, &j);
}
static void relu6_backward(mh_op_ctx *ctx) {
  if (!ctx->dx[0]) return;
  act_job j = {ctx, 6.f};
  mh_parallel_for(ctx->pool, numel(ctx), act_bwd, &j);
}

const mh_op_impl mh_op_relu = {.save_output = 1, .forward = relu_forward, .backward = relu_backward};
const mh_op_impl mh_op_relu6 = {.save_output = 1, .forward = relu6_forward, .backward = relu6_backward};
