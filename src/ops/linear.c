/* Fully connected layer y = x W^T + b (x read as (N, F) flattened) and its backward: FP32 on the
 * packed GEMM (the oracle GEMM when ctx->reference is set), and the int8 form (int8 GEMMs, the int8
 * input and weights saved for backward) the int8 algorithm runs. */
#include <math.h>
#include <string.h>

#include "ops/ops.h"
#include "quant/quantize.h"

/* ---- int8 (mixed precision): int8 GEMMs, FP32 in and out (see conv2d_s8.c for the scheme) ---- */
static size_t al(size_t b) { return (b + 63) / 64 * 64; }

void mh__linear_dims(const mh_graph *g, const mh_node *nd, int *F, int *O) {
  const mh_node *in = &g->nodes[nd->in[0]];
  *F = in->c * in->h * in->w, *O = nd->c;
}

/* Scratch: dy_q (N*O), the int32 result (max(N*O, O*F)) and the input gradient's (N*F): the two
 * backward passes may run at once (one on a backend). */
static size_t lin_s8_scratch(const mh_graph *g, const mh_node *nd, int N, int precision) {
  int F, O;
  mh__linear_dims(g, nd, &F, &O);
  size_t accn = (size_t)N * O > (size_t)O * F ? (size_t)N * O : (size_t)O * F;
  return (al((size_t)N * O) + al(accn * 4) + al((size_t)N * F * 4)) / 4 + 16;
}

/* Saved for backward: exponents of x and W, x_q (N*F), W_q (O*F). */
static size_t lin_s8_state(const mh_graph *g, const mh_node *nd, int N, int precision) {
  int F, O;
  mh__linear_dims(g, nd, &F, &O);
  return (64 + al((size_t)N * F) + al((size_t)O * F)) / 4;
}

void mh__linear_s8_bufs(const mh_op_ctx *ctx, int N, int F, int O, mh_linear_s8_bufs *b) {
  char *st = (char *)ctx->state, *sc = (char *)ctx->scratch;
  size_t accn = (size_t)N * O > (size_t)O * F ? (size_t)N * O : (size_t)O * F;
  b->e = (int32_t *)st, b->xq = (int8_t *)(st + 64), b->wq = (int8_t *)(st + 64 + al((size_t)N * F));
  b->dyq = (int8_t *)sc, b->acc = (int32_t *)(sc + al((size_t)N * O));
  b->dxacc = (int32_t *)(sc + al((size_t)N * O) + al(accn * 4));
}

void mh__linear_s8_quantize_inputs(mh_op_ctx *ctx, int N, int F, int O, const mh_linear_s8_bufs *b) {
  b->e[0] = ctx->x_absmax[0] >= 0 /* max |x| recorded by the producer: no max pass */
                ? mh_quantize_f32_s8_max(ctx->kt, ctx->pool, ctx->x[0], (long)N * F, b->xq, MH_ROUND_NEAREST, 0, ctx->x_absmax[0])
                : mh_quantize_f32_s8(ctx->kt, ctx->pool, ctx->x[0], (long)N * F, b->xq, MH_ROUND_NEAREST, 0);
  b->e[1] = mh_quantize_f32_s8(ctx->kt, ctx->pool, ctx->w, (long)O * F, b->wq, MH_ROUND_NEAREST, 0);
}

void mh__linear_s8_finish_forward(mh_op_ctx *ctx, int N, int F, int O, const mh_linear_s8_bufs *b) {
  mh_dequantize_s32_f32(ctx->pool, b->acc, (long)N * O, b->e[0] + b->e[1], ctx->y, 0);
  if (!ctx->node->bias) return;
  const float *bias = ctx->w + (size_t)O * F;
  for (int n = 0; n < N; n++)
    for (int o = 0; o < O; o++) ctx->y[(size_t)n * O + o] += bias[o];
}

int mh__linear_s8_quantize_dy(mh_op_ctx *ctx, int N, int O, const mh_linear_s8_bufs *b) {
  uint32_t key = mh_q_stoch_key(ctx->seed, (uint64_t)ctx->step, (uint32_t)ctx->node_id);
  return mh_quantize_f32_s8(ctx->kt, ctx->pool, ctx->dy, (long)N * O, b->dyq, MH_ROUND_STOCH, key);
}

void mh__linear_s8_finish_weights(mh_op_ctx *ctx, int N, int F, int O, const mh_linear_s8_bufs *b, int ey) {
  mh_dequantize_s32_f32(ctx->pool, b->acc, (long)O * F, ey + b->e[0], ctx->dw, 0);
  if (!ctx->node->bias) return;
  float *db = ctx->dw + (size_t)O * F; /* the bias gradient stays FP32: a sum of dL/dy */
  for (int o = 0; o < O; o++) {
    double s = 0;
    for (int n = 0; n < N; n++) s += ctx->dy[(size_t)n * O + o];
    db[o] = (float)s;
  }
}

void mh__linear_s8_finish_dx(mh_op_ctx *ctx, int N, int F, const mh_linear_s8_bufs *b, int ey) {
  mh_dequantize_s32_f32(ctx->pool, b->dxacc, (long)N * F, ey + b->e[1], ctx->dx[0], ctx->dx_accumulate[0]);
}

static void linear_s8_forward(mh_op_ctx *ctx) {
  int N = ctx->n, F, O;
  mh__linear_dims(ctx->g, ctx->node, &F, &O);
  mh_linear_s8_bufs b;
  mh__linear_s8_bufs(ctx, N, F, O, &b);
  mh__linear_s8_quantize_inputs(ctx, N, F, O, &b);
  mh_gemm_s8_args a = {N, O, F, b.xq, F, 0, b.wq, F, 1, b.acc, O, 0};
  mh_gemm_s8(ctx->kt, ctx->pool, &a);
  mh__linear_s8_finish_forward(ctx, N, F, O, &b);
}

/* Backward: the passes asked for (ctx->passes; 0: both), each complete by itself (both quantise dy
 * the same way), so a backend can take the other one. */
static void linear_s8_backward(mh_op_ctx *ctx) {
  int N = ctx->n, F, O;
  mh__linear_dims(ctx->g, ctx->node, &F, &O);
  mh_linear_s8_bufs b;
  mh__linear_s8_bufs(ctx, N, F, O, &b);
  unsigned parts = (ctx->passes ? ctx->passes : MH_PASS_BWD_W | MH_PASS_BWD_D) &
                   (MH_PASS_BWD_W | (ctx->dx[0] ? MH_PASS_BWD_D : 0u));
  int ey = mh__linear_s8_quantize_dy(ctx, N, O, &b);
  mh__linear_backward_gemms(ctx, N, F, O, b.xq, b.wq, b.dyq, b.acc, b.dxacc, parts);
  if (parts & MH_PASS_BWD_W) mh__linear_s8_finish_weights(ctx, N, F, O, &b, ey);
  if (parts & MH_PASS_BWD_D) mh__linear_s8_finish_dx(ctx, N, F, &b, ey);
}

void mh__linear_backward_gemms(const mh_op_ctx *ctx, int N, int F, int O, const int8_t *xq, const int8_t *wq,
                               const int8_t *dyq, int32_t *dw, int32_t *dx, unsigned parts) {
  if (parts & MH_PASS_BWD_W) { /* dW (O x F) = dy^T x */
    mh_gemm_s8_args gw = {O, F, N, dyq, O, 1, xq, F, 0, dw, F, 0};
    mh_gemm_s8(ctx->kt, ctx->pool, &gw);
  }
  if (parts & MH_PASS_BWD_D) { /* dx (N x F) = dy W */
    mh_gemm_s8_args gd = {N, F, O, dyq, O, 0, wq, F, 0, dx, F, 0};
    mh_gemm_s8(ctx->kt, ctx->pool, &gd);
  }
}

const mh_op_impl mh_op_linear_s8 = {
    .scratch_floats = lin_s8_scratch,
    .state_floats = lin_s8_state,
    .forward = linear_s8_forward,
    .backward = linear_s8_backward,
};

/* ---- FP32 ---- */
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
