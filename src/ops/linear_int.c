/* Fully connected layer on integer tensors (MH_PRECISION_INTEGER): y = x W^T + b in int32 with the
 * bias aligned to the accumulator, shifted back to int8; backward gives int32 weight/bias sums and
 * an int8 input error. */
#include <string.h>

#include "backend/dsp/subgraph.h"
#include "ops/ops.h"

static size_t al(size_t b) { return (b + 63) / 64 * 64; }

/* Scratch: int32 result (max(N*O, N*F)), then an int8 input error (N*F) when the input's gradient
 * may accumulate (several consumers). */
static size_t lin_int_scratch(const mh_graph *g, const mh_node *nd, int n, int precision) {
  int F, O;
  mh__linear_dims(g, nd, &F, &O);
  size_t acc = (size_t)n * (O > F ? O : F);
  return (al(acc * 4) + (g->nodes[nd->in[0]].n_consumers > 1 ? al((size_t)n * F) : 0)) / 4 + 16;
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

/* acc (N x O) = the transposed forward result Y (O x N), plus the aligned bias. */
static void lin_int_untranspose(mh_op_ctx *ctx, const int32_t *y, int N, int F, int O, int e_acc, int32_t *acc) {
  for (int o = 0; o < O; o++) {
    int32_t add = ctx->node->bias ? mh_q_align32(ctx->qw[(size_t)O * F + o], ctx->ew[1] - e_acc) : 0;
    for (int n = 0; n < N; n++) acc[(size_t)n * O + o] = mh_q_add_sat32(y[(size_t)o * N + n], add);
  }
}

/* --backend dsp: the forward pass as one run of the layer's subgraph. Exact rescaling: the int32
 * result comes back. Adaptive with a prediction: the requantise epilogue is fused at the predicted
 * shift, so the int32 result never leaves the DSP; the adaptive rule (src/quant/rescale.c) judges the
 * measured max and saturations exactly as on the CPU, and a fallback runs again with the exact
 * shift. Returns 1 when done, 0 for the CPU path. */
static int lin_int_forward_dsp(mh_op_ctx *ctx, int N, int F, int O, int e_acc) {
  struct mh_dsp_sg *sg = mh__op_dsp_bits(ctx, MH_PASS_FWD) ? mh__linear_dsp(ctx, N, F, O, ctx->qw) : NULL;
  if (!sg) return 0;
  memcpy(mh_dsp_sg_at(ctx->dsp, sg, MH_LIN_X), ctx->qx[0], (size_t)N * F);
  void *y = mh_dsp_sg_at(ctx->dsp, sg, MH_LIN_Y);
  int32_t *acc = (int32_t *)ctx->scratch;
  if (mh_rescale_needs_exact(&ctx->rs[0], ctx->rescale) || !mh_wire_fused_fits((uint32_t)O, (uint32_t)F)) { /* int32 back */
    if (mh__op_dsp_run(ctx, sg, MH_PASS_FWD, 0, 0, NULL)) return 0;
    lin_int_untranspose(ctx, y, N, F, O, e_acc, acc);
    *ctx->ey = e_acc + mh__int_rescale(ctx, 0, acc, (long)N * O, ctx->qy);
    return 1;
  }
  int32_t *bias = mh_dsp_sg_at(ctx->dsp, sg, MH_LIN_BIAS);
  for (int o = 0; o < O; o++) bias[o] = ctx->node->bias ? mh_q_align32(ctx->qw[(size_t)O * F + o], ctx->ew[1] - e_acc) : 0;
  mh_requant_stats s;
  if (mh__op_dsp_run(ctx, sg, MH_PASS_FWD, 1, ctx->rs[0].shift, &s)) return 0;
  int redo, shift = mh_rescale_after_predicted(&ctx->rs[0], ctx->rc, &s, (long)N * O, &redo);
  if (redo && mh__op_dsp_run(ctx, sg, MH_PASS_FWD, 1, shift, &s)) {
    /* the DSP went away between the two passes: finish this call on the CPU with the decided shift */
    lin_int_acc(ctx, N, F, O, e_acc, acc);
    ctx->kt->requant_s8(acc, ctx->qy, (long)N * O, shift, MH_ROUND_PSTO, 0, 0, &s);
  } else {
    const int8_t *yt = y;
    for (int o = 0; o < O; o++)
      for (int n = 0; n < N; n++) ctx->qy[(size_t)n * O + o] = yt[(size_t)o * N + n];
  }
  *ctx->ey = e_acc + shift;
  return 1;
}

static void lin_int_forward(mh_op_ctx *ctx) {
  int N = ctx->n, F, O;
  mh__linear_dims(ctx->g, ctx->node, &F, &O);
  int e_acc = ctx->ex[0] + ctx->ew[0];
  if (lin_int_forward_dsp(ctx, N, F, O, e_acc)) return;
  int32_t *acc = (int32_t *)ctx->scratch;
  lin_int_acc(ctx, N, F, O, e_acc, acc);
  *ctx->ey = e_acc + mh__int_rescale(ctx, 0, acc, (long)N * O, ctx->qy);
}

static void lin_int_backward(mh_op_ctx *ctx) {
  int N = ctx->n, F, O;
  mh__linear_dims(ctx->g, ctx->node, &F, &O);
  int32_t *acc = (int32_t *)ctx->scratch;
  mh__linear_backward_gemms(ctx, N, F, O, ctx->qx[0], ctx->qw, ctx->qdy, ctx->qdw, ctx->qdx[0] ? acc : NULL);
  if (ctx->node->bias) {
    int32_t *db = ctx->qdw + (size_t)O * F;
    for (int o = 0; o < O; o++) {
      int32_t s = 0;
      for (int n = 0; n < N; n++) s += ctx->qdy[(size_t)n * O + o];
      db[o] = s;
    }
  }
  if (!ctx->qdx[0]) return;
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
