/* Fully connected layer y = x W^T + b (x read as (N, F) flattened) and its backward: FP32 on the
 * packed GEMM (the oracle GEMM when ctx->reference is set), or int8 GEMMs for the int8 algorithm. */
#include <math.h>
#include <string.h>

#include "ops/ops.h"
#include "quant/quantize.h"

/* ---- int8 (mixed precision): int8 GEMMs, FP32 in and out (see conv2d_s8.c for the scheme) ---- */
static size_t al(size_t b) { return (b + 63) / 64 * 64; }

typedef struct {
  int8_t *xq, *wq, *dyq;
  int32_t *acc;
} lin_s8;

static size_t lin_s8_bytes(int N, int F, int O, lin_s8 *out, void *base) {
  size_t accn = (size_t)N * O > (size_t)O * F ? (size_t)N * O : (size_t)O * F;
  if ((size_t)N * F > accn) accn = (size_t)N * F;
  size_t sz[4] = {al((size_t)N * F), al((size_t)O * F), al((size_t)N * O), al(accn * 4)}, off = 0;
  char *b = base;
  void *ptr[4];
  for (int i = 0; i < 4; i++) ptr[i] = b ? b + off : NULL, off += sz[i];
  if (out) out->xq = ptr[0], out->wq = ptr[1], out->dyq = ptr[2], out->acc = ptr[3];
  return off;
}

static size_t linear_scratch_floats(const mh_graph *g, const mh_node *nd, int n, int precision) {
  if (precision != MH_PRECISION_INT8) return 0;
  const mh_node *in = &g->nodes[nd->in[0]];
  return lin_s8_bytes(n, in->c * in->h * in->w, nd->c, NULL, NULL) / 4 + 16;
}

static void linear_forward_s8(mh_op_ctx *ctx, int N, int F, int O) {
  lin_s8 s;
  lin_s8_bytes(N, F, O, &s, ctx->scratch);
  int ex = mh_quantize_f32_s8(ctx->kt, ctx->pool, ctx->x[0], (long)N * F, s.xq, MH_ROUND_NEAREST, 0);
  int ew = mh_quantize_f32_s8(ctx->kt, ctx->pool, ctx->w, (long)O * F, s.wq, MH_ROUND_NEAREST, 0);
  mh_gemm_s8_args a = {N, O, F, s.xq, F, 0, s.wq, F, 1, s.acc, O, 0};
  mh_gemm_s8(ctx->kt, ctx->pool, &a);
  mh_dequantize_s32_f32(ctx->pool, s.acc, (long)N * O, ex + ew, ctx->y, 0);
}

static void linear_backward_s8(mh_op_ctx *ctx, int N, int F, int O) {
  lin_s8 s;
  lin_s8_bytes(N, F, O, &s, ctx->scratch);
  int ex = mh_quantize_f32_s8(ctx->kt, ctx->pool, ctx->x[0], (long)N * F, s.xq, MH_ROUND_NEAREST, 0);
  int ew = mh_quantize_f32_s8(ctx->kt, ctx->pool, ctx->w, (long)O * F, s.wq, MH_ROUND_NEAREST, 0);
  uint32_t key = mh_q_stoch_key(ctx->seed, (uint64_t)ctx->step, (uint32_t)ctx->node_id);
  int ey = mh_quantize_f32_s8(ctx->kt, ctx->pool, ctx->dy, (long)N * O, s.dyq, MH_ROUND_STOCH, key);
  mh_gemm_s8_args gw = {O, F, N, s.dyq, O, 1, s.xq, F, 0, s.acc, F, 0}; /* dW = dy^T x */
  mh_gemm_s8(ctx->kt, ctx->pool, &gw);
  mh_dequantize_s32_f32(ctx->pool, s.acc, (long)O * F, ey + ex, ctx->dw, 0);
  if (ctx->dx[0]) { /* dx = dy W */
    mh_gemm_s8_args gd = {N, F, O, s.dyq, O, 0, s.wq, F, 0, s.acc, F, 0};
    mh_gemm_s8(ctx->kt, ctx->pool, &gd);
    mh_dequantize_s32_f32(ctx->pool, s.acc, (long)N * F, ey + ew, ctx->dx[0], ctx->dx_accumulate[0]);
  }
}

static void gemm(const mh_op_ctx *ctx, const mh_gemm_f32_args *a) {
  if (ctx->reference) mh_gemm_f32_ref(a);
  else mh_gemm_f32(ctx->kt, ctx->pool, a);
}

/* x: (N, F), W: (O, F), b: (O), y: (N, O) */
static void linear_forward(mh_op_ctx *ctx) {
  const mh_node *nd = ctx->node, *in = &ctx->g->nodes[nd->in[0]];
  int N = ctx->n, F = in->c * in->h * in->w, O = nd->c;
  if (ctx->precision == MH_PRECISION_INT8 && !ctx->reference) {
    linear_forward_s8(ctx, N, F, O);
  } else {
    mh_gemm_f32_args a = {N, O, F, ctx->x[0], F, 0, ctx->w, F, 1, ctx->y, O, 0};
    gemm(ctx, &a);
  }
  if (nd->bias) {
    const float *b = ctx->w + (size_t)O * F;
    for (int n = 0; n < N; n++)
      for (int o = 0; o < O; o++) ctx->y[(size_t)n * O + o] += b[o];
  }
}

static void linear_backward(mh_op_ctx *ctx) {
  const mh_node *nd = ctx->node, *in = &ctx->g->nodes[nd->in[0]];
  int N = ctx->n, F = in->c * in->h * in->w, O = nd->c;
  int s8 = ctx->precision == MH_PRECISION_INT8 && !ctx->reference;
  if (s8) {
    linear_backward_s8(ctx, N, F, O);
  } else { /* dW (O, F) = dy^T (O, N) * x (N, F) */
    mh_gemm_f32_args gw = {O, F, N, ctx->dy, O, 1, ctx->x[0], F, 0, ctx->dw, F, 0};
    gemm(ctx, &gw);
  }
  if (nd->bias) {
    float *db = ctx->dw + (size_t)O * F;
    for (int o = 0; o < O; o++) {
      double s = 0;
      for (int n = 0; n < N; n++) s += ctx->dy[(size_t)n * O + o];
      db[o] = (float)s;
    }
  }
  if (ctx->dx[0] && !s8) { /* dx (N, F) (+)= dy (N, O) * W (O, F) */
    mh_gemm_f32_args gd = {N, F, O, ctx->dy, O, 0, ctx->w, F, 0, ctx->dx[0], F, ctx->dx_accumulate[0]};
    gemm(ctx, &gd);
  }
}

const mh_op_impl mh_op_linear = {
    .save_input = 1,
    .scratch_floats = linear_scratch_floats,
    .forward = linear_forward,
    .backward = linear_backward,
};
