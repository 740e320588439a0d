/* A fully connected layer as one DSP subgraph (int8 and integer paths): forward (transposed, so
 * the requantise epilogue's bias is per row), weight gradient and input gradient over the batch,
 * prepared once per layer and batch size, the weights resident and packed once per version; and
 * the backward GEMMs split between the DSP and the CPU as placed, running at the same time. */
#include <string.h>

#include "backend/dsp/subgraph.h"
#include "ops/ops.h"

struct mh_dsp_sg *mh__linear_dsp(const mh_op_ctx *ctx, int N, int F, int O, const int8_t *wq) {
  if (!ctx->dsp || !ctx->dsp->alive) return NULL;
  mh_dsp_sg_desc s;
  memset(&s, 0, sizeof s);
  s.n_tensors = 6, s.n_nodes = 3, s.weights = MH_LIN_W;
  mh_dsp_sg_tensor t[6] = {{(size_t)O * F, 1}, {(size_t)O * 4, 1}, {(size_t)O * F * 4, 0},
                           {(size_t)N * F, 0}, {(size_t)N * O, 0}, {(size_t)N * (O > F ? O : F) * 4, 0}};
  memcpy(s.t, t, sizeof t);
  /* forward: Y (O x N) = W (O x F) * x^T; weight gradient: DW = dy^T x; input gradient: Y (N x F) = dy W */
  mh_dsp_sg_node fwd = {O, N, F, MH_LIN_W, F, 0, MH_LIN_X, F, 1, MH_LIN_Y, N, MH_LIN_BIAS, 1, 1};
  mh_dsp_sg_node bw = {O, F, N, MH_LIN_G, O, 1, MH_LIN_X, F, 0, MH_LIN_DW, F, -1, 0, 0};
  mh_dsp_sg_node bd = {N, F, O, MH_LIN_G, O, 0, MH_LIN_W, F, 0, MH_LIN_Y, F, -1, 0, 0};
  s.nodes[0] = fwd, s.nodes[1] = bw, s.nodes[2] = bd;
  struct mh_dsp_sg *sg = mh_dsp_sg_get(ctx->dsp, ctx->node_id, &s, ctx->dsp_counts);
  if (!sg) {
    mh__op_dsp_failed(ctx);
    return NULL;
  }
  mh_dsp_sg_set_weights(ctx->dsp, sg, wq, (size_t)O * F, ctx->dsp_counts);
  return sg;
}

/* dW (O x F) = dy^T x, and dx (N x F) = dy W when dx is given, on the CPU. */
static void backward_cpu(const mh_op_ctx *ctx, int N, int F, int O, const int8_t *xq, const int8_t *wq,
                         const int8_t *dyq, int32_t *dw, int32_t *dx, unsigned parts) {
  if (parts & MH_PASS_BWD_W) {
    mh_gemm_s8_args gw = {O, F, N, dyq, O, 1, xq, F, 0, dw, F, 0};
    mh__op_gemm_s8(ctx, &gw);
  }
  if (parts & MH_PASS_BWD_D) {
    mh_gemm_s8_args gd = {N, F, O, dyq, O, 0, wq, F, 0, dx, F, 0};
    mh__op_gemm_s8(ctx, &gd);
  }
}

void mh__linear_backward_gemms(const mh_op_ctx *ctx, int N, int F, int O, const int8_t *xq, const int8_t *wq,
                               const int8_t *dyq, int32_t *dw, int32_t *dx) {
  unsigned want = MH_PASS_BWD_W | (dx ? MH_PASS_BWD_D : 0u), dsp = mh__op_dsp_bits(ctx, want);
  struct mh_dsp_sg *sg = dsp ? mh__linear_dsp(ctx, N, F, O, wq) : NULL;
  if (sg) {
    if (dsp & MH_PASS_BWD_W) memcpy(mh_dsp_sg_at(ctx->dsp, sg, MH_LIN_X), xq, (size_t)N * F);
    memcpy(mh_dsp_sg_at(ctx->dsp, sg, MH_LIN_G), dyq, (size_t)N * O);
  }
  if (!sg || mh__op_dsp_post(ctx, sg, dsp, 0, 0)) dsp = 0;
  if (want & ~dsp) backward_cpu(ctx, N, F, O, xq, wq, dyq, dw, dx, want & ~dsp); /* beside the DSP's share */
  if (dsp && (want & ~dsp)) ctx->dsp_counts->cosched_runs++;
  if (dsp && mh__op_dsp_wait(ctx, sg, NULL)) backward_cpu(ctx, N, F, O, xq, wq, dyq, dw, dx, dsp); /* it failed */
  else if (dsp) {
    if (dsp & MH_PASS_BWD_W) memcpy(dw, mh_dsp_sg_at(ctx->dsp, sg, MH_LIN_DW), sizeof(int32_t) * O * F);
    if (dsp & MH_PASS_BWD_D) memcpy(dx, mh_dsp_sg_at(ctx->dsp, sg, MH_LIN_Y), sizeof(int32_t) * N * F);
  }
}
