/* ReLU and ReLU6 forward/backward. Backward masks with the saved output, as PyTorch does:
 * ReLU passes where y > 0, ReLU6 where 0 < y < 6 (hardtanh's strict bounds). */
#include <string.h>
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

/* ---- ReLU / ReLU6 for the int8 algorithm: a byte mask of where the gradient passes (a quarter of
 * the FP32 output it replaces; bytes keep both loops vectorisable) is saved instead. */
static size_t mask_state(const mh_graph *g, const mh_node *nd, int n, int precision) {
  return ((size_t)n * nd->c * nd->h * nd->w + 3) / 4;
}

static void act_fwd_mask(void *p, long lo, long hi) {
  const act_job *j = p;
  const float *restrict x = j->ctx->x[0];
  float *restrict y = j->ctx->y, top = j->hi;
  uint8_t *restrict mask = (uint8_t *)j->ctx->state; /* restrict: a char store may alias anything */
  /* y >= 0 (NaN becomes 0): its max is max |y|, recorded for the next layer's quantiser. Taken over
   * the bit patterns, which order non-negative floats as their values do (an integer max vectorises). */
  uint32_t m = 0;
  for (long i = lo; i < hi; i++) {
    float v = x[i];
    int pass = (v > 0.f) & (v < top); /* where the gradient will pass: 0 < y < top */
    v = v > 0.f ? v : 0.f;
    v = v < top ? v : top;
    y[i] = v;
    mask[i] = (uint8_t)pass;
    uint32_t b;
    memcpy(&b, &v, sizeof b);
    m = b > m ? b : m;
  }
  float mf;
  memcpy(&mf, &m, sizeof mf);
  mh__op_record_absmax(j->ctx, mf);
}

static void act_bwd_mask(void *p, long lo, long hi) {
  const act_job *j = p;
  const float *restrict dy = j->ctx->dy;
  float *restrict dx = j->ctx->dx[0];
  const uint8_t *restrict mask = (const uint8_t *)j->ctx->state;
  if (j->ctx->dx_accumulate[0]) /* unconditional loads so the selects vectorise */
    for (long i = lo; i < hi; i++) {
      float g = dy[i];
      dx[i] += mask[i] ? g : 0.f;
    }
  else
    for (long i = lo; i < hi; i++) {
      float g = dy[i];
      dx[i] = mask[i] ? g : 0.f;
    }
}

static void relu_s8_forward(mh_op_ctx *ctx) {
  act_job j = {ctx, __builtin_inff()};
  mh_parallel_for(ctx->pool, numel(ctx), act_fwd_mask, &j);
}
static void relu6_s8_forward(mh_op_ctx *ctx) {
  act_job j = {ctx, 6.f};
  mh_parallel_for(ctx->pool, numel(ctx), act_fwd_mask, &j);
}
static void act_s8_backward(mh_op_ctx *ctx) {
  if (!ctx->dx[0]) return;
  act_job j = {ctx, 0.f};
  mh_parallel_for(ctx->pool, numel(ctx), act_bwd_mask, &j);
}

const mh_op_impl mh_op_relu_s8 = {.records_absmax = 1, .state_floats = mask_state, .forward = relu_s8_forward,
                                  .backward = act_s8_backward};
const mh_op_impl mh_op_relu6_s8 = {.records_absmax = 1, .state_floats = mask_state, .forward = relu6_s8_forward,
                                   .backward = act_s8_backward};
