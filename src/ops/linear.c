/* Fully connected layer y = x W^T + b (x read as (N, F) flattened) and its backward, on the packed
 * GEMM, or on the oracle GEMM when ctx->reference is set. */
#include <string.h>

#include "ops/ops.h"

static void gemm(const mh_op_ctx *ctx, const mh_gemm_f32_args *a) {
  if (ctx->reference) mh_gemm_f32_ref(a);
  else mh_gemm_f32(ctx->kt, ctx->pool, a);
}

/* x: (N, F), W: (O, F), b: (O), y: (N, O) */
static void linear_forward(mh_op_ctx *ctx) {
  const mh_node *nd = ctx->node, *in = &ctx->g->nodes[nd->in[0]];
  int N = ctx->n, F = in->c * in->h * in->w, O = nd->c;
  mh_gemm_f32_args a = {N, O, F, ctx->x[0], F, 0, ctx->w, F, 1, ctx->y, O, 0};
  gemm(ctx, &a);
  if (nd->bias) {
    const float *b = ctx->w + (size_t)O * F;
    for (int n = 0; n < N; n++)
      for (int o = 0; o < O; o++) ctx->y[(size_t)n * O + o] += b[o];
  }
}

static void linear_backward(mh_op_ctx *ctx) {
  const mh_node *nd = ctx->node, *in = &ctx->g->nodes[nd->in[0]];
  int N = ctx->n, F = in->c * in->h * in->w, O = nd->c;
  /* dW (O, F) = dy^T (O, N) * x (N, F) */
  mh_gemm_f32_args gw = {O, F, N, ctx->dy, O, 1, ctx->x[0], F, 0, ctx->dw, F, 0};
  gemm(ctx, &gw);
  if (nd->bias) {
    float *db = ctx->dw + (size_t)O * F;
    for (int o = 0; o < O; o++) {
      double s = 0;
      for (int n = 0; n < N; n++) s += ctx->dy[(size_t)n * O + o];
      db[o] = (float)s;
    }
  }
  if (ctx->dx[0]) { /* dx (N, F) (+)= dy (N, O) * W (O, F) */
    mh_gemm_f32_args gd = {N, F, O, ctx->dy, O, 0, ctx->w, F, 0, ctx->dx[0], F, ctx->dx_accumulate[0]};
    gemm(ctx, &gd);
  }
}

const mh_op_impl mh_op_linear = {
    .save_input = 1,
    .forward = linear_forward,
    .backward = linear_backward,
};
