/* Fully connected layer on integer tensors (MH_PRECISION_INTEGER): y = x W^T + b in int32 with the
 * bias aligned to the accumulator, shifted back to int8; backward gives int32 weight/bias sums and
 * an int8 input error. */
#include <string.h>

#include "backend/dsp/dsp.h"
#include "ops/ops.h"

static size_t al(size_t b) { return (b + 63) / 64 * 64; }

static void dims(const mh_graph *g, const mh_node *nd, int *F, int *O) {
  const mh_node *in = &g->nodes[nd->in[0]];
  *F = in->c * in->h * in->w, *O = nd->c;
}

/* Scratch: int32 result (max(N*O, N*F)), then an int8 input error (N*F) when the input's gradient
 * may accumulate (several consumers), then the DSP path's aligned biases (O) and transposed output. */
static size_t lin_int_scratch(const mh_graph *g, const mh_node *nd, int n, int precision) {
  int F, O;
  dims(g, nd, &F, &O);
  size_t acc = (size_t)n * (O > F ? O : F);
  return (al(acc * 4) + (g->nodes[nd->in[0]].n_consumers > 1 ? al((size_t)n * F) : 0) + al((size_t)O * 4) +
          al((size_t)O * n)) / 4 + 16;
}

/* acc (N x O int32) = x W^T plus the bias aligned to the accumulator's exponent e_acc. */
static void lin_int_acc(mh_op_ctx *ctx, int N, int F, int O, int e_acc, int32_t *acc) {
  mh_gemm_s8_args a = {N, O, F, ctx->qx[0], F, 0, ctx->qw, F, 1, acc, O, 0};
  mh__op_gemm_s8(ctx, &a);
  if (!ctx->node->bias) return;
  const int8_t *b = ctx->qw + (size_t)O * F;
  for (int o = 0; o < O; o++) {
    int32_t add = mh_q_align32(b[o], ctx->ew[1] - e_acc);
    for (int n = 0; n < N; n++) acc[(size_t)n * O + o] = mh_q_add_sat32(acc[(size_t)n * O + o], add);
  }
}

/* --backend dsp with adaptive rescaling and a prediction to use: the GEMM runs on the DSP with the
 * requantise epilogue fused at the predicted shift, so the int32 result never leaves the DSP; the
 * adaptive rule (src/quant/rescale.c) judges the measured max and saturations exactly as on the CPU,
 * and a fallback repeats the fused GEMM with the exact shift. Computed transposed (outputs x samples)
 * because the epilogue adds its bias per row. Returns 1 when done, 0 for the CPU path. */
static int lin_int_forward_dsp(mh_op_ctx *ctx, int N, int F, int O, int e_acc) {
  if (!ctx->dsp || !ctx->dsp->alive || mh_rescale_needs_exact(&ctx->rs[0], ctx->rescale)) return 0;
  char *base = (char *)ctx->scratch + al((size_t)N * (O > F ? O : F) * 4) +
               (ctx->g->nodes[ctx->node->in[0]].n_consumers > 1 ? al((size_t)N * F) : 0);
  int32_t *bias = ctx->node->bias ? (int32_t *)base : NULL;
  int8_t *yt = (int8_t *)(base + al((size_t)O * 4));
  for (int o = 0; bias && o < O; o++) bias[o] = mh_q_align32(ctx->qw[(size_t)O * F + o], ctx->ew[1] - e_acc);
  mh_gemm_s8_args g = {O, N, F, ctx->qw, F, 0, ctx->qx[0], F, 1, NULL, N, 0}; /* W x^T */
  mh_requant_stats s;
  if (mh_dsp_gemm_s8_requant(ctx->dsp, &g, bias, ctx->rs[0].shift, MH_ROUND_PSTO, yt, N, &s)) return 0;
  int redo, shift = mh_rescale_after_predicted(&ctx->rs[0], ctx->rc, &s, (long)N * O, &redo);
  if (redo && mh_dsp_gemm_s8_requant(ctx->dsp, &g, bias, shift, MH_ROUND_PSTO, yt, N, &s)) {
    /* the DSP went away between the two passes: finish this call on the CPU with the decided shift */
    int32_t *acc = (int32_t *)ctx->scratch;
    lin_int_acc(ctx, N, F, O, e_acc, acc);
    ctx->kt->requant_s8(acc, ctx->qy, (long)N * O, shift, MH_ROUND_PSTO, 0, 0, &s);
  } else {
    for (int o = 0; o < O; o++)
      for (int n = 0; n < N; n++) ctx->qy[(size_t)n * O + o] = yt[(size_t)o * N + n];
  }
  if (ctx->dsp_counts) {
    ctx->dsp_counts->gemms += 1 + redo, ctx->dsp_counts->fused_gemms += 1 + redo;
    ctx->dsp_counts->macs += (1.0 + redo) * N * O * F;
    ctx->dsp_counts->bytes_to_dsp += (1.0 + redo) * ((double)O * F + (double)N * F + (bias ? O * 4.0 : 0));
    ctx->dsp_counts->bytes_from_dsp += (1.0 + redo) * N * O;
    ctx->dsp_counts->int32_bytes_kept += (1.0 + redo) * N * O * 4.0;
  }
  *ctx->ey = e_acc + shift;
  return 1;
}

static void lin_int_forward(mh_op_ctx *ctx) {
  int N = ctx->n, F, O;
  dims(ctx->g, ctx->node, &F, &O);
  int e_acc = ctx->ex[0] + ctx->ew[0];
  if (lin_int_forward_dsp(ctx, N, F, O, e_acc)) return;
  int32_t *acc = (int32_t *)ctx->scratch;
  lin_int_acc(ctx, N, F, O, e_acc, acc);
  *ctx->ey = e_acc + mh__int_rescale(ctx, 0, acc, (long)N * O, ctx->qy);
}

static void lin_int_backward(mh_op_ctx *ctx) {
  int N = ctx->n, F, O;
  dims(ctx->g, ctx->node, &F, &O);
  int32_t *acc = (int32_t *)ctx->scratch;
  mh_gemm_s8_args gw = {O, F, N, ctx->qdy, O, 1, ctx->qx[0], F, 0, ctx->qdw, F, 0}; /* dW = dy^T x */
  mh__op_gemm_s8(ctx, &gw);
  if (ctx->node->bias) {
    int32_t *db = ctx->qdw + (size_t)O * F;
    for (int o = 0; o < O; o++) {
      int32_t s = 0;
      for (int n = 0; n < N; n++) s += ctx->qdy[(size_t)n * O + o];
      db[o] = s;
    }
  }
  if (!ctx->qdx[0]) return;
  mh_gemm_s8_args gd = {N, F, O, ctx->qdy, O, 0, ctx->qw, F, 0, acc, F, 0}; /* dx = dy W */
  mh__op_gemm_s8(ctx, &gd);
  int8_t *g8 = ctx->dx_accumulate[0] ? (int8_t *)ctx->scratch + al((size_t)N * (O > F ? O : F) * 4) : ctx->qdx[0];
  int sh = mh__int_rescale(ctx, 1, acc, (long)N * F, g8);
  mh__int_emit_grad(ctx, 0, g8, ctx->edy + ctx->ew[0] + sh, (long)N * F);
}

const mh_op_impl mh_op_linear_int = {
    .save_input = 1,
    .scratch_floats = lin_int_scratch,
    .forward = lin_int_forward,
    .backward = lin_int_backward,
};
